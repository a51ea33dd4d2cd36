//! The typed cluster configuration read from a corosync.conf or openais.conf
//! (parse, don't validate: every value is turned into its type once, here).
//!
//! Sections and keys follow corosync 3's `corosync.conf(5)` and openais
//! 0.80's `openais.conf(5)`:
//! - `totem { }`: the protocol's settings ([`TotemSection`]), with
//!   `interface { }` subsections ([`InterfaceSection`]);
//! - `nodelist { node { } }`: the members ([`NodeEntry`]);
//! - `logging { logger_subsys { } }`: where logs go ([`LoggingConfig`]);
//! - `system { }`: run and state directories, real-time scheduling and
//!   memory locking ([`SystemSection`]);
//! - `aisexec { group }` (openais) and `uidgid { uid gid }` (corosync):
//!   who else may use the IPC socket ([`IpcAccess`]);
//! - `quorum`, `amf`, `service`, `resources`: known and not used; recorded
//!   in [`ClusterConfig::ignored_sections`] so the daemon can mention them
//!   at info level.
//!
//! Unknown keys and sections, and known keys this implementation does not
//! use (`threads`, `rrp_mode`, ...), are [`Warning`]s returned to the caller,
//! never printed here and never errors, so an existing corosync.conf starts a
//! cluster. A value that does not parse (a word where a number is needed,
//! zero where a positive number is, an unknown transport, a hostname where an
//! address literal is needed) is a [`ParseError`] with file, line and what
//! was expected.
//!
//! Deliberate deviations from corosync:
//! - no DNS: `ring0_addr` and `bindnetaddr` must be IP address literals;
//! - `nodeid` is required for every node (corosync derives it from the IPv4
//!   address when absent; on one host all nodes are 127.x, see DESIGN.md);
//! - `token_coefficient` is not applied: `token` is used as given, as in
//!   openais;
//! - a `port` key in `totem` is ours: it sets the UDP port like
//!   `interface { mcastport }` does (both must agree when both are given);
//! - `totem { accelerated_window }` is ours (Spread's `AcceleratedWindow`):
//!   0 (the default) is the standard Totem protocol; N > 0 runs the
//!   Accelerated Ring, where a token holder multicasts up to N of its new
//!   messages per visit after passing the token on (at most
//!   `max_messages`; see `totem::srp`); every node of a ring should use
//!   the same value, though mixed values still order correctly;
//! - `system { run_dir }`, `system { mlockall }` and
//!   `system { ckpt_memory_limit }` are ours; `sched_rr`
//!   defaults to off (corosync: on), since an unprivileged run cannot have
//!   it.
//!
//! As in corosync, `consensus` defaults to 1.2 x `token` and `hold` to the
//! token retransmit timeout x 0.8 - 10 ms when not given.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use proto::ServiceId;
use totem::{NodeId, TotemConfig, ValidConfig};

use super::syntax::{self, excerpt, Item, Pair, ParseError, Section};

/// The UDP port when neither `totem { port }` nor `interface { mcastport }`
/// is given (corosync's default).
pub const DEFAULT_PORT: u16 = 5405;

/// Largest timeout accepted for any totem duration key, in milliseconds (one
/// hour; corosync's own are seconds at most).
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;

/// Most nodes a nodelist may name: the largest ring the wire can describe.
pub const MAX_NODES: usize = totem::wire::MAX_MEMBERS;

/// Most warnings returned for one file; past it one last warning says how
/// many more were dropped (a file of garbage keys must not cost memory per
/// line twice over).
pub const MAX_WARNINGS: usize = 100;

/// Highest `ringnumber`/`linknumber` accepted (knet has 8 links).
pub const MAX_RING_NUMBER: u8 = 7;

/// Everything read from one config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The file name, for messages about the config after parsing.
    pub file: String,
    /// The `totem` section(s), merged in file order.
    pub totem: TotemSection,
    /// The `nodelist` nodes in file order; ids and addresses are unique.
    pub nodes: Vec<NodeEntry>,
    /// The `logging` section.
    pub logging: LoggingConfig,
    /// This node's id from `totem { nodeid }`, or `None` when the file does
    /// not say (the daemon then takes it from its command line).
    pub local_node_id: Option<NodeId>,
    /// The `system` section.
    pub system: SystemSection,
    /// Users and groups admitted to the IPC socket besides root and the
    /// daemon's own user.
    pub ipc: IpcAccess,
    /// Known sections that this implementation does not use.
    pub ignored_sections: Vec<IgnoredSection>,
}

/// The `system` section: how the daemon runs. `None` means not given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SystemSection {
    /// `run_dir` (ours): the directory of the IPC socket and of the state
    /// files (default `/run/ais`; the `AIS_RUN_DIR` environment variable
    /// and `--run-dir` override it).
    pub run_dir: Option<PathBuf>,
    /// `state_dir` (corosync): where the ring sequence number is persisted
    /// (default: the run directory).
    pub state_dir: Option<PathBuf>,
    /// `sched_rr`: run the event loop with SCHED_RR real-time priority so
    /// that load on the host does not delay the token (default off here).
    pub sched_rr: Option<bool>,
    /// `mlockall` (ours): lock the daemon's memory so that paging does not
    /// delay the token (default off).
    pub mlockall: Option<bool>,
    /// `disable` (ours): services not to load (`disable: ckpt backup`);
    /// their clients get SA_AIS_ERR_NOT_SUPPORTED.
    pub disabled: Vec<ServiceId>,
    /// `ckpt_memory_limit` (ours): the most bytes of checkpoint section
    /// data and ids this node holds (default: the CKPT engine's,
    /// `services::ckpt::DEFAULT_MEMORY_LIMIT_BYTES`). A change that would
    /// take the node past it fails here: an `SA_CKPT_WR_ALL_REPLICAS`
    /// write is then refused on every node (`SA_AIS_ERR_NO_MEMORY`). Read
    /// at start only.
    pub ckpt_memory_limit_bytes: Option<u64>,
    /// `ipc_socket_mode` (ours): the IPC socket's permission bits, in
    /// octal (default 0770, or 0777 when `uidgid` admits users or several
    /// groups: SO_PEERCRED decides then).
    pub ipc_socket_mode: Option<u32>,
    /// `ipc_socket_group` (ours): the IPC socket's group, a name or gid
    /// (default: the first `uidgid` group, else `ais` if it exists); its
    /// members are admitted.
    pub ipc_socket_group: Option<Principal>,
}

/// A user or group as written: a number, or a name the daemon looks up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A numeric uid or gid.
    Id(u32),
    /// A user or group name.
    Name(String),
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Id(id) => write!(f, "{id}"),
            Principal::Name(name) => f.write_str(name),
        }
    }
}

/// Who may use the IPC socket besides root and the daemon's own user:
/// `uidgid { uid: U gid: G }` sections (corosync, any number) and
/// `aisexec { group: G }` (openais).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpcAccess {
    /// Admitted users.
    pub uids: Vec<Principal>,
    /// Admitted groups (the client's effective gid).
    pub gids: Vec<Principal>,
}

/// The `totem` section as written: `None` means the key was not given
/// (the defaults are applied by [`ClusterConfig::totem_config`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotemSection {
    /// `version`: only 2 is accepted, as in openais and corosync.
    pub version: Option<u32>,
    /// `cluster_name`.
    pub cluster_name: Option<String>,
    /// `token`: token loss timeout (default 1000).
    pub token_ms: Option<u64>,
    /// `token_retransmits_before_loss_const` (default 4).
    pub token_retransmits_before_loss_const: Option<u32>,
    /// `join` (default 50).
    pub join_ms: Option<u64>,
    /// `consensus` (default 1.2 x token).
    pub consensus_ms: Option<u64>,
    /// `merge` (default 200).
    pub merge_ms: Option<u64>,
    /// `downcheck`: interface-down recheck (default 1000; not used by the
    /// protocol, kept for the daemon).
    pub downcheck_ms: Option<u64>,
    /// `fail_recv_const` (default 2500).
    pub fail_recv_const: Option<u32>,
    /// `seqno_unchanged_const` (default 30).
    pub seqno_unchanged_const: Option<u32>,
    /// `hold` (default derived from token, 180 for the default token); may
    /// be 0.
    pub hold_ms: Option<u64>,
    /// `window_size` (default 50).
    pub window_size: Option<u32>,
    /// `max_messages` (default 17).
    pub max_messages: Option<u32>,
    /// `accelerated_window` (ours; default 0, the standard protocol):
    /// messages per token visit multicast after the token is passed on.
    pub accelerated_window: Option<u32>,
    /// `netmtu` (default 1500; [`LOOPBACK_NETMTU_BYTES`] when every node is
    /// on a loopback address).
    pub netmtu_bytes: Option<u32>,
    /// `secauth` (openais's default when absent is on).
    pub secauth: Option<bool>,
    /// `crypto_cipher`.
    pub crypto_cipher: Option<CryptoCipher>,
    /// `crypto_hash`.
    pub crypto_hash: Option<CryptoHash>,
    /// `keyfile`: the shared key (default decided by the daemon).
    pub keyfile: Option<PathBuf>,
    /// `transport`: which corosync transport the file asked for.
    pub transport: Option<Transport>,
    /// `ip_version`.
    pub ip_version: Option<IpVersion>,
    /// `nodeid`: this node's id.
    pub node_id: Option<NodeId>,
    /// `interface { }` subsections in file order; ring numbers are unique.
    pub interfaces: Vec<InterfaceSection>,
    /// The UDP port: `port`, else ring 0's `mcastport`, else
    /// [`DEFAULT_PORT`].
    pub port: u16,
    /// Line of each key given, for messages naming it.
    key_lines: BTreeMap<&'static str, u32>,
}

/// An `interface { }` subsection of `totem`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceSection {
    /// Line of `interface {`.
    pub line: u32,
    /// `ringnumber` (or knet's `linknumber`), 0 when absent.
    pub ring_number: u8,
    /// `bindnetaddr`: the address (or network) to bind.
    pub bindnetaddr: Option<IpAddr>,
    /// `mcastaddr`: the multicast group (udp transport).
    pub mcastaddr: Option<IpAddr>,
    /// `mcastport`: the UDP port.
    pub mcastport: Option<u16>,
    /// `ttl`: multicast TTL.
    pub ttl: Option<u8>,
}

/// `totem { transport }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `udp`: multicast (openais's only transport).
    Udp,
    /// `udpu`: UDP unicast to every node of the nodelist.
    Udpu,
    /// `knet`: kronosnet (corosync 3's default).
    Knet,
}

/// `totem { ip_version }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpVersion {
    /// `ipv4`.
    Ipv4,
    /// `ipv6`.
    Ipv6,
    /// `ipv4-6`: IPv4 preferred, IPv6 accepted.
    Ipv4Then6,
    /// `ipv6-4`: IPv6 preferred, IPv4 accepted.
    Ipv6Then4,
}

