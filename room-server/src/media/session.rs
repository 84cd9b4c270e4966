//! One participant's WebRTC session: an `rtc` peer connection plus the signalling
//! state the SFU keeps around it.
//!
//! The client always makes the first offer. After it is answered, the SFU may
//! renegotiate (its own offer) whenever the forwarding graph changes the session's
//! sendonly transceivers — but only from a stable signalling state and with no
//! offer of its own in flight; an offer left unanswered for
//! [`OFFER_TIMEOUT`] is rolled back and the change offered again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc::ice::candidate::CandidateConfig;
use rtc::ice::tcp_type::TcpType;
use rtc::interceptor::{CongestionControlBuilder, Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::TaggedRTCMessage;
use rtc::peer_connection::sdp::{RTCSdpType, RTCSessionDescription};
use rtc::peer_connection::state::{RTCPeerConnectionState, RTCSignalingState};
use rtc::peer_connection::transport::{
    CandidateHostConfig, RTCDtlsRole, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{
    RTCRtpReceiverId, RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit,
};
use rtc::sansio::Protocol;
use rtc::sdp::SessionDescription;
use rtc::shared::error::{Error, Result};
use rtc::shared::TaggedBytesMut;

use super::codecs::{is_rtx, media_engine};
use super::congestion::{DelayEstimate, NumberedStreams, SharedGcc, SimulcastOnly};
use super::forward::TrackKey;
use super::keyframe::KeyframeRequestTap;
use super::simulcast::Layer;
use super::ufrag;
use super::MediaKind;

/// A session, numbered by the SFU; the number is part of its ICE ufrag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// The stream id (msid) a publisher's forwarded tracks carry: one for camera and
/// microphone, one for a shared screen and its sound.
pub(crate) fn stream_id(publisher: SessionId, screen: bool) -> String {
    let suffix = if screen { "s" } else { "" };
    format!("p{:x}{suffix}", publisher.0)
}

/// The SSRC a simulcast track of `publisher`'s m-line `mid` is forwarded with:
/// the same for every subscriber, different for every track (as far as a
/// 32-bit hash can tell), never one a browser would pick for itself on purpose.
pub(crate) fn simulcast_ssrc(publisher: SessionId, mid: &str) -> u32 {
    // FNV-1a over the session number and the mid.
    let mut h: u32 = 0x811c_9dc5;
    for b in publisher.0.to_le_bytes().iter().chain(mid.as_bytes()) {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.max(1)
}

/// The SSRC of the RTX stream (RFC 4588) that repairs `publisher`'s video of
/// m-line `mid` towards every subscriber.
pub(crate) fn rtx_ssrc(publisher: SessionId, mid: &str) -> u32 {
    simulcast_ssrc(publisher, &format!("{mid}/rtx"))
}

/// One track a participant sends, as [`Session::published`] describes it.
pub(crate) struct Published {
    pub mid: String,
    /// The track as subscribers' senders forward it.
    pub track: MediaStreamTrack,
    pub screen: bool,
    /// For a simulcast track, its layers as far as they have arrived.
    pub simulcast: Option<Vec<Layer>>,
}

/// How one subscriber's sender carries a codec.
pub(crate) struct Leg {
    pub payload_type: u8,
    /// Negotiated header extensions: (id, URI).
    pub extensions: Vec<(u8, String)>,
    pub mid: Option<String>,
}

/// How long the SFU waits for the answer to its own offer before rolling it back.
pub(crate) const OFFER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long after its first answer a session may take to connect (ICE and
/// DTLS) before the SFU gives up on it: a browser tries its candidate pairs for
/// well under this; one that is still not through is behind a network that
/// drops the room's UDP.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// One participant's session.
pub(crate) struct Session {
    pub id: SessionId,
    pub participant: String,
    pub publish: bool,
    pub subscribe: bool,
    pub pc: RTCPeerConnection,
    pwd: String,
    candidate: SocketAddr,
    /// Advertise a passive ICE-TCP candidate at `candidate` too.
    ice_tcp: bool,
    /// The client's first offer has been answered: the SFU may offer from now on.
    negotiated: bool,
    /// The forwarding graph changed this session's transceivers since the last offer.
    renegotiate: bool,
    /// The SFU's own offer awaiting an answer, and when it is given up on.
    offer_deadline: Option<Instant>,
    signaling: RTCSignalingState,
    connection: RTCPeerConnectionState,
    /// SSRCs of this session's inbound tracks learned when their first packet came
    /// (m-lines without `a=ssrc`): one per receiver, so bounded by the m-lines.
    learned_ssrcs: HashMap<RTCRtpReceiverId, u32>,
    /// Simulcast layers learned from their first packets, per receiver; bounded
    /// by the RTP stream ids the SDP declared (`rtc` drops packets of others).
    layers: HashMap<RTCRtpReceiverId, Vec<Layer>>,
    /// Mids of the client's m-lines that are simulcast (bounded by the m-lines).
    simulcast_mids: HashSet<String>,
    /// Forwarded tracks already announced to this participant, with their mid here.
    pub announced: HashMap<TrackKey, String>,
    /// Mids of the m-lines the client said carry a shared screen.
    screen: HashSet<String>,
    /// A moderator stopped forwarding this participant's audio / video.
    muted_audio: bool,
    muted_video: bool,
    /// GCC's target over this participant's TWCC feedback (`congestion.rs`).
    delay_estimate: DelayEstimate,
    /// The simulcast streams sent here, which carry transport-wide numbers.
    numbered: NumberedStreams,
    /// Until when the session may take to connect; `None` once it has.
    connect_deadline: Option<Instant>,
    /// Whose video this participant wants (`watch`); None: everyone's.
    pub watching: Option<HashSet<String>>,
    /// The height this participant shows each publisher's camera at (`watch`).
    pub heights: BTreeMap<String, u32>,
}

impl Session {
    /// A session whose host candidate is `candidate` (UDP, and with `ice_tcp`
    /// passive TCP too).
    pub(crate) fn new(
        id: SessionId,
        participant: String,
        candidate: SocketAddr,
        ice_tcp: bool,
        delay_based_estimate: bool,
        now: Instant,
    ) -> Result<Self> {
        let pwd = rtc::ice::rand::generate_pwd();
        // ICE-lite and DTLS server: the client runs the checks and the handshake.
        let settings = SettingEngineBuilder::new()
            .with_ice_credentials(ufrag::encode(id), pwd.clone())
            .with_lite(true)
            .with_answering_dtls_role(RTCDtlsRole::Server)
            .build();
        let mut media = media_engine()?;
        let registry = register_default_interceptors(Registry::new(), &mut media)?;
        let registry = registry.with(Slot::Custom(14_000), KeyframeRequestTap::default());
        // Send-side congestion control, when enabled: number the simulcast
        // streams that leave, join the browser's TWCC feedback with them, run GCC
        // (`congestion.rs`). The TWCC header extension and feedback are
        // registered by the defaults above (the receiving half serves the
        // publishers' own estimators either way).
        let numbered = NumberedStreams::default();
        let (registry, delay_estimate) = if delay_based_estimate {
            let (gcc, estimate) = SharedGcc::new();
            let registry = registry
                .with(Slot::TwccSender, SimulcastOnly::new(numbered.clone()))
                .with(
                    Slot::CongestionControl,
                    CongestionControlBuilder::new(gcc).build(),
                );
            (registry, estimate)
        } else {
            // Never written: `delay_estimate()` stays `None`.
            (registry, DelayEstimate::default())
        };
        let pc = RTCPeerConnectionBuilder::new()
            .with_setting_engine(settings)
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .build(now)?;
        Ok(Self {
            id,
            participant,
            publish: false,
            subscribe: false,
            pc,
            pwd,
            candidate,
            ice_tcp,
            negotiated: false,
            renegotiate: false,
            offer_deadline: None,
            signaling: RTCSignalingState::Stable,
            connection: RTCPeerConnectionState::New,
            learned_ssrcs: HashMap::new(),
            layers: HashMap::new(),
            simulcast_mids: HashSet::new(),
            announced: HashMap::new(),
            screen: HashSet::new(),
            muted_audio: false,
            muted_video: false,
            delay_estimate,
            numbered,
            connect_deadline: None,
            watching: None,
            heights: BTreeMap::new(),
        })
    }

    /// Whether a moderator stopped forwarding this participant's `kind`.
    pub(crate) fn muted(&self, kind: MediaKind) -> bool {
        match kind {
            MediaKind::Audio => self.muted_audio,
            MediaKind::Video => self.muted_video,
        }
    }

    pub(crate) fn set_muted(&mut self, kind: MediaKind, muted: bool) {
        match kind {
            MediaKind::Audio => self.muted_audio = muted,
            MediaKind::Video => self.muted_video = muted,
        }
    }

    /// The height this participant shows `publisher`'s camera at, if they said.
    pub(crate) fn rendered_height(&self, publisher: &str) -> Option<u32> {
        self.heights.get(publisher).copied()
    }

    /// What GCC makes of this participant's TWCC feedback, bits per second;
    /// `None` before any feedback (a client without transport-cc).
    pub(crate) fn delay_estimate(&self) -> Option<u64> {
        self.delay_estimate.get()
    }

    /// Whether this participant wants `publisher`'s video forwarded.
    pub(crate) fn watches(&self, publisher: &str) -> bool {
        self.watching.as_ref().is_none_or(|w| w.contains(publisher))
    }

    /// The client's word on which of its m-lines carry a shared screen.
    pub(crate) fn set_screen(&mut self, mids: Vec<String>) {
        self.screen = mids.into_iter().collect();
    }

    /// The session failed to connect in time, or lost its connection for good.
    pub(crate) fn failed(&self, now: Instant) -> bool {
        matches!(
            self.connection,
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
        ) || self.connect_deadline.is_some_and(|t| now >= t)
    }

    /// The local ICE password (for the demultiplexer's integrity check).
    pub(crate) fn password(&self) -> &str {
        &self.pwd
    }

    pub(crate) fn connected(&self) -> bool {
        self.connection == RTCPeerConnectionState::Connected
    }

    /// Apply the client's offer and return the answer.
    pub(crate) fn accept_offer(&mut self, now: Instant, sdp: String) -> Result<String> {
        if self.offer_deadline.is_some() {
            // Glare: our offer is outstanding. The client is the polite side of
            // nothing here; roll ours back and offer it again afterwards.
            self.rollback(now)?;
        }
        self.pc
            .set_remote_description(now, RTCSessionDescription::offer(sdp)?)?;
        // Parsed once for both: the client's offer as applied.
        if let Some(remote) = self
            .pc
            .remote_description()
            .and_then(|d| d.unmarshal().ok())
        {
            self.mirror_remote_directions(&remote);
            self.no_rtx_from_publishers(&remote)?;
        }
        if !self.negotiated {
            let mut networks = vec![("udp", TcpType::Unspecified)];
            if self.ice_tcp {
                networks.push(("tcp", TcpType::Passive));
            }
            for (network, tcp_type) in networks {
                let host = CandidateHostConfig {
                    base_config: CandidateConfig {
                        network: network.to_owned(),
                        address: self.candidate.ip().to_string(),
                        port: self.candidate.port(),
                        component: 1,
                        ..Default::default()
                    },
                    tcp_type,
                }
                .new_candidate_host()?;
                self.pc
                    .add_local_candidate(RTCIceCandidate::from(&host).to_json()?)?;
            }
        }
        let answer = self.pc.create_answer(None)?;
        self.pc.set_local_description(now, answer)?;
        let answer = self
            .pc
            .local_description()
            .ok_or(Error::ErrPeerConnLocalDescriptionNil)?;
        if !self.negotiated && !self.connected() {
            self.connect_deadline = Some(now + CONNECT_TIMEOUT);
        }
        self.negotiated = true;
        Ok(answer.sdp)
    }

    /// Apply the client's answer to our offer.
    pub(crate) fn accept_answer(&mut self, now: Instant, sdp: String) -> Result<()> {
        if self.offer_deadline.is_none() {
            return Err(Error::Other(
                "no server offer is waiting for an answer".into(),
            ));
        }
        self.pc
            .set_remote_description(now, RTCSessionDescription::answer(sdp)?)?;
        self.offer_deadline = None;
        Ok(())
    }

    pub(crate) fn add_candidate(
        &mut self,
        candidate: String,
        sdp_mid: Option<String>,
    ) -> Result<()> {
        self.pc.add_remote_candidate(RTCIceCandidateInit {
            candidate,
            sdp_mid,
            ..Default::default()
        })
    }

    /// A client that sets a forwarded m-line `inactive` (or back to `recvonly`) in its
    /// own offer says whether it wants that track; mirror it on our side.
    fn mirror_remote_directions(&mut self, remote: &SessionDescription) {
        let ids: Vec<_> = self.pc.get_transceivers().collect();
        for media in &remote.media_descriptions {
            let Some(mid) = media.attribute("mid").flatten() else {
                continue;
            };
            let direction = if media.attribute("inactive").is_some() {
                RTCRtpTransceiverDirection::Inactive
            } else if media.attribute("recvonly").is_some() {
                RTCRtpTransceiverDirection::Sendonly
            } else {
                continue;
            };
            for id in &ids {
                if let Some(mut t) = self.pc.rtp_transceiver(*id) {
                    if t.mid().as_deref() == Some(mid) && t.sender().is_some() {
                        t.set_direction(direction);
                    }
                }
            }
        }
    }

    /// Answer the m-lines the client sends on without RTX, so that it resends
    /// lost packets on their own stream: `rtc` recovers what arrives over RTX,
    /// but its NACK generator, which never sees it, would go on asking. RTX
    /// stays on the m-lines the room sends on.
    fn no_rtx_from_publishers(&mut self, remote: &SessionDescription) -> Result<()> {
        let sending: HashSet<String> = remote
            .media_descriptions
            .iter()
            .filter(|m| m.attribute("sendonly").is_some() || m.attribute("sendrecv").is_some())
            .filter_map(|m| m.attribute("mid").flatten().map(str::to_owned))
            .collect();
        let ids: Vec<_> = self.pc.get_transceivers().collect();
        for id in ids {
            let Some(t) = self.pc.rtp_transceiver(id) else {
                continue;
            };
            let (Some(mid), Some(receiver)) = (t.mid().clone(), t.receiver()) else {
                continue;
            };
            if !sending.contains(&mid) {
                continue;
            }
            let codecs = match self.pc.rtp_receiver(receiver) {
                Some(mut r) => r.get_parameters().rtp_parameters.codecs.clone(),
                None => continue,
            };
            if !codecs.iter().any(|c| is_rtx(&c.rtp_codec.mime_type)) {
                continue;
            }
            let primary = codecs
                .into_iter()
                .filter(|c| !is_rtx(&c.rtp_codec.mime_type))
                .collect();
            if let Some(mut t) = self.pc.rtp_transceiver(id) {
                t.set_codec_preferences(primary)?;
            }
        }
        Ok(())
    }

    fn rollback(&mut self, now: Instant) -> Result<()> {
        self.offer_deadline = None;
        self.renegotiate = true;
        self.pc
            .set_local_description(now, RTCSessionDescription::rollback(None)?)
    }

    /// Drain the peer connection's events; true when an inbound track opened with
    /// an SSRC not known before, so the forwarding table must be brought up to date.
    pub(crate) fn pump(&mut self) -> bool {
        let mut learned = false;
        while let Some(event) = self.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnNegotiationNeededEvent => self.renegotiate = true,
                RTCPeerConnectionEvent::OnSignalingStateChangeEvent(s) => self.signaling = s,
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => {
                    tracing::debug!(participant = %self.participant, state = %s, "media session");
                    self.connection = s;
                    if s == RTCPeerConnectionState::Connected {
                        self.connect_deadline = None;
                    }
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => match init.rid {
                    Some(rid) if !rid.is_empty() => {
                        let layers = self.layers.entry(init.receiver_id).or_default();
                        match layers.iter_mut().find(|l| l.rid == rid) {
                            Some(layer) if layer.ssrc == init.ssrc => {}
                            Some(layer) => {
                                layer.ssrc = init.ssrc;
                                learned = true;
                            }
                            None => {
                                layers.push(Layer {
                                    rid,
                                    ssrc: init.ssrc,
                                });
                                learned = true;
                            }
                        }
                    }
                    _ => {
                        let old = self.learned_ssrcs.insert(init.receiver_id, init.ssrc);
                        learned |= old != Some(init.ssrc);
                    }
                },
                _ => {}
            }
        }
        learned
    }

    /// The SFU's renegotiation offer, when one is due and allowed now.
    pub(crate) fn poll_offer(&mut self, now: Instant) -> Result<Option<String>> {
        if !self.negotiated
            || !self.renegotiate
            || self.offer_deadline.is_some()
            || self.signaling != RTCSignalingState::Stable
        {
            return Ok(None);
        }
        self.renegotiate = false;
        let offer = self.pc.create_offer(None)?;
        self.pc.set_local_description(now, offer)?;
        let offer = self
            .pc
            .local_description()
            .ok_or(Error::ErrPeerConnLocalDescriptionNil)?;
        debug_assert_eq!(offer.sdp_type, RTCSdpType::Offer);
        self.offer_deadline = Some(now + OFFER_TIMEOUT);
        Ok(Some(offer.sdp))
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Result<()> {
        if self.offer_deadline.is_some_and(|t| now >= t) {
            tracing::warn!(participant = %self.participant, "offer unanswered; rolling back");
            self.rollback(now)?;
        }
        self.pc.handle_timeout(now)
    }

    pub(crate) fn poll_timeout(&mut self) -> Option<Instant> {
        [
            self.pc.poll_timeout(),
            self.offer_deadline,
            self.connect_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(crate) fn handle_datagram(&mut self, msg: TaggedBytesMut) -> Result<()> {
        self.pc.handle_read(msg)
    }

    pub(crate) fn poll_datagram(&mut self) -> Option<TaggedBytesMut> {
        self.pc.poll_write()
    }

    pub(crate) fn poll_message(&mut self) -> Option<TaggedRTCMessage> {
        self.pc.poll_read()
    }

    /// The tracks this participant sends, by mid, as the tracks to forward:
    /// stream id `p<session>` (`p<session>s` for a shared screen, so a browser
    /// keeps it apart from the camera), with the negotiated codecs and, where
    /// the SDP or the first packet told us, the SSRC. A simulcast track (its
    /// m-line has `a=simulcast`) is forwarded as one stream with an SSRC of the
    /// SFU's ([`simulcast_ssrc`]), spliced from its layers.
    pub(crate) fn published(&mut self) -> Vec<Published> {
        let remote = self
            .pc
            .remote_description()
            .and_then(|d| d.unmarshal().ok());
        let receivers: Vec<RTCRtpReceiverId> = self.pc.get_receivers().collect();
        let mut tracks = Vec::new();
        for rid in receivers {
            let Some(mid) = self
                .pc
                .rtp_transceiver(rid.into())
                .and_then(|t| t.mid().clone())
            else {
                continue;
            };
            let Some((kind, track_id, params)) = self.pc.rtp_receiver(rid).map(|mut r| {
                let track = r.track();
                (
                    track.kind(),
                    track.track_id().clone(),
                    r.get_parameters().clone(),
                )
            }) else {
                continue;
            };
            let from_sdp = remote.as_ref().and_then(|sdp| {
                let media = sdp
                    .media_descriptions
                    .iter()
                    .find(|m| m.attribute("mid").flatten() == Some(mid.as_str()))?;
                media
                    .attribute("ssrc")
                    .flatten()?
                    .split_whitespace()
                    .next()?
                    .parse::<u32>()
                    .ok()
            });
            // The client's offer says `a=simulcast:send`; its answers to our
            // offers may not repeat it, so once seen it stays, as do layers
            // that arrived with RTP stream ids.
            let offered = remote.as_ref().is_some_and(|sdp| {
                sdp.media_descriptions.iter().any(|m| {
                    m.attribute("mid").flatten() == Some(mid.as_str())
                        && m.attribute("simulcast")
                            .flatten()
                            .is_some_and(|v| v.trim_start().starts_with("send"))
                })
            });
            if offered || self.layers.contains_key(&rid) {
                self.simulcast_mids.insert(mid.clone());
            }
            let simulcast = self.simulcast_mids.contains(&mid);
            let learned = self.learned_ssrcs.get(&rid).copied();
            let ssrc = if simulcast {
                Some(simulcast_ssrc(self.id, &mid))
            } else {
                from_sdp.or(learned)
            };
            let layers = if simulcast {
                self.layers.get(&rid).cloned().unwrap_or_default()
            } else {
                Vec::new()
            };
            // Video is repaired over RTX towards subscribers who negotiate it.
            let rtx =
                (kind == RtpCodecKind::Video && ssrc.is_some()).then(|| RTCRtpRtxParameters {
                    ssrc: rtx_ssrc(self.id, &mid),
                });
            let codings = params
                .rtp_parameters
                .codecs
                .iter()
                .filter(|c| !is_rtx(&c.rtp_codec.mime_type))
                .map(|c| RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc,
                        rtx: rtx.clone(),
                        ..Default::default()
                    },
                    active: true,
                    codec: c.rtp_codec.clone(),
                    ..Default::default()
                })
                .collect();
            let screen = self.screen.contains(&mid);
            let stream = stream_id(self.id, screen);
            let track = MediaStreamTrack::new(
                stream.clone(),
                format!("{stream}-{track_id}"),
                format!("{stream}-{mid}"),
                kind,
                codings,
            );
            tracks.push(Published {
                mid,
                track,
                screen,
                simulcast: simulcast.then_some(layers),
            });
        }
        tracks
    }

    /// Add a sendonly transceiver forwarding `track` to this participant; a
    /// `simulcast` one is numbered for TWCC (`congestion.rs`).
    pub(crate) fn add_forward(
        &mut self,
        track: MediaStreamTrack,
        simulcast: bool,
    ) -> Result<RTCRtpSenderId> {
        if simulcast {
            for ssrc in track.ssrcs() {
                self.numbered.add(ssrc);
            }
        }
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            streams: Vec::new(),
            send_encodings: Vec::new(),
        };
        let id = self.pc.add_transceiver_from_track(track, Some(init))?;
        Ok(RTCRtpSenderId::from(id))
    }

    pub(crate) fn remove_forward(&mut self, sender: RTCRtpSenderId) -> Result<()> {
        self.pc.remove_track(sender)
    }

    /// The mid of one of our senders, once an offer has assigned it.
    pub(crate) fn sender_mid(&mut self, sender: RTCRtpSenderId) -> Option<String> {
        self.pc.rtp_transceiver(sender.into())?.mid().clone()
    }

    /// The receiver of this session's m-line `mid`.
    fn receiver_by_mid(&mut self, mid: &str) -> Option<RTCRtpReceiverId> {
        let ids: Vec<RTCRtpReceiverId> = self.pc.get_receivers().collect();
        ids.into_iter().find(|id| {
            self.pc
                .rtp_transceiver((*id).into())
                .is_some_and(|t| t.mid().as_deref() == Some(mid))
        })
    }

    /// The codec (mime type) an inbound packet on `mid` with `payload_type` carries,
    /// and the header extensions (id, URI) negotiated on that m-line.
    pub(crate) fn receiver_codec(
        &mut self,
        mid: &str,
        payload_type: u8,
    ) -> Option<(String, Vec<(u8, String)>)> {
        let id = self.receiver_by_mid(mid)?;
        let mut receiver = self.pc.rtp_receiver(id)?;
        let params = &receiver.get_parameters().rtp_parameters;
        let codec = params
            .codecs
            .iter()
            .find(|c| c.payload_type == payload_type)?;
        let exts = params
            .header_extensions
            .iter()
            .map(|e| (e.id as u8, e.uri.clone()))
            .collect();
        Some((codec.rtp_codec.mime_type.clone(), exts))
    }

    /// The payload type `mime` has on one of our senders, its header extensions
    /// and its mid.
    pub(crate) fn sender_codec(&mut self, sender: RTCRtpSenderId, mime: &str) -> Option<Leg> {
        let mid = self.sender_mid(sender);
        let mut s = self.pc.rtp_sender(sender)?;
        let params = &s.get_parameters().rtp_parameters;
        let pt = params
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))?
            .payload_type;
        let exts = params
            .header_extensions
            .iter()
            .map(|e| (e.id as u8, e.uri.clone()))
            .collect();
        Some(Leg {
            payload_type: pt,
            extensions: exts,
            mid,
        })
    }

    pub(crate) fn write_rtp(
        &mut self,
        now: Instant,
        sender: RTCRtpSenderId,
        packet: rtc::rtp::Packet,
    ) -> Result<()> {
        self.pc
            .rtp_sender(sender)
            .ok_or(Error::ErrRTPSenderNotExisted)?
            .write_rtp(now, packet)
    }

    /// Send feedback (a keyframe request) about the track this session sends on `mid`.
    pub(crate) fn write_rtcp(
        &mut self,
        now: Instant,
        mid: &str,
        packets: Vec<Box<dyn rtc::rtcp::Packet>>,
    ) -> Result<()> {
        let id = self
            .receiver_by_mid(mid)
            .ok_or(Error::ErrRTPReceiverNotExisted)?;
        self.pc
            .rtp_receiver(id)
            .ok_or(Error::ErrRTPReceiverNotExisted)?
            .write_rtcp(now, packets)
    }

    pub(crate) fn sender_active(&mut self, sender: RTCRtpSenderId) -> bool {
        self.pc
            .rtp_transceiver(sender.into())
            .is_some_and(|t| t.current_direction().has_send())
    }
}
