//! The Room operator: reconciles `Room` objects into room-server Pods.
//!
//! Data flow: a kube-runtime [`Controller`](kube::runtime::Controller) watches Rooms
//! and the Pods they own (one watch both triggers reconciles and caches the Pods) and
//! calls [`controller::reconcile`] per Room; that reads the Pod from the cache,
//! computes the wanted Pod ([`pod::desired_pod`]) and status ([`status::status_from`])
//! with pure functions, and applies them with server-side apply. Only the replica holding the Lease ([`leader`]) runs the controller; every
//! replica serves `/healthz` and `/metrics` on `--listen`.
#![forbid(unsafe_code)]

pub mod controller;
pub mod error;
pub mod leader;
pub mod metrics;
pub mod occupancy;
pub mod pod;
pub mod ports;
pub mod status;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use kube::runtime::reflector::Store;
use rendezvous_crds::Room;
use tokio::sync::watch;

pub use error::{Error, Result};

/// `rendezvous operator`: every flag also reads `RENDEZVOUS_OPERATOR_*`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Namespace whose Rooms to reconcile. Default: all namespaces.
    #[arg(long, env = "RENDEZVOUS_OPERATOR_NAMESPACE")]
    pub namespace: Option<String>,

    /// Address of `/healthz` and `/metrics`.
    #[arg(
        long,
        env = "RENDEZVOUS_OPERATOR_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub listen: SocketAddr,

    /// Image of room-server Pods (entrypoint: the `rendezvous` binary).
    #[arg(
        long,
        env = "RENDEZVOUS_OPERATOR_ROOM_IMAGE",
        default_value = "ghcr.io/rendezvous/rendezvous:latest"
    )]
    pub room_image: String,

    /// `imagePullPolicy` of room Pods.
    #[arg(
        long,
        env = "RENDEZVOUS_OPERATOR_IMAGE_PULL_POLICY",
        default_value = "IfNotPresent"
    )]
    pub image_pull_policy: String,

    /// Port the room server listens on in its Pod (the endpoint is `podIP:PORT`).
    #[arg(long, env = "RENDEZVOUS_OPERATOR_ROOM_PORT", default_value_t = 8090)]
    pub room_port: u16,

    /// UDP port of each room's media (WebRTC) on its Pod's own IP, which the room
    /// advertises: for pod networks participants can reach. Unused with
    /// `--media-host-ports`.
    #[arg(
        long,
        env = "RENDEZVOUS_OPERATOR_ROOM_MEDIA_PORT",
        default_value_t = 8091
    )]
    pub room_media_port: u16,

    /// Give each room a UDP port of its node from this range (`FIRST-LAST`, as
    /// `hostPort`) and advertise the node's address, so participants outside the pod
    /// network reach the media. No two Rooms on one node share a port. The Rooms'
    /// namespace must allow host ports (they are outside the restricted and baseline
    /// Pod Security Standards). Default: off (`--room-media-port` on the Pod IP).
    #[arg(long, env = "RENDEZVOUS_OPERATOR_MEDIA_HOST_PORTS", value_parser = pod::parse_port_range)]
    pub media_host_ports: Option<(u16, u16)>,

    /// CPU request of a room Pod.
    #[arg(
        long,
        env = "RENDEZVOUS_OPERATOR_ROOM_CPU_REQUEST",
        default_value = "50m"
    )]
    pub room_cpu_request: String,
    /// CPU limit of a room Pod.
    #[arg(long, env = "RENDEZVOUS_OPERATOR_ROOM_CPU_LIMIT", default_value = "1")]
    pub room_cpu_limit: String,
    /// Memory request of a room Pod.
    #[arg(
        long,
        env = "RENDEZVOUS_OPERATOR_ROOM_MEMORY_REQUEST",
        default_value = "32Mi"
    )]
    pub room_memory_request: String,
    /// Memory limit of a room Pod.
    #[arg(
        long,
        env = "RENDEZVOUS_OPERATOR_ROOM_MEMORY_LIMIT",
        default_value = "256Mi"
    )]
    pub room_memory_limit: String,

    /// URL of the router's room-token JWKS, handed to room Pods. Default: none.
    #[arg(long, env = "RENDEZVOUS_OPERATOR_ROOM_TOKEN_JWKS_URL")]
    pub room_token_jwks_url: Option<String>,

    /// How long a closing room gets to tell everyone and stop before the Room is released.
    #[arg(long, env = "RENDEZVOUS_OPERATOR_CLOSE_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub close_grace: Duration,

    /// Pod replacements (deleted or failed Pods) before a Room is marked Failed.
    #[arg(long, env = "RENDEZVOUS_OPERATOR_MAX_RESTARTS", default_value_t = 3)]
    pub max_restarts: u32,

    /// Re-check interval of a healthy Room (lifetime, drift).
    #[arg(long, env = "RENDEZVOUS_OPERATOR_RESYNC", default_value = "5m", value_parser = humantime::parse_duration)]
    pub resync: Duration,

    /// How often Ready rooms are asked how many people are inside
    /// (`status.participants`; `GET /status` on the room's endpoint).
    #[arg(long, env = "RENDEZVOUS_OPERATOR_OCCUPANCY_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub occupancy_interval: Duration,

    /// Rooms reconciled at once; the rest queue.
    #[arg(long, env = "RENDEZVOUS_OPERATOR_CONCURRENCY", default_value_t = 32)]
    pub concurrency: u16,

    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "RENDEZVOUS_OPERATOR_LEASE_NAME",
        default_value = "rendezvous-operator"
    )]
    pub lease_name: String,

    /// Namespace of the Lease. Default: `--namespace`, else `default`.
    #[arg(long, env = "RENDEZVOUS_OPERATOR_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// This replica's identity in the Lease. Default: `$HOSTNAME` (the Pod name).
    #[arg(long, env = "RENDEZVOUS_OPERATOR_IDENTITY")]
    pub identity: Option<String>,

    /// How long the Lease is valid without renewal.
    #[arg(long, env = "RENDEZVOUS_OPERATOR_LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,

    /// How often the leader renews the Lease, and a standby tries to take it.
    #[arg(long, env = "RENDEZVOUS_OPERATOR_LEASE_RENEW", default_value = "2s", value_parser = humantime::parse_duration)]
    pub lease_renew: Duration,

    /// How long a leader keeps acting after its last confirmed renewal when it cannot
    /// renew (client-go's renewDeadline); must be shorter than `--lease-duration`.
    #[arg(long, env = "RENDEZVOUS_OPERATOR_LEASE_RENEW_DEADLINE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub lease_renew_deadline: Duration,
}

