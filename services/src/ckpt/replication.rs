//! Write modes: deciding changes by votes, applying them, and recovering
//! lost sections.
//!
//! # Deciding a change (ordered two-phase apply)
//! A data change (section create, write, overwrite) that passed the checks
//! every replica makes alike (existence, limits of the checkpoint) becomes
//! the checkpoint's *pending decision*, at the same point on every
//! replica. Its voters are every member of the configuration
//! (`SA_CKPT_WR_ALL_REPLICAS`) or the active replica (the active-replica
//! modes). A voter checks that it can apply the change (the section's
//! bytes are here, the node's memory limit allows it), reserves the bytes
//! and multicasts a yes [`Vote`], or multicasts a no with the error. At
//! the delivery of the last yes every replica applies the change (the
//! decision point is one point of the total order); at the first no every
//! replica drops it and the origin answers the voter's error. Nothing is
//! applied before the decision, so a rejected change has nothing to roll
//! back: "rolled back on all" holds by construction.
//!
//! Operations on the checkpoint delivered while it is pending wait in its
//! queue and run, in order, once it is decided.
//!
//! At a configuration change every pending decision is settled by the
//! members that came along (the transitional configuration): if all of
//! them that are voters said yes, the change applies (voters that left are
//! no longer replicas here); if one of them has not been heard, nobody
//! knows its answer, so the change is dropped (TRY_AGAIN). Every member
//! that came along has delivered the same votes, so all settle alike.
//!
//! # Standbys and recovery (active-replica modes)
//! A standby applies a decided change if it can; if it cannot (memory),
//! it drops the section's bytes and multicasts a recovery request; the
//! recovery source (the active replica; for ALL_REPLICAS the lowest other
//! member) answers with a [`Copy`] of the section as of that point. A copy
//! is installed only if the section did not change since it was made
//! (else it is asked again) and only if it fits; otherwise the section is
//! marked corrupted. A later change to it asks again.
//!
//! Reads are answered by the origin from its replica. A section whose
//! bytes this node lost is read from a fresh copy of the recovery source
//! (the read waits for it); when the recovery source itself lost them, or
//! there is none, the read fails with `SA_AIS_ERR_FAILED_OPERATION`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use proto::ckpt::{ReadElement, ReadReply, SectionCreateReply, WriteElement, MAX_DATA_BYTES};
use proto::AisError;
use totem::{NodeId, RingId};

use super::apply::Position;
use super::exec::{Copy, Op, Origin, RingOp, Vote, EX_COPY, EX_OP, EX_VOTE};
use super::store::{Checkpoint, CkptId, Local, Section};
use super::{failed, failed_at, mode, Ckpt, Mode, Reply, MAX_PARKED_READS, MAX_TOTAL_DATA_BYTES};
use crate::engine::Ctx;

/// A data change, checked and resolved (a generated section id is chosen).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DataOp {
    Create {
        id: Bytes,
        exp: i64,
        data: Bytes,
        /// The generated-id counter this create takes.
        generated: Option<u64>,
    },
    Write {
        elements: Vec<WriteElement>,
    },
    Overwrite {
        id: Bytes,
        data: Bytes,
    },
}

/// A change waiting for its votes.
#[derive(Clone, Debug)]
pub(crate) struct Decision {
    /// The configuration it started in (votes name it).
    pub ring: RingId,
    /// The checkpoint's decision number.
    pub seq: u64,
    pub origin: Origin,
    pub op: DataOp,
    pub voters: BTreeSet<NodeId>,
    pub yes: BTreeSet<NodeId>,
    /// Bytes this node reserved for it (local).
    pub reserved: u64,
}

/// An operation waiting behind a pending decision.
#[derive(Clone, Debug)]
pub(crate) struct Queued {
    pub origin: Origin,
    pub pos: Position,
    pub op: Op,
    pub bytes: u64,
}

/// A read of this node's client waiting for recovery copies.
#[derive(Clone, Debug)]
pub(crate) struct ParkedRead {
    origin: Origin,
    ckpt: CkptId,
    elements: Vec<ReadElement>,
    waiting: BTreeSet<Bytes>,
    got: BTreeMap<Bytes, Result<Bytes, AisError>>,
}

impl Ckpt {
    // ----- checks every replica makes alike ------------------------------------

