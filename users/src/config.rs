//! Configuration of the users service: flags and environment, defaults documented.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of the users service (flattened into `rendezvous users` and `rendezvous up`).
#[derive(clap::Args, Debug, Clone)]
#[group(id = "users")]
pub struct Config {
    /// Database URL. `sqlite://PATH` or `postgres://...`. Default: SQLite at
    /// `DATA_DIR/users.db`, created on first start.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Directory for local state (the SQLite database).
    #[arg(long, env = "RENDEZVOUS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// `iss` of access tokens.
    #[arg(
        long,
        env = "RENDEZVOUS_TOKEN_ISSUER",
        default_value = "rendezvous-users"
    )]
    pub token_issuer: String,

    /// `aud` of access tokens.
    #[arg(long, env = "RENDEZVOUS_TOKEN_AUDIENCE", default_value = "rendezvous")]
    pub token_audience: String,

    /// Lifetime of an access token.
    #[arg(long, env = "RENDEZVOUS_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = humantime::parse_duration)]
    pub access_token_ttl: Duration,

    /// Lifetime of a refresh token (each refresh issues a new one).
    #[arg(long, env = "RENDEZVOUS_REFRESH_TOKEN_TTL", default_value = "30days", value_parser = humantime::parse_duration)]
    pub refresh_token_ttl: Duration,

    /// How long after a refresh token was exchanged presenting it again still
    /// gets a new session instead of revoking the login: the answer to a refresh
    /// can be lost (a tab reloaded or closed mid-request, a dropped connection),
    /// leaving the browser with the spent token. Past it, reuse revokes every
    /// session of the login. `0s` turns the grace off.
    #[arg(long, env = "RENDEZVOUS_REFRESH_REUSE_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub refresh_reuse_grace: Duration,

    /// How long a signing key signs before a new one replaces it. The old key keeps
    /// verifying (stays in the JWKS) until the tokens it signed have expired.
    #[arg(long, env = "RENDEZVOUS_KEY_ROTATION_INTERVAL", default_value = "30days", value_parser = humantime::parse_duration)]
    pub key_rotation_interval: Duration,

    /// Log-in attempts allowed per account per minute.
    #[arg(
        long,
        env = "RENDEZVOUS_LOGIN_PER_ACCOUNT_PER_MINUTE",
        default_value_t = 10
    )]
    pub login_per_account_per_minute: u32,

    /// Log-in attempts allowed per client address per minute.
    #[arg(
        long,
        env = "RENDEZVOUS_LOGIN_PER_ADDRESS_PER_MINUTE",
        default_value_t = 30
    )]
    pub login_per_address_per_minute: u32,

    /// Registrations allowed per client address per hour.
    #[arg(
        long,
        env = "RENDEZVOUS_REGISTER_PER_ADDRESS_PER_HOUR",
        default_value_t = 20
    )]
    pub register_per_address_per_hour: u32,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "RENDEZVOUS_MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,

    /// How many proxies in front of this service append to `X-Forwarded-For`. The
    /// client address (for the rate limits) is that many entries from the right; 0
    /// uses the socket peer and ignores the header, which clients can forge. Behind one
    /// Ingress, 1. At most 32.
    #[arg(long, env = "RENDEZVOUS_TRUSTED_PROXY_HOPS", default_value_t = 0,
        value_parser = clap::value_parser!(u8).range(..=32))]
    pub trusted_proxy_hops: u8,

    /// Password hashes (argon2id, 19 MiB each) computed at once. Default: the number
    /// of CPUs, since more only queue for a core while holding their memory.
    #[arg(long, env = "RENDEZVOUS_PASSWORD_HASH_CONCURRENCY")]
    pub password_hash_concurrency: Option<NonZeroUsize>,

    /// How long a request waits for a hashing slot before `503 busy` (with
    /// `Retry-After`).
    #[arg(long, env = "RENDEZVOUS_PASSWORD_HASH_WAIT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub password_hash_wait: Duration,
}

impl Config {
    /// The database URL in force: the explicit one, or SQLite under the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("users.db").display()
            ),
        }
    }

    /// A configuration for tests: the given database, generous rate limits.
    pub fn test(database_url: impl Into<String>) -> Self {
        Self {
            database_url: Some(database_url.into()),
            data_dir: PathBuf::from("./data"),
            token_issuer: "rendezvous-users".into(),
            token_audience: "rendezvous".into(),
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            // Off: the reuse tests replay at once; the grace has a test of its own.
            refresh_reuse_grace: Duration::ZERO,
            key_rotation_interval: Duration::from_secs(30 * 24 * 3600),
            login_per_account_per_minute: 1000,
            login_per_address_per_minute: 1000,
            register_per_address_per_hour: 1000,
            max_body_bytes: 16 * 1024,
            trusted_proxy_hops: 0,
            password_hash_concurrency: None,
            password_hash_wait: Duration::from_secs(2),
        }
    }

    /// The bound on concurrent password hashes in force.
    pub fn password_hash_concurrency(&self) -> usize {
        self.password_hash_concurrency
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get)
    }
}
