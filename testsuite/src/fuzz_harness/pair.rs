//! Two Totem instances (nodes 1 and 2) joined by a perfect in-memory
//! network, with node 1's inbox open to the fuzz input: it can replace,
//! mutate or add to what node 2 sends, the way a forged or corrupted
//! datagram would reach a daemon.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use totem::wire::{HEADER_BYTES, TRAILER_BYTES};
use totem::{Destination, Instant, NodeId, RingState, Totem, TotemConfig};

/// Most datagrams in flight; beyond it the oldest are lost (UDP would).
const MAX_IN_FLIGHT: usize = 1024;

/// The two nodes and what is in flight between them.
#[derive(Debug)]
pub struct Pair {
    /// Node 1 (index 0) and node 2 (index 1).
    pub nodes: [Totem; 2],
    /// Datagrams on their way to node 1 and to node 2.
    pub inbox: [VecDeque<Bytes>; 2],
    /// The clock.
    pub now: Instant,
}

fn id(n: u32) -> NodeId {
    NodeId::new(n).expect("1 and 2 are node ids")
}

impl Pair {
    /// Both nodes, run until they share an operational ring of two.
    ///
    /// # Panics
    /// If they do not form it in a simulated minute (a bug of ours).
    pub fn ready() -> Pair {
        let now = Instant::ZERO;
        let mk = |n| Totem::new(TotemConfig::new(id(n)).validate().expect("defaults"), now);
        let mut pair = Pair {
            nodes: [mk(1), mk(2)],
            inbox: [VecDeque::new(), VecDeque::new()],
            now,
        };
        for _ in 0..6000 {
            pair.step(Duration::from_millis(10));
            if pair
                .nodes
                .iter()
                .all(|t| t.state() == RingState::Operational && t.members().len() == 2)
            {
                return pair;
            }
        }
        panic!("two nodes did not form a ring");
    }

    /// Moves datagrams out of both nodes into the inboxes.
    fn collect(&mut self) {
        for from in 0..2 {
            while let Some(t) = self.nodes[from].poll_transmit() {
                let to = 1 - from;
                let reaches = match t.dest {
                    Destination::All => true,
                    Destination::Node(n) => n == id(to as u32 + 1),
                };
                if reaches {
                    if self.inbox[to].len() >= MAX_IN_FLIGHT {
                        self.inbox[to].pop_front();
                    }
                    self.inbox[to].push_back(t.datagram.to_bytes());
                }
            }
            while self.nodes[from].poll_event().is_some() {}
        }
    }

    /// Delivers everything node 2 has in flight to it; node 1's inbox is
    /// left for the input to take from.
    fn deliver_to_2(&mut self) {
        while let Some(d) = self.inbox[1].pop_front() {
            self.nodes[1].handle_packet(self.now, d);
            self.collect();
        }
    }

    /// One tick: fire timers, deliver everything in flight both ways.
    pub fn step(&mut self, by: Duration) {
        self.now = self.now + by;
        for n in &mut self.nodes {
            n.handle_timeout(self.now);
        }
        self.collect();
        for _ in 0..64 {
            if self.inbox.iter().all(VecDeque::is_empty) {
                break;
            }
            while let Some(d) = self.inbox[0].pop_front() {
                self.nodes[0].handle_packet(self.now, d);
                self.collect();
            }
            self.deliver_to_2();
        }
    }

    /// The next datagram node 2 sent to node 1, if any (running node 2 a
    /// little if none is in flight).
    pub fn take_for_1(&mut self) -> Option<Bytes> {
        if self.inbox[0].is_empty() {
            self.now = self.now + Duration::from_millis(5);
            for n in &mut self.nodes {
                n.handle_timeout(self.now);
            }
            self.collect();
            self.deliver_to_2();
        }
        self.inbox[0].pop_front()
    }

    /// Hands `datagram` to node 1 now.
    pub fn to_1(&mut self, datagram: Bytes) {
        self.nodes[0].handle_packet(self.now, datagram);
        self.collect();
        self.deliver_to_2();
    }
}

/// `datagram` with its CRC trailer recomputed, so a mutation reaches the
/// decoders behind the CRC check (a forger recomputes it too).
pub fn reseal(mut datagram: Vec<u8>) -> Bytes {
    if datagram.len() >= HEADER_BYTES + TRAILER_BYTES {
        let at = datagram.len() - TRAILER_BYTES;
        let crc = crc32fast::hash(&datagram[..at]);
        datagram[at..].copy_from_slice(&crc.to_be_bytes());
    }
    Bytes::from(datagram)
}
