//! Per-route HTTP metrics, the `/healthz` route, and the separate `/metrics` listener.
//!
//! Requests are labelled by the *matched route template* (`/api/users/{id}`), never
//! the raw path, and by method from a fixed set (anything else is `other`), so label
//! cardinality stays bounded whatever clients send.
//!
//! Services add tracking to their public app with [`HttpMetrics::track`] and serve the
//! exposition on a listener of its own with [`serve_metrics`], so the public port never
//! shows operational data. [`HttpMetrics::wrap`] keeps both on one port for callers
//! that have not moved yet.

use std::future::Future;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

/// A Prometheus registry with request counters and latency histograms.
#[derive(Clone)]
pub struct HttpMetrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl HttpMetrics {
    /// Metrics named `rendezvous_<component>_http_requests_total` and
    /// `rendezvous_<component>_http_request_duration_seconds`.
    pub fn new(component: &str) -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                format!("rendezvous_{component}_http_requests_total"),
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                format!("rendezvous_{component}_http_request_duration_seconds"),
                "HTTP request latency by method, route and status",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(requests.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(latency.clone()))
            .expect("unique metric");
        Self {
            registry,
            requests,
            latency,
        }
    }

    /// The registry, for a service to add its own metrics to.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Add the tracking middleware and `/healthz` (itself not tracked) to `app`. No
    /// `/metrics`: serve that with [`serve_metrics`] on its own listener.
    pub fn track<S: Clone + Send + Sync + 'static>(&self, app: Router<S>) -> Router<S> {
        app.layer(axum::middleware::from_fn_with_state(self.clone(), track))
            .route("/healthz", get(|| async { "ok" }))
    }

    /// [`Self::track`] plus `/metrics` on the same router, for a service whose one
    /// port is both public and scraped.
    pub fn wrap<S: Clone + Send + Sync + 'static>(&self, app: Router<S>) -> Router<S> {
        self.track(app)
            .route("/metrics", get(render).with_state(self.clone()))
    }

    /// A router with only `GET /metrics` (and JSON 404s for anything else).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/metrics", get(render))
            .with_state(self.clone())
            .fallback(crate::not_found)
    }

    /// The Prometheus text exposition of every registered metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

/// Serve `metrics`' `/metrics` on `listener` until `shutdown` resolves. Services run
/// it beside their public server on `--metrics-listen`.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: HttpMetrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "metrics listening");
    axum::serve(listener, metrics.router())
        .with_graceful_shutdown(shutdown)
        .await
}

async fn track(State(m): State<HttpMetrics>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = crate::method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let labels = [method, route.as_str(), status.as_str()];
    m.requests.with_label_values(&labels).inc();
    m.latency
        .with_label_values(&labels)
        .observe(started.elapsed().as_secs_f64());
    res
}

async fn render(State(m): State<HttpMetrics>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests;
