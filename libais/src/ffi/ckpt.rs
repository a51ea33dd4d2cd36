//! `saCkpt.h`: the SA Forum checkpoint API over [`crate::ckpt`].
//!
//! # Handles
//! Three typed handle tables: library handles (`SaCkptHandleT`, each an
//! [`Instance`] around a [`CkptLib`]), checkpoint handles
//! (`SaCkptCheckpointHandleT`) and section iteration handles
//! (`SaCkptSectionIterationHandleT`). A checkpoint handle belongs to the
//! library handle it was opened through, an iteration to its checkpoint
//! handle: the tables map them to their library handle (weakly), and the
//! library handle's [`CkptLib`], under its lock, holds their state and
//! says which are live. Closing a checkpoint handle ends its iterations;
//! finalizing a library handle ends its checkpoint handles and iterations
//! (the executive closes the checkpoints a connection held when it goes).
//! A handle of another kind, stale, or made up is `SA_AIS_ERR_BAD_HANDLE`.
//! Calls on the checkpoints of one library handle share its connection and
//! its lock.
//!
//! # Behaviours chosen where the specification leaves room
//! (see also [`crate::ckpt`] for what the library checks itself)
//! - `saCkptCheckpointOpen` with a timeout of 0 or less waits the default
//!   call timeout: openais ignored the timeout and its test programs pass
//!   0. A name whose `length` is 0 or above 256 is
//!   `SA_AIS_ERR_INVALID_PARAM`.
//! - `saCkptSectionCreate` with `SA_CKPT_GENERATED_SECTION_ID` (an id of
//!   length 0) writes the generated id back into the caller's
//!   `SaCkptSectionIdT`, in memory from `malloc()` (NUL-terminated after
//!   `idLen` bytes) that the caller frees with `free()`: B.01.01 has no
//!   `saCkptSectionIdFree` (B.02.01 added it). The memory is taken before
//!   the request is sent, so a section that was created always has its id
//!   delivered.
//! - `saCkptCheckpointRead` with a NULL `dataBuffer` reads up to the end
//!   of the section (`dataSize` is ignored) into memory from `malloc()`
//!   stored in `dataBuffer`, which the caller frees with `free()` (B.01.01
//!   has no `saCkptIOVectorElementDataFree`). Buffers and `readSize`s are
//!   written only when the whole read succeeded.
//! - `erroneousVectorIndex` is written when the call fails because of one
//!   element (and may be NULL).
//! - The section ids `saCkptSectionIterationNext` returns are the
//!   library's (NUL-terminated after `idLen` bytes) until
//!   `saCkptSectionIterationFinalize`, the close of the checkpoint handle
//!   or the finalize of the library handle; at most [`MAX_ITERATION_IDS`]
//!   per iteration (`SA_AIS_ERR_NO_MEMORY` beyond).
//! - `memoryUsed` is clamped to `SaUint32T`.
//! - `saCkptCheckpointSynchronize` with a timeout of 0 is
//!   `SA_AIS_ERR_TIMEOUT`, a negative one `SA_AIS_ERR_INVALID_PARAM`.
//! - `saCkptCheckpointOpenAsync` without an open callback and
//!   `saCkptCheckpointSynchronizeAsync` without a synchronize callback are
//!   `SA_AIS_ERR_INIT`.
//! - A NULL `callbacks` at initialize means no callbacks.

#![allow(unsafe_code, non_snake_case)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::c_void;
use std::sync::{Arc, Weak};
use std::time::Duration;

use proto::ckpt::{
    CheckpointStatus, CreationAttributes, SectionState, SectionsChosen, MAX_SECTION_ID_BYTES,
};
use proto::{status_code, AisError};

use super::types::{
    SaAisErrorT, SaCkptCallbacksT, SaCkptCheckpointCreationAttributesT,
    SaCkptCheckpointDescriptorT, SaCkptCheckpointHandleT, SaCkptCheckpointOpenFlagsT,
    SaCkptHandleT, SaCkptIOVectorElementT, SaCkptSectionCreationAttributesT,
    SaCkptSectionDescriptorT, SaCkptSectionIdT, SaCkptSectionIterationHandleT,
    SaCkptSectionsChosenT, SaDispatchFlagsT, SaInvocationT, SaNameT, SaSelectionObjectT, SaSizeT,
    SaTimeT, SaUint32T, SaVersionT, SA_AIS_OK, SA_CKPT_SECTION_CORRUPTED, SA_CKPT_SECTION_VALID,
    SA_DISPATCH_ALL, SA_DISPATCH_BLOCKING, SA_DISPATCH_ONE, SA_MAX_NAME_LENGTH,
};
use super::{
    boundary, code, finalize_in, malloc_array, negotiate_version, read_callbacks,
    register_instance, selection_object_get, write_out, Code, DispatchMode, HandleTable, Instance,
};
use crate::ckpt::{Checkpoint, Ckpt, CkptCallback, IoError, ReadElement, WriteElement};

/// Most section ids one iteration hands out (the most sections a
/// checkpoint may have).
pub const MAX_ITERATION_IDS: usize = 65_536;

/// One CKPT library handle.
pub type CkptInstance = Instance<CkptLib, SaCkptCallbacksT>;

/// What a library handle holds: the connection, and the checkpoint and
/// iteration handles opened through it.
#[derive(Debug)]
pub struct CkptLib {
    ckpt: Ckpt,
    checkpoints: BTreeMap<SaCkptCheckpointHandleT, OpenCheckpoint>,
    iterations: BTreeMap<SaCkptSectionIterationHandleT, IterationState>,
}

/// A live checkpoint handle.
#[derive(Debug)]
struct OpenCheckpoint {
    ckpt: Checkpoint,
    iterations: BTreeSet<SaCkptSectionIterationHandleT>,
}

