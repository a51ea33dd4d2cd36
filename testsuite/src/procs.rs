//! Real `aisexec` processes on loopback, for the multi-process tests.
//!
//! A [`LocalCluster`] writes one config per node in a temporary directory
//! (node i at 127.0.0.i, all on one UDP port, explicit `nodeid`, its own run
//! directory and IPC socket), starts and stops the daemons, and asks them
//! for their ring status through the IPC socket with the `libais` client.
//! Every process it starts it stops itself, by pid; whatever still runs
//! when the cluster is dropped (a failed assertion) is killed with SIGKILL.
//!
//! The ring is sealed as in production (secauth is on by default): each
//! cluster gets a random key of its own, written to every node's run
//! directory as `authkey` (mode 0400) and named by `keyfile`. A spec with
//! `secauth: false` writes `secauth: off` instead.
//!
//! The binaries are taken from `$AIS_BIN_DIR`, else `target/release`, else
//! `target/debug` of this workspace; `make test` builds the release ones
//! first.
//!
//! Tests run in parallel: give each cluster its own port ([`test_port`]).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ais::client::{ClientConfig, Connection};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use proto::status::{RingState, RingStatus, RING_STATUS, VERSION};
use proto::{AisError, ServiceId};

/// How often a wait polls the status.
const POLL: Duration = Duration::from_millis(5);

/// The directory holding `aisexec` and `ais-ring-status`.
///
/// # Panics
/// When neither `$AIS_BIN_DIR` nor the workspace's target directory holds
/// an `aisexec` binary.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AIS_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    for profile in ["release", "debug"] {
        let dir = target.join(profile);
        if dir.join("aisexec").is_file() {
            return dir;
        }
    }
    panic!(
        "no aisexec binary under {}: run `cargo build --release --workspace` (make test does) or set AIS_BIN_DIR",
        target.display()
    );
}

/// A UDP port for test number `index` of this test run: spread by process
/// id so that two runs on one host rarely meet, distinct per index.
pub fn test_port(index: u16) -> u16 {
    let slot = u16::try_from(std::process::id() % 500).unwrap_or(0);
    20_000 + slot * 32 + index
}

/// What to put in the configs.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// Number of nodes (at most 254).
    pub nodes: u8,
    /// The UDP port shared by all nodes.
    pub port: u16,
    /// `token`, in milliseconds (consensus is 1.2 x token).
    pub token_ms: u64,
    /// Extra lines for the totem section.
    pub totem_extra: String,
    /// Seal the ring with the cluster's key (default); `false` writes
    /// `secauth: off`.
    pub secauth: bool,
    /// Extra lines for the system section.
    pub system_extra: String,
    /// Extra top-level sections (`uidgid { .. }`).
    pub sections_extra: String,
}

impl ClusterSpec {
    /// `nodes` nodes on `port` with a `token_ms` token timeout.
    pub fn new(nodes: u8, port: u16, token_ms: u64) -> ClusterSpec {
        ClusterSpec {
            nodes,
            port,
            token_ms,
            totem_extra: String::new(),
            secauth: true,
            system_extra: String::new(),
            sections_extra: String::new(),
        }
    }

    /// The consensus timeout the configs get (corosync's default).
    pub fn consensus_ms(&self) -> u64 {
        self.token_ms * 6 / 5
    }

    /// The config of node `id` with its run directory `run_dir`.
    pub fn config(&self, id: u8, run_dir: &Path) -> String {
        self.config_listing(id, run_dir, self.nodes)
    }

    /// The config of node `id` whose nodelist names nodes `1..=listed`
    /// only (to grow a cluster by SIGHUP).
    pub fn config_listing(&self, id: u8, run_dir: &Path, listed: u8) -> String {
        let mut nodelist = String::new();
        for j in 1..=listed {
            nodelist.push_str(&format!(
                "    node {{\n        ring0_addr: 127.0.0.{j}\n        nodeid: {j}\n        name: node{j}\n    }}\n"
            ));
        }
        let security = if self.secauth {
            format!("    keyfile: {}\n", run_dir.join(KEY_FILE).display())
        } else {
            "    secauth: off\n".to_owned()
        };
        format!(
            "totem {{\n    version: 2\n    nodeid: {id}\n    port: {port}\n    token: {token}\n{security}{extra}}}\n\
             nodelist {{\n{nodelist}}}\n\
             system {{\n    run_dir: {run}\n{system_extra}}}\n{sections_extra}\
             logging {{\n    to_stderr: yes\n    to_syslog: no\n    timestamp: on\n}}\n",
            port = self.port,
            token = self.token_ms,
            extra = self.totem_extra,
            system_extra = self.system_extra,
            sections_extra = self.sections_extra,
            run = run_dir.display(),
        )
    }
}

/// The key file's name in a node's run directory.
pub const KEY_FILE: &str = "authkey";

/// A random ring key (64 bytes), as `ais-keygen` would make.
pub fn random_key() -> Vec<u8> {
    use rand::RngCore;
    let mut key = vec![0; 64];
    rand::rng().fill_bytes(&mut key);
    key
}

