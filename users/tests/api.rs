//! The users API over HTTP, every endpoint's success and failure paths, on SQLite and
//! on PostgreSQL.

mod common;

use common::{Res, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

both!(
    register_logs_in_and_returns_the_profile,
    register_rejects_bad_input_with_clear_errors,
    register_rejects_taken_email_and_username,
    login_by_email_or_username_and_refuses_wrong_credentials,
    refresh_rotates_and_reuse_revokes_the_family,
    concurrent_refreshes_of_one_token_let_exactly_one_through,
    logout_revokes_the_session,
    profile_updates_validate_and_conflict,
    change_password_revokes_other_sessions,
    delete_account_needs_the_password_and_removes_everything,
    protected_routes_refuse_missing_bad_and_expired_tokens,
);

fn token(session: &Value) -> &str {
    session["accessToken"].as_str().expect("accessToken")
}

fn refresh_token(session: &Value) -> &str {
    session["refreshToken"].as_str().expect("refreshToken")
}

async fn refresh(app: &TestApp, rt: &str) -> Res {
    app.post("/api/sessions/refresh", json!({ "refreshToken": rt }))
        .await
}

async fn register_logs_in_and_returns_the_profile(app: TestApp) {
    let s = app.register("ada").await;
    assert_eq!(s["tokenType"], "Bearer");
    assert_eq!(s["expiresIn"], 900);
    assert_eq!(s["user"]["username"], "ada");
    assert_eq!(s["user"]["email"], "ada@example.com");
    assert_eq!(s["user"]["displayName"], "ada display");
    assert!(s["user"]["createdAt"].as_str().unwrap().ends_with('Z'));
    let text = s.to_string();
    assert!(
        !text.contains("password") && !text.contains("argon2"),
        "secrets leaked: {text}"
    );

    let me = app.get("/api/users/me", token(&s)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body, s["user"]);
}

async fn register_rejects_bad_input_with_clear_errors(app: TestApp) {
    let good = json!({"email": "bob@example.com", "username": "bob", "displayName": "Bob", "password": "long enough"});
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    for (body, field) in [
        (with("email", json!("not-an-email")), "email"),
        (with("username", json!("b")), "username"),
        (with("displayName", json!("  ")), "displayName"),
        (with("password", json!("short")), "password"),
    ] {
        let r = app.post("/api/users", body).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "validation_failed"),
            "{field}: {}",
            r.body
        );
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains(field),
            "{}",
            r.body
        );
    }
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("password");
    let r = app.post("/api/users", missing).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"));
    let r = app.post("/api/users", with("admin", json!(true))).await;
    assert_eq!(
        (r.status, r.code()),
        (422, "validation_failed"),
        "unknown fields are refused"
    );

    let raw = |body: &'static str, ct: Option<&'static str>| {
        let mut req = app.http.post(app.url("/api/users")).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req
    };
    let r = app.send(raw("{\"email\":", Some("application/json"))).await;
    assert_eq!((r.status, r.code()), (400, "invalid_json"));
    let r = app.send(raw("{}", None)).await;
    assert_eq!((r.status, r.code()), (415, "unsupported_media_type"));
    let huge = json!({"email": "x".repeat(20_000)}).to_string();
    let r = app
        .send(
            app.http
                .post(app.url("/api/users"))
                .header("content-type", "application/json")
                .body(huge),
        )
        .await;
    assert_eq!((r.status, r.code()), (413, "payload_too_large"));

    // Nothing was created by any of it: the good body still registers.
    assert_eq!(app.post("/api/users", good).await.status, 201);
}

async fn register_rejects_taken_email_and_username(app: TestApp) {
    app.register("carol").await;
    let r = app
        .post("/api/users", json!({"email": "CAROL@example.com", "username": "other", "displayName": "C", "password": "long enough"}))
        .await;
    assert_eq!((r.status, r.code()), (409, "email_taken"));
    let r = app
        .post("/api/users", json!({"email": "c2@example.com", "username": "Carol", "displayName": "C", "password": "long enough"}))
        .await;
    assert_eq!((r.status, r.code()), (409, "username_taken"));
}

