//! The IPC server: the listening socket and its client connections, driven
//! by the executive's single mio loop.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use mio::event::Event;
use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use nix::sys::socket::{getsockopt, send, sockopt::PeerCredentials, MsgFlags};
use proto::{
    AisError, EncodedFrame, Frame, FrameError, FrameKind, HelloReply, HEADER_BYTES, MAX_FRAME_BYTES,
};
use std::os::fd::{AsFd, AsRawFd};
use thiserror::Error;

use super::auth::{AllowList, Creds};
use super::connection::{Connection, Input, QueueLimits};
use super::socket_file::SocketFile;

/// The socket's default permissions: owner and group read/write.
pub const DEFAULT_MODE: u32 = 0o770;
/// Default bound on open client connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default bound on one connection's queued output, in bytes (room for a
/// few maximum frames, and for what one loop turn may deliver to a client
/// that had no CPU meanwhile: a turn reads up to 256 datagrams, and frames
/// are written at its end).
pub const DEFAULT_MAX_QUEUE_BYTES: usize = 8 * 1024 * 1024;
/// Default bound on one connection's queued output, in frames (openais
/// queued 5 000 messages per connection; one turn may deliver 256
/// datagrams of about 20 small messages each, per ring visit of 3 nodes).
pub const DEFAULT_MAX_QUEUE_FRAMES: usize = 65_536;
/// Default bound on frames one connection delivers per round.
pub const DEFAULT_FRAMES_PER_ROUND: usize = 32;
/// How long one lagging client may keep the ring from taking new messages
/// ([`IpcServer::congested`]): a client not scheduled for a while on a busy
/// machine catches up meanwhile; one that does not read is closed after.
pub const CONGESTION_PATIENCE: std::time::Duration = std::time::Duration::from_millis(1000);
/// Connections accepted per round at most.
const ACCEPTS_PER_ROUND: usize = 32;

/// How to set the server up. [`IpcConfig::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct IpcConfig {
    /// The socket's path; its directory is created if missing.
    pub path: PathBuf,
    /// The socket file's permission bits.
    pub mode: u32,
    /// The group to give the socket file, if any (needs the right to).
    pub group: Option<u32>,
    /// Who is admitted besides root and the executive's own user.
    pub allow: AllowList,
    /// Open connections at most; more are refused with
    /// `SA_AIS_ERR_NO_RESOURCES`.
    pub max_connections: usize,
    /// Output queued per connection at most, in bytes (at least
    /// [`MAX_FRAME_BYTES`], so any frame fits an empty queue).
    pub max_queue_bytes: usize,
    /// Output queued per connection at most, in frames.
    pub max_queue_frames: usize,
    /// Frames one connection delivers per round of
    /// [`IpcServer::poll_event`] at most, so one busy client cannot starve
    /// the others or the ring.
    pub frames_per_round: usize,
    /// The first of the mio tokens the server uses: the listener gets
    /// `token_base`, connections `token_base + 1 ..= token_base +
    /// max_connections`.
    pub token_base: usize,
}

impl IpcConfig {
    /// The defaults for a socket at `path`, with tokens from `token_base`.
    pub fn new(path: impl Into<PathBuf>, token_base: usize) -> IpcConfig {
        IpcConfig {
            path: path.into(),
            mode: DEFAULT_MODE,
            group: None,
            allow: AllowList::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            max_queue_frames: DEFAULT_MAX_QUEUE_FRAMES,
            frames_per_round: DEFAULT_FRAMES_PER_ROUND,
            token_base,
        }
    }

    fn validate(&self) -> Result<(), BindError> {
        let invalid = |why| Err(BindError::InvalidConfig(why));
        if self.max_connections == 0 || u32::try_from(self.max_connections).is_err() {
            return invalid("max_connections must be between 1 and 2^32 - 1");
        }
        if self.max_queue_bytes < MAX_FRAME_BYTES {
            return invalid("max_queue_bytes must hold at least one maximum frame");
        }
        if self.max_queue_frames == 0 {
            return invalid("max_queue_frames must be at least 1");
        }
        if self.frames_per_round == 0 {
            return invalid("frames_per_round must be at least 1");
        }
        if self
            .token_base
            .checked_add(self.max_connections)
            .and_then(|last| last.checked_add(1))
            .is_none()
        {
            return invalid("token_base + max_connections overflows");
        }
        if self.mode & !0o7777 != 0 {
            return invalid("mode has bits beyond 0o7777");
        }
        Ok(())
    }
}

