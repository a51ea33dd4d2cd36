//! The BACKUP engine with CKPT on a fake ring: N service tables whose
//! multicasts go into one queue delivered to every member in order, with
//! configuration changes injected and the file jobs answered by the test
//! (the daemon's workers' part). Deterministic scenarios: a whole backup,
//! master takeover mid-backup, a destination error on one node and on all,
//! bounded transient retries, a vanished checkpoint.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use proto::backup::{self, Completion, ErrorClass, JobPhase, Start, StartReply};
use proto::backup_file::{FileDigest, Manifest};
use proto::ckpt::{self, CreationAttributes, Open, OpenReply, SectionCreate};
use proto::{AisError, ServiceId};
use services::backup::{BackupIo, BackupIoDone};
use services::clm::LocalNode;
use services::{ClientOutput, ConnId, RingTx, ServiceTable};
use totem::{ConfigChange, ConfigKind, Delivery, Guarantee, Instant, McastError, NodeId, RingId};

fn n(i: u32) -> NodeId {
    NodeId::new(i).unwrap()
}

/// How the test answers a file job (`None`: not at all).
type IoAnswer = Option<Result<FileDigest, (ErrorClass, String)>>;

#[derive(Default)]
struct Queue(VecDeque<(NodeId, Bytes, Guarantee)>);

struct Tx<'a> {
    me: NodeId,
    q: &'a mut Queue,
}

impl RingTx for Tx<'_> {
    fn mcast(&mut self, payload: Bytes, g: Guarantee) -> Result<(), McastError> {
        self.q.0.push_back((self.me, payload, g));
        Ok(())
    }
}

struct Cluster {
    tables: Vec<(NodeId, ServiceTable)>,
    q: Queue,
    ring: RingId,
    members: Vec<NodeId>,
    out: Vec<(NodeId, ClientOutput)>,
    /// File jobs the tables handed out, per node, not answered yet.
    io: BTreeMap<u32, Vec<BackupIo>>,
    now: Instant,
}

impl Cluster {
    fn new(ids: &[u32]) -> Cluster {
        let tables = ids
            .iter()
            .map(|&i| {
                let local = LocalNode {
                    address: format!("127.0.0.{i}"),
                    family: proto::clm::AddressFamily::Inet,
                    name: format!("node{i}"),
                    boot_timestamp_ns: 1_000_000_000 * i64::from(i),
                };
                let t = ServiceTable::new(n(i), services::standard_engines(local, &[])).unwrap();
                (n(i), t)
            })
            .collect();
        let mut c = Cluster {
            tables,
            q: Queue::default(),
            ring: RingId { seq: 0, rep: n(1) },
            members: Vec::new(),
            out: Vec::new(),
            io: BTreeMap::new(),
            now: Instant::ZERO,
        };
        c.configure(ids);
        c
    }

    /// Node `id` restarts: a fresh table, out of the ring until the next
    /// [`Cluster::configure`] names it.
    fn restart(&mut self, id: u32) {
        let i = self.idx(id);
        let local = LocalNode {
            address: format!("127.0.0.{id}"),
            family: proto::clm::AddressFamily::Inet,
            name: format!("node{id}"),
            boot_timestamp_ns: 9_000_000_000,
        };
        self.tables[i].1 =
            ServiceTable::new(n(id), services::standard_engines(local, &[])).unwrap();
        self.io.remove(&id);
        self.members.retain(|m| *m != n(id));
    }

    fn idx(&self, id: u32) -> usize {
        self.tables.iter().position(|t| t.0 == n(id)).unwrap()
    }

    /// Installs a configuration of `members` (transitional then regular).
    fn configure(&mut self, members: &[u32]) {
        let new: Vec<NodeId> = members.iter().map(|&i| n(i)).collect();
        let old = std::mem::replace(&mut self.members, new.clone());
        self.ring = RingId {
            seq: self.ring.seq + 4,
            rep: new[0],
        };
        let trans: Vec<NodeId> = old.iter().copied().filter(|m| new.contains(m)).collect();
        for (id, t) in &mut self.tables {
            if !new.contains(id) {
                continue;
            }
            let mut tx = Tx {
                me: *id,
                q: &mut self.q,
            };
            if old.contains(id) {
                let tc = ConfigChange {
                    kind: ConfigKind::Transitional,
                    ring_id: self.ring,
                    members: trans.clone(),
                    left: old.iter().copied().filter(|m| !trans.contains(m)).collect(),
                    joined: vec![],
                };
                t.confchg(self.now, &mut tx, &tc);
            }
            let rc = ConfigChange {
                kind: ConfigKind::Regular,
                ring_id: self.ring,
                members: new.clone(),
                left: vec![],
                joined: vec![],
            };
            t.confchg(self.now, &mut tx, &rc);
        }
        self.run();
        assert!(
            self.tables
                .iter()
                .filter(|t| self.members.contains(&t.0))
                .all(|t| t.1.synced()),
            "sync finished"
        );
    }

