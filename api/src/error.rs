//! The JSON error body: `{ "error": { "code": "...", "message": "..." } }`.
//!
//! `code` is stable and machine-readable (snake_case); `message` is for people and
//! may change. Clients branch on `code`, never on `message`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every non-2xx response of a Rendezvous HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_credentials`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}
