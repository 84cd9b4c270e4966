//! Moderation: kick, mute, lock, end; and who may do it.

use rendezvous_room::protocol::{
    close_code, ClientMessage, CloseReason, ErrorCode, LeaveReason, ServerEvent,
    MAX_CLOSE_REASON_BYTES,
};

use crate::common::*;

#[tokio::test]
async fn kick_closes_the_target_and_bans_them() {
    let room = TestRoom::start().await;
    let m = room.join_mod("mod").await;
    let mut a = room.join("a").await;
    let mut b = room.join("b").await;
    m.send(&ClientMessage::Kick {
        participant_id: "b".into(),
        reason: None,
    })
    .await
    .unwrap();
    let (code, reason) = expect_close(&mut b).await;
    assert_eq!((code, reason.as_str()), (close_code::KICKED, "kicked"));
    let env = expect_event(&mut a, |e| matches!(e, ServerEvent::Left { .. })).await;
    assert!(
        matches!(env.event, ServerEvent::Left { ref participant_id, reason: LeaveReason::Kicked } if participant_id == "b")
    );
    match room.try_join(room.token("b")).await {
        Err(rendezvous_room::client::ClientError::Refused { code, .. }) => {
            assert_eq!(code, close_code::BANNED)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_kicked_client_reads_the_moderators_reason_in_the_close_frame() {
    let room = TestRoom::start().await;
    let m = room.join_mod("mod").await;
    let mut a = room.join("a").await;
    let mut b = room.join("b").await;
    let mut c = room.join("c").await;
    m.send(&ClientMessage::Kick {
        participant_id: "b".into(),
        reason: Some("too many puns".into()),
    })
    .await
    .unwrap();
    let (code, reason) = expect_close(&mut b).await;
    assert_eq!(
        (code, reason.as_str()),
        (close_code::KICKED, "kicked: too many puns")
    );
    let env = expect_event(&mut a, |e| matches!(e, ServerEvent::Left { .. })).await;
    assert!(
        matches!(env.event, ServerEvent::Left { ref participant_id, reason: LeaveReason::Kicked } if participant_id == "b")
    );

    // A long multi-byte reason still makes a valid close frame, cut to fit.
    m.send(&ClientMessage::Kick {
        participant_id: "c".into(),
        reason: Some("é".repeat(150)),
    })
    .await
    .unwrap();
    let (code, reason) = expect_close(&mut c).await;
    assert_eq!(code, close_code::KICKED);
    assert!(
        reason.len() <= MAX_CLOSE_REASON_BYTES,
        "{} bytes",
        reason.len()
    );
    assert_eq!(reason, format!("kicked: {}", "é".repeat(57)));
}

#[tokio::test]
async fn moderation_needs_the_moderate_grant() {
    let room = TestRoom::start().await;
    let mut a = room.join("a").await;
    let _b = room.join("b").await;
    for msg in [
        ClientMessage::Kick {
            participant_id: "b".into(),
            reason: None,
        },
        ClientMessage::Mute {
            participant_id: "b".into(),
            muted: true,
        },
        ClientMessage::Lock { locked: true },
        ClientMessage::EndRoom {},
    ] {
        a.send(&msg).await.unwrap();
        let env = expect_event(&mut a, |e| matches!(e, ServerEvent::Error { .. })).await;
        assert!(matches!(
            env.event,
            ServerEvent::Error {
                code: ErrorCode::Forbidden,
                ..
            }
        ));
    }
}

#[tokio::test]
async fn mute_stops_chat_until_unmuted() {
    let room = TestRoom::start().await;
    let m = room.join_mod("mod").await;
    let mut a = room.join("a").await;
    m.send(&ClientMessage::Mute {
        participant_id: "a".into(),
        muted: true,
    })
    .await
    .unwrap();
    let env = expect_event(&mut a, |e| matches!(e, ServerEvent::Muted { .. })).await;
    assert!(matches!(env.event, ServerEvent::Muted { muted: true, ref by, .. } if by == "mod"));
    a.say("can you hear me").await.unwrap();
    let env = expect_event(&mut a, |e| matches!(e, ServerEvent::Error { .. })).await;
    assert!(matches!(
        env.event,
        ServerEvent::Error {
            code: ErrorCode::Muted,
            ..
        }
    ));
    m.send(&ClientMessage::Mute {
        participant_id: "a".into(),
        muted: false,
    })
    .await
    .unwrap();
    expect_event(&mut a, |e| {
        matches!(e, ServerEvent::Muted { muted: false, .. })
    })
    .await;
    a.say("back").await.unwrap();
    expect_message(&mut a, "back").await;
}

#[tokio::test]
async fn lock_refuses_new_joins() {
    let room = TestRoom::start().await;
    let mut m = room.join_mod("mod").await;
    m.send(&ClientMessage::Lock { locked: true }).await.unwrap();
    expect_event(&mut m, |e| {
        matches!(e, ServerEvent::Locked { locked: true, .. })
    })
    .await;
    match room.try_join(room.token("a")).await {
        Err(rendezvous_room::client::ClientError::Refused { code, .. }) => {
            assert_eq!(code, close_code::ROOM_LOCKED)
        }
        other => panic!("{other:?}"),
    }
    m.send(&ClientMessage::Lock { locked: false })
        .await
        .unwrap();
    expect_event(&mut m, |e| {
        matches!(e, ServerEvent::Locked { locked: false, .. })
    })
    .await;
    let a = room.join("a").await;
    assert!(!a.welcome().locked);
}

#[tokio::test]
async fn end_room_closes_everyone_and_the_server_returns() {
    let mut room = TestRoom::start().await;
    let m = room.join_mod("mod").await;
    let mut a = room.join("a").await;
    m.send(&ClientMessage::EndRoom {}).await.unwrap();
    let env = expect_event(&mut a, |e| matches!(e, ServerEvent::RoomClosed { .. })).await;
    assert!(matches!(
        env.event,
        ServerEvent::RoomClosed {
            reason: CloseReason::Ended
        }
    ));
    let (code, _) = expect_close(&mut a).await;
    assert_eq!(code, close_code::NORMAL);
    assert_eq!(room.ended().await, CloseReason::Ended);
}

#[tokio::test]
async fn a_muted_participant_is_still_muted_after_rejoining() {
    let room = TestRoom::start().await;
    let m = room.join_mod("mod").await;
    let mut a = room.join("a").await;
    m.send(&ClientMessage::Mute {
        participant_id: "a".into(),
        muted: true,
    })
    .await
    .unwrap();
    expect_event(&mut a, |e| {
        matches!(e, ServerEvent::Muted { muted: true, .. })
    })
    .await;
    a.close().await;
    let mut a = room.join("a").await;
    let me = a
        .welcome()
        .participants
        .iter()
        .find(|p| p.id == "a")
        .unwrap();
    assert!(me.muted, "the welcome shows the mute");
    a.say("fresh start?").await.unwrap();
    let env = expect_event(&mut a, |e| matches!(e, ServerEvent::Error { .. })).await;
    assert!(matches!(
        env.event,
        ServerEvent::Error {
            code: ErrorCode::Muted,
            ..
        }
    ));
}
