//! CKPT: SA Forum checkpoints (`saCkpt.h`, B.01.01), replicated on every
//! node. The design follows openais 0.80's checkpoint service (every node a
//! full replica, every change multicast and applied in total order, the
//! origin answering its client at delivery) and departs from it where
//! openais diverged or had known bugs (see "Deviations").
//!
//! # Replication
//! Every operation that changes a checkpoint, and every read (so reads are
//! totally ordered with writes), travels the ring as a `RingOp` (module
//! `exec`) carrying its origin (node, connection, request tag, wall time).
//! Every
//! replica applies it at delivery, in the one order; the origin answers
//! its client then. Status, iteration, the store status and the listing
//! are answered locally from this node's replica.
//!
//! Changes that may fail on one replica only (because that node is over its
//! memory limit) are *decided* by votes (module `replication`):
//! `SA_CKPT_WR_ALL_REPLICAS` asks every member, the active-replica modes ask
//! the active replica. The change applies, on every replica at once, at the
//! delivery of the last yes vote; the first no vote rejects it everywhere
//! (nothing was applied, so nothing is rolled back) and the call fails with
//! that voter's error (`SA_AIS_ERR_NO_MEMORY` for the memory limit). While
//! a checkpoint has a pending change, later operations on it wait in a
//! queue (every replica holds the same queue), so no operation ever sees a
//! change that may still be rejected. In the active-replica modes a
//! standby that cannot apply a decided change drops the section's bytes and
//! recovers a full copy from the active replica (a `Copy` message); if that
//! fails too the section is *corrupted* on that standby: reads there are
//! served from a fresh copy of the active replica while it lives, and fail
//! with `SA_AIS_ERR_FAILED_OPERATION` once a replica holding the corrupted
//! section is the active one (a write there fails the same way).
//!
//! # Retention and expiry
//! Ordered events, never local timers acting alone (module `expiry`): when a
//! checkpoint's cluster-wide open count reaches zero every replica notes a
//! retention deadline on its own clock; the lowest member of the
//! configuration, when its deadline (or a section's expiration time, on the
//! wall clock) passes, multicasts an `Expire`, and every replica
//! deletes at its delivery. Unlink removes the name at once and the data
//! when the last opener closes. Opens are counted per node; a node that
//! leaves the configuration has its opens dropped at the next sync, and a
//! client connection that goes away closes everything it opened through
//! the ring.
//!
//! # Sync
//! CKPT has a step in the barrier sync (module `sync`): members exchange
//! summaries of what they hold; for each checkpoint one copy wins (the
//! merge rule), its holder sends it to every member whose copy differs,
//! and every member activates the same store at the closing barrier. Ring
//! operations delivered between a configuration change and the activation
//! are held and applied right after it (or dropped with TRY_AGAIN if the
//! round is aborted), so they never race the state transfer.
//!
//! # Clocks
//! The engine reads no clock: it uses `ctx.now` (monotonic) and is given
//! `wall_clock_at_zero_ns` ([`CkptConfig`]), the wall clock (ns since the
//! epoch) at `Instant::ZERO`, by the daemon, to compare absolute SA times
//! (section expiration) and to stamp `lastUpdate`. Nodes' wall clocks need
//! not agree: only the lowest member's decides when a section expires.
//!
//! # Limits
//! Every table is bounded; see the constants below. Per checkpoint the
//! creation attributes bound sections (`SA_AIS_ERR_NO_SPACE` when
//! `maxSections` are there), section size and id size
//! (`SA_AIS_ERR_INVALID_PARAM` beyond `maxSectionSize` or
//! `maxSectionIdSize`) and total data (`SA_AIS_ERR_NO_SPACE` beyond
//! `checkpointSize`); the daemon-wide [`MAX_CHECKPOINTS`] and
//! [`MAX_TOTAL_DATA_BYTES`] give `SA_AIS_ERR_NO_RESOURCES`. A partition
//! merge may leave more than those in the store (each side stayed within
//! them); creates are then refused until deletions bring it back, and the
//! sync carries at most [`MAX_SYNC_ENTRIES`] checkpoints per member.
//!
//! # Errors this engine picks where the spec leaves room
//! - A replica over its memory limit: `SA_AIS_ERR_NO_MEMORY`.
//! - A section lost on the active replica (or on every possible source):
//!   `SA_AIS_ERR_FAILED_OPERATION` for reads and writes.
//! - A pending change dropped by a configuration change (a voter that
//!   stayed was not heard), a request held for a sync round that was
//!   aborted, a full ring or queue: `SA_AIS_ERR_TRY_AGAIN` (nothing was
//!   applied here).
//! - A request unanswered for [`REQUEST_TIMEOUT`]: `SA_AIS_ERR_TIMEOUT`
//!   (outcome unknown).
//! - More than [`proto::ckpt::MAX_DATA_BYTES`] written in one request, or
//!   read in one answer: `SA_AIS_ERR_TOO_BIG` (the library splits larger
//!   calls element by element).
//! - A read with `dataSize` over `maxSectionSize` or an offset past the
//!   section's end: `SA_AIS_ERR_INVALID_PARAM` with the element's index.
//! - `saCkptCheckpointSynchronize` on an ALL_REPLICAS checkpoint, and
//!   `saCkptActiveReplicaSet` on one that is not collocated in an
//!   active-replica mode: `SA_AIS_ERR_BAD_OPERATION` (as openais).
//!
//! # Deviations from openais 0.80 (following the spec, or doing better)
//! - `checkpointSize` is enforced (openais never did).
//! - A multi-element write is one ring message, applied all or nothing.
//! - Generated section ids exist: decimal counters ("1", "2", ...).
//! - `saCkptActiveReplicaSet` goes through the ring (openais set it only on
//!   the caller's node, and replicas diverged).
//! - Section expiration and retention are ordered events (openais deleted
//!   on local timers, and diverged with skewed clocks).
//! - Opens of departed nodes are dropped (openais kept them forever).
//! - `lastUpdate` is stamped; `SA_CKPT_SECTIONS_CORRUPTED` means it.
//! - A partition merge keeps one copy per checkpoint by a documented rule
//!   (module `sync`) instead of mixing sections of both.

