//! The sans-IO room core: one owner of all room state.
//!
//! The shell ([`crate::actor`]) feeds [`Input`]s with the current time and drains
//! [`Output`]s (frames for one connection, frames for everyone, closes). The core
//! owns no socket, task or clock: time comes in as an `Instant`, so tests drive
//! grace periods, typing expiry, idle and lifetime ends faster than real time.
//!
//! Membership: a participant is keyed by the token's `sub`. They stay a member
//! while connected and for `reconnect_grace` after a drop; a reconnect within it
//! keeps their identity and can resume from a sequence number. Their standing
//! (mute, rate limits) is kept by user id for the room's life, so leaving and
//! joining again resets neither (see [`standing`]).

mod backlog;
mod bucket;
mod commands;
mod membership;
mod signalling;
mod standing;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use rendezvous_api::Grants;

use crate::media::{MediaInput, MediaOutput};
use crate::protocol::{
    close_code, CloseReason, Envelope, ErrorCode, LeaveReason, Sending, ServerEvent,
};
pub use backlog::{Backlog, ReplayLog};
pub use bucket::TokenBucket;
pub use standing::MAX_DEPARTED;
use standing::{Departed, Rates, Standing};

/// Banned (kicked) identities remembered per room. A room holds at most a few
/// hundred people; this bound only stops a token-minting abuser from growing it.
const MAX_BANNED: usize = 10_000;

/// The pure core's configuration (a subset of [`crate::Args`]).
#[derive(Debug, Clone)]
pub struct RoomConfig {
    pub room_id: String,
    pub max_participants: usize,
    pub idle_timeout: Duration,
    pub max_duration: Duration,
    pub backlog_messages: usize,
    pub backlog_bytes: usize,
    pub replay_events: usize,
    pub replay_bytes: usize,
    pub rate_limit_messages: u32,
    pub rate_limit_window: Duration,
    /// Joins (every `hello`, reconnects included) per user per `join_rate_window`.
    pub join_rate_limit: u32,
    pub join_rate_window: Duration,
    pub max_frame_bytes: usize,
    pub max_text_chars: usize,
    pub reconnect_grace: Duration,
    pub typing_timeout: Duration,
}

/// One WebSocket connection, numbered by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Who a verified room token says the caller is.
#[derive(Debug, Clone)]
pub struct Identity {
    pub id: String,
    pub name: String,
    pub grants: Grants,
}

/// What happens to the room.
#[derive(Debug)]
pub enum Input {
    /// A connection sent `hello`.
    Join {
        conn: ConnId,
        identity: Identity,
        resume_from: Option<u64>,
    },
    /// A parsed frame from a joined connection.
    Message {
        conn: ConnId,
        msg: crate::protocol::ClientMessage,
    },
    /// A frame that could not be parsed or was too large.
    Rejected {
        conn: ConnId,
        code: ErrorCode,
        message: String,
    },
    /// The connection is gone; `clean` when the client closed normally (1000).
    Disconnected { conn: ConnId, clean: bool },
    /// End the room (`POST /close`, shutdown).
    Close { reason: CloseReason },
    /// A signalling event of the media core for one participant (never a
    /// datagram: the shell sends those itself).
    Media(MediaOutput),
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send a serialized event to one connection.
    Send { conn: ConnId, frame: String },
    /// Send a serialized event to every joined connection.
    Broadcast { frame: String },
    /// Close a connection after the frames already queued for it. `reason` starts
    /// with the close code's stable token (`kicked`, `room_full`, ...); only a kick
    /// appends `: ` and the moderator's words (see [`crate::protocol::close_reason_token`]).
    Close {
        conn: ConnId,
        code: u16,
        reason: Cow<'static, str>,
    },
    /// An `error` event was sent (for the rejected-frames metric).
    Rejected { code: ErrorCode },
    /// Hand a signalling request (or the end of a participant's media session) to
    /// the media core.
    Media(MediaInput),
}

