//! Pure tests of the room core with simulated time.

use std::time::{Duration, Instant};

use rendezvous_api::Grants;

use super::*;
use crate::protocol::{ClientMessage, MAX_CLOSE_REASON_BYTES, MAX_KICK_REASON_CHARS};

fn mk_config() -> RoomConfig {
    RoomConfig {
        room_id: "r1".into(),
        max_participants: 3,
        idle_timeout: Duration::from_secs(60),
        max_duration: Duration::from_secs(3600),
        backlog_messages: 10,
        backlog_bytes: 10_000,
        replay_events: 100,
        replay_bytes: 100_000,
        rate_limit_messages: 10,
        rate_limit_window: Duration::from_secs(10),
        join_rate_limit: 4,
        join_rate_window: Duration::from_secs(40),
        max_frame_bytes: 4096,
        max_text_chars: 100,
        reconnect_grace: Duration::from_secs(30),
        typing_timeout: Duration::from_secs(5),
    }
}

fn mk_identity(id: &str, grants: Grants) -> Identity {
    Identity {
        id: id.into(),
        name: id.to_uppercase(),
        grants,
    }
}

struct Harness {
    room: Room,
    now: Instant,
}

impl Harness {
    fn new() -> Self {
        Self::with(mk_config())
    }

    fn with(cfg: RoomConfig) -> Self {
        let now = Instant::now();
        Self {
            room: Room::new(cfg, now, 1_000_000),
            now,
        }
    }

    fn input(&mut self, input: Input) -> Vec<Output> {
        self.room.handle_input(input, self.now);
        std::iter::from_fn(|| self.room.poll_output()).collect()
    }

    fn join(&mut self, conn: u64, id: &str, grants: Grants) -> Vec<Output> {
        self.input(Input::Join {
            conn: ConnId(conn),
            identity: mk_identity(id, grants),
            resume_from: None,
        })
    }

    fn msg(&mut self, conn: u64, msg: ClientMessage) -> Vec<Output> {
        self.input(Input::Message {
            conn: ConnId(conn),
            msg,
        })
    }

    fn advance(&mut self, by: Duration) -> Vec<Output> {
        self.now += by;
        self.room.handle_timeout(self.now);
        std::iter::from_fn(|| self.room.poll_output()).collect()
    }
}

fn events(outputs: &[Output]) -> Vec<ServerEvent> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { frame, .. } | Output::Broadcast { frame } => {
                Some(serde_json::from_str::<Envelope>(frame).unwrap().event)
            }
            _ => None,
        })
        .collect()
}

fn send(text: &str) -> ClientMessage {
    ClientMessage::Send {
        text: text.into(),
        client_id: None,
    }
}

#[test]
fn join_sends_welcome_then_broadcasts_joined() {
    let mut h = Harness::new();
    let out = h.join(1, "a", Grants::creator());
    let evs = events(&out);
    assert!(
        matches!(&evs[0], ServerEvent::Welcome(w) if w.you == "a" && w.participants.len() == 1)
    );
    assert!(matches!(&evs[1], ServerEvent::Joined { participant } if participant.moderator));
}

#[test]
fn cap_lock_and_ban_refuse_new_identities() {
    let mut h = Harness::new();
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        h.join(i as u64, id, Grants::participant());
    }
    let out = h.join(9, "d", Grants::participant());
    assert!(out.contains(&Output::Close {
        conn: ConnId(9),
        code: close_code::ROOM_FULL,
        reason: "room_full".into()
    }));
    // A known identity may always come back.
    let out = h.join(10, "c", Grants::participant());
    assert!(matches!(
        events(&out)[..],
        [ServerEvent::Welcome(_), ServerEvent::Reconnected { .. }]
    ));
}

