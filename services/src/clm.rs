//! CLM: the SA Forum cluster membership service (`saClm.h`).
//!
//! The membership is the regular configuration; what CLM adds is each
//! node's record (address, name, boot time, initial view). Records travel
//! in the barrier sync, as in openais 0.80: in CLM's sync step every member
//! multicasts its own record (NODEJOIN); at activation every member has
//! every record, replaces its membership with the new configuration's and
//! notifies its trackers once, with the nodes that joined and left since
//! the membership it last notified. Because activation happens at one
//! point of the total order on every member, trackers on all nodes see the
//! same sequence of views.
//!
//! Deviations from openais 0.80, following the spec: an unknown node is
//! `SA_AIS_ERR_NOT_EXIST` (openais answered OK with an unfilled record, or
//! INVALID_PARAM for the async call); `numberOfMembers` in a track callback
//! is the size of the membership (openais passed the entry count).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use proto::clm::{
    AddressFamily, ClusterChange, ClusterNode, NodeGet, NodeGetAsync, NodeGetCallback,
    Notification, TrackCallback, TrackReply, TrackStart, CB_NODE_GET, CB_TRACK, LOCAL_NODE_ID,
    NODE_GET, NODE_GET_ASYNC, TRACK_CHANGES, TRACK_CHANGES_ONLY, TRACK_CURRENT, TRACK_START,
    TRACK_STOP,
};
use proto::{AisError, Decoder, Encoder, ServiceId};
use totem::{ConfigChange, ConfigKind, Guarantee, NodeId, RingId};

use crate::engine::{ConnId, Ctx, Engine, SyncStep};

/// Executive message: a node's record, sent in CLM's sync step.
const EXEC_NODEJOIN: u16 = 0;

/// What the local node says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalNode {
    /// Its address as text ("127.0.0.1").
    pub address: String,
    /// IPv4 or IPv6.
    pub family: AddressFamily,
    /// Its name.
    pub name: String,
    /// When the executive started, ns since the Unix epoch (the daemon
    /// reads the clock once at start; engines never do).
    pub boot_timestamp_ns: i64,
}

/// The CLM engine.
#[derive(Debug)]
pub struct Clm {
    local: LocalNode,
    /// The view at which this node first became a member (set at its first
    /// regular configuration).
    my_initial_view: Option<u64>,
    /// Every record received, by node (kept for nodes that left, so that a
    /// LEFT entry can still describe them).
    records: BTreeMap<NodeId, ClusterNode>,
    /// The membership last notified (the activated view).
    members: BTreeSet<NodeId>,
    view: u64,
    /// The configuration being synchronized.
    pending: Option<(RingId, Vec<NodeId>)>,
    /// Records received in the running sync step.
    incoming: BTreeSet<NodeId>,
    to_send: bool,
    trackers: BTreeMap<ConnId, u8>,
}

/// The view number of a ring: its seq divided by 4, as openais numbered
/// views (ring seqs grow by 4 per ring).
fn view_of(ring: RingId) -> u64 {
    ring.seq / 4
}

impl Clm {
    /// A CLM engine for the local node.
    pub fn new(local: LocalNode) -> Clm {
        Clm {
            local,
            my_initial_view: None,
            records: BTreeMap::new(),
            members: BTreeSet::new(),
            view: 0,
            pending: None,
            incoming: BTreeSet::new(),
            to_send: false,
            trackers: BTreeMap::new(),
        }
    }

    fn my_record(&self, me: NodeId) -> ClusterNode {
        ClusterNode {
            node_id: me.get(),
            family: self.local.family,
            address: self.local.address.clone(),
            name: self.local.name.clone(),
            member: true,
            boot_timestamp_ns: self.local.boot_timestamp_ns,
            initial_view: self.my_initial_view.unwrap_or(0),
        }
    }

