//! The CKPT service's messages (`saCkpt.h`, SA Forum AIS B.01.01): replicated
//! checkpoints, their sections, and the per-node store status that
//! `ais-ckpt` prints.
//!
//! Request ids follow openais 0.80's `ipc_ckpt.h` order (OPEN 0 ... ITERATION
//! NEXT 16); the async open, the store status and the listing are ours
//! (17, 18, 19). Callback ids: OPEN 0, SYNCHRONIZE 1.
//!
//! # Handles
//! The executive names an open checkpoint by a `handle` (a `u64` it
//! allocates when the open is applied, unique for the life of the
//! executive); the library maps its `SaCkptCheckpointHandleT` to it. The
//! same holds for section iterations (`iteration`).
//!
//! # Answers
//! Every request gets exactly one response, in request order:
//! - [`OPEN`]: an [`OpenReply`]; [`OPEN_ASYNC`]: an empty response once the
//!   request is accepted, then a [`CB_OPEN`] callback ([`OpenCallback`])
//!   echoing the invocation, with the handle or the error.
//! - [`STATUS_GET`]: a [`CheckpointStatus`]; [`SECTION_CREATE`]: a
//!   [`SectionCreateReply`] with the (possibly generated) section id;
//!   [`ITERATION_INITIALIZE`]: an [`IterationReply`]; [`ITERATION_NEXT`]: a
//!   [`SectionDescriptor`], or `SA_AIS_ERR_NO_SECTIONS` at the end;
//!   [`READ`]: a [`ReadReply`] (the bytes read per element: their lengths
//!   are the `readSize`s).
//! - [`WRITE`] and [`READ`] that fail because of one element answer the
//!   error with an [`ErroneousIndex`] body (`erroneousVectorIndex`); other
//!   errors have an empty body.
//! - [`SYNCHRONIZE_ASYNC`]: an empty response, then a [`CB_SYNCHRONIZE`]
//!   callback ([`SynchronizeCallback`]).
//! - [`STORE_STATUS`]: a [`StoreStatus`]; [`LIST`]: a [`ListReply`].
//! - Everything else: an empty body.
//!
//! What the library checks itself (NULL pointers, `SA_AIS_ERR_INIT` for a
//! missing callback, `SA_CKPT_GENERATED_SECTION_ID` vs the default section)
//! is the library's; the executive re-checks every parameter it is sent.

use bytes::Bytes;

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::error::{status_code, Status};
use crate::setup::Version;

/// The CKPT interface version (SA Forum B.01.01).
pub const VERSION: Version = Version::B_01_01;

/// Request: open a checkpoint ([`Open`] -> [`OpenReply`]).
pub const OPEN: u16 = 0;
/// Request: close a handle ([`HandleRequest`]).
pub const CLOSE: u16 = 1;
/// Request: unlink a checkpoint by name ([`Unlink`]).
pub const UNLINK: u16 = 2;
/// Request: set the retention duration ([`RetentionDurationSet`]).
pub const RETENTION_DURATION_SET: u16 = 3;
/// Request: make this node the active replica ([`HandleRequest`]).
pub const ACTIVE_REPLICA_SET: u16 = 4;
/// Request: the checkpoint's status ([`HandleRequest`] ->
/// [`CheckpointStatus`]).
pub const STATUS_GET: u16 = 5;
/// Request: create a section ([`SectionCreate`] -> [`SectionCreateReply`]).
pub const SECTION_CREATE: u16 = 6;
/// Request: delete a section ([`SectionDelete`]).
pub const SECTION_DELETE: u16 = 7;
/// Request: set a section's expiration time ([`SectionExpirationTimeSet`]).
pub const SECTION_EXPIRATION_TIME_SET: u16 = 8;
/// Request: write a vector of elements ([`Write`]).
pub const WRITE: u16 = 9;
/// Request: replace a section's data ([`SectionOverwrite`]).
pub const SECTION_OVERWRITE: u16 = 10;
/// Request: read a vector of elements ([`Read`] -> [`ReadReply`]).
pub const READ: u16 = 11;
/// Request: wait until every replica has the writes so far
/// ([`HandleRequest`]).
pub const SYNCHRONIZE: u16 = 12;
/// Request: as [`SYNCHRONIZE`], answered by a callback
/// ([`SynchronizeAsync`]).
pub const SYNCHRONIZE_ASYNC: u16 = 13;
/// Request: start a section iteration ([`IterationInitialize`] ->
/// [`IterationReply`]).
pub const ITERATION_INITIALIZE: u16 = 14;
/// Request: end an iteration ([`IterationRequest`]).
pub const ITERATION_FINALIZE: u16 = 15;
/// Request: the next section of an iteration ([`IterationRequest`] ->
/// [`SectionDescriptor`]).
pub const ITERATION_NEXT: u16 = 16;
/// Request: open, answered by a [`CB_OPEN`] callback ([`OpenAsync`]).
pub const OPEN_ASYNC: u16 = 17;
/// Request: this node's store status and digest (empty body ->
/// [`StoreStatus`]).
pub const STORE_STATUS: u16 = 18;
/// Request: list checkpoints ([`List`] -> [`ListReply`]).
pub const LIST: u16 = 19;

/// Callback: the result of an [`OPEN_ASYNC`] ([`OpenCallback`]).
pub const CB_OPEN: u16 = 0;
/// Callback: the result of a [`SYNCHRONIZE_ASYNC`]
/// ([`SynchronizeCallback`]).
pub const CB_SYNCHRONIZE: u16 = 1;

