//! Membership: who hears whom, and the Gather state (Totem paper, section 4:
//! "the membership algorithm").
//!
//! Gather follows the paper: every node broadcasts a join message with its
//! proc set (nodes it wants in the ring) and fail set (nodes it gave up on),
//! merges the sets of the joins it receives (union), and reaches consensus
//! once every node of proc \ fail sent a join with exactly its own sets. The
//! consensus timeout fails the nodes that did not agree in time. A join that
//! names us as failed makes us fail its sender (its links to us are broken).
//!
//! Deviation: stale joins. The paper's rounds assume a join reaches its
//! receivers while its round lasts. A join delayed past the round, or queued
//! while the receiver was paused, arrives in a later round with a fail set
//! that no longer holds; through the rule above and the union of fail sets
//! one such join makes every node fail every other, round after round. So
//! each join is stamped with its sender's epoch (the larger of its ring seq
//! and `max_ring_seq`), and a join older than a packet already received
//! from the same sender is dropped ([`Reachability::join_is_current`]).
//!
//! Deliberate deviation: reachability. Corosync's users suffer endless
//! reformations when a link works one way only: the deaf node fails the
//! other, the other fails it back, a third fails both, and merge detection
//! starts it all again. Here every node announces, every `merge` interval,
//! which nodes it heard recently (a [`crate::wire::Hello`]). With that matrix
//! (1) Gather removes, by one deterministic rule all nodes apply alike,
//! the nodes that break full connectivity ([`Reachability::exclusions`]),
//! and (2) an operational ring merges with another node only when every
//! pair of the merged ring is known to hear each other
//! ([`Reachability::fully_connected`]). A one-way link thus settles on a
//! stable ring without the deaf node, which merges back by itself once its
//! link heals.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::ids::NodeId;
use crate::time::Instant;
use crate::wire::{Hello, Join, MAX_MEMBERS};

/// What we know of one peer.
#[derive(Clone, Debug, Default)]
struct Peer {
    /// When we last received any valid packet it transmitted.
    last_heard: Option<Instant>,
    /// Since when we have heard it without a gap of more than half the
    /// window.
    streak_start: Option<Instant>,
    /// Its last announcement, and when it arrived.
    hello: Option<(Instant, Hello)>,
    /// The highest ring seq its packets showed it had seen (its epoch).
    epoch: u64,
}

/// Who hears whom, as far as this node knows.
///
/// Positive evidence (`a` hears `b`) is a recent announcement of `a` that
/// lists `b`, or for ourselves, a packet from `b` within the window. Negative
/// evidence is held to a higher standard, because announcements lag: `a`
/// is known *not* to hear `b` only if `a`'s recent announcement lacks `b`
/// although `b` had then been transmitting steadily (we heard it without
/// gaps) for a whole window and is still heard now. A node that just started
/// or just crashed thus never counts as a broken link. We never take our
/// own silence from `b` as evidence against ourselves: the others see it in
/// our announcements and exclude us.
#[derive(Clone, Debug)]
pub(crate) struct Reachability {
    me: NodeId,
    started: Instant,
    window: Duration,
    peers: BTreeMap<NodeId, Peer>,
}

/// At most this many peers are tracked; packets from further ones are not
/// recorded (bounds memory against forged sender ids).
const MAX_PEERS: usize = 4 * crate::wire::MAX_MEMBERS;

impl Reachability {
    pub(crate) fn new(me: NodeId, window: Duration, now: Instant) -> Reachability {
        Reachability {
            me,
            started: now,
            window,
            peers: BTreeMap::new(),
        }
    }

    fn peer_mut(&mut self, node: NodeId) -> Option<&mut Peer> {
        if !self.peers.contains_key(&node) && self.peers.len() >= MAX_PEERS {
            return None;
        }
        Some(self.peers.entry(node).or_default())
    }

    /// A valid packet transmitted by `node` arrived.
    pub(crate) fn heard(&mut self, now: Instant, node: NodeId) {
        if node == self.me {
            return;
        }
        let gap = self.window / 2;
        if let Some(p) = self.peer_mut(node) {
            let continuous = p
                .last_heard
                .is_some_and(|t| now.saturating_duration_since(t) <= gap);
            if !continuous {
                p.streak_start = Some(now);
            }
            p.last_heard = Some(now);
        }
    }

