//! EVS: openais's process groups (`evs.h`).
//!
//! Groups belong to connections. A multicast carries its group list through
//! the ring; at delivery every node hands the message once to each of its
//! connections that joined at least one of those groups (the sender's
//! included), in the ring's total order. Every configuration change,
//! transitional and regular, is forwarded to every connection, and a new
//! connection first gets the last one, as openais did. EVS has no sync
//! state: a group lives in its members' connections only.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use proto::evs::{
    deliver_head, ConfChg, ConfRing, EvsGuarantee, Group, Groups, McastGroups, McastJoined,
    Membership, CB_CONFCHG, CB_DELIVER, GROUP_KEY_BYTES, JOIN, LEAVE, MAX_GROUPS_PER_CONN,
    MAX_MSG_BYTES, MCAST_GROUPS, MCAST_JOINED, MEMBERSHIP_GET,
};
use proto::{AisError, Decoder, Encoder, ServiceId, Version};
use totem::{ConfigChange, ConfigKind, Guarantee, NodeId};

use crate::engine::{ConnId, Ctx, Engine};

/// Executive message: a multicast with its groups.
const EXEC_MCAST: u16 = 0;

/// Delivered messages at least this long go to clients without being copied
/// into the callback: the frame is written from where the message was
/// received. Below it a copy is cheap. At and above it, a client's queue
/// may keep more alive than it counts: the message's receive chunk
/// (256 KiB, aisexec's transport) while the client has not read it, at
/// most 8 times the 32 KiB counted. Copying 64 KB messages was about a
/// third of the sending node's user-space copying (issue #7).
pub const DELIVER_UNCOPIED_FROM_BYTES: usize = 32 << 10;

/// The EVS engine.
#[derive(Debug, Default)]
pub struct Evs {
    /// Groups joined, per connection.
    conns: BTreeMap<ConnId, Joined>,
    /// The last configuration change seen (for new connections and
    /// `evs_membership_get`).
    last: Option<ConfChg>,
    /// Multicasts delivered, for the dump.
    delivered: u64,
}

/// A connection's groups, and the ring message fields that name them.
#[derive(Debug)]
struct Joined {
    groups: BTreeSet<Group>,
    /// `encode_exec_groups` of `groups`, kept: `evs_mcast_joined` sends
    /// to these groups, and encoding them per message cost two
    /// allocations and a copy of the list.
    exec_groups: Bytes,
}

impl Default for Joined {
    /// No group.
    fn default() -> Joined {
        Joined {
            groups: BTreeSet::new(),
            exec_groups: encode_exec_groups(std::iter::empty()),
        }
    }
}

impl Joined {
    fn update(&mut self, change: impl FnOnce(&mut BTreeSet<Group>)) {
        change(&mut self.groups);
        self.exec_groups = encode_exec_groups(self.groups.iter());
    }
}

fn ids(v: &[NodeId]) -> Vec<u32> {
    v.iter().map(|n| n.get()).collect()
}

fn guarantee(g: EvsGuarantee) -> Guarantee {
    match g {
        EvsGuarantee::Safe => Guarantee::Safe,
        EvsGuarantee::Unordered | EvsGuarantee::Fifo | EvsGuarantee::Agreed => Guarantee::Agreed,
    }
}

/// The ring message's fields before the message bytes: group count, then
/// the groups (the message follows them, see [`Evs::mcast`]).
fn encode_exec_groups<'a>(groups: impl ExactSizeIterator<Item = &'a Group>) -> Bytes {
    let mut enc = Encoder::with_capacity(4 + groups.len() * GROUP_KEY_BYTES);
    enc.put_count(groups.len());
    for g in groups {
        enc.put_bytes(&g.0);
    }
    enc.finish()
}

/// The group keys, back to back, and the message of a ring message. The
/// groups stay bytes (see [`addressed_to`]): a set built per delivery was
/// one of the allocations each delivered message cost.
fn decode_exec(body: &Bytes) -> Option<(&[u8], Bytes)> {
    let mut dec = Decoder::new(body);
    let n = dec
        .get_count("groups", MAX_GROUPS_PER_CONN, GROUP_KEY_BYTES)
        .ok()?;
    let groups = dec.get_bytes(n * GROUP_KEY_BYTES).ok()?;
    let at = body.len() - dec.remaining();
    Some((groups, body.slice(at..)))
}

/// Whether a client that joined `joined` gets a message sent to `groups`
/// (group keys back to back, as [`decode_exec`] gives them).
fn addressed_to(joined: &BTreeSet<Group>, groups: &[u8]) -> bool {
    groups
        .chunks_exact(GROUP_KEY_BYTES)
        .any(|g| g.try_into().is_ok_and(|key| joined.contains(&Group(key))))
}

/// Gives `item` to each of `conns`, the last taking it itself: the first
/// clone of a fresh buffer allocates its shared count, and most
/// deliveries have one receiver per node.
fn to_each<T: Clone>(
    conns: impl Iterator<Item = ConnId>,
    item: T,
    mut give: impl FnMut(ConnId, T),
) {
    let mut conns = conns.peekable();
    while let Some(conn) = conns.next() {
        if conns.peek().is_some() {
            give(conn, item.clone());
        } else {
            give(conn, item);
            return;
        }
    }
}

impl Evs {
    /// An EVS engine with no connections.
    pub fn new() -> Evs {
        Evs::default()
    }

