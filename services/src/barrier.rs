//! The barrier sync that runs after every regular configuration change.
//!
//! Facts from openais 0.80 `exec/sync.c`, rebuilt as a pure state machine:
//! the services that have sync hooks are synchronized one after another in
//! handler-list order. Each step is bracketed by barriers: every member
//! multicasts a barrier `{ring id, step}`; once the barrier of step `k` has
//! come from every member of the configuration, the engine of step `k - 1`
//! activates and the engine of step `k` starts (`sync_init`, then
//! `sync_process` until it reports done, then this member's barrier of step
//! `k + 1`). After the last engine the round is complete.
//!
//! Why this gives every member the same state: barriers and the engines'
//! sync messages travel in the one total order, and a member sends its next
//! barrier only after its sync messages, so when the last barrier of a step
//! is delivered every member has delivered every sync message of the step,
//! at the same point of the order. A barrier of another ring or another
//! step is stale (sent before a change this member already saw) and is
//! ignored. A new regular configuration aborts the running step and starts
//! the round again from the first engine.
//!
//! Deviation: the step number travels in the barrier (openais sent only the
//! ring id), so a stale barrier can never complete the wrong step.

use std::collections::BTreeSet;

use bytes::Bytes;
use proto::{Decoder, Encoder};
use totem::{NodeId, RingId};

/// The service id barrier messages carry in their [`crate::ExecHeader`];
/// no engine may use it.
pub const SYNC_SERVICE: u16 = 0xFFFF;

/// A barrier message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarrierMsg {
    /// The configuration the round belongs to.
    pub ring_id: RingId,
    /// The step it opens (0 opens the first engine's sync).
    pub step: u16,
}

impl BarrierMsg {
    /// Its body on the ring: ring seq u64, ring rep u32, step u16.
    pub fn encode(self) -> Bytes {
        let mut enc = Encoder::new();
        enc.put_u64(self.ring_id.seq)
            .put_u32(self.ring_id.rep.get())
            .put_u16(self.step);
        enc.finish()
    }

    /// Decodes a body from a peer; `None` if malformed.
    pub fn decode(body: &[u8]) -> Option<BarrierMsg> {
        let mut dec = Decoder::new(body);
        let seq = dec.get_u64().ok()?;
        let rep = NodeId::new(dec.get_u32().ok()?)?;
        let step = dec.get_u16().ok()?;
        dec.finish().ok()?;
        Some(BarrierMsg {
            ring_id: RingId { seq, rep },
            step,
        })
    }
}

/// What the barrier asks of the engines (indices into the sync order the
/// barrier was built with).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncAction {
    /// Call `sync_abort` of the engine at this position.
    Abort(usize),
    /// Call `sync_activate` of the engine at this position.
    Activate(usize),
    /// Call `sync_init` of the engine at this position; then `sync_process`
    /// until done (see [`Barrier::processing`]).
    Init(usize),
    /// Every engine is synchronized for this configuration.
    Complete,
}

/// One round: a configuration's walk through the sync order.
#[derive(Clone, Debug)]
struct Round {
    ring_id: RingId,
    members: BTreeSet<NodeId>,
    /// The barrier step being collected; step `k` opens engine `k`.
    step: u16,
    arrived: BTreeSet<NodeId>,
    /// This member's barrier for `step` is still to be multicast.
    must_send: bool,
    /// The engine of step `step - 1` is still sending (`sync_process`).
    processing: Option<usize>,
}

/// The barrier state machine.
#[derive(Clone, Debug)]
pub struct Barrier {
    /// How many engines take part (positions 0..engines).
    engines: usize,
    round: Option<Round>,
    /// Rounds completed, for status and tests.
    completed: u64,
}

