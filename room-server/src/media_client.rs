//! `MediaSession`: the media half of the Rust room client, and of the load
//! generator. It publishes synthetic Opus and VP8 RTP (one camera stream, or a
//! simulcast camera of three layers as browsers send it) and receives what the SFU
//! forwards, counting packets and frames per publisher.
//!
//! The peer is the sans-IO `rtc` peer connection the room server is built on; a
//! task owns it, its UDP socket and its timers. Signalling stays with the caller's
//! [`crate::client::RoomClient`]: send the offer [`MediaSession::start`] returns,
//! then pass every media event the room sends to [`MediaSession::handle`] and send
//! back what it returns (the answer to a renegotiation offer).
//!
//! The media is synthetic: no codec runs. A VP8 frame is a payload descriptor (with
//! a 15-bit picture id and TL0PICIDX), a frame tag (keyframe with its size, or
//! delta) and filler, split into packets of at most [`MAX_PAYLOAD`] bytes with the
//! marker bit on the last; a keyframe every [`KEYFRAME_EVERY`] frames and at once
//! after a PLI or FIR. Audio is one 20-ms Opus-sized packet per 20 ms with an audio
//! level (RFC 6464) when negotiated, so the room's active speaker works.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::ice::candidate::CandidateConfig;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::sdp::extmap::{AUDIO_LEVEL_URI, SDES_MID_URI, SDES_RTP_STREAM_ID_URI};
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::media::keyframe::{is_keyframe_request, KeyframeRequestTap};
use crate::protocol::{ClientMessage, ServerEvent, TrackKind};

/// Largest RTP payload the synthetic video is split into (browsers stay near
/// 1,200 bytes of packet).
pub const MAX_PAYLOAD: usize = 1100;
/// Video frames per second, every layer.
pub const FRAME_RATE: u32 = 30;
/// A keyframe this often (frames) unless asked for one sooner.
pub const KEYFRAME_EVERY: u32 = 60;
/// Opus packets per second (20-ms frames) and their size.
const AUDIO_PPS: u32 = 50;
const AUDIO_BYTES: usize = 80;
/// The payload types of the room's codec table (`media::codecs`), which our
/// offer uses.
const OPUS_PT: u8 = 111;
const VP8_PT: u8 = 96;
/// The layers of a simulcast camera, as the web page sends them: RTP stream id,
/// height (16:9) and bit rate.
pub const SIMULCAST_LAYERS: [(&str, u16, u32); 3] = [
    ("q", 180, 150_000),
    ("h", 360, 500_000),
    ("f", 720, 1_500_000),
];
/// A camera without simulcast: height and bit rate.
pub const CAMERA: (u16, u32) = (360, 500_000);
/// Commands queued towards the session's task.
const COMMANDS: usize = 16;

/// What the session sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Video {
    /// One VP8 stream ([`CAMERA`]).
    Camera,
    /// Three VP8 layers ([`SIMULCAST_LAYERS`]), each with its RTP stream id.
    Simulcast,
}

/// How to start a media session.
#[derive(Debug, Clone)]
pub struct MediaOptions {
    /// The local address of the media socket: one the room's media port is
    /// reachable from (see [`local_ip_towards`]).
    pub local_ip: IpAddr,
    /// Publish a synthetic Opus track.
    pub audio: bool,
    /// Publish a synthetic VP8 camera.
    pub video: Option<Video>,
}

impl MediaOptions {
    /// Receive only (a data channel opens the session, as for a browser that
    /// only watches).
    pub fn receive_only(local_ip: IpAddr) -> Self {
        Self {
            local_ip,
            audio: false,
            video: None,
        }
    }

    /// Publish audio and a camera (`video`) and receive.
    pub fn publish(local_ip: IpAddr, video: Video) -> Self {
        Self {
            local_ip,
            audio: true,
            video: Some(video),
        }
    }
}

/// Why a media session failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("WebRTC: {0}")]
    Rtc(#[from] rtc::shared::error::Error),
    #[error("media socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("the media session has ended")]
    Ended,
    #[error("room connection: {0}")]
    Client(#[from] crate::client::ClientError),
}

/// What arrived from one publisher.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    pub audio_packets: u64,
    pub video_packets: u64,
    /// Video frames completed (packets with the marker bit).
    pub video_frames: u64,
    /// RTP payload bytes, audio and video.
    pub bytes: u64,
}

