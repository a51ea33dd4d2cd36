/*
 * Prints the size of every type, the offset of every struct field and the
 * value of every constant of saAis.h, saClm.h, saCkpt.h, evs.h and
 * ais_backup.h, one per
 * line:
 *   size <type> <bytes>
 *   offset <type>.<field> <bytes>
 *   const <name> <value>
 * tests/c_headers.rs compares the output with the Rust definitions.
 */
#include <stddef.h>
#include <stdio.h>

#include "saAis.h"
#include "saClm.h"
#include "saCkpt.h"
#include "evs.h"
#include "ais_backup.h"

#define SIZE(T) printf("size %s %lu\n", #T, (unsigned long)sizeof(T))
#define OFF(T, F) printf("offset %s.%s %lu\n", #T, #F, (unsigned long)offsetof(T, F))
#define CONST(C) printf("const %s %llu\n", #C, (unsigned long long)(C))

int main(void)
{
	/* saAis.h */
	SIZE(SaBoolT);
	SIZE(SaInt8T);
	SIZE(SaInt16T);
	SIZE(SaInt32T);
	SIZE(SaInt64T);
	SIZE(SaUint8T);
	SIZE(SaUint16T);
	SIZE(SaUint32T);
	SIZE(SaUint64T);
	SIZE(SaFloatT);
	SIZE(SaDoubleT);
	SIZE(SaStringT);
	SIZE(SaTimeT);
	SIZE(SaNameT);
	OFF(SaNameT, length);
	OFF(SaNameT, value);
	SIZE(SaVersionT);
	OFF(SaVersionT, releaseCode);
	OFF(SaVersionT, majorVersion);
	OFF(SaVersionT, minorVersion);
	SIZE(SaNtfIdentifierT);
	SIZE(SaDispatchFlagsT);
	SIZE(SaSelectionObjectT);
	SIZE(SaInvocationT);
	SIZE(SaSizeT);
	SIZE(SaAisErrorT);
	CONST(SA_FALSE);
	CONST(SA_TRUE);
	CONST(SA_TIME_END);
	CONST(SA_TIME_BEGIN);
	CONST(SA_TIME_UNKNOWN);
	CONST(SA_TIME_ONE_MICROSECOND);
	CONST(SA_TIME_ONE_MILLISECOND);
	CONST(SA_TIME_ONE_SECOND);
	CONST(SA_TIME_ONE_MINUTE);
	CONST(SA_TIME_ONE_HOUR);
	CONST(SA_TIME_ONE_DAY);
	CONST(SA_TIME_MAX);
	CONST(SA_MAX_NAME_LENGTH);
	CONST(SA_TRACK_CURRENT);
	CONST(SA_TRACK_CHANGES);
	CONST(SA_TRACK_CHANGES_ONLY);
	CONST(SA_DISPATCH_ONE);
	CONST(SA_DISPATCH_ALL);
	CONST(SA_DISPATCH_BLOCKING);
	CONST(SA_HANDLE_INVALID);
	CONST(SA_AIS_OK);
	CONST(SA_AIS_ERR_LIBRARY);
	CONST(SA_AIS_ERR_VERSION);
	CONST(SA_AIS_ERR_INIT);
	CONST(SA_AIS_ERR_TIMEOUT);
	CONST(SA_AIS_ERR_TRY_AGAIN);
	CONST(SA_AIS_ERR_INVALID_PARAM);
	CONST(SA_AIS_ERR_NO_MEMORY);
	CONST(SA_AIS_ERR_BAD_HANDLE);
	CONST(SA_AIS_ERR_BUSY);
	CONST(SA_AIS_ERR_ACCESS);
	CONST(SA_AIS_ERR_NOT_EXIST);
	CONST(SA_AIS_ERR_NAME_TOO_LONG);
	CONST(SA_AIS_ERR_EXIST);
	CONST(SA_AIS_ERR_NO_SPACE);
	CONST(SA_AIS_ERR_INTERRUPT);
	CONST(SA_AIS_ERR_NAME_NOT_FOUND);
	CONST(SA_AIS_ERR_NO_RESOURCES);
	CONST(SA_AIS_ERR_NOT_SUPPORTED);
	CONST(SA_AIS_ERR_BAD_OPERATION);
	CONST(SA_AIS_ERR_FAILED_OPERATION);
	CONST(SA_AIS_ERR_MESSAGE_ERROR);
	CONST(SA_AIS_ERR_QUEUE_FULL);
	CONST(SA_AIS_ERR_QUEUE_NOT_AVAILABLE);
	CONST(SA_AIS_ERR_BAD_FLAGS);
	CONST(SA_AIS_ERR_TOO_BIG);
	CONST(SA_AIS_ERR_NO_SECTIONS);
	CONST(SA_AIS_ERR_SECURITY);

	/* saClm.h */
	SIZE(SaClmHandleT);
	SIZE(SaClmNodeIdT);
	SIZE(SaClmNodeAddressFamilyT);
	SIZE(SaClmNodeAddressT);
	OFF(SaClmNodeAddressT, family);
	OFF(SaClmNodeAddressT, length);
	OFF(SaClmNodeAddressT, value);
	SIZE(SaClmClusterNodeT);
	OFF(SaClmClusterNodeT, nodeId);
	OFF(SaClmClusterNodeT, nodeAddress);
	OFF(SaClmClusterNodeT, nodeName);
	OFF(SaClmClusterNodeT, member);
	OFF(SaClmClusterNodeT, bootTimestamp);
	OFF(SaClmClusterNodeT, initialViewNumber);
	SIZE(SaClmClusterChangesT);
	SIZE(SaClmClusterNotificationT);
	OFF(SaClmClusterNotificationT, clusterNode);
	OFF(SaClmClusterNotificationT, clusterChange);
	SIZE(SaClmClusterNotificationBufferT);
	OFF(SaClmClusterNotificationBufferT, viewNumber);
	OFF(SaClmClusterNotificationBufferT, numberOfItems);
	OFF(SaClmClusterNotificationBufferT, notification);
	SIZE(SaClmClusterNodeGetCallbackT);
	SIZE(SaClmClusterTrackCallbackT);
	SIZE(SaClmCallbacksT);
	OFF(SaClmCallbacksT, saClmClusterNodeGetCallback);
	OFF(SaClmCallbacksT, saClmClusterTrackCallback);
	CONST(SA_CLM_LOCAL_NODE_ID);
	CONST(SA_CLM_MAX_ADDRESS_LENGTH);
	CONST(SA_CLM_AF_INET);
	CONST(SA_CLM_AF_INET6);
	CONST(SA_CLM_NODE_NO_CHANGE);
	CONST(SA_CLM_NODE_JOINED);
	CONST(SA_CLM_NODE_LEFT);
	CONST(SA_CLM_NODE_RECONFIGURED);

	/* saCkpt.h */
	SIZE(SaCkptHandleT);
	SIZE(SaCkptCheckpointHandleT);
	SIZE(SaCkptSectionIterationHandleT);
	SIZE(SaCkptCheckpointCreationFlagsT);
	SIZE(SaCkptCheckpointCreationAttributesT);
	OFF(SaCkptCheckpointCreationAttributesT, creationFlags);
	OFF(SaCkptCheckpointCreationAttributesT, checkpointSize);
	OFF(SaCkptCheckpointCreationAttributesT, retentionDuration);
	OFF(SaCkptCheckpointCreationAttributesT, maxSections);
	OFF(SaCkptCheckpointCreationAttributesT, maxSectionSize);
	OFF(SaCkptCheckpointCreationAttributesT, maxSectionIdSize);
	SIZE(SaCkptCheckpointOpenFlagsT);
	SIZE(SaCkptSectionIdT);
	OFF(SaCkptSectionIdT, idLen);
	OFF(SaCkptSectionIdT, id);
	SIZE(SaCkptSectionCreationAttributesT);
	OFF(SaCkptSectionCreationAttributesT, sectionId);
	OFF(SaCkptSectionCreationAttributesT, expirationTime);
	SIZE(SaCkptSectionStateT);
	SIZE(SaCkptSectionDescriptorT);
	OFF(SaCkptSectionDescriptorT, sectionId);
	OFF(SaCkptSectionDescriptorT, expirationTime);
	OFF(SaCkptSectionDescriptorT, sectionSize);
	OFF(SaCkptSectionDescriptorT, sectionState);
	OFF(SaCkptSectionDescriptorT, lastUpdate);
	SIZE(SaCkptSectionsChosenT);
	SIZE(SaOffsetT);
	SIZE(SaCkptIOVectorElementT);
	OFF(SaCkptIOVectorElementT, sectionId);
	OFF(SaCkptIOVectorElementT, dataBuffer);
	OFF(SaCkptIOVectorElementT, dataSize);
	OFF(SaCkptIOVectorElementT, dataOffset);
	OFF(SaCkptIOVectorElementT, readSize);
	SIZE(SaCkptCheckpointDescriptorT);
	OFF(SaCkptCheckpointDescriptorT, checkpointCreationAttributes);
	OFF(SaCkptCheckpointDescriptorT, numberOfSections);
	OFF(SaCkptCheckpointDescriptorT, memoryUsed);
	SIZE(SaCkptCheckpointOpenCallbackT);
	SIZE(SaCkptCheckpointSynchronizeCallbackT);
	SIZE(SaCkptCallbacksT);
	OFF(SaCkptCallbacksT, saCkptCheckpointOpenCallback);
	OFF(SaCkptCallbacksT, saCkptCheckpointSynchronizeCallback);
	CONST(SA_CKPT_WR_ALL_REPLICAS);
	CONST(SA_CKPT_WR_ACTIVE_REPLICA);
	CONST(SA_CKPT_WR_ACTIVE_REPLICA_WEAK);
	CONST(SA_CKPT_CHECKPOINT_COLLOCATED);
	CONST(SA_CKPT_CHECKPOINT_READ);
	CONST(SA_CKPT_CHECKPOINT_WRITE);
	CONST(SA_CKPT_CHECKPOINT_CREATE);
	CONST(SA_CKPT_SECTION_VALID);
	CONST(SA_CKPT_SECTION_CORRUPTED);
	CONST(SA_CKPT_SECTIONS_FOREVER);
	CONST(SA_CKPT_SECTIONS_LEQ_EXPIRATION_TIME);
	CONST(SA_CKPT_SECTIONS_GEQ_EXPIRATION_TIME);
	CONST(SA_CKPT_SECTIONS_CORRUPTED);
	CONST(SA_CKPT_SECTIONS_ANY);
	{
		/* Both initialisers are { 0, 0 }: the length and the pointer. */
		SaCkptSectionIdT d = SA_CKPT_DEFAULT_SECTION_ID;
		SaCkptSectionIdT g = SA_CKPT_GENERATED_SECTION_ID;
		printf("const SA_CKPT_DEFAULT_SECTION_ID.idLen %u\n", (unsigned)d.idLen);
		printf("const SA_CKPT_DEFAULT_SECTION_ID.id %u\n", (unsigned)(d.id != 0));
		printf("const SA_CKPT_GENERATED_SECTION_ID.idLen %u\n", (unsigned)g.idLen);
		printf("const SA_CKPT_GENERATED_SECTION_ID.id %u\n", (unsigned)(g.id != 0));
	}

	/* evs.h */
	SIZE(evs_handle_t);
	SIZE(evs_dispatch_t);
	SIZE(evs_guarantee_t);
	SIZE(evs_error_t);
	SIZE(struct evs_address);
	OFF(struct evs_address, nodeid);
	OFF(struct evs_address, family);
	OFF(struct evs_address, addr);
	SIZE(struct evs_group);
	OFF(struct evs_group, key);
	SIZE(evs_deliver_fn_t);
	SIZE(evs_confchg_fn_t);
	SIZE(evs_callbacks_t);
	OFF(evs_callbacks_t, evs_deliver_fn);
	OFF(evs_callbacks_t, evs_confchg_fn);
	SIZE(struct iovec);
	OFF(struct iovec, iov_base);
	OFF(struct iovec, iov_len);
	CONST(EVS_DISPATCH_ONE);
	CONST(EVS_DISPATCH_ALL);
	CONST(EVS_DISPATCH_BLOCKING);
	CONST(EVS_TYPE_UNORDERED);
	CONST(EVS_TYPE_FIFO);
	CONST(EVS_TYPE_AGREED);
	CONST(EVS_TYPE_SAFE);
	CONST(EVS_OK);
	CONST(EVS_ERR_LIBRARY);
	CONST(EVS_ERR_TIMEOUT);
	CONST(EVS_ERR_TRY_AGAIN);
	CONST(EVS_ERR_INVALID_PARAM);
	CONST(EVS_ERR_NO_MEMORY);
	CONST(EVS_ERR_BAD_HANDLE);
	CONST(EVS_ERR_ACCESS);
	CONST(EVS_ERR_NOT_EXIST);
	CONST(EVS_ERR_EXIST);
	CONST(EVS_ERR_NOT_SUPPORTED);
	CONST(EVS_ERR_SECURITY);
	CONST(EVS_ERR_TOO_MANY_GROUPS);
	CONST(TOTEMIP_ADDRLEN);

	/* ais_backup.h */
	SIZE(AisBackupHandleT);
	SIZE(AisBackupIdT);
	SIZE(AisBackupPhaseT);
	SIZE(AisBackupErrorClassT);
	SIZE(AisBackupFileProblemT);
	SIZE(AisBackupFailedCheckpointT);
	OFF(AisBackupFailedCheckpointT, checkpointName);
	OFF(AisBackupFailedCheckpointT, errorClass);
	OFF(AisBackupFailedCheckpointT, message);
	SIZE(AisBackupNodeErrorT);
	OFF(AisBackupNodeErrorT, nodeId);
	OFF(AisBackupNodeErrorT, errorClass);
	OFF(AisBackupNodeErrorT, message);
	SIZE(AisBackupStatusT);
	OFF(AisBackupStatusT, backupId);
	OFF(AisBackupStatusT, phase);
	OFF(AisBackupStatusT, masterNodeId);
	OFF(AisBackupStatusT, destination);
	OFF(AisBackupStatusT, directory);
	OFF(AisBackupStatusT, checkpointsTotal);
	OFF(AisBackupStatusT, checkpointsDone);
	OFF(AisBackupStatusT, bytesTotal);
	OFF(AisBackupStatusT, bytesDone);
	OFF(AisBackupStatusT, reason);
	OFF(AisBackupStatusT, numberOfFailed);
	OFF(AisBackupStatusT, failed);
	OFF(AisBackupStatusT, numberOfErrors);
	OFF(AisBackupStatusT, errors);
	SIZE(AisBackupCallbacksT);
	OFF(AisBackupCallbacksT, aisBackupCompletionCallback);
	SIZE(AisBackupFileErrorT);
	OFF(AisBackupFileErrorT, file);
	OFF(AisBackupFileErrorT, problem);
	OFF(AisBackupFileErrorT, expected);
	OFF(AisBackupFileErrorT, actual);
	OFF(AisBackupFileErrorT, message);
	SIZE(AisBackupVerifyReportT);
	OFF(AisBackupVerifyReportT, backupId);
	OFF(AisBackupVerifyReportT, numberOfCheckpoints);
	OFF(AisBackupVerifyReportT, filesChecked);
	OFF(AisBackupVerifyReportT, bytesChecked);
	OFF(AisBackupVerifyReportT, numberOfProblems);
	OFF(AisBackupVerifyReportT, problems);
	SIZE(AisBackupRestoreReportT);
	OFF(AisBackupRestoreReportT, backupId);
	OFF(AisBackupRestoreReportT, checkpointsRestored);
	OFF(AisBackupRestoreReportT, bytesRestored);
	OFF(AisBackupRestoreReportT, checkpointsReplaced);
	CONST(AIS_BACKUP_MAX_CHECKPOINTS);
	CONST(AIS_BACKUP_MAX_PATH_LENGTH);
	CONST(AIS_BACKUP_PHASE_REQUESTED);
	CONST(AIS_BACKUP_PHASE_DEFINED);
	CONST(AIS_BACKUP_PHASE_RUNNING);
	CONST(AIS_BACKUP_PHASE_STOPPING);
	CONST(AIS_BACKUP_PHASE_DONE);
	CONST(AIS_BACKUP_PHASE_ABORTED);
	CONST(AIS_BACKUP_ERROR_DESTINATION_MISSING);
	CONST(AIS_BACKUP_ERROR_DESTINATION_NOT_WRITABLE);
	CONST(AIS_BACKUP_ERROR_DESTINATION_FULL);
	CONST(AIS_BACKUP_ERROR_DEVICE_TIMEOUT);
	CONST(AIS_BACKUP_ERROR_VANISHED);
	CONST(AIS_BACKUP_ERROR_CORRUPT);
	CONST(AIS_BACKUP_ERROR_TRANSIENT);
	CONST(AIS_BACKUP_ERROR_OTHER);
	CONST(AIS_BACKUP_FILE_UNSAFE_PATH);
	CONST(AIS_BACKUP_FILE_UNREADABLE);
	CONST(AIS_BACKUP_FILE_SIZE);
	CONST(AIS_BACKUP_FILE_CRC);
	return 0;
}
