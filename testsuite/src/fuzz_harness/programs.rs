//! The hostile-input programs, one per fuzz target: each reads its input
//! with a [`Cursor`] as a sequence of operations and runs them against
//! the daemon's real code paths. Every input is a valid program; each
//! function panics only if the code under test misbehaves.

use std::time::Duration;

use bytes::Bytes;
use proto::{Frame, FrameKind, HelloReply, ServiceId};
use services::ConnId;

use super::table::{local, peer};
use super::{reseal, Cursor, LoneNode, Pair, TableHarness};

/// Request ids the input picks from most of the time (every service has
/// fewer than this many); the rest of the time any u16.
const LIKELY_IDS: u16 = 24;

/// Client requests of one service, decoded the way the daemon decodes
/// them: through [`node::Node::client_frame`], so the Hello gate, the sync
/// gate and the engine's own body decoders all see the input.
///
/// Runs the input as a client program against a ready lone node: opening
/// connections to `service`, sending requests with arbitrary bodies,
/// stray frames, closing connections, letting time pass.
///
/// # Panics
/// If the node panics, sends a malformed frame, or its ring changed:
/// nothing a client sends may move the ring.
pub fn requests(service: ServiceId, data: &[u8]) {
    let mut lone = LoneNode::ready();
    let ring = lone.ring();
    let mut cur = Cursor::new(data);
    let mut conns = Vec::new();
    if let Some(c) = lone.connect_to(service) {
        conns.push(c);
    }
    while !cur.is_empty() {
        let op = cur.u8();
        let pick = usize::from(cur.u8());
        let conn = (!conns.is_empty()).then(|| conns[pick % conns.len()]);
        match op % 6 {
            0 | 1 => {
                let Some(conn) = conn else { continue };
                let id = if op & 0x80 == 0 {
                    cur.u16() % LIKELY_IDS
                } else {
                    cur.u16()
                };
                let body = Bytes::copy_from_slice(cur.bytes());
                let frame = Frame::request(service, id, body);
                lone.frame(conn, frame);
            }
            2 => {
                if let Some(c) = lone.connect_to(service) {
                    conns.push(c);
                }
            }
            3 => {
                if let Some(conn) = conn {
                    lone.close(conn);
                    conns.retain(|&c| c != conn);
                }
            }
            4 => lone.advance(Duration::from_millis(u64::from(cur.u8()) * 20)),
            _ => {
                // A frame of any kind and service: the node must close the
                // connection for it, not act on it.
                let Some(conn) = conn else { continue };
                let kind = match cur.u8() % 3 {
                    0 => FrameKind::Request,
                    1 => FrameKind::Response,
                    _ => FrameKind::Callback,
                };
                let frame = Frame {
                    kind,
                    service: cur.u16(),
                    id: cur.u16(),
                    status: Ok(()),
                    body: Bytes::copy_from_slice(cur.bytes()),
                };
                lone.frame(conn, frame);
            }
        }
    }
    lone.advance(Duration::from_secs(2));
    assert_eq!(lone.ring(), ring, "a client moved the ring");
}

/// The first exchange on a connection (the setup Hello) as the daemon
/// runs it: each step opens a fresh connection to a ready lone node and
/// sends it an arbitrary first frame (any kind, service, id, body),
/// sometimes a second one, sometimes closes it. Refused connections must
/// be closed by the node, so the table never fills with them, and the
/// ring must not move.
///
/// # Panics
/// If the node misbehaves.
pub fn setup(data: &[u8]) {
    let mut lone = LoneNode::ready();
    lone.keep_responses();
    let ring = lone.ring();
    let mut cur = Cursor::new(data);
    // Connections whose Hello was accepted and that are still open.
    let mut open = Vec::new();
    while !cur.is_empty() {
        let flags = cur.u8();
        let Some(conn) = lone.connect() else {
            // The table is full: it must be full of accepted connections
            // (refused ones are closed by the node), so there is one to
            // close, as a client going away would.
            assert!(!open.is_empty(), "refused connections fill the table");
            let c = open.remove(0);
            lone.close(c);
            continue;
        };
        let first = any_frame(&mut cur);
        let second = (flags & 1 != 0).then(|| any_frame(&mut cur));
        lone.frame(conn, first);
        let accepted = lone
            .take_responses(conn)
            .first()
            .is_some_and(|r| HelloReply::decode(r).is_ok_and(|r| r.status.is_ok()));
        if let Some(second) = second {
            lone.frame(conn, second);
        }
        // A refused connection, or one that broke the protocol with its
        // second frame, must have been closed by the node.
        let stays = accepted && !lone.closed_by_node(conn);
        if flags & 2 != 0 {
            lone.close(conn);
        } else if stays {
            open.push(conn);
        }
        let _ = lone.take_responses(conn);
    }
    assert_eq!(lone.ring(), ring, "a client moved the ring");
}

fn any_frame(cur: &mut Cursor<'_>) -> Frame {
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

/// The services' executive messages (barriers, CLM/EVS/CKPT exec
/// messages, CKPT sync state) as Totem delivers them: the input plays
/// node 2 in a ring with node 1 and multicasts anything, mixed with node
/// 1's own clients' requests, its own messages coming back (or forged),
/// configuration changes and time.
///
/// # Panics
/// If an engine or the barrier panics.
pub fn exec_deliver(data: &[u8]) {
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
}

const SERVICES: [ServiceId; 3] = [ServiceId::Clm, ServiceId::Evs, ServiceId::Ckpt];

/// A Totem node inside a formed ring of two: the input takes node 2's
/// real datagrams on their way to node 1 and passes, drops, mutates (bit
/// flips, byte sets, truncation, extension, with the CRC recomputed as a
/// forger would), replays or replaces them with its own, and lets time
/// pass, so everything a peer can send reaches the state machine.
///
/// # Panics
/// If Totem panics (its invariant asserts included).
pub fn totem_ring(data: &[u8]) {
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
}
