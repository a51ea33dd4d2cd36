//! Fuzzes the services' executive messages (what engines multicast to
//! each other: barriers, CLM/EVS/CKPT exec messages, CKPT sync state) as
//! Totem delivers them: the input plays node 2 in a ring with node 1 and
//! multicasts anything, mixed with node 1's own clients' requests, its own
//! messages coming back, configuration changes and time. Nothing may
//! panic.

#![no_main]

use std::time::Duration;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use proto::ServiceId;
use services::ConnId;

use ais_fuzz::table::{local, peer};
use ais_fuzz::{Cursor, TableHarness};

const SERVICES: [ServiceId; 3] = [ServiceId::Clm, ServiceId::Evs, ServiceId::Ckpt];

fuzz_target!(|data: &[u8]| {
    let mut h = TableHarness::new();
    let mut cur = Cursor::new(data);
    // One client per service, as a daemon with a few clients has.
    for (i, s) in SERVICES.iter().enumerate() {
        h.lib_init(*s, ConnId(i as u64 + 1));
    }
    while !cur.is_empty() {
        match cur.u8() % 8 {
            0 | 1 => {
                // An exec message from the peer: header (service, id) and
                // body from the input.
                let payload = Bytes::copy_from_slice(cur.bytes());
                h.deliver(peer(), payload);
            }
            2 => {
                let step = u16::from(cur.u8() % 8);
                h.peer_barrier(step);
            }
            3 => {
                let n = usize::from(cur.u8());
                h.flush_own(n);
            }
            4 => {
                let i = usize::from(cur.u8()) % SERVICES.len();
                let id = cur.u16() % 24;
                let body = Bytes::copy_from_slice(cur.bytes());
                h.lib_request(SERVICES[i], ConnId(i as u64 + 1), id, body);
            }
            5 => {
                // A forged "own" message: a peer can claim any origin when
                // the ring is not authenticated.
                let payload = Bytes::copy_from_slice(cur.bytes());
                h.deliver(local(), payload);
            }
            6 => {
                let members = match cur.u8() % 3 {
                    0 => vec![local()],
                    _ => vec![local(), peer()],
                };
                let seq = u64::from(cur.u8());
                h.confchg(seq, &members);
            }
            _ => h.advance(Duration::from_millis(u64::from(cur.u16()))),
        }
    }
});
