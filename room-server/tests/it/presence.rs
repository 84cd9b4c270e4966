//! Presence, reconnect with resume, typing indicators and read receipts.

use std::time::Duration;

use rendezvous_room::client::{ConnectOptions, RoomClient};
use rendezvous_room::protocol::{ClientMessage, LeaveReason, ServerEvent};

use crate::common::*;

#[tokio::test]
async fn join_and_leave_are_announced_with_the_participant_list() {
    let room = TestRoom::start().await;
    let mut a = room.join("a").await;
    let b = room.join("b").await;
    let ids: Vec<&str> = b
        .welcome()
        .participants
        .iter()
        .map(|p| p.id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    let env = expect_event(
        &mut a,
        |e| matches!(e, ServerEvent::Joined { participant } if participant.id == "b"),
    )
    .await;
    assert!(
        matches!(env.event, ServerEvent::Joined { ref participant } if participant.name == "B" && !participant.moderator)
    );
    b.close().await;
    let env = expect_event(&mut a, |e| matches!(e, ServerEvent::Left { .. })).await;
    assert!(
        matches!(env.event, ServerEvent::Left { ref participant_id, reason: LeaveReason::Left } if participant_id == "b")
    );
}

#[tokio::test]
async fn reconnect_within_grace_resumes_from_a_sequence_number() {
    let room = TestRoom::start().await;
    let mut a = room.join("a").await;
    let mut b = room.join("b").await;
    a.say("before").await.unwrap();
    expect_message(&mut b, "before").await;
    let last = b.last_seq();
    b.drop_connection();
    expect_event(
        &mut a,
        |e| matches!(e, ServerEvent::Disconnected { participant_id } if participant_id == "b"),
    )
    .await;
    a.say("while away 1").await.unwrap();
    a.say("while away 2").await.unwrap();
    expect_message(&mut a, "while away 2").await;

    let mut opts = ConnectOptions::new(room.url(), room.token("b"));
    opts.resume_from = Some(last);
    let b = within(RoomClient::connect_with(opts)).await.unwrap();
    let w = b.welcome();
    assert!(w.resumed);
    assert!(
        w.backlog.is_empty(),
        "a resumed client gets events, not the backlog"
    );
    let texts: Vec<&str> = w
        .missed
        .iter()
        .filter_map(|e| match &e.event {
            ServerEvent::Message { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["while away 1", "while away 2"]);
    assert!(w.missed.iter().all(|e| e.seq > last));
    expect_event(
        &mut a,
        |e| matches!(e, ServerEvent::Reconnected { participant_id } if participant_id == "b"),
    )
    .await;
}

#[tokio::test]
async fn resume_from_too_far_back_falls_back_to_the_backlog() {
    let room = TestRoom::start_with(|a| a.replay_events = 2).await;
    let mut a = room.join("a").await;
    let b = room.join("b").await;
    b.drop_connection();
    for n in 0..4 {
        a.say(format!("m{n}")).await.unwrap();
    }
    expect_message(&mut a, "m3").await;
    let mut opts = ConnectOptions::new(room.url(), room.token("b"));
    opts.resume_from = Some(1);
    let b = within(RoomClient::connect_with(opts)).await.unwrap();
    assert!(!b.welcome().resumed);
    assert_eq!(b.welcome().backlog.len(), 4);
}

#[tokio::test]
async fn no_return_within_grace_means_left() {
    let room = TestRoom::start_with(|a| a.reconnect_grace = Duration::from_millis(100)).await;
    let mut a = room.join("a").await;
    let b = room.join("b").await;
    b.drop_connection();
    expect_event(&mut a, |e| matches!(e, ServerEvent::Disconnected { .. })).await;
    let env = expect_event(&mut a, |e| matches!(e, ServerEvent::Left { .. })).await;
    assert!(matches!(
        env.event,
        ServerEvent::Left {
            reason: LeaveReason::Timeout,
            ..
        }
    ));
    // b is a new participant now.
    let _b = room.join("b").await;
    expect_event(&mut a, |e| matches!(e, ServerEvent::Joined { .. })).await;
}

#[tokio::test]
async fn typing_shows_once_and_expires_by_itself() {
    let room = TestRoom::start_with(|a| a.typing_timeout = Duration::from_millis(200)).await;
    let a = room.join("a").await;
    let mut b = room.join("b").await;
    for _ in 0..3 {
        a.send(&ClientMessage::Typing { typing: true })
            .await
            .unwrap();
    }
    let start = std::time::Instant::now();
    expect_event(&mut b, |e| {
        matches!(e, ServerEvent::Typing { typing: true, .. })
    })
    .await;
    // The next typing event is the expiry, not a repeat of `true`.
    let env = expect_event(&mut b, |e| matches!(e, ServerEvent::Typing { .. })).await;
    assert!(
        matches!(env.event, ServerEvent::Typing { ref participant_id, typing: false } if participant_id == "a")
    );
    assert!(start.elapsed() >= Duration::from_millis(150));

    // Sending a message stops typing at once.
    a.send(&ClientMessage::Typing { typing: true })
        .await
        .unwrap();
    expect_event(&mut b, |e| {
        matches!(e, ServerEvent::Typing { typing: true, .. })
    })
    .await;
    a.say("done").await.unwrap();
    expect_event(&mut b, |e| {
        matches!(e, ServerEvent::Typing { typing: false, .. })
    })
    .await;
    expect_message(&mut b, "done").await;
}

#[tokio::test]
async fn read_receipts_are_shared_and_only_move_forward() {
    let room = TestRoom::start().await;
    let mut a = room.join("a").await;
    let mut b = room.join("b").await;
    a.say("one").await.unwrap();
    let one = expect_message(&mut b, "one").await;
    b.send(&ClientMessage::Read { up_to: one }).await.unwrap();
    let env = expect_event(&mut a, |e| matches!(e, ServerEvent::Read { .. })).await;
    assert_eq!(
        env.event,
        ServerEvent::Read {
            participant_id: "b".into(),
            up_to: one
        }
    );
    // Going backwards is ignored; a late joiner sees the receipt in its welcome.
    b.send(&ClientMessage::Read { up_to: 1 }).await.unwrap();
    let c = room.join("c").await;
    let receipts = &c.welcome().receipts;
    assert_eq!(receipts.len(), 1);
    assert_eq!(
        (receipts[0].participant_id.as_str(), receipts[0].up_to),
        ("b", one)
    );
}

#[tokio::test]
async fn a_leave_frame_leaves_at_once() {
    let room = TestRoom::start().await;
    let mut a = room.join("a").await;
    let mut b = room.join("b").await;
    b.send(&ClientMessage::Leave {}).await.unwrap();
    let (code, _) = expect_close(&mut b).await;
    assert_eq!(code, rendezvous_room::protocol::close_code::NORMAL);
    let env = expect_event(&mut a, |e| matches!(e, ServerEvent::Left { .. })).await;
    assert!(matches!(
        env.event,
        ServerEvent::Left {
            reason: LeaveReason::Left,
            ..
        }
    ));
}
