//! What the core does with each client command: chat, typing, receipts, moderation.
//!
//! Every refusal is an `error` event to the sender; none closes the connection.

use std::borrow::Cow;
use std::time::Instant;

use super::backlog::apply_reaction;
use super::{ConnId, LeaveReason, Room, MAX_BANNED};
use crate::protocol::{
    close_code, ChatMessage, ClientMessage, CloseReason, ErrorCode, Sending, ServerEvent,
    MAX_CLOSE_REASON_BYTES, MAX_KICK_REASON_CHARS,
};

/// Distinct emoji per message: enough for any real conversation, small enough
/// that reactions cannot outgrow the message.
const MAX_REACTION_KINDS: usize = 32;
/// Longest emoji string (a ZWJ family sequence is ~25 bytes).
const MAX_EMOJI_BYTES: usize = 32;
/// Longest `clientId` echoed back.
const MAX_CLIENT_ID_CHARS: usize = 64;

impl Room {
    pub(super) fn command(&mut self, now: Instant, conn: ConnId, msg: ClientMessage) {
        let Some(id) = self.conns.get(&conn).cloned() else {
            return;
        };
        if let Err((code, text)) = self.gate(now, &id, &msg) {
            let client_id = match &msg {
                ClientMessage::Send { client_id, .. } => client_id.clone(),
                _ => None,
            };
            return self.error(now, conn, code, text, client_id);
        }
        self.dispatch(now, conn, id, msg);
    }

    /// Rate limit, grants and mute, in that order (a flood is refused cheaply).
    fn gate(
        &mut self,
        now: Instant,
        id: &str,
        msg: &ClientMessage,
    ) -> Result<(), (ErrorCode, String)> {
        let member = self.members.get_mut(id).expect("connected ids are members");
        let chat_like = matches!(
            msg,
            ClientMessage::Send { .. }
                | ClientMessage::Edit { .. }
                | ClientMessage::Delete { .. }
                | ClientMessage::React { .. }
        );
        let bucket = if chat_like {
            &mut member.standing.chat
        } else {
            &mut member.standing.other
        };
        if !bucket.try_take(now) {
            let text = format!("rate limit exceeded; `{}` was dropped", msg.kind());
            return Err((ErrorCode::RateLimited, text));
        }
        let needs_chat = chat_like || matches!(msg, ClientMessage::Typing { .. });
        let needs_moderate = matches!(
            msg,
            ClientMessage::Kick { .. }
                | ClientMessage::Mute { .. }
                | ClientMessage::MuteMedia { .. }
                | ClientMessage::Lock { .. }
                | ClientMessage::EndRoom {}
        );
        let needs_publish = matches!(msg, ClientMessage::MediaState { .. });
        let needs_media = matches!(
            msg,
            ClientMessage::Offer { .. }
                | ClientMessage::Answer { .. }
                | ClientMessage::IceCandidate { .. }
                | ClientMessage::StopMedia {}
                | ClientMessage::Watch { .. }
        );
        let media_granted = member.grants.publish || member.grants.subscribe;
        if (needs_chat && !member.grants.chat)
            || (needs_moderate && !member.grants.moderate)
            || (needs_media && !media_granted)
            || (needs_publish && !member.grants.publish)
        {
            let text = format!("your token does not allow `{}`", msg.kind());
            return Err((ErrorCode::Forbidden, text));
        }
        let silenced = matches!(
            msg,
            ClientMessage::Send { .. }
                | ClientMessage::Edit { .. }
                | ClientMessage::React { .. }
                | ClientMessage::Typing { typing: true }
        );
        if member.standing.muted && silenced {
            return Err((ErrorCode::Muted, "a moderator muted you".into()));
        }
        Ok(())
    }

