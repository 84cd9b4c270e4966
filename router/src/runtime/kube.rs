//! The Kubernetes runtime: each room is a `Room` object, reconciled by the operator.
//!
//! Start creates the Room (named after the room id, labelled as the router's) and
//! returns at once; readiness arrives later. One watch on the router's Rooms feeds a
//! reflector store; the follower task turns what it sees into [`RoomEvent`]s (ready
//! with `endpoint`, ended), so the router never polls a room. Stop asks the room
//! server to close (`POST /close` with a moderator token, best effort, short timeout),
//! deletes the Room (the operator's finalizer closes the Pod) and waits a bounded time
//! for it to vanish. The Room objects are the truth: every Room the watch sees is
//! reported whole ([`RoomEvent::Seen`]), so each router replica's registry mirrors the
//! cluster, and router shutdown leaves them. A room's invites ride on its Room as the
//! annotation [`INVITES_ANNOTATION`] (ids, limits, who used them; never codes, which
//! only the router's secret yields), written only with a resourceVersion
//! precondition ([`KubeRuntime::write_invites`]) so replicas never lose each other's
//! changes.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::future::BoxFuture;
use futures::{FutureExt as _, StreamExt as _};
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt as _};
use kube::ResourceExt as _;
use rendezvous_crds::{Phase, Room};
use tokio::sync::mpsc;

use super::{RoomEvent, RoomRuntime, RoomSpec};
use crate::model::{Invite, InviteRecord, RoomState};
use crate::tokens::RoomTokens;

/// Annotation holding a Room's live invites (JSON list of [`InviteRecord`]).
pub const INVITES_ANNOTATION: &str = "rendezvous.dev/invites";

/// Label on every Room this router created; the watch selects on it.
pub const CREATED_BY: (&str, &str) = ("app.kubernetes.io/created-by", "rendezvous-router");

/// How long the room server gets to answer `POST /close`. Short: under a fake
/// kubelet (KWOK) or a dead Pod it never answers, and the operator's finalizer closes
/// the Pod anyway.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Rooms as `Room` objects.
pub struct KubeRuntime {
    api: Api<Room>,
    store: Store<Room>,
    tokens: Arc<RoomTokens>,
    stop_timeout: Duration,
    http: reqwest::Client,
}

/// The Room object the router creates for `spec`. The router checked `spec` against
/// the Room's limits already; a value that still does not fit the schema's `u32` is
/// refused here, never clamped.
pub fn room_object(spec: &RoomSpec) -> anyhow::Result<Room> {
    let secs = |d: Duration, what: &str| {
        u32::try_from(d.as_secs()).with_context(|| format!("{what} out of range"))
    };
    let mut room = Room::new(
        &spec.id,
        rendezvous_crds::RoomSpec {
            kind: spec.kind,
            title: spec.title.clone(),
            creator: spec.creator.clone(),
            creator_name: spec.creator_name.clone(),
            max_participants: spec.max_participants,
            idle_timeout: secs(spec.idle_timeout, "idleTimeout")?,
            max_duration: secs(spec.max_duration, "maxDuration")?,
        },
    );
    room.metadata = ObjectMeta {
        name: Some(spec.id.clone()),
        labels: Some([(CREATED_BY.0.to_owned(), CREATED_BY.1.to_owned())].into()),
        annotations: Some(
            [(
                INVITES_ANNOTATION.to_owned(),
                serde_json::to_string(&spec.invites).unwrap_or_else(|_| "[]".into()),
            )]
            .into(),
        ),
        ..ObjectMeta::default()
    };
    Ok(room)
}

/// The invites kept on a Room, with their codes derived again. A missing or
/// unreadable annotation means none (the creator can make new ones).
pub fn invites_of(r: &Room, tokens: &RoomTokens) -> Vec<Invite> {
    let Some(text) = r.annotations().get(INVITES_ANNOTATION) else {
        return Vec::new();
    };
    let records: Vec<InviteRecord> = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(room = %r.name_any(), error = %e, "unreadable invites annotation");
            return Vec::new();
        }
    };
    let id = r.name_any();
    records
        .into_iter()
        .map(|rec| {
            let code = tokens.invite_code(&id, &rec.id);
            Invite::from_record(rec, code)
        })
        .collect()
}

