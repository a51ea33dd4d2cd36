//! The event loop: one thread, one `mio::Poll`, driving the sans-IO
//! [`Node`] with the UDP transport, the IPC server, the node's timer, and
//! signals. Glue only: every protocol decision is the node's.
//!
//! # One turn of the loop
//! 1. `poll` with the earliest deadline as its timeout (the node's timer,
//!    the counter report, the end of a clean leave), zero when a source
//!    has more input than one turn takes;
//! 2. read UDP until the socket is empty (at most
//!    [`DATAGRAMS_PER_TURN`] datagrams or [`DATAGRAM_BYTES_PER_TURN`]
//!    bytes), each datagram an input to the node;
//! 3. handle signals;
//! 4. run a round of the IPC server: connections, frames, closes, each an
//!    input to the node;
//! 5. fire the node's timer if it is due;
//! 6. log the counters that grew, every few seconds;
//! 7. write the client frames queued in this turn, in batches, and tell
//!    the node whether a client lags (the ring then takes no new messages
//!    until it caught up, for at most `ipc::CONGESTION_PATIENCE`).
//!
//! After *every* input to the node the loop drains its outputs in the
//! order `node`'s crate docs prescribe ([`Daemon::drain`]): transmits,
//! client frames, events; the timer is re-armed at the next `poll`.
//!
//! # Clients
//! IPC connections map one to one onto node connections. A client whose
//! output queue is above its high-water mark (half its bound) gets
//! `SA_AIS_ERR_TRY_AGAIN` for new requests, which the node never sees; a
//! client whose queue is full when the node has a frame for it (it does not
//! read its callbacks) is closed as a slow consumer.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use aisexec::config::{self, ClusterConfig};
use aisexec::ipc::{self, IpcEvent, IpcServer, SendError};
use aisexec::ring_crypto::{self, RingSecurity};
use bytes::Bytes;
use mio::{Events, Interest, Poll, Token};
use node::{ConnId, Node, NodeEvent};
use proto::{AisError, Frame};
use services::SyncEvent;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR2};
use signal_hook_mio::v1_0::Signals;
use totem::{ConfigKind, Instant, NodeId, ValidConfig};

use crate::backup_workers::{BackupWorkers, DEFAULT_WORKERS, SIGTERM_BACKUP_GRACE};
use crate::counters::CounterReport;
use crate::logging::Logging;
use crate::notify;
use crate::pause::{Pause, PauseDetector};
use crate::ring_seq::RingSeqFile;
use crate::transport::{Recv, Transport};

/// mio token of the UDP socket.
const UDP: Token = Token(0);
/// mio token of the signal pipe.
const SIGNALS: Token = Token(1);
/// mio token of the backup workers' waker.
const BACKUP: Token = Token(2);
/// First mio token of the IPC server (it uses a range from here).
pub const IPC_TOKEN_BASE: usize = 16;

/// Datagrams read per turn at most, so a flood cannot starve the clients
/// and the timers; the rest is read at the next turn (polled at once).
pub const DATAGRAMS_PER_TURN: usize = 256;

/// Datagram bytes read per turn at most. What a turn reads it may deliver
/// to every client before the end of the turn writes and checks their
/// queues: 256 datagrams of 64 KiB (16 MiB) could overrun an 8 MiB client
/// queue in one turn, before the ring was told to stop taking messages.
pub const DATAGRAM_BYTES_PER_TURN: usize = 1 << 20;

/// mio events taken per `poll`.
const EVENTS_CAPACITY: usize = 256;

/// A pause is reported when the loop was not running for longer than this
/// fraction of the token timeout (numerator, denominator).
const PAUSE_FRACTION: (u32, u32) = (1, 2);