mod apply;
mod exec;
mod expiry;
mod replication;
mod store;
mod sync;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use proto::ckpt::{
    CheckpointInfo, CheckpointStatus, CreationAttributes, HandleRequest, IterationInitialize,
    IterationReply, IterationRequest, List, ListReply, Open, OpenAsync, OpenCallback, OpenReply,
    Read, RetentionDurationSet, SectionCreate, SectionDelete, SectionDescriptor,
    SectionExpirationTimeSet, SectionOverwrite, SectionState, SectionsChosen, StoreStatus,
    SynchronizeAsync, SynchronizeCallback, Unlink, Write, ACTIVE_REPLICA_SET, CB_OPEN,
    CB_SYNCHRONIZE, CHECKPOINT_COLLOCATED, CLOSE, ITERATION_FINALIZE, ITERATION_INITIALIZE,
    ITERATION_NEXT, LIST, MAX_DATA_BYTES, MAX_LIST_ENTRIES, MAX_NAME_BYTES, MAX_SECTION_ID_BYTES,
    OPEN, OPEN_ASYNC, OPEN_CREATE, OPEN_READ, OPEN_WRITE, READ, RETENTION_DURATION_SET,
    SECTION_CREATE, SECTION_DELETE, SECTION_EXPIRATION_TIME_SET, SECTION_OVERWRITE, STATUS_GET,
    STORE_STATUS, SYNCHRONIZE, SYNCHRONIZE_ASYNC, TIME_END, UNLINK, WRITE, WR_ACTIVE_REPLICA,
    WR_ACTIVE_REPLICA_WEAK, WR_ALL_REPLICAS,
};
use proto::{AisError, ServiceId};
use totem::{ConfigChange, ConfigKind, Guarantee, Instant, NodeId, RingId};

use crate::engine::{ConnId, Ctx, Engine, SyncStep};
use exec::{Op, Origin, RingOp, EX_OP};
use store::{CkptId, Store};

/// The per-node memory limit when the daemon sets none: 1 GiB of section
/// data and ids.
pub const DEFAULT_MEMORY_LIMIT_BYTES: u64 = 1 << 30;
/// Most checkpoints in the store (linked or not); a create beyond gets
/// `SA_AIS_ERR_NO_RESOURCES`.
pub const MAX_CHECKPOINTS: usize = 4096;
/// Most bytes of section data in the whole store; a change beyond gets
/// `SA_AIS_ERR_NO_RESOURCES`.
pub const MAX_TOTAL_DATA_BYTES: u64 = 1 << 30;
/// Largest `maxSections` accepted (`SA_AIS_ERR_INVALID_PARAM` beyond).
pub const MAX_SECTIONS_PER_CHECKPOINT: u32 = 65_536;
/// Largest `maxSectionSize` accepted (`SA_AIS_ERR_INVALID_PARAM` beyond):
/// one section fits one ring message, for recovery copies and the sync.
pub const MAX_SECTION_BYTES: u64 = MAX_DATA_BYTES as u64;
/// Largest `maxSectionIdSize` accepted (`SA_AIS_ERR_INVALID_PARAM`
/// beyond).
pub const MAX_SECTION_ID_SIZE: u64 = MAX_SECTION_ID_BYTES as u64;
/// Most open handles per client connection (`SA_AIS_ERR_NO_RESOURCES`).
pub const MAX_HANDLES_PER_CONN: usize = 1024;
/// Most section iterations per client connection
/// (`SA_AIS_ERR_NO_RESOURCES`).
pub const MAX_ITERATIONS_PER_CONN: usize = 64;
/// Most requests of this node's clients in flight on the ring
/// (`SA_AIS_ERR_TRY_AGAIN` beyond).
pub const MAX_PENDING_REQUESTS: usize = 4096;
/// Most operations waiting behind one checkpoint's pending change; more
/// get `SA_AIS_ERR_TRY_AGAIN` (closes and recovery requests always wait:
/// they are bounded by the handles and sections that exist).
pub const MAX_QUEUED_OPS_PER_CKPT: usize = 1024;
/// Most data bytes waiting in all checkpoint queues together.
pub const MAX_QUEUED_BYTES: u64 = 64 << 20;
/// Most operations held between a configuration change and the sync's
/// activation; more are dropped (their clients get TRY_AGAIN).
pub const MAX_BUFFERED_OPS: usize = 65_536;
/// Most data bytes held that way.
pub const MAX_BUFFERED_BYTES: u64 = 64 << 20;
/// Most engine messages waiting for room in the ring (votes, closes of a
/// departed connection, copies); past it the oldest is dropped and counted
/// (a vote lost that way is resolved by the next configuration change).
pub const MAX_OUTBOX: usize = 65_536;
/// Most reads waiting for a recovery copy on this node
/// (`SA_AIS_ERR_TRY_AGAIN` beyond).
pub const MAX_PARKED_READS: usize = 256;
/// Most checkpoints one EXPIRE names.
pub const MAX_EXPIRE_CKPTS: usize = 512;
/// Checkpoints per sync summary message.
pub const SUMMARY_ENTRIES_PER_MSG: usize = 256;
/// Most checkpoints one member's sync summary may list. A merge can leave
/// more than [`MAX_CHECKPOINTS`] in the store (each partition created up
/// to the limit; creates are refused until the count drops below it), so
/// the sync carries up to 16 partitions' worth; past that, the checkpoints
/// beyond (in id order) are dropped at the sync, on every member alike.
pub const MAX_SYNC_ENTRIES: usize = 16 * MAX_CHECKPOINTS;
/// A request unanswered this long is answered `SA_AIS_ERR_TIMEOUT` (its
/// outcome unknown); closes are never timed out.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How soon a multicast refused for a full ring is tried again.
pub const OUTBOX_RETRY: Duration = Duration::from_millis(10);
/// How long the expiring member waits for its EXPIRE before sending
/// another.
pub const EXPIRE_RETRY: Duration = Duration::from_secs(1);

