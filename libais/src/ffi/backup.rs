//! `ais_backup.h`: the BACKUP service over [`crate::backup`].
//!
//! Thin like the other services (see [`super`]): the job runs in the
//! executive, files are checked and restored by the safe layer. What this
//! layer adds is memory: the strings and arrays of `AisBackupStatusT` and
//! `AisBackupVerifyReportT` come from `malloc()` and go back through the
//! `*Free` functions, so a C program never frees library memory with a
//! different allocator.
//!
//! Behaviours the header leaves to us:
//! - `aisBackupStart` without a completion callback is `SA_AIS_ERR_INIT`
//!   (the end of the job would have nowhere to go); a destination that is
//!   NULL, relative, not UTF-8 or longer than `AIS_BACKUP_MAX_PATH_LENGTH`,
//!   more than `AIS_BACKUP_MAX_CHECKPOINTS` names, or an empty or oversized
//!   name is `SA_AIS_ERR_INVALID_PARAM`.
//! - `aisBackupVerify` fills its report on `SA_AIS_OK` and on
//!   `SA_AIS_ERR_FAILED_OPERATION` (bad data files), the one failure whose
//!   details the caller needs.
//! - `aisBackupRestore` does not hold the handle's lock while it runs (a
//!   restore takes as long as its data): other threads may use the handle.
//! - Text from the executive with an interior NUL is cut at the NUL.

#![allow(unsafe_code, non_snake_case)]

use std::ffi::{c_char, c_void, CStr};
use std::path::Path;
use std::sync::Arc;

use proto::backup::{Completion, JobStatus, MAX_CHECKPOINTS, MAX_NAME_BYTES, MAX_PATH_BYTES};
use proto::{status_code, AisError};

use super::types::{
    AisBackupCallbacksT, AisBackupFailedCheckpointT, AisBackupFileErrorT, AisBackupHandleT,
    AisBackupIdT, AisBackupNodeErrorT, AisBackupRestoreReportT, AisBackupStatusT,
    AisBackupVerifyReportT, SaAisErrorT, SaBoolT, SaDispatchFlagsT, SaInvocationT, SaNameT,
    SaSelectionObjectT, SaUint32T, SaVersionT, AIS_BACKUP_FILE_CRC, AIS_BACKUP_FILE_SIZE,
    AIS_BACKUP_FILE_UNREADABLE, AIS_BACKUP_FILE_UNSAFE_PATH, SA_DISPATCH_ALL, SA_DISPATCH_BLOCKING,
    SA_DISPATCH_ONE, SA_FALSE, SA_MAX_NAME_LENGTH, SA_TRUE,
};
use super::{
    boundary, code, finalize_in, malloc_array, negotiate_version, read_callbacks,
    register_instance, selection_object_get, write_out, Code, DispatchMode, HandleTable, Instance,
};
use crate::backup::{
    restore, verify, Backup, BackupCallback, BackupFileError, FileProblem, RestoreError,
    RestoreOptions, VerifyReport,
};
use crate::client::ClientConfig;

/// One BACKUP library handle.
pub type BackupInstance = Instance<Backup, AisBackupCallbacksT>;

/// Every live BACKUP handle.
static HANDLES: HandleTable<BackupInstance> = HandleTable::new();

extern "C" {
    /// Releases what [`malloc_array`] and [`c_string`] allocated.
    fn free(p: *mut c_void);
}

fn lookup(handle: AisBackupHandleT) -> Result<Arc<BackupInstance>, Code> {
    HANDLES.get(handle).ok_or(code(AisError::BadHandle))
}

fn invalid_param() -> Code {
    code(AisError::InvalidParam)
}

// ----- memory handed to C ----------------------------------------------------

/// `text` as a NUL-terminated `malloc()` string, cut at an interior NUL.
fn c_string(text: &str) -> Result<*mut c_char, Code> {
    let bytes = text.as_bytes();
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let p = malloc_array::<u8>(len + 1)?;
    // SAFETY: `p` holds len + 1 bytes (malloc_array), `bytes` at least len.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, len);
        p.add(len).write(0);
    }
    Ok(p.cast())
}

/// `malloc()` array of `items` converted by `f`; on an error, what was
/// converted is released by `release`.
fn c_array<T, U>(
    items: &[T],
    f: impl Fn(&T) -> Result<U, Code>,
    release: impl Fn(&mut U),
) -> Result<*mut U, Code> {
    let p = malloc_array::<U>(items.len())?;
    for (i, item) in items.iter().enumerate() {
        match f(item) {
            // SAFETY: i < items.len() <= the array's length.
            Ok(v) => unsafe { p.add(i).write(v) },
            Err(e) => {
                for j in 0..i {
                    // SAFETY: elements 0..i were written above.
                    release(unsafe { &mut *p.add(j) });
                }
                // SAFETY: from malloc_array, released once.
                unsafe { free(p.cast()) };
                return Err(e);
            }
        }
    }
    Ok(p)
}

