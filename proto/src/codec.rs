//! Frame bodies: a bounds-checked [`Decoder`] and its [`Encoder`].
//!
//! Bodies are little-endian like the frame header. Variable-length fields
//! are a `u32` length then the bytes; lists are a `u32` count then the
//! elements. Every length and count read from the wire is checked against a
//! caller-given maximum *and* against the bytes actually remaining before
//! anything is allocated, so a forged length can neither panic nor make the
//! reader allocate more than the input it was given.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::error::{status_from_code, Status};

/// Why a body did not decode. The decoder's position is unspecified after an
/// error; the body is to be dropped.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// A field needs `needed` bytes but only `remaining` are left.
    #[error("truncated: {what} needs {needed} bytes, {remaining} left")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the body.
        remaining: usize,
    },
    /// A length or count is above the maximum the message allows.
    #[error("{what} is {len}, more than the maximum {max}")]
    TooLong {
        /// The field being read.
        what: &'static str,
        /// The length or count on the wire.
        len: u64,
        /// The maximum for this field.
        max: u64,
    },
    /// A string field is not UTF-8.
    #[error("{what} is not valid UTF-8")]
    BadUtf8 {
        /// The field being read.
        what: &'static str,
    },
    /// A field holds a value outside its domain (a bool that is not 0 or 1,
    /// an unknown enum value).
    #[error("{what} has invalid value {value}")]
    BadValue {
        /// The field being read.
        what: &'static str,
        /// The value on the wire.
        value: u64,
    },
    /// The body is longer than its message.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
}

/// A cursor over an untrusted body. Every read is bounds-checked and returns
/// [`DecodeError`] instead of panicking.
#[derive(Clone, Debug)]
pub struct Decoder<'a> {
    rest: &'a [u8],
}

impl<'a> Decoder<'a> {
    /// A decoder over `body`.
    pub fn new(body: &'a [u8]) -> Decoder<'a> {
        Decoder { rest: body }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Checks that the whole body was read.
    ///
    /// # Errors
    /// [`DecodeError::TrailingBytes`] if bytes are left.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    /// The next `len` bytes, borrowed from the body.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] if fewer than `len` bytes are left.
    pub fn get_bytes(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        self.take("bytes", len)
    }

    /// Reads a `u8`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn get_u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_le_bytes(self.array("u8")?))
    }

    /// Reads a little-endian `u16`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn get_u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array("u16")?))
    }

    /// Reads a little-endian `u32`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn get_u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array("u32")?))
    }

    /// Reads a little-endian `u64`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn get_u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array("u64")?))
    }

    /// Reads a little-endian `i64`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn get_i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array("i64")?))
    }

    /// Reads a bool: one byte, 0 or 1.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`]; [`DecodeError::BadValue`] for any other
    /// byte.
    pub fn get_bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.get_u8()? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(DecodeError::BadValue {
                what,
                value: value.into(),
            }),
        }
    }

    /// Reads a status (`u32`): [`crate::SA_AIS_OK`] or a known error code.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`]; [`DecodeError::BadValue`] for an unknown
    /// code.
    pub fn get_status(&mut self) -> Result<Status, DecodeError> {
        let code = self.get_u32()?;
        status_from_code(code).ok_or(DecodeError::BadValue {
            what: "status",
            value: code.into(),
        })
    }

    /// Reads a length-prefixed byte string (`u32` length, then the bytes) of
    /// at most `max_len` bytes, borrowed from the body.
    ///
    /// # Errors
    /// [`DecodeError::TooLong`] if the length exceeds `max_len`;
    /// [`DecodeError::Truncated`] if the body is shorter than the length.
    pub fn get_len_prefixed(
        &mut self,
        what: &'static str,
        max_len: usize,
    ) -> Result<&'a [u8], DecodeError> {
        let len = self.get_u32()?;
        let len = checked_len(what, u64::from(len), max_len)?;
        self.take(what, len)
    }

    /// Reads a length-prefixed UTF-8 string of at most `max_len` bytes.
    ///
    /// # Errors
    /// As [`Decoder::get_len_prefixed`], and [`DecodeError::BadUtf8`].
    pub fn get_string(
        &mut self,
        what: &'static str,
        max_len: usize,
    ) -> Result<String, DecodeError> {
        let bytes = self.get_len_prefixed(what, max_len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::BadUtf8 { what })
    }

    /// Reads a list count (`u32`) for elements that each take at least
    /// `min_elem_bytes` on the wire. The count is checked against `max` and
    /// against the bytes remaining, so `Vec::with_capacity(count)` is bounded
    /// by the input's size.
    ///
    /// # Errors
    /// [`DecodeError::TooLong`] if the count exceeds `max`;
    /// [`DecodeError::Truncated`] if the remaining bytes cannot hold `count`
    /// elements.
    pub fn get_count(
        &mut self,
        what: &'static str,
        max: usize,
        min_elem_bytes: usize,
    ) -> Result<usize, DecodeError> {
        let count = checked_len(what, u64::from(self.get_u32()?), max)?;
        let needed = count.saturating_mul(min_elem_bytes);
        if needed > self.remaining() {
            return Err(DecodeError::Truncated {
                what,
                needed,
                remaining: self.remaining(),
            });
        }
        Ok(count)
    }

    fn take(&mut self, what: &'static str, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.rest.len() {
            return Err(DecodeError::Truncated {
                what,
                needed: len,
                remaining: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(what, N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| DecodeError::Truncated {
            what,
            needed: N,
            remaining: bytes.len(),
        })
    }
}

/// `len` as a `usize` if it is at most `max`.
fn checked_len(what: &'static str, len: u64, max: usize) -> Result<usize, DecodeError> {
    match usize::try_from(len) {
        Ok(len) if len <= max => Ok(len),
        _ => Err(DecodeError::TooLong {
            what,
            len,
            max: max as u64,
        }),
    }
}

/// Builds a body in the format [`Decoder`] reads.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: BytesMut,
}