impl Barrier {
    /// A barrier over `engines` sync-capable engines.
    ///
    /// # Panics
    /// If `engines` does not fit a barrier step (more than 65 534): the
    /// service table is a compile-time list of a handful of engines.
    pub fn new(engines: usize) -> Barrier {
        assert!(engines < usize::from(u16::MAX), "too many sync engines");
        Barrier {
            engines,
            round: None,
            completed: 0,
        }
    }

    /// A regular configuration was installed: abort what runs, start over.
    pub fn on_regular(&mut self, ring_id: RingId, members: &[NodeId]) -> Vec<SyncAction> {
        let mut actions = Vec::new();
        if let Some(r) = self.round.take() {
            // The engine that was initialised but not yet activated is the
            // one of the step before the one being collected.
            if r.step > 0 {
                actions.push(SyncAction::Abort(usize::from(r.step) - 1));
            }
        }
        self.round = Some(Round {
            ring_id,
            members: members.iter().copied().collect(),
            step: 0,
            arrived: BTreeSet::new(),
            must_send: true,
            processing: None,
        });
        actions
    }

    /// Whether a round is running (client requests that need synchronized
    /// state must wait).
    pub fn in_progress(&self) -> bool {
        self.round.is_some()
    }

    /// Rounds completed since start.
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// The engine whose `sync_process` must be called, if any.
    pub fn processing(&self) -> Option<usize> {
        self.round.as_ref().and_then(|r| r.processing)
    }

    /// The engine at `pos` reported its `sync_process` done.
    pub fn process_done(&mut self, pos: usize) {
        if let Some(r) = &mut self.round {
            if r.processing == Some(pos) {
                r.processing = None;
                r.must_send = true;
            }
        }
    }

    /// The barrier this member must multicast now, if any. Call
    /// [`Barrier::sent`] once the ring accepted it.
    pub fn pending_barrier(&self) -> Option<BarrierMsg> {
        let r = self.round.as_ref()?;
        (r.must_send && r.processing.is_none()).then_some(BarrierMsg {
            ring_id: r.ring_id,
            step: r.step,
        })
    }

    /// The ring accepted `msg` (from [`Barrier::pending_barrier`]).
    pub fn sent(&mut self, msg: BarrierMsg) {
        if let Some(r) = &mut self.round {
            if r.ring_id == msg.ring_id && r.step == msg.step {
                r.must_send = false;
            }
        }
    }

    /// A barrier from `from` was delivered.
    pub fn on_barrier(&mut self, from: NodeId, msg: BarrierMsg) -> Vec<SyncAction> {
        let Some(r) = &mut self.round else {
            return Vec::new();
        };
        if msg.ring_id != r.ring_id || msg.step != r.step || !r.members.contains(&from) {
            return Vec::new();
        }
        r.arrived.insert(from);
        if !r.arrived_all() {
            return Vec::new();
        }
        // A member sends its barrier of a step only after it finished the
        // engine of the step before, so a complete step means every member
        // (this one included) is past `processing`.
        debug_assert!(r.processing.is_none() && !r.must_send);
        let mut actions = Vec::new();
        if r.step > 0 {
            actions.push(SyncAction::Activate(usize::from(r.step) - 1));
        }
        if usize::from(r.step) == self.engines {
            self.round = None;
            self.completed += 1;
            actions.push(SyncAction::Complete);
        } else {
            let pos = usize::from(r.step);
            r.step += 1;
            r.arrived.clear();
            r.processing = Some(pos);
            actions.push(SyncAction::Init(pos));
        }
        actions
    }
}

