//! Verifier tests: fixed keys, and a real HTTP JWKS endpoint with rotation.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rendezvous_api::{AccessClaims, JwkSet};

use super::*;
use crate::{now_unix, SigningKey};

fn mk_claims(exp_in: i64) -> AccessClaims {
    let now = now_unix();
    AccessClaims {
        sub: "u1".into(),
        name: "Ada".into(),
        iat: now,
        exp: now + exp_in,
        iss: "iss".into(),
        aud: "aud".into(),
    }
}

fn mk_expect() -> Expect {
    Expect::new("iss", "aud")
}

fn set_of(keys: &[&SigningKey]) -> KeySet {
    KeySet::from_jwks(&JwkSet {
        keys: keys.iter().map(|k| k.jwk()).collect(),
    })
    .unwrap()
}

#[tokio::test]
async fn fixed_keys_accept_good_and_refuse_bad_tokens() {
    let key = SigningKey::generate().unwrap();
    let other = SigningKey::generate().unwrap();
    let v = Verifier::with_keys(set_of(&[&key]), mk_expect());

    let good = key.sign(&mk_claims(60)).unwrap();
    let claims: AccessClaims = v.verify(&good).await.unwrap();
    assert_eq!(claims.sub, "u1");

    let expired = key.sign(&mk_claims(-60)).unwrap();
    assert!(matches!(
        v.verify::<AccessClaims>(&expired).await,
        Err(AuthError::Expired)
    ));

    let unknown = other.sign(&mk_claims(60)).unwrap();
    assert!(matches!(
        v.verify::<AccessClaims>(&unknown).await,
        Err(AuthError::UnknownKey)
    ));

    // Same kid, tampered payload: the signature no longer matches.
    let mut parts: Vec<String> = good.split('.').map(String::from).collect();
    let mut forged = mk_claims(60);
    forged.sub = "admin".into();
    parts[1] = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        serde_json::to_vec(&forged).unwrap(),
    );
    let tampered = parts.join(".");
    assert!(matches!(
        v.verify::<AccessClaims>(&tampered).await,
        Err(AuthError::BadSignature)
    ));

    let mut wrong_aud = mk_claims(60);
    wrong_aud.aud = "elsewhere".into();
    let t = key.sign(&wrong_aud).unwrap();
    assert!(matches!(
        v.verify::<AccessClaims>(&t).await,
        Err(AuthError::WrongAudience)
    ));

    assert!(matches!(
        v.verify::<AccessClaims>("not-a-jwt").await,
        Err(AuthError::Malformed(_))
    ));
}

#[test]
fn signing_key_round_trips_through_pkcs8_with_a_stable_kid() {
    let key = SigningKey::generate().unwrap();
    let again = SigningKey::from_pkcs8(key.pkcs8()).unwrap();
    assert_eq!(key.kid(), again.kid());
    assert_eq!(key.jwk(), again.jwk());
    assert!(!format!("{key:?}").contains(&format!("{:?}", key.pkcs8())));
}

#[test]
fn hs256_tokens_are_refused_before_key_lookup() {
    let header = jsonwebtoken::Header {
        kid: Some("k".into()),
        ..Default::default()
    };
    let t = jsonwebtoken::encode(
        &header,
        &mk_claims(60),
        &jsonwebtoken::EncodingKey::from_secret(b"x"),
    )
    .unwrap();
    assert!(matches!(token_kid(&t), Err(AuthError::Malformed(_))));
}

/// Serve a JWKS on loopback; the returned handles let the test rotate keys and count fetches.
async fn serve_jwks(initial: JwkSet) -> (String, Arc<Mutex<JwkSet>>, Arc<AtomicUsize>) {
    let doc = Arc::new(Mutex::new(initial));
    let hits = Arc::new(AtomicUsize::new(0));
    let (d, h) = (doc.clone(), hits.clone());
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let (d, h) = (d.clone(), h.clone());
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                axum::Json(d.lock().unwrap().clone())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/jwks"), doc, hits)
}

#[tokio::test]
async fn jwks_verifier_fetches_once_and_refetches_on_rotation() {
    let k1 = SigningKey::generate().unwrap();
    let (url, doc, hits) = serve_jwks(JwkSet {
        keys: vec![k1.jwk()],
    })
    .await;
    let v = Verifier::from_jwks_url(url, mk_expect());

    for _ in 0..3 {
        let _: AccessClaims = v.verify(&k1.sign(&mk_claims(60)).unwrap()).await.unwrap();
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "cached after the first fetch"
    );

    // Rotation: the issuer publishes k2 beside k1. A k2 token is unknown to the cache,
    // but within MIN_REFETCH the verifier must not hit the issuer again.
    let k2 = SigningKey::generate().unwrap();
    doc.lock().unwrap().keys.push(k2.jwk());
    let t2 = k2.sign(&mk_claims(60)).unwrap();
    assert!(matches!(
        v.verify::<AccessClaims>(&t2).await,
        Err(AuthError::UnknownKey)
    ));
    assert_eq!(hits.load(Ordering::SeqCst), 1, "refetch is rate limited");

    // Once MIN_REFETCH has passed the unknown kid triggers one refetch and verifies.
    *v.inner.source.as_ref().unwrap().last_fetch.lock().await =
        Some(Instant::now() - Verifier::MIN_REFETCH);
    let _: AccessClaims = v.verify(&t2).await.unwrap();
    let _: AccessClaims = v.verify(&k1.sign(&mk_claims(60)).unwrap()).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn jwks_verifier_reports_an_unreachable_issuer() {
    let key = SigningKey::generate().unwrap();
    // Port 9 (discard) on loopback: nothing listens, the connection is refused.
    let v = Verifier::from_jwks_url("http://127.0.0.1:9/jwks", mk_expect());
    let err = v
        .verify::<AccessClaims>(&key.sign(&mk_claims(60)).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::KeysUnavailable(_)));
    assert!(!err.is_client_error());
}

#[tokio::test]
async fn a_key_from_a_seed_is_stable_and_verifies() {
    // RFC 8032 section 7.1, test 1: the seed and the public key it must yield.
    let seed: [u8; 32] = hex32("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    let public = hex32("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    let a = SigningKey::from_seed(&seed).unwrap();
    let b = SigningKey::from_seed(&seed).unwrap();
    assert_eq!(a.kid(), b.kid(), "same seed, same kid");
    assert_eq!(a.pkcs8(), b.pkcs8());
    let x = a.jwk().x;
    let decoded = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        x.as_bytes(),
    )
    .unwrap();
    assert_eq!(decoded, public);
    // The PKCS#8 document loads back, and tokens verify against the JWK.
    let again = SigningKey::from_pkcs8(a.pkcs8()).unwrap();
    assert_eq!(again.kid(), a.kid());
    let v = Verifier::with_keys(set_of(&[&a]), mk_expect());
    let token = again.sign(&mk_claims(60)).unwrap();
    assert_eq!(v.verify::<AccessClaims>(&token).await.unwrap().sub, "u1");
    let other = SigningKey::from_seed(&[7; 32]).unwrap();
    assert_ne!(other.kid(), a.kid());
}

fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}
