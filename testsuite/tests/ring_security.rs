//! Ring security and IPC access control against real `aisexec` daemons on
//! loopback (issue #8, "Must show"):
//!
//! - two nodes with different keys never form a ring, and count the
//!   packets they cannot authenticate; given the same key they do;
//! - a real sealed packet with any one bit flipped is dropped and counted
//!   (`ais-ring-status --json` shows it), and Totem never sees it;
//! - the two-step rekey by SIGHUP keeps the ring;
//! - a client running as an unauthorised uid is refused with
//!   SA_AIS_ERR_ACCESS and the refusal is logged (needs root to run a
//!   process as another uid; skipped with a printed reason otherwise).
//!
//! Each test runs its own cluster on its own UDP port and stops every
//! process it started, by pid.

use std::fs;
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use proto::status::{RingState, RingStatus};
use testsuite::procs::{bin_dir, random_key, test_port, write_key, ClusterSpec, LocalCluster};

/// Token timeout of the test clusters.
const TOKEN_MS: u64 = 400;
/// How long a cluster of fresh daemons may take to form.
const FORM_TIMEOUT: Duration = Duration::from_secs(15);

fn formed(cluster: &LocalCluster, ids: &[u8]) -> RingStatus {
    cluster
        .wait_ring(ids, FORM_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()))
        .0
}

fn status(cluster: &LocalCluster, id: u8) -> RingStatus {
    cluster
        .status(id)
        .unwrap_or_else(|e| panic!("node {id}: {}\n{}", e.c_name(), cluster.logs()))
}

fn counter(s: &RingStatus, name: &str) -> u64 {
    s.counter(name)
        .unwrap_or_else(|| panic!("no counter {name} in {:?}", s.counters))
}

