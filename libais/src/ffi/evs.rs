//! `evs.h`: openais's process-group API over [`crate::evs`].
//!
//! Behaviours (see `reference/openais-notes.md` §2.5):
//! - more than 50 groups in one join, leave or mcast_groups call is
//!   `EVS_ERR_TOO_MANY_GROUPS` (30), decided by the library; a negative
//!   count, or a NULL array with a positive count, is
//!   `EVS_ERR_INVALID_PARAM`;
//! - a message is the concatenation of the iovec entries (at most
//!   [`MAX_IOVECS`] of them); above 1 MiB it is `SA_AIS_ERR_TOO_BIG` (26,
//!   an SaAisErrorT the library passes through like the others);
//! - a guarantee outside `EVS_TYPE_UNORDERED..=EVS_TYPE_SAFE` is
//!   `EVS_ERR_INVALID_PARAM`;
//! - `evs_membership_get`: `*member_list_entries` is the capacity of
//!   `member_list` on input and the number of ids written on output
//!   (min(capacity, members)); `member_list` may be NULL only with a
//!   capacity of 0;
//! - a NULL `callbacks` at initialize means no callbacks.

#![allow(unsafe_code)]

use std::ffi::{c_int, c_uint, c_void};
use std::sync::Arc;

use proto::evs::{EvsGuarantee, Group, GROUP_KEY_BYTES};
use proto::AisError;

use super::types::{
    evs_callbacks_t, evs_dispatch_t, evs_error_t, evs_group, evs_guarantee_t, evs_handle_t, iovec,
    EVS_DISPATCH_ALL, EVS_DISPATCH_BLOCKING, EVS_DISPATCH_ONE, EVS_ERR_TOO_MANY_GROUPS,
};
use super::{
    boundary, code, finalize_in, read_callbacks, register_instance, write_out, Code, DispatchMode,
    HandleTable, Instance,
};
use crate::evs::{Evs, EvsCallback, EvsError};

/// Most iovec entries one multicast may gather (Linux's `UIO_MAXIOV`).
pub const MAX_IOVECS: usize = 1024;

/// One EVS library handle.
pub type EvsInstance = Instance<Evs, evs_callbacks_t>;

/// Every live EVS handle.
static HANDLES: HandleTable<EvsInstance> = HandleTable::new();

/// The C code of an EVS error.
pub fn evs_code(error: EvsError) -> Code {
    match error {
        EvsError::Ais(e) => code(e),
        EvsError::TooManyGroups => EVS_ERR_TOO_MANY_GROUPS,
    }
}

fn lookup(handle: evs_handle_t) -> Result<Arc<EvsInstance>, Code> {
    HANDLES.get(handle).ok_or(code(AisError::BadHandle))
}

fn invalid_param() -> Code {
    code(AisError::InvalidParam)
}

