//! The CKPT service for Rust callers: one [`Ckpt`] per library handle.
//!
//! A [`Ckpt`] wraps a [`Connection`] to the local executive's CKPT engine
//! and speaks [`proto::ckpt`]: each call is one request and its response
//! (a write or read vector larger than one request may carry is several,
//! see below); asynchronous opens and synchronizations come back as
//! [`CkptCallback`]s taken with [`Ckpt::next_callback`]. The C functions
//! of `saCkpt.h` (in `ffi::ckpt`) are this type plus pointer checks,
//! handle tables and struct conversion.
//!
//! # What the library decides
//! The executive re-checks everything; the library checks first what it
//! can answer without it, as openais's library did:
//! - open flags outside READ|WRITE|CREATE: `SA_AIS_ERR_BAD_FLAGS`; CREATE
//!   without creation attributes, or attributes without CREATE, or a name
//!   of 0 or more than 256 bytes: `SA_AIS_ERR_INVALID_PARAM`;
//! - a call that needs an access the checkpoint was not opened with
//!   (section create, delete, expiration set, write, overwrite, active
//!   replica set, synchronize: WRITE; read: READ): `SA_AIS_ERR_ACCESS`;
//! - a synchronize with a zero timeout: `SA_AIS_ERR_TIMEOUT`;
//! - a section id longer than [`MAX_SECTION_ID_BYTES`], data longer than
//!   [`MAX_DATA_BYTES`], an empty write element, or an element reaching
//!   past `maxSectionSize`: `SA_AIS_ERR_INVALID_PARAM` (with the element's
//!   index for vectors), before anything is sent;
//! - more than [`MAX_VECTOR_ELEMENTS`] elements in one vector:
//!   `SA_AIS_ERR_INVALID_PARAM`.
//!
//! # Vectors larger than one request
//! One request carries at most [`MAX_IO_ELEMENTS`] elements and
//! [`MAX_DATA_BYTES`] of data (written, or asked to be read). A larger
//! vector is sent as consecutive requests, each a run of whole elements;
//! the executive applies each request atomically, so a write that fails in
//! its second request leaves the first applied (the specification allows
//! a failed write to have written some elements). The erroneous index is
//! the element's index in the caller's vector. A vector that fits one
//! request (the usual case) is applied all or nothing.
//!
//! # Timeouts
//! Calls wait as long as the [`ClientConfig`]'s timeout (5 s by default).
//! [`Ckpt::open`] and [`Ckpt::synchronize`] take the caller's timeout
//! instead, at most [`MAX_CALL_TIMEOUT`]; a call that times out may still
//! take effect (an open then holds the checkpoint until the connection
//! closes).

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use bytes::Bytes;
use proto::ckpt::{
    CheckpointStatus, CreationAttributes, ErroneousIndex, HandleRequest, IterationInitialize,
    IterationReply, IterationRequest, List, ListReply, Open, OpenAsync, OpenCallback, OpenReply,
    Read, ReadReply, RetentionDurationSet, SectionCreate, SectionCreateReply, SectionDelete,
    SectionDescriptor, SectionExpirationTimeSet, SectionOverwrite, SectionsChosen, StoreStatus,
    SynchronizeAsync, SynchronizeCallback, Unlink, Write, ACTIVE_REPLICA_SET, CB_OPEN,
    CB_SYNCHRONIZE, CLOSE, ITERATION_FINALIZE, ITERATION_INITIALIZE, ITERATION_NEXT, LIST,
    MAX_DATA_BYTES, MAX_IO_ELEMENTS, MAX_NAME_BYTES, MAX_SECTION_ID_BYTES, OPEN, OPEN_ASYNC,
    OPEN_CREATE, OPEN_READ, OPEN_WRITE, READ, RETENTION_DURATION_SET, SECTION_CREATE,
    SECTION_DELETE, SECTION_EXPIRATION_TIME_SET, SECTION_OVERWRITE, STATUS_GET, STORE_STATUS,
    SYNCHRONIZE, SYNCHRONIZE_ASYNC, UNLINK, WRITE,
};
use proto::{AisError, ServiceId, Status, MAX_BODY_BYTES};
use thiserror::Error;

use crate::client::{ClientConfig, Connection, Reply};

/// The longest a single call waits, whatever timeout the caller asked for
/// (`SA_TIME_END` means "forever" in the spec; a blocked call holds its
/// handle, so it is bounded).
pub const MAX_CALL_TIMEOUT: Duration = Duration::from_secs(3600);

/// Most elements in one write or read vector (the library splits it into
/// requests of at most [`MAX_IO_ELEMENTS`]).
pub const MAX_VECTOR_ELEMENTS: usize = 65_536;

