//! The ordered operations: what every replica does with a delivered CKPT
//! message, in delivery order, and how configuration changes cut that
//! order.
//!
//! Every function here runs on every replica at the same point of the
//! total order and changes replicated state only as a function of that
//! state and the message: that is what keeps replicas identical. The only
//! inputs that differ per node are local (this node's memory, its clients)
//! and they decide only local things (votes, bytes held, answers).

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use proto::ckpt::{CreationAttributes, OPEN_CREATE, TIME_END};
use proto::AisError;
use totem::{ConfigChange, NodeId, RingId};

use super::exec::{
    Copy, Expire, Op, Origin, RingOp, Vote, EX_COPY, EX_EXPIRE, EX_OP, EX_STATE_CKPT,
    EX_STATE_SECTION, EX_SUMMARY, EX_VOTE,
};
use super::replication::Queued;
use super::store::{Checkpoint, CkptId, Local, Section};
use super::{
    check_attributes, collocated, failed, mode, same_attributes, Ckpt, Mode, Reply,
    MAX_BUFFERED_BYTES, MAX_BUFFERED_OPS, MAX_CHECKPOINTS, MAX_QUEUED_BYTES,
    MAX_QUEUED_OPS_PER_CKPT,
};
use crate::engine::{ConnId, Ctx};

/// Where a message was delivered: the ring, and its position among that
/// ring's CKPT messages. Every member of the ring numbers alike, so a
/// checkpoint created by the message at a position is named by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    pub ring: RingId,
    pub index: u64,
}

impl Position {
    /// The id of a checkpoint created here.
    fn ckpt_id(self) -> CkptId {
        CkptId {
            ring_seq: self.ring.seq,
            ring_rep: self.ring.rep.get(),
            index: self.index,
        }
    }
}

/// A message held between a configuration change and the activation.
#[derive(Clone, Debug)]
pub(crate) struct Buffered {
    pub from: NodeId,
    pub pos: Position,
    pub id: u16,
    pub body: Bytes,
}

impl Ckpt {
    /// A delivered CKPT message.
    pub(super) fn deliver(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        pos: Position,
        id: u16,
        body: Bytes,
    ) {
        match id {
            EX_SUMMARY | EX_STATE_CKPT | EX_STATE_SECTION => {
                self.sync_deliver(from, id, &body);
            }
            EX_VOTE => {
                // Votes of a configuration that was never activated here
                // match no pending change: every change pending at a
                // configuration change was decided then.
                if !self.activated {
                    return;
                }
                match Vote::decode(&body) {
                    Ok(v) => self.on_vote(ctx, from, v),
                    Err(_) => self.stats.dropped_malformed += 1,
                }
            }
            EX_OP | EX_COPY | EX_EXPIRE => {
                if self.activated {
                    self.ordered(ctx, from, pos, id, body);
                } else {
                    self.hold(ctx, from, pos, id, body);
                }
            }
            _ => self.stats.dropped_malformed += 1,
        }
    }

    /// Holds a message until the sync activates.
    fn hold(&mut self, ctx: &mut Ctx<'_>, from: NodeId, pos: Position, id: u16, body: Bytes) {
        let bytes = body.len() as u64;
        if self.buffer.len() >= MAX_BUFFERED_OPS || self.buffer_bytes + bytes > MAX_BUFFERED_BYTES {
            // Every member holds the same messages, so every member drops
            // this one.
            self.drop_held(ctx, from, id, body);
            return;
        }
        self.buffer_bytes += bytes;
        self.buffer.push_back(Buffered {
            from,
            pos,
            id,
            body,
        });
    }

    /// A held message will not be applied.
    fn drop_held(&mut self, ctx: &mut Ctx<'_>, from: NodeId, id: u16, body: Bytes) {
        self.stats.dropped_buffered += 1;
        if Some(from) != self.me || id != EX_OP {
            return;
        }
        if let Ok(op) = RingOp::decode(&body) {
            self.not_applied(ctx, op, body);
        }
    }

