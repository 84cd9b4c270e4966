//! A task the operator cannot do without ends the process with an error instead of
//! leaving it half alive; the occupancy poller lives and dies with leadership.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use common::{args, client, eventually, kubectl, room_yaml, Operator};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rendezvous_crds::Room;

/// A listener whose accept fails the HTTP server's task (a bug or a broken socket).
struct BrokenListener;

impl axum::serve::Listener for BrokenListener {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        panic!("the listener broke");
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(([127, 0, 0, 1], 0).into())
    }
}

/// No cluster needed: the API server address is closed, the leader loop keeps
/// retrying, and it is the HTTP server's end that must end `run_with`.
#[tokio::test]
async fn the_operator_fails_when_its_http_server_ends() {
    let cfg = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    let client = kube::Client::try_from(cfg).unwrap();
    let never = std::future::pending::<()>();
    let run = rendezvous_operator::run_with(args("ns", "a", &[]), client, BrokenListener, never);
    let err = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("run_with ends instead of hanging")
        .expect_err("an ended HTTP server is an error");
    assert!(err.to_string().contains("HTTP server"), "{err}");
}

/// A room server stand-in on loopback: answers `GET /status` and counts the calls.
async fn counting_room_server() -> (u16, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let app = axum::Router::new().route(
        "/status",
        get(move || {
            c.fetch_add(1, Ordering::SeqCst);
            async { axum::Json(serde_json::json!({"participants": 3})) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, calls)
}

/// Point the room's Pod at loopback (KWOK gives it an address nothing answers on), so
/// the operator's endpoint for the room is the counting server.
async fn pod_on_loopback(pods: &Api<Pod>, name: &str) {
    let patch = serde_json::json!({
        "status": {"podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}
    });
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch the Pod's IP");
}

async fn set_holder(leases: &Api<Lease>, holder: Option<&str>, secs: i32) {
    let mut lease = leases.get("rendezvous-operator").await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = holder.map(str::to_owned);
    spec.lease_duration_seconds = Some(secs);
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    leases
        .replace("rendezvous-operator", &PostParams::default(), &lease)
        .await
        .expect("rewrite the Lease");
}

#[tokio::test]
async fn the_occupancy_poller_stops_when_leadership_is_lost() {
    let Some(admin) = client().await else { return };
    let ns = common::namespace(&admin, "op-poller").await;
    let (port, calls) = counting_room_server().await;
    let port_arg = format!("--room-port={port}");
    let op = Operator::spawn(
        &admin,
        args(&ns, "a", &[&port_arg, "--occupancy-interval=100ms"]),
    )
    .await;
    assert!(
        kubectl(&["apply", "-f", "-"], Some(&room_yaml(&ns, "r1", 5)))
            .status
            .success()
    );
    let pods: Api<Pod> = Api::namespaced(admin.clone(), &ns);
    eventually(20, "the room's Pod", || async {
        pods.get_opt("room-r1").await.ok()??.status?.pod_ip
    })
    .await;
    pod_on_loopback(&pods, "room-r1").await;
    // The poller reaches the room and its count lands in status.
    let rooms: Api<Room> = Api::namespaced(admin.clone(), &ns);
    eventually(30, "participants = 3", || async {
        (rooms.get("r1").await.ok()?.status?.participants == 3).then_some(())
    })
    .await;
    assert!(op.is_leader().await);

    // Someone else takes the Lease (for an hour): the operator must stop everything.
    let leases: Api<Lease> = Api::namespaced(admin.clone(), &ns);
    set_holder(&leases, Some("intruder"), 3600).await;
    eventually(10, "the operator to step down", || async {
        (!op.is_leader().await).then_some(())
    })
    .await;
    // A request sent just before the step-down may still be on its way in.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = calls.load(Ordering::SeqCst);
    // Ten poll intervals without a single request.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        after,
        "the poller kept asking the room after leadership was lost"
    );

    // Give the Lease back so the operator can close the Room on the way out.
    set_holder(&leases, None, 1).await;
    eventually(10, "the operator to lead again", || async {
        op.is_leader().await.then_some(())
    })
    .await;
    common::finish(&admin, &ns, op).await;
}