#[derive(Debug)]
struct Member {
    name: String,
    grants: Grants,
    /// Join order, so participant lists are stable.
    order: u64,
    standing: Standing,
    conn: Option<ConnId>,
    grace_until: Option<Instant>,
    typing_until: Option<Instant>,
    read_up_to: u64,
    /// They sent an `offer`: the media core holds a session for them.
    media: bool,
    /// What they said they send (`media_state`); all false without a session.
    sending: Sending,
}

/// The state of one room.
#[derive(Debug)]
pub struct Room {
    cfg: RoomConfig,
    started: Instant,
    started_unix_ms: u64,
    seq: u64,
    joins: u64,
    members: HashMap<String, Member>,
    conns: HashMap<ConnId, String>,
    banned: HashSet<String>,
    departed: Departed,
    locked: bool,
    backlog: Backlog,
    replay: ReplayLog,
    /// When the last connection left (or the room started empty).
    idle_since: Option<Instant>,
    ended: Option<CloseReason>,
    out: VecDeque<Output>,
}

impl Room {
    /// A new, empty room; `unix_ms` is the wall-clock time at `now`.
    pub fn new(cfg: RoomConfig, now: Instant, unix_ms: u64) -> Self {
        Self {
            backlog: Backlog::new(cfg.backlog_messages, cfg.backlog_bytes),
            replay: ReplayLog::new(cfg.replay_events, cfg.replay_bytes),
            cfg,
            started: now,
            started_unix_ms: unix_ms,
            seq: 0,
            joins: 0,
            members: HashMap::new(),
            conns: HashMap::new(),
            banned: HashSet::new(),
            departed: Departed::new(MAX_DEPARTED),
            locked: false,
            idle_since: Some(now),
            ended: None,
            out: VecDeque::new(),
        }
    }

    /// Why the room ended, once it has.
    pub fn ended(&self) -> Option<CloseReason> {
        self.ended
    }

    /// Participants holding a seat (connected, or within their reconnect grace).
    pub fn seated(&self) -> usize {
        self.members.len()
    }

    /// True while moderators keep new participants out.
    pub fn locked(&self) -> bool {
        self.locked
    }

    /// Participants with a live connection.
    pub fn connected(&self) -> usize {
        self.conns.len()
    }

    /// The next output for the shell.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Feed one input.
    pub fn handle_input(&mut self, input: Input, now: Instant) {
        if self.ended.is_some() {
            if let Input::Join { conn, .. } = input {
                self.close(conn, close_code::NORMAL, "room_closed");
            }
            return;
        }
        match input {
            Input::Join {
                conn,
                identity,
                resume_from,
            } => self.join(now, conn, identity, resume_from),
            Input::Message { conn, msg } => self.command(now, conn, msg),
            Input::Rejected {
                conn,
                code,
                message,
            } => self.rejected(now, conn, code, message),
            Input::Disconnected { conn, clean } => self.disconnected(now, conn, clean),
            Input::Close { reason } => self.end(now, reason),
            Input::Media(out) => self.media_event(now, out),
        }
    }

