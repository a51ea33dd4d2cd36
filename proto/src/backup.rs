//! The BACKUP service's messages (`ais_backup.h`): start a cluster-wide
//! backup of the checkpoints, follow it, list the jobs an executive knows.
//!
//! Request ids: START 0, STATUS 1, LIST 2. Callback ids: COMPLETE 0.
//! Verify and restore need no executive request of their own: verify reads
//! the files (see [`crate::backup_file`]); restore reads them and writes the
//! checkpoints back through the CKPT service, so every replica gets them.
//!
//! # Answers
//! - [`START`]: a [`StartReply`] once the request is on the ring (the backup
//!   id names the job from then on), then, when the job ends (done or
//!   aborted), one [`CB_COMPLETE`] callback ([`Completion`]) on the same
//!   connection, sent by the executive the request came through, whichever
//!   node was master.
//! - [`STATUS`]: a [`JobStatus`]; `SA_AIS_ERR_NOT_EXIST` for an unknown id.
//! - [`LIST`]: a [`ListReply`], newest job first.
//!
//! Every decoder here is bounds-checked like the rest of the crate.

use bytes::Bytes;

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::error::{status_code, Status};
use crate::setup::Version;

/// The BACKUP interface version.
pub const VERSION: Version = Version::B_01_01;

/// Request: start a backup ([`Start`] -> [`StartReply`], then
/// [`CB_COMPLETE`]).
pub const START: u16 = 0;
/// Request: one job's state ([`StatusRequest`] -> [`JobStatus`]).
pub const STATUS: u16 = 1;
/// Request: the jobs this executive knows (empty body -> [`ListReply`]).
pub const LIST: u16 = 2;

/// Callback: a job ended ([`Completion`]).
pub const CB_COMPLETE: u16 = 0;

/// Most bytes in a destination directory path.
pub const MAX_PATH_BYTES: usize = 4096;
/// Most checkpoint names in one selection (and most checkpoints in one
/// backup).
pub const MAX_CHECKPOINTS: usize = 4096;
/// Most bytes in a checkpoint name (`SA_MAX_NAME_LENGTH`).
pub const MAX_NAME_BYTES: usize = crate::ckpt::MAX_NAME_BYTES;
/// Most bytes of a reason or error message.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Most entries in a failed list or an error list.
pub const MAX_ERRORS: usize = 4096;
/// Most jobs in a [`ListReply`] (the executive keeps this many finished
/// jobs).
pub const MAX_JOBS: usize = 64;

/// Why one checkpoint or one node's share did not make it into a backup.
/// The class decides what the master does (the error table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum ErrorClass {
    /// The destination directory does not exist on that node: its share
    /// moves to another node.
    DestinationMissing = 1,
    /// The destination is not writable there: the share moves.
    DestinationNotWritable = 2,
    /// The destination is full there: the share moves.
    DestinationFull = 3,
    /// The device did not answer in time: the share moves.
    DeviceTimeout = 4,
    /// The checkpoint was gone at the cut: failed, not retried.
    Vanished = 5,
    /// This replica of the checkpoint is corrupted: failed, not retried.
    Corrupt = 6,
    /// A transient error that outlived its bounded retries.
    Transient = 7,
    /// Any other error.
    Other = 8,
}

impl ErrorClass {
    /// The value with wire code `code`.
    pub fn from_code(code: u32) -> Option<ErrorClass> {
        Some(match code {
            1 => ErrorClass::DestinationMissing,
            2 => ErrorClass::DestinationNotWritable,
            3 => ErrorClass::DestinationFull,
            4 => ErrorClass::DeviceTimeout,
            5 => ErrorClass::Vanished,
            6 => ErrorClass::Corrupt,
            7 => ErrorClass::Transient,
            8 => ErrorClass::Other,
            _ => return None,
        })
    }

    /// Whether the error is the destination's, so the share moves to another
    /// node instead of failing the checkpoint.
    pub fn is_destination(self) -> bool {
        matches!(
            self,
            ErrorClass::DestinationMissing
                | ErrorClass::DestinationNotWritable
                | ErrorClass::DestinationFull
                | ErrorClass::DeviceTimeout
        )
    }

