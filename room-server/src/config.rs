//! Command-line and environment configuration of one room server.
//!
//! Every field has `long` + `env` so the router (local child processes) and the
//! operator (pod env) configure rooms the same way. Durations accept whole seconds
//! (`300`) or humantime strings (`5m`, `250ms`, `24h`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::core::RoomConfig;

/// Configuration of `rendezvous room`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "room",
    about = "Serve one chat room over WebSocket until it ends"
)]
pub struct Args {
    /// The room id this server serves; room tokens must name it.
    #[arg(long, env = "RENDEZVOUS_ROOM_ID")]
    pub room_id: String,

    /// Address to listen on. Default `127.0.0.1:0` (any free port, printed on stdout).
    #[arg(long, env = "RENDEZVOUS_ROOM_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Port of the room's media (WebRTC): UDP, and TCP for ICE-TCP (`--ice-tcp`),
    /// on the `--listen` address; every participant's media shares it. Default 0:
    /// any port free for both.
    #[arg(long, env = "RENDEZVOUS_ROOM_MEDIA_PORT", default_value_t = 0)]
    pub media_port: u16,

    /// The IP address advertised in the room's ICE candidate, when participants
    /// reach the media socket through another address than `--listen` (a public
    /// IP in front of a Pod, a NAT). Default: the `--listen` address.
    #[arg(long, env = "RENDEZVOUS_ROOM_PUBLIC_IP")]
    pub public_ip: Option<IpAddr>,

    /// Also estimate each subscriber's bandwidth from delay (transport-wide
    /// congestion control feedback into GCC), not only from the loss in its
    /// receiver reports. Off by default: where receivers are short of CPU (many
    /// browsers on one small machine) GCC reads their scheduling jitter as a
    /// queue and sends everyone the smallest simulcast layer.
    #[arg(
        long,
        env = "RENDEZVOUS_ROOM_MEDIA_DELAY_ESTIMATE",
        default_value_t = false
    )]
    pub media_delay_estimate: bool,

    /// ICE-TCP (RFC 6544): also take media over TCP on the media port number,
    /// advertised as a passive TCP candidate next to the UDP one, for
    /// participants whose network drops UDP. Browsers prefer UDP when both
    /// work. `--ice-tcp false` turns it off.
    #[arg(
        long,
        env = "RENDEZVOUS_ROOM_ICE_TCP",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub ice_tcp: bool,

    /// Verifying keys for room tokens, as a JWK Set JSON document.
    #[arg(long, env = "RENDEZVOUS_ROOM_TOKEN_JWKS")]
    pub token_jwks: Option<String>,

    /// URL of a JWK Set to verify room tokens with (used when `--token-jwks` is absent).
    #[arg(long, env = "RENDEZVOUS_ROOM_TOKEN_JWKS_URL")]
    pub token_jwks_url: Option<String>,

    /// Required `iss` of room tokens. Default `rendezvous-router`.
    #[arg(
        long,
        env = "RENDEZVOUS_ROOM_TOKEN_ISSUER",
        default_value = "rendezvous-router"
    )]
    pub token_issuer: String,

    /// Required `aud` of room tokens. Default `rendezvous-room`.
    #[arg(
        long,
        env = "RENDEZVOUS_ROOM_TOKEN_AUDIENCE",
        default_value = "rendezvous-room"
    )]
    pub token_audience: String,

    /// Participant cap (connected plus those within their reconnect grace). Default 50.
    #[arg(long, env = "RENDEZVOUS_ROOM_MAX_PARTICIPANTS", default_value_t = 50)]
    pub max_participants: usize,

    /// End the room after nobody has been connected for this long. Default 5m.
    #[arg(long, env = "RENDEZVOUS_ROOM_IDLE_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// End the room this long after it started, whatever happens. Default 24h.
    #[arg(long, env = "RENDEZVOUS_ROOM_MAX_DURATION", default_value = "24h", value_parser = parse_duration)]
    pub max_duration: Duration,

    /// Chat messages kept in memory for late joiners. Default 200.
    #[arg(long, env = "RENDEZVOUS_ROOM_BACKLOG_MESSAGES", default_value_t = 200)]
    pub backlog_messages: usize,

    /// Bytes of chat text kept in memory for late joiners. Default 262144 (256 KiB).
    #[arg(long, env = "RENDEZVOUS_ROOM_BACKLOG_BYTES", default_value_t = 256 * 1024)]
    pub backlog_bytes: usize,

    /// Room events kept for resuming clients. Default 2000.
    #[arg(long, env = "RENDEZVOUS_ROOM_REPLAY_EVENTS", default_value_t = 2000)]
    pub replay_events: usize,

    /// Bytes of room events kept for resuming clients. Default 1048576 (1 MiB).
    #[arg(long, env = "RENDEZVOUS_ROOM_REPLAY_BYTES", default_value_t = 1024 * 1024)]
    pub replay_bytes: usize,

    /// Chat frames (send, edit, delete, react) a participant may send per window:
    /// the token bucket's size. Other frames get five times this. Default 10.
    #[arg(
        long,
        env = "RENDEZVOUS_ROOM_RATE_LIMIT_MESSAGES",
        default_value_t = 10
    )]
    pub rate_limit_messages: u32,

    /// The window in which the bucket refills completely. Default 10s.
    #[arg(long, env = "RENDEZVOUS_ROOM_RATE_LIMIT_WINDOW", default_value = "10s", value_parser = parse_duration)]
    pub rate_limit_window: Duration,

    /// Joins (every `hello`, reconnects included) one user may make per
    /// `--rate-limit-joins-window`; more are refused with close code 4029. The
    /// bucket belongs to the user id and survives leaving. Default 10.
    #[arg(long, env = "RENDEZVOUS_ROOM_RATE_LIMIT_JOINS", default_value_t = 10)]
    pub rate_limit_joins: u32,

    /// The window in which the join bucket refills completely. Default 1m.
    #[arg(long, env = "RENDEZVOUS_ROOM_RATE_LIMIT_JOINS_WINDOW", default_value = "1m", value_parser = parse_duration)]
    pub rate_limit_joins_window: Duration,

    /// The server sends every joined connection a WebSocket Ping this often, so
    /// proxies with an idle timeout (often 60 s) see traffic in a quiet room.
    /// Default 20s.
    #[arg(long, env = "RENDEZVOUS_ROOM_PING_INTERVAL", default_value = "20s", value_parser = parse_duration)]
    pub ping_interval: Duration,

    /// A connection from which nothing (no pong, no frame) has arrived for
    /// `--ping-interval` plus this long counts as dropped (close code 4014): its
    /// reconnect grace period starts, as for a lost connection. Default 20s.
    #[arg(long, env = "RENDEZVOUS_ROOM_PONG_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub pong_timeout: Duration,

    /// Largest accepted frame; larger ones get a `frame_too_large` error. Frames
    /// over four times this close the connection (1009). Default 16384.
    #[arg(long, env = "RENDEZVOUS_ROOM_MAX_FRAME_BYTES", default_value_t = 16 * 1024)]
    pub max_frame_bytes: usize,

    /// Longest chat text, in characters. Default 4000.
    #[arg(long, env = "RENDEZVOUS_ROOM_MAX_TEXT_CHARS", default_value_t = 4000)]
    pub max_text_chars: usize,

    /// How long a dropped participant keeps their identity and can resume. Default 30s.
    #[arg(long, env = "RENDEZVOUS_ROOM_RECONNECT_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub reconnect_grace: Duration,

    /// A typing indicator expires after this long without a new `typing`. Default 5s.
    #[arg(long, env = "RENDEZVOUS_ROOM_TYPING_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub typing_timeout: Duration,

    /// How long a new connection may take to send `hello`. Default 10s.
    #[arg(long, env = "RENDEZVOUS_ROOM_HELLO_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub hello_timeout: Duration,

    /// Frames queued per connection before it counts as a slow consumer and is
    /// disconnected (4012). Bounds memory at about this × max frame size. Default 512.
    #[arg(long, env = "RENDEZVOUS_ROOM_OUTBOX_FRAMES", default_value_t = 512)]
    pub outbox_frames: usize,

    /// Close the room (everyone gets `room_closed`) when stdin reaches end of file.
    /// The local runtime holds the other end of the pipe, so a room never outlives a
    /// router that died without closing it (even by SIGKILL).
    #[arg(long, env = "RENDEZVOUS_ROOM_EXIT_ON_STDIN_EOF")]
    pub exit_on_stdin_eof: bool,
}

