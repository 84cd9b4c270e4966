//! Request extractors of the users service: the caller, and the client address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use rendezvous_api::AccessClaims;

use crate::error::Error;
use crate::Ctx;

/// The caller, from a valid access token in `Authorization: Bearer`.
pub struct AuthUser(pub AccessClaims);

impl FromRequestParts<Ctx> for AuthUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self, Error> {
        let token = rendezvous_service::bearer_token(parts).ok_or(Error::Unauthenticated)?;
        let claims = ctx.keys.verifier().verify::<AccessClaims>(token).await?;
        Ok(AuthUser(claims))
    }
}

/// The client's address: the socket peer, or the first `X-Forwarded-For` hop when
/// the service is configured to trust its proxy.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<Ctx> for ClientIp {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self, Error> {
        if ctx.cfg.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok());
            if let Some(ip) = forwarded {
                return Ok(ClientIp(ip));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            // In-process requests (tests) have no socket; they share one bucket.
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientIp(peer))
    }
}
