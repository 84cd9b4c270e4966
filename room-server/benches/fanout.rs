//! Fan-out benchmark: one room, N receiving participants plus one sender (real
//! WebSockets, the Rust client, in this process). Reports deliveries per second and
//! p50/p99 delivery latency (send call → receiver got the frame), then the idle
//! RSS of a room server process.
//!
//! `cargo bench -p rendezvous-room --bench fanout` (bounded: about a minute).
//! Server and clients share the machine's cores, so the figures are a floor.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rendezvous_api::{Grants, JwkSet, RoomClaims};
use rendezvous_auth::{now_unix, SigningKey};
use rendezvous_room::client::{ConnectOptions, Incoming, RoomClient};
use rendezvous_room::{Args, Server};

static EPOCH: OnceLock<Instant> = OnceLock::new();

fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn token(key: &SigningKey, sub: &str) -> String {
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

/// Extract the send time from a `message` frame whose text is `t:<ns>`.
fn sent_ns(frame: &str) -> Option<u64> {
    let start = frame.find("\"text\":\"t:")? + 10;
    let digits = &frame[start..];
    let end = digits.find('"')?;
    digits[..end].parse().ok()
}

struct Outcome {
    deliveries: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

/// `messages` sent back to back, or paced at `rate` per second.
async fn run(participants: usize, messages: usize, rate: Option<f64>) -> Outcome {
    let key = SigningKey::generate().unwrap();
    let jwks = serde_json::to_string(&JwkSet {
        keys: vec![key.jwk()],
    })
    .unwrap();
    let mut args = Args::with_defaults("bench", &jwks);
    args.max_participants = participants + 10;
    args.rate_limit_messages = 1_000_000;
    // Burst mode queues a lot per connection; the bound is memory, not policy.
    args.outbox_frames = messages + 100;
    let server = Server::bind(args).await.unwrap();
    let url = format!("ws://{}/ws", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));

    let mut receivers = Vec::new();
    for i in 0..participants {
        let mut opts = ConnectOptions::new(url.clone(), token(&key, &format!("p{i}")));
        opts.parse = false;
        opts.event_buffer = 4096;
        let mut client = RoomClient::connect_with(opts).await.unwrap();
        receivers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(messages);
            while latencies.len() < messages {
                match client.recv().await {
                    Some(Incoming::Frame(f)) => {
                        if let Some(sent) = sent_ns(&f) {
                            latencies.push(now_ns().saturating_sub(sent));
                        }
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            latencies
        }));
    }
    let mut opts = ConnectOptions::new(url.clone(), token(&key, "talker"));
    opts.parse = false;
    let mut talker = RoomClient::connect_with(opts).await.unwrap();
    // Let the join storm settle before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    let pace = rate.map(|r| Duration::from_secs_f64(1.0 / r));
    let talking = tokio::spawn(async move {
        let mut next = Instant::now();
        for _ in 0..messages {
            if let Some(p) = pace {
                tokio::time::sleep_until(next.into()).await;
                next += p;
            }
            talker.say(format!("t:{}", now_ns())).await.unwrap();
            // Read our own echoes so the talker is not a slow consumer.
            while let Ok(Some(_)) = tokio::time::timeout(Duration::ZERO, talker.recv()).await {}
        }
        talker
    });
    let mut all = Vec::with_capacity(messages * participants);
    for r in receivers {
        match tokio::time::timeout(Duration::from_secs(120), r).await {
            Ok(Ok(l)) => all.extend(l),
            _ => eprintln!("a receiver did not finish"),
        }
    }
    let elapsed = start.elapsed();
    let _ = talking.await;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), serving).await;
    all.sort_unstable();
    let pct = |p: f64| {
        let i = ((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1));
        Duration::from_nanos(all.get(i).copied().unwrap_or(0))
    };
    Outcome {
        deliveries: all.len(),
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

fn report(label: &str, o: &Outcome) {
    println!(
        "{label}: {} deliveries in {:.2?} = {:.0} deliveries/s; latency p50 {:.2?} p99 {:.2?}",
        o.deliveries,
        o.elapsed,
        o.deliveries as f64 / o.elapsed.as_secs_f64(),
        o.p50,
        o.p99
    );
}

fn idle_rss() {
    let exe = env!("CARGO_BIN_EXE_rendezvous-room");
    let key = SigningKey::generate().unwrap();
    let jwks = serde_json::to_string(&JwkSet {
        keys: vec![key.jwk()],
    })
    .unwrap();
    let Ok(mut child) = std::process::Command::new(exe)
        .args(["--room-id", "r1", "--token-jwks", &jwks])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        println!("idle RSS: {exe} not built (cargo build --release -p rendezvous-room)");
        return;
    };
    let started = Instant::now();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let ready = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("?");
    println!("idle room server ({exe}): {rss}, listening after {ready:.2?}");
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let o = run(100, 2000, None).await;
        report("100 participants, burst of 2000 messages", &o);
        let o = run(100, 1000, Some(100.0)).await;
        report("100 participants, 100 messages/s", &o);
        let o = run(1000, 200, None).await;
        report("1000 participants, burst of 200 messages", &o);
        let o = run(1000, 200, Some(20.0)).await;
        report("1000 participants, 20 messages/s", &o);
    });
    idle_rss();
}
