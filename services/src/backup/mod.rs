//! The BACKUP engine: cluster-wide consistent backups of the checkpoints.
//!
//! # Protocol
//! Coordinated like NDB's backup (DEFINE / START / STOP / ABORT through one
//! ordered channel; participants answer the coordinator), over the ring:
//! 1. A client's START request makes its node multicast REQUEST (the job:
//!    id, destination, selection, and where the client waits).
//! 2. The master (the lowest node id of the regular configuration) answers
//!    REQUEST with DEFINE, then START. START's position in the total order
//!    is the cut: when it is delivered, every node takes an immutable
//!    snapshot of its CKPT replica ([`crate::Ctx::checkpoint_snapshot`];
//!    the data is shared with the store, copy on write), lists the
//!    checkpoints of the job in name order, and splits them among the
//!    members by one deterministic rule (largest first, to the member with
//!    the fewest bytes so far). Every node computes the same split.
//! 3. Each node hands its share to its driver as file jobs
//!    ([`BackupIo::WriteData`]); the daemon's worker threads write, fsync
//!    and CRC them in parallel and feed the results back
//!    ([`BackupIoDone`]). A written file is REPORTed on the ring; nothing
//!    is reported written that was not flushed with its CRC.
//! 4. Errors are classified ([`ErrorClass`]): a destination error (missing,
//!    not writable, full, device timeout) marks that node unable for the
//!    job and the master RESCHEDULEs its share on other members, or ABORTs
//!    when none is left; a vanished or corrupt checkpoint is recorded in
//!    the failed list and not retried; a transient error is retried
//!    [`MAX_TRANSIENT_ATTEMPTS`] times on the spot.
//! 5. Once every checkpoint has an outcome the master sends STOP, writes
//!    the manifest (with every file's size and CRC-32, the cut, the ring,
//!    the members), and sends COMPLETE once it is flushed. ABORT makes
//!    every node remove its files of the job.
//! 6. The node the client asked answers it (a completion callback with the
//!    result and the failed list), whichever node is master: replies go to
//!    the coordinator that asked.
//!
//! # Master takeover
//! Every node applies every message, so every member holds the job's
//! state. In the BACKUP step of the barrier sync every member re-registers
//! each running job with the (possibly new) master: REGISTER carries its
//! job state (phase, cut, per-checkpoint outcome) and whether it holds the
//! job's snapshot. Every node merges the registrations in delivery order,
//! so all agree on who can still write (the members holding the snapshot).
//! After the step the master reschedules every checkpoint not yet written
//! that a node which left owned (what it wrote and reported is flushed with
//! its CRC, and stays), and finishes the job (STOP, manifest, COMPLETE) or
//! aborts it. A node whose master is unreachable keeps its state and unsent
//! reports and re-registers when a ring forms again; SIGHUP makes a node
//! re-register at once ([`crate::ServiceTable::backup_reregister`]).
//!
//! Restore needs no engine of its own: the library reads the files and
//! writes the checkpoints through CKPT, so every replica gets them.

mod io;
mod wire;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use log::{info, warn};
use proto::backup::{
    Completion, ErrorClass, FailedCheckpoint, JobPhase, JobStatus, ListReply, NodeError, Start,
    StartReply, StatusRequest, CB_COMPLETE, LIST, MAX_JOBS, START, STATUS,
};
use proto::backup_file::{
    backup_dir_name, data_file_name, manifest_path, Cut, Manifest, ManifestEntry,
};
use proto::ckpt::CreationAttributes;
use proto::{AisError, ServiceId};
use totem::{ConfigChange, ConfigKind, Guarantee, Instant};

use crate::engine::{ConnId, Ctx, Engine, SyncStep};

pub use io::{BackupIo, BackupIoDone, SnapshotItem};
pub use wire::{ItemMeta, ItemState, Msg, Outcome, Register, Request};

/// Most jobs running at once (START beyond: `SA_AIS_ERR_NO_RESOURCES`).
pub const MAX_ACTIVE_JOBS: usize = 8;
/// Attempts at a data file that meets transient errors.
pub const MAX_TRANSIENT_ATTEMPTS: u32 = 3;
/// How soon a multicast refused by a full ring queue is tried again.
const RETRY_DELAY: Duration = Duration::from_millis(20);
/// Most messages waiting for room on the ring (reports and decisions; at
/// most one per checkpoint of each running job, so this bound holds).
const MAX_OUTBOX: usize = MAX_ACTIVE_JOBS * proto::backup::MAX_CHECKPOINTS + 64;

/// What the engine is built from.
#[derive(Clone, Copy, Debug)]
pub struct BackupConfig {
    /// When the executive started (ns since the epoch): seeds the job
    /// numbers, so a restarted node does not reuse its earlier ids.
    pub boot_timestamp_ns: i64,
}

/// Counters of the engine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackupStats {
    /// Ring messages that did not decode, or named no job: dropped.
    pub dropped: u64,
    /// Jobs done.
    pub done: u64,
    /// Jobs aborted.
    pub aborted: u64,
    /// Checkpoints rescheduled onto another node.
    pub rescheduled: u64,
    /// Data files retried after a transient error.
    pub retried: u64,
}

