//! Framing: every message on a client connection is one frame, a fixed
//! 16-byte little-endian header then a body.
//!
//! ```text
//! offset size field
//!      0    4 size      whole frame in bytes, header included (16 ..= MAX_FRAME_BYTES)
//!      4    1 version   PROTOCOL_VERSION
//!      5    1 kind      1 Request, 2 Response, 3 Callback
//!      6    2 service   ServiceId of the connection
//!      8    2 id        message id within the service
//!     10    2 reserved  0
//!     12    4 error     SaAisErrorT: SA_AIS_OK (1) or an error code
//!     16      body      size - 16 bytes
//! ```
//!
//! A request whose error field is `SA_AIS_ERR_TRY_AGAIN` is *posted*: the
//! client does not wait for its answer before sending more, so the
//! executive holds it while the service cannot take it instead of
//! answering TRY_AGAIN (see the `node` crate's `posted` module).
//!
//! A header that is not valid (another version, an unknown kind, a size
//! below 16 or above the maximum, a non-zero reserved field, an unknown
//! error code) is a hard error: the stream has lost its framing and the
//! connection is to be dropped. The service number is *not* checked here:
//! an unknown service is a per-request answer (`SA_AIS_ERR_NOT_SUPPORTED`),
//! not a framing failure.

use std::collections::VecDeque;
use std::io;
use std::os::fd::BorrowedFd;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use socket2::SockRef;
use thiserror::Error;

use crate::error::{status_code, status_from_code, Status};
use crate::service::{ServiceId, UnknownService};

/// Bytes in a frame header.
pub const HEADER_BYTES: usize = 16;

/// The frame format version this crate speaks.
pub const PROTOCOL_VERSION: u8 = 1;

/// The largest frame, header included: 1 MiB of EVS or CKPT payload plus
/// 64 KiB for the request's own fields (names, section ids, group lists).
pub const MAX_FRAME_BYTES: usize = (1 << 20) + (64 << 10);

/// The largest body.
pub const MAX_BODY_BYTES: usize = MAX_FRAME_BYTES - HEADER_BYTES;

/// The send and receive buffer each end of a client connection asks the
/// kernel for. Linux's default, about 208 KiB, holds three 64 KiB messages:
/// with three nodes sending them, a daemon filled its client's buffer after
/// a few deliveries and waited for the client's next read, and the client's
/// posts waited likewise, one handoff per few messages. With 1 MiB, 65000 B
/// messages from every node went about 15% faster (docs/performance.md).
/// The kernel caps it at `net.core.wmem_max` / `rmem_max` and counts it
/// against the socket, not against either process's memory.
pub const SOCKET_BUFFER_BYTES: usize = 1 << 20;

/// Asks for [`SOCKET_BUFFER_BYTES`] both ways on a client connection's
/// socket, as the client and the executive each do for their end.
///
/// # Errors
/// The socket refused the option (not a socket). A size above the system's
/// maximum is capped by the kernel, not refused.
pub fn size_socket_buffers(socket: BorrowedFd<'_>) -> io::Result<()> {
    let socket = SockRef::from(&socket);
    socket.set_send_buffer_size(SOCKET_BUFFER_BYTES)?;
    socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES)
}

// A 1 MiB EVS message or CKPT write must fit with room for its request's
// own fields.
const _: () = assert!(MAX_BODY_BYTES >= (1 << 20) + 1024);

/// What a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// Client -> executive: a call. Answered by exactly one Response.
    Request = 1,
    /// Executive -> client: the answer to the oldest unanswered Request.
    Response = 2,
    /// Executive -> client: an event for the client's dispatch (a
    /// delivered message, a membership change, an async result).
    Callback = 3,
}

impl FrameKind {
    /// The kind with wire value `code`.
    pub fn from_code(code: u8) -> Option<FrameKind> {
        match code {
            1 => Some(FrameKind::Request),
            2 => Some(FrameKind::Response),
            3 => Some(FrameKind::Callback),
            _ => None,
        }
    }
}

/// Why a frame header (or a whole frame given to [`Frame::decode`]) is not
/// valid. From a stream, any of these means the framing is lost.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The header's version is not [`PROTOCOL_VERSION`].
    #[error("frame version {0}, expected {PROTOCOL_VERSION}")]
    BadVersion(u8),
    /// The header's kind is not Request, Response or Callback.
    #[error("unknown frame kind {0}")]
    BadKind(u8),
    /// The size is smaller than a header.
    #[error("frame size {0} is smaller than the {HEADER_BYTES}-byte header")]
    TooShort(u32),
    /// The size is above the reader's maximum.
    #[error("frame size {size} is above the maximum {max}")]
    TooLong {
        /// The size in the header.
        size: u32,
        /// The maximum frame size.
        max: usize,
    },
    /// The reserved field is not 0.
    #[error("reserved header field is {0}, expected 0")]
    BadReserved(u16),
    /// The error field is neither SA_AIS_OK nor a known SaAisErrorT.
    #[error("unknown SaAisErrorT value {0}")]
    UnknownStatus(u32),
    /// [`Frame::decode`] only: the input is shorter than the header's size.
    #[error("frame of {size} bytes, only {have} given")]
    Incomplete {
        /// The size in the header (or the header's size, if even that is
        /// missing).
        size: usize,
        /// Bytes given.
        have: usize,
    },
    /// [`Frame::decode`] only: bytes after the frame.
    #[error("{0} bytes after the frame")]
    TrailingBytes(usize),
}