    /// Applies the messages held for this activation, in order.
    pub(super) fn release_held(&mut self, ctx: &mut Ctx<'_>) {
        let held = std::mem::take(&mut self.buffer);
        self.buffer_bytes = 0;
        for b in held {
            self.ordered(ctx, b.from, b.pos, b.id, b.body);
        }
    }

    /// An ordered message, applied now.
    fn ordered(&mut self, ctx: &mut Ctx<'_>, from: NodeId, pos: Position, id: u16, body: Bytes) {
        match id {
            EX_OP => match RingOp::decode(&body) {
                Ok(r) => {
                    let origin = Origin {
                        node: from,
                        conn: r.conn,
                        tag: r.tag,
                        wall_ns: r.wall_ns,
                    };
                    if Some(from) == self.me && r.tag == 0 {
                        if let Op::Close { ckpts } = &r.op {
                            self.engine_close_delivered(ConnId(r.conn), ckpts);
                        }
                    }
                    self.submit(ctx, origin, pos, r.op, true);
                }
                Err(_) => self.stats.dropped_malformed += 1,
            },
            EX_COPY => match Copy::decode(&body) {
                Ok(c) => self.on_copy(ctx, from, c),
                Err(_) => self.stats.dropped_malformed += 1,
            },
            EX_EXPIRE => match Expire::decode(&body) {
                Ok(e) => self.on_expire(ctx, from, pos, e),
                Err(_) => self.stats.dropped_malformed += 1,
            },
            _ => {}
        }
    }

    /// This node's engine close (of a departed connection or an orphaned
    /// open) was delivered: the handles it closes are no longer held.
    fn engine_close_delivered(&mut self, conn: ConnId, ckpts: &[CkptId]) {
        if let Some(c) = self.conns.get_mut(&conn) {
            for ck in ckpts {
                let found = c
                    .handles
                    .iter()
                    .find(|(_, h)| h.exit && h.ckpt == *ck)
                    .map(|(&k, _)| k);
                if let Some(k) = found {
                    c.handles.remove(&k);
                }
            }
        }
        self.reap(conn);
    }

    /// A regular configuration: decide what the old one left pending, or
    /// drop what was held for a round that never activated; then wait for
    /// the new round.
    pub(super) fn regular(&mut self, ctx: &mut Ctx<'_>, change: &ConfigChange) {
        if self.activated {
            self.decide_pending_on_change(ctx, &change.members);
            self.fail_parked(ctx, AisError::TryAgain);
        } else {
            let held = std::mem::take(&mut self.buffer);
            self.buffer_bytes = 0;
            for b in held {
                self.drop_held(ctx, b.from, b.id, b.body);
            }
        }
        self.activated = false;
        self.round = None;
        self.members = change.members.clone();
        self.trans_members.clear();
        self.ring_index = 0;
        self.retention.inflight_until = None;
    }

    /// The checkpoint an operation acts on, as of now.
    fn target(&self, op: &Op) -> Option<CkptId> {
        match op {
            Op::Open { name, .. } | Op::Unlink { name } => self.store.names.get(name).copied(),
            _ => op.ckpt(),
        }
    }

    /// An operation in its turn: it waits behind its checkpoint's pending
    /// change, or applies now.
    pub(super) fn submit(
        &mut self,
        ctx: &mut Ctx<'_>,
        origin: Origin,
        pos: Position,
        op: Op,
        allow_decisions: bool,
    ) {
        if let Op::Close { ckpts } = &op {
            if ckpts.len() != 1 {
                // A departed connection's closes: one per checkpoint.
                for c in ckpts.clone() {
                    let one = Op::Close { ckpts: vec![c] };
                    self.submit(ctx, origin, pos, one, allow_decisions);
                }
                return;
            }
        }
        if let Some(t) = self.target(&op) {
            if self.store.ckpts.get(&t).is_some_and(Checkpoint::blocked) {
                self.enqueue(ctx, t, origin, pos, op);
                return;
            }
        }
        self.execute(ctx, origin, pos, op, allow_decisions);
    }

