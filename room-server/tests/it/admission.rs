//! Who gets in: token checks, caps, locks and the hello handshake.

use rendezvous_api::Grants;
use rendezvous_auth::{now_unix, SigningKey};
use rendezvous_room::client::{ClientError, ConnectOptions, RoomClient, TokenVia};
use rendezvous_room::protocol::close_code;

use crate::common::*;

fn refused(result: Result<RoomClient, ClientError>) -> (u16, String) {
    match result {
        Err(ClientError::Refused { code, reason }) => (code, reason),
        Ok(_) => panic!("admitted"),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test]
async fn refuses_bad_tokens_with_distinct_close_codes() {
    let room = TestRoom::start().await;

    let (code, reason) = refused(room.try_join(String::new()).await);
    assert_eq!(
        (code, reason.as_str()),
        (close_code::INVALID_TOKEN, "missing_token")
    );

    let (code, _) = refused(room.try_join("not.a.jwt".into()).await);
    assert_eq!(code, close_code::INVALID_TOKEN);

    let other = SigningKey::generate().unwrap();
    let now = now_unix();
    let forged = other
        .sign(&rendezvous_api::RoomClaims {
            sub: "eve".into(),
            name: "Eve".into(),
            room: ROOM.into(),
            grants: Grants::creator(),
            iat: now,
            exp: now + 60,
            iss: "rendezvous-router".into(),
            aud: "rendezvous-room".into(),
        })
        .unwrap();
    let (code, reason) = refused(room.try_join(forged).await);
    assert_eq!(
        (code, reason.as_str()),
        (close_code::INVALID_TOKEN, "invalid_token")
    );

    let expired = room.token_with("a", Grants::participant(), |c| {
        c.iat -= 600;
        c.exp = now_unix() - 60;
    });
    let (code, reason) = refused(room.try_join(expired).await);
    assert_eq!(
        (code, reason.as_str()),
        (close_code::TOKEN_EXPIRED, "token_expired")
    );

    let wrong_room = room.token_with("a", Grants::participant(), |c| c.room = "r2".into());
    let (code, reason) = refused(room.try_join(wrong_room).await);
    assert_eq!(
        (code, reason.as_str()),
        (close_code::WRONG_ROOM, "wrong_room")
    );

    let wrong_aud = room.token_with("a", Grants::participant(), |c| c.aud = "other".into());
    assert_eq!(
        refused(room.try_join(wrong_aud).await).0,
        close_code::INVALID_TOKEN
    );

    let no_grants = room.token_with("a", Grants::default(), |_| {});
    let (code, reason) = refused(room.try_join(no_grants).await);
    assert_eq!(
        (code, reason.as_str()),
        (close_code::MISSING_GRANT, "missing_grant")
    );
}

#[tokio::test]
async fn token_in_query_string_is_accepted() {
    let room = TestRoom::start().await;
    let mut opts = ConnectOptions::new(room.url(), room.token("a"));
    opts.token_via = TokenVia::Query;
    let client = within(RoomClient::connect_with(opts))
        .await
        .expect("admitted");
    assert_eq!(client.welcome().you, "a");
    assert_eq!(client.welcome().room_id, ROOM);
}

#[tokio::test]
async fn participant_cap_refuses_new_people_but_not_returning_ones() {
    let room = TestRoom::start_with(|a| a.max_participants = 2).await;
    let _a = room.join("a").await;
    let b = room.join("b").await;
    let (code, reason) = refused(room.try_join(room.token("c")).await);
    assert_eq!(
        (code, reason.as_str()),
        (close_code::ROOM_FULL, "room_full")
    );
    // b's connection drops; b keeps the seat and may come back.
    b.drop_connection();
    let b2 = within(room.try_join(room.token("b")))
        .await
        .expect("b returns");
    assert_eq!(b2.welcome().participants.len(), 2);
}

#[tokio::test]
async fn plain_http_to_ws_gets_a_json_error() {
    let room = TestRoom::start().await;
    let res = reqwest::get(room.http("/ws")).await.unwrap();
    assert!(res.status().is_client_error());
    let body: rendezvous_api::ErrorBody = res.json().await.unwrap();
    assert_eq!(body.error.code, "websocket_required");
}

#[tokio::test]
async fn first_frame_must_be_a_supported_hello() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let room = TestRoom::start().await;
    for (first, want) in [
        (r#"{"type":"send","text":"hi"}"#, close_code::HELLO_REQUIRED),
        (
            r#"{"type":"hello","protocolVersion":99}"#,
            close_code::UNSUPPORTED_VERSION,
        ),
    ] {
        let url = format!("{}?token={}", room.url(), room.token("a"));
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        ws.send(Message::text(first)).await.unwrap();
        let code = within(async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(Some(f)))) => return u16::from(f.code),
                    Some(Ok(_)) => continue,
                    other => panic!("{other:?}"),
                }
            }
        })
        .await;
        assert_eq!(code, want);
    }
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_hello_timeout() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let room =
        TestRoom::start_with(|a| a.hello_timeout = std::time::Duration::from_millis(100)).await;
    let url = format!("{}?token={}", room.url(), room.token("a"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let frame = within(ws.next()).await;
    match frame {
        Some(Ok(Message::Close(Some(f)))) => {
            assert_eq!(u16::from(f.code), close_code::HELLO_REQUIRED)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn connecting_again_replaces_the_old_connection() {
    let room = TestRoom::start().await;
    let mut first = room.join("a").await;
    let mut other = room.join("b").await;
    let second = room.join("a").await;
    let (code, reason) = expect_close(&mut first).await;
    assert_eq!((code, reason.as_str()), (close_code::REPLACED, "replaced"));
    assert_eq!(second.welcome().participants.len(), 2);
    expect_event(&mut other, |e| {
        matches!(e, rendezvous_room::protocol::ServerEvent::Reconnected { participant_id } if participant_id == "a")
    })
    .await;
}

#[tokio::test]
async fn keys_can_come_from_a_jwks_url() {
    use std::sync::{Arc, Mutex};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(Mutex::new(String::new()));
    let body = served.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let jwks = body.lock().unwrap().clone();
            async move { ([("content-type", "application/json")], jwks) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let room = TestRoom::start_with(|a| {
        *served.lock().unwrap() = a.token_jwks.take().unwrap();
        a.token_jwks_url = Some(format!("http://{addr}/jwks.json"));
    })
    .await;
    let a = room.join("a").await;
    assert_eq!(a.welcome().you, "a");
}

/// Open a raw WebSocket offering `protocols`; returns the selected subprotocol and
/// the first close code after `hello` (or `None` when a `welcome` came instead).
async fn handshake_with_protocols(
    room: &TestRoom,
    protocols: &str,
) -> (Option<String>, Option<u16>) {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

    let mut req = room.url().into_client_request().unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", protocols.parse().unwrap());
    let (mut ws, response) = within(tokio_tungstenite::connect_async(req))
        .await
        .expect("handshake");
    let selected = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_owned());
    ws.send(Message::text(r#"{"type":"hello","protocolVersion":1}"#))
        .await
        .unwrap();
    let closed = within(async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains(r#""type":"welcome""#) => return None,
                Some(Ok(Message::Close(Some(f)))) => return Some(u16::from(f.code)),
                Some(Ok(_)) => continue,
                other => panic!("{other:?}"),
            }
        }
    })
    .await;
    (selected, closed)
}

#[tokio::test]
async fn joining_with_the_token_as_a_subprotocol_selects_rendezvous_v1() {
    let room = TestRoom::start().await;
    let token = room.token("a");
    let offer = format!("rendezvous.v1, bearer.{token}");
    let (selected, closed) = handshake_with_protocols(&room, &offer).await;
    assert_eq!(
        selected.as_deref(),
        Some("rendezvous.v1"),
        "never the token"
    );
    assert_eq!(closed, None, "admitted");
    // RoomClient does the same by default.
    let opts = ConnectOptions::new(room.url(), room.token("b"));
    assert_eq!(opts.token_via, TokenVia::Subprotocol);
    let b = within(RoomClient::connect_with(opts))
        .await
        .expect("admitted");
    assert_eq!(b.welcome().you, "b");
    // And the older header still works.
    let mut opts = ConnectOptions::new(room.url(), room.token("c"));
    opts.token_via = TokenVia::Header;
    within(RoomClient::connect_with(opts))
        .await
        .expect("admitted");
}

#[tokio::test]
async fn a_bad_subprotocol_token_is_refused_like_a_bad_query_token() {
    let room = TestRoom::start().await;
    let forged = format!("{}x", room.token("a"));
    // Selected even when refusing, or a browser could not read the close code.
    let (selected, closed) =
        handshake_with_protocols(&room, &format!("rendezvous.v1, bearer.{forged}")).await;
    assert_eq!(selected.as_deref(), Some("rendezvous.v1"));
    let mut opts = ConnectOptions::new(room.url(), forged);
    opts.token_via = TokenVia::Query;
    let (by_query, reason) = refused(within(RoomClient::connect_with(opts)).await);
    assert_eq!(
        (by_query, reason.as_str()),
        (close_code::INVALID_TOKEN, "invalid_token")
    );
    assert_eq!(closed, Some(by_query));
    let (code, _) = refused(room.try_join("not.a.jwt".into()).await);
    assert_eq!(code, close_code::INVALID_TOKEN);
}
