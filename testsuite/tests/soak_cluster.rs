//! A short soak (`make soak-cluster` in small): 5 real daemons on
//! loopback under EVS and CKPT load and a seeded fault schedule for about
//! 25 s, then the checker; and the checker fed the same run's logs,
//! doctored with a reordering and a loss, must report both. Needs the
//! release `aisexec` (`make test` builds it first).

use testsuite::procs::test_port;
use testsuite::soak::checker::{self, Property};
use testsuite::soak::log::{self, Event};
use testsuite::soak::{self, SoakSpec};

#[test]
fn short_soak_keeps_every_promise_and_doctored_logs_are_caught() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut spec = SoakSpec::new(25, 7, test_port(0));
    spec.settle_secs = 8;
    spec.rate = 20;
    spec.keep_dir = Some(dir.path().to_path_buf());
    let report = soak::run(&spec).expect("the cluster formed");
    for line in &report.lines {
        eprintln!("{line}");
    }
    assert!(
        report.violations.is_empty(),
        "violations (logs in {}): {:#?}",
        report.dir.display(),
        report.violations
    );
    let faults: u64 = report.faults.values().sum();
    assert!(faults >= 3, "faults were injected: {:?}", report.faults);
    assert!(report.check.messages >= 500, "{:?}", report.check);
    assert!(report.check.synchrony_groups >= 1, "{:?}", report.check);
    assert!(report.check.self_deliveries >= 100, "{:?}", report.check);
    assert_eq!(
        report.lines.last().map(String::as_str),
        Some("soak: 0 violations")
    );

    let logs = log::read_all(&dir.path().join("evs-logs")).expect("logs readable");
    assert!(checker::check(&logs).violations.is_empty());
    let busiest = (0..logs.len())
        .max_by_key(|&i| {
            logs[i]
                .events
                .iter()
                .filter(|e| matches!(e, Event::Deliver(_)))
                .count()
        })
        .expect("sessions");
    // Deliveries inside live segments (configuration changes after the
    // join), with deliveries on both sides: the checker holds those to
    // every promise.
    let events = &logs[busiest].events;
    let mut joined = false;
    let mut live = false;
    let mut candidates = Vec::new();
    for (i, e) in events.iter().enumerate() {
        match e {
            Event::Joined => joined = true,
            Event::Conf { .. } => live = joined,
            Event::Deliver(_)
                if live
                    && i > 0
                    && matches!(events[i - 1], Event::Deliver(_))
                    && matches!(events.get(i + 2), Some(Event::Deliver(_)))
                    && matches!(events[i + 1], Event::Deliver(_)) =>
            {
                candidates.push(i);
            }
            _ => {}
        }
    }
    assert!(
        candidates.len() > 50,
        "{} live deliveries",
        candidates.len()
    );
    let at = candidates[candidates.len() / 2];

    // Two adjacent deliveries swapped in one session: every other session
    // that got both got them in the recorded order.
    let mut reordered = logs.clone();
    reordered[busiest].events.swap(at, at + 1);
    let found = checker::check(&reordered).violations;
    assert!(
        found.iter().any(|v| v.property == Property::TotalOrder),
        "a swap is a total order violation: {found:?}"
    );

    // One delivery dropped from the middle of the session: a hole.
    let mut lost = logs.clone();
    lost[busiest].events.remove(at);
    let found = checker::check(&lost).violations;
    assert!(
        found
            .iter()
            .any(|v| matches!(v.property, Property::NoLoss | Property::VirtualSynchrony)),
        "a dropped delivery is a loss: {found:?}"
    );
}