    /// Delivers the queue to every member until nothing is left; collects
    /// outputs and file jobs.
    fn run(&mut self) {
        loop {
            while let Some((origin, payload, guarantee)) = self.q.0.pop_front() {
                let d = Delivery {
                    ring_id: self.ring,
                    origin,
                    guarantee,
                    payload,
                };
                for (id, t) in &mut self.tables {
                    if !self.members.contains(id) {
                        continue;
                    }
                    let mut tx = Tx {
                        me: *id,
                        q: &mut self.q,
                    };
                    t.deliver(self.now, &mut tx, &d);
                    t.pump(self.now, &mut tx);
                }
            }
            // Retries (a refused multicast) fire at their deadline.
            self.now = self.now + std::time::Duration::from_millis(50);
            for (id, t) in &mut self.tables {
                if !self.members.contains(id) {
                    continue;
                }
                let mut tx = Tx {
                    me: *id,
                    q: &mut self.q,
                };
                if t.poll_timeout().is_some_and(|d| d <= self.now) {
                    t.handle_timeout(self.now, &mut tx);
                }
            }
            if self.q.0.is_empty() {
                break;
            }
        }
        for (id, t) in &mut self.tables {
            for o in t.take_outputs() {
                self.out.push((*id, o));
            }
            while let Some(io) = t.poll_backup_io() {
                self.io.entry(id.get()).or_default().push(io);
            }
        }
    }

    fn request(&mut self, node: u32, service: ServiceId, conn: u64, id: u16, body: Bytes) {
        let i = self.idx(node);
        let (me, t) = &mut self.tables[i];
        let mut tx = Tx {
            me: *me,
            q: &mut self.q,
        };
        t.lib_init(self.now, &mut tx, service, ConnId(conn));
        t.lib_request(self.now, &mut tx, service, ConnId(conn), id, body);
        self.run();
    }

    fn take(&mut self, node: u32, conn: u64) -> Vec<ClientOutput> {
        let (mine, rest) = std::mem::take(&mut self.out)
            .into_iter()
            .partition(|(id, o)| *id == n(node) && o.conn() == ConnId(conn));
        self.out = rest;
        mine.into_iter().map(|(_, o)| o).collect()
    }

    /// Creates checkpoint `name` with one section of `data` through node 1.
    fn checkpoint(&mut self, name: &str, data: &[u8]) {
        let a = CreationAttributes {
            creation_flags: ckpt::WR_ALL_REPLICAS,
            checkpoint_size: 4096,
            retention_duration_ns: ckpt::TIME_END,
            max_sections: 4,
            max_section_size: 1024,
            max_section_id_size: 16,
        };
        let open = Open {
            name: Bytes::copy_from_slice(name.as_bytes()),
            attributes: Some(a),
            open_flags: ckpt::OPEN_READ | ckpt::OPEN_WRITE | ckpt::OPEN_CREATE,
        };
        self.request(1, ServiceId::Ckpt, 100, ckpt::OPEN, open.encode());
        let out = self.take(1, 100);
        let handle = match &out[..] {
            [ClientOutput::Response {
                result: Ok(()),
                body,
                ..
            }] => OpenReply::decode(body).unwrap().handle,
            other => panic!("open: {other:?}"),
        };
        let sc = SectionCreate {
            handle,
            section_id: Bytes::from_static(b"s"),
            expiration_time_ns: ckpt::TIME_END,
            initial_data: Bytes::copy_from_slice(data),
        };
        self.request(1, ServiceId::Ckpt, 100, ckpt::SECTION_CREATE, sc.encode());
        let out = self.take(1, 100);
        assert!(
            matches!(&out[..], [ClientOutput::Response { result: Ok(()), .. }]),
            "{out:?}"
        );
    }

    /// Starts a backup of everything (or `names`) through `node`.
    fn start(&mut self, node: u32, dest: &str, names: &[&str]) -> u64 {
        let s = Start {
            invocation: 5,
            destination: dest.into(),
            checkpoints: names
                .iter()
                .map(|x| Bytes::copy_from_slice(x.as_bytes()))
                .collect(),
        };
        self.request(node, ServiceId::Backup, 200, backup::START, s.encode());
        let out = self.take(node, 200);
        match &out[..] {
            [ClientOutput::Response {
                result: Ok(()),
                body,
                ..
            }] => StartReply::decode(body).unwrap().backup_id,
            other => panic!("start: {other:?}"),
        }
    }

