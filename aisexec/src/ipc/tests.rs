//! The IPC server against real Unix sockets in a temporary directory.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener as StdListener, UnixStream as StdStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Poll, Token};
use proto::{
    encode_frame, AisError, Frame, FrameError, FrameKind, FrameReader, Hello, HelloReply,
    ServiceId, Version, MAX_BODY_BYTES, MAX_FRAME_BYTES,
};

use super::*;

const TOKEN_BASE: usize = 100;
const WAIT: Duration = Duration::from_secs(5);

struct Harness {
    poll: Poll,
    server: IpcServer,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(|_| {})
    }

    fn with(tweak: impl FnOnce(&mut IpcConfig)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = IpcConfig::new(dir.path().join("run/aisexec.sock"), TOKEN_BASE);
        tweak(&mut config);
        let poll = Poll::new().unwrap();
        let server = IpcServer::bind(poll.registry(), config).unwrap();
        Harness {
            poll,
            server,
            _dir: dir,
        }
    }

    fn path(&self) -> PathBuf {
        self.server.path().to_owned()
    }

    fn connect(&self) -> StdStream {
        let stream = StdStream::connect(self.path()).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream
    }

    /// Sends and writes at once (as at the end of a loop turn).
    fn send(&mut self, conn: ConnId, frame: Bytes) -> Result<(), SendError> {
        let result = self.server.send(conn, frame);
        self.server.flush_pending();
        result
    }

    /// One loop turn, as the executive does it (its frames are written at
    /// its end, by the caller's `send` here).
    fn turn(&mut self, timeout: Duration) -> Vec<IpcEvent> {
        self.server.flush_pending();
        let timeout = if self.server.has_pending_work() {
            Duration::ZERO
        } else {
            timeout
        };
        let mut events = Events::with_capacity(64);
        self.poll.poll(&mut events, Some(timeout)).unwrap();
        for event in events.iter() {
            assert!(self.server.owns(event.token()));
            self.server.handle_event(event);
        }
        let mut out = Vec::new();
        while let Some(event) = self.server.poll_event() {
            out.push(event);
        }
        out
    }

    /// Turns until `n` events came (fails after WAIT).
    fn events(&mut self, n: usize) -> Vec<IpcEvent> {
        let deadline = Instant::now() + WAIT;
        let mut out = Vec::new();
        while out.len() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} events: {out:?}",
                out.len()
            );
            out.extend(self.turn(Duration::from_millis(50)));
        }
        assert_eq!(out.len(), n, "more events than expected: {out:?}");
        out
    }

    /// Turns for a while and checks nothing happens.
    fn quiet(&mut self) {
        for _ in 0..5 {
            let events = self.turn(Duration::from_millis(20));
            assert!(events.is_empty(), "unexpected events: {events:?}");
        }
    }

    fn connected(&mut self) -> (StdStream, ConnId) {
        let client = self.connect();
        match self.events(1).pop() {
            Some(IpcEvent::Connected { conn, creds }) => {
                assert_eq!(creds.pid, std::process::id() as i32);
                assert_eq!(creds.uid, nix::unistd::geteuid().as_raw());
                assert_eq!(creds.gid, nix::unistd::getegid().as_raw());
                (client, conn)
            }
            other => panic!("expected Connected, got {other:?}"),
        }
    }
}

fn hello() -> Hello {
    Hello {
        service: ServiceId::Cfg,
        version: Version::B_01_01,
    }
}

fn request(id: u16, body: &[u8]) -> Bytes {
    encode_frame(FrameKind::Request, ServiceId::Cfg.code(), id, Ok(()), body).unwrap()
}

fn response(id: u16, body: &[u8]) -> Bytes {
    encode_frame(FrameKind::Response, ServiceId::Cfg.code(), id, Ok(()), body).unwrap()
}

