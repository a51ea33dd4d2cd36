//! The simulated cluster: K Totem nodes on a [`Network`], a simulated clock,
//! and the event loop that drives them through a [`Scenario`].
//!
//! The loop always jumps to the earliest of: the next scheduled task (a
//! fault, a workload message, a resume, a probe), the earliest timer of a
//! running node, the next datagram arrival. At equal times tasks go first,
//! then timers (lowest node id first), then datagrams (in send order). It
//! hands that one input to the node, then drains the node exactly as the
//! `totem` crate documents: every transmit (onto the network), every event
//! (into the node's [`History`]), then the timer. Nothing else runs; there
//! is no wall clock and no unordered iteration, so a seed replays exactly.
//!
//! Nodes are crashed (state dropped, datagrams to them lost, the persisted
//! `RingSeqHigh` kept as on a disk and passed back as `ring_seq_floor` on
//! restart) and paused (nothing handled, timers held, datagrams queued up to
//! [`PAUSE_QUEUE_MAX`], oldest dropped; on resume it handles the queued
//! datagrams and its overdue timer at the same instant, in an order drawn
//! from the seed).
//!
//! The run stops with a [`Property::Simulation`] violation if simulated
//! time stops advancing ([`MAX_STEPS_AT_ONE_INSTANT`]), the run takes more
//! than [`MAX_STEPS`] steps, or the network overflows (a packet storm).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use totem::{
    ConfigKind, Destination, Event, Guarantee, Instant, McastError, NodeId, RingId, RingState,
    Totem, TotemConfig,
};

use crate::checker::{
    self, Entry, FinalNode, History, LivenessFacts, Members, Property, RunFacts, Violation,
};
use crate::faults::{stream, Action, Scenario};
use crate::network::{NetStats, Network};
use crate::trace;
use crate::trace::Trace;
use crate::workload::{self, MsgId};

/// Datagrams a paused node keeps; older ones are dropped, as a full socket
/// buffer would.
pub const PAUSE_QUEUE_MAX: usize = 1000;
/// Steps at one simulated instant before the run is declared stuck (a timer
/// that is always due, or a packet loop with no delay).
pub const MAX_STEPS_AT_ONE_INSTANT: u64 = 1_000_000;
/// Steps in one run before it is declared a runaway.
pub const MAX_STEPS: u64 = 50_000_000;
/// A refused probe is retried this often.
pub const PROBE_RETRY: Duration = Duration::from_millis(10);
/// Size of a probe message.
pub const PROBE_BYTES: usize = 64;
/// Self-delivery is judged only for rings installed at least this long
/// before the end of the run.
pub const SELF_DELIVERY_MARGIN: Duration = Duration::from_secs(2);

/// What a run counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Inputs handed to nodes plus tasks run.
    pub steps: u64,
    /// Simulated time reached.
    pub sim_end: Instant,
    /// The network's counters.
    pub net: NetStats,
    /// Most datagrams in flight at once.
    pub max_in_flight: usize,
    /// Messages `handle_mcast` accepted.
    pub mcasts_queued: u64,
    /// Messages `handle_mcast` refused (QueueFull).
    pub mcasts_refused: u64,
    /// Deliveries, all nodes together.
    pub deliveries: u64,
    /// Configuration changes, all nodes together.
    pub config_changes: u64,
    /// Datagrams dropped from a paused node's full queue.
    pub pause_dropped: u64,
    /// Convergences retracted because the ring broke before its probes were
    /// delivered (see the liveness check in the simulator).
    pub convergences_retracted: u64,
    /// Regular messages retransmitted on request, all nodes and
    /// incarnations together (`totem::Stats::mcasts_retransmitted`).
    pub mcasts_retransmitted: u64,
    /// New messages sent after the token was passed on (the accelerated
    /// ring; `totem::Stats::mcasts_sent_after_token`), all nodes together.
    pub mcasts_sent_after_token: u64,
    /// Tokens that arrived ahead of messages they cover
    /// (`totem::Stats::tokens_ahead_of_messages`), all nodes together.
    pub tokens_ahead_of_messages: u64,
    /// HoldCancel requests sent (`totem::Stats::hold_cancels_sent`), all
    /// nodes together.
    pub hold_cancels_sent: u64,
    /// Held tokens passed on early, or not held, on request
    /// (`totem::Stats::holds_cancelled`), all nodes together.
    pub holds_cancelled: u64,
}

