//! Request extractors of the users service: the caller (the shared
//! [`AuthUser`]), and the client address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::error::Error;
use crate::Ctx;

pub use rendezvous_service::AuthUser;

impl rendezvous_service::HasVerifier for Ctx {
    fn verifier(&self) -> &rendezvous_auth::Verifier {
        self.keys.verifier()
    }
}

/// The client's address, as the rate limits key it: see [`client_ip`].
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<Ctx> for ClientIp {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self, Error> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            // In-process requests (tests) have no socket; they share one bucket.
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientIp(client_ip(
            peer,
            &parts.headers,
            usize::from(ctx.cfg.trusted_proxy_hops),
        )))
    }
}

/// Most `X-Forwarded-For` entries looked at; a longer header is cut off from the left
/// (which only the client writes), so a huge header costs nothing extra.
const MAX_FORWARDED_ENTRIES: usize = 32;

/// The client address behind `hops` trusted proxies.
///
/// Each proxy appends the address it received the request from, so the rightmost
/// entries are written by our proxies and everything to their left by whoever the
/// client is. With `hops` = 0 the socket peer is the client; with `hops` = N the
/// N-th entry from the right is the address our outermost proxy saw. Anything the
/// client wrote is never used. A header too short for `hops` (a proxy that did not
/// append) or an unparseable entry falls back to the peer: one shared bucket for
/// every client of that proxy is safer than a client-chosen one.
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, hops: usize) -> IpAddr {
    if hops == 0 {
        return peer;
    }
    // Several header lines are one comma-separated list, in order (RFC 9110 5.3).
    let mut entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if entries.len() > MAX_FORWARDED_ENTRIES {
        entries.drain(..entries.len() - MAX_FORWARDED_ENTRIES);
    }
    entries
        .len()
        .checked_sub(hops)
        .and_then(|i| parse_entry(entries[i]))
        .unwrap_or(peer)
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:80`.
fn parse_entry(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_headers(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append("x-forwarded-for", l.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn client_ip_counts_trusted_hops_from_the_right() {
        let peer = ip("10.0.0.1");
        let h = mk_headers(&["6.6.6.6, 1.1.1.1, 10.0.0.9"]);
        assert_eq!(client_ip(peer, &h, 0), peer, "no hops: the socket peer");
        assert_eq!(client_ip(peer, &h, 1), ip("10.0.0.9"));
        assert_eq!(client_ip(peer, &h, 2), ip("1.1.1.1"));
        assert_eq!(client_ip(peer, &h, 3), ip("6.6.6.6"));
        assert_eq!(client_ip(peer, &h, 4), peer, "too few entries: the peer");
    }

    #[test]
    fn client_ip_joins_header_lines_and_parses_ports() {
        let peer = ip("10.0.0.1");
        let h = mk_headers(&["6.6.6.6", "[2001:db8::1]:443, 1.1.1.1:80"]);
        assert_eq!(client_ip(peer, &h, 1), ip("1.1.1.1"));
        assert_eq!(client_ip(peer, &h, 2), ip("2001:db8::1"));
        assert_eq!(client_ip(peer, &h, 3), ip("6.6.6.6"));
        let junk = mk_headers(&["1.1.1.1, not-an-address"]);
        assert_eq!(client_ip(peer, &junk, 1), peer);
        assert_eq!(client_ip(peer, &HeaderMap::new(), 1), peer);
    }

    #[test]
    fn client_ip_ignores_entries_beyond_the_bound() {
        let peer = ip("10.0.0.1");
        let long = vec!["7.7.7.7"; 1000].join(",") + ",1.1.1.1";
        let h = mk_headers(&[&long]);
        assert_eq!(client_ip(peer, &h, 1), ip("1.1.1.1"));
        assert_eq!(client_ip(peer, &h, 33), peer, "beyond the bound: the peer");
    }
}
