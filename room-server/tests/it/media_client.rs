//! The Rust client's media half (`media_client`) against a real room server over
//! loopback: synthetic Opus and VP8 (one stream, or three simulcast layers) go
//! out through `rtc`, and every participant counts what the SFU forwards.

use std::collections::BTreeMap;
use std::time::Duration;

use rendezvous_room::media_client::{MediaOptions, MediaSession, MediaStats, StatsReader, Video};
use rendezvous_room::protocol::ClientMessage;

use crate::common::{metric, TestRoom};

/// A participant whose signalling runs in a task; its counters stay readable.
struct Member {
    stats: StatsReader,
    /// More to send on the member's room socket.
    send: tokio::sync::mpsc::Sender<ClientMessage>,
    task: tokio::task::JoinHandle<()>,
}

async fn join(room: &TestRoom, sub: &str, opts: MediaOptions) -> Member {
    let mut client = room.join(sub).await;
    let (mut session, offer) = MediaSession::start(opts).await.expect("media session");
    client.send(&offer).await.expect("send the offer");
    let stats = session.stats_reader();
    let (send, outgoing) = tokio::sync::mpsc::channel(8);
    let task = tokio::spawn(async move {
        session
            .pump(&mut client, outgoing)
            .await
            .expect("signalling");
    });
    Member { stats, send, task }
}

