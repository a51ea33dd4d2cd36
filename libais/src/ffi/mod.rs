//! The C layer of `libais.so`: `saClm.h`, `saCkpt.h`, `evs.h` and
//! `ais_backup.h` over the safe Rust layer ([`crate::clm`], [`crate::ckpt`],
//! [`crate::evs`], [`crate::backup`]).
//!
//! Thin and mechanical (STYLE rule 13). Every exported function
//! 1. runs its body inside [`boundary`], which catches any panic and
//!    returns `SA_AIS_ERR_LIBRARY` instead, so no panic crosses into C;
//! 2. checks its pointers (NULL: `SA_AIS_ERR_INVALID_PARAM`);
//! 3. looks its handle up in the service's [`HandleTable`] (stale, finalized
//!    or garbage: `SA_AIS_ERR_BAD_HANDLE`);
//! 4. calls the safe layer under the handle's lock;
//! 5. writes its outputs only when the call succeeded (three exceptions the
//!    specification makes: the supported version is written back even when
//!    `*Initialize` fails, `saClmClusterTrack` reports the needed
//!    `numberOfItems` with `SA_AIS_ERR_NO_SPACE`, and a CKPT write or read
//!    that fails because of one element reports its
//!    `erroneousVectorIndex`).
//!
//! # Handles and threads
//! A library handle is an [`Instance`]: the safe-layer object behind a
//! mutex, a copy of the application's callbacks, the selection object, and
//! a wake-up eventfd. Calls on one handle from several threads are
//! serialized by the mutex; callbacks run without it held, so a callback
//! may call the library on its own handle (including `*Finalize`).
//! `*Finalize` removes the handle from the table, marks the instance
//! finalized and raises the wake-up eventfd: a dispatch blocked in another
//! thread returns `SA_AIS_OK`. The connection closes when the last thread
//! using the instance lets go of it.
//!
//! # Dispatch
//! As in openais 0.80: `SA_DISPATCH_ALL` invokes every callback already
//! pending and returns; `SA_DISPATCH_ONE` waits for one callback, invokes
//! it and returns; `SA_DISPATCH_BLOCKING` invokes callbacks as they come
//! until the handle is finalized. A broken connection ends any of them
//! with `SA_AIS_ERR_LIBRARY` (openais said BAD_HANDLE on POLLHUP; the handle
//! is still valid, it is the connection that failed).
//!
//! # Errors that come from the connection
//! The executive not running makes `*Initialize` return
//! `SA_AIS_ERR_TRY_AGAIN` (what openais returned when `connect()` failed, so
//! clients that retry on TRY_AGAIN wait for a starting executive); a broken
//! connection is `SA_AIS_ERR_LIBRARY` on every later call; the executive's
//! TRY_AGAIN (busy, syncing) is passed through.

#![allow(unsafe_code)]

pub mod backup;
pub mod ckpt;
pub mod clm;
pub mod evs;
pub mod handles;
pub mod types;

use std::ffi::{c_uint, c_void};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use proto::AisError;

pub use handles::HandleTable;
use types::{SaSelectionObjectT, SaVersionT, SA_AIS_OK};

/// A C status: `SA_AIS_OK` or an error code (`SaAisErrorT`, `evs_error_t`).
pub type Code = u32;

/// The version every SA Forum library here implements: B.01.01.
pub const SUPPORTED_VERSION: SaVersionT = SaVersionT {
    releaseCode: b'B' as std::ffi::c_char,
    majorVersion: 1,
    minorVersion: 1,
};

/// How long a dispatch sleeps between two wake-ups that found no complete
/// callback (a frame arriving in pieces, or taken by another thread), so
/// that such a wait cannot spin.
const IDLE_WAKEUP_PAUSE: Duration = Duration::from_millis(1);

extern "C" {
    /// The C library's allocator: memory the application frees with
    /// `free()` (the notification array of `saClmClusterTrack`, generated
    /// section ids, buffers of `saCkptCheckpointRead`).
    fn malloc(size: usize) -> *mut c_void;
}

/// How a dispatch call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DispatchMode {
    /// Wait for one callback, invoke it, return.
    One,
    /// Invoke every pending callback, return.
    All,
    /// Invoke callbacks as they come until the handle is finalized.
    Blocking,
}

