//! One client connection: its socket, its input framing and its bounded
//! output queue.
//!
//! Input: bytes are read from the socket only when the [`FrameReader`]
//! holds no complete frame, straight into its buffer, at most the rest of
//! the frame being received or [`READ_CHUNK_BYTES`], so a connection
//! buffers at most one maximum frame plus one chunk however fast its client
//! writes; the rest waits in the kernel's socket buffer, which blocks the
//! client (back-pressure). A frame's body is a slice of what the kernel
//! wrote: nothing is copied between the socket and the service.
//!
//! Output: whole frames queue in order, bounded in bytes and in frames;
//! writes resume where a partial write stopped, and the socket is
//! registered for WRITABLE only while something is queued. Queued frames
//! are written in batches (one `sendmsg` of up to [`MAX_IOVECS`] frames):
//! once [`FLUSH_BATCH_BYTES`] or [`MAX_IOVECS`] frames wait, else when the
//! server flushes at the end of the event loop's turn. One write per
//! callback woke the client (and on two cores preempted the executive)
//! once per message.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd};

use bytes::{Buf, Bytes};
use mio::net::UnixStream;
use mio::{Interest, Registry, Token};
use nix::sys::socket::{sendmsg, MsgFlags, UnixAddr};
use proto::{EncodedFrame, Frame, FrameError, FrameReader};

use super::auth::Creds;

/// Bytes read from a socket at a time.
pub(crate) const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Frames handed to one `sendmsg` at most.
const MAX_IOVECS: usize = 64;

/// Queued bytes that are written at once rather than at the end of the turn.
const FLUSH_BATCH_BYTES: usize = 64 * 1024;

/// What reading a connection gave.
#[derive(Debug)]
pub(crate) enum Input {
    /// A complete frame.
    Frame(Frame),
    /// Nothing more for now: the socket would block and no complete frame
    /// is buffered.
    Idle,
    /// The peer closed its end; `mid_frame` if it stopped inside a frame.
    Eof { mid_frame: bool },
    /// The peer sent a bad frame header: the stream's framing is lost.
    Garbage(FrameError),
    /// Reading failed.
    Failed(io::Error),
}

/// Output queue limits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueueLimits {
    pub(crate) max_bytes: usize,
    pub(crate) max_frames: usize,
}

/// Why a frame was not queued; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Full {
    pub(crate) queued_bytes: usize,
    pub(crate) queued_frames: usize,
}

#[derive(Debug)]
pub(crate) struct Connection {
    stream: UnixStream,
    token: Token,
    pub(crate) creds: Creds,
    reader: FrameReader,
    /// The socket may hold bytes not read yet (set by readiness events,
    /// cleared when a read would block).
    pub(crate) readable: bool,
    /// The connection is in the server's ready list.
    pub(crate) in_ready: bool,
    /// The round `round_frames` counts for.
    pub(crate) round: u64,
    /// Frames delivered in round `round`.
    pub(crate) round_frames: usize,
    /// Close once the output queue is empty; read nothing more.
    pub(crate) closing: bool,
    /// Queued output: frames in pieces (a frame's header and its large
    /// body are two pieces, see `proto::EncodedFrame`), each piece with
    /// whether it ends its frame.
    out: VecDeque<(Bytes, bool)>,
    out_bytes: usize,
    out_frames: usize,
    /// WRITABLE is in the registered interest.
    writable_interest: bool,
    /// Frames are queued that no write was tried for yet (the server lists
    /// the connection to flush at the end of the turn).
    pub(crate) unflushed: bool,
    /// Input is not read while the output queue is above half its bound
    /// (the client is not reading); cleared when it drains.
    pub(crate) read_paused: bool,
    /// Since when the output queue is above the lag mark (see
    /// `IpcServer::congested`).
    pub(crate) lagging_since: Option<std::time::Instant>,
}

impl Connection {
    /// Registers `stream` for READABLE under `token`.
    pub(crate) fn register(
        registry: &Registry,
        mut stream: UnixStream,
        token: Token,
        creds: Creds,
    ) -> io::Result<Connection> {
        registry.register(&mut stream, token, Interest::READABLE)?;
        Ok(Connection {
            stream,
            token,
            creds,
            reader: FrameReader::new(),
            // Bytes may have arrived before registration.
            readable: true,
            in_ready: false,
            round: 0,
            round_frames: 0,
            closing: false,
            out: VecDeque::new(),
            out_bytes: 0,
            out_frames: 0,
            writable_interest: false,
            unflushed: false,
            read_paused: false,
            lagging_since: None,
        })
    }

