//! `ais-ring-status`: what the local executive knows of its ring (what
//! `corosync-cfgtool -s` shows, and more).
//!
//! ```text
//! ais-ring-status [--json] [--socket PATH] [--wait-members N [--timeout SECS]]
//! ```
//!
//! Asks the CFG (status) service for the ring status and prints this node's
//! id, the ring id, the Totem state, whether the services are synchronized,
//! the members with their addresses and names, and every counter the
//! executive reports. `--json` prints one JSON object instead, for scripts.
//! The socket is `--socket`, else `$AIS_SOCKET`, else
//! `/run/ais/aisexec.sock`.
//!
//! `--wait-members N` waits (polling every 100 ms, at most `--timeout`
//! seconds, default 30) until the node is operational with N members and
//! its services synchronized, then prints the status: for scripts that
//! start a cluster (`make run`, tests). While waiting, an executive that is
//! not running yet is waited for too.
//!
//! Exit codes: 0 with a status; 2 when no executive is running at the
//! socket; 3 when `--wait-members` timed out (the last status is printed);
//! 1 for any other failure (refused, timed out, a malformed answer).

use std::path::PathBuf;
use std::process::ExitCode;

use ais::client::{socket_path, ClientConfig, Connection};
use clap::Parser;
use proto::status::{RingState, RingStatus, RING_STATUS, VERSION};
use proto::{AisError, ServiceId};
use std::time::{Duration, Instant};

/// Exit code when the executive is not running.
const EXIT_NOT_RUNNING: u8 = 2;
/// Exit code when `--wait-members` timed out.
const EXIT_WAIT_TIMEOUT: u8 = 3;
/// How often `--wait-members` asks.
const WAIT_POLL: Duration = Duration::from_millis(100);

