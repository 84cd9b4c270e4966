//! Simulcast: a publisher sends its camera two or three times at different sizes
//! (RTP stream ids, RFC 8852), and each subscriber gets exactly one of those
//! layers, the largest its bandwidth and its rendered size call for.
//!
//! Three small machines, none of which owns a clock or a socket:
//!
//! * [`LayerMeter`]: what each layer of a publisher weighs (bits per second,
//!   measured over one-second windows) and measures (from its keyframes).
//! * [`Estimate`]: what a subscriber's path carries, from the loss its receiver
//!   reports say (the loss half of Google Congestion Control) capped by any REMB
//!   it sends.
//! * [`Splicer`]: one subscriber's view of one simulcast track. It forwards one
//!   layer, and switches to another only at that layer's keyframe, rewriting
//!   SSRC, sequence numbers, timestamps, VP8 picture ids and TL0PICIDX so that the
//!   subscriber sees one unbroken stream.

use std::time::{Duration, Instant};

use super::vp8::{self, Vp8Info};

/// One simulcast layer as the publisher sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layer {
    pub rid: String,
    pub ssrc: u32,
}

/// The measuring window of [`LayerMeter`].
const METER_WINDOW: Duration = Duration::from_secs(1);

/// The weight and size of one published layer.
#[derive(Debug, Clone, Default)]
pub(crate) struct LayerMeter {
    window_start: Option<Instant>,
    window_bytes: u64,
    /// Bits per second over the last full window.
    pub bitrate: u64,
    /// The size of the layer's last keyframe.
    pub size: Option<(u16, u16)>,
    /// When the layer's last packet came: a layer that stopped (the browser
    /// dropped it for its own bandwidth or CPU) is not chosen.
    pub last_packet: Option<Instant>,
}

impl LayerMeter {
    pub(crate) fn observe(&mut self, now: Instant, bytes: usize, info: Option<&Vp8Info>) {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= METER_WINDOW {
            let bits = self.window_bytes * 8;
            self.bitrate = (bits as f64 / elapsed.as_secs_f64()) as u64;
            self.window_start = Some(now);
            self.window_bytes = 0;
        }
        self.window_bytes += bytes as u64;
        self.last_packet = Some(now);
        if let Some(size) = info.and_then(|i| i.size) {
            self.size = Some(size);
        }
    }

    /// The layer still arrives.
    pub(crate) fn live(&self, now: Instant) -> bool {
        self.last_packet
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(2))
    }

    /// The bitrate to budget for: the measured one, or before a window closed,
    /// what arrived so far as if the window were full.
    pub(crate) fn weight(&self) -> u64 {
        self.bitrate.max(self.window_bytes * 8)
    }
}

/// Where a subscriber's bandwidth estimate starts: enough for a middle layer,
/// not for the top one, so nobody's first seconds are a flood of loss.
pub(crate) const INITIAL_ESTIMATE: u64 = 1_000_000;
/// The estimate never goes below this (a low layer always flows) or above that.
pub(crate) const MIN_ESTIMATE: u64 = 50_000;
pub(crate) const MAX_ESTIMATE: u64 = 20_000_000;

/// A subscriber's available bandwidth, bits per second.
#[derive(Debug, Clone)]
pub(crate) struct Estimate {
    loss_based: f64,
    /// The receiver's own estimate (REMB), if it sends one; it only ever caps.
    remb: Option<(u64, Instant)>,
    last_increase: Option<Instant>,
    /// No increase before this: after heavy loss the path is not probed again
    /// at once, or a subscriber would flap between layers every few seconds.
    hold_until: Option<Instant>,
}

/// How long after heavy loss the estimate does not grow.
pub(crate) const INCREASE_HOLD: Duration = Duration::from_secs(8);

impl Default for Estimate {
    fn default() -> Self {
        Self {
            loss_based: INITIAL_ESTIMATE as f64,
            remb: None,
            last_increase: None,
            hold_until: None,
        }
    }
}

