//! The Totem packet format.
//!
//! Every datagram is one [`Packet`]:
//!
//! ```text
//! offset size field
//! 0      2    magic 0x544D ("TM")
//! 2      1    version (WIRE_VERSION)
//! 3      1    packet type (PacketType)
//! 4      4    sender node id (the node that transmitted this datagram)
//! 8      4    ring id: representative node id
//! 12     8    ring id: ring sequence number
//! 20     4    body length in bytes
//! 24     n    body (per type, below)
//! 24+n   4    CRC-32 (crc32fast, IEEE) of bytes 0..24+n
//! ```
//!
//! All integers are big-endian. The CRC is checked before any other field is
//! trusted; then the header, then the body is decoded with every length
//! checked against what remains, so no input can make the decoder panic or
//! allocate more than the datagram's own size. Decoding is strict: trailing
//! bytes after a body are an error, so every packet has exactly one encoding.
//!
//! What the header's ring id means per type: for Mcast and Token, the ring
//! the packet belongs to; for Join and Hello, the sender's current
//! (installed) ring; for Commit, the new ring being formed.

use bytes::Bytes;

use crate::ids::{NodeId, RingId, Seq};

/// First two bytes of every packet.
pub const MAGIC: u16 = 0x544D;
/// Bumped on any incompatible change; other versions are dropped and counted.
pub const WIRE_VERSION: u8 = 1;
/// Bytes of the fixed header.
pub const HEADER_BYTES: usize = 24;
/// Bytes of the CRC trailer.
pub const TRAILER_BYTES: usize = 4;
/// Largest ring: bounds every per-member list on the wire.
pub const MAX_MEMBERS: usize = 64;
/// Most entries in a token's retransmission request list.
pub const MAX_RTR_ENTRIES: usize = 64;
/// Smallest netmtu we accept: the largest token must fit.
pub const MIN_NETMTU_BYTES: usize = 1200;
/// Largest netmtu: a UDP datagram's payload limit, rounded down.
pub const MAX_NETMTU_BYTES: usize = 65000;

/// The packet types, as numbered on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PacketType {
    /// A regular (ordered) message.
    Mcast = 1,
    /// The ordering token (ORF).
    Token = 2,
    /// A membership join message (Gather).
    Join = 3,
    /// The commit token (Commit).
    Commit = 4,
    /// Presence announcement: merge detection and reachability.
    Hello = 5,
}

/// Delivery guarantee requested for a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Guarantee {
    /// Delivered in total order once every lower seq is delivered.
    Agreed = 1,
    /// Additionally waits until every member of the ring has received it.
    Safe = 2,
}

/// A decoded packet: the header fields every packet has, plus its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// The node that transmitted this datagram (for a retransmitted message,
    /// the retransmitter, not the originator).
    pub sender: NodeId,
    /// See the module docs for what the ring id means per type.
    pub ring_id: RingId,
    /// The typed body.
    pub body: Body,
}

/// The body of a packet, one variant per [`PacketType`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// A regular message.
    Mcast(Mcast),
    /// The ordering token.
    Token(Token),
    /// A join message.
    Join(Join),
    /// The commit token.
    Commit(CommitToken),
    /// A presence announcement.
    Hello(Hello),
}

/// A regular message: one frame in the ring's total order.
///
/// ```text
/// 8 seq | 4 origin | 1 guarantee | 1 kind (0 frame, 1 recovered) |
///   kind 0: frame bytes to the end
///   kind 1: 4 old rep | 8 old ring seq | 8 old seq | 4 old origin |
///           1 old guarantee | frame bytes to the end
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mcast {
    /// Position in the ring's total order (>= 1).
    pub seq: Seq,
    /// The node that originated this message in this ring.
    pub origin: NodeId,
    /// Requested delivery guarantee.
    pub guarantee: Guarantee,
    /// What the message carries.
    pub content: McastContent,
}

/// What a regular message carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum McastContent {
    /// A frame of packed application messages (see `packing`).
    Frame(Bytes),
    /// During Recovery: a message of an old ring, re-sent in the new ring so
    /// that every member that was in the old ring gets it.
    Recovered(Recovered),
}

/// An old ring's message carried through Recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The ring the message was originally ordered in.
    pub old_ring: RingId,
    /// Its seq in the old ring.
    pub old_seq: Seq,
    /// Its originator in the old ring.
    pub old_origin: NodeId,
    /// Its guarantee in the old ring.
    pub old_guarantee: Guarantee,
    /// Its frame.
    pub frame: Bytes,
}