/// `SA_CKPT_WR_ALL_REPLICAS`.
pub const WR_ALL_REPLICAS: u32 = 0x1;
/// `SA_CKPT_WR_ACTIVE_REPLICA`.
pub const WR_ACTIVE_REPLICA: u32 = 0x2;
/// `SA_CKPT_WR_ACTIVE_REPLICA_WEAK`.
pub const WR_ACTIVE_REPLICA_WEAK: u32 = 0x4;
/// `SA_CKPT_CHECKPOINT_COLLOCATED`.
pub const CHECKPOINT_COLLOCATED: u32 = 0x8;

/// `SA_CKPT_CHECKPOINT_READ`.
pub const OPEN_READ: u32 = 0x1;
/// `SA_CKPT_CHECKPOINT_WRITE`.
pub const OPEN_WRITE: u32 = 0x2;
/// `SA_CKPT_CHECKPOINT_CREATE`.
pub const OPEN_CREATE: u32 = 0x4;

/// `SA_TIME_END`: never (expiration), forever (retention).
pub const TIME_END: i64 = i64::MAX;

/// `SA_MAX_NAME_LENGTH`: most bytes in a checkpoint name.
pub const MAX_NAME_BYTES: usize = 256;
/// Most bytes in a section id on the wire (and the largest
/// `maxSectionIdSize` the executive accepts).
pub const MAX_SECTION_ID_BYTES: usize = 1024;
/// Most elements in one write or read vector.
pub const MAX_IO_ELEMENTS: usize = 1024;
/// Most data bytes one request carries or one read returns (write data
/// summed over elements, overwrite data, initial section data, read sizes
/// summed over elements). The library splits larger calls.
pub const MAX_DATA_BYTES: usize = 1 << 20;
/// Most entries in one [`ListReply`].
pub const MAX_LIST_ENTRIES: usize = 64;

/// Smallest encoding of a length-prefixed field.
const LEN_BYTES: usize = 4;

/// `SaCkptSectionsChosenT`: which sections an iteration returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum SectionsChosen {
    /// `SA_CKPT_SECTIONS_FOREVER`: sections that never expire.
    Forever = 1,
    /// `SA_CKPT_SECTIONS_LEQ_EXPIRATION_TIME`: expiring at or before the
    /// given time.
    LeqExpirationTime = 2,
    /// `SA_CKPT_SECTIONS_GEQ_EXPIRATION_TIME`: expiring at or after the
    /// given time.
    GeqExpirationTime = 3,
    /// `SA_CKPT_SECTIONS_CORRUPTED`: sections whose local replica is
    /// corrupted.
    Corrupted = 4,
    /// `SA_CKPT_SECTIONS_ANY`: every section.
    Any = 5,
}

impl SectionsChosen {
    /// The value with C code `code`.
    pub fn from_code(code: u32) -> Option<SectionsChosen> {
        match code {
            1 => Some(SectionsChosen::Forever),
            2 => Some(SectionsChosen::LeqExpirationTime),
            3 => Some(SectionsChosen::GeqExpirationTime),
            4 => Some(SectionsChosen::Corrupted),
            5 => Some(SectionsChosen::Any),
            _ => None,
        }
    }
}

/// `SaCkptSectionStateT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum SectionState {
    /// `SA_CKPT_SECTION_VALID`.
    Valid = 1,
    /// `SA_CKPT_SECTION_CORRUPTED`: this replica lost the section's data.
    Corrupted = 2,
}

impl SectionState {
    fn from_code(code: u32) -> Result<SectionState, DecodeError> {
        match code {
            1 => Ok(SectionState::Valid),
            2 => Ok(SectionState::Corrupted),
            v => Err(DecodeError::BadValue {
                what: "section state",
                value: v.into(),
            }),
        }
    }
}

/// `SaCkptCheckpointCreationAttributesT`, field for field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CreationAttributes {
    /// `SA_CKPT_WR_*` and `SA_CKPT_CHECKPOINT_COLLOCATED`.
    pub creation_flags: u32,
    /// Most bytes of data over all sections.
    pub checkpoint_size: u64,
    /// How long the checkpoint lives once closed by every opener (ns;
    /// [`TIME_END`]: forever).
    pub retention_duration_ns: i64,
    /// Most sections.
    pub max_sections: u32,
    /// Most bytes in one section.
    pub max_section_size: u64,
    /// Most bytes in a section id.
    pub max_section_id_size: u64,
}

/// The body of [`OPEN`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// The checkpoint name (`SaNameT` value, 1..=[`MAX_NAME_BYTES`] bytes).
    pub name: Bytes,
    /// Creation attributes: given exactly when [`OPEN_CREATE`] is set.
    pub attributes: Option<CreationAttributes>,
    /// `SA_CKPT_CHECKPOINT_READ | WRITE | CREATE`.
    pub open_flags: u32,
}

/// The body of [`OPEN_ASYNC`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenAsync {
    /// Echoed in the [`CB_OPEN`] callback.
    pub invocation: u64,
    /// What to open, as for [`OPEN`].
    pub open: Open,
}

/// The response to [`OPEN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenReply {
    /// The executive's handle for this open.
    pub handle: u64,
    /// The checkpoint's creation attributes.
    pub attributes: CreationAttributes,
}

/// The body of a [`CB_OPEN`] callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenCallback {
    /// The invocation of the [`OPEN_ASYNC`].
    pub invocation: u64,
    /// The outcome.
    pub status: Status,
    /// The handle when the open succeeded, 0 otherwise.
    pub handle: u64,
    /// The checkpoint's creation attributes (zeroes on error).
    pub attributes: CreationAttributes,
}

/// The body of [`CLOSE`], [`ACTIVE_REPLICA_SET`], [`STATUS_GET`] and
/// [`SYNCHRONIZE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandleRequest {
    /// The handle from the open.
    pub handle: u64,
}

/// The body of [`UNLINK`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unlink {
    /// The checkpoint name.
    pub name: Bytes,
}

