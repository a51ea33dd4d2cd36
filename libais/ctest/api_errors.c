/*
 * api_errors - the error codes of saClm.h and evs.h for bad handles, NULL
 * pointers, wrong versions, bad flags, and an absent or vanished executive.
 *
 *   api_errors nodaemon        AIS_SOCKET names no running executive
 *   api_errors daemon MEMBERS  an executive in a cluster of MEMBERS nodes
 *   api_errors broken          connects, prints "ready", reads a line from
 *                              stdin (meanwhile the executive is killed),
 *                              then checks the calls on the broken handles
 *
 * Prints "ok <check>" per check, "FAIL <check>: got X want Y" on the first
 * failure (exit status 1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "saAis.h"
#include "saClm.h"
#include "evs.h"

#define EXPECT(call, want, what) do { \
	int got_ = (int)(call); \
	if (got_ != (int)(want)) { \
		printf("FAIL %s: got %d want %d (line %d)\n", what, got_, (int)(want), __LINE__); \
		return 1; \
	} \
	printf("ok %s\n", what); \
} while (0)

#define CHECK(cond, what) do { \
	if (!(cond)) { printf("FAIL %s (line %d)\n", what, __LINE__); return 1; } \
	printf("ok %s\n", what); \
} while (0)

static int track_calls;
static SaUint32T track_members;
static SaUint32T track_items;
static int node_get_calls;
static SaAisErrorT node_get_error;

static void track_cb(const SaClmClusterNotificationBufferT *buf,
	SaUint32T members, SaAisErrorT error)
{
	track_calls++;
	track_members = members;
	track_items = buf->numberOfItems;
	(void)error;
}

static void node_get_cb(SaInvocationT inv, const SaClmClusterNodeT *node,
	SaAisErrorT error)
{
	node_get_calls++;
	node_get_error = error;
	(void)inv; (void)node;
}

static SaClmCallbacksT clm_callbacks = {
	.saClmClusterNodeGetCallback = node_get_cb,
	.saClmClusterTrackCallback = track_cb
};

static int versions_equal(const SaVersionT *v, char r, int major, int minor)
{
	return v->releaseCode == r && v->majorVersion == major && v->minorVersion == minor;
}

/* Every handle-taking function with a handle that is not one. */
static int bad_handles(SaUint64T bad, const char *which)
{
	SaSelectionObjectT sel;
	SaClmClusterNodeT node;
	SaClmClusterNotificationBufferT buf = { 0, 0, NULL };
	struct evs_group g = { "g" };
	struct iovec iov = { "x", 1 };
	unsigned int local, list[4], n = 4;
	int fd;
	char what[128];

#define BAD(call, code, name) do { \
	snprintf(what, sizeof(what), "%s with %s handle", name, which); \
	EXPECT(call, code, what); \
} while (0)
	BAD(saClmSelectionObjectGet(bad, &sel), SA_AIS_ERR_BAD_HANDLE, "saClmSelectionObjectGet");
	BAD(saClmDispatch(bad, SA_DISPATCH_ALL), SA_AIS_ERR_BAD_HANDLE, "saClmDispatch");
	BAD(saClmFinalize(bad), SA_AIS_ERR_BAD_HANDLE, "saClmFinalize");
	BAD(saClmClusterTrack(bad, SA_TRACK_CURRENT, &buf), SA_AIS_ERR_BAD_HANDLE, "saClmClusterTrack");
	BAD(saClmClusterTrackStop(bad), SA_AIS_ERR_BAD_HANDLE, "saClmClusterTrackStop");
	BAD(saClmClusterNodeGet(bad, SA_CLM_LOCAL_NODE_ID, SA_TIME_ONE_SECOND, &node),
		SA_AIS_ERR_BAD_HANDLE, "saClmClusterNodeGet");
	BAD(saClmClusterNodeGetAsync(bad, 1, SA_CLM_LOCAL_NODE_ID), SA_AIS_ERR_BAD_HANDLE,
		"saClmClusterNodeGetAsync");
	BAD(evs_finalize(bad), EVS_ERR_BAD_HANDLE, "evs_finalize");
	BAD(evs_fd_get(bad, &fd), EVS_ERR_BAD_HANDLE, "evs_fd_get");
	BAD(evs_dispatch(bad, EVS_DISPATCH_ALL), EVS_ERR_BAD_HANDLE, "evs_dispatch");
	BAD(evs_join(bad, &g, 1), EVS_ERR_BAD_HANDLE, "evs_join");
	BAD(evs_leave(bad, &g, 1), EVS_ERR_BAD_HANDLE, "evs_leave");
	BAD(evs_mcast_joined(bad, EVS_TYPE_AGREED, &iov, 1), EVS_ERR_BAD_HANDLE, "evs_mcast_joined");
	BAD(evs_mcast_groups(bad, EVS_TYPE_AGREED, &g, 1, &iov, 1), EVS_ERR_BAD_HANDLE,
		"evs_mcast_groups");
	BAD(evs_membership_get(bad, &local, list, &n), EVS_ERR_BAD_HANDLE, "evs_membership_get");
