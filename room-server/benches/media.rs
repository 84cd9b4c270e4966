//! SFU benchmark: the room's media core behind a real UDP socket on loopback,
//! against a plain UDP relay of the same packets measured in the same run.
//!
//! `cargo bench -p rendezvous-room --bench media` (about half a minute). Three
//! meetings: one publisher (Opus 50 packets/s, VP8 `VIDEO_PPS` packets/s) to
//! 100 subscribers; 10 people who all publish and all subscribe; and the same
//! 10 with simulcast cameras (three layers, `LAYERS`), where the SFU sends each
//! subscriber one layer of each camera (the smallest here: nine cameras share
//! each subscriber's bandwidth estimate) and rewrites its numbering. In that
//! run the relay copies only what the SFU sends (audio and the small layer), and
//! the SFU's latency is taken after the receiver decrypts (it renumbers, so
//! only the payload, which carries the send time, tells packets apart): the
//! receiver's SRTP cost is in the SFU's figure and not in the relay's. Peers are
//! `rtc` peer connections (real ICE, DTLS-SRTP) on sockets of their own, driven by
//! one thread; the SFU runs alone on another thread, as the room's media loop
//! does, with one socket. The relay baseline is a thread that copies every RTP
//! datagram a publisher sends to each receiver, untouched: what forwarding costs
//! with no SRTP, no interceptors, no routing. Both send as the room's shell
//! does, up to 64 datagrams per `sendmmsg` call; the SFU also receives as the
//! shell does, what is waiting (up to 32) per `recvmmsg` call.
//!
//! Reported per meeting and for both: RTP packets out per CPU-second of the
//! forwarding thread (from `/proc/thread-self/schedstat`), and latency from the
//! publisher's send to the receiver's socket, p50 and p99 (the peer thread's
//! polling adds the same to both). Run without `--bench` (as `cargo test
//! --benches` does) it is a smoke test: 3 receivers, 3 people, one second each,
//! failing unless every receiver got media through both.

mod common;

use rendezvous_room::media_client;
use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// The instant simulcast payloads count their send times from.
static EPOCH: OnceLock<Instant> = OnceLock::new();
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rendezvous_room::media::batch::{recv_batch, send_all, RECV_BATCH};
use rendezvous_room::media::{MediaCore, MediaInput, MediaOutput, Sfu, SfuConfig, Transport};
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::os::fd::AsFd;

/// Video packets per second per publisher: about 2.5 Mbit/s of 1,100-byte
/// packets, a 720p camera.
const VIDEO_PPS: u32 = 300;
const AUDIO_PPS: u32 = 50;
const VIDEO_BYTES: usize = 1100;
const AUDIO_BYTES: usize = 120;
/// Simulcast layers: RTP stream id, packets per second, bytes, frame height.
const LAYERS: [(&str, u32, usize, u16); 3] = [
    ("q", 60, 400, 180),
    ("h", 120, 900, 360),
    ("f", VIDEO_PPS, VIDEO_BYTES, 720),
];

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (fanout, meeting, secs) = if full { (100, 10, 6) } else { (3, 3, 1) };
    let window = Duration::from_secs(secs);
    println!(
        "SFU vs plain UDP relay, loopback, {} s per run (video {VIDEO_PPS} pkt/s + audio {AUDIO_PPS} pkt/s per publisher)",
        secs
    );
    let rss0 = rss_kib("VmRSS");
    let one = Meeting::new(1, fanout).measure(window);
    report(&format!("1 publisher → {fanout} subscribers"), &one);
    let all = Meeting::new(meeting, 0).measure(window);
    report(
        &format!("{meeting} × {meeting} meeting (no simulcast)"),
        &all,
    );
    let sim = Meeting::simulcast(meeting).measure(window);
    report(
        &format!("{meeting} × {meeting} meeting, simulcast (3 layers; the smallest forwarded)"),
        &sim,
    );
    println!(
        "process RSS: {} KiB before, {} KiB peak (SFU, its sessions and every peer)",
        rss0,
        rss_kib("VmHWM")
    );
    for (name, r) in [("fan-out", &one), ("meeting", &all), ("simulcast", &sim)] {
        assert!(
            r.sfu.receivers_reached == r.receivers && r.relay.receivers_reached == r.receivers,
            "{name}: media reached {} (SFU) and {} (relay) of {} receivers",
            r.sfu.receivers_reached,
            r.relay.receivers_reached,
            r.receivers
        );
    }
}