/// A body too large for one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("frame body of {body_bytes} bytes is above the maximum {MAX_BODY_BYTES}")]
pub struct FrameTooBig {
    /// The body's size.
    pub body_bytes: usize,
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The whole frame's size, header included.
    pub size: u32,
    /// What the frame is.
    pub kind: FrameKind,
    /// The service number (not checked: see the module docs).
    pub service: u16,
    /// The message id within the service.
    pub id: u16,
    /// The status; for requests and callbacks normally `Ok(())`.
    pub status: Status,
}

impl FrameHeader {
    /// Decodes and validates a header; sizes above `max_frame_bytes` are
    /// refused.
    ///
    /// # Errors
    /// Every [`FrameError`] but `Incomplete` and `TrailingBytes`.
    pub fn decode(
        bytes: &[u8; HEADER_BYTES],
        max_frame_bytes: usize,
    ) -> Result<FrameHeader, FrameError> {
        let mut buf = &bytes[..];
        let size = buf.get_u32_le();
        let version = buf.get_u8();
        let kind = buf.get_u8();
        let service = buf.get_u16_le();
        let id = buf.get_u16_le();
        let reserved = buf.get_u16_le();
        let error = buf.get_u32_le();
        if version != PROTOCOL_VERSION {
            return Err(FrameError::BadVersion(version));
        }
        let kind = FrameKind::from_code(kind).ok_or(FrameError::BadKind(kind))?;
        if (size as usize) < HEADER_BYTES {
            return Err(FrameError::TooShort(size));
        }
        if size as usize > max_frame_bytes {
            return Err(FrameError::TooLong {
                size,
                max: max_frame_bytes,
            });
        }
        if reserved != 0 {
            return Err(FrameError::BadReserved(reserved));
        }
        let status = status_from_code(error).ok_or(FrameError::UnknownStatus(error))?;
        Ok(FrameHeader {
            size,
            kind,
            service,
            id,
            status,
        })
    }

    /// Bytes of body that follow the header.
    pub fn body_len(&self) -> usize {
        self.size as usize - HEADER_BYTES
    }
}

/// One message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What the frame is.
    pub kind: FrameKind,
    /// The service number (see [`Frame::service_id`]).
    pub service: u16,
    /// The message id within the service.
    pub id: u16,
    /// The status (`SA_AIS_OK` is `Ok(())`).
    pub status: Status,
    /// The body, decoded by the service's own message types.
    pub body: Bytes,
}

impl Frame {
    /// A request to `service` with status OK.
    pub fn request(service: ServiceId, id: u16, body: Bytes) -> Frame {
        Frame {
            kind: FrameKind::Request,
            service: service.code(),
            id,
            status: Ok(()),
            body,
        }
    }

    /// A response on a connection to service number `service`.
    pub fn response(service: u16, id: u16, status: Status, body: Bytes) -> Frame {
        Frame {
            kind: FrameKind::Response,
            service,
            id,
            status,
            body,
        }
    }

    /// A callback on a connection to `service`, with status OK.
    pub fn callback(service: ServiceId, id: u16, body: Bytes) -> Frame {
        Frame {
            kind: FrameKind::Callback,
            service: service.code(),
            id,
            status: Ok(()),
            body,
        }
    }

    /// The service, if this version knows its number.
    ///
    /// # Errors
    /// [`UnknownService`] for a number this version does not know.
    pub fn service_id(&self) -> Result<ServiceId, UnknownService> {
        ServiceId::try_from(self.service)
    }

    /// The frame's size on the wire.
    pub fn encoded_len(&self) -> usize {
        HEADER_BYTES + self.body.len()
    }

    /// The frame on the wire.
    ///
    /// # Errors
    /// [`FrameTooBig`] if the body is above [`MAX_BODY_BYTES`].
    pub fn encode(&self) -> Result<Bytes, FrameTooBig> {
        encode_frame(self.kind, self.service, self.id, self.status, &self.body)
    }

    /// The frame to be written, its body not copied when it is at least
    /// [`SPLIT_BODY_BYTES`] long.
    ///
    /// # Errors
    /// [`FrameTooBig`] if the body is above [`MAX_BODY_BYTES`].
    pub fn encode_parts(&self) -> Result<EncodedFrame, FrameTooBig> {
        if self.body.len() < SPLIT_BODY_BYTES {
            return self.encode().map(EncodedFrame::from);
        }
        let head = frame_header(
            self.kind,
            self.service,
            self.id,
            self.status,
            self.body.len(),
        )?;
        Ok(EncodedFrame {
            head: Bytes::copy_from_slice(&head),
            body: self.body.clone(),
        })
    }

    /// Decodes exactly one whole frame (at most [`MAX_FRAME_BYTES`]).
    ///
    /// # Errors
    /// A bad header, [`FrameError::Incomplete`] if `bytes` is shorter than
    /// the frame, [`FrameError::TrailingBytes`] if longer.
    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        let Some(header) = bytes.first_chunk::<HEADER_BYTES>() else {
            return Err(FrameError::Incomplete {
                size: HEADER_BYTES,
                have: bytes.len(),
            });
        };
        let header = FrameHeader::decode(header, MAX_FRAME_BYTES)?;
        let size = header.size as usize;
        match bytes.len() {
            have if have < size => Err(FrameError::Incomplete { size, have }),
            have if have > size => Err(FrameError::TrailingBytes(have - size)),
            _ => Ok(Frame::from_parts(
                header,
                Bytes::copy_from_slice(&bytes[HEADER_BYTES..]),
            )),
        }
    }

    fn from_parts(header: FrameHeader, body: Bytes) -> Frame {
        Frame {
            kind: header.kind,
            service: header.service,
            id: header.id,
            status: header.status,
            body,
        }
    }
}

