//! A lone node (node 1, the standard engines) that has formed its ring of
//! one and finished its first sync, as a daemon is once it is ready.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use node::{ConnId, Creds, Node, NodeConfig, NodeEvent, NodeInfo};
use proto::clm::AddressFamily;
use proto::setup::Hello;
use proto::{Frame, FrameKind, ServiceId};
use services::clm::LocalNode;
use totem::{Instant, NodeId, RingId, RingState, TotemConfig};

/// How many clients the harness node accepts (the daemon's default is
/// larger; a small table makes the full-table path reachable).
pub const MAX_CLIENTS: usize = 8;

const CREDS: Creds = Creds {
    pid: 1,
    uid: 0,
    gid: 0,
};

/// A ready lone node and its simulated clock.
#[derive(Debug)]
pub struct LoneNode {
    /// The node.
    pub node: Node,
    /// Its clock.
    pub now: Instant,
    /// Frames sent to clients, all decoded (a frame that did not decode
    /// would have panicked).
    pub frames_out: u64,
    /// Responses kept for [`LoneNode::call`] (the fuzz programs keep
    /// none, so a long input cannot grow this).
    responses: Vec<(ConnId, Frame)>,
    keep_responses: bool,
    /// Connections the node asked to close (the harness closed them).
    closed_by_node: BTreeSet<ConnId>,
}

impl LoneNode {
    /// Node 1 with CLM, EVS and CKPT, run until its ring is operational and
    /// synced.
    ///
    /// # Panics
    /// If the lone ring does not form within a simulated minute: a bug of
    /// ours, not of the input.
    pub fn ready() -> LoneNode {
        let me = NodeId::new(1).expect("1 is a node id");
        let totem = TotemConfig::new(me).validate().expect("defaults are valid");
        let local = LocalNode {
            address: "127.0.0.1".into(),
            family: AddressFamily::Inet,
            name: "one".into(),
            boot_timestamp_ns: 1_700_000_000_000_000_000,
        };
        let cfg = NodeConfig {
            totem,
            engines: services::standard_engines(local, &[]),
            directory: BTreeMap::from([(
                me,
                NodeInfo {
                    addr: "127.0.0.1:5405".into(),
                    name: "one".into(),
                },
            )]),
            max_clients: MAX_CLIENTS,
            observe: false,
        };
        let now = Instant::ZERO;
        let node = Node::new(cfg, now).expect("standard engines form a table");
        let mut lone = LoneNode {
            node,
            now,
            frames_out: 0,
            responses: Vec::new(),
            keep_responses: false,
            closed_by_node: BTreeSet::new(),
        };
        for _ in 0..600 {
            lone.advance(Duration::from_millis(100));
            if lone.node.totem().state() == RingState::Operational && lone.node.services().synced()
            {
                return lone;
            }
        }
        panic!("a lone node did not form its ring");
    }

    /// The ring and its state, to compare before and after.
    pub fn ring(&self) -> (RingId, RingState, Vec<NodeId>) {
        let t = self.node.totem();
        (t.ring_id(), t.state(), t.members().to_vec())
    }

