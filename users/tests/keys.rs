//! Signing keys over HTTP: persistence, rotation with publish-ahead, and two replicas
//! on one database, on SQLite and on PostgreSQL.

mod common;

use base64::Engine as _;
use common::TestApp;
use rendezvous_api::{AccessClaims, JwkSet};
use rendezvous_auth::{now_unix, Expect, KeySet, Verifier};
use rendezvous_users::keyring::PUBLISH_AHEAD;
use serde_json::Value;

both!(
    keys_persist_rotate_and_old_tokens_verify_until_expiry,
    replicas_rotating_keys_never_sign_with_a_key_a_cached_jwks_lacks,
);

fn token(session: &Value) -> &str {
    session["accessToken"].as_str().expect("accessToken")
}

/// The `kid` in a JWT's header.
fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    serde_json::from_slice::<Value>(&json).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn jwks(app: &TestApp) -> JwkSet {
    app.http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn mk_expect() -> Expect {
    Expect::new("rendezvous-users", "rendezvous")
}

/// A verifier holding exactly this JWKS, as a cache does: it never re-fetches.
fn cached(jwks: &JwkSet) -> Verifier {
    Verifier::with_keys(KeySet::from_jwks(jwks).unwrap(), mk_expect())
}

async fn keys_persist_rotate_and_old_tokens_verify_until_expiry(app: TestApp) {
    let s = app.register("mia").await;
    let old = token(&s).to_owned();
    let before = jwks(&app).await;
    assert_eq!(before.keys.len(), 1);
    assert_eq!(before.keys[0].crv, "Ed25519");

    // Another verifier (as the router would hold) checks tokens against the JWKS.
    let verifier = Verifier::from_jwks_url(app.url("/.well-known/jwks.json"), mk_expect());
    let claims: AccessClaims = verifier.verify(&old).await.unwrap();
    assert_eq!(claims.sub, s["user"]["id"]);

    // A restart on the same database keeps the key.
    let again = common::spawn_on(app.database_url.clone(), None, |_| {}).await;
    assert_eq!(jwks(&again).await, before);
    assert_eq!(again.get("/api/users/me", &old).await.status, 200);

    // Rotate: the new key is published at once but signs only after PUBLISH_AHEAD.
    let now = now_unix();
    let ahead = PUBLISH_AHEAD.as_secs() as i64;
    app.ctx.keys.sync_at(now, true).await.unwrap();
    assert_eq!(jwks(&app).await.keys.len(), 2);
    assert_eq!(app.ctx.keys.signer().kid(), before.keys[0].kid);
    app.ctx.keys.sync_at(now + ahead, false).await.unwrap();
    let after = jwks(&app).await;
    assert_eq!(after.keys.len(), 2);
    let new_kid = app.ctx.keys.signer().kid().to_owned();
    assert_ne!(new_kid, before.keys[0].kid);
    let fresh = app.login("mia", "password-of-mia").await.body;
    assert_eq!(kid_of(token(&fresh)), new_kid);
    assert_eq!(
        app.get("/api/users/me", &old).await.status,
        200,
        "old key still verifies"
    );
    assert_eq!(app.get("/api/users/me", token(&fresh)).await.status, 200);

    // Once every token of the old key has expired, it is no longer published.
    app.ctx
        .keys
        .sync_at(now + ahead + 900 + 121, false)
        .await
        .unwrap();
    let later = jwks(&app).await;
    assert_eq!(later.keys.len(), 1);
    assert_eq!(later.keys[0].kid, new_kid);
    let r = app.get("/api/users/me", &old).await;
    assert_eq!(r.status, 401);
}

/// Two replicas on one database. One rotates; right after, tokens from either verify
/// against a JWKS cached before the rotation, and on the other replica. Once the new
/// key signs, a JWKS cached from the replica that had not rotated (one sync after the
/// rotation) knows it.
async fn replicas_rotating_keys_never_sign_with_a_key_a_cached_jwks_lacks(a: TestApp) {
    let b = common::spawn_on(a.database_url.clone(), None, |_| {}).await;
    a.register("ren").await;
    let old_kid = a.ctx.keys.signer().kid().to_owned();
    let cached_before = cached(&jwks(&b).await);

    let now = now_unix();
    a.ctx.keys.sync_at(now, true).await.unwrap();
    for (name, replica) in [("a", &a), ("b", &b)] {
        let s = replica.login("ren", "password-of-ren").await;
        assert_eq!(s.status, 200, "log-in on {name}: {}", s.body);
        let t = token(&s.body);
        assert_eq!(kid_of(t), old_kid, "{name} signs with the published key");
        let v: Result<AccessClaims, _> = cached_before.verify(t).await;
        assert!(
            v.is_ok(),
            "token from {name} on a pre-rotation cache: {v:?}"
        );
        for (other, peer) in [("a", &a), ("b", &b)] {
            let r = peer.get("/api/users/me", t).await;
            assert_eq!(r.status, 200, "token from {name} on {other}: {}", r.body);
        }
    }

    // B's next housekeeping sync publishes the new key well before it signs.
    b.ctx
        .keys
        .sync_at(
            now + rendezvous_users::keyring::SYNC_PERIOD.as_secs() as i64,
            false,
        )
        .await
        .unwrap();
    let cached_later = cached(&jwks(&b).await);
    let at = now + PUBLISH_AHEAD.as_secs() as i64;
    a.ctx.keys.sync_at(at, false).await.unwrap();
    b.ctx.keys.sync_at(at, false).await.unwrap();
    let new_kid = a.ctx.keys.signer().kid().to_owned();
    assert_ne!(new_kid, old_kid, "the new key signs once active");
    assert_eq!(b.ctx.keys.signer().kid(), new_kid, "on both replicas");
    for (name, replica) in [("a", &a), ("b", &b)] {
        let s = replica.login("ren", "password-of-ren").await;
        let t = token(&s.body);
        assert_eq!(kid_of(t), new_kid);
        let v: Result<AccessClaims, _> = cached_later.verify(t).await;
        assert!(
            v.is_ok(),
            "token from {name} on a cache from before activation: {v:?}"
        );
        for peer in [&a, &b] {
            assert_eq!(peer.get("/api/users/me", t).await.status, 200);
        }
    }
}