    /// `node` sent a packet showing that its highest ring seq was at least
    /// `epoch` (see [`crate::srp`]: a join's epoch is the larger of its ring
    /// seq and its `max_ring_seq`; any other packet's is its ring seq).
    pub(crate) fn note_epoch(&mut self, node: NodeId, epoch: u64) {
        if node == self.me {
            return;
        }
        if let Some(p) = self.peer_mut(node) {
            p.epoch = p.epoch.max(epoch);
        }
    }

    /// Whether a join of `node` with `epoch` belongs to its current round;
    /// notes the epoch if so. False if `node` sent a packet of a higher
    /// epoch before: this join was sent before that (a ring formed or
    /// proposed since), and is left over from an earlier round, delayed or
    /// queued while we were paused; acting on its sets (worse: on its fail
    /// set naming us) would tear apart the round in progress.
    ///
    /// Sound because a node's highest ring seq never goes down while it
    /// runs, and it persists it (`RingSeqHigh`) to start above it after a
    /// restart. A driver that does not persist it only delays the
    /// restarted node: our own next join (whose `max_ring_seq` is at least
    /// every epoch we noted) lifts its seq past the mark.
    pub(crate) fn join_is_current(&mut self, node: NodeId, epoch: u64) -> bool {
        if node == self.me {
            return true;
        }
        let Some(p) = self.peer_mut(node) else {
            return true;
        };
        if epoch < p.epoch {
            return false;
        }
        p.epoch = epoch;
        true
    }

    /// `node` announced itself.
    pub(crate) fn hello(&mut self, now: Instant, node: NodeId, hello: Hello) {
        if node == self.me {
            return;
        }
        self.heard(now, node);
        if let Some(p) = self.peer_mut(node) {
            p.hello = Some((now, hello));
        }
    }

    fn recent(&self, now: Instant, at: Instant) -> bool {
        now.saturating_duration_since(at) <= self.window
    }

    /// Whether we heard `node` within `within`.
    pub(crate) fn heard_within(&self, now: Instant, node: NodeId, within: Duration) -> bool {
        node == self.me
            || self
                .peers
                .get(&node)
                .and_then(|p| p.last_heard)
                .is_some_and(|t| now.saturating_duration_since(t) <= within)
    }