#[test]
fn rate_limit_rejects_the_eleventh_message_with_an_error() {
    let mut h = Harness::new();
    h.join(1, "a", Grants::participant());
    for i in 0..10 {
        let out = h.msg(1, send(&format!("m{i}")));
        assert!(matches!(events(&out)[0], ServerEvent::Message { .. }));
    }
    let out = h.msg(1, send("too many"));
    assert!(out.contains(&Output::Rejected {
        code: ErrorCode::RateLimited
    }));
    h.now += Duration::from_secs(1);
    let out = h.msg(1, send("again"));
    assert!(matches!(events(&out)[0], ServerEvent::Message { .. }));
}

#[test]
fn grace_expiry_turns_a_drop_into_left() {
    let mut h = Harness::new();
    h.join(1, "a", Grants::participant());
    h.join(2, "b", Grants::participant());
    let out = h.input(Input::Disconnected {
        conn: ConnId(2),
        clean: false,
    });
    assert!(
        matches!(&events(&out)[..], [ServerEvent::Disconnected { participant_id }] if participant_id == "b")
    );
    assert!(events(&h.advance(Duration::from_secs(29))).is_empty());
    let out = h.advance(Duration::from_secs(1));
    assert!(matches!(
        &events(&out)[..],
        [ServerEvent::Left {
            reason: LeaveReason::Timeout,
            ..
        }]
    ));
}

#[test]
fn typing_is_throttled_and_expires() {
    let mut h = Harness::new();
    h.join(1, "a", Grants::participant());
    assert_eq!(
        events(&h.msg(1, ClientMessage::Typing { typing: true })).len(),
        1
    );
    assert!(events(&h.msg(1, ClientMessage::Typing { typing: true })).is_empty());
    let out = h.advance(Duration::from_secs(5));
    assert!(matches!(
        &events(&out)[..],
        [ServerEvent::Typing { typing: false, .. }]
    ));
}

#[test]
fn idle_and_lifetime_end_the_room() {
    let mut h = Harness::new();
    assert!(h.advance(Duration::from_secs(59)).is_empty());
    h.advance(Duration::from_secs(1));
    assert_eq!(h.room.ended(), Some(CloseReason::Idle));

    let mut h = Harness::new();
    h.join(1, "a", Grants::participant());
    let out = h.advance(Duration::from_secs(3600));
    assert_eq!(h.room.ended(), Some(CloseReason::Lifetime));
    assert!(matches!(
        events(&out)[..],
        [ServerEvent::RoomClosed {
            reason: CloseReason::Lifetime
        }]
    ));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Close {
            conn: ConnId(1),
            ..
        }
    )));
}

#[test]
fn resume_replays_only_what_was_missed() {
    let mut h = Harness::new();
    h.join(1, "a", Grants::participant());
    h.join(2, "b", Grants::participant());
    let seen = match &events(&h.msg(1, send("before")))[0] {
        ServerEvent::Message { id, .. } => *id,
        e => panic!("{e:?}"),
    };
    h.input(Input::Disconnected {
        conn: ConnId(2),
        clean: false,
    });
    h.msg(1, send("while away"));
    let out = h.input(Input::Join {
        conn: ConnId(3),
        identity: mk_identity("b", Grants::participant()),
        resume_from: Some(seen),
    });
    let ServerEvent::Welcome(w) = &events(&out)[0] else {
        panic!("no welcome");
    };
    assert!(w.resumed);
    let missed: Vec<_> = w.missed.iter().map(|e| &e.event).collect();
    assert!(matches!(
        missed[..],
        [
            ServerEvent::Disconnected { .. },
            ServerEvent::Message { .. }
        ]
    ));
}

fn leave(h: &mut Harness, conn: u64) {
    h.input(Input::Disconnected {
        conn: ConnId(conn),
        clean: true,
    });
}

fn closed_with(outputs: &[Output], conn: u64) -> Option<u16> {
    outputs.iter().find_map(|o| match o {
        Output::Close { conn: c, code, .. } if *c == ConnId(conn) => Some(*code),
        _ => None,
    })
}

fn error_code(outputs: &[Output]) -> Option<ErrorCode> {
    events(outputs).into_iter().find_map(|e| match e {
        ServerEvent::Error { code, .. } => Some(code),
        _ => None,
    })
}

