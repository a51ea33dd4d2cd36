//! Identifiers that travel on the wire: node ids, ring ids, sequence numbers.
//!
//! Newtypes so that a sequence number can never be passed where a node id is
//! expected. Sequence numbers are 64-bit and restart at zero on every new
//! ring, so they never wrap in practice (2^64 messages); Totem's original
//! 32-bit sequence arithmetic with wrap-around is not needed.

use std::fmt;

/// A node's identity in the cluster, configured explicitly (never 0).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(u32);

impl NodeId {
    /// A node id, or `None` for 0, which is reserved ("no node").
    pub const fn new(raw: u32) -> Option<NodeId> {
        if raw == 0 {
            None
        } else {
            Some(NodeId(raw))
        }
    }

    /// The raw value, as it goes on the wire.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A message's position in a ring's total order. The first message of a ring
/// has seq 1; seq 0 means "nothing yet".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Seq(pub u64);

impl Seq {
    /// Before the first message of a ring.
    pub const ZERO: Seq = Seq(0);

    /// The next sequence number.
    pub const fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A ring's identity: its representative (lowest node id of the members, the
/// one that created it) and a ring sequence number that grows by 4 with each
/// new ring (openais's convention: view number = seq / 4).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RingId {
    /// The ring sequence number; compared first so rings order by age.
    pub seq: u64,
    /// The representative that formed the ring.
    pub rep: NodeId,
}

impl RingId {
    /// The view number CLM reports for this ring.
    pub const fn view_number(self) -> u64 {
        self.seq / 4
    }
}

impl fmt::Debug for RingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ring({}.{})", self.rep.0, self.seq)
    }
}

impl fmt::Display for RingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.rep.0, self.seq)
    }
}
