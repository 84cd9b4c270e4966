//! Generates the reference half of `docs/protocol.md` from the protocol types, so
//! the document cannot drift: a test compares the file with [`render`] (it only
//! reads), and `scripts/regen` (`rendezvous gen`) rewrites it.

use rendezvous_api::Grants;

use crate::protocol::{
    close_code, ChatMessage, ClientMessage, CloseReason, Envelope, ErrorCode, LeaveReason, Limits,
    MediaEndReason, Participant, Reaction, Receipt, Sending, ServerEvent, TrackKind, Welcome,
    BEARER_PROTOCOL_PREFIX, PROTOCOL_VERSION, SUBPROTOCOL,
};

/// Markers around the generated part of `docs/protocol.md`.
pub const BEGIN: &str = "<!-- BEGIN GENERATED: do not edit; scripts/regen rewrites it -->";
pub const END: &str = "<!-- END GENERATED -->";

/// What each client message is for (an exhaustive match: a new variant needs a line).
fn client_doc(msg: &ClientMessage) -> &'static str {
    match msg {
        ClientMessage::Hello { .. } => "First frame on every connection. `resumeFrom` (optional) is the last `seq` seen before a reconnect.",
        ClientMessage::Send { .. } => "Post a chat message (grant `chat`; counts against the rate limit). `clientId` (≤ 64 chars) is echoed in the resulting `message` or `error`.",
        ClientMessage::Edit { .. } => "Replace the text of your own message while it is in the backlog.",
        ClientMessage::Delete { .. } => "Delete your own message.",
        ClientMessage::React { .. } => "Add a reaction, or take it back with `remove: true`. At most 32 distinct emoji per message.",
        ClientMessage::Typing { .. } => "Typing started (`true`, repeat while typing) or stopped. Only changes are broadcast; it expires by itself after the typing timeout.",
        ClientMessage::Read { .. } => "Mark everything up to `upTo` (a `seq`) as read. Receipts only move forward.",
        ClientMessage::Kick { .. } => "Moderator: remove a participant (closed with 4010) and ban them from rejoining this room. The optional `reason` (≤ 200 characters, else `invalid_text` and nobody is kicked) reaches only the kicked participant, as the close reason `kicked: REASON`: trimmed, control characters replaced by spaces, and cut at a character boundary so the whole close reason fits in 123 bytes of UTF-8. With no (or a blank) reason it is `kicked`. Everyone else sees `left` with reason `kicked`, never the text.",
        ClientMessage::Mute { .. } => "Moderator: stop (or allow again) a participant's `send`, `edit`, `react` and `typing`.",
        ClientMessage::Lock { .. } => "Moderator: refuse new participants (4006); people within their grace period may still return.",
        ClientMessage::EndRoom {} => "Moderator: end the room for everyone (`room_closed` with reason `ended`).",
        ClientMessage::Leave {} => "Leave at once, with no reconnect grace period (same as closing with code 1000).",
        ClientMessage::Offer { .. } => "WebRTC: an SDP offer for your media session, which the first one creates. Needs grant `publish` (your tracks are forwarded to the others) or `subscribe` (theirs are forwarded to you), or both. A participant who only subscribes offers a data channel (or recvonly transceivers) to start. Answered by `answer`, or `error` `negotiation_failed`. Media goes to the one UDP port of the room named by the answer's candidate (or over ICE-TCP to its passive TCP candidate on the same port number); a session that has not connected 30 s after its answer ends with `media_ended`. `screen` (optional) lists the mids of your m-lines that carry a shared screen: they are forwarded as a stream of their own and announced with `screen: true` (at most 4 mids; more are ignored). A video m-line may be simulcast (`a=simulcast:send` with RTP stream ids, each packet naming its layer in the `rtp-stream-id` header extension, as browsers do for `sendEncodings` with `rid`s): the server forwards each subscriber one layer as one stream (see `watch`). Renegotiating yourself (to add a screen share) is fine at any time: an offer of yours that crosses one of the server's wins, and the server offers again after.",
        ClientMessage::Answer { .. } => "WebRTC: your answer to a server `offer`. An `offer` left unanswered for 10 s is rolled back and made again. `offer` and `answer` frames may be up to `limits.maxSdpBytes` (4 × `maxFrameBytes`, 64 KiB by default) where every other frame stops at `maxFrameBytes`: a browser's SDP grows by 1–2 KB per m-line, about 30 m-lines fit (some 14 people publishing camera and microphone); larger rooms need a larger `--max-frame-bytes`.",
        ClientMessage::StopMedia {} => "WebRTC: end your media session and stay in the room: your tracks are unpublished everywhere (others get `track` with `removed: true` and an `offer`) and you stop receiving. Send `offer` again to come back.",
        ClientMessage::Watch { .. } => "WebRTC: whose video the server forwards to you: `null` everyone's (the default for every new media session), a list of participant ids only theirs, `[]` nobody's. The web app sends `[]` while its tab is hidden and `null` when it shows again, so a background tab costs no video bandwidth. Audio is always forwarded. For the video you take up again the server asks its publisher for a keyframe, so it shows at once. `heights` (optional) gives, per participant id, the height in device pixels you show their camera at: of a simulcast camera the server then sends you the smallest layer at least that tall, if your bandwidth allows (else a smaller one); without it you get the largest your bandwidth allows. At most 256 ids in each (`limit_reached`); needs a media session (ignored before your first `offer`).",
        ClientMessage::MediaState { .. } => "Say what you send now, for everyone's tiles: microphone on (`audio`), camera on (`video`), sharing your screen (`screen`). Needs grant `publish`. Broadcast as `media_state` when it changed; ending your media session (or your connection) resets it to all false. Turning your camera off is yours to do in the browser (stop sending the track); this only tells the others.",
        ClientMessage::MuteMedia { .. } => "Moderator: stop forwarding a participant's `audio`, or their `video` (camera and shared screen), or allow it again (`muted: false`). The server drops their packets (they keep their m-lines, so nobody renegotiates); it lasts across their reconnects until a moderator lifts it. Broadcast as `media_muted`. After a `video` mute is lifted the server asks the publisher for a keyframe.",
        ClientMessage::IceCandidate { .. } => "WebRTC: a trickled ICE candidate. Optional: the server is ICE-lite and learns your address from your connectivity checks.",
    }
}

