//! The browser-session routes over HTTP, on SQLite and on PostgreSQL: the refresh
//! token lives only in the `rdv_refresh` cookie, and nothing happens without the
//! CSRF header. reqwest has no cookie store here: every `Cookie` header is explicit.

mod common;

use common::{Res, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

both!(
    browser_register_and_login_set_the_cookie_and_hide_the_refresh_token,
    browser_refresh_rotates_the_cookie_and_returns_a_working_access_token,
    browser_refresh_reuse_revokes_the_family_and_clears_the_cookie,
    requests_without_the_csrf_header_are_refused_and_change_nothing,
    cross_site_fetches_are_refused_even_with_the_csrf_header,
    browser_logout_revokes_the_login_and_clears_the_cookie,
    browser_logout_without_a_live_cookie_still_succeeds_and_clears,
    browser_refresh_without_a_cookie_is_unauthenticated,
    the_refresh_cookie_is_found_among_other_cookies_and_cookie_headers,
);

/// Rate limits in force, and small, for the scenarios that count against them.
mod limited {
    use super::*;

    both!(with |c| {
        c.login_per_account_per_minute = 1;
        c.register_per_address_per_hour = 2;
    };
        refused_requests_do_not_spend_the_rate_limits,
    );

    async fn refused_requests_do_not_spend_the_rate_limits(app: TestApp) {
        for _ in 0..3 {
            let r = app
                .send(
                    without_csrf(&app, Method::POST, "/api/browser/users")
                        .json(&registration("ada")),
                )
                .await;
            assert_eq!((r.status, r.code()), (403, "csrf_failed"));
        }
        assert_eq!(browser_register(&app, "ada").await.status, 201);
        app.register("bob").await;
        let r = browser_register(&app, "cleo").await;
        assert_eq!(
            (r.status, r.code()),
            (429, "rate_limited"),
            "the limit is live"
        );

        for _ in 0..3 {
            let r = app
                .send(
                    without_csrf(&app, Method::POST, "/api/browser/sessions")
                        .json(&credentials("ada")),
                )
                .await;
            assert_eq!((r.status, r.code()), (403, "csrf_failed"));
        }
        assert_eq!(browser_login(&app, "ada").await.status, 200);
        let r = browser_login(&app, "ada").await;
        assert_eq!(
            (r.status, r.code()),
            (429, "rate_limited"),
            "the limit is live"
        );
    }
}

const COOKIE_ATTRIBUTES: &str = "HttpOnly; Secure; SameSite=Strict; Path=/api/browser/sessions";

/// A request as our page sends it: with the CSRF header.
fn browser(app: &TestApp, method: Method, path: &str) -> reqwest::RequestBuilder {
    without_csrf(app, method, path).header("x-rendezvous-csrf", "1")
}

fn without_csrf(app: &TestApp, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.http.request(method, app.url(path))
}

fn registration(name: &str) -> Value {
    json!({
        "email": format!("{name}@example.com"),
        "username": name,
        "displayName": format!("{name} display"),
        "password": format!("password-of-{name}"),
    })
}

fn credentials(name: &str) -> Value {
    json!({"login": name, "password": format!("password-of-{name}")})
}

async fn browser_register(app: &TestApp, name: &str) -> Res {
    app.send(browser(app, Method::POST, "/api/browser/users").json(&registration(name)))
        .await
}

async fn browser_login(app: &TestApp, name: &str) -> Res {
    app.send(browser(app, Method::POST, "/api/browser/sessions").json(&credentials(name)))
        .await
}

/// `POST /api/browser/sessions/refresh` with `cookie` as the whole `Cookie` header.
async fn refresh(app: &TestApp, cookie: Option<&str>) -> Res {
    let mut req = browser(app, Method::POST, "/api/browser/sessions/refresh");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    app.send(req).await
}

async fn logout(app: &TestApp, cookie: Option<&str>) -> Res {
    let mut req = browser(app, Method::DELETE, "/api/browser/sessions");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    app.send(req).await
}

/// The refresh cookie's `Set-Cookie` of a response, after checking that the script
/// readable hint beside it (`rdv_session`, no secret) says the same: set with the
/// same lifetime, or cleared.
fn set_cookie(r: &Res) -> &str {
    let all: Vec<_> = r.headers.get_all("set-cookie").iter().collect();
    assert_eq!(all.len(), 2, "the refresh cookie and its hint: {all:?}");
    let refresh = all[0].to_str().unwrap();
    let hint = all[1].to_str().unwrap();
    let max_age = refresh.rsplit("Max-Age=").next().unwrap();
    if max_age == "0" {
        assert_eq!(
            hint,
            "rdv_session=; Secure; SameSite=Strict; Path=/; Max-Age=0"
        );
    } else {
        assert_eq!(
            hint,
            format!("rdv_session=1; Secure; SameSite=Strict; Path=/; Max-Age={max_age}")
        );
    }
    assert!(!hint.contains("HttpOnly"), "the page reads the hint");
    refresh
}

/// The `rdv_refresh=TOKEN` pair a response set, after checking its attributes.
fn issued_cookie(r: &Res, app: &TestApp) -> String {
    let header = set_cookie(r);
    let (pair, attributes) = header.split_once("; ").expect("attributes");
    let max_age = app.ctx.cfg.refresh_token_ttl.as_secs();
    assert_eq!(
        attributes,
        format!("{COOKIE_ATTRIBUTES}; Max-Age={max_age}")
    );
    let token = pair.strip_prefix("rdv_refresh=").expect("rdv_refresh");
    assert!(token.len() >= 43, "a real token: {pair}");
    pair.to_owned()
}

fn assert_cleared(r: &Res) {
    assert_eq!(
        set_cookie(r),
        format!("rdv_refresh=; {COOKIE_ATTRIBUTES}; Max-Age=0")
    );
}

/// Check `r` is a browser session: `Session` without `refreshToken`, the token only in
/// the cookie. Returns the cookie pair.
fn assert_browser_session(r: &Res, app: &TestApp) -> String {
    let mut keys: Vec<_> = r.body.as_object().expect("a session").keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["accessToken", "expiresIn", "tokenType", "user"],
        "{}",
        r.body
    );
    assert_eq!(r.body["tokenType"], "Bearer");
    assert_eq!(r.body["expiresIn"], 900);
    let pair = issued_cookie(r, app);
    let token = &pair["rdv_refresh=".len()..];
    assert!(
        !r.body.to_string().contains(token),
        "the token leaked into the body"
    );
    pair
}