    /// The nodes we heard recently, ourselves included, ascending.
    pub(crate) fn heard_set(&self, now: Instant) -> Vec<NodeId> {
        let mut out: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.last_heard.is_some_and(|t| self.recent(now, t)))
            .map(|(&n, _)| n)
            .collect();
        // The wire carries at most MAX_MEMBERS: keep ourselves and the
        // lowest others (only forged senders could make more).
        out.truncate(crate::wire::MAX_MEMBERS - 1);
        out.push(self.me);
        out.sort_unstable();
        out
    }

    /// The members `node` announced for its ring, if it announced recently.
    pub(crate) fn announced_members(&self, now: Instant, node: NodeId) -> Option<&[NodeId]> {
        let (at, h) = self.peers.get(&node)?.hello.as_ref()?;
        self.recent(now, *at).then_some(h.members.as_slice())
    }

    /// Positive evidence that `a` hears `b`.
    fn hears(&self, now: Instant, a: NodeId, b: NodeId) -> bool {
        if a == b {
            return true;
        }
        if a == self.me {
            return self.heard_within(now, b, self.window);
        }
        let Some((at, h)) = self.peers.get(&a).and_then(|p| p.hello.as_ref()) else {
            return false;
        };
        self.recent(now, *at) && h.heard.binary_search(&b).is_ok()
    }

    /// Whether `b` has transmitted steadily since `since` and still does.
    fn steady_since(&self, now: Instant, b: NodeId, since: Instant) -> bool {
        if b == self.me {
            return self.started <= since;
        }
        let Some(p) = self.peers.get(&b) else {
            return false;
        };
        p.streak_start.is_some_and(|s| s <= since)
            && p.last_heard
                .is_some_and(|t| now.saturating_duration_since(t) <= self.window / 2)
    }

    /// Strong evidence that `a` does not hear `b` (see the type docs).
    fn broken(&self, now: Instant, a: NodeId, b: NodeId) -> bool {
        if a == b || a == self.me {
            return false;
        }
        let Some((at, h)) = self.peers.get(&a).and_then(|p| p.hello.as_ref()) else {
            return false;
        };
        if !self.recent(now, *at) || h.heard.binary_search(&b).is_ok() {
            return false;
        }
        let Some(since) = at
            .as_nanos()
            .checked_sub(u64::try_from(self.window.as_nanos()).unwrap_or(u64::MAX))
        else {
            return false;
        };
        // Both must have been around for a whole window: a node that just
        // started has not had time to hear anyone.
        let since = Instant::from_nanos(since);
        self.steady_since(now, a, since) && self.steady_since(now, b, since)
    }

    /// True when every ordered pair of `nodes` is known to hear each other.
    pub(crate) fn fully_connected(&self, now: Instant, nodes: &BTreeSet<NodeId>) -> bool {
        nodes
            .iter()
            .all(|&a| nodes.iter().all(|&b| self.hears(now, a, b)))
    }

    /// The nodes to remove from `candidates` so that no known broken link
    /// remains, by a rule every node applies alike: while some link is
    /// known broken, remove the node with the most broken links, then the
    /// one that is deaf to more, then the highest id. Links without strong
    /// evidence count as working: crashed nodes are the consensus timeout's
    /// business.
    pub(crate) fn exclusions(
        &self,
        now: Instant,
        candidates: &BTreeSet<NodeId>,
    ) -> BTreeSet<NodeId> {
        let mut left: BTreeSet<NodeId> = candidates.clone();
        let mut out = BTreeSet::new();
        loop {
            let mut worst: Option<((usize, usize, NodeId), NodeId)> = None;
            for &n in &left {
                let mut deaf = 0;
                let mut mute = 0;
                for &m in &left {
                    if self.broken(now, n, m) {
                        deaf += 1;
                    }
                    if self.broken(now, m, n) {
                        mute += 1;
                    }
                }
                if deaf + mute == 0 {
                    continue;
                }
                let key = (deaf + mute, deaf, n);
                if worst.as_ref().is_none_or(|(k, _)| key > *k) {
                    worst = Some((key, n));
                }
            }
            match worst {
                Some((_, n)) => {
                    left.remove(&n);
                    out.insert(n);
                }
                None => return out,
            }
        }
    }
}

/// What a Gather round has learned so far.
#[derive(Clone, Debug)]
pub(crate) struct Gather {
    pub(crate) proc_set: BTreeSet<NodeId>,
    pub(crate) fail_set: BTreeSet<NodeId>,
    /// The last join from each node, this round.
    joins: BTreeMap<NodeId, (Vec<NodeId>, Vec<NodeId>)>,
    /// Set once we sent a commit token for the current sets, so we do not
    /// send it twice.
    pub(crate) commit_sent: bool,
}

/// What a received join changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JoinOutcome {
    /// The sender is in our fail set: ignored.
    Ignored,
    /// Recorded; our sets did not change.
    Recorded,
    /// Our sets grew: we must announce them.
    Changed,
}

impl Gather {
    pub(crate) fn new(proc_set: BTreeSet<NodeId>, fail_set: BTreeSet<NodeId>) -> Gather {
        Gather {
            proc_set,
            fail_set,
            joins: BTreeMap::new(),
            commit_sent: false,
        }
    }

    /// Forgets the joins recorded so far: after a failed commit they no
    /// longer prove anyone still agrees.
    pub(crate) fn forget_joins(&mut self) {
        self.joins.clear();
        self.commit_sent = false;
    }

    /// The nodes the new ring would have: proc \ fail.
    pub(crate) fn members(&self) -> BTreeSet<NodeId> {
        self.proc_set.difference(&self.fail_set).copied().collect()
    }

    /// Adds to the sets; true if anything changed. Refuses (changes
    /// nothing, returns false) a growth past `MAX_MEMBERS` known nodes:
    /// sets travel in join messages, which carry at most that many, and
    /// only forged or misconfigured senders can name more.
    pub(crate) fn grow(
        &mut self,
        procs: impl IntoIterator<Item = NodeId>,
        fails: impl IntoIterator<Item = NodeId>,
    ) -> bool {
        let fails: Vec<NodeId> = fails.into_iter().collect();
        let mut proc_set = self.proc_set.clone();
        proc_set.extend(procs);
        // A failed node is always also a known node.
        proc_set.extend(fails.iter().copied());
        if proc_set.len() > MAX_MEMBERS {
            return false;
        }
        let before = (self.proc_set.len(), self.fail_set.len());
        self.proc_set = proc_set;
        self.fail_set.extend(fails);
        let changed = before != (self.proc_set.len(), self.fail_set.len());
        if changed {
            self.commit_sent = false;
        }
        changed
    }

