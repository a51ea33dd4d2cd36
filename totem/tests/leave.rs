//! A clean leave (SIGTERM): the survivors reform at once, not after the
//! token timeout, and keep what the leaver had sent.

mod harness;

use std::time::Duration;

use harness::{n, Net};
use totem::{ConfigKind, Event, Guarantee, RingState};

fn last_regular(net: &Net, id: totem::NodeId) -> Vec<totem::NodeId> {
    net.events[&id]
        .iter()
        .filter_map(|e| match e {
            Event::ConfigChange(c) if c.kind == ConfigKind::Regular => Some(c.members.clone()),
            _ => None,
        })
        .last()
        .expect("a regular configuration")
}

#[test]
fn survivors_reform_well_within_the_token_timeout() {
    let mut net = Net::new(3, 1000);
    net.run_for(Duration::from_millis(200));
    assert!(net.one_ring());
    // Node 3 sends; once the message is on the ring (node 3 delivered it
    // itself) node 3 leaves.
    net.mcast(n(3), b"last words", Guarantee::Agreed);
    while !net.delivered(n(3)).contains(&b"last words".to_vec()) {
        net.run_for(Duration::from_millis(1));
    }
    net.leave(n(3));
    // Far below the 1000 ms token timeout (join 50 ms, one round).
    net.run_for(Duration::from_millis(150));
    for id in [n(1), n(2)] {
        assert_eq!(net.nodes[&id].state(), RingState::Operational, "node {id}");
        assert_eq!(net.nodes[&id].members(), &[n(1), n(2)], "node {id}");
        assert_eq!(last_regular(&net, id), vec![n(1), n(2)]);
        assert!(net.delivered(id).contains(&b"last words".to_vec()));
    }
}

#[test]
fn a_left_instance_ignores_input_and_sets_no_timer() {
    let mut net = Net::new(2, 1000);
    net.run_for(Duration::from_millis(200));
    let t = net.nodes.get_mut(&n(2)).unwrap();
    t.leave(net.now);
    assert!(t.has_left());
    assert_eq!(t.poll_timeout(), None);
    let mut sent = 0;
    while t.poll_transmit().is_some() {
        sent += 1;
    }
    assert_eq!(sent, totem::srp::LEAVE_REPEATS);
    // Timers (token loss, hello, ...) no longer fire or send anything.
    t.handle_timeout(net.now + Duration::from_secs(10));
    assert!(t.poll_transmit().is_none(), "a left instance sends nothing");
    assert_eq!(
        t.handle_mcast(net.now, bytes::Bytes::from_static(b"x"), Guarantee::Agreed),
        Err(totem::McastError::QueueFull)
    );
}
