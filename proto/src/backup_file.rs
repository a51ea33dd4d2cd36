//! The on-disk format of a backup: one manifest and one data file per
//! checkpoint, as docs/backup-format.md describes them field by field.
//!
//! Shared by the executive (which writes them, on its backup worker threads)
//! and the library and tool (which verify and restore them), so it lives
//! here, below both. No IO beyond the `Write` the caller hands in.
//!
//! Layout of a backup under the destination directory `D`:
//! ```text
//! D/backup-<id as 16 hex digits>/MANIFEST
//! D/node-<n>/backup-<id>/ckpt-<index>.dat     one per checkpoint
//! ```
//! Each node writes under its own `D/node-<n>` (on a shared destination
//! the nodes never write the same directory; an operator can take one
//! node's area away). Data file paths in the manifest are relative to `D`,
//! the parent of the manifest's directory.
//! Every data file's size and CRC-32 are in the manifest; the manifest ends
//! with the CRC-32 of everything before it. The reader checks every length
//! against the bytes present before it allocates, so a truncated or forged
//! file is an error, never a panic.

use std::io::{self, Write};

use bytes::Bytes;
use thiserror::Error;

use crate::backup::{FailedCheckpoint, NodeError, MAX_CHECKPOINTS, MAX_ERRORS, MAX_PATH_BYTES};
use crate::ckpt::{CreationAttributes, MAX_NAME_BYTES, MAX_SECTION_ID_BYTES};
use crate::codec::{DecodeError, Decoder, Encoder};

/// The first bytes of a manifest.
pub const MANIFEST_MAGIC: &[u8; 8] = b"AISBKMAN";
/// The first bytes of a data file.
pub const DATA_MAGIC: &[u8; 8] = b"AISBKDAT";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// The manifest's file name in a backup directory.
pub const MANIFEST_NAME: &str = "MANIFEST";
/// Most members listed in a manifest.
pub const MAX_MEMBERS: usize = 1024;
/// Most sections in one checkpoint of a data file.
pub const MAX_SECTIONS: usize = 1 << 20;
/// Most bytes of a manifest (the reader refuses larger files).
pub const MAX_MANIFEST_BYTES: usize = 64 << 20;

/// The directory of backup `backup_id` under `destination`.
pub fn backup_dir_name(backup_id: u64) -> String {
    format!("backup-{backup_id:016x}")
}

/// The manifest's path relative to the destination directory.
pub fn manifest_path(backup_id: u64) -> String {
    format!("{}/{MANIFEST_NAME}", backup_dir_name(backup_id))
}

/// A data file's path relative to the destination directory.
pub fn data_file_name(backup_id: u64, node: u32, index: u32) -> String {
    format!(
        "node-{node}/{}/ckpt-{index:05}.dat",
        backup_dir_name(backup_id)
    )
}

/// A section as a backup holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionImage {
    /// The section id (empty: the default section).
    pub id: Bytes,
    /// Absolute expiration (ns since the epoch; `SA_TIME_END`: never).
    pub expiration_ns: i64,
    /// The data.
    pub data: Bytes,
}

/// A checkpoint as a backup holds it: what restoring it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointImage {
    /// Its name.
    pub name: Bytes,
    /// Its creation attributes.
    pub attributes: CreationAttributes,
    /// Its sections, in id order.
    pub sections: Vec<SectionImage>,
}

impl CheckpointImage {
    /// Data bytes over its sections.
    pub fn data_bytes(&self) -> u64 {
        self.sections.iter().map(|s| s.data.len() as u64).sum()
    }
}

/// A data file's size and CRC-32, as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileDigest {
    /// Bytes in the file.
    pub size: u64,
    /// CRC-32 (IEEE) over the file.
    pub crc32: u32,
}

/// One checkpoint in a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Its index in the backup (files are named by it).
    pub index: u32,
    /// Its name.
    pub name: Bytes,
    /// Its creation attributes.
    pub attributes: CreationAttributes,
    /// Sections at the cut.
    pub sections: u32,
    /// Data bytes at the cut.
    pub data_bytes: u64,
    /// The data file, relative to the destination directory.
    pub file: String,
    /// The data file's size and CRC-32.
    pub digest: FileDigest,
    /// The node that wrote it.
    pub written_by: u32,
}

/// Where the cut was: START's position in the total order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    /// The ring START was delivered in: its sequence number.
    pub ring_seq: u64,
    /// That ring's representative.
    pub ring_rep: u32,
    /// START's position among the messages delivered in that ring.
    pub position: u64,
}

