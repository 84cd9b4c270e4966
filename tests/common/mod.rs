//! Shared by the end-to-end tests: `rendezvous up` as a real child process.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub struct Up {
    pub child: Child,
    pub base: String,
    pub data_dir: std::path::PathBuf,
    pub http: reqwest::Client,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Start `rendezvous up` on a free port with a fresh data dir; wait for its banner.
pub fn start_up(extra: &[&str]) -> Up {
    start_up_in(fresh_data_dir(), extra)
}

/// A data directory no other test uses.
pub fn fresh_data_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("rendezvous-up-{}", uuid::Uuid::new_v4().simple()))
}

/// Start `rendezvous up` on a free port with `data_dir` (removed when dropped).
pub fn start_up_in(data_dir: std::path::PathBuf, extra: &[&str]) -> Up {
    start_up_with(data_dir, extra, &[], None)
}

/// Start `rendezvous up` with extra environment variables, and its stderr (the
/// logs) written to `log` if given.
pub fn start_up_with(
    data_dir: std::path::PathBuf,
    extra: &[&str],
    envs: &[(&str, &str)],
    log: Option<&std::path::Path>,
) -> Up {
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).expect("log file")),
        None => Stdio::null(),
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_rendezvous"))
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .args(extra)
        .env_remove("DATABASE_URL")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn rendezvous up");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in banner {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    Up {
        child,
        base,
        data_dir,
        http: reqwest::Client::new(),
    }
}

impl Up {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Send a request; the status and the JSON body (Null when none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Register `name` and return its access token.
    pub async fn register(&self, name: &str) -> String {
        let body = json!({
            "email": format!("{name}@example.com"),
            "username": name,
            "displayName": format!("{name} display"),
            "password": format!("password-of-{name}"),
        });
        let (status, body) = self
            .call(reqwest::Method::POST, "/api/users", None, Some(body))
            .await;
        assert_eq!(status, 201, "{body}");
        body["accessToken"].as_str().unwrap().to_owned()
    }

    /// Send a signal to the `up` process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Wait (bounded) for the process to exit; its exit status.
    pub async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "did not exit within {within:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// PIDs of the process's children (the room servers).
    pub fn children(&self) -> Vec<u32> {
        children_of(self.child.id())
    }
}

/// Direct children of `pid`, from /proc (each thread lists the children it forked).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// How long an end-to-end step may take before a test gives up.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The code at the end of an invite link.
pub fn code_of(invite_url: &str) -> String {
    invite_url.rsplit('/').next().unwrap().to_owned()
}

/// `POST /api/rooms` as `token`, which must succeed; the room.
pub async fn create_room(up: &Up, token: &str, body: Value) -> Value {
    let (status, room) = up
        .call(reqwest::Method::POST, "/api/rooms", Some(token), Some(body))
        .await;
    assert_eq!(status, 201, "{room}");
    room
}

/// `POST /api/join/CODE` for an invite link, as `token`.
pub async fn join(up: &Up, token: &str, invite_url: &str) -> (u16, Value) {
    let path = format!("/api/join/{}", code_of(invite_url));
    up.call(reqwest::Method::POST, &path, Some(token), None)
        .await
}

/// The close code the client finally sees (through the router's proxy).
pub async fn closed_with(c: &mut rendezvous_room::client::RoomClient) -> u16 {
    use rendezvous_room::client::Incoming;
    let found = tokio::time::timeout(WAIT, async {
        loop {
            match c.recv().await {
                Some(Incoming::Closed { code, .. }) => return code,
                Some(_) => continue,
                None => return 0,
            }
        }
    });
    found.await.expect("the socket closes")
}

/// Wait (bounded by [`WAIT`]) until `cond` holds.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
