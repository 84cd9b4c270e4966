//! The RoomRouter: rooms, invite links, room tokens, and the WebSocket proxy.
//!
//! Data flow: the room API (`routes`) checks the caller's access token against the
//! users service's keys, keeps live rooms and invites in the in-memory
//! [`registry::Registry`], and starts/stops room servers through a
//! [`runtime::RoomRuntime`]. The runtime reports rooms that became ready or ended on
//! a channel that [`Ctx::follow_events`] applies to the registry. Participants get a
//! room token minted with the router's own key ([`tokens::RoomTokens`]) and reach the
//! room through the router's WebSocket proxy (`proxy`), so a browser talks to one
//! origin only.
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod metrics;
pub mod model;
mod proxy;
pub mod registry;
mod routes;
pub mod runtime;
pub mod secret;
pub mod tokens;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;
use rendezvous_auth::{Expect, Verifier};
use rendezvous_service::HttpMetrics;
use tokio::sync::mpsc;

pub use config::Config;
pub use error::{Error, Result};
use runtime::{local::LocalRuntime, RoomEvent, RoomRuntime};

/// `rendezvous router`: the router on its own, with rooms as child processes.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Address to listen on.
    #[arg(
        long,
        env = "RENDEZVOUS_ROUTER_LISTEN",
        default_value = "127.0.0.1:8082"
    )]
    pub listen: SocketAddr,

    /// JWKS of the users service, to verify access tokens.
    #[arg(
        long,
        env = "RENDEZVOUS_USERS_JWKS_URL",
        default_value = "http://127.0.0.1:8081/.well-known/jwks.json"
    )]
    pub users_jwks_url: String,

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

    #[command(flatten)]
    pub config: Config,
}

/// Runtime events in flight; the follower applies each in microseconds, so this only
/// absorbs bursts (many rooms ending at once).
const EVENT_BUFFER: usize = 1024;

/// The router's shared state. Cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub cfg: Arc<Config>,
    pub registry: Arc<Mutex<registry::Registry>>,
    pub runtime: Arc<dyn RoomRuntime>,
    pub tokens: Arc<tokens::RoomTokens>,
    pub verifier: Verifier,
    pub metrics: metrics::Metrics,
    http: reqwest::Client,
    invites_rev: Arc<std::sync::atomic::AtomicU64>,
}

/// The room-token minter for `cfg`: from `--secret-file` (created if missing), or a
/// secret that lives as long as this process.
fn room_tokens(cfg: &Config) -> anyhow::Result<Arc<tokens::RoomTokens>> {
    let secret = match &cfg.secret_file {
        Some(path) => secret::RouterSecret::load_or_create(path)?,
        None => secret::RouterSecret::ephemeral(),
    };
    Ok(Arc::new(tokens::RoomTokens::new(
        Arc::new(secret),
        cfg.room_token_ttl,
    )?))
}

