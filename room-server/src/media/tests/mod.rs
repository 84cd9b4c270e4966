//! The SFU against real `rtc` peers, in memory: real ICE, DTLS-SRTP and RTP, the
//! datagrams carried by the test between addresses it makes up, on a simulated
//! clock (str0m's habit), so a minute of media takes milliseconds.

mod net;

use std::time::Duration;

use rtc::peer_connection::configuration::media_engine::MIME_TYPE_VP8;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

use super::{MediaInput, MediaKind};
use net::{received_from, Net, Peer, AUDIO_SSRC, VIDEO_SSRC};

/// Bob subscribes (his first offer made by `bootstrap`), then alice publishes
/// audio and video; both connected.
fn bob_then_alice(bootstrap: fn(&mut Peer)) -> Net {
    let mut net = Net::new();
    net.add("bob");
    bootstrap(net.peer("bob"));
    net.offer("bob", false, true);
    net.add("alice");
    net.peer("alice").publish();
    net.offer("alice", true, true);
    net.connect_all();
    net
}

fn alice_to_bob() -> Net {
    bob_then_alice(Peer::bootstrap)
}

#[test]
fn offer_is_answered_and_ice_dtls_connect() {
    let mut net = Net::new();
    net.add("alice");
    net.peer("alice").publish();
    net.offer("alice", true, true);
    net.run_until(Duration::from_secs(10), |n| n.peers[0].connected);
    assert_eq!(net.sfu.sessions(), 1);
}

#[test]
fn publisher_media_reaches_two_subscribers_intact_and_in_order() {
    let mut net = Net::new();
    for name in ["bob", "carol"] {
        net.add(name);
        net.peer(name).bootstrap();
        net.offer(name, false, true);
    }
    net.add("alice");
    net.peer("alice").publish();
    net.offer("alice", true, true);
    net.connect_all();
    for name in ["bob", "carol"] {
        let p = net.peer(name);
        assert!(p.offers >= 1, "{name} got no renegotiation offer");
        let mut kinds: Vec<_> = p
            .tracks
            .values()
            .map(|(owner, kind, added)| (owner.clone(), *kind, *added))
            .collect();
        kinds.sort_by_key(|(_, k, _)| *k == MediaKind::Video);
        assert_eq!(
            kinds,
            vec![
                ("alice".to_owned(), MediaKind::Audio, true),
                ("alice".to_owned(), MediaKind::Video, true)
            ]
        );
    }
    let sent = net.send_media("alice", 10);
    let reconciles = net.sfu.reconciles;
    let more = net.send_media("alice", 40);
    assert_eq!(net.sfu.reconciles, reconciles, "no reconcile per packet");
    let sent: Vec<_> = sent.into_iter().chain(more).collect();
    net.settle();
    for name in ["bob", "carol"] {
        assert_received_all(net.peer(name), &sent);
    }
    // Publishers do not get their own media back.
    assert!(net.peer("alice").rtp.is_empty());
}

#[test]
fn a_subscriber_may_start_with_recvonly_transceivers() {
    let mut net = bob_then_alice(Peer::bootstrap_recvonly);
    net.settle();
    assert_eq!(net.peer("bob").tracks.len(), 2);
    let sent = net.send_media("alice", 20);
    net.settle();
    assert_received_all(net.peer("bob"), &sent);
}

#[test]
fn an_unanswered_offer_is_rolled_back_and_made_again() {
    let mut net = Net::new();
    net.add("bob");
    net.peer("bob").bootstrap();
    net.offer("bob", false, true);
    net.run_until(Duration::from_secs(10), |n| n.peers[0].connected);
    net.peer("bob").ignore_offers = true;
    net.add("alice");
    net.peer("alice").publish();
    net.offer("alice", true, true);
    net.run_until(Duration::from_secs(5), |n| n.peers[0].offers == 1);
    net.run_until(Duration::from_secs(15), |n| n.peers[0].offers == 2);
    // Answered this time, the tracks flow.
    net.peer("bob").ignore_offers = false;
    net.run_until(Duration::from_secs(15), |n| n.peers[0].offers == 3);
    net.run_until(Duration::from_secs(10), |n| n.peers[1].connected);
    let sent = net.send_media("alice", 20);
    net.settle();
    assert_received_all(net.peer("bob"), &sent);
}

