//! `aisexec`: the AIS cluster executive.
//!
//! ```text
//! aisexec -c FILE [-f] [--nodeid N] [--run-dir DIR] [--socket PATH] [-t]
//! ```
//!
//! Reads a corosync.conf/openais.conf (see `aisexec::config`), binds this
//! node's UDP address from the nodelist and the IPC socket, and runs the
//! event loop ([`daemon`]) until SIGTERM/SIGINT.
//!
//! - This node's id: `--nodeid`, else `totem { nodeid }`. It must be in the
//!   nodelist (its `ring0_addr` is the address bound).
//! - The run directory (IPC socket, state): `--run-dir`, else
//!   `$AIS_RUN_DIR`, else `system { run_dir }`, else `/run/ais`; created if
//!   missing. Relative paths are taken from the current directory.
//! - The IPC socket: `--socket`, else `$AIS_SOCKET`, else
//!   `<run dir>/aisexec.sock`.
//! - The pid is in `<run dir>/aisexec.pid` while the daemon runs.
//! - The ring sequence number is persisted in `system { state_dir }`,
//!   else the run directory, and read back at start (see [`ring_seq`]).
//! - Without `-f` the daemon goes to the background once its sockets are
//!   bound (so errors up to then still reach the terminal and the exit
//!   code); under systemd use `-f` with `Type=notify` (see
//!   `aisexec/aisexec.service`).
//! - `-t` checks the configuration and exits.
//!
//! Exit codes: 0 after SIGTERM/SIGINT or a good `-t`; 1 when the config is
//! malformed (the message says `file:line: what was expected`) or a socket
//! cannot be bound; 2 for a bad command line.
//!
//! Signals: SIGTERM/SIGINT leave the ring and exit; SIGHUP re-reads the
//! config (logging and the nodelist apply at once, the rest is reported as
//! needing a restart); SIGUSR2 logs the node's state and counters.

mod backup_workers;
mod counters;
mod daemon;
mod fault_hook;
mod logging;
mod notify;
mod pause;
mod pid_file;
mod ring_seq;
mod runtime;
mod transport;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use aisexec::config::{self, ClusterConfig, NodeEntry, Principal, SystemSection};
use aisexec::ipc::{AllowList, IpcConfig, IpcServer};
use aisexec::ring_crypto::{self, RingCrypto, RingSecurity};
use clap::Parser;
use node::{Node, NodeConfig, NodeInfo};
use proto::clm::AddressFamily;
use totem::NodeId;

use crate::daemon::{Clock, Daemon, Exit, Parts, IPC_TOKEN_BASE};
use crate::logging::Logging;
use crate::pid_file::PidFile;
use crate::ring_seq::RingSeqFile;
use crate::transport::Transport;

/// The run directory when neither the command line, the environment nor
/// the config names one.
const DEFAULT_RUN_DIR: &str = "/run/ais";
/// The config file when `-c` is not given (openais's).
const DEFAULT_CONFIG: &str = "/etc/ais/openais.conf";
/// The IPC socket's name in the run directory.
const SOCKET_NAME: &str = "aisexec.sock";

/// The AIS cluster executive: Totem ring membership and ordered messaging,
/// and the services on top, for the clients on this host.
#[derive(Debug, Parser)]
#[command(name = "aisexec", version)]
struct Cli {
    /// The config file (corosync.conf / openais.conf format).
    #[arg(short = 'c', long = "config", value_name = "FILE", default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Stay in the foreground (always use it under systemd).
    #[arg(short = 'f', long = "foreground")]
    foreground: bool,
    /// This node's id (overrides `totem { nodeid }`); must be in the nodelist.
    #[arg(long = "nodeid", value_name = "N")]
    nodeid: Option<u32>,
    /// The run directory (overrides $AIS_RUN_DIR and `system { run_dir }`).
    #[arg(long = "run-dir", value_name = "DIR")]
    run_dir: Option<PathBuf>,
    /// The IPC socket (overrides $AIS_SOCKET; default `<run dir>/aisexec.sock`).
    #[arg(long = "socket", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Check the configuration and exit.
    #[arg(short = 't', long = "test-config")]
    test_config: bool,
}

/// A startup failure: printed as `aisexec: {message}`, exit code 1.
#[derive(Debug)]
struct Fatal(String);

