//! The EVS service's messages (openais `evs.h`): process groups with
//! totally ordered multicast.
//!
//! Request ids follow openais 0.80 (JOIN 0, LEAVE 1, MCAST_JOINED 2,
//! MCAST_GROUPS 3, MEMBERSHIP_GET 4), callbacks too (DELIVER 0, CONFCHG 1).
//! Every request gets one response; [`MEMBERSHIP_GET`]'s carries a
//! [`Membership`], the others an empty body. Deliveries and configuration
//! changes come as callbacks.

use bytes::Bytes;

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::setup::Version;

/// The EVS interface version ('E' is ours: evs.h has no version of its own).
pub const VERSION: Version = Version::new(b'E', 1, 0);

/// Request: join groups ([`Groups`]).
pub const JOIN: u16 = 0;
/// Request: leave groups ([`Groups`]).
pub const LEAVE: u16 = 1;
/// Request: multicast to the connection's groups ([`McastJoined`]).
pub const MCAST_JOINED: u16 = 2;
/// Request: multicast to the listed groups ([`McastGroups`]).
pub const MCAST_GROUPS: u16 = 3;
/// Request: the current membership (empty body).
pub const MEMBERSHIP_GET: u16 = 4;

/// Callback: a delivered message ([`Deliver`]).
pub const CB_DELIVER: u16 = 0;
/// Callback: a configuration change ([`ConfChg`]).
pub const CB_CONFCHG: u16 = 1;

/// Bytes of a group key (`struct evs_group { char key[32]; }`).
pub const GROUP_KEY_BYTES: usize = 32;

/// The bytes of a [`Deliver`] body before its message: node id, length.
pub const DELIVER_HEAD_BYTES: usize = 8;

/// Most groups one join, leave or mcast_groups call may name (openais:
/// more is `EVS_ERR_TOO_MANY_GROUPS`).
pub const MAX_GROUPS_PER_CALL: usize = 50;
/// Most groups one connection may have joined at once.
pub const MAX_GROUPS_PER_CONN: usize = 1024;
/// Largest message one multicast may carry.
pub const MAX_MSG_BYTES: usize = 1 << 20;
/// Most node ids in a membership or configuration change list.
pub const MAX_MEMBERS: usize = 1024;

/// `EVS_TYPE_*` guarantees; FIFO is served as agreed, as in openais.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EvsGuarantee {
    /// `EVS_TYPE_UNORDERED` (served as agreed: total order is stronger).
    Unordered = 0,
    /// `EVS_TYPE_FIFO` (served as agreed).
    Fifo = 1,
    /// `EVS_TYPE_AGREED`.
    Agreed = 2,
    /// `EVS_TYPE_SAFE`: delivered once every member has the message.
    Safe = 3,
}

impl EvsGuarantee {
    /// The guarantee with C value `code`.
    pub fn from_code(code: u8) -> Option<EvsGuarantee> {
        match code {
            0 => Some(EvsGuarantee::Unordered),
            1 => Some(EvsGuarantee::Fifo),
            2 => Some(EvsGuarantee::Agreed),
            3 => Some(EvsGuarantee::Safe),
            _ => None,
        }
    }
}

/// A group: 32 key bytes, compared whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Group(pub [u8; GROUP_KEY_BYTES]);

impl Group {
    /// A group from a name (cut or zero-padded to 32 bytes).
    pub fn named(name: &str) -> Group {
        let mut key = [0; GROUP_KEY_BYTES];
        let n = name.len().min(GROUP_KEY_BYTES);
        key[..n].copy_from_slice(&name.as_bytes()[..n]);
        Group(key)
    }
}

/// The body of [`JOIN`] and [`LEAVE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Groups {
    /// The groups.
    pub groups: Vec<Group>,
}

/// The body of [`MCAST_JOINED`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McastJoined {
    /// The guarantee asked for.
    pub guarantee: EvsGuarantee,
    /// The message.
    pub msg: Bytes,
}

/// The body of [`MCAST_GROUPS`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McastGroups {
    /// The guarantee asked for.
    pub guarantee: EvsGuarantee,
    /// The groups it goes to (the sender need not have joined them).
    pub groups: Vec<Group>,
    /// The message.
    pub msg: Bytes,
}

/// The response to [`MEMBERSHIP_GET`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// This node's id.
    pub local: u32,
    /// The members of the last configuration delivered, ascending.
    pub members: Vec<u32>,
}

