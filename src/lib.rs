//! The `rendezvous` CLI: parses a subcommand and hands off to the component's library.
//!
//! `up` runs the whole service on one machine; the others run one component each.
#![forbid(unsafe_code)]

mod up;

use clap::{Parser, Subcommand};

/// Rendezvous: ephemeral chat and video rooms.
#[derive(Parser, Debug)]
#[command(name = "rendezvous", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the whole service on one machine (SQLite, rooms as child processes).
    Up(up::UpArgs),
    /// Run the users service alone.
    Users(rendezvous_users::Args),
    /// Run the room router alone (rooms as child processes).
    Router(rendezvous_router::Args),
    /// Run one room server (started by the router; exits when the room ends).
    Room(rendezvous_room::Args),
    /// Join a room from the terminal: stdin lines are sent as chat, events printed.
    Join(rendezvous_room::join::JoinArgs),
    /// Run the Room operator (Kubernetes: Room objects become room-server Pods).
    Operator(rendezvous_operator::Args),
    /// Write the CRD YAML (`rooms.rendezvous.dev.yaml`) into a directory.
    Crdgen {
        /// Directory to write into.
        #[arg(long, default_value = "crds")]
        out: std::path::PathBuf,
    },
    /// Regenerate every generated file of a checkout from the code: the CRD YAML, the
    /// room protocol document and the OpenAPI document (`scripts/regen`; the test
    /// script checks them).
    #[command(hide = true)]
    Gen {
        /// The repository's root.
        #[arg(long, default_value = ".")]
        root: std::path::PathBuf,
    },
}

/// The OpenAPI document of everything `rendezvous up` serves: the users API and the
/// room API, in one. Committed as `docs/openapi.json` (see [`generate`]).
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi as _;
    let mut doc = rendezvous_users::routes::ApiDoc::openapi();
    doc.merge(rendezvous_router::routes::ApiDoc::openapi());
    doc.info.title = "Rendezvous API".into();
    doc.info.description = Some(
        "Accounts, sessions and token keys; rooms, invite links and room tokens. \
         Errors are `{\"error\":{\"code\",\"message\"}}`. The room's WebSocket, \
         `GET /rooms/{id}/ws`, speaks the protocol in room-server/docs/protocol.md."
            .into(),
    );
    doc
}

/// Write the generated files under `root`; the paths written.
fn generate(root: &std::path::Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    use anyhow::Context as _;
    let crd = root.join("crds/rooms.rendezvous.dev.yaml");
    std::fs::write(&crd, rendezvous_crds::crd_yaml())?;
    let doc = root.join("room-server/docs/protocol.md");
    let text =
        std::fs::read_to_string(&doc).with_context(|| format!("reading {}", doc.display()))?;
    let fresh = rendezvous_room::protocol_doc::splice(&text)
        .with_context(|| format!("{} has lost its generated-section markers", doc.display()))?;
    std::fs::write(&doc, fresh)?;
    let api = root.join("docs/openapi.json");
    std::fs::write(&api, serde_json::to_string_pretty(&openapi())? + "\n")?;
    Ok(vec![crd, doc, api])
}

impl Cli {
    /// Start the runtime and run the chosen command until it ends or a signal arrives.
    pub fn run(self) -> anyhow::Result<()> {
        if let Command::Crdgen { out } = &self.command {
            let path = rendezvous_crds::write_crd(out)?;
            println!("{}", path.display());
            return Ok(());
        }
        if let Command::Gen { root } = &self.command {
            for path in generate(root)? {
                println!("{}", path.display());
            }
            return Ok(());
        }
        rendezvous_service::init_tracing();
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(async move {
            let shutdown = rendezvous_service::shutdown_signal();
            match self.command {
                Command::Up(args) => up::run(args, shutdown).await,
                Command::Users(args) => rendezvous_users::run(args, shutdown).await,
                Command::Router(args) => rendezvous_router::run(args, shutdown).await,
                Command::Room(args) => Ok(rendezvous_room::run(args, shutdown).await?),
                Command::Join(args) => rendezvous_room::join::run_join(args).await,
                Command::Operator(args) => rendezvous_operator::run(args, shutdown).await,
                Command::Crdgen { .. } | Command::Gen { .. } => {
                    unreachable!("handled before the runtime starts")
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// clap checks names, groups and defaults of every subcommand only when asked;
    /// flattened groups from several crates must not collide.
    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
