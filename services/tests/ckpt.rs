//! The CKPT engine on a fake ring: service tables (CLM, EVS, CKPT, as a
//! standard executive has them) whose multicasts go into one queue per
//! ring, delivered to every member of that ring in order (a perfect total
//! order). Configuration changes can split the nodes into partitions,
//! merge them, crash and restart nodes; messages not yet delivered at a
//! change are sent again by their sender in its new ring, as Totem does
//! with what it has not sent. Totem itself is tested elsewhere; this checks
//! the checkpoint semantics, the write modes, expiry and the sync.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use proto::ckpt::{self as ck, CreationAttributes, SectionsChosen};
use proto::clm::AddressFamily;
use proto::{AisError, ServiceId};
use services::ckpt::{Ckpt, CkptConfig};
use services::clm::{Clm, LocalNode};
use services::evs::Evs;
use services::{ClientOutput, ConnId, Engine, RingTx, ServiceTable};
use totem::{ConfigChange, ConfigKind, Delivery, Guarantee, Instant, McastError, NodeId, RingId};

/// The wall clock at `Instant::ZERO` of every node (2023-11-14).
const WALL0: i64 = 1_700_000_000_000_000_000;
const SEC: i64 = 1_000_000_000;

fn n(i: u32) -> NodeId {
    NodeId::new(i).unwrap()
}

struct Ring {
    id: RingId,
    members: Vec<NodeId>,
    q: VecDeque<(NodeId, Bytes, Guarantee)>,
}

struct Tx<'a> {
    me: NodeId,
    rings: &'a mut Vec<Ring>,
    /// Refuse multicasts of more bytes than this (0: all; a full Totem
    /// queue refuses what does not fit).
    room: usize,
}

impl RingTx for Tx<'_> {
    fn mcast(&mut self, payload: Bytes, g: Guarantee) -> Result<(), McastError> {
        if payload.len() > self.room {
            return Err(McastError::QueueFull);
        }
        if let Some(r) = self.rings.iter_mut().find(|r| r.members.contains(&self.me)) {
            r.q.push_back((self.me, payload, g));
        }
        Ok(())
    }
}

struct Node {
    id: NodeId,
    limit: u64,
    table: ServiceTable,
    /// The largest multicast its ring takes now (`usize::MAX`: any).
    room: usize,
    /// The members of its last regular configuration (None: down or new).
    last: Option<Vec<NodeId>>,
    up: bool,
}

fn table(id: NodeId, limit: u64) -> ServiceTable {
    let local = LocalNode {
        address: format!("127.0.0.{id}"),
        family: AddressFamily::Inet,
        name: format!("node{id}"),
        boot_timestamp_ns: WALL0,
    };
    let engines: Vec<Box<dyn Engine>> = vec![
        Box::new(Clm::new(local)),
        Box::new(Evs::new()),
        Box::new(Ckpt::new(CkptConfig {
            memory_limit_bytes: limit,
            wall_clock_at_zero_ns: WALL0,
        })),
    ];
    ServiceTable::new(id, engines).unwrap()
}

struct Cluster {
    nodes: Vec<Node>,
    rings: Vec<Ring>,
    seq: u64,
    out: Vec<(NodeId, ClientOutput)>,
    now: Instant,
}

impl Cluster {
    fn new(ids: &[u32]) -> Cluster {
        Cluster::with_limits(&ids.iter().map(|&i| (i, 1 << 30)).collect::<Vec<_>>())
    }

    fn with_limits(spec: &[(u32, u64)]) -> Cluster {
        Cluster {
            nodes: spec
                .iter()
                .map(|&(i, limit)| Node {
                    id: n(i),
                    limit,
                    table: table(n(i), limit),
                    room: usize::MAX,
                    last: None,
                    up: true,
                })
                .collect(),
            rings: Vec::new(),
            seq: 0,
            out: Vec::new(),
            now: Instant::ZERO,
        }
    }

    fn idx(&self, id: u32) -> usize {
        self.nodes.iter().position(|x| x.id == n(id)).unwrap()
    }

    /// Installs partitions (each a ring), as Totem would: a transitional
    /// then a regular configuration on every member; then runs until
    /// quiet. Undelivered messages are sent again in their sender's new
    /// ring (after the change).
    fn configure(&mut self, parts: &[&[u32]]) {
        self.configure_quiet(parts);
        self.run();
    }

    /// As [`Cluster::configure`] without running the ring afterwards.
    fn configure_quiet(&mut self, parts: &[&[u32]]) {
        let mut leftovers: Vec<(NodeId, Bytes, Guarantee)> = Vec::new();
        for r in self.rings.drain(..) {
            leftovers.extend(r.q);
        }
        for p in parts {
            self.seq += 4;
            let members: Vec<NodeId> = p.iter().map(|&i| n(i)).collect();
            self.rings.push(Ring {
                id: RingId {
                    seq: self.seq,
                    rep: members[0],
                },
                members,
                q: VecDeque::new(),
            });
        }
        for ri in 0..self.rings.len() {
            let ring_id = self.rings[ri].id;
            let new = self.rings[ri].members.clone();
            for ni in 0..self.nodes.len() {
                let id = self.nodes[ni].id;
                if !new.contains(&id) {
                    continue;
                }
                let old = self.nodes[ni].last.clone();
                let (trans, joined) = match &old {
                    Some(old) => {
                        let trans: Vec<NodeId> =
                            old.iter().copied().filter(|m| new.contains(m)).collect();
                        let joined = new.iter().copied().filter(|m| !trans.contains(m)).collect();
                        (Some((trans, old.clone())), joined)
                    }
                    None => (None, new.iter().copied().filter(|&m| m != id).collect()),
                };
                let mut tx = Tx {
                    me: id,
                    rings: &mut self.rings,
                    room: usize::MAX,
                };
                let t = &mut self.nodes[ni].table;
                if let Some((trans, old)) = trans {
                    let tc = ConfigChange {
                        kind: ConfigKind::Transitional,
                        ring_id,
                        members: trans.clone(),
                        left: old.iter().copied().filter(|m| !trans.contains(m)).collect(),
                        joined: vec![],
                    };
                    t.confchg(self.now, &mut tx, &tc);
                }
                let rc = ConfigChange {
                    kind: ConfigKind::Regular,
                    ring_id,
                    members: new.clone(),
                    left: vec![],
                    joined,
                };
                t.confchg(self.now, &mut tx, &rc);
                self.nodes[ni].last = Some(new.clone());
            }
        }
        for (from, payload, g) in leftovers {
            if let Some(r) = self.rings.iter_mut().find(|r| r.members.contains(&from)) {
                r.q.push_back((from, payload, g));
            }
        }
        self.collect();
    }

    /// Crashes a node: it is gone, with what it had not sent.
    fn crash(&mut self, id: u32) {
        let i = self.idx(id);
        self.nodes[i].up = false;
        for r in &mut self.rings {
            r.q.retain(|m| m.0 != n(id));
            r.members.retain(|&m| m != n(id));
        }
    }

    /// Restarts a crashed node with an empty store.
    fn restart(&mut self, id: u32) {
        let i = self.idx(id);
        let limit = self.nodes[i].limit;
        self.nodes[i] = Node {
            id: n(id),
            limit,
            table: table(n(id), limit),
            room: usize::MAX,
            last: None,
            up: true,
        };
    }

    /// Delivers one message of each ring; false when all were empty.
    fn step(&mut self) -> bool {
        let mut any = false;
        for ri in 0..self.rings.len() {
            let Some((origin, payload, guarantee)) = self.rings[ri].q.pop_front() else {
                continue;
            };
            any = true;
            let d = Delivery {
                ring_id: self.rings[ri].id,
                origin,
                guarantee,
                payload,
            };
            let members = self.rings[ri].members.clone();
            for node in self.nodes.iter_mut().filter(|x| members.contains(&x.id)) {
                let mut tx = Tx {
                    me: node.id,
                    rings: &mut self.rings,
                    room: node.room,
                };
                node.table.deliver(self.now, &mut tx, &d);
                node.table.pump(self.now, &mut tx);
            }
        }
        self.collect();
        any
    }

    fn run(&mut self) {
        while self.step() {}
    }

