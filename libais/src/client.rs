//! A safe, blocking client of the executive's IPC socket.
//!
//! One [`Connection`] talks to one service (one library handle in the C
//! API). It carries both the calls and the callbacks:
//! - [`Connection::request`] writes a Request frame and reads until the
//!   matching Response; Callback frames that arrive meanwhile are kept, in
//!   order, in a bounded local queue;
//! - [`Connection::recv_callback`] takes the next callback, from that queue
//!   or from the socket;
//! - [`Connection::raw_fd`] is the selection object: a file descriptor that
//!   polls readable whenever a callback may be taken, including callbacks
//!   already read into the local queue while a request was waiting (the
//!   socket alone would not show those). It is an epoll descriptor watching
//!   the socket and an eventfd the client raises while its queue is not
//!   empty.
//!
//! # Errors
//! Every failure is an [`AisError`], as the C API will return it:
//! - the daemon is not running (no socket, nobody listening, or its accept
//!   backlog is full): `SA_AIS_ERR_TRY_AGAIN`, as openais's library
//!   returned when `connect()` failed, so SA Forum clients that retry on
//!   TRY_AGAIN wait for a starting daemon. Tools that want to say "not
//!   running" treat TRY_AGAIN from [`Connection::connect`] that way;
//! - the socket file is not accessible to this user, or the daemon refused
//!   our credentials: `SA_AIS_ERR_ACCESS`;
//! - the daemon does not host the service: `SA_AIS_ERR_NOT_SUPPORTED`; it
//!   does not support the version: `SA_AIS_ERR_VERSION`; it has too many
//!   clients: `SA_AIS_ERR_NO_RESOURCES`;
//! - no answer within the timeout (default 5 s): `SA_AIS_ERR_TIMEOUT`. The
//!   connection stays usable: the late response is recognized and dropped
//!   when it comes (the executive answers every request exactly once, in
//!   order);
//! - the connection broke (the daemon exited, sent garbage or a frame out of
//!   protocol): `SA_AIS_ERR_LIBRARY`, and from then on every call returns
//!   `SA_AIS_ERR_LIBRARY`; the handle is to be finalized;
//! - more callbacks arrived during a request than the local queue holds (the
//!   application does not dispatch): that call returns
//!   `SA_AIS_ERR_NO_RESOURCES` and the connection is broken as above, since
//!   a callback would otherwise be lost silently.
//!
//! A `Connection` is not thread-safe by itself (`&mut self` everywhere);
//! the C layer keeps it behind a lock.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};
use proto::{
    encode_frame, encode_frame_parts, AisError, Frame, FrameKind, FrameReader, Hello, HelloReply,
    ServiceId, Status, Version, MAX_BODY_BYTES,
};

/// Where the executive listens unless [`SOCKET_ENV`] says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/ais/aisexec.sock";

/// The environment variable that overrides [`DEFAULT_SOCKET`] (for
/// unprivileged clusters, e.g. `make run`'s per-node run directories).
pub const SOCKET_ENV: &str = "AIS_SOCKET";

/// How long a call waits for the executive by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Callbacks kept locally at most, by default.
pub const DEFAULT_MAX_CALLBACK_FRAMES: usize = 4096;

/// Bytes of callbacks kept locally at most, by default.
pub const DEFAULT_MAX_CALLBACK_BYTES: usize = 16 * 1024 * 1024;

/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Read buffers a connection keeps for reuse once the application has
/// dropped the messages in them (see
/// [`FrameReader::with_recycled_buffers`]): at most this many buffers of
/// four reads (256 KiB), or of one larger message, stay allocated per
/// connection while idle. Four, because a sender that also receives keeps
/// a few buffers pinned by callbacks it has read but not yet dispatched;
/// with two, most buffers were still allocated afresh (issue #7).
const RECYCLED_READ_BUFFERS: usize = 4;

/// Posted requests unanswered at most, by default (see
/// [`Connection::post`]); below the executive's per-connection hold.
///
/// Deep enough that a sender of small messages keeps writing while the
/// executive waits for its turn: with 64, a 64-byte sender filled the
/// window in about 60 us and slept until the executive's next turn, and
/// one sender delivered 300k msgs/s; with 256, 380k (issue #7, measured
/// on a 3-node loopback ring). Deeper bought little more.
pub const DEFAULT_POST_WINDOW: usize = 256;

/// Bytes of posted request frames unanswered at most, for frames of
/// `frame_len` bytes: 64 KiB, or four such frames if that is more, but at
/// most 1 MiB (one request of any size may always be posted when none is
/// unanswered).
///
/// Shallow, because with every node sending, more bytes in flight per
/// client only deepen the queues behind the ring and make receiving
/// clients lag: every node sending 1 KiB messages delivered ~280k msgs/s
/// with 64 KiB in flight per client, ~230k with 256 KiB and ~250k with
/// 1 MiB. Four frames, because one sender of 64 KB messages slowed down
/// with fewer in flight. (Issue #7, 3-node loopback ring.)
pub fn post_window_bytes(frame_len: usize) -> usize {
    frame_len
        .saturating_mul(4)
        .clamp(POST_WINDOW_MIN_BYTES, POST_WINDOW_MAX_BYTES)
}

/// See [`post_window_bytes`].
pub const POST_WINDOW_MIN_BYTES: usize = 64 << 10;

/// See [`post_window_bytes`]; below the executive's per-connection hold
/// with one maximum request on top.
pub const POST_WINDOW_MAX_BYTES: usize = 1 << 20;

/// The socket path: `$AIS_SOCKET` if set and not empty, else
/// [`DEFAULT_SOCKET`].
pub fn socket_path() -> PathBuf {
    socket_path_from(std::env::var_os(SOCKET_ENV))
}

fn socket_path_from(env: Option<OsString>) -> PathBuf {
    match env {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(DEFAULT_SOCKET),
    }
}

/// How a [`Connection`] connects and waits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The executive's socket.
    pub socket: PathBuf,
    /// How long a call (connect, request) waits at most.
    pub timeout: Duration,
    /// Callbacks kept locally at most (read while a request waited, not yet
    /// taken by [`Connection::recv_callback`]).
    pub max_callback_frames: usize,
    /// Bytes of such callbacks at most.
    pub max_callback_bytes: usize,
    /// Posted requests unanswered at most ([`Connection::post`]); 0 makes
    /// every post a plain request that waits for its answer.
    pub post_window: usize,
}

impl Default for ClientConfig {
    /// [`socket_path`], [`DEFAULT_TIMEOUT`] and the default queue bounds.
    fn default() -> ClientConfig {
        ClientConfig::with_socket(socket_path())
    }
}

