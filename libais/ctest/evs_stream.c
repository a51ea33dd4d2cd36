/*
 * evs_stream - several processes send a stream of messages to one EVS group;
 * each logs every message it delivers, so logs can be compared.
 *
 * Each of S processes (on any nodes) joins group G, announces itself with
 * READY messages until it has heard from all S, then sends N DATA messages
 * (mostly small, every 100th 6000 bytes, every 1000th 100 000 bytes: larger
 * than the network MTU, so Totem fragments them) while delivering, and
 * delivers until it has N * S DATA messages. Since every process joined
 * before anyone sent DATA, every process delivers every DATA message, and
 * EVS's total order makes the logs byte-for-byte equal.
 *
 *   evs_stream -s SENDERS -n COUNT [-g GROUP] [-t SECONDS] -o LOG
 *
 * Each DATA message is checked (length, contents derived from sender and
 * sequence number, per-sender sequence without gap or duplicate). Log
 * line per DATA message: "<nodeid> <tag> <seq> <len> <fnv64 of the bytes>".
 * Exit status: 0 all good, 2 timeout, 3 a bad message, 1 an API error.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evs.h"

#define MAGIC 0x45565331u /* "EVS1" */
#define KIND_READY 1u
#define KIND_DATA 2u
#define MAX_SENDERS 16
#define BIG_BYTES 100000
#define MID_BYTES 6000

struct msg_header {
	uint32_t magic;
	uint32_t kind;
	uint32_t tag;
	uint32_t seq;
	uint32_t len;
};

static evs_handle_t handle;
static FILE *log_file;
static uint32_t my_tag;
static int senders = 1;
static long count = 100;
static uint32_t tags[MAX_SENDERS];
static long next_seq[MAX_SENDERS];
static int tags_known;
static long delivered_data;
static int bad;
static unsigned char *buffer;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t msg_len(uint32_t seq)
{
	if (seq % 1000 == 999)
		return BIG_BYTES;
	if (seq % 100 == 50)
		return MID_BYTES;
	return (uint32_t)sizeof(struct msg_header) + 16 + seq % 200;
}

static unsigned char fill(uint32_t tag, uint32_t seq, uint32_t i)
{
	return (unsigned char)((tag * 2654435761u) ^ (seq * 40503u) ^ (i * 31u));
}

