//! One room server: WebSocket chat for exactly one room, and the protocol's client.
//!
//! - [`protocol`]: the versioned JSON messages (the one definition).
//! - [`core`]: the sans-IO room state machine (membership, chat, typing, receipts,
//!   moderation, limits, timers), driven by [`actor`] — a single tokio task fed by
//!   bounded channels.
//! - `http`/`conn`: admission, the WebSocket endpoint and the lifecycle endpoints.
//! - [`media`]: the sans-IO SFU (WebRTC sessions on one UDP port, RTP forwarding).
//! - [`client`]: `RoomClient`, used by tests, `rendezvous join` and load generators.
//! - [`join`]: the terminal chat client behind `rendezvous join`.
//!
//! The room keeps everything in memory and writes nothing to disk.
#![forbid(unsafe_code)]

mod actor;
pub mod client;
mod config;
mod conn;
pub mod core;
mod error;
mod http;
pub mod join;
pub mod media;
pub mod media_client;
mod metrics;
pub mod protocol;
pub mod protocol_doc;
mod server;

pub use config::{parse_duration, Args};
pub use error::{Error, Result};
/// Resolves on SIGTERM or Ctrl-C: the shutdown future to pass to [`run`].
pub use rendezvous_service::shutdown_signal;
pub use server::{run, Server};
