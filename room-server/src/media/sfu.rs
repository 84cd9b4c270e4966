//! [`Sfu`]: the media core of one room.
//!
//! Sessions are created by a participant's first `offer` and live until
//! [`MediaInput::Leave`]. After every input the core brings the forwarding graph in
//! line with who publishes what ([`Sfu::reconcile`]), makes the renegotiation
//! offers that this calls for, forwards the RTP and keyframe requests that came in,
//! and queues every datagram the sessions want sent.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rtc::peer_connection::message::RTCMessage;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sdp::extmap::{
    AUDIO_LEVEL_URI, SDES_MID_URI, SDES_REPAIR_RTP_STREAM_ID_URI, SDES_RTP_STREAM_ID_URI,
};
use rtc::shared::{TaggedBytesMut, TransportContext};

use super::demux::Demuxer;
use super::forward::{ForwardTable, TrackKey};
use super::keyframe::{is_keyframe_request, Throttle};
use super::session::{Leg, Published, Session, SessionId};
use super::simulcast::{choose, Estimate, Layer, LayerMeter, Splicer};
use super::speaker::SpeakerDetector;
use super::vp8;
use super::{MediaCore, MediaInput, MediaKind, MediaOutput, Transport};
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_VP8;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;

/// Tracks forwarded per publisher: a camera, a microphone and a shared screen
/// with its sound. More m-lines are not forwarded, so one participant cannot make
/// every other session grow by hundreds of transceivers.
pub const MAX_TRACKS_PER_PUBLISHER: usize = 4;

/// The media core's configuration.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The address advertised as every session's ICE candidate: the public IP
    /// (or the listen address) and the media socket's port.
    pub candidate: SocketAddr,
    /// Also advertise a passive ICE-TCP candidate at the same address (the
    /// shell listens for TCP on the media port number): the way in for clients
    /// whose network drops UDP.
    pub ice_tcp: bool,
    /// Sessions at most; an `offer` beyond it is refused. The room's participant cap.
    pub max_sessions: usize,
    /// Delay-based bandwidth estimation towards subscribers (TWCC feedback into
    /// GCC, `congestion.rs`) on top of the loss-based one. Off by default: on a
    /// host whose receivers are short of CPU it reads their scheduling jitter as
    /// a queue and cuts everyone to the smallest layer.
    pub delay_based_estimate: bool,
}

/// What the SFU has done since it started (counters) and holds now (gauges).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SfuStats {
    pub tracks: usize,
    pub subscriptions: usize,
    pub rtp_in: u64,
    pub rtp_bytes_in: u64,
    pub rtp_out: u64,
    pub rtp_bytes_out: u64,
    /// RTP packets dropped because a moderator muted their publisher.
    pub rtp_muted: u64,
    /// Video packets not sent to a subscriber who does not watch it (`watch`).
    pub rtp_unwatched: u64,
    pub keyframe_requests: u64,
    /// Packets subscribers asked to be sent again (NACK); the retransmission
    /// buffers of their legs answer them.
    pub nacked: u64,
    /// Times a subscriber's stream of a simulcast track moved to another layer.
    pub layer_switches: u64,
    /// Sessions ended because they did not connect in time, or failed.
    pub sessions_failed: u64,
}

/// One reception report of a subscriber about a track forwarded to it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceptionQuality {
    pub kind: MediaKind,
    /// Fraction of packets lost since the previous report, 0..1.
    pub loss: f64,
    /// Interarrival jitter, seconds.
    pub jitter: f64,
    /// Round-trip time, seconds, when the report answers one of our sender
    /// reports (RFC 3550 §6.4.1: now − LSR − DLSR).
    pub rtt: Option<f64>,
}

/// The round-trip time a report block gives, at `now_ntp` (64-bit NTP time):
/// the middle 32 bits of now, minus the sender report it echoes (LSR), minus how
/// long the receiver held it (DLSR), in 1/65536 s. None without an echoed report
/// or when the result is no plausible RTT (clocks apart, a forged block).
pub(crate) fn round_trip(now_ntp: u64, last_sender_report: u32, delay: u32) -> Option<f64> {
    if last_sender_report == 0 {
        return None;
    }
    let middle = (now_ntp >> 16) as u32;
    let units = middle.wrapping_sub(last_sender_report).wrapping_sub(delay);
    let rtt = f64::from(units) / 65536.0;
    (rtt < 60.0).then_some(rtt)
}

/// How often every subscriber's simulcast layers are chosen again.
const SELECTION_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// The bandwidth an audio track is budgeted at when a subscriber's estimate is
/// shared out among its video.
const AUDIO_BUDGET: u64 = 64_000;

/// Reports kept until the shell takes them; beyond this many they are dropped
/// (the shell drains after every input, so this is never reached in practice).
const MAX_PENDING_REPORTS: usize = 1024;

