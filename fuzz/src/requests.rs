//! Client requests of one service, decoded the way the daemon decodes
//! them: through [`node::Node::client_frame`], so the Hello gate, the sync
//! gate and the engine's own body decoders all see the input.

use std::time::Duration;

use bytes::Bytes;
use proto::{Frame, FrameKind, ServiceId};

use crate::{Cursor, LoneNode};

/// Request ids the input picks from most of the time (every service has
/// fewer than this many); the rest of the time any u16.
const LIKELY_IDS: u16 = 24;

/// Runs the input as a client program against a ready lone node: opening
/// connections to `service`, sending requests with arbitrary bodies,
/// stray frames, closing connections, letting time pass.
///
/// # Panics
/// If the node panics, sends a malformed frame, or its ring changed:
/// nothing a client sends may move the ring.
pub fn run(service: ServiceId, data: &[u8]) {
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
