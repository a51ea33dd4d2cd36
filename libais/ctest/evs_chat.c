/*
 * evs_chat - a chat room on an EVS group: every line typed is multicast to
 * the group, every line delivered is printed with its sender's node id.
 *
 * An openais EVS client in the style of testevs: it polls stdin and the
 * EVS descriptor (evs_fd_get) and dispatches with EVS_DISPATCH_ALL.
 *
 *   cc evs_chat.c $(pkg-config --cflags --libs libais) -o evs_chat
 *   AIS_SOCKET=/path/to/aisexec.sock ./evs_chat [room]
 *
 * Configuration changes are printed as "* members: 1 2 3 (left: 4)".
 * At the end of its input it waits until its own lines have come back
 * through the ring (so that a script piping into it knows they were sent
 * to everyone), then leaves.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "evs.h"

static unsigned int local_nodeid;
static long own_sent;
static long own_seen;

static void deliver(unsigned int nodeid, void *msg, int msg_len)
{
	printf("[node %u] %.*s\n", nodeid, msg_len, (const char *)msg);
	if (nodeid == local_nodeid)
		own_seen++;
}

static void confchg(unsigned int *members, int n_members,
	unsigned int *left, int n_left, unsigned int *joined, int n_joined)
{
	int i;

	printf("* members:");
	for (i = 0; i < n_members; i++)
		printf(" %u", members[i]);
	if (n_left > 0) {
		printf(" (left:");
		for (i = 0; i < n_left; i++)
			printf(" %u", left[i]);
		printf(")");
	}
	if (n_joined > 0) {
		printf(" (joined:");
		for (i = 0; i < n_joined; i++)
			printf(" %u", joined[i]);
		printf(")");
	}
	printf("\n");
}

int main(int argc, char **argv)
{
	evs_callbacks_t callbacks = { deliver, confchg };
	evs_handle_t handle;
	struct evs_group room;
	unsigned int members[64], n_members = 64;
	int fd, input_open = 1;
	evs_error_t err;
	char line[4096];

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Unbuffered, so poll() on stdin sees every line that is not read. */
	setvbuf(stdin, NULL, _IONBF, 0);
	memset(&room, 0, sizeof(room));
	strncpy(room.key, argc > 1 ? argv[1] : "chat", sizeof(room.key) - 1);

	err = evs_initialize(&handle, &callbacks);
	if (err != EVS_OK) {
		fprintf(stderr, "evs_initialize: %d%s\n", (int)err,
			err == EVS_ERR_TRY_AGAIN ? " (is aisexec running? AIS_SOCKET?)" : "");
		return 1;
	}
	evs_membership_get(handle, &local_nodeid, members, &n_members);
	err = evs_join(handle, &room, 1);
	if (err != EVS_OK) {
		fprintf(stderr, "evs_join: %d\n", (int)err);
		return 1;
	}
	evs_fd_get(handle, &fd);

	while (input_open || own_seen < own_sent) {
		struct pollfd fds[2] = { { fd, POLLIN, 0 }, { 0, POLLIN, 0 } };

		if (poll(fds, input_open ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return 1;
		}
		if (fds[0].revents) {
			err = evs_dispatch(handle, EVS_DISPATCH_ALL);
			if (err != EVS_OK) {
				fprintf(stderr, "evs_dispatch: %d\n", (int)err);
				return 1;
			}
		}
		if (input_open && fds[1].revents) {
			struct iovec iov;

			if (fgets(line, sizeof(line), stdin) == NULL) {
				input_open = 0;
				continue;
			}
			line[strcspn(line, "\n")] = '\0';
			iov.iov_base = line;
			iov.iov_len = strlen(line);
			for (;;) {
				err = evs_mcast_joined(handle, EVS_TYPE_AGREED, &iov, 1);
				if (err != EVS_ERR_TRY_AGAIN)
					break;
				usleep(10000); /* the ring is busy or syncing */
			}
			if (err != EVS_OK) {
				fprintf(stderr, "evs_mcast_joined: %d\n", (int)err);
				return 1;
			}
			own_sent++;
		}
	}
	evs_leave(handle, &room, 1);
	evs_finalize(handle);
	return 0;
}