    fn collect(&mut self) {
        for node in &mut self.nodes {
            for o in node.table.take_outputs() {
                self.out.push((node.id, o));
            }
        }
    }

    /// Moves time on, firing every timer that comes due, running the ring
    /// after each.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = self
                .nodes
                .iter()
                .filter(|x| x.up)
                .filter_map(|x| x.table.poll_timeout())
                .filter(|&t| t <= end)
                .min();
            let Some(t) = next else {
                break;
            };
            self.now = self.now.max(t);
            for ni in 0..self.nodes.len() {
                if !self.nodes[ni].up {
                    continue;
                }
                let id = self.nodes[ni].id;
                let mut tx = Tx {
                    me: id,
                    rings: &mut self.rings,
                    room: self.nodes[ni].room,
                };
                let now = self.now;
                self.nodes[ni].table.handle_timeout(now, &mut tx);
            }
            self.collect();
            self.run();
        }
        self.now = end;
    }

    /// Lets a node's sync make progress (the node does it after every
    /// input; here the ring may be idle).
    fn pump(&mut self, node: u32) {
        let i = self.idx(node);
        let id = self.nodes[i].id;
        let mut tx = Tx {
            me: id,
            rings: &mut self.rings,
            room: self.nodes[i].room,
        };
        self.nodes[i].table.pump(self.now, &mut tx);
        self.collect();
    }

    fn connect(&mut self, node: u32, conn: u64) {
        let i = self.idx(node);
        let id = self.nodes[i].id;
        let mut tx = Tx {
            me: id,
            rings: &mut self.rings,
            room: usize::MAX,
        };
        self.nodes[i]
            .table
            .lib_init(self.now, &mut tx, ServiceId::Ckpt, ConnId(conn));
        self.collect();
    }

    fn disconnect(&mut self, node: u32, conn: u64) {
        let i = self.idx(node);
        let id = self.nodes[i].id;
        let mut tx = Tx {
            me: id,
            rings: &mut self.rings,
            room: usize::MAX,
        };
        self.nodes[i]
            .table
            .lib_exit(self.now, &mut tx, ServiceId::Ckpt, ConnId(conn));
        self.collect();
        self.run();
    }

    /// Sends a request without running the ring.
    fn send(&mut self, node: u32, conn: u64, id: u16, body: Bytes) {
        let i = self.idx(node);
        let me = self.nodes[i].id;
        let mut tx = Tx {
            me,
            rings: &mut self.rings,
            room: usize::MAX,
        };
        self.nodes[i]
            .table
            .lib_request(self.now, &mut tx, ServiceId::Ckpt, ConnId(conn), id, body);
        self.collect();
    }

    /// Sends a request, runs the ring, returns the response.
    fn call(
        &mut self,
        node: u32,
        conn: u64,
        id: u16,
        body: Bytes,
    ) -> (Result<(), AisError>, Bytes) {
        self.send(node, conn, id, body);
        self.run();
        self.response(node, conn, id)
    }

    /// Takes the oldest response to (node, conn) for request `id`.
    fn response(&mut self, node: u32, conn: u64, want: u16) -> (Result<(), AisError>, Bytes) {
        let pos = self
            .out
            .iter()
            .position(|(nd, o)| {
                *nd == n(node)
                    && matches!(o, ClientOutput::Response { conn: c, id, .. }
                        if *c == ConnId(conn) && *id == want)
            })
            .unwrap_or_else(|| panic!("no response {want} for node {node} conn {conn}"));
        match self.out.remove(pos).1 {
            ClientOutput::Response { result, body, .. } => (result, body),
            ClientOutput::Callback { .. } | ClientOutput::Frame { .. } => unreachable!(),
        }
    }

    /// Takes every callback for (node, conn).
    fn callbacks(&mut self, node: u32, conn: u64) -> Vec<(u16, Bytes)> {
        let (mine, rest): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.out)
                .into_iter()
                .partition(|(nd, o)| {
                    *nd == n(node)
                        && matches!(o, ClientOutput::Callback { conn: c, .. } if *c == ConnId(conn))
                });
        self.out = rest;
        mine.into_iter()
            .map(|(_, o)| match o {
                ClientOutput::Callback { id, body, .. } => (id, body),
                ClientOutput::Response { .. } | ClientOutput::Frame { .. } => unreachable!(),
            })
            .collect()
    }

    fn dump(&self, node: u32) -> String {
        let t = &self.nodes[self.idx(node)].table;
        t.engine(ServiceId::Ckpt).unwrap().dump()
    }

    /// The CKPT dump's first line (the digest of the replicated state).
    fn digest(&self, node: u32) -> String {
        let t = &self.nodes[self.idx(node)].table;
        let d = t.engine(ServiceId::Ckpt).unwrap().dump();
        d.lines().next().unwrap().to_string()
    }

    fn assert_identical(&self, nodes: &[u32]) {
        let first = self.digest(nodes[0]);
        for &x in &nodes[1..] {
            assert_eq!(
                self.digest(x),
                first,
                "node {x} differs from node {}",
                nodes[0]
            );
        }
    }

    // ----- the API, one call each ------------------------------------------

    fn open(
        &mut self,
        node: u32,
        conn: u64,
        name: &str,
        attrs: Option<CreationAttributes>,
        flags: u32,
    ) -> Result<u64, AisError> {
        let o = ck::Open {
            name: Bytes::copy_from_slice(name.as_bytes()),
            attributes: attrs,
            open_flags: flags,
        };
        let (r, body) = self.call(node, conn, ck::OPEN, o.encode());
        r.map(|()| ck::OpenReply::decode(&body).unwrap().handle)
    }

    fn close(&mut self, node: u32, conn: u64, handle: u64) -> Result<(), AisError> {
        self.call(node, conn, ck::CLOSE, ck::HandleRequest { handle }.encode())
            .0
    }

    fn unlink(&mut self, node: u32, conn: u64, name: &str) -> Result<(), AisError> {
        let u = ck::Unlink {
            name: Bytes::copy_from_slice(name.as_bytes()),
        };
        self.call(node, conn, ck::UNLINK, u.encode()).0
    }

    fn create(
        &mut self,
        node: u32,
        conn: u64,
        handle: u64,
        id: &[u8],
        exp: i64,
        data: &[u8],
    ) -> Result<Bytes, AisError> {
        let s = ck::SectionCreate {
            handle,
            section_id: Bytes::copy_from_slice(id),
            expiration_time_ns: exp,
            initial_data: Bytes::copy_from_slice(data),
        };
        let (r, body) = self.call(node, conn, ck::SECTION_CREATE, s.encode());
        r.map(|()| ck::SectionCreateReply::decode(&body).unwrap().section_id)
    }

    fn write(
        &mut self,
        node: u32,
        conn: u64,
        handle: u64,
        els: &[(&[u8], u64, &[u8])],
    ) -> Result<(), (AisError, Option<u32>)> {
        let (r, body) = self.call(node, conn, ck::WRITE, write_body(handle, els));
        r.map_err(|e| (e, ck::ErroneousIndex::decode(&body).ok().map(|i| i.index)))
    }

    fn read(
        &mut self,
        node: u32,
        conn: u64,
        handle: u64,
        els: &[(&[u8], u64, u64)],
    ) -> Result<Vec<Bytes>, (AisError, Option<u32>)> {
        let r = ck::Read {
            handle,
            elements: els
                .iter()
                .map(|&(id, offset, size)| ck::ReadElement {
                    section_id: Bytes::copy_from_slice(id),
                    offset,
                    size,
                })
                .collect(),
        };
        let (r, body) = self.call(node, conn, ck::READ, r.encode());
        match r {
            Ok(()) => Ok(ck::ReadReply::decode(&body).unwrap().data),
            Err(e) => Err((e, ck::ErroneousIndex::decode(&body).ok().map(|i| i.index))),
        }
    }

    /// Reads a whole section (up to `maxSectionSize` bytes).
    fn read1(&mut self, node: u32, conn: u64, handle: u64, id: &[u8]) -> Result<Bytes, AisError> {
        let max = self.status(node, conn, handle)?.attributes.max_section_size;
        self.read(node, conn, handle, &[(id, 0, max)])
            .map(|mut v| v.remove(0))
            .map_err(|e| e.0)
    }

    fn status(
        &mut self,
        node: u32,
        conn: u64,
        handle: u64,
    ) -> Result<ck::CheckpointStatus, AisError> {
        let (r, body) = self.call(
            node,
            conn,
            ck::STATUS_GET,
            ck::HandleRequest { handle }.encode(),
        );
        r.map(|()| ck::CheckpointStatus::decode(&body).unwrap())
    }

    fn simple(&mut self, node: u32, conn: u64, id: u16, handle: u64) -> Result<(), AisError> {
        self.call(node, conn, id, ck::HandleRequest { handle }.encode())
            .0
    }

    /// Iterates with a filter; the section ids in order.
    fn iterate(
        &mut self,
        node: u32,
        conn: u64,
        handle: u64,
        chosen: SectionsChosen,
        t: i64,
    ) -> Vec<ck::SectionDescriptor> {
        let ii = ck::IterationInitialize {
            handle,
            sections_chosen: chosen,
            expiration_time_ns: t,
        };
        let (r, body) = self.call(node, conn, ck::ITERATION_INITIALIZE, ii.encode());
        assert_eq!(r, Ok(()));
        let it = ck::IterationReply::decode(&body).unwrap().iteration;
        let mut v = Vec::new();
        loop {
            let (r, body) = self.call(
                node,
                conn,
                ck::ITERATION_NEXT,
                ck::IterationRequest { iteration: it }.encode(),
            );
            match r {
                Ok(()) => v.push(ck::SectionDescriptor::decode(&body).unwrap()),
                Err(e) => {
                    assert_eq!(e, AisError::NoSections);
                    break;
                }
            }
        }
        let (r, _) = self.call(
            node,
            conn,
            ck::ITERATION_FINALIZE,
            ck::IterationRequest { iteration: it }.encode(),
        );
        assert_eq!(r, Ok(()));
        v
    }

    fn list(&mut self, node: u32, conn: u64) -> Vec<ck::CheckpointInfo> {
        let (r, body) = self.call(node, conn, ck::LIST, ck::List { after: None }.encode());
        assert_eq!(r, Ok(()));
        ck::ListReply::decode(&body).unwrap().entries
    }
}

