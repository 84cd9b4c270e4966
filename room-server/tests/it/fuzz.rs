//! Arbitrary frames over a real socket: every refused one gets an `error`, and
//! the room keeps serving. (`leave` is left to the core's property test, which
//! covers every type precisely: here it would end the fuzzer's connection.)

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
        Just("end_room"),
        Just("offer"),
        Just("x"),
    ];
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        ".{0,20}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        // Long enough to pass the frame limit, short of the 4× hard limit.
        (0..15_000usize).prop_map(|n| format!("\"{}\"", "x".repeat(n))),
        "[\u{0}-\u{1f}\u{202e}\u{feff}\u{1F600}]{1,8}"
            .prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_owned()),
        Just("-1".to_owned()),
        Just("1e308".to_owned()),
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
        Just("protocolVersion"),
        Just("resumeFrom"),
        Just("reason"),
        Just("remove"),
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
async fn arbitrary_frames_never_break_the_room_and_refusals_get_errors() {
    use rendezvous_room::client::{ConnectOptions, RoomClient};
    use rendezvous_room::protocol::{parse_client_message, ErrorCode, ServerEvent};

    let room = TestRoom::start_with(|a| a.rate_limit_messages = 100_000).await;
    let max = rendezvous_room::Args::with_defaults("r", "{}").max_frame_bytes;
    // A participant without moderation rights, so random kicks and locks are refused.
    let mut opts = ConnectOptions::new(room.url(), room.token("fuzzer"));
    // Room for every answer, so the fuzzer is never cut off as a slow consumer.
    opts.event_buffer = 4096;
    let mut fuzzer = within(RoomClient::connect_with(opts)).await.unwrap();
    let mut watcher = room.join("watcher").await;
    let mut runner = TestRunner::deterministic();
    let strategy = frame_strategy();
    let mut refusals = 0;
    for _ in 0..500 {
        let frame = strategy.new_tree(&mut runner).unwrap().current();
        if frame.len() > max || parse_client_message(&frame).is_err() {
            refusals += 1;
        }
        fuzzer.send_raw(frame).await.unwrap();
    }
    fuzzer.say("sentinel").await.unwrap();
    // Frames are answered in order: by our own sentinel, every answer is in.
    let mut parse_errors = 0;
    within(async {
        loop {
            let env = fuzzer
                .next_event()
                .await
                .expect("the fuzzer stays connected");
            match env.event {
                ServerEvent::Error {
                    code:
                        ErrorCode::Malformed | ErrorCode::NotImplemented | ErrorCode::FrameTooLarge,
                    ..
                } => parse_errors += 1,
                ServerEvent::Message { text, .. } if text == "sentinel" => break,
                _ => {}
            }
        }
    })
    .await;
    assert!(refusals > 50, "the strategy makes refusals ({refusals})");
    assert!(
        parse_errors >= refusals,
        "{refusals} refused frames but only {parse_errors} errors"
    );
    expect_message(&mut watcher, "sentinel").await;
    let late = room.join("late").await;
    assert!(late.welcome().participants.iter().any(|p| p.id == "fuzzer"));
    assert!(!late.welcome().locked);
}
