//! The forwarding graph: which publisher track goes to which subscriber sender.
//!
//! A published track is named by its publisher's session and the `mid` of its
//! m-line in the publisher's SDP (stable across renegotiations, unlike SSRCs). For
//! each one the table records, per subscriber, the sender the SFU added to that
//! subscriber's session; and it maps the publisher's RTP SSRCs to the track, since
//! an SRTP packet names nothing else.

use std::collections::{BTreeMap, HashMap, HashSet};

use rtc::rtp_transceiver::RTCRtpSenderId;

use super::session::SessionId;

/// One published track.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TrackKey {
    pub publisher: SessionId,
    pub mid: String,
}

/// Publisher tracks × subscriber senders, plus the SSRC index.
#[derive(Debug, Default)]
pub(crate) struct ForwardTable {
    /// Sorted, so fan-out and renegotiation happen in a stable order.
    senders: BTreeMap<TrackKey, BTreeMap<SessionId, RTCRtpSenderId>>,
    /// (publisher, SSRC) → track. Per publisher: SSRCs are the sender's choice,
    /// and one who picks another's cannot take their packets' place.
    ssrcs: HashMap<(SessionId, u32), TrackKey>,
}

impl ForwardTable {
    /// Forwardings (track × subscriber).
    pub(crate) fn len(&self) -> usize {
        self.senders.values().map(BTreeMap::len).sum()
    }

    pub(crate) fn has(&self, key: &TrackKey, subscriber: SessionId) -> bool {
        self.senders
            .get(key)
            .is_some_and(|subs| subs.contains_key(&subscriber))
    }

    pub(crate) fn insert(&mut self, key: TrackKey, subscriber: SessionId, sender: RTCRtpSenderId) {
        self.senders
            .entry(key)
            .or_default()
            .insert(subscriber, sender);
    }

    /// Route RTP of `key`'s publisher with `ssrc` to `key` (idempotent; the
    /// latest negotiation wins).
    pub(crate) fn bind_ssrc(&mut self, ssrc: u32, key: TrackKey) {
        self.ssrcs.insert((key.publisher, ssrc), key);
    }

    /// The track of `publisher` an SSRC belongs to.
    pub(crate) fn track_of(&self, publisher: SessionId, ssrc: u32) -> Option<&TrackKey> {
        self.ssrcs.get(&(publisher, ssrc))
    }

    /// The track forwarded to `subscriber` whose RTP carries `ssrc` (what their
    /// feedback names).
    pub(crate) fn forwarded_with(&self, subscriber: SessionId, ssrc: u32) -> Option<&TrackKey> {
        self.ssrcs
            .iter()
            .find(|((_, s), key)| *s == ssrc && self.has(key, subscriber))
            .map(|(_, key)| key)
    }

    /// The SSRCs RTP of one track arrives with.
    pub(crate) fn ssrcs_of<'a>(&'a self, key: &'a TrackKey) -> impl Iterator<Item = u32> + 'a {
        self.ssrcs
            .iter()
            .filter(move |(_, k)| *k == key)
            .map(|((_, ssrc), _)| *ssrc)
    }

    /// The subscribers' senders of one track.
    pub(crate) fn subscribers(&self, key: &TrackKey) -> Vec<(SessionId, RTCRtpSenderId)> {
        self.senders
            .get(key)
            .map(|subs| subs.iter().map(|(s, id)| (*s, *id)).collect())
            .unwrap_or_default()
    }

    /// The (track, sender) pairs forwarded to one subscriber.
    pub(crate) fn forwarded_to(&self, subscriber: SessionId) -> Vec<(TrackKey, RTCRtpSenderId)> {
        self.senders
            .iter()
            .filter_map(|(key, subs)| subs.get(&subscriber).map(|id| (key.clone(), *id)))
            .collect()
    }

    /// Drop every forwarding whose track is not in `published` or whose subscriber
    /// is not in `receiving`; returns them (subscriber, track, sender) so the caller
    /// can remove the senders. SSRCs of vanished tracks are forgotten.
    pub(crate) fn retain(
        &mut self,
        published: &HashSet<TrackKey>,
        receiving: &HashSet<SessionId>,
    ) -> Vec<(SessionId, TrackKey, RTCRtpSenderId)> {
        let mut removed = Vec::new();
        self.senders.retain(|key, subs| {
            let alive = published.contains(key);
            subs.retain(|sub, sender| {
                let keep = alive && receiving.contains(sub);
                if !keep {
                    removed.push((*sub, key.clone(), *sender));
                }
                keep
            });
            alive
        });
        self.ssrcs.retain(|_, key| published.contains(key));
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: u64, mid: &str) -> TrackKey {
        TrackKey {
            publisher: SessionId(p),
            mid: mid.into(),
        }
    }

    #[test]
    fn routes_by_ssrc_and_prunes_with_the_track() {
        let mut t = ForwardTable::default();
        t.insert(key(1, "0"), SessionId(2), RTCRtpSenderId::from(5));
        t.insert(key(1, "0"), SessionId(3), RTCRtpSenderId::from(6));
        t.bind_ssrc(1111, key(1, "0"));
        assert_eq!(t.track_of(SessionId(1), 1111), Some(&key(1, "0")));
        assert_eq!(t.forwarded_with(SessionId(2), 1111), Some(&key(1, "0")));
        // Publisher 4 picks the same SSRC: publisher 1's packets still route.
        t.bind_ssrc(1111, key(4, "0"));
        assert_eq!(t.track_of(SessionId(1), 1111), Some(&key(1, "0")));
        assert_eq!(t.track_of(SessionId(4), 1111), Some(&key(4, "0")));
        assert_eq!(t.forwarded_with(SessionId(2), 1111), Some(&key(1, "0")));
        assert_eq!(t.subscribers(&key(1, "0")).len(), 2);
        assert_eq!(t.forwarded_to(SessionId(3)).len(), 1);

        // Subscriber 3 left: only its sender goes.
        let published = HashSet::from([key(1, "0")]);
        let removed = t.retain(&published, &HashSet::from([SessionId(2)]));
        assert_eq!(
            removed,
            vec![(SessionId(3), key(1, "0"), RTCRtpSenderId::from(6))]
        );
        assert!(t.has(&key(1, "0"), SessionId(2)));

        // The publisher unpublished: the track, its senders and its SSRC go.
        let removed = t.retain(&HashSet::new(), &HashSet::from([SessionId(2)]));
        assert_eq!(removed.len(), 1);
        assert_eq!(t.track_of(SessionId(1), 1111), None);
    }
}
