/*
 * Every function of saClm.h, saCkpt.h and evs.h redeclared with the
 * prototype of the specification (SA Forum AIS B.01.01, openais evs.h),
 * and every struct initialised as the openais test programs do (testckpt,
 * ckptstress, ckpt-wr, ckpt-overload-exit, testclm2, testevs): a header that
 * disagrees makes this file fail to compile ("conflicting types"). Linked
 * against libais.so, it also proves that every function is exported; run,
 * it checks each address is non-NULL.
 */
#include <stdio.h>

#include "saAis.h"
#include "saClm.h"
#include "saCkpt.h"
#include "evs.h"

SaAisErrorT saClmInitialize(SaClmHandleT *clmHandle,
	const SaClmCallbacksT *clmCallbacks, SaVersionT *version);
SaAisErrorT saClmSelectionObjectGet(SaClmHandleT clmHandle,
	SaSelectionObjectT *selectionObject);
SaAisErrorT saClmDispatch(SaClmHandleT clmHandle,
	SaDispatchFlagsT dispatchFlags);
SaAisErrorT saClmFinalize(SaClmHandleT clmHandle);
SaAisErrorT saClmClusterTrack(SaClmHandleT clmHandle, SaUint8T trackFlags,
	SaClmClusterNotificationBufferT *notificationBuffer);
SaAisErrorT saClmClusterTrackStop(SaClmHandleT clmHandle);
SaAisErrorT saClmClusterNodeGet(SaClmHandleT clmHandle, SaClmNodeIdT nodeId,
	SaTimeT timeout, SaClmClusterNodeT *clusterNode);
SaAisErrorT saClmClusterNodeGetAsync(SaClmHandleT clmHandle,
	SaInvocationT invocation, SaClmNodeIdT nodeId);

SaAisErrorT saCkptInitialize(SaCkptHandleT *ckptHandle,
	const SaCkptCallbacksT *callbacks, SaVersionT *version);
SaAisErrorT saCkptSelectionObjectGet(SaCkptHandleT ckptHandle,
	SaSelectionObjectT *selectionObject);
SaAisErrorT saCkptDispatch(SaCkptHandleT ckptHandle,
	SaDispatchFlagsT dispatchFlags);
SaAisErrorT saCkptFinalize(SaCkptHandleT ckptHandle);
SaAisErrorT saCkptCheckpointOpen(SaCkptHandleT ckptHandle,
	const SaNameT *checkpointName,
	const SaCkptCheckpointCreationAttributesT *checkpointCreationAttributes,
	SaCkptCheckpointOpenFlagsT checkpointOpenFlags, SaTimeT timeout,
	SaCkptCheckpointHandleT *checkpointHandle);
SaAisErrorT saCkptCheckpointOpenAsync(SaCkptHandleT ckptHandle,
	SaInvocationT invocation, const SaNameT *checkpointName,
	const SaCkptCheckpointCreationAttributesT *checkpointCreationAttributes,
	SaCkptCheckpointOpenFlagsT checkpointOpenFlags);
SaAisErrorT saCkptCheckpointClose(SaCkptCheckpointHandleT checkpointHandle);
SaAisErrorT saCkptCheckpointUnlink(SaCkptHandleT ckptHandle,
	const SaNameT *checkpointName);
SaAisErrorT saCkptCheckpointRetentionDurationSet(
	SaCkptCheckpointHandleT checkpointHandle, SaTimeT retentionDuration);
SaAisErrorT saCkptActiveReplicaSet(
	const SaCkptCheckpointHandleT checkpointHandle);
SaAisErrorT saCkptCheckpointStatusGet(SaCkptCheckpointHandleT checkpointHandle,
	SaCkptCheckpointDescriptorT *checkpointStatus);
SaAisErrorT saCkptSectionCreate(SaCkptCheckpointHandleT checkpointHandle,
	SaCkptSectionCreationAttributesT *sectionCreationAttributes,
	const void *initialData, SaSizeT initialDataSize);
SaAisErrorT saCkptSectionDelete(SaCkptCheckpointHandleT checkpointHandle,
	const SaCkptSectionIdT *sectionId);
SaAisErrorT saCkptSectionExpirationTimeSet(
	SaCkptCheckpointHandleT checkpointHandle,
	const SaCkptSectionIdT *sectionId, SaTimeT expirationTime);
