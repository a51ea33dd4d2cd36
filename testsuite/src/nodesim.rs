//! The simulator with services: K [`node::Node`]s (Totem + service table +
//! barrier sync) on the simulated [`Network`], under crashes, restarts,
//! partitions and loss, checking that the barrier sync gives every member
//! of a configuration the same synchronized state.
//!
//! Each node runs two [`SyncProbe`] engines (registered under the CLM and
//! CKPT ids: the ids only name them). A probe holds a replicated set of
//! items: one item per node incarnation (added at start) plus the items
//! the application multicasts in normal operation (applied at delivery,
//! by every member, in total order). After every regular configuration
//! change the barrier runs the probes' sync: each member multicasts its
//! whole set; at activation every member replaces its set with the union
//! of what the members sent. That is how partitions that diverged are
//! merged, as CKPT's sync merges replicas.
//!
//! Checked per run:
//! - *agreement*: every node that activated a probe for a configuration
//!   activated the same set, which contains a contribution from every
//!   member of the configuration;
//! - *order*: on each node, for each configuration, the first probe
//!   activates before the second is initialised; the second is never
//!   initialised in a configuration where the first was not activated;
//! - *convergence*: after the calm period every node is in one ring with
//!   every node, its sync completed, and every probe holds the same set on
//!   every node;
//! - *gating*: the workload sends its items as client requests at any
//!   time; a probe never sees one while its node is unsynced (the table
//!   answers those TRY_AGAIN).
//!
//! Like the Totem simulator, one seed replays exactly: one clock, ordered
//! maps only, all randomness from the seed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use node::{Node, NodeConfig, NodeEvent};
use proto::{AisError, ServiceId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use services::{ConnId, Ctx, Engine, SyncEvent, SyncStep};
use totem::{Guarantee, Instant, NodeId, RingId, RingState, TotemConfig};

use crate::network::Network;
use crate::nodeloop::{Input, Loop};

/// Most items a probe's sync message carries (keeps it within one
/// fragmented message).
const MAX_ITEMS: usize = 4096;
/// Executive message ids of a probe.
const MSG_ITEM: u16 = 1;
const MSG_SYNC_SET: u16 = 2;
/// The one client connection of every node (its first, set up at start).
const CLIENT: ConnId = ConnId(1);
/// The workload stops this long before the end of a run.
const QUIET_BEFORE_END: Duration = Duration::from_secs(3);

/// What a probe did, for the checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeEvent {
    /// `sync_init` for a configuration.
    Init { ring: RingId },
    /// `sync_activate` with the resulting set and who contributed.
    Activate {
        ring: RingId,
        members: Vec<NodeId>,
        contributors: BTreeSet<NodeId>,
        set: BTreeSet<u64>,
    },
    /// `sync_abort`.
    Abort { ring: RingId },
    /// A library request reached the engine while its node was unsynced
    /// (the table must have refused it).
    UnsyncedRequest { ring: RingId },
}

/// One log line: node, incarnation, probe index, event.
pub type ProbeRecord = (NodeId, u32, usize, ProbeEvent);

/// The shared log every probe of a run writes to.
pub type ProbeLog = Arc<Mutex<Vec<ProbeRecord>>>;

/// A test engine whose synchronized state can be compared across nodes.
#[derive(Debug)]
pub struct SyncProbe {
    service: ServiceId,
    index: usize,
    node: NodeId,
    incarnation: u32,
    set: BTreeSet<u64>,
    /// Sets received in the running sync step, by sender.
    incoming: BTreeMap<NodeId, BTreeSet<u64>>,
    /// Whether this member's set still has to be sent in this step.
    to_send: bool,
    log: ProbeLog,
}

impl SyncProbe {
    /// A probe under `service` id, `index` in the node's probe order.
    pub fn new(
        service: ServiceId,
        index: usize,
        node: NodeId,
        incarnation: u32,
        log: ProbeLog,
    ) -> SyncProbe {
        SyncProbe {
            service,
            index,
            node,
            incarnation,
            set: BTreeSet::from([item(node, incarnation, 0)]),
            incoming: BTreeMap::new(),
            to_send: false,
            log,
        }
    }

    fn record(&self, e: ProbeEvent) {
        self.log.lock().expect("probe log poisoned").push((
            self.node,
            self.incarnation,
            self.index,
            e,
        ));
    }

