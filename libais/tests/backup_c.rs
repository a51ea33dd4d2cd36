//! `ais_backup.h` against real `aisexec` daemons on loopback, through
//! `ctest/backup_api.c` built against the staged header and `libais.so`:
//! - without an executive: versions, NULL pointers, TRY_AGAIN, the free
//!   functions with NULL, and every function with a stale and a garbage
//!   handle;
//! - on a 3-node cluster, under valgrind's memcheck when it is installed
//!   (no memory error, no definite leak of what the library hands out): a
//!   backup of every checkpoint with its completion callback, status and
//!   list; verify; restore refused over existing checkpoints, then done with
//!   overwrite and the data read back; a flipped byte and a truncated data
//!   file found by verify, and a restore of the damaged backup refused.

mod common;

use std::time::Duration;

use common::build_c;
use common::cluster::{test_port, Cluster};
use common::procs::{assert_all_passed, checked_client, client, run_ok};

/// Token timeout of the test cluster.
const TOKEN_MS: u64 = 1000;

#[test]
fn without_an_executive_initialize_is_try_again_and_handles_are_checked() {
    let prog = build_c("backup_api.c", &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = client(&prog, &dir.path().join("no-daemon.sock"));
    cmd.arg("nodaemon");
    let out = run_ok(cmd, Duration::from_secs(30));
    assert_all_passed(&out);
    // Every function but initialize, with a stale and a garbage handle.
    assert_eq!(out.matches("with SA_HANDLE_INVALID handle").count(), 8);
    assert_eq!(out.matches("with garbage handle").count(), 8);
}

#[test]
fn backup_verify_and_restore_through_the_c_api_on_three_nodes() {
    let prog = build_c("backup_api.c", &[]);
    let mut c = Cluster::new(3, test_port(7), TOKEN_MS);
    c.start_all();
    c.wait_members(&[1, 2, 3], Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
    let dest = tempfile::tempdir().expect("destination");
    let mut cmd = checked_client(&prog, &c.node(1).socket());
    cmd.arg("run").arg(dest.path()).arg("capi");
    let out = run_ok(cmd, Duration::from_secs(180));
    assert_all_passed(&out);
    // The checks that prove the round trip ran, not just that it ended.
    for check in [
        "ok the backup succeeded",
        "ok verify: every file good",
        "ok restore over existing checkpoints refused",
        "ok restore report: 3 restored, 2 replaced",
        "ok verify finds the flip",
        "ok verify finds the truncation",
        "ok restore refuses a backup that does not verify",
    ] {
        assert!(out.contains(check), "{check} missing:\n{out}");
    }
    assert_eq!(out.matches("ok restored section has its bytes").count(), 12);
}
