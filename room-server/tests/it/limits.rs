//! Limits: rate, frame size, text size, malformed frames, slow consumers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rendezvous_room::client::{ConnectOptions, Incoming, RoomClient};
use rendezvous_room::protocol::{close_code, ErrorCode, ServerEvent};

use crate::common::*;

async fn expect_error(client: &mut RoomClient) -> ErrorCode {
    let env = expect_event(client, |e| matches!(e, ServerEvent::Error { .. })).await;
    match env.event {
        ServerEvent::Error { code, .. } => code,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn excess_messages_get_a_rate_limit_error_not_a_disconnect() {
    let room = TestRoom::start().await;
    let mut a = room.join("a").await;
    for n in 0..11 {
        a.say(format!("m{n}")).await.unwrap();
    }
    assert_eq!(expect_error(&mut a).await, ErrorCode::RateLimited);
    // Still connected: other frames (a separate, larger bucket) still work.
    a.send(&rendezvous_room::protocol::ClientMessage::Read { up_to: 2 })
        .await
        .unwrap();
    expect_event(&mut a, |e| matches!(e, ServerEvent::Read { .. })).await;
}

#[tokio::test]
async fn oversized_frames_and_texts_are_refused() {
    let room = TestRoom::start_with(|a| {
        a.max_frame_bytes = 1024;
        a.max_text_chars = 100;
    })
    .await;
    let mut a = room.join("a").await;
    a.say("x".repeat(101)).await.unwrap();
    assert_eq!(expect_error(&mut a).await, ErrorCode::InvalidText);
    a.say("x".repeat(2000)).await.unwrap();
    assert_eq!(expect_error(&mut a).await, ErrorCode::FrameTooLarge);
    a.say("fits").await.unwrap();
    expect_message(&mut a, "fits").await;
    // Beyond four times the limit the transport gives up: 1009.
    a.say("x".repeat(10_000)).await.unwrap();
    let (code, _) = expect_close(&mut a).await;
    assert_eq!(code, close_code::TOO_BIG);
}

#[tokio::test]
async fn malformed_frames_get_errors_and_the_room_keeps_serving() {
    let room = TestRoom::start().await;
    let mut a = room.join("a").await;
    let mut b = room.join("b").await;
    for bad in [
        "",
        "{",
        "null",
        r#"{"type":"nope"}"#,
        r#"{"type":"send"}"#,
        r#"{"type":"edit","messageId":"x"}"#,
    ] {
        a.send_raw(bad).await.unwrap();
        assert_eq!(expect_error(&mut a).await, ErrorCode::Malformed, "{bad:?}");
    }
    a.send_raw(r#"{"type":"track","mid":"0"}"#).await.unwrap();
    assert_eq!(expect_error(&mut a).await, ErrorCode::NotImplemented);
    a.say("still here").await.unwrap();
    expect_message(&mut b, "still here").await;
}

#[tokio::test]
async fn a_slow_consumer_is_cut_off_while_others_keep_receiving() {
    let room = TestRoom::start_with(|a| {
        a.outbox_frames = 32;
        a.rate_limit_messages = 100_000;
        a.max_text_chars = 20_000;
        a.max_frame_bytes = 32 * 1024;
        a.reconnect_grace = Duration::from_secs(60);
    })
    .await;
    let mut fast = room.join("fast").await;
    // The slow client never reads: its one-slot event buffer fills, its reader
    // stops, TCP pushes back and the server's outbox for it overflows.
    let mut opts = ConnectOptions::new(room.url(), room.token("slow"));
    opts.event_buffer = 1;
    let _slow = within(RoomClient::connect_with(opts)).await.unwrap();
    let mut talker = room.join("talker").await;
    let stop = Arc::new(AtomicBool::new(false));
    let stop_talking = stop.clone();
    let big = "y".repeat(16 * 1024);
    let send = tokio::spawn(async move {
        for _ in 0..4000 {
            if stop_talking.load(Ordering::Relaxed) || talker.say(big.clone()).await.is_err() {
                break;
            }
            // Wait for our own echo: paced like this, healthy clients never fall
            // behind, while the one that does not read at all still fills up.
            loop {
                match talker.recv().await {
                    Some(Incoming::Event(env))
                        if matches!(env.event, ServerEvent::Message { .. }) =>
                    {
                        break
                    }
                    Some(Incoming::Event(_)) => continue,
                    _ => return talker,
                }
            }
        }
        talker
    });
    let mut delivered = 0usize;
    within(async {
        loop {
            match fast.recv().await {
                Some(Incoming::Event(env)) => match env.event {
                    ServerEvent::Message { .. } => delivered += 1,
                    ServerEvent::Disconnected { participant_id } if participant_id == "slow" => {
                        stop.store(true, Ordering::Relaxed);
                        break;
                    }
                    _ => {}
                },
                other => panic!("fast client lost: {other:?}"),
            }
        }
    })
    .await;
    let talker = within(send).await.unwrap();
    talker.say("after").await.unwrap();
    expect_message(&mut fast, "after").await;
    assert!(delivered > 0);
}

#[tokio::test]
async fn an_exhausted_chat_rate_limit_survives_a_rejoin() {
    let room = TestRoom::start_with(|a| a.rate_limit_window = Duration::from_secs(600)).await;
    let mut a = room.join("a").await;
    for n in 0..10 {
        a.say(format!("m{n}")).await.unwrap();
    }
    expect_message(&mut a, "m9").await;
    a.close().await;
    let mut a = room.join("a").await;
    a.say("a fresh bucket?").await.unwrap();
    assert_eq!(expect_error(&mut a).await, ErrorCode::RateLimited);
}

#[tokio::test]
async fn rapid_join_leave_cycles_are_refused_after_the_burst() {
    let room = TestRoom::start_with(|a| {
        a.rate_limit_joins = 3;
        a.rate_limit_joins_window = Duration::from_secs(600);
    })
    .await;
    for _ in 0..3 {
        room.join("a").await.close().await;
    }
    let (code, reason) = match room.try_join(room.token("a")).await {
        Err(rendezvous_room::client::ClientError::Refused { code, reason }) => (code, reason),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (code, reason.as_str()),
        (close_code::JOIN_RATE_LIMITED, "join_rate_limited")
    );
    // Someone else is not affected.
    room.join("b").await;
}