/// `totem { crypto_cipher }` (corosync 3's values, and ours); what each
/// means is decided in `ring_crypto::settings`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CryptoCipher {
    /// `none`.
    None,
    /// `chacha20poly1305` (ours): XChaCha20-Poly1305.
    ChaCha20Poly1305,
    /// `aes128`.
    Aes128,
    /// `aes192`.
    Aes192,
    /// `aes256`.
    Aes256,
}

/// `totem { crypto_hash }` (corosync 3's values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CryptoHash {
    /// `none`.
    None,
    /// `md5`.
    Md5,
    /// `sha1`.
    Sha1,
    /// `sha256`.
    Sha256,
    /// `sha384`.
    Sha384,
    /// `sha512`.
    Sha512,
}

/// A `nodelist { node { } }` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEntry {
    /// `nodeid`: required, nonzero, unique in the list.
    pub node_id: NodeId,
    /// `ring0_addr`: an IP address literal, unique in the list.
    pub ring0_addr: IpAddr,
    /// `name`.
    pub name: Option<String>,
    /// Line of `node {`.
    pub line: u32,
}

/// The `logging` section, with corosync's defaults for what is not given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggingConfig {
    /// `to_stderr` (default yes).
    pub to_stderr: bool,
    /// `to_logfile`, or openais's `to_file` (default no); when yes,
    /// `logfile` is set.
    pub to_logfile: bool,
    /// `logfile`.
    pub logfile: Option<PathBuf>,
    /// `to_syslog` (default yes).
    pub to_syslog: bool,
    /// `debug` (default off).
    pub debug: DebugLevel,
    /// `timestamp` (default off; corosync's `hires` counts as on).
    pub timestamp: bool,
    /// `logger_subsys { }` (or openais's `logger { }`) subsections.
    pub subsystems: Vec<LoggerSubsys>,
}

/// `logging { debug }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DebugLevel {
    /// `off` (or any false boolean).
    Off,
    /// `on` (or any true boolean).
    On,
    /// `trace`: even more than on.
    Trace,
}

/// A `logger_subsys { }` subsection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggerSubsys {
    /// `subsys` (or openais's `ident`): required.
    pub subsys: String,
    /// `debug` for this subsystem, if given.
    pub debug: Option<DebugLevel>,
    /// Line of the subsection's opening.
    pub line: u32,
}

/// A known section this implementation does not use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoredSection {
    /// Its name (`amf`, `quorum`, ...).
    pub name: String,
    /// Line of its opening.
    pub line: u32,
}

/// Something in the file that was ignored: an unknown or unused key or
/// section, or a key given twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The file name.
    pub file: String,
    /// 1-based line number.
    pub line: u32,
    /// What was ignored and why.
    pub message: String,
}

/// Why [`load`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path as given.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is malformed or a value does not parse.
    #[error(transparent)]
    Invalid(#[from] ParseError),
}

/// Why [`ClusterConfig::totem_config`] refused the totem settings: they
/// parsed, but do not fit together (for example `consensus` under 1.2 x
/// `token`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: totem key `{key}`: {source}", at(file, *line))]
pub struct TotemSettingError {
    /// The file name.
    pub file: String,
    /// Line of the key blamed, `None` when it was not given (its default or
    /// derived value is at fault).
    pub line: Option<u32>,
    /// The corosync key blamed.
    pub key: &'static str,
    /// What the protocol refused.
    pub source: totem::ConfigError,
}

/// `FILE:LINE`, or `FILE` alone.
fn at(file: &str, line: Option<u32>) -> String {
    match line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_owned(),
    }
}

/// Reads and parses the config file at `path`.
///
/// # Errors
/// [`ConfigError::Io`] naming the path when it cannot be read;
/// [`ConfigError::Invalid`] with file:line when it is malformed, over
/// [`syntax::MAX_FILE_BYTES`], or a value does not parse.
pub fn load(path: &Path) -> Result<(ClusterConfig, Vec<Warning>), ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    // One byte over the limit is enough for the parser to refuse the file;
    // never read an unbounded file into memory.
    let limit = u64::try_from(syntax::MAX_FILE_BYTES + 1).unwrap_or(u64::MAX);
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes).map_err(io)?;
    Ok(ClusterConfig::parse(&path.display().to_string(), &bytes)?)
}

impl ClusterConfig {
    /// Parses `bytes`, the contents of `file`.
    ///
    /// # Errors
    /// The first [`ParseError`]: malformed syntax (see [`syntax::parse`]) or
    /// a value that does not parse, a node without `nodeid` or `ring0_addr`,
    /// a duplicate node id or address (at the second one), conflicting
    /// ports, `to_logfile: yes` without `logfile`.
    pub fn parse(file: &str, bytes: &[u8]) -> Result<(ClusterConfig, Vec<Warning>), ParseError> {
        let doc = syntax::parse(file, bytes)?;
        let mut reader = Reader {
            file,
            warnings: Vec::new(),
            dropped_warnings: 0,
        };
        let config = reader.document(&doc.items)?;
        let mut warnings = reader.warnings;
        if reader.dropped_warnings > 0 {
            let line = warnings.last().map_or(1, |w| w.line);
            warnings.push(Warning {
                file: file.to_owned(),
                line,
                message: format!("{} more warnings not shown", reader.dropped_warnings),
            });
        }
        Ok((config, warnings))
    }

    /// The UDP address of `node`: its `ring0_addr` at the cluster's port.
    pub fn node_addr(&self, node: &NodeEntry) -> SocketAddr {
        SocketAddr::new(node.ring0_addr, self.totem.port)
    }