/// A live iteration handle.
#[derive(Debug)]
struct IterationState {
    checkpoint: SaCkptCheckpointHandleT,
    /// The executive's iteration.
    exec: u64,
    /// The ids handed out so far (their buffers never move).
    ids: Vec<Vec<u8>>,
}

/// A checkpoint or iteration handle's entry: its library handle.
#[derive(Debug)]
struct Owned {
    owner: Weak<CkptInstance>,
}

/// A callback ready to be invoked.
#[derive(Clone, Copy, Debug)]
enum Ready {
    Open {
        invocation: SaInvocationT,
        handle: SaCkptCheckpointHandleT,
        error: SaAisErrorT,
    },
    Synchronize {
        invocation: SaInvocationT,
        error: SaAisErrorT,
    },
}

/// Memory from `malloc()`, freed on drop unless handed to the caller.
struct Malloced {
    ptr: *mut u8,
    len: usize,
}

/// Every live CKPT library handle.
static HANDLES: HandleTable<CkptInstance> = HandleTable::new();
/// Every live checkpoint handle.
static CHECKPOINTS: HandleTable<Owned> = HandleTable::new();
/// Every live section iteration handle.
static ITERATIONS: HandleTable<Owned> = HandleTable::new();

extern "C" {
    fn free(p: *mut c_void);
}

impl CkptLib {
    /// The selection object of the connection.
    fn selection(&self) -> std::os::fd::BorrowedFd<'_> {
        self.ckpt.selection()
    }
}

impl Malloced {
    /// `len` bytes (at least one).
    fn new(len: usize) -> Result<Malloced, Code> {
        let ptr = malloc_array::<u8>(len)?;
        Ok(Malloced { ptr, len })
    }

    /// The memory, now the caller's.
    fn into_raw(self) -> *mut u8 {
        let p = self.ptr;
        std::mem::forget(self);
        p
    }
}

impl Drop for Malloced {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from malloc and was not handed out.
        unsafe { free(self.ptr.cast()) };
    }
}

fn bad_handle() -> Code {
    code(AisError::BadHandle)
}

fn invalid_param() -> Code {
    code(AisError::InvalidParam)
}

fn lookup(handle: SaCkptHandleT) -> Result<Arc<CkptInstance>, Code> {
    HANDLES.get(handle).ok_or(bad_handle())
}

/// The library handle owning entry `handle` of `table`.
fn owner_of(table: &HandleTable<Owned>, handle: u64) -> Result<Arc<CkptInstance>, Code> {
    table
        .get(handle)
        .and_then(|o| o.owner.upgrade())
        .ok_or(bad_handle())
}

/// Live checkpoint and iteration handles (for leak tests).
pub fn live_children() -> (usize, usize) {
    (CHECKPOINTS.len(), ITERATIONS.len())
}

/// Runs `f` on `instance`'s state under its lock, unless it was
/// finalized.
fn locked<R>(
    instance: &CkptInstance,
    f: impl FnOnce(&mut CkptLib) -> Result<R, Code>,
) -> Result<R, Code> {
    instance.with(|lib| {
        if instance.is_finalized() {
            return Err(bad_handle());
        }
        f(lib)
    })?
}

/// Runs `f` on checkpoint handle `handle` (its library handle's state, the
/// checkpoint, and the library handle) under its library handle's lock.
fn with_checkpoint<R>(
    handle: SaCkptCheckpointHandleT,
    f: impl FnOnce(&mut CkptLib, Checkpoint, &Arc<CkptInstance>) -> Result<R, Code>,
) -> Result<R, Code> {
    let owner = owner_of(&CHECKPOINTS, handle)?;
    locked(&owner, |lib| {
        let ckpt = lib.checkpoints.get(&handle).ok_or(bad_handle())?.ckpt;
        f(lib, ckpt, &owner)
    })
}

/// Gives `ckpt` a checkpoint handle of `owner`; closes it if none is
/// left.
fn register(
    lib: &mut CkptLib,
    owner: &Arc<CkptInstance>,
    ckpt: Checkpoint,
) -> Result<SaCkptCheckpointHandleT, Code> {
    let owned = Owned {
        owner: Arc::downgrade(owner),
    };
    match CHECKPOINTS.insert(Arc::new(owned)) {
        Ok(h) => {
            lib.checkpoints.insert(
                h,
                OpenCheckpoint {
                    ckpt,
                    iterations: BTreeSet::new(),
                },
            );
            Ok(h)
        }
        Err(_) => {
            // Best effort: if the close fails the connection is broken,
            // and the executive closes it when the connection goes.
            let _ = lib.ckpt.close(&ckpt);
            Err(code(AisError::NoResources))
        }
    }
}

/// Forgets checkpoint handle `handle` and its iterations (ending them in
/// the executive, best effort: a failure means the connection broke).
fn forget_checkpoint(lib: &mut CkptLib, handle: SaCkptCheckpointHandleT) {
    let iterations = lib
        .checkpoints
        .remove(&handle)
        .map(|c| c.iterations)
        .unwrap_or_default();
    for it in iterations {
        if let Some(st) = lib.iterations.remove(&it) {
            let _ = lib.ckpt.iteration_finalize(st.exec);
        }
        ITERATIONS.remove(it);
    }
    CHECKPOINTS.remove(handle);
}

/// The bytes of a C checkpoint name.
///
/// # Safety
/// `name` is NULL or points to a readable `SaNameT`.
unsafe fn name_bytes(name: *const SaNameT) -> Result<Vec<u8>, Code> {
    if name.is_null() {
        return Err(invalid_param());
    }
    // SAFETY: non-NULL; the caller's contract.
    let n = unsafe { &*name };
    let len = usize::from(n.length);
    if len == 0 || len > SA_MAX_NAME_LENGTH {
        return Err(invalid_param());
    }
    Ok(n.value[..len].to_vec())
}