/// What each server event means (an exhaustive match: a new variant needs a line).
fn server_doc(event: &ServerEvent) -> &'static str {
    match event {
        ServerEvent::Welcome(_) => "Reply to `hello`. A fresh join gets the backlog; a resume with every event still held gets `resumed: true` and the events after `resumeFrom` in `missed` (and an empty backlog).",
        ServerEvent::Joined { .. } => "A new participant (also sent to the joiner, after its `welcome`).",
        ServerEvent::Disconnected { .. } => "A participant's connection dropped; their grace period started.",
        ServerEvent::Reconnected { .. } => "A participant came back within the grace period.",
        ServerEvent::Left { .. } => "A participant is gone: `left`, `timeout` (grace expired) or `kicked`.",
        ServerEvent::Message { .. } => "A chat message; `id` equals this event's `seq`.",
        ServerEvent::Edited { .. } => "A message's new text.",
        ServerEvent::Deleted { .. } => "A message was deleted.",
        ServerEvent::Reacted { .. } => "A reaction was added or removed.",
        ServerEvent::Typing { .. } => "Typing started or stopped (also when it expired or a message was sent). Not replayed on resume.",
        ServerEvent::Read { .. } => "A read receipt moved forward.",
        ServerEvent::Muted { .. } => "A moderator muted or unmuted someone.",
        ServerEvent::Locked { .. } => "A moderator locked or unlocked the room.",
        ServerEvent::MediaState { .. } => "What a participant sends changed (their `media_state`, or all false when their media session ended). `welcome` and `joined` carry it as each participant's `sending`.",
        ServerEvent::MediaMuted { .. } => "A moderator stopped (or allowed again) forwarding a participant's `audio` or `video`. `welcome` and `joined` carry it as each participant's `audioMuted` and `videoMuted`.",
        ServerEvent::ActiveSpeaker { .. } => "Who speaks now: the loudest publisher by the audio level in their packets (RFC 6464, which browsers send), decided at most every 400 ms and handed on only when it changes; `null` when nobody does. A newcomer must be clearly louder (6 dB) than someone still talking to take over. Ephemeral, like `typing`: not replayed on resume.",
        ServerEvent::MediaEnded { .. } => "WebRTC: your media session ended by itself (`ice_failed`: no connection 30 s after the answer, or the connection failed); your tracks were unpublished. Send `offer` to start a new one (with a new peer connection).",
        ServerEvent::RoomClosed { .. } => "The room ended: `ended`, `closed`, `idle`, `lifetime` or `shutdown`. The socket closes next with 1000.",
        ServerEvent::Answer { .. } => "WebRTC: the answer to your `offer`, with the server's one ICE candidate (host, UDP, the room's media port; `--public-ip` if set).",
        ServerEvent::Offer { .. } => "WebRTC: the server renegotiates because someone published or unpublished; reply with `answer`. Never sent before your first `offer` is answered, nor while one of its offers waits.",
        ServerEvent::IceCandidate { .. } => "WebRTC: an ICE candidate of the server's (its answers already carry its candidate; reserved for later use).",
        ServerEvent::Track { .. } => "WebRTC: whose track an m-line of your session carries: `participantId` (the publisher), `kind` (`audio` Opus, `video` VP8), your `mid`, the forwarded `streamId` (msid: `p<n>` for camera and microphone, `p<n>s` for a shared screen), and `screen` (true for a shared screen). Sent before the `offer` that adds it; `removed: true` before the one that stops it (the publisher unpublished or left).",
        ServerEvent::Error { .. } => "A frame was refused; the connection stays open. See the error codes below.",
    }
}

