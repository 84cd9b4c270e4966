//! 1,000 Rooms created at once against the test cluster, operator in-process, measured
//! against a same-run baseline of 1,000 bare Pods created by the bench itself.
//!
//! 1. Baseline: the bench creates N bare Pods (the operator's own Pod template, no owner)
//!    in a fresh namespace, 100 create calls in flight, and times each create call's
//!    return to (a) the Pod appearing in a watch and (b) the Pod's `Ready` condition
//!    (KWOK marks it ready). No operator runs. The Pods are then deleted.
//! 2. Operator: the same for N Rooms in another fresh namespace, timing each create
//!    call's return to (a) its Pod appearing in a watch and (b) the Room's phase `Ready`.
//!
//! Both phases print p50/p99, the operator's figures as ratios of the baseline's, and
//! the API server's requests per object by verb and resource (`apiserver_request_total`
//! deltas from `kubectl get --raw /metrics`; the cluster must be otherwise idle).
//! Also this process's VmRSS with N live Rooms — operator *and* the bench's own
//! watches, so an upper bound. Needs `KUBECONFIG` and enough KWOK capacity (110 Pods
//! per fake node: use `K8S_ENV_NODES=10 scripts/k8s-env up bench`). `ROOMS=N` changes
//! the count.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt as _};
use kube::{Client, ResourceExt as _};
use rendezvous_crds::{Phase, Room, RoomKind, RoomSpec};
use rendezvous_operator::pod::{desired_pod, PodConfig};
use rendezvous_operator::status::pod_ready;

type Times = Arc<Mutex<HashMap<String, Instant>>>;

/// Create calls in flight at once, in both phases.
const IN_FLIGHT: usize = 100;

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn pct(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
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

fn room_spec() -> RoomSpec {
    RoomSpec {
        kind: RoomKind::Chat,
        title: "bench".into(),
        creator: "bench".into(),
        creator_name: "Bench".into(),
        max_participants: 10,
        idle_timeout: 3600,
        max_duration: 7200,
    }
}

/// `apiserver_request_total` summed by `VERB resource[/subresource]` (watches excluded:
/// they are long-lived streams, not per-object requests).
fn api_requests() -> BTreeMap<String, u64> {
    let out = common::kubectl(&["get", "--raw", "/metrics"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |k: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(k)?.strip_prefix("=\""))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        let verb = label("verb");
        if verb == "WATCH" || verb == "CONNECT" {
            continue;
        }
        let (res, sub, code) = (label("resource"), label("subresource"), label("code"));
        let mut key = format!("{verb} {res}");
        if !sub.is_empty() {
            key = format!("{key}/{sub}");
        }
        if !code.starts_with('2') {
            key = format!("{key} ({code})");
        }
        *counts.entry(key).or_default() += value.trim().parse::<f64>().unwrap_or(0.0) as u64;
    }
    counts
}

fn api_delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, d)| *d > 0)
        .collect()
}

/// One phase's results: latencies from each create call's return.
struct Measured {
    to_seen: Vec<Duration>,
    to_ready: Vec<Duration>,
    create_all: Duration,
    all_ready: Duration,
    api: Vec<(String, u64)>,
}

/// Create `n` objects with `create(i)` (`IN_FLIGHT` at once) and wait until `ready`
/// holds `n` names; latencies are taken from each create call's return.
async fn timed<F, Fut>(n: usize, seen: &Times, ready: &Times, create: F) -> Measured
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = String>,
{
    let created: Times = Default::default();
    let api_before = api_requests();
    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(IN_FLIGHT, |i| {
            let (fut, created) = (create(i), created.clone());
            async move { record(&created, fut.await) }
        })
        .await;
    let create_all = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    while ready.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_ready = started.elapsed();
    // Let the last status writes and watch events settle before counting requests.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let api = api_delta(&api_before, &api_requests());
    let created = created.lock().unwrap().clone();
    let lat = |seen: &Times| -> Vec<Duration> {
        let seen = seen.lock().unwrap();
        created
            .iter()
            .filter_map(|(k, t0)| Some(seen.get(k)?.saturating_duration_since(*t0)))
            .collect()
    };
    Measured {
        to_seen: lat(seen),
        to_ready: lat(ready),
        create_all,
        all_ready,
        api,
    }
}

/// Record Pod names (minus `strip`) when first seen, and when first `Ready` into `ready`
/// (if given).
fn watch_pods(
    pods: Api<Pod>,
    strip: &'static str,
    seen: Times,
    ready: Option<Times>,
) -> tokio::task::JoinHandle<Result<(), watcher::Error>> {
    tokio::spawn(
        watcher(pods, watcher::Config::default())
            .applied_objects()
            .try_for_each(move |pod| {
                let name = pod.name_any().trim_start_matches(strip).to_owned();
                if let Some(ready) = ready.as_ref().filter(|_| pod_ready(&pod)) {
                    record(ready, name.clone());
                }
                record(&seen, name);
                futures::future::ready(Ok(()))
            }),
    )
}

