//! The simulator with the CKPT service: K [`node::Node`]s running the
//! standard engines (CLM, EVS, CKPT) on the simulated [`Network`], one
//! checkpoint client per node writing all the time, under crashes,
//! restarts, partitions and loss.
//!
//! Each client behaves like a program linked with the library: one request
//! at a time, waiting for its response. It opens (creating if needed) a
//! few shared checkpoints — one per write mode (`WR_ALL_REPLICAS`,
//! `WR_ACTIVE_REPLICA`, `WR_ACTIVE_REPLICA_WEAK`), the last one with a
//! short retention — and then creates, writes, overwrites, reads, deletes
//! and closes sections at random, some of them with expiration times a
//! few seconds ahead. A crashed node's client is gone; a restarted node
//! gets a new one.
//!
//! Checked per run, after the calm period (every fault healed, every node
//! running, the workload stopped a while before):
//! - *convergence*: every node is in one ring with every node, its sync
//!   completed;
//! - *identical replicas*: the CKPT digest (CRC-32 of the canonical
//!   encoding of the whole store: every checkpoint, section, byte and open
//!   count) is the same on every node;
//! - *progress*: the workload got writes acknowledged.
//!
//! Like the other simulators one seed replays exactly: one clock, ordered
//! maps only, all randomness from the seed.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use node::{Node, NodeConfig, NodeEvent};
use proto::ckpt::{self as ck, CreationAttributes};
use proto::{AisError, Frame, FrameKind, ServiceId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use services::clm::LocalNode;
use services::{ConnId, SyncEvent};
use totem::{Instant, NodeId, RingState, TotemConfig};

use crate::network::Network;
use crate::nodeloop::{Input, Loop};

/// The wall clock at `Instant::ZERO` of every node (the simulator's
/// epoch; nodes share the simulated clock).
const WALL0: i64 = 1_700_000_000_000_000_000;
/// The workload stops this long before the end, so that nothing is in
/// flight (and no expiry is due) when the replicas are compared.
const QUIET_BEFORE_END: Duration = Duration::from_secs(6);
/// Checkpoints the clients share.
const CHECKPOINTS: usize = 3;
/// Section names per checkpoint the clients pick from.
const SECTIONS: u32 = 6;

/// Parameters of one run.
#[derive(Clone, Debug)]
pub struct CkptRunSpec {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Length of the fault phase.
    pub faults: Duration,
    /// Length of the calm phase that follows (all healed, all running).
    pub calm: Duration,
    /// Totem token timeout.
    pub token_timeout: Duration,
    /// Most bytes one write or section create carries.
    pub max_write_bytes: usize,
}

impl Default for CkptRunSpec {
    fn default() -> CkptRunSpec {
        CkptRunSpec {
            nodes: 4,
            faults: Duration::from_secs(12),
            calm: Duration::from_secs(12),
            token_timeout: Duration::from_millis(1000),
            max_write_bytes: 96,
        }
    }
}

/// What a run found.
#[derive(Clone, Debug, Default)]
pub struct CkptRunReport {
    /// Faults injected.
    pub faults: u64,
    /// Requests the clients sent.
    pub requests: u64,
    /// Writes (write, overwrite, section create) answered OK.
    pub writes_ok: u64,
    /// Requests answered TRY_AGAIN (sync running, ring full, a pending
    /// change dropped by a configuration change).
    pub try_again: u64,
    /// Sync rounds completed, all nodes together.
    pub rounds_completed: u64,
    /// The digest every node ended with (when they agree).
    pub digest: String,
    /// The first violation, if any.
    pub violation: Option<String>,
}

/// What a client waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    Hello,
    Open(usize),
    Close(usize),
    Write,
    Other,
}

/// A checkpoint client on one node.
#[derive(Debug)]
struct Client {
    conn: ConnId,
    handles: BTreeMap<usize, u64>,
    waiting: Option<Waiting>,
}

