/*
 * Every function of saClm.h and evs.h redeclared with the prototype of the
 * specification (SA Forum AIS B.01.01, openais evs.h): a header that
 * disagrees makes this file fail to compile ("conflicting types"). Linked
 * against libais.so, it also proves that every function is exported; run,
 * it checks each address is non-NULL.
 */
#include <stdio.h>

#include "saAis.h"
#include "saClm.h"
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

/* Initializers as the openais test programs write them. */
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
		(any_fn)evs_initialize, (any_fn)evs_finalize, (any_fn)evs_fd_get,
		(any_fn)evs_dispatch, (any_fn)evs_join, (any_fn)evs_leave,
		(any_fn)evs_mcast_joined, (any_fn)evs_mcast_groups,
		(any_fn)evs_membership_get,
	};
	for (i = 0; i < (int)(sizeof(fns) / sizeof(fns[0])); i++) {
		if (fns[i] != NULL)
			n++;
	}
	printf("functions %d of %d\n", n, (int)(sizeof(fns) / sizeof(fns[0])));
	return (n == (int)(sizeof(fns) / sizeof(fns[0]))
		&& clm_callbacks.saClmClusterTrackCallback == track_cb
		&& evs_callbacks.evs_confchg_fn == confchg_cb
		&& name.length == 5 && version.releaseCode == 'B'
		&& groups[2].key[3] == '3' && buffer.notification == NULL) ? 0 : 1;
}
