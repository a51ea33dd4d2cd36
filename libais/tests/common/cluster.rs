//! A small launcher of real `aisexec` daemons on loopback for the C client
//! tests (the same config shape as `testsuite::procs`, which libais cannot
//! depend on: testsuite depends on libais).
//!
//! Node i listens on 127.0.0.i, all nodes on one UDP port, with an explicit
//! nodeid i, its own run directory and IPC socket. Every process started
//! here is stopped here, by pid; whatever still runs when the cluster is
//! dropped is killed (SIGKILL) and reaped. The ring is sealed as in
//! production: each cluster writes a random key (mode 0400) that every
//! node's `keyfile` names.
//!
//! The daemon is `$AIS_BIN_DIR/aisexec`, else the one in this test's
//! target profile directory, else `target/release` or `target/debug`; when
//! none exists it is built (`cargo build -p aisexec`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ais::client::ClientConfig;
use ais::clm::Clm;

/// The directory holding `aisexec`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AIS_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf();
    let target = profile.parent().expect("target dir").to_path_buf();
    for dir in [
        profile.clone(),
        target.join("release"),
        target.join("debug"),
    ] {
        if dir.join("aisexec").is_file() {
            return dir;
        }
    }
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "-p", "aisexec", "--bin", "aisexec"])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile.ends_with("release") {
        cmd.arg("--release");
    }
    let ok = cmd.status().is_ok_and(|s| s.success());
    assert!(ok, "no aisexec binary and `cargo build -p aisexec` failed");
    profile
}

/// A UDP port for test `index` of this run (spread by pid; a range apart
/// from testsuite's).
pub fn test_port(index: u16) -> u16 {
    let slot = u16::try_from(std::process::id() % 400).unwrap_or(0);
    40_000 + slot * 16 + index
}

/// Writes 64 random bytes to `path` with mode 0400: a cluster's ring key.
fn write_random_key(path: &Path) {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let mut key = [0u8; 64];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .expect("random key");
    fs::write(path, key).expect("key written");
    fs::set_permissions(path, fs::Permissions::from_mode(0o400)).expect("key chmod");
}

/// One node.
#[derive(Debug)]
pub struct Node {
    pub id: u8,
    pub config: PathBuf,
    pub run_dir: PathBuf,
    pub log: PathBuf,
    /// Lines added to its `system { }` section.
    system_extra: String,
    child: Option<Child>,
}

impl Node {
    /// Its IPC socket.
    pub fn socket(&self) -> PathBuf {
        self.run_dir.join("aisexec.sock")
    }
}

/// Daemons in a temporary directory.
#[derive(Debug)]
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<Node>,
    pub port: u16,
    token_ms: u64,
    bin: PathBuf,
}

impl Cluster {
    /// Writes `n` configs (token `token_ms`); starts nothing.
    pub fn new(n: u8, port: u16, token_ms: u64) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("libais-cluster-")
            .tempdir()
            .expect("temporary directory");
        let mut nodes = Vec::new();
        for id in 1..=n {
            let run_dir = dir.path().join(format!("node{id}"));
            fs::create_dir_all(&run_dir).expect("run directory");
            nodes.push(Node {
                id,
                config: run_dir.join("aisexec.conf"),
                log: run_dir.join("aisexec.log"),
                run_dir,
                system_extra: String::new(),
                child: None,
            });
        }
        write_random_key(&dir.path().join("authkey"));
        let c = Cluster {
            dir,
            nodes,
            port,
            token_ms,
            bin: bin_dir(),
        };
        for id in 1..=n {
            c.write_config(id);
        }
        c
    }

    /// Adds `line` (`key: value`) to node `id`'s `system { }` section,
    /// for its next start.
    pub fn add_system_line(&mut self, id: u8, line: &str) {
        let node = &mut self.nodes[usize::from(id) - 1];
        node.system_extra.push_str(&format!("    {line}\n"));
        self.write_config(id);
    }

    /// Writes node `id`'s config file.
    fn write_config(&self, id: u8) {
        let mut nodelist = String::new();
        for j in 1..=self.nodes.len() {
            nodelist.push_str(&format!(
                "    node {{\n        ring0_addr: 127.0.0.{j}\n        nodeid: {j}\n        name: node{j}\n    }}\n"
            ));
        }
        let node = self.node(id);
        let text = format!(
            "totem {{\n    version: 2\n    nodeid: {id}\n    port: {port}\n    token: {token_ms}\n    keyfile: {key}\n}}\n\
             nodelist {{\n{nodelist}}}\n\
             system {{\n    run_dir: {run}\n{extra}}}\n\
             logging {{\n    to_stderr: yes\n    to_syslog: no\n    timestamp: on\n}}\n",
            port = self.port,
            token_ms = self.token_ms,
            run = node.run_dir.display(),
            key = self.dir.path().join("authkey").display(),
            extra = node.system_extra,
        );
        fs::write(&node.config, text).expect("config written");
    }

    /// Node `id` (1-based).
    pub fn node(&self, id: u8) -> &Node {
        &self.nodes[usize::from(id) - 1]
    }

    /// Starts node `id`, its stderr appended to its log.
    pub fn start(&mut self, id: u8) {
        let bin = self.bin.join("aisexec");
        let node = &mut self.nodes[usize::from(id) - 1];
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
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("aisexec spawned");
        node.child = Some(child);
    }

    /// Starts every node.
    pub fn start_all(&mut self) {
        for id in 1..=self.nodes.len() as u8 {
            self.start(id);
        }
    }

    /// SIGKILLs node `id` (by pid) and reaps it.
    pub fn kill9(&mut self, id: u8) {
        let node = &mut self.nodes[usize::from(id) - 1];
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until CLM on every node of `ids` reports exactly the members
    /// `ids` in one view; returns that view number.
    ///
    /// # Errors
    /// On timeout: what each node last said.
    pub fn wait_members(&self, ids: &[u8], timeout: Duration) -> Result<u64, String> {
        let start = Instant::now();
        let want: Vec<u32> = ids.iter().map(|&i| u32::from(i)).collect();
        loop {
            let mut said = Vec::new();
            let mut views = Vec::new();
            for &id in ids {
                match current_members(&self.node(id).socket()) {
                    Ok((view, members)) => {
                        if members == want {
                            views.push(view);
                        }
                        said.push(format!("node {id}: view {view} members {members:?}"));
                    }
                    Err(e) => said.push(format!("node {id}: {e}")),
                }
            }
            if views.len() == ids.len() && views.windows(2).all(|w| w[0] == w[1]) {
                return Ok(views[0]);
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "no view of {want:?} after {timeout:?}: {}",
                    said.join("; ")
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every node's log, for a failure message.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                format!(
                    "--- node {} ---\n{}",
                    n.id,
                    fs::read_to_string(&n.log).unwrap_or_default()
                )
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The CLM view and sorted member ids at `socket`, through the Rust layer.
pub fn current_members(socket: &Path) -> Result<(u64, Vec<u32>), String> {
    let mut config = ClientConfig::with_socket(socket);
    config.timeout = Duration::from_secs(2);
    let mut clm = Clm::connect_with(&config).map_err(|e| e.c_name().to_string())?;
    let reply = clm
        .track(ais::ffi::types::SA_TRACK_CURRENT, false)
        .map_err(|e| e.c_name().to_string())?
        .ok_or("no reply")?;
    let mut ids: Vec<u32> = reply
        .items
        .iter()
        .filter(|n| n.node.member)
        .map(|n| n.node.node_id)
        .collect();
    ids.sort_unstable();
    Ok((reply.view, ids))
}
