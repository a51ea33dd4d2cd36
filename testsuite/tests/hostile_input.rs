//! Hostile input against running daemons (issue #8): 10,000 random and
//! 10,000 mutated UDP packets, and for each IPC decoder (setup, CFG, CLM,
//! EVS, CKPT) 10,000 random and 10,000 mutated messages over fresh
//! connections; afterwards every daemon still runs, the ring is the one it
//! was, the checkpoint replicas are unchanged and identical, a good client
//! still works, and the counters show the drops.
//!
//! The cluster: nodes 1..3 configured on loopback with `secauth: off` (so
//! packets reach the decoders instead of failing authentication), nodes 1
//! and 2 running. The test binds node 3's address and port itself: the
//! daemons accept datagrams only from configured addresses, so this is
//! where a forger must stand to reach Totem; the daemons also multicast to
//! node 3, which gives the test real packets to mutate.
//!
//! What may legitimately change state, and how the inputs avoid it so
//! that "nothing changed" is a meaningful assertion:
//! - UDP: a well-formed, correctly sealed packet is *input*, not an attack
//!   a CRC can stop (a Join from node 3 would rightly start a membership
//!   round). So every packet here is one that a correct daemon must drop:
//!   mutations without a recomputed CRC (CRC-32 catches every 1-bit error
//!   and burst up to 32 bits; other changes pass with odds 2^-32), and
//!   field-targeted mutations with a recomputed CRC that make the packet
//!   invalid (bad magic, version, type, body length, trailing bytes, a
//!   cut body, sender 0 or the receiver itself), and exact replays of
//!   delivered Mcasts (duplicates). The fuzz targets in fuzz/ cover the
//!   sealed, valid-looking packets.
//! - IPC: requests are answered, never dropped silently, so the test counts
//!   answers. Checkpoint state can change only through an open with CREATE
//!   (the store's one checkpoint has a name the inputs never contain, and
//!   handles are per connection), so CKPT messages that decode as such an
//!   open are regenerated; every other request may do what it likes and
//!   the replica digests must still match.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use ais::ckpt::{Ckpt, ReadElement, WriteElement};
use ais::client::ClientConfig;
use bytes::Bytes;
use proto::ckpt::{CreationAttributes, Open, OpenAsync, OPEN_CREATE, OPEN_READ, OPEN_WRITE};
use proto::setup::{Hello, HelloReply};
use proto::status::RingStatus;
use proto::{Frame, FrameKind, FrameReader, ServiceId, Version};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use testsuite::procs::{test_port, ClusterSpec, LocalCluster};

/// Random and mutated inputs per decoder.
const RANDOM: usize = 10_000;
const MUTATED: usize = 10_000;
/// Requests pipelined on one connection before its answers are read.
const PER_CONNECTION: usize = 100;
/// UDP datagrams sent between two status round trips (which let the
/// daemons drain their sockets: the kernel's receive buffer is not grown
/// beyond its default here, and a dropped datagram would not be counted).
const UDP_BATCH: usize = 100;
/// A name no hostile input contains (checked: inputs are random bytes
/// and names of their own).
const CKPT_NAME: &[u8] = b"hostile-input-digest-target-7f3a9c";

// ----- the cluster ---------------------------------------------------------

fn counter(s: &RingStatus, name: &str) -> u64 {
    s.counters
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no counter {name} in {:?}", s.counters))
}

/// What the Totem layer dropped, every reason.
fn totem_drops(s: &RingStatus) -> u64 {
    [
        "dropped_malformed",
        "dropped_foreign",
        "dropped_duplicate",
        "dropped_frames",
        "dropped_too_far_ahead",
    ]
    .iter()
    .map(|n| counter(s, n))
    .sum()
}

fn ckpt_client(socket: &Path) -> Ckpt {
    let mut cfg = ClientConfig::with_socket(socket);
    cfg.timeout = Duration::from_secs(10);
    Ckpt::connect_with(&cfg).expect("ckpt client connects")
}

// ----- UDP -----------------------------------------------------------------

/// Offsets in the Totem header (totem/src/wire.rs).
const MAGIC_AT: usize = 0;
const VERSION_AT: usize = 2;
const TYPE_AT: usize = 3;
const SENDER_AT: usize = 4;
const BODY_LEN_AT: usize = 20;
const HEADER: usize = totem::wire::HEADER_BYTES;
const TRAILER: usize = totem::wire::TRAILER_BYTES;
const MCAST_TYPE: u8 = 1;

