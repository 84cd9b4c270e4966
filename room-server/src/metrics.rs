//! Prometheus metrics of one room server, in a registry owned by the server (no globals).

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Every metric this room exports, named `rendezvous_room_<thing>_<unit>`.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    /// Participants with a live connection.
    pub participants: IntGauge,
    /// WebSocket frames received from clients.
    pub messages_in: IntCounter,
    /// WebSocket frames written to clients.
    pub messages_out: IntCounter,
    pub bytes_in: IntCounter,
    pub bytes_out: IntCounter,
    /// Frames answered with an `error` event, by error code.
    pub rejected_frames: IntCounterVec,
    /// Connections the server closed, by reason (slow_consumer, kicked, ...).
    pub disconnects: IntCounterVec,
    /// From a frame's arrival (or a timer) to the resulting event written to a socket.
    pub fanout_latency: Histogram,
    /// WebRTC sessions the SFU holds.
    pub media_sessions: IntGauge,
    /// Open ICE-TCP connections to the media port.
    pub media_tcp_connections: IntGauge,
    /// Packets received on the media port (UDP datagrams and ICE-TCP frames).
    pub media_datagrams_in: IntCounter,
    /// Packets sent from the media port (UDP datagrams and ICE-TCP frames).
    pub media_datagrams_out: IntCounter,
    /// Packets not sent because the socket buffer (or a TCP connection's queue) was full, or the send failed.
    pub media_datagrams_dropped: IntCounter,
    /// Published tracks the SFU forwards.
    pub media_tracks: IntGauge,
    /// Track × subscriber forwardings.
    pub media_subscriptions: IntGauge,
    /// RTP packets received from publishers, and their payload bytes.
    pub media_rtp_in: IntCounter,
    pub media_rtp_bytes_in: IntCounter,
    /// RTP packets forwarded to subscribers, and their payload bytes.
    pub media_rtp_out: IntCounter,
    pub media_rtp_bytes_out: IntCounter,
    /// RTP packets not forwarded because a moderator muted their publisher.
    pub media_rtp_muted: IntCounter,
    /// Video packets not forwarded to a subscriber who does not watch them.
    pub media_rtp_unwatched: IntCounter,
    /// Keyframe requests (PLI/FIR) relayed to publishers, after the throttle.
    pub media_keyframe_requests: IntCounter,
    /// Packets subscribers asked to be retransmitted (NACK).
    pub media_nacked: IntCounter,
    /// Subscribers' streams of simulcast tracks moved to another layer.
    pub media_layer_switches: IntCounter,
    /// Media sessions ended because they did not connect (or failed).
    pub media_sessions_failed: IntCounter,
    /// Subscribers' reported loss per report interval, by kind.
    pub media_subscriber_loss: HistogramVec,
    /// Subscribers' reported interarrival jitter, by kind.
    pub media_subscriber_jitter: HistogramVec,
    /// Round-trip times to subscribers from their reports, by kind.
    pub media_subscriber_rtt: HistogramVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let participants = IntGauge::new(
            "rendezvous_room_participants",
            "Participants with a live connection",
        )
        .expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let messages_in = counter("rendezvous_room_messages_in_total", "Frames received");
        let messages_out = counter("rendezvous_room_messages_out_total", "Frames sent");
        let bytes_in = counter("rendezvous_room_bytes_in_total", "Bytes of frames received");
        let bytes_out = counter("rendezvous_room_bytes_out_total", "Bytes of frames sent");
        let rejected_frames = IntCounterVec::new(
            Opts::new(
                "rendezvous_room_rejected_frames_total",
                "Frames answered with an error event",
            ),
            &["code"],
        )
        .expect("valid metric");
        let disconnects = IntCounterVec::new(
            Opts::new(
                "rendezvous_room_disconnects_total",
                "Connections closed by the server",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let fanout_latency = Histogram::with_opts(
            HistogramOpts::new(
                "rendezvous_room_fanout_latency_seconds",
                "Time from an input reaching the room to its event written to a socket",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
        )
        .expect("valid metric");
        let media_sessions = IntGauge::new(
            "rendezvous_room_media_sessions",
            "WebRTC sessions the SFU holds",
        )
        .expect("valid metric");
        let media_tcp_connections = IntGauge::new(
            "rendezvous_room_media_tcp_connections",
            "Open ICE-TCP connections to the media port",
        )
        .expect("valid metric");
        let media_datagrams_in = counter(
            "rendezvous_room_media_datagrams_in_total",
            "Packets received on the media port (UDP datagrams and ICE-TCP frames)",
        );
        let media_datagrams_out = counter(
            "rendezvous_room_media_datagrams_out_total",
            "Packets sent from the media port (UDP datagrams and ICE-TCP frames)",
        );
        let media_datagrams_dropped = counter(
            "rendezvous_room_media_datagrams_dropped_total",
            "Packets not sent: socket buffer or TCP queue full, or the send failed",
        );
        let media_tracks = IntGauge::new(
            "rendezvous_room_media_tracks",
            "Published tracks the SFU forwards",
        )
        .expect("valid metric");
        let media_subscriptions = IntGauge::new(
            "rendezvous_room_media_subscriptions",
            "Forwardings of a track to a subscriber",
        )
        .expect("valid metric");
        let media_rtp_in = counter(
            "rendezvous_room_media_rtp_packets_in_total",
            "RTP packets received from publishers",
        );
        let media_rtp_bytes_in = counter(
            "rendezvous_room_media_rtp_payload_bytes_in_total",
            "RTP payload bytes received from publishers",
        );
        let media_rtp_out = counter(
            "rendezvous_room_media_rtp_packets_out_total",
            "RTP packets forwarded to subscribers",
        );
        let media_rtp_bytes_out = counter(
            "rendezvous_room_media_rtp_payload_bytes_out_total",
            "RTP payload bytes forwarded to subscribers",
        );
        let media_rtp_muted = counter(
            "rendezvous_room_media_rtp_packets_muted_total",
            "RTP packets dropped because a moderator muted their publisher",
        );
        let media_rtp_unwatched = counter(
            "rendezvous_room_media_rtp_packets_unwatched_total",
            "Video packets not forwarded to a subscriber who does not watch them",
        );
        let media_keyframe_requests = counter(
            "rendezvous_room_media_keyframe_requests_total",
            "Keyframe requests (PLI/FIR) relayed to publishers",
        );
        let media_nacked = counter(
            "rendezvous_room_media_nacked_packets_total",
            "RTP packets subscribers asked to be retransmitted (NACK)",
        );
        let media_layer_switches = counter(
            "rendezvous_room_media_simulcast_layer_switches_total",
            "Times a subscriber's stream of a simulcast track moved to another layer",
        );
        let media_sessions_failed = counter(
            "rendezvous_room_media_sessions_failed_total",
            "Media sessions ended because they did not connect in time or failed",
        );
        let media_subscriber_loss = HistogramVec::new(
            HistogramOpts::new(
                "rendezvous_room_media_subscriber_loss_ratio",
                "Fraction of forwarded packets a subscriber reported lost, per report",
            )
            .buckets(vec![0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]),
            &["kind"],
        )
        .expect("valid metric");
        let media_subscriber_jitter = HistogramVec::new(
            HistogramOpts::new(
                "rendezvous_room_media_subscriber_jitter_seconds",
                "Interarrival jitter a subscriber reported for a forwarded track",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25]),
            &["kind"],
        )
        .expect("valid metric");
        let media_subscriber_rtt = HistogramVec::new(
            HistogramOpts::new(
                "rendezvous_room_media_subscriber_rtt_seconds",
                "Round-trip time to a subscriber, from its reports on forwarded tracks",
            )
            .buckets(vec![0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]),
            &["kind"],
        )
        .expect("valid metric");
        for c in [
            Box::new(participants.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(media_subscriber_rtt.clone()),
            Box::new(media_subscriber_loss.clone()),
            Box::new(media_subscriber_jitter.clone()),
            Box::new(media_tracks.clone()),
            Box::new(media_subscriptions.clone()),
            Box::new(media_rtp_in.clone()),
            Box::new(media_rtp_bytes_in.clone()),
            Box::new(media_rtp_out.clone()),
            Box::new(media_rtp_bytes_out.clone()),
            Box::new(media_rtp_muted.clone()),
            Box::new(media_rtp_unwatched.clone()),
            Box::new(media_keyframe_requests.clone()),
            Box::new(media_layer_switches.clone()),
            Box::new(media_nacked.clone()),
            Box::new(media_sessions_failed.clone()),
            Box::new(media_sessions.clone()),
            Box::new(media_tcp_connections.clone()),
            Box::new(media_datagrams_in.clone()),
            Box::new(media_datagrams_out.clone()),
            Box::new(media_datagrams_dropped.clone()),
            Box::new(messages_in.clone()),
            Box::new(messages_out.clone()),
            Box::new(bytes_in.clone()),
            Box::new(bytes_out.clone()),
            Box::new(rejected_frames.clone()),
            Box::new(disconnects.clone()),
            Box::new(fanout_latency.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Self {
            registry,
            participants,
            messages_in,
            messages_out,
            bytes_in,
            bytes_out,
            rejected_frames,
            disconnects,
            fanout_latency,
            media_sessions,
            media_tcp_connections,
            media_datagrams_in,
            media_datagrams_out,
            media_datagrams_dropped,
            media_tracks,
            media_subscriptions,
            media_rtp_in,
            media_rtp_bytes_in,
            media_rtp_out,
            media_rtp_bytes_out,
            media_rtp_muted,
            media_rtp_unwatched,
            media_keyframe_requests,
            media_layer_switches,
            media_nacked,
            media_sessions_failed,
            media_subscriber_loss,
            media_subscriber_jitter,
            media_subscriber_rtt,
        }
    }

    /// The text exposition format for `/metrics`.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("encoding to a Vec cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
