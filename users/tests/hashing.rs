//! Password hashing under load: a burst of log-ins is bounded, shed with `503 busy`
//! and `Retry-After`, and never fails with anything else.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Db;
use serde_json::json;

/// The bound the test configures: below the burst, so the bound is what shapes it.
const BOUND: usize = 2;

async fn burst(app: &common::TestApp, n: usize) -> Vec<(u16, Option<String>, String)> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let http = app.http.clone();
            let url = app.url("/api/sessions");
            // A mix: right password, wrong password, unknown user.
            let (login, password) = match i % 3 {
                0 => ("hana".to_owned(), "password-of-hana".to_owned()),
                1 => ("hana".to_owned(), "not her password".to_owned()),
                _ => (format!("ghost{i}"), "whatever-password".to_owned()),
            };
            tokio::spawn(async move {
                let res = http
                    .post(url)
                    .json(&json!({"login": login, "password": password}))
                    .send()
                    .await
                    .expect("answered");
                let status = res.status().as_u16();
                let retry = res
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body: serde_json::Value = res.json().await.unwrap_or_default();
                let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
                (status, retry, code)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_logins_stay_within_the_hash_bound() {
    let app = common::spawn_with(Db::Sqlite, |c| {
        c.password_hash_concurrency = std::num::NonZeroUsize::new(BOUND);
        // Short enough that a 50-request burst outlasts it, so some are shed.
        c.password_hash_wait = Duration::from_millis(50);
    })
    .await
    .unwrap();
    app.register("hana").await;

    let answers = burst(&app, 50).await;
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for (status, retry, code) in &answers {
        *by_status.entry(*status).or_default() += 1;
        match status {
            200 => {}
            401 => assert_eq!(code, "invalid_credentials"),
            503 => {
                assert_eq!(code, "busy");
                let secs: u64 = retry
                    .as_deref()
                    .expect("Retry-After on 503")
                    .parse()
                    .unwrap();
                assert!((1..=5).contains(&secs), "Retry-After {secs}");
            }
            other => panic!("unexpected status {other} ({code}); all: {by_status:?}"),
        }
    }
    let peak = app.ctx.hasher.peak_in_flight();
    assert!(
        (1..=BOUND).contains(&peak),
        "{peak} hashes ran at once, bound {BOUND}"
    );
    assert!(by_status.get(&503).is_some_and(|n| *n > 0), "{by_status:?}");
    // Which requests win a slot is a race (on a slow machine only the first two may),
    // so the first phase asserts that some were served, not which answer they got.
    let served = by_status.get(&200).unwrap_or(&0) + by_status.get(&401).unwrap_or(&0);
    assert!(served >= 1, "{by_status:?}");
    assert_eq!(app.ctx.hasher.in_flight(), 0, "every slot given back");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("rendezvous_users_password_hashes_in_flight 0"),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "rendezvous_users_password_hash_busy_total {}",
        by_status[&503]
    )));

    // With a wait long enough for the queue to drain, the same burst is all served.
    let app = common::spawn_with(Db::Sqlite, |c| {
        c.password_hash_concurrency = std::num::NonZeroUsize::new(BOUND);
        c.password_hash_wait = Duration::from_secs(60);
    })
    .await
    .unwrap();
    app.register("hana").await;
    let answers = burst(&app, 50).await;
    // Every third request carries hana's right password: those, and only those, log in.
    for (i, (status, _, _)) in answers.iter().enumerate() {
        let want = if i % 3 == 0 { 200 } else { 401 };
        assert_eq!(*status, want, "request {i}: {answers:?}");
    }
    assert!(app.ctx.hasher.peak_in_flight() <= BOUND);
}
