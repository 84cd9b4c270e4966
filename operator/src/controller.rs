//! The reconciler: Room → Pod, status, graceful close, lifetime.
//!
//! Level-triggered: each reconcile reads the Room and its Pod, computes what should be
//! ([`desired_pod`], [`status_from`]) and applies the difference with server-side apply
//! under one field manager. Both come from the controller's watch caches; the Pod is
//! read from the API only when the cache could mislead (see [`room_pod`]). Deletion
//! goes through the `rendezvous.dev/close` finalizer: the Pod is deleted gracefully
//! (SIGTERM: the room server sends everyone `room_closed` and exits), the operator
//! waits up to `close_grace` for it, then releases the Room; garbage collection
//! removes whatever is left.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt as _};
use kube::{Client, ResourceExt as _};
use rendezvous_crds::{Phase, Room, RoomStatus, FINALIZER, ROOM_LABEL};
use serde_json::json;

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::occupancy::{self, Occupancy};
use crate::pod::{desired_pod, pod_name, MediaPorts, PodConfig};
use crate::ports::{room_key, MediaPortPool};
use crate::status::status_from;

/// The one field manager of every write the operator makes.
pub const MANAGER: &str = "rendezvous-operator";

/// Reconcile settings beyond the Pod template.
#[derive(Debug, Clone)]
pub struct Settings {
    pub pod: PodConfig,
    /// Pod replacements (deleted, failed) before the Room is marked Failed.
    pub max_restarts: u32,
    /// How long the finalizer waits for the room server to go.
    pub close_grace: Duration,
    /// Re-check interval for a healthy Room (lifetime, drift).
    pub resync: Duration,
    /// How often Ready rooms are asked for their participant count.
    pub occupancy_interval: Duration,
    /// Rooms reconciled at once.
    pub concurrency: u16,
}

/// Shared state of the reconciler (one per leadership term: the Pod cache is the term's).
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub metrics: Metrics,
    /// Room Pods (label `rendezvous.dev/room`), fed by the controller's watch of owned Pods.
    pub pods: Store<Pod>,
    /// Set once `pods` has had its first list; see [`Context::pods_ready`].
    pub pods_listed: tokio::sync::OnceCell<()>,
    /// Participant counts the room servers last reported.
    pub occupancy: Arc<Occupancy>,
    /// Host ports for room media (`--media-host-ports`); `None`: the pod network.
    pub media_ports: Option<MediaPortPool>,
}

impl Context {
    /// Wait until the Pod cache has had its first list (once per leadership term).
    async fn pods_ready(&self) {
        wait_listed(&self.pods_listed, &self.pods).await;
    }

    /// The media port a new Pod of `room` (in `ns`) gets.
    fn media_port(&self, room: &Room, ns: &str) -> u16 {
        match (&self.media_ports, self.settings.pod.media) {
            (Some(pool), _) => pool.take(
                &room_key(ns, &room.name_any()),
                self.pods.state().iter().map(|p| &**p),
            ),
            (None, MediaPorts::PodNetwork(port)) => port,
            // Not made: `run_controller` gives host ports a pool.
            (None, MediaPorts::HostPorts { first, .. }) => first,
        }
    }
}

/// Wait until `store` has had its first list, however many tasks wait at once.
///
/// Only one task waits on the store itself: `Store::wait_until_ready` (kube-runtime
/// 5) polls one shared oneshot receiver, which keeps the waker of its last poller
/// only, so of several reconciles waiting at once all but one slept forever; at
/// start-up those Rooms never got a Pod. The others wait on `cell`. An error means
/// the watch is gone (shutting down); callers stay correct on an empty cache.
async fn wait_listed(cell: &tokio::sync::OnceCell<()>, store: &Store<Pod>) {
    cell.get_or_init(|| async {
        let _ = store.wait_until_ready().await;
    })
    .await;
}