/// The groups of a C array, checked.
fn groups(groups: *const evs_group, count: c_int) -> Result<Vec<Group>, Code> {
    let n = usize::try_from(count).map_err(|_| invalid_param())?;
    if n > proto::evs::MAX_GROUPS_PER_CALL {
        return Err(EVS_ERR_TOO_MANY_GROUPS);
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    if groups.is_null() {
        return Err(invalid_param());
    }
    // SAFETY: non-NULL; the caller passes an array of `count` groups (the
    // function's contract); n <= 50 so the slice is small.
    let c: &[evs_group] = unsafe { std::slice::from_raw_parts(groups, n) };
    Ok(c.iter()
        .map(|g| {
            let mut key = [0u8; GROUP_KEY_BYTES];
            for (k, &b) in key.iter_mut().zip(g.key.iter()) {
                *k = b as u8;
            }
            Group(key)
        })
        .collect())
}

/// The message parts of a C iovec array, checked. The slices borrow the
/// caller's memory for the duration of the call.
fn parts<'a>(iov: *const iovec, iov_len: c_int) -> Result<Vec<&'a [u8]>, Code> {
    let n = usize::try_from(iov_len).map_err(|_| invalid_param())?;
    if n > MAX_IOVECS {
        return Err(invalid_param());
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    if iov.is_null() {
        return Err(invalid_param());
    }
    // SAFETY: non-NULL; the caller passes an array of `iov_len` iovecs (the
    // function's contract); n <= MAX_IOVECS.
    let entries: &'a [iovec] = unsafe { std::slice::from_raw_parts(iov, n) };
    let mut total = 0usize;
    let mut out = Vec::with_capacity(n);
    for e in entries {
        if e.iov_len == 0 {
            continue;
        }
        if e.iov_base.is_null() {
            return Err(invalid_param());
        }
        total = total.saturating_add(e.iov_len);
        if total > proto::evs::MAX_MSG_BYTES {
            return Err(code(AisError::TooBig));
        }
        // SAFETY: non-NULL; the caller's iovec describes `iov_len` readable
        // bytes (the function's contract), read during this call only.
        out.push(unsafe { std::slice::from_raw_parts(e.iov_base.cast::<u8>(), e.iov_len) });
    }
    Ok(out)
}

fn guarantee(g: evs_guarantee_t) -> Result<EvsGuarantee, Code> {
    u8::try_from(g)
        .ok()
        .and_then(EvsGuarantee::from_code)
        .ok_or(invalid_param())
}

/// `evs_initialize`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `evs.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn evs_initialize(
    handle: *mut evs_handle_t,
    callbacks: *mut evs_callbacks_t,
) -> evs_error_t {
    boundary(|| {
        if handle.is_null() {
            return Err(invalid_param());
        }
        // SAFETY: the caller passes NULL or a readable evs_callbacks_t.
        let callbacks = unsafe { read_callbacks(callbacks.cast_const()) };
        let evs = Evs::connect().map_err(evs_code)?;
        // SAFETY: checked non-NULL above; points to a writable handle.
        unsafe { register_instance(&HANDLES, evs, Evs::selection, callbacks, handle) }
    })
}

/// `evs_finalize`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `evs.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn evs_finalize(handle: evs_handle_t) -> evs_error_t {
    boundary(|| {
        finalize_in(&HANDLES, handle)?;
        Ok(())
    })
}

/// `evs_fd_get`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `evs.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn evs_fd_get(handle: evs_handle_t, fd: *mut c_int) -> evs_error_t {
    boundary(|| {
        if fd.is_null() {
            return Err(invalid_param());
        }
        let instance = lookup(handle)?;
        // SAFETY: checked non-NULL above; points to a writable int.
        unsafe { write_out(fd, instance.selection_fd()) };
        Ok(())
    })
}

/// `evs_dispatch`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `evs.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn evs_dispatch(
    handle: evs_handle_t,
    dispatch_types: evs_dispatch_t,
) -> evs_error_t {
    boundary(|| {
        let mode = DispatchMode::from_flags(
            dispatch_types,
            [EVS_DISPATCH_ONE, EVS_DISPATCH_ALL, EVS_DISPATCH_BLOCKING],
        )?;
        let instance = lookup(handle)?;
        instance.dispatch(
            mode,
            |evs| evs.next_callback(false).map_err(evs_code),
            invoke,
        )
    })
}

/// `evs_join`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `evs.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn evs_join(
    handle: evs_handle_t,
    groups_: *mut evs_group,
    group_cnt: c_int,
) -> evs_error_t {
    boundary(|| {
        let g = groups(groups_, group_cnt)?;
        let instance = lookup(handle)?;
        instance.with(|evs| evs.join(&g).map_err(evs_code))?
    })
}

/// `evs_leave`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `evs.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn evs_leave(
    handle: evs_handle_t,
    groups_: *mut evs_group,
    group_cnt: c_int,
) -> evs_error_t {
    boundary(|| {
        let g = groups(groups_, group_cnt)?;
        let instance = lookup(handle)?;
        instance.with(|evs| evs.leave(&g).map_err(evs_code))?
    })
}

