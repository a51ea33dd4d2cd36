//! `saClm.h`: the SA Forum cluster membership API over [`crate::clm`].
//!
//! Behaviours chosen where the specification leaves room or openais 0.80
//! differs (see `reference/openais-notes.md` §2.2):
//! - `saClmClusterTrack`: CHANGES with CHANGES_ONLY, no flag, or an
//!   unknown bit is `SA_AIS_ERR_BAD_FLAGS`; a buffer whose `notification`
//!   is set but whose `numberOfItems` is 0 is `SA_AIS_ERR_INVALID_PARAM`;
//!   without a track callback, a NULL buffer or a CHANGES/CHANGES_ONLY
//!   request is `SA_AIS_ERR_INIT`. With CURRENT and a buffer whose
//!   `notification` is NULL, the library allocates the array with
//!   `malloc()` (the caller frees it with `free()`); with a caller array
//!   too small for the membership the call fails with
//!   `SA_AIS_ERR_NO_SPACE` and sets `numberOfItems` to the number needed
//!   (the specification; openais silently truncated), and tracking is put
//!   back as it was before the call. CURRENT with a NULL buffer delivers
//!   the membership as a track callback.
//! - `saClmClusterNodeGet`: a timeout of 0 is `SA_AIS_ERR_TIMEOUT`, a
//!   negative one `SA_AIS_ERR_INVALID_PARAM`; an unknown node is
//!   `SA_AIS_ERR_NOT_EXIST` (the specification; openais answered OK with an
//!   unfilled record).
//! - `saClmClusterNodeGetAsync` without a node-get callback is
//!   `SA_AIS_ERR_INIT`; the callback of an unknown node carries
//!   `SA_AIS_ERR_NOT_EXIST` and a zeroed node.
//! - Track callbacks pass the membership's size as `numberOfMembers` (the
//!   spec; openais passed the entry count). Because openais clients loop
//!   up to `numberOfMembers`, the array always has at least that many
//!   entries, those past `numberOfItems` zeroed.
//! - A NULL `clmCallbacks` at initialize means no callbacks.

#![allow(unsafe_code, non_snake_case)]

use std::sync::Arc;
use std::time::Duration;

use proto::clm::{AddressFamily, ClusterChange, ClusterNode, Notification, TrackReply};
use proto::{status_code, AisError};

use super::types::{
    SaAisErrorT, SaClmCallbacksT, SaClmClusterNodeT, SaClmClusterNotificationBufferT,
    SaClmClusterNotificationT, SaClmHandleT, SaClmNodeAddressT, SaClmNodeIdT, SaDispatchFlagsT,
    SaInvocationT, SaNameT, SaSelectionObjectT, SaTimeT, SaUint8T, SaVersionT, SA_CLM_AF_INET,
    SA_CLM_AF_INET6, SA_CLM_MAX_ADDRESS_LENGTH, SA_CLM_NODE_JOINED, SA_CLM_NODE_LEFT,
    SA_CLM_NODE_NO_CHANGE, SA_CLM_NODE_RECONFIGURED, SA_DISPATCH_ALL, SA_DISPATCH_BLOCKING,
    SA_DISPATCH_ONE, SA_FALSE, SA_MAX_NAME_LENGTH, SA_TRACK_CHANGES, SA_TRACK_CHANGES_ONLY,
    SA_TRACK_CURRENT, SA_TRUE,
};
use super::{
    boundary, code, finalize_in, malloc_array, negotiate_version, read_callbacks,
    register_instance, selection_object_get, write_out, Code, DispatchMode, HandleTable, Instance,
};
use crate::clm::{check_track_flags, Clm, ClmCallback};

/// One CLM library handle.
pub type ClmInstance = Instance<Clm, SaClmCallbacksT>;

/// Every live CLM handle.
static HANDLES: HandleTable<ClmInstance> = HandleTable::new();

