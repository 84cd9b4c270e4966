//! How many people are in each room: the one part of a Room's status that only its
//! room server knows.
//!
//! A poller asks each `Ready` room's server (`GET /status` on its endpoint) every
//! `--occupancy-interval`, a bounded number at a time with a short timeout, and keeps
//! the counts in memory. When a count changes it asks the controller to reconcile that
//! Room, which writes `status.participants` along with the rest of the status, so the
//! controller stays the one writer of status. A room that does not answer keeps its
//! last count; counts of Rooms that are gone are dropped.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt as _;
use rendezvous_crds::{Phase, Room};
use tokio::sync::mpsc;

/// Rooms asked at once.
const CONCURRENCY: usize = 32;

/// Last known participant counts, by Room.
#[derive(Default)]
pub struct Occupancy {
    counts: Mutex<HashMap<ObjectRef<Room>, u32>>,
}

impl Occupancy {
    /// The last count the room server reported, if it ever answered.
    pub fn get(&self, room: &Room) -> Option<u32> {
        self.counts
            .lock()
            .expect("occupancy lock")
            .get(&ObjectRef::from_obj(room))
            .copied()
    }

    /// Record `n`; whether it differs from what was known.
    fn set(&self, key: ObjectRef<Room>, n: u32) -> bool {
        self.counts.lock().expect("occupancy lock").insert(key, n) != Some(n)
    }

    /// Forget every Room not in `live`.
    fn retain(&self, live: &HashSet<ObjectRef<Room>>) {
        self.counts
            .lock()
            .expect("occupancy lock")
            .retain(|k, _| live.contains(k));
    }
}

/// Ask the room server at `endpoint` (`host:port`) how many people are inside.
pub async fn fetch(http: &reqwest::Client, endpoint: &str) -> Option<u32> {
    #[derive(serde::Deserialize)]
    struct Status {
        participants: u32,
    }
    let res = http
        .get(format!("http://{endpoint}/status"))
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?;
    Some(res.json::<Status>().await.ok()?.participants)
}

/// An HTTP client for [`fetch`]: short timeouts, so a dead room costs little.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2))
        .build()
        .expect("reqwest client")
}

/// Poll every `interval` until `changed` is closed; send each Room whose count changed.
pub async fn poll(
    store: Store<Room>,
    occupancy: Arc<Occupancy>,
    interval: Duration,
    changed: mpsc::Sender<ObjectRef<Room>>,
) {
    let http = client();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let rooms = store.state();
        let live: HashSet<_> = rooms.iter().map(|r| ObjectRef::from_obj(&**r)).collect();
        occupancy.retain(&live);
        let ready = rooms.into_iter().filter_map(|r| {
            let status = r.status.as_ref()?;
            let endpoint = status.endpoint.clone()?;
            (status.phase == Phase::Ready && r.metadata.deletion_timestamp.is_none())
                .then_some((r, endpoint))
        });
        let mut answers = futures::stream::iter(ready)
            .map(|(room, endpoint)| {
                let http = &http;
                async move { (room, fetch(http, &endpoint).await) }
            })
            .buffer_unordered(CONCURRENCY);
        while let Some((room, n)) = answers.next().await {
            let Some(n) = n else { continue };
            let key = ObjectRef::from_obj(&*room);
            if occupancy.set(key.clone(), n) {
                tracing::debug!(room = %room.name_any(), participants = n, "occupancy changed");
                if changed.send(key).await.is_err() {
                    return;
                }
            }
        }
    }
}