/// Releases the strings and arrays of `st` and nulls them (zero counts).
fn release_status(st: &mut AisBackupStatusT) {
    for s in [&mut st.destination, &mut st.directory, &mut st.reason] {
        // SAFETY: NULL or from c_string; nulled after, so released once.
        unsafe { free(s.cast()) };
        *s = std::ptr::null_mut();
    }
    if !st.failed.is_null() {
        for i in 0..st.numberOfFailed as usize {
            // SAFETY: numberOfFailed elements were written by status_to_c.
            unsafe { free((*st.failed.add(i)).message.cast()) };
        }
        // SAFETY: from malloc_array.
        unsafe { free(st.failed.cast()) };
    }
    if !st.errors.is_null() {
        for i in 0..st.numberOfErrors as usize {
            // SAFETY: numberOfErrors elements were written by status_to_c.
            unsafe { free((*st.errors.add(i)).message.cast()) };
        }
        // SAFETY: from malloc_array.
        unsafe { free(st.errors.cast()) };
    }
    st.failed = std::ptr::null_mut();
    st.errors = std::ptr::null_mut();
    st.numberOfFailed = 0;
    st.numberOfErrors = 0;
}

fn sa_name(bytes: &[u8]) -> SaNameT {
    let mut name = SaNameT {
        length: 0,
        value: [0; SA_MAX_NAME_LENGTH],
    };
    let n = bytes.len().min(SA_MAX_NAME_LENGTH);
    name.value[..n].copy_from_slice(&bytes[..n]);
    // n <= 256 fits.
    name.length = n as u16;
    name
}

fn count(n: usize) -> Result<SaUint32T, Code> {
    SaUint32T::try_from(n).map_err(|_| code(AisError::NoMemory))
}

/// A C status of `job`; on an error nothing stays allocated.
fn status_to_c(job: &JobStatus) -> Result<AisBackupStatusT, Code> {
    let mut st = AisBackupStatusT {
        backupId: job.backup_id,
        phase: job.phase as u32,
        masterNodeId: job.master,
        destination: std::ptr::null_mut(),
        directory: std::ptr::null_mut(),
        checkpointsTotal: job.checkpoints_total,
        checkpointsDone: job.checkpoints_done,
        bytesTotal: job.bytes_total,
        bytesDone: job.bytes_done,
        reason: std::ptr::null_mut(),
        numberOfFailed: 0,
        failed: std::ptr::null_mut(),
        numberOfErrors: 0,
        errors: std::ptr::null_mut(),
    };
    let filled = (|| {
        st.destination = c_string(&job.destination)?;
        st.directory = c_string(&job.directory)?;
        st.reason = c_string(&job.reason)?;
        let release_failed = |f: &mut AisBackupFailedCheckpointT| {
            // SAFETY: from c_string, released once.
            unsafe { free(f.message.cast()) }
        };
        st.failed = c_array(
            &job.failed,
            |f| {
                Ok(AisBackupFailedCheckpointT {
                    checkpointName: sa_name(&f.name),
                    errorClass: f.class as u32,
                    message: c_string(&f.message)?,
                })
            },
            release_failed,
        )?;
        st.numberOfFailed = count(job.failed.len())?;
        let release_error = |e: &mut AisBackupNodeErrorT| {
            // SAFETY: from c_string, released once.
            unsafe { free(e.message.cast()) }
        };
        st.errors = c_array(
            &job.errors,
            |e| {
                Ok(AisBackupNodeErrorT {
                    nodeId: e.node,
                    errorClass: e.class as u32,
                    message: c_string(&e.message)?,
                })
            },
            release_error,
        )?;
        st.numberOfErrors = count(job.errors.len())?;
        Ok(())
    })();
    match filled {
        Ok(()) => Ok(st),
        Err(e) => {
            release_status(&mut st);
            Err(e)
        }
    }
}

// ----- handle life -----------------------------------------------------------

