//! The local runtime: each room is a `rendezvous room` child process on an
//! ephemeral loopback port.
//!
//! Start: spawn, read the one `{"event":"listening","addr":...}` line the room prints
//! on stdout, done. A watcher task per child owns the process: it reports
//! [`RoomEvent::Ended`] when the process exits for any reason, and kills it on
//! request. Stop: `POST /close` with a moderator room token (everyone gets
//! `room_closed`), wait a bounded time for the exit, then kill.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use futures::future::BoxFuture;
use futures::FutureExt as _;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot, watch};

use super::{RoomEvent, RoomRuntime, RoomSpec};
use crate::tokens::RoomTokens;

/// How long a room gets to say goodbye and exit after `POST /close`.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The only variables a room process inherits. A room parses untrusted input from
/// the network: it must not hold the database URL or any other credential of its
/// parent. Its settings come as flags; logging and the locale are all it needs.
pub const ROOM_ENV_ALLOWLIST: &[&str] = &[
    "PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "RUST_LOG",
    "RUST_BACKTRACE",
    "RENDEZVOUS_LOG_FORMAT",
];

struct Child {
    endpoint: String,
    kill: Option<oneshot::Sender<()>>,
    exited: watch::Receiver<bool>,
}

/// Rooms as child processes.
pub struct LocalRuntime {
    binary: PathBuf,
    tokens: Arc<RoomTokens>,
    start_timeout: Duration,
    events: mpsc::Sender<RoomEvent>,
    children: Arc<Mutex<HashMap<String, Child>>>,
    http: reqwest::Client,
}

impl LocalRuntime {
    /// `binary` is run as `binary room --room-id ...`.
    pub fn new(
        binary: PathBuf,
        tokens: Arc<RoomTokens>,
        start_timeout: Duration,
        events: mpsc::Sender<RoomEvent>,
    ) -> Self {
        Self {
            binary,
            tokens,
            start_timeout,
            events,
            children: Arc::default(),
            http: rendezvous_service::http_client(Duration::from_secs(5)),
        }
    }

    async fn spawn(&self, spec: RoomSpec) -> anyhow::Result<Option<String>> {
        let mut cmd = Command::new(&self.binary);
        cmd.env_clear();
        for key in ROOM_ENV_ALLOWLIST {
            if let Some(v) = std::env::var_os(key) {
                cmd.env(key, v);
            }
        }
        let mut child = cmd
            .arg("room")
            .args(["--room-id", &spec.id])
            .args(["--listen", "127.0.0.1:0"])
            .args(["--max-participants", &spec.max_participants.to_string()])
            .args([
                "--idle-timeout",
                &format!("{}s", spec.idle_timeout.as_secs()),
            ])
            .args([
                "--max-duration",
                &format!("{}s", spec.max_duration.as_secs()),
            ])
            // The room closes when this pipe does: when the router stops holding it,
            // including when the router dies without closing its rooms.
            .arg("--exit-on-stdin-eof")
            .env("RENDEZVOUS_ROOM_TOKEN_JWKS", self.tokens.jwks_json())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // A room never outlives the router's handle on it.
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", self.binary.display()))?;
        let (Some(stdout), Some(lifeline)) = (child.stdout.take(), child.stdin.take()) else {
            return Err(anyhow!("the room's stdin and stdout are not piped"));
        };
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(self.start_timeout, lines.next_line()).await;
        let addr = match first {
            Ok(Ok(Some(line))) => parse_listening(&line)?,
            Ok(Ok(None)) => {
                return Err(anyhow!(
                    "room exited before listening: {:?}",
                    child.wait().await
                ))
            }
            Ok(Err(e)) => return Err(e).context("reading the room's stdout"),
            Err(_) => {
                return Err(anyhow!(
                    "room did not start within {:?}",
                    self.start_timeout
                ))
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let (kill_tx, kill_rx) = oneshot::channel();
        let (exited_tx, exited_rx) = watch::channel(false);
        self.children
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                spec.id.clone(),
                Child {
                    endpoint: addr.clone(),
                    kill: Some(kill_tx),
                    exited: exited_rx,
                },
            );
        let (events, children, id) = (self.events.clone(), self.children.clone(), spec.id);
        tokio::spawn(async move {
            let status = tokio::select! {
                s = child.wait() => s,
                _ = kill_rx => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            let reason = match status {
                Ok(s) if s.success() => "room server exited".to_owned(),
                Ok(s) => format!("room server exited with {s}"),
                Err(e) => format!("room server lost: {e}"),
            };
            drop(lifeline);
            children
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&id);
            let _ = exited_tx.send(true);
            tracing::info!(room = %id, %reason, "room ended");
            let _ = events.send(RoomEvent::Ended { id, reason }).await;
        });
        Ok(Some(addr))
    }

    async fn stop_one(&self, id: &str) -> anyhow::Result<()> {
        let (endpoint, mut exited) = {
            let children = self
                .children
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(c) = children.get(id) else {
                return Ok(());
            };
            (c.endpoint.clone(), c.exited.clone())
        };
        let token = self.tokens.closer(id)?;
        let asked = self
            .http
            .post(format!("http://{endpoint}/close"))
            .bearer_auth(token)
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        let gone = asked
            && tokio::time::timeout(STOP_GRACE, exited.wait_for(|e| *e))
                .await
                .is_ok();
        if !gone {
            tracing::warn!(room = %id, "room did not close in time; killing it");
            let kill = self
                .children
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get_mut(id)
                .and_then(|c| c.kill.take());
            if let Some(kill) = kill {
                let _ = kill.send(());
            }
            let _ = exited.wait_for(|e| *e).await;
        }
        Ok(())
    }
}

fn parse_listening(line: &str) -> anyhow::Result<String> {
    let v: serde_json::Value = serde_json::from_str(line)
        .with_context(|| format!("unexpected first line from room: {line:?}"))?;
    match (v["event"].as_str(), v["addr"].as_str()) {
        (Some("listening"), Some(addr)) => Ok(addr.to_owned()),
        _ => Err(anyhow!("unexpected first line from room: {line:?}")),
    }
}

impl RoomRuntime for LocalRuntime {
    fn start(&self, spec: RoomSpec) -> BoxFuture<'_, anyhow::Result<Option<String>>> {
        self.spawn(spec).boxed()
    }

    fn stop<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        self.stop_one(id).boxed()
    }

    fn stop_all(&self) -> BoxFuture<'_, ()> {
        async move {
            let ids: Vec<String> = self
                .children
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .keys()
                .cloned()
                .collect();
            futures::future::join_all(ids.iter().map(|id| self.stop_one(id))).await;
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::parse_listening;

    #[test]
    fn reads_the_listening_line() {
        assert_eq!(
            parse_listening(r#"{"event":"listening","addr":"127.0.0.1:4000"}"#).unwrap(),
            "127.0.0.1:4000"
        );
        assert!(parse_listening("hello").is_err());
        assert!(parse_listening(r#"{"event":"other"}"#).is_err());
    }
}