/// Parse `300` (seconds) or a humantime duration such as `5m`, `250ms`, `24h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|e| format!("invalid duration `{s}`: {e}"))
}

impl Args {
    /// Defaults for everything but the room id and keys (tests, benchmarks).
    pub fn with_defaults(room_id: &str, token_jwks: &str) -> Self {
        use clap::Parser;
        Self::parse_from(["room", "--room-id", room_id, "--token-jwks", token_jwks])
    }

    /// The pure core's share of the configuration.
    pub(crate) fn room_config(&self) -> RoomConfig {
        RoomConfig {
            room_id: self.room_id.clone(),
            max_participants: self.max_participants,
            idle_timeout: self.idle_timeout,
            max_duration: self.max_duration,
            backlog_messages: self.backlog_messages,
            backlog_bytes: self.backlog_bytes,
            replay_events: self.replay_events,
            replay_bytes: self.replay_bytes,
            rate_limit_messages: self.rate_limit_messages.max(1),
            rate_limit_window: self.rate_limit_window,
            join_rate_limit: self.rate_limit_joins.max(1),
            join_rate_window: self.rate_limit_joins_window,
            max_frame_bytes: self.max_frame_bytes,
            max_text_chars: self.max_text_chars,
            reconnect_grace: self.reconnect_grace,
            typing_timeout: self.typing_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_seconds_and_humantime() {
        assert_eq!(parse_duration("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn defaults_match_the_contract() {
        let args = Args::with_defaults("r1", "{}");
        assert_eq!(args.listen.to_string(), "127.0.0.1:0");
        assert_eq!(args.media_port, 0);
        assert_eq!(args.public_ip, None);
        assert!(!args.media_delay_estimate);
        assert!(args.ice_tcp);
        assert_eq!(args.max_participants, 50);
        assert_eq!(args.idle_timeout, Duration::from_secs(300));
        assert_eq!(args.max_duration, Duration::from_secs(86_400));
        assert_eq!(args.rate_limit_messages, 10);
        assert_eq!(args.rate_limit_joins, 10);
        assert_eq!(args.rate_limit_joins_window, Duration::from_secs(60));
        assert_eq!(args.ping_interval, Duration::from_secs(20));
        assert_eq!(args.pong_timeout, Duration::from_secs(20));
        assert_eq!(args.token_issuer, "rendezvous-router");
        assert_eq!(args.token_audience, "rendezvous-room");
    }
}
