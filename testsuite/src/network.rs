//! The simulated network: datagrams in flight, loss, duplication, delay,
//! jitter, partitions and one-way links.
//!
//! Datagrams wait in one priority queue keyed by (arrival time, send
//! counter): two datagrams due at the same nanosecond leave in the order
//! they were sent, so a run depends only on its seed.
//!
//! What happens to a datagram is decided when it is sent:
//! - a link that is cut (different partition groups, or a one-way block from
//!   sender to receiver) drops it, and so does a receiver deaf to multicast
//!   for a [`Destination::All`] datagram;
//! - otherwise it is lost with probability `loss`, independently per
//!   receiver (as multicast loss is);
//! - otherwise it arrives after the link's latency (fixed per directed link,
//!   50..=500 µs, drawn at creation) plus 8 ns per byte (1 Gbit/s) plus a
//!   uniform jitter in `0..=jitter`; a jitter larger than the gap between two
//!   sends reorders them;
//! - with probability `dup` a second copy arrives up to 1 ms after the first.
//!
//! [`Destination::All`] means every *other* node of the cluster: a node
//! never receives its own multicast. A unicast to itself (a singleton
//! ring passing the token to itself) is looped back after 10 µs and is
//! never lost, like a datagram to one's own address.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use totem::{Destination, Instant, NodeId};

/// Most datagrams in flight at once; more means the protocol is in a packet
/// storm and the run is stopped (see [`Network::overflowed`]).
pub const MAX_IN_FLIGHT: usize = 2_000_000;
/// Jitter when the network is healthy.
pub const CALM_JITTER: Duration = Duration::from_micros(20);
/// Link latencies are drawn from this range (per directed link, once).
pub const LATENCY_RANGE_NS: (u64, u64) = (50_000, 500_000);
/// Delay of a datagram a node sends to itself.
pub const LOOPBACK_NS: u64 = 10_000;
/// Serialization delay per byte (1 Gbit/s).
pub const NS_PER_BYTE: u64 = 8;
/// A duplicate arrives up to this long after the original.
pub const DUP_SPREAD_NS: u64 = 1_000_000;

/// A datagram on its way.
#[derive(Clone, Debug)]
pub struct Datagram {
    /// When it arrives.
    pub at: Instant,
    /// Who sent it.
    pub from: NodeId,
    /// Who receives it.
    pub to: NodeId,
    /// The bytes (shared with the other receivers' copies).
    pub payload: Bytes,
}

/// Queue entry: ordered by (arrival, send counter), earliest first.
#[derive(Debug)]
struct InFlight {
    seq: u64,
    datagram: Datagram,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    /// Reversed, so the max-heap pops the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.datagram.at, other.seq).cmp(&(self.datagram.at, self.seq))
    }
}

/// What became of the datagrams sent so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Copies handed to the network (one per receiver).
    pub sent: u64,
    /// Dropped by a cut link (partition or one-way block).
    pub blocked: u64,
    /// Dropped by random loss.
    pub lost: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Unicasts to a node id outside the cluster, dropped.
    pub misaddressed: u64,
    /// Taken out of the queue at arrival.
    pub arrived: u64,
}

/// The network between nodes 1..=K.
#[derive(Debug)]
pub struct Network {
    nodes: usize,
    rng: ChaCha8Rng,
    queue: BinaryHeap<InFlight>,
    next_seq: u64,
    /// Latency of the directed link from i to j at `i * nodes + j` (0-based).
    latency_ns: Vec<u64>,
    /// Partition group of each node; nodes talk only within a group.
    group: Vec<u32>,
    /// `blocked[i * nodes + j]`: datagrams from i to j are dropped.
    blocked: Vec<bool>,
    /// `deaf[j]`: multicasts to j are dropped (unicasts still arrive).
    deaf: Vec<bool>,
    loss: f64,
    dup: f64,
    jitter_ns: u64,
    stats: NetStats,
}