impl ClientConfig {
    /// The defaults, with the socket at `socket`.
    pub fn with_socket(socket: impl Into<PathBuf>) -> ClientConfig {
        ClientConfig {
            socket: socket.into(),
            timeout: DEFAULT_TIMEOUT,
            max_callback_frames: DEFAULT_MAX_CALLBACK_FRAMES,
            max_callback_bytes: DEFAULT_MAX_CALLBACK_BYTES,
            post_window: DEFAULT_POST_WINDOW,
        }
    }
}

/// The executive's answer to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status the service answered (`Ok(())` is `SA_AIS_OK`).
    pub status: Status,
    /// The response body.
    pub body: Bytes,
}

impl Reply {
    /// The body if the status is OK.
    ///
    /// # Errors
    /// The service's error status.
    pub fn into_result(self) -> Result<Bytes, AisError> {
        self.status.map(|()| self.body)
    }
}

/// How long a read may wait.
#[derive(Clone, Copy, Debug)]
enum Wait {
    /// Not at all.
    Now,
    /// Until this instant, then `SA_AIS_ERR_TIMEOUT`.
    Until(Instant),
    /// As long as it takes.
    Forever,
}

/// The selection object: readable while the socket is, or while callbacks
/// wait in the local queue.
#[derive(Debug)]
struct Selection {
    epoll: Epoll,
    signal: EventFd,
    raised: bool,
}

impl Selection {
    fn new(socket: &UnixStream) -> nix::Result<Selection> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let signal = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
        epoll.add(socket, EpollEvent::new(EpollFlags::EPOLLIN, 0))?;
        epoll.add(&signal, EpollEvent::new(EpollFlags::EPOLLIN, 1))?;
        Ok(Selection {
            epoll,
            signal,
            raised: false,
        })
    }

    /// Makes the eventfd readable exactly while `pending`.
    fn set(&mut self, pending: bool) {
        // An eventfd write of 1 or a read of a raised counter cannot fail
        // (the counter is 0 or 1); if the kernel says otherwise the flag
        // stays as it was and the next call retries.
        if pending && !self.raised {
            self.raised = self.signal.write(1).is_ok();
        } else if !pending && self.raised {
            self.raised = self.signal.read().is_err();
        }
    }
}

/// A connection to one service of the local executive.
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
    selection: Selection,
    service: ServiceId,
    version: Version,
    timeout: Duration,
    reader: FrameReader,
    callbacks: VecDeque<Frame>,
    callback_bytes: usize,
    max_callback_frames: usize,
    max_callback_bytes: usize,
    /// Responses still to come for requests that timed out.
    stale_responses: usize,
    /// Posted requests not answered yet: their frame sizes, oldest first.
    posted: VecDeque<usize>,
    /// The sum of `posted`.
    posted_bytes: usize,
    /// Posted requests unanswered at most.
    post_window: usize,
    /// The first error an answer to a posted request carried, returned by
    /// the next post.
    posted_error: Option<AisError>,
    /// The connection broke; every call fails with `SA_AIS_ERR_LIBRARY`.
    broken: bool,
}

impl Connection {
    /// Connects to `service` at [`socket_path`] and negotiates `version`,
    /// with the default timeout and bounds.
    ///
    /// # Errors
    /// See the module docs: TRY_AGAIN (daemon absent), ACCESS, VERSION,
    /// NOT_SUPPORTED, NO_RESOURCES, TIMEOUT, LIBRARY.
    pub fn connect(service: ServiceId, version: Version) -> Result<Connection, AisError> {
        Connection::connect_with(&ClientConfig::default(), service, version)
    }

    /// As [`Connection::connect`], with `config`.
    ///
    /// # Errors
    /// As [`Connection::connect`]; `SA_AIS_ERR_INVALID_PARAM` if the socket
    /// path is too long for a Unix socket address.
    pub fn connect_with(
        config: &ClientConfig,
        service: ServiceId,
        version: Version,
    ) -> Result<Connection, AisError> {
        let deadline = Deadline::after(config.timeout);
        let stream = connect_socket(&config.socket)?;
        let selection = Selection::new(&stream).map_err(|_| AisError::NoResources)?;
        let mut conn = Connection {
            stream,
            selection,
            service,
            version,
            timeout: config.timeout,
            reader: FrameReader::new().with_recycled_buffers(RECYCLED_READ_BUFFERS),
            callbacks: VecDeque::new(),
            callback_bytes: 0,
            max_callback_frames: config.max_callback_frames,
            max_callback_bytes: config.max_callback_bytes,
            stale_responses: 0,
            posted: VecDeque::new(),
            posted_bytes: 0,
            post_window: config.post_window,
            posted_error: None,
            broken: false,
        };
        let hello = Hello { service, version };
        let sent = conn.write_frame(&hello.encode(), &deadline);
        // A refusing executive answers before it reads our Hello and then
        // closes, so the write may fail although a reply is waiting: read
        // it either way, and report the write's error only without one.
        let reply = match conn.next_frame(Wait::Until(deadline.instant())) {
            Ok(Some(frame)) => HelloReply::decode(&frame).map_err(|_| AisError::Library),
            Ok(None) => Err(AisError::Library),
            Err(error) => Err(sent.err().unwrap_or(error)),
        }?;
        reply.status?;
        conn.usable()?;
        conn.version = reply.version.unwrap_or(version);
        conn.update_selection();
        Ok(conn)
    }

    /// The service this connection talks to.
    pub fn service(&self) -> ServiceId {
        self.service
    }

    /// The version the executive said it speaks.
    pub fn version(&self) -> Version {
        self.version
    }

    /// How long calls wait.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sets how long calls wait.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Whether the connection broke (every call now fails with LIBRARY).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Callbacks read and not yet taken.
    pub fn pending_callbacks(&self) -> usize {
        self.callbacks.len()
    }

    /// The selection object to poll for callbacks (readable when
    /// [`Connection::recv_callback`] may return one, or when the connection
    /// broke). Owned by the connection.
    pub fn raw_fd(&self) -> RawFd {
        self.selection.epoll.0.as_raw_fd()
    }

    /// Sends request `id` with `body` and waits for its response.
    ///
    /// # Errors
    /// `SA_AIS_ERR_TOO_BIG` for a body above the frame maximum;
    /// `SA_AIS_ERR_TRY_AGAIN` if the executive took none of the request in
    /// time (nothing was sent); `SA_AIS_ERR_TIMEOUT` if the response did not
    /// come in time (the request may still take effect);
    /// `SA_AIS_ERR_NO_RESOURCES` if the callback queue overflowed;
    /// `SA_AIS_ERR_LIBRARY` if the connection is broken. A service's own
    /// error is not an `Err`: it is the [`Reply::status`].
    pub fn request(&mut self, id: u16, body: &[u8]) -> Result<Reply, AisError> {
        self.usable()?;
        if body.len() > MAX_BODY_BYTES {
            return Err(AisError::TooBig);
        }
        let frame = encode_frame(FrameKind::Request, self.service.code(), id, Ok(()), body)
            .map_err(|_| AisError::TooBig)?;
        let deadline = Deadline::after(self.timeout);
        // Answers come in order: the posted requests' first.
        let result = match self.settle_posted(&deadline) {
            Ok(()) => self.exchange(&frame, id, &deadline),
            Err(e) => Err(e),
        };
        self.update_selection();
        result
    }

