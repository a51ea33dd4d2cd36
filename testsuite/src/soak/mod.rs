//! The soak: a cluster of real `aisexec` processes on loopback under EVS
//! and CKPT load while a seeded fault schedule kills, stops, terminates
//! and restarts nodes and drops and delays packets; then a check of the
//! EVS properties on every client's delivery log and of the checkpoint
//! replicas. `make soak-cluster SECONDS=600` runs it (`src/bin/soak.rs`);
//! docs/soak.md says what is promised and why.
//!
//! # Phases of a run
//! 1. start the nodes (each with `AISEXEC_TEST_FAULTS=file=<its control
//!    file>`), wait for one ring of all;
//! 2. start the load: [`load::EvsClient`]s and [`load::CkptWriter`]s;
//! 3. run the [`faults::schedule`] until `seconds - settle`;
//! 4. settle: every node runs, no packet faults; wait for one ring of all
//!    and let the load run in it until `seconds` are up;
//! 5. drain: stop multicasting, wait until every live session got its own
//!    messages back and nothing was delivered for a while;
//! 6. stop the load (sessions end clean), compare the checkpoint digests
//!    and section contents of every node;
//! 7. read the logs and check them ([`checker`]).

pub mod checker;
pub mod faults;
pub mod load;
pub mod log;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ais::ckpt::{Ckpt, ReadElement};
use ais::client::ClientConfig;
use nix::sys::signal::Signal;
use proto::ckpt::{OPEN_READ, WR_ACTIVE_REPLICA, WR_ALL_REPLICAS};

use crate::procs::{ClusterSpec, LocalCluster};
use checker::{CheckReport, Property, Violation};
use faults::{Action, FaultKind};

/// What to run.
#[derive(Clone, Debug)]
pub struct SoakSpec {
    /// Length of the run, in seconds (faults stop `settle_secs` before).
    pub seconds: u64,
    /// The seed of the fault schedule and the load.
    pub seed: u64,
    /// Nodes (at most 9).
    pub nodes: u8,
    /// The UDP port.
    pub port: u16,
    /// The token timeout, in milliseconds.
    pub token_ms: u64,
    /// EVS clients per node.
    pub clients_per_node: u8,
    /// Messages per second per EVS client.
    pub rate: u32,
    /// Seconds at the end without faults.
    pub settle_secs: u64,
    /// Where to keep the cluster's and the clients' logs; `None`: a
    /// temporary directory, removed at the end unless the run failed.
    pub keep_dir: Option<PathBuf>,
}

impl SoakSpec {
    /// The defaults for a run of `seconds` with `seed` on `port`.
    pub fn new(seconds: u64, seed: u64, port: u16) -> SoakSpec {
        SoakSpec {
            seconds,
            seed,
            nodes: 5,
            port,
            token_ms: 1000,
            clients_per_node: 2,
            rate: 25,
            settle_secs: (seconds / 10).clamp(5, 30),
            keep_dir: None,
        }
    }
}

/// What a run found.
#[derive(Debug)]
pub struct SoakReport {
    /// The summary, line by line (the last is `soak: N violations`).
    pub lines: Vec<String>,
    /// Every violation.
    pub violations: Vec<Violation>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<FaultKind, u64>,
    /// The log check's coverage.
    pub check: checker::CheckStats,
    /// Where the logs are (kept when there were violations).
    pub dir: PathBuf,
}