    /// When [`Room::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.ended.is_some() {
            return None;
        }
        let mut next = self.started + self.cfg.max_duration;
        if let Some(idle) = self.idle_since {
            next = next.min(idle + self.cfg.idle_timeout);
        }
        for m in self.members.values() {
            for t in [m.grace_until, m.typing_until].into_iter().flatten() {
                next = next.min(t);
            }
        }
        Some(next)
    }

    /// Run the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ended.is_some() {
            return;
        }
        if now >= self.started + self.cfg.max_duration {
            return self.end(now, CloseReason::Lifetime);
        }
        if self
            .idle_since
            .is_some_and(|t| now >= t + self.cfg.idle_timeout)
        {
            return self.end(now, CloseReason::Idle);
        }
        let mut expired: Vec<String> = Vec::new();
        let mut stopped: Vec<String> = Vec::new();
        for (id, m) in &mut self.members {
            if m.grace_until.is_some_and(|t| now >= t) {
                expired.push(id.clone());
            } else if m.typing_until.is_some_and(|t| now >= t) {
                m.typing_until = None;
                stopped.push(id.clone());
            }
        }
        stopped.sort();
        expired.sort();
        for id in stopped {
            self.broadcast_ephemeral(
                now,
                ServerEvent::Typing {
                    participant_id: id,
                    typing: false,
                },
            );
        }
        for id in expired {
            self.forget(&id);
            self.broadcast(
                now,
                ServerEvent::Left {
                    participant_id: id,
                    reason: LeaveReason::Timeout,
                },
            );
        }
    }

    // === impl Room: emitting ===

    fn envelope(&mut self, now: Instant, event: ServerEvent) -> Envelope {
        self.seq += 1;
        Envelope {
            seq: self.seq,
            ts: self.unix_ms(now),
            event,
        }
    }

    /// Wall-clock milliseconds at `now`, derived from the injected start time.
    fn unix_ms(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.started).as_millis() as u64;
        self.started_unix_ms + elapsed
    }

    /// Send to one connection (not logged for resume).
    fn send(&mut self, now: Instant, conn: ConnId, event: ServerEvent) {
        let frame = self.envelope(now, event).to_json();
        self.out.push_back(Output::Send { conn, frame });
    }

    /// Send to everyone and keep it for resuming clients.
    fn broadcast(&mut self, now: Instant, event: ServerEvent) -> u64 {
        let env = self.envelope(now, event);
        let seq = env.seq;
        let frame = env.to_json();
        self.replay.push(env, frame.len());
        self.out.push_back(Output::Broadcast { frame });
        seq
    }

    /// Send to everyone without logging it (typing: stale on replay).
    fn broadcast_ephemeral(&mut self, now: Instant, event: ServerEvent) {
        let frame = self.envelope(now, event).to_json();
        self.out.push_back(Output::Broadcast { frame });
    }

    fn close(&mut self, conn: ConnId, code: u16, reason: impl Into<Cow<'static, str>>) {
        let reason = reason.into();
        self.out.push_back(Output::Close { conn, code, reason });
    }

    fn error(
        &mut self,
        now: Instant,
        conn: ConnId,
        code: ErrorCode,
        message: impl Into<String>,
        client_id: Option<String>,
    ) {
        self.out.push_back(Output::Rejected { code });
        let event = ServerEvent::Error {
            code,
            message: message.into(),
            client_id,
        };
        self.send(now, conn, event);
    }

    /// Remove a member, keeping their standing for a later return.
    fn forget(&mut self, id: &str) -> Option<Member> {
        let member = self.members.remove(id)?;
        self.departed
            .remember(id.to_owned(), member.standing.clone());
        Some(member)
    }

    fn rates(&self) -> Rates {
        Rates {
            messages: self.cfg.rate_limit_messages,
            window: self.cfg.rate_limit_window,
            joins: self.cfg.join_rate_limit,
            joins_window: self.cfg.join_rate_window,
        }
    }

    /// Every refused frame gets exactly one `error`, like a refused command: the
    /// rate limit comes first, so a flood of garbage is told `rate_limited`. The
    /// answers go to the sender's own bounded outbox, so a flooder that does not
    /// read them is cut off as a slow consumer rather than amplified.
    fn rejected(&mut self, now: Instant, conn: ConnId, code: ErrorCode, message: String) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        if self.take_other_token(now, conn) {
            self.error(now, conn, code, message, None);
        } else {
            let text = format!(
                "rate limit exceeded; a `{}` frame was dropped",
                code.as_str()
            );
            self.error(now, conn, ErrorCode::RateLimited, text, None);
        }
    }

    fn take_other_token(&mut self, now: Instant, conn: ConnId) -> bool {
        let Some(id) = self.conns.get(&conn) else {
            return false;
        };
        self.members
            .get_mut(id)
            .is_some_and(|m| m.standing.other.try_take(now))
    }
}
