//! The first exchange on a connection (the setup Hello) as the daemon
//! runs it: each step opens a fresh connection to a ready lone node and
//! sends it an arbitrary first frame (any kind, service, id, body),
//! sometimes a second one, sometimes closes it. Refused connections must
//! be closed by the node, so the table never fills with them, and the
//! ring must not move.
//! The program: `testsuite::fuzz_harness::programs::setup`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use testsuite::fuzz_harness::programs;

fuzz_target!(|data: &[u8]| programs::setup(data));
