//! Replicated checkpoints in the simulator: CKPT engines on every node,
//! clients writing from every node, under crashes, restarts, partitions
//! and loss; after the last heal every replica of every checkpoint is
//! identical (see `testsuite::ckptsim`).

use std::time::Duration;

use testsuite::ckptsim::{self, CkptRunSpec};

#[test]
fn replicas_are_identical_after_the_last_heal_over_seeds() {
    let spec = CkptRunSpec::default();
    let mut writes = 0;
    for seed in 1..=40 {
        let r = ckptsim::run(&spec, seed);
        assert_eq!(r.violation, None, "seed {seed}: {r:?}");
        assert!(r.faults > 0 && r.rounds_completed > 0, "seed {seed}: {r:?}");
        writes += r.writes_ok;
    }
    assert!(writes > 40 * 50, "only {writes} writes acknowledged");
}

#[test]
fn replicas_are_identical_with_five_nodes_and_a_short_token() {
    let spec = CkptRunSpec {
        nodes: 5,
        token_timeout: Duration::from_millis(300),
        ..CkptRunSpec::default()
    };
    for seed in 500..512 {
        let r = ckptsim::run(&spec, seed);
        assert_eq!(r.violation, None, "seed {seed}: {r:?}");
    }
}

#[test]
fn replicas_are_identical_with_megabytes_to_sync() {
    // Writes of up to 200 KB: stores of megabytes, each sync transfer many
    // ring messages.
    let spec = CkptRunSpec {
        max_write_bytes: 200_000,
        ..CkptRunSpec::default()
    };
    for seed in 900..903 {
        let r = ckptsim::run(&spec, seed);
        assert_eq!(r.violation, None, "seed {seed}: {r:?}");
    }
}
