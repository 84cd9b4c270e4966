//! In-memory history: the chat backlog for late joiners and the event log for
//! resuming clients. Both are bounded by count and by bytes; nothing touches disk.

use std::collections::VecDeque;

use crate::protocol::{ChatMessage, Envelope, Reaction};

/// Fixed per-message overhead counted against the byte bound (ids, timestamps,
/// JSON punctuation), so a flood of empty-ish messages is bounded too.
const MESSAGE_OVERHEAD: usize = 64;

/// The last chat messages, oldest first, with edits, deletes and reactions applied.
#[derive(Debug)]
pub struct Backlog {
    max_messages: usize,
    max_bytes: usize,
    bytes: usize,
    messages: VecDeque<ChatMessage>,
}

fn message_bytes(m: &ChatMessage) -> usize {
    let reactions: usize = m
        .reactions
        .iter()
        .map(|r| r.emoji.len() + r.participants.iter().map(|p| p.len() + 3).sum::<usize>())
        .sum();
    MESSAGE_OVERHEAD + m.text.len() + m.from.len() + reactions
}

impl Backlog {
    pub fn new(max_messages: usize, max_bytes: usize) -> Self {
        Self {
            max_messages,
            max_bytes,
            bytes: 0,
            messages: VecDeque::new(),
        }
    }

    /// Append a message and evict the oldest ones beyond the bounds.
    pub fn push(&mut self, message: ChatMessage) {
        self.bytes += message_bytes(&message);
        self.messages.push_back(message);
        self.enforce();
    }

    fn enforce(&mut self) {
        while self.messages.len() > self.max_messages || self.bytes > self.max_bytes {
            match self.messages.pop_front() {
                Some(m) => self.bytes -= message_bytes(&m),
                None => break,
            }
        }
    }

    fn index(&self, id: u64) -> Option<usize> {
        // Ids are sequence numbers, so the deque is sorted by id.
        self.messages.binary_search_by_key(&id, |m| m.id).ok()
    }

    /// The message with this id, if it is still held.
    pub fn get(&self, id: u64) -> Option<&ChatMessage> {
        self.index(id).map(|i| &self.messages[i])
    }

    /// Change a held message and re-apply the bounds.
    pub fn update(&mut self, id: u64, f: impl FnOnce(&mut ChatMessage)) -> bool {
        let Some(i) = self.index(id) else {
            return false;
        };
        let m = &mut self.messages[i];
        self.bytes -= message_bytes(m);
        f(m);
        self.bytes += message_bytes(m);
        self.enforce();
        true
    }

    pub fn remove(&mut self, id: u64) -> bool {
        match self.index(id).and_then(|i| self.messages.remove(i)) {
            Some(m) => {
                self.bytes -= message_bytes(&m);
                true
            }
            None => false,
        }
    }

    pub fn snapshot(&self) -> Vec<ChatMessage> {
        self.messages.iter().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Add or remove `who`'s `emoji` on a message; false when the bound on distinct
/// emoji per message is reached.
pub fn apply_reaction(
    m: &mut ChatMessage,
    who: &str,
    emoji: &str,
    remove: bool,
    max_kinds: usize,
) -> bool {
    match m.reactions.iter().position(|r| r.emoji == emoji) {
        Some(i) => {
            let r = &mut m.reactions[i];
            r.participants.retain(|p| p != who);
            if !remove {
                r.participants.push(who.to_owned());
            }
            if r.participants.is_empty() {
                m.reactions.remove(i);
            }
            true
        }
        None if remove => true,
        None if m.reactions.len() >= max_kinds => false,
        None => {
            m.reactions.push(Reaction {
                emoji: emoji.to_owned(),
                participants: vec![who.to_owned()],
            });
            true
        }
    }
}

/// Recent room events for clients that resume after a reconnect.
#[derive(Debug)]
pub struct ReplayLog {
    max_events: usize,
    max_bytes: usize,
    bytes: usize,
    events: VecDeque<(Envelope, usize)>,
    /// Highest `seq` dropped from the log; a resume from below it is incomplete.
    evicted_upto: u64,
}

impl ReplayLog {
    pub fn new(max_events: usize, max_bytes: usize) -> Self {
        Self {
            max_events,
            max_bytes,
            bytes: 0,
            events: VecDeque::new(),
            evicted_upto: 0,
        }
    }

    /// Keep an event whose serialized form is `len` bytes long.
    pub fn push(&mut self, env: Envelope, len: usize) {
        self.bytes += len;
        self.events.push_back((env, len));
        while self.events.len() > self.max_events || self.bytes > self.max_bytes {
            match self.events.pop_front() {
                Some((e, l)) => {
                    self.bytes -= l;
                    self.evicted_upto = e.seq;
                }
                None => break,
            }
        }
    }

    /// Every logged event after `seq`, or `None` if some were already dropped.
    pub fn since(&self, seq: u64) -> Option<Vec<Envelope>> {
        if seq < self.evicted_upto {
            return None;
        }
        let start = self.events.partition_point(|(e, _)| e.seq <= seq);
        Some(self.events.range(start..).map(|(e, _)| e.clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ServerEvent;

    fn mk_msg(id: u64, text: &str) -> ChatMessage {
        ChatMessage {
            id,
            ts: 0,
            from: "u".into(),
            text: text.into(),
            edited: false,
            reactions: vec![],
        }
    }

    #[test]
    fn backlog_is_bounded_by_count_and_bytes() {
        let mut b = Backlog::new(3, 10_000);
        for id in 1..=5 {
            b.push(mk_msg(id, "hi"));
        }
        assert_eq!(
            b.snapshot().iter().map(|m| m.id).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        let mut b = Backlog::new(100, 2 * (MESSAGE_OVERHEAD + 1 + 100));
        for id in 1..=5 {
            b.push(mk_msg(id, &"x".repeat(100)));
        }
        assert_eq!(b.len(), 2);
        assert!(b.bytes() <= 2 * (MESSAGE_OVERHEAD + 1 + 100));
        assert!(b.remove(5));
        assert!(!b.remove(1));
        assert!(b.update(4, |m| m.text = "y".into()));
        assert_eq!(b.get(4).unwrap().text, "y");
    }

    #[test]
    fn reactions_toggle_and_are_bounded() {
        let mut m = mk_msg(1, "hi");
        assert!(apply_reaction(&mut m, "a", "👍", false, 1));
        assert!(apply_reaction(&mut m, "b", "👍", false, 1));
        assert!(!apply_reaction(&mut m, "a", "🎉", false, 1));
        assert_eq!(m.reactions[0].participants, ["a", "b"]);
        assert!(apply_reaction(&mut m, "a", "👍", true, 1));
        assert!(apply_reaction(&mut m, "b", "👍", true, 1));
        assert!(m.reactions.is_empty());
    }

    #[test]
    fn replay_log_knows_when_a_resume_is_incomplete() {
        let mut log = ReplayLog::new(2, 1000);
        for seq in 1..=4 {
            let env = Envelope {
                seq,
                ts: 0,
                event: ServerEvent::Deleted { message_id: seq },
            };
            log.push(env, 10);
        }
        assert_eq!(log.since(1), None);
        let seqs = |v: Vec<Envelope>| v.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(log.since(2).unwrap()), [3, 4]);
        assert_eq!(seqs(log.since(3).unwrap()), [4]);
        assert!(log.since(4).unwrap().is_empty());
    }
}
