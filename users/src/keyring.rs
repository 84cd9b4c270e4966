//! The signing keyring: which key signs access tokens now, which keys are published.
//!
//! Keys live in the database, so they survive restarts and every replica signs with
//! the same key. [`Keyring::sync_at`] is the whole policy, run at start-up and then
//! every [`SYNC_PERIOD`]: when the signing key has signed for the rotation interval,
//! add a successor that is published at once but signs only [`PUBLISH_AHEAD`] later,
//! when every replica and every verifier's JWKS cache has it; sign with the newest
//! key whose activation has passed; keep publishing a retired key until every token it
//! signed has expired, then forget it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rendezvous_api::JwkSet;
use rendezvous_auth::{Expect, KeySet, SigningKey, Verifier};

use crate::error::{Error, Result};
use crate::store::{KeyRow, Store};

/// How often each replica re-reads the keys (the housekeeping tick).
pub const SYNC_PERIOD: Duration = Duration::from_secs(60);

/// How long verifiers may cache the JWKS (`Cache-Control: max-age` of the route).
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(60);

/// Tolerated difference between replicas' clocks.
const CLOCK_SKEW: Duration = Duration::from_secs(30);

/// Time from a key's creation to its first signature: every replica reads it within
/// one sync period, every JWKS cache filled from a replica turns over within one
/// max-age, plus clock skew. A verifier never meets a token whose key it could not
/// have fetched.
pub const PUBLISH_AHEAD: Duration =
    Duration::from_secs(SYNC_PERIOD.as_secs() + JWKS_MAX_AGE.as_secs() + CLOCK_SKEW.as_secs());

/// Extra time a retired key stays published beyond the access-token lifetime: a
/// replica keeps signing with it until its first sync after the successor activates
/// (one sync period), plus clock skew.
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
        let activates_at = match rows.iter().max_by_key(|r| (r.created_at, r.activates_at)) {
            // A fresh database: no verifier knows any key yet, so sign at once.
            None => Some(now),
            Some(newest)
                if force || now - newest.activates_at >= rotation_interval.as_secs() as i64 =>
            {
                Some(now + PUBLISH_AHEAD.as_secs() as i64)
            }
            Some(_) => None,
        };
        if let Some(at) = activates_at {
            let key = SigningKey::generate()?;
            store
                .rotate_in(key.kid(), &B64.encode(key.pkcs8()), now, at)
                .await?;
            tracing::info!(
                kid = key.kid(),
                activates_at = at,
                "added an access-token signing key"
            );
            rows = store.keys().await?;
        }
        let active = signing(&rows, now)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("no key is active yet")))?;
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

/// The key that signs at `now`: the newest whose activation has passed.
fn signing(rows: &[KeyRow], now: i64) -> Option<&KeyRow> {
    rows.iter()
        .filter(|r| r.activates_at <= now)
        .max_by_key(|r| (r.activates_at, r.created_at))
}

fn decode(row: &KeyRow) -> Result<SigningKey> {
    let der = B64
        .decode(&row.private_key)
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored key {}: {e}", row.kid)))?;
    Ok(SigningKey::from_pkcs8(&der)?)
}