/// The registry entry for a Room found in the cluster; `None` once it has ended.
pub fn registry_room(r: &Room, tokens: &RoomTokens) -> Option<crate::registry::Room> {
    let status = r.status.clone().unwrap_or_default();
    let (state, endpoint) = match (status.phase, status.endpoint) {
        (Phase::Ready, Some(ep)) => (RoomState::Ready, Some(ep)),
        (Phase::Ended | Phase::Failed | Phase::Closing, _) => return None,
        _ => (RoomState::Starting, None),
    };
    if r.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let kind = r.spec.kind;
    Some(crate::registry::Room {
        id: r.name_any(),
        kind,
        title: r.spec.title.clone(),
        creator: r.spec.creator.clone(),
        creator_name: r.spec.creator_name.clone(),
        created_at: r
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(0, |t| t.0.as_second()),
        state,
        endpoint,
        max_participants: r.spec.max_participants,
        idle_timeout_secs: r.spec.idle_timeout.into(),
        max_duration_secs: r.spec.max_duration.into(),
        invites: invites_of(r, tokens),
        revision: revision(r),
        launching: false,
    })
}

/// A Room's `resourceVersion` as a number. The API server's versions are etcd
/// revisions, which only grow; they order two reads of one object, nothing more.
pub fn revision(r: &Room) -> Option<u64> {
    r.metadata.resource_version.as_deref()?.parse().ok()
}

/// The event a Room's current state calls for: the room whole while it lives,
/// closing while it is being deleted, ended once it has ended or failed.
pub fn event_for(room: &Room, tokens: &RoomTokens) -> RoomEvent {
    let id = room.name_any();
    if let Some(entry) = registry_room(room, tokens) {
        return RoomEvent::Seen(Box::new(entry));
    }
    match room.status.as_ref().map(|s| s.phase) {
        Some(phase @ (Phase::Ended | Phase::Failed)) => RoomEvent::Ended {
            id,
            reason: format!("room {}", phase.as_str().to_lowercase()),
        },
        _ => RoomEvent::Closing { id },
    }
}

impl KubeRuntime {
    /// Watch the router's Rooms in `namespace` and report changes on `events`.
    /// Returns once the store holds the initial list (bounded by `ready_timeout`).
    pub async fn start(
        client: kube::Client,
        namespace: &str,
        tokens: Arc<RoomTokens>,
        stop_timeout: Duration,
        events: mpsc::Sender<RoomEvent>,
    ) -> anyhow::Result<Self> {
        let api: Api<Room> = Api::namespaced(client, namespace);
        let (store, writer) = reflector::store();
        let cfg = watcher::Config::default().labels(&format!("{}={}", CREATED_BY.0, CREATED_BY.1));
        let stream = watcher(api.clone(), cfg).default_backoff().reflect(writer);
        tokio::spawn(follow(stream, events, tokens.clone()));
        tokio::time::timeout(
            stop_timeout.max(Duration::from_secs(10)),
            store.wait_until_ready(),
        )
        .await
        .context("the Room watch did not sync in time")?
        .context("the Room watch ended")?;
        Ok(Self {
            api,
            store,
            tokens,
            stop_timeout,
            http: rendezvous_service::http_client(CLOSE_TIMEOUT),
        })
    }

    /// The router's Rooms as last seen by the watch.
    pub fn rooms(&self) -> Vec<Arc<Room>> {
        self.store.state()
    }

    /// The live rooms among them, as registry entries.
    pub fn entries(&self) -> Vec<crate::registry::Room> {
        self.rooms().iter().filter_map(|r| self.entry(r)).collect()
    }

    /// The registry entry of a Room, `None` once it is closing or has ended.
    pub fn entry(&self, r: &Room) -> Option<crate::registry::Room> {
        registry_room(r, &self.tokens)
    }

    /// Room `id`: from the watch cache, or with `fresh` from the API server (after a
    /// write was refused as stale, the cache may still be behind).
    pub async fn fetch(&self, id: &str, fresh: bool) -> anyhow::Result<Option<Arc<Room>>> {
        if !fresh {
            if let Some(r) = self.cached(id) {
                return Ok(Some(r));
            }
        }
        Ok(self
            .api
            .get_opt(id)
            .await
            .with_context(|| format!("reading Room {id}"))?
            .map(Arc::new))
    }

    async fn create(&self, spec: RoomSpec) -> anyhow::Result<Option<String>> {
        self.api
            .create(&PostParams::default(), &room_object(&spec)?)
            .await
            .with_context(|| format!("creating Room {}", spec.id))?;
        Ok(None)
    }