#[test]
fn a_late_joiner_receives_the_existing_tracks() {
    let mut net = Net::new();
    net.add("alice");
    net.peer("alice").publish();
    net.offer("alice", true, true);
    net.run_until(Duration::from_secs(10), |n| n.peers[0].connected);
    net.send_media("alice", 5);

    net.add("dave");
    net.peer("dave").bootstrap();
    net.offer("dave", false, true);
    net.run_until(Duration::from_secs(10), |n| n.peers[1].connected);
    net.settle();
    assert_eq!(
        net.peer("dave").tracks.len(),
        2,
        "dave was told of both tracks"
    );
    let sent = net.send_media("alice", 20);
    net.settle();
    assert_received_all(net.peer("dave"), &sent);
}

#[test]
fn leaving_unpublishes_everywhere() {
    let mut net = alice_to_bob();
    let offers = net.peer("bob").offers;

    net.input(MediaInput::Leave {
        participant: "alice".into(),
    });
    net.settle();
    let bob = net.peer("bob");
    assert!(
        bob.offers > offers,
        "bob renegotiated without alice's tracks"
    );
    assert_eq!(bob.tracks.len(), 2);
    assert!(
        bob.tracks
            .values()
            .all(|(owner, _, added)| owner == "alice" && !added),
        "{:?}",
        bob.tracks
    );
    assert_eq!(net.sfu.sessions(), 1);
}

#[test]
fn without_the_publish_grant_nothing_is_forwarded() {
    let mut net = Net::new();
    net.add("bob");
    net.peer("bob").bootstrap();
    net.offer("bob", false, true);
    net.add("mallory");
    net.peer("mallory").publish();
    net.offer("mallory", false, true);
    net.connect_all();
    net.send_media("mallory", 5);
    net.settle();
    let bob = net.peer("bob");
    assert!(bob.tracks.is_empty() && bob.rtp.is_empty());
}

#[test]
fn keyframe_requests_reach_the_publisher_throttled() {
    let mut net = alice_to_bob();
    net.send_media("alice", 3);
    // Three PLIs within one throttle interval: one reaches alice.
    for _ in 0..3 {
        let now = net.now;
        let bob = net.peer("bob");
        let receivers: Vec<_> = bob.pc.get_receivers().collect();
        let pli = rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication {
            sender_ssrc: 1,
            media_ssrc: VIDEO_SSRC,
        };
        let mut sent = false;
        for r in receivers {
            let mut receiver = bob.pc.rtp_receiver(r).unwrap();
            if receiver.track().ssrcs().any(|s| s == VIDEO_SSRC) {
                receiver
                    .write_rtcp(now, vec![Box::new(pli.clone())])
                    .unwrap();
                sent = true;
            }
        }
        assert!(sent, "bob has a receiver for alice's video");
        net.step();
    }
    net.settle();
    assert_eq!(net.peer("alice").plis, 1);
}

#[test]
fn a_publisher_gets_at_most_four_tracks_forwarded() {
    let mut net = Net::new();
    net.add("bob");
    net.peer("bob").bootstrap();
    net.offer("bob", false, true);
    net.add("alice");
    let videos: Vec<_> = (0..6)
        .map(|k| {
            (
                RtpCodecKind::Video,
                MIME_TYPE_VP8,
                90_000,
                0,
                0x3333_0000 + k,
            )
        })
        .collect();
    net.peer("alice").add_tracks(&videos);
    net.offer("alice", true, true);
    net.connect_all();
    net.settle();
    assert_eq!(
        net.peer("bob").tracks.len(),
        super::sfu::MAX_TRACKS_PER_PUBLISHER
    );
}

