//! The SFU over loopback with real WebRTC peers: `webrtc` 0.21 clients signal on
//! the room WebSocket and send Opus and VP8 RTP to the room's UDP port; ICE,
//! DTLS-SRTP and RTP are real on both sides.

use rendezvous_room::media_client;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rendezvous_api::Grants;
use rendezvous_room::client::{Incoming, RoomClient};
use rendezvous_room::protocol::{ClientMessage, ServerEvent, TrackKind};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCConfigurationBuilder, RTCPeerConnectionState,
    RTCSessionDescription, Registry,
};
use webrtc::runtime::default_runtime;

use crate::common::{metric, within, TestRoom};

/// Events a test peer reports; 256 is far more than a test produces.
const EVENTS: usize = 256;

enum PeerEvent {
    Connected,
    Track(Arc<dyn TrackRemote>),
    Announced {
        owner: String,
        kind: TrackKind,
        removed: bool,
    },
    Offered,
}

struct Handler(mpsc::Sender<PeerEvent>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            let _ = self.0.send(PeerEvent::Connected).await;
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.0.send(PeerEvent::Track(track)).await;
    }
}

/// A participant with a WebRTC peer connection whose signalling runs in a task.
struct MediaPeer {
    pc: Arc<dyn PeerConnection>,
    events: mpsc::Receiver<PeerEvent>,
    outgoing: mpsc::Sender<ClientMessage>,
    tracks: Vec<Arc<dyn TrackRemote>>,
    announced: Vec<(String, TrackKind, bool)>,
    offers: usize,
    connected: bool,
}

impl std::fmt::Debug for MediaPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaPeer").finish_non_exhaustive()
    }
}

async fn mk_peer(room: &TestRoom, sub: &str, grants: Grants) -> MediaPeer {
    let client = RoomClient::connect(&room.url(), &room.token_with(sub, grants, |_| {}))
        .await
        .expect("join");
    let (tx, events) = mpsc::channel(EVENTS);
    let mut media = MediaEngine::default();
    media.register_default_codecs().unwrap();
    let registry = register_default_interceptors(Registry::new(), &mut media).unwrap();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Handler(tx.clone())) as Arc<dyn PeerConnectionEventHandler>)
        .with_runtime(default_runtime().expect("tokio runtime"))
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .expect("peer connection");
    let pc = Arc::new(pc) as Arc<dyn PeerConnection>;
    let (outgoing, out_rx) = mpsc::channel(EVENTS);
    tokio::spawn(signalling(client, pc.clone(), tx, out_rx));
    MediaPeer {
        pc,
        events,
        outgoing,
        tracks: Vec::new(),
        announced: Vec::new(),
        offers: 0,
        connected: false,
    }
}

/// Carry SDP between the room socket and the peer connection; answer server offers.
async fn signalling(
    mut client: RoomClient,
    pc: Arc<dyn PeerConnection>,
    events: mpsc::Sender<PeerEvent>,
    mut outgoing: mpsc::Receiver<ClientMessage>,
) {
    loop {
        tokio::select! {
            msg = outgoing.recv() => {
                let Some(msg) = msg else { return client.close().await };
                client.send(&msg).await.expect("send");
            }
            incoming = client.recv() => {
                let Some(Incoming::Event(env)) = incoming else { return };
                match env.event {
                    ServerEvent::Answer { sdp } => {
                        let answer = RTCSessionDescription::answer(sdp).unwrap();
                        pc.set_remote_description(answer).await.expect("apply answer");
                    }
                    ServerEvent::Offer { sdp } => {
                        let offer = RTCSessionDescription::offer(sdp).unwrap();
                        pc.set_remote_description(offer).await.expect("apply offer");
                        let answer = pc.create_answer(None).await.unwrap();
                        pc.set_local_description(answer.clone()).await.unwrap();
                        client.send(&ClientMessage::Answer { sdp: answer.sdp }).await.unwrap();
                        let _ = events.send(PeerEvent::Offered).await;
                    }
                    ServerEvent::Track { participant_id, kind, removed, .. } => {
                        let e = PeerEvent::Announced { owner: participant_id, kind, removed };
                        let _ = events.send(e).await;
                    }
                    ServerEvent::Error { code, message, .. } => panic!("{code:?}: {message}"),
                    _ => {}
                }
            }
        }
    }
}

impl MediaPeer {
    async fn offer(&self) {
        let offer = self.pc.create_offer(None).await.unwrap();
        self.pc.set_local_description(offer.clone()).await.unwrap();
        let msg = ClientMessage::Offer {
            sdp: offer.sdp,
            screen: vec![],
        };
        self.outgoing.send(msg).await.unwrap();
    }

