//! `rendezvous`: one multi-call binary for every Rendezvous component.
#![forbid(unsafe_code)]

use clap::Parser as _;

fn main() -> anyhow::Result<()> {
    rendezvous::Cli::parse().run()
}