SaAisErrorT saCkptSectionIterationInitialize(
	const SaCkptCheckpointHandleT checkpointHandle,
	SaCkptSectionsChosenT sectionsChosen, SaTimeT expirationTime,
	SaCkptSectionIterationHandleT *sectionIterationHandle);
SaAisErrorT saCkptSectionIterationNext(
	SaCkptSectionIterationHandleT sectionIterationHandle,
	SaCkptSectionDescriptorT *sectionDescriptor);
SaAisErrorT saCkptSectionIterationFinalize(
	SaCkptSectionIterationHandleT sectionIterationHandle);
SaAisErrorT saCkptCheckpointWrite(SaCkptCheckpointHandleT checkpointHandle,
	const SaCkptIOVectorElementT *ioVector, SaUint32T numberOfElements,
	SaUint32T *erroneousVectorIndex);
SaAisErrorT saCkptSectionOverwrite(SaCkptCheckpointHandleT checkpointHandle,
	const SaCkptSectionIdT *sectionId, const void *dataBuffer,
	SaSizeT dataSize);
SaAisErrorT saCkptCheckpointRead(SaCkptCheckpointHandleT checkpointHandle,
	SaCkptIOVectorElementT *ioVector, SaUint32T numberOfElements,
	SaUint32T *erroneousVectorIndex);
SaAisErrorT saCkptCheckpointSynchronize(SaCkptCheckpointHandleT checkpointHandle,
	SaTimeT timeout);
SaAisErrorT saCkptCheckpointSynchronizeAsync(
	SaCkptCheckpointHandleT checkpointHandle, SaInvocationT invocation);

evs_error_t evs_initialize(evs_handle_t *handle, evs_callbacks_t *callbacks);
evs_error_t evs_finalize(evs_handle_t handle);
evs_error_t evs_fd_get(evs_handle_t handle, int *fd);
evs_error_t evs_dispatch(evs_handle_t handle, evs_dispatch_t dispatch_types);
evs_error_t evs_join(evs_handle_t handle, struct evs_group *groups,
	int group_cnt);
evs_error_t evs_leave(evs_handle_t handle, struct evs_group *groups,
	int group_cnt);
evs_error_t evs_mcast_joined(evs_handle_t handle, evs_guarantee_t guarantee,
	struct iovec *iovec, int iov_len);
evs_error_t evs_mcast_groups(evs_handle_t handle, evs_guarantee_t guarantee,
	struct evs_group *groups, int group_cnt, struct iovec *iovec,
	int iov_len);
evs_error_t evs_membership_get(evs_handle_t handle,
	unsigned int *local_nodeid, unsigned int *member_list,
	unsigned int *member_list_entries);

/* The callback types, by assignment of functions of the spec's prototype. */
static void node_get_cb(SaInvocationT invocation,
	const SaClmClusterNodeT *clusterNode, SaAisErrorT error)
{
	(void)invocation; (void)clusterNode; (void)error;
}
static void track_cb(const SaClmClusterNotificationBufferT *notificationBuffer,
	SaUint32T numberOfMembers, SaAisErrorT error)
{
	(void)notificationBuffer; (void)numberOfMembers; (void)error;
}
static void deliver_cb(unsigned int nodeid, void *msg, int msg_len)
{
	(void)nodeid; (void)msg; (void)msg_len;
}
static void confchg_cb(unsigned int *member_list, int member_list_entries,
	unsigned int *left_list, int left_list_entries,
	unsigned int *joined_list, int joined_list_entries)
{
	(void)member_list; (void)member_list_entries; (void)left_list;
	(void)left_list_entries; (void)joined_list; (void)joined_list_entries;
}

static void open_cb(SaInvocationT invocation,
	const SaCkptCheckpointHandleT checkpointHandle, SaAisErrorT error)
{
	(void)invocation; (void)checkpointHandle; (void)error;
}
static void sync_cb(SaInvocationT invocation, SaAisErrorT error)
{
	(void)invocation; (void)error;
}

