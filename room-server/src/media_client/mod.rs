//! `MediaSession`: the media half of the Rust room client, and of the load
//! generator. It publishes synthetic Opus and VP8 RTP (one camera stream, or a
//! simulcast camera of three layers as browsers send it) and receives what the SFU
//! forwards, counting packets and frames per publisher.
//!
//! The peer is the sans-IO `rtc` peer connection the room server is built on; a
//! task owns it, its UDP socket (or, with [`Transport::Tcp`], its ICE-TCP
//! connection to the room) and its timers. Signalling stays with the caller's
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

mod peer;
mod synth;
mod tracks;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::media::keyframe::KeyframeRequestTap;
pub use crate::media::Transport;
use crate::protocol::{ClientMessage, ServerEvent};

use peer::{Link, Peer};
use rtc::shared::tcp_framing::TcpFrameDecoder;
use synth::{random_ssrc, Sender};
pub use tracks::{
    add_sendonly, extension_id, host_candidate, passive_tcp_candidate, send_encoding,
    simulcast_encodings, tcp_active_candidate,
};

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
    /// UDP (the default), or ICE-TCP: one TCP connection to the room's passive
    /// TCP candidate, as a browser behind a network that drops UDP ends up with.
    pub transport: Transport,
}

impl MediaOptions {
    /// Receive only (a data channel opens the session, as for a browser that
    /// only watches).
    pub fn receive_only(local_ip: IpAddr) -> Self {
        Self {
            local_ip,
            audio: false,
            video: None,
            transport: Transport::Udp,
        }
    }

    /// Publish audio and a camera (`video`) and receive.
    pub fn publish(local_ip: IpAddr, video: Video) -> Self {
        Self {
            local_ip,
            audio: true,
            video: Some(video),
            transport: Transport::Udp,
        }
    }

    /// The same session over ICE-TCP.
    pub fn over_tcp(self) -> Self {
        Self {
            transport: Transport::Tcp,
            ..self
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
pub(super) struct Counters {
    pub(super) connected: bool,
    pub(super) failed: bool,
    pub(super) audio_packets_sent: u64,
    pub(super) video_packets_sent: u64,
    pub(super) video_frames_sent: u64,
    pub(super) keyframes_sent: u64,
    pub(super) keyframe_requests: u64,
    pub(super) by_stream: HashMap<String, Received>,
    /// The task ended.
    pub(super) stopped: bool,
}

pub(super) enum Command {
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

pub(super) fn unpoisoned<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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
        let link = match opts.transport {
            Transport::Udp => {
                let socket = UdpSocket::bind((opts.local_ip, 0)).await?;
                let local = socket.local_addr()?;
                pc.add_local_candidate(host_candidate(local)?)?;
                Link::Udp { socket, local }
            }
            Transport::Tcp => {
                pc.add_local_candidate(tcp_active_candidate(opts.local_ip)?)?;
                Link::Tcp {
                    ip: opts.local_ip,
                    stream: None,
                    decoder: TcpFrameDecoder::new(),
                }
            }
        };
        let tag = format!("{:08x}", random_ssrc());
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
            link,
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