/// A published track as subscribers are told of it.
#[derive(Debug, Clone)]
struct TrackInfo {
    kind: MediaKind,
    owner: String,
    stream_id: String,
    screen: bool,
    /// For a simulcast track: the SSRC it is forwarded with, and its layers.
    simulcast: Option<(u32, Vec<Layer>)>,
}

/// The SFU of one room.
pub struct Sfu {
    cfg: SfuConfig,
    sessions: BTreeMap<SessionId, Session>,
    by_participant: HashMap<String, SessionId>,
    next_session: u64,
    forward: ForwardTable,
    /// What every published track is and whose, kept until its forwardings are
    /// gone so that unpublishing can still name the owner.
    tracks: HashMap<TrackKey, TrackInfo>,
    demux: Demuxer,
    throttle: Throttle,
    /// Whose media of which kind a moderator stopped: kept by participant, so a
    /// new session (a reconnect) is muted as the last one was. Bounded by the
    /// room's participants.
    muted: HashSet<(String, MediaKind)>,
    stats: SfuStats,
    speaker: SpeakerDetector,
    reports: Vec<ReceptionQuality>,
    /// What each simulcast layer (publisher, SSRC) weighs and measures.
    meters: HashMap<(SessionId, u32), LayerMeter>,
    /// Each subscriber's stream of each simulcast track.
    splicers: HashMap<TrackKey, HashMap<SessionId, Splicer>>,
    /// Each subscriber's available bandwidth, and what it is sent (bits per
    /// second, as of the last layer choice).
    estimates: HashMap<SessionId, Estimate>,
    sent: HashMap<SessionId, u64>,
    /// When layers are chosen next; `None`: at the next input (a new forwarding).
    next_selection: Option<Instant>,
    /// Wall-clock time paired with the monotonic clock, read once (as `rtc`'s
    /// sender reports read theirs): the NTP time receiver reports echo.
    wall: Option<rtc::shared::time::SystemInstant>,
    /// Set by anything that may change who publishes what.
    dirty: bool,
    out: VecDeque<MediaOutput>,
    next_timeout: Option<Instant>,
    /// How often the graph was reconciled: it must not happen per packet.
    #[cfg(test)]
    pub(crate) reconciles: u64,
}

