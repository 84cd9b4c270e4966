//! 1,000 Rooms created at once against the test cluster, operator in-process.
//!
//! Reports p50/p99 from each Room's create call returning to (a) its Pod existing and
//! (b) the Room's phase `Ready` (KWOK marks the Pod ready), plus this process's VmRSS
//! with 1,000 live Rooms — operator *and* the bench's own watches, so an upper bound.
//! Needs `KUBECONFIG` and enough KWOK capacity (110 Pods per fake node: use
//! `K8S_ENV_NODES=10 scripts/k8s-env up bench`). `ROOMS=N` changes the count.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::runtime::{watcher, WatchStreamExt as _};
use kube::ResourceExt as _;
use rendezvous_crds::{Phase, Room, RoomKind, RoomSpec};

type Times = Arc<Mutex<HashMap<String, Instant>>>;

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v.get(((v.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or_default()
}

fn record(times: &Times, name: String) {
    times
        .lock()
        .unwrap()
        .entry(name)
        .or_insert_with(Instant::now);
}

#[tokio::main]
async fn main() {
    let Some(client) = common::client().await else {
        return;
    };
    let n: usize = std::env::var("ROOMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let ns = common::namespace(&client, "bench-rooms").await;
    let op = common::Operator::spawn(&client, common::args(&ns, "bench", &[]));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = vm_rss_kib();

    let (pods_seen, ready_seen, created): (Times, Times, Times) = Default::default();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let rooms: Api<Room> = Api::namespaced(client.clone(), &ns);
    let p = pods_seen.clone();
    tokio::spawn(
        watcher(pods, watcher::Config::default())
            .applied_objects()
            .try_for_each(move |pod| {
                record(&p, pod.name_any().trim_start_matches("room-").to_owned());
                futures::future::ready(Ok(()))
            }),
    );
    let r = ready_seen.clone();
    tokio::spawn(
        watcher(rooms.clone(), watcher::Config::default())
            .applied_objects()
            .try_for_each(move |room| {
                if room
                    .status
                    .as_ref()
                    .is_some_and(|s| s.phase == Phase::Ready)
                {
                    record(&r, room.name_any());
                }
                futures::future::ready(Ok(()))
            }),
    );

    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(100, |i| {
            let (rooms, created) = (rooms.clone(), created.clone());
            async move {
                let name = format!("b{i:04}");
                let room = Room::new(
                    &name,
                    RoomSpec {
                        kind: RoomKind::Chat,
                        title: "bench".into(),
                        creator: "bench".into(),
                        max_participants: 10,
                        idle_timeout: 3600,
                        max_duration: 7200,
                    },
                );
                rooms
                    .create(&PostParams::default(), &room)
                    .await
                    .expect("create Room");
                record(&created, name);
            }
        })
        .await;
    let create_all = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    while ready_seen.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all_ready = started.elapsed();
    let rss_live = vm_rss_kib();

    let created = created.lock().unwrap().clone();
    let lat = |seen: &Times| -> Vec<Duration> {
        let seen = seen.lock().unwrap();
        created
            .iter()
            .filter_map(|(k, t0)| Some(seen.get(k)?.saturating_duration_since(*t0)))
            .collect()
    };
    let (to_pod, to_ready) = (lat(&pods_seen), lat(&ready_seen));
    println!("rooms: {n} created in {create_all:?} (100 create calls in flight); all ready after {all_ready:?}");
    println!(
        "create -> Pod created: n={} p50={:?} p99={:?}",
        to_pod.len(),
        pct(to_pod.clone(), 0.5),
        pct(to_pod, 0.99)
    );
    println!(
        "create -> phase Ready: n={} p50={:?} p99={:?}",
        to_ready.len(),
        pct(to_ready.clone(), 0.5),
        pct(to_ready, 0.99)
    );
    println!(
        "VmRSS of this process (operator + bench watches): idle {} MiB, with {n} live Rooms {} MiB",
        rss_idle / 1024,
        rss_live / 1024
    );
    common::finish(&client, &ns, op).await;
}