fn write_body(handle: u64, els: &[(&[u8], u64, &[u8])]) -> Bytes {
    ck::Write {
        handle,
        elements: els
            .iter()
            .map(|&(id, offset, data)| ck::WriteElement {
                section_id: Bytes::copy_from_slice(id),
                offset,
                data: Bytes::copy_from_slice(data),
            })
            .collect(),
    }
    .encode()
}

fn attrs(flags: u32) -> CreationAttributes {
    CreationAttributes {
        creation_flags: flags,
        checkpoint_size: 100_000,
        retention_duration_ns: 0,
        max_sections: 10,
        max_section_size: 10_000,
        max_section_id_size: 16,
    }
}

const RWC: u32 = ck::OPEN_READ | ck::OPEN_WRITE | ck::OPEN_CREATE;
const RW: u32 = ck::OPEN_READ | ck::OPEN_WRITE;

/// Three synchronized nodes, one client connection (conn 1) on each.
fn three() -> Cluster {
    let mut c = Cluster::new(&[1, 2, 3]);
    c.configure(&[&[1, 2, 3]]);
    for i in 1..=3 {
        c.connect(i, 1);
    }
    c
}

#[test]
fn write_on_one_node_read_on_the_others_and_every_request_answers() {
    let mut c = three();
    let h1 = c
        .open(1, 1, "ckpt", Some(attrs(ck::WR_ALL_REPLICAS)), RWC)
        .unwrap();
    let h2 = c.open(2, 1, "ckpt", None, RW).unwrap();
    let h3 = c.open(3, 1, "ckpt", None, ck::OPEN_READ).unwrap();
    assert_eq!(
        c.create(1, 1, h1, b"s1", ck::TIME_END, b"hello"),
        Ok(Bytes::from_static(b"s1"))
    );
    // A generated id.
    let g = c.create(2, 1, h2, b"", ck::TIME_END, b"gen").unwrap();
    assert_eq!(g, Bytes::from_static(b"1"));
    assert_eq!(
        c.write(1, 1, h1, &[(b"s1", 5, b" world"), (b"1", 0, b"GEN")]),
        Ok(())
    );
    for (node, h) in [(2, h2), (3, h3)] {
        let got = c
            .read(node, 1, h, &[(b"s1", 0, 100), (b"s1", 6, 3), (b"1", 0, 10)])
            .unwrap();
        assert_eq!(
            got,
            vec![
                Bytes::from_static(b"hello world"),
                Bytes::from_static(b"wor"),
                Bytes::from_static(b"GEN")
            ]
        );
    }
    // Overwrite, status, delete, expiration set.
    let o = ck::SectionOverwrite {
        handle: h2,
        section_id: Bytes::from_static(b"s1"),
        data: Bytes::from_static(b"new"),
    };
    assert_eq!(c.call(2, 1, ck::SECTION_OVERWRITE, o.encode()).0, Ok(()));
    assert_eq!(c.read1(3, 1, h3, b"s1"), Ok(Bytes::from_static(b"new")));
    let st = c.status(3, 1, h3).unwrap();
    assert_eq!((st.number_of_sections, st.memory_used), (2, 6));
    assert_eq!(st.attributes, attrs(ck::WR_ALL_REPLICAS));
    let e = ck::SectionExpirationTimeSet {
        handle: h1,
        section_id: Bytes::from_static(b"1"),
        expiration_time_ns: WALL0 + 3600 * SEC,
    };
    assert_eq!(
        c.call(1, 1, ck::SECTION_EXPIRATION_TIME_SET, e.encode()).0,
        Ok(())
    );
    let d = ck::SectionDelete {
        handle: h1,
        section_id: Bytes::from_static(b"1"),
    };
    assert_eq!(c.call(1, 1, ck::SECTION_DELETE, d.encode()).0, Ok(()));
    assert_eq!(
        c.call(1, 1, ck::SECTION_DELETE, d.encode()).0,
        Err(AisError::NotExist)
    );
    // A read-only handle may not write.
    assert_eq!(
        c.write(3, 1, h3, &[(b"s1", 0, b"x")]),
        Err((AisError::Access, None))
    );
    // Synchronize: BAD_OPERATION for ALL_REPLICAS.
    assert_eq!(
        c.simple(1, 1, ck::SYNCHRONIZE, h1),
        Err(AisError::BadOperation)
    );
    // The store status and the listing.
    let (r, body) = c.call(2, 1, ck::STORE_STATUS, Bytes::new());
    assert_eq!(r, Ok(()));
    let ss = ck::StoreStatus::decode(&body).unwrap();
    assert_eq!(
        (
            ss.node_id,
            ss.synced,
            ss.checkpoints,
            ss.sections,
            ss.data_bytes
        ),
        (2, true, 1, 1, 3)
    );
    assert_eq!(format!("digest {:08x}", ss.digest), c.digest(2)[..15]);
    let l = c.list(3, 1);
    assert_eq!(l.len(), 1);
    assert_eq!((l[0].openers, l[0].sections, l[0].linked), (3, 1, true));
    c.assert_identical(&[1, 2, 3]);
    // Close everywhere; retention 0 deletes it.
    for (node, h) in [(1, h1), (2, h2), (3, h3)] {
        assert_eq!(c.close(node, 1, h), Ok(()));
    }
    assert_eq!(c.close(1, 1, h1), Err(AisError::BadHandle));
    assert!(c.list(1, 1).is_empty());
    c.assert_identical(&[1, 2, 3]);
}

