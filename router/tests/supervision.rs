//! A router whose room runtime stops reporting ends with an error instead of serving a
//! frozen view of its rooms; `/metrics` lives on its own listener only.

use std::sync::Arc;
use std::time::Duration;

use rendezvous_auth::{Expect, KeySet, Verifier};
use rendezvous_router::runtime::local::LocalRuntime;
use rendezvous_router::{tokens::RoomTokens, Config, Ctx};
use rendezvous_service::HttpMetrics;

fn ctx() -> (
    Ctx,
    HttpMetrics,
    tokio::sync::mpsc::Sender<rendezvous_router::runtime::RoomEvent>,
    tokio::sync::mpsc::Receiver<rendezvous_router::runtime::RoomEvent>,
) {
    let metrics = HttpMetrics::new("router");
    let tokens = Arc::new(RoomTokens::generate(Duration::from_secs(60)).unwrap());
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    // No room is started here: the runtime only has to exist, and reports elsewhere,
    // so `tx` is the only sender of the events the router follows.
    let (unused, _) = tokio::sync::mpsc::channel(1);
    let runtime = LocalRuntime::new(
        "rendezvous".into(),
        tokens.clone(),
        Duration::from_secs(1),
        unused,
    );
    let verifier = Verifier::with_keys(KeySet::default(), Expect::new("users", "rendezvous"));
    let ctx = Ctx::with_runtime(
        Config::test(),
        verifier,
        metrics.registry(),
        Arc::new(runtime),
        tokens,
    );
    (ctx, metrics, tx, rx)
}

async fn listener() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()
}

#[tokio::test]
async fn the_router_ends_with_an_error_when_its_event_stream_ends() {
    let (ctx, metrics, tx, rx) = ctx();
    let server = tokio::spawn(rendezvous_router::serve(
        ctx,
        rx,
        metrics,
        listener().await,
        listener().await,
        std::future::pending(),
    ));
    // Every sender gone (the runtime's watch task died): the stream ends.
    drop(tx);
    let res = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the router stops by itself")
        .unwrap();
    let err = res.expect_err("an ended event stream is an error");
    assert!(err.to_string().contains("event stream ended"), "{err}");
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_only() {
    let (ctx, metrics, _tx, rx) = ctx();
    let (public, private) = (listener().await, listener().await);
    let (public_addr, private_addr) = (public.local_addr().unwrap(), private.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(rendezvous_router::serve(
        ctx,
        rx,
        metrics,
        public,
        private,
        async {
            let _ = stopped.await;
        },
    ));
    let public_metrics = reqwest::get(format!("http://{public_addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(public_metrics.status(), 404);
    let body = reqwest::get(format!("http://{private_addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("rendezvous_router_rooms_live"), "{body}");
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
