//! The test network: browser-like `rtc` peers and the SFU, datagrams carried
//! between made-up addresses on a simulated clock.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{RTCRtpHeaderExtensionCapability, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::sdp::extmap::{AUDIO_LEVEL_URI, SDES_MID_URI, SDES_RTP_STREAM_ID_URI};
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use crate::media::keyframe::KeyframeRequestTap;
use crate::media::{MediaCore, MediaInput, MediaKind, MediaOutput, Sfu, SfuConfig, Transport};
use crate::media_client;

pub(super) const SFU_ADDR: &str = "10.0.0.1:40000";
pub(super) const AUDIO_SSRC: u32 = 0x1111_0001;
pub(super) const VIDEO_SSRC: u32 = 0x2222_0002;

/// One browser-like client.
pub(super) struct Peer {
    pub(super) name: String,
    pub(super) addr: SocketAddr,
    pub(super) pc: RTCPeerConnection,
    pub(super) connected: bool,
    /// RTP received: (ssrc, sequence number, payload).
    pub(super) rtp: Vec<(u32, u16, Vec<u8>)>,
    /// Track announcements: mid → (owner, kind, added).
    pub(super) tracks: HashMap<String, (String, MediaKind, bool)>,
    pub(super) offers: usize,
    /// Leave server offers unanswered (a client that went quiet).
    pub(super) ignore_offers: bool,
    /// Keyframe requests received.
    pub(super) plis: usize,
    /// The next RTP sequence number to send (SRTP refuses replays, so never reuse).
    pub(super) next_seq: u16,
    pub(super) senders: Vec<(u32, RTCRtpSenderId)>,
    /// The SFU ended this peer's session by itself.
    pub(super) ended: bool,
    /// Mids the SFU announced as a shared screen, with their stream id.
    pub(super) screens: HashMap<String, String>,
    /// No datagram reaches this peer or leaves it (UDP blocked).
    pub(super) blackholed: bool,
    /// Drop every n-th VP8 RTP datagram the SFU sends this peer.
    pub(super) drop_every_nth_video: Option<usize>,
    video_datagrams: usize,
    /// Video datagrams dropped by `drop_every_nth_video`.
    pub(super) dropped: usize,
    /// The SSRC of every RTX datagram (payload type 97) that reached this peer.
    pub(super) rtx: Vec<u32>,
    /// The RFC 6464 level (−dBov) put on this peer's audio packets, if any.
    pub(super) audio_level: Option<u8>,
    /// The SSRC of this peer's audio track (Opus), when it publishes.
    audio_ssrc: u32,
    /// The media SSRC of every keyframe request received, in order.
    pub(super) pli_ssrcs: Vec<u32>,
    /// A policer on what the SFU sends this peer: bits per second, and the
    /// bucket (bits) left at the last datagram.
    pub(super) rate_limit: Option<(u64, f64, Instant)>,
    /// Datagrams the policer dropped.
    pub(super) policed: usize,
    /// A simulcast video track: its sender and its layers (rid, SSRC), smallest first.
    simulcast: Option<(RTCRtpSenderId, Vec<(String, u32)>)>,
    /// Frames sent on the simulcast track.
    frames: u16,
    /// A bottleneck towards this peer: its rate, when the link is next free,
    /// and the datagrams queued on it (arrival instant, source, bytes). No loss:
    /// the queue only grows, so what it costs is delay.
    #[allow(clippy::type_complexity)]
    shaper: Option<(u64, Instant, VecDeque<(Instant, SocketAddr, Vec<u8>)>)>,
}