#[derive(Debug)]
struct SimNode {
    id: NodeId,
    node: Option<Node>,
    client: Option<Client>,
    ring_seq_floor: u64,
}

/// Tasks of the run, ordered by time then sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Task {
    Fault,
    Op(usize),
    Calm,
}

fn attributes(k: usize) -> CreationAttributes {
    let (flags, retention) = match k {
        0 => (ck::WR_ALL_REPLICAS, ck::TIME_END),
        1 => (ck::WR_ACTIVE_REPLICA, ck::TIME_END),
        _ => (ck::WR_ACTIVE_REPLICA_WEAK, 2_000_000_000),
    };
    CreationAttributes {
        creation_flags: flags,
        checkpoint_size: 64 << 20,
        retention_duration_ns: retention,
        max_sections: 64,
        max_section_size: 1 << 20,
        max_section_id_size: 8,
    }
}

/// Runs one seed.
pub fn run(spec: &CkptRunSpec, seed: u64) -> CkptRunReport {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let net_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x00c4_7e57_5eed);
    let mut net = Network::new(spec.nodes, net_rng);
    let mut report = CkptRunReport::default();
    let mut nodes: Vec<SimNode> = (0..spec.nodes)
        .map(|i| SimNode {
            id: NodeId::new(i as u32 + 1).expect("nonzero"),
            node: None,
            client: None,
            ring_seq_floor: 0,
        })
        .collect();
    let now = Instant::ZERO;
    for n in nodes.iter_mut() {
        start(n, spec, now);
        drain(n, &mut net, now, &mut report);
    }
    let calm_at = Instant::ZERO + spec.faults;
    let end = calm_at + spec.calm;
    let mut lp = Loop::new(end);
    lp.push(Instant::ZERO + Duration::from_millis(800), Task::Fault);
    lp.push(calm_at, Task::Calm);
    for i in 0..spec.nodes {
        let at = Instant::ZERO + Duration::from_millis(rng.random_range(100..400));
        lp.push(at, Task::Op(i));
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
                    inject_fault(&mut rng, &mut nodes, &mut net, spec, now);
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
                        start(n, spec, now);
                    }
                    drain(n, &mut net, now, &mut report);
                }
            }
            Input::Task(Task::Op(i)) => {
                if now + QUIET_BEFORE_END < end {
                    client_step(&mut nodes[i], &mut rng, spec, now, &mut report);
                    drain(&mut nodes[i], &mut net, now, &mut report);
                }
                let gap = Duration::from_millis(rng.random_range(10..120));
                lp.push(now + gap, Task::Op(i));
            }
            Input::Timer(i) => {
                let n = &mut nodes[i];
                n.node.as_mut().expect("has timer").handle_timeout(now);
                drain(n, &mut net, now, &mut report);
            }
            Input::Packet(d) => {
                let n = &mut nodes[(d.to.get() - 1) as usize];
                if let Some(node) = n.node.as_mut() {
                    node.handle_packet(now, d.payload);
                    drain(n, &mut net, now, &mut report);
                }
            }
        }
    }
    match check(&nodes) {
        Ok(d) => report.digest = d,
        Err(v) => report.violation = Some(v),
    }
    if report.violation.is_none() && report.writes_ok == 0 {
        report.violation = Some("no write was acknowledged".into());
    }
    report
}