    /// A short lower-case name for messages ("destination-full").
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::DestinationMissing => "destination-missing",
            ErrorClass::DestinationNotWritable => "destination-not-writable",
            ErrorClass::DestinationFull => "destination-full",
            ErrorClass::DeviceTimeout => "device-timeout",
            ErrorClass::Vanished => "vanished",
            ErrorClass::Corrupt => "corrupt",
            ErrorClass::Transient => "transient",
            ErrorClass::Other => "other",
        }
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<ErrorClass, DecodeError> {
        let code = dec.get_u32()?;
        ErrorClass::from_code(code).ok_or(DecodeError::BadValue {
            what: "error class",
            value: code.into(),
        })
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum JobPhase {
    /// Asked for; the master has not defined it yet.
    Requested = 1,
    /// Defined by the master; START not delivered yet.
    Defined = 2,
    /// START delivered (the cut is taken): the shares are being written.
    Running = 3,
    /// Every share ended; the master writes the manifest.
    Stopping = 4,
    /// Finished: the manifest is written and flushed.
    Done = 5,
    /// Aborted: every node removed its files of the job.
    Aborted = 6,
}

impl JobPhase {
    /// The value with wire code `code`.
    pub fn from_code(code: u32) -> Option<JobPhase> {
        Some(match code {
            1 => JobPhase::Requested,
            2 => JobPhase::Defined,
            3 => JobPhase::Running,
            4 => JobPhase::Stopping,
            5 => JobPhase::Done,
            6 => JobPhase::Aborted,
            _ => return None,
        })
    }

    /// Whether the job ended.
    pub fn is_final(self) -> bool {
        matches!(self, JobPhase::Done | JobPhase::Aborted)
    }

    /// A lower-case name ("running").
    pub fn name(self) -> &'static str {
        match self {
            JobPhase::Requested => "requested",
            JobPhase::Defined => "defined",
            JobPhase::Running => "running",
            JobPhase::Stopping => "stopping",
            JobPhase::Done => "done",
            JobPhase::Aborted => "aborted",
        }
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<JobPhase, DecodeError> {
        let code = dec.get_u32()?;
        JobPhase::from_code(code).ok_or(DecodeError::BadValue {
            what: "job phase",
            value: code.into(),
        })
    }
}

/// The body of [`START`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start {
    /// Echoed in the [`CB_COMPLETE`] callback.
    pub invocation: u64,
    /// The destination directory (absolute), the same path on every node.
    pub destination: String,
    /// The checkpoints to back up, by name; empty: every linked checkpoint.
    pub checkpoints: Vec<Bytes>,
}

/// The response to [`START`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartReply {
    /// The job's id, unique in the cluster.
    pub backup_id: u64,
}

/// The body of [`STATUS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusRequest {
    /// The job.
    pub backup_id: u64,
}

/// A checkpoint that is not in the backup, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedCheckpoint {
    /// The checkpoint's name.
    pub name: Bytes,
    /// Why.
    pub class: ErrorClass,
    /// What happened, for people.
    pub message: String,
}

/// An error one node met (its share then moved elsewhere, or the job
/// aborted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeError {
    /// The node.
    pub node: u32,
    /// Why.
    pub class: ErrorClass,
    /// What happened, for people.
    pub message: String,
}

/// The response to [`STATUS`] and one entry of [`ListReply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobStatus {
    /// The job.
    pub backup_id: u64,
    /// Where it is.
    pub phase: JobPhase,
    /// The master now (0 while none is known).
    pub master: u32,
    /// The destination directory.
    pub destination: String,
    /// The backup's directory, holding its manifest
    /// (`destination/backup-<id>`).
    pub directory: String,
    /// Checkpoints in the backup (known once running).
    pub checkpoints_total: u32,
    /// Of those, written and flushed.
    pub checkpoints_done: u32,
    /// Data bytes over the checkpoints in the backup.
    pub bytes_total: u64,
    /// Of those, written and flushed.
    pub bytes_done: u64,
    /// Why it aborted (empty otherwise).
    pub reason: String,
    /// Checkpoints that are not in the backup.
    pub failed: Vec<FailedCheckpoint>,
    /// Errors nodes met.
    pub errors: Vec<NodeError>,
}

/// The response to [`LIST`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListReply {
    /// At most [`MAX_JOBS`] jobs, newest first.
    pub jobs: Vec<JobStatus>,
}

/// The body of a [`CB_COMPLETE`] callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The invocation of the [`START`].
    pub invocation: u64,
    /// `SA_AIS_OK` when the backup is complete (its manifest written and
    /// flushed, possibly with a non-empty failed list); an error when it
    /// aborted.
    pub status: Status,
    /// The job as it ended.
    pub job: JobStatus,
}

// ----- encoding ------------------------------------------------------------

