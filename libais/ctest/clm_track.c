/*
 * clm_track - print the cluster membership and every change to it.
 *
 * An SA Forum CLM client in the style of openais's testclm: it looks up
 * its own node, takes the current membership into a buffer the library
 * allocates, then tracks changes and prints each track callback, waiting
 * on the selection object with select() and dispatching with
 * SA_DISPATCH_ALL.
 *
 *   cc clm_track.c $(pkg-config --cflags --libs libais) -o clm_track
 *   AIS_SOCKET=/path/to/aisexec.sock ./clm_track
 *
 * Options (for scripts and tests):
 *   -c N   exit after N track callbacks
 *   -m N   exit once the membership has N members
 *   -t S   give up after S seconds (exit status 2)
 *   -r     retry saClmInitialize while it says SA_AIS_ERR_TRY_AGAIN (the
 *          executive is not running yet), and the local node lookup until
 *          the executive is in a view
 *
 * Output, one line each (stdout, line-buffered):
 *   local <id> <address> <name> member=<0|1> boot=<ns> initial_view=<v>
 *   current view=<v> items=<n>
 *   track view=<v> members=<m> items=<n> error=<e>
 *     node <id> <address> <NO_CHANGE|JOINED|LEFT|RECONFIGURED>
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "saAis.h"
#include "saClm.h"

static int callbacks_seen;
static int want_callbacks = -1;
static int want_members = -1;
static int done;

static const char *change_name(SaClmClusterChangesT change)
{
	switch (change) {
	case SA_CLM_NODE_NO_CHANGE: return "NO_CHANGE";
	case SA_CLM_NODE_JOINED: return "JOINED";
	case SA_CLM_NODE_LEFT: return "LEFT";
	case SA_CLM_NODE_RECONFIGURED: return "RECONFIGURED";
	}
	return "?";
}

static void print_items(const SaClmClusterNotificationBufferT *buf)
{
	SaUint32T i;

	for (i = 0; i < buf->numberOfItems; i++) {
		const SaClmClusterNotificationT *n = &buf->notification[i];
		printf("  node %u %.*s %s\n",
			(unsigned)n->clusterNode.nodeId,
			(int)n->clusterNode.nodeAddress.length,
			(const char *)n->clusterNode.nodeAddress.value,
			change_name(n->clusterChange));
	}
}

static void track_callback(const SaClmClusterNotificationBufferT *buf,
	SaUint32T numberOfMembers, SaAisErrorT error)
{
	printf("track view=%llu members=%u items=%u error=%d\n",
		(unsigned long long)buf->viewNumber, (unsigned)numberOfMembers,
		(unsigned)buf->numberOfItems, (int)error);
	print_items(buf);
	callbacks_seen++;
	if (want_callbacks >= 0 && callbacks_seen >= want_callbacks)
		done = 1;
	if (want_members >= 0 && (int)numberOfMembers == want_members)
		done = 1;
}

static void node_get_callback(SaInvocationT invocation,
	const SaClmClusterNodeT *node, SaAisErrorT error)
{
	printf("node_get invocation=%llu error=%d node=%u\n",
		(unsigned long long)invocation, (int)error,
		(unsigned)node->nodeId);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	SaClmCallbacksT callbacks = {
		.saClmClusterNodeGetCallback = node_get_callback,
		.saClmClusterTrackCallback = track_callback
	};
	SaVersionT version = { 'B', 1, 1 };
	SaClmHandleT handle;
	SaClmClusterNodeT local;
	SaClmClusterNotificationBufferT buf;
	SaSelectionObjectT sel;
	SaAisErrorT err;
	double timeout_s = 3600, start;
	int retry = 0, opt;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "c:m:t:r")) != -1) {
		switch (opt) {
		case 'c': want_callbacks = atoi(optarg); break;
		case 'm': want_members = atoi(optarg); break;
		case 't': timeout_s = atof(optarg); break;
		case 'r': retry = 1; break;
		default:
			fprintf(stderr, "usage: %s [-c N] [-m N] [-t S] [-r]\n", argv[0]);
			return 1;
		}
	}
	start = now_s();

	for (;;) {
		err = saClmInitialize(&handle, &callbacks, &version);
		if (err != SA_AIS_ERR_TRY_AGAIN || !retry || now_s() - start > timeout_s)
			break;
		usleep(20000);
	}
	if (err != SA_AIS_OK) {
		printf("saClmInitialize error=%d\n", (int)err);
		return 1;
	}

	/* A starting executive knows its own node once it is in a view. */
	for (;;) {
		err = saClmClusterNodeGet(handle, SA_CLM_LOCAL_NODE_ID, SA_TIME_ONE_SECOND, &local);
		if (!retry || (err != SA_AIS_ERR_NOT_EXIST && err != SA_AIS_ERR_TRY_AGAIN)
		    || now_s() - start > timeout_s)
			break;
		usleep(20000);
	}
	if (err != SA_AIS_OK) {
		printf("saClmClusterNodeGet error=%d\n", (int)err);
		return 1;
	}
	printf("local %u %.*s %.*s member=%d boot=%lld initial_view=%llu\n",
		(unsigned)local.nodeId,
		(int)local.nodeAddress.length, (const char *)local.nodeAddress.value,
		(int)local.nodeName.length, (const char *)local.nodeName.value,
		(int)local.member, (long long)local.bootTimestamp,
		(unsigned long long)local.initialViewNumber);

	/* The current membership into a buffer the library mallocs. */
	memset(&buf, 0, sizeof(buf));
	err = saClmClusterTrack(handle, SA_TRACK_CURRENT | SA_TRACK_CHANGES, &buf);
	if (err != SA_AIS_OK) {
		printf("saClmClusterTrack error=%d\n", (int)err);
		return 1;
	}
	printf("current view=%llu items=%u\n",
		(unsigned long long)buf.viewNumber, (unsigned)buf.numberOfItems);
	print_items(&buf);
	free(buf.notification);
	if (want_members >= 0 && (int)buf.numberOfItems == want_members)
		done = 1;
	printf("ready\n");

	saClmSelectionObjectGet(handle, &sel);
	while (!done) {
		fd_set read_fds;
		struct timeval tv = { 0, 200000 };
		int n;

		if (now_s() - start > timeout_s) {
			printf("timeout\n");
			return 2;
		}
		FD_ZERO(&read_fds);
		FD_SET((int)sel, &read_fds);
		n = select((int)sel + 1, &read_fds, NULL, NULL, &tv);
		if (n < 0 && errno != EINTR) {
			perror("select");
			return 1;
		}
		if (n > 0) {
			err = saClmDispatch(handle, SA_DISPATCH_ALL);
			if (err != SA_AIS_OK) {
				printf("saClmDispatch error=%d\n", (int)err);
				return 1;
			}
		}
	}

	err = saClmClusterTrackStop(handle);
	printf("saClmClusterTrackStop error=%d\n", (int)err);
	err = saClmFinalize(handle);
	printf("saClmFinalize error=%d\n", (int)err);
	return err == SA_AIS_OK ? 0 : 1;
}