/// Most asynchronous opens waiting for their callback on one connection
/// (`SA_AIS_ERR_NO_RESOURCES` beyond; the executive holds at most as many
/// open handles per connection).
pub const MAX_PENDING_ASYNC_OPENS: usize = 1024;

/// Bytes of a request's fixed part before its elements (handle, count).
const VECTOR_HEADER_BYTES: usize = 8 + 4;

/// An open checkpoint: the executive's handle, the flags it was opened
/// with, and its creation attributes (from the executive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The executive's handle for this open.
    pub handle: u64,
    /// `SA_CKPT_CHECKPOINT_READ | WRITE | CREATE` as given to the open.
    pub open_flags: u32,
    /// The checkpoint's creation attributes.
    pub attributes: CreationAttributes,
}

/// A failed write or read: the error and, when one element is at fault,
/// its index in the caller's vector (`erroneousVectorIndex`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("{error} (element {index:?})")]
pub struct IoError {
    /// What went wrong.
    pub error: AisError,
    /// The element at fault, if one is.
    pub index: Option<u32>,
}

impl From<AisError> for IoError {
    fn from(error: AisError) -> IoError {
        IoError { error, index: None }
    }
}

/// One element of a [`Ckpt::write`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteElement<'a> {
    /// The section (empty: the default section).
    pub section_id: &'a [u8],
    /// Where in the section.
    pub offset: u64,
    /// The bytes (at least one).
    pub data: &'a [u8],
}

/// One element of a [`Ckpt::read`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadElement<'a> {
    /// The section (empty: the default section).
    pub section_id: &'a [u8],
    /// Where in the section.
    pub offset: u64,
    /// At most this many bytes; `None`: up to the section's end.
    pub size: Option<u64>,
}

/// A callback from the CKPT engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CkptCallback {
    /// The outcome of [`Ckpt::open_async`] (`saCkptCheckpointOpenCallback`).
    Open {
        /// The invocation given to the open.
        invocation: u64,
        /// The open checkpoint, or why it could not be opened.
        result: Result<Checkpoint, AisError>,
    },
    /// The outcome of [`Ckpt::synchronize_async`]
    /// (`saCkptCheckpointSynchronizeCallback`).
    Synchronize {
        /// The invocation given to the synchronize.
        invocation: u64,
        /// The outcome.
        status: Status,
    },
}

/// A connection to the CKPT service.
#[derive(Debug)]
pub struct Ckpt {
    conn: Connection,
    /// Open flags of asynchronous opens whose callback has not come, by
    /// invocation (in request order: invocations may repeat).
    async_opens: BTreeMap<u64, VecDeque<u32>>,
    async_open_count: usize,
}

impl Ckpt {
    /// Connects to the CKPT service of the executive at
    /// [`crate::client::socket_path`].
    ///
    /// # Errors
    /// As [`Connection::connect`]: `SA_AIS_ERR_TRY_AGAIN` when the executive
    /// is not running, ACCESS, VERSION, NOT_SUPPORTED, NO_RESOURCES,
    /// TIMEOUT, LIBRARY.
    pub fn connect() -> Result<Ckpt, AisError> {
        Ckpt::connect_with(&ClientConfig::default())
    }

    /// As [`Ckpt::connect`], with `config`.
    ///
    /// # Errors
    /// As [`Ckpt::connect`].
    pub fn connect_with(config: &ClientConfig) -> Result<Ckpt, AisError> {
        let conn = Connection::connect_with(config, ServiceId::Ckpt, proto::ckpt::VERSION)?;
        Ok(Ckpt {
            conn,
            async_opens: BTreeMap::new(),
            async_open_count: 0,
        })
    }

