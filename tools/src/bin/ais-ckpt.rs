//! `ais-ckpt`: the checkpoints of the local executive's CKPT replica.
//!
//! ```text
//! ais-ckpt [--socket PATH] [--timeout SECS] list [--json]
//! ais-ckpt [--socket PATH] [--timeout SECS] dump NAME [--section ID | --all] [--raw]
//! ais-ckpt [--socket PATH] [--timeout SECS] digest [--json]
//! ais-ckpt [--socket PATH] [--timeout SECS] create NAME [ATTRIBUTES]
//! ais-ckpt [--socket PATH] [--timeout SECS] write NAME SECTION [DATA | --file PATH]
//!          [--offset N] [ATTRIBUTES]
//! ais-ckpt [--socket PATH] [--timeout SECS] unlink NAME
//! ais-ckpt [--socket PATH] [--timeout SECS] bench [--seconds S] [--sections N]
//!          [--size BYTES] [--mode all|active] [--json]
//! ```
//!
//! - `list`: every checkpoint in this node's store (unlinked ones too):
//!   name, key, creation attributes (flags, checkpoint size, retention,
//!   max sections, max section size, max section id size), sections, bytes
//!   used, openers over the cluster, the active replica and where it is in
//!   its retention. Answered from the node's replica, without the ring.
//! - `dump`: a section's data, as `hexdump -C` shows it or, with `--raw`,
//!   the bytes as they are; the default section without `--section`;
//!   every section (with its expiration, state and last update) with
//!   `--all`. The checkpoint is opened for reading while the tool runs: it
//!   counts as an opener, and a retention that was running starts again
//!   when the tool closes it. Unlinked checkpoints cannot be opened.
//! - `digest`: this node's store status: whether its CKPT sync finished,
//!   the counts, its memory limit and the digest of its replica (equal on
//!   every node whose replica is identical).
//! - `create`: opens with CREATE (the attributes below; defaults: all
//!   replicas, 16 sections of 64 KiB, 64-byte ids, retention forever) and
//!   closes again. An existing checkpoint with the same attributes is
//!   fine; other attributes are SA_AIS_ERR_EXIST.
//! - `write`: makes SECTION hold DATA (or the file's bytes, `-` for
//!   standard input): the whole contents (overwrite, creating the section
//!   if it does not exist), or at `--offset`. Opens the checkpoint for
//!   writing; if it does not exist it is created with the default
//!   attributes; with attribute options it is opened with CREATE and those
//!   attributes. SECTION `''` is the default section.
//! - `unlink`: removes the name; the data goes when the last opener closes.
//! - `bench`: creates a checkpoint of its own (`ais-ckpt-bench-PID-NANOS`,
//!   retention 0), N sections (default 16) of BYTES (default 1024), then
//!   overwrites them round-robin for S seconds (default 3), one request at
//!   a time, then reads them for S seconds; prints writes/s, reads/s and
//!   the median, p99 and largest latency of each, and unlinks the
//!   checkpoint. `--mode all` (default) is SA_CKPT_WR_ALL_REPLICAS,
//!   `active` SA_CKPT_WR_ACTIVE_REPLICA.
//!
//! Names and section ids are bytes: they are printed escaped (`\\` for a
//! backslash, `\xNN` for a byte that is not printable ASCII or is a double
//! quote) and read back the same way from the command line.
//!
//! The socket is `--socket`, else `$AIS_SOCKET`, else
//! `/run/ais/aisexec.sock`. A request answered SA_AIS_ERR_TRY_AGAIN (the
//! node is synchronizing, its ring is full) is retried until `--timeout`.
//!
//! Exit codes: 0 on success; 2 when no executive is running at the
//! socket; 64 (`EX_USAGE`) for a command line that does not parse; 1 for
//! any other failure (the SA Forum error is named).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use ais::client::socket_path;
use clap::{Args, Parser, Subcommand, ValueEnum};
use proto::ckpt::{
    CreationAttributes, CHECKPOINT_COLLOCATED, OPEN_CREATE, OPEN_READ, OPEN_WRITE, TIME_END,
    WR_ACTIVE_REPLICA, WR_ACTIVE_REPLICA_WEAK, WR_ALL_REPLICAS,
};
use proto::AisError;
use tools::ckpt_cli::bench::{self, BenchConfig};
use tools::ckpt_cli::render;
use tools::ckpt_cli::session::{Opened, Put, Session, ToolError};

