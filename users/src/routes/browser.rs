//! `/api/browser/...`: sessions for the web page, with the refresh token in an
//! HttpOnly cookie that script never sees.
//!
//! The handlers are the bearer routes' cores (`create_account`, `log_in`, `rotate`,
//! `revoke`) with a different envelope: the refresh token leaves in `Set-Cookie` and
//! comes back in `Cookie`, and the body is a [`BrowserSession`]. A cookie is sent by
//! the browser on its own, so every route first demands proof that our page sent the
//! request ([`SameOrigin`]), before any rate limit, hash or database call.

use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use rendezvous_api::ErrorBody;
use rendezvous_service::{ApiError as _, Json};

use crate::error::{Error, Result};
use crate::extract::ClientIp;
use crate::model::{BrowserSession, LoginRequest, RegisterRequest, Session};
use crate::routes::sessions::{log_in, revoke, rotate};
use crate::routes::users::create_account;
use crate::Ctx;

/// The refresh-token cookie.
pub const COOKIE_NAME: &str = "rdv_refresh";

/// The header our page adds to every browser-session call. A cross-origin page can
/// only send a custom header after a CORS preflight, which this service never grants.
pub const CSRF_HEADER: &str = "x-rendezvous-csrf";

/// Attributes of the cookie: no script access, HTTPS only (browsers count
/// `http://localhost` as secure), never sent from another site, and sent only to the
/// routes that read it, not to every API call.
const COOKIE_ATTRIBUTES: &str = "HttpOnly; Secure; SameSite=Strict; Path=/api/browser/sessions";

/// A cookie beside the refresh cookie that script may read: `rdv_session=1`, no
/// secret in it. The page asks for a session only when it is there, so a visitor's
/// first visit does not start with a refused request.
pub const HINT_COOKIE_NAME: &str = "rdv_session";
const HINT_ATTRIBUTES: &str = "Secure; SameSite=Strict; Path=/";

type Cookies = AppendHeaders<[(axum::http::HeaderName, String); 2]>;

/// `Set-Cookie` for `token`, living as long as the refresh token does, and its hint.
fn set_cookie(token: &str, ttl: Duration) -> Cookies {
    let age = ttl.as_secs();
    AppendHeaders([
        (
            SET_COOKIE,
            format!("{COOKIE_NAME}={token}; {COOKIE_ATTRIBUTES}; Max-Age={age}"),
        ),
        (
            SET_COOKIE,
            format!("{HINT_COOKIE_NAME}=1; {HINT_ATTRIBUTES}; Max-Age={age}"),
        ),
    ])
}

/// `Set-Cookie` that makes the browser drop the cookie and its hint.
fn clear_cookie() -> Cookies {
    AppendHeaders([
        (
            SET_COOKIE,
            format!("{COOKIE_NAME}=; {COOKIE_ATTRIBUTES}; Max-Age=0"),
        ),
        (
            SET_COOKIE,
            format!("{HINT_COOKIE_NAME}=; {HINT_ATTRIBUTES}; Max-Age=0"),
        ),
    ])
}

/// The value of the `name` cookie: the first non-empty one across every `Cookie`
/// header (HTTP/2 may split them), pairs separated by `;` with optional spaces, a
/// value optionally in double quotes (RFC 6265 5.4 and 4.1.1). Other cookies may
/// hold any bytes; only ours must be UTF-8.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|line| line.as_bytes().split(|b| *b == b';'))
        .filter_map(|pair| {
            let (k, v) = pair.split_at(pair.iter().position(|b| *b == b'=')?);
            let v = v[1..].trim_ascii();
            let v = v
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(v);
            if k.trim_ascii() != name.as_bytes() || v.is_empty() {
                return None;
            }
            std::str::from_utf8(v).ok()
        })
        .next()
}

/// Whether the request shows it came from our own page: `X-Rendezvous-CSRF: 1`, and
/// no `Sec-Fetch-Site` other than `same-origin` or `none` (a user-typed navigation).
/// Browsers without `Sec-Fetch-Site` still cannot forge the custom header.
fn from_our_page(headers: &HeaderMap) -> bool {
    let marked = headers.get(CSRF_HEADER).is_some_and(|v| v == "1");
    let same_site = headers
        .get_all("sec-fetch-site")
        .iter()
        .all(|v| v == "same-origin" || v == "none");
    marked && same_site
}

/// The guard of every browser route: [`from_our_page`] or `403 csrf_failed`. Put it
/// first among a handler's extractors so a refused request costs nothing.
pub struct SameOrigin;

impl<S: Send + Sync> FromRequestParts<S> for SameOrigin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self> {
        if from_our_page(&parts.headers) {
            Ok(SameOrigin)
        } else {
            Err(Error::CsrfFailed)
        }
    }
}

/// The answer carrying a new session: the token in the cookie, the rest in the body.
fn issued(ctx: &Ctx, status: StatusCode, session: Session) -> Response {
    let (body, token) = session.into_browser();
    let cookie = set_cookie(&token, ctx.cfg.refresh_token_ttl);
    (status, cookie, Json(body)).into_response()
}