/// Reads one frame from a blocking client stream.
fn read_frame(client: &mut StdStream) -> Frame {
    let mut reader = FrameReader::new();
    let mut byte = [0u8; 1];
    // Byte by byte: slow but never reads past the frame.
    loop {
        if let Some(frame) = reader.next_frame().unwrap() {
            return frame;
        }
        client.read_exact(&mut byte).unwrap();
        reader.feed(&byte);
    }
}

fn expect_eof(client: &mut StdStream) {
    let mut buf = [0u8; 64];
    match client.read(&mut buf) {
        Ok(0) => {}
        Err(error) if error.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected EOF, got {other:?}"),
    }
}

#[test]
fn client_gets_connected_then_its_frames_and_replies() {
    let mut h = Harness::new();
    let (mut client, conn) = h.connected();
    client.write_all(&hello().encode()).unwrap();
    client.write_all(&request(0, b"")).unwrap();
    let events = h.events(2);
    let IpcEvent::Frame { conn: c1, frame } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(*c1, conn);
    assert_eq!(Hello::decode(frame), Ok(hello()));
    let IpcEvent::Frame { conn: c2, frame } = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(*c2, conn);
    assert_eq!(
        (frame.kind, frame.id, frame.body.len()),
        (FrameKind::Request, 0, 0)
    );

    let reply = HelloReply::accepted(Version::B_01_01);
    h.server
        .send(conn, reply.encode(ServiceId::Cfg.code()))
        .unwrap();
    h.send(conn, response(0, b"status")).unwrap();
    assert_eq!(HelloReply::decode(&read_frame(&mut client)), Ok(reply));
    assert_eq!(&read_frame(&mut client).body[..], b"status");
    assert_eq!(h.server.connection_count(), 1);
    assert!(h.server.creds(conn).is_some());
}

#[test]
fn maximum_frame_arrives_whole() {
    let mut h = Harness::new();
    let (mut client, conn) = h.connected();
    let body: Vec<u8> = (0..MAX_BODY_BYTES).map(|i| (i % 251) as u8).collect();
    let frame = request(9, &body);
    assert_eq!(frame.len(), MAX_FRAME_BYTES);
    let writer = std::thread::spawn(move || {
        client.write_all(&frame).unwrap();
        client
    });
    let events = h.events(1);
    let IpcEvent::Frame { conn: c, frame } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(*c, conn);
    assert_eq!(frame.body, body);
    drop(writer.join().unwrap());
}

#[test]
fn garbage_closes_only_that_connection() {
    let mut h = Harness::new();
    let (mut bad, bad_id) = h.connected();
    let (mut good, good_id) = h.connected();
    bad.write_all(&[0xFF; 32]).unwrap();
    good.write_all(&request(1, b"ok")).unwrap();
    let mut events = h.events(2);
    events.sort_by_key(|event| matches!(event, IpcEvent::Frame { .. }));
    assert!(matches!(
        &events[0],
        IpcEvent::Closed { conn, reason: CloseReason::BadFrame(FrameError::BadVersion(0xFF)) }
            if *conn == bad_id
    ));
    assert!(matches!(&events[1], IpcEvent::Frame { conn, .. } if *conn == good_id));
    expect_eof(&mut bad);

    // The good client is still served, and the dead id is refused.
    h.send(good_id, response(1, b"still here")).unwrap();
    assert_eq!(&read_frame(&mut good).body[..], b"still here");
    assert_eq!(
        h.send(bad_id, response(1, b"")),
        Err(SendError::UnknownConn)
    );
    assert_eq!(h.server.connection_count(), 1);
}