#undef BAD
	CHECK(n == 4, "no output written on failure");
	return 0;
}

static int no_daemon(void)
{
	SaClmHandleT h = 77;
	evs_handle_t eh = 77;
	evs_callbacks_t cb = { NULL, NULL };
	SaVersionT v;

	EXPECT(saClmInitialize(&h, &clm_callbacks, NULL), SA_AIS_ERR_INVALID_PARAM, "NULL version");
	v.releaseCode = 'A'; v.majorVersion = 1; v.minorVersion = 1;
	EXPECT(saClmInitialize(&h, &clm_callbacks, &v), SA_AIS_ERR_VERSION, "version A.1.1");
	CHECK(versions_equal(&v, 'B', 1, 1), "A.1.1: B.1.1 written back");
	v.releaseCode = 'B'; v.majorVersion = 2; v.minorVersion = 1;
	EXPECT(saClmInitialize(&h, &clm_callbacks, &v), SA_AIS_ERR_VERSION, "version B.2.1");
	CHECK(versions_equal(&v, 'B', 1, 1), "B.2.1: B.1.1 written back");
	v.releaseCode = 'C'; v.majorVersion = 255; v.minorVersion = 255;
	EXPECT(saClmInitialize(&h, &clm_callbacks, &v), SA_AIS_ERR_VERSION, "version C.255.255");
	v.releaseCode = 'B'; v.majorVersion = 1; v.minorVersion = 255;
	EXPECT(saClmInitialize(&h, &clm_callbacks, &v), SA_AIS_ERR_TRY_AGAIN,
		"B.1.255 without an executive: TRY_AGAIN");
	v.releaseCode = 'B'; v.majorVersion = 1; v.minorVersion = 0;
	EXPECT(saClmInitialize(&h, &clm_callbacks, &v), SA_AIS_ERR_TRY_AGAIN,
		"B.1.0 without an executive: TRY_AGAIN");
	CHECK(versions_equal(&v, 'B', 1, 1), "B.1.0: B.1.1 written back");
	EXPECT(saClmInitialize(NULL, &clm_callbacks, &v), SA_AIS_ERR_INVALID_PARAM, "NULL handle");
	CHECK(h == 77, "no handle written on failure");
	EXPECT(evs_initialize(&eh, &cb), EVS_ERR_TRY_AGAIN, "evs_initialize without an executive");
	EXPECT(evs_initialize(NULL, &cb), EVS_ERR_INVALID_PARAM, "evs_initialize NULL handle");
	CHECK(eh == 77, "no evs handle written on failure");
	if (bad_handles(0, "SA_HANDLE_INVALID") || bad_handles(0x1234567800000001ull, "garbage"))
		return 1;
	return 0;
}