#[test]
fn a_muted_participant_is_still_muted_after_leaving_and_rejoining() {
    let mut h = Harness::new();
    h.join(1, "mod", Grants::creator());
    h.join(2, "a", Grants::participant());
    let mute = ClientMessage::Mute {
        participant_id: "a".into(),
        muted: true,
    };
    h.msg(1, mute);
    leave(&mut h, 2);
    let out = h.join(3, "a", Grants::participant());
    let ServerEvent::Welcome(w) = &events(&out)[0] else {
        panic!("no welcome: {out:?}");
    };
    assert!(w.participants.iter().any(|p| p.id == "a" && p.muted));
    assert_eq!(
        error_code(&h.msg(3, send("free again?"))),
        Some(ErrorCode::Muted)
    );

    // The same after a dropped connection whose grace period ran out.
    h.input(Input::Disconnected {
        conn: ConnId(3),
        clean: false,
    });
    h.advance(Duration::from_secs(30));
    assert_eq!(h.room.seated(), 1);
    h.now += Duration::from_secs(60);
    h.join(4, "a", Grants::participant());
    assert_eq!(error_code(&h.msg(4, send("now?"))), Some(ErrorCode::Muted));
}

#[test]
fn an_exhausted_chat_bucket_survives_a_rejoin() {
    let mut h = Harness::new();
    h.join(1, "a", Grants::participant());
    for i in 0..10 {
        assert_eq!(error_code(&h.msg(1, send(&format!("m{i}")))), None);
    }
    leave(&mut h, 1);
    h.join(2, "a", Grants::participant());
    let out = h.msg(2, send("fresh bucket?"));
    assert_eq!(error_code(&out), Some(ErrorCode::RateLimited));
    // It still refills at the configured rate (one per second here).
    h.now += Duration::from_secs(1);
    assert_eq!(error_code(&h.msg(2, send("one more"))), None);
}

#[test]
fn rapid_join_leave_cycles_are_refused_after_the_burst() {
    let mut h = Harness::new();
    h.join(1, "watcher", Grants::participant());
    // The burst is 4 joins per 40 s (one every 10 s).
    for conn in 10..14 {
        let out = h.join(conn, "a", Grants::participant());
        assert_eq!(closed_with(&out, conn), None, "join {conn} refused");
        leave(&mut h, conn);
    }
    let out = h.join(14, "a", Grants::participant());
    assert_eq!(closed_with(&out, 14), Some(close_code::JOIN_RATE_LIMITED));
    assert!(events(&out).is_empty(), "a refused join broadcasts nothing");
    h.now += Duration::from_secs(10);
    let out = h.join(15, "a", Grants::participant());
    assert_eq!(closed_with(&out, 15), None);

    // Reconnects count too, and a refused one leaves the live connection alone.
    let out = h.join(16, "a", Grants::participant());
    assert_eq!(closed_with(&out, 16), Some(close_code::JOIN_RATE_LIMITED));
    assert_eq!(closed_with(&out, 15), None);
    assert_eq!(error_code(&h.msg(15, send("still on 15"))), None);
}

#[test]
fn every_rejected_frame_gets_one_error_even_when_rate_limited() {
    let mut h = Harness::new();
    h.join(1, "a", Grants::participant());
    for i in 0..60 {
        let out = h.input(Input::Rejected {
            conn: ConnId(1),
            code: ErrorCode::Malformed,
            message: "bad".into(),
        });
        let want = if i < 50 {
            ErrorCode::Malformed
        } else {
            ErrorCode::RateLimited
        };
        assert_eq!(error_code(&out), Some(want), "frame {i}");
        assert_eq!(events(&out).len(), 1);
    }
}

fn kick(participant_id: &str, reason: Option<&str>) -> ClientMessage {
    ClientMessage::Kick {
        participant_id: participant_id.into(),
        reason: reason.map(Into::into),
    }
}