    /// The nodelist entry for `id`, if any.
    pub fn node(&self, id: NodeId) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.node_id == id)
    }

    /// The protocol's settings for local node `node_id`: openais's defaults
    /// for every key not given, consensus 1.2 x token when not given (as
    /// corosync), hold derived from token when not given, then validated.
    ///
    /// # Errors
    /// [`TotemSettingError`] naming the key (and its line, when given) that
    /// [`TotemConfig::validate`] refused.
    pub fn totem_config(&self, node_id: NodeId) -> Result<ValidConfig, TotemSettingError> {
        let t = &self.totem;
        let mut c = TotemConfig::new(node_id);
        if let Some(ms) = t.token_ms {
            c = c.with_token_timeout(Duration::from_millis(ms));
        }
        if let Some(n) = t.token_retransmits_before_loss_const {
            c.token_retransmits_before_loss = n;
        }
        if let Some(ms) = t.join_ms {
            c.join_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = t.consensus_ms {
            c.consensus_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = t.merge_ms {
            c.merge_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = t.fail_recv_const {
            c.fail_recv_const = n;
        }
        if let Some(n) = t.seqno_unchanged_const {
            c.seqno_unchanged_const = n;
        }
        c.token_hold = Duration::from_millis(match t.hold_ms {
            Some(ms) => ms,
            None => derived_hold_ms(
                u64::try_from(c.token_timeout.as_millis()).unwrap_or(u64::MAX),
                c.token_retransmits_before_loss,
            ),
        });
        if let Some(n) = t.window_size {
            c.window_size = n;
        }
        if let Some(n) = t.max_messages {
            c.max_messages = n;
        }
        if let Some(n) = t.accelerated_window {
            c.accelerated_window = n;
        }
        if let Some(n) = t.netmtu_bytes {
            c.netmtu_bytes = usize::try_from(n).unwrap_or(usize::MAX);
        } else if !self.nodes.is_empty() && self.nodes.iter().all(|n| n.ring0_addr.is_loopback()) {
            // Every datagram stays on the loopback interface (MTU 65536):
            // its path MTU, as knet's PMTU discovery finds it, instead of
            // a LAN's 1500. A 65000-byte message is then 1 datagram, not 47.
            c.netmtu_bytes = LOOPBACK_NETMTU_BYTES;
        }
        // netmtu is the datagram on the wire: with secauth the seal takes
        // its overhead, so Totem's packets are that much smaller.
        c.netmtu_bytes = c
            .netmtu_bytes
            .saturating_sub(crate::ring_crypto::settings::overhead_bytes(self));
        c.validate().map_err(|source| {
            let given = |key: &'static str| t.line_of(key).map(|_| key);
            let key = match &source {
                totem::ConfigError::Zero(key) => key,
                totem::ConfigError::ConsensusTooShort { .. } => {
                    given("consensus").unwrap_or("token")
                }
                totem::ConfigError::JoinTooLong { .. } => given("join")
                    .or_else(|| given("consensus"))
                    .unwrap_or("token"),
                totem::ConfigError::MaxMessagesOverWindow { .. } => {
                    given("max_messages").unwrap_or("window_size")
                }
                totem::ConfigError::AcceleratedOverMaxMessages { .. } => {
                    given("accelerated_window").unwrap_or("max_messages")
                }
                totem::ConfigError::NetMtu(_) => "netmtu",
            };
            TotemSettingError {
                file: self.file.clone(),
                line: t.line_of(key),
                key,
                source,
            }
        })
    }
}

/// `netmtu` when not given and every node is on a loopback address: the
/// largest IP packet, which the loopback interface (MTU 65536) carries
/// whole. At 65000 a 65000-byte message took two datagrams, the second
/// almost empty, each sealed, sent and woken for.
pub const LOOPBACK_NETMTU_BYTES: usize = totem::MAX_NETMTU_BYTES;

/// corosync's hold when not given (`totemconfig.c`): token retransmit
/// timeout (token / (retransmits + 0.2)) x 0.8 - 10 ms, in whole ms.
fn derived_hold_ms(token_ms: u64, retransmits: u32) -> u64 {
    let retransmit_ms = token_ms.saturating_mul(5) / (u64::from(retransmits) * 5 + 1);
    (retransmit_ms * 4 / 5).saturating_sub(10)
}

impl TotemSection {
    /// The line where `key` (a corosync totem key name) was last given.
    pub fn line_of(&self, key: &str) -> Option<u32> {
        self.key_lines.get(key).copied()
    }
}

impl Default for TotemSection {
    /// Nothing given: every key `None`, no interfaces, [`DEFAULT_PORT`].
    fn default() -> Self {
        TotemSection {
            version: None,
            cluster_name: None,
            token_ms: None,
            token_retransmits_before_loss_const: None,
            join_ms: None,
            consensus_ms: None,
            merge_ms: None,
            downcheck_ms: None,
            fail_recv_const: None,
            seqno_unchanged_const: None,
            hold_ms: None,
            window_size: None,
            max_messages: None,
            accelerated_window: None,
            netmtu_bytes: None,
            secauth: None,
            crypto_cipher: None,
            crypto_hash: None,
            keyfile: None,
            transport: None,
            ip_version: None,
            node_id: None,
            interfaces: Vec::new(),
            port: DEFAULT_PORT,
            key_lines: BTreeMap::new(),
        }
    }
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            to_stderr: true,
            to_logfile: false,
            logfile: None,
            to_syslog: true,
            debug: DebugLevel::Off,
            timestamp: false,
            subsystems: Vec::new(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Top-level sections known and not used.
const IGNORED_SECTIONS: &[&str] = &["quorum", "amf", "service", "resources"];

/// `system` keys this implementation reads.
const SYSTEM_KEYS: &[&str] = &[
    "run_dir",
    "state_dir",
    "sched_rr",
    "mlockall",
    "disable",
    "ckpt_memory_limit",
    "ipc_socket_mode",
    "ipc_socket_group",
];

/// `system` keys of corosync that this implementation ignores.
const SYSTEM_UNUSED_KEYS: &[&str] = &[
    "priority",
    "qb_ipc_type",
    "move_to_root_cgroup",
    "allow_knet_handle_fallback",
];

/// Most users plus groups the `uidgid` and `aisexec` sections may admit.
pub const MAX_IPC_PRINCIPALS: usize = 256;

/// Totem keys this implementation reads.
const TOTEM_KEYS: &[&str] = &[
    "version",
    "cluster_name",
    "token",
    "token_retransmits_before_loss_const",
    "join",
    "consensus",
    "merge",
    "downcheck",
    "fail_recv_const",
    "seqno_unchanged_const",
    "hold",
    "window_size",
    "max_messages",
    "accelerated_window",
    "netmtu",
    "secauth",
    "crypto_cipher",
    "crypto_hash",
    "keyfile",
    "transport",
    "ip_version",
    "nodeid",
    "port",
];

/// Totem keys of openais or corosync that this implementation ignores.
const TOTEM_UNUSED_KEYS: &[&str] = &[
    "threads",
    "rrp_mode",
    "token_retransmit",
    "token_coefficient",
    "token_warning",
    "send_join",
    "max_network_delay",
    "heartbeat_failures_allowed",
    "vsftype",
    "clear_node_high_bit",
    "miss_count_const",
    "rrp_problem_count_timeout",
    "rrp_problem_count_threshold",
    "rrp_problem_count_mcast_threshold",
    "rrp_token_expired_timeout",
    "rrp_autorecovery_check_timeout",
    "config_version",
    "crypto_model",
    "crypto_type",
    "crypto_accept",
    "link_mode",
    "knet_pmtud_interval",
    "knet_mtu",
    "knet_compression_model",
    "knet_compression_threshold",
    "knet_compression_level",
    "block_unlisted_ips",
    "cancel_token_hold_on_retransmit",
];

const INTERFACE_KEYS: &[&str] = &[
    "ringnumber",
    "linknumber",
    "bindnetaddr",
    "mcastaddr",
    "mcastport",
    "ttl",
];

const INTERFACE_UNUSED_KEYS: &[&str] = &[
    "broadcast",
    "knet_link_priority",
    "knet_ping_interval",
    "knet_ping_timeout",
    "knet_ping_precision",
    "knet_pong_count",
    "knet_transport",
];

const NODE_KEYS: &[&str] = &["ring0_addr", "nodeid", "name"];

const LOGGING_KEYS: &[&str] = &[
    "to_stderr",
    "to_logfile",
    "to_file",
    "logfile",
    "to_syslog",
    "debug",
    "timestamp",
];

const LOGGING_UNUSED_KEYS: &[&str] = &[
    "fileline",
    "function_name",
    "syslog_facility",
    "syslog_priority",
    "syslog_level",
    "logfile_priority",
    "blackbox",
    "tags",
    "logger_subsys",
];

const SUBSYS_KEYS: &[&str] = &["subsys", "ident", "debug"];

/// The file name and the warnings gathered while turning a syntax tree into
/// a [`ClusterConfig`].
struct Reader<'a> {
    file: &'a str,
    /// At most [`MAX_WARNINGS`].
    warnings: Vec<Warning>,
    /// Warnings past [`MAX_WARNINGS`], only counted.
    dropped_warnings: usize,
}

impl Reader<'_> {
    fn document(&mut self, items: &[Item]) -> Result<ClusterConfig, ParseError> {
        let mut config = ClusterConfig {
            file: self.file.to_owned(),
            totem: TotemSection::default(),
            nodes: Vec::new(),
            logging: LoggingConfig::default(),
            local_node_id: None,
            system: SystemSection::default(),
            ipc: IpcAccess::default(),
            ignored_sections: Vec::new(),
        };
        let mut logging_line = None;
        for item in items {
            match item {
                Item::Pair(p) if p.key == "compatibility" => self.unused_key("top level", p),
                Item::Pair(p) => self.unknown_key("top level", p, &["compatibility"]),
                Item::Section(s) => match s.name.as_str() {
                    "totem" => self.totem(s, &mut config.totem)?,
                    "nodelist" => self.nodelist(s, &mut config.nodes)?,
                    "logging" => {
                        if let Some(first) = logging_line {
                            self.warn(
                                s.line,
                                format!("second `logging` section (first on line {first}); its keys override"),
                            );
                        }
                        logging_line = Some(s.line);
                        self.logging(s, &mut config.logging)?;
                    }
                    "system" => self.system(s, &mut config.system)?,
                    "uidgid" | "aisexec" => self.ipc_access(s, &mut config.ipc)?,
                    name if IGNORED_SECTIONS.contains(&name) => {
                        config.ignored_sections.push(IgnoredSection {
                            name: name.to_owned(),
                            line: s.line,
                        });
                    }
                    _ => self.unknown_section("top level", s),
                },
            }
        }
        self.resolve_port(&mut config.totem)?;
        config.local_node_id = config.totem.node_id;
        if let (Some(id), false) = (config.local_node_id, config.nodes.is_empty()) {
            if config.node(id).is_none() {
                let line = config.totem.line_of("nodeid").unwrap_or(1);
                self.warn(line, format!("totem nodeid {id} is not in the nodelist"));
            }
        }
        Ok(config)
    }

    fn totem(&mut self, s: &Section, t: &mut TotemSection) -> Result<(), ParseError> {
        let mut seen = BTreeMap::new();
        for item in &s.items {
            match item {
                Item::Section(sub) if sub.name == "interface" => {
                    let iface = self.interface(sub)?;
                    if let Some(other) = t
                        .interfaces
                        .iter()
                        .find(|i| i.ring_number == iface.ring_number)
                    {
                        return Err(self.error(
                            sub.line,
                            format!(
                                "a ringnumber not used before, found {} again (interface on line {})",
                                iface.ring_number, other.line
                            ),
                        ));
                    }
                    t.interfaces.push(iface);
                }
                Item::Section(sub) => self.unknown_section("totem", sub),
                Item::Pair(p) => {
                    self.repeated(&mut seen, "totem", p);
                    self.totem_key(p, t)?;
                }
            }
        }
        Ok(())
    }

    fn totem_key(&mut self, p: &Pair, t: &mut TotemSection) -> Result<(), ParseError> {
        let key: &'static str = match p.key.as_str() {
            "version" => {
                let v = self.number(p, 0, u64::from(u32::MAX), "a version number")?;
                if v != 2 {
                    return Err(self.error(p.line, format!("`version: 2`, found `{v}`")));
                }
                t.version = Some(2);
                "version"
            }
            "cluster_name" => {
                t.cluster_name = Some(self.text(p)?);
                "cluster_name"
            }
            "token" => {
                t.token_ms = Some(self.millis(p)?);
                "token"
            }
            "token_retransmits_before_loss_const" => {
                t.token_retransmits_before_loss_const = Some(self.count(p, 1)?);
                "token_retransmits_before_loss_const"
            }
            "join" => {
                t.join_ms = Some(self.millis(p)?);
                "join"
            }
            "consensus" => {
                t.consensus_ms = Some(self.millis(p)?);
                "consensus"
            }
            "merge" => {
                t.merge_ms = Some(self.millis(p)?);
                "merge"
            }
            "downcheck" => {
                t.downcheck_ms = Some(self.millis(p)?);
                "downcheck"
            }
            "fail_recv_const" => {
                t.fail_recv_const = Some(self.count(p, 1)?);
                "fail_recv_const"
            }
            "seqno_unchanged_const" => {
                t.seqno_unchanged_const = Some(self.count(p, 1)?);
                "seqno_unchanged_const"
            }
            "hold" => {
                t.hold_ms = Some(self.number(p, 0, MAX_TIMEOUT_MS, "a number of milliseconds")?);
                "hold"
            }
            "window_size" => {
                t.window_size = Some(self.count(p, 1)?);
                "window_size"
            }
            "max_messages" => {
                t.max_messages = Some(self.count(p, 1)?);
                "max_messages"
            }
            "accelerated_window" => {
                t.accelerated_window = Some(self.count(p, 0)?);
                "accelerated_window"
            }
            "netmtu" => {
                let n = self.number(p, 1, 65_535, "a datagram size in bytes")?;
                t.netmtu_bytes = Some(u32::try_from(n).unwrap_or(u32::MAX));
                "netmtu"
            }
            "secauth" => {
                t.secauth = Some(self.boolean(p)?);
                "secauth"
            }
            "crypto_cipher" => {
                t.crypto_cipher = Some(self.choice(
                    p,
                    &[
                        ("none", CryptoCipher::None),
                        ("chacha20poly1305", CryptoCipher::ChaCha20Poly1305),
                        ("aes128", CryptoCipher::Aes128),
                        ("aes192", CryptoCipher::Aes192),
                        ("aes256", CryptoCipher::Aes256),
                    ],
                )?);
                "crypto_cipher"
            }
            "crypto_hash" => {
                t.crypto_hash = Some(self.choice(
                    p,
                    &[
                        ("none", CryptoHash::None),
                        ("md5", CryptoHash::Md5),
                        ("sha1", CryptoHash::Sha1),
                        ("sha256", CryptoHash::Sha256),
                        ("sha384", CryptoHash::Sha384),
                        ("sha512", CryptoHash::Sha512),
                    ],
                )?);
                "crypto_hash"
            }
            "keyfile" => {
                t.keyfile = Some(PathBuf::from(self.text(p)?));
                "keyfile"
            }
            "transport" => {
                t.transport = Some(self.choice(
                    p,
                    &[
                        ("udp", Transport::Udp),
                        ("udpu", Transport::Udpu),
                        ("knet", Transport::Knet),
                    ],
                )?);
                "transport"
            }
            "ip_version" => {
                t.ip_version = Some(self.choice(
                    p,
                    &[
                        ("ipv4", IpVersion::Ipv4),
                        ("ipv6", IpVersion::Ipv6),
                        ("ipv4-6", IpVersion::Ipv4Then6),
                        ("ipv6-4", IpVersion::Ipv6Then4),
                    ],
                )?);
                "ip_version"
            }
            "nodeid" => {
                t.node_id = Some(self.node_id(p)?);
                "nodeid"
            }
            "port" => {
                t.port = self.port(p)?;
                "port"
            }
            key if TOTEM_UNUSED_KEYS.contains(&key) => {
                self.unused_key("totem", p);
                return Ok(());
            }
            _ => {
                self.unknown_key("totem", p, &[TOTEM_KEYS, TOTEM_UNUSED_KEYS].concat());
                return Ok(());
            }
        };
        t.key_lines.insert(key, p.line);
        Ok(())
    }

    fn interface(&mut self, s: &Section) -> Result<InterfaceSection, ParseError> {
        let mut iface = InterfaceSection {
            line: s.line,
            ring_number: 0,
            bindnetaddr: None,
            mcastaddr: None,
            mcastport: None,
            ttl: None,
        };
        self.each_pair(s, "interface", |this, p| {
            match p.key.as_str() {
                "ringnumber" | "linknumber" => {
                    let n = this.number(p, 0, u64::from(MAX_RING_NUMBER), "a ring number")?;
                    iface.ring_number = u8::try_from(n).unwrap_or(u8::MAX);
                }
                "bindnetaddr" => iface.bindnetaddr = Some(this.ip_addr(p)?),
                "mcastaddr" => iface.mcastaddr = Some(this.ip_addr(p)?),
                "mcastport" => iface.mcastport = Some(this.port(p)?),
                "ttl" => {
                    let n = this.number(p, 1, 255, "a multicast TTL")?;
                    iface.ttl = Some(u8::try_from(n).unwrap_or(u8::MAX));
                }
                key if INTERFACE_UNUSED_KEYS.contains(&key) => this.unused_key("interface", p),
                _ => this.unknown_key(
                    "interface",
                    p,
                    &[INTERFACE_KEYS, INTERFACE_UNUSED_KEYS].concat(),
                ),
            }
            Ok(())
        })?;
        Ok(iface)
    }

    /// Sets `t.port` from `port` or ring 0's `mcastport`; warns about rings
    /// other than 0, which are not used.
    fn resolve_port(&mut self, t: &mut TotemSection) -> Result<(), ParseError> {
        for iface in t.interfaces.iter().filter(|i| i.ring_number != 0) {
            self.warn(
                iface.line,
                format!(
                    "interface for ring {} ignored: only ring 0 is used",
                    iface.ring_number
                ),
            );
        }
        let ring0 = t.interfaces.iter().find(|i| i.ring_number == 0);
        let mcastport = ring0.and_then(|i| i.mcastport.map(|port| (port, i.line)));
        let port = t.line_of("port").map(|_| t.port);
        t.port = match (port, mcastport) {
            (Some(port), Some((mcast, line))) if port != mcast => {
                return Err(self.error(
                    t.line_of("port").unwrap_or(line),
                    format!(
                        "`port` to equal the mcastport of the ring 0 interface on line {line} ({mcast}), found {port}"
                    ),
                ));
            }
            (Some(port), _) | (None, Some((port, _))) => port,
            (None, None) => DEFAULT_PORT,
        };
        Ok(())
    }

    fn nodelist(&mut self, s: &Section, nodes: &mut Vec<NodeEntry>) -> Result<(), ParseError> {
        for item in &s.items {
            match item {
                Item::Section(sub) if sub.name == "node" => {
                    let (node, id_line, addr_line) = self.node(sub)?;
                    if let Some(other) = nodes.iter().find(|n| n.node_id == node.node_id) {
                        return Err(self.error(
                            id_line,
                            format!(
                                "a unique nodeid, found {} again (node on line {})",
                                node.node_id, other.line
                            ),
                        ));
                    }
                    if let Some(other) = nodes.iter().find(|n| n.ring0_addr == node.ring0_addr) {
                        return Err(self.error(
                            addr_line,
                            format!(
                                "a unique ring0_addr (all nodes share one port), found {} again (node on line {})",
                                node.ring0_addr, other.line
                            ),
                        ));
                    }
                    if nodes.len() >= MAX_NODES {
                        return Err(self.error(
                            sub.line,
                            format!("at most {MAX_NODES} nodes in the nodelist"),
                        ));
                    }
                    nodes.push(node);
                }
                Item::Section(sub) => self.unknown_section("nodelist", sub),
                Item::Pair(p) => self.unknown_key("nodelist", p, &[]),
            }
        }
        Ok(())
    }

    /// One `node { }`, with the lines of its `nodeid` and `ring0_addr` for
    /// the caller's uniqueness checks.
    fn node(&mut self, s: &Section) -> Result<(NodeEntry, u32, u32), ParseError> {
        let mut node_id: Option<(NodeId, u32)> = None;
        let mut addr: Option<(IpAddr, u32)> = None;
        let mut name = None;
        self.each_pair(s, "node", |this, p| {
            match p.key.as_str() {
                "nodeid" => node_id = Some((this.node_id(p)?, p.line)),
                "ring0_addr" => addr = Some((this.ip_addr(p)?, p.line)),
                "name" => name = Some(this.text(p)?),
                key if is_other_ring_addr(key) => this.unused_key("node", p),
                _ => this.unknown_key("node", p, NODE_KEYS),
            }
            Ok(())
        })?;
        let Some((node_id, id_line)) = node_id else {
            return Err(self.error(s.line, "a `nodeid` key in this node section".to_owned()));
        };
        let Some((ring0_addr, addr_line)) = addr else {
            return Err(self.error(s.line, "a `ring0_addr` key in this node section".to_owned()));
        };
        let node = NodeEntry {
            node_id,
            ring0_addr,
            name,
            line: s.line,
        };
        Ok((node, id_line, addr_line))
    }

    fn logging(&mut self, s: &Section, log: &mut LoggingConfig) -> Result<(), ParseError> {
        let mut to_logfile_line = None;
        let mut seen = BTreeMap::new();
        for item in &s.items {
            let p = match item {
                Item::Pair(p) => p,
                Item::Section(sub) if sub.name == "logger_subsys" || sub.name == "logger" => {
                    log.subsystems.push(self.logger_subsys(sub)?);
                    continue;
                }
                Item::Section(sub) => {
                    self.unknown_section("logging", sub);
                    continue;
                }
            };
            self.repeated(&mut seen, "logging", p);
            match p.key.as_str() {
                "to_stderr" => log.to_stderr = self.boolean(p)?,
                "to_logfile" | "to_file" => {
                    log.to_logfile = self.boolean(p)?;
                    to_logfile_line = Some(p.line);
                }
                "logfile" => log.logfile = Some(PathBuf::from(self.text(p)?)),
                "to_syslog" => log.to_syslog = self.boolean(p)?,
                "debug" => log.debug = self.debug_level(p)?,
                "timestamp" => {
                    log.timestamp = p.value.eq_ignore_ascii_case("hires") || self.boolean(p)?;
                }
                key if LOGGING_UNUSED_KEYS.contains(&key) => self.unused_key("logging", p),
                _ => self.unknown_key("logging", p, &[LOGGING_KEYS, LOGGING_UNUSED_KEYS].concat()),
            }
        }
        if let (Some(line), true, None) = (to_logfile_line, log.to_logfile, &log.logfile) {
            return Err(self.error(
                line,
                "a `logfile` key in the logging section when to_logfile is yes".to_owned(),
            ));
        }
        Ok(())
    }

    fn system(&mut self, s: &Section, sys: &mut SystemSection) -> Result<(), ParseError> {
        self.each_pair(s, "system", |this, p| {
            match p.key.as_str() {
                "run_dir" => sys.run_dir = Some(PathBuf::from(this.text(p)?)),
                "state_dir" => sys.state_dir = Some(PathBuf::from(this.text(p)?)),
                "sched_rr" => sys.sched_rr = Some(this.boolean(p)?),
                "mlockall" => sys.mlockall = Some(this.boolean(p)?),
                "disable" => sys.disabled = this.services(p)?,
                "ckpt_memory_limit" => {
                    sys.ckpt_memory_limit_bytes =
                        Some(this.number(p, 1, u64::MAX, "a number of bytes")?);
                }
                "ipc_socket_mode" => sys.ipc_socket_mode = Some(this.octal_mode(p)?),
                "ipc_socket_group" => sys.ipc_socket_group = Some(principal(&this.text(p)?)),
                key if SYSTEM_UNUSED_KEYS.contains(&key) => this.unused_key("system", p),
                _ => this.unknown_key("system", p, &[SYSTEM_KEYS, SYSTEM_UNUSED_KEYS].concat()),
            }
            Ok(())
        })
    }

    /// A list of service names (`clm evs ckpt backup`, blanks or commas
    /// between them).
    fn services(&mut self, p: &Pair) -> Result<Vec<ServiceId>, ParseError> {
        let mut out = Vec::new();
        for word in p.value.split(|c: char| c == ',' || c.is_whitespace()) {
            if word.is_empty() {
                continue;
            }
            let service = ServiceId::ALL
                .into_iter()
                .find(|s| s.name().eq_ignore_ascii_case(word) && *s != ServiceId::Cfg)
                .ok_or_else(|| {
                    self.error(
                        p.line,
                        format!(
                            "a service name (clm, evs, ckpt or backup) in `disable`, not `{word}`"
                        ),
                    )
                })?;
            if !out.contains(&service) {
                out.push(service);
            }
        }
        Ok(out)
    }

    /// `uidgid { uid gid }` or `aisexec { user group }`: `user` of openais
    /// is the user to run as, which we do not switch to.
    fn ipc_access(&mut self, s: &Section, ipc: &mut IpcAccess) -> Result<(), ParseError> {
        let keys: &[&str] = if s.name == "aisexec" {
            &["group"]
        } else {
            &["uid", "gid"]
        };
        for item in &s.items {
            let p = match item {
                Item::Pair(p) => p,
                Item::Section(sub) => {
                    self.unknown_section(&s.name, sub);
                    continue;
                }
            };
            let is_uid = match p.key.as_str() {
                "uid" if s.name == "uidgid" => true,
                "gid" | "group" if keys.contains(&p.key.as_str()) => false,
                "user" if s.name == "aisexec" => {
                    self.unused_key(&s.name, p);
                    continue;
                }
                _ => {
                    self.unknown_key(&s.name, p, keys);
                    continue;
                }
            };
            let principal = principal(&self.text(p)?);
            if ipc.uids.len() + ipc.gids.len() >= MAX_IPC_PRINCIPALS {
                return Err(self.error(
                    p.line,
                    format!("at most {MAX_IPC_PRINCIPALS} users and groups in uidgid sections"),
                ));
            }
            let list = if is_uid { &mut ipc.uids } else { &mut ipc.gids };
            if !list.contains(&principal) {
                list.push(principal);
            }
        }
        Ok(())
    }

    fn logger_subsys(&mut self, s: &Section) -> Result<LoggerSubsys, ParseError> {
        let mut subsys = None;
        let mut debug = None;
        self.each_pair(s, &s.name, |this, p| {
            match p.key.as_str() {
                "subsys" | "ident" => subsys = Some(this.text(p)?),
                "debug" => debug = Some(this.debug_level(p)?),
                key if LOGGING_KEYS.contains(&key) || LOGGING_UNUSED_KEYS.contains(&key) => {
                    this.unused_key(&s.name, p);
                }
                _ => this.unknown_key(&s.name, p, SUBSYS_KEYS),
            }
            Ok(())
        })?;
        let Some(subsys) = subsys else {
            return Err(self.error(s.line, format!("a `subsys` key in this {} section", s.name)));
        };
        Ok(LoggerSubsys {
            subsys,
            debug,
            line: s.line,
        })
    }

    /// Runs `key` on each key of `s` in order, after warning if it was
    /// given before; subsections of `s` are warned about and skipped.
    fn each_pair(
        &mut self,
        s: &Section,
        section: &str,
        mut key: impl FnMut(&mut Self, &Pair) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        let mut seen = BTreeMap::new();
        for item in &s.items {
            match item {
                Item::Pair(p) => {
                    self.repeated(&mut seen, section, p);
                    key(self, p)?;
                }
                Item::Section(sub) => self.unknown_section(section, sub),
            }
        }
        Ok(())
    }

    // ---- messages ----

    fn error(&self, line: u32, expected: String) -> ParseError {
        ParseError {
            file: self.file.to_owned(),
            line,
            expected,
        }
    }

    fn warn(&mut self, line: u32, message: String) {
        if self.warnings.len() >= MAX_WARNINGS {
            self.dropped_warnings += 1;
            return;
        }
        self.warnings.push(Warning {
            file: self.file.to_owned(),
            line,
            message,
        });
    }

    fn unknown_key(&mut self, section: &str, p: &Pair, known: &[&str]) {
        let hint = match closest(&p.key, known) {
            Some(k) => format!(" (did you mean `{k}`?)"),
            None => String::new(),
        };
        self.warn(
            p.line,
            format!(
                "unknown key `{}` in {section}, ignored{hint}",
                excerpt(&p.key)
            ),
        );
    }

    fn unused_key(&mut self, section: &str, p: &Pair) {
        self.warn(
            p.line,
            format!(
                "key `{}` in {section} is not used by this implementation, ignored",
                p.key
            ),
        );
    }

    fn unknown_section(&mut self, parent: &str, s: &Section) {
        self.warn(
            s.line,
            format!(
                "unknown section `{}` in {parent}, ignored",
                excerpt(&s.name)
            ),
        );
    }

    /// Warns when `p.key` was already given in this section.
    fn repeated(&mut self, seen: &mut BTreeMap<String, u32>, section: &str, p: &Pair) {
        if let Some(first) = seen.insert(p.key.clone(), p.line) {
            self.warn(
                p.line,
                format!(
                    "key `{}` in {section} given again (before on line {first}); the last value is used",
                    excerpt(&p.key)
                ),
            );
        }
    }

    // ---- values ----

    /// A decimal number in `min..=max`.
    fn number(&self, p: &Pair, min: u64, max: u64, what: &str) -> Result<u64, ParseError> {
        let v = &p.value;
        let parsed = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            v.parse::<u64>().ok()
        } else {
            None
        };
        match parsed {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(self.error(
                p.line,
                format!(
                    "{what} from {min} to {max} for `{}`, found `{}`",
                    p.key,
                    excerpt(v)
                ),
            )),
        }
    }

    fn millis(&self, p: &Pair) -> Result<u64, ParseError> {
        self.number(p, 1, MAX_TIMEOUT_MS, "a number of milliseconds")
    }

    fn count(&self, p: &Pair, min: u32) -> Result<u32, ParseError> {
        let n = self.number(p, u64::from(min), u64::from(u32::MAX), "a count")?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn node_id(&self, p: &Pair) -> Result<NodeId, ParseError> {
        let n = self.number(p, 1, u64::from(u32::MAX), "a nonzero node id")?;
        u32::try_from(n)
            .ok()
            .and_then(NodeId::new)
            .ok_or_else(|| self.error(p.line, "a nonzero node id".to_owned()))
    }

    fn port(&self, p: &Pair) -> Result<u16, ParseError> {
        let n = self.number(p, 1, u64::from(u16::MAX), "a UDP port")?;
        Ok(u16::try_from(n).unwrap_or(u16::MAX))
    }

    fn boolean(&self, p: &Pair) -> Result<bool, ParseError> {
        self.choice(
            p,
            &[
                ("yes", true),
                ("no", false),
                ("on", true),
                ("off", false),
                ("true", true),
                ("false", false),
            ],
        )
    }

    fn debug_level(&self, p: &Pair) -> Result<DebugLevel, ParseError> {
        if p.value.eq_ignore_ascii_case("trace") {
            return Ok(DebugLevel::Trace);
        }
        match self.boolean(p) {
            Ok(true) => Ok(DebugLevel::On),
            Ok(false) => Ok(DebugLevel::Off),
            Err(_) => Err(self.error(
                p.line,
                format!(
                    "on, off or trace for `{}`, found `{}`",
                    p.key,
                    excerpt(&p.value)
                ),
            )),
        }
    }

    /// One of `choices` (case-insensitive).
    fn choice<T: Copy>(&self, p: &Pair, choices: &[(&str, T)]) -> Result<T, ParseError> {
        if let Some((_, v)) = choices
            .iter()
            .find(|(name, _)| p.value.eq_ignore_ascii_case(name))
        {
            return Ok(*v);
        }
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        Err(self.error(
            p.line,
            format!(
                "one of {} for `{}`, found `{}`",
                names.join(", "),
                p.key,
                excerpt(&p.value)
            ),
        ))
    }

    fn ip_addr(&self, p: &Pair) -> Result<IpAddr, ParseError> {
        p.value.parse::<IpAddr>().map_err(|_| {
            self.error(
                p.line,
                format!(
                    "an IPv4 or IPv6 address literal for `{}` (hostnames are not resolved), found `{}`",
                    p.key,
                    excerpt(&p.value)
                ),
            )
        })
    }

    /// A non-empty value.
    /// Permission bits in octal: `0770`, `770` or `0o770`, at most 0777.
    fn octal_mode(&self, p: &Pair) -> Result<u32, ParseError> {
        let digits = p.value.strip_prefix("0o").unwrap_or(&p.value);
        match u32::from_str_radix(digits, 8) {
            Ok(mode) if mode <= 0o777 && !digits.is_empty() && !digits.starts_with('+') => Ok(mode),
            _ => Err(self.error(
                p.line,
                format!(
                    "permission bits in octal (0000 to 0777) for `{}`, found `{}`",
                    p.key,
                    excerpt(&p.value)
                ),
            )),
        }
    }

    fn text(&self, p: &Pair) -> Result<String, ParseError> {
        if p.value.is_empty() {
            return Err(self.error(p.line, format!("a value for `{}`", p.key)));
        }
        Ok(p.value.clone())
    }
}

/// A number is an id, anything else a name.
fn principal(value: &str) -> Principal {
    match value.parse::<u32>() {
        Ok(id) if value.bytes().all(|b| b.is_ascii_digit()) => Principal::Id(id),
        _ => Principal::Name(value.to_owned()),
    }
}

/// `ring1_addr` .. `ring7_addr`: other rings, not used.
fn is_other_ring_addr(key: &str) -> bool {
    key.strip_prefix("ring")
        .and_then(|rest| rest.strip_suffix("_addr"))
        .is_some_and(|n| matches!(n, "1" | "2" | "3" | "4" | "5" | "6" | "7"))
}

/// The known key within edit distance 2 of `key`, for typo hints.
fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    /// Longer keys are not compared (bounded work on hostile input).
    const MAX_KEY_CHARS: usize = 48;
    if key.chars().count() > MAX_KEY_CHARS {
        return None;
    }
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance, with adjacent transpositions counting as one edit
/// (so `toekn` is one edit from `token`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j]; three rolling rows.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A corosync 3 corosync.conf: udpu, three nodes, logging, quorum.
    const COROSYNC_UDPU: &str = "\
# Please read the corosync.conf.5 manual page
totem {
\tversion: 2
\tcluster_name: mycluster
\ttransport: udpu
\tcrypto_cipher: none
\tcrypto_hash: none
\ttoken: 3000
\tinterface {
\t\tringnumber: 0
\t\tbindnetaddr: 192.168.122.0
\t\tmcastport: 5405
\t\tttl: 1
\t}
}

logging {
\tfileline: off
\tto_stderr: no
\tto_logfile: yes
\tlogfile: /var/log/cluster/corosync.log
\tto_syslog: yes
\tdebug: off
\ttimestamp: on
\tlogger_subsys {
\t\tsubsys: QUORUM
\t\tdebug: on
\t}
}

quorum {
\tprovider: corosync_votequorum
}

nodelist {
\tnode {
\t\tring0_addr: 192.168.122.11
\t\tname: node1
\t\tnodeid: 1
\t}
\tnode {
\t\tring0_addr: 192.168.122.12
\t\tname: node2
\t\tnodeid: 2
\t}
\tnode {
\t\tring0_addr: 192.168.122.13
\t\tname: node3
\t\tnodeid: 3
\t}
}
";

    /// openais 0.80's sample openais.conf.
    const OPENAIS_080: &str = "\
# Please read the openais.conf.5 manual page

totem {
\tversion: 2
\tsecauth: off
\tthreads: 0
\tinterface {
\t\tringnumber: 0
\t\tbindnetaddr: 192.168.1.0
\t\tmcastaddr: 226.94.1.1
\t\tmcastport: 5405
\t}
}

logging {
\tto_stderr: yes
\tto_file: yes
\tto_syslog: yes
\tlogfile: /tmp/openais.log
\tdebug: off
\ttimestamp: on
\tlogger {
\t\tident: AMF
\t\tdebug: off
\t\ttags: enter|leave|trace1|trace2|trace3|trace4|trace6
\t}
}

amf {
\tmode: disabled
}
";

    /// A corosync 3 knet config: IPv6 nodes, two links, crypto.
    const COROSYNC_KNET: &str = "\
totem {
    version: 2
    cluster_name: \"knet cluster\"
    transport: knet
    crypto_cipher: aes256
    crypto_hash: sha256
    ip_version: ipv6-4
    link_mode: passive
    interface {
        linknumber: 0
        knet_link_priority: 1
    }
    interface {
        linknumber: 1
    }
}

