//! The limits on what a client or a peer controls, each hit once, through
//! the daemon's own code path (a [`Node`](node::Node) with the standard
//! engines, or Totem itself), checking what the client or peer gets back
//! and that the limit holds exactly at its documented value. The table of
//! every limit, with the tests that hit the others, is docs/limits.md.

use bytes::Bytes;
use proto::ckpt::{self as ck, CreationAttributes};
use proto::evs::{self, Group};
use proto::{AisError, Frame, ServiceId};
use services::ckpt::{
    MAX_CHECKPOINTS, MAX_HANDLES_PER_CONN, MAX_ITERATIONS_PER_CONN, MAX_SECTIONS_PER_CHECKPOINT,
    MAX_SECTION_BYTES, MAX_SECTION_ID_SIZE,
};
use testsuite::fuzz_harness::lone::MAX_CLIENTS;
use testsuite::fuzz_harness::LoneNode;
use totem::{Guarantee, Instant, McastError, NodeId, RingState, Totem, TotemConfig};

fn attrs() -> CreationAttributes {
    CreationAttributes {
        creation_flags: ck::WR_ALL_REPLICAS,
        checkpoint_size: 1 << 18,
        retention_duration_ns: 3_600_000_000_000,
        max_sections: 4,
        max_section_size: 1 << 16,
        max_section_id_size: 16,
    }
}

fn open_body(name: &[u8], attributes: Option<CreationAttributes>, flags: u32) -> Bytes {
    ck::Open {
        name: Bytes::copy_from_slice(name),
        attributes,
        open_flags: flags,
    }
    .encode()
}

/// Opens (creating if `create`) and returns the handle.
fn ckpt_open(lone: &mut LoneNode, conn: node::ConnId, name: &[u8], create: bool) -> Frame {
    let (attributes, flags) = if create {
        (
            Some(attrs()),
            ck::OPEN_READ | ck::OPEN_WRITE | ck::OPEN_CREATE,
        )
    } else {
        (None, ck::OPEN_READ | ck::OPEN_WRITE)
    };
    lone.call(
        conn,
        ServiceId::Ckpt,
        ck::OPEN,
        open_body(name, attributes, flags),
    )
}

fn handle_of(frame: &Frame) -> u64 {
    assert_eq!(frame.status, Ok(()), "open failed");
    ck::OpenReply::decode(&frame.body)
        .expect("open reply")
        .handle
}

#[test]
fn checkpoints_stop_at_max_checkpoints_with_no_resources() {
    let mut lone = LoneNode::ready();
    let conn = lone.open(ServiceId::Ckpt);
    for i in 0..MAX_CHECKPOINTS {
        let reply = ckpt_open(&mut lone, conn, format!("c{i}").as_bytes(), true);
        let handle = handle_of(&reply);
        // Closed, the checkpoint lives on for its retention duration.
        let close = ck::HandleRequest { handle }.encode();
        let r = lone.call(conn, ServiceId::Ckpt, ck::CLOSE, close);
        assert_eq!(r.status, Ok(()));
    }
    let over = ckpt_open(&mut lone, conn, b"one too many", true);
    assert_eq!(over.status, Err(AisError::NoResources));
    // An existing one still opens.
    let again = ckpt_open(&mut lone, conn, b"c0", false);
    assert_eq!(again.status, Ok(()));
}

#[test]
fn handles_stop_at_max_handles_per_connection_with_no_resources() {
    let mut lone = LoneNode::ready();
    let conn = lone.open(ServiceId::Ckpt);
    handle_of(&ckpt_open(&mut lone, conn, b"shared", true));
    for _ in 1..MAX_HANDLES_PER_CONN {
        handle_of(&ckpt_open(&mut lone, conn, b"shared", false));
    }
    let over = ckpt_open(&mut lone, conn, b"shared", false);
    assert_eq!(over.status, Err(AisError::NoResources));
    // The limit is per connection: another client still opens it.
    let other = lone.open(ServiceId::Ckpt);
    handle_of(&ckpt_open(&mut lone, other, b"shared", false));
}

