//! The C types of `saAis.h`, `saClm.h`, `saCkpt.h` and `evs.h`, mirrored
//! `#[repr(C)]`.
//!
//! Names are the C names so that a reader can hold this file next to the
//! headers. C enums are plain integers here (`u32`: GCC and Clang give an
//! enum without negative values the type `unsigned int`): a C caller can
//! pass any value, and a Rust enum holding an undeclared value would be
//! undefined behaviour. The layouts are checked against the headers by
//! compiling C (`tests/c_headers.rs`).

#![allow(non_camel_case_types, non_snake_case)]

use std::ffi::{c_char, c_int, c_uint, c_ushort, c_void};

// ---- saAis.h --------------------------------------------------------------

/// `SaBoolT` (an enum: `SA_FALSE` 0, `SA_TRUE` 1).
pub type SaBoolT = c_uint;
/// `SA_FALSE`.
pub const SA_FALSE: SaBoolT = 0;
/// `SA_TRUE`.
pub const SA_TRUE: SaBoolT = 1;

/// `SaUint8T`.
pub type SaUint8T = u8;
/// `SaUint16T`.
pub type SaUint16T = u16;
/// `SaUint32T`.
pub type SaUint32T = u32;
/// `SaUint64T`.
pub type SaUint64T = u64;
/// `SaInt64T`.
pub type SaInt64T = i64;
/// `SaTimeT`: nanoseconds.
pub type SaTimeT = SaInt64T;

/// `SA_TIME_END`.
pub const SA_TIME_END: u64 = 0x7FFF_FFFF_FFFF_FFFF;
/// `SA_TIME_BEGIN`.
pub const SA_TIME_BEGIN: u64 = 0;
/// `SA_TIME_UNKNOWN`.
pub const SA_TIME_UNKNOWN: u64 = 0x8000_0000_0000_0000;
/// `SA_TIME_ONE_MICROSECOND`.
pub const SA_TIME_ONE_MICROSECOND: u64 = 1_000;
/// `SA_TIME_ONE_MILLISECOND`.
pub const SA_TIME_ONE_MILLISECOND: u64 = 1_000_000;
/// `SA_TIME_ONE_SECOND`.
pub const SA_TIME_ONE_SECOND: u64 = 1_000_000_000;
/// `SA_TIME_ONE_MINUTE`.
pub const SA_TIME_ONE_MINUTE: u64 = 60 * SA_TIME_ONE_SECOND;
/// `SA_TIME_ONE_HOUR`.
pub const SA_TIME_ONE_HOUR: u64 = 60 * SA_TIME_ONE_MINUTE;
/// `SA_TIME_ONE_DAY`.
pub const SA_TIME_ONE_DAY: u64 = 24 * SA_TIME_ONE_HOUR;
/// `SA_TIME_MAX`.
pub const SA_TIME_MAX: u64 = SA_TIME_END;

/// `SA_MAX_NAME_LENGTH`.
pub const SA_MAX_NAME_LENGTH: usize = 256;

/// `SaNameT`: `length` bytes of `value`, not NUL-terminated.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SaNameT {
    /// `length`.
    pub length: SaUint16T,
    /// `value`.
    pub value: [SaUint8T; SA_MAX_NAME_LENGTH],
}

/// `SaVersionT`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaVersionT {
    /// `releaseCode`.
    pub releaseCode: c_char,
    /// `majorVersion`.
    pub majorVersion: u8,
    /// `minorVersion`.
    pub minorVersion: u8,
}

/// `SaNtfIdentifierT`.
pub type SaNtfIdentifierT = SaUint64T;

/// `SA_TRACK_CURRENT`.
pub const SA_TRACK_CURRENT: SaUint8T = 0x01;
/// `SA_TRACK_CHANGES`.
pub const SA_TRACK_CHANGES: SaUint8T = 0x02;
/// `SA_TRACK_CHANGES_ONLY`.
pub const SA_TRACK_CHANGES_ONLY: SaUint8T = 0x04;