fn error_doc(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Malformed => "not JSON, an unknown `type`, or missing/mistyped fields",
        ErrorCode::FrameTooLarge => "frame over `limits.maxFrameBytes` (`offer`/`answer`: over `limits.maxSdpBytes`); over 4× `maxFrameBytes` the socket closes with 1009",
        ErrorCode::InvalidText => "empty text, text over `limits.maxTextChars`, a bad emoji, or a kick `reason` over 200 characters",
        ErrorCode::RateLimited => "token bucket empty: `rateLimitMessages` chat frames per `rateLimitWindowMs` (5× that for other frames)",
        ErrorCode::Forbidden => "the token lacks the grant (`chat` for chat and typing, `moderate` for moderation, `publish` or `subscribe` for WebRTC signalling, `publish` for `media_state`)",
        ErrorCode::Muted => "a moderator muted you",
        ErrorCode::NotFound => "no such message in the backlog, or no such participant",
        ErrorCode::NotYours => "you may only edit or delete your own messages",
        ErrorCode::UnexpectedMessage => "a second `hello`, or kicking yourself",
        ErrorCode::NotImplemented => "a type reserved for later use (`track` from a client)",
        ErrorCode::LimitReached => "too many distinct reactions on one message, or too many ids in `watch`",
        ErrorCode::NegotiationFailed => "the media session refused an `offer`, `answer` or `ice_candidate` (bad SDP, an `answer` nobody asked for, too many media sessions); `message` says why",
    }
}

const ERROR_CODES: &[ErrorCode] = &[
    ErrorCode::Malformed,
    ErrorCode::FrameTooLarge,
    ErrorCode::InvalidText,
    ErrorCode::RateLimited,
    ErrorCode::Forbidden,
    ErrorCode::Muted,
    ErrorCode::NotFound,
    ErrorCode::NotYours,
    ErrorCode::UnexpectedMessage,
    ErrorCode::NotImplemented,
    ErrorCode::LimitReached,
    ErrorCode::NegotiationFailed,
];

