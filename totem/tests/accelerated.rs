//! The accelerated ring (`accelerated_window`, see `totem::srp`) on links
//! that keep send order (the harness: one fixed delay, datagrams of one
//! instant arrive in the order sent). There the standard protocol never
//! lets a token arrive before the messages it covers, and the accelerated
//! one does on every busy visit: the holder's messages sent after the
//! token reach the next holder after it. Those are not requested again
//! (they are in flight, not lost), while messages really lost are.

mod harness;

use std::time::Duration;

use harness::{n, Net};
use totem::{Guarantee, Stats};

const MSG_BYTES: usize = 1000;
const PER_NODE: u32 = 40;

fn sum(net: &Net, f: impl Fn(&Stats) -> u64) -> u64 {
    net.nodes.values().map(|t| f(t.stats())).sum()
}

/// A 3-node ring where every node queues `PER_NODE` messages of one frame
/// each, so each visit sends several.
fn busy_ring(accelerated_window: u32) -> Net {
    let mut net = Net::accelerated(3, 1000, accelerated_window);
    net.run_for(Duration::from_millis(100));
    assert!(net.one_ring());
    for i in 0..PER_NODE {
        for id in 1..=3 {
            let mut payload = format!("n{id} m{i} ").into_bytes();
            payload.resize(MSG_BYTES, b'.');
            net.mcast(n(id), &payload, Guarantee::Agreed);
        }
    }
    net
}

fn assert_all_delivered_in_one_order(net: &Net) {
    let d1 = net.delivered(n(1));
    assert_eq!(d1.len(), 3 * PER_NODE as usize);
    assert_eq!(net.delivered(n(2)), d1);
    assert_eq!(net.delivered(n(3)), d1);
}

#[test]
fn the_token_overtakes_messages_that_are_not_requested_again() {
    let mut standard = busy_ring(0);
    standard.run_for(Duration::from_millis(500));
    assert_all_delivered_in_one_order(&standard);
    assert_eq!(sum(&standard, |s| s.mcasts_sent_after_token), 0);
    assert_eq!(
        sum(&standard, |s| s.tokens_ahead_of_messages),
        0,
        "standard: a token never arrives before what it covers here"
    );

    let mut accel = busy_ring(5);
    accel.run_for(Duration::from_millis(500));
    assert_all_delivered_in_one_order(&accel);
    let after = sum(&accel, |s| s.mcasts_sent_after_token);
    let ahead = sum(&accel, |s| s.tokens_ahead_of_messages);
    assert!(
        after >= 20,
        "only {after} messages were sent after the token"
    );
    assert!(ahead >= 4, "only {ahead} tokens overtook messages");
    assert_eq!(
        sum(&accel, |s| s.mcasts_retransmitted),
        0,
        "messages in flight behind the token were requested again"
    );
    // A visit's split: at most 5 after the token, the rest before it.
    let sent = sum(&accel, |s| s.mcasts_sent);
    assert!(after < sent, "{after} of {sent} went after the token");
}

#[test]
fn messages_lost_behind_the_token_are_still_recovered() {
    let mut net = busy_ring(17);
    let installed = net.nodes[&n(1)].stats().rings_installed;
    // Node 3 hears nothing node 1 multicasts for a while (the token goes
    // 1 -> 2 -> 3 and is not blocked), while node 1 sends everything it
    // sends after passing the token.
    net.blocked.insert((n(1), n(3)));
    net.run_for(Duration::from_millis(3));
    net.blocked.clear();
    net.run_for(Duration::from_millis(500));
    assert_all_delivered_in_one_order(&net);
    assert!(
        sum(&net, |s| s.mcasts_retransmitted) > 0,
        "what node 3 lost was requested and sent again"
    );
    assert!(net.nodes[&n(1)].stats().mcasts_sent_after_token > 0);
    assert_eq!(
        net.nodes[&n(1)].stats().rings_installed,
        installed,
        "no membership change"
    );
}

#[test]
fn an_idle_accelerated_ring_delivers_single_messages() {
    // One message per visit: it goes after the token, and is delivered
    // everywhere (safe too, which waits for every member's aru), as with
    // the standard protocol. (On an idle ring the representative holds
    // the token for the hold time, so allow a few of those.)
    for window in [0, 17] {
        let mut net = Net::accelerated(3, 1000, window);
        net.run_for(Duration::from_millis(100));
        for (i, g) in [Guarantee::Agreed, Guarantee::Safe].into_iter().enumerate() {
            net.mcast(n(2), format!("single {i}").as_bytes(), g);
            net.run_for(Duration::from_millis(400));
        }
        let d = net.delivered(n(1));
        assert_eq!(d, vec![b"single 0".to_vec(), b"single 1".to_vec()]);
        assert_eq!(net.delivered(n(2)), d);
        assert_eq!(net.delivered(n(3)), d);
        let after = if window > 0 { 2 } else { 0 };
        assert_eq!(net.nodes[&n(2)].stats().mcasts_sent_after_token, after);
    }
}