/// What the daemon tells the CKPT engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CkptConfig {
    /// This node's memory limit for checkpoint data (section bytes and
    /// ids). A change that would take the node past it fails on this node:
    /// with ALL_REPLICAS the change is rejected everywhere, in the
    /// active-replica modes a standby loses the section (recovery).
    pub memory_limit_bytes: u64,
    /// The wall clock (ns since the Unix epoch) at `Instant::ZERO` of the
    /// clock the driver passes as `now`: the daemon reads the clock once at
    /// start. It turns absolute SA times into instants and stamps
    /// `lastUpdate`.
    pub wall_clock_at_zero_ns: i64,
}

impl CkptConfig {
    /// The default memory limit with the given wall clock at zero.
    pub fn new(wall_clock_at_zero_ns: i64) -> CkptConfig {
        CkptConfig {
            memory_limit_bytes: DEFAULT_MEMORY_LIMIT_BYTES,
            wall_clock_at_zero_ns,
        }
    }
}

/// Counters of the engine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CkptStats {
    /// Ring messages that did not decode, or came from no member: dropped.
    pub dropped_malformed: u64,
    /// Operations dropped because the round they were held for was
    /// aborted (or the hold buffer was full).
    pub dropped_buffered: u64,
    /// Outbox messages dropped for lack of room.
    pub dropped_outbox: u64,
    /// Changes committed after votes.
    pub committed: u64,
    /// Changes rejected by a vote or a configuration change.
    pub rejected: u64,
    /// Sections this node lost and asked to recover.
    pub recoveries: u64,
    /// Sections this node marked corrupted.
    pub corrupted: u64,
    /// Sync rounds activated.
    pub syncs: u64,
}

/// An open checkpoint, as its connection holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Handle {
    ckpt: CkptId,
    flags: u32,
    /// A client close is in flight.
    closing: bool,
    /// An engine close (departed connection, orphaned open) is in flight.
    exit: bool,
}

/// A section iteration: a cursor over section ids.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Iteration {
    ckpt: CkptId,
    chosen: SectionsChosen,
    time_ns: i64,
    after: Option<Bytes>,
}

/// A client connection.
#[derive(Clone, Debug, Default)]
struct Conn {
    handles: BTreeMap<u64, Handle>,
    iterations: BTreeMap<u64, Iteration>,
    /// The client went away; the entry stays until its closes are
    /// delivered, so the opens it held are still counted in a sync.
    exiting: bool,
}

/// What the origin waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PendingKind {
    /// An open; `invocation` when asynchronous.
    Open { invocation: Option<u64>, flags: u32 },
    /// A close of `handle`.
    Close { handle: u64 },
    /// Anything answered with the outcome.
    Plain,
    /// A synchronize answered by callback.
    SyncAsync { invocation: u64 },
}

/// A request of this node's clients in flight on the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pending {
    conn: ConnId,
    request: u16,
    kind: PendingKind,
    sent_at: Instant,
}

/// What an applied operation means for its origin.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Reply {
    /// Nothing to answer (another node's read, an engine message).
    None,
    /// Answered later (a pending change, a read waiting for a copy).
    Later,
    /// Success with this body.
    Done(Bytes),
    /// Failure, with a body (the erroneous index) or none.
    Failed(AisError, Bytes),
    /// An open succeeded.
    Opened(CkptId, CreationAttributes),
}

fn failed(e: AisError) -> Reply {
    Reply::Failed(e, Bytes::new())
}

fn failed_at(e: AisError, index: usize) -> Reply {
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    Reply::Failed(e, proto::ckpt::ErroneousIndex { index }.encode())
}

/// The replication mode of a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `SA_CKPT_WR_ALL_REPLICAS`.
    All,
    /// `SA_CKPT_WR_ACTIVE_REPLICA` or `_WEAK`.
    Active,
}

fn mode(a: &CreationAttributes) -> Mode {
    if a.creation_flags & WR_ALL_REPLICAS != 0 {
        Mode::All
    } else {
        Mode::Active
    }
}

fn collocated(a: &CreationAttributes) -> bool {
    a.creation_flags & CHECKPOINT_COLLOCATED != 0
}

/// Checks creation attributes as the spec and our limits say.
fn check_attributes(a: &CreationAttributes) -> Result<(), AisError> {
    let modes = a.creation_flags & (WR_ALL_REPLICAS | WR_ACTIVE_REPLICA | WR_ACTIVE_REPLICA_WEAK);
    let known =
        WR_ALL_REPLICAS | WR_ACTIVE_REPLICA | WR_ACTIVE_REPLICA_WEAK | CHECKPOINT_COLLOCATED;
    if a.creation_flags & !known != 0 || modes.count_ones() != 1 {
        return Err(AisError::InvalidParam);
    }
    if a.max_sections == 0
        || a.max_sections > MAX_SECTIONS_PER_CHECKPOINT
        || a.max_section_size > MAX_SECTION_BYTES
        || a.max_section_id_size > MAX_SECTION_ID_SIZE
        || a.retention_duration_ns < 0
    {
        return Err(AisError::InvalidParam);
    }
    if u128::from(a.checkpoint_size) > u128::from(a.max_sections) * u128::from(a.max_section_size) {
        return Err(AisError::InvalidParam);
    }
    Ok(())
}

/// Whether an existing checkpoint matches attributes given to an open
/// with CREATE (everything but the retention duration, as openais).
fn same_attributes(a: &CreationAttributes, b: &CreationAttributes) -> bool {
    CreationAttributes {
        retention_duration_ns: 0,
        ..*a
    } == CreationAttributes {
        retention_duration_ns: 0,
        ..*b
    }
}