/// Bodies at least this long are not copied behind their header by
/// [`Frame::encode_parts`]: the header goes out as its own piece. Below
/// it, one copy is cheaper than a second buffer and a second iovec.
pub const SPLIT_BODY_BYTES: usize = 1024;

/// A frame ready to be written: `head` then `body`, back to back on the
/// stream. A large body stays the buffer it came in (a delivered message
/// is shared by every client's queue, never copied into each client's
/// frame); a small frame is all in `head`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedFrame {
    head: Bytes,
    body: Bytes,
}

impl EncodedFrame {
    /// The frame's pieces, in order; the second may be empty.
    pub fn pieces(&self) -> [&Bytes; 2] {
        [&self.head, &self.body]
    }

    /// The frame's pieces, by value.
    pub fn into_pieces(self) -> [Bytes; 2] {
        [self.head, self.body]
    }

    /// The frame's size on the stream.
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    /// Whether it has no bytes (never, for a frame from
    /// [`Frame::encode_parts`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame in one buffer (copies a split frame; for tests and the
    /// simulators).
    pub fn to_bytes(&self) -> Bytes {
        if self.body.is_empty() {
            return self.head.clone();
        }
        Bytes::from([&self.head[..], &self.body[..]].concat())
    }
}

/// An already encoded frame, in one piece.
impl From<Bytes> for EncodedFrame {
    fn from(frame: Bytes) -> EncodedFrame {
        EncodedFrame {
            head: frame,
            body: Bytes::new(),
        }
    }
}

/// Encodes one frame: the header, then `body`.
///
/// # Errors
/// [`FrameTooBig`] if `body` is above [`MAX_BODY_BYTES`].
pub fn encode_frame(
    kind: FrameKind,
    service: u16,
    id: u16,
    status: Status,
    body: &[u8],
) -> Result<Bytes, FrameTooBig> {
    encode_frame_parts(kind, service, id, status, &[body])
}

/// Encodes one frame whose body is `parts` back to back: one buffer, each
/// part copied once (a client's message goes from the application's
/// buffers straight into the frame).
///
/// # Errors
/// [`FrameTooBig`] if the parts add up to more than [`MAX_BODY_BYTES`].
pub fn encode_frame_parts(
    kind: FrameKind,
    service: u16,
    id: u16,
    status: Status,
    parts: &[&[u8]],
) -> Result<Bytes, FrameTooBig> {
    let body_len = parts
        .iter()
        .try_fold(0usize, |sum, p| sum.checked_add(p.len()))
        .unwrap_or(usize::MAX);
    let head = frame_header(kind, service, id, status, body_len)?;
    let mut buf = BytesMut::with_capacity(HEADER_BYTES + body_len);
    buf.put_slice(&head);
    for part in parts {
        buf.put_slice(part);
    }
    Ok(buf.freeze())
}

/// Encodes one frame whose body is `prefix` then `tail`, without copying
/// `tail`: the header and `prefix` are the first piece, `tail` the second
/// (a delivered message goes out from where it was received).
///
/// # Errors
/// [`FrameTooBig`] if the body is above [`MAX_BODY_BYTES`].
pub fn encode_frame_with_tail(
    kind: FrameKind,
    service: u16,
    id: u16,
    status: Status,
    prefix: &[u8],
    tail: Bytes,
) -> Result<EncodedFrame, FrameTooBig> {
    let body_len = prefix.len().saturating_add(tail.len());
    let head = frame_header(kind, service, id, status, body_len)?;
    let mut buf = BytesMut::with_capacity(HEADER_BYTES + prefix.len());
    buf.put_slice(&head);
    buf.put_slice(prefix);
    Ok(EncodedFrame {
        head: buf.freeze(),
        body: tail,
    })
}

/// The header of a frame with a body of `body_len` bytes.
fn frame_header(
    kind: FrameKind,
    service: u16,
    id: u16,
    status: Status,
    body_len: usize,
) -> Result<[u8; HEADER_BYTES], FrameTooBig> {
    if body_len > MAX_BODY_BYTES {
        return Err(FrameTooBig {
            body_bytes: body_len,
        });
    }
    let mut head = [0; HEADER_BYTES];
    let mut buf = &mut head[..];
    // Cannot truncate: the size is at most MAX_FRAME_BYTES, checked above.
    buf.put_u32_le((HEADER_BYTES + body_len) as u32);
    buf.put_u8(PROTOCOL_VERSION);
    buf.put_u8(kind as u8);
    buf.put_u16_le(service);
    buf.put_u16_le(id);
    buf.put_u16_le(0);
    buf.put_u32_le(status_code(status));
    Ok(head)
}

/// Reads of `chunk` bytes one [`FrameReader::recv_from`] buffer has room
/// for when it is allocated.
pub const RECV_BUFFER_READS: usize = 4;

