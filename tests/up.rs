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

    up.signal("-TERM");
    let exit = up.wait_exit(Duration::from_secs(10)).await;
    assert!(exit.success(), "exit status {exit:?}");
}
