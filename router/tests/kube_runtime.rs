//! The router's Kubernetes runtime against a real API server, with the operator
//! running in-process: create → Ready event with the Pod's endpoint, list, close; and a
//! router restart that keeps rooms, invite links and room-token keys.
//! Needs `KUBECONFIG` (skips loudly without it; fails under `CI=true`).

#[path = "../../operator/tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::ResourceExt as _;
use rendezvous_api::{AccessClaims, JwkSet, RoomClaims};
use rendezvous_auth::{Expect, KeySet, SigningKey, Verifier};
use rendezvous_crds::Room;
use rendezvous_router::config::RuntimeKind;
use rendezvous_router::model::RoomKind;
use rendezvous_router::runtime::kube::KubeRuntime;
use rendezvous_router::runtime::{RoomEvent, RoomRuntime as _, RoomSpec};
use rendezvous_router::tokens::{self, RoomTokens};
use rendezvous_router::{Config, Ctx};
use tokio::sync::mpsc;

fn spec(id: &str) -> RoomSpec {
    RoomSpec {
        id: id.into(),
        kind: RoomKind::Chat,
        title: "Tea".into(),
        creator: "ada".into(),
        creator_name: "Ada".into(),
        max_participants: 5,
        idle_timeout: Duration::from_secs(300),
        max_duration: Duration::from_secs(3600),
        invites: Vec::new(),
    }
}

#[tokio::test]
async fn kubernetes_runtime_creates_lists_and_closes_rooms() {
    let Some(client) = common::client().await else {
        return;
    };
    let ns = common::namespace(&client, "router-kube").await;
    let op = common::Operator::spawn(&client, common::args(&ns, "a", &[])).await;
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
    // The watch reports the Room whole as it goes; wait for it to be ready.
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match rx.recv().await {
                Some(RoomEvent::Seen(room)) if room.endpoint.is_some() => return *room,
                Some(RoomEvent::Seen(_)) => continue,
                other => panic!("{other:?}"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(ready.id, "r1");
    assert_eq!(ready.state, rendezvous_router::model::RoomState::Ready);
    let endpoint = ready.endpoint.unwrap();
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
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rx.recv().await {
                Some(RoomEvent::Seen(_) | RoomEvent::Closing { .. }) => continue,
                other => return other,
            }
        }
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        matches!(ended, RoomEvent::Ended { ref id, .. } if id == "r1"),
        "{ended:?}"
    );
    common::finish(&client, &ns, op).await;
}