#[test]
fn async_open_and_synchronize_echo_their_invocations() {
    let mut c = three();
    let oa = ck::OpenAsync {
        invocation: 4242,
        open: ck::Open {
            name: Bytes::from_static(b"a"),
            attributes: Some(attrs(ck::WR_ACTIVE_REPLICA)),
            open_flags: RWC,
        },
    };
    let (r, _) = c.call(2, 1, ck::OPEN_ASYNC, oa.encode());
    assert_eq!(r, Ok(()));
    let cbs = c.callbacks(2, 1);
    assert_eq!(cbs.len(), 1);
    assert_eq!(cbs[0].0, ck::CB_OPEN);
    let cb = ck::OpenCallback::decode(&cbs[0].1).unwrap();
    assert_eq!((cb.invocation, cb.status), (4242, Ok(())));
    let h = cb.handle;
    // A failing async open reports through the callback too.
    let bad = ck::OpenAsync {
        invocation: 7,
        open: ck::Open {
            name: Bytes::from_static(b"missing"),
            attributes: None,
            open_flags: RW,
        },
    };
    assert_eq!(c.call(2, 1, ck::OPEN_ASYNC, bad.encode()).0, Ok(()));
    let cb = ck::OpenCallback::decode(&c.callbacks(2, 1)[0].1).unwrap();
    assert_eq!(
        (cb.invocation, cb.status, cb.handle),
        (7, Err(AisError::NotExist), 0)
    );
    // Synchronize (active-replica mode): OK, and async with its callback.
    assert_eq!(c.simple(2, 1, ck::SYNCHRONIZE, h), Ok(()));
    let sa = ck::SynchronizeAsync {
        handle: h,
        invocation: 99,
    };
    assert_eq!(c.call(2, 1, ck::SYNCHRONIZE_ASYNC, sa.encode()).0, Ok(()));
    let cbs = c.callbacks(2, 1);
    assert_eq!(cbs[0].0, ck::CB_SYNCHRONIZE);
    let s = ck::SynchronizeCallback::decode(&cbs[0].1).unwrap();
    assert_eq!((s.invocation, s.status), (99, Ok(())));
}

#[test]
fn open_checks_flags_attributes_and_existence() {
    let mut c = three();
    let a = attrs(ck::WR_ALL_REPLICAS);
    assert_eq!(c.open(1, 1, "x", None, RW), Err(AisError::NotExist));
    assert_eq!(
        c.open(1, 1, "x", None, RWC),
        Err(AisError::InvalidParam),
        "CREATE needs attributes"
    );
    assert_eq!(
        c.open(1, 1, "x", Some(a), RW),
        Err(AisError::InvalidParam),
        "attributes need CREATE"
    );
    assert_eq!(c.open(1, 1, "x", None, 0x10 | RW), Err(AisError::BadFlags));
    let bad = [
        CreationAttributes {
            creation_flags: 0,
            ..a
        },
        CreationAttributes {
            creation_flags: ck::WR_ALL_REPLICAS | ck::WR_ACTIVE_REPLICA,
            ..a
        },
        CreationAttributes {
            max_sections: 0,
            ..a
        },
        CreationAttributes {
            checkpoint_size: 10 * 10_000 + 1,
            ..a
        },
        CreationAttributes {
            max_section_id_size: 100_000,
            ..a
        },
        CreationAttributes {
            max_section_size: 1 << 30,
            checkpoint_size: 1,
            ..a
        },
        CreationAttributes {
            retention_duration_ns: -1,
            ..a
        },
    ];
    for b in bad {
        assert_eq!(
            c.open(1, 1, "x", Some(b), RWC),
            Err(AisError::InvalidParam),
            "{b:?}"
        );
    }
    let h = c.open(1, 1, "x", Some(a), RWC).unwrap();
    // Same attributes (retention aside): opens the same checkpoint.
    let other_retention = CreationAttributes {
        retention_duration_ns: 5,
        ..a
    };
    let h2 = c.open(2, 1, "x", Some(other_retention), RWC).unwrap();
    assert_ne!(h, 0);
    assert_ne!(h2, 0);
    let mismatch = CreationAttributes {
        max_sections: 11,
        ..a
    };
    assert_eq!(c.open(3, 1, "x", Some(mismatch), RWC), Err(AisError::Exist));
    assert_eq!(
        c.simple(3, 1, ck::STATUS_GET, 12345),
        Err(AisError::BadHandle)
    );
    assert_eq!(c.list(1, 1)[0].openers, 2);
}

#[test]
fn limits_give_no_space_and_invalid_param_and_a_failed_write_changes_nothing() {
    let mut c = three();
    let a = CreationAttributes {
        creation_flags: ck::WR_ALL_REPLICAS,
        checkpoint_size: 250,
        retention_duration_ns: 0,
        max_sections: 3,
        max_section_size: 100,
        max_section_id_size: 4,
    };
    let h = c.open(1, 1, "lim", Some(a), RWC).unwrap();
    assert_eq!(
        c.create(1, 1, h, b"toolong", ck::TIME_END, b""),
        Err(AisError::InvalidParam)
    );
    assert_eq!(
        c.create(1, 1, h, b"a", ck::TIME_END, &[0; 101]),
        Err(AisError::InvalidParam)
    );
    c.create(1, 1, h, b"a", ck::TIME_END, &[1; 100]).unwrap();
    c.create(1, 1, h, b"b", ck::TIME_END, &[2; 100]).unwrap();
    assert_eq!(
        c.create(1, 1, h, b"a", ck::TIME_END, b""),
        Err(AisError::Exist)
    );
    assert_eq!(
        c.create(1, 1, h, b"c", ck::TIME_END, &[3; 51]),
        Err(AisError::NoSpace),
        "checkpointSize"
    );
    c.create(1, 1, h, b"c", ck::TIME_END, &[3; 50]).unwrap();
    assert_eq!(
        c.create(1, 1, h, b"d", ck::TIME_END, b""),
        Err(AisError::NoSpace),
        "maxSections"
    );
    let before = c.digest(1);
    // Element 1 runs past maxSectionSize: nothing of element 0 is applied.
    assert_eq!(
        c.write(1, 1, h, &[(b"a", 0, b"zz"), (b"b", 99, b"zz")]),
        Err((AisError::InvalidParam, Some(1)))
    );
    assert_eq!(
        c.write(1, 1, h, &[(b"a", 0, b"zz"), (b"nope", 0, b"zz")]),
        Err((AisError::NotExist, Some(1)))
    );
    assert_eq!(
        c.write(1, 1, h, &[(b"a", 0, b"")]),
        Err((AisError::InvalidParam, Some(0)))
    );
    // Growing "c" by 1 passes checkpointSize.
    assert_eq!(
        c.write(1, 1, h, &[(b"a", 0, b"zz"), (b"c", 50, b"z")]),
        Err((AisError::NoSpace, Some(1)))
    );
    assert_eq!(c.digest(1), before);
    c.assert_identical(&[1, 2, 3]);
    // Reads: past the end, over the section size.
    assert_eq!(
        c.read(2, 1, 0, &[(b"a", 0, 1)]),
        Err((AisError::BadHandle, None))
    );
    let h2 = c.open(2, 1, "lim", None, ck::OPEN_READ).unwrap();
    assert_eq!(
        c.read(2, 1, h2, &[(b"a", 101, 1)]),
        Err((AisError::InvalidParam, Some(0)))
    );
    assert_eq!(
        c.read(2, 1, h2, &[(b"a", 0, 1), (b"c", 0, 101)]),
        Err((AisError::InvalidParam, Some(1)))
    );
    assert_eq!(
        c.read(2, 1, h2, &[(b"a", 100, 5)]).unwrap(),
        vec![Bytes::new()]
    );
    // The default section of a one-section checkpoint.
    let one = CreationAttributes {
        max_sections: 1,
        checkpoint_size: 100,
        ..a
    };
    let d = c.open(3, 1, "one", Some(one), RWC).unwrap();
    assert_eq!(c.write(3, 1, d, &[(b"", 0, b"default")]), Ok(()));
    let r1 = c_open_read(&mut c, 1, "one");
    assert_eq!(c.read1(1, 1, r1, b""), Ok(Bytes::from_static(b"default")));
    assert_eq!(
        c.create(3, 1, d, b"x", ck::TIME_END, b""),
        Err(AisError::NoSpace)
    );
    let del = ck::SectionDelete {
        handle: d,
        section_id: Bytes::new(),
    };
    assert_eq!(
        c.call(3, 1, ck::SECTION_DELETE, del.encode()).0,
        Err(AisError::InvalidParam)
    );
}

fn c_open_read(c: &mut Cluster, node: u32, name: &str) -> u64 {
    c.open(node, 1, name, None, ck::OPEN_READ).unwrap()
}

