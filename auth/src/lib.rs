//! Tokens for every Rendezvous service.
//!
//! - [`SigningKey`]: an Ed25519 key that mints EdDSA JWTs with a `kid` header; its
//!   public half is a [`Jwk`](rendezvous_api::Jwk). The users service signs access
//!   tokens with one, the router signs room tokens with another.
//! - [`KeySet`]: verifying keys by `kid`, checked synchronously.
//! - [`Verifier`]: what services hold. Either fixed keys, or a JWKS URL that is fetched,
//!   cached, and re-fetched when a token names a `kid` it has not seen (key rotation),
//!   at most once per [`Verifier::MIN_REFETCH`] so garbage tokens cannot hammer the
//!   issuer.
#![forbid(unsafe_code)]

mod error;
mod keys;
mod verifier;

pub use error::{AuthError, Result};
pub use keys::{KeySet, SigningKey};
pub use verifier::{Expect, Verifier};

/// Seconds since the Unix epoch, the unit of JWT `iat`/`exp`.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