impl Network {
    /// A healthy network of `nodes` nodes (ids 1..=nodes): no loss, no
    /// duplication, calm jitter, no cut links.
    pub fn new(nodes: usize, mut rng: ChaCha8Rng) -> Network {
        let latency_ns = (0..nodes * nodes)
            .map(|_| rng.random_range(LATENCY_RANGE_NS.0..=LATENCY_RANGE_NS.1))
            .collect();
        Network {
            nodes,
            rng,
            queue: BinaryHeap::new(),
            next_seq: 0,
            latency_ns,
            group: vec![0; nodes],
            blocked: vec![false; nodes * nodes],
            deaf: vec![false; nodes],
            loss: 0.0,
            dup: 0.0,
            jitter_ns: CALM_JITTER.as_nanos() as u64,
            stats: NetStats::default(),
        }
    }

    fn index(&self, node: NodeId) -> Option<usize> {
        let i = node.get() as usize;
        (1..=self.nodes).contains(&i).then(|| i - 1)
    }

    /// Sets the loss probability of every datagram.
    ///
    /// # Panics
    /// If `p` is not a probability.
    pub fn set_loss(&mut self, p: f64) {
        assert!((0.0..=1.0).contains(&p), "loss {p} is not a probability");
        self.loss = p;
    }

    /// Sets the duplication probability of every datagram.
    ///
    /// # Panics
    /// If `p` is not a probability.
    pub fn set_dup(&mut self, p: f64) {
        assert!(
            (0.0..=1.0).contains(&p),
            "duplication {p} is not a probability"
        );
        self.dup = p;
    }