/// One checkpoint of a job.
#[derive(Clone, Debug)]
struct Item {
    name: Bytes,
    attributes: CreationAttributes,
    sections: u32,
    data_bytes: u64,
    state: ItemState,
}

/// A job, as every node holds it.
#[derive(Debug)]
struct Job {
    request: Request,
    phase: JobPhase,
    reason: String,
    cut: Option<Cut>,
    /// Members at the cut.
    members: Vec<u32>,
    /// Members that hold the snapshot and are still in the ring.
    holders: BTreeSet<u32>,
    /// Holders re-registered in the running sync step.
    registered: Option<BTreeSet<u32>>,
    /// Nodes whose destination failed: they take no share any more.
    bad: BTreeSet<u32>,
    items: Vec<Item>,
    errors: Vec<NodeError>,
    // ----- local to this node -----
    /// This node's snapshot at the cut, by item (`None`: vanished).
    snapshot: Option<Vec<Option<SnapshotItem>>>,
    /// Items this node has a file job running for.
    writing: BTreeSet<u32>,
    /// Transient failures per item here.
    attempts: BTreeMap<u32, u32>,
    /// Files this node wrote or is writing (relative to the backup dir).
    my_files: BTreeSet<String>,
    /// This node (as master) has the manifest write running.
    manifest_writing: bool,
}

impl Job {
    fn new(request: Request) -> Job {
        Job {
            request,
            phase: JobPhase::Requested,
            reason: String::new(),
            cut: None,
            members: Vec::new(),
            holders: BTreeSet::new(),
            registered: None,
            bad: BTreeSet::new(),
            items: Vec::new(),
            errors: Vec::new(),
            snapshot: None,
            writing: BTreeSet::new(),
            attempts: BTreeMap::new(),
            my_files: BTreeSet::new(),
            manifest_writing: false,
        }
    }

    /// The destination directory (data file paths are relative to it).
    fn destination(&self) -> String {
        let dest = self.request.destination.trim_end_matches('/');
        if dest.is_empty() {
            "/".to_owned()
        } else {
            dest.to_owned()
        }
    }

    /// The backup's directory (its manifest's).
    fn dir(&self) -> String {
        let dest = self.request.destination.trim_end_matches('/');
        format!("{dest}/{}", backup_dir_name(self.request.backup_id))
    }

    fn status(&self, master: u32) -> JobStatus {
        let done = self
            .items
            .iter()
            .filter(|i| matches!(i.state, ItemState::Done { .. }));
        JobStatus {
            backup_id: self.request.backup_id,
            phase: self.phase,
            master,
            destination: self.request.destination.clone(),
            directory: self.dir(),
            checkpoints_total: self.items.len() as u32,
            checkpoints_done: done.clone().count() as u32,
            bytes_total: self.items.iter().map(|i| i.data_bytes).sum(),
            bytes_done: done.map(|i| i.data_bytes).sum(),
            reason: self.reason.clone(),
            failed: self
                .items
                .iter()
                .filter_map(|i| match &i.state {
                    ItemState::Failed { class, message } => Some(FailedCheckpoint {
                        name: i.name.clone(),
                        class: *class,
                        message: message.clone(),
                    }),
                    _ => None,
                })
                .collect(),
            errors: self.errors.clone(),
        }
    }

    fn register(&self, node: u32) -> Register {
        Register {
            request: self.request.clone(),
            node,
            phase: self.phase as u32,
            has_snapshot: self.snapshot.is_some(),
            reason: self.reason.clone(),
            cut: self.cut,
            members: self.members.clone(),
            items: self.items.iter().map(|i| i.state.clone()).collect(),
            errors: self.errors.clone(),
            meta: self
                .items
                .iter()
                .map(|i| ItemMeta {
                    name: i.name.clone(),
                    attributes: i.attributes,
                    sections: i.sections,
                    data_bytes: i.data_bytes,
                })
                .collect(),
        }
    }

    /// Bytes assigned to `node` (pending or written by it).
    fn load(&self, node: u32) -> u64 {
        self.items
            .iter()
            .filter(|i| match &i.state {
                ItemState::Pending { owner } => *owner == node,
                ItemState::Done { node: n, .. } => *n == node,
                ItemState::Failed { .. } => false,
            })
            .map(|i| i.data_bytes)
            .sum()
    }

    fn all_final(&self) -> bool {
        self.items
            .iter()
            .all(|i| !matches!(i.state, ItemState::Pending { .. }))
    }
}

/// The BACKUP engine.
#[derive(Debug)]
pub struct Backup {
    next_seq: u32,
    jobs: BTreeMap<u64, Job>,
    /// Ended jobs, newest first, at most [`MAX_JOBS`].
    finished: VecDeque<JobStatus>,
    /// Jobs this node put on the ring whose REQUEST is not delivered yet
    /// (so STATUS knows them at once); at most [`MAX_ACTIVE_JOBS`].
    requested: BTreeMap<u64, Request>,
    io_out: VecDeque<BackupIo>,
    outbox: VecDeque<Msg>,
    retry_at: Option<Instant>,
    /// Master decisions sent in this configuration: (job, message, item).
    sent: BTreeSet<(u64, u16, u32)>,
    /// Jobs still to re-register in the running sync step.
    to_register: Vec<u64>,
    /// A BACKUP sync step is running (registrations are collected).
    syncing: bool,
    /// This node's REPORTs not yet delivered back to it: (job, item). A
    /// SIGTERM waits for them, so what it wrote counts.
    /// Sent again after a configuration change (a report may be lost with
    /// the old ring; applying one twice changes nothing).
    unconfirmed: BTreeMap<(u64, u32), Msg>,
    stats: BackupStats,
}

