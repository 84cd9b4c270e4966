//! The tokio shell around the room core: one task owns the [`Room`], reads inputs
//! from a bounded channel, runs its timers, and fans its outputs out to each
//! connection's bounded outbox.
//!
//! Slow-consumer protection lives here: a frame that does not fit in a
//! connection's outbox closes that connection (4012) instead of buffering more.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;

use crate::core::{ConnId, Identity, Input, Output, Room};
use crate::http::Occupancy;
use crate::media::shell::{recv_datagrams, MediaShell, DATAGRAM_BYTES, RECV_BATCH};
use crate::media::tcp::TcpEvent;
use crate::media::{MediaCore, MediaInput};
use crate::metrics::Metrics;
use crate::protocol::{close_code, close_reason_token, CloseReason};

/// Inputs queued for the room task. Readers wait when it is full, which pushes
/// back on clients over TCP; 4096 absorbs one frame from each of a few thousand
/// participants at once without anyone waiting.
pub(crate) const ACTOR_QUEUE: usize = 4096;

/// One frame queued for a connection's writer, stamped for the latency histogram.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub frame: Utf8Bytes,
    pub since: Instant,
}

/// Ask a connection's writer to close the socket.
#[derive(Debug, Clone)]
pub(crate) struct CloseCmd {
    pub code: u16,
    /// At most [`crate::protocol::MAX_CLOSE_REASON_BYTES`]; the core sees to it.
    pub reason: Cow<'static, str>,
    /// Send the frames already queued first (false for slow consumers).
    pub drain: bool,
}

/// The room task's end of one connection.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    pub outbox: mpsc::Sender<Outgoing>,
    pub close: mpsc::Sender<CloseCmd>,
}

/// What connection tasks and HTTP handlers send to the room task.
#[derive(Debug)]
pub(crate) enum ActorInput {
    Join {
        conn: ConnId,
        identity: Identity,
        resume_from: Option<u64>,
        handle: ConnHandle,
    },
    Core(Input),
}

/// Run the room until it ends; returns why it ended.
pub(crate) async fn run(
    mut room: Room,
    mut rx: mpsc::Receiver<(ActorInput, Instant)>,
    mut tcp: mpsc::Receiver<TcpEvent>,
    mut media: MediaShell,
    metrics: Metrics,
    occupancy: Arc<Occupancy>,
    shutdown: impl Future<Output = ()> + Send,
) -> CloseReason {
    let mut conns: HashMap<ConnId, ConnHandle> = HashMap::new();
    tokio::pin!(shutdown);
    let mut shutdown_seen = false;
    let socket = media.socket.clone();
    let mut bufs = vec![vec![0u8; DATAGRAM_BYTES]; RECV_BATCH];
    let mut got = Vec::with_capacity(RECV_BATCH);
    // False once the ICE-TCP listener is gone (or was never started).
    let mut tcp_open = true;
    loop {
        let deadline = room.poll_timeout();
        let media_deadline = media.sfu.poll_timeout();
        let far = Instant::now() + std::time::Duration::from_secs(86_400 * 365);
        let since = tokio::select! {
            res = recv_datagrams(&socket, &mut bufs, &mut got) => {
                match res {
                    Ok(()) => media.datagrams(&bufs, &got, &mut room),
                    // ICMP errors (port unreachable) surface here on some systems.
                    Err(e) => tracing::debug!(error = %e, "media socket"),
                }
                got.clear();
                Instant::now()
            }
            event = tcp.recv(), if tcp_open => {
                match event {
                    Some(event) => media.tcp_event(event, &mut room),
                    None => tcp_open = false,
                }
                Instant::now()
            }
            () = tokio::time::sleep_until(media_deadline.unwrap_or(far).into()), if media_deadline.is_some() => {
                media.handle(MediaInput::Timeout, &mut room);
                Instant::now()
            }
            msg = rx.recv() => {
                let (input, since) = msg.unwrap_or((
                    ActorInput::Core(Input::Close { reason: CloseReason::Shutdown }),
                    Instant::now(),
                ));
                room.handle_input(route(input, &mut conns), Instant::now());
                since
            }
            () = tokio::time::sleep_until(deadline.unwrap_or(far).into()), if deadline.is_some() => {
                let now = Instant::now();
                room.handle_timeout(now);
                now
            }
            () = &mut shutdown, if !shutdown_seen => {
                shutdown_seen = true;
                tracing::info!("shutdown requested; closing the room");
                let now = Instant::now();
                room.handle_input(Input::Close { reason: CloseReason::Shutdown }, now);
                now
            }
        };
        // Published before the outputs go out, so that anyone who has seen this
        // step's effect (a `welcome`, say) finds /status at least as fresh.
        occupancy.publish(room.seated(), room.locked());
        apply_outputs(&mut room, &mut conns, &mut media, since, &metrics);
        metrics.participants.set(room.connected() as i64);
        occupancy.publish(room.seated(), room.locked());
        if let Some(reason) = room.ended() {
            tracing::info!(?reason, "room ended");
            return reason;
        }
    }
}