/// A backup's manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The job's id.
    pub backup_id: u64,
    /// The consistent cut.
    pub cut: Cut,
    /// The master that wrote the manifest.
    pub master: u32,
    /// The members at the cut, ascending.
    pub members: Vec<u32>,
    /// The checkpoints asked for (empty: all).
    pub selection: Vec<Bytes>,
    /// The checkpoints in the backup, by index.
    pub entries: Vec<ManifestEntry>,
    /// The checkpoints that are not.
    pub failed: Vec<FailedCheckpoint>,
    /// Errors nodes met while writing (their shares moved).
    pub errors: Vec<NodeError>,
}

/// Why a manifest or data file does not read.
#[derive(Debug, Error)]
pub enum FormatError {
    /// Not a file of this kind (wrong magic).
    #[error("not a backup {0} (bad magic)")]
    BadMagic(&'static str),
    /// A version this code does not read.
    #[error("format version {0} is not supported (this reads {FORMAT_VERSION})")]
    Version(u16),
    /// The manifest's own CRC does not match.
    #[error("manifest CRC mismatch: stored {stored:08x}, computed {computed:08x}")]
    ManifestCrc {
        /// The trailer.
        stored: u32,
        /// Over the bytes.
        computed: u32,
    },
    /// A field is malformed or truncated.
    #[error("malformed: {0}")]
    Malformed(#[from] DecodeError),
    /// The file is larger than the reader accepts.
    #[error("file of {0} bytes is too large")]
    TooLarge(u64),
}

/// A `Write` that counts and CRCs what passes through.
struct Digesting<W> {
    inner: W,
    crc: crc32fast::Hasher,
    size: u64,
}

impl<W: Write> Digesting<W> {
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.inner.write_all(b)?;
        self.crc.update(b);
        self.size += b.len() as u64;
        Ok(())
    }
}

/// Writes `image` as the data file of backup `backup_id` to `w`, streaming
/// the section data (never copied), and returns its size and CRC-32.
///
/// # Errors
/// What `w` returns.
pub fn write_data_file<W: Write>(
    w: W,
    backup_id: u64,
    image: &CheckpointImage,
) -> io::Result<FileDigest> {
    let mut d = Digesting {
        inner: w,
        crc: crc32fast::Hasher::new(),
        size: 0,
    };
    let mut enc = Encoder::new();
    enc.put_bytes(DATA_MAGIC)
        .put_u16(FORMAT_VERSION)
        .put_u64(backup_id)
        .put_len_prefixed(&image.name);
    image.attributes.encode_into(&mut enc);
    enc.put_count(image.sections.len());
    d.put(&enc.finish())?;
    for s in &image.sections {
        let mut enc = Encoder::new();
        enc.put_len_prefixed(&s.id)
            .put_i64(s.expiration_ns)
            .put_u64(s.data.len() as u64);
        d.put(&enc.finish())?;
        d.put(&s.data)?;
    }
    d.inner.flush()?;
    Ok(FileDigest {
        size: d.size,
        crc32: d.crc.finalize(),
    })
}

/// Reads a data file (its whole bytes), checking every length.
///
/// # Errors
/// [`FormatError`] when the bytes are not a well-formed data file.
pub fn read_data_file(bytes: &[u8]) -> Result<(u64, CheckpointImage), FormatError> {
    let mut dec = Decoder::new(bytes);
    if dec
        .get_bytes(8)
        .map_err(|_| FormatError::BadMagic("data file"))?
        != DATA_MAGIC
    {
        return Err(FormatError::BadMagic("data file"));
    }
    let version = dec.get_u16()?;
    if version != FORMAT_VERSION {
        return Err(FormatError::Version(version));
    }
    let backup_id = dec.get_u64()?;
    let name = Bytes::copy_from_slice(dec.get_len_prefixed("checkpoint name", MAX_NAME_BYTES)?);
    let attributes = CreationAttributes::decode_from(&mut dec)?;
    let n = dec.get_count("sections", MAX_SECTIONS, 4 + 8 + 8)?;
    let mut sections = Vec::with_capacity(n);
    for _ in 0..n {
        let id = Bytes::copy_from_slice(dec.get_len_prefixed("section id", MAX_SECTION_ID_BYTES)?);
        let expiration_ns = dec.get_i64()?;
        let len = dec.get_u64()?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= dec.remaining())
            .ok_or(DecodeError::Truncated {
                what: "section data",
                needed: usize::try_from(len).unwrap_or(usize::MAX),
                remaining: dec.remaining(),
            })?;
        let data = Bytes::copy_from_slice(dec.get_bytes(len)?);
        sections.push(SectionImage {
            id,
            expiration_ns,
            data,
        });
    }
    dec.finish()?;
    Ok((
        backup_id,
        CheckpointImage {
            name,
            attributes,
            sections,
        },
    ))
}