fn assert_received_all(peer: &Peer, sent: &[(u32, u16, Vec<u8>)]) {
    for ssrc in [AUDIO_SSRC, VIDEO_SSRC] {
        let want: Vec<(u16, Vec<u8>)> = sent
            .iter()
            .filter(|(s, _, _)| *s == ssrc)
            .map(|(_, seq, p)| (*seq, p.clone()))
            .collect();
        let got: Vec<(u16, Vec<u8>)> = received_from(peer, ssrc)
            .into_iter()
            .filter(|(seq, _)| want.iter().any(|(w, _)| w == seq))
            .collect();
        assert_eq!(got, want, "{}, ssrc {ssrc:x}", peer.name);
    }
}

fn count_from(peer: &Peer, ssrc: u32) -> usize {
    received_from(peer, ssrc).len()
}

#[test]
fn a_moderator_mute_stops_forwarding_and_lifting_it_asks_for_a_keyframe() {
    let mut net = alice_to_bob();
    net.send_media("alice", 10);
    net.settle();
    assert_eq!(count_from(net.peer("bob"), VIDEO_SSRC), 10);

    net.input(MediaInput::Mute {
        participant: "alice".into(),
        kind: MediaKind::Video,
        muted: true,
    });
    net.send_media("alice", 10);
    net.settle();
    let bob = net.peer("bob");
    assert_eq!(count_from(bob, VIDEO_SSRC), 10, "no video while muted");
    assert_eq!(count_from(bob, AUDIO_SSRC), 20, "audio still flows");
    // Muting changes no m-line: nobody renegotiates.
    assert!(bob.tracks.values().all(|(_, _, added)| *added));

    let plis = net.peer("alice").plis;
    net.input(MediaInput::Mute {
        participant: "alice".into(),
        kind: MediaKind::Video,
        muted: false,
    });
    net.settle();
    assert_eq!(net.peer("alice").plis, plis + 1, "a keyframe is asked for");
    net.send_media("alice", 10);
    net.settle();
    assert_eq!(count_from(net.peer("bob"), VIDEO_SSRC), 20);
}

#[test]
fn a_mute_outlasts_the_session_it_was_made_in() {
    let mut net = alice_to_bob();
    net.input(MediaInput::Mute {
        participant: "alice".into(),
        kind: MediaKind::Audio,
        muted: true,
    });
    // Alice reconnects: a new session, the same participant.
    net.input(MediaInput::Leave {
        participant: "alice".into(),
    });
    net.peers.retain(|p| p.name != "alice");
    net.add("alice");
    net.peer("alice").publish();
    net.offer("alice", true, true);
    net.connect_all();
    net.settle();
    net.send_media("alice", 10);
    net.settle();
    let bob = net.peer("bob");
    assert_eq!(count_from(bob, AUDIO_SSRC), 0, "still muted");
    assert_eq!(count_from(bob, VIDEO_SSRC), 10);
}

#[test]
fn a_session_that_never_connects_is_ended_and_unpublished() {
    let mut net = Net::new();
    net.add("bob");
    net.peer("bob").bootstrap();
    net.offer("bob", false, true);
    net.add("alice");
    net.peer("alice").blackholed = true;
    net.peer("alice").publish();
    net.offer("alice", true, true);
    net.run_until(Duration::from_secs(10), |n| n.peers[0].connected);
    assert_eq!(net.sfu.sessions(), 2);
    net.run_until(super::CONNECT_TIMEOUT + Duration::from_secs(1), |n| {
        n.peers[1].ended
    });
    assert_eq!(net.sfu.sessions(), 1, "alice's session is gone");
    assert!(!net.peer("bob").ended, "bob's connected session stays");
    // Whatever alice had announced to bob is taken back.
    net.settle();
    assert!(net.peer("bob").tracks.values().all(|(_, _, added)| !added));
}

#[test]
fn a_shared_screen_is_announced_as_a_stream_of_its_own() {
    let mut net = Net::new();
    net.add("bob");
    net.peer("bob").bootstrap();
    net.offer("bob", false, true);
    net.add("alice");
    net.peer("alice").publish();
    net.peer("alice")
        .add_tracks(&[(RtpCodecKind::Video, MIME_TYPE_VP8, 90_000, 0, 0x4444_0003)]);
    // The third m-line (mid "2") is the screen.
    net.offer_with_screen("alice", true, true, vec!["2".into()]);
    net.connect_all();
    net.settle();
    let bob = net.peer("bob");
    assert_eq!(bob.tracks.len(), 3);
    assert_eq!(bob.screens.len(), 1, "{:?}", bob.screens);
    let stream = bob.screens.values().next().unwrap();
    assert!(stream.ends_with('s'), "{stream}");
}

