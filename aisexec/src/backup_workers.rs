//! The backup worker threads: the only threads besides the event loop. They
//! run the BACKUP engine's file jobs ([`BackupIo`]) — write a data file or
//! the manifest, fsync, rename, fsync the directory; or remove an aborted
//! job's files — and hand each result back to the loop, which feeds it to
//! the node with the time it learnt it. The engine decides everything;
//! this module only does the IO and classifies its errors.
//!
//! # Aborts and writes in flight
//! An ABORT's removal may meet a write of the same job still running on
//! another worker. The loop marks the job aborted before it queues the
//! removal; a write checks the mark, under the same lock, before it renames
//! its temporary file into place, and removes the temporary file instead
//! when the job is aborted. So a removal never misses a file.
//!
//! # Queues
//! Jobs wait in one queue shared by the workers; it holds at most what the
//! engine handed out, which is bounded by the engine (one file job per
//! checkpoint of at most `MAX_ACTIVE_JOBS` jobs). Results go back on a
//! channel the loop drains every turn, woken by a `mio::Waker`.

use std::collections::{BTreeSet, VecDeque};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Registry, Token, Waker};
use proto::backup::ErrorClass;
use proto::backup_file::{write_data_file, FileDigest, MANIFEST_NAME};
use services::backup::{BackupIo, BackupIoDone};

/// Worker threads (several checkpoints are written in parallel).
pub const DEFAULT_WORKERS: usize = 4;
/// How long SIGTERM waits for the running backup step to be written and
/// reported before the node leaves anyway.
pub const SIGTERM_BACKUP_GRACE: Duration = Duration::from_secs(30);
/// A write slower than this is a device timeout: the share moves.
pub const DEVICE_TIMEOUT: Duration = Duration::from_secs(120);
/// Buffer of a data file's writer.
const WRITE_BUFFER_BYTES: usize = 1 << 20;
/// Test hook: milliseconds every data file write waits, holding its
/// temporary file, before it is renamed into place (so cluster tests can
/// kill a node mid-backup). Read once when the pool starts; unset in
/// production.
pub const TEST_DELAY_ENV: &str = "AIS_BACKUP_TEST_DELAY_MS";
/// Aborted job ids remembered (older ones have no writes left in flight).
const MAX_ABORTED_REMEMBERED: usize = 1024;

#[derive(Debug, Default)]
struct Queue {
    jobs: VecDeque<BackupIo>,
    shutdown: bool,
}

#[derive(Debug, Default)]
struct Shared {
    /// [`TEST_DELAY_ENV`].
    test_delay: Duration,
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Aborted jobs: writes of these remove their file instead of
    /// renaming it into place.
    aborted: Mutex<BTreeSet<u64>>,
}

/// The pool.
#[derive(Debug)]
pub struct BackupWorkers {
    shared: Arc<Shared>,
    done_rx: Receiver<BackupIoDone>,
    threads: Vec<JoinHandle<()>>,
    /// File jobs handed out and not yet answered (removals included).
    in_flight: usize,
    in_flight_tx: Sender<()>,
    in_flight_rx: Receiver<()>,
}

impl BackupWorkers {
    /// Starts `workers` threads that wake the loop's poll through `token`.
    ///
    /// # Errors
    /// Creating the waker or a thread failed.
    pub fn start(registry: &Registry, token: Token, workers: usize) -> io::Result<BackupWorkers> {
        let waker = Arc::new(Waker::new(registry, token)?);
        let test_delay = std::env::var(TEST_DELAY_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(Duration::ZERO, Duration::from_millis);
        if !test_delay.is_zero() {
            log::warn!("backup: {TEST_DELAY_ENV} set: every data file write waits {test_delay:?}");
        }
        let shared = Arc::new(Shared {
            test_delay,
            ..Shared::default()
        });
        let (done_tx, done_rx) = mpsc::channel();
        let (in_flight_tx, in_flight_rx) = mpsc::channel();
        let mut threads = Vec::new();
        for i in 0..workers.max(1) {
            let shared = Arc::clone(&shared);
            let waker = Arc::clone(&waker);
            let done_tx = done_tx.clone();
            let finished = in_flight_tx.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("backup-{i}"))
                    .spawn(move || worker(&shared, &waker, &done_tx, &finished))?,
            );
        }
        Ok(BackupWorkers {
            shared,
            done_rx,
            threads,
            in_flight: 0,
            in_flight_tx,
            in_flight_rx,
        })
    }

    /// Queues a file job.
    pub fn submit(&mut self, io: BackupIo) {
        if let BackupIo::Remove { backup_id, .. } = &io {
            let mut a = lock(&self.shared.aborted);
            a.insert(*backup_id);
            while a.len() > MAX_ABORTED_REMEMBERED {
                a.pop_first();
            }
        }
        self.in_flight += 1;
        lock(&self.shared.queue).jobs.push_back(io);
        self.shared.ready.notify_one();
    }

    /// The results that came back since the last call.
    pub fn poll_done(&mut self) -> Vec<BackupIoDone> {
        while self.in_flight_rx.try_recv().is_ok() {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        self.done_rx.try_iter().collect()
    }

    /// Whether no file job is queued or running.
    pub fn idle(&self) -> bool {
        self.in_flight == 0
    }

    /// Stops the threads after the jobs queued so far.
    pub fn shutdown(&mut self) {
        lock(&self.shared.queue).shutdown = true;
        self.shared.ready.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let _ = &self.in_flight_tx;
    }
}