#[test]
fn all_replicas_write_is_rolled_back_everywhere_when_one_replica_is_over_its_memory_limit() {
    let mut c = Cluster::with_limits(&[(1, 1 << 30), (2, 1 << 30), (3, 3_000)]);
    c.configure(&[&[1, 2, 3]]);
    for i in 1..=3 {
        c.connect(i, 1);
    }
    let h = c
        .open(1, 1, "all", Some(attrs(ck::WR_ALL_REPLICAS)), RWC)
        .unwrap();
    c.create(1, 1, h, b"s", ck::TIME_END, &[7; 1000]).unwrap();
    let h2 = c.open(2, 1, "all", None, RW).unwrap();
    let before = c.digest(1);
    // 3000 more bytes do not fit node 3.
    assert_eq!(
        c.write(2, 1, h2, &[(b"s", 1000, &[8; 3000])]),
        Err((AisError::NoMemory, None))
    );
    assert_eq!(
        c.create(1, 1, h, b"t", ck::TIME_END, &[9; 2500]),
        Err(AisError::NoMemory)
    );
    c.assert_identical(&[1, 2, 3]);
    assert_eq!(c.digest(1), before, "nothing was applied anywhere");
    let h3 = c.open(3, 1, "all", None, ck::OPEN_READ).unwrap();
    assert_eq!(c.read1(3, 1, h3, b"s").unwrap().len(), 1000);
    // What fits everywhere is written everywhere.
    assert_eq!(c.write(2, 1, h2, &[(b"s", 1000, &[8; 1000])]), Ok(()));
    assert_eq!(c.read1(3, 1, h3, b"s").unwrap().len(), 2000);
    c.assert_identical(&[1, 2, 3]);
}

#[test]
fn operations_behind_a_pending_write_wait_for_its_decision() {
    let mut c = three();
    let h = c
        .open(1, 1, "q", Some(attrs(ck::WR_ALL_REPLICAS)), RWC)
        .unwrap();
    c.create(1, 1, h, b"s", ck::TIME_END, b"0000").unwrap();
    let h2 = c.open(2, 1, "q", None, RW).unwrap();
    // A write then a read from another node, both in the ring before any
    // vote: the read sees the write.
    c.send(1, 1, ck::WRITE, write_body(h, &[(b"s", 0, b"1111")]));
    let r = ck::Read {
        handle: h2,
        elements: vec![ck::ReadElement {
            section_id: Bytes::from_static(b"s"),
            offset: 0,
            size: 4,
        }],
    };
    c.send(2, 1, ck::READ, r.encode());
    c.run();
    assert_eq!(c.response(1, 1, ck::WRITE).0, Ok(()));
    let (res, body) = c.response(2, 1, ck::READ);
    assert_eq!(res, Ok(()));
    assert_eq!(
        ck::ReadReply::decode(&body).unwrap().data[0],
        Bytes::from_static(b"1111")
    );
}

#[test]
fn active_replica_standby_recovers_a_lost_section_or_marks_it_corrupted() {
    let mut c = Cluster::with_limits(&[(1, 1 << 30), (2, 1 << 30), (3, 4_000)]);
    c.configure(&[&[1, 2, 3]]);
    for i in 1..=3 {
        c.connect(i, 1);
    }
    let a = CreationAttributes {
        max_section_size: 5_000,
        checkpoint_size: 50_000,
        ..attrs(ck::WR_ACTIVE_REPLICA | ck::CHECKPOINT_COLLOCATED)
    };
    let h1 = c.open(1, 1, "act", Some(a), RWC).unwrap();
    let h3 = c.open(3, 1, "act", None, RW).unwrap();
    // Collocated: nothing works before an active replica is set.
    assert_eq!(
        c.create(1, 1, h1, b"s", ck::TIME_END, b"x"),
        Err(AisError::NotExist)
    );
    assert_eq!(c.simple(1, 1, ck::ACTIVE_REPLICA_SET, h1), Ok(()));
    assert_eq!(
        c.list(3, 1)[0].active_replica,
        1,
        "set through the ring, seen everywhere"
    );
    c.create(1, 1, h1, b"big", ck::TIME_END, &[1; 2000])
        .unwrap();
    c.create(1, 1, h1, b"s", ck::TIME_END, &[2; 1000]).unwrap();
    c.assert_identical(&[1, 2, 3]);

    // Recovery that works: the write does not fit node 3, but the delete
    // ordered right after it frees room before the copy arrives.
    c.send(1, 1, ck::WRITE, write_body(h1, &[(b"s", 1000, &[3; 1500])]));
    let del = ck::SectionDelete {
        handle: h1,
        section_id: Bytes::from_static(b"big"),
    };
    c.send(1, 1, ck::SECTION_DELETE, del.encode());
    c.run();
    assert_eq!(
        c.response(1, 1, ck::WRITE).0,
        Ok(()),
        "the active replica applied it"
    );
    assert_eq!(c.response(1, 1, ck::SECTION_DELETE).0, Ok(()));
    c.assert_identical(&[1, 2, 3]);
    assert!(c.iterate(3, 1, h3, SectionsChosen::Corrupted, 0).is_empty());
    assert!(
        c.dump(3).contains("recoveries: 1, corrupted: 0"),
        "{}",
        c.dump(3)
    );

    // Recovery that fails: node 3 cannot hold 4500 bytes.
    assert_eq!(c.write(1, 1, h1, &[(b"s", 2500, &[4; 2000])]), Ok(()));
    let bad = c.iterate(3, 1, h3, SectionsChosen::Corrupted, 0);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].state, ck::SectionState::Corrupted);
    assert_eq!(
        bad[0].section_size, 4500,
        "the size is known, the bytes are not"
    );
    assert!(c.iterate(1, 1, h1, SectionsChosen::Corrupted, 0).is_empty());
    // Readable and writable on node 3 while the active replica lives.
    let got = c.read1(3, 1, h3, b"s").unwrap();
    assert_eq!(got.len(), 4500);
    assert_eq!(got[4499], 4);
    assert_eq!(c.write(3, 1, h3, &[(b"s", 0, b"zz")]), Ok(()));
    assert_eq!(&c.read(3, 1, h3, &[(b"s", 0, 2)]).unwrap()[0][..], b"zz");
    c.assert_identical(&[1, 2]);
    assert_ne!(c.digest(3), c.digest(1), "node 3's replica lacks the bytes");
    // (Every read of it asks a fresh copy, which does not fit either.)
    assert!(!c.dump(3).contains("corrupted: 0"), "{}", c.dump(3));

    // Node 3 becomes the active replica: the section is unreadable there,
    // and unwritable.
    assert_eq!(c.simple(3, 1, ck::ACTIVE_REPLICA_SET, h3), Ok(()));
    assert_eq!(c.read1(3, 1, h3, b"s"), Err(AisError::FailedOperation));
    assert_eq!(
        c.write(1, 1, h1, &[(b"s", 0, b"y")]),
        Err((AisError::FailedOperation, None))
    );
    // An overwrite needs no old bytes: it repairs the section (it fits).
    let o = ck::SectionOverwrite {
        handle: h1,
        section_id: Bytes::from_static(b"s"),
        data: Bytes::from_static(b"fresh"),
    };
    assert_eq!(c.call(1, 1, ck::SECTION_OVERWRITE, o.encode()).0, Ok(()));
    assert_eq!(c.read1(3, 1, h3, b"s"), Ok(Bytes::from_static(b"fresh")));
    c.assert_identical(&[1, 2, 3]);

    // ActiveReplicaSet needs a collocated checkpoint.
    let h = c
        .open(2, 1, "noncol", Some(attrs(ck::WR_ACTIVE_REPLICA)), RWC)
        .unwrap();
    assert_eq!(
        c.simple(2, 1, ck::ACTIVE_REPLICA_SET, h),
        Err(AisError::BadOperation)
    );
}

#[test]
fn active_replica_failure_rejects_the_write() {
    let mut c = Cluster::with_limits(&[(1, 2_000), (2, 1 << 30)]);
    c.configure(&[&[1, 2]]);
    c.connect(1, 1);
    c.connect(2, 1);
    // Created on node 1: its active replica (not collocated).
    let a = CreationAttributes {
        max_section_size: 5_000,
        checkpoint_size: 50_000,
        ..attrs(ck::WR_ACTIVE_REPLICA_WEAK)
    };
    let h1 = c.open(1, 1, "w", Some(a), RWC).unwrap();
    let h2 = c.open(2, 1, "w", None, RW).unwrap();
    c.create(2, 1, h2, b"s", ck::TIME_END, b"abc").unwrap();
    assert_eq!(
        c.write(2, 1, h2, &[(b"s", 0, &[1; 3000])]),
        Err((AisError::NoMemory, None))
    );
    assert_eq!(c.read1(2, 1, h2, b"s"), Ok(Bytes::from_static(b"abc")));
    assert_eq!(c.read1(1, 1, h1, b"s"), Ok(Bytes::from_static(b"abc")));
    c.assert_identical(&[1, 2]);
}