/// Create an account and log it in; the refresh token is set as the `rdv_refresh` cookie.
#[utoipa::path(post, path = "/api/browser/users", tag = "browser sessions",
    request_body = RegisterRequest,
    params(("X-Rendezvous-CSRF" = String, Header, description = "Must be `1`")),
    responses(
        (status = 201, description = "Registered and logged in", body = BrowserSession,
            headers(("Set-Cookie" = String, description = "`rdv_refresh=TOKEN; HttpOnly; Secure; SameSite=Strict; Path=/api/browser/sessions; Max-Age=SECONDS`, and beside it the hint `rdv_session=1; Secure; SameSite=Strict; Path=/; Max-Age=SECONDS` (no secret; readable by script)"))),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 409, description = "email_taken or username_taken", body = ErrorBody),
        (status = 422, description = "validation_failed", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
        (status = 503, description = "busy (see Retry-After)", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn register(
    _: SameOrigin,
    State(ctx): State<Ctx>,
    ClientIp(ip): ClientIp,
    Json(req): Json<RegisterRequest>,
) -> Result<Response> {
    let session = create_account(&ctx, ip, req).await?;
    Ok(issued(&ctx, StatusCode::CREATED, session))
}

/// Log in with email or username and password; the refresh token is set as the
/// `rdv_refresh` cookie.
#[utoipa::path(post, path = "/api/browser/sessions", tag = "browser sessions",
    request_body = LoginRequest,
    params(("X-Rendezvous-CSRF" = String, Header, description = "Must be `1`")),
    responses(
        (status = 200, description = "Logged in", body = BrowserSession,
            headers(("Set-Cookie" = String, description = "`rdv_refresh=TOKEN; HttpOnly; Secure; SameSite=Strict; Path=/api/browser/sessions; Max-Age=SECONDS`, and beside it the hint `rdv_session=1; Secure; SameSite=Strict; Path=/; Max-Age=SECONDS` (no secret; readable by script)"))),
        (status = 401, description = "invalid_credentials", body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 422, description = "validation_failed", body = ErrorBody),
        (status = 429, description = "rate_limited (see Retry-After)", body = ErrorBody),
        (status = 503, description = "busy: no password-hashing slot in time (see Retry-After)", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn login(
    _: SameOrigin,
    State(ctx): State<Ctx>,
    ClientIp(ip): ClientIp,
    Json(req): Json<LoginRequest>,
) -> Result<Response> {
    let session = log_in(&ctx, ip, req).await?;
    Ok(issued(&ctx, StatusCode::OK, session))
}

/// Exchange the `rdv_refresh` cookie for a new access token and a new cookie. Single
/// use, like `POST /api/sessions/refresh`: a page with several tabs must let one
/// refresh at a time. Every 401 also clears the cookie.
#[utoipa::path(post, path = "/api/browser/sessions/refresh", tag = "browser sessions",
    params(
        ("X-Rendezvous-CSRF" = String, Header, description = "Must be `1`"),
        ("rdv_refresh" = Option<String>, Cookie, description = "The refresh token, as the browser routes set it"),
    ),
    responses(
        (status = 200, description = "New access token; the cookie rotated", body = BrowserSession,
            headers(("Set-Cookie" = String, description = "The next `rdv_refresh` cookie and its `rdv_session=1` hint; on a 401 both cleared (`Max-Age=0`)"))),
        (status = 401, description = "unauthenticated (no cookie), invalid_refresh_token or refresh_token_reused; the cookie is cleared", body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn refresh(_: SameOrigin, State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    let rotated = match cookie(&headers, COOKIE_NAME) {
        Some(token) => rotate(&ctx, token).await,
        None => Err(Error::NoBrowserSession),
    };
    match rotated {
        Ok(session) => issued(&ctx, StatusCode::OK, session),
        // A dead cookie is of no further use: let the browser drop it.
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => (clear_cookie(), e).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Log out: revoke the cookie's login, if it has a live one, and clear the cookie.
/// Idempotent: without a cookie, or with a dead one, it only clears.
#[utoipa::path(delete, path = "/api/browser/sessions", tag = "browser sessions",
    params(
        ("X-Rendezvous-CSRF" = String, Header, description = "Must be `1`"),
        ("rdv_refresh" = Option<String>, Cookie, description = "The refresh token, as the browser routes set it"),
    ),
    responses(
        (status = 204, description = "Logged out; the cookie cleared (`Max-Age=0`)",
            headers(("Set-Cookie" = String, description = "`rdv_refresh=; ...; Max-Age=0` and `rdv_session=; ...; Max-Age=0`"))),
        (status = 403, description = "csrf_failed", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn logout(_: SameOrigin, State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    let revoked = match cookie(&headers, COOKIE_NAME) {
        Some(token) => match revoke(&ctx, token).await {
            Err(Error::InvalidRefreshToken) => Ok(()),
            other => other,
        },
        None => Ok(()),
    };
    // Cleared even on a fault: the user asked this browser to forget the login.
    let clear = clear_cookie();
    match revoked {
        Ok(()) => (StatusCode::NO_CONTENT, clear).into_response(),
        Err(e) => (clear, e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            let name: axum::http::HeaderName = k.parse().unwrap();
            h.append(name, axum::http::HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    fn rdv(lines: &[&[u8]]) -> Option<String> {
        let h = mk_headers(&lines.iter().map(|l| ("cookie", *l)).collect::<Vec<_>>());
        cookie(&h, COOKIE_NAME).map(str::to_owned)
    }

    #[test]
    fn cookie_finds_ours_among_others_with_or_without_spaces() {
        assert_eq!(rdv(&[b"rdv_refresh=abc"]).as_deref(), Some("abc"));
        assert_eq!(rdv(&[b"a=1; rdv_refresh=abc; b=2"]).as_deref(), Some("abc"));
        assert_eq!(rdv(&[b"a=1;rdv_refresh=abc;b=2"]).as_deref(), Some("abc"));
        assert_eq!(rdv(&[b"  rdv_refresh = abc  ;"]).as_deref(), Some("abc"));
        assert_eq!(rdv(&[b"rdv_refresh=\"abc\""]).as_deref(), Some("abc"));
        assert_eq!(
            rdv(&[b"rdv_refresh=a=b-_"]).as_deref(),
            Some("a=b-_"),
            "the value runs to the next ';'"
        );
    }

    #[test]
    fn cookie_reads_every_cookie_header() {
        assert_eq!(
            rdv(&[b"a=1; b=2", b"c=3; rdv_refresh=abc"]).as_deref(),
            Some("abc")
        );
        assert_eq!(
            rdv(&[b"rdv_refresh=first", b"rdv_refresh=second"]).as_deref(),
            Some("first")
        );
    }

    #[test]
    fn cookie_ignores_lookalikes_empties_and_other_cookies_bytes() {
        assert_eq!(rdv(&[]), None);
        assert_eq!(rdv(&[b"x_rdv_refresh=abc; rdv_refresh_old=def"]), None);
        assert_eq!(rdv(&[b"rdv_refreshabc; =abc; rdv_refresh"]), None);
        assert_eq!(rdv(&[b"rdv_refresh=; rdv_refresh=\"\""]), None);
        assert_eq!(
            rdv(&[b"rdv_refresh=; rdv_refresh=abc"]).as_deref(),
            Some("abc"),
            "an empty one does not hide a real one"
        );
        assert_eq!(
            rdv(&[b"other=\xe9t\xe9; rdv_refresh=abc"]).as_deref(),
            Some("abc"),
            "another cookie's non-UTF-8 bytes do not hide ours"
        );
        assert_eq!(rdv(&[b"rdv_refresh=\xff"]), None);
    }

    #[test]
    fn our_page_must_send_the_header_and_no_foreign_fetch_site() {
        let ok = |pairs: &[(&str, &[u8])]| from_our_page(&mk_headers(pairs));
        assert!(ok(&[("x-rendezvous-csrf", b"1")]));
        assert!(ok(&[
            ("x-rendezvous-csrf", b"1"),
            ("sec-fetch-site", b"same-origin")
        ]));
        assert!(ok(&[
            ("x-rendezvous-csrf", b"1"),
            ("sec-fetch-site", b"none")
        ]));
        assert!(!ok(&[]));
        assert!(!ok(&[("x-rendezvous-csrf", b"0")]));
        assert!(!ok(&[("x-rendezvous-csrf", b"true")]));
        assert!(!ok(&[("sec-fetch-site", b"same-origin")]));
        for site in [&b"cross-site"[..], b"same-site", b"SAME-ORIGIN", b""] {
            assert!(
                !ok(&[("x-rendezvous-csrf", b"1"), ("sec-fetch-site", site)]),
                "{site:?}"
            );
        }
        assert!(!ok(&[
            ("x-rendezvous-csrf", b"1"),
            ("sec-fetch-site", b"same-origin"),
            ("sec-fetch-site", b"cross-site"),
        ]));
    }

    #[test]
    fn cookies_are_set_and_cleared_with_the_same_attributes() {
        let values = |c: Cookies| {
            let mut res = c.into_response();
            res.headers_mut()
                .get_all(SET_COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            values(set_cookie("tok", Duration::from_secs(2_592_000))),
            [
                "rdv_refresh=tok; HttpOnly; Secure; SameSite=Strict; Path=/api/browser/sessions; Max-Age=2592000",
                "rdv_session=1; Secure; SameSite=Strict; Path=/; Max-Age=2592000",
            ]
        );
        assert_eq!(
            values(clear_cookie()),
            [
                "rdv_refresh=; HttpOnly; Secure; SameSite=Strict; Path=/api/browser/sessions; Max-Age=0",
                "rdv_session=; Secure; SameSite=Strict; Path=/; Max-Age=0",
            ]
        );
    }
}