    /// The current set.
    pub fn set(&self) -> &BTreeSet<u64> {
        &self.set
    }
}

/// An item: who made it, in which incarnation, its counter.
fn item(node: NodeId, incarnation: u32, counter: u32) -> u64 {
    (u64::from(node.get()) << 40) | (u64::from(incarnation & 0xff) << 32) | u64::from(counter)
}

fn encode_set(set: &BTreeSet<u64>) -> Bytes {
    let mut b = BytesMut::with_capacity(set.len() * 8);
    for &i in set.iter().take(MAX_ITEMS) {
        b.put_u64_le(i);
    }
    b.freeze()
}

fn decode_set(body: &[u8]) -> Option<BTreeSet<u64>> {
    if !body.len().is_multiple_of(8) {
        return None;
    }
    Some(
        body.chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8-byte chunk")))
            .collect(),
    )
}

impl Engine for SyncProbe {
    fn service(&self) -> ServiceId {
        self.service
    }

    fn name(&self) -> &'static str {
        "sync-probe"
    }

    fn lib_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        _conn: ConnId,
        id: u16,
        body: Bytes,
    ) -> Result<(), AisError> {
        if !ctx.ring.synced {
            self.record(ProbeEvent::UnsyncedRequest {
                ring: ctx.ring.ring_id,
            });
        }
        ctx.mcast(id, &body, Guarantee::Agreed)
    }

    fn exec_deliver(&mut self, _ctx: &mut Ctx<'_>, from: NodeId, id: u16, body: Bytes) {
        match id {
            MSG_ITEM => {
                if let Some(s) = decode_set(&body) {
                    self.set.extend(s);
                }
            }
            MSG_SYNC_SET => {
                if let Some(s) = decode_set(&body) {
                    self.incoming.insert(from, s);
                }
            }
            _ => {}
        }
    }

    fn has_sync(&self) -> bool {
        true
    }

    fn sync_init(&mut self, ctx: &mut Ctx<'_>) {
        self.incoming.clear();
        self.to_send = true;
        self.record(ProbeEvent::Init {
            ring: ctx.ring.ring_id,
        });
    }

    fn sync_process(&mut self, ctx: &mut Ctx<'_>) -> SyncStep {
        if self.to_send {
            match ctx.mcast(MSG_SYNC_SET, &encode_set(&self.set), Guarantee::Agreed) {
                Ok(()) => self.to_send = false,
                Err(_) => return SyncStep::Again,
            }
        }
        SyncStep::Done
    }

    fn sync_activate(&mut self, ctx: &mut Ctx<'_>) {
        let mut union = BTreeSet::new();
        for s in self.incoming.values() {
            union.extend(s.iter().copied());
        }
        self.set = union;
        let contributors = self.incoming.keys().copied().collect();
        self.incoming.clear();
        self.record(ProbeEvent::Activate {
            ring: ctx.ring.ring_id,
            members: ctx.ring.members.clone(),
            contributors,
            set: self.set.clone(),
        });
    }

    fn sync_abort(&mut self, ctx: &mut Ctx<'_>) {
        self.incoming.clear();
        self.to_send = false;
        self.record(ProbeEvent::Abort {
            ring: ctx.ring.ring_id,
        });
    }

    /// Count and an FNV-1a digest of the items: equal dumps mean equal
    /// sets (up to a 64-bit hash collision).
    fn dump(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for i in &self.set {
            for b in i.to_le_bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{} items, digest {h:016x}", self.set.len())
    }
}

/// Parameters of one run.
#[derive(Clone, Debug)]
pub struct SyncRunSpec {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Length of the fault phase.
    pub faults: Duration,
    /// Length of the calm phase that follows (all healed, all running).
    pub calm: Duration,
    /// Totem token timeout.
    pub token_timeout: Duration,
    /// Totem `accelerated_window` (0: the standard protocol).
    pub accelerated_window: u32,
}

impl Default for SyncRunSpec {
    fn default() -> SyncRunSpec {
        SyncRunSpec {
            nodes: 4,
            faults: Duration::from_secs(12),
            calm: Duration::from_secs(10),
            token_timeout: Duration::from_millis(1000),
            accelerated_window: 0,
        }
    }
}