/// `aisBackupInitialize`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `ais_backup.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn aisBackupInitialize(
    backupHandle: *mut AisBackupHandleT,
    backupCallbacks: *const AisBackupCallbacksT,
    version: *mut SaVersionT,
) -> SaAisErrorT {
    boundary(|| {
        // SAFETY: the caller passes NULL or a writable SaVersionT.
        unsafe { negotiate_version(version) }?;
        if backupHandle.is_null() {
            return Err(invalid_param());
        }
        // SAFETY: the caller passes NULL or a readable AisBackupCallbacksT.
        let callbacks = unsafe { read_callbacks(backupCallbacks) };
        let backup = Backup::connect().map_err(code)?;
        // SAFETY: checked non-NULL above; points to a writable handle.
        unsafe { register_instance(&HANDLES, backup, Backup::selection, callbacks, backupHandle) }
    })
}

/// `aisBackupSelectionObjectGet`.
///
/// # Safety
/// As [`aisBackupInitialize`].
#[no_mangle]
pub unsafe extern "C" fn aisBackupSelectionObjectGet(
    backupHandle: AisBackupHandleT,
    selectionObject: *mut SaSelectionObjectT,
) -> SaAisErrorT {
    boundary(|| {
        // SAFETY: the caller passes NULL or a writable SaSelectionObjectT.
        unsafe { selection_object_get(&HANDLES, backupHandle, selectionObject) }
    })
}

/// `aisBackupDispatch`.
///
/// # Safety
/// As [`aisBackupInitialize`].
#[no_mangle]
pub unsafe extern "C" fn aisBackupDispatch(
    backupHandle: AisBackupHandleT,
    dispatchFlags: SaDispatchFlagsT,
) -> SaAisErrorT {
    boundary(|| {
        let mode = DispatchMode::from_flags(
            dispatchFlags,
            [SA_DISPATCH_ONE, SA_DISPATCH_ALL, SA_DISPATCH_BLOCKING],
        )?;
        let instance = lookup(backupHandle)?;
        instance.dispatch(
            mode,
            |b| b.next_callback(false).map_err(code),
            invoke_callback,
        )
    })
}

/// Hands one callback to the application. A completion whose status
/// cannot be allocated is dropped: there is no one to tell.
fn invoke_callback(callbacks: &AisBackupCallbacksT, callback: BackupCallback) {
    let BackupCallback::Complete(Completion {
        invocation,
        status,
        job,
    }) = callback;
    let Some(f) = callbacks.aisBackupCompletionCallback else {
        return;
    };
    let Ok(mut st) = status_to_c(&job) else {
        return;
    };
    // SAFETY: the application's callback, given a status that lives until
    // it returns.
    unsafe { f(invocation, status_code(status), &st) };
    release_status(&mut st);
}

/// `aisBackupFinalize`.
///
/// # Safety
/// As [`aisBackupInitialize`].
#[no_mangle]
pub unsafe extern "C" fn aisBackupFinalize(backupHandle: AisBackupHandleT) -> SaAisErrorT {
    boundary(|| finalize_in(&HANDLES, backupHandle).map(|_| ()))
}

// ----- jobs ------------------------------------------------------------------

/// A C path argument, checked: non-NULL, UTF-8, at most `MAX_PATH_BYTES`.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string.
unsafe fn path_arg<'a>(p: *const c_char) -> Result<&'a str, Code> {
    if p.is_null() {
        return Err(invalid_param());
    }
    // SAFETY: non-NULL and NUL-terminated (the caller's contract).
    let s = unsafe { CStr::from_ptr(p) };
    let s = s.to_str().map_err(|_| invalid_param())?;
    if s.is_empty() || s.len() > MAX_PATH_BYTES {
        return Err(invalid_param());
    }
    Ok(s)
}

/// `aisBackupStart`.
///
/// # Safety
/// As [`aisBackupInitialize`]; `checkpointNames` is NULL or points to
/// `numberOfCheckpoints` readable names.
#[no_mangle]
pub unsafe extern "C" fn aisBackupStart(
    backupHandle: AisBackupHandleT,
    invocation: SaInvocationT,
    destination: *const c_char,
    checkpointNames: *const SaNameT,
    numberOfCheckpoints: SaUint32T,
    backupId: *mut AisBackupIdT,
) -> SaAisErrorT {
    boundary(|| {
        let instance = lookup(backupHandle)?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let dest = unsafe { path_arg(destination) }?;
        if !dest.starts_with('/') || backupId.is_null() {
            return Err(invalid_param());
        }
        let n = numberOfCheckpoints as usize;
        if n > MAX_CHECKPOINTS || (n > 0 && checkpointNames.is_null()) {
            return Err(invalid_param());
        }
        let names: &[SaNameT] = if n == 0 {
            &[]
        } else {
            // SAFETY: non-NULL; the caller passes an array of n names, and
            // n <= MAX_CHECKPOINTS keeps the slice bounded.
            unsafe { std::slice::from_raw_parts(checkpointNames, n) }
        };
        let mut bytes = Vec::with_capacity(n);
        for name in names {
            let len = usize::from(name.length);
            if len == 0 || len > SA_MAX_NAME_LENGTH.min(MAX_NAME_BYTES) {
                return Err(invalid_param());
            }
            bytes.push(&name.value[..len]);
        }
        if instance.callbacks().aisBackupCompletionCallback.is_none() {
            return Err(code(AisError::Init));
        }
        let id = instance
            .with(|b| b.start(invocation, Path::new(dest), &bytes))?
            .map_err(code)?;
        // SAFETY: checked non-NULL above; the caller's writable id.
        unsafe { write_out(backupId, id) };
        Ok(())
    })
}

