//! The token verifier services hold: fixed keys, or a cached JWKS URL.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rendezvous_api::JwkSet;
use serde::de::DeserializeOwned;

use crate::keys::token_kid;
use crate::{AuthError, KeySet, Result};

/// What a token must say to be accepted here.
#[derive(Debug, Clone)]
pub struct Expect {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// Clock skew tolerated on `exp`, in seconds.
    pub leeway_secs: u64,
}

impl Expect {
    /// Default clock-skew tolerance: small, since our tokens live minutes.
    pub const DEFAULT_LEEWAY_SECS: u64 = 5;

    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway_secs: Self::DEFAULT_LEEWAY_SECS,
        }
    }
}

/// Verifies bearer tokens. Cheap to clone; clones share the key cache.
#[derive(Clone, Debug)]
pub struct Verifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    expect: Expect,
    keys: RwLock<Arc<KeySet>>,
    source: Option<Source>,
}

#[derive(Debug)]
struct Source {
    url: String,
    http: reqwest::Client,
    /// When the keys were last fetched; guards re-fetches on unknown `kid`s.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl Verifier {
    /// Least time between two JWKS fetches triggered by unknown `kid`s.
    pub const MIN_REFETCH: Duration = Duration::from_secs(5);
    /// Bound on one JWKS fetch, so a slow issuer cannot stall requests for long.
    const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

    /// A verifier with fixed keys (tests, and the users service verifying its own tokens).
    pub fn with_keys(keys: KeySet, expect: Expect) -> Self {
        Self {
            inner: Arc::new(Inner {
                expect,
                keys: RwLock::new(Arc::new(keys)),
                source: None,
            }),
        }
    }

    /// A verifier that fetches keys from a JWKS URL on first use and on unknown `kid`s.
    pub fn from_jwks_url(url: impl Into<String>, expect: Expect) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Self::FETCH_TIMEOUT)
            .build()
            .expect("a reqwest client with only a timeout set always builds");
        Self {
            inner: Arc::new(Inner {
                expect,
                keys: RwLock::new(Arc::new(KeySet::default())),
                source: Some(Source {
                    url: url.into(),
                    http,
                    last_fetch: tokio::sync::Mutex::new(None),
                }),
            }),
        }
    }

    /// Replace the fixed keys (the users service calls this after a key rotation).
    pub fn set_keys(&self, keys: KeySet) {
        *self.inner.keys.write().expect("key lock poisoned") = Arc::new(keys);
    }

    fn keys(&self) -> Arc<KeySet> {
        self.inner.keys.read().expect("key lock poisoned").clone()
    }

    /// Verify a token and decode its claims.
    pub async fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<C> {
        let kid = token_kid(token)?;
        let keys = self.keys();
        if keys.contains(&kid) {
            return keys.verify(token, &self.inner.expect);
        }
        if let Some(source) = &self.inner.source {
            self.refetch(source).await?;
        }
        self.keys().verify(token, &self.inner.expect)
    }

    /// Fetch the JWKS unless another caller did so within [`Self::MIN_REFETCH`].
    async fn refetch(&self, source: &Source) -> Result<()> {
        let mut last = source.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < Self::MIN_REFETCH) {
            return Ok(());
        }
        let fetched = async {
            let res = source
                .http
                .get(&source.url)
                .send()
                .await?
                .error_for_status()?;
            res.json::<JwkSet>().await
        }
        .await
        .map_err(|e| AuthError::KeysUnavailable(e.to_string()))?;
        let keys = KeySet::from_jwks(&fetched)?;
        tracing::debug!(url = %source.url, keys = keys.len(), "fetched JWKS");
        *last = Some(Instant::now());
        self.set_keys(keys);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