/// The body of a [`CB_DELIVER`] callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deliver {
    /// The sender's node id.
    pub node_id: u32,
    /// The message.
    pub msg: Bytes,
}

/// The body of a [`CB_CONFCHG`] callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfChg {
    /// Members of the configuration.
    pub members: Vec<u32>,
    /// Members of the previous configuration not in this one.
    pub left: Vec<u32>,
    /// Members of this configuration not in the previous one.
    pub joined: Vec<u32>,
    /// Which configuration this is. An extension of openais's callback
    /// (`evs_confchg_fn` has no ring id, and the C layer does not pass it
    /// on): it lets a checker tell two configurations with the same
    /// members apart, and transitional from regular ones.
    pub ring: ConfRing,
}

/// The configuration a [`ConfChg`] reports: Totem's ring id, and whether
/// it is the transitional configuration that precedes that ring's regular
/// one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfRing {
    /// The ring's sequence number.
    pub seq: u64,
    /// The ring's representative.
    pub rep: u32,
    /// True for the transitional configuration (its members are the old
    /// ring's members that go on into this ring).
    pub transitional: bool,
}

fn put_groups(enc: &mut Encoder, groups: &[Group]) {
    enc.put_count(groups.len());
    for g in groups {
        enc.put_bytes(&g.0);
    }
}

fn get_groups(dec: &mut Decoder<'_>) -> Result<Vec<Group>, DecodeError> {
    let n = dec.get_count("groups", MAX_GROUPS_PER_CALL, GROUP_KEY_BYTES)?;
    let mut groups = Vec::with_capacity(n);
    for _ in 0..n {
        let key = dec.get_bytes(GROUP_KEY_BYTES)?;
        let mut g = [0; GROUP_KEY_BYTES];
        g.copy_from_slice(key);
        groups.push(Group(g));
    }
    Ok(groups)
}

fn get_guarantee(dec: &mut Decoder<'_>) -> Result<EvsGuarantee, DecodeError> {
    let code = dec.get_u8()?;
    EvsGuarantee::from_code(code).ok_or(DecodeError::BadValue {
        what: "guarantee",
        value: code.into(),
    })
}

fn put_ids(enc: &mut Encoder, ids: &[u32]) {
    let ids = &ids[..ids.len().min(MAX_MEMBERS)];
    enc.put_count(ids.len());
    for &i in ids {
        enc.put_u32(i);
    }
}

fn get_ids(dec: &mut Decoder<'_>, what: &'static str) -> Result<Vec<u32>, DecodeError> {
    let n = dec.get_count(what, MAX_MEMBERS, 4)?;
    (0..n).map(|_| dec.get_u32()).collect()
}

impl Groups {
    /// Its body. Callers keep lists within [`MAX_GROUPS_PER_CALL`]; a
    /// longer one is encoded but refused by the decoder.
    pub fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        put_groups(&mut enc, &self.groups);
        enc.finish()
    }

    /// Decodes a body.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input or more than
    /// [`MAX_GROUPS_PER_CALL`] groups.
    pub fn decode(body: &[u8]) -> Result<Groups, DecodeError> {
        let mut dec = Decoder::new(body);
        let groups = get_groups(&mut dec)?;
        dec.finish()?;
        Ok(Groups { groups })
    }
}

impl McastJoined {
    /// Its body.
    pub fn encode(&self) -> Bytes {
        let mut enc = Encoder::with_capacity(1 + 4 + self.msg.len());
        enc.put_u8(self.guarantee as u8).put_len_prefixed(&self.msg);
        enc.finish()
    }

    /// The body's bytes before a message of `msg_len` bytes: the body is
    /// these, then the message (so a client writes it without building
    /// it). `None` if `msg_len` is over [`MAX_MSG_BYTES`].
    pub fn prefix(guarantee: EvsGuarantee, msg_len: usize) -> Option<Bytes> {
        if msg_len > MAX_MSG_BYTES {
            return None;
        }
        let mut enc = Encoder::with_capacity(1 + 4);
        enc.put_u8(guarantee as u8).put_count(msg_len);
        Some(enc.finish())
    }

    /// Decodes a body.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input or a message over
    /// [`MAX_MSG_BYTES`].
    pub fn decode(body: &Bytes) -> Result<McastJoined, DecodeError> {
        let mut dec = Decoder::new(body);
        let guarantee = get_guarantee(&mut dec)?;
        let msg = body.slice_ref(dec.get_len_prefixed("message", MAX_MSG_BYTES)?);
        dec.finish()?;
        Ok(McastJoined { guarantee, msg })
    }
}