    /// Checks a data change against the checkpoint; `Ok(None)` when there
    /// is nothing to do (an empty write).
    fn check_data(&mut self, id: CkptId, op: Op) -> Result<Option<DataOp>, Reply> {
        let total = self.store.data_bytes;
        let Some(c) = self.store.ckpts.get_mut(&id) else {
            return Err(failed(AisError::NotExist));
        };
        if Self::lacks_active(c) {
            return Err(failed(AisError::NotExist));
        }
        let a = c.attrs;
        match op {
            Op::SectionCreate {
                id: sid, exp, data, ..
            } => {
                let (sid, generated) = if sid.is_empty() {
                    // SA_CKPT_GENERATED_SECTION_ID: the next free number
                    // (taken only if the change is committed).
                    let mut g = c.generated;
                    loop {
                        g += 1;
                        let id = Bytes::from(g.to_string());
                        if !c.sections.contains_key(&id) {
                            break (id, Some(g));
                        }
                    }
                } else {
                    (sid, None)
                };
                // Checks a given id and a generated one alike.
                if sid.len() as u64 > a.max_section_id_size {
                    return Err(failed(AisError::InvalidParam));
                }
                if c.sections.contains_key(&sid) {
                    return Err(failed(AisError::Exist));
                }
                let len = data.len() as u64;
                if len > a.max_section_size {
                    return Err(failed(AisError::InvalidParam));
                }
                if c.sections.len() >= a.max_sections as usize
                    || c.data_bytes + len > a.checkpoint_size
                {
                    return Err(failed(AisError::NoSpace));
                }
                if total + len > MAX_TOTAL_DATA_BYTES {
                    return Err(failed(AisError::NoResources));
                }
                Ok(Some(DataOp::Create {
                    id: sid,
                    exp,
                    data,
                    generated,
                }))
            }
            Op::Write { elements, .. } => {
                if elements.is_empty() {
                    return Ok(None);
                }
                let mut sizes: BTreeMap<&Bytes, u64> = BTreeMap::new();
                let mut growth = 0u64;
                for (i, e) in elements.iter().enumerate() {
                    if e.data.is_empty() {
                        return Err(failed_at(AisError::InvalidParam, i));
                    }
                    let Some(s) = c.sections.get(&e.section_id) else {
                        return Err(failed_at(AisError::NotExist, i));
                    };
                    let end = match e.offset.checked_add(e.data.len() as u64) {
                        Some(end) if end <= a.max_section_size => end,
                        _ => return Err(failed_at(AisError::InvalidParam, i)),
                    };
                    let cur = sizes.get(&e.section_id).copied().unwrap_or(s.size);
                    let new = cur.max(end);
                    growth += new - cur;
                    sizes.insert(&e.section_id, new);
                    if c.data_bytes + growth > a.checkpoint_size {
                        return Err(failed_at(AisError::NoSpace, i));
                    }
                    if total + growth > MAX_TOTAL_DATA_BYTES {
                        return Err(failed_at(AisError::NoResources, i));
                    }
                }
                Ok(Some(DataOp::Write { elements }))
            }
            Op::Overwrite { id: sid, data, .. } => {
                let Some(s) = c.sections.get(&sid) else {
                    return Err(failed(AisError::NotExist));
                };
                let len = data.len() as u64;
                if len > a.max_section_size {
                    return Err(failed(AisError::InvalidParam));
                }
                if c.data_bytes - s.size + len > a.checkpoint_size {
                    return Err(failed(AisError::NoSpace));
                }
                if total - s.size + len > MAX_TOTAL_DATA_BYTES {
                    return Err(failed(AisError::NoResources));
                }
                Ok(Some(DataOp::Overwrite { id: sid, data }))
            }
            _ => Err(failed(AisError::NotSupported)),
        }
    }