#[test]
fn retention_deletes_a_checkpoint_closed_by_all_once_it_runs_out() {
    let mut c = three();
    let a = CreationAttributes {
        retention_duration_ns: 5 * SEC,
        ..attrs(ck::WR_ALL_REPLICAS)
    };
    let h = c.open(2, 1, "keep", Some(a), RWC).unwrap();
    c.create(2, 1, h, b"s", ck::TIME_END, b"data").unwrap();
    assert_eq!(c.close(2, 1, h), Ok(()));
    c.advance(Duration::from_secs(4));
    assert_eq!(c.list(3, 1).len(), 1, "retained");
    // Reopening stops the clock; closing starts it again.
    let h = c.open(3, 1, "keep", None, ck::OPEN_READ).unwrap();
    c.advance(Duration::from_secs(10));
    assert_eq!(c.read1(3, 1, h, b"s"), Ok(Bytes::from_static(b"data")));
    assert_eq!(c.close(3, 1, h), Ok(()));
    c.advance(Duration::from_secs(4));
    assert_eq!(c.list(1, 1).len(), 1);
    assert_eq!(c.list(1, 1)[0].retention_left_ms, Some(1000));
    c.advance(Duration::from_secs(2));
    for i in 1..=3 {
        assert!(c.list(i, 1).is_empty(), "gone on node {i}");
    }
    assert_eq!(c.open(1, 1, "keep", None, RW), Err(AisError::NotExist));
    c.assert_identical(&[1, 2, 3]);
    // Retention set on an open checkpoint; the lowest member leaves and
    // the next one expires it.
    let h = c
        .open(2, 1, "again", Some(attrs(ck::WR_ALL_REPLICAS)), RWC)
        .unwrap();
    let rs = ck::RetentionDurationSet {
        handle: h,
        retention_duration_ns: 3 * SEC,
    };
    assert_eq!(
        c.call(2, 1, ck::RETENTION_DURATION_SET, rs.encode()).0,
        Ok(())
    );
    assert_eq!(c.close(2, 1, h), Ok(()));
    c.crash(1);
    c.configure(&[&[2, 3]]);
    c.advance(Duration::from_secs(2));
    assert_eq!(c.list(2, 1).len(), 1);
    c.advance(Duration::from_secs(2));
    assert!(c.list(2, 1).is_empty() && c.list(3, 1).is_empty());
}

#[test]
fn unlink_frees_the_name_at_once_and_the_data_at_the_last_close() {
    let mut c = three();
    let a = CreationAttributes {
        retention_duration_ns: ck::TIME_END,
        ..attrs(ck::WR_ALL_REPLICAS)
    };
    let h = c.open(1, 1, "u", Some(a), RWC).unwrap();
    c.create(1, 1, h, b"s", ck::TIME_END, b"old").unwrap();
    assert_eq!(c.unlink(2, 1, "u"), Ok(()));
    assert_eq!(c.unlink(2, 1, "u"), Err(AisError::NotExist));
    assert_eq!(c.open(3, 1, "u", None, RW), Err(AisError::NotExist));
    // The name is free for a new checkpoint; the old handle still works.
    let h3 = c.open(3, 1, "u", Some(a), RWC).unwrap();
    assert_eq!(
        c.create(3, 1, h3, b"s", ck::TIME_END, b"new"),
        Ok(Bytes::from_static(b"s"))
    );
    assert_eq!(c.read1(1, 1, h, b"s"), Ok(Bytes::from_static(b"old")));
    let rs = ck::RetentionDurationSet {
        handle: h,
        retention_duration_ns: 1,
    };
    assert_eq!(
        c.call(1, 1, ck::RETENTION_DURATION_SET, rs.encode()).0,
        Err(AisError::BadOperation)
    );
    let l = c.list(2, 1);
    assert_eq!(l.iter().filter(|i| i.linked).count(), 1);
    assert_eq!(l.len(), 2);
    assert_eq!(c.close(1, 1, h), Ok(()));
    let l = c.list(2, 1);
    assert_eq!(l.len(), 1, "the unlinked one went with its last close");
    assert!(l[0].linked);
    // Retention END: the new one stays though closed by all.
    assert_eq!(c.close(3, 1, h3), Ok(()));
    c.advance(Duration::from_secs(3600));
    assert_eq!(c.list(2, 1).len(), 1);
    c.assert_identical(&[1, 2, 3]);
}

#[test]
fn sections_expire_at_their_time_on_every_replica() {
    let mut c = three();
    let h = c
        .open(1, 1, "exp", Some(attrs(ck::WR_ALL_REPLICAS)), RWC)
        .unwrap();
    c.create(1, 1, h, b"soon", WALL0 + 5 * SEC, b"a").unwrap();
    c.create(1, 1, h, b"later", WALL0 + 50 * SEC, b"b").unwrap();
    c.create(1, 1, h, b"never", ck::TIME_END, b"c").unwrap();
    // Already past: goes at once (as openais, whose tests rely on it).
    c.create(1, 1, h, b"past", 0xFFFF_FFFF, b"d").unwrap();
    c.advance(Duration::from_millis(1));
    let h2 = h_of(&mut c, 2, "exp");
    assert_eq!(c.iterate(2, 1, h2, SectionsChosen::Any, 0).len(), 3);
    c.advance(Duration::from_secs(4));
    let h3 = c.open(3, 1, "exp", None, ck::OPEN_READ).unwrap();
    assert_eq!(c.read1(3, 1, h3, b"soon"), Ok(Bytes::from_static(b"a")));
    c.advance(Duration::from_secs(2));
    assert_eq!(c.read1(3, 1, h3, b"soon"), Err(AisError::NotExist));
    // Moving an expiration time.
    let e = ck::SectionExpirationTimeSet {
        handle: h,
        section_id: Bytes::from_static(b"later"),
        expiration_time_ns: WALL0 + 8 * SEC,
    };
    assert_eq!(
        c.call(1, 1, ck::SECTION_EXPIRATION_TIME_SET, e.encode()).0,
        Ok(())
    );
    let e = ck::SectionExpirationTimeSet {
        handle: h,
        section_id: Bytes::new(),
        expiration_time_ns: 0,
    };
    assert_eq!(
        c.call(1, 1, ck::SECTION_EXPIRATION_TIME_SET, e.encode()).0,
        Err(AisError::InvalidParam)
    );
    c.advance(Duration::from_secs(3));
    assert_eq!(c.read1(3, 1, h3, b"later"), Err(AisError::NotExist));
    assert_eq!(c.read1(3, 1, h3, b"never"), Ok(Bytes::from_static(b"c")));
    c.assert_identical(&[1, 2, 3]);
}

fn h_of(c: &mut Cluster, node: u32, name: &str) -> u64 {
    c.open(node, 1, name, None, ck::OPEN_READ).unwrap()
}