    /// The record of `id` as a member (or not) now.
    fn record(&self, id: NodeId) -> ClusterNode {
        let mut r = self.records.get(&id).cloned().unwrap_or(ClusterNode {
            node_id: id.get(),
            family: AddressFamily::Inet,
            address: String::new(),
            name: String::new(),
            member: false,
            boot_timestamp_ns: 0,
            initial_view: 0,
        });
        r.member = self.members.contains(&id);
        r
    }

    fn current(&self) -> Vec<Notification> {
        self.members
            .iter()
            .map(|&id| Notification {
                node: self.record(id),
                change: ClusterChange::NoChange,
            })
            .collect()
    }

    fn lookup(&self, ctx: &Ctx<'_>, node_id: u32) -> Result<ClusterNode, AisError> {
        let id = if node_id == LOCAL_NODE_ID {
            ctx.local()
        } else {
            NodeId::new(node_id).ok_or(AisError::NotExist)?
        };
        if id == ctx.local() && !self.members.contains(&id) {
            // Before the first view the local record is still known.
            let mut r = self.my_record(id);
            r.member = false;
            return Ok(r);
        }
        if self.members.contains(&id) {
            Ok(self.record(id))
        } else {
            Err(AisError::NotExist)
        }
    }

    fn track_start(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        body: &[u8],
    ) -> Result<(), AisError> {
        let t = TrackStart::decode(body).map_err(|_| AisError::InvalidParam)?;
        let known = TRACK_CURRENT | TRACK_CHANGES | TRACK_CHANGES_ONLY;
        let changes = t.flags & (TRACK_CHANGES | TRACK_CHANGES_ONLY);
        if t.flags & !known != 0 || changes == TRACK_CHANGES | TRACK_CHANGES_ONLY || t.flags == 0 {
            return Err(AisError::BadFlags);
        }
        if changes != 0 {
            self.trackers.insert(conn, changes);
        }
        if t.flags & TRACK_CURRENT != 0 {
            let items = self.current();
            if t.current_as_callback {
                ctx.respond(conn, TRACK_START, Ok(()), Bytes::new());
                let cb = TrackCallback {
                    view: self.view,
                    members: items.len() as u32,
                    items,
                    status: Ok(()),
                };
                ctx.callback(conn, CB_TRACK, cb.encode());
            } else {
                let r = TrackReply {
                    view: self.view,
                    items,
                };
                ctx.respond(conn, TRACK_START, Ok(()), r.encode());
            }
        } else {
            ctx.respond(conn, TRACK_START, Ok(()), Bytes::new());
        }
        Ok(())
    }

    /// Activation: the new membership with every record; notify trackers.
    fn activate(&mut self, ctx: &mut Ctx<'_>) {
        let Some((ring, members)) = self.pending.take() else {
            return;
        };
        let new: BTreeSet<NodeId> = members.iter().copied().collect();
        // Every member sends its record before its barrier, so all are
        // here unless a peer misbehaves; its entry then has no address.
        for id in new.difference(&self.incoming) {
            log::warn!("CLM: no record from member {id} in view {}", view_of(ring));
        }
        let joined: Vec<NodeId> = new.difference(&self.members).copied().collect();
        let left: Vec<NodeId> = self.members.difference(&new).copied().collect();
        self.members = new;
        self.view = view_of(ring);
        if joined.is_empty() && left.is_empty() {
            return;
        }
        let changed: Vec<Notification> = joined
            .iter()
            .map(|&id| Notification {
                node: self.record(id),
                change: ClusterChange::Joined,
            })
            .chain(left.iter().map(|&id| Notification {
                node: self.record(id),
                change: ClusterChange::Left,
            }))
            .collect();
        let members = self.members.len() as u32;
        for (&conn, &flags) in &self.trackers {
            let items = if flags & TRACK_CHANGES_ONLY != 0 {
                changed.clone()
            } else {
                let mut all: Vec<Notification> = self
                    .current()
                    .into_iter()
                    .filter(|n| !joined.iter().any(|j| j.get() == n.node.node_id))
                    .collect();
                all.extend(changed.iter().cloned());
                all
            };
            let cb = TrackCallback {
                view: self.view,
                items,
                members,
                status: Ok(()),
            };
            ctx.callback(conn, CB_TRACK, cb.encode());
        }
    }
}

