//! The router's error type and its JSON rendering.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rendezvous_auth::AuthError;
use rendezvous_service::api_error_response;
pub use rendezvous_service::ApiError;

/// Everything a router request can fail with. Each variant has one stable code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Validation(String),
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("authentication required")]
    Unauthenticated,
    #[error(transparent)]
    Token(#[from] AuthError),
    #[error("that room token was not issued for this room and this user")]
    InvalidRoomToken,
    #[error("only the room's creator may do that")]
    NotCreator,
    #[error("no such room")]
    RoomNotFound,
    #[error("the room has ended")]
    RoomEnded,
    #[error("no such invite")]
    InviteNotFound,
    #[error("the room of this invite has been closed")]
    InviteRoomClosed,
    #[error("this invite has been revoked")]
    InviteRevoked,
    #[error("this invite has expired")]
    InviteExpired,
    #[error("this invite has been used up")]
    InviteUsedUp,
    #[error("the room is locked: no new participants")]
    RoomLocked,
    #[error("the room is full")]
    RoomFull,
    #[error("you have {0} live rooms, the most allowed; close one first")]
    RoomLimit(usize),
    #[error("this router is at its room capacity; try again later")]
    AtCapacity,
    #[error("this router is shutting down; connect again to reach another")]
    ShuttingDown,
    #[error("the room has {0} invites, the most allowed")]
    InviteLimit(usize),
    #[error("the room is not ready yet")]
    RoomNotReady,
    #[error("the room could not be started")]
    RoomStartFailed(#[source] anyhow::Error),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("expected a JSON body with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl ApiError for Error {
    fn status(&self) -> StatusCode {
        use Error::*;
        match self {
            Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            BadRequest { .. } => StatusCode::BAD_REQUEST,
            Unauthenticated | InvalidRoomToken => StatusCode::UNAUTHORIZED,
            Token(e) if e.is_client_error() => StatusCode::UNAUTHORIZED,
            Token(_) => StatusCode::SERVICE_UNAVAILABLE,
            NotCreator => StatusCode::FORBIDDEN,
            RoomNotFound | InviteNotFound => StatusCode::NOT_FOUND,
            RoomEnded | InviteRoomClosed | InviteRevoked | InviteExpired | InviteUsedUp => {
                StatusCode::GONE
            }
            RoomLocked => StatusCode::LOCKED,
            RoomFull | RoomLimit(_) | InviteLimit(_) | RoomNotReady => StatusCode::CONFLICT,
            AtCapacity | ShuttingDown | RoomStartFailed(_) => StatusCode::SERVICE_UNAVAILABLE,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        use Error::*;
        match self {
            Validation(_) => "validation_failed",
            BadRequest { code, .. } => code,
            Unauthenticated => "unauthenticated",
            Token(e) => e.code(),
            InvalidRoomToken => "invalid_room_token",
            NotCreator => "not_creator",
            RoomNotFound => "room_not_found",
            RoomEnded => "room_ended",
            InviteNotFound => "invite_not_found",
            InviteRoomClosed => "room_closed",
            InviteRevoked => "invite_revoked",
            InviteExpired => "invite_expired",
            InviteUsedUp => "invite_used_up",
            RoomLocked => "room_locked",
            RoomFull => "room_full",
            RoomLimit(_) => "room_limit_reached",
            AtCapacity => "at_capacity",
            ShuttingDown => "shutting_down",
            InviteLimit(_) => "invite_limit_reached",
            RoomNotReady => "room_not_ready",
            RoomStartFailed(_) => "room_start_failed",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            Internal(_) => "internal",
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        api_error_response(&self)
    }
}
