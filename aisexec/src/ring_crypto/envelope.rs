//! The sealed datagram: one Totem packet encrypted and authenticated with
//! an AEAD under the cluster's packet key.
//!
//! ```text
//! offset size field
//! 0      2    magic 0x4145 ("AE"), never Totem's "TM"
//! 2      1    envelope version (ENVELOPE_VERSION)
//! 3      1    cipher id (Cipher::id)
//! 4      4    sender node id, big-endian
//! 8      n    nonce (24 bytes for XChaCha20-Poly1305, 12 for AES-GCM)
//! 8+n    m    ciphertext of the Totem packet (same length as it)
//! 8+n+m  16   AEAD tag
//! ```
//!
//! Bytes 0..8 are the associated data: not secret, but authenticated, so
//! a flipped bit anywhere (header, nonce, ciphertext, tag) fails the tag.
//! The magic, version and cipher are checked first only to know how to
//! open the rest; the sender id is compared with the source address's
//! node id after the tag verified it.
//!
//! # Nonces
//! A nonce must never repeat under one key, and every node of the cluster
//! seals with the same key. Each [`PacketKey`] draws its nonce start from
//! the OS random generator when it is loaded (at every start and rekey)
//! and then counts up by one per packet: the last 8 bytes are a counter
//! starting at a random value, the bytes before them a random prefix (16
//! bytes for XChaCha20, 4 for AES-GCM). Two nodes, or two boots of one
//! node, repeat a nonce only if their random prefixes are equal *and* their
//! counter ranges overlap: about 2^-128 for XChaCha20, about 2^-56 per pair
//! of key loads sending 2^40 packets each for AES-GCM.

use std::fmt;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use chacha20poly1305::aead::inout::InOutBuf;
use chacha20poly1305::{AeadInOut, KeyInit, XChaCha20Poly1305};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};

/// First two bytes of a sealed datagram.
pub const MAGIC: [u8; 2] = *b"AE";
/// Bumped on any incompatible change of the envelope.
pub const ENVELOPE_VERSION: u8 = 1;
/// Bytes of the authenticated header (magic, version, cipher, sender).
pub const HEADER_BYTES: usize = 8;
/// Bytes of the AEAD tag.
pub const TAG_BYTES: usize = 16;
/// Bytes of the random nonce prefix is `nonce_bytes - COUNTER_BYTES`.
const COUNTER_BYTES: usize = 8;
/// The largest nonce of the ciphers offered.
const MAX_NONCE_BYTES: usize = 24;

/// The AEADs offered (`totem { crypto_cipher }`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cipher {
    /// XChaCha20-Poly1305, 192-bit nonces (`chacha20poly1305`): constant
    /// time without AES instructions, and its long nonce puts a repeat
    /// across restarts out of reach.
    XChaCha20Poly1305,
    /// AES-256-GCM (`aes256`, the default), 96-bit nonces.
    Aes256Gcm,
    /// AES-128-GCM (`aes128`), 96-bit nonces.
    Aes128Gcm,
}

impl Cipher {
    /// Every cipher, for tests and messages.
    pub const ALL: [Cipher; 3] = [
        Cipher::XChaCha20Poly1305,
        Cipher::Aes256Gcm,
        Cipher::Aes128Gcm,
    ];

    /// The id in the envelope header.
    pub fn id(self) -> u8 {
        match self {
            Cipher::XChaCha20Poly1305 => 1,
            Cipher::Aes256Gcm => 2,
            Cipher::Aes128Gcm => 3,
        }
    }

    /// The config name (`crypto_cipher`).
    pub fn name(self) -> &'static str {
        match self {
            Cipher::XChaCha20Poly1305 => "chacha20poly1305",
            Cipher::Aes256Gcm => "aes256",
            Cipher::Aes128Gcm => "aes128",
        }
    }

    /// Key length in bytes.
    pub fn key_bytes(self) -> usize {
        match self {
            Cipher::XChaCha20Poly1305 | Cipher::Aes256Gcm => 32,
            Cipher::Aes128Gcm => 16,
        }
    }

    /// Nonce length in bytes.
    pub fn nonce_bytes(self) -> usize {
        match self {
            Cipher::XChaCha20Poly1305 => 24,
            Cipher::Aes256Gcm | Cipher::Aes128Gcm => 12,
        }
    }

    /// Bytes a sealed datagram has beyond its Totem packet.
    pub fn overhead_bytes(self) -> usize {
        HEADER_BYTES + self.nonce_bytes() + TAG_BYTES
    }
}

impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cipher::XChaCha20Poly1305 => "XChaCha20-Poly1305",
            Cipher::Aes256Gcm => "AES-256-GCM",
            Cipher::Aes128Gcm => "AES-128-GCM",
        })
    }
}

/// Why a datagram was not opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Too short, or the magic, version or cipher is not ours: not a
    /// sealed datagram this node can open.
    BadEnvelope,
    /// The tag did not verify: tampered with, or sealed under another key.
    AuthFailed,
    /// Authentic, but the sender id in it is not the node at the source
    /// address (a member's packet replayed from another member's address).
    SenderMismatch,
}

/// The AEAD instance of one key.
///
/// AES-GCM runs on *ring*'s implementation: its x86-64 and AArch64 code
/// interleaves the AES-CTR and GHASH passes with AES/CLMUL (and VAES)
/// instructions and seals 2-3 times faster per byte here than the
/// two-pass `aes-gcm` crate (docs/security.md, "What it costs"). The
/// envelope is the same standard GCM either way (a test checks one
/// against the other). XChaCha20-Poly1305, which *ring* lacks, stays on
/// `chacha20poly1305`.
enum Aead {
    XChaCha(Box<XChaCha20Poly1305>),
    AesGcm(Box<LessSafeKey>),
}

/// One packet key: the AEAD, and the nonce sequence it seals with.
pub struct PacketKey {
    cipher: Cipher,
    aead: Aead,
    /// The next nonce; its last [`COUNTER_BYTES`] count up.
    nonce: [u8; MAX_NONCE_BYTES],
}

impl fmt::Debug for PacketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Neither the key nor the nonce state is shown.
        f.debug_struct("PacketKey")
            .field("cipher", &self.cipher)
            .finish_non_exhaustive()
    }
}

impl PacketKey {
    /// A key for `cipher` from `key` ([`Cipher::key_bytes`] long), with a
    /// nonce start from the OS random generator.
    ///
    /// # Errors
    /// `key` has the wrong length, or the OS random generator failed.
    pub fn new(cipher: Cipher, key: &[u8]) -> Result<PacketKey, KeyError> {
        let mut nonce = [0; MAX_NONCE_BYTES];
        getrandom::fill(&mut nonce[..cipher.nonce_bytes()]).map_err(KeyError::Random)?;
        PacketKey::with_nonce_start(cipher, key, nonce)
    }

    /// As [`PacketKey::new`] with a given nonce start (tests).
    fn with_nonce_start(
        cipher: Cipher,
        key: &[u8],
        nonce: [u8; MAX_NONCE_BYTES],
    ) -> Result<PacketKey, KeyError> {
        let bad = || KeyError::Length {
            cipher,
            given: key.len(),
        };
        let aead = match cipher {
            Cipher::XChaCha20Poly1305 => Aead::XChaCha(Box::new(
                XChaCha20Poly1305::new_from_slice(key).map_err(|_| bad())?,
            )),
            Cipher::Aes256Gcm | Cipher::Aes128Gcm => {
                let algorithm = if cipher == Cipher::Aes256Gcm {
                    &AES_256_GCM
                } else {
                    &AES_128_GCM
                };
                // *ring* checks the length against the algorithm's.
                let unbound = UnboundKey::new(algorithm, key).map_err(|_| bad())?;
                Aead::AesGcm(Box::new(LessSafeKey::new(unbound)))
            }
        };
        Ok(PacketKey {
            cipher,
            aead,
            nonce,
        })
    }