impl std::fmt::Debug for Sfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sfu")
            .field("cfg", &self.cfg)
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl Sfu {
    pub fn new(cfg: SfuConfig) -> Self {
        let crypto = rtc::crypto::default_provider().expect("rtc is built with ring");
        Self {
            cfg,
            sessions: BTreeMap::new(),
            by_participant: HashMap::new(),
            next_session: 1,
            forward: ForwardTable::default(),
            tracks: HashMap::new(),
            demux: Demuxer::new(crypto as Arc<_>),
            throttle: Throttle::default(),
            muted: HashSet::new(),
            stats: SfuStats::default(),
            speaker: SpeakerDetector::default(),
            reports: Vec::new(),
            meters: HashMap::new(),
            splicers: HashMap::new(),
            estimates: HashMap::new(),
            sent: HashMap::new(),
            next_selection: None,
            wall: None,
            dirty: false,
            out: VecDeque::new(),
            next_timeout: None,
            #[cfg(test)]
            reconciles: 0,
        }
    }

    /// Live sessions.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// The subscribers' reception reports since the last call.
    pub fn drain_reports(&mut self) -> std::vec::Drain<'_, ReceptionQuality> {
        self.reports.drain(..)
    }

    /// Counters and gauges for `/metrics`.
    pub fn stats(&self) -> SfuStats {
        SfuStats {
            tracks: self.tracks.len(),
            subscriptions: self.forward.len(),
            ..self.stats
        }
    }

    fn refuse(&mut self, participant: &str, message: impl std::fmt::Display) {
        self.out.push_back(MediaOutput::Refused {
            participant: participant.to_owned(),
            message: message.to_string(),
        });
    }

    fn session_of(&mut self, participant: &str) -> Option<&mut Session> {
        let id = self.by_participant.get(participant)?;
        self.sessions.get_mut(id)
    }

    // === impl Sfu: signalling ===

    fn offer(
        &mut self,
        now: Instant,
        participant: String,
        sdp: String,
        publish: bool,
        subscribe: bool,
        screen: Vec<String>,
    ) {
        if !self.by_participant.contains_key(&participant) {
            if self.sessions.len() >= self.cfg.max_sessions {
                return self.refuse(
                    &participant,
                    "the room has no room for another media session",
                );
            }
            let id = SessionId(self.next_session);
            match Session::new(
                id,
                participant.clone(),
                self.cfg.candidate,
                self.cfg.ice_tcp,
                self.cfg.delay_based_estimate,
                now,
            ) {
                Ok(mut session) => {
                    for kind in [MediaKind::Audio, MediaKind::Video] {
                        let muted = self.muted.contains(&(participant.clone(), kind));
                        session.set_muted(kind, muted);
                    }
                    self.next_session += 1;
                    self.sessions.insert(id, session);
                    self.by_participant.insert(participant.clone(), id);
                }
                Err(e) => return self.refuse(&participant, e),
            }
        }
        let session = self.session_of(&participant).expect("just ensured");
        session.publish = publish;
        session.subscribe = subscribe;
        session.set_screen(screen);
        match session.accept_offer(now, sdp) {
            Ok(sdp) => self.out.push_back(MediaOutput::Answer { participant, sdp }),
            Err(e) => self.refuse(&participant, format!("offer refused: {e}")),
        }
        self.dirty = true;
    }

    fn answer(&mut self, now: Instant, participant: String, sdp: String) {
        let result = match self.session_of(&participant) {
            Some(session) => session.accept_answer(now, sdp),
            None => return self.refuse(&participant, "no media session: send an `offer` first"),
        };
        if let Err(e) = result {
            self.refuse(&participant, format!("answer refused: {e}"));
        }
        self.dirty = true;
    }

    fn candidate(&mut self, participant: String, candidate: String, sdp_mid: Option<String>) {
        let result = match self.session_of(&participant) {
            Some(session) => session.add_candidate(candidate, sdp_mid),
            None => return self.refuse(&participant, "no media session: send an `offer` first"),
        };
        if let Err(e) = result {
            self.refuse(&participant, format!("candidate refused: {e}"));
        }
    }

    fn leave(&mut self, now: Instant, participant: &str) {
        let Some(id) = self.by_participant.remove(participant) else {
            return;
        };
        self.speaker.remove(now, id);
        self.estimates.remove(&id);
        self.sent.remove(&id);
        if let Some(mut session) = self.sessions.remove(&id) {
            let _ = rtc::sansio::Protocol::close(&mut session.pc);
        }
        self.demux.remove(id);
        self.dirty = true;
    }

    /// End the sessions that did not connect in time or lost their connection,
    /// and tell their participants.
    fn reap(&mut self, now: Instant) {
        // Connection states are current: datagrams pump their session, timers
        // pump every session ([`Sfu::timeout`]).
        let failed: Vec<String> = self
            .sessions
            .values()
            .filter(|s| s.failed(now))
            .map(|s| s.participant.clone())
            .collect();
        for participant in failed {
            self.stats.sessions_failed += 1;
            tracing::info!(%participant, "media session did not connect; ended");
            self.leave(now, &participant);
            self.out.push_back(MediaOutput::Ended { participant });
        }
    }

    /// A subscriber's `watch`: video from only these publishers; a keyframe
    /// request for each video they take up again.
    fn watch(
        &mut self,
        now: Instant,
        participant: &str,
        video: Option<Vec<String>>,
        heights: BTreeMap<String, u32>,
    ) {
        let Some(&id) = self.by_participant.get(participant) else {
            return;
        };
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let before = session.watching.take();
        session.watching = video.map(|v| v.into_iter().collect());
        session.heights = heights;
        // A new size may call for another layer now rather than in a while.
        self.next_selection = None;
        let session = &self.sessions[&id];
        let resumed: Vec<TrackKey> = self
            .forward
            .forwarded_to(id)
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| {
                let Some(info) = self.tracks.get(key) else {
                    return false;
                };
                let was = before.as_ref().is_none_or(|w| w.contains(&info.owner));
                info.kind == MediaKind::Video && !was && session.watches(&info.owner)
            })
            .collect();
        for key in resumed {
            self.request_keyframe(now, &key);
        }
    }

    /// Ask `key`'s publisher for a keyframe of it (a PLI of our own).
    fn request_keyframe(&mut self, now: Instant, key: &TrackKey) {
        let forwarded = self
            .tracks
            .get(key)
            .and_then(|t| t.simulcast.as_ref())
            .map(|(ssrc, _)| *ssrc);
        let ssrcs: Vec<u32> = self
            .forward
            .ssrcs_of(key)
            .filter(|s| Some(*s) != forwarded)
            .collect();
        for ssrc in ssrcs {
            self.send_pli(now, key, ssrc);
        }
    }

    /// A PLI of our own for `key`'s stream `ssrc`, throttled as any request.
    fn send_pli(&mut self, now: Instant, key: &TrackKey, ssrc: u32) {
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        };
        self.send_keyframe_request(now, key, ssrc, Box::new(pli));
    }

    /// Send `request` (PLI or FIR) for `key`'s stream `ssrc` to its publisher,
    /// at most one per stream per [`super::keyframe::KEYFRAME_INTERVAL`].
    fn send_keyframe_request(
        &mut self,
        now: Instant,
        key: &TrackKey,
        ssrc: u32,
        request: Box<dyn rtc::rtcp::Packet>,
    ) {
        if !self.throttle.allow((key.publisher, ssrc), now) {
            return;
        }
        if let Some(publisher) = self.sessions.get_mut(&key.publisher) {
            match publisher.write_rtcp(now, &key.mid, vec![request]) {
                Ok(()) => self.stats.keyframe_requests += 1,
                Err(e) => tracing::debug!(error = %e, "a keyframe request failed"),
            }
        }
    }

    /// A moderator's mute: forwarding of `participant`'s `kind` stops (or
    /// resumes, with a keyframe request so video comes back at once).
    fn mute(&mut self, now: Instant, participant: String, kind: MediaKind, muted: bool) {
        if muted {
            self.muted.insert((participant.clone(), kind));
        } else {
            self.muted.remove(&(participant.clone(), kind));
        }
        let Some(&id) = self.by_participant.get(&participant) else {
            return;
        };
        if let Some(session) = self.sessions.get_mut(&id) {
            session.set_muted(kind, muted);
        }
        if muted || kind != MediaKind::Video {
            return;
        }
        let video: Vec<TrackKey> = self
            .tracks
            .iter()
            .filter(|(k, t)| k.publisher == id && t.kind == MediaKind::Video)
            .map(|(k, _)| k.clone())
            .collect();
        for key in video {
            self.request_keyframe(now, &key);
        }
    }

    // === impl Sfu: forwarding graph ===

    /// Make the forwarding table match what every publisher publishes now.
    fn reconcile(&mut self) {
        let mut published = Vec::new();
        #[cfg(test)]
        {
            self.reconciles += 1;
        }
        for (id, session) in &mut self.sessions {
            session.pump();
            if session.publish {
                let tracks = session.published();
                if tracks.len() > MAX_TRACKS_PER_PUBLISHER {
                    tracing::debug!(
                        participant = %session.participant,
                        tracks = tracks.len(),
                        "forwarding only the first {MAX_TRACKS_PER_PUBLISHER} tracks"
                    );
                }
                for Published {
                    mid,
                    track,
                    screen,
                    simulcast,
                } in tracks.into_iter().take(MAX_TRACKS_PER_PUBLISHER)
                {
                    let key = TrackKey {
                        publisher: *id,
                        mid,
                    };
                    published.push((key, track, screen, simulcast));
                }
            }
        }
        let keys: HashSet<TrackKey> = published.iter().map(|(k, ..)| k.clone()).collect();
        let receiving: HashSet<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.subscribe)
            .map(|(id, _)| *id)
            .collect();
        for (sub, key, sender) in self.forward.retain(&keys, &receiving) {
            let Some(info) = self.tracks.get(&key).cloned() else {
                continue;
            };
            if let Some(session) = self.sessions.get_mut(&sub) {
                if let Err(e) = session.remove_forward(sender) {
                    tracing::warn!(error = %e, "cannot remove a forwarded track");
                }
                if let Some(mid) = session.announced.remove(&key) {
                    self.out
                        .push_back(info.announcement(&session.participant, mid, false));
                }
            }
        }
        self.tracks.retain(|k, _| keys.contains(k));
        for (key, track, screen, layers) in published {
            let kind = match track.kind() {
                RtpCodecKind::Audio => MediaKind::Audio,
                _ => MediaKind::Video,
            };
            let owner = self.sessions[&key.publisher].participant.clone();
            let simulcast = layers.map(|layers| {
                for layer in &layers {
                    self.forward.bind_ssrc(layer.ssrc, key.clone());
                }
                let forwarded = track.ssrcs().next().unwrap_or_default();
                (forwarded, layers)
            });
            let info = TrackInfo {
                kind,
                owner,
                stream_id: track.stream_id().clone(),
                screen,
                simulcast,
            };
            let simulcast = info.simulcast.is_some();
            self.tracks.insert(key.clone(), info);
            for ssrc in track.ssrcs() {
                self.forward.bind_ssrc(ssrc, key.clone());
            }
            for sub in &receiving {
                if *sub == key.publisher || self.forward.has(&key, *sub) {
                    continue;
                }
                let Some(session) = self.sessions.get_mut(sub) else {
                    continue;
                };
                match session.add_forward(track.clone(), simulcast) {
                    Ok(sender) => self.forward.insert(key.clone(), *sub, sender),
                    Err(e) => tracing::warn!(error = %e, "cannot forward a track"),
                }
            }
        }
        let forward = &self.forward;
        self.throttle
            .retain(|(publisher, ssrc)| forward.track_of(publisher, ssrc).is_some());
        self.meters
            .retain(|(publisher, ssrc), _| forward.track_of(*publisher, *ssrc).is_some());
        self.splicers.retain(|key, subs| {
            subs.retain(|sub, _| forward.has(key, *sub));
            !subs.is_empty()
        });
        // New forwardings get their first layer at once.
        self.next_selection = None;
    }

    /// Offer every session whose transceivers changed, announcing its new tracks
    /// first so the client knows whose a track is when it arrives.
    fn offers(&mut self, now: Instant) {
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            let Some(session) = self.sessions.get_mut(&id) else {
                continue;
            };
            if session.pump() {
                self.dirty = true;
            }
            let sdp = match session.poll_offer(now) {
                Ok(Some(sdp)) => sdp,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot make a renegotiation offer");
                    continue;
                }
            };
            for (key, sender) in self.forward.forwarded_to(id) {
                let Some(info) = self.tracks.get(&key).cloned() else {
                    continue;
                };
                let session = self.sessions.get_mut(&id).expect("present");
                if session.announced.contains_key(&key) {
                    continue;
                }
                let Some(mid) = session.sender_mid(sender) else {
                    continue;
                };
                session.announced.insert(key.clone(), mid.clone());
                self.out
                    .push_back(info.announcement(&session.participant, mid, true));
            }
            let participant = self.sessions[&id].participant.clone();
            self.out.push_back(MediaOutput::Offer { participant, sdp });
        }
    }

    // === impl Sfu: media ===

    fn datagram(&mut self, now: Instant, source: SocketAddr, transport: Transport, data: Vec<u8>) {
        let sessions = &self.sessions;
        let routed = self.demux.route((transport, source), &data, |id| {
            sessions.get(&id).map(|s| s.password())
        });
        let Some(session) = routed.and_then(|id| self.sessions.get_mut(&id)) else {
            tracing::trace!(%source, ?transport, "packet for no session");
            if transport == Transport::Tcp {
                // A connection that opens with anything but a verified check of
                // a live session is no client of this room.
                self.out.push_back(MediaOutput::Hangup { peer: source });
            }
            return;
        };
        let msg = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: self.cfg.candidate,
                peer_addr: source,
                ecn: None,
                transport_protocol: transport.protocol(),
            },
            message: BytesMut::from(&data[..]),
        };
        if let Err(e) = session.handle_datagram(msg) {
            tracing::debug!(error = %e, %source, "datagram refused by its session");
        }
        if session.pump() {
            self.dirty = true;
        }
    }

    /// Forward the RTP and keyframe requests every session has received.
    fn forward_media(&mut self, now: Instant) {
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            loop {
                let Some(msg) = self.sessions.get_mut(&id).and_then(|s| s.poll_message()) else {
                    break;
                };
                match msg.message {
                    RTCMessage::RtpPacket(_, packet) => self.forward_rtp(now, id, packet),
                    RTCMessage::RtcpPacket(_, packets) => {
                        self.relay_keyframe(now, id, &packets);
                        self.reception(now, id, &packets);
                    }
                    _ => {}
                }
            }
        }
    }

    fn forward_rtp(&mut self, now: Instant, from: SessionId, packet: rtc::rtp::Packet) {
        let Some(key) = self.forward.track_of(from, packet.header.ssrc).cloned() else {
            return;
        };
        let Some(publisher) = self.sessions.get_mut(&from) else {
            return;
        };
        self.stats.rtp_in += 1;
        self.stats.rtp_bytes_in += packet.payload.len() as u64;
        let info = self.tracks.get(&key);
        let kind = info.map(|t| t.kind);
        if kind.is_some_and(|k| publisher.muted(k)) {
            self.stats.rtp_muted += 1;
            // Each subscriber's stream picks up again at a keyframe, numbered on
            // from where it stopped (no gap its receiver would count as loss).
            if let Some(subs) = self.splicers.get_mut(&key) {
                subs.values_mut().for_each(Splicer::pause);
            }
            return;
        }
        let Some((mime, pub_exts)) = publisher.receiver_codec(&key.mid, packet.header.payload_type)
        else {
            return;
        };
        if kind == Some(MediaKind::Audio) {
            let level = pub_exts
                .iter()
                .find(|(_, uri)| uri == AUDIO_LEVEL_URI)
                .and_then(|(id, _)| packet.header.get_extension(*id));
            if let Some(&byte) = level.as_deref().and_then(|b| b.first()) {
                self.speaker.observe(now, from, byte);
            }
        }
        let owner = info.map(|t| t.owner.as_str());
        let simulcast = info
            .and_then(|t| t.simulcast.as_ref())
            .map(|(ssrc, _)| *ssrc);
        let vp8 = match simulcast {
            Some(_) if mime.eq_ignore_ascii_case(MIME_TYPE_VP8) => vp8::parse(&packet.payload),
            _ => None,
        };
        if simulcast.is_some() {
            self.meters
                .entry((from, packet.header.ssrc))
                .or_default()
                .observe(now, packet.payload.len(), vp8.as_ref());
        }
        let mut splicers = simulcast.and_then(|_| self.splicers.get_mut(&key));
        for (sub, sender) in self.forward.subscribers(&key) {
            let Some(session) = self.sessions.get_mut(&sub) else {
                continue;
            };
            if !session.connected() || !session.sender_active(sender) {
                continue;
            }
            if kind == Some(MediaKind::Video) && owner.is_some_and(|o| !session.watches(o)) {
                self.stats.rtp_unwatched += 1;
                if let Some(splicer) = splicers.as_deref_mut().and_then(|s| s.get_mut(&sub)) {
                    splicer.pause();
                }
                continue;
            }
            let spliced = match (simulcast, splicers.as_deref_mut()) {
                (None, _) => None,
                (Some(forwarded), Some(splicers)) => {
                    let Some(splicer) = splicers.get_mut(&sub) else {
                        continue;
                    };
                    let before = splicer.current;
                    let h = &packet.header;
                    let Some(spliced) =
                        splicer.splice(now, h.ssrc, h.sequence_number, h.timestamp, vp8.as_ref())
                    else {
                        continue;
                    };
                    if before.is_some() && before != splicer.current {
                        self.stats.layer_switches += 1;
                    }
                    Some((forwarded, spliced))
                }
                (Some(_), None) => continue,
            };
            let Some(leg) = session.sender_codec(sender, &mime) else {
                continue;
            };
            let mut out = translate(&packet, &leg, &pub_exts);
            if let Some((forwarded, spliced)) = spliced {
                out.header.ssrc = forwarded;
                out.header.sequence_number = spliced.sequence_number;
                out.header.timestamp = spliced.timestamp;
                if let (Some(info), Some(_)) = (vp8.as_ref(), spliced.picture) {
                    let mut payload = out.payload.to_vec();
                    Splicer::rewrite_payload(&mut payload, info, &spliced);
                    out.payload = payload.into();
                }
            }
            match session.write_rtp(now, sender, out) {
                Ok(()) => {
                    self.stats.rtp_out += 1;
                    self.stats.rtp_bytes_out += packet.payload.len() as u64;
                }
                Err(e) => tracing::debug!(error = %e, "forwarding RTP failed"),
            }
        }
    }

    fn relay_keyframe(
        &mut self,
        now: Instant,
        from: SessionId,
        packets: &[Box<dyn rtc::rtcp::Packet>],
    ) {
        for packet in packets.iter().filter(|p| is_keyframe_request(p.as_ref())) {
            for ssrc in packet.destination_ssrc() {
                let Some(key) = self.forward.forwarded_with(from, ssrc).cloned() else {
                    continue;
                };
                match self.layer_of(&key, from) {
                    // The subscriber names the SSRC it receives; the publisher
                    // knows its layer's.
                    Some(Some(layer)) => self.send_pli(now, &key, layer),
                    Some(None) => {}
                    None => self.send_keyframe_request(now, &key, ssrc, packet.cloned()),
                }
            }
        }
    }

    /// For a simulcast track, the layer `sub` is sent or is about to be
    /// (`Some(None)`: none yet); `None` for any other track.
    fn layer_of(&self, key: &TrackKey, sub: SessionId) -> Option<Option<u32>> {
        self.tracks.get(key)?.simulcast.as_ref()?;
        let splicer = self.splicers.get(key).and_then(|s| s.get(&sub));
        Some(splicer.and_then(|s| s.target.or(s.current)))
    }

    /// Keep what `from`'s reports say of the tracks forwarded to them, and feed
    /// their loss and REMB to `from`'s bandwidth estimate.
    fn reception(&mut self, now: Instant, from: SessionId, packets: &[Box<dyn rtc::rtcp::Packet>]) {
        for packet in packets {
            let any = packet.as_any();
            if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                let packets: u64 = nack
                    .nacks
                    .iter()
                    .map(|pair| 1 + u64::from(pair.lost_packets.count_ones()))
                    .sum();
                self.stats.nacked += packets;
                continue;
            }
            if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
                self.estimates
                    .entry(from)
                    .or_default()
                    .on_remb(now, remb.bitrate);
                continue;
            }
            let blocks = if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                &rr.reports
            } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                &sr.reports
            } else {
                continue;
            };
            for block in blocks {
                let Some(key) = self.forward.forwarded_with(from, block.ssrc) else {
                    continue;
                };
                let Some(kind) = self.tracks.get(key).map(|t| t.kind) else {
                    continue;
                };
                let clock = f64::from(kind.clock_rate());
                let loss = f64::from(block.fraction_lost) / 256.0;
                let wall = *self
                    .wall
                    .get_or_insert_with(|| rtc::shared::time::SystemInstant::now(now));
                let rtt = round_trip(wall.ntp(now), block.last_sender_report, block.delay);
                if self.reports.len() < MAX_PENDING_REPORTS {
                    self.reports.push(ReceptionQuality {
                        kind,
                        loss,
                        jitter: f64::from(block.jitter) / clock,
                        rtt,
                    });
                }
                // Only what the SFU numbers itself tells of the path: a track
                // forwarded as the publisher numbered it has gaps wherever its
                // packets were not for this subscriber (a hidden tab, a mute).
                let simulcast = self.tracks.get(key).is_some_and(|t| t.simulcast.is_some());
                if simulcast && self.sessions.contains_key(&from) {
                    let sent = self.sent.get(&from).copied();
                    self.estimates
                        .entry(from)
                        .or_default()
                        .on_loss(now, loss, sent);
                }
            }
        }
    }

    /// Choose every subscriber's layer of every simulcast track: the largest that
    /// fits their share of their bandwidth estimate and the size they render it
    /// at. A subscriber whose layer changes waits for the new layer's keyframe,
    /// which is asked for here (and again each round until it comes).
    fn select_layers(&mut self, now: Instant) {
        if self.next_selection.is_some_and(|t| now < t) {
            return;
        }
        self.next_selection = Some(now + SELECTION_INTERVAL);
        // Each subscriber's count of simulcast video and of everything else.
        let mut shares: HashMap<SessionId, (u64, u64)> = HashMap::new();
        for (key, info) in &self.tracks {
            for (sub, _) in self.forward.subscribers(key) {
                let entry = shares.entry(sub).or_default();
                match (&info.simulcast, info.kind) {
                    (Some(_), _) => entry.0 += 1,
                    (None, MediaKind::Audio) => entry.1 += 1,
                    (None, MediaKind::Video) => {}
                }
            }
        }
        let mut wanted = Vec::new();
        // What each subscriber is sent: the layers forwarded now, and audio.
        let mut sent: HashMap<SessionId, u64> = shares
            .iter()
            .map(|(sub, (_, audios))| (*sub, audios * AUDIO_BUDGET))
            .collect();
        for (key, info) in &self.tracks {
            let Some((_, layers)) = &info.simulcast else {
                continue;
            };
            let mut live: Vec<(u32, u64, Option<u16>)> = layers
                .iter()
                .filter_map(|l| {
                    let m = self.meters.get(&(key.publisher, l.ssrc))?;
                    m.live(now)
                        .then(|| (l.ssrc, m.weight(), m.size.map(|(_, h)| h)))
                })
                .collect();
            if live.iter().all(|(_, _, h)| h.is_some()) {
                live.sort_by_key(|(_, w, h)| (*h, *w));
            } else {
                live.sort_by_key(|(_, w, _)| *w);
            }
            let weights: Vec<(u64, Option<u16>)> = live.iter().map(|(_, w, h)| (*w, *h)).collect();
            let splicers = self.splicers.entry(key.clone()).or_default();
            for (sub, _) in self.forward.subscribers(key) {
                let splicer = splicers.entry(sub).or_default();
                let (videos, audios) = shares.get(&sub).copied().unwrap_or((1, 0));
                let estimate = self
                    .estimates
                    .get(&sub)
                    .map_or(super::simulcast::INITIAL_ESTIMATE, |e| e.bitrate(now));
                // GCC over the subscriber's TWCC feedback caps it (delay and loss
                // it saw first-hand; `congestion.rs`).
                let delay = self.sessions.get(&sub).and_then(|s| s.delay_estimate());
                let estimate = delay.map_or(estimate, |d| {
                    estimate.min(d.max(super::simulcast::MIN_ESTIMATE))
                });
                let budget = estimate.saturating_sub(audios * AUDIO_BUDGET) / videos.max(1);
                let height = self
                    .sessions
                    .get(&sub)
                    .and_then(|s| s.rendered_height(&info.owner));
                let current = live
                    .iter()
                    .position(|(ssrc, ..)| Some(*ssrc) == splicer.current);
                if let Some(i) = current {
                    *sent.entry(sub).or_default() += live[i].1;
                }
                let Some(pick) = choose(&weights, budget, height, current) else {
                    continue;
                };
                let target = live[pick].0;
                if splicer.target != Some(target) {
                    tracing::debug!(
                        publisher = %info.owner,
                        subscriber = sub.0,
                        budget,
                        height = ?height,
                        layers = ?weights,
                        layer = target,
                        "simulcast layer chosen"
                    );
                    splicer.target = Some(target);
                }
                if splicer.current != Some(target) {
                    wanted.push((key.clone(), target));
                }
            }
        }
        self.sent = sent;
        for (key, layer) in wanted {
            self.send_pli(now, &key, layer);
        }
    }

    fn transmit(&mut self) {
        for session in self.sessions.values_mut() {
            while let Some(msg) = session.poll_datagram() {
                self.out.push_back(MediaOutput::Transmit {
                    source: msg.transport.local_addr,
                    destination: msg.transport.peer_addr,
                    transport: Transport::of(msg.transport.transport_protocol),
                    data: msg.message.to_vec(),
                });
            }
        }
        for (transport, peer) in self.demux.take_evicted() {
            if transport == Transport::Tcp {
                self.out.push_back(MediaOutput::Hangup { peer });
            }
        }
    }

    fn timeout(&mut self, now: Instant) {
        for session in self.sessions.values_mut() {
            if let Err(e) = session.handle_timeout(now) {
                tracing::debug!(error = %e, "session timer");
            }
            // A timer may fail the connection (ICE) or open a track.
            self.dirty |= session.pump();
        }
    }
}

