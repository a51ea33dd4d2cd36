//! CLM and EVS engines on a fake ring: N service tables whose multicasts
//! go into one queue that is delivered to every table in order (a perfect
//! total order), with configuration changes injected between deliveries.
//! Totem itself is tested elsewhere; this checks the engines' semantics and
//! their sync through the real barrier.

use std::collections::VecDeque;

use bytes::Bytes;
use proto::clm::{self, AddressFamily, ClusterChange, TrackCallback, TrackReply, TrackStart};
use proto::evs::{self, ConfChg, Deliver, EvsGuarantee, Group, Groups, McastGroups, McastJoined};
use proto::{AisError, Frame, FrameKind, ServiceId};
use services::clm::LocalNode;
use services::{ClientOutput, ConnId, RingTx, ServiceTable};
use totem::{ConfigChange, ConfigKind, Delivery, Guarantee, Instant, McastError, NodeId, RingId};

fn n(i: u32) -> NodeId {
    NodeId::new(i).unwrap()
}

/// The shared queue: what each node multicast, in the one order.
#[derive(Default)]
struct Queue(VecDeque<(NodeId, Bytes, Guarantee)>);

struct Tx<'a> {
    me: NodeId,
    q: &'a mut Queue,
    /// When set, refuse multicasts (a full Totem queue).
    full: bool,
}

impl RingTx for Tx<'_> {
    fn mcast(&mut self, payload: Bytes, g: Guarantee) -> Result<(), McastError> {
        if self.full {
            return Err(McastError::QueueFull);
        }
        self.q.0.push_back((self.me, payload, g));
        Ok(())
    }
}

struct Cluster {
    tables: Vec<(NodeId, ServiceTable)>,
    q: Queue,
    ring: RingId,
    members: Vec<NodeId>,
    out: Vec<(NodeId, ClientOutput)>,
    now: Instant,
}

impl Cluster {
    fn new(ids: &[u32]) -> Cluster {
        let tables = ids
            .iter()
            .map(|&i| {
                let local = LocalNode {
                    address: format!("127.0.0.{i}"),
                    family: AddressFamily::Inet,
                    name: format!("node{i}"),
                    boot_timestamp_ns: 1_000 * i64::from(i),
                };
                let t = ServiceTable::new(n(i), services::standard_engines(local, &[])).unwrap();
                (n(i), t)
            })
            .collect();
        Cluster {
            tables,
            q: Queue::default(),
            ring: RingId { seq: 0, rep: n(1) },
            members: Vec::new(),
            out: Vec::new(),
            now: Instant::ZERO,
        }
    }

    fn idx(&self, id: u32) -> usize {
        self.tables.iter().position(|t| t.0 == n(id)).unwrap()
    }

    /// Installs a configuration of `members` on them (transitional then
    /// regular, as Totem does), then runs the ring until quiet.
    fn configure(&mut self, members: &[u32]) {
        let new: Vec<NodeId> = members.iter().map(|&i| n(i)).collect();
        let old = std::mem::replace(&mut self.members, new.clone());
        self.ring = RingId {
            seq: self.ring.seq + 4,
            rep: new[0],
        };
        let trans: Vec<NodeId> = old.iter().copied().filter(|m| new.contains(m)).collect();
        for (id, t) in &mut self.tables {
            if !new.contains(id) {
                continue;
            }
            let mut tx = Tx {
                me: *id,
                q: &mut self.q,
                full: false,
            };
            let was_member = old.contains(id);
            let prev = if was_member { &old } else { &vec![*id] };
            if was_member {
                let tc = ConfigChange {
                    kind: ConfigKind::Transitional,
                    ring_id: self.ring,
                    members: trans.clone(),
                    left: prev
                        .iter()
                        .copied()
                        .filter(|m| !trans.contains(m))
                        .collect(),
                    joined: vec![],
                };
                t.confchg(self.now, &mut tx, &tc);
            }
            let base = if was_member { &trans } else { &vec![*id] };
            let rc = ConfigChange {
                kind: ConfigKind::Regular,
                ring_id: self.ring,
                members: new.clone(),
                left: vec![],
                joined: new.iter().copied().filter(|m| !base.contains(m)).collect(),
            };
            t.confchg(self.now, &mut tx, &rc);
        }
        self.run();
    }