impl Backup {
    /// A new engine.
    pub fn new(cfg: BackupConfig) -> Backup {
        // Seconds since the epoch: a restart a second or more later starts
        // past every id this node handed out before.
        let next_seq = (cfg.boot_timestamp_ns / 1_000_000_000) as u32;
        Backup {
            next_seq,
            jobs: BTreeMap::new(),
            finished: VecDeque::new(),
            requested: BTreeMap::new(),
            io_out: VecDeque::new(),
            outbox: VecDeque::new(),
            retry_at: None,
            sent: BTreeSet::new(),
            to_register: Vec::new(),
            syncing: false,
            unconfirmed: BTreeMap::new(),
            stats: BackupStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &BackupStats {
        &self.stats
    }

    /// Whether this node has work of a job in flight: file jobs running or
    /// queued, or reports not yet on the ring (SIGTERM waits for these).
    pub fn busy(&self) -> bool {
        !self.io_out.is_empty()
            || !self.outbox.is_empty()
            || !self.unconfirmed.is_empty()
            || self
                .jobs
                .values()
                .any(|j| !j.writing.is_empty() || j.manifest_writing)
    }

    fn master(ctx: &Ctx<'_>) -> u32 {
        ctx.ring.members.first().map_or(0, |n| n.get())
    }

    fn is_master(ctx: &Ctx<'_>) -> bool {
        Self::master(ctx) == ctx.local().get()
    }

    // ----- sending -----------------------------------------------------------

    /// Multicasts `m` now or queues it; false if it had to be queued.
    fn send(&mut self, ctx: &mut Ctx<'_>, m: Msg) -> bool {
        if self.outbox.is_empty() {
            let (id, body) = m.encode();
            if ctx.mcast(id, &body, Guarantee::Agreed).is_ok() {
                return true;
            }
        }
        if self.outbox.len() < MAX_OUTBOX {
            self.outbox.push_back(m);
        } else {
            warn!("BACKUP: outbox full, a message is dropped (the sync re-registers its state)");
        }
        self.retry_at = Some(ctx.now + RETRY_DELAY);
        false
    }

    fn flush(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(m) = self.outbox.front() {
            let (id, body) = m.encode();
            if ctx.mcast(id, &body, Guarantee::Agreed).is_err() {
                self.retry_at = Some(ctx.now + RETRY_DELAY);
                return;
            }
            self.outbox.pop_front();
        }
        self.retry_at = None;
    }

    /// A master decision, sent at most once per configuration.
    fn decide(&mut self, ctx: &mut Ctx<'_>, key: (u64, u16, u32), m: Msg) {
        if self.sent.contains(&key) {
            return;
        }
        self.sent.insert(key);
        self.send(ctx, m);
    }

    // ----- the master --------------------------------------------------------

    /// What the master must send or do for every job, from the jobs' state
    /// (so a new master picks up where the old one was).
    fn drive(&mut self, ctx: &mut Ctx<'_>) {
        if !Self::is_master(ctx) {
            return;
        }
        let ids: Vec<u64> = self.jobs.keys().copied().collect();
        for id in ids {
            let Some(job) = self.jobs.get(&id) else {
                continue;
            };
            match job.phase {
                JobPhase::Requested => self.decide(
                    ctx,
                    (id, wire::DEFINE, 0),
                    Msg::Define {
                        backup_id: id,
                        master: ctx.local().get(),
                    },
                ),
                JobPhase::Defined => {
                    self.decide(ctx, (id, wire::START, 0), Msg::Start { backup_id: id })
                }
                JobPhase::Running => self.drive_running(ctx, id),
                JobPhase::Stopping => {
                    let me = ctx.local().get();
                    let ring = ctx.ring.members.clone();
                    let job = self.jobs.get_mut(&id).expect("listed above");
                    if !job.manifest_writing {
                        job.manifest_writing = true;
                        let manifest = manifest(job, me);
                        // What members that left may have left behind
                        // (reachable on a shared destination) goes before
                        // the manifest, so a complete backup has no stray
                        // file.
                        let kept: BTreeSet<&String> =
                            manifest.entries.iter().map(|e| &e.file).collect();
                        let remove_first = job
                            .members
                            .iter()
                            .filter(|&&m| m != me && !ring.iter().any(|n| n.get() == m))
                            .flat_map(|&m| {
                                (0..job.items.len() as u32).map(move |i| data_file_name(id, m, i))
                            })
                            .filter(|f| !kept.contains(f))
                            .collect();
                        self.io_out.push_back(BackupIo::WriteManifest {
                            backup_id: id,
                            dir: job.dir(),
                            manifest,
                            remove_first,
                        });
                    }
                }
                JobPhase::Done | JobPhase::Aborted => {}
            }
        }
    }

    fn drive_running(&mut self, ctx: &mut Ctx<'_>, id: u64) {
        let job = &self.jobs[&id];
        let candidates: Vec<u32> = job.holders.difference(&job.bad).copied().collect();
        let mut load: BTreeMap<u32, u64> = candidates.iter().map(|&n| (n, job.load(n))).collect();
        let mut moves = Vec::new();
        for (i, item) in job.items.iter().enumerate() {
            let ItemState::Pending { owner } = item.state else {
                continue;
            };
            if job.holders.contains(&owner) && !job.bad.contains(&owner) {
                continue;
            }
            // Least loaded candidate, lowest id on ties.
            let Some((&to, _)) = load.iter().min_by_key(|&(&n, &l)| (l, n)) else {
                let why = if job.errors.is_empty() {
                    "no member holding the snapshot is left to write".to_owned()
                } else {
                    let errs: Vec<String> = job
                        .errors
                        .iter()
                        .map(|e| format!("node {}: {}: {}", e.node, e.class, e.message))
                        .collect();
                    format!("no node can write the backup: {}", errs.join("; "))
                };
                self.decide(
                    ctx,
                    (id, wire::ABORT, 0),
                    Msg::Abort {
                        backup_id: id,
                        reason: why,
                    },
                );
                return;
            };
            *load.get_mut(&to).expect("a candidate") += item.data_bytes;
            moves.push((i as u32, owner, to));
        }
        for (item, from, to) in moves {
            self.decide(
                ctx,
                (id, wire::RESCHEDULE, item),
                Msg::Reschedule {
                    backup_id: id,
                    item,
                    from,
                    to,
                },
            );
        }
        if self.jobs[&id].all_final() {
            self.decide(ctx, (id, wire::STOP, 0), Msg::Stop { backup_id: id });
        }
    }

    // ----- applying the ring's messages -----------------------------------------

    fn apply(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        match msg {
            Msg::Request(r) => {
                self.requested.remove(&r.backup_id);
                let known = self.jobs.contains_key(&r.backup_id)
                    || self.finished.iter().any(|j| j.backup_id == r.backup_id);
                if !known && self.jobs.len() < 2 * MAX_ACTIVE_JOBS {
                    info!(
                        "BACKUP: job {:016x} requested by node {} into {}",
                        r.backup_id, r.requester, r.destination
                    );
                    self.jobs.insert(r.backup_id, Job::new(r));
                } else {
                    self.stats.dropped += 1;
                }
            }
            Msg::Define { backup_id, master } => {
                if let Some(j) = self.jobs.get_mut(&backup_id) {
                    if j.phase == JobPhase::Requested {
                        j.phase = JobPhase::Defined;
                        info!("BACKUP: job {backup_id:016x} defined by master {master}");
                    }
                }
            }
            Msg::Start { backup_id } => self.on_start(ctx, backup_id),
            Msg::Report {
                backup_id,
                node,
                item,
                outcome,
            } => {
                if node == ctx.local().get() {
                    self.unconfirmed.remove(&(backup_id, item));
                }
                self.on_report(backup_id, node, item, outcome);
            }
            Msg::Reschedule {
                backup_id,
                item,
                from,
                to,
            } => {
                let me = ctx.local().get();
                let Some(j) = self.jobs.get_mut(&backup_id) else {
                    return;
                };
                let Some(it) = j.items.get_mut(item as usize) else {
                    return;
                };
                if j.phase == JobPhase::Running && it.state == (ItemState::Pending { owner: from })
                {
                    it.state = ItemState::Pending { owner: to };
                    self.stats.rescheduled += 1;
                    info!("BACKUP: job {backup_id:016x}: checkpoint {item} moves from node {from} to node {to}");
                    if to == me {
                        self.queue_write(me, backup_id, item);
                    }
                }
            }
            Msg::Stop { backup_id } => {
                if let Some(j) = self.jobs.get_mut(&backup_id) {
                    if j.phase == JobPhase::Running {
                        j.phase = JobPhase::Stopping;
                    }
                }
            }
            Msg::Abort { backup_id, reason } => self.on_abort(ctx, backup_id, reason),
            Msg::Complete { backup_id, .. } => self.on_complete(ctx, backup_id),
            Msg::Register(r) => self.on_register(ctx, r),
        }
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_>, backup_id: u64) {
        let Some(job) = self.jobs.get_mut(&backup_id) else {
            return;
        };
        if job.phase != JobPhase::Defined {
            return;
        }
        let members: Vec<u32> = ctx.ring.members.iter().map(|n| n.get()).collect();
        job.cut = Some(Cut {
            ring_seq: ctx.ring.ring_id.seq,
            ring_rep: ctx.ring.ring_id.rep.get(),
            position: ctx.delivery_position(),
        });
        job.phase = JobPhase::Running;
        job.holders = members.iter().copied().collect();
        job.members = members.clone();
        // The cut: what the store holds now, shared copy on write.
        let snapshot = ctx.checkpoint_snapshot().unwrap_or_default();
        let wanted: Option<BTreeSet<&Bytes>> = if job.request.selection.is_empty() {
            None
        } else {
            Some(job.request.selection.iter().collect())
        };
        let mut by_name: BTreeMap<Bytes, Option<SnapshotItem>> = BTreeMap::new();
        for s in snapshot {
            if wanted.as_ref().is_none_or(|w| w.contains(&s.image.name)) {
                by_name.insert(s.image.name.clone(), Some(s));
            }
        }
        if let Some(w) = &wanted {
            for n in w {
                by_name.entry((*n).clone()).or_insert(None);
            }
        }
        let mut items = Vec::with_capacity(by_name.len());
        let mut snap = Vec::with_capacity(by_name.len());
        for (name, s) in by_name {
            let item = match &s {
                Some(s) => Item {
                    name,
                    attributes: s.image.attributes,
                    sections: s.image.sections.len() as u32,
                    data_bytes: s.image.data_bytes(),
                    state: ItemState::Pending { owner: 0 },
                },
                None => Item {
                    name,
                    attributes: CreationAttributes::ZERO,
                    sections: 0,
                    data_bytes: 0,
                    state: ItemState::Failed {
                        class: ErrorClass::Vanished,
                        message: "no such checkpoint at the cut".into(),
                    },
                },
            };
            items.push(item);
            snap.push(s);
        }
        // The split: largest first, each to the member with the fewest
        // bytes so far (lowest id on ties). Every node computes the same.
        let mut order: Vec<usize> = (0..items.len())
            .filter(|&i| matches!(items[i].state, ItemState::Pending { .. }))
            .collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(items[i].data_bytes), i));
        let mut load: BTreeMap<u32, u64> = members.iter().map(|&m| (m, 0)).collect();
        for i in order {
            let Some((&to, _)) = load.iter().min_by_key(|&(&n, &l)| (l, n)) else {
                break;
            };
            *load.get_mut(&to).expect("a member") += items[i].data_bytes;
            items[i].state = ItemState::Pending { owner: to };
        }
        info!(
            "BACKUP: job {backup_id:016x} started: cut at ring {}:{} position {}, {} checkpoint(s) over {} member(s)",
            ctx.ring.ring_id.seq,
            ctx.ring.ring_id.rep.get(),
            ctx.delivery_position(),
            items.len(),
            members.len()
        );
        job.items = items;
        job.snapshot = Some(snap);
        let me = ctx.local().get();
        let mine: Vec<u32> = job
            .items
            .iter()
            .enumerate()
            .filter(|(_, it)| it.state == ItemState::Pending { owner: me })
            .map(|(i, _)| i as u32)
            .collect();
        for i in mine {
            self.queue_write(me, backup_id, i);
        }
    }

