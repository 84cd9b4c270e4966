//! Send-side congestion control towards each subscriber: transport-wide
//! congestion control (TWCC) feedback into `rtc`'s GCC, whose target caps the
//! subscriber's bandwidth estimate ([`super::simulcast::Estimate`]).
//!
//! Browsers that negotiate transport-cc report the arrival time of every packet
//! that carries a transport-wide sequence number and send no REMB, so without
//! this the SFU would only see loss. Loss comes late: a bottleneck queues first,
//! and a queue that grows is delay the meeting hears. GCC's delay-based half sees
//! the queue build (the one-way delay gradient of packet groups) and backs off to
//! 85 % of what got through.
//!
//! Each session's interceptor chain numbers what leaves (`TwccSender`) and keeps a
//! send history that joins the feedback with departures (`CongestionControl`).
//! Only simulcast streams are numbered ([`SimulcastOnly`]): the estimate only
//! ever picks a simulcast layer, their packets cross the same path as the rest,
//! and numbering every packet of a meeting without simulcast cost a third of the
//! SFU's forwarding CPU in the benchmark for an estimate nobody reads.
//! There is no pacer: the SFU forwards at the publishers' pace and picks layers
//! that fit, which is where the estimate acts. [`SharedGcc`] runs GCC inside that
//! chain and publishes its target for the SFU through an atomic.
//!
//! GCC starts at the top of the range, so it is a cap that only bites once
//! feedback showed overuse or loss; the loss-based estimate from receiver reports
//! ramps up from its own start as before.
//!
//! Off unless the room runs with `--media-delay-estimate`: in the browser test
//! (four Chromium pages on two cores) GCC took the pages' scheduling jitter for a
//! queue and cut every subscriber to the smallest layer, so a layer chosen by a
//! tile's height never showed. A receiver short of CPU is a real limit, but one
//! this estimator cannot tell from the network's.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rtc::interceptor::{
    BandwidthEstimator, EstimatorStats, Gcc, Interceptor, PacketReport, StreamInfo, TaggedPacket,
    TwccSenderBuilder, TwccSenderInterceptor,
};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

use super::simulcast::{MAX_ESTIMATE, MIN_ESTIMATE};

/// GCC inside a session's interceptor chain, its target readable outside.
pub(crate) struct SharedGcc {
    gcc: Gcc,
    target: Arc<AtomicU64>,
}

/// The latest GCC target of a session in bits per second; 0 until the first
/// feedback arrived.
#[derive(Debug, Clone, Default)]
pub(crate) struct DelayEstimate(Arc<AtomicU64>);

impl DelayEstimate {
    pub(crate) fn get(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|b| *b > 0)
    }
}

impl SharedGcc {
    pub(crate) fn new() -> (Self, DelayEstimate) {
        let out = DelayEstimate::default();
        let gcc = Gcc::new(
            MAX_ESTIMATE as f64,
            MIN_ESTIMATE as f64,
            MAX_ESTIMATE as f64,
        );
        (
            Self {
                gcc,
                target: out.0.clone(),
            },
            out,
        )
    }
}

impl BandwidthEstimator for SharedGcc {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        if reports.is_empty() {
            return;
        }
        self.gcc.on_reports(now, reports);
        let target = self.gcc.target_bitrate();
        if target.is_finite() {
            self.target.store((target as u64).max(1), Ordering::Relaxed);
        }
    }

    fn target_bitrate(&self) -> f64 {
        self.gcc.target_bitrate()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.gcc.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.gcc.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.gcc.stats()
    }
}

/// The SSRCs a session numbers for TWCC: the simulcast streams it is sent.
#[derive(Debug, Clone, Default)]
pub(crate) struct NumberedStreams(Arc<Mutex<HashSet<u32>>>);

impl NumberedStreams {
    pub(crate) fn add(&self, ssrc: u32) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(ssrc);
    }

    fn contains(&self, ssrc: u32) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(&ssrc)
    }
}

/// `rtc`'s TWCC sender, binding only the streams in [`NumberedStreams`]: the
/// others leave without a transport-wide sequence number, so neither the
/// number nor the send history costs anything for them.
pub(crate) struct SimulcastOnly {
    inner: TwccSenderInterceptor,
    streams: NumberedStreams,
}

impl SimulcastOnly {
    pub(crate) fn new(streams: NumberedStreams) -> Self {
        Self {
            inner: TwccSenderBuilder::new().build(),
            streams,
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for SimulcastOnly {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.inner.handle_read(msg)
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.inner.poll_read()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.inner.handle_write(msg)
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.inner.poll_write()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Self::Error> {
        self.inner.handle_timeout(now)
    }

    fn poll_timeout(&mut self) -> Option<Self::Time> {
        self.inner.poll_timeout()
    }

    fn close(&mut self) -> Result<(), Self::Error> {
        self.inner.close()
    }
}

impl Interceptor for SimulcastOnly {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        if self.streams.contains(info.ssrc) {
            self.inner.bind_local_stream(info);
        }
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.inner.unbind_local_stream(info);
    }

    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.inner.bind_remote_stream(info);
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.inner.unbind_remote_stream(info);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::{AttributedPacket, Packet, RTPHeaderExtension};
    use rtc::sdp::extmap::TRANSPORT_CC_URI;
    use rtc::shared::TransportContext;

    fn packet(ssrc: u32) -> TaggedPacket {
        TaggedPacket {
            now: Instant::now(),
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtp(rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    ssrc,
                    ..Default::default()
                },
                payload: vec![0u8; 4].into(),
            })),
        }
    }

    fn numbered(t: &mut SimulcastOnly, ssrc: u32) -> bool {
        t.handle_write(packet(ssrc)).unwrap();
        let out = t.poll_write().expect("passed on");
        let Packet::Rtp(rtp) = &out.message.packet else {
            panic!("not RTP")
        };
        rtp.header.get_extension(5).is_some()
    }

    #[test]
    fn only_simulcast_streams_get_transport_wide_numbers() {
        let streams = NumberedStreams::default();
        streams.add(7);
        let mut t = SimulcastOnly::new(streams.clone());
        for ssrc in [7, 8] {
            t.bind_local_stream(&StreamInfo {
                ssrc,
                rtp_header_extensions: vec![RTPHeaderExtension {
                    uri: TRANSPORT_CC_URI.to_owned(),
                    id: 5,
                }],
                ..Default::default()
            });
        }
        assert!(numbered(&mut t, 7), "the simulcast stream is numbered");
        assert!(!numbered(&mut t, 8), "the other is left alone");
    }

    #[test]
    fn gcc_publishes_nothing_before_feedback() {
        let (mut gcc, out) = SharedGcc::new();
        assert_eq!(out.get(), None);
        gcc.on_reports(Instant::now(), &[]);
        assert_eq!(out.get(), None, "no news is no estimate");
    }
}
