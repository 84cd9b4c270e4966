//! `/rooms/{id}/ws`: the browser's one WebSocket, forwarded to the room server.
//!
//! The router does not read the room protocol: it copies text and binary frames both
//! ways and passes close frames through with their codes and reasons, so a client
//! sees exactly what the room said (`room_closed`, 4010 kicked, ...). Pings and pongs
//! are passed through too, so the room server's heartbeat reaches the client.
//!
//! The room token travels as the room server accepts it: `?token=`, an
//! `Authorization` header, or the `Sec-WebSocket-Protocol` offer
//! (`rendezvous.v1, bearer.<token>`), which browsers can send and logs never see.
//! The offer is forwarded as it came; the client is answered `rendezvous.v1`.
//!
//! Liveness per hop: a client silent for [`Config::ws_ping_interval`] is pinged, and
//! one silent for three intervals is dropped, so its room sees it leave (and starts
//! the reconnect grace) even when the room's own pings are answered by this proxy's
//! WebSocket client. Endings: router shutdown sends the client 1012 (service
//! restart: reconnect and resume) and the room 1001 (going away); a room server that
//! vanishes without a close frame becomes 1011 for the client.
//!
//! [`Config::ws_ping_interval`]: crate::Config::ws_ping_interval

use std::pin::pin;
use std::time::Duration;

use axum::extract::ws::{self, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use futures::{SinkExt as _, StreamExt as _};
use rendezvous_service::Path;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self as tung, client::IntoClientRequest as _};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::model::RoomState;
use crate::Ctx;

/// Largest frame forwarded; room servers enforce their own, smaller limits.
const MAX_FRAME: usize = 1 << 20;
/// Time the other direction gets to deliver its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// The subprotocol of the room protocol, selected when a client offers it.
pub const SUBPROTOCOL: &str = "rendezvous.v1";
/// RFC 6455 close codes the proxy itself sends.
const GOING_AWAY: u16 = 1001;
const INTERNAL_ERROR: u16 = 1011;
const SERVICE_RESTART: u16 = 1012;

pub async fn ws(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    let endpoint = {
        let reg = ctx.reg();
        let room = reg.get(&id)?;
        if room.state == RoomState::Closing {
            return Err(Error::RoomEnded);
        }
        room.endpoint.clone().ok_or(Error::RoomNotReady)?
    };
    if ctx.draining.is_cancelled() {
        return Err(Error::ShuttingDown);
    }
    let url = match query {
        Some(q) => format!("ws://{endpoint}/ws?{q}"),
        None => format!("ws://{endpoint}/ws"),
    };
    let forward = Forward {
        url,
        auth: headers.get(header::AUTHORIZATION).cloned(),
        protocols: headers.get(header::SEC_WEBSOCKET_PROTOCOL).cloned(),
        ping_interval: ctx.cfg.ws_ping_interval,
        draining: ctx.draining.clone(),
    };
    let tasks = ctx.tasks.clone();
    Ok(upgrade
        .max_message_size(MAX_FRAME)
        .protocols([SUBPROTOCOL])
        .on_upgrade(move |client| async move {
            // Tracked, so shutdown waits (bounded) for every socket to say goodbye.
            let _ = tasks.spawn(pump(client, forward)).await;
        }))
}

/// What one proxied socket needs to reach its room.
struct Forward {
    url: String,
    auth: Option<HeaderValue>,
    protocols: Option<HeaderValue>,
    ping_interval: Duration,
    draining: CancellationToken,
}

fn close(code: u16, reason: &'static str) -> ws::Message {
    ws::Message::Close(Some(ws::CloseFrame {
        code,
        reason: reason.into(),
    }))
}