    /// Deregisters the socket (it closes when dropped).
    pub(crate) fn deregister(&mut self, registry: &Registry) {
        // Closing the fd removes it from epoll anyway; an error here changes
        // nothing.
        let _ = registry.deregister(&mut self.stream);
    }

    /// The next complete frame, reading from the socket only if none is
    /// buffered.
    pub(crate) fn next_input(&mut self) -> Input {
        loop {
            match self.reader.next_frame() {
                Ok(Some(frame)) => return Input::Frame(frame),
                Ok(None) => {}
                Err(error) => return Input::Garbage(error),
            }
            if !self.readable {
                return Input::Idle;
            }
            // Straight into the frame buffer: the frame's body is handed on
            // as a slice of what the kernel wrote, never copied.
            match self.reader.recv_from(self.stream.as_fd(), READ_CHUNK_BYTES) {
                Ok(0) => {
                    return Input::Eof {
                        mid_frame: self.reader.is_mid_frame(),
                    }
                }
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Input::Idle;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Input::Failed(error),
            }
        }
    }

    pub(crate) fn queued_bytes(&self) -> usize {
        self.out_bytes
    }

    pub(crate) fn queued_frames(&self) -> usize {
        self.out_frames
    }

    /// Queues `frame`, and writes what the socket takes now if a batch is
    /// full; else sets `unflushed` (the caller flushes later).
    /// `Ok(Err(Full))` if the frame does not fit the limits (nothing
    /// queued); `Err` if the socket failed (the connection is dead).
    pub(crate) fn send(
        &mut self,
        registry: &Registry,
        frame: EncodedFrame,
        limits: QueueLimits,
    ) -> io::Result<Result<(), Full>> {
        if self.out_frames >= limits.max_frames
            || self.out_bytes.saturating_add(frame.len()) > limits.max_bytes
        {
            return Ok(Err(Full {
                queued_bytes: self.out_bytes,
                queued_frames: self.out_frames,
            }));
        }
        self.out_bytes += frame.len();
        self.out_frames += 1;
        let [head, body] = frame.into_pieces();
        if body.is_empty() {
            self.out.push_back((head, true));
        } else {
            self.out.push_back((head, false));
            self.out.push_back((body, true));
        }
        if !self.writable_interest {
            // No WRITABLE event is coming: write now if a batch is full,
            // else at the end of the turn.
            if self.out.len() >= MAX_IOVECS || self.out_bytes >= FLUSH_BATCH_BYTES {
                self.flush(registry)?;
            } else {
                self.unflushed = true;
            }
        }
        Ok(Ok(()))
    }

    /// Writes queued frames until the socket would block or the queue is
    /// empty, and keeps WRITABLE registered exactly while frames remain.
    pub(crate) fn flush(&mut self, registry: &Registry) -> io::Result<()> {
        self.unflushed = false;
        while !self.out.is_empty() {
            let iov: Vec<IoSlice<'_>> = self
                .out
                .iter()
                .take(MAX_IOVECS)
                .map(|(piece, _)| IoSlice::new(piece))
                .collect();
            // MSG_NOSIGNAL: a vanished peer is an EPIPE error here, never a
            // SIGPIPE that kills the executive.
            let sent = sendmsg::<UnixAddr>(
                self.stream.as_raw_fd(),
                &iov,
                &[],
                MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
                None,
            );
            match sent {
                Ok(n) => self.consume(n),
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(nix::errno::Errno::EINTR) => {}
                Err(errno) => return Err(errno.into()),
            }
        }
        let want = !self.out.is_empty();
        if want != self.writable_interest {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(&mut self.stream, self.token, interest)?;
            self.writable_interest = want;
        }
        Ok(())
    }

    /// Drops `n` written bytes from the front of the queue.
    fn consume(&mut self, mut n: usize) {
        // sendmsg never reports more than the iovecs held, which are queued
        // bytes, so this cannot underflow.
        self.out_bytes -= n;
        while n > 0 {
            let Some((front, ends_frame)) = self.out.front_mut() else {
                break;
            };
            if n >= front.len() {
                n -= front.len();
                if *ends_frame {
                    self.out_frames -= 1;
                }
                self.out.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }
}
