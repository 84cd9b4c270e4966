//! Hostile input, generated: every client message type, shaped right but with
//! hostile field values (huge, unicode, control and bidi characters, zero and
//! `u64::MAX`, ids that do not exist) or with fields of the wrong JSON type, fed
//! through the same frame → input step as the shell ([`crate::conn::text_input`]).
//!
//! Properties: nothing panics; every refused frame gets exactly one `error` to its
//! sender; every accepted frame has a visible effect unless it is one of the
//! documented idempotent no-ops (`typing`, `read`, `lock` to the current state);
//! and the room keeps serving.

use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::conn::text_input;

/// The message types of protocol v1; the cases below each hold one of every type.
const CLIENT_TYPES: usize = 12;

fn mk_prop_config(tight: bool) -> RoomConfig {
    RoomConfig {
        // Generous limits, so frames reach the handlers rather than the bucket;
        // or tight ones, so refusals also meet an empty bucket.
        rate_limit_messages: if tight { 2 } else { 10_000 },
        join_rate_limit: 10_000,
        max_participants: 10,
        max_text_chars: 500,
        ..mk_config()
    }
}

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("fuzzer".to_owned()),
        Just("watcher".to_owned()),
        Just("mod".to_owned()),
        "\\PC{0,16}",
        ".{0,16}",
        "[\u{0}-\u{1f}\u{7f}\u{200d}\u{202e}\u{feff}\u{fffd}]{1,8}",
        // Long runs (multi-byte chars push them over the frame limit).
        (any::<char>(), 0..3000usize).prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
}

fn hostile_u64() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(u64::MAX), 1..40u64, any::<u64>()]
}

/// A value of (usually) the wrong JSON type for whatever field it replaces.
fn wrong_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(i64::MIN)),
        Just(serde_json::json!(1.5e308)),
        // 2^64: one past u64.
        Just(serde_json::from_str::<Value>("18446744073709551616").unwrap()),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        any::<bool>().prop_map(Value::Bool),
        hostile_string().prop_map(Value::String),
    ]
}

/// One strategy per message type, so every case covers every type.
#[allow(clippy::type_complexity)]
fn one_of_each() -> impl Strategy<Value = Vec<ClientMessage>> {
    let s = hostile_string;
    let n = hostile_u64;
    let opt_s = || proptest::option::of(hostile_string());
    (
        (any::<u32>(), proptest::option::of(hostile_u64())).prop_map(|(v, r)| {
            ClientMessage::Hello {
                protocol_version: v,
                resume_from: r,
            }
        }),
        (s(), opt_s()).prop_map(|(text, client_id)| ClientMessage::Send { text, client_id }),
        (n(), s()).prop_map(|(message_id, text)| ClientMessage::Edit { message_id, text }),
        n().prop_map(|message_id| ClientMessage::Delete { message_id }),
        (n(), s(), any::<bool>()).prop_map(|(message_id, emoji, remove)| ClientMessage::React {
            message_id,
            emoji,
            remove,
        }),
        any::<bool>().prop_map(|typing| ClientMessage::Typing { typing }),
        n().prop_map(|up_to| ClientMessage::Read { up_to }),
        (s(), opt_s()).prop_map(|(participant_id, reason)| ClientMessage::Kick {
            participant_id,
            reason,
        }),
        (s(), any::<bool>()).prop_map(|(participant_id, muted)| ClientMessage::Mute {
            participant_id,
            muted,
        }),
        any::<bool>().prop_map(|locked| ClientMessage::Lock { locked }),
        Just(ClientMessage::EndRoom {}),
        Just(ClientMessage::Leave {}),
    )
        .prop_map(|t| vec![t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7, t.8, t.9, t.10, t.11])
}

/// A message as a frame: its JSON, or its JSON with one field made hostile.
fn frame_of(msg: &ClientMessage, mutation: Option<(usize, Value)>) -> String {
    let mut v = serde_json::to_value(msg).expect("messages serialize");
    if let (Some((pick, bad)), Some(obj)) = (mutation, v.as_object_mut()) {
        let fields: Vec<String> = obj.keys().filter(|k| *k != "type").cloned().collect();
        let field = fields
            .get(pick % fields.len().max(1))
            .cloned()
            .unwrap_or_else(|| "extra".to_owned());
        obj.insert(field, bad);
    }
    v.to_string()
}