    /// Process events until `done` holds.
    async fn until(&mut self, mut done: impl FnMut(&MediaPeer) -> bool) {
        within(async {
            while !done(self) {
                match self.events.recv().await.expect("peer events") {
                    PeerEvent::Connected => self.connected = true,
                    PeerEvent::Track(t) => self.tracks.push(t),
                    PeerEvent::Announced {
                        owner,
                        kind,
                        removed,
                    } => self.announced.push((owner, kind, removed)),
                    PeerEvent::Offered => self.offers += 1,
                }
            }
        })
        .await
    }

    /// A subscriber's first offer: one data channel.
    async fn subscribe(&mut self) {
        self.pc
            .create_data_channel("bootstrap", None)
            .await
            .unwrap();
        self.offer().await;
        self.until(|p| p.connected).await;
    }
}

/// A publisher's send tracks.
struct Publishing {
    tracks: Vec<(Arc<TrackLocalStaticRTP>, u32, u8)>,
    seq: u16,
}

async fn publish(peer: &mut MediaPeer, name: &str) -> Publishing {
    let mut tracks = Vec::new();
    for (kind, mime, clock, channels, ssrc, pt) in [
        (
            RtpCodecKind::Audio,
            MIME_TYPE_OPUS,
            48_000,
            2,
            0x0a0a_0001,
            111,
        ),
        (
            RtpCodecKind::Video,
            MIME_TYPE_VP8,
            90_000,
            0,
            0x0b0b_0002,
            96,
        ),
    ] {
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            format!("{name}-stream"),
            format!("{name}-{mime}"),
            format!("{name}-{mime}"),
            kind,
            vec![media_client::send_encoding(
                kind, mime, clock, channels, ssrc,
            )],
        )));
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            streams: vec![],
            send_encodings: vec![],
        };
        peer.pc
            .add_transceiver_from_track(track.clone() as Arc<dyn TrackLocal>, Some(init))
            .await
            .unwrap();
        tracks.push((track, ssrc, pt));
    }
    peer.offer().await;
    peer.until(|p| p.connected).await;
    Publishing { tracks, seq: 1 }
}

