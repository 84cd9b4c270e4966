//! The router's Kubernetes runtime against a real API server, with the operator
//! running in-process: create → Ready event with the Pod's endpoint, list, close.
//! Needs `KUBECONFIG` (skips loudly without it; fails under `CI=true`).

#[path = "../../operator/tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::ResourceExt as _;
use rendezvous_crds::Room;
use rendezvous_router::model::RoomKind;
use rendezvous_router::runtime::kube::KubeRuntime;
use rendezvous_router::runtime::{RoomEvent, RoomRuntime as _, RoomSpec};
use rendezvous_router::tokens::RoomTokens;
use tokio::sync::mpsc;

fn spec(id: &str) -> RoomSpec {
    RoomSpec {
        id: id.into(),
        kind: RoomKind::Chat,
        title: "Tea".into(),
        creator: "ada".into(),
        max_participants: 5,
        idle_timeout: Duration::from_secs(300),
        max_duration: Duration::from_secs(3600),
    }
}

#[tokio::test]
async fn kubernetes_runtime_creates_lists_and_closes_rooms() {
    let Some(client) = common::client().await else {
        return;
    };
    let ns = common::namespace(&client, "router-kube").await;
    let op = common::Operator::spawn(&client, common::args(&ns, "a", &[]));
    let tokens = Arc::new(RoomTokens::generate(Duration::from_secs(60)).unwrap());
    let (tx, mut rx) = mpsc::channel(64);
    let rt = KubeRuntime::start(
        client.clone(),
        &ns,
        tokens.clone(),
        Duration::from_secs(10),
        tx,
    )
    .await
    .unwrap();
    assert_eq!(rt.start(spec("r1")).await.unwrap(), None);
    let ready = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let RoomEvent::Ready { id, endpoint } = ready else {
        panic!("{ready:?}")
    };
    assert_eq!(id, "r1");
    assert!(endpoint.ends_with(":8090"), "{endpoint}");
    let listed: Vec<_> = rt.rooms().iter().map(|r| r.name_any()).collect();
    assert_eq!(listed, ["r1"]);

    // A second runtime (a restarted router) finds the room in the cluster.
    let (tx2, _rx2) = mpsc::channel(64);
    let again = KubeRuntime::start(client.clone(), &ns, tokens, Duration::from_secs(10), tx2)
        .await
        .unwrap();
    assert_eq!(again.rooms().len(), 1);

    rt.stop("r1").await.unwrap();
    let rooms: Api<Room> = Api::namespaced(client.clone(), &ns);
    assert!(
        rooms.get_opt("r1").await.unwrap().is_none(),
        "closed room is gone"
    );
    let ended = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(ended, RoomEvent::Ended { ref id, .. } if id == "r1"),
        "{ended:?}"
    );
    common::finish(&client, &ns, op).await;
}
