//! The CLM service's messages (`saClm.h`): cluster membership tracking and
//! node lookup.
//!
//! Request ids follow openais 0.80 (TRACKSTART 0, TRACKSTOP 1, NODEGET 2,
//! NODEGETASYNC 3) and so do the callback ids (TRACK 0, NODEGET 5).
//!
//! Answers:
//! - [`TRACK_START`] with [`TRACK_CURRENT`]: the response carries a
//!   [`TrackReply`] with the current membership, unless
//!   [`TrackStart::current_as_callback`] is set (the caller passed no
//!   buffer): then the response is empty and the membership comes as a
//!   [`CB_TRACK`] callback. Changes come as [`CB_TRACK`] callbacks.
//! - [`NODE_GET`]: the response carries a [`ClusterNode`].
//! - [`NODE_GET_ASYNC`]: an empty response (accepted), then a
//!   [`CB_NODE_GET`] callback with a [`NodeGetCallback`].

use bytes::Bytes;

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::error::{status_code, Status};
use crate::setup::Version;

/// The CLM interface version (SA Forum B.01.01).
pub const VERSION: Version = Version::B_01_01;

/// Request: start tracking ([`TrackStart`]).
pub const TRACK_START: u16 = 0;
/// Request: stop tracking (empty body).
pub const TRACK_STOP: u16 = 1;
/// Request: one node's record ([`NodeGet`]).
pub const NODE_GET: u16 = 2;
/// Request: one node's record, answered by callback ([`NodeGetAsync`]).
pub const NODE_GET_ASYNC: u16 = 3;

/// Callback: a membership notification ([`TrackCallback`]).
pub const CB_TRACK: u16 = 0;
/// Callback: the answer to [`NODE_GET_ASYNC`] ([`NodeGetCallback`]).
pub const CB_NODE_GET: u16 = 5;

/// `SA_TRACK_CURRENT`.
pub const TRACK_CURRENT: u8 = 0x01;
/// `SA_TRACK_CHANGES`.
pub const TRACK_CHANGES: u8 = 0x02;
/// `SA_TRACK_CHANGES_ONLY`.
pub const TRACK_CHANGES_ONLY: u8 = 0x04;

/// `SA_CLM_LOCAL_NODE_ID`: "the node I am on".
pub const LOCAL_NODE_ID: u32 = 0xffff_ffff;
/// `SA_CLM_MAX_ADDRESS_LENGTH`.
pub const MAX_ADDRESS_BYTES: usize = 64;
/// `SA_MAX_NAME_LENGTH`.
pub const MAX_NAME_BYTES: usize = 256;
/// Most entries in one notification (far above Totem's ring size).
pub const MAX_ITEMS: usize = 1024;

/// `SaClmNodeAddressFamilyT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AddressFamily {
    /// `SA_CLM_AF_INET`.
    Inet = 1,
    /// `SA_CLM_AF_INET6`.
    Inet6 = 2,
}

/// `SaClmClusterChangesT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ClusterChange {
    /// `SA_CLM_NODE_NO_CHANGE`.
    NoChange = 1,
    /// `SA_CLM_NODE_JOINED`.
    Joined = 2,
    /// `SA_CLM_NODE_LEFT`.
    Left = 3,
    /// `SA_CLM_NODE_RECONFIGURED`.
    Reconfigured = 4,
}

/// `SaClmClusterNodeT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    /// The Totem node id.
    pub node_id: u32,
    /// The address family.
    pub family: AddressFamily,
    /// The address as printable text (at most [`MAX_ADDRESS_BYTES`]).
    pub address: String,
    /// The node name (at most [`MAX_NAME_BYTES`]).
    pub name: String,
    /// Whether it is a member of the cluster now.
    pub member: bool,
    /// When its executive started, ns since the Unix epoch.
    pub boot_timestamp_ns: i64,
    /// The view number at which it joined the membership.
    pub initial_view: u64,
}

/// One entry of a notification: `SaClmClusterNotificationT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The node.
    pub node: ClusterNode,
    /// What happened to it.
    pub change: ClusterChange,
}

/// The body of [`TRACK_START`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackStart {
    /// `SA_TRACK_*` flags, as the caller gave them (the executive checks).
    pub flags: u8,
    /// With [`TRACK_CURRENT`]: send the current membership as a callback
    /// (the caller gave no buffer) instead of in the response.
    pub current_as_callback: bool,
}

/// The response to [`TRACK_START`] with [`TRACK_CURRENT`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackReply {
    /// The current view number.
    pub view: u64,
    /// Every member, each with [`ClusterChange::NoChange`].
    pub items: Vec<Notification>,
}

/// The body of a [`CB_TRACK`] callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackCallback {
    /// The view number of the membership it describes.
    pub view: u64,
    /// The entries (the whole membership then the changes, or the changes
    /// only, as the track flags asked).
    pub items: Vec<Notification>,
    /// Members in the new membership.
    pub members: u32,
    /// The status passed to the callback.
    pub status: Status,
}

