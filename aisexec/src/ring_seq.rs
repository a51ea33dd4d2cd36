//! The persisted ring sequence number.
//!
//! Totem reports the highest ring seq it used or saw
//! ([`totem::Event::RingSeqHigh`]); after a restart it must start above it
//! (`ring_seq_floor`), or it could form a ring whose id an earlier
//! incarnation already used with other members (openais kept it in
//! `/var/lib/openais/ringid_<ip>`). The file holds the number in decimal
//! and a newline; it is replaced atomically (write a temporary file, fsync,
//! rename, fsync the directory), so a crash leaves the old or the new
//! number, never a torn one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file's name in the state directory.
pub const FILE_NAME: &str = "ring_seq";

/// Longest file accepted, in bytes (a u64 in decimal and a newline).
const MAX_FILE_BYTES: u64 = 32;

/// Why the file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The content is not a number.
    #[error("{} does not hold a ring sequence number", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
    },
}

/// The ring seq file of one state directory.
#[derive(Debug)]
pub struct RingSeqFile {
    path: PathBuf,
    stored: u64,
}

impl RingSeqFile {
    /// Reads `dir/ring_seq`; a missing file is 0 (a first start).
    ///
    /// # Errors
    /// [`LoadError`] when the file exists but cannot be read or parsed; the
    /// caller decides (the daemon warns and starts from 0: the other nodes'
    /// ring ids push it up again).
    pub fn load(dir: &Path) -> (RingSeqFile, Result<u64, LoadError>) {
        let path = dir.join(FILE_NAME);
        let result = read(&path);
        let stored = *result.as_ref().unwrap_or(&0);
        (RingSeqFile { path, stored }, result)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Persists `seq` if it is higher than what is stored.
    ///
    /// # Errors
    /// Writing, syncing or renaming failed; what was stored stays.
    pub fn store(&mut self, seq: u64) -> io::Result<()> {
        if seq <= self.stored {
            return Ok(());
        }
        let tmp = self.path.with_extension("tmp");
        let mut f = File::create(&tmp)?;
        writeln!(f, "{seq}")?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            // The rename is durable once the directory is.
            File::open(dir)?.sync_all()?;
        }
        self.stored = seq;
        Ok(())
    }
}

fn read(path: &Path) -> Result<u64, LoadError> {
    use std::io::Read;
    let io = |source| LoadError::Io {
        path: path.to_owned(),
        source,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(e)),
    };
    // Bytes, not a String: a file that is not UTF-8 (or is cut inside a
    // character by the size bound) is corrupt, not a read error.
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let corrupt = || LoadError::Corrupt {
        path: path.to_owned(),
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| corrupt())?;
    text.trim().parse().map_err(|_| corrupt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_only_increases_and_reads_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut f, first) = RingSeqFile::load(dir.path());
        assert_eq!(first.expect("missing is zero"), 0);
        f.store(44).expect("stored");
        f.store(40).expect("lower is a no-op");
        let (_, again) = RingSeqFile::load(dir.path());
        assert_eq!(again.expect("reads"), 44);
        fs::write(f.path(), "garbage").expect("write");
        let (f, bad) = RingSeqFile::load(dir.path());
        assert!(matches!(bad, Err(LoadError::Corrupt { .. })));
        assert_eq!(f.stored, 0);
        assert!(!dir.path().join("ring_seq.tmp").exists());
    }

    /// Found by the property below: bytes that are not UTF-8 were an IO
    /// error instead of a corrupt file.
    #[test]
    fn non_utf8_content_is_corrupt() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join(FILE_NAME), b"12\xff\n").expect("write");
        let (_, got) = RingSeqFile::load(dir.path());
        assert!(matches!(got, Err(LoadError::Corrupt { .. })), "{got:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// Whatever the file holds (a torn write by another program, a
        /// hostile edit), loading never panics, reads at most
        /// MAX_FILE_BYTES, and accepts exactly a decimal u64 with
        /// surrounding whitespace.
        #[test]
        fn any_content_loads_or_is_corrupt(content in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let dir = tempfile::tempdir().expect("temp dir");
            fs::write(dir.path().join(FILE_NAME), &content).expect("write");
            let (f, got) = RingSeqFile::load(dir.path());
            let read = &content[..content.len().min(MAX_FILE_BYTES as usize)];
            let want = std::str::from_utf8(read).ok().and_then(|t| t.trim().parse::<u64>().ok());
            match (got, want) {
                (Ok(v), Some(w)) => proptest::prop_assert_eq!(v, w),
                (Err(LoadError::Corrupt { .. }), None) => proptest::prop_assert_eq!(f.stored, 0),
                (got, want) => proptest::prop_assert!(false, "{:?} vs {:?}", got, want),
            }
        }
    }
}