fn reseal(mut p: Vec<u8>) -> Vec<u8> {
    let at = p.len() - TRAILER;
    let crc = crc32fast::hash(&p[..at]);
    p[at..].copy_from_slice(&crc.to_be_bytes());
    p
}

/// Real datagrams the daemons multicast to node 3: drained until `want`
/// Mcasts came or `timeout` passed.
fn capture(sock: &UdpSocket, want: usize, timeout: Duration) -> Vec<Vec<u8>> {
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let mut buf = vec![0u8; 65_536];
    let mut got = Vec::new();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline
        && got
            .iter()
            .filter(|p: &&Vec<u8>| p[TYPE_AT] == MCAST_TYPE)
            .count()
            < want
    {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            if n >= HEADER + TRAILER {
                got.push(buf[..n].to_vec());
            }
        }
    }
    got
}

/// A datagram no correct daemon may act on, and its kind (for the
/// report). `to` is the receiving node's id.
fn mutated_packet(rng: &mut ChaCha8Rng, real: &[Vec<u8>], to: u32) -> (&'static str, Vec<u8>) {
    let mcasts: Vec<&Vec<u8>> = real.iter().filter(|p| p[TYPE_AT] == MCAST_TYPE).collect();
    let mut p = real[rng.random_range(0..real.len())].clone();
    let len = p.len();
    match rng.random_range(0..13) {
        // Without a new CRC: caught by the CRC.
        0 => {
            let bit = rng.random_range(0..len * 8);
            p[bit / 8] ^= 1 << (bit % 8);
            ("bit flip", p)
        }
        1 => {
            let at = rng.random_range(0..len);
            p[at] = p[at].wrapping_add(rng.random_range(1..=255));
            ("byte set", p)
        }
        2 => {
            p.truncate(rng.random_range(0..len));
            ("truncated", p)
        }
        3 => {
            let extra = rng.random_range(1..64);
            p.extend((0..extra).map(|_| rng.random::<u8>()));
            ("extended", p)
        }
        // With a new CRC: each makes the packet invalid by a field.
        4 => {
            p[MAGIC_AT] ^= 0xFF;
            ("bad magic, resealed", reseal(p))
        }
        5 => {
            p[VERSION_AT] = p[VERSION_AT].wrapping_add(rng.random_range(1..=255));
            ("bad version, resealed", reseal(p))
        }
        6 => {
            // Types are 1..=5.
            p[TYPE_AT] = [0, rng.random_range(6..=255)][rng.random_range(0..2)];
            ("bad type, resealed", reseal(p))
        }
        7 => {
            let body = u32::from_be_bytes(p[BODY_LEN_AT..BODY_LEN_AT + 4].try_into().unwrap());
            let wrong = body.wrapping_add(rng.random_range(1..=u32::MAX));
            p[BODY_LEN_AT..BODY_LEN_AT + 4].copy_from_slice(&wrong.to_be_bytes());
            ("bad body length, resealed", reseal(p))
        }
        8 if len > HEADER + TRAILER => {
            // Cut the body, keep header and trailer: the length disagrees.
            let cut = rng.random_range(1..=len - HEADER - TRAILER);
            p.drain(len - TRAILER - cut..len - TRAILER);
            ("cut body, resealed", reseal(p))
        }
        9 => {
            // Trailing bytes after the body (decoding is strict).
            let extra: Vec<u8> = (0..rng.random_range(1..64)).map(|_| rng.random()).collect();
            p.splice(len - TRAILER..len - TRAILER, extra);
            ("trailing bytes, resealed", reseal(p))
        }
        10 => {
            p[SENDER_AT..SENDER_AT + 4].copy_from_slice(&to.to_be_bytes());
            ("sender is the receiver, resealed", reseal(p))
        }
        11 => {
            p[SENDER_AT..SENDER_AT + 4].copy_from_slice(&0u32.to_be_bytes());
            ("sender 0, resealed", reseal(p))
        }
        _ if !mcasts.is_empty() => {
            // An Mcast both nodes already have: a duplicate.
            let m = mcasts[rng.random_range(0..mcasts.len())].clone();
            ("replayed mcast", m)
        }
        _ => {
            p[TYPE_AT] = 0;
            ("bad type, resealed", reseal(p))
        }
    }
}

