//! One node on its own: client setup, request gating during sync, the
//! request -> ring -> answer path, and protocol violations.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use proto::setup::{Hello, HelloReply, Version};
use proto::{AisError, Frame, FrameKind, ServiceId};
use services::{ConnId, Ctx, Engine, SyncStep};
use totem::{Guarantee, Instant, NodeId, RingState, TotemConfig};

use super::*;

/// Echoes request bodies through the ring: the answer comes at delivery,
/// and every connection gets a callback with the body.
#[derive(Debug, Default)]
struct Echo {
    conns: Vec<ConnId>,
    synced_rounds: u32,
}

impl Engine for Echo {
    fn service(&self) -> ServiceId {
        ServiceId::Evs
    }
    fn name(&self) -> &'static str {
        "echo"
    }
    fn lib_init(&mut self, _ctx: &mut Ctx<'_>, conn: ConnId) {
        self.conns.push(conn);
    }
    fn lib_exit(&mut self, _ctx: &mut Ctx<'_>, conn: ConnId) {
        self.conns.retain(|&c| c != conn);
    }
    fn lib_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        id: u16,
        body: Bytes,
    ) -> Result<(), AisError> {
        let mut msg = conn.0.to_le_bytes().to_vec();
        msg.extend_from_slice(&body);
        ctx.mcast(id, &msg, Guarantee::Agreed)
    }
    fn exec_deliver(&mut self, ctx: &mut Ctx<'_>, from: NodeId, id: u16, body: Bytes) {
        let Some(conn) = body
            .get(..8)
            .map(|b| ConnId(u64::from_le_bytes(b.try_into().unwrap())))
        else {
            return;
        };
        let payload = body.slice(8..);
        if from == ctx.local() && self.conns.contains(&conn) {
            ctx.respond(conn, id, Ok(()), payload.clone());
        }
        for &c in &self.conns {
            ctx.callback(c, 9, payload.clone());
        }
    }
    fn has_sync(&self) -> bool {
        true
    }
    fn sync_process(&mut self, _ctx: &mut Ctx<'_>) -> SyncStep {
        SyncStep::Done
    }
    fn sync_activate(&mut self, _ctx: &mut Ctx<'_>) {
        self.synced_rounds += 1;
    }
    fn dump(&self) -> String {
        format!("{} connections", self.conns.len())
    }
}

const CREDS: Creds = Creds {
    pid: 1,
    uid: 0,
    gid: 0,
};

fn lone_node() -> (Node, Instant) {
    let me = NodeId::new(1).unwrap();
    let totem = TotemConfig::new(me).validate().unwrap();
    let cfg = NodeConfig {
        totem,
        engines: vec![Box::new(Echo::default())],
        directory: BTreeMap::from([(
            me,
            NodeInfo {
                addr: "127.0.0.1:5405".into(),
                name: "one".into(),
            },
        )]),
        max_clients: 2,
        observe: false,
    };
    let now = Instant::ZERO;
    (Node::new(cfg, now).unwrap(), now)
}

/// Runs the lone node's timers until `until` (its own datagrams go
/// nowhere: a lone ring needs no peer).
fn run_until(node: &mut Node, now: &mut Instant, until: Instant) {
    while let Some(t) = node.poll_timeout() {
        if t > until {
            break;
        }
        *now = t.max(*now);
        node.handle_timeout(*now);
        while node.poll_transmit().is_some() {}
    }
    *now = until;
}

fn outputs(node: &mut Node) -> Vec<(ConnId, Frame)> {
    let mut v = Vec::new();
    while let Some((c, b)) = node.poll_client_output() {
        v.push((c, Frame::decode(&b.to_bytes()).unwrap()));
    }
    v
}

fn hello(service: ServiceId, version: Version) -> Frame {
    Hello { service, version }.to_frame()
}

fn connect(node: &mut Node, now: Instant, service: ServiceId) -> ConnId {
    let c = node.client_connected(CREDS).unwrap();
    node.client_frame(now, c, hello(service, Version::B_01_01));
    let out = outputs(node);
    assert_eq!(out.len(), 1);
    let reply = HelloReply::decode(&out[0].1).unwrap();
    assert_eq!(reply.status, Ok(()));
    c
}

