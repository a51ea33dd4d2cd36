//! Fuzzes the first exchange on a connection (the setup Hello) as the
//! daemon runs it: each step opens a fresh connection to a ready lone node
//! and sends it an arbitrary first frame (any kind, service, id, body),
//! sometimes a second one, sometimes closes it. Nothing may panic, every
//! reply must be a well-formed frame, refused connections must be closed
//! by the node (so the table never fills with them), and the ring must not
//! move.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use proto::{Frame, FrameKind};

use ais_fuzz::{Cursor, LoneNode};

fn frame(cur: &mut Cursor<'_>) -> Frame {
    let kind = match cur.u8() % 4 {
        // Mostly requests: the only kind a Hello can be.
        0 | 1 => FrameKind::Request,
        2 => FrameKind::Response,
        _ => FrameKind::Callback,
    };
    Frame {
        kind,
        service: cur.u16(),
        id: if cur.u8() & 1 == 0 {
            proto::setup::SETUP_ID
        } else {
            cur.u16()
        },
        status: Ok(()),
        body: Bytes::copy_from_slice(cur.bytes()),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut lone = LoneNode::ready();
    let ring = lone.ring();
    let mut cur = Cursor::new(data);
    let mut open = Vec::new();
    while !cur.is_empty() {
        let flags = cur.u8();
        let Some(conn) = lone.connect() else {
            // The table is full of accepted connections: close one, as a
            // client going away would.
            let c = open.remove(0);
            lone.close(c);
            continue;
        };
        let first = frame(&mut cur);
        lone.frame(conn, first);
        if flags & 1 != 0 {
            let second = frame(&mut cur);
            lone.frame(conn, second);
        }
        if flags & 2 != 0 {
            lone.close(conn);
        } else {
            open.push(conn);
        }
        // Refused or violating connections were closed by the node (the
        // harness closes what the node asks to); only set-up ones remain.
        assert!(lone
            .node
            .status()
            .counters
            .iter()
            .any(|(k, _)| k == "clients"));
    }
    assert_eq!(lone.ring(), ring, "a client moved the ring");
});