/// A node record with every field zero (handed to a node-get callback that
/// reports an error).
const EMPTY_NODE: SaClmClusterNodeT = SaClmClusterNodeT {
    nodeId: 0,
    nodeAddress: SaClmNodeAddressT {
        family: 0,
        length: 0,
        value: [0; SA_CLM_MAX_ADDRESS_LENGTH],
    },
    nodeName: SaNameT {
        length: 0,
        value: [0; SA_MAX_NAME_LENGTH],
    },
    member: SA_FALSE,
    bootTimestamp: 0,
    initialViewNumber: 0,
};

/// A notification with every field zero (padding, see [`invoke`]).
const EMPTY_NOTIFICATION: SaClmClusterNotificationT = SaClmClusterNotificationT {
    clusterNode: EMPTY_NODE,
    clusterChange: 0,
};

fn lookup(handle: SaClmHandleT) -> Result<Arc<ClmInstance>, Code> {
    HANDLES.get(handle).ok_or(code(AisError::BadHandle))
}

fn invalid_param() -> Code {
    code(AisError::InvalidParam)
}

/// `saClmInitialize`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saClm.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saClmInitialize(
    clmHandle: *mut SaClmHandleT,
    clmCallbacks: *const SaClmCallbacksT,
    version: *mut SaVersionT,
) -> SaAisErrorT {
    boundary(|| {
        // SAFETY: the caller passes NULL or a writable SaVersionT.
        unsafe { negotiate_version(version) }?;
        if clmHandle.is_null() {
            return Err(invalid_param());
        }
        // SAFETY: the caller passes NULL or a readable SaClmCallbacksT.
        let callbacks = unsafe { read_callbacks(clmCallbacks) };
        let clm = Clm::connect().map_err(code)?;
        // SAFETY: checked non-NULL above; points to a writable handle.
        unsafe { register_instance(&HANDLES, clm, Clm::selection, callbacks, clmHandle) }
    })
}

/// `saClmSelectionObjectGet`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saClm.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saClmSelectionObjectGet(
    clmHandle: SaClmHandleT,
    selectionObject: *mut SaSelectionObjectT,
) -> SaAisErrorT {
    boundary(|| {
        // SAFETY: the caller passes NULL or a writable SaSelectionObjectT.
        unsafe { selection_object_get(&HANDLES, clmHandle, selectionObject) }
    })
}

/// `saClmDispatch`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saClm.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saClmDispatch(
    clmHandle: SaClmHandleT,
    dispatchFlags: SaDispatchFlagsT,
) -> SaAisErrorT {
    boundary(|| {
        let mode = DispatchMode::from_flags(
            dispatchFlags,
            [SA_DISPATCH_ONE, SA_DISPATCH_ALL, SA_DISPATCH_BLOCKING],
        )?;
        let instance = lookup(clmHandle)?;
        instance.dispatch(mode, |clm| clm.next_callback(false).map_err(code), invoke)
    })
}

/// `saClmFinalize`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saClm.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saClmFinalize(clmHandle: SaClmHandleT) -> SaAisErrorT {
    boundary(|| {
        finalize_in(&HANDLES, clmHandle)?;
        Ok(())
    })
}

/// `saClmClusterTrack`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saClm.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saClmClusterTrack(
    clmHandle: SaClmHandleT,
    trackFlags: SaUint8T,
    notificationBuffer: *mut SaClmClusterNotificationBufferT,
) -> SaAisErrorT {
    boundary(|| {
        let instance = lookup(clmHandle)?;
        check_track_flags(trackFlags).map_err(code)?;
        let buffer = if notificationBuffer.is_null() {
            None
        } else {
            // SAFETY: non-NULL; the caller passes a readable and writable
            // buffer descriptor (the function's contract).
            Some(unsafe { notificationBuffer.read() })
        };
        if let Some(b) = &buffer {
            if !b.notification.is_null() && b.numberOfItems == 0 {
                return Err(invalid_param());
            }
        }
        let changes = trackFlags & (SA_TRACK_CHANGES | SA_TRACK_CHANGES_ONLY) != 0;
        let has_callback = instance.callbacks().saClmClusterTrackCallback.is_some();
        if !has_callback && (buffer.is_none() || changes) {
            return Err(code(AisError::Init));
        }
        let current = trackFlags & SA_TRACK_CURRENT != 0;
        let into_buffer = current && buffer.is_some();
        instance.with(|clm| {
            let before = clm.tracking();
            let reply = clm
                .track(trackFlags, current && !into_buffer)
                .map_err(code)?;
            let (Some(reply), Some(b)) = (reply, buffer) else {
                return Ok(());
            };
            let filled = fill_buffer(notificationBuffer, b, &reply);
            if filled.is_err() {
                // The call fails: leave tracking as it was. If that fails
                // too the connection is broken, which later calls report.
                let _ = clm.restore_tracking(before);
            }
            filled
        })?
    })
}

