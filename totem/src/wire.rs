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
//! What the header's ring id means per type: for Mcast, Token and
//! HoldCancel (an empty body), the ring the packet belongs to; for Join and Hello, the sender's current
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
pub const MAX_MEMBERS: usize = 32;
/// Most entries in a token's retransmission request list.
pub const MAX_RTR_ENTRIES: usize = 64;
/// Smallest netmtu we accept: the largest token must fit.
pub const MIN_NETMTU_BYTES: usize = 1400;
/// Largest netmtu: an IPv4 packet's total length limit. A datagram of
/// `65535 - IP_UDP_OVERHEAD_BYTES` bytes is within both IPv4's and IPv6's
/// UDP payload limits.
pub const MAX_NETMTU_BYTES: usize = 65535;

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
    /// "Stop holding the token": a member has messages to send on a ring
    /// whose representative may hold the idle token.
    HoldCancel = 6,
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
    /// A request to the holder of an idle token to pass it on now (no
    /// body: the header's ring id says which ring's token).
    HoldCancel,
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
/// 8 token_seq | 8 seq | 4 fcc | 4 backlog |
/// 1 flags (bit0 retransmitted, bit1 install_seq present) |
/// 8 install_seq (zero when absent) | 8 recovery_done bitmap |
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
/// 8 token_seq | 1 n (1..=MAX_MEMBERS) | n x 4 members |
/// n x (1 present (0 or 1) | 36 MemberEntry)
/// ```
///
/// Every member has a slot of fixed size, in member order: an absent entry
/// (present = 0) still carries its 36 MemberEntry bytes, all zero, so the
/// commit token's size depends only on `n` and each entry has exactly one
/// encoding.
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

/// Bytes of a Mcast body before its frame (kind 0) or before the Recovered
/// fields (kind 1): 8 seq + 4 origin + 1 guarantee + 1 kind.
pub const MCAST_FIXED_BYTES: usize = SEQ_BYTES + NODE_ID_BYTES + 1 + 1;
/// Bytes a Recovered adds to a Mcast body before its frame: 4 old rep +
/// 8 old ring seq + 8 old seq + 4 old origin + 1 old guarantee.
pub const RECOVERED_EXTRA_BYTES: usize = NODE_ID_BYTES + 8 + SEQ_BYTES + NODE_ID_BYTES + 1;
/// IP and UDP header bytes around every datagram, worst case: an IPv6
/// header (40) and a UDP header (8). A datagram of `netmtu - this` bytes
/// fits one link-layer frame.
pub const IP_UDP_OVERHEAD_BYTES: usize = 48;

/// Bytes of a node id on the wire.
const NODE_ID_BYTES: usize = 4;
/// Bytes of a seq on the wire.
const SEQ_BYTES: usize = 8;
/// Bytes of a [`MemberEntry`]: 4 old rep + 8 old ring seq + 8 aru +
/// 8 high delivered + 8 high received.
const MEMBER_ENTRY_BYTES: usize = NODE_ID_BYTES + 8 + 3 * SEQ_BYTES;
/// Bytes of one member's slot in a commit token: present flag + entry.
const COMMIT_SLOT_BYTES: usize = 1 + MEMBER_ENTRY_BYTES;
/// Bytes of a token body without its two lists: token_seq, seq, fcc,
/// backlog, flags, install_seq, recovery_done and the two list counts.
const TOKEN_FIXED_BYTES: usize = 8 + SEQ_BYTES + 4 + 4 + 1 + SEQ_BYTES + 8 + 1 + 1;
/// Bytes of a join body without its two lists.
const JOIN_FIXED_BYTES: usize = 8 + 1 + 1;
/// Bytes of a commit token body without its member list and slots.
const COMMIT_FIXED_BYTES: usize = 8 + 1;
/// Bytes of a hello body without its two lists.
const HELLO_FIXED_BYTES: usize = 1 + 1 + 1;
/// The only token flag: the token was re-sent after a timeout.
const TOKEN_FLAG_RETRANSMITTED: u8 = 0x01;
const TOKEN_FLAG_INSTALL: u8 = 0x02;
/// Mcast kind byte of a frame.
const MCAST_KIND_FRAME: u8 = 0;
/// Mcast kind byte of a recovered message.
const MCAST_KIND_RECOVERED: u8 = 1;

// Every list count is one byte on the wire, and the token's recovery_done
// bitmap has one bit per member.
const _: () = assert!(MAX_MEMBERS <= u8::MAX as usize);
const _: () = assert!(MAX_RTR_ENTRIES <= u8::MAX as usize);
const _: () = assert!(MAX_MEMBERS <= u64::BITS as usize);

/// Largest frame a Mcast may carry for a given netmtu.
///
/// It leaves room for the IP/UDP headers, the packet header and trailer, the
/// Mcast fields *and* the Recovered fields, so that any frame, once ordered,
/// can later be re-sent wrapped in a [`Recovered`] during Recovery and still
/// fit one datagram of `netmtu_bytes`. Returns 0 for a netmtu too small to
/// carry anything (never the case for a validated config, whose netmtu is at
/// least [`MIN_NETMTU_BYTES`]).
pub const fn max_frame_bytes(netmtu_bytes: usize) -> usize {
    netmtu_bytes.saturating_sub(
        IP_UDP_OVERHEAD_BYTES
            + HEADER_BYTES
            + TRAILER_BYTES
            + MCAST_FIXED_BYTES
            + RECOVERED_EXTRA_BYTES,
    )
}

/// Encoded size of the largest token: [`MAX_MEMBERS`] member arus and
/// [`MAX_RTR_ENTRIES`] retransmission requests, header and trailer included
/// (IP/UDP headers not included).
pub const fn max_token_bytes() -> usize {
    HEADER_BYTES + TOKEN_FIXED_BYTES + (MAX_MEMBERS + MAX_RTR_ENTRIES) * SEQ_BYTES + TRAILER_BYTES
}

/// Why a node-id set of a packet is refused, one reason per failed rule.
struct NodeSetRules {
    /// More than [`MAX_MEMBERS`] entries.
    too_long: &'static str,
    /// An entry is node id 0.
    zero: &'static str,
    /// Not strictly ascending (unsorted or duplicate).
    unsorted: &'static str,
}

const PROC_SET: NodeSetRules = NodeSetRules {
    too_long: "join proc set too long",
    zero: "join proc set has node id 0",
    unsorted: "join proc set not strictly ascending",
};
const FAIL_SET: NodeSetRules = NodeSetRules {
    too_long: "join fail set too long",
    zero: "join fail set has node id 0",
    unsorted: "join fail set not strictly ascending",
};
const COMMIT_MEMBERS: NodeSetRules = NodeSetRules {
    too_long: "commit members too many",
    zero: "commit members has node id 0",
    unsorted: "commit members not strictly ascending",
};
const HELLO_MEMBERS: NodeSetRules = NodeSetRules {
    too_long: "hello members too many",
    zero: "hello members has node id 0",
    unsorted: "hello members not strictly ascending",
};
const HELLO_HEARD: NodeSetRules = NodeSetRules {
    too_long: "hello heard set too long",
    zero: "hello heard set has node id 0",
    unsorted: "hello heard set not strictly ascending",
};

impl PacketType {
    /// The type numbered `raw` on the wire, if any.
    const fn from_wire(raw: u8) -> Option<PacketType> {
        match raw {
            1 => Some(PacketType::Mcast),
            2 => Some(PacketType::Token),
            3 => Some(PacketType::Join),
            4 => Some(PacketType::Commit),
            5 => Some(PacketType::Hello),
            6 => Some(PacketType::HoldCancel),
            _ => None,
        }
    }
}

impl Guarantee {
    /// The guarantee numbered `raw` on the wire, if any.
    const fn from_wire(raw: u8) -> Option<Guarantee> {
        match raw {
            1 => Some(Guarantee::Agreed),
            2 => Some(Guarantee::Safe),
            _ => None,
        }
    }
}

impl WireState {
    /// The state numbered `raw` on the wire, if any.
    const fn from_wire(raw: u8) -> Option<WireState> {
        match raw {
            1 => Some(WireState::Operational),
            2 => Some(WireState::Gather),
            3 => Some(WireState::Commit),
            4 => Some(WireState::Recovery),
            _ => None,
        }
    }
}

/// Frames at least this long are not copied into their packet's
/// [`Datagram`]: see [`Packet::encode_datagram`].
pub const SPLIT_FRAME_BYTES: usize = 1024;

/// An encoded packet in pieces that go out back to back as one datagram:
/// the header and fields, then a Mcast's frame as the buffer the ring's
/// log holds, then the CRC trailer. A driver copies the pieces once, into
/// the sealed datagram, or hands them to the kernel as they are, instead
/// of the frame being copied into a packet buffer first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    head: Bytes,
    frame: Bytes,
    trailer: Option<[u8; TRAILER_BYTES]>,
}

