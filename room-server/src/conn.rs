//! One WebSocket connection: waits for `hello`, then a reader that parses frames
//! into room inputs and a writer that drains the connection's bounded outbox.
//!
//! Parsing happens here, off the room task, so a burst of malformed frames costs
//! the sender's connection task, not the room.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::actor::{ActorInput, CloseCmd, ConnHandle, Outgoing};
use crate::core::{ConnId, Identity, Input};
use crate::http::AppState;
use crate::protocol::{
    close_code, parse_client_message, ClientMessage, ErrorCode, PROTOCOL_VERSION,
};

/// How long we wait for the client's answer to our close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// Frames written per flush when the outbox has a backlog: batches syscalls under
/// load while keeping one socket from hogging the writer for long.
const WRITE_BATCH: usize = 64;

/// How the reading side ended.
enum ReadEnd {
    /// The client closed with 1000: leave at once.
    Clean,
    /// Anything else: the reconnect grace period starts.
    Dropped,
    /// A frame over the hard transport limit.
    TooBig,
    /// Nothing arrived (not even a pong) within the heartbeat's silence bound.
    Silent,
}

/// Close a socket that was refused admission.
pub(crate) async fn refuse(socket: WebSocket, code: u16, reason: &'static str) {
    let (mut sink, mut stream) = socket.split();
    let _ = sink.send(close_message(code, reason.into())).await;
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while stream.next().await.is_some() {}
    })
    .await;
}

fn close_message(code: u16, reason: Cow<'static, str>) -> Message {
    let reason = match reason {
        Cow::Borrowed(fixed) => Utf8Bytes::from_static(fixed),
        Cow::Owned(text) => Utf8Bytes::from(text),
    };
    Message::Close(Some(CloseFrame { code, reason }))
}

/// Serve one admitted socket until it closes.
pub(crate) async fn serve(socket: WebSocket, state: AppState, identity: Identity) {
    let (sink, mut stream) = socket.split();
    let resume_from = match await_hello(&mut stream, &state).await {
        Ok(resume_from) => resume_from,
        Err(Some((code, reason))) => return refuse(reunite(sink, stream), code, reason).await,
        Err(None) => return,
    };
    let conn = state.next_conn();
    let span = tracing::info_span!("conn", conn = conn.0, participant = %identity.id);
    run_joined(sink, stream, state, conn, identity, resume_from)
        .instrument(span)
        .await;
}

/// Wait for a valid `hello`; `Err(None)` when the client went away first. A room
/// that ends meanwhile closes the socket with `room_closed`, as for everyone else.
async fn await_hello(
    stream: &mut SplitStream<WebSocket>,
    state: &AppState,
) -> Result<Option<u64>, Option<(u16, &'static str)>> {
    let hello_required = Some((close_code::HELLO_REQUIRED, "hello_required"));
    let mut over = state.over();
    let first = tokio::select! {
        first = tokio::time::timeout(state.hello_timeout(), stream.next()) => first,
        _ = over.wait_for(|over| *over) => return Err(Some((close_code::NORMAL, "room_closed"))),
    };
    match first {
        Ok(Some(Ok(Message::Text(text)))) => match parse_client_message(&text) {
            Ok(ClientMessage::Hello {
                protocol_version,
                resume_from,
            }) if protocol_version == PROTOCOL_VERSION => Ok(resume_from),
            Ok(ClientMessage::Hello { .. }) => Err(Some((
                close_code::UNSUPPORTED_VERSION,
                "unsupported_version",
            ))),
            _ => Err(hello_required),
        },
        Ok(Some(Ok(Message::Close(_))) | Some(Err(_)) | None) => Err(None),
        _ => Err(hello_required),
    }
}

