//! A service table (CLM, EVS, CKPT) of node 1 in a ring with node 2,
//! where the fuzz input plays node 2: whatever it multicasts reaches the
//! engines as a delivery, exactly as Totem would hand it over. Node 1's own
//! multicasts are queued and delivered back when the input says so.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use proto::clm::AddressFamily;
use proto::ServiceId;
use services::barrier::{BarrierMsg, SYNC_SERVICE};
use services::clm::LocalNode;
use services::{ConnId, ExecHeader, RingTx, ServiceTable};
use totem::{ConfigChange, ConfigKind, Delivery, Guarantee, Instant, McastError, NodeId, RingId};

/// Most own multicasts queued before `QueueFull`, like Totem's bounded
/// send queue.
const MAX_QUEUED: usize = 256;

#[derive(Debug, Default)]
struct Queue(VecDeque<(Bytes, Guarantee)>);

impl RingTx for Queue {
    fn mcast(&mut self, payload: Bytes, guarantee: Guarantee) -> Result<(), McastError> {
        if self.0.len() >= MAX_QUEUED {
            return Err(McastError::QueueFull);
        }
        self.0.push_back((payload, guarantee));
        Ok(())
    }
}

/// The table, its queue of own multicasts and the simulated clock.
#[derive(Debug)]
pub struct TableHarness {
    /// The table under test.
    pub table: ServiceTable,
    queue: Queue,
    now: Instant,
    ring: RingId,
    members: Vec<NodeId>,
}

/// Node 1, this table's node.
pub fn local() -> NodeId {
    NodeId::new(1).expect("1 is a node id")
}

/// Node 2, the peer the input plays.
pub fn peer() -> NodeId {
    NodeId::new(2).expect("2 is a node id")
}

impl TableHarness {
    /// A table that has just seen the regular configuration {1, 2}.
    pub fn new() -> TableHarness {
        let local_node = LocalNode {
            address: "127.0.0.1".into(),
            family: AddressFamily::Inet,
            name: "one".into(),
            boot_timestamp_ns: 1_700_000_000_000_000_000,
        };
        let table = ServiceTable::new(local(), services::standard_engines(local_node, &[]))
            .expect("standard engines form a table");
        let mut h = TableHarness {
            table,
            queue: Queue::default(),
            now: Instant::ZERO,
            ring: RingId {
                seq: 0,
                rep: local(),
            },
            members: vec![local()],
        };
        h.confchg(4, &[local(), peer()]);
        h
    }

    /// A transitional then a regular configuration of `members` with ring
    /// seq `seq` (above the last one, as Totem guarantees).
    pub fn confchg(&mut self, seq: u64, members: &[NodeId]) {
        let ring = RingId {
            seq: self.ring.seq + seq.max(1),
            rep: members[0],
        };
        let old = std::mem::replace(&mut self.members, members.to_vec());
        let kept: Vec<NodeId> = old
            .iter()
            .copied()
            .filter(|m| members.contains(m))
            .collect();
        let trans = ConfigChange {
            kind: ConfigKind::Transitional,
            ring_id: ring,
            members: kept.clone(),
            left: old.iter().copied().filter(|m| !kept.contains(m)).collect(),
            joined: Vec::new(),
        };
        let regular = ConfigChange {
            kind: ConfigKind::Regular,
            ring_id: ring,
            members: members.to_vec(),
            left: Vec::new(),
            joined: members
                .iter()
                .copied()
                .filter(|m| !old.contains(m))
                .collect(),
        };
        self.ring = ring;
        // Messages still queued belong to the old ring: Totem would have
        // delivered or dropped them before the change.
        self.queue.0.clear();
        self.table.confchg(self.now, &mut self.queue, &trans);
        self.table.confchg(self.now, &mut self.queue, &regular);
        self.drain();
    }

    /// The ring the table is in.
    pub fn ring(&self) -> RingId {
        self.ring
    }

    /// Delivers `payload` as a multicast from `origin`.
    pub fn deliver(&mut self, origin: NodeId, payload: Bytes) {
        let d = Delivery {
            ring_id: self.ring,
            origin,
            guarantee: Guarantee::Agreed,
            payload,
        };
        self.table.deliver(self.now, &mut self.queue, &d);
        self.table.pump(self.now, &mut self.queue);
        self.drain();
    }

    /// The peer's barrier of `step` for the current ring.
    pub fn peer_barrier(&mut self, step: u16) {
        let body = BarrierMsg {
            ring_id: self.ring,
            step,
        }
        .encode();
        let payload = ExecHeader {
            service: SYNC_SERVICE,
            id: 0,
        }
        .encode_with(&body);
        self.deliver(peer(), payload);
    }

    /// Delivers up to `max` of node 1's own queued multicasts, in order.
    pub fn flush_own(&mut self, max: usize) {
        for _ in 0..max {
            let Some((payload, _)) = self.queue.0.pop_front() else {
                return;
            };
            self.deliver(local(), payload);
        }
    }

    /// A client of `service` connected.
    pub fn lib_init(&mut self, service: ServiceId, conn: ConnId) {
        self.table
            .lib_init(self.now, &mut self.queue, service, conn);
        self.drain();
    }

    /// A client of `service` went away.
    pub fn lib_exit(&mut self, service: ServiceId, conn: ConnId) {
        self.table
            .lib_exit(self.now, &mut self.queue, service, conn);
        self.drain();
    }

    /// A request from a client.
    pub fn lib_request(&mut self, service: ServiceId, conn: ConnId, id: u16, body: Bytes) {
        self.table
            .lib_request(self.now, &mut self.queue, service, conn, id, body);
        self.table.pump(self.now, &mut self.queue);
        self.drain();
    }

    /// Runs the clock forward, firing engine timers.
    pub fn advance(&mut self, by: Duration) {
        self.now = self.now + by;
        if self.table.poll_timeout().is_some_and(|t| t <= self.now) {
            self.table.handle_timeout(self.now, &mut self.queue);
        }
        self.table.pump(self.now, &mut self.queue);
        self.drain();
    }

    /// Every output frame must be encodable or, for a response, answerable
    /// with TOO_BIG: the node does exactly that, so here it is only taken.
    fn drain(&mut self) {
        let _ = self.table.take_outputs();
        while self.table.poll_event().is_some() {}
    }
}

impl Default for TableHarness {
    fn default() -> Self {
        TableHarness::new()
    }
}