fn check_open(o: &Open) -> Result<(), AisError> {
    if o.name.is_empty() || o.name.len() > MAX_NAME_BYTES {
        return Err(AisError::InvalidParam);
    }
    if o.open_flags & !(OPEN_READ | OPEN_WRITE | OPEN_CREATE) != 0 {
        return Err(AisError::BadFlags);
    }
    match (&o.attributes, o.open_flags & OPEN_CREATE != 0) {
        (Some(a), true) => check_attributes(a),
        (None, false) => Ok(()),
        _ => Err(AisError::InvalidParam),
    }
}

/// The CKPT engine.
#[derive(Debug)]
pub struct Ckpt {
    cfg: CkptConfig,
    me: Option<NodeId>,
    store: Store,
    /// Bytes reserved by this node's yes votes of pending changes.
    reserved_bytes: u64,
    conns: BTreeMap<ConnId, Conn>,
    pending: BTreeMap<u64, Pending>,
    next_tag: u64,
    next_handle: u64,
    next_iteration: u64,
    outbox: VecDeque<(u16, Bytes)>,
    outbox_retry_at: Option<Instant>,
    /// Whether the store is synchronized for the current configuration
    /// (false from a regular configuration until the sync activates).
    activated: bool,
    /// The configuration of the last activation.
    activated_ring: Option<RingId>,
    /// The members of the current configuration.
    members: Vec<NodeId>,
    /// The members that came from the previous configuration with this
    /// node (the last transitional configuration).
    trans_members: Vec<NodeId>,
    /// CKPT messages delivered in the current ring (new checkpoints are
    /// named by this position).
    ring_index: u64,
    /// Operations held until the activation.
    buffer: VecDeque<apply::Buffered>,
    buffer_bytes: u64,
    /// Reads waiting for recovery copies.
    parked: Vec<replication::ParkedRead>,
    retention: expiry::Retention,
    round: Option<sync::Round>,
    stats: CkptStats,
}