    /// Write `invites` onto `room` if it is unchanged since it was read: the patch
    /// carries the resourceVersion it was computed from, and the API server refuses
    /// it (409) if another writer came first. `Ok(None)`: refused, read again and
    /// retry. A Room gone meanwhile is an error of its own kind for the caller.
    pub async fn write_invites(
        &self,
        room: &Room,
        invites: &[InviteRecord],
    ) -> anyhow::Result<Option<Room>> {
        let id = room.name_any();
        let patch = serde_json::json!({
            "metadata": {
                "resourceVersion": room.metadata.resource_version,
                "annotations": { INVITES_ANNOTATION: serde_json::to_string(invites)? },
            }
        });
        match self
            .api
            .patch(&id, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(written) => Ok(Some(written)),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
            Err(e) => Err(e).with_context(|| format!("saving the invites of Room {id}")),
        }
    }

    fn cached(&self, id: &str) -> Option<Arc<Room>> {
        self.store.state().into_iter().find(|r| r.name_any() == id)
    }

    async fn delete(&self, id: &str) -> anyhow::Result<()> {
        let endpoint = self
            .cached(id)
            .and_then(|r| r.status.as_ref()?.endpoint.clone());
        if let Some(endpoint) = endpoint {
            let asked = self
                .http
                .post(format!("http://{endpoint}/close"))
                .bearer_auth(self.tokens.closer(id)?)
                .send()
                .await;
            if let Err(e) = asked {
                tracing::info!(room = %id, error = %e, "room did not answer /close; the operator closes it");
            }
        }
        match self.api.delete(id, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("deleting Room {id}")),
        }
        let gone = async {
            while self.cached(id).is_some() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        if tokio::time::timeout(self.stop_timeout, gone).await.is_err() {
            tracing::warn!(room = %id, "Room still closing; the operator will finish it");
        }
        Ok(())
    }
}

/// Turn watch events into room events, in the order the watch saw them.
async fn follow(
    stream: impl futures::Stream<Item = Result<watcher::Event<Room>, watcher::Error>> + Send + 'static,
    events: mpsc::Sender<RoomEvent>,
    tokens: Arc<RoomTokens>,
) {
    let mut stream = std::pin::pin!(stream);
    while let Some(ev) = stream.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(error = %e, "Room watch error; retrying");
                continue;
            }
        };
        let out = match ev {
            watcher::Event::Apply(room) | watcher::Event::InitApply(room) => {
                event_for(&room, &tokens)
            }
            watcher::Event::Delete(room) => RoomEvent::Ended {
                id: room.name_any(),
                reason: "Room deleted".into(),
            },
            watcher::Event::Init | watcher::Event::InitDone => continue,
        };
        if events.send(out).await.is_err() {
            return;
        }
    }
}

