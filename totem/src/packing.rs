//! Packing application messages into ring frames, and back.
//!
//! The ring orders *frames*: one frame is the payload of one regular message
//! datagram, at most `max_frame_bytes` long. Applications send *messages* of
//! 1 byte up to `max_message_bytes`. This layer sits between the two, as
//! corosync's totempg sits on totemsrp (corosync `exec/totempg.c`): small
//! messages are packed several to a frame, large ones are fragmented over
//! consecutive frames of the same origin. The ring delivers every origin's
//! frames in that origin's sending order (total order implies FIFO per
//! origin), so the [`Unpacker`] reassembles per origin.
//!
//! # Frame format
//!
//! A frame is a non-empty sequence of records, back to back. All integers
//! are big-endian; offsets below are from the start of a record.
//!
//! ```text
//! offset size field
//! 0      1    kind: 0 = whole message, 1 = fragment
//!
//! kind 0, whole message (WHOLE_HEADER_BYTES = 5 bytes of header):
//! 1      4    len (>= 1)
//! 5      len  the message
//!
//! kind 1, fragment of a large message (FRAGMENT_HEADER_BYTES = 13):
//! 1      4    total_len: the whole message's length (>= 1)
//! 5      4    offset: where this fragment starts in the message
//! 9      4    len (>= 1), with offset + len <= total_len
//! 13     len  the message's bytes offset..offset + len
//! ```
//!
//! Deviation from totempg: totempg puts one header with "fragmented" and
//! "continuation" flags and a list of lengths in front of the packed
//! messages. Here every fragment
//! carries its offset and the total length, so a receiver detects a missing
//! or foreign fragment and reports it instead of gluing wrong bytes together.
//!
//! # Packing (what [`Packer::next_frame`] produces)
//!
//! Messages leave in the order they were pushed, whatever their guarantee,
//! and a frame carries messages of one [`Guarantee`] only (the ring orders a
//! frame with one guarantee). A frame is one of:
//! - whole messages, packed while the next queued message has the same
//!   guarantee and its record fits in the room left;
//! - one fragment of a large message (one whose whole record does not fit in
//!   an empty frame). Every fragment but the last fills its frame, so the
//!   fragments of a message always start at multiples of
//!   `max_frame_bytes - FRAGMENT_HEADER_BYTES`. A message's *last* fragment
//!   is followed by whole messages of the same guarantee while they fit
//!   (this saves a frame per large message). A first fragment is never put
//!   after whole messages: a large message starts in a frame of its own.
//!
//! # Reassembly (what [`Unpacker::push_frame`] accepts)
//!
//! Per origin, at most one partial message exists. A fragment at offset 0
//! starts one (or delivers at once if it is the whole message); any other
//! fragment must continue it exactly: same `total_len`, `offset` equal to the
//! bytes received so far. It completes when `offset + len == total_len`.
//!
//! Errors, by how far they spoil the frame:
//! - *Malformed frame* ([`FrameError::EmptyFrame`], [`FrameError::Truncated`],
//!   [`FrameError::UnknownKind`], [`FrameError::EmptyRecord`]): the records
//!   after the bad one cannot be trusted, so the rest of the frame is
//!   discarded.
//! - *Bad record* (a fragment that does not continue the partial, a length
//!   over `max_message_bytes`, an offset past the total): that record is
//!   discarded and the frame's next records are still processed, so a lost
//!   fragment costs only its own message, not the whole messages that the
//!   packer put after a last fragment.
//! - *Abandoned partial* ([`FrameError::Abandoned`]): a whole message or a
//!   new first fragment arrived while a partial message was pending. The old
//!   partial is dropped (and reported), the new record is processed as usual.
//!
//! Any error drops the origin's partial message at the point it happens; the
//! complete messages before it were delivered; `push_frame` returns the
//! first error of the frame. A correct [`Packer`] on a ring that delivers
//! every frame never causes an error, except across a configuration change
//! where both ends must call [`Packer::restart_partial`] and
//! [`Unpacker::reset`].
//!
//! # Bounds
//!
//! - The packer holds at most `queue_limit_bytes` of payload and at most
//!   `queue_limit_messages` messages; a push over either is refused with
//!   [`McastError::QueueFull`]. The count matters for tiny messages: each
//!   queued message costs a queue entry and a buffer of its own, about a
//!   hundred bytes beyond its payload, so a bound on payload alone would
//!   let a stream of one-byte messages take ~100 times the memory it
//!   names. (Without [`Packer::with_queue_limit_messages`] the count limit
//!   is `queue_limit_bytes`, which payload of at least a byte implies.)
//! - A frame is never longer than `max_frame_bytes`.
//! - The unpacker holds at most one partial message per origin (origins are
//!   ring members, at most `wire::MAX_MEMBERS`), each at most
//!   `max_message_bytes` long. Its buffer grows with the bytes actually
//!   received, never by a length read from the wire.

use std::collections::{BTreeMap, VecDeque};

use bytes::{BufMut, Bytes, BytesMut};

use crate::ids::NodeId;
use crate::srp::McastError;
use crate::wire::Guarantee;

/// Record kind of a whole message.
pub const KIND_WHOLE: u8 = 0;
/// Record kind of a fragment.
pub const KIND_FRAGMENT: u8 = 1;
/// Header bytes of a whole-message record: kind and len.
pub const WHOLE_HEADER_BYTES: usize = 1 + 4;
/// Header bytes of a fragment record: kind, total_len, offset and len.
pub const FRAGMENT_HEADER_BYTES: usize = 1 + 4 + 4 + 4;
/// Smallest frame a [`Packer`] accepts: a fragment with one byte of data.
pub const MIN_FRAME_BYTES: usize = FRAGMENT_HEADER_BYTES + 1;

/// The sending side: a bounded queue of application messages, cut into
/// frames on demand. One per node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packer {
    /// Longest frame produced.
    max_frame_bytes: usize,
    /// Longest message accepted by [`Packer::push`].
    max_message_bytes: usize,
    /// Most payload bytes queued at once.
    queue_limit_bytes: usize,
    /// Most messages queued at once.
    queue_limit_messages: usize,
    /// Messages not yet sent whole, oldest first. Only the front one may be
    /// partly sent (`sent_bytes > 0`).
    queue: VecDeque<Queued>,
    /// Sum of the payload lengths in `queue` (partly sent ones in full).
    queued_bytes: usize,
    /// How many frames `next_frame` would produce before `None`: kept exact
    /// by replaying the packing rule on every push (see [`TailFrame`]).
    backlog_frames: usize,
    /// The last of those frames, if the queue is not empty.
    tail: Option<TailFrame>,
}

/// A queued message.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Queued {
    payload: Bytes,
    guarantee: Guarantee,
    /// Bytes already sent as fragments (a multiple of the fragment size).
    sent_bytes: usize,
}

/// The last frame the queue would produce: whether a newly pushed message
/// joins it or needs a frame of its own. Packing is greedy from a frame
/// boundary, so popping the first frame never changes the later ones, and
/// pushing only ever changes the last one: this makes the backlog exact in
/// O(1) per call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TailFrame {
    guarantee: Guarantee,
    used_bytes: usize,
}

