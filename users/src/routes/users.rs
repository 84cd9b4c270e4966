//! `/api/users`: register, profile, change password, delete account.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::StatusCode;
use rendezvous_api::ErrorBody;
use rendezvous_auth::now_unix;

use crate::error::{Error, Result};
use crate::extract::{AuthUser, ClientIp};
use crate::model::{
    ChangePasswordRequest, DeleteAccountRequest, RegisterRequest, Session, UpdateProfileRequest,
    User,
};
use crate::routes::sessions::issue_session;
use crate::store::UserRow;
use crate::{validate, Ctx};
use rendezvous_service::Json;

/// Create an account and log it in.
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered and logged in", body = Session),
        (status = 409, description = "email_taken or username_taken", body = ErrorBody),
        (status = 422, description = "validation_failed", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
        (status = 503, description = "busy (see Retry-After)", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn register(
    State(ctx): State<Ctx>,
    ClientIp(ip): ClientIp,
    Json(req): Json<RegisterRequest>,
) -> Result<(StatusCode, Json<Session>)> {
    Ok((
        StatusCode::CREATED,
        Json(create_account(&ctx, ip, req).await?),
    ))
}

/// Every registration (bearer or browser): validate, rate limit, hash, store, and log
/// the new account in.
pub(crate) async fn create_account(ctx: &Ctx, ip: IpAddr, req: RegisterRequest) -> Result<Session> {
    let email = validate::email(&req.email)?;
    let username = validate::username(&req.username)?;
    let display_name = validate::display_name(&req.display_name)?;
    validate::password(&req.password)?;
    ctx.limiters.register(ip)?;
    let now = now_unix();
    let user = UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        email,
        username,
        display_name,
        password_hash: ctx.hasher.hash(req.password).await?,
        created_at: now,
    };
    ctx.store.insert_user(&user).await?;
    tracing::info!(user = %user.id, "registered");
    issue_session(ctx, &user, None).await
}

async fn current(ctx: &Ctx, claims: &rendezvous_api::AccessClaims) -> Result<UserRow> {
    // A valid token for a deleted account is no longer a user.
    ctx.store
        .user_by_id(&claims.sub)
        .await?
        .ok_or(Error::Unauthenticated)
}

/// The caller's profile.
#[utoipa::path(get, path = "/api/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn me(State(ctx): State<Ctx>, AuthUser(claims): AuthUser) -> Result<axum::Json<User>> {
    Ok(axum::Json(User::from(&current(&ctx, &claims).await?)))
}

/// Change email, username or display name.
#[utoipa::path(patch, path = "/api/users/me", tag = "users", security(("bearer" = [])),
    request_body = UpdateProfileRequest,
    responses(
        (status = 200, body = User),
        (status = 401, body = ErrorBody),
        (status = 409, description = "email_taken or username_taken", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn update_me(
    State(ctx): State<Ctx>,
    AuthUser(claims): AuthUser,
    Json(req): Json<UpdateProfileRequest>,
) -> Result<axum::Json<User>> {
    let email = req.email.as_deref().map(validate::email).transpose()?;
    let username = req
        .username
        .as_deref()
        .map(validate::username)
        .transpose()?;
    let display_name = req
        .display_name
        .as_deref()
        .map(validate::display_name)
        .transpose()?;
    let user = current(&ctx, &claims).await?;
    ctx.store
        .update_profile(
            &user.id,
            email.as_deref(),
            username.as_deref(),
            display_name.as_deref(),
            now_unix(),
        )
        .await?;
    let user = current(&ctx, &claims).await?;
    Ok(axum::Json(User::from(&user)))
}

/// Change the password. Every existing session is revoked; the response is a fresh one.
#[utoipa::path(put, path = "/api/users/me/password", tag = "users", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "Changed; all other sessions revoked", body = Session),
        (status = 401, body = ErrorBody),
        (status = 403, description = "wrong_password", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn change_password(
    State(ctx): State<Ctx>,
    AuthUser(claims): AuthUser,
    Json(req): Json<ChangePasswordRequest>,
) -> Result<Json<Session>> {
    validate::password(&req.new_password)?;
    let user = current(&ctx, &claims).await?;
    if !ctx
        .hasher
        .verify(req.current_password, Some(user.password_hash.clone()))
        .await?
    {
        return Err(Error::WrongPassword);
    }
    let now = now_unix();
    ctx.store
        .set_password_hash(&user.id, &ctx.hasher.hash(req.new_password).await?, now)
        .await?;
    ctx.store.revoke_all_for_user(&user.id, now).await?;
    Ok(Json(issue_session(&ctx, &user, None).await?))
}

/// Delete the account and every session of it.
#[utoipa::path(delete, path = "/api/users/me", tag = "users", security(("bearer" = [])),
    request_body = DeleteAccountRequest,
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "wrong_password", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn delete_me(
    State(ctx): State<Ctx>,
    AuthUser(claims): AuthUser,
    Json(req): Json<DeleteAccountRequest>,
) -> Result<StatusCode> {
    let user = current(&ctx, &claims).await?;
    if !ctx
        .hasher
        .verify(req.password, Some(user.password_hash.clone()))
        .await?
    {
        return Err(Error::WrongPassword);
    }
    ctx.store.delete_user(&user.id).await?;
    tracing::info!(user = %user.id, "account deleted");
    Ok(StatusCode::NO_CONTENT)
}