impl RoomRuntime for KubeRuntime {
    fn start(&self, spec: RoomSpec) -> BoxFuture<'_, anyhow::Result<Option<String>>> {
        self.create(spec).boxed()
    }

    fn stop<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        self.delete(id).boxed()
    }

    /// Router shutdown leaves the Rooms: they are the truth, and the next router
    /// (or another replica) adopts them.
    fn stop_all(&self) -> BoxFuture<'_, ()> {
        async {}.boxed()
    }

    fn rooms_outlive_router(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rendezvous_crds::RoomStatus;

    fn mk_spec() -> RoomSpec {
        RoomSpec {
            id: "abc".into(),
            kind: rendezvous_crds::RoomKind::Video,
            title: "t".into(),
            creator: "ada".into(),
            creator_name: "Ada Lovelace".into(),
            max_participants: 50,
            idle_timeout: Duration::from_secs(1),
            max_duration: Duration::from_secs(3600),
            invites: vec![InviteRecord {
                id: "inv1".into(),
                created_at: 1,
                expires_at: None,
                max_uses: Some(3),
                uses: 1,
                users: vec!["bob".into()],
                revoked: false,
            }],
        }
    }

    #[test]
    fn room_object_is_labelled_and_carries_the_spec_unchanged() {
        let room = room_object(&mk_spec()).unwrap();
        assert_eq!(room.name_any(), "abc");
        assert_eq!(room.labels()[CREATED_BY.0], CREATED_BY.1);
        assert_eq!(room.spec.kind, rendezvous_crds::RoomKind::Video);
        assert_eq!(room.spec.max_participants, 50);
        assert_eq!(room.spec.idle_timeout, 1);
        assert_eq!(room.spec.max_duration, 3600);
        assert_eq!(room.spec.creator_name, "Ada Lovelace");
        let mut huge = mk_spec();
        huge.max_duration = Duration::from_secs(u64::from(u32::MAX) + 1);
        assert!(room_object(&huge).is_err(), "refused, not clamped");
    }

    #[test]
    fn invites_ride_on_the_room_without_codes_and_come_back_with_them() {
        let tokens = RoomTokens::generate(Duration::from_secs(60)).unwrap();
        let room = room_object(&mk_spec()).unwrap();
        let text = &room.annotations()[INVITES_ANNOTATION];
        assert!(!text.contains(&tokens.invite_code("abc", "inv1")));
        let invites = invites_of(&room, &tokens);
        assert_eq!(invites.len(), 1);
        assert_eq!(invites[0].code, tokens.invite_code("abc", "inv1"));
        assert_eq!((invites[0].max_uses, invites[0].uses), (Some(3), 1));
        // Another secret derives other codes: links do not survive a lost secret.
        let other = RoomTokens::generate(Duration::from_secs(60)).unwrap();
        assert_ne!(invites_of(&room, &other)[0].code, invites[0].code);
        // Garbage in the annotation means no invites, not a crash.
        let mut bad = room.clone();
        bad.annotations_mut()
            .insert(INVITES_ANNOTATION.into(), "{nope".into());
        assert!(invites_of(&bad, &tokens).is_empty());
    }

    fn with_status(phase: Phase, endpoint: Option<&str>) -> Room {
        let mut room = room_object(&mk_spec()).unwrap();
        room.status = Some(RoomStatus {
            phase,
            endpoint: endpoint.map(Into::into),
            ..RoomStatus::default()
        });
        room
    }

    #[test]
    fn a_live_room_is_seen_whole_and_an_ended_one_ends() {
        let tokens = RoomTokens::generate(Duration::from_secs(60)).unwrap();
        let mut room = with_status(Phase::Ready, Some("10.0.0.1:8090"));
        room.metadata.resource_version = Some("42".into());
        let RoomEvent::Seen(entry) = event_for(&room, &tokens) else {
            panic!("a ready Room is seen");
        };
        assert_eq!(entry.state, RoomState::Ready);
        assert_eq!(entry.endpoint.as_deref(), Some("10.0.0.1:8090"));
        assert_eq!(entry.revision, Some(42));
        assert_eq!(entry.invites[0].users, ["bob"]);
        assert_eq!(
            entry.creator_name, "Ada Lovelace",
            "read back from the Room"
        );
        let starting = event_for(&with_status(Phase::Starting, None), &tokens);
        assert!(matches!(starting, RoomEvent::Seen(e) if e.state == RoomState::Starting));
        assert!(matches!(
            event_for(&with_status(Phase::Failed, None), &tokens),
            RoomEvent::Ended { .. }
        ));
        let mut deleting = with_status(Phase::Ready, Some("10.0.0.1:8090"));
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        assert!(matches!(
            event_for(&deleting, &tokens),
            RoomEvent::Closing { id } if id == "abc"
        ));
    }

    #[test]
    fn a_room_with_no_invites_is_adopted_without_a_link() {
        let tokens = RoomTokens::generate(Duration::from_secs(60)).unwrap();
        let mut spec = mk_spec();
        spec.invites.clear();
        let mut room = room_object(&spec).unwrap();
        room.status = Some(RoomStatus {
            phase: Phase::Ready,
            endpoint: Some("10.0.0.1:8090".into()),
            ..RoomStatus::default()
        });
        let entry = registry_room(&room, &tokens).expect("adopted");
        assert!(entry.invites.is_empty());
        let view = crate::routes::room_view("http://x", &entry, true);
        assert_eq!(view.invite_url, None);
        assert_eq!(view.invites.map(|v| v.len()), Some(0));
    }

    #[test]
    fn a_room_written_without_a_creator_name_shows_an_empty_one() {
        let tokens = RoomTokens::generate(Duration::from_secs(60)).unwrap();
        let room: Room = serde_json::from_value(serde_json::json!({
            "apiVersion": "rendezvous.dev/v1alpha1", "kind": "Room",
            "metadata": {"name": "byhand", "labels": {CREATED_BY.0: CREATED_BY.1}},
            "spec": {"kind": "chat", "title": "Tea", "creator": "ada"},
            "status": {"phase": "Ready", "endpoint": "10.0.0.1:8090"}
        }))
        .unwrap();
        let entry = registry_room(&room, &tokens).expect("adopted");
        let view = crate::routes::room_view("http://x", &entry, true);
        assert_eq!(view.creator_name, "");
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["creatorName"], "", "present, empty: {json}");
    }
}
