//! The signing keyring: which key signs access tokens now, which keys are published.
//!
//! Keys live in the database, so they survive restarts and every replica signs with
//! the same key. [`Keyring::sync_at`] is the whole policy, run at start-up and then
//! periodically: rotate when the active key is older than the rotation interval, keep
//! publishing a retired key until every token it signed has expired, then forget it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rendezvous_api::JwkSet;
use rendezvous_auth::{Expect, KeySet, SigningKey, Verifier};

use crate::error::{Error, Result};
use crate::store::{KeyRow, Store};

/// Extra time a retired key stays published beyond the access-token lifetime, to
/// cover clock skew and verifiers' JWKS caches.
const RETIRED_GRACE: Duration = Duration::from_secs(120);

struct Current {
    signer: Arc<SigningKey>,
    jwks: Arc<JwkSet>,
}

/// Signing and verifying keys of the users service.
pub struct Keyring {
    store: Store,
    access_ttl: Duration,
    rotation_interval: Duration,
    current: RwLock<Current>,
    verifier: Verifier,
}

impl Keyring {
    /// Load keys (creating the first one on a fresh database).
    pub async fn load(
        store: Store,
        expect: Expect,
        access_ttl: Duration,
        rotation_interval: Duration,
        now: i64,
    ) -> Result<Self> {
        let (signer, jwks) =
            Self::compute(&store, access_ttl, rotation_interval, now, false).await?;
        let verifier = Verifier::with_keys(KeySet::from_jwks(&jwks)?, expect);
        Ok(Self {
            store,
            access_ttl,
            rotation_interval,
            current: RwLock::new(Current {
                signer: Arc::new(signer),
                jwks: Arc::new(jwks),
            }),
            verifier,
        })
    }

    /// The key that signs new tokens.
    pub fn signer(&self) -> Arc<SigningKey> {
        self.current.read().expect("keyring lock").signer.clone()
    }

    /// The published verifying keys.
    pub fn jwks(&self) -> Arc<JwkSet> {
        self.current.read().expect("keyring lock").jwks.clone()
    }

    /// A verifier over the published keys, kept in step by `sync_at`.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Re-read the keys, rotating when due (or when `force`), and publish the result.
    pub async fn sync_at(&self, now: i64, force: bool) -> Result<()> {
        let (signer, jwks) = Self::compute(
            &self.store,
            self.access_ttl,
            self.rotation_interval,
            now,
            force,
        )
        .await?;
        self.verifier.set_keys(KeySet::from_jwks(&jwks)?);
        *self.current.write().expect("keyring lock") = Current {
            signer: Arc::new(signer),
            jwks: Arc::new(jwks),
        };
        Ok(())
    }

    async fn compute(
        store: &Store,
        access_ttl: Duration,
        rotation_interval: Duration,
        now: i64,
        force: bool,
    ) -> Result<(SigningKey, JwkSet)> {
        let publish_for = (access_ttl + RETIRED_GRACE).as_secs() as i64;
        store.drop_keys_retired_before(now - publish_for).await?;
        let mut rows = store.keys().await?;
        let due = match active(&rows) {
            None => true,
            Some(k) => force || now - k.created_at >= rotation_interval.as_secs() as i64,
        };
        if due {
            let key = SigningKey::generate()?;
            store
                .rotate_in(key.kid(), &B64.encode(key.pkcs8()), now)
                .await?;
            tracing::info!(kid = key.kid(), "rotated the access-token signing key");
            rows = store.keys().await?;
        }
        let active =
            active(&rows).ok_or_else(|| Error::Internal(anyhow::anyhow!("no active key")))?;
        let signer = decode(active)?;
        let mut jwks = JwkSet::default();
        for row in rows
            .iter()
            .filter(|r| r.retired_at.is_none_or(|t| t + publish_for >= now))
        {
            jwks.keys.push(decode(row)?.jwk());
        }
        Ok((signer, jwks))
    }
}

/// The newest unretired key.
fn active(rows: &[KeyRow]) -> Option<&KeyRow> {
    rows.iter()
        .filter(|r| r.retired_at.is_none())
        .max_by_key(|r| r.created_at)
}

fn decode(row: &KeyRow) -> Result<SigningKey> {
    let der = B64
        .decode(&row.private_key)
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored key {}: {e}", row.kid)))?;
    Ok(SigningKey::from_pkcs8(&der)?)
}
