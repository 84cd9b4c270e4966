//! Room tokens: signed with a key derived from the router's secret
//! ([`crate::secret::RouterSecret`]); room servers verify them with the router's JWKS,
//! handed to local rooms at start and served at `/.well-known/room-jwks.json` for
//! rooms in Kubernetes.

use std::sync::Arc;
use std::time::Duration;

use rendezvous_api::{Grants, JwkSet, RoomClaims};
use rendezvous_auth::{now_unix, Expect, KeySet};

use crate::secret::RouterSecret;

/// `iss` of room tokens.
pub const ISSUER: &str = "rendezvous-router";
/// `aud` of room tokens.
pub const AUDIENCE: &str = "rendezvous-room";

/// Mints room tokens and derives invite codes.
pub struct RoomTokens {
    secret: Arc<RouterSecret>,
    ttl: Duration,
    jwks_json: String,
    /// The router's own public key, to check a room token shown for a refresh.
    keys: KeySet,
}

/// How long after its expiry a room token can still be traded for a fresh one: as
/// long as any room lives (its owner must also show a valid access token, and the
/// room must still be live).
const REFRESH_LEEWAY_SECS: u64 = 7 * 24 * 3600;

impl RoomTokens {
    pub fn new(secret: Arc<RouterSecret>, ttl: Duration) -> anyhow::Result<Self> {
        let set = JwkSet {
            keys: vec![secret.room_token_key().jwk()],
        };
        let jwks_json = serde_json::to_string(&set)?;
        let keys = KeySet::from_jwks(&set)?;
        Ok(Self {
            secret,
            ttl,
            jwks_json,
            keys,
        })
    }

    /// With a secret that lives as long as this process.
    pub fn generate(ttl: Duration) -> anyhow::Result<Self> {
        Self::new(Arc::new(RouterSecret::ephemeral()), ttl)
    }

    /// The public keys, as the JSON a room server is given.
    pub fn jwks_json(&self) -> &str {
        &self.jwks_json
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The code of invite `invite_id` of room `room_id`.
    pub fn invite_code(&self, room_id: &str, invite_id: &str) -> String {
        self.secret.invite_code(room_id, invite_id)
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
        self.secret.room_token_key().sign(&RoomClaims {
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

    /// The claims of a room token this router signed, expired or not (within
    /// [`REFRESH_LEEWAY_SECS`]), for trading it in for a fresh one.
    pub fn verify_for_refresh(&self, token: &str) -> rendezvous_auth::Result<RoomClaims> {
        let mut expect = Expect::new(ISSUER, AUDIENCE);
        expect.leeway_secs = REFRESH_LEEWAY_SECS;
        self.keys.verify(token, &expect)
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
