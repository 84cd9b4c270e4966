//! Rooms: create, list, get, close, and a fresh room token for a participant.
//!
//! Start and stop run in tasks the room owns, not in the request: a client that
//! goes away mid-request cancels neither, a close during a start is carried out when
//! the start returns, and a second close of a closing room is a no-op (204).

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use rendezvous_auth::now_unix;
use rendezvous_service::{Json, Path};

use super::{room_view, ws_url, AuthUser, BaseUrl};
use crate::error::{Error, Result};
use crate::model::*;
use crate::registry::Room;
use crate::runtime::RoomSpec;
use crate::{room_status, Ctx};
use rendezvous_api::{AccessClaims, ErrorBody};

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/rooms", post(create_room).get(list_rooms))
        .route("/api/rooms/{id}", get(get_room).delete(close_room))
        .route("/api/rooms/{id}/token", post(refresh_token))
}

/// Whether `v` lies in `range` (the CRD's bounds are `u32`; requests are `u64`).
fn within(v: u64, range: &std::ops::RangeInclusive<u32>) -> bool {
    u32::try_from(v).is_ok_and(|v| range.contains(&v))
}

/// The request checked against the Room's limits (`rendezvous_crds::limits`: the same
/// numbers the CRD schema carries), with this router's defaults filled in. Out of
/// range is a 422 naming the field, never a silent clamp.
fn validated_spec(
    ctx: &Ctx,
    id: String,
    creator: &AccessClaims,
    req: &CreateRoomRequest,
) -> Result<RoomSpec> {
    use rendezvous_crds::limits;
    let title = req.title.trim();
    let max_chars = limits::TITLE_MAX_CHARS as usize;
    if title.is_empty() || title.chars().count() > max_chars || title.chars().any(char::is_control)
    {
        return Err(Error::Validation(format!(
            "title: 1 to {max_chars} characters, no control characters"
        )));
    }
    let participants = req
        .max_participants
        .unwrap_or(ctx.cfg.default_max_participants);
    if !limits::MAX_PARTICIPANTS.contains(&participants) {
        let r = &limits::MAX_PARTICIPANTS;
        return Err(Error::Validation(format!(
            "maxParticipants: {} to {}",
            r.start(),
            r.end()
        )));
    }
    let idle = req
        .idle_timeout
        .unwrap_or(ctx.cfg.default_idle_timeout.as_secs());
    if !within(idle, &limits::IDLE_TIMEOUT_SECS) {
        let r = &limits::IDLE_TIMEOUT_SECS;
        return Err(Error::Validation(format!(
            "idleTimeout: {} to {} seconds",
            r.start(),
            r.end()
        )));
    }
    let max = req
        .max_duration
        .unwrap_or(ctx.cfg.default_max_duration.as_secs());
    if !within(max, &limits::MAX_DURATION_SECS) {
        let r = &limits::MAX_DURATION_SECS;
        return Err(Error::Validation(format!(
            "maxDuration: {} to {} seconds",
            r.start(),
            r.end()
        )));
    }
    Ok(RoomSpec {
        id,
        kind: req.kind,
        title: title.to_owned(),
        creator: creator.sub.clone(),
        creator_name: creator_name(&creator.name),
        max_participants: participants,
        idle_timeout: Duration::from_secs(idle),
        max_duration: Duration::from_secs(max),
        invites: Vec::new(),
    })
}

/// The creator's name as a room keeps it: the access token's `name`, which the users
/// service bounds already (`DISPLAY_NAME_MAX_CHARS`, no control characters). A token
/// from elsewhere with a longer or odder name gets it shortened and cleaned for display
/// rather than a room that fails to start (the `Room` schema refuses such a name).
fn creator_name(name: &str) -> String {
    let max = rendezvous_crds::limits::CREATOR_NAME_MAX_CHARS as usize;
    name.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

#[utoipa::path(post, path = "/api/rooms", tag = "rooms", security(("bearer" = [])),
    request_body = CreateRoomRequest,
    responses(
        (status = 201, description = "Started; the creator's view, with the first invite link", body = RoomView),
        (status = 401, description = "unauthenticated, invalid_token, token_expired", body = ErrorBody),
        (status = 409, description = "room_limit_reached", body = ErrorBody),
        (status = 410, description = "room_ended: closed while it started", body = ErrorBody),
        (status = 422, description = "validation_failed", body = ErrorBody),
        (status = 503, description = "room_start_failed, at_capacity", body = ErrorBody),
    ))]