    /// Bytes this node's replica grows by if it applies `op`; an error when
    /// it cannot apply it at all (it lost a section the change builds on).
    fn local_delta(&self, id: CkptId, op: &DataOp) -> Result<i128, AisError> {
        let c = self.store.ckpts.get(&id).ok_or(AisError::NotExist)?;
        match op {
            DataOp::Create { id: sid, data, .. } => Ok((sid.len() + data.len()) as i128),
            DataOp::Write { elements } => {
                let mut lens: BTreeMap<&Bytes, (u64, u64)> = BTreeMap::new();
                for e in elements {
                    let s = c.sections.get(&e.section_id).ok_or(AisError::NotExist)?;
                    let Local::Valid(d) = &s.local else {
                        return Err(AisError::FailedOperation);
                    };
                    let (orig, cur) = lens
                        .get(&e.section_id)
                        .copied()
                        .unwrap_or((d.len() as u64, d.len() as u64));
                    let end = e.offset.saturating_add(e.data.len() as u64);
                    lens.insert(&e.section_id, (orig, cur.max(end)));
                }
                Ok(lens
                    .values()
                    .map(|&(orig, new)| i128::from(new) - i128::from(orig))
                    .sum())
            }
            DataOp::Overwrite { id: sid, data } => {
                let s = c.sections.get(sid).ok_or(AisError::NotExist)?;
                // An overwrite needs nothing of the old bytes: it also
                // repairs a lost section.
                Ok((sid.len() + data.len()) as i128 - i128::from(s.local_cost(sid)))
            }
        }
    }

    /// The sections a change touches.
    fn touched(op: &DataOp) -> BTreeSet<Bytes> {
        match op {
            DataOp::Create { id, .. } | DataOp::Overwrite { id, .. } => {
                BTreeSet::from([id.clone()])
            }
            DataOp::Write { elements } => elements.iter().map(|e| e.section_id.clone()).collect(),
        }
    }

    // ----- deciding --------------------------------------------------------

    /// A data change in its turn: checked, then pending until decided.
    pub(super) fn op_data(
        &mut self,
        ctx: &mut Ctx<'_>,
        origin: Origin,
        op: Op,
        allow_decisions: bool,
    ) -> Reply {
        let Some(id) = op.ckpt() else {
            return failed(AisError::NotExist);
        };
        let data_op = match self.check_data(id, op) {
            Ok(Some(d)) => d,
            Ok(None) => return Reply::Done(Bytes::new()),
            Err(r) => return r,
        };
        if !allow_decisions {
            // Drained at a configuration change: no vote could finish in
            // the old configuration.
            return failed(AisError::TryAgain);
        }
        let Some(c) = self.store.ckpts.get_mut(&id) else {
            return failed(AisError::NotExist);
        };
        let voters: BTreeSet<NodeId> = match (mode(&c.attrs), c.active) {
            (Mode::All, _) => ctx.ring.members.iter().copied().collect(),
            (Mode::Active, Some(a)) => BTreeSet::from([a]),
            (Mode::Active, None) => return failed(AisError::NotExist),
        };
        c.decision_seq += 1;
        let mut d = Decision {
            ring: ctx.ring.ring_id,
            seq: c.decision_seq,
            origin,
            op: data_op,
            voters,
            yes: BTreeSet::new(),
            reserved: 0,
        };
        if self.me.is_some_and(|me| d.voters.contains(&me)) {
            let status = match self.local_delta(id, &d.op) {
                Ok(delta) if self.fits(delta) => {
                    d.reserved = u64::try_from(delta.max(0)).unwrap_or(u64::MAX);
                    self.reserved_bytes += d.reserved;
                    Ok(())
                }
                Ok(_) => Err(AisError::NoMemory),
                Err(e) => {
                    // A section this voter lost: ask for it back.
                    for s in Self::touched(&d.op) {
                        self.lose(ctx, id, &s);
                    }
                    Err(e)
                }
            };
            let vote = Vote {
                ckpt: id,
                ring: d.ring,
                seq: d.seq,
                status,
            };
            self.push_outbox(EX_VOTE, vote.encode());
            self.flush(ctx);
        }
        if let Some(c) = self.store.ckpts.get_mut(&id) {
            c.decision = Some(d);
        }
        Reply::Later
    }

    /// A vote delivered.
    pub(super) fn on_vote(&mut self, ctx: &mut Ctx<'_>, from: NodeId, v: Vote) {
        let Some(d) = self
            .store
            .ckpts
            .get_mut(&v.ckpt)
            .and_then(|c| c.decision.as_mut())
        else {
            return;
        };
        if d.ring != v.ring || d.seq != v.seq || !d.voters.contains(&from) || d.yes.contains(&from)
        {
            return; // stale, foreign or repeated
        }
        match v.status {
            Err(e) => self.decide(ctx, v.ckpt, Err(e), true),
            Ok(()) => {
                d.yes.insert(from);
                if d.yes == d.voters {
                    self.decide(ctx, v.ckpt, Ok(()), true);
                }
            }
        }
    }

