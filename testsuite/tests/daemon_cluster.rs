//! Real `aisexec` daemons on loopback (issue #3, "Must show"): a ring
//! forms; kill -9 of one and the others reform within token + consensus +
//! 500 ms; it comes back; SIGTERM and the others reform in under 500 ms; a
//! client that writes garbage costs only its own connection; a config typo
//! stops aisexec with file:line.
//!
//! Each test runs its own cluster on its own UDP port (tests run in
//! parallel) and stops every process it started, by pid. The measured times
//! are printed (`cargo test -- --nocapture` shows them).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use testsuite::procs::{bin_dir, status_at, test_port, ClusterSpec, LocalCluster};

/// Token timeout of the test clusters (short, so the tests are quick; the
/// default 1000 ms is exercised by `make run`). `AIS_TEST_TOKEN_MS`
/// overrides it for the kill -9 and SIGTERM measurements.
const TOKEN_MS: u64 = 400;

fn token_ms() -> u64 {
    std::env::var("AIS_TEST_TOKEN_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(TOKEN_MS)
}

/// How long a cluster of fresh daemons may take to form.
const FORM_TIMEOUT: Duration = Duration::from_secs(10);

fn formed(cluster: &LocalCluster, ids: &[u8]) -> (proto::status::RingStatus, Duration) {
    cluster
        .wait_ring(ids, FORM_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()))
}

#[test]
fn three_daemons_form_one_ring() {
    let mut c = LocalCluster::new(ClusterSpec::new(3, test_port(1), TOKEN_MS));
    let started = Instant::now();
    c.start_all();
    let (status, _) = formed(&c, &[1, 2, 3]);
    println!(
        "3 daemons formed ring {:?} in {:?}",
        status.ring_id,
        started.elapsed()
    );
    for id in 1..=3 {
        let s = c.status(id).expect("status");
        assert_eq!(s.node_id, u32::from(id));
        assert_eq!(s.ring_id, status.ring_id, "one ring id on every node");
        let addrs: Vec<&str> = s.members.iter().map(|m| m.addr.as_str()).collect();
        let port = c.spec.port;
        assert_eq!(
            addrs,
            [
                format!("127.0.0.1:{port}"),
                format!("127.0.0.2:{port}"),
                format!("127.0.0.3:{port}")
            ]
        );
        assert_eq!(s.members[id as usize - 1].name, format!("node{id}"));
    }
    // The tool agrees, in JSON.
    let out = Command::new(bin_dir().join("ais-ring-status"))
        .arg("--json")
        .arg("--socket")
        .arg(c.node(2).socket())
        .output()
        .expect("ais-ring-status runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"state\":\"operational\""), "{text}");
    assert!(
        text.contains(&format!("\"seq\":{}", status.ring_id.seq)),
        "{text}"
    );
}

#[test]
fn kill9_then_restart() {
    let spec = ClusterSpec::new(3, test_port(2), token_ms());
    let bound = Duration::from_millis(spec.token_ms + spec.consensus_ms() + 500);
    let mut c = LocalCluster::new(spec);
    c.start_all();
    let (before, _) = formed(&c, &[1, 2, 3]);

    let killed = c.kill9(3);
    let (after, _) = c
        .wait_ring(&[1, 2], bound * 4)
        .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
    let took = killed.elapsed();
    println!(
        "kill -9 of node 3: nodes 1 and 2 installed ring {:?} after {took:?} (bound token + consensus + 500 ms = {bound:?})",
        after.ring_id
    );
    assert!(after.ring_id.seq > before.ring_id.seq);
    assert!(
        took <= bound,
        "reformation took {took:?}, more than {bound:?}\n{}",
        c.logs()
    );

    c.start(3);
    let (again, took) = formed(&c, &[1, 2, 3]);
    println!(
        "node 3 restarted: 3-member ring {:?} after {took:?}",
        again.ring_id
    );
    assert!(again.ring_id.seq > after.ring_id.seq);
    // The restarted node read its persisted ring seq back.
    let log = c.log(3);
    let floor_line = log
        .lines()
        .filter(|l| l.contains("ring seq floor"))
        .nth(1)
        .unwrap_or_else(|| panic!("no second start line in\n{log}"));
    assert!(
        !floor_line.contains("ring seq floor 0;"),
        "restart forgot the ring seq: {floor_line}"
    );
}

