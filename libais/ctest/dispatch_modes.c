/*
 * dispatch_modes - the three dispatch modes of evs_dispatch and
 * saClmDispatch, against a running executive.
 *
 * As libais documents them (openais 0.80's behaviour):
 *   ALL      invokes every callback pending now and returns, at once when
 *            none is pending;
 *   ONE      waits for one callback, invokes it, returns;
 *   BLOCKING invokes callbacks as they come until the handle is finalized,
 *            from another thread or from a callback, then returns OK.
 * Prints "ok <check>" per check and "FAIL <check>" on the first failure
 * (exit status 1).
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "saAis.h"
#include "saClm.h"
#include "evs.h"

#define CHECK(cond, what) do { \
	if (!(cond)) { printf("FAIL %s (line %d)\n", what, __LINE__); return 1; } \
	printf("ok %s\n", what); \
} while (0)

static volatile int delivered;
static volatile int confchgs;
static volatile int node_gets;
static evs_handle_t finalize_in_callback;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void deliver(unsigned int nodeid, void *msg, int len)
{
	(void)nodeid; (void)msg; (void)len;
	__sync_fetch_and_add(&delivered, 1);
	if (finalize_in_callback != 0) {
		evs_finalize(finalize_in_callback);
		finalize_in_callback = 0;
	}
}

static void confchg(unsigned int *m, int nm, unsigned int *l, int nl,
	unsigned int *j, int nj)
{
	(void)m; (void)nm; (void)l; (void)nl; (void)j; (void)nj;
	__sync_fetch_and_add(&confchgs, 1);
}

static void node_get_cb(SaInvocationT inv, const SaClmClusterNodeT *node,
	SaAisErrorT error)
{
	(void)inv; (void)node; (void)error;
	__sync_fetch_and_add(&node_gets, 1);
}

static int send_self(evs_handle_t h, int n)
{
	struct iovec iov;
	char text[] = "dispatch";
	int i;

	iov.iov_base = text;
	iov.iov_len = sizeof(text);
	for (i = 0; i < n; i++) {
		evs_error_t err;

		while ((err = evs_mcast_joined(h, EVS_TYPE_AGREED, &iov, 1)) == EVS_ERR_TRY_AGAIN)
			usleep(1000);
		if (err != EVS_OK)
			return -1;
	}
	return 0;
}

/* Waits until the selection object is readable, then lets the rest of a
 * burst arrive. */
static void settle(int fd)
{
	struct pollfd pfd = { fd, POLLIN, 0 };

	poll(&pfd, 1, 5000);
	usleep(200000);
}

struct blocking_arg {
	int evs;
	int one;
	SaUint64T handle;
	int result;
};

static void *blocking_dispatch(void *p)
{
	struct blocking_arg *a = p;

	if (a->evs)
		a->result = (int)evs_dispatch(a->handle,
			a->one ? EVS_DISPATCH_ONE : EVS_DISPATCH_BLOCKING);
	else
		a->result = (int)saClmDispatch(a->handle, SA_DISPATCH_BLOCKING);
	return NULL;
}

static int wait_count(volatile int *counter, int target)
{
	double end = now_s() + 10;

	while (*counter < target && now_s() < end)
		usleep(1000);
	return *counter >= target;
}

