//! `rendezvous up`: every component behind one port on one machine.

use std::future::Future;
use std::net::SocketAddr;

use rendezvous_service::HttpMetrics;

/// Settings of `rendezvous up`.
#[derive(clap::Args, Debug, Clone)]
pub struct UpArgs {
    /// Address to serve the whole service on.
    #[arg(long, env = "RENDEZVOUS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub users: rendezvous_users::Config,
}

/// Run until `shutdown` resolves.
pub async fn run(
    args: UpArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = HttpMetrics::new("up");
    let users = rendezvous_users::Ctx::new(args.users, &metrics).await?;
    let housekeeping = tokio::spawn(users.clone().housekeeping());
    let app = metrics
        .wrap(rendezvous_users::routes(users))
        .fallback(rendezvous_service::not_found)
        .method_not_allowed_fallback(rendezvous_service::method_not_allowed);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "rendezvous is up: http://{addr}/");
    println!("rendezvous is up on http://{addr}/ (Ctrl-C to stop)");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    housekeeping.abort();
    tracing::info!("stopped");
    Ok(())
}