impl Datagram {
    /// The pieces, in order (the last two may be empty).
    pub fn pieces(&self) -> [&[u8]; 3] {
        [
            &self.head,
            &self.frame,
            self.trailer.as_ref().map_or(&[], |t| t),
        ]
    }

    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        self.pieces().iter().map(|p| p.len()).sum()
    }

    /// Whether it has no bytes (never, for an encoded packet).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The datagram in one buffer (copies a split one; for tests and the
    /// simulators).
    pub fn to_bytes(&self) -> Bytes {
        if self.frame.is_empty() && self.trailer.is_none() {
            return self.head.clone();
        }
        Bytes::from(self.pieces().concat())
    }
}

/// A whole encoded packet, one piece.
impl From<Bytes> for Datagram {
    fn from(packet: Bytes) -> Datagram {
        Datagram {
            head: packet,
            frame: Bytes::new(),
            trailer: None,
        }
    }
}

impl Packet {
    /// The packet's type, as numbered on the wire.
    pub fn packet_type(&self) -> PacketType {
        match self.body {
            Body::Mcast(_) => PacketType::Mcast,
            Body::Token(_) => PacketType::Token,
            Body::Join(_) => PacketType::Join,
            Body::Commit(_) => PacketType::Commit,
            Body::Hello(_) => PacketType::Hello,
            Body::HoldCancel => PacketType::HoldCancel,
        }
    }

    /// Exact number of bytes [`Packet::encode`] produces.
    pub fn encoded_len(&self) -> usize {
        HEADER_BYTES + self.body_len() + TRAILER_BYTES
    }

    /// The packet as one datagram.
    ///
    /// # Panics
    /// As [`Packet::encode_into`].
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        Bytes::from(out)
    }

    /// Appends the packet's encoding to `out` (bytes already in `out` are
    /// kept and not covered by the CRC).
    ///
    /// # Panics
    /// If the packet breaks a limit of the wire format: a list longer than
    /// its maximum ([`MAX_MEMBERS`], [`MAX_RTR_ENTRIES`]), a commit token
    /// whose entries do not match its members one to one, or a body longer
    /// than `u32::MAX` bytes. These are the protocol's own invariants (the
    /// ring is bounded by [`MAX_MEMBERS`] and the token code bounds its
    /// retransmission list), so a panic here is a bug in the caller. In debug
    /// builds it also panics if the result does not decode back to `self`
    /// (an unsorted set, seq 0, `install_seq` of `Some(Seq(0))`, ...), so the
    /// simulator catches a packet that peers would refuse.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        self.encode_untrailed(out, true);
        let crc = crc32fast::hash(&out[start..]);
        put_u32(out, crc);
        debug_assert_eq!(
            Packet::decode(&Bytes::copy_from_slice(&out[start..])).as_ref(),
            Ok(self),
            "encoded a packet that does not decode back to itself"
        );
    }

    /// The packet as a [`Datagram`]: a Mcast's frame of at least
    /// [`SPLIT_FRAME_BYTES`] stays the buffer it is (shared with the
    /// ring's log), not copied behind the header; other packets are one
    /// piece, as [`Packet::encode`] makes them.
    ///
    /// # Panics
    /// As [`Packet::encode_into`].
    pub fn encode_datagram(&self) -> Datagram {
        let frame = match &self.body {
            Body::Mcast(Mcast {
                content: McastContent::Frame(frame),
                ..
            }) => frame,
            Body::Mcast(Mcast {
                content: McastContent::Recovered(recovered),
                ..
            }) => &recovered.frame,
            _ => return Datagram::from(self.encode()),
        };
        if frame.len() < SPLIT_FRAME_BYTES {
            return Datagram::from(self.encode());
        }
        let mut head = Vec::with_capacity(HEADER_BYTES + self.body_len() - frame.len());
        self.encode_untrailed(&mut head, false);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        crc.update(frame);
        let datagram = Datagram {
            head: Bytes::from(head),
            frame: frame.clone(),
            trailer: Some(crc.finalize().to_be_bytes()),
        };
        debug_assert_eq!(
            Packet::decode(&datagram.to_bytes()).as_ref(),
            Ok(self),
            "encoded a packet that does not decode back to itself"
        );
        datagram
    }

    /// Appends the header and the body, the Mcast's frame left out unless
    /// `with_frame` (it is the body's last field).
    fn encode_untrailed(&self, out: &mut Vec<u8>, with_frame: bool) {
        let start = out.len();
        let body_len = self.body_len();
        // Upheld by the caller (see `# Panics`); a bigger body cannot be
        // described by the header's length field.
        let body_len_field =
            u32::try_from(body_len).expect("packet body longer than u32::MAX bytes");
        out.reserve(HEADER_BYTES + body_len + TRAILER_BYTES);
        put_u16(out, MAGIC);
        put_u8(out, WIRE_VERSION);
        put_u8(out, self.packet_type() as u8);
        put_node_id(out, self.sender);
        put_node_id(out, self.ring_id.rep);
        put_u64(out, self.ring_id.seq);
        put_u32(out, body_len_field);
        let mut left_out = 0;
        match &self.body {
            Body::Mcast(mcast) => left_out = encode_mcast(mcast, out, with_frame),
            Body::Token(token) => encode_token(token, out),
            Body::Join(join) => encode_join(join, out),
            Body::Commit(commit) => encode_commit(commit, out),
            Body::Hello(hello) => encode_hello(hello, out),
            Body::HoldCancel => {}
        }
        // `body_len` and the encoders describe the same layout.
        assert_eq!(
            out.len() - start + left_out,
            HEADER_BYTES + body_len,
            "body_len disagrees with encoder"
        );
    }

    /// Decodes one datagram.
    ///
    /// Checks, in order: the length is at least header + trailer; the CRC;
    /// magic, version and type; the header's node ids; the body length
    /// against what remains; then the body, field by field, with every list
    /// count checked against its maximum and against the bytes remaining
    /// before anything is allocated. A Mcast's frame is a zero-copy slice of
    /// `datagram`.
    ///
    /// # Errors
    /// - [`DecodeError::Truncated`]: shorter than header + trailer, a body
    ///   length or list count that points past the end of the datagram, or a
    ///   body that ends inside a field;
    /// - [`DecodeError::BadCrc`]: the CRC-32 does not match;
    /// - [`DecodeError::BadMagic`], [`DecodeError::BadVersion`],
    ///   [`DecodeError::BadType`]: not a packet of this protocol version;
    /// - [`DecodeError::BadField`]: a node id 0; a Mcast seq or recovered old
    ///   seq of 0; an unknown guarantee, Mcast kind, Hello state or token
    ///   flag; a node set (proc, fail, commit members, hello members, heard)
    ///   longer than [`MAX_MEMBERS`] or not strictly ascending; a token with
    ///   no member arus or more than [`MAX_MEMBERS`], more than
    ///   [`MAX_RTR_ENTRIES`] rtr entries, or a recovery_done bit at or above
    ///   its member count; a commit token with no members, a present flag
    ///   other than 0 or 1, or an absent entry that is not all zeros;
    /// - [`DecodeError::TrailingBytes`]: a body length smaller than what
    ///   remains, or a body with bytes left after its last field.
    pub fn decode(datagram: &Bytes) -> Result<Packet, DecodeError> {
        let len = datagram.len();
        if len < HEADER_BYTES + TRAILER_BYTES {
            return Err(DecodeError::Truncated);
        }
        let crc_at = len - TRAILER_BYTES;
        let mut trailer = Reader::new(&datagram[crc_at..]);
        if trailer.u32()? != crc32fast::hash(&datagram[..crc_at]) {
            return Err(DecodeError::BadCrc);
        }

        let mut header = Reader::new(&datagram[..HEADER_BYTES]);
        if header.u16()? != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = header.u8()?;
        if version != WIRE_VERSION {
            return Err(DecodeError::BadVersion(version));
        }
        let raw_type = header.u8()?;
        let packet_type = PacketType::from_wire(raw_type).ok_or(DecodeError::BadType(raw_type))?;
        let sender = header.node_id("sender node id 0")?;
        let rep = header.node_id("ring rep node id 0")?;
        let ring_seq = header.u64()?;
        let body_len_field = header.u32()?;

        let remaining = crc_at - HEADER_BYTES;
        match usize::try_from(body_len_field) {
            Ok(body_len) if body_len == remaining => {}
            Ok(body_len) if body_len < remaining => return Err(DecodeError::TrailingBytes),
            _ => return Err(DecodeError::Truncated),
        }

        let mut body = Reader::new(&datagram[HEADER_BYTES..crc_at]);
        let decoded = match packet_type {
            PacketType::Mcast => Body::Mcast(decode_mcast(&mut body, datagram)?),
            PacketType::Token => Body::Token(decode_token(&mut body)?),
            PacketType::Join => Body::Join(decode_join(&mut body)?),
            PacketType::Commit => Body::Commit(decode_commit(&mut body)?),
            PacketType::Hello => Body::Hello(decode_hello(&mut body)?),
            PacketType::HoldCancel => Body::HoldCancel,
        };
        if body.remaining() != 0 {
            return Err(DecodeError::TrailingBytes);
        }
        Ok(Packet {
            sender,
            ring_id: RingId { seq: ring_seq, rep },
            body: decoded,
        })
    }

    /// Bytes of the body, as written in the header's length field.
    fn body_len(&self) -> usize {
        match &self.body {
            Body::Mcast(mcast) => match &mcast.content {
                McastContent::Frame(frame) => MCAST_FIXED_BYTES + frame.len(),
                McastContent::Recovered(recovered) => {
                    MCAST_FIXED_BYTES + RECOVERED_EXTRA_BYTES + recovered.frame.len()
                }
            },
            Body::Token(token) => {
                TOKEN_FIXED_BYTES + (token.member_aru.len() + token.rtr.len()) * SEQ_BYTES
            }
            Body::Join(join) => {
                JOIN_FIXED_BYTES + (join.proc_set.len() + join.fail_set.len()) * NODE_ID_BYTES
            }
            Body::Commit(commit) => {
                COMMIT_FIXED_BYTES
                    + commit.members.len() * NODE_ID_BYTES
                    + commit.entries.len() * COMMIT_SLOT_BYTES
            }
            Body::Hello(hello) => {
                HELLO_FIXED_BYTES + (hello.members.len() + hello.heard.len()) * NODE_ID_BYTES
            }
            Body::HoldCancel => 0,
        }
    }
}

