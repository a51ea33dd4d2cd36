//! Fault schedules: what happens to the cluster when, and what the run
//! promises afterwards.
//!
//! A [`Scenario`] is a list of timed [`Action`]s (faults, heals, one-off
//! messages, checkpoints) plus the workload, the cluster size, the run's
//! length and which of the progress properties (liveness, stability) it
//! must meet. [`random`] draws one from a seed for the swarm: a fault phase
//! in which loss, duplication, jitter, crashes and restarts, partitions,
//! one-way links and pauses come and go (and, in some runs, a quiet window
//! with a node deaf to multicast), then a calm phase ([`Action::Calm`])
//! in which everything is healed and every node runs, and the ring must
//! converge within [`LIVENESS_BOUND`].
//!
//! At most K-1 nodes are down (crashed or paused) at any time, so one node
//! always runs.

use std::fmt;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use totem::{Instant, NodeId, TotemConfig};

use crate::checker::{Members, StabilityFacts};
use crate::workload::WorkloadConfig;

/// After the calm phase starts, the ring of all nodes must form within
/// this: token (1 s) + consensus (1.2 s) for a ring broken at the last
/// moment, another round for a node that joins late, a few merge periods
/// (200 ms) to find the other rings, and margin.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(8);
/// After convergence, the probes must be delivered within what is left of
/// the run, at least this.
pub const PROBE_MARGIN: Duration = Duration::from_secs(3);
/// Length of the random runs' calm phase.
pub const CALM_PHASE: Duration = Duration::from_secs(11);
/// Shortest random run: one second of faults, then the calm phase.
pub const MIN_RANDOM_SECONDS: u64 = 12;
/// Largest cluster.
pub const MAX_NODES: usize = 32;
/// Highest loss rate a schedule sets.
pub const MAX_LOSS: f64 = 0.30;
/// Highest duplication rate a schedule sets.
pub const MAX_DUP: f64 = 0.10;
/// Highest jitter a schedule sets.
pub const MAX_JITTER: Duration = Duration::from_millis(5);
/// Share of random runs with a quiet window of 5..8 s in which one node is
/// deaf to multicast ([`Action::DeafToMulticast`]) and nothing else
/// happens, so `fail_recv_const` (about 5 s of rotations) gets to remove
/// it. Kept low because it is costly to simulate: until the node is removed
/// or hears again, the ring spends every rotation retransmitting to it,
/// some 100k simulated datagrams per second.
pub const P_DEAF_TO_MULTICAST: f64 = 0.03;
/// Share of the random schedule's crashes that are clean leaves.
pub const P_LEAVE: f64 = 0.25;

/// RNG streams drawn from one seed, so that e.g. the workload does not shift
/// when the fault generator draws one more number.
pub mod stream {
    /// The random fault schedule.
    pub const FAULTS: u64 = 1;
    /// The network's fate for each datagram.
    pub const NETWORK: u64 = 2;
    /// The workload.
    pub const WORKLOAD: u64 = 3;
    /// The simulator's own choices (e.g. timers or packets first on resume).
    pub const SIM: u64 = 4;
    /// Faults added to the random schedule after the others were drawn
    /// (deafness to multicast), so adding them left every earlier seed's
    /// schedule as it was.
    pub const LATER_FAULTS: u64 = 5;
    /// Which crashes of the random schedule are clean leaves instead
    /// (drawn apart so every schedule keeps its times).
    pub const LEAVES: u64 = 6;
}