/// Entry point of one reconcile: the finalizer decides between apply and cleanup.
///
/// Like kube's `finalizer` helper, with one difference: a Room without the finalizer
/// gets it and is applied in the same reconcile, from the object the API server
/// returned. The helper stops after adding it and waits for the watch event, so a new
/// Room queues a second time behind every other new Room before its Pod is made.
#[tracing::instrument(skip(room, ctx), fields(room = %room.name_any()))]
pub async fn reconcile(room: Arc<Room>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.count_and_measure();
    let ns = room.namespace().ok_or(Error::MissingField("namespace"))?;
    let rooms: Api<Room> = Api::namespaced(ctx.client.clone(), &ns);
    let ours = room.finalizers().iter().position(|f| f == FINALIZER);
    match (room.metadata.deletion_timestamp.is_some(), ours) {
        (false, Some(_)) => apply(&room, &ctx).await,
        (false, None) => {
            let room = add_finalizer(&rooms, &room).await?;
            apply(&room, &ctx).await
        }
        (true, Some(i)) => {
            // Cleanup must succeed before the finalizer goes; an error keeps it.
            let action = cleanup(&room, &ctx).await?;
            remove_finalizer(&rooms, &room, i).await?;
            Ok(action)
        }
        (true, None) => Ok(Action::await_change()),
    }
}

fn json_patch(ops: serde_json::Value) -> Patch<()> {
    Patch::Json(serde_json::from_value(ops).expect("a well-formed JSON patch"))
}

/// A 409 or 422 from a JSON patch's `test`: our view was old; reconcile again.
fn patch_result<T>(res: kube::Result<T>) -> Result<T> {
    match res {
        Ok(v) => Ok(v),
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 422 => Err(Error::Stale),
        Err(e) => Err(e.into()),
    }
}

