//! Why a token was refused, with a stable code for the JSON error body.

/// A token could not be minted or was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    #[error("the token is not meant for this service (issuer or audience)")]
    WrongAudience,
    #[error("could not fetch verifying keys: {0}")]
    KeysUnavailable(String),
    #[error("key error: {0}")]
    Key(String),
}

pub type Result<T, E = AuthError> = std::result::Result<T, E>;

impl AuthError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Expired => "token_expired",
            AuthError::Malformed(_) | AuthError::BadSignature | AuthError::UnknownKey => {
                "invalid_token"
            }
            AuthError::WrongAudience => "invalid_token",
            AuthError::KeysUnavailable(_) => "keys_unavailable",
            AuthError::Key(_) => "internal",
        }
    }

    /// True when the fault is the token's (401), false when it is ours (5xx).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, AuthError::KeysUnavailable(_) | AuthError::Key(_))
    }
}

impl From<jsonwebtoken::errors::Error> for AuthError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::ExpiredSignature => AuthError::Expired,
            K::InvalidSignature => AuthError::BadSignature,
            K::InvalidAudience | K::InvalidIssuer | K::InvalidSubject => AuthError::WrongAudience,
            _ => AuthError::Malformed(e.to_string()),
        }
    }
}