/// The bytes of a C section id, borrowed from the caller for the call.
///
/// # Safety
/// `id.id` is NULL or points to `id.idLen` readable bytes that live for
/// `'a`.
unsafe fn section_id<'a>(id: &SaCkptSectionIdT) -> Result<&'a [u8], Code> {
    let n = usize::from(id.idLen);
    if n == 0 {
        return Ok(&[]);
    }
    if id.id.is_null() {
        return Err(invalid_param());
    }
    if n > MAX_SECTION_ID_BYTES {
        return Err(invalid_param());
    }
    // SAFETY: non-NULL; the caller's contract; n <= 1024.
    Ok(unsafe { std::slice::from_raw_parts(id.id, n) })
}

/// `size` bytes at `data`, borrowed from the caller for the call.
///
/// # Safety
/// `data` is NULL or points to `size` readable bytes that live for `'a`.
unsafe fn data_slice<'a>(data: *const c_void, size: SaSizeT) -> Result<&'a [u8], Code> {
    let n = usize::try_from(size)
        .ok()
        .filter(|&n| n <= proto::ckpt::MAX_DATA_BYTES)
        .ok_or(invalid_param())?;
    if n == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(invalid_param());
    }
    // SAFETY: non-NULL; the caller's contract; n is at most 1 MiB.
    Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), n) })
}

fn attributes(a: &SaCkptCheckpointCreationAttributesT) -> CreationAttributes {
    CreationAttributes {
        creation_flags: a.creationFlags,
        checkpoint_size: a.checkpointSize,
        retention_duration_ns: a.retentionDuration,
        max_sections: a.maxSections,
        max_section_size: a.maxSectionSize,
        max_section_id_size: a.maxSectionIdSize,
    }
}

fn c_attributes(a: &CreationAttributes) -> SaCkptCheckpointCreationAttributesT {
    SaCkptCheckpointCreationAttributesT {
        creationFlags: a.creation_flags,
        checkpointSize: a.checkpoint_size,
        retentionDuration: a.retention_duration_ns,
        maxSections: a.max_sections,
        maxSectionSize: a.max_section_size,
        maxSectionIdSize: a.max_section_id_size,
    }
}

/// The C descriptor of a checkpoint status (`memoryUsed` clamped).
pub fn descriptor(s: &CheckpointStatus) -> SaCkptCheckpointDescriptorT {
    SaCkptCheckpointDescriptorT {
        checkpointCreationAttributes: c_attributes(&s.attributes),
        numberOfSections: s.number_of_sections,
        memoryUsed: u32::try_from(s.memory_used).unwrap_or(u32::MAX),
    }
}

/// The C code of a vector call's error; writes the erroneous index to
/// `out` when one element is at fault and `out` is not NULL.
///
/// # Safety
/// `out` is NULL or points to a writable `SaUint32T`.
unsafe fn vector_error(e: IoError, out: *mut SaUint32T) -> Code {
    if let (Some(i), false) = (e.index, out.is_null()) {
        // SAFETY: non-NULL; the caller's contract.
        unsafe { write_out(out, i) };
    }
    code(e.error)
}

fn at(index: usize) -> IoError {
    IoError {
        error: AisError::InvalidParam,
        // Cannot truncate: vectors are at most MAX_VECTOR_ELEMENTS long.
        index: Some(index as u32),
    }
}

/// The caller's vector, copied (the elements are small; the buffers they
/// point to are not copied).
///
/// # Safety
/// `v` is NULL or points to `n` readable elements.
unsafe fn vector(
    v: *const SaCkptIOVectorElementT,
    n: SaUint32T,
) -> Result<Vec<SaCkptIOVectorElementT>, Code> {
    let n = n as usize;
    if n > crate::ckpt::MAX_VECTOR_ELEMENTS {
        return Err(invalid_param());
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    if v.is_null() {
        return Err(invalid_param());
    }
    // SAFETY: non-NULL; the caller's contract; n is bounded.
    Ok(unsafe { std::slice::from_raw_parts(v, n) }.to_vec())
}

/// `saCkptInitialize`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptInitialize(
    ckptHandle: *mut SaCkptHandleT,
    callbacks: *const SaCkptCallbacksT,
    version: *mut SaVersionT,
) -> SaAisErrorT {
    boundary(|| {
        // SAFETY: the caller passes NULL or a writable SaVersionT.
        unsafe { negotiate_version(version) }?;
        if ckptHandle.is_null() {
            return Err(invalid_param());
        }
        // SAFETY: the caller passes NULL or a readable SaCkptCallbacksT.
        let callbacks = unsafe { read_callbacks(callbacks) };
        let lib = CkptLib {
            ckpt: Ckpt::connect().map_err(code)?,
            checkpoints: BTreeMap::new(),
            iterations: BTreeMap::new(),
        };
        // SAFETY: checked non-NULL above; points to a writable handle.
        unsafe { register_instance(&HANDLES, lib, CkptLib::selection, callbacks, ckptHandle) }
    })
}

/// `saCkptSelectionObjectGet`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptSelectionObjectGet(
    ckptHandle: SaCkptHandleT,
    selectionObject: *mut SaSelectionObjectT,
) -> SaAisErrorT {
    boundary(|| {
        // SAFETY: the caller passes NULL or a writable SaSelectionObjectT.
        unsafe { selection_object_get(&HANDLES, ckptHandle, selectionObject) }
    })
}