/// The body of [`RETENTION_DURATION_SET`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionDurationSet {
    /// The handle from the open.
    pub handle: u64,
    /// The new retention duration (ns).
    pub retention_duration_ns: i64,
}

/// The response to [`STATUS_GET`]: `SaCkptCheckpointDescriptorT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointStatus {
    /// The creation attributes (with the current retention duration).
    pub attributes: CreationAttributes,
    /// Sections now.
    pub number_of_sections: u32,
    /// Data bytes over all sections (the library clamps to `SaUint32T`).
    pub memory_used: u64,
}

/// The body of [`SECTION_CREATE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionCreate {
    /// The handle from the open.
    pub handle: u64,
    /// The new section's id; empty asks for a generated id
    /// (`SA_CKPT_GENERATED_SECTION_ID`).
    pub section_id: Bytes,
    /// Absolute expiration time (ns since the epoch; [`TIME_END`]: never).
    pub expiration_time_ns: i64,
    /// Initial data.
    pub initial_data: Bytes,
}

/// The response to [`SECTION_CREATE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionCreateReply {
    /// The section id (the generated one when the request asked).
    pub section_id: Bytes,
}

/// The body of [`SECTION_DELETE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionDelete {
    /// The handle from the open.
    pub handle: u64,
    /// The section.
    pub section_id: Bytes,
}

/// The body of [`SECTION_EXPIRATION_TIME_SET`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionExpirationTimeSet {
    /// The handle from the open.
    pub handle: u64,
    /// The section.
    pub section_id: Bytes,
    /// The new absolute expiration time (ns since the epoch).
    pub expiration_time_ns: i64,
}

/// The body of [`ITERATION_INITIALIZE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IterationInitialize {
    /// The handle from the open.
    pub handle: u64,
    /// Which sections.
    pub sections_chosen: SectionsChosen,
    /// The time LEQ/GEQ compare with (ns since the epoch).
    pub expiration_time_ns: i64,
}

/// The response to [`ITERATION_INITIALIZE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IterationReply {
    /// The executive's iteration handle.
    pub iteration: u64,
    /// The checkpoint's `maxSectionIdSize` (the library sizes id buffers
    /// by it).
    pub max_section_id_size: u64,
}

/// The body of [`ITERATION_NEXT`] and [`ITERATION_FINALIZE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IterationRequest {
    /// The iteration handle.
    pub iteration: u64,
}

/// The response to [`ITERATION_NEXT`]: `SaCkptSectionDescriptorT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionDescriptor {
    /// The section id.
    pub section_id: Bytes,
    /// Absolute expiration time (ns since the epoch).
    pub expiration_time_ns: i64,
    /// Bytes of data.
    pub section_size: u64,
    /// Whether this node's replica of the section is valid.
    pub state: SectionState,
    /// When it was last written (ns since the epoch, by the writer's
    /// executive clock).
    pub last_update_ns: i64,
}

/// One element of a [`Write`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteElement {
    /// The section.
    pub section_id: Bytes,
    /// Where in the section.
    pub offset: u64,
    /// The bytes (at least one).
    pub data: Bytes,
}

/// The body of [`WRITE`]. The elements apply atomically: all, or none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The handle from the open.
    pub handle: u64,
    /// The elements, in order.
    pub elements: Vec<WriteElement>,
}

/// The body of [`SECTION_OVERWRITE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionOverwrite {
    /// The handle from the open.
    pub handle: u64,
    /// The section.
    pub section_id: Bytes,
    /// Its new whole contents.
    pub data: Bytes,
}

/// One element of a [`Read`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadElement {
    /// The section.
    pub section_id: Bytes,
    /// Where in the section.
    pub offset: u64,
    /// At most this many bytes (`dataSize`).
    pub size: u64,
}

/// The body of [`READ`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    /// The handle from the open.
    pub handle: u64,
    /// The elements, in order.
    pub elements: Vec<ReadElement>,
}

/// The response to [`READ`]: per element, the bytes read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadReply {
    /// One entry per element, in order.
    pub data: Vec<Bytes>,
}

/// The error body of [`WRITE`] and [`READ`] when one element is at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErroneousIndex {
    /// `erroneousVectorIndex`.
    pub index: u32,
}

/// The body of [`SYNCHRONIZE_ASYNC`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynchronizeAsync {
    /// The handle from the open.
    pub handle: u64,
    /// Echoed in the [`CB_SYNCHRONIZE`] callback.
    pub invocation: u64,
}

/// The body of a [`CB_SYNCHRONIZE`] callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynchronizeCallback {
    /// The invocation of the request.
    pub invocation: u64,
    /// The outcome.
    pub status: Status,
}

/// The response to [`STORE_STATUS`]: what this node's replica holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreStatus {
    /// This node.
    pub node_id: u32,
    /// Whether the CKPT sync of the current configuration finished here.
    pub synced: bool,
    /// Checkpoints in the store (unlinked ones included).
    pub checkpoints: u32,
    /// Sections over all checkpoints.
    pub sections: u64,
    /// Data bytes over all sections.
    pub data_bytes: u64,
    /// Bytes this node holds (valid section data and ids).
    pub local_bytes: u64,
    /// This node's memory limit for checkpoint data.
    pub memory_limit_bytes: u64,
    /// CRC-32 over the canonical encoding of the replicated store: equal
    /// on every node whose replica is identical.
    pub digest: u32,
}

/// A checkpoint's identity in the cluster: where its creation was ordered
/// (the ring, and the position of the open in that ring's CKPT messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckpointKey {
    /// The ring's sequence number.
    pub ring_seq: u64,
    /// The ring's representative.
    pub ring_rep: u32,
    /// The position of the creating open in that ring.
    pub index: u64,
}

