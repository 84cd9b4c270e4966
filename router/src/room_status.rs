//! What a room server says about itself: `GET /status`, `{participants,
//! maxParticipants, locked}` (counts only, no names; `room-server/src/http.rs`).
//!
//! The router asks before it admits someone (a full or locked room is then a clear
//! error at join rather than a refused WebSocket later) and when it shows creators
//! their rooms (how many people are inside). A room that does not answer in time, or
//! answers something else, has no status here; each caller decides what that means.

use std::time::Duration;

use serde::Deserialize;

/// How long a join waits for the room's answer before admitting without it (the room
/// server enforces its own limits at admission anyway).
pub const ADMIT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a listing of rooms waits for their answers. Short: the listing waits for
/// the slowest room, and a count is only information.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(1);

/// A room server's answer to `GET /status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerStatus {
    /// People seated now, including anyone inside a reconnect grace period.
    pub participants: u32,
    pub max_participants: u32,
    /// Locked by a moderator: nobody new gets in.
    pub locked: bool,
}

/// Ask the room server at `endpoint` (`host:port`), giving up after `timeout`.
pub async fn fetch(
    http: &reqwest::Client,
    endpoint: &str,
    timeout: Duration,
) -> Option<ServerStatus> {
    let res = http
        .get(format!("http://{endpoint}/status"))
        .timeout(timeout)
        .send()
        .await
        .ok()?;
    if !res.status().is_success() {
        return None;
    }
    res.json().await.ok()
}

/// The status of the room at each of `endpoints` (`None`: not to be asked), all asked
/// at once, so the answer comes within `timeout` however many rooms there are. The
/// callers pass one creator's rooms, bounded by `--rooms-per-user`.
pub async fn fetch_all(
    http: &reqwest::Client,
    endpoints: &[Option<String>],
    timeout: Duration,
) -> Vec<Option<ServerStatus>> {
    futures::future::join_all(
        endpoints
            .iter()
            .map(|endpoint| async move { fetch(http, endpoint.as_deref()?, timeout).await }),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A room server that answers `GET /status` with `body`; its `host:port`.
    async fn mk_room_server(body: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let app = axum::Router::new().route(
            "/status",
            axum::routing::get(move || async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    #[tokio::test]
    async fn rooms_are_asked_at_once_and_a_silent_one_has_no_status() {
        let ok = mk_room_server(r#"{"participants":3,"maxParticipants":50,"locked":false}"#).await;
        let odd = mk_room_server(r#"{"hello":"world"}"#).await;
        // Accepts connections (the kernel's backlog) and never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let silent_addr = silent.local_addr().unwrap().to_string();
        let http = reqwest::Client::new();
        let endpoints = [
            Some(ok),
            None,
            Some(odd),
            Some(silent_addr.clone()),
            Some(silent_addr),
        ];
        let started = Instant::now();
        let got = fetch_all(&http, &endpoints, Duration::from_millis(300)).await;
        let took = started.elapsed();
        assert_eq!(
            got,
            [
                Some(ServerStatus {
                    participants: 3,
                    max_participants: 50,
                    locked: false
                }),
                None,
                None,
                None,
                None
            ]
        );
        assert!(
            took < Duration::from_millis(550),
            "two silent rooms cost one timeout, not two: {took:?}"
        );
        drop(silent);
    }
}