/// One library handle: the safe-layer object `S` and the application's
/// callbacks `C`.
#[derive(Debug)]
pub struct Instance<S, C> {
    service: Mutex<S>,
    callbacks: C,
    /// A duplicate of the connection's selection object, owned here so it
    /// stays open while any thread uses the instance (a dispatch polls it
    /// without holding the service's lock).
    selection: OwnedFd,
    /// Raised by finalize to wake dispatches blocked in other threads.
    wake: EventFd,
    finalized: AtomicBool,
}

/// Runs an exported function's body: its status, or `SA_AIS_ERR_LIBRARY`
/// if it panicked.
pub fn boundary(body: impl FnOnce() -> Result<(), Code>) -> Code {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => SA_AIS_OK,
        Ok(Err(code)) => code,
        Err(_) => AisError::Library.code(),
    }
}

/// The C code of `error`.
pub fn code(error: AisError) -> Code {
    error.code()
}

/// SA Forum version negotiation for `*Initialize`: the caller's version is
/// served if its release code is 'B' and its major version at most 1.
/// The supported version (B.01.01) is written back in every case.
///
/// # Errors
/// `SA_AIS_ERR_INVALID_PARAM` for NULL; `SA_AIS_ERR_VERSION` otherwise.
///
/// # Safety
/// `version` is NULL or points to a writable `SaVersionT`.
pub unsafe fn negotiate_version(version: *mut SaVersionT) -> Result<(), Code> {
    if version.is_null() {
        return Err(code(AisError::InvalidParam));
    }
    // SAFETY: non-NULL, and the caller passes a pointer to a writable
    // SaVersionT (the function's contract); read and written by value, so
    // alignment and initialization are the caller's struct's.
    let asked = unsafe { version.read() };
    // SAFETY: as above.
    unsafe { version.write(SUPPORTED_VERSION) };
    let served = asked.releaseCode as u8 == b'B' && asked.majorVersion <= 1;
    if served {
        Ok(())
    } else {
        Err(code(AisError::Version))
    }
}

/// Writes `value` to the caller's `out`, which the caller checked is not
/// NULL.
///
/// # Safety
/// `out` must point to writable memory for a `T` (the exported function's
/// contract with its caller).
pub unsafe fn write_out<T>(out: *mut T, value: T) {
    // SAFETY: the function's own contract.
    unsafe { out.write(value) }
}

/// `malloc(count * size_of::<T>())` (at least one `T`, so a successful
/// allocation is never NULL).
///
/// # Errors
/// `SA_AIS_ERR_NO_MEMORY` on overflow or allocation failure.
pub fn malloc_array<T>(count: usize) -> Result<*mut T, Code> {
    let bytes = count
        .max(1)
        .checked_mul(std::mem::size_of::<T>())
        .ok_or(code(AisError::NoMemory))?;
    // SAFETY: malloc has no precondition; the result is checked for NULL
    // and malloc's alignment suits every C object type.
    let p = unsafe { malloc(bytes) }.cast::<T>();
    if p.is_null() {
        Err(code(AisError::NoMemory))
    } else {
        Ok(p)
    }
}

/// The application's callbacks `*p`, copied (the caller may reuse its
/// struct), or none registered if `p` is NULL.
///
/// # Safety
/// `p` is NULL or points to a readable `C`.
pub unsafe fn read_callbacks<C: Default>(p: *const C) -> C {
    if p.is_null() {
        C::default()
    } else {
        // SAFETY: non-NULL; the function's contract.
        unsafe { p.read() }
    }
}

/// The shared tail of every `*Initialize`: wraps `service` in an
/// [`Instance`], enters it in `table` and writes its handle to `out`.
///
/// # Errors
/// `SA_AIS_ERR_NO_RESOURCES` if no descriptor or handle is left.
///
/// # Safety
/// `out` is non-NULL (the caller checked) and points to a writable handle.
pub unsafe fn register_instance<S, C>(
    table: &HandleTable<Instance<S, C>>,
    service: S,
    selection: impl FnOnce(&S) -> BorrowedFd<'_>,
    callbacks: C,
    out: *mut u64,
) -> Result<(), Code> {
    let instance = Instance::new(service, selection, callbacks)?;
    let handle = table
        .insert(std::sync::Arc::new(instance))
        .map_err(|_| code(AisError::NoResources))?;
    // SAFETY: the function's contract.
    unsafe { write_out(out, handle) };
    Ok(())
}

