//! Runs the simulator with services (`testsuite::nodesim`): nodes with the
//! barrier sync and two probe engines under crashes, restarts, partitions
//! and loss. Prints one line per failing seed with its replay command and
//! ends with `syncsim: N passed, M failed`; exits non-zero on any failure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use clap::Parser;
use testsuite::nodesim::{self, SyncRunSpec};

#[derive(Parser, Debug)]
#[command(about = "Simulate nodes with services and check the barrier sync")]
struct Args {
    /// How many seeds to run.
    #[arg(long, default_value_t = 50)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    first: u64,
    /// Run only this seed, and print its report.
    #[arg(long)]
    seed: Option<u64>,
    /// Nodes per cluster.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Seconds of faults before the calm phase.
    #[arg(long, default_value_t = 12)]
    seconds: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Totem's accelerated ring: messages per token visit sent after the
    /// token (0: the standard protocol; at most max_messages, 17).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=17))]
    accelerated_window: u32,
}

fn main() {
    let args = Args::parse();
    let spec = SyncRunSpec {
        nodes: args.nodes,
        faults: Duration::from_secs(args.seconds),
        accelerated_window: args.accelerated_window,
        ..SyncRunSpec::default()
    };
    if let Some(seed) = args.seed {
        let r = nodesim::run(&spec, seed);
        println!("seed {seed}: {r:?}");
        std::process::exit(i32::from(r.violation.is_some()));
    }
    let next = AtomicU64::new(args.first);
    let end = args.first + args.seeds;
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..args.jobs.max(1) {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end {
                    break;
                }
                let r = nodesim::run(&spec, seed);
                if let Some(v) = r.violation {
                    println!(
                        "FAIL seed {seed}: {v}\n  replay: cargo run --release -p testsuite --bin syncsim -- --seed {seed} --nodes {} --seconds {} --accelerated-window {}",
                        args.nodes, args.seconds, args.accelerated_window
                    );
                    failed.lock().expect("not poisoned").push(seed);
                }
            });
        }
    });
    let failed = failed.into_inner().expect("not poisoned");
    println!(
        "syncsim: {} passed, {} failed",
        args.seeds - failed.len() as u64,
        failed.len()
    );
    std::process::exit(i32::from(!failed.is_empty()));
}