/// `POST /api/rooms`: start a room; the response holds its first invite link.
#[tracing::instrument(skip_all, fields(user = %claims.sub))]
pub(super) async fn create_room(
    State(ctx): State<Ctx>,
    AuthUser(claims): AuthUser,
    BaseUrl(base): BaseUrl,
    Json(req): Json<CreateRoomRequest>,
) -> Result<(StatusCode, Json<RoomView>)> {
    let now = now_unix();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut spec = validated_spec(&ctx, id.clone(), &claims, &req)?;
    let first = super::invites::new_invite(&ctx, &id, now, &CreateInviteRequest::default())?;
    spec.invites = vec![first.record()];
    let room = Room {
        id: id.clone(),
        kind: spec.kind,
        title: spec.title.clone(),
        creator: claims.sub.clone(),
        creator_name: spec.creator_name.clone(),
        created_at: now,
        state: RoomState::Starting,
        endpoint: None,
        max_participants: spec.max_participants,
        idle_timeout_secs: spec.idle_timeout.as_secs(),
        max_duration_secs: spec.max_duration.as_secs(),
        invites: vec![first],
        revision: None,
        launching: true,
    };
    ctx.reg()
        .insert(room, ctx.cfg.rooms_per_user, ctx.cfg.max_rooms)?;
    ctx.metrics.rooms_created.inc();
    ctx.sync_live_gauge();
    // The start belongs to the room, not to this request: if the client goes away,
    // the task still finishes (ready, or cleaned up).
    let task = ctx.tasks.spawn(launch(ctx.clone(), spec));
    task.await
        .map_err(|e| Error::Internal(anyhow::anyhow!("room start task: {e}")))??;
    tracing::info!(room = %id, "room created");
    let reg = ctx.reg();
    Ok((
        StatusCode::CREATED,
        Json(room_view(&base, reg.get(&id)?, true)),
    ))
}

/// Start a room server for `spec` and settle the registry with the outcome.
async fn launch(ctx: Ctx, spec: RoomSpec) -> Result<()> {
    let started = Instant::now();
    let id = spec.id.clone();
    let outcome = ctx.runtime.start(spec).await;
    let closed_meanwhile = {
        let mut reg = ctx.reg();
        if let Ok(Some(endpoint)) = &outcome {
            reg.set_ready(&id, endpoint.clone());
        }
        reg.launched(&id).unwrap_or(true)
    };
    match outcome {
        Err(e) => {
            ctx.reg().remove(&id);
            ctx.metrics
                .rooms_closed
                .with_label_values(&["start_failed"])
                .inc();
            ctx.sync_live_gauge();
            Err(Error::RoomStartFailed(e))
        }
        Ok(_) if closed_meanwhile => {
            tracing::info!(room = %id, "room closed while it started");
            finish_close(&ctx, &id).await?;
            Err(Error::RoomEnded)
        }
        Ok(endpoint) => {
            if endpoint.is_some() {
                ctx.metrics
                    .room_start
                    .observe(started.elapsed().as_secs_f64());
            }
            Ok(())
        }
    }
}

/// Stop room `id`'s server and forget the room.
async fn finish_close(ctx: &Ctx, id: &str) -> Result<()> {
    ctx.runtime.stop(id).await.map_err(Error::Internal)?;
    if ctx.reg().remove(id).is_some() {
        ctx.metrics
            .rooms_closed
            .with_label_values(&["closed"])
            .inc();
    }
    ctx.sync_live_gauge();
    Ok(())
}

/// The creator's views of `rooms`, each with the participant count its room server
/// gives within [`room_status::LIST_TIMEOUT`] (all asked at once; `None` when a room
/// is not ready or does not answer).
async fn with_participants(ctx: &Ctx, base: &str, rooms: &[Room]) -> Vec<RoomView> {
    let endpoints: Vec<Option<String>> = rooms
        .iter()
        .map(|r| match r.state {
            RoomState::Ready => r.endpoint.clone(),
            _ => None,
        })
        .collect();
    let mut views: Vec<RoomView> = rooms.iter().map(|r| room_view(base, r, true)).collect();
    let statuses = room_status::fetch_all(&ctx.http, &endpoints, room_status::LIST_TIMEOUT).await;
    for (view, status) in views.iter_mut().zip(statuses) {
        view.participants = status.map(|s| s.participants);
    }
    views
}

#[utoipa::path(get, path = "/api/rooms", tag = "rooms", security(("bearer" = [])),
    responses((status = 200, description = "The caller's live rooms, oldest first, each with `participants` (null when the room did not answer within a second)", body = [RoomView])))]
/// `GET /api/rooms`: the caller's live rooms.
pub(super) async fn list_rooms(
    State(ctx): State<Ctx>,
    AuthUser(claims): AuthUser,
    BaseUrl(base): BaseUrl,
) -> Json<Vec<RoomView>> {
    // A copy: the registry is not held while the rooms are asked.
    let rooms: Vec<Room> = ctx
        .reg()
        .rooms_of(&claims.sub)
        .into_iter()
        .cloned()
        .collect();
    Json(with_participants(&ctx, &base, &rooms).await)
}