impl<E: std::fmt::Display> From<E> for Fatal {
    fn from(e: E) -> Fatal {
        Fatal(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logging = Logging::install();
    match start(&cli, &logging) {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some((mut daemon, _pid_file))) => match daemon.run() {
            Ok(Exit::Signal(_)) => {
                log::info!("exiting");
                ExitCode::SUCCESS
            }
            Err(e) => {
                log::error!("event loop failed: {e}");
                ExitCode::FAILURE
            }
        },
        Err(Fatal(message)) => {
            log::error!("{message}");
            // The log may not reach the terminal (to_stderr: no): say it there too.
            if !logging.writes_to_stderr() {
                eprintln!("aisexec: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Everything up to the event loop; `None` for `-t`.
fn start(cli: &Cli, logging: &Logging) -> Result<Option<(Daemon, PidFile)>, Fatal> {
    let config_path = std::path::absolute(&cli.config)?;
    let (config, warnings) = config::load(&config_path)?;
    for e in logging.apply(&config.logging) {
        log::warn!("{e}");
    }
    for w in &warnings {
        log::warn!(target: "CONFIG", "{w}");
    }
    for s in &config.ignored_sections {
        log::info!(target: "CONFIG", "{}:{}: section `{}` is not used by this implementation", config.file, s.line, s.name);
    }
    if config.nodes.is_empty() {
        return Err(Fatal(format!(
            "{}: no nodelist: aisexec unicasts to the nodes of a `nodelist {{ node {{ ring0_addr nodeid }} }}` \
             section (multicast discovery without a nodelist is not implemented)",
            config.file
        )));
    }
    let multicast = config.totem.transport == Some(config::Transport::Udp)
        || config
            .totem
            .interfaces
            .iter()
            .any(|i| i.mcastaddr.is_some());
    if multicast {
        log::info!(
            target: "CONFIG",
            "{}: multicast (transport udp / mcastaddr) is served as UDP unicast to every node of the nodelist",
            config.file
        );
    }
    let node_id = local_node_id(cli, &config)?;
    let Some(me) = config.node(node_id) else {
        return Err(Fatal(format!(
            "{}: node {node_id} is not in the nodelist (every node, this one included, needs a `node {{ nodeid ring0_addr }}` entry)",
            config.file
        )));
    };
    let local_addr = config.node_addr(me);
    let run_dir = run_dir(cli, &config)?;
    let socket = match (&cli.socket, std::env::var_os("AIS_SOCKET")) {
        (Some(path), _) => std::path::absolute(path)?,
        (None, Some(path)) if !path.is_empty() => std::path::absolute(PathBuf::from(path))?,
        _ => run_dir.join(SOCKET_NAME),
    };
    let state_dir = match &config.system.state_dir {
        Some(dir) => std::path::absolute(dir)?,
        None => run_dir.clone(),
    };
    let allow = allow_list(&config)?;
    // Validate the totem settings before touching the system.
    config.totem_config(node_id)?;
    let crypto = ring_crypto(&config, node_id)?;
    if cli.test_config {
        println!(
            "{}: configuration valid; node {node_id} at {local_addr}, run directory {}, socket {}; ring {}",
            config.file,
            run_dir.display(),
            socket.display(),
            crypto
                .as_ref()
                .map_or_else(|| "not encrypted (secauth: off)".to_owned(), RingCrypto::describe)
        );
        return Ok(None);
    }

    for dir in [&run_dir, &state_dir] {
        std::fs::create_dir_all(dir)
            .map_err(|e| Fatal(format!("cannot create directory {}: {e}", dir.display())))?;
    }
    let (ring_seq, stored) = RingSeqFile::load(&state_dir);
    let ring_seq_floor = stored.unwrap_or_else(|e| {
        log::warn!("{e}; starting from ring seq 0 (the other nodes' rings raise it)");
        0
    });
    let mut totem_config = config.totem_config(node_id)?.get().clone();
    totem_config.ring_seq_floor = ring_seq_floor;
    let totem = totem_config.validate()?;

    if config.system.mlockall == Some(true) {
        runtime::lock_memory();
    }
    if config.system.sched_rr == Some(true) {
        runtime::realtime_scheduling();
    }

    let poll = mio::Poll::new()?;
    let mut transport =
        Transport::bind(node_id, local_addr, daemon::node_addrs(&config)).map_err(|e| {
            Fatal(format!(
                "cannot bind UDP {local_addr} (node {node_id}): {e}"
            ))
        })?;
    transport.set_crypto(crypto);
    let mut ipc_config = IpcConfig::new(&socket, IPC_TOKEN_BASE);
    let (mode, group) = socket_access(&config, &allow)?;
    ipc_config.mode = mode;
    ipc_config.group = group;
    ipc_config.allow = AllowList {
        uids: allow.uids.iter().copied().collect(),
        // Members of the socket's group are admitted (openais's
        // `aisexec { group }`).
        gids: allow.gids.iter().copied().chain(group).collect(),
    };
    log::info!(
        target: "IPC",
        "socket {} mode {mode:04o}{}; admitted: root, uid {}{}{}",
        socket.display(),
        group.map_or_else(String::new, |g| format!(" group {g}")),
        nix::unistd::geteuid(),
        if ipc_config.allow.uids.is_empty() { String::new() } else { format!(", uids {:?}", ipc_config.allow.uids) },
        if ipc_config.allow.gids.is_empty() { String::new() } else { format!(", gids {:?}", ipc_config.allow.gids) },
    );
    let queue_limits = (ipc_config.max_queue_bytes, ipc_config.max_queue_frames);
    let max_clients = ipc_config.max_connections;
    let ipc = IpcServer::bind(poll.registry(), ipc_config)?;

    if !cli.foreground {
        if !logging.has_durable_sink() {
            log::warn!(
                "going to the background with logging to stderr only: nothing will be logged \
                 (use -f, or logging {{ to_logfile / to_syslog }})"
            );
        }
        // Sockets are bound: fork, the parent exits 0, the child goes on
        // in a new session with stdio on /dev/null.
        nix::unistd::daemon(false, false).map_err(|e| Fatal(format!("cannot daemonize: {e}")))?;
    }
    let pid_file = PidFile::write(&run_dir).map_err(|e| {
        Fatal(format!(
            "cannot write {}: {e}",
            run_dir.join(pid_file::FILE_NAME).display()
        ))
    })?;

    let directory = directory(&config);
    let boot_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    let clock = Clock::start();
    let node = Node::new(
        NodeConfig {
            totem: totem.clone(),
            engines: engines(me, boot_ns, &config.system),
            directory,
            max_clients,
            observe: false,
        },
        clock.now(),
    )?;
    log::info!(
        "node {node_id} at {local_addr}: {} nodes configured, token {} ms, consensus {} ms, ring seq floor {ring_seq_floor}; IPC socket {}; pid {}",
        config.nodes.len(),
        totem.get().token_timeout.as_millis(),
        totem.get().consensus_timeout.as_millis(),
        socket.display(),
        std::process::id()
    );
    let daemon = Daemon::new(Parts {
        clock,
        node,
        transport,
        ipc,
        poll,
        ring_seq,
        logging: logging.clone(),
        config_path,
        config,
        totem,
        node_id,
        ipc_queue_limits: queue_limits,
    })?;
    Ok(Some((daemon, pid_file)))
}

/// The service engines in handler-list order (CLM, EVS, CKPT, BACKUP); the CFG (status) service is the node's own. A
/// `system { ckpt_memory_limit }` replaces the standard CKPT engine by one
/// with that limit, in the same place of the list.
fn engines(me: &NodeEntry, boot_ns: i64, system: &SystemSection) -> Vec<Box<dyn services::Engine>> {
    let local = services::clm::LocalNode {
        address: me.ring0_addr.to_string(),
        family: match me.ring0_addr {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        },
        name: me
            .name
            .clone()
            .unwrap_or_else(|| format!("node{}", me.node_id)),
        boot_timestamp_ns: boot_ns,
    };
    let mut engines = services::standard_engines(local, &system.disabled);
    if let Some(limit) = system.ckpt_memory_limit_bytes {
        for engine in &mut engines {
            if engine.service() == proto::ServiceId::Ckpt {
                let cfg = services::ckpt::CkptConfig {
                    memory_limit_bytes: limit,
                    wall_clock_at_zero_ns: boot_ns,
                };
                *engine = Box::new(services::ckpt::Ckpt::new(cfg));
            }
        }
    }
    engines
}

fn local_node_id(cli: &Cli, config: &ClusterConfig) -> Result<NodeId, Fatal> {
    match (cli.nodeid, config.local_node_id) {
        (Some(raw), _) => NodeId::new(raw)
            .ok_or_else(|| Fatal("--nodeid must be a nonzero node id".to_owned())),
        (None, Some(id)) => Ok(id),
        (None, None) => Err(Fatal(format!(
            "{}: this node's id is not set: add `nodeid: N` to the totem section or pass --nodeid N",
            config.file
        ))),
    }
}

fn run_dir(cli: &Cli, config: &ClusterConfig) -> Result<PathBuf, Fatal> {
    let env = std::env::var_os("AIS_RUN_DIR").filter(|v| !v.is_empty());
    let dir = cli
        .run_dir
        .clone()
        .or(env.map(PathBuf::from))
        .or_else(|| config.system.run_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_DIR));
    Ok(std::path::absolute(dir)?)
}

/// The seal layer the config asks for, its keys loaded; `None` (with a
/// warning) for `secauth: off`.
fn ring_crypto(config: &ClusterConfig, node_id: NodeId) -> Result<Option<RingCrypto>, Fatal> {
    match ring_crypto::ring_security(config)? {
        RingSecurity::Off => {
            log::warn!(
                target: "CRYPTO",
                "{}: secauth: off: ring packets are neither encrypted nor authenticated; \
                 anyone who can send UDP to port {} can disturb the ring (make a key with ais-keygen)",
                config.file,
                config.totem.port
            );
            Ok(None)
        }
        RingSecurity::On(settings) => {
            let crypto = RingCrypto::load(node_id.get(), settings)
                .map_err(|e| Fatal(format!("ring security (secauth is on): {e}")))?;
            log::info!(target: "CRYPTO", "ring packets sealed with {}", crypto.describe());
            Ok(Some(crypto))
        }
    }
}

/// The group the IPC socket gets when the config names none.
const DEFAULT_SOCKET_GROUP: &str = "ais";

/// The IPC socket's mode and group. Mode: `system { ipc_socket_mode }`,
/// else 0770, or 0777 when `uidgid` admits users or several groups (they
/// need not be in the socket's group; SO_PEERCRED decides). Group:
/// `system { ipc_socket_group }` (an error if it does not exist), else the
/// first `uidgid` group, else `ais` if it exists and this process may give
/// the socket to it, else none (a warning: the socket keeps the daemon's
/// group).
fn socket_access(config: &ClusterConfig, allow: &Allowed) -> Result<(u32, Option<u32>), Fatal> {
    let mode = config.system.ipc_socket_mode.unwrap_or(
        if !allow.uids.is_empty() || allow.gids.len() > 1 {
            0o777
        } else {
            0o770
        },
    );
    let group = match &config.system.ipc_socket_group {
        Some(p) => Some(group_id(config, p)?),
        None => match allow.gids.first() {
            Some(&gid) => Some(gid),
            None => default_socket_group(),
        },
    };
    Ok((mode, group))
}

/// `ais` when it exists and the socket may be given to it.
fn default_socket_group() -> Option<u32> {
    let Ok(Some(group)) = nix::unistd::Group::from_name(DEFAULT_SOCKET_GROUP) else {
        log::warn!(
            target: "IPC",
            "group `{DEFAULT_SOCKET_GROUP}` does not exist: the IPC socket keeps aisexec's own group \
             (create the group, or set system {{ ipc_socket_group }})"
        );
        return None;
    };
    let gid = group.gid;
    let ours = nix::unistd::geteuid().is_root()
        || nix::unistd::getegid() == gid
        || nix::unistd::getgroups().is_ok_and(|groups| groups.contains(&gid));
    if !ours {
        log::warn!(
            target: "IPC",
            "aisexec (uid {}) is not in group `{DEFAULT_SOCKET_GROUP}` and cannot give it the IPC socket; \
             the socket keeps aisexec's own group",
            nix::unistd::geteuid()
        );
        return None;
    }
    Some(gid.as_raw())
}

fn group_id(config: &ClusterConfig, p: &Principal) -> Result<u32, Fatal> {
    match p {
        Principal::Id(id) => Ok(*id),
        Principal::Name(name) => Ok(nix::unistd::Group::from_name(name)?
            .ok_or_else(|| {
                Fatal(format!(
                    "{}: ipc_socket_group: no group `{name}`",
                    config.file
                ))
            })?
            .gid
            .as_raw()),
    }
}

/// The uids and gids of the config's `uidgid`/`aisexec` sections.
#[derive(Debug, Default)]
struct Allowed {
    uids: Vec<u32>,
    gids: Vec<u32>,
}

fn allow_list(config: &ClusterConfig) -> Result<Allowed, Fatal> {
    let mut allowed = Allowed::default();
    for p in &config.ipc.uids {
        allowed.uids.push(match p {
            Principal::Id(id) => *id,
            Principal::Name(name) => nix::unistd::User::from_name(name)?
                .ok_or_else(|| Fatal(format!("{}: uidgid: no user `{name}`", config.file)))?
                .uid
                .as_raw(),
        });
    }
    for p in &config.ipc.gids {
        allowed.gids.push(match p {
            Principal::Id(id) => *id,
            Principal::Name(name) => nix::unistd::Group::from_name(name)?
                .ok_or_else(|| Fatal(format!("{}: uidgid: no group `{name}`", config.file)))?
                .gid
                .as_raw(),
        });
    }
    Ok(allowed)
}

/// The address book the status service shows: every node of the nodelist.
pub(crate) fn directory(config: &ClusterConfig) -> BTreeMap<NodeId, NodeInfo> {
    config
        .nodes
        .iter()
        .map(|n| {
            let info = NodeInfo {
                addr: config.node_addr(n).to_string(),
                name: n.name.clone().unwrap_or_default(),
            };
            (n.node_id, info)
        })
        .collect()
}
