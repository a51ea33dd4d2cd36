//! Named scenarios: one fault pattern each, with the promises that go with
//! it. Runnable with `sim --scenario NAME` and as tests
//! (`testsuite/tests/scenarios.rs`). The seed only shapes the workload (and
//! the timing of `churn`).
//!
//! Most scenarios first check that the ring of all K nodes formed
//! ([`Action::Expect`] at 3.5 s), then inject their fault at 4 s.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use totem::NodeId;

use crate::checker::StabilityFacts;
use crate::faults::{at, node, stream, Action, LivenessCheck, Scenario, LIVENESS_BOUND};
use crate::workload::LARGE_BYTES;

/// Every named scenario.
pub const NAMES: [&str; 11] = [
    "steady",
    "crash_one",
    "crash_and_restart",
    "partition_heal",
    "one_way_link",
    "pause",
    "loss30",
    "large_messages",
    "churn",
    "fail_recv",
    "leave",
];

/// When the scenarios check that the first ring formed.
const FORMED: Duration = Duration::from_millis(3500);
/// When they inject their fault.
const FAULT: Duration = Duration::from_secs(4);
/// How long after a one-way link appears the ring must have settled.
pub const ONE_WAY_SETTLE: Duration = Duration::from_secs(15);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn all(nodes: usize) -> Vec<NodeId> {
    (1..=nodes).map(node).collect()
}

fn liveness_from(s: &mut Scenario, from: Duration) {
    s.liveness = Some(LivenessCheck {
        from: at(from),
        bound: LIVENESS_BOUND,
    });
}

/// The scenario `name` for `nodes` nodes and `seed`, or why not.
///
/// # Errors
/// An unknown name, or a scenario that needs more nodes.
pub fn by_name(name: &str, nodes: usize, seed: u64) -> Result<Scenario, String> {
    if name != "steady" && nodes < 2 {
        return Err(format!("scenario {name} needs at least 2 nodes"));
    }
    Ok(match name {
        "steady" => steady(nodes),
        "crash_one" => crash_one(nodes),
        "crash_and_restart" => crash_and_restart(nodes),
        "partition_heal" => partition_heal(nodes),
        "one_way_link" => one_way_link(nodes),
        "pause" => pause(nodes),
        "loss30" => loss30(nodes),
        "large_messages" => large_messages(nodes),
        "churn" => churn(nodes, seed),
        "fail_recv" => fail_recv(nodes),
        "leave" => leave(nodes),
        _ => {
            return Err(format!(
                "unknown scenario {name}; known: {}",
                NAMES.join(", ")
            ))
        }
    })
}

/// No faults: one ring of all K nodes forms (within the liveness bound from
/// the start) and carries the traffic.
pub fn steady(nodes: usize) -> Scenario {
    let mut s = Scenario::new("steady", nodes, secs(20.0));
    liveness_from(&mut s, Duration::ZERO);
    s
}

/// The representative (node 1) crashes for good at 4 s; the others must
/// detect it and form a ring of K-1.
pub fn crash_one(nodes: usize) -> Scenario {
    let mut s = Scenario::new("crash_one", nodes, secs(20.0));
    s.at(FORMED, Action::Expect(vec![all(nodes)]))
        .at(FAULT, Action::Crash(node(1)));
    liveness_from(&mut s, FAULT);
    s
}

/// Node 2 crashes at 4 s, the rest form a ring of K-1 (checked at 9.5 s),
/// node 2 restarts at 10 s with its persisted ring seq and must rejoin.
pub fn crash_and_restart(nodes: usize) -> Scenario {
    let mut s = Scenario::new("crash_and_restart", nodes, secs(22.0));
    let rest: Vec<NodeId> = all(nodes).into_iter().filter(|&n| n != node(2)).collect();
    s.at(FORMED, Action::Expect(vec![all(nodes)]))
        .at(FAULT, Action::Crash(node(2)))
        .at(secs(9.5), Action::Expect(vec![rest]))
        .at(secs(10.0), Action::Start(node(2)));
    liveness_from(&mut s, secs(10.0));
    s
}

