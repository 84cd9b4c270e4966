//! The HTTP surface: `GET /ws` (admission + upgrade), `POST /close`, `/healthz`,
//! `/readyz`, `/metrics`.
//!
//! Admission verifies the room token before the upgrade but reports a refusal
//! *after* it, as a 4xxx close code, because browsers cannot read the HTTP status
//! of a failed WebSocket handshake. A request that is not a WebSocket upgrade at
//! all gets a JSON error body. The token comes as a `bearer.<JWT>` subprotocol
//! (preferred: not in URLs or logs), an `Authorization: Bearer` header or `?token=`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{rejection::WebSocketUpgradeRejection, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rendezvous_api::{ErrorBody, RoomClaims};
use rendezvous_auth::{AuthError, Verifier};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::actor::ActorInput;
use crate::core::{ConnId, Identity, Input};
use crate::metrics::Metrics;
use crate::protocol::{close_code, CloseReason, BEARER_PROTOCOL_PREFIX, SUBPROTOCOL};

/// Per-socket read buffer: a few typical frames.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Per-socket write batching: frames are written once this much is queued or on flush.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// The one shared context of the HTTP handlers and connection tasks.
#[derive(Clone)]
pub(crate) struct AppState {
    inner: Arc<Shared>,
}

pub(crate) struct Shared {
    pub room_id: String,
    pub verifier: Verifier,
    pub actor: mpsc::Sender<(ActorInput, Instant)>,
    pub metrics: Metrics,
    pub next_conn: AtomicU64,
    pub ready: AtomicBool,
    /// Becomes true when the room has ended, so connections that have not joined
    /// yet (still before `hello`) are told `room_closed` too.
    pub over: tokio::sync::watch::Sender<bool>,
    pub hello_timeout: Duration,
    pub outbox_frames: usize,
    pub heartbeat: Heartbeat,
    pub max_frame_bytes: usize,
    pub occupancy: Arc<Occupancy>,
    /// Held by every connection task (through the state); the server waits until
    /// all clones are gone before it returns.
    pub _alive: mpsc::Sender<()>,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self {
            inner: Arc::new(shared),
        }
    }
    pub fn actor(&self) -> &mpsc::Sender<(ActorInput, Instant)> {
        &self.inner.actor
    }
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
    pub fn next_conn(&self) -> ConnId {
        ConnId(self.inner.next_conn.fetch_add(1, Ordering::Relaxed))
    }
    pub fn hello_timeout(&self) -> Duration {
        self.inner.hello_timeout
    }
    pub fn outbox_frames(&self) -> usize {
        self.inner.outbox_frames.max(1)
    }
    pub fn heartbeat(&self) -> Heartbeat {
        self.inner.heartbeat
    }
    pub fn max_frame_bytes(&self) -> usize {
        self.inner.max_frame_bytes
    }
    /// The room has ended: not ready, and every connection still before `hello`
    /// gets `room_closed`.
    pub fn set_over(&self) {
        self.inner.ready.store(false, Ordering::Relaxed);
        self.inner.over.send_replace(true);
    }
    pub fn over(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.over.subscribe()
    }
}

/// How joined connections are kept alive and found dead.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Heartbeat {
    /// Between the server's pings.
    pub ping_interval: Duration,
    /// Silence (nothing at all received) after which a peer counts as dropped.
    pub silence: Duration,
}

impl Heartbeat {
    pub fn new(ping_interval: Duration, pong_timeout: Duration) -> Self {
        // A zero period would be a busy loop (and panics in tokio's interval).
        let ping_interval = ping_interval.max(Duration::from_millis(1));
        Self {
            ping_interval,
            silence: ping_interval + pong_timeout,
        }
    }
}

/// The router of one room server.
pub(crate) fn app(state: AppState) -> Router {
    Router::new()
        .route("/ws", get(ws))
        .route("/close", post(close))
        .route("/status", get(status))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Seats taken and the lock, published by the room actor after every step so the
/// router can tell "full" and "locked" apart before handing out a room token.
#[derive(Debug)]
pub(crate) struct Occupancy {
    seated: AtomicUsize,
    locked: AtomicBool,
    max: usize,
}

impl Occupancy {
    pub fn new(max: usize) -> Self {
        Self {
            seated: AtomicUsize::new(0),
            locked: AtomicBool::new(false),
            max,
        }
    }

    pub fn publish(&self, seated: usize, locked: bool) {
        self.seated.store(seated, Ordering::Relaxed);
        self.locked.store(locked, Ordering::Relaxed);
    }
}

/// `GET /status`: `{participants, maxParticipants, locked}` (counts only, no names).
async fn status(State(state): State<AppState>) -> Response {
    let o = &state.inner.occupancy;
    Json(serde_json::json!({
        "participants": o.seated.load(Ordering::Relaxed),
        "maxParticipants": o.max,
        "locked": o.locked.load(Ordering::Relaxed),
    }))
    .into_response()
}

/// Why a token was not accepted, as a close code and an HTTP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub close: u16,
    pub code: &'static str,
    pub status: StatusCode,
}

