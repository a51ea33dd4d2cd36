//! Posted requests: a client that pipelines its multicasts marks each
//! request frame *posted* (`SA_AIS_ERR_TRY_AGAIN` in the request's error
//! field, see [`proto::frame`]) and does not wait for its answer before it
//! sends the next one. For such a request the node never answers TRY_AGAIN
//! because the service cannot take it *now* (Totem's send queue is full, or
//! the sync runs): it holds the request and hands it to the service again
//! once it can, and answers then. So a client that got a request out to the
//! executive may count it as accepted, and its answer still carries the
//! real result (any error other than TRY_AGAIN goes back as usual).
//!
//! Every request of a connection that has requests held waits behind them,
//! posted or not, so the connection's requests take effect in the order
//! they were sent. The hold is bounded per connection ([`MAX_HELD_FRAMES`],
//! [`MAX_HELD_BYTES`], above a client's window): past it a posted request
//! is answered TRY_AGAIN like any other.

use std::collections::{BTreeMap, VecDeque};

use proto::{AisError, Frame};
use services::ConnId;

/// Requests held per connection at most: above libais's window
/// (`ais::client::DEFAULT_POST_WINDOW` = 256 unanswered at a time), so a
/// libais client at its default never sees TRY_AGAIN for a posted request.
pub const MAX_HELD_FRAMES: usize = 512;

/// Body bytes held per connection at most (one maximum request always
/// fits; libais posts at most 256 KiB, or one larger request, at a time).
pub const MAX_HELD_BYTES: usize = 2 << 20;

/// Held bodies below this size are copied into a buffer of their own.
/// A frame's body is a slice of its connection's read buffer (64 KiB or
/// more, see `proto::FrameReader::recv_from`), which a held frame would
/// keep whole: 128 small held requests could pin 8 MiB while counting a
/// few KiB. Copied, a small held request pins what it counts; a larger
/// one at most a few times its size.
pub const OWN_BUFFER_BELOW_BYTES: usize = 16 << 10;

/// Whether `frame` is a posted request.
pub fn is_posted(frame: &Frame) -> bool {
    frame.status == Err(AisError::TryAgain)
}

/// One connection's held requests.
#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Frame>,
    bytes: usize,
}

/// Held requests of every connection (ordered by connection id, so the
/// order they are released in is deterministic).
#[derive(Debug, Default)]
pub(crate) struct Held {
    by_conn: BTreeMap<ConnId, Queue>,
}

impl Held {
    /// Whether `conn` has requests held.
    pub(crate) fn holds(&self, conn: ConnId) -> bool {
        self.by_conn.contains_key(&conn)
    }

    /// Holds `frame` behind `conn`'s others; gives it back if the hold is
    /// full.
    pub(crate) fn push_back(&mut self, conn: ConnId, mut frame: Frame) -> Result<(), Frame> {
        let q = self.by_conn.entry(conn).or_default();
        let bytes = q.bytes.saturating_add(frame.body.len());
        if !q.frames.is_empty() && (q.frames.len() >= MAX_HELD_FRAMES || bytes > MAX_HELD_BYTES) {
            return Err(frame);
        }
        q.bytes = bytes;
        if frame.body.len() < OWN_BUFFER_BELOW_BYTES {
            frame.body = bytes::Bytes::copy_from_slice(&frame.body);
        }
        q.frames.push_back(frame);
        Ok(())
    }

    /// Puts back the request [`Held::pop_next`] gave, in front.
    pub(crate) fn push_front(&mut self, conn: ConnId, frame: Frame) {
        let q = self.by_conn.entry(conn).or_default();
        q.bytes = q.bytes.saturating_add(frame.body.len());
        q.frames.push_front(frame);
    }

    /// The oldest held request of the first connection holding any.
    pub(crate) fn pop_next(&mut self) -> Option<(ConnId, Frame)> {
        let mut entry = self.by_conn.first_entry()?;
        let conn = *entry.key();
        let q = entry.get_mut();
        let frame = q.frames.pop_front();
        if let Some(f) = &frame {
            q.bytes -= f.body.len();
        }
        if q.frames.is_empty() {
            entry.remove();
        }
        frame.map(|f| (conn, f))
    }

    /// Drops what `conn` held (it closed).
    pub(crate) fn forget(&mut self, conn: ConnId) {
        self.by_conn.remove(&conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proto::ServiceId;

    fn req(id: u16, len: usize) -> Frame {
        let mut f = Frame::request(ServiceId::Evs, id, Bytes::from(vec![0; len]));
        f.status = Err(AisError::TryAgain);
        f
    }

    #[test]
    fn held_requests_come_back_in_order_per_connection_and_are_bounded() {
        let mut h = Held::default();
        let (a, b) = (ConnId(1), ConnId(2));
        assert!(is_posted(&req(1, 1)));
        assert!(!is_posted(&Frame::request(ServiceId::Evs, 1, Bytes::new())));
        for i in 0..MAX_HELD_FRAMES {
            h.push_back(b, req(u16::try_from(i).unwrap(), 1)).unwrap();
        }
        assert_eq!(h.push_back(b, req(999, 1)).unwrap_err().id, 999);
        h.push_back(a, req(7, 1)).unwrap();
        assert!(h.holds(a) && h.holds(b));
        let (c, f) = h.pop_next().unwrap();
        assert_eq!((c, f.id), (a, 7));
        assert!(!h.holds(a));
        h.push_front(a, f);
        assert_eq!(h.pop_next().map(|(c, f)| (c, f.id)), Some((a, 7)));
        for i in 0..MAX_HELD_FRAMES {
            let (c, f) = h.pop_next().unwrap();
            assert_eq!((c, usize::from(f.id)), (b, i));
        }
        assert!(h.pop_next().is_none());
        // One request above the byte bound still fits an empty hold.
        h.push_back(a, req(1, MAX_HELD_BYTES + 1)).unwrap();
        assert!(h.push_back(a, req(2, 1)).is_err());
        h.forget(a);
        assert!(!h.holds(a));
    }

    #[test]
    fn a_small_held_request_does_not_keep_its_read_buffer() {
        // As the connection's reader hands them out: slices of one buffer.
        let buffer = Bytes::from(vec![5u8; 256 << 10]);
        let mut h = Held::default();
        for (id, len) in [(1u16, 100), (2, OWN_BUFFER_BELOW_BYTES)] {
            let mut f = req(id, 0);
            f.body = buffer.slice(..len);
            h.push_back(ConnId(1), f).unwrap();
        }
        let (_, small) = h.pop_next().unwrap();
        let (_, large) = h.pop_next().unwrap();
        assert_eq!(small.body, buffer.slice(..100));
        assert!(
            !buffer.as_ptr_range().contains(&small.body.as_ptr()),
            "a small held body still points into the read buffer"
        );
        assert_eq!(
            large.body.as_ptr(),
            buffer.as_ptr(),
            "a large body is not copied"
        );
    }
}
