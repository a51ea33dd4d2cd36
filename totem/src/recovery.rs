//! Recovery (Totem paper, section 4.4): before a new ring is installed, the
//! members that come from the same old ring exchange that ring's messages,
//! so they all deliver the same set of them (virtual synchrony).
//!
//! The commit token tells each member, for every other member, its old ring,
//! its aru and its highest received seq there. For our old ring:
//! `low` = the lowest aru and `high` = the highest seq received among the
//! members coming from it. Everything in (low, high] that someone has is
//! re-sent in the new ring, wrapped as [`crate::wire::Recovered`]. To avoid
//! sending everything once per member, the member with the highest aru
//! (lowest id on a tie) re-sends (low, its aru]; every member re-sends what it
//! holds above that aru. Messages are deduplicated by their old seq.
//!
//! Then the new ring installs: each member delivers the old ring's remaining
//! messages in order, skipping gaps (see `ordering::Log::drain_for_install`),
//! with the transitional configuration delivered before the first message
//! that the regular configuration could not have delivered (a gap, or a safe
//! message beyond the old safe line), then the regular configuration.
//!
//! The safe line used for that split is one all transitional members agree
//! on: the highest `high_delivered` any of them reported in the commit token
//! (or our own safe line if higher; it never is, since a member delivers up
//! to its safe line at once). A member's own safe line alone is not enough:
//! it learns the line from the token, so one member may have delivered a
//! safe message in the regular configuration that another, which had not
//! yet seen the token that made it safe, would deliver in the transitional
//! one, and two members moving together would disagree on what the regular
//! configuration delivered (extended virtual synchrony). Everything up to
//! that line is in every member's log after recovery: the member that
//! delivered it held it all, and recovery re-sends what anyone holds.
//!
//! Deviation from the paper: messages after a gap are delivered in the
//! transitional configuration instead of being discarded (as corosync does):
//! a gap's originator cannot be a transitional member, since every member
//! holds its own messages, so this keeps self-delivery for every survivor.

use std::collections::BTreeSet;

use crate::ids::{NodeId, RingId, Seq};
use crate::wire::MemberEntry;

/// What this member must do in Recovery, derived from the commit token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecoveryPlan {
    /// Members of the new ring that come from our old ring (us included):
    /// the transitional configuration.
    pub(crate) transitional: Vec<NodeId>,
    /// Lowest aru among them.
    pub(crate) low: Seq,
    /// Highest received seq among them.
    pub(crate) high: Seq,
    /// Highest seq delivered by any of them in the old ring: every one of
    /// them delivers up to here in the old regular configuration.
    pub(crate) delivered: Seq,
    /// We re-send what we hold in (resend_from, high]...
    pub(crate) resend_from: Seq,
    /// ...except that the member with the highest aru also covers
    /// (low, its aru]; this is that range's start when it is us.
    pub(crate) resend_low_part: bool,
}

impl RecoveryPlan {
    /// Computes the plan for `me`, whose old ring is `old_ring`, from the
    /// commit token's `members` and filled `entries`.
    /// `None` if the entries do not match the members or do not place `me`
    /// in `old_ring`: a genuine commit token always does (we filled our
    /// entry ourselves), so only a forged or corrupt one is refused.
    pub(crate) fn new(
        me: NodeId,
        old_ring: RingId,
        members: &[NodeId],
        entries: &[MemberEntry],
    ) -> Option<RecoveryPlan> {
        if members.len() != entries.len() {
            return None;
        }
        let same: Vec<(NodeId, MemberEntry)> = members
            .iter()
            .zip(entries)
            .filter(|(_, e)| e.old_ring == old_ring)
            .map(|(&n, &e)| (n, e))
            .collect();
        if !same.iter().any(|(n, _)| *n == me) {
            return None;
        }
        let low = same.iter().map(|(_, e)| e.aru).min().unwrap_or(Seq::ZERO);
        let high = same
            .iter()
            .map(|(_, e)| e.high_received)
            .max()
            .unwrap_or(Seq::ZERO);
        let delivered = same
            .iter()
            .map(|(_, e)| e.high_delivered)
            .max()
            .unwrap_or(Seq::ZERO);
        // Highest aru, lowest id on a tie.
        let (best, best_entry) = same
            .iter()
            .copied()
            .max_by(|(na, ea), (nb, eb)| ea.aru.cmp(&eb.aru).then(nb.cmp(na)))
            .unwrap_or((me, same[0].1));
        let transitional: BTreeSet<NodeId> = same.iter().map(|(n, _)| *n).collect();
        Some(RecoveryPlan {
            transitional: transitional.into_iter().collect(),
            low,
            high,
            delivered,
            resend_from: best_entry.aru,
            resend_low_part: best == me,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: u32) -> NodeId {
        NodeId::new(i).expect("nonzero")
    }

    fn entry(ring: RingId, aru: u64, high: u64) -> MemberEntry {
        MemberEntry {
            old_ring: ring,
            aru: Seq(aru),
            high_delivered: Seq(aru),
            high_received: Seq(high),
        }
    }

    #[test]
    fn plan_groups_members_by_old_ring_and_splits_the_resend() {
        let a = RingId { seq: 8, rep: n(1) };
        let b = RingId { seq: 12, rep: n(3) };
        let members = [n(1), n(2), n(3), n(4)];
        let entries = [
            entry(a, 5, 9),
            entry(a, 7, 8),
            entry(b, 2, 2),
            entry(a, 3, 10),
        ];
        let p1 = RecoveryPlan::new(n(1), a, &members, &entries).expect("valid");
        assert_eq!(p1.transitional, vec![n(1), n(2), n(4)]);
        assert_eq!((p1.low, p1.high), (Seq(3), Seq(10)));
        assert_eq!(p1.delivered, Seq(7), "the highest delivered of 1, 2, 4");
        assert_eq!(p1.resend_from, Seq(7));
        assert!(!p1.resend_low_part);
        let p2 = RecoveryPlan::new(n(2), a, &members, &entries).expect("valid");
        assert!(p2.resend_low_part, "2 has the highest aru");
        let p3 = RecoveryPlan::new(n(3), b, &members, &entries).expect("valid");
        assert_eq!(p3.transitional, vec![n(3)]);
        assert_eq!((p3.low, p3.high), (Seq(2), Seq(2)));
        // A forged token: our entry names another old ring, or is missing.
        assert_eq!(RecoveryPlan::new(n(3), a, &members, &entries), None);
        assert_eq!(RecoveryPlan::new(n(1), a, &members, &entries[..3]), None);
    }
}