/// Show the ring status of the local AIS executive.
#[derive(Debug, Parser)]
#[command(name = "ais-ring-status", version)]
struct Cli {
    /// Print one JSON object (for scripts).
    #[arg(long)]
    json: bool,
    /// The executive's IPC socket (default: $AIS_SOCKET, else /run/ais/aisexec.sock).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Wait until the node is operational and synchronized with N members.
    #[arg(long, value_name = "N")]
    wait_members: Option<usize>,
    /// Longest wait for --wait-members, in seconds.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 30,
        requires = "wait_members"
    )]
    timeout: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let socket = cli.socket.clone().unwrap_or_else(socket_path);
    let result = match cli.wait_members {
        None => fetch(&socket),
        Some(n) => match wait_for(&socket, n, Duration::from_secs(cli.timeout)) {
            Waited::Reached(status) => Ok(status),
            Waited::TimedOut(last) => {
                match &last {
                    Ok(s) => {
                        eprintln!(
                            "ais-ring-status: no {n}-member synchronized ring after {} s; last status:",
                            cli.timeout
                        );
                        eprint!("{}", to_text(s, &socket));
                    }
                    Err(e) => eprintln!(
                        "ais-ring-status: no {n}-member ring after {} s; last error {} ({})",
                        cli.timeout,
                        e.c_name(),
                        socket.display()
                    ),
                }
                return ExitCode::from(EXIT_WAIT_TIMEOUT);
            }
        },
    };
    match result {
        Ok(status) => {
            if cli.json {
                println!("{}", to_json(&status, &socket));
            } else {
                print!("{}", to_text(&status, &socket));
            }
            ExitCode::SUCCESS
        }
        Err(AisError::TryAgain) => {
            eprintln!(
                "ais-ring-status: aisexec is not running (nothing listens on {}); \
                 start it, or point --socket / AIS_SOCKET at its socket",
                socket.display()
            );
            ExitCode::from(EXIT_NOT_RUNNING)
        }
        Err(e) => {
            let hint = match e {
                AisError::Access => ": this user may not use the socket (see uidgid in the config)",
                AisError::Timeout => ": the executive did not answer in time",
                AisError::NotSupported | AisError::Version => {
                    ": the executive does not offer this status service version"
                }
                _ => "",
            };
            eprintln!(
                "ais-ring-status: {} ({}){hint}",
                e.c_name(),
                socket.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// How `--wait-members` ended.
enum Waited {
    /// The status that satisfied the wait.
    Reached(RingStatus),
    /// The last answer before the deadline.
    TimedOut(Result<RingStatus, AisError>),
}

/// Polls until the ring at `socket` is operational, synchronized, and has
/// `members` members, or `timeout` passed.
fn wait_for(socket: &std::path::Path, members: usize, timeout: Duration) -> Waited {
    let deadline = Instant::now() + timeout;
    loop {
        let last = fetch(socket);
        if let Ok(s) = &last {
            if s.state == RingState::Operational && s.sync_done && s.members.len() == members {
                return Waited::Reached(s.clone());
            }
        }
        if Instant::now() + WAIT_POLL > deadline {
            return Waited::TimedOut(last);
        }
        std::thread::sleep(WAIT_POLL);
    }
}

/// Connects to the CFG service at `socket` and asks for the ring status.
fn fetch(socket: &std::path::Path) -> Result<RingStatus, AisError> {
    let config = ClientConfig::with_socket(socket);
    let mut conn = Connection::connect_with(&config, ServiceId::Cfg, VERSION)?;
    let body = conn.request(RING_STATUS, &[])?.into_result()?;
    RingStatus::decode(&body).map_err(|_| AisError::Library)
}

fn to_text(s: &RingStatus, socket: &std::path::Path) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "Local node ID {}", s.node_id);
    let _ = writeln!(out, "Socket        {}", socket.display());
    let _ = writeln!(out, "Ring ID       {}/{}", s.ring_id.seq, s.ring_id.rep);
    let _ = writeln!(out, "Ring state    {}", s.state.name());
    let _ = writeln!(
        out,
        "Sync          {}",
        if s.sync_done { "done" } else { "in progress" }
    );
    let _ = writeln!(out, "Members       {}", s.members.len());
    for m in &s.members {
        let name = if m.name.is_empty() { "-" } else { &m.name };
        let me = if m.id == s.node_id { "  (local)" } else { "" };
        let _ = writeln!(out, "  node {:<6} {:<24} {name}{me}", m.id, m.addr);
    }
    let _ = writeln!(out, "Counters");
    let width = s.counters.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (name, value) in &s.counters {
        let _ = writeln!(out, "  {name:<width$}  {value}");
    }
    out
}

fn to_json(s: &RingStatus, socket: &std::path::Path) -> serde_json::Value {
    let members: Vec<serde_json::Value> = s
        .members
        .iter()
        .map(|m| serde_json::json!({ "id": m.id, "addr": m.addr, "name": m.name }))
        .collect();
    let counters: serde_json::Map<String, serde_json::Value> = s
        .counters
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::from(*v)))
        .collect();
    serde_json::json!({
        "node_id": s.node_id,
        "socket": socket.display().to_string(),
        "ring_id": { "seq": s.ring_id.seq, "rep": s.ring_id.rep },
        "state": s.state.name(),
        "sync_done": s.sync_done,
        "members": members,
        "counters": counters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::status::{Member, RingId};

    fn sample() -> RingStatus {
        RingStatus {
            node_id: 2,
            ring_id: RingId { seq: 8, rep: 1 },
            state: RingState::Operational,
            members: vec![
                Member {
                    id: 1,
                    addr: "127.0.0.1:5405".into(),
                    name: "node1".into(),
                },
                Member {
                    id: 2,
                    addr: "127.0.0.2:5405".into(),
                    name: String::new(),
                },
            ],
            counters: vec![("tokens_received".into(), 7)],
            sync_done: true,
        }
    }

    #[test]
    fn text_and_json_show_everything() {
        let socket = std::path::Path::new("/tmp/s.sock");
        let text = to_text(&sample(), socket);
        assert!(text.contains("Ring ID       8/1"), "{text}");
        assert!(
            text.contains("node 2      127.0.0.2:5405           -  (local)"),
            "{text}"
        );
        assert!(text.contains("tokens_received  7"), "{text}");
        let json = to_json(&sample(), socket);
        assert_eq!(json["ring_id"]["seq"], 8);
        assert_eq!(json["members"][0]["name"], "node1");
        assert_eq!(json["counters"]["tokens_received"], 7);
        assert_eq!(json["state"], "operational");
    }
}
