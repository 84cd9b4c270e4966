//! Configuration of the router: flags and environment, defaults documented.

use std::path::PathBuf;
use std::time::Duration;

/// Settings of the router (flattened into `rendezvous router` and `rendezvous up`).
#[derive(clap::Args, Debug, Clone)]
#[group(id = "router")]
pub struct Config {
    /// Base URL people reach this service at, for invite links (`PUBLIC_URL/join/CODE`)
    /// and WebSocket URLs, e.g. `https://meet.example.com`. Required with
    /// `--runtime kubernetes`. Default (local runtime): from each request's `Host`
    /// header over http, or the `X-Forwarded-Host`/`-Proto` set by a trusted proxy.
    #[arg(long, env = "RENDEZVOUS_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Reverse proxies in front of this router whose `X-Forwarded-*` headers are
    /// believed (the last N entries are theirs). 0: none, the headers are ignored.
    /// The flag (`--trusted-proxy-hops`) belongs to `rendezvous router` and to the
    /// users service (which `up` shares), so it is set from there.
    #[arg(skip)]
    pub trusted_proxy_hops: usize,

    /// How long a proxied WebSocket client may stay silent before the router pings
    /// it; a client silent for three times as long is dropped (its room then starts
    /// the reconnect grace period).
    #[arg(long, env = "RENDEZVOUS_WS_PING_INTERVAL", default_value = "20s", value_parser = humantime::parse_duration)]
    pub ws_ping_interval: Duration,

    /// Live rooms one user may have at once.
    #[arg(long, env = "RENDEZVOUS_ROOMS_PER_USER", default_value_t = 10)]
    pub rooms_per_user: usize,

    /// Live rooms on this router at once, all users together.
    #[arg(long, env = "RENDEZVOUS_MAX_ROOMS", default_value_t = 1000)]
    pub max_rooms: usize,

    /// Participant cap of a room when the creator gives none (the Room schema's
    /// default, `rendezvous_crds::limits`).
    #[arg(
        long,
        env = "RENDEZVOUS_DEFAULT_MAX_PARTICIPANTS",
        default_value_t = rendezvous_crds::limits::DEFAULT_MAX_PARTICIPANTS
    )]
    pub default_max_participants: u32,

    /// Idle timeout of a room (nobody inside) when the creator gives none.
    #[arg(long, env = "RENDEZVOUS_DEFAULT_IDLE_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration)]
    pub default_idle_timeout: Duration,

    /// Maximum lifetime of a room when the creator gives none.
    #[arg(long, env = "RENDEZVOUS_DEFAULT_MAX_DURATION", default_value = "8h", value_parser = humantime::parse_duration)]
    pub default_max_duration: Duration,

    /// Lifetime of a room token (the JWT a participant presents to the room server).
    #[arg(long, env = "RENDEZVOUS_ROOM_TOKEN_TTL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub room_token_ttl: Duration,

    /// Invite links per room, at most.
    #[arg(long, env = "RENDEZVOUS_INVITES_PER_ROOM", default_value_t = 20)]
    pub invites_per_room: usize,

    /// The executable started for each room (`BINARY room ...`). Default: this program.
    #[arg(long, env = "RENDEZVOUS_ROOM_BINARY")]
    pub room_binary: Option<PathBuf>,

    /// How long a room may take to start before its creation fails.
    #[arg(long, env = "RENDEZVOUS_ROOM_START_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub room_start_timeout: Duration,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "RENDEZVOUS_ROUTER_MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    pub router_max_body_bytes: usize,

    /// Where rooms run: `local` (child processes) or `kubernetes` (`Room` objects,
    /// reconciled by the operator; client from `KUBECONFIG` or the service account).
    #[arg(long, env = "RENDEZVOUS_ROUTER_RUNTIME", value_enum, default_value_t = RuntimeKind::Local)]
    pub runtime: RuntimeKind,

    /// Namespace of the `Room` objects (kubernetes runtime).
    #[arg(long, env = "RENDEZVOUS_ROUTER_NAMESPACE", default_value = "default")]
    pub namespace: String,

    /// File holding the router's secret (32 random bytes, base64), from which the
    /// room-token signing key and invite codes are derived; created on first start if
    /// missing. Every router replica must read the same one (in Kubernetes: a mounted
    /// Secret). Without it a random secret lives as long as the process, so invite
    /// links and room tokens die with it.
    #[arg(long, env = "RENDEZVOUS_ROUTER_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,
}

/// Which [`RoomRuntime`](crate::runtime::RoomRuntime) the router uses.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    Local,
    Kubernetes,
}

impl Config {
    /// A configuration for tests.
    pub fn test() -> Self {
        Self {
            public_url: None,
            trusted_proxy_hops: 0,
            ws_ping_interval: Duration::from_secs(20),
            rooms_per_user: 10,
            max_rooms: 1000,
            default_max_participants: rendezvous_crds::limits::DEFAULT_MAX_PARTICIPANTS,
            default_idle_timeout: Duration::from_secs(300),
            default_max_duration: Duration::from_secs(8 * 3600),
            room_token_ttl: Duration::from_secs(600),
            invites_per_room: 20,
            room_binary: None,
            room_start_timeout: Duration::from_secs(10),
            router_max_body_bytes: 16 * 1024,
            runtime: RuntimeKind::Local,
            namespace: "default".into(),
            secret_file: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;
    use rendezvous_crds::limits;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        cfg: Config,
    }

    /// A room made through the API gets the defaults of one applied with kubectl.
    #[test]
    fn default_flags_are_the_room_schema_defaults() {
        let cfg = Cli::parse_from(["router"]).cfg;
        assert_eq!(
            cfg.default_max_participants,
            limits::DEFAULT_MAX_PARTICIPANTS
        );
        assert_eq!(
            cfg.default_idle_timeout.as_secs(),
            u64::from(limits::DEFAULT_IDLE_TIMEOUT_SECS)
        );
        assert_eq!(
            cfg.default_max_duration.as_secs(),
            u64::from(limits::DEFAULT_MAX_DURATION_SECS)
        );
    }
}