    /// Hands the driver the file job for item `item` (owned by this node),
    /// or reports at once what needs no file.
    fn queue_write(&mut self, me: u32, backup_id: u64, item: u32) {
        let Some(job) = self.jobs.get_mut(&backup_id) else {
            return;
        };
        if job.writing.contains(&item) {
            return;
        }
        let snap = job
            .snapshot
            .as_ref()
            .and_then(|s| s.get(item as usize))
            .cloned()
            .flatten();
        let outcome = match snap {
            Some(s) if s.intact => {
                let file = data_file_name(backup_id, me, item);
                job.writing.insert(item);
                job.my_files.insert(file.clone());
                self.io_out.push_back(BackupIo::WriteData {
                    backup_id,
                    item,
                    dir: job.destination(),
                    file,
                    image: s.image,
                });
                return;
            }
            Some(_) => Outcome::Error {
                class: ErrorClass::Corrupt,
                message: format!("node {me}: a section of this replica is corrupted"),
            },
            None => Outcome::Error {
                class: ErrorClass::Vanished,
                message: format!("node {me} holds no snapshot of it"),
            },
        };
        self.outbox.push_back(Msg::Report {
            backup_id,
            node: me,
            item,
            outcome,
        });
    }

    fn on_report(&mut self, backup_id: u64, node: u32, item: u32, outcome: Outcome) {
        let Some(j) = self.jobs.get_mut(&backup_id) else {
            return;
        };
        if j.phase != JobPhase::Running {
            return;
        }
        let Some(it) = j.items.get_mut(item as usize) else {
            self.stats.dropped += 1;
            return;
        };
        if it.state != (ItemState::Pending { owner: node }) {
            return; // moved elsewhere meanwhile: this file is an orphan
        }
        match outcome {
            Outcome::Written { file, digest } => {
                it.state = ItemState::Done { node, file, digest };
            }
            Outcome::Error { class, message } if class.is_destination() => {
                warn!("BACKUP: job {backup_id:016x}: node {node} cannot write: {class}: {message}");
                if j.bad.insert(node) && j.errors.len() < proto::backup::MAX_ERRORS {
                    j.errors.push(NodeError {
                        node,
                        class,
                        message,
                    });
                }
            }
            Outcome::Error { class, message } => {
                warn!(
                    "BACKUP: job {backup_id:016x}: checkpoint {} failed: {class}: {message}",
                    String::from_utf8_lossy(&it.name)
                );
                it.state = ItemState::Failed { class, message };
            }
        }
    }

