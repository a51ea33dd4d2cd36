//! A Totem node inside a formed ring of two: the input takes node 2's
//! real datagrams on their way to node 1 and passes, drops, mutates (bit
//! flips, byte sets, truncation, extension, with the CRC recomputed as a
//! forger would), replays or replaces them with its own, and lets time
//! pass, so everything a peer can send reaches the state machine.
//! The program: `testsuite::fuzz_harness::programs::totem_ring`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use testsuite::fuzz_harness::programs;

fuzz_target!(|data: &[u8]| programs::totem_ring(data));