fn events(node: &mut Node) -> Vec<NodeEvent> {
    std::iter::from_fn(|| node.poll_event()).collect()
}

#[test]
fn requests_wait_for_sync_then_go_through_the_ring() {
    let (mut node, mut now) = lone_node();
    let c = connect(&mut node, now, ServiceId::Evs);

    // No ring yet: a request that needs synced state is refused.
    node.client_frame(
        now,
        c,
        Frame::request(ServiceId::Evs, 3, Bytes::from_static(b"x")),
    );
    let out = outputs(&mut node);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.status, Err(AisError::TryAgain));
    assert_eq!(node.services().stats().refused_during_sync, 1);

    // The lone node forms its ring after a consensus timeout and syncs.
    run_until(&mut node, &mut now, Instant::ZERO + Duration::from_secs(3));
    assert_eq!(node.totem().state(), RingState::Operational);
    assert!(node.services().synced());
    let ev = events(&mut node);
    assert!(ev
        .iter()
        .any(|e| matches!(e, NodeEvent::Sync(SyncEvent::Completed(_)))));

    node.client_frame(
        now,
        c,
        Frame::request(ServiceId::Evs, 3, Bytes::from_static(b"hi")),
    );
    let until = now + Duration::from_millis(100);
    run_until(&mut node, &mut now, until);
    let out = outputs(&mut node);
    let kinds: Vec<_> = out
        .iter()
        .map(|(_, f)| (f.kind, f.id, f.body.clone()))
        .collect();
    assert!(kinds.contains(&(FrameKind::Response, 3, Bytes::from_static(b"hi"))));
    assert!(kinds.contains(&(FrameKind::Callback, 9, Bytes::from_static(b"hi"))));
}

#[test]
fn setup_refusals_close_the_connection() {
    let (mut node, now) = lone_node();
    // Unknown to this node (no CKPT engine registered).
    let c = node.client_connected(CREDS).unwrap();
    node.client_frame(now, c, hello(ServiceId::Ckpt, Version::B_01_01));
    let out = outputs(&mut node);
    assert_eq!(
        HelloReply::decode(&out[0].1).unwrap().status,
        Err(AisError::NotSupported)
    );
    assert_eq!(events(&mut node), vec![NodeEvent::CloseClient(c)]);
    node.client_closed(now, c); // as the driver does on CloseClient

    // Wrong release code: VERSION with what is supported.
    let c = node.client_connected(CREDS).unwrap();
    node.client_frame(now, c, hello(ServiceId::Evs, Version::new(b'A', 1, 1)));
    let r = HelloReply::decode(&outputs(&mut node)[0].1).unwrap();
    assert_eq!(r.status, Err(AisError::Version));
    assert_eq!(r.version, Some(Version::B_01_01));
    assert_eq!(events(&mut node), vec![NodeEvent::CloseClient(c)]);
    node.client_closed(now, c);

    // A request before the Hello is not a Hello.
    // (The table holds 2: the refused ones were closed above.)
    let c = node.client_connected(CREDS).unwrap();
    node.client_frame(now, c, Frame::request(ServiceId::Evs, 0, Bytes::new()));
    let r = HelloReply::decode(&outputs(&mut node)[0].1).unwrap();
    assert_eq!(r.status, Err(AisError::InvalidParam));
}

#[test]
fn the_connection_table_is_bounded() {
    let (mut node, _) = lone_node();
    assert!(node.client_connected(CREDS).is_some());
    assert!(node.client_connected(CREDS).is_some());
    assert!(node.client_connected(CREDS).is_none());
    assert_eq!(node.stats().clients_refused, 1);
}