impl Drop for BackupWorkers {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A poisoned lock means a worker panicked mid-job; the data it guards
/// (a queue, a set of ids) is still consistent, so go on with it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn worker(shared: &Shared, waker: &Waker, done: &Sender<BackupIoDone>, finished: &Sender<()>) {
    loop {
        let job = {
            let mut q = lock(&shared.queue);
            loop {
                if let Some(j) = q.jobs.pop_front() {
                    break j;
                }
                if q.shutdown {
                    return;
                }
                q = shared
                    .ready
                    .wait(q)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        };
        if let Some(d) = run(shared, job) {
            let _ = done.send(d);
        }
        let _ = finished.send(());
        // The loop drains results every turn; a failed wake only delays
        // them to its next timeout.
        let _ = waker.wake();
    }
}

fn run(shared: &Shared, job: BackupIo) -> Option<BackupIoDone> {
    match job {
        BackupIo::WriteData {
            backup_id,
            item,
            dir,
            file,
            image,
        } => {
            let result = write_atomically(shared, backup_id, Path::new(&dir), &file, |w| {
                write_data_file(w, backup_id, &image)
            });
            Some(BackupIoDone {
                backup_id,
                item: Some(item),
                result,
            })
        }
        BackupIo::WriteManifest {
            backup_id,
            dir,
            manifest,
            remove_first,
        } => {
            let dir = PathBuf::from(dir);
            let (root, name) = match (dir.parent(), dir.file_name()) {
                (Some(p), Some(n)) => (p.to_path_buf(), n.to_string_lossy().into_owned()),
                _ => (dir.clone(), String::new()),
            };
            for f in &remove_first {
                let p = root.join(f);
                let _ = fs::remove_file(&p);
                let _ = fs::remove_file(part_name(&p));
                if let Some(parent) = p.parent() {
                    let _ = fs::remove_dir(parent);
                }
            }
            let rel = format!("{name}/{MANIFEST_NAME}");
            let bytes = manifest.encode();
            let result = write_atomically(shared, backup_id, &root, &rel, |w| {
                w.write_all(&bytes)?;
                w.flush()?;
                Ok(FileDigest {
                    size: bytes.len() as u64,
                    crc32: crc32(&bytes),
                })
            });
            Some(BackupIoDone {
                backup_id,
                item: None,
                result,
            })
        }
        BackupIo::Remove {
            dir, files, dirs, ..
        } => {
            let root = Path::new(&dir);
            let _held = lock(&shared.aborted);
            for f in &files {
                let p = root.join(f);
                let _ = fs::remove_file(&p);
                let _ = fs::remove_file(part_name(&p));
            }
            for d in &dirs {
                // Only when empty: another job's files may share it.
                let _ = fs::remove_dir(root.join(d));
            }
            None
        }
    }
}

fn crc32(b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(b);
    h.finalize()
}

fn part_name(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// Writes `root/rel` through `body`: into `rel.part`, fsync, then (unless
/// the job was aborted meanwhile) rename into place and fsync the
/// directory. `root` must exist; the directories of `rel` are created.
fn write_atomically(
    shared: &Shared,
    backup_id: u64,
    root: &Path,
    rel: &str,
    body: impl FnOnce(&mut BufWriter<File>) -> io::Result<FileDigest>,
) -> Result<FileDigest, (ErrorClass, String)> {
    let started = Instant::now();
    if lock(&shared.aborted).contains(&backup_id) {
        return Err((ErrorClass::Other, "the job was aborted".into()));
    }
    match fs::metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err((
                ErrorClass::DestinationNotWritable,
                format!("{} is not a directory", root.display()),
            ))
        }
        Err(e) => return Err(classify(&e, &format!("destination {}", root.display()))),
    }
    let path = root.join(rel);
    let dir = path.parent().unwrap_or(root).to_path_buf();
    fs::create_dir_all(&dir).map_err(|e| classify(&e, &format!("create {}", dir.display())))?;
    let part = part_name(&path);
    let written = (|| {
        let f = File::create(&part)?;
        let mut w = BufWriter::with_capacity(WRITE_BUFFER_BYTES, f);
        let digest = body(&mut w)?;
        let f = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        f.sync_all()?;
        std::thread::sleep(shared.test_delay);
        Ok(digest)
    })();
    let digest = match written {
        Ok(d) => d,
        Err(e) => {
            let _ = fs::remove_file(&part);
            return Err(classify(&e, &format!("write {}", part.display())));
        }
    };
    if started.elapsed() > DEVICE_TIMEOUT {
        let _ = fs::remove_file(&part);
        return Err((
            ErrorClass::DeviceTimeout,
            format!(
                "writing {} took {} s, more than {} s",
                path.display(),
                started.elapsed().as_secs(),
                DEVICE_TIMEOUT.as_secs()
            ),
        ));
    }
    let aborted = lock(&shared.aborted);
    if aborted.contains(&backup_id) {
        let _ = fs::remove_file(&part);
        return Err((ErrorClass::Other, "the job was aborted".into()));
    }
    fs::rename(&part, &path).map_err(|e| classify(&e, &format!("rename {}", path.display())))?;
    // The rename is durable once the directory is flushed.
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| classify(&e, &format!("fsync {}", dir.display())))?;
    drop(aborted);
    Ok(digest)
}

