//! The Kubernetes runtime: each room is a `Room` object, reconciled by the operator.
//!
//! Start creates the Room (named after the room id, labelled as the router's) and
//! returns at once; readiness arrives later. One watch on the router's Rooms feeds a
//! reflector store; the follower task turns what it sees into [`RoomEvent`]s (ready
//! with `endpoint`, ended), so the router never polls a room. Stop asks the room
//! server to close (`POST /close` with a moderator token, best effort, short timeout),
//! deletes the Room (the operator's finalizer closes the Pod) and waits a bounded time
//! for it to vanish. The Room objects are the truth: a restarted router finds its rooms
//! in the store ([`KubeRuntime::rooms`]) and adopts them; router shutdown leaves them.
//! A room's live invites ride on its Room as the annotation [`INVITES_ANNOTATION`]
//! (ids, limits and use counts; never codes, which only the router's secret yields).

use std::collections::HashMap;
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

/// Newest invite snapshot written, by room id.
type Written = Arc<tokio::sync::Mutex<HashMap<String, u64>>>;

/// Rooms as `Room` objects.
pub struct KubeRuntime {
    api: Api<Room>,
    store: Store<Room>,
    tokens: Arc<RoomTokens>,
    stop_timeout: Duration,
    http: reqwest::Client,
    /// Newest invite snapshot written per room; held across the write so snapshots
    /// land in order. Entries go when their Rooms do (the watch follower drops them).
    invites_written: Written,
}

/// The Room object the router creates for `spec`, clamped to the CRD's bounds.
pub fn room_object(spec: &RoomSpec) -> Room {
    let kind = spec.kind;
    let secs = |d: Duration, lo: u64, hi: u64| d.as_secs().clamp(lo, hi) as u32;
    let mut room = Room::new(
        &spec.id,
        rendezvous_crds::RoomSpec {
            kind,
            title: spec.title.clone(),
            creator: spec.creator.clone(),
            max_participants: spec.max_participants.clamp(1, 1000),
            idle_timeout: secs(spec.idle_timeout, 10, 86_400),
            max_duration: secs(spec.max_duration, 60, 604_800),
        },
    );
    room.metadata = ObjectMeta {
        name: Some(spec.id.clone()),
        labels: Some([(CREATED_BY.0.to_owned(), CREATED_BY.1.to_owned())].into()),
        annotations: Some(
            [(
                INVITES_ANNOTATION.to_owned(),
                serde_json::to_string(&spec.invites).expect("invites serialize"),
            )]
            .into(),
        ),
        ..ObjectMeta::default()
    };
    room
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
    })
}