/// A moderator (conn 1) kicks "b" (conn 2): the outputs, and b's 4010 close reason.
fn kick_b_with(reason: Option<&str>) -> (Vec<Output>, Option<String>) {
    let mut h = Harness::new();
    h.join(1, "mod", Grants::creator());
    h.join(2, "b", Grants::participant());
    let out = h.msg(1, kick("b", reason));
    let why = out.iter().find_map(|o| match o {
        Output::Close {
            conn: ConnId(2),
            code: close_code::KICKED,
            reason,
        } => Some(reason.to_string()),
        _ => None,
    });
    (out, why)
}

#[test]
fn the_kicked_connection_is_told_the_moderators_reason_and_others_only_kicked() {
    let (out, _) = kick_b_with(Some("spam"));
    assert!(out.contains(&Output::Close {
        conn: ConnId(2),
        code: close_code::KICKED,
        reason: "kicked: spam".into(),
    }));
    assert!(matches!(
        &events(&out)[..],
        [ServerEvent::Left { participant_id, reason: LeaveReason::Kicked }] if participant_id == "b"
    ));
    let frames_mention_it = out.iter().any(|o| match o {
        Output::Send { frame, .. } | Output::Broadcast { frame } => frame.contains("spam"),
        _ => false,
    });
    assert!(!frames_mention_it, "the reason is for the kicked alone");
}

#[test]
fn a_kick_reason_is_one_trimmed_line_and_a_blank_one_is_plain_kicked() {
    assert_eq!(kick_b_with(None).1.as_deref(), Some("kicked"));
    assert_eq!(kick_b_with(Some("")).1.as_deref(), Some("kicked"));
    assert_eq!(
        kick_b_with(Some(" \t\n\u{0} ")).1.as_deref(),
        Some("kicked")
    );
    assert_eq!(
        kick_b_with(Some("\tspam\r\nand\u{7}more  ")).1.as_deref(),
        Some("kicked: spam  and more")
    );
}

#[test]
fn a_long_kick_reason_is_cut_at_a_char_boundary_to_fit_a_close_frame() {
    // 60 two-byte characters and more: "kicked: " leaves room for 57 of them.
    let reason = format!("{}{}", "é".repeat(60), "x".repeat(40));
    let why = kick_b_with(Some(&reason)).1.expect("closed with 4010");
    assert!(why.len() <= MAX_CLOSE_REASON_BYTES, "{} bytes", why.len());
    assert_eq!(why, format!("kicked: {}", "é".repeat(57)));
    assert!(std::str::from_utf8(why.as_bytes()).is_ok());

    // A four-byte character that would end one byte past the limit is dropped whole.
    let reason = format!(
        "{}😀",
        "a".repeat(MAX_CLOSE_REASON_BYTES - "kicked: ".len() - 1)
    );
    let why = kick_b_with(Some(&reason)).1.expect("closed with 4010");
    assert_eq!(why.len(), MAX_CLOSE_REASON_BYTES - 1);
    assert!(why.ends_with('a'));

    // Exactly the limit in characters is accepted (and cut to fit).
    let reason = "é".repeat(MAX_KICK_REASON_CHARS);
    let why = kick_b_with(Some(&reason)).1.expect("closed with 4010");
    assert!(why.len() <= MAX_CLOSE_REASON_BYTES);
}

#[test]
fn an_over_long_kick_reason_is_refused_with_invalid_text_and_kicks_nobody() {
    let mut h = Harness::new();
    h.join(1, "mod", Grants::creator());
    h.join(2, "b", Grants::participant());
    let reason = "x".repeat(MAX_KICK_REASON_CHARS + 1);
    let out = h.msg(1, kick("b", Some(&reason)));
    assert!(!out.iter().any(|o| matches!(o, Output::Close { .. })));
    assert!(out.contains(&Output::Rejected {
        code: ErrorCode::InvalidText
    }));
    assert!(matches!(
        &events(&out)[..],
        [ServerEvent::Error {
            code: ErrorCode::InvalidText,
            ..
        }]
    ));
    // "b" is still here, and not banned: they chat on.
    assert_eq!(h.room.connected(), 2);
    assert_eq!(error_code(&h.msg(2, send("still here"))), None);
}

mod prop;

mod signalling;
