//! Log-in and token-verification cost, as medians, each against a raw baseline
//! measured in the same run:
//! - log-in (`POST /api/sessions` over loopback HTTP, SQLite) vs one argon2id verify;
//! - access-token verification (`Verifier::verify`) vs one raw Ed25519 verify.
//!
//! Run: `cargo bench -p rendezvous-users --bench auth`

use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use rendezvous_api::{AccessClaims, JwkSet};
use rendezvous_auth::{Expect, KeySet, SigningKey, Verifier};
use serde_json::json;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn fmt(d: Duration) -> String {
    if d >= Duration::from_millis(1) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} µs", d.as_secs_f64() * 1e6)
    }
}

/// Median of `rounds` measurements, each the mean of `batch` calls of `f`.
fn bench(rounds: usize, batch: u32, mut f: impl FnMut()) -> Duration {
    f(); // warm-up
    let samples = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed() / batch
        })
        .collect();
    median(samples)
}

fn report(what: &str, ours: Duration, base_name: &str, base: Duration) {
    println!(
        "{what:<28} median {:>10}   baseline ({base_name}) {:>10}   ratio {:.2}x",
        fmt(ours),
        fmt(base),
        ours.as_secs_f64() / base.as_secs_f64()
    );
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = std::env::temp_dir().join(format!("rendezvous-bench-{}", std::process::id()));
    let url = format!("sqlite://{}?mode=rwc", dir.join("users.db").display());

    // === log-in ===
    let (base, ctx) = rt.block_on(async {
        let metrics = rendezvous_service::HttpMetrics::new("users");
        let ctx = rendezvous_users::Ctx::new(rendezvous_users::Config::test(url), &metrics)
            .await
            .unwrap();
        let app = rendezvous_users::app(ctx.clone(), &metrics);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap()
        });
        (format!("http://{addr}"), ctx)
    });
    let http = reqwest::Client::new();
    rt.block_on(async {
        let r = http
            .post(format!("{base}/api/users"))
            .json(&json!({"email": "b@example.com", "username": "bench", "displayName": "B", "password": "benchmark password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    });
    let login = bench(31, 1, || {
        rt.block_on(async {
            let r = http
                .post(format!("{base}/api/sessions"))
                .json(&json!({"login": "bench", "password": "benchmark password"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        })
    });
    let phc = rt.block_on(async {
        let u = ctx.store.user_by_login("bench").await.unwrap().unwrap();
        u.password_hash
    });
    let hash = PasswordHash::new(&phc).unwrap();
    let params = argon2::Params::new(19 * 1024, 2, 1, None).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let raw_argon = bench(31, 1, || {
        argon.verify_password(b"benchmark password", &hash).unwrap();
    });

    // === token verification ===
    let key = SigningKey::generate().unwrap();
    let now = rendezvous_auth::now_unix();
    let claims = AccessClaims {
        sub: "7a1c3f9e-0000-4000-8000-000000000000".into(),
        name: "Bench Mark".into(),
        iat: now,
        exp: now + 900,
        iss: "rendezvous-users".into(),
        aud: "rendezvous".into(),
    };
    let token = key.sign(&claims).unwrap();
    let verifier = Verifier::with_keys(
        KeySet::from_jwks(&JwkSet {
            keys: vec![key.jwk()],
        })
        .unwrap(),
        Expect::new("rendezvous-users", "rendezvous"),
    );
    let verify = bench(31, 2000, || {
        let c: AccessClaims = rt.block_on(verifier.verify(&token)).unwrap();
        assert_eq!(c.exp, claims.exp);
    });
    // Baseline: the signature check alone, on the same bytes.
    let (signing_input, sig_b64) = token.rsplit_once('.').unwrap();
    let sig =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig_b64).unwrap();
    let x = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &key.jwk().x,
    )
    .unwrap();
    let pk = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, x);
    let raw_ed = bench(31, 2000, || {
        pk.verify(signing_input.as_bytes(), &sig).unwrap();
    });

    println!(
        "rendezvous-users auth benchmark ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    report("log-in (HTTP, SQLite)", login, "argon2id verify", raw_argon);
    report(
        "access-token verification",
        verify,
        "Ed25519 verify",
        raw_ed,
    );
    let _ = std::fs::remove_dir_all(dir);
}
