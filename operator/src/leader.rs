//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never both act.
//!
//! The rules are client-go's: a candidate takes the Lease when nobody holds it, or when
//! the holder's record has not changed for `leaseDurationSeconds` *as this replica has
//! watched it* (its own clock only; the holder's `renewTime` is written by another
//! clock and is never compared with ours). Every write carries the `resourceVersion`
//! it was decided on, so two candidates racing for an expired Lease cannot both win:
//! the API server refuses the second with 409.
//!
//! The leader renews every `retry_period` and must succeed within `renew_deadline` of
//! its last confirmed renewal (each attempt is cut off at that deadline, so a stalled
//! API server cannot hold it); otherwise it stops acting. Because a candidate only
//! starts counting when it *sees* the last renewal, which is after the leader sent it,
//! and `renew_deadline < duration`, the old leader has stopped before anyone may take
//! over. [`decide`] and [`Observed`] are the pure part, tested below; [`Elector`] does
//! I/O and [`lead`] runs a term of work only while the Lease is held.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{Error, Result};

/// What a candidate should do with the Lease as it is now.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// No Lease object: create it, holding it.
    Create,
    /// Free or expired: take it over (a new term).
    Acquire,
    /// Ours: renew it.
    Renew,
    /// Someone else holds it and it has not expired.
    Wait,
}

/// When this replica last saw the Lease's record change (client-go's `observedTime`).
#[derive(Debug, Default)]
pub struct Observed {
    spec: Option<LeaseSpec>,
    at: Option<Instant>,
}

impl Observed {
    /// Record the Lease's spec as seen at `now`; the instant the record last changed.
    /// An unchanged record keeps its first instant, so a holder that stopped renewing
    /// expires `leaseDurationSeconds` after we first saw its last renewal.
    pub fn update(&mut self, spec: Option<&LeaseSpec>, now: Instant) -> Instant {
        match self.at {
            Some(at) if self.spec.as_ref() == spec => at,
            _ => {
                self.spec = spec.cloned();
                self.at = Some(now);
                now
            }
        }
    }
}

/// The pure rule. `observed_at`: when this replica saw the current record first (see
/// [`Observed`]); `now` is injected so tests need no clock.
pub fn decide(lease: Option<&Lease>, me: &str, observed_at: Instant, now: Instant) -> Decision {
    let Some(lease) = lease else {
        return Decision::Create;
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.unwrap_or_default();
    if holder == me {
        return Decision::Renew;
    }
    if holder.is_empty() {
        return Decision::Acquire;
    }
    let secs = u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0);
    if observed_at + Duration::from_secs(secs) <= now {
        Decision::Acquire
    } else {
        Decision::Wait
    }
}

/// Lease settings (from the operator's flags).
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// This replica's identity (the Pod name in a cluster).
    pub identity: String,
    /// How long a Lease stays valid without renewal (whole seconds in the record).
    pub duration: Duration,
    /// How long after its last confirmed renewal a leader keeps acting while it cannot
    /// renew. Below `duration`, so it has stopped before a candidate may take over.
    pub renew_deadline: Duration,
    /// How often the leader renews and a candidate tries again.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// client-go's rule: `retry_period < renew_deadline < duration`, else leadership is
    /// not safe (or not renewable). The duration is checked as written (whole seconds).
    pub fn check(&self) -> Result<(), String> {
        let written = Duration::from_secs(self.duration.as_secs().max(1));
        if self.renew_deadline >= written {
            return Err(format!(
                "lease renew deadline {:?} must be shorter than the lease duration {written:?}",
                self.renew_deadline
            ));
        }
        if self.retry_period >= self.renew_deadline {
            return Err(format!(
                "lease retry period {:?} must be shorter than the renew deadline {:?}",
                self.retry_period, self.renew_deadline
            ));
        }
        Ok(())
    }
}

/// Takes and keeps the Lease.
pub struct Elector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    observed: Observed,
}

