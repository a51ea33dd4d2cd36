//! `ais-backup`: cluster-wide backups of the checkpoints, and restore.
//!
//! ```text
//! ais-backup [--socket PATH] [--timeout SECS] start DEST [--checkpoint NAME]... [--no-wait] [--json]
//! ais-backup [--socket PATH] [--timeout SECS] status ID [--json]
//! ais-backup [--socket PATH] [--timeout SECS] list [--json]
//! ais-backup verify DIR [--json]
//! ais-backup [--socket PATH] [--timeout SECS] restore DIR [--overwrite]
//! ```
//!
//! - `start`: asks the local executive for a backup of every checkpoint
//!   (or the `--checkpoint`s named) into DEST, an absolute directory that
//!   exists on every node (each node writes under `DEST/node-<n>/`, the
//!   master writes `DEST/backup-<id>/MANIFEST`). Shows the job's progress
//!   on standard error while it runs, then its result: the directory, the
//!   failed list and the errors nodes met. `--timeout` bounds the wait
//!   (default 3600 s for `start` and `restore`).
//! - `status`, `list`: one job, or every job the executive knows.
//! - `verify`: checks the backup in DIR (`DEST/backup-<id>`): the manifest's
//!   own CRC, then every data file's size and CRC-32. Needs no executive.
//! - `restore`: verifies DIR, then loads its checkpoints into the running
//!   cluster through the CKPT service (every replica gets them), showing
//!   progress. Refuses a backup that does not verify, and checkpoints that
//!   exist already unless `--overwrite`.
//!
//! Exit codes: 0 on success; 1 on failure (an aborted backup, a backup
//! that does not verify, a refused restore); 2 when no executive is
//! running at the socket; 3 when a backup completed with checkpoints in
//! its failed list; 64 for a command line that does not parse.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ais::backup::{self, Backup, RestoreOptions};
use ais::client::{socket_path, ClientConfig};
use clap::{Parser, Subcommand};
use proto::AisError;
use tools::backup_cli as render;
use tools::ckpt_cli::render::unescape;