    /// Delivers the queue to every member until nothing is left.
    fn run(&mut self) {
        while let Some((origin, payload, guarantee)) = self.q.0.pop_front() {
            let d = Delivery {
                ring_id: self.ring,
                origin,
                guarantee,
                payload,
            };
            for (id, t) in &mut self.tables {
                if !self.members.contains(id) {
                    continue;
                }
                let mut tx = Tx {
                    me: *id,
                    q: &mut self.q,
                    full: false,
                };
                t.deliver(self.now, &mut tx, &d);
                t.pump(self.now, &mut tx);
            }
        }
        for (id, t) in &mut self.tables {
            for o in t.take_outputs() {
                self.out.push((*id, o));
            }
        }
    }

    fn request(&mut self, node: u32, service: ServiceId, conn: u64, id: u16, body: Bytes) {
        let i = self.idx(node);
        let (me, t) = &mut self.tables[i];
        let mut tx = Tx {
            me: *me,
            q: &mut self.q,
            full: false,
        };
        t.lib_request(self.now, &mut tx, service, ConnId(conn), id, body);
        self.run();
    }

    fn open(&mut self, node: u32, service: ServiceId, conn: u64) {
        let i = self.idx(node);
        let (me, t) = &mut self.tables[i];
        let mut tx = Tx {
            me: *me,
            q: &mut self.q,
            full: false,
        };
        t.lib_init(self.now, &mut tx, service, ConnId(conn));
        self.run();
    }

    /// Takes the outputs for (node, conn).
    fn take(&mut self, node: u32, conn: u64) -> Vec<ClientOutput> {
        let (mine, rest) = std::mem::take(&mut self.out)
            .into_iter()
            .partition(|(id, o)| *id == n(node) && o.conn() == ConnId(conn));
        self.out = rest;
        mine.into_iter().map(|(_, o)| o).collect()
    }
}

fn response(o: &ClientOutput) -> (u16, Result<(), AisError>, Bytes) {
    match o {
        ClientOutput::Response {
            id, result, body, ..
        } => (*id, *result, body.clone()),
        other => panic!("expected a response, got {other:?}"),
    }
}

/// A callback's id and whole body (its body, then its tail; or the body
/// of the frame an engine encoded).
fn callback(o: &ClientOutput) -> (u16, Bytes) {
    match o {
        ClientOutput::Callback { id, body, tail, .. } => {
            (*id, [&body[..], &tail[..]].concat().into())
        }
        ClientOutput::Frame { frame, .. } => {
            let [head, tail] = frame.pieces();
            let f = Frame::decode(&[&head[..], &tail[..]].concat()).unwrap();
            assert_eq!(f.kind, FrameKind::Callback);
            (f.id, f.body)
        }
        other => panic!("expected a callback, got {other:?}"),
    }
}

/// Whether an output is a callback, however it was encoded.
fn is_callback(o: &ClientOutput) -> bool {
    matches!(
        o,
        ClientOutput::Callback { .. } | ClientOutput::Frame { .. }
    )
}