#[test]
fn iterations_stop_at_max_iterations_per_connection_with_no_resources() {
    let mut lone = LoneNode::ready();
    let conn = lone.open(ServiceId::Ckpt);
    let handle = handle_of(&ckpt_open(&mut lone, conn, b"iter", true));
    let body = ck::IterationInitialize {
        handle,
        sections_chosen: ck::SectionsChosen::Any,
        expiration_time_ns: 0,
    }
    .encode();
    for _ in 0..MAX_ITERATIONS_PER_CONN {
        let r = lone.call(
            conn,
            ServiceId::Ckpt,
            ck::ITERATION_INITIALIZE,
            body.clone(),
        );
        assert_eq!(r.status, Ok(()));
    }
    let over = lone.call(conn, ServiceId::Ckpt, ck::ITERATION_INITIALIZE, body);
    assert_eq!(over.status, Err(AisError::NoResources));
}

#[test]
fn creation_attributes_over_the_maximums_are_invalid_param() {
    let mut lone = LoneNode::ready();
    let conn = lone.open(ServiceId::Ckpt);
    let flags = ck::OPEN_READ | ck::OPEN_WRITE | ck::OPEN_CREATE;
    let cases = [
        (
            "max_sections",
            CreationAttributes {
                max_sections: MAX_SECTIONS_PER_CHECKPOINT + 1,
                ..attrs()
            },
        ),
        (
            "max_section_size",
            CreationAttributes {
                max_section_size: MAX_SECTION_BYTES + 1,
                checkpoint_size: MAX_SECTION_BYTES + 1,
                ..attrs()
            },
        ),
        (
            "max_section_id_size",
            CreationAttributes {
                max_section_id_size: MAX_SECTION_ID_SIZE + 1,
                ..attrs()
            },
        ),
    ];
    for (what, a) in cases {
        let r = lone.call(
            conn,
            ServiceId::Ckpt,
            ck::OPEN,
            open_body(what.as_bytes(), Some(a), flags),
        );
        assert_eq!(r.status, Err(AisError::InvalidParam), "{what}");
    }
    // At the maximums exactly, the checkpoint is created.
    let at_max = CreationAttributes {
        max_sections: MAX_SECTIONS_PER_CHECKPOINT,
        max_section_size: MAX_SECTION_BYTES,
        max_section_id_size: MAX_SECTION_ID_SIZE,
        checkpoint_size: MAX_SECTION_BYTES,
        ..attrs()
    };
    let r = lone.call(
        conn,
        ServiceId::Ckpt,
        ck::OPEN,
        open_body(b"at the maximums", Some(at_max), flags),
    );
    assert_eq!(r.status, Ok(()));
}

#[test]
fn names_vectors_and_writes_over_the_wire_maximums_are_refused() {
    let mut lone = LoneNode::ready();
    let conn = lone.open(ServiceId::Ckpt);
    let flags = ck::OPEN_READ | ck::OPEN_WRITE | ck::OPEN_CREATE;
    let long = vec![b'n'; ck::MAX_NAME_BYTES + 1];
    let r = lone.call(
        conn,
        ServiceId::Ckpt,
        ck::OPEN,
        open_body(&long, Some(attrs()), flags),
    );
    assert_eq!(r.status, Err(AisError::InvalidParam), "name");
    let longest = vec![b'n'; ck::MAX_NAME_BYTES];
    let r = lone.call(
        conn,
        ServiceId::Ckpt,
        ck::OPEN,
        open_body(&longest, Some(attrs()), flags),
    );
    let handle = handle_of(&r);

    let element = |data: &[u8]| ck::WriteElement {
        section_id: Bytes::new(),
        offset: 0,
        data: Bytes::copy_from_slice(data),
    };
    let vector = ck::Write {
        handle,
        elements: vec![element(b"x"); ck::MAX_IO_ELEMENTS + 1],
    }
    .encode();
    let r = lone.call(conn, ServiceId::Ckpt, ck::WRITE, vector);
    assert_eq!(r.status, Err(AisError::InvalidParam), "io vector");

    // More than MAX_DATA_BYTES in one request (two elements, each within
    // its own maximum).
    let half = vec![7u8; ck::MAX_DATA_BYTES / 2 + 1];
    let big = ck::Write {
        handle,
        elements: vec![element(&half), element(&half)],
    }
    .encode();
    let r = lone.call(conn, ServiceId::Ckpt, ck::WRITE, big);
    assert_eq!(r.status, Err(AisError::TooBig), "data per request");
}

fn groups(from: usize, n: usize) -> Vec<Group> {
    (from..from + n)
        .map(|i| Group::named(&format!("g{i}")))
        .collect()
}

