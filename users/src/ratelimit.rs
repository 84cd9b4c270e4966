//! Rate limits on log-in and registration, keyed by account and by client address.
//!
//! GCRA limiters (governor) keep one small state per key; a background sweep drops
//! keys that have been quiet long enough to be full again, so memory stays bounded
//! by the number of keys active within one period.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::Config;
use crate::error::{Error, Result};

type Keyed<K> = Arc<DefaultKeyedRateLimiter<K>>;

/// The service's limiters.
#[derive(Clone)]
pub struct Limiters {
    login_account: Keyed<String>,
    login_address: Keyed<IpAddr>,
    register_address: Keyed<IpAddr>,
}

fn quota(n: u32, per: Duration) -> Quota {
    let n = NonZeroU32::new(n.max(1)).expect("n >= 1");
    Quota::with_period(per / n.get())
        .expect("non-zero period")
        .allow_burst(n)
}

fn check<K: std::hash::Hash + Eq + Clone>(l: &Keyed<K>, key: &K) -> Result<()> {
    l.check_key(key).map_err(|not_until| {
        Error::RateLimited(not_until.wait_time_from(DefaultClock::default().now()))
    })
}

impl Limiters {
    pub fn new(cfg: &Config) -> Self {
        let minute = Duration::from_secs(60);
        Self {
            login_account: Arc::new(governor::RateLimiter::keyed(quota(
                cfg.login_per_account_per_minute,
                minute,
            ))),
            login_address: Arc::new(governor::RateLimiter::keyed(quota(
                cfg.login_per_address_per_minute,
                minute,
            ))),
            register_address: Arc::new(governor::RateLimiter::keyed(quota(
                cfg.register_per_address_per_hour,
                Duration::from_secs(3600),
            ))),
        }
    }

    /// One log-in attempt for `login` from `addr`.
    pub fn login(&self, login: &str, addr: IpAddr) -> Result<()> {
        check(&self.login_address, &addr)?;
        check(&self.login_account, &login.to_lowercase())
    }

    /// One registration from `addr`.
    pub fn register(&self, addr: IpAddr) -> Result<()> {
        check(&self.register_address, &addr)
    }

    /// Drop the state of keys that are back to a full bucket.
    pub fn sweep(&self) {
        self.login_account.retain_recent();
        self.login_address.retain_recent();
        self.register_address.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_is_limited_per_account_and_per_address() {
        let mut cfg = Config::test("sqlite::memory:");
        cfg.login_per_account_per_minute = 3;
        cfg.login_per_address_per_minute = 5;
        let l = Limiters::new(&cfg);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..3 {
            l.login("Ada", a).unwrap();
        }
        // The account is spent, whatever the address or case.
        let Err(Error::RateLimited(wait)) = l.login("ada", b) else {
            panic!("fourth attempt allowed")
        };
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(20));
        // Another account from `a` has the rest of the address budget (4th and 5th).
        l.login("bob", a).unwrap();
        l.login("bob", a).unwrap();
        assert!(
            l.login("carol", a).is_err(),
            "sixth attempt from one address allowed"
        );
        l.sweep();
        assert!(l.register(b).is_ok(), "registration has its own budget");
    }
}
