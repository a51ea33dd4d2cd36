//! The services' executive messages (barriers, CLM/EVS/CKPT exec
//! messages, CKPT sync state) as Totem delivers them: the input plays
//! node 2 in a ring with node 1 and multicasts anything, mixed with node
//! 1's own clients' requests, its own messages coming back (or forged),
//! configuration changes and time.
//! The program: `testsuite::fuzz_harness::programs::exec_deliver`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use testsuite::fuzz_harness::programs;

fuzz_target!(|data: &[u8]| programs::exec_deliver(data));
