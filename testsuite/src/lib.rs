//! Deterministic simulator and checkers for the Totem protocol.
//!
//! A run puts K [`totem::Totem`] instances on a simulated network
//! ([`network`]), drives them from one event loop with a simulated clock
//! ([`cluster`]) through a schedule of faults ([`faults`], [`scenarios`])
//! under an application load ([`workload`]), records what every node
//! delivered and installed, and checks the histories ([`checker`]). A run
//! depends on nothing but its seed: a failing seed is a replayable bug
//! report (`sim --seed S`, see `src/bin/sim.rs`).
//!
//! [`swarm`] runs many seeds on several threads.
//!
//! [`procs`] starts real `aisexec` processes on loopback for the
//! multi-process tests (`tests/daemon_cluster.rs`); [`soak`] runs such a
//! cluster under load and faults and checks the EVS properties on the
//! clients' logs (`make soak-cluster`).
//!
//! [`fuzz_harness`] drives a node, a service table and a Totem pair with
//! hostile input; the cargo-fuzz targets in `fuzz/` and the property tests
//! in `tests/prop_hostile.rs` run the same programs.

pub mod checker;
pub mod ckptsim;
pub mod cluster;
pub mod faults;
pub mod fuzz_harness;
pub mod network;
pub mod nodeloop;
pub mod nodesim;
pub mod procs;
pub mod scenarios;
pub mod soak;
pub mod swarm;
pub mod trace;
pub mod workload;

use std::time::Duration;

pub use checker::{Property, Violation};
pub use cluster::{RunReport, RunStats};
pub use faults::Scenario;
pub use trace::Trace;

/// Default length of a random run.
pub const DEFAULT_SECONDS: u64 = 20;
/// Default cluster size.
pub const DEFAULT_NODES: usize = 5;

/// What to run for each seed: a random schedule or a named scenario, on how
/// many nodes, for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSpec {
    /// A named scenario, or `None` for random faults.
    pub scenario: Option<String>,
    /// Cluster size.
    pub nodes: usize,
    /// Simulated seconds; `None` for the default (random: 20 s; a named
    /// scenario: its own length).
    pub seconds: Option<u64>,
    /// Every node's `accelerated_window` (0: the standard protocol).
    pub accelerated_window: u32,
}

impl RunSpec {
    /// Random faults on the default cluster for the default time.
    pub fn random() -> RunSpec {
        RunSpec {
            scenario: None,
            nodes: DEFAULT_NODES,
            seconds: None,
            accelerated_window: 0,
        }
    }

    /// A named scenario on the default cluster at its own length.
    pub fn named(name: &str) -> RunSpec {
        RunSpec {
            scenario: Some(name.to_string()),
            nodes: DEFAULT_NODES,
            seconds: None,
            accelerated_window: 0,
        }
    }

    /// The same run with the accelerated ring on: `window` messages per
    /// token visit sent after the token (at most the default
    /// `max_messages`, 17; 0 is the standard protocol).
    pub fn accelerated(mut self, window: u32) -> RunSpec {
        self.accelerated_window = window;
        self
    }

    /// The scenario of `seed`.
    ///
    /// # Errors
    /// An unknown scenario, an unsupported cluster size, or a length too
    /// short for what the scenario promises.
    pub fn scenario(&self, seed: u64) -> Result<Scenario, String> {
        if !(1..=faults::MAX_NODES).contains(&self.nodes) {
            return Err(format!("--nodes must be 1..={}", faults::MAX_NODES));
        }
        let max_messages = totem::TotemConfig::new(faults::node(1)).max_messages;
        if self.accelerated_window > max_messages {
            return Err(format!(
                "--accelerated-window must be 0..={max_messages} (max_messages)"
            ));
        }
        let mut s = match &self.scenario {
            None => {
                let seconds = self.seconds.unwrap_or(DEFAULT_SECONDS);
                if seconds < faults::MIN_RANDOM_SECONDS {
                    return Err(format!(
                        "random runs need --seconds >= {}",
                        faults::MIN_RANDOM_SECONDS
                    ));
                }
                faults::random(seed, self.nodes, seconds)
            }
            Some(name) => {
                let mut s = scenarios::by_name(name, self.nodes, seed)?;
                if let Some(seconds) = self.seconds {
                    s.end = faults::at(Duration::from_secs(seconds));
                }
                s
            }
        };
        s.accelerated_window = self.accelerated_window;
        s.validate()?;
        Ok(s)
    }

    /// The command that replays `seed` with its trace.
    pub fn replay_command(&self, seed: u64, seconds: u64) -> String {
        let mut c = format!(
            "cargo run --release -p testsuite --bin sim -- --seed {seed} --nodes {} --seconds {seconds}",
            self.nodes
        );
        if let Some(name) = &self.scenario {
            c.push_str(" --scenario ");
            c.push_str(name);
        }
        if self.accelerated_window > 0 {
            c.push_str(&format!(
                " --accelerated-window {}",
                self.accelerated_window
            ));
        }
        c
    }
}

/// The outcome of one seed.
#[derive(Debug)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// The run's length in seconds (for the replay command).
    pub seconds: u64,
    /// The first violation, if any (a panic in the protocol is one).
    pub violation: Option<Violation>,
    /// Counters (default if the run panicked).
    pub stats: RunStats,
    /// The trace, if it went to a buffer.
    pub trace: Option<Vec<u8>>,
}

/// Runs one seed. A panic inside the run (the protocol's or ours) is caught
/// and reported as a [`Property::Simulation`] violation, so a swarm goes on.
///
/// # Errors
/// When the spec is invalid (see [`RunSpec::scenario`]).
pub fn run_seed(spec: &RunSpec, seed: u64, trace: Trace) -> Result<SeedResult, String> {
    let scenario = spec.scenario(seed)?;
    let seconds = scenario.seconds();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cluster::run(&scenario, seed, trace)
    }));
    Ok(match outcome {
        Ok(report) => SeedResult {
            seed,
            seconds,
            violation: report.violation,
            stats: report.stats,
            trace: report.trace,
        },
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            SeedResult {
                seed,
                seconds,
                violation: Some(Violation::new(
                    Property::Simulation,
                    None,
                    None,
                    format!("panicked: {msg}"),
                )),
                stats: RunStats::default(),
                trace: None,
            }
        }
    })
}