/// `aisBackupStatusGet`.
///
/// # Safety
/// As [`aisBackupInitialize`].
#[no_mangle]
pub unsafe extern "C" fn aisBackupStatusGet(
    backupHandle: AisBackupHandleT,
    backupId: AisBackupIdT,
    status: *mut AisBackupStatusT,
) -> SaAisErrorT {
    boundary(|| {
        if status.is_null() {
            return Err(invalid_param());
        }
        let instance = lookup(backupHandle)?;
        let job = instance.with(|b| b.status(backupId))?.map_err(code)?;
        let st = status_to_c(&job)?;
        // SAFETY: checked non-NULL; the caller's writable status.
        unsafe { write_out(status, st) };
        Ok(())
    })
}

/// `aisBackupStatusFree`.
///
/// # Safety
/// `status` is NULL or a status filled by this library and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn aisBackupStatusFree(status: *mut AisBackupStatusT) {
    let _ = boundary(|| {
        if !status.is_null() {
            // SAFETY: the caller's contract.
            release_status(unsafe { &mut *status });
        }
        Ok(())
    });
}

/// `aisBackupListGet`.
///
/// # Safety
/// As [`aisBackupInitialize`].
#[no_mangle]
pub unsafe extern "C" fn aisBackupListGet(
    backupHandle: AisBackupHandleT,
    jobs: *mut *mut AisBackupStatusT,
    numberOfJobs: *mut SaUint32T,
) -> SaAisErrorT {
    boundary(|| {
        if jobs.is_null() || numberOfJobs.is_null() {
            return Err(invalid_param());
        }
        let instance = lookup(backupHandle)?;
        let list = instance.with(|b| b.list())?.map_err(code)?;
        let n = count(list.len())?;
        let array = c_array(&list, status_to_c, release_status)?;
        // SAFETY: both checked non-NULL; the caller's writable outputs.
        unsafe {
            write_out(jobs, array);
            write_out(numberOfJobs, n);
        }
        Ok(())
    })
}

/// `aisBackupListFree`.
///
/// # Safety
/// `jobs` is NULL or an array of `numberOfJobs` statuses from
/// [`aisBackupListGet`], not yet freed.
#[no_mangle]
pub unsafe extern "C" fn aisBackupListFree(jobs: *mut AisBackupStatusT, numberOfJobs: SaUint32T) {
    let _ = boundary(|| {
        if jobs.is_null() {
            return Ok(());
        }
        for i in 0..numberOfJobs as usize {
            // SAFETY: the caller's contract: numberOfJobs live statuses.
            release_status(unsafe { &mut *jobs.add(i) });
        }
        // SAFETY: from malloc_array in aisBackupListGet.
        unsafe { free(jobs.cast()) };
        Ok(())
    });
}

// ----- files -----------------------------------------------------------------

/// The C code of a backup that cannot be read at all.
fn file_error_code(e: &BackupFileError) -> Code {
    match e {
        BackupFileError::Io { source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => code(AisError::NotExist),
            std::io::ErrorKind::PermissionDenied => code(AisError::Access),
            _ => code(AisError::FailedOperation),
        },
        BackupFileError::Format { .. } => code(AisError::FailedOperation),
    }
}

fn release_file_error(e: &mut AisBackupFileErrorT) {
    // SAFETY: from c_string, released once (then nulled).
    unsafe {
        free(e.file.cast());
        free(e.message.cast());
    }
    e.file = std::ptr::null_mut();
    e.message = std::ptr::null_mut();
}

