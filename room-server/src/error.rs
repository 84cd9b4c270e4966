//! Why a room server could not start or stopped abnormally.

use std::net::SocketAddr;

/// The room server's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no verifying keys for room tokens: pass --token-jwks or --token-jwks-url")]
    NoKeys,
    #[error("invalid --token-jwks: {0}")]
    Jwks(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("a room task failed: {0}")]
    Task(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
