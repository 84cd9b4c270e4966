//! `rendezvous up`: every component behind one port on one machine.
//!
//! Users, router and the web page share one listener; rooms run as child processes
//! of this one. The router verifies access tokens with the users service's keys in
//! process (no JWKS round trip). On shutdown the server drains, then every room is
//! closed, so no child outlives us.

use std::future::Future;
use std::net::SocketAddr;

use rendezvous_service::HttpMetrics;

/// Settings of `rendezvous up`.
#[derive(clap::Args, Debug, Clone)]
pub struct UpArgs {
    /// Address to serve the whole service on.
    #[arg(long, env = "RENDEZVOUS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Address of `/metrics`. Unset: `/metrics` stays on `--listen`, the one port of a
    /// laptop set-up; set: only there, off the public port.
    #[arg(long, env = "RENDEZVOUS_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    #[command(flatten)]
    pub users: rendezvous_users::Config,

    #[command(flatten)]
    pub router: rendezvous_router::Config,
}

/// Run until `shutdown` resolves.
pub async fn run(
    args: UpArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = HttpMetrics::new("up");
    let mut router_cfg = args.router;
    // One flag for the one port: the users service owns `--trusted-proxy-hops`.
    router_cfg.trusted_proxy_hops = args.users.trusted_proxy_hops.into();
    // The router's secret lives next to the users database unless told otherwise.
    router_cfg
        .secret_file
        .get_or_insert_with(|| args.users.data_dir.join("router.secret"));
    let users = rendezvous_users::Ctx::new(args.users, &metrics).await?;
    let (router, events) = rendezvous_router::Ctx::local(
        router_cfg,
        users.keys.verifier().clone(),
        metrics.registry(),
    )?;
    let housekeeping = tokio::spawn(users.clone().housekeeping());
    let follower = tokio::spawn(router.clone().follow_events(events));
    let doc = serde_json::to_value(crate::openapi())?;
    let routes = rendezvous_users::routes(users)
        .merge(rendezvous_router::routes(router.clone()))
        .merge(rendezvous_service::openapi_route(doc))
        .merge(rendezvous_web::routes());
    let (drained, until_drained) = tokio::sync::oneshot::channel::<()>();
    let app = match args.metrics_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            // Stops when `drained` drops, after the public server has drained.
            tokio::spawn(rendezvous_service::serve_metrics(
                listener,
                metrics.clone(),
                async move {
                    let _ = until_drained.await;
                },
            ));
            metrics.track(routes)
        }
        None => metrics.wrap(routes),
    }
    .fallback(rendezvous_service::not_found)
    .method_not_allowed_fallback(rendezvous_service::method_not_allowed)
    .layer(axum::middleware::from_fn(rendezvous_web::security_headers));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "rendezvous is up");
    println!("rendezvous is up on http://{addr}/ (Ctrl-C to stop)");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(router.drain_on(shutdown))
    .await?;
    drop(drained);
    tracing::info!("closing every room");
    router.shutdown().await;
    housekeeping.abort();
    follower.abort();
    tracing::info!("stopped");
    Ok(())
}