#[test]
fn clm_tracks_joins_and_leaves_with_the_same_views_everywhere() {
    let mut c = Cluster::new(&[1, 2, 3]);
    c.configure(&[1, 2]);
    assert!(c.tables.iter().take(2).all(|t| t.1.synced()));

    // Node 1 tracks with CURRENT | CHANGES, answer in the response.
    c.open(1, ServiceId::Clm, 10);
    let ts = TrackStart {
        flags: clm::TRACK_CURRENT | clm::TRACK_CHANGES,
        current_as_callback: false,
    };
    c.request(1, ServiceId::Clm, 10, clm::TRACK_START, ts.encode());
    let out = c.take(1, 10);
    let (_, res, body) = response(&out[0]);
    assert_eq!(res, Ok(()));
    let cur = TrackReply::decode(&body).unwrap();
    let ids: Vec<u32> = cur.items.iter().map(|i| i.node.node_id).collect();
    assert_eq!(ids, vec![1, 2]);
    assert_eq!(cur.items[1].node.address, "127.0.0.2");
    assert_eq!(cur.items[1].node.name, "node2");
    assert!(cur
        .items
        .iter()
        .all(|i| i.change == ClusterChange::NoChange));

    // Node 2 tracks CHANGES_ONLY.
    c.open(2, ServiceId::Clm, 20);
    let ts = TrackStart {
        flags: clm::TRACK_CHANGES_ONLY,
        current_as_callback: false,
    };
    c.request(2, ServiceId::Clm, 20, clm::TRACK_START, ts.encode());
    assert_eq!(response(&c.take(2, 20)[0]).1, Ok(()));

    // Node 3 joins: one callback each, the same view on both.
    c.configure(&[1, 2, 3]);
    let cb1 = TrackCallback::decode(&callback(&c.take(1, 10)[0]).1).unwrap();
    let cb2 = TrackCallback::decode(&callback(&c.take(2, 20)[0]).1).unwrap();
    assert_eq!(cb1.view, cb2.view);
    assert_eq!(cb1.members, 3);
    let full: Vec<(u32, ClusterChange)> = cb1
        .items
        .iter()
        .map(|i| (i.node.node_id, i.change))
        .collect();
    assert_eq!(
        full,
        vec![
            (1, ClusterChange::NoChange),
            (2, ClusterChange::NoChange),
            (3, ClusterChange::Joined)
        ]
    );
    let only: Vec<(u32, ClusterChange)> = cb2
        .items
        .iter()
        .map(|i| (i.node.node_id, i.change))
        .collect();
    assert_eq!(only, vec![(3, ClusterChange::Joined)]);
    assert_eq!(
        cb2.items[0].node.name, "node3",
        "the joiner's record came in sync"
    );

    // Node 2 leaves.
    c.configure(&[1, 3]);
    let cb1 = TrackCallback::decode(&callback(&c.take(1, 10)[0]).1).unwrap();
    let left: Vec<_> = cb1
        .items
        .iter()
        .filter(|i| i.change == ClusterChange::Left)
        .collect();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].node.node_id, 2);
    assert!(!left[0].node.member);
    assert_eq!(cb1.members, 2);
}

#[test]
fn clm_node_get_flags_and_track_stop() {
    let mut c = Cluster::new(&[1, 2]);
    c.configure(&[1, 2]);
    c.open(2, ServiceId::Clm, 1);
    let get = |node_id| clm::NodeGet { node_id }.encode();
    c.request(2, ServiceId::Clm, 1, clm::NODE_GET, get(clm::LOCAL_NODE_ID));
    let (_, r, body) = response(&c.take(2, 1)[0]);
    assert_eq!(r, Ok(()));
    let me = clm::ClusterNode::decode(&body).unwrap();
    assert_eq!(
        (me.node_id, me.member, me.boot_timestamp_ns),
        (2, true, 2000)
    );
    c.request(2, ServiceId::Clm, 1, clm::NODE_GET, get(77));
    assert_eq!(response(&c.take(2, 1)[0]).1, Err(AisError::NotExist));

    // Async: accepted now, answered by callback.
    let ga = clm::NodeGetAsync {
        invocation: 60,
        node_id: 1,
    };
    c.request(2, ServiceId::Clm, 1, clm::NODE_GET_ASYNC, ga.encode());
    let out = c.take(2, 1);
    assert_eq!(response(&out[0]).1, Ok(()));
    let cb = clm::NodeGetCallback::decode(&callback(&out[1]).1).unwrap();
    assert_eq!((cb.invocation, cb.status), (60, Ok(())));
    assert_eq!(cb.node.unwrap().address, "127.0.0.1");

    // Flags: CHANGES with CHANGES_ONLY, unknown bits, none.
    for flags in [clm::TRACK_CHANGES | clm::TRACK_CHANGES_ONLY, 0x10, 0] {
        let ts = TrackStart {
            flags,
            current_as_callback: false,
        };
        c.request(2, ServiceId::Clm, 1, clm::TRACK_START, ts.encode());
        assert_eq!(response(&c.take(2, 1)[0]).1, Err(AisError::BadFlags));
    }
    // Stop without tracking.
    c.request(2, ServiceId::Clm, 1, clm::TRACK_STOP, Bytes::new());
    assert_eq!(response(&c.take(2, 1)[0]).1, Err(AisError::NotExist));
    // CURRENT as a callback.
    let ts = TrackStart {
        flags: clm::TRACK_CURRENT,
        current_as_callback: true,
    };
    c.request(2, ServiceId::Clm, 1, clm::TRACK_START, ts.encode());
    let out = c.take(2, 1);
    assert_eq!(response(&out[0]).1, Ok(()));
    let cb = TrackCallback::decode(&callback(&out[1]).1).unwrap();
    assert_eq!(cb.items.len(), 2);
}

