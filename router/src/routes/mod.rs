//! The room API, one module per resource: rooms (create, list, get, close, room-token
//! refresh), invites (create, revoke) and join (and the link's preview). This module
//! holds what they share: the caller's identity, the trusted base URL, and the JSON
//! views.

mod invites;
mod join;
mod rooms;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use axum::Router;

use crate::error::{Error, Result};
use crate::model::*;
use crate::registry::Room;
use crate::Ctx;

/// The room API's OpenAPI document (served by `rendezvous router`; `rendezvous up`
/// serves it merged with the users API's).
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Rendezvous room API",
        description = "Rooms, invite links, room tokens. Errors are `{\"error\":{\"code\",\"message\"}}`. The room's WebSocket, `GET /rooms/{id}/ws`, speaks the protocol in room-server/docs/protocol.md."
    ),
    paths(
        rooms::create_room,
        rooms::list_rooms,
        rooms::get_room,
        rooms::close_room,
        rooms::refresh_token,
        invites::create_invite,
        invites::revoke_invite,
        join::join,
        join::preview,
    ),
    components(schemas(rendezvous_api::ErrorBody))
)]
pub struct ApiDoc;

/// Every route of the room API.
pub fn router() -> Router<Ctx> {
    rooms::router()
        .merge(invites::router())
        .merge(join::router())
}

pub use rendezvous_service::AuthUser;

impl rendezvous_service::HasVerifier for Ctx {
    fn verifier(&self) -> &rendezvous_auth::Verifier {
        &self.verifier
    }
}

/// Where people reach this service, for the links the router hands out: the
/// configured public URL; else `X-Forwarded-Proto`/`X-Forwarded-Host` when this
/// router sits behind trusted proxies (`--trusted-proxy-hops` > 0); else `http://`
/// and the `Host` header. A host that is not a plain host name is ignored.
pub struct BaseUrl(pub String);

impl FromRequestParts<Ctx> for BaseUrl {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self> {
        Ok(BaseUrl(base_url(
            ctx.cfg.public_url.as_deref(),
            ctx.cfg.trusted_proxy_hops,
            &parts.headers,
        )))
    }
}

/// See [`BaseUrl`].
pub fn base_url(public: Option<&str>, hops: usize, headers: &header::HeaderMap) -> String {
    if let Some(url) = public {
        return url.trim_end_matches('/').to_owned();
    }
    let plain_host = |h: &&str| {
        !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
    };
    // The value the nearest trusted proxy set: the last `hops` entries are theirs.
    let forwarded = |name: &str| {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        (hops > 0 && !values.is_empty()).then(|| values[values.len().saturating_sub(hops)])
    };
    let host = forwarded("x-forwarded-host")
        .filter(plain_host)
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(plain_host)
        })
        .unwrap_or("localhost");
    let scheme = match forwarded("x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// The WebSocket URL of room `id` under `base`.
pub fn ws_url(base: &str, id: &str) -> String {
    let ws_base = base.replacen("http", "ws", 1);
    format!("{ws_base}/rooms/{id}/ws")
}

fn invite_view(base: &str, i: &Invite) -> InviteView {
    InviteView {
        id: i.id.clone(),
        url: format!("{base}/join/{}", i.code),
        expires_at: i.expires_at.map(rfc3339),
        max_uses: i.max_uses,
        uses: i.uses,
        revoked: i.revoked,
    }
}

/// A room as the API shows it, without its participant count. Only the creator sees
/// its invite links: a joiner holding a single-use link must not learn an unlimited one.
pub(crate) fn room_view(base: &str, r: &Room, for_creator: bool) -> RoomView {
    RoomView {
        id: r.id.clone(),
        kind: r.kind,
        title: r.title.clone(),
        creator: r.creator.clone(),
        creator_name: r.creator_name.clone(),
        state: r.state,
        created_at: rfc3339(r.created_at),
        max_participants: r.max_participants,
        idle_timeout: r.idle_timeout_secs,
        max_duration: r.max_duration_secs,
        // Only the listings ask the room (`rooms::with_participants`).
        participants: None,
        invite_url: for_creator
            .then(|| r.first_live_invite())
            .flatten()
            .map(|i| format!("{base}/join/{}", i.code)),
        invites: for_creator.then(|| r.invites.iter().map(|i| invite_view(base, i)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn links_come_from_the_public_url_when_set() {
        let h = headers(&[("host", "evil.example"), ("x-forwarded-host", "evil2")]);
        assert_eq!(
            base_url(Some("https://meet.example/"), 1, &h),
            "https://meet.example"
        );
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_hops() {
        let h = headers(&[
            ("host", "router:8080"),
            ("x-forwarded-host", "forged.example, meet.example"),
            ("x-forwarded-proto", "https"),
        ]);
        // No trusted proxy: the client's forwarded headers are ignored.
        assert_eq!(base_url(None, 0, &h), "http://router:8080");
        // One trusted proxy: the entry it appended (the last) wins, not the client's.
        assert_eq!(base_url(None, 1, &h), "https://meet.example");
        // A forged host that is not a host name falls back to Host.
        let bad = headers(&[("host", "ok.example"), ("x-forwarded-host", "a/b?c")]);
        assert_eq!(base_url(None, 1, &bad), "http://ok.example");
        let worse = headers(&[("host", "<script>")]);
        assert_eq!(base_url(None, 0, &worse), "http://localhost");
    }
}
