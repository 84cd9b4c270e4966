//! The operator against a real API server + controller-manager + scheduler + KWOK.
//! Needs `KUBECONFIG` (see `common`); each test has its own namespace.

mod common;

use common::{args, client, eventually, kubectl, room_yaml, Operator};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use kube::ResourceExt as _;
use rendezvous_crds::{Phase, Room};

async fn pod_of(pods: &Api<Pod>, room: &str) -> Option<Pod> {
    pods.get_opt(&format!("room-{room}")).await.ok().flatten()
}

async fn phase_of(rooms: &Api<Room>, room: &str) -> Option<Phase> {
    rooms
        .get_opt(room)
        .await
        .ok()
        .flatten()?
        .status
        .map(|s| s.phase)
}

fn apply(yaml: &str) -> std::process::Output {
    kubectl(&["apply", "-f", "-"], Some(yaml))
}

#[tokio::test]
async fn applied_room_gets_an_owned_pod_and_becomes_ready() {
    let Some(client) = client().await else { return };
    let ns = common::namespace(&client, "op-ready").await;
    let op = Operator::spawn(&client, args(&ns, "a", &[])).await;
    let out = apply(&room_yaml(&ns, "r1", 12));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pod = eventually(20, "the room's Pod", || pod_of(&pods, "r1")).await;
    let owner = &pod.owner_references()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Room", "r1"));
    assert_eq!(owner.controller, Some(true));
    let c = &pod.spec.as_ref().unwrap().containers[0];
    assert!(c
        .args
        .as_ref()
        .unwrap()
        .join(" ")
        .contains("--max-participants 12"));
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));

    let rooms: Api<Room> = Api::namespaced(client.clone(), &ns);
    eventually(30, "phase Ready", || async {
        (phase_of(&rooms, "r1").await? == Phase::Ready).then_some(())
    })
    .await;
    let room = rooms.get("r1").await.unwrap();
    let status = room.status.unwrap();
    let ip = pods
        .get("room-r1")
        .await
        .unwrap()
        .status
        .unwrap()
        .pod_ip
        .unwrap();
    assert_eq!(status.endpoint, Some(format!("{ip}:8090")));
    // Media on the Pod's own IP by default (`--room-media-port`).
    assert_eq!(status.media_port, Some(8091));
    assert_eq!(
        room.metadata.finalizers,
        Some(vec![rendezvous_crds::FINALIZER.to_owned()])
    );

    let out = kubectl(&["get", "rooms", "-n", &ns], None);
    let table = String::from_utf8_lossy(&out.stdout);
    let header: Vec<_> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "KIND",
            "CREATOR",
            "PHASE",
            "MEDIA",
            "PARTICIPANTS",
            "AGE"
        ]
    );
    assert!(table.contains("r1") && table.contains("Ready"), "{table}");
    common::finish(&client, &ns, op).await;
}

#[tokio::test]
async fn room_pods_pass_the_restricted_pod_security_standard() {
    let Some(client) = client().await else { return };
    let ns = common::namespace(&client, "op-psa").await;
    // The guard is live: a Pod without the restricted settings is refused here...
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let plain: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "plain"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    let refused = pods.create(&Default::default(), &plain).await.unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403 && s.message.contains("restricted")),
        "{refused:?}"
    );
    // ...and the operator's room Pod is admitted and runs.
    let op = Operator::spawn(&client, args(&ns, "a", &[])).await;
    assert!(apply(&room_yaml(&ns, "r1", 5)).status.success());
    let rooms: Api<Room> = Api::namespaced(client.clone(), &ns);
    eventually(30, "phase Ready", || async {
        (phase_of(&rooms, "r1").await? == Phase::Ready).then_some(())
    })
    .await;
    common::finish(&client, &ns, op).await;
}

#[tokio::test]
async fn api_server_rejects_invalid_rooms_with_the_schema_message() {
    let Some(client) = client().await else { return };
    let ns = common::namespace(&client, "op-invalid").await;
    let too_many = apply(&room_yaml(&ns, "big", 5000));
    let err = String::from_utf8_lossy(&too_many.stderr);
    assert!(
        !too_many.status.success() && err.contains("maxParticipants"),
        "{err}"
    );
    let bad_kind = apply(&room_yaml(&ns, "k", 5).replace("kind: chat", "kind: audio"));
    let err = String::from_utf8_lossy(&bad_kind.stderr);
    assert!(
        err.contains("Unsupported value") && err.contains("audio"),
        "{err}"
    );
    assert!(apply(&room_yaml(&ns, "ok", 5)).status.success());
    let changed = apply(&room_yaml(&ns, "ok", 5).replace("creator: ada", "creator: eve"));
    let err = String::from_utf8_lossy(&changed.stderr);
    assert!(err.contains("creator is immutable"), "{err}");
    let named =
        room_yaml(&ns, "named", 5).replace("creator: ada", "creator: ada\n  creatorName: Ada");
    assert!(apply(&named).status.success());
    let renamed = apply(&named.replace("creatorName: Ada", "creatorName: Eve"));
    let err = String::from_utf8_lossy(&renamed.stderr);
    assert!(err.contains("creatorName is immutable"), "{err}");
    common::delete_namespace(&client, &ns).await;
}

