//! The BACKUP service for Rust callers: start and follow cluster-wide
//! backups ([`Backup`]), check a backup's files ([`verify`]) and load one
//! back into a running cluster ([`restore`]).
//!
//! A [`Backup`] wraps a [`Connection`] to the local executive's BACKUP
//! engine and speaks [`proto::backup`]. The job's end comes back as a
//! [`BackupCallback::Complete`] with the result and the failed list, taken
//! with [`Backup::next_callback`] (the C layer's dispatch) or waited for
//! with [`Backup::wait_complete`].
//!
//! [`verify`] and [`restore`] read the files themselves (the format is
//! [`proto::backup_file`]); restore writes the checkpoints through the CKPT
//! service, so every replica in the cluster gets them by the ring, and
//! refuses a backup that does not verify or whose checkpoints exist
//! already unless asked to overwrite.

use std::fs::File;
use std::io::Read as _;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use proto::backup::{
    Completion, JobStatus, ListReply, Start, StartReply, StatusRequest, CB_COMPLETE, LIST,
    MAX_CHECKPOINTS, MAX_NAME_BYTES, MAX_PATH_BYTES, START, STATUS,
};
use proto::backup_file::{
    is_safe_relative_path, read_data_file, CheckpointImage, FileDigest, FormatError, Manifest,
    ManifestEntry, MANIFEST_NAME, MAX_MANIFEST_BYTES,
};
use proto::ckpt::{MAX_DATA_BYTES, OPEN_CREATE, OPEN_READ, OPEN_WRITE};
use proto::{AisError, ServiceId};
use thiserror::Error;

use crate::ckpt::{Ckpt, WriteElement};
use crate::client::{ClientConfig, Connection};

pub use proto::backup::{ErrorClass, FailedCheckpoint, JobPhase, NodeError};

/// A callback from the BACKUP engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackupCallback {
    /// A job started on this connection ended.
    Complete(Completion),
}

/// A connection to the BACKUP service.
#[derive(Debug)]
pub struct Backup {
    conn: Connection,
}

impl Backup {
    /// Connects to the BACKUP service of the executive at
    /// [`crate::client::socket_path`].
    ///
    /// # Errors
    /// As [`Connection::connect`].
    pub fn connect() -> Result<Backup, AisError> {
        Backup::connect_with(&ClientConfig::default())
    }

    /// As [`Backup::connect`], with `config`.
    ///
    /// # Errors
    /// As [`Backup::connect`].
    pub fn connect_with(config: &ClientConfig) -> Result<Backup, AisError> {
        let conn = Connection::connect_with(config, ServiceId::Backup, proto::backup::VERSION)?;
        Ok(Backup { conn })
    }