/// Writes `key` to `path` with mode 0400, replacing what was there.
///
/// # Panics
/// If the file cannot be written.
pub fn write_key(path: &Path, key: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::remove_file(path);
    fs::write(path, key).expect("key written");
    fs::set_permissions(path, fs::Permissions::from_mode(0o400)).expect("key chmod");
}

/// One node's files and, while it runs, its process.
#[derive(Debug)]
pub struct NodeProc {
    /// Its node id.
    pub id: u8,
    /// Its config file.
    pub config: PathBuf,
    /// Its run directory.
    pub run_dir: PathBuf,
    /// Its log (the daemon's stderr), appended across restarts.
    pub log: PathBuf,
    child: Option<Child>,
}

impl NodeProc {
    /// The IPC socket.
    pub fn socket(&self) -> PathBuf {
        self.run_dir.join("aisexec.sock")
    }

    /// The running process's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// A cluster of real daemons in a temporary directory.
#[derive(Debug)]
pub struct LocalCluster {
    /// The spec the configs were written from.
    pub spec: ClusterSpec,
    dir: tempfile::TempDir,
    bin: PathBuf,
    nodes: Vec<NodeProc>,
    key: Vec<u8>,
}

impl LocalCluster {
    /// Writes the configs; starts nothing.
    ///
    /// # Panics
    /// If the temporary directory or a config cannot be written.
    pub fn new(spec: ClusterSpec) -> LocalCluster {
        let dir = tempfile::Builder::new()
            .prefix("ais-cluster-")
            .tempdir()
            .expect("temporary directory");
        let mut nodes = Vec::new();
        let key = random_key();
        for id in 1..=spec.nodes {
            let run_dir = dir.path().join(format!("node{id}"));
            fs::create_dir_all(&run_dir).expect("run directory");
            let config = run_dir.join("aisexec.conf");
            fs::write(&config, spec.config(id, &run_dir)).expect("config written");
            if spec.secauth {
                write_key(&run_dir.join(KEY_FILE), &key);
            }
            nodes.push(NodeProc {
                id,
                config,
                log: run_dir.join("aisexec.log"),
                run_dir,
                child: None,
            });
        }
        LocalCluster {
            spec,
            dir,
            bin: bin_dir(),
            nodes,
            key,
        }
    }

    /// The cluster's ring key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// Node `id`'s key file (`next`: the `.next` key of a rekey).
    pub fn key_path(&self, id: u8, next: bool) -> PathBuf {
        let name = if next { "authkey.next" } else { KEY_FILE };
        self.node(id).run_dir.join(name)
    }

    /// The temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Node `id` (1-based).
    ///
    /// # Panics
    /// For an id outside the cluster.
    pub fn node(&self, id: u8) -> &NodeProc {
        &self.nodes[usize::from(id) - 1]
    }

    fn node_mut(&mut self, id: u8) -> &mut NodeProc {
        &mut self.nodes[usize::from(id) - 1]
    }

    /// Starts node `id` in the foreground of the test, its stderr to its
    /// log.
    ///
    /// # Panics
    /// If it runs already or cannot be spawned.
    pub fn start(&mut self, id: u8) {
        self.start_with_env(id, &[]);
    }

    /// As [`LocalCluster::start`], with extra environment variables (the
    /// soak test's `AISEXEC_TEST_FAULTS`).
    ///
    /// # Panics
    /// As [`LocalCluster::start`].
    pub fn start_with_env(&mut self, id: u8, env: &[(&str, &str)]) {
        let bin = self.bin.join("aisexec");
        let node = self.node_mut(id);
        assert!(node.child.is_none(), "node {id} runs already");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("log file");
        let child = Command::new(bin)
            .arg("-f")
            .arg("-c")
            .arg(&node.config)
            .env_remove("AIS_SOCKET")
            .env_remove("AIS_RUN_DIR")
            .env_remove("NOTIFY_SOCKET")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("aisexec spawned");
        node.child = Some(child);
    }

    /// Starts every node.
    pub fn start_all(&mut self) {
        for id in 1..=self.spec.nodes {
            self.start(id);
        }
    }

    /// Sends `signal` to node `id` (by its pid); returns when it was sent.
    ///
    /// # Panics
    /// If the node is not running.
    pub fn signal(&mut self, id: u8, signal: Signal) -> Instant {
        let pid = self.node(id).pid().expect("node runs");
        let pid = Pid::from_raw(i32::try_from(pid).expect("pid fits"));
        kill(pid, signal).expect("signal sent");
        Instant::now()
    }

    /// SIGKILLs node `id` and reaps it; returns when the kill was sent.
    pub fn kill9(&mut self, id: u8) -> Instant {
        let at = self.signal(id, Signal::SIGKILL);
        let _ = self.wait_exit(id, Duration::from_secs(5));
        at
    }

