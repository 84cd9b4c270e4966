//! Lifecycle: health endpoints, metrics, idle and lifetime ends, POST /close, shutdown.

use std::time::Duration;

use rendezvous_room::protocol::{close_code, CloseReason, ServerEvent};

use crate::common::*;

#[tokio::test]
async fn health_ready_and_metrics_answer() {
    let room = TestRoom::start().await;
    let mut a = room.join("a").await;
    a.say("hi").await.unwrap();
    expect_message(&mut a, "hi").await;
    a.send_raw("garbage").await.unwrap();
    expect_event(&mut a, |e| matches!(e, ServerEvent::Error { .. })).await;
    assert_eq!(
        reqwest::get(room.http("/healthz")).await.unwrap().status(),
        200
    );
    assert_eq!(
        reqwest::get(room.http("/readyz")).await.unwrap().status(),
        200
    );
    let text = room.metrics().await;
    for name in [
        "rendezvous_room_participants 1",
        "rendezvous_room_messages_in_total",
        "rendezvous_room_messages_out_total",
        "rendezvous_room_bytes_in_total",
        "rendezvous_room_bytes_out_total",
        "rendezvous_room_fanout_latency_seconds_bucket",
        "rendezvous_room_rejected_frames_total{code=\"malformed\"} 1",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
}

#[tokio::test]
async fn an_empty_room_ends_after_the_idle_timeout() {
    let mut room = TestRoom::start_with(|a| a.idle_timeout = Duration::from_millis(300)).await;
    let a = room.join("a").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Somebody inside: not idle.
    a.close().await;
    assert_eq!(room.ended().await, CloseReason::Idle);
}

#[tokio::test]
async fn the_room_ends_at_its_maximum_lifetime() {
    let mut room = TestRoom::start_with(|a| a.max_duration = Duration::from_millis(500)).await;
    let mut a = room.join("a").await;
    let env = expect_event(&mut a, |e| matches!(e, ServerEvent::RoomClosed { .. })).await;
    assert!(matches!(
        env.event,
        ServerEvent::RoomClosed {
            reason: CloseReason::Lifetime
        }
    ));
    assert_eq!(expect_close(&mut a).await.0, close_code::NORMAL);
    assert_eq!(room.ended().await, CloseReason::Lifetime);
}

#[tokio::test]
async fn shutdown_says_goodbye_and_returns() {
    let mut room = TestRoom::start().await;
    let mut a = room.join("a").await;
    let mut b = room.join("b").await;
    room.shutdown();
    for c in [&mut a, &mut b] {
        let env = expect_event(c, |e| matches!(e, ServerEvent::RoomClosed { .. })).await;
        assert!(matches!(
            env.event,
            ServerEvent::RoomClosed {
                reason: CloseReason::Shutdown
            }
        ));
        let (code, reason) = expect_close(c).await;
        assert_eq!((code, reason.as_str()), (close_code::NORMAL, "room_closed"));
    }
    assert_eq!(room.ended().await, CloseReason::Shutdown);
}

#[tokio::test]
async fn post_close_needs_a_moderator_token_for_this_room() {
    let mut room = TestRoom::start().await;
    let mut a = room.join("a").await;
    let http = reqwest::Client::new();
    let url = room.http("/close");
    let res = http.post(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let body: rendezvous_api::ErrorBody = res.json().await.unwrap();
    assert_eq!(body.error.code, "missing_token");
    let res = http
        .post(&url)
        .bearer_auth(room.token("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let other_room = room.token_with("m", rendezvous_api::Grants::creator(), |c| {
        c.room = "r2".into()
    });
    let res = http
        .post(&url)
        .bearer_auth(other_room)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = http
        .post(&url)
        .bearer_auth(room.mod_token("m"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let env = expect_event(&mut a, |e| matches!(e, ServerEvent::RoomClosed { .. })).await;
    assert!(matches!(
        env.event,
        ServerEvent::RoomClosed {
            reason: CloseReason::Closed
        }
    ));
    assert_eq!(room.ended().await, CloseReason::Closed);
}

#[tokio::test]
async fn post_close_sends_every_client_a_close_frame_even_before_hello() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let mut room = TestRoom::start_with(|a| a.hello_timeout = Duration::from_secs(60)).await;
    let mut a = room.join("a").await;
    let mut b = room.join("b").await;
    // Upgraded and admitted, but its `hello` has not come yet.
    let url = format!("{}?token={}", room.url(), room.token("c"));
    let (mut early, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let res = reqwest::Client::new()
        .post(room.http("/close"))
        .bearer_auth(room.mod_token("m"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    for c in [&mut a, &mut b] {
        let (code, reason) = expect_close(c).await;
        assert_eq!((code, reason.as_str()), (close_code::NORMAL, "room_closed"));
    }
    let frame = within(async {
        loop {
            match early.next().await {
                Some(Ok(Message::Close(Some(f)))) => return f,
                Some(Ok(_)) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        }
    })
    .await;
    assert_eq!(
        (u16::from(frame.code), frame.reason.as_str()),
        (close_code::NORMAL, "room_closed")
    );
    assert_eq!(room.ended().await, CloseReason::Closed);
}