    /// Sets the largest jitter added to each datagram's delay.
    pub fn set_jitter(&mut self, jitter: Duration) {
        self.jitter_ns = u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX);
    }

    /// Cuts the network into `groups`: nodes talk only to nodes of their
    /// own group. Nodes listed in no group form one more group together.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        self.group.fill(0);
        for (g, members) in groups.iter().enumerate() {
            for &n in members {
                if let Some(i) = self.index(n) {
                    self.group[i] = g as u32 + 1;
                }
            }
        }
    }

    /// Ends any partition (one-way blocks stay).
    pub fn heal_partition(&mut self) {
        self.group.fill(0);
    }

    /// From now on `to` does not hear `from` (while `from` may still hear
    /// `to`).
    pub fn block_one_way(&mut self, from: NodeId, to: NodeId) {
        if let (Some(f), Some(t)) = (self.index(from), self.index(to)) {
            self.blocked[f * self.nodes + t] = true;
        }
    }

    /// Undoes [`Network::block_one_way`].
    pub fn unblock_one_way(&mut self, from: NodeId, to: NodeId) {
        if let (Some(f), Some(t)) = (self.index(from), self.index(to)) {
            self.blocked[f * self.nodes + t] = false;
        }
    }

    /// From now on `node` receives no multicast ([`Destination::All`])
    /// datagram: the regular messages, joins and announcements are lost to
    /// it, while unicasts (the token, the commit token) still arrive and it
    /// still sends. Broken multicast with working unicast, the failure that
    /// Totem's `fail_recv_const` is for.
    pub fn deafen_to_multicast(&mut self, node: NodeId) {
        if let Some(i) = self.index(node) {
            self.deaf[i] = true;
        }
    }

    /// Undoes [`Network::deafen_to_multicast`].
    pub fn undeafen_to_multicast(&mut self, node: NodeId) {
        if let Some(i) = self.index(node) {
            self.deaf[i] = false;
        }
    }

    /// Heals everything: partitions, one-way blocks, multicast deafness,
    /// loss, duplication, jitter back to calm. Datagrams already in flight
    /// still arrive.
    pub fn heal_all(&mut self) {
        self.heal_partition();
        self.blocked.fill(false);
        self.deaf.fill(false);
        self.loss = 0.0;
        self.dup = 0.0;
        self.jitter_ns = CALM_JITTER.as_nanos() as u64;
    }

    /// Whether a datagram from `from` can currently reach `to` (loss aside).
    pub fn can_reach(&self, from: NodeId, to: NodeId) -> bool {
        match (self.index(from), self.index(to)) {
            (Some(f), Some(t)) => {
                f == t || (self.group[f] == self.group[t] && !self.blocked[f * self.nodes + t])
            }
            _ => false,
        }
    }

    /// Sends `payload` from `from` to `dest` at `now`.
    pub fn send(&mut self, now: Instant, from: NodeId, dest: Destination, payload: Bytes) {
        let Some(f) = self.index(from) else {
            self.stats.misaddressed += 1;
            return;
        };
        match dest {
            Destination::All => {
                for t in (0..self.nodes).filter(|&t| t != f) {
                    if self.deaf[t] {
                        self.stats.sent += 1;
                        self.stats.blocked += 1;
                        continue;
                    }
                    self.send_one(now, f, t, payload.clone());
                }
            }
            Destination::Node(to) => match self.index(to) {
                Some(t) if t == f => {
                    self.stats.sent += 1;
                    self.push(now + Duration::from_nanos(LOOPBACK_NS), from, from, payload);
                }
                Some(t) => self.send_one(now, f, t, payload),
                None => self.stats.misaddressed += 1,
            },
        }
    }

    fn send_one(&mut self, now: Instant, f: usize, t: usize, payload: Bytes) {
        self.stats.sent += 1;
        if self.group[f] != self.group[t] || self.blocked[f * self.nodes + t] {
            self.stats.blocked += 1;
            return;
        }
        if self.loss > 0.0 && self.rng.random_bool(self.loss) {
            self.stats.lost += 1;
            return;
        }
        let base = self.latency_ns[f * self.nodes + t] + payload.len() as u64 * NS_PER_BYTE;
        let delay = base + self.rng.random_range(0..=self.jitter_ns);
        let (from, to) = (node_id(f), node_id(t));
        if self.dup > 0.0 && self.rng.random_bool(self.dup) {
            self.stats.duplicated += 1;
            let later = delay + self.rng.random_range(0..=DUP_SPREAD_NS);
            self.push(now + Duration::from_nanos(later), from, to, payload.clone());
        }
        self.push(now + Duration::from_nanos(delay), from, to, payload);
    }

    fn push(&mut self, at: Instant, from: NodeId, to: NodeId, payload: Bytes) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(InFlight {
            seq,
            datagram: Datagram {
                at,
                from,
                to,
                payload,
            },
        });
    }

    /// When the next datagram arrives, if any is in flight.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.queue.peek().map(|f| f.datagram.at)
    }

    /// Takes the earliest datagram out of the network.
    pub fn pop(&mut self) -> Option<Datagram> {
        let d = self.queue.pop()?.datagram;
        self.stats.arrived += 1;
        Some(d)
    }

    /// Datagrams in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Whether more than [`MAX_IN_FLIGHT`] datagrams are in flight.
    pub fn overflowed(&self) -> bool {
        self.queue.len() > MAX_IN_FLIGHT
    }

    /// Counters.
    pub fn stats(&self) -> &NetStats {
        &self.stats
    }
}