impl Manifest {
    /// The manifest's bytes, CRC trailer included.
    pub fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        enc.put_bytes(MANIFEST_MAGIC)
            .put_u16(FORMAT_VERSION)
            .put_u64(self.backup_id)
            .put_u64(self.cut.ring_seq)
            .put_u32(self.cut.ring_rep)
            .put_u64(self.cut.position)
            .put_u32(self.master)
            .put_count(self.members.len());
        for m in &self.members {
            enc.put_u32(*m);
        }
        enc.put_count(self.selection.len());
        for n in &self.selection {
            enc.put_len_prefixed(n);
        }
        enc.put_count(self.entries.len());
        for e in &self.entries {
            enc.put_u32(e.index).put_len_prefixed(&e.name);
            e.attributes.encode_into(&mut enc);
            enc.put_u32(e.sections)
                .put_u64(e.data_bytes)
                .put_str(&e.file)
                .put_u64(e.digest.size)
                .put_u32(e.digest.crc32)
                .put_u32(e.written_by);
        }
        enc.put_count(self.failed.len());
        for f in &self.failed {
            f.encode_into(&mut enc);
        }
        enc.put_count(self.errors.len());
        for e in &self.errors {
            e.encode_into(&mut enc);
        }
        let body = enc.finish();
        let crc = crc32fast::hash(&body);
        let mut out = Vec::with_capacity(body.len() + 4);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc.to_le_bytes());
        Bytes::from(out)
    }

    /// Reads a manifest, checking its CRC trailer and every length.
    ///
    /// # Errors
    /// [`FormatError`] when the bytes are not a well-formed manifest.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, FormatError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(FormatError::TooLarge(bytes.len() as u64));
        }
        if bytes.len() < MANIFEST_MAGIC.len() || &bytes[..MANIFEST_MAGIC.len()] != MANIFEST_MAGIC {
            return Err(FormatError::BadMagic("manifest"));
        }
        let Some(body_len) = bytes.len().checked_sub(4) else {
            return Err(FormatError::BadMagic("manifest"));
        };
        let (body, trailer) = bytes.split_at(body_len);
        let stored = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let computed = crc32fast::hash(body);
        if stored != computed {
            return Err(FormatError::ManifestCrc { stored, computed });
        }
        let mut dec = Decoder::new(&body[MANIFEST_MAGIC.len()..]);
        let version = dec.get_u16()?;
        if version != FORMAT_VERSION {
            return Err(FormatError::Version(version));
        }
        let backup_id = dec.get_u64()?;
        let cut = Cut {
            ring_seq: dec.get_u64()?,
            ring_rep: dec.get_u32()?,
            position: dec.get_u64()?,
        };
        let master = dec.get_u32()?;
        let n = dec.get_count("members", MAX_MEMBERS, 4)?;
        let mut members = Vec::with_capacity(n);
        for _ in 0..n {
            members.push(dec.get_u32()?);
        }
        let n = dec.get_count("selection", MAX_CHECKPOINTS, 4)?;
        let mut selection = Vec::with_capacity(n);
        for _ in 0..n {
            selection.push(Bytes::copy_from_slice(
                dec.get_len_prefixed("checkpoint name", MAX_NAME_BYTES)?,
            ));
        }
        let n = dec.get_count(
            "entries",
            MAX_CHECKPOINTS,
            4 + 4 + 40 + 4 + 8 + 4 + 8 + 4 + 4,
        )?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let index = dec.get_u32()?;
            let name =
                Bytes::copy_from_slice(dec.get_len_prefixed("checkpoint name", MAX_NAME_BYTES)?);
            let attributes = CreationAttributes::decode_from(&mut dec)?;
            entries.push(ManifestEntry {
                index,
                name,
                attributes,
                sections: dec.get_u32()?,
                data_bytes: dec.get_u64()?,
                file: dec.get_string("file", MAX_PATH_BYTES)?,
                digest: FileDigest {
                    size: dec.get_u64()?,
                    crc32: dec.get_u32()?,
                },
                written_by: dec.get_u32()?,
            });
        }
        let n = dec.get_count("failed", MAX_ERRORS, 12)?;
        let mut failed = Vec::with_capacity(n);
        for _ in 0..n {
            failed.push(FailedCheckpoint::decode_from(&mut dec)?);
        }
        let n = dec.get_count("errors", MAX_ERRORS, 12)?;
        let mut errors = Vec::with_capacity(n);
        for _ in 0..n {
            errors.push(NodeError::decode_from(&mut dec)?);
        }
        dec.finish()?;
        Ok(Manifest {
            backup_id,
            cut,
            master,
            members,
            selection,
            entries,
            failed,
            errors,
        })
    }
}