    /// Handles a join from `sender` (Totem paper, Gather state).
    pub(crate) fn handle_join(&mut self, me: NodeId, sender: NodeId, join: &Join) -> JoinOutcome {
        if self.fail_set.contains(&sender) {
            return JoinOutcome::Ignored;
        }
        let changed = if join.fail_set.binary_search(&me).is_ok() {
            // The sender cannot hear us: we give it up too, so neither waits
            // for the other.
            self.grow([sender], [sender])
        } else {
            self.grow(
                join.proc_set.iter().copied().chain([sender]),
                join.fail_set.iter().copied(),
            )
        };
        if !self.proc_set.contains(&sender) {
            // Its sets would not fit (see `grow`): not a party to this round.
            return JoinOutcome::Ignored;
        }
        // Bounded: only nodes of proc_set (at most MAX_MEMBERS) are recorded.
        self.joins
            .insert(sender, (join.proc_set.clone(), join.fail_set.clone()));
        if changed {
            JoinOutcome::Changed
        } else {
            JoinOutcome::Recorded
        }
    }

    /// Consensus: every node of proc \ fail other than us sent a join with
    /// exactly our sets.
    pub(crate) fn consensus(&self, me: NodeId) -> bool {
        self.members()
            .into_iter()
            .filter(|&n| n != me)
            .all(|n| self.agrees(n))
    }

    /// Whether `node`'s last join this round carried exactly our sets.
    fn agrees(&self, node: NodeId) -> bool {
        self.joins.get(&node).is_some_and(|(p, f)| {
            p.iter().eq(self.proc_set.iter()) && f.iter().eq(self.fail_set.iter())
        })
    }

    /// Consensus timeout: fails every node of proc \ fail that did not agree.
    /// Returns true if the sets changed.
    pub(crate) fn fail_disagreeing(&mut self, me: NodeId) -> bool {
        let silent: Vec<NodeId> = self
            .members()
            .into_iter()
            .filter(|&n| n != me && !self.agrees(n))
            .collect();
        self.grow([], silent)
    }