    fn dispatch(&mut self, now: Instant, conn: ConnId, id: String, msg: ClientMessage) {
        match msg {
            ClientMessage::Hello { .. } => self.error(
                now,
                conn,
                ErrorCode::UnexpectedMessage,
                "already joined",
                None,
            ),
            ClientMessage::Send { text, client_id } => {
                self.send_chat(now, conn, id, text, client_id)
            }
            ClientMessage::Edit { message_id, text } => self.edit(now, conn, &id, message_id, text),
            ClientMessage::Delete { message_id } => self.delete(now, conn, &id, message_id),
            ClientMessage::React {
                message_id,
                emoji,
                remove,
            } => self.react(now, conn, id, message_id, emoji, remove),
            ClientMessage::Typing { typing } => self.typing(now, id, typing),
            ClientMessage::Read { up_to } => self.read(now, id, up_to),
            ClientMessage::Kick {
                participant_id,
                reason,
            } => self.kick(now, conn, &id, participant_id, reason),
            ClientMessage::Mute {
                participant_id,
                muted,
            } => self.mute(now, conn, id, participant_id, muted),
            ClientMessage::Lock { locked } => {
                if self.locked != locked {
                    self.locked = locked;
                    self.broadcast(now, ServerEvent::Locked { locked, by: id });
                }
            }
            ClientMessage::EndRoom {} => self.end(now, CloseReason::Ended),
            ClientMessage::Leave {} => self.leave(now, &id),
            ClientMessage::StopMedia {} => self.end_media(now, &id),
            ClientMessage::Watch { video, heights } => self.watch(now, conn, id, video, heights),
            ClientMessage::MediaState {
                audio,
                video,
                screen,
            } => {
                let sending = Sending {
                    audio,
                    video,
                    screen,
                };
                self.set_sending(now, &id, sending);
            }
            ClientMessage::MuteMedia {
                participant_id,
                kind,
                muted,
            } => self.mute_media(now, conn, id, participant_id, kind, muted),
            msg @ (ClientMessage::Offer { .. }
            | ClientMessage::Answer { .. }
            | ClientMessage::IceCandidate { .. }) => self.signal(id, msg),
        }
    }

    fn check_text(&self, text: &str) -> Result<(), String> {
        let chars = text.chars().count();
        if text.trim().is_empty() {
            Err("text is empty".into())
        } else if chars > self.cfg.max_text_chars {
            Err(format!(
                "text has {chars} characters; the limit is {}",
                self.cfg.max_text_chars
            ))
        } else {
            Ok(())
        }
    }

    fn send_chat(
        &mut self,
        now: Instant,
        conn: ConnId,
        from: String,
        text: String,
        client_id: Option<String>,
    ) {
        if client_id
            .as_ref()
            .is_some_and(|c| c.chars().count() > MAX_CLIENT_ID_CHARS)
        {
            let text = format!("clientId is longer than {MAX_CLIENT_ID_CHARS} characters");
            return self.error(now, conn, ErrorCode::Malformed, text, None);
        }
        if let Err(why) = self.check_text(&text) {
            return self.error(now, conn, ErrorCode::InvalidText, why, client_id);
        }
        self.stop_typing(now, &from);
        let id = self.seq + 1;
        let event = ServerEvent::Message {
            id,
            from: from.clone(),
            text: text.clone(),
            client_id,
        };
        let seq = self.broadcast(now, event);
        debug_assert_eq!(seq, id);
        let ts = self.unix_ms(now);
        self.backlog.push(ChatMessage {
            id,
            ts,
            from,
            text,
            edited: false,
            reactions: Vec::new(),
        });
    }

    /// Find a message the sender may change, or send them the reason they may not.
    fn own_message(&mut self, now: Instant, conn: ConnId, who: &str, message_id: u64) -> bool {
        let author = self.backlog.get(message_id).map(|m| m.from == who);
        match author {
            Some(true) => true,
            Some(false) => {
                let text = format!("message {message_id} is not yours");
                self.error(now, conn, ErrorCode::NotYours, text, None);
                false
            }
            None => {
                let text = format!("message {message_id} is not in the backlog");
                self.error(now, conn, ErrorCode::NotFound, text, None);
                false
            }
        }
    }

    fn edit(&mut self, now: Instant, conn: ConnId, who: &str, message_id: u64, text: String) {
        if let Err(why) = self.check_text(&text) {
            return self.error(now, conn, ErrorCode::InvalidText, why, None);
        }
        if !self.own_message(now, conn, who, message_id) {
            return;
        }
        self.backlog.update(message_id, |m| {
            m.text = text.clone();
            m.edited = true;
        });
        self.broadcast(now, ServerEvent::Edited { message_id, text });
    }

    fn delete(&mut self, now: Instant, conn: ConnId, who: &str, message_id: u64) {
        if !self.own_message(now, conn, who, message_id) {
            return;
        }
        self.backlog.remove(message_id);
        self.broadcast(now, ServerEvent::Deleted { message_id });
    }