/// A random datagram: bytes of any length, or a plausible header (our
/// magic and version, a real type, a configured sender) before random
/// bytes, never with a valid CRC.
fn random_packet(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let len = rng.random_range(0..1500);
    let mut p: Vec<u8> = (0..len).map(|_| rng.random()).collect();
    if rng.random_bool(0.5) && len >= HEADER + TRAILER {
        p[0..2].copy_from_slice(&totem::wire::MAGIC.to_be_bytes());
        p[VERSION_AT] = totem::wire::WIRE_VERSION;
        p[TYPE_AT] = rng.random_range(1..=5);
        p[SENDER_AT..SENDER_AT + 4].copy_from_slice(&rng.random_range(1u32..=3).to_be_bytes());
        let body = (len - HEADER - TRAILER) as u32;
        p[BODY_LEN_AT..BODY_LEN_AT + 4].copy_from_slice(&body.to_be_bytes());
        // The CRC stays random: one chance in 2^32 to match.
        if reseal(p.clone()) == p {
            p[len - 1] ^= 1;
        }
    }
    p
}

// ----- IPC -----------------------------------------------------------------

fn connect(socket: &Path) -> UnixStream {
    let s = UnixStream::connect(socket).expect("connect to the IPC socket");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// What happened to the first frames of fresh connections.
#[derive(Debug, Default)]
struct SetupOutcome {
    accepted: usize,
    refused: usize,
    closed_without_reply: usize,
}

/// Sends `first` as the only bytes of a fresh connection, half-closes it
/// and reads what the daemon says until it closes.
fn one_setup(socket: &Path, first: &[u8], out: &mut SetupOutcome) {
    let mut s = connect(socket);
    // The daemon may close before reading everything (a bad header).
    let _ = s.write_all(first);
    let _ = s.shutdown(Shutdown::Write);
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let mut reader = FrameReader::new();
    reader.feed(&got);
    match reader.next_frame() {
        Ok(Some(f)) => match HelloReply::decode(&f) {
            Ok(r) if r.status.is_ok() => out.accepted += 1,
            Ok(_) => out.refused += 1,
            Err(e) => panic!("the daemon answered a setup with a frame that is no reply: {e:?}"),
        },
        Ok(None) => out.closed_without_reply += 1,
        Err(e) => panic!("the daemon sent a malformed frame: {e:?}"),
    }
}

fn mutate_bytes(rng: &mut ChaCha8Rng, bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    let rounds = rng.random_range(1..=3);
    for _ in 0..rounds {
        match rng.random_range(0..5) {
            0 if !v.is_empty() => {
                let bit = rng.random_range(0..v.len() * 8);
                v[bit / 8] ^= 1 << (bit % 8);
            }
            1 if !v.is_empty() => {
                let at = rng.random_range(0..v.len());
                v[at] = rng.random();
            }
            2 => {
                let keep = rng.random_range(0..=v.len());
                v.truncate(keep);
            }
            3 => {
                let at = rng.random_range(0..=v.len());
                let extra: Vec<u8> = (0..rng.random_range(1..32)).map(|_| rng.random()).collect();
                v.splice(at..at, extra);
            }
            _ if v.len() >= 4 => {
                // A length-like field made huge: decoders must check
                // lengths against what is present.
                let at = rng.random_range(0..=v.len() - 4);
                v[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
            }
            _ => v.push(rng.random()),
        }
    }
    v
}

/// Field-targeted mutation of a valid Hello frame.
fn mutated_hello(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let services = [
        ServiceId::Evs,
        ServiceId::Clm,
        ServiceId::Ckpt,
        ServiceId::Cfg,
    ];
    let hello = Hello {
        service: services[rng.random_range(0..services.len())],
        version: Version::B_01_01,
    }
    .encode()
    .to_vec();
    let mut v = hello.clone();
    match rng.random_range(0..6) {
        // size, version, kind, service, id, reserved+error: one field set
        // to a random value.
        0 => v[0..4].copy_from_slice(&rng.random::<u32>().to_le_bytes()),
        1 => v[4] = rng.random(),
        2 => v[5] = rng.random(),
        3 => v[6..8].copy_from_slice(&rng.random::<u16>().to_le_bytes()),
        4 => v[8..10].copy_from_slice(&rng.random::<u16>().to_le_bytes()),
        _ => v = mutate_bytes(rng, &hello),
    }
    v
}

/// Per service: requests answered, and connections the daemon closed.
#[derive(Debug, Default)]
struct ServiceOutcome {
    sent: usize,
    answered: usize,
    ok: usize,
    callbacks: usize,
}

/// Opens a fresh connection to `service`, sends `requests` (id, body)
/// pipelined, and reads until every one is answered.
fn one_service_connection(
    socket: &Path,
    service: ServiceId,
    version: Version,
    requests: &[(u16, Vec<u8>)],
    out: &mut ServiceOutcome,
) {
    let mut s = connect(socket);
    s.write_all(&Hello { service, version }.encode())
        .expect("hello sent");
    let mut reader = FrameReader::new();
    let mut buf = vec![0u8; 65_536];
    let reply = loop {
        if let Some(f) = reader.next_frame().expect("well-formed frames") {
            break f;
        }
        let n = s.read(&mut buf).expect("hello reply");
        assert!(
            n > 0,
            "the daemon closed a connection before its hello reply"
        );
        reader.feed(&buf[..n]);
    };
    let reply = HelloReply::decode(&reply).expect("a hello reply");
    assert_eq!(reply.status, Ok(()), "{service:?} refused a good hello");

    let mut wire = Vec::new();
    for (id, body) in requests {
        let f = Frame::request(service, *id, Bytes::copy_from_slice(body));
        wire.extend_from_slice(&f.encode().expect("small frame"));
    }
    s.write_all(&wire).expect("requests sent");
    out.sent += requests.len();
    let mut answered = 0;
    while answered < requests.len() {
        match reader.next_frame().expect("well-formed frames") {
            Some(f) if f.kind == FrameKind::Response => {
                assert_eq!(f.service, service.code(), "an answer for another service");
                answered += 1;
                out.ok += usize::from(f.status.is_ok());
            }
            Some(_) => out.callbacks += 1,
            None => {
                let n = s.read(&mut buf).unwrap_or_else(|e| {
                    panic!(
                        "{service:?}: {answered} of {} requests answered, then {e}",
                        requests.len()
                    )
                });
                assert!(
                    n > 0,
                    "{service:?}: the daemon closed the connection after {answered} of {} answers",
                    requests.len()
                );
                reader.feed(&buf[..n]);
            }
        }
    }
    out.answered += answered;
}

/// Valid requests of `service`, the seeds of the mutated ones.
fn templates(service: ServiceId) -> Vec<(u16, Vec<u8>)> {
    use proto::{ckpt, clm, evs, status};
    let v = |b: Bytes| b.to_vec();
    match service {
        ServiceId::Cfg => vec![(status::RING_STATUS, Vec::new())],
        ServiceId::Clm => vec![
            (
                clm::TRACK_START,
                v(clm::TrackStart {
                    flags: 1,
                    current_as_callback: false,
                }
                .encode()),
            ),
            (clm::TRACK_STOP, Vec::new()),
            (clm::NODE_GET, v(clm::NodeGet { node_id: 1 }.encode())),
            (
                clm::NODE_GET_ASYNC,
                v(clm::NodeGetAsync {
                    invocation: 7,
                    node_id: 2,
                }
                .encode()),
            ),
        ],
        ServiceId::Evs => {
            let g = evs::Group::named("hostile");
            vec![
                (evs::JOIN, v(evs::Groups { groups: vec![g] }.encode())),
                (evs::LEAVE, v(evs::Groups { groups: vec![g] }.encode())),
                (
                    evs::MCAST_JOINED,
                    v(evs::McastJoined {
                        guarantee: evs::EvsGuarantee::Agreed,
                        msg: Bytes::from_static(b"hostile message"),
                    }
                    .encode()),
                ),
                (
                    evs::MCAST_GROUPS,
                    v(evs::McastGroups {
                        guarantee: evs::EvsGuarantee::Agreed,
                        groups: vec![g],
                        msg: Bytes::from_static(b"to a group"),
                    }
                    .encode()),
                ),
                (evs::MEMBERSHIP_GET, Vec::new()),
            ]
        }
        ServiceId::Ckpt => {
            let open = ckpt::Open {
                name: Bytes::from_static(b"hostile-other"),
                attributes: None,
                open_flags: OPEN_READ | OPEN_WRITE,
            };
            let handle = ckpt::HandleRequest { handle: 1 };
            let sid = Bytes::from_static(b"s");
            vec![
                (ckpt::OPEN, v(open.encode())),
                (
                    ckpt::OPEN_ASYNC,
                    v(ckpt::OpenAsync {
                        invocation: 3,
                        open: open.clone(),
                    }
                    .encode()),
                ),
                (ckpt::CLOSE, v(handle.encode())),
                (
                    ckpt::UNLINK,
                    v(ckpt::Unlink {
                        name: Bytes::from_static(b"hostile-other"),
                    }
                    .encode()),
                ),
                (ckpt::STATUS_GET, v(handle.encode())),
                (
                    ckpt::SECTION_CREATE,
                    v(ckpt::SectionCreate {
                        handle: 1,
                        section_id: sid.clone(),
                        expiration_time_ns: ckpt::TIME_END,
                        initial_data: Bytes::from_static(b"data"),
                    }
                    .encode()),
                ),
                (
                    ckpt::WRITE,
                    v(ckpt::Write {
                        handle: 1,
                        elements: vec![ckpt::WriteElement {
                            section_id: sid.clone(),
                            offset: 0,
                            data: Bytes::from_static(b"data"),
                        }],
                    }
                    .encode()),
                ),
                (
                    ckpt::READ,
                    v(ckpt::Read {
                        handle: 1,
                        elements: vec![ckpt::ReadElement {
                            section_id: sid.clone(),
                            offset: 0,
                            size: 16,
                        }],
                    }
                    .encode()),
                ),
                (
                    ckpt::ITERATION_INITIALIZE,
                    v(ckpt::IterationInitialize {
                        handle: 1,
                        sections_chosen: ckpt::SectionsChosen::Any,
                        expiration_time_ns: 0,
                    }
                    .encode()),
                ),
                (
                    ckpt::ITERATION_NEXT,
                    v(ckpt::IterationRequest { iteration: 1 }.encode()),
                ),
                (
                    ckpt::SYNCHRONIZE_ASYNC,
                    v(ckpt::SynchronizeAsync {
                        handle: 1,
                        invocation: 9,
                    }
                    .encode()),
                ),
                (ckpt::STORE_STATUS, Vec::new()),
                (ckpt::LIST, v(ckpt::List { after: None }.encode())),
            ]
        }
        ServiceId::Backup => Vec::new(),
    }
}

/// Whether a CKPT request could create a checkpoint (the one kind of
/// request that rightly changes the replicated store from a fresh
/// connection; see the module docs).
fn creates_checkpoint(id: u16, body: &[u8]) -> bool {
    let create = |o: &Open| o.open_flags & OPEN_CREATE != 0;
    match id {
        proto::ckpt::OPEN => Open::decode(body).is_ok_and(|o| create(&o)),
        proto::ckpt::OPEN_ASYNC => OpenAsync::decode(body).is_ok_and(|o| create(&o.open)),
        _ => false,
    }
}

/// 10,000 random and 10,000 mutated requests of `service`, on fresh
/// connections to the two nodes in turn.
fn flood_service(
    sockets: &[&Path],
    service: ServiceId,
    version: Version,
    rng: &mut ChaCha8Rng,
) -> ServiceOutcome {
    let seeds = templates(service);
    let mut out = ServiceOutcome::default();
    let mut made = 0;
    let mut conn = 0;
    while made < RANDOM + MUTATED {
        let mut batch = Vec::with_capacity(PER_CONNECTION);
        while batch.len() < PER_CONNECTION && made < RANDOM + MUTATED {
            let (id, body) = if made < RANDOM {
                // Any id (mostly near the real ones), any body.
                let id = if rng.random_bool(0.8) {
                    rng.random_range(0..32)
                } else {
                    rng.random()
                };
                let len = rng.random_range(0..256);
                (id, (0..len).map(|_| rng.random()).collect::<Vec<u8>>())
            } else {
                let (id, body) = &seeds[rng.random_range(0..seeds.len())];
                (*id, mutate_bytes(rng, body))
            };
            if id == proto::setup::SETUP_ID
                || (service == ServiceId::Ckpt && creates_checkpoint(id, &body))
            {
                continue;
            }
            batch.push((id, body));
            made += 1;
        }
        one_service_connection(
            sockets[conn % sockets.len()],
            service,
            version,
            &batch,
            &mut out,
        );
        conn += 1;
    }
    out
}

// ----- the test --------------------------------------------------------------

#[test]
fn hostile_packets_and_ipc_messages_change_nothing() {
    let started = Instant::now();
    let seed: u64 = std::env::var("HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    println!("hostile_input: seed {seed} (HOSTILE_SEED={seed} replays it)");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);

    let port = test_port(24);
    let mut spec = ClusterSpec::new(3, port, 2000);
    spec.totem_extra = "    secauth: off\n".into();
    // Node 3's address and port: the forger's seat (see the module docs).
    let forger = UdpSocket::bind(("127.0.0.3", port)).expect("bind node 3's address");
    let mut cluster = LocalCluster::new(spec);
    cluster.start(1);
    cluster.start(2);
    cluster
        .wait_ring(&[1, 2], Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let sockets = [cluster.node(1).socket(), cluster.node(2).socket()];

    // State to keep: a checkpoint with sections, written through node 1.
    let mut good = ckpt_client(&sockets[0]);
    let attrs = CreationAttributes {
        creation_flags: proto::ckpt::WR_ALL_REPLICAS,
        checkpoint_size: 1 << 16,
        retention_duration_ns: 3_600_000_000_000,
        max_sections: 16,
        max_section_size: 4096,
        max_section_id_size: 32,
    };
    let ck = good
        .open(
            CKPT_NAME,
            Some(attrs),
            OPEN_READ | OPEN_WRITE | OPEN_CREATE,
            None,
        )
        .expect("checkpoint created");
    for i in 0..8u8 {
        let sid = [b's', b'0' + i];
        good.section_create(&ck, &sid, proto::ckpt::TIME_END, &[i; 100])
            .expect("section created");
    }
    // Real packets: the writes above and these go around the ring.
    for i in 0..8u8 {
        let sid = [b's', b'0' + i];
        let e = WriteElement {
            section_id: &sid,
            offset: 10,
            data: b"written before the flood",
        };
        good.write(&ck, &[e]).expect("write");
    }
    let real = capture(&forger, 8, Duration::from_secs(5));
    assert!(
        real.iter().any(|p| p[TYPE_AT] == MCAST_TYPE),
        "no Mcast reached node 3's address; captured {} datagrams",
        real.len()
    );

    let before: Vec<RingStatus> = [1, 2]
        .map(|id| cluster.status(id).expect("status"))
        .to_vec();
    let digests_before: Vec<u32> = sockets
        .iter()
        .map(|s| ckpt_client(s).store_status().expect("store status").digest)
        .collect();
    assert_eq!(
        digests_before[0], digests_before[1],
        "replicas differ before"
    );

    // UDP: random, then mutated, to nodes 1 and 2 in turn.
    let targets: [SocketAddr; 2] = [
        format!("127.0.0.1:{port}").parse().unwrap(),
        format!("127.0.0.2:{port}").parse().unwrap(),
    ];
    let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
    let udp_started = Instant::now();
    for i in 0..RANDOM + MUTATED {
        let to = i % 2;
        let p = if i < RANDOM {
            *kinds.entry("random").or_default() += 1;
            random_packet(&mut rng)
        } else {
            let (kind, p) = mutated_packet(&mut rng, &real, to as u32 + 1);
            *kinds.entry(kind).or_default() += 1;
            p
        };
        forger.send_to(&p, targets[to]).expect("datagram sent");
        if i % UDP_BATCH == UDP_BATCH - 1 {
            for id in [1, 2] {
                cluster.status(id).expect("status during the UDP flood");
            }
        }
    }
    let after_udp: Vec<RingStatus> = [1, 2]
        .map(|id| cluster.status(id).expect("status"))
        .to_vec();
    let udp_secs = udp_started.elapsed().as_secs_f64();

    // IPC: setup first frames on fresh connections.
    let mut setup = SetupOutcome::default();
    for i in 0..RANDOM + MUTATED {
        let first = if i < RANDOM {
            let len = rng.random_range(0..64);
            (0..len).map(|_| rng.random()).collect::<Vec<u8>>()
        } else {
            mutated_hello(&mut rng)
        };
        one_setup(&sockets[i % 2], &first, &mut setup);
    }
    println!("hostile_input: setup frames: {setup:?}");
    assert!(setup.refused + setup.closed_without_reply > 0);

    let mut services = Vec::new();
    for (service, version) in [
        (ServiceId::Cfg, proto::status::VERSION),
        (ServiceId::Clm, proto::clm::VERSION),
        (ServiceId::Evs, proto::evs::VERSION),
        (ServiceId::Ckpt, proto::ckpt::VERSION),
    ] {
        let paths = [sockets[0].as_path(), sockets[1].as_path()];
        let out = flood_service(&paths, service, version, &mut rng);
        println!("hostile_input: {service:?}: {out:?}");
        assert_eq!(
            out.answered, out.sent,
            "{service:?}: every request answered"
        );
        services.push((service, out));
    }

    // Every daemon still runs and the ring is the one it was.
    for id in [1, 2] {
        assert!(cluster.is_running(id), "node {id} died\n{}", cluster.logs());
    }
    let after: Vec<RingStatus> = [1, 2]
        .map(|id| cluster.status(id).expect("status"))
        .to_vec();
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a.ring_id, b.ring_id, "node {}: the ring changed", a.node_id);
        assert_eq!(
            a.members, b.members,
            "node {}: the members changed",
            a.node_id
        );
        assert_eq!(counter(a, "rings_installed"), counter(b, "rings_installed"));
        assert!(a.sync_done);
    }

    // Counters show the drops: each node dropped (nearly) every hostile
    // datagram it got; the batches keep kernel losses near zero, and a
    // datagram the kernel lost is not one the daemon accepted.
    for (i, (b, a)) in before.iter().zip(&after_udp).enumerate() {
        let sent = ((RANDOM + MUTATED) / 2) as u64;
        let dropped = totem_drops(a) - totem_drops(b);
        let malformed = counter(a, "dropped_malformed") - counter(b, "dropped_malformed");
        println!(
            "hostile_input: node {}: {sent} hostile datagrams, {dropped} dropped by Totem \
             ({malformed} malformed), udp_received +{}",
            i + 1,
            counter(a, "udp_received") - counter(b, "udp_received"),
        );
        assert!(
            dropped * 10 >= sent * 9,
            "node {}: only {dropped} of {sent} dropped",
            i + 1
        );
    }
    let bad_frames: u64 = after
        .iter()
        .zip(&before)
        .map(|(a, b)| counter(a, "ipc_bad_frames") - counter(b, "ipc_bad_frames"))
        .sum();
    let bad_setups: u64 = after
        .iter()
        .zip(&before)
        .map(|(a, b)| counter(a, "clients_bad_setup") - counter(b, "clients_bad_setup"))
        .sum();
    println!("hostile_input: ipc_bad_frames +{bad_frames}, clients_bad_setup +{bad_setups}");
    assert_eq!(
        bad_setups as usize, setup.refused,
        "every refused setup is counted"
    );

    // The replicas: unchanged and identical.
    let digests_after: Vec<u32> = sockets
        .iter()
        .map(|s| ckpt_client(s).store_status().expect("store status").digest)
        .collect();
    assert_eq!(digests_after, digests_before, "checkpoint replicas changed");

    // A good client still works, on both nodes.
    for s in &sockets {
        let mut c = ckpt_client(s);
        let ck = c
            .open(CKPT_NAME, None, OPEN_READ | OPEN_WRITE, None)
            .expect("open after the flood");
        let sid = b"s3";
        let data = c
            .read(
                &ck,
                &[ReadElement {
                    section_id: sid,
                    offset: 10,
                    size: Some(24),
                }],
            )
            .expect("read after the flood");
        assert_eq!(&data[0][..], b"written before the flood");
    }
    let e = WriteElement {
        section_id: b"s0",
        offset: 0,
        data: b"after",
    };
    good.write(&ck, &[e]).expect("write after the flood");
    let d: Vec<u32> = sockets
        .iter()
        .map(|s| ckpt_client(s).store_status().expect("store status").digest)
        .collect();
    assert_eq!(d[0], d[1], "replicas identical after a write");
    assert_ne!(d[0], digests_before[0], "the write changed the store");

    println!(
        "hostile_input: UDP kinds {kinds:?}; UDP phase {udp_secs:.1} s, total {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for id in [1, 2] {
        cluster.signal(id, nix::sys::signal::Signal::SIGTERM);
        assert!(cluster.wait_exit(id, Duration::from_secs(10)).is_some());
    }
}