#[test]
fn oversized_and_non_request_frames_close_the_connection() {
    let mut h = Harness::new();
    let (mut big, big_id) = h.connected();
    let mut header = request(0, b"").to_vec();
    header[0..4].copy_from_slice(&(MAX_FRAME_BYTES as u32 + 1).to_le_bytes());
    big.write_all(&header).unwrap();
    let events = h.events(1);
    assert!(matches!(
        &events[0],
        IpcEvent::Closed { conn, reason: CloseReason::BadFrame(FrameError::TooLong { .. }) }
            if *conn == big_id
    ));

    let (mut liar, liar_id) = h.connected();
    liar.write_all(&response(0, b"")).unwrap();
    let events = h.events(1);
    assert!(matches!(
        &events[0],
        IpcEvent::Closed { conn, reason: CloseReason::NotARequest(FrameKind::Response) }
            if *conn == liar_id
    ));
    expect_eof(&mut liar);
}

#[test]
fn vanished_clients_produce_closed() {
    let mut h = Harness::new();
    let (client, id) = h.connected();
    drop(client);
    let events = h.events(1);
    assert!(matches!(
        &events[0],
        IpcEvent::Closed { conn, reason: CloseReason::PeerClosed { mid_frame: false } } if *conn == id
    ));

    let (mut client, id) = h.connected();
    client.write_all(&request(3, b"abcdef")[..10]).unwrap();
    drop(client);
    let events = h.events(1);
    assert!(matches!(
        &events[0],
        IpcEvent::Closed { conn, reason: CloseReason::PeerClosed { mid_frame: true } } if *conn == id
    ));
    assert_eq!(h.server.connection_count(), 0);
    h.quiet();
}

#[test]
fn sending_to_a_vanished_client_closes_it() {
    let mut h = Harness::new();
    let (client, id) = h.connected();
    drop(client);
    // The server has not seen the EOF yet; the frame is queued, and the
    // write at the end of the turn finds the peer gone.
    assert_eq!(h.server.send(id, response(0, b"late")), Ok(()));
    assert!(h.server.has_unflushed());
    h.server.flush_pending();
    assert!(!h.server.has_unflushed());
    let events = h.events(1);
    assert!(matches!(
        &events[0],
        IpcEvent::Closed { conn, reason: CloseReason::Io(_) } if *conn == id
    ));
    h.quiet();
}

#[test]
fn output_queue_bound_triggers_and_drains() {
    queue_bound_triggers_and_drains(false);
}

/// A large frame is queued as two pieces (its header, then its body as it
/// came, not copied): it still counts as one frame, and writes that stop
/// inside either piece resume where they stopped.
#[test]
fn split_frames_count_once_and_arrive_whole() {
    queue_bound_triggers_and_drains(true);
}

fn queue_bound_triggers_and_drains(split: bool) {
    const FRAMES: usize = 4;
    let mut h = Harness::with(|config| config.max_queue_frames = FRAMES);
    let (mut client, id) = h.connected();
    let body = vec![7u8; 64 * 1024];

    // The client does not read: the kernel buffer fills, then the queue.
    let mut sent = 0u32;
    let full = loop {
        let mut frame_body = sent.to_le_bytes().to_vec();
        frame_body.extend_from_slice(&body);
        let frame = if split {
            let frame = Frame::response(ServiceId::Cfg.code(), 0, Ok(()), frame_body.into());
            let encoded = frame.encode_parts().unwrap();
            assert_eq!(encoded.pieces()[0].len(), proto::HEADER_BYTES, "not split");
            encoded
        } else {
            response(0, &frame_body).into()
        };
        let result = h.server.send(id, frame);
        h.server.flush_pending();
        match result {
            Ok(()) => sent += 1,
            Err(error) => break error,
        }
        assert!(sent < 10_000, "the queue never filled");
    };
    assert!(
        matches!(
            full,
            SendError::QueueFull {
                queued_frames: FRAMES,
                ..
            }
        ),
        "{full:?}"
    );
    let (bytes, frames) = h.server.queued(id).unwrap();
    assert_eq!(frames, FRAMES);
    // A refused send changes nothing.
    assert!(h.send(id, response(0, b"x")).is_err());
    assert_eq!(h.server.queued(id), Some((bytes, frames)));

    // The client reads everything, in order; the queue drains on WRITABLE.
    let reader = std::thread::spawn(move || {
        for expected in 0..sent {
            let frame = read_frame(&mut client);
            assert_eq!(frame.body[..4], expected.to_le_bytes());
            assert_eq!(frame.body.len(), 4 + 64 * 1024);
        }
        client
    });
    let deadline = Instant::now() + WAIT;
    while h.server.queued(id) != Some((0, 0)) {
        assert!(Instant::now() < deadline, "queue did not drain");
        assert!(h.turn(Duration::from_millis(50)).is_empty());
    }
    let mut client = reader.join().unwrap();
    h.send(id, response(5, b"after")).unwrap();
    assert_eq!(read_frame(&mut client).id, 5);
}