fn put_u8(out: &mut Vec<u8>, value: u8) {
    out.push(value);
}

fn put_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_node_id(out: &mut Vec<u8>, id: NodeId) {
    put_u32(out, id.get());
}

fn put_seq(out: &mut Vec<u8>, seq: Seq) {
    put_u64(out, seq.0);
}

/// Writes a one-byte list count.
///
/// # Panics
/// If `len > max`: the lists we send are bounded by the ring size and the
/// token's rtr limit (see [`Packet::encode_into`]).
fn put_count(out: &mut Vec<u8>, len: usize, max: usize, what: &str) {
    assert!(
        len <= max,
        "{what}: {len} entries, at most {max} fit the wire format"
    );
    // `max` is at most u8::MAX (checked at compile time above).
    put_u8(out, u8::try_from(len).expect("list maximums fit one byte"));
}

fn put_node_set(out: &mut Vec<u8>, set: &[NodeId], what: &str) {
    put_count(out, set.len(), MAX_MEMBERS, what);
    for &id in set {
        put_node_id(out, id);
    }
}

fn put_seqs(out: &mut Vec<u8>, seqs: &[Seq], max: usize, what: &str) {
    put_count(out, seqs.len(), max, what);
    for &seq in seqs {
        put_seq(out, seq);
    }
}

fn put_ring_id(out: &mut Vec<u8>, ring_id: RingId) {
    put_node_id(out, ring_id.rep);
    put_u64(out, ring_id.seq);
}

/// Encodes a Mcast body, its frame (the last field) only if `with_frame`;
/// returns the bytes left out.
fn encode_mcast(mcast: &Mcast, out: &mut Vec<u8>, with_frame: bool) -> usize {
    put_seq(out, mcast.seq);
    put_node_id(out, mcast.origin);
    put_u8(out, mcast.guarantee as u8);
    let frame = match &mcast.content {
        McastContent::Frame(frame) => {
            put_u8(out, MCAST_KIND_FRAME);
            frame
        }
        McastContent::Recovered(recovered) => {
            put_u8(out, MCAST_KIND_RECOVERED);
            put_ring_id(out, recovered.old_ring);
            put_seq(out, recovered.old_seq);
            put_node_id(out, recovered.old_origin);
            put_u8(out, recovered.old_guarantee as u8);
            &recovered.frame
        }
    };
    if with_frame {
        out.extend_from_slice(frame);
        0
    } else {
        frame.len()
    }
}

fn encode_token(token: &Token, out: &mut Vec<u8>) {
    put_u64(out, token.token_seq);
    put_seq(out, token.seq);
    put_u32(out, token.fcc);
    put_u32(out, token.backlog);
    let mut flags = 0;
    if token.retransmitted {
        flags |= TOKEN_FLAG_RETRANSMITTED;
    }
    if token.install_seq.is_some() {
        flags |= TOKEN_FLAG_INSTALL;
    }
    put_u8(out, flags);
    put_seq(out, token.install_seq.unwrap_or(Seq::ZERO));
    put_u64(out, token.recovery_done);
    put_seqs(out, &token.member_aru, MAX_MEMBERS, "token member arus");
    put_seqs(out, &token.rtr, MAX_RTR_ENTRIES, "token rtr");
}

fn encode_join(join: &Join, out: &mut Vec<u8>) {
    put_u64(out, join.max_ring_seq);
    put_node_set(out, &join.proc_set, "join proc set");
    put_node_set(out, &join.fail_set, "join fail set");
}

fn encode_commit(commit: &CommitToken, out: &mut Vec<u8>) {
    // Upheld by the membership code, which sizes `entries` from `members`;
    // otherwise the slots could not be matched to members on decode.
    assert_eq!(
        commit.entries.len(),
        commit.members.len(),
        "commit token needs exactly one entry slot per member"
    );
    put_u64(out, commit.token_seq);
    put_node_set(out, &commit.members, "commit members");
    for entry in &commit.entries {
        match entry {
            Some(entry) => {
                put_u8(out, 1);
                put_ring_id(out, entry.old_ring);
                put_seq(out, entry.aru);
                put_seq(out, entry.high_delivered);
                put_seq(out, entry.high_received);
            }
            None => {
                put_u8(out, 0);
                out.extend_from_slice(&[0; MEMBER_ENTRY_BYTES]);
            }
        }
    }
}

fn encode_hello(hello: &Hello, out: &mut Vec<u8>) {
    put_u8(out, hello.state as u8);
    put_node_set(out, &hello.members, "hello members");
    put_node_set(out, &hello.heard, "hello heard set");
}

/// A cursor over untrusted bytes: every read is bounds-checked and fails with
/// [`DecodeError::Truncated`] instead of panicking.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads everything left; returns its range within the reader's buffer.
    fn rest(&mut self) -> std::ops::Range<usize> {
        let range = self.pos..self.buf.len();
        self.pos = self.buf.len();
        range
    }

    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        <[u8; N]>::try_from(self.take(N)?).map_err(|_| DecodeError::Truncated)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn seq(&mut self) -> Result<Seq, DecodeError> {
        Ok(Seq(self.u64()?))
    }

    /// A node id; 0 is refused with `zero_reason`.
    fn node_id(&mut self, zero_reason: &'static str) -> Result<NodeId, DecodeError> {
        NodeId::new(self.u32()?).ok_or(DecodeError::BadField(zero_reason))
    }

    fn guarantee(&mut self) -> Result<Guarantee, DecodeError> {
        Guarantee::from_wire(self.u8()?).ok_or(DecodeError::BadField("unknown guarantee"))
    }

    /// A ring id (rep, then ring seq); a rep of 0 is refused with
    /// `zero_reason`.
    fn ring_id(&mut self, zero_reason: &'static str) -> Result<RingId, DecodeError> {
        let rep = self.node_id(zero_reason)?;
        let seq = self.u64()?;
        Ok(RingId { seq, rep })
    }

    /// A one-byte list count, checked against `max` (else `too_long`) and
    /// against the bytes remaining for `count` elements of `elem_bytes`.
    fn count(
        &mut self,
        max: usize,
        elem_bytes: usize,
        too_long: &'static str,
    ) -> Result<usize, DecodeError> {
        let count = usize::from(self.u8()?);
        if count > max {
            return Err(DecodeError::BadField(too_long));
        }
        // `count <= u8::MAX` and `elem_bytes` is a small constant: no overflow.
        if count * elem_bytes > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        Ok(count)
    }

    /// A list of seqs, at most `max` of them.
    fn seqs(&mut self, max: usize, too_long: &'static str) -> Result<Vec<Seq>, DecodeError> {
        let count = self.count(max, SEQ_BYTES, too_long)?;
        let mut seqs = Vec::with_capacity(count);
        for _ in 0..count {
            seqs.push(self.seq()?);
        }
        Ok(seqs)
    }

    /// A node-id set: at most [`MAX_MEMBERS`], nonzero, strictly ascending.
    fn node_set(&mut self, rules: &NodeSetRules) -> Result<Vec<NodeId>, DecodeError> {
        let count = self.count(MAX_MEMBERS, NODE_ID_BYTES, rules.too_long)?;
        let mut set: Vec<NodeId> = Vec::with_capacity(count);
        for _ in 0..count {
            let id = self.node_id(rules.zero)?;
            if set.last().is_some_and(|&last| last >= id) {
                return Err(DecodeError::BadField(rules.unsorted));
            }
            set.push(id);
        }
        Ok(set)
    }
}