/// `saCkptDispatch`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptDispatch(
    ckptHandle: SaCkptHandleT,
    dispatchFlags: SaDispatchFlagsT,
) -> SaAisErrorT {
    boundary(|| {
        let mode = DispatchMode::from_flags(
            dispatchFlags,
            [SA_DISPATCH_ONE, SA_DISPATCH_ALL, SA_DISPATCH_BLOCKING],
        )?;
        let instance = lookup(ckptHandle)?;
        instance.dispatch(mode, |lib| next(lib, &instance), invoke)
    })
}

/// The next callback of `owner`, its checkpoint handle registered (under
/// the lock).
fn next(lib: &mut CkptLib, owner: &Arc<CkptInstance>) -> Result<Option<Ready>, Code> {
    let Some(callback) = lib.ckpt.next_callback(false).map_err(code)? else {
        return Ok(None);
    };
    Ok(Some(match callback {
        CkptCallback::Open {
            invocation,
            result: Ok(ckpt),
        } => {
            let registered = if owner.is_finalized() {
                let _ = lib.ckpt.close(&ckpt);
                Err(bad_handle())
            } else {
                register(lib, owner, ckpt)
            };
            match registered {
                Ok(handle) => Ready::Open {
                    invocation,
                    handle,
                    error: SA_AIS_OK,
                },
                Err(error) => Ready::Open {
                    invocation,
                    handle: 0,
                    error,
                },
            }
        }
        CkptCallback::Open {
            invocation,
            result: Err(e),
        } => Ready::Open {
            invocation,
            handle: 0,
            error: code(e),
        },
        CkptCallback::Synchronize { invocation, status } => Ready::Synchronize {
            invocation,
            error: status_code(status),
        },
    }))
}

/// Calls the application's callback for `ready` (no lock held).
fn invoke(callbacks: &SaCkptCallbacksT, ready: Ready) {
    match ready {
        Ready::Open {
            invocation,
            handle,
            error,
        } => {
            if let Some(f) = callbacks.saCkptCheckpointOpenCallback {
                // SAFETY: the application registered `f` with the
                // SaCkptCheckpointOpenCallbackT prototype.
                unsafe { f(invocation, handle, error) };
            }
        }
        Ready::Synchronize { invocation, error } => {
            if let Some(f) = callbacks.saCkptCheckpointSynchronizeCallback {
                // SAFETY: the application registered `f` with the
                // SaCkptCheckpointSynchronizeCallbackT prototype.
                unsafe { f(invocation, error) };
            }
        }
    }
}

/// `saCkptFinalize`: also ends every checkpoint and iteration handle
/// opened through `ckptHandle`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptFinalize(ckptHandle: SaCkptHandleT) -> SaAisErrorT {
    boundary(|| {
        let instance = finalize_in(&HANDLES, ckptHandle)?;
        // A poisoned lock leaves the entries behind; they name a finalized
        // owner, so they are BAD_HANDLE all the same.
        let _ = instance.with(|lib| {
            for h in std::mem::take(&mut lib.checkpoints).into_keys() {
                CHECKPOINTS.remove(h);
            }
            for h in std::mem::take(&mut lib.iterations).into_keys() {
                ITERATIONS.remove(h);
            }
        });
        Ok(())
    })
}

/// `saCkptCheckpointOpen`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptCheckpointOpen(
    ckptHandle: SaCkptHandleT,
    checkpointName: *const SaNameT,
    checkpointCreationAttributes: *const SaCkptCheckpointCreationAttributesT,
    checkpointOpenFlags: SaCkptCheckpointOpenFlagsT,
    timeout: SaTimeT,
    checkpointHandle: *mut SaCkptCheckpointHandleT,
) -> SaAisErrorT {
    boundary(|| {
        // SAFETY: the caller passes NULL or a readable SaNameT.
        let name = unsafe { name_bytes(checkpointName) }?;
        if checkpointHandle.is_null() {
            return Err(invalid_param());
        }
        // SAFETY: NULL or the caller's readable attributes.
        let attrs = unsafe { checkpointCreationAttributes.as_ref() }.map(attributes);
        let timeout = u64::try_from(timeout)
            .ok()
            .filter(|&ns| ns > 0)
            .map(Duration::from_nanos);
        let instance = lookup(ckptHandle)?;
        let handle = locked(&instance, |lib| {
            let ckpt = lib
                .ckpt
                .open(&name, attrs, checkpointOpenFlags, timeout)
                .map_err(code)?;
            register(lib, &instance, ckpt)
        })?;
        // SAFETY: checked non-NULL above; points to a writable handle.
        unsafe { write_out(checkpointHandle, handle) };
        Ok(())
    })
}

/// `saCkptCheckpointOpenAsync`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptCheckpointOpenAsync(
    ckptHandle: SaCkptHandleT,
    invocation: SaInvocationT,
    checkpointName: *const SaNameT,
    checkpointCreationAttributes: *const SaCkptCheckpointCreationAttributesT,
    checkpointOpenFlags: SaCkptCheckpointOpenFlagsT,
) -> SaAisErrorT {
    boundary(|| {
        // SAFETY: the caller passes NULL or a readable SaNameT.
        let name = unsafe { name_bytes(checkpointName) }?;
        // SAFETY: NULL or the caller's readable attributes.
        let attrs = unsafe { checkpointCreationAttributes.as_ref() }.map(attributes);
        let instance = lookup(ckptHandle)?;
        if instance.callbacks().saCkptCheckpointOpenCallback.is_none() {
            return Err(code(AisError::Init));
        }
        locked(&instance, |lib| {
            lib.ckpt
                .open_async(invocation, &name, attrs, checkpointOpenFlags)
                .map_err(code)
        })
    })
}

