//! Heartbeats: the server pings every joined connection; a peer that goes silent
//! (no pong, no frame) is treated as dropped, so a dead client loses its seat and
//! cannot keep an empty room alive, while a live one stays however quiet it is.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rendezvous_room::protocol::{CloseReason, LeaveReason, ServerEvent};
use rendezvous_room::Args;
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

/// Pings every 50 ms; silent for 50 + 150 ms counts as dropped.
fn fast_heartbeat(a: &mut Args) {
    a.ping_interval = Duration::from_millis(50);
    a.pong_timeout = Duration::from_millis(150);
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_dropped_and_its_seat_freed() {
    let room = TestRoom::start_with(|a| {
        fast_heartbeat(a);
        a.reconnect_grace = Duration::from_millis(200);
        a.max_participants = 2;
    })
    .await;
    let mut watcher = room.join("watcher").await;
    // Joined, then never polled again: no pongs, no frames, the socket stays open.
    let _dead = raw_join(&room, "dead").await;
    expect_event(
        &mut watcher,
        |e| matches!(e, ServerEvent::Disconnected { participant_id } if participant_id == "dead"),
    )
    .await;
    let env = expect_event(&mut watcher, |e| matches!(e, ServerEvent::Left { .. })).await;
    assert!(matches!(
        env.event,
        ServerEvent::Left { ref participant_id, reason: LeaveReason::Timeout } if participant_id == "dead"
    ));
    // The room is at its cap of two unless the dead seat was given back.
    let next = within(room.try_join(room.token("next")))
        .await
        .expect("the dead client's seat is free");
    assert_eq!(next.welcome().participants.len(), 2);
}

#[tokio::test]
async fn an_idle_timeout_room_with_only_a_dead_client_ends() {
    let mut room = TestRoom::start_with(|a| {
        fast_heartbeat(a);
        a.idle_timeout = Duration::from_millis(300);
    })
    .await;
    let _dead = raw_join(&room, "dead").await;
    assert_eq!(room.ended().await, CloseReason::Idle);
}

#[tokio::test]
async fn a_live_client_that_answers_pings_stays_past_the_bound() {
    let room = TestRoom::start_with(fast_heartbeat).await;
    let mut quiet = room.join("quiet").await;
    let mut live = raw_join(&room, "live").await;
    // Reading is what makes tungstenite answer; count pings until well past the
    // 200 ms bound (ten pings: about 500 ms), watching for any sign of a drop.
    let mut pings = 0;
    within(async {
        while pings < 10 {
            match live.next().await {
                Some(Ok(Message::Ping(_))) => pings += 1,
                Some(Ok(Message::Text(t))) => {
                    assert!(!t.contains(r#""type":"disconnected""#), "{t}");
                }
                other => panic!("the live client lost its connection: {other:?}"),
            }
        }
    })
    .await;
    live.send(Message::text(r#"{"type":"send","text":"still here"}"#))
        .await
        .unwrap();
    // The quiet RoomClient, silent all along, hears it: it too answered every ping.
    expect_message(&mut quiet, "still here").await;
    quiet.say("me too").await.unwrap();
    expect_message(&mut quiet, "me too").await;
}
