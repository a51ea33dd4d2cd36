//! Retention and section expiration as ordered events.
//!
//! openais deleted on local timers, every node on its own clock, and
//! replicas diverged when clocks or timer firings differed. Here a timer
//! only ever *proposes*: when the open count of a checkpoint reaches zero
//! every replica notes a deadline (`now` + retention) on its own monotonic
//! clock; the lowest member of the configuration watches its deadlines and
//! the section expiration times (absolute SA times, on its wall clock) and,
//! when one passes, multicasts an [`Expire`] naming the checkpoints (with
//! the retention epoch each deadline was set for) and its wall time. Every
//! replica deletes at the delivery: the checkpoints still closed by all in
//! the same epoch (a reopen in between bumped the epoch and voids the
//! entry), and every section whose expiration is at or before that wall
//! time. So all replicas delete the same things at the same point of the
//! total order, whatever their clocks say.
//!
//! When the lowest member changes (it left, or a lower node joined), the
//! new one takes over with its own deadlines, which every replica keeps.
//! After a sync a replica that did not have a deadline for a closed
//! checkpoint (a node that joined) starts the full retention again: a
//! merge never shortens a retention.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use proto::ckpt::TIME_END;
use totem::{Guarantee, Instant, NodeId};

use super::apply::Position;
use super::exec::{Expire, Op, Origin, EX_EXPIRE};
use super::store::CkptId;
use super::{Ckpt, EXPIRE_RETRY, MAX_EXPIRE_CKPTS, OUTBOX_RETRY};
use crate::engine::Ctx;

/// After this node's EXPIRE is delivered it waits this long before
/// sending another (what it named may still be waiting behind a pending
/// change; no need to flood the ring meanwhile).
const EXPIRE_GAP: Duration = Duration::from_millis(100);

/// Retention deadlines of checkpoints closed by all, on this node's clock.
#[derive(Clone, Debug, Default)]
pub(crate) struct Retention {
    deadlines: BTreeMap<CkptId, (Instant, u64)>,
    index: BTreeSet<(Instant, CkptId)>,
    /// Until when this node holds back its next EXPIRE.
    pub inflight_until: Option<Instant>,
}

impl Retention {
    /// `id` expires at `at`, for retention epoch `epoch`.
    pub(crate) fn arm(&mut self, id: CkptId, at: Instant, epoch: u64) {
        self.disarm(id);
        self.deadlines.insert(id, (at, epoch));
        self.index.insert((at, id));
    }

    /// `id` does not expire (any more).
    pub(crate) fn disarm(&mut self, id: CkptId) {
        if let Some((at, _)) = self.deadlines.remove(&id) {
            self.index.remove(&(at, id));
        }
    }

    /// When `id` expires, if it does.
    pub(crate) fn deadline(&self, id: CkptId) -> Option<Instant> {
        self.deadlines.get(&id).map(|d| d.0)
    }

    /// Keeps only the deadlines `keep` says yes to.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(CkptId) -> bool) {
        let gone: Vec<CkptId> = self
            .deadlines
            .keys()
            .copied()
            .filter(|&id| !keep(id))
            .collect();
        for id in gone {
            self.disarm(id);
        }
    }

    fn next(&self) -> Option<Instant> {
        self.index.iter().next().map(|d| d.0)
    }

    fn due(&self, now: Instant) -> Vec<(CkptId, u64)> {
        self.index
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(MAX_EXPIRE_CKPTS)
            .filter_map(|(_, id)| self.deadlines.get(id).map(|d| (*id, d.1)))
            .collect()
    }
}

impl Ckpt {
    /// Whether this node times expiry: the lowest member, synchronized.
    fn is_expirer(&self) -> bool {
        self.activated && self.me.is_some() && self.members.first() == self.me.as_ref()
    }

    /// When [`Ckpt::expire_due`] must run next.
    pub(super) fn expiry_timeout(&self) -> Option<Instant> {
        if !self.is_expirer() {
            return None;
        }
        let section = self
            .store
            .expiry
            .iter()
            .next()
            .map(|(exp, _, _)| self.instant_of_wall(*exp));
        let due = [self.retention.next(), section]
            .into_iter()
            .flatten()
            .min()?;
        Some(match self.retention.inflight_until {
            Some(hold) => due.max(hold),
            None => due,
        })
    }

    /// Multicasts an EXPIRE if something is due (lowest member only).
    pub(super) fn expire_due(&mut self, ctx: &mut Ctx<'_>) {
        if !self.is_expirer() || self.retention.inflight_until.is_some_and(|t| ctx.now < t) {
            return;
        }
        let wall_ns = self.wall_ns(ctx.now);
        let ckpts = self.retention.due(ctx.now);
        let sections = self
            .store
            .expiry
            .iter()
            .next()
            .is_some_and(|(exp, _, _)| *exp <= wall_ns);
        if ckpts.is_empty() && !sections {
            return;
        }
        let body = Expire { wall_ns, ckpts }.encode();
        self.retention.inflight_until = Some(
            ctx.now
                + match ctx.mcast(EX_EXPIRE, &body, Guarantee::Agreed) {
                    Ok(()) => EXPIRE_RETRY,
                    Err(_) => OUTBOX_RETRY,
                },
        );
    }

    /// An EXPIRE delivered: delete what it names, as every replica does.
    pub(super) fn on_expire(&mut self, ctx: &mut Ctx<'_>, from: NodeId, pos: Position, e: Expire) {
        if Some(from) == self.me {
            self.retention.inflight_until = Some(ctx.now + EXPIRE_GAP);
        }
        for (id, epoch) in e.ckpts {
            let closed = self
                .store
                .ckpts
                .get(&id)
                .is_some_and(|c| !c.blocked() && c.open_count() == 0 && c.zero_epoch == epoch);
            if closed {
                self.delete_ckpt(ctx, id);
            }
        }
        let due: BTreeSet<CkptId> = self
            .store
            .expiry
            .iter()
            .take_while(|(exp, _, _)| *exp <= e.wall_ns)
            .map(|(_, ckpt, _)| *ckpt)
            .collect();
        for ckpt in due {
            // A checkpoint with a pending change expires once the change
            // is decided: in its queue, in order, on every replica (once:
            // the expirer sends again while the sections are there).
            let queued = self.store.ckpts.get(&ckpt).is_some_and(|c| {
                c.queue.iter().any(
                    |q| matches!(q.op, Op::ExpireSections { wall_ns, .. } if wall_ns >= e.wall_ns),
                )
            });
            if queued {
                continue;
            }
            let origin = Origin {
                node: from,
                conn: 0,
                tag: 0,
                wall_ns: e.wall_ns,
            };
            let op = Op::ExpireSections {
                ckpt,
                wall_ns: e.wall_ns,
            };
            self.submit(ctx, origin, pos, op, true);
        }
    }

    /// Deletes the sections of `ckpt` expiring at or before `wall_ns`.
    pub(super) fn expire_sections(&mut self, ckpt: CkptId, wall_ns: i64) {
        let Some(c) = self.store.ckpts.get(&ckpt) else {
            return;
        };
        let due: Vec<Bytes> = c
            .sections
            .iter()
            .filter(|(_, s)| s.expiration_ns != TIME_END && s.expiration_ns <= wall_ns)
            .map(|(id, _)| id.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        for id in &due {
            self.store.remove_section(ckpt, id);
        }
        if let Some(c) = self.store.ckpts.get_mut(&ckpt) {
            c.version += 1;
        }
    }
}
