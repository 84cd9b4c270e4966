//! End to end: `rendezvous up` as a real process, driven over HTTP only.

mod common;

use std::time::Duration;

use serde_json::{json, Value};

#[tokio::test]
async fn up_serves_users_on_sqlite_and_stops_cleanly_on_sigterm() {
    let mut up = common::start_up(&[]);
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/api/users", up.base))
        .json(&json!({"email": "ada@example.com", "username": "ada", "displayName": "Ada", "password": "analytical engine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = http
        .post(format!("{}/api/sessions", up.base))
        .json(&json!({"login": "ada", "password": "analytical engine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let session: Value = res.json().await.unwrap();
    let me: Value = http
        .get(format!("{}/api/users/me", up.base))
        .bearer_auth(session["accessToken"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "ada");
    assert!(
        up.data_dir.join("users.db").exists(),
        "SQLite database created under --data-dir"
    );

    // The router's secret sits next to the database, readable by its owner only,
    // and the room-token keys derived from it are published.
    let secret = up.data_dir.join("router.secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", secret.display());
    }
    let kid = room_token_kid(&up.base).await;

    up.signal("-TERM");
    let exit = up.wait_exit(Duration::from_secs(10)).await;
    assert!(exit.success(), "exit status {exit:?}");

    // Started again on the same data dir: the same secret, so the same keys.
    let again = common::start_up_in(up.data_dir.clone(), &[]);
    assert_eq!(room_token_kid(&again.base).await, kid);
}

/// The `kid` of the room-token key `up` at `base` publishes.
async fn room_token_kid(base: &str) -> String {
    let jwks: Value = reqwest::get(format!("{base}/.well-known/room-jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"][0]["kid"].as_str().unwrap().to_owned()
}

/// `up` serves one OpenAPI document for both APIs, and it is the committed one.
#[tokio::test]
async fn up_serves_the_committed_openapi_document_of_both_apis() {
    let up = common::start_up(&[]);
    let (status, doc) = up
        .call(reqwest::Method::GET, "/api/openapi.json", None, None)
        .await;
    assert_eq!(status, 200);
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
            .expect("docs/openapi.json"),
    )
    .unwrap();
    assert_eq!(
        doc, committed,
        "docs/openapi.json is stale: run scripts/regen"
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/users", "post"),
        ("/api/sessions", "post"),
        ("/api/rooms", "post"),
        ("/api/rooms", "get"),
        ("/api/rooms/{id}", "delete"),
        ("/api/rooms/{id}/token", "post"),
        ("/api/rooms/{id}/invites", "post"),
        ("/api/rooms/{id}/invites/{invite}", "delete"),
        ("/api/join/{code}", "post"),
        ("/api/join/{code}", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} undocumented"
        );
    }
    assert!(
        paths["/api/join/{code}"]["get"].get("security").is_none(),
        "the invite preview needs no authentication"
    );
    let kind = &doc["components"]["schemas"]["CreateRoomRequest"]["properties"]["kind"];
    assert_eq!(
        kind["enum"],
        serde_json::json!(["chat", "video", "both"]),
        "{kind}"
    );
}