impl Ckpt {
    /// An engine with an empty store.
    pub fn new(cfg: CkptConfig) -> Ckpt {
        Ckpt {
            cfg,
            me: None,
            store: Store::default(),
            reserved_bytes: 0,
            conns: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_tag: 1,
            next_handle: 1,
            next_iteration: 1,
            outbox: VecDeque::new(),
            outbox_retry_at: None,
            activated: false,
            activated_ring: None,
            members: Vec::new(),
            trans_members: Vec::new(),
            ring_index: 0,
            buffer: VecDeque::new(),
            buffer_bytes: 0,
            parked: Vec::new(),
            retention: expiry::Retention::default(),
            round: None,
            stats: CkptStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &CkptStats {
        &self.stats
    }

    /// CRC-32 of the replicated store (see [`StoreStatus::digest`]).
    pub fn digest(&self) -> u32 {
        self.store.digest()
    }

    /// The wall clock at `now` (ns since the epoch).
    fn wall_ns(&self, now: Instant) -> i64 {
        let since = i64::try_from(now.as_nanos()).unwrap_or(i64::MAX);
        self.cfg.wall_clock_at_zero_ns.saturating_add(since)
    }

    /// The instant at which the wall clock reads `wall_ns` (zero if
    /// before).
    fn instant_of_wall(&self, wall_ns: i64) -> Instant {
        let d = wall_ns.saturating_sub(self.cfg.wall_clock_at_zero_ns);
        Instant::from_nanos(u64::try_from(d).unwrap_or(0))
    }

    /// Whether `delta` more bytes fit this node's memory limit.
    fn fits(&self, delta: i128) -> bool {
        let used = i128::from(self.store.local_bytes) + i128::from(self.reserved_bytes);
        used + delta <= i128::from(self.cfg.memory_limit_bytes)
    }

    // ----- the ring --------------------------------------------------------

    /// Queues an engine message; [`Ckpt::flush`] sends it in order.
    fn push_outbox(&mut self, id: u16, body: Bytes) {
        if self.outbox.len() >= MAX_OUTBOX {
            self.outbox.pop_front();
            self.stats.dropped_outbox += 1;
            log::warn!("CKPT: outbox full, dropped its oldest message");
        }
        self.outbox.push_back((id, body));
    }

    /// Sends what the outbox holds, in order, while the ring takes it.
    fn flush(&mut self, ctx: &mut Ctx<'_>) {
        while let Some((id, body)) = self.outbox.front() {
            match ctx.mcast(*id, body, Guarantee::Agreed) {
                Ok(()) => {
                    self.outbox.pop_front();
                }
                Err(AisError::TryAgain) => {
                    self.outbox_retry_at = Some(ctx.now + OUTBOX_RETRY);
                    return;
                }
                Err(e) => {
                    log::warn!("CKPT: engine message refused by the ring: {e}");
                    self.outbox.pop_front();
                    self.stats.dropped_outbox += 1;
                }
            }
        }
        self.outbox_retry_at = None;
    }

    /// Multicasts a client's operation and records what it waits for.
    fn send(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        request: u16,
        kind: PendingKind,
        op: Op,
    ) -> Result<(), AisError> {
        // Engine messages go first, in order: a client waits for room.
        if !self.outbox.is_empty() || self.pending.len() >= MAX_PENDING_REQUESTS {
            return Err(AisError::TryAgain);
        }
        let tag = self.next_tag;
        let body = RingOp {
            conn: conn.0,
            tag,
            wall_ns: self.wall_ns(ctx.now),
            op,
        }
        .encode();
        ctx.mcast(EX_OP, &body, Guarantee::Agreed)?;
        self.next_tag += 1;
        self.pending.insert(
            tag,
            Pending {
                conn,
                request,
                kind,
                sent_at: ctx.now,
            },
        );
        Ok(())
    }

    // ----- connections and handles -------------------------------------------

    fn handle(&self, conn: ConnId, handle: u64) -> Result<Handle, AisError> {
        self.conns
            .get(&conn)
            .and_then(|c| c.handles.get(&handle))
            .filter(|h| !h.closing && !h.exit)
            .copied()
            .ok_or(AisError::BadHandle)
    }

    fn handle_with(&self, conn: ConnId, handle: u64, flag: u32) -> Result<Handle, AisError> {
        let h = self.handle(conn, handle)?;
        if h.flags & flag == 0 {
            return Err(AisError::Access);
        }
        Ok(h)
    }

    /// Opens of each checkpoint held on this node (the sync's counts).
    fn local_openers(&self) -> BTreeMap<CkptId, u32> {
        let mut m = BTreeMap::new();
        for c in self.conns.values() {
            for h in c.handles.values() {
                *m.entry(h.ckpt).or_insert(0u32) += 1;
            }
        }
        m
    }

    /// An open applied for this node that no client will hold (its
    /// connection left or the request timed out): keep it counted and
    /// close it through the ring.
    fn orphan_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, ckpt: CkptId) {
        let handle = self.next_handle;
        self.next_handle += 1;
        let c = self.conns.entry(conn).or_insert_with(|| Conn {
            exiting: true,
            ..Conn::default()
        });
        c.handles.insert(
            handle,
            Handle {
                ckpt,
                flags: 0,
                closing: false,
                exit: true,
            },
        );
        let body = RingOp {
            conn: conn.0,
            tag: 0,
            wall_ns: self.wall_ns(ctx.now),
            op: Op::Close { ckpts: vec![ckpt] },
        }
        .encode();
        self.push_outbox(EX_OP, body);
        self.flush(ctx);
    }

    /// Removes a departed connection once nothing of it is in flight.
    fn reap(&mut self, conn: ConnId) {
        if self
            .conns
            .get(&conn)
            .is_some_and(|c| c.exiting && c.handles.is_empty())
        {
            self.conns.remove(&conn);
        }
    }

    /// Answers the origin of an applied operation, if it is this node.
    fn answer(&mut self, ctx: &mut Ctx<'_>, origin: Origin, reply: Reply) {
        if Some(origin.node) != self.me {
            return;
        }
        let conn = ConnId(origin.conn);
        let pending = match origin.tag {
            0 => None,
            tag => self.pending.remove(&tag).filter(|p| p.conn == conn),
        };
        match reply {
            Reply::None | Reply::Later => {
                if let Some(p) = pending {
                    // Not answered yet: keep waiting.
                    self.pending.insert(origin.tag, p);
                }
            }
            Reply::Opened(ckpt, attributes) => {
                let live = self.conns.get(&conn).is_some_and(|c| !c.exiting);
                match pending {
                    Some(Pending {
                        kind: PendingKind::Open { invocation, flags },
                        request,
                        ..
                    }) if live => {
                        let handle = self.next_handle;
                        self.next_handle += 1;
                        if let Some(c) = self.conns.get_mut(&conn) {
                            c.handles.insert(
                                handle,
                                Handle {
                                    ckpt,
                                    flags,
                                    closing: false,
                                    exit: false,
                                },
                            );
                        }
                        match invocation {
                            None => ctx.respond(
                                conn,
                                request,
                                Ok(()),
                                OpenReply { handle, attributes }.encode(),
                            ),
                            Some(invocation) => ctx.callback(
                                conn,
                                CB_OPEN,
                                OpenCallback {
                                    invocation,
                                    status: Ok(()),
                                    handle,
                                    attributes,
                                }
                                .encode(),
                            ),
                        }
                    }
                    _ => self.orphan_open(ctx, conn, ckpt),
                }
            }
            Reply::Done(body) => self.finish(ctx, conn, pending, Ok(()), body),
            Reply::Failed(e, body) => self.finish(ctx, conn, pending, Err(e), body),
        }
    }

    fn finish(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        pending: Option<Pending>,
        status: Result<(), AisError>,
        body: Bytes,
    ) {
        let Some(p) = pending else {
            return;
        };
        match p.kind {
            PendingKind::Plain
            | PendingKind::Open {
                invocation: None, ..
            } => ctx.respond(conn, p.request, status, body),
            PendingKind::Open {
                invocation: Some(invocation),
                ..
            } => ctx.callback(
                conn,
                CB_OPEN,
                OpenCallback {
                    invocation,
                    status,
                    handle: 0,
                    attributes: CreationAttributes::ZERO,
                }
                .encode(),
            ),
            PendingKind::Close { handle } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.handles.remove(&handle);
                }
                self.reap(conn);
                ctx.respond(conn, p.request, status, body);
            }
            PendingKind::SyncAsync { invocation } => ctx.callback(
                conn,
                CB_SYNCHRONIZE,
                SynchronizeCallback { invocation, status }.encode(),
            ),
        }
    }

    /// An operation of this node will not be applied (its hold was
    /// dropped): answer TRY_AGAIN, or send an engine close again.
    fn not_applied(&mut self, ctx: &mut Ctx<'_>, ring_op: RingOp, body: Bytes) {
        if ring_op.tag == 0 {
            if matches!(ring_op.op, Op::Close { .. }) {
                self.push_outbox(EX_OP, body);
            }
            return;
        }
        let conn = ConnId(ring_op.conn);
        let Some(p) = self.pending.remove(&ring_op.tag) else {
            return;
        };
        if let PendingKind::Close { handle } = p.kind {
            if let Some(h) = self
                .conns
                .get_mut(&conn)
                .and_then(|c| c.handles.get_mut(&handle))
            {
                h.closing = false;
            }
            // The client asked to close: its handle stays usable until a
            // close is applied; it retries.
        }
        self.finish(ctx, conn, Some(p), Err(AisError::TryAgain), Bytes::new());
    }

    // ----- library requests --------------------------------------------------

    fn request(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        id: u16,
        body: &[u8],
    ) -> Result<(), AisError> {
        let bad = |_| AisError::InvalidParam;
        match id {
            OPEN => {
                let o = Open::decode(body).map_err(bad)?;
                self.request_open(ctx, conn, id, o, None)
            }
            OPEN_ASYNC => {
                let o = OpenAsync::decode(body).map_err(bad)?;
                self.request_open(ctx, conn, id, o.open, Some(o.invocation))
            }
            CLOSE => {
                let r = HandleRequest::decode(body).map_err(bad)?;
                let h = self.handle(conn, r.handle)?;
                let op = Op::Close {
                    ckpts: vec![h.ckpt],
                };
                let kind = PendingKind::Close { handle: r.handle };
                self.send(ctx, conn, id, kind, op)?;
                if let Some(h) = self
                    .conns
                    .get_mut(&conn)
                    .and_then(|c| c.handles.get_mut(&r.handle))
                {
                    h.closing = true;
                }
                Ok(())
            }
            UNLINK => {
                let r = Unlink::decode(body).map_err(bad)?;
                if r.name.is_empty() {
                    return Err(AisError::InvalidParam);
                }
                self.send(
                    ctx,
                    conn,
                    id,
                    PendingKind::Plain,
                    Op::Unlink { name: r.name },
                )
            }
            RETENTION_DURATION_SET => {
                let r = RetentionDurationSet::decode(body).map_err(bad)?;
                let h = self.handle(conn, r.handle)?;
                if r.retention_duration_ns < 0 {
                    return Err(AisError::InvalidParam);
                }
                let op = Op::RetentionSet {
                    ckpt: h.ckpt,
                    ns: r.retention_duration_ns,
                };
                self.send(ctx, conn, id, PendingKind::Plain, op)
            }
            ACTIVE_REPLICA_SET => {
                let r = HandleRequest::decode(body).map_err(bad)?;
                let h = self.handle_with(conn, r.handle, OPEN_WRITE)?;
                let op = Op::ActiveSet { ckpt: h.ckpt };
                self.send(ctx, conn, id, PendingKind::Plain, op)
            }
            STATUS_GET => {
                let r = HandleRequest::decode(body).map_err(bad)?;
                let h = self.handle(conn, r.handle)?;
                let c = self.store.ckpts.get(&h.ckpt).ok_or(AisError::NotExist)?;
                let s = CheckpointStatus {
                    attributes: c.attrs,
                    number_of_sections: u32::try_from(c.sections.len()).unwrap_or(u32::MAX),
                    memory_used: c.data_bytes,
                };
                ctx.respond(conn, id, Ok(()), s.encode());
                Ok(())
            }
            SECTION_CREATE => {
                let r = SectionCreate::decode(body).map_err(bad)?;
                let h = self.handle_with(conn, r.handle, OPEN_WRITE)?;
                let op = Op::SectionCreate {
                    ckpt: h.ckpt,
                    id: r.section_id,
                    exp: r.expiration_time_ns,
                    data: r.initial_data,
                };
                self.send(ctx, conn, id, PendingKind::Plain, op)
            }
            SECTION_DELETE => {
                let r = SectionDelete::decode(body).map_err(bad)?;
                let h = self.handle_with(conn, r.handle, OPEN_WRITE)?;
                let op = Op::SectionDelete {
                    ckpt: h.ckpt,
                    id: r.section_id,
                };
                self.send(ctx, conn, id, PendingKind::Plain, op)
            }
            SECTION_EXPIRATION_TIME_SET => {
                let r = SectionExpirationTimeSet::decode(body).map_err(bad)?;
                let h = self.handle_with(conn, r.handle, OPEN_WRITE)?;
                let op = Op::ExpirationSet {
                    ckpt: h.ckpt,
                    id: r.section_id,
                    exp: r.expiration_time_ns,
                };
                self.send(ctx, conn, id, PendingKind::Plain, op)
            }
            WRITE => {
                let r = Write::decode(body).map_err(bad)?;
                let h = self.handle_with(conn, r.handle, OPEN_WRITE)?;
                let total: usize = r.elements.iter().map(|e| e.data.len()).sum();
                if total > MAX_DATA_BYTES {
                    return Err(AisError::TooBig);
                }
                let op = Op::Write {
                    ckpt: h.ckpt,
                    elements: r.elements,
                };
                self.send(ctx, conn, id, PendingKind::Plain, op)
            }
            SECTION_OVERWRITE => {
                let r = SectionOverwrite::decode(body).map_err(bad)?;
                let h = self.handle_with(conn, r.handle, OPEN_WRITE)?;
                let op = Op::Overwrite {
                    ckpt: h.ckpt,
                    id: r.section_id,
                    data: r.data,
                };
                self.send(ctx, conn, id, PendingKind::Plain, op)
            }
            READ => {
                let r = Read::decode(body).map_err(bad)?;
                let h = self.handle_with(conn, r.handle, OPEN_READ)?;
                let op = Op::Read {
                    ckpt: h.ckpt,
                    elements: r.elements,
                };
                self.send(ctx, conn, id, PendingKind::Plain, op)
            }
            SYNCHRONIZE => {
                let r = HandleRequest::decode(body).map_err(bad)?;
                let h = self.handle_with(conn, r.handle, OPEN_WRITE)?;
                let op = Op::Synchronize { ckpt: h.ckpt };
                self.send(ctx, conn, id, PendingKind::Plain, op)
            }
            SYNCHRONIZE_ASYNC => {
                let r = SynchronizeAsync::decode(body).map_err(bad)?;
                let h = self.handle_with(conn, r.handle, OPEN_WRITE)?;
                let op = Op::Synchronize { ckpt: h.ckpt };
                let kind = PendingKind::SyncAsync {
                    invocation: r.invocation,
                };
                self.send(ctx, conn, id, kind, op)?;
                ctx.respond(conn, id, Ok(()), Bytes::new());
                Ok(())
            }
            ITERATION_INITIALIZE => {
                let r = IterationInitialize::decode(body).map_err(bad)?;
                let h = self.handle(conn, r.handle)?;
                let c = self.store.ckpts.get(&h.ckpt).ok_or(AisError::NotExist)?;
                let max_id = c.attrs.max_section_id_size;
                let cs = self.conns.get_mut(&conn).ok_or(AisError::BadHandle)?;
                if cs.iterations.len() >= MAX_ITERATIONS_PER_CONN {
                    return Err(AisError::NoResources);
                }
                let iteration = self.next_iteration;
                self.next_iteration += 1;
                cs.iterations.insert(
                    iteration,
                    Iteration {
                        ckpt: h.ckpt,
                        chosen: r.sections_chosen,
                        time_ns: r.expiration_time_ns,
                        after: None,
                    },
                );
                let reply = IterationReply {
                    iteration,
                    max_section_id_size: max_id,
                };
                ctx.respond(conn, id, Ok(()), reply.encode());
                Ok(())
            }
            ITERATION_NEXT => {
                let r = IterationRequest::decode(body).map_err(bad)?;
                let d = self.iteration_next(conn, r.iteration)?;
                ctx.respond(conn, id, Ok(()), d.encode());
                Ok(())
            }
            ITERATION_FINALIZE => {
                let r = IterationRequest::decode(body).map_err(bad)?;
                let cs = self.conns.get_mut(&conn).ok_or(AisError::BadHandle)?;
                cs.iterations
                    .remove(&r.iteration)
                    .ok_or(AisError::BadHandle)?;
                ctx.respond(conn, id, Ok(()), Bytes::new());
                Ok(())
            }
            STORE_STATUS => {
                let s = self.store_status();
                ctx.respond(conn, id, Ok(()), s.encode());
                Ok(())
            }
            LIST => {
                let r = List::decode(body).map_err(bad)?;
                let reply = self.list(ctx.now, r.after);
                ctx.respond(conn, id, Ok(()), reply.encode());
                Ok(())
            }
            _ => Err(AisError::NotSupported),
        }
    }

    fn request_open(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        id: u16,
        o: Open,
        invocation: Option<u64>,
    ) -> Result<(), AisError> {
        check_open(&o)?;
        let held = self.conns.get(&conn).map_or(0, |c| c.handles.len());
        let opening = self
            .pending
            .values()
            .filter(|p| p.conn == conn && matches!(p.kind, PendingKind::Open { .. }))
            .count();
        if held + opening >= MAX_HANDLES_PER_CONN {
            return Err(AisError::NoResources);
        }
        let kind = PendingKind::Open {
            invocation,
            flags: o.open_flags,
        };
        let op = Op::Open {
            name: o.name,
            attrs: o.attributes,
            flags: o.open_flags,
        };
        self.send(ctx, conn, id, kind, op)?;
        if invocation.is_some() {
            ctx.respond(conn, id, Ok(()), Bytes::new());
        }
        Ok(())
    }

    fn iteration_next(
        &mut self,
        conn: ConnId,
        iteration: u64,
    ) -> Result<SectionDescriptor, AisError> {
        let it = self
            .conns
            .get(&conn)
            .and_then(|c| c.iterations.get(&iteration))
            .cloned()
            .ok_or(AisError::BadHandle)?;
        let c = self.store.ckpts.get(&it.ckpt).ok_or(AisError::NoSections)?;
        let range = match &it.after {
            None => c.sections.range::<Bytes, _>(..),
            Some(a) => c
                .sections
                .range::<Bytes, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
        };
        let found = range
            .filter(|(_, s)| match it.chosen {
                SectionsChosen::Forever => s.expiration_ns == TIME_END,
                SectionsChosen::LeqExpirationTime => s.expiration_ns <= it.time_ns,
                SectionsChosen::GeqExpirationTime => s.expiration_ns >= it.time_ns,
                SectionsChosen::Corrupted => !s.local.is_valid(),
                SectionsChosen::Any => true,
            })
            .map(|(id, s)| SectionDescriptor {
                section_id: id.clone(),
                expiration_time_ns: s.expiration_ns,
                section_size: s.size,
                state: if s.local.is_valid() {
                    SectionState::Valid
                } else {
                    SectionState::Corrupted
                },
                last_update_ns: s.last_update_ns,
            })
            .next()
            .ok_or(AisError::NoSections)?;
        if let Some(i) = self
            .conns
            .get_mut(&conn)
            .and_then(|c| c.iterations.get_mut(&iteration))
        {
            i.after = Some(found.section_id.clone());
        }
        Ok(found)
    }

    fn store_status(&self) -> StoreStatus {
        StoreStatus {
            node_id: self.me.map_or(0, NodeId::get),
            synced: self.activated,
            checkpoints: u32::try_from(self.store.ckpts.len()).unwrap_or(u32::MAX),
            sections: self.store.section_count(),
            data_bytes: self.store.data_bytes,
            local_bytes: self.store.local_bytes,
            memory_limit_bytes: self.cfg.memory_limit_bytes,
            digest: self.store.digest(),
        }
    }

    fn list(&self, now: Instant, after: Option<CkptId>) -> ListReply {
        let range = match after {
            None => self.store.ckpts.range(..),
            Some(a) => self
                .store
                .ckpts
                .range((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
        };
        let mut entries = Vec::new();
        let mut more = false;
        for (id, c) in range {
            if entries.len() == MAX_LIST_ENTRIES {
                more = true;
                break;
            }
            entries.push(CheckpointInfo {
                key: *id,
                name: c.name.clone(),
                linked: c.linked,
                attributes: c.attrs,
                sections: u32::try_from(c.sections.len()).unwrap_or(u32::MAX),
                data_bytes: c.data_bytes,
                openers: u32::try_from(c.open_count()).unwrap_or(u32::MAX),
                active_replica: c.active.map_or(0, NodeId::get),
                retention_left_ms: self.retention.deadline(*id).map(|at| {
                    u64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
                }),
            });
        }
        ListReply { entries, more }
    }

    /// Answers TIMEOUT to requests in flight too long.
    fn time_out_requests(&mut self, ctx: &mut Ctx<'_>) {
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| {
                !matches!(p.kind, PendingKind::Close { .. })
                    && p.sent_at + REQUEST_TIMEOUT <= ctx.now
            })
            .map(|(&t, _)| t)
            .collect();
        for tag in expired {
            if let Some(p) = self.pending.remove(&tag) {
                self.finish(ctx, p.conn, Some(p), Err(AisError::Timeout), Bytes::new());
            }
        }
    }

    /// The earliest request deadline.
    fn next_request_timeout(&self) -> Option<Instant> {
        self.pending
            .values()
            .filter(|p| !matches!(p.kind, PendingKind::Close { .. }))
            .map(|p| p.sent_at + REQUEST_TIMEOUT)
            .min()
    }
}