#[test]
fn iteration_filters_by_expiration() {
    let mut c = three();
    let a = CreationAttributes {
        max_sections: 100,
        ..attrs(ck::WR_ALL_REPLICAS)
    };
    let h = c.open(1, 1, "it", Some(a), RWC).unwrap();
    for i in 0..60i64 {
        let exp = if i % 3 == 0 {
            ck::TIME_END
        } else {
            WALL0 + (1000 + i) * SEC
        };
        c.create(1, 1, h, format!("s{i:02}").as_bytes(), exp, &[i as u8])
            .unwrap();
    }
    let h2 = h_of(&mut c, 2, "it");
    let count = |c: &mut Cluster, chosen, t| c.iterate(2, 1, h2, chosen, t).len();
    assert_eq!(count(&mut c, SectionsChosen::Any, 0), 60);
    assert_eq!(count(&mut c, SectionsChosen::Forever, 0), 20);
    // Expirations 1001..=1059 s, i not a multiple of 3.
    assert_eq!(
        count(
            &mut c,
            SectionsChosen::LeqExpirationTime,
            WALL0 + 1030 * SEC
        ),
        20
    );
    assert_eq!(
        count(
            &mut c,
            SectionsChosen::GeqExpirationTime,
            WALL0 + 1030 * SEC
        ),
        20 + 20
    );
    assert_eq!(count(&mut c, SectionsChosen::Corrupted, 0), 0);
    let all = c.iterate(2, 1, h2, SectionsChosen::Any, 0);
    assert_eq!(all[0].section_id, Bytes::from_static(b"s00"));
    assert_eq!(all[59].section_id, Bytes::from_static(b"s59"));
    assert_eq!(
        (all[1].section_size, all[1].state),
        (1, ck::SectionState::Valid)
    );
    assert!(all[1].last_update_ns >= WALL0, "lastUpdate is stamped");
    // Sections deleted mid-iteration are skipped; stale handles refused.
    let ii = ck::IterationInitialize {
        handle: h2,
        sections_chosen: SectionsChosen::Any,
        expiration_time_ns: 0,
    };
    let (_, body) = c.call(2, 1, ck::ITERATION_INITIALIZE, ii.encode());
    let it = ck::IterationReply::decode(&body).unwrap();
    assert_eq!(it.max_section_id_size, 16);
    let next = ck::IterationRequest {
        iteration: it.iteration,
    }
    .encode();
    let (_, first) = c.call(2, 1, ck::ITERATION_NEXT, next.clone());
    assert_eq!(
        ck::SectionDescriptor::decode(&first).unwrap().section_id,
        Bytes::from_static(b"s00")
    );
    let d = ck::SectionDelete {
        handle: h,
        section_id: Bytes::from_static(b"s01"),
    };
    assert_eq!(c.call(1, 1, ck::SECTION_DELETE, d.encode()).0, Ok(()));
    let (_, second) = c.call(2, 1, ck::ITERATION_NEXT, next.clone());
    assert_eq!(
        ck::SectionDescriptor::decode(&second).unwrap().section_id,
        Bytes::from_static(b"s02")
    );
    assert_eq!(c.call(2, 1, ck::ITERATION_FINALIZE, next.clone()).0, Ok(()));
    assert_eq!(
        c.call(2, 1, ck::ITERATION_NEXT, next).0,
        Err(AisError::BadHandle)
    );
}

#[test]
fn a_departed_connection_closes_everything_it_opened() {
    let mut c = three();
    c.connect(2, 2);
    let a = attrs(ck::WR_ALL_REPLICAS);
    let x = c.open(2, 2, "x", Some(a), RWC).unwrap();
    c.open(2, 2, "y", Some(a), RWC).unwrap();
    c.open(2, 2, "y", None, RW).unwrap();
    let keep = c.open(3, 1, "x", None, RW).unwrap();
    // A close in flight when the client goes.
    c.send(2, 2, ck::CLOSE, ck::HandleRequest { handle: x }.encode());
    c.disconnect(2, 2);
    let l = c.list(1, 1);
    assert_eq!(
        l.len(),
        1,
        "y went (retention 0); x is still open on node 3"
    );
    assert_eq!((l[0].name.as_ref(), l[0].openers), (&b"x"[..], 1));
    assert_eq!(c.close(3, 1, keep), Ok(()));
    assert!(c.list(1, 1).is_empty());
    c.assert_identical(&[1, 2, 3]);
}

#[test]
fn opens_of_a_node_that_leaves_are_dropped() {
    let mut c = three();
    let a = CreationAttributes {
        retention_duration_ns: 2 * SEC,
        ..attrs(ck::WR_ALL_REPLICAS)
    };
    let h = c.open(3, 1, "held", Some(a), RWC).unwrap();
    c.create(3, 1, h, b"s", ck::TIME_END, b"v").unwrap();
    c.open(
        1,
        1,
        "gone",
        Some(CreationAttributes {
            retention_duration_ns: 0,
            ..a
        }),
        RWC,
    )
    .unwrap();
    c.crash(3);
    c.crash(1);
    c.restart(1);
    c.configure(&[&[1, 2]]);
    c.connect(1, 1);
    let l = c.list(2, 1);
    assert_eq!(
        l.len(),
        1,
        "retention 0 and nobody left opening it: deleted at the sync"
    );
    assert_eq!(l[0].openers, 0);
    c.advance(Duration::from_secs(3));
    assert!(c.list(2, 1).is_empty(), "then retention ran out");
    c.assert_identical(&[1, 2]);
}

#[test]
fn the_sync_brings_a_joining_node_every_checkpoint() {
    let mut c = Cluster::new(&[1, 2, 3]);
    c.configure(&[&[1, 2]]);
    c.connect(1, 1);
    c.connect(2, 1);
    let a = CreationAttributes {
        retention_duration_ns: 60 * SEC,
        max_section_size: 10_000,
        max_sections: 100,
        checkpoint_size: 1_000_000,
        ..attrs(ck::WR_ACTIVE_REPLICA)
    };
    for k in 0..5 {
        let h = c.open(1, 1, &format!("c{k}"), Some(a), RWC).unwrap();
        for s in 0..20 {
            let id = format!("sec{s}");
            c.create(
                1,
                1,
                h,
                id.as_bytes(),
                WALL0 + (100 + s) * SEC,
                &vec![k as u8; 500 + s as usize],
            )
            .unwrap();
        }
        if k % 2 == 0 {
            c.close(1, 1, h).unwrap();
        }
    }
    c.configure(&[&[1, 2, 3]]);
    c.connect(3, 1);
    c.assert_identical(&[1, 2, 3]);
    let h = h_of(&mut c, 3, "c3");
    assert_eq!(
        c.read1(3, 1, h, b"sec7").unwrap(),
        Bytes::from(vec![3u8; 507])
    );
    let info: Vec<_> = c
        .list(3, 1)
        .into_iter()
        .map(|i| (i.openers, i.active_replica))
        .collect();
    assert_eq!(info, vec![(0, 1), (1, 1), (0, 1), (2, 1), (0, 1)]);
    // The retention deadlines reach the joiner too: closed ones go after
    // 60 s, whoever times them.
    c.crash(1);
    c.configure(&[&[2, 3]]);
    assert_eq!(
        c.list(3, 1)[1].active_replica,
        2,
        "the lowest member took over"
    );
    c.advance(Duration::from_secs(61));
    let left: Vec<_> = c.list(3, 1).into_iter().map(|i| i.name).collect();
    assert_eq!(
        left,
        vec![Bytes::from_static(b"c3")],
        "c1 and c3 lost their opens on node 1; c3 is held by node 3"
    );
}

#[test]
fn a_partition_merge_keeps_one_copy_per_checkpoint_by_the_rule() {
    let mut c = three();
    let a = CreationAttributes {
        retention_duration_ns: ck::TIME_END,
        ..attrs(ck::WR_ALL_REPLICAS)
    };
    let h1 = c.open(1, 1, "shared", Some(a), RWC).unwrap();
    c.create(1, 1, h1, b"s", ck::TIME_END, b"base").unwrap();
    let h3 = c.open(3, 1, "shared", None, RW).unwrap();
    c.configure(&[&[1, 2], &[3]]);
    // Both sides write; {1, 2} twice (higher version), {3} once.
    assert_eq!(c.write(1, 1, h1, &[(b"s", 0, b"AAAA")]), Ok(()));
    assert_eq!(c.write(1, 1, h1, &[(b"s", 4, b"aa")]), Ok(()));
    assert_eq!(c.write(3, 1, h3, &[(b"s", 0, b"CCCC")]), Ok(()));
    // Both sides create "solo" (different checkpoints, one name).
    let s2 = c.open(2, 1, "solo", Some(a), RWC).unwrap();
    c.create(2, 1, s2, b"x", ck::TIME_END, b"from-2").unwrap();
    let s3 = c.open(3, 1, "solo", Some(a), RWC).unwrap();
    c.create(3, 1, s3, b"x", ck::TIME_END, b"from-3").unwrap();
    c.configure(&[&[1, 2, 3]]);
    c.assert_identical(&[1, 2, 3]);
    assert_eq!(
        c.read1(3, 1, h3, b"s"),
        Ok(Bytes::from_static(b"AAAAaa")),
        "the higher version won"
    );
    let l = c.list(1, 1);
    let solos: Vec<_> = l.iter().filter(|i| i.name.as_ref() == b"solo").collect();
    assert_eq!(solos.len(), 2);
    assert_eq!(
        solos.iter().filter(|i| i.linked).count(),
        1,
        "one keeps the name"
    );
    // The lower id (ring seq 8, from {1, 2}... both rings have seq 8: rep
    // 1 < rep 3) keeps the name; the other's openers keep it.
    assert!(solos[0].linked && solos[0].key < solos[1].key);
    let any = h_of(&mut c, 1, "solo");
    assert_eq!(c.read1(1, 1, any, b"x"), Ok(Bytes::from_static(b"from-2")));
    assert_eq!(c.read1(3, 1, s3, b"x"), Ok(Bytes::from_static(b"from-3")));
    assert_eq!(c.close(3, 1, s3), Ok(()));
    assert_eq!(
        c.list(1, 1)
            .iter()
            .filter(|i| i.name.as_ref() == b"solo")
            .count(),
        1
    );
    c.assert_identical(&[1, 2, 3]);
}