/// Cuts a byte stream into frames.
///
/// Feed it what the stream gives ([`FrameReader::feed`]) and take complete
/// frames out ([`FrameReader::next_frame`]) until it returns `Ok(None)`.
/// Memory: the reader holds at most one partial frame plus what was fed
/// since; a caller that feeds only after `next_frame` returned `Ok(None)`,
/// in chunks of at most `c` bytes, keeps it below `max_frame_bytes + c`.
/// A reader with recycled buffers also keeps up to that many buffers it
/// is done with.
/// Nothing is reserved from a length before the header carrying it is
/// validated against the maximum.
///
/// After a bad header the reader is poisoned: every later `next_frame`
/// returns the same error (the stream cannot be resynchronized).
#[derive(Debug)]
pub struct FrameReader {
    buf: BytesMut,
    max_frame_bytes: usize,
    poisoned: Option<FrameError>,
    /// The last [`FrameReader::recv_from`] filled all the room it asked
    /// for: more is likely waiting.
    streaming: bool,
    /// Empty handles on buffers [`FrameReader::recv_from`] read into
    /// before, oldest first: once every frame carved out of one is
    /// dropped, the buffer is read into again instead of a new one
    /// allocated (see [`FrameReader::with_recycled_buffers`]).
    retired: VecDeque<BytesMut>,
    /// How many retired buffers are kept at most.
    retired_limit: usize,
    /// See [`FrameReader::allocations`].
    allocations: u64,
}

impl Default for FrameReader {
    fn default() -> FrameReader {
        FrameReader::new()
    }
}

impl FrameReader {
    /// A reader that accepts frames up to [`MAX_FRAME_BYTES`].
    pub fn new() -> FrameReader {
        FrameReader::with_max_frame_bytes(MAX_FRAME_BYTES)
    }

    /// A reader that accepts frames up to `max_frame_bytes` (clamped to
    /// `HEADER_BYTES ..= MAX_FRAME_BYTES`).
    pub fn with_max_frame_bytes(max_frame_bytes: usize) -> FrameReader {
        FrameReader {
            buf: BytesMut::new(),
            max_frame_bytes: max_frame_bytes.clamp(HEADER_BYTES, MAX_FRAME_BYTES),
            poisoned: None,
            streaming: false,
            retired: VecDeque::new(),
            retired_limit: 0,
            allocations: 0,
        }
    }

    /// Keeps up to `n` buffers [`FrameReader::recv_from`] is done with, and
    /// reads into one of them again once the frames carved out of it are
    /// all dropped. A reader whose frames are dropped soon after they are
    /// taken (a client dispatching callbacks) then cycles through a few
    /// buffers instead of allocating one per few reads: with glibc, a
    /// freed buffer of a few hundred KiB is often given back to the kernel
    /// and the next one faulted in page by page, which cost a receiving
    /// client of 64 KB messages about a tenth of the machine (issue #7).
    /// The price is memory: up to `n` buffers kept while idle, so the
    /// executive, with a reader per connection, keeps none.
    pub fn with_recycled_buffers(mut self, n: usize) -> FrameReader {
        self.retired_limit = n;
        self
    }

    /// Times [`FrameReader::recv_from`] needed room and had no retired
    /// buffer to reuse, so reserved (which allocates unless the buffer had
    /// no frame left out).
    pub fn allocations(&self) -> u64 {
        self.allocations
    }

    /// The largest frame this reader accepts.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Reads from stream socket `socket` straight into the reader's buffer
    /// (allocated [`RECV_BUFFER_READS`] reads at a time while the peer
    /// streams):
    /// at most the rest of the frame being received or `chunk` bytes,
    /// whichever is more, so a frame lands whole in one allocation and is
    /// handed out by [`FrameReader::next_frame`] without a copy. Returns the
    /// bytes read, 0 at the end of the stream. Read only when `next_frame`
    /// returned `Ok(None)`: the buffer then stays below
    /// `max_frame_bytes + chunk`, as with [`FrameReader::feed`].
    ///
    /// # Errors
    /// The socket's error (`WouldBlock` on a non-blocking socket with
    /// nothing to read).
    pub fn recv_from(&mut self, socket: BorrowedFd<'_>, chunk: usize) -> io::Result<usize> {
        if self.poisoned.is_some() {
            // Nothing is parsed any more; keep reading so the caller sees
            // the stream's end, and hold nothing.
            self.buf.clear();
        }
        let frame_rest = match self.buf.first_chunk::<HEADER_BYTES>() {
            Some(header) => FrameHeader::decode(header, self.max_frame_bytes)
                .map_or(0, |h| (h.size as usize).saturating_sub(self.buf.len())),
            None => 0,
        };
        let want = frame_rest.max(chunk).max(1);
        if self.buf.capacity() - self.buf.len() < want {
            // A peer that streams (its last read filled all the room
            // asked for) gets a buffer with room for several reads:
            // frames are carved one after the other out of it, and a
            // frame cut by the end of a read is completed in place. Only
            // the partial frame at the end of a buffer is moved, once per
            // buffer, not once per read (the buffer is shared with the
            // frames handed out, so it is rarely reused in place). A peer
            // that sends now and then keeps one read's room.
            //
            // A recycling reader always takes the larger room, so that its
            // buffers are alike and any retired one can be reused.
            let reads = if self.streaming || self.retired_limit > 0 {
                RECV_BUFFER_READS
            } else {
                1
            };
            self.make_room(want, want.max(chunk.saturating_mul(reads)));
        }
        let spare = &mut self.buf.spare_capacity_mut()[..want];
        let n = SockRef::from(&socket).recv(spare)?.min(want);
        // SAFETY: recv(2) wrote `n` bytes at the start of the spare
        // capacity (socket2 passes the slice's length, and `n` is capped by
        // it), so the `n` bytes after the current length are initialised.
        #[allow(unsafe_code)]
        unsafe {
            self.buf.set_len(self.buf.len() + n);
        }
        self.streaming = n == want;
        Ok(n)
    }