impl Publishing {
    /// Send `n` packets per track, 5 ms apart; returns what was sent, by SSRC.
    async fn send(&mut self, n: u16) -> HashMap<u32, Vec<(u16, Vec<u8>)>> {
        let mut sent: HashMap<u32, Vec<(u16, Vec<u8>)>> = HashMap::new();
        for _ in 0..n {
            let seq = self.seq;
            self.seq = self.seq.wrapping_add(1);
            for (track, ssrc, pt) in &self.tracks {
                let payload = format!("{ssrc:x}/{seq}").into_bytes();
                let packet = rtp::Packet {
                    header: rtp::header::Header {
                        version: 2,
                        marker: true,
                        payload_type: *pt,
                        sequence_number: seq,
                        timestamp: u32::from(seq) * 960,
                        ssrc: *ssrc,
                        ..Default::default()
                    },
                    payload: bytes::Bytes::from(payload.clone()),
                };
                track.write_rtp(packet).await.unwrap();
                sent.entry(*ssrc).or_default().push((seq, payload));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        sent
    }
}

/// Read every forwarded track until it has delivered the last of `sent`; the
/// packets read must be exactly a suffix of what was sent, in order.
async fn expect_forwarded(peer: &MediaPeer, sent: &HashMap<u32, Vec<(u16, Vec<u8>)>>) {
    assert_eq!(peer.tracks.len(), 2, "one remote track per published track");
    for track in &peer.tracks {
        let mut got: Vec<(u16, Vec<u8>)> = Vec::new();
        let mut ssrc = None;
        within(async {
            loop {
                match track.poll().await.expect("track open") {
                    TrackRemoteEvent::OnRtpPacket(pkt) => {
                        ssrc = Some(pkt.header.ssrc);
                        got.push((pkt.header.sequence_number, pkt.payload.to_vec()));
                        let want = &sent[&pkt.header.ssrc];
                        if got.last() == want.last() {
                            return;
                        }
                    }
                    _ => continue,
                }
            }
        })
        .await;
        let want = &sent[&ssrc.unwrap()];
        let first = want
            .iter()
            .position(|w| *w == got[0])
            .expect("a sent packet");
        assert_eq!(got, want[first..], "in order, none lost or changed");
        assert!(got.len() >= want.len() / 2, "most of the stream arrived");
    }
}

#[tokio::test]
async fn a_publishers_audio_and_video_reach_two_subscribers_intact_and_in_order() {
    let room = TestRoom::start().await;
    let mut bob = mk_peer(&room, "bob", Grants::participant()).await;
    let mut carol = mk_peer(&room, "carol", Grants::participant()).await;
    bob.subscribe().await;
    carol.subscribe().await;

    let mut alice = mk_peer(&room, "alice", Grants::creator()).await;
    let mut media = publish(&mut alice, "alice").await;
    for p in [&mut bob, &mut carol] {
        p.until(|p| p.offers >= 1 && p.announced.len() == 2).await;
        let mut kinds: Vec<TrackKind> = p.announced.iter().map(|(_, k, _)| *k).collect();
        kinds.sort_by_key(|k| *k == TrackKind::Video);
        assert_eq!(kinds, [TrackKind::Audio, TrackKind::Video]);
        assert!(p.announced.iter().all(|(o, _, r)| o == "alice" && !r));
    }
    // Media starts flowing before the tracks fire: on_track comes with the first packet.
    let mut sent = media.send(20).await;
    bob.until(|p| p.tracks.len() == 2).await;
    carol.until(|p| p.tracks.len() == 2).await;
    for (ssrc, more) in media.send(100).await {
        sent.entry(ssrc).or_default().extend(more);
    }
    expect_forwarded(&bob, &sent).await;
    expect_forwarded(&carol, &sent).await;

    let text = room.metrics().await;
    assert!(text.contains("rendezvous_room_media_sessions 3"), "{text}");
    let count = |name: &str| -> u64 { metric(&text, name).expect(name) as u64 };
    // 120 packets on each of two tracks came in; twice that went out.
    assert!(count("rendezvous_room_media_datagrams_in_total") > 240);
    assert!(count("rendezvous_room_media_datagrams_out_total") > 480);
    let rtp_in = count("rendezvous_room_media_rtp_packets_in_total");
    assert!((200..=240).contains(&rtp_in), "{rtp_in} RTP packets in");
    assert!(count("rendezvous_room_media_rtp_packets_out_total") >= 240 * 3 / 2);
    assert!(count("rendezvous_room_media_rtp_payload_bytes_out_total") > 0);
    assert_eq!(count("rendezvous_room_media_tracks"), 2);
    assert_eq!(count("rendezvous_room_media_subscriptions"), 4);

    // Round trips from the subscribers' reports (now − LSR − DLSR): on
    // loopback, well under 50 ms. Reports come about once a second.
    let rtt = "rendezvous_room_media_subscriber_rtt_seconds";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (samples, total) = loop {
        let text = room.metrics().await;
        let value = |suffix: &str| -> f64 {
            metric(&text, &format!("{rtt}_{suffix}{{kind=\"video\"}}")).unwrap_or(0.0)
        };
        let samples = value("count");
        if samples >= 1.0 || tokio::time::Instant::now() > deadline {
            break (samples, value("sum"));
        }
        media.send(10).await;
    };
    assert!(samples >= 1.0, "no round-trip time measured");
    let mean = total / samples;
    println!(
        "subscriber RTT on loopback: mean {:.2} ms over {samples} reports",
        mean * 1e3
    );
    assert!(
        (0.0..0.05).contains(&mean),
        "mean RTT {mean} s over {samples} reports"
    );
}

#[tokio::test]
async fn a_late_joiner_receives_the_existing_tracks_and_leaving_unpublishes() {
    let room = TestRoom::start().await;
    let mut alice = mk_peer(&room, "alice", Grants::creator()).await;
    let mut media = publish(&mut alice, "alice").await;
    media.send(10).await;

    let mut dave = mk_peer(&room, "dave", Grants::participant()).await;
    dave.subscribe().await;
    dave.until(|p| p.announced.len() == 2 && p.offers >= 1)
        .await;
    let mut sent = media.send(20).await;
    dave.until(|p| p.tracks.len() == 2).await;
    for (ssrc, more) in media.send(50).await {
        sent.entry(ssrc).or_default().extend(more);
    }
    expect_forwarded(&dave, &sent).await;

    // Alice leaves: dave is told both tracks are gone and renegotiates.
    let offers = dave.offers;
    alice.outgoing.send(ClientMessage::Leave {}).await.unwrap();
    dave.until(|p| p.announced.iter().filter(|(_, _, r)| *r).count() == 2 && p.offers > offers)
        .await;
    assert!(dave
        .announced
        .iter()
        .filter(|(_, _, r)| *r)
        .all(|(o, _, _)| o == "alice"));
}
