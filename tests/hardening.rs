//! End to end, as an attacker and a flaky network would try it: who sees invite
//! links, what a use of a link is, room-token refresh, a room's environment, what
//! reaches the logs, and rooms whose create or close races with the client.

mod common;

use std::time::Duration;

use common::{alive, closed_with, code_of, create_room, join, wait_until, Up, WAIT};
use rendezvous_room::client::{ConnectOptions, Incoming, RoomClient, TokenVia};
use rendezvous_room::protocol::ServerEvent;
use reqwest::Method;
use serde_json::{json, Value};

async fn invite(up: &Up, token: &str, id: &str, body: Value) -> String {
    let path = format!("/api/rooms/{id}/invites");
    let (status, inv) = up.call(Method::POST, &path, Some(token), Some(body)).await;
    assert_eq!(status, 201, "{inv}");
    inv["url"].as_str().unwrap().to_owned()
}

fn error_of(res: &(u16, Value)) -> (u16, &str) {
    (res.0, res.1["error"]["code"].as_str().unwrap_or(""))
}

#[tokio::test]
async fn joiners_see_the_room_but_never_its_links() {
    let up = common::start_up(&[]);
    let ada = up.register("ada").await;
    let bob = up.register("bob").await;
    let room = create_room(&up, &ada, json!({"kind": "chat", "title": "Private"})).await;
    let id = room["id"].as_str().unwrap();
    let permanent = room["inviteUrl"].as_str().unwrap();
    let once = invite(&up, &ada, id, json!({"maxUses": 1})).await;

    let (status, j) = join(&up, &bob, &once).await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["room"]["title"], "Private");
    assert!(j["room"].get("inviteUrl").is_none(), "{j}");
    assert!(j["room"].get("invites").is_none(), "{j}");
    assert!(!j.to_string().contains(&code_of(permanent)), "{j}");
    // The creator still sees them.
    let (_, mine) = join(&up, &ada, permanent).await;
    assert_eq!(mine["room"]["inviteUrl"], permanent);
    assert_eq!(mine["room"]["invites"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_person_uses_a_link_once_and_refreshes_their_token_without_it() {
    let up = common::start_up(&["--room-token-ttl", "2s"]);
    let ada = up.register("ada").await;
    let bob = up.register("bob").await;
    let carol = up.register("carol").await;
    let room = create_room(&up, &ada, json!({"kind": "chat", "title": "Once"})).await;
    let id = room["id"].as_str().unwrap().to_owned();
    let once = invite(&up, &ada, &id, json!({"maxUses": 1})).await;

    // A double-click, then a reconnect: one person, one use.
    let first = join(&up, &bob, &once).await;
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(join(&up, &bob, &once).await.0, 200);
    assert_eq!(
        error_of(&join(&up, &carol, &once).await),
        (410, "invite_used_up")
    );
    let (_, listed) = up
        .call(Method::GET, &format!("/api/rooms/{id}"), Some(&ada), None)
        .await;
    let uses: Vec<_> = listed["invites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["uses"].as_u64().unwrap())
        .collect();
    assert_eq!(uses, [0, 1], "{listed}");

    // The room token expires; the same person trades it for a fresh one.
    let old = first.1["token"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let refresh = format!("/api/rooms/{id}/token");
    let (status, fresh) = up
        .call(
            Method::POST,
            &refresh,
            Some(&bob),
            Some(json!({"roomToken": old})),
        )
        .await;
    assert_eq!(status, 200, "{fresh}");
    assert_eq!(fresh["expiresIn"], 2);
    let c = RoomClient::connect(
        fresh["wsUrl"].as_str().unwrap(),
        fresh["token"].as_str().unwrap(),
    )
    .await
    .expect("the fresh token admits");
    drop(c);

    // Someone else's token, another room's, or garbage: refused.
    let (status, body) = up
        .call(
            Method::POST,
            &refresh,
            Some(&carol),
            Some(json!({"roomToken": old})),
        )
        .await;
    assert_eq!(error_of(&(status, body)), (401, "invalid_room_token"));
    let other = create_room(&up, &ada, json!({"kind": "chat", "title": "Other"})).await;
    let other_refresh = format!("/api/rooms/{}/token", other["id"].as_str().unwrap());
    let res = up
        .call(
            Method::POST,
            &other_refresh,
            Some(&bob),
            Some(json!({"roomToken": old})),
        )
        .await;
    assert_eq!(error_of(&res), (401, "invalid_room_token"));
    let res = up
        .call(
            Method::POST,
            &refresh,
            Some(&bob),
            Some(json!({"roomToken": "x.y.z"})),
        )
        .await;
    assert_eq!(error_of(&res), (401, "invalid_room_token"));
    // A closed room gives no tokens.
    let (status, _) = up
        .call(
            Method::DELETE,
            &format!("/api/rooms/{id}"),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let res = up
        .call(
            Method::POST,
            &refresh,
            Some(&bob),
            Some(json!({"roomToken": old})),
        )
        .await;
    assert_eq!(error_of(&res), (410, "room_ended"));
}

#[tokio::test]
async fn a_room_process_inherits_no_credentials() {
    let up = common::start_up_with(
        common::fresh_data_dir(),
        &[],
        &[
            ("AWS_SECRET_ACCESS_KEY", "do-not-leak"),
            (
                "RENDEZVOUS_USERS_DATABASE_URL",
                "postgres://secret@db/users",
            ),
        ],
        None,
    );
    let ada = up.register("ada").await;
    create_room(&up, &ada, json!({"kind": "chat", "title": "Clean"})).await;
    let pids = up.children();
    assert_eq!(pids.len(), 1);
    let environ = std::fs::read(format!("/proc/{}/environ", pids[0])).unwrap();
    let names: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| {
            let v = String::from_utf8_lossy(v);
            v.split('=').next().unwrap_or("").to_owned()
        })
        .collect();
    let allowed = rendezvous_router::runtime::local::ROOM_ENV_ALLOWLIST;
    for name in &names {
        assert!(
            allowed.contains(&name.as_str()) || name == "RENDEZVOUS_ROOM_TOKEN_JWKS",
            "the room inherited {name}: {names:?}"
        );
    }
    assert!(!String::from_utf8_lossy(&environ).contains("do-not-leak"));
}

#[tokio::test]
async fn no_token_or_invite_code_reaches_the_logs() {
    let dir = common::fresh_data_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let log = std::env::temp_dir().join(format!(
        "rendezvous-log-{}.txt",
        uuid::Uuid::new_v4().simple()
    ));
    let mut up = common::start_up_with(dir, &[], &[("RUST_LOG", "debug")], Some(&log));
    let ada = up.register("ada").await;
    let room = create_room(&up, &ada, json!({"kind": "chat", "title": "Logs"})).await;
    let link = room["inviteUrl"].as_str().unwrap().to_owned();
    let (status, j) = join(&up, &ada, &link).await;
    assert_eq!(status, 200);
    let room_token = j["token"].as_str().unwrap().to_owned();
    // The old way, token in the query, through the router's proxy.
    let mut opts = ConnectOptions::new(j["wsUrl"].as_str().unwrap(), &room_token);
    opts.token_via = TokenVia::Query;
    let c = RoomClient::connect_with(opts).await.expect("query token");
    c.say("hello").await.unwrap();
    c.close().await;
    // An unknown code and a bad token in a query, too.
    join(&up, &ada, "/join/AAAAAAAAAAAAAAAAAAAAAA").await;
    let id = room["id"].as_str().unwrap();
    let _ = up
        .http
        .get(up.url(&format!("/rooms/{id}/ws?token=SECRETQUERYVALUE")))
        .send()
        .await;
    up.signal("-TERM");
    assert!(up.wait_exit(WAIT).await.success());
    let logs = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(logs.contains("DEBUG"), "debug logging was on");
    for (what, secret) in [
        ("invite code", code_of(&link).as_str()),
        ("unknown invite code", "AAAAAAAAAAAAAAAAAAAAAA"),
        ("room token", room_token.as_str()),
        ("access token", ada.as_str()),
        ("query value", "SECRETQUERYVALUE"),
    ] {
        assert!(!logs.contains(secret), "the logs hold the {what}");
    }
}

/// A room binary that takes `delay` to start: the real one, behind a sleep.
fn slow_room_binary(delay: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "rendezvous-slow-room-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let script = format!(
        "#!/bin/sh\nsleep {delay}\nexec {} \"$@\"\n",
        env!("CARGO_BIN_EXE_rendezvous")
    );
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn a_create_abandoned_by_its_client_still_settles() {
    let binary = slow_room_binary("1");
    let up = common::start_up(&["--room-binary", binary.to_str().unwrap()]);
    let ada = up.register("ada").await;
    // The client gives up long before the room is up.
    let res = reqwest::Client::new()
        .post(up.url("/api/rooms"))
        .bearer_auth(&ada)
        .json(&json!({"kind": "chat", "title": "Abandoned"}))
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(res.is_err(), "the client timed out");
    // The room still comes up: listed, ready, closable; not stuck eating quota.
    let deadline = std::time::Instant::now() + WAIT;
    let id = loop {
        let (_, mine) = up.call(Method::GET, "/api/rooms", Some(&ada), None).await;
        let rooms = mine.as_array().unwrap();
        assert_eq!(rooms.len(), 1, "{mine}");
        if rooms[0]["state"] == "ready" {
            break rooms[0]["id"].as_str().unwrap().to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "stuck: {mine}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (status, _) = up
        .call(
            Method::DELETE,
            &format!("/api/rooms/{id}"),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, 204);
    wait_until("no room process is left", || up.children().is_empty()).await;
    let _ = std::fs::remove_file(binary);
}

#[tokio::test]
async fn a_close_during_start_leaves_no_room_behind() {
    let binary = slow_room_binary("1");
    let up = common::start_up(&["--room-binary", binary.to_str().unwrap()]);
    let ada = up.register("ada").await;
    let create = {
        let (http, url, ada) = (up.http.clone(), up.url("/api/rooms"), ada.clone());
        tokio::spawn(async move {
            let res = http
                .post(url)
                .bearer_auth(ada)
                .json(&json!({"kind": "chat", "title": "Short-lived"}))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        })
    };
    let id = loop {
        let (_, mine) = up.call(Method::GET, "/api/rooms", Some(&ada), None).await;
        if let Some(r) = mine.as_array().and_then(|a| a.first()) {
            assert_eq!(r["state"], "starting");
            break r["id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let (status, _) = up
        .call(
            Method::DELETE,
            &format!("/api/rooms/{id}"),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let created = create.await.unwrap();
    assert_eq!(error_of(&created), (410, "room_ended"));
    wait_until("the room process is gone", || up.children().is_empty()).await;
    let (_, mine) = up.call(Method::GET, "/api/rooms", Some(&ada), None).await;
    assert_eq!(mine, json!([]));
    let _ = std::fs::remove_file(binary);
}

#[tokio::test]
async fn two_closes_at_once_let_the_room_say_goodbye() {
    let up = common::start_up(&[]);
    let ada = up.register("ada").await;
    let bob = up.register("bob").await;
    let room = create_room(&up, &ada, json!({"kind": "chat", "title": "Twice"})).await;
    let id = room["id"].as_str().unwrap();
    let (_, j) = join(&up, &bob, room["inviteUrl"].as_str().unwrap()).await;
    let mut b = RoomClient::connect(j["wsUrl"].as_str().unwrap(), j["token"].as_str().unwrap())
        .await
        .unwrap();
    let pid = up.children()[0];
    let path = format!("/api/rooms/{id}");
    let (one, two) = tokio::join!(
        up.call(Method::DELETE, &path, Some(&ada), None),
        up.call(Method::DELETE, &path, Some(&ada), None)
    );
    assert_eq!((one.0, two.0), (204, 204));
    // A goodbye, not a kill: room_closed, then a clean close (a killed room server
    // would reach the client as 1011 from the proxy).
    let mut saw_closed = false;
    let code = tokio::time::timeout(WAIT, async {
        loop {
            match b.recv().await {
                Some(Incoming::Event(e)) => {
                    saw_closed |= matches!(e.event, ServerEvent::RoomClosed { .. })
                }
                Some(Incoming::Closed { code, .. }) => return code,
                Some(_) => {}
                None => return 0,
            }
        }
    })
    .await
    .unwrap();
    assert!(saw_closed, "room_closed reached the participant");
    assert_eq!(code, 1000);
    wait_until("the room process is gone", || !alive(pid)).await;
}

#[tokio::test]
async fn a_vanished_room_server_is_1011_for_its_clients() {
    let up = common::start_up(&[]);
    let ada = up.register("ada").await;
    let room = create_room(&up, &ada, json!({"kind": "chat", "title": "Crash"})).await;
    let (_, j) = join(&up, &ada, room["inviteUrl"].as_str().unwrap()).await;
    let mut a = RoomClient::connect(j["wsUrl"].as_str().unwrap(), j["token"].as_str().unwrap())
        .await
        .unwrap();
    let pid = up.children()[0];
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert_eq!(closed_with(&mut a).await, 1011);
}

#[tokio::test]
async fn the_proxy_drops_a_silent_client_and_keeps_a_live_one() {
    use futures::{SinkExt as _, StreamExt as _};
    use rendezvous_room::protocol::{ClientMessage, Envelope, PROTOCOL_VERSION};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest as _, Message};

    let up = common::start_up(&["--ws-ping-interval", "300ms"]);
    let ada = up.register("ada").await;
    let bob = up.register("bob").await;
    let room = create_room(&up, &ada, json!({"kind": "chat", "title": "Pings"})).await;
    let link = room["inviteUrl"].as_str().unwrap();
    let (_, ja) = join(&up, &ada, link).await;
    let mut a = RoomClient::connect(ja["wsUrl"].as_str().unwrap(), ja["token"].as_str().unwrap())
        .await
        .unwrap();

    // bob's device freezes after the welcome: it never reads again, so it never
    // answers a ping.
    let (_, jb) = join(&up, &bob, link).await;
    let mut req = jb["wsUrl"].as_str().unwrap().into_client_request().unwrap();
    let bearer = format!("Bearer {}", jb["token"].as_str().unwrap());
    req.headers_mut()
        .insert("authorization", bearer.parse().unwrap());
    let (mut frozen, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let hello = ClientMessage::Hello {
        protocol_version: PROTOCOL_VERSION,
        resume_from: None,
    };
    frozen.send(Message::text(hello.to_json())).await.unwrap();
    let bob_id = loop {
        let Some(Ok(Message::Text(t))) = frozen.next().await else {
            panic!("no welcome")
        };
        let env: Envelope = serde_json::from_str(&t).unwrap();
        if let ServerEvent::Welcome(w) = env.event {
            break w.you;
        }
    };

    let dropped = tokio::time::timeout(WAIT, async {
        loop {
            let ev = a.next_event().await.expect("ada stays connected");
            if matches!(&ev.event, ServerEvent::Disconnected { participant_id } if *participant_id == bob_id)
            {
                return;
            }
        }
    })
    .await;
    assert!(dropped.is_ok(), "the silent client was never dropped");
    // ada, who answers pings, is still there well past three intervals.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.say("still here").await.unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = a.next_event().await.expect("ada is still connected");
            if matches!(&ev.event, ServerEvent::Message { text, .. } if text == "still here") {
                return;
            }
        }
    })
    .await
    .expect("ada's own message comes back");
    drop(frozen);
}

#[tokio::test]
async fn a_proxied_conversation_is_not_cut_after_the_close_grace() {
    // The proxy bounds only its goodbye (2 s per side), never the socket: a
    // conversation through it lasts as long as the people in it.
    let up = common::start_up(&[]);
    let ada = up.register("ada").await;
    let bob = up.register("bob").await;
    let room = create_room(&up, &ada, json!({"kind": "chat", "title": "Long"})).await;
    let link = room["inviteUrl"].as_str().unwrap();
    let (_, ja) = join(&up, &ada, link).await;
    let (_, jb) = join(&up, &bob, link).await;
    let mut a = RoomClient::connect(ja["wsUrl"].as_str().unwrap(), ja["token"].as_str().unwrap())
        .await
        .unwrap();
    let mut b = RoomClient::connect(jb["wsUrl"].as_str().unwrap(), jb["token"].as_str().unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    a.say("after six seconds")
        .await
        .expect("ada's socket is open");
    let seen = tokio::time::timeout(WAIT, async {
        let mut drops = 0;
        loop {
            let ev = b.next_event().await.expect("bob's socket is open");
            match &ev.event {
                ServerEvent::Disconnected { .. } | ServerEvent::Reconnected { .. } => drops += 1,
                ServerEvent::Message { text, .. } if text == "after six seconds" => return drops,
                _ => {}
            }
        }
    })
    .await
    .expect("bob hears ada on the same socket");
    assert_eq!(seen, 0, "nobody's connection dropped meanwhile");
    let _ = a.next_event().await.expect("ada's socket is still open");
}
