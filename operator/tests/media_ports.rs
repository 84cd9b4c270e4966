//! Room media on host ports (`--media-host-ports`) against the real API server,
//! scheduler and two KWOK nodes: the operator spreads Rooms over the range, the
//! scheduler keeps two Pods with one host port off one node, and the status says so.

mod common;

use std::collections::BTreeMap;

use common::{args, client, eventually, kubectl, room_yaml, Operator};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use kube::ResourceExt as _;
use rendezvous_crds::{Phase, Room};
use rendezvous_operator::pod::{desired_pod, MediaPorts, PodConfig};

/// Two ports: on N nodes 2N Rooms fit, one more waits for a free port.
const RANGE: &str = "31917-31918";

/// A namespace that admits host ports (`privileged`) but still warns and audits
/// against `restricted`, as the operator README tells operators to label it.
async fn host_port_namespace(client: &kube::Client) -> String {
    common::namespace_with(
        client,
        "op-ports",
        &[
            ("pod-security.kubernetes.io/enforce", "privileged"),
            ("pod-security.kubernetes.io/warn", "restricted"),
            ("pod-security.kubernetes.io/audit", "restricted"),
        ],
    )
    .await
}

async fn statuses(rooms: &Api<Room>) -> BTreeMap<String, rendezvous_crds::RoomStatus> {
    rooms
        .list(&Default::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter_map(|r| Some((r.name_any(), r.status?)))
                .collect()
        })
        .unwrap_or_default()
}

fn reason(s: &rendezvous_crds::RoomStatus) -> &str {
    s.conditions
        .first()
        .map(|c| c.reason.as_str())
        .unwrap_or("")
}

#[tokio::test]
async fn rooms_get_host_ports_and_no_two_on_one_node_share_one() {
    let Some(client) = client().await else { return };
    let ns = host_port_namespace(&client).await;
    let flag = format!("--media-host-ports={RANGE}");
    let nodes = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .list(&Default::default())
        .await
        .expect("list nodes")
        .items
        .len();
    assert!(nodes >= 2, "the test cluster has {nodes} node(s)");
    let op = Operator::spawn(&client, args(&ns, "a", &[&flag])).await;
    let manifests: Vec<String> = (1..=2 * nodes + 1)
        .map(|i| room_yaml(&ns, &format!("r{i}"), 5))
        .collect();
    let out = kubectl(&["apply", "-f", "-"], Some(&manifests.join("---\n")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let rooms: Api<Room> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    // Four Ready, one waiting with the scheduler's reason.
    let all = eventually(60, "four Rooms Ready and one Unschedulable", || async {
        let all = statuses(&rooms).await;
        let ready = all.values().filter(|s| s.phase == Phase::Ready).count();
        let waiting = all
            .values()
            .filter(|s| reason(s) == "Unschedulable")
            .count();
        (ready == 4 && waiting == 1).then_some(all)
    })
    .await;
    let (waiting, w) = all
        .iter()
        .find(|(_, s)| reason(s) == "Unschedulable")
        .expect("one waits");
    assert!(
        w.conditions[0].message.contains("free ports"),
        "the scheduler's message is in the status: {}",
        w.conditions[0].message
    );
    // Each port N times among the Ready rooms, on N different nodes.
    let mut by_port: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for (name, s) in all.iter().filter(|(_, s)| s.phase == Phase::Ready) {
        let port = s.media_port.expect("a Ready room has its media port");
        let pod = pods.get(&format!("room-{name}")).await.unwrap();
        let spec = pod.spec.unwrap();
        let media = &spec.containers[0].ports.as_ref().unwrap()[1];
        assert_eq!(media.host_port, Some(port.into()), "{name}");
        assert_eq!(media.container_port, i32::from(port), "{name}");
        by_port
            .entry(port)
            .or_default()
            .push(spec.node_name.unwrap());
    }
    assert_eq!(by_port.keys().copied().collect::<Vec<_>>(), [31917, 31918]);
    for (port, on) in &by_port {
        let distinct: std::collections::BTreeSet<_> = on.iter().collect();
        assert_eq!(
            (on.len(), distinct.len()),
            (nodes, nodes),
            "port {port}: {on:?}"
        );
    }
    // The waiting room's port frees up when a room holding it closes.
    let port = w.media_port.expect("the waiting room has a port too");
    let (holder, _) = all
        .iter()
        .find(|(n, s)| *n != waiting && s.media_port == Some(port))
        .expect("a Ready room holds the same port");
    rooms
        .delete(holder, &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        60,
        "the waiting room Ready once the port is free",
        || async {
            let s = rooms.get(waiting).await.ok()?.status?;
            (s.phase == Phase::Ready).then_some(())
        },
    )
    .await;

    let out = kubectl(&["get", "rooms", "-n", &ns, "--no-headers"], None);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(&port.to_string()),
        "kubectl shows the media port: {table}"
    );
    common::finish(&client, &ns, op).await;
}

#[tokio::test]
async fn a_host_port_room_pod_breaks_no_restricted_rule_but_the_host_port() {
    let Some(client) = client().await else { return };
    let ns = common::namespace(&client, "op-ports-psa").await;
    let mut room = Room::new(
        "r1",
        serde_json::from_value(serde_json::json!({
            "kind": "video", "title": "Tea", "creator": "ada"
        }))
        .unwrap(),
    );
    room.metadata.namespace = Some(ns.clone());
    let cfg = PodConfig {
        media: MediaPorts::HostPorts {
            first: 31917,
            last: 31918,
        },
        ..PodConfig::test()
    };
    let mut pod = desired_pod(&room, &cfg, 31917);
    pod.metadata.owner_references = None;
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let err = pods.create(&dry, &pod).await.unwrap_err();
    let kube::Error::Api(s) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(s.code, 403, "{s:?}");
    let violations = s.message.split_once("\": ").map(|(_, v)| v).unwrap_or("");
    assert_eq!(
        violations, "hostPort (container \"room\" uses hostPort 31917)",
        "{}",
        s.message
    );
    // The same Pod on the pod network is admitted.
    let pod = desired_pod(&room, &PodConfig::test(), 8091);
    let mut pod = pod;
    pod.metadata.owner_references = None;
    pods.create(&dry, &pod)
        .await
        .expect("the pod-network room Pod is restricted");
    common::delete_namespace(&client, &ns).await;
}