#[test]
fn lost_video_packets_are_recovered_by_nack() {
    let mut net = alice_to_bob();
    net.peer("bob").drop_every_nth_video = Some(7);
    let sent = net.send_media("alice", 60);
    for _ in 0..5 {
        net.settle();
    }
    let bob = net.peer("bob");
    assert!(
        bob.dropped >= 8,
        "the loss injector dropped {}",
        bob.dropped
    );
    let mut want: Vec<(u16, Vec<u8>)> = sent
        .iter()
        .filter(|(s, _, _)| *s == VIDEO_SSRC)
        .map(|(_, seq, p)| (*seq, p.clone()))
        .collect();
    let mut got = received_from(bob, VIDEO_SSRC);
    got.sort();
    got.dedup();
    want.sort();
    assert_eq!(got, want, "every dropped packet was retransmitted");
    let nacked = net.sfu.stats().nacked;
    assert!(nacked >= 8, "bob's NACKs are counted: {nacked}");

    // The retransmissions came over RTX (RFC 4588), which bob's answer kept:
    // payload type 97 on the SSRC the SFU's offer paired with the video in an
    // `a=ssrc-group:FID`; bob's `rtc` put each back in the video stream.
    let bob = net.peer("bob");
    let offer = bob.pc.remote_description().unwrap().sdp.clone();
    let fid = format!("a=ssrc-group:FID {VIDEO_SSRC} ");
    let rtx_ssrc: u32 = offer
        .lines()
        .find_map(|l| l.strip_prefix(fid.as_str()))
        .unwrap_or_else(|| panic!("no FID group for the video in {offer}"))
        .trim()
        .parse()
        .unwrap();
    assert!(
        bob.rtx.len() >= bob.dropped,
        "{} RTX packets for {} dropped",
        bob.rtx.len(),
        bob.dropped
    );
    assert!(bob.rtx.iter().all(|s| *s == rtx_ssrc), "{:?}", bob.rtx);
    // Alice, who publishes, was answered without RTX: she resends on her own
    // stream, which the SFU's NACK generator sees.
    let answer = net
        .peer("alice")
        .pc
        .remote_description()
        .unwrap()
        .sdp
        .clone();
    let received: Vec<&str> = answer
        .split("\r\nm=")
        .filter(|m| m.starts_with("video") && m.contains("a=recvonly"))
        .collect();
    assert!(!received.is_empty(), "{answer}");
    for section in received {
        assert!(!section.contains("rtx/90000"), "{section}");
    }
}

/// A small deterministic generator: the fuzz cases are the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// `seed` with a few bytes flipped, cut short or grown, or pure noise.
    fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut out = seed.to_vec();
        match self.below(5) {
            0 => out.truncate(self.below(seed.len() + 1)),
            1 => out.extend((0..self.below(64)).map(|_| self.next() as u8)),
            2 => return (0..self.below(1500)).map(|_| self.next() as u8).collect(),
            _ => {}
        }
        for _ in 0..1 + self.below(4) {
            if !out.is_empty() {
                let i = self.below(out.len());
                out[i] ^= 1 << self.below(8);
            }
        }
        out
    }
}