static int clm_checks(int members)
{
	SaClmHandleT h, bare, stale;
	SaClmCallbacksT none = { NULL, NULL };
	SaVersionT v = { 'B', 1, 0 };
	SaClmClusterNodeT node;
	SaClmClusterNotificationT small[1], big[64];
	SaClmClusterNotificationBufferT buf;
	SaSelectionObjectT sel = 0;
	int i;

	EXPECT(saClmInitialize(&h, &clm_callbacks, &v), SA_AIS_OK, "saClmInitialize B.1.0");
	CHECK(versions_equal(&v, 'B', 1, 1), "B.1.1 written back");
	CHECK(h != SA_HANDLE_INVALID, "handle is not SA_HANDLE_INVALID");
	EXPECT(saClmSelectionObjectGet(h, NULL), SA_AIS_ERR_INVALID_PARAM, "selection NULL");
	EXPECT(saClmSelectionObjectGet(h, &sel), SA_AIS_OK, "selection object");
	CHECK(sel > 2, "selection object is a descriptor");

	EXPECT(saClmClusterTrack(h, 0, NULL), SA_AIS_ERR_BAD_FLAGS, "track flags 0");
	EXPECT(saClmClusterTrack(h, SA_TRACK_CHANGES | SA_TRACK_CHANGES_ONLY, NULL),
		SA_AIS_ERR_BAD_FLAGS, "track CHANGES|CHANGES_ONLY");
	EXPECT(saClmClusterTrack(h, 0x08, NULL), SA_AIS_ERR_BAD_FLAGS, "track unknown flag");
	buf.viewNumber = 0; buf.numberOfItems = 0; buf.notification = big;
	EXPECT(saClmClusterTrack(h, SA_TRACK_CURRENT, &buf), SA_AIS_ERR_INVALID_PARAM,
		"track buffer with 0 items");
	EXPECT(saClmClusterTrackStop(h), SA_AIS_ERR_NOT_EXIST, "track stop without tracking");

	/* A caller array too small: NO_SPACE, the number needed, no tracking. */
	buf.numberOfItems = 1; buf.notification = small;
	EXPECT(saClmClusterTrack(h, SA_TRACK_CURRENT | SA_TRACK_CHANGES, &buf),
		members > 1 ? SA_AIS_ERR_NO_SPACE : SA_AIS_OK, "track into a 1-entry array");
	CHECK((int)buf.numberOfItems == members, "numberOfItems = members");
	if (members > 1)
		EXPECT(saClmClusterTrackStop(h), SA_AIS_ERR_NOT_EXIST, "failed track started nothing");
	else
		EXPECT(saClmClusterTrackStop(h), SA_AIS_OK, "track stop");

	buf.numberOfItems = 64; buf.notification = big;
	EXPECT(saClmClusterTrack(h, SA_TRACK_CURRENT, &buf), SA_AIS_OK, "track into the caller's array");
	CHECK((int)buf.numberOfItems == members && buf.notification == big && buf.viewNumber > 0,
		"caller's array filled");
	for (i = 0; i < members; i++)
		CHECK(big[i].clusterChange == SA_CLM_NODE_NO_CHANGE && big[i].clusterNode.member == SA_TRUE,
			"current entries are members, NO_CHANGE");

	buf.numberOfItems = 0; buf.notification = NULL;
	EXPECT(saClmClusterTrack(h, SA_TRACK_CURRENT, &buf), SA_AIS_OK, "track into a library array");
	CHECK((int)buf.numberOfItems == members && buf.notification != NULL, "library array filled");
	free(buf.notification);

	EXPECT(saClmClusterTrack(h, SA_TRACK_CURRENT | SA_TRACK_CHANGES_ONLY, NULL), SA_AIS_OK,
		"track CURRENT with a NULL buffer");
	{
		struct pollfd pfd = { (int)sel, POLLIN, 0 };
		poll(&pfd, 1, 5000);
	}
	EXPECT(saClmDispatch(h, SA_DISPATCH_ALL), SA_AIS_OK, "dispatch");
	CHECK(track_calls == 1 && (int)track_members == members && (int)track_items == members,
		"current membership came as a track callback");
	EXPECT(saClmClusterTrackStop(h), SA_AIS_OK, "track stop");
	EXPECT(saClmClusterTrackStop(h), SA_AIS_ERR_NOT_EXIST, "track stop twice");

	EXPECT(saClmClusterNodeGet(h, SA_CLM_LOCAL_NODE_ID, 0, &node), SA_AIS_ERR_TIMEOUT, "node get timeout 0");
	EXPECT(saClmClusterNodeGet(h, SA_CLM_LOCAL_NODE_ID, SA_TIME_ONE_SECOND, NULL),
		SA_AIS_ERR_INVALID_PARAM, "node get NULL");
	EXPECT(saClmClusterNodeGet(h, 123456, SA_TIME_ONE_SECOND, &node), SA_AIS_ERR_NOT_EXIST,
		"node get unknown node");
	EXPECT(saClmClusterNodeGet(h, SA_CLM_LOCAL_NODE_ID, SA_TIME_END, &node), SA_AIS_OK,
		"node get local (timeout SA_TIME_END)");
	CHECK(node.member == SA_TRUE && node.nodeAddress.length > 0 && node.nodeAddress.family == SA_CLM_AF_INET,
		"local node record");
	EXPECT(saClmClusterNodeGet(h, node.nodeId, SA_TIME_ONE_SECOND, &node), SA_AIS_OK,
		"node get by id");
	EXPECT(saClmClusterNodeGetAsync(h, 60, 123456), SA_AIS_OK, "node get async unknown node");
	{
		struct pollfd pfd = { (int)sel, POLLIN, 0 };
		poll(&pfd, 1, 5000);
	}
	EXPECT(saClmDispatch(h, SA_DISPATCH_ALL), SA_AIS_OK, "dispatch");
	CHECK(node_get_calls == 1 && node_get_error == SA_AIS_ERR_NOT_EXIST,
		"async callback says NOT_EXIST");

	/* Without callbacks. */
	EXPECT(saClmInitialize(&bare, &none, &v), SA_AIS_OK, "saClmInitialize without callbacks");
	EXPECT(saClmClusterTrack(bare, SA_TRACK_CURRENT, NULL), SA_AIS_ERR_INIT, "track to callback without one");
	buf.numberOfItems = 64; buf.notification = big;
	EXPECT(saClmClusterTrack(bare, SA_TRACK_CHANGES, &buf), SA_AIS_ERR_INIT, "track changes without callback");
	EXPECT(saClmClusterTrack(bare, SA_TRACK_CURRENT, &buf), SA_AIS_OK, "track current into a buffer, no callback");
	EXPECT(saClmClusterNodeGetAsync(bare, 1, SA_CLM_LOCAL_NODE_ID), SA_AIS_ERR_INIT,
		"node get async without callback");
	EXPECT(saClmFinalize(bare), SA_AIS_OK, "finalize");
	EXPECT(saClmInitialize(&bare, NULL, &v), SA_AIS_OK, "saClmInitialize with NULL callbacks");
	EXPECT(saClmFinalize(bare), SA_AIS_OK, "finalize");

	stale = h;
	EXPECT(saClmFinalize(h), SA_AIS_OK, "saClmFinalize");
	EXPECT(saClmFinalize(h), SA_AIS_ERR_BAD_HANDLE, "saClmFinalize twice");
	return bad_handles(stale, "finalized");
}