impl MediaCore for Sfu {
    fn handle_input(&mut self, input: MediaInput, now: Instant) {
        match input {
            MediaInput::Datagram {
                source,
                transport,
                data,
                ..
            } => self.datagram(now, source, transport, data),
            MediaInput::Offer {
                participant,
                sdp,
                publish,
                subscribe,
                screen,
            } => self.offer(now, participant, sdp, publish, subscribe, screen),
            MediaInput::Answer { participant, sdp } => self.answer(now, participant, sdp),
            MediaInput::Candidate {
                participant,
                candidate,
                sdp_mid,
            } => self.candidate(participant, candidate, sdp_mid),
            MediaInput::Leave { participant } => self.leave(now, &participant),
            MediaInput::Watch {
                participant,
                video,
                heights,
            } => self.watch(now, &participant, video, heights),
            MediaInput::Mute {
                participant,
                kind,
                muted,
            } => self.mute(now, participant, kind, muted),
            MediaInput::Timeout => self.timeout(now),
        }
        self.forward_media(now);
        self.reap(now);
        if let Some(speaker) = self.speaker.decide(now) {
            let participant = speaker
                .and_then(|id| self.sessions.get(&id))
                .map(|s| s.participant.clone());
            self.out
                .push_back(MediaOutput::ActiveSpeaker { participant });
        }
        if std::mem::take(&mut self.dirty) {
            self.reconcile();
        }
        if self.tracks.values().any(|t| t.simulcast.is_some()) {
            self.select_layers(now);
        } else {
            self.next_selection = None;
        }
        self.offers(now);
        self.transmit();
        self.next_timeout = self
            .sessions
            .values_mut()
            .filter_map(|s| s.poll_timeout())
            .chain(self.speaker.poll_timeout())
            .chain(self.next_selection)
            .min();
    }

