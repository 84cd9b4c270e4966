//! Prometheus metrics of the operator, on one registry owned by the [`Context`](crate::controller::Context).

use std::time::Instant;

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};
use rendezvous_crds::Phase;

use crate::error::Error;

/// `rendezvous_operator_*` metrics.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub reconciles: IntCounter,
    pub errors: IntCounterVec,
    pub duration: Histogram,
    /// Rooms by phase, as of each Room's last reconcile.
    pub rooms: IntGaugeVec,
    /// 1 while this replica holds the lease.
    pub leader: prometheus::IntGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let reconciles = IntCounter::new(
            "rendezvous_operator_reconciliations_total",
            "Room reconciliations",
        )
        .expect("valid metric");
        let errors = IntCounterVec::new(
            Opts::new(
                "rendezvous_operator_reconcile_errors_total",
                "Failed Room reconciliations by error kind",
            ),
            &["error"],
        )
        .expect("valid metric");
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "rendezvous_operator_reconcile_duration_seconds",
                "Duration of one Room reconciliation",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
            ]),
        )
        .expect("valid metric");
        let rooms = IntGaugeVec::new(
            Opts::new("rendezvous_operator_rooms", "Rooms by phase"),
            &["phase"],
        )
        .expect("valid metric");
        let leader = prometheus::IntGauge::new(
            "rendezvous_operator_leader",
            "1 while this replica holds the leader lease",
        )
        .expect("valid metric");
        for c in [
            Box::new(reconciles.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors.clone()),
            Box::new(duration.clone()),
            Box::new(rooms.clone()),
            Box::new(leader.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        for p in Phase::ALL {
            rooms.with_label_values(&[p.as_str()]).set(0);
        }
        Self {
            registry,
            reconciles,
            errors,
            duration,
            rooms,
            leader,
        }
    }
}

impl Metrics {
    /// Count a reconcile and time it until the returned guard drops.
    pub fn count_and_measure(&self) -> ReconcileTimer {
        self.reconciles.inc();
        ReconcileTimer {
            start: Instant::now(),
            metric: self.duration.clone(),
        }
    }

    pub fn reconcile_failure(&self, e: &Error) {
        self.errors.with_label_values(&[e.metric_label()]).inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

/// Records the reconcile duration when dropped, whichever way the reconcile returns.
pub struct ReconcileTimer {
    start: Instant,
    metric: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.metric.observe(self.start.elapsed().as_secs_f64());
    }
}
