//! The occupancy probe against a real room server (in-process, loopback): it reads
//! the count people see, and says nothing for a room that does not answer; the poller
//! reports a Room once per change.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher;
use rendezvous_crds::{Phase, Room, RoomStatus};

use rendezvous_api::{Grants, JwkSet, RoomClaims};
use rendezvous_auth::{now_unix, SigningKey};
use rendezvous_operator::occupancy;
use rendezvous_room::client::RoomClient;
use rendezvous_room::{Args, Server};

#[tokio::test]
async fn the_probe_reads_the_room_servers_participant_count() {
    let key = SigningKey::generate().unwrap();
    let jwks = serde_json::to_string(&JwkSet {
        keys: vec![key.jwk()],
    })
    .unwrap();
    let server = Server::bind(Args::with_defaults("r1", &jwks))
        .await
        .unwrap();
    let endpoint = server.local_addr().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    let http = occupancy::client();
    assert_eq!(occupancy::fetch(&http, &endpoint).await, Some(0));

    let token = |sub: &str| {
        let now = now_unix();
        key.sign(&RoomClaims {
            sub: sub.into(),
            name: sub.into(),
            room: "r1".into(),
            grants: Grants::participant(),
            iat: now,
            exp: now + 60,
            iss: "rendezvous-router".into(),
            aud: "rendezvous-room".into(),
        })
        .unwrap()
    };
    let url = format!("ws://{endpoint}/ws");
    let _ada = RoomClient::connect(&url, &token("ada")).await.unwrap();
    let _bob = RoomClient::connect(&url, &token("bob")).await.unwrap();
    assert_eq!(occupancy::fetch(&http, &endpoint).await, Some(2));

    // The poller: a Ready Room pointing at this server is reported once with its
    // count; a Room that does not answer is not reported at all.
    let (store, mut writer) = reflector::store::<Room>();
    let mk = |name: &str, endpoint: &str| {
        let mut room = Room::new(
            name,
            serde_json::from_value(serde_json::json!({
                "kind": "chat", "title": "t", "creator": "ada",
                "maxParticipants": 5, "idleTimeout": 60, "maxDuration": 600
            }))
            .unwrap(),
        );
        room.metadata.namespace = Some("ns".into());
        room.status = Some(RoomStatus {
            phase: Phase::Ready,
            endpoint: Some(endpoint.into()),
            ..RoomStatus::default()
        });
        room
    };
    let live = mk("live", &endpoint);
    let dead = mk("dead", "127.0.0.1:9");
    writer.apply_watcher_event(&watcher::Event::Apply(live.clone()));
    writer.apply_watcher_event(&watcher::Event::Apply(dead.clone()));
    let occ = Arc::new(occupancy::Occupancy::default());
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let poller = tokio::spawn(occupancy::poll(
        store,
        occ.clone(),
        Duration::from_millis(50),
        tx,
    ));
    let changed = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed, ObjectRef::from_obj(&live));
    assert_eq!(occ.get(&live), Some(2));
    assert_eq!(occ.get(&dead), None);
    // Same count on later rounds: nothing more to report.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "an unchanged count was reported again"
    );
    poller.abort();

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // Nobody listens there any more: no answer, not a zero.
    assert_eq!(occupancy::fetch(&http, &endpoint).await, None);
}
