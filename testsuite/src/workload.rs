//! The application load the simulator puts on the ring.
//!
//! Every application message carries its own identity, so a delivery can be
//! traced back to one `handle_mcast` call on one node in one incarnation:
//!
//! ```text
//! offset size field
//! 0      4    origin node id
//! 4      4    incarnation of the origin (how many times it had started before)
//! 8      8    counter (per origin incarnation, from 0)
//! 16     4    total length of the message in bytes (this header included)
//! 20     n    padding: byte i is `pad_byte(id, i)`
//! ```
//!
//! All integers big-endian. [`decode`] checks the length and every padding
//! byte, so a delivery that was truncated, corrupted, or stitched together
//! from the wrong fragments is caught, not just one with a wrong id.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use totem::{Guarantee, NodeId};

/// Bytes of the header every message starts with: the smallest message.
pub const HEADER_BYTES: usize = 20;
/// Largest small message.
pub const SMALL_MAX_BYTES: usize = 200;
/// Medium messages: 1 KiB ..= 8 KiB.
pub const MEDIUM_BYTES: (usize, usize) = (1024, 8 * 1024);
/// Large messages: 64 KiB ..= 1 MiB (fragmented by the protocol).
pub const LARGE_BYTES: (usize, usize) = (64 * 1024, 1 << 20);

/// The identity of one application message.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgId {
    /// The node that queued it.
    pub origin: NodeId,
    /// The origin's incarnation (0 for the first start, +1 per restart).
    pub incarnation: u32,
    /// Per origin incarnation, from 0.
    pub counter: u64,
}

impl fmt::Debug for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "m{}.{}.{}",
            self.origin.get(),
            self.incarnation,
            self.counter
        )
    }
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The shape of the load: how often each node sends, and what.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadConfig {
    /// Mean time between two messages of one node (exponentially
    /// distributed, so sends come at random times and sometimes in bursts).
    pub mean_interval: Duration,
    /// Probability that a message is medium (1..8 KiB).
    pub p_medium: f64,
    /// Probability that a message is large (64 KiB..1 MiB).
    pub p_large: f64,
    /// Smallest and largest size of a large message.
    pub large_bytes: (usize, usize),
    /// Probability that a message asks for Safe rather than Agreed delivery.
    pub p_safe: f64,
}

impl Default for WorkloadConfig {
    /// 20 messages per second per node, mostly small, a few medium, rarely
    /// one that needs hundreds of fragments; a third of them Safe.
    fn default() -> WorkloadConfig {
        WorkloadConfig {
            mean_interval: Duration::from_millis(50),
            p_medium: 0.08,
            p_large: 0.002,
            large_bytes: LARGE_BYTES,
            p_safe: 0.3,
        }
    }
}

impl WorkloadConfig {
    /// Time until a node's next message.
    pub fn next_interval<R: Rng>(&self, rng: &mut R) -> Duration {
        // Exponential: -mean * ln(1 - u), u in [0, 1); capped at 20 means
        // so one unlucky draw cannot silence a node for the whole run.
        let u: f64 = rng.random();
        let factor = (-(1.0 - u).ln()).min(20.0);
        self.mean_interval.mul_f64(factor)
    }

    /// Size and guarantee of the next message.
    pub fn next_message<R: Rng>(&self, rng: &mut R) -> (usize, Guarantee) {
        let roll: f64 = rng.random();
        let bytes = if roll < self.p_large {
            rng.random_range(self.large_bytes.0..=self.large_bytes.1)
        } else if roll < self.p_large + self.p_medium {
            rng.random_range(MEDIUM_BYTES.0..=MEDIUM_BYTES.1)
        } else {
            rng.random_range(HEADER_BYTES..=SMALL_MAX_BYTES)
        };
        let guarantee = if rng.random_bool(self.p_safe) {
            Guarantee::Safe
        } else {
            Guarantee::Agreed
        };
        (bytes, guarantee)
    }
}

/// Per-message seed of the padding pattern.
fn pad_seed(id: MsgId) -> u8 {
    let mix = (id.counter as u32)
        .wrapping_mul(0x9E37_79B9)
        .wrapping_add(id.origin.get().wrapping_mul(0x85EB_CA6B))
        .wrapping_add(id.incarnation.wrapping_mul(0xC2B2_AE35));
    (mix >> 24) as u8
}

/// The position-dependent part of padding byte `i`; the byte is
/// `seed + pad_offset(i)`. The high bits of `i` take part, so a fragment
/// moved by a multiple of 256 bytes shows too.
#[inline]
fn pad_offset(i: usize) -> u8 {
    (i as u8)
        .wrapping_mul(31)
        .wrapping_add((i >> 8) as u8)
        .wrapping_add((i >> 16) as u8)
}

/// `pad_offset(i)` for every offset of the largest message, computed once,
/// so that encoding and checking are plain vector loops over memory.
fn pad_table() -> &'static [u8] {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    TABLE.get_or_init(|| (0..=LARGE_BYTES.1).map(pad_offset).collect())
}

/// Padding byte at offset `i` of a message whose seed is `seed`.
#[inline]
fn pad_byte(seed: u8, i: usize) -> u8 {
    seed.wrapping_add(pad_offset(i))
}