/// `SaDispatchFlagsT` (an enum).
pub type SaDispatchFlagsT = c_uint;
/// `SA_DISPATCH_ONE`.
pub const SA_DISPATCH_ONE: SaDispatchFlagsT = 1;
/// `SA_DISPATCH_ALL`.
pub const SA_DISPATCH_ALL: SaDispatchFlagsT = 2;
/// `SA_DISPATCH_BLOCKING`.
pub const SA_DISPATCH_BLOCKING: SaDispatchFlagsT = 3;

/// `SaSelectionObjectT`.
pub type SaSelectionObjectT = SaUint64T;
/// `SaInvocationT`.
pub type SaInvocationT = SaUint64T;
/// `SaSizeT`.
pub type SaSizeT = SaUint64T;

/// `SA_HANDLE_INVALID`.
pub const SA_HANDLE_INVALID: u64 = 0;

/// `SaAisErrorT` (an enum; values in [`proto::AisError`] and
/// [`SA_AIS_OK`]).
pub type SaAisErrorT = c_uint;
/// `SA_AIS_OK`.
pub const SA_AIS_OK: SaAisErrorT = proto::SA_AIS_OK;
/// `SA_AIS_ERR_SECURITY` (openais, not the spec; never returned).
pub const SA_AIS_ERR_SECURITY: SaAisErrorT = 29;

// ---- saClm.h --------------------------------------------------------------

/// `SaClmHandleT`.
pub type SaClmHandleT = SaUint64T;
/// `SaClmNodeIdT`.
pub type SaClmNodeIdT = SaUint32T;
/// `SA_CLM_LOCAL_NODE_ID`.
pub const SA_CLM_LOCAL_NODE_ID: SaClmNodeIdT = 0xFFFF_FFFF;
/// `SA_CLM_MAX_ADDRESS_LENGTH`.
pub const SA_CLM_MAX_ADDRESS_LENGTH: usize = 64;

/// `SaClmNodeAddressFamilyT` (an enum).
pub type SaClmNodeAddressFamilyT = c_uint;
/// `SA_CLM_AF_INET`.
pub const SA_CLM_AF_INET: SaClmNodeAddressFamilyT = 1;
/// `SA_CLM_AF_INET6`.
pub const SA_CLM_AF_INET6: SaClmNodeAddressFamilyT = 2;

/// `SaClmNodeAddressT`: the address as printable text.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SaClmNodeAddressT {
    /// `family`.
    pub family: SaClmNodeAddressFamilyT,
    /// `length`.
    pub length: SaUint16T,
    /// `value`.
    pub value: [SaUint8T; SA_CLM_MAX_ADDRESS_LENGTH],
}

/// `SaClmClusterNodeT`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SaClmClusterNodeT {
    /// `nodeId`.
    pub nodeId: SaClmNodeIdT,
    /// `nodeAddress`.
    pub nodeAddress: SaClmNodeAddressT,
    /// `nodeName`.
    pub nodeName: SaNameT,
    /// `member`.
    pub member: SaBoolT,
    /// `bootTimestamp`.
    pub bootTimestamp: SaTimeT,
    /// `initialViewNumber`.
    pub initialViewNumber: SaUint64T,
}

/// `SaClmClusterChangesT` (an enum).
pub type SaClmClusterChangesT = c_uint;
/// `SA_CLM_NODE_NO_CHANGE`.
pub const SA_CLM_NODE_NO_CHANGE: SaClmClusterChangesT = 1;
/// `SA_CLM_NODE_JOINED`.
pub const SA_CLM_NODE_JOINED: SaClmClusterChangesT = 2;
/// `SA_CLM_NODE_LEFT`.
pub const SA_CLM_NODE_LEFT: SaClmClusterChangesT = 3;
/// `SA_CLM_NODE_RECONFIGURED`.
pub const SA_CLM_NODE_RECONFIGURED: SaClmClusterChangesT = 4;

/// `SaClmClusterNotificationT`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SaClmClusterNotificationT {
    /// `clusterNode`.
    pub clusterNode: SaClmClusterNodeT,
    /// `clusterChange`.
    pub clusterChange: SaClmClusterChangesT,
}

/// `SaClmClusterNotificationBufferT`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SaClmClusterNotificationBufferT {
    /// `viewNumber`.
    pub viewNumber: SaUint64T,
    /// `numberOfItems`.
    pub numberOfItems: SaUint32T,
    /// `notification`.
    pub notification: *mut SaClmClusterNotificationT,
}