/// The receiving side: splits delivered frames into messages, reassembling
/// fragments per origin. One per node.
#[derive(Clone, Debug)]
pub struct Unpacker {
    /// Longest message accepted; longer `total_len`s are rejected.
    max_message_bytes: usize,
    /// At most one partial message per origin.
    partials: BTreeMap<NodeId, Partial>,
}

/// A message of which some fragments arrived.
#[derive(Clone, Debug)]
struct Partial {
    /// The message's announced length (<= `max_message_bytes`).
    total_len: usize,
    /// The bytes received so far (< `total_len`).
    data: BytesMut,
}

/// Why a frame (or one of its records) was refused. Complete messages before
/// the problem were delivered; the origin's partial message is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame has no record at all. Malformed: nothing delivered.
    #[error("empty frame")]
    EmptyFrame,
    /// A record's header or data runs past the end of the frame. Malformed:
    /// the rest of the frame is discarded.
    #[error("record truncated")]
    Truncated,
    /// A record's kind byte is neither 0 (whole) nor 1 (fragment).
    /// Malformed: the rest of the frame is discarded.
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    /// A record with `len` 0, or a fragment with `total_len` 0. Malformed:
    /// the rest of the frame is discarded.
    #[error("empty record")]
    EmptyRecord,
    /// A whole message's `len` or a fragment's `total_len` exceeds
    /// `max_message_bytes`; nothing was allocated for it. The record is
    /// discarded, the frame's next records are processed.
    #[error("message of {0} bytes exceeds the limit")]
    TooBig(usize),
    /// A fragment's `offset + len` exceeds its `total_len`. The record is
    /// discarded, the frame's next records are processed.
    #[error("fragment runs past its message's end")]
    FragmentOverrun,
    /// A fragment with `offset > 0` arrived but the origin has no partial
    /// message (its first fragment was lost or dropped). The record is
    /// discarded, the frame's next records are processed.
    #[error("fragment at offset {offset} without a started message")]
    NoPartial {
        /// The fragment's offset.
        offset: usize,
    },
    /// A fragment's offset is not the number of bytes received so far: a
    /// fragment went missing or came twice. The record is discarded, the
    /// frame's next records are processed.
    #[error("fragment at offset {got}, expected {expected}")]
    OffsetMismatch {
        /// Bytes of the partial message received so far.
        expected: usize,
        /// The fragment's offset.
        got: usize,
    },
    /// A fragment's `total_len` differs from its partial message's. The
    /// record is discarded, the frame's next records are processed.
    #[error("fragment of a {got}-byte message continues a {expected}-byte one")]
    TotalMismatch {
        /// The partial message's total length.
        expected: usize,
        /// The fragment's total length.
        got: usize,
    },
    /// A whole message or a first fragment arrived while the origin had an
    /// unfinished partial message. The old partial is dropped; the new
    /// record was processed normally (delivered, or started as the new
    /// partial message).
    #[error("unfinished fragmented message abandoned")]
    Abandoned,
}

impl FrameError {
    /// Whether the rest of the frame cannot be parsed after this error.
    fn ends_frame(self) -> bool {
        matches!(
            self,
            FrameError::EmptyFrame
                | FrameError::Truncated
                | FrameError::UnknownKind(_)
                | FrameError::EmptyRecord
        )
    }
}

impl Packer {
    /// An empty packer.
    ///
    /// # Panics
    /// If `max_frame_bytes < MIN_FRAME_BYTES` (no fragment would fit) or
    /// `max_message_bytes` does not fit the 4-byte length fields. Both come
    /// from a validated configuration, so this is a bug in the caller.
    pub fn new(
        max_frame_bytes: usize,
        max_message_bytes: usize,
        queue_limit_bytes: usize,
    ) -> Packer {
        assert!(
            max_frame_bytes >= MIN_FRAME_BYTES,
            "max_frame_bytes {max_frame_bytes} < {MIN_FRAME_BYTES}"
        );
        assert!(
            u32::try_from(max_message_bytes).is_ok(),
            "max_message_bytes {max_message_bytes} does not fit 4 bytes"
        );
        Packer {
            max_frame_bytes,
            max_message_bytes,
            queue_limit_bytes,
            queue_limit_messages: queue_limit_bytes,
            queue: VecDeque::new(),
            queued_bytes: 0,
            backlog_frames: 0,
            tail: None,
        }
    }

    /// The same packer, holding at most `limit` messages at once (see the
    /// module docs, Bounds). A `limit` of 0 refuses every push.
    #[must_use]
    pub fn with_queue_limit_messages(mut self, limit: usize) -> Packer {
        self.queue_limit_messages = limit;
        self
    }

    /// Queue a message for sending.
    ///
    /// # Errors
    /// Nothing is queued and the packer is unchanged:
    /// - [`McastError::Empty`]: `payload` is empty;
    /// - [`McastError::TooBig`]: `payload` exceeds `max_message_bytes`;
    /// - [`McastError::QueueFull`]: the queued bytes plus this message would
    ///   exceed `queue_limit_bytes`, or `queue_limit_messages` messages are
    ///   queued already.
    pub fn push(&mut self, payload: Bytes, guarantee: Guarantee) -> Result<(), McastError> {
        let len = payload.len();
        if len == 0 {
            return Err(McastError::Empty);
        }
        if len > self.max_message_bytes {
            return Err(McastError::TooBig(len));
        }
        if self.queue.len() >= self.queue_limit_messages {
            return Err(McastError::QueueFull);
        }
        let queued_bytes = match self.queued_bytes.checked_add(len) {
            Some(total) if total <= self.queue_limit_bytes => total,
            _ => return Err(McastError::QueueFull),
        };
        // Replay the packing rule of `next_frame` on the last frame.
        let whole_record = WHOLE_HEADER_BYTES + len;
        if whole_record <= self.max_frame_bytes {
            match &mut self.tail {
                Some(tail)
                    if tail.guarantee == guarantee
                        && tail.used_bytes + whole_record <= self.max_frame_bytes =>
                {
                    tail.used_bytes += whole_record;
                }
                _ => {
                    self.backlog_frames += 1;
                    self.tail = Some(TailFrame {
                        guarantee,
                        used_bytes: whole_record,
                    });
                }
            }
        } else {
            let chunk = self.fragment_bytes();
            let fragments = len.div_ceil(chunk);
            let last_len = len - (fragments - 1) * chunk;
            self.backlog_frames += fragments;
            self.tail = Some(TailFrame {
                guarantee,
                used_bytes: FRAGMENT_HEADER_BYTES + last_len,
            });
        }
        self.queued_bytes = queued_bytes;
        self.queue.push_back(Queued {
            payload,
            guarantee,
            sent_bytes: 0,
        });
        Ok(())
    }