fn start(n: &mut SimNode, spec: &CkptRunSpec, now: Instant) {
    let mut cfg = TotemConfig::new(n.id).with_token_timeout(spec.token_timeout);
    cfg.ring_seq_floor = n.ring_seq_floor;
    let local = LocalNode {
        address: format!("127.0.0.{}", n.id),
        family: proto::clm::AddressFamily::Inet,
        name: format!("node{}", n.id),
        boot_timestamp_ns: WALL0,
    };
    let cfg = NodeConfig {
        totem: cfg.validate().expect("valid simulator config"),
        engines: services::standard_engines(local, &[]),
        directory: BTreeMap::new(),
        max_clients: 4,
        observe: false,
    };
    let mut node = Node::new(cfg, now).expect("valid service table");
    let creds = node::Creds {
        pid: 1,
        uid: 0,
        gid: 0,
    };
    let conn = node.client_connected(creds).expect("room for one client");
    node.client_frame(
        now,
        conn,
        proto::setup::Hello {
            service: ServiceId::Ckpt,
            version: proto::setup::Version::B_01_01,
        }
        .to_frame(),
    );
    n.node = Some(node);
    n.client = Some(Client {
        conn,
        handles: BTreeMap::new(),
        waiting: Some(Waiting::Hello),
    });
}

/// The client's next request, if it is not waiting for one.
fn client_step(
    n: &mut SimNode,
    rng: &mut ChaCha8Rng,
    spec: &CkptRunSpec,
    now: Instant,
    report: &mut CkptRunReport,
) {
    let (Some(node), Some(client)) = (n.node.as_mut(), n.client.as_mut()) else {
        return;
    };
    if client.waiting.is_some() {
        return;
    }
    let k = rng.random_range(0..CHECKPOINTS);
    let Some(&handle) = client.handles.get(&k) else {
        let o = ck::Open {
            name: Bytes::from(format!("ckpt{k}")),
            attributes: Some(attributes(k)),
            open_flags: ck::OPEN_READ | ck::OPEN_WRITE | ck::OPEN_CREATE,
        };
        send(node, client, ck::OPEN, o.encode(), Waiting::Open(k), now);
        report.requests += 1;
        return;
    };
    let section = Bytes::from(format!("s{}", rng.random_range(0..SECTIONS)));
    let data = |rng: &mut ChaCha8Rng| -> Bytes {
        let len = rng.random_range(1..spec.max_write_bytes.max(2));
        Bytes::from((0..len).map(|_| rng.random::<u8>()).collect::<Vec<u8>>())
    };
    let (id, body, waiting) = match rng.random_range(0..100) {
        0..=39 => {
            let w = ck::Write {
                handle,
                elements: vec![ck::WriteElement {
                    section_id: section,
                    offset: rng.random_range(0..512 + spec.max_write_bytes as u64),
                    data: data(rng),
                }],
            };
            (ck::WRITE, w.encode(), Waiting::Write)
        }
        40..=59 => {
            let expiring = rng.random_bool(0.3);
            let exp = if expiring {
                let ahead = rng.random_range(500..2500) * 1_000_000;
                WALL0 + i64::try_from(now.as_nanos()).unwrap_or(0) + ahead
            } else {
                ck::TIME_END
            };
            let s = ck::SectionCreate {
                handle,
                section_id: if rng.random_bool(0.2) {
                    Bytes::new()
                } else {
                    section
                },
                expiration_time_ns: exp,
                initial_data: data(rng),
            };
            (ck::SECTION_CREATE, s.encode(), Waiting::Write)
        }
        60..=69 => {
            let o = ck::SectionOverwrite {
                handle,
                section_id: section,
                data: data(rng),
            };
            (ck::SECTION_OVERWRITE, o.encode(), Waiting::Write)
        }
        70..=84 => {
            let r = ck::Read {
                handle,
                elements: vec![ck::ReadElement {
                    section_id: section,
                    offset: 0,
                    size: 1 << 20,
                }],
            };
            (ck::READ, r.encode(), Waiting::Other)
        }
        85..=91 => {
            let d = ck::SectionDelete {
                handle,
                section_id: section,
            };
            (ck::SECTION_DELETE, d.encode(), Waiting::Other)
        }
        92..=95 => {
            let s = ck::HandleRequest { handle };
            let id = if k == 0 {
                ck::STATUS_GET
            } else {
                ck::SYNCHRONIZE
            };
            (id, s.encode(), Waiting::Other)
        }
        _ => (
            ck::CLOSE,
            ck::HandleRequest { handle }.encode(),
            Waiting::Close(k),
        ),
    };
    send(node, client, id, body, waiting, now);
    report.requests += 1;
}