    /// The selection object: readable when a callback may be waiting.
    pub fn selection(&self) -> BorrowedFd<'_> {
        self.conn.as_fd()
    }

    /// Opens checkpoint `name` with `open_flags`, creating it with
    /// `attributes` if `SA_CKPT_CHECKPOINT_CREATE` is set and it does not
    /// exist. Waits at most `timeout` (`None`: the connection's timeout;
    /// at most [`MAX_CALL_TIMEOUT`]).
    ///
    /// # Errors
    /// See the module docs for the library's checks; from the executive:
    /// `SA_AIS_ERR_NOT_EXIST` (no such checkpoint, no CREATE),
    /// `SA_AIS_ERR_EXIST` (it exists with other attributes),
    /// `SA_AIS_ERR_INVALID_PARAM` (bad attributes), NO_RESOURCES,
    /// TRY_AGAIN; the connection's errors.
    pub fn open(
        &mut self,
        name: &[u8],
        attributes: Option<CreationAttributes>,
        open_flags: u32,
        timeout: Option<Duration>,
    ) -> Result<Checkpoint, AisError> {
        let open = open_request(name, attributes, open_flags)?;
        let reply = self.request_within(OPEN, &open.encode(), timeout)?;
        let r = OpenReply::decode(&reply.into_result()?).map_err(|_| AisError::Library)?;
        Ok(Checkpoint {
            handle: r.handle,
            open_flags,
            attributes: r.attributes,
        })
    }

    /// As [`Ckpt::open`], answered by a [`CkptCallback::Open`] carrying
    /// `invocation`.
    ///
    /// # Errors
    /// As [`Ckpt::open`] for what is checked before the executive applies
    /// the open; `SA_AIS_ERR_NO_RESOURCES` with
    /// [`MAX_PENDING_ASYNC_OPENS`] callbacks outstanding.
    pub fn open_async(
        &mut self,
        invocation: u64,
        name: &[u8],
        attributes: Option<CreationAttributes>,
        open_flags: u32,
    ) -> Result<(), AisError> {
        let open = open_request(name, attributes, open_flags)?;
        if self.async_open_count >= MAX_PENDING_ASYNC_OPENS {
            return Err(AisError::NoResources);
        }
        let body = OpenAsync { invocation, open }.encode();
        self.conn.request(OPEN_ASYNC, &body)?.into_result()?;
        self.async_opens
            .entry(invocation)
            .or_default()
            .push_back(open_flags);
        self.async_open_count += 1;
        Ok(())
    }

    /// Closes `ckpt`.
    ///
    /// # Errors
    /// `SA_AIS_ERR_BAD_HANDLE` (from the executive) if it is not open
    /// here; TRY_AGAIN; the connection's errors.
    pub fn close(&mut self, ckpt: &Checkpoint) -> Result<(), AisError> {
        self.handle_request(CLOSE, ckpt.handle)
    }

    /// Unlinks checkpoint `name`: the name is free at once, the data goes
    /// when the last opener closes.
    ///
    /// # Errors
    /// `SA_AIS_ERR_INVALID_PARAM` for a name of 0 or more than 256 bytes;
    /// `SA_AIS_ERR_NOT_EXIST` (from the executive); the connection's
    /// errors.
    pub fn unlink(&mut self, name: &[u8]) -> Result<(), AisError> {
        check_name(name)?;
        let body = Unlink {
            name: Bytes::copy_from_slice(name),
        }
        .encode();
        self.simple(UNLINK, &body)
    }

    /// Sets how long `ckpt` lives once closed by every opener (ns).
    ///
    /// # Errors
    /// `SA_AIS_ERR_INVALID_PARAM` for a negative duration;
    /// `SA_AIS_ERR_BAD_OPERATION` (from the executive) once unlinked; the
    /// connection's errors.
    pub fn retention_duration_set(
        &mut self,
        ckpt: &Checkpoint,
        retention_duration_ns: i64,
    ) -> Result<(), AisError> {
        if retention_duration_ns < 0 {
            return Err(AisError::InvalidParam);
        }
        let body = RetentionDurationSet {
            handle: ckpt.handle,
            retention_duration_ns,
        }
        .encode();
        self.simple(RETENTION_DURATION_SET, &body)
    }

    /// Makes this node's replica of `ckpt` the active one.
    ///
    /// # Errors
    /// `SA_AIS_ERR_ACCESS` without WRITE; `SA_AIS_ERR_BAD_OPERATION` (from
    /// the executive) unless the checkpoint is collocated in an
    /// active-replica mode; the connection's errors.
    pub fn active_replica_set(&mut self, ckpt: &Checkpoint) -> Result<(), AisError> {
        need(ckpt, OPEN_WRITE)?;
        self.handle_request(ACTIVE_REPLICA_SET, ckpt.handle)
    }

    /// The status of `ckpt` (`memory_used` is not clamped here).
    ///
    /// # Errors
    /// `SA_AIS_ERR_NOT_EXIST` (from the executive) if it was deleted; the
    /// connection's errors.
    pub fn status_get(&mut self, ckpt: &Checkpoint) -> Result<CheckpointStatus, AisError> {
        let body = HandleRequest {
            handle: ckpt.handle,
        }
        .encode();
        let reply = self.conn.request(STATUS_GET, &body)?.into_result()?;
        CheckpointStatus::decode(&reply).map_err(|_| AisError::Library)
    }

    /// Creates section `section_id` (empty: a generated id) expiring at
    /// `expiration_time_ns` with `initial_data`; returns its id.
    ///
    /// # Errors
    /// `SA_AIS_ERR_ACCESS` without WRITE; `SA_AIS_ERR_INVALID_PARAM` for an
    /// id or data over the limits (the library's, then the checkpoint's);
    /// from the executive `SA_AIS_ERR_EXIST`, `SA_AIS_ERR_NO_SPACE`
    /// (`maxSections` or `checkpointSize` reached), `SA_AIS_ERR_NO_MEMORY`
    /// (a replica over its memory limit); the connection's errors.
    pub fn section_create(
        &mut self,
        ckpt: &Checkpoint,
        section_id: &[u8],
        expiration_time_ns: i64,
        initial_data: &[u8],
    ) -> Result<Bytes, AisError> {
        need(ckpt, OPEN_WRITE)?;
        check_section_id(section_id)?;
        if initial_data.len() > MAX_DATA_BYTES {
            return Err(AisError::InvalidParam);
        }
        let body = SectionCreate {
            handle: ckpt.handle,
            section_id: Bytes::copy_from_slice(section_id),
            expiration_time_ns,
            initial_data: Bytes::copy_from_slice(initial_data),
        }
        .encode();
        let reply = self.conn.request(SECTION_CREATE, &body)?.into_result()?;
        let r = SectionCreateReply::decode(&reply).map_err(|_| AisError::Library)?;
        Ok(r.section_id)
    }

    /// Deletes section `section_id`.
    ///
    /// # Errors
    /// `SA_AIS_ERR_ACCESS` without WRITE; from the executive
    /// `SA_AIS_ERR_INVALID_PARAM` for the default section,
    /// `SA_AIS_ERR_NOT_EXIST`; the connection's errors.
    pub fn section_delete(&mut self, ckpt: &Checkpoint, section_id: &[u8]) -> Result<(), AisError> {
        need(ckpt, OPEN_WRITE)?;
        check_section_id(section_id)?;
        let body = SectionDelete {
            handle: ckpt.handle,
            section_id: Bytes::copy_from_slice(section_id),
        }
        .encode();
        self.simple(SECTION_DELETE, &body)
    }

    /// Sets section `section_id`'s absolute expiration time (ns since the
    /// epoch; `SA_TIME_END`: never).
    ///
    /// # Errors
    /// As [`Ckpt::section_delete`].
    pub fn section_expiration_time_set(
        &mut self,
        ckpt: &Checkpoint,
        section_id: &[u8],
        expiration_time_ns: i64,
    ) -> Result<(), AisError> {
        need(ckpt, OPEN_WRITE)?;
        check_section_id(section_id)?;
        let body = SectionExpirationTimeSet {
            handle: ckpt.handle,
            section_id: Bytes::copy_from_slice(section_id),
            expiration_time_ns,
        }
        .encode();
        self.simple(SECTION_EXPIRATION_TIME_SET, &body)
    }

    /// Starts an iteration over the sections of `ckpt` that `chosen` picks
    /// (LEQ and GEQ compare with `expiration_time_ns`).
    ///
    /// # Errors
    /// From the executive `SA_AIS_ERR_NO_RESOURCES` (too many iterations
    /// on this connection), `SA_AIS_ERR_NOT_EXIST`; the connection's
    /// errors.
    pub fn iteration_initialize(
        &mut self,
        ckpt: &Checkpoint,
        chosen: SectionsChosen,
        expiration_time_ns: i64,
    ) -> Result<IterationReply, AisError> {
        let body = IterationInitialize {
            handle: ckpt.handle,
            sections_chosen: chosen,
            expiration_time_ns,
        }
        .encode();
        let reply = self
            .conn
            .request(ITERATION_INITIALIZE, &body)?
            .into_result()?;
        IterationReply::decode(&reply).map_err(|_| AisError::Library)
    }

    /// The next section of `iteration`.
    ///
    /// # Errors
    /// `SA_AIS_ERR_NO_SECTIONS` at the end; `SA_AIS_ERR_BAD_HANDLE` (from
    /// the executive) for an unknown iteration; the connection's errors.
    pub fn iteration_next(&mut self, iteration: u64) -> Result<SectionDescriptor, AisError> {
        let body = IterationRequest { iteration }.encode();
        let reply = self.conn.request(ITERATION_NEXT, &body)?.into_result()?;
        SectionDescriptor::decode(&reply).map_err(|_| AisError::Library)
    }

    /// Ends `iteration`.
    ///
    /// # Errors
    /// `SA_AIS_ERR_BAD_HANDLE` (from the executive) for an unknown
    /// iteration; the connection's errors.
    pub fn iteration_finalize(&mut self, iteration: u64) -> Result<(), AisError> {
        let body = IterationRequest { iteration }.encode();
        self.simple(ITERATION_FINALIZE, &body)
    }

    /// Writes `elements` (see the module docs for vectors larger than one
    /// request).
    ///
    /// # Errors
    /// `SA_AIS_ERR_ACCESS` without WRITE; the library's checks (module
    /// docs); from the executive, with the element's index where one is at
    /// fault: `SA_AIS_ERR_NOT_EXIST` (no such section),
    /// `SA_AIS_ERR_INVALID_PARAM`, `SA_AIS_ERR_NO_SPACE`
    /// (`checkpointSize`), `SA_AIS_ERR_NO_MEMORY` (a replica over its
    /// memory limit: nothing of that request was applied anywhere),
    /// TRY_AGAIN; the connection's errors.
    pub fn write(
        &mut self,
        ckpt: &Checkpoint,
        elements: &[WriteElement<'_>],
    ) -> Result<(), IoError> {
        need(ckpt, OPEN_WRITE)?;
        if elements.len() > MAX_VECTOR_ELEMENTS {
            return Err(AisError::InvalidParam.into());
        }
        let max_section = ckpt.attributes.max_section_size;
        for (i, e) in elements.iter().enumerate() {
            let end = e.offset.checked_add(e.data.len() as u64);
            let bad = e.section_id.len() > MAX_SECTION_ID_BYTES
                || e.data.is_empty()
                || e.data.len() > MAX_DATA_BYTES
                || end.is_none_or(|end| end > max_section);
            if bad {
                return Err(at(AisError::InvalidParam, i));
            }
        }
        let runs = batches(elements.iter().map(|e| {
            let encoded = 4 + e.section_id.len() + 8 + 4 + e.data.len();
            (e.data.len(), encoded)
        }));
        for run in runs {
            let body = Write {
                handle: ckpt.handle,
                elements: elements[run.clone()]
                    .iter()
                    .map(|e| proto::ckpt::WriteElement {
                        section_id: Bytes::copy_from_slice(e.section_id),
                        offset: e.offset,
                        data: Bytes::copy_from_slice(e.data),
                    })
                    .collect(),
            }
            .encode();
            let reply = self.conn.request(WRITE, &body)?;
            vector_status(reply, run.start)?;
        }
        Ok(())
    }

    /// Replaces section `section_id`'s data with `data`.
    ///
    /// # Errors
    /// `SA_AIS_ERR_ACCESS` without WRITE; `SA_AIS_ERR_INVALID_PARAM` for an
    /// id or data over the limits; from the executive
    /// `SA_AIS_ERR_NOT_EXIST`, `SA_AIS_ERR_NO_SPACE`,
    /// `SA_AIS_ERR_NO_MEMORY`; the connection's errors.
    pub fn overwrite(
        &mut self,
        ckpt: &Checkpoint,
        section_id: &[u8],
        data: &[u8],
    ) -> Result<(), AisError> {
        need(ckpt, OPEN_WRITE)?;
        check_section_id(section_id)?;
        if data.len() > MAX_DATA_BYTES {
            return Err(AisError::InvalidParam);
        }
        let body = SectionOverwrite {
            handle: ckpt.handle,
            section_id: Bytes::copy_from_slice(section_id),
            data: Bytes::copy_from_slice(data),
        }
        .encode();
        self.simple(SECTION_OVERWRITE, &body)
    }

    /// Reads `elements`: per element, the bytes read (their length is the
    /// element's `readSize`).
    ///
    /// # Errors
    /// `SA_AIS_ERR_ACCESS` without READ; the library's checks; from the
    /// executive, with the element's index where one is at fault:
    /// `SA_AIS_ERR_NOT_EXIST`, `SA_AIS_ERR_INVALID_PARAM` (a size over
    /// `maxSectionSize`, an offset past the section's end),
    /// `SA_AIS_ERR_FAILED_OPERATION` (the section's data is lost);
    /// the connection's errors.
    pub fn read(
        &mut self,
        ckpt: &Checkpoint,
        elements: &[ReadElement<'_>],
    ) -> Result<Vec<Bytes>, IoError> {
        need(ckpt, OPEN_READ)?;
        if elements.len() > MAX_VECTOR_ELEMENTS {
            return Err(AisError::InvalidParam.into());
        }
        if let Some(i) = elements
            .iter()
            .position(|e| e.section_id.len() > MAX_SECTION_ID_BYTES)
        {
            return Err(at(AisError::InvalidParam, i));
        }
        let max_section = ckpt.attributes.max_section_size;
        let sizes: Vec<u64> = elements
            .iter()
            .map(|e| e.size.unwrap_or(max_section))
            .collect();
        let runs = batches(elements.iter().zip(&sizes).map(|(e, &size)| {
            let weight = usize::try_from(size)
                .unwrap_or(usize::MAX)
                .min(MAX_DATA_BYTES);
            (weight, 4 + e.section_id.len() + 8 + 8)
        }));
        let mut out = Vec::with_capacity(elements.len());
        for run in runs {
            let body = Read {
                handle: ckpt.handle,
                elements: elements[run.clone()]
                    .iter()
                    .zip(&sizes[run.clone()])
                    .map(|(e, &size)| proto::ckpt::ReadElement {
                        section_id: Bytes::copy_from_slice(e.section_id),
                        offset: e.offset,
                        size,
                    })
                    .collect(),
            }
            .encode();
            let reply = self.conn.request(READ, &body)?;
            let data = vector_status(reply, run.start)?;
            let r = ReadReply::decode(&data).map_err(|_| AisError::Library)?;
            let asked_at_most = sizes[run.clone()].iter();
            if r.data.len() != run.len()
                || r.data
                    .iter()
                    .zip(asked_at_most)
                    .any(|(d, &s)| d.len() as u64 > s)
            {
                // The executive answers every element, within its size.
                return Err(AisError::Library.into());
            }
            out.extend(r.data);
        }
        Ok(out)
    }

    /// Waits until every replica of `ckpt` has the writes made so far, at
    /// most `timeout` (and at most [`MAX_CALL_TIMEOUT`]).
    ///
    /// # Errors
    /// `SA_AIS_ERR_ACCESS` without WRITE; `SA_AIS_ERR_TIMEOUT` for a zero
    /// timeout or no answer in time; `SA_AIS_ERR_BAD_OPERATION` (from the
    /// executive) for an ALL_REPLICAS checkpoint; the connection's errors.
    pub fn synchronize(&mut self, ckpt: &Checkpoint, timeout: Duration) -> Result<(), AisError> {
        need(ckpt, OPEN_WRITE)?;
        if timeout.is_zero() {
            return Err(AisError::Timeout);
        }
        let body = HandleRequest {
            handle: ckpt.handle,
        }
        .encode();
        self.request_within(SYNCHRONIZE, &body, Some(timeout))?
            .into_result()
            .map(|_| ())
    }

    /// As [`Ckpt::synchronize`], answered by a
    /// [`CkptCallback::Synchronize`] carrying `invocation`.
    ///
    /// # Errors
    /// `SA_AIS_ERR_ACCESS` without WRITE; the connection's errors.
    pub fn synchronize_async(
        &mut self,
        ckpt: &Checkpoint,
        invocation: u64,
    ) -> Result<(), AisError> {
        need(ckpt, OPEN_WRITE)?;
        let body = SynchronizeAsync {
            handle: ckpt.handle,
            invocation,
        }
        .encode();
        self.simple(SYNCHRONIZE_ASYNC, &body)
    }

    /// This node's store status and replica digest (what `ais-ckpt` prints
    /// per node).
    ///
    /// # Errors
    /// The connection's errors.
    pub fn store_status(&mut self) -> Result<StoreStatus, AisError> {
        let reply = self.conn.request(STORE_STATUS, &[])?.into_result()?;
        StoreStatus::decode(&reply).map_err(|_| AisError::Library)
    }

    /// The checkpoints after `after` (in key order; `None`: from the
    /// first), at most [`proto::ckpt::MAX_LIST_ENTRIES`] of them.
    ///
    /// # Errors
    /// The connection's errors.
    pub fn list(
        &mut self,
        after: Option<proto::ckpt::CheckpointKey>,
    ) -> Result<ListReply, AisError> {
        let reply = self
            .conn
            .request(LIST, &List { after }.encode())?
            .into_result()?;
        ListReply::decode(&reply).map_err(|_| AisError::Library)
    }

    /// The next callback; with `blocking`, waits for one.
    ///
    /// # Errors
    /// `SA_AIS_ERR_LIBRARY` if the connection broke, or the executive sent
    /// a callback this library cannot decode or did not ask for.
    pub fn next_callback(&mut self, blocking: bool) -> Result<Option<CkptCallback>, AisError> {
        let Some(frame) = self.conn.recv_callback(blocking)? else {
            return Ok(None);
        };
        match frame.id {
            CB_OPEN => {
                let cb = OpenCallback::decode(&frame.body).map_err(|_| AisError::Library)?;
                let open_flags = self.take_async_open(cb.invocation)?;
                let result = cb.status.map(|()| Checkpoint {
                    handle: cb.handle,
                    open_flags,
                    attributes: cb.attributes,
                });
                Ok(Some(CkptCallback::Open {
                    invocation: cb.invocation,
                    result,
                }))
            }
            CB_SYNCHRONIZE => {
                let cb = SynchronizeCallback::decode(&frame.body).map_err(|_| AisError::Library)?;
                Ok(Some(CkptCallback::Synchronize {
                    invocation: cb.invocation,
                    status: cb.status,
                }))
            }
            _ => Err(AisError::Library),
        }
    }

    /// The flags of the oldest outstanding asynchronous open with
    /// `invocation`.
    fn take_async_open(&mut self, invocation: u64) -> Result<u32, AisError> {
        let queue = self
            .async_opens
            .get_mut(&invocation)
            .ok_or(AisError::Library)?;
        let flags = queue.pop_front().ok_or(AisError::Library)?;
        if queue.is_empty() {
            self.async_opens.remove(&invocation);
        }
        self.async_open_count -= 1;
        Ok(flags)
    }

    fn handle_request(&mut self, id: u16, handle: u64) -> Result<(), AisError> {
        self.simple(id, &HandleRequest { handle }.encode())
    }

    fn simple(&mut self, id: u16, body: &[u8]) -> Result<(), AisError> {
        self.conn.request(id, body)?.into_result().map(|_| ())
    }

    /// A request waiting `timeout` (bounded) instead of the connection's
    /// own timeout.
    fn request_within(
        &mut self,
        id: u16,
        body: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Reply, AisError> {
        let Some(timeout) = timeout else {
            return self.conn.request(id, body);
        };
        let saved = self.conn.timeout();
        self.conn.set_timeout(timeout.min(MAX_CALL_TIMEOUT));
        let result = self.conn.request(id, body);
        self.conn.set_timeout(saved);
        result
    }
}

/// The request of an open, checked as the module docs say.
fn open_request(
    name: &[u8],
    attributes: Option<CreationAttributes>,
    open_flags: u32,
) -> Result<Open, AisError> {
    check_name(name)?;
    if open_flags & !(OPEN_READ | OPEN_WRITE | OPEN_CREATE) != 0 {
        return Err(AisError::BadFlags);
    }
    if attributes.is_some() != (open_flags & OPEN_CREATE != 0) {
        return Err(AisError::InvalidParam);
    }
    Ok(Open {
        name: Bytes::copy_from_slice(name),
        attributes,
        open_flags,
    })
}

fn check_name(name: &[u8]) -> Result<(), AisError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        Err(AisError::InvalidParam)
    } else {
        Ok(())
    }
}

