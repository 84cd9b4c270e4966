//! The room API: create, list, get and close rooms; invites; join.

use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use rendezvous_api::{AccessClaims, Grants};
use rendezvous_auth::now_unix;
use rendezvous_service::Json;

use crate::error::{Error, Result};
use crate::model::*;
use crate::registry::{Registry, Room};
use crate::runtime::RoomSpec;
use crate::Ctx;

pub const TITLE_MAX: usize = 100;
pub const PARTICIPANTS_MAX: u32 = 1000;
/// Bounds of creator-chosen durations, in seconds: long enough to join, short enough
/// that a forgotten room does not live for weeks.
pub const IDLE_TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 1..=24 * 3600;
pub const MAX_DURATION_RANGE: std::ops::RangeInclusive<u64> = 10..=7 * 24 * 3600;

/// The caller, from a valid users-service access token.
pub struct AuthUser(pub AccessClaims);

impl FromRequestParts<Ctx> for AuthUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self> {
        let token = rendezvous_service::bearer_token(parts).ok_or(Error::Unauthenticated)?;
        Ok(AuthUser(ctx.verifier.verify::<AccessClaims>(token).await?))
    }
}

/// Where people reach this service: the configured public URL, or `http://HOST`.
pub struct BaseUrl(pub String);

impl FromRequestParts<Ctx> for BaseUrl {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self> {
        if let Some(url) = &ctx.cfg.public_url {
            return Ok(BaseUrl(url.trim_end_matches('/').to_owned()));
        }
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
            })
            .unwrap_or("localhost");
        Ok(BaseUrl(format!("http://{host}")))
    }
}

fn invite_view(base: &str, i: &Invite) -> InviteView {
    InviteView {
        id: i.id.clone(),
        url: format!("{base}/join/{}", i.code),
        expires_at: i.expires_at.map(rfc3339),
        max_uses: i.max_uses,
        uses: i.uses,
        revoked: i.revoked,
    }
}

fn room_view(base: &str, r: &Room, for_creator: bool) -> RoomView {
    RoomView {
        id: r.id.clone(),
        kind: r.kind,
        title: r.title.clone(),
        creator: r.creator.clone(),
        state: r.state,
        created_at: rfc3339(r.created_at),
        max_participants: r.max_participants,
        idle_timeout: r.idle_timeout_secs,
        max_duration: r.max_duration_secs,
        invite_url: format!("{base}/join/{}", r.invites[0].code),
        invites: for_creator.then(|| r.invites.iter().map(|i| invite_view(base, i)).collect()),
    }
}

fn new_invite(ctx: &Ctx, room_id: &str, now: i64, req: &CreateInviteRequest) -> Result<Invite> {
    if req.max_uses == Some(0) {
        return Err(Error::Validation("maxUses: at least 1".into()));
    }
    if req.expires_in.is_some_and(|s| s == 0 || s > 30 * 24 * 3600) {
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
        revoked: false,
    })
}

fn validated_spec(
    ctx: &Ctx,
    id: String,
    creator: String,
    req: &CreateRoomRequest,
) -> Result<RoomSpec> {
    let title = req.title.trim();
    if title.is_empty() || title.chars().count() > TITLE_MAX || title.chars().any(char::is_control)
    {
        return Err(Error::Validation(format!(
            "title: 1 to {TITLE_MAX} characters, no control characters"
        )));
    }
    let max_participants = req
        .max_participants
        .unwrap_or(ctx.cfg.default_max_participants);
    if !(2..=PARTICIPANTS_MAX).contains(&max_participants) {
        return Err(Error::Validation(format!(
            "maxParticipants: 2 to {PARTICIPANTS_MAX}"
        )));
    }
    let idle = req
        .idle_timeout
        .unwrap_or(ctx.cfg.default_idle_timeout.as_secs());
    if !IDLE_TIMEOUT_RANGE.contains(&idle) {
        return Err(Error::Validation("idleTimeout: 1 to 86400 seconds".into()));
    }
    let max = req
        .max_duration
        .unwrap_or(ctx.cfg.default_max_duration.as_secs());
    if !MAX_DURATION_RANGE.contains(&max) {
        return Err(Error::Validation(
            "maxDuration: 10 seconds to 7 days".into(),
        ));
    }
    Ok(RoomSpec {
        id,
        kind: req.kind,
        title: title.to_owned(),
        creator,
        max_participants,
        idle_timeout: Duration::from_secs(idle),
        max_duration: Duration::from_secs(max),
        invites: Vec::new(),
    })
}