const CLOSE_CODES: &[(u16, &str, &str)] = &[
    (
        close_code::NORMAL,
        "room_closed / left",
        "the room ended (after `room_closed`), or you left",
    ),
    (
        close_code::TOO_BIG,
        "frame_too_large",
        "a frame over 4× `maxFrameBytes`",
    ),
    (
        close_code::INTERNAL,
        "keys_unavailable",
        "the server could not fetch verifying keys",
    ),
    (
        close_code::INVALID_TOKEN,
        "missing_token / invalid_token",
        "no token, or bad signature, unknown key, wrong issuer or audience, malformed",
    ),
    (
        close_code::TOKEN_EXPIRED,
        "token_expired",
        "the token has expired",
    ),
    (
        close_code::WRONG_ROOM,
        "wrong_room",
        "the token is for another room",
    ),
    (
        close_code::MISSING_GRANT,
        "missing_grant",
        "none of `chat`, `subscribe`, `moderate`",
    ),
    (
        close_code::ROOM_FULL,
        "room_full",
        "the participant cap is reached",
    ),
    (
        close_code::ROOM_LOCKED,
        "room_locked",
        "a moderator locked the room",
    ),
    (
        close_code::BANNED,
        "banned",
        "you were kicked from this room",
    ),
    (
        close_code::HELLO_REQUIRED,
        "hello_required",
        "the first frame was not `hello`, or it did not come within the hello timeout",
    ),
    (
        close_code::UNSUPPORTED_VERSION,
        "unsupported_version",
        "`hello.protocolVersion` is not supported",
    ),
    (
        close_code::KICKED,
        "kicked / kicked: REASON",
        "a moderator kicked you; `REASON` is the moderator's `reason` when they gave one (one line, at most 123 bytes in all)",
    ),
    (
        close_code::SLOW_CONSUMER,
        "slow_consumer",
        "your outbound queue overflowed; reconnect and resume",
    ),
    (
        close_code::REPLACED,
        "replaced",
        "you connected again elsewhere",
    ),
    (
        close_code::HEARTBEAT_TIMEOUT,
        "heartbeat_timeout",
        "nothing (not even a pong) arrived for `--ping-interval` + `--pong-timeout` (default 40 s); your grace period started: reconnect and resume",
    ),
    (
        close_code::JOIN_RATE_LIMITED,
        "join_rate_limited",
        "too many joins by your user id (every `hello`, reconnects included; default 10 per minute); wait `window / limit` (default 6 s) and retry",
    ),
];

fn mk_participant(id: &str, moderator: bool) -> Participant {
    Participant {
        id: id.into(),
        name: id.to_uppercase(),
        moderator,
        muted: false,
        connected: true,
        sending: Sending {
            audio: true,
            video: moderator,
            screen: false,
        },
        audio_muted: false,
        video_muted: false,
    }
}

fn client_examples() -> Vec<ClientMessage> {
    vec![
        ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            resume_from: Some(41),
        },
        ClientMessage::Send {
            text: "hello!".into(),
            client_id: Some("c-7".into()),
        },
        ClientMessage::Edit {
            message_id: 42,
            text: "hello, all!".into(),
        },
        ClientMessage::Delete { message_id: 42 },
        ClientMessage::React {
            message_id: 42,
            emoji: "👍".into(),
            remove: false,
        },
        ClientMessage::Typing { typing: true },
        ClientMessage::Read { up_to: 42 },
        ClientMessage::Kick {
            participant_id: "u2".into(),
            reason: Some("spam".into()),
        },
        ClientMessage::Mute {
            participant_id: "u2".into(),
            muted: true,
        },
        ClientMessage::Lock { locked: true },
        ClientMessage::EndRoom {},
        ClientMessage::Leave {},
        ClientMessage::Offer {
            sdp: "v=0\r\no=- 4611 2 IN IP4 127.0.0.1\r\n…".into(),
            screen: vec!["2".into()],
        },
        ClientMessage::Answer {
            sdp: "v=0\r\no=- 4612 3 IN IP4 127.0.0.1\r\n…".into(),
        },
        ClientMessage::IceCandidate {
            candidate: "candidate:1 1 udp 2130706431 192.0.2.7 54321 typ host".into(),
            sdp_mid: Some("0".into()),
        },
        ClientMessage::StopMedia {},
        ClientMessage::Watch {
            video: Some(vec!["u2".into()]),
            heights: [("u2".to_owned(), 360)].into(),
        },
        ClientMessage::MediaState {
            audio: true,
            video: false,
            screen: false,
        },
        ClientMessage::MuteMedia {
            participant_id: "u2".into(),
            kind: TrackKind::Audio,
            muted: true,
        },
    ]
}

