//! CKPT's step of the barrier sync: after each configuration change every
//! member ends with the same store.
//!
//! openais had the lowest "old" member of each previous partition stream
//! its whole store, and receivers merged section by section (the first
//! copy of a section won, and same-name checkpoints of two partitions
//! lived side by side). Here:
//!
//! 1. *Summary.* Every member multicasts, for every checkpoint it holds:
//!    its version (changes applied), a 64-bit digest of its copy, whether
//!    it holds every section's bytes, and how many opens this node's
//!    clients hold on it ([`Summary`], chunked).
//! 2. *Plan.* When every member's summary is delivered, every member
//!    computes the same plan at the same point of the order. For each
//!    checkpoint one copy wins — **the merge rule**: the copy with the
//!    highest version; among those, one whose holder has every section's
//!    bytes; among those, the copy of the lowest node id. Every member
//!    whose copy differs from the winner (or that has none: a joining node)
//!    needs it; if any does, the winner's holder sends it.
//! 3. *Transfer.* Each sender multicasts the checkpoints it was given
//!    ([`StateCkpt`], then one [`StateSection`] per section).
//! 4. *Activation* (at the closing barrier, the same point everywhere):
//!    every member builds its new store from its own copies that equal the
//!    winners and the copies it received, then applies the same fix-ups:
//!    - opens: each checkpoint's per-node open counts are what the members
//!      reported (a node that left reports nothing: its opens are dropped);
//!    - names: where two checkpoints claim one name (created in two
//!      partitions), the lowest checkpoint id keeps it and the others are
//!      unlinked (their openers keep them until they close);
//!    - active replica: in the active-replica modes, an active replica that
//!      left is replaced by the lowest member (or none, for a collocated
//!      checkpoint, until `saCkptActiveReplicaSet`);
//!    - retention: every retention epoch is bumped; a checkpoint closed by
//!      all that is unlinked (or retained for zero) is deleted, others keep
//!      (or start) their retention.
//!
//! Deletions do not win a merge: a checkpoint deleted in one partition and
//! alive in the other is alive after the merge. While the step runs the
//! store does not change (ring operations are held until the activation),
//! so what a member summarized is what it sends.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;
use std::time::Duration;

use bytes::Bytes;
use proto::ckpt::TIME_END;
use totem::{Guarantee, NodeId, RingId};

use super::exec::{
    CkptMeta, StateCkpt, StateSection, Summary, SummaryEntry, EX_STATE_CKPT, EX_STATE_SECTION,
    EX_SUMMARY,
};
use super::store::{Checkpoint, CkptId, Local, Section, Store};
use super::{
    collocated, mode, Ckpt, Mode, MAX_SECTIONS_PER_CHECKPOINT, MAX_SYNC_ENTRIES,
    SUMMARY_ENTRIES_PER_MSG,
};
use crate::engine::{Ctx, SyncStep};

/// Where this member is in the step.
#[derive(Debug)]
enum Phase {
    /// Sending its summary, chunk by chunk.
    Summary {
        entries: Vec<SummaryEntry>,
        next: usize,
        chunk: u32,
    },
    /// Waiting for every member's summary.
    Await,
    /// Sending the checkpoints the plan gave it.
    Send {
        list: VecDeque<CkptId>,
        header_sent: bool,
        after: Option<Bytes>,
    },
    /// All sent.
    Done,
}

/// One member's summary as received.
#[derive(Debug, Default)]
struct Peer {
    entries: BTreeMap<CkptId, SummaryEntry>,
    next_chunk: u32,
    complete: bool,
}

/// What every member computed from the summaries.
#[derive(Debug)]
struct Plan {
    /// Every checkpoint some member holds.
    ids: BTreeSet<CkptId>,
    /// Who sends each checkpoint somebody needs.
    sender: BTreeMap<CkptId, NodeId>,
    /// What this member must receive.
    need: BTreeSet<CkptId>,
    /// What this member must send.
    send: Vec<CkptId>,
    /// Opens per checkpoint and node, as reported.
    openers: BTreeMap<CkptId, BTreeMap<NodeId, u32>>,
}

/// A checkpoint being received.
#[derive(Debug)]
struct Incoming {
    meta: CkptMeta,
    expected: u32,
    sections: BTreeMap<Bytes, StateSection>,
}

/// One sync step.
#[derive(Debug)]
pub(crate) struct Round {
    ring: RingId,
    members: Vec<NodeId>,
    phase: Phase,
    peers: BTreeMap<NodeId, Peer>,
    plan: Option<Plan>,
    incoming: BTreeMap<CkptId, Incoming>,
}