#[test]
fn mangled_datagrams_never_crash_the_room_nor_cut_anyone_off() {
    let mut net = Net::new();
    net.capture = Some(Vec::new());
    net.add("bob");
    net.peer("bob").bootstrap();
    net.offer("bob", false, true);
    net.add("alice");
    net.peer("alice").publish();
    net.offer("alice", true, true);
    net.connect_all();
    net.send_media("alice", 10);
    let corpus = net.capture.take().unwrap();
    // STUN, DTLS, SRTP and SRTCP as the peers really sent them.
    assert!(corpus.len() > 30, "{} datagrams captured", corpus.len());

    let sfu_addr: std::net::SocketAddr = net::SFU_ADDR.parse().unwrap();
    let alice = net.peer("alice").addr;
    let stranger: std::net::SocketAddr = "10.0.0.99:4444".parse().unwrap();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for i in 0..3000 {
        let seed = &corpus[rng.below(corpus.len())];
        let data = rng.mutate(seed);
        // From a stranger anything goes; from alice's own address, what an
        // on-path attacker could forge without her keys: no DTLS records, which
        // her session would take as hers (that is DTLS's own business).
        let dtls = data.first().is_some_and(|b| (20..=63).contains(b));
        let source = if i % 2 == 0 || dtls { stranger } else { alice };
        net.input(MediaInput::Datagram {
            source,
            destination: sfu_addr,
            transport: super::Transport::Udp,
            data,
        });
    }
    assert_eq!(net.sfu.sessions(), 2, "nobody was cut off, nobody added");
    net.settle();
    let before = received_from(net.peer("bob"), VIDEO_SSRC).len();
    net.send_media("alice", 10);
    net.settle();
    assert_eq!(
        received_from(net.peer("bob"), VIDEO_SSRC).len(),
        before + 10
    );
}

#[test]
fn mangled_offers_are_refused_or_answered_never_a_crash() {
    let mut seed_net = Net::new();
    seed_net.add("alice");
    seed_net.peer("alice").publish();
    let now = seed_net.now;
    let good = seed_net.peer("alice").offer(now);
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut sfu = super::Sfu::new(super::SfuConfig {
        candidate: net::SFU_ADDR.parse().unwrap(),
        ice_tcp: true,
        max_sessions: 8,
        delay_based_estimate: true,
    });
    let (mut answered, mut refused) = (0, 0);
    for i in 0..300 {
        let sdp = String::from_utf8_lossy(&rng.mutate(good.as_bytes())).into_owned();
        use super::MediaCore;
        sfu.handle_input(
            MediaInput::Offer {
                participant: format!("p{}", i % 4),
                sdp,
                publish: true,
                subscribe: true,
                screen: vec!["0".into(), "x".repeat(1000)],
            },
            now,
        );
        while let Some(out) = sfu.poll_output() {
            match out {
                super::MediaOutput::Answer { .. } => answered += 1,
                super::MediaOutput::Refused { .. } => refused += 1,
                _ => {}
            }
        }
        assert!(sfu.sessions() <= 4, "one session per participant");
    }
    assert_eq!(answered + refused, 300, "every offer got a reply");
    assert!(
        refused > 0 && answered > 0,
        "{answered} answered, {refused} refused"
    );
}

#[test]
fn the_loudest_publisher_is_named_the_active_speaker() {
    let mut net = alice_to_bob();
    net.add("carol");
    net.peer("carol").publish_as(0x5555_0001, 0x5555_0002);
    net.offer("carol", true, true);
    net.connect_all();
    net.settle();
    net.peer("alice").audio_level = Some(25);
    net.peer("carol").audio_level = Some(100);
    // Several intervals of talk: alice speaks (carol's level is a quiet room).
    net.send_media("alice", 1);
    let sent = net.send_media("carol", 1).len();
    assert!(sent > 0);
    for _ in 0..30 {
        net.send_media("alice", 1);
        net.send_media("carol", 1);
    }
    assert_eq!(net.speakers, vec![Some("alice".to_owned())]);
    // Carol now talks much louder, alice falls quiet: carol takes the floor.
    net.peer("alice").audio_level = Some(90);
    net.peer("carol").audio_level = Some(20);
    for _ in 0..30 {
        net.send_media("alice", 1);
        net.send_media("carol", 1);
    }
    assert_eq!(net.speakers.last(), Some(&Some("carol".to_owned())));
    // Carol leaves: nobody speaks.
    net.input(MediaInput::Leave {
        participant: "carol".into(),
    });
    net.settle();
    assert_eq!(net.speakers.last(), Some(&None));
}