/// `saCkptCheckpointClose`: also ends the handle's section iterations.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptCheckpointClose(
    checkpointHandle: SaCkptCheckpointHandleT,
) -> SaAisErrorT {
    boundary(|| {
        with_checkpoint(checkpointHandle, |lib, ckpt, _| {
            match lib.ckpt.close(&ckpt) {
                // BAD_HANDLE: the executive has no such open (it cannot
                // happen while the connection lives); the handle goes
                // all the same.
                Ok(()) | Err(AisError::BadHandle) => {}
                Err(e) => return Err(code(e)),
            }
            forget_checkpoint(lib, checkpointHandle);
            Ok(())
        })
    })
}

/// `saCkptCheckpointUnlink`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptCheckpointUnlink(
    ckptHandle: SaCkptHandleT,
    checkpointName: *const SaNameT,
) -> SaAisErrorT {
    boundary(|| {
        // SAFETY: the caller passes NULL or a readable SaNameT.
        let name = unsafe { name_bytes(checkpointName) }?;
        let instance = lookup(ckptHandle)?;
        locked(&instance, |lib| lib.ckpt.unlink(&name).map_err(code))
    })
}

/// `saCkptCheckpointRetentionDurationSet`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptCheckpointRetentionDurationSet(
    checkpointHandle: SaCkptCheckpointHandleT,
    retentionDuration: SaTimeT,
) -> SaAisErrorT {
    boundary(|| {
        with_checkpoint(checkpointHandle, |lib, ckpt, _| {
            lib.ckpt
                .retention_duration_set(&ckpt, retentionDuration)
                .map_err(code)
        })
    })
}

/// `saCkptActiveReplicaSet`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptActiveReplicaSet(
    checkpointHandle: SaCkptCheckpointHandleT,
) -> SaAisErrorT {
    boundary(|| {
        with_checkpoint(checkpointHandle, |lib, ckpt, _| {
            lib.ckpt.active_replica_set(&ckpt).map_err(code)
        })
    })
}

/// `saCkptCheckpointStatusGet`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptCheckpointStatusGet(
    checkpointHandle: SaCkptCheckpointHandleT,
    checkpointStatus: *mut SaCkptCheckpointDescriptorT,
) -> SaAisErrorT {
    boundary(|| {
        if checkpointStatus.is_null() {
            return Err(invalid_param());
        }
        let status = with_checkpoint(checkpointHandle, |lib, ckpt, _| {
            lib.ckpt.status_get(&ckpt).map_err(code)
        })?;
        // SAFETY: checked non-NULL above; points to a writable descriptor.
        unsafe { write_out(checkpointStatus, descriptor(&status)) };
        Ok(())
    })
}

/// `saCkptSectionCreate`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptSectionCreate(
    checkpointHandle: SaCkptCheckpointHandleT,
    sectionCreationAttributes: *mut SaCkptSectionCreationAttributesT,
    initialData: *const c_void,
    initialDataSize: SaSizeT,
) -> SaAisErrorT {
    boundary(|| {
        // SAFETY: NULL or the caller's readable attributes.
        let a = unsafe { sectionCreationAttributes.as_ref() }.ok_or(invalid_param())?;
        let id_out = a.sectionId;
        // SAFETY: NULL or the caller's readable section id.
        let sid = unsafe { id_out.as_ref() }.ok_or(invalid_param())?;
        // SAFETY: the id's bytes are the caller's for the call.
        let id = unsafe { section_id(sid) }?;
        let generated = id.is_empty();
        // SAFETY: NULL or initialDataSize readable bytes (the contract).
        let data = unsafe { data_slice(initialData, initialDataSize) }?;
        let expiration = a.expirationTime;
        with_checkpoint(checkpointHandle, |lib, ckpt, _| {
            // The generated id's memory first: once the section exists
            // its id must reach the caller.
            let room = usize::try_from(ckpt.attributes.max_section_id_size)
                .unwrap_or(usize::MAX)
                .min(MAX_SECTION_ID_BYTES)
                + 1;
            let buffer = if generated {
                Some(Malloced::new(room)?)
            } else {
                None
            };
            let new_id = lib
                .ckpt
                .section_create(&ckpt, id, expiration, data)
                .map_err(code)?;
            if let Some(buffer) = buffer {
                if new_id.len() >= buffer.len {
                    // The executive keeps ids within maxSectionIdSize.
                    return Err(code(AisError::Library));
                }
                // SAFETY: buffer holds buffer.len > new_id.len() bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(new_id.as_ptr(), buffer.ptr, new_id.len());
                    buffer.ptr.add(new_id.len()).write(0);
                }
                let out = SaCkptSectionIdT {
                    // Cannot truncate: at most 1024 bytes.
                    idLen: new_id.len() as u16,
                    id: buffer.into_raw(),
                };
                // SAFETY: id_out is the caller's non-NULL, writable id.
                unsafe { write_out(id_out, out) };
            }
            Ok(())
        })
    })
}

/// `saCkptSectionDelete`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptSectionDelete(
    checkpointHandle: SaCkptCheckpointHandleT,
    sectionId: *const SaCkptSectionIdT,
) -> SaAisErrorT {
    boundary(|| {
        // SAFETY: NULL or the caller's readable section id.
        let sid = unsafe { sectionId.as_ref() }.ok_or(invalid_param())?;
        // SAFETY: the id's bytes are the caller's for the call.
        let id = unsafe { section_id(sid) }?;
        with_checkpoint(checkpointHandle, |lib, ckpt, _| {
            lib.ckpt.section_delete(&ckpt, id).map_err(code)
        })
    })
}