/// One thing that happens to the cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Start a node that is down (its first start, or a restart after a
    /// crash: the protocol state is new, the persisted ring seq survives).
    Start(NodeId),
    /// Crash a node: its protocol state is dropped, datagrams to it are lost.
    Crash(NodeId),
    /// A clean shutdown (SIGTERM): the node announces it leaves, its last
    /// datagrams go out, then it is down as after a crash.
    Leave(NodeId),
    /// Pause a node (a stopped process): it handles nothing, its timers do
    /// not fire, datagrams to it queue up (at most 1000, oldest dropped);
    /// after `duration` it resumes and sees them all at once.
    Pause {
        /// Which node.
        node: NodeId,
        /// For how long.
        duration: Duration,
    },
    /// Cut the network into these groups (nodes in none form one more).
    Partition(Vec<Vec<NodeId>>),
    /// End the partition.
    HealPartition,
    /// `to` stops hearing `from` (`from` still hears `to`).
    OneWay {
        /// Whose datagrams are lost.
        from: NodeId,
        /// Who does not hear them.
        to: NodeId,
    },
    /// Undo a one-way block.
    HealOneWay {
        /// As blocked.
        from: NodeId,
        /// As blocked.
        to: NodeId,
    },
    /// The node stops receiving multicast (regular messages, joins,
    /// announcements) while it still sends and still receives unicasts
    /// (the token): what `fail_recv_const` must detect.
    DeafToMulticast(NodeId),
    /// Undo [`Action::DeafToMulticast`].
    HealDeafToMulticast(NodeId),
    /// Loss probability of every datagram from now on.
    Loss(f64),
    /// Duplication probability of every datagram from now on.
    Duplication(f64),
    /// Largest extra delay of every datagram from now on.
    Jitter(Duration),
    /// The calm phase: heal the network (no loss, duplication, partition or
    /// one-way link, calm jitter), resume paused nodes, start down nodes.
    Calm,
    /// `node` multicasts one message of exactly `bytes` bytes.
    Mcast {
        /// Which node.
        node: NodeId,
        /// Its size.
        bytes: usize,
    },
    /// A checkpoint: each group must now be Operational in a ring of exactly
    /// its members (a liveness violation otherwise).
    Expect(Vec<Vec<NodeId>>),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups = |g: &[Vec<NodeId>]| {
            g.iter()
                .map(|m| Members(m).to_string())
                .collect::<Vec<_>>()
                .join(" | ")
        };
        match self {
            Action::Start(n) => write!(f, "start n{n}"),
            Action::Crash(n) => write!(f, "crash n{n}"),
            Action::Leave(n) => write!(f, "n{n} leaves cleanly"),
            Action::Pause { node, duration } => write!(f, "pause n{node} for {duration:?}"),
            Action::Partition(g) => write!(f, "partition {}", groups(g)),
            Action::HealPartition => write!(f, "heal the partition"),
            Action::OneWay { from, to } => write!(f, "one-way link: n{to} stops hearing n{from}"),
            Action::HealOneWay { from, to } => {
                write!(f, "heal one-way link: n{to} hears n{from} again")
            }
            Action::DeafToMulticast(n) => {
                write!(f, "n{n} stops receiving multicast (unicast still arrives)")
            }
            Action::HealDeafToMulticast(n) => write!(f, "n{n} receives multicast again"),
            Action::Loss(p) => write!(f, "loss {:.1}%", p * 100.0),
            Action::Duplication(p) => write!(f, "duplication {:.1}%", p * 100.0),
            Action::Jitter(j) => write!(f, "jitter up to {j:?}"),
            Action::Calm => write!(f, "calm: network healed, every node resumed and started"),
            Action::Mcast { node, bytes } => write!(f, "n{node} multicasts {bytes} B"),
            Action::Expect(g) => write!(f, "expect the rings {}", groups(g)),
        }
    }
}

/// An action and when it happens.
#[derive(Clone, Debug, PartialEq)]
pub struct Scheduled {
    /// Simulated time.
    pub at: Instant,
    /// What.
    pub action: Action,
}

/// When the ring must have converged, counted from when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LivenessCheck {
    /// Start of the calm phase.
    pub from: Instant,
    /// The bound.
    pub bound: Duration,
}

/// A whole run: cluster, schedule, workload, promises.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// `random` or a named scenario.
    pub name: String,
    /// Node ids are 1..=nodes.
    pub nodes: usize,
    /// The run ends here.
    pub end: Instant,
    /// Sorted by time; equal times happen in list order.
    pub schedule: Vec<Scheduled>,
    /// The background load.
    pub workload: WorkloadConfig,
    /// Every node's token timeout (the rest of the Totem config is the
    /// default, consensus 1.2 x token).
    pub token_timeout: Duration,
    /// Every node's `accelerated_window` (0: the standard protocol).
    pub accelerated_window: u32,
    /// Liveness (property 6), if promised.
    pub liveness: Option<LivenessCheck>,
    /// Stability (property 7), if promised.
    pub stability: Option<StabilityFacts>,
}