    /// The selection object: readable when a callback may be waiting.
    pub fn selection(&self) -> BorrowedFd<'_> {
        self.conn.as_fd()
    }

    /// Starts a backup of `checkpoints` (empty: every checkpoint) into
    /// `destination` (an absolute directory, the same path on every node).
    /// Returns the job's id; the end comes as a
    /// [`BackupCallback::Complete`] carrying `invocation`.
    ///
    /// # Errors
    /// `SA_AIS_ERR_INVALID_PARAM` for a relative or too long destination,
    /// too many or bad names; from the executive TRY_AGAIN (sync running,
    /// ring busy), NO_RESOURCES (too many jobs); the connection's errors.
    pub fn start(
        &mut self,
        invocation: u64,
        destination: &Path,
        checkpoints: &[&[u8]],
    ) -> Result<u64, AisError> {
        let destination = destination
            .to_str()
            .filter(|d| d.starts_with('/') && d.len() <= MAX_PATH_BYTES)
            .ok_or(AisError::InvalidParam)?
            .to_owned();
        if checkpoints.len() > MAX_CHECKPOINTS
            || checkpoints
                .iter()
                .any(|n| n.is_empty() || n.len() > MAX_NAME_BYTES)
        {
            return Err(AisError::InvalidParam);
        }
        let body = Start {
            invocation,
            destination,
            checkpoints: checkpoints
                .iter()
                .map(|n| Bytes::copy_from_slice(n))
                .collect(),
        }
        .encode();
        let reply = self.conn.request(START, &body)?.into_result()?;
        Ok(StartReply::decode(&reply)
            .map_err(|_| AisError::Library)?
            .backup_id)
    }

    /// Job `backup_id` as this executive knows it.
    ///
    /// # Errors
    /// `SA_AIS_ERR_NOT_EXIST` for a job it does not know; the connection's
    /// errors.
    pub fn status(&mut self, backup_id: u64) -> Result<JobStatus, AisError> {
        let body = StatusRequest { backup_id }.encode();
        let reply = self.conn.request(STATUS, &body)?.into_result()?;
        JobStatus::decode(&reply).map_err(|_| AisError::Library)
    }

    /// The jobs this executive knows, newest first.
    ///
    /// # Errors
    /// The connection's errors.
    pub fn list(&mut self) -> Result<Vec<JobStatus>, AisError> {
        let reply = self.conn.request(LIST, &[])?.into_result()?;
        Ok(ListReply::decode(&reply)
            .map_err(|_| AisError::Library)?
            .jobs)
    }

    /// The next callback; with `blocking`, waits for one.
    ///
    /// # Errors
    /// `SA_AIS_ERR_LIBRARY` if the connection broke or the executive sent
    /// a callback this library cannot decode.
    pub fn next_callback(&mut self, blocking: bool) -> Result<Option<BackupCallback>, AisError> {
        let Some(frame) = self.conn.recv_callback(blocking)? else {
            return Ok(None);
        };
        decode_callback(frame.id, &frame.body).map(Some)
    }

    /// Waits at most `timeout` for the completion of job `backup_id`,
    /// calling `progress` with the job's status about every `every` while
    /// it runs (for a progress display). Completions of other jobs on this
    /// connection are dropped.
    ///
    /// # Errors
    /// `SA_AIS_ERR_TIMEOUT` when it did not end in time; the connection's
    /// errors.
    pub fn wait_complete(
        &mut self,
        backup_id: u64,
        timeout: Duration,
        every: Duration,
        progress: &mut dyn FnMut(&JobStatus),
    ) -> Result<Completion, AisError> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(AisError::Timeout);
            }
            let wait = every.min(deadline - now).max(Duration::from_millis(1));
            match self.conn.recv_callback_timeout(wait) {
                Ok(Some(frame)) => {
                    let BackupCallback::Complete(c) = decode_callback(frame.id, &frame.body)?;
                    if c.job.backup_id == backup_id {
                        return Ok(c);
                    }
                    continue;
                }
                Ok(None) | Err(AisError::Timeout) => {}
                Err(e) => return Err(e),
            }
            match self.status(backup_id) {
                Ok(s) => progress(&s),
                Err(AisError::TryAgain) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn decode_callback(id: u16, body: &[u8]) -> Result<BackupCallback, AisError> {
    match id {
        CB_COMPLETE => Completion::decode(body)
            .map(BackupCallback::Complete)
            .map_err(|_| AisError::Library),
        _ => Err(AisError::Library),
    }
}

// ----- verify ----------------------------------------------------------------

/// What is wrong with one data file of a backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileProblem {
    /// The manifest names a path outside the backup directory.
    UnsafePath,
    /// The file is not there or cannot be read.
    Unreadable(String),
    /// Its size differs from the manifest's.
    Size {
        /// In the manifest.
        expected: u64,
        /// On disk.
        actual: u64,
    },
    /// Its CRC-32 differs from the manifest's.
    Crc {
        /// In the manifest.
        expected: u32,
        /// Over the file.
        actual: u32,
    },
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileProblem::UnsafePath => f.write_str("path leaves the backup directory"),
            FileProblem::Unreadable(e) => write!(f, "unreadable: {e}"),
            FileProblem::Size { expected, actual } => {
                write!(
                    f,
                    "size {actual}, manifest says {expected} (truncated or grown)"
                )
            }
            FileProblem::Crc { expected, actual } => {
                write!(f, "CRC-32 {actual:08x}, manifest says {expected:08x}")
            }
        }
    }
}