/// Exit code when the executive is not running.
const EXIT_NOT_RUNNING: u8 = 2;
/// Exit code for a command line that does not parse (`EX_USAGE`).
const EXIT_USAGE: u8 = 64;

/// `create` and `write` defaults.
const DEFAULT_MAX_SECTIONS: u32 = 16;
const DEFAULT_MAX_SECTION_BYTES: u64 = 64 * 1024;
const DEFAULT_MAX_SECTION_ID_BYTES: u64 = 64;

/// Most bytes `write` reads from a file or standard input (one request's
/// worth; the executive refuses larger sections anyway).
const MAX_INPUT_BYTES: u64 = proto::ckpt::MAX_DATA_BYTES as u64;

/// List, dump and write the checkpoints of the local AIS executive.
#[derive(Debug, Parser)]
#[command(name = "ais-ckpt", version)]
struct Cli {
    /// The executive's IPC socket (default: $AIS_SOCKET, else /run/ais/aisexec.sock).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// How long to wait for an answer, and to retry SA_AIS_ERR_TRY_AGAIN, in seconds.
    #[arg(
        long = "timeout",
        global = true,
        value_name = "SECS",
        default_value_t = 5
    )]
    timeout_secs: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every checkpoint of this node's replica, with its attributes and state.
    List {
        /// Print one JSON object (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Print a section's data (hex, or raw bytes with --raw).
    Dump {
        /// The checkpoint's name.
        name: String,
        /// The section id (default: the default section).
        #[arg(long, value_name = "ID", conflicts_with = "all")]
        section: Option<String>,
        /// Every section, each with its expiration, state and last update.
        #[arg(long)]
        all: bool,
        /// Write the bytes as they are instead of a hex dump.
        #[arg(long, conflicts_with = "all")]
        raw: bool,
    },
    /// This node's store status and the digest of its replica.
    Digest {
        /// Print one JSON object (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Create a checkpoint (or check that it exists with these attributes).
    Create {
        /// The checkpoint's name.
        name: String,
        #[command(flatten)]
        attributes: AttributeArgs,
    },
    /// Make a section hold some data, creating what is missing.
    ///
    /// Replaces the section's contents (creating the section if it does
    /// not exist), or writes at --offset of the existing one. The
    /// checkpoint is opened for writing; one that does not exist is
    /// created with the default attributes. With attribute options it is
    /// opened with CREATE and those attributes (SA_AIS_ERR_EXIST if it
    /// exists with others).
    Write {
        /// The checkpoint's name.
        name: String,
        /// The section id ('' for the default section).
        section: String,
        /// The data (as given; see --file for bytes).
        #[arg(required_unless_present = "file")]
        data: Option<String>,
        /// Read the data from this file ('-': standard input).
        #[arg(long, value_name = "PATH", conflicts_with = "data")]
        file: Option<PathBuf>,
        /// Write at this offset of the existing section instead of replacing it.
        #[arg(long, value_name = "BYTES")]
        offset: Option<u64>,
        #[command(flatten)]
        attributes: AttributeArgs,
    },
    /// Unlink a checkpoint (its data goes when the last opener closes).
    Unlink {
        /// The checkpoint's name.
        name: String,
    },
    /// Measure section writes/s and reads/s (and their latencies) on a
    /// checkpoint of its own, unlinked at the end.
    Bench {
        /// Seconds of writes, then as many of reads.
        #[arg(long, value_name = "S", default_value_t = 3.0, value_parser = parse_seconds)]
        seconds: f64,
        /// Sections, written and read round-robin.
        #[arg(long, value_name = "N", default_value_t = 16,
              value_parser = clap::value_parser!(u32).range(1..=65_536))]
        sections: u32,
        /// Bytes in each section (each write and read).
        #[arg(long, value_name = "BYTES", default_value_t = 1024,
              value_parser = clap::value_parser!(u64).range(1..=proto::ckpt::MAX_DATA_BYTES as u64))]
        size: u64,
        /// Write mode.
        #[arg(long, value_enum, default_value_t = BenchMode::All)]
        mode: BenchMode,
        /// Print one JSON object (for scripts).
        #[arg(long)]
        json: bool,
    },
}

