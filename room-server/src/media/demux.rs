//! Which session an arriving datagram belongs to.
//!
//! A STUN check names its session in the local ufrag ([`super::ufrag`]); it counts
//! only when its MESSAGE-INTEGRITY verifies with that session's ICE password, so
//! nobody can steer someone else's address to another session with a forged check.
//! A verified check binds the source address to the session; everything else
//! (DTLS, SRTP, SRTCP) is routed by source address (and transport) alone.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use rtc::crypto::RTCCryptoProvider;
use rtc::stun::attributes::ATTR_USERNAME;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{is_stun_message, Message};
use rtc::stun::textattrs::Username;

use super::session::SessionId;
use super::{ufrag, Transport};

/// Where packets come from: a UDP address, or a client's end of a TCP connection.
pub(crate) type Source = (Transport, SocketAddr);

/// Remote addresses remembered per session. ICE may check a few candidate pairs
/// (IPv4 and IPv6, a NAT rebinding); four covers that, and bounds the map at four
/// entries per participant whatever a peer sends.
pub(crate) const MAX_ADDRS_PER_SESSION: usize = 4;

/// Routes datagrams to sessions.
pub(crate) struct Demuxer {
    crypto: Arc<dyn RTCCryptoProvider>,
    by_addr: HashMap<Source, SessionId>,
    by_session: HashMap<SessionId, VecDeque<Source>>,
    /// Addresses forgotten and not yet taken ([`Self::take_evicted`]).
    evicted: Vec<Source>,
}

impl std::fmt::Debug for Demuxer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demuxer")
            .field("by_addr", &self.by_addr)
            .finish_non_exhaustive()
    }
}

impl Demuxer {
    pub(crate) fn new(crypto: Arc<dyn RTCCryptoProvider>) -> Self {
        Self {
            crypto,
            by_addr: HashMap::new(),
            by_session: HashMap::new(),
            evicted: Vec::new(),
        }
    }

