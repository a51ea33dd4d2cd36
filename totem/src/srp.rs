//! The Totem single-ring protocol state machine: one node's view of the
//! ring, driven by packets, timeouts and local requests (Totem paper,
//! sections 3 and 4; states named as there: Operational, Gather, Commit,
//! Recovery).
//!
//! Life of a node: it starts in Gather, alone in a ring of its own. Gather
//! ends with consensus on a member list (see [`crate::membership`]); the
//! lowest member sends the commit token around the new ring twice: on the
//! first rotation each member writes what it has of its old ring and enters
//! Commit, on the second each enters Recovery. The representative then
//! starts the new ring's token; members re-send their old rings' messages
//! (see [`crate::recovery`]) and, once every member has them all, install the
//! ring: they deliver the rest of the old ring, the transitional and the
//! regular configuration, and are Operational. A lost token, a join from a
//! member, a stalled member or a reachable foreign ring starts Gather again.
//!
//! Deviations from the paper, each explained where it lives: per-member arus
//! in the token ([`crate::token`]); reachability announcements and the
//! connectivity rule in Gather ([`crate::membership`]); the commit token is
//! retransmitted like the token; delivery after a gap in the transitional
//! configuration ([`crate::recovery`]); a lone node forms its own ring only
//! after one consensus timeout, so nodes started together form one ring
//! instead of several that then merge; on token loss, members not heard
//! from within the token timeout are failed at once instead of after the
//! consensus timeout, which is what makes failure detection take about one
//! token timeout; a join older than its sender's epoch (the highest ring
//! seq its packets showed) is left over from an earlier round and dropped
//! ([`crate::membership`]), where the paper assumes joins of a finished
//! round no longer arrive.
//!
//! # The accelerated ring (option)
//! With `accelerated_window` > 0 the Operational token visit follows the
//! Accelerated Ring protocol of Babay and Amir ("Fast total ordering for
//! modern data centers", ICDCS 2016, as in Spread): the holder gives every
//! new message of this visit its seq at once, multicasts retransmissions
//! and all but the last `accelerated_window` of its new messages, passes
//! the token (whose seq already counts the rest), and only then multicasts
//! the rest. The next holder starts while this one is still sending. The
//! token now overtakes messages, so a member requests retransmission only
//! of missing messages up to the seq of the token it passed on its
//! previous visit (one round old; `Circulation::rtr_horizon`): anything
//! above may still be in flight. That bound is in the standard protocol
//! too (a token overtakes large messages there as well), so the option
//! changes only the order of a visit's sends. Flow control, the per-member
//! arus and safe delivery are unchanged: each member reports its own aru,
//! which is correct whatever overtook what. Recovery's visits stay
//! standard (they are few, and installation waits for every aru to reach
//! the token's seq anyway).

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;

use crate::config::ValidConfig;
use crate::ids::{NodeId, RingId, Seq};
use crate::membership::{Gather, JoinOutcome, Reachability};
use crate::ordering::{Insert, Log};
use crate::packing::{Packer, Unpacker};
use crate::recovery::RecoveryPlan;
use crate::time::Instant;
use crate::timer::{Timer, TimerTable};
use crate::token::{self, ReceiveStall};
use crate::wire::{
    max_frame_bytes, Body, CommitToken, Datagram, Guarantee, Hello, Join, Mcast, McastContent,
    MemberEntry, Packet, Recovered, Token, WireState, MAX_MEMBERS, MAX_RTR_ENTRIES,
};

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
    /// The encoded packet, in pieces (a large Mcast frame is not copied).
    pub datagram: Datagram,
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
    /// Regular messages originated (frames, including recovered ones).
    pub mcasts_sent: u64,
    /// Regular messages retransmitted on request.
    pub mcasts_retransmitted: u64,
    /// Application messages delivered.
    pub delivered: u64,
    /// Token (or commit token) retransmissions after a timeout.
    pub token_retransmits: u64,
    /// Regular configurations installed.
    pub rings_installed: u64,
    /// Times this node entered Gather.
    pub gathers: u64,
    /// Datagrams dropped because they failed to decode.
    pub dropped_malformed: u64,
    /// Datagrams dropped because they belong to another ring or state.
    pub dropped_foreign: u64,
    /// Datagrams dropped as duplicates.
    pub dropped_duplicate: u64,
    /// Frames that did not unpack (bad fragment chain from a peer).
    pub dropped_frames: u64,
    /// Messages refused because they were too far ahead of our aru.
    pub dropped_too_far_ahead: u64,
    /// Joins dropped as left over from an earlier membership round: their
    /// sender had shown a higher ring seq before (see `membership`).
    pub dropped_stale: u64,
    /// Token visits on which this node claimed the window because its
    /// local receivers lagged ([`Totem::set_receivers_congested`]).
    pub congested_visits: u64,
    /// Tokens whose seq was above every message received here when they
    /// arrived: messages they cover were still in flight (the token
    /// overtook them, as the accelerated ring makes it do on purpose) or
    /// were lost.
    pub tokens_ahead_of_messages: u64,
    /// New messages multicast after the token was passed on
    /// (`accelerated_window`); included in `mcasts_sent`.
    pub mcasts_sent_after_token: u64,
    /// HoldCancel packets sent: this node had messages to send on a ring
    /// idle long enough that the representative may hold the token.
    pub hold_cancels_sent: u64,
    /// Held tokens passed on early because a member asked (HoldCancel),
    /// or not held because one had asked.
    pub holds_cancelled: u64,
}

/// How many windows' worth of messages may be outstanding (sent but not yet
/// received by every member). Bounds every receive log.
const OUTSTANDING_WINDOWS: u64 = 8;

/// How many copies of its leave announcement a leaving node sends.
pub const LEAVE_REPEATS: usize = 3;

/// The ring this node has installed (during a membership change: the old
/// ring whose messages Recovery completes).
#[derive(Debug)]
struct Installed {
    members: Vec<NodeId>,
    log: Log,
}

impl Installed {
    fn id(&self) -> RingId {
        self.log.ring_id()
    }
}

/// Token bookkeeping of a ring whose token this node handles.
#[derive(Debug)]
struct Circulation {
    ring_id: RingId,
    members: Vec<NodeId>,
    my_index: usize,
    /// Highest token_seq handled, to drop duplicates.
    last_token_seq: Option<u64>,
    /// What we forwarded last, to retransmit it.
    forwarded: Option<Forwarded>,
    /// A token held on an idle ring (or a lone node's own token).
    held: Option<Token>,
    /// We asked the representative to stop holding the token and have not
    /// seen the token since (one HoldCancel per wait, not one per message).
    cancel_sent: bool,
    /// Representative: a member asked us to stop holding while we did not
    /// hold (the request overtook the token); the next idle visit passes
    /// the token on instead of holding it.
    cancel_requested: bool,
    my_last_sent: u32,
    my_last_backlog: u32,
    idle_rotations: u32,
    last_seen_seq: Seq,
    /// The token's seq when we forwarded it last: every message up to it
    /// has had a whole rotation to arrive. Only those are requested again
    /// (the rest may still be in flight).
    rtr_horizon: Seq,
    stall: ReceiveStall,
}