impl Scenario {
    /// An empty scenario: `nodes` nodes that all start at 0, default load,
    /// default token timeout, no promises yet.
    pub fn new(name: &str, nodes: usize, end: Duration) -> Scenario {
        let schedule = (1..=nodes)
            .map(|i| Scheduled {
                at: Instant::ZERO,
                action: Action::Start(node(i)),
            })
            .collect();
        Scenario {
            name: name.to_string(),
            nodes,
            end: at(end),
            schedule,
            workload: WorkloadConfig::default(),
            token_timeout: TotemConfig::new(node(1)).token_timeout,
            accelerated_window: 0,
            liveness: None,
            stability: None,
        }
    }

    /// Adds an action at `t` after the start.
    pub fn at(&mut self, t: Duration, action: Action) -> &mut Scenario {
        self.schedule.push(Scheduled { at: at(t), action });
        self
    }

    /// Sorts the schedule by time, keeping list order for equal times.
    pub fn sort(&mut self) {
        self.schedule.sort_by_key(|s| s.at);
    }

    /// The run's length in whole seconds (rounded up).
    pub fn seconds(&self) -> u64 {
        self.end.as_nanos().div_ceil(1_000_000_000)
    }

    /// Checks that the run is long enough for what it promises and that
    /// the cluster size is supported.
    ///
    /// # Errors
    /// What is wrong, for the command line.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_NODES).contains(&self.nodes) {
            return Err(format!("--nodes must be 1..={MAX_NODES}"));
        }
        if let Some(last) = self.schedule.last() {
            if last.at > self.end {
                return Err(format!(
                    "scenario {} needs at least {} s (its last action is at {})",
                    self.name,
                    last.at.as_nanos().div_ceil(1_000_000_000),
                    last.at
                ));
            }
        }
        if let Some(l) = self.liveness {
            let need = l.from + l.bound + PROBE_MARGIN;
            if need > self.end {
                return Err(format!(
                    "scenario {} needs at least {} s (calm at {}, {:?} to converge, {:?} for the probes)",
                    self.name,
                    need.as_nanos().div_ceil(1_000_000_000),
                    l.from,
                    l.bound,
                    PROBE_MARGIN
                ));
            }
        }
        if let Some(s) = &self.stability {
            if s.settle + Duration::from_secs(5) > self.end {
                return Err(format!(
                    "scenario {} needs 5 s after its settling time {}",
                    self.name, s.settle
                ));
            }
        }
        Ok(())
    }
}

/// Node `i` (1-based).
///
/// # Panics
/// If `i` is 0.
pub fn node(i: usize) -> NodeId {
    NodeId::new(u32::try_from(i).expect("node index fits u32")).expect("node ids start at 1")
}

/// The instant `d` after the start.
pub fn at(d: Duration) -> Instant {
    Instant::ZERO + d
}

/// Which random fault to inject next.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Loss,
    Dup,
    Jitter,
    Crash,
    Pause,
    Partition,
    OneWay,
}

const KINDS: [(Kind, u32); 7] = [
    (Kind::Loss, 6),
    (Kind::Dup, 2),
    (Kind::Jitter, 3),
    (Kind::Crash, 4),
    (Kind::Pause, 3),
    (Kind::Partition, 4),
    (Kind::OneWay, 3),
];

fn uniform<R: Rng>(rng: &mut R, lo: Duration, hi: Duration) -> Duration {
    Duration::from_nanos(rng.random_range(lo.as_nanos() as u64..=hi.as_nanos() as u64))
}