    /// Sends request `id` with `body` as a *posted* request (see
    /// [`proto::frame`]): it does not wait for the answer, so several can
    /// be on their way (pipelined multicasts). The executive holds a posted
    /// request while its service cannot take it rather than refusing it, so
    /// `Ok` means the executive has it and will act on it, as a plain
    /// request's `Ok` answer means that it did.
    ///
    /// At most [`ClientConfig::post_window`] posted requests (and
    /// [`post_window_bytes`]) are unanswered at a time; past that, this
    /// waits (up to the timeout) for the oldest answer. With a window of 0
    /// this is [`Connection::request`] returning only the status.
    ///
    /// # Errors
    /// `SA_AIS_ERR_TOO_BIG` above the frame maximum; `SA_AIS_ERR_TRY_AGAIN`
    /// if the window stayed full, or callbacks that came while it was full
    /// fill half the callback queue (dispatch them), or the executive took
    /// none of the request in time (nothing was sent); an error an answer
    /// to an *earlier* posted request carried (that request took no
    /// effect; this one was not sent); `SA_AIS_ERR_NO_RESOURCES` if the
    /// callback queue overflowed; `SA_AIS_ERR_LIBRARY` if the connection
    /// is broken.
    pub fn post(&mut self, id: u16, body: &[u8]) -> Result<(), AisError> {
        self.post_parts(id, &[body])
    }

    /// As [`Connection::post`], the body being `parts` back to back: each
    /// part is copied once, into the frame.
    ///
    /// # Errors
    /// As [`Connection::post`].
    pub fn post_parts(&mut self, id: u16, parts: &[&[u8]]) -> Result<(), AisError> {
        if self.post_window == 0 {
            return self.request(id, &parts.concat())?.status;
        }
        self.usable()?;
        let posted = Err(AisError::TryAgain);
        let frame = encode_frame_parts(FrameKind::Request, self.service.code(), id, posted, parts)
            .map_err(|_| AisError::TooBig)?;
        let deadline = Deadline::after(self.timeout);
        let result = self.post_frame(&frame, &deadline);
        self.update_selection();
        result
    }

    /// Posted requests not answered yet.
    pub fn posted(&self) -> usize {
        self.posted.len()
    }

    fn post_frame(&mut self, frame: &[u8], deadline: &Deadline) -> Result<(), AisError> {
        loop {
            // File the answers (and callbacks) already here, without
            // waiting, once half the window is out: often enough that the
            // window never runs dry while answers sit unread, rarely
            // enough that a stream of posts is one `send` each rather than
            // a `send` and a `recv` that mostly finds nothing. An error
            // answer is reported by a later post either way.
            if self.window_used(frame.len(), 2) {
                self.file_arrived_below_half()?;
            }
            if let Some(error) = self.posted_error.take() {
                return Err(error);
            }
            if !self.window_used(frame.len(), 1) {
                break;
            }
            // Waiting for answers files the callbacks that come meanwhile;
            // rather than let them overflow the callback queue (which
            // breaks the connection), give the application TRY_AGAIN, so
            // it dispatches them, once they fill half of it.
            if self.callbacks_half_full() {
                return Err(AisError::TryAgain);
            }
            match self.next_frame(Wait::Until(deadline.instant())) {
                Ok(Some(incoming)) => {
                    self.absorb(incoming, None)?;
                }
                Ok(None) => return Err(self.fail(AisError::Library)),
                // Nothing was sent.
                Err(AisError::Timeout) => return Err(AisError::TryAgain),
                Err(error) => return Err(error),
            }
        }
        self.write_frame(frame, deadline)?;
        self.posted.push_back(frame.len());
        self.posted_bytes += frame.len();
        Ok(())
    }

    /// Files the answers and callbacks already here, without waiting,
    /// until none is left or the callbacks fill half their queue (the rest
    /// stays unread, so the queue never overflows on the way).
    fn file_arrived_below_half(&mut self) -> Result<(), AisError> {
        while !self.callbacks_half_full() {
            let Some(incoming) = self.next_frame(Wait::Now)? else {
                break;
            };
            self.absorb(incoming, None)?;
        }
        Ok(())
    }

    /// Whether the callbacks filed and not yet taken fill half their
    /// queue (by count or by bytes).
    fn callbacks_half_full(&self) -> bool {
        self.callbacks.len().saturating_mul(2) >= self.max_callback_frames
            || self.callback_bytes.saturating_mul(2) >= self.max_callback_bytes
    }

    /// Whether the posted requests fill `1 / part` of the window by count,
    /// or, with one more of `frame_len` bytes, overrun that share of it in
    /// bytes (`part` 1: the window is full; one request of any size may
    /// always be posted when none is unanswered).
    fn window_used(&self, frame_len: usize, part: usize) -> bool {
        self.posted.len().saturating_mul(part) >= self.post_window
            || (!self.posted.is_empty()
                && self
                    .posted_bytes
                    .saturating_add(frame_len)
                    .saturating_mul(part)
                    > post_window_bytes(frame_len))
    }

    /// Waits until every posted request is answered (before a plain
    /// request, whose answer comes after theirs).
    fn settle_posted(&mut self, deadline: &Deadline) -> Result<(), AisError> {
        while !self.posted.is_empty() {
            match self.next_frame(Wait::Until(deadline.instant()))? {
                Some(incoming) => {
                    self.absorb(incoming, None)?;
                }
                None => return Err(self.fail(AisError::Library)),
            }
        }
        Ok(())
    }

    /// Takes the next callback: from the local queue, else from the socket.
    /// With `blocking`, waits as long as it takes; without, returns
    /// `Ok(None)` if none is there now.
    ///
    /// # Errors
    /// `SA_AIS_ERR_LIBRARY` if the connection is (or gets) broken; queued
    /// callbacks are still returned first.
    pub fn recv_callback(&mut self, blocking: bool) -> Result<Option<Frame>, AisError> {
        let wait = if blocking { Wait::Forever } else { Wait::Now };
        self.recv_callback_wait(wait)
    }

    /// As [`Connection::recv_callback`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Connection::recv_callback`]; `SA_AIS_ERR_TIMEOUT` if nothing
    /// came in time.
    pub fn recv_callback_timeout(&mut self, timeout: Duration) -> Result<Option<Frame>, AisError> {
        self.recv_callback_wait(Wait::Until(Instant::now() + timeout))
    }