impl RunStats {
    /// Adds one protocol instance's counters (at its crash or at the end).
    fn add_totem(&mut self, t: &totem::Stats) {
        self.mcasts_retransmitted += t.mcasts_retransmitted;
        self.mcasts_sent_after_token += t.mcasts_sent_after_token;
        self.tokens_ahead_of_messages += t.tokens_ahead_of_messages;
        self.hold_cancels_sent += t.hold_cancels_sent;
        self.holds_cancelled += t.holds_cancelled;
    }
}

/// The outcome of one run.
#[derive(Debug)]
pub struct RunReport {
    /// The first violation, if any.
    pub violation: Option<Violation>,
    /// Counters.
    pub stats: RunStats,
    /// The trace, if it went to a buffer.
    pub trace: Option<Vec<u8>>,
    /// Every node's history.
    pub histories: Vec<History>,
}

/// One simulated machine: a protocol instance when running, and what
/// survives a crash (the disk).
#[derive(Debug)]
struct SimNode {
    id: NodeId,
    totem: Option<Totem>,
    /// Starts so far (the next incarnation number).
    starts: u32,
    incarnation: u32,
    paused: bool,
    /// Bumped on every pause so a stale resume task does nothing.
    pause_epoch: u64,
    pause_queue: VecDeque<(NodeId, Bytes)>,
    timeout: Option<Instant>,
    /// The last `RingSeqHigh` (the disk: survives crashes).
    disk_ring_seq: u64,
    /// Next message counter of this incarnation.
    counter: u64,
    /// Last regular configuration delivered in this incarnation.
    last_regular: Option<RingId>,
    /// Highest regular ring seq installed in this incarnation.
    installed_seq: u64,
    /// Last state traced.
    last_state: Option<RingState>,
    workload_started: bool,
    /// A probe still has to be queued.
    probe_pending: bool,
}

/// Something scheduled.
#[derive(Debug)]
enum Task {
    Action(Action),
    /// The node's next workload message.
    Mcast(usize),
    /// Resume a node paused in this epoch.
    Resume(usize, u64),
    /// Queue the node's liveness probe for the convergence of this number
    /// (a retry for a retracted convergence does nothing).
    Probe(usize, u64),
}

#[derive(Debug)]
struct Agendum {
    at: Instant,
    seq: u64,
    task: Task,
}