/// Whether `file` (a manifest entry's path) stays inside the backup
/// directory: relative, no `..`, no empty or `.` component. Readers must
/// check it before they open the file, since a manifest may be hostile.
pub fn is_safe_relative_path(file: &str) -> bool {
    !file.is_empty()
        && !file.starts_with('/')
        && file
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::ErrorClass;
    use proptest::prelude::*;

    fn attrs() -> CreationAttributes {
        CreationAttributes {
            creation_flags: 1,
            checkpoint_size: 1000,
            retention_duration_ns: 5,
            max_sections: 4,
            max_section_size: 500,
            max_section_id_size: 16,
        }
    }

    fn image() -> CheckpointImage {
        CheckpointImage {
            name: Bytes::from_static(b"ckpt-a"),
            attributes: attrs(),
            sections: vec![
                SectionImage {
                    id: Bytes::new(),
                    expiration_ns: i64::MAX,
                    data: Bytes::from_static(b"hello"),
                },
                SectionImage {
                    id: Bytes::from_static(b"s1"),
                    expiration_ns: 42,
                    data: Bytes::from(vec![7u8; 300]),
                },
            ],
        }
    }

    pub(crate) fn manifest() -> Manifest {
        Manifest {
            backup_id: 0xabc,
            cut: Cut {
                ring_seq: 8,
                ring_rep: 1,
                position: 1234,
            },
            master: 1,
            members: vec![1, 2, 3],
            selection: vec![],
            entries: vec![ManifestEntry {
                index: 0,
                name: Bytes::from_static(b"ckpt-a"),
                attributes: attrs(),
                sections: 2,
                data_bytes: 305,
                file: data_file_name(0xabc, 2, 0),
                digest: FileDigest {
                    size: 400,
                    crc32: 0xdead_beef,
                },
                written_by: 2,
            }],
            failed: vec![FailedCheckpoint {
                name: Bytes::from_static(b"gone"),
                class: ErrorClass::Vanished,
                message: "not there".into(),
            }],
            errors: vec![NodeError {
                node: 3,
                class: ErrorClass::DestinationFull,
                message: "no space left".into(),
            }],
        }
    }

    #[test]
    fn data_file_round_trips_with_its_digest() {
        let mut buf = Vec::new();
        let d = write_data_file(&mut buf, 7, &image()).unwrap();
        assert_eq!(d.size, buf.len() as u64);
        assert_eq!(d.crc32, crc32fast::hash(&buf));
        let (id, back) = read_data_file(&buf).unwrap();
        assert_eq!((id, back), (7, image()));
    }

    #[test]
    fn truncated_data_file_is_refused_at_every_length() {
        let mut buf = Vec::new();
        write_data_file(&mut buf, 7, &image()).unwrap();
        for cut in 0..buf.len() {
            assert!(read_data_file(&buf[..cut]).is_err(), "prefix {cut} read");
        }
    }

    #[test]
    fn manifest_round_trips_and_detects_a_flipped_byte() {
        let m = manifest();
        let b = m.encode();
        assert_eq!(Manifest::decode(&b).unwrap(), m);
        for i in 0..b.len() {
            let mut c = b.to_vec();
            c[i] ^= 0x10;
            assert!(Manifest::decode(&c).is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn unsafe_paths_are_refused() {
        assert!(is_safe_relative_path(&data_file_name(1, 2, 3)));
        for p in ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a"] {
            assert!(!is_safe_relative_path(p), "{p}");
        }
    }

    proptest! {
        #[test]
        fn readers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = Manifest::decode(&body);
            let _ = read_data_file(&body);
        }

        #[test]
        fn forged_manifest_with_valid_crc_never_panics(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)
        ) {
            // Change bytes of the body, then fix the trailer, so the parser
            // (not only the CRC) sees the forged fields.
            let b = manifest().encode();
            let mut body = b[..b.len() - 4].to_vec();
            for (i, v) in flips {
                let i = 8 + i % (body.len() - 8);
                body[i] = v;
            }
            let crc = crc32fast::hash(&body);
            body.extend_from_slice(&crc.to_le_bytes());
            let _ = Manifest::decode(&body);
        }
    }
}