    /// Waits up to `timeout` for node `id` to exit, reaping it.
    pub fn wait_exit(&mut self, id: u8, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let node = self.node_mut(id);
        let child = node.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                node.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Whether node `id`'s process is still running (not exited, not
    /// killed); reaps it if it ended.
    pub fn is_running(&mut self, id: u8) -> bool {
        let node = self.node_mut(id);
        match node.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                node.child = None;
                false
            }
            None => false,
        }
    }

    /// Node `id`'s ring status, through a new connection.
    ///
    /// # Errors
    /// As the client's connect and request.
    pub fn status(&self, id: u8) -> Result<RingStatus, AisError> {
        status_at(&self.node(id).socket())
    }

    /// Waits until every node of `ids` is operational and synchronized in
    /// one ring with exactly the members `ids`; returns the ring status of
    /// the first and how long the wait took.
    ///
    /// # Errors
    /// On timeout: what the nodes last said.
    pub fn wait_ring(
        &self,
        ids: &[u8],
        timeout: Duration,
    ) -> Result<(RingStatus, Duration), String> {
        let start = Instant::now();
        let mut watchers: Vec<Watcher> = ids
            .iter()
            .map(|&id| Watcher::new(self.node(id).socket()))
            .collect();
        let want: Vec<u32> = ids.iter().map(|&id| u32::from(id)).collect();
        loop {
            let statuses: Vec<Result<RingStatus, AisError>> =
                watchers.iter_mut().map(Watcher::status).collect();
            let formed = statuses.iter().all(|s| {
                s.as_ref().is_ok_and(|s| {
                    s.state == RingState::Operational
                        && s.sync_done
                        && s.members.iter().map(|m| m.id).collect::<Vec<_>>() == want
                })
            }) && statuses
                .windows(2)
                .all(|w| matches!((&w[0], &w[1]), (Ok(a), Ok(b)) if a.ring_id == b.ring_id));
            if formed {
                let first = statuses.into_iter().next().and_then(Result::ok);
                return Ok((first.expect("checked above"), start.elapsed()));
            }
            if start.elapsed() > timeout {
                let said: Vec<String> = ids
                    .iter()
                    .zip(&statuses)
                    .map(|(id, s)| match s {
                        Ok(s) => format!(
                            "node {id}: {} ring {}/{} members {:?} synced {}",
                            s.state.name(),
                            s.ring_id.seq,
                            s.ring_id.rep,
                            s.members.iter().map(|m| m.id).collect::<Vec<_>>(),
                            s.sync_done
                        ),
                        Err(e) => format!("node {id}: {}", e.c_name()),
                    })
                    .collect();
                return Err(format!(
                    "no ring of {want:?} after {timeout:?}: {}",
                    said.join("; ")
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Rewrites node `id`'s config with a nodelist of nodes `1..=listed`
    /// (takes effect at its next start or SIGHUP).
    ///
    /// # Panics
    /// If the file cannot be written.
    pub fn write_config(&self, id: u8, listed: u8) {
        let node = self.node(id);
        let text = self.spec.config_listing(id, &node.run_dir, listed);
        fs::write(&node.config, text).expect("config written");
    }

    /// Node `id`'s log so far.
    pub fn log(&self, id: u8) -> String {
        let mut text = String::new();
        if let Ok(mut f) = fs::File::open(&self.node(id).log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// Every node's log, for a failure message.
    pub fn logs(&self) -> String {
        (1..=self.spec.nodes)
            .map(|id| format!("--- node {id} ---\n{}", self.log(id)))
            .collect()
    }
}

impl Drop for LocalCluster {
    /// Kills (SIGKILL, by pid) and reaps every node still running.
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The ring status at `socket`, through a new connection.
///
/// # Errors
/// As the client's connect and request; a malformed answer is `LIBRARY`.
pub fn status_at(socket: &Path) -> Result<RingStatus, AisError> {
    let mut conn = connect(socket)?;
    request_status(&mut conn)
}

fn connect(socket: &Path) -> Result<Connection, AisError> {
    let mut config = ClientConfig::with_socket(socket);
    config.timeout = Duration::from_secs(2);
    Connection::connect_with(&config, ServiceId::Cfg, VERSION)
}

fn request_status(conn: &mut Connection) -> Result<RingStatus, AisError> {
    let body = conn.request(RING_STATUS, &[])?.into_result()?;
    RingStatus::decode(&body).map_err(|_| AisError::Library)
}

/// A status connection kept open across polls (reconnects when it broke).
struct Watcher {
    socket: PathBuf,
    conn: Option<Connection>,
}

impl Watcher {
    fn new(socket: PathBuf) -> Watcher {
        Watcher { socket, conn: None }
    }

    fn status(&mut self) -> Result<RingStatus, AisError> {
        if self.conn.is_none() {
            self.conn = Some(connect(&self.socket)?);
        }
        let conn = self.conn.as_mut().expect("set above");
        let result = request_status(conn);
        if result.is_err() {
            self.conn = None;
        }
        result
    }
}
