//! `sim`: run the deterministic Totem simulator over many seeds, or replay
//! one with its trace.
//!
//! ```text
//! sim --seeds 300 --jobs 2               # swarm: random faults, 5 nodes, 20 s each
//! sim --seed 17 --nodes 5 --seconds 20   # replay one seed, print its trace
//! sim --scenario partition_heal          # a named scenario (seed 0)
//! sim --seeds 150 --accelerated-window 17 # the accelerated ring
//! ```
//!
//! One line per failing seed, with the violation and the command that
//! replays it; then `sim: N passed, M failed`. Exit status 1 if any failed,
//! 2 on bad arguments.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use testsuite::swarm::run_seeds;
use testsuite::{faults, run_seed, scenarios, RunSpec, SeedResult, Trace, DEFAULT_NODES};

#[derive(Debug, Parser)]
#[command(
    name = "sim",
    about = "Deterministic simulator for the Totem ring protocol"
)]
struct Args {
    /// How many seeds to run.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Replay exactly this seed and print its trace.
    #[arg(long, conflicts_with_all = ["seeds", "first"])]
    seed: Option<u64>,
    /// Cluster size (node ids 1..=K).
    #[arg(long, default_value_t = DEFAULT_NODES, value_parser = parse_nodes)]
    nodes: usize,
    /// Simulated seconds per seed: fault phase, then an 11 s calm phase
    /// (default 20; a named scenario defaults to its own length).
    #[arg(long)]
    seconds: Option<u64>,
    /// Run this named scenario instead of random faults.
    #[arg(long)]
    scenario: Option<String>,
    /// Print the trace of every seed run (implied by --seed).
    #[arg(long)]
    trace: bool,
    /// Include every datagram sent and received in the trace.
    #[arg(long)]
    trace_packets: bool,
    /// With --seed: do not print the trace.
    #[arg(long)]
    quiet: bool,
    /// Threads running seeds in parallel.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Run every node with the accelerated ring: this many of a token
    /// visit's new messages are sent after the token (0: standard Totem).
    #[arg(long, default_value_t = 0)]
    accelerated_window: u32,
    /// List the named scenarios and exit.
    #[arg(long)]
    list_scenarios: bool,
}

fn parse_nodes(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(k) if (1..=faults::MAX_NODES).contains(&k) => Ok(k),
        _ => Err(format!("must be a number in 1..={}", faults::MAX_NODES)),
    }
}

fn report(spec: &RunSpec, r: &SeedResult) {
    if let Some(v) = &r.violation {
        // A closed pipe (`| head`) must not turn into a panic.
        let _ = writeln!(
            std::io::stdout(),
            "seed {}: FAIL {v} | replay: {}",
            r.seed,
            spec.replay_command(r.seed, r.seconds)
        );
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list_scenarios {
        for name in scenarios::NAMES {
            let _ = writeln!(std::io::stdout(), "{name}");
        }
        return ExitCode::SUCCESS;
    }
    let spec = RunSpec {
        scenario: args.scenario.clone(),
        nodes: args.nodes,
        seconds: args.seconds,
        accelerated_window: args.accelerated_window,
    };
    if args.seed.is_some() || args.trace || args.trace_packets {
        testsuite::trace::capture_protocol_log();
    }
    let started = std::time::Instant::now();
    let (passed, failed, steps) = if let Some(seed) = args.seed {
        let trace = if args.quiet {
            Trace::off()
        } else {
            Trace::stdout(args.trace_packets)
        };
        let r = match run_seed(&spec, seed, trace) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("sim: {e}");
                return ExitCode::from(2);
            }
        };
        report(&spec, &r);
        let failed = u64::from(r.violation.is_some());
        (1 - failed, failed, r.stats.steps)
    } else if args.trace || args.trace_packets {
        // Traced swarm: sequential, so the traces do not interleave.
        let (mut passed, mut failed, mut steps) = (0, 0, 0);
        for seed in args.first..args.first.saturating_add(args.seeds) {
            let r = match run_seed(&spec, seed, Trace::stdout(args.trace_packets)) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("sim: {e}");
                    return ExitCode::from(2);
                }
            };
            report(&spec, &r);
            steps += r.stats.steps;
            if r.violation.is_some() {
                failed += 1;
            } else {
                passed += 1;
            }
        }
        (passed, failed, steps)
    } else {
        let seeds = args.first..args.first.saturating_add(args.seeds);
        match run_seeds(&spec, seeds, args.jobs, |r| report(&spec, r)) {
            Ok(s) => (s.passed, s.failed, s.steps),
            Err(e) => {
                eprintln!("sim: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let took = started.elapsed();
    let runs = (passed + failed).max(1);
    eprintln!(
        "sim: {} seed(s) in {:.2} s wall ({:.1} ms per seed, {} steps per seed, {} job(s))",
        passed + failed,
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / runs as f64,
        steps / runs,
        args.jobs
    );
    let _ = writeln!(std::io::stdout(), "sim: {passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