impl Round {
    fn make_plan(&self, me: Option<NodeId>) -> Plan {
        let mut ids = BTreeSet::new();
        for p in self.peers.values() {
            ids.extend(p.entries.keys().copied());
        }
        let mut plan = Plan {
            ids,
            sender: BTreeMap::new(),
            need: BTreeSet::new(),
            send: Vec::new(),
            openers: BTreeMap::new(),
        };
        for &id in &plan.ids {
            let holders: Vec<(NodeId, &SummaryEntry)> = self
                .peers
                .iter()
                .filter_map(|(&n, p)| p.entries.get(&id).map(|e| (n, e)))
                .collect();
            // The merge rule: highest version, then intact, then the
            // lowest node id.
            let Some(&(winner, w)) = holders.iter().max_by(|a, b| {
                (a.1.version, a.1.intact, std::cmp::Reverse(a.0)).cmp(&(
                    b.1.version,
                    b.1.intact,
                    std::cmp::Reverse(b.0),
                ))
            }) else {
                continue;
            };
            let needers: Vec<NodeId> = self
                .members
                .iter()
                .copied()
                .filter(|m| {
                    !self.peers.get(m).is_some_and(|p| {
                        p.entries
                            .get(&id)
                            .is_some_and(|e| e.digest == w.digest && e.intact == w.intact)
                    })
                })
                .collect();
            if !needers.is_empty() {
                plan.sender.insert(id, winner);
                if me.is_some_and(|me| needers.contains(&me)) {
                    plan.need.insert(id);
                }
                if Some(winner) == me {
                    plan.send.push(id);
                }
            }
            let openers: BTreeMap<NodeId, u32> = holders
                .iter()
                .filter(|(_, e)| e.openers > 0)
                .map(|(n, e)| (*n, e.openers))
                .collect();
            plan.openers.insert(id, openers);
        }
        plan
    }
}

impl Ckpt {
    /// `sync_init`: summarize this node's store.
    pub(super) fn sync_start(&mut self, ctx: &mut Ctx<'_>) {
        let openers = self.local_openers();
        let entries = self
            .store
            .ckpts
            .iter()
            .map(|(id, c)| SummaryEntry {
                ckpt: *id,
                version: c.version,
                digest: c.content_digest(),
                intact: c.intact(),
                openers: openers.get(id).copied().unwrap_or(0),
            })
            .collect();
        self.round = Some(Round {
            ring: ctx.ring.ring_id,
            members: ctx.ring.members.clone(),
            phase: Phase::Summary {
                entries,
                next: 0,
                chunk: 0,
            },
            peers: BTreeMap::new(),
            plan: None,
            incoming: BTreeMap::new(),
        });
    }

    /// `sync_process`: sends what this member must, as the ring takes it.
    pub(super) fn sync_send(&mut self, ctx: &mut Ctx<'_>) -> SyncStep {
        loop {
            let Some(r) = self.round.as_mut() else {
                return SyncStep::Done;
            };
            let ring = r.ring;
            match std::mem::replace(&mut r.phase, Phase::Done) {
                Phase::Summary {
                    entries,
                    next,
                    chunk,
                } => {
                    let end = (next + SUMMARY_ENTRIES_PER_MSG).min(entries.len());
                    let msg = Summary {
                        ring,
                        chunk,
                        last: end == entries.len(),
                        entries: entries[next..end].to_vec(),
                    };
                    if ctx
                        .mcast(EX_SUMMARY, &msg.encode(), Guarantee::Agreed)
                        .is_err()
                    {
                        r.phase = Phase::Summary {
                            entries,
                            next,
                            chunk,
                        };
                        return SyncStep::Again;
                    }
                    r.phase = if msg.last {
                        Phase::Await
                    } else {
                        Phase::Summary {
                            entries,
                            next: end,
                            chunk: chunk + 1,
                        }
                    };
                }
                Phase::Await => match &r.plan {
                    None => {
                        r.phase = Phase::Await;
                        return SyncStep::Again;
                    }
                    Some(p) => {
                        r.phase = Phase::Send {
                            list: p.send.iter().copied().collect(),
                            header_sent: false,
                            after: None,
                        };
                    }
                },
                Phase::Send {
                    list,
                    header_sent,
                    after,
                } => {
                    let (phase, step) = self.send_state(ctx, ring, list, header_sent, after);
                    if let Some(r) = self.round.as_mut() {
                        r.phase = phase;
                    }
                    if step == SyncStep::Again {
                        return step;
                    }
                }
                Phase::Done => return SyncStep::Done,
            }
        }
    }