#[test]
fn video_nobody_watches_is_not_sent_and_comes_back_with_a_keyframe() {
    let mut net = alice_to_bob();
    net.send_media("alice", 5);
    net.settle();
    let watch = |video: Option<Vec<String>>| MediaInput::Watch {
        participant: "bob".into(),
        video,
        heights: Default::default(),
    };
    // Bob's tab is hidden: no video, audio as ever.
    net.input(watch(Some(vec![])));
    net.send_media("alice", 10);
    net.settle();
    let bob = net.peer("bob");
    assert_eq!(count_from(bob, VIDEO_SSRC), 5, "no video for a hidden tab");
    assert_eq!(count_from(bob, AUDIO_SSRC), 15);
    assert_eq!(net.sfu.stats().rtp_unwatched, 10);
    // Watching alice again: a keyframe request, and the video flows.
    net.settle();
    net.settle();
    net.settle();
    let plis = net.peer("alice").plis;
    net.input(watch(Some(vec!["alice".into()])));
    net.settle();
    assert_eq!(net.peer("alice").plis, plis + 1);
    net.send_media("alice", 5);
    net.settle();
    assert_eq!(count_from(net.peer("bob"), VIDEO_SSRC), 10);
    // Everyone (null) after alice alone changes nothing for alice: no new request.
    net.input(watch(None));
    net.settle();
    assert_eq!(net.peer("alice").plis, plis + 1);
}

#[test]
fn subscribers_reports_give_loss_and_jitter_per_kind() {
    let mut net = alice_to_bob();
    net.send_media("alice", 100);
    for _ in 0..10 {
        net.settle();
    }
    let clean: Vec<_> = net.sfu.drain_reports().collect();
    assert!(
        clean.iter().any(|r| r.kind == MediaKind::Video)
            && clean.iter().any(|r| r.kind == MediaKind::Audio),
        "reports on both tracks: {clean:?}"
    );
    assert!(clean
        .iter()
        .all(|r| r.loss == 0.0 && r.jitter >= 0.0 && r.jitter < 1.0));
    // Reports that echo one of the SFU's sender reports give a round trip. Its
    // value is the loopback test's business: `rtc` stamps sender reports with
    // the wall clock, which the simulated clock here runs far ahead of.
    assert!(
        clean.iter().any(|r| r.rtt.is_some()),
        "no report echoed a sender report: {clean:?}"
    );

    // Every 4th video packet to bob lost for good (the retransmissions too):
    // his reports say so.
    net.peer("bob").drop_every_nth_video = Some(4);
    net.send_media("alice", 100);
    for _ in 0..10 {
        net.settle();
    }
    let lossy: Vec<_> = net.sfu.drain_reports().collect();
    assert!(
        lossy
            .iter()
            .any(|r| r.kind == MediaKind::Video && r.loss > 0.0),
        "{lossy:?}"
    );
}

/// What a subscriber of a simulcast track got: (SSRC, sequence number, picture
/// id, layer index from the test payload's last byte, keyframe).
fn simulcast_received(peer: &Peer) -> Vec<(u32, u16, u16, u8, bool)> {
    let mut got: Vec<_> = peer
        .rtp
        .iter()
        .filter_map(|(ssrc, seq, payload)| {
            let info = crate::media::vp8::parse(payload)?;
            let (pic, _) = info.picture_id?;
            Some((*ssrc, *seq, pic, *payload.last()?, info.keyframe))
        })
        .collect();
    // In sending order, once each (NACK may have repaired some out of order).
    got.sort_by_key(|g| g.1);
    got.dedup_by_key(|g| g.1);
    got
}

/// `subscribers` who only receive and alice publishing a simulcast camera of
/// `layers`, all connected.
fn simulcast_meeting(subscribers: &[&str], layers: &[(&str, u32)], delay: bool) -> Net {
    let mut net = Net::with_delay_estimate(delay);
    for name in subscribers {
        net.add(name);
        net.peer(name).bootstrap();
        net.offer(name, false, true);
    }
    net.add("alice");
    net.peer("alice").publish_simulcast(layers);
    net.offer("alice", true, true);
    net.connect_all();
    net.settle();
    net
}

