//! Fuzzes `totem::wire::Packet::decode` with arbitrary datagrams.
//!
//! Decoding must never panic, and any datagram that decodes must re-encode
//! to exactly the same bytes (the wire format has one encoding per packet).
//! The input is tried twice: as it is, and with its CRC trailer rewritten to
//! match, so the fuzzer also reaches the header and body checks behind the
//! CRC, which random bytes almost never pass.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use totem::wire::{Packet, HEADER_BYTES, TRAILER_BYTES};

fuzz_target!(|data: &[u8]| {
    check(Bytes::copy_from_slice(data));

    if data.len() >= HEADER_BYTES + TRAILER_BYTES {
        let mut resealed = data.to_vec();
        let at = resealed.len() - TRAILER_BYTES;
        let crc = crc32fast::hash(&resealed[..at]);
        resealed[at..].copy_from_slice(&crc.to_be_bytes());
        check(Bytes::from(resealed));
    }
});

/// Decodes `datagram`; if it is a packet, it must encode back to itself.
fn check(datagram: Bytes) {
    if let Ok(packet) = Packet::decode(&datagram) {
        assert_eq!(packet.encoded_len(), datagram.len());
        assert_eq!(packet.encode(), datagram);
    }
}
