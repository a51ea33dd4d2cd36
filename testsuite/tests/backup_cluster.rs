//! BACKUP against real 3-node clusters (issue #6, "Must show"):
//! - a consistent cut under a writer that writes k to A then k to B, and a
//!   restore into a fresh cluster that reproduces every checkpoint (digest
//!   of its canonical encoding), refused over existing checkpoints without
//!   the overwrite flag;
//! - kill -9 of the master mid-backup: the survivors finish with every
//!   checkpoint and no partial file; kill -9 of a participant: its share is
//!   rescheduled;
//! - a destination not writable on one node: the share moves and the
//!   result lists the error (through the `ais-backup` tool, with its
//!   progress); missing on every node: the backup aborts with the reason;
//! - `ais-backup verify` detects a flipped byte and a truncated file;
//! - SIGTERM of a participant mid-backup: it finishes and reports the files
//!   it is writing before it leaves, so they stay in the backup;
//! - SIGHUP of a participant and of the master mid-backup: both re-register
//!   their job with the master, and the backup finishes unchanged.
//!
//! Every daemon of this file waits [`WRITE_DELAY_MS`] in each data file
//! write (the workers' test hook), so a backup runs long enough to kill a
//! node in the middle of it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ais::backup::{self, Backup, FileProblem, RestoreError, RestoreOptions};
use ais::ckpt::{Ckpt, ReadElement, WriteElement};
use ais::client::ClientConfig;
use bytes::Bytes;
use nix::sys::signal::Signal;
use proto::backup::{Completion, ErrorClass, JobPhase};
use proto::backup_file::{read_data_file, write_data_file, CheckpointImage, SectionImage};
use proto::ckpt::{
    CreationAttributes, SectionsChosen, MAX_DATA_BYTES, OPEN_CREATE, OPEN_READ, OPEN_WRITE,
    TIME_END, WR_ALL_REPLICAS,
};
use proto::AisError;
use testsuite::procs::{bin_dir, test_port, ClusterSpec, LocalCluster};

const TOKEN_MS: u64 = 400;
const FORM_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a backup may take at most here (wide: the machine is shared).
const BACKUP_TIMEOUT: Duration = Duration::from_secs(90);
/// The workers' test delay per data file.
const WRITE_DELAY_MS: u64 = 1500;
/// This file's `test_port` indexes: 20 and up.
const PORT_BASE: u16 = 20;

fn cluster(port_offset: u16) -> LocalCluster {
    // Same value from every test of this file, so setting it in parallel is
    // harmless; the daemons inherit it.
    std::env::set_var("AIS_BACKUP_TEST_DELAY_MS", WRITE_DELAY_MS.to_string());
    let mut c = LocalCluster::new(ClusterSpec::new(
        3,
        test_port(PORT_BASE + port_offset),
        TOKEN_MS,
    ));
    c.start_all();
    c.wait_ring(&[1, 2, 3], FORM_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
    c
}

fn client(c: &LocalCluster, id: u8) -> ClientConfig {
    let mut cfg = ClientConfig::with_socket(c.node(id).socket());
    cfg.timeout = Duration::from_secs(20);
    cfg
}

fn attrs(max_sections: u32, max_section_size: u64) -> CreationAttributes {
    CreationAttributes {
        creation_flags: WR_ALL_REPLICAS,
        checkpoint_size: max_section_size * u64::from(max_sections),
        retention_duration_ns: TIME_END,
        max_sections,
        max_section_size,
        max_section_id_size: 32,
    }
}

/// Calls `f` again while the cluster answers TRY_AGAIN (a sync running).
fn retry<T>(mut f: impl FnMut() -> Result<T, AisError>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match f() {
            Ok(v) => return v,
            Err(AisError::TryAgain) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cluster call failed: {e}"),
        }
    }
}