/// The error table, from the OS error.
fn classify(e: &io::Error, what: &str) -> (ErrorClass, String) {
    let class = match e.raw_os_error() {
        Some(libc::ENOENT) => ErrorClass::DestinationMissing,
        Some(
            libc::EACCES | libc::EPERM | libc::EROFS | libc::ENOTDIR | libc::EEXIST | libc::EIO,
        ) => ErrorClass::DestinationNotWritable,
        Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => ErrorClass::DestinationFull,
        Some(libc::ETIMEDOUT) => ErrorClass::DeviceTimeout,
        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY) => ErrorClass::Transient,
        _ => match e.kind() {
            io::ErrorKind::NotFound => ErrorClass::DestinationMissing,
            io::ErrorKind::PermissionDenied => ErrorClass::DestinationNotWritable,
            io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock => ErrorClass::Transient,
            io::ErrorKind::TimedOut => ErrorClass::DeviceTimeout,
            _ => ErrorClass::Other,
        },
    };
    (class, format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proto::backup_file::{data_file_name, read_data_file, CheckpointImage, SectionImage};
    use proto::ckpt::CreationAttributes;

    fn image() -> CheckpointImage {
        CheckpointImage {
            name: Bytes::from_static(b"a"),
            attributes: CreationAttributes::ZERO,
            sections: vec![SectionImage {
                id: Bytes::new(),
                expiration_ns: i64::MAX,
                data: Bytes::from(vec![5u8; 1000]),
            }],
        }
    }

    fn pool() -> (mio::Poll, BackupWorkers) {
        let poll = mio::Poll::new().unwrap();
        let w = BackupWorkers::start(poll.registry(), Token(2), 2).unwrap();
        (poll, w)
    }

    fn wait_done(w: &mut BackupWorkers) -> BackupIoDone {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(d) = w.poll_done().pop() {
                return d;
            }
            assert!(Instant::now() < deadline, "no result");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_written_file_has_the_reported_size_and_crc_and_no_temporary_left() {
        let (_poll, mut w) = pool();
        let d = tempfile::tempdir().unwrap();
        let file = data_file_name(9, 1, 0);
        w.submit(BackupIo::WriteData {
            backup_id: 9,
            item: 0,
            dir: d.path().to_string_lossy().into_owned(),
            file: file.clone(),
            image: image(),
        });
        let done = wait_done(&mut w);
        let digest = done.result.unwrap();
        let bytes = fs::read(d.path().join(&file)).unwrap();
        assert_eq!(digest.size, bytes.len() as u64);
        assert_eq!(digest.crc32, crc32(&bytes));
        assert_eq!(read_data_file(&bytes).unwrap().1, image());
        assert!(!part_name(&d.path().join(&file)).exists());
    }

    #[test]
    fn destination_errors_are_classified() {
        let (_poll, mut w) = pool();
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("nope");
        w.submit(BackupIo::WriteData {
            backup_id: 1,
            item: 0,
            dir: missing.to_string_lossy().into_owned(),
            file: data_file_name(1, 1, 0),
            image: image(),
        });
        let r = wait_done(&mut w).result.unwrap_err();
        assert_eq!(r.0, ErrorClass::DestinationMissing, "{}", r.1);
        assert!(
            !missing.exists(),
            "a missing destination must not be created"
        );
        // This node's area is taken by a file: not writable.
        fs::write(d.path().join("node-2"), b"x").unwrap();
        w.submit(BackupIo::WriteData {
            backup_id: 1,
            item: 1,
            dir: d.path().to_string_lossy().into_owned(),
            file: data_file_name(1, 2, 1),
            image: image(),
        });
        let r = wait_done(&mut w).result.unwrap_err();
        assert_eq!(r.0, ErrorClass::DestinationNotWritable, "{}", r.1);
    }

    #[test]
    fn a_write_of_an_aborted_job_leaves_no_file() {
        let (_poll, mut w) = pool();
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().to_string_lossy().into_owned();
        w.submit(BackupIo::Remove {
            backup_id: 4,
            dir: dir.clone(),
            files: vec![],
            dirs: vec![],
        });
        w.submit(BackupIo::WriteData {
            backup_id: 4,
            item: 0,
            dir,
            file: data_file_name(4, 1, 0),
            image: image(),
        });
        let r = wait_done(&mut w).result.unwrap_err();
        assert_eq!(r.0, ErrorClass::Other);
        let f = d.path().join(data_file_name(4, 1, 0));
        assert!(!f.exists() && !part_name(&f).exists());
        std::thread::sleep(Duration::from_millis(20));
        w.poll_done();
        assert!(w.idle());
    }
}
