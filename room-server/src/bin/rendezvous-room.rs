//! A standalone room server, for measuring one room process (idle RSS, start-up)
//! and for manual runs. The product CLI wires the same entry point as `rendezvous room`.
#![forbid(unsafe_code)]

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = rendezvous_room::Args::parse();
    rendezvous_room::run(args, rendezvous_room::shutdown_signal()).await?;
    Ok(())
}
