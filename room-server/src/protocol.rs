//! The room protocol: the one definition of every WebSocket message.
//!
//! Client → server frames are [`ClientMessage`]s; server → client frames are
//! [`Envelope`]s: a [`ServerEvent`] plus the room's sequence number and a server
//! timestamp. Both are JSON objects tagged by `type` (snake_case) with camelCase
//! fields. `docs/protocol.md` is generated from [`crate::protocol_doc`] and a test
//! fails when it drifts from these types.
//!
//! Sequence numbers are per room and strictly increasing on every connection; a
//! connection sees gaps where the room addressed an event to someone else.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The protocol version this server speaks; sent in `hello` and `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// The WebSocket subprotocol of this protocol version. A client that offers it
/// (`Sec-WebSocket-Protocol: rendezvous.v1, bearer.<room token>`) gets it selected
/// in the handshake response; the server never selects (or echoes) the token.
pub const SUBPROTOCOL: &str = "rendezvous.v1";

/// Prefix of the subprotocol entry carrying the room token: browsers cannot set
/// `Authorization` on a WebSocket, and a `?token=` ends up in logs. JWTs are made
/// of characters valid in an HTTP token, so the JWT goes after the dot as is.
pub const BEARER_PROTOCOL_PREFIX: &str = "bearer.";

/// Longest kick `reason`, in characters: a sentence for the person kicked.
pub const MAX_KICK_REASON_CHARS: usize = 200;

/// Longest WebSocket close reason, in bytes of UTF-8 (RFC 6455 §5.5: a control
/// frame carries at most 125 bytes, two of them the close code). A longer one is
/// a protocol error that would cost the peer the whole close frame.
pub const MAX_CLOSE_REASON_BYTES: usize = 123;

/// Message types reserved for future use; answered with a `not_implemented` error.
pub const RESERVED_TYPES: &[&str] = &["track"];

/// A frame a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ClientMessage {
    /// First frame on every connection. `resumeFrom` is the last `seq` the client
    /// saw, to get what it missed after a reconnect.
    Hello {
        protocol_version: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume_from: Option<u64>,
    },
    /// Post a chat message. `clientId` is echoed back for correlation.
    Send {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
    /// Replace the text of one of your own messages.
    Edit { message_id: u64, text: String },
    /// Delete one of your own messages.
    Delete { message_id: u64 },
    /// Add (or with `remove: true`, take back) a reaction to a message.
    React {
        message_id: u64,
        emoji: String,
        #[serde(default)]
        remove: bool,
    },
    /// You are typing (`typing: true`) or stopped (`false`).
    Typing { typing: bool },
    /// Everything up to and including `upTo` has been read.
    Read { up_to: u64 },
    /// Moderator: remove a participant; they cannot rejoin this room. The optional
    /// `reason` (≤ 200 characters, else `invalid_text`) reaches only the kicked
    /// participant, as the close reason `kicked: REASON` (one line, cut to fit
    /// the 123-byte limit of a close reason); everyone else sees `left` with
    /// reason `kicked`.
    Kick {
        participant_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Moderator: stop (or allow again) a participant's chat.
    Mute { participant_id: String, muted: bool },
    /// Moderator: refuse (or allow again) new joins.
    Lock { locked: bool },
    /// Moderator: end the room for everyone.
    EndRoom {},
    /// Leave now, without a reconnect grace period.
    Leave {},
    /// WebRTC: an SDP offer for your media session (grant `publish` to send
    /// media, `subscribe` to receive it). The first offer creates the session;
    /// the server answers with `answer`. `screen` lists the mids of your m-lines
    /// that carry a shared screen rather than your camera (at most
    /// [`MAX_SCREEN_MIDS`]).
    Offer {
        sdp: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        screen: Vec<String>,
    },
    /// WebRTC: your answer to a server `offer` (renegotiation).
    Answer { sdp: String },
    /// WebRTC: a trickled ICE candidate of yours (`candidate` as in
    /// `RTCIceCandidate.candidate`; an empty string ends the candidates).
    IceCandidate {
        candidate: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
    },
    /// WebRTC: end your media session (your tracks are unpublished everywhere, you
    /// stop receiving) and stay in the room; `offer` again to come back.
    StopMedia {},
    /// WebRTC: whose video you want forwarded: `null` everyone's (the default),
    /// a list of participant ids only theirs, `[]` nobody's (a hidden tab). At
    /// most [`MAX_WATCHED`] ids. Audio always flows. `heights`: the height in
    /// device pixels you show each participant's camera at, so that of a
    /// simulcast camera you get the smallest layer at least that tall (at most
    /// [`MAX_WATCHED`] entries; absent: as large as your bandwidth allows).
    Watch {
        video: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        heights: BTreeMap<String, u32>,
    },
    /// What you send now, for everyone to see: microphone on (`audio`), camera
    /// on (`video`), sharing your screen (`screen`). Needs grant `publish`.
    MediaState {
        audio: bool,
        video: bool,
        screen: bool,
    },
    /// Moderator: stop (or allow again) forwarding a participant's `audio`, or
    /// their `video` (camera and shared screen). The server drops their packets;
    /// it lasts until a moderator lifts it, across reconnects.
    MuteMedia {
        participant_id: String,
        kind: TrackKind,
        muted: bool,
    },
}

/// Most participant ids a `watch` may list: a room's participant cap at most.
pub const MAX_WATCHED: usize = 256;

/// Most mids an `offer` may name in `screen`: as many as a publisher has
/// tracks forwarded.
pub const MAX_SCREEN_MIDS: usize = 4;

/// A frame the server sends: an event with its room sequence number and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Room-wide, strictly increasing.
    pub seq: u64,
    /// Server time, milliseconds since the Unix epoch.
    pub ts: u64,
    #[serde(flatten)]
    pub event: ServerEvent,
}