impl PartialEq for Agendum {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Agendum {}
impl PartialOrd for Agendum {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Agendum {
    /// Reversed: the max-heap pops the earliest, ties in insertion order.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// What the loop does next.
#[derive(Clone, Copy, Debug)]
enum Next {
    Task,
    Timer(usize),
    Datagram,
}

/// The whole simulation of one run.
#[derive(Debug)]
struct Sim<'a> {
    scenario: &'a Scenario,
    now: Instant,
    nodes: Vec<SimNode>,
    net: Network,
    agenda: BinaryHeap<Agendum>,
    agenda_seq: u64,
    workload_rng: ChaCha8Rng,
    sim_rng: ChaCha8Rng,
    histories: Vec<History>,
    trace: Trace,
    /// Found while running: broken contracts, failed checkpoints.
    found: Vec<Violation>,
    /// The run had to stop.
    fatal: Option<Violation>,
    converged_at: Option<Instant>,
    /// The ring of `converged_at`, until its probes were delivered.
    converged_ring: Option<RingId>,
    /// Convergences seen so far (the current one's number).
    convergences: u64,
    /// Every live node delivered every probe: the convergence stands.
    probes_done: bool,
    /// Probe deliveries so far (by any live node, of the current probes).
    probe_deliveries: usize,
    probes: Vec<MsgId>,
    stats: RunStats,
}

/// Runs `scenario` with the randomness of `seed` and checks the result.
pub fn run(scenario: &Scenario, seed: u64, trace: Trace) -> RunReport {
    let rng = |s: u64| {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(s);
        r
    };
    let nodes = (1..=scenario.nodes)
        .map(|i| SimNode {
            id: crate::faults::node(i),
            totem: None,
            starts: 0,
            incarnation: 0,
            paused: false,
            pause_epoch: 0,
            pause_queue: VecDeque::new(),
            timeout: None,
            disk_ring_seq: 0,
            counter: 0,
            last_regular: None,
            installed_seq: 0,
            last_state: None,
            workload_started: false,
            probe_pending: false,
        })
        .collect();
    let mut sim = Sim {
        scenario,
        now: Instant::ZERO,
        nodes,
        net: Network::new(scenario.nodes, rng(stream::NETWORK)),
        agenda: BinaryHeap::new(),
        agenda_seq: 0,
        workload_rng: rng(stream::WORKLOAD),
        sim_rng: rng(stream::SIM),
        histories: (1..=scenario.nodes)
            .map(|i| History::new(crate::faults::node(i)))
            .collect(),
        trace,
        found: Vec::new(),
        fatal: None,
        converged_at: None,
        converged_ring: None,
        convergences: 0,
        probes_done: false,
        probe_deliveries: 0,
        probes: Vec::new(),
        stats: RunStats::default(),
    };
    trace!(
        sim.trace,
        Instant::ZERO,
        None,
        "scenario {} seed {seed}: {} nodes, {} s",
        scenario.name,
        scenario.nodes,
        scenario.seconds()
    );
    for s in &scenario.schedule {
        sim.schedule(s.at, Task::Action(s.action.clone()));
    }
    crate::trace::set_protocol_log_capture(sim.trace.on());
    sim.run_loop();
    crate::trace::set_protocol_log_capture(false);
    sim.finish()
}

impl Sim<'_> {
    fn schedule(&mut self, at: Instant, task: Task) {
        self.agenda.push(Agendum {
            at,
            seq: self.agenda_seq,
            task,
        });
        self.agenda_seq += 1;
    }

    fn run_loop(&mut self) {
        let end = self.scenario.end;
        let mut same_instant = 0u64;
        while self.fatal.is_none() {
            let mut next: Option<(Instant, Next)> = self.agenda.peek().map(|a| (a.at, Next::Task));
            for (i, n) in self.nodes.iter().enumerate() {
                if let (Some(t), Some(_), false) = (n.timeout, &n.totem, n.paused) {
                    if next.is_none_or(|(nt, _)| t < nt) {
                        next = Some((t, Next::Timer(i)));
                    }
                }
            }
            if let Some(t) = self.net.next_arrival() {
                if next.is_none_or(|(nt, _)| t < nt) {
                    next = Some((t, Next::Datagram));
                }
            }
            let Some((t, what)) = next else { break };
            if t > end {
                break;
            }
            // A timer set in the past fires now; time never goes back.
            let t = t.max(self.now);
            if t == self.now {
                same_instant += 1;
                if same_instant > MAX_STEPS_AT_ONE_INSTANT {
                    self.fatal = Some(Violation::new(
                        Property::Simulation,
                        Some(t),
                        None,
                        format!("time stopped: {MAX_STEPS_AT_ONE_INSTANT} steps at one instant (next: {what:?})"),
                    ));
                    break;
                }
            } else {
                same_instant = 0;
            }
            self.now = t;
            self.stats.steps += 1;
            if self.stats.steps > MAX_STEPS {
                self.fatal = Some(Violation::new(
                    Property::Simulation,
                    Some(t),
                    None,
                    format!("more than {MAX_STEPS} steps"),
                ));
                break;
            }
            match what {
                Next::Task => {
                    let a = self.agenda.pop().expect("peeked");
                    self.run_task(a.task);
                }
                Next::Timer(i) => self.fire_timer(i),
                Next::Datagram => {
                    let d = self.net.pop().expect("peeked");
                    self.arrive(d.from, d.to, d.payload);
                }
            }
            self.stats.max_in_flight = self.stats.max_in_flight.max(self.net.in_flight());
            if self.net.overflowed() {
                self.fatal = Some(Violation::new(
                    Property::Simulation,
                    Some(self.now),
                    None,
                    format!(
                        "packet storm: more than {} datagrams in flight",
                        crate::network::MAX_IN_FLIGHT
                    ),
                ));
            }
            if let Some(l) = self.scenario.liveness {
                if self.now >= l.from && !self.probes_done {
                    if self.converged_at.is_none() {
                        self.check_convergence();
                    } else {
                        self.check_convergence_holds();
                    }
                }
            }
        }
        self.stats.sim_end = self.now;
        if self.fatal.is_none() {
            self.now = end;
        }
    }

