//! Fuzzes the CKPT service's client requests as the daemon receives them:
//! a ready lone node, connections set up with a Hello, then arbitrary
//! request ids and bodies, stray frames, closes and time (see
//! [`ais_fuzz::requests::run`]). Nothing may panic, every answer must be a
//! well-formed frame, and the ring must not move.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::ServiceId;

fuzz_target!(|data: &[u8]| {
    ais_fuzz::requests::run(ServiceId::Ckpt, data);
});
