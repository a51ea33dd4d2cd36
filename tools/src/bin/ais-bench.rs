//! `ais-bench`: measure a running AIS cluster through the client library
//! (throughput, latency, failure detection, memory, the raw UDP ceiling),
//! with the workloads of the corosync harness, and print the table.
//!
//! ```text
//! ais-bench tput     --socket S [--socket S ...] --size BYTES --secs S [--senders 1|all|N]
//! ais-bench lat      --socket S [--socket S ...] --size BYTES --count N [--warmup N] [--gap-ms MS]
//! ais-bench failover --socket S --socket S --socket S --victim 3 --signal kill|term
//! ais-bench rss      --socket S [--socket S ...] [--phase NAME]
//! ais-bench udp      --size BYTES [--size BYTES ...] --secs S [--ring-hops N]
//! ais-bench report   FILE [FILE ...]
//! ```
//!
//! One participant (an EVS connection on its own thread) per `--socket`,
//! usually one per node; without `--socket`, one at `$AIS_SOCKET` (else
//! `/run/ais/aisexec.sock`). To spread participants over several processes
//! (several hosts), give each process its own sockets and the cluster-wide
//! `--participants` and `--total-senders`.
//!
//! Every result is one `key=value` line on stdout (the corosync harness's
//! keys: `msgs_per_s`, `MB_per_s`, `p50_us`, ...); `report` turns such
//! lines, ours and the harness's `raw.txt`, into the table. `make bench`
//! (scripts/bench.sh) runs it all on a local 3-node cluster.
//!
//! Exit codes: 0 when every check passed; 4 when a run finished but a check
//! failed (loss, FIFO, order, incomplete, timeout); 1 when it could not run.

#[path = "../bench/mod.rs"]
mod bench;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ais::client::socket_path;
use clap::{Parser, Subcommand, ValueEnum};
use nix::sys::signal::Signal;
use proto::evs::Group;

use bench::daemon::Daemon;
use bench::{failover, latency, report, throughput, udp, BenchError, Line};

/// Exit code of a run whose checks failed.
const EXIT_CHECK_FAILED: u8 = 4;

/// Measure a running AIS cluster.
#[derive(Debug, Parser)]
#[command(name = "ais-bench", version)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

/// The participants' sockets.
#[derive(Debug, clap::Args)]
struct Sockets {
    /// A node's IPC socket; one participant each (repeat for every node).
    #[arg(long = "socket", value_name = "PATH")]
    sockets: Vec<PathBuf>,
}