impl Refusal {
    const fn new(close: u16, code: &'static str, status: StatusCode) -> Self {
        Self {
            close,
            code,
            status,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let message = match self.code {
            "missing_token" => "a room token is required",
            "token_expired" => "the room token has expired",
            "wrong_room" => "the room token is for another room",
            "missing_grant" => "the room token lacks the grant this needs",
            "keys_unavailable" => "verifying keys are unavailable",
            _ => "the room token is not valid",
        };
        (self.status, Json(ErrorBody::new(self.code, message))).into_response()
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

/// The room token offered as a `bearer.<JWT>` subprotocol, if any.
fn subprotocol_token(upgrade: &WebSocketUpgrade) -> Option<String> {
    upgrade.requested_protocols().find_map(|p| {
        let token = p.to_str().ok()?.strip_prefix(BEARER_PROTOCOL_PREFIX)?;
        Some(token.to_owned())
    })
}

/// Verify a room token for this room.
async fn admit(state: &AppState, token: Option<&str>) -> Result<RoomClaims, Refusal> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        let r = Refusal::new(
            close_code::INVALID_TOKEN,
            "missing_token",
            StatusCode::UNAUTHORIZED,
        );
        return Err(r);
    };
    let claims: RoomClaims = state.inner.verifier.verify(token).await.map_err(|e| {
        tracing::debug!(error = %e, "room token refused");
        match e {
            AuthError::Expired => Refusal::new(
                close_code::TOKEN_EXPIRED,
                "token_expired",
                StatusCode::UNAUTHORIZED,
            ),
            e if !e.is_client_error() => Refusal::new(
                close_code::INTERNAL,
                "keys_unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            _ => Refusal::new(
                close_code::INVALID_TOKEN,
                "invalid_token",
                StatusCode::UNAUTHORIZED,
            ),
        }
    })?;
    if claims.room != state.inner.room_id {
        return Err(Refusal::new(
            close_code::WRONG_ROOM,
            "wrong_room",
            StatusCode::FORBIDDEN,
        ));
    }
    Ok(claims)
}

#[derive(Debug, Deserialize)]
struct WsQuery {
    token: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn ws(
    State(state): State<AppState>,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => {
            let body = ErrorBody::new("websocket_required", rejection.body_text());
            return (rejection.status(), Json(body)).into_response();
        }
    };
    // The subprotocol first (browsers, our client), then the older ways in.
    let offered = subprotocol_token(&upgrade);
    let token = offered
        .as_deref()
        .or_else(|| bearer(&headers))
        .or(query.token.as_deref());
    let admission = admit(&state, token).await.and_then(|claims| {
        let g = claims.grants;
        if g.chat || g.subscribe || g.moderate {
            Ok(Identity {
                id: claims.sub,
                name: claims.name,
                grants: g,
            })
        } else {
            let r = Refusal::new(
                close_code::MISSING_GRANT,
                "missing_grant",
                StatusCode::FORBIDDEN,
            );
            Err(r)
        }
    });
    // Frames beyond four times the protocol limit are not worth reading at all.
    let hard_limit = crate::conn::max_sdp_bytes(state.max_frame_bytes());
    upgrade
        // Selected whenever offered, refusals included: a browser whose offer
        // goes unanswered fails the handshake and never sees the close code.
        .protocols([SUBPROTOCOL])
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        // tungstenite's 128 KiB defaults cost ~250 KiB per idle socket; chat frames
        // are small, and the buffers still grow for the rare large one.
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .on_upgrade(move |socket| async move {
            match admission {
                Ok(identity) => crate::conn::serve(socket, state, identity).await,
                Err(r) => crate::conn::refuse(socket, r.close, r.code).await,
            }
        })
}

/// `POST /close`: end the room; needs a room token for this room with `moderate`.
#[tracing::instrument(skip_all)]
async fn close(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let claims = match admit(&state, bearer(&headers)).await {
        Ok(claims) => claims,
        Err(r) => return r.into_response(),
    };
    if !claims.grants.moderate {
        let r = Refusal::new(
            close_code::MISSING_GRANT,
            "missing_grant",
            StatusCode::FORBIDDEN,
        );
        return r.into_response();
    }
    tracing::info!(by = %claims.sub, "room closed over HTTP");
    let input = ActorInput::Core(Input::Close {
        reason: CloseReason::Closed,
    });
    // If the room task is gone, the room is already ending: same answer.
    let _ = state.actor().send((input, Instant::now())).await;
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "closing": true })),
    )
        .into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.inner.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready").into_response()
    } else {
        let body = ErrorBody::new("not_ready", "the room is not accepting participants");
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics().render(),
    )
        .into_response()
}