/// `SaClmClusterNodeGetCallbackT` (nullable).
pub type SaClmClusterNodeGetCallbackT = Option<
    unsafe extern "C" fn(
        invocation: SaInvocationT,
        clusterNode: *const SaClmClusterNodeT,
        error: SaAisErrorT,
    ),
>;

/// `SaClmClusterTrackCallbackT` (nullable).
pub type SaClmClusterTrackCallbackT = Option<
    unsafe extern "C" fn(
        notificationBuffer: *const SaClmClusterNotificationBufferT,
        numberOfMembers: SaUint32T,
        error: SaAisErrorT,
    ),
>;

/// `SaClmCallbacksT`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SaClmCallbacksT {
    /// `saClmClusterNodeGetCallback`.
    pub saClmClusterNodeGetCallback: SaClmClusterNodeGetCallbackT,
    /// `saClmClusterTrackCallback`.
    pub saClmClusterTrackCallback: SaClmClusterTrackCallbackT,
}

// ---- saCkpt.h -------------------------------------------------------------

/// `SaCkptHandleT`.
pub type SaCkptHandleT = SaUint64T;
/// `SaCkptCheckpointHandleT`.
pub type SaCkptCheckpointHandleT = SaUint64T;
/// `SaCkptSectionIterationHandleT`.
pub type SaCkptSectionIterationHandleT = SaUint64T;

/// `SaCkptCheckpointCreationFlagsT`.
pub type SaCkptCheckpointCreationFlagsT = SaUint32T;
/// `SA_CKPT_WR_ALL_REPLICAS`.
pub const SA_CKPT_WR_ALL_REPLICAS: SaCkptCheckpointCreationFlagsT = proto::ckpt::WR_ALL_REPLICAS;
/// `SA_CKPT_WR_ACTIVE_REPLICA`.
pub const SA_CKPT_WR_ACTIVE_REPLICA: SaCkptCheckpointCreationFlagsT =
    proto::ckpt::WR_ACTIVE_REPLICA;
/// `SA_CKPT_WR_ACTIVE_REPLICA_WEAK`.
pub const SA_CKPT_WR_ACTIVE_REPLICA_WEAK: SaCkptCheckpointCreationFlagsT =
    proto::ckpt::WR_ACTIVE_REPLICA_WEAK;
/// `SA_CKPT_CHECKPOINT_COLLOCATED`.
pub const SA_CKPT_CHECKPOINT_COLLOCATED: SaCkptCheckpointCreationFlagsT =
    proto::ckpt::CHECKPOINT_COLLOCATED;

/// `SaCkptCheckpointCreationAttributesT`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaCkptCheckpointCreationAttributesT {
    /// `creationFlags`.
    pub creationFlags: SaCkptCheckpointCreationFlagsT,
    /// `checkpointSize`.
    pub checkpointSize: SaSizeT,
    /// `retentionDuration`.
    pub retentionDuration: SaTimeT,
    /// `maxSections`.
    pub maxSections: SaUint32T,
    /// `maxSectionSize`.
    pub maxSectionSize: SaSizeT,
    /// `maxSectionIdSize`.
    pub maxSectionIdSize: SaSizeT,
}

/// `SaCkptCheckpointOpenFlagsT`.
pub type SaCkptCheckpointOpenFlagsT = SaUint32T;
/// `SA_CKPT_CHECKPOINT_READ`.
pub const SA_CKPT_CHECKPOINT_READ: SaCkptCheckpointOpenFlagsT = proto::ckpt::OPEN_READ;
/// `SA_CKPT_CHECKPOINT_WRITE`.
pub const SA_CKPT_CHECKPOINT_WRITE: SaCkptCheckpointOpenFlagsT = proto::ckpt::OPEN_WRITE;
/// `SA_CKPT_CHECKPOINT_CREATE`.
pub const SA_CKPT_CHECKPOINT_CREATE: SaCkptCheckpointOpenFlagsT = proto::ckpt::OPEN_CREATE;

/// `SaCkptSectionIdT`: `idLen` bytes at `id`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SaCkptSectionIdT {
    /// `idLen`.
    pub idLen: SaUint16T,
    /// `id`.
    pub id: *mut SaUint8T,
}

