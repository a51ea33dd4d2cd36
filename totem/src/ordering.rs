//! The receive log of one ring: which messages arrived, the all-received-up-to
//! point (aru), and agreed and safe delivery (Totem paper, section 3.1).
//!
//! Messages are kept from the last freed seq to the highest received, so
//! that any member's retransmission request or a Recovery can be served.
//! A message is freed once every member has it (the safe line) and it was
//! delivered here. The log refuses messages too far ahead of its aru, which
//! bounds its size: the token's flow control never lets a correct sender
//! get that far ahead, so only a buggy or hostile sender is refused.

use std::collections::BTreeMap;

use crate::ids::{RingId, Seq};
use crate::wire::{Guarantee, Mcast};

/// Why a message was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Insert {
    /// Stored; it may have advanced the aru.
    New,
    /// Already had it (or it was delivered and freed).
    Duplicate,
    /// Beyond what flow control allows; dropped.
    TooFarAhead,
}

/// The receive log of one ring.
#[derive(Clone, Debug)]
pub(crate) struct Log {
    ring_id: RingId,
    msgs: BTreeMap<Seq, Mcast>,
    /// Every message up to here was received.
    aru: Seq,
    /// Highest seq received.
    high: Seq,
    /// Every message up to here was delivered (or, at install, skipped).
    delivered: Seq,
    /// Every member has every message up to here.
    safe_line: Seq,
    /// How far beyond the aru a message may be and still be stored.
    limit_ahead: u64,
}

impl Log {
    pub(crate) fn new(ring_id: RingId, limit_ahead: u64) -> Log {
        Log {
            ring_id,
            msgs: BTreeMap::new(),
            aru: Seq::ZERO,
            high: Seq::ZERO,
            delivered: Seq::ZERO,
            safe_line: Seq::ZERO,
            limit_ahead,
        }
    }

    pub(crate) fn ring_id(&self) -> RingId {
        self.ring_id
    }

    pub(crate) fn aru(&self) -> Seq {
        self.aru
    }

    pub(crate) fn high(&self) -> Seq {
        self.high
    }

    pub(crate) fn delivered(&self) -> Seq {
        self.delivered
    }

    pub(crate) fn safe_line(&self) -> Seq {
        self.safe_line
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.msgs.len()
    }

    pub(crate) fn get(&self, seq: Seq) -> Option<&Mcast> {
        self.msgs.get(&seq)
    }

    /// Stores `m` (keyed by `m.seq`).
    pub(crate) fn insert(&mut self, m: Mcast) -> Insert {
        let seq = m.seq;
        if seq <= self.aru || self.msgs.contains_key(&seq) {
            return Insert::Duplicate;
        }
        if seq.0 > self.aru.0.saturating_add(self.limit_ahead) {
            return Insert::TooFarAhead;
        }
        self.msgs.insert(seq, m);
        if seq > self.high {
            self.high = seq;
        }
        while self.msgs.contains_key(&self.aru.next()) {
            self.aru = self.aru.next();
        }
        Insert::New
    }

    /// Seqs up to `upto` that are missing, ascending, at most `max`.
    pub(crate) fn missing(&self, upto: Seq, max: usize) -> Vec<Seq> {
        let mut out = Vec::new();
        let mut s = self.aru.next();
        while s <= upto && out.len() < max {
            if !self.msgs.contains_key(&s) {
                out.push(s);
            }
            s = s.next();
        }
        out
    }

    /// Raises the safe line (it never goes down) and frees what every member
    /// has and this node delivered.
    pub(crate) fn set_safe_line(&mut self, line: Seq) {
        if line > self.safe_line {
            self.safe_line = line.min(self.aru);
        }
        self.free();
    }

    fn free(&mut self) {
        let upto = self.safe_line.min(self.delivered);
        while let Some((&seq, _)) = self.msgs.first_key_value() {
            if seq > upto {
                break;
            }
            self.msgs.remove(&seq);
        }
    }

    /// The next message deliverable in the regular configuration: all lower
    /// seqs delivered, and for a safe message, every member has it.
    pub(crate) fn pop_deliverable(&mut self) -> Option<Mcast> {
        let next = self.delivered.next();
        let m = self.msgs.get(&next)?;
        if m.guarantee == Guarantee::Safe && next > self.safe_line {
            return None;
        }
        let m = m.clone();
        self.delivered = next;
        self.free();
        Some(m)
    }