    /// Answers every pending file job of `node` with `answer` (None: leave
    /// it unanswered, as a node that dies would); returns the manifests
    /// written.
    fn answer(
        &mut self,
        node: u32,
        answer: &mut dyn FnMut(&BackupIo) -> IoAnswer,
    ) -> Vec<Manifest> {
        let jobs = self.io.remove(&node).unwrap_or_default();
        let mut manifests = Vec::new();
        let i = self.idx(node);
        for io in jobs {
            let Some(result) = answer(&io) else {
                continue;
            };
            let done = match &io {
                BackupIo::WriteData {
                    backup_id, item, ..
                } => BackupIoDone {
                    backup_id: *backup_id,
                    item: Some(*item),
                    result,
                },
                BackupIo::WriteManifest {
                    backup_id,
                    manifest,
                    ..
                } => {
                    manifests.push(manifest.clone());
                    BackupIoDone {
                        backup_id: *backup_id,
                        item: None,
                        result,
                    }
                }
                BackupIo::Remove { .. } => continue,
            };
            let (me, t) = &mut self.tables[i];
            let mut tx = Tx {
                me: *me,
                q: &mut self.q,
            };
            t.handle_backup_io_done(self.now, &mut tx, done);
        }
        self.run();
        manifests
    }

    fn completion(&mut self, node: u32) -> Completion {
        let out = self.take(node, 200);
        match &out[..] {
            [ClientOutput::Callback { id, body, .. }] => {
                assert_eq!(*id, backup::CB_COMPLETE);
                Completion::decode(body).unwrap()
            }
            other => panic!("expected the completion on node {node}: {other:?}"),
        }
    }
}

fn ok(_: &BackupIo) -> IoAnswer {
    Some(Ok(FileDigest {
        size: 100,
        crc32: 7,
    }))
}

