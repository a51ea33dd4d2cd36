/*
 * ais_backup.h - the BACKUP service of libais.so: cluster-wide consistent
 * backups of the replicated checkpoints, their verification, and restore.
 *
 * Not an SA Forum service; shaped like one so that it sits beside saCkpt.h
 * in an application: a handle from aisBackupInitialize with callbacks and a
 * version check (B.01.01), a selection object, aisBackupDispatch with
 * SA_DISPATCH_ONE / ALL / BLOCKING, aisBackupFinalize. Every function
 * returns an SaAisErrorT.
 *
 * A backup runs in the cluster, not in the caller: aisBackupStart asks the
 * backup master (the lowest node id of the ring) to take one; its end comes
 * back as the completion callback on the handle that started it, with the
 * result and the list of checkpoints that did not make it. Memory the
 * library hands out (strings and arrays in AisBackupStatusT and
 * AisBackupVerifyReportT) is released with the matching *Free function;
 * what a callback receives lives until the callback returns.
 *
 * The files' format is documented in the source tree (docs/backup-format.md).
 */
#ifndef AIS_BACKUP_H_DEFINED
#define AIS_BACKUP_H_DEFINED

#include "saAis.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef SaUint64T AisBackupHandleT;
/* A backup job's id: unique in the cluster, also the name of its directory
 * (destination/backup-<id in 16 hex digits>). */
typedef SaUint64T AisBackupIdT;

/* Most checkpoints one aisBackupStart may name. */
#define AIS_BACKUP_MAX_CHECKPOINTS 4096
/* Longest destination path, in bytes, without the terminating NUL. */
#define AIS_BACKUP_MAX_PATH_LENGTH 4096

typedef enum {
	AIS_BACKUP_PHASE_REQUESTED = 1, /* asked; the master has not defined it */
	AIS_BACKUP_PHASE_DEFINED = 2,   /* defined; the cut is not taken yet */
	AIS_BACKUP_PHASE_RUNNING = 3,   /* cut taken; shares being written */
	AIS_BACKUP_PHASE_STOPPING = 4,  /* shares written; manifest next */
	AIS_BACKUP_PHASE_DONE = 5,      /* manifest written and flushed */
	AIS_BACKUP_PHASE_ABORTED = 6    /* ended; every node removed its files */
} AisBackupPhaseT;

/* Why a checkpoint or a node's share did not make it. The destination
 * classes move the share to another node; VANISHED and CORRUPT put the
 * checkpoint in the failed list without retry; TRANSIENT is what is left
 * after bounded retries. */
typedef enum {
	AIS_BACKUP_ERROR_DESTINATION_MISSING = 1,
	AIS_BACKUP_ERROR_DESTINATION_NOT_WRITABLE = 2,
	AIS_BACKUP_ERROR_DESTINATION_FULL = 3,
	AIS_BACKUP_ERROR_DEVICE_TIMEOUT = 4,
	AIS_BACKUP_ERROR_VANISHED = 5,
	AIS_BACKUP_ERROR_CORRUPT = 6,
	AIS_BACKUP_ERROR_TRANSIENT = 7,
	AIS_BACKUP_ERROR_OTHER = 8
} AisBackupErrorClassT;

typedef struct {
	SaNameT checkpointName;
	AisBackupErrorClassT errorClass;
	char *message; /* NUL-terminated, for people */
} AisBackupFailedCheckpointT;

typedef struct {
	SaUint32T nodeId;
	AisBackupErrorClassT errorClass;
	char *message; /* NUL-terminated, for people */
} AisBackupNodeErrorT;

/* A job as the local executive knows it. The strings and arrays belong to
 * the library: aisBackupStatusFree releases them. */
typedef struct {
	AisBackupIdT backupId;
	AisBackupPhaseT phase;
	SaUint32T masterNodeId;    /* 0 while no master is known */
	char *destination;         /* as given to aisBackupStart */
	char *directory;           /* the backup's own directory */
	SaUint32T checkpointsTotal;
	SaUint32T checkpointsDone; /* written and flushed */
	SaUint64T bytesTotal;
	SaUint64T bytesDone;       /* written and flushed */
	char *reason;              /* why it aborted; "" otherwise */
	SaUint32T numberOfFailed;
	AisBackupFailedCheckpointT *failed;
	SaUint32T numberOfErrors;
	AisBackupNodeErrorT *errors;
} AisBackupStatusT;

/* The end of a job started on this handle. `error` is SA_AIS_OK when the
 * backup is complete (its manifest written and flushed; `status->failed`
 * may still list checkpoints left out), or the reason it aborted. */
typedef void (*AisBackupCompletionCallbackT)(
	SaInvocationT invocation,
	SaAisErrorT error,
	const AisBackupStatusT *status);

typedef struct {
	AisBackupCompletionCallbackT aisBackupCompletionCallback;
} AisBackupCallbacksT;