fn send(node: &mut Node, client: &mut Client, id: u16, body: Bytes, w: Waiting, now: Instant) {
    client.waiting = Some(w);
    node.client_frame(now, client.conn, Frame::request(ServiceId::Ckpt, id, body));
}

/// Takes what a node produced: datagrams to the network, frames to its
/// client, events to the report.
fn drain(n: &mut SimNode, net: &mut Network, now: Instant, report: &mut CkptRunReport) {
    let Some(node) = n.node.as_mut() else {
        return;
    };
    while let Some(t) = node.poll_transmit() {
        net.send(now, n.id, t.dest, t.datagram.to_bytes());
    }
    while let Some((conn, frame)) = node.poll_client_output() {
        let bytes = frame.to_bytes();
        let Some(client) = n.client.as_mut().filter(|c| c.conn == conn) else {
            continue;
        };
        let Ok(f) = Frame::decode(&bytes) else {
            report.violation = Some(format!("node {}: undecodable frame", n.id));
            continue;
        };
        if f.kind != FrameKind::Response {
            continue;
        }
        on_response(client, &f, report);
    }
    while let Some(e) = node.poll_event() {
        match e {
            NodeEvent::RingSeqHigh(s) => n.ring_seq_floor = s,
            NodeEvent::Sync(SyncEvent::Completed(_)) => report.rounds_completed += 1,
            _ => {}
        }
    }
}

fn on_response(client: &mut Client, f: &Frame, report: &mut CkptRunReport) {
    let Some(w) = client.waiting.take() else {
        return;
    };
    if f.status == Err(AisError::TryAgain) {
        report.try_again += 1;
    }
    match (w, f.status) {
        (Waiting::Open(k), Ok(())) => {
            if let Ok(r) = ck::OpenReply::decode(&f.body) {
                client.handles.insert(k, r.handle);
            }
        }
        (Waiting::Close(k), Ok(())) => {
            client.handles.remove(&k);
        }
        (Waiting::Write, Ok(())) => report.writes_ok += 1,
        _ => {}
    }
}

fn inject_fault(
    rng: &mut ChaCha8Rng,
    nodes: &mut [SimNode],
    net: &mut Network,
    spec: &CkptRunSpec,
    now: Instant,
) {
    let i = rng.random_range(0..nodes.len());
    match rng.random_range(0..6) {
        0 | 1 => {
            if nodes[i].node.is_some() {
                nodes[i].node = None;
                nodes[i].client = None;
            } else {
                start(&mut nodes[i], spec, now);
            }
        }
        2 => {
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
                start(&mut nodes[i], spec, now);
            }
        }
    }
}

/// The checks of the module docs; the common digest line on success.
fn check(nodes: &[SimNode]) -> Result<String, String> {
    let all: Vec<NodeId> = nodes.iter().map(|n| n.id).collect();
    let mut first: Option<(NodeId, totem::RingId, String)> = None;
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
        let dump = node
            .services()
            .engine(ServiceId::Ckpt)
            .map(|e| e.dump())
            .unwrap_or_default();
        let digest = dump.lines().next().unwrap_or_default().to_string();
        match &first {
            None => first = Some((n.id, t.ring_id(), digest)),
            Some((o, ring, d)) => {
                if *ring != t.ring_id() {
                    return Err(format!("nodes {o} and {} end in different rings", n.id));
                }
                if *d != digest {
                    return Err(format!(
                        "replicas differ: node {o} has {d:?}, node {} has {digest:?}\n{dump}",
                        n.id
                    ));
                }
            }
        }
    }
    Ok(first.map(|f| f.2).unwrap_or_default())
}