/// The outcome of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The manifest (its own CRC verified).
    pub manifest: Manifest,
    /// Data files checked.
    pub files_checked: usize,
    /// Bytes read.
    pub bytes_checked: u64,
    /// Every bad file: (its path relative to the destination, what is
    /// wrong).
    pub problems: Vec<(String, FileProblem)>,
}

impl VerifyReport {
    /// Whether every file matches the manifest.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Why a backup cannot be verified or restored at all.
#[derive(Debug, Error)]
pub enum BackupFileError {
    /// The manifest cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The manifest or a data file is malformed.
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Why.
        source: FormatError,
    },
}

/// Bytes read at a time while checking a file.
const VERIFY_CHUNK_BYTES: usize = 1 << 20;

/// Checks the backup in directory `dir` (the one holding `MANIFEST`): the
/// manifest's own CRC, then every data file's size and CRC-32 against it.
/// Data files are found relative to `dir`'s parent (the destination).
///
/// # Errors
/// [`BackupFileError`] when the manifest is missing, unreadable or
/// malformed; bad data files are listed in the report instead.
pub fn verify(dir: &Path) -> Result<VerifyReport, BackupFileError> {
    let manifest = read_manifest(dir)?;
    let mut report = VerifyReport {
        files_checked: 0,
        bytes_checked: 0,
        problems: Vec::new(),
        manifest,
    };
    let entries = report.manifest.entries.clone();
    let root = destination_of(dir);
    for e in &entries {
        report.files_checked += 1;
        match check_file(&root, e) {
            Ok(n) => report.bytes_checked += n,
            Err(p) => report.problems.push((e.file.clone(), p)),
        }
    }
    Ok(report)
}

/// The destination directory of the backup directory `dir`: data file
/// paths in the manifest are relative to it.
pub fn destination_of(dir: &Path) -> PathBuf {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    match dir.canonicalize() {
        Ok(d) => d.parent().map_or(d.clone(), Path::to_path_buf),
        Err(_) => dir.join(".."),
    }
}

/// Reads and checks `dir/MANIFEST`.
///
/// # Errors
/// [`BackupFileError`].
pub fn read_manifest(dir: &Path) -> Result<Manifest, BackupFileError> {
    let path = dir.join(MANIFEST_NAME);
    let bytes =
        read_bounded(&path, MAX_MANIFEST_BYTES as u64).map_err(|source| BackupFileError::Io {
            path: path.clone(),
            source,
        })?;
    Manifest::decode(&bytes).map_err(|source| BackupFileError::Format { path, source })
}

fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    if len > max {
        return Err(std::io::Error::other(format!(
            "{len} bytes, more than the {max} accepted"
        )));
    }
    let mut buf = Vec::with_capacity(len as usize);
    f.take(max.saturating_add(1)).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Checks one data file; the bytes read when it matches.
fn check_file(dir: &Path, e: &ManifestEntry) -> Result<u64, FileProblem> {
    if !is_safe_relative_path(&e.file) {
        return Err(FileProblem::UnsafePath);
    }
    let mut f =
        File::open(dir.join(&e.file)).map_err(|err| FileProblem::Unreadable(err.to_string()))?;
    let mut crc = crc32fast::Hasher::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; VERIFY_CHUNK_BYTES];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(FileProblem::Unreadable(err.to_string())),
        };
        crc.update(&buf[..n]);
        size += n as u64;
    }
    let actual = FileDigest {
        size,
        crc32: crc.finalize(),
    };
    if actual.size != e.digest.size {
        return Err(FileProblem::Size {
            expected: e.digest.size,
            actual: actual.size,
        });
    }
    if actual.crc32 != e.digest.crc32 {
        return Err(FileProblem::Crc {
            expected: e.digest.crc32,
            actual: actual.crc32,
        });
    }
    Ok(size)
}

