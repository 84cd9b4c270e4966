//! The room as a child process: the stdout contract, idle RSS and SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rendezvous_api::JwkSet;
use rendezvous_auth::SigningKey;

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn prints_the_listening_line_reports_idle_rss_and_exits_0_on_sigterm() {
    let key = SigningKey::generate().unwrap();
    let jwks = serde_json::to_string(&JwkSet {
        keys: vec![key.jwk()],
    })
    .unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rendezvous-room"))
        .args(["--room-id", "r1", "--token-jwks", &jwks])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready_in = started.elapsed();
    let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
    assert_eq!(v["event"], "listening");
    let addr: std::net::SocketAddr = v["addr"].as_str().unwrap().parse().unwrap();
    assert_ne!(addr.port(), 0);

    std::thread::sleep(Duration::from_millis(300));
    let rss = vm_rss_kib(child.id()).expect("VmRSS");
    eprintln!("idle room server: VmRSS {rss} KiB, listening after {ready_in:?}");
    println!("IDLE_RSS_KIB={rss}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}