/// What the server tells clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ServerEvent {
    /// Reply to `hello`: who you are, who is here, and what you missed.
    Welcome(Box<Welcome>),
    /// A new participant entered the room.
    Joined { participant: Participant },
    /// A participant's connection dropped; they may come back within the grace period.
    Disconnected { participant_id: String },
    /// A participant came back within the grace period.
    Reconnected { participant_id: String },
    /// A participant is gone for good.
    Left {
        participant_id: String,
        reason: LeaveReason,
    },
    /// A chat message. Its `id` is the `seq` of this event.
    Message {
        id: u64,
        from: String,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
    /// A message's text was replaced by its author.
    Edited { message_id: u64, text: String },
    /// A message was deleted by its author.
    Deleted { message_id: u64 },
    /// A reaction was added (or removed).
    Reacted {
        message_id: u64,
        participant_id: String,
        emoji: String,
        removed: bool,
    },
    /// A participant started or stopped typing. Typing stops by itself after the
    /// room's typing timeout.
    Typing {
        participant_id: String,
        typing: bool,
    },
    /// A participant read everything up to `upTo`.
    Read { participant_id: String, up_to: u64 },
    /// A moderator muted or unmuted a participant.
    Muted {
        participant_id: String,
        muted: bool,
        by: String,
    },
    /// A moderator locked or unlocked the room.
    Locked { locked: bool, by: String },
    /// What a participant sends changed (their `media_state`, or their media
    /// session ended: all false).
    MediaState {
        participant_id: String,
        audio: bool,
        video: bool,
        screen: bool,
    },
    /// A moderator stopped (or allowed again) forwarding a participant's `audio`
    /// or `video`.
    MediaMuted {
        participant_id: String,
        kind: TrackKind,
        muted: bool,
        by: String,
    },
    /// The loudest voice in the room changed (`participantId` null: nobody speaks
    /// now). Ephemeral: not replayed on resume.
    ActiveSpeaker { participant_id: Option<String> },
    /// WebRTC: your media session ended without your asking (`reason`); send
    /// `offer` to start a new one.
    MediaEnded { reason: MediaEndReason },
    /// The room is over; the server closes the socket next.
    RoomClosed { reason: CloseReason },
    /// WebRTC: the answer to your `offer`.
    Answer { sdp: String },
    /// WebRTC: the server renegotiates (someone published or unpublished); reply
    /// with `answer`.
    Offer { sdp: String },
    /// WebRTC: an ICE candidate of the server's.
    IceCandidate {
        candidate: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
    },
    /// WebRTC: the m-line `mid` of your session carries `participantId`'s track
    /// (stream id `streamId`), or no longer does (`removed: true`). Sent before the
    /// `offer` that adds the m-line, and before the one that stops it.
    Track {
        participant_id: String,
        kind: TrackKind,
        mid: String,
        stream_id: String,
        /// A shared screen, not a camera (or the screen's sound).
        #[serde(default)]
        screen: bool,
        removed: bool,
    },
    /// A frame or command was refused; the connection stays open.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
}