#[utoipa::path(get, path = "/api/rooms/{id}", tag = "rooms", security(("bearer" = [])),
    params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 200, description = "The room with its invites and `participants` (null when the room did not answer within a second)", body = RoomView),
        (status = 403, description = "not_creator", body = ErrorBody),
        (status = 404, description = "room_not_found", body = ErrorBody),
        (status = 410, description = "room_ended", body = ErrorBody),
    ))]
/// `GET /api/rooms/{id}`: one of the caller's rooms.
pub(super) async fn get_room(
    State(ctx): State<Ctx>,
    AuthUser(claims): AuthUser,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<RoomView>> {
    // A copy: the registry is not held while the room is asked.
    let room = ctx.reg().owned(&id, &claims.sub)?.clone();
    let mut views = with_participants(&ctx, &base, std::slice::from_ref(&room)).await;
    // One room in, one view out.
    Ok(Json(views.remove(0)))
}

#[utoipa::path(delete, path = "/api/rooms/{id}", tag = "rooms", security(("bearer" = [])),
    params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 204, description = "Closed (or closing already): everyone got room_closed"),
        (status = 403, description = "not_creator", body = ErrorBody),
        (status = 404, description = "room_not_found", body = ErrorBody),
        (status = 410, description = "room_ended", body = ErrorBody),
    ))]
/// `DELETE /api/rooms/{id}`: close the room for everyone (creator only).
#[tracing::instrument(skip_all, fields(user = %claims.sub, room = %id))]
pub(super) async fn close_room(
    State(ctx): State<Ctx>,
    AuthUser(claims): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let (before, launching) = {
        let mut reg = ctx.reg();
        let room = reg.owned(&id, &claims.sub)?;
        let launching = room.launching;
        // From here on the invites admit nobody, even while the room says goodbye.
        (reg.set_closing(&id), launching)
    };
    match before {
        // Closing already, or gone meanwhile: the first close finishes the job.
        Some(RoomState::Closing) | Some(RoomState::Ended) | None => {
            return Ok(StatusCode::NO_CONTENT)
        }
        // The start task sees the close when the start returns and carries it out.
        Some(_) if launching => return Ok(StatusCode::NO_CONTENT),
        Some(_) => {}
    }
    let task = ctx.tasks.spawn({
        let (ctx, id) = (ctx.clone(), id.clone());
        async move { finish_close(&ctx, &id).await }
    });
    let res = task
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("room stop task: {e}")))?;
    if let Err(e) = res {
        // Let a later close try again.
        if let Some(state) = before {
            ctx.reg().reopen(&id, state);
        }
        return Err(e);
    }
    tracing::info!("room closed by its creator");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/rooms/{id}/token", tag = "rooms", security(("bearer" = [])),
    params(("id" = String, Path, description = "Room id")),
    request_body = RoomTokenRequest,
    responses(
        (status = 200, description = "A fresh room token; no invite use spent", body = RoomTokenResponse),
        (status = 401, description = "invalid_room_token: not this room's, or not this user's", body = ErrorBody),
        (status = 409, description = "room_not_ready", body = ErrorBody),
        (status = 410, description = "room_ended", body = ErrorBody),
    ))]
/// `POST /api/rooms/{id}/token`: a fresh room token for someone already admitted,
/// who shows a room token of this room (expired or not) and the same user's access
/// token. Spends no invite use.
pub(super) async fn refresh_token(
    State(ctx): State<Ctx>,
    AuthUser(claims): AuthUser,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    Json(req): Json<RoomTokenRequest>,
) -> Result<Json<RoomTokenResponse>> {
    let old = ctx
        .tokens
        .verify_for_refresh(&req.room_token)
        .map_err(|_| Error::InvalidRoomToken)?;
    if old.room != id || old.sub != claims.sub {
        return Err(Error::InvalidRoomToken);
    }
    {
        let reg = ctx.reg();
        let room = reg.get(&id)?;
        if room.state != RoomState::Ready {
            return Err(match room.state {
                RoomState::Starting => Error::RoomNotReady,
                _ => Error::RoomEnded,
            });
        }
    }
    let token = ctx
        .tokens
        .mint(&id, &claims.sub, &claims.name, old.grants)?;
    Ok(Json(RoomTokenResponse {
        token,
        expires_in: ctx.tokens.ttl().as_secs(),
        ws_url: ws_url(&base, &id),
    }))
}

#[cfg(test)]
mod tests {
    use super::creator_name;

    #[test]
    fn a_creator_name_is_kept_as_the_token_says_within_the_rooms_bounds() {
        assert_eq!(creator_name("Ada Lovelace"), "Ada Lovelace");
        assert_eq!(creator_name("  Ada\u{7} "), "Ada");
        assert_eq!(creator_name(&"é".repeat(70)).chars().count(), 64);
        assert_eq!(creator_name(""), "");
    }
}
