//! The node: Totem below, the service table above, clients beside.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use log::{debug, warn};
use proto::setup::{Hello, HelloReply, Version};
use proto::{AisError, EncodedFrame, Frame, FrameKind, ServiceId, Status};
use services::{ClientOutput, ConnId, Engine, RingTx, ServiceTable, SyncEvent, TableError};
use totem::{
    ConfigChange, Event, Guarantee, Instant, McastError, NodeId, Totem, Transmit, ValidConfig,
};

use crate::clients::{Clients, Creds, Phase};
use crate::posted::{self, Held};
use crate::status;

/// What a frame without a body is: kind, service, id, status.
type BareFrameKey = (FrameKind, u16, u16, Status);

/// Outputs' room [`Node`] keeps between turns (see `table_outputs`).
const KEPT_TABLE_OUTPUTS: usize = 1024;

/// Where a node is and what it is called, for status output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its address as configured (e.g. "127.0.0.2:5405").
    pub addr: String,
    /// Its name (the `name` key of its nodelist entry, or empty).
    pub name: String,
}

/// What a node is built from.
#[derive(Debug)]
pub struct NodeConfig {
    /// The validated Totem configuration (carries this node's id).
    pub totem: ValidConfig,
    /// The service engines in handler-list order (CLM, EVS, CKPT, BACKUP).
    pub engines: Vec<Box<dyn Engine>>,
    /// Every configured node, for status output.
    pub directory: BTreeMap<NodeId, NodeInfo>,
    /// Most client connections at once; more are refused.
    pub max_clients: usize,
    /// Report every Totem event as [`NodeEvent::Totem`] (the simulator's
    /// checkers want them; the daemon does not).
    pub observe: bool,
}

/// What the node tells its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// A configuration change (for the log).
    ConfigChange(ConfigChange),
    /// Persist this as the ring seq floor for the next start.
    RingSeqHigh(u64),
    /// Sync progress (the daemon signals readiness at the first
    /// completion).
    Sync(SyncEvent),
    /// Close this client connection once its pending frames are written.
    CloseClient(ConnId),
    /// Any Totem event, when [`NodeConfig::observe`] is set.
    Totem(Event),
}

/// Counters of the node itself (Totem and the table have theirs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Client connections accepted.
    pub clients_accepted: u64,
    /// Client connections refused because the table was full.
    pub clients_refused: u64,
    /// Clients closed for a protocol violation (no Hello first, wrong
    /// frame kind or service).
    pub clients_violations: u64,
    /// Clients refused at setup: a first frame that is no valid Hello, an
    /// unknown service or an unsupported version.
    pub clients_bad_setup: u64,
    /// Requests answered.
    pub requests: u64,
    /// Frames that could not be encoded (an engine answered more than a
    /// frame holds); answered with TOO_BIG instead.
    pub frames_too_big: u64,
    /// Posted requests held because the service answered TRY_AGAIN (each
    /// time one was held).
    pub posted_held: u64,
    /// Posted requests answered TRY_AGAIN because their connection's hold
    /// was full (a client past its window).
    pub posted_refused: u64,
}

/// One node.
#[derive(Debug)]
pub struct Node {
    totem: Totem,
    table: ServiceTable,
    clients: Clients,
    directory: BTreeMap<NodeId, NodeInfo>,
    client_out: VecDeque<(ConnId, EncodedFrame)>,
    /// The last frame without a body pushed, by its header fields: the
    /// answer to a post is the same frame every time, and encoding it
    /// anew cost an allocation per message.
    last_bare_frame: Option<(BareFrameKey, EncodedFrame)>,
    /// Room for the table's outputs between `process` calls, kept so that
    /// a delivery does not allocate it anew (always empty between calls).
    table_outputs: Vec<ClientOutput>,
    events: VecDeque<NodeEvent>,
    observe: bool,
    stats: NodeStats,
    /// Counters of the driver (transport, IPC), reported with the node's.
    driver_counters: Vec<(&'static str, u64)>,
    /// Posted requests the service could not take yet, per connection, in
    /// arrival order (see [`crate::posted`]).
    held: Held,
    /// The posted request being handed to the table: its TRY_AGAIN answer
    /// is intercepted (the request is held instead).
    posting: Option<(ConnId, u16)>,
    /// The table answered the posted request in hand with TRY_AGAIN.
    posting_refused: bool,
}

/// Engines multicast through this: Totem at the current time.
struct TotemTx<'a> {
    totem: &'a mut Totem,
    now: Instant,
}