int main(void)
{
	evs_callbacks_t callbacks = { deliver, confchg };
	struct evs_group group;
	evs_handle_t h;
	int fd, before;
	double t0;
	pthread_t thread;
	struct blocking_arg arg;

	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&group, 0, sizeof(group));
	strcpy(group.key, "dispatch_modes");

	CHECK(evs_initialize(&h, &callbacks) == EVS_OK, "evs_initialize");
	CHECK(evs_join(h, &group, 1) == EVS_OK, "evs_join");
	CHECK(evs_fd_get(h, &fd) == EVS_OK, "evs_fd_get");

	/* The initial configuration change is pending: ALL takes it. */
	settle(fd);
	CHECK(evs_dispatch(h, EVS_DISPATCH_ALL) == EVS_OK && confchgs == 1,
		"ALL invokes the pending confchg");
	t0 = now_s();
	CHECK(evs_dispatch(h, EVS_DISPATCH_ALL) == EVS_OK && now_s() - t0 < 0.5
		&& delivered == 0 && confchgs == 1,
		"ALL with nothing pending returns at once");

	/* ONE: exactly one callback per call. */
	CHECK(send_self(h, 3) == 0, "3 messages sent");
	settle(fd);
	CHECK(evs_dispatch(h, EVS_DISPATCH_ONE) == EVS_OK && delivered == 1, "ONE invokes one");
	CHECK(evs_dispatch(h, EVS_DISPATCH_ONE) == EVS_OK && delivered == 2, "ONE invokes one more");
	CHECK(evs_dispatch(h, EVS_DISPATCH_ALL) == EVS_OK && delivered == 3, "ALL takes the rest");

	/* ONE waits for a callback that is not there yet. */
	arg.evs = 1;
	arg.one = 1;
	arg.handle = h;
	arg.result = -1;
	before = delivered;
	pthread_create(&thread, NULL, blocking_dispatch, &arg);
	usleep(300000);
	CHECK(arg.result == -1 && delivered == before, "ONE waits while nothing is pending");
	CHECK(send_self(h, 1) == 0, "1 message sent");
	pthread_join(thread, NULL);
	CHECK(arg.result == EVS_OK && delivered == before + 1, "ONE returns after that one callback");
	arg.one = 0;

	/* ALL drains a burst. */
	CHECK(send_self(h, 5) == 0, "5 messages sent");
	settle(fd);
	before = delivered;
	CHECK(evs_dispatch(h, EVS_DISPATCH_ALL) == EVS_OK && delivered == before + 5,
		"ALL invokes all 5");

	/* BLOCKING in a thread until finalize from this thread. */
	arg.evs = 1;
	arg.one = 0;
	arg.handle = h;
	arg.result = -1;
	pthread_create(&thread, NULL, blocking_dispatch, &arg);
	before = delivered;
	CHECK(send_self(h, 4) == 0, "4 messages sent");
	CHECK(wait_count(&delivered, before + 4), "BLOCKING invokes callbacks as they come");
	usleep(100000);
	CHECK(arg.result == -1, "BLOCKING still running");
	CHECK(evs_finalize(h) == EVS_OK, "evs_finalize from another thread");
	pthread_join(thread, NULL);
	CHECK(arg.result == EVS_OK, "BLOCKING returns OK after finalize");
	CHECK(evs_dispatch(h, EVS_DISPATCH_ALL) == EVS_ERR_BAD_HANDLE, "dispatch after finalize: BAD_HANDLE");
	CHECK(evs_finalize(h) == EVS_ERR_BAD_HANDLE, "finalize twice: BAD_HANDLE");

	/* BLOCKING ends when a callback finalizes its own handle. */
	CHECK(evs_initialize(&h, &callbacks) == EVS_OK, "evs_initialize again");
	CHECK(evs_join(h, &group, 1) == EVS_OK, "evs_join again");
	finalize_in_callback = h;
	CHECK(send_self(h, 1) == 0, "1 message sent");
	CHECK(evs_dispatch(h, EVS_DISPATCH_BLOCKING) == EVS_OK && finalize_in_callback == 0,
		"BLOCKING returns OK after a callback finalized the handle");
	CHECK(evs_finalize(h) == EVS_ERR_BAD_HANDLE, "that handle is gone");

	/* CLM: the same modes with node-get callbacks. */
	{
		SaClmCallbacksT clm_callbacks = {
			.saClmClusterNodeGetCallback = node_get_cb,
			.saClmClusterTrackCallback = NULL
		};
		SaVersionT version = { 'B', 1, 1 };
		SaClmHandleT ch;
		SaSelectionObjectT sel;

		CHECK(saClmInitialize(&ch, &clm_callbacks, &version) == SA_AIS_OK, "saClmInitialize");
		CHECK(saClmSelectionObjectGet(ch, &sel) == SA_AIS_OK, "saClmSelectionObjectGet");
		CHECK(saClmClusterNodeGetAsync(ch, 1, SA_CLM_LOCAL_NODE_ID) == SA_AIS_OK, "async 1");
		CHECK(saClmClusterNodeGetAsync(ch, 2, SA_CLM_LOCAL_NODE_ID) == SA_AIS_OK, "async 2");
		settle((int)sel);
		CHECK(saClmDispatch(ch, SA_DISPATCH_ONE) == SA_AIS_OK && node_gets == 1, "CLM ONE invokes one");
		CHECK(saClmDispatch(ch, SA_DISPATCH_ALL) == SA_AIS_OK && node_gets == 2, "CLM ALL the rest");
		t0 = now_s();
		CHECK(saClmDispatch(ch, SA_DISPATCH_ALL) == SA_AIS_OK && now_s() - t0 < 0.5,
			"CLM ALL with nothing pending returns at once");
		CHECK(saClmDispatch(ch, 0) == SA_AIS_ERR_INVALID_PARAM, "CLM bad dispatch flags");
		arg.evs = 0;
		arg.one = 0;
		arg.handle = ch;
		arg.result = -1;
		pthread_create(&thread, NULL, blocking_dispatch, &arg);
		CHECK(saClmClusterNodeGetAsync(ch, 3, SA_CLM_LOCAL_NODE_ID) == SA_AIS_OK, "async 3");
		CHECK(wait_count(&node_gets, 3), "CLM BLOCKING invokes the callback");
		CHECK(saClmFinalize(ch) == SA_AIS_OK, "saClmFinalize from another thread");
		pthread_join(thread, NULL);
		CHECK(arg.result == SA_AIS_OK, "CLM BLOCKING returns OK after finalize");
		CHECK(saClmFinalize(ch) == SA_AIS_ERR_BAD_HANDLE, "CLM finalize twice: BAD_HANDLE");
	}
	printf("all passed\n");
	return 0;
}
