//! The send queue's bounds, through the public API: bytes and messages.

use bytes::Bytes;
use totem::{Guarantee, Instant, McastError, NodeId, RingState, Totem, TotemConfig};

fn lone_node(send_queue_messages: usize) -> Totem {
    let mut c = TotemConfig::new(NodeId::new(1).expect("nonzero"));
    c.send_queue_messages = send_queue_messages;
    Totem::new(c.validate().expect("valid"), Instant::ZERO)
}

/// Fires the node's timers until it is Operational (a lone node forms its
/// own ring after one consensus timeout), draining what it sends.
fn run_until_operational(t: &mut Totem) -> Instant {
    let mut now = Instant::ZERO;
    for _ in 0..1000 {
        while t.poll_transmit().is_some() {}
        while t.poll_event().is_some() {}
        if t.state() == RingState::Operational {
            return now;
        }
        now = t.poll_timeout().expect("a timer is armed");
        t.handle_timeout(now);
    }
    panic!("a lone node did not form its ring");
}

#[test]
fn many_tiny_messages_fill_the_queue_by_count_not_by_bytes() {
    let mut t = lone_node(4);
    // In Gather nothing is sent: the messages wait.
    for i in 0..4u8 {
        t.handle_mcast(Instant::ZERO, Bytes::from(vec![i]), Guarantee::Agreed)
            .expect("room for four");
    }
    assert_eq!(
        t.handle_mcast(Instant::ZERO, Bytes::from_static(b"x"), Guarantee::Agreed),
        Err(McastError::QueueFull),
        "4 bytes of 8 MiB queued, but 4 of 4 messages"
    );
    assert_eq!(t.queued_bytes(), 4, "the refused message was not queued");
    // Once the ring is up the queue drains and takes messages again.
    let now = run_until_operational(&mut t);
    assert_eq!(t.queued_bytes(), 0);
    t.handle_mcast(now, Bytes::from_static(b"x"), Guarantee::Agreed)
        .expect("room again");
}

#[test]
fn forged_mcast_above_the_held_token_does_not_collide_with_our_next_seq() {
    use totem::wire::{Body, Mcast, McastContent, Packet};
    let mut t = lone_node(16);
    let now = run_until_operational(&mut t);
    // A lone idle node holds its own token. Nobody else may assign seqs
    // now, so these are forged; had they been stored, our next message's
    // seq would already be taken.
    let before = t.stats().dropped_malformed;
    for seq in 1..=32 {
        let forged = Packet {
            sender: NodeId::new(2).expect("nonzero"),
            ring_id: t.ring_id(),
            body: Body::Mcast(Mcast {
                seq: totem::Seq(seq),
                origin: NodeId::new(2).expect("nonzero"),
                guarantee: Guarantee::Agreed,
                content: McastContent::Frame(Bytes::from_static(b"forged")),
            }),
        };
        t.handle_packet(now, forged.encode());
    }
    assert!(t.stats().dropped_malformed > before, "forged seqs refused");
    t.handle_mcast(now, Bytes::from_static(b"mine"), Guarantee::Agreed)
        .expect("room");
    assert_eq!(t.queued_bytes(), 0, "sent at once with the held token");
}
