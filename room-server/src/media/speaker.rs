//! Who is speaking: the audio level publishers put in their packets (RFC 6464,
//! `urn:ietf:params:rtp-hdrext:ssrc-audio-level`, sent by every browser) averaged
//! over short intervals, and the loudest voice named at most once per interval.
//!
//! A level is in −dBov: 0 is the loudest, 127 silence. Talk sits around 20–50,
//! a quiet room above 70. Levels are averaged as power, not as decibels, so the
//! syllables count and the pauses between them do not drown them. The SFU reads
//! the byte in the clear RTP header extension, so this costs no decoding.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::session::SessionId;

/// How often the active speaker may change: a word is about this long, so the
/// highlight follows the talk without flickering on every syllable.
pub(crate) const SPEAKER_INTERVAL: Duration = Duration::from_millis(400);

/// Averages above this (quieter than −50 dBov) are not speech.
const SPEECH_DBOV: f64 = 50.0;

/// A newcomer must be this much louder (dB) than the current speaker, if the
/// current one is still talking, to take over.
const TAKEOVER_DB: f64 = 6.0;

/// The running decision.
#[derive(Debug, Default)]
pub(crate) struct SpeakerDetector {
    /// Sum of linear power and count of packets per publisher in the current
    /// interval.
    levels: HashMap<SessionId, (f64, u32)>,
    current: Option<SessionId>,
    next: Option<Instant>,
}

impl SpeakerDetector {
    /// One audio packet's level (its extension byte) from `who`.
    pub(crate) fn observe(&mut self, now: Instant, who: SessionId, byte: u8) {
        let dbov = f64::from(byte & 0x7f);
        let entry = self.levels.entry(who).or_default();
        entry.0 += 10f64.powf(-dbov / 10.0);
        entry.1 += 1;
        self.next.get_or_insert(now + SPEAKER_INTERVAL);
    }

    /// When [`Self::decide`] is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }

    /// Forget a publisher that left; if they had the floor, the next decision
    /// (due at once) names someone else or nobody.
    pub(crate) fn remove(&mut self, now: Instant, who: SessionId) {
        self.levels.remove(&who);
        if self.current == Some(who) {
            self.next = Some(now);
        }
    }

    /// At the end of an interval: `Some(new)` when the active speaker changed
    /// (`new` is None when nobody speaks any more).
    pub(crate) fn decide(&mut self, now: Instant) -> Option<Option<SessionId>> {
        if self.next.is_none_or(|t| now < t) {
            return None;
        }
        // Mean power back in −dBov: smaller is louder.
        let averages: Vec<(SessionId, f64)> = self
            .levels
            .drain()
            .filter(|(_, (_, n))| *n > 0)
            .map(|(who, (sum, n))| (who, -10.0 * (sum / f64::from(n)).log10()))
            .filter(|(_, avg)| *avg <= SPEECH_DBOV)
            .collect();
        let loudest = averages
            .iter()
            .min_by(|(a, x), (b, y)| x.total_cmp(y).then(a.cmp(b)))
            .copied();
        let current = self
            .current
            .and_then(|c| averages.iter().find(|(who, _)| *who == c).copied());
        let next = match (loudest, current) {
            (None, _) => None,
            (Some((who, avg)), Some((cur, cur_avg))) => {
                if who != cur && avg + TAKEOVER_DB <= cur_avg {
                    Some(who)
                } else {
                    Some(cur)
                }
            }
            (Some((who, _)), None) => Some(who),
        };
        // Keep deciding while anyone spoke or someone is still named.
        self.next = (!averages.is_empty() || next.is_some()).then(|| now + SPEAKER_INTERVAL);
        if next == self.current {
            return None;
        }
        self.current = next;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut SpeakerDetector, t: Instant, levels: &[(u64, u8)]) {
        for _ in 0..20 {
            for &(who, level) in levels {
                d.observe(t, SessionId(who), level);
            }
        }
    }

    #[test]
    fn the_loudest_voice_is_named_once_and_keeps_the_floor_until_clearly_beaten() {
        let mut d = SpeakerDetector::default();
        let t0 = Instant::now();
        feed(&mut d, t0, &[(1, 30), (2, 90)]);
        assert_eq!(d.decide(t0), None, "not before the interval ends");
        let t1 = t0 + SPEAKER_INTERVAL;
        assert_eq!(d.decide(t1), Some(Some(SessionId(1))));
        // Both talk, 2 a little louder: 1 keeps the floor.
        feed(&mut d, t1, &[(1, 30), (2, 27)]);
        let t2 = t1 + SPEAKER_INTERVAL;
        assert_eq!(d.decide(t2), None);
        // 2 much louder: takes over.
        feed(&mut d, t2, &[(1, 40), (2, 20)]);
        let t3 = t2 + SPEAKER_INTERVAL;
        assert_eq!(d.decide(t3), Some(Some(SessionId(2))));
        // Silence (no packets, or levels of a quiet room): nobody.
        feed(&mut d, t3, &[(2, 110)]);
        let t4 = t3 + SPEAKER_INTERVAL;
        assert_eq!(d.decide(t4), Some(None));
        assert_eq!(d.poll_timeout(), None, "no timer while all is quiet");
    }

    #[test]
    fn short_loud_sounds_count_the_pauses_between_them_do_not() {
        let mut d = SpeakerDetector::default();
        let t0 = Instant::now();
        // A quarter of the packets at −20 dBov, the rest silence: that is talk.
        for i in 0..40 {
            d.observe(t0, SessionId(1), if i % 4 == 0 { 20 } else { 127 });
        }
        assert_eq!(d.decide(t0 + SPEAKER_INTERVAL), Some(Some(SessionId(1))));
    }

    #[test]
    fn a_speaker_who_leaves_is_no_longer_named() {
        let mut d = SpeakerDetector::default();
        let t0 = Instant::now();
        feed(&mut d, t0, &[(1, 30)]);
        assert_eq!(d.decide(t0 + SPEAKER_INTERVAL), Some(Some(SessionId(1))));
        let t1 = t0 + SPEAKER_INTERVAL * 3 / 2;
        d.remove(t1, SessionId(1));
        assert_eq!(d.poll_timeout(), Some(t1), "decided at once");
        assert_eq!(d.decide(t1), Some(None));
    }
}