    fn poll_output(&mut self) -> Option<MediaOutput> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.next_timeout
    }
}

impl TrackInfo {
    /// Tell `participant` their m-line `mid` carries this track (or no longer).
    fn announcement(&self, participant: &str, mid: String, added: bool) -> MediaOutput {
        MediaOutput::Track {
            participant: participant.to_owned(),
            owner: self.owner.clone(),
            kind: self.kind,
            mid,
            stream_id: self.stream_id.clone(),
            screen: self.screen,
            added,
        }
    }
}

/// The packet as one subscriber's leg needs it: its payload type, header
/// extensions renumbered by URI (those the leg did not negotiate dropped), and
/// `sdes:mid` naming the subscriber's m-line. Sequence numbers, timestamps, SSRC
/// and payload are untouched.
fn translate(packet: &rtc::rtp::Packet, leg: &Leg, publisher: &[(u8, String)]) -> rtc::rtp::Packet {
    let subscriber = &leg.extensions;
    let mid = leg.mid.as_deref();
    let mut out = packet.clone();
    out.header.payload_type = leg.payload_type;
    let ids = out.header.get_extension_ids();
    let mut moved = Vec::new();
    for id in &ids {
        let Some(payload) = out.header.get_extension(*id) else {
            continue;
        };
        let Some((_, uri)) = publisher.iter().find(|(pid, _)| pid == id) else {
            continue;
        };
        // Which layer a packet came from is the publisher's business: the
        // subscriber gets one stream.
        if uri == SDES_RTP_STREAM_ID_URI || uri == SDES_REPAIR_RTP_STREAM_ID_URI {
            continue;
        }
        let Some((sid, _)) = subscriber.iter().find(|(_, u)| u == uri) else {
            continue;
        };
        let payload = match mid {
            Some(mid) if uri == SDES_MID_URI => bytes::Bytes::copy_from_slice(mid.as_bytes()),
            _ => payload,
        };
        moved.push((*sid, payload));
    }
    for id in ids {
        let _ = out.header.del_extension(id);
    }
    for (id, payload) in moved {
        let _ = out.header.set_extension(id, payload);
    }
    out
}

#[cfg(test)]
mod rtt_tests {
    use super::round_trip;

    #[test]
    fn round_trip_from_lsr_and_dlsr() {
        // Now 10.5 s (NTP), echoing the report of 10.0 s, held 0.2 s: 0.3 s.
        let ntp = |s: f64| ((s * 65536.0) as u64) << 16;
        let mid = |s: f64| (ntp(s) >> 16) as u32;
        let rtt = round_trip(ntp(10.5), mid(10.0), (0.2 * 65536.0) as u32).unwrap();
        assert!((rtt - 0.3).abs() < 1e-3, "{rtt}");
        assert_eq!(round_trip(ntp(10.5), 0, 0), None, "no report echoed");
        // A block claiming a hold longer than the time since: no RTT.
        assert_eq!(round_trip(ntp(10.5), mid(10.0), 65536), None);
    }
}