/// `SA_CKPT_DEFAULT_SECTION_ID` and `SA_CKPT_GENERATED_SECTION_ID`
/// (`{ 0, 0 }`).
pub const SA_CKPT_DEFAULT_SECTION_ID: SaCkptSectionIdT = SaCkptSectionIdT {
    idLen: 0,
    id: std::ptr::null_mut(),
};

/// `SaCkptSectionCreationAttributesT`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SaCkptSectionCreationAttributesT {
    /// `sectionId`.
    pub sectionId: *mut SaCkptSectionIdT,
    /// `expirationTime`.
    pub expirationTime: SaTimeT,
}

/// `SaCkptSectionStateT` (an enum).
pub type SaCkptSectionStateT = c_uint;
/// `SA_CKPT_SECTION_VALID`.
pub const SA_CKPT_SECTION_VALID: SaCkptSectionStateT = 1;
/// `SA_CKPT_SECTION_CORRUPTED`.
pub const SA_CKPT_SECTION_CORRUPTED: SaCkptSectionStateT = 2;

/// `SaCkptSectionDescriptorT`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SaCkptSectionDescriptorT {
    /// `sectionId`.
    pub sectionId: SaCkptSectionIdT,
    /// `expirationTime`.
    pub expirationTime: SaTimeT,
    /// `sectionSize`.
    pub sectionSize: SaSizeT,
    /// `sectionState`.
    pub sectionState: SaCkptSectionStateT,
    /// `lastUpdate`.
    pub lastUpdate: SaTimeT,
}

/// `SaCkptSectionsChosenT` (an enum).
pub type SaCkptSectionsChosenT = c_uint;
/// `SA_CKPT_SECTIONS_FOREVER`.
pub const SA_CKPT_SECTIONS_FOREVER: SaCkptSectionsChosenT = 1;
/// `SA_CKPT_SECTIONS_LEQ_EXPIRATION_TIME`.
pub const SA_CKPT_SECTIONS_LEQ_EXPIRATION_TIME: SaCkptSectionsChosenT = 2;
/// `SA_CKPT_SECTIONS_GEQ_EXPIRATION_TIME`.
pub const SA_CKPT_SECTIONS_GEQ_EXPIRATION_TIME: SaCkptSectionsChosenT = 3;
/// `SA_CKPT_SECTIONS_CORRUPTED`.
pub const SA_CKPT_SECTIONS_CORRUPTED: SaCkptSectionsChosenT = 4;
/// `SA_CKPT_SECTIONS_ANY`.
pub const SA_CKPT_SECTIONS_ANY: SaCkptSectionsChosenT = 5;

/// `SaOffsetT`.
pub type SaOffsetT = SaUint64T;

/// `SaCkptIOVectorElementT`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SaCkptIOVectorElementT {
    /// `sectionId`.
    pub sectionId: SaCkptSectionIdT,
    /// `dataBuffer`.
    pub dataBuffer: *mut c_void,
    /// `dataSize`.
    pub dataSize: SaSizeT,
    /// `dataOffset`.
    pub dataOffset: SaOffsetT,
    /// `readSize`.
    pub readSize: SaSizeT,
}

/// `SaCkptCheckpointDescriptorT`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaCkptCheckpointDescriptorT {
    /// `checkpointCreationAttributes`.
    pub checkpointCreationAttributes: SaCkptCheckpointCreationAttributesT,
    /// `numberOfSections`.
    pub numberOfSections: SaUint32T,
    /// `memoryUsed`.
    pub memoryUsed: SaUint32T,
}

/// `SaCkptCheckpointOpenCallbackT` (nullable).
pub type SaCkptCheckpointOpenCallbackT = Option<
    unsafe extern "C" fn(
        invocation: SaInvocationT,
        checkpointHandle: SaCkptCheckpointHandleT,
        error: SaAisErrorT,
    ),
>;

/// `SaCkptCheckpointSynchronizeCallbackT` (nullable).
pub type SaCkptCheckpointSynchronizeCallbackT =
    Option<unsafe extern "C" fn(invocation: SaInvocationT, error: SaAisErrorT)>;

