//! A token bucket: the per-participant rate limit, with time passed in.

use std::time::{Duration, Instant};

/// Holds up to `capacity` tokens and refills all of them over `window`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    tokens: f64,
    per_sec: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: u32, window: Duration, now: Instant) -> Self {
        let capacity = f64::from(capacity.max(1));
        let secs = window.as_secs_f64().max(1e-3);
        Self {
            capacity,
            tokens: capacity,
            per_sec: capacity / secs,
            last: now,
        }
    }

    /// Take one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_per_ten_seconds_then_one_per_second() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, Duration::from_secs(10), t0);
        assert!((0..10).all(|_| b.try_take(t0)));
        assert!(!b.try_take(t0));
        assert!(!b.try_take(t0 + Duration::from_millis(900)));
        assert!(b.try_take(t0 + Duration::from_millis(1000)));
        assert!(!b.try_take(t0 + Duration::from_millis(1000)));
        // Refill is capped at the capacity.
        let later = t0 + Duration::from_secs(100);
        assert!((0..10).all(|_| b.try_take(later)));
        assert!(!b.try_take(later));
    }
}
