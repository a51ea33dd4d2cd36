//! The Totem single-ring protocol state machine (skeleton; being written).

use std::collections::VecDeque;

use bytes::Bytes;

use crate::config::ValidConfig;
use crate::ids::{NodeId, RingId};
use crate::time::Instant;
use crate::wire::Guarantee;


/// Where a datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Every configured node (the driver multicasts or unicasts to each).
    All,
    /// One node (the token and the commit token).
    Node(NodeId),
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub dest: Destination,
    /// The encoded packet.
    pub payload: Bytes,
}

/// An application message delivered in total order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The ring (configuration) the message was ordered in.
    pub ring_id: RingId,
    /// Its originator.
    pub origin: NodeId,
    /// The guarantee it was sent with.
    pub guarantee: Guarantee,
    /// The message as the originator passed it to `handle_mcast`.
    pub payload: Bytes,
}

/// Transitional or regular, as in extended virtual synchrony.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigKind {
    /// The members that come from the same old ring together; what is
    /// delivered after it (and before the regular one) was ordered in the
    /// old ring but only the transitional members are known to have it.
    Transitional,
    /// The new ring's full membership.
    Regular,
}

/// A configuration change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigChange {
    /// Transitional or regular.
    pub kind: ConfigKind,
    /// The ring: for a transitional configuration the new ring (whose
    /// installation it precedes).
    pub ring_id: RingId,
    /// Members, ascending.
    pub members: Vec<NodeId>,
    /// Members of the previous configuration that are not in this one.
    pub left: Vec<NodeId>,
    /// Members of this configuration that were not in the previous one.
    pub joined: Vec<NodeId>,
}

/// What the protocol tells its driver and the services above.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A message, in total order.
    Deliver(Delivery),
    /// A configuration change.
    ConfigChange(ConfigChange),
    /// The highest ring seq this node has used or seen grew: the driver
    /// must persist it and pass it back as `ring_seq_floor` after a restart.
    RingSeqHigh(u64),
}

/// Why a multicast request was refused. Nothing was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum McastError {
    /// The message exceeds `max_message_bytes`.
    #[error("message of {0} bytes exceeds the limit")]
    TooBig(usize),
    /// The send queue is full; try again once the ring has drained it.
    #[error("send queue full")]
    QueueFull,
    /// An empty message cannot be sent.
    #[error("empty message")]
    Empty,
}

/// The protocol state, named as in the Totem paper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingState {
    /// A ring is installed and the token circulates.
    Operational,
    /// Looking for members (join messages).
    Gather,
    /// The commit token circulates the proposed ring.
    Commit,
    /// The new ring exchanges the old rings' messages before installing.
    Recovery,
}

/// Counters, for ring-status tools and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Tokens received and handled.
    pub tokens_received: u64,
    /// Regular messages originated.
    pub mcasts_sent: u64,
    /// Regular messages retransmitted.
    pub mcasts_retransmitted: u64,
    /// Application messages delivered.
    pub delivered: u64,
    /// Token retransmissions after a timeout.
    pub token_retransmits: u64,
    /// Configurations installed (regular).
    pub rings_installed: u64,
    /// Datagrams dropped because they failed to decode.
    pub dropped_malformed: u64,
    /// Datagrams dropped because they belong to another ring or a stale state.
    pub dropped_foreign: u64,
    /// Datagrams dropped as duplicates.
    pub dropped_duplicate: u64,
}

/// One node's Totem protocol instance.
#[derive(Debug)]
pub struct Totem {
    config: ValidConfig,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl Totem {
    /// A node that starts in Gather, alone, at `now`.
    pub fn new(config: ValidConfig, now: Instant) -> Totem {
        let _ = now;
        Totem { config, transmits: VecDeque::new(), events: VecDeque::new(), stats: Stats::default() }
    }
    /// A datagram arrived.
    pub fn handle_packet(&mut self, now: Instant, datagram: &[u8]) {
        let _ = (now, datagram);
    }
    /// The time from `poll_timeout` has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
    }
    /// Queue an application message for total-order multicast.
    ///
    /// # Errors
    /// [`McastError`]; nothing is queued.
    pub fn handle_mcast(&mut self, now: Instant, payload: Bytes, guarantee: Guarantee) -> Result<(), McastError> {
        let _ = (now, payload, guarantee);
        Err(McastError::QueueFull)
    }
    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }
    /// Next event for the services.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.config.get().node_id
    }
    /// Current state.
    pub fn state(&self) -> RingState {
        RingState::Gather
    }
    /// The installed ring.
    pub fn ring_id(&self) -> RingId {
        RingId { seq: 0, rep: self.node_id() }
    }
    /// Members of the installed ring, ascending.
    pub fn members(&self) -> &[NodeId] {
        &[]
    }
    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}
