//! Fuzzes the CKPT service's client requests as the daemon receives them:
//! a ready lone node, connections set up with a Hello, then arbitrary
//! request ids and bodies, stray frames, closes and time (see
//! `testsuite::fuzz_harness::programs::requests`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::ServiceId;
use testsuite::fuzz_harness::programs;

fuzz_target!(|data: &[u8]| programs::requests(ServiceId::Ckpt, data));