    /// The next frame to send with its guarantee, or `None` if nothing is
    /// queued. See the module docs for what a frame holds. Never longer than
    /// `max_frame_bytes`.
    pub fn next_frame(&mut self) -> Option<(Guarantee, Bytes)> {
        let front = self.queue.front_mut()?;
        let guarantee = front.guarantee;
        let frame = if front.sent_bytes > 0
            || WHOLE_HEADER_BYTES + front.payload.len() > self.max_frame_bytes
        {
            let total_len = front.payload.len();
            let offset = front.sent_bytes;
            let len = (total_len - offset).min(self.max_frame_bytes - FRAGMENT_HEADER_BYTES);
            let data = front.payload.slice(offset..offset + len);
            let last = offset + len == total_len;
            let (count, whole_bytes) = if last {
                self.queue.pop_front();
                self.queued_bytes -= total_len;
                self.whole_run(
                    guarantee,
                    self.max_frame_bytes - FRAGMENT_HEADER_BYTES - len,
                )
            } else {
                front.sent_bytes += len;
                (0, 0)
            };
            let mut frame = BytesMut::with_capacity(FRAGMENT_HEADER_BYTES + len + whole_bytes);
            frame.put_u8(KIND_FRAGMENT);
            frame.put_u32(wire_u32(total_len));
            frame.put_u32(wire_u32(offset));
            frame.put_u32(wire_u32(len));
            frame.put_slice(&data);
            self.put_whole(&mut frame, count);
            frame
        } else {
            let (count, whole_bytes) = self.whole_run(guarantee, self.max_frame_bytes);
            // The front message's record fits an empty frame (checked just
            // above), so the run holds at least it.
            assert!(count >= 1, "front message fits but was not packed");
            let mut frame = BytesMut::with_capacity(whole_bytes);
            self.put_whole(&mut frame, count);
            frame
        };
        // Every record added was checked against the room left.
        assert!(frame.len() <= self.max_frame_bytes, "frame too long");
        // The backlog counts exactly the frames next_frame produces, this one
        // included, and is zero exactly when the queue is empty.
        assert!(self.backlog_frames >= 1, "backlog out of step");
        self.backlog_frames -= 1;
        if self.queue.is_empty() {
            assert_eq!(self.backlog_frames, 0, "backlog out of step");
            assert_eq!(self.queued_bytes, 0, "queued bytes out of step");
            self.tail = None;
        }
        Some((guarantee, frame.freeze()))
    }

    /// Frames still to send if [`Packer::next_frame`] were called until
    /// `None`. Exact (saturating at `u32::MAX`).
    pub fn backlog_frames(&self) -> u32 {
        u32::try_from(self.backlog_frames).unwrap_or(u32::MAX)
    }

    /// Payload bytes queued (a partly sent message counts in full).
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Messages queued (a partly sent message counts).
    pub fn queued_messages(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The ring changed: receivers drop partial messages at a configuration
    /// change, so a message of which some fragments were sent is sent again
    /// from its first fragment. Messages already sent whole (their last
    /// fragment included) are gone from the queue and not resent. Frames
    /// already returned by `next_frame` are the caller's business.
    pub fn restart_partial(&mut self) {
        let chunk = self.fragment_bytes();
        if let Some(front) = self.queue.front_mut() {
            if front.sent_bytes > 0 {
                // Every fragment but the last fills its frame, and the last
                // one pops the message: sent bytes are whole fragments.
                assert_eq!(front.sent_bytes % chunk, 0, "partial fragment sent");
                self.backlog_frames += front.sent_bytes / chunk;
                front.sent_bytes = 0;
            }
        }
    }

    /// Data bytes of every fragment but a message's last.
    fn fragment_bytes(&self) -> usize {
        self.max_frame_bytes - FRAGMENT_HEADER_BYTES
    }

    /// How many queued messages from the front pack whole into `room` bytes
    /// with `guarantee`, and the bytes of their records.
    fn whole_run(&self, guarantee: Guarantee, mut room: usize) -> (usize, usize) {
        let mut count = 0;
        let mut bytes = 0;
        for queued in &self.queue {
            let record = WHOLE_HEADER_BYTES + queued.payload.len();
            if queued.guarantee != guarantee || queued.sent_bytes != 0 || record > room {
                break;
            }
            room -= record;
            bytes += record;
            count += 1;
        }
        (count, bytes)
    }

    /// Pop the first `count` messages into `frame` as whole records.
    fn put_whole(&mut self, frame: &mut BytesMut, count: usize) {
        for _ in 0..count {
            let Some(queued) = self.queue.pop_front() else {
                // `count` comes from `whole_run` over this same queue.
                unreachable!("whole run longer than the queue");
            };
            self.queued_bytes -= queued.payload.len();
            frame.put_u8(KIND_WHOLE);
            frame.put_u32(wire_u32(queued.payload.len()));
            frame.put_slice(&queued.payload);
        }
    }
}

/// A length or offset for a 4-byte wire field.
fn wire_u32(n: usize) -> u32 {
    // Every length and offset is at most max_message_bytes, which Packer::new
    // checked fits 4 bytes.
    u32::try_from(n).expect("length bounded by max_message_bytes")
}

impl Unpacker {
    /// An unpacker accepting messages up to `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Unpacker {
        Unpacker {
            max_message_bytes,
            partials: BTreeMap::new(),
        }
    }