    /// Puts `msg` on the ring for the groups `exec_groups` encodes
    /// ([`encode_exec_groups`]).
    fn mcast(
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        id: u16,
        exec_groups: &[u8],
        msg: &[u8],
        g: EvsGuarantee,
    ) -> Result<(), AisError> {
        if msg.len() > MAX_MSG_BYTES {
            return Err(AisError::TooBig);
        }
        // Copied once, straight into the ring's message.
        ctx.mcast_parts(EXEC_MCAST, &[exec_groups, msg], guarantee(g))?;
        ctx.respond(conn, id, Ok(()), Bytes::new());
        Ok(())
    }
}

impl Engine for Evs {
    fn service(&self) -> ServiceId {
        ServiceId::Evs
    }

    fn name(&self) -> &'static str {
        "EVS extended virtual synchrony groups"
    }

    fn version(&self) -> Version {
        proto::evs::VERSION
    }

    /// Multicasts wait for sync (openais: flow control REQUIRED); joins,
    /// leaves and membership queries do not.
    fn request_needs_sync(&self, id: u16) -> bool {
        matches!(id, MCAST_JOINED | MCAST_GROUPS)
    }

    fn lib_init(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        self.conns.insert(conn, Joined::default());
        if let Some(c) = &self.last {
            ctx.callback(conn, CB_CONFCHG, c.encode());
        }
    }

    fn lib_exit(&mut self, _ctx: &mut Ctx<'_>, conn: ConnId) {
        self.conns.remove(&conn);
    }

    fn lib_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        id: u16,
        body: Bytes,
    ) -> Result<(), AisError> {
        let joined = self.conns.get(&conn).ok_or(AisError::BadHandle)?;
        match id {
            JOIN => {
                let req = Groups::decode(&body).map_err(|_| AisError::InvalidParam)?;
                let new: BTreeSet<Group> = req.groups.into_iter().collect();
                if joined.groups.union(&new).count() > MAX_GROUPS_PER_CONN {
                    return Err(AisError::NoResources);
                }
                self.conns
                    .entry(conn)
                    .or_default()
                    .update(|groups| groups.extend(new));
                ctx.respond(conn, id, Ok(()), Bytes::new());
                Ok(())
            }
            LEAVE => {
                let req = Groups::decode(&body).map_err(|_| AisError::InvalidParam)?;
                if req.groups.iter().any(|g| !joined.groups.contains(g)) {
                    return Err(AisError::NotExist);
                }
                self.conns.entry(conn).or_default().update(|groups| {
                    for g in &req.groups {
                        groups.remove(g);
                    }
                });
                ctx.respond(conn, id, Ok(()), Bytes::new());
                Ok(())
            }
            MCAST_JOINED => {
                let req = McastJoined::decode(&body).map_err(|_| AisError::InvalidParam)?;
                Self::mcast(ctx, conn, id, &joined.exec_groups, &req.msg, req.guarantee)
            }
            MCAST_GROUPS => {
                let req = McastGroups::decode(&body).map_err(|_| AisError::InvalidParam)?;
                let exec_groups = encode_exec_groups(req.groups.iter());
                Self::mcast(ctx, conn, id, &exec_groups, &req.msg, req.guarantee)
            }
            MEMBERSHIP_GET => {
                let m = Membership {
                    local: ctx.local().get(),
                    members: self
                        .last
                        .as_ref()
                        .map(|c| c.members.clone())
                        .unwrap_or_default(),
                };
                ctx.respond(conn, id, Ok(()), m.encode());
                Ok(())
            }
            _ => Err(AisError::NotSupported),
        }
    }

    fn exec_deliver(&mut self, ctx: &mut Ctx<'_>, from: NodeId, id: u16, body: Bytes) {
        if id != EXEC_MCAST {
            return;
        }
        let Some((groups, msg)) = decode_exec(&body) else {
            return;
        };
        self.delivered += 1;
        let head = deliver_head(from.get(), msg.len());
        let receivers = self
            .conns
            .iter()
            .filter(|(_, joined)| addressed_to(&joined.groups, groups))
            .map(|(&conn, _)| conn);
        // One frame for every receiver on this node, the message copied in
        // below DELIVER_UNCOPIED_FROM_BYTES and sliced above it.
        match ctx.encode_callback(CB_DELIVER, &head, &msg, DELIVER_UNCOPIED_FROM_BYTES) {
            Ok(frame) => to_each(receivers, frame, |conn, frame| ctx.send_frame(conn, frame)),
            // Above a frame's maximum: the node reports it, per client.
            Err(_) => to_each(receivers, msg, |conn, msg| {
                ctx.callback_with_tail(conn, CB_DELIVER, Bytes::copy_from_slice(&head), msg);
            }),
        }
    }

    fn confchg(&mut self, ctx: &mut Ctx<'_>, change: &ConfigChange) {
        let c = ConfChg {
            members: ids(&change.members),
            left: ids(&change.left),
            joined: ids(&change.joined),
            ring: ConfRing {
                seq: change.ring_id.seq,
                rep: change.ring_id.rep.get(),
                transitional: change.kind == ConfigKind::Transitional,
            },
        };
        let body = c.encode();
        for &conn in self.conns.keys() {
            ctx.callback(conn, CB_CONFCHG, body.clone());
        }
        self.last = Some(c);
    }

    fn dump(&self) -> String {
        format!(
            "{} connections, {} delivered",
            self.conns.len(),
            self.delivered
        )
    }
}