static int evs_checks(int members)
{
	evs_handle_t h, stale;
	struct evs_group groups[51];
	struct iovec iov[2];
	unsigned int local = 0, list[64], n;
	char *huge;
	int i, fd;

	memset(groups, 0, sizeof(groups));
	for (i = 0; i < 51; i++)
		snprintf(groups[i].key, sizeof(groups[i].key), "group-%d", i);
	EXPECT(evs_initialize(&h, NULL), EVS_OK, "evs_initialize with NULL callbacks");
	EXPECT(evs_fd_get(h, NULL), EVS_ERR_INVALID_PARAM, "evs_fd_get NULL");
	EXPECT(evs_fd_get(h, &fd), EVS_OK, "evs_fd_get");
	EXPECT(evs_dispatch(h, 3), EVS_ERR_INVALID_PARAM, "evs_dispatch bad type");
	EXPECT(evs_join(h, groups, 51), EVS_ERR_TOO_MANY_GROUPS, "join 51 groups");
	EXPECT(evs_join(h, groups, -1), EVS_ERR_INVALID_PARAM, "join -1 groups");
	EXPECT(evs_join(h, NULL, 1), EVS_ERR_INVALID_PARAM, "join NULL groups");
	EXPECT(evs_leave(h, groups, 1), EVS_ERR_NOT_EXIST, "leave a group not joined");
	EXPECT(evs_join(h, groups, 50), EVS_OK, "join 50 groups");
	EXPECT(evs_leave(h, groups, 50), EVS_OK, "leave 50 groups");
	iov[0].iov_base = "x"; iov[0].iov_len = 1;
	EXPECT(evs_mcast_joined(h, 4, iov, 1), EVS_ERR_INVALID_PARAM, "mcast bad guarantee");
	EXPECT(evs_mcast_groups(h, EVS_TYPE_AGREED, groups, 51, iov, 1), EVS_ERR_TOO_MANY_GROUPS,
		"mcast_groups 51 groups");
	iov[1].iov_base = NULL; iov[1].iov_len = 5;
	EXPECT(evs_mcast_joined(h, EVS_TYPE_AGREED, iov, 2), EVS_ERR_INVALID_PARAM, "mcast NULL iov_base");
	EXPECT(evs_mcast_joined(h, EVS_TYPE_AGREED, NULL, 1), EVS_ERR_INVALID_PARAM, "mcast NULL iovec");
	huge = calloc(1, (1 << 20) + 1);
	iov[1].iov_base = huge; iov[1].iov_len = 1 << 20;
	EXPECT(evs_mcast_joined(h, EVS_TYPE_AGREED, iov, 2), SA_AIS_ERR_TOO_BIG, "mcast above 1 MiB");
	free(huge);

	n = 64;
	EXPECT(evs_membership_get(h, NULL, list, &n), EVS_ERR_INVALID_PARAM, "membership NULL local");
	EXPECT(evs_membership_get(h, &local, NULL, NULL), EVS_ERR_INVALID_PARAM, "membership NULL entries");
	n = 5;
	EXPECT(evs_membership_get(h, &local, NULL, &n), EVS_ERR_INVALID_PARAM, "membership NULL list");
	n = 0;
	EXPECT(evs_membership_get(h, &local, NULL, &n), EVS_OK, "membership capacity 0");
	CHECK(n == 0 && local != 0, "no entries, local node id");
	n = 1;
	EXPECT(evs_membership_get(h, &local, list, &n), EVS_OK, "membership capacity 1");
	CHECK(n == 1, "clamped to 1 entry");
	n = 64;
	EXPECT(evs_membership_get(h, &local, list, &n), EVS_OK, "membership");
	CHECK((int)n == members, "every member");

	stale = h;
	EXPECT(evs_finalize(h), EVS_OK, "evs_finalize");
	EXPECT(evs_finalize(h), EVS_ERR_BAD_HANDLE, "evs_finalize twice");
	return bad_handles(stale, "finalized evs");
}