/// A snapshot of the session's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaStats {
    /// ICE and DTLS are up.
    pub connected: bool,
    /// The room ended the session (`media_ended`), or it failed.
    pub ended: bool,
    pub audio_packets_sent: u64,
    pub video_packets_sent: u64,
    pub video_frames_sent: u64,
    pub keyframes_sent: u64,
    /// PLI/FIR that reached us for our camera.
    pub keyframe_requests: u64,
    /// Per publisher (participant id, from the room's `track` events).
    pub received: BTreeMap<String, Received>,
    /// Packets whose publisher no `track` event named (yet).
    pub unattributed: Received,
}

impl MediaStats {
    /// Video frames received from everyone.
    pub fn video_frames_received(&self) -> u64 {
        self.received.values().map(|r| r.video_frames).sum()
    }
}

/// The counters the task keeps, per media stream id (one per publisher's camera
/// and microphone; its screen has another).
#[derive(Debug, Default)]
struct Counters {
    connected: bool,
    failed: bool,
    audio_packets_sent: u64,
    video_packets_sent: u64,
    video_frames_sent: u64,
    keyframes_sent: u64,
    keyframe_requests: u64,
    by_stream: HashMap<String, Received>,
    /// The task ended.
    stopped: bool,
}

enum Command {
    /// The room's answer to our offer.
    Answer(String),
    /// A room offer; reply with our answer's SDP.
    Offer(String, oneshot::Sender<Result<String, MediaError>>),
}

/// One media session: a peer connection in a task of its own.
#[derive(Debug)]
pub struct MediaSession {
    commands: mpsc::Sender<Command>,
    stats: StatsReader,
    task: JoinHandle<()>,
}

/// Reads a session's counters from anywhere (cheap to clone).
#[derive(Debug, Clone)]
pub struct StatsReader {
    counters: Arc<Mutex<Counters>>,
    /// Media stream id → publisher, from `track` events.
    owners: Arc<Mutex<HashMap<String, String>>>,
    /// `media_ended` arrived.
    ended: Arc<std::sync::atomic::AtomicBool>,
}