// ----- restore ---------------------------------------------------------------

/// How [`restore`] treats checkpoints that exist already.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// Replace checkpoints of the same name (unlink, then create). Without
    /// it a restore over any existing checkpoint is refused before
    /// anything is written.
    pub overwrite: bool,
}

/// Progress of a [`restore`], after each checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestoreProgress {
    /// Checkpoints restored so far.
    pub checkpoints_done: usize,
    /// Checkpoints in the backup.
    pub checkpoints_total: usize,
    /// Data bytes written so far.
    pub bytes_done: u64,
    /// Data bytes in the backup.
    pub bytes_total: u64,
}

/// What [`restore`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreReport {
    /// The backup's manifest.
    pub manifest: Manifest,
    /// Checkpoints restored.
    pub checkpoints: usize,
    /// Data bytes written.
    pub bytes: u64,
    /// Existing checkpoints replaced (with the overwrite option).
    pub replaced: Vec<Bytes>,
}

/// Why a restore failed.
#[derive(Debug, Error)]
pub enum RestoreError {
    /// The backup's files cannot be read.
    #[error(transparent)]
    File(#[from] BackupFileError),
    /// Data files do not match the manifest: nothing was restored.
    #[error("backup does not verify ({} bad file(s), first: {}: {})", .0.len(), .0[0].0, .0[0].1)]
    Verify(Vec<(String, FileProblem)>),
    /// Checkpoints of these names exist and overwrite was not asked:
    /// nothing was restored.
    #[error("{} checkpoint(s) exist already (first: {}); restore with overwrite to replace them", .0.len(), String::from_utf8_lossy(&.0[0]))]
    Exists(Vec<Bytes>),
    /// A data file's content disagrees with its manifest entry.
    #[error("data file {file} does not hold checkpoint {name} of backup {backup_id:016x}")]
    Mismatch {
        /// The file.
        file: String,
        /// The checkpoint the manifest names.
        name: String,
        /// The backup.
        backup_id: u64,
    },
    /// The cluster refused a call (checkpoint `name`).
    #[error("checkpoint {name}: {op}: {error}")]
    Cluster {
        /// The checkpoint.
        name: String,
        /// The call.
        op: &'static str,
        /// The error.
        error: AisError,
    },
}

/// How long restore calls wait for the cluster (a busy ring answers
/// TRY_AGAIN, retried until then).
const RESTORE_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Loads the backup in `dir` into the cluster of the executive `config`
/// names: verifies every file first (and refuses a backup that does not
/// verify), refuses existing checkpoints unless `options.overwrite`, then
/// creates every checkpoint with its attributes and sections through the
/// CKPT service. `progress` is called after each checkpoint.
///
/// Restored checkpoints are closed when this returns, so each lives for its
/// retention duration unless someone opens it, as after any close.
///
/// # Errors
/// [`RestoreError`]; a failure part-way leaves the checkpoints restored
/// so far in place.
pub fn restore(
    config: &ClientConfig,
    dir: &Path,
    options: RestoreOptions,
    progress: &mut dyn FnMut(&RestoreProgress),
) -> Result<RestoreReport, RestoreError> {
    let report = verify(dir)?;
    if !report.is_ok() {
        return Err(RestoreError::Verify(report.problems));
    }
    let manifest = report.manifest;
    let cluster = |name: &Bytes, op: &'static str| {
        let name = String::from_utf8_lossy(name).into_owned();
        move |error| RestoreError::Cluster { name, op, error }
    };
    let mut ckpt = Ckpt::connect_with(config).map_err(cluster(&Bytes::new(), "connect"))?;
    let mut existing = Vec::new();
    for e in &manifest.entries {
        match retry(|| ckpt.open(&e.name, None, OPEN_READ, None)) {
            Ok(c) => {
                let _ = ckpt.close(&c);
                existing.push(e.name.clone());
            }
            Err(AisError::NotExist) => {}
            Err(err) => return Err(cluster(&e.name, "open")(err)),
        }
    }
    if !existing.is_empty() && !options.overwrite {
        return Err(RestoreError::Exists(existing));
    }
    let mut p = RestoreProgress {
        checkpoints_done: 0,
        checkpoints_total: manifest.entries.len(),
        bytes_done: 0,
        bytes_total: manifest.entries.iter().map(|e| e.data_bytes).sum(),
    };
    let root = destination_of(dir);
    for e in &manifest.entries {
        let path = root.join(&e.file);
        let bytes = read_bounded(&path, u64::MAX).map_err(|source| BackupFileError::Io {
            path: path.clone(),
            source,
        })?;
        let (backup_id, image) =
            read_data_file(&bytes).map_err(|source| BackupFileError::Format { path, source })?;
        drop(bytes);
        if backup_id != manifest.backup_id || image.name != e.name {
            return Err(RestoreError::Mismatch {
                file: e.file.clone(),
                name: String::from_utf8_lossy(&e.name).into_owned(),
                backup_id: manifest.backup_id,
            });
        }
        if existing.contains(&e.name) {
            match retry(|| ckpt.unlink(&e.name)) {
                Ok(()) | Err(AisError::NotExist) => {}
                Err(err) => return Err(cluster(&e.name, "unlink")(err)),
            }
        }
        p.bytes_done += restore_one(&mut ckpt, &image)?;
        p.checkpoints_done += 1;
        progress(&p);
    }
    Ok(RestoreReport {
        manifest,
        checkpoints: p.checkpoints_done,
        bytes: p.bytes_done,
        replaced: existing,
    })
}