impl Args {
    fn settings(&self) -> controller::Settings {
        controller::Settings {
            pod: pod::PodConfig {
                image: self.room_image.clone(),
                image_pull_policy: self.image_pull_policy.clone(),
                port: self.room_port,
                cpu_request: self.room_cpu_request.clone(),
                cpu_limit: self.room_cpu_limit.clone(),
                memory_request: self.room_memory_request.clone(),
                memory_limit: self.room_memory_limit.clone(),
                token_jwks_url: self.room_token_jwks_url.clone(),
                termination_grace_secs: self.close_grace.as_secs() as i64,
                media: pod::MediaPorts::from_flags(self.room_media_port, self.media_host_ports),
            },
            max_restarts: self.max_restarts,
            close_grace: self.close_grace,
            resync: self.resync,
            occupancy_interval: self.occupancy_interval,
            concurrency: self.concurrency,
        }
    }

    fn lease(&self) -> leader::LeaseConfig {
        let identity = self
            .identity
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| format!("rendezvous-operator-{}", std::process::id()));
        leader::LeaseConfig {
            name: self.lease_name.clone(),
            namespace: self
                .lease_namespace
                .clone()
                .or_else(|| self.namespace.clone())
                .unwrap_or_else(|| "default".into()),
            identity,
            duration: self.lease_duration,
            renew_deadline: self.lease_renew_deadline,
            retry_period: self.lease_renew,
        }
    }
}