    fn on_abort(&mut self, ctx: &mut Ctx<'_>, backup_id: u64, reason: String) {
        let Some(mut job) = self.jobs.remove(&backup_id) else {
            return;
        };
        warn!("BACKUP: job {backup_id:016x} aborted: {reason}");
        job.phase = JobPhase::Aborted;
        job.reason = reason;
        let me = ctx.local().get();
        let mut files: Vec<String> = job.my_files.iter().cloned().collect();
        let bdir = backup_dir_name(backup_id);
        let mut dirs = vec![format!("node-{me}/{bdir}")];
        if Self::is_master(ctx) {
            // The master also clears what members that left may have left
            // behind (reachable when the destination is shared), and the
            // manifest if it got that far.
            files.push(manifest_path(backup_id));
            for &m in &job.members {
                if m != me && !ctx.ring.members.iter().any(|n| n.get() == m) {
                    files.extend(
                        (0..job.items.len() as u32).map(|i| data_file_name(backup_id, m, i)),
                    );
                    dirs.push(format!("node-{m}/{bdir}"));
                }
            }
            dirs.push(bdir);
        }
        self.io_out.push_back(BackupIo::Remove {
            backup_id,
            dir: job.destination(),
            files,
            dirs,
        });
        self.stats.aborted += 1;
        self.finish(ctx, job, Err(AisError::FailedOperation));
    }

