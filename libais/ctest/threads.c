/*
 * threads - handles shared by threads.
 *
 * 1. Eight threads multicast 300 messages each and look the local node up
 *    300 times, all on one EVS and one CLM handle, while a ninth thread
 *    dispatches the EVS handle with EVS_DISPATCH_BLOCKING; every message is
 *    delivered once, then finalize ends the blocked dispatch with EVS_OK.
 * 2. Eight threads call in a loop on handles that the main thread
 *    finalizes meanwhile: every call returns OK or BAD_HANDLE (or, for a
 *    multicast, TRY_AGAIN), never anything else, and nothing crashes.
 * Prints "ok <check>" per check, "FAIL ..." on the first failure (exit 1).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "saAis.h"
#include "saClm.h"
#include "evs.h"

#define THREADS 8
#define PER_THREAD 300
/* Long enough that a thread valgrind leaves unscheduled on a loaded
 * machine does not time out: timeouts are not what this program tests. */
#define CALL_TIMEOUT (30 * SA_TIME_ONE_SECOND)

#define CHECK(cond, what) do { \
	if (!(cond)) { printf("FAIL %s (line %d)\n", what, __LINE__); return 1; } \
	printf("ok %s\n", what); \
} while (0)

static evs_handle_t evs;
static SaClmHandleT clm;
static volatile int delivered;
static volatile int bad_results;
static volatile int stop;
/* The first unexpected result, so a failure says which call and what. */
static const char *volatile first_bad_call;
static volatile int first_bad_code;

static void count_bad(const char *call, int code)
{
	if (__sync_bool_compare_and_swap(&first_bad_call, NULL, call))
		first_bad_code = code;
	__sync_fetch_and_add(&bad_results, 1);
}

static void deliver(unsigned int nodeid, void *msg, int len)
{
	(void)nodeid; (void)msg; (void)len;
	__sync_fetch_and_add(&delivered, 1);
}

static void *sender(void *arg)
{
	char text[64];
	struct iovec iov = { text, 0 };
	SaClmClusterNodeT node;
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		evs_error_t err;

		iov.iov_len = (size_t)snprintf(text, sizeof(text), "thread %ld message %d", (long)arg, i);
		while ((err = evs_mcast_joined(evs, EVS_TYPE_AGREED, &iov, 1)) == EVS_ERR_TRY_AGAIN)
			usleep(500);
		if (err != EVS_OK)
			__sync_fetch_and_add(&bad_results, 1);
		if (saClmClusterNodeGet(clm, SA_CLM_LOCAL_NODE_ID, CALL_TIMEOUT, &node) != SA_AIS_OK)
			__sync_fetch_and_add(&bad_results, 1);
	}
	return NULL;
}

static void *dispatcher(void *arg)
{
	int *result = arg;

	*result = (int)evs_dispatch(evs, EVS_DISPATCH_BLOCKING);
	return NULL;
}

/* Calls until told to stop; counts results that are neither OK nor
 * BAD_HANDLE (nor TRY_AGAIN for a multicast). */
static void *racer(void *arg)
{
	struct iovec iov = { "race", 4 };
	SaClmClusterNodeT node;
	SaSelectionObjectT sel;
	int fd;

	(void)arg;
	while (!stop) {
		int r;

		r = (int)evs_mcast_joined(evs, EVS_TYPE_AGREED, &iov, 1);
		if (r != EVS_OK && r != EVS_ERR_BAD_HANDLE && r != EVS_ERR_TRY_AGAIN)
			count_bad("evs_mcast_joined", r);
		r = (int)evs_dispatch(evs, EVS_DISPATCH_ALL);
		if (r != EVS_OK && r != EVS_ERR_BAD_HANDLE)
			count_bad("evs_dispatch", r);
		r = (int)evs_fd_get(evs, &fd);
		if (r != EVS_OK && r != EVS_ERR_BAD_HANDLE)
			count_bad("evs_fd_get", r);
		r = (int)saClmClusterNodeGet(clm, SA_CLM_LOCAL_NODE_ID, CALL_TIMEOUT, &node);
		if (r != SA_AIS_OK && r != SA_AIS_ERR_BAD_HANDLE)
			count_bad("saClmClusterNodeGet", r);
		r = (int)saClmSelectionObjectGet(clm, &sel);
		if (r != SA_AIS_OK && r != SA_AIS_ERR_BAD_HANDLE)
			count_bad("saClmSelectionObjectGet", r);
	}
	return NULL;
}

int main(void)
{
	evs_callbacks_t callbacks = { deliver, NULL };
	SaVersionT version = { 'B', 1, 1 };
	struct evs_group group = { "threads" };
	pthread_t senders[THREADS], disp;
	int result = -1, round;
	long i;
	time_t deadline;

	setvbuf(stdout, NULL, _IOLBF, 0);
	CHECK(evs_initialize(&evs, &callbacks) == EVS_OK, "evs_initialize");
	CHECK(saClmInitialize(&clm, NULL, &version) == SA_AIS_OK, "saClmInitialize");
	CHECK(evs_join(evs, &group, 1) == EVS_OK, "evs_join");
	pthread_create(&disp, NULL, dispatcher, &result);
	for (i = 0; i < THREADS; i++)
		pthread_create(&senders[i], NULL, sender, (void *)i);
	for (i = 0; i < THREADS; i++)
		pthread_join(senders[i], NULL);
	CHECK(bad_results == 0, "every call from 8 threads succeeded");
	deadline = time(NULL) + 30;
	while (delivered < THREADS * PER_THREAD && time(NULL) < deadline)
		usleep(1000);
	CHECK(delivered == THREADS * PER_THREAD, "every message delivered once");
	usleep(200000);
	CHECK(delivered == THREADS * PER_THREAD, "and no more");
	CHECK(evs_finalize(evs) == EVS_OK, "evs_finalize");
	pthread_join(disp, NULL);
	CHECK(result == EVS_OK, "the blocked dispatch returned OK");
	CHECK(saClmFinalize(clm) == SA_AIS_OK, "saClmFinalize");

	for (round = 0; round < 20; round++) {
		pthread_t racers[THREADS];

		if (evs_initialize(&evs, &callbacks) != EVS_OK
		    || saClmInitialize(&clm, NULL, &version) != SA_AIS_OK
		    || evs_join(evs, &group, 1) != EVS_OK) {
			printf("FAIL setup of round %d\n", round);
			return 1;
		}
		stop = 0;
		for (i = 0; i < THREADS; i++)
			pthread_create(&racers[i], NULL, racer, NULL);
		usleep(20000);
		if (evs_finalize(evs) != EVS_OK || saClmFinalize(clm) != SA_AIS_OK) {
			printf("FAIL finalize in round %d\n", round);
			return 1;
		}
		usleep(5000);
		stop = 1;
		for (i = 0; i < THREADS; i++)
			pthread_join(racers[i], NULL);
	}
	if (bad_results != 0)
		printf("first unexpected result: %s returned %d (%d in all)\n",
		       first_bad_call, first_bad_code, bad_results);
	CHECK(bad_results == 0, "calls racing finalize: only OK, BAD_HANDLE or TRY_AGAIN");
	printf("all passed\n");
	return 0;
}