/// Run the operator until `shutdown` resolves, with the client from the environment
/// (`KUBECONFIG` or the in-cluster service account) and `/metrics` on `--listen`.
pub async fn run(
    args: Args,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let client = kube::Client::try_default().await?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "operator metrics listening");
    run_with(args, client, listener, shutdown).await
}

/// [`run`] with a given client and `/healthz`+`/metrics` listener (tests pass their own).
///
/// Two tasks must live as long as the operator: the HTTP server and the leader loop
/// (whose terms run the controller and the occupancy poller). Either ending before
/// `shutdown` is an error, so the process exits instead of hanging half alive.
pub async fn run_with<L>(
    args: Args,
    client: kube::Client,
    listener: L,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let lease = args.lease();
    lease.check().map_err(anyhow::Error::msg)?;
    let settings = args.settings();
    let metrics = metrics::Metrics::default();
    let (store_tx, store_rx) = watch::channel::<Option<Store<Room>>>(None);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = std::sync::Arc::new(stop_tx);
    let on_shutdown = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        on_shutdown.send_replace(true);
    });
    let app = http_routes(metrics.clone(), store_rx);
    let mut stop = stop_rx.clone();
    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    let mut http = tokio::spawn(async move { serve.await });

    let mut elector = leader::Elector::new(client.clone(), lease);
    let term = || {
        let term_guard = Term::start(&metrics, &store_tx);
        let ctl = controller::run_controller(
            client.clone(),
            settings.clone(),
            metrics.clone(),
            args.namespace.clone(),
            stop_rx.clone(),
            store_tx.clone(),
        );
        async move {
            let _term = term_guard;
            ctl.await
        }
    };
    let result = {
        let leading = leader::lead(&mut elector, stop_rx.clone(), term);
        tokio::pin!(leading);
        tokio::select! {
            r = &mut leading => r.map_err(anyhow::Error::from),
            r = &mut http => match r {
                // Asked to stop: the server drained first and the leader loop follows.
                Ok(Ok(())) if *stop_rx.borrow() => leading.await.map_err(anyhow::Error::from),
                Ok(Ok(())) => Err(anyhow::anyhow!("the operator's HTTP server ended unexpectedly")),
                Ok(Err(e)) => Err(anyhow::anyhow!("the operator's HTTP server failed: {e}")),
                Err(e) => Err(anyhow::anyhow!("the operator's HTTP server failed: {e}")),
            },
        }
    };
    // Stop everything that may still run, even on an error (the HTTP server drains).
    stop_tx.send_replace(true);
    elector.release().await;
    if !http.is_finished() {
        match tokio::time::timeout(Duration::from_secs(5), &mut http).await {
            Ok(Ok(Err(e))) if result.is_ok() => return Err(e.into()),
            Err(_) => tracing::warn!("the HTTP server did not drain in 5 s"),
            _ => {}
        }
    }
    result
}

/// While alive, this replica acts as leader: the leader gauge is 1 and `/metrics`
/// counts Rooms from the term's cache. Dropped with the term, however it ends.
struct Term {
    metrics: metrics::Metrics,
    store_tx: watch::Sender<Option<Store<Room>>>,
}

impl Term {
    fn start(metrics: &metrics::Metrics, store_tx: &watch::Sender<Option<Store<Room>>>) -> Self {
        metrics.leader.set(1);
        Self {
            metrics: metrics.clone(),
            store_tx: store_tx.clone(),
        }
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        self.metrics.leader.set(0);
        self.store_tx.send_replace(None);
    }
}

fn http_routes(m: metrics::Metrics, store: watch::Receiver<Option<Store<Room>>>) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let (m, store) = (m.clone(), store.borrow().clone());
                async move {
                    if let Some(store) = store {
                        controller::count_phases(&store, &m);
                    }
                    m.render()
                }
            }),
        )
}