/// What a run found.
#[derive(Clone, Debug, Default)]
pub struct SyncRunReport {
    /// Sync rounds completed, all nodes together.
    pub rounds_completed: u64,
    /// Sync rounds aborted by a newer configuration.
    pub rounds_aborted: u64,
    /// Faults injected.
    pub faults: u64,
    /// Items multicast by the workload.
    pub items: u64,
    /// The first violation, if any.
    pub violation: Option<String>,
}

#[derive(Debug)]
struct SimNode {
    id: NodeId,
    node: Option<Node>,
    incarnation: u32,
    counter: u32,
    ring_seq_floor: u64,
    /// Datagrams given to the node with `Node::receive_packet` whose
    /// deliveries wait for `Node::deliver_received` (a batch, as the
    /// daemon reads them).
    received: bool,
}

/// Tasks of the run, ordered by time then sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Task {
    Fault,
    Item(usize),
    Calm,
    /// The end of a batch of datagrams at this node.
    Deliver(usize),
}

/// Runs one seed.
pub fn run(spec: &SyncRunSpec, seed: u64) -> SyncRunReport {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let net_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0005_eed0_f5e7);
    // Its own stream, so that batching leaves the faults and the workload
    // of a seed as they were.
    let mut batch_rng = ChaCha8Rng::seed_from_u64(seed ^ 0xba7c_4ed0);
    let mut net = Network::new(spec.nodes, net_rng);
    let log: ProbeLog = Arc::new(Mutex::new(Vec::new()));
    let mut report = SyncRunReport::default();
    let mut nodes: Vec<SimNode> = (0..spec.nodes)
        .map(|i| SimNode {
            id: NodeId::new(i as u32 + 1).expect("nonzero"),
            node: None,
            incarnation: 0,
            counter: 0,
            ring_seq_floor: 0,
            received: false,
        })
        .collect();
    let now = Instant::ZERO;
    for n in nodes.iter_mut() {
        start(n, spec, &log, now);
        drain(n, &mut net, now, &mut report);
    }
    let calm_at = Instant::ZERO + spec.faults;
    let end = calm_at + spec.calm;
    let mut lp = Loop::new(end);
    lp.push(Instant::ZERO + Duration::from_millis(500), Task::Fault);
    lp.push(calm_at, Task::Calm);
    for i in 0..spec.nodes {
        let at = Instant::ZERO + Duration::from_millis(rng.random_range(100..400));
        lp.push(at, Task::Item(i));
    }
    loop {
        let timers = nodes
            .iter()
            .map(|n| n.node.as_ref().and_then(Node::poll_timeout));
        let input = match lp.next(timers, &mut net) {
            Ok(Some(i)) => i,
            Ok(None) => break,
            Err(e) => {
                report.violation = Some(e);
                return report;
            }
        };
        let now = lp.now;
        match input {
            Input::Task(Task::Fault) => {
                if now < calm_at {
                    inject_fault(&mut rng, &mut nodes, &mut net, spec, &log, now);
                    report.faults += 1;
                    for n in nodes.iter_mut() {
                        drain(n, &mut net, now, &mut report);
                    }
                    let gap = Duration::from_millis(rng.random_range(300..2500));
                    lp.push(now + gap, Task::Fault);
                }
            }
            Input::Task(Task::Calm) => {
                net.heal_all();
                net.set_loss(0.0);
                for n in nodes.iter_mut() {
                    if n.node.is_none() {
                        start(n, spec, &log, now);
                    }
                    drain(n, &mut net, now, &mut report);
                }
            }
            Input::Task(Task::Deliver(i)) => {
                deliver_received(&mut nodes[i], &mut net, now, &mut report);
            }
            Input::Task(Task::Item(i)) => {
                let n = &mut nodes[i];
                deliver_received(n, &mut net, now, &mut report);
                // The workload stops before the end so that nothing is in
                // flight when the final states are compared.
                if n.node.is_some() && now + QUIET_BEFORE_END < end {
                    n.counter += 1;
                    let it = item(n.id, n.incarnation, n.counter);
                    if send_item(n, now, it) {
                        report.items += 1;
                    }
                    drain(n, &mut net, now, &mut report);
                }
                let gap = Duration::from_millis(rng.random_range(50..600));
                lp.push(now + gap, Task::Item(i));
            }
            Input::Timer(i) => {
                let n = &mut nodes[i];
                deliver_received(n, &mut net, now, &mut report);
                n.node.as_mut().expect("has timer").handle_timeout(now);
                drain(n, &mut net, now, &mut report);
            }
            Input::Packet(d) => {
                let i = (d.to.get() - 1) as usize;
                let n = &mut nodes[i];
                // Half the datagrams go in batches, as the daemon reads
                // them: Totem takes each at once (its datagrams go out),
                // the services get the batch's deliveries when it ends,
                // up to 300 us later or before the node's next other input.
                if batch_rng.random_bool(0.5) {
                    if let Some(node) = n.node.as_mut() {
                        node.receive_packet(now, d.payload);
                        while let Some(t) = node.poll_transmit() {
                            net.send(now, n.id, t.dest, t.datagram.to_bytes());
                        }
                        if !n.received {
                            n.received = true;
                            let end = Duration::from_micros(batch_rng.random_range(0..=300));
                            lp.push(now + end, Task::Deliver(i));
                        }
                    }
                } else {
                    deliver_received(n, &mut net, now, &mut report);
                    if let Some(node) = n.node.as_mut() {
                        node.handle_packet(now, d.payload);
                        drain(n, &mut net, now, &mut report);
                    }
                }
            }
        }
    }
    report.violation = check(&log, &nodes).err();
    report
}