/// The body of [`NODE_GET`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeGet {
    /// The node, or [`LOCAL_NODE_ID`].
    pub node_id: u32,
}

/// The body of [`NODE_GET_ASYNC`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeGetAsync {
    /// The caller's invocation, echoed in the callback.
    pub invocation: u64,
    /// The node, or [`LOCAL_NODE_ID`].
    pub node_id: u32,
}

/// The body of a [`CB_NODE_GET`] callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeGetCallback {
    /// The invocation of the request.
    pub invocation: u64,
    /// The status passed to the callback.
    pub status: Status,
    /// The node, when found.
    pub node: Option<ClusterNode>,
}

/// Smallest encoded size of a [`ClusterNode`], for list bounds.
const MIN_NODE_BYTES: usize = 4 + 1 + 4 + 4 + 1 + 8 + 8;

impl AddressFamily {
    fn from_code(code: u8) -> Result<AddressFamily, DecodeError> {
        match code {
            1 => Ok(AddressFamily::Inet),
            2 => Ok(AddressFamily::Inet6),
            v => Err(DecodeError::BadValue {
                what: "address family",
                value: v.into(),
            }),
        }
    }
}

impl ClusterChange {
    fn from_code(code: u8) -> Result<ClusterChange, DecodeError> {
        match code {
            1 => Ok(ClusterChange::NoChange),
            2 => Ok(ClusterChange::Joined),
            3 => Ok(ClusterChange::Left),
            4 => Ok(ClusterChange::Reconfigured),
            v => Err(DecodeError::BadValue {
                what: "cluster change",
                value: v.into(),
            }),
        }
    }
}

impl ClusterNode {
    /// Appends the node to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u32(self.node_id)
            .put_u8(self.family as u8)
            .put_str(truncate(&self.address, MAX_ADDRESS_BYTES))
            .put_str(truncate(&self.name, MAX_NAME_BYTES))
            .put_bool(self.member)
            .put_i64(self.boot_timestamp_ns)
            .put_u64(self.initial_view);
    }

    /// Reads a node from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on a malformed or over-long field.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<ClusterNode, DecodeError> {
        Ok(ClusterNode {
            node_id: dec.get_u32()?,
            family: AddressFamily::from_code(dec.get_u8()?)?,
            address: dec.get_string("node address", MAX_ADDRESS_BYTES)?,
            name: dec.get_string("node name", MAX_NAME_BYTES)?,
            member: dec.get_bool("member")?,
            boot_timestamp_ns: dec.get_i64()?,
            initial_view: dec.get_u64()?,
        })
    }

    /// The node alone as a body (the [`NODE_GET`] response).
    pub fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        self.encode_into(&mut enc);
        enc.finish()
    }

    /// Decodes a [`NODE_GET`] response body.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode(body: &[u8]) -> Result<ClusterNode, DecodeError> {
        let mut dec = Decoder::new(body);
        let n = ClusterNode::decode_from(&mut dec)?;
        dec.finish()?;
        Ok(n)
    }
}

/// `s` cut to at most `max` bytes on a character boundary, so an over-long
/// configured name cannot make an unencodable message.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn encode_items(enc: &mut Encoder, items: &[Notification]) {
    let items = &items[..items.len().min(MAX_ITEMS)];
    enc.put_count(items.len());
    for i in items {
        i.node.encode_into(enc);
        enc.put_u8(i.change as u8);
    }
}

fn decode_items(dec: &mut Decoder<'_>) -> Result<Vec<Notification>, DecodeError> {
    let n = dec.get_count("notifications", MAX_ITEMS, MIN_NODE_BYTES + 1)?;
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        let node = ClusterNode::decode_from(dec)?;
        let change = ClusterChange::from_code(dec.get_u8()?)?;
        items.push(Notification { node, change });
    }
    Ok(items)
}

impl TrackStart {
    /// Its body.
    pub fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        enc.put_u8(self.flags).put_bool(self.current_as_callback);
        enc.finish()
    }

    /// Decodes a body.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode(body: &[u8]) -> Result<TrackStart, DecodeError> {
        let mut dec = Decoder::new(body);
        let t = TrackStart {
            flags: dec.get_u8()?,
            current_as_callback: dec.get_bool("current_as_callback")?,
        };
        dec.finish()?;
        Ok(t)
    }
}

impl TrackReply {
    /// Its body.
    pub fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        enc.put_u64(self.view);
        encode_items(&mut enc, &self.items);
        enc.finish()
    }

    /// Decodes a body.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode(body: &[u8]) -> Result<TrackReply, DecodeError> {
        let mut dec = Decoder::new(body);
        let view = dec.get_u64()?;
        let items = decode_items(&mut dec)?;
        dec.finish()?;
        Ok(TrackReply { view, items })
    }
}