impl Estimate {
    /// A reception report: `loss` is the fraction lost since the previous one.
    /// Above 10 % the estimate falls by half the loss, and at least to what
    /// got through of the `sent` bits per second (when known): a path that
    /// drops half of 300 kb/s carries about 150, and waiting for halvings to get
    /// there would freeze the video for seconds. Under 2 % it grows by 8 % (at
    /// most once per 200 ms: a report per stream must not multiply the growth,
    /// and not for [`INCREASE_HOLD`] after heavy loss); between, it holds
    /// (draft-ietf-rmcat-gcc-02 §6).
    pub(crate) fn on_loss(&mut self, now: Instant, loss: f64, sent: Option<u64>) {
        let loss = if loss.is_nan() {
            0.0
        } else {
            loss.clamp(0.0, 1.0)
        };
        if loss > 0.10 {
            self.loss_based *= 1.0 - 0.5 * loss;
            if let Some(sent) = sent {
                self.loss_based = self.loss_based.min(sent as f64 * (1.0 - loss));
            }
            self.hold_until = Some(now + INCREASE_HOLD);
        } else if loss < 0.02 {
            let due = self
                .last_increase
                .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_millis(200))
                && self.hold_until.is_none_or(|t| now >= t);
            if due {
                self.loss_based *= 1.08;
                self.last_increase = Some(now);
            }
        }
        self.loss_based = self
            .loss_based
            .clamp(MIN_ESTIMATE as f64, MAX_ESTIMATE as f64);
    }

    /// A REMB from the receiver (kept for 5 s).
    pub(crate) fn on_remb(&mut self, now: Instant, bitrate: f32) {
        if bitrate.is_finite() && bitrate >= 0.0 {
            self.remb = Some((bitrate as u64, now));
        }
    }

    pub(crate) fn bitrate(&self, now: Instant) -> u64 {
        let loss = self.loss_based as u64;
        match self.remb {
            Some((remb, at)) if now.saturating_duration_since(at) < Duration::from_secs(5) => {
                loss.min(remb).max(MIN_ESTIMATE)
            }
            _ => loss,
        }
    }
}

/// Pick a layer index (into `layers`, ordered from the smallest to the largest)
/// for a budget of `budget` bits per second and a rendered height of at most
/// `max_height` pixels (`None`: any). The largest layer that fits both; the
/// smallest when none does. `current` gets 15 % of slack so the choice does not
/// flap at a boundary.
pub(crate) fn choose(
    layers: &[(u64, Option<u16>)],
    budget: u64,
    max_height: Option<u32>,
    current: Option<usize>,
) -> Option<usize> {
    if layers.is_empty() {
        return None;
    }
    // The size cap: the smallest layer at least as tall as what is rendered.
    let cap = match max_height {
        Some(h) => layers
            .iter()
            .position(|(_, height)| height.is_some_and(|x| u32::from(x) >= h))
            .unwrap_or(layers.len() - 1),
        None => layers.len() - 1,
    };
    let mut best = 0;
    for (i, (weight, _)) in layers.iter().enumerate().take(cap + 1) {
        let allowed = if Some(i) == current {
            budget + budget * 15 / 100
        } else {
            budget
        };
        if *weight <= allowed {
            best = i;
        }
    }
    Some(best)
}

/// What one packet becomes on a subscriber's leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spliced {
    pub sequence_number: u16,
    pub timestamp: u32,
    /// New picture id and TL0PICIDX, when the payload carries them.
    pub picture: Option<(u16, u8)>,
}

/// One subscriber's stream of one simulcast track.
#[derive(Debug, Clone, Default)]
pub(crate) struct Splicer {
    /// The layer (publisher SSRC) forwarded now, and the one wanted.
    pub current: Option<u32>,
    pub target: Option<u32>,
    seq_offset: u16,
    ts_offset: u32,
    pic_offset: u16,
    tl0_offset: u8,
    /// The highest sequence number sent and the timestamp, picture id and
    /// TL0PICIDX that went with it, and when.
    last: Option<(u16, u32, u16, u8, Instant)>,
}

