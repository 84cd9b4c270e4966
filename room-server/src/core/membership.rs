//! Membership: joining (admission, welcome, resume), drops with a grace period,
//! leaving, and the end of the room; plus the views a `welcome` is built from.

use std::borrow::Cow;
use std::time::Instant;

use super::{ConnId, Identity, Member, Output, Room, Standing};
use crate::protocol::{
    close_code, CloseReason, LeaveReason, Limits, Participant, Receipt, Sending, ServerEvent,
    Welcome, PROTOCOL_VERSION,
};

const JOIN_RATE_LIMITED: (u16, &str) = (close_code::JOIN_RATE_LIMITED, "join_rate_limited");

impl Room {
    pub(super) fn join(
        &mut self,
        now: Instant,
        conn: ConnId,
        who: Identity,
        resume_from: Option<u64>,
    ) {
        let known = self.members.contains_key(&who.id);
        let admitted = if known {
            self.admit_returning(now, &who.id)
        } else {
            self.admit_new(now, &who)
        };
        if let Err((code, reason)) = admitted {
            return self.close(conn, code, reason);
        }
        let old = self.members.get_mut(&who.id).and_then(|m| m.conn.take());
        if let Some(old) = old {
            self.conns.remove(&old);
            // The new connection negotiates a new media session.
            self.end_media(now, &who.id);
            self.out.push_back(Output::Close {
                conn: old,
                code: close_code::REPLACED,
                reason: "replaced".into(),
            });
        }
        let member = self.members.get_mut(&who.id).expect("admitted above");
        member.conn = Some(conn);
        member.grace_until = None;
        member.name = who.name;
        member.grants = who.grants;
        self.conns.insert(conn, who.id.clone());
        self.idle_since = None;

        // Only a returning member can resume; a stranger gets the full state.
        let resume_from = resume_from.filter(|_| known);
        let welcome = self.welcome(&who.id, resume_from);
        self.send(now, conn, ServerEvent::Welcome(Box::new(welcome)));
        let event = if known {
            ServerEvent::Reconnected {
                participant_id: who.id,
            }
        } else {
            ServerEvent::Joined {
                participant: self.participant(&who.id).expect("member exists"),
            }
        };
        self.broadcast(now, event);
    }

    /// A member (connected or within their grace) connecting again: only the join
    /// rate limit applies, checked before the old connection is replaced.
    fn admit_returning(&mut self, now: Instant, id: &str) -> Result<(), (u16, &'static str)> {
        let member = self.members.get_mut(id).expect("known member");
        if member.standing.joins.try_take(now) {
            Ok(())
        } else {
            Err(JOIN_RATE_LIMITED)
        }
    }

    /// Admit someone new (ban, join rate, lock and cap permitting) as a member
    /// without a connection, with the standing they left with if remembered.
    fn admit_new(&mut self, now: Instant, who: &Identity) -> Result<(), (u16, &'static str)> {
        if self.banned.contains(&who.id) {
            return Err((close_code::BANNED, "banned"));
        }
        // A refused attempt spends a token too: hammering does not pay.
        let remembered = self.departed.get_mut(&who.id);
        if remembered.is_some_and(|s| !s.joins.try_take(now)) {
            return Err(JOIN_RATE_LIMITED);
        }
        if self.locked {
            return Err((close_code::ROOM_LOCKED, "room_locked"));
        } else if self.members.len() >= self.cfg.max_participants {
            return Err((close_code::ROOM_FULL, "room_full"));
        }
        let standing = match self.departed.take(&who.id) {
            Some(standing) => standing,
            None => {
                let mut fresh = Standing::fresh(self.rates(), now);
                fresh.joins.try_take(now);
                fresh
            }
        };
        self.joins += 1;
        let member = Member {
            name: who.name.clone(),
            grants: who.grants,
            order: self.joins,
            standing,
            conn: None,
            grace_until: None,
            typing_until: None,
            read_up_to: 0,
            media: false,
            sending: Sending::default(),
        };
        self.members.insert(who.id.clone(), member);
        Ok(())
    }

    /// The state a (re)joining member starts from: events since `resume_from`
    /// when they are all still held, otherwise the backlog.
    fn welcome(&self, id: &str, resume_from: Option<u64>) -> Welcome {
        let missed = resume_from
            .filter(|seq| *seq <= self.seq)
            .and_then(|seq| self.replay.since(seq));
        Welcome {
            protocol_version: PROTOCOL_VERSION,
            room_id: self.cfg.room_id.clone(),
            you: id.to_owned(),
            participants: self.participants(),
            backlog: if missed.is_some() {
                Vec::new()
            } else {
                self.backlog.snapshot()
            },
            receipts: self.receipts(),
            locked: self.locked,
            resumed: missed.is_some(),
            missed: missed.unwrap_or_default(),
            limits: self.limits(),
        }
    }