    fn on_complete(&mut self, ctx: &mut Ctx<'_>, backup_id: u64) {
        let Some(job) = self.jobs.get(&backup_id) else {
            return;
        };
        if job.phase != JobPhase::Stopping {
            return;
        }
        let mut job = self.jobs.remove(&backup_id).expect("checked above");
        job.phase = JobPhase::Done;
        let kept: BTreeSet<&String> = job
            .items
            .iter()
            .filter_map(|i| match &i.state {
                ItemState::Done { file, .. } => Some(file),
                _ => None,
            })
            .collect();
        // Files this node wrote for checkpoints that moved elsewhere.
        let orphans: Vec<String> = job
            .my_files
            .iter()
            .filter(|f| !kept.contains(f))
            .cloned()
            .collect();
        if !orphans.is_empty() {
            self.io_out.push_back(BackupIo::Remove {
                backup_id,
                dir: job.destination(),
                files: orphans,
                dirs: Vec::new(),
            });
        }
        info!(
            "BACKUP: job {backup_id:016x} done: {} checkpoint(s) in {}",
            job.items.len(),
            job.dir()
        );
        self.stats.done += 1;
        self.finish(ctx, job, Ok(()));
    }

    /// A job ended: its requester's node answers the client; the job
    /// goes to the history.
    fn finish(&mut self, ctx: &mut Ctx<'_>, job: Job, status: Result<(), AisError>) {
        let id = job.request.backup_id;
        self.unconfirmed.retain(|&(j, _), _| j != id);
        let master = Self::master(ctx);
        let s = job.status(master);
        if job.request.requester == ctx.local().get() {
            let c = Completion {
                invocation: job.request.invocation,
                status,
                job: s.clone(),
            };
            ctx.callback(ConnId(job.request.conn), CB_COMPLETE, c.encode());
        }
        self.finished.push_front(s);
        self.finished.truncate(MAX_JOBS);
    }

    fn on_register(&mut self, ctx: &mut Ctx<'_>, r: Register) {
        let id = r.request.backup_id;
        if self.finished.iter().any(|j| j.backup_id == id) {
            return;
        }
        let Some(phase) = JobPhase::from_code(r.phase) else {
            self.stats.dropped += 1;
            return;
        };
        if !self.jobs.contains_key(&id) {
            if self.jobs.len() >= 2 * MAX_ACTIVE_JOBS {
                self.stats.dropped += 1;
                return;
            }
            let mut j = Job::new(r.request.clone());
            j.registered = self.syncing.then(BTreeSet::new);
            self.jobs.insert(id, j);
        }
        if !self.syncing && Self::is_master(ctx) {
            // Outside a sync step only a SIGHUP sends these.
            info!(
                "BACKUP: job {id:016x}: node {} re-registered ({phase:?})",
                r.node
            );
        }
        let j = self.jobs.get_mut(&id).expect("inserted above");
        // Merge: the most advanced phase, the first cut, and per item the
        // most final state; so every node, applying the registrations in
        // the same order, ends with the same job.
        let rank = |p: JobPhase| p as u32;
        if rank(phase) > rank(j.phase) && !phase.is_final() {
            j.phase = phase;
        }
        if j.cut.is_none() {
            j.cut = r.cut;
            j.members.clone_from(&r.members);
        }
        if j.items.is_empty() && !r.items.is_empty() && r.meta.len() == r.items.len() {
            j.items = r
                .items
                .iter()
                .zip(&r.meta)
                .map(|(s, m)| Item {
                    name: m.name.clone(),
                    attributes: m.attributes,
                    sections: m.sections,
                    data_bytes: m.data_bytes,
                    state: s.clone(),
                })
                .collect();
        } else if j.items.len() == r.items.len() {
            for (it, s) in j.items.iter_mut().zip(&r.items) {
                if matches!(it.state, ItemState::Pending { .. })
                    && !matches!(s, ItemState::Pending { .. })
                {
                    it.state = s.clone();
                }
            }
        }
        for e in r.errors {
            if j.bad.insert(e.node) && j.errors.len() < proto::backup::MAX_ERRORS {
                j.errors.push(e);
            }
        }
        if r.has_snapshot && ctx.ring.members.iter().any(|n| n.get() == r.node) {
            match &mut j.registered {
                Some(reg) => {
                    reg.insert(r.node);
                }
                None => {
                    j.holders.insert(r.node);
                }
            }
        }
    }