    /// The cipher.
    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// Seals `packet` from node `sender` into `out` (cleared first) with
    /// the next nonce. `out` is only appended to: once it has grown to
    /// the largest datagram, sealing allocates nothing and zeroes nothing.
    pub fn seal(&mut self, sender: u32, packet: &[u8], out: &mut Vec<u8>) {
        self.seal_pieces(sender, &[packet], out);
    }

    /// Seals the packet made of `pieces` back to back, as
    /// [`PacketKey::seal`] seals one.
    pub fn seal_pieces(&mut self, sender: u32, pieces: &[&[u8]], out: &mut Vec<u8>) {
        let nonce_len = self.cipher.nonce_bytes();
        let nonce = self.next_nonce();
        out.clear();
        out.extend_from_slice(&MAGIC);
        out.push(ENVELOPE_VERSION);
        out.push(self.cipher.id());
        out.extend_from_slice(&sender.to_be_bytes());
        out.extend_from_slice(&nonce[..nonce_len]);
        // Totem's packet is shared (`Bytes`), so it is copied once into
        // `out` and encrypted there in place.
        for piece in pieces {
            out.extend_from_slice(piece);
        }
        let (aad, rest) = out.split_at_mut(HEADER_BYTES);
        let body = &mut rest[nonce_len..];
        let tag = self.encrypt(&nonce[..nonce_len], aad, body);
        out.extend_from_slice(&tag);
    }

    /// Opens a sealed datagram from node `source` (the node at the
    /// datagram's source address) in place: on success the Totem packet
    /// is `datagram[range]`, the returned range.
    ///
    /// # Errors
    /// Why the datagram does not open. After [`Rejected::BadEnvelope`]
    /// `datagram` is unchanged; after the others its body is unspecified
    /// (the AEAD may have decrypted it before the tag failed), so a caller
    /// that tries another key opens a copy (see [`PacketKey::open`]).
    pub fn open_in_place(
        &self,
        source: u32,
        datagram: &mut [u8],
    ) -> Result<Range<usize>, Rejected> {
        let nonce_len = self.cipher.nonce_bytes();
        if !self.matches_envelope(datagram) {
            return Err(Rejected::BadEnvelope);
        }
        let (header, rest) = datagram.split_at_mut(HEADER_BYTES);
        let (nonce, sealed_body) = rest.split_at_mut(nonce_len);
        // matches_envelope checked the length covers header, nonce and tag.
        let body_len = sealed_body.len() - TAG_BYTES;
        self.decrypt(nonce, header, sealed_body)?;
        let sender = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if sender != source {
            return Err(Rejected::SenderMismatch);
        }
        let start = HEADER_BYTES + nonce_len;
        Ok(start..start + body_len)
    }

    /// As [`PacketKey::open_in_place`] on a copy: `datagram` is never
    /// modified (for trying several keys on one datagram).
    ///
    /// # Errors
    /// Why the datagram does not open.
    pub fn open(&self, source: u32, datagram: &[u8]) -> Result<Bytes, Rejected> {
        if !self.matches_envelope(datagram) {
            return Err(Rejected::BadEnvelope);
        }
        let mut copy = BytesMut::from(datagram);
        let range = self.open_in_place(source, &mut copy)?;
        Ok(copy.freeze().slice(range))
    }

    /// Whether `datagram` has the envelope of this key's cipher (the cheap
    /// check before trying a key).
    pub fn matches_envelope(&self, datagram: &[u8]) -> bool {
        datagram.len() >= self.cipher.overhead_bytes()
            && datagram[..2] == MAGIC
            && datagram[2] == ENVELOPE_VERSION
            && datagram[3] == self.cipher.id()
    }

    fn next_nonce(&mut self) -> [u8; MAX_NONCE_BYTES] {
        let current = self.nonce;
        let end = self.cipher.nonce_bytes();
        let counter = &mut self.nonce[end - COUNTER_BYTES..end];
        let mut value = [0; COUNTER_BYTES];
        value.copy_from_slice(counter);
        // Wraps only after 2^64 packets under one key load.
        counter.copy_from_slice(&u64::from_be_bytes(value).wrapping_add(1).to_be_bytes());
        current
    }