/// `bench --mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BenchMode {
    /// SA_CKPT_WR_ALL_REPLICAS.
    All,
    /// SA_CKPT_WR_ACTIVE_REPLICA.
    Active,
}

/// `bench --seconds`: a positive number of seconds (fractions allowed).
fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(s),
        _ => Err(format!("`{text}` is not a number of seconds in (0, 86400]")),
    }
}

/// `SA_CKPT_WR_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// SA_CKPT_WR_ALL_REPLICAS.
    All,
    /// SA_CKPT_WR_ACTIVE_REPLICA.
    Active,
    /// SA_CKPT_WR_ACTIVE_REPLICA_WEAK.
    ActiveWeak,
}

/// Creation attributes on the command line; unset ones take the defaults.
#[derive(Debug, Args)]
struct AttributeArgs {
    /// Write mode [default: all].
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// SA_CKPT_CHECKPOINT_COLLOCATED.
    #[arg(long)]
    collocated: bool,
    /// Most sections [default: 16].
    #[arg(long, value_name = "N")]
    max_sections: Option<u32>,
    /// Most bytes in one section [default: 65536].
    #[arg(long, value_name = "BYTES")]
    max_section_size: Option<u64>,
    /// Most bytes in a section id [default: 64].
    #[arg(long, value_name = "BYTES")]
    max_section_id_size: Option<u64>,
    /// Most bytes over all sections [default: max sections x max section size].
    #[arg(long, value_name = "BYTES")]
    checkpoint_size: Option<u64>,
    /// How long the checkpoint lives once closed by all, in ms, or `forever` [default: forever].
    #[arg(long, value_name = "MS|forever", value_parser = parse_retention_ns)]
    retention_ms: Option<i64>,
}

impl AttributeArgs {
    /// Whether any attribute was given.
    fn given(&self) -> bool {
        self.mode.is_some()
            || self.collocated
            || self.max_sections.is_some()
            || self.max_section_size.is_some()
            || self.max_section_id_size.is_some()
            || self.checkpoint_size.is_some()
            || self.retention_ms.is_some()
    }

    /// The attributes, defaults filled in.
    fn resolve(&self) -> CreationAttributes {
        let mode = match self.mode.unwrap_or(Mode::All) {
            Mode::All => WR_ALL_REPLICAS,
            Mode::Active => WR_ACTIVE_REPLICA,
            Mode::ActiveWeak => WR_ACTIVE_REPLICA_WEAK,
        };
        let collocated = if self.collocated {
            CHECKPOINT_COLLOCATED
        } else {
            0
        };
        let max_sections = self.max_sections.unwrap_or(DEFAULT_MAX_SECTIONS);
        let max_section_size = self.max_section_size.unwrap_or(DEFAULT_MAX_SECTION_BYTES);
        CreationAttributes {
            creation_flags: mode | collocated,
            checkpoint_size: self
                .checkpoint_size
                .unwrap_or(u64::from(max_sections).saturating_mul(max_section_size)),
            retention_duration_ns: self.retention_ms.unwrap_or(TIME_END),
            max_sections,
            max_section_size,
            max_section_id_size: self
                .max_section_id_size
                .unwrap_or(DEFAULT_MAX_SECTION_ID_BYTES),
        }
    }
}