/// A case: every type once (shuffled, `end_room` last so the rest meets a live
/// room), each maybe mutated, plus extra random messages of any type.
fn case() -> impl Strategy<Value = (bool, bool, Vec<String>)> {
    let mutation = proptest::option::weighted(0.3, (any::<usize>(), wrong_value()));
    let extra = proptest::collection::vec(
        (one_of_each(), any::<usize>()).prop_map(|(all, i)| all[i % all.len()].clone()),
        0..12,
    );
    (
        any::<bool>(),
        any::<bool>(),
        one_of_each().prop_shuffle(),
        extra,
        proptest::collection::vec(mutation, CLIENT_TYPES + 12),
    )
        .prop_map(|(moderator, tight, mut all, extra, mutations)| {
            all.sort_by_key(|m| matches!(m, ClientMessage::EndRoom {}));
            let end = all.pop().expect("one of each");
            all.extend(extra);
            all.push(end);
            let frames = all
                .iter()
                .zip(mutations.into_iter().chain(std::iter::repeat(None)))
                .map(|(m, mutation)| frame_of(m, mutation))
                .collect();
            (moderator, tight, frames)
        })
}

fn errors_to(outputs: &[Output], conn: ConnId) -> usize {
    outputs
        .iter()
        .filter(|o| matches!(o, Output::Send { conn: c, frame } if *c == conn && frame.contains(r#""type":"error""#)))
        .count()
}

fn idempotent(msg: &ClientMessage) -> bool {
    matches!(
        msg,
        ClientMessage::Typing { .. } | ClientMessage::Read { .. } | ClientMessage::Lock { .. }
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn hostile_frames_of_every_type_are_answered_and_never_break_the_core(
        (moderator, tight, frames) in case()
    ) {
        let mut h = Harness::with(mk_prop_config(tight));
        let grants = if moderator { Grants::creator() } else { Grants::participant() };
        h.join(2, "watcher", Grants::participant());
        let mut fuzzer = ConnId(100);
        h.input(Input::Join { conn: fuzzer, identity: mk_identity("fuzzer", grants), resume_from: None });
        for frame in &frames {
            if h.room.ended().is_some() {
                break;
            }
            if !h.room.conns.contains_key(&fuzzer) {
                // It left (or was refused): come back on a new connection.
                fuzzer = ConnId(fuzzer.0 + 1);
                let identity = mk_identity("fuzzer", grants);
                let out = h.input(Input::Join { conn: fuzzer, identity, resume_from: None });
                if !h.room.conns.contains_key(&fuzzer) {
                    // Only a lock the fuzzer set itself keeps it out, and it is told so.
                    let refused = Output::Close { conn: fuzzer, code: close_code::ROOM_LOCKED, reason: "room_locked".into() };
                    prop_assert!(moderator && out.contains(&refused), "rejoin refused: {:?}", out);
                    break;
                }
            }
            let input = text_input(fuzzer, frame, h.room.cfg.max_frame_bytes);
            let parsed = match &input {
                Input::Message { msg, .. } => Some(msg.clone()),
                _ => None,
            };
            let out = h.input(input);
            h.now += Duration::from_millis(5);
            match parsed {
                None => prop_assert_eq!(errors_to(&out, fuzzer), 1, "refused {} without one error", frame),
                Some(msg) => {
                    prop_assert!(errors_to(&out, fuzzer) <= 1, "{} got several errors", frame);
                    prop_assert!(!out.is_empty() || idempotent(&msg), "{} had no answer", frame);
                }
            }
        }
        let types: std::collections::HashSet<String> = frames
            .iter()
            .map(|f| serde_json::from_str::<Value>(f).unwrap()["type"].as_str().unwrap().to_owned())
            .collect();
        prop_assert_eq!(types.len(), CLIENT_TYPES, "not every type was tried");
        if moderator {
            // `end_room` (last) ends the room, unless mutated into garbage.
            if let Some(reason) = h.room.ended() {
                prop_assert_eq!(reason, CloseReason::Ended);
                prop_assert_eq!(h.room.connected(), 0);
            }
        } else {
            // Nobody without `moderate` can end, lock, kick or mute: the watcher chats on.
            prop_assert!(h.room.ended().is_none());
            h.now += Duration::from_secs(20);
            let out = h.msg(2, send("still here"));
            let delivered = events(&out).iter().any(|e| matches!(e, ServerEvent::Message { .. }));
            prop_assert!(delivered, "the watcher's message was not delivered");
        }
    }
}