/// The shared body of `saClmSelectionObjectGet` and
/// `saCkptSelectionObjectGet`.
///
/// # Errors
/// `SA_AIS_ERR_INVALID_PARAM` for NULL, `SA_AIS_ERR_BAD_HANDLE` for an
/// unknown handle.
///
/// # Safety
/// `out` is NULL or points to a writable `SaSelectionObjectT`.
pub unsafe fn selection_object_get<S, C>(
    table: &HandleTable<Instance<S, C>>,
    handle: u64,
    out: *mut SaSelectionObjectT,
) -> Result<(), Code> {
    if out.is_null() {
        return Err(code(AisError::InvalidParam));
    }
    let instance = table.get(handle).ok_or(code(AisError::BadHandle))?;
    // A valid descriptor is never negative.
    let fd = SaSelectionObjectT::try_from(instance.selection_fd())
        .map_err(|_| code(AisError::Library))?;
    // SAFETY: checked non-NULL above; the function's contract.
    unsafe { write_out(out, fd) };
    Ok(())
}

/// The shared body of every `*Finalize`: removes `handle` from `table`
/// and finalizes its instance, which it returns.
///
/// # Errors
/// `SA_AIS_ERR_BAD_HANDLE` for an unknown handle.
pub fn finalize_in<S, C>(
    table: &HandleTable<Instance<S, C>>,
    handle: u64,
) -> Result<std::sync::Arc<Instance<S, C>>, Code> {
    let instance = table.remove(handle).ok_or(code(AisError::BadHandle))?;
    instance.finalize();
    Ok(instance)
}

impl DispatchMode {
    /// The mode of the C dispatch flag `flags`, given the API's values
    /// for ONE, ALL and BLOCKING (SA Forum and EVS number them
    /// differently).
    ///
    /// # Errors
    /// `SA_AIS_ERR_INVALID_PARAM` for any other value.
    pub fn from_flags(flags: c_uint, [one, all, blocking]: [c_uint; 3]) -> Result<Self, Code> {
        match flags {
            f if f == one => Ok(DispatchMode::One),
            f if f == all => Ok(DispatchMode::All),
            f if f == blocking => Ok(DispatchMode::Blocking),
            _ => Err(code(AisError::InvalidParam)),
        }
    }
}

impl<S, C> Instance<S, C> {
    /// An instance around `service`; `selection` picks its selection
    /// object, which the instance duplicates.
    ///
    /// # Errors
    /// `SA_AIS_ERR_NO_RESOURCES` if no file descriptor is left.
    pub fn new(
        service: S,
        selection: impl FnOnce(&S) -> BorrowedFd<'_>,
        callbacks: C,
    ) -> Result<Self, Code> {
        let selection = selection(&service)
            .try_clone_to_owned()
            .map_err(|_| code(AisError::NoResources))?;
        let wake = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
            .map_err(|_| code(AisError::NoResources))?;
        Ok(Instance {
            service: Mutex::new(service),
            callbacks,
            selection,
            wake,
            finalized: AtomicBool::new(false),
        })
    }

    /// The application's callbacks.
    pub fn callbacks(&self) -> &C {
        &self.callbacks
    }

    /// The selection object's descriptor.
    pub fn selection_fd(&self) -> RawFd {
        self.selection.as_raw_fd()
    }

    /// Runs `f` on the service object under the handle's lock.
    ///
    /// # Errors
    /// `SA_AIS_ERR_LIBRARY` if an earlier call panicked while holding the
    /// lock (the object may be inconsistent).
    pub fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> Result<R, Code> {
        let mut guard: MutexGuard<'_, S> =
            self.service.lock().map_err(|_| code(AisError::Library))?;
        Ok(f(&mut guard))
    }

    /// Marks the instance finalized and wakes every dispatch blocked on it.
    pub fn finalize(&self) {
        self.finalized.store(true, Ordering::SeqCst);
        // The counter goes from 0 to 1 at most once per finalize; an
        // eventfd write only fails at the counter's maximum, far away.
        let _ = self.wake.write(1);
    }

    /// Whether the instance was finalized.
    pub fn is_finalized(&self) -> bool {
        self.finalized.load(Ordering::SeqCst)
    }