impl Circulation {
    fn new(ring_id: RingId, members: Vec<NodeId>, me: NodeId) -> Circulation {
        let my_index = members.iter().position(|&m| m == me).unwrap_or(0);
        Circulation {
            ring_id,
            members,
            my_index,
            last_token_seq: None,
            forwarded: None,
            held: None,
            cancel_sent: false,
            cancel_requested: false,
            my_last_sent: 0,
            my_last_backlog: 0,
            idle_rotations: 0,
            last_seen_seq: Seq::ZERO,
            rtr_horizon: Seq::ZERO,
            stall: ReceiveStall::default(),
        }
    }

    fn next(&self) -> NodeId {
        self.members[(self.my_index + 1) % self.members.len()]
    }

    fn is_rep(&self) -> bool {
        self.my_index == 0
    }

    /// True for a token we have not handled yet.
    fn accept(&mut self, token_seq: u64) -> bool {
        if self.last_token_seq.is_some_and(|l| token_seq <= l) {
            return false;
        }
        self.last_token_seq = Some(token_seq);
        true
    }
}

/// A packet we forwarded and may have to send again.
#[derive(Clone, Debug)]
struct Forwarded {
    to: NodeId,
    bytes: Bytes,
    /// The ring's seq when we forwarded: a message above it proves the
    /// token moved on.
    seq: Seq,
}

#[derive(Debug)]
struct CommitPhase {
    ring_id: RingId,
    gather: Gather,
    last_token_seq: u64,
    forwarded: Option<Forwarded>,
}

#[derive(Debug)]
struct RecoveryPhase {
    gather: Gather,
    plan: RecoveryPlan,
    new_log: Log,
    circ: Circulation,
    to_resend: VecDeque<Mcast>,
    last_commit_seq: u64,
}

#[derive(Debug)]
enum Phase {
    Operational(Circulation),
    Gather(GatherPhase),
    Commit(CommitPhase),
    Recovery(Box<RecoveryPhase>),
}

#[derive(Debug)]
struct GatherPhase {
    gather: Gather,
    /// The consensus timeout fired at least once this round (a lone node
    /// only forms its own ring after that).
    waited: bool,
}

/// Why Gather is entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GatherCause {
    /// Start-up, or a join / foreign ring worth merging with.
    Join,
    /// The token (or commit token) was lost: fail the members not heard.
    TokenLoss,
    /// A member stopped receiving.
    ReceiveStall,
}

/// One node's Totem protocol instance.
#[derive(Debug)]
pub struct Totem {
    cfg: ValidConfig,
    me: NodeId,
    timers: TimerTable,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// Packets this node sends to itself (a lone node's commit token).
    loopback: VecDeque<Packet>,
    stats: Stats,
    packer: Packer,
    unpacker: Unpacker,
    reach: Reachability,
    ring: Installed,
    max_ring_seq: u64,
    phase: Phase,
    /// Set by [`Totem::leave`]: the instance takes no more input.
    left: bool,
    /// Local receivers lag: claim the window, send nothing new.
    congested: bool,
}

impl Totem {
    /// A node that starts at `now` in Gather, in a ring of its own.
    pub fn new(cfg: ValidConfig, now: Instant) -> Totem {
        let c = cfg.get();
        let me = c.node_id;
        // A ring id no real ring can have: real rings use multiples of 4.
        let start_seq = c.ring_seq_floor / 4 * 4 + 1;
        let ring_id = RingId {
            seq: start_seq,
            rep: me,
        };
        let limit = Self::limit_ahead(&cfg);
        let packer = Packer::new(
            max_frame_bytes(c.netmtu_bytes),
            c.max_message_bytes,
            c.send_queue_bytes,
        )
        .with_queue_limit_messages(c.send_queue_messages);
        let mut t = Totem {
            me,
            timers: TimerTable::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            loopback: VecDeque::new(),
            stats: Stats::default(),
            packer,
            unpacker: Unpacker::new(c.max_message_bytes),
            reach: Reachability::new(me, cfg.heard_window(), now),
            ring: Installed {
                members: vec![me],
                log: Log::new(ring_id, limit),
            },
            max_ring_seq: start_seq,
            phase: Phase::Gather(GatherPhase {
                gather: Gather::new([me].into(), BTreeSet::new()),
                waited: false,
            }),
            cfg,
            left: false,
            congested: false,
        };
        t.send_hello(now);
        t.enter_gather(now, GatherCause::Join, &[], &[]);
        t
    }

    fn limit_ahead(cfg: &ValidConfig) -> u64 {
        let w = u64::from(cfg.get().window_size);
        w * OUTSTANDING_WINDOWS + w
    }

    fn max_outstanding(&self) -> u64 {
        u64::from(self.cfg.get().window_size) * OUTSTANDING_WINDOWS
    }

    fn effective_hold(&self) -> Duration {
        self.cfg
            .get()
            .token_hold
            .min(self.cfg.token_retransmit_timeout() / 2)
    }

    // ----- public inputs -------------------------------------------------

    /// A datagram arrived. Malformed, foreign and duplicate datagrams are
    /// dropped and counted in [`Stats`]; nothing a peer sends can panic.
    pub fn handle_packet(&mut self, now: Instant, datagram: Bytes) {
        if self.left {
            return;
        }
        match Packet::decode(&datagram) {
            Ok(p) if p.sender != self.me => self.on_packet(now, p),
            Ok(_) => self.stats.dropped_foreign += 1,
            Err(_) => self.stats.dropped_malformed += 1,
        }
        self.drain_loopback(now);
    }