    /// The session `data` from `source` belongs to. `password` gives a live
    /// session's local ICE password (None for a session that does not exist).
    pub(crate) fn route<'a>(
        &mut self,
        source: Source,
        data: &[u8],
        password: impl Fn(SessionId) -> Option<&'a str>,
    ) -> Option<SessionId> {
        if is_stun_message(data) {
            if let Some(session) = self.verified_stun(data, password) {
                self.bind(source, session);
                return Some(session);
            }
        }
        self.by_addr.get(&source).copied()
    }

    fn verified_stun<'a>(
        &self,
        data: &[u8],
        password: impl Fn(SessionId) -> Option<&'a str>,
    ) -> Option<SessionId> {
        let mut msg = Message::new();
        msg.unmarshal_binary(data).ok()?;
        let username = Username::get_from_as(&msg, ATTR_USERNAME).ok()?;
        let session = ufrag::decode(ufrag::local_half(&username.text)?)?;
        let pwd = password(session)?;
        MessageIntegrity::check(&mut msg, pwd.as_bytes(), self.crypto.crypto()).ok()?;
        Some(session)
    }

    fn bind(&mut self, source: Source, session: SessionId) {
        match self.by_addr.insert(source, session) {
            Some(old) if old == session => return,
            Some(old) => {
                if let Some(addrs) = self.by_session.get_mut(&old) {
                    addrs.retain(|a| *a != source);
                }
            }
            None => {}
        }
        let addrs = self.by_session.entry(session).or_default();
        addrs.push_back(source);
        if addrs.len() > MAX_ADDRS_PER_SESSION {
            if let Some(oldest) = addrs.pop_front() {
                self.by_addr.remove(&oldest);
                self.evicted.push(oldest);
            }
        }
    }

    /// Forget a session's addresses.
    pub(crate) fn remove(&mut self, session: SessionId) {
        for addr in self.by_session.remove(&session).unwrap_or_default() {
            self.by_addr.remove(&addr);
            self.evicted.push(addr);
        }
    }

    /// Addresses forgotten since the last call: their TCP connections have no
    /// session left to serve.
    pub(crate) fn take_evicted(&mut self) -> Vec<Source> {
        std::mem::take(&mut self.evicted)
    }

    /// Addresses bound, for tests and bounds checks.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_addr.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::stun::message::{Setter, TransactionId, BINDING_REQUEST};

    fn check(username: &str, pwd: &str, crypto: &dyn rtc::crypto::RTCCrypto) -> Vec<u8> {
        let mut msg = Message::new();
        let setters: Vec<Box<dyn Setter + '_>> = vec![
            Box::new(BINDING_REQUEST),
            Box::new(TransactionId::new()),
            Box::new(Username::new(ATTR_USERNAME, username.to_owned())),
            Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
                pwd.to_owned(),
                crypto,
            )),
        ];
        msg.build(&setters).expect("a STUN message builds");
        msg.raw
    }

    fn addr(port: u16) -> Source {
        (Transport::Udp, SocketAddr::from(([127, 0, 0, 1], port)))
    }

    fn tcp(port: u16) -> Source {
        (Transport::Tcp, SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn a_verified_check_binds_its_address_and_forged_ones_do_not() {
        let crypto = rtc::crypto::default_provider().unwrap();
        let mut demux = Demuxer::new(crypto.clone());
        let s1 = SessionId(1);
        let u1 = ufrag::encode(s1);
        let pwd = |s: SessionId| (s == s1).then_some("secret-password-of-one");

        // Wrong password: not routed, nothing bound.
        let forged = check(&format!("{u1}:remote"), "guess", crypto.crypto());
        assert_eq!(demux.route(addr(1000), &forged, pwd), None);
        assert_eq!(demux.len(), 0);

        let good = check(
            &format!("{u1}:remote"),
            "secret-password-of-one",
            crypto.crypto(),
        );
        assert_eq!(demux.route(addr(1000), &good, pwd), Some(s1));
        // DTLS/SRTP from the same address follows the binding.
        assert_eq!(demux.route(addr(1000), &[22, 254, 253], pwd), Some(s1));
        assert_eq!(demux.route(addr(1001), &[22, 254, 253], pwd), None);

        demux.remove(s1);
        assert_eq!(demux.route(addr(1000), &[22, 254, 253], pwd), None);
    }

    #[test]
    fn addresses_per_session_are_bounded() {
        let crypto = rtc::crypto::default_provider().unwrap();
        let mut demux = Demuxer::new(crypto.clone());
        let s1 = SessionId(0x2a);
        let u1 = ufrag::encode(s1);
        let pwd = |s: SessionId| (s == s1).then_some("pw-pw-pw-pw-pw-pw-pw-pw");
        let good = check(
            &format!("{u1}:r"),
            "pw-pw-pw-pw-pw-pw-pw-pw",
            crypto.crypto(),
        );
        for port in 0..20 {
            assert_eq!(demux.route(addr(2000 + port), &good, pwd), Some(s1));
        }
        assert_eq!(demux.len(), MAX_ADDRS_PER_SESSION);
        assert_eq!(demux.route(addr(2019), &[0x80, 0], pwd), Some(s1));
        assert_eq!(demux.route(addr(2000), &[0x80, 0], pwd), None);
        // The 16 pushed out are reported once, for their connections to close.
        let evicted = demux.take_evicted();
        assert_eq!(evicted, (2000..2016).map(addr).collect::<Vec<_>>());
        assert!(demux.take_evicted().is_empty());
    }

    #[test]
    fn a_tcp_connection_is_a_source_of_its_own_and_is_reported_when_its_session_goes() {
        let crypto = rtc::crypto::default_provider().unwrap();
        let mut demux = Demuxer::new(crypto.clone());
        let (s1, s2) = (SessionId(7), SessionId(8));
        let pw = |s: SessionId| match s.0 {
            7 => Some("password-of-seven-seven"),
            8 => Some("password-of-eight-eight"),
            _ => None,
        };
        let c1 = check(
            &format!("{}:r", ufrag::encode(s1)),
            "password-of-seven-seven",
            crypto.crypto(),
        );
        let c2 = check(
            &format!("{}:r", ufrag::encode(s2)),
            "password-of-eight-eight",
            crypto.crypto(),
        );
        // One client address, once over TCP (session 7), once over UDP (8).
        assert_eq!(demux.route(tcp(3000), &c1, pw), Some(s1));
        assert_eq!(demux.route(addr(3000), &c2, pw), Some(s2));
        assert_eq!(demux.route(tcp(3000), &[23, 254, 253], pw), Some(s1));
        assert_eq!(demux.route(addr(3000), &[23, 254, 253], pw), Some(s2));
        assert_eq!(demux.route(tcp(3001), &[23, 254, 253], pw), None);
        assert!(demux.take_evicted().is_empty());
        demux.remove(s1);
        assert_eq!(demux.take_evicted(), vec![tcp(3000)]);
        assert_eq!(demux.route(tcp(3000), &[23, 254, 253], pw), None);
        assert_eq!(demux.route(addr(3000), &[23, 254, 253], pw), Some(s2));
    }
}
