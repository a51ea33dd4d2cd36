/*
 * leak_check - no resource is lost per call: thousands of initialize /
 * call / dispatch / finalize rounds on CLM and EVS handles leave the
 * process with the same open descriptors and (within a small margin) the
 * same resident memory as after the first few hundred rounds.
 *
 *   leak_check [ROUNDS]
 *
 * Prints "fds <before> <after>" and "rss_kb <before> <after>"; exit status
 * 1 if descriptors grew or memory grew by more than 4 MiB.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>

#include "saAis.h"
#include "saClm.h"
#include "evs.h"

static int delivered;

static void deliver(unsigned int nodeid, void *msg, int len)
{
	(void)nodeid; (void)msg; (void)len;
	delivered++;
}

static void track_cb(const SaClmClusterNotificationBufferT *buf,
	SaUint32T members, SaAisErrorT error)
{
	(void)buf; (void)members; (void)error;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = atol(line + 6);
	fclose(f);
	return kb;
}

static int round_trip(void)
{
	SaClmCallbacksT cb = { NULL, track_cb };
	evs_callbacks_t ecb = { deliver, NULL };
	SaVersionT v = { 'B', 1, 1 };
	SaClmHandleT h;
	SaClmClusterNodeT node;
	SaClmClusterNotificationBufferT buf = { 0, 0, NULL };
	evs_handle_t eh;
	struct evs_group g = { "leak_check" };
	struct iovec iov = { "payload", 7 };
	int fd, before = delivered;

	if (saClmInitialize(&h, &cb, &v) != SA_AIS_OK)
		return 1;
	if (saClmClusterNodeGet(h, SA_CLM_LOCAL_NODE_ID, SA_TIME_ONE_SECOND, &node) != SA_AIS_OK)
		return 2;
	if (saClmClusterTrack(h, SA_TRACK_CURRENT | SA_TRACK_CHANGES, &buf) != SA_AIS_OK)
		return 3;
	free(buf.notification);
	if (saClmClusterTrack(h, SA_TRACK_CURRENT, NULL) != SA_AIS_OK)
		return 4;
	if (saClmDispatch(h, SA_DISPATCH_ONE) != SA_AIS_OK)
		return 5;
	if (saClmFinalize(h) != SA_AIS_OK)
		return 6;
	if (evs_initialize(&eh, &ecb) != EVS_OK || evs_join(eh, &g, 1) != EVS_OK)
		return 7;
	while (evs_mcast_joined(eh, EVS_TYPE_AGREED, &iov, 1) == EVS_ERR_TRY_AGAIN)
		;
	evs_fd_get(eh, &fd);
	while (delivered == before) {
		struct pollfd pfd = { fd, POLLIN, 0 };

		poll(&pfd, 1, 1000);
		if (evs_dispatch(eh, EVS_DISPATCH_ALL) != EVS_OK)
			return 8;
	}
	if (evs_finalize(eh) != EVS_OK)
		return 9;
	return 0;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 2000;
	int warmup = rounds / 10, i, rc, fds0 = 0, fds1;
	long rss0 = 0, rss1;

	for (i = 0; i < rounds; i++) {
		if (i == warmup) {
			fds0 = open_fds();
			rss0 = rss_kb();
		}
		rc = round_trip();
		if (rc != 0) {
			printf("round %d failed at step %d\n", i, rc);
			return 1;
		}
	}
	fds1 = open_fds();
	rss1 = rss_kb();
	printf("rounds %d\nfds %d %d\nrss_kb %ld %ld\n", rounds, fds0, fds1, rss0, rss1);
	return (fds1 > fds0 || rss1 - rss0 > 4096) ? 1 : 0;
}