/// A client connection's identity. Ids are not reused: a slot freed by a
/// closed connection gets a new generation, so an old id never reaches a
/// newer client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    slot: u32,
    generation: u32,
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn {}.{}", self.slot, self.generation)
    }
}

/// What happened on the IPC socket.
#[derive(Debug)]
pub enum IpcEvent {
    /// A client connected and its credentials are admitted. Exactly one
    /// [`IpcEvent::Closed`] follows, unless the caller closes it with
    /// [`IpcServer::close`].
    Connected {
        /// The new connection.
        conn: ConnId,
        /// Its peer's credentials.
        creds: Creds,
    },
    /// A complete request frame (the first one should be a `Hello`).
    Frame {
        /// The connection it came on.
        conn: ConnId,
        /// The frame; its kind is always [`FrameKind::Request`].
        frame: Frame,
    },
    /// The connection is gone; its id is dead. Queued output was dropped.
    Closed {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
}

/// Why a connection closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed its end (`mid_frame`: inside a frame).
    PeerClosed {
        /// The stream ended inside a frame.
        mid_frame: bool,
    },
    /// The client sent a bad frame header (garbage, or a frame above the
    /// maximum size).
    BadFrame(FrameError),
    /// The client sent a frame that is not a request.
    NotARequest(FrameKind),
    /// Reading or writing the socket failed.
    Io(io::ErrorKind),
    /// [`IpcServer::close_after_flush`] was called and the output is
    /// written.
    Flushed,
}

/// Why [`IpcServer::send`] did not queue a frame. Except for
/// `Disconnected`, nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SendError {
    /// The connection is closed (or the id is stale).
    #[error("no such connection")]
    UnknownConn,
    /// The connection is being closed ([`IpcServer::close_after_flush`]).
    #[error("connection is closing")]
    Closing,
    /// The bytes are not a frame's size (a caller bug).
    #[error("{len} bytes is not a frame size ({HEADER_BYTES}..={MAX_FRAME_BYTES})")]
    BadFrame {
        /// The size given.
        len: usize,
    },
    /// The connection's output queue is full: the client does not read
    /// fast enough. Answer a request with `SA_AIS_ERR_TRY_AGAIN`, or close
    /// a client that does not take its callbacks.
    #[error("output queue full ({queued_bytes} bytes, {queued_frames} frames)")]
    QueueFull {
        /// Bytes queued.
        queued_bytes: usize,
        /// Frames queued.
        queued_frames: usize,
    },
    /// Writing failed: the client is gone. The connection is closed and an
    /// [`IpcEvent::Closed`] is queued.
    #[error("client disconnected ({0:?})")]
    Disconnected(io::ErrorKind),
}