/// Layer, and packets of it in a row.
type Runs = Vec<(u8, usize)>;

/// The layers a peer's simulcast stream went through, with how many packets
/// of each in a row.
fn layer_runs(peer: &Peer) -> Runs {
    let mut runs: Vec<(u8, usize)> = Vec::new();
    for g in simulcast_received(peer) {
        match runs.last_mut() {
            Some((l, n)) if *l == g.3 => *n += 1,
            _ => runs.push((g.3, 1)),
        }
    }
    runs
}

/// Simulcast: alice's camera in three layers. Bob's path is fast and he gets
/// the top layer; carol's is policed to 120 kb/s, her receiver reports loss,
/// and the SFU moves her down to the lowest layer; dave shows alice in a
/// 180-pixel tile and gets the layer that tall. Each sees one unbroken
/// stream: one SSRC, sequence numbers and VP8 picture ids that go on by one
/// across every switch, and every switch lands on a keyframe.
#[test]
fn simulcast_a_subscriber_limited_to_low_bandwidth_is_switched_to_the_low_layer() {
    let layers = [("q", 0x5100_0001), ("h", 0x5100_0002), ("f", 0x5100_0003)];
    let mut net = simulcast_meeting(&["bob", "carol", "dave"], &layers, false);
    let now = net.now;
    net.peer("carol").limit_to(120_000, now);
    net.input(MediaInput::Watch {
        participant: "dave".into(),
        video: None,
        heights: [("alice".to_owned(), 180)].into(),
    });
    // About 60, 170 and 280 kb/s at 30 frames a second.
    let keyframes = net.send_simulcast("alice", 420, &[250, 700, 1150]);
    net.settle();

    assert!(
        net.sfu.stats().layer_switches >= 1,
        "carol was never switched"
    );
    assert!(
        keyframes.iter().filter(|s| **s == layers[0].1).count() >= 2,
        "the switch down asked for the low layer's keyframe: {keyframes:x?}"
    );
    for (name, layer) in [("bob", 2u8), ("carol", 0u8), ("dave", 0u8)] {
        let got = simulcast_received(net.peer(name));
        assert!(got.len() > 100, "{name} got {} packets", got.len());
        let ssrcs: std::collections::HashSet<u32> = got.iter().map(|g| g.0).collect();
        assert_eq!(ssrcs.len(), 1, "{name} sees one stream, not the layers");
        assert!(
            !layers.iter().any(|(_, s)| ssrcs.contains(s)),
            "the SFU's SSRC, not a layer's"
        );
        // The last second is all of the expected layer.
        let tail = &got[got.len() - 30..];
        assert!(
            tail.iter().all(|g| g.3 == layer),
            "{name} ends on layer {layer}: {:?}",
            tail.iter().map(|g| g.3).collect::<Vec<_>>()
        );
        assert!(got[0].4, "{name}'s stream starts with a keyframe");
        for pair in got.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a.3 != b.3 {
                assert!(b.4, "{name}: a switch lands on a keyframe");
            }
        }
    }
    // One packet is one frame here, so sequence numbers and picture ids step
    // together everywhere, across the switches too; a gap is only what the
    // policer dropped and NACK did not repair.
    for name in ["bob", "carol"] {
        let got = simulcast_received(net.peer(name));
        let switches = got.windows(2).filter(|w| w[0].3 != w[1].3).count();
        let runs = layer_runs(net.peer(name));
        println!("{name}: {} packets, layers {runs:?}", got.len());
        assert!(name == "bob" || switches >= 1, "carol changed layers");
        for w in got.windows(2) {
            let (a, b) = (w[0], w[1]);
            let gap = b.1.wrapping_sub(a.1);
            let pics = b.2.wrapping_sub(a.2) & 0x7fff;
            assert_eq!(
                gap, pics,
                "{name}: picture ids step with sequence numbers: {a:?} → {b:?}"
            );
        }
    }
    assert!(net.peer("carol").policed > 0, "the policer never dropped");

    // Erin joins and publishes: alice answers the server's offer for Erin's
    // tracks, an answer without `a=simulcast`; her camera stays simulcast, and
    // both the old subscribers and Erin keep getting one unbroken stream of it.
    // Then Finn: a second renegotiation of alice's session.
    let before = simulcast_received(net.peer("bob")).len();
    let newcomers = [
        ("erin", 0x7777_0001, 0x7777_0002),
        ("finn", 0x7878_0001, 0x7878_0002),
    ];
    for (name, audio, video) in newcomers {
        net.add(name);
        net.peer(name).publish_as(audio, video);
        net.offer(name, true, true);
        net.connect_all();
        net.send_simulcast("alice", 10, &[250, 700, 1150]);
    }
    assert!(
        net.peer("alice").offers >= 2,
        "alice was offered Erin's and Finn's tracks"
    );
    net.send_simulcast("alice", 90, &[250, 700, 1150]);
    net.settle();
    for name in ["bob", "erin", "finn"] {
        let got = simulcast_received(net.peer(name));
        let fresh = if name == "bob" {
            got.len() - before
        } else {
            got.len()
        };
        assert!(fresh > 60, "{name} got {fresh} of alice's last 90 frames");
        let ssrcs: std::collections::HashSet<u32> = got.iter().map(|g| g.0).collect();
        assert_eq!(ssrcs.len(), 1, "{name} sees one stream");
        let tail = &got[got.len() - 30..];
        let whole = tail.windows(2).all(|w| w[1].1 == w[0].1.wrapping_add(1));
        assert!(whole, "{name}: the last second of alice's camera is whole");
    }
}

