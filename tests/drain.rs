//! Router shutdown when the rooms live on without it (as in Kubernetes, where any
//! replica serves them): every proxied socket gets 1012 (service restart), and the
//! client reconnects through another router and resumes with nothing lost.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::WAIT;
use futures::future::BoxFuture;
use rendezvous_api::{AccessClaims, JwkSet};
use rendezvous_auth::{Expect, KeySet, SigningKey, Verifier};
use rendezvous_room::client::{ConnectOptions, Incoming, RoomClient};
use rendezvous_room::protocol::ServerEvent;
use rendezvous_router::runtime::local::LocalRuntime;
use rendezvous_router::runtime::{RoomRuntime, RoomSpec};
use rendezvous_router::{tokens::RoomTokens, Config, Ctx};
use serde_json::{json, Value};

/// Local room processes that, like Pods, do not end with the router.
struct Outliving(LocalRuntime);

impl RoomRuntime for Outliving {
    fn start(&self, spec: RoomSpec) -> BoxFuture<'_, anyhow::Result<Option<String>>> {
        self.0.start(spec)
    }
    fn stop<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        self.0.stop(id)
    }
    fn stop_all(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
    fn rooms_outlive_router(&self) -> bool {
        true
    }
}

struct Router {
    ctx: Ctx,
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

async fn start_router(
    runtime: Arc<Outliving>,
    tokens: Arc<RoomTokens>,
    users: &SigningKey,
) -> Router {
    let keys = KeySet::from_jwks(&JwkSet {
        keys: vec![users.jwk()],
    })
    .unwrap();
    let verifier = Verifier::with_keys(keys, Expect::new("users", "rendezvous"));
    let ctx = Ctx::with_runtime(
        Config::test(),
        verifier,
        &prometheus::Registry::new(),
        runtime,
        tokens,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = rendezvous_router::routes(ctx.clone());
    let shutdown = ctx.drain_on(async {
        let _ = rx.await;
    });
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .unwrap();
    });
    Router {
        ctx,
        base,
        stop: Some(tx),
        server,
    }
}

fn access(users: &SigningKey, who: &str) -> String {
    let now = rendezvous_auth::now_unix();
    users
        .sign(&AccessClaims {
            sub: who.into(),
            name: who.into(),
            iat: now,
            exp: now + 300,
            iss: "users".into(),
            aud: "rendezvous".into(),
        })
        .unwrap()
}

async fn post(url: String, token: &str, body: Option<Value>) -> Value {
    let mut req = reqwest::Client::new().post(url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    res.json().await.unwrap()
}

#[tokio::test]
async fn router_shutdown_sends_1012_and_clients_resume_elsewhere() {
    let users = SigningKey::generate().unwrap();
    let tokens = Arc::new(RoomTokens::generate(Duration::from_secs(600)).unwrap());
    let (events, _rx) = tokio::sync::mpsc::channel(64);
    let runtime = Arc::new(Outliving(LocalRuntime::new(
        env!("CARGO_BIN_EXE_rendezvous").into(),
        tokens.clone(),
        Duration::from_secs(10),
        events,
    )));
    let mut one = start_router(runtime.clone(), tokens.clone(), &users).await;
    let ada = access(&users, "ada");
    let room = post(
        format!("{}/api/rooms", one.base),
        &ada,
        Some(json!({"kind": "chat", "title": "Rollout"})),
    )
    .await;
    let code = common::code_of(room["inviteUrl"].as_str().unwrap());
    let j = post(format!("{}/api/join/{code}", one.base), &ada, None).await;
    let token = j["token"].as_str().unwrap().to_owned();
    let mut a = RoomClient::connect(j["wsUrl"].as_str().unwrap(), &token)
        .await
        .unwrap();
    a.say("before").await.unwrap();
    let mut last = 0;
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = a.next_event().await.unwrap();
            last = ev.seq;
            if matches!(&ev.event, ServerEvent::Message { text, .. } if text == "before") {
                return;
            }
        }
    })
    .await
    .unwrap();

    // The second replica shares the room (same runtime view, same tokens).
    let two = start_router(runtime.clone(), tokens.clone(), &users).await;
    {
        let entry = one
            .ctx
            .reg()
            .get(room["id"].as_str().unwrap())
            .unwrap()
            .clone();
        two.ctx.reg().upsert(entry);
    }

    let _ = one.stop.take().unwrap().send(());
    let code = tokio::time::timeout(WAIT, async {
        loop {
            match a.recv().await {
                Some(Incoming::Closed { code, .. }) => return code,
                Some(_) => continue,
                None => return 0,
            }
        }
    })
    .await
    .expect("the socket closes on shutdown");
    assert_eq!(code, 1012, "service restart: reconnect");
    one.ctx.shutdown().await;
    one.server.await.unwrap();

    // Reconnect through the other replica and resume after the last seen seq.
    let ws = format!(
        "{}/rooms/{}/ws",
        two.base.replacen("http", "ws", 1),
        room["id"].as_str().unwrap()
    );
    let mut opts = ConnectOptions::new(ws, &token);
    opts.resume_from = Some(last);
    let b = RoomClient::connect_with(opts)
        .await
        .expect("resume elsewhere");
    assert!(b.welcome_seq() >= last);
    b.say("after").await.unwrap();
    drop(b);
    runtime.0.stop_all().await;
}
