//! Leader election against the real API server when the leader's API answers stall:
//! the stalled leader stops acting within its renew deadline, and the standby takes
//! over only after that, judged by its own observation of the Lease.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::proxy::{api_server_addr, Proxy};
use common::{client, eventually, operator_client};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use rendezvous_operator::leader::{self, Elector, LeaseConfig};
use tokio::sync::watch;
use tokio::time::Instant;

/// Every start and end of a term, by replica, on this process's one clock.
type Log = Arc<Mutex<Vec<(&'static str, &'static str, Instant)>>>;

const DURATION: Duration = Duration::from_secs(3);
const RENEW_DEADLINE: Duration = Duration::from_secs(2);

fn cfg(ns: &str, identity: &str) -> LeaseConfig {
    LeaseConfig {
        name: "rendezvous-operator".into(),
        namespace: ns.into(),
        identity: identity.into(),
        duration: DURATION,
        renew_deadline: RENEW_DEADLINE,
        retry_period: Duration::from_millis(250),
    }
}

/// Records `start` when created and `end` when dropped: exactly while a term acts.
struct Acting(&'static str, Log);

impl Drop for Acting {
    fn drop(&mut self) {
        self.1.lock().unwrap().push((self.0, "end", Instant::now()));
    }
}

/// A replica: `leader::lead` with a term that only records when it acts.
fn replica(
    who: &'static str,
    mut elector: Elector,
    log: Log,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<rendezvous_operator::Result<()>> {
    tokio::spawn(async move {
        let term_stop = stop.clone();
        leader::lead(&mut elector, stop, || {
            log.lock().unwrap().push((who, "start", Instant::now()));
            let acting = Acting(who, log.clone());
            let mut stop = term_stop.clone();
            async move {
                let _acting = acting;
                let _ = stop.wait_for(|s| *s).await;
                Ok(())
            }
        })
        .await
    })
}

fn when(log: &Log, who: &str, what: &str) -> Vec<Instant> {
    let log = log.lock().unwrap();
    log.iter()
        .filter(|(w, e, _)| *w == who && *e == what)
        .map(|(_, _, t)| *t)
        .collect()
}

async fn renew_time(leases: &Api<Lease>) -> Option<String> {
    let lease = leases.get_opt("rendezvous-operator").await.ok()??;
    Some(format!("{:?}", lease.spec?.renew_time?))
}

#[tokio::test]
async fn a_stalled_leader_steps_down_before_another_takes_over() {
    let Some(admin) = client().await else { return };
    let ns = common::namespace(&admin, "op-stall").await;
    let proxy = Proxy::start(api_server_addr().await).await;
    // Both replicas act as the operator's ServiceAccount; only A's traffic crosses the proxy.
    let a_client = operator_client(&ns, Some(&proxy.url())).await;
    let b_client = operator_client(&ns, None).await;
    let log = Log::default();
    let (stop_tx, stop) = watch::channel(false);
    let a = replica(
        "a",
        Elector::new(a_client, cfg(&ns, "a")),
        log.clone(),
        stop.clone(),
    );
    eventually(10, "a to lead", || async {
        (!when(&log, "a", "start").is_empty()).then_some(())
    })
    .await;
    let b = replica(
        "b",
        Elector::new(b_client, cfg(&ns, "b")),
        log.clone(),
        stop.clone(),
    );

    // A keeps renewing while B watches: the record changes, B waits.
    let leases: Api<Lease> = Api::namespaced(admin.clone(), &ns);
    let first = renew_time(&leases).await;
    eventually(10, "a to renew", || async {
        let now = renew_time(&leases).await;
        (now != first).then_some(())
    })
    .await;
    assert!(
        when(&log, "b", "start").is_empty(),
        "b acted while a renewed"
    );

    // A's API server stops answering (its requests and our answers are held).
    let stalled_at = Instant::now();
    proxy.pause();
    eventually(20, "b to take over", || async {
        (!when(&log, "b", "start").is_empty()).then_some(())
    })
    .await;
    let a_end = *when(&log, "a", "end")
        .first()
        .expect("a stopped acting before b started");
    let b_start = when(&log, "b", "start")[0];
    assert!(
        a_end < b_start,
        "a acted until {a_end:?}, b from {b_start:?}"
    );
    // A's last confirmed renewal started before the stall, so by its own clock its
    // deadline passed at most RENEW_DEADLINE after it (plus scheduling slack).
    assert!(
        a_end <= stalled_at + RENEW_DEADLINE + Duration::from_millis(500),
        "a stepped down {:?} after the stall",
        a_end - stalled_at
    );
    // B counted a whole lease duration from when it last saw A's record change.
    assert!(b_start >= a_end, "b must not overlap a");

    // A's answers come back: it finds B holding the Lease and stays a standby while B
    // renews.
    proxy.resume();
    let seen = renew_time(&leases).await;
    for _ in 0..2 {
        let before = renew_time(&leases).await;
        eventually(10, "b to renew", || async {
            (renew_time(&leases).await != before).then_some(())
        })
        .await;
    }
    assert_ne!(renew_time(&leases).await, seen);
    assert_eq!(
        when(&log, "a", "start").len(),
        1,
        "a led again while b held"
    );
    let holder = leases
        .get("rendezvous-operator")
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(holder.holder_identity.as_deref(), Some("b"));

    stop_tx.send_replace(true);
    for r in [a, b] {
        tokio::time::timeout(Duration::from_secs(10), r)
            .await
            .expect("replica stops in time")
            .expect("replica task")
            .expect("replica exits cleanly");
    }
    common::delete_namespace(&admin, &ns).await;
}