/// The body of [`LIST`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct List {
    /// List the checkpoints after this one (in key order); `None` from the
    /// start.
    pub after: Option<CheckpointKey>,
}

/// One checkpoint in a [`ListReply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// Its identity.
    pub key: CheckpointKey,
    /// Its name.
    pub name: Bytes,
    /// Whether the name still refers to it (false once unlinked).
    pub linked: bool,
    /// Its creation attributes (with the current retention duration).
    pub attributes: CreationAttributes,
    /// Sections now.
    pub sections: u32,
    /// Data bytes over all sections.
    pub data_bytes: u64,
    /// Opens over the cluster.
    pub openers: u32,
    /// The node holding the active replica, 0 when none.
    pub active_replica: u32,
    /// Milliseconds until retention deletes it, if it is closed by all and
    /// its retention is running on this node.
    pub retention_left_ms: Option<u64>,
}

/// The response to [`LIST`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListReply {
    /// At most [`MAX_LIST_ENTRIES`] checkpoints, in key order.
    pub entries: Vec<CheckpointInfo>,
    /// Whether more follow the last entry.
    pub more: bool,
}

// ----- encoding helpers --------------------------------------------------

/// Bytes of an encoded [`CreationAttributes`].
const ATTRIBUTES_BYTES: usize = 4 + 8 + 8 + 4 + 8 + 8;

fn get_name(dec: &mut Decoder<'_>) -> Result<Bytes, DecodeError> {
    Ok(Bytes::copy_from_slice(
        dec.get_len_prefixed("checkpoint name", MAX_NAME_BYTES)?,
    ))
}

fn get_section_id(dec: &mut Decoder<'_>) -> Result<Bytes, DecodeError> {
    Ok(Bytes::copy_from_slice(
        dec.get_len_prefixed("section id", MAX_SECTION_ID_BYTES)?,
    ))
}

fn get_data(dec: &mut Decoder<'_>) -> Result<Bytes, DecodeError> {
    Ok(Bytes::copy_from_slice(
        dec.get_len_prefixed("data", MAX_DATA_BYTES)?,
    ))
}

impl CreationAttributes {
    /// Appends the attributes to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u32(self.creation_flags)
            .put_u64(self.checkpoint_size)
            .put_i64(self.retention_duration_ns)
            .put_u32(self.max_sections)
            .put_u64(self.max_section_size)
            .put_u64(self.max_section_id_size);
    }

    /// Reads attributes from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] when truncated.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<CreationAttributes, DecodeError> {
        Ok(CreationAttributes {
            creation_flags: dec.get_u32()?,
            checkpoint_size: dec.get_u64()?,
            retention_duration_ns: dec.get_i64()?,
            max_sections: dec.get_u32()?,
            max_section_size: dec.get_u64()?,
            max_section_id_size: dec.get_u64()?,
        })
    }

    /// All zero (the attributes field of a failed [`OpenCallback`]).
    pub const ZERO: CreationAttributes = CreationAttributes {
        creation_flags: 0,
        checkpoint_size: 0,
        retention_duration_ns: 0,
        max_sections: 0,
        max_section_size: 0,
        max_section_id_size: 0,
    };
}

impl CheckpointKey {
    /// Appends the key to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.ring_seq)
            .put_u32(self.ring_rep)
            .put_u64(self.index);
    }

    /// Reads a key from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] when truncated.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<CheckpointKey, DecodeError> {
        Ok(CheckpointKey {
            ring_seq: dec.get_u64()?,
            ring_rep: dec.get_u32()?,
            index: dec.get_u64()?,
        })
    }
}

/// Implements `encode` / `decode` of a whole body from `encode_into` /
/// `decode_from`.
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

impl Open {
    /// Appends the request to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_len_prefixed(&self.name);
        match &self.attributes {
            Some(a) => {
                enc.put_bool(true);
                a.encode_into(enc);
            }
            None => {
                enc.put_bool(false);
            }
        }
        enc.put_u32(self.open_flags);
    }

    /// Reads the request from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<Open, DecodeError> {
        let name = get_name(dec)?;
        let attributes = if dec.get_bool("attributes present")? {
            Some(CreationAttributes::decode_from(dec)?)
        } else {
            None
        };
        Ok(Open {
            name,
            attributes,
            open_flags: dec.get_u32()?,
        })
    }
}
whole_body!(Open);

impl OpenAsync {
    /// Appends the request to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.invocation);
        self.open.encode_into(enc);
    }

    /// Reads the request from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<OpenAsync, DecodeError> {
        Ok(OpenAsync {
            invocation: dec.get_u64()?,
            open: Open::decode_from(dec)?,
        })
    }
}
whole_body!(OpenAsync);

impl OpenReply {
    /// Appends the reply to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.handle);
        self.attributes.encode_into(enc);
    }

    /// Reads the reply from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<OpenReply, DecodeError> {
        Ok(OpenReply {
            handle: dec.get_u64()?,
            attributes: CreationAttributes::decode_from(dec)?,
        })
    }
}
whole_body!(OpenReply);

impl OpenCallback {
    /// Appends the callback to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.invocation)
            .put_u32(status_code(self.status))
            .put_u64(self.handle);
        self.attributes.encode_into(enc);
    }

    /// Reads the callback from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input or an unknown status.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<OpenCallback, DecodeError> {
        Ok(OpenCallback {
            invocation: dec.get_u64()?,
            status: dec.get_status()?,
            handle: dec.get_u64()?,
            attributes: CreationAttributes::decode_from(dec)?,
        })
    }
}
whole_body!(OpenCallback);

impl HandleRequest {
    /// Appends the request to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.handle);
    }

    /// Reads the request from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] when truncated.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<HandleRequest, DecodeError> {
        Ok(HandleRequest {
            handle: dec.get_u64()?,
        })
    }
}
whole_body!(HandleRequest);