    fn run_task(&mut self, task: Task) {
        match task {
            Task::Action(a) => self.act(a),
            Task::Mcast(i) => {
                let (bytes, guarantee) =
                    self.scenario.workload.next_message(&mut self.workload_rng);
                if self.nodes[i].totem.is_some() && !self.nodes[i].paused {
                    let _ = self.mcast(i, bytes, guarantee);
                }
                let next = self.now + self.scenario.workload.next_interval(&mut self.workload_rng);
                if next <= self.scenario.end {
                    self.schedule(next, Task::Mcast(i));
                }
            }
            Task::Resume(i, epoch) => {
                if self.nodes[i].paused && self.nodes[i].pause_epoch == epoch {
                    self.resume(i);
                }
            }
            Task::Probe(i, convergence) => {
                if !self.nodes[i].probe_pending || convergence != self.convergences {
                    return;
                }
                let queued = if self.nodes[i].totem.is_some() && !self.nodes[i].paused {
                    self.mcast(i, PROBE_BYTES, Guarantee::Safe)
                } else {
                    Err(McastError::QueueFull)
                };
                match queued {
                    Ok(id) => {
                        self.nodes[i].probe_pending = false;
                        self.probes.push(id);
                        trace!(
                            self.trace,
                            self.now,
                            Some(self.nodes[i].id),
                            "probe {id} queued"
                        );
                    }
                    Err(_) => self.schedule(self.now + PROBE_RETRY, Task::Probe(i, convergence)),
                }
            }
        }
    }

    fn act(&mut self, action: Action) {
        trace!(self.trace, self.now, None, "{action}");
        let index = |n: NodeId| n.get() as usize - 1;
        match action {
            Action::Start(n) => self.start(index(n)),
            Action::Crash(n) => self.crash(index(n)),
            Action::Leave(n) => {
                let i = index(n);
                let n = &mut self.nodes[i];
                // A paused process cannot run its SIGTERM handler: it is
                // then killed as by SIGKILL.
                if !n.paused {
                    if let Some(totem) = n.totem.as_mut() {
                        totem.leave(self.now);
                        self.drain(i);
                    }
                }
                self.crash(i);
            }
            Action::Pause { node, duration } => {
                let i = index(node);
                let n = &mut self.nodes[i];
                if n.totem.is_some() && !n.paused {
                    n.paused = true;
                    n.pause_epoch += 1;
                    let epoch = n.pause_epoch;
                    self.schedule(self.now + duration, Task::Resume(i, epoch));
                }
            }
            Action::Partition(groups) => self.net.partition(&groups),
            Action::HealPartition => self.net.heal_partition(),
            Action::OneWay { from, to } => self.net.block_one_way(from, to),
            Action::HealOneWay { from, to } => self.net.unblock_one_way(from, to),
            Action::DeafToMulticast(n) => self.net.deafen_to_multicast(n),
            Action::HealDeafToMulticast(n) => self.net.undeafen_to_multicast(n),
            Action::Loss(p) => self.net.set_loss(p),
            Action::Duplication(p) => self.net.set_dup(p),
            Action::Jitter(j) => self.net.set_jitter(j),
            Action::Calm => {
                self.net.heal_all();
                for i in 0..self.nodes.len() {
                    if self.nodes[i].paused {
                        self.resume(i);
                    }
                    if self.nodes[i].totem.is_none() {
                        self.start(i);
                    }
                }
            }
            Action::Mcast { node, bytes } => {
                let i = index(node);
                if self.nodes[i].totem.is_some() && !self.nodes[i].paused {
                    let _ = self.mcast(i, bytes, Guarantee::Agreed);
                }
            }
            Action::Expect(groups) => self.expect(&groups),
        }
    }

