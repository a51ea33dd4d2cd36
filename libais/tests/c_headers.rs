//! The C headers against the Rust side (STYLE rule 14): every header
//! compiles alone with `-Wall -Wextra -Werror -std=c99 -pedantic` (and as
//! C++ when a C++ compiler is present); every struct's size and every
//! field's offset, every type's size and every constant's value, printed by
//! a C program, equal the `#[repr(C)]` mirrors and constants in
//! `ais::ffi::types`; every prototype survives a redeclaration with the
//! specification's prototype, and every function is exported by
//! `libais.so`, whose soname is `libais.so.1`.

mod common;

use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::process::Command;

use ais::ffi::types::*;
use common::{build_c, cc, cxx, run, stage, C_FLAGS, HEADERS};
use proto::AisError;

#[test]
fn every_header_compiles_alone_as_c99_and_as_cpp() {
    let s = stage();
    for h in HEADERS {
        // Twice: the include guard must hold.
        let src = format!("#include \"{h}\"\n#include \"{h}\"\nint main(void) {{ return 0; }}\n");
        let file = s.bin.join(format!("alone_{h}.c"));
        std::fs::write(&file, &src).unwrap();
        let mut c = Command::new(cc());
        c.args(C_FLAGS)
            .arg("-fsyntax-only")
            .arg("-I")
            .arg(&s.include)
            .arg(&file);
        run(&mut c).unwrap_or_else(|e| panic!("{h} as C: {e}"));
        if let Some(cxx) = cxx() {
            let mut c = Command::new(cxx);
            c.args(["-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only"])
                .args(["-x", "c++"])
                .arg("-I")
                .arg(&s.include)
                .arg(&file);
            run(&mut c).unwrap_or_else(|e| panic!("{h} as C++: {e}"));
        }
    }
}

