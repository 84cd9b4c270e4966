//! Invite links: create and revoke (creator only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::Router;
use rendezvous_auth::now_unix;
use rendezvous_service::{Json, Path};

use super::{invite_view, AuthUser, BaseUrl};
use crate::error::{Error, Result};
use crate::model::*;
use crate::Ctx;
use rendezvous_api::ErrorBody;

/// Most people one limited invite admits. Each is remembered on the room (so a
/// person joining again spends no use), and a Room object's annotations are bounded.
pub const MAX_USES: u32 = 100;
/// Longest life of an invite link.
pub const EXPIRES_IN_MAX: u64 = 30 * 24 * 3600;

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/rooms/{id}/invites", post(create_invite))
        .route("/api/rooms/{id}/invites/{invite}", delete(revoke_invite))
}

pub(super) fn new_invite(
    ctx: &Ctx,
    room_id: &str,
    now: i64,
    req: &CreateInviteRequest,
) -> Result<Invite> {
    if req.max_uses.is_some_and(|m| !(1..=MAX_USES).contains(&m)) {
        return Err(Error::Validation(format!("maxUses: 1 to {MAX_USES}")));
    }
    if req.expires_in.is_some_and(|s| s == 0 || s > EXPIRES_IN_MAX) {
        return Err(Error::Validation("expiresIn: 1 second to 30 days".into()));
    }
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    Ok(Invite {
        code: ctx.tokens.invite_code(room_id, &id),
        id,
        created_at: now,
        expires_at: req.expires_in.map(|s| now + s as i64),
        max_uses: req.max_uses,
        uses: 0,
        users: Vec::new(),
        revoked: false,
    })
}

#[utoipa::path(post, path = "/api/rooms/{id}/invites", tag = "invites", security(("bearer" = [])),
    params(("id" = String, Path, description = "Room id")),
    request_body(content = CreateInviteRequest, description = "Optional: no body is an unlimited link"),
    responses(
        (status = 201, description = "The new link", body = InviteView),
        (status = 403, description = "not_creator", body = ErrorBody),
        (status = 409, description = "invite_limit_reached", body = ErrorBody),
        (status = 422, description = "validation_failed", body = ErrorBody),
    ))]
/// `POST /api/rooms/{id}/invites`: another invite link (creator only).
pub(super) async fn create_invite(
    State(ctx): State<Ctx>,
    AuthUser(claims): AuthUser,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<InviteView>)> {
    // Too large (or unreadable) is a JSON error like any other, not axum's plain text.
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge,
        _ => Error::BadRequest {
            code: "invalid_body",
            message: e.body_text(),
        },
    })?;
    // The body is optional: no body means an unlimited invite.
    let req: CreateInviteRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CreateInviteRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => Error::Validation(e.to_string()),
            _ => Error::BadRequest {
                code: "invalid_json",
                message: e.to_string(),
            },
        })?
    };
    // Only the creator; `creator` never changes, so one check before the update holds.
    ctx.reg().owned(&id, &claims.sub)?;
    let invite = new_invite(&ctx, &id, now_unix(), &req)?;
    let max = ctx.cfg.invites_per_room;
    let invite = ctx
        .update_invites(&id, |room| {
            Ok((room.add_invite(invite.clone(), max)?, true))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(invite_view(&base, &invite))))
}

#[utoipa::path(delete, path = "/api/rooms/{id}/invites/{invite}", tag = "invites", security(("bearer" = [])),
    params(("id" = String, Path, description = "Room id"), ("invite" = String, Path, description = "Invite id")),
    responses(
        (status = 204, description = "Revoked: the link answers 410 invite_revoked from now on"),
        (status = 403, description = "not_creator", body = ErrorBody),
        (status = 404, description = "room_not_found, invite_not_found", body = ErrorBody),
    ))]
/// `DELETE /api/rooms/{id}/invites/{invite}`: revoke an invite (creator only).
pub(super) async fn revoke_invite(
    State(ctx): State<Ctx>,
    AuthUser(claims): AuthUser,
    Path((id, invite)): Path<(String, String)>,
) -> Result<StatusCode> {
    ctx.reg().owned(&id, &claims.sub)?;
    ctx.update_invites(&id, |room| Ok(((), room.revoke_invite(&invite)?)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