impl McastGroups {
    /// The body's bytes before a message of `msg_len` bytes to `groups`,
    /// as [`McastJoined::prefix`]. `None` if `msg_len` is over
    /// [`MAX_MSG_BYTES`].
    pub fn prefix(guarantee: EvsGuarantee, groups: &[Group], msg_len: usize) -> Option<Bytes> {
        if msg_len > MAX_MSG_BYTES {
            return None;
        }
        let mut enc = Encoder::with_capacity(1 + 4 + groups.len() * GROUP_KEY_BYTES + 4);
        enc.put_u8(guarantee as u8);
        put_groups(&mut enc, groups);
        enc.put_count(msg_len);
        Some(enc.finish())
    }

    /// Its body.
    pub fn encode(&self) -> Bytes {
        let mut enc = Encoder::with_capacity(
            1 + 4 + self.groups.len() * GROUP_KEY_BYTES + 4 + self.msg.len(),
        );
        enc.put_u8(self.guarantee as u8);
        put_groups(&mut enc, &self.groups);
        enc.put_len_prefixed(&self.msg);
        enc.finish()
    }

    /// Decodes a body.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input, too many groups, or a message
    /// over [`MAX_MSG_BYTES`].
    pub fn decode(body: &Bytes) -> Result<McastGroups, DecodeError> {
        let mut dec = Decoder::new(body);
        let guarantee = get_guarantee(&mut dec)?;
        let groups = get_groups(&mut dec)?;
        let msg = body.slice_ref(dec.get_len_prefixed("message", MAX_MSG_BYTES)?);
        dec.finish()?;
        Ok(McastGroups {
            guarantee,
            groups,
            msg,
        })
    }
}

impl Membership {
    /// Its body.
    pub fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        enc.put_u32(self.local);
        put_ids(&mut enc, &self.members);
        enc.finish()
    }

    /// Decodes a body.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode(body: &[u8]) -> Result<Membership, DecodeError> {
        let mut dec = Decoder::new(body);
        let local = dec.get_u32()?;
        let members = get_ids(&mut dec, "members")?;
        dec.finish()?;
        Ok(Membership { local, members })
    }
}

/// The fields of a [`Deliver`] body before its message, from `node_id`,
/// of a message of `msg_len` bytes (for framing a delivered message
/// without encoding a body first).
pub fn deliver_head(node_id: u32, msg_len: usize) -> [u8; DELIVER_HEAD_BYTES] {
    let mut head = [0; DELIVER_HEAD_BYTES];
    head[..4].copy_from_slice(&node_id.to_le_bytes());
    // The length as put_len_prefixed writes it. A message does not reach
    // 4 GiB (the ring's maximum is about 1 MiB); if one did, its frame
    // would be refused as too big before this length was ever read.
    let len = u32::try_from(msg_len).unwrap_or(u32::MAX);
    head[4..].copy_from_slice(&len.to_le_bytes());
    head
}

impl Deliver {
    /// Its body.
    pub fn encode(&self) -> Bytes {
        let mut enc = Encoder::with_capacity(4 + 4 + self.msg.len());
        enc.put_u32(self.node_id).put_len_prefixed(&self.msg);
        enc.finish()
    }

    /// Its body's fields before the message: the body is these, then
    /// `msg`.
    pub fn head(&self) -> [u8; DELIVER_HEAD_BYTES] {
        deliver_head(self.node_id, self.msg.len())
    }

    /// Decodes a body.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode(body: &Bytes) -> Result<Deliver, DecodeError> {
        let mut dec = Decoder::new(body);
        let node_id = dec.get_u32()?;
        let msg = body.slice_ref(dec.get_len_prefixed("message", MAX_MSG_BYTES)?);
        dec.finish()?;
        Ok(Deliver { node_id, msg })
    }
}

