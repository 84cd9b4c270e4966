//! End to end: rooms through `rendezvous up` as a real process, over HTTP and
//! WebSocket only. Rooms are real `rendezvous room` child processes.

mod common;

use std::time::Duration;

use common::{alive, closed_with, code_of, create_room, join, wait_until, Up, WAIT};
use rendezvous_room::client::RoomClient;
use rendezvous_room::protocol::ClientMessage;
use rendezvous_room::protocol::{Envelope, ServerEvent};
use reqwest::Method;
use serde_json::json;

/// Join through the router and connect the room's WebSocket (through the proxy).
async fn enter(up: &Up, token: &str, invite_url: &str) -> RoomClient {
    let (status, j) = join(up, token, invite_url).await;
    assert_eq!(status, 200, "{j}");
    let ws_url = j["wsUrl"].as_str().unwrap();
    assert!(
        ws_url.starts_with("ws://") && ws_url.ends_with("/ws"),
        "{ws_url}"
    );
    RoomClient::connect(ws_url, j["token"].as_str().unwrap())
        .await
        .expect("connect through the router")
}

/// The next event matching `pred`, within a bounded time.
async fn wait_for(c: &mut RoomClient, what: &str, pred: impl Fn(&Envelope) -> bool) -> Envelope {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            match c.next_event().await {
                Ok(ev) if pred(&ev) => return Ok(ev),
                Ok(_) => continue,
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    match found {
        Ok(Ok(ev)) => ev,
        Ok(Err(e)) => panic!("waiting for {what}: {e}"),
        Err(_) => panic!("waiting for {what}: timed out"),
    }
}

fn is_message(text: &'static str) -> impl Fn(&Envelope) -> bool {
    move |e| matches!(&e.event, ServerEvent::Message { text: t, .. } if t == text)
}

#[tokio::test]
async fn create_invite_join_chat_and_close() {
    let mut up = common::start_up(&[]);
    let ada = up.register("ada").await;
    let bob = up.register("bob").await;

    let room = create_room(&up, &ada, json!({"kind": "chat", "title": "Tea at four"})).await;
    assert_eq!(room["state"], "ready");
    assert_eq!(room["kind"], "chat");
    let invite = room["inviteUrl"].as_str().unwrap().to_owned();
    assert!(
        invite.starts_with(&format!("{}/join/", up.base)),
        "{invite}"
    );
    assert_eq!(code_of(&invite).len(), 22, "128-bit code, base64url");
    let id = room["id"].as_str().unwrap().to_owned();
    let rooms = up.children();
    assert_eq!(rooms.len(), 1, "one room process");

    let (_, mine) = up.call(Method::GET, "/api/rooms", Some(&ada), None).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let (_, theirs) = up.call(Method::GET, "/api/rooms", Some(&bob), None).await;
    assert_eq!(theirs, json!([]));

    let mut a = enter(&up, &ada, &invite).await;
    assert!(
        a.welcome().participants.iter().any(|p| p.moderator),
        "the creator moderates"
    );
    let mut b = enter(&up, &bob, &invite).await;
    a.say("hello bob").await.unwrap();
    wait_for(&mut b, "ada's message", is_message("hello bob")).await;
    b.say("hello ada").await.unwrap();
    wait_for(&mut a, "bob's message", is_message("hello ada")).await;

    // Only the creator may close.
    let (status, body) = up
        .call(
            Method::DELETE,
            &format!("/api/rooms/{id}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("not_creator"))
    );

    let (status, _) = up
        .call(
            Method::DELETE,
            &format!("/api/rooms/{id}"),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, 204);
    wait_for(&mut b, "room_closed", |e| {
        matches!(e.event, ServerEvent::RoomClosed { .. })
    })
    .await;
    assert_eq!(
        closed_with(&mut b).await,
        1000,
        "a clean close, through the proxy"
    );
    wait_until("the room process is gone", || !alive(rooms[0])).await;

    let (status, body) = join(&up, &bob, &invite).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (410, Some("room_closed"))
    );
    let (status, body) = up
        .call(Method::GET, &format!("/api/rooms/{id}"), Some(&ada), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (410, Some("room_ended"))
    );

    up.signal("-INT");
    assert!(up.wait_exit(WAIT).await.success());
}

/// `GET /api/rooms` as `token`: the one room listed.
async fn the_listed_room(up: &Up, token: &str) -> serde_json::Value {
    let (status, rooms) = up.call(Method::GET, "/api/rooms", Some(token), None).await;
    assert_eq!(status, 200, "{rooms}");
    assert_eq!(rooms.as_array().map(Vec::len), Some(1), "{rooms}");
    rooms[0].clone()
}

#[tokio::test]
async fn listed_rooms_show_the_creators_name_and_who_is_inside() {
    let up = common::start_up(&[]);
    let ada = up.register("ada").await;
    let bob = up.register("bob").await;
    let room = create_room(&up, &ada, json!({"kind": "chat", "title": "Counted"})).await;
    assert_eq!(room["creatorName"], "ada display");
    let id = room["id"].as_str().unwrap();
    let listed = the_listed_room(&up, &ada).await;
    assert_eq!(listed["creatorName"], "ada display");
    assert_eq!(listed["participants"], 0, "{listed}");

    let _b = enter(&up, &bob, room["inviteUrl"].as_str().unwrap()).await;
    let deadline = std::time::Instant::now() + WAIT;
    while the_listed_room(&up, &ada).await["participants"] != 1 {
        assert!(std::time::Instant::now() < deadline, "bob never counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, one) = up
        .call(Method::GET, &format!("/api/rooms/{id}"), Some(&ada), None)
        .await;
    assert_eq!(
        (&one["participants"], &one["creatorName"]),
        (&json!(1), &json!("ada display"))
    );

    // A room that does not answer: the count is unknown (null), and the listing does
    // not wait for it longer than its short timeout.
    let pid = up.children()[0].to_string();
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status();
        assert!(ok.unwrap().success());
    };
    signal("-STOP");
    let asked = std::time::Instant::now();
    let listed = the_listed_room(&up, &ada).await;
    let took = asked.elapsed();
    signal("-CONT");
    assert_eq!(listed["participants"], json!(null), "{listed}");
    assert!(
        listed.as_object().unwrap().contains_key("participants"),
        "null, not absent"
    );
    assert!(took < Duration::from_secs(3), "waited {took:?}");
    assert_eq!(the_listed_room(&up, &ada).await["participants"], 1);
}

#[tokio::test]
async fn invites_expire_get_revoked_and_run_out() {
    let up = common::start_up(&[]);
    let ada = up.register("ada").await;
    let bob = up.register("bob").await;
    let carol = up.register("carol").await;
    let room = create_room(&up, &ada, json!({"kind": "both", "title": "Invites"})).await;
    let id = room["id"].as_str().unwrap();
    let invites = format!("/api/rooms/{id}/invites");

    let (status, once) = up
        .call(
            Method::POST,
            &invites,
            Some(&ada),
            Some(json!({"maxUses": 1})),
        )
        .await;
    assert_eq!(status, 201, "{once}");
    let once = once["url"].as_str().unwrap();
    assert_eq!(join(&up, &bob, once).await.0, 200);
    let (status, body) = join(&up, &carol, once).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (410, Some("invite_used_up"))
    );

    let (_, short) = up
        .call(
            Method::POST,
            &invites,
            Some(&ada),
            Some(json!({"expiresIn": 1})),
        )
        .await;
    let (_, revoked) = up.call(Method::POST, &invites, Some(&ada), None).await;
    let (status, _) = up
        .call(
            Method::DELETE,
            &format!("{invites}/{}", revoked["id"].as_str().unwrap()),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = join(&up, &bob, revoked["url"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (410, Some("invite_revoked"))
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = join(&up, &bob, short["url"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (410, Some("invite_expired"))
    );

    // Only the creator manages invites; unknown codes and bad tokens are refused.
    let (status, _) = up.call(Method::POST, &invites, Some(&bob), None).await;
    assert_eq!(status, 403);
    let (status, body) = up
        .call(
            Method::POST,
            "/api/join/AAAAAAAAAAAAAAAAAAAAAA",
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("invite_not_found"))
    );
    let (status, body) = join(&up, "not-a-token", room["inviteUrl"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_token"))
    );
    let (status, body) = up
        .call(
            Method::POST,
            "/api/rooms",
            None,
            Some(json!({"kind": "chat", "title": "x"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, body) = up
        .call(
            Method::POST,
            "/api/rooms",
            Some(&ada),
            Some(json!({"kind": "radio", "title": "x"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("validation_failed"))
    );
}

#[tokio::test]
async fn full_rooms_and_room_limits_are_clear_errors() {
    let up = common::start_up(&["--rooms-per-user", "2"]);
    let ada = up.register("ada").await;
    let bob = up.register("bob").await;
    let carol = up.register("carol").await;
    let room = create_room(
        &up,
        &ada,
        json!({"kind": "chat", "title": "Two", "maxParticipants": 2}),
    )
    .await;
    let invite = room["inviteUrl"].as_str().unwrap();
    let a = enter(&up, &ada, invite).await;
    let mut b = enter(&up, &bob, invite).await;
    let (status, body) = join(&up, &carol, invite).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("room_full"))
    );

    // Moderation close codes reach the client through the proxy unchanged.
    let kick = ClientMessage::Kick {
        participant_id: b.welcome().you.clone(),
        reason: None,
    };
    a.send(&kick).await.unwrap();
    assert_eq!(closed_with(&mut b).await, 4010, "kicked");

    create_room(&up, &ada, json!({"kind": "video", "title": "Second"})).await;
    let (status, body) = up
        .call(
            Method::POST,
            "/api/rooms",
            Some(&ada),
            Some(json!({"kind": "video", "title": "Third"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("room_limit_reached"))
    );
}

#[tokio::test]
async fn a_killed_room_process_is_reported_ended() {
    let mut up = common::start_up(&[]);
    let ada = up.register("ada").await;
    let room = create_room(&up, &ada, json!({"kind": "chat", "title": "Doomed"})).await;
    let id = room["id"].as_str().unwrap();
    let pids = up.children();
    assert_eq!(pids.len(), 1);
    std::process::Command::new("kill")
        .args(["-KILL", &pids[0].to_string()])
        .status()
        .unwrap();

    let path = format!("/api/rooms/{id}");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (status, body) = up.call(Method::GET, &path, Some(&ada), None).await;
        if status == 410 {
            assert_eq!(body["error"]["code"], "room_ended");
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            std::time::Instant::now() < deadline,
            "the router never noticed the room died"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, mine) = up.call(Method::GET, "/api/rooms", Some(&ada), None).await;
    assert_eq!(mine, json!([]));
    let metrics = up
        .http
        .get(up.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"rendezvous_router_rooms_closed_total{reason="ended"} 1"#),
        "{metrics}"
    );

    // Ctrl-C with a live room: the room goes too, no orphans.
    create_room(&up, &ada, json!({"kind": "chat", "title": "Survivor?"})).await;
    let pids = up.children();
    assert_eq!(pids.len(), 1);
    up.signal("-INT");
    assert!(up.wait_exit(WAIT).await.success());
    wait_until("the room process is gone", || !alive(pids[0])).await;
}

#[tokio::test]
async fn rooms_do_not_outlive_a_killed_router() {
    let mut up = common::start_up(&[]);
    let ada = up.register("ada").await;
    create_room(&up, &ada, json!({"kind": "chat", "title": "Orphan"})).await;
    let pids = up.children();
    assert_eq!(pids.len(), 1);
    // SIGKILL: no chance to close anything. The room's stdin pipe closes with it.
    up.signal("-KILL");
    up.wait_exit(WAIT).await;
    let deadline = std::time::Instant::now() + WAIT;
    while alive(pids[0]) {
        assert!(
            std::time::Instant::now() < deadline,
            "room server {} outlived its router",
            pids[0]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