    /// The time from [`Totem::poll_timeout`] has come. Fires every expired
    /// timer; an early or spurious call does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.left {
            return;
        }
        while let Some(t) = self.timers.pop_expired(now) {
            self.on_timer(now, t);
            self.drain_loopback(now);
        }
    }

    /// Queues an application message for total-order multicast. It is sent
    /// when this node next holds the token of an installed ring and
    /// delivered to every member, this node included, in the one order.
    ///
    /// # Errors
    /// [`McastError::Empty`], [`McastError::TooBig`], or
    /// [`McastError::QueueFull`] (try again after the ring drained some);
    /// nothing is queued then.
    pub fn handle_mcast(
        &mut self,
        now: Instant,
        payload: Bytes,
        guarantee: Guarantee,
    ) -> Result<(), McastError> {
        if self.left {
            return Err(McastError::QueueFull);
        }
        self.packer.push(payload, guarantee)?;
        if let Phase::Operational(circ) = &mut self.phase {
            if let Some(token) = circ.held.take() {
                self.timers.stop(Timer::TokenHold);
                self.operational_token(now, token);
                self.drain_loopback(now);
            } else {
                self.cancel_hold();
            }
        }
        Ok(())
    }

    /// On an idle ring the representative holds the token for up to
    /// `token_hold` (see `on_token`); a message queued elsewhere would wait
    /// all that time (about 100 ms with the defaults). So a member that
    /// has something to send on a ring that has been idle long enough for
    /// the token to be held asks the representative to pass it on now, as
    /// corosync's token hold cancel does. A lost request costs only the
    /// wait it was meant to save.
    fn cancel_hold(&mut self) {
        let hold_after = self.cfg.get().seqno_unchanged_const;
        let Phase::Operational(circ) = &mut self.phase else {
            return;
        };
        // The representative counts the same idle rotations one visit
        // before or after us: ask from one rotation early.
        if circ.is_rep() || circ.cancel_sent || circ.idle_rotations.saturating_add(1) < hold_after {
            return;
        }
        circ.cancel_sent = true;
        let (ring_id, rep) = (circ.ring_id, circ.members[0]);
        self.stats.hold_cancels_sent += 1;
        let p = self.packet(ring_id, Body::HoldCancel);
        self.send(Destination::Node(rep), p);
    }

    fn on_hold_cancel(&mut self, now: Instant, sender: NodeId, ring_id: RingId) {
        let Phase::Operational(circ) = &mut self.phase else {
            self.stats.dropped_foreign += 1;
            return;
        };
        if ring_id != circ.ring_id || !circ.members.contains(&sender) {
            self.stats.dropped_foreign += 1;
            return;
        }
        if let Some(token) = circ.held.take() {
            self.stats.holds_cancelled += 1;
            self.timers.stop(Timer::TokenHold);
            self.operational_token(now, token);
        } else if circ.is_rep() {
            circ.cancel_requested = true;
        }
    }

    /// Whether this node's local receivers (the clients the driver delivers
    /// to) lag behind. While set, on each token visit this node sends no
    /// new messages and counts the whole window as its own in the token's
    /// flow-control count, so no member sends new messages either: the
    /// ring delivers what is in flight (retransmissions go on) and the
    /// receivers catch up. Deviation from Totem and corosync, which have no
    /// receiver-driven flow control (there a lagging local reader is
    /// overrun and dropped). The driver must clear it within a bounded
    /// time: a reader that never reads must not stop the ring.
    pub fn set_receivers_congested(&mut self, congested: bool) {
        self.congested = congested;
    }

    /// Leaves the ring for good (a clean shutdown): tells every node, with
    /// a join that lists this node as failed, so the members start a new
    /// membership round at once instead of waiting for the token timeout.
    /// The join goes out [`LEAVE_REPEATS`] times against loss. Afterwards
    /// the instance ignores every input and sets no timer; the driver
    /// sends what [`Totem::poll_transmit`] still returns, then drops it.
    ///
    /// Messages this node queued but did not send are lost; those it sent
    /// are delivered to the survivors by their recovery, as after a crash.
    pub fn leave(&mut self, _now: Instant) {
        if self.left {
            return;
        }
        let mut proc_set: Vec<NodeId> = self.ring.members.clone();
        if !proc_set.contains(&self.me) {
            proc_set.push(self.me);
        }
        proc_set.sort_unstable();
        proc_set.truncate(MAX_MEMBERS);
        let join = Join {
            max_ring_seq: self.max_ring_seq,
            proc_set,
            fail_set: vec![self.me],
        };
        log::debug!("node {} leaves ring {:?}", self.me, self.ring.id());
        for _ in 0..LEAVE_REPEATS {
            let p = self.packet(self.ring.id(), Body::Join(join.clone()));
            self.send(Destination::All, p);
        }
        self.timers = TimerTable::default();
        self.loopback.clear();
        self.left = true;
    }

    /// Whether [`Totem::leave`] was called.
    pub fn has_left(&self) -> bool {
        self.left
    }

    // ----- public outputs ------------------------------------------------

    /// The next datagram to send (drain first, see the crate docs).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next delivery or configuration change (drain second).
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Totem::handle_timeout`] must be called next (arm it third).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.me
    }

    /// The protocol state.
    pub fn state(&self) -> RingState {
        match self.phase {
            Phase::Operational(_) => RingState::Operational,
            Phase::Gather(_) => RingState::Gather,
            Phase::Commit(_) => RingState::Commit,
            Phase::Recovery(_) => RingState::Recovery,
        }
    }

    /// The installed ring (before the first installation: this node's own
    /// start-up ring, which no other node shares).
    pub fn ring_id(&self) -> RingId {
        self.ring.id()
    }

    /// Members of the installed ring, ascending.
    pub fn members(&self) -> &[NodeId] {
        &self.ring.members
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Bytes of application messages waiting to be sent.
    pub fn queued_bytes(&self) -> usize {
        self.packer.queued_bytes()
    }

    // ----- sending ---------------------------------------------------------

    fn packet(&self, ring_id: RingId, body: Body) -> Packet {
        Packet {
            sender: self.me,
            ring_id,
            body,
        }
    }

    fn send(&mut self, dest: Destination, p: Packet) -> Bytes {
        if dest == Destination::Node(self.me) {
            self.loopback.push_back(p.clone());
            return p.encode();
        }
        let payload = p.encode();
        self.transmits.push_back(Transmit {
            dest,
            datagram: Datagram::from(payload.clone()),
        });
        payload
    }

    fn drain_loopback(&mut self, now: Instant) {
        // Bounded: only the commit token of a lone node travels this way,
        // twice per ring formation.
        while let Some(p) = self.loopback.pop_front() {
            self.on_packet(now, p);
        }
    }

    fn send_hello(&mut self, now: Instant) {
        let state = match self.phase {
            Phase::Operational(_) => WireState::Operational,
            Phase::Gather(_) => WireState::Gather,
            Phase::Commit(_) => WireState::Commit,
            Phase::Recovery(_) => WireState::Recovery,
        };
        let hello = Hello {
            state,
            members: self.ring.members.clone(),
            heard: self.reach.heard_set(now),
        };
        let p = self.packet(self.ring.id(), Body::Hello(hello));
        self.send(Destination::All, p);
        self.timers
            .set(Timer::Hello, now + self.cfg.get().merge_timeout);
    }

    /// Raises the highest ring seq seen, and has the driver persist it: a
    /// restarted node must start above every seq it showed others (its
    /// joins carry it, see `Reachability::join_is_current`).
    fn note_ring_seq(&mut self, seq: u64) {
        if seq > self.max_ring_seq {
            self.max_ring_seq = seq;
            self.events.push_back(Event::RingSeqHigh(seq));
        }
    }

    // ----- packet dispatch -----------------------------------------------

    fn on_packet(&mut self, now: Instant, p: Packet) {
        if p.sender != self.me {
            self.reach.heard(now, p.sender);
            if !matches!(p.body, Body::Join(_)) {
                // The sender has seen this ring's seq (it proposed, formed,
                // circulates or installed the ring): its later joins carry
                // at least this much. Joins are judged in their own arm.
                self.note_ring_seq(p.ring_id.seq);
                self.reach.note_epoch(p.sender, p.ring_id.seq);
            }
        }
        match p.body {
            Body::Mcast(m) => self.on_mcast(p.ring_id, m),
            Body::Token(t) => self.on_token(now, p.ring_id, t),
            Body::Join(j) => {
                let epoch = j.max_ring_seq.max(p.ring_id.seq);
                self.note_ring_seq(epoch);
                if self.reach.join_is_current(p.sender, epoch) {
                    self.on_join(now, p.sender, &j);
                } else {
                    log::debug!(
                        "node {}: stale join of node {} from {:?} ignored",
                        self.me,
                        p.sender,
                        p.ring_id
                    );
                    self.stats.dropped_stale += 1;
                }
            }
            Body::Commit(ct) => {
                self.note_ring_seq(p.ring_id.seq);
                self.on_commit(now, p.ring_id, ct);
            }
            Body::Hello(h) => self.on_hello(now, p.sender, p.ring_id, h),
            Body::HoldCancel => self.on_hold_cancel(now, p.sender, p.ring_id),
        }
    }

    fn on_mcast(&mut self, ring_id: RingId, m: Mcast) {
        match &mut self.phase {
            Phase::Operational(circ) if ring_id == circ.ring_id => {
                // While we hold the token nobody else assigns seqs: a higher
                // one is forged, and storing it would make the seq we assign
                // on resuming a duplicate (operational_token asserts fresh).
                if circ.held.as_ref().is_some_and(|h| m.seq > h.seq) {
                    self.stats.dropped_malformed += 1;
                    return;
                }
                if circ.forwarded.as_ref().is_some_and(|f| m.seq > f.seq) {
                    circ.forwarded = None;
                    self.timers.stop(Timer::TokenRetransmit);
                }
                self.store(m);
                self.deliver_ready();
            }
            // Late messages of the old ring are still welcome until we
            // report our old-ring state in the commit token.
            Phase::Gather(_) if ring_id == self.ring.id() => {
                self.store(m);
                self.deliver_ready();
            }
            Phase::Recovery(rec) if ring_id == rec.circ.ring_id => {
                if rec.circ.forwarded.as_ref().is_some_and(|f| m.seq > f.seq) {
                    rec.circ.forwarded = None;
                    self.timers.stop(Timer::TokenRetransmit);
                }
                if let McastContent::Recovered(r) = &m.content {
                    if r.old_ring == self.ring.log.ring_id() {
                        let old = Mcast {
                            seq: r.old_seq,
                            origin: r.old_origin,
                            guarantee: r.old_guarantee,
                            content: McastContent::Frame(r.frame.clone()),
                        };
                        if self.ring.log.insert(old) == Insert::TooFarAhead {
                            self.stats.dropped_too_far_ahead += 1;
                        }
                    }
                }
                match rec.new_log.insert(m) {
                    Insert::New => {}
                    Insert::Duplicate => self.stats.dropped_duplicate += 1,
                    Insert::TooFarAhead => self.stats.dropped_too_far_ahead += 1,
                }
            }
            _ => self.stats.dropped_foreign += 1,
        }
    }

    /// Stores a message of the installed ring.
    fn store(&mut self, m: Mcast) {
        match self.ring.log.insert(m) {
            Insert::New => {}
            Insert::Duplicate => self.stats.dropped_duplicate += 1,
            Insert::TooFarAhead => self.stats.dropped_too_far_ahead += 1,
        }
    }

    /// Delivers what the installed ring's order allows.
    fn deliver_ready(&mut self) {
        while let Some(m) = self.ring.log.pop_deliverable() {
            self.deliver_frame(self.ring.id(), &m);
        }
    }

    fn deliver_frame(&mut self, ring_id: RingId, m: &Mcast) {
        let McastContent::Frame(frame) = &m.content else {
            // A recovered old-ring message occupies a seq of the new ring
            // but is delivered as part of its old ring.
            return;
        };
        let events = &mut self.events;
        let stats = &mut self.stats;
        let (origin, guarantee) = (m.origin, m.guarantee);
        let res = self.unpacker.push_frame(origin, frame, &mut |payload| {
            stats.delivered += 1;
            events.push_back(Event::Deliver(Delivery {
                ring_id,
                origin,
                guarantee,
                payload,
            }));
        });
        if res.is_err() {
            self.stats.dropped_frames += 1;
        }
    }

    // ----- the token -----------------------------------------------------

    fn on_token(&mut self, now: Instant, ring_id: RingId, t: Token) {
        let n_members = match &self.phase {
            Phase::Operational(c) if c.ring_id == ring_id => c.members.len(),
            Phase::Recovery(r) if r.circ.ring_id == ring_id => r.circ.members.len(),
            _ => {
                self.stats.dropped_foreign += 1;
                return;
            }
        };
        if t.member_aru.len() != n_members {
            self.stats.dropped_malformed += 1;
            return;
        }
        // A genuine token's seq is at least every seq sent in the ring
        // before it was forwarded, and flow control keeps it within reach of
        // our aru. Anything else is stale or forged; dropping it keeps the
        // invariant that our own new messages get fresh seqs in bounds.
        let log = self.circulating_log();
        if t.seq < log.high() || t.seq.0 > log.aru().0.saturating_add(self.max_outstanding()) {
            self.stats.dropped_malformed += 1;
            return;
        }
        match &mut self.phase {
            Phase::Operational(circ) => {
                if !circ.accept(t.token_seq) {
                    self.stats.dropped_duplicate += 1;
                    return;
                }
                self.stats.tokens_received += 1;
                if t.seq > self.ring.log.high() {
                    self.stats.tokens_ahead_of_messages += 1;
                }
                self.timers
                    .set(Timer::TokenLoss, now + self.cfg.get().token_timeout);
                let idle = t.seq == circ.last_seen_seq && t.rtr.is_empty() && t.backlog == 0;
                circ.idle_rotations = if idle {
                    circ.idle_rotations.saturating_add(1)
                } else {
                    0
                };
                circ.last_seen_seq = t.seq;
                circ.cancel_sent = false;
                // A request that came since the last visit is for this one.
                let cancelled = std::mem::take(&mut circ.cancel_requested);
                let may_hold = circ.is_rep() || circ.members.len() == 1;
                let hold = may_hold
                    && circ.idle_rotations >= self.cfg.get().seqno_unchanged_const
                    && self.packer.is_empty();
                if hold && cancelled {
                    self.stats.holds_cancelled += 1;
                } else if hold {
                    circ.held = Some(t);
                    circ.forwarded = None;
                    self.timers.stop(Timer::TokenRetransmit);
                    self.timers
                        .set(Timer::TokenHold, now + self.effective_hold());
                    return;
                }
                self.operational_token(now, t);
            }
            Phase::Recovery(rec) => {
                if !rec.circ.accept(t.token_seq) {
                    self.stats.dropped_duplicate += 1;
                    return;
                }
                self.stats.tokens_received += 1;
                self.recovery_token(now, t);
            }
            _ => {}
        }
    }

    /// The log of the ring whose token we handle: the new ring's in
    /// Recovery, the installed ring's otherwise.
    fn circulating_log(&self) -> &Log {
        match &self.phase {
            Phase::Recovery(r) => &r.new_log,
            _ => &self.ring.log,
        }
    }

    /// Multicasts one of our ring's messages.
    fn send_mcast(&mut self, ring_id: RingId, m: Mcast) {
        let p = self.packet(ring_id, Body::Mcast(m));
        // The frame goes out as the buffer the log holds, not copied.
        self.transmits.push_back(Transmit {
            dest: Destination::All,
            datagram: p.encode_datagram(),
        });
    }

    /// Retransmits what the token asks for and we hold (at most a window);
    /// the rest of the requests stay on the token for others.
    fn serve_retransmits(&mut self, t: &mut Token, ring_id: RingId) {
        let window = usize::try_from(self.cfg.get().window_size).unwrap_or(usize::MAX);
        let floor = token::min_aru(t);
        let log = self.circulating_log();
        let mut resend = Vec::new();
        let mut keep = Vec::with_capacity(t.rtr.len());
        for &s in t.rtr.iter().filter(|&&s| s > floor) {
            match log.get(s) {
                Some(m) if resend.len() < window => resend.push(m.clone()),
                _ => keep.push(s),
            }
        }
        t.rtr = keep;
        for m in resend {
            self.send_mcast(ring_id, m);
            self.stats.mcasts_retransmitted += 1;
        }
    }

    /// The end of every token visit, in Operational and Recovery alike:
    /// flow-control accounting, our aru, our retransmission requests, the
    /// safe line.
    fn end_visit(
        t: &mut Token,
        circ: &mut Circulation,
        log: &mut Log,
        sent: u32,
        backlog_now: u32,
    ) {
        token::account(
            t,
            circ.my_last_sent,
            sent,
            circ.my_last_backlog,
            backlog_now,
        );
        circ.my_last_sent = sent;
        circ.my_last_backlog = backlog_now;
        t.member_aru[circ.my_index] = log.aru();
        // Request only what was sent before our previous visit ended: a
        // message sent since may still be on its way (a token overtakes a
        // large message), and asking for it would have it sent twice.
        let room = MAX_RTR_ENTRIES.saturating_sub(t.rtr.len());
        for s in log.missing(circ.rtr_horizon.min(t.seq), room) {
            // The one-round-old bound (what the accelerated ring relies on:
            // messages sent after the token passed us last are not asked
            // for); upheld by `missing`, which stops at its bound.
            assert!(
                s <= circ.rtr_horizon,
                "rtr {s:?} beyond the horizon {:?}",
                circ.rtr_horizon
            );
            if !t.rtr.contains(&s) {
                t.rtr.push(s);
            }
        }
        t.rtr.sort_unstable();
        circ.rtr_horizon = t.seq;
        log.set_safe_line(token::min_aru(t));
    }

    fn operational_token(&mut self, now: Instant, mut t: Token) {
        let Phase::Operational(circ) = &mut self.phase else {
            return;
        };
        circ.forwarded = None;
        self.timers.stop(Timer::TokenRetransmit);
        let ring_id = circ.ring_id;
        let my_index = circ.my_index;
        let stalled = circ
            .stall
            .observe(&t, my_index, self.cfg.get().fail_recv_const)
            .map(|i| circ.members[i]);
        if let Some(member) = stalled {
            log::warn!(
                "member {member} has not received for {} rotations: removing it",
                self.cfg.get().fail_recv_const
            );
            self.enter_gather(now, GatherCause::ReceiveStall, &[], &[member]);
            return;
        }
        self.serve_retransmits(&mut t, ring_id);
        // New messages, as flow control allows. Our own entry is what we
        // really have, whatever the token claims.
        t.member_aru[my_index] = self.ring.log.aru();
        let Phase::Operational(circ) = &mut self.phase else {
            return;
        };
        let backlog = self.packer.backlog_frames();
        let c = self.cfg.get();
        let (allowed, claimed) = if self.congested {
            self.stats.congested_visits += 1;
            (0, c.window_size)
        } else {
            let allowed = token::allowed_to_send(
                &t,
                c.window_size,
                c.max_messages,
                circ.my_last_sent,
                backlog,
                self.max_outstanding(),
            );
            (allowed, 0)
        };
        let accelerated_window = usize::try_from(c.accelerated_window).unwrap_or(usize::MAX);
        // Every new message of this visit gets its seq now, so the token
        // we pass on covers them all, including those multicast after it.
        let mut fresh: Vec<Mcast> = Vec::new();
        let mut sent = 0;
        while sent < allowed {
            let Some((guarantee, frame)) = self.packer.next_frame() else {
                break;
            };
            t.seq = t.seq.next();
            let m = Mcast {
                seq: t.seq,
                origin: self.me,
                guarantee,
                content: McastContent::Frame(frame),
            };
            let inserted = self.ring.log.insert(m.clone());
            // on_token checked high <= t.seq <= aru + max_outstanding and
            // flow control keeps us within that room: the seq is fresh.
            assert_eq!(inserted, Insert::New, "own message {:?} must be new", t.seq);
            fresh.push(m);
            sent += 1;
        }
        // Accelerated ring: the last `accelerated_window` of them leave
        // after the token (none with the standard protocol).
        let after_token = fresh.split_off(fresh.len() - fresh.len().min(accelerated_window));
        for m in fresh {
            self.send_mcast(ring_id, m);
            self.stats.mcasts_sent += 1;
        }
        let backlog_now = self.packer.backlog_frames();
        let Phase::Operational(circ) = &mut self.phase else {
            return;
        };
        // A congested visit counts as having sent the whole window.
        Self::end_visit(
            &mut t,
            circ,
            &mut self.ring.log,
            sent.max(claimed),
            backlog_now,
        );
        self.deliver_ready();
        // The messages sent after the token are the last ones assigned
        // (split_off keeps the tail): the token's seq, which the next
        // holder starts from, already counts them.
        if let Some(last) = after_token.last() {
            assert_eq!(last.seq, t.seq, "the token covers what follows it");
        }
        self.forward_token(now, t);
        for m in after_token {
            self.send_mcast(ring_id, m);
            self.stats.mcasts_sent += 1;
            self.stats.mcasts_sent_after_token += 1;
        }
    }

    fn recovery_token(&mut self, now: Instant, mut t: Token) {
        let old_ring = self.ring.id();
        let Phase::Recovery(rec) = &mut self.phase else {
            return;
        };
        rec.circ.forwarded = None;
        self.timers.stop(Timer::TokenRetransmit);
        self.timers
            .set(Timer::TokenLoss, now + self.cfg.get().token_timeout);
        let ring_id = rec.circ.ring_id;
        self.serve_retransmits(&mut t, ring_id);
        let max_outstanding = self.max_outstanding();
        let Phase::Recovery(rec) = &mut self.phase else {
            return;
        };
        let c = self.cfg.get();
        t.member_aru[rec.circ.my_index] = rec.new_log.aru();
        let backlog = u32::try_from(rec.to_resend.len()).unwrap_or(u32::MAX);
        let allowed = token::allowed_to_send(
            &t,
            c.window_size,
            c.max_messages,
            rec.circ.my_last_sent,
            backlog,
            max_outstanding,
        );
        let mut sent = 0;
        let mut out = Vec::new();
        while sent < allowed {
            let Some(old) = rec.to_resend.pop_front() else {
                break;
            };
            let McastContent::Frame(frame) = old.content else {
                continue;
            };
            t.seq = t.seq.next();
            let m = Mcast {
                seq: t.seq,
                origin: self.me,
                guarantee: Guarantee::Agreed,
                content: McastContent::Recovered(Recovered {
                    old_ring,
                    old_seq: old.seq,
                    old_origin: old.origin,
                    old_guarantee: old.guarantee,
                    frame,
                }),
            };
            let inserted = rec.new_log.insert(m.clone());
            // Fresh for the same reason as in operational_token.
            assert_eq!(
                inserted,
                Insert::New,
                "own recovery message {:?} must be new",
                t.seq
            );
            out.push(m);
            sent += 1;
        }
        let my_index = rec.circ.my_index;
        if rec.to_resend.is_empty() {
            t.recovery_done |= 1u64 << my_index;
        }
        let backlog_now = u32::try_from(rec.to_resend.len()).unwrap_or(u32::MAX);
        Self::end_visit(&mut t, &mut rec.circ, &mut rec.new_log, sent, backlog_now);
        let n = rec.circ.members.len();
        let all_done = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
        if t.install_seq.is_none() && t.recovery_done == all_done && token::min_aru(&t) == t.seq {
            t.install_seq = Some(t.seq);
        }
        for m in out {
            self.send_mcast(ring_id, m);
            self.stats.mcasts_sent += 1;
        }
        if let Some(install_seq) = t.install_seq {
            self.install(install_seq);
        }
        self.forward_token(now, t);
    }

    /// Passes the token on (or, on a ring of one, back to ourselves).
    fn forward_token(&mut self, now: Instant, mut t: Token) {
        let (ring_id, next) = match &self.phase {
            Phase::Operational(c) => (c.ring_id, c.next()),
            Phase::Recovery(r) => (r.circ.ring_id, r.circ.next()),
            _ => return,
        };
        t.token_seq += 1;
        t.retransmitted = false;
        let seq = t.seq;
        if next == self.me {
            // A ring of one: the token comes straight back; take it up again
            // at once if there is work it may send, after the hold time if
            // not (congested: nothing may be sent, and an immediate timer
            // would spin).
            let busy = !self.packer.is_empty() && !self.congested;
            let Phase::Operational(circ) = &mut self.phase else {
                // Recovery of a lone node: next visit at once.
                if let Phase::Recovery(rec) = &mut self.phase {
                    rec.circ.last_token_seq = Some(t.token_seq - 1);
                }
                self.loopback
                    .push_back(self.packet(ring_id, Body::Token(t)));
                return;
            };
            circ.last_token_seq = Some(t.token_seq);
            circ.held = Some(t);
            let at = if busy {
                now
            } else {
                now + self.effective_hold()
            };
            self.timers.set(Timer::TokenHold, at);
            self.timers
                .set(Timer::TokenLoss, now + self.cfg.get().token_timeout);
            return;
        }
        let bytes = self.send(
            Destination::Node(next),
            self.packet(ring_id, Body::Token(t)),
        );
        let fwd = Forwarded {
            to: next,
            bytes,
            seq,
        };
        match &mut self.phase {
            Phase::Operational(c) => c.forwarded = Some(fwd),
            Phase::Recovery(r) => r.circ.forwarded = Some(fwd),
            _ => {}
        }
        self.timers.set(
            Timer::TokenRetransmit,
            now + self.cfg.token_retransmit_timeout(),
        );
    }

    // ----- membership ----------------------------------------------------

    fn on_hello(&mut self, now: Instant, sender: NodeId, ring_id: RingId, h: Hello) {
        let foreign_members = h.members.clone();
        // Only an operational foreign ring is merged with on its
        // announcement: a node in the middle of its own Gather carries a
        // fail set from that round; it comes to us through its next, fresh
        // join instead, and merging on its announcement would only have us
        // fail it again, every announcement.
        let other_operational = h.state == WireState::Operational;
        self.reach.hello(now, sender, h);
        if let Phase::Operational(_) = self.phase {
            if other_operational
                && ring_id != self.ring.id()
                && !self.ring.members.contains(&sender)
                && self.merge_allowed(now, sender)
            {
                log::info!("ring {} of node {sender} is reachable: merging", ring_id);
                self.enter_gather(now, GatherCause::Join, &foreign_members, &[]);
            }
        }
    }

    /// Whether our ring and `other`'s are fully connected, so merging them
    /// would make a ring that works.
    fn merge_allowed(&self, now: Instant, other: NodeId) -> bool {
        let mut all: BTreeSet<NodeId> = self.ring.members.iter().copied().collect();
        all.insert(other);
        if let Some(ms) = self.reach.announced_members(now, other) {
            all.extend(ms.iter().copied());
        }
        all.len() <= MAX_MEMBERS && self.reach.fully_connected(now, &all)
    }

    fn on_join(&mut self, now: Instant, sender: NodeId, j: &Join) {
        match &self.phase {
            Phase::Operational(_) => {
                // A member's join always matters (it lost the token, or
                // wants us out). A foreign node's only if a merged ring
                // would work and it does not count us as failed: a stale
                // join must not tear down a working ring.
                let member = self.ring.members.contains(&sender);
                // A join failing its own sender is a leave: it matters only
                // to the ring the sender leaves (its repeats reach the
                // survivors' new ring too and must not restart it).
                let leaving = j.fail_set.binary_search(&sender).is_ok();
                let wants_us = !leaving
                    && j.fail_set.binary_search(&self.me).is_err()
                    && j.proc_set.binary_search(&self.me).is_ok();
                if member || (wants_us && self.merge_allowed(now, sender)) {
                    self.enter_gather(now, GatherCause::Join, &[], &[]);
                } else {
                    self.stats.dropped_foreign += 1;
                    return;
                }
            }
            Phase::Gather(_) => {}
            Phase::Commit(_) | Phase::Recovery(_) => {
                self.stats.dropped_foreign += 1;
                return;
            }
        }
        let Phase::Gather(gp) = &mut self.phase else {
            return;
        };
        if j.fail_set == [sender] && self.ring.members.contains(&sender) {
            // A member leaving cleanly (see `leave`). The survivors know
            // who they are: a lone survivor need not first wait a
            // consensus timeout for nodes that might be starting.
            gp.waited = true;
        }
        match gp.gather.handle_join(self.me, sender, j) {
            JoinOutcome::Ignored => {}
            JoinOutcome::Recorded => self.check_consensus(),
            JoinOutcome::Changed => {
                self.apply_connectivity(now);
                self.send_join(now);
                self.check_consensus();
            }
        }
    }

    /// Removes the nodes that break full connectivity (see membership).
    fn apply_connectivity(&mut self, now: Instant) {
        let Phase::Gather(gp) = &mut self.phase else {
            return;
        };
        let members = gp.gather.members();
        let excluded = self.reach.exclusions(now, &members);
        if excluded.contains(&self.me) {
            // We are the one that does not fit: go on alone.
            let others: Vec<NodeId> = members.into_iter().filter(|&n| n != self.me).collect();
            gp.gather.grow([], others);
        } else if !excluded.is_empty() {
            gp.gather.grow([], excluded);
        }
    }

    fn enter_gather(
        &mut self,
        now: Instant,
        cause: GatherCause,
        procs: &[NodeId],
        fails: &[NodeId],
    ) {
        let previous = std::mem::replace(
            &mut self.phase,
            Phase::Gather(GatherPhase {
                gather: Gather::new(BTreeSet::new(), BTreeSet::new()),
                waited: false,
            }),
        );
        let (mut gather, waited) = match previous {
            Phase::Gather(gp) => (gp.gather, gp.waited),
            Phase::Commit(c) => (c.gather, false),
            Phase::Recovery(r) => (r.gather, false),
            Phase::Operational(_) => (Gather::new(BTreeSet::new(), BTreeSet::new()), false),
        };
        if cause == GatherCause::TokenLoss {
            // The joins that led to a ring that failed prove nothing now.
            gather.forget_joins();
        }
        let mut proc_add: Vec<NodeId> = self.ring.members.clone();
        proc_add.push(self.me);
        let mut fail_add: Vec<NodeId> = fails.to_vec();
        if cause == GatherCause::TokenLoss {
            let token_timeout = self.cfg.fast_fail_silence();
            fail_add.extend(
                gather
                    .proc_set
                    .iter()
                    .chain(self.ring.members.iter())
                    .copied()
                    .filter(|&n| n != self.me && !self.reach.heard_within(now, n, token_timeout)),
            );
        }
        fail_add.retain(|&n| n != self.me);
        // Our ring and ourselves always fit (a ring has at most MAX_MEMBERS
        // and the round started from it); a foreign ring's members are
        // added only if the union fits too.
        gather.grow(proc_add, fail_add);
        gather.grow(procs.iter().copied(), []);
        gather.commit_sent = false;
        self.phase = Phase::Gather(GatherPhase { gather, waited });
        self.stats.gathers += 1;
        log::debug!("node {} enters Gather ({cause:?})", self.me);
        for t in [Timer::TokenLoss, Timer::TokenRetransmit, Timer::TokenHold] {
            self.timers.stop(t);
        }
        self.timers
            .set(Timer::Consensus, now + self.cfg.get().consensus_timeout);
        self.apply_connectivity(now);
        self.send_join(now);
        self.check_consensus();
    }

    fn send_join(&mut self, now: Instant) {
        let Phase::Gather(gp) = &self.phase else {
            return;
        };
        let j = gp.gather.join_message(self.max_ring_seq);
        log::debug!(
            "node {} sends join proc {:?} fail {:?}",
            self.me,
            j.proc_set,
            j.fail_set
        );
        let p = self.packet(self.ring.id(), Body::Join(j));
        self.send(Destination::All, p);
        self.timers
            .set(Timer::Join, now + self.cfg.get().join_timeout);
    }

    fn check_consensus(&mut self) {
        let Phase::Gather(gp) = &mut self.phase else {
            return;
        };
        if gp.gather.commit_sent || !gp.gather.consensus(self.me) {
            return;
        }
        let members: Vec<NodeId> = gp.gather.members().into_iter().collect();
        if members.len() == 1 && !gp.waited {
            return; // alone: wait one consensus timeout for others first
        }
        if members.first() != Some(&self.me) {
            return; // the lowest member sends the commit token
        }
        if members.len() > MAX_MEMBERS {
            log::error!(
                "{} nodes want to form a ring; at most {MAX_MEMBERS} fit",
                members.len()
            );
            return;
        }
        // Ring seqs come from packets; a forged one near u64::MAX must not
        // wrap around to a seq already used.
        let Some(seq) = (self.max_ring_seq / 4 + 1).checked_mul(4) else {
            log::error!("ring seq space exhausted (max seen {})", self.max_ring_seq);
            return;
        };
        gp.gather.commit_sent = true;
        self.note_ring_seq(seq);
        let ring_id = RingId { seq, rep: self.me };
        let ct = CommitToken {
            token_seq: 0,
            entries: vec![None; members.len()],
            members,
        };
        log::debug!(
            "node {} proposes {ring_id:?} with {:?}",
            self.me,
            ct.members
        );
        self.loopback
            .push_back(self.packet(ring_id, Body::Commit(ct)));
    }

    fn on_commit(&mut self, now: Instant, ring_id: RingId, mut ct: CommitToken) {
        let Some(pos) = ct.members.iter().position(|&m| m == self.me) else {
            self.stats.dropped_foreign += 1;
            return;
        };
        let all_filled = ct.entries.iter().all(Option::is_some);
        match &mut self.phase {
            Phase::Gather(gp) => {
                let ours = gp.gather.members();
                let acceptable = ct.entries[pos].is_none()
                    && ring_id.seq > self.ring.id().seq
                    && ring_id.rep == ct.members[0]
                    && ct.members.iter().all(|m| ours.contains(m));
                if !acceptable {
                    self.stats.dropped_foreign += 1;
                    return;
                }
                let log = &self.ring.log;
                ct.entries[pos] = Some(MemberEntry {
                    old_ring: log.ring_id(),
                    aru: log.aru(),
                    high_delivered: log.delivered(),
                    high_received: log.high(),
                });
                let gather = gp.gather.clone();
                self.phase = Phase::Commit(CommitPhase {
                    ring_id,
                    gather,
                    last_token_seq: ct.token_seq,
                    forwarded: None,
                });
                for t in [Timer::Join, Timer::Consensus, Timer::TokenHold] {
                    self.timers.stop(t);
                }
                self.timers
                    .set(Timer::TokenLoss, now + self.cfg.get().token_timeout);
                self.forward_commit(now, ring_id, ct, pos);
            }
            Phase::Commit(cp) if cp.ring_id == ring_id && ct.token_seq > cp.last_token_seq => {
                cp.last_token_seq = ct.token_seq;
                cp.forwarded = None;
                if !all_filled {
                    self.stats.dropped_duplicate += 1;
                    return;
                }
                if self.enter_recovery(now, ring_id, &ct) {
                    self.forward_commit(now, ring_id, ct, pos);
                }
            }
            Phase::Recovery(rec)
                if rec.circ.ring_id == ring_id && ct.token_seq > rec.last_commit_seq =>
            {
                rec.last_commit_seq = ct.token_seq;
                if pos != 0 {
                    self.stats.dropped_duplicate += 1;
                    return;
                }
                // End of the second rotation: the representative starts the
                // new ring's token.
                rec.circ.forwarded = None;
                self.timers.stop(Timer::TokenRetransmit);
                let t = token::first(ct.members.len());
                rec.circ.last_token_seq = Some(0);
                self.stats.tokens_received += 1;
                self.recovery_token(now, t);
            }
            _ => self.stats.dropped_duplicate += 1,
        }
    }

    fn forward_commit(&mut self, now: Instant, ring_id: RingId, mut ct: CommitToken, pos: usize) {
        ct.token_seq += 1;
        let next = ct.members[(pos + 1) % ct.members.len()];
        let bytes = self.send(
            Destination::Node(next),
            self.packet(ring_id, Body::Commit(ct)),
        );
        if next == self.me {
            return;
        }
        let fwd = Forwarded {
            to: next,
            bytes,
            seq: Seq::ZERO,
        };
        match &mut self.phase {
            Phase::Commit(c) => c.forwarded = Some(fwd),
            Phase::Recovery(r) => r.circ.forwarded = Some(fwd),
            _ => {}
        }
        self.timers.set(
            Timer::TokenRetransmit,
            now + self.cfg.token_retransmit_timeout(),
        );
    }

    /// Enters Recovery; false (and nothing changed) for a forged token.
    fn enter_recovery(&mut self, now: Instant, ring_id: RingId, ct: &CommitToken) -> bool {
        let entries: Vec<MemberEntry> = ct.entries.iter().flatten().copied().collect();
        let Some(plan) = RecoveryPlan::new(self.me, self.ring.id(), &ct.members, &entries) else {
            // Our own entry is not what we wrote: a forged commit token.
            self.stats.dropped_malformed += 1;
            return false;
        };
        let mut to_resend: VecDeque<Mcast> = VecDeque::new();
        if plan.resend_low_part {
            to_resend.extend(self.ring.log.held_in(plan.low, plan.high));
        } else {
            to_resend.extend(
                self.ring
                    .log
                    .held_in(plan.resend_from.max(plan.low), plan.high),
            );
        }
        let gather = match &self.phase {
            Phase::Commit(c) => c.gather.clone(),
            _ => Gather::new(BTreeSet::new(), BTreeSet::new()),
        };
        log::debug!(
            "node {} enters Recovery of {ring_id:?}: {:?}, resending {}",
            self.me,
            plan,
            to_resend.len()
        );
        let limit = Self::limit_ahead(&self.cfg);
        self.phase = Phase::Recovery(Box::new(RecoveryPhase {
            gather,
            plan,
            new_log: Log::new(ring_id, limit),
            circ: Circulation::new(ring_id, ct.members.clone(), self.me),
            to_resend,
            last_commit_seq: ct.token_seq,
        }));
        self.timers
            .set(Timer::TokenLoss, now + self.cfg.get().token_timeout);
        true
    }

    /// Installs the new ring (Recovery is complete): the old ring's last
    /// messages, the transitional configuration, the regular one.
    fn install(&mut self, install_seq: Seq) {
        let previous = std::mem::replace(
            &mut self.phase,
            Phase::Gather(GatherPhase {
                gather: Gather::new(BTreeSet::new(), BTreeSet::new()),
                waited: false,
            }),
        );
        let Phase::Recovery(rec) = previous else {
            self.phase = previous;
            return;
        };
        let rec = *rec;
        if rec.new_log.aru() < install_seq {
            // Only a forged or corrupt token can ask this: every member
            // reported an aru of at least install_seq before it was set.
            log::warn!("token asks to install at {install_seq:?} before we have it; ignored");
            self.stats.dropped_malformed += 1;
            self.phase = Phase::Recovery(Box::new(rec));
            return;
        }
        let old_id = self.ring.id();
        let old_members = self.ring.members.clone();
        // One line for every transitional member (see `recovery`): what
        // any of them delivered in the regular configuration, all do.
        let old_safe = self.ring.log.safe_line().max(rec.plan.delivered);
        let mut expect = self.ring.log.delivered().next();
        let msgs = self.ring.log.drain_for_install(rec.plan.high);
        let new_id = rec.circ.ring_id;
        let new_members = rec.circ.members.clone();
        let trans = ConfigChange {
            kind: ConfigKind::Transitional,
            ring_id: new_id,
            members: rec.plan.transitional.clone(),
            left: old_members
                .iter()
                .copied()
                .filter(|m| !rec.plan.transitional.contains(m))
                .collect(),
            joined: Vec::new(),
        };
        let mut trans = Some(trans);
        for m in &msgs {
            let beyond_regular =
                m.seq != expect || (m.guarantee == Guarantee::Safe && m.seq > old_safe);
            if beyond_regular {
                if let Some(tc) = trans.take() {
                    self.events.push_back(Event::ConfigChange(tc));
                }
            }
            self.deliver_frame(old_id, m);
            expect = m.seq.next();
        }
        if let Some(tc) = trans.take() {
            self.events.push_back(Event::ConfigChange(tc));
        }
        self.unpacker.reset();
        self.packer.restart_partial();
        let joined = new_members
            .iter()
            .copied()
            .filter(|m| !rec.plan.transitional.contains(m))
            .collect();
        self.events.push_back(Event::ConfigChange(ConfigChange {
            kind: ConfigKind::Regular,
            ring_id: new_id,
            members: new_members.clone(),
            left: Vec::new(),
            joined,
        }));
        // Persisted already: we saw the commit token of this ring.
        self.note_ring_seq(new_id.seq);
        let mut log = rec.new_log;
        log.skip_delivery_to(install_seq);
        self.ring = Installed {
            members: new_members,
            log,
        };
        let mut circ = rec.circ;
        circ.stall = ReceiveStall::default();
        circ.idle_rotations = 0;
        circ.my_last_sent = 0;
        circ.my_last_backlog = 0;
        self.phase = Phase::Operational(circ);
        self.stats.rings_installed += 1;
        log::info!(
            "node {} installed {new_id:?} members {:?}",
            self.me,
            self.ring.members
        );
        self.deliver_ready();
    }

    // ----- timers --------------------------------------------------------

    fn on_timer(&mut self, now: Instant, t: Timer) {
        match t {
            Timer::Hello => self.send_hello(now),
            Timer::TokenLoss => match self.phase {
                Phase::Operational(_) | Phase::Recovery(_) | Phase::Commit(_) => {
                    log::info!("node {}: token lost in {:?}", self.me, self.state());
                    self.enter_gather(now, GatherCause::TokenLoss, &[], &[]);
                }
                Phase::Gather(_) => {}
            },
            Timer::TokenRetransmit => {
                let fwd = match &self.phase {
                    Phase::Operational(c) => c.forwarded.clone(),
                    Phase::Recovery(r) => r.circ.forwarded.clone(),
                    Phase::Commit(c) => c.forwarded.clone(),
                    Phase::Gather(_) => None,
                };
                if let Some(f) = fwd {
                    self.transmits.push_back(Transmit {
                        dest: Destination::Node(f.to),
                        datagram: Datagram::from(f.bytes),
                    });
                    self.stats.token_retransmits += 1;
                    self.timers.set(
                        Timer::TokenRetransmit,
                        now + self.cfg.token_retransmit_timeout(),
                    );
                }
            }
            Timer::TokenHold => {
                if let Phase::Operational(circ) = &mut self.phase {
                    if let Some(token) = circ.held.take() {
                        self.operational_token(now, token);
                    }
                }
            }
            Timer::Join => {
                if let Phase::Gather(_) = self.phase {
                    self.send_join(now);
                }
            }
            Timer::Consensus => {
                if let Phase::Gather(gp) = &mut self.phase {
                    if gp.waited {
                        // A second consensus timeout without a ring: the
                        // fail set has grown from joins that may all be
                        // stale. Start the round afresh from who we hear.
                        let silence = self.cfg.fast_fail_silence();
                        let heard: Vec<NodeId> = gp
                            .gather
                            .proc_set
                            .iter()
                            .copied()
                            .filter(|&n| self.reach.heard_within(now, n, silence))
                            .collect();
                        let mut fresh = Gather::new(heard.into_iter().collect(), BTreeSet::new());
                        fresh.grow([self.me], []);
                        gp.gather = fresh;
                        gp.waited = false;
                        log::debug!(
                            "node {}: no consensus in two rounds, starting afresh",
                            self.me
                        );
                        self.timers
                            .set(Timer::Consensus, now + self.cfg.get().consensus_timeout);
                        self.apply_connectivity(now);
                        self.send_join(now);
                        return;
                    }
                    gp.waited = true;
                    gp.gather.fail_disagreeing(self.me);
                    gp.gather.commit_sent = false;
                    self.timers
                        .set(Timer::Consensus, now + self.cfg.get().consensus_timeout);
                    self.send_join(now);
                    self.check_consensus();
                }
            }
        }
    }
}