fn data_jobs(c: &Cluster, node: u32) -> Vec<u32> {
    c.io.get(&node)
        .map(|v| {
            v.iter()
                .filter_map(|io| match io {
                    BackupIo::WriteData { item, .. } => Some(*item),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn six(c: &mut Cluster) {
    for i in 0..6 {
        c.checkpoint(&format!("ck{i}"), &vec![i as u8; 100 + i * 10]);
    }
}

#[test]
fn a_backup_splits_the_shares_and_answers_the_requester_node() {
    let mut c = Cluster::new(&[1, 2, 3]);
    six(&mut c);
    let id = c.start(3, "/backups", &[]);
    // Every node got its share, the six checkpoints split 2/2/2.
    let shares: Vec<usize> = (1..=3).map(|node| data_jobs(&c, node).len()).collect();
    assert_eq!(shares, vec![2, 2, 2]);
    for node in [2, 3] {
        assert!(c.answer(node, &mut ok).is_empty());
    }
    // Master (node 1) writes the manifest once its own share is in.
    let m = c.answer(1, &mut ok);
    assert!(m.is_empty(), "no manifest before STOP");
    let m = c.answer(1, &mut ok);
    assert_eq!(m.len(), 1, "the master writes the manifest");
    assert_eq!(m[0].entries.len(), 6);
    assert_eq!(m[0].members, vec![1, 2, 3]);
    assert_eq!(m[0].master, 1);
    let done = c.completion(3);
    assert_eq!(done.status, Ok(()));
    assert_eq!(done.job.backup_id, id);
    assert_eq!(done.job.phase, JobPhase::Done);
    assert_eq!(done.job.checkpoints_done, 6);
    assert!(c.take(1, 200).is_empty() && c.take(2, 200).is_empty());
}

#[test]
fn master_takeover_reschedules_the_departed_share_and_finishes() {
    let mut c = Cluster::new(&[1, 2, 3]);
    six(&mut c);
    let id = c.start(3, "/backups", &[]);
    let master_items = data_jobs(&c, 1);
    assert_eq!(master_items.len(), 2);
    // Node 2 finishes its share; then the master dies before it reports.
    c.answer(2, &mut ok);
    c.io.remove(&1);
    c.configure(&[2, 3]);
    // Node 2, the new master, rescheduled the two checkpoints of node 1
    // onto the survivors.
    let queued: Vec<u32> = [2, 3].iter().flat_map(|&nd| data_jobs(&c, nd)).collect();
    for item in &master_items {
        assert!(
            queued.contains(item),
            "item {item} of node 1 not rescheduled"
        );
    }
    c.answer(3, &mut ok);
    let m = c.answer(2, &mut ok);
    let m = if m.is_empty() {
        c.answer(2, &mut ok)
    } else {
        m
    };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].master, 2);
    assert_eq!(m[0].entries.len(), 6);
    assert!(m[0].entries.iter().all(|e| e.written_by != 1));
    let done = c.completion(3);
    assert_eq!(done.status, Ok(()));
    assert_eq!(done.job.backup_id, id);
    assert_eq!(done.job.master, 2);
}

#[test]
fn destination_errors_move_the_share_or_abort_when_none_can_write() {
    let mut c = Cluster::new(&[1, 2, 3]);
    six(&mut c);
    c.start(1, "/backups", &[]);
    let full = |_: &BackupIo| Some(Err((ErrorClass::DestinationFull, "ENOSPC".into())));
    c.answer(2, &mut { full });
    // Node 2's share went to nodes 1 and 3.
    assert_eq!(data_jobs(&c, 1).len() + data_jobs(&c, 3).len(), 6);
    c.answer(3, &mut ok);
    let mut m = c.answer(1, &mut ok);
    while m.is_empty() {
        c.answer(3, &mut ok);
        m = c.answer(1, &mut ok);
    }
    assert_eq!(m[0].entries.len(), 6);
    assert_eq!(m[0].errors.len(), 1);
    assert_eq!(m[0].errors[0].node, 2);
    assert_eq!(m[0].errors[0].class, ErrorClass::DestinationFull);
    let done = c.completion(1);
    assert_eq!(done.status, Ok(()));
    assert_eq!(done.job.errors.len(), 1);

    // Not writable anywhere: aborted with the reason, every node removes.
    c.start(2, "/readonly", &[]);
    let ro = |_: &BackupIo| {
        Some(Err((
            ErrorClass::DestinationNotWritable,
            "read-only file system".into(),
        )))
    };
    for node in 1..=3 {
        c.answer(node, &mut { ro });
    }
    let done = c.completion(2);
    assert_eq!(done.status, Err(AisError::FailedOperation));
    assert_eq!(done.job.phase, JobPhase::Aborted);
    assert!(
        done.job.reason.contains("no node can write"),
        "{}",
        done.job.reason
    );
    assert_eq!(done.job.errors.len(), 3);
    for node in 1..=3 {
        let removes = c.io[&node]
            .iter()
            .filter(|io| matches!(io, BackupIo::Remove { .. }))
            .count();
        assert_eq!(removes, 1, "node {node} removes its files");
    }
}

#[test]
fn transient_errors_are_retried_a_bounded_number_of_times_and_vanished_ones_not_at_all() {
    let mut c = Cluster::new(&[1, 2, 3]);
    c.checkpoint("a", b"aaaa");
    c.start(1, "/b", &["a", "gone"]);
    let owner = (1..=3).find(|&nd| !data_jobs(&c, nd).is_empty()).unwrap();
    let busy = |_: &BackupIo| Some(Err((ErrorClass::Transient, "EBUSY".into())));
    for attempt in 1..=backup_attempts() {
        assert_eq!(data_jobs(&c, owner).len(), 1, "attempt {attempt}");
        c.answer(owner, &mut { busy });
    }
    assert!(
        data_jobs(&c, owner).is_empty(),
        "no attempt beyond the bound"
    );
    let m = c.answer(1, &mut ok);
    assert_eq!(m.len(), 1);
    assert!(m[0].entries.is_empty());
    let classes: Vec<(String, ErrorClass)> = m[0]
        .failed
        .iter()
        .map(|f| (String::from_utf8_lossy(&f.name).into_owned(), f.class))
        .collect();
    assert_eq!(
        classes,
        vec![
            ("a".to_owned(), ErrorClass::Transient),
            ("gone".to_owned(), ErrorClass::Vanished)
        ]
    );
    let done = c.completion(1);
    assert_eq!(done.status, Ok(()), "complete, with a failed list");
    assert_eq!(done.job.failed.len(), 2);
}

fn backup_attempts() -> u32 {
    services::backup::MAX_TRANSIENT_ATTEMPTS
}

#[test]
fn a_restarted_master_rebuilds_the_job_from_the_registrations() {
    let mut c = Cluster::new(&[1, 2, 3]);
    six(&mut c);
    let id = c.start(3, "/backups", &[]);
    // The master dies; node 2 takes over and moves node 1's share.
    c.restart(1);
    c.configure(&[2, 3]);
    // Node 1 comes back empty before the shares are written: it is the
    // master again, knows the job only from the BACKUP sync's REGISTERs,
    // and holds no snapshot, so it takes no share.
    c.configure(&[1, 2, 3]);
    assert!(data_jobs(&c, 1).is_empty(), "no share without the snapshot");
    c.answer(2, &mut ok);
    c.answer(3, &mut ok);
    let m = c.answer(1, &mut ok);
    assert_eq!(m.len(), 1, "the restarted master writes the manifest");
    assert_eq!(m[0].master, 1);
    assert_eq!(m[0].entries.len(), 6);
    let names: Vec<String> = m[0]
        .entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect();
    assert_eq!(names, (0..6).map(|i| format!("ck{i}")).collect::<Vec<_>>());
    assert!(m[0]
        .entries
        .iter()
        .all(|e| e.written_by != 1 && e.data_bytes > 0));
    let done = c.completion(3);
    assert_eq!(done.status, Ok(()));
    assert_eq!(done.job.backup_id, id);
}