    /// Split a delivered frame from `origin` into complete messages, calling
    /// `deliver` for each in order. Whole messages are zero-copy slices of
    /// `frame`; reassembled ones are the fragments' bytes, copied once.
    ///
    /// # Errors
    /// The first [`FrameError`] of the frame; see the module docs for which
    /// errors end the frame and which skip one record. The origin's partial
    /// message is dropped at the error (except for
    /// [`FrameError::Abandoned`], where the new first fragment is kept).
    pub fn push_frame(
        &mut self,
        origin: NodeId,
        frame: &Bytes,
        deliver: &mut dyn FnMut(Bytes),
    ) -> Result<(), FrameError> {
        if frame.is_empty() {
            self.partials.remove(&origin);
            return Err(FrameError::EmptyFrame);
        }
        let mut first_error = None;
        let mut pos = 0;
        while pos < frame.len() {
            if let Err(error) = self.record(origin, frame, &mut pos, deliver) {
                if error != FrameError::Abandoned {
                    self.partials.remove(&origin);
                }
                first_error.get_or_insert(error);
                if error.ends_frame() {
                    break;
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Configuration change: drop every partial message (the senders restart
    /// them, see [`Packer::restart_partial`]).
    pub fn reset(&mut self) {
        self.partials.clear();
    }

    /// Number of origins with a partial message.
    pub fn partial_count(&self) -> usize {
        self.partials.len()
    }

    /// Process the record at `*pos`, advancing `*pos` past it if its header
    /// could be read.
    fn record(
        &mut self,
        origin: NodeId,
        frame: &Bytes,
        pos: &mut usize,
        deliver: &mut dyn FnMut(Bytes),
    ) -> Result<(), FrameError> {
        let mut reader = Reader { frame, pos: *pos };
        match reader.u8()? {
            KIND_WHOLE => {
                let len = reader.u32_len()?;
                if len == 0 {
                    return Err(FrameError::EmptyRecord);
                }
                let data = reader.take(len)?;
                *pos = reader.pos;
                if len > self.max_message_bytes {
                    return Err(FrameError::TooBig(len));
                }
                let abandoned = self.partials.remove(&origin).is_some();
                deliver(data);
                if abandoned {
                    Err(FrameError::Abandoned)
                } else {
                    Ok(())
                }
            }
            KIND_FRAGMENT => {
                let total_len = reader.u32_len()?;
                let offset = reader.u32_len()?;
                let len = reader.u32_len()?;
                if len == 0 || total_len == 0 {
                    return Err(FrameError::EmptyRecord);
                }
                let data = reader.take(len)?;
                *pos = reader.pos;
                if total_len > self.max_message_bytes {
                    return Err(FrameError::TooBig(total_len));
                }
                match offset.checked_add(len) {
                    Some(end) if end <= total_len => {}
                    _ => return Err(FrameError::FragmentOverrun),
                }
                if offset == 0 {
                    let abandoned = self.partials.remove(&origin).is_some();
                    if len == total_len {
                        deliver(data);
                    } else {
                        // Allocates what arrived (len <= frame length), not
                        // total_len.
                        let partial = Partial {
                            total_len,
                            data: BytesMut::from(&data[..]),
                        };
                        self.partials.insert(origin, partial);
                    }
                    return if abandoned {
                        Err(FrameError::Abandoned)
                    } else {
                        Ok(())
                    };
                }
                let Some(partial) = self.partials.get_mut(&origin) else {
                    return Err(FrameError::NoPartial { offset });
                };
                if total_len != partial.total_len {
                    return Err(FrameError::TotalMismatch {
                        expected: partial.total_len,
                        got: total_len,
                    });
                }
                if offset != partial.data.len() {
                    return Err(FrameError::OffsetMismatch {
                        expected: partial.data.len(),
                        got: offset,
                    });
                }
                // Grows with the bytes received; offset + len <= total_len
                // <= max_message_bytes bounds it.
                partial.data.extend_from_slice(&data);
                if offset + len == total_len {
                    if let Some(done) = self.partials.remove(&origin) {
                        // Every fragment continued at the bytes received and
                        // the last one ended at total_len.
                        assert_eq!(done.data.len(), done.total_len, "reassembly length");
                        deliver(done.data.freeze());
                    }
                }
                Ok(())
            }
            kind => Err(FrameError::UnknownKind(kind)),
        }
    }
}

/// Reads a frame's fields, every read checked against the frame's end.
struct Reader<'a> {
    frame: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, len: usize) -> Result<Bytes, FrameError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.frame.len())
            .ok_or(FrameError::Truncated)?;
        let data = self.frame.slice(self.pos..end);
        self.pos = end;
        Ok(data)
    }

    fn u8(&mut self) -> Result<u8, FrameError> {
        let byte = *self.frame.get(self.pos).ok_or(FrameError::Truncated)?;
        self.pos += 1;
        Ok(byte)
    }

    /// A 4-byte big-endian length or offset.
    fn u32_len(&mut self) -> Result<usize, FrameError> {
        let end = self
            .pos
            .checked_add(4)
            .filter(|&end| end <= self.frame.len())
            .ok_or(FrameError::Truncated)?;
        let mut raw = [0u8; 4];
        raw.copy_from_slice(&self.frame[self.pos..end]);
        self.pos = end;
        // A u32 always fits usize on the platforms we build for (32/64 bit).
        Ok(u32::from_be_bytes(raw) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default `max_message_bytes` (1 MiB + 64 KiB).
    const MAX_MESSAGE: usize = (1 << 20) + 64 * 1024;
    const MIB: usize = 1 << 20;

    /// SplitMix64: a seeded generator, so every failure replays.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in `0..n` (n > 0; the modulo bias does not matter here).
        fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }

        /// Uniform in `lo..=hi`.
        fn range(&mut self, lo: usize, hi: usize) -> usize {
            lo + self.below(hi - lo + 1)
        }

        fn bytes(&mut self, len: usize) -> Bytes {
            let mut out = BytesMut::with_capacity(len);
            while out.len() < len {
                let word = self.next_u64().to_le_bytes();
                let n = word.len().min(len - out.len());
                out.put_slice(&word[..n]);
            }
            out.freeze()
        }

        fn guarantee(&mut self) -> Guarantee {
            if self.below(2) == 0 {
                Guarantee::Agreed
            } else {
                Guarantee::Safe
            }
        }

        /// A message size from 1 byte to `max`, mostly small, sometimes 1 MiB.
        fn size(&mut self, max: usize) -> usize {
            let hi = match self.below(20) {
                0..=11 => 64,
                12..=16 => 4096,
                17..=18 => 100_000,
                _ => MIB,
            };
            self.range(1, hi.min(max))
        }
    }

    fn node(raw: u32) -> NodeId {
        NodeId::new(raw).expect("nonzero")
    }

    /// Every frame the packer has, in order.
    fn drain(packer: &mut Packer) -> Vec<(Guarantee, Bytes)> {
        std::iter::from_fn(|| packer.next_frame()).collect()
    }

    /// Feeds frames that must all be valid; returns the messages.
    fn unpack(
        unpacker: &mut Unpacker,
        origin: NodeId,
        frames: &[(Guarantee, Bytes)],
    ) -> Vec<Bytes> {
        let mut out = Vec::new();
        for (_, frame) in frames {
            unpacker
                .push_frame(origin, frame, &mut |m| out.push(m))
                .expect("valid frame");
        }
        out
    }

    /// Feeds one frame; returns its result and what it delivered.
    fn feed(
        unpacker: &mut Unpacker,
        origin: NodeId,
        frame: &Bytes,
    ) -> (Result<(), FrameError>, Vec<Bytes>) {
        let mut out = Vec::new();
        let result = unpacker.push_frame(origin, frame, &mut |m| out.push(m));
        (result, out)
    }

    fn fragment(total_len: u32, offset: u32, data: &[u8]) -> Vec<u8> {
        let mut out = vec![KIND_FRAGMENT];
        out.extend_from_slice(&total_len.to_be_bytes());
        out.extend_from_slice(&offset.to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(data);
        out
    }

    fn whole(data: &[u8]) -> Vec<u8> {
        let mut out = vec![KIND_WHOLE];
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn frame_layout_is_the_documented_one() {
        let mut packer = Packer::new(100, 1000, 10_000);
        packer
            .push(Bytes::from_static(b"ab"), Guarantee::Agreed)
            .unwrap();
        packer
            .push(Bytes::from_static(b"c"), Guarantee::Agreed)
            .unwrap();
        let (g, frame) = packer.next_frame().unwrap();
        assert_eq!(g, Guarantee::Agreed);
        assert_eq!(
            &frame[..],
            &[0, 0, 0, 0, 2, b'a', b'b', 0, 0, 0, 0, 1, b'c']
        );

        let big: Vec<u8> = (0..200u8).collect();
        packer
            .push(Bytes::from(big.clone()), Guarantee::Safe)
            .unwrap();
        let (g, frame) = packer.next_frame().unwrap();
        assert_eq!(g, Guarantee::Safe);
        assert_eq!(frame.len(), 100);
        assert_eq!(&frame[..13], &[1, 0, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0, 87]);
        assert_eq!(&frame[13..], &big[..87]);
        let (_, frame) = packer.next_frame().unwrap();
        assert_eq!(&frame[..13], &[1, 0, 0, 0, 200, 0, 0, 0, 87, 0, 0, 0, 87]);
        let (_, frame) = packer.next_frame().unwrap();
        assert_eq!(&frame[..13], &[1, 0, 0, 0, 200, 0, 0, 0, 174, 0, 0, 0, 26]);
        assert_eq!(&frame[13..], &big[174..]);
        assert!(packer.next_frame().is_none());
    }

    #[test]
    fn many_small_messages_share_frames() {
        let mut packer = Packer::new(1400, MAX_MESSAGE, 1 << 20);
        for i in 0..1000u32 {
            packer
                .push(Bytes::from(format!("message{i:03}")), Guarantee::Agreed)
                .unwrap();
        }
        // 10-byte messages are 15-byte records: 93 to a 1400-byte frame.
        let backlog = packer.backlog_frames();
        let frames = drain(&mut packer);
        assert_eq!(frames.len(), 1000usize.div_ceil(93));
        assert_eq!(backlog as usize, frames.len());
        assert!(frames.iter().all(|(_, f)| f.len() <= 1400));
        let got = unpack(&mut Unpacker::new(MAX_MESSAGE), node(1), &frames);
        let want: Vec<Bytes> = (0..1000)
            .map(|i| Bytes::from(format!("message{i:03}")))
            .collect();
        assert_eq!(got, want);
        assert!(packer.is_empty());
        assert_eq!(packer.queued_bytes(), 0);
        assert_eq!(packer.backlog_frames(), 0);
    }

    /// Pushes and pulls at random; every frame goes straight to an unpacker.
    /// Checks order, content, guarantees, frame size and exact backlog.
    fn round_trip(seed: u64, max_frame_bytes: usize, max_size: usize, messages: usize) {
        let mut rng = Rng(seed);
        let origin = node(7);
        let mut packer = Packer::new(max_frame_bytes, MAX_MESSAGE, 4 << 20);
        let mut unpacker = Unpacker::new(MAX_MESSAGE);
        let mut pushed: Vec<(Guarantee, Bytes)> = Vec::new();
        let mut delivered: Vec<(Guarantee, Bytes)> = Vec::new();
        // Guarantees of the frames that completed no message: fragments of
        // the next message to complete.
        let mut fragments_of_next: Vec<Guarantee> = Vec::new();
        let mut fixed_sizes = vec![1, MIB.min(max_size), 1];
        loop {
            let pushing = pushed.len() < messages && (rng.below(3) != 0 || packer.is_empty());
            if pushing {
                let len = fixed_sizes.pop().unwrap_or_else(|| rng.size(max_size));
                let guarantee = rng.guarantee();
                let payload = rng.bytes(len);
                let before = packer.queued_bytes();
                match packer.push(payload.clone(), guarantee) {
                    Ok(()) => {
                        assert_eq!(packer.queued_bytes(), before + len);
                        pushed.push((guarantee, payload));
                    }
                    Err(McastError::QueueFull) => assert!(before + len > 4 << 20),
                    Err(e) => panic!("unexpected {e}"),
                }
                continue;
            }
            if rng.below(8) == 0 {
                // The backlog is exact: a copy drained yields that many.
                let mut copy = packer.clone();
                assert_eq!(drain(&mut copy).len(), packer.backlog_frames() as usize);
            }
            for _ in 0..rng.range(1, 40) {
                let backlog = packer.backlog_frames();
                let Some((guarantee, frame)) = packer.next_frame() else {
                    assert_eq!(backlog, 0);
                    break;
                };
                assert_eq!(packer.backlog_frames(), backlog - 1);
                assert!(!frame.is_empty() && frame.len() <= max_frame_bytes);
                let (result, got) = feed(&mut unpacker, origin, &frame);
                result.expect("valid frame");
                if got.is_empty() {
                    fragments_of_next.push(guarantee);
                } else {
                    assert!(fragments_of_next.drain(..).all(|g| g == guarantee));
                    delivered.extend(got.into_iter().map(|m| (guarantee, m)));
                }
            }
            if pushed.len() == messages && packer.is_empty() {
                break;
            }
        }
        assert!(fragments_of_next.is_empty());
        assert_eq!(unpacker.partial_count(), 0);
        assert_eq!(delivered.len(), pushed.len());
        for (i, (got, want)) in delivered.iter().zip(&pushed).enumerate() {
            assert!(got == want, "seed {seed}: message {i} differs");
        }
    }

    #[test]
    fn random_messages_round_trip_exactly() {
        for seed in 1..=4 {
            round_trip(seed, 1400, MIB, 250);
        }
        round_trip(5, 8192, MIB, 250);
        round_trip(6, 100, MIB, 120);
        round_trip(7, MIN_FRAME_BYTES, 300, 300);
        round_trip(8, 64, 2000, 1000);
    }

    #[test]
    fn one_mib_messages_fit_100_byte_frames() {
        let mut rng = Rng(42);
        let mut packer = Packer::new(100, MAX_MESSAGE, 8 << 20);
        let messages: Vec<Bytes> = vec![
            rng.bytes(MIB),
            rng.bytes(3),
            rng.bytes(MAX_MESSAGE),
            rng.bytes(MIB - 1),
        ];
        for m in &messages {
            packer.push(m.clone(), Guarantee::Safe).unwrap();
        }
        let backlog = packer.backlog_frames() as usize;
        let frames = drain(&mut packer);
        assert_eq!(frames.len(), backlog);
        // The 3-byte message rides after the first message's last fragment.
        let expected = MIB.div_ceil(87) + MAX_MESSAGE.div_ceil(87) + (MIB - 1).div_ceil(87);
        assert_eq!(frames.len(), expected);
        assert!(frames
            .iter()
            .all(|(g, f)| *g == Guarantee::Safe && f.len() <= 100));
        let got = unpack(&mut Unpacker::new(MAX_MESSAGE), node(1), &frames);
        assert!(got == messages, "reassembled messages differ");
    }

    #[test]
    fn a_frame_carries_one_guarantee() {
        use Guarantee::{Agreed, Safe};
        let mut packer = Packer::new(1400, MAX_MESSAGE, 1 << 20);
        for (text, g) in [
            ("a1", Agreed),
            ("a2", Agreed),
            ("s1", Safe),
            ("s2", Safe),
            ("a3", Agreed),
        ] {
            packer.push(Bytes::from_static(text.as_bytes()), g).unwrap();
        }
        assert_eq!(packer.backlog_frames(), 3);
        let frames = drain(&mut packer);
        let mut unpacker = Unpacker::new(MAX_MESSAGE);
        let per_frame: Vec<(Guarantee, Vec<Bytes>)> = frames
            .iter()
            .map(|(g, f)| (*g, feed(&mut unpacker, node(1), f).1))
            .collect();
        let b = |s: &'static str| Bytes::from_static(s.as_bytes());
        assert_eq!(
            per_frame,
            vec![
                (Agreed, vec![b("a1"), b("a2")]),
                (Safe, vec![b("s1"), b("s2")]),
                (Agreed, vec![b("a3")]),
            ]
        );

        // A last fragment is not followed by a message of the other guarantee.
        packer.push(Bytes::from(vec![9u8; 2000]), Safe).unwrap();
        packer.push(b("a4"), Agreed).unwrap();
        assert_eq!(packer.backlog_frames(), 3);
        let frames = drain(&mut packer);
        let guarantees: Vec<Guarantee> = frames.iter().map(|(g, _)| *g).collect();
        assert_eq!(guarantees, vec![Safe, Safe, Agreed]);
    }

    #[test]
    fn whole_messages_follow_a_last_fragment_but_never_precede_a_first() {
        let mut packer = Packer::new(100, MAX_MESSAGE, 1 << 20);
        let big = Bytes::from(vec![5u8; 150]);
        packer
            .push(Bytes::from_static(b"before"), Guarantee::Agreed)
            .unwrap();
        packer.push(big.clone(), Guarantee::Agreed).unwrap();
        packer
            .push(Bytes::from_static(b"after"), Guarantee::Agreed)
            .unwrap();
        let frames = drain(&mut packer);
        // "before" alone; first fragment (87 bytes); last fragment (63) + "after".
        let lens: Vec<usize> = frames.iter().map(|(_, f)| f.len()).collect();
        assert_eq!(lens, vec![5 + 6, 100, 13 + 63 + 5 + 5]);
        let got = unpack(&mut Unpacker::new(MAX_MESSAGE), node(1), &frames);
        assert_eq!(
            got,
            vec![
                Bytes::from_static(b"before"),
                big,
                Bytes::from_static(b"after")
            ]
        );
    }

    #[test]
    fn refused_pushes_leave_the_packer_unchanged() {
        let mut packer = Packer::new(100, 1000, 1500);
        packer
            .push(Bytes::from(vec![1u8; 1000]), Guarantee::Agreed)
            .unwrap();
        packer
            .push(Bytes::from(vec![2u8; 10]), Guarantee::Safe)
            .unwrap();
        // A partly sent message at the front.
        let (_, first_fragment) = packer.next_frame().unwrap();
        let before = packer.clone();
        assert_eq!(
            packer.push(Bytes::new(), Guarantee::Agreed),
            Err(McastError::Empty)
        );
        assert_eq!(packer, before);
        assert_eq!(
            packer.push(Bytes::from(vec![3u8; 1001]), Guarantee::Agreed),
            Err(McastError::TooBig(1001))
        );
        assert_eq!(packer, before);
        assert_eq!(
            packer.push(Bytes::from(vec![4u8; 491]), Guarantee::Agreed),
            Err(McastError::QueueFull)
        );
        assert_eq!(packer, before);
        assert_eq!(packer.queued_bytes(), 1010);
        // Exactly at the limit is accepted.
        packer
            .push(Bytes::from(vec![4u8; 490]), Guarantee::Agreed)
            .unwrap();
        assert_eq!(packer.queued_bytes(), 1500);
        let mut frames = vec![(Guarantee::Agreed, first_fragment)];
        frames.extend(drain(&mut packer));
        let got = unpack(&mut Unpacker::new(1000), node(1), &frames);
        let want = [vec![1u8; 1000], vec![2u8; 10], vec![4u8; 490]];
        assert_eq!(got, want.map(Bytes::from));
    }

    #[test]
    fn the_queue_is_bounded_in_messages_too() {
        // Plenty of bytes; room for three messages.
        let mut packer = Packer::new(100, 1000, 1 << 20).with_queue_limit_messages(3);
        for b in 0..3u8 {
            packer
                .push(Bytes::from(vec![b]), Guarantee::Agreed)
                .unwrap();
        }
        let before = packer.clone();
        assert_eq!(
            packer.push(Bytes::from(vec![9u8]), Guarantee::Agreed),
            Err(McastError::QueueFull),
            "a fourth one-byte message"
        );
        assert_eq!(packer, before, "a refused push changes nothing");
        assert_eq!((packer.queued_messages(), packer.queued_bytes()), (3, 3));
        // Sending frees the entries: the one frame holds all three.
        let frames = drain(&mut packer);
        assert_eq!(frames.len(), 1);
        assert_eq!(packer.queued_messages(), 0);
        packer
            .push(Bytes::from(vec![9u8]), Guarantee::Agreed)
            .unwrap();
        // A partly sent message still holds its entry until its last
        // fragment is out.
        let mut packer = Packer::new(100, 1000, 1 << 20).with_queue_limit_messages(1);
        packer
            .push(Bytes::from(vec![1u8; 300]), Guarantee::Agreed)
            .unwrap();
        packer.next_frame().unwrap();
        assert_eq!(
            packer.push(Bytes::from(vec![2u8]), Guarantee::Agreed),
            Err(McastError::QueueFull)
        );
        drain(&mut packer);
        packer
            .push(Bytes::from(vec![2u8]), Guarantee::Agreed)
            .unwrap();
    }

    #[test]
    fn restart_partial_resends_from_the_first_fragment() {
        let origin = node(3);
        let mut packer = Packer::new(100, MAX_MESSAGE, 1 << 20);
        let big = Rng(9).bytes(1000);
        packer
            .push(Bytes::from_static(b"sent whole"), Guarantee::Agreed)
            .unwrap();
        packer.push(big.clone(), Guarantee::Agreed).unwrap();
        packer
            .push(Bytes::from_static(b"later"), Guarantee::Agreed)
            .unwrap();
        // "sent whole" alone, then 12 fragments of 87 bytes (the last with
        // "later").
        assert_eq!(packer.backlog_frames(), 1 + 12);
        let mut old_ring = Unpacker::new(MAX_MESSAGE);
        let mut delivered = Vec::new();
        for _ in 0..4 {
            let (_, frame) = packer.next_frame().unwrap();
            old_ring
                .push_frame(origin, &frame, &mut |m| delivered.push(m))
                .unwrap();
        }
        assert_eq!(delivered, vec![Bytes::from_static(b"sent whole")]);
        assert_eq!(old_ring.partial_count(), 1);
        assert_eq!(packer.backlog_frames(), 9);

        // Configuration change on both ends.
        packer.restart_partial();
        old_ring.reset();
        assert_eq!(old_ring.partial_count(), 0);
        assert_eq!(packer.backlog_frames(), 12);
        let unchanged = packer.clone();
        packer.restart_partial(); // nothing partly sent now: no-op
        assert_eq!(packer, unchanged);

        let frames = drain(&mut packer);
        assert_eq!(frames.len(), 12);
        let want = vec![big, Bytes::from_static(b"later")];
        assert_eq!(unpack(&mut old_ring, origin, &frames), want);
        assert_eq!(
            unpack(&mut Unpacker::new(MAX_MESSAGE), origin, &frames),
            want
        );
    }

    #[test]
    fn a_missing_middle_fragment_loses_only_its_message() {
        let origin = node(2);
        let mut packer = Packer::new(100, MAX_MESSAGE, 1 << 20);
        let big = Rng(3).bytes(500);
        packer.push(big, Guarantee::Agreed).unwrap();
        packer
            .push(Bytes::from_static(b"x"), Guarantee::Agreed)
            .unwrap();
        let mut frames = drain(&mut packer);
        assert_eq!(frames.len(), 6); // 5 x 87 + (65 + "x")
        frames.remove(2);
        let mut unpacker = Unpacker::new(MAX_MESSAGE);
        assert_eq!(feed(&mut unpacker, origin, &frames[0].1), (Ok(()), vec![]));
        assert_eq!(feed(&mut unpacker, origin, &frames[1].1), (Ok(()), vec![]));
        assert_eq!(
            feed(&mut unpacker, origin, &frames[2].1),
            (
                Err(FrameError::OffsetMismatch {
                    expected: 174,
                    got: 261
                }),
                vec![]
            )
        );
        assert_eq!(unpacker.partial_count(), 0);
        assert_eq!(
            feed(&mut unpacker, origin, &frames[3].1),
            (Err(FrameError::NoPartial { offset: 348 }), vec![])
        );
        // The bad last fragment is skipped; the whole message after it is not.
        assert_eq!(
            feed(&mut unpacker, origin, &frames[4].1),
            (
                Err(FrameError::NoPartial { offset: 435 }),
                vec![Bytes::from_static(b"x")]
            )
        );
        // The next message from that origin goes through.
        let next = Rng(4).bytes(300);
        packer.push(next.clone(), Guarantee::Safe).unwrap();
        assert_eq!(
            unpack(&mut unpacker, origin, &drain(&mut packer)),
            vec![next]
        );
        assert_eq!(unpacker.partial_count(), 0);
    }

    #[test]
    fn interleaved_origins_reassemble_independently() {
        let mut rng = Rng(11);
        let origins = [node(1), node(5), node(9)];
        let mut pushed: BTreeMap<NodeId, Vec<Bytes>> = BTreeMap::new();
        let mut frames: BTreeMap<NodeId, VecDeque<Bytes>> = BTreeMap::new();
        for &origin in &origins {
            let mut packer = Packer::new(200, MAX_MESSAGE, 8 << 20);
            for _ in 0..100 {
                let len = rng.range(1, 3000);
                let m = rng.bytes(len);
                packer.push(m.clone(), rng.guarantee()).unwrap();
                pushed.entry(origin).or_default().push(m);
            }
            frames.insert(
                origin,
                drain(&mut packer).into_iter().map(|(_, f)| f).collect(),
            );
        }
        let mut unpacker = Unpacker::new(MAX_MESSAGE);
        let mut delivered: BTreeMap<NodeId, Vec<Bytes>> = BTreeMap::new();
        let mut max_partials = 0;
        while frames.values().any(|q| !q.is_empty()) {
            let origin = origins[rng.below(origins.len())];
            let Some(frame) = frames.get_mut(&origin).and_then(|q| q.pop_front()) else {
                continue;
            };
            let out = delivered.entry(origin).or_default();
            unpacker
                .push_frame(origin, &frame, &mut |m| out.push(m))
                .unwrap();
            max_partials = max_partials.max(unpacker.partial_count());
        }
        assert_eq!(delivered, pushed);
        assert!(
            max_partials >= 2,
            "the interleaving never overlapped partials"
        );
        assert_eq!(unpacker.partial_count(), 0);
    }

    #[test]
    fn a_new_start_abandons_the_pending_partial() {
        let origin = node(4);
        let mut unpacker = Unpacker::new(1000);
        let first = Bytes::from(fragment(10, 0, b"abcd"));
        assert_eq!(feed(&mut unpacker, origin, &first), (Ok(()), vec![]));
        // The same message started again (a sender restarted alone): the new
        // start is kept and completes.
        assert_eq!(
            feed(&mut unpacker, origin, &first),
            (Err(FrameError::Abandoned), vec![])
        );
        assert_eq!(unpacker.partial_count(), 1);
        let rest = Bytes::from(fragment(10, 4, b"efghij"));
        assert_eq!(
            feed(&mut unpacker, origin, &rest),
            (Ok(()), vec![Bytes::from_static(b"abcdefghij")])
        );
        // A whole message during a partial: delivered, partial dropped.
        assert_eq!(feed(&mut unpacker, origin, &first), (Ok(()), vec![]));
        let w = Bytes::from(whole(b"w"));
        assert_eq!(
            feed(&mut unpacker, origin, &w),
            (Err(FrameError::Abandoned), vec![Bytes::from_static(b"w")])
        );
        assert_eq!(unpacker.partial_count(), 0);
        // A single fragment holding the whole message is delivered at once.
        let single = Bytes::from(fragment(3, 0, b"xyz"));
        assert_eq!(
            feed(&mut unpacker, origin, &single),
            (Ok(()), vec![Bytes::from_static(b"xyz")])
        );
    }

    #[test]
    fn oversized_total_is_rejected_without_allocating() {
        let origin = node(1);
        let mut unpacker = Unpacker::new(1000);
        let huge = Bytes::from(fragment(u32::MAX, 0, b"abc"));
        assert_eq!(
            feed(&mut unpacker, origin, &huge),
            (Err(FrameError::TooBig(u32::MAX as usize)), vec![])
        );
        assert_eq!(unpacker.partial_count(), 0);
        let over = Bytes::from(fragment(1001, 0, b"abc"));
        assert_eq!(
            feed(&mut unpacker, origin, &over).0,
            Err(FrameError::TooBig(1001))
        );
        let whole_over = Bytes::from(whole(&[1u8; 1001]));
        assert_eq!(
            feed(&mut unpacker, origin, &whole_over).0,
            Err(FrameError::TooBig(1001))
        );
        assert_eq!(unpacker.partial_count(), 0);
        // An allowed total: the buffer holds what arrived, not the total.
        let mut unpacker = Unpacker::new(MAX_MESSAGE);
        let start = Bytes::from(fragment(MAX_MESSAGE as u32, 0, b"0123456789"));
        assert_eq!(feed(&mut unpacker, origin, &start), (Ok(()), vec![]));
        let partial = &unpacker.partials[&origin];
        assert_eq!(partial.data.len(), 10);
        assert!(
            partial.data.capacity() < 1024,
            "allocated by the announced total"
        );
    }

    #[test]
    fn malformed_frames_get_typed_errors() {
        let origin = node(1);
        let ok_then = |tail: &[u8]| {
            let mut frame = whole(b"ok");
            frame.extend_from_slice(tail);
            frame
        };
        let cases: Vec<(Vec<u8>, FrameError, usize)> = vec![
            (vec![], FrameError::EmptyFrame, 0),
            (vec![KIND_WHOLE], FrameError::Truncated, 0),
            (vec![KIND_WHOLE, 0, 0, 0], FrameError::Truncated, 0),
            (vec![KIND_WHOLE, 0, 0, 0, 0], FrameError::EmptyRecord, 0),
            (
                vec![KIND_WHOLE, 0, 0, 0, 3, b'a', b'b'],
                FrameError::Truncated,
                0,
            ),
            (vec![7], FrameError::UnknownKind(7), 0),
            (ok_then(&[9]), FrameError::UnknownKind(9), 1),
            (
                ok_then(&[KIND_FRAGMENT, 0, 0, 0, 5, 0, 0]),
                FrameError::Truncated,
                1,
            ),
            (fragment(5, 0, b""), FrameError::EmptyRecord, 0),
            (fragment(0, 0, b"a"), FrameError::EmptyRecord, 0),
            (fragment(4, 0, b"abcde"), FrameError::FragmentOverrun, 0),
            (fragment(4, u32::MAX, b"a"), FrameError::FragmentOverrun, 0),
            (
                fragment(4, 2, b"ab"),
                FrameError::NoPartial { offset: 2 },
                0,
            ),
        ];
        for (bytes, error, delivered) in cases {
            let frame = Bytes::from(bytes.clone());
            let mut unpacker = Unpacker::new(1000);
            let (result, got) = feed(&mut unpacker, origin, &frame);
            assert_eq!(result, Err(error), "frame {bytes:?}");
            assert_eq!(got.len(), delivered, "frame {bytes:?}");
            assert_eq!(unpacker.partial_count(), 0, "frame {bytes:?}");
            // With a partial message pending, the error drops it.
            let start = Bytes::from(fragment(100, 0, b"p"));
            unpacker.push_frame(origin, &start, &mut |_| {}).unwrap();
            assert!(feed(&mut unpacker, origin, &frame).0.is_err());
            assert_eq!(unpacker.partial_count(), 0, "frame {bytes:?}");
        }
        // Continuation errors.
        let mut unpacker = Unpacker::new(1000);
        let start = Bytes::from(fragment(10, 0, b"abc"));
        unpacker.push_frame(origin, &start, &mut |_| {}).unwrap();
        let wrong_total = Bytes::from(fragment(11, 3, b"d"));
        assert_eq!(
            feed(&mut unpacker, origin, &wrong_total).0,
            Err(FrameError::TotalMismatch {
                expected: 10,
                got: 11
            })
        );
        unpacker.push_frame(origin, &start, &mut |_| {}).unwrap();
        let duplicate = Bytes::from(fragment(10, 0, b"abc"));
        let mut frame = fragment(10, 3, b"def");
        frame.extend_from_slice(&fragment(10, 3, b"def"));
        assert_eq!(
            feed(&mut unpacker, origin, &Bytes::from(frame)).0,
            Err(FrameError::OffsetMismatch {
                expected: 6,
                got: 3
            })
        );
        assert_eq!(unpacker.partial_count(), 0);
        // Another origin's partial is untouched by these errors.
        unpacker
            .push_frame(node(2), &duplicate, &mut |_| {})
            .unwrap();
        assert_eq!(
            feed(&mut unpacker, origin, &Bytes::new()).0,
            Err(FrameError::EmptyFrame)
        );
        assert_eq!(unpacker.partial_count(), 1);
    }

    /// A frame from a real packer, then damaged at random.
    fn damaged_frame(rng: &mut Rng) -> Vec<u8> {
        let mut packer = Packer::new(rng.range(MIN_FRAME_BYTES, 80), 400, 1 << 20);
        for _ in 0..rng.range(1, 4) {
            let len = rng.range(1, 200);
            packer.push(rng.bytes(len), rng.guarantee()).unwrap();
        }
        let frames = drain(&mut packer);
        let mut frame = frames[rng.below(frames.len())].1.to_vec();
        match rng.below(4) {
            0 => {
                let i = rng.below(frame.len());
                frame[i] ^= 1 << rng.below(8);
            }
            1 => frame.truncate(rng.below(frame.len() + 1)),
            2 => {
                let i = rng.below(frame.len());
                frame[i] = rng.next_u64() as u8;
            }
            _ => {} // undamaged, but out of its sequence
        }
        frame
    }

    /// Records with random but plausible fields.
    fn random_records(rng: &mut Rng) -> Vec<u8> {
        let mut frame = Vec::new();
        for _ in 0..rng.range(1, 4) {
            let small = |rng: &mut Rng| match rng.below(4) {
                0 => rng.next_u64() as u32,
                1 => 0,
                _ => rng.range(1, 40) as u32,
            };
            let len = small(rng).min(64);
            let data = rng.bytes(len as usize);
            if rng.below(2) == 0 {
                frame.extend_from_slice(&whole(&data));
            } else {
                let (total, offset) = (small(rng), small(rng));
                frame.extend_from_slice(&fragment(total, offset, &data));
            }
            if rng.below(4) == 0 {
                frame.truncate(rng.below(frame.len() + 1));
            }
        }
        frame
    }

    #[test]
    fn garbage_never_panics_and_stays_bounded() {
        const MAX: usize = 400;
        let origins = [node(1), node(2), node(3)];
        let mut rng = Rng(0xDEAD_BEEF);
        let mut unpacker = Unpacker::new(MAX);
        let (mut oks, mut errors) = (0, 0);
        for case in 0..2000 {
            let origin = origins[rng.below(origins.len())];
            let frame = match rng.below(3) {
                0 => {
                    let len = rng.below(64);
                    rng.bytes(len).to_vec()
                }
                1 => damaged_frame(&mut rng),
                _ => random_records(&mut rng),
            };
            let mut delivered = Vec::new();
            match unpacker.push_frame(origin, &Bytes::from(frame), &mut |m| delivered.push(m)) {
                Ok(()) => oks += 1,
                Err(_) => errors += 1,
            }
            assert!(
                delivered.iter().all(|m| !m.is_empty() && m.len() <= MAX),
                "case {case}"
            );
            assert!(unpacker.partial_count() <= origins.len(), "case {case}");
            for partial in unpacker.partials.values() {
                assert!(partial.data.len() < partial.total_len && partial.total_len <= MAX);
                assert!(partial.data.capacity() <= 2 * MAX, "case {case}");
            }
            if rng.below(50) == 0 {
                unpacker.reset();
                assert_eq!(unpacker.partial_count(), 0);
            }
        }
        // The generator reaches both outcomes.
        assert!(oks > 100 && errors > 100, "oks {oks}, errors {errors}");
    }

    #[test]
    #[should_panic(expected = "max_frame_bytes")]
    fn a_frame_too_small_for_a_fragment_is_a_bug() {
        let _ = Packer::new(MIN_FRAME_BYTES - 1, 1000, 1000);
    }
}
