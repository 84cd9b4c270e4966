//! A standalone room server, for measuring one room process (idle RSS, start-up)
//! and for manual runs. The product CLI wires the same entry point as `rendezvous room`.
#![forbid(unsafe_code)]

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rendezvous_service::init_tracing();
    let args = rendezvous_room::Args::parse();
    rendezvous_room::run(args, rendezvous_room::shutdown_signal()).await?;
    Ok(())
}
