//! `ais-ckpt` against real daemons (issue #5, "Tool `ais-ckpt`"): a
//! checkpoint created and written through the tool on node 1 is listed and
//! dumped on nodes 2 and 3, the three store digests agree, errors are named
//! by their SA Forum code, and with no daemon the tool exits 2 (64 for a
//! command line that does not parse).
//!
//! The binaries come from [`bin_dir`] (`make test` builds the release
//! ones first); the cluster has its own UDP port ([`test_port`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use testsuite::procs::{bin_dir, test_port, ClusterSpec, LocalCluster};

/// Token timeout of the test cluster (short, so the test is quick).
const TOKEN_MS: u64 = 400;
/// How long fresh daemons may take to form a ring.
const FORM_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the replicas may take to agree after the last change (the
/// tool's close is answered on its own node first).
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(3);
/// This file's `test_port` index (daemon_cluster.rs uses 1 to 8).
const PORT_INDEX: u16 = 11;

fn ais_ckpt() -> PathBuf {
    let bin = bin_dir().join("ais-ckpt");
    assert!(
        bin.is_file(),
        "no {}: build the tools next to aisexec (`cargo build --release --workspace`, as make test does)",
        bin.display()
    );
    bin
}

/// Runs `ais-ckpt --socket SOCKET ARGS...`.
fn tool(socket: &Path, args: &[&str]) -> Output {
    Command::new(ais_ckpt())
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("AIS_SOCKET")
        .output()
        .expect("ais-ckpt runs")
}

/// Runs the tool and returns its standard output, which must be a success.
fn ok(socket: &Path, args: &[&str]) -> Vec<u8> {
    let out = tool(socket, args);
    assert!(
        out.status.success(),
        "ais-ckpt {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn ok_text(socket: &Path, args: &[&str]) -> String {
    String::from_utf8(ok(socket, args)).expect("text output is UTF-8")
}

/// The number after `"key":` in the tool's compact JSON.
fn json_number(json: &str, key: &str) -> u64 {
    let tag = format!("\"{key}\":");
    let at = json
        .find(&tag)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + tag.len();
    let digits: String = json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{key} is no number in {json}"))
}

#[test]
fn written_on_node_1_shown_on_2_and_3_with_equal_digests() {
    let mut c = LocalCluster::new(ClusterSpec::new(3, test_port(PORT_INDEX), TOKEN_MS));
    let started = Instant::now();
    c.start_all();
    c.wait_ring(&[1, 2, 3], FORM_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
    let sockets: Vec<PathBuf> = (1..=3).map(|id| c.node(id).socket()).collect();
    let one = &sockets[0];

    // On node 1: a checkpoint, a text section and a binary one (from a
    // file), and a partial write at an offset.
    let text = ok_text(
        one,
        &[
            "create",
            "demo",
            "--max-sections",
            "4",
            "--max-section-size",
            "1024",
            "--max-section-id-size",
            "16",
        ],
    );
    assert!(text.contains("WR_ALL_REPLICAS, 4 section(s)"), "{text}");
    let text = ok_text(one, &["write", "demo", "s1", "hello from node 1"]);
    assert!(text.contains("created section \"s1\""), "{text}");
    let binary: Vec<u8> = (0..=255).collect();
    let file = c.dir().join("binary");
    std::fs::write(&file, &binary).expect("data file");
    let file_arg = file.to_str().expect("UTF-8 path");
    ok(one, &["write", "demo", "bin", "--file", file_arg]);
    let text = ok_text(one, &["write", "demo", "s1", "HELLO", "--offset", "0"]);
    assert!(text.contains("wrote 5 bytes at offset 0"), "{text}");

    for (i, socket) in sockets.iter().enumerate().skip(1) {
        let node = i + 1;
        let list = ok_text(socket, &["list"]);
        assert!(
            list.starts_with(&format!("Node {node}: 1 checkpoint(s)")),
            "{list}"
        );
        for line in [
            "\"demo\"",
            "state             closed by all; retained forever",
            "openers           0",
            "sections          2 of at most 4",
            "bytes used        273 of at most 4096",
            "flags             WR_ALL_REPLICAS",
            "max section size  1024",
            "max section id    16 bytes",
        ] {
            assert!(list.contains(line), "node {node}: no `{line}` in\n{list}");
        }
        let json = ok_text(socket, &["list", "--json"]);
        assert!(json.contains("\"name\":\"demo\""), "{json}");
        assert!(json.contains("\"retention_forever\":true"), "{json}");
        assert_eq!(json_number(&json, "data_bytes"), 273, "{json}");

        let raw = ok(socket, &["dump", "demo", "--section", "s1", "--raw"]);
        assert_eq!(raw, b"HELLO from node 1", "node {node}");
        let raw = ok(socket, &["dump", "demo", "--section", "bin", "--raw"]);
        assert_eq!(raw, binary, "node {node}");
        let hex = ok_text(socket, &["dump", "demo", "--section", "s1"]);
        assert!(
            hex.contains(
                "00000000  48 45 4c 4c 4f 20 66 72  6f 6d 20 6e 6f 64 65 20  |HELLO from node |"
            ),
            "{hex}"
        );
        let all = ok_text(socket, &["dump", "demo", "--all"]);
        assert!(
            all.starts_with("checkpoint \"demo\": 2 section(s)"),
            "{all}"
        );
        assert!(
            all.contains("section \"bin\" of \"demo\": 256 bytes, expires never, valid"),
            "{all}"
        );
        assert!(
            all.contains("section \"s1\" of \"demo\": 17 bytes"),
            "{all}"
        );
    }

    // Every replica ends identical: one digest on all three nodes (the
    // dumps' closes may still be on their way when the tool returns).
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    let digests = loop {
        let outs: Vec<String> = sockets
            .iter()
            .map(|s| ok_text(s, &["digest", "--json"]))
            .collect();
        let digests: Vec<u64> = outs.iter().map(|o| json_number(o, "digest")).collect();
        if digests.windows(2).all(|w| w[0] == w[1]) {
            for o in &outs {
                assert!(o.contains("\"synced\":true"), "{o}");
                assert_eq!(json_number(o, "checkpoints"), 1, "{o}");
                assert_eq!(json_number(o, "sections"), 2, "{o}");
                assert_eq!(json_number(o, "data_bytes"), 273, "{o}");
            }
            break digests;
        }
        assert!(Instant::now() < deadline, "digests differ: {outs:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = ok_text(&sockets[2], &["digest"]);
    assert!(
        text.contains(&format!("Digest        {:#010x}", digests[0])),
        "{text}"
    );
    assert!(text.contains("Node          3"), "{text}");

    // Errors are named: no such checkpoint; other attributes; a default
    // section this checkpoint does not have.
    for (args, code) in [
        (&["dump", "nope"][..], "SA_AIS_ERR_NOT_EXIST"),
        (
            &["create", "demo", "--max-sections", "5"][..],
            "SA_AIS_ERR_EXIST",
        ),
        (&["dump", "demo"][..], "SA_AIS_ERR_NOT_EXIST"),
    ] {
        let out = tool(&sockets[1], args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(code), "{args:?}: {err}");
    }

    // Unlinked (closed by all): gone from every node.
    ok(one, &["unlink", "demo"]);
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    for socket in &sockets {
        while !ok_text(socket, &["list"]).contains("0 checkpoint(s)") {
            assert!(Instant::now() < deadline, "{}", ok_text(socket, &["list"]));
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    println!("ais-ckpt on a 3-node cluster: {:?}", started.elapsed());
}

#[test]
fn no_daemon_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("aisexec.sock");
    for args in [&["list"][..], &["digest", "--json"], &["dump", "demo"]] {
        let out = tool(&socket, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("aisexec is not running"), "{err}");
        assert!(err.contains(&socket.display().to_string()), "{err}");
        assert!(out.stdout.is_empty());
    }
    // A command line that does not parse is not "not running".
    let out = tool(&socket, &["list", "--bogus"]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
}