    /// Encrypts `body` in place; the tag.
    fn encrypt(&self, nonce: &[u8], aad: &[u8], body: &mut [u8]) -> [u8; TAG_BYTES] {
        let mut out = [0; TAG_BYTES];
        // The AEADs refuse only inputs beyond 2^36 bytes (and a nonce of
        // another length, which `nonce_bytes` rules out); a datagram is at
        // most 64 KiB, so sealing cannot fail.
        match &self.aead {
            Aead::XChaCha(a) => {
                if let Ok(tag) = a.encrypt_inout_detached(
                    nonce.try_into().expect("24-byte nonce"),
                    aad,
                    InOutBuf::from(body),
                ) {
                    out.copy_from_slice(&tag);
                }
            }
            Aead::AesGcm(a) => {
                if let Ok(tag) = Nonce::try_assume_unique_for_key(nonce)
                    .and_then(|n| a.seal_in_place_separate_tag(n, Aad::from(aad), body))
                {
                    out.copy_from_slice(tag.as_ref());
                }
            }
        }
        out
    }

    /// Checks the tag at the end of `sealed_body` and decrypts the rest
    /// of it in place.
    fn decrypt(&self, nonce: &[u8], aad: &[u8], sealed_body: &mut [u8]) -> Result<(), Rejected> {
        match &self.aead {
            Aead::XChaCha(a) => {
                let (body, tag) = sealed_body.split_at_mut(sealed_body.len() - TAG_BYTES);
                let nonce = nonce.try_into().map_err(|_| Rejected::BadEnvelope)?;
                let tag: &[u8] = tag;
                a.decrypt_inout_detached(
                    nonce,
                    aad,
                    InOutBuf::from(body),
                    tag.try_into().map_err(|_| Rejected::BadEnvelope)?,
                )
                .map_err(|_| Rejected::AuthFailed)
            }
            Aead::AesGcm(a) => {
                let nonce =
                    Nonce::try_assume_unique_for_key(nonce).map_err(|_| Rejected::BadEnvelope)?;
                a.open_in_place(nonce, Aad::from(aad), sealed_body)
                    .map(|_| ())
                    .map_err(|_| Rejected::AuthFailed)
            }
        }
    }
}