impl Sockets {
    fn get(&self) -> Vec<PathBuf> {
        if self.sockets.is_empty() {
            vec![socket_path()]
        } else {
            self.sockets.clone()
        }
    }
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Throughput: multicast as fast as flow control allows, count deliveries.
    Tput {
        #[command(flatten)]
        sockets: Sockets,
        /// Message size in bytes (at least the 40-byte header).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Seconds each sender sends.
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
        /// Which local participants send: the first N, or "all".
        #[arg(long, default_value = "1")]
        senders: String,
        /// Participants cluster-wide (default: the local ones).
        #[arg(long)]
        participants: Option<usize>,
        /// Senders cluster-wide (default: the local ones).
        #[arg(long)]
        total_senders: Option<usize>,
        /// The group (default: one of this process's own).
        #[arg(long)]
        group: Option<String>,
        /// On TRY_AGAIN, wait up to this long for a callback before retrying
        /// (0: take the callbacks waiting and retry at once).
        #[arg(long, default_value_t = 0)]
        backoff_us: u64,
        /// A label for the result lines.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Self-delivery and one-way latency of single messages on an idle ring.
    Lat {
        #[command(flatten)]
        sockets: Sockets,
        /// Message size in bytes.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Messages measured.
        #[arg(long, default_value_t = 2000)]
        count: u64,
        /// Messages sent first, not measured.
        #[arg(long, default_value_t = 100)]
        warmup: u64,
        /// Which local participant sends (1-based).
        #[arg(long, default_value_t = 1)]
        sender: usize,
        /// Participants cluster-wide (default: the local ones).
        #[arg(long)]
        participants: Option<usize>,
        /// The group (default: one of this process's own).
        #[arg(long)]
        group: Option<String>,
        /// Pause before each probe, in ms (0: back to back); a pause makes
        /// every probe start on an idle ring.
        #[arg(long, default_value_t = 0)]
        gap_ms: u64,
    },
    /// Kill one node's daemon; time until the survivors' new configuration.
    Failover {
        #[command(flatten)]
        sockets: Sockets,
        /// The node to kill, as the position of its --socket (1-based).
        #[arg(long)]
        victim: usize,
        /// The signal.
        #[arg(long, value_enum, default_value = "kill")]
        signal: Sig,
        /// Seconds the survivors may take.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// The daemons' resident memory now and at peak (VmRSS, VmHWM).
    Rss {
        #[command(flatten)]
        sockets: Sockets,
        /// A label for the lines (idle, after, ...).
        #[arg(long, default_value = "now")]
        phase: String,
    },
    /// The raw loopback UDP ceiling, one datagram per syscall.
    Udp {
        /// Datagram sizes in bytes.
        #[arg(long = "size", default_values_t = [64usize, 1024, 8192, 65000])]
        sizes: Vec<usize>,
        /// Seconds per size.
        #[arg(long, default_value_t = 2.0)]
        secs: f64,
        /// Also pass one 64-byte datagram round a ring of this many
        /// sockets (threads blocked in recv): the floor under a token
        /// rotation over that many nodes (0: skip).
        #[arg(long, default_value_t = 3)]
        ring_hops: usize,
        /// Rotations the ring is timed over.
        #[arg(long, default_value_t = 20_000)]
        ring_rotations: usize,
    },
    /// The table from result lines (ours and the corosync harness's raw.txt).
    Report {
        /// Files of key=value lines.
        files: Vec<PathBuf>,
    },
}

/// A signal for `failover`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Sig {
    /// SIGKILL: a crash.
    Kill,
    /// SIGTERM: a clean leave.
    Term,
}

fn main() -> ExitCode {
    match run(Cli::parse().mode) {
        Ok(lines) => {
            for l in &lines {
                println!("{l}");
            }
            match check(&lines) {
                Ok(()) => ExitCode::SUCCESS,
                Err(why) => {
                    eprintln!("ais-bench: check failed: {why}");
                    ExitCode::from(EXIT_CHECK_FAILED)
                }
            }
        }
        Err(e) => {
            eprintln!("ais-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(mode: Mode) -> Result<Vec<Line>, BenchError> {
    match mode {
        Mode::Tput {
            sockets,
            size,
            secs,
            senders,
            participants,
            total_senders,
            group,
            backoff_us,
            label,
        } => {
            let sockets = sockets.get();
            let local_senders = if senders == "all" {
                sockets.len()
            } else {
                senders
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n <= sockets.len())
                    .ok_or_else(|| {
                        BenchError::Setup(format!(
                            "--senders {senders}: not \"all\" nor a number up to {}",
                            sockets.len()
                        ))
                    })?
            };
            let spec = throughput::Spec {
                participants: participants.unwrap_or(sockets.len()),
                senders: total_senders.unwrap_or(local_senders),
                sockets,
                size_bytes: size,
                secs,
                local_senders,
                group: group_named(group.as_deref(), "t"),
                backoff: Duration::from_micros(backoff_us),
                label,
            };
            throughput::run(&spec)
        }
        Mode::Lat {
            sockets,
            size,
            count,
            warmup,
            sender,
            participants,
            group,
            gap_ms,
        } => {
            let sockets = sockets.get();
            if sender == 0 || sender > sockets.len() {
                return Err(BenchError::Setup(format!(
                    "--sender {sender}: not one of the {} sockets",
                    sockets.len()
                )));
            }
            let spec = latency::Spec {
                participants: participants.unwrap_or(sockets.len()),
                sockets,
                sender: sender - 1,
                size_bytes: size,
                count,
                warmup,
                group: group_named(group.as_deref(), "l"),
                gap: Duration::from_millis(gap_ms),
            };
            latency::run(&spec)
        }
        Mode::Failover {
            sockets,
            victim,
            signal,
            timeout,
        } => {
            let sockets = sockets.get();
            if victim == 0 || victim > sockets.len() || sockets.len() < 2 {
                return Err(BenchError::Setup(
                    "failover needs every node's --socket and --victim naming one of them".into(),
                ));
            }
            failover::run(&failover::Spec {
                sockets,
                victim: victim - 1,
                signal: match signal {
                    Sig::Kill => Signal::SIGKILL,
                    Sig::Term => Signal::SIGTERM,
                },
                timeout: Duration::from_secs(timeout),
            })
        }
        Mode::Rss { sockets, phase } => sockets
            .get()
            .iter()
            .map(|socket| {
                let node = failover::ring_status(socket)
                    .map(|s| s.node_id)
                    .map_err(|e| BenchError::Setup(format!("{}: {e}", socket.display())))?;
                let d = Daemon::beside(socket).ok_or_else(|| {
                    BenchError::Setup(format!("no aisexec pid beside {}", socket.display()))
                })?;
                let m = d
                    .memory()
                    .ok_or_else(|| BenchError::Setup(format!("no /proc status of {}", d.pid)))?;
                Ok(Line::default()
                    .put("result", "ok")
                    .put("impl", "ais")
                    .put("mode", "rss")
                    .put("phase", &phase)
                    .put("node", node)
                    .put("daemon_pid", d.pid)
                    .put("rss_kib", m.rss_kib)
                    .put("hwm_kib", m.hwm_kib))
            })
            .collect(),
        Mode::Udp {
            sizes,
            secs,
            ring_hops,
            ring_rotations,
        } => {
            let mut lines: Vec<Line> = sizes
                .iter()
                .map(|&s| udp::run(s, secs))
                .collect::<Result<_, _>>()?;
            if ring_hops > 0 {
                lines.push(udp::ring(ring_hops, 64, ring_rotations)?);
            }
            Ok(lines)
        }
        Mode::Report { files } => {
            let mut rows = Vec::new();
            for f in &files {
                let text = std::fs::read_to_string(f).map_err(|e| BenchError::Io("read", e))?;
                rows.extend(
                    text.lines()
                        .filter(|l| l.contains("mode="))
                        .map(Line::parse),
                );
            }
            print!("{}", report::table(&rows));
            Ok(Vec::new())
        }
    }
}

/// `name`, or a group of this process's own.
fn group_named(name: Option<&str>, mode: &str) -> Group {
    match name {
        Some(n) => Group::named(n),
        None => Group::named(&format!(
            "ais-bench-{mode}-{}-{}",
            std::process::id(),
            bench::session::mono_ns() % 1_000_000_000
        )),
    }
}

/// Whether the lines of one run pass: every result ok, no loss or FIFO
/// violation, one delivery order.
fn check(lines: &[Line]) -> Result<(), String> {
    if let Some(l) = lines.iter().find(|l| l.get("result") != Some("ok")) {
        return Err(format!(
            "node {} result {}",
            l.get("node").or(l.get("survivor")).unwrap_or("?"),
            l.get("result").unwrap_or("?")
        ));
    }
    let bad = |k: &str| lines.iter().any(|l| l.number(k).is_some_and(|v| v != 0.0));
    if bad("lost") || bad("fifo_viol") {
        return Err("messages lost or out of FIFO order".into());
    }
    let orders: std::collections::BTreeSet<&str> =
        lines.iter().filter_map(|l| l.get("order_hash")).collect();
    if orders.len() > 1 {
        return Err("the nodes delivered in different orders".into());
    }
    Ok(())
}