impl Engine for Clm {
    fn service(&self) -> ServiceId {
        ServiceId::Clm
    }

    fn name(&self) -> &'static str {
        "CLM cluster membership B.01.01"
    }

    /// CLM answers from its last activated view, which is consistent even
    /// while a sync runs (openais: NOT_REQUIRED for every CLM request).
    fn request_needs_sync(&self, _id: u16) -> bool {
        false
    }

    fn lib_exit(&mut self, _ctx: &mut Ctx<'_>, conn: ConnId) {
        self.trackers.remove(&conn);
    }

    fn lib_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        id: u16,
        body: Bytes,
    ) -> Result<(), AisError> {
        match id {
            TRACK_START => self.track_start(ctx, conn, &body),
            TRACK_STOP => {
                if self.trackers.remove(&conn).is_none() {
                    return Err(AisError::NotExist);
                }
                ctx.respond(conn, id, Ok(()), Bytes::new());
                Ok(())
            }
            NODE_GET => {
                let r = NodeGet::decode(&body).map_err(|_| AisError::InvalidParam)?;
                let node = self.lookup(ctx, r.node_id)?;
                ctx.respond(conn, id, Ok(()), node.encode());
                Ok(())
            }
            NODE_GET_ASYNC => {
                let r = NodeGetAsync::decode(&body).map_err(|_| AisError::InvalidParam)?;
                ctx.respond(conn, id, Ok(()), Bytes::new());
                let found = self.lookup(ctx, r.node_id);
                let cb = NodeGetCallback {
                    invocation: r.invocation,
                    status: found.as_ref().map(|_| ()).map_err(|&e| e),
                    node: found.ok(),
                };
                ctx.callback(conn, CB_NODE_GET, cb.encode());
                Ok(())
            }
            _ => Err(AisError::NotSupported),
        }
    }

    fn exec_deliver(&mut self, _ctx: &mut Ctx<'_>, from: NodeId, id: u16, body: Bytes) {
        if id != EXEC_NODEJOIN {
            return;
        }
        let mut dec = Decoder::new(&body);
        let Ok(rec) = ClusterNode::decode_from(&mut dec) else {
            return;
        };
        if dec.finish().is_err() || rec.node_id != from.get() {
            return; // a node describes only itself
        }
        self.records.insert(from, rec);
        self.incoming.insert(from);
    }

    fn confchg(&mut self, ctx: &mut Ctx<'_>, change: &ConfigChange) {
        if change.kind == ConfigKind::Regular {
            if self.my_initial_view.is_none() {
                self.my_initial_view = Some(view_of(change.ring_id));
            }
            self.pending = Some((change.ring_id, change.members.clone()));
            let me = ctx.local();
            self.records.insert(me, self.my_record(me));
        }
    }

    fn has_sync(&self) -> bool {
        true
    }

    fn sync_init(&mut self, _ctx: &mut Ctx<'_>) {
        self.incoming.clear();
        self.to_send = true;
    }

    fn sync_process(&mut self, ctx: &mut Ctx<'_>) -> SyncStep {
        if self.to_send {
            let mut enc = Encoder::new();
            self.my_record(ctx.local()).encode_into(&mut enc);
            if ctx
                .mcast(EXEC_NODEJOIN, &enc.finish(), Guarantee::Agreed)
                .is_err()
            {
                return SyncStep::Again;
            }
            self.to_send = false;
        }
        SyncStep::Done
    }

    fn sync_activate(&mut self, ctx: &mut Ctx<'_>) {
        self.activate(ctx);
    }

    fn sync_abort(&mut self, _ctx: &mut Ctx<'_>) {
        self.incoming.clear();
        self.to_send = false;
    }

    fn dump(&self) -> String {
        format!(
            "view {} members {:?} trackers {} records {}",
            self.view,
            self.members,
            self.trackers.len(),
            self.records.len()
        )
    }
}