/// Wait (at most 20 s) until `done` holds for `m`'s counters.
async fn until(m: &Member, what: &str, done: impl Fn(&MediaStats) -> bool) -> MediaStats {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = m.stats.get();
        if done(&s) {
            return s;
        }
        assert!(
            !m.task.is_finished(),
            "{what}: the member's signalling ended: {s:?}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out: {what}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A second of `who`'s media arrived: 30 video frames and 25 audio packets.
fn got(who: &'static str) -> impl Fn(&MediaStats) -> bool {
    move |s| {
        s.received
            .get(who)
            .is_some_and(|r| r.video_frames >= 30 && r.audio_packets >= 25)
    }
}

fn local() -> std::net::IpAddr {
    std::net::Ipv4Addr::LOCALHOST.into()
}

#[tokio::test]
async fn synthetic_publishers_reach_every_subscriber_counted_per_publisher() {
    let room = TestRoom::start().await;
    let ada = join(
        &room,
        "ada",
        MediaOptions::publish(local(), Video::Simulcast),
    )
    .await;
    let bob = join(&room, "bob", MediaOptions::publish(local(), Video::Camera)).await;
    let eve = join(&room, "eve", MediaOptions::receive_only(local())).await;

    // Everyone gets video frames and audio from each publisher but themselves.
    let e = until(&eve, "eve hears and sees ada and bob", |s| {
        got("ada")(s) && got("bob")(s)
    })
    .await;
    until(&bob, "bob gets ada", got("ada")).await;
    let a = until(&ada, "ada gets bob", got("bob")).await;
    assert!(
        !a.received.contains_key("ada"),
        "ada gets her own media back: {a:?}"
    );
    assert!(!e.received.contains_key("eve"));
    assert_eq!(
        e.audio_packets_sent + e.video_packets_sent,
        0,
        "eve only receives"
    );

    // Ada sends three layers at one frame rate and a subscriber gets one of
    // them: a third of her frames (read eve first: ada's count only grows).
    let ada_at_eve = eve.stats.get().received["ada"];
    let sent = ada.stats.get();
    assert!(
        sent.keyframes_sent >= 3,
        "a keyframe on each layer first: {sent:?}"
    );
    assert!(
        3 * ada_at_eve.video_frames <= sent.video_frames_sent + 3,
        "one layer forwarded: {ada_at_eve:?} of {sent:?}"
    );
    // Unconstrained, eve gets the full layer (6 packets a frame); asked for a
    // 180-px tile, the quarter layer (1 packet a frame).
    let per_frame = |r: rendezvous_room::media_client::Received| {
        r.video_packets as f64 / r.video_frames.max(1) as f64
    };
    assert!(per_frame(ada_at_eve) > 4.0, "{ada_at_eve:?}");
    let watch = ClientMessage::Watch {
        video: None,
        heights: BTreeMap::from([("ada".to_owned(), 180)]),
    };
    eve.send.send(watch).await.unwrap();
    let before = eve.stats.get().received["ada"];
    let after = until(&eve, "eve gets 60 more frames of ada", |s| {
        s.received["ada"].video_frames >= before.video_frames + 60
    })
    .await
    .received["ada"];
    let since = rendezvous_room::media_client::Received {
        video_packets: after.video_packets - before.video_packets,
        video_frames: after.video_frames - before.video_frames,
        ..Default::default()
    };
    assert!(
        per_frame(since) < 2.0,
        "switched to the small layer: {since:?}"
    );
    // Keyframe requests for joining subscribers reached the publishers.
    assert!(ada.stats.get().keyframe_requests >= 1);

    // The room's own counts agree: it sent at least what everyone received
    // (read first), and it switched eve's layer.
    let received: u64 = [&ada, &bob, &eve]
        .iter()
        .flat_map(|m| m.stats.get().received.into_values())
        .map(|r| r.audio_packets + r.video_packets)
        .sum();
    let metrics = room.metrics().await;
    let out = metric(&metrics, "rendezvous_room_media_rtp_packets_out_total").expect("packets out");
    assert!(
        out >= received as f64,
        "room sent {out}, members got {received}"
    );
    let switches = metric(
        &metrics,
        "rendezvous_room_media_simulcast_layer_switches_total",
    )
    .expect("layer switches");
    assert!(switches >= 1.0, "{metrics}");
    for m in [ada, bob, eve] {
        m.task.abort();
    }
}

/// ICE-TCP: publishers and subscribers whose only way in is a TCP connection to
/// the media port (RFC 6544, RFC 4571 framing) meet UDP ones in one room, and a
/// connection ends with its session.
#[tokio::test]
async fn ice_tcp_members_send_and_receive_beside_udp_members() {
    let room = TestRoom::start().await;
    let ada = join(
        &room,
        "ada",
        MediaOptions::publish(local(), Video::Camera).over_tcp(),
    )
    .await;
    let bob = join(&room, "bob", MediaOptions::publish(local(), Video::Camera)).await;
    let cy = join(&room, "cy", MediaOptions::receive_only(local()).over_tcp()).await;

    until(&cy, "cy (TCP) gets ada (TCP) and bob (UDP)", |s| {
        got("ada")(s) && got("bob")(s)
    })
    .await;
    until(&bob, "bob (UDP) gets ada (TCP)", got("ada")).await;
    until(&ada, "ada (TCP) gets bob (UDP)", got("bob")).await;
    let tcp_links = || async {
        metric(
            &room.metrics().await,
            "rendezvous_room_media_tcp_connections",
        )
        .expect("the gauge")
    };
    assert_eq!(tcp_links().await, 2.0, "ada's and cy's connections");

    // Cy leaves: the room ends her session and closes her connection.
    cy.task.abort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tcp_links().await != 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "cy's connection stays open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Ada, still over TCP, goes on getting bob.
    let before = ada.stats.get().received["bob"].video_frames;
    until(&ada, "ada gets 30 more frames of bob", |s| {
        s.received["bob"].video_frames >= before + 30
    })
    .await;
    for m in [ada, bob] {
        m.task.abort();
    }
}

/// What is no ICE check of a live session closes its TCP connection at once,
/// and the room goes on serving.
#[tokio::test]
async fn tcp_connections_that_are_not_ice_are_closed_and_the_room_serves_on() {
    use rtc::shared::tcp_framing::frame_packet;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let room = TestRoom::start().await;
    let bob = join(&room, "bob", MediaOptions::publish(local(), Video::Camera)).await;
    // A STUN binding request of a made-up session, without integrity.
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[7; 12]);
    let garbage: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
    let http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    for (what, bytes) in [
        ("a forged STUN check", frame_packet(&stun)),
        ("a frame of garbage", frame_packet(&garbage)),
        ("an HTTP request", http),
        (
            "a frame longer than any packet",
            vec![0xff, 0xff, 0, 0, 0, 0],
        ),
    ] {
        let mut tcp = tokio::net::TcpStream::connect(room.media).await.unwrap();
        tcp.write_all(&bytes).await.unwrap();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{what}: the room kept the connection open"));
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "{what}: the room answered {read:?}"
        );
    }
    // Bob's media flowed all along, and a TCP member still gets in.
    let cy = join(&room, "cy", MediaOptions::receive_only(local()).over_tcp()).await;
    until(&cy, "cy gets bob", |s| {
        s.received.get("bob").is_some_and(|r| r.video_frames >= 30)
    })
    .await;
    for m in [bob, cy] {
        m.task.abort();
    }
}

/// `--ice-tcp false`: no TCP listener, no TCP candidate; a TCP-only client
/// fails cleanly.
#[tokio::test]
async fn with_ice_tcp_off_the_answer_offers_udp_only() {
    let room = TestRoom::start_with(|a| a.ice_tcp = false).await;
    assert!(
        tokio::net::TcpStream::connect(room.media).await.is_err(),
        "nothing listens for TCP on the media port"
    );
    let cy = join(&room, "cy", MediaOptions::receive_only(local()).over_tcp()).await;
    until(&cy, "cy's TCP-only session fails", |s| s.ended).await;
    let bob = join(&room, "bob", MediaOptions::receive_only(local())).await;
    until(&bob, "bob connects over UDP", |s| s.connected).await;
    for m in [bob, cy] {
        m.task.abort();
    }
}