async fn login_by_email_or_username_and_refuses_wrong_credentials(app: TestApp) {
    let s = app.register("dave").await;
    for login in ["dave", "DAVE@example.com"] {
        let r = app.login(login, "password-of-dave").await;
        assert_eq!(r.status, 200, "{login}: {}", r.body);
        assert_eq!(r.body["user"]["id"], s["user"]["id"]);
        assert_ne!(
            refresh_token(&r.body),
            refresh_token(&s),
            "a new login is a new session"
        );
    }
    let wrong = app.login("dave", "password-of-eve").await;
    let unknown = app.login("nobody", "password-of-dave").await;
    for r in [&wrong, &unknown] {
        assert_eq!((r.status, r.code()), (401, "invalid_credentials"));
    }
    assert_eq!(
        wrong.body, unknown.body,
        "responses must not tell which accounts exist"
    );
    let r = app.post("/api/sessions", json!({"login": "dave"})).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"));
}

async fn refresh_rotates_and_reuse_revokes_the_family(app: TestApp) {
    let s1 = app.register("erin").await;
    let r = refresh(&app, refresh_token(&s1)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s2 = r.body;
    assert_ne!(refresh_token(&s2), refresh_token(&s1));
    assert_eq!(app.get("/api/users/me", token(&s2)).await.status, 200);

    // A second login is another family and must survive what happens to the first.
    let other = app.login("erin", "password-of-erin").await.body;

    // Replaying the rotated token: reuse detected, the whole family revoked.
    let r = refresh(&app, refresh_token(&s1)).await;
    assert_eq!((r.status, r.code()), (401, "refresh_token_reused"));
    let r = refresh(&app, refresh_token(&s2)).await;
    assert_eq!(
        (r.status, r.code()),
        (401, "invalid_refresh_token"),
        "the newest token died with its family"
    );
    assert_eq!(refresh(&app, refresh_token(&other)).await.status, 200);

    let r = refresh(&app, "made-up").await;
    assert_eq!((r.status, r.code()), (401, "invalid_refresh_token"));
}

async fn concurrent_refreshes_of_one_token_let_exactly_one_through(app: TestApp) {
    let s = app.register("frank").await;
    let rt = refresh_token(&s).to_owned();
    let results = futures_join(&app, &rt, 6).await;
    let ok = results.iter().filter(|s| **s == 200).count();
    assert_eq!(ok, 1, "statuses: {results:?}");
    assert!(results.iter().all(|s| *s == 200 || *s == 401));
}

async fn futures_join(app: &TestApp, rt: &str, n: usize) -> Vec<u16> {
    let mut handles = Vec::new();
    for _ in 0..n {
        let (http, url, rt) = (
            app.http.clone(),
            app.url("/api/sessions/refresh"),
            rt.to_owned(),
        );
        handles.push(tokio::spawn(async move {
            http.post(url)
                .json(&json!({"refreshToken": rt}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

async fn logout_revokes_the_session(app: TestApp) {
    let s = app.register("gina").await;
    let r = app
        .call(
            Method::DELETE,
            "/api/sessions",
            None,
            Some(json!({"refreshToken": refresh_token(&s)})),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = refresh(&app, refresh_token(&s)).await;
    assert_eq!((r.status, r.code()), (401, "invalid_refresh_token"));
    let r = app
        .call(
            Method::DELETE,
            "/api/sessions",
            None,
            Some(json!({"refreshToken": "nope"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "invalid_refresh_token"));
}

async fn profile_updates_validate_and_conflict(app: TestApp) {
    let s = app.register("hank").await;
    app.register("ivy").await;
    let t = token(&s);
    let r = app
        .call(
            Method::PATCH,
            "/api/users/me",
            Some(t),
            Some(json!({"displayName": "Hank H."})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["displayName"], "Hank H.");
    assert_eq!(r.body["username"], "hank", "untouched fields stay");
    let r = app
        .call(
            Method::PATCH,
            "/api/users/me",
            Some(t),
            Some(json!({"username": "ivy"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "username_taken"));
    let r = app
        .call(
            Method::PATCH,
            "/api/users/me",
            Some(t),
            Some(json!({"email": "ivy@example.com"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "email_taken"));
    let r = app
        .call(
            Method::PATCH,
            "/api/users/me",
            Some(t),
            Some(json!({"email": "nope"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"));
    let r = app
        .call(
            Method::PATCH,
            "/api/users/me",
            Some(t),
            Some(json!({"username": "hank2"})),
        )
        .await;
    assert_eq!(r.body["username"], "hank2");
    assert_eq!(app.login("hank2", "password-of-hank").await.status, 200);
}

async fn change_password_revokes_other_sessions(app: TestApp) {
    let s = app.register("jack").await;
    let other = app.login("jack", "password-of-jack").await.body;
    let t = token(&s);
    let body = |cur: &str| json!({"currentPassword": cur, "newPassword": "a brand new password"});
    let r = app
        .call(
            Method::PUT,
            "/api/users/me/password",
            Some(t),
            Some(body("wrong password")),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "wrong_password"));
    let r = app
        .call(
            Method::PUT,
            "/api/users/me/password",
            Some(t),
            Some(json!({"currentPassword": "password-of-jack", "newPassword": "short"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"));

    let r = app
        .call(
            Method::PUT,
            "/api/users/me/password",
            Some(t),
            Some(body("password-of-jack")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let fresh = r.body;
    for old in [&s, &other] {
        assert_eq!(
            refresh(&app, refresh_token(old)).await.status,
            401,
            "old sessions are revoked"
        );
    }
    assert_eq!(
        refresh(&app, refresh_token(&fresh)).await.status,
        200,
        "the new session works"
    );
    assert_eq!(app.login("jack", "password-of-jack").await.status, 401);
    assert_eq!(app.login("jack", "a brand new password").await.status, 200);
}

async fn delete_account_needs_the_password_and_removes_everything(app: TestApp) {
    let s = app.register("kim").await;
    let t = token(&s);
    let r = app
        .call(
            Method::DELETE,
            "/api/users/me",
            Some(t),
            Some(json!({"password": "nope nope"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "wrong_password"));
    let r = app
        .call(
            Method::DELETE,
            "/api/users/me",
            Some(t),
            Some(json!({"password": "password-of-kim"})),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = app.get("/api/users/me", t).await;
    assert_eq!(
        (r.status, r.code()),
        (401, "unauthenticated"),
        "the token outlives the account but admits nothing"
    );
    assert_eq!(app.login("kim", "password-of-kim").await.status, 401);
    assert_eq!(refresh(&app, refresh_token(&s)).await.status, 401);
    // The name is free again.
    app.register("kim").await;
}

async fn protected_routes_refuse_missing_bad_and_expired_tokens(app: TestApp) {
    let r = app.send(app.http.get(app.url("/api/users/me"))).await;
    assert_eq!((r.status, r.code()), (401, "unauthenticated"));
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    let r = app.get("/api/users/me", "garbage").await;
    assert_eq!((r.status, r.code()), (401, "invalid_token"));

    let s = app.register("liam").await;
    let now = rendezvous_auth::now_unix();
    let expired = rendezvous_api::AccessClaims {
        sub: s["user"]["id"].as_str().unwrap().into(),
        name: "liam".into(),
        iat: now - 1000,
        exp: now - 100,
        iss: "rendezvous-users".into(),
        aud: "rendezvous".into(),
    };
    let t = app.ctx.keys.signer().sign(&expired).unwrap();
    let r = app.get("/api/users/me", &t).await;
    assert_eq!((r.status, r.code()), (401, "token_expired"));

    // A token from some other issuer's key, with a kid we never published.
    let foreign = rendezvous_auth::SigningKey::generate().unwrap();
    let t = foreign
        .sign(&rendezvous_api::AccessClaims {
            exp: now + 100,
            ..expired
        })
        .unwrap();
    let r = app.get("/api/users/me", &t).await;
    assert_eq!((r.status, r.code()), (401, "invalid_token"));
}
