//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never both act.
//!
//! A replica takes the Lease when nobody holds it or the holder's `renewTime +
//! leaseDurationSeconds` has passed, and renews it every `renew_every`. Every write
//! carries the `resourceVersion` it was decided on, so two candidates racing for an
//! expired Lease cannot both win: the API server refuses the second with 409. A
//! leader that cannot renew for `duration - renew_every` stops acting before anyone
//! else may take over. [`decide`] is the pure part, tested below; [`Elector`] does I/O.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};

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

/// The pure rule. `now` is injected so tests need no clock.
pub fn decide(lease: Option<&Lease>, me: &str, now: Timestamp) -> Decision {
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
    let secs = i64::from(spec.lease_duration_seconds.unwrap_or(0));
    let expired = match spec.renew_time {
        Some(MicroTime(t)) => t + SignedDuration::from_secs(secs) < now,
        None => true,
    };
    if expired {
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
    /// How long a Lease stays valid without renewal.
    pub duration: Duration,
    /// How often the leader renews (well under `duration`).
    pub renew_every: Duration,
}

/// Takes and keeps the Lease.
pub struct Elector {
    api: Api<Lease>,
    cfg: LeaseConfig,
}

impl Elector {
    pub fn new(client: kube::Client, cfg: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
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
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions + i32::from(new_term)),
            ..LeaseSpec::default()
        }
    }

    /// One attempt to acquire or renew. `Ok(true)`: this replica holds the Lease now.
    pub async fn try_hold(&self) -> Result<bool> {
        let now = Timestamp::now();
        let current = self.api.get_opt(&self.cfg.name).await?;
        let decision = decide(current.as_ref(), &self.cfg.identity, now);
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
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(Error::Lease(e.to_string())),
        }
    }

    /// Give the Lease up (shutdown), so a standby takes over at once.
    pub async fn release(&self) {
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
    }

    /// Wait until this replica holds the Lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_hold().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election attempt failed"),
            }
            tokio::time::sleep(self.cfg.renew_every).await;
        }
    }

    /// Keep renewing; resolves when leadership is lost (or cannot be confirmed in time).
    pub async fn hold(&self) {
        let deadline = self.cfg.duration.saturating_sub(self.cfg.renew_every);
        let mut last_ok = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.cfg.renew_every).await;
            match self.try_hold().await {
                Ok(true) => last_ok = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::warn!("another replica holds the leader lease");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "renewing the leader lease failed"),
            }
            if last_ok.elapsed() >= deadline {
                tracing::warn!("leader lease not renewed in time; stepping down");
                return;
            }
        }
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

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn no_lease_is_created() {
        assert_eq!(decide(None, "a", t(0)), Decision::Create);
    }

    #[test]
    fn own_lease_is_renewed() {
        assert_eq!(
            decide(Some(&lease("a", t(0), 15)), "a", t(5)),
            Decision::Renew
        );
    }

    #[test]
    fn live_lease_of_another_is_respected() {
        assert_eq!(
            decide(Some(&lease("b", t(0), 15)), "a", t(14)),
            Decision::Wait
        );
    }

    #[test]
    fn expired_or_released_lease_is_taken() {
        assert_eq!(
            decide(Some(&lease("b", t(0), 15)), "a", t(16)),
            Decision::Acquire
        );
        assert_eq!(
            decide(Some(&lease("", t(0), 15)), "a", t(1)),
            Decision::Acquire
        );
    }
}