/// The monotonic clock of the daemon: `totem::Instant::ZERO` is the start.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: std::time::Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn start() -> Clock {
        Clock {
            origin: std::time::Instant::now(),
        }
    }

    /// The protocol's time now.
    pub fn now(&self) -> Instant {
        let nanos = self.origin.elapsed().as_nanos();
        Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// What the loop needs that `main` prepared.
#[derive(Debug)]
pub struct Parts {
    /// The clock the node was created with.
    pub clock: Clock,
    /// The node.
    pub node: Node,
    /// The transport, bound, not yet registered.
    pub transport: Transport,
    /// The IPC server, bound and registered in `poll`.
    pub ipc: IpcServer,
    /// The poll instance `ipc` is registered in.
    pub poll: Poll,
    /// The persisted ring seq.
    pub ring_seq: RingSeqFile,
    /// The logging handle (for SIGHUP).
    pub logging: Logging,
    /// The config file (for SIGHUP).
    pub config_path: PathBuf,
    /// The config as loaded at start.
    pub config: ClusterConfig,
    /// The Totem settings the node runs with.
    pub totem: ValidConfig,
    /// This node's id.
    pub node_id: NodeId,
    /// Output queue bounds of the IPC server: (bytes, frames).
    pub ipc_queue_limits: (usize, usize),
}

/// Counters of the daemon's own decisions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DaemonStats {
    /// Requests answered TRY_AGAIN because the client's output queue was
    /// above its high-water mark.
    pub ipc_try_again: u64,
    /// Clients closed because their output queue was full.
    pub ipc_slow_consumers: u64,
    /// Times a lagging client made the ring stop taking new messages.
    pub ipc_congested: u64,
    /// Clients refused because the node's table was full.
    pub ipc_refused: u64,
    /// Clients dropped for a malformed frame or a frame that is not a
    /// request (hostile or broken clients).
    pub ipc_bad_frames: u64,
    /// Pauses of the loop detected.
    pub pauses: u64,
    /// Ring seq writes that failed.
    pub ring_seq_write_errors: u64,
}

/// Why the loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// SIGTERM or SIGINT; the node left the ring.
    Signal(i32),
}