/// Runs a soak. Progress goes to stderr; the summary is in the report.
///
/// # Errors
/// The cluster did not form at the start (nothing was checked), or a
/// directory could not be written.
pub fn run(spec: &SoakSpec) -> Result<SoakReport, String> {
    let started = Instant::now();
    let mut cluster = LocalCluster::new(ClusterSpec::new(spec.nodes, spec.port, spec.token_ms));
    let dir = match &spec.keep_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("ais-soak-{}-{}", spec.seed, std::process::id())),
    };
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let log_dir = dir.join("evs-logs");
    let control_dir = dir.join("faults");
    fs::create_dir_all(&control_dir).map_err(|e| e.to_string())?;
    let control = |n: u8| control_dir.join(format!("node{n}"));
    let ids: Vec<u8> = (1..=spec.nodes).collect();
    for &n in &ids {
        fs::write(control(n), "").map_err(|e| e.to_string())?;
    }
    let start_node = |cluster: &mut LocalCluster, n: u8| {
        let setting = format!("file={}", control(n).display());
        cluster.start_with_env(n, &[("AISEXEC_TEST_FAULTS", &setting)]);
    };
    for &n in &ids {
        start_node(&mut cluster, n);
    }
    progress(
        started,
        &format!(
            "seed {} port {} nodes {} for {} s; logs in {}",
            spec.seed,
            spec.port,
            spec.nodes,
            spec.seconds,
            dir.display()
        ),
    );
    cluster
        .wait_ring(&ids, Duration::from_secs(60))
        .map_err(|e| format!("the cluster did not form: {e}\n{}", cluster.logs()))?;
    progress(started, "ring of every node formed; load starts");

    // ----- load -----
    let shared = load::shared();
    shared.epoch.get_or_init(Instant::now);
    shared.sending.store(true, Ordering::Relaxed);
    shared.writing.store(true, Ordering::Relaxed);
    let mut threads = Vec::new();
    for &n in &ids {
        let socket = cluster.node(n).socket();
        for c in 1..=spec.clients_per_node {
            let client = load::EvsClient {
                node: n,
                client: c,
                socket: socket.clone(),
                log_dir: log_dir.clone(),
                rate: spec.rate,
                seed: spec.seed ^ (u64::from(n) << 32) ^ (u64::from(c) << 40),
            };
            let s = Arc::clone(&shared);
            threads.push(load::spawn(format!("evs-{n}-{c}"), move || client.run(&s)));
        }
        let writer = load::CkptWriter {
            node: n,
            socket,
            seed: spec.seed ^ (u64::from(n) << 48),
        };
        let s = Arc::clone(&shared);
        threads.push(load::spawn(format!("ckpt-{n}"), move || writer.run(&s)));
    }

    // ----- faults -----
    let fault_end = Duration::from_secs(spec.seconds.saturating_sub(spec.settle_secs));
    let fault_start = Duration::from_secs(2).min(fault_end);
    let steps = faults::schedule(spec.seed, spec.nodes, fault_start, fault_end, spec.token_ms);
    let t0 = Instant::now();
    let mut counts: BTreeMap<FaultKind, u64> = BTreeMap::new();
    let mut stopped: Vec<u8> = Vec::new();
    for step in &steps {
        if let Some(wait) = step.at.checked_sub(t0.elapsed()) {
            std::thread::sleep(wait);
        }
        if let Some(k) = step.action.starts() {
            *counts.entry(k).or_default() += 1;
        }
        match &step.action {
            Action::Kill9(n) => {
                cluster.kill9(*n);
            }
            Action::Stop(n) => {
                cluster.signal(*n, Signal::SIGSTOP);
                stopped.push(*n);
            }
            Action::Cont(n) => {
                cluster.signal(*n, Signal::SIGCONT);
                stopped.retain(|s| s != n);
            }
            Action::Term(n) => {
                cluster.signal(*n, Signal::SIGTERM);
                if cluster.wait_exit(*n, Duration::from_secs(10)).is_none() {
                    progress(
                        started,
                        &format!("node {n} did not exit on SIGTERM; killing it"),
                    );
                    cluster.kill9(*n);
                }
            }
            Action::Restart(n) => start_node(&mut cluster, *n),
            Action::Net(n, spec) => fs::write(control(*n), spec).map_err(|e| e.to_string())?,
            Action::NetOff(n) => fs::write(control(*n), "").map_err(|e| e.to_string())?,
        }
        log_step(&dir, t0, step);
    }
    progress(
        started,
        &format!("{} fault steps done; settling", steps.len()),
    );

    // ----- settle -----
    let mut violations = Vec::new();
    for &n in &ids {
        fs::write(control(n), "").map_err(|e| e.to_string())?;
        if stopped.contains(&n) {
            cluster.signal(n, Signal::SIGCONT);
        }
        if cluster.node(n).pid().is_none() {
            start_node(&mut cluster, n);
        }
    }
    match cluster.wait_ring(&ids, Duration::from_secs(90)) {
        Ok((_, took)) => progress(started, &format!("one ring of every node after {took:?}")),
        Err(e) => violations.push(Violation {
            property: Property::Ring,
            text: format!("after the faults stopped: {e}"),
        }),
    }
    let remaining = Duration::from_secs(spec.seconds).saturating_sub(started.elapsed());
    std::thread::sleep(remaining.max(Duration::from_secs(2)));

    // ----- drain -----
    shared.sending.store(false, Ordering::Relaxed);
    shared.writing.store(false, Ordering::Relaxed);
    let drain_start = Instant::now();
    while drain_start.elapsed() < Duration::from_secs(60) {
        if shared.outstanding.load(Ordering::Relaxed) == 0 && shared.quiet_ms() > 2_000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    progress(
        started,
        &format!(
            "drained in {:?} ({} own messages outstanding)",
            drain_start.elapsed(),
            shared.outstanding.load(Ordering::Relaxed)
        ),
    );
    shared.stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }

    // ----- checkpoints -----
    let ckpt_line = check_checkpoints(&cluster, &ids, &mut violations);

    // ----- logs -----
    let logs = log::read_all(&log_dir)?;
    let CheckReport {
        violations: found,
        stats,
    } = checker::check(&logs);
    violations.extend(found);

    // Stop the nodes cleanly (what is left is killed on drop).
    for &n in &ids {
        if cluster.node(n).pid().is_some() {
            cluster.signal(n, Signal::SIGTERM);
            let _ = cluster.wait_exit(n, Duration::from_secs(5));
        }
    }

    let mut lines = Vec::new();
    let kind = |k| counts.get(&k).copied().unwrap_or(0);
    let total: u64 = counts.values().sum();
    lines.push(format!(
        "soak: seed {} nodes {} for {} s (took {} s); replay: make soak-cluster SECONDS={} SEED={}",
        spec.seed,
        spec.nodes,
        spec.seconds,
        started.elapsed().as_secs(),
        spec.seconds,
        spec.seed
    ));
    lines.push(format!(
        "soak: faults injected {total}: kill -9 {}, pause (SIGSTOP/SIGCONT) {}, SIGTERM {}, packet drop/delay {}",
        kind(FaultKind::Kill9),
        kind(FaultKind::Pause),
        kind(FaultKind::Term),
        kind(FaultKind::Net)
    ));
    lines.push(format!(
        "soak: evs sessions {} (clean {}), multicasts accepted {} (refused TRY_AGAIN {}), messages checked {}, deliveries checked {}",
        stats.sessions,
        stats.sessions_clean,
        stats.accepted,
        stats.refused,
        stats.messages,
        stats.deliveries
    ));
    lines.push(format!(
        "soak: configurations seen: regular {}, transitional {}; synchrony groups compared {}, segments checked for holes {}, self-deliveries checked {}",
        stats.regular_configurations,
        stats.transitional_configurations,
        stats.synchrony_groups,
        stats.segments_checked,
        stats.self_deliveries
    ));
    lines.push(format!(
        "soak: ckpt writes ok {}, failed {} (last error: {}); {ckpt_line}",
        shared.ckpt_ok.load(Ordering::Relaxed),
        shared.ckpt_failed.load(Ordering::Relaxed),
        shared
            .ckpt_last_error
            .lock()
            .map(|e| if e.is_empty() {
                "none".to_owned()
            } else {
                e.clone()
            })
            .unwrap_or_default()
    ));
    for v in violations.iter().take(10) {
        lines.push(format!("soak: violation: {v}"));
    }
    if !violations.is_empty() {
        lines.push(format!(
            "soak: logs kept in {}; replay the schedule with SEED={}",
            dir.display(),
            spec.seed
        ));
    }
    lines.push(format!("soak: {} violations", violations.len()));
    // The daemons' logs go next to the clients' for the post-mortem; the
    // directory goes away after a clean run unless it was asked for.
    for &n in &ids {
        let _ = fs::copy(
            &cluster.node(n).log,
            dir.join(format!("aisexec-node{n}.log")),
        );
    }
    drop(cluster);
    if violations.is_empty() && spec.keep_dir.is_none() {
        let _ = fs::remove_dir_all(&dir);
    }
    Ok(SoakReport {
        lines,
        violations,
        faults: counts,
        check: stats,
        dir,
    })
}

