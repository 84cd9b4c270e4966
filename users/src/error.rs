//! The users service's error type and its JSON rendering.
//!
//! Every failure becomes `{ "error": { "code", "message" } }` with the right status.
//! Internal causes are logged, never sent: clients see `internal` and nothing more.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rendezvous_auth::AuthError;
use rendezvous_service::{api_error_response, ApiError};

/// Everything a users-service request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Validation(String),
    #[error("authentication required")]
    Unauthenticated,
    /// A browser-session call without the refresh cookie (code `unauthenticated`).
    #[error("no browser session: the rdv_refresh cookie is missing; log in first")]
    NoBrowserSession,
    /// A browser-session call that may be a cross-site request forgery.
    #[error("cross-site request refused: browser-session calls need the header `X-Rendezvous-CSRF: 1` and must come from this origin (Sec-Fetch-Site same-origin)")]
    CsrfFailed,
    #[error(transparent)]
    Token(#[from] AuthError),
    #[error("wrong login or password")]
    InvalidCredentials,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("the refresh token is invalid or expired")]
    InvalidRefreshToken,
    #[error("the refresh token was already used; every session of this login has been revoked")]
    RefreshTokenReused,
    #[error("{0} is already taken")]
    Conflict(&'static str),
    #[error("not found")]
    NotFound,
    #[error("too many attempts; retry in {} s", .0.as_secs().max(1))]
    RateLimited(Duration),
    /// Every password-hashing slot stayed taken for the whole wait.
    #[error("the service is busy; retry in {} s", .0.as_secs().max(1))]
    Busy(Duration),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl ApiError for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Unauthenticated
            | Error::NoBrowserSession
            | Error::InvalidCredentials
            | Error::InvalidRefreshToken
            | Error::RefreshTokenReused => StatusCode::UNAUTHORIZED,
            Error::Token(e) if e.is_client_error() => StatusCode::UNAUTHORIZED,
            Error::Token(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::WrongPassword | Error::CsrfFailed => StatusCode::FORBIDDEN,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Error::Validation(_) => "validation_failed",
            Error::Unauthenticated | Error::NoBrowserSession => "unauthenticated",
            Error::CsrfFailed => "csrf_failed",
            Error::Token(e) => e.code(),
            Error::InvalidCredentials => "invalid_credentials",
            Error::WrongPassword => "wrong_password",
            Error::InvalidRefreshToken => "invalid_refresh_token",
            Error::RefreshTokenReused => "refresh_token_reused",
            Error::Conflict("email") => "email_taken",
            Error::Conflict(_) => "username_taken",
            Error::NotFound => "not_found",
            Error::RateLimited(_) => "rate_limited",
            Error::Busy(_) => "busy",
            Error::Database(_) | Error::Internal(_) => "internal",
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited(wait) | Error::Busy(wait) => Some(*wait),
            _ => None,
        }
    }

    /// Busy is load shedding, not a fault: counted in metrics, not logged per request.
    fn is_fault(&self) -> bool {
        self.status().is_server_error() && !matches!(self, Error::Busy(_))
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        api_error_response(&self)
    }
}

/// Map a unique-constraint violation on `users` to 409 naming the field.
pub(crate) fn on_unique_violation(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            let msg = db.message().to_ascii_lowercase();
            let field = if msg.contains("email") {
                "email"
            } else {
                "username"
            };
            return Error::Conflict(field);
        }
    }
    Error::Database(e)
}