fn server_examples() -> Vec<ServerEvent> {
    let grants = Grants::creator();
    let welcome = Welcome {
        protocol_version: PROTOCOL_VERSION,
        room_id: "r1".into(),
        you: "u1".into(),
        participants: vec![
            mk_participant("u1", grants.moderate),
            mk_participant("u2", false),
        ],
        backlog: vec![ChatMessage {
            id: 42,
            ts: 1_700_000_000_000,
            from: "u2".into(),
            text: "hi".into(),
            edited: false,
            reactions: vec![Reaction {
                emoji: "👍".into(),
                participants: vec!["u1".into()],
            }],
        }],
        receipts: vec![Receipt {
            participant_id: "u2".into(),
            up_to: 42,
        }],
        locked: false,
        resumed: false,
        missed: vec![],
        limits: Limits {
            max_text_chars: 4000,
            max_frame_bytes: 16384,
            max_sdp_bytes: 65536,
            rate_limit_messages: 10,
            rate_limit_window_ms: 10_000,
        },
    };
    vec![
        ServerEvent::Welcome(Box::new(welcome)),
        ServerEvent::Joined {
            participant: mk_participant("u3", false),
        },
        ServerEvent::Disconnected {
            participant_id: "u3".into(),
        },
        ServerEvent::Reconnected {
            participant_id: "u3".into(),
        },
        ServerEvent::Left {
            participant_id: "u3".into(),
            reason: LeaveReason::Timeout,
        },
        ServerEvent::Message {
            id: 43,
            from: "u1".into(),
            text: "hello!".into(),
            client_id: Some("c-7".into()),
        },
        ServerEvent::Edited {
            message_id: 43,
            text: "hello, all!".into(),
        },
        ServerEvent::Deleted { message_id: 43 },
        ServerEvent::Reacted {
            message_id: 42,
            participant_id: "u1".into(),
            emoji: "👍".into(),
            removed: false,
        },
        ServerEvent::Typing {
            participant_id: "u2".into(),
            typing: true,
        },
        ServerEvent::Read {
            participant_id: "u2".into(),
            up_to: 43,
        },
        ServerEvent::Muted {
            participant_id: "u2".into(),
            muted: true,
            by: "u1".into(),
        },
        ServerEvent::Locked {
            locked: true,
            by: "u1".into(),
        },
        ServerEvent::MediaState {
            participant_id: "u2".into(),
            audio: true,
            video: false,
            screen: false,
        },
        ServerEvent::MediaMuted {
            participant_id: "u2".into(),
            kind: TrackKind::Audio,
            muted: true,
            by: "u1".into(),
        },
        ServerEvent::ActiveSpeaker {
            participant_id: Some("u2".into()),
        },
        ServerEvent::MediaEnded {
            reason: MediaEndReason::IceFailed,
        },
        ServerEvent::RoomClosed {
            reason: CloseReason::Ended,
        },
        ServerEvent::Answer {
            sdp: "v=0\r\no=- 9001 2 IN IP4 0.0.0.0\r\n…a=ice-lite\r\n…".into(),
        },
        ServerEvent::Offer {
            sdp: "v=0\r\no=- 9001 3 IN IP4 0.0.0.0\r\n…".into(),
        },
        ServerEvent::IceCandidate {
            candidate: "candidate:1 1 udp 2130706431 203.0.113.5 40000 typ host".into(),
            sdp_mid: Some("0".into()),
        },
        ServerEvent::Track {
            participant_id: "u2".into(),
            kind: TrackKind::Video,
            mid: "2".into(),
            stream_id: "p2".into(),
            screen: false,
            removed: false,
        },
        ServerEvent::Error {
            code: ErrorCode::RateLimited,
            message: "rate limit exceeded; `send` was dropped".into(),
            client_id: Some("c-8".into()),
        },
    ]
}

fn json_block(value: &impl serde::Serialize) -> String {
    let pretty = serde_json::to_string_pretty(value).expect("examples serialize");
    format!("```json\n{pretty}\n```\n")
}