impl Elector {
    pub fn new(client: kube::Client, cfg: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            observed: Observed::default(),
        }
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.cfg
    }

    fn spec(&self, now: Timestamp, old: Option<&LeaseSpec>, new_term: bool) -> LeaseSpec {
        let old = old.cloned().unwrap_or_default();
        let transitions = old.lease_transitions.unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(self.cfg.duration.as_secs().max(1) as i32),
            acquire_time: if new_term {
                Some(MicroTime(now))
            } else {
                old.acquire_time
            },
            // For humans and other tools only: no replica compares it with its clock.
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions + i32::from(new_term)),
            ..LeaseSpec::default()
        }
    }

    /// One attempt to acquire or renew. `Ok(true)`: this replica holds the Lease now.
    /// Not bounded by itself: callers cut it off at their deadline.
    pub async fn try_hold(&mut self) -> Result<bool> {
        let current = self.api.get_opt(&self.cfg.name).await?;
        let seen = Instant::now();
        let observed_at = self
            .observed
            .update(current.as_ref().and_then(|l| l.spec.as_ref()), seen);
        let decision = decide(current.as_ref(), &self.cfg.identity, observed_at, seen);
        let now = Timestamp::now();
        let result = match (decision, current) {
            (Decision::Wait, _) => return Ok(false),
            (Decision::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.cfg.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.spec(now, None, true)),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (d, Some(mut lease)) => {
                // `replace` keeps metadata.resourceVersion: a concurrent writer gets 409.
                lease.spec = Some(self.spec(now, lease.spec.as_ref(), d == Decision::Acquire));
                self.api
                    .replace(&self.cfg.name, &PostParams::default(), &lease)
                    .await
            }
            (_, None) => unreachable!("decide() returns Create when there is no Lease"),
        };
        match result {
            Ok(lease) => {
                self.observed.update(lease.spec.as_ref(), Instant::now());
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(Error::Lease(e.to_string())),
        }
    }

    /// Give the Lease up (shutdown), so a standby takes over at once. Call only after
    /// this replica stopped acting. Bounded by the renew deadline.
    pub async fn release(&self) {
        let attempt = async {
            let Ok(Some(mut lease)) = self.api.get_opt(&self.cfg.name).await else {
                return;
            };
            let mut spec = lease.spec.clone().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
                return;
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            lease.spec = Some(spec);
            if let Err(e) = self
                .api
                .replace(&self.cfg.name, &PostParams::default(), &lease)
                .await
            {
                tracing::warn!(error = %e, "could not release the leader lease");
            }
        };
        if tokio::time::timeout(self.cfg.renew_deadline, attempt)
            .await
            .is_err()
        {
            tracing::warn!("releasing the leader lease timed out");
        }
    }

    /// Wait until this replica holds the Lease; the instant the winning attempt started
    /// (the leader's renewal deadline counts from there: the record cannot be older).
    pub async fn acquire(&mut self) -> Instant {
        loop {
            let started = Instant::now();
            match tokio::time::timeout(self.cfg.renew_deadline, self.try_hold()).await {
                Ok(Ok(true)) => return started,
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "leader election attempt failed"),
                Err(_) => tracing::warn!("leader election attempt timed out"),
            }
            tokio::time::sleep(self.cfg.retry_period).await;
        }
    }

    /// Keep renewing from `renewed_at` (when the last confirmed write started);
    /// resolves when leadership is lost or not confirmed within the renew deadline.
    pub async fn hold(&mut self, mut renewed_at: Instant) {
        loop {
            let deadline = renewed_at + self.cfg.renew_deadline;
            match tokio::time::timeout_at(deadline, self.renew()).await {
                Ok(Some(started)) => renewed_at = started,
                Ok(None) => {
                    tracing::warn!("another replica holds the leader lease");
                    return;
                }
                Err(_) => {
                    tracing::warn!(
                        "leader lease not renewed within the renew deadline; stepping down"
                    );
                    return;
                }
            }
        }
    }

    /// After a retry period, try until an attempt succeeds (`Some`: when it started) or
    /// finds another holder (`None`). Unbounded: [`hold`](Self::hold) cuts it off.
    async fn renew(&mut self) -> Option<Instant> {
        loop {
            tokio::time::sleep(self.cfg.retry_period).await;
            let started = Instant::now();
            match self.try_hold().await {
                Ok(true) => return Some(started),
                Ok(false) => return None,
                Err(e) => tracing::warn!(error = %e, "renewing the leader lease failed"),
            }
        }
    }
}