#[test]
fn evs_groups_stop_at_the_per_call_and_per_connection_maximums() {
    let mut lone = LoneNode::ready();
    let conn = lone.open(ServiceId::Evs);
    let join = |g: Vec<Group>| evs::Groups { groups: g }.encode();
    let r = lone.call(
        conn,
        ServiceId::Evs,
        evs::JOIN,
        join(groups(0, evs::MAX_GROUPS_PER_CALL + 1)),
    );
    assert_eq!(r.status, Err(AisError::InvalidParam), "per call");
    let mut joined = 0;
    while joined < evs::MAX_GROUPS_PER_CONN {
        let n = evs::MAX_GROUPS_PER_CALL.min(evs::MAX_GROUPS_PER_CONN - joined);
        let r = lone.call(conn, ServiceId::Evs, evs::JOIN, join(groups(joined, n)));
        assert_eq!(r.status, Ok(()), "join at {joined}");
        joined += n;
    }
    let r = lone.call(conn, ServiceId::Evs, evs::JOIN, join(groups(joined, 1)));
    assert_eq!(r.status, Err(AisError::NoResources), "per connection");
    // Joining one already joined is no new group: allowed.
    let r = lone.call(conn, ServiceId::Evs, evs::JOIN, join(groups(0, 1)));
    assert_eq!(r.status, Ok(()));
}

/// The library refuses such a message with TOO_BIG before sending it
/// (libais/src/evs.rs); a client that sends one anyway meets the body
/// decoder, which refuses a length over the maximum: INVALID_PARAM.
#[test]
fn evs_messages_over_max_msg_bytes_are_refused() {
    let mut lone = LoneNode::ready();
    let conn = lone.open(ServiceId::Evs);
    let mcast = |len: usize| {
        evs::McastJoined {
            guarantee: evs::EvsGuarantee::Agreed,
            msg: Bytes::from(vec![1u8; len]),
        }
        .encode()
    };
    let r = lone.call(
        conn,
        ServiceId::Evs,
        evs::MCAST_JOINED,
        mcast(evs::MAX_MSG_BYTES + 1),
    );
    assert_eq!(r.status, Err(AisError::InvalidParam));
    let r = lone.call(
        conn,
        ServiceId::Evs,
        evs::MCAST_JOINED,
        mcast(evs::MAX_MSG_BYTES),
    );
    assert_eq!(r.status, Ok(()));
}

#[test]
fn client_connections_stop_at_the_node_maximum() {
    let mut lone = LoneNode::ready();
    for _ in 0..MAX_CLIENTS {
        lone.open(ServiceId::Cfg);
    }
    assert!(lone.connect().is_none());
    assert_eq!(lone.node.stats().clients_refused, 1);
}

fn lone_totem(cfg: TotemConfig) -> (Totem, Instant) {
    let mut t = Totem::new(cfg.validate().expect("valid"), Instant::ZERO);
    let mut now = Instant::ZERO;
    for _ in 0..10_000 {
        if t.state() == RingState::Operational {
            return (t, now);
        }
        match t.poll_timeout() {
            Some(at) => {
                now = at.max(now);
                t.handle_timeout(now);
            }
            None => break,
        }
        while t.poll_transmit().is_some() {}
        while t.poll_event().is_some() {}
    }
    panic!("a lone Totem did not become operational");
}

#[test]
fn totem_refuses_messages_over_max_message_bytes_and_beyond_the_send_queue_bytes() {
    let mut cfg = TotemConfig::new(NodeId::new(1).expect("id"));
    cfg.send_queue_bytes = 4 << 20;
    let max = cfg.max_message_bytes;
    let (mut t, now) = lone_totem(cfg);
    assert_eq!(
        t.handle_mcast(now, Bytes::from(vec![0u8; max + 1]), Guarantee::Agreed),
        Err(McastError::TooBig(max + 1))
    );
    // Without the token moving (no time passes), the queue fills by bytes:
    // four 1 MiB messages fit in 4 MiB, the fifth does not.
    let mib = Bytes::from(vec![0u8; 1 << 20]);
    let mut accepted = 0;
    while t.handle_mcast(now, mib.clone(), Guarantee::Agreed).is_ok() {
        accepted += 1;
        assert!(accepted <= 4, "the send queue took more than its bytes");
    }
    assert_eq!(accepted, 4);
    assert_eq!(
        t.handle_mcast(now, mib, Guarantee::Agreed),
        Err(McastError::QueueFull)
    );
}