#[test]
fn send_checks_frame_size_and_connection() {
    let mut h = Harness::new();
    let (_client, id) = h.connected();
    assert_eq!(
        h.send(id, Bytes::from_static(b"short")),
        Err(SendError::BadFrame { len: 5 })
    );
    assert_eq!(
        h.send(id, Bytes::from(vec![0; MAX_FRAME_BYTES + 1])),
        Err(SendError::BadFrame {
            len: MAX_FRAME_BYTES + 1
        })
    );
    assert!(h.server.close(id));
    assert!(!h.server.close(id));
    assert_eq!(h.send(id, response(0, b"")), Err(SendError::UnknownConn));
    // close() emits no Closed event.
    h.quiet();
}

#[test]
fn refused_peer_gets_access_and_is_closed() {
    let mut h = Harness::new();
    h.server.fake_creds = Some(Creds {
        pid: 1,
        uid: 4242,
        gid: 4242,
    });
    // Skip if the tests run as uid 4242 (then it would be admitted).
    if nix::unistd::geteuid().as_raw() == 4242 {
        return;
    }
    let mut client = h.connect();
    h.quiet();
    let reply = HelloReply::decode(&read_frame(&mut client)).unwrap();
    assert_eq!(reply, HelloReply::refused(AisError::Access));
    expect_eof(&mut client);
    assert_eq!(h.server.connection_count(), 0);
}

#[test]
fn allowed_gid_is_admitted() {
    let mut h = Harness::with(|config| config.allow = AllowList::new().with_gid(4243));
    h.server.fake_creds = Some(Creds {
        pid: 1,
        uid: 4242,
        gid: 4243,
    });
    let _client = h.connect();
    let events = h.events(1);
    assert!(matches!(&events[0], IpcEvent::Connected { creds, .. } if creds.gid == 4243));
}

#[test]
fn connection_limit_refuses_with_no_resources() {
    let mut h = Harness::with(|config| config.max_connections = 2);
    let (first, first_id) = h.connected();
    let (_second, _) = h.connected();
    let mut third = h.connect();
    h.quiet();
    let reply = HelloReply::decode(&read_frame(&mut third)).unwrap();
    assert_eq!(reply, HelloReply::refused(AisError::NoResources));
    expect_eof(&mut third);

    // A freed slot is reused under a new id.
    drop(first);
    let events = h.events(1);
    assert!(matches!(&events[0], IpcEvent::Closed { conn, .. } if *conn == first_id));
    let (_fourth, fourth_id) = h.connected();
    assert_ne!(fourth_id, first_id);
    assert_eq!(
        h.send(first_id, response(0, b"")),
        Err(SendError::UnknownConn)
    );
    assert_eq!(h.server.connection_count(), 2);
}