/// `saCkptSectionExpirationTimeSet`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptSectionExpirationTimeSet(
    checkpointHandle: SaCkptCheckpointHandleT,
    sectionId: *const SaCkptSectionIdT,
    expirationTime: SaTimeT,
) -> SaAisErrorT {
    boundary(|| {
        // SAFETY: NULL or the caller's readable section id.
        let sid = unsafe { sectionId.as_ref() }.ok_or(invalid_param())?;
        // SAFETY: the id's bytes are the caller's for the call.
        let id = unsafe { section_id(sid) }?;
        with_checkpoint(checkpointHandle, |lib, ckpt, _| {
            lib.ckpt
                .section_expiration_time_set(&ckpt, id, expirationTime)
                .map_err(code)
        })
    })
}

/// `saCkptSectionIterationInitialize`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptSectionIterationInitialize(
    checkpointHandle: SaCkptCheckpointHandleT,
    sectionsChosen: SaCkptSectionsChosenT,
    expirationTime: SaTimeT,
    sectionIterationHandle: *mut SaCkptSectionIterationHandleT,
) -> SaAisErrorT {
    boundary(|| {
        if sectionIterationHandle.is_null() {
            return Err(invalid_param());
        }
        let chosen = SectionsChosen::from_code(sectionsChosen).ok_or(invalid_param())?;
        let handle = with_checkpoint(checkpointHandle, |lib, ckpt, owner| {
            let r = lib
                .ckpt
                .iteration_initialize(&ckpt, chosen, expirationTime)
                .map_err(code)?;
            let owned = Owned {
                owner: Arc::downgrade(owner),
            };
            let Ok(h) = ITERATIONS.insert(Arc::new(owned)) else {
                // Best effort, as in `register`.
                let _ = lib.ckpt.iteration_finalize(r.iteration);
                return Err(code(AisError::NoResources));
            };
            lib.iterations.insert(
                h,
                IterationState {
                    checkpoint: checkpointHandle,
                    exec: r.iteration,
                    ids: Vec::new(),
                },
            );
            if let Some(c) = lib.checkpoints.get_mut(&checkpointHandle) {
                c.iterations.insert(h);
            }
            Ok(h)
        })?;
        // SAFETY: checked non-NULL above; points to a writable handle.
        unsafe { write_out(sectionIterationHandle, handle) };
        Ok(())
    })
}

/// `saCkptSectionIterationNext`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptSectionIterationNext(
    sectionIterationHandle: SaCkptSectionIterationHandleT,
    sectionDescriptor: *mut SaCkptSectionDescriptorT,
) -> SaAisErrorT {
    boundary(|| {
        if sectionDescriptor.is_null() {
            return Err(invalid_param());
        }
        let owner = owner_of(&ITERATIONS, sectionIterationHandle)?;
        let descriptor = locked(&owner, |lib| {
            let st = lib
                .iterations
                .get(&sectionIterationHandle)
                .ok_or(bad_handle())?;
            if st.ids.len() >= MAX_ITERATION_IDS {
                return Err(code(AisError::NoMemory));
            }
            let exec = st.exec;
            let d = lib.ckpt.iteration_next(exec).map_err(code)?;
            let mut id = Vec::with_capacity(d.section_id.len() + 1);
            id.extend_from_slice(&d.section_id);
            id.push(0);
            let id_ptr = id.as_mut_ptr();
            let st = lib
                .iterations
                .get_mut(&sectionIterationHandle)
                .ok_or(bad_handle())?;
            // Moving the Vec keeps its buffer where it is.
            st.ids.push(id);
            Ok(SaCkptSectionDescriptorT {
                sectionId: SaCkptSectionIdT {
                    // Cannot truncate: at most 1024 bytes.
                    idLen: d.section_id.len() as u16,
                    id: id_ptr,
                },
                expirationTime: d.expiration_time_ns,
                sectionSize: d.section_size,
                sectionState: match d.state {
                    SectionState::Valid => SA_CKPT_SECTION_VALID,
                    SectionState::Corrupted => SA_CKPT_SECTION_CORRUPTED,
                },
                lastUpdate: d.last_update_ns,
            })
        })?;
        // SAFETY: checked non-NULL above; points to a writable descriptor.
        unsafe { write_out(sectionDescriptor, descriptor) };
        Ok(())
    })
}

/// `saCkptSectionIterationFinalize`: the ids it handed out are freed.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptSectionIterationFinalize(
    sectionIterationHandle: SaCkptSectionIterationHandleT,
) -> SaAisErrorT {
    boundary(|| {
        let owner = owner_of(&ITERATIONS, sectionIterationHandle)?;
        locked(&owner, |lib| {
            let st = lib
                .iterations
                .get(&sectionIterationHandle)
                .ok_or(bad_handle())?;
            match lib.ckpt.iteration_finalize(st.exec) {
                // BAD_HANDLE: the executive has forgotten it already.
                Ok(()) | Err(AisError::BadHandle) => {}
                Err(e) => return Err(code(e)),
            }
            if let Some(st) = lib.iterations.remove(&sectionIterationHandle) {
                if let Some(c) = lib.checkpoints.get_mut(&st.checkpoint) {
                    c.iterations.remove(&sectionIterationHandle);
                }
            }
            ITERATIONS.remove(sectionIterationHandle);
            Ok(())
        })
    })
}