    /// Sends the checkpoints in `list`, from where it stopped.
    fn send_state(
        &self,
        ctx: &mut Ctx<'_>,
        ring: RingId,
        mut list: VecDeque<CkptId>,
        mut header_sent: bool,
        mut after: Option<Bytes>,
    ) -> (Phase, SyncStep) {
        while let Some(&id) = list.front() {
            let Some(c) = self.store.ckpts.get(&id) else {
                list.pop_front();
                header_sent = false;
                after = None;
                continue;
            };
            if !header_sent {
                let msg = StateCkpt {
                    ring,
                    ckpt: id,
                    meta: CkptMeta {
                        name: c.name.clone(),
                        linked: c.linked,
                        attrs: c.attrs,
                        active: c.active,
                        version: c.version,
                        decision_seq: c.decision_seq,
                        zero_epoch: c.zero_epoch,
                        generated: c.generated,
                    },
                    sections: u32::try_from(c.sections.len()).unwrap_or(u32::MAX),
                };
                if ctx
                    .mcast(EX_STATE_CKPT, &msg.encode(), Guarantee::Agreed)
                    .is_err()
                {
                    return (
                        Phase::Send {
                            list,
                            header_sent,
                            after,
                        },
                        SyncStep::Again,
                    );
                }
                header_sent = true;
            }
            let next = match &after {
                None => c.sections.iter().next(),
                Some(a) => c
                    .sections
                    .range::<Bytes, _>((Bound::Excluded(a), Bound::Unbounded))
                    .next(),
            };
            match next {
                Some((sid, s)) => {
                    let msg = StateSection {
                        ring,
                        ckpt: id,
                        id: sid.clone(),
                        expiration_ns: s.expiration_ns,
                        size: s.size,
                        last_update_ns: s.last_update_ns,
                        modified: s.modified,
                        data: match &s.local {
                            Local::Valid(d) => Some(d.clone()),
                            _ => None,
                        },
                    };
                    if ctx
                        .mcast(EX_STATE_SECTION, &msg.encode(), Guarantee::Agreed)
                        .is_err()
                    {
                        return (
                            Phase::Send {
                                list,
                                header_sent,
                                after,
                            },
                            SyncStep::Again,
                        );
                    }
                    after = Some(sid.clone());
                }
                None => {
                    list.pop_front();
                    header_sent = false;
                    after = None;
                }
            }
        }
        (Phase::Done, SyncStep::Done)
    }

    /// A sync message delivered.
    pub(super) fn sync_deliver(&mut self, from: NodeId, id: u16, body: &[u8]) {
        let me = self.me;
        let Some(r) = self.round.as_mut() else {
            return; // a round this node no longer runs
        };
        if !r.members.contains(&from) {
            self.stats.dropped_malformed += 1;
            return;
        }
        match id {
            EX_SUMMARY => {
                let Ok(s) = Summary::decode(body) else {
                    self.stats.dropped_malformed += 1;
                    return;
                };
                if s.ring != r.ring {
                    return;
                }
                let p = r.peers.entry(from).or_default();
                if p.complete || s.chunk != p.next_chunk {
                    return;
                }
                p.next_chunk += 1;
                for e in s.entries {
                    if p.entries.len() < MAX_SYNC_ENTRIES {
                        p.entries.insert(e.ckpt, e);
                    }
                }
                p.complete = s.last;
                let all = r
                    .members
                    .iter()
                    .all(|m| r.peers.get(m).is_some_and(|p| p.complete));
                if all && r.plan.is_none() {
                    r.plan = Some(r.make_plan(me));
                }
            }
            EX_STATE_CKPT => {
                let Ok(s) = StateCkpt::decode(body) else {
                    self.stats.dropped_malformed += 1;
                    return;
                };
                let Some(plan) = &r.plan else {
                    return;
                };
                if s.ring != r.ring
                    || !plan.need.contains(&s.ckpt)
                    || plan.sender.get(&s.ckpt) != Some(&from)
                    || s.sections > MAX_SECTIONS_PER_CHECKPOINT
                {
                    return;
                }
                r.incoming.insert(
                    s.ckpt,
                    Incoming {
                        meta: s.meta,
                        expected: s.sections,
                        sections: BTreeMap::new(),
                    },
                );
            }
            EX_STATE_SECTION => {
                let Ok(s) = StateSection::decode(body) else {
                    self.stats.dropped_malformed += 1;
                    return;
                };
                let Some(plan) = &r.plan else {
                    return;
                };
                if s.ring != r.ring || plan.sender.get(&s.ckpt) != Some(&from) {
                    return;
                }
                if let Some(inc) = r.incoming.get_mut(&s.ckpt) {
                    if inc.sections.len() < inc.expected as usize {
                        inc.sections.insert(s.id.clone(), s);
                    }
                }
            }
            _ => {}
        }
    }