/* What is wrong with one data file (aisBackupVerify). */
typedef enum {
	AIS_BACKUP_FILE_UNSAFE_PATH = 1, /* names a path outside the backup */
	AIS_BACKUP_FILE_UNREADABLE = 2,  /* missing or unreadable */
	AIS_BACKUP_FILE_SIZE = 3,        /* size differs: truncated or grown */
	AIS_BACKUP_FILE_CRC = 4          /* CRC-32 differs: corrupted */
} AisBackupFileProblemT;

typedef struct {
	char *file;                    /* relative to the backup's directory */
	AisBackupFileProblemT problem;
	SaUint64T expected;            /* SIZE: bytes; CRC: CRC-32; else 0 */
	SaUint64T actual;
	char *message;                 /* NUL-terminated, for people */
} AisBackupFileErrorT;

typedef struct {
	AisBackupIdT backupId;
	SaUint32T numberOfCheckpoints; /* in the manifest */
	SaUint64T filesChecked;
	SaUint64T bytesChecked;
	SaUint32T numberOfProblems;
	AisBackupFileErrorT *problems;
} AisBackupVerifyReportT;

typedef struct {
	AisBackupIdT backupId;
	SaUint32T checkpointsRestored;
	SaUint64T bytesRestored;
	SaUint32T checkpointsReplaced; /* existing ones, with overwrite */
} AisBackupRestoreReportT;

SaAisErrorT aisBackupInitialize(
	AisBackupHandleT *backupHandle,
	const AisBackupCallbacksT *backupCallbacks,
	SaVersionT *version);

SaAisErrorT aisBackupSelectionObjectGet(
	AisBackupHandleT backupHandle,
	SaSelectionObjectT *selectionObject);

SaAisErrorT aisBackupDispatch(
	AisBackupHandleT backupHandle,
	SaDispatchFlagsT dispatchFlags);

SaAisErrorT aisBackupFinalize(AisBackupHandleT backupHandle);

/* Starts a backup of the named checkpoints (numberOfCheckpoints 0: every
 * checkpoint) into `destination`, an absolute directory that must exist on
 * the nodes (the same path on each). Returns at once with the job's id;
 * the end comes as the completion callback carrying `invocation`, which
 * needs a completion callback registered (else SA_AIS_ERR_INIT). */
SaAisErrorT aisBackupStart(
	AisBackupHandleT backupHandle,
	SaInvocationT invocation,
	const char *destination,
	const SaNameT *checkpointNames,
	SaUint32T numberOfCheckpoints,
	AisBackupIdT *backupId);

/* Job `backupId` now. SA_AIS_ERR_NOT_EXIST for a job this executive does
 * not know. On SA_AIS_OK, release with aisBackupStatusFree. */
SaAisErrorT aisBackupStatusGet(
	AisBackupHandleT backupHandle,
	AisBackupIdT backupId,
	AisBackupStatusT *status);

void aisBackupStatusFree(AisBackupStatusT *status);

/* Every job the executive knows, newest first: an array of
 * *numberOfJobs entries, released with aisBackupListFree. */
SaAisErrorT aisBackupListGet(
	AisBackupHandleT backupHandle,
	AisBackupStatusT **jobs,
	SaUint32T *numberOfJobs);

void aisBackupListFree(AisBackupStatusT *jobs, SaUint32T numberOfJobs);

/* Checks the backup in `directory` (the one holding its MANIFEST): the
 * manifest's own CRC, then every data file's size and CRC-32. SA_AIS_OK
 * when every file matches; SA_AIS_ERR_FAILED_OPERATION when some do not,
 * and then `report` lists them (the one failure that fills the report);
 * SA_AIS_ERR_NOT_EXIST without a manifest; SA_AIS_ERR_ACCESS when it cannot
 * be read. On SA_AIS_OK and SA_AIS_ERR_FAILED_OPERATION, release the report
 * with aisBackupVerifyReportFree. Reads files only: the handle is needed
 * for uniformity, not for the cluster. */
SaAisErrorT aisBackupVerify(
	AisBackupHandleT backupHandle,
	const char *directory,
	AisBackupVerifyReportT *report);

void aisBackupVerifyReportFree(AisBackupVerifyReportT *report);

/* Loads the backup in `directory` into the running cluster through the ring
 * (every replica gets every checkpoint). A backup that does not verify is
 * refused (SA_AIS_ERR_FAILED_OPERATION) before anything is written;
 * checkpoints that exist already are refused (SA_AIS_ERR_EXIST) unless
 * `overwrite` is SA_TRUE. `report` may be NULL. */
SaAisErrorT aisBackupRestore(
	AisBackupHandleT backupHandle,
	const char *directory,
	SaBoolT overwrite,
	AisBackupRestoreReportT *report);

#ifdef __cplusplus
}
#endif

#endif /* AIS_BACKUP_H_DEFINED */