static uint64_t fnv64(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

static int tag_index(uint32_t tag)
{
	int i;

	for (i = 0; i < tags_known; i++)
		if (tags[i] == tag)
			return i;
	if (tags_known == MAX_SENDERS)
		return -1;
	tags[tags_known] = tag;
	next_seq[tags_known] = 0;
	return tags_known++;
}

static void deliver(unsigned int nodeid, void *msg, int msg_len_)
{
	struct msg_header h;
	const unsigned char *p = msg;
	uint32_t i;
	int t;

	if (msg_len_ < (int)sizeof(h)) {
		bad++;
		return;
	}
	memcpy(&h, msg, sizeof(h));
	if (h.magic != MAGIC || h.len != (uint32_t)msg_len_) {
		fprintf(stderr, "bad message from node %u: magic %x len %u of %d\n",
			nodeid, h.magic, h.len, msg_len_);
		bad++;
		return;
	}
	t = tag_index(h.tag);
	if (t < 0) {
		bad++;
		return;
	}
	if (h.kind == KIND_READY)
		return;
	if (h.len != msg_len(h.seq)) {
		fprintf(stderr, "message %u of %x: length %u\n", h.seq, h.tag, h.len);
		bad++;
	}
	for (i = sizeof(h); i < h.len; i++) {
		if (p[i] != fill(h.tag, h.seq, i)) {
			fprintf(stderr, "message %u of %x: byte %u differs\n", h.seq, h.tag, i);
			bad++;
			break;
		}
	}
	if ((long)h.seq != next_seq[t]) {
		fprintf(stderr, "message %u of %x: expected seq %ld\n", h.seq, h.tag, next_seq[t]);
		bad++;
	}
	next_seq[t] = (long)h.seq + 1;
	delivered_data++;
	fprintf(log_file, "%u %08x %u %u %016llx\n", nodeid, h.tag, h.seq, h.len,
		(unsigned long long)fnv64(p, (size_t)msg_len_));
}

static void confchg(unsigned int *members, int n_members, unsigned int *left,
	int n_left, unsigned int *joined, int n_joined)
{
	(void)members; (void)left; (void)joined;
	fprintf(stderr, "confchg: %d members, %d left, %d joined\n",
		n_members, n_left, n_joined);
}

/* Sends one message, dispatching while the executive says TRY_AGAIN. */
static int send_msg(int fd, uint32_t kind, uint32_t seq, double deadline)
{
	struct msg_header h;
	struct iovec iov[2];
	uint32_t len = kind == KIND_DATA ? msg_len(seq) : (uint32_t)sizeof(h);
	uint32_t i;
	evs_error_t err;

	h.magic = MAGIC;
	h.kind = kind;
	h.tag = my_tag;
	h.seq = seq;
	h.len = len;
	for (i = sizeof(h); i < len; i++)
		buffer[i - sizeof(h)] = fill(my_tag, seq, i);
	/* Two iovec entries: evs_mcast_joined gathers them into one message. */
	iov[0].iov_base = &h;
	iov[0].iov_len = sizeof(h);
	iov[1].iov_base = buffer;
	iov[1].iov_len = len - sizeof(h);
	for (;;) {
		err = evs_mcast_joined(handle, EVS_TYPE_AGREED, iov, 2);
		if (err != EVS_ERR_TRY_AGAIN)
			break;
		if (now_s() > deadline)
			return 2;
		err = evs_dispatch(handle, EVS_DISPATCH_ALL);
		if (err != EVS_OK)
			break;
		{
			struct pollfd pfd = { fd, POLLIN, 0 };
			poll(&pfd, 1, 2);
		}
	}
	if (err != EVS_OK) {
		fprintf(stderr, "evs_mcast_joined: %d\n", (int)err);
		return 1;
	}
	return 0;
}

static int pump(int fd, int wait_ms)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	evs_error_t err;

	if (poll(&pfd, 1, wait_ms) < 0 && errno != EINTR) {
		perror("poll");
		return 1;
	}
	err = evs_dispatch(handle, EVS_DISPATCH_ALL);
	if (err != EVS_OK) {
		fprintf(stderr, "evs_dispatch: %d\n", (int)err);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	evs_callbacks_t callbacks = { deliver, confchg };
	struct evs_group group;
	const char *group_name = "evs_stream";
	const char *log_path = NULL;
	double timeout_s = 300, start, deadline, last_ready = 0;
	unsigned int local, members[64], n_members = 64;
	evs_error_t err;
	long seq;
	int fd, opt, rc;

	while ((opt = getopt(argc, argv, "s:n:g:t:o:")) != -1) {
		switch (opt) {
		case 's': senders = atoi(optarg); break;
		case 'n': count = atol(optarg); break;
		case 'g': group_name = optarg; break;
		case 't': timeout_s = atof(optarg); break;
		case 'o': log_path = optarg; break;
		default:
			fprintf(stderr, "usage: %s -s SENDERS -n COUNT [-g GROUP] [-t S] -o LOG\n", argv[0]);
			return 1;
		}
	}
	if (log_path == NULL || senders < 1 || senders > MAX_SENDERS || count < 0) {
		fprintf(stderr, "bad arguments\n");
		return 1;
	}
	log_file = fopen(log_path, "w");
	buffer = malloc(BIG_BYTES);
	if (log_file == NULL || buffer == NULL) {
		perror(log_path);
		return 1;
	}
	start = now_s();
	deadline = start + timeout_s;

	err = evs_initialize(&handle, &callbacks);
	if (err != EVS_OK) {
		fprintf(stderr, "evs_initialize: %d\n", (int)err);
		return 1;
	}
	err = evs_membership_get(handle, &local, members, &n_members);
	if (err != EVS_OK) {
		fprintf(stderr, "evs_membership_get: %d\n", (int)err);
		return 1;
	}
	my_tag = (local << 20) ^ (uint32_t)getpid();
	memset(&group, 0, sizeof(group));
	strncpy(group.key, group_name, sizeof(group.key));
	err = evs_join(handle, &group, 1);
	if (err != EVS_OK) {
		fprintf(stderr, "evs_join: %d\n", (int)err);
		return 1;
	}
	evs_fd_get(handle, &fd);

	/* Everyone announces itself until it has heard from everyone. */
	while (tags_known < senders) {
		if (now_s() > deadline) {
			fprintf(stderr, "timeout waiting for %d senders (%d)\n", senders, tags_known);
			return 2;
		}
		if (now_s() - last_ready > 0.1) {
			rc = send_msg(fd, KIND_READY, 0, deadline);
			if (rc != 0)
				return rc;
			last_ready = now_s();
		}
		if (pump(fd, 20) != 0)
			return 1;
	}
	fprintf(stderr, "%x: all %d senders ready after %.3f s\n", my_tag, senders, now_s() - start);

	for (seq = 0; seq < count; seq++) {
		rc = send_msg(fd, KIND_DATA, (uint32_t)seq, deadline);
		if (rc != 0)
			return rc;
		if (pump(fd, 0) != 0)
			return 1;
	}
	while (delivered_data < count * senders) {
		if (now_s() > deadline) {
			fprintf(stderr, "timeout: %ld of %ld delivered\n", delivered_data, count * senders);
			fflush(log_file);
			return 2;
		}
		if (pump(fd, 100) != 0)
			return 1;
	}
	fprintf(stderr, "%x: %ld messages delivered in %.3f s, %d bad\n", my_tag,
		delivered_data, now_s() - start, bad);
	fclose(log_file);
	err = evs_finalize(handle);
	if (err != EVS_OK) {
		fprintf(stderr, "evs_finalize: %d\n", (int)err);
		return 1;
	}
	free(buffer);
	return bad ? 3 : 0;
}
