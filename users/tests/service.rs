//! Service-level behaviour: health, metrics, OpenAPI, JSON 404/405, rate limits.

mod common;

use common::Db;
use serde_json::json;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = common::spawn(Db::Sqlite).await.unwrap();
    assert_eq!(
        app.send(app.http.get(app.url("/healthz"))).await.status,
        200
    );
    assert_eq!(app.send(app.http.get(app.url("/readyz"))).await.status, 200);
    app.login("nobody", "whatever-password").await;
    let text = app.metrics().await;
    assert!(
        text.contains(r#"rendezvous_users_http_requests_total{method="POST",route="/api/sessions",status="401"} 1"#),
        "{text}"
    );
    assert!(text.contains("rendezvous_users_http_request_duration_seconds_bucket"));
    assert!(text.contains("rendezvous_users_login_failures_total 1"));
    assert!(text.contains("rendezvous_users_password_hashes_in_flight 0"));
}

#[tokio::test]
async fn metrics_are_served_on_the_metrics_listener_not_the_public_one() {
    let app = common::spawn(Db::Sqlite).await.unwrap();
    let r = app.send(app.http.get(app.url("/metrics"))).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    assert_eq!(app.send(app.http.get(app.url("/readyz"))).await.status, 200);
    let text = app.metrics().await;
    assert!(
        text.contains(
            r#"rendezvous_users_http_requests_total{method="GET",route="/readyz",status="200"} 1"#
        ),
        "{text}"
    );
    // The metrics listener serves nothing else.
    let other = reqwest::get(format!("{}/api/users/me", app.metrics_base))
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = common::spawn(Db::Sqlite).await.unwrap();
    let r = app.send(app.http.get(app.url("/api/nope"))).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = app.send(app.http.put(app.url("/api/sessions"))).await;
    assert_eq!((r.status, r.code()), (405, "method_not_allowed"));
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let app = common::spawn(Db::Sqlite).await.unwrap();
    let doc = app
        .send(app.http.get(app.url("/api/openapi.json")))
        .await
        .body;
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/api/users", "post"),
        ("/api/users/me", "get"),
        ("/api/users/me", "patch"),
        ("/api/users/me", "delete"),
        ("/api/users/me/password", "put"),
        ("/api/sessions", "post"),
        ("/api/sessions", "delete"),
        ("/api/sessions/refresh", "post"),
        ("/api/browser/users", "post"),
        ("/api/browser/sessions", "post"),
        ("/api/browser/sessions", "delete"),
        ("/api/browser/sessions/refresh", "post"),
        ("/.well-known/jwks.json", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} undocumented"
        );
    }
    let browser = &doc["components"]["schemas"]["BrowserSession"]["properties"];
    assert!(
        browser.get("accessToken").is_some() && browser.get("refreshToken").is_none(),
        "a browser session never carries the refresh token: {browser}"
    );
    let schema = &doc["components"]["schemas"]["RegisterRequest"]["properties"];
    assert!(
        schema.get("displayName").is_some(),
        "camelCase fields: {schema}"
    );
}

#[tokio::test]
async fn login_attempts_are_rate_limited_per_account_and_address() {
    let app = common::spawn_with(Db::Sqlite, |c| {
        c.login_per_account_per_minute = 3;
        c.login_per_address_per_minute = 5;
    })
    .await
    .unwrap();
    app.register("nora").await;
    for _ in 0..3 {
        assert_eq!(app.login("nora", "wrong password").await.status, 401);
    }
    // The right password does not get past a spent account budget.
    let r = app.login("nora", "password-of-nora").await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"));
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "Retry-After {retry}");
    // Another account from the same address: one attempt left (5 per address).
    assert_eq!(app.login("other", "wrong password").await.status, 401);
    assert_eq!(app.login("other2", "wrong password").await.status, 429);
    // Everyone else keeps being served.
    assert_eq!(
        app.send(app.http.get(app.url("/healthz"))).await.status,
        200
    );
}

#[tokio::test]
async fn registrations_are_rate_limited_per_address() {
    let app = common::spawn_with(Db::Sqlite, |c| c.register_per_address_per_hour = 2)
        .await
        .unwrap();
    app.register("user1").await;
    app.register("user2").await;
    let r = app
        .post("/api/users", json!({"email": "user3@example.com", "username": "user3", "displayName": "U", "password": "long enough"}))
        .await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"));
    assert!(r.headers.contains_key("retry-after"));
}

async fn login_from(app: &common::TestApp, login: &str, xff: &str) -> common::Res {
    app.send(
        app.http
            .post(app.url("/api/sessions"))
            .header("x-forwarded-for", xff)
            .json(&json!({"login": login, "password": "wrong password"})),
    )
    .await
}

#[tokio::test]
async fn rotating_forwarded_for_does_not_escape_the_address_limit() {
    for hops in [0, 1] {
        let app = common::spawn_with(Db::Sqlite, |c| {
            c.login_per_address_per_minute = 3;
            c.trusted_proxy_hops = hops;
        })
        .await
        .unwrap();
        // One client behind (at most) one proxy that appends the same address; the
        // client forges a new leftmost entry each time, and another login each time
        // so the per-account budget is not what stops it.
        for i in 0..3 {
            let r = login_from(
                &app,
                &format!("user{i}"),
                &format!("10.9.9.{i}, 203.0.113.7"),
            )
            .await;
            assert_eq!(r.status, 401, "hops={hops} attempt {i}: {}", r.body);
        }
        let r = login_from(&app, "user3", "10.9.9.3, 203.0.113.7").await;
        assert_eq!((r.status, r.code()), (429, "rate_limited"), "hops={hops}");
    }
}

#[tokio::test]
async fn with_one_trusted_hop_the_rightmost_forwarded_entry_is_the_client() {
    let app = common::spawn_with(Db::Sqlite, |c| {
        c.login_per_address_per_minute = 1;
        c.trusted_proxy_hops = 1;
    })
    .await
    .unwrap();
    // Every request comes from 127.0.0.1; the proxy says they are different clients.
    assert_eq!(
        login_from(&app, "u1", "6.6.6.6, 203.0.113.1").await.status,
        401
    );
    assert_eq!(
        login_from(&app, "u2", "6.6.6.6, 203.0.113.2").await.status,
        401
    );
    assert_eq!(
        login_from(&app, "u3", "6.6.6.6, 203.0.113.1").await.status,
        429
    );
    // A proxy that did not append (no header): the socket peer, its own bucket.
    assert_eq!(app.login("u4", "wrong password").await.status, 401);
    assert_eq!(app.login("u5", "wrong password").await.status, 429);
}