/// A large delivered message goes to every client as a slice of what the
/// ring delivered, not copied into each callback; a small one is copied.
#[test]
fn evs_hands_large_messages_to_clients_uncopied() {
    let mut c = Cluster::new(&[1, 2]);
    c.configure(&[1, 2]);
    c.open(1, ServiceId::Evs, 1);
    c.open(1, ServiceId::Evs, 2);
    c.open(2, ServiceId::Evs, 1);
    let g = Group::named("big");
    for (node, conn) in [(1, 1), (1, 2), (2, 1)] {
        c.request(
            node,
            ServiceId::Evs,
            conn,
            evs::JOIN,
            Groups { groups: vec![g] }.encode(),
        );
    }
    for (node, conn) in [(1, 1), (1, 2), (2, 1)] {
        c.take(node, conn);
    }
    let big = Bytes::from((0..64_000u32).map(|i| i as u8).collect::<Vec<_>>());
    let small = Bytes::from(vec![9u8; services::evs::DELIVER_UNCOPIED_FROM_BYTES - 1]);
    for msg in [&big, &small] {
        let m = McastJoined {
            guarantee: EvsGuarantee::Agreed,
            msg: msg.clone(),
        };
        c.request(2, ServiceId::Evs, 1, evs::MCAST_JOINED, m.encode());
    }
    let mut big_tails = Vec::new();
    for (node, conn) in [(1, 1), (1, 2), (2, 1)] {
        let outs: Vec<ClientOutput> = c.take(node, conn).into_iter().filter(is_callback).collect();
        let [big_cb, small_cb] = &outs[..] else {
            panic!("two deliveries expected, {} came", outs.len());
        };
        let d = Deliver::decode(&callback(big_cb).1).unwrap();
        assert!(d.node_id == 2 && d.msg == big, "the big message, whole");
        let ClientOutput::Frame { frame, .. } = big_cb else {
            panic!("a delivery is encoded once per node")
        };
        let [_, tail] = frame.pieces();
        assert!(tail == &big, "the message is the tail");
        big_tails.push(tail.as_ptr());
        let d = Deliver::decode(&callback(small_cb).1).unwrap();
        assert!(d.node_id == 2 && d.msg == small, "the small message, whole");
        assert!(
            matches!(small_cb, ClientOutput::Frame { frame, .. } if frame.pieces()[1].is_empty()),
            "copied into one piece"
        );
    }
    // The same delivered payload reached both nodes here: one buffer
    // behind every client's callback, on both nodes.
    assert!(
        big_tails.iter().all(|&p| p == big_tails[0]),
        "copied: {big_tails:?}"
    );
}