/// Run `term()` only while this replica holds the Lease, until `stop` turns true.
///
/// Acquire, run a term, and drop it the moment leadership is lost or cannot be
/// confirmed in time (dropping stops everything the term does), then stand by again.
/// A term ends by itself only when `stop` was asked (`Ok`) or when it failed (`Err`,
/// returned to the caller); either ends the loop.
pub async fn lead<F, Fut>(
    elector: &mut Elector,
    mut stop: watch::Receiver<bool>,
    mut term: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    loop {
        let renewed_at = tokio::select! {
            at = elector.acquire() => at,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        tracing::info!(identity = %elector.config().identity, "became leader");
        tokio::select! {
            ended = term() => return ended,
            () = elector.hold(renewed_at) => {}
        }
        tracing::warn!("lost leadership; standing by");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed: Timestamp, secs: i32) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: (!holder.is_empty()).then(|| holder.to_owned()),
                lease_duration_seconds: Some(secs),
                renew_time: Some(MicroTime(renewed)),
                ..LeaseSpec::default()
            }),
        }
    }

    fn wall(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn at(base: Instant, secs: u64) -> Instant {
        base + Duration::from_secs(secs)
    }

    #[test]
    fn no_lease_is_created() {
        let t0 = Instant::now();
        assert_eq!(decide(None, "a", t0, t0), Decision::Create);
    }

    #[test]
    fn own_lease_is_renewed() {
        let t0 = Instant::now();
        let l = lease("a", wall(0), 15);
        assert_eq!(decide(Some(&l), "a", t0, at(t0, 5)), Decision::Renew);
    }

    #[test]
    fn live_lease_of_another_is_respected() {
        let t0 = Instant::now();
        let l = lease("b", wall(0), 15);
        assert_eq!(decide(Some(&l), "a", t0, at(t0, 14)), Decision::Wait);
    }

    #[test]
    fn expired_or_released_lease_is_taken() {
        let t0 = Instant::now();
        let l = lease("b", wall(0), 15);
        assert_eq!(decide(Some(&l), "a", t0, at(t0, 15)), Decision::Acquire);
        let free = lease("", wall(0), 15);
        assert_eq!(decide(Some(&free), "a", t0, at(t0, 1)), Decision::Acquire);
    }

    /// Another replica's `renewTime` comes from its clock: a record renewed "an hour
    /// ago" by a skewed clock but seen changing just now is live; one renewed "in the
    /// future" but unchanged for a lease duration is expired.
    #[test]
    fn expiry_is_judged_by_local_observation_not_renew_time() {
        let t0 = Instant::now();
        let long_ago = lease(
            "b",
            Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_hours(1),
            15,
        );
        assert_eq!(decide(Some(&long_ago), "a", t0, at(t0, 1)), Decision::Wait);
        let future = lease(
            "b",
            Timestamp::now() + k8s_openapi::jiff::SignedDuration::from_hours(1),
            15,
        );
        assert_eq!(
            decide(Some(&future), "a", t0, at(t0, 16)),
            Decision::Acquire
        );
    }

    #[test]
    fn an_unchanged_record_keeps_its_first_observation() {
        let t0 = Instant::now();
        let mut seen = Observed::default();
        let l = lease("b", wall(0), 15);
        assert_eq!(seen.update(l.spec.as_ref(), t0), t0);
        assert_eq!(seen.update(l.spec.as_ref(), at(t0, 10)), t0);
        let renewed = lease("b", wall(5), 15);
        assert_eq!(seen.update(renewed.spec.as_ref(), at(t0, 12)), at(t0, 12));
        assert_eq!(seen.update(None, at(t0, 13)), at(t0, 13));
    }

    #[test]
    fn renew_deadline_must_fall_inside_the_lease() {
        let cfg = |d, r, p| LeaseConfig {
            name: "l".into(),
            namespace: "n".into(),
            identity: "a".into(),
            duration: Duration::from_secs(d),
            renew_deadline: Duration::from_secs(r),
            retry_period: Duration::from_secs(p),
        };
        assert!(cfg(15, 10, 2).check().is_ok());
        assert!(cfg(15, 15, 2).check().is_err());
        assert!(cfg(15, 10, 10).check().is_err());
    }
}