/// Add our finalizer; the Room as it is now. The `test` makes this fail rather than
/// duplicate the entry or drop someone else's if the list changed meanwhile.
async fn add_finalizer(rooms: &Api<Room>, room: &Room) -> Result<Room> {
    let ops = if room.finalizers().is_empty() {
        json!([
            { "op": "test", "path": "/metadata/finalizers", "value": null },
            { "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] },
        ])
    } else {
        json!([
            { "op": "test", "path": "/metadata/finalizers", "value": room.finalizers() },
            { "op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER },
        ])
    };
    patch_result(
        rooms
            .patch(&room.name_any(), &PatchParams::default(), &json_patch(ops))
            .await,
    )
}

/// Remove our finalizer, which sits at index `i` (checked by the `test`).
async fn remove_finalizer(rooms: &Api<Room>, room: &Room, i: usize) -> Result<()> {
    let path = format!("/metadata/finalizers/{i}");
    let ops = json!([
        { "op": "test", "path": path, "value": FINALIZER },
        { "op": "remove", "path": path },
    ]);
    match rooms
        .patch(&room.name_any(), &PatchParams::default(), &json_patch(ops))
        .await
    {
        // Gone already: nothing held it.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        res => patch_result(res).map(drop),
    }
}

/// Errors back off by requeueing; the controller's own watch retries are separate.
pub fn error_policy(room: Arc<Room>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failure(error);
    if error.is_stale() {
        // Not a failure of the cluster: our cache is one write behind. Try again soon.
        tracing::debug!(room = %room.name_any(), "stale read; reconciling again");
        return Action::requeue(Duration::from_millis(200));
    }
    tracing::warn!(room = %room.name_any(), %error, "reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

fn seconds_left(room: &Room, now: Timestamp) -> Option<i64> {
    let created = room.metadata.creation_timestamp.as_ref()?.0;
    Some(created.as_second() + i64::from(room.spec.max_duration) - now.as_second())
}

async fn apply(room: &Room, ctx: &Context) -> Result<Action> {
    let ns = room.namespace().ok_or(Error::MissingField("namespace"))?;
    let rooms: Api<Room> = Api::namespaced(ctx.client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    // Maximum lifetime ends the Room object itself (the finalizer then closes it).
    if seconds_left(room, Timestamp::now()).is_some_and(|s| s <= 0) {
        tracing::info!("maximum lifetime reached; deleting the Room");
        rooms
            .delete(&room.name_any(), &DeleteParams::default())
            .await?;
        return Ok(Action::await_change());
    }
    let old = room.status.clone().unwrap_or_default();
    let mut pod = room_pod(room, &ns, &pods, ctx).await?;
    let mut restarts = old.restarts;
    let phase_now = pod.as_ref().and_then(|p| p.status.as_ref()?.phase.clone());
    match phase_now.as_deref() {
        // The room ended itself (idle timeout, lifetime, closed): end the Room too.
        Some("Succeeded") => {
            write_status(
                &rooms,
                room,
                status_from(room, pod.as_ref(), ctx.settings.pod.port),
            )
            .await?;
            tracing::info!("room server ended; deleting the Room");
            rooms
                .delete(&room.name_any(), &DeleteParams::default())
                .await?;
            return Ok(Action::await_change());
        }
        Some("Failed") if restarts < ctx.settings.max_restarts => {
            tracing::warn!("room server Pod failed; replacing it");
            delete_exactly(&pods, pod.as_ref()).await?;
            restarts += 1;
            pod = None;
        }
        _ => {}
    }
    // A Pod gone since the last status, or one whose uid is not the one the
    // status names: the latter is a replacement we made whose counting status
    // write was refused (a stale Room), so it is counted now, once.
    let replaced = match (&pod, old.pod_uid.as_deref()) {
        (Some(p), Some(uid)) => p.metadata.uid.as_deref() != Some(uid),
        _ => false,
    };
    let gone = pod.is_none() && old.pod_uid.is_some();
    let lost_pod = (replaced || gone) && restarts == old.restarts;
    if lost_pod {
        restarts += 1;
    }
    let give_up = pod.is_none() && restarts > ctx.settings.max_restarts;
    if pod.is_none() && !give_up {
        let want = desired_pod(room, &ctx.settings.pod, ctx.media_port(room, &ns));
        let params = PatchParams::apply(MANAGER).force();
        pod = Some(
            pods.patch(&pod_name(room), &params, &Patch::Apply(&want))
                .await?,
        );
    }
    let mut status = status_from(room, pod.as_ref(), ctx.settings.pod.port);
    status.restarts = restarts;
    if status.phase == Phase::Ready {
        if let Some(n) = ctx.occupancy.get(room) {
            status.participants = n;
        }
    }
    if give_up {
        status.phase = Phase::Failed;
        status.conditions[0].reason = "TooManyRestarts".into();
        status.conditions[0].message = format!(
            "the room server Pod was replaced {} times",
            ctx.settings.max_restarts
        );
    }
    write_status(&rooms, room, status).await?;
    let left = seconds_left(room, Timestamp::now()).unwrap_or(i64::MAX);
    let wait = ctx
        .settings
        .resync
        .min(Duration::from_secs(left.max(1) as u64));
    Ok(Action::requeue(wait))
}

/// The Room's Pod: from the Pod cache when that cannot mislead, else from the API.
///
/// The cache lags behind the API server, our own writes included: right after we
/// create a Pod and record its uid in `status.podUid`, the cache may not hold it yet.
/// Taking that for "no Pod" would count a restart that never happened (`lost_pod`), and
/// a cached older Pod of the same name could stand in for its replacement. So the
/// cache is believed only when it agrees with the status this reconcile starts from:
/// - it holds the Pod whose uid `status.podUid` names (its state may be a little old;
///   the watch event that brings the news triggers the next reconcile);
/// - it holds no Pod and the status names none: the worst case is re-applying the Pod
///   to its fixed name, which server-side apply makes a no-op; no restart is counted
///   without a `podUid`;
/// - it holds a Pod and the status names none: a Pod that did exist; a stale Room (one
///   write behind) is caught by [`write_status`]'s resourceVersion and retried.
///
/// Otherwise (no cached Pod though the status names one, or a different uid) a GET
/// decides, so a restart is only ever counted on the API server's word. In steady
/// state, and for every event but the first after our own write, the cache answers.
async fn room_pod(room: &Room, ns: &str, pods: &Api<Pod>, ctx: &Context) -> Result<Option<Pod>> {
    let name = pod_name(room);
    // Before the first list the cache is empty, which would send every Room with a Pod
    // down the GET path: wait for it.
    ctx.pods_ready().await;
    let cached = ctx.pods.get(&ObjectRef::new(&name).within(ns));
    let named = room.status.as_ref().and_then(|s| s.pod_uid.as_deref());
    let agrees = match (&cached, named) {
        (Some(p), Some(uid)) => p.metadata.uid.as_deref() == Some(uid),
        (None, Some(_)) => false,
        (_, None) => true,
    };
    if agrees {
        return Ok(cached.map(|p| Pod::clone(&p)));
    }
    Ok(pods.get_opt(&name).await?)
}

/// Delete exactly this Pod: if its name now belongs to a replacement (our view was
/// old), the uid precondition fails with 409 and the reconcile is retried.
async fn delete_exactly(pods: &Api<Pod>, pod: Option<&Pod>) -> Result<()> {
    let Some(pod) = pod else { return Ok(()) };
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match pods.delete(&pod.name_any(), &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Err(Error::Stale),
        Err(e) => Err(e.into()),
    }
}

/// Write the status if it changed (server-side apply on the status subresource).
///
/// The status is computed from `room`, which may come from a cache that lags behind
/// our own last write (the restart count is carried over from it). The patch therefore
/// names the `resourceVersion` it was computed from: a stale write is refused with
/// 409 and surfaces as [`Error::Stale`], and the next reconcile sees the newer object.
async fn write_status(rooms: &Api<Room>, room: &Room, status: RoomStatus) -> Result<()> {
    if room.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let patch = json!({
        "apiVersion": "rendezvous.dev/v1alpha1",
        "kind": "Room",
        "metadata": { "resourceVersion": room.resource_version() },
        "status": status,
    });
    let params = PatchParams::apply(MANAGER).force();
    match rooms
        .patch_status(&room.name_any(), &params, &Patch::Apply(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Err(Error::Stale),
        Err(e) => Err(e.into()),
    }
}

async fn cleanup(room: &Room, ctx: &Context) -> Result<Action> {
    let ns = room.namespace().ok_or(Error::MissingField("namespace"))?;
    let rooms: Api<Room> = Api::namespaced(ctx.client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pod = pods.get_opt(&pod_name(room)).await?;
    write_status(
        &rooms,
        room,
        status_from(room, pod.as_ref(), ctx.settings.pod.port),
    )
    .await?;
    if pod.is_some() {
        // SIGTERM is how we ask the room server to close: it sends `room_closed` to
        // everyone and exits. Its grace period bounds how long that may take.
        let grace = ctx.settings.close_grace.as_secs() as u32;
        let dp = DeleteParams {
            grace_period_seconds: Some(grace),
            ..DeleteParams::background()
        };
        match pods.delete(&pod_name(room), &dp).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        let gone = async {
            while pods.get_opt(&pod_name(room)).await.ok().flatten().is_some() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        if tokio::time::timeout(ctx.settings.close_grace, gone)
            .await
            .is_err()
        {
            tracing::warn!("room server did not go in time; leaving it to garbage collection");
        }
    }
    if let Some(pool) = &ctx.media_ports {
        pool.release(&room_key(&ns, &room.name_any()));
    }
    tracing::info!("room closed");
    Ok(Action::await_change())
}

/// Run the controller until `stop` turns true. `namespace`: `None` watches all.
///
/// The occupancy poller runs inside this future, not as a detached task: when the
/// future is dropped (leadership lost) the poller stops with the controller, and if
/// either ends while `stop` is false that is [`Error::TaskEnded`].
pub async fn run_controller(
    client: Client,
    settings: Settings,
    metrics: Metrics,
    namespace: Option<String>,
    stop: tokio::sync::watch::Receiver<bool>,
    store_out: tokio::sync::watch::Sender<Option<Store<Room>>>,
) -> Result<()> {
    let (rooms, pods): (Api<Room>, Api<Pod>) = match &namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    // One watch of the room Pods both triggers reconciles of their Rooms and fills the
    // cache the reconciler reads them from (`owns` would watch metadata only, and a
    // second watch for the cache would double the Pod events the API server sends).
    let (pod_cache, pod_writer) = reflector::store();
    let pod_events = watcher(
        pods,
        watcher::Config::default().labels(ROOM_LABEL).any_semantic(),
    )
    .default_backoff()
    .reflect(pod_writer)
    .touched_objects();
    let config = kube::runtime::controller::Config::default().concurrency(settings.concurrency);
    let occupancy_interval = settings.occupancy_interval;
    let media_ports = match settings.pod.media {
        MediaPorts::HostPorts { first, last } => Some(MediaPortPool::new(first, last)),
        MediaPorts::PodNetwork(_) => None,
    };
    let ctx = Arc::new(Context {
        client,
        settings,
        metrics,
        pods: pod_cache,
        pods_listed: tokio::sync::OnceCell::new(),
        occupancy: Arc::default(),
        media_ports,
    });
    // Rooms whose participant count changed are reconciled again, so the count lands
    // in status through the one writer of status. 256: a round's changes of a busy
    // operator; when full the poller waits, which only slows the next round.
    let (changed_tx, changed_rx) = tokio::sync::mpsc::channel(256);
    let changed = futures::stream::unfold(changed_rx, |mut rx| async move {
        rx.recv().await.map(|room| (room, rx))
    });
    let mut ctl_stop = stop.clone();
    let controller = Controller::new(rooms, watcher::Config::default().any_semantic())
        .owns_stream(pod_events)
        .reconcile_on(changed)
        .with_config(config)
        .graceful_shutdown_on(async move {
            let _ = ctl_stop.wait_for(|s| *s).await;
        });
    let _ = store_out.send(Some(controller.store()));
    let poller = occupancy::poll(
        controller.store(),
        ctx.occupancy.clone(),
        occupancy_interval,
        changed_tx,
    );
    let running = controller
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()));
    let ended = tokio::select! {
        () = running => "the controller",
        () = poller => "the occupancy poller",
    };
    if *stop.borrow() {
        return Ok(());
    }
    tracing::error!("{ended} ended unexpectedly");
    Err(Error::TaskEnded(ended))
}

/// Rooms by phase, counted from the controller's cache (for `/metrics`).
pub fn count_phases(store: &Store<Room>, metrics: &Metrics) {
    let mut counts = [0i64; Phase::ALL.len()];
    for room in store.state() {
        let phase = room.status.as_ref().map(|s| s.phase).unwrap_or_default();
        if let Some(i) = Phase::ALL.iter().position(|p| *p == phase) {
            counts[i] += 1;
        }
    }
    for (p, n) in Phase::ALL.iter().zip(counts) {
        metrics.rooms.with_label_values(&[p.as_str()]).set(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_reconcile_waiting_for_the_pod_cache_wakes_when_it_is_listed() {
        let (store, mut writer) = reflector::store::<Pod>();
        let cell = Arc::new(tokio::sync::OnceCell::new());
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let (cell, store) = (cell.clone(), store.clone());
                tokio::spawn(async move { wait_listed(&cell, &store).await })
            })
            .collect();
        // Let every waiter park before the list arrives.
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        for (i, w) in waiters.into_iter().enumerate() {
            tokio::time::timeout(Duration::from_secs(2), w)
                .await
                .unwrap_or_else(|_| panic!("waiter {i} never woke"))
                .expect("waiter task");
        }
        // Later callers pass at once.
        tokio::time::timeout(Duration::from_millis(100), wait_listed(&cell, &store))
            .await
            .expect("ready stays ready");
    }
}
