//! The VP8 RTP payload descriptor (RFC 7741 §4.2), as far as an SFU needs it: is
//! this the start of a keyframe, how large is it, and which picture does it
//! belong to — and the rewriting of the picture numbers when one subscriber's
//! stream is spliced from several simulcast layers.
//!
//! ```text
//!  0 1 2 3 4 5 6 7
//! +-+-+-+-+-+-+-+-+
//! |X|R|N|S|R| PID | (required)
//! +-+-+-+-+-+-+-+-+
//! |I|L|T|K| RSV   | (optional, X)
//! +-+-+-+-+-+-+-+-+
//! |M| PictureID   | (optional, I; M: 15 bits, the next byte holds the rest)
//! +-+-+-+-+-+-+-+-+
//! |   TL0PICIDX   | (optional, L)
//! +-+-+-+-+-+-+-+-+
//! |TID|Y| KEYIDX  | (optional, T or K)
//! +-+-+-+-+-+-+-+-+
//! ```
//!
//! Every function here takes bytes from the network and never panics on them.

/// What the descriptor (and, at a frame's start, the frame header) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Vp8Info {
    /// The first packet of a frame (S set, partition 0).
    pub start: bool,
    /// The first packet of a keyframe.
    pub keyframe: bool,
    /// A keyframe's width and height in pixels (its frame header says).
    pub size: Option<(u16, u16)>,
    /// The picture id and whether it has 15 bits (else 7).
    pub picture_id: Option<(u16, bool)>,
    pub tl0_pic_idx: Option<u8>,
    /// Where the picture id starts in the payload (for rewriting).
    picture_id_at: usize,
    /// Where TL0PICIDX is in the payload.
    tl0_at: usize,
}

/// Parse the descriptor at the start of a VP8 RTP payload; `None` when it is too
/// short for what its own bits announce.
pub(crate) fn parse(payload: &[u8]) -> Option<Vp8Info> {
    let first = *payload.first()?;
    let mut info = Vp8Info::default();
    let mut at = 1;
    if first & 0x80 != 0 {
        let ext = *payload.get(at)?;
        at += 1;
        if ext & 0x80 != 0 {
            let b = *payload.get(at)?;
            info.picture_id_at = at;
            if b & 0x80 != 0 {
                let lo = *payload.get(at + 1)?;
                info.picture_id = Some(((u16::from(b & 0x7f) << 8) | u16::from(lo), true));
                at += 2;
            } else {
                info.picture_id = Some((u16::from(b), false));
                at += 1;
            }
        }
        if ext & 0x40 != 0 {
            info.tl0_at = at;
            info.tl0_pic_idx = Some(*payload.get(at)?);
            at += 1;
        }
        if ext & 0x30 != 0 {
            payload.get(at)?;
            at += 1;
        }
    }
    info.start = first & 0x10 != 0 && first & 0x07 == 0;
    if info.start {
        // The frame tag: bit 0 of the first byte is 0 for a keyframe, which is
        // followed by the start code 9d 01 2a and 14-bit width and height.
        let header = payload.get(at..)?;
        info.keyframe = header.first().is_some_and(|b| b & 0x01 == 0);
        if info.keyframe && header.len() >= 10 && header[3..6] == [0x9d, 0x01, 0x2a] {
            let width = u16::from_le_bytes([header[6], header[7]]) & 0x3fff;
            let height = u16::from_le_bytes([header[8], header[9]]) & 0x3fff;
            info.size = Some((width, height));
        }
    }
    Some(info)
}

/// Write `picture_id` and `tl0_pic_idx` into a payload `info` was parsed from,
/// keeping the field widths the publisher chose (a 7-bit id wraps at 128).
pub(crate) fn rewrite(payload: &mut [u8], info: &Vp8Info, picture_id: u16, tl0_pic_idx: u8) {
    if let Some((_, long)) = info.picture_id {
        if long {
            if let Some(field) = payload.get_mut(info.picture_id_at..info.picture_id_at + 2) {
                let id = picture_id & 0x7fff;
                field[0] = 0x80 | (id >> 8) as u8;
                field[1] = id as u8;
            }
        } else if let Some(b) = payload.get_mut(info.picture_id_at) {
            *b = (picture_id & 0x7f) as u8;
        }
    }
    if info.tl0_pic_idx.is_some() {
        if let Some(b) = payload.get_mut(info.tl0_at) {
            *b = tl0_pic_idx;
        }
    }
}