/// A router on the Kubernetes runtime, serving its API on a loopback port.
struct Router {
    base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Router {
    async fn start(
        client: &kube::Client,
        ns: &str,
        secret: &std::path::Path,
        users: &SigningKey,
    ) -> Self {
        let mut cfg = Config::test();
        cfg.runtime = RuntimeKind::Kubernetes;
        cfg.namespace = ns.into();
        cfg.secret_file = Some(secret.into());
        cfg.public_url = Some("https://meet.example".into());
        let keys = KeySet::from_jwks(&JwkSet {
            keys: vec![users.jwk()],
        })
        .unwrap();
        let verifier = Verifier::with_keys(keys, Expect::new("users", "rendezvous"));
        let (ctx, events) =
            Ctx::kubernetes(cfg, verifier, &prometheus::Registry::new(), client.clone())
                .await
                .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let follower = ctx.clone().follow_events(events);
        let app =
            rendezvous_router::public_app(ctx, &rendezvous_service::HttpMetrics::new("router"));
        let server = tokio::spawn(async move {
            tokio::spawn(follower);
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, server }
    }

    /// `METHOD path` as `user`; status and JSON body.
    async fn call(
        &self,
        users: &SigningKey,
        user: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let now = rendezvous_auth::now_unix();
        let token = users
            .sign(&AccessClaims {
                sub: user.into(),
                name: display_name(user),
                iat: now,
                exp: now + 300,
                iss: "users".into(),
                aud: "rendezvous".into(),
            })
            .unwrap();
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// `POST /api/join/{code}` as `user`: the status and the error code, if any.
    async fn join(&self, users: &SigningKey, user: &str, code: &str) -> (u16, String) {
        let (status, body) = self
            .call(
                users,
                user,
                reqwest::Method::POST,
                &format!("/api/join/{code}"),
                None,
            )
            .await;
        let code = body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (status, code)
    }

    async fn room_jwks(&self) -> JwkSet {
        reqwest::get(format!("{}/.well-known/room-jwks.json", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The display name in `user`'s access tokens.
fn display_name(user: &str) -> String {
    format!("{user} display")
}

fn code_of(url: &serde_json::Value) -> String {
    url.as_str().unwrap().rsplit('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_restarted_router_keeps_its_rooms_invite_links_and_token_keys() {
    use reqwest::Method;
    let Some(client) = common::client().await else {
        return;
    };
    let ns = common::namespace(&client, "router-restart").await;
    let op = common::Operator::spawn(&client, common::args(&ns, "a", &[])).await;
    let dir = std::env::temp_dir().join(format!("rdv-router-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let secret = dir.join("router.secret");
    let users = SigningKey::generate().unwrap();

    let a = Router::start(&client, &ns, &secret, &users).await;
    let (status, room) = a
        .call(
            &users,
            "ada",
            Method::POST,
            "/api/rooms",
            Some(serde_json::json!({"kind": "chat", "title": "Tea"})),
        )
        .await;
    assert_eq!(status, 201, "{room}");
    let id = room["id"].as_str().unwrap().to_owned();
    let first = code_of(&room["inviteUrl"]);
    common::eventually(30, "the room to be ready", || async {
        let (_, r) = a
            .call(
                &users,
                "ada",
                Method::GET,
                &format!("/api/rooms/{id}"),
                None,
            )
            .await;
        (r["state"] == "ready").then_some(())
    })
    .await;
    let (status, limited) = a
        .call(
            &users,
            "ada",
            Method::POST,
            &format!("/api/rooms/{id}/invites"),
            Some(serde_json::json!({"maxUses": 2})),
        )
        .await;
    assert_eq!(status, 201, "{limited}");
    let limited_code = code_of(&limited["url"]);
    let (_, revoked) = a
        .call(
            &users,
            "ada",
            Method::POST,
            &format!("/api/rooms/{id}/invites"),
            None,
        )
        .await;
    let revoked_code = code_of(&revoked["url"]);
    let (status, _) = a
        .call(
            &users,
            "ada",
            Method::DELETE,
            &format!(
                "/api/rooms/{id}/invites/{}",
                revoked["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, joined) = a
        .call(
            &users,
            "bob",
            Method::POST,
            &format!("/api/join/{limited_code}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{joined}");
    let bobs_token = joined["token"].as_str().unwrap().to_owned();
    let jwks_a = a.room_jwks().await;
    a.server.abort();

    // The next router (same secret) adopts the room with its live invites.
    let b = Router::start(&client, &ns, &secret, &users).await;
    let (status, room) = b
        .call(
            &users,
            "ada",
            Method::GET,
            &format!("/api/rooms/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{room}");
    assert_eq!(room["state"], "ready");
    assert_eq!(room["creatorName"], display_name("ada"), "kept on the Room");
    assert_eq!(code_of(&room["inviteUrl"]), first);
    let invites = room["invites"].as_array().unwrap();
    let codes: Vec<String> = invites.iter().map(|i| code_of(&i["url"])).collect();
    assert_eq!(
        codes,
        [first.clone(), limited_code.clone(), revoked_code.clone()],
    );
    assert_eq!(invites[1]["uses"], 1, "bob's use was kept");
    assert_eq!(invites[2]["revoked"], true, "the revoked one stays revoked");
    // Room tokens minted before the restart still verify with the new router's keys.
    let jwks_b = b.room_jwks().await;
    assert_eq!(jwks_a.keys[0].kid, jwks_b.keys[0].kid);
    let claims: RoomClaims = KeySet::from_jwks(&jwks_b)
        .unwrap()
        .verify(&bobs_token, &Expect::new(tokens::ISSUER, tokens::AUDIENCE))
        .unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.room.as_str()),
        ("bob", id.as_str())
    );
    // The links behave as before: one use left on the limited one, none on the revoked.
    assert_eq!(
        b.join(&users, "cy", &limited_code).await,
        (200, String::new())
    );
    let (status, code) = b.join(&users, "dee", &limited_code).await;
    assert_eq!((status, code.as_str()), (410, "invite_used_up"));
    let (status, code) = b.join(&users, "eve", &revoked_code).await;
    assert_eq!((status, code.as_str()), (410, "invite_revoked"));
    // bob, admitted before the restart, may come back without spending a use.
    assert_eq!(
        b.join(&users, "bob", &limited_code).await,
        (200, String::new())
    );
    assert_eq!(b.join(&users, "fay", &first).await, (200, String::new()));

    // A router with another secret cannot honour the old links.
    b.server.abort();
    let c = Router::start(&client, &ns, &dir.join("other.secret"), &users).await;
    let (status, code) = c.join(&users, "gus", &first).await;
    assert_eq!((status, code.as_str()), (404, "invite_not_found"));
    let (status, _) = c
        .call(
            &users,
            "ada",
            Method::DELETE,
            &format!("/api/rooms/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let rooms: Api<Room> = Api::namespaced(client.clone(), &ns);
    assert!(
        rooms.get_opt(&id).await.unwrap().is_none(),
        "closed room is gone"
    );
    c.server.abort();
    std::fs::remove_dir_all(&dir).unwrap();
    common::finish(&client, &ns, op).await;
}

/// Two router replicas on one cluster and one secret: what one does, the other sees,
/// and a limited link's uses are counted once across both.
#[tokio::test]
async fn two_router_replicas_share_one_truth() {
    use reqwest::Method;
    let Some(client) = common::client().await else {
        return;
    };
    let ns = common::namespace(&client, "router-replicas").await;
    let op = common::Operator::spawn(&client, common::args(&ns, "a", &[])).await;
    let dir = std::env::temp_dir().join(format!("rdv-router-replicas-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let secret = dir.join("router.secret");
    let users = SigningKey::generate().unwrap();
    let a = Router::start(&client, &ns, &secret, &users).await;
    let b = Router::start(&client, &ns, &secret, &users).await;

    // Created on one, seen on the other as soon as its watch sees it.
    let (status, room) = a
        .call(
            &users,
            "ada",
            Method::POST,
            "/api/rooms",
            Some(serde_json::json!({"kind": "chat", "title": "Shared"})),
        )
        .await;
    assert_eq!(status, 201, "{room}");
    let id = room["id"].as_str().unwrap().to_owned();
    common::eventually(30, "the room to be ready on the other replica", || async {
        let (_, r) = b
            .call(
                &users,
                "ada",
                Method::GET,
                &format!("/api/rooms/{id}"),
                None,
            )
            .await;
        (r["state"] == "ready").then_some(())
    })
    .await;
    let (_, listed) = b.call(&users, "ada", Method::GET, "/api/rooms", None).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    // The creator's name travels on the Room object: b knows the room from its watch,
    // not from the request that created it.
    assert_eq!(listed[0]["creatorName"], display_name("ada"), "{listed}");
    let obj = Api::<Room>::namespaced(client.clone(), &ns)
        .get(&id)
        .await
        .unwrap();
    assert_eq!(obj.spec.creator_name, display_name("ada"));
    // And the preview of its link, on either replica, without a token.
    let first = code_of(&room["inviteUrl"]);
    for r in [&a, &b] {
        let preview: serde_json::Value = reqwest::get(format!("{}/api/join/{first}", r.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            preview,
            serde_json::json!({"title": "Shared", "kind": "chat",
                "creatorName": display_name("ada"), "state": "ready"})
        );
        // The link opens the web page on the same origin, under the page's policy.
        let page = reqwest::get(format!("{}/join/{first}", r.base))
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        let csp = page.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("connect-src 'self'"), "{csp}");
        assert!(page.text().await.unwrap().contains("/assets/"));
    }

    // An invite made on b; 20 people at once over both replicas; 5 get in.
    let (status, limited) = b
        .call(
            &users,
            "ada",
            Method::POST,
            &format!("/api/rooms/{id}/invites"),
            Some(serde_json::json!({"maxUses": 5})),
        )
        .await;
    assert_eq!(status, 201, "{limited}");
    let code = code_of(&limited["url"]);
    common::eventually(10, "the invite to reach replica a", || async {
        let (s, _) = a.join(&users, "ada", &code).await;
        (s == 200).then_some(())
    })
    .await;
    let joins = (0..20).map(|i| {
        let (r, users, code) = (if i % 2 == 0 { &a } else { &b }, &users, &code);
        async move { r.join(users, &format!("guest{i}"), code).await }
    });
    let results = futures::future::join_all(joins).await;
    let admitted = results.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = results.iter().filter(|(s, _)| *s != 200).collect();
    assert_eq!(admitted, 5, "{results:?}");
    assert!(
        refused
            .iter()
            .all(|(s, c)| *s == 410 && c == "invite_used_up"),
        "{refused:?}"
    );
    let (_, seen) = a
        .call(
            &users,
            "ada",
            Method::GET,
            &format!("/api/rooms/{id}"),
            None,
        )
        .await;
    assert_eq!(seen["invites"][1]["uses"], 5, "{seen}");

    // The per-user room limit counts what the cluster holds, not one replica.
    for i in 0..9 {
        let r = if i % 2 == 0 { &a } else { &b };
        let (status, body) = r
            .call(
                &users,
                "ada",
                Method::POST,
                "/api/rooms",
                Some(serde_json::json!({"kind": "chat", "title": format!("More {i}")})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        // Let the other replica's watch see it before the next create.
        let other = if i % 2 == 0 { &b } else { &a };
        let want = i + 2;
        common::eventually(10, "the other replica to see the room", || async {
            let (_, l) = other
                .call(&users, "ada", Method::GET, "/api/rooms", None)
                .await;
            (l.as_array().map(Vec::len) == Some(want)).then_some(())
        })
        .await;
    }
    let (status, body) = b
        .call(
            &users,
            "ada",
            Method::POST,
            "/api/rooms",
            Some(serde_json::json!({"kind": "chat", "title": "Eleventh"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("room_limit_reached"))
    );

    // Closed on b: gone on a, its links dead there too.
    let (status, _) = b
        .call(
            &users,
            "ada",
            Method::DELETE,
            &format!("/api/rooms/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    common::eventually(10, "replica a to see the close", || async {
        let (s, c) = a.join(&users, "late", &code).await;
        (s == 410 && c == "room_closed").then_some(())
    })
    .await;
    a.server.abort();
    b.server.abort();
    std::fs::remove_dir_all(&dir).unwrap();
    common::finish(&client, &ns, op).await;
}