static int broken(void)
{
	SaClmHandleT h;
	evs_handle_t eh;
	SaVersionT v = { 'B', 1, 1 };
	SaClmClusterNodeT node;
	evs_callbacks_t cb = { NULL, NULL };
	struct evs_group g = { "broken" };
	char line[16];

	setvbuf(stdout, NULL, _IOLBF, 0);
	EXPECT(saClmInitialize(&h, &clm_callbacks, &v), SA_AIS_OK, "saClmInitialize");
	EXPECT(evs_initialize(&eh, &cb), EVS_OK, "evs_initialize");
	printf("ready\n");
	if (fgets(line, sizeof(line), stdin) == NULL)
		return 1;
	EXPECT(saClmClusterNodeGet(h, SA_CLM_LOCAL_NODE_ID, SA_TIME_ONE_SECOND, &node),
		SA_AIS_ERR_LIBRARY, "node get on a broken connection");
	EXPECT(saClmDispatch(h, SA_DISPATCH_ALL), SA_AIS_ERR_LIBRARY, "dispatch on a broken connection");
	EXPECT(saClmDispatch(h, SA_DISPATCH_BLOCKING), SA_AIS_ERR_LIBRARY,
		"blocking dispatch on a broken connection returns");
	EXPECT(evs_join(eh, &g, 1), EVS_ERR_LIBRARY, "evs_join on a broken connection");
	EXPECT(evs_dispatch(eh, EVS_DISPATCH_ONE), EVS_ERR_LIBRARY, "evs_dispatch on a broken connection");
	EXPECT(saClmFinalize(h), SA_AIS_OK, "saClmFinalize of a broken handle");
	EXPECT(evs_finalize(eh), EVS_OK, "evs_finalize of a broken handle");
	EXPECT(saClmFinalize(h), SA_AIS_ERR_BAD_HANDLE, "saClmFinalize twice");
	EXPECT(saClmInitialize(&h, &clm_callbacks, &v), SA_AIS_ERR_TRY_AGAIN,
		"saClmInitialize with the executive gone");
	return 0;
}

int main(int argc, char **argv)
{
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && strcmp(argv[1], "nodaemon") == 0)
		rc = no_daemon();
	else if (argc >= 3 && strcmp(argv[1], "daemon") == 0)
		rc = clm_checks(atoi(argv[2])) || evs_checks(atoi(argv[2]));
	else if (argc >= 2 && strcmp(argv[1], "broken") == 0)
		rc = broken();
	else {
		fprintf(stderr, "usage: %s nodaemon | daemon MEMBERS | broken\n", argv[0]);
		return 1;
	}
	if (rc == 0)
		printf("all passed\n");
	return rc;
}