impl ConfChg {
    /// Its body.
    pub fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        put_ids(&mut enc, &self.members);
        put_ids(&mut enc, &self.left);
        put_ids(&mut enc, &self.joined);
        enc.put_u64(self.ring.seq);
        enc.put_u32(self.ring.rep);
        enc.put_bool(self.ring.transitional);
        enc.finish()
    }

    /// Decodes a body.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode(body: &[u8]) -> Result<ConfChg, DecodeError> {
        let mut dec = Decoder::new(body);
        let members = get_ids(&mut dec, "members")?;
        let left = get_ids(&mut dec, "left")?;
        let joined = get_ids(&mut dec, "joined")?;
        let ring = ConfRing {
            seq: dec.get_u64()?,
            rep: dec.get_u32()?,
            transitional: dec.get_bool("transitional")?,
        };
        dec.finish()?;
        Ok(ConfChg {
            members,
            left,
            joined,
            ring,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_message_round_trips() {
        let g = Groups {
            groups: vec![
                Group::named("key1"),
                Group::named("a-group-name-longer-than-32-bytes!"),
            ],
        };
        assert_eq!(Groups::decode(&g.encode()), Ok(g));
        let m = McastJoined {
            guarantee: EvsGuarantee::Agreed,
            msg: Bytes::from_static(b"hello"),
        };
        assert_eq!(McastJoined::decode(&m.encode()), Ok(m.clone()));
        // The message is a slice of the frame's body, not a copy.
        let body = m.encode();
        let decoded = McastJoined::decode(&body).unwrap();
        assert!(body.as_ptr_range().contains(&decoded.msg.as_ptr()));
        let prefix = McastJoined::prefix(m.guarantee, m.msg.len()).unwrap();
        assert_eq!([&prefix[..], &m.msg[..]].concat(), m.encode());
        let m = McastGroups {
            guarantee: EvsGuarantee::Safe,
            groups: vec![Group::named("x")],
            msg: Bytes::from(vec![7; 1000]),
        };
        assert_eq!(McastGroups::decode(&m.encode()), Ok(m.clone()));
        let prefix = McastGroups::prefix(m.guarantee, &m.groups, m.msg.len()).unwrap();
        assert_eq!([&prefix[..], &m.msg[..]].concat(), m.encode());
        assert_eq!(
            McastGroups::prefix(m.guarantee, &m.groups, MAX_MSG_BYTES + 1),
            None
        );
        assert_eq!(McastJoined::prefix(m.guarantee, MAX_MSG_BYTES + 1), None);
        let m = Membership {
            local: 2,
            members: vec![1, 2, 3],
        };
        assert_eq!(Membership::decode(&m.encode()), Ok(m));
        let d = Deliver {
            node_id: 3,
            msg: Bytes::from_static(b"m"),
        };
        assert_eq!(Deliver::decode(&d.encode()), Ok(d.clone()));
        let body = d.encode();
        let decoded = Deliver::decode(&body).unwrap();
        assert!(body.as_ptr_range().contains(&decoded.msg.as_ptr()));
        // The head, then the message, is the body.
        let long = Deliver {
            node_id: 7,
            msg: Bytes::from(vec![5u8; 70_000]),
        };
        let joined = [&long.head()[..], &long.msg[..]].concat();
        assert_eq!(joined, long.encode());
        let c = ConfChg {
            members: vec![1, 2],
            left: vec![3],
            joined: vec![],
            ring: ConfRing {
                seq: 12,
                rep: 1,
                transitional: true,
            },
        };
        assert_eq!(ConfChg::decode(&c.encode()), Ok(c));
    }

    #[test]
    fn limits_are_enforced_by_the_decoder() {
        let g = Groups {
            groups: vec![Group::named("g"); MAX_GROUPS_PER_CALL + 1],
        };
        assert!(matches!(
            Groups::decode(&g.encode()),
            Err(DecodeError::TooLong { .. })
        ));
        let m = McastJoined {
            guarantee: EvsGuarantee::Agreed,
            msg: Bytes::from(vec![0; MAX_MSG_BYTES + 1]),
        };
        assert!(McastJoined::decode(&m.encode()).is_err());
        let mut b = McastJoined {
            guarantee: EvsGuarantee::Agreed,
            msg: Bytes::new(),
        }
        .encode()
        .to_vec();
        b[0] = 4;
        assert!(
            McastJoined::decode(&Bytes::from(b)).is_err(),
            "guarantee 4 does not exist"
        );
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let bytes = Bytes::from(bytes);
            let _ = Groups::decode(&bytes);
            let _ = McastJoined::decode(&bytes);
            let _ = McastGroups::decode(&bytes);
            let _ = Membership::decode(&bytes);
            let _ = Deliver::decode(&bytes);
            let _ = ConfChg::decode(&bytes);
        }
    }
}