/// With `--media-delay-estimate`: congestion without loss. Carol's path is a
/// 150 kb/s bottleneck with an
/// endless queue, so nothing is ever dropped and her receiver reports show no
/// loss; only the delay grows. Her TWCC feedback shows it, GCC backs off, and
/// the SFU moves her off the top layer, which receiver reports alone never
/// would; bob, on a fast path, keeps the top layer throughout.
///
/// What this does not show: GCC here took about 3 s of simulated time (95
/// frames, the queue past 2 s) to call overuse, and with no probing it climbs
/// back and overshoots again; only the first reaction is asserted.
#[test]
fn simulcast_a_subscriber_whose_path_queues_is_switched_down_by_its_twcc_feedback() {
    let (bob, carol, net) = queued_bottleneck(true);
    assert_eq!(bob.len(), 1, "bob stays on one layer: {bob:?}");
    assert_eq!(bob[0].0, 2, "the top one");
    assert_eq!(carol[0].0, 2, "carol starts on the top layer: {carol:?}");
    assert!(
        carol.len() >= 2 && carol[1].0 < 2,
        "carol is switched down: {carol:?}"
    );
    // Nothing was lost on the way (no drop, no gap): receiver reports said 0 %
    // loss, so the switch was the delay-based estimate's.
    let mut net = net;
    assert_eq!(net.peer("carol").policed, 0);
    let got = simulcast_received(net.peer("carol"));
    let whole = got.windows(2).all(|w| w[1].1 == w[0].1.wrapping_add(1));
    assert!(whole, "carol lost nothing");
    // Without the delay-based estimate (the default) the queue goes unseen.
    let (_, carol, _) = queued_bottleneck(false);
    assert_eq!(carol.len(), 1, "loss alone never moves carol: {carol:?}");
}

/// Alice's simulcast camera to bob (fast path) and carol (a 150 kb/s bottleneck
/// with an endless queue) for 8 s: the layers each went through, and the net.
fn queued_bottleneck(delay: bool) -> (Runs, Runs, Net) {
    let layers = [("q", 0x5200_0001), ("h", 0x5200_0002), ("f", 0x5200_0003)];
    let mut net = simulcast_meeting(&["bob", "carol"], &layers, delay);
    let now = net.now;
    net.peer("carol").shape_to(150_000, now);
    // About 60, 170 and 280 kb/s at 30 frames a second.
    net.send_simulcast("alice", 240, &[250, 700, 1150]);
    net.settle();
    let bob = layer_runs(net.peer("bob"));
    let carol = layer_runs(net.peer("carol"));
    (bob, carol, net)
}