/// Why [`IpcServer::bind`] failed.
#[derive(Debug, Error)]
pub enum BindError {
    /// A configuration value is out of range.
    #[error("invalid IPC configuration: {0}")]
    InvalidConfig(&'static str),
    /// The path is longer than a Unix socket address holds.
    #[error("socket path {0} is longer than 107 bytes")]
    PathTooLong(PathBuf),
    /// Another process listens on the socket (another executive runs).
    #[error("{0} is in use: another aisexec is running")]
    InUse(PathBuf),
    /// The path exists and is not a socket; it is left alone.
    #[error("{0} exists and is not a socket")]
    NotASocket(PathBuf),
    /// A system call failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// The step that failed.
        what: &'static str,
        /// The path it was about.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    conn: Option<Connection>,
}

/// The Unix-socket IPC server.
///
/// It owns the listening socket and every client connection but not the
/// poll loop: the sockets are registered in the caller's mio registry (a
/// clone of it is kept to change interests) under the token range of
/// [`IpcConfig::token_base`].
///
/// # Driving it
/// In every turn of the executive's loop:
/// 1. for each mio event whose token [`IpcServer::owns`], call
///    [`IpcServer::handle_event`] (it writes pending output and notes which
///    sockets are readable; it never yields events itself);
/// 2. call [`IpcServer::poll_event`] until it returns `None`, handling each
///    event (answers go through [`IpcServer::send`]);
/// 3. call [`IpcServer::flush_pending`] once the turn's other inputs are
///    handled too (answers and callbacks are written in batches);
/// 4. if [`IpcServer::has_pending_work`], poll with a zero timeout: some
///    client had more input than one round allows.
///
/// A round (the calls of step 2) accepts at most 32 connections and takes at
/// most [`IpcConfig::frames_per_round`] frames from each connection, so a
/// flooding client cannot stall the loop; its surplus stays in its socket
/// buffer and blocks it.
#[derive(Debug)]
pub struct IpcServer {
    registry: Registry,
    listener: UnixListener,
    socket_file: SocketFile,
    config: IpcConfig,
    euid: u32,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    events: VecDeque<IpcEvent>,
    ready: VecDeque<ConnId>,
    exhausted: Vec<ConnId>,
    /// Connections with frames queued and no write tried yet.
    unflushed: Vec<ConnId>,
    listener_ready: bool,
    round: u64,
    round_accepts: usize,
    refused_at_limit: u64,
    accept_failures: u64,
    /// Tests: credentials to use instead of the peer's, to exercise the
    /// refusal path without a second user.
    #[cfg(test)]
    pub(crate) fake_creds: Option<Creds>,
}

impl IpcServer {
    /// Creates the socket at `config.path` and registers it in `registry`.
    ///
    /// A socket file left there by a dead executive is replaced; a live one
    /// or a file that is not a socket makes the bind fail.
    ///
    /// # Errors
    /// [`BindError`].
    pub fn bind(registry: &Registry, config: IpcConfig) -> Result<IpcServer, BindError> {
        config.validate()?;
        let (listener, socket_file) = SocketFile::bind(&config.path, config.mode, config.group)?;
        let io_error = |what| {
            let path = config.path.clone();
            move |source| BindError::Io { what, path, source }
        };
        listener
            .set_nonblocking(true)
            .map_err(io_error("making the listener non-blocking"))?;
        let mut listener = UnixListener::from_std(listener);
        let registry = registry
            .try_clone()
            .map_err(io_error("cloning the mio registry for"))?;
        registry
            .register(&mut listener, Token(config.token_base), Interest::READABLE)
            .map_err(io_error("registering the listener"))?;
        log::info!(target: "IPC", "listening on {}", config.path.display());
        Ok(IpcServer {
            registry,
            listener,
            socket_file,
            euid: nix::unistd::geteuid().as_raw(),
            config,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            events: VecDeque::new(),
            ready: VecDeque::new(),
            unflushed: Vec::new(),
            exhausted: Vec::new(),
            // Clients may have connected between bind and register.
            listener_ready: true,
            round: 0,
            round_accepts: 0,
            refused_at_limit: 0,
            accept_failures: 0,
            #[cfg(test)]
            fake_creds: None,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        self.socket_file.path()
    }

    /// Whether `token` is one of the server's.
    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.config.token_base
            && token.0 - self.config.token_base <= self.config.max_connections
    }

    /// Open connections.
    pub fn connection_count(&self) -> usize {
        self.live
    }

    /// The peer credentials of `conn`, if it is open.
    pub fn creds(&self, conn: ConnId) -> Option<Creds> {
        self.conn(conn).map(|c| c.creds)
    }

    /// Output queued on `conn`: (bytes, frames), if it is open.
    pub fn queued(&self, conn: ConnId) -> Option<(usize, usize)> {
        self.conn(conn)
            .map(|c| (c.queued_bytes(), c.queued_frames()))
    }

    /// Takes a readiness event for one of the server's tokens (others are
    /// ignored). Writes pending output; notes readable sockets for
    /// [`IpcServer::poll_event`].
    pub fn handle_event(&mut self, event: &Event) {
        let token = event.token();
        if token.0 == self.config.token_base {
            self.listener_ready = true;
            return;
        }
        let Some(id) = self.conn_id_of(token) else {
            return;
        };
        if event.is_writable() || event.is_write_closed() || event.is_error() {
            self.flush(id);
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            if let Some(conn) = self.conn_mut(id) {
                conn.readable = true;
                self.mark_ready(id);
            }
        }
    }

    /// The next event, or `None` once this round's work is done (see the
    /// type's docs). Reads sockets and accepts connections as it goes.
    pub fn poll_event(&mut self) -> Option<IpcEvent> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            if self.listener_ready && self.round_accepts < ACCEPTS_PER_ROUND {
                self.round_accepts += 1;
                if let Some(event) = self.accept_one() {
                    return Some(event);
                }
                continue;
            }
            let Some(id) = self.ready.pop_front() else {
                self.end_round();
                return None;
            };
            if let Some(event) = self.read_one(id) {
                return Some(event);
            }
        }
    }