#[test]
fn a_frame_of_another_service_is_a_violation_and_only_that_client_goes() {
    let (mut node, mut now) = lone_node();
    run_until(&mut node, &mut now, Instant::ZERO + Duration::from_secs(3));
    let bad = connect(&mut node, now, ServiceId::Evs);
    let good = connect(&mut node, now, ServiceId::Evs);
    events(&mut node);
    node.client_frame(now, bad, Frame::request(ServiceId::Clm, 0, Bytes::new()));
    assert_eq!(events(&mut node), vec![NodeEvent::CloseClient(bad)]);
    // Later frames of the closing client are ignored.
    node.client_frame(
        now,
        bad,
        Frame::request(ServiceId::Evs, 1, Bytes::from_static(b"z")),
    );
    node.client_closed(now, bad);
    node.client_frame(
        now,
        good,
        Frame::request(ServiceId::Evs, 1, Bytes::from_static(b"ok")),
    );
    let until = now + Duration::from_millis(100);
    run_until(&mut node, &mut now, until);
    let out = outputs(&mut node);
    assert!(out.iter().all(|(c, _)| *c == good));
    assert!(out
        .iter()
        .any(|(_, f)| f.kind == FrameKind::Response && f.body == "ok"));
    assert_eq!(node.stats().clients_violations, 1);
}

#[test]
fn status_reports_the_ring() {
    let (mut node, mut now) = lone_node();
    run_until(&mut node, &mut now, Instant::ZERO + Duration::from_secs(3));
    let c = node.client_connected(CREDS).unwrap();
    node.client_frame(now, c, hello(ServiceId::Cfg, proto::status::VERSION));
    outputs(&mut node);
    node.client_frame(
        now,
        c,
        Frame::request(ServiceId::Cfg, proto::status::RING_STATUS, Bytes::new()),
    );
    let out = outputs(&mut node);
    let st = proto::status::RingStatus::decode(&out[0].1.body).unwrap();
    assert_eq!(st.node_id, 1);
    assert_eq!(st.state, proto::status::RingState::Operational);
    assert_eq!(st.members.len(), 1);
    assert_eq!(st.members[0].name, "one");
    assert!(st.sync_done);
    assert_eq!(st.counter("rings_installed"), Some(1));
}

fn posted(id: u16, body: &'static [u8]) -> Frame {
    let mut f = Frame::request(ServiceId::Evs, id, Bytes::from_static(body));
    f.status = Err(AisError::TryAgain);
    f
}

#[test]
fn posted_requests_are_held_during_sync_then_answered_in_order() {
    let (mut node, mut now) = lone_node();
    let c = connect(&mut node, now, ServiceId::Evs);

    // No ring yet: posted requests are held, not refused, and a plain
    // request behind them waits too (a connection's requests keep order).
    node.client_frame(now, c, posted(3, b"one"));
    node.client_frame(now, c, posted(4, b"two"));
    node.client_frame(
        now,
        c,
        Frame::request(ServiceId::Evs, 5, Bytes::from_static(b"three")),
    );
    assert!(outputs(&mut node).is_empty(), "nothing is answered yet");
    // Each retry of the oldest held request is refused while sync runs.
    assert!(node.stats().posted_held >= 1);

    run_until(&mut node, &mut now, Instant::ZERO + Duration::from_secs(3));
    assert!(node.services().synced());
    let out = outputs(&mut node);
    let answers: Vec<_> = out
        .iter()
        .filter(|(_, f)| f.kind == FrameKind::Response)
        .map(|(conn, f)| (*conn, f.id, f.status, f.body.clone()))
        .collect();
    assert_eq!(
        answers,
        vec![
            (c, 3, Ok(()), Bytes::from_static(b"one")),
            (c, 4, Ok(()), Bytes::from_static(b"two")),
            (c, 5, Ok(()), Bytes::from_static(b"three")),
        ]
    );
}