    fn react(
        &mut self,
        now: Instant,
        conn: ConnId,
        who: String,
        message_id: u64,
        emoji: String,
        remove: bool,
    ) {
        if emoji.is_empty() || emoji.len() > MAX_EMOJI_BYTES {
            let text = format!("emoji must be 1 to {MAX_EMOJI_BYTES} bytes");
            return self.error(now, conn, ErrorCode::InvalidText, text, None);
        }
        let mut applied = None;
        let found = self.backlog.update(message_id, |m| {
            applied = Some(apply_reaction(m, &who, &emoji, remove, MAX_REACTION_KINDS));
        });
        match (found, applied) {
            (true, Some(true)) => {
                let event = ServerEvent::Reacted {
                    message_id,
                    participant_id: who,
                    emoji,
                    removed: remove,
                };
                self.broadcast(now, event);
            }
            (true, _) => {
                let text =
                    format!("a message holds at most {MAX_REACTION_KINDS} kinds of reaction");
                self.error(now, conn, ErrorCode::LimitReached, text, None);
            }
            (false, _) => {
                let text = format!("message {message_id} is not in the backlog");
                self.error(now, conn, ErrorCode::NotFound, text, None);
            }
        }
    }

    /// Typing is throttled: only a change of state is broadcast; repeated
    /// `typing: true` frames just push the expiry back.
    fn typing(&mut self, now: Instant, who: String, typing: bool) {
        if !typing {
            return self.stop_typing(now, &who);
        }
        let timeout = self.cfg.typing_timeout;
        let Some(member) = self.members.get_mut(&who) else {
            return;
        };
        let was = member.typing_until.replace(now + timeout).is_some();
        if !was {
            let event = ServerEvent::Typing {
                participant_id: who,
                typing: true,
            };
            self.broadcast_ephemeral(now, event);
        }
    }

    fn stop_typing(&mut self, now: Instant, who: &str) {
        let was = self
            .members
            .get_mut(who)
            .and_then(|m| m.typing_until.take())
            .is_some();
        if was {
            let event = ServerEvent::Typing {
                participant_id: who.to_owned(),
                typing: false,
            };
            self.broadcast_ephemeral(now, event);
        }
    }

    /// Receipts only move forward and never past the latest event.
    fn read(&mut self, now: Instant, who: String, up_to: u64) {
        let up_to = up_to.min(self.seq);
        let Some(member) = self.members.get_mut(&who) else {
            return;
        };
        if up_to <= member.read_up_to {
            return;
        }
        member.read_up_to = up_to;
        let event = ServerEvent::Read {
            participant_id: who,
            up_to,
        };
        self.broadcast(now, event);
    }

    /// Only the kicked connection learns the moderator's `reason` (in its close
    /// frame); everyone else sees `left` with reason `kicked`.
    fn kick(
        &mut self,
        now: Instant,
        conn: ConnId,
        by: &str,
        target: String,
        reason: Option<String>,
    ) {
        let chars = reason.as_deref().map_or(0, |r| r.chars().count());
        if chars > MAX_KICK_REASON_CHARS {
            let text =
                format!("kick reason has {chars} characters; the limit is {MAX_KICK_REASON_CHARS}");
            return self.error(now, conn, ErrorCode::InvalidText, text, None);
        }
        if target == by {
            let text = "you cannot kick yourself; send `leave`";
            return self.error(now, conn, ErrorCode::UnexpectedMessage, text, None);
        }
        if !self.members.contains_key(&target) {
            let text = format!("no participant `{target}`");
            return self.error(now, conn, ErrorCode::NotFound, text, None);
        }
        if self.banned.len() < MAX_BANNED {
            self.banned.insert(target.clone());
        }
        let close = (close_code::KICKED, kick_close_reason(reason.as_deref()));
        self.remove(now, &target, LeaveReason::Kicked, close);
    }

    fn mute(&mut self, now: Instant, conn: ConnId, by: String, target: String, muted: bool) {
        let Some(member) = self.members.get_mut(&target) else {
            let text = format!("no participant `{target}`");
            return self.error(now, conn, ErrorCode::NotFound, text, None);
        };
        member.standing.muted = muted;
        if muted {
            self.stop_typing(now, &target);
        }
        let event = ServerEvent::Muted {
            participant_id: target,
            muted,
            by,
        };
        self.broadcast(now, event);
    }
}

/// The close reason of a kicked connection: `kicked`, or `kicked: REASON` when the
/// moderator gave one. Control characters become spaces (a reason is one line of
/// text), and the text is cut at a character boundary to fit a close frame.
fn kick_close_reason(reason: Option<&str>) -> Cow<'static, str> {
    const TOKEN: &str = "kicked";
    let printable: String = reason
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = printable.trim();
    if text.is_empty() {
        return Cow::Borrowed(TOKEN);
    }
    let mut out = format!("{TOKEN}: ");
    let room = MAX_CLOSE_REASON_BYTES - out.len();
    // `str::floor_char_boundary` is newer than our MSRV.
    let end = text
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .take_while(|end| *end <= room)
        .last()
        .unwrap_or(0);
    out.push_str(text[..end].trim_end());
    Cow::Owned(out)
}
