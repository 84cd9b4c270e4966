//! The users service: accounts, log-in sessions, and the keys of access tokens.
//!
//! Data flow: a request enters [`app`], is decoded by the extractors in `extract`
//! (JSON errors on bad input), handled in `routes`, which read and write through
//! [`store::Store`] (SQLite or PostgreSQL via sqlx `Any`) and sign tokens with the
//! [`keyring::Keyring`]. A housekeeping task rotates keys, purges expired refresh
//! tokens and sweeps rate-limiter state.
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
mod extract;
pub mod keyring;
pub mod model;
pub mod password;
mod ratelimit;
pub mod routes;
pub mod store;
mod validate;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use rendezvous_auth::{now_unix, Expect};
use rendezvous_service::HttpMetrics;
use tokio::net::TcpListener;

pub use config::Config;
pub use error::{Error, Result};

/// `rendezvous users`: the users service on its own.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "RENDEZVOUS_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,

    /// Address of `/metrics`, kept off the public listener. Loopback by default; set
    /// e.g. `0.0.0.0:9091` where Prometheus scrapes from another host.
    #[arg(
        long,
        env = "RENDEZVOUS_METRICS_LISTEN",
        default_value = "127.0.0.1:9091"
    )]
    pub metrics_listen: SocketAddr,

    #[command(flatten)]
    pub config: Config,
}

/// Service-specific metrics.
#[derive(Clone)]
pub struct Metrics {
    pub login_failures: prometheus::IntCounter,
}

impl Metrics {
    fn register(registry: &prometheus::Registry) -> Self {
        let login_failures = prometheus::IntCounter::new(
            "rendezvous_users_login_failures_total",
            "Log-in attempts refused for a wrong login or password",
        )
        .expect("valid metric");
        // A second registration (several apps on one registry in tests) is harmless.
        let _ = registry.register(Box::new(login_failures.clone()));
        Self { login_failures }
    }
}

/// The service's shared state. Cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub cfg: Arc<Config>,
    pub store: store::Store,
    pub keys: Arc<keyring::Keyring>,
    /// The bounded password hasher (its peak is a test hook for the bound).
    pub hasher: password::Hasher,
    limiters: ratelimit::Limiters,
    metrics: Metrics,
}

impl Ctx {
    /// Connect to the database, migrate, and load (or create) the signing keys.
    pub async fn new(cfg: Config, metrics: &HttpMetrics) -> anyhow::Result<Self> {
        let store = store::Store::connect(&cfg.database_url()).await?;
        let keys = keyring::Keyring::load(
            store.clone(),
            Expect::new(&cfg.token_issuer, &cfg.token_audience),
            cfg.access_token_ttl,
            cfg.key_rotation_interval,
            now_unix(),
        )
        .await?;
        let hasher = password::Hasher::new(
            cfg.password_hash_concurrency(),
            cfg.password_hash_wait,
            metrics.registry(),
        );
        Ok(Self {
            limiters: ratelimit::Limiters::new(&cfg),
            hasher,
            cfg: Arc::new(cfg),
            store,
            keys: Arc::new(keys),
            metrics: Metrics::register(metrics.registry()),
        })
    }

    /// Rotate keys when due, purge expired refresh tokens, sweep limiters; forever.
    pub async fn housekeeping(self) {
        // Rotation is measured in days, limiter periods in minutes; the key sync period
        // is also what the keyring's publish-ahead time is built on.
        // The first tick waits a period: `Ctx::new` has just synced.
        let start = tokio::time::Instant::now() + keyring::SYNC_PERIOD;
        let mut tick = tokio::time::interval_at(start, keyring::SYNC_PERIOD);
        loop {
            tick.tick().await;
            if let Err(e) = self.keys.sync_at(now_unix(), false).await {
                tracing::error!(error = %e, "key sync failed");
            }
            if let Err(e) = self.store.purge_expired_refresh(now_unix()).await {
                tracing::error!(error = %e, "refresh-token purge failed");
            }
            self.limiters.sweep();
        }
    }
}

/// The users routes with the body limit and request tracing, but no fallback and no
/// `/metrics`: for merging into a larger app.
pub fn routes(ctx: Ctx) -> Router {
    let limit = ctx.cfg.max_body_bytes;
    routes::routes(ctx)
        .layer(DefaultBodyLimit::max(limit))
        .layer(rendezvous_service::trace_layer())
}

/// The complete public users app: routes, JSON 404/405 and `/healthz`. `/metrics` is
/// not here: [`serve`] puts it on its own listener.
pub fn app(ctx: Ctx, metrics: &HttpMetrics) -> Router {
    use utoipa::OpenApi as _;
    let doc = serde_json::to_value(routes::ApiDoc::openapi()).unwrap_or_default();
    metrics
        .track(routes(ctx).merge(rendezvous_service::openapi_route(doc)))
        .fallback(rendezvous_service::not_found)
        .method_not_allowed_fallback(rendezvous_service::method_not_allowed)
}

/// Run the users service until `shutdown` resolves.
pub async fn run(
    args: Args,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = HttpMetrics::new("users");
    let ctx = Ctx::new(args.config, &metrics).await?;
    let listener = TcpListener::bind(args.listen).await?;
    let metrics_listener = TcpListener::bind(args.metrics_listen).await?;
    serve(ctx, metrics, listener, metrics_listener, shutdown).await
}

/// Serve `ctx` on `listener` and its metrics on `metrics_listener` until `shutdown`
/// resolves, with housekeeping running. Metrics stay up while the public side drains.
pub async fn serve(
    ctx: Ctx,
    metrics: HttpMetrics,
    listener: TcpListener,
    metrics_listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "users service listening");
    let housekeeping = AbortOnDrop(tokio::spawn(ctx.clone().housekeeping()));
    // Dropping `drained` (after the public server) stops the metrics server.
    let (drained, until_drained) = tokio::sync::oneshot::channel::<()>();
    let mut metrics_server = AbortOnDrop(tokio::spawn(rendezvous_service::serve_metrics(
        metrics_listener,
        metrics.clone(),
        async move {
            let _ = until_drained.await;
        },
    )));
    let served = axum::serve(
        listener,
        app(ctx, &metrics).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    drop(drained);
    drop(housekeeping);
    (&mut metrics_server.0).await??;
    Ok(served?)
}

/// Aborts its task when dropped, so the helpers of an abandoned [`serve`] (a test's
/// server task aborted) do not outlive it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