#[test]
fn a_libais_window_of_posts_is_held_whole_while_the_ring_cannot_take_them() {
    // libais at its defaults keeps up to its window unanswered; while the
    // service cannot take them (no ring yet), the node must hold them all
    // rather than refuse any, by count and by bytes.
    use ais::client::{post_window_bytes, DEFAULT_POST_WINDOW};
    static SMALL: [u8; 1] = [0];
    static LARGE: [u8; 64 << 10] = [0; 64 << 10];
    static MAXIMUM: [u8; proto::evs::MAX_MSG_BYTES] = [0; proto::evs::MAX_MSG_BYTES];
    // What the window lets out for a body (frames are a little larger, so
    // this errs on the side of more), plus the one that waits on it.
    let window = |body: &[u8]| post_window_bytes(body.len()).div_ceil(body.len()) + 1;
    for (count, body) in [
        (DEFAULT_POST_WINDOW, &SMALL[..]),
        (window(&LARGE), &LARGE[..]),
        (window(&MAXIMUM), &MAXIMUM[..]),
    ] {
        let (mut node, mut now) = lone_node();
        let c = connect(&mut node, now, ServiceId::Evs);
        for i in 0..count {
            node.client_frame(now, c, posted(u16::try_from(i).unwrap(), body));
        }
        assert!(outputs(&mut node).is_empty(), "nothing refused");
        assert_eq!(node.stats().posted_refused, 0);
        run_until(&mut node, &mut now, Instant::ZERO + Duration::from_secs(3));
        let ok = outputs(&mut node)
            .iter()
            .filter(|(_, f)| f.kind == FrameKind::Response && f.status == Ok(()))
            .count();
        assert_eq!(ok, count, "every held post answered once the ring runs");
    }
}

#[test]
fn a_full_hold_answers_try_again_and_a_closed_client_drops_its_hold() {
    let (mut node, now) = lone_node();
    let c = connect(&mut node, now, ServiceId::Evs);
    for i in 0..crate::posted::MAX_HELD_FRAMES {
        node.client_frame(now, c, posted(u16::try_from(i).unwrap(), b"x"));
    }
    assert!(outputs(&mut node).is_empty());
    node.client_frame(now, c, posted(999, b"x"));
    let out = outputs(&mut node);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].1.id, out[0].1.status),
        (999, Err(AisError::TryAgain))
    );
    assert_eq!(node.stats().posted_refused, 1);
    node.client_closed(now, c);
    let mut now = now;
    run_until(&mut node, &mut now, Instant::ZERO + Duration::from_secs(3));
    assert!(node.services().synced());
    assert!(
        outputs(&mut node).is_empty(),
        "a closed client's hold is gone"
    );
}

/// Nodes 1 and 2 with the echo engine, on one ring.
fn node_of_two(id: u32) -> Node {
    let me = NodeId::new(id).unwrap();
    let directory = (1..=2)
        .map(|i| {
            let info = NodeInfo {
                addr: format!("127.0.0.{i}:5405"),
                name: format!("n{i}"),
            };
            (NodeId::new(i).unwrap(), info)
        })
        .collect();
    let cfg = NodeConfig {
        totem: TotemConfig::new(me).validate().unwrap(),
        engines: vec![Box::new(Echo::default())],
        directory,
        max_clients: 2,
        observe: false,
    };
    Node::new(cfg, Instant::ZERO).unwrap()
}

/// Datagrams in flight: (index of the node they go to, datagram).
type Wire = std::collections::VecDeque<(usize, Bytes)>;

/// Puts node `i`'s transmits on the wire to the other node.
fn transmit(nodes: &mut [Node; 2], i: usize, wire: &mut Wire) {
    while let Some(t) = nodes[i].poll_transmit() {
        wire.push_back((1 - i, t.datagram.to_bytes()));
    }
}

/// Fires the earlier timer of the two, if any is due by `until`.
fn fire_timer(nodes: &mut [Node; 2], now: &mut Instant, until: Instant, wire: &mut Wire) -> bool {
    let Some((at, i)) = (0..2)
        .filter_map(|i| nodes[i].poll_timeout().map(|t| (t, i)))
        .min()
    else {
        return false;
    };
    if at > until {
        return false;
    }
    *now = at.max(*now);
    nodes[i].handle_timeout(*now);
    transmit(nodes, i, wire);
    true
}