/// What the Rust side says: the same keys `ctest/layout.c` prints.
fn rust_layout() -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    macro_rules! size {
        ($name:expr, $t:ty) => {
            m.insert(format!("size {}", $name), size_of::<$t>() as u64);
        };
    }
    macro_rules! off {
        ($name:expr, $t:ty, $($f:ident),+) => {
            $(m.insert(format!("offset {}.{}", $name, stringify!($f)), offset_of!($t, $f) as u64);)+
        };
    }
    macro_rules! consts {
        ($($c:ident),+ $(,)?) => {
            $(m.insert(format!("const {}", stringify!($c)), $c as u64);)+
        };
    }
    // saAis.h
    size!("SaBoolT", SaBoolT);
    size!("SaInt8T", i8);
    size!("SaInt16T", i16);
    size!("SaInt32T", i32);
    size!("SaInt64T", SaInt64T);
    size!("SaUint8T", SaUint8T);
    size!("SaUint16T", SaUint16T);
    size!("SaUint32T", SaUint32T);
    size!("SaUint64T", SaUint64T);
    size!("SaFloatT", f32);
    size!("SaDoubleT", f64);
    size!("SaStringT", *mut std::ffi::c_char);
    size!("SaTimeT", SaTimeT);
    size!("SaNameT", SaNameT);
    off!("SaNameT", SaNameT, length, value);
    size!("SaVersionT", SaVersionT);
    off!(
        "SaVersionT",
        SaVersionT,
        releaseCode,
        majorVersion,
        minorVersion
    );
    size!("SaNtfIdentifierT", SaNtfIdentifierT);
    size!("SaDispatchFlagsT", SaDispatchFlagsT);
    size!("SaSelectionObjectT", SaSelectionObjectT);
    size!("SaInvocationT", SaInvocationT);
    size!("SaSizeT", SaSizeT);
    size!("SaAisErrorT", SaAisErrorT);
    consts!(
        SA_FALSE,
        SA_TRUE,
        SA_TIME_END,
        SA_TIME_BEGIN,
        SA_TIME_UNKNOWN,
        SA_TIME_ONE_MICROSECOND,
        SA_TIME_ONE_MILLISECOND,
        SA_TIME_ONE_SECOND,
        SA_TIME_ONE_MINUTE,
        SA_TIME_ONE_HOUR,
        SA_TIME_ONE_DAY,
        SA_TIME_MAX,
        SA_MAX_NAME_LENGTH,
        SA_TRACK_CURRENT,
        SA_TRACK_CHANGES,
        SA_TRACK_CHANGES_ONLY,
        SA_DISPATCH_ONE,
        SA_DISPATCH_ALL,
        SA_DISPATCH_BLOCKING,
        SA_HANDLE_INVALID,
        SA_AIS_OK,
        SA_AIS_ERR_SECURITY,
    );
    // The error codes come from proto, the one definition of SaAisErrorT.
    for e in AisError::ALL {
        m.insert(format!("const {}", e.c_name()), u64::from(e.code()));
    }
    // saClm.h
    size!("SaClmHandleT", SaClmHandleT);
    size!("SaClmNodeIdT", SaClmNodeIdT);
    size!("SaClmNodeAddressFamilyT", SaClmNodeAddressFamilyT);
    size!("SaClmNodeAddressT", SaClmNodeAddressT);
    off!(
        "SaClmNodeAddressT",
        SaClmNodeAddressT,
        family,
        length,
        value
    );
    size!("SaClmClusterNodeT", SaClmClusterNodeT);
    off!(
        "SaClmClusterNodeT",
        SaClmClusterNodeT,
        nodeId,
        nodeAddress,
        nodeName,
        member,
        bootTimestamp,
        initialViewNumber
    );
    size!("SaClmClusterChangesT", SaClmClusterChangesT);
    size!("SaClmClusterNotificationT", SaClmClusterNotificationT);
    off!(
        "SaClmClusterNotificationT",
        SaClmClusterNotificationT,
        clusterNode,
        clusterChange
    );
    size!(
        "SaClmClusterNotificationBufferT",
        SaClmClusterNotificationBufferT
    );
    off!(
        "SaClmClusterNotificationBufferT",
        SaClmClusterNotificationBufferT,
        viewNumber,
        numberOfItems,
        notification
    );
    size!("SaClmClusterNodeGetCallbackT", SaClmClusterNodeGetCallbackT);
    size!("SaClmClusterTrackCallbackT", SaClmClusterTrackCallbackT);
    size!("SaClmCallbacksT", SaClmCallbacksT);
    off!(
        "SaClmCallbacksT",
        SaClmCallbacksT,
        saClmClusterNodeGetCallback,
        saClmClusterTrackCallback
    );
    consts!(
        SA_CLM_LOCAL_NODE_ID,
        SA_CLM_MAX_ADDRESS_LENGTH,
        SA_CLM_AF_INET,
        SA_CLM_AF_INET6,
        SA_CLM_NODE_NO_CHANGE,
        SA_CLM_NODE_JOINED,
        SA_CLM_NODE_LEFT,
        SA_CLM_NODE_RECONFIGURED,
    );
    // saCkpt.h
    size!("SaCkptHandleT", SaCkptHandleT);
    size!("SaCkptCheckpointHandleT", SaCkptCheckpointHandleT);
    size!(
        "SaCkptSectionIterationHandleT",
        SaCkptSectionIterationHandleT
    );
    size!(
        "SaCkptCheckpointCreationFlagsT",
        SaCkptCheckpointCreationFlagsT
    );
    size!(
        "SaCkptCheckpointCreationAttributesT",
        SaCkptCheckpointCreationAttributesT
    );
    off!(
        "SaCkptCheckpointCreationAttributesT",
        SaCkptCheckpointCreationAttributesT,
        creationFlags,
        checkpointSize,
        retentionDuration,
        maxSections,
        maxSectionSize,
        maxSectionIdSize
    );
    size!("SaCkptCheckpointOpenFlagsT", SaCkptCheckpointOpenFlagsT);
    size!("SaCkptSectionIdT", SaCkptSectionIdT);
    off!("SaCkptSectionIdT", SaCkptSectionIdT, idLen, id);
    size!(
        "SaCkptSectionCreationAttributesT",
        SaCkptSectionCreationAttributesT
    );
    off!(
        "SaCkptSectionCreationAttributesT",
        SaCkptSectionCreationAttributesT,
        sectionId,
        expirationTime
    );
    size!("SaCkptSectionStateT", SaCkptSectionStateT);
    size!("SaCkptSectionDescriptorT", SaCkptSectionDescriptorT);
    off!(
        "SaCkptSectionDescriptorT",
        SaCkptSectionDescriptorT,
        sectionId,
        expirationTime,
        sectionSize,
        sectionState,
        lastUpdate
    );
    size!("SaCkptSectionsChosenT", SaCkptSectionsChosenT);
    size!("SaOffsetT", SaOffsetT);
    size!("SaCkptIOVectorElementT", SaCkptIOVectorElementT);
    off!(
        "SaCkptIOVectorElementT",
        SaCkptIOVectorElementT,
        sectionId,
        dataBuffer,
        dataSize,
        dataOffset,
        readSize
    );
    size!("SaCkptCheckpointDescriptorT", SaCkptCheckpointDescriptorT);
    off!(
        "SaCkptCheckpointDescriptorT",
        SaCkptCheckpointDescriptorT,
        checkpointCreationAttributes,
        numberOfSections,
        memoryUsed
    );
    size!(
        "SaCkptCheckpointOpenCallbackT",
        SaCkptCheckpointOpenCallbackT
    );
    size!(
        "SaCkptCheckpointSynchronizeCallbackT",
        SaCkptCheckpointSynchronizeCallbackT
    );
    size!("SaCkptCallbacksT", SaCkptCallbacksT);
    off!(
        "SaCkptCallbacksT",
        SaCkptCallbacksT,
        saCkptCheckpointOpenCallback,
        saCkptCheckpointSynchronizeCallback
    );
    consts!(
        SA_CKPT_WR_ALL_REPLICAS,
        SA_CKPT_WR_ACTIVE_REPLICA,
        SA_CKPT_WR_ACTIVE_REPLICA_WEAK,
        SA_CKPT_CHECKPOINT_COLLOCATED,
        SA_CKPT_CHECKPOINT_READ,
        SA_CKPT_CHECKPOINT_WRITE,
        SA_CKPT_CHECKPOINT_CREATE,
        SA_CKPT_SECTION_VALID,
        SA_CKPT_SECTION_CORRUPTED,
        SA_CKPT_SECTIONS_FOREVER,
        SA_CKPT_SECTIONS_LEQ_EXPIRATION_TIME,
        SA_CKPT_SECTIONS_GEQ_EXPIRATION_TIME,
        SA_CKPT_SECTIONS_CORRUPTED,
        SA_CKPT_SECTIONS_ANY,
    );
    for which in ["DEFAULT", "GENERATED"] {
        let id = SA_CKPT_DEFAULT_SECTION_ID;
        let key = format!("const SA_CKPT_{which}_SECTION_ID");
        m.insert(format!("{key}.idLen"), u64::from(id.idLen));
        m.insert(format!("{key}.id"), u64::from(!id.id.is_null()));
    }
    // evs.h
    size!("evs_handle_t", evs_handle_t);
    size!("evs_dispatch_t", evs_dispatch_t);
    size!("evs_guarantee_t", evs_guarantee_t);
    size!("evs_error_t", evs_error_t);
    size!("struct evs_address", evs_address);
    off!("struct evs_address", evs_address, nodeid, family, addr);
    size!("struct evs_group", evs_group);
    off!("struct evs_group", evs_group, key);
    size!("evs_deliver_fn_t", evs_deliver_fn_t);
    size!("evs_confchg_fn_t", evs_confchg_fn_t);
    size!("evs_callbacks_t", evs_callbacks_t);
    off!(
        "evs_callbacks_t",
        evs_callbacks_t,
        evs_deliver_fn,
        evs_confchg_fn
    );
    size!("struct iovec", iovec);
    off!("struct iovec", iovec, iov_base, iov_len);
    consts!(
        EVS_DISPATCH_ONE,
        EVS_DISPATCH_ALL,
        EVS_DISPATCH_BLOCKING,
        EVS_TYPE_UNORDERED,
        EVS_TYPE_FIFO,
        EVS_TYPE_AGREED,
        EVS_TYPE_SAFE,
        EVS_OK,
        EVS_ERR_LIBRARY,
        EVS_ERR_TIMEOUT,
        EVS_ERR_TRY_AGAIN,
        EVS_ERR_INVALID_PARAM,
        EVS_ERR_NO_MEMORY,
        EVS_ERR_BAD_HANDLE,
        EVS_ERR_ACCESS,
        EVS_ERR_NOT_EXIST,
        EVS_ERR_EXIST,
        EVS_ERR_NOT_SUPPORTED,
        EVS_ERR_SECURITY,
        EVS_ERR_TOO_MANY_GROUPS,
        TOTEMIP_ADDRLEN,
    );
    // ais_backup.h
    size!("AisBackupHandleT", AisBackupHandleT);
    size!("AisBackupIdT", AisBackupIdT);
    size!("AisBackupPhaseT", AisBackupPhaseT);
    size!("AisBackupErrorClassT", AisBackupErrorClassT);
    size!("AisBackupFileProblemT", AisBackupFileProblemT);
    size!("AisBackupFailedCheckpointT", AisBackupFailedCheckpointT);
    off!(
        "AisBackupFailedCheckpointT",
        AisBackupFailedCheckpointT,
        checkpointName,
        errorClass,
        message
    );
    size!("AisBackupNodeErrorT", AisBackupNodeErrorT);
    off!(
        "AisBackupNodeErrorT",
        AisBackupNodeErrorT,
        nodeId,
        errorClass,
        message
    );
    size!("AisBackupStatusT", AisBackupStatusT);
    off!(
        "AisBackupStatusT",
        AisBackupStatusT,
        backupId,
        phase,
        masterNodeId,
        destination,
        directory,
        checkpointsTotal,
        checkpointsDone,
        bytesTotal,
        bytesDone,
        reason,
        numberOfFailed,
        failed,
        numberOfErrors,
        errors
    );
    size!("AisBackupCallbacksT", AisBackupCallbacksT);
    off!(
        "AisBackupCallbacksT",
        AisBackupCallbacksT,
        aisBackupCompletionCallback
    );
    size!("AisBackupFileErrorT", AisBackupFileErrorT);
    off!(
        "AisBackupFileErrorT",
        AisBackupFileErrorT,
        file,
        problem,
        expected,
        actual,
        message
    );
    size!("AisBackupVerifyReportT", AisBackupVerifyReportT);
    off!(
        "AisBackupVerifyReportT",
        AisBackupVerifyReportT,
        backupId,
        numberOfCheckpoints,
        filesChecked,
        bytesChecked,
        numberOfProblems,
        problems
    );
    size!("AisBackupRestoreReportT", AisBackupRestoreReportT);
    off!(
        "AisBackupRestoreReportT",
        AisBackupRestoreReportT,
        backupId,
        checkpointsRestored,
        bytesRestored,
        checkpointsReplaced
    );
    consts!(
        AIS_BACKUP_MAX_CHECKPOINTS,
        AIS_BACKUP_MAX_PATH_LENGTH,
        AIS_BACKUP_PHASE_REQUESTED,
        AIS_BACKUP_PHASE_DEFINED,
        AIS_BACKUP_PHASE_RUNNING,
        AIS_BACKUP_PHASE_STOPPING,
        AIS_BACKUP_PHASE_DONE,
        AIS_BACKUP_PHASE_ABORTED,
        AIS_BACKUP_ERROR_DESTINATION_MISSING,
        AIS_BACKUP_ERROR_DESTINATION_NOT_WRITABLE,
        AIS_BACKUP_ERROR_DESTINATION_FULL,
        AIS_BACKUP_ERROR_DEVICE_TIMEOUT,
        AIS_BACKUP_ERROR_VANISHED,
        AIS_BACKUP_ERROR_CORRUPT,
        AIS_BACKUP_ERROR_TRANSIENT,
        AIS_BACKUP_ERROR_OTHER,
        AIS_BACKUP_FILE_UNSAFE_PATH,
        AIS_BACKUP_FILE_UNREADABLE,
        AIS_BACKUP_FILE_SIZE,
        AIS_BACKUP_FILE_CRC,
    );
    m
}