async fn baseline(client: &Client, n: usize) -> Measured {
    let ns = common::namespace(client, "bench-pods").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let (seen, ready): (Times, Times) = Default::default();
    let watch = watch_pods(pods.clone(), "", seen.clone(), Some(ready.clone()));
    let cfg = PodConfig::test();
    let result = timed(n, &seen, &ready, |i| {
        let pods = pods.clone();
        // The operator's Pod for a Room of this name, minus the owner (there is none).
        let mut room = Room::new(&format!("p{i:04}"), room_spec());
        room.metadata.namespace = Some(ns.clone());
        let mut pod = desired_pod(&room, &cfg, 8091);
        pod.metadata.owner_references = None;
        async move {
            let name = pod.name_any();
            pods.create(&PostParams::default(), &pod)
                .await
                .expect("create Pod");
            name
        }
    })
    .await;
    watch.abort();
    // Free the KWOK capacity before the operator's phase and let the deletions settle.
    let _ = pods
        .delete_collection(
            &DeleteParams::default().grace_period(0),
            &ListParams::default(),
        )
        .await;
    while pods
        .list(&ListParams::default().limit(1))
        .await
        .map(|l| !l.items.is_empty())
        .unwrap_or(false)
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    common::delete_namespace(client, &ns).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    result
}

fn print_phase(what: &str, seen_label: &str, ready_label: &str, r: &Measured, n: usize) {
    println!(
        "{what}: {n} created in {:?} ({IN_FLIGHT} create calls in flight); all ready after {:?}",
        r.create_all, r.all_ready
    );
    for (label, v) in [(seen_label, &r.to_seen), (ready_label, &r.to_ready)] {
        println!(
            "  {label}: n={} p50={:?} p99={:?}",
            v.len(),
            pct(v, 0.5),
            pct(v, 0.99)
        );
    }
    let per = |d: u64| d as f64 / n as f64;
    let total: u64 = r.api.iter().map(|(_, d)| d).sum();
    println!("  API requests per object: {:.2} in all", per(total));
    // Requests of less than one per 100 objects (leader election, the previous phase's
    // namespace clean-up) are in the total only.
    for (k, d) in r.api.iter().filter(|(_, d)| per(*d) >= 0.01) {
        println!("    {k:<32} {:.2}", per(*d));
    }
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.1}x", a.as_secs_f64() / b.as_secs_f64().max(1e-6))
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

    let base = baseline(&client, n).await;

    let ns = common::namespace(&client, "bench-rooms").await;
    let op = common::Operator::spawn(&client, common::args(&ns, "bench", &[])).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The baseline phase's allocations stay in this process's heap: the operator's
    // share is the growth from here.
    let rss_idle = vm_rss_kib();
    let (pods_seen, ready_seen): (Times, Times) = Default::default();
    let rooms: Api<Room> = Api::namespaced(client.clone(), &ns);
    let _watch = watch_pods(
        Api::namespaced(client.clone(), &ns),
        "room-",
        pods_seen.clone(),
        None,
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
    let ops = timed(n, &pods_seen, &ready_seen, |i| {
        let rooms = rooms.clone();
        let name = format!("b{i:04}");
        async move {
            let room = Room::new(&name, room_spec());
            rooms
                .create(&PostParams::default(), &room)
                .await
                .expect("create Room");
            name
        }
    })
    .await;
    let rss_live = vm_rss_kib();

    print_phase(
        "baseline, bare Pods",
        "create -> Pod in watch",
        "create -> Pod Ready",
        &base,
        n,
    );
    print_phase(
        "operator, Rooms",
        "create -> Pod in watch",
        "create -> Room Ready",
        &ops,
        n,
    );
    println!("operator / baseline:");
    for (label, o, b) in [
        ("to Pod", &ops.to_seen, &base.to_seen),
        ("to Ready", &ops.to_ready, &base.to_ready),
    ] {
        println!(
            "  {label}: p50 {} p99 {}",
            ratio(pct(o, 0.5), pct(b, 0.5)),
            ratio(pct(o, 0.99), pct(b, 0.99))
        );
    }
    println!(
        "VmRSS of this process (operator + bench watches, after the baseline phase): idle operator {} MiB, with {n} live Rooms {} MiB",
        rss_idle / 1024,
        rss_live / 1024
    );
    common::finish(&client, &ns, op).await;
}
