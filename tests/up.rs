//! End to end: `rendezvous up` as a real process, driven over HTTP only.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

struct Up {
    child: Child,
    base: String,
    data_dir: std::path::PathBuf,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Start `rendezvous up` on a free port with a fresh data dir; wait for its banner.
fn start_up() -> Up {
    let data_dir = std::env::temp_dir().join(format!("rendezvous-up-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_rendezvous"))
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    }
}

#[tokio::test]
async fn up_serves_users_on_sqlite_and_stops_cleanly_on_sigterm() {
    let mut up = start_up();
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/api/users", up.base))
        .json(&json!({"email": "ada@example.com", "username": "ada", "displayName": "Ada", "password": "analytical engine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = http
        .post(format!("{}/api/sessions", up.base))
        .json(&json!({"login": "ada", "password": "analytical engine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let session: Value = res.json().await.unwrap();
    let me: Value = http
        .get(format!("{}/api/users/me", up.base))
        .bearer_auth(session["accessToken"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "ada");
    assert!(
        up.data_dir.join("users.db").exists(),
        "SQLite database created under --data-dir"
    );

    let status = Command::new("kill")
        .args(["-TERM", &up.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = up.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not stop within 10 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "exit status {exit:?}");
}