#[test]
fn close_after_flush_writes_then_closes() {
    let mut h = Harness::new();
    // Empty queue (the reply was written at once): closed now.
    let (mut client, id) = h.connected();
    h.send(id, HelloReply::refused(AisError::NotSupported).encode(9))
        .unwrap();
    assert!(h.server.close_after_flush(id));
    assert_eq!(h.send(id, response(0, b"")), Err(SendError::UnknownConn));
    let events = h.events(1);
    assert!(matches!(
        &events[0],
        IpcEvent::Closed { conn, reason: CloseReason::Flushed } if *conn == id
    ));
    let reply = HelloReply::decode(&read_frame(&mut client)).unwrap();
    assert_eq!(reply.status, Err(AisError::NotSupported));
    expect_eof(&mut client);

    // Output pending (the client is not reading): closed once it is read.
    let (mut client, id) = h.connected();
    let body = vec![1u8; 512 * 1024];
    let mut sent = 0;
    while h.server.queued(id).unwrap().1 == 0 {
        h.send(id, response(sent, &body)).unwrap();
        sent += 1;
    }
    assert!(h.server.close_after_flush(id));
    assert_eq!(h.send(id, response(0, b"")), Err(SendError::Closing));
    // Its input is discarded from now on.
    client.write_all(&request(1, b"ignored")).unwrap();
    h.quiet();
    let reader = std::thread::spawn(move || {
        for expected in 0..sent {
            assert_eq!(read_frame(&mut client).id, expected);
        }
        expect_eof(&mut client);
    });
    let events = h.events(1);
    assert!(matches!(
        &events[0],
        IpcEvent::Closed { conn, reason: CloseReason::Flushed } if *conn == id
    ));
    reader.join().unwrap();
}

#[test]
fn a_flooding_client_is_served_in_rounds() {
    let mut h = Harness::with(|config| config.frames_per_round = 2);
    let (mut flood, flood_id) = h.connected();
    let (mut quiet, quiet_id) = h.connected();
    for id in 0..5 {
        flood.write_all(&request(id, b"")).unwrap();
    }
    quiet.write_all(&request(100, b"")).unwrap();
    std::thread::sleep(Duration::from_millis(50));

    let mut rounds = Vec::new();
    let deadline = Instant::now() + WAIT;
    let mut total = 0;
    while total < 6 {
        assert!(Instant::now() < deadline);
        let events = h.turn(Duration::from_millis(50));
        let flood_frames = events
            .iter()
            .filter(|e| matches!(e, IpcEvent::Frame { conn, .. } if *conn == flood_id))
            .count();
        assert!(flood_frames <= 2, "round exceeded its budget: {events:?}");
        total += events.len();
        rounds.push(events);
    }
    // The quiet client's frame came in the first round with frames.
    let first = rounds.iter().find(|r| !r.is_empty()).unwrap();
    assert!(first
        .iter()
        .any(|e| matches!(e, IpcEvent::Frame { conn, .. } if *conn == quiet_id)));
    assert!(!h.server.has_pending_work() || h.turn(Duration::ZERO).is_empty());
}

#[test]
fn bind_replaces_stale_sockets_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let poll = Poll::new().unwrap();

    // A stale socket (its listener is gone) is replaced.
    drop(StdListener::bind(&path).unwrap());
    let server = IpcServer::bind(poll.registry(), IpcConfig::new(&path, 0)).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, DEFAULT_MODE);

    // A live one is not.
    match IpcServer::bind(poll.registry(), IpcConfig::new(&path, 10)) {
        Err(BindError::InUse(p)) => assert_eq!(p, path),
        other => panic!("expected InUse, got {other:?}"),
    }
    // Dropping the server removes its socket.
    drop(server);
    assert!(!path.exists());

    // A file that is not a socket is left alone.
    std::fs::write(&path, b"precious").unwrap();
    assert!(matches!(
        IpcServer::bind(poll.registry(), IpcConfig::new(&path, 0)),
        Err(BindError::NotASocket(_))
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    std::fs::remove_file(&path).unwrap();

    // A custom mode is applied.
    let mut config = IpcConfig::new(&path, 0);
    config.mode = 0o700;
    let server = IpcServer::bind(poll.registry(), config).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700);
    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("s.sock")]);
    drop(server);
}