    /// Gives the buffer room for at least `want` more bytes: a retired
    /// buffer whose frames are all gone if one has that room, else a new
    /// allocation with room for `room`. The partial frame held is moved to
    /// the front of the new buffer, and the buffer left behind is retired
    /// (it stays shared with the frames already handed out until they are
    /// dropped).
    fn make_room(&mut self, want: usize, room: usize) {
        let needed = want.saturating_add(self.buf.len());
        let reusable = self.retired.iter_mut().position(|b| b.try_reclaim(needed));
        let left = match reusable.and_then(|i| self.retired.remove(i)) {
            Some(mut reused) => {
                reused.extend_from_slice(&self.buf);
                Some(std::mem::replace(&mut self.buf, reused))
            }
            None => {
                self.allocations += 1;
                // An empty handle on the rest of the old buffer keeps it
                // known once `reserve` has moved the partial frame away.
                let rest = (self.retired_limit > 0).then(|| self.buf.split_off(self.buf.len()));
                self.buf.reserve(room);
                rest
            }
        };
        // With every retired buffer still pinned, the one just left is
        // the least likely to be free soon: it is let go, not an older one.
        if let Some(mut left) = left.filter(|_| self.retired.len() < self.retired_limit) {
            left.clear();
            self.retired.push_back(left);
        }
    }