impl TrackCallback {
    /// Its body.
    pub fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        enc.put_u64(self.view);
        encode_items(&mut enc, &self.items);
        enc.put_u32(self.members).put_u32(status_code(self.status));
        enc.finish()
    }

    /// Decodes a body.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode(body: &[u8]) -> Result<TrackCallback, DecodeError> {
        let mut dec = Decoder::new(body);
        let view = dec.get_u64()?;
        let items = decode_items(&mut dec)?;
        let members = dec.get_u32()?;
        let status = dec.get_status()?;
        dec.finish()?;
        Ok(TrackCallback {
            view,
            items,
            members,
            status,
        })
    }
}

impl NodeGet {
    /// Its body.
    pub fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        enc.put_u32(self.node_id);
        enc.finish()
    }

    /// Decodes a body.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode(body: &[u8]) -> Result<NodeGet, DecodeError> {
        let mut dec = Decoder::new(body);
        let node_id = dec.get_u32()?;
        dec.finish()?;
        Ok(NodeGet { node_id })
    }
}

impl NodeGetAsync {
    /// Its body.
    pub fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        enc.put_u64(self.invocation).put_u32(self.node_id);
        enc.finish()
    }

    /// Decodes a body.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode(body: &[u8]) -> Result<NodeGetAsync, DecodeError> {
        let mut dec = Decoder::new(body);
        let r = NodeGetAsync {
            invocation: dec.get_u64()?,
            node_id: dec.get_u32()?,
        };
        dec.finish()?;
        Ok(r)
    }
}

impl NodeGetCallback {
    /// Its body.
    pub fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        enc.put_u64(self.invocation)
            .put_u32(status_code(self.status));
        match &self.node {
            Some(n) => {
                enc.put_bool(true);
                n.encode_into(&mut enc);
            }
            None => {
                enc.put_bool(false);
            }
        }
        enc.finish()
    }

    /// Decodes a body.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode(body: &[u8]) -> Result<NodeGetCallback, DecodeError> {
        let mut dec = Decoder::new(body);
        let invocation = dec.get_u64()?;
        let status = dec.get_status()?;
        let node = if dec.get_bool("has node")? {
            Some(ClusterNode::decode_from(&mut dec)?)
        } else {
            None
        };
        dec.finish()?;
        Ok(NodeGetCallback {
            invocation,
            status,
            node,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AisError;
    use proptest::prelude::*;

    fn node(id: u32) -> ClusterNode {
        ClusterNode {
            node_id: id,
            family: AddressFamily::Inet,
            address: format!("127.0.0.{id}"),
            name: format!("node{id}"),
            member: true,
            boot_timestamp_ns: 1_700_000_000_000_000_000,
            initial_view: 3,
        }
    }

    #[test]
    fn every_message_round_trips() {
        let t = TrackStart {
            flags: TRACK_CURRENT | TRACK_CHANGES,
            current_as_callback: true,
        };
        assert_eq!(TrackStart::decode(&t.encode()), Ok(t));
        let items = vec![
            Notification {
                node: node(1),
                change: ClusterChange::NoChange,
            },
            Notification {
                node: node(2),
                change: ClusterChange::Left,
            },
        ];
        let r = TrackReply {
            view: 9,
            items: items.clone(),
        };
        assert_eq!(TrackReply::decode(&r.encode()), Ok(r));
        let c = TrackCallback {
            view: 10,
            items,
            members: 1,
            status: Err(AisError::NoSpace),
        };
        assert_eq!(TrackCallback::decode(&c.encode()), Ok(c));
        assert_eq!(ClusterNode::decode(&node(7).encode()), Ok(node(7)));
        let g = NodeGetAsync {
            invocation: 60,
            node_id: LOCAL_NODE_ID,
        };
        assert_eq!(NodeGetAsync::decode(&g.encode()), Ok(g));
        for cb in [
            NodeGetCallback {
                invocation: 60,
                status: Err(AisError::InvalidParam),
                node: None,
            },
            NodeGetCallback {
                invocation: 61,
                status: Ok(()),
                node: Some(node(3)),
            },
        ] {
            assert_eq!(NodeGetCallback::decode(&cb.encode()), Ok(cb));
        }
    }

    #[test]
    fn over_long_names_are_cut_on_a_character_boundary() {
        let mut n = node(1);
        n.name = "é".repeat(200); // 400 bytes
        let back = ClusterNode::decode(&n.encode()).unwrap();
        assert!(back.name.len() <= MAX_NAME_BYTES);
        assert!(n.name.starts_with(&back.name));
    }

    #[test]
    fn bad_enums_and_trailing_bytes_are_rejected() {
        let mut b = node(1).encode().to_vec();
        b[4] = 9; // family
        assert!(ClusterNode::decode(&b).is_err());
        let mut b = NodeGet { node_id: 1 }.encode().to_vec();
        b.push(0);
        assert!(NodeGet::decode(&b).is_err());
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = TrackStart::decode(&bytes);
            let _ = TrackReply::decode(&bytes);
            let _ = TrackCallback::decode(&bytes);
            let _ = ClusterNode::decode(&bytes);
            let _ = NodeGet::decode(&bytes);
            let _ = NodeGetAsync::decode(&bytes);
            let _ = NodeGetCallback::decode(&bytes);
        }
    }
}