fn access_token(r: &Res) -> &str {
    r.body["accessToken"].as_str().expect("accessToken")
}

async fn browser_register_and_login_set_the_cookie_and_hide_the_refresh_token(app: TestApp) {
    let r = browser_register(&app, "ada").await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_browser_session(&r, &app);
    assert_eq!(r.body["user"]["username"], "ada");

    let r = browser_login(&app, "ada").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_browser_session(&r, &app);
    let me = app.get("/api/users/me", access_token(&r)).await;
    assert_eq!((me.status, &me.body["username"]), (200, &json!("ada")));

    let r = app
        .send(
            browser(&app, Method::POST, "/api/browser/sessions")
                .json(&json!({"login": "ada", "password": "wrong password"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "invalid_credentials"));
    assert!(r.headers.get("set-cookie").is_none());
}

async fn browser_refresh_rotates_the_cookie_and_returns_a_working_access_token(app: TestApp) {
    let first = issued_cookie(&browser_register(&app, "bea").await, &app);
    let r = refresh(&app, Some(&first)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let second = assert_browser_session(&r, &app);
    assert_ne!(second, first, "rotated");
    let me = app.get("/api/users/me", access_token(&r)).await;
    assert_eq!((me.status, &me.body["username"]), (200, &json!("bea")));
    assert_eq!(
        refresh(&app, Some(&second)).await.status,
        200,
        "the new one works"
    );
}

async fn browser_refresh_reuse_revokes_the_family_and_clears_the_cookie(app: TestApp) {
    let old = issued_cookie(&browser_register(&app, "cleo").await, &app);
    let new = issued_cookie(&refresh(&app, Some(&old)).await, &app);
    // Another login of the same account is another family and survives.
    let other = issued_cookie(&browser_login(&app, "cleo").await, &app);

    let r = refresh(&app, Some(&old)).await;
    assert_eq!((r.status, r.code()), (401, "refresh_token_reused"));
    assert_cleared(&r);
    let r = refresh(&app, Some(&new)).await;
    assert_eq!(
        (r.status, r.code()),
        (401, "invalid_refresh_token"),
        "the newest cookie died with its family"
    );
    assert_cleared(&r);
    assert_eq!(refresh(&app, Some(&other)).await.status, 200);
    let r = refresh(&app, Some("rdv_refresh=made-up")).await;
    assert_eq!((r.status, r.code()), (401, "invalid_refresh_token"));
    assert_cleared(&r);
}

async fn requests_without_the_csrf_header_are_refused_and_change_nothing(app: TestApp) {
    let cookie = issued_cookie(&browser_register(&app, "dora").await, &app);
    let refused = [
        without_csrf(&app, Method::POST, "/api/browser/users").json(&registration("eve")),
        // Refused before the body is even read: a bad body is not what it hears about.
        without_csrf(&app, Method::POST, "/api/browser/users").json(&json!({"email": 1})),
        without_csrf(&app, Method::POST, "/api/browser/sessions").json(&credentials("dora")),
        without_csrf(&app, Method::POST, "/api/browser/sessions/refresh").header("cookie", &cookie),
        without_csrf(&app, Method::DELETE, "/api/browser/sessions").header("cookie", &cookie),
        without_csrf(&app, Method::DELETE, "/api/browser/sessions")
            .header("cookie", &cookie)
            .header("x-rendezvous-csrf", "yes"),
    ];
    for req in refused {
        let r = app.send(req).await;
        assert_eq!((r.status, r.code()), (403, "csrf_failed"), "{}", r.body);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("X-Rendezvous-CSRF: 1"),
            "{}",
            r.body
        );
        assert!(
            r.headers.get("set-cookie").is_none(),
            "the cookie stays as it was"
        );
    }
    // Nothing happened: eve does not exist, and dora's cookie was neither spent nor revoked.
    assert_eq!(browser_register(&app, "eve").await.status, 201);
    assert_eq!(refresh(&app, Some(&cookie)).await.status, 200);
}

async fn cross_site_fetches_are_refused_even_with_the_csrf_header(app: TestApp) {
    let cookie = issued_cookie(&browser_register(&app, "fay").await, &app);
    for site in ["cross-site", "same-site"] {
        let refused = [
            browser(&app, Method::POST, "/api/browser/users").json(&registration("gus")),
            browser(&app, Method::POST, "/api/browser/sessions").json(&credentials("fay")),
            browser(&app, Method::POST, "/api/browser/sessions/refresh").header("cookie", &cookie),
            browser(&app, Method::DELETE, "/api/browser/sessions").header("cookie", &cookie),
        ];
        for req in refused {
            let r = app.send(req.header("sec-fetch-site", site)).await;
            assert_eq!((r.status, r.code()), (403, "csrf_failed"), "{site}");
        }
    }
    // Our own page's fetches say same-origin.
    let r = app
        .send(
            browser(&app, Method::POST, "/api/browser/sessions/refresh")
                .header("cookie", &cookie)
                .header("sec-fetch-site", "same-origin"),
        )
        .await;
    assert_eq!(r.status, 200, "the cookie was never spent: {}", r.body);
}

async fn browser_logout_revokes_the_login_and_clears_the_cookie(app: TestApp) {
    let first = issued_cookie(&browser_register(&app, "hal").await, &app);
    let current = issued_cookie(&refresh(&app, Some(&first)).await, &app);
    let other = issued_cookie(&browser_login(&app, "hal").await, &app);
    let r = logout(&app, Some(&current)).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_cleared(&r);
    let r = refresh(&app, Some(&current)).await;
    assert_eq!((r.status, r.code()), (401, "invalid_refresh_token"));
    assert_eq!(
        refresh(&app, Some(&other)).await.status,
        200,
        "only that login"
    );
    // Logging out twice is fine.
    let r = logout(&app, Some(&current)).await;
    assert_eq!(r.status, 204);
    assert_cleared(&r);
}

async fn browser_logout_without_a_live_cookie_still_succeeds_and_clears(app: TestApp) {
    for cookie in [
        None,
        Some("rdv_refresh=made-up"),
        Some("rdv_refresh="),
        Some("other=1"),
    ] {
        let r = logout(&app, cookie).await;
        assert_eq!(r.status, 204, "{cookie:?}: {}", r.body);
        assert_cleared(&r);
    }
}

async fn browser_refresh_without_a_cookie_is_unauthenticated(app: TestApp) {
    for cookie in [None, Some("other=1; another=2"), Some("rdv_refresh=")] {
        let r = refresh(&app, cookie).await;
        assert_eq!((r.status, r.code()), (401, "unauthenticated"), "{cookie:?}");
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("no browser session"), "{message}");
        assert_cleared(&r);
    }
}

async fn the_refresh_cookie_is_found_among_other_cookies_and_cookie_headers(app: TestApp) {
    let pair = issued_cookie(&browser_register(&app, "ivy").await, &app);
    let r = refresh(&app, Some(&format!("theme=dark; {pair}; lang=en"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let pair = issued_cookie(&r, &app);
    let r = refresh(&app, Some(&format!("theme=dark;{pair};lang=en"))).await;
    assert_eq!(r.status, 200, "no spaces: {}", r.body);
    let pair = issued_cookie(&r, &app);
    // Two `Cookie` header lines, ours in the second.
    let r = app
        .send(
            browser(&app, Method::POST, "/api/browser/sessions/refresh")
                .header("cookie", "theme=dark; lang=en")
                .header("cookie", format!("x=1; {pair}")),
        )
        .await;
    assert_eq!(r.status, 200, "second header line: {}", r.body);
    let me = app.get("/api/users/me", access_token(&r)).await;
    assert_eq!(me.status, 200);
}