impl Peer {
    pub(super) fn new(name: &str, port: u16, now: Instant) -> Self {
        let mut media = MediaEngine::default();
        media.register_default_codecs().unwrap();
        media
            .register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: AUDIO_LEVEL_URI.to_owned(),
                },
                RtpCodecKind::Audio,
                None,
            )
            .unwrap();
        let registry = register_default_interceptors(Registry::new(), &mut media).unwrap();
        // So the test sees the keyframe requests the SFU relays.
        let registry = registry.with(Slot::Custom(14_000), KeyframeRequestTap::default());
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .build(now)
            .unwrap();
        let addr: SocketAddr = format!("10.0.0.2:{port}").parse().unwrap();
        pc.add_local_candidate(media_client::host_candidate(addr).unwrap())
            .unwrap();
        Self {
            name: name.to_owned(),
            addr,
            pc,
            connected: false,
            rtp: Vec::new(),
            tracks: HashMap::new(),
            offers: 0,
            ignore_offers: false,
            plis: 0,
            next_seq: 1000,
            senders: Vec::new(),
            ended: false,
            screens: HashMap::new(),
            blackholed: false,
            drop_every_nth_video: None,
            video_datagrams: 0,
            dropped: 0,
            rtx: Vec::new(),
            audio_level: None,
            audio_ssrc: AUDIO_SSRC,
            pli_ssrcs: Vec::new(),
            rate_limit: None,
            policed: 0,
            simulcast: None,
            frames: 0,
            shaper: None,
        }
    }

    /// Police what reaches this peer to `bits_per_second` (a bucket of 100 ms).
    pub(super) fn limit_to(&mut self, bits_per_second: u64, now: Instant) {
        self.rate_limit = Some((bits_per_second, bits_per_second as f64 / 10.0, now));
    }

    /// Queue what reaches this peer behind a link of `bits_per_second`.
    pub(super) fn shape_to(&mut self, bits_per_second: u64, now: Instant) {
        self.shaper = Some((bits_per_second, now, Default::default()));
    }

    /// Hand this peer what the shaper's queue has delivered by `now`.
    pub(super) fn deliver(&mut self, now: Instant) {
        let local = self.addr;
        while let Some((_, _, queue)) = &mut self.shaper {
            match queue.front() {
                Some((at, ..)) if *at <= now => {}
                _ => break,
            }
            let Some((at, source, data)) = queue.pop_front() else {
                break;
            };
            let _ = self.pc.handle_read(datagram(at, local, source, &data));
        }
    }

    /// Whether the policer eats a datagram of `len` bytes arriving at `now`.
    fn policed(&mut self, len: usize, now: Instant) -> bool {
        let Some((rate, bucket, at)) = self.rate_limit.as_mut() else {
            return false;
        };
        let depth = *rate as f64 / 10.0;
        let elapsed = now.saturating_duration_since(*at).as_secs_f64();
        *bucket = (*bucket + elapsed * *rate as f64).min(depth);
        *at = now;
        let bits = (len * 8) as f64;
        if *bucket < bits {
            self.policed += 1;
            return true;
        }
        *bucket -= bits;
        false
    }

    /// Publish a simulcast VP8 camera: one m-line, a layer per (rid, SSRC).
    pub(super) fn publish_simulcast(&mut self, layers: &[(&str, u32)]) {
        let sender = media_client::add_sendonly(
            &mut self.pc,
            format!("{}-stream", self.name),
            format!("{}-camera", self.name),
            RtpCodecKind::Video,
            media_client::simulcast_encodings(layers.iter().copied()),
        )
        .unwrap();
        let layers = layers.iter().map(|(r, s)| ((*r).to_owned(), *s)).collect();
        self.simulcast = Some((sender, layers));
    }

    /// One frame on every simulcast layer: a VP8 packet whose filler byte is
    /// the layer's index and whose size is `sizes[index]`; a keyframe on a
    /// layer that was asked for one since its last frame (and on the first).
    pub(super) fn send_simulcast_frame(
        &mut self,
        now: Instant,
        sizes: &[usize],
        asked: &mut Vec<u32>,
    ) {
        let (sender, layers) = self.simulcast.clone().expect("publish_simulcast first");
        let mid_id = self
            .extension_id(sender, SDES_MID_URI)
            .expect("mid negotiated");
        let rid_id = self
            .extension_id(sender, SDES_RTP_STREAM_ID_URI)
            .expect("rid negotiated");
        let mid = self
            .pc
            .rtp_transceiver(sender.into())
            .and_then(|t| t.mid().clone())
            .expect("negotiated");
        let frame = self.frames;
        self.frames = frame.wrapping_add(1);
        let fresh: Vec<u32> = self.pli_ssrcs.drain(..).collect();
        for (i, (rid, ssrc)) in layers.iter().enumerate() {
            let keyframe = frame == 0 || fresh.contains(ssrc);
            if keyframe {
                asked.push(*ssrc);
            }
            let height = 180 << i;
            let size = keyframe.then_some((height * 16 / 9, height));
            let mut payload = crate::media::vp8::test_payload(frame, frame as u8, size, sizes[i]);
            let len = payload.len();
            payload[len - 1] = i as u8;
            let mut packet = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    payload_type: 96,
                    sequence_number: frame,
                    timestamp: u32::from(frame) * 3000,
                    ssrc: *ssrc,
                    marker: true,
                    ..Default::default()
                },
                payload: bytes::Bytes::from(payload),
            };
            // Only on a stream's first frames, as Chrome does (it stops once a
            // receiver report for the SSRC came back).
            if frame < 20 {
                packet
                    .header
                    .set_extension(mid_id, bytes::Bytes::from(mid.clone().into_bytes()))
                    .unwrap();
                packet
                    .header
                    .set_extension(rid_id, bytes::Bytes::from(rid.clone().into_bytes()))
                    .unwrap();
            }
            self.pc
                .rtp_sender(sender)
                .unwrap()
                .write_rtp(now, packet)
                .unwrap();
        }
    }

    /// Add a sendonly audio (Opus) and video (VP8) track with known SSRCs.
    pub(super) fn publish(&mut self) {
        self.publish_as(AUDIO_SSRC, VIDEO_SSRC);
    }

    /// The same with SSRCs of one's own.
    pub(super) fn publish_as(&mut self, audio: u32, video: u32) {
        self.audio_ssrc = audio;
        self.add_tracks(&[
            (RtpCodecKind::Audio, MIME_TYPE_OPUS, 48_000, 2, audio),
            (RtpCodecKind::Video, MIME_TYPE_VP8, 90_000, 0, video),
        ]);
    }

    pub(super) fn add_tracks(&mut self, tracks: &[(RtpCodecKind, &str, u32, u16, u32)]) {
        for &(kind, mime, clock, channels, ssrc) in tracks {
            let coding = media_client::send_encoding(kind, mime, clock, channels, ssrc);
            let sender = media_client::add_sendonly(
                &mut self.pc,
                format!("{}-stream", self.name),
                format!("{}-{mime}-{ssrc:x}", self.name),
                kind,
                vec![coding],
            )
            .unwrap();
            self.senders.push((ssrc, sender));
        }
    }

    /// Whether the loss injector eats this datagram: every n-th SRTP packet with
    /// the VP8 payload type (the RTP header is not encrypted).
    fn drops(&mut self, data: &[u8]) -> bool {
        let Some(n) = self.drop_every_nth_video else {
            return false;
        };
        let video = data.len() > 12 && data[0] >> 6 == 2 && data[1] & 0x7f == 96;
        if !video {
            return false;
        }
        self.video_datagrams += 1;
        let drop = self.video_datagrams.is_multiple_of(n);
        self.dropped += usize::from(drop);
        drop
    }

    /// The id one of our senders negotiated for the header extension `uri`.
    fn extension_id(&mut self, sender: RTCRtpSenderId, uri: &str) -> Option<u8> {
        media_client::extension_id(&mut self.pc, sender, uri)
    }

    /// The first offer of a participant that only subscribes: a data channel.
    pub(super) fn bootstrap(&mut self) {
        self.pc.create_data_channel("bootstrap", None).unwrap();
    }

    /// The first offer as browsers often make it: recvonly audio and video.
    pub(super) fn bootstrap_recvonly(&mut self) {
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            let init = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                streams: vec![],
                send_encodings: vec![],
            };
            self.pc.add_transceiver_from_kind(kind, Some(init)).unwrap();
        }
    }

    pub(super) fn offer(&mut self, now: Instant) -> String {
        let offer = self.pc.create_offer(None).unwrap();
        self.pc.set_local_description(now, offer).unwrap();
        self.pc.local_description().unwrap().sdp
    }
}

