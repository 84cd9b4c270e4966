//! Ed25519 signing keys and sets of verifying keys.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rendezvous_api::{Jwk, JwkSet};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};

use crate::{AuthError, Expect, Result};

/// An Ed25519 private key that signs EdDSA JWTs.
pub struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
    encoding: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    // Never print the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self> {
        let rng = ring::rand::SystemRandom::new();
        let doc =
            Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| AuthError::Key(e.to_string()))?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// The key whose 32-byte Ed25519 seed (RFC 8032 private key) is `seed`: for keys
    /// derived from a longer-lived secret rather than stored themselves.
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self> {
        let pair =
            Ed25519KeyPair::from_seed_unchecked(seed).map_err(|e| AuthError::Key(e.to_string()))?;
        // PKCS#8 v2 (RFC 5958 OneAsymmetricKey) for Ed25519 (RFC 8410): version 1,
        // algorithm id-Ed25519, the seed as an OCTET STRING in an OCTET STRING, and
        // the public key as [1] BIT STRING. Fixed lengths, so fixed framing.
        const HEAD: [u8; 16] = [
            0x30, 0x53, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        const MID: [u8; 5] = [0xa1, 0x23, 0x03, 0x21, 0x00];
        let mut der = Vec::with_capacity(85);
        der.extend_from_slice(&HEAD);
        der.extend_from_slice(seed);
        der.extend_from_slice(&MID);
        der.extend_from_slice(pair.public_key().as_ref());
        Self::from_pkcs8(&der)
    }

    /// Load a key from its PKCS#8 v2 DER bytes (as [`SigningKey::pkcs8`] returns).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self> {
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|e| AuthError::Key(e.to_string()))?;
        let public = pair.public_key().as_ref().to_vec();
        // The kid is derived from the public key, so it is stable across restarts.
        let kid = B64.encode(&Sha256::digest(&public)[..12]);
        Ok(Self {
            kid,
            pkcs8: der.to_vec(),
            public,
            encoding: EncodingKey::from_ed_der(der),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key as PKCS#8 DER, for storage. Handle as a secret.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public half, for a JWKS document.
    pub fn jwk(&self) -> Jwk {
        Jwk::ed25519(self.kid.clone(), B64.encode(&self.public))
    }

    /// Sign `claims` as a compact JWS with `alg: EdDSA` and this key's `kid`.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| AuthError::Key(e.to_string()))
    }
}

/// Verifying keys by `kid`.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, DecodingKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.keys.keys()).finish()
    }
}

impl KeySet {
    /// The Ed25519 keys of a JWKS document; keys of other types are ignored.
    pub fn from_jwks(set: &JwkSet) -> Result<Self> {
        let mut keys = HashMap::with_capacity(set.keys.len());
        for jwk in set
            .keys
            .iter()
            .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
        {
            let key = DecodingKey::from_ed_components(&jwk.x)
                .map_err(|e| AuthError::Key(e.to_string()))?;
            keys.insert(jwk.kid.clone(), key);
        }
        Ok(Self { keys })
    }

    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verify signature, expiry, issuer and audience, and decode the claims.
    pub fn verify<C: DeserializeOwned>(&self, token: &str, expect: &Expect) -> Result<C> {
        let kid = token_kid(token)?;
        let key = self.keys.get(&kid).ok_or(AuthError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&expect.issuer]);
        validation.set_audience(&[&expect.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = expect.leeway_secs;
        Ok(jsonwebtoken::decode::<C>(token, key, &validation)?.claims)
    }
}

/// The `kid` of an EdDSA token; any other algorithm is refused before key lookup.
pub(crate) fn token_kid(token: &str) -> Result<String> {
    let header = jsonwebtoken::decode_header(token)?;
    if header.alg != Algorithm::EdDSA {
        return Err(AuthError::Malformed(format!(
            "algorithm {:?} is not accepted",
            header.alg
        )));
    }
    header
        .kid
        .ok_or_else(|| AuthError::Malformed("the token has no kid".into()))
}