    fn start(&mut self, i: usize) {
        let now = self.now;
        let token_timeout = self.scenario.token_timeout;
        let n = &mut self.nodes[i];
        if n.totem.is_some() {
            return;
        }
        let mut config = TotemConfig::new(n.id).with_token_timeout(token_timeout);
        config.ring_seq_floor = n.disk_ring_seq;
        config.accelerated_window = self.scenario.accelerated_window;
        let config = config
            .validate()
            .expect("the simulator's Totem settings are valid");
        n.incarnation = n.starts;
        n.starts += 1;
        n.counter = 0;
        n.last_regular = None;
        n.installed_seq = 0;
        n.last_state = None;
        n.paused = false;
        n.pause_queue.clear();
        n.totem = Some(Totem::new(config, now));
        let (id, incarnation, floor) = (n.id, n.incarnation, n.disk_ring_seq);
        self.histories[i].push(now, Entry::Start { incarnation });
        trace!(
            self.trace,
            now,
            Some(id),
            "start: incarnation {incarnation}, ring_seq_floor {floor}"
        );
        self.drain(i);
        if !self.nodes[i].workload_started {
            self.nodes[i].workload_started = true;
            let first = now + self.scenario.workload.next_interval(&mut self.workload_rng);
            self.schedule(first, Task::Mcast(i));
        }
    }

    fn crash(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let Some(totem) = n.totem.take() else {
            return;
        };
        self.stats.add_totem(totem.stats());
        n.paused = false;
        n.pause_queue.clear();
        n.timeout = None;
        self.histories[i].push(self.now, Entry::Crash);
    }

    fn resume(&mut self, i: usize) {
        let timers_first = self.sim_rng.random_bool(0.5);
        let n = &mut self.nodes[i];
        n.paused = false;
        let queued = std::mem::take(&mut n.pause_queue);
        trace!(
            self.trace,
            self.now,
            Some(self.nodes[i].id),
            "resume: {} datagrams queued, {} first",
            queued.len(),
            if timers_first { "timer" } else { "datagrams" }
        );
        if timers_first {
            self.fire_timer_if_due(i);
        }
        for (from, payload) in queued {
            self.deliver_datagram(i, from, payload);
        }
        if !timers_first {
            self.fire_timer_if_due(i);
        }
    }

    fn fire_timer_if_due(&mut self, i: usize) {
        if self.nodes[i].timeout.is_some_and(|t| t <= self.now) {
            self.fire_timer(i);
        }
    }

    fn fire_timer(&mut self, i: usize) {
        let now = self.now;
        let Some(totem) = self.nodes[i].totem.as_mut() else {
            return;
        };
        totem.handle_timeout(now);
        self.drain(i);
    }

    fn arrive(&mut self, from: NodeId, to: NodeId, payload: Bytes) {
        let i = to.get() as usize - 1;
        let n = &mut self.nodes[i];
        if n.totem.is_none() {
            if self.trace.packets() {
                trace!(
                    self.trace,
                    self.now,
                    Some(to),
                    "lost (node down): {} from n{from}",
                    describe(&payload)
                );
            }
            return;
        }
        if n.paused {
            if n.pause_queue.len() >= PAUSE_QUEUE_MAX {
                n.pause_queue.pop_front();
                self.stats.pause_dropped += 1;
            }
            n.pause_queue.push_back((from, payload));
            return;
        }
        self.deliver_datagram(i, from, payload);
    }

    fn deliver_datagram(&mut self, i: usize, from: NodeId, payload: Bytes) {
        let now = self.now;
        if self.trace.packets() {
            trace!(
                self.trace,
                now,
                Some(self.nodes[i].id),
                "recv {} from n{from}",
                describe(&payload)
            );
        }
        let Some(totem) = self.nodes[i].totem.as_mut() else {
            return;
        };
        totem.handle_packet(now, payload);
        self.drain(i);
    }