    fn recv_callback_wait(&mut self, wait: Wait) -> Result<Option<Frame>, AisError> {
        let result = self.take_callback(wait);
        self.update_selection();
        result
    }

    fn take_callback(&mut self, wait: Wait) -> Result<Option<Frame>, AisError> {
        loop {
            if let Some(frame) = self.pop_callback() {
                return Ok(Some(frame));
            }
            self.usable()?;
            match self.next_frame(wait)? {
                Some(frame) => {
                    // Nothing is awaited: only callbacks and stale responses
                    // are in protocol here.
                    self.absorb(frame, None)?;
                }
                None => return Ok(None),
            }
        }
    }

    /// Writes a request and reads until its response.
    fn exchange(&mut self, frame: &[u8], id: u16, deadline: &Deadline) -> Result<Reply, AisError> {
        self.write_frame(frame, deadline)?;
        loop {
            let frame = match self.next_frame(Wait::Until(deadline.instant())) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Err(self.fail(AisError::Library)),
                Err(AisError::Timeout) => {
                    // The executive still owes this response: drop it when
                    // it comes.
                    self.stale_responses += 1;
                    return Err(AisError::Timeout);
                }
                Err(error) => return Err(error),
            };
            if let Some(reply) = self.absorb(frame, Some(id))? {
                return Ok(reply);
            }
        }
    }

    /// Files a frame read from the socket: a callback is queued, a stale
    /// response dropped, the awaited response returned; anything else
    /// breaks the connection.
    fn absorb(&mut self, frame: Frame, awaiting: Option<u16>) -> Result<Option<Reply>, AisError> {
        match frame.kind {
            FrameKind::Callback => {
                if self.callbacks.len() >= self.max_callback_frames
                    || self.callback_bytes.saturating_add(frame.body.len())
                        > self.max_callback_bytes
                {
                    return Err(self.fail(AisError::NoResources));
                }
                self.callback_bytes += frame.body.len();
                self.callbacks.push_back(frame);
                Ok(None)
            }
            FrameKind::Response if self.stale_responses > 0 => {
                self.stale_responses -= 1;
                Ok(None)
            }
            FrameKind::Response
                if !self.posted.is_empty() && frame.service == self.service.code() =>
            {
                if let Some(bytes) = self.posted.pop_front() {
                    self.posted_bytes -= bytes;
                }
                if let Err(error) = frame.status {
                    self.posted_error.get_or_insert(error);
                }
                Ok(None)
            }
            FrameKind::Response
                if awaiting == Some(frame.id) && frame.service == self.service.code() =>
            {
                Ok(Some(Reply {
                    status: frame.status,
                    body: frame.body,
                }))
            }
            FrameKind::Response | FrameKind::Request => Err(self.fail(AisError::Library)),
        }
    }

    fn pop_callback(&mut self) -> Option<Frame> {
        let frame = self.callbacks.pop_front()?;
        self.callback_bytes -= frame.body.len();
        Some(frame)
    }

    /// The next frame from the socket, waiting as `wait` allows
    /// (`Ok(None)` only with [`Wait::Now`]).
    fn next_frame(&mut self, wait: Wait) -> Result<Option<Frame>, AisError> {
        loop {
            match self.reader.next_frame() {
                Ok(Some(frame)) => return Ok(Some(frame)),
                Ok(None) => {}
                Err(_) => return Err(self.fail(AisError::Library)),
            }
            // Straight into the frame buffer: a delivered message is handed
            // to the application as a slice of what the kernel wrote.
            match self.reader.recv_from(self.stream.as_fd(), READ_CHUNK_BYTES) {
                Ok(0) => return Err(self.fail(AisError::Library)),
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => match wait {
                    Wait::Now => return Ok(None),
                    Wait::Until(deadline) => {
                        if !self.wait_for(PollFlags::POLLIN, Some(deadline))? {
                            return Err(AisError::Timeout);
                        }
                    }
                    Wait::Forever => {
                        self.wait_for(PollFlags::POLLIN, None)?;
                    }
                },
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(self.fail(AisError::Library)),
            }
        }
    }

    /// Writes a whole frame by `deadline`, filing what arrives meanwhile.
    fn write_frame(&mut self, frame: &[u8], deadline: &Deadline) -> Result<(), AisError> {
        let mut sent = 0;
        while sent < frame.len() {
            // MSG_NOSIGNAL: a vanished executive is EPIPE, not a SIGPIPE
            // that kills the application.
            match socket::send(
                self.stream.as_raw_fd(),
                &frame[sent..],
                MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(n) => sent += n,
                Err(Errno::EAGAIN) => {
                    // The executive may be waiting for us to read before it
                    // reads more: take what it sends meanwhile, but only
                    // while the callback queue is under half full, so that
                    // it never overflows here (that would break the
                    // connection). Past that the application must dispatch
                    // first: with nothing of the frame sent, TRY_AGAIN;
                    // with part of it sent, wait for the executive to read
                    // the rest, which it does while its own queue for us
                    // is below three quarters of its bound. Frames already
                    // read ahead are filed first: polling cannot see them.
                    self.file_arrived_below_half()?;
                    let reading = !self.callbacks_half_full();
                    if !reading && sent == 0 {
                        return Err(AisError::TryAgain);
                    }
                    let flags = if reading {
                        PollFlags::POLLOUT | PollFlags::POLLIN
                    } else {
                        PollFlags::POLLOUT
                    };
                    if !self.wait_for(flags, Some(deadline.instant()))? {
                        return Err(if sent == 0 {
                            // Nothing went out: the call had no effect.
                            AisError::TryAgain
                        } else {
                            // Half a frame is on the stream: framing is lost.
                            self.fail(AisError::Timeout)
                        });
                    }
                }
                Err(Errno::EINTR) => {}
                Err(_) => return Err(self.fail(AisError::Library)),
            }
        }
        Ok(())
    }

    /// Polls the socket for `flags` until `deadline` (`None`: forever).
    /// `Ok(false)` if the deadline passed.
    fn wait_for(&mut self, flags: PollFlags, deadline: Option<Instant>) -> Result<bool, AisError> {
        loop {
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    // Round up so a wait never ends just before the deadline.
                    let millis = left.as_micros().div_ceil(1000);
                    PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = [PollFd::new(self.stream.as_fd(), flags)];
            match poll(&mut fds, timeout) {
                Ok(0) => {}
                Ok(_) => return Ok(true),
                Err(Errno::EINTR) => {}
                Err(_) => return Err(self.fail(AisError::Library)),
            }
        }
    }

    fn usable(&self) -> Result<(), AisError> {
        if self.broken {
            Err(AisError::Library)
        } else {
            Ok(())
        }
    }

    /// Marks the connection broken; returns `error` for the failing call.
    fn fail(&mut self, error: AisError) -> AisError {
        self.broken = true;
        error
    }

    /// Raises the selection eventfd while a callback is ready in memory or
    /// the connection is broken (so a dispatcher wakes up and sees it).
    fn update_selection(&mut self) {
        let pending = !self.callbacks.is_empty() || self.reader.is_frame_ready() || self.broken;
        self.selection.set(pending);
    }
}