/// A UDP datagram from `source` arriving at `local` at `now`.
fn datagram(now: Instant, local: SocketAddr, source: SocketAddr, data: &[u8]) -> TaggedBytesMut {
    TaggedBytesMut {
        now,
        transport: TransportContext {
            local_addr: local,
            peer_addr: source,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        },
        message: BytesMut::from(data),
    }
}

/// The SFU, its peers and the simulated clock.
pub(super) struct Net {
    pub(super) sfu: Sfu,
    pub(super) peers: Vec<Peer>,
    pub(super) now: Instant,
    /// When set, every datagram a peer sends is also kept here (a fuzz corpus).
    pub(super) capture: Option<Vec<Vec<u8>>>,
    /// Every `ActiveSpeaker` the SFU announced, in order.
    pub(super) speakers: Vec<Option<String>>,
}

impl Net {
    pub(super) fn new() -> Self {
        Self::with_delay_estimate(false)
    }

    /// An SFU whose subscribers' estimates also use TWCC feedback (`congestion.rs`).
    pub(super) fn with_delay_estimate(delay_based_estimate: bool) -> Self {
        let cfg = SfuConfig {
            candidate: SFU_ADDR.parse().unwrap(),
            ice_tcp: true,
            max_sessions: 8,
            delay_based_estimate,
        };
        Self {
            sfu: Sfu::new(cfg),
            peers: Vec::new(),
            now: Instant::now(),
            capture: None,
            speakers: Vec::new(),
        }
    }