nodelist {
    node {
        ring0_addr: fd00::1
        ring1_addr: 10.0.0.1
        nodeid: 10
        name: a
    }
    node {
        ring0_addr: fd00::2
        ring1_addr: 10.0.0.2
        nodeid: 20
        name: b
    }
}

quorum {
    provider: corosync_votequorum
    two_node: 1
}
";

    fn n(raw: u32) -> NodeId {
        NodeId::new(raw).expect("nonzero")
    }

    fn parse(text: &str) -> (ClusterConfig, Vec<Warning>) {
        ClusterConfig::parse("test.conf", text.as_bytes()).expect("parses")
    }

    fn refused(text: &str) -> ParseError {
        ClusterConfig::parse("test.conf", text.as_bytes()).expect_err("refused")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address literal")
    }

    #[test]
    fn system_disable_lists_services() {
        let (c, _) = parse("system {\n disable: ckpt, BACKUP evs\n}\n");
        assert_eq!(
            c.system.disabled,
            [ServiceId::Ckpt, ServiceId::Backup, ServiceId::Evs]
        );
        let e = refused("system {\n\n disable: ckpt cfg\n}\n");
        assert_eq!(e.line, 3);
        assert!(e.to_string().contains("not `cfg`"), "{e}");
        let e = refused("system {\n disable: clm lck\n}\n");
        assert!(e.to_string().contains("not `lck`"), "{e}");
    }

    #[test]
    fn system_ckpt_memory_limit_is_a_number_of_bytes() {
        let (c, warnings) = parse("system {\n ckpt_memory_limit: 65536\n}\n");
        assert_eq!(c.system.ckpt_memory_limit_bytes, Some(65_536));
        assert!(warnings.is_empty(), "{warnings:?}");
        let (c, _) = parse("system {\n run_dir: /tmp/ais\n}\n");
        assert_eq!(
            c.system.ckpt_memory_limit_bytes, None,
            "default: the engine's"
        );
        for bad in ["0", "64k", "-1", "18446744073709551616", ""] {
            let e = refused(&format!("system {{\n\n ckpt_memory_limit: {bad}\n}}\n"));
            assert_eq!(e.line, 3, "{bad}: {e}");
            assert!(e.to_string().contains("a number of bytes"), "{bad}: {e}");
        }
    }

    #[test]
    fn system_and_ipc_access_sections() {
        let (c, warnings) = parse(
            "system {\n run_dir: /tmp/ais\n sched_rr: yes\n mlockall: no\n priority: max\n}\n\
             uidgid {\n uid: 1001\n gid: haclient\n}\n\
             uidgid {\n uid: 1001\n}\n\
             aisexec {\n user: root\n group: ais\n}\n",
        );
        assert_eq!(c.system.run_dir.as_deref(), Some(Path::new("/tmp/ais")));
        assert_eq!(c.system.state_dir, None);
        assert_eq!(c.system.sched_rr, Some(true));
        assert_eq!(c.system.mlockall, Some(false));
        assert_eq!(c.ipc.uids, [Principal::Id(1001)], "duplicates collapse");
        assert_eq!(
            c.ipc.gids,
            [
                Principal::Name("haclient".into()),
                Principal::Name("ais".into())
            ]
        );
        assert!(c.ignored_sections.is_empty());
        let lines: Vec<u32> = warnings.iter().map(|w| w.line).collect();
        assert_eq!(
            lines,
            [5, 15],
            "priority and user are not used: {warnings:?}"
        );
        let e = refused("system {\n sched_rr: maybe\n}\n");
        assert_eq!(e.line, 2);
        let (c, _) = parse("system {\n ipc_socket_mode: 0750\n ipc_socket_group: 42\n}\n");
        assert_eq!(c.system.ipc_socket_mode, Some(0o750));
        assert_eq!(c.system.ipc_socket_group, Some(Principal::Id(42)));
        let (c, _) = parse("system {\n ipc_socket_mode: 0o777\n ipc_socket_group: ais\n}\n");
        assert_eq!(c.system.ipc_socket_mode, Some(0o777));
        assert_eq!(
            c.system.ipc_socket_group,
            Some(Principal::Name("ais".into()))
        );
        for bad in ["0778", "1777", "rw", "", "+7"] {
            let e = refused(&format!("system {{\n ipc_socket_mode: {bad}\n}}\n"));
            assert_eq!(e.line, 2, "{bad}");
        }
        let (_, warnings) = parse("uidgid {\n uiid: 5\n}\n");
        assert!(
            warnings[0].message.contains("did you mean `uid`"),
            "{warnings:?}"
        );
    }

    #[test]
    fn corosync3_udpu_nodelist_and_logging() {
        let (c, warnings) = parse(COROSYNC_UDPU);
        let t = &c.totem;
        assert_eq!(t.version, Some(2));
        assert_eq!(t.cluster_name.as_deref(), Some("mycluster"));
        assert_eq!(t.transport, Some(Transport::Udpu));
        assert_eq!(t.crypto_cipher, Some(CryptoCipher::None));
        assert_eq!(t.crypto_hash, Some(CryptoHash::None));
        assert_eq!(t.token_ms, Some(3000));
        assert_eq!(t.line_of("token"), Some(8));
        assert_eq!(
            t.interfaces,
            [InterfaceSection {
                line: 9,
                ring_number: 0,
                bindnetaddr: Some(ip("192.168.122.0")),
                mcastaddr: None,
                mcastport: Some(5405),
                ttl: Some(1),
            }]
        );
        assert_eq!(t.port, 5405);
        assert_eq!(c.local_node_id, None);
        let nodes: Vec<(u32, IpAddr, Option<&str>, u32)> = c
            .nodes
            .iter()
            .map(|e| (e.node_id.get(), e.ring0_addr, e.name.as_deref(), e.line))
            .collect();
        assert_eq!(
            nodes,
            [
                (1, ip("192.168.122.11"), Some("node1"), 36),
                (2, ip("192.168.122.12"), Some("node2"), 41),
                (3, ip("192.168.122.13"), Some("node3"), 46),
            ]
        );
        assert_eq!(
            c.node_addr(&c.nodes[2]),
            "192.168.122.13:5405"
                .parse::<SocketAddr>()
                .expect("literal")
        );
        assert_eq!(c.node(n(2)).map(|e| e.line), Some(41));
        let log = &c.logging;
        assert!(!log.to_stderr && log.to_logfile && log.to_syslog && log.timestamp);
        assert_eq!(
            log.logfile.as_deref(),
            Some(Path::new("/var/log/cluster/corosync.log"))
        );
        assert_eq!(log.debug, DebugLevel::Off);
        assert_eq!(
            log.subsystems,
            [LoggerSubsys {
                subsys: "QUORUM".into(),
                debug: Some(DebugLevel::On),
                line: 25,
            }]
        );
        assert_eq!(
            c.ignored_sections,
            [IgnoredSection {
                name: "quorum".into(),
                line: 31
            }]
        );
        // Only `fileline`, which we do not use.
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].line, 18);
        assert!(warnings[0].message.contains("fileline"));

        let v = c.totem_config(n(1)).expect("valid");
        let tc = v.get();
        assert_eq!(tc.node_id, n(1));
        assert_eq!(tc.token_timeout, Duration::from_millis(3000));
        assert_eq!(
            tc.consensus_timeout,
            Duration::from_millis(3600),
            "1.2 x token"
        );
        // corosync: 3000 / 4.2 = 714; 714 x 0.8 - 10 = 561.
        assert_eq!(tc.token_hold, Duration::from_millis(561));
    }

    #[test]
    fn openais_080_conf_warns_only_about_unused_keys() {
        let (c, warnings) = parse(OPENAIS_080);
        assert_eq!(c.totem.secauth, Some(false));
        assert_eq!(c.totem.transport, None);
        let iface = &c.totem.interfaces[0];
        assert_eq!(iface.bindnetaddr, Some(ip("192.168.1.0")));
        assert_eq!(iface.mcastaddr, Some(ip("226.94.1.1")));
        assert_eq!(c.totem.port, 5405);
        assert!(c.logging.to_logfile, "to_file is openais's to_logfile");
        assert_eq!(c.logging.subsystems[0].subsys, "AMF");
        assert_eq!(c.ignored_sections[0].name, "amf");
        let lines: Vec<(u32, bool)> = warnings
            .iter()
            .map(|w| (w.line, w.message.contains("not used")))
            .collect();
        assert_eq!(lines, [(6, true), (25, true)], "{warnings:?}");
        assert!(warnings[0].message.contains("`threads`"));
        assert!(warnings[1].message.contains("`tags`"));
        assert!(warnings[0].to_string().starts_with("test.conf:6: "));
        c.totem_config(n(1)).expect("valid");
    }

    #[test]
    fn corosync3_knet_conf_parses() {
        let (c, warnings) = parse(COROSYNC_KNET);
        let t = &c.totem;
        assert_eq!(t.cluster_name.as_deref(), Some("knet cluster"));
        assert_eq!(t.transport, Some(Transport::Knet));
        assert_eq!(t.crypto_cipher, Some(CryptoCipher::Aes256));
        assert_eq!(t.crypto_hash, Some(CryptoHash::Sha256));
        assert_eq!(t.ip_version, Some(IpVersion::Ipv6Then4));
        let rings: Vec<u8> = t.interfaces.iter().map(|i| i.ring_number).collect();
        assert_eq!(rings, [0, 1]);
        assert_eq!(t.port, DEFAULT_PORT);
        assert_eq!(c.nodes[1].ring0_addr, ip("fd00::2"));
        assert_eq!(
            c.node_addr(&c.nodes[1]),
            "[fd00::2]:5405".parse::<SocketAddr>().expect("literal")
        );
        // link_mode, knet_link_priority, two ring1_addr, and ring 1.
        let lines: Vec<u32> = warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, [8, 11, 21, 27, 13], "{warnings:?}");
        assert!(warnings[4].message.contains("only ring 0"));
        c.totem_config(n(10)).expect("valid");
    }

    #[test]
    fn typo_is_a_warning_naming_line_and_key() {
        let (c, warnings) = parse("totem {\n toekn: 1000\n}\n");
        assert_eq!(c.totem.token_ms, None);
        assert_eq!(warnings.len(), 1);
        let w = &warnings[0];
        assert_eq!(w.line, 2);
        assert!(w.message.contains("toekn"), "{w}");
        assert!(w.message.contains("did you mean `token`"), "{w}");
        assert_eq!(
            w.to_string(),
            "test.conf:2: unknown key `toekn` in totem, ignored (did you mean `token`?)"
        );
    }

    #[test]
    fn unknown_sections_and_keys_warn_everywhere() {
        let (c, warnings) = parse(
            "foo {\n a: 1\n}\ntotem {\n bar {\n }\n interface {\n zzz: 1\n }\n}\n\
             nodelist {\n x: 1\n node {\n  nodeid: 1\n  ring0_addr: 10.0.0.1\n  colour: red\n }\n}\n\
             logging {\n blah: 1\n}\ncompatibility: whitetank\n",
        );
        assert_eq!(c.nodes.len(), 1);
        let lines: Vec<u32> = warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, [1, 5, 8, 12, 16, 20, 22], "{warnings:?}");
    }

    #[test]
    fn warnings_are_bounded() {
        let text = "junk: 1\n".repeat(MAX_WARNINGS + 50);
        let (_, warnings) = parse(&text);
        assert_eq!(warnings.len(), MAX_WARNINGS + 1);
        let last = warnings.last().expect("summary");
        assert_eq!(last.message, "50 more warnings not shown");
        assert_eq!(last.line, u32::try_from(MAX_WARNINGS).expect("small"));
    }

    #[test]
    fn repeated_key_warns_and_last_wins() {
        let (c, warnings) = parse("totem {\n token: 1000\n token: 2000\n}\n");
        assert_eq!(c.totem.token_ms, Some(2000));
        assert_eq!(c.totem.line_of("token"), Some(3));
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].line, 3);
        assert!(warnings[0].message.contains("line 2"));
    }

    #[test]
    fn bad_number_is_file_line_expected() {
        let e = refused("totem {\n token: abc\n}\n");
        assert_eq!(e.line, 2);
        let text = e.to_string();
        assert!(text.starts_with("test.conf:2: expected "), "{text}");
        assert!(text.contains("`token`") && text.contains("`abc`"), "{text}");
    }

    #[test]
    fn bad_values_are_errors_at_their_line() {
        let cases: &[(&str, &str)] = &[
            ("token: 0", "from 1"),
            ("token: -5", "milliseconds"),
            ("token: 99999999999999999999999", "milliseconds"),
            ("join: 3600001", "to 3600000"),
            ("window_size: 0", "a count"),
            ("max_messages: ", "a count"),
            ("accelerated_window: -1", "a count"),
            ("accelerated_window: many", "a count"),
            ("netmtu: 0", "datagram"),
            ("transport: sctp", "one of udp, udpu, knet"),
            ("secauth: maybe", "yes, no"),
            ("version: 3", "`version: 2`"),
            ("nodeid: 0", "nonzero"),
            ("port: 70000", "UDP port"),
            ("ip_version: ipv5", "ipv4"),
            ("crypto_cipher: 3des", "aes256"),
            ("crypto_hash: crc", "sha256"),
            ("cluster_name: \"\"", "a value"),
            (
                "interface {\n mcastaddr: mcast.example.com\n }",
                "hostnames are not resolved",
            ),
            ("interface {\n ringnumber: 8\n }", "ring number"),
            ("interface {\n ttl: 0\n }", "TTL"),
        ];
        for (body, expected) in cases {
            let text = format!("# c\ntotem {{\n {body}\n}}\n");
            let e = refused(&text);
            let line = if body.contains('{') { 4 } else { 3 };
            assert_eq!(e.line, line, "{body}: {e}");
            assert!(e.expected.contains(expected), "{body}: {e}");
        }
        let e = refused("logging {\n debug: loud\n}\n");
        assert!(e.expected.contains("on, off or trace"), "{e}");
        let e = refused("logging {\n to_logfile: yes\n}\n");
        assert_eq!(e.line, 2);
        assert!(e.expected.contains("logfile"), "{e}");
        let e = refused("logging {\n logger_subsys {\n  debug: on\n }\n}\n");
        assert_eq!(e.line, 2);
    }

    #[test]
    fn nodelist_refuses_hostnames_missing_and_duplicate_ids() {
        let e = refused("nodelist {\n node {\n  ring0_addr: node1\n  nodeid: 1\n }\n}\n");
        assert_eq!(e.line, 3);
        assert!(e.expected.contains("hostnames are not resolved"), "{e}");
        let e = refused("nodelist {\n node {\n  ring0_addr: 10.0.0.1\n }\n}\n");
        assert_eq!(e.line, 2);
        assert!(e.expected.contains("nodeid"), "{e}");
        let e = refused("nodelist {\n node {\n  nodeid: 1\n }\n}\n");
        assert!(e.expected.contains("ring0_addr"), "{e}");
        let e = refused("nodelist {\n node {\n  nodeid: 0\n  ring0_addr: 10.0.0.1\n }\n}\n");
        assert_eq!(e.line, 3);
    }

    #[test]
    fn duplicate_nodeid_is_reported_at_the_second() {
        let text = "nodelist {\n\
                    node {\n ring0_addr: 127.0.0.1\n nodeid: 1\n }\n\
                    node {\n ring0_addr: 127.0.0.2\n nodeid: 1\n }\n}\n";
        let e = refused(text);
        assert_eq!(e.line, 8, "{e}");
        assert!(
            e.expected.contains("unique nodeid") && e.expected.contains("line 2"),
            "{e}"
        );
        assert!(e
            .to_string()
            .starts_with("test.conf:8: expected a unique nodeid"));
        let text = "nodelist {\n\
                    node {\n ring0_addr: 127.0.0.1\n nodeid: 1\n }\n}\n\
                    nodelist {\n node {\n nodeid: 2\n ring0_addr: 127.0.0.1\n }\n}\n";
        let e = refused(text);
        assert_eq!(e.line, 10, "{e}");
        assert!(e.expected.contains("unique ring0_addr"), "{e}");
    }

    #[test]
    fn nodelist_is_bounded() {
        let mut text = String::from("nodelist {\n");
        for i in 1..=MAX_NODES + 1 {
            text.push_str(&format!(
                " node {{\n  nodeid: {i}\n  ring0_addr: 10.0.1.{i}\n }}\n"
            ));
        }
        text.push_str("}\n");
        let e = refused(&text);
        assert!(
            e.expected.contains(&format!("at most {MAX_NODES} nodes")),
            "{e}"
        );
        assert_eq!(e.line, u32::try_from(2 + 4 * MAX_NODES).expect("small"));
        // Exactly the maximum is fine.
        let full: String = text
            .lines()
            .take(1 + 4 * MAX_NODES)
            .collect::<Vec<_>>()
            .join("\n");
        let (c, _) = parse(&(full + "\n}\n"));
        assert_eq!(c.nodes.len(), MAX_NODES);
    }

    #[test]
    fn unclosed_brace_gives_the_opening_line() {
        let e = refused("logging {\n debug: off\n}\n\ntotem {\n token: 1000\n");
        assert_eq!(e.line, 5);
        assert!(
            e.to_string().starts_with("test.conf:5: expected `}`"),
            "{e}"
        );
    }

    #[test]
    fn defaults_are_openais() {
        let (c, warnings) = parse("");
        assert!(warnings.is_empty());
        assert_eq!(c.totem.port, DEFAULT_PORT);
        assert_eq!(c.logging, LoggingConfig::default());
        let v = c.totem_config(n(1)).expect("defaults validate");
        let t = v.get();
        assert_eq!(t.token_timeout, Duration::from_millis(1000));
        assert_eq!(t.consensus_timeout, Duration::from_millis(1200));
        assert_eq!(t.join_timeout, Duration::from_millis(50));
        assert_eq!(t.merge_timeout, Duration::from_millis(200));
        assert_eq!(t.token_hold, Duration::from_millis(180));
        // netmtu 1500 on the wire; secauth (on by default) seals each
        // datagram with AES-256-GCM's 36 bytes.
        assert_eq!(
            (t.window_size, t.max_messages, t.netmtu_bytes),
            (50, 17, 1500 - 36)
        );
        assert_eq!(t.token_retransmits_before_loss, 4);
        assert_eq!(t.seqno_unchanged_const, 30);
        let mut plain = TotemConfig::new(n(1));
        plain.netmtu_bytes -= 36;
        assert_eq!(v, plain.validate().expect("valid"));
        let (off, _) = parse("totem {\n secauth: off\n}\n");
        assert_eq!(
            off.totem_config(n(1)).expect("valid").get().netmtu_bytes,
            1500
        );
    }

    #[test]
    fn netmtu_defaults_to_the_loopback_mtu_only_when_every_node_is_loopback() {
        let nodes = |a: &str, b: &str| {
            format!(
                "nodelist {{\n node {{\n  ring0_addr: {a}\n  nodeid: 1\n }}\n \
                 node {{\n  ring0_addr: {b}\n  nodeid: 2\n }}\n}}\n"
            )
        };
        // Totem's packets are the datagram less the seal (secauth is on
        // by default), so add it back to compare with the datagram size.
        let mtu = |text: &str| {
            let config = parse(text).0;
            config.totem_config(n(1)).expect("valid").get().netmtu_bytes
                + crate::ring_crypto::settings::overhead_bytes(&config)
        };
        assert_eq!(mtu(&nodes("127.0.0.1", "127.0.0.2")), LOOPBACK_NETMTU_BYTES);
        assert_eq!(mtu(&nodes("::1", "127.0.0.2")), LOOPBACK_NETMTU_BYTES);
        assert_eq!(mtu(&nodes("127.0.0.1", "192.168.1.2")), 1500);
        let given = format!(
            "totem {{\n netmtu: 9000\n}}\n{}",
            nodes("127.0.0.1", "127.0.0.2")
        );
        assert_eq!(mtu(&given), 9000);
    }

    #[test]
    fn accelerated_window_reaches_the_protocol_and_defaults_to_standard() {
        let (c, _) = parse("totem {\n accelerated_window: 17\n}\n");
        assert_eq!(c.totem.accelerated_window, Some(17));
        let v = c.totem_config(n(1)).expect("valid");
        assert_eq!(v.get().accelerated_window, 17);
        let (c, _) = parse("totem {\n accelerated_window: 0\n}\n");
        assert_eq!(
            c.totem_config(n(1))
                .expect("valid")
                .get()
                .accelerated_window,
            0
        );
        let (c, _) = parse("totem {\n token: 1000\n}\n");
        assert_eq!(c.totem.accelerated_window, None);
        assert_eq!(
            c.totem_config(n(1))
                .expect("valid")
                .get()
                .accelerated_window,
            0,
            "absent: the standard protocol"
        );
    }

    #[test]
    fn every_totem_key_reaches_the_protocol() {
        let (c, _) = parse(
            "totem {\n token: 2000\n token_retransmits_before_loss_const: 10\n join: 60\n\
             consensus: 3000\n merge: 300\n fail_recv_const: 100\n seqno_unchanged_const: 40\n\
             hold: 50\n window_size: 80\n max_messages: 20\n netmtu: 9000\n nodeid: 7\n port: 6000\n\
             downcheck: 500\n keyfile: /etc/corosync/authkey\n secauth: on\n}\n",
        );
        assert_eq!(c.local_node_id, Some(n(7)));
        assert_eq!(c.totem.port, 6000);
        assert_eq!(c.totem.downcheck_ms, Some(500));
        assert_eq!(
            c.totem.keyfile.as_deref(),
            Some(Path::new("/etc/corosync/authkey"))
        );
        let v = c.totem_config(n(7)).expect("valid");
        let t = v.get();
        assert_eq!(t.token_timeout, Duration::from_millis(2000));
        assert_eq!(t.token_retransmits_before_loss, 10);
        assert_eq!(t.join_timeout, Duration::from_millis(60));
        assert_eq!(t.consensus_timeout, Duration::from_millis(3000));
        assert_eq!(t.merge_timeout, Duration::from_millis(300));
        assert_eq!(t.fail_recv_const, 100);
        assert_eq!(t.seqno_unchanged_const, 40);
        assert_eq!(t.token_hold, Duration::from_millis(50));
        assert_eq!(
            (t.window_size, t.max_messages, t.netmtu_bytes),
            (80, 20, 9000 - 36)
        );
    }

    #[test]
    fn inconsistent_totem_settings_name_the_key() {
        let (c, _) = parse("totem {\n token: 1000\n consensus: 1100\n}\n");
        let e = c.totem_config(n(1)).expect_err("consensus too short");
        assert_eq!((e.key, e.line), ("consensus", Some(3)));
        assert!(
            e.to_string()
                .starts_with("test.conf:3: totem key `consensus`: "),
            "{e}"
        );
        let (c, _) = parse("totem {\n max_messages: 60\n}\n");
        let e = c.totem_config(n(1)).expect_err("over window");
        assert_eq!((e.key, e.line), ("max_messages", Some(2)));
        let (c, _) = parse("totem {\n window_size: 10\n}\n");
        let e = c
            .totem_config(n(1))
            .expect_err("default max_messages over window");
        assert_eq!((e.key, e.line), ("window_size", Some(2)));
        let (c, _) = parse("totem {\n max_messages: 10\n accelerated_window: 11\n}\n");
        let e = c
            .totem_config(n(1))
            .expect_err("accelerated over max_messages");
        assert_eq!((e.key, e.line), ("accelerated_window", Some(3)));
        assert!(
            e.to_string().starts_with(
                "test.conf:3: totem key `accelerated_window`: accelerated_window (11) must not exceed max_messages (10)"
            ),
            "{e}"
        );
        let (c, _) = parse("totem {\n netmtu: 600\n}\n");
        let e = c.totem_config(n(1)).expect_err("netmtu");
        assert_eq!((e.key, e.line), ("netmtu", Some(2)));
        let (c, _) = parse("totem {\n join: 5000\n}\n");
        let e = c.totem_config(n(1)).expect_err("join");
        assert_eq!(e.key, "join");
        let (c, _) = parse("totem {\n token: 100\n consensus: 120\n join: 120\n}\n");
        assert_eq!(c.totem_config(n(1)).expect_err("join").line, Some(4));
    }

    #[test]
    fn consensus_follows_token_and_derived_settings_validate() {
        for token in [1u64, 30, 100, 300, 1000, 5000, MAX_TIMEOUT_MS] {
            for retransmits in [1u32, 2, 4, 10, 100] {
                let text = format!(
                    "totem {{\n token: {token}\n token_retransmits_before_loss_const: {retransmits}\n join: 1\n}}\n"
                );
                let (c, _) = parse(&text);
                let v = c.totem_config(n(1));
                let v = v.unwrap_or_else(|e| panic!("token {token} x {retransmits}: {e}"));
                assert_eq!(
                    v.get().consensus_timeout,
                    Duration::from_millis(token) * 6 / 5
                );
            }
        }
        assert_eq!(derived_hold_ms(1000, 4), 180);
        assert_eq!(derived_hold_ms(300, 4), 46);
        assert_eq!(derived_hold_ms(1000, 1), 656);
        assert_eq!(derived_hold_ms(10, 4), 0, "never below zero");
    }

    #[test]
    fn port_comes_from_port_or_ring0_mcastport() {
        let (c, _) = parse("totem {\n interface {\n  mcastport: 6000\n }\n}\n");
        assert_eq!(c.totem.port, 6000);
        let (c, _) = parse(
            "totem {\n port: 6000\n interface {\n  ringnumber: 1\n  mcastport: 7000\n }\n}\n",
        );
        assert_eq!(c.totem.port, 6000, "ring 1 is not used");
        let (c, _) = parse("totem {\n port: 6000\n interface {\n  mcastport: 6000\n }\n}\n");
        assert_eq!(c.totem.port, 6000);
        let e = refused("totem {\n port: 6000\n interface {\n  mcastport: 7000\n }\n}\n");
        assert_eq!(e.line, 2);
        assert!(e.expected.contains("mcastport"), "{e}");
        let e = refused("totem {\n interface {\n }\n interface {\n  ringnumber: 0\n }\n}\n");
        assert_eq!(e.line, 4);
    }

    #[test]
    fn local_node_id_comes_from_totem_nodeid() {
        let (c, warnings) = parse(
            "totem {\n nodeid: 2\n}\nnodelist {\n node {\n  nodeid: 2\n  ring0_addr: 127.0.0.2\n }\n}\n",
        );
        assert_eq!(c.local_node_id, Some(n(2)));
        assert!(warnings.is_empty());
        let (_, warnings) = parse(
            "totem {\n nodeid: 3\n}\nnodelist {\n node {\n  nodeid: 2\n  ring0_addr: 127.0.0.2\n }\n}\n",
        );
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].line, 2);
    }

    #[test]
    fn booleans_accept_the_six_words_in_any_case() {
        for (word, value) in [
            ("yes", true),
            ("No", false),
            ("ON", true),
            ("off", false),
            ("true", true),
            ("False", false),
        ] {
            let (c, _) = parse(&format!("logging {{\n to_syslog: {word}\n}}\n"));
            assert_eq!(c.logging.to_syslog, value, "{word}");
        }
        let e = refused("logging {\n to_syslog: 1\n}\n");
        assert!(e.expected.contains("yes, no, on, off, true, false"), "{e}");
    }

    #[test]
    fn load_reads_files_and_names_the_path_on_io_error() {
        let dir = std::env::temp_dir().join(format!("aisexec-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("corosync.conf");
        std::fs::write(&path, COROSYNC_UDPU).expect("write");
        let (c, warnings) = load(&path).expect("loads");
        assert_eq!(c.nodes.len(), 3);
        assert_eq!(c.file, path.display().to_string());
        assert_eq!(warnings[0].file, c.file);

        std::fs::write(&path, "totem {\n token: abc\n}\n").expect("write");
        let e = load(&path).expect_err("bad value");
        assert!(
            e.to_string()
                .starts_with(&format!("{}:2: expected", path.display())),
            "{e}"
        );

        std::fs::write(&path, vec![b'#'; syntax::MAX_FILE_BYTES + 10]).expect("write");
        assert!(matches!(load(&path), Err(ConfigError::Invalid(_))));

        let missing = dir.join("missing.conf");
        let e = load(&missing).expect_err("missing");
        assert!(matches!(e, ConfigError::Io { .. }));
        assert!(
            e.to_string().starts_with(&missing.display().to_string()),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn edit_distance_counts_transpositions() {
        assert_eq!(edit_distance("toekn", "token"), 1);
        assert_eq!(edit_distance("", "join"), 4);
        assert_eq!(edit_distance("merge", "merge"), 0);
        assert_eq!(closest("wndow_size", TOTEM_KEYS), Some("window_size"));
        assert_eq!(closest("zzzzzz", TOTEM_KEYS), None);
    }

    /// splitmix64: a tiny seeded generator so failures replay by seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(n.max(1)).expect("fits")).expect("fits")
        }
    }

    /// Parses and, when that succeeds, maps to the protocol's settings: the
    /// whole path a config takes in the daemon. Must never panic.
    fn exercise(bytes: &[u8]) {
        if let Ok((c, warnings)) = ClusterConfig::parse("fuzz.conf", bytes) {
            for w in &warnings {
                let _ = w.to_string();
            }
            for node in &c.nodes {
                let _ = c.node_addr(node);
            }
            let id = c.local_node_id.unwrap_or(n(1));
            if let Err(e) = c.totem_config(id) {
                let _ = e.to_string();
            }
        }
    }

    #[test]
    fn fuzz_random_bytes_never_panic() {
        const ALPHABET: &[u8] = b"{}:#\"' \t\r\n0123456789abcdefghijklmnopqrstuvwxyz_.-\xff\xc3";
        for seed in 0..3000u64 {
            let mut rng = Rng(seed);
            let len = rng.below(400);
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.below(4) == 0 {
                        // The low byte of a random word.
                        rng.next().to_le_bytes()[0]
                    } else {
                        ALPHABET[rng.below(ALPHABET.len())]
                    }
                })
                .collect();
            exercise(&bytes);
        }
    }

    #[test]
    fn fuzz_mutated_real_configs_never_panic() {
        const VALUES: &[&str] = &[
            "0",
            "1",
            "-1",
            "4294967296",
            "18446744073709551616",
            "3600000",
            "abc",
            "",
            "\"",
            "yes",
            "::1",
            "256.1.1.1",
            "{",
            "}",
            ":",
            "65000",
            "1199",
            "trace",
        ];
        const KEYS: &[&str] = &[
            "token",
            "consensus",
            "join",
            "hold",
            "window_size",
            "max_messages",
            "netmtu",
            "nodeid",
            "ring0_addr",
            "mcastport",
            "port",
            "ringnumber",
            "debug",
            "to_logfile",
            "transport",
            "version",
            "subsys",
            "node {",
            "interface {",
            "totem {",
            "}",
        ];
        let bases = [COROSYNC_UDPU, OPENAIS_080, COROSYNC_KNET];
        let mut parsed = 0;
        for seed in 0..6000u64 {
            let mut rng = Rng(seed);
            let base = bases[rng.below(bases.len())];
            let mut lines: Vec<String> = base.lines().map(str::to_owned).collect();
            for _ in 0..=rng.below(4) {
                let i = rng.below(lines.len());
                match rng.below(7) {
                    0 => {
                        lines.remove(i);
                    }
                    1 => {
                        let copy = lines[i].clone();
                        lines.insert(rng.below(lines.len()), copy);
                    }
                    2 => {
                        let key = KEYS[rng.below(KEYS.len())];
                        let value = VALUES[rng.below(VALUES.len())];
                        lines.insert(i, format!("{key}: {value}"));
                    }
                    3 => {
                        if let Some(colon) = lines[i].find(':') {
                            let value = VALUES[rng.below(VALUES.len())];
                            lines[i] = format!("{}: {value}", &lines[i][..colon]);
                        }
                    }
                    4 => lines.insert(i, KEYS[rng.below(KEYS.len())].to_owned()),
                    5 => {
                        let j = rng.below(lines.len());
                        lines.swap(i, j);
                    }
                    _ => {
                        let mut bytes = std::mem::take(&mut lines[i]).into_bytes();
                        let at = rng.below(bytes.len() + 1);
                        bytes.insert(at, rng.next().to_le_bytes()[0]);
                        lines[i] = String::from_utf8_lossy(&bytes).into_owned();
                    }
                }
                if lines.is_empty() {
                    break;
                }
            }
            let text = lines.join("\n");
            if ClusterConfig::parse("fuzz.conf", text.as_bytes()).is_ok() {
                parsed += 1;
            }
            exercise(text.as_bytes());
            // Byte-level damage too: truncation at a random point.
            let cut = rng.below(text.len() + 1);
            exercise(&text.as_bytes()[..cut]);
        }
        // The mutations must leave a fair share valid, or the fuzz only
        // exercises the first error path.
        assert!(parsed > 600, "only {parsed} of 6000 mutants parsed");
    }
}