fn report(title: &str, r: &Outcome) {
    println!("\n{title}");
    println!(
        "  {:<6} {:>12} {:>12} {:>16} {:>10} {:>10}",
        "", "RTP out", "out/s", "out per CPU-s", "p50", "p99"
    );
    for (name, s) in [("relay", &r.relay), ("SFU", &r.sfu)] {
        println!(
            "  {:<6} {:>12} {:>12.0} {:>16.0} {:>10} {:>10}",
            name,
            s.rtp_out,
            s.rtp_out as f64 / s.wall.as_secs_f64(),
            s.per_cpu_second(),
            fmt(s.p50),
            fmt(s.p99)
        );
    }
    println!(
        "  SFU / relay: CPU per packet ×{:.1}, p50 ×{:.1}, p99 ×{:.1}; SFU forwarding thread busy {:.0} % of one core",
        r.relay.per_cpu_second() / r.sfu.per_cpu_second(),
        r.sfu.p50.as_secs_f64() / r.relay.p50.as_secs_f64(),
        r.sfu.p99.as_secs_f64() / r.relay.p99.as_secs_f64(),
        100.0 * r.sfu.cpu.as_secs_f64() / r.sfu.wall.as_secs_f64(),
    );
    println!(
        "  time sending (sendmmsg): SFU {:.0} % of its CPU ({:.1} µs a packet), relay {:.0} % ({:.1} µs a packet)",
        100.0 * r.sfu.sends.as_secs_f64() / r.sfu.cpu.as_secs_f64(),
        1e6 * r.sfu.sends.as_secs_f64() / r.sfu.rtp_out.max(1) as f64,
        100.0 * r.relay.sends.as_secs_f64() / r.relay.cpu.as_secs_f64(),
        1e6 * r.relay.sends.as_secs_f64() / r.relay.rtp_out.max(1) as f64,
    );
}