    pub(super) fn add(&mut self, name: &str) -> usize {
        let port = 50_000 + self.peers.len() as u16;
        self.peers.push(Peer::new(name, port, self.now));
        self.peers.len() - 1
    }

    pub(super) fn peer(&mut self, name: &str) -> &mut Peer {
        self.peers.iter_mut().find(|p| p.name == name).unwrap()
    }

    pub(super) fn input(&mut self, input: MediaInput) {
        self.sfu.handle_input(input, self.now);
        self.drain_sfu();
    }

    /// Offer from a peer with the given grants.
    pub(super) fn offer(&mut self, name: &str, publish: bool, subscribe: bool) {
        self.offer_with_screen(name, publish, subscribe, Vec::new());
    }

    /// Offer from a peer whose m-lines `screen` carry a shared screen.
    pub(super) fn offer_with_screen(
        &mut self,
        name: &str,
        publish: bool,
        subscribe: bool,
        screen: Vec<String>,
    ) {
        let now = self.now;
        let sdp = self.peer(name).offer(now);
        self.input(MediaInput::Offer {
            participant: name.to_owned(),
            sdp,
            publish,
            subscribe,
            screen,
        });
    }

    pub(super) fn drain_sfu(&mut self) {
        while let Some(out) = self.sfu.poll_output() {
            match out {
                MediaOutput::Transmit {
                    source,
                    destination,
                    data,
                    ..
                } => {
                    let now = self.now;
                    if let Some(p) = self.peers.iter_mut().find(|p| p.addr == destination) {
                        if p.blackholed || p.drops(&data) || p.policed(data.len(), now) {
                            continue;
                        }
                        // SRTP leaves the RTP header in the clear.
                        if data.len() > 12 && data[0] >> 6 == 2 && data[1] & 0x7f == 97 {
                            p.rtx
                                .push(u32::from_be_bytes([data[8], data[9], data[10], data[11]]));
                        }
                        if let Some((rate, free_at, queue)) = &mut p.shaper {
                            let start = (*free_at).max(now);
                            let wire =
                                Duration::from_secs_f64((data.len() * 8) as f64 / *rate as f64);
                            *free_at = start + wire;
                            queue.push_back((*free_at, source, data));
                            continue;
                        }
                        let _ = p.pc.handle_read(datagram(now, destination, source, &data));
                    }
                }
                MediaOutput::Answer { participant, sdp } => {
                    let now = self.now;
                    let answer = RTCSessionDescription::answer(sdp).unwrap();
                    self.peer(&participant)
                        .pc
                        .set_remote_description(now, answer)
                        .unwrap();
                }
                MediaOutput::Offer { participant, sdp } => {
                    let now = self.now;
                    let p = self.peer(&participant);
                    p.offers += 1;
                    if p.ignore_offers {
                        continue;
                    }
                    let offer = RTCSessionDescription::offer(sdp).unwrap();
                    p.pc.set_remote_description(now, offer).unwrap();
                    let answer = p.pc.create_answer(None).unwrap();
                    p.pc.set_local_description(now, answer).unwrap();
                    let sdp = p.pc.local_description().unwrap().sdp;
                    self.sfu
                        .handle_input(MediaInput::Answer { participant, sdp }, now);
                }
                MediaOutput::Track {
                    participant,
                    owner,
                    kind,
                    mid,
                    stream_id,
                    screen,
                    added,
                } => {
                    let p = self.peer(&participant);
                    if screen {
                        p.screens.insert(mid.clone(), stream_id);
                    }
                    p.tracks.insert(mid, (owner, kind, added));
                }
                MediaOutput::Candidate { .. } | MediaOutput::Hangup { .. } => {}
                MediaOutput::Ended { participant } => self.peer(&participant).ended = true,
                MediaOutput::ActiveSpeaker { participant } => self.speakers.push(participant),
                MediaOutput::Refused {
                    participant,
                    message,
                } => {
                    panic!("{participant} refused: {message}")
                }
            }
        }
    }

