//! The local ICE username fragment names the session it belongs to.
//!
//! Every participant's session shares the room's one UDP port, so a STUN check has
//! to say whose it is. ICE gives one field for that: the `USERNAME` attribute,
//! `LOCAL_UFRAG:REMOTE_UFRAG`, where the local half is the one this server issued.
//!
//! ```text
//! local-ufrag = session-hex "+" random     ; RFC 8839: 4*256 (ALPHA / DIGIT / "+" / "/")
//! session-hex = 1*16 lower-hex, no leading zero
//! random      = 16 ALPHA                    ; so two sessions never share credentials
//! ```
//!
//! Only the canonical spelling decodes, so one session has exactly one name. The
//! name is not a secret: the ICE password (and STUN message integrity) is.

use super::session::SessionId;

/// Build the local ufrag for `session`.
pub(crate) fn encode(session: SessionId) -> String {
    format!("{:x}+{}", session.0, rtc::ice::rand::generate_ufrag())
}

/// The session a local ufrag names, if this server could have issued it.
pub(crate) fn decode(local_ufrag: &str) -> Option<SessionId> {
    let (hex, random) = local_ufrag.split_once('+')?;
    if random.is_empty() || !random.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let canonical = hex.len() <= 16
        && !hex.is_empty()
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && (hex == "0" || !hex.starts_with('0'));
    if !canonical {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(SessionId)
}

/// The local half of a STUN `USERNAME` (`LOCAL:REMOTE`).
pub(crate) fn local_half(username: &str) -> Option<&str> {
    username.split_once(':').map(|(local, _)| local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_a_valid_ufrag() {
        for n in [0, 1, 15, 16, 4096, u64::MAX] {
            let ufrag = encode(SessionId(n));
            assert_eq!(decode(&ufrag), Some(SessionId(n)), "{ufrag}");
            assert!((4..=256).contains(&ufrag.len()));
            assert!(ufrag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'));
        }
    }

    #[test]
    fn two_sessions_never_share_a_ufrag() {
        assert_ne!(encode(SessionId(7)), encode(SessionId(7)));
    }

    #[test]
    fn only_the_canonical_spelling_decodes() {
        for bad in [
            "",
            "7",
            "+abcd",
            "7+",
            "07+abcd",
            "7A+abcd",
            "g+abcd",
            "7+ab1d",
            "7+ab/d",
            "11111111111111111+abcd",
            "-1+abcd",
        ] {
            assert_eq!(decode(bad), None, "accepted {bad:?}");
        }
        assert_eq!(local_half("a+xyz:remote"), Some("a+xyz"));
        assert_eq!(local_half("no-colon"), None);
    }
}