/// `SaCkptCallbacksT`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SaCkptCallbacksT {
    /// `saCkptCheckpointOpenCallback`.
    pub saCkptCheckpointOpenCallback: SaCkptCheckpointOpenCallbackT,
    /// `saCkptCheckpointSynchronizeCallback`.
    pub saCkptCheckpointSynchronizeCallback: SaCkptCheckpointSynchronizeCallbackT,
}

// ---- evs.h ----------------------------------------------------------------

/// `evs_handle_t`.
pub type evs_handle_t = u64;

/// `evs_dispatch_t` (an enum, 0-based).
pub type evs_dispatch_t = c_uint;
/// `EVS_DISPATCH_ONE`.
pub const EVS_DISPATCH_ONE: evs_dispatch_t = 0;
/// `EVS_DISPATCH_ALL`.
pub const EVS_DISPATCH_ALL: evs_dispatch_t = 1;
/// `EVS_DISPATCH_BLOCKING`.
pub const EVS_DISPATCH_BLOCKING: evs_dispatch_t = 2;

/// `evs_guarantee_t` (an enum).
pub type evs_guarantee_t = c_uint;
/// `EVS_TYPE_UNORDERED`.
pub const EVS_TYPE_UNORDERED: evs_guarantee_t = 0;
/// `EVS_TYPE_FIFO`.
pub const EVS_TYPE_FIFO: evs_guarantee_t = 1;
/// `EVS_TYPE_AGREED`.
pub const EVS_TYPE_AGREED: evs_guarantee_t = 2;
/// `EVS_TYPE_SAFE`.
pub const EVS_TYPE_SAFE: evs_guarantee_t = 3;

/// `evs_error_t` (an enum; numerically an `SaAisErrorT` plus 30).
pub type evs_error_t = c_uint;
/// `EVS_OK`.
pub const EVS_OK: evs_error_t = 1;
/// `EVS_ERR_LIBRARY`.
pub const EVS_ERR_LIBRARY: evs_error_t = 2;
/// `EVS_ERR_TIMEOUT`.
pub const EVS_ERR_TIMEOUT: evs_error_t = 5;
/// `EVS_ERR_TRY_AGAIN`.
pub const EVS_ERR_TRY_AGAIN: evs_error_t = 6;
/// `EVS_ERR_INVALID_PARAM`.
pub const EVS_ERR_INVALID_PARAM: evs_error_t = 7;
/// `EVS_ERR_NO_MEMORY`.
pub const EVS_ERR_NO_MEMORY: evs_error_t = 8;
/// `EVS_ERR_BAD_HANDLE`.
pub const EVS_ERR_BAD_HANDLE: evs_error_t = 9;
/// `EVS_ERR_ACCESS`.
pub const EVS_ERR_ACCESS: evs_error_t = 11;
/// `EVS_ERR_NOT_EXIST`.
pub const EVS_ERR_NOT_EXIST: evs_error_t = 12;
/// `EVS_ERR_EXIST`.
pub const EVS_ERR_EXIST: evs_error_t = 14;
/// `EVS_ERR_NOT_SUPPORTED`.
pub const EVS_ERR_NOT_SUPPORTED: evs_error_t = 20;
/// `EVS_ERR_SECURITY`.
pub const EVS_ERR_SECURITY: evs_error_t = 29;
/// `EVS_ERR_TOO_MANY_GROUPS`.
pub const EVS_ERR_TOO_MANY_GROUPS: evs_error_t = 30;

/// `TOTEMIP_ADDRLEN`: `sizeof(struct in6_addr)`.
pub const TOTEMIP_ADDRLEN: usize = 16;

/// `struct evs_address` (declared by evs.h, used by no function).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct evs_address {
    /// `nodeid`.
    pub nodeid: c_uint,
    /// `family`.
    pub family: c_ushort,
    /// `addr`.
    pub addr: [u8; TOTEMIP_ADDRLEN],
}

/// `struct evs_group`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct evs_group {
    /// `key`: all 32 bytes are the group's name.
    pub key: [c_char; 32],
}

/// `evs_deliver_fn_t` (nullable).
pub type evs_deliver_fn_t =
    Option<unsafe extern "C" fn(nodeid: c_uint, msg: *mut c_void, msg_len: c_int)>;