fn fmt(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// What one forwarder (SFU or relay) did in one window.
#[derive(Default)]
struct Run {
    rtp_out: u64,
    cpu: Duration,
    /// Wall time in `send_to` (a syscall each: what `sendmmsg` would batch).
    sends: Duration,
    wall: Duration,
    p50: Duration,
    p99: Duration,
    receivers_reached: usize,
}

impl Run {
    fn per_cpu_second(&self) -> f64 {
        self.rtp_out as f64 / self.cpu.as_secs_f64().max(1e-9)
    }
}

struct Outcome {
    receivers: usize,
    sfu: Run,
    relay: Run,
}

/// How a simulcast layer names itself: the header extension ids of `sdes:mid`
/// and `sdes:rtp-stream-id`, its mid and RTP stream id; and its frame height.
struct LayerTag {
    mid_id: u8,
    rid_id: u8,
    mid: String,
    rid: String,
    height: u16,
}

/// One peer: a socket of its own and an `rtc` peer connection.
struct Peer {
    name: String,
    socket: UdpSocket,
    addr: SocketAddr,
    pc: RTCPeerConnection,
    connected: bool,
    /// (ssrc, sender, payload type, packet size, packets per second).
    senders: Vec<(u32, RTCRtpSenderId, u8, usize, u32)>,
    /// Per sender: what names a simulcast layer.
    layers: Vec<Option<LayerTag>>,
    /// Latencies taken from decrypted payloads (simulcast runs).
    decrypted: Vec<Duration>,
    seq: u16,
    /// RTP packets received in the current window.
    received: u64,
}

impl Peer {
    fn new(name: String, now: Instant) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let addr = socket.local_addr().unwrap();
        let mut media = MediaEngine::default();
        media.register_default_codecs().unwrap();
        let registry = register_default_interceptors(Registry::new(), &mut media).unwrap();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .build(now)
            .unwrap();
        pc.add_local_candidate(media_client::host_candidate(addr).unwrap())
            .unwrap();
        Self {
            name,
            socket,
            addr,
            pc,
            connected: false,
            senders: Vec::new(),
            layers: Vec::new(),
            decrypted: Vec::new(),
            seq: 1,
            received: 0,
        }
    }

    /// Sendonly Opus and VP8 with SSRCs `base` and `base + 1`.
    fn publish(&mut self, base: u32) {
        let tracks = [
            (
                RtpCodecKind::Audio,
                MIME_TYPE_OPUS,
                48_000,
                2,
                111,
                AUDIO_BYTES,
                AUDIO_PPS,
            ),
            (
                RtpCodecKind::Video,
                MIME_TYPE_VP8,
                90_000,
                0,
                96,
                VIDEO_BYTES,
                VIDEO_PPS,
            ),
        ];
        for (i, (kind, mime, clock, channels, pt, bytes, pps)) in tracks.into_iter().enumerate() {
            let ssrc = base + i as u32;
            let coding = media_client::send_encoding(kind, mime, clock, channels, ssrc);
            let id = format!("{}-{ssrc:x}", self.name);
            let t = media_client::add_sendonly(&mut self.pc, id.clone(), id, kind, vec![coding])
                .unwrap();
            self.senders.push((ssrc, t, pt, bytes, pps));
            self.layers.push(None);
        }
    }

    /// Sendonly Opus (SSRC `base`) and a simulcast VP8 camera: the `LAYERS`,
    /// SSRCs `base + 1` on.
    fn publish_simulcast(&mut self, base: u32) {
        let coding =
            media_client::send_encoding(RtpCodecKind::Audio, MIME_TYPE_OPUS, 48_000, 2, base);
        let id = format!("{}-{base:x}", self.name);
        let audio = media_client::add_sendonly(
            &mut self.pc,
            id.clone(),
            id,
            RtpCodecKind::Audio,
            vec![coding],
        )
        .unwrap();
        self.senders
            .push((base, audio, 111, AUDIO_BYTES, AUDIO_PPS));
        self.layers.push(None);
        let layers = LAYERS
            .iter()
            .enumerate()
            .map(|(i, (rid, ..))| (*rid, base + 1 + i as u32));
        let id = format!("{}-camera", self.name);
        let t = media_client::add_sendonly(
            &mut self.pc,
            id.clone(),
            id,
            RtpCodecKind::Video,
            media_client::simulcast_encodings(layers),
        )
        .unwrap();
        for (i, (rid, pps, bytes, height)) in LAYERS.iter().enumerate() {
            self.senders
                .push((base + 1 + i as u32, t, 96, *bytes, *pps));
            // Extension ids and the mid are known once negotiated (`tag_layers`).
            self.layers.push(Some(LayerTag {
                mid_id: 0,
                rid_id: 0,
                mid: String::new(),
                rid: (*rid).to_owned(),
                height: *height,
            }));
        }
    }

    /// Fill in the negotiated mid and header extension ids of the simulcast layers.
    fn tag_layers(&mut self) {
        for (k, layer) in self.layers.iter_mut().enumerate() {
            let Some(tag) = layer.as_mut() else {
                continue;
            };
            let sender = self.senders[k].1;
            let id_of =
                |pc: &mut RTCPeerConnection, uri| media_client::extension_id(pc, sender, uri);
            tag.mid_id =
                id_of(&mut self.pc, rtc::sdp::extmap::SDES_MID_URI).expect("mid negotiated");
            tag.rid_id = id_of(&mut self.pc, rtc::sdp::extmap::SDES_RTP_STREAM_ID_URI)
                .expect("rid negotiated");
            tag.mid = self
                .pc
                .rtp_transceiver(sender.into())
                .and_then(|t| t.mid().clone())
                .expect("negotiated");
        }
    }

    fn offer(&mut self, now: Instant) -> String {
        if self.senders.is_empty() {
            self.pc.create_data_channel("bootstrap", None).unwrap();
        }
        let offer = self.pc.create_offer(None).unwrap();
        self.pc.set_local_description(now, offer).unwrap();
        self.pc.local_description().unwrap().sdp
    }

    fn read(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let msg = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: self.addr,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(data),
        };
        let _ = self.pc.handle_read(msg);
    }

    fn events(&mut self) {
        while let Some(ev) = self.pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = ev {
                self.connected = s == RTCPeerConnectionState::Connected;
            }
        }
        while let Some(msg) = self.pc.poll_read() {
            // Simulcast runs: the last 8 payload bytes are the send time.
            if let RTCMessage::RtpPacket(_, p) = msg.message {
                if let Some(sent) = p
                    .payload
                    .len()
                    .checked_sub(8)
                    .and_then(|at| p.payload.get(at..))
                {
                    let nanos = u64::from_be_bytes(sent.try_into().unwrap());
                    if let Some(t) = EPOCH.get() {
                        let at = *t + Duration::from_nanos(nanos);
                        self.decrypted
                            .push(Instant::now().saturating_duration_since(at));
                        self.received += 1;
                    }
                }
            }
        }
    }
}