/// Smallest encoding of a length-prefixed field.
const LEN_BYTES: usize = 4;

macro_rules! whole_body {
    ($t:ty) => {
        impl $t {
            /// Its body.
            pub fn encode(&self) -> Bytes {
                let mut enc = Encoder::new();
                self.encode_into(&mut enc);
                enc.finish()
            }

            /// Decodes a body.
            ///
            /// # Errors
            /// [`DecodeError`] on malformed input, a field over its
            /// maximum, or trailing bytes.
            pub fn decode(body: &[u8]) -> Result<$t, DecodeError> {
                let mut dec = Decoder::new(body);
                let v = <$t>::decode_from(&mut dec)?;
                dec.finish()?;
                Ok(v)
            }
        }
    };
}

impl Start {
    /// Appends the request to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.invocation)
            .put_str(&self.destination)
            .put_count(self.checkpoints.len());
        for n in &self.checkpoints {
            enc.put_len_prefixed(n);
        }
    }

    /// Reads the request from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<Start, DecodeError> {
        let invocation = dec.get_u64()?;
        let destination = dec.get_string("destination", MAX_PATH_BYTES)?;
        let n = dec.get_count("checkpoints", MAX_CHECKPOINTS, LEN_BYTES)?;
        let mut checkpoints = Vec::with_capacity(n);
        for _ in 0..n {
            checkpoints.push(Bytes::copy_from_slice(
                dec.get_len_prefixed("checkpoint name", MAX_NAME_BYTES)?,
            ));
        }
        Ok(Start {
            invocation,
            destination,
            checkpoints,
        })
    }
}
whole_body!(Start);

impl StartReply {
    /// Appends the reply to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.backup_id);
    }

    /// Reads the reply from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] when truncated.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<StartReply, DecodeError> {
        Ok(StartReply {
            backup_id: dec.get_u64()?,
        })
    }
}
whole_body!(StartReply);

impl StatusRequest {
    /// Appends the request to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.backup_id);
    }

    /// Reads the request from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] when truncated.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<StatusRequest, DecodeError> {
        Ok(StatusRequest {
            backup_id: dec.get_u64()?,
        })
    }
}
whole_body!(StatusRequest);

impl FailedCheckpoint {
    /// Appends the entry to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_len_prefixed(&self.name)
            .put_u32(self.class as u32)
            .put_str(&self.message);
    }

    /// Reads the entry from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<FailedCheckpoint, DecodeError> {
        Ok(FailedCheckpoint {
            name: Bytes::copy_from_slice(dec.get_len_prefixed("checkpoint name", MAX_NAME_BYTES)?),
            class: ErrorClass::decode_from(dec)?,
            message: dec.get_string("message", MAX_MESSAGE_BYTES)?,
        })
    }
}

impl NodeError {
    /// Appends the entry to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u32(self.node)
            .put_u32(self.class as u32)
            .put_str(&self.message);
    }

    /// Reads the entry from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<NodeError, DecodeError> {
        Ok(NodeError {
            node: dec.get_u32()?,
            class: ErrorClass::decode_from(dec)?,
            message: dec.get_string("message", MAX_MESSAGE_BYTES)?,
        })
    }
}

impl JobStatus {
    /// Appends the status to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.backup_id)
            .put_u32(self.phase as u32)
            .put_u32(self.master)
            .put_str(&self.destination)
            .put_str(&self.directory)
            .put_u32(self.checkpoints_total)
            .put_u32(self.checkpoints_done)
            .put_u64(self.bytes_total)
            .put_u64(self.bytes_done)
            .put_str(&self.reason)
            .put_count(self.failed.len());
        for f in &self.failed {
            f.encode_into(enc);
        }
        enc.put_count(self.errors.len());
        for e in &self.errors {
            e.encode_into(enc);
        }
    }

    /// Reads the status from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<JobStatus, DecodeError> {
        let backup_id = dec.get_u64()?;
        let phase = JobPhase::decode_from(dec)?;
        let master = dec.get_u32()?;
        let destination = dec.get_string("destination", MAX_PATH_BYTES)?;
        let directory = dec.get_string("directory", MAX_PATH_BYTES + 64)?;
        let checkpoints_total = dec.get_u32()?;
        let checkpoints_done = dec.get_u32()?;
        let bytes_total = dec.get_u64()?;
        let bytes_done = dec.get_u64()?;
        let reason = dec.get_string("reason", MAX_MESSAGE_BYTES)?;
        let n = dec.get_count("failed", MAX_ERRORS, 3 * LEN_BYTES)?;
        let mut failed = Vec::with_capacity(n);
        for _ in 0..n {
            failed.push(FailedCheckpoint::decode_from(dec)?);
        }
        let n = dec.get_count("errors", MAX_ERRORS, 3 * LEN_BYTES)?;
        let mut errors = Vec::with_capacity(n);
        for _ in 0..n {
            errors.push(NodeError::decode_from(dec)?);
        }
        Ok(JobStatus {
            backup_id,
            phase,
            master,
            destination,
            directory,
            checkpoints_total,
            checkpoints_done,
            bytes_total,
            bytes_done,
            reason,
            failed,
            errors,
        })
    }
}
whole_body!(JobStatus);