/// Clean leaves (SIGTERM): node 2 leaves at 4 s and the others must be in
/// a ring without it 300 ms later, far below the token timeout a crash
/// costs; it restarts at 6 s; at 9 s the representative (node 1) leaves,
/// with the same 300 ms bound.
pub fn leave(nodes: usize) -> Scenario {
    let mut s = Scenario::new("leave", nodes, secs(22.0));
    let without = |gone: &[u32]| -> Vec<NodeId> {
        all(nodes)
            .into_iter()
            .filter(|n| !gone.contains(&n.get()))
            .collect()
    };
    s.at(FORMED, Action::Expect(vec![all(nodes)]))
        .at(FAULT, Action::Leave(node(2)))
        .at(secs(4.3), Action::Expect(vec![without(&[2])]))
        .at(secs(6.0), Action::Start(node(2)))
        .at(secs(8.9), Action::Expect(vec![all(nodes)]))
        .at(secs(9.0), Action::Leave(node(1)))
        .at(secs(9.3), Action::Expect(vec![without(&[1])]));
    liveness_from(&mut s, secs(9.0));
    s
}

/// The network splits into the lower half and the upper half (2|3 for 5
/// nodes) at 4 s; each side must form its own ring (checked at 9.5 s); at
/// 10 s the partition heals and the rings must merge.
pub fn partition_heal(nodes: usize) -> Scenario {
    let mut s = Scenario::new("partition_heal", nodes, secs(22.0));
    let ids = all(nodes);
    let (low, high) = ids.split_at(nodes / 2);
    let groups = vec![low.to_vec(), high.to_vec()];
    s.at(FORMED, Action::Expect(vec![all(nodes)]))
        .at(FAULT, Action::Partition(groups.clone()))
        .at(secs(9.5), Action::Expect(groups))
        .at(secs(10.0), Action::HealPartition);
    liveness_from(&mut s, secs(10.0));
    s
}

/// From 4 s to the end, node 2 does not hear node 1 (node 1 still hears
/// node 2): no ring can hold both. Within [`ONE_WAY_SETTLE`] the cluster
/// must settle, with one of them out, into rings that no longer change
/// (stability), the largest with K-1 members.
pub fn one_way_link(nodes: usize) -> Scenario {
    let mut s = Scenario::new("one_way_link", nodes, secs(30.0));
    s.at(FORMED, Action::Expect(vec![all(nodes)])).at(
        FAULT,
        Action::OneWay {
            from: node(1),
            to: node(2),
        },
    );
    s.stability = Some(StabilityFacts {
        settle: at(FAULT + ONE_WAY_SETTLE),
        min_ring: nodes - 1,
    });
    s
}

/// Node 2 stops for 3 x the token timeout at 4 s, then resumes and sees the
/// late datagrams and its overdue timers at once; the ring must be whole
/// again within the bound.
pub fn pause(nodes: usize) -> Scenario {
    let mut s = Scenario::new("pause", nodes, secs(20.0));
    let duration = s.token_timeout * 3;
    s.at(FORMED, Action::Expect(vec![all(nodes)])).at(
        FAULT,
        Action::Pause {
            node: node(2),
            duration,
        },
    );
    liveness_from(&mut s, FAULT + duration);
    s
}

/// 30% loss on every datagram for the first 10 s (formation included),
/// then calm.
pub fn loss30(nodes: usize) -> Scenario {
    let mut s = Scenario::new("loss30", nodes, secs(22.0));
    s.at(Duration::ZERO, Action::Loss(0.30))
        .at(secs(10.0), Action::Calm);
    liveness_from(&mut s, secs(10.0));
    s
}