/// `saCkptCheckpointWrite`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptCheckpointWrite(
    checkpointHandle: SaCkptCheckpointHandleT,
    ioVector: *const SaCkptIOVectorElementT,
    numberOfElements: SaUint32T,
    erroneousVectorIndex: *mut SaUint32T,
) -> SaAisErrorT {
    boundary(|| {
        // SAFETY: NULL or numberOfElements readable elements.
        let v = unsafe { vector(ioVector, numberOfElements) }?;
        let mut elements = Vec::with_capacity(v.len());
        for (i, e) in v.iter().enumerate() {
            // SAFETY: the id's and the data's bytes are the caller's for
            // the call.
            let element = unsafe { section_id(&e.sectionId) }.and_then(|id| {
                if e.dataBuffer.is_null() || e.dataSize == 0 {
                    return Err(invalid_param());
                }
                // SAFETY: as above.
                let data = unsafe { data_slice(e.dataBuffer, e.dataSize) }?;
                Ok(WriteElement {
                    section_id: id,
                    offset: e.dataOffset,
                    data,
                })
            });
            match element {
                Ok(element) => elements.push(element),
                // SAFETY: NULL or the caller's writable index.
                Err(_) => return Err(unsafe { vector_error(at(i), erroneousVectorIndex) }),
            }
        }
        let result = with_checkpoint(checkpointHandle, |lib, ckpt, _| {
            Ok(lib.ckpt.write(&ckpt, &elements))
        })?;
        // SAFETY: NULL or the caller's writable index.
        result.map_err(|e| unsafe { vector_error(e, erroneousVectorIndex) })
    })
}

/// `saCkptSectionOverwrite`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptSectionOverwrite(
    checkpointHandle: SaCkptCheckpointHandleT,
    sectionId: *const SaCkptSectionIdT,
    dataBuffer: *const c_void,
    dataSize: SaSizeT,
) -> SaAisErrorT {
    boundary(|| {
        // SAFETY: NULL or the caller's readable section id.
        let sid = unsafe { sectionId.as_ref() }.ok_or(invalid_param())?;
        // SAFETY: the id's bytes are the caller's for the call.
        let id = unsafe { section_id(sid) }?;
        // SAFETY: NULL or dataSize readable bytes (the contract).
        let data = unsafe { data_slice(dataBuffer, dataSize) }?;
        with_checkpoint(checkpointHandle, |lib, ckpt, _| {
            lib.ckpt.overwrite(&ckpt, id, data).map_err(code)
        })
    })
}

/// `saCkptCheckpointRead`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptCheckpointRead(
    checkpointHandle: SaCkptCheckpointHandleT,
    ioVector: *mut SaCkptIOVectorElementT,
    numberOfElements: SaUint32T,
    erroneousVectorIndex: *mut SaUint32T,
) -> SaAisErrorT {
    boundary(|| {
        // SAFETY: NULL or numberOfElements readable elements.
        let v = unsafe { vector(ioVector, numberOfElements) }?;
        let mut elements = Vec::with_capacity(v.len());
        for (i, e) in v.iter().enumerate() {
            // SAFETY: the id's bytes are the caller's for the call.
            match unsafe { section_id(&e.sectionId) } {
                Ok(id) => elements.push(ReadElement {
                    section_id: id,
                    offset: e.dataOffset,
                    size: (!e.dataBuffer.is_null()).then_some(e.dataSize),
                }),
                // SAFETY: NULL or the caller's writable index.
                Err(_) => return Err(unsafe { vector_error(at(i), erroneousVectorIndex) }),
            }
        }
        let result = with_checkpoint(checkpointHandle, |lib, ckpt, _| {
            Ok(lib.ckpt.read(&ckpt, &elements))
        })?;
        // SAFETY: NULL or the caller's writable index.
        let data = result.map_err(|e| unsafe { vector_error(e, erroneousVectorIndex) })?;
        // Everything that can fail first: the library's buffers.
        let mut buffers = Vec::with_capacity(v.len());
        for (e, d) in v.iter().zip(&data) {
            if e.dataBuffer.is_null() {
                buffers.push(Some(Malloced::new(d.len())?));
            } else if d.len() as u64 > e.dataSize {
                // The library asked for at most dataSize bytes.
                return Err(code(AisError::Library));
            } else {
                buffers.push(None);
            }
        }
        for (i, ((e, d), buffer)) in v.iter().zip(&data).zip(buffers).enumerate() {
            let target = match buffer {
                Some(b) => b.into_raw(),
                None => e.dataBuffer.cast::<u8>(),
            };
            // SAFETY: `target` holds at least d.len() bytes (malloc'd for
            // them, or the caller's buffer of dataSize >= d.len() bytes);
            // ioVector holds numberOfElements > i writable elements.
            unsafe {
                std::ptr::copy_nonoverlapping(d.as_ptr(), target, d.len());
                let slot = ioVector.add(i);
                std::ptr::addr_of_mut!((*slot).readSize).write(d.len() as SaSizeT);
                if e.dataBuffer.is_null() {
                    std::ptr::addr_of_mut!((*slot).dataBuffer).write(target.cast());
                }
            }
        }
        Ok(())
    })
}

/// `saCkptCheckpointSynchronize`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptCheckpointSynchronize(
    checkpointHandle: SaCkptCheckpointHandleT,
    timeout: SaTimeT,
) -> SaAisErrorT {
    boundary(|| {
        let timeout = u64::try_from(timeout).map_err(|_| invalid_param())?;
        with_checkpoint(checkpointHandle, |lib, ckpt, _| {
            lib.ckpt
                .synchronize(&ckpt, Duration::from_nanos(timeout))
                .map_err(code)
        })
    })
}

