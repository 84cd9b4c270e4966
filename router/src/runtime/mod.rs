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
    /// The creator's display name; Kubernetes keeps it on the Room object.
    pub creator_name: String,
    pub max_participants: u32,
    pub idle_timeout: Duration,
    pub max_duration: Duration,
    /// The room's invites at creation, for runtimes that keep them (Kubernetes keeps
    /// them on the Room object).
    pub invites: Vec<InviteRecord>,
}

/// A change in a room's life that the runtime noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// The room server is gone, for `reason`.
    Ended { id: String, reason: String },
    /// The room as the cluster holds it now (Kubernetes): the registry takes it in
    /// whole, whichever replica created it.
    Seen(Box<crate::registry::Room>),
    /// The room is being closed (by any replica): its invites admit nobody.
    Closing { id: String },
}

/// Starts and stops room servers.
pub trait RoomRuntime: Send + Sync + 'static {
    /// Start a room. Resolves to `Some(endpoint)` when the room is already ready, or
    /// `None` when readiness will arrive later, in a [`RoomEvent::Seen`].
    fn start(&self, spec: RoomSpec) -> BoxFuture<'_, anyhow::Result<Option<String>>>;

    /// End a room: everyone inside is told, then the server goes away. Resolves when
    /// it is gone (or a bounded wait has passed and it was killed).
    fn stop<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<()>>;

    /// End every room (router shutdown).
    fn stop_all(&self) -> BoxFuture<'_, ()>;

    /// Whether rooms go on when this router stops (Kubernetes: they are Pods that
    /// any replica serves). Decides how shutdown ends proxied sockets: 1012 "reconnect"
    /// when the room lives on, the room's own goodbye when it closes with the router.
    fn rooms_outlive_router(&self) -> bool {
        false
    }
}