/// Creates checkpoint `name` with `sections` (id, data), through `ck`.
fn create(ck: &mut Ckpt, name: &str, a: CreationAttributes, sections: &[(&[u8], Vec<u8>)]) {
    let flags = OPEN_READ | OPEN_WRITE | OPEN_CREATE;
    let h = retry(|| ck.open(name.as_bytes(), Some(a), flags, None));
    for (id, data) in sections {
        let first = data.len().min(MAX_DATA_BYTES);
        if a.max_sections == 1 {
            if !data.is_empty() {
                retry(|| ck.overwrite(&h, id, &data[..first]));
            }
        } else {
            retry(|| ck.section_create(&h, id, TIME_END, &data[..first]));
        }
        let mut off = first;
        while off < data.len() {
            let end = (off + MAX_DATA_BYTES).min(data.len());
            let el = [WriteElement {
                section_id: id,
                offset: off as u64,
                data: &data[off..end],
            }];
            retry(|| ck.write(&h, &el).map_err(|e| e.error));
            off = end;
        }
    }
    retry(|| ck.close(&h));
}

/// Checkpoint `name` as the cluster holds it, read through `ck`.
fn image(ck: &mut Ckpt, name: &[u8]) -> CheckpointImage {
    let h = retry(|| ck.open(name, None, OPEN_READ, None));
    let it = retry(|| ck.iteration_initialize(&h, SectionsChosen::Any, 0));
    let mut sections = Vec::new();
    loop {
        match ck.iteration_next(it.iteration) {
            Ok(d) => sections.push(d),
            Err(AisError::NoSections) => break,
            Err(e) => panic!("iteration: {e}"),
        }
    }
    let _ = ck.iteration_finalize(it.iteration);
    let mut out = Vec::new();
    for d in sections {
        let mut data = Vec::new();
        while (data.len() as u64) < d.section_size {
            let want = (d.section_size - data.len() as u64).min(MAX_DATA_BYTES as u64);
            let el = [ReadElement {
                section_id: &d.section_id,
                offset: data.len() as u64,
                size: Some(want),
            }];
            let got = retry(|| ck.read(&h, &el).map_err(|e| e.error));
            data.extend_from_slice(&got[0]);
        }
        out.push(SectionImage {
            id: d.section_id.clone(),
            expiration_ns: d.expiration_time_ns,
            data: Bytes::from(data),
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    let attributes = h.attributes;
    retry(|| ck.close(&h));
    CheckpointImage {
        name: Bytes::copy_from_slice(name),
        attributes,
        sections: out,
    }
}

/// The digest of a checkpoint: CRC-32 of its canonical encoding (the data
/// file format), so equal digests mean byte-for-byte equal checkpoints.
fn digest(i: &CheckpointImage) -> (u64, u32) {
    let d = write_data_file(Vec::new(), 0, i).expect("in memory");
    (d.size, d.crc32)
}

/// Starts a backup of everything into `dest` through node `id` and waits
/// for its end, checking that progress was visible meanwhile.
fn backup_via(c: &LocalCluster, id: u8, dest: &Path) -> (u64, Backup) {
    let mut b = retry(|| Backup::connect_with(&client(c, id)));
    let backup_id = retry(|| b.start(7, dest, &[]));
    (backup_id, b)
}

fn wait(b: &mut Backup, backup_id: u64) -> Completion {
    let c = b
        .wait_complete(
            backup_id,
            BACKUP_TIMEOUT,
            Duration::from_millis(100),
            &mut |_| {},
        )
        .expect("the backup ends");
    assert_eq!(c.invocation, 7);
    assert_eq!(c.job.backup_id, backup_id);
    c
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("under dir");
                out.insert(rel.to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// The backup in `dest` verifies, and the files under `dest` are exactly
/// its manifest and data files (no partial or orphan file).
fn check_clean_backup(dest: &Path, backup_id: u64) -> backup::VerifyReport {
    let dir = dest.join(proto::backup_file::backup_dir_name(backup_id));
    let r = backup::verify(&dir).expect("manifest reads");
    assert!(r.is_ok(), "backup does not verify: {:?}", r.problems);
    let mut want: BTreeSet<String> = r.manifest.entries.iter().map(|e| e.file.clone()).collect();
    want.insert(proto::backup_file::manifest_path(backup_id));
    assert_eq!(files_under(dest), want, "files besides the backup's own");
    r
}

/// Nine small checkpoints: three per node.
fn nine_checkpoints(c: &LocalCluster) -> Vec<CheckpointImage> {
    let mut ck = retry(|| Ckpt::connect_with(&client(c, 2)));
    let mut images = Vec::new();
    for i in 0..9u8 {
        let name = format!("ck-{i}");
        let data: Vec<u8> = (0..4000u32).map(|j| (j as u8) ^ i).collect();
        create(&mut ck, &name, attrs(4, 8192), &[(b"s", data)]);
        images.push(image(&mut ck, name.as_bytes()));
    }
    images
}

fn wait_running(b: &mut Backup, backup_id: u64) {
    let deadline = Instant::now() + BACKUP_TIMEOUT;
    loop {
        let s = b.status(backup_id).expect("status");
        if s.phase == JobPhase::Running {
            assert_eq!(
                s.checkpoints_done, 0,
                "the test delay keeps the writes going"
            );
            return;
        }
        assert!(!s.phase.is_final(), "ended before it ran: {s:?}");
        assert!(Instant::now() < deadline, "never running: {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A cluster (on `port_offset`) with nine checkpoints, and a backup of
/// them into `dest`, started via node `via`, running on every node.
struct RunningBackup {
    c: LocalCluster,
    images: Vec<CheckpointImage>,
    dest: PathBuf,
    id: u64,
    b: Backup,
}

fn running_backup(port_offset: u16, via: u8) -> RunningBackup {
    let c = cluster(port_offset);
    let images = nine_checkpoints(&c);
    let dest = c.dir().join("dest");
    std::fs::create_dir(&dest).expect("destination");
    let (id, mut b) = backup_via(&c, via, &dest);
    wait_running(&mut b, id);
    RunningBackup {
        c,
        images,
        dest,
        id,
        b,
    }
}

impl RunningBackup {
    /// Waits for the end: it succeeded, and the destination holds a clean
    /// backup of all nine checkpoints.
    fn finished_clean(&mut self) -> (Completion, backup::VerifyReport) {
        let done = wait(&mut self.b, self.id);
        assert_eq!(done.status, Ok(()), "{:?}", done.job);
        let r = check_clean_backup(&self.dest, self.id);
        assert_eq!(r.manifest.entries.len(), 9, "every checkpoint");
        (done, r)
    }
}

/// The nodes that wrote the backup's files.
fn writers(r: &backup::VerifyReport) -> BTreeSet<u32> {
    r.manifest.entries.iter().map(|e| e.written_by).collect()
}

#[test]
fn consistent_cut_and_restore_into_a_fresh_cluster() {
    let c = cluster(0);
    let mut ck = retry(|| Ckpt::connect_with(&client(&c, 1)));
    // Static checkpoints, one with a section of the largest size.
    let big: Vec<u8> = (0..MAX_DATA_BYTES as u32)
        .map(|i| (i * 7 + 3) as u8)
        .collect();
    create(
        &mut ck,
        "static-big",
        attrs(4, MAX_DATA_BYTES as u64),
        &[
            (b"big", big),
            (b"small", b"tiny".to_vec()),
            (b"empty-ish", vec![0]),
        ],
    );
    create(
        &mut ck,
        "static-default",
        attrs(1, 1024),
        &[(b"", b"default section".to_vec())],
    );
    create(&mut ck, "cut-A", attrs(1, 64), &[]);
    create(&mut ck, "cut-B", attrs(1, 64), &[]);

    // The writer: k to A, then k to B, over and over, on node 2.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = {
        let cfg = client(&c, 2);
        let stop = Arc::clone(&stop);
        let written = Arc::clone(&written);
        std::thread::spawn(move || {
            let mut ck = retry(|| Ckpt::connect_with(&cfg));
            let a = retry(|| ck.open(b"cut-A", None, OPEN_WRITE, None));
            let b = retry(|| ck.open(b"cut-B", None, OPEN_WRITE, None));
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                retry(|| ck.overwrite(&a, b"", &k.to_le_bytes()));
                retry(|| ck.overwrite(&b, b"", &k.to_le_bytes()));
                written.store(k, Ordering::Relaxed);
            }
            k
        })
    };
    while written.load(Ordering::Relaxed) < 20 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let dest = c.dir().join("dest");
    std::fs::create_dir(&dest).expect("destination");
    // Through node 3: the answer comes from there, whoever is master.
    let (id, mut b) = backup_via(&c, 3, &dest);
    let done = wait(&mut b, id);
    stop.store(true, Ordering::Relaxed);
    let last = writer.join().expect("writer");
    assert_eq!(done.status, Ok(()), "{:?}", done.job);
    assert!(done.job.failed.is_empty() && done.job.errors.is_empty());
    assert_eq!(done.job.checkpoints_total, 4);

    let r = check_clean_backup(&dest, id);
    assert_eq!(r.manifest.members, vec![1, 2, 3]);
    let writers: BTreeSet<u32> = r.manifest.entries.iter().map(|e| e.written_by).collect();
    assert!(writers.len() >= 2, "shares are split: {writers:?}");
    let mut backed_up = Vec::new();
    for e in &r.manifest.entries {
        let bytes = std::fs::read(dest.join(&e.file)).expect("data file");
        let (bid, img) = read_data_file(&bytes).expect("data file reads");
        assert_eq!(bid, id);
        backed_up.push(img);
    }
    let value = |name: &[u8]| {
        let i = backed_up
            .iter()
            .find(|i| &i.name[..] == name)
            .expect("in backup");
        u64::from_le_bytes(i.sections[0].data[..8].try_into().expect("8 bytes"))
    };
    let (a, bv) = (value(b"cut-A"), value(b"cut-B"));
    assert!(
        a == bv || a == bv + 1,
        "not a consistent cut: A = {a}, B = {bv}"
    );
    assert!(
        bv >= 20 && a < last,
        "the cut fell while the writer ran: A {a} B {bv} last {last}"
    );
    // The static checkpoints are byte for byte what the cluster holds.
    for name in [&b"static-big"[..], b"static-default"] {
        let live = image(&mut ck, name);
        let saved = backed_up
            .iter()
            .find(|i| &i.name[..] == name)
            .expect("in backup");
        assert_eq!(
            digest(saved),
            digest(&live),
            "{}",
            String::from_utf8_lossy(name)
        );
    }

    // Restore into a fresh cluster: every checkpoint as in the backup.
    let fresh = cluster(1);
    let dir = dest.join(proto::backup_file::backup_dir_name(id));
    let rep = backup::restore(
        &client(&fresh, 2),
        &dir,
        RestoreOptions::default(),
        &mut |_| {},
    )
    .expect("restore");
    assert_eq!(rep.checkpoints, 4);
    for node in [1, 3] {
        let mut ck = retry(|| Ckpt::connect_with(&client(&fresh, node)));
        for saved in &backed_up {
            let got = image(&mut ck, &saved.name);
            assert_eq!(got.attributes, saved.attributes);
            assert_eq!(digest(&got), digest(saved), "node {node}: {:?}", saved.name);
        }
    }
    // Over existing checkpoints: refused without overwrite, done with it.
    match backup::restore(
        &client(&fresh, 1),
        &dir,
        RestoreOptions::default(),
        &mut |_| {},
    ) {
        Err(RestoreError::Exists(names)) => assert_eq!(names.len(), 4),
        other => panic!("restore over existing checkpoints: {other:?}"),
    }
    let rep = backup::restore(
        &client(&fresh, 1),
        &dir,
        RestoreOptions { overwrite: true },
        &mut |_| {},
    )
    .expect("restore with overwrite");
    assert_eq!(rep.replaced.len(), 4);
}

#[test]
fn master_killed_mid_backup_survivors_finish_it() {
    let mut run = running_backup(2, 3);
    std::thread::sleep(Duration::from_millis(300));
    run.c.kill9(1);
    let (done, r) = run.finished_clean();
    assert_eq!(done.job.master, 2, "node 2 took over");
    assert_eq!(r.manifest.master, 2);
    for e in &r.manifest.entries {
        assert_ne!(e.written_by, 1, "{} from the dead master", e.file);
        let bytes = std::fs::read(run.dest.join(&e.file)).expect("data file");
        let (_, img) = read_data_file(&bytes).expect("reads");
        let want = run
            .images
            .iter()
            .find(|i| i.name == img.name)
            .expect("known");
        assert_eq!(digest(&img), digest(want));
    }
}

#[test]
fn participant_killed_mid_backup_its_share_is_rescheduled() {
    let mut run = running_backup(3, 1);
    std::thread::sleep(Duration::from_millis(300));
    run.c.kill9(3);
    let (_, r) = run.finished_clean();
    assert_eq!(
        writers(&r),
        BTreeSet::from([1, 2]),
        "node 3's share moved to 1 and 2"
    );
    let log = run.c.log(1);
    assert!(
        log.contains("from node 3 to node"),
        "no reschedule logged:\n{log}"
    );
}

#[test]
fn participant_sigterm_mid_backup_finishes_its_step_before_leaving() {
    let mut run = running_backup(5, 1);
    let c = &mut run.c;
    std::thread::sleep(Duration::from_millis(300));
    // Node 3's files are being written (each takes WRITE_DELAY_MS): a
    // SIGTERM lets them finish and be reported, then the node leaves.
    c.signal(3, Signal::SIGTERM);
    let exit = c
        .wait_exit(3, BACKUP_TIMEOUT)
        .unwrap_or_else(|| panic!("node 3 never left\n{}", c.log(3)));
    assert!(exit.success(), "node 3 exit: {exit:?}\n{}", c.log(3));
    let log3 = c.log(3);
    assert!(
        log3.contains("finishing the running backup step first"),
        "node 3 did not wait for its step:\n{log3}"
    );
    let (_, r) = run.finished_clean();
    // A kill -9 moves node 3's share to 1 and 2 (the test above); a
    // SIGTERM keeps what node 3 wrote before it left.
    assert_eq!(
        writers(&r),
        BTreeSet::from([1, 2, 3]),
        "node 3's written share is in the backup"
    );
}

#[test]
fn sighup_mid_backup_re_registers_with_the_master_and_changes_nothing() {
    let mut run = running_backup(7, 2);
    let id = run.id;
    // Every file takes WRITE_DELAY_MS: the job is still running on every
    // node when the participant and the master re-read their configs.
    run.c.signal(3, Signal::SIGHUP);
    run.c.signal(1, Signal::SIGHUP);
    let (_, r) = run.finished_clean();
    assert_eq!(writers(&r), BTreeSet::from([1, 2, 3]), "no share moved");
    let (log1, log3) = (run.c.log(1), run.c.log(3));
    for (node, log) in [(1, &log1), (3, &log3)] {
        assert!(
            log.contains("SIGHUP: reloading")
                && log.contains("re-registering 1 running job(s) with master 1"),
            "node {node} did not re-register on SIGHUP:\n{log}"
        );
    }
    for node in [1, 3] {
        let line = format!("job {id:016x}: node {node} re-registered");
        assert!(
            log1.contains(&line),
            "the master never got {line:?}:\n{log1}"
        );
    }
}

fn ais_backup(socket: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin_dir().join("ais-backup"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("AIS_SOCKET")
        .output()
        .expect("ais-backup runs")
}

#[test]
fn unwritable_destination_moves_the_share_and_verify_finds_damage() {
    let c = cluster(4);
    nine_checkpoints(&c);
    let dest = c.dir().join("dest");
    std::fs::create_dir(&dest).expect("destination");
    // Node 2's area is a file, not a directory: it cannot write there.
    std::fs::write(dest.join("node-2"), b"in the way").expect("blocker");
    let dest_arg = dest.to_str().expect("UTF-8");
    let out = ais_backup(&c.node(1).socket(), &["start", dest_arg, "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    assert!(stderr.contains("started into"), "{stderr}");
    assert!(stderr.contains("running"), "no progress shown:\n{stderr}");
    assert!(stdout.contains("\"ok\":true"), "{stdout}");
    assert!(
        stdout.contains("\"node\":2") && stdout.contains("destination-not-writable"),
        "the error is listed: {stdout}"
    );
    let id_hex = stdout
        .split("\"backup_id\":\"")
        .nth(1)
        .and_then(|s| s.get(..16))
        .expect("id in output");
    let id = u64::from_str_radix(id_hex, 16).expect("hex id");
    std::fs::remove_file(dest.join("node-2")).expect("blocker removed");
    let r = check_clean_backup(&dest, id);
    assert_eq!(r.manifest.entries.len(), 9);
    assert!(r.manifest.entries.iter().all(|e| e.written_by != 2));
    assert_eq!(r.manifest.errors.len(), 1);
    assert_eq!(
        r.manifest.errors[0].class,
        ErrorClass::DestinationNotWritable
    );

    // verify: clean, then a flipped byte and a truncated file.
    let dir = dest.join(format!("backup-{id_hex}"));
    let dir_arg = dir.to_str().expect("UTF-8");
    let ok = ais_backup(&c.node(1).socket(), &["verify", dir_arg]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let flipped = dest.join(&r.manifest.entries[0].file);
    let mut bytes = std::fs::read(&flipped).expect("data file");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&flipped, &bytes).expect("flipped");
    let truncated = dest.join(&r.manifest.entries[1].file);
    let len = std::fs::metadata(&truncated).expect("data file").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .and_then(|f| f.set_len(len - 1))
        .expect("truncated");
    let bad = ais_backup(&c.node(1).socket(), &["verify", dir_arg]);
    let text = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("BAD {}: CRC-32", r.manifest.entries[0].file)),
        "{text}"
    );
    assert!(
        text.contains(&format!("BAD {}: size", r.manifest.entries[1].file)),
        "{text}"
    );
    let report = backup::verify(&dir).expect("manifest reads");
    assert!(matches!(report.problems[0].1, FileProblem::Crc { .. }));
    assert!(matches!(report.problems[1].1, FileProblem::Size { .. }));
    // A restore refuses it before writing anything.
    match backup::restore(
        &client(&c, 1),
        &dir,
        RestoreOptions { overwrite: true },
        &mut |_| {},
    ) {
        Err(RestoreError::Verify(p)) => assert_eq!(p.len(), 2),
        other => panic!("restore of a damaged backup: {other:?}"),
    }

    // A destination missing on every node: a clear failure, no files.
    let nowhere: PathBuf = c.dir().join("no-such-dir");
    let (id, mut b) = backup_via(&c, 2, &nowhere);
    let done = wait(&mut b, id);
    assert_eq!(done.status, Err(AisError::FailedOperation));
    assert_eq!(done.job.phase, JobPhase::Aborted);
    assert!(
        done.job.reason.contains("no node can write"),
        "{}",
        done.job.reason
    );
    let nodes: BTreeSet<u32> = done.job.errors.iter().map(|e| e.node).collect();
    assert_eq!(nodes, BTreeSet::from([1, 2, 3]), "{:?}", done.job.errors);
    assert!(done
        .job
        .errors
        .iter()
        .all(|e| e.class == ErrorClass::DestinationMissing));
    assert!(!nowhere.exists(), "a missing destination is never created");
}