/// `saCkptCheckpointSynchronizeAsync`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saCkpt.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saCkptCheckpointSynchronizeAsync(
    checkpointHandle: SaCkptCheckpointHandleT,
    invocation: SaInvocationT,
) -> SaAisErrorT {
    boundary(|| {
        with_checkpoint(checkpointHandle, |lib, ckpt, owner| {
            if owner
                .callbacks()
                .saCkptCheckpointSynchronizeCallback
                .is_none()
            {
                return Err(code(AisError::Init));
            }
            lib.ckpt.synchronize_async(&ckpt, invocation).map_err(code)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::types::SA_CKPT_DEFAULT_SECTION_ID;

    #[test]
    fn memory_used_is_clamped_to_32_bits() {
        let a = CreationAttributes {
            creation_flags: 1,
            checkpoint_size: 1 << 40,
            retention_duration_ns: 5,
            max_sections: 3,
            max_section_size: 1 << 20,
            max_section_id_size: 7,
        };
        let d = descriptor(&CheckpointStatus {
            attributes: a,
            number_of_sections: 2,
            memory_used: 1 << 33,
        });
        assert_eq!(d.memoryUsed, u32::MAX);
        assert_eq!(d.numberOfSections, 2);
        assert_eq!(attributes(&d.checkpointCreationAttributes), a);
        let d = descriptor(&CheckpointStatus {
            attributes: a,
            number_of_sections: 0,
            memory_used: 12,
        });
        assert_eq!(d.memoryUsed, 12);
    }

    #[test]
    fn section_ids_and_data_are_checked_before_use() {
        let inval = AisError::InvalidParam.code();
        let mut bytes = *b"abc";
        // SAFETY: every id is empty, or points to live local bytes.
        unsafe {
            assert_eq!(section_id(&SA_CKPT_DEFAULT_SECTION_ID), Ok(&[][..]));
            let null = SaCkptSectionIdT {
                idLen: 3,
                id: std::ptr::null_mut(),
            };
            assert_eq!(section_id(&null), Err(inval));
            let ok = SaCkptSectionIdT {
                idLen: 3,
                id: bytes.as_mut_ptr(),
            };
            assert_eq!(section_id(&ok), Ok(&b"abc"[..]));
            let long = SaCkptSectionIdT {
                idLen: 1025,
                id: bytes.as_mut_ptr(),
            };
            assert_eq!(section_id(&long), Err(inval), "refused before reading");
            assert_eq!(data_slice(std::ptr::null(), 0), Ok(&[][..]));
            assert_eq!(data_slice(std::ptr::null(), 1), Err(inval));
            let big = proto::ckpt::MAX_DATA_BYTES as u64 + 1;
            assert_eq!(data_slice(bytes.as_ptr().cast(), big), Err(inval));
        }
    }

    #[test]
    fn bad_handles_and_null_pointers_are_refused_without_a_daemon() {
        let bad = AisError::BadHandle.code();
        let inval = AisError::InvalidParam.code();
        let h = 7 << 32;
        let mut out = 0u64;
        let mut status = descriptor(&CheckpointStatus {
            attributes: CreationAttributes::ZERO,
            number_of_sections: 0,
            memory_used: 0,
        });
        let name = SaNameT {
            length: 1,
            value: [b'n'; SA_MAX_NAME_LENGTH],
        };
        let mut index = 99u32;
        let element = SaCkptIOVectorElementT {
            sectionId: SA_CKPT_DEFAULT_SECTION_ID,
            dataBuffer: std::ptr::null_mut(),
            dataSize: 1,
            dataOffset: 0,
            readSize: 0,
        };
        let mut elements = [element, element];
        // SAFETY: every pointer is NULL or points to a live local.
        unsafe {
            assert_eq!(saCkptFinalize(0), bad);
            assert_eq!(saCkptDispatch(h, SA_DISPATCH_ALL), bad);
            assert_eq!(saCkptDispatch(h, 0), inval);
            assert_eq!(
                saCkptCheckpointOpen(h, &name, std::ptr::null(), 1, 0, &mut out),
                bad
            );
            assert_eq!(
                saCkptCheckpointOpen(h, std::ptr::null(), std::ptr::null(), 1, 0, &mut out),
                inval
            );
            let empty = SaNameT { length: 0, ..name };
            assert_eq!(
                saCkptCheckpointOpen(h, &empty, std::ptr::null(), 1, 0, &mut out),
                inval
            );
            let long = SaNameT {
                length: 257,
                ..name
            };
            assert_eq!(saCkptCheckpointUnlink(h, &long), inval);
            assert_eq!(saCkptCheckpointClose(h), bad);
            assert_eq!(saCkptCheckpointStatusGet(h, &mut status), bad);
            assert_eq!(saCkptCheckpointStatusGet(h, std::ptr::null_mut()), inval);
            assert_eq!(saCkptCheckpointSynchronize(h, -1), inval);
            assert_eq!(saCkptCheckpointSynchronize(h, 1), bad);
            assert_eq!(saCkptSectionIterationInitialize(h, 6, 0, &mut out), inval);
            assert_eq!(saCkptSectionIterationNext(h, std::ptr::null_mut()), inval);
            assert_eq!(saCkptSectionIterationFinalize(h), bad);
            // A write element without data: refused with its index before
            // the handle is looked up.
            let mut w = elements;
            w[0].dataBuffer = b"x".as_ptr() as *mut c_void;
            assert_eq!(saCkptCheckpointWrite(h, w.as_ptr(), 2, &mut index), inval);
            assert_eq!(index, 1);
            w[1].dataBuffer = w[0].dataBuffer;
            assert_eq!(saCkptCheckpointWrite(h, w.as_ptr(), 2, &mut index), bad);
            assert_eq!(
                saCkptCheckpointRead(h, elements.as_mut_ptr(), 2, &mut index),
                bad
            );
            assert_eq!(
                saCkptCheckpointRead(h, std::ptr::null_mut(), 2, std::ptr::null_mut()),
                inval
            );
            assert_eq!(
                saCkptCheckpointRead(h, std::ptr::null_mut(), 0, &mut index),
                bad
            );
            assert_eq!(index, 1, "not written for an error of no element");
        }
        assert_eq!(out, 0, "no output on failure");
        assert!(elements.iter().all(|e| e.readSize == 0));
    }
}