impl Splicer {
    /// `packet` of layer `ssrc` as this subscriber gets it, or `None` when it is
    /// not for them (another layer, or the wanted layer before its keyframe).
    pub(crate) fn splice(
        &mut self,
        now: Instant,
        ssrc: u32,
        sequence_number: u16,
        timestamp: u32,
        info: Option<&Vp8Info>,
    ) -> Option<Spliced> {
        if self.current != Some(ssrc) {
            let switch = self.target == Some(ssrc) && info.is_some_and(|i| i.keyframe);
            if !switch {
                return None;
            }
            self.switch_to(now, ssrc, sequence_number, timestamp, info);
        }
        let out_seq = sequence_number.wrapping_add(self.seq_offset);
        let out_ts = timestamp.wrapping_add(self.ts_offset);
        let picture = info.and_then(|i| {
            let (id, long) = i.picture_id?;
            let modulo = if long { 0x8000 } else { 0x80 };
            let id = (id.wrapping_add(self.pic_offset)) % modulo;
            let tl0 = i.tl0_pic_idx.unwrap_or(0).wrapping_add(self.tl0_offset);
            Some((id, tl0))
        });
        let newer = self
            .last
            .is_none_or(|(seq, ..)| out_seq.wrapping_sub(seq) < 0x8000 && out_seq != seq);
        if newer {
            let (pic, tl0) = picture
                .unwrap_or_else(|| self.last.map(|(_, _, p, t, _)| (p, t)).unwrap_or_default());
            self.last = Some((out_seq, out_ts, pic, tl0, now));
        }
        Some(Spliced {
            sequence_number: out_seq,
            timestamp: out_ts,
            picture,
        })
    }

    /// Continue the subscriber's numbering from the last packet sent: the next
    /// sequence number, a timestamp advanced by the time that passed, the next
    /// picture.
    fn switch_to(
        &mut self,
        now: Instant,
        ssrc: u32,
        sequence_number: u16,
        timestamp: u32,
        info: Option<&Vp8Info>,
    ) {
        let (pic, tl0) = info
            .and_then(|i| i.picture_id.map(|(id, _)| (id, i.tl0_pic_idx.unwrap_or(0))))
            .unwrap_or_default();
        match self.last {
            Some((seq, ts, last_pic, last_tl0, at)) => {
                let elapsed = now.saturating_duration_since(at).as_secs_f64();
                let ticks = ((elapsed * 90_000.0) as u32).max(1);
                self.seq_offset = seq.wrapping_add(1).wrapping_sub(sequence_number);
                self.ts_offset = ts.wrapping_add(ticks).wrapping_sub(timestamp);
                self.pic_offset = last_pic.wrapping_add(1).wrapping_sub(pic);
                self.tl0_offset = last_tl0.wrapping_add(1).wrapping_sub(tl0);
            }
            None => {
                self.seq_offset = 0;
                self.ts_offset = 0;
                self.pic_offset = 0;
                self.tl0_offset = 0;
            }
        }
        self.current = Some(ssrc);
    }

    /// The subscriber gets none of this track for a while (not watched, muted):
    /// when it does again, it starts at a keyframe and numbering goes on from
    /// the last packet sent, so the pause is no gap of lost packets.
    pub(crate) fn pause(&mut self) {
        self.current = None;
    }