    // ----- results from the driver ----------------------------------------------

    /// A file job ended.
    pub fn handle_io_done(&mut self, ctx: &mut Ctx<'_>, done: BackupIoDone) {
        let me = ctx.local().get();
        let id = done.backup_id;
        let Some(job) = self.jobs.get_mut(&id) else {
            return; // aborted meanwhile: the driver removed its file
        };
        match done.item {
            None => {
                // Stays set after a success: COMPLETE is on its way, the
                // manifest must not be written again meanwhile.
                job.manifest_writing = done.result.is_ok();
                if job.phase != JobPhase::Stopping || !Self::is_master(ctx) {
                    return;
                }
                let m = match done.result {
                    Ok(digest) => Msg::Complete {
                        backup_id: id,
                        manifest: digest,
                    },
                    Err((class, message)) => Msg::Abort {
                        backup_id: id,
                        reason: format!("manifest not written on node {me}: {class}: {message}"),
                    },
                };
                self.send(ctx, m);
            }
            Some(item) => {
                job.writing.remove(&item);
                let owned = job.phase == JobPhase::Running
                    && job
                        .items
                        .get(item as usize)
                        .is_some_and(|i| i.state == ItemState::Pending { owner: me });
                if !owned {
                    return;
                }
                let outcome = match done.result {
                    Ok(digest) => Outcome::Written {
                        file: data_file_name(id, me, item),
                        digest,
                    },
                    Err((ErrorClass::Transient, message)) => {
                        let n = job.attempts.entry(item).or_insert(0);
                        *n += 1;
                        if *n < MAX_TRANSIENT_ATTEMPTS {
                            self.stats.retried += 1;
                            self.queue_write(me, id, item);
                            return;
                        }
                        Outcome::Error {
                            class: ErrorClass::Transient,
                            message: format!("after {n} attempts: {message}"),
                        }
                    }
                    Err((class, message)) => Outcome::Error {
                        class,
                        message: format!("node {me}: {message}"),
                    },
                };
                let report = Msg::Report {
                    backup_id: id,
                    node: me,
                    item,
                    outcome,
                };
                self.unconfirmed.insert((id, item), report.clone());
                self.send(ctx, report);
            }
        }
        self.flush(ctx);
        self.drive(ctx);
    }

    /// The next file job for the driver.
    pub fn poll_io(&mut self) -> Option<BackupIo> {
        self.io_out.pop_front()
    }

    /// Re-registers every running job with the master now (SIGHUP).
    pub fn reregister(&mut self, ctx: &mut Ctx<'_>) {
        let me = ctx.local().get();
        let regs: Vec<Msg> = self
            .jobs
            .values()
            .map(|j| Msg::Register(j.register(me)))
            .collect();
        if !regs.is_empty() {
            info!(
                "BACKUP: re-registering {} running job(s) with master {}",
                regs.len(),
                Self::master(ctx)
            );
        }
        for m in regs {
            self.send(ctx, m);
        }
    }

    fn lookup(&self, ctx: &Ctx<'_>, id: u64) -> Option<JobStatus> {
        let master = Self::master(ctx);
        self.jobs
            .get(&id)
            .map(|j| j.status(master))
            .or_else(|| self.finished.iter().find(|j| j.backup_id == id).cloned())
            .or_else(|| {
                self.requested
                    .get(&id)
                    .map(|r| Job::new(r.clone()).status(master))
            })
    }
}

/// The manifest of `job` as master `master` writes it.
fn manifest(job: &Job, master: u32) -> Manifest {
    let mut entries = Vec::new();
    let mut failed = Vec::new();
    for (i, it) in job.items.iter().enumerate() {
        match &it.state {
            ItemState::Done { node, file, digest } => entries.push(ManifestEntry {
                index: i as u32,
                name: it.name.clone(),
                attributes: it.attributes,
                sections: it.sections,
                data_bytes: it.data_bytes,
                file: file.clone(),
                digest: *digest,
                written_by: *node,
            }),
            ItemState::Failed { class, message } => failed.push(FailedCheckpoint {
                name: it.name.clone(),
                class: *class,
                message: message.clone(),
            }),
            ItemState::Pending { .. } => {}
        }
    }
    Manifest {
        backup_id: job.request.backup_id,
        cut: job.cut.unwrap_or(Cut {
            ring_seq: 0,
            ring_rep: 0,
            position: 0,
        }),
        master,
        members: job.members.clone(),
        selection: job.request.selection.clone(),
        entries,
        failed,
        errors: job.errors.clone(),
    }
}

impl Engine for Backup {
    fn service(&self) -> ServiceId {
        ServiceId::Backup
    }