    fn enqueue(&mut self, ctx: &mut Ctx<'_>, t: CkptId, origin: Origin, pos: Position, op: Op) {
        let bytes = op.data_bytes();
        let always = matches!(
            op,
            Op::Close { .. } | Op::Recover { .. } | Op::ExpireSections { .. }
        );
        let total = self.store.queued_bytes;
        let Some(c) = self.store.ckpts.get_mut(&t) else {
            return;
        };
        if !always && (c.queue.len() >= MAX_QUEUED_OPS_PER_CKPT || total + bytes > MAX_QUEUED_BYTES)
        {
            self.answer(ctx, origin, failed(AisError::TryAgain));
            return;
        }
        c.queue.push_back(Queued {
            origin,
            pos,
            op,
            bytes,
        });
        self.store.queued_bytes += bytes;
    }

    /// Applies the operations that waited on `id`, in order, until one
    /// starts a new pending change.
    pub(super) fn drain(&mut self, ctx: &mut Ctx<'_>, id: CkptId, allow_decisions: bool) {
        loop {
            let Some(c) = self.store.ckpts.get_mut(&id) else {
                return;
            };
            if c.decision.is_some() {
                return;
            }
            let Some(q) = c.queue.pop_front() else {
                return;
            };
            self.store.queued_bytes = self.store.queued_bytes.saturating_sub(q.bytes);
            match self.target(&q.op) {
                // An open or unlink by name whose name now means another
                // checkpoint that is itself waiting.
                Some(t) if t != id && self.store.ckpts.get(&t).is_some_and(Checkpoint::blocked) => {
                    self.enqueue(ctx, t, q.origin, q.pos, q.op);
                }
                _ => self.execute(ctx, q.origin, q.pos, q.op, allow_decisions),
            }
        }
    }

    /// Applies an operation and answers its origin.
    fn execute(
        &mut self,
        ctx: &mut Ctx<'_>,
        origin: Origin,
        pos: Position,
        op: Op,
        allow_decisions: bool,
    ) {
        let reply = match op {
            Op::Open { name, attrs, flags } => self.op_open(origin, pos, name, attrs, flags),
            Op::Close { ckpts } => match ckpts.first() {
                Some(&c) => self.op_close(ctx, origin, c),
                None => Reply::Done(Bytes::new()),
            },
            Op::Unlink { name } => self.op_unlink(ctx, &name),
            Op::RetentionSet { ckpt, ns } => self.op_retention(ctx, ckpt, ns),
            Op::ActiveSet { ckpt } => self.op_active_set(origin, ckpt),
            Op::SectionDelete { ckpt, id } => self.op_section_delete(ckpt, &id),
            Op::ExpirationSet { ckpt, id, exp } => self.op_expiration_set(ckpt, &id, exp),
            Op::Synchronize { ckpt } => self.op_synchronize(ckpt),
            Op::Read { ckpt, elements } => self.op_read(ctx, origin, ckpt, elements),
            Op::Recover { ckpt, id } => {
                self.op_recover(ctx, origin, ckpt, id);
                Reply::None
            }
            Op::ExpireSections { ckpt, wall_ns } => {
                self.expire_sections(ckpt, wall_ns);
                Reply::None
            }
            op @ (Op::SectionCreate { .. } | Op::Write { .. } | Op::Overwrite { .. }) => {
                self.op_data(ctx, origin, op, allow_decisions)
            }
        };
        self.answer(ctx, origin, reply);
    }

    /// Deletes a checkpoint everywhere (every replica calls it at the same
    /// point); what waited on it fails with NOT_EXIST.
    pub(super) fn delete_ckpt(&mut self, ctx: &mut Ctx<'_>, id: CkptId) {
        let Some(c) = self.store.remove_ckpt(id) else {
            return;
        };
        self.retention.disarm(id);
        if let Some(d) = c.decision {
            self.reserved_bytes = self.reserved_bytes.saturating_sub(d.reserved);
            self.answer(ctx, d.origin, failed(AisError::NotExist));
        }
        for q in c.queue {
            self.answer(ctx, q.origin, failed(AisError::NotExist));
        }
    }