/// `--retention-ms`: `forever`, or milliseconds (as nanoseconds).
fn parse_retention_ns(text: &str) -> Result<i64, String> {
    if text.eq_ignore_ascii_case("forever") {
        return Ok(TIME_END);
    }
    let ms: i64 = text
        .parse()
        .map_err(|_| format!("`{text}` is neither milliseconds nor `forever`"))?;
    if ms < 0 {
        return Err("a retention is not negative".into());
    }
    ms.checked_mul(1_000_000)
        .ok_or_else(|| format!("{ms} ms is beyond SA_TIME_MAX; say `forever`"))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap exits 2 on a usage error: that is "not running" here.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let socket = cli.socket.clone().unwrap_or_else(socket_path);
    let timeout = Duration::from_secs(cli.timeout_secs.max(1));
    match run(&cli.command, &socket, timeout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ ToolError::NotRunning { .. }) => {
            eprintln!("ais-ckpt: {e}");
            ExitCode::from(EXIT_NOT_RUNNING)
        }
        Err(e) => {
            eprintln!("ais-ckpt: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: &Command, socket: &Path, timeout: Duration) -> Result<(), ToolError> {
    let mut session = Session::connect(socket, timeout)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match command {
        Command::List { json } => {
            let node = session.store_status()?.node_id;
            let list = session.list()?;
            if *json {
                emit(
                    &mut out,
                    format!("{}\n", render::list_json(node, &list)).as_bytes(),
                )
            } else {
                emit(&mut out, render::list_text(node, &list).as_bytes())
            }
        }
        Command::Digest { json } => {
            let s = session.store_status()?;
            if *json {
                emit(
                    &mut out,
                    format!("{}\n", render::status_json(&s)).as_bytes(),
                )
            } else {
                emit(&mut out, render::status_text(&s).as_bytes())
            }
        }
        Command::Dump {
            name,
            section,
            all,
            raw,
        } => {
            let name = arg_bytes(name)?;
            let id = arg_bytes(section.as_deref().unwrap_or(""))?;
            session.with_open(&name, OPEN_READ, None, |s, opened| {
                if *all {
                    dump_all(s, opened, &name, &mut out)
                } else {
                    let data = s.read_section(opened, &id)?;
                    if *raw {
                        emit(&mut out, &data)
                    } else {
                        let header = render::section_header(&name, &id, data.len(), None);
                        emit(&mut out, header.as_bytes())?;
                        emit(&mut out, render::hex_dump(&data).as_bytes())
                    }
                }
            })
        }
        Command::Create { name, attributes } => {
            let name = arg_bytes(name)?;
            let flags = OPEN_CREATE | OPEN_READ | OPEN_WRITE;
            let opened = session.with_open(&name, flags, Some(attributes.resolve()), |_, o| {
                Ok(o.clone())
            })?;
            let line = format!(
                "checkpoint {}: {}\n",
                render::quoted(&name),
                describe(&opened.attributes)
            );
            emit(&mut out, line.as_bytes())
        }
        Command::Write {
            name,
            section,
            data,
            file,
            offset,
            attributes,
        } => {
            let name = arg_bytes(name)?;
            let id = arg_bytes(section)?;
            let bytes = match (data, file) {
                (_, Some(path)) => read_input(path)?,
                (Some(text), None) => text.as_bytes().to_vec(),
                (None, None) => Vec::new(),
            };
            let (opened, created) = open_for_write(&mut session, &name, attributes)?;
            let attributes = opened.attributes;
            let put =
                session.run_and_close(opened, |s, o| s.put_section(o, &id, *offset, &bytes))?;
            let mut text = String::new();
            if created {
                text.push_str(&format!(
                    "created checkpoint {}: {}\n",
                    render::quoted(&name),
                    describe(&attributes)
                ));
            }
            let what = format!("{} of {}", render::section_name(&id), render::quoted(&name));
            text.push_str(&match put {
                Put::Created => format!("created {what} with {} bytes\n", bytes.len()),
                Put::Overwritten => format!("overwrote {what} with {} bytes\n", bytes.len()),
                Put::Written => format!(
                    "wrote {} bytes at offset {} of {what}\n",
                    bytes.len(),
                    offset.unwrap_or(0)
                ),
            });
            emit(&mut out, text.as_bytes())
        }
        Command::Bench {
            seconds,
            sections,
            size,
            mode,
            json,
        } => {
            let config = BenchConfig {
                duration: Duration::from_secs_f64(*seconds),
                sections: *sections,
                size: *size,
                all_replicas: *mode == BenchMode::All,
            };
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!("ais-ckpt-bench-{}-{nanos}", std::process::id());
            let result = bench::run(&mut session, &name, &config)?;
            if *json {
                let line = format!("{}\n", bench::json(&config, &result));
                emit(&mut out, line.as_bytes())
            } else {
                emit(&mut out, bench::text(&config, &result).as_bytes())
            }
        }
        Command::Unlink { name } => {
            let name = arg_bytes(name)?;
            session.unlink(&name)?;
            emit(
                &mut out,
                format!("unlinked {}\n", render::quoted(&name)).as_bytes(),
            )
        }
    }
}

/// Opens `name` for `write`: with CREATE and the given attributes when
/// there are any; else as it is, and with CREATE and the defaults if it
/// does not exist. Says whether the tool's open may have created it.
fn open_for_write(
    session: &mut Session,
    name: &[u8],
    attributes: &AttributeArgs,
) -> Result<(Opened, bool), ToolError> {
    let create = OPEN_CREATE | OPEN_WRITE | OPEN_READ;
    if attributes.given() {
        return Ok((
            session.open(name, create, Some(attributes.resolve()))?,
            false,
        ));
    }
    match session.open(name, OPEN_WRITE | OPEN_READ, None) {
        Err(ToolError::Ais {
            error: AisError::NotExist,
            ..
        }) => Ok((
            session.open(name, create, Some(attributes.resolve()))?,
            true,
        )),
        other => Ok((other?, false)),
    }
}

/// Every section of an opened checkpoint: a header line and a hex dump
/// each. A section that vanished between the iteration and its read is
/// said so and skipped.
fn dump_all(
    s: &mut Session,
    opened: &Opened,
    name: &[u8],
    out: &mut impl Write,
) -> Result<(), ToolError> {
    let sections = s.sections(opened)?;
    let head = format!(
        "checkpoint {}: {} section(s)\n",
        render::quoted(name),
        sections.len()
    );
    emit(out, head.as_bytes())?;
    for d in &sections {
        emit(out, b"\n")?;
        match s.read_section(opened, &d.section_id) {
            Ok(data) => {
                let header = render::section_header(name, &d.section_id, data.len(), Some(d));
                emit(out, header.as_bytes())?;
                emit(out, render::hex_dump(&data).as_bytes())?;
            }
            Err(ToolError::Ais {
                error: AisError::NotExist,
                ..
            }) => {
                let gone = format!(
                    "{} of {}: deleted meanwhile\n",
                    render::section_name(&d.section_id),
                    render::quoted(name)
                );
                emit(out, gone.as_bytes())?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Creation attributes in one line.
fn describe(a: &CreationAttributes) -> String {
    format!(
        "{}, {} section(s) of at most {} bytes, {} bytes in all, ids up to {} bytes, retention {}",
        render::flag_names(a.creation_flags).join(" | "),
        a.max_sections,
        a.max_section_size,
        a.checkpoint_size,
        a.max_section_id_size,
        render::duration(a.retention_duration_ns)
    )
}

/// A name or section id from the command line (escapes resolved).
fn arg_bytes(text: &str) -> Result<Vec<u8>, ToolError> {
    render::unescape(text).map_err(ToolError::Local)
}

/// The bytes of `path` (`-`: standard input), at most [`MAX_INPUT_BYTES`].
fn read_input(path: &Path) -> Result<Vec<u8>, ToolError> {
    let shown = path.display();
    let mut data = Vec::new();
    let reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| ToolError::Local(format!("{shown}: {e}")))?)
    };
    reader
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| ToolError::Local(format!("{shown}: {e}")))?;
    if data.len() as u64 > MAX_INPUT_BYTES {
        return Err(ToolError::Local(format!(
            "{shown}: more than {MAX_INPUT_BYTES} bytes (the largest section)"
        )));
    }
    Ok(data)
}

/// Writes `bytes` to standard output.
fn emit(out: &mut impl Write, bytes: &[u8]) -> Result<(), ToolError> {
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| ToolError::Local(format!("standard output: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_and_defaults() {
        assert_eq!(parse_retention_ns("forever"), Ok(TIME_END));
        assert_eq!(parse_retention_ns("1500"), Ok(1_500_000_000));
        assert!(parse_retention_ns("-1").is_err());
        assert!(parse_retention_ns("soon").is_err());
        assert!(parse_retention_ns(&i64::MAX.to_string()).is_err());
        let cli = Cli::try_parse_from(["ais-ckpt", "create", "c"]).expect("parses");
        let Command::Create { attributes, .. } = cli.command else {
            panic!("create");
        };
        assert!(!attributes.given());
        let a = attributes.resolve();
        assert_eq!(a.creation_flags, WR_ALL_REPLICAS);
        assert_eq!(a.checkpoint_size, 16 * 64 * 1024);
        assert_eq!(a.retention_duration_ns, TIME_END);
        let cli = Cli::try_parse_from([
            "ais-ckpt",
            "--socket",
            "/s",
            "write",
            "c",
            "s1",
            "data",
            "--mode",
            "active-weak",
            "--collocated",
            "--max-sections",
            "2",
        ])
        .expect("parses");
        assert_eq!(cli.socket.as_deref(), Some(Path::new("/s")));
        let Command::Write { attributes, .. } = cli.command else {
            panic!("write");
        };
        assert!(attributes.given());
        let a = attributes.resolve();
        assert_eq!(
            a.creation_flags,
            WR_ACTIVE_REPLICA_WEAK | CHECKPOINT_COLLOCATED
        );
        assert_eq!(a.checkpoint_size, 2 * 64 * 1024);
    }

    #[test]
    fn command_line_conflicts_are_refused() {
        assert!(Cli::try_parse_from(["ais-ckpt", "dump", "c", "--all", "--raw"]).is_err());
        assert!(Cli::try_parse_from(["ais-ckpt", "dump", "c", "--all", "--section", "s"]).is_err());
        assert!(Cli::try_parse_from(["ais-ckpt", "write", "c", "s"]).is_err());
        assert!(Cli::try_parse_from(["ais-ckpt", "write", "c", "s", "x", "--file", "f"]).is_err());
        assert!(Cli::try_parse_from(["ais-ckpt", "write", "c", "s", "--file", "f"]).is_ok());
    }

    #[test]
    fn bench_arguments() {
        let cli = Cli::try_parse_from(["ais-ckpt", "bench"]).expect("parses");
        let Command::Bench {
            seconds,
            sections,
            size,
            mode,
            json,
        } = cli.command
        else {
            panic!("bench");
        };
        assert_eq!(
            (seconds, sections, size, mode, json),
            (3.0, 16, 1024, BenchMode::All, false)
        );
        let cli = Cli::try_parse_from([
            "ais-ckpt",
            "--socket",
            "/s",
            "bench",
            "--seconds",
            "0.5",
            "--sections",
            "4",
            "--size",
            "64",
            "--mode",
            "active",
            "--json",
        ])
        .expect("parses");
        let Command::Bench {
            seconds,
            sections,
            size,
            mode,
            json,
        } = cli.command
        else {
            panic!("bench");
        };
        assert_eq!(
            (seconds, sections, size, mode, json),
            (0.5, 4, 64, BenchMode::Active, true)
        );
        for bad in [
            ["--seconds", "0"],
            ["--seconds", "x"],
            ["--sections", "0"],
            ["--size", "0"],
            ["--mode", "active-weak"],
        ] {
            let mut args = vec!["ais-ckpt", "bench"];
            args.extend(bad);
            assert!(Cli::try_parse_from(&args).is_err(), "{bad:?}");
        }
    }
}