const EXIT_NOT_RUNNING: u8 = 2;
const EXIT_PARTIAL: u8 = 3;
const EXIT_USAGE: u8 = 64;
/// How often progress is shown.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Back up and restore the checkpoints of an AIS cluster.
#[derive(Debug, Parser)]
#[command(name = "ais-backup", version)]
struct Cli {
    /// The executive's IPC socket (default: $AIS_SOCKET, else /run/ais/aisexec.sock).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// How long to wait, in seconds (default: 3600 for start and restore, 5 otherwise).
    #[arg(long = "timeout", global = true, value_name = "SECS")]
    timeout_secs: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Back up the checkpoints into DEST, showing progress, then the result.
    Start {
        /// The destination directory (absolute, on every node).
        dest: PathBuf,
        /// Back up only this checkpoint (repeatable; default: all).
        #[arg(long = "checkpoint", value_name = "NAME")]
        checkpoints: Vec<String>,
        /// Print the job id and return without waiting.
        #[arg(long)]
        no_wait: bool,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// One job as the executive knows it.
    Status {
        /// The job id (16 hex digits).
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Every job the executive knows, newest first.
    List {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Check a backup's files against its manifest.
    Verify {
        /// The backup directory (DEST/backup-<id>).
        dir: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Load a backup into the running cluster.
    Restore {
        /// The backup directory (DEST/backup-<id>).
        dir: PathBuf,
        /// Replace checkpoints that exist already.
        #[arg(long)]
        overwrite: bool,
    },
}

#[derive(Debug)]
enum Failure {
    NotRunning(String),
    Failed(String),
    Partial,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::NotRunning(s)) => {
            eprintln!("ais-backup: {s}");
            ExitCode::from(EXIT_NOT_RUNNING)
        }
        Err(Failure::Failed(s)) => {
            eprintln!("ais-backup: {s}");
            ExitCode::FAILURE
        }
        Err(Failure::Partial) => ExitCode::from(EXIT_PARTIAL),
    }
}

fn config(cli: &Cli, long: bool) -> ClientConfig {
    let mut c = ClientConfig::with_socket(cli.socket.clone().unwrap_or_else(socket_path));
    let secs = cli.timeout_secs.unwrap_or(if long { 3600 } else { 5 });
    c.timeout = Duration::from_secs(secs.clamp(1, 3600));
    c
}

fn connect(c: &ClientConfig) -> Result<Backup, Failure> {
    Backup::connect_with(c).map_err(|e| match e {
        AisError::TryAgain => {
            Failure::NotRunning(format!("no executive is running at {}", c.socket.display()))
        }
        e => Failure::Failed(format!("connect to {}: {e}", c.socket.display())),
    })
}

fn failed(what: &str) -> impl Fn(AisError) -> Failure + '_ {
    move |e| Failure::Failed(format!("{what}: {e}"))
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match &cli.command {
        Command::Start {
            dest,
            checkpoints,
            no_wait,
            json,
        } => {
            let c = config(cli, true);
            let mut b = connect(&c)?;
            let names: Vec<Vec<u8>> = checkpoints
                .iter()
                .map(|n| unescape(n))
                .collect::<Result<_, _>>()
                .map_err(Failure::Failed)?;
            let refs: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
            let dest = std::path::absolute(dest)
                .map_err(|e| Failure::Failed(format!("{}: {e}", dest.display())))?;
            let id =
                retry_try_again(c.timeout, || b.start(1, &dest, &refs)).map_err(failed("start"))?;
            if *no_wait {
                let _ = writeln!(out, "{}", render::job_id(id));
                return Ok(());
            }
            eprintln!(
                "backup {} started into {}",
                render::job_id(id),
                dest.display()
            );
            let done = b
                .wait_complete(id, c.timeout, PROGRESS_EVERY, &mut |s| {
                    eprintln!("{}", render::progress_line(s));
                })
                .map_err(failed("waiting for the backup"))?;
            if *json {
                let mut v = render::job_json(&done.job);
                v["ok"] = serde_json::Value::Bool(done.status.is_ok());
                let _ = writeln!(out, "{v}");
            } else {
                let _ = write!(out, "{}", render::job_text(&done.job));
            }
            match done.status {
                Err(e) => Err(Failure::Failed(format!(
                    "backup {} aborted ({e}): {}",
                    render::job_id(id),
                    done.job.reason
                ))),
                Ok(()) if !done.job.failed.is_empty() => Err(Failure::Partial),
                Ok(()) => Ok(()),
            }
        }
        Command::Status { id, json } => {
            let id = render::parse_job_id(id).map_err(Failure::Failed)?;
            let mut b = connect(&config(cli, false))?;
            let s = b.status(id).map_err(failed("status"))?;
            if *json {
                let _ = writeln!(out, "{}", render::job_json(&s));
            } else {
                let _ = write!(out, "{}", render::job_text(&s));
            }
            Ok(())
        }
        Command::List { json } => {
            let mut b = connect(&config(cli, false))?;
            let jobs = b.list().map_err(failed("list"))?;
            if *json {
                let v: Vec<_> = jobs.iter().map(render::job_json).collect();
                let _ = writeln!(out, "{}", serde_json::json!({ "jobs": v }));
            } else {
                let _ = write!(out, "{}", render::list_text(&jobs));
            }
            Ok(())
        }
        Command::Verify { dir, json } => {
            let r = backup::verify(dir).map_err(|e| Failure::Failed(e.to_string()))?;
            if *json {
                let _ = writeln!(out, "{}", render::verify_json(&r));
            } else {
                let _ = write!(out, "{}", render::verify_text(&r));
            }
            if r.is_ok() {
                Ok(())
            } else {
                Err(Failure::Failed(format!(
                    "{} of {} data file(s) do not match the manifest",
                    r.problems.len(),
                    r.files_checked
                )))
            }
        }
        Command::Restore { dir, overwrite } => {
            let c = config(cli, true);
            let r = backup::restore(
                &c,
                dir,
                RestoreOptions {
                    overwrite: *overwrite,
                },
                &mut |p| eprintln!("{}", render::restore_line(p)),
            )
            .map_err(|e| match e {
                backup::RestoreError::Cluster {
                    error: AisError::TryAgain,
                    op: "connect",
                    ..
                } => Failure::NotRunning(format!(
                    "no executive is running at {}",
                    c.socket.display()
                )),
                e => Failure::Failed(e.to_string()),
            })?;
            let _ = writeln!(
                out,
                "restored {} checkpoint(s), {} bytes, from backup {}{}",
                r.checkpoints,
                r.bytes,
                render::job_id(r.manifest.backup_id),
                if r.replaced.is_empty() {
                    String::new()
                } else {
                    format!(" ({} replaced)", r.replaced.len())
                }
            );
            Ok(())
        }
    }
}

/// Runs `f` again while it answers TRY_AGAIN (a sync running), for at most
/// `timeout`.
fn retry_try_again<T>(
    timeout: Duration,
    mut f: impl FnMut() -> Result<T, AisError>,
) -> Result<T, AisError> {
    let deadline = std::time::Instant::now() + timeout.min(Duration::from_secs(30));
    loop {
        match f() {
            Err(AisError::TryAgain) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            r => return r,
        }
    }
}