    /// Whether the server has work left after `poll_event` returned `None`
    /// (input or connections beyond one round's budget): poll again
    /// without blocking.
    pub fn has_pending_work(&self) -> bool {
        !self.events.is_empty()
            || self.listener_ready
            || !self.ready.is_empty()
            || !self.exhausted.is_empty()
    }

    /// Queues `frame` (one encoded frame) for `conn`; it is written with
    /// the connection's next batch (at the latest by
    /// [`IpcServer::flush_pending`]).
    ///
    /// # Errors
    /// [`SendError`]; on `QueueFull` the caller decides (TRY_AGAIN for a
    /// request, close for a client that does not read its callbacks). Only
    /// `Disconnected` changes state: the connection is then closed and an
    /// [`IpcEvent::Closed`] queued.
    pub fn send(&mut self, conn: ConnId, frame: impl Into<EncodedFrame>) -> Result<(), SendError> {
        let frame = frame.into();
        if !(HEADER_BYTES..=MAX_FRAME_BYTES).contains(&frame.len()) {
            return Err(SendError::BadFrame { len: frame.len() });
        }
        let limits = QueueLimits {
            max_bytes: self.config.max_queue_bytes,
            max_frames: self.config.max_queue_frames,
        };
        let registry = &self.registry;
        let Some(c) = slot_conn_mut(&mut self.slots, conn) else {
            return Err(SendError::UnknownConn);
        };
        if c.closing {
            return Err(SendError::Closing);
        }
        let was_unflushed = c.unflushed;
        match c.send(registry, frame, limits) {
            Ok(Ok(())) => {
                if c.unflushed && !was_unflushed {
                    self.unflushed.push(conn);
                }
                Ok(())
            }
            Ok(Err(full)) => Err(SendError::QueueFull {
                queued_bytes: full.queued_bytes,
                queued_frames: full.queued_frames,
            }),
            Err(error) => {
                let kind = error.kind();
                let event = self.drop_conn(conn, CloseReason::Io(kind));
                self.events.extend(event);
                Err(SendError::Disconnected(kind))
            }
        }
    }

    /// Writes what every connection queued since its last write (end of
    /// the event loop's turn). Connections that fail are closed with an
    /// [`IpcEvent::Closed`] queued.
    pub fn flush_pending(&mut self) {
        for id in std::mem::take(&mut self.unflushed) {
            if self.conn(id).is_some_and(|c| c.unflushed) {
                self.flush(id);
            }
        }
    }

    /// Whether some client lags: its output queue is above a quarter of its
    /// byte bound or half its frame bound (the high-water mark), and has
    /// been for less than
    /// [`CONGESTION_PATIENCE`]. The executive then keeps the ring from
    /// taking new messages so the client catches up
    /// (`Node::set_receivers_congested`); a client that lags for longer is
    /// taken for one that does not read, and left to fill its queue and be
    /// closed, so it cannot stop the ring.
    pub fn congested(&mut self, now: std::time::Instant) -> bool {
        let (max_bytes, max_frames) = (self.config.max_queue_bytes, self.config.max_queue_frames);
        let mut congested = false;
        for conn in self.slots.iter_mut().filter_map(|s| s.conn.as_mut()) {
            // A quarter in bytes: what the ring has in flight when it is
            // told to stop (a window of frames up to 64 KiB each, about
            // 3.3 MB at the defaults) and one turn's datagrams still fit
            // below the bound.
            if conn.queued_bytes() > max_bytes / 4 || conn.queued_frames() > max_frames / 2 {
                let since = *conn.lagging_since.get_or_insert(now);
                congested |= now.saturating_duration_since(since) < CONGESTION_PATIENCE;
            } else {
                conn.lagging_since = None;
            }
        }
        congested
    }