/// The body of `welcome`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Welcome {
    pub protocol_version: u32,
    pub room_id: String,
    /// Your participant id (the token's `sub`).
    pub you: String,
    /// Everyone in the room, you included.
    pub participants: Vec<Participant>,
    /// The last messages held in memory (oldest first), with edits applied.
    pub backlog: Vec<ChatMessage>,
    /// Who has read up to which `seq`.
    pub receipts: Vec<Receipt>,
    pub locked: bool,
    /// True when `missed` holds every room event after `resumeFrom`.
    pub resumed: bool,
    /// Events after `resumeFrom`, in order (only when `resumed`).
    pub missed: Vec<Envelope>,
    pub limits: Limits,
}

/// One participant as others see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub id: String,
    pub name: String,
    pub moderator: bool,
    pub muted: bool,
    /// False while they are within the reconnect grace period.
    pub connected: bool,
    /// What they send (their last `media_state`).
    #[serde(default)]
    pub sending: Sending,
    /// A moderator stopped forwarding their audio.
    #[serde(default)]
    pub audio_muted: bool,
    /// A moderator stopped forwarding their video.
    #[serde(default)]
    pub video_muted: bool,
}

/// What a participant says they send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sending {
    pub audio: bool,
    pub video: bool,
    pub screen: bool,
}

/// A chat message in the backlog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub id: u64,
    pub ts: u64,
    pub from: String,
    pub text: String,
    pub edited: bool,
    pub reactions: Vec<Reaction>,
}

/// Who reacted with one emoji.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reaction {
    pub emoji: String,
    pub participants: Vec<String>,
}

/// One read receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub participant_id: String,
    pub up_to: u64,
}

/// The limits this room enforces, so clients can stay inside them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub max_text_chars: usize,
    pub max_frame_bytes: usize,
    /// Largest `offer` or `answer` frame (SDP outgrows chat frames).
    #[serde(default)]
    pub max_sdp_bytes: usize,
    pub rate_limit_messages: u32,
    pub rate_limit_window_ms: u64,
}

/// What a forwarded track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// Opus.
    Audio,
    /// VP8.
    Video,
}

/// Why a media session ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaEndReason {
    /// No ICE connection was made within 30 s of the answer, or it was lost.
    IceFailed,
}

/// Why a participant left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// They left (a `leave` frame or a normal close).
    Left,
    /// Their connection dropped and they did not return within the grace period.
    Timeout,
    /// A moderator removed them.
    Kicked,
}

/// Why the room ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// A moderator sent `end_room`.
    Ended,
    /// `POST /close` (the router closed the room).
    Closed,
    /// Nobody was inside for the idle timeout.
    Idle,
    /// The room reached its maximum lifetime.
    Lifetime,
    /// The server is shutting down (SIGTERM).
    Shutdown,
}

