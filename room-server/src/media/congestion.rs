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
//! There is no pacer: the SFU forwards at the publishers' pace and picks layers
//! that fit, which is where the estimate acts. [`SharedGcc`] runs GCC inside that
//! chain and publishes its target for the SFU through an atomic.
//!
//! GCC starts at the top of the range, so it is a cap that only bites once
//! feedback showed overuse or loss; the loss-based estimate from receiver reports
//! ramps up from its own start as before.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rtc::interceptor::{BandwidthEstimator, EstimatorStats, Gcc, PacketReport};

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
