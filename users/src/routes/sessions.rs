//! `/api/sessions`: log in, refresh (rotating, with reuse detection), log out.
//!
//! The cores ([`log_in`], [`rotate`], [`revoke`]) are shared with the browser
//! routes (`browser`), which differ only in where the refresh token travels.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use rand::RngCore as _;
use rendezvous_api::{AccessClaims, ErrorBody};
use rendezvous_auth::now_unix;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::extract::ClientIp;
use crate::model::{LoginRequest, RefreshRequest, Session, User};
use crate::store::UserRow;
use crate::Ctx;
use rendezvous_service::Json;

/// The stored form of a refresh token: SHA-256, hex. The token has 256 random bits,
/// so a fast hash is enough (no dictionary to guess from).
fn refresh_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Mint an access token and a refresh token; `family` continues a login, `None`
/// starts a new one.
pub(crate) async fn issue_session(
    ctx: &Ctx,
    user: &UserRow,
    family: Option<&str>,
) -> Result<Session> {
    let now = now_unix();
    let ttl = ctx.cfg.access_token_ttl.as_secs();
    let claims = AccessClaims {
        sub: user.id.clone(),
        name: user.display_name.clone(),
        iat: now,
        exp: now + ttl as i64,
        iss: ctx.cfg.token_issuer.clone(),
        aud: ctx.cfg.token_audience.clone(),
    };
    let access_token = ctx.keys.signer().sign(&claims)?;

    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let refresh_token = B64.encode(secret);
    let family = family
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let expires_at = now + ctx.cfg.refresh_token_ttl.as_secs() as i64;
    ctx.store
        .insert_refresh(
            &uuid::Uuid::new_v4().to_string(),
            &refresh_hash(&refresh_token),
            &family,
            &user.id,
            now,
            expires_at,
        )
        .await?;
    Ok(Session {
        access_token,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: ttl,
        user: User::from(user),
    })
}

/// Log in with email or username and password.
#[utoipa::path(post, path = "/api/sessions", tag = "sessions", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = Session),
        (status = 401, description = "invalid_credentials", body = ErrorBody),
        (status = 422, description = "validation_failed", body = ErrorBody),
        (status = 429, description = "rate_limited (see Retry-After)", body = ErrorBody),
        (status = 503, description = "busy: no password-hashing slot in time (see Retry-After)", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(ctx): State<Ctx>,
    ClientIp(ip): ClientIp,
    Json(req): Json<LoginRequest>,
) -> Result<Json<Session>> {
    Ok(Json(log_in(&ctx, ip, req).await?))
}

/// Every log-in (bearer or browser): rate limit, look the account up, verify the
/// password (even for an unknown account, so timing tells nothing), issue a session.
pub(crate) async fn log_in(ctx: &Ctx, ip: IpAddr, req: LoginRequest) -> Result<Session> {
    let login = req.login.trim().to_lowercase();
    if login.is_empty()
        || login.len() > crate::validate::EMAIL_MAX
        || req.password.len() > 4 * crate::validate::PASSWORD_MAX
    {
        return Err(Error::InvalidCredentials);
    }
    ctx.limiters.login(&login, ip)?;
    let user = ctx.store.user_by_login(&login).await?;
    let ok = ctx
        .hasher
        .verify(req.password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    match user {
        Some(user) if ok => issue_session(ctx, &user, None).await,
        _ => {
            ctx.metrics.login_failures.inc();
            Err(Error::InvalidCredentials)
        }
    }
}

/// Exchange a refresh token for a new pair. Each refresh token works once; presenting
/// one that was already exchanged revokes every session of that login, unless it comes
/// back within the reuse grace (10 s by default) of its exchange, as when the answer
/// was lost: then it gets a new session.
#[utoipa::path(post, path = "/api/sessions/refresh", tag = "sessions", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = Session),
        (status = 401, description = "invalid_refresh_token or refresh_token_reused", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn refresh(
    State(ctx): State<Ctx>,
    Json(req): Json<RefreshRequest>,
) -> Result<Json<Session>> {
    Ok(Json(rotate(&ctx, &req.refresh_token).await?))
}

/// Every refresh (bearer or browser): spend `token` once and issue the next session
/// of its login; a token spent before revokes the whole login, unless it was spent
/// less than `refresh_reuse_grace` ago (its answer may have been lost).
pub(crate) async fn rotate(ctx: &Ctx, token: &str) -> Result<Session> {
    let now = now_unix();
    let row = ctx
        .store
        .refresh_by_hash(&refresh_hash(token))
        .await?
        .ok_or(Error::InvalidRefreshToken)?;
    if row.revoked_at.is_some() || row.expires_at <= now {
        return Err(Error::InvalidRefreshToken);
    }
    let spent_at = match row.used_at {
        Some(at) => Some(at),
        // Someone else claimed it between our read and now.
        None if !ctx.store.claim_refresh(&row.id, now).await? => Some(now),
        None => None,
    };
    if let Some(at) = spent_at {
        let grace = ctx.cfg.refresh_reuse_grace.as_secs() as i64;
        if now.saturating_sub(at) >= grace {
            // Reuse of a rotated token: whoever holds it, the login is compromised.
            tracing::warn!(family = %row.family_id, "refresh token reuse; revoking the family");
            ctx.store.revoke_family(&row.family_id, now).await?;
            return Err(Error::RefreshTokenReused);
        }
        tracing::info!(
            family = %row.family_id,
            "a refresh token spent {}s ago came back within the grace; a new session",
            now - at
        );
    }
    let user = ctx
        .store
        .user_by_id(&row.user_id)
        .await?
        .ok_or(Error::InvalidRefreshToken)?;
    issue_session(ctx, &user, Some(&row.family_id)).await
}

/// Log out: revoke the refresh token's whole login. Access tokens already issued
/// expire on their own (minutes).
#[utoipa::path(delete, path = "/api/sessions", tag = "sessions", request_body = RefreshRequest,
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "invalid_refresh_token", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn logout(State(ctx): State<Ctx>, Json(req): Json<RefreshRequest>) -> Result<StatusCode> {
    revoke(&ctx, &req.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every log-out (bearer or browser): revoke the login `token` belongs to, spent or
/// not; `InvalidRefreshToken` when no such token was ever issued (or it was purged).
pub(crate) async fn revoke(ctx: &Ctx, token: &str) -> Result<()> {
    let row = ctx
        .store
        .refresh_by_hash(&refresh_hash(token))
        .await?
        .ok_or(Error::InvalidRefreshToken)?;
    ctx.store.revoke_family(&row.family_id, now_unix()).await
}