/// `evs_mcast_joined`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `evs.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn evs_mcast_joined(
    handle: evs_handle_t,
    guarantee_: evs_guarantee_t,
    iovec_: *mut iovec,
    iov_len: c_int,
) -> evs_error_t {
    boundary(|| {
        let g = guarantee(guarantee_)?;
        let msg = parts(iovec_, iov_len)?;
        let instance = lookup(handle)?;
        instance.with(|evs| evs.mcast_joined(g, &msg).map_err(evs_code))?
    })
}

/// `evs_mcast_groups`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `evs.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn evs_mcast_groups(
    handle: evs_handle_t,
    guarantee_: evs_guarantee_t,
    groups_: *mut evs_group,
    group_cnt: c_int,
    iovec_: *mut iovec,
    iov_len: c_int,
) -> evs_error_t {
    boundary(|| {
        let g = guarantee(guarantee_)?;
        let to = groups(groups_, group_cnt)?;
        let msg = parts(iovec_, iov_len)?;
        let instance = lookup(handle)?;
        instance.with(|evs| evs.mcast_groups(g, &to, &msg).map_err(evs_code))?
    })
}

/// `evs_membership_get`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `evs.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn evs_membership_get(
    handle: evs_handle_t,
    local_nodeid: *mut c_uint,
    member_list: *mut c_uint,
    member_list_entries: *mut c_uint,
) -> evs_error_t {
    boundary(|| {
        if local_nodeid.is_null() || member_list_entries.is_null() {
            return Err(invalid_param());
        }
        // SAFETY: non-NULL; the caller passes a readable and writable
        // unsigned int (the function's contract).
        let capacity = unsafe { member_list_entries.read() } as usize;
        if member_list.is_null() && capacity > 0 {
            return Err(invalid_param());
        }
        let instance = lookup(handle)?;
        let m = instance.with(|evs| evs.membership_get().map_err(evs_code))??;
        let n = m.members.len().min(capacity);
        for (i, &id) in m.members[..n].iter().enumerate() {
            // SAFETY: `member_list` holds `capacity` >= n entries (the
            // function's contract), non-NULL since n > 0 implies
            // capacity > 0.
            unsafe { member_list.add(i).write(id) };
        }
        // SAFETY: both checked non-NULL above. n <= capacity fits.
        unsafe {
            write_out(member_list_entries, n as c_uint);
            write_out(local_nodeid, m.local);
        }
        Ok(())
    })
}