    pub(super) fn disconnected(&mut self, now: Instant, conn: ConnId, clean: bool) {
        let Some(id) = self.conns.remove(&conn) else {
            return;
        };
        // Media sessions do not survive the signalling connection: a returning
        // participant offers again.
        self.end_media(now, &id);
        if self.conns.is_empty() {
            self.idle_since = Some(now);
        }
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        member.conn = None;
        let was_typing = member.typing_until.take().is_some();
        if clean {
            self.leave(now, &id);
            return;
        }
        member.grace_until = Some(now + self.cfg.reconnect_grace);
        if was_typing {
            self.broadcast_ephemeral(
                now,
                ServerEvent::Typing {
                    participant_id: id.clone(),
                    typing: false,
                },
            );
        }
        self.broadcast(now, ServerEvent::Disconnected { participant_id: id });
    }

    /// A member leaves of their own accord (`leave`, or a close with 1000).
    pub(super) fn leave(&mut self, now: Instant, id: &str) {
        let close = (close_code::NORMAL, Cow::Borrowed("left"));
        self.remove(now, id, LeaveReason::Left, close);
    }

    /// Remove a member for good, close their connection (if any) with `close`,
    /// and tell everyone why they left.
    pub(super) fn remove(
        &mut self,
        now: Instant,
        id: &str,
        reason: LeaveReason,
        (code, why): (u16, Cow<'static, str>),
    ) {
        // Before `forget`: it needs the member.
        self.drop_media_session(id);
        if let Some(member) = self.forget(id) {
            if let Some(conn) = member.conn {
                self.conns.remove(&conn);
                if self.conns.is_empty() {
                    self.idle_since = Some(now);
                }
                self.close(conn, code, why);
            }
            self.broadcast(
                now,
                ServerEvent::Left {
                    participant_id: id.to_owned(),
                    reason,
                },
            );
        }
    }

    /// Say goodbye to everyone and stop.
    pub(super) fn end(&mut self, now: Instant, reason: CloseReason) {
        if self.ended.is_some() {
            return;
        }
        self.broadcast(now, ServerEvent::RoomClosed { reason });
        let mut conns: Vec<ConnId> = self.conns.drain().map(|(c, _)| c).collect();
        conns.sort();
        for conn in conns {
            self.close(conn, close_code::NORMAL, "room_closed");
        }
        self.ended = Some(reason);
    }

    // === impl Room: views ===

    pub(super) fn participant(&self, id: &str) -> Option<Participant> {
        self.members.get(id).map(|m| Participant {
            id: id.to_owned(),
            name: m.name.clone(),
            moderator: m.grants.moderate,
            muted: m.standing.muted,
            connected: m.conn.is_some(),
            sending: m.sending,
            audio_muted: m.standing.audio_muted,
            video_muted: m.standing.video_muted,
        })
    }

    fn participants(&self) -> Vec<Participant> {
        let mut ids: Vec<(&String, u64)> =
            self.members.iter().map(|(id, m)| (id, m.order)).collect();
        ids.sort_by_key(|(_, order)| *order);
        ids.into_iter()
            .filter_map(|(id, _)| self.participant(id))
            .collect()
    }

    fn receipts(&self) -> Vec<Receipt> {
        let mut receipts: Vec<Receipt> = self
            .members
            .iter()
            .filter(|(_, m)| m.read_up_to > 0)
            .map(|(id, m)| Receipt {
                participant_id: id.clone(),
                up_to: m.read_up_to,
            })
            .collect();
        receipts.sort_by(|a, b| a.participant_id.cmp(&b.participant_id));
        receipts
    }

    fn limits(&self) -> Limits {
        Limits {
            max_text_chars: self.cfg.max_text_chars,
            max_frame_bytes: self.cfg.max_frame_bytes,
            max_sdp_bytes: crate::conn::max_sdp_bytes(self.cfg.max_frame_bytes),
            rate_limit_messages: self.cfg.rate_limit_messages,
            rate_limit_window_ms: self.cfg.rate_limit_window.as_millis() as u64,
        }
    }
}