/// Messages of 512 KiB..1 MiB (hundreds of fragments each) in the
/// background, plus one of exactly 1 MiB from every node at 4 s; 2% loss
/// for the first 10 s so fragments need retransmission.
pub fn large_messages(nodes: usize) -> Scenario {
    let mut s = Scenario::new("large_messages", nodes, secs(22.0));
    s.workload.p_large = 0.02;
    s.workload.large_bytes = (512 * 1024, LARGE_BYTES.1);
    s.at(Duration::ZERO, Action::Loss(0.02))
        .at(FORMED, Action::Expect(vec![all(nodes)]));
    for i in 1..=nodes {
        s.at(
            FAULT + Duration::from_millis(100 * i as u64),
            Action::Mcast {
                node: node(i),
                bytes: LARGE_BYTES.1,
            },
        );
    }
    s.at(secs(10.0), Action::Calm);
    s.sort();
    liveness_from(&mut s, secs(10.0));
    s
}

/// From 4 s to 14 s a node crashes every 0.4..1.2 s and comes back
/// 0.3..2 s later (at most K-1 down at once); then calm.
pub fn churn(nodes: usize, seed: u64) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream::FAULTS);
    let mut s = Scenario::new("churn", nodes, secs(26.0));
    let calm = secs(14.0);
    let mut down_until = vec![Duration::ZERO; nodes];
    let mut t = FAULT;
    while t < calm {
        let up: Vec<usize> = (0..nodes).filter(|&i| down_until[i] <= t).collect();
        if nodes - up.len() < nodes - 1 {
            let i = up[rng.random_range(0..up.len())];
            let back = t + Duration::from_millis(rng.random_range(300..=2000));
            s.at(t, Action::Crash(node(i + 1)));
            if back < calm {
                s.at(back, Action::Start(node(i + 1)));
            }
            down_until[i] = back.min(calm);
        }
        t += Duration::from_millis(rng.random_range(400..=1200));
    }
    s.at(calm, Action::Calm);
    s.sort();
    liveness_from(&mut s, calm);
    s
}

/// From 4 s to the end, node 2 receives no multicast: no regular message,
/// join or announcement reaches it, while it still sends and the token
/// still reaches it (broken multicast, working unicast). Its aru stalls,
/// and after `fail_recv_const` rotations the others must remove it and go
/// on delivering; then the membership must stay put: a ring with node 2
/// could never deliver. Checked as stability, like a one-way link.
pub fn fail_recv(nodes: usize) -> Scenario {
    let mut s = Scenario::new("fail_recv", nodes, secs(30.0));
    s.at(FORMED, Action::Expect(vec![all(nodes)]))
        .at(FAULT, Action::DeafToMulticast(node(2)));
    s.stability = Some(StabilityFacts {
        settle: at(FAULT + ONE_WAY_SETTLE),
        min_ring: nodes - 1,
    });
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_is_valid_for_every_size() {
        for name in NAMES {
            for nodes in [2, 3, 5, 32] {
                let s = by_name(name, nodes, 1).expect("known");
                assert_eq!(s.name, name);
                s.validate()
                    .unwrap_or_else(|e| panic!("{name}/{nodes}: {e}"));
                assert!(
                    s.schedule.windows(2).all(|w| w[0].at <= w[1].at),
                    "{name} sorted"
                );
                assert!(
                    s.liveness.is_some() != s.stability.is_some(),
                    "{name}: one promise"
                );
            }
        }
        assert!(by_name("nope", 5, 0).is_err());
        assert!(by_name("crash_one", 1, 0).is_err());
        assert!(by_name("steady", 1, 0).is_ok());
    }

    #[test]
    fn churn_crashes_many_and_keeps_one_up() {
        let s = churn(5, 3);
        let crashes = s
            .schedule
            .iter()
            .filter(|x| matches!(x.action, Action::Crash(_)))
            .count();
        assert!(crashes >= 8, "{crashes}");
    }
}