/// Room `id`'s live invites and their order number, read under the registry lock
/// that guarded the change.
fn invites_snapshot(ctx: &Ctx, reg: &Registry, id: &str) -> Option<(u64, Vec<InviteRecord>)> {
    let room = reg.get(id).ok()?;
    Some((ctx.next_invites_rev(), live_records(&room.invites)))
}

/// Keep a room's invites where a restarted router finds them (Kubernetes runtime).
async fn save_invites(
    ctx: &Ctx,
    id: &str,
    snapshot: Option<(u64, Vec<InviteRecord>)>,
) -> Result<()> {
    let Some((rev, records)) = snapshot else {
        return Ok(());
    };
    ctx.runtime
        .save_invites(id, rev, records)
        .await
        .map_err(|e| {
            tracing::error!(room = %id, error = %e, "could not save the room's invites");
            Error::Internal(e)
        })
}

/// `POST /api/rooms`: start a room; the response holds its first invite link.
#[tracing::instrument(skip_all, fields(user = %claims.sub))]
pub async fn create_room(
    State(ctx): State<Ctx>,
    AuthUser(claims): AuthUser,
    BaseUrl(base): BaseUrl,
    Json(req): Json<CreateRoomRequest>,
) -> Result<(StatusCode, Json<RoomView>)> {
    let started = Instant::now();
    let now = now_unix();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut spec = validated_spec(&ctx, id.clone(), claims.sub.clone(), &req)?;
    let first = new_invite(&ctx, &id, now, &CreateInviteRequest::default())?;
    spec.invites = vec![first.record()];
    let room = Room {
        id: id.clone(),
        kind: spec.kind,
        title: spec.title.clone(),
        creator: claims.sub.clone(),
        created_at: now,
        state: RoomState::Starting,
        endpoint: None,
        max_participants: spec.max_participants,
        idle_timeout_secs: spec.idle_timeout.as_secs(),
        max_duration_secs: spec.max_duration.as_secs(),
        invites: vec![first],
    };
    ctx.registry.lock().expect("registry lock").insert(
        room,
        ctx.cfg.rooms_per_user,
        ctx.cfg.max_rooms,
    )?;
    ctx.metrics.rooms_created.inc();
    ctx.sync_live_gauge();
    match ctx.runtime.start(spec).await {
        Ok(endpoint) => {
            if let Some(endpoint) = endpoint {
                ctx.registry
                    .lock()
                    .expect("registry lock")
                    .set_ready(&id, endpoint);
                ctx.metrics
                    .room_start
                    .observe(started.elapsed().as_secs_f64());
            }
        }
        Err(e) => {
            ctx.registry.lock().expect("registry lock").remove(&id);
            ctx.metrics
                .rooms_closed
                .with_label_values(&["start_failed"])
                .inc();
            ctx.sync_live_gauge();
            return Err(Error::RoomStartFailed(e));
        }
    }
    tracing::info!(room = %id, "room created");
    let reg = ctx.registry.lock().expect("registry lock");
    let view = room_view(&base, reg.get(&id)?, true);
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /api/rooms`: the caller's live rooms.
pub async fn list_rooms(
    State(ctx): State<Ctx>,
    AuthUser(claims): AuthUser,
    BaseUrl(base): BaseUrl,
) -> Json<Vec<RoomView>> {
    let reg = ctx.registry.lock().expect("registry lock");
    Json(
        reg.rooms_of(&claims.sub)
            .into_iter()
            .map(|r| room_view(&base, r, true))
            .collect(),
    )
}

/// `GET /api/rooms/{id}`: one of the caller's rooms.
pub async fn get_room(
    State(ctx): State<Ctx>,
    AuthUser(claims): AuthUser,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<RoomView>> {
    let reg = ctx.registry.lock().expect("registry lock");
    Ok(Json(room_view(&base, reg.owned(&id, &claims.sub)?, true)))
}

/// `DELETE /api/rooms/{id}`: close the room for everyone (creator only).
#[tracing::instrument(skip_all, fields(user = %claims.sub, room = %id))]
pub async fn close_room(
    State(ctx): State<Ctx>,
    AuthUser(claims): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    {
        let mut reg = ctx.registry.lock().expect("registry lock");
        reg.owned(&id, &claims.sub)?;
        // From here on the invites admit nobody, even while the room says goodbye.
        reg.set_closing(&id);
    }
    ctx.runtime.stop(&id).await.map_err(Error::Internal)?;
    if ctx
        .registry
        .lock()
        .expect("registry lock")
        .remove(&id)
        .is_some()
    {
        ctx.metrics
            .rooms_closed
            .with_label_values(&["closed"])
            .inc();
    }
    ctx.sync_live_gauge();
    tracing::info!("room closed by its creator");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/rooms/{id}/invites`: another invite link (creator only).
pub async fn create_invite(
    State(ctx): State<Ctx>,
    AuthUser(claims): AuthUser,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<InviteView>)> {
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
    let invite = new_invite(&ctx, &id, now_unix(), &req)?;
    let (invite, snapshot) = {
        let mut reg = ctx.registry.lock().expect("registry lock");
        let invite = reg.add_invite(&id, &claims.sub, invite, ctx.cfg.invites_per_room)?;
        (invite, invites_snapshot(&ctx, &reg, &id))
    };
    save_invites(&ctx, &id, snapshot).await?;
    Ok((StatusCode::CREATED, Json(invite_view(&base, &invite))))
}

/// `DELETE /api/rooms/{id}/invites/{invite}`: revoke an invite (creator only).
pub async fn revoke_invite(
    State(ctx): State<Ctx>,
    AuthUser(claims): AuthUser,
    Path((id, invite)): Path<(String, String)>,
) -> Result<StatusCode> {
    let snapshot = {
        let mut reg = ctx.registry.lock().expect("registry lock");
        reg.revoke_invite(&id, &claims.sub, &invite)?;
        invites_snapshot(&ctx, &reg, &id)
    };
    save_invites(&ctx, &id, snapshot).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/join/{code}`: a room token and the WebSocket URL for the invite's room.
#[tracing::instrument(skip_all, fields(user = %claims.sub))]
pub async fn join(
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
    let endpoint = {
        let reg = ctx.registry.lock().expect("registry lock");
        let room = reg.check_invite(code, &claims.sub, now_unix())?;
        room.endpoint.clone().ok_or(Error::RoomNotReady)?
    };
    check_room_admits(ctx, &endpoint).await?;
    let (room, snapshot) = {
        let mut reg = ctx.registry.lock().expect("registry lock");
        let room = reg.redeem(code, &claims.sub, now_unix())?;
        // Uses only matter for invites with a limit; only those are worth a write.
        let limited = room
            .invites
            .iter()
            .any(|i| i.code == code && i.max_uses.is_some());
        let snapshot = limited
            .then(|| invites_snapshot(ctx, &reg, &room.id))
            .flatten();
        (room, snapshot)
    };
    // A join is not refused because the count could not be saved (it is logged).
    let _ = save_invites(ctx, &room.id, snapshot).await;
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
    let ws_base = base.replacen("http", "ws", 1);
    Ok(JoinResponse {
        ws_url: format!("{ws_base}/rooms/{}/ws", room.id),
        expires_in: ctx.tokens.ttl().as_secs(),
        token,
        room: room_view(base, &room, creator),
    })
}

/// Ask the room whether it takes one more participant, so that a locked or full room
/// is a clear error here rather than a refused WebSocket later. A room that does not
/// answer is not refused here: the room server enforces its own limits at admission.
async fn check_room_admits(ctx: &Ctx, endpoint: &str) -> Result<()> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Status {
        participants: u32,
        max_participants: u32,
        locked: bool,
    }
    let Ok(res) = ctx
        .http
        .get(format!("http://{endpoint}/status"))
        .send()
        .await
    else {
        return Ok(());
    };
    let Ok(s) = res.json::<Status>().await else {
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

/// `GET /.well-known/room-jwks.json`: the keys room servers verify room tokens with.
pub async fn room_jwks(State(ctx): State<Ctx>) -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        ctx.tokens.jwks_json().to_owned(),
    )
}