/// The running daemon.
pub struct Daemon {
    clock: Clock,
    node: Node,
    transport: Transport,
    ipc: IpcServer,
    poll: Poll,
    signals: Signals,
    ring_seq: RingSeqFile,
    logging: Logging,
    config_path: PathBuf,
    config: ClusterConfig,
    totem: ValidConfig,
    node_id: NodeId,
    /// IPC connection -> node connection, and back.
    to_node: BTreeMap<ipc::ConnId, ConnId>,
    to_ipc: BTreeMap<ConnId, ipc::ConnId>,
    /// Node connections closed by the daemon, to report to the node once
    /// the current drain is done.
    closed: Vec<ConnId>,
    high_water: (usize, usize),
    pause: PauseDetector,
    report: CounterReport,
    ready: bool,
    udp_pending: bool,
    /// Set on SIGTERM: the time to exit (the node has left), and the
    /// signal.
    leaving: Option<(Instant, i32)>,
    /// The backup worker threads.
    backup: BackupWorkers,
    /// Set on SIGTERM while backup work is in flight: the signal and the
    /// latest time to leave anyway. The node leaves once the current step
    /// is written and reported.
    backup_leave: Option<(Instant, i32)>,
    /// What the node was last told about lagging clients.
    congested: bool,
    stats: DaemonStats,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("node_id", &self.node_id)
            .field("ready", &self.ready)
            .field("leaving", &self.leaving)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Daemon {
    /// Registers the transport and the signals and returns the daemon,
    /// ready to [`Daemon::run`].
    ///
    /// # Errors
    /// Registering a source or installing the signal handlers failed.
    pub fn new(parts: Parts) -> std::io::Result<Daemon> {
        let Parts {
            clock,
            node,
            mut transport,
            ipc,
            poll,
            ring_seq,
            logging,
            config_path,
            config,
            totem,
            node_id,
            ipc_queue_limits,
        } = parts;
        transport.register(poll.registry(), UDP)?;
        let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR2])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let token_ms = totem.get().token_timeout;
        let now = clock.now();
        let backup = BackupWorkers::start(poll.registry(), BACKUP, DEFAULT_WORKERS)?;
        Ok(Daemon {
            clock,
            node,
            transport,
            ipc,
            poll,
            signals,
            ring_seq,
            logging,
            config_path,
            config,
            totem,
            node_id,
            to_node: BTreeMap::new(),
            to_ipc: BTreeMap::new(),
            closed: Vec::new(),
            high_water: (ipc_queue_limits.0 / 2, ipc_queue_limits.1 / 2),
            pause: PauseDetector::new(token_ms * PAUSE_FRACTION.0 / PAUSE_FRACTION.1),
            report: CounterReport::new(now),
            ready: false,
            // Datagrams may have arrived before registration.
            udp_pending: true,
            leaving: None,
            backup,
            backup_leave: None,
            congested: false,
            stats: DaemonStats::default(),
        })
    }

    /// Runs until SIGTERM or SIGINT.
    ///
    /// # Errors
    /// `poll` itself failed (not a signal interruption).
    pub fn run(&mut self) -> std::io::Result<Exit> {
        // Node::new produced its first outputs (a join) already.
        let now = self.clock.now();
        self.drain(now);
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        loop {
            let now = self.clock.now();
            let timeout = self.poll_timeout(now);
            if let Some(p) = self.pause.before_poll(std::time::Instant::now(), timeout) {
                self.on_pause(p);
            }
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if let Some(p) = self.pause.after_poll(std::time::Instant::now()) {
                self.on_pause(p);
            }
            // TEST-ONLY fault hook: a held datagram came due (inert in production).
            self.udp_pending |= self.transport.faults().release_in() == Some(Duration::ZERO);
            if let Some((at, signal)) = self.leaving {
                // The node takes no more input once it left: wait for the
                // deadline (or a second signal) and exit.
                if self.clock.now() >= at {
                    return Ok(Exit::Signal(signal));
                }
                if events.iter().any(|e| e.token() == SIGNALS) {
                    self.handle_signals();
                }
                continue;
            }
            let mut signalled = false;
            for event in events.iter() {
                match event.token() {
                    UDP => self.udp_pending = true,
                    SIGNALS => signalled = true,
                    token if self.ipc.owns(token) => self.ipc.handle_event(event),
                    _ => {}
                }
            }
            if self.udp_pending {
                self.read_udp();
            }
            if signalled {
                self.handle_signals();
            }
            self.run_ipc();
            self.run_backup();
            let now = self.clock.now();
            if self.node.poll_timeout().is_some_and(|t| t <= now) {
                self.node.handle_timeout(now);
                self.drain(now);
            }
            self.report_counters(now);
            // Answers and callbacks of the whole turn, in batches.
            // (A write that failed queued a Closed event: has_pending_work
            // makes the next poll return at once for it.)
            self.ipc.flush_pending();
            let congested = self.ipc.congested(std::time::Instant::now());
            if congested != self.congested {
                self.congested = congested;
                self.node.set_receivers_congested(congested);
                if congested {
                    self.stats.ipc_congested += 1;
                }
            }
        }
    }

    /// The `poll` timeout: until the earliest deadline, zero if input is
    /// left over, never longer than the pause threshold (so a pause is
    /// measured even on an idle node).
    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if let Some((t, _)) = self.leaving {
            return Some(t.saturating_duration_since(now));
        }
        if self.udp_pending || self.ipc.has_pending_work() {
            return Some(Duration::ZERO);
        }
        let mut deadline = self.report.deadline();
        if let Some((t, _)) = self.backup_leave {
            deadline = deadline.min(t);
        }
        if let Some(t) = self.node.poll_timeout() {
            deadline = deadline.min(t);
        }
        let held = self
            .transport
            .faults()
            .release_in()
            .unwrap_or(Duration::MAX);
        Some(
            deadline
                .saturating_duration_since(now)
                .min(self.pause.threshold())
                .min(held),
        )
    }

    fn read_udp(&mut self) {
        // Each datagram's transmits go out as it is read (a token moves on
        // at once); what the batch delivered goes to the services after it
        // (Node::receive_packet).
        let mut bytes = 0;
        let mut received = false;
        for _ in 0..DATAGRAMS_PER_TURN {
            if bytes >= DATAGRAM_BYTES_PER_TURN {
                break;
            }
            match self.transport.recv() {
                Recv::Datagram(datagram) => {
                    bytes += datagram.len();
                    let now = self.clock.now();
                    self.node.receive_packet(now, datagram);
                    while let Some(transmit) = self.node.poll_transmit() {
                        self.transport.send(&transmit);
                    }
                    received = true;
                }
                Recv::Empty => {
                    self.udp_pending = false;
                    break;
                }
                // Counted against the budget: strangers cannot hold the
                // loop here.
                Recv::Skipped => {}
            }
        }
        if received {
            let now = self.clock.now();
            self.node.deliver_received(now);
            self.drain(now);
        }
        // If the budget ran out, more may be waiting: udp_pending is still
        // set, so the next turn polls without blocking.
    }

    /// Backup results to the node; on SIGTERM, the leave once the current
    /// backup step is written and reported (or its grace ran out).
    fn run_backup(&mut self) {
        for done in self.backup.poll_done() {
            let now = self.clock.now();
            self.node.handle_backup_io_done(now, done);
            self.drain(now);
        }
        if let Some((at, signal)) = self.backup_leave {
            let finished = !self.node.backup_busy() && self.backup.idle();
            if finished || self.clock.now() >= at {
                if !finished {
                    log::warn!("backup step not finished in time: leaving anyway");
                }
                self.backup_leave = None;
                self.on_terminate(signal);
            }
        }
    }

    /// One round of the IPC server.
    fn run_ipc(&mut self) {
        while let Some(event) = self.ipc.poll_event() {
            let now = self.clock.now();
            match event {
                IpcEvent::Connected { conn, creds } => {
                    let creds = node::Creds {
                        pid: creds.pid,
                        uid: creds.uid,
                        gid: creds.gid,
                    };
                    match self.node.client_connected(creds) {
                        Some(id) => {
                            self.to_node.insert(conn, id);
                            self.to_ipc.insert(id, conn);
                        }
                        None => {
                            // The node logged it.
                            self.stats.ipc_refused += 1;
                            self.ipc.close(conn);
                        }
                    }
                }
                IpcEvent::Frame { conn, frame } => {
                    let Some(&id) = self.to_node.get(&conn) else {
                        continue;
                    };
                    // A posted request is never refused here: the client
                    // already counted it as sent (node::posted).
                    if frame.id != proto::setup::SETUP_ID
                        && !node::posted::is_posted(&frame)
                        && self.above_high_water(conn)
                    {
                        self.try_again(conn, id, &frame);
                        continue;
                    }
                    if frame.service == proto::ServiceId::Cfg.code() {
                        // A status request reports the daemon's counters too.
                        self.node.set_driver_counters(self.own_counters());
                    }
                    self.node.client_frame(now, id, frame);
                }
                IpcEvent::Closed { conn, reason } => {
                    log::debug!(target: "IPC", "{conn} closed: {reason:?}");
                    if matches!(
                        reason,
                        ipc::CloseReason::BadFrame(_) | ipc::CloseReason::NotARequest(_)
                    ) {
                        self.stats.ipc_bad_frames += 1;
                    }
                    let Some(id) = self.to_node.remove(&conn) else {
                        continue;
                    };
                    self.to_ipc.remove(&id);
                    self.node.client_closed(now, id);
                }
            }
            self.drain(now);
        }
    }

    fn above_high_water(&self, conn: ipc::ConnId) -> bool {
        self.ipc
            .queued(conn)
            .is_some_and(|(bytes, frames)| bytes > self.high_water.0 || frames > self.high_water.1)
    }

    /// Answers a request TRY_AGAIN without the node seeing it.
    fn try_again(&mut self, conn: ipc::ConnId, id: ConnId, frame: &Frame) {
        self.stats.ipc_try_again += 1;
        let answer = Frame::response(
            frame.service,
            frame.id,
            Err(AisError::TryAgain),
            Bytes::new(),
        );
        let Ok(bytes) = answer.encode() else {
            return; // an empty body always encodes
        };
        if let Err(SendError::QueueFull { .. }) = self.ipc.send(conn, bytes) {
            self.close_slow_consumer(conn, id);
            let now = self.clock.now();
            self.drain(now);
        }
    }

    fn close_slow_consumer(&mut self, conn: ipc::ConnId, id: ConnId) {
        self.stats.ipc_slow_consumers += 1;
        let creds = self
            .ipc
            .creds(conn)
            .map_or_else(String::new, |c| format!(" ({c})"));
        log::warn!(
            target: "IPC",
            "closing {conn}{creds}: its output queue is full (it does not read its answers and callbacks)"
        );
        self.ipc.close(conn);
        self.to_node.remove(&conn);
        self.to_ipc.remove(&id);
        self.closed.push(id);
    }

    /// Drains the node's outputs in the documented order; connections the
    /// daemon closed meanwhile are reported to the node afterwards (each an
    /// input, so drained again).
    fn drain(&mut self, now: Instant) {
        loop {
            while let Some(transmit) = self.node.poll_transmit() {
                self.transport.send(&transmit);
            }
            while let Some((id, bytes)) = self.node.poll_client_output() {
                let Some(&conn) = self.to_ipc.get(&id) else {
                    continue; // closed already
                };
                match self.ipc.send(conn, bytes) {
                    Ok(()) | Err(SendError::Closing | SendError::UnknownConn) => {}
                    // The server queued a Closed event for it.
                    Err(SendError::Disconnected(_)) => {}
                    Err(SendError::QueueFull { .. }) => self.close_slow_consumer(conn, id),
                    Err(e @ SendError::BadFrame { .. }) => {
                        log::error!(target: "IPC", "frame for {conn} not sent: {e}");
                    }
                }
            }
            while let Some(io) = self.node.poll_backup_io() {
                self.backup.submit(io);
            }
            while let Some(event) = self.node.poll_event() {
                self.on_node_event(event);
            }
            if self.closed.is_empty() {
                return;
            }
            for id in std::mem::take(&mut self.closed) {
                self.node.client_closed(now, id);
            }
        }
    }

    fn on_node_event(&mut self, event: NodeEvent) {
        match event {
            NodeEvent::ConfigChange(c) => {
                let ids = |v: &[NodeId]| {
                    v.iter()
                        .map(|n| n.get().to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let kind = match c.kind {
                    ConfigKind::Transitional => "transitional",
                    ConfigKind::Regular => "regular",
                };
                log::info!(
                    target: "TOTEM",
                    "{kind} configuration of ring {}/{}: members [{}] left [{}] joined [{}]",
                    c.ring_id.seq,
                    c.ring_id.rep,
                    ids(&c.members),
                    ids(&c.left),
                    ids(&c.joined)
                );
            }
            NodeEvent::RingSeqHigh(seq) => {
                if let Err(e) = self.ring_seq.store(seq) {
                    self.stats.ring_seq_write_errors += 1;
                    log::error!(
                        "cannot persist ring seq {seq} to {}: {e}",
                        self.ring_seq.path().display()
                    );
                }
            }
            NodeEvent::Sync(SyncEvent::Completed(ring)) => {
                log::info!(target: "SYNC", "services synchronized for ring {}/{}", ring.seq, ring.rep);
                if !self.ready {
                    self.ready = true;
                    log::info!(
                        "ready: in ring {}/{}, services synchronized",
                        ring.seq,
                        ring.rep
                    );
                    self.notify("READY=1\nSTATUS=in a ring, services synchronized");
                }
            }
            NodeEvent::Sync(SyncEvent::Started(ring)) => {
                log::debug!(target: "SYNC", "sync started for ring {}/{}", ring.seq, ring.rep);
            }
            NodeEvent::Sync(SyncEvent::Aborted(ring)) => {
                log::info!(target: "SYNC", "sync of ring {}/{} aborted by a newer change", ring.seq, ring.rep);
            }
            NodeEvent::CloseClient(id) => {
                if let Some(&conn) = self.to_ipc.get(&id) {
                    // Closed (Flushed) follows once its frames are written.
                    self.ipc.close_after_flush(conn);
                }
            }
            NodeEvent::Totem(_) => {}
        }
    }

    fn notify(&self, state: &str) {
        if let Err(e) = notify::notify(state) {
            log::warn!("cannot notify systemd ({state}): {e}");
        }
    }

    fn on_pause(&mut self, pause: Pause) {
        self.stats.pauses += 1;
        let threshold = self.pause.threshold().as_millis();
        match pause {
            Pause::NotScheduled(d) => log::warn!(
                "process pause detected: the event loop was not scheduled for {} ms \
                 (threshold {threshold} ms, token timeout {} ms); the ring may see this node as slow",
                d.as_millis(),
                self.totem.get().token_timeout.as_millis()
            ),
            Pause::Busy(d) => log::warn!(
                "event loop busy for {} ms in one turn (threshold {threshold} ms)",
                d.as_millis()
            ),
        }
    }

    // ----- signals -------------------------------------------------------------

    fn handle_signals(&mut self) {
        let pending: Vec<i32> = self.signals.pending().collect();
        for signal in pending {
            match signal {
                SIGTERM | SIGINT => self.on_terminate(signal),
                SIGHUP => self.reload(),
                SIGUSR2 => self.dump(),
                _ => {}
            }
        }
    }

    fn on_terminate(&mut self, signal: i32) {
        let name = if signal == SIGTERM {
            "SIGTERM"
        } else {
            "SIGINT"
        };
        let now = self.clock.now();
        if self.leaving.is_some() {
            log::info!("{name} while leaving: exiting now");
            self.leaving = Some((now, signal));
            return;
        }
        if self.backup_leave.is_none() && (self.node.backup_busy() || !self.backup.idle()) {
            // Finish the current step and report it before leaving (a
            // second signal leaves at once).
            log::info!("{name}: finishing the running backup step first");
            self.backup_leave = Some((now + SIGTERM_BACKUP_GRACE, signal));
            return;
        }
        self.backup_leave = None;
        self.notify("STOPPING=1");
        log::info!("{name}: leaving the ring");
        self.node.leave(now);
        self.drain(now);
        // The leave messages are with the kernel now (sendto on UDP does
        // not wait for the wire); linger one join timeout so they are on
        // it before the socket closes, taking no input, then exit.
        self.leaving = Some((now + self.totem.get().join_timeout, signal));
    }

    /// SIGHUP: re-reads the config file; applies the logging section (and
    /// reopens the log file) and the nodelist, reports what needs a
    /// restart. A config that no longer parses changes nothing.
    fn reload(&mut self) {
        self.notify("RELOADING=1");
        log::info!("SIGHUP: reloading {}", self.config_path.display());
        let (new, warnings) = match config::load(&self.config_path) {
            Ok(loaded) => loaded,
            Err(e) => {
                log::error!(target: "CONFIG", "reload failed, the running configuration stays: {e}");
                self.notify("READY=1");
                return;
            }
        };
        for w in &warnings {
            log::warn!(target: "CONFIG", "{w}");
        }
        // Re-register running backup jobs with the master.
        let now = self.clock.now();
        self.node.backup_reregister(now);
        self.drain(now);
        let mut applied = Vec::new();
        let mut restart = Vec::new();
        // Always re-applied, so SIGHUP after a log rotation reopens the file.
        for e in self.logging.apply(&new.logging) {
            log::warn!("{e}");
        }
        applied.push(if new.logging == self.config.logging {
            "logging (file reopened)".to_owned()
        } else {
            "logging".to_owned()
        });
        match new.node(self.node_id) {
            None => restart.push(format!(
                "node {} is no longer in the nodelist",
                self.node_id
            )),
            Some(me) if new.node_addr(me) != self.transport.local_addr() => restart.push(format!(
                "this node's address ({} now {})",
                self.transport.local_addr(),
                new.node_addr(me)
            )),
            Some(_) => {
                let nodes = node_addrs(&new);
                if &nodes != self.transport.nodes() {
                    applied.push(format!(
                        "nodelist ({})",
                        describe_nodelist_change(self.transport.nodes(), &nodes)
                    ));
                    self.transport.set_nodes(nodes);
                }
                self.node.set_directory(crate::directory(&new));
            }
        }
        match new.totem_config(self.node_id) {
            Err(e) => restart.push(format!("totem settings not valid: {e}")),
            Ok(t) => {
                let mut running = self.totem.get().clone();
                let mut wanted = t.get().clone();
                running.ring_seq_floor = 0;
                wanted.ring_seq_floor = 0;
                if running != wanted {
                    restart.push("totem timeouts and limits".to_owned());
                }
            }
        }
        self.reload_keys(&new, &mut applied, &mut restart);
        if new.system != self.config.system {
            restart.push("system section".to_owned());
        }
        if new.ipc != self.config.ipc {
            restart.push("IPC access (uidgid/aisexec sections)".to_owned());
        }
        self.config = new;
        log::info!(
            target: "CONFIG",
            "reloaded: applied [{}]; needs a restart to change [{}]",
            applied.join(", "),
            restart.join(", ")
        );
        self.notify("READY=1");
    }

    /// SIGHUP, ring security: the key files are re-read (a rekey, see
    /// `aisexec::ring_crypto`); turning secauth on or off or another
    /// cipher or hash needs a restart. A key file that cannot be read
    /// changes nothing.
    fn reload_keys(
        &mut self,
        new: &ClusterConfig,
        applied: &mut Vec<String>,
        restart: &mut Vec<String>,
    ) {
        let wanted = match ring_crypto::ring_security(new) {
            Ok(s) => s,
            Err(e) => {
                restart.push(format!("ring security settings not valid: {e}"));
                return;
            }
        };
        match (wanted, self.transport.crypto_mut()) {
            (RingSecurity::Off, None) => {}
            (RingSecurity::On(settings), Some(crypto))
                if settings.cipher == crypto.settings().cipher
                    && settings.hash == crypto.settings().hash =>
            {
                match crypto.reload(settings) {
                    Ok(changes) => {
                        for change in &changes {
                            log::info!(target: "CRYPTO", "{change}");
                        }
                        if !changes.is_empty() {
                            applied.push(format!("ring keys ({})", crypto.describe()));
                        }
                    }
                    Err(e) => log::error!(
                        target: "CRYPTO",
                        "ring keys not reloaded, the running keys stay: {e}"
                    ),
                }
            }
            (RingSecurity::Off, Some(_)) | (RingSecurity::On(_), None) => {
                restart.push("secauth on/off".to_owned());
            }
            (RingSecurity::On(_), Some(_)) => {
                restart.push("crypto_cipher / crypto_hash".to_owned())
            }
        }
    }

    /// SIGUSR2: the node's state in the log.
    fn dump(&self) {
        let s = self.node.status();
        let members: Vec<String> = s
            .members
            .iter()
            .map(|m| format!("{}@{}", m.id, m.addr))
            .collect();
        log::info!(
            "state: node {} ring {}/{} {} members [{}] synced {} clients {} ready {}",
            s.node_id,
            s.ring_id.seq,
            s.ring_id.rep,
            s.state.name(),
            members.join(" "),
            s.sync_done,
            self.ipc.connection_count(),
            self.ready
        );
        let counters: Vec<String> = s
            .counters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .chain(self.own_counters().iter().map(|(k, v)| format!("{k}={v}")))
            .collect();
        log::info!("counters: {}", counters.join(" "));
    }

    // ----- counters ------------------------------------------------------------

    /// The daemon's and the transport's counters.
    fn own_counters(&self) -> Vec<(&'static str, u64)> {
        let t = self.transport.stats();
        let d = &self.stats;
        let mut counters = vec![
            ("udp_sent", t.datagrams_sent),
            ("udp_received", t.datagrams_received),
            ("udp_dropped_unknown_source", t.dropped_unknown_source),
            ("udp_send_would_block", t.send_would_block),
            ("udp_send_errors", t.send_errors),
            ("udp_send_unknown_node", t.send_unknown_node),
            ("udp_recv_errors", t.recv_errors),
            ("ipc_try_again", d.ipc_try_again),
            ("ipc_slow_consumers", d.ipc_slow_consumers),
            ("ipc_congested", d.ipc_congested),
            ("ipc_refused", d.ipc_refused),
            ("ipc_bad_frames", d.ipc_bad_frames),
            ("pauses", d.pauses),
            ("ring_seq_write_errors", d.ring_seq_write_errors),
        ];
        let c = self
            .transport
            .crypto()
            .map(|c| c.stats().clone())
            .unwrap_or_default();
        counters.extend([
            ("crypto_sealed", c.sealed),
            ("crypto_opened", c.opened),
            ("crypto_opened_other_key", c.opened_other_key),
            ("crypto_auth_failures", c.auth_failures),
            ("crypto_bad_envelope", c.bad_envelope),
            ("crypto_sender_mismatch", c.sender_mismatch),
            ("crypto_rekeys", c.rekeys),
        ]);
        counters
    }

    /// Logs the repeated events of the last interval as one line.
    fn report_counters(&mut self, now: Instant) {
        if now < self.report.deadline() {
            return;
        }
        let t = self.node.totem().stats();
        let s = self.node.services().stats();
        let n = self.node.stats();
        let mut current = vec![
            ("token_retransmits", t.token_retransmits),
            ("mcasts_retransmitted", t.mcasts_retransmitted),
            ("gathers", t.gathers),
            ("dropped_malformed", t.dropped_malformed),
            ("dropped_foreign", t.dropped_foreign),
            ("dropped_duplicate", t.dropped_duplicate),
            ("dropped_frames", t.dropped_frames),
            ("dropped_too_far_ahead", t.dropped_too_far_ahead),
            ("dropped_stale", t.dropped_stale),
            ("refused_during_sync", s.refused_during_sync),
            ("dropped_exec", s.dropped_exec),
            ("clients_refused", n.clients_refused),
            ("clients_violations", n.clients_violations),
            ("frames_too_big", n.frames_too_big),
        ];
        current.extend(self.own_counters().into_iter().filter(|(name, _)| {
            !matches!(
                *name,
                "udp_sent" | "udp_received" | "crypto_sealed" | "crypto_opened"
            )
        }));
        if let Some(line) = self.report.sample(now, &current) {
            log::info!(
                "in the last {} s: {line}",
                crate::counters::REPORT_INTERVAL.as_secs()
            );
        }
    }
}

/// Every node of `config` at its UDP address.
pub fn node_addrs(config: &ClusterConfig) -> BTreeMap<NodeId, SocketAddr> {
    config
        .nodes
        .iter()
        .map(|n| (n.node_id, config.node_addr(n)))
        .collect()
}

fn describe_nodelist_change(
    old: &BTreeMap<NodeId, SocketAddr>,
    new: &BTreeMap<NodeId, SocketAddr>,
) -> String {
    let mut parts = Vec::new();
    for (id, addr) in new {
        match old.get(id) {
            None => parts.push(format!("+{id} {addr}")),
            Some(a) if a != addr => parts.push(format!("{id} {a} -> {addr}")),
            Some(_) => {}
        }
    }
    for (id, addr) in old {
        if !new.contains_key(id) {
            parts.push(format!("-{id} {addr}"));
        }
    }
    parts.join(", ")
}