/// The event a Room's current state calls for, if any, given what was last reported.
pub fn event_for(room: &Room, last: Option<&Option<String>>) -> Option<RoomEvent> {
    let id = room.name_any();
    let status = room.status.as_ref()?;
    match (status.phase, &status.endpoint) {
        (Phase::Ready, Some(ep)) if last != Some(&Some(ep.clone())) => Some(RoomEvent::Ready {
            id,
            endpoint: ep.clone(),
        }),
        (Phase::Ended | Phase::Failed, _) => Some(RoomEvent::Ended {
            id,
            reason: format!("room {}", status.phase.as_str().to_lowercase()),
        }),
        _ => None,
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
        let invites_written = Written::default();
        tokio::spawn(follow(stream, events, invites_written.clone()));
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
            http: reqwest::Client::builder()
                .timeout(CLOSE_TIMEOUT)
                .connect_timeout(CLOSE_TIMEOUT)
                .build()?,
            invites_written,
        })
    }

    /// The router's Rooms as last seen by the watch.
    pub fn rooms(&self) -> Vec<Arc<Room>> {
        self.store.state()
    }

    async fn create(&self, spec: RoomSpec) -> anyhow::Result<Option<String>> {
        self.api
            .create(&PostParams::default(), &room_object(&spec))
            .await
            .with_context(|| format!("creating Room {}", spec.id))?;
        Ok(None)
    }

    async fn write_invites(
        &self,
        id: &str,
        rev: u64,
        invites: Vec<InviteRecord>,
    ) -> anyhow::Result<()> {
        let mut written = self.invites_written.lock().await;
        if written.get(id).is_some_and(|&w| w >= rev) {
            return Ok(()); // a newer snapshot already landed
        }
        let patch = serde_json::json!({
            "metadata": { "annotations": { INVITES_ANNOTATION: serde_json::to_string(&invites)? } }
        });
        match self
            .api
            .patch(id, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            // The Room is gone (closed meanwhile): nothing left to keep.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e).with_context(|| format!("saving the invites of Room {id}")),
        }
        written.insert(id.to_owned(), rev);
        Ok(())
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

/// Turn watch events into room events. Remembers the endpoint reported per room
/// (bounded by the number of live Rooms: entries go when Rooms go).
async fn follow(
    stream: impl futures::Stream<Item = Result<watcher::Event<Room>, watcher::Error>> + Send + 'static,
    events: mpsc::Sender<RoomEvent>,
    invites_written: Written,
) {
    let mut reported: HashMap<String, Option<String>> = HashMap::new();
    let mut stream = std::pin::pin!(stream);
    while let Some(ev) = stream.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(error = %e, "Room watch error; retrying");
                continue;
            }
        };
        let mut out = Vec::new();
        match ev {
            watcher::Event::Apply(room) | watcher::Event::InitApply(room) => {
                let id = room.name_any();
                if let Some(e) = event_for(&room, reported.get(&id)) {
                    if let RoomEvent::Ready { endpoint, .. } = &e {
                        reported.insert(id, Some(endpoint.clone()));
                    } else {
                        reported.remove(&id);
                    }
                    out.push(e);
                } else {
                    reported.entry(id).or_insert(None);
                }
            }
            watcher::Event::Delete(room) => {
                let id = room.name_any();
                reported.remove(&id);
                invites_written.lock().await.remove(&id);
                out.push(RoomEvent::Ended {
                    id,
                    reason: "Room deleted".into(),
                });
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
        for e in out {
            if events.send(e).await.is_err() {
                return;
            }
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

    fn save_invites<'a>(
        &'a self,
        id: &'a str,
        rev: u64,
        invites: Vec<InviteRecord>,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        self.write_invites(id, rev, invites).boxed()
    }

    /// Router shutdown leaves the Rooms: they are the truth, and the next router
    /// (or another replica) adopts them.
    fn stop_all(&self) -> BoxFuture<'_, ()> {
        async {}.boxed()
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
            max_participants: 5000,
            idle_timeout: Duration::from_secs(1),
            max_duration: Duration::from_secs(3600),
            invites: vec![InviteRecord {
                id: "inv1".into(),
                created_at: 1,
                expires_at: None,
                max_uses: Some(3),
                uses: 1,
            }],
        }
    }

    #[test]
    fn room_object_is_labelled_and_clamped() {
        let room = room_object(&mk_spec());
        assert_eq!(room.name_any(), "abc");
        assert_eq!(room.labels()[CREATED_BY.0], CREATED_BY.1);
        assert_eq!(room.spec.kind, rendezvous_crds::RoomKind::Video);
        assert_eq!(room.spec.max_participants, 1000);
        assert_eq!(room.spec.idle_timeout, 10);
        assert_eq!(room.spec.max_duration, 3600);
    }

    #[test]
    fn invites_ride_on_the_room_without_codes_and_come_back_with_them() {
        let tokens = RoomTokens::generate(Duration::from_secs(60)).unwrap();
        let room = room_object(&mk_spec());
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
        let mut room = room_object(&mk_spec());
        room.status = Some(RoomStatus {
            phase,
            endpoint: endpoint.map(Into::into),
            ..RoomStatus::default()
        });
        room
    }

    #[test]
    fn ready_is_reported_once_per_endpoint() {
        let room = with_status(Phase::Ready, Some("10.0.0.1:8090"));
        let ready = RoomEvent::Ready {
            id: "abc".into(),
            endpoint: "10.0.0.1:8090".into(),
        };
        assert_eq!(event_for(&room, None), Some(ready));
        assert_eq!(event_for(&room, Some(&Some("10.0.0.1:8090".into()))), None);
    }

    #[test]
    fn starting_says_nothing_and_ended_ends() {
        assert_eq!(event_for(&with_status(Phase::Starting, None), None), None);
        assert!(matches!(
            event_for(&with_status(Phase::Failed, None), None),
            Some(RoomEvent::Ended { .. })
        ));
    }
}