async fn pump(mut client: WebSocket, fwd: Forward) {
    let upstream = async {
        let mut req = fwd.url.as_str().into_client_request()?;
        if let Some(a) = fwd.auth {
            req.headers_mut().insert(header::AUTHORIZATION, a);
        }
        if let Some(p) = fwd.protocols {
            req.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, p);
        }
        tokio_tungstenite::connect_async(req).await
    };
    let upstream = match upstream.await {
        Ok((s, _)) => s,
        Err(e) => {
            // The error names no URL (the query may hold a token).
            tracing::warn!(error = %e, "room server unreachable");
            let _ = client
                .send(close(INTERNAL_ERROR, "room server unreachable"))
                .await;
            return;
        }
    };
    let (mut c_tx, mut c_rx) = client.split();
    let (mut u_tx, mut u_rx) = upstream.split();
    // Frames for the client come from two places (the room, and this proxy's pings
    // and closes): one channel feeds the one writer. Small: the writer drains it as
    // fast as the client reads, and a slow client is the room's to cut off.
    let (to_client_tx, mut to_client_rx) = tokio::sync::mpsc::channel::<ws::Message>(64);
    let writer = async move {
        while let Some(m) = to_client_rx.recv().await {
            let close = matches!(m, ws::Message::Close(_));
            if c_tx.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = c_tx.close().await;
    };
    let client_side = {
        let to_client_tx = to_client_tx.clone();
        let draining = fwd.draining.clone();
        async move {
            let mut heard = Instant::now();
            let mut ticker = tokio::time::interval(fwd.ping_interval);
            ticker.tick().await;
            // What the client is told, and whether the room still needs a close.
            let (ending, tell_room) = loop {
                tokio::select! {
                    m = c_rx.next() => {
                        let m = match m {
                            Some(Ok(m)) => m,
                            other => {
                                tracing::debug!(error = ?other.and_then(|r| r.err()), "client side ended");
                                break (None, true);
                            }
                        };
                        heard = Instant::now();
                        let close = matches!(m, ws::Message::Close(_));
                        if u_tx.send(to_upstream(m)).await.is_err() {
                            break (None, false);
                        }
                        if close {
                            break (None, false);
                        }
                    }
                    _ = ticker.tick() => {
                        let silent = heard.elapsed();
                        if silent >= fwd.ping_interval * 3 {
                            tracing::info!(?silent, "WebSocket client went silent; dropping it");
                            break (Some(close(GOING_AWAY, "client went silent")), true);
                        }
                        if silent >= fwd.ping_interval {
                            let _ = to_client_tx.try_send(ws::Message::Ping(Default::default()));
                        }
                    }
                    _ = draining.cancelled() => {
                        break (Some(close(SERVICE_RESTART, "service restart: reconnect")), true);
                    }
                }
            };
            // The room hears that this participant's connection is gone (not a
            // `leave`): it keeps their seat for the reconnect grace period.
            if tell_room {
                let _ = u_tx
                    .send(tung::Message::Close(Some(tung::protocol::CloseFrame {
                        code: GOING_AWAY.into(),
                        reason: "proxy connection ended".into(),
                    })))
                    .await;
            }
            let _ = u_tx.close().await;
            if let Some(m) = ending {
                let _ = to_client_tx.send(m).await;
            }
        }
    };
    let room_side = async move {
        loop {
            match u_rx.next().await {
                Some(Ok(m)) => {
                    let close = m.is_close();
                    let Some(m) = to_client(m) else { continue };
                    if to_client_tx.send(m).await.is_err() || close {
                        break;
                    }
                }
                // The room server vanished without a close frame.
                Some(Err(_)) | None => {
                    let _ = to_client_tx
                        .send(close(INTERNAL_ERROR, "room server went away"))
                        .await;
                    break;
                }
            }
        }
    };
    let client_side = pin!(client_side);
    let room_side = pin!(room_side);
    let mut writer = pin!(writer);
    // The socket lives until one reader ends; the other then gets CLOSE_GRACE to
    // deliver its close.
    let readers = async {
        match futures::future::select(client_side, room_side).await {
            futures::future::Either::Left((_, rest)) => {
                let _ = tokio::time::timeout(CLOSE_GRACE, rest).await;
            }
            futures::future::Either::Right((_, rest)) => {
                let _ = tokio::time::timeout(CLOSE_GRACE, rest).await;
            }
        }
    };
    let mut readers = pin!(readers);
    // Only the goodbye is bounded, never the conversation: once the readers are done
    // the writer gets CLOSE_GRACE to flush what they queued, and once the writer is
    // done (the client is gone) the readers get as long to tell the room.
    tokio::select! {
        () = &mut readers => {
            let _ = tokio::time::timeout(CLOSE_GRACE, &mut writer).await;
        }
        () = &mut writer => {
            let _ = tokio::time::timeout(CLOSE_GRACE, &mut readers).await;
        }
    }
}

fn to_upstream(m: ws::Message) -> tung::Message {
    match m {
        ws::Message::Text(t) => tung::Message::text(t.as_str()),
        ws::Message::Binary(b) => tung::Message::Binary(b),
        ws::Message::Ping(b) => tung::Message::Ping(b),
        ws::Message::Pong(b) => tung::Message::Pong(b),
        ws::Message::Close(f) => tung::Message::Close(f.map(|f| tung::protocol::CloseFrame {
            code: f.code.into(),
            reason: f.reason.as_str().into(),
        })),
    }
}

fn to_client(m: tung::Message) -> Option<ws::Message> {
    Some(match m {
        tung::Message::Text(t) => ws::Message::Text(t.as_str().into()),
        tung::Message::Binary(b) => ws::Message::Binary(b),
        tung::Message::Ping(b) => ws::Message::Ping(b),
        tung::Message::Pong(b) => ws::Message::Pong(b),
        tung::Message::Close(f) => ws::Message::Close(f.map(|f| ws::CloseFrame {
            code: f.code.into(),
            reason: f.reason.as_str().into(),
        })),
        // Raw frames only appear when writing; a reader never yields one.
        tung::Message::Frame(_) => return None,
    })
}
