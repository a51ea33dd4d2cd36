//! Token hold cancel: on an idle ring the representative holds the token
//! (`seqno_unchanged_const` idle rotations, then up to `token_hold`); a
//! member with something to send asks it to pass the token on at once
//! (HoldCancel), so a message from any node on an idle ring is delivered
//! within a rotation, not after the hold. A lost request falls back to the
//! hold timer.

mod harness;

use std::time::Duration;

use harness::{n, Net};
use totem::{Guarantee, Stats};

/// Link delay 100 us: a rotation of three nodes takes 0.3 ms.
const PROMPT: Duration = Duration::from_millis(5);

fn idle_ring() -> Net {
    let mut net = Net::new(3, 1000);
    net.run_for(Duration::from_millis(100));
    assert!(net.one_ring());
    // Far more than 30 idle rotations: the representative holds the token.
    net.run_for(Duration::from_millis(500));
    net
}

fn stats(net: &Net, id: u32) -> &Stats {
    net.nodes[&n(id)].stats()
}

#[test]
fn a_message_from_a_member_on_an_idle_ring_does_not_wait_for_the_hold() {
    let mut net = idle_ring();
    for round in 0..10u32 {
        let before = net.delivered(n(1)).len();
        let payload = format!("from node 2, round {round}");
        net.mcast(n(2), payload.as_bytes(), Guarantee::Agreed);
        net.run_for(PROMPT);
        for id in 1..=3 {
            let d = net.delivered(n(id));
            assert_eq!(d.len(), before + 1, "node {id}, round {round}");
            assert_eq!(d.last().map(Vec::as_slice), Some(payload.as_bytes()));
        }
        // Idle again, long enough for the token to be held again.
        net.run_for(Duration::from_millis(300));
    }
    assert_eq!(stats(&net, 2).hold_cancels_sent, 10, "one request per wait");
    assert_eq!(stats(&net, 1).holds_cancelled, 10);
    assert_eq!(stats(&net, 3).hold_cancels_sent, 0);
}

#[test]
fn the_representative_releases_its_own_held_token_without_asking() {
    let mut net = idle_ring();
    net.mcast(n(1), b"from the representative", Guarantee::Safe);
    net.run_for(PROMPT);
    for id in 1..=3 {
        assert_eq!(net.delivered(n(id)).len(), 1, "node {id}");
    }
    assert_eq!(stats(&net, 1).hold_cancels_sent, 0);
    assert_eq!(stats(&net, 1).holds_cancelled, 0);
}

#[test]
fn a_lost_request_falls_back_to_the_hold_timer() {
    let mut net = idle_ring();
    // The request to node 1 is lost; nothing else of node 2's is in flight.
    net.blocked.insert((n(2), n(1)));
    net.mcast(n(2), b"request lost", Guarantee::Agreed);
    net.run_for(Duration::from_millis(1));
    net.blocked.clear();
    net.run_for(PROMPT);
    assert!(
        net.delivered(n(2)).is_empty(),
        "delivered before the hold ended: the request was not what released it"
    );
    net.run_for(Duration::from_millis(300));
    for id in 1..=3 {
        assert_eq!(
            net.delivered(n(id)),
            vec![b"request lost".to_vec()],
            "node {id}"
        );
    }
    assert_eq!(stats(&net, 2).hold_cancels_sent, 1);
    assert_eq!(stats(&net, 1).holds_cancelled, 0);
}

#[test]
fn a_busy_ring_sends_no_requests() {
    let mut net = Net::new(3, 1000);
    net.run_for(Duration::from_millis(100));
    assert!(net.one_ring());
    // Back to back: the ring never idles for 30 rotations.
    for i in 0..200u32 {
        net.mcast(n(1 + i % 3), format!("m{i}").as_bytes(), Guarantee::Agreed);
        net.run_for(Duration::from_micros(200));
    }
    net.run_for(PROMPT);
    assert_eq!(net.delivered(n(1)).len(), 200);
    assert_eq!(net.delivered(n(2)), net.delivered(n(1)));
    let sent: u64 = (1..=3).map(|id| stats(&net, id).hold_cancels_sent).sum();
    assert_eq!(sent, 0);
}