fn unpoisoned<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere mid-update leaves counters, still counters.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl StatsReader {
    /// The counters now.
    pub fn get(&self) -> MediaStats {
        let c = unpoisoned(&self.counters);
        let owners = unpoisoned(&self.owners);
        let mut stats = MediaStats {
            connected: c.connected,
            ended: self.ended.load(std::sync::atomic::Ordering::Relaxed) || c.failed || c.stopped,
            audio_packets_sent: c.audio_packets_sent,
            video_packets_sent: c.video_packets_sent,
            video_frames_sent: c.video_frames_sent,
            keyframes_sent: c.keyframes_sent,
            keyframe_requests: c.keyframe_requests,
            ..MediaStats::default()
        };
        for (stream, r) in &c.by_stream {
            let into = match owners.get(stream) {
                Some(owner) => stats.received.entry(owner.clone()).or_default(),
                None => &mut stats.unattributed,
            };
            into.audio_packets += r.audio_packets;
            into.video_packets += r.video_packets;
            into.video_frames += r.video_frames;
            into.bytes += r.bytes;
        }
        stats
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The local address a UDP socket would send from to reach `host` (no packet is
/// sent): what [`MediaOptions::local_ip`] should be for a room at `host`.
pub fn local_ip_towards(host: IpAddr) -> std::io::Result<IpAddr> {
    let any: IpAddr = if host.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    let probe = std::net::UdpSocket::bind((any, 0))?;
    probe.connect((host, 9))?;
    Ok(probe.local_addr()?.ip())
}

impl MediaSession {
    /// Bind the media socket, build the peer and its tracks, and return the
    /// session with the `offer` to send on the room's WebSocket.
    pub async fn start(opts: MediaOptions) -> Result<(Self, ClientMessage), MediaError> {
        let socket = UdpSocket::bind((opts.local_ip, 0)).await?;
        let local = socket.local_addr()?;
        let now = Instant::now();
        // The room's own codec table (Opus 111, VP8 96, the audio level).
        let mut media = crate::media::codecs::media_engine()?;
        let registry = register_default_interceptors(Registry::new(), &mut media)?;
        let registry = registry.with(
            rtc::interceptor::Slot::Custom(14_000),
            KeyframeRequestTap::default(),
        );
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .build(now)?;
        pc.add_local_candidate(host_candidate(local)?)?;
        let tag = format!("{:08x}", local.port() as u32 ^ std::process::id());
        let mut senders = Vec::new();
        if opts.audio {
            let ssrc = random_ssrc();
            let coding = send_encoding(RtpCodecKind::Audio, MIME_TYPE_OPUS, 48_000, 2, ssrc);
            let id = add_sendonly(
                &mut pc,
                format!("mic-{tag}"),
                format!("mic-{tag}"),
                RtpCodecKind::Audio,
                vec![coding],
            )?;
            senders.push(Sender::audio(id, ssrc));
        }
        match opts.video {
            Some(Video::Camera) => {
                let ssrc = random_ssrc();
                let coding = send_encoding(RtpCodecKind::Video, MIME_TYPE_VP8, 90_000, 0, ssrc);
                let id = add_sendonly(
                    &mut pc,
                    format!("camera-{tag}"),
                    format!("camera-{tag}"),
                    RtpCodecKind::Video,
                    vec![coding],
                )?;
                senders.push(Sender::video(id, ssrc, None, CAMERA));
            }
            Some(Video::Simulcast) => {
                let layers: Vec<(&str, u32)> = SIMULCAST_LAYERS
                    .iter()
                    .map(|(rid, ..)| (*rid, random_ssrc()))
                    .collect();
                let id = add_sendonly(
                    &mut pc,
                    format!("camera-{tag}"),
                    format!("camera-{tag}"),
                    RtpCodecKind::Video,
                    simulcast_encodings(layers.iter().copied()),
                )?;
                for ((rid, ssrc), (_, height, rate)) in layers.iter().zip(SIMULCAST_LAYERS) {
                    senders.push(Sender::video(
                        id,
                        *ssrc,
                        Some((*rid).to_owned()),
                        (height, rate),
                    ));
                }
            }
            None => {}
        }
        if senders.is_empty() {
            pc.create_data_channel("bootstrap", None)?;
        }
        let offer = pc.create_offer(None)?;
        pc.set_local_description(now, offer)?;
        let sdp = pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or(MediaError::Ended)?;
        let counters = Arc::new(Mutex::new(Counters::default()));
        let (tx, rx) = mpsc::channel(COMMANDS);
        let peer = Peer {
            pc,
            socket,
            local,
            senders,
            counters: counters.clone(),
            tracks: HashMap::new(),
            negotiated: false,
        };
        let task = tokio::spawn(peer.run(rx));
        let session = Self {
            commands: tx,
            stats: StatsReader {
                counters,
                owners: Arc::default(),
                ended: Arc::default(),
            },
            task,
        };
        Ok((
            session,
            ClientMessage::Offer {
                sdp,
                screen: Vec::new(),
            },
        ))
    }

    /// Take one event from the room: answers, offers, `track` and `media_ended`
    /// concern the session (other events are ignored). Returns what to send back.
    pub async fn handle(
        &mut self,
        event: &ServerEvent,
    ) -> Result<Option<ClientMessage>, MediaError> {
        match event {
            ServerEvent::Answer { sdp } => {
                self.command(Command::Answer(sdp.clone())).await?;
                Ok(None)
            }
            ServerEvent::Offer { sdp } => {
                let (tx, rx) = oneshot::channel();
                self.command(Command::Offer(sdp.clone(), tx)).await?;
                let sdp = rx.await.map_err(|_| MediaError::Ended)??;
                Ok(Some(ClientMessage::Answer { sdp }))
            }
            ServerEvent::Track {
                participant_id,
                stream_id,
                removed: false,
                ..
            } => {
                unpoisoned(&self.stats.owners).insert(stream_id.clone(), participant_id.clone());
                Ok(None)
            }
            ServerEvent::MediaEnded { reason } => {
                tracing::debug!(?reason, "the room ended our media session");
                self.stats
                    .ended
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    async fn command(&self, c: Command) -> Result<(), MediaError> {
        self.commands.send(c).await.map_err(|_| MediaError::Ended)
    }

    /// The counters now.
    pub fn stats(&self) -> MediaStats {
        self.stats.get()
    }

    /// A reader of the counters for another task.
    pub fn stats_reader(&self) -> StatsReader {
        self.stats.clone()
    }

    /// Serve the session's signalling on `client` until the room connection
    /// closes (`Ok`) or the session fails: every event goes to [`Self::handle`],
    /// every reply back to the room, and so does whatever arrives on `outgoing`
    /// (chat, `watch`, `media_state`…; closing it is fine). Other events are
    /// dropped.
    pub async fn pump(
        &mut self,
        client: &mut crate::client::RoomClient,
        mut outgoing: mpsc::Receiver<ClientMessage>,
    ) -> Result<(), MediaError> {
        let mut open = true;
        loop {
            tokio::select! {
                msg = outgoing.recv(), if open => match msg {
                    Some(msg) => client.send(&msg).await?,
                    None => open = false,
                },
                item = client.recv() => {
                    let Some(item) = item else { return Ok(()) };
                    let crate::client::Incoming::Event(env) = item else {
                        continue;
                    };
                    if let Some(reply) = self.handle(&env.event).await? {
                        client.send(&reply).await?;
                    }
                }
            }
        }
    }
}

/// One synthetic RTP stream we send.
struct Sender {
    id: RTCRtpSenderId,
    ssrc: u32,
    kind: TrackKind,
    /// Simulcast: the RTP stream id, written with the mid on every packet.
    rid: Option<String>,
    height: u16,
    /// Bytes per video frame, from the layer's bit rate.
    frame_bytes: usize,
    seq: u16,
    frames: u32,
    keyframe_due: bool,
    next: Instant,
}

impl Sender {
    fn audio(id: RTCRtpSenderId, ssrc: u32) -> Self {
        Self {
            frame_bytes: AUDIO_BYTES,
            ..Self::base(id, ssrc, TrackKind::Audio)
        }
    }

    fn video(
        id: RTCRtpSenderId,
        ssrc: u32,
        rid: Option<String>,
        (height, rate): (u16, u32),
    ) -> Self {
        Self {
            rid,
            height,
            frame_bytes: (rate / 8 / FRAME_RATE) as usize,
            ..Self::base(id, ssrc, TrackKind::Video)
        }
    }

    fn base(id: RTCRtpSenderId, ssrc: u32, kind: TrackKind) -> Self {
        Self {
            id,
            ssrc,
            kind,
            rid: None,
            height: 0,
            frame_bytes: 0,
            seq: (ssrc >> 16) as u16,
            frames: 0,
            keyframe_due: true,
            next: Instant::now(),
        }
    }

    fn interval(&self) -> Duration {
        match self.kind {
            TrackKind::Audio => Duration::from_secs(1) / AUDIO_PPS,
            TrackKind::Video => Duration::from_secs(1) / FRAME_RATE,
        }
    }

    /// The packets of this stream's next frame (marker flags), and whether it
    /// is a keyframe.
    fn frame(&mut self) -> (Vec<(Vec<u8>, bool)>, bool) {
        let n = self.frames;
        self.frames = n.wrapping_add(1);
        match self.kind {
            TrackKind::Audio => (vec![(vec![0xfc; AUDIO_BYTES], true)], false),
            TrackKind::Video => {
                let keyframe = self.keyframe_due || n.is_multiple_of(KEYFRAME_EVERY);
                self.keyframe_due = false;
                let size = keyframe.then_some((self.height * 16 / 9, self.height));
                (
                    vp8_frame(n as u16, n as u8, size, self.frame_bytes),
                    keyframe,
                )
            }
        }
    }

    fn timestamp(&self) -> u32 {
        match self.kind {
            TrackKind::Audio => self.frames.wrapping_mul(960),
            TrackKind::Video => self.frames.wrapping_mul(90_000 / FRAME_RATE),
        }
    }
}

/// A synthetic VP8 frame as RTP payloads (marker flag on the last): descriptor
/// with picture id and TL0PICIDX on each, the frame tag on the first (keyframe:
/// start code and `size`), `bytes` in all.
fn vp8_frame(
    picture_id: u16,
    tl0: u8,
    size: Option<(u16, u16)>,
    bytes: usize,
) -> Vec<(Vec<u8>, bool)> {
    let mut tag = match size {
        Some((w, h)) => {
            let mut t = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
            t.extend_from_slice(&w.to_le_bytes());
            t.extend_from_slice(&h.to_le_bytes());
            t
        }
        None => vec![0x11, 0x02, 0x00],
    };
    let descriptor = |start: bool| {
        vec![
            if start { 0x90 } else { 0x80 },
            0xc0,
            0x80 | (picture_id >> 8) as u8 & 0x7f,
            picture_id as u8,
            tl0,
        ]
    };
    let body = bytes.max(tag.len() + 1);
    let room = MAX_PAYLOAD - 5;
    let count = body.div_ceil(room);
    let mut left = body;
    (0..count)
        .map(|i| {
            let mut p = descriptor(i == 0);
            let take = left.min(room);
            left -= take;
            if i == 0 {
                p.append(&mut tag);
            }
            p.resize(5 + take, 0xaa);
            (p, i + 1 == count)
        })
        .collect()
}

/// The task's side: the peer connection, its socket and the streams it sends.
struct Peer {
    pc: RTCPeerConnection,
    socket: UdpSocket,
    local: SocketAddr,
    senders: Vec<Sender>,
    counters: Arc<Mutex<Counters>>,
    /// Received track id → (media stream id, kind).
    tracks: HashMap<String, (String, RtpCodecKind)>,
    /// The room answered our offer: media may flow.
    negotiated: bool,
}

impl Peer {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut buf = vec![0u8; 2048];
        loop {
            let now = Instant::now();
            let next_media = self
                .senders
                .iter()
                .map(|s| s.next)
                .min()
                .filter(|_| self.negotiated && self.connected());
            let wake = [self.pc.poll_timeout(), next_media]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + Duration::from_millis(100))
                .max(now);
            tokio::select! {
                got = self.socket.recv_from(&mut buf) => match got {
                    Ok((n, from)) => self.read(from, &buf[..n]),
                    Err(e) => {
                        tracing::debug!(error = %e, "media socket read failed");
                    }
                },
                cmd = commands.recv() => match cmd {
                    Some(c) => self.command(c),
                    None => break,
                },
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
            }
            // Timers and media run whichever branch woke us, so a busy socket
            // cannot starve them.
            let now = Instant::now();
            if self.pc.poll_timeout().is_some_and(|t| t <= now) {
                let _ = self.pc.handle_timeout(now);
            }
            if self.negotiated && self.connected() {
                self.send_media(now);
            }
            self.drain().await;
            if self.lock().failed {
                break;
            }
        }
        self.lock().stopped = true;
        let _ = self.pc.close();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        unpoisoned(&self.counters)
    }

    fn connected(&self) -> bool {
        self.lock().connected
    }

    fn command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::Answer(sdp) => {
                let result = RTCSessionDescription::answer(sdp)
                    .and_then(|answer| self.pc.set_remote_description(now, answer));
                match result {
                    Ok(()) => self.negotiated = true,
                    Err(e) => {
                        tracing::warn!(error = %e, "the room's answer was refused");
                        self.lock().failed = true;
                    }
                }
            }
            Command::Offer(sdp, reply) => {
                let answer = (|| {
                    let offer = RTCSessionDescription::offer(sdp)?;
                    self.pc.set_remote_description(now, offer)?;
                    let answer = self.pc.create_answer(None)?;
                    self.pc.set_local_description(now, answer)?;
                    self.pc.local_description().map(|d| d.sdp).ok_or(
                        rtc::shared::error::Error::Other("no local description".into()),
                    )
                })();
                let _ = reply.send(answer.map_err(MediaError::from));
            }
        }
    }

    fn read(&mut self, from: SocketAddr, data: &[u8]) {
        let msg = TaggedBytesMut {
            now: Instant::now(),
            transport: TransportContext {
                local_addr: self.local,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(data),
        };
        if let Err(e) = self.pc.handle_read(msg) {
            tracing::trace!(error = %e, "a datagram was refused");
        }
    }

    /// The negotiated id of header extension `uri` on sender `id`.
    fn extension_id(&mut self, id: RTCRtpSenderId, uri: &str) -> Option<u8> {
        let mut s = self.pc.rtp_sender(id)?;
        let params = &s.get_parameters().rtp_parameters;
        let ext = params.header_extensions.iter().find(|e| e.uri == uri)?;
        u8::try_from(ext.id).ok()
    }

    /// Write every stream's due frames.
    fn send_media(&mut self, now: Instant) {
        for i in 0..self.senders.len() {
            if self.senders[i].next > now {
                continue;
            }
            let id = self.senders[i].id;
            let rid = self.senders[i].rid.clone();
            let kind = self.senders[i].kind;
            // Simulcast layers name themselves (mid and rid) on every packet;
            // browsers stop after the first receiver report, which the room's
            // `rtc` copes with too.
            let names = match &rid {
                Some(rid) => {
                    let mid = self
                        .pc
                        .rtp_transceiver(id.into())
                        .and_then(|t| t.mid().clone());
                    let ids = (
                        self.extension_id(id, SDES_MID_URI),
                        self.extension_id(id, SDES_RTP_STREAM_ID_URI),
                    );
                    match (mid, ids) {
                        (Some(mid), (Some(m), Some(r))) => Some((m, mid, r, rid.clone())),
                        _ => None,
                    }
                }
                None => None,
            };
            let level = match kind {
                TrackKind::Audio => self.extension_id(id, AUDIO_LEVEL_URI),
                TrackKind::Video => None,
            };
            let s = &mut self.senders[i];
            let interval = s.interval();
            // Catch up at most one frame late; a stalled task does not burst.
            s.next = (s.next + interval).max(now);
            let timestamp = s.timestamp();
            let (packets, keyframe) = s.frame();
            let (ssrc, pt) = match kind {
                TrackKind::Audio => (s.ssrc, OPUS_PT),
                TrackKind::Video => (s.ssrc, VP8_PT),
            };
            let mut written = 0;
            for (payload, marker) in packets {
                let seq = s.seq;
                s.seq = seq.wrapping_add(1);
                let mut packet = rtc::rtp::Packet {
                    header: rtc::rtp::header::Header {
                        version: 2,
                        payload_type: pt,
                        sequence_number: seq,
                        timestamp,
                        ssrc,
                        marker,
                        ..Default::default()
                    },
                    payload: Bytes::from(payload),
                };
                if let Some((mid_id, mid, rid_id, rid)) = &names {
                    let h = &mut packet.header;
                    let _ = h.set_extension(*mid_id, Bytes::from(mid.clone().into_bytes()));
                    let _ = h.set_extension(*rid_id, Bytes::from(rid.clone().into_bytes()));
                }
                if let Some(level_id) = level {
                    // Voice activity bit and -30 dBov: someone talking.
                    let _ = packet
                        .header
                        .set_extension(level_id, Bytes::from_static(&[0x80 | 30]));
                }
                let Some(mut sender) = self.pc.rtp_sender(id) else {
                    break;
                };
                if sender.write_rtp(now, packet).is_ok() {
                    written += 1;
                }
            }
            let mut c = self.lock();
            match kind {
                TrackKind::Audio => c.audio_packets_sent += written,
                TrackKind::Video => {
                    c.video_packets_sent += written;
                    c.video_frames_sent += 1;
                    c.keyframes_sent += u64::from(keyframe);
                }
            }
        }
    }

    /// Move everything the peer has queued: events, received media, datagrams.
    async fn drain(&mut self) {
        while let Some(ev) = self.pc.poll_event() {
            match ev {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => {
                    let mut c = self.lock();
                    c.connected = s == RTCPeerConnectionState::Connected;
                    if s == RTCPeerConnectionState::Failed {
                        c.failed = true;
                    }
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    let kind = self
                        .pc
                        .rtp_receiver(init.receiver_id)
                        .map(|r| r.track().kind());
                    if let (Some(kind), Some(stream)) = (kind, init.stream_ids.first()) {
                        self.tracks
                            .insert(init.track_id.clone(), (stream.clone(), kind));
                    }
                }
                _ => {}
            }
        }
        while let Some(msg) = self.pc.poll_read() {
            match msg.message {
                RTCMessage::RtpPacket(track, p) => {
                    let Some((stream, kind)) = self.tracks.get(&track).cloned() else {
                        continue;
                    };
                    let mut c = self.lock();
                    let r = c.by_stream.entry(stream).or_default();
                    r.bytes += p.payload.len() as u64;
                    match kind {
                        RtpCodecKind::Audio => r.audio_packets += 1,
                        _ => {
                            r.video_packets += 1;
                            r.video_frames += u64::from(p.header.marker);
                        }
                    }
                }
                RTCMessage::RtcpPacket(_, packets) => {
                    for p in &packets {
                        if !is_keyframe_request(p.as_ref()) {
                            continue;
                        }
                        self.lock().keyframe_requests += 1;
                        let asked = p.destination_ssrc();
                        for s in &mut self.senders {
                            if asked.contains(&s.ssrc) {
                                s.keyframe_due = true;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        while let Some(msg) = self.pc.poll_write() {
            let to = msg.transport.peer_addr;
            if let Err(e) = self.socket.send_to(&msg.message, to).await {
                tracing::debug!(error = %e, %to, "media send failed");
            }
        }
    }
}

fn random_ssrc() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() as u32).max(1)
}

/// One encoding of `mime` at `clock` Hz with a fixed `ssrc`; Opus gets the
/// `fmtp` browsers use.
pub fn send_encoding(
    kind: RtpCodecKind,
    mime: &str,
    clock: u32,
    channels: u16,
    ssrc: u32,
) -> RTCRtpEncodingParameters {
    RTCRtpEncodingParameters {
        rtp_coding_parameters: RTCRtpCodingParameters {
            ssrc: Some(ssrc),
            ..Default::default()
        },
        active: true,
        codec: RTCRtpCodec {
            mime_type: mime.to_owned(),
            clock_rate: clock,
            channels,
            sdp_fmtp_line: if kind == RtpCodecKind::Audio {
                "minptime=10;useinbandfec=1".to_owned()
            } else {
                String::new()
            },
            rtcp_feedback: vec![],
        },
        ..Default::default()
    }
}

/// VP8 encodings of a simulcast camera, one per (RTP stream id, SSRC).
pub fn simulcast_encodings<'a>(
    layers: impl IntoIterator<Item = (&'a str, u32)>,
) -> Vec<RTCRtpEncodingParameters> {
    layers
        .into_iter()
        .map(|(rid, ssrc)| {
            let mut e = send_encoding(RtpCodecKind::Video, MIME_TYPE_VP8, 90_000, 0, ssrc);
            e.rtp_coding_parameters.rid = rid.to_owned();
            e
        })
        .collect()
}

/// A sendonly transceiver on `pc` for one track sending `codings`: one
/// encoding, or several with RTP stream ids (simulcast).
pub fn add_sendonly(
    pc: &mut RTCPeerConnection,
    stream: String,
    id: String,
    kind: RtpCodecKind,
    codings: Vec<RTCRtpEncodingParameters>,
) -> Result<RTCRtpSenderId, MediaError> {
    let send_encodings = if codings.len() > 1 {
        codings.clone()
    } else {
        Vec::new()
    };
    let track = MediaStreamTrack::new(stream, id.clone(), id, kind, codings);
    let init = RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Sendonly,
        streams: Vec::new(),
        send_encodings,
    };
    let transceiver = pc.add_transceiver_from_track(track, Some(init))?;
    Ok(RTCRtpSenderId::from(transceiver))
}

/// `addr` as a peer connection's one host candidate (UDP).
pub fn host_candidate(addr: SocketAddr) -> Result<RTCIceCandidateInit, MediaError> {
    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    Ok(RTCIceCandidate::from(&host).to_json()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::vp8;

    #[test]
    fn a_synthetic_frame_is_vp8_the_sfu_can_read() {
        let packets = vp8_frame(300, 7, Some((1280, 720)), 6250);
        assert_eq!(packets.len(), 6);
        assert!(packets.iter().all(|(p, _)| p.len() <= MAX_PAYLOAD));
        let marked: Vec<bool> = packets.iter().map(|(_, m)| *m).collect();
        assert_eq!(marked, [false, false, false, false, false, true]);
        let first = vp8::parse(&packets[0].0).expect("a VP8 descriptor");
        assert!(first.start && first.keyframe);
        assert_eq!(first.size, Some((1280, 720)));
        assert_eq!(first.picture_id, Some((300, true)));
        assert_eq!(first.tl0_pic_idx, Some(7));
        let rest = vp8::parse(&packets[1].0).expect("a VP8 descriptor");
        assert!(!rest.start);
        assert_eq!(rest.picture_id, Some((300, true)));
        let delta = vp8_frame(301, 7, None, 625);
        assert_eq!(delta.len(), 1);
        let d = vp8::parse(&delta[0].0).unwrap();
        assert!(d.start && !d.keyframe && delta[0].1);
        let total: usize = packets.iter().map(|(p, _)| p.len() - 5).sum();
        assert_eq!(total, 6250);
    }
}