/// Writes the current membership `reply` into the caller's buffer `out`
/// (whose contents on entry are `b`).
fn fill_buffer(
    out: *mut SaClmClusterNotificationBufferT,
    b: SaClmClusterNotificationBufferT,
    reply: &TrackReply,
) -> Result<(), Code> {
    let n = reply.items.len();
    // Cannot truncate: the decoder caps items at proto::clm::MAX_ITEMS.
    let n_u32 = n as u32;
    let array = if b.notification.is_null() {
        malloc_array::<SaClmClusterNotificationT>(n)?
    } else if (b.numberOfItems as usize) < n {
        // SAFETY: `out` is the caller's non-NULL buffer descriptor.
        unsafe { (*out).numberOfItems = n_u32 };
        return Err(code(AisError::NoSpace));
    } else {
        b.notification
    };
    for (i, item) in reply.items.iter().enumerate() {
        // SAFETY: `array` holds at least `n` entries: malloc'd for n, or
        // the caller's array of numberOfItems >= n entries.
        unsafe { array.add(i).write(notification(item)) };
    }
    let filled = SaClmClusterNotificationBufferT {
        viewNumber: reply.view,
        numberOfItems: n_u32,
        notification: array,
    };
    // SAFETY: `out` is the caller's non-NULL, writable buffer descriptor.
    unsafe { write_out(out, filled) };
    Ok(())
}

/// `saClmClusterTrackStop`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saClm.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saClmClusterTrackStop(clmHandle: SaClmHandleT) -> SaAisErrorT {
    boundary(|| {
        let instance = lookup(clmHandle)?;
        instance.with(|clm| clm.track_stop().map_err(code))?
    })
}

/// `saClmClusterNodeGet`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saClm.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saClmClusterNodeGet(
    clmHandle: SaClmHandleT,
    nodeId: SaClmNodeIdT,
    timeout: SaTimeT,
    clusterNode: *mut SaClmClusterNodeT,
) -> SaAisErrorT {
    boundary(|| {
        if clusterNode.is_null() || timeout < 0 {
            return Err(invalid_param());
        }
        if timeout == 0 {
            return Err(code(AisError::Timeout));
        }
        let instance = lookup(clmHandle)?;
        // Cannot fail: timeout > 0.
        let timeout = Duration::from_nanos(timeout as u64);
        let node = instance.with(|clm| clm.node_get(nodeId, timeout).map_err(code))??;
        // SAFETY: checked non-NULL above; points to a writable node.
        unsafe { write_out(clusterNode, cluster_node(&node)) };
        Ok(())
    })
}

/// `saClmClusterNodeGetAsync`.
///
/// # Safety
/// Pointer arguments are NULL or point to valid objects as `saClm.h`
/// describes them, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn saClmClusterNodeGetAsync(
    clmHandle: SaClmHandleT,
    invocation: SaInvocationT,
    nodeId: SaClmNodeIdT,
) -> SaAisErrorT {
    boundary(|| {
        let instance = lookup(clmHandle)?;
        if instance.callbacks().saClmClusterNodeGetCallback.is_none() {
            return Err(code(AisError::Init));
        }
        instance.with(|clm| clm.node_get_async(invocation, nodeId).map_err(code))?
    })
}

