//! Chat: ordered fan-out, backlog for late joiners, edits, deletes, reactions.

use rendezvous_room::protocol::{ClientMessage, ErrorCode, ServerEvent};

use crate::common::*;

#[tokio::test]
async fn fan_out_reaches_everyone_in_the_same_order() {
    const PEOPLE: usize = 20;
    const SENDERS: usize = 5;
    const EACH: usize = 10;
    let room = TestRoom::start().await;
    let mut clients = Vec::new();
    for i in 0..PEOPLE {
        clients.push(room.join(&format!("p{i}")).await);
    }
    // Everyone sends concurrently.
    for (s, client) in clients.iter().enumerate().take(SENDERS) {
        for n in 0..EACH {
            client.say(format!("{s}:{n}")).await.unwrap();
        }
    }
    let mut orders = Vec::new();
    for client in &mut clients {
        let mut seen = Vec::new();
        while seen.len() < SENDERS * EACH {
            let env = expect_event(client, |e| matches!(e, ServerEvent::Message { .. })).await;
            let ServerEvent::Message { text, id, .. } = env.event else {
                unreachable!()
            };
            assert_eq!(id, env.seq, "a message's id is its seq");
            seen.push((env.seq, text));
        }
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "seq increases");
        for s in 0..SENDERS {
            let mine: Vec<usize> = seen
                .iter()
                .filter_map(|(_, t)| t.strip_prefix(&format!("{s}:")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..EACH).collect::<Vec<_>>(), "per-sender order");
        }
        orders.push(seen);
    }
    assert!(
        orders.windows(2).all(|w| w[0] == w[1]),
        "everyone saw one order"
    );
}

#[tokio::test]
async fn late_joiner_gets_a_bounded_backlog_with_edits_applied() {
    let room = TestRoom::start_with(|a| a.backlog_messages = 3).await;
    let mut a = room.join("a").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        a.say(format!("m{n}")).await.unwrap();
        ids.push(expect_message(&mut a, &format!("m{n}")).await);
    }
    a.send(&ClientMessage::Edit {
        message_id: ids[3],
        text: "m3 edited".into(),
    })
    .await
    .unwrap();
    expect_event(&mut a, |e| matches!(e, ServerEvent::Edited { .. })).await;
    a.send(&ClientMessage::Delete { message_id: ids[4] })
        .await
        .unwrap();
    expect_event(&mut a, |e| matches!(e, ServerEvent::Deleted { .. })).await;
    a.send(&ClientMessage::React {
        message_id: ids[2],
        emoji: "👍".into(),
        remove: false,
    })
    .await
    .unwrap();
    expect_event(&mut a, |e| matches!(e, ServerEvent::Reacted { .. })).await;

    let late = room.join("late").await;
    let backlog = &late.welcome().backlog;
    let texts: Vec<&str> = backlog.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["m2", "m3 edited"]);
    assert!(backlog[1].edited);
    assert_eq!(backlog[0].reactions[0].participants, ["a"]);
    assert!(!late.welcome().resumed);
}

#[tokio::test]
async fn only_the_author_may_edit_or_delete() {
    let room = TestRoom::start().await;
    let mut a = room.join("a").await;
    let mut b = room.join("b").await;
    a.say("mine").await.unwrap();
    let id = expect_message(&mut b, "mine").await;
    b.send(&ClientMessage::Edit {
        message_id: id,
        text: "hijacked".into(),
    })
    .await
    .unwrap();
    let err = expect_event(&mut b, |e| matches!(e, ServerEvent::Error { .. })).await;
    assert!(matches!(
        err.event,
        ServerEvent::Error {
            code: ErrorCode::NotYours,
            ..
        }
    ));
    b.send(&ClientMessage::Delete { message_id: 999 })
        .await
        .unwrap();
    let err = expect_event(&mut b, |e| matches!(e, ServerEvent::Error { .. })).await;
    assert!(matches!(
        err.event,
        ServerEvent::Error {
            code: ErrorCode::NotFound,
            ..
        }
    ));

    a.send(&ClientMessage::Edit {
        message_id: id,
        text: "mine, edited".into(),
    })
    .await
    .unwrap();
    let env = expect_event(&mut b, |e| matches!(e, ServerEvent::Edited { .. })).await;
    assert_eq!(
        env.event,
        ServerEvent::Edited {
            message_id: id,
            text: "mine, edited".into()
        }
    );
    b.send(&ClientMessage::React {
        message_id: id,
        emoji: "🎉".into(),
        remove: false,
    })
    .await
    .unwrap();
    let env = expect_event(&mut a, |e| matches!(e, ServerEvent::Reacted { .. })).await;
    assert!(
        matches!(env.event, ServerEvent::Reacted { ref participant_id, removed: false, .. } if participant_id == "b")
    );
}

#[tokio::test]
async fn client_id_is_echoed_for_correlation() {
    let room = TestRoom::start().await;
    let mut a = room.join("a").await;
    a.send(&ClientMessage::Send {
        text: "hi".into(),
        client_id: Some("c-1".into()),
    })
    .await
    .unwrap();
    let env = expect_event(&mut a, |e| matches!(e, ServerEvent::Message { .. })).await;
    assert!(matches!(env.event, ServerEvent::Message { client_id: Some(ref c), .. } if c == "c-1"));
}
