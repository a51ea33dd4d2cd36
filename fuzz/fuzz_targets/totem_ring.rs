//! Fuzzes a Totem node inside a formed ring of two: the input takes node
//! 2's real datagrams on their way to node 1 and passes, drops, mutates
//! (bit flips, byte sets, truncation, extension, with the CRC recomputed
//! as a forger would) or replaces them with its own, and lets time pass.
//! Everything a peer can send reaches the protocol's state machine, not
//! only the decoder. Nothing may panic; Totem's own invariant asserts are
//! part of what is checked.

#![no_main]

use std::time::Duration;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

use ais_fuzz::{reseal, Cursor, Pair};

fuzz_target!(|data: &[u8]| {
    let mut pair = Pair::ready();
    let mut cur = Cursor::new(data);
    while !cur.is_empty() {
        match cur.u8() % 8 {
            0 => {
                if let Some(d) = pair.take_for_1() {
                    pair.to_1(d);
                }
            }
            1 => {
                let _dropped = pair.take_for_1();
            }
            2 | 3 => {
                // Bit flip or byte set at an input-chosen offset.
                let Some(d) = pair.take_for_1() else { continue };
                let mut v = d.to_vec();
                let at = usize::from(cur.u16()) % v.len().max(1);
                let b = cur.u8();
                if let Some(x) = v.get_mut(at) {
                    *x = if b & 0x80 != 0 {
                        b
                    } else {
                        *x ^ (1 << (b % 8))
                    };
                }
                pair.to_1(reseal(v));
            }
            4 => {
                // Truncation or extension.
                let Some(d) = pair.take_for_1() else { continue };
                let mut v = d.to_vec();
                let n = usize::from(cur.u8());
                if n & 1 == 0 {
                    v.truncate(v.len().saturating_sub(n / 2 + 4));
                } else {
                    let tail = cur.bytes();
                    let at = v.len().saturating_sub(4);
                    v.splice(at..at, tail.iter().copied());
                }
                pair.to_1(reseal(v));
            }
            5 => {
                // A datagram of the input's own, sealed or not.
                let raw = cur.bytes().to_vec();
                if cur.u8() & 1 == 0 {
                    pair.to_1(reseal(raw));
                } else {
                    pair.to_1(Bytes::from(raw));
                }
            }
            6 => {
                // Replay: the same real datagram twice.
                if let Some(d) = pair.take_for_1() {
                    pair.to_1(d.clone());
                    pair.to_1(d);
                }
            }
            _ => pair.step(Duration::from_millis(u64::from(cur.u8()) * 10)),
        }
    }
    pair.step(Duration::from_millis(10));
});