fn check_section_id(id: &[u8]) -> Result<(), AisError> {
    if id.len() > MAX_SECTION_ID_BYTES {
        Err(AisError::InvalidParam)
    } else {
        Ok(())
    }
}

/// `SA_AIS_ERR_ACCESS` unless `ckpt` was opened with `flag`.
fn need(ckpt: &Checkpoint, flag: u32) -> Result<(), AisError> {
    if ckpt.open_flags & flag == 0 {
        Err(AisError::Access)
    } else {
        Ok(())
    }
}

fn at(error: AisError, index: usize) -> IoError {
    IoError {
        error,
        // Cannot truncate: vectors hold at most MAX_VECTOR_ELEMENTS.
        index: Some(index as u32),
    }
}

/// The body of a successful write or read reply; on failure the error with
/// the erroneous index (shifted by `start`, the request's first element in
/// the caller's vector) when the executive named one.
fn vector_status(reply: Reply, start: usize) -> Result<Bytes, IoError> {
    match reply.status {
        Ok(()) => Ok(reply.body),
        Err(error) => {
            let index = ErroneousIndex::decode(&reply.body)
                .ok()
                .map(|e| (e.index as usize).saturating_add(start))
                .and_then(|i| u32::try_from(i).ok());
            Err(IoError { error, index })
        }
    }
}