    /// The dispatch loop (see the module docs): `next` takes a callback
    /// without blocking under the lock, `invoke` calls the application
    /// without it.
    ///
    /// # Errors
    /// What `next` returns (a broken connection: LIBRARY).
    pub fn dispatch<B>(
        &self,
        mode: DispatchMode,
        mut next: impl FnMut(&mut S) -> Result<Option<B>, Code>,
        mut invoke: impl FnMut(&C, B),
    ) -> Result<(), Code> {
        let mut idle_wakeups = 0u32;
        loop {
            if self.is_finalized() {
                return Ok(());
            }
            match self.with(&mut next)?? {
                Some(callback) => {
                    idle_wakeups = 0;
                    invoke(&self.callbacks, callback);
                    if mode == DispatchMode::One {
                        return Ok(());
                    }
                }
                None if mode == DispatchMode::All => return Ok(()),
                None => {
                    if idle_wakeups > 0 {
                        std::thread::sleep(IDLE_WAKEUP_PAUSE);
                    }
                    self.wait()?;
                    idle_wakeups = idle_wakeups.saturating_add(1);
                }
            }
        }
    }

    /// Waits until the selection object or the wake-up eventfd is readable.
    fn wait(&self) -> Result<(), Code> {
        loop {
            let mut fds = [
                PollFd::new(self.selection.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.wake.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => {}
                Err(_) => return Err(code(AisError::Library)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_err_library() {
        let c = boundary(|| panic!("deliberate"));
        assert_eq!(c, AisError::Library.code());
        assert_eq!(boundary(|| Ok(())), SA_AIS_OK);
        assert_eq!(boundary(|| Err(30)), 30);
    }

    #[test]
    fn version_negotiation_follows_the_spec() {
        let v = |c: u8, major, minor| SaVersionT {
            releaseCode: c as std::ffi::c_char,
            majorVersion: major,
            minorVersion: minor,
        };
        let bad = AisError::Version.code();
        for (asked, expect) in [
            (v(b'B', 1, 1), Ok(())),
            (v(b'B', 1, 0), Ok(())),
            (v(b'B', 1, 255), Ok(())),
            (v(b'B', 0, 0), Ok(())),
            (v(b'A', 1, 1), Err(bad)),
            (v(b'B', 2, 1), Err(bad)),
            (v(b'C', 255, 255), Err(bad)),
        ] {
            let mut x = asked;
            // SAFETY: points to a live local.
            assert_eq!(unsafe { negotiate_version(&mut x) }, expect, "{asked:?}");
            assert_eq!(x, SUPPORTED_VERSION, "written back for {asked:?}");
        }
        assert_eq!(
            // SAFETY: NULL is allowed.
            unsafe { negotiate_version(std::ptr::null_mut()) },
            Err(AisError::InvalidParam.code())
        );
    }

    #[test]
    fn dispatch_flags_map_per_api_numbering() {
        use types::{
            EVS_DISPATCH_ALL, EVS_DISPATCH_BLOCKING, EVS_DISPATCH_ONE, SA_DISPATCH_ALL,
            SA_DISPATCH_BLOCKING, SA_DISPATCH_ONE,
        };
        let sa = [SA_DISPATCH_ONE, SA_DISPATCH_ALL, SA_DISPATCH_BLOCKING];
        let evs = [EVS_DISPATCH_ONE, EVS_DISPATCH_ALL, EVS_DISPATCH_BLOCKING];
        let modes = [DispatchMode::One, DispatchMode::All, DispatchMode::Blocking];
        for (i, mode) in modes.into_iter().enumerate() {
            assert_eq!(DispatchMode::from_flags(sa[i], sa), Ok(mode));
            assert_eq!(DispatchMode::from_flags(evs[i], evs), Ok(mode));
        }
        let bad = Err(AisError::InvalidParam.code());
        assert_eq!(DispatchMode::from_flags(0, sa), bad);
        assert_eq!(DispatchMode::from_flags(3, evs), bad);
    }

    #[test]
    fn malloc_array_allocates_at_least_one_element() {
        let p = malloc_array::<u64>(0).unwrap();
        assert!(!p.is_null());
        // SAFETY: p came from malloc and is freed once.
        unsafe { free(p.cast()) };
        assert_eq!(
            malloc_array::<u64>(usize::MAX),
            Err(AisError::NoMemory.code())
        );
    }

    extern "C" {
        fn free(p: *mut c_void);
    }
}
