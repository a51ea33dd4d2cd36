//! The bench's own message: a fixed 40-byte header at the start of every
//! multicast, padded with zeros to the message size.
//!
//! The layout matches the corosync harness's `struct hdr` in size (40 bytes,
//! so a "64-byte message" carries the same payload on both sides), all
//! fields little-endian:
//!
//! ```text
//! 0  magic  u32   "AISB"
//! 4  kind   u32   Data 1, End 2, Latency 3, Ready 4
//! 8  pid    u32   the sending process
//! 12 stream u32   the sending participant within that process
//! 16 seq    u64   per-stream sequence number (Data, Latency)
//! 24 t_send u64   CLOCK_MONOTONIC at send, in ns (Latency: one-way delay)
//! 32 total  u64   End: Data messages sent; Ready: participants seen
//! ```
//!
//! A stream is named by the delivering node's id (from the EVS delivery),
//! the pid and the stream number: [`StreamKey`].

/// "AISB", little-endian.
pub const MAGIC: u32 = u32::from_le_bytes(*b"AISB");

/// Bytes of the header; every message is at least this long.
pub const HEADER_BYTES: usize = 40;

/// What a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A throughput message.
    Data,
    /// A stream's last message: `total` is how many Data it sent.
    End,
    /// A latency probe.
    Latency,
    /// The start barrier: this participant has joined the group.
    Ready,
}

impl Kind {
    fn code(self) -> u32 {
        match self {
            Kind::Data => 1,
            Kind::End => 2,
            Kind::Latency => 3,
            Kind::Ready => 4,
        }
    }

    fn from_code(code: u32) -> Option<Kind> {
        match code {
            1 => Some(Kind::Data),
            2 => Some(Kind::End),
            3 => Some(Kind::Latency),
            4 => Some(Kind::Ready),
            _ => None,
        }
    }
}

/// Who sent a message: node id, process id, participant number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamKey {
    /// The node the message came from (from the EVS delivery).
    pub node_id: u32,
    /// The sending process.
    pub pid: u32,
    /// The participant within that process.
    pub stream: u32,
}

/// A decoded header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// What the message is.
    pub kind: Kind,
    /// The sending process.
    pub pid: u32,
    /// The participant within that process.
    pub stream: u32,
    /// Per-stream sequence number.
    pub seq: u64,
    /// CLOCK_MONOTONIC at send, ns.
    pub t_send_ns: u64,
    /// End: Data messages sent; Ready: participants seen.
    pub total: u64,
}

impl Header {
    /// Writes the header into the first [`HEADER_BYTES`] of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`HEADER_BYTES`]: callers size their
    /// buffers with [`message_bytes`], which is never less.
    pub fn write(&self, buf: &mut [u8]) {
        assert!(
            buf.len() >= HEADER_BYTES,
            "buffers are sized by message_bytes"
        );
        buf[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        buf[4..8].copy_from_slice(&self.kind.code().to_le_bytes());
        buf[8..12].copy_from_slice(&self.pid.to_le_bytes());
        buf[12..16].copy_from_slice(&self.stream.to_le_bytes());
        buf[16..24].copy_from_slice(&self.seq.to_le_bytes());
        buf[24..32].copy_from_slice(&self.t_send_ns.to_le_bytes());
        buf[32..40].copy_from_slice(&self.total.to_le_bytes());
    }

    /// The header of `msg`, or `None` if it is not a bench message (another
    /// client of the same group, a short or foreign message).
    pub fn read(msg: &[u8]) -> Option<Header> {
        let h = msg.get(..HEADER_BYTES)?;
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let u64_at = |i: usize| {
            let mut b = [0; 8];
            b.copy_from_slice(&h[i..i + 8]);
            u64::from_le_bytes(b)
        };
        if u32_at(0) != MAGIC {
            return None;
        }
        Some(Header {
            kind: Kind::from_code(u32_at(4))?,
            pid: u32_at(8),
            stream: u32_at(12),
            seq: u64_at(16),
            t_send_ns: u64_at(24),
            total: u64_at(32),
        })
    }
}

/// The size a message of `size_bytes` gets: never less than the header.
pub fn message_bytes(size_bytes: usize) -> usize {
    size_bytes.max(HEADER_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_foreign_messages_are_ignored() {
        let h = Header {
            kind: Kind::End,
            pid: 7,
            stream: 2,
            seq: u64::MAX - 1,
            t_send_ns: 12345,
            total: 99,
        };
        let mut buf = vec![0; message_bytes(10)];
        assert_eq!(buf.len(), HEADER_BYTES);
        h.write(&mut buf);
        assert_eq!(Header::read(&buf), Some(h));
        assert_eq!(Header::read(&buf[..HEADER_BYTES - 1]), None, "short");
        buf[0] ^= 1;
        assert_eq!(Header::read(&buf), None, "foreign magic");
        buf[0] ^= 1;
        buf[4] = 9;
        assert_eq!(Header::read(&buf), None, "unknown kind");
    }
}