impl Unlink {
    /// Appends the request to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_len_prefixed(&self.name);
    }

    /// Reads the request from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<Unlink, DecodeError> {
        Ok(Unlink {
            name: get_name(dec)?,
        })
    }
}
whole_body!(Unlink);

impl RetentionDurationSet {
    /// Appends the request to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.handle).put_i64(self.retention_duration_ns);
    }

    /// Reads the request from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] when truncated.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<RetentionDurationSet, DecodeError> {
        Ok(RetentionDurationSet {
            handle: dec.get_u64()?,
            retention_duration_ns: dec.get_i64()?,
        })
    }
}
whole_body!(RetentionDurationSet);

impl CheckpointStatus {
    /// Appends the reply to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        self.attributes.encode_into(enc);
        enc.put_u32(self.number_of_sections)
            .put_u64(self.memory_used);
    }

    /// Reads the reply from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] when truncated.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<CheckpointStatus, DecodeError> {
        Ok(CheckpointStatus {
            attributes: CreationAttributes::decode_from(dec)?,
            number_of_sections: dec.get_u32()?,
            memory_used: dec.get_u64()?,
        })
    }
}
whole_body!(CheckpointStatus);

impl SectionCreate {
    /// Appends the request to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.handle)
            .put_len_prefixed(&self.section_id)
            .put_i64(self.expiration_time_ns)
            .put_len_prefixed(&self.initial_data);
    }

    /// Reads the request from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input or over-long fields.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<SectionCreate, DecodeError> {
        Ok(SectionCreate {
            handle: dec.get_u64()?,
            section_id: get_section_id(dec)?,
            expiration_time_ns: dec.get_i64()?,
            initial_data: get_data(dec)?,
        })
    }
}
whole_body!(SectionCreate);

impl SectionCreateReply {
    /// Appends the reply to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_len_prefixed(&self.section_id);
    }

    /// Reads the reply from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<SectionCreateReply, DecodeError> {
        Ok(SectionCreateReply {
            section_id: get_section_id(dec)?,
        })
    }
}
whole_body!(SectionCreateReply);

impl SectionDelete {
    /// Appends the request to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.handle).put_len_prefixed(&self.section_id);
    }

    /// Reads the request from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<SectionDelete, DecodeError> {
        Ok(SectionDelete {
            handle: dec.get_u64()?,
            section_id: get_section_id(dec)?,
        })
    }
}
whole_body!(SectionDelete);

impl SectionExpirationTimeSet {
    /// Appends the request to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.handle)
            .put_len_prefixed(&self.section_id)
            .put_i64(self.expiration_time_ns);
    }

    /// Reads the request from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<SectionExpirationTimeSet, DecodeError> {
        Ok(SectionExpirationTimeSet {
            handle: dec.get_u64()?,
            section_id: get_section_id(dec)?,
            expiration_time_ns: dec.get_i64()?,
        })
    }
}
whole_body!(SectionExpirationTimeSet);

impl IterationInitialize {
    /// Appends the request to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.handle)
            .put_u32(self.sections_chosen as u32)
            .put_i64(self.expiration_time_ns);
    }

    /// Reads the request from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input or an unknown `sectionsChosen`.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<IterationInitialize, DecodeError> {
        let handle = dec.get_u64()?;
        let code = dec.get_u32()?;
        let sections_chosen = SectionsChosen::from_code(code).ok_or(DecodeError::BadValue {
            what: "sections chosen",
            value: code.into(),
        })?;
        Ok(IterationInitialize {
            handle,
            sections_chosen,
            expiration_time_ns: dec.get_i64()?,
        })
    }
}
whole_body!(IterationInitialize);

impl IterationReply {
    /// Appends the reply to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.iteration)
            .put_u64(self.max_section_id_size);
    }

    /// Reads the reply from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] when truncated.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<IterationReply, DecodeError> {
        Ok(IterationReply {
            iteration: dec.get_u64()?,
            max_section_id_size: dec.get_u64()?,
        })
    }
}
whole_body!(IterationReply);

impl IterationRequest {
    /// Appends the request to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.iteration);
    }

    /// Reads the request from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] when truncated.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<IterationRequest, DecodeError> {
        Ok(IterationRequest {
            iteration: dec.get_u64()?,
        })
    }
}
whole_body!(IterationRequest);

impl SectionDescriptor {
    /// Appends the descriptor to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_len_prefixed(&self.section_id)
            .put_i64(self.expiration_time_ns)
            .put_u64(self.section_size)
            .put_u32(self.state as u32)
            .put_i64(self.last_update_ns);
    }

    /// Reads a descriptor from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input or an unknown state.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<SectionDescriptor, DecodeError> {
        Ok(SectionDescriptor {
            section_id: get_section_id(dec)?,
            expiration_time_ns: dec.get_i64()?,
            section_size: dec.get_u64()?,
            state: SectionState::from_code(dec.get_u32()?)?,
            last_update_ns: dec.get_i64()?,
        })
    }
}
whole_body!(SectionDescriptor);

impl WriteElement {
    /// Appends the element to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_len_prefixed(&self.section_id)
            .put_u64(self.offset)
            .put_len_prefixed(&self.data);
    }

    /// Reads an element from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input or over-long fields.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<WriteElement, DecodeError> {
        Ok(WriteElement {
            section_id: get_section_id(dec)?,
            offset: dec.get_u64()?,
            data: get_data(dec)?,
        })
    }
}

/// Smallest encoding of a [`WriteElement`].
const MIN_WRITE_ELEMENT_BYTES: usize = LEN_BYTES + 8 + LEN_BYTES;

