//! Fan-out benchmark: one room, N receiving participants plus one sender (real
//! WebSockets, the Rust client). The server is a `rendezvous-room` child process
//! so its CPU time and peak RSS can be read from /proc. Reports deliveries per second and
//! p50/p99 delivery latency (send call → receiver got the frame), then the idle
//! RSS of a room server process.
//!
//! `cargo bench -p rendezvous-room --bench fanout` (bounded: about a minute).
//! Server and clients share the machine's cores, so wall-clock figures are a
//! floor; deliveries per server CPU-second isolate the server's cost.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{token, RoomProcess};
use rendezvous_auth::SigningKey;
use rendezvous_room::client::{ConnectOptions, FrameObserver, RoomClient};

static EPOCH: OnceLock<Instant> = OnceLock::new();

fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
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
    /// CPU seconds the room server process used during the run.
    server_cpu: f64,
    peak_rss_kib: u64,
    p50: Duration,
    p99: Duration,
}

/// `messages` sent back to back, or paced at `rate` per second.
async fn run(participants: usize, messages: usize, rate: Option<f64>) -> Outcome {
    let key = SigningKey::generate().unwrap();
    let room = RoomProcess::spawn(
        &key,
        &[
            "--max-participants",
            &(participants + 10).to_string(),
            "--rate-limit-messages",
            "1000000",
            // Burst mode queues a lot per connection; the bound is memory, not policy.
            "--outbox-frames",
            &(messages + 100).to_string(),
        ],
    );
    let url = format!("ws://{}/ws", room.addr);
    // Receivers record latency on their reader task (no queue, no extra task).
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut receivers = Vec::new();
    let mut clients = Vec::new();
    for i in 0..participants {
        let latencies = Arc::new(Mutex::new(Vec::with_capacity(messages)));
        let (l, d) = (latencies.clone(), delivered.clone());
        let mut opts = ConnectOptions::new(url.clone(), token(&key, &format!("p{i}")));
        opts.observer = Some(FrameObserver(Arc::new(move |frame: &str| {
            if let Some(sent) = sent_ns(frame) {
                l.lock().unwrap().push(now_ns().saturating_sub(sent));
                d.fetch_add(1, Ordering::Relaxed);
            }
        })));
        clients.push(RoomClient::connect_with(opts).await.unwrap());
        receivers.push(latencies);
    }
    let mut opts = ConnectOptions::new(url.clone(), token(&key, "talker"));
    opts.parse = false;
    let mut talker = RoomClient::connect_with(opts).await.unwrap();
    // Let the join storm settle before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    let cpu_before = room.cpu_secs();
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
    let expected = messages * participants;
    let deadline = Instant::now() + Duration::from_secs(120);
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = start.elapsed();
    let server_cpu = room.cpu_secs() - cpu_before;
    let peak_rss_kib = room.status_kib("VmHWM:");
    let _ = talking.await;
    drop(clients);
    room.stop();
    let mut all = Vec::with_capacity(expected);
    for r in receivers {
        all.extend(r.lock().unwrap().iter().copied());
    }
    all.sort_unstable();
    let pct = |p: f64| {
        let i = ((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1));
        Duration::from_nanos(all.get(i).copied().unwrap_or(0))
    };
    Outcome {
        deliveries: all.len(),
        elapsed,
        server_cpu,
        peak_rss_kib,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

fn report(label: &str, o: &Outcome) {
    println!(
        "{label}: {} deliveries in {:.2?} = {:.0} deliveries/s; latency p50 {:.2?} p99 {:.2?}; \
         server CPU {:.2}s = {:.0} deliveries per server CPU-second; server peak RSS {} KiB",
        o.deliveries,
        o.elapsed,
        o.deliveries as f64 / o.elapsed.as_secs_f64(),
        o.p50,
        o.p99,
        o.server_cpu,
        o.deliveries as f64 / o.server_cpu.max(1e-9),
        o.peak_rss_kib,
    );
}

fn idle_rss() {
    let key = SigningKey::generate().unwrap();
    let room = RoomProcess::spawn(&key, &[]);
    std::thread::sleep(Duration::from_millis(500));
    println!(
        "idle room server: VmRSS {} KiB, listening {:.2?} after spawn",
        room.status_kib("VmRSS:"),
        room.ready_after
    );
    room.stop();
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