    /// Whether frames wait for [`IpcServer::flush_pending`].
    pub fn has_unflushed(&self) -> bool {
        !self.unflushed.is_empty()
    }

    /// Closes `conn` now, dropping its queued output. No
    /// [`IpcEvent::Closed`] follows. Returns whether it was open.
    pub fn close(&mut self, conn: ConnId) -> bool {
        match self.remove(conn) {
            Some(c) => {
                log::debug!(target: "IPC", "{conn} ({}) closed by the executive", c.creds);
                true
            }
            None => false,
        }
    }

    /// Closes `conn` once its queued output is written (for a last error
    /// reply). From now on its input is discarded and `send` refuses; an
    /// [`IpcEvent::Closed`] follows (reason `Flushed`, or why it ended
    /// sooner). Returns whether it was open.
    pub fn close_after_flush(&mut self, conn: ConnId) -> bool {
        let Some(c) = self.conn_mut(conn) else {
            return false;
        };
        c.closing = true;
        if c.queued_frames() == 0 {
            let event = self.drop_conn(conn, CloseReason::Flushed);
            self.events.extend(event);
        }
        true
    }

    fn conn(&self, id: ConnId) -> Option<&Connection> {
        let slot = self.slots.get(id.slot as usize)?;
        (slot.generation == id.generation)
            .then_some(slot.conn.as_ref())
            .flatten()
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Connection> {
        slot_conn_mut(&mut self.slots, id)
    }

    /// The open connection registered under `token`.
    fn conn_id_of(&self, token: Token) -> Option<ConnId> {
        let index = token.0.checked_sub(self.config.token_base + 1)?;
        let slot = self.slots.get(index)?;
        slot.conn.as_ref()?;
        Some(ConnId {
            slot: u32::try_from(index).ok()?,
            generation: slot.generation,
        })
    }

    fn mark_ready(&mut self, id: ConnId) {
        if let Some(conn) = self.conn_mut(id) {
            if !conn.in_ready {
                conn.in_ready = true;
                self.ready.push_back(id);
            }
        }
    }

    fn end_round(&mut self) {
        self.round += 1;
        self.round_accepts = 0;
        let mut exhausted = std::mem::take(&mut self.exhausted);
        exhausted.retain(|&id| self.conn(id).is_some());
        // Still marked in_ready: they move straight back to the ready list.
        self.ready.extend(exhausted);
    }

    /// Writes `id`'s queued output; closes it if that fails or if it was
    /// waiting for its output to drain.
    fn flush(&mut self, id: ConnId) {
        let registry = &self.registry;
        let Some(conn) = slot_conn_mut(&mut self.slots, id) else {
            return;
        };
        let reason = match conn.flush(registry) {
            Err(error) => Some(CloseReason::Io(error.kind())),
            Ok(()) if conn.closing && conn.queued_frames() == 0 => Some(CloseReason::Flushed),
            Ok(()) => None,
        };
        let limits = QueueLimits {
            max_bytes: self.config.max_queue_bytes,
            max_frames: self.config.max_queue_frames,
        };
        if reason.is_none() && conn.read_paused && !above_read_pause(conn, limits) {
            conn.read_paused = false;
            self.mark_ready(id);
        }
        if let Some(reason) = reason {
            let event = self.drop_conn(id, reason);
            self.events.extend(event);
        }
    }

    /// Takes the next input of ready connection `id`.
    fn read_one(&mut self, id: ConnId) -> Option<IpcEvent> {
        let pause = QueueLimits {
            max_bytes: self.config.max_queue_bytes,
            max_frames: self.config.max_queue_frames,
        };
        let round = self.round;
        let per_round = self.config.frames_per_round;
        let registry = &self.registry;
        let conn = slot_conn_mut(&mut self.slots, id)?;
        conn.in_ready = false;
        if conn.closing {
            // Nothing more is read from a connection being closed: its
            // last frames (a refusal, say) are still to be written, and
            // reading its EOF now would drop them unsent.
            return None;
        }
        if conn.round != round {
            conn.round = round;
            conn.round_frames = 0;
        }
        if conn.round_frames >= per_round {
            conn.in_ready = true;
            self.exhausted.push(id);
            return None;
        }
        if above_read_pause(conn, pause) {
            // Back-pressure: a client that does not read its answers and
            // callbacks gets no more requests read until its queue drains
            // (`flush` resumes it). Posted requests, which are never
            // answered TRY_AGAIN, are bounded this way.
            conn.read_paused = true;
            return None;
        }
        let reason = match conn.next_input() {
            Input::Frame(frame) => {
                conn.round_frames += 1;
                conn.in_ready = true;
                self.ready.push_back(id);
                if conn.closing {
                    return None;
                }
                if frame.kind != FrameKind::Request {
                    CloseReason::NotARequest(frame.kind)
                } else {
                    return Some(IpcEvent::Frame { conn: id, frame });
                }
            }
            Input::Idle => return None,
            Input::Eof { mid_frame } => {
                // A client that half-closed may still read: what was
                // queued for it goes out before the close (best effort,
                // without waiting on a full socket).
                if conn.unflushed {
                    let _ = conn.flush(registry);
                }
                CloseReason::PeerClosed { mid_frame }
            }
            Input::Garbage(error) => CloseReason::BadFrame(error),
            Input::Failed(error) => CloseReason::Io(error.kind()),
        };
        self.drop_conn(id, reason)
    }

    /// Accepts one connection: `Some(Connected)` if it is admitted.
    fn accept_one(&mut self) -> Option<IpcEvent> {
        match self.listener.accept() {
            Ok((stream, _)) => {
                if self.accept_failures > 0 {
                    log::info!(target: "IPC",
                        "accepting connections again after {} failures", self.accept_failures);
                    self.accept_failures = 0;
                }
                self.admit(stream)
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                self.listener_ready = false;
                None
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                ) =>
            {
                None
            }
            Err(error) => {
                // Out of file descriptors, most likely. Wait for the next
                // connection attempt rather than spin on this one.
                if self.accept_failures == 0 {
                    log::warn!(target: "IPC", "accept on {} failed: {error}", self.path().display());
                }
                self.accept_failures += 1;
                self.listener_ready = false;
                None
            }
        }
    }

    /// Checks a new connection's credentials and the connection limit.
    fn admit(&mut self, stream: UnixStream) -> Option<IpcEvent> {
        let creds = match getsockopt(&stream, PeerCredentials) {
            Ok(c) => Creds {
                pid: c.pid(),
                uid: c.uid(),
                gid: c.gid(),
            },
            Err(errno) => {
                log::warn!(target: "IPC", "dropping a connection without credentials: {errno}");
                return None;
            }
        };
        #[cfg(test)]
        let creds = self.fake_creds.unwrap_or(creds);
        let allowed = self.config.allow.admit(&creds, self.euid).or_else(|| {
            // Supplementary groups cost a syscall: only when they matter.
            if !self.config.allow.has_groups() {
                return None;
            }
            match super::auth::peer_groups(stream.as_fd()) {
                Ok(groups) => self
                    .config
                    .allow
                    .admit_with_groups(&creds, self.euid, &groups),
                Err(errno) => {
                    log::debug!(target: "IPC", "no supplementary groups of {creds}: {errno}");
                    None
                }
            }
        });
        let Some(allowed_by) = allowed else {
            log::warn!(target: "IPC",
                "refused connection from {creds}: uid {} and gid {} (and its supplementary groups) are not allowed; \
                 see uidgid in the config",
                creds.uid, creds.gid);
            refuse(&stream, AisError::Access);
            return None;
        };
        if self.live >= self.config.max_connections {
            if self.refused_at_limit == 0 {
                log::warn!(target: "IPC",
                    "connection limit ({}) reached: refusing new clients, first {creds}",
                    self.config.max_connections);
            }
            self.refused_at_limit += 1;
            refuse(&stream, AisError::NoResources);
            return None;
        }
        // live < max_connections, so a free slot exists or the table may
        // grow by one; both indices fit a u32 (validated).
        let index = match self.free.pop() {
            Some(index) => index as usize,
            None => {
                self.slots.push(Slot::default());
                self.slots.len() - 1
            }
        };
        let token = Token(self.config.token_base + 1 + index);
        if let Err(error) = proto::size_socket_buffers(stream.as_fd()) {
            // Only throughput depends on it: keep the client.
            log::debug!(target: "IPC", "socket buffers of {creds} left at the default: {error}");
        }
        match Connection::register(&self.registry, stream, token, creds) {
            Ok(conn) => {
                let slot = &mut self.slots[index];
                slot.conn = Some(conn);
                self.live += 1;
                let id = ConnId {
                    slot: index as u32,
                    generation: slot.generation,
                };
                log::debug!(target: "IPC", "{id} from {creds} admitted ({allowed_by:?})");
                self.mark_ready(id);
                Some(IpcEvent::Connected { conn: id, creds })
            }
            Err(error) => {
                log::warn!(target: "IPC", "cannot register a connection from {creds}: {error}");
                self.free.push(index as u32);
                None
            }
        }
    }

    /// Removes `id` and returns its Closed event, logging why.
    fn drop_conn(&mut self, id: ConnId, reason: CloseReason) -> Option<IpcEvent> {
        let conn = self.remove(id)?;
        let creds = conn.creds;
        match &reason {
            CloseReason::PeerClosed { mid_frame: false } | CloseReason::Flushed => {
                log::debug!(target: "IPC", "{id} ({creds}) closed: {reason:?}");
            }
            CloseReason::PeerClosed { mid_frame: true } | CloseReason::Io(_) => {
                log::info!(target: "IPC", "{id} ({creds}) closed: {reason:?}");
            }
            CloseReason::BadFrame(error) => {
                log::warn!(target: "IPC", "{id} ({creds}) dropped: bad frame: {error}");
            }
            CloseReason::NotARequest(kind) => {
                log::warn!(target: "IPC", "{id} ({creds}) dropped: sent a {kind:?} frame");
            }
        }
        Some(IpcEvent::Closed { conn: id, reason })
    }

    /// Takes `id` out of its slot and deregisters it.
    fn remove(&mut self, id: ConnId) -> Option<Connection> {
        let slot = self.slots.get_mut(id.slot as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let mut conn = slot.conn.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.slot);
        self.live -= 1;
        conn.deregister(&self.registry);
        if self.refused_at_limit > 0 {
            log::warn!(target: "IPC",
                "below the connection limit again; {} connections were refused",
                self.refused_at_limit);
            self.refused_at_limit = 0;
        }
        Some(conn)
    }
}

/// Whether `conn`'s output queue is above three quarters of `limits`
/// (between half, the executive's high-water mark for TRY_AGAIN, and
/// this, plain requests are still read and refused).
fn above_read_pause(conn: &Connection, limits: QueueLimits) -> bool {
    conn.queued_bytes() > limits.max_bytes / 4 * 3
        || conn.queued_frames() > limits.max_frames / 4 * 3
}

fn slot_conn_mut(slots: &mut [Slot], id: ConnId) -> Option<&mut Connection> {
    let slot = slots.get_mut(id.slot as usize)?;
    if slot.generation != id.generation {
        return None;
    }
    slot.conn.as_mut()
}

/// Tells a refused client why (best effort: a fresh socket's buffer takes
/// a setup reply) before the stream is dropped.
fn refuse(stream: &UnixStream, error: AisError) {
    let reply = HelloReply::refused(error).encode(0);
    let _ = send(
        stream.as_raw_fd(),
        &reply,
        MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
    );
}
