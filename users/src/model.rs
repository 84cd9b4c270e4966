//! Request and response bodies of the users API (camelCase JSON).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::UserRow;

/// `POST /api/users`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    pub username: String,
    pub display_name: String,
    pub password: String,
}

/// `POST /api/sessions`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    /// Email or username.
    pub login: String,
    pub password: String,
}

/// `POST /api/sessions/refresh` and `DELETE /api/sessions`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// `PATCH /api/users/me`: fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateProfileRequest {
    pub email: Option<String>,
    pub username: Option<String>,
    pub display_name: Option<String>,
}

/// `PUT /api/users/me/password`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// `DELETE /api/users/me`: the password confirms the deletion.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteAccountRequest {
    pub password: String,
}

/// A user as the API shows it. The password hash never leaves the service.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub email: String,
    pub username: String,
    pub display_name: String,
    /// RFC 3339.
    pub created_at: String,
}

impl From<&UserRow> for User {
    fn from(u: &UserRow) -> Self {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u.created_at.max(0) as u64);
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            created_at: humantime::format_rfc3339_seconds(at).to_string(),
        }
    }
}

/// A log-in session: a short-lived access token and a rotating refresh token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// EdDSA JWT; send as `Authorization: Bearer ...`.
    pub access_token: String,
    /// Opaque; exchange at `POST /api/sessions/refresh`. Single use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub user: User,
}

/// A log-in session as a browser's script sees it: a `Session` without the refresh
/// token, which travels only in the HttpOnly `rdv_refresh` cookie.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrowserSession {
    /// EdDSA JWT; send as `Authorization: Bearer ...`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub user: User,
}

impl Session {
    /// Split into what the page's script may see and the refresh token (for the cookie).
    pub fn into_browser(self) -> (BrowserSession, String) {
        let browser = BrowserSession {
            access_token: self.access_token,
            token_type: self.token_type,
            expires_in: self.expires_in,
            user: self.user,
        };
        (browser, self.refresh_token)
    }
}