/// The random schedule of seed `seed` for `nodes` nodes and `seconds` of
/// simulated time: nodes start within the first 300 ms, faults come every
/// 0.15..1.5 s until the calm phase (the last [`CALM_PHASE`] of the run).
///
/// # Panics
/// If `seconds` is below [`MIN_RANDOM_SECONDS`] or `nodes` is 0 (the command
/// line refuses both).
pub fn random(seed: u64, nodes: usize, seconds: u64) -> Scenario {
    assert!(
        seconds >= MIN_RANDOM_SECONDS && nodes >= 1,
        "checked by the caller"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream::FAULTS);
    let mut s = Scenario::new("random", nodes, Duration::from_secs(seconds));
    s.schedule.clear();
    for i in 1..=nodes {
        let t = uniform(&mut rng, Duration::ZERO, Duration::from_millis(300));
        s.at(t, Action::Start(node(i)));
    }
    let calm = Duration::from_secs(seconds) - CALM_PHASE;
    let token = s.token_timeout;
    // Until when each node is crashed or paused (as scheduled so far).
    let mut down_until = vec![Duration::ZERO; nodes];
    let total_weight: u32 = KINDS.iter().map(|k| k.1).sum();
    let mut t = Duration::from_millis(500);
    loop {
        t += uniform(
            &mut rng,
            Duration::from_millis(150),
            Duration::from_millis(1500),
        );
        if t >= calm {
            break;
        }
        let mut roll = rng.random_range(0..total_weight);
        let kind = KINDS
            .iter()
            .find(|(_, w)| {
                let hit = roll < *w;
                roll = roll.saturating_sub(*w);
                hit
            })
            .map(|k| k.0)
            .expect("roll < total weight");
        let up: Vec<usize> = (0..nodes).filter(|&i| down_until[i] <= t).collect();
        let may_take_down = nodes - up.len() < nodes - 1;
        match kind {
            Kind::Loss => {
                let p = match rng.random_range(0..4) {
                    0 => 0.0,
                    1 => rng.random_range(0.0..0.05),
                    2 => rng.random_range(0.05..0.15),
                    _ => rng.random_range(0.15..=MAX_LOSS),
                };
                s.at(t, Action::Loss(p));
            }
            Kind::Dup => {
                let p = if rng.random_bool(0.3) {
                    0.0
                } else {
                    rng.random_range(0.0..=MAX_DUP)
                };
                s.at(t, Action::Duplication(p));
            }
            Kind::Jitter => {
                let j = if rng.random_bool(0.3) {
                    crate::network::CALM_JITTER
                } else {
                    uniform(&mut rng, Duration::ZERO, MAX_JITTER)
                };
                s.at(t, Action::Jitter(j));
            }
            Kind::Crash if may_take_down => {
                let i = up[rng.random_range(0..up.len())];
                let restart =
                    t + uniform(&mut rng, Duration::from_millis(300), Duration::from_secs(4));
                s.at(t, Action::Crash(node(i + 1)));
                if restart < calm {
                    s.at(restart, Action::Start(node(i + 1)));
                    down_until[i] = restart;
                } else {
                    down_until[i] = calm;
                }
            }
            Kind::Pause if may_take_down => {
                let i = up[rng.random_range(0..up.len())];
                let duration = token.mul_f64(rng.random_range(1.2..4.0));
                s.at(
                    t,
                    Action::Pause {
                        node: node(i + 1),
                        duration,
                    },
                );
                down_until[i] = t + duration;
            }
            Kind::Partition if nodes >= 2 => {
                let mut ids: Vec<NodeId> = (1..=nodes).map(node).collect();
                ids.shuffle(&mut rng);
                let groups = if nodes >= 3 && rng.random_bool(0.25) {
                    3
                } else {
                    2
                };
                let mut cuts: Vec<usize> = Vec::new();
                while cuts.len() < groups - 1 {
                    let c = rng.random_range(1..nodes);
                    if !cuts.contains(&c) {
                        cuts.push(c);
                    }
                }
                cuts.sort_unstable();
                cuts.push(nodes);
                let mut parts = Vec::new();
                let mut begin = 0;
                for c in cuts {
                    let mut g = ids[begin..c].to_vec();
                    g.sort_unstable();
                    parts.push(g);
                    begin = c;
                }
                s.at(t, Action::Partition(parts));
                let heal =
                    t + uniform(&mut rng, Duration::from_millis(500), Duration::from_secs(5));
                if heal < calm {
                    s.at(heal, Action::HealPartition);
                }
            }
            Kind::OneWay if nodes >= 2 => {
                let from = rng.random_range(1..=nodes);
                let to = (from + rng.random_range(1..nodes) - 1) % nodes + 1;
                let (from, to) = (node(from), node(to));
                s.at(t, Action::OneWay { from, to });
                let heal =
                    t + uniform(&mut rng, Duration::from_millis(500), Duration::from_secs(6));
                if heal < calm {
                    s.at(heal, Action::HealOneWay { from, to });
                }
            }
            _ => {}
        }
    }
    let mut later = ChaCha8Rng::seed_from_u64(seed);
    later.set_stream(stream::LATER_FAULTS);
    if nodes >= 2 && later.random_bool(P_DEAF_TO_MULTICAST) {
        // A quiet window in which one node is deaf to multicast and nothing
        // else happens: otherwise the other faults reform the ring before
        // fail_recv_const rotations (some 5 s) have passed. The window
        // starts with everything healed; faults drawn for it are dropped
        // (restarts kept: starting a running node does nothing).
        let quiet = uniform(&mut later, Duration::from_secs(5), Duration::from_secs(8));
        let latest = calm.saturating_sub(quiet).max(Duration::from_millis(500));
        let from = uniform(&mut later, Duration::from_millis(500), latest);
        let until = (from + quiet).min(calm);
        let n = node(later.random_range(1..=nodes));
        s.schedule.retain(|x| {
            x.at < at(from) || x.at >= at(until) || matches!(x.action, Action::Start(_))
        });
        s.at(from, Action::Calm);
        s.at(from, Action::DeafToMulticast(n));
        if until < calm {
            s.at(until, Action::HealDeafToMulticast(n));
        }
    }
    let mut leaves = ChaCha8Rng::seed_from_u64(seed);
    leaves.set_stream(stream::LEAVES);
    for x in &mut s.schedule {
        if let Action::Crash(n) = x.action {
            if leaves.random_bool(P_LEAVE) {
                x.action = Action::Leave(n);
            }
        }
    }
    s.at(calm, Action::Calm);
    s.sort();
    s.liveness = Some(LivenessCheck {
        from: at(calm),
        bound: LIVENESS_BOUND,
    });
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_schedules_are_deterministic_and_keep_one_node_up() {
        for seed in 0..200 {
            let nodes = 1 + (seed as usize % 7);
            let s = random(seed, nodes, 20);
            assert_eq!(s, random(seed, nodes, 20));
            s.validate().expect("valid");
            assert!(s.schedule.windows(2).all(|w| w[0].at <= w[1].at));
            let calm = s.liveness.expect("random runs promise liveness").from;
            assert_eq!(calm, at(Duration::from_secs(9)));
            assert_eq!(s.schedule.last().map(|x| &x.action), Some(&Action::Calm));
            // Replay down/up and count.
            let mut down_until = vec![Instant::ZERO; nodes];
            let mut crashed = vec![false; nodes];
            for x in &s.schedule {
                let now = x.at;
                match &x.action {
                    Action::Crash(n) | Action::Leave(n) => {
                        let i = n.get() as usize - 1;
                        assert!(
                            !crashed[i] && down_until[i] <= now,
                            "seed {seed}: crash of a down node"
                        );
                        crashed[i] = true;
                        down_until[i] = calm;
                    }
                    Action::Start(n) => {
                        let i = n.get() as usize - 1;
                        crashed[i] = false;
                        down_until[i] = now;
                    }
                    Action::Pause { node, duration } => {
                        let i = node.get() as usize - 1;
                        assert!(down_until[i] <= now);
                        assert!(*duration > s.token_timeout);
                        down_until[i] = now + *duration;
                    }
                    Action::Loss(p) => assert!((0.0..=MAX_LOSS).contains(p)),
                    Action::Partition(groups) => {
                        let mut all: Vec<NodeId> = groups.iter().flatten().copied().collect();
                        all.sort_unstable();
                        assert_eq!(all, (1..=nodes).map(node).collect::<Vec<_>>());
                        assert!(groups.iter().all(|g| !g.is_empty()));
                    }
                    Action::OneWay { from, to } => assert_ne!(from, to),
                    _ => {}
                }
                let down = down_until.iter().filter(|&&u| u > now).count();
                assert!(
                    nodes == 1 || down < nodes,
                    "seed {seed}: {down} of {nodes} down at {now}"
                );
            }
        }
    }

    #[test]
    fn random_schedules_use_every_kind_of_fault() {
        let mut seen = [false; 12];
        for seed in 0..400 {
            for x in random(seed, 5, 20).schedule {
                let k = match x.action {
                    Action::Crash(_) => 0,
                    Action::Pause { .. } => 1,
                    Action::Partition(_) => 2,
                    Action::HealPartition => 3,
                    Action::OneWay { .. } => 4,
                    Action::HealOneWay { .. } => 5,
                    Action::Loss(_) => 6,
                    Action::Duplication(_) => 7,
                    Action::Jitter(_) => 8,
                    Action::DeafToMulticast(_) => 9,
                    Action::HealDeafToMulticast(_) => 10,
                    Action::Leave(_) => 11,
                    _ => continue,
                };
                seen[k] = true;
            }
        }
        assert!(seen.iter().all(|&s| s), "{seen:?}");
    }
}