/// Calls the application's callback for `callback` (no lock held).
fn invoke(callbacks: &evs_callbacks_t, callback: EvsCallback) {
    match callback {
        EvsCallback::Deliver(d) => {
            let Some(f) = callbacks.evs_deliver_fn else {
                return;
            };
            // The application may write into the message (the prototype is
            // not const): hand it its own copy (no copy when the decoded
            // buffer is not shared).
            let mut msg: Vec<u8> = d.msg.into();
            // Cannot truncate: the decoder caps messages at 1 MiB.
            let len = msg.len() as c_int;
            // SAFETY: the application registered `f` with the
            // evs_deliver_fn_t prototype; `msg` lives until it returns.
            unsafe { f(d.node_id, msg.as_mut_ptr().cast::<c_void>(), len) };
        }
        EvsCallback::ConfChg(c) => {
            let Some(f) = callbacks.evs_confchg_fn else {
                return;
            };
            let (mut members, mut left, mut joined) = (c.members, c.left, c.joined);
            // Cannot truncate: the decoder caps each list at MAX_MEMBERS.
            let (nm, nl, nj) = (
                members.len() as c_int,
                left.len() as c_int,
                joined.len() as c_int,
            );
            // SAFETY: the application registered `f` with the
            // evs_confchg_fn_t prototype; the three lists live until it
            // returns.
            unsafe {
                f(
                    members.as_mut_ptr(),
                    nm,
                    left.as_mut_ptr(),
                    nl,
                    joined.as_mut_ptr(),
                    nj,
                )
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &[u8]) -> evs_group {
        let mut g = evs_group { key: [0; 32] };
        for (k, &b) in g.key.iter_mut().zip(name) {
            *k = b as std::ffi::c_char;
        }
        g
    }

    #[test]
    fn group_arrays_are_checked_and_copied_whole() {
        let gs = [group(b"key1"), group(b"key2")];
        let v = groups(gs.as_ptr(), 2).unwrap();
        assert_eq!(v, vec![Group::named("key1"), Group::named("key2")]);
        assert_eq!(groups(gs.as_ptr(), -1), Err(invalid_param()));
        assert_eq!(groups(std::ptr::null(), 1), Err(invalid_param()));
        assert_eq!(groups(std::ptr::null(), 0), Ok(vec![]));
        let many = vec![group(b"g"); 51];
        assert_eq!(groups(many.as_ptr(), 51), Err(EVS_ERR_TOO_MANY_GROUPS));
    }

    #[test]
    fn iovecs_are_gathered_and_bounded() {
        let a = *b"hello ";
        let b = *b"world";
        let iov = [
            iovec {
                iov_base: a.as_ptr() as *mut c_void,
                iov_len: a.len(),
            },
            iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
            iovec {
                iov_base: b.as_ptr() as *mut c_void,
                iov_len: b.len(),
            },
        ];
        let p = parts(iov.as_ptr(), 3).unwrap();
        assert_eq!(p.concat(), b"hello world");
        let huge = [iovec {
            iov_base: a.as_ptr() as *mut c_void,
            iov_len: (1 << 20) + 1,
        }];
        assert_eq!(parts(huge.as_ptr(), 1), Err(AisError::TooBig.code()));
        let null = [iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 1,
        }];
        assert_eq!(parts(null.as_ptr(), 1), Err(invalid_param()));
        assert_eq!(parts(iov.as_ptr(), -1), Err(invalid_param()));
        assert_eq!(parts(iov.as_ptr(), 1025), Err(invalid_param()));
    }

    #[test]
    fn bad_handles_and_bad_arguments_are_refused_without_a_daemon() {
        let bad = AisError::BadHandle.code();
        let inval = invalid_param();
        let mut fd = -1;
        let (mut local, mut list, mut n) = (0, [0u32; 4], 4u32);
        let mut gs = [group(b"g")];
        // SAFETY: every pointer is NULL or points to a live local.
        unsafe {
            assert_eq!(evs_finalize(0), bad);
            assert_eq!(evs_fd_get(5 << 32, &mut fd), bad);
            assert_eq!(evs_fd_get(5 << 32, std::ptr::null_mut()), inval);
            assert_eq!(fd, -1, "no output on failure");
            assert_eq!(evs_dispatch(5 << 32, EVS_DISPATCH_ALL), bad);
            assert_eq!(evs_dispatch(5 << 32, 3), inval);
            assert_eq!(evs_join(5 << 32, gs.as_mut_ptr(), 1), bad);
            assert_eq!(evs_leave(5 << 32, gs.as_mut_ptr(), 1), bad);
            assert_eq!(
                evs_join(5 << 32, gs.as_mut_ptr(), 51),
                EVS_ERR_TOO_MANY_GROUPS
            );
            assert_eq!(evs_mcast_joined(5 << 32, 2, std::ptr::null_mut(), 0), bad);
            assert_eq!(evs_mcast_joined(5 << 32, 4, std::ptr::null_mut(), 0), inval);
            assert_eq!(
                evs_mcast_groups(5 << 32, 2, gs.as_mut_ptr(), 1, std::ptr::null_mut(), 0),
                bad
            );
            assert_eq!(
                evs_membership_get(5 << 32, &mut local, list.as_mut_ptr(), &mut n),
                bad
            );
            assert_eq!(
                evs_membership_get(5 << 32, std::ptr::null_mut(), list.as_mut_ptr(), &mut n),
                inval
            );
            assert_eq!(n, 4, "no output on failure");
            assert_eq!(
                evs_initialize(std::ptr::null_mut(), std::ptr::null_mut()),
                inval
            );
        }
    }
}