#[tokio::test]
async fn deleting_a_room_runs_the_finalizer_and_the_pod_goes() {
    let Some(client) = client().await else { return };
    let ns = common::namespace(&client, "op-delete").await;
    let op = Operator::spawn(&client, args(&ns, "a", &[])).await;
    assert!(apply(&room_yaml(&ns, "r1", 5)).status.success());
    let rooms: Api<Room> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    eventually(30, "phase Ready", || async {
        (phase_of(&rooms, "r1").await? == Phase::Ready).then_some(())
    })
    .await;
    rooms.delete("r1", &DeleteParams::default()).await.unwrap();
    eventually(30, "the Room to go", || async {
        rooms.get_opt("r1").await.unwrap().is_none().then_some(())
    })
    .await;
    eventually(30, "the Pod to go", || async {
        pod_of(&pods, "r1").await.is_none().then_some(())
    })
    .await;
    common::finish(&client, &ns, op).await;
}

#[tokio::test]
async fn another_controllers_finalizer_is_kept_and_ours_comes_and_goes() {
    let Some(client) = client().await else { return };
    let ns = common::namespace(&client, "op-finalizers").await;
    let op = Operator::spawn(&client, args(&ns, "a", &[])).await;
    let theirs = "example.com/keep";
    let yaml = room_yaml(&ns, "r1", 5).replace(
        "  namespace:",
        &format!("  finalizers: [\"{theirs}\"]\n  namespace:"),
    );
    assert!(apply(&yaml).status.success());
    let rooms: Api<Room> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    eventually(30, "phase Ready", || async {
        (phase_of(&rooms, "r1").await? == Phase::Ready).then_some(())
    })
    .await;
    let room = rooms.get("r1").await.unwrap();
    assert_eq!(room.finalizers(), [theirs, rendezvous_crds::FINALIZER]);
    rooms.delete("r1", &DeleteParams::default()).await.unwrap();
    // Ours goes once the room is closed; theirs holds the Room until they let go.
    eventually(30, "our finalizer to go", || async {
        let room = rooms.get_opt("r1").await.unwrap()?;
        (room.finalizers() == [theirs]).then_some(())
    })
    .await;
    eventually(30, "the Pod to go", || async {
        pod_of(&pods, "r1").await.is_none().then_some(())
    })
    .await;
    let out = kubectl(
        &[
            "-n",
            &ns,
            "patch",
            "room",
            "r1",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/finalizers/0"}]"#,
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(30, "the Room to go", || async {
        rooms.get_opt("r1").await.unwrap().is_none().then_some(())
    })
    .await;
    common::finish(&client, &ns, op).await;
}

#[tokio::test]
async fn a_pod_deleted_by_hand_is_replaced_then_the_room_fails() {
    let Some(client) = client().await else { return };
    let ns = common::namespace(&client, "op-restart").await;
    let op = Operator::spawn(&client, args(&ns, "a", &["--max-restarts=1"])).await;
    assert!(apply(&room_yaml(&ns, "r1", 5)).status.success());
    let rooms: Api<Room> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let first = eventually(20, "the Pod", || pod_of(&pods, "r1"))
        .await
        .uid();
    // A restart is counted for a Pod the operator has recorded (`status.podUid`);
    // deleted before that write (a busy machine), its replacement would count none.
    eventually(20, "the Pod recorded in the status", || async {
        let named = rooms.get("r1").await.ok()?.status?.pod_uid;
        (named == first).then_some(())
    })
    .await;
    pods.delete("room-r1", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let second = eventually(20, "a new Pod", || async {
        let p = pod_of(&pods, "r1").await?;
        (p.uid() != first).then(|| p.uid())
    })
    .await;
    // The replacement Pod can be seen before the status patch that counts it.
    eventually(20, "restarts = 1", || async {
        let restarts = rooms.get("r1").await.ok()?.status?.restarts;
        (restarts == 1).then_some(())
    })
    .await;
    pods.delete("room-r1", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    eventually(20, "phase Failed", || async {
        (phase_of(&rooms, "r1").await? == Phase::Failed).then_some(())
    })
    .await;
    let room = rooms.get("r1").await.unwrap();
    assert_eq!(room.status.unwrap().conditions[0].reason, "TooManyRestarts");
    let now = pod_of(&pods, "r1").await;
    assert!(now.is_none() || now.unwrap().uid() == second);
    common::finish(&client, &ns, op).await;
}

#[tokio::test]
async fn rooms_waiting_when_the_operator_starts_all_get_their_pods() {
    // The reconciles that start before the Pod cache's first list all wait for it.
    // They used to wait on kube's `Store::wait_until_ready` each, which wakes only the
    // last of them, and the other Rooms never got a Pod. Whether that race comes up
    // here depends on which first list ends first; the controller's unit test
    // `every_reconcile_waiting_for_the_pod_cache_wakes_when_it_is_listed` makes it
    // happen every time.
    let Some(client) = client().await else { return };
    let ns = common::namespace(&client, "op-start").await;
    let manifests: Vec<String> = (1..=6)
        .map(|i| room_yaml(&ns, &format!("r{i}"), 5))
        .collect();
    assert!(apply(&manifests.join("---\n")).status.success());
    let op = Operator::spawn(&client, args(&ns, "a", &[])).await;
    let rooms: Api<Room> = Api::namespaced(client.clone(), &ns);
    eventually(30, "all six Rooms Ready", || async {
        let list = rooms.list(&Default::default()).await.ok()?;
        let ready = list
            .items
            .iter()
            .filter(|r| r.status.as_ref().is_some_and(|s| s.phase == Phase::Ready))
            .count();
        (ready == 6).then_some(())
    })
    .await;
    common::finish(&client, &ns, op).await;
}

#[tokio::test]
async fn an_operator_restart_loses_nothing() {
    let Some(client) = client().await else { return };
    let ns = common::namespace(&client, "op-restart-op").await;
    let rooms: Api<Room> = Api::namespaced(client.clone(), &ns);
    let op = Operator::spawn(&client, args(&ns, "a", &[])).await;
    assert!(apply(&room_yaml(&ns, "r1", 5)).status.success());
    eventually(30, "r1 Ready", || async {
        (phase_of(&rooms, "r1").await? == Phase::Ready).then_some(())
    })
    .await;
    op.stop().await;
    // While no operator runs: a new Room arrives and an old one is deleted.
    assert!(apply(&room_yaml(&ns, "r2", 5)).status.success());
    rooms.delete("r1", &DeleteParams::default()).await.unwrap();
    let op = Operator::spawn(&client, args(&ns, "b", &[])).await;
    eventually(30, "r2 Ready", || async {
        (phase_of(&rooms, "r2").await? == Phase::Ready).then_some(())
    })
    .await;
    eventually(30, "r1 finalised", || async {
        rooms.get_opt("r1").await.unwrap().is_none().then_some(())
    })
    .await;
    common::finish(&client, &ns, op).await;
}

#[tokio::test]
async fn two_replicas_never_both_act() {
    let Some(client) = client().await else { return };
    let ns = common::namespace(&client, "op-leader").await;
    let a = Operator::spawn(&client, args(&ns, "a", &[])).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let holder = |l: Lease| l.spec?.holder_identity;
    eventually(10, "a to lead", || async {
        (holder(leases.get_opt("rendezvous-operator").await.ok()??)? == "a").then_some(())
    })
    .await;
    let b = Operator::spawn(&client, args(&ns, "b", &[])).await;
    assert!(apply(&room_yaml(&ns, "r1", 5)).status.success());
    let rooms: Api<Room> = Api::namespaced(client.clone(), &ns);
    eventually(30, "r1 Ready", || async {
        (phase_of(&rooms, "r1").await? == Phase::Ready).then_some(())
    })
    .await;
    // Only the leader wrote: one field manager entry from the operator on the Room's
    // status, and the lease still says "a" after several renewals of both.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let lease = leases.get("rendezvous-operator").await.unwrap();
    assert_eq!(holder(lease.clone()).as_deref(), Some("a"));
    assert_eq!(lease.spec.unwrap().lease_transitions, Some(1));
    a.stop().await;
    eventually(10, "b to take over", || async {
        (holder(leases.get_opt("rendezvous-operator").await.ok()??)? == "b").then_some(())
    })
    .await;
    assert!(apply(&room_yaml(&ns, "r2", 5)).status.success());
    eventually(30, "r2 Ready under b", || async {
        (phase_of(&rooms, "r2").await? == Phase::Ready).then_some(())
    })
    .await;
    common::finish(&client, &ns, b).await;
}
