//! The shell every Rendezvous HTTP service shares.
//!
//! Owns: logging set-up ([`init_tracing`]), request spans that name the route
//! ([`trace_layer`]), per-route HTTP metrics ([`HttpMetrics`]), the `/healthz` route,
//! the `/metrics` listener ([`serve_metrics`]), the JSON error response
//! ([`error_response`], [`ApiError`]), the caller of a request ([`AuthUser`]),
//! JSON-refusing extractors ([`Json`], [`Path`]), the client for calls between
//! services ([`http_client`]) and the process shutdown signal ([`shutdown_signal`]).
//! Services own their routes and readiness checks; this crate owns none of their state.
#![forbid(unsafe_code)]

mod auth;
pub mod error;
mod extract;
mod metrics;
mod trace;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rendezvous_api::ErrorBody;

pub use auth::{AuthRejection, AuthUser, HasVerifier};
pub use error::{api_error_response, http_client, ApiError};
pub use extract::{bearer_token, Json, Path};
pub use metrics::{serve_metrics, HttpMetrics};
pub use trace::{method_label, request_span, trace_layer};

/// The log filter when `RUST_LOG` is unset.
pub const DEFAULT_LOG_FILTER: &str = "info,rtc=error";

/// How logs are written. `RENDEZVOUS_LOG_FORMAT=json` selects JSON (production);
/// anything else, human-readable text. `RUST_LOG` sets the filter (default `info`).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    // The WebRTC stack (`rtc`, `rtc_ice`, `rtc_dtls`, ...) logs every peer's state
    // changes at info and browsers' unknown TLS extensions as warnings: per peer, not
    // per room, so only its errors by default.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let json = std::env::var("RENDEZVOUS_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for people, not for files and log collectors.
        .with_ansi(std::io::stderr().is_terminal());
    // try_init: a second call (tests, `up` running several services) is harmless.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The JSON error body `{ "error": { "code", "message" } }` with a status.
pub fn error_response(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, axum::Json(ErrorBody::new(code, message))).into_response()
}

/// `GET /api/openapi.json` serving `doc`: each binary serves the document of the
/// APIs it runs (`rendezvous up` serves users and rooms in one).
pub fn openapi_route(doc: serde_json::Value) -> axum::Router {
    let doc = std::sync::Arc::new(doc);
    axum::Router::new().route(
        "/api/openapi.json",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc.as_ref().clone()) }
        }),
    )
}

/// The fallback for unknown routes: a JSON 404 rather than an empty body.
pub async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// Resolves on Ctrl-C or SIGTERM: the signal every service drains on.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}

/// The fallback for a known route with the wrong method: a JSON 405.
pub async fn method_not_allowed() -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}
