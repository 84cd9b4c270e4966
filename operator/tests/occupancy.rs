//! The occupancy probe against a real room server (in-process, loopback): it reads
//! the count people see, and says nothing for a room that does not answer.

use std::time::Duration;

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

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // Nobody listens there any more: no answer, not a zero.
    assert_eq!(occupancy::fetch(&http, &endpoint).await, None);
}