#[test]
fn nodes_with_different_keys_never_form_a_ring() {
    let mut c = LocalCluster::new(ClusterSpec::new(2, test_port(20), TOKEN_MS));
    write_key(&c.key_path(2, false), &random_key());
    c.start_all();
    // Each forms a ring of its own...
    formed(&c, &[1]);
    formed(&c, &[2]);
    let first: Vec<u64> = (1..=2)
        .map(|id| counter(&status(&c, id), "crypto_auth_failures"))
        .collect();
    // ...and stays alone for many token timeouts.
    let watch = Duration::from_millis(TOKEN_MS * 10);
    let start = Instant::now();
    while start.elapsed() < watch {
        for id in 1..=2 {
            let s = status(&c, id);
            assert_eq!(
                s.members.iter().map(|m| m.id).collect::<Vec<_>>(),
                [u32::from(id)],
                "node {id} with another key joined a ring\n{}",
                c.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for id in 1..=2 {
        let s = status(&c, id);
        let failures = counter(&s, "crypto_auth_failures");
        assert!(
            failures > first[usize::from(id) - 1],
            "node {id}: the other's packets are counted as they keep coming ({first:?} -> {failures})"
        );
        assert!(counter(&s, "crypto_sealed") > 0, "it seals what it sends");
        assert_eq!(
            counter(&s, "crypto_opened"),
            0,
            "and opens nothing of the other's"
        );
        assert_eq!(counter(&s, "dropped_malformed"), 0, "Totem never saw them");
        println!("node {id}: {failures} packets failed authentication, alone in its ring");
    }
    // The same key (one-step rekey of node 2 by SIGHUP): one ring.
    write_key(&c.key_path(2, false), c.key());
    c.signal(2, Signal::SIGHUP);
    let s = formed(&c, &[1, 2]);
    println!("with the same key: ring {:?}", s.ring_id);
    assert_eq!(counter(&status(&c, 2), "crypto_rekeys"), 1);
}

/// Flips bit `bit` of `packet`.
fn flipped(packet: &[u8], bit: usize) -> Vec<u8> {
    let mut p = packet.to_vec();
    p[bit / 8] ^= 1 << (bit % 8);
    p
}

/// Waits until node `id`'s counters `names` reach at least `want`; returns
/// them.
fn wait_counters(c: &LocalCluster, id: u8, names: &[&str], want: &[u64]) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = status(c, id);
        let got: Vec<u64> = names.iter().map(|n| counter(&s, n)).collect();
        if got.iter().zip(want).all(|(g, w)| g >= w) || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `"name":value` of `ais-ring-status --json`'s counters.
fn json_counter(json: &str, name: &str) -> Option<u64> {
    let at = json.find(&format!("\"{name}\":"))? + name.len() + 3;
    let digits: String = json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[test]
fn a_flipped_bit_anywhere_is_dropped_and_counted() {
    let mut c = LocalCluster::new(ClusterSpec::new(2, test_port(21), TOKEN_MS));
    let port = c.spec.port;
    // Node 2's address, with no node 2 behind it: node 1 sends it real
    // sealed packets (joins, presence), and what it sends from here comes
    // from a configured member's address.
    let member = UdpSocket::bind(("127.0.0.2", port)).expect("bind 127.0.0.2");
    member
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.start(1);
    let before = formed(&c, &[1]);
    let mut buf = [0u8; 65_536];
    let (len, from) = member.recv_from(&mut buf).expect("a packet from node 1");
    assert_eq!(from.to_string(), format!("127.0.0.1:{port}"));
    let captured = buf[..len].to_vec();
    assert_eq!(&captured[..2], b"AE", "sealed, not a plain Totem packet");
    println!("captured a {len}-byte sealed packet of node 1");

    let names = [
        "crypto_auth_failures",
        "crypto_bad_envelope",
        "crypto_sender_mismatch",
        "dropped_malformed",
    ];
    let start = wait_counters(&c, 1, &names, &[0, 0, 0, 0]);
    let node1 = format!("127.0.0.1:{port}");
    // Every bit of the packet, one at a time, in batches the daemon's
    // socket buffer surely holds; each batch is counted before the next.
    let bits = len * 8;
    let mut sent = 0;
    for batch in (0..bits).collect::<Vec<_>>().chunks(64) {
        for &bit in batch {
            member
                .send_to(&flipped(&captured, bit), &node1)
                .expect("send");
        }
        sent += batch.len();
        // Flips in the magic, version and cipher bytes (bits 0..32) are
        // not sealed datagrams of ours; every other flip fails the tag.
        let bad_envelope = sent.min(32) as u64;
        let auth = (sent - sent.min(32)) as u64;
        let got = wait_counters(
            &c,
            1,
            &names[..2],
            &[start[0] + auth, start[1] + bad_envelope],
        );
        assert_eq!(
            got,
            [start[0] + auth, start[1] + bad_envelope],
            "after {sent} flipped packets\n{}",
            c.logs()
        );
    }
    // The packet itself is authentic, but node 1's, from node 2's address.
    member.send_to(&captured, &node1).expect("send");
    // And a plain Totem-looking packet.
    member.send_to(b"TM\x01\x05 plain", &node1).expect("send");
    let end = wait_counters(
        &c,
        1,
        &names,
        &[
            start[0] + bits as u64 - 32,
            start[1] + 33,
            start[2] + 1,
            start[3],
        ],
    );
    assert_eq!(
        end,
        [
            start[0] + bits as u64 - 32,
            start[1] + 33,
            start[2] + 1,
            start[3]
        ],
        "{}",
        c.logs()
    );
    let after = status(&c, 1);
    assert_eq!(after.ring_id, before.ring_id, "the ring did not change");
    assert_eq!(after.state, RingState::Operational);
    assert_eq!(
        counter(&after, "dropped_malformed"),
        0,
        "Totem parsed none of them"
    );

    // ais-ring-status shows the counters, for scripts too.
    let out = Command::new(bin_dir().join("ais-ring-status"))
        .arg("--json")
        .arg("--socket")
        .arg(c.node(1).socket())
        .output()
        .expect("ais-ring-status runs");
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{json}");
    assert_eq!(
        json_counter(&json, "crypto_auth_failures"),
        Some(end[0]),
        "{json}"
    );
    assert_eq!(
        json_counter(&json, "crypto_bad_envelope"),
        Some(end[1]),
        "{json}"
    );
    println!(
        "{bits} single-bit flips of a {len}-byte packet: {} failed authentication, {} bad envelopes; ring unchanged",
        end[0] - start[0],
        end[1] - start[1] - 1
    );
}

/// Waits until node `id`'s log has `n` lines containing `what`.
fn wait_log(c: &LocalCluster, id: u8, what: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.log(id).matches(what).count() < n {
        assert!(
            Instant::now() < deadline,
            "node {id}: no {n} x `{what}` in its log\n{}",
            c.log(id)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_step_rekey_by_sighup_keeps_the_ring() {
    let mut c = LocalCluster::new(ClusterSpec::new(3, test_port(22), TOKEN_MS));
    c.start_all();
    let ring = formed(&c, &[1, 2, 3]).ring_id;
    let new_key = random_key();
    let same_ring = |c: &LocalCluster, when: &str| {
        for id in 1..=3 {
            let s = status(c, id);
            assert_eq!(
                s.ring_id,
                ring,
                "node {id} {when}: the ring changed\n{}",
                c.logs()
            );
            assert_eq!(s.members.len(), 3, "node {id} {when}");
            assert_eq!(counter(&s, "crypto_auth_failures"), 0, "node {id} {when}");
        }
    };
    // Step 1: the new key beside the old one, SIGHUP everywhere: opened,
    // not used to seal.
    for id in 1..=3 {
        write_key(&c.key_path(id, true), &new_key);
        c.signal(id, Signal::SIGHUP);
        wait_log(&c, id, "opens from now on", 1);
    }
    std::thread::sleep(Duration::from_millis(TOKEN_MS * 3));
    same_ring(&c, "after step 1");
    for id in 1..=3 {
        assert_eq!(counter(&status(&c, id), "crypto_opened_other_key"), 0);
    }
    // Step 2, one node at a time, each for several token timeouts: the
    // switched node seals with the new key, the others still with the old.
    for id in 1..=3 {
        write_key(&c.key_path(id, false), &new_key);
        fs::remove_file(c.key_path(id, true)).expect("remove .next");
        c.signal(id, Signal::SIGHUP);
        wait_log(&c, id, "sealing with the new key", 1);
        std::thread::sleep(Duration::from_millis(TOKEN_MS * 3));
        same_ring(&c, &format!("after step 2 on node {id}"));
        assert_eq!(counter(&status(&c, id), "crypto_rekeys"), 1);
    }
    let mixed: Vec<u64> = (1..=3)
        .map(|id| counter(&status(&c, id), "crypto_opened_other_key"))
        .collect();
    assert!(
        mixed.iter().all(|&n| n > 0),
        "both keys were in use meanwhile: {mixed:?}"
    );
    // Everyone seals with the new key now: the other keys open nothing more.
    std::thread::sleep(Duration::from_millis(TOKEN_MS * 3));
    let settled: Vec<u64> = (1..=3)
        .map(|id| counter(&status(&c, id), "crypto_opened_other_key"))
        .collect();
    assert_eq!(settled, mixed, "only the new key is in use");
    same_ring(&c, "at the end");
    // A node that starts with only the new key joins them.
    c.signal(3, Signal::SIGTERM);
    c.wait_exit(3, Duration::from_secs(10))
        .expect("node 3 exits");
    formed(&c, &[1, 2]);
    c.start(3);
    formed(&c, &[1, 2, 3]);
    println!(
        "rekeyed 3 nodes without a membership change (ring {ring:?}); other-key opens {mixed:?}"
    );
}

#[test]
fn unauthorised_uid_is_refused_with_access() {
    if !nix::unistd::geteuid().is_root() {
        println!(
            "skipped: running a client as another uid needs root (this test runs as uid {})",
            nix::unistd::geteuid()
        );
        return;
    }
    const NOBODY: u32 = 65534;
    const OTHER_GID: u32 = 65533;
    let mut spec = ClusterSpec::new(1, test_port(23), TOKEN_MS);
    // The file system lets anyone reach the socket: SO_PEERCRED decides.
    spec.system_extra = "    ipc_socket_mode: 0777\n".to_owned();
    let mut c = LocalCluster::new(spec);
    // Directories under /tmp that uid 65534 may traverse, and a copy of
    // the client it may execute.
    for dir in [c.dir().to_path_buf(), c.node(1).run_dir.clone()] {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let bin = tempfile::Builder::new()
        .prefix("ais-bin-")
        .tempdir()
        .expect("dir");
    fs::set_permissions(bin.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let client = bin.path().join("ais-ring-status");
    fs::copy(bin_dir().join("ais-ring-status"), &client).expect("copy");
    fs::set_permissions(&client, fs::Permissions::from_mode(0o755)).expect("chmod");
    let socket = c.node(1).socket();
    let run_as = |uid: u32, gid: u32| {
        let out = Command::new(&client)
            .arg("--socket")
            .arg(&socket)
            .uid(uid)
            .gid(gid)
            .env_remove("AIS_SOCKET")
            .output()
            .expect("client runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    c.start(1);
    formed(&c, &[1]);
    let (code, stderr) = run_as(NOBODY, NOBODY);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("SA_AIS_ERR_ACCESS"), "{stderr}");
    wait_log(&c, 1, "refused connection from pid", 1);
    assert!(
        c.log(1).contains(&format!("uid {NOBODY} gid {NOBODY}")),
        "{}",
        c.log(1)
    );
    println!("uid {NOBODY} refused: {}", stderr.trim());

    // Admitted once the config lists it, by uid or by gid.
    c.signal(1, Signal::SIGTERM);
    c.wait_exit(1, Duration::from_secs(10)).expect("exits");
    c.spec.sections_extra =
        format!("uidgid {{\n    uid: {NOBODY}\n}}\nuidgid {{\n    gid: {OTHER_GID}\n}}\n");
    c.write_config(1, 1);
    c.start(1);
    formed(&c, &[1]);
    let (code, stderr) = run_as(NOBODY, NOBODY);
    assert_eq!(code, Some(0), "uid in uidgid: {stderr}");
    let (code, stderr) = run_as(NOBODY - 2, OTHER_GID);
    assert_eq!(code, Some(0), "gid in uidgid: {stderr}");
    let (code, stderr) = run_as(NOBODY - 2, NOBODY - 2);
    assert_eq!(code, Some(1), "neither: {stderr}");
    assert!(stderr.contains("SA_AIS_ERR_ACCESS"), "{stderr}");
    // A supplementary group in the list admits too (setpriv sets one).
    if let Ok(out) = Command::new("setpriv")
        .arg(format!("--reuid={}", NOBODY - 2))
        .arg(format!("--regid={}", NOBODY - 2))
        .arg(format!("--groups={OTHER_GID}"))
        .arg(&client)
        .arg("--socket")
        .arg(&socket)
        .output()
    {
        assert!(
            out.status.success(),
            "supplementary gid {OTHER_GID}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!("a supplementary group in uidgid admits");
    } else {
        println!("setpriv not installed: supplementary groups checked by the unit tests only");
    }
}

#[test]
fn without_a_key_aisexec_refuses_unless_secauth_is_off() {
    let dir = tempfile::tempdir().expect("temp dir");
    let aisexec = bin_dir().join("aisexec");
    let mut spec = ClusterSpec::new(1, test_port(24), TOKEN_MS);
    let run = |spec: &ClusterSpec, name: &str, test_only: bool| {
        let path = dir.path().join(name);
        fs::write(&path, spec.config(1, dir.path())).expect("config");
        Command::new(&aisexec)
            .arg(if test_only { "-t" } else { "-f" })
            .arg("-c")
            .arg(&path)
            .env_remove("NOTIFY_SOCKET")
            .output()
            .expect("aisexec runs")
    };
    // secauth is on by default; the config names a key that is not there.
    let out = run(&spec, "nokey.conf", false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let key = dir.path().join(testsuite::procs::KEY_FILE);
    assert!(
        stderr.contains(&format!("no ring key at {}", key.display()))
            && stderr.contains("ais-keygen"),
        "{stderr}"
    );
    // A key others may read is refused too.
    write_key(&key, &random_key());
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = run(&spec, "exposed.conf", true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("chmod 0400"), "{stderr}");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o400)).expect("chmod");
    let out = run(&spec, "key.conf", true);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("AES-256-GCM"), "{stdout}");
    // secauth: off, said plainly: it starts, with a warning.
    spec.secauth = false;
    let out = run(&spec, "off.conf", true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("secauth: off: ring packets are neither encrypted nor authenticated"),
        "{stderr}"
    );
    println!("no key: {}", stderr.lines().next().unwrap_or(""));
}