    /// Settles every pending decision at a configuration change, then lets
    /// what waited run (without starting new decisions).
    pub(super) fn decide_pending_on_change(&mut self, ctx: &mut Ctx<'_>, new: &[NodeId]) {
        let survivors = self.survivors(new);
        let pending: Vec<(CkptId, bool)> = self
            .store
            .ckpts
            .iter()
            .filter_map(|(id, c)| {
                let d = c.decision.as_ref()?;
                let heard = d.voters.intersection(&survivors).all(|v| d.yes.contains(v));
                Some((*id, heard))
            })
            .collect();
        for (id, heard) in pending {
            let outcome = if heard {
                Ok(())
            } else {
                Err(AisError::TryAgain)
            };
            self.decide(ctx, id, outcome, false);
        }
        let waiting: Vec<CkptId> = self
            .store
            .ckpts
            .iter()
            .filter(|(_, c)| !c.queue.is_empty())
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            self.drain(ctx, id, false);
        }
    }

    /// Commits or drops the pending change of `id`, answers its origin and
    /// runs what waited.
    fn decide(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: CkptId,
        outcome: Result<(), AisError>,
        allow_decisions: bool,
    ) {
        let Some(d) = self
            .store
            .ckpts
            .get_mut(&id)
            .and_then(|c| c.decision.take())
        else {
            return;
        };
        self.reserved_bytes = self.reserved_bytes.saturating_sub(d.reserved);
        let reply = match outcome {
            Ok(()) => {
                self.stats.committed += 1;
                self.commit(ctx, id, d.origin, d.op)
            }
            Err(e) => {
                self.stats.rejected += 1;
                failed(e)
            }
        };
        self.answer(ctx, d.origin, reply);
        self.drain(ctx, id, allow_decisions);
    }

    /// Applies a decided change: the metadata on every replica, the bytes
    /// where they fit.
    fn commit(&mut self, ctx: &mut Ctx<'_>, id: CkptId, origin: Origin, op: DataOp) -> Reply {
        let local_ok = self
            .local_delta(id, &op)
            .is_ok_and(|delta| self.fits(delta));
        let Some(c) = self.store.ckpts.get_mut(&id) else {
            return failed(AisError::NotExist);
        };
        c.version += 1;
        let version = c.version;
        let touched = Self::touched(&op);
        let reply = match op {
            DataOp::Create {
                id: sid,
                exp,
                data,
                generated,
            } => {
                if let Some(g) = generated {
                    c.generated = g;
                }
                let local = if local_ok {
                    Local::Valid(data.clone())
                } else {
                    Local::Corrupted
                };
                let s = Section {
                    expiration_ns: exp,
                    size: data.len() as u64,
                    last_update_ns: origin.wall_ns,
                    modified: version,
                    local,
                };
                self.store.insert_section(id, sid.clone(), s);
                Reply::Done(SectionCreateReply { section_id: sid }.encode())
            }
            DataOp::Write { elements } => {
                for e in &elements {
                    let end = e.offset + e.data.len() as u64;
                    let Some(s) = self
                        .store
                        .ckpts
                        .get_mut(&id)
                        .and_then(|c| c.sections.get_mut(&e.section_id))
                    else {
                        continue;
                    };
                    s.last_update_ns = origin.wall_ns;
                    s.modified = version;
                    let size = s.size.max(end);
                    self.store.set_size(id, &e.section_id, size);
                    if local_ok {
                        self.store.write_local(id, &e.section_id, e.offset, &e.data);
                    }
                }
                Reply::Done(Bytes::new())
            }
            DataOp::Overwrite { id: sid, data } => {
                if let Some(s) = c.sections.get_mut(&sid) {
                    s.last_update_ns = origin.wall_ns;
                    s.modified = version;
                }
                self.store.set_size(id, &sid, data.len() as u64);
                if local_ok {
                    self.store.set_local(id, &sid, Local::Valid(data.clone()));
                }
                Reply::Done(Bytes::new())
            }
        };
        if !local_ok {
            for s in touched {
                self.lose(ctx, id, &s);
            }
        }
        reply
    }

    // ----- recovery --------------------------------------------------------

    /// This node does not hold a section's bytes (any more): drop them and
    /// ask the recovery source, unless a copy is already asked for.
    fn lose(&mut self, ctx: &mut Ctx<'_>, id: CkptId, section: &Bytes) {
        let Some(s) = self
            .store
            .ckpts
            .get(&id)
            .and_then(|c| c.sections.get(section))
        else {
            return;
        };
        if s.local == Local::Recovering {
            return;
        }
        self.store.set_local(id, section, Local::Recovering);
        self.stats.recoveries += 1;
        self.ask_copy(ctx, id, section.clone());
    }

    fn ask_copy(&mut self, ctx: &mut Ctx<'_>, id: CkptId, section: Bytes) {
        let body = RingOp {
            conn: 0,
            tag: 0,
            wall_ns: self.wall_ns(ctx.now),
            op: Op::Recover {
                ckpt: id,
                id: section,
            },
        }
        .encode();
        self.push_outbox(EX_OP, body);
        self.flush(ctx);
    }

    /// Who sends copies of `c`'s sections to `requester`.
    fn recovery_source(&self, c: &Checkpoint, requester: NodeId) -> Option<NodeId> {
        match mode(&c.attrs) {
            Mode::Active => c.active.filter(|&a| a != requester),
            Mode::All => self.members.iter().copied().find(|&m| m != requester),
        }
    }

    /// A recovery request in its turn: the source sends its copy.
    pub(super) fn op_recover(
        &mut self,
        ctx: &mut Ctx<'_>,
        origin: Origin,
        id: CkptId,
        section: Bytes,
    ) {
        let Some(c) = self.store.ckpts.get(&id) else {
            return;
        };
        if self.recovery_source(c, origin.node) != self.me {
            return;
        }
        let (status, data) = match c.sections.get(&section).map(|s| &s.local) {
            None => (Err(AisError::NotExist), Bytes::new()),
            Some(Local::Valid(d)) => (Ok(()), d.clone()),
            Some(_) => (Err(AisError::FailedOperation), Bytes::new()),
        };
        let copy = Copy {
            ring: self.activated_ring.unwrap_or(ctx.ring.ring_id),
            ckpt: id,
            id: section,
            as_of: c.version,
            status,
            data,
        };
        self.push_outbox(EX_COPY, copy.encode());
        self.flush(ctx);
    }

    /// A copy delivered: every replica that lost the section installs it if
    /// it is current and fits.
    pub(super) fn on_copy(&mut self, ctx: &mut Ctx<'_>, from: NodeId, copy: Copy) {
        if Some(copy.ring) != self.activated_ring || Some(from) == self.me {
            return;
        }
        let section = self
            .store
            .ckpts
            .get(&copy.ckpt)
            .and_then(|c| c.sections.get(&copy.id))
            .map(|s| (s.local.clone(), s.modified <= copy.as_of, s.size));
        let exists = section.is_some();
        let fresh = section.as_ref().is_some_and(|s| s.1);
        if let Some((local, fresh, size)) = section {
            if !local.is_valid() {
                match copy.status {
                    Ok(()) if fresh && copy.data.len() as u64 == size => {
                        let cost = (copy.id.len() + copy.data.len()) as i128;
                        if self.fits(cost) {
                            let l = Local::Valid(copy.data.clone());
                            self.store.set_local(copy.ckpt, &copy.id, l);
                        } else {
                            self.mark_corrupted(copy.ckpt, &copy.id);
                        }
                    }
                    Ok(()) => {
                        // Changed since the copy was made: ask again.
                        if local == Local::Recovering {
                            self.ask_copy(ctx, copy.ckpt, copy.id.clone());
                        }
                    }
                    Err(_) => self.mark_corrupted(copy.ckpt, &copy.id),
                }
            }
        }
        self.feed_parked(ctx, &copy, exists, fresh);
    }

    fn mark_corrupted(&mut self, id: CkptId, section: &Bytes) {
        self.stats.corrupted += 1;
        self.store.set_local(id, section, Local::Corrupted);
    }

    // ----- reads -----------------------------------------------------------

    /// A read in its turn: the origin answers from its replica (or waits
    /// for copies of what it lost).
    pub(super) fn op_read(
        &mut self,
        ctx: &mut Ctx<'_>,
        origin: Origin,
        id: CkptId,
        elements: Vec<ReadElement>,
    ) -> Reply {
        if Some(origin.node) != self.me {
            return Reply::None;
        }
        let Some(c) = self.store.ckpts.get(&id) else {
            return failed(AisError::NotExist);
        };
        if Self::lacks_active(c) {
            return failed(AisError::NotExist);
        }
        let mut total = 0u64;
        let mut lost = BTreeSet::new();
        let mut first_lost = None;
        for (i, e) in elements.iter().enumerate() {
            let Some(s) = c.sections.get(&e.section_id) else {
                return failed_at(AisError::NotExist, i);
            };
            if e.size > c.attrs.max_section_size || e.offset > s.size {
                return failed_at(AisError::InvalidParam, i);
            }
            total += (s.size - e.offset).min(e.size);
            if total > MAX_DATA_BYTES as u64 {
                return failed_at(AisError::TooBig, i);
            }
            if !s.local.is_valid() {
                first_lost.get_or_insert(i);
                lost.insert(e.section_id.clone());
            }
        }
        let Some(i) = first_lost else {
            return self.read_reply(id, &elements, &BTreeMap::new());
        };
        if self.me.and_then(|me| self.recovery_source(c, me)).is_none() {
            // This node is the active replica (or alone) and lost it.
            return failed_at(AisError::FailedOperation, i);
        }
        if self.parked.len() >= MAX_PARKED_READS {
            return failed(AisError::TryAgain);
        }
        let corrupted: Vec<Bytes> = lost
            .iter()
            .filter(|s| {
                c.sections
                    .get(*s)
                    .is_some_and(|x| x.local == Local::Corrupted)
            })
            .cloned()
            .collect();
        for s in corrupted {
            self.store.set_local(id, &s, Local::Recovering);
            self.ask_copy(ctx, id, s);
        }
        self.parked.push(ParkedRead {
            origin,
            ckpt: id,
            elements,
            waiting: lost,
            got: BTreeMap::new(),
        });
        Reply::Later
    }

    /// The answer to a read from this replica, with `got` for what it lost.
    fn read_reply(
        &self,
        id: CkptId,
        elements: &[ReadElement],
        got: &BTreeMap<Bytes, Result<Bytes, AisError>>,
    ) -> Reply {
        let Some(c) = self.store.ckpts.get(&id) else {
            return failed(AisError::NotExist);
        };
        let mut data = Vec::with_capacity(elements.len());
        for (i, e) in elements.iter().enumerate() {
            let Some(s) = c.sections.get(&e.section_id) else {
                return failed_at(AisError::NotExist, i);
            };
            let bytes: &[u8] = match (&s.local, got.get(&e.section_id)) {
                (Local::Valid(d), _) => d,
                (_, Some(Ok(d))) => d,
                (_, Some(Err(err))) => return failed_at(*err, i),
                (_, None) => return failed_at(AisError::FailedOperation, i),
            };
            let len = bytes.len() as u64;
            if e.offset > len {
                return failed_at(AisError::InvalidParam, i);
            }
            let end = len.min(e.offset.saturating_add(e.size));
            // Both within `bytes`: offset <= end <= len.
            let (a, b) = (e.offset as usize, end as usize);
            data.push(Bytes::copy_from_slice(&bytes[a..b]));
        }
        Reply::Done(ReadReply { data }.encode())
    }

    /// A copy arrived: reads waiting for it may be answered.
    fn feed_parked(&mut self, ctx: &mut Ctx<'_>, copy: &Copy, exists: bool, fresh: bool) {
        let mut ready = Vec::new();
        for (i, p) in self.parked.iter_mut().enumerate() {
            if p.ckpt != copy.ckpt || !p.waiting.contains(&copy.id) {
                continue;
            }
            match copy.status {
                _ if !exists => {
                    p.got.insert(copy.id.clone(), Err(AisError::NotExist));
                    p.waiting.remove(&copy.id);
                }
                Ok(()) if fresh => {
                    p.got.insert(copy.id.clone(), Ok(copy.data.clone()));
                    p.waiting.remove(&copy.id);
                }
                Ok(()) => {} // stale: the next copy will do
                Err(e) => {
                    p.got.insert(copy.id.clone(), Err(e));
                    p.waiting.remove(&copy.id);
                }
            }
            if p.waiting.is_empty() {
                ready.push(i);
            }
        }
        for i in ready.into_iter().rev() {
            let p = self.parked.remove(i);
            let reply = self.read_reply(p.ckpt, &p.elements, &p.got);
            self.answer(ctx, p.origin, reply);
        }
    }

    /// Answers every waiting read with `e` (the configuration changed).
    pub(super) fn fail_parked(&mut self, ctx: &mut Ctx<'_>, e: AisError) {
        for p in std::mem::take(&mut self.parked) {
            self.answer(ctx, p.origin, failed(e));
        }
    }
}
