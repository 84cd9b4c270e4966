//! The RoomRouter: rooms, invite links, room tokens, and the WebSocket proxy.
//!
//! Data flow: the room API (`routes`) checks the caller's access token against the
//! users service's keys, keeps live rooms and invites in the in-memory
//! [`registry::Registry`], and starts/stops room servers through a
//! [`runtime::RoomRuntime`]. The runtime reports what happens to rooms on a channel
//! that [`Ctx::follow_events`] applies to the registry. With local rooms the registry
//! is the truth. In Kubernetes the `Room` objects are: the registry mirrors the watch
//! (so every router replica sees every room), and invite changes are written to the
//! Room with optimistic concurrency ([`Ctx::update_invites`]) before the registry
//! takes them. Participants get a room token minted with the router's own key
//! ([`tokens::RoomTokens`]) and reach the room through the router's WebSocket proxy
//! (`proxy`), so a browser talks to one origin only.
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod metrics;
pub mod model;
mod proxy;
pub mod registry;
pub mod room_status;
pub mod routes;
pub mod runtime;
pub mod secret;
pub mod tokens;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use rendezvous_auth::{Expect, Verifier};
use rendezvous_service::HttpMetrics;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;
pub use error::{Error, Result};
use registry::Room;
use runtime::{kube::KubeRuntime, local::LocalRuntime, RoomEvent, RoomRuntime};

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

    /// Reverse proxies in front of this router whose `X-Forwarded-Host`/`-Proto` are
    /// believed (the last N entries are theirs); 0: none.
    #[arg(long, env = "RENDEZVOUS_TRUSTED_PROXY_HOPS", default_value_t = 0)]
    pub trusted_proxy_hops: usize,

    /// Address of `/metrics` (and `/healthz`), kept off the public listener.
    #[arg(
        long,
        env = "RENDEZVOUS_METRICS_LISTEN",
        default_value = "127.0.0.1:9092"
    )]
    pub metrics_listen: SocketAddr,

    #[command(flatten)]
    pub config: Config,
}

/// Runtime events in flight; the follower applies each in microseconds, so this only
/// absorbs bursts (many rooms ending at once).
const EVENT_BUFFER: usize = 1024;

/// Tries of one invite change against concurrent writers before giving up. Each
/// retry re-reads the Room, so only sustained contention on one room exhausts it.
const UPDATE_ATTEMPTS: usize = 16;