impl Write {
    /// Appends the request to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.handle).put_count(self.elements.len());
        for e in &self.elements {
            e.encode_into(enc);
        }
    }

    /// Reads the request from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input or more than [`MAX_IO_ELEMENTS`]
    /// elements.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<Write, DecodeError> {
        let handle = dec.get_u64()?;
        let n = dec.get_count("write elements", MAX_IO_ELEMENTS, MIN_WRITE_ELEMENT_BYTES)?;
        let mut elements = Vec::with_capacity(n);
        for _ in 0..n {
            elements.push(WriteElement::decode_from(dec)?);
        }
        Ok(Write { handle, elements })
    }
}
whole_body!(Write);

impl SectionOverwrite {
    /// Appends the request to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.handle)
            .put_len_prefixed(&self.section_id)
            .put_len_prefixed(&self.data);
    }

    /// Reads the request from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input or over-long fields.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<SectionOverwrite, DecodeError> {
        Ok(SectionOverwrite {
            handle: dec.get_u64()?,
            section_id: get_section_id(dec)?,
            data: get_data(dec)?,
        })
    }
}
whole_body!(SectionOverwrite);

impl ReadElement {
    /// Appends the element to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_len_prefixed(&self.section_id)
            .put_u64(self.offset)
            .put_u64(self.size);
    }

    /// Reads an element from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<ReadElement, DecodeError> {
        Ok(ReadElement {
            section_id: get_section_id(dec)?,
            offset: dec.get_u64()?,
            size: dec.get_u64()?,
        })
    }
}

/// Smallest encoding of a [`ReadElement`].
const MIN_READ_ELEMENT_BYTES: usize = LEN_BYTES + 8 + 8;

impl Read {
    /// Appends the request to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.handle).put_count(self.elements.len());
        for e in &self.elements {
            e.encode_into(enc);
        }
    }

    /// Reads the request from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input or more than [`MAX_IO_ELEMENTS`]
    /// elements.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<Read, DecodeError> {
        let handle = dec.get_u64()?;
        let n = dec.get_count("read elements", MAX_IO_ELEMENTS, MIN_READ_ELEMENT_BYTES)?;
        let mut elements = Vec::with_capacity(n);
        for _ in 0..n {
            elements.push(ReadElement::decode_from(dec)?);
        }
        Ok(Read { handle, elements })
    }
}
whole_body!(Read);

impl ReadReply {
    /// Appends the reply to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_count(self.data.len());
        for d in &self.data {
            enc.put_len_prefixed(d);
        }
    }

    /// Reads the reply from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<ReadReply, DecodeError> {
        let n = dec.get_count("read elements", MAX_IO_ELEMENTS, LEN_BYTES)?;
        let mut data = Vec::with_capacity(n);
        for _ in 0..n {
            data.push(get_data(dec)?);
        }
        Ok(ReadReply { data })
    }
}
whole_body!(ReadReply);

impl ErroneousIndex {
    /// Appends the index to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u32(self.index);
    }

    /// Reads the index from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] when truncated.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<ErroneousIndex, DecodeError> {
        Ok(ErroneousIndex {
            index: dec.get_u32()?,
        })
    }
}
whole_body!(ErroneousIndex);

impl SynchronizeAsync {
    /// Appends the request to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.handle).put_u64(self.invocation);
    }

    /// Reads the request from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] when truncated.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<SynchronizeAsync, DecodeError> {
        Ok(SynchronizeAsync {
            handle: dec.get_u64()?,
            invocation: dec.get_u64()?,
        })
    }
}
whole_body!(SynchronizeAsync);

impl SynchronizeCallback {
    /// Appends the callback to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u64(self.invocation)
            .put_u32(status_code(self.status));
    }

    /// Reads the callback from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input or an unknown status.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<SynchronizeCallback, DecodeError> {
        Ok(SynchronizeCallback {
            invocation: dec.get_u64()?,
            status: dec.get_status()?,
        })
    }
}
whole_body!(SynchronizeCallback);

impl StoreStatus {
    /// Appends the status to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        enc.put_u32(self.node_id)
            .put_bool(self.synced)
            .put_u32(self.checkpoints)
            .put_u64(self.sections)
            .put_u64(self.data_bytes)
            .put_u64(self.local_bytes)
            .put_u64(self.memory_limit_bytes)
            .put_u32(self.digest);
    }

    /// Reads the status from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<StoreStatus, DecodeError> {
        Ok(StoreStatus {
            node_id: dec.get_u32()?,
            synced: dec.get_bool("synced")?,
            checkpoints: dec.get_u32()?,
            sections: dec.get_u64()?,
            data_bytes: dec.get_u64()?,
            local_bytes: dec.get_u64()?,
            memory_limit_bytes: dec.get_u64()?,
            digest: dec.get_u32()?,
        })
    }
}
whole_body!(StoreStatus);

impl List {
    /// Appends the request to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        match &self.after {
            Some(k) => {
                enc.put_bool(true);
                k.encode_into(enc);
            }
            None => {
                enc.put_bool(false);
            }
        }
    }

    /// Reads the request from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<List, DecodeError> {
        let after = if dec.get_bool("cursor present")? {
            Some(CheckpointKey::decode_from(dec)?)
        } else {
            None
        };
        Ok(List { after })
    }
}
whole_body!(List);

/// Smallest encoding of a [`CheckpointInfo`].
const MIN_INFO_BYTES: usize = 20 + LEN_BYTES + 1 + ATTRIBUTES_BYTES + 4 + 8 + 4 + 4 + 1;

impl CheckpointInfo {
    /// Appends the entry to `enc`.
    pub fn encode_into(&self, enc: &mut Encoder) {
        self.key.encode_into(enc);
        enc.put_len_prefixed(&self.name).put_bool(self.linked);
        self.attributes.encode_into(enc);
        enc.put_u32(self.sections)
            .put_u64(self.data_bytes)
            .put_u32(self.openers)
            .put_u32(self.active_replica);
        match self.retention_left_ms {
            Some(ms) => enc.put_bool(true).put_u64(ms),
            None => enc.put_bool(false),
        };
    }