/// Stable codes of `error` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not a known message shape.
    Malformed,
    /// A frame larger than the room's `maxFrameBytes`.
    FrameTooLarge,
    /// A chat text longer than `maxTextChars` or empty, a bad emoji, or a kick
    /// reason over 200 characters.
    InvalidText,
    /// Too many frames; the token bucket is empty.
    RateLimited,
    /// The token lacks the grant this needs.
    Forbidden,
    /// A moderator muted you.
    Muted,
    /// No such message (or it left the in-memory backlog), or no such participant.
    NotFound,
    /// That message is someone else's.
    NotYours,
    /// `hello` sent twice, or another message in the wrong state.
    UnexpectedMessage,
    /// A reserved type (WebRTC signalling) this server does not handle yet.
    NotImplemented,
    /// A bound was reached (reactions on a message, ids in `watch`).
    LimitReached,
    /// The media session refused an `offer`, `answer` or `ice_candidate`.
    NegotiationFailed,
}

/// WebSocket close codes this server uses (see `docs/protocol.md`).
pub mod close_code {
    /// The room ended (`room_closed` was sent just before), or you left.
    pub const NORMAL: u16 = 1000;
    /// The frame exceeded the hard transport limit.
    pub const TOO_BIG: u16 = 1009;
    /// Internal error (e.g. verifying keys unavailable).
    pub const INTERNAL: u16 = 1011;
    /// No token, or a token that does not verify (signature, issuer, audience, shape).
    pub const INVALID_TOKEN: u16 = 4001;
    /// The token has expired.
    pub const TOKEN_EXPIRED: u16 = 4002;
    /// The token is for another room.
    pub const WRONG_ROOM: u16 = 4003;
    /// The token has neither the `chat` nor the `subscribe` grant.
    pub const MISSING_GRANT: u16 = 4004;
    /// The room is at its participant cap.
    pub const ROOM_FULL: u16 = 4005;
    /// The room is locked against new joins.
    pub const ROOM_LOCKED: u16 = 4006;
    /// You were kicked from this room earlier.
    pub const BANNED: u16 = 4007;
    /// No `hello` arrived in time, or the first frame was not a `hello`.
    pub const HELLO_REQUIRED: u16 = 4008;
    /// The client's protocol version is not supported.
    pub const UNSUPPORTED_VERSION: u16 = 4009;
    /// A moderator kicked you; the reason is `kicked`, or `kicked: REASON` with
    /// the moderator's reason.
    pub const KICKED: u16 = 4010;
    /// You could not keep up; your outbound queue overflowed.
    pub const SLOW_CONSUMER: u16 = 4012;
    /// The same participant connected again elsewhere.
    pub const REPLACED: u16 = 4013;
    /// Nothing (not even a pong) arrived within the heartbeat bound; the
    /// reconnect grace period started. Usually never seen: the peer is gone.
    pub const HEARTBEAT_TIMEOUT: u16 = 4014;
    /// Too many joins (every `hello`, reconnects included) by this user; retry
    /// after `window / limit` (default 6 s). Mirrors HTTP 429.
    pub const JOIN_RATE_LIMITED: u16 = 4029;
}

/// The stable token a close reason starts with (`kicked` of `kicked: spam`):
/// what clients should match on and metrics may use as a label, since the text
/// after `: ` is a moderator's and unbounded in variety.
pub fn close_reason_token(reason: &str) -> &str {
    reason.split_once(": ").map_or(reason, |(token, _)| token)
}

/// Why a frame could not be parsed into a [`ClientMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub code: ErrorCode,
    pub message: String,
}

/// Parse one text frame. Never panics; every failure is a [`ParseError`].
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ParseError> {
    match serde_json::from_str::<ClientMessage>(text) {
        Ok(msg) => Ok(msg),
        Err(err) => {
            // Tell reserved signalling types apart from garbage, so future clients
            // get a clear answer from an older room server.
            #[derive(Deserialize)]
            struct TypeOnly<'a> {
                #[serde(rename = "type", borrow)]
                kind: std::borrow::Cow<'a, str>,
            }
            if let Ok(t) = serde_json::from_str::<TypeOnly<'_>>(text) {
                if RESERVED_TYPES.contains(&t.kind.as_ref()) {
                    return Err(ParseError {
                        code: ErrorCode::NotImplemented,
                        message: format!("`{}` is reserved for WebRTC signalling", t.kind),
                    });
                }
            }
            Err(ParseError {
                code: ErrorCode::Malformed,
                message: err.to_string(),
            })
        }
    }
}