/// An RTP (not RTCP, STUN or DTLS) datagram: version 2, payload type outside
/// RTCP's 72–76 (200–204 with the marker bit). SRTP leaves the header in clear.
fn rtp_header(data: &[u8]) -> Option<(u32, u16)> {
    if data.len() < 12 || data[0] >> 6 != 2 || (72..=76).contains(&(data[1] & 0x7f)) {
        return None;
    }
    let seq = u16::from_be_bytes([data[2], data[3]]);
    let ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
    Some((ssrc, seq))
}

/// Nanoseconds this thread has run on a CPU.
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text.split_whitespace().next().and_then(|n| n.parse().ok());
    Duration::from_nanos(ns.unwrap_or(0))
}

fn rss_kib(field: &str) -> u64 {
    common::status_kib("/proc/self/status", field)
}

struct Meeting {
    sfu: Sfu,
    socket: UdpSocket,
    addr: SocketAddr,
    peers: Vec<Peer>,
}

impl Meeting {
    /// `publishers` who also subscribe, and `viewers` who only subscribe; all
    /// connected to the SFU and every forwarded track negotiated.
    fn new(publishers: usize, viewers: usize) -> Self {
        Self::build(publishers, viewers, false)
    }

    /// `people` who all publish a simulcast camera and audio, and subscribe.
    fn simulcast(people: usize) -> Self {
        Self::build(people, 0, true)
    }