async fn run_joined(
    sink: SplitSink<WebSocket, Message>,
    mut stream: SplitStream<WebSocket>,
    state: AppState,
    conn: ConnId,
    identity: Identity,
    resume_from: Option<u64>,
) {
    let (out_tx, out_rx) = mpsc::channel(state.outbox_frames());
    // Capacity 1: a connection is closed once.
    let (close_tx, close_rx) = mpsc::channel(1);
    let handle = ConnHandle {
        outbox: out_tx,
        close: close_tx.clone(),
    };
    let join = ActorInput::Join {
        conn,
        identity,
        resume_from,
        handle,
    };
    if state.actor().send((join, Instant::now())).await.is_err() {
        return refuse(reunite(sink, stream), close_code::NORMAL, "room_closed").await;
    }

    let writer = write_loop(sink, out_rx, close_rx, &state);
    let reader = read_loop(&mut stream, conn, &state);
    tokio::pin!(writer, reader);
    let end = tokio::select! {
        end = &mut reader => end,
        () = &mut writer => {
            // We closed; give the client a moment to answer the close frame.
            let _ = tokio::time::timeout(CLOSE_LINGER, &mut reader).await;
            return;
        }
    };
    let clean = match end {
        ReadEnd::Clean => true,
        ReadEnd::Dropped => false,
        ReadEnd::TooBig | ReadEnd::Silent => {
            let (code, reason) = match end {
                ReadEnd::TooBig => (close_code::TOO_BIG, "frame_too_large"),
                _ => (close_code::HEARTBEAT_TIMEOUT, "heartbeat_timeout"),
            };
            // Not drained: the peer is not reading anyway. The wait is bounded
            // because a dead peer's full TCP window can stall the writer.
            let cmd = CloseCmd {
                code,
                reason: reason.into(),
                drain: false,
            };
            let _ = close_tx.try_send(cmd);
            let _ = tokio::time::timeout(CLOSE_LINGER, &mut writer).await;
            false
        }
    };
    tracing::debug!(clean, "connection ended");
    let input = ActorInput::Core(Input::Disconnected { conn, clean });
    let _ = state.actor().send((input, Instant::now())).await;
}

fn reunite(sink: SplitSink<WebSocket, Message>, stream: SplitStream<WebSocket>) -> WebSocket {
    sink.reunite(stream).expect("halves of the same socket")
}