#[test]
fn a_write_in_flight_across_a_configuration_change_applies_after_the_sync() {
    let mut c = three();
    let h = c
        .open(1, 1, "f", Some(attrs(ck::WR_ALL_REPLICAS)), RWC)
        .unwrap();
    c.create(1, 1, h, b"s", ck::TIME_END, b"....").unwrap();
    // Sent, not delivered; node 3 joins a new ring meanwhile (a restart).
    c.send(1, 1, ck::WRITE, write_body(h, &[(b"s", 0, b"done")]));
    c.crash(3);
    c.restart(3);
    c.configure(&[&[1, 2, 3]]);
    c.connect(3, 1);
    assert_eq!(c.response(1, 1, ck::WRITE).0, Ok(()));
    c.assert_identical(&[1, 2, 3]);
    let h3 = h_of(&mut c, 3, "f");
    assert_eq!(c.read1(3, 1, h3, b"s"), Ok(Bytes::from_static(b"done")));
}

#[test]
fn a_pending_write_is_settled_by_the_survivors_at_a_configuration_change() {
    let mut c = three();
    let h = c
        .open(1, 1, "p", Some(attrs(ck::WR_ALL_REPLICAS)), RWC)
        .unwrap();
    c.create(1, 1, h, b"s", ck::TIME_END, b"....").unwrap();
    c.send(1, 1, ck::WRITE, write_body(h, &[(b"s", 0, b"next")]));
    // Deliver the write and the votes of nodes 1 and 2; node 3 dies with
    // its vote unsent.
    assert!(c.step());
    c.crash(3);
    c.run();
    c.configure(&[&[1, 2]]);
    assert_eq!(
        c.response(1, 1, ck::WRITE).0,
        Ok(()),
        "every surviving voter said yes"
    );
    c.assert_identical(&[1, 2]);
    let h2 = h_of(&mut c, 2, "p");
    assert_eq!(c.read1(2, 1, h2, b"s"), Ok(Bytes::from_static(b"next")));
}

#[test]
fn requests_wait_for_the_sync_and_a_full_ring_says_try_again() {
    let mut c = Cluster::new(&[1]);
    c.connect(1, 1);
    let o = ck::Open {
        name: Bytes::from_static(b"n"),
        attributes: Some(attrs(ck::WR_ALL_REPLICAS)),
        open_flags: RWC,
    };
    assert_eq!(
        c.call(1, 1, ck::OPEN, o.encode()).0,
        Err(AisError::TryAgain)
    );
    // The store status does not wait.
    assert_eq!(c.call(1, 1, ck::STORE_STATUS, Bytes::new()).0, Ok(()));
    c.configure(&[&[1]]);
    let i = c.idx(1);
    let mut tx = Tx {
        me: n(1),
        rings: &mut c.rings,
        room: 0,
    };
    c.nodes[i].table.lib_request(
        c.now,
        &mut tx,
        ServiceId::Ckpt,
        ConnId(1),
        ck::OPEN,
        o.encode(),
    );
    c.collect();
    assert_eq!(c.response(1, 1, ck::OPEN).0, Err(AisError::TryAgain));
    assert!(c
        .open(1, 1, "n", Some(attrs(ck::WR_ALL_REPLICAS)), RWC)
        .is_ok());
}

#[test]
fn garbage_from_clients_and_peers_is_refused_without_panicking() {
    let mut c = three();
    for id in 0..=20u16 {
        for body in [&b""[..], &[0xFF; 3][..], &[1; 40][..]] {
            c.send(1, 1, id, Bytes::copy_from_slice(body));
        }
    }
    c.run();
    // Forged engine messages from a peer.
    let mut seed: u64 = 7;
    for _ in 0..500 {
        let len = (seed % 64) as usize;
        let body: Vec<u8> = (0..len)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1442695040888963407);
                (seed >> 56) as u8
            })
            .collect();
        let id = (seed % 8) as u16;
        let payload = services::ExecHeader {
            service: ServiceId::Ckpt.code(),
            id,
        }
        .encode_with(&body);
        c.rings[0].q.push_back((n(2), payload, Guarantee::Agreed));
    }
    c.run();
    c.assert_identical(&[1, 2, 3]);
    assert!(c
        .open(2, 1, "still", Some(attrs(ck::WR_ALL_REPLICAS)), RWC)
        .is_ok());
}

#[test]
fn a_section_expires_behind_a_pending_write_in_order() {
    let mut c = three();
    let h = c
        .open(1, 1, "busy", Some(attrs(ck::WR_ALL_REPLICAS)), RWC)
        .unwrap();
    c.create(1, 1, h, b"e", WALL0 + SEC, b"short").unwrap();
    c.create(1, 1, h, b"w", ck::TIME_END, b"....").unwrap();
    // Node 3's ring is full: its vote waits in its outbox, so the write
    // stays pending while the section's time passes.
    let i = c.idx(3);
    c.nodes[i].room = 0;
    c.send(1, 1, ck::WRITE, write_body(h, &[(b"w", 0, b"done")]));
    c.run();
    c.advance(Duration::from_secs(2));
    assert_eq!(
        c.list(2, 1)[0].sections,
        2,
        "the expiry waits behind the write"
    );
    c.nodes[i].room = usize::MAX;
    c.advance(Duration::from_millis(50));
    assert_eq!(c.response(1, 1, ck::WRITE).0, Ok(()));
    assert_eq!(c.list(2, 1)[0].sections, 1);
    let h2 = h_of(&mut c, 2, "busy");
    assert_eq!(c.read1(2, 1, h2, b"e"), Err(AisError::NotExist));
    c.assert_identical(&[1, 2, 3]);
}

#[test]
fn the_sync_waits_for_room_in_the_ring_and_resumes() {
    let mut c = Cluster::new(&[1, 2, 3]);
    c.configure(&[&[1, 2]]);
    c.connect(1, 1);
    let h = c
        .open(1, 1, "big", Some(attrs(ck::WR_ALL_REPLICAS)), RWC)
        .unwrap();
    for s in 0..5u8 {
        c.create(1, 1, h, &[b's', b'0' + s], ck::TIME_END, &[s; 9000])
            .unwrap();
    }
    // Node 3 joins while node 1 (the only holder that sends) finds no
    // room for a section in the ring (barriers and summaries still fit):
    // the step stalls, then resumes when there is room.
    let i = c.idx(1);
    c.nodes[i].room = 4000;
    c.configure(&[&[1, 2, 3]]);
    assert!(!c.nodes[c.idx(3)].table.synced());
    c.nodes[i].room = usize::MAX;
    c.pump(1);
    c.run();
    for node in 1..=3 {
        assert!(c.nodes[c.idx(node)].table.synced(), "node {node}");
    }
    c.assert_identical(&[1, 2, 3]);
    c.connect(3, 1);
    let h3 = h_of(&mut c, 3, "big");
    assert_eq!(
        c.read1(3, 1, h3, b"s4").unwrap(),
        Bytes::from(vec![4u8; 9000])
    );
}