    /// Move every queued datagram and event once; advance the clock to the next
    /// timer when nothing moved.
    pub(super) fn step(&mut self) {
        let now = self.now;
        let mut moved = false;
        for i in 0..self.peers.len() {
            while let Some(msg) = self.peers[i].pc.poll_write() {
                moved = true;
                if self.peers[i].blackholed {
                    continue;
                }
                if let Some(corpus) = &mut self.capture {
                    corpus.push(msg.message.to_vec());
                }
                let input = MediaInput::Datagram {
                    source: msg.transport.local_addr,
                    destination: msg.transport.peer_addr,
                    transport: Transport::Udp,
                    data: msg.message.to_vec(),
                };
                self.sfu.handle_input(input, now);
            }
            let p = &mut self.peers[i];
            while let Some(ev) = p.pc.poll_event() {
                if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = ev {
                    p.connected = s == RTCPeerConnectionState::Connected;
                }
            }
            while let Some(msg) = p.pc.poll_read() {
                match msg.message {
                    RTCMessage::RtpPacket(_, pkt) => p.rtp.push((
                        pkt.header.ssrc,
                        pkt.header.sequence_number,
                        pkt.payload.to_vec(),
                    )),
                    RTCMessage::RtcpPacket(_, pkts) => {
                        for k in &pkts {
                            if crate::media::keyframe::is_keyframe_request(k.as_ref()) {
                                p.plis += 1;
                                p.pli_ssrcs.extend(k.destination_ssrc());
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        for p in &mut self.peers {
            p.deliver(now);
        }
        let before = self.sfu.poll_timeout();
        self.drain_sfu();
        if moved {
            return;
        }
        let queued: Vec<Instant> = self
            .peers
            .iter()
            .filter_map(|p| p.shaper.as_ref()?.2.front().map(|(at, ..)| *at))
            .collect();
        let next = self
            .peers
            .iter_mut()
            .filter_map(|p| p.pc.poll_timeout())
            .chain(queued)
            .chain(before)
            .chain(self.sfu.poll_timeout())
            .min()
            .unwrap_or(now + Duration::from_millis(10))
            .max(now + Duration::from_millis(1));
        self.now = next.min(now + Duration::from_millis(50));
        let now = self.now;
        for p in &mut self.peers {
            let _ = p.pc.handle_timeout(now);
        }
        self.input(MediaInput::Timeout);
    }

    /// Step until `done` holds, at most `limit` of simulated time.
    pub(super) fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Net) -> bool) {
        let end = self.now + limit;
        while !done(self) {
            assert!(self.now < end, "condition not met within {limit:?}");
            self.step();
        }
    }

    /// Step until every peer is connected (10 s of simulated time at most).
    pub(super) fn connect_all(&mut self) {
        self.run_until(Duration::from_secs(10), |n| {
            n.peers.iter().all(|p| p.connected)
        });
    }

    /// Let 200 ms of simulated time pass.
    pub(super) fn settle(&mut self) {
        let until = self.now + Duration::from_millis(200);
        while self.now < until {
            self.step();
        }
    }

    /// Send `n` RTP packets on each of the publisher's tracks, 20 ms apart.
    pub(super) fn send_media(&mut self, name: &str, n: u16) -> Vec<(u32, u16, Vec<u8>)> {
        let mut sent = Vec::new();
        for _ in 0..n {
            let now = self.now;
            let p = self.peer(name);
            let seq = p.next_seq;
            p.next_seq = seq.wrapping_add(1);
            for (ssrc, sender) in p.senders.clone() {
                let payload: Vec<u8> = format!("{ssrc:x}-{seq}-payload").into_bytes();
                let audio = ssrc == p.audio_ssrc;
                let pt = if audio { 111 } else { 96 };
                let mut packet = rtc::rtp::Packet {
                    header: rtc::rtp::header::Header {
                        version: 2,
                        payload_type: pt,
                        sequence_number: seq,
                        timestamp: u32::from(seq) * 960,
                        ssrc,
                        marker: true,
                        ..Default::default()
                    },
                    payload: bytes::Bytes::from(payload.clone()),
                };
                if let (Some(level), true) = (p.audio_level, audio) {
                    let id = p.extension_id(sender, AUDIO_LEVEL_URI).expect("negotiated");
                    packet
                        .header
                        .set_extension(id, bytes::Bytes::from(vec![0x80 | level]))
                        .unwrap();
                }
                p.pc.rtp_sender(sender)
                    .unwrap()
                    .write_rtp(now, packet)
                    .unwrap();
                sent.push((ssrc, seq, payload));
            }
            let until = self.now + Duration::from_millis(20);
            while self.now < until {
                self.step();
            }
        }
        sent
    }
}

impl Net {
    /// `frames` simulcast frames from `name`, 33 ms apart (30 fps); returns the
    /// layer SSRCs a keyframe was sent on, in order.
    pub(super) fn send_simulcast(
        &mut self,
        name: &str,
        frames: usize,
        sizes: &[usize],
    ) -> Vec<u32> {
        let mut keyframes = Vec::new();
        for _ in 0..frames {
            let now = self.now;
            self.peer(name)
                .send_simulcast_frame(now, sizes, &mut keyframes);
            let until = self.now + Duration::from_millis(33);
            while self.now < until {
                self.step();
            }
        }
        keyframes
    }
}

pub(super) fn received_from(peer: &Peer, ssrc: u32) -> Vec<(u16, Vec<u8>)> {
    peer.rtp
        .iter()
        .filter(|(s, _, _)| *s == ssrc)
        .map(|(_, seq, p)| (*seq, p.clone()))
        .collect()
}
