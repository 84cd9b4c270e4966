//! Request and response bodies of the room API (camelCase JSON).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a room carries: one definition, the `Room` resource's.
pub use rendezvous_crds::RoomKind;

/// Where a room is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoomState {
    Starting,
    Ready,
    Closing,
    Ended,
}

/// An invite link of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub id: String,
    /// The secret in the link: 128 random bits.
    pub code: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub max_uses: Option<u32>,
    /// People admitted (for an invite without a limit: joins).
    pub uses: u32,
    /// Who spent a use of a limited invite: a person joining again spends none.
    /// Bounded by `max_uses`.
    pub users: Vec<String>,
    pub revoked: bool,
}

impl Invite {
    /// What survives a router restart: everything but the code, which is derived
    /// from the router's secret (see [`crate::secret`]).
    pub fn record(&self) -> InviteRecord {
        InviteRecord {
            id: self.id.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            max_uses: self.max_uses,
            uses: self.uses,
            users: self.users.clone(),
            revoked: self.revoked,
        }
    }

    pub fn from_record(r: InviteRecord, code: String) -> Self {
        Self {
            id: r.id,
            code,
            created_at: r.created_at,
            expires_at: r.expires_at,
            max_uses: r.max_uses,
            uses: r.uses,
            users: r.users,
            revoked: r.revoked,
        }
    }
}

/// An invite as kept on the `Room` object (annotation `rendezvous.dev/invites`), so
/// every router replica, and a restarted router, can recompute its link and count
/// its uses. Revoked invites are kept too (bounded), so their links say 410 everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteRecord {
    pub id: String,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
    #[serde(default)]
    pub uses: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revoked: bool,
}

/// The records of a room's invites, as a runtime keeps them.
pub fn records(invites: &[Invite]) -> Vec<InviteRecord> {
    invites.iter().map(Invite::record).collect()
}

/// `POST /api/rooms`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRoomRequest {
    #[schema(schema_with = room_kind_schema)]
    pub kind: RoomKind,
    pub title: String,
    pub max_participants: Option<u32>,
    /// Seconds with nobody inside before the room ends.
    pub idle_timeout: Option<u64>,
    /// Seconds the room may live at most.
    pub max_duration: Option<u64>,
}

/// `POST /api/rooms/{id}/invites`
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInviteRequest {
    /// Seconds until the link stops working (default: never, within the room's life).
    pub expires_in: Option<u64>,
    /// How many people may join with it (default: unlimited).
    pub max_uses: Option<u32>,
}

/// A room as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomView {
    pub id: String,
    #[schema(schema_with = room_kind_schema)]
    pub kind: RoomKind,
    pub title: String,
    /// The creator's user id.
    pub creator: String,
    /// The creator's display name when the room was opened. Empty only for a `Room`
    /// object written without one (by hand, or before rooms kept it).
    pub creator_name: String,
    pub state: RoomState,
    /// RFC 3339.
    pub created_at: String,
    pub max_participants: u32,
    pub idle_timeout: u64,
    pub max_duration: u64,
    /// People in the room now, as its room server counts them (seated, including
    /// anyone inside a reconnect grace period), in `GET /api/rooms` and
    /// `GET /api/rooms/{id}`. `null` when unknown: the room is not ready, did not
    /// answer within a second, or the response is another one (create, join).
    #[schema(required = true)]
    pub participants: Option<u32>,
    /// The room's first live invite link (shown to the creator only; absent when
    /// every link has been revoked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_url: Option<String>,
    /// Every invite (shown to the creator only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invites: Option<Vec<InviteView>>,
}

/// An invite as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteView {
    pub id: String,
    pub url: String,
    pub expires_at: Option<String>,
    pub max_uses: Option<u32>,
    pub uses: u32,
    pub revoked: bool,
}

/// `POST /api/rooms/{id}/token`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoomTokenRequest {
    /// A room token this router issued for the same room and the same user; it may
    /// have expired.
    pub room_token: String,
}

/// `POST /api/rooms/{id}/token`: a fresh room token, without spending an invite use.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomTokenResponse {
    pub token: String,
    pub expires_in: u64,
    pub ws_url: String,
}

/// `POST /api/join/{code}`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinResponse {
    pub room: RoomView,
    /// Room token: a short-lived JWT the room server admits.
    pub token: String,
    /// Seconds until the room token expires.
    pub expires_in: u64,
    /// Where to open the room's WebSocket (through this router).
    pub ws_url: String,
}

/// `GET /api/join/{code}`: what an invite link leads to, for anyone holding it (no
/// authentication). Nothing else: no room id, no invites, no counts, so the preview
/// gives a link holder no more than the page shows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewResponse {
    pub title: String,
    #[schema(schema_with = room_kind_schema)]
    pub kind: RoomKind,
    /// The creator's display name; empty for a room that keeps none.
    pub creator_name: String,
    /// `ready`: a link only previews while it would admit someone.
    pub state: RoomState,
}

/// The schema of [`RoomKind`] (defined by the `Room` resource, which knows no OpenAPI
/// crate): one of `chat`, `video`, `both`.
fn room_kind_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["chat", "video", "both"]))
        .description(Some("What the room carries: chat, video, or both."))
        .build()
}

pub fn rfc3339(unix: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}