/// Sends an application item through the first probe as a client request
/// (the node refuses it while unsynced). Returns whether it should have
/// been accepted.
fn send_item(n: &mut SimNode, now: Instant, it: u64) -> bool {
    let node = n.node.as_mut().expect("running");
    let synced = node.services().synced();
    let body = encode_set(&BTreeSet::from([it]));
    node.client_frame(
        now,
        CLIENT,
        proto::Frame::request(ServiceId::Clm, MSG_ITEM, body),
    );
    synced
}

fn start(n: &mut SimNode, spec: &SyncRunSpec, log: &ProbeLog, now: Instant) {
    n.received = false;
    n.incarnation += 1;
    n.counter = 0;
    let mut cfg = TotemConfig::new(n.id).with_token_timeout(spec.token_timeout);
    cfg.ring_seq_floor = n.ring_seq_floor;
    cfg.accelerated_window = spec.accelerated_window;
    let cfg = NodeConfig {
        totem: cfg.validate().expect("valid simulator config"),
        engines: vec![
            Box::new(SyncProbe::new(
                ServiceId::Clm,
                0,
                n.id,
                n.incarnation,
                log.clone(),
            )),
            Box::new(SyncProbe::new(
                ServiceId::Ckpt,
                1,
                n.id,
                n.incarnation,
                log.clone(),
            )),
        ],
        directory: BTreeMap::new(),
        max_clients: 4,
        observe: false,
    };
    let mut node = Node::new(cfg, now).expect("valid service table");
    // One client connection, set up for the first probe's service.
    let creds = node::Creds {
        pid: 1,
        uid: 0,
        gid: 0,
    };
    let conn = node.client_connected(creds).expect("room for one client");
    assert_eq!(conn, CLIENT, "the first connection of a node");
    node.client_frame(
        now,
        conn,
        proto::setup::Hello {
            service: ServiceId::Clm,
            version: proto::setup::Version::B_01_01,
        }
        .to_frame(),
    );
    n.node = Some(node);
}

/// Ends `n`'s batch of received datagrams, if it has one.
fn deliver_received(n: &mut SimNode, net: &mut Network, now: Instant, report: &mut SyncRunReport) {
    if !std::mem::take(&mut n.received) {
        return;
    }
    if let Some(node) = n.node.as_mut() {
        node.deliver_received(now);
        drain(n, net, now, report);
    }
}

fn drain(n: &mut SimNode, net: &mut Network, now: Instant, report: &mut SyncRunReport) {
    let Some(node) = n.node.as_mut() else {
        return;
    };
    while let Some(t) = node.poll_transmit() {
        net.send(now, n.id, t.dest, t.datagram.to_bytes());
    }
    while node.poll_client_output().is_some() {}
    while let Some(e) = node.poll_event() {
        match e {
            NodeEvent::RingSeqHigh(s) => n.ring_seq_floor = s,
            NodeEvent::Sync(SyncEvent::Completed(_)) => report.rounds_completed += 1,
            NodeEvent::Sync(SyncEvent::Aborted(_)) => report.rounds_aborted += 1,
            _ => {}
        }
    }
}