/// `evs_confchg_fn_t` (nullable).
pub type evs_confchg_fn_t = Option<
    unsafe extern "C" fn(
        member_list: *mut c_uint,
        member_list_entries: c_int,
        left_list: *mut c_uint,
        left_list_entries: c_int,
        joined_list: *mut c_uint,
        joined_list_entries: c_int,
    ),
>;

/// `evs_callbacks_t`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct evs_callbacks_t {
    /// `evs_deliver_fn`.
    pub evs_deliver_fn: evs_deliver_fn_t,
    /// `evs_confchg_fn`.
    pub evs_confchg_fn: evs_confchg_fn_t,
}

/// `struct iovec` (`<sys/uio.h>`, Linux and the BSDs).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct iovec {
    /// `iov_base`.
    pub iov_base: *mut c_void,
    /// `iov_len`.
    pub iov_len: usize,
}

// ---- ais_backup.h ---------------------------------------------------------

/// `AisBackupHandleT`.
pub type AisBackupHandleT = SaUint64T;
/// `AisBackupIdT`.
pub type AisBackupIdT = SaUint64T;
/// `AIS_BACKUP_MAX_CHECKPOINTS`.
pub const AIS_BACKUP_MAX_CHECKPOINTS: usize = proto::backup::MAX_CHECKPOINTS;
/// `AIS_BACKUP_MAX_PATH_LENGTH`.
pub const AIS_BACKUP_MAX_PATH_LENGTH: usize = proto::backup::MAX_PATH_BYTES;

/// `AisBackupPhaseT` (an enum; values of [`proto::backup::JobPhase`]).
pub type AisBackupPhaseT = c_uint;
/// `AIS_BACKUP_PHASE_REQUESTED`.
pub const AIS_BACKUP_PHASE_REQUESTED: AisBackupPhaseT = 1;
/// `AIS_BACKUP_PHASE_DEFINED`.
pub const AIS_BACKUP_PHASE_DEFINED: AisBackupPhaseT = 2;
/// `AIS_BACKUP_PHASE_RUNNING`.
pub const AIS_BACKUP_PHASE_RUNNING: AisBackupPhaseT = 3;
/// `AIS_BACKUP_PHASE_STOPPING`.
pub const AIS_BACKUP_PHASE_STOPPING: AisBackupPhaseT = 4;
/// `AIS_BACKUP_PHASE_DONE`.
pub const AIS_BACKUP_PHASE_DONE: AisBackupPhaseT = 5;
/// `AIS_BACKUP_PHASE_ABORTED`.
pub const AIS_BACKUP_PHASE_ABORTED: AisBackupPhaseT = 6;

/// `AisBackupErrorClassT` (an enum; values of [`proto::backup::ErrorClass`]).
pub type AisBackupErrorClassT = c_uint;
/// `AIS_BACKUP_ERROR_DESTINATION_MISSING`.
pub const AIS_BACKUP_ERROR_DESTINATION_MISSING: AisBackupErrorClassT = 1;
/// `AIS_BACKUP_ERROR_DESTINATION_NOT_WRITABLE`.
pub const AIS_BACKUP_ERROR_DESTINATION_NOT_WRITABLE: AisBackupErrorClassT = 2;
/// `AIS_BACKUP_ERROR_DESTINATION_FULL`.
pub const AIS_BACKUP_ERROR_DESTINATION_FULL: AisBackupErrorClassT = 3;
/// `AIS_BACKUP_ERROR_DEVICE_TIMEOUT`.
pub const AIS_BACKUP_ERROR_DEVICE_TIMEOUT: AisBackupErrorClassT = 4;
/// `AIS_BACKUP_ERROR_VANISHED`.
pub const AIS_BACKUP_ERROR_VANISHED: AisBackupErrorClassT = 5;
/// `AIS_BACKUP_ERROR_CORRUPT`.
pub const AIS_BACKUP_ERROR_CORRUPT: AisBackupErrorClassT = 6;
/// `AIS_BACKUP_ERROR_TRANSIENT`.
pub const AIS_BACKUP_ERROR_TRANSIENT: AisBackupErrorClassT = 7;
/// `AIS_BACKUP_ERROR_OTHER`.
pub const AIS_BACKUP_ERROR_OTHER: AisBackupErrorClassT = 8;

