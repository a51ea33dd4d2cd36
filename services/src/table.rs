//! The service table: every engine of this node in handler-list order, the
//! barrier sync that runs them after each configuration change, and the
//! routing of ring deliveries and client requests to them.

use std::collections::VecDeque;

use bytes::Bytes;
use proto::{AisError, ServiceId};
use totem::{ConfigChange, ConfigKind, Delivery, Guarantee, Instant, NodeId, RingId};

use crate::barrier::{Barrier, BarrierMsg, SyncAction, SYNC_SERVICE};
use crate::engine::{ClientOutput, ConnId, Ctx, Engine, ExecHeader, RingTx, RingView, SyncStep};

/// Why a service table cannot be built.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// Two engines claim one service id.
    #[error("two engines registered for service {0:?}")]
    Duplicate(ServiceId),
    /// An engine uses the id reserved for barrier messages.
    #[error("service id {0:?} is reserved for the sync barrier")]
    Reserved(ServiceId),
}

/// What the table tells the node about sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncEvent {
    /// A round began for this configuration.
    Started(RingId),
    /// Every engine is synchronized for this configuration.
    Completed(RingId),
    /// The round of this configuration was aborted by a newer one.
    Aborted(RingId),
}

/// Counters of the table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Delivered messages of no registered service, or too short to carry
    /// a header, or malformed barriers: counted and dropped.
    pub dropped_exec: u64,
    /// Library requests refused with TRY_AGAIN because sync was running.
    pub refused_during_sync: u64,
    /// Sync rounds completed.
    pub sync_rounds: u64,
}

/// Every engine of this node.
#[derive(Debug)]
pub struct ServiceTable {
    engines: Vec<Box<dyn Engine>>,
    /// Positions in `engines` of those with sync hooks, in handler order.
    sync_order: Vec<usize>,
    barrier: Barrier,
    view: RingView,
    out: Vec<ClientOutput>,
    events: VecDeque<SyncEvent>,
    stats: TableStats,
    /// Messages delivered in the current regular configuration.
    delivered: u64,
}

impl ServiceTable {
    /// A table of `engines`, in handler-list order (the order they sync
    /// in).
    ///
    /// # Errors
    /// [`TableError`] when two engines share an id or one uses the barrier's.
    pub fn new(local: NodeId, engines: Vec<Box<dyn Engine>>) -> Result<ServiceTable, TableError> {
        for (i, e) in engines.iter().enumerate() {
            let id = e.service();
            if u16::from(id) == SYNC_SERVICE {
                return Err(TableError::Reserved(id));
            }
            if engines[..i].iter().any(|o| o.service() == id) {
                return Err(TableError::Duplicate(id));
            }
        }
        let sync_order: Vec<usize> = (0..engines.len())
            .filter(|&i| engines[i].has_sync())
            .collect();
        Ok(ServiceTable {
            barrier: Barrier::new(sync_order.len()),
            sync_order,
            engines,
            view: RingView {
                local,
                ring_id: RingId { seq: 0, rep: local },
                members: vec![local],
                synced: false,
            },
            out: Vec::new(),
            events: VecDeque::new(),
            stats: TableStats::default(),
            delivered: 0,
        })
    }

    /// Whether an engine for `service` is registered.
    pub fn has_service(&self, service: ServiceId) -> bool {
        self.position(service).is_some()
    }

    /// The ring as the engines see it.
    pub fn view(&self) -> &RingView {
        &self.view
    }

    /// Whether the current configuration is synchronized.
    pub fn synced(&self) -> bool {
        self.view.synced
    }

    /// Counters.
    pub fn stats(&self) -> &TableStats {
        &self.stats
    }

    /// The engine registered for `service`, to inspect (tests, dumps).
    pub fn engine(&self, service: ServiceId) -> Option<&dyn Engine> {
        self.position(service).map(|i| &*self.engines[i])
    }