    fn name(&self) -> &'static str {
        "BACKUP"
    }

    fn request_needs_sync(&self, id: u16) -> bool {
        id == START
    }

    fn lib_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        id: u16,
        body: Bytes,
    ) -> Result<(), AisError> {
        match id {
            START => {
                let s = Start::decode(&body).map_err(|_| AisError::InvalidParam)?;
                if !s.destination.starts_with('/') || s.destination.contains('\0') {
                    return Err(AisError::InvalidParam);
                }
                if self.jobs.len() + self.requested.len() >= MAX_ACTIVE_JOBS {
                    return Err(AisError::NoResources);
                }
                let me = ctx.local().get();
                let backup_id = (u64::from(me) << 32) | u64::from(self.next_seq);
                let mut selection = s.checkpoints;
                selection.sort();
                selection.dedup();
                let m = Msg::Request(Request {
                    backup_id,
                    requester: me,
                    conn: conn.0,
                    invocation: s.invocation,
                    destination: s.destination,
                    selection,
                });
                self.flush(ctx);
                if !self.outbox.is_empty() {
                    return Err(AisError::TryAgain);
                }
                let (mid, b) = m.encode();
                ctx.mcast(mid, &b, Guarantee::Agreed)?;
                if let Msg::Request(r) = m {
                    self.requested.insert(backup_id, r);
                }
                self.next_seq = self.next_seq.wrapping_add(1);
                ctx.respond(conn, id, Ok(()), StartReply { backup_id }.encode());
                Ok(())
            }
            STATUS => {
                let q = StatusRequest::decode(&body).map_err(|_| AisError::InvalidParam)?;
                let s = self.lookup(ctx, q.backup_id).ok_or(AisError::NotExist)?;
                ctx.respond(conn, id, Ok(()), s.encode());
                Ok(())
            }
            LIST => {
                let master = Self::master(ctx);
                let mut jobs: Vec<JobStatus> =
                    self.jobs.values().rev().map(|j| j.status(master)).collect();
                jobs.extend(self.finished.iter().cloned());
                jobs.truncate(MAX_JOBS);
                ctx.respond(conn, id, Ok(()), ListReply { jobs }.encode());
                Ok(())
            }
            _ => Err(AisError::NotSupported),
        }
    }

    fn exec_deliver(&mut self, ctx: &mut Ctx<'_>, _from: totem::NodeId, id: u16, body: Bytes) {
        match Msg::decode(id, &body) {
            Ok(m) => self.apply(ctx, m),
            Err(e) => {
                self.stats.dropped += 1;
                warn!("BACKUP: dropping malformed message {id}: {e}");
                return;
            }
        }
        self.flush(ctx);
        if ctx.ring.synced {
            self.drive(ctx);
        }
    }

    fn confchg(&mut self, ctx: &mut Ctx<'_>, change: &ConfigChange) {
        if change.kind == ConfigKind::Regular {
            // Decisions are re-derived from the state by whoever is master
            // of the new configuration.
            self.sent.clear();
            let again: Vec<Msg> = self.unconfirmed.values().cloned().collect();
            for m in again {
                if self.outbox.len() < MAX_OUTBOX {
                    self.outbox.push_back(m);
                }
            }
            self.retry_at = Some(ctx.now);
        }
    }

    fn has_sync(&self) -> bool {
        true
    }

    fn sync_init(&mut self, _ctx: &mut Ctx<'_>) {
        self.syncing = true;
        self.to_register = self.jobs.keys().copied().collect();
        for j in self.jobs.values_mut() {
            j.registered = Some(BTreeSet::new());
        }
    }

    fn sync_process(&mut self, ctx: &mut Ctx<'_>) -> SyncStep {
        self.flush(ctx);
        let me = ctx.local().get();
        while let Some(&id) = self.to_register.last() {
            let Some(j) = self.jobs.get(&id) else {
                self.to_register.pop();
                continue;
            };
            let (mid, body) = Msg::Register(j.register(me)).encode();
            if ctx.mcast(mid, &body, Guarantee::Agreed).is_err() {
                return SyncStep::Again;
            }
            self.to_register.pop();
        }
        SyncStep::Done
    }

    fn sync_activate(&mut self, ctx: &mut Ctx<'_>) {
        self.syncing = false;
        for j in self.jobs.values_mut() {
            if let Some(reg) = j.registered.take() {
                j.holders = reg;
            }
        }
        self.flush(ctx);
        // BACKUP is the last engine to sync: the configuration is synced
        // once this returns, and the master takes the jobs over now.
        self.drive(ctx);
    }

    fn sync_abort(&mut self, _ctx: &mut Ctx<'_>) {
        self.syncing = false;
        self.to_register.clear();
        for j in self.jobs.values_mut() {
            j.registered = None;
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.retry_at
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_>) {
        self.retry_at = None;
        self.flush(ctx);
        if ctx.ring.synced {
            self.drive(ctx);
        }
    }

    fn poll_backup_io(&mut self) -> Option<BackupIo> {
        self.poll_io()
    }

    fn handle_backup_io_done(&mut self, ctx: &mut Ctx<'_>, done: BackupIoDone) {
        self.handle_io_done(ctx, done);
    }

    fn backup_reregister(&mut self, ctx: &mut Ctx<'_>) {
        self.reregister(ctx);
    }

    fn backup_busy(&self) -> bool {
        self.busy()
    }

    fn dump(&self) -> String {
        let mut s = format!(
            "jobs {} finished {} outbox {} io {} {:?}\n",
            self.jobs.len(),
            self.finished.len(),
            self.outbox.len(),
            self.io_out.len(),
            self.stats
        );
        for (id, j) in &self.jobs {
            s.push_str(&format!(
                "  {id:016x} {} items {} holders {:?} bad {:?} writing {:?}\n",
                j.phase.name(),
                j.items.len(),
                j.holders,
                j.bad,
                j.writing
            ));
        }
        s
    }
}