fn file_error_to_c((file, problem): &(String, FileProblem)) -> Result<AisBackupFileErrorT, Code> {
    let (kind, expected, actual) = match problem {
        FileProblem::UnsafePath => (AIS_BACKUP_FILE_UNSAFE_PATH, 0, 0),
        FileProblem::Unreadable(_) => (AIS_BACKUP_FILE_UNREADABLE, 0, 0),
        FileProblem::Size { expected, actual } => (AIS_BACKUP_FILE_SIZE, *expected, *actual),
        FileProblem::Crc { expected, actual } => (
            AIS_BACKUP_FILE_CRC,
            u64::from(*expected),
            u64::from(*actual),
        ),
    };
    let file = c_string(file)?;
    let message = c_string(&problem.to_string()).inspect_err(|_| {
        // SAFETY: just allocated, released once.
        unsafe { free(file.cast()) }
    })?;
    Ok(AisBackupFileErrorT {
        file,
        problem: kind,
        expected,
        actual,
        message,
    })
}

fn report_to_c(r: &VerifyReport) -> Result<AisBackupVerifyReportT, Code> {
    let problems = c_array(&r.problems, file_error_to_c, release_file_error)?;
    Ok(AisBackupVerifyReportT {
        backupId: r.manifest.backup_id,
        numberOfCheckpoints: count(r.manifest.entries.len())?,
        filesChecked: r.files_checked as u64,
        bytesChecked: r.bytes_checked,
        numberOfProblems: count(r.problems.len())?,
        problems,
    })
}

/// `aisBackupVerify`.
///
/// # Safety
/// As [`aisBackupInitialize`]; `directory` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn aisBackupVerify(
    backupHandle: AisBackupHandleT,
    directory: *const c_char,
    report: *mut AisBackupVerifyReportT,
) -> SaAisErrorT {
    boundary(|| {
        lookup(backupHandle)?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let dir = unsafe { path_arg(directory) }?;
        if report.is_null() {
            return Err(invalid_param());
        }
        let r = verify(Path::new(dir)).map_err(|e| file_error_code(&e))?;
        let c = report_to_c(&r)?;
        // SAFETY: checked non-NULL; the caller's writable report.
        unsafe { write_out(report, c) };
        if r.is_ok() {
            Ok(())
        } else {
            Err(code(AisError::FailedOperation))
        }
    })
}

/// `aisBackupVerifyReportFree`.
///
/// # Safety
/// `report` is NULL or a report filled by [`aisBackupVerify`], not yet
/// freed.
#[no_mangle]
pub unsafe extern "C" fn aisBackupVerifyReportFree(report: *mut AisBackupVerifyReportT) {
    let _ = boundary(|| {
        if report.is_null() {
            return Ok(());
        }
        // SAFETY: the caller's contract.
        let r = unsafe { &mut *report };
        if !r.problems.is_null() {
            for i in 0..r.numberOfProblems as usize {
                // SAFETY: numberOfProblems elements were written.
                release_file_error(unsafe { &mut *r.problems.add(i) });
            }
            // SAFETY: from malloc_array.
            unsafe { free(r.problems.cast()) };
        }
        r.problems = std::ptr::null_mut();
        r.numberOfProblems = 0;
        Ok(())
    });
}

/// `aisBackupRestore`.
///
/// # Safety
/// As [`aisBackupInitialize`]; `directory` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn aisBackupRestore(
    backupHandle: AisBackupHandleT,
    directory: *const c_char,
    overwrite: SaBoolT,
    report: *mut AisBackupRestoreReportT,
) -> SaAisErrorT {
    boundary(|| {
        lookup(backupHandle)?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let dir = unsafe { path_arg(directory) }?;
        let overwrite = match overwrite {
            SA_TRUE => true,
            SA_FALSE => false,
            _ => return Err(invalid_param()),
        };
        let done = restore(
            &ClientConfig::default(),
            Path::new(dir),
            RestoreOptions { overwrite },
            &mut |_| {},
        )
        .map_err(|e| match e {
            RestoreError::File(f) => file_error_code(&f),
            RestoreError::Verify(_) | RestoreError::Mismatch { .. } => {
                code(AisError::FailedOperation)
            }
            RestoreError::Exists(_) => code(AisError::Exist),
            RestoreError::Cluster { error, .. } => code(error),
        })?;
        if !report.is_null() {
            let r = AisBackupRestoreReportT {
                backupId: done.manifest.backup_id,
                checkpointsRestored: count(done.checkpoints)?,
                bytesRestored: done.bytes,
                checkpointsReplaced: count(done.replaced.len())?,
            };
            // SAFETY: non-NULL; the caller's writable report.
            unsafe { write_out(report, r) };
        }
        Ok(())
    })
}