impl ClientMessage {
    /// The `type` tag, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Hello { .. } => "hello",
            ClientMessage::Send { .. } => "send",
            ClientMessage::Edit { .. } => "edit",
            ClientMessage::Delete { .. } => "delete",
            ClientMessage::React { .. } => "react",
            ClientMessage::Typing { .. } => "typing",
            ClientMessage::Read { .. } => "read",
            ClientMessage::Kick { .. } => "kick",
            ClientMessage::Mute { .. } => "mute",
            ClientMessage::Lock { .. } => "lock",
            ClientMessage::EndRoom {} => "end_room",
            ClientMessage::Leave {} => "leave",
            ClientMessage::Offer { .. } => "offer",
            ClientMessage::Answer { .. } => "answer",
            ClientMessage::IceCandidate { .. } => "ice_candidate",
            ClientMessage::StopMedia {} => "stop_media",
            ClientMessage::Watch { .. } => "watch",
            ClientMessage::MediaState { .. } => "media_state",
            ClientMessage::MuteMedia { .. } => "mute_media",
        }
    }

    /// Serialize to a JSON text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("protocol messages always serialize")
    }
}

impl ErrorCode {
    /// The wire name, for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "malformed",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::InvalidText => "invalid_text",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Muted => "muted",
            ErrorCode::NotFound => "not_found",
            ErrorCode::NotYours => "not_yours",
            ErrorCode::UnexpectedMessage => "unexpected_message",
            ErrorCode::NotImplemented => "not_implemented",
            ErrorCode::LimitReached => "limit_reached",
            ErrorCode::NegotiationFailed => "negotiation_failed",
        }
    }
}

impl Envelope {
    /// Serialize to a JSON text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("protocol events always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips_with_camel_case_fields() {
        let msg =
            parse_client_message(r#"{"type":"hello","protocolVersion":1,"resumeFrom":7}"#).unwrap();
        assert_eq!(
            msg,
            ClientMessage::Hello {
                protocol_version: 1,
                resume_from: Some(7)
            }
        );
        assert_eq!(
            msg.to_json(),
            r#"{"type":"hello","protocolVersion":1,"resumeFrom":7}"#
        );
    }

    #[test]
    fn envelope_flattens_the_event() {
        let env = Envelope {
            seq: 3,
            ts: 9,
            event: ServerEvent::Deleted { message_id: 2 },
        };
        let json = env.to_json();
        assert_eq!(json, r#"{"seq":3,"ts":9,"type":"deleted","messageId":2}"#);
        assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), env);
    }

    #[test]
    fn close_reason_token_drops_the_moderators_text() {
        assert_eq!(close_reason_token("kicked: spam: again"), "kicked");
        assert_eq!(close_reason_token("kicked"), "kicked");
        assert_eq!(close_reason_token("room_full"), "room_full");
    }

    #[test]
    fn signalling_frames_parse() {
        assert_eq!(
            parse_client_message(r#"{"type":"offer","sdp":"v=0"}"#),
            Ok(ClientMessage::Offer {
                sdp: "v=0".into(),
                screen: vec![]
            })
        );
        assert_eq!(
            parse_client_message(r#"{"type":"ice_candidate","candidate":"c","sdpMid":"0"}"#),
            Ok(ClientMessage::IceCandidate {
                candidate: "c".into(),
                sdp_mid: Some("0".into())
            })
        );
    }

    #[test]
    fn stop_media_parses() {
        assert_eq!(
            parse_client_message(r#"{"type":"stop_media"}"#),
            Ok(ClientMessage::StopMedia {})
        );
    }

    #[test]
    fn reserved_types_are_not_implemented_and_garbage_is_malformed() {
        let err = parse_client_message(r#"{"type":"track","mid":"0"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::NotImplemented);
        for bad in [
            "",
            "{",
            "[]",
            "null",
            r#"{"type":"send"}"#,
            r#"{"type":"nope"}"#,
        ] {
            assert_eq!(
                parse_client_message(bad).unwrap_err().code,
                ErrorCode::Malformed
            );
        }
    }
}
