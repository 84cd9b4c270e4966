//! Token claims: the one definition of what access tokens and room tokens carry.

use serde::{Deserialize, Serialize};

/// Longest display name, in characters (Unicode scalar values): what the users service
/// accepts, so the longest `name` an access token carries. The `Room` resource bounds
/// the creator's name it keeps (`creatorName`) by the same number.
pub const DISPLAY_NAME_MAX_CHARS: u32 = 64;

/// Claims of an access token minted by the users service (EdDSA JWT with a `kid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: String,
    /// The user's display name at the time the token was minted.
    pub name: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issuer, e.g. `rendezvous-users`.
    pub iss: String,
    /// Audience, e.g. `rendezvous`.
    pub aud: String,
}

/// What a participant may do inside a room (modelled on LiveKit's video grants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Grants {
    /// Send and read chat messages.
    pub chat: bool,
    /// Publish audio/video tracks.
    pub publish: bool,
    /// Receive other participants' tracks.
    pub subscribe: bool,
    /// Kick, mute, lock and end the room.
    pub moderate: bool,
}

impl Grants {
    /// What an invited participant gets.
    pub fn participant() -> Self {
        Self {
            chat: true,
            publish: true,
            subscribe: true,
            moderate: false,
        }
    }

    /// What the room's creator gets.
    pub fn creator() -> Self {
        Self {
            moderate: true,
            ..Self::participant()
        }
    }
}

/// Claims of a room token minted by the router and verified by one room server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomClaims {
    /// The user id.
    pub sub: String,
    /// Display name shown to others in the room.
    pub name: String,
    /// The room id this token admits to; a room server refuses any other.
    pub room: String,
    /// What the holder may do.
    pub grants: Grants,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}