fn inject_fault(
    rng: &mut ChaCha8Rng,
    nodes: &mut [SimNode],
    net: &mut Network,
    spec: &SyncRunSpec,
    log: &ProbeLog,
    now: Instant,
) {
    let i = rng.random_range(0..nodes.len());
    match rng.random_range(0..6) {
        0 | 1 => {
            // Crash, or restart a crashed node.
            if nodes[i].node.is_some() {
                nodes[i].node = None;
            } else {
                start(&mut nodes[i], spec, log, now);
            }
        }
        2 => {
            // Split into two random groups.
            let mut a = Vec::new();
            let mut b = Vec::new();
            for n in nodes.iter() {
                if rng.random_bool(0.5) {
                    a.push(n.id);
                } else {
                    b.push(n.id);
                }
            }
            net.partition(&[a, b]);
        }
        3 => net.heal_partition(),
        4 => net.set_loss(if rng.random_bool(0.5) { 0.1 } else { 0.0 }),
        _ => {
            if nodes[i].node.is_none() {
                start(&mut nodes[i], spec, log, now);
            }
        }
    }
}

/// The checks of the module docs.
fn check(log: &ProbeLog, nodes: &[SimNode]) -> Result<(), String> {
    let log = log.lock().expect("probe log poisoned");
    if let Some((node, _, probe, e)) = log
        .iter()
        .find(|r| matches!(r.3, ProbeEvent::UnsyncedRequest { .. }))
    {
        return Err(format!("node {node} probe {probe}: {e:?}"));
    }
    // Agreement.
    let mut by_ring: BTreeMap<(RingId, usize), (NodeId, &BTreeSet<u64>)> = BTreeMap::new();
    for (node, _inc, probe, e) in log.iter() {
        if let ProbeEvent::Activate {
            ring,
            members,
            contributors,
            set,
        } = e
        {
            let expected: BTreeSet<NodeId> = members.iter().copied().collect();
            if contributors != &expected {
                return Err(format!(
                    "node {node} probe {probe} activated ring {ring:?} with contributions from \
                     {contributors:?}, members {expected:?}"
                ));
            }
            match by_ring.get(&(*ring, *probe)) {
                Some((other, s)) if *s != set => {
                    return Err(format!(
                        "probe {probe} in ring {ring:?}: node {node} activated {} items, node \
                         {other} {} items; they differ",
                        set.len(),
                        s.len()
                    ));
                }
                Some(_) => {}
                None => {
                    by_ring.insert((*ring, *probe), (*node, set));
                }
            }
        }
    }
    // Order: per (node, incarnation, ring), probe 1 inits only after probe 0
    // activated.
    let mut activated0: BTreeSet<(NodeId, u32, RingId)> = BTreeSet::new();
    for (node, inc, probe, e) in log.iter() {
        match (probe, e) {
            (0, ProbeEvent::Activate { ring, .. }) => {
                activated0.insert((*node, *inc, *ring));
            }
            (1, ProbeEvent::Init { ring }) if !activated0.contains(&(*node, *inc, *ring)) => {
                return Err(format!(
                    "node {node}: probe 1 initialised in ring {ring:?} before probe 0 activated"
                ));
            }
            _ => {}
        }
    }
    // Convergence.
    let all: Vec<NodeId> = nodes.iter().map(|n| n.id).collect();
    let mut first: Option<(NodeId, RingId, Vec<String>)> = None;
    for n in nodes {
        let node = n.node.as_ref().ok_or("a node is down at the end")?;
        let t = node.totem();
        if t.state() != RingState::Operational || t.members() != all.as_slice() {
            return Err(format!(
                "node {} did not converge: {:?} with {:?}",
                n.id,
                t.state(),
                t.members()
            ));
        }
        if !node.services().synced() {
            return Err(format!("node {} has not finished its sync", n.id));
        }
        let sets: Vec<String> = [ServiceId::Clm, ServiceId::Ckpt]
            .iter()
            .map(|&s| probe_dump(node, s))
            .collect();
        match &first {
            None => first = Some((n.id, t.ring_id(), sets)),
            Some((o, ring, s)) => {
                if *ring != t.ring_id() {
                    return Err(format!("nodes {o} and {} end in different rings", n.id));
                }
                if *s != sets {
                    return Err(format!(
                        "nodes {o} and {} end with different probe state",
                        n.id
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A probe's state as its dump states it (count and digest).
fn probe_dump(node: &Node, service: ServiceId) -> String {
    node.services()
        .engine(service)
        .map(|e| e.dump())
        .unwrap_or_default()
}