/* Initializers as the openais test programs write them. */
static SaCkptCallbacksT ckpt_callbacks = { &open_cb, sync_cb };
static SaCkptCheckpointCreationAttributesT ckpt_attrs = {
	SA_CKPT_WR_ALL_REPLICAS, 100000, 5000000000LL, 5, 20000, 10
};
static SaCkptSectionIdT section_id = { 13, (SaUint8T *)"section ID #1" };
static SaCkptSectionCreationAttributesT section_attrs = { &section_id, SA_TIME_END };
static char read_buffer[1025];
static SaCkptIOVectorElementT read_vector[] = {
	{ { 13, (SaUint8T *)"section ID #1" }, read_buffer, sizeof(read_buffer), 0, 0 },
	{ SA_CKPT_DEFAULT_SECTION_ID, read_buffer, sizeof(read_buffer), 0, 0 }
};
static SaCkptCheckpointDescriptorT ckpt_status;
static SaOffsetT offset = 5;
static SaClmCallbacksT clm_callbacks = {
	.saClmClusterNodeGetCallback = node_get_cb,
	.saClmClusterTrackCallback = track_cb
};
static evs_callbacks_t evs_callbacks = { deliver_cb, confchg_cb };
static SaNameT name = { 5, "abra\0" };
static SaVersionT version = { 'B', 1, 1 };
static struct evs_group groups[3] = { { "key1" }, { "key2" }, { "key3" } };
static SaClmClusterNotificationBufferT buffer = { 0, 0, NULL };

typedef void (*any_fn)(void);

int main(void)
{
	int i, n = 0;
	const any_fn fns[] = {
		(any_fn)saClmInitialize, (any_fn)saClmSelectionObjectGet,
		(any_fn)saClmDispatch, (any_fn)saClmFinalize,
		(any_fn)saClmClusterTrack, (any_fn)saClmClusterTrackStop,
		(any_fn)saClmClusterNodeGet, (any_fn)saClmClusterNodeGetAsync,
		(any_fn)saCkptInitialize, (any_fn)saCkptSelectionObjectGet,
		(any_fn)saCkptDispatch, (any_fn)saCkptFinalize,
		(any_fn)saCkptCheckpointOpen, (any_fn)saCkptCheckpointOpenAsync,
		(any_fn)saCkptCheckpointClose, (any_fn)saCkptCheckpointUnlink,
		(any_fn)saCkptCheckpointRetentionDurationSet,
		(any_fn)saCkptActiveReplicaSet, (any_fn)saCkptCheckpointStatusGet,
		(any_fn)saCkptSectionCreate, (any_fn)saCkptSectionDelete,
		(any_fn)saCkptSectionExpirationTimeSet,
		(any_fn)saCkptSectionIterationInitialize,
		(any_fn)saCkptSectionIterationNext,
		(any_fn)saCkptSectionIterationFinalize,
		(any_fn)saCkptCheckpointWrite, (any_fn)saCkptSectionOverwrite,
		(any_fn)saCkptCheckpointRead, (any_fn)saCkptCheckpointSynchronize,
		(any_fn)saCkptCheckpointSynchronizeAsync,
		(any_fn)evs_initialize, (any_fn)evs_finalize, (any_fn)evs_fd_get,
		(any_fn)evs_dispatch, (any_fn)evs_join, (any_fn)evs_leave,
		(any_fn)evs_mcast_joined, (any_fn)evs_mcast_groups,
		(any_fn)evs_membership_get,
	};
	/* ckpt-wr and ckpt-overload-exit: the default id as a compound literal. */
	SaCkptSectionIdT default_id = (SaCkptSectionIdT)SA_CKPT_DEFAULT_SECTION_ID;

	for (i = 0; i < (int)(sizeof(fns) / sizeof(fns[0])); i++) {
		if (fns[i] != NULL)
			n++;
	}
	printf("functions %d of %d\n", n, (int)(sizeof(fns) / sizeof(fns[0])));
	return (n == (int)(sizeof(fns) / sizeof(fns[0]))
		&& clm_callbacks.saClmClusterTrackCallback == track_cb
		&& evs_callbacks.evs_confchg_fn == confchg_cb
		&& name.length == 5 && version.releaseCode == 'B'
		&& groups[2].key[3] == '3' && buffer.notification == NULL
		&& ckpt_callbacks.saCkptCheckpointSynchronizeCallback == sync_cb
		&& ckpt_attrs.maxSectionIdSize == 10 && ckpt_attrs.maxSections == 5
		&& section_attrs.sectionId->idLen == 13
		&& read_vector[0].dataSize == 1025 && read_vector[1].sectionId.idLen == 0
		&& read_vector[1].sectionId.id == NULL && default_id.idLen == 0
		&& ckpt_status.memoryUsed == 0 && offset == 5) ? 0 : 1;
}
