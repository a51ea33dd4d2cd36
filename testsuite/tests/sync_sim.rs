//! The barrier sync in the simulator with services: nodes with two probe
//! engines under crashes, restarts, partitions and loss (see
//! `testsuite::nodesim`). `make test` also runs `syncsim` over more seeds.

use std::time::Duration;

use testsuite::nodesim::{self, SyncRunSpec};

#[test]
fn sync_agrees_and_converges_over_seeds() {
    let spec = SyncRunSpec::default();
    let mut rounds = 0;
    for seed in 1..=40 {
        let r = nodesim::run(&spec, seed);
        assert_eq!(r.violation, None, "seed {seed}: {r:?}");
        rounds += r.rounds_completed;
    }
    // Faults every 0.3-2.5 s for 12 s on 4 nodes: many rounds ran.
    assert!(rounds > 40 * 8, "only {rounds} sync rounds completed");
}

#[test]
fn sync_with_six_nodes_and_a_short_token() {
    let spec = SyncRunSpec {
        nodes: 6,
        token_timeout: Duration::from_millis(300),
        ..SyncRunSpec::default()
    };
    for seed in 1000..1010 {
        let r = nodesim::run(&spec, seed);
        assert_eq!(r.violation, None, "seed {seed}: {r:?}");
        assert!(r.items > 0, "seed {seed}: the workload sent nothing");
    }
}
