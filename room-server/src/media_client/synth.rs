//! The synthetic streams a media session sends: Opus-sized audio and VP8
//! frames (descriptor, frame tag, filler).

use std::time::{Duration, Instant};

use rtc::rtp_transceiver::RTCRtpSenderId;

use super::{AUDIO_BYTES, AUDIO_PPS, FRAME_RATE, KEYFRAME_EVERY, MAX_PAYLOAD};
use crate::protocol::TrackKind;

/// One synthetic RTP stream we send.
pub(super) struct Sender {
    pub(super) id: RTCRtpSenderId,
    pub(super) ssrc: u32,
    pub(super) kind: TrackKind,
    /// Simulcast: the RTP stream id, written with the mid on every packet.
    pub(super) rid: Option<String>,
    pub(super) height: u16,
    /// Bytes per video frame, from the layer's bit rate.
    pub(super) frame_bytes: usize,
    pub(super) seq: u16,
    pub(super) frames: u32,
    pub(super) keyframe_due: bool,
    pub(super) next: Instant,
    /// What each packet carries in header extensions, as last negotiated.
    pub(super) extensions: Extensions,
}

/// Header extensions a stream writes on every packet.
#[derive(Debug, Clone, Default)]
pub(super) struct Extensions {
    /// Simulcast: (mid extension id, mid, rid extension id, rid).
    pub(super) names: Option<(u8, String, u8, String)>,
    /// Audio: the audio level extension id.
    pub(super) level: Option<u8>,
}

impl Sender {
    pub(super) fn audio(id: RTCRtpSenderId, ssrc: u32) -> Self {
        Self {
            frame_bytes: AUDIO_BYTES,
            ..Self::base(id, ssrc, TrackKind::Audio)
        }
    }

    pub(super) fn video(
        id: RTCRtpSenderId,
        ssrc: u32,
        rid: Option<String>,
        (height, rate): (u16, u32),
    ) -> Self {
        Self {
            rid,
            height,
            frame_bytes: (rate / 8 / FRAME_RATE) as usize,
            ..Self::base(id, ssrc, TrackKind::Video)
        }
    }

    fn base(id: RTCRtpSenderId, ssrc: u32, kind: TrackKind) -> Self {
        Self {
            id,
            ssrc,
            kind,
            rid: None,
            height: 0,
            frame_bytes: 0,
            seq: (ssrc >> 16) as u16,
            frames: 0,
            keyframe_due: true,
            next: Instant::now(),
            extensions: Extensions::default(),
        }
    }

    pub(super) fn interval(&self) -> Duration {
        match self.kind {
            TrackKind::Audio => Duration::from_secs(1) / AUDIO_PPS,
            TrackKind::Video => Duration::from_secs(1) / FRAME_RATE,
        }
    }

    /// The packets of this stream's next frame (marker flags), and whether it
    /// is a keyframe.
    pub(super) fn frame(&mut self) -> (Vec<(Vec<u8>, bool)>, bool) {
        let n = self.frames;
        self.frames = n.wrapping_add(1);
        match self.kind {
            TrackKind::Audio => (vec![(vec![0xfc; AUDIO_BYTES], true)], false),
            TrackKind::Video => {
                let keyframe = self.keyframe_due || n.is_multiple_of(KEYFRAME_EVERY);
                self.keyframe_due = false;
                let size = keyframe.then_some((self.height * 16 / 9, self.height));
                (
                    vp8_frame(n as u16, n as u8, size, self.frame_bytes),
                    keyframe,
                )
            }
        }
    }

    pub(super) fn timestamp(&self) -> u32 {
        match self.kind {
            TrackKind::Audio => self.frames.wrapping_mul(960),
            TrackKind::Video => self.frames.wrapping_mul(90_000 / FRAME_RATE),
        }
    }
}

/// A synthetic VP8 frame as RTP payloads (marker flag on the last): descriptor
/// with picture id and TL0PICIDX on each, the frame tag on the first (keyframe:
/// start code and `size`), `bytes` in all.
fn vp8_frame(
    picture_id: u16,
    tl0: u8,
    size: Option<(u16, u16)>,
    bytes: usize,
) -> Vec<(Vec<u8>, bool)> {
    let mut tag = match size {
        Some((w, h)) => {
            let mut t = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
            t.extend_from_slice(&w.to_le_bytes());
            t.extend_from_slice(&h.to_le_bytes());
            t
        }
        None => vec![0x11, 0x02, 0x00],
    };
    let descriptor = |start: bool| {
        vec![
            if start { 0x90 } else { 0x80 },
            0xc0,
            0x80 | (picture_id >> 8) as u8 & 0x7f,
            picture_id as u8,
            tl0,
        ]
    };
    let body = bytes.max(tag.len() + 1);
    let room = MAX_PAYLOAD - 5;
    let count = body.div_ceil(room);
    let mut left = body;
    (0..count)
        .map(|i| {
            let mut p = descriptor(i == 0);
            let take = left.min(room);
            left -= take;
            if i == 0 {
                p.append(&mut tag);
            }
            p.resize(5 + take, 0xaa);
            (p, i + 1 == count)
        })
        .collect()
}

pub(super) fn random_ssrc() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::vp8;

    #[test]
    fn a_synthetic_frame_is_vp8_the_sfu_can_read() {
        let packets = vp8_frame(300, 7, Some((1280, 720)), 6250);
        assert_eq!(packets.len(), 6);
        assert!(packets.iter().all(|(p, _)| p.len() <= MAX_PAYLOAD));
        let marked: Vec<bool> = packets.iter().map(|(_, m)| *m).collect();
        assert_eq!(marked, [false, false, false, false, false, true]);
        let first = vp8::parse(&packets[0].0).expect("a VP8 descriptor");
        assert!(first.start && first.keyframe);
        assert_eq!(first.size, Some((1280, 720)));
        assert_eq!(first.picture_id, Some((300, true)));
        assert_eq!(first.tl0_pic_idx, Some(7));
        let rest = vp8::parse(&packets[1].0).expect("a VP8 descriptor");
        assert!(!rest.start);
        assert_eq!(rest.picture_id, Some((300, true)));
        let delta = vp8_frame(301, 7, None, 625);
        assert_eq!(delta.len(), 1);
        let d = vp8::parse(&delta[0].0).unwrap();
        assert!(d.start && !d.keyframe && delta[0].1);
        let total: usize = packets.iter().map(|(p, _)| p.len() - 5).sum();
        assert_eq!(total, 6250);
    }
}