/// Compares every node's checkpoint store: synced, one digest, and the
/// same bytes in every section of the soak's checkpoints. Returns the
/// summary's words.
fn check_checkpoints(cluster: &LocalCluster, ids: &[u8], v: &mut Vec<Violation>) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut digests = Vec::new();
        let mut problem = None;
        for &n in ids {
            let mut config = ClientConfig::with_socket(cluster.node(n).socket());
            config.timeout = Duration::from_secs(5);
            match Ckpt::connect_with(&config).and_then(|mut c| c.store_status()) {
                Ok(s) if s.synced => digests.push((n, s.digest, s.checkpoints, s.sections)),
                Ok(_) => problem = Some(format!("node {n}: CKPT not synced")),
                Err(e) => problem = Some(format!("node {n}: store status: {e}")),
            }
        }
        let same = digests.windows(2).all(|w| w[0].1 == w[1].1);
        if problem.is_none() && same {
            let contents = section_contents(cluster, ids, v);
            let (_, d, c, s) = digests[0];
            return format!(
                "replicas identical on {} nodes: digest {d:#010x}, {c} checkpoints, {s} sections ({contents})",
                digests.len()
            );
        }
        if Instant::now() > deadline {
            let text = problem.unwrap_or_else(|| format!("digests differ: {digests:?}"));
            v.push(Violation {
                property: Property::Checkpoint,
                text: text.clone(),
            });
            return format!("replicas NOT identical: {text}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Reads every soak section on every node and compares the bytes.
fn section_contents(cluster: &LocalCluster, ids: &[u8], v: &mut Vec<Violation>) -> String {
    let mut sections: Vec<Vec<u8>> = ids.iter().map(|&n| load::section_of(n)).collect();
    sections.push(b"shared".to_vec());
    let mut compared = 0;
    for (name, flags) in [
        (load::CKPT_ALL, WR_ALL_REPLICAS),
        (load::CKPT_ACTIVE, WR_ACTIVE_REPLICA),
    ] {
        let _ = flags;
        for section in &sections {
            let mut seen: Option<(u8, Result<Vec<u8>, String>)> = None;
            for &n in ids {
                let got = read_section(&cluster.node(n).socket(), name, section);
                match &seen {
                    None => seen = Some((n, got)),
                    Some((first, want)) if *want != got => {
                        v.push(Violation {
                            property: Property::Checkpoint,
                            text: format!(
                                "{} section {}: node {first} reads {}, node {n} reads {}",
                                String::from_utf8_lossy(name),
                                String::from_utf8_lossy(section),
                                describe(want),
                                describe(&got)
                            ),
                        });
                    }
                    Some(_) => {}
                }
            }
            compared += 1;
        }
    }
    format!("{compared} sections read back equal on every node")
}

fn describe(r: &Result<Vec<u8>, String>) -> String {
    match r {
        Ok(b) => format!(
            "{} bytes {:?}",
            b.len(),
            String::from_utf8_lossy(&b[..b.len().min(24)])
        ),
        Err(e) => e.clone(),
    }
}

fn read_section(socket: &Path, name: &[u8], section: &[u8]) -> Result<Vec<u8>, String> {
    let mut config = ClientConfig::with_socket(socket);
    config.timeout = Duration::from_secs(5);
    let mut c = Ckpt::connect_with(&config).map_err(|e| e.to_string())?;
    let h = c
        .open(name, None, OPEN_READ, Some(Duration::from_secs(5)))
        .map_err(|e| format!("open: {e}"))?;
    let r = c
        .read(
            &h,
            &[ReadElement {
                section_id: section,
                offset: 0,
                size: None,
            }],
        )
        .map_err(|e| format!("read: {}", e.error))?;
    Ok(r.into_iter().next().map(|b| b.to_vec()).unwrap_or_default())
}

fn progress(started: Instant, what: &str) {
    eprintln!("soak [{:>4} s] {what}", started.elapsed().as_secs());
}

/// Appends a step to `faults.log` in the run directory.
fn log_step(dir: &Path, t0: Instant, step: &faults::Step) {
    use std::io::Write;
    if let Ok(mut f) = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("faults.log"))
    {
        let _ = writeln!(
            f,
            "{:>8.3} planned {:>8.3} {:?}",
            t0.elapsed().as_secs_f64(),
            step.at.as_secs_f64(),
            step.action
        );
    }
}