    /// Runs the clock forward by `by`, firing timers; datagrams go nowhere
    /// (a ring of one needs no peer) and client output is drained.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(t) = self.node.poll_timeout() {
            if t > until {
                break;
            }
            self.now = t.max(self.now);
            self.node.handle_timeout(self.now);
            self.drain();
        }
        self.now = until;
        self.drain();
    }

    /// A datagram from the network.
    pub fn packet(&mut self, datagram: Bytes) {
        self.node.handle_packet(self.now, datagram);
        self.drain();
    }

    /// A new client connection (None when the table is full, as the daemon
    /// would refuse it).
    pub fn connect(&mut self) -> Option<ConnId> {
        self.node.client_connected(CREDS)
    }

    /// A new connection that has said Hello to `service`.
    pub fn connect_to(&mut self, service: ServiceId) -> Option<ConnId> {
        let conn = self.connect()?;
        let hello = Hello {
            service,
            version: version_of(service),
        };
        self.frame(conn, hello.to_frame());
        Some(conn)
    }

    /// Sends request `id` with `body` on `conn` (set up for `service`) and
    /// runs the clock until its response comes.
    ///
    /// # Panics
    /// If no response comes within a simulated minute.
    pub fn call(&mut self, conn: ConnId, service: ServiceId, id: u16, body: Bytes) -> Frame {
        self.keep_responses = true;
        self.frame(conn, Frame::request(service, id, body));
        for _ in 0..60_000 {
            if let Some(i) = self.responses.iter().position(|(c, _)| *c == conn) {
                let (_, frame) = self.responses.remove(i);
                assert_eq!((frame.service, frame.id), (service.code(), id));
                return frame;
            }
            self.advance(Duration::from_millis(1));
        }
        panic!("no response to request {id} of {service:?}");
    }

    /// Whether the node asked to close `conn` (refused or in violation).
    pub fn closed_by_node(&self, conn: ConnId) -> bool {
        self.closed_by_node.contains(&conn)
    }

    /// Keeps responses from now on, for [`LoneNode::take_responses`].
    pub fn keep_responses(&mut self) {
        self.keep_responses = true;
    }

    /// The responses `conn` got since the last call, in order.
    pub fn take_responses(&mut self, conn: ConnId) -> Vec<Frame> {
        let (mine, rest) = std::mem::take(&mut self.responses)
            .into_iter()
            .partition(|(c, _)| *c == conn);
        self.responses = rest;
        mine.into_iter().map(|(_, f)| f).collect()
    }

    /// A connection set up for `service`.
    ///
    /// # Panics
    /// If the node refuses it (its table is full) or refuses its Hello.
    pub fn open(&mut self, service: ServiceId) -> ConnId {
        self.keep_responses = true;
        let conn = self.connect_to(service).expect("a free connection slot");
        let i = self
            .responses
            .iter()
            .position(|(c, _)| *c == conn)
            .expect("a hello reply");
        let (_, reply) = self.responses.remove(i);
        let reply = proto::HelloReply::decode(&reply).expect("a hello reply");
        assert_eq!(reply.status, Ok(()), "hello to {service:?} refused");
        conn
    }

    /// A frame from a client.
    pub fn frame(&mut self, conn: ConnId, frame: Frame) {
        self.node.client_frame(self.now, conn, frame);
        self.drain();
    }

    /// The client went away.
    pub fn close(&mut self, conn: ConnId) {
        self.node.client_closed(self.now, conn);
        self.drain();
    }

    /// Drains every output in the documented order. Every frame for a
    /// client must decode (the daemon would otherwise send garbage), and a
    /// connection the node asks to close is closed, as the daemon does.
    pub fn drain(&mut self) {
        while self.node.poll_transmit().is_some() {}
        while let Some((conn, encoded)) = self.node.poll_client_output() {
            let bytes = encoded.to_bytes();
            let frame = Frame::decode(&bytes).expect("the node sends only well-formed frames");
            assert_eq!(frame.encode().as_ref(), Ok(&bytes));
            self.frames_out += 1;
            if self.keep_responses && frame.kind == FrameKind::Response {
                self.responses.push((conn, frame));
            }
        }
        let mut closing = Vec::new();
        while let Some(ev) = self.node.poll_event() {
            if let NodeEvent::CloseClient(c) = ev {
                closing.push(c);
            }
        }
        for c in closing {
            self.node.client_closed(self.now, c);
            self.closed_by_node.insert(c);
        }
    }
}

/// The interface version a current client of `service` asks for.
pub fn version_of(service: ServiceId) -> proto::Version {
    match service {
        ServiceId::Evs => proto::evs::VERSION,
        ServiceId::Clm => proto::clm::VERSION,
        ServiceId::Ckpt => proto::ckpt::VERSION,
        ServiceId::Cfg => proto::status::VERSION,
        ServiceId::Backup => proto::Version::B_01_01,
    }
}
