//! The caller of a request, from a users-service access token: one extractor for
//! every service that takes one.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rendezvous_api::AccessClaims;
use rendezvous_auth::{AuthError, Verifier};

use crate::error::{api_error_response, ApiError};

/// A service state that can verify access tokens.
pub trait HasVerifier {
    fn verifier(&self) -> &Verifier;
}

/// The caller, from a valid access token in `Authorization: Bearer`.
pub struct AuthUser(pub AccessClaims);

/// Why a request has no caller: no token (`unauthenticated`), or a token that does not
/// verify (its own code: `invalid_token`, `token_expired`, or 503 `keys_unavailable`).
#[derive(Debug, thiserror::Error)]
pub enum AuthRejection {
    #[error("authentication required")]
    Missing,
    #[error(transparent)]
    Token(#[from] AuthError),
}

impl ApiError for AuthRejection {
    fn status(&self) -> StatusCode {
        match self {
            Self::Missing => StatusCode::UNAUTHORIZED,
            Self::Token(e) if e.is_client_error() => StatusCode::UNAUTHORIZED,
            Self::Token(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Missing => "unauthenticated",
            Self::Token(e) => e.code(),
        }
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        api_error_response(&self)
    }
}

impl<S: HasVerifier + Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthRejection> {
        let token = crate::bearer_token(parts).ok_or(AuthRejection::Missing)?;
        Ok(AuthUser(
            state.verifier().verify::<AccessClaims>(token).await?,
        ))
    }
}