fn type_of(value: &impl serde::Serialize) -> String {
    let v = serde_json::to_value(value).expect("examples serialize");
    v["type"].as_str().unwrap_or("?").to_owned()
}

/// The generated part of `docs/protocol.md`, markers included.
pub fn render() -> String {
    let mut out = format!(
        "{BEGIN}\n\n## Handshake\n\n| header | value |\n|---|---|\n\
         | `Sec-WebSocket-Protocol` (request) | `{SUBPROTOCOL}, {BEARER_PROTOCOL_PREFIX}<room token>` |\n\
         | `Sec-WebSocket-Protocol` (response) | `{SUBPROTOCOL}` |\n\n\
         ## Client → server messages\n\n"
    );
    for msg in client_examples() {
        let kind = type_of(&msg);
        out += &format!(
            "### `{kind}`\n\n{}\n\n{}\n",
            client_doc(&msg),
            json_block(&msg)
        );
    }
    out += "## Server → client events\n\nEvery event carries `seq` and `ts` (shown once here, on `welcome`).\n\n";
    for (i, event) in server_examples().into_iter().enumerate() {
        let kind = type_of(&event);
        let doc = server_doc(&event);
        let block = if i == 0 {
            json_block(&Envelope {
                seq: 44,
                ts: 1_700_000_000_123,
                event,
            })
        } else {
            json_block(&event)
        };
        out += &format!("### `{kind}`\n\n{doc}\n\n{block}\n");
    }
    out += "## Error codes (`error.code`)\n\n| code | meaning |\n|---|---|\n";
    for code in ERROR_CODES {
        out += &format!("| `{}` | {} |\n", code.as_str(), error_doc(*code));
    }
    out += "\n## Close codes\n\n| code | reason | when |\n|---|---|---|\n";
    for (code, reason, when) in CLOSE_CODES {
        out += &format!("| {code} | `{reason}` | {when} |\n");
    }
    out += &format!("\n{END}\n");
    out
}

/// Replace the generated part of a document with a fresh [`render`].
pub fn splice(doc: &str) -> Option<String> {
    let start = doc.find(BEGIN)?;
    let end = doc.find(END)? + END.len();
    let rest = doc[end..].strip_prefix('\n').unwrap_or(&doc[end..]);
    Some(format!("{}{}{}", &doc[..start], render(), rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{MAX_CLOSE_REASON_BYTES, MAX_KICK_REASON_CHARS};

    #[test]
    fn protocol_doc_is_in_step_with_the_types() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md");
        let doc = std::fs::read_to_string(path).expect("docs/protocol.md exists");
        let fresh = splice(&doc).expect("docs/protocol.md has the generated markers");
        assert!(
            doc == fresh,
            "docs/protocol.md is stale: run scripts/regen from the workspace root"
        );
    }

    #[test]
    fn every_example_round_trips_and_types_are_unique() {
        let mut kinds = std::collections::HashSet::new();
        for msg in client_examples() {
            assert!(kinds.insert(type_of(&msg)));
            assert_eq!(
                crate::protocol::parse_client_message(&msg.to_json()),
                Ok(msg)
            );
        }
        kinds.clear();
        for event in server_examples() {
            assert!(kinds.insert(type_of(&event)));
            let env = Envelope {
                seq: 1,
                ts: 2,
                event,
            };
            assert_eq!(
                serde_json::from_str::<Envelope>(&env.to_json()).unwrap(),
                env
            );
        }
        assert_eq!(ERROR_CODES.len(), 12);
    }

    #[test]
    fn the_kick_doc_states_the_limits_the_code_enforces() {
        let kick = ClientMessage::Kick {
            participant_id: "u2".into(),
            reason: None,
        };
        let doc = client_doc(&kick);
        assert!(doc.contains(&format!("≤ {MAX_KICK_REASON_CHARS} characters")));
        assert!(doc.contains(&format!("{MAX_CLOSE_REASON_BYTES} bytes")));
        let invalid = error_doc(ErrorCode::InvalidText);
        assert!(invalid.contains(&format!("over {MAX_KICK_REASON_CHARS} characters")));
    }
}