impl Drop for Connection {
    /// Waits (up to the timeout) until the executive answered every posted
    /// request, so none is dropped with the connection while it holds it.
    fn drop(&mut self) {
        if !self.broken && !self.posted.is_empty() {
            let _ = self.settle_posted(&Deadline::after(self.timeout));
        }
    }
}

impl AsFd for Connection {
    /// The selection object (see [`Connection::raw_fd`]).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.selection.epoll.0.as_fd()
    }
}

impl AsRawFd for Connection {
    fn as_raw_fd(&self) -> RawFd {
        self.raw_fd()
    }
}

/// Connects a non-blocking Unix stream socket to `path`.
/// A call's deadline, `timeout` from the first time the call has to wait.
/// The clock is read only then: most posts never wait, and a clock read
/// per message showed in the sending client's profile.
struct Deadline {
    timeout: Duration,
    at: std::cell::Cell<Option<Instant>>,
}

impl Deadline {
    fn after(timeout: Duration) -> Deadline {
        Deadline {
            timeout,
            at: std::cell::Cell::new(None),
        }
    }

    fn instant(&self) -> Instant {
        if let Some(at) = self.at.get() {
            return at;
        }
        let at = Instant::now() + self.timeout;
        self.at.set(Some(at));
        at
    }
}

fn connect_socket(path: &Path) -> Result<UnixStream, AisError> {
    let addr = UnixAddr::new(path).map_err(|_| AisError::InvalidParam)?;
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|_| AisError::NoResources)?;
    loop {
        match socket::connect(fd.as_raw_fd(), &addr) {
            Ok(()) => {
                // Only throughput depends on the size: a refusal is no error.
                let _ = proto::size_socket_buffers(fd.as_fd());
                return Ok(UnixStream::from(fd));
            }
            Err(Errno::EINTR) => {}
            // No socket file, nobody listening, or the backlog is full: the
            // executive is not (yet, or not now) there.
            Err(Errno::ENOENT | Errno::ECONNREFUSED | Errno::EAGAIN | Errno::ENOTDIR) => {
                return Err(AisError::TryAgain)
            }
            Err(Errno::EACCES | Errno::EPERM) => return Err(AisError::Access),
            Err(_) => return Err(AisError::Library),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::setup::SETUP_ID;
    use proto::status::{RingState, RingStatus, RING_STATUS};
    use std::io::{Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream as StdStream};
    use std::thread;

    const CFG: ServiceId = ServiceId::Cfg;

    /// A scripted executive: a listener in a temporary directory.
    struct Daemon {
        dir: tempfile::TempDir,
        listener: Option<UnixListener>,
    }

    impl Daemon {
        fn new() -> Daemon {
            let dir = tempfile::tempdir().unwrap();
            let listener = UnixListener::bind(dir.path().join("ais.sock")).unwrap();
            Daemon {
                dir,
                listener: Some(listener),
            }
        }

        fn config(&self) -> ClientConfig {
            let mut config = ClientConfig::with_socket(self.dir.path().join("ais.sock"));
            config.timeout = Duration::from_secs(5);
            config
        }

        /// Runs `script` on the next accepted connection, in a thread.
        fn serve(
            &mut self,
            script: impl FnOnce(&mut Peer) + Send + 'static,
        ) -> thread::JoinHandle<()> {
            let listener = self.listener.take().unwrap();
            thread::spawn(move || {
                let (stream, _) = listener.accept().unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                script(&mut Peer {
                    stream,
                    reader: FrameReader::new(),
                });
            })
        }

        /// Serves a connection that accepts its Hello, then runs `script`.
        fn serve_accepted(
            &mut self,
            script: impl FnOnce(&mut Peer) + Send + 'static,
        ) -> thread::JoinHandle<()> {
            self.serve(move |peer| {
                let hello = Hello::decode(&peer.read()).unwrap();
                peer.write(&HelloReply::accepted(hello.version).encode(hello.service.code()));
                script(peer);
            })
        }
    }

    /// The executive's end of one connection.
    struct Peer {
        stream: StdStream,
        reader: FrameReader,
    }

    impl Peer {
        fn read(&mut self) -> Frame {
            let mut buf = [0u8; 4096];
            loop {
                if let Some(frame) = self.reader.next_frame().unwrap() {
                    return frame;
                }
                let n = self.stream.read(&mut buf).unwrap();
                assert!(n > 0, "client closed");
                self.reader.feed(&buf[..n]);
            }
        }

        fn write(&mut self, bytes: &[u8]) {
            self.stream.write_all(bytes).unwrap();
        }

        fn respond(&mut self, id: u16, status: Status, body: &[u8]) {
            self.write(&encode_frame(FrameKind::Response, CFG.code(), id, status, body).unwrap());
        }

        fn callback(&mut self, id: u16, body: &[u8]) {
            self.write(&encode_frame(FrameKind::Callback, CFG.code(), id, Ok(()), body).unwrap());
        }

        /// Waits until the client closes.
        fn wait_close(&mut self) {
            let mut buf = [0u8; 64];
            while matches!(self.stream.read(&mut buf), Ok(n) if n > 0) {}
        }
    }

    /// The ids of the next `n` callbacks, waiting for each.
    fn callback_ids(c: &mut Connection, n: usize) -> Vec<u16> {
        (0..n)
            .map(|_| c.recv_callback(true).unwrap().unwrap().id)
            .collect()
    }

    fn selectable(conn: &Connection) -> bool {
        let mut fds = [PollFd::new(conn.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::ZERO).unwrap() == 1
    }

    /// A frame cut by a full socket while callbacks flood in: the client
    /// files callbacks only up to half its queue while it waits to write
    /// the rest, and the write completes once the executive reads; the
    /// callbacks left unread come with the next dispatch.
    #[test]
    fn callbacks_during_a_cut_write_do_not_overflow_the_queue() {
        use nix::sys::socket::{setsockopt, sockopt};
        const CALLBACKS: u16 = 20;
        let mut d = Daemon::new();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let server = d.serve_accepted(move |peer| {
            for i in 0..CALLBACKS {
                peer.callback(100 + i, b"delivered");
            }
            // Read nothing until the client is stuck inside its write.
            go_rx.recv().unwrap();
            let f = peer.read();
            assert_eq!((f.id, f.body.len()), (1, 64 << 10));
            peer.respond(1, Ok(()), b"");
            peer.wait_close();
        });
        let mut config = d.config();
        config.max_callback_frames = 8;
        let mut c = Connection::connect_with(&config, CFG, Version::B_01_01).unwrap();
        // A small send buffer, so that the 64 KiB post is cut.
        setsockopt(&c.stream, sockopt::SndBuf, &4096).unwrap();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            go_tx.send(()).unwrap();
        });
        c.post(1, &vec![1u8; 64 << 10]).unwrap();
        assert!(!c.is_broken());
        assert_eq!(
            callback_ids(&mut c, usize::from(CALLBACKS)),
            (100..100 + CALLBACKS).collect::<Vec<u16>>()
        );
        drop(c);
        server.join().unwrap();
    }

    /// A socket already full when a post begins, with callbacks waiting:
    /// the client files them up to half its queue, then, nothing of the
    /// frame sent, answers TRY_AGAIN rather than wait with the application
    /// undispatched; the connection stays usable and nothing is lost.
    #[test]
    fn a_full_socket_with_callbacks_piling_up_is_try_again_with_nothing_sent() {
        let mut d = Daemon::new();
        let (sent_tx, sent_rx) = std::sync::mpsc::channel::<()>();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<usize>();
        let server = d.serve_accepted(move |peer| {
            for i in 0..6 {
                peer.callback(100 + i, b"delivered");
            }
            sent_tx.send(()).unwrap();
            // Read nothing until the client has filled its socket.
            let fillers = go_rx.recv().unwrap();
            for _ in 0..fillers {
                assert_eq!(peer.read().id, 50);
            }
            let f = peer.read();
            assert_eq!((f.id, &f.body[..]), (2, &b"b"[..]));
            peer.respond(2, Ok(()), b"");
            peer.wait_close();
        });
        let mut config = d.config();
        config.max_callback_frames = 8;
        let mut c = Connection::connect_with(&config, CFG, Version::B_01_01).unwrap();
        sent_rx.recv().unwrap();
        // Fill the socket with whole small frames (each one `send` is all
        // or nothing) until the kernel takes no more.
        let filler = encode_frame(FrameKind::Request, CFG.code(), 50, Ok(()), b"x").unwrap();
        let mut fillers = 0;
        loop {
            match socket::send(c.stream.as_raw_fd(), &filler, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => {
                    assert_eq!(n, filler.len());
                    fillers += 1;
                }
                Err(Errno::EAGAIN) => break,
                Err(e) => panic!("filling the socket: {e}"),
            }
        }
        // A waiting client would get through once the executive reads,
        // a second from now; this one must not wait for that.
        let go = go_tx.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_secs(1));
            let _ = go.send(fillers);
        });
        assert_eq!(c.post(2, b"b"), Err(AisError::TryAgain));
        assert!(!c.is_broken());
        assert_eq!(c.pending_callbacks(), 4, "filed up to half the queue");
        assert_eq!(callback_ids(&mut c, 6), (100..106).collect::<Vec<u16>>());
        c.post(2, b"b").unwrap();
        drop(c);
        server.join().unwrap();
    }

    #[test]
    fn a_connection_asks_for_large_socket_buffers() {
        use nix::sys::socket::{getsockopt, sockopt};
        let mut d = Daemon::new();
        let server = d.serve_accepted(|peer| peer.wait_close());
        let c = Connection::connect_with(&d.config(), CFG, Version::B_01_01).unwrap();
        let (plain, _peer) = StdStream::pair().unwrap();
        // The kernel caps the request at net.core.[rw]mem_max and doubles
        // it, so it ends above a fresh socket's size on any system.
        for (name, mine, default) in [
            (
                "send",
                getsockopt(&c.stream, sockopt::SndBuf),
                getsockopt(&plain, sockopt::SndBuf),
            ),
            (
                "receive",
                getsockopt(&c.stream, sockopt::RcvBuf),
                getsockopt(&plain, sockopt::RcvBuf),
            ),
        ] {
            let (mine, default) = (mine.unwrap(), default.unwrap());
            assert!(mine > default, "{name} buffer {mine} against {default}");
        }
        drop(c);
        server.join().unwrap();
    }

    #[test]
    fn a_full_window_with_callbacks_piling_up_is_try_again_not_a_broken_connection() {
        let mut d = Daemon::new();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let server = d.serve_accepted(move |peer| {
            let f = peer.read();
            assert_eq!((f.id, f.status), (1, Err(AisError::TryAgain)));
            // The executive holds post 1 unanswered while deliveries come:
            // more than the client's whole callback queue.
            for i in 0..10 {
                peer.callback(100 + i, b"delivered");
            }
            // Once the client has dispatched them, 1 is answered and 2
            // comes through the window.
            go_rx.recv().unwrap();
            peer.respond(1, Ok(()), b"");
            let f = peer.read();
            assert_eq!(f.id, 2);
            peer.respond(2, Ok(()), b"");
            peer.wait_close();
        });
        let mut config = d.config();
        config.post_window = 1;
        config.max_callback_frames = 8;
        let mut c = Connection::connect_with(&config, CFG, Version::B_01_01).unwrap();
        c.post(1, b"a").unwrap();
        // The window is full; the callbacks that come while post 2 waits
        // reach half the queue: TRY_AGAIN, nothing sent, nothing lost.
        assert_eq!(c.post(2, b"b"), Err(AisError::TryAgain));
        assert_eq!(callback_ids(&mut c, 10), (100..110).collect::<Vec<u16>>());
        go_tx.send(()).unwrap();
        c.post(2, b"b").unwrap();
        drop(c);
        server.join().unwrap();
    }

    #[test]
    fn posted_requests_pipeline_within_the_window_and_report_errors_later() {
        let mut d = Daemon::new();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let server = d.serve_accepted(move |peer| {
            // Two posts arrive before any answer: the client did not wait.
            for id in [1, 2] {
                let f = peer.read();
                assert_eq!((f.id, f.status), (id, Err(AisError::TryAgain)));
            }
            go_rx.recv().unwrap();
            // The third waited for room in the window (2): answer the
            // first two (the second with an error) and a callback.
            // One write, so the client reads all three at once.
            let error = Err(AisError::NoResources);
            let burst = [
                encode_frame(FrameKind::Response, CFG.code(), 1, Ok(()), b"").unwrap(),
                encode_frame(FrameKind::Callback, CFG.code(), 7, Ok(()), b"cb").unwrap(),
                encode_frame(FrameKind::Response, CFG.code(), 2, error, b"").unwrap(),
            ]
            .concat();
            peer.write(&burst);
            let f = peer.read();
            assert_eq!(f.id, 3);
            peer.respond(3, Ok(()), b"");
            // A plain request after posts: its answer follows theirs.
            let f = peer.read();
            assert_eq!((f.id, f.status), (10, Ok(())));
            peer.respond(10, Ok(()), b"plain");
            peer.wait_close();
        });
        let mut config = d.config();
        config.post_window = 2;
        let mut c = Connection::connect_with(&config, CFG, Version::B_01_01).unwrap();
        c.post(1, b"a").unwrap();
        c.post(2, b"b").unwrap();
        assert_eq!(c.posted(), 2);
        go_tx.send(()).unwrap();
        // Waits for room; the error of request 2 is this call's result and
        // nothing is sent.
        assert_eq!(c.post(3, b"c"), Err(AisError::NoResources));
        assert_eq!(c.posted(), 0);
        c.post(3, b"c").unwrap();
        let reply = c.request(10, b"").unwrap();
        assert_eq!(&reply.body[..], b"plain");
        assert_eq!(c.posted(), 0);
        assert_eq!(c.recv_callback(false).unwrap().unwrap().id, 7);
        drop(c);
        server.join().unwrap();
    }

    #[test]
    fn socket_path_comes_from_the_environment() {
        assert_eq!(socket_path_from(None), PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(
            socket_path_from(Some("".into())),
            PathBuf::from(DEFAULT_SOCKET)
        );
        assert_eq!(
            socket_path_from(Some("/tmp/n1/ais.sock".into())),
            PathBuf::from("/tmp/n1/ais.sock")
        );
    }

    #[test]
    fn absent_daemon_is_try_again() {
        let dir = tempfile::tempdir().unwrap();
        let missing = ClientConfig::with_socket(dir.path().join("none.sock"));
        assert_eq!(
            Connection::connect_with(&missing, CFG, Version::B_01_01).unwrap_err(),
            AisError::TryAgain
        );
        // A stale socket file nobody listens on.
        let stale = dir.path().join("stale.sock");
        drop(UnixListener::bind(&stale).unwrap());
        assert_eq!(
            Connection::connect_with(&ClientConfig::with_socket(&stale), CFG, Version::B_01_01)
                .unwrap_err(),
            AisError::TryAgain
        );
        let long = ClientConfig::with_socket(dir.path().join("x".repeat(200)));
        assert_eq!(
            Connection::connect_with(&long, CFG, Version::B_01_01).unwrap_err(),
            AisError::InvalidParam
        );
    }

    #[test]
    fn hello_is_sent_and_the_version_agreed() {
        let mut daemon = Daemon::new();
        let server = daemon.serve(|peer| {
            let frame = peer.read();
            assert_eq!((frame.kind, frame.id), (FrameKind::Request, SETUP_ID));
            let hello = Hello::decode(&frame).unwrap();
            assert_eq!(hello.service, CFG);
            assert_eq!(hello.version, Version::new(b'B', 1, 0));
            peer.write(&HelloReply::accepted(Version::B_01_01).encode(CFG.code()));
            peer.wait_close();
        });
        let conn =
            Connection::connect_with(&daemon.config(), CFG, Version::new(b'B', 1, 0)).unwrap();
        assert_eq!(conn.service(), CFG);
        assert_eq!(conn.version(), Version::B_01_01);
        assert!(!selectable(&conn));
        drop(conn);
        server.join().unwrap();
    }

    #[test]
    fn refusals_are_reported_as_the_executive_said() {
        for error in [
            AisError::Version,
            AisError::NotSupported,
            AisError::NoResources,
        ] {
            let mut daemon = Daemon::new();
            let server = daemon.serve(move |peer| {
                let hello = Hello::decode(&peer.read()).unwrap();
                let reply = if error == AisError::Version {
                    HelloReply::version_mismatch(Version::new(b'B', 2, 0))
                } else {
                    HelloReply::refused(error)
                };
                peer.write(&reply.encode(hello.service.code()));
            });
            let result = Connection::connect_with(&daemon.config(), CFG, Version::B_01_01);
            assert_eq!(result.unwrap_err(), error);
            server.join().unwrap();
        }
    }

    #[test]
    fn access_refusal_before_the_hello_is_read() {
        let mut daemon = Daemon::new();
        // As the IPC server does: reply at accept and close at once.
        let server = daemon.serve(|peer| {
            peer.write(&HelloReply::refused(AisError::Access).encode(0));
        });
        let result = Connection::connect_with(&daemon.config(), CFG, Version::B_01_01);
        assert_eq!(result.unwrap_err(), AisError::Access);
        server.join().unwrap();
    }

    #[test]
    fn silent_daemon_times_out_and_closing_daemon_is_library() {
        let mut daemon = Daemon::new();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let server = daemon.serve(move |peer| {
            peer.read();
            let _ = rx.recv();
        });
        let mut config = daemon.config();
        config.timeout = Duration::from_millis(100);
        let started = Instant::now();
        let result = Connection::connect_with(&config, CFG, Version::B_01_01);
        assert_eq!(result.unwrap_err(), AisError::Timeout);
        assert!(started.elapsed() >= Duration::from_millis(100));
        tx.send(()).unwrap();
        server.join().unwrap();

        let mut daemon = Daemon::new();
        let server = daemon.serve(|peer| drop(peer.read()));
        let result = Connection::connect_with(&daemon.config(), CFG, Version::B_01_01);
        assert_eq!(result.unwrap_err(), AisError::Library);
        server.join().unwrap();
    }

    #[test]
    fn request_gets_its_response_and_keeps_callbacks_for_later() {
        let mut daemon = Daemon::new();
        let status = RingStatus {
            node_id: 1,
            ring_id: proto::status::RingId { seq: 8, rep: 1 },
            state: RingState::Operational,
            members: Vec::new(),
            counters: vec![("token_rotations".into(), 5)],
            sync_done: true,
        };
        let body = status.encode();
        let server = daemon.serve_accepted(move |peer| {
            let request = peer.read();
            assert_eq!(
                (request.kind, request.id),
                (FrameKind::Request, RING_STATUS)
            );
            peer.callback(0, b"first");
            peer.callback(1, b"second");
            peer.respond(RING_STATUS, Ok(()), &body);
            peer.callback(2, b"third");
            let request = peer.read();
            peer.respond(request.id, Err(AisError::NotExist), b"");
            peer.wait_close();
        });
        let mut conn = Connection::connect_with(&daemon.config(), CFG, Version::B_01_01).unwrap();
        let reply = conn.request(RING_STATUS, b"").unwrap();
        assert_eq!(RingStatus::decode(&reply.body), Ok(status));
        assert_eq!(conn.pending_callbacks(), 2);
        // The callbacks are in memory, not on the socket: the selection
        // object must still show them.
        assert!(selectable(&conn));
        let first = conn.recv_callback(false).unwrap().unwrap();
        assert_eq!(
            (first.kind, first.id, &first.body[..]),
            (FrameKind::Callback, 0, &b"first"[..])
        );
        assert_eq!(conn.recv_callback(false).unwrap().unwrap().id, 1);
        assert_eq!(conn.recv_callback(true).unwrap().unwrap().id, 2);
        assert_eq!(conn.recv_callback(false).unwrap(), None);
        assert!(!selectable(&conn));

        let reply = conn.request(7, b"x").unwrap();
        assert_eq!(reply.status, Err(AisError::NotExist));
        assert_eq!(reply.into_result(), Err(AisError::NotExist));
        drop(conn);
        server.join().unwrap();
    }

    #[test]
    fn late_response_after_a_timeout_is_dropped() {
        let mut daemon = Daemon::new();
        let server = daemon.serve_accepted(|peer| {
            let slow = peer.read();
            let next = peer.read();
            // Answers both, in order, after the first timed out.
            peer.respond(slow.id, Ok(()), b"slow");
            peer.respond(next.id, Ok(()), b"next");
            peer.wait_close();
        });
        let mut conn = Connection::connect_with(&daemon.config(), CFG, Version::B_01_01).unwrap();
        conn.set_timeout(Duration::from_millis(100));
        assert_eq!(conn.request(1, b"").unwrap_err(), AisError::Timeout);
        assert!(!conn.is_broken());
        conn.set_timeout(Duration::from_secs(5));
        assert_eq!(&conn.request(1, b"").unwrap().body[..], b"next");
        drop(conn);
        server.join().unwrap();
    }

    #[test]
    fn vanished_daemon_breaks_the_connection() {
        let mut daemon = Daemon::new();
        let server = daemon.serve_accepted(|peer| {
            peer.read();
            peer.callback(4, b"before the end");
        });
        let mut conn = Connection::connect_with(&daemon.config(), CFG, Version::B_01_01).unwrap();
        assert_eq!(conn.request(0, b"").unwrap_err(), AisError::Library);
        server.join().unwrap();
        assert!(conn.is_broken());
        assert!(selectable(&conn));
        // What came before the end is still delivered, then LIBRARY.
        assert_eq!(conn.recv_callback(false).unwrap().unwrap().id, 4);
        assert_eq!(conn.recv_callback(false).unwrap_err(), AisError::Library);
        assert_eq!(conn.request(0, b"").unwrap_err(), AisError::Library);
    }

    #[test]
    fn protocol_violations_break_the_connection() {
        type Script = fn(&mut Peer);
        let scripts: [Script; 4] = [
            // Garbage.
            |peer| {
                peer.read();
                peer.write(&[0xAB; 32]);
                peer.wait_close();
            },
            // A response to another request id.
            |peer| {
                peer.read();
                peer.respond(99, Ok(()), b"");
                peer.wait_close();
            },
            // A request sent to the client.
            |peer| {
                let request = peer.read();
                peer.write(&request.encode().unwrap());
                peer.wait_close();
            },
            // A response for another service.
            |peer| {
                let request = peer.read();
                peer.write(&encode_frame(FrameKind::Response, 1, request.id, Ok(()), b"").unwrap());
                peer.wait_close();
            },
        ];
        for script in scripts {
            let mut daemon = Daemon::new();
            let server = daemon.serve_accepted(script);
            let mut conn =
                Connection::connect_with(&daemon.config(), CFG, Version::B_01_01).unwrap();
            assert_eq!(conn.request(3, b"").unwrap_err(), AisError::Library);
            assert!(conn.is_broken());
            drop(conn);
            server.join().unwrap();
        }
    }

    #[test]
    fn callback_queue_overflow_is_no_resources() {
        let mut daemon = Daemon::new();
        let server = daemon.serve_accepted(|peer| {
            let request = peer.read();
            // One write: the client breaks the connection at the fourth
            // callback, so a later write could meet a closed socket.
            let mut all = Vec::new();
            for id in 0..4 {
                all.extend(
                    encode_frame(FrameKind::Callback, CFG.code(), id, Ok(()), b"cb").unwrap(),
                );
            }
            all.extend(
                encode_frame(FrameKind::Response, CFG.code(), request.id, Ok(()), b"").unwrap(),
            );
            peer.write(&all);
            peer.wait_close();
        });
        let mut config = daemon.config();
        config.max_callback_frames = 3;
        let mut conn = Connection::connect_with(&config, CFG, Version::B_01_01).unwrap();
        assert_eq!(conn.request(0, b"").unwrap_err(), AisError::NoResources);
        assert_eq!(conn.pending_callbacks(), 3);
        for id in 0..3 {
            assert_eq!(conn.recv_callback(false).unwrap().unwrap().id, id);
        }
        assert_eq!(conn.recv_callback(false).unwrap_err(), AisError::Library);
        drop(conn);
        server.join().unwrap();
    }

    #[test]
    fn blocking_recv_waits_for_a_callback() {
        let mut daemon = Daemon::new();
        let server = daemon.serve_accepted(|peer| {
            thread::sleep(Duration::from_millis(100));
            peer.callback(9, b"late");
            peer.wait_close();
        });
        let mut conn = Connection::connect_with(&daemon.config(), CFG, Version::B_01_01).unwrap();
        assert_eq!(conn.recv_callback(false).unwrap(), None);
        assert_eq!(
            conn.recv_callback_timeout(Duration::from_millis(10))
                .unwrap_err(),
            AisError::Timeout
        );
        let frame = conn.recv_callback(true).unwrap().unwrap();
        assert_eq!(frame.id, 9);
        drop(conn);
        server.join().unwrap();
    }

    #[test]
    fn oversized_request_is_too_big() {
        let mut daemon = Daemon::new();
        let server = daemon.serve_accepted(|peer| peer.wait_close());
        let mut conn = Connection::connect_with(&daemon.config(), CFG, Version::B_01_01).unwrap();
        let body = vec![0u8; MAX_BODY_BYTES + 1];
        assert_eq!(conn.request(0, &body).unwrap_err(), AisError::TooBig);
        assert!(!conn.is_broken());
        drop(conn);
        server.join().unwrap();
    }

    #[test]
    fn a_daemon_that_reads_nothing_times_the_write_out() {
        let mut daemon = Daemon::new();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let server = daemon.serve_accepted(move |_peer| {
            let _ = rx.recv();
        });
        let mut conn = Connection::connect_with(&daemon.config(), CFG, Version::B_01_01).unwrap();
        conn.set_timeout(Duration::from_millis(100));
        // Maximum frames soon stop fitting the socket buffers: part of one
        // goes out, then the stream's framing would be lost.
        let body = vec![0u8; MAX_BODY_BYTES];
        for _ in 0..16 {
            assert_eq!(conn.request(0, &body).unwrap_err(), AisError::Timeout);
            if conn.is_broken() {
                break;
            }
        }
        assert!(conn.is_broken());
        // With the stream full, nothing of the next one is sent at all.
        assert_eq!(conn.request(0, b"").unwrap_err(), AisError::Library);
        tx.send(()).unwrap();
        drop(conn);
        server.join().unwrap();
    }
}
