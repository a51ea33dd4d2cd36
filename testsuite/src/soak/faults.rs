//! The soak's fault schedule: drawn from a seed before the run starts, so
//! a seed names the same schedule every time (the daemons' timing is real
//! and is not replayed; the faults, their targets and their times are).
//!
//! Two lanes run side by side:
//! - processes: kill -9 and restart, SIGSTOP then SIGCONT (mostly longer
//!   than the token timeout, so the ring drops the node and takes it back),
//!   SIGTERM (a clean leave) and restart; sometimes two nodes at once, never
//!   more than two down or stopped together, never one node twice at once;
//! - network: packet drop and delay on one node or on all, through the
//!   daemons' test-only fault hook (`aisexec/src/fault_hook.rs`), for a few
//!   seconds at a time.
//!
//! Every fault is undone before the fault phase ends.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What the driver does at a step.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// SIGKILL the node.
    Kill9(u8),
    /// SIGSTOP the node.
    Stop(u8),
    /// SIGCONT the node.
    Cont(u8),
    /// SIGTERM the node (it leaves the ring and exits).
    Term(u8),
    /// Start the node again.
    Restart(u8),
    /// Write a fault spec to the node's control file (`drop=...`).
    Net(u8, String),
    /// Empty the node's control file.
    NetOff(u8),
}

/// An action at a time after the start of the fault phase.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// When, from the start of the run.
    pub at: Duration,
    /// What.
    pub action: Action,
}

/// What kind of fault, for the counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// kill -9 then restart.
    Kill9,
    /// SIGSTOP then SIGCONT.
    Pause,
    /// SIGTERM then restart.
    Term,
    /// Packet drop and/or delay.
    Net,
}

impl Action {
    /// The fault this action starts, if it starts one.
    pub fn starts(&self) -> Option<FaultKind> {
        match self {
            Action::Kill9(_) => Some(FaultKind::Kill9),
            Action::Stop(_) => Some(FaultKind::Pause),
            Action::Term(_) => Some(FaultKind::Term),
            Action::Net(..) => Some(FaultKind::Net),
            Action::Cont(_) | Action::Restart(_) | Action::NetOff(_) => None,
        }
    }
}

/// The schedule for `seed` on `nodes` nodes: faults from `start` until
/// `end` (every fault undone by then), with the token timeout `token_ms`
/// (pauses are drawn around it). Sorted by time.
pub fn schedule(seed: u64, nodes: u8, start: Duration, end: Duration, token_ms: u64) -> Vec<Step> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut steps = Vec::new();
    let ms = Duration::from_millis;
    // Per node: busy until (process faults).
    let mut busy = vec![Duration::ZERO; usize::from(nodes) + 1];
    let mut t = start;
    while t < end {
        let kind = rng.random_range(0..100);
        let both = rng.random_range(0..100) < 15 && nodes >= 4;
        let count = if both { 2 } else { 1 };
        let mut targets: Vec<u8> = Vec::new();
        while targets.len() < count {
            let n = rng.random_range(1..=nodes);
            if !targets.contains(&n) {
                targets.push(n);
            }
        }
        let mut latest = t;
        for &n in &targets {
            // Never two process faults on one node at once; at most two
            // nodes affected at any time (checked below).
            let at = t.max(busy[usize::from(n)]);
            let (first, second, length) = if kind < 40 {
                let down = ms(rng.random_range(500..6_000));
                (Action::Kill9(n), Action::Restart(n), down)
            } else if kind < 75 {
                // Mostly longer than the token timeout: the node is
                // dropped; sometimes shorter: it is not.
                let lo = if rng.random_range(0..4) == 0 {
                    token_ms / 3
                } else {
                    token_ms * 3 / 2
                };
                let pause = ms(rng.random_range(lo..token_ms * 4));
                (Action::Stop(n), Action::Cont(n), pause)
            } else {
                let down = ms(rng.random_range(300..4_000));
                (Action::Term(n), Action::Restart(n), down)
            };
            let undo = at + length;
            if undo + ms(500) >= end {
                continue;
            }
            let concurrent = busy
                .iter()
                .enumerate()
                .filter(|&(i, &b)| i != usize::from(n) && b > at)
                .count();
            if concurrent >= 2 {
                continue;
            }
            steps.push(Step { at, action: first });
            steps.push(Step {
                at: undo,
                action: second,
            });
            // A restarted node needs a moment to start and join.
            busy[usize::from(n)] = undo + ms(1_000);
            latest = latest.max(undo);
        }
        // The next fault: often while this one lasts, sometimes after a
        // quiet spell.
        let gap = if rng.random_range(0..3) == 0 {
            ms(rng.random_range(2_000..8_000))
        } else {
            ms(rng.random_range(300..2_500))
        };
        t = if rng.random_range(0..4) == 0 {
            t + gap
        } else {
            latest + gap
        };
    }

    // The network lane.
    let mut t = start + ms(rng.random_range(0..3_000));
    while t < end {
        let length = ms(rng.random_range(2_000..10_000));
        if t + length + ms(500) >= end {
            break;
        }
        let all = rng.random_range(0..3) == 0;
        let drop = f64::from(rng.random_range(0..150_u32)) / 1000.0;
        let delay = f64::from(rng.random_range(0..400_u32)) / 1000.0;
        let delay_ms = rng.random_range(2..60_u64);
        let net_seed = rng.random_range(1..u64::from(u32::MAX));
        let targets: Vec<u8> = if all {
            (1..=nodes).collect()
        } else {
            vec![rng.random_range(1..=nodes)]
        };
        for n in targets {
            let spec = format!(
                "drop={drop:.3},delay={delay:.3},delay_ms={delay_ms},seed={}",
                net_seed + u64::from(n)
            );
            steps.push(Step {
                at: t,
                action: Action::Net(n, spec),
            });
            steps.push(Step {
                at: t + length,
                action: Action::NetOff(n),
            });
        }
        t += length + ms(rng.random_range(1_000..12_000));
    }
    steps.sort_by_key(|s| s.at);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_names_one_schedule_and_every_fault_is_undone_in_time() {
        let s = |seed| {
            schedule(
                seed,
                5,
                Duration::from_secs(3),
                Duration::from_secs(300),
                1000,
            )
        };
        assert_eq!(s(7), s(7));
        assert_ne!(s(7), s(8));
        for seed in 0..50 {
            let steps = s(seed);
            assert!(steps.windows(2).all(|w| w[0].at <= w[1].at));
            let mut down: Vec<u8> = Vec::new();
            let mut netted: Vec<u8> = Vec::new();
            for st in &steps {
                assert!(st.at < Duration::from_secs(300));
                match &st.action {
                    Action::Kill9(n) | Action::Stop(n) | Action::Term(n) => {
                        assert!(!down.contains(n), "seed {seed}: node {n} faulted twice");
                        down.push(*n);
                        assert!(down.len() <= 2, "seed {seed}: {down:?} down at once");
                    }
                    Action::Restart(n) | Action::Cont(n) => down.retain(|d| d != n),
                    Action::Net(n, _) => netted.push(*n),
                    Action::NetOff(n) => netted.retain(|d| d != n),
                }
            }
            assert!(
                down.is_empty() && netted.is_empty(),
                "seed {seed}: not undone"
            );
            let kinds: std::collections::BTreeSet<FaultKind> =
                steps.iter().filter_map(|s| s.action.starts()).collect();
            assert_eq!(kinds.len(), 4, "seed {seed}: every kind in 300 s");
        }
    }
}