async fn read_loop(stream: &mut SplitStream<WebSocket>, conn: ConnId, state: &AppState) -> ReadEnd {
    let metrics = state.metrics();
    let max = state.max_frame_bytes();
    let silence = state.heartbeat().silence;
    // One timer, moved only when it fires: cheaper than re-arming it per frame.
    let mut last_heard = Instant::now();
    let deadline = tokio::time::sleep(silence);
    tokio::pin!(deadline);
    loop {
        let msg = tokio::select! {
            biased;
            msg = stream.next() => msg,
            () = &mut deadline => {
                let quiet_until = last_heard + silence;
                if Instant::now() >= quiet_until {
                    tracing::debug!(?silence, "peer silent; treating it as dropped");
                    return ReadEnd::Silent;
                }
                deadline.as_mut().reset(quiet_until.into());
                continue;
            }
        };
        let Some(msg) = msg else { break };
        // Any frame proves the peer alive: pongs, but also chat in a busy room.
        last_heard = Instant::now();
        let msg = match msg {
            Ok(msg) => msg,
            Err(err) => {
                let too_big = matches!(
                    err.into_inner()
                        .downcast_ref::<tokio_tungstenite::tungstenite::Error>(),
                    Some(tokio_tungstenite::tungstenite::Error::Capacity(_))
                );
                return if too_big {
                    ReadEnd::TooBig
                } else {
                    ReadEnd::Dropped
                };
            }
        };
        let input = match msg {
            Message::Text(text) => {
                metrics.messages_in.inc();
                metrics.bytes_in.inc_by(text.len() as u64);
                text_input(conn, &text, max)
            }
            Message::Binary(bytes) => {
                metrics.messages_in.inc();
                metrics.bytes_in.inc_by(bytes.len() as u64);
                Input::Rejected {
                    conn,
                    code: ErrorCode::Malformed,
                    message: "binary frames are not part of the protocol".into(),
                }
            }
            Message::Close(frame) => {
                let clean = frame.is_some_and(|f| f.code == close_code::NORMAL);
                return if clean {
                    ReadEnd::Clean
                } else {
                    ReadEnd::Dropped
                };
            }
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        let input = ActorInput::Core(input);
        if state.actor().send((input, Instant::now())).await.is_err() {
            return ReadEnd::Dropped;
        }
    }
    ReadEnd::Dropped
}

/// What one text frame means to the room: a parsed message, or a refusal the
/// core answers with an `error`. Pure, so the core's property tests use it too.
///
/// Frames are held to `max_frame_bytes`, except SDP (`offer`, `answer`), which
/// may reach [`max_sdp_bytes`]: a browser's SDP carries every m-line of the
/// session, 1–2 KB each, so a meeting of a few people outgrows a chat frame.
pub(crate) fn text_input(conn: ConnId, text: &str, max_frame_bytes: usize) -> Input {
    let too_big = |limit: usize| Input::Rejected {
        conn,
        code: ErrorCode::FrameTooLarge,
        message: format!("frame of {} bytes; the limit is {limit}", text.len()),
    };
    let oversize = text.len() > max_frame_bytes;
    if text.len() > max_sdp_bytes(max_frame_bytes) {
        return too_big(max_sdp_bytes(max_frame_bytes));
    }
    match parse_client_message(text) {
        Ok(msg @ (ClientMessage::Offer { .. } | ClientMessage::Answer { .. })) => {
            Input::Message { conn, msg }
        }
        _ if oversize => too_big(max_frame_bytes),
        Ok(msg) => Input::Message { conn, msg },
        Err(e) => Input::Rejected {
            conn,
            code: e.code,
            message: e.message,
        },
    }
}

/// The limit on an `offer` or `answer` frame: four times `max_frame_bytes`, the
/// most the socket reads at all (64 KiB by default, some 30 m-lines).
pub(crate) fn max_sdp_bytes(max_frame_bytes: usize) -> usize {
    max_frame_bytes.saturating_mul(4).max(1024)
}

/// Write queued frames in batches until told to close or the room lets go.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut outbox: mpsc::Receiver<Outgoing>,
    mut close: mpsc::Receiver<CloseCmd>,
    state: &AppState,
) {
    let metrics = state.metrics();
    let mut batch: Vec<Instant> = Vec::with_capacity(WRITE_BATCH);
    let every = state.heartbeat().ping_interval;
    let mut ping = tokio::time::interval_at((Instant::now() + every).into(), every);
    // After a stall, one ping is enough; a burst of catch-up pings is not.
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            cmd = close.recv() => {
                let Some(cmd) = cmd else { return };
                if cmd.drain {
                    while let Ok(out) = outbox.try_recv() {
                        metrics.messages_out.inc();
                        metrics.bytes_out.inc_by(out.frame.len() as u64);
                        if sink.feed(Message::Text(out.frame)).await.is_err() {
                            return;
                        }
                    }
                }
                let _ = sink.send(close_message(cmd.code, cmd.reason)).await;
                return;
            }
            _ = ping.tick() => {
                // Pings keep proxies' idle timers from cutting a quiet room and
                // make a dead peer show up as silence on the reading side.
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            out = outbox.recv() => {
                let Some(mut out) = out else {
                    // The room dropped this connection without a close: it is over.
                    let _ = sink.send(close_message(close_code::NORMAL, "room_closed".into())).await;
                    return;
                };
                batch.clear();
                let mut bytes = 0u64;
                loop {
                    bytes += out.frame.len() as u64;
                    batch.push(out.since);
                    if sink.feed(Message::Text(out.frame)).await.is_err() {
                        return;
                    }
                    if batch.len() >= WRITE_BATCH {
                        break;
                    }
                    match outbox.try_recv() {
                        Ok(next) => out = next,
                        Err(_) => break,
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
                // Shared counters once per batch: fewer contended atomics under load.
                metrics.messages_out.inc_by(batch.len() as u64);
                metrics.bytes_out.inc_by(bytes);
                for since in &batch {
                    metrics.fanout_latency.observe(since.elapsed().as_secs_f64());
                }
            }
        }
    }
}