impl Ctx {
    /// A router whose rooms are local child processes. Returns the context and the
    /// receiver of runtime events, to be handed to [`Ctx::follow_events`].
    pub fn local(
        cfg: Config,
        verifier: Verifier,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<(Self, mpsc::Receiver<RoomEvent>)> {
        let tokens = room_tokens(&cfg)?;
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let binary = match &cfg.room_binary {
            Some(b) => b.clone(),
            None => std::env::current_exe()?,
        };
        let runtime = LocalRuntime::new(binary, tokens.clone(), cfg.room_start_timeout, tx);
        Ok((
            Self::with_runtime(cfg, verifier, registry, Arc::new(runtime), tokens),
            rx,
        ))
    }

    /// A router whose rooms are `Room` objects in `cfg.namespace`, reconciled by the
    /// operator. Rooms the router created before a restart are adopted into the
    /// registry with their live invite links (kept on the Room objects; the codes
    /// are derived from the router's secret, so they survive only with the same
    /// `--secret-file`).
    pub async fn kubernetes(
        cfg: Config,
        verifier: Verifier,
        registry: &prometheus::Registry,
        client: ::kube::Client,
    ) -> anyhow::Result<(Self, mpsc::Receiver<RoomEvent>)> {
        if cfg.secret_file.is_none() {
            tracing::warn!(
                "no --secret-file: invite links and room tokens will not survive a router \
                 restart, and router replicas will not accept each other's"
            );
        }
        let tokens = room_tokens(&cfg)?;
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let runtime = runtime::kube::KubeRuntime::start(
            client,
            &cfg.namespace,
            tokens.clone(),
            cfg.room_start_timeout,
            tx,
        )
        .await?;
        let existing = runtime.rooms();
        let ctx = Self::with_runtime(cfg, verifier, registry, Arc::new(runtime), tokens);
        ctx.adopt(&existing);
        Ok((ctx, rx))
    }

    /// Put Rooms found in the cluster into the registry (router restart).
    fn adopt(&self, rooms: &[Arc<rendezvous_crds::Room>]) {
        let mut reg = self.registry.lock().expect("registry lock");
        for r in rooms {
            let Some(room) = runtime::kube::registry_room(r, &self.tokens) else {
                continue;
            };
            let id = room.id.clone();
            if let Err(e) = reg.insert(room, usize::MAX, usize::MAX) {
                tracing::warn!(room = %id, error = %e, "could not adopt room");
            }
        }
        drop(reg);
        self.sync_live_gauge();
    }

    pub fn with_runtime(
        cfg: Config,
        verifier: Verifier,
        registry: &prometheus::Registry,
        runtime: Arc<dyn RoomRuntime>,
        tokens: Arc<tokens::RoomTokens>,
    ) -> Self {
        Self {
            cfg: Arc::new(cfg),
            registry: Arc::default(),
            runtime,
            tokens,
            verifier,
            metrics: metrics::Metrics::register(registry),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .expect("reqwest client"),
            invites_rev: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        }
    }

    /// A number that orders invite snapshots: taken while the registry lock that
    /// guarded the change is still held, so later changes get larger numbers.
    pub(crate) fn next_invites_rev(&self) -> u64 {
        self.invites_rev
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    fn sync_live_gauge(&self) {
        let n = self.registry.lock().expect("registry lock").len();
        self.metrics.rooms_live.set(n as i64);
    }

    /// Apply runtime events to the registry until the runtime goes away.
    pub async fn follow_events(self, mut rx: mpsc::Receiver<RoomEvent>) {
        while let Some(ev) = rx.recv().await {
            match ev {
                RoomEvent::Ready { id, endpoint } => {
                    self.registry
                        .lock()
                        .expect("registry lock")
                        .set_ready(&id, endpoint);
                }
                RoomEvent::Ended { id, reason } => {
                    if self
                        .registry
                        .lock()
                        .expect("registry lock")
                        .remove(&id)
                        .is_some()
                    {
                        tracing::info!(room = %id, %reason, "room ended on its own");
                        self.metrics
                            .rooms_closed
                            .with_label_values(&["ended"])
                            .inc();
                    }
                    self.sync_live_gauge();
                }
            }
        }
    }
}

/// The router's routes, without fallback, for merging into a larger app.
pub fn routes(ctx: Ctx) -> Router {
    let limit = ctx.cfg.router_max_body_bytes;
    Router::new()
        .route(
            "/api/rooms",
            post(routes::create_room).get(routes::list_rooms),
        )
        .route(
            "/api/rooms/{id}",
            get(routes::get_room).delete(routes::close_room),
        )
        .route("/api/rooms/{id}/invites", post(routes::create_invite))
        .route(
            "/api/rooms/{id}/invites/{invite}",
            delete(routes::revoke_invite),
        )
        .route("/api/join/{code}", post(routes::join))
        .route("/rooms/{id}/ws", get(proxy::ws))
        .route("/.well-known/room-jwks.json", get(routes::room_jwks))
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(ctx)
}

/// Run the router alone until `shutdown` resolves; every room is closed on the way out.
pub async fn run(
    args: Args,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = HttpMetrics::new("router");
    let verifier = Verifier::from_jwks_url(
        args.users_jwks_url,
        Expect::new(args.token_issuer, args.token_audience),
    );
    let (ctx, events) = match args.config.runtime {
        config::RuntimeKind::Local => Ctx::local(args.config, verifier, metrics.registry())?,
        config::RuntimeKind::Kubernetes => {
            let client = ::kube::Client::try_default().await?;
            Ctx::kubernetes(args.config, verifier, metrics.registry(), client).await?
        }
    };
    let follower = tokio::spawn(ctx.clone().follow_events(events));
    let app = metrics
        .wrap(routes(ctx.clone()))
        .route("/readyz", get(|| async { "ready" }))
        .fallback(rendezvous_service::not_found)
        .method_not_allowed_fallback(rendezvous_service::method_not_allowed);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "router listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    ctx.runtime.stop_all().await;
    follower.abort();
    Ok(())
}
