//! Router metrics: `rendezvous_router_*`.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Room and join metrics.
#[derive(Clone)]
pub struct Metrics {
    pub rooms_live: IntGauge,
    pub rooms_created: IntCounter,
    pub rooms_closed: IntCounterVec,
    pub room_start: Histogram,
    pub joins: IntCounterVec,
    pub invite_conflicts: IntCounter,
}

impl Metrics {
    pub fn register(registry: &Registry) -> Self {
        let m = Self {
            rooms_live: IntGauge::new("rendezvous_router_rooms_live", "Rooms alive now").expect("metric"),
            rooms_created: IntCounter::new("rendezvous_router_rooms_created_total", "Rooms created")
                .expect("metric"),
            rooms_closed: IntCounterVec::new(
                Opts::new(
                    "rendezvous_router_rooms_closed_total",
                    "Rooms ended, by reason (closed by the creator, ended on their own, failed to start)",
                ),
                &["reason"],
            )
            .expect("metric"),
            room_start: Histogram::with_opts(
                HistogramOpts::new(
                    "rendezvous_router_room_start_seconds",
                    "Time from a create request to a room server accepting joins",
                )
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            )
            .expect("metric"),
            joins: IntCounterVec::new(
                Opts::new("rendezvous_router_joins_total", "Join attempts by result code"),
                &["result"],
            )
            .expect("metric"),
            invite_conflicts: IntCounter::new(
                "rendezvous_router_invite_write_conflicts_total",
                "Invite writes refused because another replica changed the Room first (retried)",
            )
            .expect("metric"),
        };
        for c in [
            Box::new(m.rooms_live.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.rooms_created.clone()),
            Box::new(m.rooms_closed.clone()),
            Box::new(m.room_start.clone()),
            Box::new(m.joins.clone()),
            Box::new(m.invite_conflicts.clone()),
        ] {
            // Registered once per registry; a second router on one registry shares.
            let _ = registry.register(c);
        }
        m
    }
}