    /// Every engine's dump, in table order.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for e in &self.engines {
            s.push_str(&format!("== {} ==\n{}\n", e.name(), e.dump()));
        }
        s
    }

    fn position(&self, service: ServiceId) -> Option<usize> {
        self.engines.iter().position(|e| e.service() == service)
    }

    /// Runs `f` on engine `i` with a context.
    fn with_engine<R>(
        &mut self,
        i: usize,
        now: Instant,
        tx: &mut dyn RingTx,
        f: impl FnOnce(&mut dyn Engine, &mut Ctx<'_>) -> R,
    ) -> R {
        let (before, rest) = self.engines.split_at_mut(i);
        let (engine, after) = rest
            .split_first_mut()
            .expect("callers pass an index of the table");
        let mut ctx = Ctx::new(now, &self.view, engine.service(), tx, &mut self.out).with_peers(
            before,
            after,
            self.delivered,
        );
        f(&mut **engine, &mut ctx)
    }

    // ----- inputs from the ring --------------------------------------------

    /// A configuration change from Totem: every engine hears it, and a
    /// regular one restarts the barrier sync.
    pub fn confchg(&mut self, now: Instant, tx: &mut dyn RingTx, change: &ConfigChange) {
        if change.kind == ConfigKind::Regular {
            let old_ring = self.view.ring_id;
            let was_running = self.barrier.in_progress();
            self.view.ring_id = change.ring_id;
            self.view.members = change.members.clone();
            self.view.synced = false;
            self.delivered = 0;
            let actions = self.barrier.on_regular(change.ring_id, &change.members);
            if was_running {
                self.events.push_back(SyncEvent::Aborted(old_ring));
            }
            self.events.push_back(SyncEvent::Started(change.ring_id));
            // Abort before the engines hear of the new configuration, so
            // they throw the old round away first.
            self.apply(now, tx, &actions);
        }
        for i in 0..self.engines.len() {
            self.with_engine(i, now, tx, |e, ctx| e.confchg(ctx, change));
        }
        self.pump(now, tx);
    }

    /// A message delivered by Totem.
    pub fn deliver(&mut self, now: Instant, tx: &mut dyn RingTx, d: &Delivery) {
        self.deliver_one(now, tx, d);
        self.delivered += 1;
    }

    fn deliver_one(&mut self, now: Instant, tx: &mut dyn RingTx, d: &Delivery) {
        let Some((service, id, body)) = ExecHeader::decode(&d.payload) else {
            self.stats.dropped_exec += 1;
            return;
        };
        if service == SYNC_SERVICE {
            match BarrierMsg::decode(&body) {
                Some(m) => {
                    let actions = self.barrier.on_barrier(d.origin, m);
                    self.apply(now, tx, &actions);
                    self.pump(now, tx);
                }
                None => self.stats.dropped_exec += 1,
            }
            return;
        }
        let pos = ServiceId::try_from(service)
            .ok()
            .and_then(|s| self.position(s));
        match pos {
            Some(i) => {
                self.with_engine(i, now, tx, |e, ctx| e.exec_deliver(ctx, d.origin, id, body))
            }
            None => self.stats.dropped_exec += 1,
        }
    }

    fn apply(&mut self, now: Instant, tx: &mut dyn RingTx, actions: &[SyncAction]) {
        for &a in actions {
            match a {
                SyncAction::Abort(p) => {
                    let i = self.sync_order[p];
                    self.with_engine(i, now, tx, |e, ctx| e.sync_abort(ctx));
                }
                SyncAction::Activate(p) => {
                    let i = self.sync_order[p];
                    self.with_engine(i, now, tx, |e, ctx| e.sync_activate(ctx));
                }
                SyncAction::Init(p) => {
                    let i = self.sync_order[p];
                    self.with_engine(i, now, tx, |e, ctx| e.sync_init(ctx));
                }
                SyncAction::Complete => {
                    self.view.synced = true;
                    self.stats.sync_rounds += 1;
                    self.events
                        .push_back(SyncEvent::Completed(self.view.ring_id));
                }
            }
        }
    }

    /// Lets the sync make progress: the running engine sends what it can
    /// and this member's barrier goes out once it may. The node calls it
    /// after every input (the ring may have room again).
    pub fn pump(&mut self, now: Instant, tx: &mut dyn RingTx) {
        if let Some(p) = self.barrier.processing() {
            let i = self.sync_order[p];
            match self.with_engine(i, now, tx, |e, ctx| e.sync_process(ctx)) {
                SyncStep::Done => self.barrier.process_done(p),
                SyncStep::Again => return,
            }
        }
        if let Some(m) = self.barrier.pending_barrier() {
            let payload = ExecHeader {
                service: SYNC_SERVICE,
                id: 0,
            }
            .encode_with(&m.encode());
            if tx.mcast(payload, Guarantee::Agreed).is_ok() {
                self.barrier.sent(m);
            }
        }
    }

    // ----- inputs from clients ---------------------------------------------

    /// A client connection to `service` was set up.
    pub fn lib_init(
        &mut self,
        now: Instant,
        tx: &mut dyn RingTx,
        service: ServiceId,
        conn: ConnId,
    ) {
        if let Some(i) = self.position(service) {
            self.with_engine(i, now, tx, |e, ctx| e.lib_init(ctx, conn));
        }
    }

    /// A client connection to `service` went away.
    pub fn lib_exit(
        &mut self,
        now: Instant,
        tx: &mut dyn RingTx,
        service: ServiceId,
        conn: ConnId,
    ) {
        if let Some(i) = self.position(service) {
            self.with_engine(i, now, tx, |e, ctx| e.lib_exit(ctx, conn));
        }
    }

    /// A library request. Answered (possibly later) through
    /// [`ServiceTable::take_outputs`]; a request that needs synchronized
    /// state while sync runs is answered TRY_AGAIN at once.
    pub fn lib_request(
        &mut self,
        now: Instant,
        tx: &mut dyn RingTx,
        service: ServiceId,
        conn: ConnId,
        id: u16,
        body: Bytes,
    ) {
        let Some(i) = self.position(service) else {
            self.out.push(ClientOutput::Response {
                conn,
                service,
                id,
                result: Err(AisError::NotSupported),
                body: Bytes::new(),
            });
            return;
        };
        if !self.view.synced && self.engines[i].request_needs_sync(id) {
            self.stats.refused_during_sync += 1;
            self.out.push(ClientOutput::Response {
                conn,
                service,
                id,
                result: Err(AisError::TryAgain),
                body: Bytes::new(),
            });
            return;
        }
        let r = self.with_engine(i, now, tx, |e, ctx| e.lib_request(ctx, conn, id, body));
        if let Err(err) = r {
            self.out.push(ClientOutput::Response {
                conn,
                service,
                id,
                result: Err(err),
                body: Bytes::new(),
            });
        }
    }

    // ----- timers and outputs ----------------------------------------------

    /// The earliest engine deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.engines.iter().filter_map(|e| e.poll_timeout()).min()
    }

    /// Fires every engine whose deadline passed.
    pub fn handle_timeout(&mut self, now: Instant, tx: &mut dyn RingTx) {
        for i in 0..self.engines.len() {
            if self.engines[i].poll_timeout().is_some_and(|t| t <= now) {
                self.with_engine(i, now, tx, |e, ctx| e.handle_timeout(ctx));
            }
        }
    }

    /// Takes every pending client output, in the order produced.
    pub fn take_outputs(&mut self) -> Vec<ClientOutput> {
        std::mem::take(&mut self.out)
    }

    /// Moves every pending client output, in the order produced, to the
    /// end of `into`. Unlike [`ServiceTable::take_outputs`] both vectors
    /// keep their room: taking a fresh one per delivery cost an
    /// allocation per delivered message.
    pub fn move_outputs_into(&mut self, into: &mut Vec<ClientOutput>) {
        into.append(&mut self.out);
    }

    /// The next sync event.
    pub fn poll_event(&mut self) -> Option<SyncEvent> {
        self.events.pop_front()
    }

    // ----- backup file jobs ------------------------------------------------

    /// The next file job of the BACKUP engine for the driver's workers.
    pub fn poll_backup_io(&mut self) -> Option<crate::backup::BackupIo> {
        self.engines.iter_mut().find_map(|e| e.poll_backup_io())
    }

    /// A backup file job ended; the driver passes the time it learnt it.
    pub fn handle_backup_io_done(
        &mut self,
        now: Instant,
        tx: &mut dyn RingTx,
        done: crate::backup::BackupIoDone,
    ) {
        if let Some(i) = self.position(ServiceId::Backup) {
            self.with_engine(i, now, tx, |e, ctx| e.handle_backup_io_done(ctx, done));
        }
        self.pump(now, tx);
    }

    /// Re-registers running backup jobs with the master (SIGHUP).
    pub fn backup_reregister(&mut self, now: Instant, tx: &mut dyn RingTx) {
        if let Some(i) = self.position(ServiceId::Backup) {
            self.with_engine(i, now, tx, |e, ctx| e.backup_reregister(ctx));
        }
    }

    /// Whether backup work is in flight on this node.
    pub fn backup_busy(&self) -> bool {
        self.engines.iter().any(|e| e.backup_busy())
    }
}