/// A batch given with `receive_packet` reaches the services only at
/// `deliver_received`, while the datagrams it makes go out at once.
#[test]
fn received_packets_reach_the_services_only_when_delivered() {
    let mut nodes = [node_of_two(1), node_of_two(2)];
    let mut now = Instant::ZERO;
    let mut wire = Wire::new();
    for i in 0..2 {
        transmit(&mut nodes, i, &mut wire);
    }
    let formed = Instant::ZERO + Duration::from_secs(5);
    loop {
        while let Some((j, d)) = wire.pop_front() {
            nodes[j].handle_packet(now, d);
            transmit(&mut nodes, j, &mut wire);
        }
        if nodes.iter().all(|n| n.services().synced())
            || !fire_timer(&mut nodes, &mut now, formed, &mut wire)
        {
            break;
        }
    }
    assert!(nodes
        .iter()
        .all(|n| n.totem().state() == RingState::Operational));
    assert!(nodes.iter().all(|n| n.services().synced()));
    let c1 = connect(&mut nodes[0], now, ServiceId::Evs);
    connect(&mut nodes[1], now, ServiceId::Evs);

    nodes[0].client_frame(
        now,
        c1,
        Frame::request(ServiceId::Evs, 3, Bytes::from_static(b"hi")),
    );
    transmit(&mut nodes, 0, &mut wire);
    let until = now + Duration::from_secs(2);
    let mut batches = 0;
    let echoed = loop {
        let Some((j, d)) = wire.pop_front() else {
            assert!(
                fire_timer(&mut nodes, &mut now, until, &mut wire),
                "never delivered"
            );
            outputs(&mut nodes[0]);
            continue;
        };
        if j == 0 {
            nodes[0].handle_packet(now, d);
            transmit(&mut nodes, 0, &mut wire);
            outputs(&mut nodes[0]);
            continue;
        }
        // Node 2 takes it as one batch: nothing for its clients yet.
        nodes[1].receive_packet(now, d);
        transmit(&mut nodes, 1, &mut wire);
        assert!(
            outputs(&mut nodes[1]).is_empty(),
            "the services ran before deliver_received"
        );
        nodes[1].deliver_received(now);
        batches += 1;
        let out = outputs(&mut nodes[1]);
        if !out.is_empty() {
            break out;
        }
    };
    assert!(batches >= 1);
    assert_eq!(echoed.len(), 1);
    let (_, f) = &echoed[0];
    assert_eq!(
        (f.kind, f.id, &f.body[..]),
        (FrameKind::Callback, 9, &b"hi"[..])
    );
}

/// Frames without a body (most answers) are encoded once per header and
/// shared while the same header repeats; another header gets its own.
#[test]
fn bare_answers_share_one_encoding_per_header() {
    let (mut node, mut now) = lone_node();
    let c = connect(&mut node, now, ServiceId::Evs);
    // No ring yet: each plain request is answered TRY_AGAIN, no body.
    for id in [3, 3, 4, 3] {
        node.client_frame(now, c, Frame::request(ServiceId::Evs, id, Bytes::new()));
    }
    let raw: Vec<EncodedFrame> = std::iter::from_fn(|| node.poll_client_output())
        .map(|(_, f)| f)
        .collect();
    let answers: Vec<_> = raw
        .iter()
        .map(|f| Frame::decode(&f.to_bytes()).unwrap())
        .map(|f| (f.kind, f.id, f.status, f.body.len()))
        .collect();
    let try_again = |id| (FrameKind::Response, id, Err(AisError::TryAgain), 0);
    assert_eq!(
        answers,
        vec![try_again(3), try_again(3), try_again(4), try_again(3)]
    );
    let head = |i: usize| raw[i].pieces()[0].as_ptr();
    assert_eq!(head(0), head(1), "the repeated answer is shared");
    assert_ne!(head(1), head(2));

    // On the ring, a bare answer and a bare callback alternate, each
    // with its own header.
    run_until(&mut node, &mut now, Instant::ZERO + Duration::from_secs(3));
    assert!(node.services().synced());
    outputs(&mut node);
    for _ in 0..2 {
        node.client_frame(now, c, Frame::request(ServiceId::Evs, 3, Bytes::new()));
        let until = now + Duration::from_millis(100);
        run_until(&mut node, &mut now, until);
    }
    let got: Vec<_> = outputs(&mut node)
        .into_iter()
        .map(|(_, f)| (f.kind, f.id, f.status, f.body.len()))
        .collect();
    let (answer, callback) = (
        (FrameKind::Response, 3, Ok(()), 0),
        (FrameKind::Callback, 9, Ok(()), 0),
    );
    assert_eq!(got, vec![answer, callback, answer, callback]);
}
