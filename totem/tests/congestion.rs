//! Receiver-driven flow control: a node whose local receivers lag
//! (`set_receivers_congested`) keeps every member from sending new messages
//! while the token still circulates; clearing it lets them all through, in
//! one order, and no membership change happens meanwhile.

mod harness;

use std::time::Duration;

use harness::{n, Net};
use totem::Guarantee;

#[test]
fn a_congested_member_holds_new_messages_back_ring_wide_until_cleared() {
    let mut net = Net::new(3, 1000);
    net.run_for(Duration::from_millis(100));
    assert!(net.one_ring());
    let rings = |net: &Net| net.nodes[&n(1)].stats().rings_installed;
    let installed = rings(&net);

    net.nodes
        .get_mut(&n(2))
        .unwrap()
        .set_receivers_congested(true);
    // It takes effect with node 2's next visit (its claim on the token):
    // messages of node 2 and of node 3, which the token reaches after it.
    for i in 0..12u32 {
        net.mcast(n(i % 2 + 2), format!("m{i}").as_bytes(), Guarantee::Agreed);
    }
    net.run_for(Duration::from_millis(300));
    for id in [n(1), n(2), n(3)] {
        assert!(
            net.delivered(id).is_empty(),
            "node {id}: nothing new is sent"
        );
    }
    assert!(net.nodes[&n(2)].stats().congested_visits > 0);
    assert_eq!(rings(&net), installed, "the token kept circulating");

    net.nodes
        .get_mut(&n(2))
        .unwrap()
        .set_receivers_congested(false);
    net.run_for(Duration::from_millis(300));
    let d1 = net.delivered(n(1));
    assert_eq!(d1.len(), 12);
    assert_eq!(net.delivered(n(2)), d1);
    assert_eq!(net.delivered(n(3)), d1);
    assert_eq!(rings(&net), installed, "no membership change");
}

#[test]
fn a_congested_lone_node_holds_its_token_instead_of_spinning() {
    let mut net = Net::new(1, 1000);
    net.run_for(Duration::from_secs(2));
    assert!(net.one_ring());
    net.nodes
        .get_mut(&n(1))
        .unwrap()
        .set_receivers_congested(true);
    net.mcast(n(1), b"held back", Guarantee::Agreed);
    // A spinning token would never let simulated time advance.
    net.run_for(Duration::from_millis(500));
    assert!(net.delivered(n(1)).is_empty());
    let visits = net.nodes[&n(1)].stats().congested_visits;
    assert!(visits > 0 && visits < 100, "{visits} visits in 500 ms");
    net.nodes
        .get_mut(&n(1))
        .unwrap()
        .set_receivers_congested(false);
    net.run_for(Duration::from_millis(500));
    assert_eq!(net.delivered(n(1)), vec![b"held back".to_vec()]);
}