/// Calls the application's callback for `callback` (no lock held).
fn invoke(callbacks: &SaClmCallbacksT, callback: ClmCallback) {
    match callback {
        ClmCallback::Track(t) => {
            let Some(f) = callbacks.saClmClusterTrackCallback else {
                return;
            };
            let mut items: Vec<SaClmClusterNotificationT> =
                t.items.iter().map(notification).collect();
            // Cannot truncate: the decoder caps items at MAX_ITEMS.
            let number_of_items = items.len() as u32;
            // openais passed the entry count as numberOfMembers and its
            // clients (testclm) loop up to numberOfMembers; we pass the
            // membership's size, as the spec says, which is larger than
            // the entry count for a CHANGES_ONLY notification. Zeroed
            // entries up to it keep such a client from reading past the
            // array.
            let padded = (t.members as usize).min(proto::clm::MAX_ITEMS);
            if items.len() < padded {
                items.resize(padded, EMPTY_NOTIFICATION);
            }
            let buffer = SaClmClusterNotificationBufferT {
                viewNumber: t.view,
                numberOfItems: number_of_items,
                notification: if items.is_empty() {
                    std::ptr::null_mut()
                } else {
                    items.as_mut_ptr()
                },
            };
            // SAFETY: the application registered `f` with the
            // SaClmClusterTrackCallbackT prototype; `buffer` and the array
            // it points to live until the call returns.
            unsafe { f(&buffer, t.members, status_code(t.status)) };
        }
        ClmCallback::NodeGet(g) => {
            let Some(f) = callbacks.saClmClusterNodeGetCallback else {
                return;
            };
            let (node, status) = match (&g.node, g.status) {
                (Some(n), Ok(())) => (cluster_node(n), Ok(())),
                (None, Ok(())) => (EMPTY_NODE, Err(AisError::Library)),
                (_, Err(e)) => (EMPTY_NODE, Err(e)),
            };
            // SAFETY: the application registered `f` with the
            // SaClmClusterNodeGetCallbackT prototype; `node` lives until
            // the call returns.
            unsafe { f(g.invocation, &node, status_code(status)) };
        }
    }
}

/// The C record of `n`.
pub fn cluster_node(n: &ClusterNode) -> SaClmClusterNodeT {
    let mut node = EMPTY_NODE;
    node.nodeId = n.node_id;
    node.nodeAddress.family = match n.family {
        AddressFamily::Inet => SA_CLM_AF_INET,
        AddressFamily::Inet6 => SA_CLM_AF_INET6,
    };
    let addr = &n.address.as_bytes()[..n.address.len().min(SA_CLM_MAX_ADDRESS_LENGTH)];
    node.nodeAddress.value[..addr.len()].copy_from_slice(addr);
    // Cannot truncate: at most 64.
    node.nodeAddress.length = addr.len() as u16;
    let name = &n.name.as_bytes()[..n.name.len().min(SA_MAX_NAME_LENGTH)];
    node.nodeName.value[..name.len()].copy_from_slice(name);
    // Cannot truncate: at most 256.
    node.nodeName.length = name.len() as u16;
    node.member = if n.member { SA_TRUE } else { SA_FALSE };
    node.bootTimestamp = n.boot_timestamp_ns;
    node.initialViewNumber = n.initial_view;
    node
}