#[test]
fn sigterm_leaves_cleanly() {
    let spec = ClusterSpec::new(3, test_port(3), token_ms());
    let mut c = LocalCluster::new(spec);
    c.start_all();
    formed(&c, &[1, 2, 3]);

    let sent = c.signal(3, Signal::SIGTERM);
    let (after, _) = c
        .wait_ring(&[1, 2], Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
    let took = sent.elapsed();
    let exit = c.wait_exit(3, Duration::from_secs(5));
    println!(
        "SIGTERM of node 3: nodes 1 and 2 installed ring {:?} after {took:?}; node 3 exited {exit:?}",
        after.ring_id
    );
    assert!(
        exit.is_some_and(|s| s.success()),
        "exit {exit:?}\n{}",
        c.log(3)
    );
    assert!(
        took < Duration::from_millis(500),
        "reformation after SIGTERM took {took:?}\n{}",
        c.logs()
    );
    assert!(!c.node(3).socket().exists(), "the socket file is removed");
}

#[test]
fn garbage_client_is_dropped_and_others_are_served() {
    let mut c = LocalCluster::new(ClusterSpec::new(1, test_port(4), TOKEN_MS));
    c.start_all();
    formed(&c, &[1]);
    let socket = c.node(1).socket();

    // A client that sends a garbage header, one that sends a valid Hello
    // followed by garbage, and one that floods without reading.
    let mut garbage = UnixStream::connect(&socket).expect("connect");
    garbage.write_all(&[0xff; 64]).expect("write");
    let mut hello_then_garbage = UnixStream::connect(&socket).expect("connect");
    let hello = proto::Hello {
        service: proto::ServiceId::Cfg,
        version: proto::status::VERSION,
    };
    hello_then_garbage
        .write_all(&hello.encode())
        .expect("write");
    hello_then_garbage.write_all(&[0xa5; 100]).expect("write");
    for (name, mut s) in [
        ("garbage", garbage),
        ("hello then garbage", hello_then_garbage),
    ] {
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        let mut sink = Vec::new();
        // The daemon may answer the Hello, then it closes: read to EOF.
        let r = s.read_to_end(&mut sink);
        assert!(
            r.is_ok()
                || r.as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "{name}: the daemon closes the connection, got {r:?}"
        );
    }

    // The daemon keeps serving: a status client, and another after a
    // client that vanished mid-frame.
    let status = status_at(&socket).expect("served after garbage");
    assert_eq!(status.members.len(), 1);
    {
        let mut vanishing = UnixStream::connect(&socket).expect("connect");
        vanishing.write_all(&hello.encode()[..5]).expect("write");
    }
    let status = status_at(&socket).expect("served after a vanished client");
    assert!(status.counter("clients_accepted").unwrap_or(0) >= 2);
    assert!(c.node(1).pid().is_some());
    c.signal(1, Signal::SIGTERM);
    let exit = c.wait_exit(1, Duration::from_secs(5));
    assert!(exit.is_some_and(|s| s.success()), "{exit:?}\n{}", c.log(1));
}

#[test]
fn sighup_reloads_and_sigusr2_dumps() {
    let mut c = LocalCluster::new(ClusterSpec::new(1, test_port(5), TOKEN_MS));
    c.start_all();
    formed(&c, &[1]);
    c.signal(1, Signal::SIGUSR2);
    c.signal(1, Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(c.log(1).contains("reloaded: applied") && c.log(1).contains("counters:")) {
        assert!(Instant::now() < deadline, "{}", c.log(1));
        std::thread::sleep(Duration::from_millis(20));
    }
    status_at(&c.node(1).socket()).expect("still serving after SIGHUP");
}

/// SIGHUP applies an added node: nodes 1 and 2 start with a nodelist of
/// two, node 3 is added to their configs and they are told to reload.
#[test]
fn sighup_adds_a_node() {
    let mut c = LocalCluster::new(ClusterSpec::new(3, test_port(8), TOKEN_MS));
    c.write_config(1, 2);
    c.write_config(2, 2);
    c.start(1);
    c.start(2);
    formed(&c, &[1, 2]);
    c.start(3);
    // Node 3 knows them, they do not know it: no ring of three.
    std::thread::sleep(Duration::from_millis(4 * TOKEN_MS));
    assert_eq!(c.status(1).expect("status").members.len(), 2);
    c.write_config(1, 3);
    c.write_config(2, 3);
    c.signal(1, Signal::SIGHUP);
    c.signal(2, Signal::SIGHUP);
    let (status, took) = formed(&c, &[1, 2, 3]);
    println!("after SIGHUP: ring {:?} of 3 in {took:?}", status.ring_id);
    assert!(c.log(1).contains("nodelist (+3 127.0.0.3:"), "{}", c.log(1));
    // The added node has its address in the status too.
    let status = c.status(1).expect("status");
    let three = status.members.iter().find(|m| m.id == 3).expect("member 3");
    assert!(three.addr.starts_with("127.0.0.3:"), "{three:?}");
    // The daemon's own counters are reported beside the node's.
    assert!(
        status.counter("udp_received").unwrap_or(0) > 0,
        "{status:?}"
    );
}

#[test]
fn config_typos_stop_aisexec_with_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let aisexec = bin_dir().join("aisexec");
    let good = ClusterSpec::new(1, test_port(6), TOKEN_MS).config(1, dir.path());
    testsuite::procs::write_key(
        &dir.path().join(testsuite::procs::KEY_FILE),
        &testsuite::procs::random_key(),
    );
    let cases = [
        // A value typo: a letter in a number.
        ("value", good.replace("token: 400", "token: 4O0"), 5),
        // A syntax typo: a section never closed.
        ("syntax", good.replace("}\nnodelist {", "\nnodelist {"), 0),
        // A node id that is not in the nodelist.
        (
            "nodeid",
            good.replace("nodeid: 1\n    port", "nodeid: 7\n    port"),
            0,
        ),
    ];
    for (what, text, line) in cases {
        let path = dir.path().join(format!("{what}.conf"));
        std::fs::write(&path, &text).expect("write");
        let out = Command::new(&aisexec)
            .arg("-f")
            .arg("-c")
            .arg(&path)
            .output()
            .expect("aisexec runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: {stderr}");
        let at = format!("{}:", path.display());
        assert!(stderr.contains(&at), "{what}: no file in {stderr}");
        if line > 0 {
            assert!(
                stderr.contains(&format!("{at}{line}:")),
                "{what}: no line {line} in {stderr}"
            );
        }
        println!("{what} typo: {}", stderr.trim());
    }
    // An unknown key only warns, with a hint; -t checks without starting.
    let path = dir.path().join("unknown.conf");
    std::fs::write(&path, good.replace("token: 400", "tokne: 400")).expect("write");
    let out = Command::new(&aisexec)
        .arg("-t")
        .arg("-c")
        .arg(&path)
        .output()
        .expect("aisexec runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("did you mean `token`"), "{stderr}");
}

#[test]
fn ring_status_without_a_daemon_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(bin_dir().join("ais-ring-status"))
        .arg("--socket")
        .arg(dir.path().join("absent.sock"))
        .output()
        .expect("ais-ring-status runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
}

/// A raw client: writes frames, reads frames, never more than asked.
struct RawClient {
    stream: UnixStream,
    reader: proto::FrameReader,
}

impl RawClient {
    fn connect(
        socket: &std::path::Path,
        service: proto::ServiceId,
        version: proto::Version,
    ) -> RawClient {
        let stream = UnixStream::connect(socket).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut c = RawClient {
            stream,
            reader: proto::FrameReader::new(),
        };
        c.stream
            .write_all(&proto::Hello { service, version }.encode())
            .expect("hello");
        let reply = c.next_frame().expect("hello reply");
        proto::HelloReply::decode(&reply)
            .expect("a hello reply")
            .status
            .expect("accepted");
        c
    }

    fn send(&mut self, service: proto::ServiceId, id: u16, body: &[u8]) {
        let frame =
            proto::encode_frame(proto::FrameKind::Request, service.code(), id, Ok(()), body)
                .expect("frame");
        self.stream.write_all(&frame).expect("request written");
    }

    /// The next frame, or `None` at EOF.
    fn next_frame(&mut self) -> Option<proto::Frame> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some(frame) = self.reader.next_frame().expect("well-formed frames") {
                return Some(frame);
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.reader.feed(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Reads until the response to request `id`; returns it and how many
    /// callbacks came before it.
    fn response(&mut self, id: u16) -> (proto::Frame, usize) {
        let mut callbacks = 0;
        loop {
            let frame = self.next_frame().expect("a response before EOF");
            if frame.kind == proto::FrameKind::Response && frame.id == id {
                return (frame, callbacks);
            }
            callbacks += 1;
        }
    }
}

/// The daemon's counter `name` (0 if it lists none by that name).
fn counter(socket: &std::path::Path, name: &str) -> u64 {
    let status = status_at(socket).expect("status served");
    status
        .counters
        .iter()
        .find(|(n, _)| n == name)
        .map_or(0, |&(_, value)| value)
}

/// How many bytes of `chunk`-sized writes a client connection's socket takes
/// (sized as the daemon sizes it) with nobody reading.
fn client_socket_capacity(chunk: usize) -> usize {
    use std::io::Write;
    use std::os::fd::AsFd;
    let (mut socket, peer) = std::os::unix::net::UnixStream::pair().unwrap();
    proto::size_socket_buffers(socket.as_fd()).unwrap();
    proto::size_socket_buffers(peer.as_fd()).unwrap();
    socket.set_nonblocking(true).unwrap();
    let data = vec![0u8; chunk];
    let mut held = 0;
    while let Ok(n) = socket.write(&data) {
        held += n;
    }
    held
}

/// A client whose output queue passes the high-water mark gets TRY_AGAIN
/// for its requests; one whose queue fills (it reads no callbacks) is
/// closed as a slow consumer; the daemon and its other clients go on.
#[test]
fn backpressure_try_again_then_slow_consumer_closed() {
    use proto::evs;
    use proto::ServiceId::Evs;
    let mut c = LocalCluster::new(ClusterSpec::new(1, test_port(7), TOKEN_MS));
    c.start_all();
    formed(&c, &[1]);
    let socket = c.node(1).socket();
    let group = evs::Group::named("backpressure");
    let join = evs::Groups {
        groups: vec![group],
    }
    .encode();
    // Two members of the group that do not read.
    let mut lagging = RawClient::connect(&socket, Evs, evs::VERSION);
    lagging.send(Evs, evs::JOIN, &join);
    let mut stalled = RawClient::connect(&socket, Evs, evs::VERSION);
    stalled.send(Evs, evs::JOIN, &join);

    // A sender outside the group floods it: what the kernel holds for a
    // client, then about 5 MiB more for the daemon to queue, between the
    // 4 MiB high-water mark of an 8 MiB queue and the 6 MiB above which it
    // stops reading the client's requests.
    const MSG: usize = 64_000;
    let in_kernel = client_socket_capacity(MSG);
    let first = (in_kernel + (5 << 20)) / MSG;
    // Then enough more to pass the whole 8 MiB bound.
    let second = (in_kernel + (9 << 20)) / MSG - first;
    let mut sender = RawClient::connect(&socket, Evs, evs::VERSION);
    let msg = bytes::Bytes::from(vec![7u8; MSG]);
    let flood = |sender: &mut RawClient, count: usize| {
        for _ in 0..count {
            let body = evs::McastGroups {
                guarantee: evs::EvsGuarantee::Agreed,
                groups: vec![group],
                msg: msg.clone(),
            }
            .encode();
            sender.send(Evs, evs::MCAST_GROUPS, &body);
            let (answer, _) = sender.response(evs::MCAST_GROUPS);
            assert_eq!(answer.status, Ok(()));
        }
    };
    flood(&mut sender, first);
    // Every message delivered: a lagging client holds the ring's new
    // messages back for up to 1 s (aisexec's CONGESTION_PATIENCE), then
    // counts as not reading.
    std::thread::sleep(Duration::from_millis(1500));

    lagging.send(Evs, evs::MEMBERSHIP_GET, &[]);
    // Reading at once would let the daemon move 2 MiB more into the
    // kernel before it reads the request, and the queue be below the mark
    // by then: wait until it has answered (or 5 s, the assertion below
    // then says what came).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while counter(&socket, "ipc_try_again") == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (answer, callbacks) = lagging.response(evs::MEMBERSHIP_GET);
    println!(
        "lagging client: {callbacks} frames before its answer {:?}",
        answer.status
    );
    assert_eq!(answer.status, Err(proto::AisError::TryAgain));
    // Now it has read everything: served again.
    lagging.send(Evs, evs::MEMBERSHIP_GET, &[]);
    assert_eq!(lagging.response(evs::MEMBERSHIP_GET).0.status, Ok(()));

    // The stalled client's queue (8 MiB) overflows.
    flood(&mut sender, second);
    std::thread::sleep(Duration::from_millis(1500));
    let mut frames = 0;
    while stalled.next_frame().is_some() {
        frames += 1;
    }
    println!("stalled client: closed after {frames} frames");
    assert!(
        frames < first + second,
        "it was closed before all {} messages reached it",
        first + second
    );
    let log = c.log(1);
    assert!(log.contains("output queue is full"), "{log}");

    // The others are still served.
    lagging.send(Evs, evs::MEMBERSHIP_GET, &[]);
    let (answer, _) = lagging.response(evs::MEMBERSHIP_GET);
    assert_eq!(answer.status, Ok(()));
    status_at(&socket).expect("status still served");
}

/// Every node multicasts 65000-byte messages as fast as flow control
/// allows, through `ais-bench` (the C library's Rust twin): every client
/// keeps up and is served to the end. A 65000-byte message is one
/// datagram on loopback, and a turn of the event loop once read 256 of
/// them (16 MiB) and delivered them all to each client before it checked
/// the client queues (8 MiB): the bench's own receivers were closed as
/// slow consumers. A turn now reads at most 1 MiB of datagrams.
#[test]
fn large_messages_from_every_node_close_no_client() {
    let mut c = LocalCluster::new(ClusterSpec::new(3, test_port(9), TOKEN_MS));
    c.start_all();
    formed(&c, &[1, 2, 3]);
    let mut bench = Command::new(bin_dir().join("ais-bench"));
    bench.args(["tput", "--size", "65000", "--secs", "3", "--senders", "all"]);
    for id in 1..=3 {
        bench.arg("--socket").arg(c.node(id).socket());
    }
    let out = bench.output().expect("ais-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}{stderr}");
    assert!(out.status.success(), "ais-bench failed\n{}", c.logs());
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains("mode=tput")).collect();
    assert_eq!(lines.len(), 3, "one line per node");
    for line in &lines {
        assert!(line.starts_with("result=ok"), "{line}");
        assert!(line.contains(" lost=0 fifo_viol=0 "), "{line}");
    }
    for id in 1..=3 {
        let log = c.log(id);
        assert!(!log.contains("output queue is full"), "node {id}:\n{log}");
    }
}
