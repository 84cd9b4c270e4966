//! Keyframe requests: subscribers' PLI/FIR reach the SFU and go upstream, throttled.
//!
//! `rtc`'s interceptor chain consumes inbound RTCP (reports, NACK) before the
//! application sees it. [`KeyframeRequestTap`] sits at the outer end of each
//! session's chain and marks packets carrying a PLI or FIR for delivery to the
//! application, so the SFU can relay them to the publisher.
//!
//! Every subscriber that joins or loses a packet asks for a keyframe, and a
//! keyframe costs the publisher several times a normal frame; [`Throttle`] lets
//! at most one request per published SSRC through per interval.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

use super::session::SessionId;

/// At most one keyframe request per published stream this often: a keyframe every
/// half second at worst keeps a freshly joined subscriber's wait short without
/// letting a lossy subscriber make the publisher send nothing but keyframes.
pub(crate) const KEYFRAME_INTERVAL: Duration = Duration::from_millis(500);

/// Whether an RTCP packet carries reception reports (a subscriber's loss and
/// jitter), which the SFU turns into metrics.
pub(crate) fn reports_reception(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<ReceiverReport>() || any.is::<SenderReport>()
}

/// Whether an RTCP packet is a receiver's bandwidth estimate (REMB), which caps
/// the simulcast layer it is sent.
pub(crate) fn is_remb(packet: &dyn rtc::rtcp::Packet) -> bool {
    packet.as_any().is::<ReceiverEstimatedMaximumBitrate>()
}

/// Whether an RTCP packet is a NACK (the `rtc` responder answers it; the SFU
/// counts it).
pub(crate) fn is_nack(packet: &dyn rtc::rtcp::Packet) -> bool {
    packet.as_any().is::<TransportLayerNack>()
}

/// Whether an RTCP packet asks for a keyframe.
pub(crate) fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// The interceptor that lets PLI/FIR (and reception reports and REMB, for the
/// metrics and the simulcast layer choice) through to the application.
#[derive(Default)]
pub(crate) struct KeyframeRequestTap {
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let wanted = |p: &dyn rtc::rtcp::Packet| {
                is_keyframe_request(p) || reports_reception(p) || is_remb(p) || is_nack(p)
            };
            if packets.iter().any(|p| wanted(p.as_ref())) {
                msg.message.add(Attribute::DeliverToApplication);
            }
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }

    fn close(&mut self) -> Result<(), Self::Error> {
        self.reads.clear();
        self.writes.clear();
        Ok(())
    }
}

impl Interceptor for KeyframeRequestTap {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// When each published stream last had a keyframe request relayed.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// One entry per published SSRC that was ever asked for a keyframe; entries
    /// go with their track ([`Throttle::forget`]), so it is bounded by the
    /// forwarding table.
    last: HashMap<(SessionId, u32), Instant>,
}

impl Throttle {
    /// True when a request for (publisher, `ssrc`) may go to the publisher now.
    pub(crate) fn allow(&mut self, ssrc: (SessionId, u32), now: Instant) -> bool {
        match self.last.get(&ssrc) {
            Some(t) if now.saturating_duration_since(*t) < KEYFRAME_INTERVAL => false,
            _ => {
                self.last.insert(ssrc, now);
                true
            }
        }
    }

    /// Drop (publisher, SSRC)s for which `keep` is false.
    pub(crate) fn retain(&mut self, keep: impl Fn((SessionId, u32)) -> bool) {
        self.last.retain(|ssrc, _| keep(*ssrc));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::goodbye::Goodbye;
    use rtc::shared::{TransportContext, TransportProtocol};

    fn inbound(packets: Vec<Box<dyn rtc::rtcp::Packet>>) -> TaggedPacket {
        TaggedPacket {
            now: Instant::now(),
            transport: TransportContext {
                local_addr: "127.0.0.1:5000".parse().unwrap(),
                peer_addr: "127.0.0.1:6000".parse().unwrap(),
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: Packet::Rtcp(packets).into(),
        }
    }

    #[test]
    fn keyframe_requests_and_reports_reach_the_application() {
        let mut tap = KeyframeRequestTap::default();
        tap.handle_read(inbound(vec![Box::new(PictureLossIndication::default())]))
            .unwrap();
        tap.handle_read(inbound(vec![Box::new(ReceiverReport::default())]))
            .unwrap();
        tap.handle_read(inbound(vec![Box::new(
            ReceiverEstimatedMaximumBitrate::default(),
        )]))
        .unwrap();
        tap.handle_read(inbound(vec![Box::new(TransportLayerNack::default())]))
            .unwrap();
        tap.handle_read(inbound(vec![Box::new(Goodbye::default())]))
            .unwrap();
        let pli = tap.poll_read().unwrap();
        let rr = tap.poll_read().unwrap();
        let remb = tap.poll_read().unwrap();
        let nack = tap.poll_read().unwrap();
        assert!(nack.message.has(&Attribute::DeliverToApplication));
        let bye = tap.poll_read().unwrap();
        assert!(pli.message.has(&Attribute::DeliverToApplication));
        assert!(rr.message.has(&Attribute::DeliverToApplication));
        assert!(remb.message.has(&Attribute::DeliverToApplication));
        assert!(!bye.message.has(&Attribute::DeliverToApplication));
    }

    #[test]
    fn one_request_per_stream_per_interval() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        let (one, two) = ((SessionId(1), 1), (SessionId(1), 2));
        assert!(t.allow(one, t0));
        assert!(!t.allow(one, t0 + KEYFRAME_INTERVAL / 2));
        assert!(t.allow(two, t0 + KEYFRAME_INTERVAL / 2));
        assert!(t.allow((SessionId(7), 1), t0 + KEYFRAME_INTERVAL / 2));
        assert!(t.allow(one, t0 + KEYFRAME_INTERVAL));
        t.retain(|ssrc| ssrc == two);
        assert!(t.allow(one, t0 + KEYFRAME_INTERVAL));
    }
}
