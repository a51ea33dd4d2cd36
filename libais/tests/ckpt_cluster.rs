//! `saCkpt.h` against real `aisexec` daemons on loopback (issue #5, "Must
//! show"), through `ctest/ckpt_api.c` built against the staged header and
//! `libais.so`:
//! - without an executive: versions, NULL pointers, TRY_AGAIN, and every
//!   function with a stale and a garbage handle;
//! - on a 3-node cluster whose node 3 has a 2 MiB checkpoint memory limit
//!   (`system { ckpt_memory_limit }`): every function and its error codes
//!   (under valgrind when installed: no memory error, no leak of what the
//!   library hands out), iteration over 60 sections with every
//!   SA_CKPT_SECTIONS_* filter, async open and synchronize callbacks,
//!   unlink while open; retention expiry and section expiration seen on
//!   every node; an ALL_REPLICAS write that node 3 cannot hold refused on
//!   every node; a checkpoint written on node 1 read on nodes 2 and 3, node
//!   1 killed with -9 (its client's calls then fail with
//!   SA_AIS_ERR_LIBRARY), the data intact on nodes 2 and 3, node 1
//!   restarted, and every replica's digest (STORE_STATUS, through the Rust
//!   client) equal.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ais::ckpt::Ckpt;
use ais::client::ClientConfig;
use common::build_c;
use common::cluster::{test_port, Cluster};
use common::procs::{assert_all_passed, checked_client, client, run_ok, Lines};
use proto::ckpt::StoreStatus;

/// Token timeout of the test cluster.
const TOKEN_MS: u64 = 1000;
/// How long a (re)forming cluster may take.
const FORM_TIMEOUT: Duration = Duration::from_secs(20);
/// Node 3's checkpoint memory limit.
const NODE3_LIMIT_BYTES: u64 = 2 << 20;
/// The checkpoint names' prefix.
const P: &str = "t";

fn formed(c: &Cluster, ids: &[u8]) -> u64 {
    c.wait_members(ids, FORM_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()))
}

/// `ckpt_api args...` against node `id`.
fn ckpt_api(prog: &Path, c: &Cluster, id: u8, args: &[&str]) -> Command {
    let mut cmd = client(prog, &c.node(id).socket());
    cmd.args(args);
    cmd
}

/// Runs `ckpt_api args...` on node `id`; it must pass every check.
fn passes(prog: &Path, c: &Cluster, id: u8, args: &[&str]) -> String {
    let out = run_ok(ckpt_api(prog, c, id, args), Duration::from_secs(60));
    assert_all_passed(&out);
    out
}

fn connect(c: &Cluster, id: u8) -> Result<Ckpt, proto::AisError> {
    let mut config = ClientConfig::with_socket(c.node(id).socket());
    config.timeout = Duration::from_secs(2);
    Ckpt::connect_with(&config)
}

/// Node `id`'s store status.
fn store_status(c: &Cluster, id: u8) -> Result<StoreStatus, String> {
    connect(c, id)
        .and_then(|mut k| k.store_status())
        .map_err(|e| format!("node {id}: {}", e.c_name()))
}

