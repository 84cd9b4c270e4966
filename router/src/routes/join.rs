//! `POST /api/join/{code}`: an invite link turned into a room token; and
//! `GET /api/join/{code}`: what the link leads to, for the page to show before anyone
//! logs in.
//!
//! A use of a limited invite is counted once per person: joining again (a
//! double-click, a reconnect with an expired room token) spends nothing. A
//! participant whose room token runs out asks `POST /api/rooms/{id}/token` instead.
//! The preview asks for no authentication, spends nothing and changes nothing; it
//! judges the link for nobody in particular, so a limited link that other people used
//! up is used up to it, even when the one asking is among them.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use rendezvous_api::{AccessClaims, Grants};
use rendezvous_auth::now_unix;
use rendezvous_service::{Json, Path};

use super::{room_view, ws_url, AuthUser, BaseUrl};
use crate::error::{ApiError as _, Error, Result};
use crate::model::*;
use crate::{room_status, Ctx};
use rendezvous_api::ErrorBody;

pub fn router() -> Router<Ctx> {
    Router::new().route("/api/join/{code}", get(preview).post(join))
}

/// What an invite link leads to, without authentication.
#[utoipa::path(get, path = "/api/join/{code}", tag = "join",
    params(("code" = String, Path, description = "The code at the end of an invite link")),
    responses(
        (status = 200, description = "The link would admit someone now: the room's title, kind and creator's name, nothing else. Spends no use.", body = PreviewResponse),
        (status = 404, description = "invite_not_found", body = ErrorBody),
        (status = 409, description = "room_not_ready", body = ErrorBody),
        (status = 410, description = "room_closed, invite_revoked, invite_expired, invite_used_up (a limited link whose uses others spent: the preview cannot know whether the asker is one of them; POST tells)", body = ErrorBody),
    ))]
pub(super) async fn preview(
    State(ctx): State<Ctx>,
    Path(code): Path<String>,
) -> Result<Json<PreviewResponse>> {
    let reg = ctx.reg();
    let room = reg.preview(&code, now_unix())?;
    Ok(Json(PreviewResponse {
        title: room.title.clone(),
        kind: room.kind,
        creator_name: room.creator_name.clone(),
        state: room.state,
    }))
}

/// Trade an invite link's code for a room token.
#[utoipa::path(post, path = "/api/join/{code}", tag = "join", security(("bearer" = [])),
    params(("code" = String, Path, description = "The code at the end of an invite link")),
    responses(
        (status = 200, description = "A room token and the WebSocket URL; the room as a joiner sees it (no links)", body = JoinResponse),
        (status = 404, description = "invite_not_found", body = ErrorBody),
        (status = 409, description = "room_full, room_not_ready", body = ErrorBody),
        (status = 410, description = "room_closed, invite_revoked, invite_expired, invite_used_up", body = ErrorBody),
        (status = 423, description = "room_locked", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(user = %claims.sub))]
pub(super) async fn join(
    State(ctx): State<Ctx>,
    AuthUser(claims): AuthUser,
    BaseUrl(base): BaseUrl,
    Path(code): Path<String>,
) -> Result<Json<JoinResponse>> {
    let res = join_inner(&ctx, &claims, &base, &code).await;
    let result = match &res {
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    ctx.metrics.joins.with_label_values(&[result]).inc();
    res.map(Json)
}

async fn join_inner(
    ctx: &Ctx,
    claims: &AccessClaims,
    base: &str,
    code: &str,
) -> Result<JoinResponse> {
    let (id, endpoint) = {
        let reg = ctx.reg();
        let room = reg.check_invite(code, &claims.sub, now_unix())?;
        let endpoint = room.endpoint.clone().ok_or(Error::RoomNotReady)?;
        (room.id.clone(), endpoint)
    };
    check_room_admits(ctx, &endpoint).await?;
    let room = ctx
        .update_invites(&id, |room| {
            let spent = room.redeem(code, &claims.sub, now_unix())?;
            Ok((room.clone(), spent))
        })
        .await
        .map_err(|e| match e {
            // The room went away between the check and the count.
            Error::RoomEnded | Error::RoomNotFound => Error::InviteRoomClosed,
            e => e,
        })?;
    let creator = room.creator == claims.sub;
    let mut grants = if creator {
        Grants::creator()
    } else {
        Grants::participant()
    };
    if room.kind == RoomKind::Chat {
        grants.publish = false;
        grants.subscribe = false;
    }
    let token = ctx
        .tokens
        .mint(&room.id, &claims.sub, &claims.name, grants)?;
    Ok(JoinResponse {
        ws_url: ws_url(base, &room.id),
        expires_in: ctx.tokens.ttl().as_secs(),
        token,
        room: room_view(base, &room, creator),
    })
}

/// Ask the room whether it takes one more participant, so that a locked or full room
/// is a clear error here rather than a refused WebSocket later. A room that does not
/// answer is not refused here: the room server enforces its own limits at admission.
async fn check_room_admits(ctx: &Ctx, endpoint: &str) -> Result<()> {
    let Some(s) = room_status::fetch(&ctx.http, endpoint, room_status::ADMIT_TIMEOUT).await else {
        return Ok(());
    };
    if s.locked {
        return Err(Error::RoomLocked);
    }
    if s.participants >= s.max_participants {
        return Err(Error::RoomFull);
    }
    Ok(())
}