    /// `sync_activate`: switch to the synchronized store, then apply what
    /// was held meanwhile.
    pub(super) fn sync_finish(&mut self, ctx: &mut Ctx<'_>) {
        let round = self.round.take();
        match round {
            Some(Round {
                members,
                plan: Some(plan),
                incoming,
                ..
            }) => self.install(ctx, &members, plan, incoming),
            Some(Round { ring, .. }) => {
                // Cannot happen: a member passes the closing barrier only
                // after every summary was delivered to it.
                log::error!("CKPT: sync of ring {ring:?} activated without a plan");
            }
            None => log::error!("CKPT: sync activated without a round"),
        }
        self.activated = true;
        self.activated_ring = Some(ctx.ring.ring_id);
        self.stats.syncs += 1;
        self.release_held(ctx);
    }

    fn install(
        &mut self,
        ctx: &mut Ctx<'_>,
        members: &[NodeId],
        plan: Plan,
        mut incoming: BTreeMap<CkptId, Incoming>,
    ) {
        let mut old = std::mem::take(&mut self.store);
        let mut new = Store::default();
        let limit = self.cfg.memory_limit_bytes;
        for &id in &plan.ids {
            let received = if plan.need.contains(&id) {
                match incoming.remove(&id) {
                    Some(inc) if inc.sections.len() == inc.expected as usize => Some(inc),
                    _ => {
                        log::error!("CKPT: sync incomplete for checkpoint {id:?}; keeping ours");
                        None
                    }
                }
            } else {
                None
            };
            let (mut c, sections): (Checkpoint, Vec<(Bytes, Section)>) = match received {
                Some(inc) => {
                    let m = inc.meta;
                    let mut c = Checkpoint::new(m.name, m.attrs);
                    c.linked = m.linked;
                    c.active = m.active;
                    c.version = m.version;
                    c.decision_seq = m.decision_seq;
                    c.zero_epoch = m.zero_epoch;
                    c.generated = m.generated;
                    let sections = inc
                        .sections
                        .into_iter()
                        .map(|(sid, s)| {
                            let local = match s.data {
                                Some(d) if d.len() as u64 == s.size => Local::Valid(d),
                                _ => Local::Corrupted,
                            };
                            let sec = Section {
                                expiration_ns: s.expiration_ns,
                                size: s.size,
                                last_update_ns: s.last_update_ns,
                                modified: s.modified,
                                local,
                            };
                            (sid, sec)
                        })
                        .collect();
                    (c, sections)
                }
                None => match old.ckpts.remove(&id) {
                    Some(mut c) => {
                        let sections = std::mem::take(&mut c.sections).into_iter().collect();
                        (c, sections)
                    }
                    None => continue,
                },
            };
            c.data_bytes = 0;
            c.decision_seq = 0;
            c.decision = None;
            c.queue.clear();
            c.zero_epoch += 1;
            c.openers = plan.openers.get(&id).cloned().unwrap_or_default();
            if c.linked && new.names.contains_key(&c.name) {
                // The name rule: the lowest id (inserted first) keeps it.
                c.linked = false;
            }
            if mode(&c.attrs) == Mode::Active && !c.active.is_some_and(|a| members.contains(&a)) {
                c.active = if collocated(&c.attrs) {
                    None
                } else {
                    members.first().copied()
                };
            }
            new.insert_ckpt(id, c);
            for (sid, mut s) in sections {
                // A copy asked before the sync will not come; a section
                // that does not fit this node is lost here.
                let cost = s.local_cost(&sid);
                s.local = match s.local {
                    Local::Valid(d) if new.local_bytes + cost <= limit => Local::Valid(d),
                    _ => {
                        self.stats.corrupted += 1;
                        Local::Corrupted
                    }
                };
                new.insert_section(id, sid, s);
            }
        }
        self.store = new;
        self.reserved_bytes = 0;
        // Retention, as every member computes it.
        let closed: Vec<(CkptId, bool, i64, u64)> = self
            .store
            .ckpts
            .iter()
            .filter(|(_, c)| c.open_count() == 0)
            .map(|(id, c)| (*id, c.linked, c.attrs.retention_duration_ns, c.zero_epoch))
            .collect();
        let store = &self.store;
        self.retention
            .retain(|id| store.ckpts.get(&id).is_some_and(|c| c.open_count() == 0));
        for (id, linked, retention, epoch) in closed {
            if !linked || retention == 0 {
                self.delete_ckpt(ctx, id);
            } else if retention == TIME_END {
                self.retention.disarm(id);
            } else {
                let at = self.retention.deadline(id).unwrap_or_else(|| {
                    ctx.now + Duration::from_nanos(u64::try_from(retention).unwrap_or(0))
                });
                self.retention.arm(id, at, epoch);
            }
        }
    }
}