/// Decodes a Mcast body from `body`, a reader over `datagram`'s body; the
/// frame is sliced out of `datagram` without copying.
fn decode_mcast(body: &mut Reader<'_>, datagram: &Bytes) -> Result<Mcast, DecodeError> {
    let seq = body.seq()?;
    if seq == Seq::ZERO {
        return Err(DecodeError::BadField("mcast seq 0"));
    }
    let origin = body.node_id("mcast origin node id 0")?;
    let guarantee = body.guarantee()?;
    let kind = body.u8()?;
    let content = match kind {
        MCAST_KIND_FRAME => McastContent::Frame(rest_of_body(body, datagram)),
        MCAST_KIND_RECOVERED => {
            let old_ring = body.ring_id("recovered old rep node id 0")?;
            let old_seq = body.seq()?;
            if old_seq == Seq::ZERO {
                return Err(DecodeError::BadField("recovered old seq 0"));
            }
            let old_origin = body.node_id("recovered old origin node id 0")?;
            let old_guarantee = body.guarantee()?;
            McastContent::Recovered(Recovered {
                old_ring,
                old_seq,
                old_origin,
                old_guarantee,
                frame: rest_of_body(body, datagram),
            })
        }
        _ => return Err(DecodeError::BadField("unknown mcast kind")),
    };
    Ok(Mcast {
        seq,
        origin,
        guarantee,
        content,
    })
}

/// The rest of the body as a zero-copy slice of `datagram`; consumes it.
fn rest_of_body(body: &mut Reader<'_>, datagram: &Bytes) -> Bytes {
    // The body reader covers `datagram[HEADER_BYTES..crc_at]`.
    let rest = body.rest();
    datagram.slice(HEADER_BYTES + rest.start..HEADER_BYTES + rest.end)
}

fn decode_token(body: &mut Reader<'_>) -> Result<Token, DecodeError> {
    let token_seq = body.u64()?;
    let seq = body.seq()?;
    let fcc = body.u32()?;
    let backlog = body.u32()?;
    let flags = body.u8()?;
    if flags & !(TOKEN_FLAG_RETRANSMITTED | TOKEN_FLAG_INSTALL) != 0 {
        return Err(DecodeError::BadField("unknown token flags"));
    }
    let raw_install = body.seq()?;
    let install_seq = if flags & TOKEN_FLAG_INSTALL != 0 {
        Some(raw_install)
    } else if raw_install == Seq::ZERO {
        None
    } else {
        return Err(DecodeError::BadField("install_seq without its flag"));
    };
    let recovery_done = body.u64()?;
    let member_aru = body.seqs(MAX_MEMBERS, "token has too many member arus")?;
    if member_aru.is_empty() {
        return Err(DecodeError::BadField("token has no member arus"));
    }
    // A shift of 64 or more (a full 64-member ring) leaves no bit beyond.
    let member_bits = u32::try_from(member_aru.len()).unwrap_or(u32::MAX);
    if recovery_done.checked_shr(member_bits).unwrap_or(0) != 0 {
        return Err(DecodeError::BadField("recovery_done bit beyond members"));
    }
    let rtr = body.seqs(MAX_RTR_ENTRIES, "token has too many rtr entries")?;
    Ok(Token {
        token_seq,
        seq,
        fcc,
        backlog,
        retransmitted: flags & TOKEN_FLAG_RETRANSMITTED != 0,
        install_seq,
        recovery_done,
        member_aru,
        rtr,
    })
}

fn decode_join(body: &mut Reader<'_>) -> Result<Join, DecodeError> {
    let max_ring_seq = body.u64()?;
    let proc_set = body.node_set(&PROC_SET)?;
    let fail_set = body.node_set(&FAIL_SET)?;
    Ok(Join {
        max_ring_seq,
        proc_set,
        fail_set,
    })
}

fn decode_commit(body: &mut Reader<'_>) -> Result<CommitToken, DecodeError> {
    let token_seq = body.u64()?;
    let members = body.node_set(&COMMIT_MEMBERS)?;
    if members.is_empty() {
        return Err(DecodeError::BadField("commit token has no members"));
    }
    if members.len() * COMMIT_SLOT_BYTES > body.remaining() {
        return Err(DecodeError::Truncated);
    }
    let mut entries = Vec::with_capacity(members.len());
    for _ in 0..members.len() {
        let present = body.u8()?;
        let entry_bytes = body.take(MEMBER_ENTRY_BYTES)?;
        let entry = match present {
            0 if entry_bytes.iter().all(|&b| b == 0) => None,
            0 => return Err(DecodeError::BadField("absent commit entry not zero")),
            1 => {
                let mut entry = Reader::new(entry_bytes);
                Some(MemberEntry {
                    old_ring: entry.ring_id("commit entry old rep node id 0")?,
                    aru: entry.seq()?,
                    high_delivered: entry.seq()?,
                    high_received: entry.seq()?,
                })
            }
            _ => {
                return Err(DecodeError::BadField(
                    "commit entry present flag not 0 or 1",
                ))
            }
        };
        entries.push(entry);
    }
    Ok(CommitToken {
        token_seq,
        members,
        entries,
    })
}