#[test]
fn dropping_an_old_server_keeps_a_newer_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let poll = Poll::new().unwrap();
    let old = IpcServer::bind(poll.registry(), IpcConfig::new(&path, 0)).unwrap();
    // Someone replaced the socket file (a newer executive after ours hung).
    std::fs::remove_file(&path).unwrap();
    let _newer = StdListener::bind(&path).unwrap();
    drop(old);
    assert!(path.exists());
}

#[test]
fn invalid_configs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let poll = Poll::new().unwrap();
    let cases: [fn(&mut IpcConfig); 5] = [
        |c| c.max_connections = 0,
        |c| c.max_queue_bytes = MAX_FRAME_BYTES - 1,
        |c| c.max_queue_frames = 0,
        |c| c.frames_per_round = 0,
        |c| c.token_base = usize::MAX - 3,
    ];
    for tweak in cases {
        let mut config = IpcConfig::new(dir.path().join("s.sock"), 0);
        tweak(&mut config);
        assert!(matches!(
            IpcServer::bind(poll.registry(), config),
            Err(BindError::InvalidConfig(_))
        ));
    }
    let long = dir.path().join("x".repeat(120));
    assert!(matches!(
        IpcServer::bind(poll.registry(), IpcConfig::new(long, 0)),
        Err(BindError::PathTooLong(_))
    ));
}

#[test]
fn tokens_are_owned_by_range() {
    let h = Harness::with(|config| config.max_connections = 3);
    assert!(!h.server.owns(Token(TOKEN_BASE - 1)));
    assert!(h.server.owns(Token(TOKEN_BASE)));
    assert!(h.server.owns(Token(TOKEN_BASE + 3)));
    assert!(!h.server.owns(Token(TOKEN_BASE + 4)));
}

/// The libais client against this server: a server loop in a thread that
/// answers Hellos with `hello_reply` and echoes requests, after a callback.
fn serve_libais(
    mut h: Harness,
    hello_reply: HelloReply,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<IpcEvent>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        // Once stopped, go on until every client has gone (5 s at most).
        let mut stopped_at = None;
        loop {
            if stopped_at.is_none() && stop.load(std::sync::atomic::Ordering::Relaxed) {
                stopped_at = Some(Instant::now());
            }
            if let Some(at) = stopped_at {
                if h.server.connection_count() == 0 || at.elapsed() > WAIT {
                    break;
                }
            }
            for event in h.turn(Duration::from_millis(10)) {
                if let IpcEvent::Frame { conn, frame } = &event {
                    if let Ok(hello) = Hello::decode(frame) {
                        let reply = hello_reply.encode(hello.service.code());
                        h.send(*conn, reply).unwrap();
                    } else {
                        let callback = Frame::callback(ServiceId::Cfg, 1, frame.body.clone());
                        h.send(*conn, callback.encode().unwrap()).unwrap();
                        let reply =
                            Frame::response(frame.service, frame.id, Ok(()), frame.body.clone());
                        h.send(*conn, reply.encode().unwrap()).unwrap();
                    }
                }
                seen.push(event);
            }
        }
        seen
    })
}

#[test]
fn libais_client_talks_to_the_server() {
    use ais::client::{ClientConfig, Connection};
    let h = Harness::new();
    let config = ClientConfig::with_socket(h.path());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = serve_libais(h, HelloReply::accepted(Version::B_01_01), stop.clone());

    let mut conn = Connection::connect_with(&config, ServiceId::Cfg, Version::B_01_01).unwrap();
    let reply = conn.request(4, b"echo").unwrap();
    assert_eq!((reply.status, &reply.body[..]), (Ok(()), &b"echo"[..]));
    let callback = conn.recv_callback(false).unwrap().unwrap();
    assert_eq!((callback.id, &callback.body[..]), (1, &b"echo"[..]));
    let big = vec![3u8; MAX_BODY_BYTES];
    assert_eq!(conn.request(5, &big).unwrap().body.len(), MAX_BODY_BYTES);
    drop(conn);

    let second = Connection::connect_with(&config, ServiceId::Cfg, Version::new(b'B', 1, 0));
    assert_eq!(second.unwrap().version(), Version::B_01_01);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = server.join().unwrap();
    let closed = seen
        .iter()
        .filter(|e| {
            matches!(
                e,
                IpcEvent::Closed {
                    reason: CloseReason::PeerClosed { mid_frame: false },
                    ..
                }
            )
        })
        .count();
    assert_eq!(closed, 2, "{seen:?}");
}

