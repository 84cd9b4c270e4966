//! `RoomRuntime`: how the router starts and stops room servers.
//!
//! Two implementations share this shape: **local** (a `rendezvous room` child process
//! per room, here) and **Kubernetes** (a `Room` object per room, reconciled by the
//! operator, in [`kube`]). A runtime reports what happens to rooms after `start`
//! returns — ready, ended — as [`RoomEvent`]s on the channel it was built with, so
//! the router never polls rooms.

pub mod kube;
pub mod local;

use std::time::Duration;

use futures::future::BoxFuture;

use crate::model::{InviteRecord, RoomKind};

/// Everything a room needs to start.
#[derive(Debug, Clone)]
pub struct RoomSpec {
    pub id: String,
    pub kind: RoomKind,
    pub title: String,
    pub creator: String,
    pub max_participants: u32,
    pub idle_timeout: Duration,
    pub max_duration: Duration,
    /// The room's invites at creation, for runtimes that keep them (see
    /// [`RoomRuntime::save_invites`]).
    pub invites: Vec<InviteRecord>,
}

/// A change in a room's life that the runtime noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// The room server accepts participants at `endpoint` (`host:port`).
    Ready { id: String, endpoint: String },
    /// The room server is gone, for `reason`.
    Ended { id: String, reason: String },
}

/// Starts and stops room servers.
pub trait RoomRuntime: Send + Sync + 'static {
    /// Start a room. Resolves to `Some(endpoint)` when the room is already ready, or
    /// `None` when readiness will arrive later as [`RoomEvent::Ready`].
    fn start(&self, spec: RoomSpec) -> BoxFuture<'_, anyhow::Result<Option<String>>>;

    /// End a room: everyone inside is told, then the server goes away. Resolves when
    /// it is gone (or a bounded wait has passed and it was killed).
    fn stop<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<()>>;

    /// End every room (router shutdown).
    fn stop_all(&self) -> BoxFuture<'_, ()>;

    /// Keep room `id`'s live invites where a restarted router finds them. `rev` orders
    /// snapshots: one older than a snapshot already kept is ignored, so concurrent
    /// changes cannot land out of order. Default: nothing to keep (local rooms do not
    /// outlive their router).
    fn save_invites<'a>(
        &'a self,
        id: &'a str,
        rev: u64,
        invites: Vec<InviteRecord>,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        let _ = (id, rev, invites);
        Box::pin(async { Ok(()) })
    }
}
