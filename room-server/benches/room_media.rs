//! The room server process under media load: a `rendezvous-room` child process
//! and Rust clients (`media_client::MediaSession`, synthetic Opus and VP8 over
//! real ICE, DTLS-SRTP and RTP) signalling on its WebSocket, so the server's own
//! CPU time and RSS can be read from `/proc`, apart from the clients'.
//!
//! `cargo bench -p rendezvous-room --bench room_media` (about a minute). Two
//! loads: one publisher (audio and a 360p camera) to 100 subscribers, and a
//! 10 × 10 meeting in which everyone sends a simulcast camera (three layers) and
//! receives everyone else. Each is measured over a window once every
//! subscriber receives frames: RTP packets the server sent (its `/metrics`),
//! the server's CPU time and RSS, against the same server idle (measured in the
//! same run, before anyone joined). Clients and server share the machine's two
//! cores, so the per-CPU-second figure isolates the server's cost. Run without
//! `--bench` (as `cargo test --benches` does) it is a smoke test: 3 subscribers
//! and 3 people, failing unless everyone got everyone's frames.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::{token, RoomProcess};
use rendezvous_auth::SigningKey;
use rendezvous_room::client::RoomClient;
use rendezvous_room::media_client::{MediaOptions, MediaSession, StatsReader, Video};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A participant whose signalling runs in a task of its own.
struct Member {
    name: String,
    stats: StatsReader,
    _task: tokio::task::JoinHandle<()>,
}

async fn join(url: &str, key: &SigningKey, name: &str, opts: MediaOptions) -> Member {
    let mut client = RoomClient::connect(url, &token(key, name))
        .await
        .expect("join the room");
    let (mut session, offer) = MediaSession::start(opts).await.expect("media session");
    client.send(&offer).await.expect("send the offer");
    let stats = session.stats_reader();
    let (_keep, outgoing) = tokio::sync::mpsc::channel(1);
    let task = tokio::spawn(async move {
        let _keep = _keep;
        let _ = session.pump(&mut client, outgoing).await;
    });
    Member {
        name: name.to_owned(),
        stats,
        _task: task,
    }
}

/// The server's `rendezvous_room_media_rtp_packets_out_total`.
async fn packets_out(addr: &str) -> f64 {
    let body = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .unwrap_or_default();
    body.lines()
        .find(|l| l.starts_with("rendezvous_room_media_rtp_packets_out_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

struct Outcome {
    title: String,
    packets: f64,
    window: Duration,
    server_cpu: f64,
    idle_rss: u64,
    rss: u64,
    peak_rss: u64,
    frames: u64,
    receivers: usize,
}

/// Run one load: `publishers` who send `video` (and audio) and receive, and
/// `viewers` who only receive; measure over `window`.
async fn run(
    title: String,
    publishers: usize,
    viewers: usize,
    video: Video,
    window: Duration,
) -> Outcome {
    let key = SigningKey::generate().unwrap();
    let people = publishers + viewers;
    let room = RoomProcess::spawn(&key, &["--max-participants", &(people + 10).to_string()]);
    let url = format!("ws://{}/ws", room.addr);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_rss = room.status_kib("VmRSS");
    let mut senders = Vec::new();
    for i in 0..publishers {
        let name = format!("p{i}");
        senders.push(join(&url, &key, &name, MediaOptions::publish(LOCAL, video)).await);
    }
    let mut everyone: Vec<Member> = Vec::new();
    for i in 0..viewers {
        everyone.push(
            join(
                &url,
                &key,
                &format!("v{i}"),
                MediaOptions::receive_only(LOCAL),
            )
            .await,
        );
    }
    let names: Vec<String> = senders.iter().map(|m| m.name.clone()).collect();
    everyone.extend(senders);
    // Everyone receives frames from every publisher but themselves.
    let all_in = |m: &Member| {
        let s = m.stats.get();
        names
            .iter()
            .filter(|n| **n != m.name)
            .all(|n| s.received.get(n).is_some_and(|r| r.video_frames >= 10))
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while !everyone.iter().all(all_in) {
        assert!(
            Instant::now() < deadline,
            "{title}: {} of {} members never received everyone's frames",
            everyone.iter().filter(|m| !all_in(m)).count(),
            everyone.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let frames = |e: &[Member]| -> u64 {
        e.iter()
            .map(|m| m.stats.get().video_frames_received())
            .sum()
    };
    let (cpu0, out0, frames0) = (
        room.cpu_secs(),
        packets_out(&room.addr).await,
        frames(&everyone),
    );
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let (cpu1, out1, frames1) = (
        room.cpu_secs(),
        packets_out(&room.addr).await,
        frames(&everyone),
    );
    let outcome = Outcome {
        title,
        packets: out1 - out0,
        window: started.elapsed(),
        server_cpu: cpu1 - cpu0,
        idle_rss,
        rss: room.status_kib("VmRSS"),
        peak_rss: room.status_kib("VmHWM"),
        frames: frames1 - frames0,
        // Viewers receive; without viewers, every publisher receives the others.
        receivers: if viewers > 0 { viewers } else { publishers },
    };
    drop(everyone);
    room.stop();
    outcome
}

fn report(o: &Outcome) {
    let secs = o.window.as_secs_f64();
    println!("\n{}", o.title);
    println!(
        "  server: {:.0} RTP packets out/s, {:.0} per server CPU-second, {:.0} % of one core",
        o.packets / secs,
        o.packets / o.server_cpu.max(1e-9),
        100.0 * o.server_cpu / secs
    );
    println!(
        "  server RSS: {} KiB idle → {} KiB under load (×{:.1}), peak {} KiB; {:.0} KiB per receiver",
        o.idle_rss,
        o.rss,
        o.rss as f64 / o.idle_rss.max(1) as f64,
        o.peak_rss,
        o.rss.saturating_sub(o.idle_rss) as f64 / o.receivers.max(1) as f64
    );
    println!(
        "  clients: {:.0} video frames/s received over {} receivers",
        o.frames as f64 / secs,
        o.receivers
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (fanout, meeting, secs) = if full { (100, 10, 8) } else { (3, 3, 2) };
    let window = Duration::from_secs(secs);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("the room server process under media load, {secs} s windows (clients: media_client)");
    rt.block_on(async {
        let one = run(
            format!("1 publisher (audio, 360p camera) → {fanout} subscribers"),
            1,
            fanout,
            Video::Camera,
            window,
        )
        .await;
        report(&one);
        let all = run(
            format!("{meeting} × {meeting} meeting, simulcast cameras"),
            meeting,
            0,
            Video::Simulcast,
            window,
        )
        .await;
        report(&all);
        for o in [&one, &all] {
            assert!(
                o.packets > 0.0 && o.frames > 0,
                "{}: no media flowed",
                o.title
            );
        }
    });
}
