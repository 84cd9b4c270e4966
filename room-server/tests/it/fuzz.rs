//! Arbitrary frames over a real socket: every one gets an answer or is ignored,
//! and the room keeps serving.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use crate::common::*;

/// Frames that look like protocol messages with random fields, plus raw garbage.
pub fn frame_strategy() -> impl Strategy<Value = String> {
    let kinds = prop_oneof![
        Just("hello"),
        Just("send"),
        Just("edit"),
        Just("delete"),
        Just("react"),
        Just("typing"),
        Just("read"),
        Just("kick"),
        Just("mute"),
        Just("lock"),
        Just("offer"),
        Just("x"),
    ];
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        ".{0,20}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("null".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
    ];
    let field = prop_oneof![
        Just("text"),
        Just("messageId"),
        Just("emoji"),
        Just("typing"),
        Just("upTo"),
        Just("participantId"),
        Just("muted"),
        Just("locked"),
        Just("clientId"),
        Just("zz"),
    ];
    let object =
        (kinds, proptest::collection::vec((field, value), 0..4)).prop_map(|(k, fields)| {
            let mut s = format!(r#"{{"type":"{k}""#);
            for (f, v) in fields {
                s.push_str(&format!(r#","{f}":{v}"#));
            }
            s.push('}');
            s
        });
    prop_oneof![
        object,
        ".{0,64}",
        proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
    ]
}

#[tokio::test]
async fn arbitrary_frames_never_break_the_room() {
    let room = TestRoom::start_with(|a| a.rate_limit_messages = 100_000).await;
    // A participant without moderation rights, so random kicks and locks are refused.
    let fuzzer = room.join("fuzzer").await;
    let mut watcher = room.join("watcher").await;
    let mut runner = TestRunner::deterministic();
    let strategy = frame_strategy();
    for _ in 0..500 {
        let frame = strategy.new_tree(&mut runner).unwrap().current();
        fuzzer.send_raw(frame).await.unwrap();
    }
    fuzzer.say("sentinel").await.unwrap();
    expect_message(&mut watcher, "sentinel").await;
    let late = room.join("late").await;
    assert!(late.welcome().participants.iter().any(|p| p.id == "fuzzer"));
    assert!(!late.welcome().locked);
}