/// What C says: `ctest/layout.c`'s output.
fn c_layout() -> BTreeMap<String, u64> {
    let prog = build_c("layout.c", &[]);
    let out = run(&mut Command::new(&prog)).unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8(out.stdout).expect("ASCII output");
    text.lines()
        .map(|line| {
            let (key, value) = line.rsplit_once(' ').expect("`<key> <value>` lines");
            (key.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

#[test]
fn sizes_offsets_and_constants_agree_with_the_rust_side() {
    let c = c_layout();
    let rust = rust_layout();
    let mut diffs = Vec::new();
    for (k, v) in &c {
        match rust.get(k) {
            Some(r) if r == v => {}
            Some(r) => diffs.push(format!("{k}: C {v}, Rust {r}")),
            None => diffs.push(format!("{k}: C {v}, not checked on the Rust side")),
        }
    }
    for k in rust.keys().filter(|k| !c.contains_key(*k)) {
        diffs.push(format!("{k}: not printed by layout.c"));
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
    // The numbers the openais clients were compiled with (notes §2.1-2.5).
    let expect = [
        ("size SaNameT", 258),
        ("size SaVersionT", 3),
        ("size SaClmNodeAddressT", 72),
        ("size SaClmClusterNodeT", 360),
        ("offset SaClmClusterNodeT.nodeName", 76),
        ("offset SaClmClusterNodeT.bootTimestamp", 344),
        ("size SaClmClusterNotificationT", 368),
        ("size SaClmClusterNotificationBufferT", 24),
        ("size SaCkptCheckpointCreationAttributesT", 48),
        (
            "offset SaCkptCheckpointCreationAttributesT.maxSectionIdSize",
            40,
        ),
        ("size SaCkptSectionIdT", 16),
        ("size SaCkptSectionDescriptorT", 48),
        ("offset SaCkptSectionDescriptorT.sectionState", 32),
        ("size SaCkptIOVectorElementT", 48),
        ("offset SaCkptIOVectorElementT.readSize", 40),
        ("size SaCkptCheckpointDescriptorT", 56),
        ("offset SaCkptCheckpointDescriptorT.memoryUsed", 52),
        ("size struct evs_group", 32),
        ("size struct evs_address", 24),
        ("const SA_AIS_ERR_NO_SECTIONS", 27),
        ("const EVS_ERR_TOO_MANY_GROUPS", 30),
    ];
    for (k, v) in expect {
        assert_eq!(c.get(k), Some(&v), "{k}");
    }
    println!("{} sizes, offsets and constants agree", c.len());
}

#[test]
fn every_prototype_matches_the_specification_and_is_exported() {
    let prog = build_c("prototypes.c", &[]);
    let out = run(&mut Command::new(&prog)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "functions 39 of 39\n");
    if let Some(cxx) = cxx() {
        // The same file as C++: extern "C" linkage of every declaration.
        let s = stage();
        let exe = s.bin.join("prototypes_cpp");
        let mut c = Command::new(cxx);
        c.args(["-Wall", "-Wextra", "-Werror", "-x", "c++"])
            .arg("-I")
            .arg(&s.include)
            .arg(s.ctest.join("prototypes.c"))
            .args(["-x", "none", "-o"])
            .arg(&exe)
            .arg("-L")
            .arg(&s.lib)
            .arg(format!("-Wl,-rpath,{}", s.lib.display()))
            .arg("-lais");
        run(&mut c).unwrap_or_else(|e| panic!("prototypes.c as C++: {e}"));
        run(&mut Command::new(&exe)).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn the_library_has_its_soname_and_exports_only_the_api() {
    let s = stage();
    let lib = s.lib.join("libais.so.1");
    let Ok(out) = Command::new("readelf").arg("-dW").arg(&lib).output() else {
        panic!("readelf is needed to check the soname");
    };
    let dynamic = String::from_utf8_lossy(&out.stdout);
    assert!(
        dynamic.contains("Library soname: [libais.so.1]"),
        "{dynamic}"
    );
    let out = run(Command::new("nm").args(["-D", "--defined-only"]).arg(&lib))
        .unwrap_or_else(|e| panic!("{e}"));
    let symbols = String::from_utf8_lossy(&out.stdout);
    let exported: Vec<&str> = symbols
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, kind, name) = (f.next()?, f.next()?, f.next()?);
            (kind == "T").then_some(name)
        })
        .collect();
    for f in [
        "saClmInitialize",
        "saClmSelectionObjectGet",
        "saClmDispatch",
        "saClmFinalize",
        "saClmClusterTrack",
        "saClmClusterTrackStop",
        "saClmClusterNodeGet",
        "saClmClusterNodeGetAsync",
        "saCkptInitialize",
        "saCkptSelectionObjectGet",
        "saCkptDispatch",
        "saCkptFinalize",
        "saCkptCheckpointOpen",
        "saCkptCheckpointOpenAsync",
        "saCkptCheckpointClose",
        "saCkptCheckpointUnlink",
        "saCkptCheckpointRetentionDurationSet",
        "saCkptActiveReplicaSet",
        "saCkptCheckpointStatusGet",
        "saCkptSectionCreate",
        "saCkptSectionDelete",
        "saCkptSectionExpirationTimeSet",
        "saCkptSectionIterationInitialize",
        "saCkptSectionIterationNext",
        "saCkptSectionIterationFinalize",
        "saCkptCheckpointWrite",
        "saCkptSectionOverwrite",
        "saCkptCheckpointRead",
        "saCkptCheckpointSynchronize",
        "saCkptCheckpointSynchronizeAsync",
        "evs_initialize",
        "evs_finalize",
        "evs_fd_get",
        "evs_dispatch",
        "evs_join",
        "evs_leave",
        "evs_mcast_joined",
        "evs_mcast_groups",
        "evs_membership_get",
        "aisBackupInitialize",
        "aisBackupSelectionObjectGet",
        "aisBackupDispatch",
        "aisBackupFinalize",
        "aisBackupStart",
        "aisBackupStatusGet",
        "aisBackupStatusFree",
        "aisBackupListGet",
        "aisBackupListFree",
        "aisBackupVerify",
        "aisBackupVerifyReportFree",
        "aisBackupRestore",
    ] {
        assert!(exported.contains(&f), "{f} not exported: {exported:?}");
    }
    let foreign: Vec<&&str> = exported
        .iter()
        .filter(|n| !(n.starts_with("sa") || n.starts_with("evs_") || n.starts_with("aisBackup")))
        .collect();
    assert!(foreign.is_empty(), "unexpected exports: {foreign:?}");
}