    /// Queues one application message on node `i`.
    fn mcast(&mut self, i: usize, bytes: usize, guarantee: Guarantee) -> Result<MsgId, McastError> {
        let now = self.now;
        let n = &mut self.nodes[i];
        let totem = n.totem.as_mut().expect("callers check the node is up");
        let id = MsgId {
            origin: n.id,
            incarnation: n.incarnation,
            counter: n.counter,
        };
        match totem.handle_mcast(now, workload::encode(id, bytes), guarantee) {
            Ok(()) => {
                n.counter += 1;
                let (ring_id, state) = (totem.ring_id(), totem.state());
                self.histories[i].push(now, Entry::Send { id, ring_id, state });
                self.stats.mcasts_queued += 1;
                trace!(
                    self.trace,
                    now,
                    Some(n.id),
                    "mcast {id} {bytes} B {guarantee:?} queued in {ring_id:?} ({state:?})"
                );
                self.drain(i);
                Ok(id)
            }
            Err(McastError::QueueFull) => {
                self.stats.mcasts_refused += 1;
                Err(McastError::QueueFull)
            }
            Err(e) => {
                let v = Violation::new(
                    Property::Protocol,
                    Some(now),
                    Some(n.id),
                    format!("handle_mcast refused a legal {bytes}-byte message: {e}"),
                );
                self.found.push(v);
                Err(e)
            }
        }
    }

    /// Drains node `i` in the documented order: transmits, events, timer.
    fn drain(&mut self, i: usize) {
        let now = self.now;
        let Sim {
            nodes,
            net,
            histories,
            trace,
            found,
            stats,
            probes,
            probes_done,
            probe_deliveries,
            ..
        } = self;
        let n = &mut nodes[i];
        if trace.on() {
            for line in crate::trace::take_protocol_log() {
                trace!(trace, now, Some(n.id), "{line}");
            }
        }
        let Some(totem) = n.totem.as_mut() else {
            return;
        };
        while let Some(tx) = totem.poll_transmit() {
            if trace.packets() {
                let to = match tx.dest {
                    Destination::All => "all".to_string(),
                    Destination::Node(d) => format!("n{d}"),
                };
                trace!(
                    trace,
                    now,
                    Some(n.id),
                    "send {} to {to}",
                    describe(&tx.datagram.to_bytes())
                );
            }
            net.send(now, n.id, tx.dest, tx.datagram.to_bytes());
        }
        while let Some(event) = totem.poll_event() {
            match event {
                Event::Deliver(d) => {
                    let msg = workload::decode(&d.payload);
                    stats.deliveries += 1;
                    if !*probes_done && msg.as_ref().is_ok_and(|id| probes.contains(id)) {
                        *probe_deliveries += 1;
                    }
                    if trace.on() {
                        let what = match &msg {
                            Ok(id) => id.to_string(),
                            Err(e) => format!("GARBAGE ({e})"),
                        };
                        trace!(
                            trace,
                            now,
                            Some(n.id),
                            "deliver {what} from n{} {:?} {} B in {:?}",
                            d.origin,
                            d.guarantee,
                            d.payload.len(),
                            d.ring_id
                        );
                    }
                    histories[i].push(
                        now,
                        Entry::Deliver {
                            ring_id: d.ring_id,
                            origin: d.origin,
                            msg,
                        },
                    );
                }
                Event::ConfigChange(c) => {
                    stats.config_changes += 1;
                    trace!(
                        trace,
                        now,
                        Some(n.id),
                        "config {:?} {:?} members {} left {} joined {}",
                        c.kind,
                        c.ring_id,
                        Members(&c.members),
                        Members(&c.left),
                        Members(&c.joined)
                    );
                    if c.kind == ConfigKind::Regular {
                        n.last_regular = Some(c.ring_id);
                        n.installed_seq = n.installed_seq.max(c.ring_id.seq);
                    }
                    histories[i].push(
                        now,
                        Entry::Config {
                            kind: c.kind,
                            ring_id: c.ring_id,
                            members: c.members,
                            left: c.left,
                            joined: c.joined,
                        },
                    );
                }
                Event::RingSeqHigh(seq) => {
                    trace!(trace, now, Some(n.id), "persist ring seq {seq}");
                    if seq < n.disk_ring_seq {
                        found.push(Violation::new(
                            Property::Protocol,
                            Some(now),
                            Some(n.id),
                            format!("RingSeqHigh went down from {} to {seq}", n.disk_ring_seq),
                        ));
                    }
                    n.disk_ring_seq = n.disk_ring_seq.max(seq);
                }
            }
        }
        if n.installed_seq > n.disk_ring_seq {
            found.push(Violation::new(
                Property::Protocol,
                Some(now),
                Some(n.id),
                format!(
                    "installed a ring with seq {} but persisted only RingSeqHigh {}: a restart could reuse it",
                    n.installed_seq, n.disk_ring_seq
                ),
            ));
            n.disk_ring_seq = n.installed_seq;
        }
        n.timeout = totem.poll_timeout();
        if trace.on() {
            let state = totem.state();
            if n.last_state != Some(state) {
                n.last_state = Some(state);
                trace!(
                    trace,
                    now,
                    Some(n.id),
                    "state {state:?} in {:?} {}",
                    totem.ring_id(),
                    Members(totem.members())
                );
            }
        }
    }