/// Waits until every node of `ids` is synchronized and reports the same
/// replica digest; returns the first node's status.
fn equal_digests(c: &Cluster, ids: &[u8], timeout: Duration) -> StoreStatus {
    let start = Instant::now();
    loop {
        let statuses: Vec<Result<StoreStatus, String>> =
            ids.iter().map(|&id| store_status(c, id)).collect();
        let digests: Vec<Option<u32>> = statuses
            .iter()
            .map(|s| s.as_ref().ok().filter(|s| s.synced).map(|s| s.digest))
            .collect();
        if let (Some(Some(d)), Some(Ok(first))) = (digests.first(), statuses.first()) {
            if digests.iter().all(|x| *x == Some(*d)) {
                return *first;
            }
        }
        assert!(
            start.elapsed() < timeout,
            "replicas differ after {timeout:?}: {statuses:#?}\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a node says of a checkpoint: its number of sections, `None` if it
/// is not there; or why the node could not say.
type Sections = Result<Option<u32>, String>;

/// The number of sections of checkpoint `name` on node `id`.
fn sections_of(c: &Cluster, id: u8, name: &str) -> Sections {
    let mut k = connect(c, id).map_err(|e| e.c_name().to_string())?;
    let list = k.list(None).map_err(|e| e.c_name().to_string())?;
    assert!(!list.more, "a few checkpoints fit one listing");
    Ok(list
        .entries
        .iter()
        .find(|e| e.linked && e.name == name.as_bytes())
        .map(|e| e.sections))
}

#[test]
fn without_an_executive_initialize_is_try_again_and_handles_are_checked() {
    let prog = build_c("ckpt_api.c", &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = client(&prog, &dir.path().join("no-daemon.sock"));
    cmd.arg("nodaemon");
    let out = run_ok(cmd, Duration::from_secs(30));
    assert_all_passed(&out);
    // Every function but initialize, with a stale and a garbage handle.
    assert_eq!(out.matches("with SA_HANDLE_INVALID handle").count(), 21);
    assert_eq!(out.matches("with garbage handle").count(), 21);
}

#[test]
fn checkpoints_on_three_nodes_survive_the_writers_crash_and_resync() {
    let prog = build_c("ckpt_api.c", &[]);
    let mut c = Cluster::new(3, test_port(6), TOKEN_MS);
    c.add_system_line(3, &format!("ckpt_memory_limit: {NODE3_LIMIT_BYTES}"));
    c.start_all();
    formed(&c, &[1, 2, 3]);
    let started = Instant::now();
    let limits: Vec<u64> = [1, 3]
        .iter()
        .map(|&id| {
            store_status(&c, id)
                .expect("store status")
                .memory_limit_bytes
        })
        .collect();
    assert_eq!(
        limits[1], NODE3_LIMIT_BYTES,
        "the config key reached node 3"
    );
    assert!(limits[0] > NODE3_LIMIT_BYTES, "node 1 has the default");

    // Retention and section expiration start now, are checked later.
    passes(&prog, &c, 3, &["expiry", P]);
    let expiry_set = Instant::now();

    // Every function, under valgrind when installed.
    let mut walk = checked_client(&prog, &c.node(2).socket());
    walk.args(["walk", P]);
    let out = run_ok(walk, Duration::from_secs(240));
    assert_all_passed(&out);
    println!(
        "walk: {} checks passed on node 2 after {:?}",
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        started.elapsed()
    );

    // Expiry is an ordered event: every replica deletes alike.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state: Vec<(Sections, Sections)> = (1..=3)
            .map(|id| {
                (
                    sections_of(&c, id, &format!("{P}-ret")),
                    sections_of(&c, id, &format!("{P}-exp")),
                )
            })
            .collect();
        if state.iter().all(|s| s == &(Ok(None), Ok(Some(2)))) {
            break;
        }
        assert!(Instant::now() < deadline, "no expiry everywhere: {state:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("expired everywhere {:?} after set-up", expiry_set.elapsed());
    passes(&prog, &c, 1, &["expired", P]);
    passes(&prog, &c, 2, &["expired", P, "unlink"]);

    // A write on node 1, read on nodes 2 and 3.
    let mut writer = Lines::spawn(ckpt_api(&prog, &c, 1, &["writer", P]));
    writer.until(Duration::from_secs(30), |l| l == "ready");
    passes(&prog, &c, 2, &["reader", P]);
    passes(&prog, &c, 3, &["reader", P]);

    // ALL_REPLICAS: node 3 cannot hold a write, so no node applies it.
    passes(&prog, &c, 2, &["rollback", P]);
    passes(&prog, &c, 1, &["rollback-check", P]);
    passes(&prog, &c, 3, &["rollback-check", P, "unlink"]);
    let before = equal_digests(&c, &[1, 2, 3], Duration::from_secs(10));
    println!(
        "digest {:#010x} on every node before the crash",
        before.digest
    );

    // The writer's node dies: its client sees ERR_LIBRARY, the data lives.
    c.kill9(1);
    writer.stdin().write_all(b"go\n").expect("go");
    assert!(writer.wait(Duration::from_secs(30)), "{:?}", writer.seen);
    assert!(
        writer.seen.iter().any(|l| l == "all passed"),
        "{:?}",
        writer.seen
    );
    formed(&c, &[2, 3]);
    passes(&prog, &c, 2, &["reader", P]);
    passes(&prog, &c, 3, &["reader", P]);
    let survivors = equal_digests(&c, &[2, 3], Duration::from_secs(10));
    // (The digests differ from `before`: the opens node 1 held were
    // dropped, which the replicas record.)
    let content = |s: &StoreStatus| (s.checkpoints, s.sections, s.data_bytes);
    assert_eq!(content(&survivors), content(&before), "nothing lost");

    // It comes back empty and the sync gives it every checkpoint.
    c.start(1);
    formed(&c, &[1, 2, 3]);
    let after = equal_digests(&c, &[1, 2, 3], Duration::from_secs(20));
    assert_eq!(content(&after), content(&before), "node 1 got everything");
    passes(&prog, &c, 1, &["reader", P]);
    println!(
        "digest {:#010x} on every node after the restart; the scenario took {:?} \
         after the cluster formed",
        after.digest,
        started.elapsed()
    );
}