impl Round {
    fn arrived_all(&self) -> bool {
        self.arrived.is_superset(&self.members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: u32) -> NodeId {
        NodeId::new(i).unwrap()
    }

    fn ring(seq: u64) -> RingId {
        RingId { seq, rep: n(1) }
    }

    /// Walks one member through a whole round with 2 engines and checks
    /// the order of actions.
    #[test]
    fn a_round_inits_and_activates_engines_in_order() {
        let mut b = Barrier::new(2);
        let members = [n(1), n(2)];
        assert!(b.on_regular(ring(4), &members).is_empty());
        let m = b.pending_barrier().unwrap();
        assert_eq!(m.step, 0);
        b.sent(m);
        assert_eq!(b.pending_barrier(), None);
        assert!(b.on_barrier(n(2), m).is_empty());
        assert_eq!(b.on_barrier(n(1), m), vec![SyncAction::Init(0)]);
        assert_eq!(b.processing(), Some(0));
        assert_eq!(b.pending_barrier(), None, "no barrier while processing");
        b.process_done(0);
        let m1 = b.pending_barrier().unwrap();
        assert_eq!(m1.step, 1);
        b.sent(m1);
        b.on_barrier(n(1), m1);
        assert_eq!(
            b.on_barrier(n(2), m1),
            vec![SyncAction::Activate(0), SyncAction::Init(1)]
        );
        b.process_done(1);
        let m2 = b.pending_barrier().unwrap();
        b.sent(m2);
        b.on_barrier(n(2), m2);
        assert_eq!(
            b.on_barrier(n(1), m2),
            vec![SyncAction::Activate(1), SyncAction::Complete]
        );
        assert!(!b.in_progress());
        assert_eq!(b.completed(), 1);
    }

    #[test]
    fn stale_and_foreign_barriers_are_ignored() {
        let mut b = Barrier::new(1);
        b.on_regular(ring(8), &[n(1), n(2)]);
        let m = b.pending_barrier().unwrap();
        b.sent(m);
        // Old ring, wrong step, non-member: none counts.
        let old = BarrierMsg {
            ring_id: ring(4),
            step: 0,
        };
        let ahead = BarrierMsg {
            ring_id: ring(8),
            step: 1,
        };
        for (from, msg) in [(n(2), old), (n(2), ahead), (n(3), m)] {
            assert!(b.on_barrier(from, msg).is_empty());
        }
        assert!(b.on_barrier(n(1), m).is_empty(), "node 2 still missing");
        assert_eq!(b.on_barrier(n(2), m), vec![SyncAction::Init(0)]);
    }

    #[test]
    fn a_new_configuration_aborts_the_running_engine_and_restarts() {
        let mut b = Barrier::new(2);
        b.on_regular(ring(4), &[n(1), n(2)]);
        let m = b.pending_barrier().unwrap();
        b.sent(m);
        b.on_barrier(n(1), m);
        b.on_barrier(n(2), m);
        assert_eq!(b.processing(), Some(0));
        assert_eq!(b.on_regular(ring(8), &[n(1)]), vec![SyncAction::Abort(0)]);
        let m = b.pending_barrier().unwrap();
        assert_eq!((m.ring_id, m.step), (ring(8), 0));
        b.sent(m);
        assert_eq!(b.on_barrier(n(1), m), vec![SyncAction::Init(0)]);
    }

    #[test]
    fn no_sync_engines_completes_at_the_first_barrier() {
        let mut b = Barrier::new(0);
        b.on_regular(ring(4), &[n(1)]);
        let m = b.pending_barrier().unwrap();
        b.sent(m);
        assert_eq!(b.on_barrier(n(1), m), vec![SyncAction::Complete]);
    }

    #[test]
    fn barrier_body_round_trips_and_rejects_garbage() {
        let m = BarrierMsg {
            ring_id: RingId {
                seq: 1 << 40,
                rep: n(7),
            },
            step: 3,
        };
        assert_eq!(BarrierMsg::decode(&m.encode()), Some(m));
        assert_eq!(BarrierMsg::decode(&[0; 13]), None);
        assert_eq!(BarrierMsg::decode(&[0; 14]), None, "rep 0 is no node");
        let mut long = m.encode().to_vec();
        assert_eq!(long.len(), 14, "seq u64, rep u32, step u16");
        long.push(0);
        assert_eq!(BarrierMsg::decode(&long), None, "trailing bytes");
    }
}