/// Node id of 0-based index `i`.
fn node_id(i: usize) -> NodeId {
    NodeId::new(i as u32 + 1).expect("index + 1 is never 0")
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn n(i: u32) -> NodeId {
        NodeId::new(i).expect("nonzero")
    }

    fn net(nodes: usize) -> Network {
        Network::new(nodes, ChaCha8Rng::seed_from_u64(7))
    }

    fn drain(net: &mut Network) -> Vec<Datagram> {
        std::iter::from_fn(|| net.pop()).collect()
    }

    #[test]
    fn multicast_reaches_every_other_node_once() {
        let mut net = net(5);
        net.send(
            Instant::ZERO,
            n(2),
            Destination::All,
            Bytes::from_static(b"x"),
        );
        let mut to: Vec<u32> = drain(&mut net).iter().map(|d| d.to.get()).collect();
        to.sort_unstable();
        assert_eq!(to, vec![1, 3, 4, 5]);
        net.send(
            Instant::ZERO,
            n(2),
            Destination::Node(n(2)),
            Bytes::from_static(b"self"),
        );
        net.send(
            Instant::ZERO,
            n(2),
            Destination::Node(n(9)),
            Bytes::from_static(b"nobody"),
        );
        let got = drain(&mut net);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].from, got[0].to), (n(2), n(2)));
        assert_eq!(net.stats().misaddressed, 1);
    }

    #[test]
    fn delays_order_arrivals_and_ties_keep_send_order() {
        let mut net = net(3);
        for i in 0..1000u64 {
            net.send(
                Instant::from_nanos(i * 1000),
                n(1),
                Destination::All,
                Bytes::from(i.to_be_bytes().to_vec()),
            );
        }
        let got = drain(&mut net);
        assert_eq!(got.len(), 2000);
        assert!(
            got.windows(2).all(|w| w[0].at <= w[1].at),
            "arrivals come out in time order"
        );
        for d in &got {
            let delay = d.at.as_nanos()
                - u64::from_be_bytes(d.payload[..8].try_into().expect("8 bytes")) * 1000;
            assert!(
                (LATENCY_RANGE_NS.0..=LATENCY_RANGE_NS.1 + 20_100).contains(&delay),
                "{delay}"
            );
        }
        // Same link, sends 1 µs apart, jitter 20 µs: a few overtake.
        let seqs: Vec<u64> = got
            .iter()
            .filter(|d| d.to == n(2))
            .map(|d| u64::from_be_bytes(d.payload[..8].try_into().expect("8 bytes")))
            .collect();
        assert!(
            seqs.windows(2).any(|w| w[0] > w[1]),
            "calm jitter reorders back-to-back sends"
        );
        // With 5 ms of jitter, sends 1 ms apart reorder a lot.
        net.set_jitter(Duration::from_millis(5));
        for i in 0..200u64 {
            net.send(
                Instant::from_nanos(i * 1_000_000),
                n(1),
                Destination::Node(n(2)),
                Bytes::from(i.to_be_bytes().to_vec()),
            );
        }
        let seqs: Vec<u64> = drain(&mut net)
            .iter()
            .map(|d| u64::from_be_bytes(d.payload[..8].try_into().expect("8 bytes")))
            .collect();
        assert!(seqs.windows(2).filter(|w| w[0] > w[1]).count() > 20);
        // Exact ties leave in send order.
        let mut a = Network::new(2, ChaCha8Rng::seed_from_u64(1));
        a.set_jitter(Duration::ZERO);
        for i in 0..10u8 {
            a.send(
                Instant::ZERO,
                n(1),
                Destination::Node(n(2)),
                Bytes::from(vec![i]),
            );
        }
        let order: Vec<u8> = drain(&mut a).iter().map(|d| d.payload[0]).collect();
        assert_eq!(order, (0..10).collect::<Vec<u8>>());
    }

    #[test]
    fn loss_rate_is_about_right() {
        let mut net = net(2);
        net.set_loss(0.3);
        let sends = 20_000;
        for i in 0..sends {
            net.send(
                Instant::from_nanos(i),
                n(1),
                Destination::All,
                Bytes::from_static(b"x"),
            );
        }
        let arrived = drain(&mut net).len() as f64;
        let rate = 1.0 - arrived / sends as f64;
        assert!((0.28..0.32).contains(&rate), "loss rate {rate}");
        assert_eq!(net.stats().lost + arrived as u64, sends);
    }

    #[test]
    fn duplication_makes_extra_copies() {
        let mut net = net(2);
        net.set_dup(0.1);
        for i in 0..10_000 {
            net.send(
                Instant::from_nanos(i),
                n(1),
                Destination::All,
                Bytes::from_static(b"x"),
            );
        }
        let arrived = drain(&mut net).len();
        assert!((10_800..11_200).contains(&arrived), "{arrived}");
    }

    #[test]
    fn partitions_block_both_ways_until_healed() {
        let mut net = net(5);
        net.partition(&[vec![n(1), n(2)], vec![n(3), n(4), n(5)]]);
        net.send(
            Instant::ZERO,
            n(1),
            Destination::All,
            Bytes::from_static(b"a"),
        );
        net.send(
            Instant::ZERO,
            n(4),
            Destination::All,
            Bytes::from_static(b"b"),
        );
        let got: Vec<(u32, u32)> = drain(&mut net)
            .iter()
            .map(|d| (d.from.get(), d.to.get()))
            .collect();
        let mut got = got;
        got.sort_unstable();
        assert_eq!(got, vec![(1, 2), (4, 3), (4, 5)]);
        assert_eq!(net.stats().blocked, 5);
        assert!(!net.can_reach(n(2), n(3)) && !net.can_reach(n(3), n(2)));
        net.heal_partition();
        net.send(
            Instant::ZERO,
            n(1),
            Destination::All,
            Bytes::from_static(b"a"),
        );
        assert_eq!(drain(&mut net).len(), 4);
    }

    #[test]
    fn one_way_link_blocks_one_direction() {
        let mut net = net(3);
        // 2 does not hear 1; 1 still hears 2.
        net.block_one_way(n(1), n(2));
        assert!(!net.can_reach(n(1), n(2)) && net.can_reach(n(2), n(1)));
        net.send(
            Instant::ZERO,
            n(1),
            Destination::Node(n(2)),
            Bytes::from_static(b"lost"),
        );
        net.send(
            Instant::ZERO,
            n(2),
            Destination::Node(n(1)),
            Bytes::from_static(b"heard"),
        );
        net.send(
            Instant::ZERO,
            n(1),
            Destination::Node(n(3)),
            Bytes::from_static(b"heard"),
        );
        let got: Vec<(u32, u32)> = drain(&mut net)
            .iter()
            .map(|d| (d.from.get(), d.to.get()))
            .collect();
        assert_eq!(got.len(), 2);
        assert!(got.contains(&(2, 1)) && got.contains(&(1, 3)));
        net.unblock_one_way(n(1), n(2));
        net.send(
            Instant::ZERO,
            n(1),
            Destination::Node(n(2)),
            Bytes::from_static(b"x"),
        );
        assert_eq!(drain(&mut net).len(), 1);
    }

    #[test]
    fn a_node_deaf_to_multicast_still_gets_unicasts() {
        let mut net = net(3);
        net.deafen_to_multicast(n(2));
        net.send(
            Instant::ZERO,
            n(1),
            Destination::All,
            Bytes::from_static(b"m"),
        );
        net.send(
            Instant::ZERO,
            n(1),
            Destination::Node(n(2)),
            Bytes::from_static(b"token"),
        );
        net.send(
            Instant::ZERO,
            n(2),
            Destination::All,
            Bytes::from_static(b"m2"),
        );
        let mut got: Vec<(u32, u32, Bytes)> = drain(&mut net)
            .into_iter()
            .map(|d| (d.from.get(), d.to.get(), d.payload))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                (1, 2, Bytes::from_static(b"token")),
                (1, 3, Bytes::from_static(b"m")),
                (2, 1, Bytes::from_static(b"m2")),
                (2, 3, Bytes::from_static(b"m2")),
            ],
            "2 sends to all and gets the unicast, not the multicast"
        );
        assert_eq!(net.stats().blocked, 1);
        net.undeafen_to_multicast(n(2));
        net.send(
            Instant::ZERO,
            n(1),
            Destination::All,
            Bytes::from_static(b"m"),
        );
        assert_eq!(drain(&mut net).len(), 2);
        net.deafen_to_multicast(n(2));
        net.heal_all();
        net.send(
            Instant::ZERO,
            n(1),
            Destination::All,
            Bytes::from_static(b"m"),
        );
        assert_eq!(drain(&mut net).len(), 2, "heal_all hears again");
    }

    #[test]
    fn same_seed_same_fate() {
        let run = || {
            let mut net = net(4);
            net.set_loss(0.2);
            net.set_dup(0.05);
            net.set_jitter(Duration::from_millis(3));
            for i in 0..500u64 {
                net.send(
                    Instant::from_nanos(i * 10_000),
                    n(1 + (i % 4) as u32),
                    Destination::All,
                    Bytes::from_static(b"p"),
                );
            }
            drain(&mut net)
                .iter()
                .map(|d| (d.at, d.from, d.to))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