    /// Whether data operations on `c` must fail for want of an active
    /// replica (a collocated checkpoint before `saCkptActiveReplicaSet`,
    /// or after its active replica left).
    pub(super) fn lacks_active(c: &Checkpoint) -> bool {
        mode(&c.attrs) == Mode::Active && c.active.is_none()
    }

    fn op_open(
        &mut self,
        origin: Origin,
        pos: Position,
        name: Bytes,
        attrs: Option<CreationAttributes>,
        flags: u32,
    ) -> Reply {
        if let Some(&id) = self.store.names.get(&name) {
            let Some(c) = self.store.ckpts.get(&id) else {
                return failed(AisError::NotExist);
            };
            if let (Some(a), true) = (&attrs, flags & OPEN_CREATE != 0) {
                if !same_attributes(a, &c.attrs) {
                    return failed(AisError::Exist);
                }
            }
            let attrs = c.attrs;
            self.add_opener(id, origin.node);
            return Reply::Opened(id, attrs);
        }
        if flags & OPEN_CREATE == 0 {
            return failed(AisError::NotExist);
        }
        let Some(a) = attrs.filter(|a| check_attributes(a).is_ok()) else {
            return failed(AisError::InvalidParam);
        };
        if name.is_empty() {
            return failed(AisError::InvalidParam);
        }
        if self.store.ckpts.len() >= MAX_CHECKPOINTS {
            return failed(AisError::NoResources);
        }
        let id = pos.ckpt_id();
        if self.store.ckpts.contains_key(&id) {
            return failed(AisError::Exist);
        }
        let mut c = Checkpoint::new(name, a);
        if mode(&a) == Mode::Active && !collocated(&a) {
            c.active = Some(origin.node);
        }
        c.openers.insert(origin.node, 1);
        self.store.insert_ckpt(id, c);
        if a.max_sections == 1 {
            let default = Section {
                expiration_ns: TIME_END,
                size: 0,
                last_update_ns: origin.wall_ns,
                modified: 0,
                local: Local::Valid(Bytes::new()),
            };
            self.store.insert_section(id, Bytes::new(), default);
        }
        Reply::Opened(id, a)
    }

    fn add_opener(&mut self, id: CkptId, node: NodeId) {
        let Some(c) = self.store.ckpts.get_mut(&id) else {
            return;
        };
        if c.open_count() == 0 {
            // Retention stops; an EXPIRE timed for the closed period is
            // void from here on.
            c.zero_epoch += 1;
            self.retention.disarm(id);
        }
        let n = c.openers.entry(node).or_insert(0);
        *n = n.saturating_add(1);
    }

    fn op_close(&mut self, ctx: &mut Ctx<'_>, origin: Origin, id: CkptId) -> Reply {
        let Some(c) = self.store.ckpts.get_mut(&id) else {
            return failed(AisError::NotExist);
        };
        if let Some(n) = c.openers.get_mut(&origin.node) {
            *n -= 1;
            if *n == 0 {
                c.openers.remove(&origin.node);
            }
        }
        if c.open_count() == 0 {
            self.closed_by_all(ctx, id);
        }
        Reply::Done(Bytes::new())
    }

    /// The last open of `id` closed: unlinked checkpoints (and those
    /// retained for zero) go now; others start their retention.
    pub(super) fn closed_by_all(&mut self, ctx: &mut Ctx<'_>, id: CkptId) {
        let Some(c) = self.store.ckpts.get_mut(&id) else {
            return;
        };
        c.zero_epoch += 1;
        let (epoch, retention) = (c.zero_epoch, c.attrs.retention_duration_ns);
        if !c.linked || retention == 0 {
            self.delete_ckpt(ctx, id);
        } else if retention == TIME_END {
            self.retention.disarm(id);
        } else {
            let d = Duration::from_nanos(u64::try_from(retention).unwrap_or(0));
            self.retention.arm(id, ctx.now + d, epoch);
        }
    }

