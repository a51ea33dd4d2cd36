//! A minimal lossless driver for protocol tests: N nodes, a fixed link delay,
//! per-link blocking. The full simulator with faults lives in `testsuite`.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use totem::{Destination, Event, Guarantee, Instant, NodeId, RingState, Totem, TotemConfig};

pub fn n(i: u32) -> NodeId {
    NodeId::new(i).expect("nonzero")
}

#[derive(Debug)]
pub struct Net {
    pub now: Instant,
    pub nodes: BTreeMap<NodeId, Totem>,
    pub events: BTreeMap<NodeId, Vec<Event>>,
    /// (arrival, counter) -> (to, bytes)
    inflight: BTreeMap<(Instant, u64), (NodeId, Bytes)>,
    counter: u64,
    pub delay: Duration,
    /// (from, to) pairs that drop everything.
    pub blocked: BTreeSet<(NodeId, NodeId)>,
    pub token_ms: u64,
    /// Every node's `accelerated_window` (0: the standard protocol).
    pub accelerated_window: u32,
}

impl Net {
    pub fn new(count: u32, token_ms: u64) -> Net {
        Net::accelerated(count, token_ms, 0)
    }

    /// Like [`Net::new`], every node with this `accelerated_window`.
    pub fn accelerated(count: u32, token_ms: u64, accelerated_window: u32) -> Net {
        let mut net = Net {
            now: Instant::from_nanos(0),
            nodes: BTreeMap::new(),
            events: BTreeMap::new(),
            inflight: BTreeMap::new(),
            counter: 0,
            delay: Duration::from_micros(100),
            blocked: BTreeSet::new(),
            token_ms,
            accelerated_window,
        };
        for i in 1..=count {
            net.start(n(i));
        }
        net
    }

    pub fn config(&self, id: NodeId) -> TotemConfig {
        let mut c = TotemConfig::new(id).with_token_timeout(Duration::from_millis(self.token_ms));
        c.accelerated_window = self.accelerated_window;
        c
    }

    pub fn start(&mut self, id: NodeId) {
        let cfg = self.config(id).validate().expect("valid");
        let t = Totem::new(cfg, self.now);
        self.nodes.insert(id, t);
        self.events.entry(id).or_default();
        self.drain(id);
    }

    pub fn crash(&mut self, id: NodeId) {
        self.nodes.remove(&id);
    }

    /// A clean shutdown: the node announces it leaves, its last datagrams
    /// go out, then it is gone.
    pub fn leave(&mut self, id: NodeId) {
        if let Some(t) = self.nodes.get_mut(&id) {
            t.leave(self.now);
        }
        self.drain(id);
        self.nodes.remove(&id);
    }

    fn drain(&mut self, id: NodeId) {
        let Some(t) = self.nodes.get_mut(&id) else {
            return;
        };
        let mut out = Vec::new();
        while let Some(tx) = t.poll_transmit() {
            out.push(tx);
        }
        while let Some(e) = t.poll_event() {
            self.events.entry(id).or_default().push(e);
        }
        for tx in out {
            // All means every node that may exist (ids 1..=32), so a node
            // started later hears announcements sent to it; packets for
            // nodes that are down are dropped on arrival.
            let targets: Vec<NodeId> = match tx.dest {
                Destination::All => (1..=32).map(n).filter(|&x| x != id).collect(),
                Destination::Node(x) => vec![x],
            };
            for to in targets {
                if self.blocked.contains(&(id, to)) {
                    continue;
                }
                self.counter += 1;
                self.inflight.insert(
                    (self.now + self.delay, self.counter),
                    (to, tx.datagram.to_bytes()),
                );
            }
        }
    }

    /// Runs until `until` of simulated time.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            let next_pkt = self.inflight.keys().next().map(|k| k.0);
            let next_timer = self.nodes.values().filter_map(|t| t.poll_timeout()).min();
            let next = match (next_pkt, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = next;
            if next_pkt == Some(next) {
                let (&key, _) = self.inflight.iter().next().expect("non-empty");
                let (to, bytes) = self.inflight.remove(&key).expect("present");
                if let Some(t) = self.nodes.get_mut(&to) {
                    t.handle_packet(self.now, bytes);
                    self.drain(to);
                }
            } else {
                let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
                for id in ids {
                    let due = self
                        .nodes
                        .get(&id)
                        .and_then(|t| t.poll_timeout())
                        .is_some_and(|d| d <= self.now);
                    if due {
                        if let Some(t) = self.nodes.get_mut(&id) {
                            t.handle_timeout(self.now);
                        }
                        self.drain(id);
                    }
                }
            }
        }
        self.now = until;
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    pub fn mcast(&mut self, id: NodeId, payload: &[u8], g: Guarantee) {
        let t = self.nodes.get_mut(&id).expect("live node");
        t.handle_mcast(self.now, Bytes::copy_from_slice(payload), g)
            .expect("queued");
        self.drain(id);
    }

    /// True when every live node is Operational in one ring of all live nodes.
    pub fn one_ring(&self) -> bool {
        let live: Vec<NodeId> = self.nodes.keys().copied().collect();
        let first = self.nodes.values().next().expect("a node").ring_id();
        self.nodes.values().all(|t| {
            t.state() == RingState::Operational
                && t.ring_id() == first
                && t.members() == live.as_slice()
        })
    }

    pub fn delivered(&self, id: NodeId) -> Vec<Vec<u8>> {
        self.events[&id]
            .iter()
            .filter_map(|e| match e {
                Event::Deliver(d) => Some(d.payload.to_vec()),
                _ => None,
            })
            .collect()
    }
}
