//! What the BACKUP engine asks its driver to do with files, and what the
//! driver tells it back. The engine does no IO: the node surfaces these
//! requests ([`crate::ServiceTable::poll_backup_io`]); the daemon runs them
//! on its backup worker threads and feeds each result back with `now`
//! ([`crate::ServiceTable::handle_backup_io_done`]).

use proto::backup::ErrorClass;
use proto::backup_file::{CheckpointImage, FileDigest, Manifest};

/// A checkpoint as the CKPT store held it at the cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotItem {
    /// Its name, attributes and sections (data shared with the store, copy
    /// on write).
    pub image: CheckpointImage,
    /// Whether this node's replica holds every section's bytes (false: some
    /// section is corrupted or being recovered here).
    pub intact: bool,
}

/// A file job for the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackupIo {
    /// Write one checkpoint's data file: to `dir/file` by way of a
    /// temporary name, fsync the file, rename it, fsync the directory; only
    /// then report success, with the file's size and CRC-32. `dir` itself
    /// must exist (a missing destination is an error, never created); the
    /// directories below it are created.
    WriteData {
        /// The job.
        backup_id: u64,
        /// The checkpoint's index in the job.
        item: u32,
        /// The destination directory.
        dir: String,
        /// The file, relative to `dir`.
        file: String,
        /// What to write.
        image: CheckpointImage,
    },
    /// Write the manifest to `dir/MANIFEST` the same way (creating `dir`,
    /// not its parent, the destination).
    WriteManifest {
        /// The job.
        backup_id: u64,
        /// The backup's directory (`destination/backup-<id>`).
        dir: String,
        /// The manifest.
        manifest: Manifest,
        /// Files (relative to the destination, and their temporary
        /// names) to remove before the manifest is written: what departed
        /// members left behind.
        remove_first: Vec<String>,
    },
    /// The job aborted: remove these files (relative to `dir`; temporary
    /// files of writes still running are removed by those writes), then the
    /// directories in `dirs` if they are empty, deepest first.
    Remove {
        /// The job.
        backup_id: u64,
        /// The destination directory.
        dir: String,
        /// Files to remove, relative to `dir`.
        files: Vec<String>,
        /// Directories (relative to `dir`) to remove when empty.
        dirs: Vec<String>,
    },
}

/// What became of a [`BackupIo::WriteData`] or [`BackupIo::WriteManifest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupIoDone {
    /// The job.
    pub backup_id: u64,
    /// The checkpoint's index, `None` for the manifest.
    pub item: Option<u32>,
    /// The file's size and CRC once written and flushed, or the classified
    /// error.
    pub result: Result<FileDigest, (ErrorClass, String)>,
}