    /// Whether node `i` is running, Operational, in `ring` with `members`,
    /// and has delivered that ring's regular configuration.
    fn in_ring(&self, i: usize, ring: RingId, members: &[NodeId]) -> bool {
        let n = &self.nodes[i];
        n.totem.as_ref().is_some_and(|t| {
            !n.paused
                && t.state() == RingState::Operational
                && t.ring_id() == ring
                && t.members() == members
                && n.last_regular == Some(ring)
        })
    }

    fn check_convergence(&mut self) {
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].totem.is_some())
            .collect();
        let ids: Vec<NodeId> = live.iter().map(|&i| self.nodes[i].id).collect();
        let Some(ring) = live
            .first()
            .and_then(|&i| self.nodes[i].totem.as_ref())
            .map(Totem::ring_id)
        else {
            return;
        };
        if !live.iter().all(|&i| self.in_ring(i, ring, &ids)) {
            return;
        }
        self.converged_at = Some(self.now);
        self.converged_ring = Some(ring);
        self.convergences += 1;
        self.probe_deliveries = 0;
        self.probes.clear();
        trace!(
            self.trace,
            self.now,
            None,
            "converged: {ring:?} {}",
            Members(&ids)
        );
        for i in live {
            self.nodes[i].probe_pending = true;
            self.schedule(self.now, Task::Probe(i, self.convergences));
        }
    }

    /// After a convergence, until its probes are delivered everywhere:
    /// retracts it if the ring broke first.
    ///
    /// Convergence is judged from the nodes' states, and a ring that a
    /// fault broke shortly before the calm phase (a partition shorter than
    /// the token timeout, say) still looks whole until its token timeout
    /// expires: the nodes are Operational in it, but its token is gone. Its
    /// probes then are, correctly, delivered only in the smaller rings that
    /// follow (EVS), and the run would fail for a convergence that never
    /// was. So a convergence counts only once all its probes were delivered
    /// by every live node; if the ring is left before that, it is retracted
    /// and the next one is judged, against the same bound from the start
    /// of the calm phase. This does not loosen the bound: the convergence
    /// that stands is the ring that carried traffic.
    fn check_convergence_holds(&mut self) {
        let (Some(at), Some(ring)) = (self.converged_at, self.converged_ring) else {
            return;
        };
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].totem.is_some())
            .collect();
        let pending = live.iter().any(|&i| self.nodes[i].probe_pending);
        if !pending && self.probe_deliveries == self.probes.len() * live.len() {
            self.probes_done = true;
            return;
        }
        let ids: Vec<NodeId> = live.iter().map(|&i| self.nodes[i].id).collect();
        if live.iter().all(|&i| self.in_ring(i, ring, &ids)) {
            return;
        }
        trace!(
            self.trace,
            self.now,
            None,
            "convergence of {at} retracted: {ring:?} broke before its probes were delivered"
        );
        self.stats.convergences_retracted += 1;
        self.converged_at = None;
        self.converged_ring = None;
        for n in &mut self.nodes {
            n.probe_pending = false;
        }
        self.probes.clear();
        self.probe_deliveries = 0;
        self.check_convergence();
    }

    fn expect(&mut self, groups: &[Vec<NodeId>]) {
        for g in groups {
            let mut ids = g.clone();
            ids.sort_unstable();
            let first = ids[0].get() as usize - 1;
            let ring = self.nodes[first].totem.as_ref().map(Totem::ring_id);
            let ok = ring.is_some_and(|r| {
                ids.iter()
                    .all(|n| self.in_ring(n.get() as usize - 1, r, &ids))
            });
            if !ok {
                let states = self
                    .final_nodes()
                    .iter()
                    .map(|f| f.to_string())
                    .collect::<Vec<_>>()
                    .join("; ");
                let want = groups
                    .iter()
                    .map(|g| Members(g).to_string())
                    .collect::<Vec<_>>()
                    .join(" ");
                self.found.push(Violation::new(
                    Property::Liveness,
                    Some(self.now),
                    None,
                    format!("expected the rings {want} by now, but: {states}"),
                ));
                return;
            }
        }
    }

    fn final_nodes(&self) -> Vec<FinalNode> {
        self.nodes
            .iter()
            .map(|n| FinalNode {
                node: n.id,
                up: n.totem.is_some(),
                paused: n.paused,
                state: n.totem.as_ref().map(Totem::state),
                ring_id: n.totem.as_ref().map(Totem::ring_id),
                members: n
                    .totem
                    .as_ref()
                    .map(|t| t.members().to_vec())
                    .unwrap_or_default(),
            })
            .collect()
    }

    fn finish(mut self) -> RunReport {
        self.stats.net = self.net.stats().clone();
        for t in self.nodes.iter().filter_map(|n| n.totem.as_ref()) {
            self.stats.add_totem(t.stats());
        }
        let facts = RunFacts {
            nodes: self.scenario.nodes,
            end: self.scenario.end,
            self_delivery_margin: SELF_DELIVERY_MARGIN,
            liveness: self.scenario.liveness.map(|l| LivenessFacts {
                from: l.from,
                bound: l.bound,
                converged_at: self.converged_at,
                probes: self.probes.clone(),
                probes_refused: self
                    .nodes
                    .iter()
                    .filter(|n| n.probe_pending)
                    .map(|n| n.id)
                    .collect(),
            }),
            stability: self.scenario.stability.clone(),
            final_nodes: self.final_nodes(),
        };
        // A run that had to stop says why first; then safety; then what the
        // protocol broke while running; then progress.
        let violation = self
            .fatal
            .take()
            .or_else(|| checker::check_safety(&self.histories, &facts).err())
            .or_else(|| self.found.first().cloned())
            .or_else(|| checker::check_progress(&self.histories, &facts).err());
        if self.trace.on() {
            let s = &self.stats;
            trace!(
                self.trace,
                self.now,
                None,
                "end: {} steps, {} datagrams sent ({} lost, {} blocked), {} mcasts queued ({} refused), {} deliveries, \
                 {} config changes",
                s.steps,
                s.net.sent,
                s.net.lost,
                s.net.blocked,
                s.mcasts_queued,
                s.mcasts_refused,
                s.deliveries,
                s.config_changes
            );
            for (n, f) in self.nodes.iter().zip(&facts.final_nodes) {
                trace!(self.trace, self.now, Some(n.id), "final: {f}");
                if let Some(t) = &n.totem {
                    trace!(self.trace, self.now, Some(n.id), "{:?}", t.stats());
                }
            }
            match &violation {
                Some(v) => trace!(self.trace, self.now, None, "FAIL {v}"),
                None => trace!(self.trace, self.now, None, "pass"),
            }
        }
        RunReport {
            violation,
            stats: self.stats,
            trace: self.trace.into_buffer(),
            histories: self.histories,
        }
    }
}

/// A datagram, for the trace: its type, ring and size, read from the fixed
/// header (see `totem::wire`) without decoding the rest.
fn describe(p: &[u8]) -> String {
    if p.len() < 20 {
        return format!("runt {} B", p.len());
    }
    let kind = match p[3] {
        1 => "mcast",
        2 => "token",
        3 => "join",
        4 => "commit",
        5 => "hello",
        _ => "unknown",
    };
    let rep = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&p[12..20]);
    format!(
        "{kind} ring({rep}.{}) {} B",
        u64::from_be_bytes(seq),
        p.len()
    )
}
