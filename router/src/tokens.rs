//! Room tokens: the router's own Ed25519 key signs them; room servers verify them
//! with the JWKS the router hands each room at start.

use std::time::Duration;

use rendezvous_api::{Grants, JwkSet, RoomClaims};
use rendezvous_auth::{now_unix, SigningKey};

/// `iss` of room tokens.
pub const ISSUER: &str = "rendezvous-router";
/// `aud` of room tokens.
pub const AUDIENCE: &str = "rendezvous-room";

/// The router's room-token key. Generated at start: room tokens live minutes and
/// local rooms do not outlive the router, so nothing needs it after a restart.
pub struct RoomTokens {
    key: SigningKey,
    ttl: Duration,
    jwks_json: String,
}

impl RoomTokens {
    pub fn generate(ttl: Duration) -> anyhow::Result<Self> {
        let key = SigningKey::generate()?;
        let jwks_json = serde_json::to_string(&JwkSet {
            keys: vec![key.jwk()],
        })?;
        Ok(Self {
            key,
            ttl,
            jwks_json,
        })
    }

    /// The public keys, as the JSON a room server is given.
    pub fn jwks_json(&self) -> &str {
        &self.jwks_json
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A room token for `user` in `room`.
    pub fn mint(
        &self,
        room: &str,
        user: &str,
        name: &str,
        grants: Grants,
    ) -> rendezvous_auth::Result<String> {
        let now = now_unix();
        self.key.sign(&RoomClaims {
            sub: user.to_owned(),
            name: name.to_owned(),
            room: room.to_owned(),
            grants,
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
        })
    }

    /// The token the router itself uses to close a room.
    pub fn closer(&self, room: &str) -> rendezvous_auth::Result<String> {
        let grants = Grants {
            moderate: true,
            ..Grants::default()
        };
        self.mint(room, "rendezvous-router", "Rendezvous", grants)
    }
}