fn decode_hello(body: &mut Reader<'_>) -> Result<Hello, DecodeError> {
    let state =
        WireState::from_wire(body.u8()?).ok_or(DecodeError::BadField("unknown hello state"))?;
    let members = body.node_set(&HELLO_MEMBERS)?;
    let heard = body.node_set(&HELLO_HEARD)?;
    Ok(Hello {
        state,
        members,
        heard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(raw: u32) -> NodeId {
        NodeId::new(raw).expect("test node ids are nonzero")
    }

    fn ring(rep: u32, seq: u64) -> RingId {
        RingId { seq, rep: n(rep) }
    }

    fn ids(raw: impl IntoIterator<Item = u32>) -> Vec<NodeId> {
        raw.into_iter().map(n).collect()
    }

    fn packet(body: Body) -> Packet {
        Packet {
            sender: n(2),
            ring_id: ring(1, 8),
            body,
        }
    }

    fn frame_mcast(frame: &'static [u8]) -> Packet {
        packet(Body::Mcast(Mcast {
            seq: Seq(7),
            origin: n(3),
            guarantee: Guarantee::Agreed,
            content: McastContent::Frame(Bytes::from_static(frame)),
        }))
    }

    fn recovered_mcast(frame: Bytes) -> Packet {
        packet(Body::Mcast(Mcast {
            seq: Seq(1),
            origin: n(1),
            guarantee: Guarantee::Safe,
            content: McastContent::Recovered(Recovered {
                old_ring: ring(4, 12),
                old_seq: Seq(99),
                old_origin: n(5),
                old_guarantee: Guarantee::Agreed,
                frame,
            }),
        }))
    }

    fn small_token() -> Packet {
        packet(Body::Token(Token {
            token_seq: 0,
            seq: Seq::ZERO,
            fcc: 0,
            backlog: 0,
            retransmitted: false,
            install_seq: None,
            recovery_done: 0,
            member_aru: vec![Seq::ZERO],
            rtr: Vec::new(),
        }))
    }

    fn three_member_token() -> Packet {
        packet(Body::Token(Token {
            token_seq: 41,
            seq: Seq(20),
            fcc: 3,
            backlog: 9,
            retransmitted: false,
            install_seq: None,
            recovery_done: 0b101,
            member_aru: vec![Seq(20), Seq(18), Seq(19)],
            rtr: vec![Seq(19), Seq(20)],
        }))
    }

    #[test]
    fn a_datagram_is_the_packet_with_a_large_frame_shared() {
        for len in [1, SPLIT_FRAME_BYTES - 1, SPLIT_FRAME_BYTES, 60_000] {
            let frame = Bytes::from(vec![0xA5; len]);
            let plain = packet(Body::Mcast(Mcast {
                seq: Seq(3),
                origin: n(2),
                guarantee: Guarantee::Agreed,
                content: McastContent::Frame(frame.clone()),
            }));
            for p in [plain, recovered_mcast(frame.clone())] {
                let d = p.encode_datagram();
                assert_eq!(d.to_bytes(), p.encode(), "len {len}");
                assert_eq!(d.len(), p.encoded_len());
                let [head, shared, trailer] = d.pieces();
                if len >= SPLIT_FRAME_BYTES {
                    assert_eq!(shared.as_ptr(), frame.as_ptr(), "frame copied at {len}");
                    assert_eq!(trailer.len(), TRAILER_BYTES);
                    assert_eq!(head.len() + len + TRAILER_BYTES, p.encoded_len());
                } else {
                    assert!(shared.is_empty() && trailer.is_empty(), "split at {len}");
                }
            }
        }
        let token = max_token();
        assert_eq!(token.encode_datagram().pieces()[0], &token.encode()[..]);
    }

    fn max_token() -> Packet {
        packet(Body::Token(Token {
            token_seq: u64::MAX,
            seq: Seq(u64::MAX),
            fcc: u32::MAX,
            backlog: u32::MAX,
            retransmitted: true,
            install_seq: Some(Seq(1000)),
            recovery_done: (1u64 << MAX_MEMBERS) - 1,
            member_aru: (0..MAX_MEMBERS as u64).map(Seq).collect(),
            rtr: (1..=MAX_RTR_ENTRIES as u64).map(Seq).collect(),
        }))
    }

    fn join(proc_set: Vec<NodeId>, fail_set: Vec<NodeId>) -> Packet {
        packet(Body::Join(Join {
            max_ring_seq: 16,
            proc_set,
            fail_set,
        }))
    }

    fn max_join() -> Packet {
        join(
            ids(1..=MAX_MEMBERS as u32),
            ids(101..=100 + MAX_MEMBERS as u32),
        )
    }

    fn entry(seed: u64) -> MemberEntry {
        MemberEntry {
            old_ring: ring(1 + seed as u32, 4 * seed),
            aru: Seq(seed),
            high_delivered: Seq(seed + 1),
            high_received: Seq(seed + 2),
        }
    }

    fn commit(members: Vec<NodeId>, entries: Vec<Option<MemberEntry>>) -> Packet {
        packet(Body::Commit(CommitToken {
            token_seq: 3,
            members,
            entries,
        }))
    }

    fn three_member_commit() -> Packet {
        commit(ids([1, 2, 3]), vec![Some(entry(5)), None, Some(entry(9))])
    }

    fn max_commit() -> Packet {
        commit(
            ids(1..=MAX_MEMBERS as u32),
            (0..MAX_MEMBERS as u64).map(|i| Some(entry(i))).collect(),
        )
    }

    fn hello(members: Vec<NodeId>, heard: Vec<NodeId>) -> Packet {
        packet(Body::Hello(Hello {
            state: WireState::Gather,
            members,
            heard,
        }))
    }

    fn max_hello() -> Packet {
        hello(
            ids(1..=MAX_MEMBERS as u32),
            ids(u32::MAX - MAX_MEMBERS as u32 + 1..=u32::MAX),
        )
    }

    /// One or more packets of every type, with empty and maximal lists.
    fn samples() -> Vec<Packet> {
        vec![
            packet(Body::HoldCancel),
            frame_mcast(b"hello world"),
            frame_mcast(b""),
            recovered_mcast(Bytes::from_static(b"old frame")),
            recovered_mcast(Bytes::new()),
            small_token(),
            three_member_token(),
            max_token(),
            join(Vec::new(), Vec::new()),
            join(ids([1, 2, 3]), ids([4])),
            max_join(),
            commit(ids([1]), vec![None]),
            three_member_commit(),
            max_commit(),
            hello(Vec::new(), Vec::new()),
            hello(ids([2, 5]), ids([2, 5, 9])),
            max_hello(),
        ]
    }

    fn decode_slice(bytes: &[u8]) -> Result<Packet, DecodeError> {
        Packet::decode(&Bytes::copy_from_slice(bytes))
    }

    /// Rewrites the CRC trailer so it matches the rest of `bytes`.
    fn reseal(bytes: &mut [u8]) {
        let at = bytes.len() - TRAILER_BYTES;
        let crc = crc32fast::hash(&bytes[..at]);
        bytes[at..].copy_from_slice(&crc.to_be_bytes());
    }

    /// Encodes `packet`, lets `edit` change the bytes, fixes the CRC and
    /// decodes.
    fn edited(packet: &Packet, edit: impl FnOnce(&mut Vec<u8>)) -> Result<Packet, DecodeError> {
        let mut bytes = packet.encode().to_vec();
        edit(&mut bytes);
        reseal(&mut bytes);
        decode_slice(&bytes)
    }

    /// A datagram of type `raw_type` with `body`, a correct header length and
    /// CRC (sender n2, ring 1.8).
    fn raw(raw_type: u8, body: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        put_u16(&mut bytes, MAGIC);
        put_u8(&mut bytes, WIRE_VERSION);
        put_u8(&mut bytes, raw_type);
        put_u32(&mut bytes, 2);
        put_u32(&mut bytes, 1);
        put_u64(&mut bytes, 8);
        put_u32(
            &mut bytes,
            u32::try_from(body.len()).expect("small test body"),
        );
        bytes.extend_from_slice(body);
        put_u32(&mut bytes, 0);
        reseal(&mut bytes);
        bytes
    }

    /// A raw body: `count` then `count` big-endian u32 node ids 1, 2, ...
    fn raw_node_list(count: u8) -> Vec<u8> {
        let mut body = vec![count];
        for id in 1..=u32::from(count) {
            body.extend_from_slice(&id.to_be_bytes());
        }
        body
    }

    /// A raw token body with `arus` member arus and `rtr` rtr entries.
    fn raw_token_body(arus: u8, rtr: u8) -> Vec<u8> {
        let mut body = vec![0; TOKEN_FIXED_BYTES - 2];
        body.push(arus);
        body.extend(std::iter::repeat_n(0, usize::from(arus) * SEQ_BYTES));
        body.push(rtr);
        body.extend(std::iter::repeat_n(0, usize::from(rtr) * SEQ_BYTES));
        body
    }

    /// Offset of a Token's member-aru count.
    const TOKEN_ARU_COUNT_AT: usize = HEADER_BYTES + 8 + 8 + 4 + 4 + 1 + 8 + 8;

    #[test]
    fn every_sample_round_trips() {
        for sample in samples() {
            let bytes = sample.encode();
            assert_eq!(bytes.len(), sample.encoded_len(), "{sample:?}");
            assert_eq!(bytes[3], sample.packet_type() as u8);
            assert_eq!(Packet::decode(&bytes), Ok(sample.clone()));
        }
    }

    #[test]
    fn install_seq_none_is_zero_and_some_round_trips() {
        let Body::Token(mut token) = three_member_token().body else {
            panic!("three_member_token is a token");
        };
        let install_at = HEADER_BYTES + 8 + 8 + 4 + 4 + 1;
        for install_seq in [None, Some(Seq(0)), Some(Seq(1)), Some(Seq(u64::MAX))] {
            token.install_seq = install_seq;
            let sample = packet(Body::Token(token.clone()));
            let bytes = sample.encode();
            let on_wire = u64::from_be_bytes(
                bytes[install_at..install_at + 8]
                    .try_into()
                    .expect("8 bytes"),
            );
            assert_eq!(on_wire, install_seq.map_or(0, |s| s.0));
            assert_eq!(bytes[install_at - 1] & 0x02 != 0, install_seq.is_some());
            assert_eq!(Packet::decode(&bytes), Ok(sample));
        }
    }

    #[test]
    fn exact_bytes_of_a_frame_mcast() {
        let bytes = frame_mcast(b"ab").encode();
        let mut expected = vec![
            0x54, 0x4D, // magic
            1,    // version
            1,    // Mcast
            0, 0, 0, 2, // sender
            0, 0, 0, 1, // ring rep
            0, 0, 0, 0, 0, 0, 0, 8, // ring seq
            0, 0, 0, 16, // body length
            0, 0, 0, 0, 0, 0, 0, 7, // seq
            0, 0, 0, 3, // origin
            1, // Agreed
            0, // frame
            b'a', b'b',
        ];
        let crc = crc32fast::hash(&expected);
        expected.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(&bytes[..], &expected[..]);
    }

    #[test]
    fn exact_bytes_of_a_commit_token_with_an_absent_entry() {
        let sample = commit(ids([7]), vec![None]);
        let bytes = sample.encode();
        let mut body = vec![0, 0, 0, 0, 0, 0, 0, 3, 1, 0, 0, 0, 7, 0];
        body.extend_from_slice(&[0; MEMBER_ENTRY_BYTES]);
        assert_eq!(&bytes[..], &raw(4, &body)[..]);
    }

    #[test]
    fn encode_into_appends_and_checksums_only_the_packet() {
        let sample = three_member_commit();
        let mut out = b"prefix".to_vec();
        sample.encode_into(&mut out);
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(out.len(), 6 + sample.encoded_len());
        assert_eq!(decode_slice(&out[6..]), Ok(sample));
    }

    #[test]
    fn mcast_frame_is_a_slice_of_the_datagram() {
        for sample in [
            frame_mcast(b"zero copy"),
            recovered_mcast(Bytes::from_static(b"zc")),
        ] {
            let datagram = sample.encode();
            let Ok(Packet {
                body: Body::Mcast(mcast),
                ..
            }) = Packet::decode(&datagram)
            else {
                panic!("sample decodes as a Mcast");
            };
            let frame = match &mcast.content {
                McastContent::Frame(frame) => frame,
                McastContent::Recovered(recovered) => &recovered.frame,
            };
            let start = datagram.as_ptr() as usize;
            let at = frame.as_ptr() as usize;
            assert!(at >= start && at + frame.len() <= start + datagram.len());
            assert_eq!(at + frame.len(), start + datagram.len() - TRAILER_BYTES);
        }
    }

    #[test]
    fn every_single_bit_flip_is_a_bad_crc() {
        for sample in samples() {
            let bytes = sample.encode().to_vec();
            for bit in 0..bytes.len() * 8 {
                let mut flipped = bytes.clone();
                flipped[bit / 8] ^= 1 << (bit % 8);
                assert_eq!(
                    decode_slice(&flipped),
                    Err(DecodeError::BadCrc),
                    "bit {bit} of {sample:?}"
                );
            }
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        for sample in samples() {
            let bytes = sample.encode();
            for len in 0..bytes.len() {
                let result = Packet::decode(&bytes.slice(..len));
                if len < HEADER_BYTES + TRAILER_BYTES {
                    assert_eq!(result, Err(DecodeError::Truncated), "len {len}");
                } else {
                    assert!(result.is_err(), "len {len} of {sample:?} decoded");
                }
            }
        }
    }

    #[test]
    fn header_errors() {
        let sample = three_member_token();
        assert_eq!(edited(&sample, |b| b[0] = 0x55), Err(DecodeError::BadMagic));
        assert_eq!(
            edited(&sample, |b| b[2] = 2),
            Err(DecodeError::BadVersion(2))
        );
        assert_eq!(
            edited(&sample, |b| b[2] = 0),
            Err(DecodeError::BadVersion(0))
        );
        for bad_type in [0, 7, 255] {
            assert_eq!(
                edited(&sample, |b| b[3] = bad_type),
                Err(DecodeError::BadType(bad_type))
            );
        }
        // A HoldCancel has no body: a token's body under its type is extra.
        assert_eq!(
            edited(&sample, |b| b[3] = PacketType::HoldCancel as u8),
            Err(DecodeError::TrailingBytes)
        );
        assert_eq!(
            edited(&sample, |b| b[4..8].fill(0)),
            Err(DecodeError::BadField("sender node id 0"))
        );
        assert_eq!(
            edited(&sample, |b| b[8..12].fill(0)),
            Err(DecodeError::BadField("ring rep node id 0"))
        );
        // Any ring seq is valid.
        let mut max_seq = sample.clone();
        max_seq.ring_id.seq = u64::MAX;
        assert_eq!(edited(&sample, |b| b[12..20].fill(0xff)), Ok(max_seq));
    }

    #[test]
    fn body_length_must_match_what_remains() {
        let sample = hello(ids([1, 2]), ids([1]));
        let body_len = sample.encoded_len() - HEADER_BYTES - TRAILER_BYTES;
        let set_len =
            |len: u32| move |b: &mut Vec<u8>| b[20..24].copy_from_slice(&len.to_be_bytes());
        let body_len = u32::try_from(body_len).expect("small");
        assert_eq!(
            edited(&sample, set_len(body_len + 1)),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            edited(&sample, set_len(u32::MAX)),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            edited(&sample, set_len(body_len - 1)),
            Err(DecodeError::TrailingBytes)
        );
        assert_eq!(edited(&sample, set_len(0)), Err(DecodeError::TrailingBytes));
    }

    #[test]
    fn trailing_bytes_after_a_body_are_refused() {
        let append = |b: &mut Vec<u8>| {
            let body_len = u32::from_be_bytes(b[20..24].try_into().expect("4 bytes"));
            b[20..24].copy_from_slice(&(body_len + 1).to_be_bytes());
            let at = b.len() - TRAILER_BYTES;
            b.insert(at, 0);
        };
        for sample in [
            three_member_token(),
            max_join(),
            three_member_commit(),
            max_hello(),
        ] {
            assert_eq!(
                edited(&sample, append),
                Err(DecodeError::TrailingBytes),
                "{sample:?}"
            );
        }
        // A Mcast's frame runs to the end, so an extra byte is frame.
        assert_eq!(
            edited(&frame_mcast(b"ab"), append),
            Ok(frame_mcast(b"ab\0"))
        );
    }

    #[test]
    fn mcast_field_errors() {
        let frame = frame_mcast(b"x");
        let bad = |reason| Err(DecodeError::BadField(reason));
        assert_eq!(edited(&frame, |b| b[24..32].fill(0)), bad("mcast seq 0"));
        assert_eq!(
            edited(&frame, |b| b[32..36].fill(0)),
            bad("mcast origin node id 0")
        );
        assert_eq!(edited(&frame, |b| b[36] = 0), bad("unknown guarantee"));
        assert_eq!(edited(&frame, |b| b[36] = 3), bad("unknown guarantee"));
        assert_eq!(edited(&frame, |b| b[37] = 2), bad("unknown mcast kind"));
        assert_eq!(edited(&frame, |b| b[37] = 0xff), bad("unknown mcast kind"));

        let recovered = recovered_mcast(Bytes::from_static(b"y"));
        assert_eq!(
            edited(&recovered, |b| b[24..32].fill(0)),
            bad("mcast seq 0")
        );
        assert_eq!(
            edited(&recovered, |b| b[38..42].fill(0)),
            bad("recovered old rep node id 0")
        );
        assert_eq!(
            edited(&recovered, |b| b[50..58].fill(0)),
            bad("recovered old seq 0")
        );
        assert_eq!(
            edited(&recovered, |b| b[58..62].fill(0)),
            bad("recovered old origin node id 0")
        );
        assert_eq!(edited(&recovered, |b| b[62] = 9), bad("unknown guarantee"));
        // A recovered body that ends inside its old-ring fields.
        let mut short = vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, MCAST_KIND_RECOVERED];
        short.extend_from_slice(&[0, 0, 0, 1, 0, 0]);
        assert_eq!(decode_slice(&raw(1, &short)), Err(DecodeError::Truncated));
        assert_eq!(decode_slice(&raw(1, &[0; 5])), Err(DecodeError::Truncated));
        assert_eq!(decode_slice(&raw(1, &[])), Err(DecodeError::Truncated));
    }

    #[test]
    fn token_field_errors() {
        let sample = three_member_token();
        let bad = |reason| Err(DecodeError::BadField(reason));
        let flags_at = HEADER_BYTES + 8 + 8 + 4 + 4;
        let recovery_done_at = flags_at + 1 + 8;
        assert_eq!(
            edited(&sample, |b| b[flags_at] = 0x04),
            bad("unknown token flags")
        );
        assert_eq!(
            edited(&sample, |b| b[flags_at] = 0x81),
            bad("unknown token flags")
        );
        // Three members: bit 3 is beyond them; bits 0..=2 are fine.
        let set_bits = |bits: u64| {
            move |b: &mut Vec<u8>| {
                b[recovery_done_at..recovery_done_at + 8].copy_from_slice(&bits.to_be_bytes());
            }
        };
        assert_eq!(
            edited(&sample, set_bits(1 << 3)),
            bad("recovery_done bit beyond members")
        );
        assert_eq!(
            edited(&sample, set_bits(1 << 63)),
            bad("recovery_done bit beyond members")
        );
        assert!(edited(&sample, set_bits(0b111)).is_ok());
        // A count that is within limits but points past the end.
        assert_eq!(
            edited(&sample, |b| b[TOKEN_ARU_COUNT_AT] = 4),
            Err(DecodeError::Truncated)
        );

        let raw_token = |arus, rtr| decode_slice(&raw(2, &raw_token_body(arus, rtr)));
        assert_eq!(raw_token(0, 0), bad("token has no member arus"));
        assert_eq!(
            raw_token(MAX_MEMBERS as u8 + 1, 0),
            bad("token has too many member arus")
        );
        assert_eq!(raw_token(255, 0), bad("token has too many member arus"));
        assert_eq!(raw_token(1, 65), bad("token has too many rtr entries"));
        assert!(raw_token(MAX_MEMBERS as u8, MAX_RTR_ENTRIES as u8).is_ok());
        assert_eq!(decode_slice(&raw(2, &[0; 10])), Err(DecodeError::Truncated));
    }

    #[test]
    fn join_field_errors() {
        let sample = join(ids([1, 2, 3]), ids([5, 6]));
        let bad = |reason| Err(DecodeError::BadField(reason));
        let proc_at = HEADER_BYTES + 9;
        let fail_at = proc_at + 3 * 4 + 1;
        let set_id = |at: usize, id: u32| {
            move |b: &mut Vec<u8>| b[at..at + 4].copy_from_slice(&id.to_be_bytes())
        };
        // proc set 2, 2, 3: a duplicate; 1, 4, 3: unsorted.
        assert_eq!(
            edited(&sample, set_id(proc_at, 2)),
            bad("join proc set not strictly ascending")
        );
        assert_eq!(
            edited(&sample, set_id(proc_at + 4, 4)),
            bad("join proc set not strictly ascending")
        );
        assert_eq!(
            edited(&sample, set_id(proc_at, 0)),
            bad("join proc set has node id 0")
        );
        assert_eq!(
            edited(&sample, set_id(fail_at + 4, 5)),
            bad("join fail set not strictly ascending")
        );
        assert_eq!(
            edited(&sample, set_id(fail_at, 0)),
            bad("join fail set has node id 0")
        );

        let mut too_long = vec![0; 8];
        too_long.extend(raw_node_list(65));
        too_long.push(0);
        assert_eq!(
            decode_slice(&raw(3, &too_long)),
            bad("join proc set too long")
        );
        let mut fail_too_long = vec![0; 8];
        fail_too_long.push(0);
        fail_too_long.extend(raw_node_list(65));
        assert_eq!(
            decode_slice(&raw(3, &fail_too_long)),
            bad("join fail set too long")
        );
    }

    #[test]
    fn commit_field_errors() {
        let sample = three_member_commit();
        let bad = |reason| Err(DecodeError::BadField(reason));
        let members_at = HEADER_BYTES + 9;
        let slot_at = |i: usize| members_at + 3 * 4 + i * COMMIT_SLOT_BYTES;
        // Members 1, 1, 3: a duplicate member.
        assert_eq!(
            edited(&sample, |b| b[members_at + 4..members_at + 8]
                .copy_from_slice(&1u32.to_be_bytes())),
            bad("commit members not strictly ascending")
        );
        assert_eq!(
            edited(&sample, |b| b[members_at + 8..members_at + 12].fill(0)),
            bad("commit members has node id 0")
        );
        assert_eq!(
            edited(&sample, |b| b[slot_at(0)] = 2),
            bad("commit entry present flag not 0 or 1")
        );
        // Slot 1 is absent: its entry bytes must be zero.
        assert_eq!(
            edited(&sample, |b| b[slot_at(1) + COMMIT_SLOT_BYTES - 1] = 1),
            bad("absent commit entry not zero")
        );
        assert_eq!(
            edited(&sample, |b| b[slot_at(0)] = 0),
            bad("absent commit entry not zero")
        );
        assert_eq!(
            edited(&sample, |b| b[slot_at(0) + 1..slot_at(0) + 5].fill(0)),
            bad("commit entry old rep node id 0")
        );
        // Marking the absent slot present with zero bytes: old rep 0.
        assert_eq!(
            edited(&sample, |b| b[slot_at(1)] = 1),
            bad("commit entry old rep node id 0")
        );

        let mut no_members = vec![0; 8];
        no_members.push(0);
        assert_eq!(
            decode_slice(&raw(4, &no_members)),
            bad("commit token has no members")
        );
        let mut too_many = vec![0; 8];
        too_many.extend(raw_node_list(65));
        too_many.extend(std::iter::repeat_n(0, 65 * COMMIT_SLOT_BYTES));
        assert_eq!(
            decode_slice(&raw(4, &too_many)),
            bad("commit members too many")
        );
        // Members without their slots.
        let mut no_slots = vec![0; 8];
        no_slots.extend(raw_node_list(2));
        assert_eq!(
            decode_slice(&raw(4, &no_slots)),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn hello_field_errors() {
        let sample = hello(ids([2, 5]), ids([2, 5, 9]));
        let bad = |reason| Err(DecodeError::BadField(reason));
        let members_at = HEADER_BYTES + 2;
        let heard_at = members_at + 2 * 4 + 1;
        assert_eq!(
            edited(&sample, |b| b[HEADER_BYTES] = 0),
            bad("unknown hello state")
        );
        assert_eq!(
            edited(&sample, |b| b[HEADER_BYTES] = 5),
            bad("unknown hello state")
        );
        assert_eq!(
            edited(&sample, |b| b[members_at..members_at + 4]
                .copy_from_slice(&5u32.to_be_bytes())),
            bad("hello members not strictly ascending")
        );
        assert_eq!(
            edited(&sample, |b| b[members_at + 4..members_at + 8].fill(0)),
            bad("hello members has node id 0")
        );
        assert_eq!(
            edited(&sample, |b| b[heard_at + 8..heard_at + 12]
                .copy_from_slice(&1u32.to_be_bytes())),
            bad("hello heard set not strictly ascending")
        );
        assert_eq!(
            edited(&sample, |b| b[heard_at..heard_at + 4].fill(0)),
            bad("hello heard set has node id 0")
        );

        let mut too_many = vec![WireState::Operational as u8];
        too_many.extend(raw_node_list(65));
        too_many.push(0);
        assert_eq!(
            decode_slice(&raw(5, &too_many)),
            bad("hello members too many")
        );
        let mut heard_too_long = vec![WireState::Operational as u8, 0];
        heard_too_long.extend(raw_node_list(MAX_MEMBERS as u8 + 1));
        assert_eq!(
            decode_slice(&raw(5, &heard_too_long)),
            bad("hello heard set too long")
        );
        let mut max = vec![WireState::Recovery as u8];
        max.extend(raw_node_list(MAX_MEMBERS as u8));
        max.extend(raw_node_list(MAX_MEMBERS as u8));
        assert!(decode_slice(&raw(5, &max)).is_ok());
    }

    #[test]
    #[should_panic(expected = "token rtr")]
    fn encoding_too_many_rtr_entries_panics() {
        let Body::Token(mut token) = three_member_token().body else {
            panic!("three_member_token is a token");
        };
        token.rtr = vec![Seq(1); MAX_RTR_ENTRIES + 1];
        let _ = packet(Body::Token(token)).encode();
    }

    #[test]
    #[should_panic(expected = "one entry slot per member")]
    fn encoding_a_commit_token_without_a_slot_per_member_panics() {
        let _ = commit(ids([1, 2]), vec![None]).encode();
    }

    #[test]
    fn mcast_size_constants_match_the_encoding() {
        assert_eq!(MCAST_FIXED_BYTES, 14);
        assert_eq!(RECOVERED_EXTRA_BYTES, 25);
        assert_eq!(
            frame_mcast(b"").encoded_len(),
            HEADER_BYTES + MCAST_FIXED_BYTES + TRAILER_BYTES
        );
        assert_eq!(
            recovered_mcast(Bytes::new()).encoded_len(),
            HEADER_BYTES + MCAST_FIXED_BYTES + RECOVERED_EXTRA_BYTES + TRAILER_BYTES
        );
    }

    #[test]
    fn a_maximal_frame_fits_the_mtu_even_when_recovered() {
        assert_eq!(max_frame_bytes(1500), 1500 - 115);
        assert_eq!(max_frame_bytes(0), 0);
        for netmtu_bytes in [MIN_NETMTU_BYTES, 1500, 9000, MAX_NETMTU_BYTES] {
            let frame = Bytes::from(vec![0xAB; max_frame_bytes(netmtu_bytes)]);
            let recovered = recovered_mcast(frame.clone());
            assert_eq!(
                recovered.encoded_len() + IP_UDP_OVERHEAD_BYTES,
                netmtu_bytes
            );
            assert_eq!(Packet::decode(&recovered.encode()), Ok(recovered));
            let plain = packet(Body::Mcast(Mcast {
                seq: Seq(1),
                origin: n(1),
                guarantee: Guarantee::Agreed,
                content: McastContent::Frame(frame),
            }));
            assert!(plain.encoded_len() + IP_UDP_OVERHEAD_BYTES < netmtu_bytes);
        }
    }

    #[test]
    fn largest_token_fits_min_netmtu() {
        assert_eq!(max_token().encoded_len(), max_token_bytes());
        assert!(max_token_bytes() + IP_UDP_OVERHEAD_BYTES <= MIN_NETMTU_BYTES);
    }

    #[test]
    fn largest_join_fits_min_netmtu() {
        assert!(max_join().encoded_len() + IP_UDP_OVERHEAD_BYTES <= MIN_NETMTU_BYTES);
    }

    #[test]
    fn largest_hello_fits_min_netmtu() {
        assert!(max_hello().encoded_len() + IP_UDP_OVERHEAD_BYTES <= MIN_NETMTU_BYTES);
    }

    #[test]
    fn largest_commit_token_fits_min_netmtu() {
        assert!(max_commit().encoded_len() + IP_UDP_OVERHEAD_BYTES <= MIN_NETMTU_BYTES);
    }

    #[test]
    fn largest_commit_token_size_is_known() {
        // 32 members x (4 id + 1 present + 36 entry) + header, counts, CRC.
        assert_eq!(max_commit().encoded_len(), 28 + 8 + 1 + 32 * 41);
    }

    fn node_id() -> impl Strategy<Value = NodeId> {
        (1..=u32::MAX).prop_map(n)
    }

    fn node_set(max: usize) -> impl Strategy<Value = Vec<NodeId>> {
        // Small ids too, so sets often overlap with the header's ids.
        let id = prop_oneof![1..=100u32, 1..=u32::MAX];
        proptest::collection::btree_set(id, 0..=max).prop_map(ids)
    }

    fn seq() -> impl Strategy<Value = Seq> {
        any::<u64>().prop_map(Seq)
    }

    fn nonzero_seq() -> impl Strategy<Value = Seq> {
        (1..=u64::MAX).prop_map(Seq)
    }

    fn guarantee() -> impl Strategy<Value = Guarantee> {
        prop_oneof![Just(Guarantee::Agreed), Just(Guarantee::Safe)]
    }

    fn ring_id() -> impl Strategy<Value = RingId> {
        (node_id(), any::<u64>()).prop_map(|(rep, seq)| RingId { seq, rep })
    }

    fn frame() -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(Bytes::from)
    }

    fn mcast() -> impl Strategy<Value = Body> {
        let recovered = (ring_id(), nonzero_seq(), node_id(), guarantee(), frame()).prop_map(
            |(old_ring, old_seq, old_origin, old_guarantee, frame)| {
                McastContent::Recovered(Recovered {
                    old_ring,
                    old_seq,
                    old_origin,
                    old_guarantee,
                    frame,
                })
            },
        );
        let content = prop_oneof![frame().prop_map(McastContent::Frame), recovered];
        (nonzero_seq(), node_id(), guarantee(), content).prop_map(
            |(seq, origin, guarantee, content)| {
                Body::Mcast(Mcast {
                    seq,
                    origin,
                    guarantee,
                    content,
                })
            },
        )
    }

    fn token() -> impl Strategy<Value = Body> {
        (1..=MAX_MEMBERS).prop_flat_map(|members| {
            (
                any::<u64>(),
                seq(),
                any::<u32>(),
                any::<u32>(),
                any::<bool>(),
                proptest::option::of(nonzero_seq()),
                any::<u64>(),
                proptest::collection::vec(seq(), members),
                proptest::collection::vec(seq(), 0..=MAX_RTR_ENTRIES),
            )
                .prop_map(
                    |(
                        token_seq,
                        seq,
                        fcc,
                        backlog,
                        retransmitted,
                        install_seq,
                        bits,
                        member_aru,
                        rtr,
                    )| {
                        let mask = u64::MAX
                            .checked_shr(64 - member_aru.len() as u32)
                            .unwrap_or(0);
                        Body::Token(Token {
                            token_seq,
                            seq,
                            fcc,
                            backlog,
                            retransmitted,
                            install_seq,
                            recovery_done: bits & mask,
                            member_aru,
                            rtr,
                        })
                    },
                )
        })
    }

    fn join_body() -> impl Strategy<Value = Body> {
        (any::<u64>(), node_set(MAX_MEMBERS), node_set(MAX_MEMBERS)).prop_map(
            |(max_ring_seq, proc_set, fail_set)| {
                Body::Join(Join {
                    max_ring_seq,
                    proc_set,
                    fail_set,
                })
            },
        )
    }

    fn member_entry() -> impl Strategy<Value = MemberEntry> {
        (ring_id(), seq(), seq(), seq()).prop_map(
            |(old_ring, aru, high_delivered, high_received)| MemberEntry {
                old_ring,
                aru,
                high_delivered,
                high_received,
            },
        )
    }

    fn commit_body() -> impl Strategy<Value = Body> {
        node_set(MAX_MEMBERS)
            .prop_filter("a commit token has members", |members| !members.is_empty())
            .prop_flat_map(|members| {
                let slots =
                    proptest::collection::vec(proptest::option::of(member_entry()), members.len());
                (any::<u64>(), Just(members), slots)
            })
            .prop_map(|(token_seq, members, entries)| {
                Body::Commit(CommitToken {
                    token_seq,
                    members,
                    entries,
                })
            })
    }

    fn hello_body() -> impl Strategy<Value = Body> {
        let state = prop_oneof![
            Just(WireState::Operational),
            Just(WireState::Gather),
            Just(WireState::Commit),
            Just(WireState::Recovery),
        ];
        (state, node_set(MAX_MEMBERS), node_set(MAX_MEMBERS)).prop_map(|(state, members, heard)| {
            Body::Hello(Hello {
                state,
                members,
                heard,
            })
        })
    }

    fn any_packet() -> impl Strategy<Value = Packet> {
        let body = prop_oneof![
            mcast(),
            token(),
            join_body(),
            commit_body(),
            hello_body(),
            Just(Body::HoldCancel)
        ];
        (node_id(), ring_id(), body).prop_map(|(sender, ring_id, body)| Packet {
            sender,
            ring_id,
            body,
        })
    }

    /// One change to a datagram; positions are taken modulo its length.
    #[derive(Clone, Debug)]
    enum Mutation {
        Set(usize, u8),
        FlipBit(usize),
        Truncate(usize),
        Insert(usize, u8),
        Remove(usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(at, v)| Mutation::Set(at, v)),
            any::<usize>().prop_map(Mutation::FlipBit),
            any::<usize>().prop_map(Mutation::Truncate),
            (any::<usize>(), any::<u8>()).prop_map(|(at, v)| Mutation::Insert(at, v)),
            any::<usize>().prop_map(Mutation::Remove),
        ]
    }

    fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
        let len = bytes.len();
        if len == 0 {
            return;
        }
        match *mutation {
            Mutation::Set(at, v) => bytes[at % len] = v,
            Mutation::FlipBit(bit) => bytes[bit / 8 % len] ^= 1 << (bit % 8),
            Mutation::Truncate(at) => bytes.truncate(at % len),
            Mutation::Insert(at, v) => bytes.insert(at % (len + 1), v),
            Mutation::Remove(at) => {
                bytes.remove(at % len);
            }
        }
    }

    /// Decodes `bytes` (which must not panic) and, if it decodes, checks
    /// that the packet re-encodes to exactly `bytes`.
    fn check_decode(bytes: &[u8]) -> Result<(), TestCaseError> {
        let datagram = Bytes::copy_from_slice(bytes);
        if let Ok(decoded) = Packet::decode(&datagram) {
            prop_assert_eq!(decoded.encoded_len(), bytes.len());
            prop_assert_eq!(decoded.encode(), datagram);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn any_valid_packet_round_trips(packet in any_packet()) {
            let bytes = packet.encode();
            prop_assert_eq!(bytes.len(), packet.encoded_len());
            prop_assert_eq!(Packet::decode(&bytes), Ok(packet));
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
            check_decode(&bytes)?;
        }

        #[test]
        fn random_bodies_behind_a_valid_header_never_panic(
            raw_type in 0..=6u8,
            body in proptest::collection::vec(any::<u8>(), 0..800),
        ) {
            check_decode(&raw(raw_type, &body))?;
        }

        #[test]
        fn mutated_packets_never_panic_and_decode_canonically(
            packet in any_packet(),
            mutations in proptest::collection::vec(mutation(), 1..4),
            fix_body_len in any::<bool>(),
            fix_crc in any::<bool>(),
        ) {
            let mut bytes = packet.encode().to_vec();
            for m in &mutations {
                apply(&mut bytes, m);
            }
            if bytes.len() >= HEADER_BYTES + TRAILER_BYTES {
                if fix_body_len {
                    let body_len = u32::try_from(bytes.len() - HEADER_BYTES - TRAILER_BYTES).expect("small");
                    bytes[20..24].copy_from_slice(&body_len.to_be_bytes());
                }
                if fix_crc {
                    reseal(&mut bytes);
                }
            }
            check_decode(&bytes)?;
        }
    }
}