    fn op_unlink(&mut self, ctx: &mut Ctx<'_>, name: &Bytes) -> Reply {
        let Some(&id) = self.store.names.get(name) else {
            return failed(AisError::NotExist);
        };
        self.store.unlink(id);
        let Some(c) = self.store.ckpts.get_mut(&id) else {
            return failed(AisError::NotExist);
        };
        c.version += 1;
        if c.open_count() == 0 {
            self.delete_ckpt(ctx, id);
        }
        Reply::Done(Bytes::new())
    }

    fn op_retention(&mut self, ctx: &mut Ctx<'_>, id: CkptId, ns: i64) -> Reply {
        let Some(c) = self.store.ckpts.get_mut(&id) else {
            return failed(AisError::BadOperation);
        };
        if !c.linked {
            return failed(AisError::BadOperation);
        }
        if ns < 0 {
            return failed(AisError::InvalidParam);
        }
        c.attrs.retention_duration_ns = ns;
        c.version += 1;
        if c.open_count() == 0 {
            self.closed_by_all(ctx, id);
        }
        Reply::Done(Bytes::new())
    }

    fn op_active_set(&mut self, origin: Origin, id: CkptId) -> Reply {
        let Some(c) = self.store.ckpts.get_mut(&id) else {
            return failed(AisError::NotExist);
        };
        if mode(&c.attrs) != Mode::Active || !collocated(&c.attrs) {
            return failed(AisError::BadOperation);
        }
        c.active = Some(origin.node);
        c.version += 1;
        Reply::Done(Bytes::new())
    }

    fn op_section_delete(&mut self, id: CkptId, section: &Bytes) -> Reply {
        let Some(c) = self.store.ckpts.get_mut(&id) else {
            return failed(AisError::NotExist);
        };
        if Self::lacks_active(c) {
            return failed(AisError::NotExist);
        }
        if section.is_empty() {
            return failed(AisError::InvalidParam);
        }
        if !c.sections.contains_key(section) {
            return failed(AisError::NotExist);
        }
        c.version += 1;
        self.store.remove_section(id, section);
        Reply::Done(Bytes::new())
    }

    fn op_expiration_set(&mut self, id: CkptId, section: &Bytes, exp: i64) -> Reply {
        let Some(c) = self.store.ckpts.get_mut(&id) else {
            return failed(AisError::NotExist);
        };
        if Self::lacks_active(c) {
            return failed(AisError::NotExist);
        }
        if section.is_empty() {
            return failed(AisError::InvalidParam);
        }
        if !c.sections.contains_key(section) {
            return failed(AisError::NotExist);
        }
        c.version += 1;
        self.store.set_expiration(id, section, exp);
        Reply::Done(Bytes::new())
    }

    fn op_synchronize(&mut self, id: CkptId) -> Reply {
        let Some(c) = self.store.ckpts.get(&id) else {
            return failed(AisError::NotExist);
        };
        if mode(&c.attrs) == Mode::All {
            return failed(AisError::BadOperation);
        }
        if Self::lacks_active(c) {
            return failed(AisError::NotExist);
        }
        // Every change before this point is decided and applied on every
        // replica that could (standbys that could not are recovering).
        Reply::Done(Bytes::new())
    }

    /// The members that came along from the previous configuration into
    /// `new` (for deciding pending changes at a configuration change): the
    /// last transitional configuration, or, had Totem delivered none, the
    /// old members that are in the new one.
    pub(super) fn survivors(&self, new: &[NodeId]) -> BTreeSet<NodeId> {
        let mut t: BTreeSet<NodeId> = if self.trans_members.is_empty() {
            self.members
                .iter()
                .copied()
                .filter(|m| new.contains(m))
                .collect()
        } else {
            self.trans_members.iter().copied().collect()
        };
        if let Some(me) = self.me {
            t.insert(me);
        }
        t
    }
}