/// The C notification of `n`.
pub fn notification(n: &Notification) -> SaClmClusterNotificationT {
    SaClmClusterNotificationT {
        clusterNode: cluster_node(&n.node),
        clusterChange: match n.change {
            ClusterChange::NoChange => SA_CLM_NODE_NO_CHANGE,
            ClusterChange::Joined => SA_CLM_NODE_JOINED,
            ClusterChange::Left => SA_CLM_NODE_LEFT,
            ClusterChange::Reconfigured => SA_CLM_NODE_RECONFIGURED,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> ClusterNode {
        ClusterNode {
            node_id: 0x6201a8c0,
            family: AddressFamily::Inet,
            address: "192.168.1.98".into(),
            name: "192.168.1.98".into(),
            member: true,
            boot_timestamp_ns: 1_700_000_000_123_456_789,
            initial_view: 4,
        }
    }

    #[test]
    fn a_node_converts_field_by_field() {
        let c = cluster_node(&node());
        assert_eq!(c.nodeId, 0x6201a8c0);
        assert_eq!(c.nodeAddress.family, SA_CLM_AF_INET);
        assert_eq!(c.nodeAddress.length, 12);
        assert_eq!(&c.nodeAddress.value[..13], b"192.168.1.98\0");
        assert_eq!(c.nodeName.length, 12);
        assert_eq!(&c.nodeName.value[..12], b"192.168.1.98");
        assert_eq!(c.member, SA_TRUE);
        assert_eq!(c.bootTimestamp, 1_700_000_000_123_456_789);
        assert_eq!(c.initialViewNumber, 4);
        let n = notification(&Notification {
            node: node(),
            change: ClusterChange::Left,
        });
        assert_eq!(n.clusterChange, SA_CLM_NODE_LEFT);
    }

    use std::sync::Mutex;

    /// What the test track callback saw: items, members, entry changes
    /// read up to numberOfMembers, status.
    type Seen = (u32, u32, Vec<u32>, u32);
    static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

    unsafe extern "C" fn record_track(
        buf: *const SaClmClusterNotificationBufferT,
        members: u32,
        error: SaAisErrorT,
    ) {
        // SAFETY: the library passes a valid buffer whose array holds at
        // least max(numberOfItems, numberOfMembers) entries.
        let (items, changes) = unsafe {
            let b = &*buf;
            let n = b.numberOfItems.max(members) as usize;
            let entries = std::slice::from_raw_parts(b.notification, n);
            (
                b.numberOfItems,
                entries.iter().map(|e| e.clusterChange).collect(),
            )
        };
        SEEN.lock().unwrap().push((items, members, changes, error));
    }

    #[test]
    fn a_changes_only_callback_is_padded_up_to_number_of_members() {
        let callbacks = SaClmCallbacksT {
            saClmClusterNodeGetCallback: None,
            saClmClusterTrackCallback: Some(record_track),
        };
        let t = proto::clm::TrackCallback {
            view: 7,
            items: vec![Notification {
                node: node(),
                change: ClusterChange::Left,
            }],
            members: 3,
            status: Ok(()),
        };
        invoke(&callbacks, ClmCallback::Track(t));
        let seen = SEEN.lock().unwrap().pop().unwrap();
        assert_eq!(seen, (1, 3, vec![SA_CLM_NODE_LEFT, 0, 0], 1));
    }

    #[test]
    fn bad_handles_and_null_pointers_are_refused_without_a_daemon() {
        let bad = AisError::BadHandle.code();
        let inval = AisError::InvalidParam.code();
        let mut sel = 0;
        let mut n = EMPTY_NODE;
        // SAFETY: every pointer is NULL or points to a live local.
        unsafe {
            assert_eq!(saClmFinalize(0), bad);
            assert_eq!(saClmFinalize(0xdead_beef_0000_0001), bad);
            assert_eq!(saClmSelectionObjectGet(7 << 32, &mut sel), bad);
            assert_eq!(
                saClmSelectionObjectGet(7 << 32, std::ptr::null_mut()),
                inval
            );
            assert_eq!(saClmDispatch(7 << 32, SA_DISPATCH_ALL), bad);
            assert_eq!(saClmDispatch(7 << 32, 0), inval);
            assert_eq!(saClmClusterTrack(7 << 32, 1, std::ptr::null_mut()), bad);
            assert_eq!(saClmClusterTrackStop(7 << 32), bad);
            assert_eq!(saClmClusterNodeGet(7 << 32, 1, 1, &mut n), bad);
            assert_eq!(
                saClmClusterNodeGet(7 << 32, 1, 1, std::ptr::null_mut()),
                inval
            );
            assert_eq!(
                saClmClusterNodeGet(7 << 32, 1, 0, &mut n),
                AisError::Timeout.code()
            );
            assert_eq!(saClmClusterNodeGetAsync(7 << 32, 1, 1), bad);
            let mut h = 0;
            assert_eq!(
                saClmInitialize(&mut h, std::ptr::null(), std::ptr::null_mut()),
                inval
            );
            assert_eq!(h, 0, "no output on failure");
        }
    }
}