/// Why a [`PacketKey`] could not be made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The derived key has the wrong length for the cipher (a bug).
    #[error("{cipher} needs a {}-byte key, got {given}", cipher.key_bytes())]
    Length {
        /// The cipher.
        cipher: Cipher,
        /// The length given.
        given: usize,
    },
    /// The OS random generator failed.
    #[error("the OS random generator failed: {0}")]
    Random(getrandom::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(cipher: Cipher, byte: u8) -> PacketKey {
        PacketKey::new(cipher, &vec![byte; cipher.key_bytes()]).expect("key")
    }

    /// A Totem-sized packet with varied bytes.
    fn packet(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn round_trip_for_every_cipher_and_size() {
        for cipher in Cipher::ALL {
            let mut k = key(cipher, 9);
            for len in [0, 1, 24, 1452, 65_000] {
                let mut sealed = Vec::new();
                k.seal(4, &packet(len), &mut sealed);
                assert_eq!(sealed.len(), len + cipher.overhead_bytes(), "{cipher}");
                if len > 0 {
                    let body = &sealed[HEADER_BYTES + cipher.nonce_bytes()..][..len];
                    assert_ne!(body, &packet(len)[..], "{cipher}: encrypted");
                }
                assert!(k.matches_envelope(&sealed));
                assert_eq!(
                    &k.open(4, &sealed).expect("opens")[..],
                    &packet(len)[..],
                    "{cipher}"
                );
            }
        }
    }

    #[test]
    fn every_flipped_bit_is_rejected_for_every_cipher() {
        for cipher in Cipher::ALL {
            let mut k = key(cipher, 1);
            let mut sealed = Vec::new();
            k.seal(7, &packet(200), &mut sealed);
            let mut bad_envelope = 0;
            for bit in 0..sealed.len() * 8 {
                let mut flipped = sealed.clone();
                flipped[bit / 8] ^= 1 << (bit % 8);
                match k.open(7, &flipped) {
                    Err(Rejected::BadEnvelope) => {
                        assert!(bit < 32, "{cipher}: bit {bit} is past magic/version/cipher");
                        bad_envelope += 1;
                    }
                    Err(Rejected::AuthFailed) => assert!(bit >= 32, "{cipher}: bit {bit}"),
                    other => panic!("{cipher}: bit {bit} flipped gave {other:?}"),
                }
            }
            assert_eq!(bad_envelope, 32, "{cipher}");
            // The original still opens: the failures did not disturb the key.
            assert!(k.open(7, &sealed).is_ok());
        }
    }

    #[test]
    fn truncations_and_garbage_are_rejected_without_panic() {
        let mut k = key(Cipher::XChaCha20Poly1305, 2);
        let mut sealed = Vec::new();
        k.seal(1, &packet(64), &mut sealed);
        for len in 0..sealed.len() {
            assert!(k.open(1, &sealed[..len]).is_err(), "length {len}");
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert_eq!(k.open(1, &longer), Err(Rejected::AuthFailed));
        assert_eq!(
            k.open(1, b"TM\x01\x02plaintext totem"),
            Err(Rejected::BadEnvelope)
        );
    }

    #[test]
    fn another_key_or_cipher_cannot_open() {
        let mut a = key(Cipher::XChaCha20Poly1305, 1);
        let b = key(Cipher::XChaCha20Poly1305, 2);
        let gcm = key(Cipher::Aes256Gcm, 1);
        let mut sealed = Vec::new();
        a.seal(3, &packet(100), &mut sealed);
        assert_eq!(b.open(3, &sealed), Err(Rejected::AuthFailed));
        assert_eq!(gcm.open(3, &sealed), Err(Rejected::BadEnvelope));
        assert!(!gcm.matches_envelope(&sealed));
    }

    #[test]
    fn sender_must_match_the_source() {
        let mut k = key(Cipher::Aes128Gcm, 5);
        let mut sealed = Vec::new();
        k.seal(3, &packet(10), &mut sealed);
        assert_eq!(k.open(4, &sealed), Err(Rejected::SenderMismatch));
        // Rewriting the sender breaks the tag: the header is authenticated.
        sealed[7] = 4;
        assert_eq!(k.open(4, &sealed), Err(Rejected::AuthFailed));
    }

    #[test]
    fn nonces_never_repeat_within_a_key_and_start_randomly() {
        for cipher in Cipher::ALL {
            let n = cipher.nonce_bytes();
            let mut k = key(cipher, 3);
            let mut seen = std::collections::BTreeSet::new();
            let mut sealed = Vec::new();
            for _ in 0..1000 {
                k.seal(1, b"x", &mut sealed);
                assert!(seen.insert(sealed[HEADER_BYTES..HEADER_BYTES + n].to_vec()));
            }
            let mut other = key(cipher, 3);
            other.seal(1, b"x", &mut sealed);
            assert!(
                !seen.contains(&sealed[HEADER_BYTES..HEADER_BYTES + n]),
                "{cipher}: a second load of the same key starts elsewhere"
            );
        }
    }

    #[test]
    fn the_counter_carries_into_the_prefix_never() {
        // At the counter's end it wraps to zero within its 8 bytes; the
        // prefix stays.
        let mut start = [0xAB; MAX_NONCE_BYTES];
        start[4..12].copy_from_slice(&u64::MAX.to_be_bytes());
        let mut k = PacketKey::with_nonce_start(Cipher::Aes256Gcm, &[1; 32], start).expect("key");
        assert_eq!(k.next_nonce()[4..12], u64::MAX.to_be_bytes());
        assert_eq!(
            k.next_nonce()[..12],
            [0xAB, 0xAB, 0xAB, 0xAB, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn open_in_place_gives_the_packet_as_a_range_of_the_datagram() {
        for cipher in Cipher::ALL {
            let mut k = key(cipher, 4);
            for len in [0, 1, 100, 8192, 65_000] {
                let mut sealed = Vec::new();
                k.seal(2, &packet(len), &mut sealed);
                let range = k.open_in_place(2, &mut sealed).expect("opens");
                assert_eq!(range.start, HEADER_BYTES + cipher.nonce_bytes(), "{cipher}");
                assert_eq!(&sealed[range], &packet(len)[..], "{cipher} {len}");
            }
        }
    }

    #[test]
    fn open_in_place_leaves_a_foreign_envelope_untouched() {
        let k = key(Cipher::Aes256Gcm, 4);
        let mut plain = b"TM\x01\x02 a plain totem packet of some length".to_vec();
        let before = plain.clone();
        assert_eq!(k.open_in_place(1, &mut plain), Err(Rejected::BadEnvelope));
        assert_eq!(plain, before);
        let mut short = vec![
            b'A',
            b'E',
            ENVELOPE_VERSION,
            Cipher::Aes256Gcm.id(),
            0,
            0,
            0,
            1,
        ];
        assert_eq!(k.open_in_place(1, &mut short), Err(Rejected::BadEnvelope));
    }

    /// The AES-GCM envelopes are standard GCM: the `aes-gcm` crate (the
    /// implementation before *ring*) opens what this seals and the other
    /// way round, so nodes of either build share a ring.
    #[test]
    fn aes_gcm_envelopes_match_the_aes_gcm_crate() {
        use aes_gcm::{Aes128Gcm, Aes256Gcm};
        fn other_seal<A: AeadInOut + KeyInit>(
            key: &[u8],
            cipher: Cipher,
            packet: &[u8],
        ) -> Vec<u8> {
            let a = A::new_from_slice(key).expect("key length");
            let mut out = vec![b'A', b'E', ENVELOPE_VERSION, cipher.id(), 0, 0, 0, 6];
            let nonce = [0x5A; 12];
            out.extend_from_slice(&nonce);
            let mut body = packet.to_vec();
            let tag = a
                .encrypt_inout_detached(
                    (&nonce[..]).try_into().expect("12"),
                    &out[..HEADER_BYTES],
                    InOutBuf::from(&mut body[..]),
                )
                .expect("seals");
            out.extend_from_slice(&body);
            out.extend_from_slice(&tag);
            out
        }
        fn other_open<A: AeadInOut + KeyInit>(key: &[u8], sealed: &[u8]) -> Vec<u8> {
            let a = A::new_from_slice(key).expect("key length");
            let body_end = sealed.len() - TAG_BYTES;
            let mut body = sealed[HEADER_BYTES + 12..body_end].to_vec();
            a.decrypt_inout_detached(
                (&sealed[HEADER_BYTES..HEADER_BYTES + 12])
                    .try_into()
                    .expect("12"),
                &sealed[..HEADER_BYTES],
                InOutBuf::from(&mut body[..]),
                (&sealed[body_end..]).try_into().expect("16"),
            )
            .expect("aes-gcm opens ring's envelope");
            body
        }
        for cipher in [Cipher::Aes256Gcm, Cipher::Aes128Gcm] {
            let raw = vec![0x42; cipher.key_bytes()];
            let mut k = PacketKey::new(cipher, &raw).expect("key");
            for len in [0, 1, 17, 1452, 65_000] {
                let mut sealed = Vec::new();
                k.seal(6, &packet(len), &mut sealed);
                let theirs = other_seal_for(cipher, &raw, &packet(len));
                assert_eq!(
                    k.open(6, &theirs).expect("ring opens aes-gcm's envelope")[..],
                    packet(len)[..],
                    "{cipher} {len}"
                );
                let opened = match cipher {
                    Cipher::Aes256Gcm => other_open::<Aes256Gcm>(&raw, &sealed),
                    _ => other_open::<Aes128Gcm>(&raw, &sealed),
                };
                assert_eq!(opened, packet(len), "{cipher} {len}");
            }
        }
        fn other_seal_for(cipher: Cipher, key: &[u8], packet: &[u8]) -> Vec<u8> {
            match cipher {
                Cipher::Aes256Gcm => other_seal::<Aes256Gcm>(key, cipher, packet),
                _ => other_seal::<Aes128Gcm>(key, cipher, packet),
            }
        }
    }
}
