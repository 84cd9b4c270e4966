//! Wire contracts shared by every Rendezvous service, free of I/O.
//!
//! One definition each of: the JSON error body every HTTP API returns, the claims
//! inside access tokens (minted by `users`) and room tokens (minted by the router,
//! checked by a room server), and the JWKS document that publishes verifying keys.
#![forbid(unsafe_code)]

pub mod claims;
pub mod error;
pub mod jwks;

pub use claims::{AccessClaims, Grants, RoomClaims, DISPLAY_NAME_MAX_CHARS};
pub use error::{ErrorBody, ErrorDetail};
pub use jwks::{Jwk, JwkSet};