/// Cuts a vector into runs of consecutive elements that each fit one
/// request: at most [`MAX_IO_ELEMENTS`] elements, [`MAX_DATA_BYTES`] of
/// data (`items` gives each element's data bytes and encoded bytes) and a
/// body of at most [`MAX_BODY_BYTES`]. An element alone always fits (the
/// callers checked its id and data against the maxima).
fn batches(items: impl Iterator<Item = (usize, usize)>) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let (mut start, mut data, mut body) = (0, 0usize, VECTOR_HEADER_BYTES);
    let mut n = 0;
    for (i, (d, e)) in items.enumerate() {
        let fits = i - start < MAX_IO_ELEMENTS
            && data.saturating_add(d) <= MAX_DATA_BYTES
            && body.saturating_add(e) <= MAX_BODY_BYTES;
        if i > start && !fits {
            runs.push(start..i);
            (start, data, body) = (i, 0, VECTOR_HEADER_BYTES);
        }
        data = data.saturating_add(d);
        body = body.saturating_add(e);
        n = i + 1;
    }
    if n > start {
        runs.push(start..n);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs() -> CreationAttributes {
        CreationAttributes {
            creation_flags: proto::ckpt::WR_ALL_REPLICAS,
            checkpoint_size: 1 << 20,
            retention_duration_ns: 0,
            max_sections: 10,
            max_section_size: 1 << 20,
            max_section_id_size: 16,
        }
    }

    #[test]
    fn open_flags_and_attributes_are_checked_as_openais() {
        let a = Some(attrs());
        assert!(open_request(b"c", a, OPEN_CREATE | OPEN_READ).is_ok());
        assert!(open_request(b"c", None, OPEN_READ | OPEN_WRITE).is_ok());
        assert!(open_request(b"c", None, 0).is_ok());
        assert_eq!(
            open_request(b"c", a, OPEN_CREATE | 0x8).unwrap_err(),
            AisError::BadFlags
        );
        assert_eq!(
            open_request(b"c", None, OPEN_CREATE).unwrap_err(),
            AisError::InvalidParam
        );
        assert_eq!(
            open_request(b"c", a, OPEN_READ).unwrap_err(),
            AisError::InvalidParam
        );
        assert_eq!(
            open_request(b"", None, OPEN_READ).unwrap_err(),
            AisError::InvalidParam
        );
        let long = vec![b'n'; MAX_NAME_BYTES + 1];
        assert_eq!(
            open_request(&long, None, OPEN_READ).unwrap_err(),
            AisError::InvalidParam
        );
        assert!(open_request(&long[1..], None, OPEN_READ).is_ok());
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // a vector of runs, not of indexes
    fn vectors_are_cut_by_count_data_and_body_size() {
        assert_eq!(batches(std::iter::empty()), Vec::<Range<usize>>::new());
        assert_eq!(batches([(10, 30); 3].into_iter()), [0..3]);
        // Data: two halves and a byte more.
        let half = MAX_DATA_BYTES / 2;
        assert_eq!(
            batches([(half, 30), (half, 30), (1, 30)].into_iter()),
            [0..2, 2..3]
        );
        // A full element alone, then the rest.
        assert_eq!(
            batches([(1, 30), (MAX_DATA_BYTES, 30), (1, 30)].into_iter()),
            [0..1, 1..2, 2..3]
        );
        // Count.
        let many = vec![(0, 20); MAX_IO_ELEMENTS * 2 + 1];
        assert_eq!(
            batches(many.into_iter()),
            [
                0..MAX_IO_ELEMENTS,
                MAX_IO_ELEMENTS..2 * MAX_IO_ELEMENTS,
                2 * MAX_IO_ELEMENTS..2 * MAX_IO_ELEMENTS + 1
            ]
        );
        // Body: 1024 elements with 1 KiB ids and 1 KiB of data each fit
        // the data limit but not the body.
        let fat = vec![(1024, 4 + 1024 + 8 + 4 + 1024); 1000];
        let runs = batches(fat.into_iter());
        assert!(runs.len() > 1, "{runs:?}");
        for r in &runs {
            assert!(VECTOR_HEADER_BYTES + r.len() * (4 + 1024 + 8 + 4 + 1024) <= MAX_BODY_BYTES);
        }
        assert_eq!(runs.last().map(|r| r.end), Some(1000));
    }

    #[test]
    fn erroneous_indexes_are_shifted_into_the_callers_vector() {
        let reply = |status, body: Bytes| Reply { status, body };
        let at_two = ErroneousIndex { index: 2 }.encode();
        assert_eq!(
            vector_status(reply(Err(AisError::NotExist), at_two), 1024),
            Err(IoError {
                error: AisError::NotExist,
                index: Some(1026)
            })
        );
        assert_eq!(
            vector_status(reply(Err(AisError::TryAgain), Bytes::new()), 7),
            Err(IoError {
                error: AisError::TryAgain,
                index: None
            })
        );
        assert_eq!(
            vector_status(reply(Ok(()), Bytes::from_static(b"x")), 0),
            Ok(Bytes::from_static(b"x"))
        );
    }

    #[test]
    fn access_is_checked_against_the_open_flags() {
        let c = Checkpoint {
            handle: 1,
            open_flags: OPEN_READ,
            attributes: attrs(),
        };
        assert_eq!(need(&c, OPEN_READ), Ok(()));
        assert_eq!(need(&c, OPEN_WRITE), Err(AisError::Access));
    }
}
