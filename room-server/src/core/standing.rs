//! A participant's standing: mute and rate-limit state keyed by user id, which
//! outlives their membership so that leaving and joining again resets nothing.
//!
//! A member carries their [`Standing`]; when they leave (or their grace period
//! ends) it moves into [`Departed`], and a later join takes it back. `Departed`
//! is bounded by count, forgetting whoever left longest ago first.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::TokenBucket;

/// People who left and are still remembered. A room holds at most a few hundred
/// people, so this covers every real departure for the room's life; the bound only
/// stops someone minting tokens for endless fresh ids from growing the map (each
/// entry is roughly 200 bytes, so about 1 MiB at most).
pub const MAX_DEPARTED: usize = 4096;

/// What the room holds against (or for) one user id.
#[derive(Debug, Clone)]
pub(crate) struct Standing {
    pub muted: bool,
    /// A moderator stopped forwarding their audio / video.
    pub audio_muted: bool,
    pub video_muted: bool,
    /// `send`, `edit`, `delete`, `react`.
    pub chat: TokenBucket,
    /// Every other frame, and refused frames.
    pub other: TokenBucket,
    /// Every `hello` that reaches the room (joins and reconnects).
    pub joins: TokenBucket,
}

/// The rate limits a fresh [`Standing`] starts with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rates {
    pub messages: u32,
    pub window: Duration,
    pub joins: u32,
    pub joins_window: Duration,
}

impl Standing {
    /// Unmuted, with full buckets.
    pub fn fresh(rates: Rates, now: Instant) -> Self {
        Self {
            muted: false,
            audio_muted: false,
            video_muted: false,
            chat: TokenBucket::new(rates.messages, rates.window, now),
            other: TokenBucket::new(rates.messages.saturating_mul(5), rates.window, now),
            joins: TokenBucket::new(rates.joins, rates.joins_window, now),
        }
    }
}

/// The standings of people who left, oldest departure forgotten first.
#[derive(Debug)]
pub(crate) struct Departed {
    max: usize,
    /// Departure counter: the key of `by_age`.
    next: u64,
    by_age: BTreeMap<u64, String>,
    entries: HashMap<String, (u64, Standing)>,
}

impl Departed {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            next: 0,
            by_age: BTreeMap::new(),
            entries: HashMap::new(),
        }
    }

    /// Keep `standing` for `id`, forgetting the oldest departures beyond the bound.
    pub fn remember(&mut self, id: String, standing: Standing) {
        self.take(&id);
        if self.max == 0 {
            return;
        }
        while self.entries.len() >= self.max {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        self.next += 1;
        self.by_age.insert(self.next, id.clone());
        self.entries.insert(id, (self.next, standing));
    }

    /// The remembered standing of `id`, to change in place (a refused rejoin still
    /// spends a join token).
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Standing> {
        self.entries.get_mut(id).map(|(_, s)| s)
    }

    /// Hand the standing back to a member who returns.
    pub fn take(&mut self, id: &str) -> Option<Standing> {
        let (age, standing) = self.entries.remove(id)?;
        self.by_age.remove(&age);
        Some(standing)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_standing(muted: bool) -> Standing {
        let rates = Rates {
            messages: 10,
            window: Duration::from_secs(10),
            joins: 5,
            joins_window: Duration::from_secs(60),
        };
        Standing {
            muted,
            ..Standing::fresh(rates, Instant::now())
        }
    }

    #[test]
    fn departed_forgets_the_oldest_departure_first() {
        let mut d = Departed::new(2);
        d.remember("a".into(), mk_standing(true));
        d.remember("b".into(), mk_standing(true));
        // `a` leaves again: now the most recent departure.
        let a = d.take("a").unwrap();
        d.remember("a".into(), a);
        d.remember("c".into(), mk_standing(false));
        assert_eq!(d.len(), 2);
        assert!(d.get_mut("b").is_none(), "b left longest ago");
        assert!(d.get_mut("a").unwrap().muted);
        assert!(d.take("c").is_some());
        assert!(d.take("c").is_none());
    }

    #[test]
    fn departed_with_no_room_remembers_nothing() {
        let mut d = Departed::new(0);
        d.remember("a".into(), mk_standing(true));
        assert_eq!(d.len(), 0);
    }
}