impl ListReply {
    /// Appends the reply to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_count(self.jobs.len());
        for j in &self.jobs {
            j.encode_into(enc);
        }
    }

    /// Reads the reply from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<ListReply, DecodeError> {
        let n = dec.get_count("jobs", MAX_JOBS, 8 + 4 * 4)?;
        let mut jobs = Vec::with_capacity(n);
        for _ in 0..n {
            jobs.push(JobStatus::decode_from(dec)?);
        }
        Ok(ListReply { jobs })
    }
}
whole_body!(ListReply);

impl Completion {
    /// Appends the callback to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.invocation)
            .put_u32(status_code(self.status));
        self.job.encode_into(enc);
    }

    /// Reads the callback from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<Completion, DecodeError> {
        Ok(Completion {
            invocation: dec.get_u64()?,
            status: dec.get_status()?,
            job: JobStatus::decode_from(dec)?,
        })
    }
}
whole_body!(Completion);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AisError;
    use proptest::prelude::*;

    fn job() -> JobStatus {
        JobStatus {
            backup_id: 0x1_0000_0002,
            phase: JobPhase::Aborted,
            master: 1,
            destination: "/var/backup".into(),
            directory: "/var/backup/backup-0000000100000002".into(),
            checkpoints_total: 3,
            checkpoints_done: 2,
            bytes_total: 300,
            bytes_done: 200,
            reason: "no node can write".into(),
            failed: vec![FailedCheckpoint {
                name: Bytes::from_static(b"gone"),
                class: ErrorClass::Vanished,
                message: "not in the store at the cut".into(),
            }],
            errors: vec![NodeError {
                node: 2,
                class: ErrorClass::DestinationNotWritable,
                message: "permission denied".into(),
            }],
        }
    }

    #[test]
    fn every_body_round_trips() {
        let s = Start {
            invocation: 9,
            destination: "/d".into(),
            checkpoints: vec![Bytes::from_static(b"a"), Bytes::from_static(b"bb")],
        };
        assert_eq!(Start::decode(&s.encode()), Ok(s));
        let r = StartReply { backup_id: 77 };
        assert_eq!(StartReply::decode(&r.encode()), Ok(r));
        let q = StatusRequest { backup_id: 5 };
        assert_eq!(StatusRequest::decode(&q.encode()), Ok(q));
        assert_eq!(JobStatus::decode(&job().encode()), Ok(job()));
        let l = ListReply {
            jobs: vec![job(), job()],
        };
        assert_eq!(ListReply::decode(&l.encode()), Ok(l));
        let c = Completion {
            invocation: 3,
            status: Err(AisError::NoSpace),
            job: job(),
        };
        assert_eq!(Completion::decode(&c.encode()), Ok(c));
    }

    #[test]
    fn bad_enums_and_trailing_bytes_are_refused() {
        let mut b = job().encode().to_vec();
        b[8] = 99; // phase
        assert!(matches!(
            JobStatus::decode(&b),
            Err(DecodeError::BadValue {
                what: "job phase",
                ..
            })
        ));
        let mut b = StartReply { backup_id: 1 }.encode().to_vec();
        b.push(0);
        assert_eq!(StartReply::decode(&b), Err(DecodeError::TrailingBytes(1)));
    }

    proptest! {
        #[test]
        fn decoders_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Start::decode(&body);
            let _ = JobStatus::decode(&body);
            let _ = ListReply::decode(&body);
            let _ = Completion::decode(&body);
        }

        #[test]
        fn every_prefix_of_a_status_is_refused(cut in 0usize..200) {
            let b = job().encode();
            let cut = cut.min(b.len() - 1);
            prop_assert!(JobStatus::decode(&b[..cut]).is_err());
        }
    }
}
