//! `/rooms/{id}/ws`: the browser's one WebSocket, forwarded to the room server.
//!
//! The router does not read the room protocol: it copies text and binary frames both
//! ways and passes close frames through with their codes and reasons, so a client
//! sees exactly what the room said (`room_closed`, 4010 kicked, ...). Pings stay per
//! hop. When one side ends, the other gets a short grace to flush its close.

use std::pin::pin;
use std::time::Duration;

use axum::extract::ws::{self, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use futures::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::{self as tung, client::IntoClientRequest as _};

use crate::error::{Error, Result};
use crate::Ctx;

/// Largest frame forwarded; room servers enforce their own, smaller limits.
const MAX_FRAME: usize = 1 << 20;
/// Time the other direction gets to deliver its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Close code when the room server cannot be reached (RFC 6455: 1011 internal error).
const UPSTREAM_UNREACHABLE: u16 = 1011;

pub async fn ws(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    let endpoint = {
        let reg = ctx.registry.lock().expect("registry lock");
        reg.get(&id)?.endpoint.clone().ok_or(Error::RoomNotReady)?
    };
    let url = match query {
        Some(q) => format!("ws://{endpoint}/ws?{q}"),
        None => format!("ws://{endpoint}/ws"),
    };
    let auth = headers.get(header::AUTHORIZATION).cloned();
    Ok(upgrade
        .max_message_size(MAX_FRAME)
        .on_upgrade(move |client| pump(client, url, auth)))
}

async fn pump(mut client: WebSocket, url: String, auth: Option<axum::http::HeaderValue>) {
    let upstream = async {
        let mut req = url.as_str().into_client_request()?;
        if let Some(a) = auth {
            req.headers_mut().insert(header::AUTHORIZATION, a);
        }
        tokio_tungstenite::connect_async(req).await
    };
    let upstream = match upstream.await {
        Ok((s, _)) => s,
        Err(e) => {
            tracing::warn!(error = %e, "room server unreachable");
            let frame = ws::CloseFrame {
                code: UPSTREAM_UNREACHABLE,
                reason: "room server unreachable".into(),
            };
            let _ = client.send(ws::Message::Close(Some(frame))).await;
            return;
        }
    };
    let (mut c_tx, mut c_rx) = client.split();
    let (mut u_tx, mut u_rx) = upstream.split();
    let to_room = pin!(async {
        while let Some(Ok(m)) = c_rx.next().await {
            let Some(m) = to_upstream(m) else { continue };
            let close = m.is_close();
            if u_tx.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = u_tx.close().await;
    });
    let to_client = pin!(async {
        while let Some(Ok(m)) = u_rx.next().await {
            let Some(m) = to_client(m) else { continue };
            let close = matches!(m, ws::Message::Close(_));
            if c_tx.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = c_tx.close().await;
    });
    match futures::future::select(to_room, to_client).await {
        futures::future::Either::Left((_, rest)) => {
            let _ = tokio::time::timeout(CLOSE_GRACE, rest).await;
        }
        futures::future::Either::Right((_, rest)) => {
            let _ = tokio::time::timeout(CLOSE_GRACE, rest).await;
        }
    }
}

fn to_upstream(m: ws::Message) -> Option<tung::Message> {
    Some(match m {
        ws::Message::Text(t) => tung::Message::text(t.as_str()),
        ws::Message::Binary(b) => tung::Message::Binary(b),
        ws::Message::Close(f) => tung::Message::Close(f.map(|f| tung::protocol::CloseFrame {
            code: f.code.into(),
            reason: f.reason.as_str().into(),
        })),
        ws::Message::Ping(_) | ws::Message::Pong(_) => return None,
    })
}

fn to_client(m: tung::Message) -> Option<ws::Message> {
    Some(match m {
        tung::Message::Text(t) => ws::Message::Text(t.as_str().into()),
        tung::Message::Binary(b) => ws::Message::Binary(b),
        tung::Message::Close(f) => ws::Message::Close(f.map(|f| ws::CloseFrame {
            code: f.code.into(),
            reason: f.reason.as_str().into(),
        })),
        tung::Message::Ping(_) | tung::Message::Pong(_) | tung::Message::Frame(_) => return None,
    })
}