    /// The join message announcing our sets.
    pub(crate) fn join_message(&self, max_ring_seq: u64) -> Join {
        Join {
            max_ring_seq,
            proc_set: self.proc_set.iter().copied().collect(),
            fail_set: self.fail_set.iter().copied().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WireState;

    fn n(i: u32) -> NodeId {
        NodeId::new(i).expect("nonzero")
    }

    fn set(ids: &[u32]) -> BTreeSet<NodeId> {
        ids.iter().map(|&i| n(i)).collect()
    }

    fn hello(members: &[u32], heard: &[u32]) -> Hello {
        Hello {
            state: WireState::Operational,
            members: members.iter().map(|&i| n(i)).collect(),
            heard: heard.iter().map(|&i| n(i)).collect(),
        }
    }

    #[test]
    fn one_way_link_excludes_the_deaf_node_on_every_node_but_itself() {
        // Node 2 does not hear node 1; everyone else hears everyone. Every
        // node has been up and heard steadily for 3 s.
        let w = Duration::from_secs(2);
        let t0 = Instant::from_nanos(0);
        let now = t0 + Duration::from_secs(3);
        let all = set(&[1, 2, 3, 4, 5]);
        for me in 1..=5u32 {
            let mut r = Reachability::new(n(me), w, t0);
            let mut t = t0;
            while t <= now {
                for p in 1..=5u32 {
                    if p == me || (me == 2 && p == 1) {
                        continue;
                    }
                    let heard: Vec<u32> = if p == 2 {
                        vec![2, 3, 4, 5]
                    } else {
                        vec![1, 2, 3, 4, 5]
                    };
                    r.hello(t, n(p), hello(&[1, 2, 3, 4, 5], &heard));
                }
                t = t + Duration::from_millis(200);
            }
            let expected = if me == 2 { set(&[]) } else { set(&[2]) };
            assert_eq!(r.exclusions(now, &all), expected, "as seen by node {me}");
            assert!(!r.fully_connected(now, &all));
            if me != 2 {
                assert!(r.fully_connected(now, &set(&[1, 3, 4, 5])));
            }
        }
    }

    #[test]
    fn a_node_that_just_appeared_is_not_evidence_of_a_broken_link() {
        let w = Duration::from_secs(2);
        let t0 = Instant::from_nanos(0);
        let mut r = Reachability::new(n(1), w, t0);
        // 3 just started: its announcement lists only itself.
        let now = t0 + Duration::from_secs(5);
        r.hello(now, n(2), hello(&[2], &[1, 2]));
        r.hello(now, n(3), hello(&[3], &[3]));
        assert!(r.exclusions(now, &set(&[1, 2, 3])).is_empty());
        assert!(
            !r.fully_connected(now, &set(&[1, 3])),
            "no positive evidence yet"
        );
        assert!(r.fully_connected(now, &set(&[1, 2])));
    }

    #[test]
    fn stale_announcements_are_not_evidence() {
        let w = Duration::from_secs(2);
        let t0 = Instant::from_nanos(0);
        let mut r = Reachability::new(n(1), w, t0);
        r.hello(t0, n(2), hello(&[2], &[1, 2]));
        let later = t0 + Duration::from_secs(3);
        r.heard(later, n(2));
        assert!(
            !r.fully_connected(later, &set(&[1, 2])),
            "2's announcement is stale"
        );
        r.hello(later, n(2), hello(&[2], &[1, 2]));
        assert!(r.fully_connected(later, &set(&[1, 2])));
    }

    #[test]
    fn gather_reaches_consensus_only_on_identical_sets() {
        let me = n(1);
        let mut g = Gather::new(set(&[1, 2]), BTreeSet::new());
        assert!(!g.consensus(me));
        let j = Join {
            max_ring_seq: 0,
            proc_set: vec![n(1), n(2), n(3)],
            fail_set: vec![],
        };
        assert_eq!(g.handle_join(me, n(2), &j), JoinOutcome::Changed);
        assert!(!g.consensus(me), "3 has not agreed");
        assert_eq!(g.handle_join(me, n(3), &j), JoinOutcome::Recorded);
        assert!(g.consensus(me));
        assert_eq!(g.members(), set(&[1, 2, 3]));
    }

    #[test]
    fn joins_naming_more_nodes_than_a_ring_holds_are_refused_whole() {
        let me = n(1);
        let mut g = Gather::new(set(&[1]), BTreeSet::new());
        for sender in 2..=40u32 {
            let j = Join {
                max_ring_seq: 0,
                proc_set: vec![n(sender)],
                fail_set: vec![],
            };
            let outcome = g.handle_join(me, n(sender), &j);
            let fits = sender as usize <= MAX_MEMBERS;
            assert_eq!(outcome == JoinOutcome::Changed, fits, "sender {sender}");
        }
        assert_eq!(g.proc_set.len(), MAX_MEMBERS);
        assert_eq!(
            g.joins.len(),
            MAX_MEMBERS - 1,
            "refused senders are not recorded"
        );
        // The join we would send still encodes.
        let p = crate::wire::Packet {
            sender: me,
            ring_id: crate::ids::RingId { seq: 1, rep: me },
            body: crate::wire::Body::Join(g.join_message(0)),
        };
        assert!(!p.encode().is_empty());
    }

    #[test]
    fn join_naming_us_failed_fails_its_sender_and_consensus_timeout_fails_the_silent() {
        let me = n(1);
        let mut g = Gather::new(set(&[1, 2, 3]), BTreeSet::new());
        let j = Join {
            max_ring_seq: 0,
            proc_set: vec![n(1), n(2), n(3)],
            fail_set: vec![n(1)],
        };
        assert_eq!(g.handle_join(me, n(2), &j), JoinOutcome::Changed);
        assert_eq!(g.fail_set, set(&[2]));
        assert_eq!(g.handle_join(me, n(2), &j), JoinOutcome::Ignored);
        assert!(g.fail_disagreeing(me));
        assert_eq!(g.members(), set(&[1]));
        assert!(g.consensus(me));
    }
}
