//! `soak`: a real 5-node aisexec cluster on loopback under EVS and CKPT
//! load and a seeded fault schedule, then a check of the EVS properties
//! and the checkpoint replicas (`make soak-cluster SECONDS=600`; see
//! docs/soak.md and `testsuite::soak`).
//!
//! Prints progress on stderr and the summary on stdout; its last line is
//! `soak: N violations`. Exit code 0 with no violation, 1 with some, 2 when
//! the run could not be made (the cluster never formed).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use testsuite::soak::{self, SoakSpec};

/// A soak of a local aisexec cluster under faults.
#[derive(Debug, Parser)]
#[command(name = "soak")]
struct Cli {
    /// Length of the run in seconds (faults stop some seconds before).
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// The seed (default: from the clock, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Number of nodes (127.0.0.1..N).
    #[arg(long, default_value_t = 5)]
    nodes: u8,
    /// The UDP port (default: one derived from this process's id).
    #[arg(long)]
    port: Option<u16>,
    /// Messages per second per EVS client.
    #[arg(long, default_value_t = 25)]
    rate: u32,
    /// EVS clients per node.
    #[arg(long, default_value_t = 2)]
    clients: u8,
    /// Token timeout in ms.
    #[arg(long, default_value_t = 1000)]
    token_ms: u64,
    /// Keep the logs in this directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the fault schedule of the seed and exit.
    #[arg(long)]
    print_schedule: bool,
    /// Only check the EVS logs of an earlier run (its `--dir`, or a copy
    /// doctored by hand) and exit.
    #[arg(long, value_name = "DIR")]
    check: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !(1..=9).contains(&cli.nodes) {
        eprintln!("soak: --nodes must be 1..=9");
        return ExitCode::from(2);
    }
    if let Some(dir) = &cli.check {
        return check_only(dir);
    }
    let seed = cli.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() ^ u64::from(d.subsec_nanos()))
    });
    let port = cli.port.unwrap_or_else(|| testsuite::procs::test_port(31));
    let mut spec = SoakSpec::new(cli.seconds, seed, port);
    spec.nodes = cli.nodes;
    spec.rate = cli.rate;
    spec.clients_per_node = cli.clients;
    spec.token_ms = cli.token_ms;
    spec.keep_dir = cli.dir;
    if cli.print_schedule {
        let end = std::time::Duration::from_secs(cli.seconds.saturating_sub(spec.settle_secs));
        let start = std::time::Duration::from_secs(2).min(end);
        for s in soak::faults::schedule(seed, spec.nodes, start, end, spec.token_ms) {
            println!("{:>8.3} {:?}", s.at.as_secs_f64(), s.action);
        }
        return ExitCode::SUCCESS;
    }
    eprintln!("soak: seed {seed} (replay the schedule with --seed {seed})");
    match soak::run(&spec) {
        Ok(report) => {
            for line in &report.lines {
                println!("{line}");
            }
            if report.violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("soak: {e}");
            println!("soak: seed {seed}: the run could not be made");
            ExitCode::from(2)
        }
    }
}

/// `--check DIR`: the checker on an earlier run's logs.
fn check_only(dir: &std::path::Path) -> ExitCode {
    let logs = match soak::log::read_all(&dir.join("evs-logs")) {
        Ok(logs) => logs,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    let report = soak::checker::check(&logs);
    println!("soak: {:?}", report.stats);
    for v in report.violations.iter().take(10) {
        println!("soak: violation: {v}");
    }
    println!("soak: {} violations", report.violations.len());
    if report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