/// The ordering token (ORF). The member list is implied: it is the ring's
/// member list in ascending node-id order, and per-member fields are indexed
/// by position in it.
///
/// ```text
/// 8 token_seq | 8 seq | 4 fcc | 4 backlog | 1 flags (bit0 retransmitted) |
/// 8 install_seq (0 = none) | 8 recovery_done bitmap |
/// 1 n | n x 8 member arus | 1 m | m x 8 rtr seqs
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Grows by one on every forward; lets a node discard a duplicate or
    /// retransmitted copy of a token it already handled.
    pub token_seq: u64,
    /// Highest seq assigned in this ring.
    pub seq: Seq,
    /// Messages sent in the last full rotation (flow control).
    pub fcc: u32,
    /// Sum of the members' queued messages (flow control fairness).
    pub backlog: u32,
    /// Set when the sender re-sent this token after a timeout.
    pub retransmitted: bool,
    /// During Recovery: set once every member has every recovered message
    /// (all recovery done and every aru reached this seq); a member in
    /// Recovery that sees it installs the new ring.
    pub install_seq: Option<Seq>,
    /// During Recovery: bit i set once member i has sent all its recovered
    /// messages.
    pub recovery_done: u64,
    /// Each member's all-received-up-to, as of its last visit. This replaces
    /// the paper's single aru/aru_addr pair (see `token` module docs).
    pub member_aru: Vec<Seq>,
    /// Retransmission requests: seqs some member is missing.
    pub rtr: Vec<Seq>,
}

/// A join message (Gather): the sender's view of who takes part and who
/// failed.
///
/// ```text
/// 8 max ring seq | 1 np | np x 4 proc | 1 nf | nf x 4 fail
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Join {
    /// Highest ring seq the sender knows, so the new ring's seq exceeds all.
    pub max_ring_seq: u64,
    /// Nodes the sender wants in the new ring (sorted, unique).
    pub proc_set: Vec<NodeId>,
    /// Nodes the sender considers failed (sorted, unique).
    pub fail_set: Vec<NodeId>,
}

/// What one member reports about its old ring in the commit token.
///
/// ```text
/// 4 old rep | 8 old ring seq | 8 aru | 8 high delivered | 8 high received
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberEntry {
    /// The ring the member is leaving.
    pub old_ring: RingId,
    /// All messages of the old ring up to this seq were received.
    pub aru: Seq,
    /// Highest seq of the old ring delivered to the application.
    pub high_delivered: Seq,
    /// Highest seq of the old ring received.
    pub high_received: Seq,
}

/// The commit token (Commit): the new ring's member list, and each member's
/// old-ring state, filled in as it passes.
///
/// ```text
/// 8 token_seq | 1 n | n x 4 members | n x (1 present + MemberEntry)
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitToken {
    /// Grows by one on every forward, to drop duplicates.
    pub token_seq: u64,
    /// The new ring's members in ascending order; the first is the
    /// representative and the ring order follows the list.
    pub members: Vec<NodeId>,
    /// One entry per member, `None` until that member filled it in.
    pub entries: Vec<Option<MemberEntry>>,
}

/// Presence announcement, sent by every node every `merge` interval.
///
/// ```text
/// 1 state | 1 n | n x 4 ring members | 1 m | m x 4 heard
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The sender's protocol state.
    pub state: WireState,
    /// The members of the sender's current ring.
    pub members: Vec<NodeId>,
    /// The nodes the sender heard from recently (itself included).
    pub heard: Vec<NodeId>,
}

/// A protocol state as announced in a Hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum WireState {
    /// Operational.
    Operational = 1,
    /// Gather.
    Gather = 2,
    /// Commit.
    Commit = 3,
    /// Recovery.
    Recovery = 4,
}

/// Why a datagram was refused. Each is counted by the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than header + trailer, or a length field points past the end.
    #[error("packet truncated")]
    Truncated,
    /// The CRC-32 does not match.
    #[error("bad checksum")]
    BadCrc,
    /// Not our magic number.
    #[error("bad magic")]
    BadMagic,
    /// Another wire version.
    #[error("unsupported wire version {0}")]
    BadVersion(u8),
    /// Unknown packet type.
    #[error("unknown packet type {0}")]
    BadType(u8),
    /// A field has a value outside its domain (node id 0, unknown
    /// guarantee or state, list too long, unsorted set, ...).
    #[error("invalid field: {0}")]
    BadField(&'static str),
    /// Bytes left over after the body.
    #[error("trailing bytes after body")]
    TrailingBytes,
}