impl Encoder {
    /// An empty body.
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// An empty body with room for `bytes` (a body with a large message is
    /// then written without growing and moving its buffer).
    pub fn with_capacity(bytes: usize) -> Encoder {
        Encoder {
            buf: BytesMut::with_capacity(bytes),
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Writes a `u8`.
    pub fn put_u8(&mut self, value: u8) -> &mut Encoder {
        self.buf.put_u8(value);
        self
    }

    /// Writes a little-endian `u16`.
    pub fn put_u16(&mut self, value: u16) -> &mut Encoder {
        self.buf.put_u16_le(value);
        self
    }

    /// Writes a little-endian `u32`.
    pub fn put_u32(&mut self, value: u32) -> &mut Encoder {
        self.buf.put_u32_le(value);
        self
    }

    /// Writes a little-endian `u64`.
    pub fn put_u64(&mut self, value: u64) -> &mut Encoder {
        self.buf.put_u64_le(value);
        self
    }

    /// Writes a little-endian `i64`.
    pub fn put_i64(&mut self, value: i64) -> &mut Encoder {
        self.buf.put_i64_le(value);
        self
    }

    /// Writes a bool as one byte, 0 or 1.
    pub fn put_bool(&mut self, value: bool) -> &mut Encoder {
        self.buf.put_u8(u8::from(value));
        self
    }

    /// Writes raw bytes (no length).
    pub fn put_bytes(&mut self, bytes: &[u8]) -> &mut Encoder {
        self.buf.put_slice(bytes);
        self
    }

    /// Writes a `u32` length then the bytes.
    ///
    /// # Panics
    /// If `bytes` is 4 GiB or longer: far above any frame, so only a bug
    /// in the caller gets there (bodies are bounded by
    /// [`MAX_BODY_BYTES`](crate::frame::MAX_BODY_BYTES)).
    pub fn put_len_prefixed(&mut self, bytes: &[u8]) -> &mut Encoder {
        self.put_count(bytes.len());
        self.buf.put_slice(bytes);
        self
    }

    /// Writes a string as [`Encoder::put_len_prefixed`] does.
    ///
    /// # Panics
    /// As [`Encoder::put_len_prefixed`].
    pub fn put_str(&mut self, value: &str) -> &mut Encoder {
        self.put_len_prefixed(value.as_bytes())
    }

    /// Writes a list count as a `u32`.
    ///
    /// # Panics
    /// If `count` does not fit a `u32` (a caller bug: see
    /// [`Encoder::put_len_prefixed`]).
    pub fn put_count(&mut self, count: usize) -> &mut Encoder {
        // Upheld by the callers: every list and string we encode is bounded
        // far below 4 Gi elements by its message's own maximum.
        let count = u32::try_from(count).expect("length or count fits in a u32");
        self.buf.put_u32_le(count);
        self
    }

    /// The body.
    pub fn finish(self) -> Bytes {
        self.buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn scalars_round_trip() {
        let mut enc = Encoder::new();
        enc.put_u8(7)
            .put_u16(0xBEEF)
            .put_u32(0xDEAD_BEEF)
            .put_u64(u64::MAX - 1)
            .put_i64(-5)
            .put_bool(true)
            .put_bool(false)
            .put_bytes(b"raw")
            .put_len_prefixed(b"prefixed")
            .put_str("name")
            .put_count(3);
        let body = enc.finish();
        let mut dec = Decoder::new(&body);
        assert_eq!(dec.get_u8(), Ok(7));
        assert_eq!(dec.get_u16(), Ok(0xBEEF));
        assert_eq!(dec.get_u32(), Ok(0xDEAD_BEEF));
        assert_eq!(dec.get_u64(), Ok(u64::MAX - 1));
        assert_eq!(dec.get_i64(), Ok(-5));
        assert_eq!(dec.get_bool("b"), Ok(true));
        assert_eq!(dec.get_bool("b"), Ok(false));
        assert_eq!(dec.get_bytes(3), Ok(&b"raw"[..]));
        assert_eq!(dec.get_len_prefixed("p", 8), Ok(&b"prefixed"[..]));
        assert_eq!(dec.get_string("s", 4), Ok("name".to_owned()));
        assert_eq!(dec.get_u32(), Ok(3));
        assert_eq!(dec.finish(), Ok(()));
    }

    #[test]
    fn little_endian_on_the_wire() {
        let mut enc = Encoder::new();
        enc.put_u32(0x0102_0304);
        assert_eq!(&enc.finish()[..], &[4, 3, 2, 1]);
    }

    #[test]
    fn truncation_is_an_error() {
        let mut dec = Decoder::new(&[1, 2, 3]);
        assert!(matches!(
            dec.get_u32(),
            Err(DecodeError::Truncated {
                needed: 4,
                remaining: 3,
                ..
            })
        ));
        assert!(dec.get_bytes(4).is_err());
        assert_eq!(dec.get_bytes(3), Ok(&[1, 2, 3][..]));
        assert!(dec.get_u8().is_err());
    }

    #[test]
    fn lengths_are_checked_before_allocation() {
        // A 4 GiB length in a 4-byte body: refused by the maximum.
        let mut dec = Decoder::new(&[0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(matches!(
            dec.get_len_prefixed("x", 1024),
            Err(DecodeError::TooLong { .. })
        ));
        // Within the maximum but past the end of the body.
        let mut dec = Decoder::new(&[10, 0, 0, 0, 1, 2]);
        assert!(matches!(
            dec.get_len_prefixed("x", 1024),
            Err(DecodeError::Truncated { needed: 10, .. })
        ));
        // A count whose elements could not fit in what remains.
        let mut dec = Decoder::new(&[100, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(
            dec.get_count("members", 1000, 4),
            Err(DecodeError::Truncated { .. })
        ));
        let mut dec = Decoder::new(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(dec.get_count("members", 1000, 4), Ok(2));
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(matches!(
            Decoder::new(&[2]).get_bool("flag"),
            Err(DecodeError::BadValue { value: 2, .. })
        ));
        assert!(matches!(
            Decoder::new(&[2, 0, 0, 0, 0xFF, 0xFE]).get_string("s", 10),
            Err(DecodeError::BadUtf8 { .. })
        ));
        assert_eq!(
            Decoder::new(&[1, 2]).finish(),
            Err(DecodeError::TrailingBytes(2))
        );
        assert!(matches!(
            Decoder::new(&0xFFFF_FFFFu32.to_le_bytes()).get_status(),
            Err(DecodeError::BadValue {
                what: "status",
                value: 0xFFFF_FFFF
            })
        ));
    }

    #[test]
    fn statuses_round_trip() {
        use crate::error::{status_code, AisError};
        for status in [Ok(()), Err(AisError::TryAgain), Err(AisError::NoSections)] {
            let mut enc = Encoder::new();
            enc.put_u32(status_code(status));
            let body = enc.finish();
            assert_eq!(Decoder::new(&body).get_status(), Ok(status));
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256), max in 0usize..64) {
            let mut dec = Decoder::new(&bytes);
            // Try every reader in turn until one fails; none may panic.
            loop {
                let ok = dec.get_u8().is_ok()
                    && dec.get_string("s", max).is_ok()
                    && dec.get_count("c", max, 2).is_ok()
                    && dec.get_len_prefixed("p", max).is_ok()
                    && dec.get_bool("b").is_ok()
                    && dec.get_u64().is_ok();
                if !ok {
                    break;
                }
            }
        }

        #[test]
        fn strings_round_trip(value in ".{0,40}") {
            let mut enc = Encoder::new();
            enc.put_str(&value);
            let body = enc.finish();
            let mut dec = Decoder::new(&body);
            prop_assert_eq!(dec.get_string("s", value.len()), Ok(value));
            prop_assert_eq!(dec.finish(), Ok(()));
        }
    }
}