/// A descriptor and frame start for tests and the test peers: picture id
/// (15 bits), TL0PICIDX, and for a keyframe its size.
#[cfg(test)]
pub(crate) fn test_payload(
    picture_id: u16,
    tl0: u8,
    keyframe: Option<(u16, u16)>,
    len: usize,
) -> Vec<u8> {
    let mut p = vec![
        0x90,
        0xc0,
        0x80 | (picture_id >> 8) as u8,
        picture_id as u8,
        tl0,
    ];
    match keyframe {
        Some((w, h)) => {
            p.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]);
            p.extend_from_slice(&w.to_le_bytes());
            p.extend_from_slice(&h.to_le_bytes());
        }
        None => p.extend_from_slice(&[0x11, 0x02, 0x00]),
    }
    p.resize(len.max(p.len()), 0xaa);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_keyframe_and_its_size() {
        let p = test_payload(0x1234, 7, Some((640, 360)), 100);
        let info = parse(&p).unwrap();
        assert!(info.start && info.keyframe);
        assert_eq!(info.size, Some((640, 360)));
        assert_eq!(info.picture_id, Some((0x1234, true)));
        assert_eq!(info.tl0_pic_idx, Some(7));

        let p = test_payload(5, 1, None, 100);
        let info = parse(&p).unwrap();
        assert!(info.start && !info.keyframe);
        assert_eq!(info.size, None);
    }

    #[test]
    fn a_continuation_packet_is_not_a_frame_start() {
        let mut p = test_payload(5, 1, Some((320, 180)), 100);
        p[0] &= !0x10;
        let info = parse(&p).unwrap();
        assert!(!info.start && !info.keyframe);
    }

    #[test]
    fn rewrites_in_place_keeping_widths() {
        let mut p = test_payload(0x7ffe, 200, None, 40);
        let info = parse(&p).unwrap();
        rewrite(&mut p, &info, 0x8001, 3);
        let again = parse(&p).unwrap();
        assert_eq!(again.picture_id, Some((1, true)), "15 bits wrap");
        assert_eq!(again.tl0_pic_idx, Some(3));
        assert_eq!(
            p[5..],
            test_payload(0, 0, None, 40)[5..],
            "the frame is untouched"
        );

        // A 7-bit picture id, no TL0PICIDX.
        let mut p = vec![0x90, 0x80, 0x05, 0x11, 0, 0];
        let info = parse(&p).unwrap();
        assert_eq!(info.picture_id, Some((5, false)));
        rewrite(&mut p, &info, 130, 9);
        assert_eq!(parse(&p).unwrap().picture_id, Some((2, false)));
        assert_eq!(p[3..], [0x11, 0, 0]);
    }

    #[test]
    fn no_descriptor_bytes_are_ever_trusted() {
        assert_eq!(parse(&[]), None);
        // X set, then nothing; I set, then a 15-bit id cut short; L with no byte.
        assert_eq!(parse(&[0x80]), None);
        assert_eq!(parse(&[0x80, 0x80, 0x80]), None);
        assert_eq!(parse(&[0x80, 0x40]), None);
        assert_eq!(parse(&[0x80, 0x20]), None);
        // Every short prefix of a real payload parses or is refused, no panic;
        // and so does every one-byte corruption of it.
        let p = test_payload(300, 4, Some((1280, 720)), 16);
        for n in 0..p.len() {
            let _ = parse(&p[..n]);
        }
        for i in 0..p.len() {
            for b in [0x00, 0xff, 0x80, 0x7f] {
                let mut q = p.clone();
                q[i] = b;
                if let Some(info) = parse(&q) {
                    rewrite(&mut q, &info, 0xffff, 0xff);
                }
            }
        }
    }
}