impl Engine for Ckpt {
    fn service(&self) -> ServiceId {
        ServiceId::Ckpt
    }

    fn name(&self) -> &'static str {
        "CKPT checkpoints B.01.01"
    }

    /// Everything waits for the sync but the store status, the listing and
    /// the end of an iteration.
    fn request_needs_sync(&self, id: u16) -> bool {
        !matches!(id, STORE_STATUS | LIST | ITERATION_FINALIZE)
    }

    /// Every linked checkpoint as this replica holds it now, in name order:
    /// BACKUP's cut. Section data is shared with the store (a later write
    /// copies it, see `Store::write_local`), so taking it copies no data.
    fn checkpoint_snapshot(&self) -> Option<Vec<crate::backup::SnapshotItem>> {
        let mut out = Vec::with_capacity(self.store.names.len());
        for (name, id) in &self.store.names {
            let Some(c) = self.store.ckpts.get(id) else {
                continue;
            };
            let mut intact = true;
            let sections = c
                .sections
                .iter()
                .map(|(sid, sec)| proto::backup_file::SectionImage {
                    id: sid.clone(),
                    expiration_ns: sec.expiration_ns,
                    data: match &sec.local {
                        store::Local::Valid(d) => d.clone(),
                        _ => {
                            intact = false;
                            Bytes::new()
                        }
                    },
                })
                .collect();
            out.push(crate::backup::SnapshotItem {
                image: proto::backup_file::CheckpointImage {
                    name: name.clone(),
                    attributes: c.attrs,
                    sections,
                },
                intact,
            });
        }
        Some(out)
    }

    fn lib_init(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        self.me = Some(ctx.local());
        self.conns.entry(conn).or_default();
    }

    fn lib_exit(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        self.flush(ctx);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.exiting = true;
        c.iterations.clear();
        let mut ckpts = Vec::new();
        for h in c.handles.values_mut() {
            if !h.closing && !h.exit {
                h.exit = true;
                ckpts.push(h.ckpt);
            }
        }
        if !ckpts.is_empty() {
            let body = RingOp {
                conn: conn.0,
                tag: 0,
                wall_ns: self.wall_ns(ctx.now),
                op: Op::Close { ckpts },
            }
            .encode();
            self.push_outbox(EX_OP, body);
            self.flush(ctx);
        }
        self.reap(conn);
    }

    fn lib_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        id: u16,
        body: Bytes,
    ) -> Result<(), AisError> {
        self.me = Some(ctx.local());
        self.flush(ctx);
        match self.conns.get(&conn) {
            Some(c) if !c.exiting => {}
            _ => return Err(AisError::BadHandle),
        }
        self.request(ctx, conn, id, &body)
    }

    fn exec_deliver(&mut self, ctx: &mut Ctx<'_>, from: NodeId, id: u16, body: Bytes) {
        self.me = Some(ctx.local());
        self.flush(ctx);
        let pos = apply::Position {
            ring: ctx.ring.ring_id,
            index: self.ring_index,
        };
        self.ring_index += 1;
        self.deliver(ctx, from, pos, id, body);
    }

    fn confchg(&mut self, ctx: &mut Ctx<'_>, change: &ConfigChange) {
        self.me = Some(ctx.local());
        match change.kind {
            ConfigKind::Transitional => self.trans_members = change.members.clone(),
            ConfigKind::Regular => self.regular(ctx, change),
        }
    }

    fn has_sync(&self) -> bool {
        true
    }

    fn sync_init(&mut self, ctx: &mut Ctx<'_>) {
        self.sync_start(ctx);
    }

    fn sync_process(&mut self, ctx: &mut Ctx<'_>) -> SyncStep {
        self.flush(ctx);
        self.sync_send(ctx)
    }

    fn sync_activate(&mut self, ctx: &mut Ctx<'_>) {
        self.sync_finish(ctx);
    }

    fn sync_abort(&mut self, _ctx: &mut Ctx<'_>) {
        self.round = None;
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let outbox = self.outbox_retry_at.filter(|_| !self.outbox.is_empty());
        [outbox, self.next_request_timeout(), self.expiry_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_>) {
        self.me = Some(ctx.local());
        self.flush(ctx);
        self.time_out_requests(ctx);
        self.expire_due(ctx);
    }

    /// The first line is the replicated state (equal on identical
    /// replicas): `digest <crc32> checkpoints <n> sections <n> bytes <n>`;
    /// then one line per checkpoint and this node's own counters.
    fn dump(&self) -> String {
        let mut s = format!(
            "digest {:08x} checkpoints {} sections {} bytes {}\n",
            self.store.digest(),
            self.store.ckpts.len(),
            self.store.section_count(),
            self.store.data_bytes
        );
        for (id, c) in &self.store.ckpts {
            s.push_str(&format!(
                "  {}.{}.{} {:?}{} v{} openers {:?} sections {} bytes {} active {:?}\n",
                id.ring_seq,
                id.ring_rep,
                id.index,
                String::from_utf8_lossy(&c.name),
                if c.linked { "" } else { " (unlinked)" },
                c.version,
                c.openers,
                c.sections.len(),
                c.data_bytes,
                c.active,
            ));
        }
        s.push_str(&format!(
            "local {} of {} bytes, activated {}, pending {}, outbox {}, held {}, {:?}",
            self.store.local_bytes,
            self.cfg.memory_limit_bytes,
            self.activated,
            self.pending.len(),
            self.outbox.len(),
            self.buffer.len(),
            self.stats
        ));
        s
    }
}
