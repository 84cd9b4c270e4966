//! What the room server's benchmarks share.
#![allow(dead_code)] // Each bench uses a part.

use std::time::{Duration, Instant};

use rendezvous_api::{Grants, JwkSet, RoomClaims};
use rendezvous_auth::{now_unix, SigningKey};

/// A `kB` field (`VmRSS`, `VmHWM`) of a `/proc/<pid>/status` file, 0 if unreadable.
pub fn status_kib(path: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A `rendezvous-room` child process (release build of this crate's binary).
pub struct RoomProcess {
    pub child: std::process::Child,
    pub addr: String,
    pub ready_after: Duration,
}

impl RoomProcess {
    pub fn spawn(key: &SigningKey, extra: &[&str]) -> Self {
        let jwks = serde_json::to_string(&JwkSet {
            keys: vec![key.jwk()],
        })
        .unwrap();
        let started = Instant::now();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rendezvous-room"))
            .args(["--room-id", "bench", "--token-jwks", &jwks])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn rendezvous-room");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let ready_after = started.elapsed();
        let v: serde_json::Value = serde_json::from_str(&line).expect("listening line");
        let addr = v["addr"].as_str().unwrap().to_owned();
        Self {
            child,
            addr,
            ready_after,
        }
    }

    pub fn status_kib(&self, field: &str) -> u64 {
        status_kib(&format!("/proc/{}/status", self.child.id()), field)
    }

    /// User + system CPU seconds so far (/proc/PID/stat fields 14 and 15).
    pub fn cpu_secs(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let fields: Vec<u64> = after
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let ticks = fields.get(11).unwrap_or(&0) + fields.get(12).unwrap_or(&0);
        ticks as f64 / clock_ticks()
    }

    /// SIGTERM and wait: the room says goodbye and exits 0.
    pub fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for RoomProcess {
    /// A bench that fails halfway leaves no room server behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A participant's room token for the benchmarks' room `bench`, for an hour.
pub fn token(key: &SigningKey, sub: &str) -> String {
    let now = now_unix();
    key.sign(&RoomClaims {
        sub: sub.into(),
        name: sub.into(),
        room: "bench".into(),
        grants: Grants::participant(),
        iat: now,
        exp: now + 3600,
        iss: "rendezvous-router".into(),
        aud: "rendezvous-room".into(),
    })
    .unwrap()
}
