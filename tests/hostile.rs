//! Hostile input against a real `rendezvous up`: every REST body the service takes is
//! fed generated garbage (random bytes, random JSON, the right shape with hostile
//! values). Every answer must be a success or a clean refusal: a 4xx (or 503 busy)
//! with the JSON error body and a non-empty `code`; never a 5xx crash, never a
//! dropped connection. Afterwards the service still serves everyone.
//! Bounded: a fixed number of cases per route, from a fixed seed.

mod common;

use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::TestRunner;
use reqwest::Method;
use serde_json::{json, Value};

/// Cases per route: enough to hit every field with every kind of hostile value.
const CASES: usize = 60;

/// Hostile strings: empty, huge, control characters, right-to-left marks, NUL,
/// surrogate-adjacent code points, JSON and HTML metacharacters.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("a".repeat(20_000)),
        Just("\u{0}\u{1}\u{7f}\n\r\t".into()),
        Just("\u{202e}evil\u{200b}".into()),
        Just("<script>alert(1)</script>\"'\\".into()),
        Just("💥".repeat(300)),
        ".{0,40}",
    ]
}

/// Any JSON value, nested a little, with hostile leaves.
fn hostile_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(1e308)),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body for a route whose fields are `fields`: raw bytes, any JSON, or an object
/// with those fields (some missing, some extra) set to hostile values.
fn hostile_body(fields: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let shaped = prop::collection::vec((prop::sample::select(fields), hostile_value()), 0..6)
        .prop_map(|pairs| {
            let obj: serde_json::Map<String, Value> =
                pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            serde_json::to_vec(&Value::Object(obj)).unwrap()
        });
    // The right shape most often: that is where a field's hostile value bites.
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => hostile_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => Just(vec![b'{'; 5000]),
        1 => Just(b"[".repeat(100_000)),
        3 => shaped,
    ]
}

/// One request over a raw connection (`Connection: close`): the status and body. A
/// server may answer a too-large body before reading it all and close; the write may
/// then fail, but the answer must still be there to read.
async fn raw_request(
    addr: &str,
    method: &Method,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    // The page's routes: past the CSRF guard, with a cookie that is not a session.
    let browser = if path.starts_with("/api/browser/") {
        "x-rendezvous-csrf: 1\r\ncookie: rdv_refresh=\"%00;;\"; rdv_refresh=AAAA; other=%FF\r\n"
    } else {
        ""
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         {auth}{browser}content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(common::WAIT, s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Some((status, body))
}

/// Send `body` and check the answer is a success or a clean JSON refusal.
async fn probe(up: &common::Up, method: Method, path: &str, token: Option<&str>, body: Vec<u8>) {
    let addr = up.base.trim_start_matches("http://");
    let shown = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    let Some((status, text)) = raw_request(addr, &method, path, token, &body).await else {
        panic!("{method} {path}: no answer to {shown:?}");
    };
    assert!(
        status < 500 || (status == 503 && text.contains("\"busy\"")),
        "{method} {path} answered {status} {text} to {shown:?}"
    );
    if status >= 400 {
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: {status} without a JSON body: {text}"));
        let code = v["error"]["code"].as_str().unwrap_or("");
        assert!(
            !code.is_empty(),
            "{method} {path}: {status} without a code: {text}"
        );
    }
}

#[tokio::test]
async fn every_rest_body_survives_hostile_input() {
    let up = common::start_up(&[
        "--login-per-account-per-minute",
        "100000",
        "--login-per-address-per-minute",
        "100000",
    ]);
    let ada = up.register("ada").await;
    let room = common::create_room(&up, &ada, json!({"kind": "chat", "title": "Target"})).await;
    let id = room["id"].as_str().unwrap().to_owned();
    let code = common::code_of(room["inviteUrl"].as_str().unwrap());

    let routes: Vec<(Method, String, Option<&str>, &'static [&'static str])> = vec![
        (
            Method::POST,
            "/api/users".into(),
            None,
            &["email", "username", "displayName", "password"],
        ),
        (
            Method::POST,
            "/api/sessions".into(),
            None,
            &["login", "password"],
        ),
        (
            Method::POST,
            "/api/sessions/refresh".into(),
            None,
            &["refreshToken"],
        ),
        (
            Method::DELETE,
            "/api/sessions".into(),
            None,
            &["refreshToken"],
        ),
        (
            Method::PATCH,
            "/api/users/me".into(),
            Some(&ada),
            &["email", "username", "displayName"],
        ),
        (
            Method::PUT,
            "/api/users/me/password".into(),
            Some(&ada),
            &["currentPassword", "newPassword"],
        ),
        (
            Method::DELETE,
            "/api/users/me".into(),
            Some(&ada),
            &["password"],
        ),
        (
            Method::POST,
            "/api/rooms".into(),
            Some(&ada),
            &[
                "kind",
                "title",
                "maxParticipants",
                "idleTimeout",
                "maxDuration",
            ],
        ),
        (
            Method::POST,
            format!("/api/rooms/{id}/invites"),
            Some(&ada),
            &["expiresIn", "maxUses"],
        ),
        (
            Method::POST,
            format!("/api/rooms/{id}/token"),
            Some(&ada),
            &["roomToken"],
        ),
        (
            Method::POST,
            format!("/api/join/{code}"),
            Some(&ada),
            &["anything"],
        ),
        (
            Method::GET,
            format!("/api/join/{code}"),
            None,
            &["anything"],
        ),
        (
            Method::POST,
            "/api/browser/users".into(),
            None,
            &["email", "username", "displayName", "password"],
        ),
        (
            Method::POST,
            "/api/browser/sessions".into(),
            None,
            &["login", "password"],
        ),
        (
            Method::POST,
            "/api/browser/sessions/refresh".into(),
            None,
            &["anything"],
        ),
        (
            Method::DELETE,
            "/api/browser/sessions".into(),
            None,
            &["anything"],
        ),
    ];
    let mut runner = TestRunner::deterministic();
    for (method, path, token, fields) in &routes {
        let strategy = hostile_body(fields);
        for _ in 0..CASES {
            let body = strategy.new_tree(&mut runner).unwrap().current();
            probe(&up, method.clone(), path, *token, body).await;
        }
    }
    // Hostile paths and tokens too: codes and ids that are not codes and ids.
    for (path, token) in [
        ("/api/join/%00%ff".to_owned(), Some(ada.as_str())),
        ("/api/join/..%2F..%2Fetc".to_owned(), Some(ada.as_str())),
        (
            format!("/api/join/{}", "A".repeat(5000)),
            Some(ada.as_str()),
        ),
        (
            format!("/api/rooms/{}/token", "../".repeat(50)),
            Some(ada.as_str()),
        ),
        ("/api/rooms".to_owned(), Some("not.a.jwt")),
        ("/api/rooms".to_owned(), Some(&"x".repeat(10_000))),
    ] {
        let body = br#"{"kind":"chat","title":"t"}"#.to_vec();
        probe(&up, Method::POST, &path, token, body).await;
    }

    // Nobody else lost anything: ada's account, session and room still work.
    let (status, me) = up
        .call(Method::GET, "/api/users/me", Some(&ada), None)
        .await;
    assert_eq!(status, 200, "{me}");
    let (status, again) = common::join(&up, &ada, room["inviteUrl"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{again}");
    let bob = up.register("bob").await;
    assert!(!bob.is_empty());
}