    /// Messages with low < seq <= high that this log holds, ascending.
    pub(crate) fn held_in(&self, low: Seq, high: Seq) -> Vec<Mcast> {
        if high <= low {
            return Vec::new();
        }
        self.msgs
            .range(low.next()..=high)
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// At installation of a new ring: every undelivered message up to `high`,
    /// in order, skipping the gaps (a gap is a message no surviving member
    /// of this ring received, so its originator left). Marks them delivered.
    pub(crate) fn drain_for_install(&mut self, high: Seq) -> Vec<Mcast> {
        let from = self.delivered.next();
        let out: Vec<Mcast> = if high < from {
            Vec::new()
        } else {
            self.msgs
                .range(from..=high)
                .map(|(_, m)| m.clone())
                .collect()
        };
        if high > self.delivered {
            self.delivered = high;
        }
        out
    }

    /// Marks everything up to `seq` delivered without delivering it: the
    /// seqs a new ring used for recovered messages of old rings.
    pub(crate) fn skip_delivery_to(&mut self, seq: Seq) {
        if seq > self.delivered {
            self.delivered = seq;
        }
        self.free();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::NodeId;
    use crate::wire::McastContent;
    use bytes::Bytes;

    fn ring() -> RingId {
        RingId {
            seq: 4,
            rep: NodeId::new(1).expect("nonzero"),
        }
    }

    fn msg(seq: u64, g: Guarantee) -> Mcast {
        Mcast {
            seq: Seq(seq),
            origin: NodeId::new(2).expect("nonzero"),
            guarantee: g,
            content: McastContent::Frame(Bytes::from(vec![seq as u8])),
        }
    }

    #[test]
    fn aru_advances_only_over_contiguous_messages() {
        let mut log = Log::new(ring(), 100);
        assert_eq!(log.insert(msg(2, Guarantee::Agreed)), Insert::New);
        assert_eq!(log.aru(), Seq(0));
        assert_eq!(log.high(), Seq(2));
        assert_eq!(log.missing(Seq(4), 10), vec![Seq(1), Seq(3), Seq(4)]);
        assert_eq!(log.insert(msg(1, Guarantee::Agreed)), Insert::New);
        assert_eq!(log.aru(), Seq(2));
        assert_eq!(log.insert(msg(1, Guarantee::Agreed)), Insert::Duplicate);
        assert_eq!(log.insert(msg(103, Guarantee::Agreed)), Insert::TooFarAhead);
    }

    #[test]
    fn agreed_delivers_in_order_and_safe_waits_for_the_safe_line() {
        let mut log = Log::new(ring(), 100);
        log.insert(msg(1, Guarantee::Agreed));
        log.insert(msg(2, Guarantee::Safe));
        log.insert(msg(3, Guarantee::Agreed));
        assert_eq!(log.pop_deliverable().map(|m| m.seq), Some(Seq(1)));
        assert_eq!(
            log.pop_deliverable(),
            None,
            "safe 2 is not yet safe, 3 waits behind it"
        );
        log.set_safe_line(Seq(2));
        assert_eq!(log.pop_deliverable().map(|m| m.seq), Some(Seq(2)));
        assert_eq!(log.pop_deliverable().map(|m| m.seq), Some(Seq(3)));
        assert_eq!(
            log.len(),
            1,
            "1 and 2 are freed: delivered and safe; 3 is not safe yet"
        );
        log.set_safe_line(Seq(3));
        assert_eq!(log.len(), 0);
    }

    #[test]
    fn install_drain_skips_gaps_and_stops_at_high() {
        let mut log = Log::new(ring(), 100);
        for s in [1, 2, 4, 5, 7] {
            log.insert(msg(s, Guarantee::Agreed));
        }
        assert_eq!(log.pop_deliverable().map(|m| m.seq), Some(Seq(1)));
        let seqs: Vec<u64> = log
            .drain_for_install(Seq(5))
            .iter()
            .map(|m| m.seq.0)
            .collect();
        assert_eq!(seqs, vec![2, 4, 5]);
        assert_eq!(log.delivered(), Seq(5));
        assert_eq!(log.held_in(Seq(3), Seq(9)).len(), 3);
    }
}