/// `AisBackupFailedCheckpointT`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AisBackupFailedCheckpointT {
    /// `checkpointName`.
    pub checkpointName: SaNameT,
    /// `errorClass`.
    pub errorClass: AisBackupErrorClassT,
    /// `message`.
    pub message: *mut c_char,
}

/// `AisBackupNodeErrorT`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AisBackupNodeErrorT {
    /// `nodeId`.
    pub nodeId: SaUint32T,
    /// `errorClass`.
    pub errorClass: AisBackupErrorClassT,
    /// `message`.
    pub message: *mut c_char,
}

/// `AisBackupStatusT`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AisBackupStatusT {
    /// `backupId`.
    pub backupId: AisBackupIdT,
    /// `phase`.
    pub phase: AisBackupPhaseT,
    /// `masterNodeId`.
    pub masterNodeId: SaUint32T,
    /// `destination`.
    pub destination: *mut c_char,
    /// `directory`.
    pub directory: *mut c_char,
    /// `checkpointsTotal`.
    pub checkpointsTotal: SaUint32T,
    /// `checkpointsDone`.
    pub checkpointsDone: SaUint32T,
    /// `bytesTotal`.
    pub bytesTotal: SaUint64T,
    /// `bytesDone`.
    pub bytesDone: SaUint64T,
    /// `reason`.
    pub reason: *mut c_char,
    /// `numberOfFailed`.
    pub numberOfFailed: SaUint32T,
    /// `failed`.
    pub failed: *mut AisBackupFailedCheckpointT,
    /// `numberOfErrors`.
    pub numberOfErrors: SaUint32T,
    /// `errors`.
    pub errors: *mut AisBackupNodeErrorT,
}

/// `AisBackupCompletionCallbackT` (nullable).
pub type AisBackupCompletionCallbackT = Option<
    unsafe extern "C" fn(
        invocation: SaInvocationT,
        error: SaAisErrorT,
        status: *const AisBackupStatusT,
    ),
>;

/// `AisBackupCallbacksT`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct AisBackupCallbacksT {
    /// `aisBackupCompletionCallback`.
    pub aisBackupCompletionCallback: AisBackupCompletionCallbackT,
}

/// `AisBackupFileProblemT` (an enum).
pub type AisBackupFileProblemT = c_uint;
/// `AIS_BACKUP_FILE_UNSAFE_PATH`.
pub const AIS_BACKUP_FILE_UNSAFE_PATH: AisBackupFileProblemT = 1;
/// `AIS_BACKUP_FILE_UNREADABLE`.
pub const AIS_BACKUP_FILE_UNREADABLE: AisBackupFileProblemT = 2;
/// `AIS_BACKUP_FILE_SIZE`.
pub const AIS_BACKUP_FILE_SIZE: AisBackupFileProblemT = 3;
/// `AIS_BACKUP_FILE_CRC`.
pub const AIS_BACKUP_FILE_CRC: AisBackupFileProblemT = 4;

/// `AisBackupFileErrorT`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AisBackupFileErrorT {
    /// `file`.
    pub file: *mut c_char,
    /// `problem`.
    pub problem: AisBackupFileProblemT,
    /// `expected`.
    pub expected: SaUint64T,
    /// `actual`.
    pub actual: SaUint64T,
    /// `message`.
    pub message: *mut c_char,
}

/// `AisBackupVerifyReportT`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AisBackupVerifyReportT {
    /// `backupId`.
    pub backupId: AisBackupIdT,
    /// `numberOfCheckpoints`.
    pub numberOfCheckpoints: SaUint32T,
    /// `filesChecked`.
    pub filesChecked: SaUint64T,
    /// `bytesChecked`.
    pub bytesChecked: SaUint64T,
    /// `numberOfProblems`.
    pub numberOfProblems: SaUint32T,
    /// `problems`.
    pub problems: *mut AisBackupFileErrorT,
}

/// `AisBackupRestoreReportT`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AisBackupRestoreReportT {
    /// `backupId`.
    pub backupId: AisBackupIdT,
    /// `checkpointsRestored`.
    pub checkpointsRestored: SaUint32T,
    /// `bytesRestored`.
    pub bytesRestored: SaUint64T,
    /// `checkpointsReplaced`.
    pub checkpointsReplaced: SaUint32T,
}