    /// Reads an entry from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<CheckpointInfo, DecodeError> {
        Ok(CheckpointInfo {
            key: CheckpointKey::decode_from(dec)?,
            name: get_name(dec)?,
            linked: dec.get_bool("linked")?,
            attributes: CreationAttributes::decode_from(dec)?,
            sections: dec.get_u32()?,
            data_bytes: dec.get_u64()?,
            openers: dec.get_u32()?,
            active_replica: dec.get_u32()?,
            retention_left_ms: if dec.get_bool("retention running")? {
                Some(dec.get_u64()?)
            } else {
                None
            },
        })
    }
}

impl ListReply {
    /// Appends the reply to `enc` (at most [`MAX_LIST_ENTRIES`] entries:
    /// more are cut, the decoder would refuse them).
    pub fn encode_into(&self, enc: &mut Encoder) {
        let entries = &self.entries[..self.entries.len().min(MAX_LIST_ENTRIES)];
        enc.put_count(entries.len());
        for e in entries {
            e.encode_into(enc);
        }
        enc.put_bool(self.more);
    }

    /// Reads the reply from `dec`.
    ///
    /// # Errors
    /// [`DecodeError`] on malformed input or too many entries.
    pub fn decode_from(dec: &mut Decoder<'_>) -> Result<ListReply, DecodeError> {
        let n = dec.get_count("checkpoints", MAX_LIST_ENTRIES, MIN_INFO_BYTES)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            entries.push(CheckpointInfo::decode_from(dec)?);
        }
        Ok(ListReply {
            entries,
            more: dec.get_bool("more")?,
        })
    }
}
whole_body!(ListReply);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AisError;
    use proptest::prelude::*;

    fn attrs() -> CreationAttributes {
        CreationAttributes {
            creation_flags: WR_ACTIVE_REPLICA | CHECKPOINT_COLLOCATED,
            checkpoint_size: 100_000,
            retention_duration_ns: 5_000_000_000,
            max_sections: 5,
            max_section_size: 20_000,
            max_section_id_size: 10,
        }
    }

    #[test]
    fn every_message_round_trips() {
        let open = Open {
            name: Bytes::from_static(b"checkpoint"),
            attributes: Some(attrs()),
            open_flags: OPEN_READ | OPEN_WRITE | OPEN_CREATE,
        };
        assert_eq!(Open::decode(&open.encode()), Ok(open.clone()));
        let plain = Open {
            attributes: None,
            ..open.clone()
        };
        assert_eq!(Open::decode(&plain.encode()), Ok(plain));
        let oa = OpenAsync {
            invocation: 77,
            open,
        };
        assert_eq!(OpenAsync::decode(&oa.encode()), Ok(oa));
        let r = OpenReply {
            handle: 9,
            attributes: attrs(),
        };
        assert_eq!(OpenReply::decode(&r.encode()), Ok(r));
        let cb = OpenCallback {
            invocation: 1,
            status: Err(AisError::Exist),
            handle: 0,
            attributes: CreationAttributes::ZERO,
        };
        assert_eq!(OpenCallback::decode(&cb.encode()), Ok(cb));
        let h = HandleRequest { handle: 3 };
        assert_eq!(HandleRequest::decode(&h.encode()), Ok(h));
        let u = Unlink {
            name: Bytes::from_static(b"n"),
        };
        assert_eq!(Unlink::decode(&u.encode()), Ok(u));
        let rs = RetentionDurationSet {
            handle: 3,
            retention_duration_ns: -1,
        };
        assert_eq!(RetentionDurationSet::decode(&rs.encode()), Ok(rs));
        let st = CheckpointStatus {
            attributes: attrs(),
            number_of_sections: 2,
            memory_used: 1 << 33,
        };
        assert_eq!(CheckpointStatus::decode(&st.encode()), Ok(st));
        let sc = SectionCreate {
            handle: 1,
            section_id: Bytes::from_static(b"s1"),
            expiration_time_ns: TIME_END,
            initial_data: Bytes::from_static(b"data"),
        };
        assert_eq!(SectionCreate::decode(&sc.encode()), Ok(sc));
        let scr = SectionCreateReply {
            section_id: Bytes::from_static(b"7"),
        };
        assert_eq!(SectionCreateReply::decode(&scr.encode()), Ok(scr));
        let sd = SectionDelete {
            handle: 1,
            section_id: Bytes::new(),
        };
        assert_eq!(SectionDelete::decode(&sd.encode()), Ok(sd));
        let se = SectionExpirationTimeSet {
            handle: 1,
            section_id: Bytes::from_static(b"x"),
            expiration_time_ns: 12,
        };
        assert_eq!(SectionExpirationTimeSet::decode(&se.encode()), Ok(se));
        let ii = IterationInitialize {
            handle: 1,
            sections_chosen: SectionsChosen::GeqExpirationTime,
            expiration_time_ns: 5,
        };
        assert_eq!(IterationInitialize::decode(&ii.encode()), Ok(ii));
        let ir = IterationReply {
            iteration: 4,
            max_section_id_size: 10,
        };
        assert_eq!(IterationReply::decode(&ir.encode()), Ok(ir));
        let it = IterationRequest { iteration: 4 };
        assert_eq!(IterationRequest::decode(&it.encode()), Ok(it));
        let d = SectionDescriptor {
            section_id: Bytes::from_static(b"s"),
            expiration_time_ns: TIME_END,
            section_size: 10,
            state: SectionState::Corrupted,
            last_update_ns: 99,
        };
        assert_eq!(SectionDescriptor::decode(&d.encode()), Ok(d));
        let w = Write {
            handle: 2,
            elements: vec![
                WriteElement {
                    section_id: Bytes::from_static(b"a"),
                    offset: 0,
                    data: Bytes::from_static(b"xyz"),
                },
                WriteElement {
                    section_id: Bytes::new(),
                    offset: 10,
                    data: Bytes::from(vec![1; 1000]),
                },
            ],
        };
        assert_eq!(Write::decode(&w.encode()), Ok(w));
        let o = SectionOverwrite {
            handle: 2,
            section_id: Bytes::from_static(b"a"),
            data: Bytes::from_static(b"new"),
        };
        assert_eq!(SectionOverwrite::decode(&o.encode()), Ok(o));
        let rd = Read {
            handle: 2,
            elements: vec![ReadElement {
                section_id: Bytes::from_static(b"a"),
                offset: 1,
                size: 2,
            }],
        };
        assert_eq!(Read::decode(&rd.encode()), Ok(rd));
        let rr = ReadReply {
            data: vec![Bytes::from_static(b"yz"), Bytes::new()],
        };
        assert_eq!(ReadReply::decode(&rr.encode()), Ok(rr));
        let ei = ErroneousIndex { index: 3 };
        assert_eq!(ErroneousIndex::decode(&ei.encode()), Ok(ei));
        let sa = SynchronizeAsync {
            handle: 2,
            invocation: 8,
        };
        assert_eq!(SynchronizeAsync::decode(&sa.encode()), Ok(sa));
        let scb = SynchronizeCallback {
            invocation: 8,
            status: Ok(()),
        };
        assert_eq!(SynchronizeCallback::decode(&scb.encode()), Ok(scb));
        let ss = StoreStatus {
            node_id: 2,
            synced: true,
            checkpoints: 3,
            sections: 4,
            data_bytes: 5,
            local_bytes: 6,
            memory_limit_bytes: 7,
            digest: 0xdead_beef,
        };
        assert_eq!(StoreStatus::decode(&ss.encode()), Ok(ss));
        let key = CheckpointKey {
            ring_seq: 8,
            ring_rep: 1,
            index: 3,
        };
        let l = List { after: Some(key) };
        assert_eq!(List::decode(&l.encode()), Ok(l));
        let lr = ListReply {
            entries: vec![CheckpointInfo {
                key,
                name: Bytes::from_static(b"c"),
                linked: false,
                attributes: attrs(),
                sections: 1,
                data_bytes: 2,
                openers: 3,
                active_replica: 2,
                retention_left_ms: Some(500),
            }],
            more: true,
        };
        assert_eq!(ListReply::decode(&lr.encode()), Ok(lr));
    }

    #[test]
    fn limits_and_bad_values_are_refused() {
        let long = Open {
            name: Bytes::from(vec![b'n'; MAX_NAME_BYTES + 1]),
            attributes: None,
            open_flags: OPEN_READ,
        };
        assert!(matches!(
            Open::decode(&long.encode()),
            Err(DecodeError::TooLong { .. })
        ));
        let id = SectionDelete {
            handle: 1,
            section_id: Bytes::from(vec![0; MAX_SECTION_ID_BYTES + 1]),
        };
        assert!(SectionDelete::decode(&id.encode()).is_err());
        let w = Write {
            handle: 1,
            elements: vec![
                WriteElement {
                    section_id: Bytes::new(),
                    offset: 0,
                    data: Bytes::from_static(b"x"),
                };
                MAX_IO_ELEMENTS + 1
            ],
        };
        assert!(Write::decode(&w.encode()).is_err());
        let mut ii = IterationInitialize {
            handle: 1,
            sections_chosen: SectionsChosen::Any,
            expiration_time_ns: 0,
        }
        .encode()
        .to_vec();
        ii[8] = 6;
        assert!(IterationInitialize::decode(&ii).is_err(), "no chosen 6");
        let mut d = SectionDescriptor {
            section_id: Bytes::new(),
            expiration_time_ns: 0,
            section_size: 0,
            state: SectionState::Valid,
            last_update_ns: 0,
        }
        .encode()
        .to_vec();
        d[4 + 16] = 3;
        assert!(SectionDescriptor::decode(&d).is_err(), "no state 3");
        let mut h = HandleRequest { handle: 1 }.encode().to_vec();
        h.push(0);
        assert_eq!(
            HandleRequest::decode(&h),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Open::decode(&bytes);
            let _ = OpenAsync::decode(&bytes);
            let _ = OpenReply::decode(&bytes);
            let _ = OpenCallback::decode(&bytes);
            let _ = HandleRequest::decode(&bytes);
            let _ = Unlink::decode(&bytes);
            let _ = RetentionDurationSet::decode(&bytes);
            let _ = CheckpointStatus::decode(&bytes);
            let _ = SectionCreate::decode(&bytes);
            let _ = SectionCreateReply::decode(&bytes);
            let _ = SectionDelete::decode(&bytes);
            let _ = SectionExpirationTimeSet::decode(&bytes);
            let _ = IterationInitialize::decode(&bytes);
            let _ = IterationReply::decode(&bytes);
            let _ = IterationRequest::decode(&bytes);
            let _ = SectionDescriptor::decode(&bytes);
            let _ = Write::decode(&bytes);
            let _ = SectionOverwrite::decode(&bytes);
            let _ = Read::decode(&bytes);
            let _ = ReadReply::decode(&bytes);
            let _ = ErroneousIndex::decode(&bytes);
            let _ = SynchronizeAsync::decode(&bytes);
            let _ = SynchronizeCallback::decode(&bytes);
            let _ = StoreStatus::decode(&bytes);
            let _ = List::decode(&bytes);
            let _ = ListReply::decode(&bytes);
        }
    }
}