    fn build(publishers: usize, viewers: usize, simulcast: bool) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let sfu = Sfu::new(SfuConfig {
            candidate: addr,
            ice_tcp: true,
            max_sessions: publishers + viewers,
            delay_based_estimate: false,
        });
        let now = Instant::now();
        let mut peers = Vec::new();
        for i in 0..publishers + viewers {
            let mut p = Peer::new(format!("p{i}"), now);
            if i < publishers && simulcast {
                p.publish_simulcast(0x1000_0000 + 4 * i as u32);
            } else if i < publishers {
                p.publish(0x1000_0000 + 2 * i as u32);
            }
            peers.push(p);
        }
        let mut m = Self {
            sfu,
            socket,
            addr,
            peers,
        };
        // Signalling and the handshakes in memory, with the sockets' addresses,
        // so the SFU binds the addresses the media will come from.
        for i in 0..m.peers.len() {
            let now = Instant::now();
            let sdp = m.peers[i].offer(now);
            let publish = !m.peers[i].senders.is_empty();
            let participant = m.peers[i].name.clone();
            m.sfu.handle_input(
                MediaInput::Offer {
                    participant,
                    sdp,
                    publish,
                    subscribe: true,
                    screen: Vec::new(),
                },
                now,
            );
            m.route(now);
        }
        let start = Instant::now();
        let mut quiet_since = None;
        loop {
            let now = Instant::now();
            assert!(
                now - start < Duration::from_secs(60),
                "peers did not connect"
            );
            let moved = m.step_in_memory(now);
            let all = m.peers.iter().all(|p| p.connected);
            if all && !moved {
                let since = *quiet_since.get_or_insert(now);
                if now - since > Duration::from_millis(300) {
                    break;
                }
            } else {
                quiet_since = None;
            }
            if !moved {
                thread::sleep(Duration::from_micros(200));
            }
        }
        m.socket
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        for p in &mut m.peers {
            p.tag_layers();
        }
        m
    }

    fn step_in_memory(&mut self, now: Instant) -> bool {
        let mut moved = false;
        for i in 0..self.peers.len() {
            while let Some(msg) = self.peers[i].pc.poll_write() {
                moved = true;
                let input = MediaInput::Datagram {
                    source: self.peers[i].addr,
                    destination: self.addr,
                    transport: Transport::Udp,
                    data: msg.message.to_vec(),
                };
                self.sfu.handle_input(input, now);
                self.route(now);
            }
            self.peers[i].events();
            if self.peers[i].pc.poll_timeout().is_some_and(|t| t <= now) {
                let _ = self.peers[i].pc.handle_timeout(now);
            }
        }
        if self.sfu.poll_timeout().is_some_and(|t| t <= now) {
            self.sfu.handle_input(MediaInput::Timeout, now);
            self.route(now);
        }
        moved
    }

    /// Carry the SFU's outputs to the peers (in memory).
    fn route(&mut self, now: Instant) {
        let mut answers = Vec::new();
        while let Some(out) = self.sfu.poll_output() {
            match out {
                MediaOutput::Transmit {
                    destination, data, ..
                } => {
                    let from = self.addr;
                    if let Some(p) = self.peers.iter_mut().find(|p| p.addr == destination) {
                        p.read(now, from, &data);
                    }
                }
                MediaOutput::Answer { participant, sdp } => {
                    let p = self
                        .peers
                        .iter_mut()
                        .find(|p| p.name == participant)
                        .unwrap();
                    let answer = RTCSessionDescription::answer(sdp).unwrap();
                    p.pc.set_remote_description(now, answer).unwrap();
                }
                MediaOutput::Offer { participant, sdp } => {
                    let p = self
                        .peers
                        .iter_mut()
                        .find(|p| p.name == participant)
                        .unwrap();
                    let offer = RTCSessionDescription::offer(sdp).unwrap();
                    p.pc.set_remote_description(now, offer).unwrap();
                    let answer = p.pc.create_answer(None).unwrap();
                    p.pc.set_local_description(now, answer).unwrap();
                    let sdp = p.pc.local_description().unwrap().sdp;
                    answers.push(MediaInput::Answer { participant, sdp });
                }
                MediaOutput::Refused {
                    participant,
                    message,
                } => panic!("{participant}: {message}"),
                _ => {}
            }
        }
        for answer in answers {
            self.sfu.handle_input(answer, now);
            self.route(now);
        }
    }

    /// The SFU window, then the relay window with the same peers and load.
    fn measure(mut self, window: Duration) -> Outcome {
        let receivers = {
            let publishers = self.peers.iter().filter(|p| !p.senders.is_empty()).count();
            if publishers == self.peers.len() {
                publishers
            } else {
                self.peers.len() - publishers
            }
        };
        // The SFU's thread: its socket and its core, as in the room's media loop.
        let stop = Arc::new(AtomicBool::new(false));
        let (sfu, socket) = (self.sfu, self.socket);
        let flag = stop.clone();
        let forwarder = thread::Builder::new()
            .name("sfu".into())
            .spawn(move || sfu_loop(sfu, socket, &flag))
            .unwrap();
        let sfu_addr = self.addr;
        let (lat, reached) = drive(&mut self.peers, window, sfu_addr, None);
        stop.store(true, Ordering::Relaxed);
        let sfu_run = summarize(forwarder.join().unwrap(), lat, reached);

        // The relay: every RTP datagram of a publisher to every receiver.
        let relay = UdpSocket::bind("127.0.0.1:0").unwrap();
        relay
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        let relay_addr = relay.local_addr().unwrap();
        let routes: HashMap<SocketAddr, Vec<SocketAddr>> = self
            .peers
            .iter()
            .filter(|p| !p.senders.is_empty())
            .map(|p| {
                let to = self
                    .peers
                    .iter()
                    .filter(|q| {
                        q.addr != p.addr && (q.senders.is_empty() || receivers == self.peers.len())
                    })
                    .map(|q| q.addr)
                    .collect();
                (p.addr, to)
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let forwarder = thread::Builder::new()
            .name("relay".into())
            .spawn(move || relay_loop(relay, routes, &flag))
            .unwrap();
        let (lat, reached) = drive(&mut self.peers, window, sfu_addr, Some(relay_addr));
        stop.store(true, Ordering::Relaxed);
        let relay_run = summarize(forwarder.join().unwrap(), lat, reached);
        Outcome {
            receivers,
            sfu: sfu_run,
            relay: relay_run,
        }
    }
}

fn summarize(l: Loop, mut lat: Vec<Duration>, reached: usize) -> Run {
    lat.sort();
    let at = |q: f64| {
        lat.get(((lat.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    Run {
        rtp_out: l.rtp_out,
        cpu: l.cpu,
        wall: l.wall,
        sends: l.sends,
        p50: at(0.5),
        p99: at(0.99),
        receivers_reached: reached,
    }
}

/// The SFU behind its socket until `stop`: (RTP datagrams out, CPU, wall time).
fn sfu_loop(mut sfu: Sfu, socket: UdpSocket, stop: &AtomicBool) -> Loop {
    let (cpu0, wall0) = (thread_cpu(), Instant::now());
    let local = socket.local_addr().unwrap();
    let (mut rtp_out, mut sends) = (0, Duration::ZERO);
    // As the room's shell receives: wait for the first datagram, then take
    // what else is waiting with `recvmmsg`, feed it all, send once.
    let mut bufs = vec![vec![0u8; 2048]; RECV_BATCH];
    let mut got = Vec::with_capacity(RECV_BATCH);
    while !stop.load(Ordering::Relaxed) {
        match socket.recv_from(&mut bufs[0]) {
            Ok(first) => {
                got.clear();
                got.push(first);
                let _ = recv_batch(socket.as_fd(), &mut bufs[1..], &mut got);
                let now = Instant::now();
                for (b, (n, source)) in bufs.iter().zip(&got) {
                    let input = MediaInput::Datagram {
                        source: *source,
                        destination: local,
                        transport: Transport::Udp,
                        data: b[..*n].to_vec(),
                    };
                    sfu.handle_input(input, now);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("SFU socket: {e}"),
        }
        let now = Instant::now();
        if sfu.poll_timeout().is_some_and(|t| t <= now) {
            sfu.handle_input(MediaInput::Timeout, now);
        }
        let mut out = Vec::new();
        while let Some(o) = sfu.poll_output() {
            if let MediaOutput::Transmit {
                destination, data, ..
            } = o
            {
                rtp_out += u64::from(rtp_header(&data).is_some());
                out.push((destination, data));
            }
        }
        // As the room's shell sends: `sendmmsg`, up to 64 datagrams a call.
        let batch: Vec<(SocketAddr, &[u8])> =
            out.iter().map(|(to, d)| (*to, d.as_slice())).collect();
        let t = Instant::now();
        send_all(socket.as_fd(), &batch);
        sends += t.elapsed();
    }
    Loop {
        rtp_out,
        cpu: thread_cpu() - cpu0,
        wall: wall0.elapsed(),
        sends,
    }
}

/// What a forwarding thread reports: RTP datagrams out, its CPU and wall time,
/// and the wall time spent in `send_to`.
struct Loop {
    rtp_out: u64,
    cpu: Duration,
    wall: Duration,
    sends: Duration,
}

/// The baseline: copy each RTP datagram from a publisher to its receivers.
fn relay_loop(
    socket: UdpSocket,
    routes: HashMap<SocketAddr, Vec<SocketAddr>>,
    stop: &AtomicBool,
) -> Loop {
    let (cpu0, wall0) = (thread_cpu(), Instant::now());
    let mut buf = vec![0u8; 2048];
    let (mut rtp_out, mut sends) = (0, Duration::ZERO);
    while !stop.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buf) {
            Ok((n, source)) => {
                // A copy per receiver, as the SFU makes one per leg, sent in
                // batches as the SFU's are.
                let copies: Vec<(SocketAddr, Vec<u8>)> = routes
                    .get(&source)
                    .into_iter()
                    .flatten()
                    .map(|to| (*to, buf[..n].to_vec()))
                    .collect();
                rtp_out += copies.len() as u64;
                let batch: Vec<(SocketAddr, &[u8])> =
                    copies.iter().map(|(to, d)| (*to, d.as_slice())).collect();
                let t = Instant::now();
                send_all(socket.as_fd(), &batch);
                sends += t.elapsed();
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("relay socket: {e}"),
        }
    }
    Loop {
        rtp_out,
        cpu: thread_cpu() - cpu0,
        wall: wall0.elapsed(),
        sends,
    }
}

/// Run the peers for `window`: publishers send at their rates; RTP that reaches
/// a receiver is timed against its send (by SSRC and sequence number, which the
/// SFU keeps). With `relay`, publishers' RTP goes there instead of to the SFU,
/// and everything else still to the SFU. Returns latencies and how many peers
/// received any RTP.
fn drive(
    peers: &mut [Peer],
    window: Duration,
    sfu: SocketAddr,
    relay: Option<SocketAddr>,
) -> (Vec<Duration>, usize) {
    let start = Instant::now();
    let mut sent: HashMap<(u32, u16), Instant> = HashMap::new();
    let mut lat = Vec::new();
    let mut next_send: Vec<Vec<Instant>> = peers
        .iter()
        .map(|p| p.senders.iter().map(|_| start).collect())
        .collect();
    for p in peers.iter_mut() {
        p.received = 0;
    }
    let mut buf = vec![0u8; 2048];
    let mut seq_of: Vec<HashMap<u32, u16>> = peers.iter().map(|_| HashMap::new()).collect();
    let simulcast = peers.iter().any(|p| p.layers.iter().any(Option::is_some));
    let epoch = *EPOCH.get_or_init(Instant::now);
    while start.elapsed() < window {
        let now = Instant::now();
        for (i, p) in peers.iter_mut().enumerate() {
            for (k, &(ssrc, sender, pt, bytes, pps)) in p.senders.iter().enumerate() {
                if now < next_send[i][k] {
                    continue;
                }
                next_send[i][k] += Duration::from_secs(1) / pps;
                let layer = p.layers[k].as_ref();
                // The relay gets what the SFU forwards: audio and the small layer.
                if relay.is_some() && layer.is_some_and(|l| l.rid != LAYERS[0].0) {
                    continue;
                }
                let seq = seq_of[i].entry(ssrc).or_insert(p.seq);
                *seq = seq.wrapping_add(1);
                let mut payload = vec![0x10; bytes];
                if let Some(LayerTag { height, .. }) = layer {
                    // A VP8 frame start (15-bit picture id), a keyframe of
                    // its size every 30 packets.
                    let pic = *seq & 0x7fff;
                    payload[..4].copy_from_slice(&[0x90, 0x80, 0x80 | (pic >> 8) as u8, pic as u8]);
                    if *seq % 30 == 2 {
                        payload[4..12]
                            .copy_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05]);
                        payload[12..14].copy_from_slice(&height.to_le_bytes());
                    } else {
                        payload[4] = 0x11;
                    }
                }
                if simulcast {
                    let nanos = (now - epoch).as_nanos() as u64;
                    payload[bytes - 8..].copy_from_slice(&nanos.to_be_bytes());
                }
                let mut packet = rtc::rtp::Packet {
                    header: rtc::rtp::header::Header {
                        version: 2,
                        payload_type: pt,
                        sequence_number: *seq,
                        timestamp: u32::from(*seq) * 3000,
                        ssrc,
                        marker: true,
                        ..Default::default()
                    },
                    payload: bytes::Bytes::from(payload),
                };
                // A layer names itself on its first packets, as browsers do.
                if let Some(LayerTag {
                    mid_id,
                    rid_id,
                    mid,
                    rid,
                    ..
                }) = layer
                {
                    if *seq < 22 {
                        let h = &mut packet.header;
                        let _ =
                            h.set_extension(*mid_id, bytes::Bytes::from(mid.clone().into_bytes()));
                        let _ =
                            h.set_extension(*rid_id, bytes::Bytes::from(rid.clone().into_bytes()));
                    }
                }
                sent.insert((ssrc, *seq), now);
                let _ = p.pc.rtp_sender(sender).unwrap().write_rtp(now, packet);
            }
            while let Some(msg) = p.pc.poll_write() {
                let to = match relay {
                    Some(r) if rtp_header(&msg.message).is_some() => r,
                    _ => sfu,
                };
                let _ = p.socket.send_to(&msg.message, to);
            }
            while let Ok((n, from)) = p.socket.recv_from(&mut buf) {
                if simulcast && relay.is_none() && from == sfu {
                    // Renumbered: timed from the decrypted payload (`events`).
                    p.read(Instant::now(), from, &buf[..n]);
                } else if let Some(key) = rtp_header(&buf[..n]) {
                    // Timed, not decrypted: the receivers' cost is not measured.
                    if let Some(t) = sent.get(&key) {
                        lat.push(Instant::now() - *t);
                    }
                    p.received += 1;
                } else if from == sfu {
                    p.read(Instant::now(), from, &buf[..n]);
                }
            }
            p.events();
            if p.pc.poll_timeout().is_some_and(|t| t <= now) {
                let _ = p.pc.handle_timeout(now);
            }
        }
    }
    for p in peers.iter_mut() {
        lat.append(&mut p.decrypted);
    }
    let reached = peers.iter().filter(|p| p.received > 0).count();
    (lat, reached)
}