impl RingTx for TotemTx<'_> {
    fn mcast(&mut self, payload: Bytes, guarantee: Guarantee) -> Result<(), McastError> {
        self.totem.handle_mcast(self.now, payload, guarantee)
    }
}

impl Node {
    /// A node that starts at `now`.
    ///
    /// # Errors
    /// [`TableError`] when the engines do not form a valid table.
    pub fn new(cfg: NodeConfig, now: Instant) -> Result<Node, TableError> {
        let me = cfg.totem.get().node_id;
        let table = ServiceTable::new(me, cfg.engines)?;
        let mut node = Node {
            totem: Totem::new(cfg.totem, now),
            table,
            clients: Clients::new(cfg.max_clients),
            directory: cfg.directory,
            client_out: VecDeque::new(),
            table_outputs: Vec::new(),
            last_bare_frame: None,
            events: VecDeque::new(),
            observe: cfg.observe,
            stats: NodeStats::default(),
            driver_counters: Vec::new(),
            held: Held::default(),
            posting: None,
            posting_refused: false,
        };
        node.process(now);
        Ok(node)
    }

    // ----- inputs ------------------------------------------------------------

    /// A datagram from the network.
    pub fn handle_packet(&mut self, now: Instant, datagram: Bytes) {
        self.totem.handle_packet(now, datagram);
        self.process(now);
        self.release_held(now);
    }

    /// A datagram from a peer, as [`Node::handle_packet`], except that what
    /// it delivers waits for [`Node::deliver_received`]. A driver that
    /// reads a batch of datagrams gives each to Totem this way and sends
    /// its transmits at once: a token that came right behind a visit's
    /// messages then goes on to the next node before the services here
    /// handle those messages, instead of after (one sender of 1 KiB
    /// messages went 7 to 30% faster so). Totem's own state is the same
    /// either way; the services only see their deliveries a little later
    /// in the same turn, and what they multicast in answer goes out at the
    /// next token visit.
    pub fn receive_packet(&mut self, now: Instant, datagram: Bytes) {
        self.totem.handle_packet(now, datagram);
    }

    /// Hands what [`Node::receive_packet`] received to the services, in
    /// Totem's order. Call it after a batch, before any other input.
    pub fn deliver_received(&mut self, now: Instant) {
        self.process(now);
        self.release_held(now);
    }