/// How long shutdown waits for proxied sockets and room starts/stops to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The router's shared state. Cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub cfg: Arc<Config>,
    pub registry: Arc<Mutex<registry::Registry>>,
    pub runtime: Arc<dyn RoomRuntime>,
    /// The same runtime when it is Kubernetes: the Room objects are then the truth.
    kube: Option<Arc<KubeRuntime>>,
    pub tokens: Arc<tokens::RoomTokens>,
    pub verifier: Verifier,
    pub metrics: metrics::Metrics,
    http: reqwest::Client,
    /// Room starts and stops, and proxied WebSockets: shutdown waits for them.
    pub(crate) tasks: TaskTracker,
    /// Cancelled on shutdown: proxied sockets close with 1012 (service restart).
    pub(crate) draining: CancellationToken,
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
    /// operator. The registry follows the Rooms the watch sees, with their invite
    /// links (kept on the Room objects; the codes are derived from the router's
    /// secret, so replicas share them only with the same `--secret-file`).
    pub async fn kubernetes(
        cfg: Config,
        verifier: Verifier,
        registry: &prometheus::Registry,
        client: ::kube::Client,
    ) -> anyhow::Result<(Self, mpsc::Receiver<RoomEvent>)> {
        anyhow::ensure!(
            cfg.public_url.is_some(),
            "--public-url is required with --runtime kubernetes: invite links must not \
             be built from a client's Host header"
        );
        if cfg.secret_file.is_none() {
            tracing::warn!(
                "no --secret-file: invite links and room tokens will not survive a router \
                 restart, and router replicas will not accept each other's"
            );
        }
        let tokens = room_tokens(&cfg)?;
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let runtime = Arc::new(
            KubeRuntime::start(
                client,
                &cfg.namespace,
                tokens.clone(),
                cfg.room_start_timeout,
                tx,
            )
            .await?,
        );
        let existing = runtime.entries();
        let mut ctx = Self::with_runtime(cfg, verifier, registry, runtime.clone(), tokens);
        ctx.kube = Some(runtime);
        {
            let mut reg = ctx.reg();
            for room in existing {
                reg.upsert(room);
            }
        }
        ctx.sync_live_gauge();
        Ok((ctx, rx))
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
            kube: None,
            tokens,
            verifier,
            metrics: metrics::Metrics::register(registry),
            http: rendezvous_service::http_client(Duration::from_secs(2)),
            tasks: TaskTracker::new(),
            draining: CancellationToken::new(),
        }
    }

    /// The registry. A panic elsewhere while it was held leaves it usable: every
    /// change to it is a single step that leaves it consistent.
    pub fn reg(&self) -> MutexGuard<'_, registry::Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sync_live_gauge(&self) {
        let n = self.reg().len();
        self.metrics.rooms_live.set(n as i64);
    }

    /// Change room `id`'s invites with `f`, which returns its result and whether it
    /// changed anything that must be kept. Local rooms: in the registry. Kubernetes:
    /// `f` runs on a fresh copy of the Room object, which is written back only if
    /// nobody changed it meanwhile (resourceVersion precondition), else re-read and
    /// retried, so replicas never overwrite each other's counts; the registry then
    /// takes what was written.
    pub(crate) async fn update_invites<T>(
        &self,
        id: &str,
        mut f: impl FnMut(&mut Room) -> Result<(T, bool)>,
    ) -> Result<T> {
        let Some(kube) = &self.kube else {
            return self.reg().update(id, |room| f(room).map(|(out, _)| out));
        };
        // The watch cache may lag behind (even behind this replica's own last write):
        // it is only a first guess. A refusal computed from it is checked again on a
        // fresh read, and a write computed from it is refused by the API server if stale.
        let mut fresh = false;
        for _ in 0..UPDATE_ATTEMPTS {
            let (closing, known) = {
                let reg = self.reg();
                let room = reg.get(id)?;
                (room.state == model::RoomState::Closing, room.revision)
            };
            let obj = kube.fetch(id, fresh).await.map_err(Error::Internal)?;
            let Some(obj) = obj else {
                return Err(Error::RoomEnded);
            };
            if !fresh && runtime::kube::revision(&obj) < known {
                fresh = true;
                continue;
            }
            let Some(mut room) = kube.entry(&obj) else {
                return Err(Error::RoomEnded);
            };
            if closing {
                room.state = model::RoomState::Closing;
            }
            let (out, changed) = match f(&mut room) {
                Ok(v) => v,
                Err(_) if !fresh => {
                    fresh = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if !changed {
                return Ok(out);
            }
            match kube
                .write_invites(&obj, &model::records(&room.invites))
                .await
            {
                Ok(Some(written)) => {
                    if let Some(entry) = kube.entry(&written) {
                        self.reg().upsert(entry);
                    }
                    return Ok(out);
                }
                Ok(None) => {
                    self.metrics.invite_conflicts.inc();
                    fresh = true;
                }
                Err(e) => return Err(Error::Internal(e)),
            }
        }
        Err(Error::Internal(anyhow::anyhow!(
            "room {id}: invites changed by others {UPDATE_ATTEMPTS} times in a row"
        )))
    }

    /// Apply runtime events to the registry until the runtime goes away.
    pub async fn follow_events(self, mut rx: mpsc::Receiver<RoomEvent>) {
        while let Some(ev) = rx.recv().await {
            match ev {
                RoomEvent::Seen(room) => {
                    self.reg().upsert(*room);
                    self.sync_live_gauge();
                }
                RoomEvent::Closing { id } => {
                    self.reg().set_closing(&id);
                }
                RoomEvent::Ended { id, reason } => {
                    if self.reg().remove(&id).is_some() {
                        tracing::info!(room = %id, %reason, "room ended");
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

    /// `shutdown`, which also starts the drain of proxied sockets the moment it
    /// resolves when the rooms live on without this router (they are not the HTTP
    /// server's to wait for once upgraded).
    pub fn drain_on(
        &self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let draining = self
            .runtime
            .rooms_outlive_router()
            .then(|| self.draining.clone());
        async move {
            shutdown.await;
            if let Some(d) = draining {
                d.cancel();
            }
        }
    }

    /// Shut down, bounded by [`DRAIN_TIMEOUT`] per step. Rooms that live on (in a
    /// cluster): proxied sockets get 1012 (service restart) so their clients
    /// reconnect, to another replica, and resume. Rooms that end with this router
    /// (local): every room closes first, so everyone inside gets its `room_closed`
    /// through the proxy; then what is left of the sockets is drained.
    pub async fn shutdown(&self) {
        if !self.runtime.rooms_outlive_router() {
            self.runtime.stop_all().await;
        }
        self.draining.cancel();
        self.tasks.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.tasks.len(),
                "proxied sockets or room tasks still running after the drain timeout"
            );
        }
        if self.runtime.rooms_outlive_router() {
            self.runtime.stop_all().await;
        }
    }
}

/// The router's routes, without fallback, for merging into a larger app.
pub fn routes(ctx: Ctx) -> Router {
    let limit = ctx.cfg.router_max_body_bytes;
    routes::router()
        .route("/rooms/{id}/ws", get(proxy::ws))
        .route("/.well-known/room-jwks.json", get(room_jwks))
        .layer(DefaultBodyLimit::max(limit))
        .layer(rendezvous_service::trace_layer())
        .with_state(ctx)
}

/// Everything a standalone router answers on its public port: the room API and
/// sockets, its OpenAPI document, `/readyz`, and the web page (one origin for page,
/// API and WebSocket), every response with the browser security headers.
pub fn public_app(ctx: Ctx, metrics: &HttpMetrics) -> Router {
    let doc = {
        use utoipa::OpenApi as _;
        serde_json::to_value(routes::ApiDoc::openapi()).unwrap_or_default()
    };
    metrics
        .track(routes(ctx).merge(rendezvous_service::openapi_route(doc)))
        .route("/readyz", get(|| async { "ready" }))
        .merge(rendezvous_web::routes())
        .fallback(rendezvous_service::not_found)
        .method_not_allowed_fallback(rendezvous_service::method_not_allowed)
        .layer(axum::middleware::from_fn(rendezvous_web::security_headers))
}

/// `GET /.well-known/room-jwks.json`: the keys room servers verify room tokens with.
async fn room_jwks(
    axum::extract::State(ctx): axum::extract::State<Ctx>,
) -> impl axum::response::IntoResponse {
    use axum::http::header;
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        ctx.tokens.jwks_json().to_owned(),
    )
}

/// Run the router alone until `shutdown` resolves; every room is closed on the way
/// out (local runtime).
pub async fn run(
    args: Args,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = HttpMetrics::new("router");
    let mut args = args;
    args.config.trusted_proxy_hops = args.trusted_proxy_hops;
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
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let metrics_listener = tokio::net::TcpListener::bind(args.metrics_listen).await?;
    serve(ctx, events, metrics, listener, metrics_listener, shutdown).await
}

/// Serve the room API on `listener` and `/metrics` on `metrics_listener` until
/// `shutdown` resolves, then drain ([`Ctx::shutdown`]). Ends with an error if the
/// runtime's event stream ends first (in Kubernetes: the Room watch), since the router
/// would then serve a view of the rooms that no longer moves.
pub async fn serve(
    ctx: Ctx,
    events: mpsc::Receiver<RoomEvent>,
    metrics: HttpMetrics,
    listener: tokio::net::TcpListener,
    metrics_listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut follower = tokio::spawn(ctx.clone().follow_events(events));
    let (drained, until_drained) = tokio::sync::oneshot::channel::<()>();
    let metrics_server = tokio::spawn(rendezvous_service::serve_metrics(
        metrics_listener,
        metrics.clone(),
        async move {
            let _ = until_drained.await;
        },
    ));
    let app = public_app(ctx.clone(), &metrics);
    tracing::info!(addr = %listener.local_addr()?, "router listening");
    let serve = axum::serve(listener, app).with_graceful_shutdown(ctx.drain_on(shutdown));
    let result = tokio::select! {
        r = serve => r.context("serving"),
        _ = &mut follower => Err(anyhow::anyhow!("the room runtime's event stream ended")),
    };
    ctx.shutdown().await;
    follower.abort();
    drop(drained);
    let _ = metrics_server.await;
    result
}
