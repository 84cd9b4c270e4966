//! Request extractors whose failures are our JSON errors, not axum's plain text.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use rendezvous_api::AccessClaims;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::Ctx;

/// A JSON body; malformed, mistyped, oversized or wrongly typed bodies become
/// `invalid_json` (400), `validation_failed` (422), `payload_too_large` (413) or
/// `unsupported_media_type` (415).
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(map_rejection(rejection)),
        }
    }
}

fn map_rejection(r: JsonRejection) -> Error {
    match r {
        JsonRejection::MissingJsonContentType(_) => Error::UnsupportedMediaType,
        JsonRejection::JsonDataError(e) => Error::Validation(e.body_text()),
        JsonRejection::JsonSyntaxError(e) => Error::BadRequest {
            code: "invalid_json",
            message: e.body_text(),
        },
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge,
        other => Error::BadRequest {
            code: "invalid_body",
            message: other.body_text(),
        },
    }
}

/// The caller, from a valid access token in `Authorization: Bearer`.
pub struct AuthUser(pub AccessClaims);

impl FromRequestParts<Ctx> for AuthUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self, Error> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or(Error::Unauthenticated)?;
        let claims = ctx
            .keys
            .verifier()
            .verify::<AccessClaims>(token.trim())
            .await?;
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

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}