    /// Rewrite the payload of a spliced packet (picture id, TL0PICIDX).
    pub(crate) fn rewrite_payload(payload: &mut [u8], info: &Vp8Info, spliced: &Spliced) {
        if let Some((pic, tl0)) = spliced.picture {
            vp8::rewrite(payload, info, pic, tl0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::vp8::{parse, test_payload};

    #[test]
    fn the_budget_and_the_rendered_size_choose_the_layer() {
        // 150 kb/s at 320×180, 500 kb/s at 640×360, 1.5 Mb/s at 1280×720.
        let layers = [
            (150_000, Some(180)),
            (500_000, Some(360)),
            (1_500_000, Some(720)),
        ];
        assert_eq!(choose(&layers, 5_000_000, None, None), Some(2));
        assert_eq!(choose(&layers, 600_000, None, None), Some(1));
        assert_eq!(
            choose(&layers, 100_000, None, None),
            Some(0),
            "the smallest when none fits"
        );
        assert_eq!(
            choose(&layers, 5_000_000, Some(300), None),
            Some(1),
            "a 300 px tile"
        );
        assert_eq!(choose(&layers, 5_000_000, Some(100), None), Some(0));
        assert_eq!(choose(&layers, 5_000_000, Some(2000), None), Some(2));
        // Slack for the current layer: 1.4 Mb/s keeps the top, does not reach it.
        assert_eq!(choose(&layers, 1_400_000, None, Some(2)), Some(2));
        assert_eq!(choose(&layers, 1_400_000, None, Some(1)), Some(1));
        assert_eq!(choose(&[], 1, None, None), None);
    }

    #[test]
    fn loss_lowers_the_estimate_and_a_clean_path_raises_it() {
        let t0 = Instant::now();
        let mut e = Estimate::default();
        e.on_loss(t0, 0.5, None);
        assert_eq!(e.bitrate(t0), 750_000);
        e.on_loss(t0, 0.05, None);
        assert_eq!(e.bitrate(t0), 750_000, "held between 2 and 10 %");
        // No growth for a while after heavy loss, then 8 % a report.
        e.on_loss(t0 + Duration::from_secs(1), 0.0, None);
        assert_eq!(e.bitrate(t0), 750_000, "held after heavy loss");
        let mut t = t0;
        for _ in 0..20 {
            t += Duration::from_secs(1);
            e.on_loss(t, 0.0, None);
        }
        assert!(e.bitrate(t) > 1_500_000);
        // Many reports in one instant grow it once.
        let before = e.bitrate(t);
        for _ in 0..5 {
            e.on_loss(t, 0.0, None);
        }
        assert_eq!(e.bitrate(t), before);
        // REMB caps it while fresh.
        e.on_remb(t, 200_000.0);
        assert_eq!(e.bitrate(t), 200_000);
        assert_eq!(e.bitrate(t + Duration::from_secs(6)), before);
        e.on_remb(t, f32::NAN);
        for _ in 0..100 {
            e.on_loss(t, 1.0, None);
        }
        assert_eq!(e.bitrate(t + Duration::from_secs(6)), MIN_ESTIMATE);

        // What got through bounds it: half of 300 kb/s lost leaves 150.
        let mut e = Estimate::default();
        e.on_loss(t0, 0.5, Some(300_000));
        assert_eq!(e.bitrate(t0), 150_000);
    }

    #[test]
    fn switching_layers_waits_for_a_keyframe_and_keeps_numbering_unbroken() {
        let t0 = Instant::now();
        let mut s = Splicer {
            target: Some(1),
            ..Default::default()
        };
        let delta = parse(&test_payload(50, 5, None, 30)).unwrap();
        let key = parse(&test_payload(900, 9, Some((320, 180)), 30)).unwrap();
        // Layer 1 before its keyframe, and layer 2, are not forwarded.
        assert_eq!(s.splice(t0, 1, 100, 1000, Some(&delta)), None);
        assert_eq!(s.splice(t0, 2, 7000, 50_000, Some(&key)), None);
        // Layer 1's keyframe starts the stream with its own numbers.
        let first = s.splice(t0, 1, 101, 4000, Some(&key)).unwrap();
        assert_eq!((first.sequence_number, first.timestamp), (101, 4000));
        assert_eq!(first.picture, Some((900, 9)));
        let next = parse(&test_payload(901, 9, None, 30)).unwrap();
        let second = s.splice(t0, 1, 102, 7000, Some(&next)).unwrap();
        assert_eq!(
            (second.sequence_number, second.picture),
            (102, Some((901, 9)))
        );

        // Up to layer 2 at its keyframe, 33 ms later: its numbers continue ours.
        s.target = Some(2);
        let t1 = t0 + Duration::from_millis(33);
        assert!(s.splice(t1, 2, 7001, 90_000, Some(&delta)).is_none());
        let other = parse(&test_payload(30_000, 200, Some((1280, 720)), 30)).unwrap();
        let sw = s.splice(t1, 2, 7002, 93_000, Some(&other)).unwrap();
        assert_eq!(sw.sequence_number, 103);
        assert_eq!(sw.timestamp, 7000 + 2970);
        assert_eq!(sw.picture, Some((902, 10)));
        assert_eq!(s.current, Some(2));
        // Layer 1 is dropped now; layer 2 goes on in step.
        assert_eq!(s.splice(t1, 1, 103, 10_000, Some(&next)), None);
        let on = parse(&test_payload(30_001, 200, None, 30)).unwrap();
        let after = s.splice(t1, 2, 7003, 96_000, Some(&on)).unwrap();
        assert_eq!(after.sequence_number, 104);
        assert_eq!(after.timestamp, 7000 + 2970 + 3000);
        assert_eq!(after.picture, Some((903, 10)));
        // A retransmitted old packet keeps its place and moves nothing.
        let old = s.splice(t1, 2, 7002, 93_000, Some(&other)).unwrap();
        assert_eq!(old.sequence_number, 103);
    }

    #[test]
    fn a_pause_is_no_gap() {
        let t0 = Instant::now();
        let mut s = Splicer {
            target: Some(1),
            ..Default::default()
        };
        let key = |pic| parse(&test_payload(pic, 0, Some((320, 180)), 30)).unwrap();
        let delta = |pic| parse(&test_payload(pic, 0, None, 30)).unwrap();
        assert!(s.splice(t0, 1, 10, 100, Some(&key(1))).is_some());
        s.pause();
        // The publisher went on while this subscriber got nothing.
        assert_eq!(s.splice(t0, 1, 200, 9000, Some(&delta(191))), None);
        let back = s.splice(t0, 1, 201, 9090, Some(&key(192))).unwrap();
        assert_eq!(back.sequence_number, 11, "numbering goes on");
        assert_eq!(back.picture, Some((2, 1)));
    }

    #[test]
    fn numbering_wraps() {
        let t0 = Instant::now();
        let mut s = Splicer {
            target: Some(1),
            ..Default::default()
        };
        let key = parse(&test_payload(0x7fff, 255, Some((320, 180)), 30)).unwrap();
        let a = s.splice(t0, 1, u16::MAX, u32::MAX, Some(&key)).unwrap();
        assert_eq!(a.sequence_number, u16::MAX);
        s.target = Some(2);
        let b = s.splice(t0, 2, 5, 5, Some(&key)).unwrap();
        assert_eq!(b.sequence_number, 0);
        assert_eq!(b.timestamp, 0);
        assert_eq!(b.picture, Some((0, 0)));
    }

    #[test]
    fn meters_weigh_and_measure_layers() {
        let t0 = Instant::now();
        let mut m = LayerMeter::default();
        let key = parse(&test_payload(1, 1, Some((640, 360)), 30)).unwrap();
        for i in 0..=50u32 {
            m.observe(
                t0 + Duration::from_millis(20 * u64::from(i)),
                1000,
                Some(&key),
            );
        }
        assert_eq!(m.bitrate, 400_000);
        assert_eq!(m.size, Some((640, 360)));
        assert!(m.live(t0 + Duration::from_secs(2)));
        assert!(!m.live(t0 + Duration::from_secs(4)));
    }
}