#[test]
fn libais_client_sees_refusals() {
    use ais::client::{ClientConfig, Connection};
    // Credentials not allowed: ACCESS, before any Hello is read.
    let mut h = Harness::new();
    h.server.fake_creds = Some(Creds {
        pid: 1,
        uid: 4242,
        gid: 4242,
    });
    let config = ClientConfig::with_socket(h.path());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = serve_libais(h, HelloReply::accepted(Version::B_01_01), stop.clone());
    assert_eq!(
        Connection::connect_with(&config, ServiceId::Cfg, Version::B_01_01).unwrap_err(),
        AisError::Access
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(server.join().unwrap().is_empty());

    // A service the executive does not host.
    let h = Harness::new();
    let config = ClientConfig::with_socket(h.path());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = serve_libais(h, HelloReply::refused(AisError::NotSupported), stop.clone());
    assert_eq!(
        Connection::connect_with(&config, ServiceId::Backup, Version::B_01_01).unwrap_err(),
        AisError::NotSupported
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    server.join().unwrap();

    // Over the connection limit: NO_RESOURCES.
    let h = Harness::with(|config| config.max_connections = 1);
    let config = ClientConfig::with_socket(h.path());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = serve_libais(h, HelloReply::accepted(Version::B_01_01), stop.clone());
    let first = Connection::connect_with(&config, ServiceId::Cfg, Version::B_01_01).unwrap();
    assert_eq!(
        Connection::connect_with(&config, ServiceId::Cfg, Version::B_01_01).unwrap_err(),
        AisError::NoResources
    );
    drop(first);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    server.join().unwrap();
}

#[test]
fn frames_are_written_in_batches_at_the_end_of_the_turn() {
    let mut h = Harness::new();
    let (mut client, id) = h.connected();
    for i in 0..3 {
        h.server.send(id, response(i, b"batched")).unwrap();
    }
    assert!(h.server.has_unflushed());
    client.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        client.read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "nothing is written before the flush"
    );
    h.server.flush_pending();
    client.set_nonblocking(false).unwrap();
    for i in 0..3 {
        let f = read_frame(&mut client);
        assert_eq!((f.id, &f.body[..]), (i, &b"batched"[..]));
    }
    // A full batch is written without waiting for the flush.
    let big = vec![0u8; 70 * 1024];
    h.server.send(id, response(9, &big)).unwrap();
    assert!(!h.server.has_unflushed(), "a full batch went out at once");
    assert_eq!(read_frame(&mut client).id, 9);
}

/// A client that is slow to read for a moment is written to by the kernel,
/// not queued in the executive: an admitted connection's socket holds more
/// than a socket of the system's default size (a few 64 KiB deliveries).
#[test]
fn an_admitted_connection_gets_a_large_socket_buffer() {
    let mut h = Harness::new();
    let (_client, id) = h.connected();
    let frame = response(0, &vec![7u8; 64 * 1024]);
    let mut in_kernel = 0;
    loop {
        h.send(id, frame.clone()).unwrap();
        if h.server.queued(id) != Some((0, 0)) {
            break;
        }
        in_kernel += 1;
        assert!(in_kernel < 10_000, "the socket never filled");
    }

    let (mut plain, _plain_peer) = StdStream::pair().unwrap();
    plain.set_nonblocking(true).unwrap();
    let mut default = 0;
    while plain.write(&frame).is_ok() {
        default += 1;
    }
    assert!(
        in_kernel > default,
        "{in_kernel} frames in the kernel against {default} with the default buffer"
    );
}
