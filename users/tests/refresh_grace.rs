//! A refresh token presented again shortly after it was exchanged (its answer was
//! lost: a tab reloaded mid-request) gets a new session; later, reuse revokes the
//! login. On SQLite and on PostgreSQL.

mod common;

use std::time::Duration;

use common::{Res, TestApp};
use serde_json::{json, Value};

both!(with |c: &mut rendezvous_users::Config| c.refresh_reuse_grace = std::time::Duration::from_secs(2);
    a_refresh_token_spent_moments_ago_gets_a_new_session_and_later_reuse_revokes,
);

fn refresh_token(session: &Value) -> &str {
    session["refreshToken"].as_str().expect("refreshToken")
}

async fn refresh(app: &TestApp, rt: &str) -> Res {
    app.post("/api/sessions/refresh", json!({ "refreshToken": rt }))
        .await
}

async fn a_refresh_token_spent_moments_ago_gets_a_new_session_and_later_reuse_revokes(
    app: TestApp,
) {
    let s1 = app.register("gale").await;
    let r = refresh(&app, refresh_token(&s1)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s2 = r.body;
    // The answer to that refresh "was lost": the same token again, at once.
    let r = refresh(&app, refresh_token(&s1)).await;
    assert_eq!(r.status, 200, "within the grace: {}", r.body);
    let s3 = r.body;
    assert_ne!(refresh_token(&s3), refresh_token(&s2));
    // Nothing was revoked: both new tokens work.
    let r = refresh(&app, refresh_token(&s3)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s4 = r.body;
    let r = refresh(&app, refresh_token(&s2)).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Past the grace, the spent token is reuse: the whole login is revoked.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let r = refresh(&app, refresh_token(&s1)).await;
    assert_eq!((r.status, r.code()), (401, "refresh_token_reused"));
    let r = refresh(&app, refresh_token(&s4)).await;
    assert_eq!((r.status, r.code()), (401, "invalid_refresh_token"));
}