/// The payload of message `id`, `bytes` long (at least [`HEADER_BYTES`]).
///
/// # Panics
/// If `bytes` is shorter than the header or does not fit the length field:
/// the workload never asks for that.
pub fn encode(id: MsgId, bytes: usize) -> Bytes {
    assert!(bytes >= HEADER_BYTES, "a message holds at least its header");
    let len = u32::try_from(bytes).expect("message sizes stay far below 4 GiB");
    let mut out = Vec::with_capacity(bytes);
    out.extend_from_slice(&id.origin.get().to_be_bytes());
    out.extend_from_slice(&id.incarnation.to_be_bytes());
    out.extend_from_slice(&id.counter.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    let seed = pad_seed(id);
    match pad_table().get(HEADER_BYTES..bytes) {
        Some(offsets) => out.extend(offsets.iter().map(|o| seed.wrapping_add(*o))),
        None => out.extend((HEADER_BYTES..bytes).map(|i| pad_byte(seed, i))),
    }
    Bytes::from(out)
}

/// The id of a delivered payload, after checking every byte of it.
///
/// # Errors
/// A description of what is wrong: too short, a zero origin, a length that
/// does not match, or the first padding byte that differs.
pub fn decode(payload: &[u8]) -> Result<MsgId, String> {
    if payload.len() < HEADER_BYTES {
        return Err(format!(
            "payload of {} bytes is shorter than the {HEADER_BYTES}-byte header",
            payload.len()
        ));
    }
    let u32_at =
        |o: usize| u32::from_be_bytes([payload[o], payload[o + 1], payload[o + 2], payload[o + 3]]);
    let mut counter = [0u8; 8];
    counter.copy_from_slice(&payload[8..16]);
    let origin = NodeId::new(u32_at(0)).ok_or_else(|| "origin 0 in payload".to_string())?;
    let id = MsgId {
        origin,
        incarnation: u32_at(4),
        counter: u64::from_be_bytes(counter),
    };
    let len = u32_at(16) as usize;
    if len != payload.len() {
        return Err(format!(
            "{id}: payload is {} bytes but says {len}",
            payload.len()
        ));
    }
    let seed = pad_seed(id);
    // Branch-free over the whole payload (this runs for every delivery on
    // every node, megabytes per run); find the culprit only if needed.
    let diff = match pad_table().get(HEADER_BYTES..payload.len()) {
        Some(offsets) => payload[HEADER_BYTES..]
            .iter()
            .zip(offsets)
            .fold(0u8, |acc, (&b, &o)| acc | (b.wrapping_sub(o) ^ seed)),
        None => payload[HEADER_BYTES..]
            .iter()
            .zip(HEADER_BYTES..)
            .fold(0u8, |acc, (&b, i)| acc | (b ^ pad_byte(seed, i))),
    };
    if diff != 0 {
        let i = (HEADER_BYTES..payload.len())
            .find(|&i| payload[i] != pad_byte(seed, i))
            .unwrap_or(0);
        return Err(format!("{id}: byte {i} of {len} is corrupt"));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn id(origin: u32, counter: u64) -> MsgId {
        MsgId {
            origin: NodeId::new(origin).expect("nonzero"),
            incarnation: 2,
            counter,
        }
    }

    #[test]
    fn payload_round_trips_and_corruption_is_caught() {
        for bytes in [HEADER_BYTES, 21, 200, 5000, 300_000] {
            let p = encode(id(3, 77), bytes);
            assert_eq!(p.len(), bytes);
            assert_eq!(decode(&p), Ok(id(3, 77)));
        }
        let p = encode(id(3, 77), 4000);
        assert!(decode(&p[..3999]).is_err(), "truncated");
        let mut v = p.to_vec();
        v[2500] ^= 1;
        assert!(decode(&v).unwrap_err().contains("byte 2500"));
        // A fragment of another message in the middle.
        let other = encode(id(3, 78), 4000);
        let mut v = p.to_vec();
        v[1400..2800].copy_from_slice(&other[1400..2800]);
        assert!(decode(&v).is_err());
        assert!(decode(&[0u8; 10]).is_err());
    }

    #[test]
    fn sizes_follow_the_mix() {
        let w = WorkloadConfig::default();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (mut small, mut medium, mut large, mut safe) = (0, 0, 0, 0);
        let n = 100_000;
        for _ in 0..n {
            let (b, g) = w.next_message(&mut rng);
            match b {
                HEADER_BYTES..=SMALL_MAX_BYTES => small += 1,
                1024..=8192 => medium += 1,
                _ => {
                    assert!((LARGE_BYTES.0..=LARGE_BYTES.1).contains(&b));
                    large += 1;
                }
            }
            safe += usize::from(g == Guarantee::Safe);
        }
        assert!(small > n * 85 / 100, "{small}");
        assert!((n * 6 / 100..n * 10 / 100).contains(&medium), "{medium}");
        assert!((100..400).contains(&large), "{large}");
        assert!((n * 27 / 100..n * 33 / 100).contains(&safe), "{safe}");
        let total: Duration = (0..10_000).map(|_| w.next_interval(&mut rng)).sum();
        let mean_ms = total.as_secs_f64() * 1000.0 / 10_000.0;
        assert!((45.0..55.0).contains(&mean_ms), "{mean_ms}");
    }
}
