//! Room start-up through the whole local service: `POST /api/rooms` → a room server
//! that accepts a WebSocket join (through the router's proxy), over 200 rooms.
//!
//! Reports median and p99 of create-to-joinable and of the create call alone, and,
//! as a baseline measured in the same run, the cost of starting the same binary to
//! do nothing (`rendezvous --version`): the floor for any process-per-room design.
//!
//! Run: `cargo bench --bench room_start` (ROOMS=N to change the count).

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let rooms: usize = std::env::var("ROOMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let up = common::start_up(&["--rooms-per-user", "1000", "--max-rooms", "1000"]);
    let (mut joinable, mut create) = (Vec::new(), Vec::new());
    rt.block_on(async {
        let token = up.register("bench").await;
        for i in 0..rooms {
            let t0 = Instant::now();
            let body = json!({"kind": "chat", "title": format!("room {i}")});
            let (status, room) = up
                .call(Method::POST, "/api/rooms", Some(&token), Some(body))
                .await;
            assert_eq!(status, 201, "{room}");
            create.push(t0.elapsed());
            let code = room["inviteUrl"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned();
            let (status, j) = up
                .call(
                    Method::POST,
                    &format!("/api/join/{code}"),
                    Some(&token),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{j}");
            let client = rendezvous_room::client::RoomClient::connect(
                j["wsUrl"].as_str().unwrap(),
                j["token"].as_str().unwrap(),
            )
            .await
            .expect("join");
            joinable.push(t0.elapsed());
            client.close().await;
            let id = room["id"].as_str().unwrap();
            let (status, _) = up
                .call(
                    Method::DELETE,
                    &format!("/api/rooms/{id}"),
                    Some(&token),
                    None,
                )
                .await;
            assert_eq!(status, 204);
        }
    });
    let exe = env!("CARGO_BIN_EXE_rendezvous");
    let mut baseline: Vec<Duration> = (0..rooms)
        .map(|_| {
            let t0 = Instant::now();
            let s = Command::new(exe)
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(s.success());
            t0.elapsed()
        })
        .collect();
    joinable.sort();
    create.sort();
    baseline.sort();
    let base = pct(&baseline, 0.5);
    println!(
        "room start-up, {rooms} rooms, one at a time ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for (what, xs) in [
        ("create -> joinable", &joinable),
        ("POST /api/rooms (ready)", &create),
        ("baseline: exec --version", &baseline),
    ] {
        println!(
            "{what:<26} median {:>9}  p99 {:>9}  median/baseline {:.1}x",
            ms(pct(xs, 0.5)),
            ms(pct(xs, 0.99)),
            pct(xs, 0.5).as_secs_f64() / base.as_secs_f64()
        );
    }
}
