/*
 * evs.h - openais extended virtual synchrony process groups, as served by
 * libais.so.
 *
 * Written for this project from openais 0.80's published interface (names,
 * values and layouts), so that programs written for openais compile
 * unchanged. Not an SA Forum interface: the error codes are numerically
 * aligned with SaAisErrorT and the library may return other SaAisErrorT
 * values than the ones listed here.
 */
#ifndef AIS_EVS_H_DEFINED
#define AIS_EVS_H_DEFINED

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <netinet/in.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t evs_handle_t;

/* Note: 0-based, unlike SaDispatchFlagsT. */
typedef enum {
	EVS_DISPATCH_ONE = 0,
	EVS_DISPATCH_ALL = 1,
	EVS_DISPATCH_BLOCKING = 2
} evs_dispatch_t;

typedef enum {
	EVS_TYPE_UNORDERED = 0,
	EVS_TYPE_FIFO = 1,
	EVS_TYPE_AGREED = 2,
	EVS_TYPE_SAFE = 3
} evs_guarantee_t;

typedef enum {
	EVS_OK = 1,
	EVS_ERR_LIBRARY = 2,
	EVS_ERR_TIMEOUT = 5,
	EVS_ERR_TRY_AGAIN = 6,
	EVS_ERR_INVALID_PARAM = 7,
	EVS_ERR_NO_MEMORY = 8,
	EVS_ERR_BAD_HANDLE = 9,
	EVS_ERR_ACCESS = 11,
	EVS_ERR_NOT_EXIST = 12,
	EVS_ERR_EXIST = 14,
	EVS_ERR_NOT_SUPPORTED = 20,
	EVS_ERR_SECURITY = 29,
	EVS_ERR_TOO_MANY_GROUPS = 30
} evs_error_t;

#define TOTEMIP_ADDRLEN (sizeof(struct in6_addr))

/* Declared for source compatibility; no function takes it. */
struct evs_address {
	unsigned int nodeid;
	unsigned short family;
	unsigned char addr[TOTEMIP_ADDRLEN];
};

/* A group: all 32 key bytes are compared. */
struct evs_group {
	char key[32];
};

typedef void (*evs_deliver_fn_t)(
	unsigned int nodeid,
	void *msg,
	int msg_len);

typedef void (*evs_confchg_fn_t)(
	unsigned int *member_list, int member_list_entries,
	unsigned int *left_list, int left_list_entries,
	unsigned int *joined_list, int joined_list_entries);

typedef struct {
	evs_deliver_fn_t evs_deliver_fn;
	evs_confchg_fn_t evs_confchg_fn;
} evs_callbacks_t;

evs_error_t evs_initialize(
	evs_handle_t *handle,
	evs_callbacks_t *callbacks);

evs_error_t evs_finalize(
	evs_handle_t handle);

evs_error_t evs_fd_get(
	evs_handle_t handle,
	int *fd);

evs_error_t evs_dispatch(
	evs_handle_t handle,
	evs_dispatch_t dispatch_types);

evs_error_t evs_join(
	evs_handle_t handle,
	struct evs_group *groups,
	int group_cnt);

evs_error_t evs_leave(
	evs_handle_t handle,
	struct evs_group *groups,
	int group_cnt);

evs_error_t evs_mcast_joined(
	evs_handle_t handle,
	evs_guarantee_t guarantee,
	struct iovec *iovec,
	int iov_len);

evs_error_t evs_mcast_groups(
	evs_handle_t handle,
	evs_guarantee_t guarantee,
	struct evs_group *groups,
	int group_cnt,
	struct iovec *iovec,
	int iov_len);

evs_error_t evs_membership_get(
	evs_handle_t handle,
	unsigned int *local_nodeid,
	unsigned int *member_list,
	unsigned int *member_list_entries);

#ifdef __cplusplus
}
#endif

#endif /* AIS_EVS_H_DEFINED */