    /// Appends bytes read from the stream.
    pub fn feed(&mut self, data: &[u8]) {
        if self.poisoned.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes held that are not yet part of a returned frame.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Whether a frame has begun but is not complete (a stream that ends
    /// now ends mid-frame).
    pub fn is_mid_frame(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Whether [`FrameReader::next_frame`] would return something other
    /// than `Ok(None)` (a frame, or an error) without more input. A client
    /// uses it to know that a frame is waiting in memory although its
    /// socket is not readable.
    pub fn is_frame_ready(&self) -> bool {
        if self.poisoned.is_some() {
            return true;
        }
        match self.buf.first_chunk::<HEADER_BYTES>() {
            None => false,
            Some(header) => match FrameHeader::decode(header, self.max_frame_bytes) {
                Ok(header) => self.buf.len() >= header.size as usize,
                Err(_) => true,
            },
        }
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    ///
    /// # Errors
    /// A [`FrameError`] if the next header is not valid; the reader is then
    /// poisoned.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(error) = &self.poisoned {
            return Err(error.clone());
        }
        let Some(header) = self.buf.first_chunk::<HEADER_BYTES>() else {
            return Ok(None);
        };
        let header = match FrameHeader::decode(header, self.max_frame_bytes) {
            Ok(header) => header,
            Err(error) => {
                self.buf = BytesMut::new();
                self.poisoned = Some(error.clone());
                return Err(error);
            }
        };
        let size = header.size as usize;
        if self.buf.len() < size {
            // No reservation here: `recv_from` makes room for the rest, or
            // `feed` grows the buffer by what it is given.
            return Ok(None);
        }
        let mut frame = self.buf.split_to(size);
        frame.advance(HEADER_BYTES);
        Ok(Some(Frame::from_parts(header, frame.freeze())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AisError;
    use proptest::prelude::*;

    #[test]
    fn a_frame_with_a_tail_is_the_frame_of_the_whole_body_and_keeps_the_tail() {
        let tail = Bytes::from(vec![3u8; 40_000]);
        let encoded =
            encode_frame_with_tail(FrameKind::Callback, 5, 9, Ok(()), b"head", tail.clone())
                .unwrap();
        let whole = [&b"head"[..], &tail[..]].concat();
        let expected = encode_frame(FrameKind::Callback, 5, 9, Ok(()), &whole).unwrap();
        assert_eq!(encoded.to_bytes(), expected);
        assert_eq!(encoded.len(), expected.len());
        let [head, body] = encoded.pieces();
        assert_eq!(head.len(), HEADER_BYTES + 4);
        assert_eq!(body.as_ptr(), tail.as_ptr(), "the tail is not copied");
        let too_long = Bytes::from(vec![0u8; MAX_BODY_BYTES]);
        assert!(encode_frame_with_tail(FrameKind::Callback, 5, 9, Ok(()), b"x", too_long).is_err());
    }

    /// How many 64 KiB writes a non-blocking stream takes before the kernel
    /// says EAGAIN, with nobody reading.
    fn stream_capacity_in_64k_writes(stream: &mut std::os::unix::net::UnixStream) -> usize {
        use std::io::Write;
        stream.set_nonblocking(true).unwrap();
        let chunk = vec![0u8; 64 << 10];
        let mut writes = 0;
        while stream.write(&chunk).is_ok() {
            writes += 1;
            assert!(writes < 10_000, "the stream never filled");
        }
        writes
    }

    #[test]
    fn sized_client_sockets_hold_more_than_the_system_default() {
        use std::os::fd::AsFd;
        use std::os::unix::net::UnixStream;
        let (mut plain, plain_peer) = UnixStream::pair().unwrap();
        let (mut sized, sized_peer) = UnixStream::pair().unwrap();
        size_socket_buffers(sized.as_fd()).unwrap();
        size_socket_buffers(sized_peer.as_fd()).unwrap();
        let default = stream_capacity_in_64k_writes(&mut plain);
        let raised = stream_capacity_in_64k_writes(&mut sized);
        // The kernel caps the request at net.core.wmem_max, and doubles
        // it: at least twice the default unless that maximum is below it.
        assert!(
            raised > default,
            "{raised} writes against {default} by default"
        );
        let recv = SockRef::from(&sized_peer).recv_buffer_size().unwrap();
        let plain_recv = SockRef::from(&plain_peer).recv_buffer_size().unwrap();
        assert!(
            recv > plain_recv,
            "receive buffer {recv} against {plain_recv}"
        );
    }

    fn sample() -> Frame {
        Frame::response(
            7,
            3,
            Err(AisError::TryAgain),
            Bytes::from_static(b"hello body"),
        )
    }

    #[test]
    fn header_layout_is_as_documented() {
        let bytes = sample().encode().unwrap();
        assert_eq!(bytes.len(), 26);
        assert_eq!(&bytes[0..4], &26u32.to_le_bytes());
        assert_eq!(bytes[4], PROTOCOL_VERSION);
        assert_eq!(bytes[5], FrameKind::Response as u8);
        assert_eq!(&bytes[6..8], &7u16.to_le_bytes());
        assert_eq!(&bytes[8..10], &3u16.to_le_bytes());
        assert_eq!(&bytes[10..12], &[0, 0]);
        assert_eq!(&bytes[12..16], &6u32.to_le_bytes());
        assert_eq!(&bytes[16..], b"hello body");
    }

    #[test]
    fn recv_from_a_socket_yields_the_frames_written_in_any_pieces() {
        use std::io::Write;
        use std::os::fd::AsFd;
        use std::os::unix::net::UnixStream;

        let frames: Vec<Frame> = [0usize, 5, 4095, 4096, 70_000, 3, MAX_BODY_BYTES]
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let body: Vec<u8> = (0..len).map(|b| (b % 251) as u8 ^ i as u8).collect();
                Frame::callback(ServiceId::Evs, i as u16, body.into())
            })
            .collect();
        let mut stream = Vec::new();
        for f in &frames {
            stream.extend_from_slice(&f.encode().unwrap());
        }
        let (mut tx, rx) = UnixStream::pair().unwrap();
        let writer = std::thread::spawn(move || {
            // Odd pieces, so frames and headers straddle reads.
            for piece in stream.chunks(7919) {
                tx.write_all(piece).unwrap();
            }
        });
        let mut reader = FrameReader::new();
        let mut got = Vec::new();
        loop {
            while let Some(frame) = reader.next_frame().unwrap() {
                got.push(frame);
            }
            let n = reader.recv_from(rx.as_fd(), 4096).unwrap();
            assert!(reader.buffered_bytes() <= MAX_FRAME_BYTES + 4096);
            if n == 0 {
                break;
            }
        }
        writer.join().unwrap();
        assert!(!reader.is_mid_frame());
        assert_eq!(got, frames);
    }

    /// Streams frames with bodies of `sizes` through a socket pair into
    /// `reader` (reads of `chunk`), holding frame `i` until `hold(i)` more
    /// frames have been taken (0: dropped at once; `usize::MAX`: to the
    /// end), and checks every frame as it arrives and again as it is let
    /// go. Returns how many frames were held to the end.
    fn stream_through(
        reader: &mut FrameReader,
        sizes: Vec<usize>,
        chunk: usize,
        hold: impl Fn(usize) -> usize,
    ) -> usize {
        use std::io::Write;
        use std::os::fd::AsFd;
        use std::os::unix::net::UnixStream;

        fn frame(i: usize, len: usize) -> Frame {
            let body: Vec<u8> = (0..len).map(|b| (b % 251) as u8 ^ i as u8).collect();
            Frame::callback(ServiceId::Evs, i as u16, body.into())
        }
        let count = sizes.len();
        let expected = sizes.clone();
        let (mut tx, rx) = UnixStream::pair().unwrap();
        let writer = std::thread::spawn(move || {
            for (i, &len) in sizes.iter().enumerate() {
                tx.write_all(&frame(i, len).encode().unwrap()).unwrap();
            }
        });
        let mut held: Vec<(usize, Frame)> = Vec::new();
        let mut read = 0;
        loop {
            while let Some(f) = reader.next_frame().unwrap() {
                assert_eq!(
                    f,
                    frame(read, expected[read]),
                    "frame {read} arrives intact"
                );
                held.push((read.saturating_add(hold(read)), f));
                read += 1;
                held.retain(|(until, f)| {
                    let keep = *until >= read;
                    if !keep {
                        let i = f.id as usize;
                        assert_eq!(*f, frame(i, expected[i]), "held frame {i} unchanged");
                    }
                    keep
                });
            }
            let n = reader.recv_from(rx.as_fd(), chunk).unwrap();
            if n == 0 {
                break;
            }
        }
        writer.join().unwrap();
        assert_eq!(read, count);
        for (_, f) in &held {
            let i = f.id as usize;
            assert_eq!(*f, frame(i, expected[i]), "held frame {i} unchanged");
        }
        held.len()
    }

    #[test]
    fn recycled_buffers_are_read_into_again_once_their_frames_are_gone() {
        let sizes = vec![65_000; 300];
        // Frames dropped as they are taken: a few buffers go round.
        let mut plain = FrameReader::new();
        stream_through(&mut plain, sizes.clone(), 64 * 1024, |_| 0);
        let mut recycling = FrameReader::new().with_recycled_buffers(2);
        stream_through(&mut recycling, sizes.clone(), 64 * 1024, |_| 0);
        assert!(
            plain.allocations() > 20,
            "without recycling a new buffer every few reads: {}",
            plain.allocations()
        );
        assert!(
            recycling.allocations() <= 4,
            "recycled: {} allocations",
            recycling.allocations()
        );

        // Frames kept alive pin their buffers, which are then not reused:
        // every kept frame still reads as written (checked inside).
        let mut keeping = FrameReader::new().with_recycled_buffers(2);
        let kept = stream_through(&mut keeping, sizes, 64 * 1024, |i| {
            if i % 7 == 0 {
                usize::MAX
            } else {
                0
            }
        });
        assert_eq!(kept, 43);
        assert!(keeping.allocations() > 4, "pinned buffers are not reused");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Any sizes, reads and holding pattern: a recycled buffer is never
        /// read into while a frame from it is alive.
        #[test]
        fn recycling_never_overwrites_a_live_frame(
            sizes in proptest::collection::vec(0usize..140_000, 1..80),
            holds in proptest::collection::vec(0usize..12, 80),
            chunk in proptest::sample::select(vec![1_000usize, 4_096, 65_536]),
            recycled in 1usize..5,
        ) {
            let mut reader = FrameReader::new().with_recycled_buffers(recycled);
            stream_through(&mut reader, sizes, chunk, |i| holds[i % holds.len()]);
        }
    }

    #[test]
    fn a_frame_from_parts_is_the_frame_of_their_concatenation() {
        let parts: [&[u8]; 3] = [b"ab", b"", b"cdef"];
        assert_eq!(
            encode_frame_parts(FrameKind::Request, 3, 9, Ok(()), &parts),
            encode_frame(FrameKind::Request, 3, 9, Ok(()), b"abcdef")
        );
        let big = vec![0; MAX_BODY_BYTES];
        assert_eq!(
            encode_frame_parts(FrameKind::Request, 3, 9, Ok(()), &[&big, b"x"]),
            Err(FrameTooBig {
                body_bytes: MAX_BODY_BYTES + 1
            })
        );
    }

    #[test]
    fn encoded_parts_are_the_frame_and_share_a_large_body() {
        for len in [0, 1, SPLIT_BODY_BYTES - 1, SPLIT_BODY_BYTES, 70_000] {
            let body = Bytes::from(vec![0x5A; len]);
            let frame = Frame::callback(ServiceId::Evs, 4, body.clone());
            let parts = frame.encode_parts().unwrap();
            assert_eq!(parts.to_bytes(), frame.encode().unwrap(), "len {len}");
            assert_eq!(parts.len(), HEADER_BYTES + len);
            let [head, rest] = parts.pieces();
            if len >= SPLIT_BODY_BYTES {
                assert_eq!(head.len(), HEADER_BYTES);
                assert_eq!(rest.as_ptr(), body.as_ptr(), "body copied at {len}");
            } else {
                assert!(rest.is_empty(), "small frame split at {len}");
            }
        }
        let huge = Frame::callback(ServiceId::Evs, 4, Bytes::from(vec![0; MAX_BODY_BYTES + 1]));
        assert_eq!(
            huge.encode_parts(),
            Err(FrameTooBig {
                body_bytes: MAX_BODY_BYTES + 1
            })
        );
    }

    #[test]
    fn frames_round_trip() {
        for frame in [
            sample(),
            Frame::request(ServiceId::Cfg, 0, Bytes::new()),
            Frame::callback(ServiceId::Evs, 1, Bytes::from(vec![9; 1000])),
        ] {
            let bytes = frame.encode().unwrap();
            assert_eq!(bytes.len(), frame.encoded_len());
            assert_eq!(Frame::decode(&bytes), Ok(frame));
        }
    }

    #[test]
    fn max_body_fits_and_one_more_byte_does_not() {
        let body = vec![0u8; MAX_BODY_BYTES];
        let bytes = encode_frame(FrameKind::Request, 0, 0, Ok(()), &body).unwrap();
        assert_eq!(bytes.len(), MAX_FRAME_BYTES);
        let mut reader = FrameReader::new();
        reader.feed(&bytes);
        assert_eq!(
            reader.next_frame().unwrap().unwrap().body.len(),
            MAX_BODY_BYTES
        );
        let body = vec![0u8; MAX_BODY_BYTES + 1];
        assert_eq!(
            encode_frame(FrameKind::Request, 0, 0, Ok(()), &body),
            Err(FrameTooBig {
                body_bytes: MAX_BODY_BYTES + 1
            })
        );
    }

    #[test]
    fn bad_headers_are_refused() {
        let good = sample().encode().unwrap().to_vec();
        let with = |at: usize, bytes: &[u8]| {
            let mut frame = good.clone();
            frame[at..at + bytes.len()].copy_from_slice(bytes);
            Frame::decode(&frame)
        };
        assert_eq!(with(4, &[2]), Err(FrameError::BadVersion(2)));
        assert_eq!(with(5, &[0]), Err(FrameError::BadKind(0)));
        assert_eq!(with(5, &[4]), Err(FrameError::BadKind(4)));
        assert_eq!(with(0, &15u32.to_le_bytes()), Err(FrameError::TooShort(15)));
        let huge = (MAX_FRAME_BYTES as u32) + 1;
        assert_eq!(
            with(0, &huge.to_le_bytes()),
            Err(FrameError::TooLong {
                size: huge,
                max: MAX_FRAME_BYTES
            })
        );
        assert_eq!(with(10, &[1, 0]), Err(FrameError::BadReserved(1)));
        assert_eq!(
            with(12, &0u32.to_le_bytes()),
            Err(FrameError::UnknownStatus(0))
        );
        assert_eq!(
            with(12, &28u32.to_le_bytes()),
            Err(FrameError::UnknownStatus(28))
        );
        assert_eq!(
            Frame::decode(&good[..20]),
            Err(FrameError::Incomplete { size: 26, have: 20 })
        );
        let mut long = good.clone();
        long.push(0);
        assert_eq!(Frame::decode(&long), Err(FrameError::TrailingBytes(1)));
    }

    #[test]
    fn reader_reassembles_byte_by_byte_and_poisons_on_garbage() {
        let frames = [
            sample(),
            Frame::request(ServiceId::Clm, 2, Bytes::new()),
            Frame::callback(ServiceId::Ckpt, 14, Bytes::from_static(b"x")),
        ];
        let mut stream = Vec::new();
        for frame in &frames {
            stream.extend_from_slice(&frame.encode().unwrap());
        }
        let mut reader = FrameReader::new();
        let mut got = Vec::new();
        for byte in &stream {
            reader.feed(std::slice::from_ref(byte));
            let ready = reader.is_frame_ready();
            let mut taken = 0;
            while let Some(frame) = reader.next_frame().unwrap() {
                got.push(frame);
                taken += 1;
            }
            assert_eq!(ready, taken > 0);
            assert!(!reader.is_frame_ready());
        }
        assert_eq!(got, frames);
        assert!(!reader.is_mid_frame());

        reader.feed(&[0xFF; 16]);
        assert!(reader.is_frame_ready());
        let error = reader.next_frame().unwrap_err();
        assert!(reader.is_frame_ready());
        assert_eq!(error, FrameError::BadVersion(0xFF));
        reader.feed(&stream);
        assert_eq!(reader.next_frame(), Err(error));
        assert_eq!(reader.buffered_bytes(), 0);
    }

    #[test]
    fn reader_with_smaller_maximum_refuses_larger_frames() {
        let mut reader = FrameReader::with_max_frame_bytes(20);
        reader.feed(&sample().encode().unwrap());
        assert_eq!(
            reader.next_frame(),
            Err(FrameError::TooLong { size: 26, max: 20 })
        );
        // A huge maximum is clamped to the protocol's.
        assert_eq!(
            FrameReader::with_max_frame_bytes(usize::MAX).max_frame_bytes(),
            MAX_FRAME_BYTES
        );
    }

    fn any_status() -> impl Strategy<Value = Status> {
        prop_oneof![
            Just(Ok(())),
            proptest::sample::select(AisError::ALL.to_vec()).prop_map(Err),
        ]
    }

    fn any_frame() -> impl Strategy<Value = Frame> {
        (
            1u8..=3,
            any::<u16>(),
            any::<u16>(),
            any_status(),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(kind, service, id, status, body)| Frame {
                kind: FrameKind::from_code(kind).unwrap(),
                service,
                id,
                status,
                body: Bytes::from(body),
            })
    }

    proptest! {
        #[test]
        fn any_frame_round_trips(frame in any_frame()) {
            let bytes = frame.encode().unwrap();
            prop_assert_eq!(Frame::decode(&bytes), Ok(frame));
        }

        #[test]
        fn any_stream_split_anywhere_reassembles(
            frames in proptest::collection::vec(any_frame(), 0..8),
            cuts in proptest::collection::vec(1usize..64, 0..40),
        ) {
            let mut stream = Vec::new();
            for frame in &frames {
                stream.extend_from_slice(&frame.encode().unwrap());
            }
            let mut reader = FrameReader::new();
            let mut got = Vec::new();
            let mut rest = &stream[..];
            let mut cuts = cuts.into_iter();
            while !rest.is_empty() {
                let n = cuts.next().unwrap_or(rest.len()).min(rest.len());
                reader.feed(&rest[..n]);
                rest = &rest[n..];
                while let Some(frame) = reader.next_frame().unwrap() {
                    got.push(frame);
                }
            }
            prop_assert_eq!(got, frames);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Frame::decode(&bytes);
            let mut reader = FrameReader::new();
            reader.feed(&bytes);
            while let Ok(Some(frame)) = reader.next_frame() {
                // Whatever decodes re-encodes to the bytes it came from.
                prop_assert!(frame.encode().is_ok());
            }
        }

        #[test]
        fn valid_headers_with_arbitrary_bodies_never_panic(
            size in 0u32..2000,
            kind in 0u8..5,
            error in 0u32..30,
            body in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&size.to_le_bytes());
            bytes.extend_from_slice(&[PROTOCOL_VERSION, kind, 0, 0, 0, 0, 0, 0]);
            bytes.extend_from_slice(&error.to_le_bytes());
            bytes.extend_from_slice(&body);
            let _ = Frame::decode(&bytes);
            let mut reader = FrameReader::new();
            reader.feed(&bytes);
            while let Ok(Some(_)) = reader.next_frame() {}
        }
    }
}