/// Keep the shell's side of a connection (its handle) in step with the core.
fn route(input: ActorInput, conns: &mut HashMap<ConnId, ConnHandle>) -> Input {
    match input {
        ActorInput::Join {
            conn,
            identity,
            resume_from,
            handle,
        } => {
            conns.insert(conn, handle);
            Input::Join {
                conn,
                identity,
                resume_from,
            }
        }
        ActorInput::Core(input) => {
            if let Input::Disconnected { conn, .. } = &input {
                conns.remove(conn);
            }
            input
        }
    }
}

/// Drain the core's outputs into the connections. Connections whose outbox is full
/// are closed as slow consumers and fed back to the core as dropped.
fn apply_outputs(
    room: &mut Room,
    conns: &mut HashMap<ConnId, ConnHandle>,
    media: &mut MediaShell,
    since: Instant,
    metrics: &Metrics,
) {
    loop {
        let mut slow: Vec<ConnId> = Vec::new();
        while let Some(out) = room.poll_output() {
            match out {
                Output::Send { conn, frame } => {
                    if let Some(handle) = conns.get(&conn) {
                        let frame = Utf8Bytes::from(frame);
                        if !deliver(handle, frame, since) {
                            slow.push(conn);
                        }
                    }
                }
                Output::Broadcast { frame } => {
                    let frame = Utf8Bytes::from(frame);
                    for (conn, handle) in conns.iter() {
                        if !deliver(handle, frame.clone(), since) {
                            slow.push(*conn);
                        }
                    }
                }
                Output::Close { conn, code, reason } => {
                    if let Some(handle) = conns.remove(&conn) {
                        // The token only: a kick's text would be a label per kick.
                        let label = close_reason_token(&reason);
                        metrics.disconnects.with_label_values(&[label]).inc();
                        let cmd = CloseCmd {
                            code,
                            reason,
                            drain: true,
                        };
                        // Capacity 1 and only ever one close per handle: never full.
                        let _ = handle.close.try_send(cmd);
                    }
                }
                Output::Media(input) => media.handle(input, room),
                Output::Rejected { code } => {
                    metrics
                        .rejected_frames
                        .with_label_values(&[code.as_str()])
                        .inc();
                }
            }
        }
        if slow.is_empty() {
            return;
        }
        slow.sort();
        slow.dedup();
        for conn in slow {
            if let Some(handle) = conns.remove(&conn) {
                tracing::warn!(conn = conn.0, "slow consumer disconnected");
                metrics
                    .disconnects
                    .with_label_values(&["slow_consumer"])
                    .inc();
                let cmd = CloseCmd {
                    code: close_code::SLOW_CONSUMER,
                    reason: "slow_consumer".into(),
                    drain: false,
                };
                let _ = handle.close.try_send(cmd);
                let input = Input::Disconnected { conn, clean: false };
                room.handle_input(input, Instant::now());
            }
        }
    }
}

/// Queue a frame; false when the outbox is full (a slow consumer).
fn deliver(handle: &ConnHandle, frame: Utf8Bytes, since: Instant) -> bool {
    match handle.outbox.try_send(Outgoing { frame, since }) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => false,
        // The connection task has ended; its `Disconnected` input is on its way.
        Err(mpsc::error::TrySendError::Closed(_)) => true,
    }
}