    /// The time from [`Node::poll_timeout`] came; early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.totem.handle_timeout(now);
        let mut tx = TotemTx {
            totem: &mut self.totem,
            now,
        };
        self.table.handle_timeout(now, &mut tx);
        self.process(now);
        self.release_held(now);
    }

    /// A local client connected. `None` when the connection table is full:
    /// the driver closes the connection.
    pub fn client_connected(&mut self, creds: Creds) -> Option<ConnId> {
        match self.clients.add() {
            Some(id) => {
                self.stats.clients_accepted += 1;
                Some(id)
            }
            None => {
                self.stats.clients_refused += 1;
                warn!(
                    "IPC: refusing client pid {} uid {}: {} connections open",
                    creds.pid,
                    creds.uid,
                    self.clients.len()
                );
                None
            }
        }
    }

    /// A complete frame from a client. The first must be a Hello; after it,
    /// Requests for the service the Hello named.
    pub fn client_frame(&mut self, now: Instant, conn: ConnId, frame: Frame) {
        let Some(client) = self.clients.get(conn) else {
            return;
        };
        match client.phase {
            Phase::Closing => {}
            Phase::AwaitHello => self.on_hello(now, conn, &frame),
            Phase::Open(service) => {
                if frame.kind != FrameKind::Request || frame.service != u16::from(service) {
                    self.violation(conn, "a frame that is not a request of its service");
                    return;
                }
                self.stats.requests += 1;
                if service == ServiceId::Cfg {
                    self.on_status_request(conn, &frame);
                } else if posted::is_posted(&frame) || self.held.holds(conn) {
                    self.on_posted(now, conn, service, frame);
                    return;
                } else {
                    let mut tx = TotemTx {
                        totem: &mut self.totem,
                        now,
                    };
                    self.table
                        .lib_request(now, &mut tx, service, conn, frame.id, frame.body);
                }
                self.process(now);
            }
        }
    }

    /// Whether the driver's local clients lag behind their callbacks (see
    /// [`Totem::set_receivers_congested`]: the ring takes no new messages
    /// while set; the driver clears it within a bounded time).
    pub fn set_receivers_congested(&mut self, congested: bool) {
        self.totem.set_receivers_congested(congested);
    }

    /// Leaves the ring cleanly (SIGTERM): the other nodes reform at once.
    /// Afterwards the node takes no more input; the driver sends what
    /// [`Node::poll_transmit`] returns and exits.
    pub fn leave(&mut self, now: Instant) {
        self.totem.leave(now);
    }

    /// A client connection went away (or the driver closed it).
    pub fn client_closed(&mut self, now: Instant, conn: ConnId) {
        self.held.forget(conn);
        if let Some(c) = self.clients.remove(conn) {
            if let Phase::Open(service) = c.phase {
                if service != ServiceId::Cfg {
                    let mut tx = TotemTx {
                        totem: &mut self.totem,
                        now,
                    };
                    self.table.lib_exit(now, &mut tx, service, conn);
                }
            }
            self.process(now);
        }
    }

    fn on_hello(&mut self, now: Instant, conn: ConnId, frame: &Frame) {
        let reply = match Hello::decode(frame) {
            Err(e) => {
                debug!("IPC: bad setup frame on connection {}: {e}", conn.0);
                Err(HelloReply::refused(e.status()))
            }
            Ok(hello) => match self.supported_version(hello.service) {
                None => Err(HelloReply::refused(AisError::NotSupported)),
                Some(supported) => match Version::negotiate(hello.version, supported) {
                    Ok(v) => Ok((hello.service, HelloReply::accepted(v))),
                    Err(s) => Err(HelloReply::version_mismatch(s)),
                },
            },
        };
        match reply {
            Ok((service, r)) => {
                self.push_frame(conn, r.to_frame(service.into()));
                self.clients.set_phase(conn, Phase::Open(service));
                if service != ServiceId::Cfg {
                    let mut tx = TotemTx {
                        totem: &mut self.totem,
                        now,
                    };
                    self.table.lib_init(now, &mut tx, service, conn);
                    self.process(now);
                }
            }
            Err(r) => {
                self.stats.clients_bad_setup += 1;
                self.push_frame(conn, r.to_frame(frame.service));
                self.clients.set_phase(conn, Phase::Closing);
                self.events.push_back(NodeEvent::CloseClient(conn));
            }
        }
    }

    /// A posted request (or any request behind held ones): handed to the
    /// table now if nothing of its connection is held, else held behind
    /// them; a full hold is answered TRY_AGAIN.
    fn on_posted(&mut self, now: Instant, conn: ConnId, service: ServiceId, frame: Frame) {
        if self.held.holds(conn) {
            if let Err(frame) = self.held.push_back(conn, frame) {
                self.stats.posted_refused += 1;
                let f = Frame::response(
                    frame.service,
                    frame.id,
                    Err(AisError::TryAgain),
                    Bytes::new(),
                );
                self.push_frame(conn, f);
            }
        } else if !self.submit_posted(now, conn, service, frame.clone()) {
            // The connection held nothing: there is room for one.
            let _ = self.held.push_back(conn, frame);
        }
        self.release_held(now);
    }

    /// Hands a request to the table; `false` (and no answer sent) if it
    /// was posted and the table answered TRY_AGAIN.
    fn submit_posted(
        &mut self,
        now: Instant,
        conn: ConnId,
        service: ServiceId,
        frame: Frame,
    ) -> bool {
        let posted = posted::is_posted(&frame);
        if posted {
            self.posting = Some((conn, frame.id));
            self.posting_refused = false;
        }
        let mut tx = TotemTx {
            totem: &mut self.totem,
            now,
        };
        self.table
            .lib_request(now, &mut tx, service, conn, frame.id, frame.body);
        self.process(now);
        self.posting = None;
        if posted && self.posting_refused {
            self.stats.posted_held += 1;
            return false;
        }
        true
    }

    /// Hands held requests to the table, oldest first, until one is
    /// refused again (Totem's queue is still full, or sync still runs:
    /// both hold for every connection alike).
    fn release_held(&mut self, now: Instant) {
        while let Some((conn, frame)) = self.held.pop_next() {
            let Some(Phase::Open(service)) = self.clients.get(conn).map(|c| c.phase) else {
                self.held.forget(conn);
                continue;
            };
            if !self.submit_posted(now, conn, service, frame.clone()) {
                self.held.push_front(conn, frame);
                return;
            }
        }
    }

    fn supported_version(&self, service: ServiceId) -> Option<Version> {
        if service == ServiceId::Cfg {
            return Some(proto::status::VERSION);
        }
        self.table.engine(service).map(|e| e.version())
    }

    fn violation(&mut self, conn: ConnId, what: &str) {
        self.stats.clients_violations += 1;
        warn!("IPC: closing connection {}: it sent {what}", conn.0);
        self.clients.set_phase(conn, Phase::Closing);
        self.events.push_back(NodeEvent::CloseClient(conn));
    }

    fn on_status_request(&mut self, conn: ConnId, frame: &Frame) {
        let (result, body) = if frame.id == proto::status::RING_STATUS {
            (Ok(()), self.status().encode())
        } else {
            (Err(AisError::NotSupported), Bytes::new())
        };
        self.push_frame(
            conn,
            Frame::response(ServiceId::Cfg.into(), frame.id, result, body),
        );
    }

    // ----- the loop between Totem and the services -----------------------------

    /// Hands every Totem event to the services (which may multicast, which
    /// may make Totem produce more events), lets the sync progress, and
    /// collects what the services produced for clients.
    fn process(&mut self, now: Instant) {
        let mut pending = None;
        loop {
            while let Some(ev) = pending.take().or_else(|| self.totem.poll_event()) {
                let mut tx = TotemTx {
                    totem: &mut self.totem,
                    now,
                };
                match &ev {
                    Event::Deliver(d) => self.table.deliver(now, &mut tx, d),
                    Event::ConfigChange(c) => {
                        self.table.confchg(now, &mut tx, c);
                        self.events.push_back(NodeEvent::ConfigChange(c.clone()));
                    }
                    Event::RingSeqHigh(s) => self.events.push_back(NodeEvent::RingSeqHigh(*s)),
                }
                if self.observe {
                    self.events.push_back(NodeEvent::Totem(ev));
                }
            }
            let mut tx = TotemTx {
                totem: &mut self.totem,
                now,
            };
            self.table.pump(now, &mut tx);
            // Pumping may have made a held token move and deliver.
            match self.totem.poll_event() {
                Some(ev) => pending = Some(ev),
                None => break,
            }
        }
        let mut outs = std::mem::take(&mut self.table_outputs);
        self.table.move_outputs_into(&mut outs);
        for out in outs.drain(..) {
            self.push_output(out);
        }
        // A burst (a configuration change to every client) leaves no
        // lasting room behind it.
        outs.shrink_to(KEPT_TABLE_OUTPUTS);
        self.table_outputs = outs;
        while let Some(e) = self.table.poll_event() {
            self.events.push_back(NodeEvent::Sync(e));
        }
    }

    fn push_output(&mut self, out: ClientOutput) {
        let (conn, frame) = match out {
            ClientOutput::Response {
                conn,
                service,
                id,
                result,
                body,
            } => (conn, Frame::response(service.into(), id, result, body)),
            ClientOutput::Callback {
                conn,
                service,
                id,
                body,
                tail,
            } => {
                if !tail.is_empty() {
                    self.push_callback_with_tail(conn, service, id, &body, tail);
                    return;
                }
                (conn, Frame::callback(service, id, body))
            }
            ClientOutput::Frame { conn, frame } => {
                if self.clients.contains(conn) {
                    self.client_out.push_back((conn, frame));
                }
                return;
            }
        };
        self.push_frame(conn, frame);
    }

    fn push_frame(&mut self, conn: ConnId, frame: Frame) {
        if frame.kind == FrameKind::Response
            && frame.status == Err(AisError::TryAgain)
            && self.posting == Some((conn, frame.id))
        {
            // The posted request in hand is held instead (submit_posted).
            self.posting_refused = true;
            self.posting = None;
            return;
        }
        if !self.clients.contains(conn) {
            return; // it left before its answer came
        }
        if frame.body.is_empty() {
            let key = (frame.kind, frame.service, frame.id, frame.status);
            match &self.last_bare_frame {
                Some((k, encoded)) if *k == key => {
                    self.client_out.push_back((conn, encoded.clone()));
                    return;
                }
                _ => {
                    if let Ok(encoded) = frame.encode_parts() {
                        self.last_bare_frame = Some((key, encoded.clone()));
                        self.client_out.push_back((conn, encoded));
                        return;
                    }
                }
            }
        }
        match frame.encode_parts() {
            Ok(b) => self.client_out.push_back((conn, b)),
            Err(e) => {
                self.frame_too_big(conn, e);
                if frame.kind == FrameKind::Response {
                    let err: Status = Err(AisError::TooBig);
                    let f = Frame::response(frame.service, frame.id, err, Bytes::new());
                    if let Ok(b) = f.encode_parts() {
                        self.client_out.push_back((conn, b));
                    }
                }
            }
        }
    }

    /// A callback whose `tail` is written as it is (see
    /// `Ctx::callback_with_tail`), not copied behind `body`.
    fn push_callback_with_tail(
        &mut self,
        conn: ConnId,
        service: ServiceId,
        id: u16,
        body: &[u8],
        tail: Bytes,
    ) {
        if !self.clients.contains(conn) {
            return; // it left before the callback came
        }
        let status = Ok(());
        match proto::encode_frame_with_tail(
            FrameKind::Callback,
            service.code(),
            id,
            status,
            body,
            tail,
        ) {
            Ok(frame) => self.client_out.push_back((conn, frame)),
            Err(e) => self.frame_too_big(conn, e),
        }
    }

    fn frame_too_big(&mut self, conn: ConnId, error: proto::FrameTooBig) {
        self.stats.frames_too_big += 1;
        warn!("IPC: frame for connection {} too big: {error}", conn.0);
    }

    /// A backup file job ended (the daemon's workers ran it).
    pub fn handle_backup_io_done(&mut self, now: Instant, done: services::backup::BackupIoDone) {
        let mut tx = TotemTx {
            totem: &mut self.totem,
            now,
        };
        self.table.handle_backup_io_done(now, &mut tx, done);
        self.process(now);
    }

    /// Re-registers running backup jobs with the master (SIGHUP).
    pub fn backup_reregister(&mut self, now: Instant) {
        let mut tx = TotemTx {
            totem: &mut self.totem,
            now,
        };
        self.table.backup_reregister(now, &mut tx);
        self.process(now);
    }

    /// Whether backup work is in flight here (file jobs, unsent reports).
    pub fn backup_busy(&self) -> bool {
        self.table.backup_busy()
    }

    // ----- outputs -----------------------------------------------------------

    /// The next backup file job for the driver's workers (drain with the
    /// client frames; the driver runs it off the event loop and answers
    /// with [`Node::handle_backup_io_done`]).
    pub fn poll_backup_io(&mut self) -> Option<services::backup::BackupIo> {
        self.table.poll_backup_io()
    }

    /// The next datagram to send (drain first).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.totem.poll_transmit()
    }

    /// The next encoded frame for a client (drain second).
    pub fn poll_client_output(&mut self) -> Option<(ConnId, EncodedFrame)> {
        self.client_out.pop_front()
    }

    /// The next event (drain third).
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop_front()
    }

    /// When [`Node::handle_timeout`] must be called next (arm it last).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.totem.poll_timeout(), self.table.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----- inspection ----------------------------------------------------------

    /// The Totem instance (read only).
    pub fn totem(&self) -> &Totem {
        &self.totem
    }

    /// The service table (read only).
    pub fn services(&self) -> &ServiceTable {
        &self.table
    }

    /// Counters of the node.
    pub fn stats(&self) -> &NodeStats {
        &self.stats
    }

    /// The ring status, as `ais-ring-status` shows it.
    pub fn status(&self) -> proto::status::RingStatus {
        status::ring_status(self)
    }

    /// Replaces the address book (the daemon re-reads its nodelist on
    /// SIGHUP).
    pub fn set_directory(&mut self, directory: BTreeMap<NodeId, NodeInfo>) {
        self.directory = directory;
    }

    /// Sets the driver's own counters (datagrams dropped, clients refused,
    /// ...), listed after the node's in [`Node::status`]. The driver
    /// refreshes them before it passes a status request in.
    pub fn set_driver_counters(&mut self, counters: Vec<(&'static str, u64)>) {
        self.driver_counters = counters;
    }

    pub(crate) fn driver_counters(&self) -> &[(&'static str, u64)] {
        &self.driver_counters
    }

    pub(crate) fn directory(&self) -> &BTreeMap<NodeId, NodeInfo> {
        &self.directory
    }

    pub(crate) fn client_count(&self) -> usize {
        self.clients.len()
    }
}

#[cfg(test)]
mod tests;