/// Creates one checkpoint with its sections; the data bytes written.
fn restore_one(ckpt: &mut Ckpt, image: &CheckpointImage) -> Result<u64, RestoreError> {
    let err = |op: &'static str| {
        let name = String::from_utf8_lossy(&image.name).into_owned();
        move |error| RestoreError::Cluster { name, op, error }
    };
    let flags = OPEN_READ | OPEN_WRITE | OPEN_CREATE;
    let c = retry(|| {
        ckpt.open(
            &image.name,
            Some(image.attributes),
            flags,
            Some(RESTORE_CALL_TIMEOUT),
        )
    })
    .map_err(err("create"))?;
    let mut written = 0u64;
    for s in &image.sections {
        let default = s.id.is_empty() && image.attributes.max_sections == 1;
        let mut offset = 0usize;
        if !default {
            let first = s.data.len().min(MAX_DATA_BYTES);
            retry(|| ckpt.section_create(&c, &s.id, s.expiration_ns, &s.data[..first]))
                .map_err(err("section create"))?;
            offset = first;
        }
        while offset < s.data.len() {
            let end = (offset + MAX_DATA_BYTES).min(s.data.len());
            let el = [WriteElement {
                section_id: &s.id,
                offset: offset as u64,
                data: &s.data[offset..end],
            }];
            retry(|| ckpt.write(&c, &el).map_err(|e| e.error)).map_err(err("write"))?;
            offset = end;
        }
        written += s.data.len() as u64;
    }
    retry(|| ckpt.close(&c)).map_err(err("close"))?;
    Ok(written)
}

/// Runs `f` again while it answers TRY_AGAIN, for at most
/// [`RESTORE_CALL_TIMEOUT`].
fn retry<T>(mut f: impl FnMut() -> Result<T, AisError>) -> Result<T, AisError> {
    let deadline = Instant::now() + RESTORE_CALL_TIMEOUT;
    loop {
        match f() {
            Err(AisError::TryAgain) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            r => return r,
        }
    }
}
