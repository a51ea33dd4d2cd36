//! Many seeds, on several threads. Each seed is an independent run; the
//! threads share only a counter of the next seed to take, so the outcome of
//! every seed is the same whatever the number of threads (only the order in
//! which results are reported varies).

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::{run_seed, RunSpec, SeedResult, Trace};

/// What a swarm found.
#[derive(Debug, Default)]
pub struct Summary {
    /// Seeds without a violation.
    pub passed: u64,
    /// Seeds with one.
    pub failed: u64,
    /// The failing seeds, by seed.
    pub failures: Vec<SeedResult>,
    /// Steps of all runs together.
    pub steps: u64,
    /// CPU-side time of all runs together (summed over threads).
    pub busy: Duration,
}

/// Runs `seeds` of `spec` on `jobs` threads, calling `on_result` (on the
/// calling thread) as each seed finishes.
///
/// # Errors
/// When the spec is invalid; nothing is run then.
pub fn run_seeds(
    spec: &RunSpec,
    seeds: Range<u64>,
    jobs: usize,
    mut on_result: impl FnMut(&SeedResult),
) -> Result<Summary, String> {
    spec.scenario(seeds.start)?;
    let next = AtomicU64::new(seeds.start);
    let (tx, rx) = mpsc::channel::<(SeedResult, Duration)>();
    let mut summary = Summary::default();
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            let tx = tx.clone();
            let next = &next;
            let end = seeds.end;
            scope.spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end {
                    break;
                }
                let started = std::time::Instant::now();
                let result = run_seed(spec, seed, Trace::off()).expect("the spec was checked");
                if tx.send((result, started.elapsed())).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for (result, took) in rx {
            on_result(&result);
            summary.steps += result.stats.steps;
            summary.busy += took;
            if result.violation.is_some() {
                summary.failed += 1;
                summary.failures.push(result);
            } else {
                summary.passed += 1;
            }
        }
    });
    summary.failures.sort_by_key(|r| r.seed);
    Ok(summary)
}