#[test]
fn evs_delivers_group_messages_in_one_order_to_joined_connections_only() {
    let mut c = Cluster::new(&[1, 2, 3]);
    c.configure(&[1, 2, 3]);
    // A new connection gets the last configuration at once.
    c.open(1, ServiceId::Evs, 1);
    let first = c.take(1, 1);
    let cc = ConfChg::decode(&callback(&first[0]).1).unwrap();
    assert_eq!(cc.members, vec![1, 2, 3]);
    c.open(2, ServiceId::Evs, 1);
    c.open(3, ServiceId::Evs, 1);
    c.take(2, 1);
    c.take(3, 1);

    let a = Group::named("a");
    let b = Group::named("b");
    let join = |g: Vec<Group>| Groups { groups: g }.encode();
    c.request(1, ServiceId::Evs, 1, evs::JOIN, join(vec![a]));
    c.request(2, ServiceId::Evs, 1, evs::JOIN, join(vec![a, b]));
    c.request(3, ServiceId::Evs, 1, evs::JOIN, join(vec![b]));
    for node in 1..=3 {
        assert_eq!(response(&c.take(node, 1)[0]).1, Ok(()));
    }
    // Node 1 to its groups (a), node 3 to group a without joining it.
    let m = McastJoined {
        guarantee: EvsGuarantee::Agreed,
        msg: Bytes::from_static(b"one"),
    };
    c.request(1, ServiceId::Evs, 1, evs::MCAST_JOINED, m.encode());
    let m = McastGroups {
        guarantee: EvsGuarantee::Safe,
        groups: vec![a, b],
        msg: Bytes::from_static(b"two"),
    };
    c.request(3, ServiceId::Evs, 1, evs::MCAST_GROUPS, m.encode());

    let delivered = |outs: Vec<ClientOutput>| -> Vec<(u32, Bytes)> {
        outs.iter()
            .filter_map(|o| match o {
                o if is_callback(o) && callback(o).0 == evs::CB_DELIVER => {
                    let d = Deliver::decode(&callback(o).1).unwrap();
                    Some((d.node_id, d.msg))
                }
                _ => None,
            })
            .collect()
    };
    let d1 = delivered(c.take(1, 1));
    let d2 = delivered(c.take(2, 1));
    let d3 = delivered(c.take(3, 1));
    assert_eq!(
        d1,
        vec![
            (1, Bytes::from_static(b"one")),
            (3, Bytes::from_static(b"two"))
        ]
    );
    assert_eq!(d2, d1, "same messages, same order");
    assert_eq!(
        d3,
        vec![(3, Bytes::from_static(b"two"))],
        "once, though in both groups"
    );

    // Leave a group not joined; membership.
    c.request(3, ServiceId::Evs, 1, evs::LEAVE, join(vec![a]));
    assert_eq!(response(&c.take(3, 1)[0]).1, Err(AisError::NotExist));
    c.request(3, ServiceId::Evs, 1, evs::MEMBERSHIP_GET, Bytes::new());
    let (_, r, body) = response(&c.take(3, 1)[0]);
    assert_eq!(r, Ok(()));
    let m = evs::Membership::decode(&body).unwrap();
    assert_eq!((m.local, m.members), (3, vec![1, 2, 3]));

    // After leaving b, node 2's joined groups are a alone: its next
    // message reaches a's members (1 and 2), not b's (3).
    c.request(2, ServiceId::Evs, 1, evs::LEAVE, join(vec![b]));
    assert_eq!(response(&c.take(2, 1)[0]).1, Ok(()));
    let m = McastJoined {
        guarantee: EvsGuarantee::Agreed,
        msg: Bytes::from_static(b"three"),
    };
    c.request(2, ServiceId::Evs, 1, evs::MCAST_JOINED, m.encode());
    let three = vec![(2, Bytes::from_static(b"three"))];
    assert_eq!(delivered(c.take(1, 1)), three);
    assert_eq!(delivered(c.take(2, 1)), three);
    assert_eq!(delivered(c.take(3, 1)), vec![], "node 3 is in b only");

    // A configuration change reaches every connection, both kinds.
    c.configure(&[1, 2]);
    let changes: Vec<ConfChg> = c
        .take(1, 1)
        .iter()
        .map(|o| ConfChg::decode(&callback(o).1).unwrap())
        .collect();
    assert_eq!(changes.len(), 2, "transitional then regular");
    assert_eq!(changes[0].left, vec![3]);
    assert_eq!(changes[1].members, vec![1, 2]);
}

#[test]
fn evs_mcast_waits_for_sync_and_reports_a_full_ring() {
    let mut c = Cluster::new(&[1]);
    c.open(1, ServiceId::Evs, 1);
    let m = McastJoined {
        guarantee: EvsGuarantee::Agreed,
        msg: Bytes::from_static(b"x"),
    };
    // No configuration yet: not synced.
    c.request(1, ServiceId::Evs, 1, evs::MCAST_JOINED, m.encode());
    assert_eq!(response(&c.take(1, 1)[0]).1, Err(AisError::TryAgain));
    // Joining needs no sync.
    c.request(
        1,
        ServiceId::Evs,
        1,
        evs::JOIN,
        Groups {
            groups: vec![Group::named("g")],
        }
        .encode(),
    );
    assert_eq!(response(&c.take(1, 1)[0]).1, Ok(()));
    c.configure(&[1]);
    c.take(1, 1);
    // The ring's queue is full: TRY_AGAIN, nothing sent.
    let (me, t) = &mut c.tables[0];
    let mut tx = Tx {
        me: *me,
        q: &mut c.q,
        full: true,
    };
    t.lib_request(
        c.now,
        &mut tx,
        ServiceId::Evs,
        ConnId(1),
        evs::MCAST_JOINED,
        m.encode(),
    );
    let out = t.take_outputs();
    assert_eq!(response(&out[0]).1, Err(AisError::TryAgain));
    assert!(c.q.0.is_empty());
}
