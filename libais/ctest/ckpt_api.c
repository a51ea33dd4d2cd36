/*
 * ckpt_api - saCkpt.h against real executives: every function, its error
 * codes, and the replication the executives promise.
 *
 *   ckpt_api nodaemon              AIS_SOCKET names no running executive:
 *                                  versions, NULL pointers, TRY_AGAIN, and
 *                                  every function with bad handles
 *   ckpt_api walk P                every function on one node: flags,
 *                                  access, sections, generated ids, the
 *                                  default section, vectors and their
 *                                  erroneous index, vectors larger than one
 *                                  request, iteration filters over many
 *                                  sections, active replicas, synchronize,
 *                                  async open and synchronize callbacks,
 *                                  unlink while open, finalize ending the
 *                                  handles it owns
 *   ckpt_api expiry P              creates P-ret (retention 1 s, closed) and
 *                                  P-exp (4 sections, 2 expiring in 1 s)
 *   ckpt_api expired P             both expired here: P-ret gone, P-exp with
 *                                  2 sections (with "unlink": unlinks P-exp)
 *   ckpt_api writer P              writes P-repl, prints "ready", reads a
 *                                  line (meanwhile its executive is killed),
 *                                  then checks every call is ERR_LIBRARY
 *   ckpt_api reader P              P-repl here is what the writer wrote
 *   ckpt_api rollback P            P-rb: ALL_REPLICAS writes a replica over
 *                                  its memory limit refuses fail with
 *                                  NO_MEMORY and change nothing
 *   ckpt_api rollback-check P [unlink]   P-rb here is what rollback left
 *
 * P is a name prefix (tests run more than once against one cluster).
 * Prints "ok <check>" per check and "all passed" at the end, or
 * "FAIL <check>: got X want Y" on the first failure (exit status 1). A call
 * the executive answers SA_AIS_ERR_TRY_AGAIN (a membership change is being
 * synchronized) is retried for up to 20 s. Memory the library hands out is
 * freed, so that valgrind finds no leak.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "saAis.h"
#include "saCkpt.h"

static SaAisErrorT last;

static void pause_ms(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

/* `var = call`, again while it is TRY_AGAIN (at most 20 s). */
#define RETRYING(call) do { \
	int tries_ = 0; \
	for (;;) { \
		last = (call); \
		if (last != SA_AIS_ERR_TRY_AGAIN || ++tries_ > 2000) \
			break; \
		pause_ms(10); \
	} \
} while (0)

#define EXPECT(call, want, what) do { \
	RETRYING(call); \
	if ((int)last != (int)(want)) { \
		printf("FAIL %s: got %d want %d (line %d)\n", what, (int)last, (int)(want), __LINE__); \
		return 1; \
	} \
	printf("ok %s\n", what); \
} while (0)

/* Without retrying: for calls whose TRY_AGAIN would be a failure. */
#define EXPECT_ONCE(call, want, what) do { \
	last = (call); \
	if ((int)last != (int)(want)) { \
		printf("FAIL %s: got %d want %d (line %d)\n", what, (int)last, (int)(want), __LINE__); \
		return 1; \
	} \
	printf("ok %s\n", what); \
} while (0)

#define CHECK(cond, what) do { \
	if (!(cond)) { printf("FAIL %s (line %d)\n", what, __LINE__); return 1; } \
	printf("ok %s\n", what); \
} while (0)

static const char *prefix = "t";

static void set_name(SaNameT *n, const char *suffix)
{
	int len = snprintf((char *)n->value, sizeof(n->value), "%s-%s", prefix, suffix);
	n->length = (SaUint16T)len;
}

static SaCkptSectionIdT sid(const char *s)
{
	SaCkptSectionIdT id;

	id.idLen = (SaUint16T)strlen(s);
	id.id = (SaUint8T *)s;
	return id;
}

static SaTimeT now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (SaTimeT)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static unsigned char pattern(long i, int seed)
{
	return (unsigned char)(i * 31 + seed * 7 + (i >> 8));
}

static void fill(unsigned char *buf, long n, int seed)
{
	long i;

	for (i = 0; i < n; i++)
		buf[i] = pattern(i, seed);
}

static int same(const unsigned char *buf, long n, int seed)
{
	long i;

	for (i = 0; i < n; i++) {
		if (buf[i] != pattern(i, seed))
			return 0;
	}
	return 1;
}

/* ---- callbacks ---------------------------------------------------------- */

static int open_calls;
static SaInvocationT open_invocations[8];
static SaCkptCheckpointHandleT open_handles[8];
static SaAisErrorT open_errors[8];
static int sync_calls;
static SaInvocationT sync_invocation;
static SaAisErrorT sync_error;

static void open_cb(SaInvocationT invocation,
	const SaCkptCheckpointHandleT checkpointHandle, SaAisErrorT error)
{
	if (open_calls < 8) {
		open_invocations[open_calls] = invocation;
		open_handles[open_calls] = checkpointHandle;
		open_errors[open_calls] = error;
	}
	open_calls++;
}

static void sync_cb(SaInvocationT invocation, SaAisErrorT error)
{
	sync_calls++;
	sync_invocation = invocation;
	sync_error = error;
}

static SaCkptCallbacksT callbacks = { &open_cb, &sync_cb };

/* The open callback of `invocation`, or -1. */
static int open_result(SaInvocationT invocation)
{
	int i;

	for (i = 0; i < open_calls && i < 8; i++) {
		if (open_invocations[i] == invocation)
			return i;
	}
	return -1;
}

/* Waits (poll on the selection object) and dispatches until `*count`
 * reaches `want`; 0 on success. */
static int dispatch_until(SaCkptHandleT h, int *count, int want)
{
	SaSelectionObjectT sel;
	struct pollfd p;
	int rounds = 0;

	if (saCkptSelectionObjectGet(h, &sel) != SA_AIS_OK)
		return -1;
	while (*count < want && rounds++ < 100) {
		p.fd = (int)sel;
		p.events = POLLIN;
		p.revents = 0;
		if (poll(&p, 1, 200) < 0)
			return -1;
		if (saCkptDispatch(h, SA_DISPATCH_ALL) != SA_AIS_OK)
			return -1;
	}
	return *count >= want ? 0 : -1;
}

/* Field by field: the structs have padding. */
static int same_attrs(const SaCkptCheckpointCreationAttributesT *a,
	const SaCkptCheckpointCreationAttributesT *b)
{
	return a->creationFlags == b->creationFlags && a->checkpointSize == b->checkpointSize
		&& a->retentionDuration == b->retentionDuration
		&& a->maxSections == b->maxSections && a->maxSectionSize == b->maxSectionSize
		&& a->maxSectionIdSize == b->maxSectionIdSize;
}

static SaVersionT b11(void)
{
	SaVersionT v = { 'B', 1, 1 };

	return v;
}

static int init(SaCkptHandleT *h, const SaCkptCallbacksT *cb)
{
	SaVersionT v = b11();

	EXPECT(saCkptInitialize(h, cb, &v), SA_AIS_OK, "saCkptInitialize");
	return 0;
}

/* Reads `n` bytes of section `s` into a fresh buffer (freed by the caller);
 * NULL on failure. */
static unsigned char *read_all(SaCkptCheckpointHandleT c, const char *s, SaSizeT *size)
{
	SaCkptIOVectorElementT e;
	SaUint32T idx = 99;

	memset(&e, 0, sizeof(e));
	e.sectionId = sid(s);
	e.dataBuffer = NULL;
	RETRYING(saCkptCheckpointRead(c, &e, 1, &idx));
	if (last != SA_AIS_OK)
		return NULL;
	*size = e.readSize;
	return e.dataBuffer;
}

/* ---- nodaemon ------------------------------------------------------------ */

/* Every handle-taking function with a handle that is not one. */
static int bad_handles(SaUint64T bad, const char *which)
{
	SaSelectionObjectT sel = 0;
	SaCkptCheckpointHandleT ch = 5;
	SaCkptSectionIterationHandleT ih = 5;
	SaCkptCheckpointDescriptorT status;
	SaCkptSectionDescriptorT desc;
	SaCkptSectionIdT id = sid("s");
	SaCkptSectionCreationAttributesT sattrs = { &id, SA_TIME_END };
	SaCkptIOVectorElementT e = { { 1, (SaUint8T *)"s" }, "x", 1, 0, 0 };
	SaUint32T idx = 77;
	SaNameT name;
	char what[128];

	set_name(&name, "bad");
#define BAD(call, name) do { \
	snprintf(what, sizeof(what), "%s with %s handle", name, which); \
	EXPECT_ONCE(call, SA_AIS_ERR_BAD_HANDLE, what); \
} while (0)
	BAD(saCkptSelectionObjectGet(bad, &sel), "saCkptSelectionObjectGet");
	BAD(saCkptDispatch(bad, SA_DISPATCH_ALL), "saCkptDispatch");
	BAD(saCkptFinalize(bad), "saCkptFinalize");
	BAD(saCkptCheckpointOpen(bad, &name, NULL, SA_CKPT_CHECKPOINT_READ, 0, &ch),
		"saCkptCheckpointOpen");
	BAD(saCkptCheckpointOpenAsync(bad, 1, &name, NULL, SA_CKPT_CHECKPOINT_READ),
		"saCkptCheckpointOpenAsync");
	BAD(saCkptCheckpointClose(bad), "saCkptCheckpointClose");
	BAD(saCkptCheckpointUnlink(bad, &name), "saCkptCheckpointUnlink");
	BAD(saCkptCheckpointRetentionDurationSet(bad, SA_TIME_ONE_SECOND),
		"saCkptCheckpointRetentionDurationSet");
	BAD(saCkptActiveReplicaSet(bad), "saCkptActiveReplicaSet");
	BAD(saCkptCheckpointStatusGet(bad, &status), "saCkptCheckpointStatusGet");
	BAD(saCkptSectionCreate(bad, &sattrs, "d", 1), "saCkptSectionCreate");
	BAD(saCkptSectionDelete(bad, &id), "saCkptSectionDelete");
	BAD(saCkptSectionExpirationTimeSet(bad, &id, SA_TIME_END),
		"saCkptSectionExpirationTimeSet");
	BAD(saCkptSectionIterationInitialize(bad, SA_CKPT_SECTIONS_ANY, 0, &ih),
		"saCkptSectionIterationInitialize");
	BAD(saCkptSectionIterationNext(bad, &desc), "saCkptSectionIterationNext");
	BAD(saCkptSectionIterationFinalize(bad), "saCkptSectionIterationFinalize");
	BAD(saCkptCheckpointWrite(bad, &e, 1, &idx), "saCkptCheckpointWrite");
	BAD(saCkptSectionOverwrite(bad, &id, "d", 1), "saCkptSectionOverwrite");
	BAD(saCkptCheckpointRead(bad, &e, 1, &idx), "saCkptCheckpointRead");
	BAD(saCkptCheckpointSynchronize(bad, SA_TIME_ONE_SECOND), "saCkptCheckpointSynchronize");
	BAD(saCkptCheckpointSynchronizeAsync(bad, 1), "saCkptCheckpointSynchronizeAsync");
#undef BAD
	CHECK(ch == 5 && ih == 5 && idx == 77 && sel == 0, "no output written on failure");
	CHECK(e.readSize == 0, "no readSize written on failure");
	return 0;
}

static int no_daemon(void)
{
	SaCkptHandleT h = 77;
	SaVersionT v;

	EXPECT_ONCE(saCkptInitialize(&h, &callbacks, NULL), SA_AIS_ERR_INVALID_PARAM,
		"NULL version");
	v.releaseCode = 'A'; v.majorVersion = 1; v.minorVersion = 1;
	EXPECT_ONCE(saCkptInitialize(&h, &callbacks, &v), SA_AIS_ERR_VERSION, "version A.1.1");
	CHECK(v.releaseCode == 'B' && v.majorVersion == 1 && v.minorVersion == 1,
		"A.1.1: B.1.1 written back");
	v.releaseCode = 'B'; v.majorVersion = 2; v.minorVersion = 1;
	EXPECT_ONCE(saCkptInitialize(&h, &callbacks, &v), SA_AIS_ERR_VERSION, "version B.2.1");
	v.releaseCode = 'B'; v.majorVersion = 1; v.minorVersion = 255;
	EXPECT_ONCE(saCkptInitialize(&h, &callbacks, &v), SA_AIS_ERR_TRY_AGAIN,
		"B.1.255 without an executive: TRY_AGAIN");
	v = b11();
	EXPECT_ONCE(saCkptInitialize(NULL, &callbacks, &v), SA_AIS_ERR_INVALID_PARAM,
		"NULL handle");
	CHECK(h == 77, "no handle written on failure");
	if (bad_handles(0, "SA_HANDLE_INVALID") || bad_handles(0x1234567800000001ull, "garbage"))
		return 1;
	return 0;
}

/* ---- walk ---------------------------------------------------------------- */

static SaCkptCheckpointCreationAttributesT walk_attrs = {
	SA_CKPT_WR_ALL_REPLICAS, 4000000, 0, 100, 600000, 16
};

#define BIG 500000

static int walk_open_flags(SaCkptHandleT h, SaCkptCheckpointHandleT *cw,
	SaCkptCheckpointHandleT *cr, SaCkptCheckpointHandleT *cwo)
{
	SaCkptCheckpointCreationAttributesT a = walk_attrs;
	SaCkptCheckpointHandleT c = 42;
	SaNameT name, none, empty;

	set_name(&name, "walk");
	set_name(&none, "none");
	empty = name;
	empty.length = 0;
	EXPECT_ONCE(saCkptCheckpointOpen(h, &name, &a,
		SA_CKPT_CHECKPOINT_CREATE | SA_CKPT_CHECKPOINT_WRITE | 0x40, 0, &c),
		SA_AIS_ERR_BAD_FLAGS, "open with an unknown flag");
	EXPECT_ONCE(saCkptCheckpointOpen(h, &name, NULL, SA_CKPT_CHECKPOINT_CREATE, 0, &c),
		SA_AIS_ERR_INVALID_PARAM, "CREATE without attributes");
	EXPECT_ONCE(saCkptCheckpointOpen(h, &name, &a, SA_CKPT_CHECKPOINT_READ, 0, &c),
		SA_AIS_ERR_INVALID_PARAM, "attributes without CREATE");
	EXPECT_ONCE(saCkptCheckpointOpen(h, NULL, NULL, SA_CKPT_CHECKPOINT_READ, 0, &c),
		SA_AIS_ERR_INVALID_PARAM, "NULL name");
	EXPECT_ONCE(saCkptCheckpointOpen(h, &empty, NULL, SA_CKPT_CHECKPOINT_READ, 0, &c),
		SA_AIS_ERR_INVALID_PARAM, "empty name");
	EXPECT_ONCE(saCkptCheckpointOpen(h, &name, NULL, SA_CKPT_CHECKPOINT_READ, 0, NULL),
		SA_AIS_ERR_INVALID_PARAM, "NULL checkpoint handle");
	EXPECT(saCkptCheckpointOpen(h, &none, NULL, SA_CKPT_CHECKPOINT_READ, 0, &c),
		SA_AIS_ERR_NOT_EXIST, "open without CREATE of no checkpoint");
	a.creationFlags = SA_CKPT_WR_ALL_REPLICAS | SA_CKPT_WR_ACTIVE_REPLICA;
	EXPECT(saCkptCheckpointOpen(h, &name, &a, SA_CKPT_CHECKPOINT_CREATE, 0, &c),
		SA_AIS_ERR_INVALID_PARAM, "two replication modes");
	a = walk_attrs;
	a.checkpointSize = (SaSizeT)a.maxSections * a.maxSectionSize + 1;
	EXPECT(saCkptCheckpointOpen(h, &name, &a, SA_CKPT_CHECKPOINT_CREATE, 0, &c),
		SA_AIS_ERR_INVALID_PARAM, "checkpointSize above maxSections x maxSectionSize");
	CHECK(c == 42, "no handle written on failure");
	a = walk_attrs;
	EXPECT(saCkptCheckpointOpen(h, &name, &a,
		SA_CKPT_CHECKPOINT_CREATE | SA_CKPT_CHECKPOINT_READ | SA_CKPT_CHECKPOINT_WRITE,
		SA_TIME_ONE_SECOND * 10, cw), SA_AIS_OK, "create and open read-write");
	a.maxSections = 99;
	EXPECT(saCkptCheckpointOpen(h, &name, &a, SA_CKPT_CHECKPOINT_CREATE, 0, &c),
		SA_AIS_ERR_EXIST, "CREATE with other attributes");
	a = walk_attrs;
	a.retentionDuration = 3 * SA_TIME_ONE_SECOND;
	EXPECT(saCkptCheckpointOpen(h, &name, &a, SA_CKPT_CHECKPOINT_CREATE, 0, &c),
		SA_AIS_OK, "CREATE with another retention only: the existing one");
	EXPECT(saCkptCheckpointClose(c), SA_AIS_OK, "close it");
	EXPECT(saCkptCheckpointClose(c), SA_AIS_ERR_BAD_HANDLE, "close twice");
	EXPECT(saCkptCheckpointOpen(h, &name, NULL, SA_CKPT_CHECKPOINT_READ, 0, cr),
		SA_AIS_OK, "open read-only");
	EXPECT(saCkptCheckpointOpen(h, &name, NULL, SA_CKPT_CHECKPOINT_WRITE, 0, cwo),
		SA_AIS_OK, "open write-only");
	CHECK(*cw != *cr && *cr != *cwo && *cw != h, "handles differ");
	EXPECT_ONCE(saCkptDispatch(*cw, SA_DISPATCH_ALL), SA_AIS_ERR_BAD_HANDLE,
		"a checkpoint handle is no library handle");
	EXPECT_ONCE(saCkptCheckpointClose(h), SA_AIS_ERR_BAD_HANDLE,
		"a library handle is no checkpoint handle");
	return 0;
}

static int walk_access(SaCkptCheckpointHandleT cr, SaCkptCheckpointHandleT cwo)
{
	SaCkptSectionIdT id = sid("s-a");
	SaCkptSectionCreationAttributesT sattrs = { &id, SA_TIME_END };
	char buf[8];
	SaCkptIOVectorElementT e = { { 3, (SaUint8T *)"s-a" }, buf, sizeof(buf), 0, 0 };
	SaUint32T idx = 77;

	EXPECT_ONCE(saCkptSectionCreate(cr, &sattrs, "x", 1), SA_AIS_ERR_ACCESS,
		"section create read-only");
	EXPECT_ONCE(saCkptCheckpointWrite(cr, &e, 1, &idx), SA_AIS_ERR_ACCESS, "write read-only");
	EXPECT_ONCE(saCkptSectionOverwrite(cr, &id, "x", 1), SA_AIS_ERR_ACCESS,
		"overwrite read-only");
	EXPECT_ONCE(saCkptSectionDelete(cr, &id), SA_AIS_ERR_ACCESS, "delete read-only");
	EXPECT_ONCE(saCkptSectionExpirationTimeSet(cr, &id, SA_TIME_END), SA_AIS_ERR_ACCESS,
		"expiration set read-only");
	EXPECT_ONCE(saCkptActiveReplicaSet(cr), SA_AIS_ERR_ACCESS, "active replica set read-only");
	EXPECT_ONCE(saCkptCheckpointSynchronize(cr, SA_TIME_ONE_SECOND), SA_AIS_ERR_ACCESS,
		"synchronize read-only");
	EXPECT_ONCE(saCkptCheckpointRead(cwo, &e, 1, &idx), SA_AIS_ERR_ACCESS, "read write-only");
	CHECK(idx == 77, "no index for an access error");
	return 0;
}

static int walk_sections(SaCkptCheckpointHandleT cw)
{
	SaCkptSectionIdT a = sid("s-a"), missing = sid("missing"), toolong = sid("0123456789abcdefg");
	SaCkptSectionIdT g1 = SA_CKPT_GENERATED_SECTION_ID, g2 = SA_CKPT_GENERATED_SECTION_ID;
	SaCkptSectionIdT dflt = SA_CKPT_DEFAULT_SECTION_ID;
	SaCkptSectionCreationAttributesT sattrs = { &a, SA_TIME_END };
	SaCkptSectionCreationAttributesT no_id = { NULL, SA_TIME_END };
	SaCkptCheckpointDescriptorT st;
	unsigned char *big, *data;
	SaSizeT size = 0;

	EXPECT_ONCE(saCkptSectionCreate(cw, NULL, "x", 1), SA_AIS_ERR_INVALID_PARAM,
		"section create NULL attributes");
	EXPECT_ONCE(saCkptSectionCreate(cw, &no_id, "x", 1), SA_AIS_ERR_INVALID_PARAM,
		"section create NULL section id");
	EXPECT_ONCE(saCkptSectionCreate(cw, &sattrs, NULL, 5), SA_AIS_ERR_INVALID_PARAM,
		"section create NULL data");
	sattrs.sectionId = &toolong;
	EXPECT(saCkptSectionCreate(cw, &sattrs, "x", 1), SA_AIS_ERR_INVALID_PARAM,
		"section id above maxSectionIdSize");
	sattrs.sectionId = &a;
	big = calloc(1, 600001);
	EXPECT(saCkptSectionCreate(cw, &sattrs, big, 600001), SA_AIS_ERR_INVALID_PARAM,
		"initial data above maxSectionSize");
	free(big);
	EXPECT(saCkptSectionCreate(cw, &sattrs, "hello", 5), SA_AIS_OK, "section create");
	EXPECT(saCkptSectionCreate(cw, &sattrs, "hello", 5), SA_AIS_ERR_EXIST,
		"section create twice");

	sattrs.sectionId = &g1;
	EXPECT(saCkptSectionCreate(cw, &sattrs, "g1", 2), SA_AIS_OK, "generated id");
	CHECK(g1.idLen > 0 && g1.id != NULL && g1.id[g1.idLen] == 0,
		"generated id written back, NUL-terminated");
	sattrs.sectionId = &g2;
	EXPECT(saCkptSectionCreate(cw, &sattrs, "g22", 3), SA_AIS_OK, "another generated id");
	CHECK(g2.idLen > 0 && !(g1.idLen == g2.idLen && !memcmp(g1.id, g2.id, g1.idLen)),
		"generated ids differ");
	printf("generated ids %s %s\n", (char *)g1.id, (char *)g2.id);
	data = read_all(cw, (char *)g2.id, &size);
	CHECK(data != NULL && size == 3 && !memcmp(data, "g22", 3), "read by generated id");
	free(data);

	EXPECT_ONCE(saCkptCheckpointStatusGet(cw, NULL), SA_AIS_ERR_INVALID_PARAM,
		"status NULL");
	EXPECT(saCkptCheckpointStatusGet(cw, &st), SA_AIS_OK, "status");
	CHECK(st.numberOfSections == 3 && st.memoryUsed == 10, "3 sections, 10 bytes used");
	CHECK(same_attrs(&st.checkpointCreationAttributes, &walk_attrs),
		"creation attributes as created");

	EXPECT(saCkptSectionDelete(cw, &g2), SA_AIS_OK, "delete generated section");
	EXPECT(saCkptSectionDelete(cw, &g2), SA_AIS_ERR_NOT_EXIST, "delete twice");
	EXPECT(saCkptSectionDelete(cw, &dflt), SA_AIS_ERR_INVALID_PARAM,
		"delete the default section id");
	EXPECT_ONCE(saCkptSectionDelete(cw, NULL), SA_AIS_ERR_INVALID_PARAM, "delete NULL id");
	EXPECT(saCkptSectionExpirationTimeSet(cw, &missing, SA_TIME_END), SA_AIS_ERR_NOT_EXIST,
		"expiration set of no section");
	EXPECT(saCkptSectionExpirationTimeSet(cw, &g1, now_ns() + 3600 * SA_TIME_ONE_SECOND),
		SA_AIS_OK, "expiration set in an hour");
	free(g1.id);
	free(g2.id);
	return 0;
}

static int walk_vectors(SaCkptCheckpointHandleT cw)
{
	char b0[64], b1[64];
	unsigned char *huge;
	SaCkptIOVectorElementT w[3], r[3];
	SaCkptSectionIdT a = sid("s-a"), missing = sid("missing");
	SaUint32T idx = 77;

	memset(w, 0, sizeof(w));
	memset(r, 0, sizeof(r));
	w[0].sectionId = a; w[0].dataBuffer = "HELLO"; w[0].dataSize = 5; w[0].dataOffset = 0;
	w[1].sectionId = a; w[1].dataBuffer = "!!"; w[1].dataSize = 2; w[1].dataOffset = 5;
	EXPECT(saCkptCheckpointWrite(cw, w, 2, &idx), SA_AIS_OK, "write two elements");
	r[0].sectionId = a; r[0].dataBuffer = b0; r[0].dataSize = sizeof(b0);
	EXPECT(saCkptCheckpointRead(cw, r, 1, &idx), SA_AIS_OK, "read");
	CHECK(r[0].readSize == 7 && !memcmp(b0, "HELLO!!", 7), "read what was written");

	w[0].dataBuffer = "xx";
	w[0].dataSize = 2;
	w[1].sectionId = missing;
	EXPECT(saCkptCheckpointWrite(cw, w, 2, &idx), SA_AIS_ERR_NOT_EXIST,
		"write to a missing section");
	CHECK(idx == 1, "erroneous index 1");
	EXPECT(saCkptCheckpointWrite(cw, w, 2, NULL), SA_AIS_ERR_NOT_EXIST,
		"the same with a NULL erroneous index");
	EXPECT(saCkptCheckpointRead(cw, r, 1, &idx), SA_AIS_OK, "read again");
	CHECK(r[0].readSize == 7 && !memcmp(b0, "HELLO!!", 7),
		"a failed vector wrote none of its elements");
	w[1].sectionId = a;
	w[1].dataBuffer = NULL;
	idx = 77;
	EXPECT_ONCE(saCkptCheckpointWrite(cw, w, 2, &idx), SA_AIS_ERR_INVALID_PARAM,
		"write element without a buffer");
	CHECK(idx == 1, "erroneous index 1 (NULL buffer)");
	w[1].dataBuffer = "b";
	w[1].dataSize = 0;
	idx = 77;
	EXPECT_ONCE(saCkptCheckpointWrite(cw, w, 2, &idx), SA_AIS_ERR_INVALID_PARAM,
		"write element of 0 bytes");
	CHECK(idx == 1, "erroneous index 1 (0 bytes)");
	w[1].dataSize = 1;
	w[1].dataOffset = 600000;
	idx = 77;
	EXPECT(saCkptCheckpointWrite(cw, w, 2, &idx), SA_AIS_ERR_INVALID_PARAM,
		"write past maxSectionSize");
	CHECK(idx == 1, "erroneous index 1 (past maxSectionSize)");
	EXPECT_ONCE(saCkptCheckpointWrite(cw, NULL, 1, &idx), SA_AIS_ERR_INVALID_PARAM,
		"write NULL vector");
	EXPECT(saCkptCheckpointWrite(cw, w, 0, &idx), SA_AIS_OK, "write of no element");

	r[1] = r[0];
	r[1].dataBuffer = b1;
	r[1].dataOffset = 100;
	idx = 77;
	EXPECT(saCkptCheckpointRead(cw, r, 2, &idx), SA_AIS_ERR_INVALID_PARAM,
		"read past the section's end");
	CHECK(idx == 1, "erroneous index 1 (read)");
	r[1].sectionId = missing;
	r[1].dataOffset = 0;
	EXPECT(saCkptCheckpointRead(cw, r, 2, &idx), SA_AIS_ERR_NOT_EXIST,
		"read of a missing section");
	CHECK(idx == 1, "erroneous index 1 (missing)");
	huge = malloc(700000);
	r[1].sectionId = a;
	r[1].dataBuffer = huge;
	r[1].dataSize = 700000;
	EXPECT(saCkptCheckpointRead(cw, r, 2, &idx), SA_AIS_ERR_INVALID_PARAM,
		"read of more than maxSectionSize");
	CHECK(idx == 1, "erroneous index 1 (size)");
	free(huge);
	r[0].dataOffset = 2;
	r[0].dataSize = 3;
	r[1].dataBuffer = NULL;
	r[1].dataSize = 0;
	r[1].dataOffset = 1;
	memset(b0, 0, sizeof(b0));
	EXPECT(saCkptCheckpointRead(cw, r, 2, &idx), SA_AIS_OK,
		"read a part, and the rest into the library's buffer");
	CHECK(r[0].readSize == 3 && !memcmp(b0, "LLO", 3) && b0[3] == 0, "a part: LLO");
	CHECK(r[1].dataBuffer != NULL && r[1].readSize == 6
		&& !memcmp(r[1].dataBuffer, "ELLO!!", 6), "the rest in malloc'd memory");
	free(r[1].dataBuffer);

	EXPECT_ONCE(saCkptSectionOverwrite(cw, NULL, "new", 3), SA_AIS_ERR_INVALID_PARAM,
		"overwrite NULL id");
	EXPECT(saCkptSectionOverwrite(cw, &missing, "new", 3), SA_AIS_ERR_NOT_EXIST,
		"overwrite a missing section");
	EXPECT(saCkptSectionOverwrite(cw, &a, "new", 3), SA_AIS_OK, "overwrite");
	r[0].dataOffset = 0;
	r[0].dataSize = sizeof(b0);
	EXPECT(saCkptCheckpointRead(cw, r, 1, &idx), SA_AIS_OK, "read the overwrite");
	CHECK(r[0].readSize == 3 && !memcmp(b0, "new", 3), "overwrite replaced everything");
	return 0;
}

/* 3 x 500 000 bytes: two write requests, three read requests. */
static int walk_big_vectors(SaCkptCheckpointHandleT cw)
{
	static const char *ids[3] = { "big-0", "big-1", "big-2" };
	SaCkptIOVectorElementT v[3];
	SaCkptSectionCreationAttributesT sattrs;
	SaCkptSectionIdT id;
	SaCkptCheckpointDescriptorT st;
	SaUint32T idx = 77;
	int i, ok = 1;

	memset(v, 0, sizeof(v));
	for (i = 0; i < 3; i++) {
		id = sid(ids[i]);
		sattrs.sectionId = &id;
		sattrs.expirationTime = SA_TIME_END;
		EXPECT(saCkptSectionCreate(cw, &sattrs, NULL, 0), SA_AIS_OK, "big section create");
		v[i].sectionId = sid(ids[i]);
		v[i].dataBuffer = malloc(BIG);
		v[i].dataSize = BIG;
		fill(v[i].dataBuffer, BIG, i + 1);
	}
	EXPECT(saCkptCheckpointWrite(cw, v, 3, &idx), SA_AIS_OK, "write 1.5 MB in one call");
	for (i = 0; i < 3; i++) {
		free(v[i].dataBuffer);
		v[i].dataBuffer = NULL;
	}
	EXPECT(saCkptCheckpointRead(cw, v, 3, &idx), SA_AIS_OK,
		"read it back into the library's buffers");
	for (i = 0; i < 3; i++) {
		ok = ok && v[i].readSize == BIG && same(v[i].dataBuffer, BIG, i + 1);
		free(v[i].dataBuffer);
	}
	CHECK(ok, "1.5 MB read as written");
	EXPECT(saCkptCheckpointStatusGet(cw, &st), SA_AIS_OK, "status with big sections");
	CHECK(st.numberOfSections == 5 && st.memoryUsed == 3 * BIG + 3 + 2,
		"big sections counted");
	for (i = 0; i < 3; i++) {
		id = sid(ids[i]);
		EXPECT(saCkptSectionDelete(cw, &id), SA_AIS_OK, "big section delete");
	}
	return 0;
}

/* The ids an iteration returns stay valid until it is finalized. */
static int count_sections(SaCkptCheckpointHandleT c, SaCkptSectionsChosenT chosen,
	SaTimeT t, int want, const char *what)
{
	SaCkptSectionIterationHandleT it;
	SaCkptSectionDescriptorT d[64];
	char msg[128];
	int n = 0, i, ok = 1;

	EXPECT(saCkptSectionIterationInitialize(c, chosen, t, &it), SA_AIS_OK,
		"iteration initialize");
	for (;;) {
		RETRYING(saCkptSectionIterationNext(it, &d[n < 63 ? n : 63]));
		if (last != SA_AIS_OK)
			break;
		if (n < 63)
			n++;
		else
			ok = 0;
	}
	snprintf(msg, sizeof(msg), "iteration %s ends with NO_SECTIONS", what);
	CHECK(last == SA_AIS_ERR_NO_SECTIONS, msg);
	EXPECT(saCkptSectionIterationNext(it, &d[0]), SA_AIS_ERR_NO_SECTIONS,
		"next after the end");
	/* Every id returned is still readable, and as its data says. */
	for (i = 0; i < n; i++) {
		ok = ok && d[i].sectionId.id != NULL && d[i].sectionId.idLen == 6
			&& d[i].sectionId.id[6] == 0 && d[i].sectionSize == 6
			&& d[i].sectionState == SA_CKPT_SECTION_VALID && d[i].lastUpdate > 0;
		if (i > 0)
			ok = ok && strcmp((char *)d[i - 1].sectionId.id, (char *)d[i].sectionId.id) != 0;
	}
	snprintf(msg, sizeof(msg), "iteration %s: %d sections, want %d", what, n, want);
	CHECK(ok && n == want, msg);
	EXPECT(saCkptSectionIterationFinalize(it), SA_AIS_OK, "iteration finalize");
	EXPECT_ONCE(saCkptSectionIterationNext(it, &d[0]), SA_AIS_ERR_BAD_HANDLE,
		"next after finalize");
	EXPECT_ONCE(saCkptSectionIterationFinalize(it), SA_AIS_ERR_BAD_HANDLE, "finalize twice");
	return 0;
}

static int walk_iteration(SaCkptHandleT h)
{
	SaCkptCheckpointCreationAttributesT a = { SA_CKPT_WR_ALL_REPLICAS, 6000, 0, 100, 100, 16 };
	SaCkptCheckpointHandleT c;
	SaCkptSectionIterationHandleT it = 5;
	SaCkptSectionCreationAttributesT sattrs;
	SaCkptSectionDescriptorT d;
	SaCkptSectionIdT id;
	SaTimeT now = now_ns();
	SaTimeT t1 = now + 3600 * SA_TIME_ONE_SECOND, t2 = now + 7200 * SA_TIME_ONE_SECOND;
	SaNameT name;
	char ids[60][8];
	int i;

	set_name(&name, "iter");
	EXPECT(saCkptCheckpointOpen(h, &name, &a,
		SA_CKPT_CHECKPOINT_CREATE | SA_CKPT_CHECKPOINT_READ | SA_CKPT_CHECKPOINT_WRITE,
		0, &c), SA_AIS_OK, "open the iteration checkpoint");
	for (i = 0; i < 60; i++) {
		snprintf(ids[i], sizeof(ids[i]), "sec-%02d", i);
		id = sid(ids[i]);
		sattrs.sectionId = &id;
		sattrs.expirationTime = i % 3 == 0 ? (SaTimeT)SA_TIME_END : i % 3 == 1 ? t1 : t2;
		RETRYING(saCkptSectionCreate(c, &sattrs, ids[i], 6));
		if (last != SA_AIS_OK) {
			printf("FAIL create %s: %d\n", ids[i], (int)last);
			return 1;
		}
	}
	printf("ok 60 sections created\n");
	if (count_sections(c, SA_CKPT_SECTIONS_ANY, 0, 60, "ANY")
		|| count_sections(c, SA_CKPT_SECTIONS_FOREVER, 0, 20, "FOREVER")
		|| count_sections(c, SA_CKPT_SECTIONS_LEQ_EXPIRATION_TIME, t1, 20, "LEQ t1")
		|| count_sections(c, SA_CKPT_SECTIONS_LEQ_EXPIRATION_TIME, t2, 40, "LEQ t2")
		|| count_sections(c, SA_CKPT_SECTIONS_GEQ_EXPIRATION_TIME, t1, 60, "GEQ t1")
		|| count_sections(c, SA_CKPT_SECTIONS_GEQ_EXPIRATION_TIME, t2, 40, "GEQ t2")
		|| count_sections(c, SA_CKPT_SECTIONS_GEQ_EXPIRATION_TIME, t2 + 1, 20, "GEQ t2+1")
		|| count_sections(c, SA_CKPT_SECTIONS_LEQ_EXPIRATION_TIME, now, 0, "LEQ now")
		|| count_sections(c, SA_CKPT_SECTIONS_CORRUPTED, 0, 0, "CORRUPTED"))
		return 1;
	EXPECT_ONCE(saCkptSectionIterationInitialize(c, 9, 0, &it), SA_AIS_ERR_INVALID_PARAM,
		"iteration with an unknown choice");
	EXPECT_ONCE(saCkptSectionIterationInitialize(c, SA_CKPT_SECTIONS_ANY, 0, NULL),
		SA_AIS_ERR_INVALID_PARAM, "iteration NULL handle");
	EXPECT(saCkptSectionIterationInitialize(c, SA_CKPT_SECTIONS_ANY, 0, &it), SA_AIS_OK,
		"iteration to be ended by close");
	EXPECT_ONCE(saCkptSectionIterationNext(it, NULL), SA_AIS_ERR_INVALID_PARAM,
		"next NULL descriptor");
	EXPECT(saCkptSectionIterationNext(it, &d), SA_AIS_OK, "next");
	CHECK(d.sectionId.idLen == 6 && !memcmp(d.sectionId.id, "sec-", 4), "a section of ours");
	EXPECT(saCkptCheckpointClose(c), SA_AIS_OK, "close with an iteration running");
	EXPECT_ONCE(saCkptSectionIterationNext(it, &d), SA_AIS_ERR_BAD_HANDLE,
		"close ended the iteration");
	EXPECT_ONCE(saCkptSectionIterationFinalize(it), SA_AIS_ERR_BAD_HANDLE,
		"finalize of an iteration close ended");
	return 0;
}

static int walk_default_section(SaCkptHandleT h)
{
	SaCkptCheckpointCreationAttributesT a = { SA_CKPT_WR_ALL_REPLICAS, 100, 0, 1, 100, 8 };
	SaCkptCheckpointHandleT c;
	SaCkptSectionIterationHandleT it;
	SaCkptSectionDescriptorT d;
	SaCkptSectionIdT dflt = SA_CKPT_DEFAULT_SECTION_ID, other = sid("other");
	SaCkptSectionCreationAttributesT sattrs = { &other, SA_TIME_END };
	char buf[32];
	SaCkptIOVectorElementT w[] = {
		{ SA_CKPT_DEFAULT_SECTION_ID, "default data", 12, 0, 0 }
	};
	SaCkptIOVectorElementT r[] = {
		{ SA_CKPT_DEFAULT_SECTION_ID, buf, sizeof(buf), 0, 0 }
	};
	SaUint32T idx;
	SaNameT name;

	set_name(&name, "default");
	EXPECT(saCkptCheckpointOpen(h, &name, &a,
		SA_CKPT_CHECKPOINT_CREATE | SA_CKPT_CHECKPOINT_READ | SA_CKPT_CHECKPOINT_WRITE,
		0, &c), SA_AIS_OK, "open a checkpoint of one section");
	EXPECT(saCkptCheckpointRead(c, r, 1, &idx), SA_AIS_OK, "read the default section");
	CHECK(r[0].readSize == 0, "the default section starts empty");
	EXPECT(saCkptCheckpointWrite(c, w, 1, &idx), SA_AIS_OK, "write the default section");
	EXPECT(saCkptCheckpointRead(c, r, 1, &idx), SA_AIS_OK, "read it again");
	CHECK(r[0].readSize == 12 && !memcmp(buf, "default data", 12), "default data");
	EXPECT(saCkptSectionIterationInitialize(c, SA_CKPT_SECTIONS_FOREVER, 0, &it), SA_AIS_OK,
		"iterate the default section");
	EXPECT(saCkptSectionIterationNext(it, &d), SA_AIS_OK, "next: the default section");
	CHECK(d.sectionId.idLen == 0 && d.sectionId.id != NULL && d.sectionId.id[0] == 0
		&& d.sectionSize == 12 && d.expirationTime == (SaTimeT)SA_TIME_END,
		"an empty, never-expiring id");
	EXPECT(saCkptSectionIterationNext(it, &d), SA_AIS_ERR_NO_SECTIONS, "only it");
	EXPECT(saCkptSectionIterationFinalize(it), SA_AIS_OK, "finalize");
	EXPECT(saCkptSectionCreate(c, &sattrs, "x", 1), SA_AIS_ERR_NO_SPACE,
		"no second section");
	EXPECT(saCkptSectionDelete(c, &dflt), SA_AIS_ERR_INVALID_PARAM,
		"the default section cannot be deleted");
	EXPECT(saCkptSectionExpirationTimeSet(c, &dflt, now_ns()), SA_AIS_ERR_INVALID_PARAM,
		"nor expire");
	EXPECT(saCkptSectionOverwrite(c, &dflt, "D", 1), SA_AIS_OK, "overwrite it");
	EXPECT(saCkptCheckpointClose(c), SA_AIS_OK, "close");
	return 0;
}

static int walk_replicas(SaCkptHandleT h, SaCkptCheckpointHandleT cw)
{
	SaCkptCheckpointCreationAttributesT a = {
		SA_CKPT_WR_ACTIVE_REPLICA | SA_CKPT_CHECKPOINT_COLLOCATED, 1000, 0, 10, 100, 8
	};
	SaCkptCheckpointHandleT act, weak;
	SaCkptSectionIdT s = sid("s");
	SaCkptSectionCreationAttributesT sattrs = { &s, SA_TIME_END };
	SaNameT name;

	set_name(&name, "active");
	EXPECT(saCkptCheckpointOpen(h, &name, &a,
		SA_CKPT_CHECKPOINT_CREATE | SA_CKPT_CHECKPOINT_READ | SA_CKPT_CHECKPOINT_WRITE,
		0, &act), SA_AIS_OK, "open a collocated checkpoint");
	EXPECT(saCkptSectionCreate(act, &sattrs, "x", 1), SA_AIS_ERR_NOT_EXIST,
		"no active replica yet");
	EXPECT(saCkptActiveReplicaSet(act), SA_AIS_OK, "active replica set");
	EXPECT(saCkptSectionCreate(act, &sattrs, "x", 1), SA_AIS_OK,
		"section create on the active replica");
	EXPECT(saCkptSectionOverwrite(act, &s, "yz", 2), SA_AIS_OK, "overwrite");
	EXPECT(saCkptCheckpointSynchronize(act, SA_TIME_ONE_SECOND * 10), SA_AIS_OK,
		"synchronize");
	EXPECT_ONCE(saCkptCheckpointSynchronize(act, 0), SA_AIS_ERR_TIMEOUT,
		"synchronize with timeout 0");
	EXPECT_ONCE(saCkptCheckpointSynchronize(act, -1), SA_AIS_ERR_INVALID_PARAM,
		"synchronize with a negative timeout");
	sync_calls = 0;
	EXPECT(saCkptCheckpointSynchronizeAsync(act, 7), SA_AIS_OK, "synchronize async");
	EXPECT_ONCE(saCkptDispatch(h, SA_DISPATCH_ONE), SA_AIS_OK,
		"dispatch ONE waits for the callback");
	CHECK(sync_calls == 1, "synchronize callback dispatched, once");
	CHECK(sync_invocation == 7 && sync_error == SA_AIS_OK, "synchronize callback: 7, OK");
	EXPECT(saCkptCheckpointSynchronize(cw, SA_TIME_ONE_SECOND), SA_AIS_ERR_BAD_OPERATION,
		"synchronize an ALL_REPLICAS checkpoint");
	EXPECT(saCkptActiveReplicaSet(cw), SA_AIS_ERR_BAD_OPERATION,
		"active replica set on ALL_REPLICAS");
	EXPECT(saCkptCheckpointSynchronizeAsync(cw, 8), SA_AIS_OK,
		"synchronize async an ALL_REPLICAS checkpoint");
	CHECK(dispatch_until(h, &sync_calls, 2) == 0, "second synchronize callback");
	CHECK(sync_invocation == 8 && sync_error == SA_AIS_ERR_BAD_OPERATION,
		"synchronize callback: 8, BAD_OPERATION");
	EXPECT(saCkptCheckpointClose(act), SA_AIS_OK, "close the collocated checkpoint");

	a.creationFlags = SA_CKPT_WR_ACTIVE_REPLICA_WEAK;
	set_name(&name, "weak");
	EXPECT(saCkptCheckpointOpen(h, &name, &a,
		SA_CKPT_CHECKPOINT_CREATE | SA_CKPT_CHECKPOINT_READ | SA_CKPT_CHECKPOINT_WRITE,
		0, &weak), SA_AIS_OK, "open a non-collocated ACTIVE_REPLICA_WEAK checkpoint");
	EXPECT(saCkptSectionCreate(weak, &sattrs, "x", 1), SA_AIS_OK,
		"its opener's node is the active replica");
	EXPECT(saCkptActiveReplicaSet(weak), SA_AIS_ERR_BAD_OPERATION,
		"active replica set when not collocated");
	EXPECT(saCkptCheckpointClose(weak), SA_AIS_OK, "close it");
	return 0;
}

static int walk_async_open(SaCkptHandleT h)
{
	SaCkptCheckpointCreationAttributesT a = walk_attrs;
	SaCkptHandleT bare;
	SaCkptCheckpointHandleT c, ro, act;
	SaVersionT v = b11();
	SaNameT name, none, created;
	char buf[16];
	SaCkptIOVectorElementT e = { { 3, (SaUint8T *)"s-a" }, buf, sizeof(buf), 0, 0 };
	SaUint32T idx;
	int i21, i22, i23, i24;

	set_name(&name, "walk");
	set_name(&none, "none");
	set_name(&created, "async");
	open_calls = 0;
	EXPECT_ONCE(saCkptCheckpointOpenAsync(h, 20, NULL, NULL, SA_CKPT_CHECKPOINT_READ),
		SA_AIS_ERR_INVALID_PARAM, "open async NULL name");
	EXPECT_ONCE(saCkptCheckpointOpenAsync(h, 20, &name, NULL, 0x80),
		SA_AIS_ERR_BAD_FLAGS, "open async bad flags");
	EXPECT(saCkptCheckpointOpenAsync(h, 21, &name, NULL,
		SA_CKPT_CHECKPOINT_READ | SA_CKPT_CHECKPOINT_WRITE), SA_AIS_OK, "open async");
	EXPECT(saCkptCheckpointOpenAsync(h, 22, &none, NULL, SA_CKPT_CHECKPOINT_READ),
		SA_AIS_OK, "open async of no checkpoint");
	EXPECT(saCkptCheckpointOpenAsync(h, 23, &created, &a,
		SA_CKPT_CHECKPOINT_CREATE | SA_CKPT_CHECKPOINT_READ), SA_AIS_OK,
		"open async creating a checkpoint");
	EXPECT(saCkptCheckpointOpenAsync(h, 24, &name, NULL, SA_CKPT_CHECKPOINT_READ),
		SA_AIS_OK, "open async read-only");
	CHECK(dispatch_until(h, &open_calls, 4) == 0, "four open callbacks dispatched");
	i21 = open_result(21);
	i22 = open_result(22);
	i23 = open_result(23);
	i24 = open_result(24);
	CHECK(i21 >= 0 && open_errors[i21] == SA_AIS_OK && open_handles[i21] != 0,
		"callback 21: a handle");
	CHECK(i22 >= 0 && open_errors[i22] == SA_AIS_ERR_NOT_EXIST && open_handles[i22] == 0,
		"callback 22: NOT_EXIST");
	CHECK(i23 >= 0 && open_errors[i23] == SA_AIS_OK, "callback 23: created");
	CHECK(i24 >= 0 && open_errors[i24] == SA_AIS_OK, "callback 24: a handle");
	c = open_handles[i21];
	ro = open_handles[i24];
	EXPECT(saCkptCheckpointRead(c, &e, 1, &idx), SA_AIS_OK, "read through the async handle");
	CHECK(e.readSize == 3 && !memcmp(buf, "new", 3), "the async handle reads the checkpoint");
	EXPECT_ONCE(saCkptSectionOverwrite(ro, &e.sectionId, "no", 2), SA_AIS_ERR_ACCESS,
		"the async read-only handle has its flags");
	EXPECT(saCkptCheckpointClose(c), SA_AIS_OK, "close the async handle");
	EXPECT(saCkptCheckpointClose(ro), SA_AIS_OK, "close the read-only async handle");
	EXPECT(saCkptCheckpointClose(open_handles[i23]), SA_AIS_OK, "close the created one");

	/* No callbacks: async calls are ERR_INIT. */
	EXPECT(saCkptInitialize(&bare, NULL, &v), SA_AIS_OK,
		"initialize without callbacks");
	EXPECT_ONCE(saCkptCheckpointOpenAsync(bare, 1, &name, NULL, SA_CKPT_CHECKPOINT_READ),
		SA_AIS_ERR_INIT, "open async without an open callback");
	EXPECT(saCkptCheckpointOpen(bare, &name, NULL, SA_CKPT_CHECKPOINT_WRITE, 0, &act),
		SA_AIS_OK, "open without callbacks");
	EXPECT_ONCE(saCkptCheckpointSynchronizeAsync(act, 1), SA_AIS_ERR_INIT,
		"synchronize async without a synchronize callback");
	EXPECT_ONCE(saCkptFinalize(bare), SA_AIS_OK, "finalize it");
	return 0;
}

static int walk_unlink(SaCkptHandleT h)
{
	SaCkptCheckpointCreationAttributesT a = {
		SA_CKPT_WR_ALL_REPLICAS, 1000, SA_TIME_END, 10, 100, 8
	};
	SaCkptCheckpointHandleT old, fresh, c;
	SaCkptSectionIdT s = sid("s");
	SaCkptSectionCreationAttributesT sattrs = { &s, SA_TIME_END };
	SaNameT name, none;
	unsigned char *data;
	SaSizeT size = 0;

	set_name(&name, "unlink");
	set_name(&none, "none");
	EXPECT_ONCE(saCkptCheckpointUnlink(h, NULL), SA_AIS_ERR_INVALID_PARAM, "unlink NULL name");
	EXPECT(saCkptCheckpointUnlink(h, &none), SA_AIS_ERR_NOT_EXIST, "unlink of no checkpoint");
	EXPECT(saCkptCheckpointOpen(h, &name, &a,
		SA_CKPT_CHECKPOINT_CREATE | SA_CKPT_CHECKPOINT_READ | SA_CKPT_CHECKPOINT_WRITE,
		0, &old), SA_AIS_OK, "open a checkpoint to unlink");
	EXPECT(saCkptSectionCreate(old, &sattrs, "old", 3), SA_AIS_OK, "its section");
	EXPECT(saCkptCheckpointRetentionDurationSet(old, -1), SA_AIS_ERR_INVALID_PARAM,
		"negative retention");
	EXPECT(saCkptCheckpointRetentionDurationSet(old, 60 * SA_TIME_ONE_SECOND), SA_AIS_OK,
		"retention set");
	EXPECT(saCkptCheckpointUnlink(h, &name), SA_AIS_OK, "unlink while open");
	EXPECT(saCkptCheckpointUnlink(h, &name), SA_AIS_ERR_NOT_EXIST, "unlink twice");
	EXPECT(saCkptCheckpointOpen(h, &name, NULL, SA_CKPT_CHECKPOINT_READ, 0, &c),
		SA_AIS_ERR_NOT_EXIST, "the name is gone");
	data = read_all(old, "s", &size);
	CHECK(data != NULL && size == 3 && !memcmp(data, "old", 3),
		"the open handle still reads the unlinked checkpoint");
	free(data);
	EXPECT(saCkptSectionOverwrite(old, &s, "older", 5), SA_AIS_OK,
		"and writes it");
	EXPECT(saCkptCheckpointRetentionDurationSet(old, SA_TIME_ONE_SECOND),
		SA_AIS_ERR_BAD_OPERATION, "retention set once unlinked");
	EXPECT(saCkptCheckpointOpen(h, &name, &a,
		SA_CKPT_CHECKPOINT_CREATE | SA_CKPT_CHECKPOINT_READ | SA_CKPT_CHECKPOINT_WRITE,
		0, &fresh), SA_AIS_OK, "a new checkpoint of the same name");
	data = read_all(fresh, "s", &size);
	CHECK(data == NULL && last == SA_AIS_ERR_NOT_EXIST, "the new one has no section s");
	EXPECT(saCkptSectionCreate(fresh, &sattrs, "new", 3), SA_AIS_OK, "its own section s");
	data = read_all(old, "s", &size);
	CHECK(data != NULL && size == 5 && !memcmp(data, "older", 5), "the old one is apart");
	free(data);
	EXPECT(saCkptCheckpointClose(old), SA_AIS_OK,
		"close the last opener of the unlinked checkpoint");
	data = read_all(fresh, "s", &size);
	CHECK(data != NULL && size == 3 && !memcmp(data, "new", 3), "the new one is intact");
	free(data);
	EXPECT(saCkptCheckpointUnlink(h, &name), SA_AIS_OK, "unlink the new one");
	EXPECT(saCkptCheckpointClose(fresh), SA_AIS_OK, "and close it");
	return 0;
}

static int walk_finalize(void)
{
	SaCkptHandleT h2;
	SaCkptCheckpointHandleT c;
	SaCkptSectionIterationHandleT it;
	SaCkptSectionDescriptorT d;
	SaNameT name;

	set_name(&name, "walk");
	if (init(&h2, &callbacks))
		return 1;
	EXPECT(saCkptCheckpointOpen(h2, &name, NULL, SA_CKPT_CHECKPOINT_READ, 0, &c), SA_AIS_OK,
		"open through a second handle");
	EXPECT(saCkptSectionIterationInitialize(c, SA_CKPT_SECTIONS_ANY, 0, &it), SA_AIS_OK,
		"an iteration on it");
	EXPECT(saCkptSectionIterationNext(it, &d), SA_AIS_OK, "next");
	EXPECT_ONCE(saCkptFinalize(h2), SA_AIS_OK, "finalize with open checkpoints");
	EXPECT_ONCE(saCkptCheckpointClose(c), SA_AIS_ERR_BAD_HANDLE,
		"finalize closed the checkpoint handle");
	EXPECT_ONCE(saCkptSectionIterationNext(it, &d), SA_AIS_ERR_BAD_HANDLE,
		"and ended the iteration");
	EXPECT_ONCE(saCkptFinalize(h2), SA_AIS_ERR_BAD_HANDLE, "finalize twice");
	return 0;
}

static int walk(void)
{
	SaCkptHandleT h;
	SaCkptCheckpointHandleT cw, cr, cwo;
	SaSelectionObjectT sel;

	if (init(&h, &callbacks))
		return 1;
	EXPECT_ONCE(saCkptSelectionObjectGet(h, NULL), SA_AIS_ERR_INVALID_PARAM,
		"selection object NULL");
	EXPECT_ONCE(saCkptSelectionObjectGet(h, &sel), SA_AIS_OK, "selection object");
	EXPECT_ONCE(saCkptDispatch(h, 0), SA_AIS_ERR_INVALID_PARAM, "dispatch flags 0");
	EXPECT_ONCE(saCkptDispatch(h, SA_DISPATCH_ALL), SA_AIS_OK, "dispatch ALL, nothing pending");
	if (walk_open_flags(h, &cw, &cr, &cwo) || walk_access(cr, cwo) || walk_sections(cw)
		|| walk_vectors(cw) || walk_big_vectors(cw) || walk_iteration(h)
		|| walk_default_section(h) || walk_replicas(h, cw) || walk_async_open(h)
		|| walk_unlink(h) || walk_finalize())
		return 1;
	EXPECT(saCkptCheckpointRetentionDurationSet(cw, 0), SA_AIS_OK,
		"retention 0: gone at the last close");
	EXPECT(saCkptCheckpointClose(cr), SA_AIS_OK, "close read-only");
	EXPECT(saCkptCheckpointClose(cwo), SA_AIS_OK, "close write-only");
	EXPECT_ONCE(saCkptFinalize(h), SA_AIS_OK, "finalize with cw still open");
	EXPECT_ONCE(saCkptCheckpointClose(cw), SA_AIS_ERR_BAD_HANDLE, "cw went with it");
	return 0;
}

/* ---- expiry ---------------------------------------------------------------- */

static int expiry(void)
{
	SaCkptCheckpointCreationAttributesT ret = {
		SA_CKPT_WR_ALL_REPLICAS, 1000, SA_TIME_ONE_SECOND, 10, 100, 8
	};
	SaCkptCheckpointCreationAttributesT exp = {
		SA_CKPT_WR_ALL_REPLICAS, 1000, SA_TIME_END, 10, 100, 8
	};
	static const char *ids[4] = { "soon", "reset", "later", "never" };
	SaCkptHandleT h;
	SaCkptCheckpointHandleT c;
	SaCkptSectionCreationAttributesT sattrs;
	SaCkptSectionIdT id;
	SaTimeT now = now_ns();
	SaTimeT times[4];
	SaNameT name;
	int i;

	times[0] = now + SA_TIME_ONE_SECOND;
	times[1] = (SaTimeT)SA_TIME_END;
	times[2] = now + 3600 * SA_TIME_ONE_SECOND;
	times[3] = (SaTimeT)SA_TIME_END;
	if (init(&h, &callbacks))
		return 1;
	set_name(&name, "ret");
	EXPECT(saCkptCheckpointOpen(h, &name, &ret,
		SA_CKPT_CHECKPOINT_CREATE | SA_CKPT_CHECKPOINT_WRITE, 0, &c), SA_AIS_OK,
		"open a checkpoint retained 1 s");
	id = sid("s");
	sattrs.sectionId = &id;
	sattrs.expirationTime = SA_TIME_END;
	EXPECT(saCkptSectionCreate(c, &sattrs, "data", 4), SA_AIS_OK, "its section");
	EXPECT(saCkptCheckpointClose(c), SA_AIS_OK, "closed by all: retention runs");

	set_name(&name, "exp");
	EXPECT(saCkptCheckpointOpen(h, &name, &exp,
		SA_CKPT_CHECKPOINT_CREATE | SA_CKPT_CHECKPOINT_WRITE, 0, &c), SA_AIS_OK,
		"open a checkpoint with expiring sections");
	for (i = 0; i < 4; i++) {
		id = sid(ids[i]);
		sattrs.sectionId = &id;
		sattrs.expirationTime = times[i];
		EXPECT(saCkptSectionCreate(c, &sattrs, ids[i], 4), SA_AIS_OK, "section create");
	}
	id = sid("reset");
	EXPECT(saCkptSectionExpirationTimeSet(c, &id, now + SA_TIME_ONE_SECOND), SA_AIS_OK,
		"expiration set to 1 s from now");
	EXPECT_ONCE(saCkptFinalize(h), SA_AIS_OK, "finalize (retention END keeps it)");
	return 0;
}

static int expired(int unlink)
{
	SaCkptHandleT h;
	SaCkptCheckpointHandleT c;
	SaCkptCheckpointDescriptorT st;
	SaNameT name;
	unsigned char *data;
	SaSizeT size;

	if (init(&h, &callbacks))
		return 1;
	set_name(&name, "ret");
	EXPECT(saCkptCheckpointOpen(h, &name, NULL, SA_CKPT_CHECKPOINT_READ, 0, &c),
		SA_AIS_ERR_NOT_EXIST, "the retained checkpoint expired");
	set_name(&name, "exp");
	EXPECT(saCkptCheckpointOpen(h, &name, NULL, SA_CKPT_CHECKPOINT_READ, 0, &c), SA_AIS_OK,
		"open the checkpoint with expiring sections");
	data = read_all(c, "soon", &size);
	CHECK(data == NULL && last == SA_AIS_ERR_NOT_EXIST, "section soon expired");
	data = read_all(c, "reset", &size);
	CHECK(data == NULL && last == SA_AIS_ERR_NOT_EXIST, "section reset expired");
	data = read_all(c, "later", &size);
	CHECK(data != NULL && size == 4 && !memcmp(data, "late", 4), "section later is there");
	free(data);
	data = read_all(c, "never", &size);
	CHECK(data != NULL && size == 4 && !memcmp(data, "neve", 4), "section never is there");
	free(data);
	EXPECT(saCkptCheckpointStatusGet(c, &st), SA_AIS_OK, "status");
	CHECK(st.numberOfSections == 2 && st.memoryUsed == 8, "2 sections left, 8 bytes");
	if (unlink)
		EXPECT(saCkptCheckpointUnlink(h, &name), SA_AIS_OK, "unlink it");
	EXPECT_ONCE(saCkptFinalize(h), SA_AIS_OK, "finalize");
	return 0;
}

/* ---- writer / reader -------------------------------------------------------- */

#define REPL_SECTIONS 16
#define REPL_SIZE 4096

static SaCkptCheckpointCreationAttributesT repl_attrs = {
	SA_CKPT_WR_ALL_REPLICAS, 131072, SA_TIME_END, 32, 8192, 16
};

/* What section k of P-repl holds at byte i. */
static unsigned char repl_byte(int k, long i)
{
	if (k == REPL_SECTIONS - 1)
		return pattern(i, 99);
	if (i >= 1000 && i < 1064)
		return pattern(i - 1000, k + 50);
	return pattern(i, k);
}

static long repl_size(int k)
{
	return k == REPL_SECTIONS - 1 ? 2000 : REPL_SIZE;
}

static int writer(void)
{
	SaCkptHandleT h;
	SaCkptCheckpointHandleT c, c2 = 5;
	SaCkptSectionCreationAttributesT sattrs;
	SaCkptSectionIdT id;
	SaCkptIOVectorElementT v[REPL_SECTIONS - 1];
	SaCkptCheckpointDescriptorT st;
	SaCkptSectionIterationHandleT it = 5;
	char ids[REPL_SECTIONS][8];
	unsigned char data[REPL_SIZE], patch[REPL_SECTIONS][64];
	SaUint32T idx = 77;
	SaNameT name;
	char line[16];
	int k;

	if (init(&h, &callbacks))
		return 1;
	set_name(&name, "repl");
	EXPECT(saCkptCheckpointOpen(h, &name, &repl_attrs,
		SA_CKPT_CHECKPOINT_CREATE | SA_CKPT_CHECKPOINT_READ | SA_CKPT_CHECKPOINT_WRITE,
		0, &c), SA_AIS_OK, "create the replicated checkpoint");
	for (k = 0; k < REPL_SECTIONS; k++) {
		snprintf(ids[k], sizeof(ids[k]), "r-%02d", k);
		id = sid(ids[k]);
		sattrs.sectionId = &id;
		sattrs.expirationTime = SA_TIME_END;
		fill(data, REPL_SIZE, k);
		RETRYING(saCkptSectionCreate(c, &sattrs, data, REPL_SIZE));
		if (last != SA_AIS_OK) {
			printf("FAIL create %s: %d\n", ids[k], (int)last);
			return 1;
		}
	}
	printf("ok %d sections of %d bytes\n", REPL_SECTIONS, REPL_SIZE);
	memset(v, 0, sizeof(v));
	for (k = 0; k < REPL_SECTIONS - 1; k++) {
		fill(patch[k], 64, k + 50);
		v[k].sectionId = sid(ids[k]);
		v[k].dataBuffer = patch[k];
		v[k].dataSize = 64;
		v[k].dataOffset = 1000;
	}
	EXPECT(saCkptCheckpointWrite(c, v, REPL_SECTIONS - 1, &idx), SA_AIS_OK,
		"one write across 15 sections");
	fill(data, 2000, 99);
	id = sid(ids[REPL_SECTIONS - 1]);
	EXPECT(saCkptSectionOverwrite(c, &id, data, 2000), SA_AIS_OK, "overwrite the last one");
	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	/* The executive was killed meanwhile. */
	EXPECT_ONCE(saCkptCheckpointWrite(c, v, 1, &idx), SA_AIS_ERR_LIBRARY,
		"write after the executive died");
	EXPECT_ONCE(saCkptCheckpointRead(c, v, 1, &idx), SA_AIS_ERR_LIBRARY, "read");
	EXPECT_ONCE(saCkptCheckpointStatusGet(c, &st), SA_AIS_ERR_LIBRARY, "status");
	EXPECT_ONCE(saCkptSectionCreate(c, &sattrs, "x", 1), SA_AIS_ERR_LIBRARY, "section create");
	EXPECT_ONCE(saCkptSectionIterationInitialize(c, SA_CKPT_SECTIONS_ANY, 0, &it),
		SA_AIS_ERR_LIBRARY, "iteration initialize");
	EXPECT_ONCE(saCkptCheckpointOpen(h, &name, NULL, SA_CKPT_CHECKPOINT_READ, 0, &c2),
		SA_AIS_ERR_LIBRARY, "open");
	EXPECT_ONCE(saCkptCheckpointClose(c), SA_AIS_ERR_LIBRARY, "close");
	EXPECT_ONCE(saCkptDispatch(h, SA_DISPATCH_ALL), SA_AIS_ERR_LIBRARY, "dispatch");
	CHECK(c2 == 5 && it == 5, "no output written");
	EXPECT_ONCE(saCkptFinalize(h), SA_AIS_OK, "finalize a broken handle");
	EXPECT_ONCE(saCkptCheckpointClose(c), SA_AIS_ERR_BAD_HANDLE, "its checkpoint is gone");
	return 0;
}

static int reader(void)
{
	SaCkptHandleT h;
	SaCkptCheckpointHandleT c;
	SaCkptIOVectorElementT v[REPL_SECTIONS];
	SaCkptCheckpointDescriptorT st;
	SaCkptSectionIterationHandleT it;
	SaCkptSectionDescriptorT d;
	static unsigned char bufs[REPL_SECTIONS][REPL_SIZE + 16];
	char ids[REPL_SECTIONS][8];
	SaUint32T idx = 77;
	SaNameT name;
	int k, n = 0, ok = 1;
	long i;

	if (init(&h, &callbacks))
		return 1;
	set_name(&name, "repl");
	EXPECT(saCkptCheckpointOpen(h, &name, NULL, SA_CKPT_CHECKPOINT_READ, 0, &c), SA_AIS_OK,
		"open the replicated checkpoint");
	memset(v, 0, sizeof(v));
	for (k = 0; k < REPL_SECTIONS; k++) {
		snprintf(ids[k], sizeof(ids[k]), "r-%02d", k);
		v[k].sectionId = sid(ids[k]);
		v[k].dataBuffer = bufs[k];
		v[k].dataSize = sizeof(bufs[k]);
	}
	EXPECT(saCkptCheckpointRead(c, v, REPL_SECTIONS, &idx), SA_AIS_OK,
		"read every section in one call");
	for (k = 0; k < REPL_SECTIONS; k++) {
		ok = ok && (long)v[k].readSize == repl_size(k);
		for (i = 0; ok && i < repl_size(k); i++)
			ok = bufs[k][i] == repl_byte(k, i);
	}
	CHECK(ok, "every byte as the writer wrote it");
	EXPECT(saCkptCheckpointStatusGet(c, &st), SA_AIS_OK, "status");
	CHECK(st.numberOfSections == REPL_SECTIONS
		&& st.memoryUsed == (REPL_SECTIONS - 1) * REPL_SIZE + 2000,
		"16 sections, their bytes");
	CHECK(same_attrs(&st.checkpointCreationAttributes, &repl_attrs),
		"the creation attributes");
	EXPECT(saCkptSectionIterationInitialize(c, SA_CKPT_SECTIONS_FOREVER, 0, &it), SA_AIS_OK,
		"iterate");
	for (;;) {
		RETRYING(saCkptSectionIterationNext(it, &d));
		if (last != SA_AIS_OK)
			break;
		n++;
	}
	CHECK(last == SA_AIS_ERR_NO_SECTIONS && n == REPL_SECTIONS, "16 sections iterated");
	EXPECT(saCkptSectionIterationFinalize(it), SA_AIS_OK, "iteration finalize");
	EXPECT_ONCE(saCkptFinalize(h), SA_AIS_OK, "finalize");
	return 0;
}

/* ---- rollback -------------------------------------------------------------- */

#define RB_BIG 900000

static SaCkptCheckpointCreationAttributesT rb_attrs = {
	SA_CKPT_WR_ALL_REPLICAS, 3 << 20, SA_TIME_END, 3, 1 << 20, 8
};

static int rollback(void)
{
	static const char *ids[3] = { "A", "B", "C" };
	static const char *init_data[3] = { "init-A", "init-B", "init-C" };
	SaCkptHandleT h;
	SaCkptCheckpointHandleT c;
	SaCkptSectionCreationAttributesT sattrs;
	SaCkptSectionIdT id;
	SaCkptIOVectorElementT w;
	SaCkptCheckpointDescriptorT st;
	SaUint32T idx = 77;
	unsigned char *big, *data;
	SaSizeT size = 0;
	SaNameT name;
	int k;

	if (init(&h, &callbacks))
		return 1;
	set_name(&name, "rb");
	EXPECT(saCkptCheckpointOpen(h, &name, &rb_attrs,
		SA_CKPT_CHECKPOINT_CREATE | SA_CKPT_CHECKPOINT_READ | SA_CKPT_CHECKPOINT_WRITE,
		0, &c), SA_AIS_OK, "create the rollback checkpoint");
	for (k = 0; k < 3; k++) {
		id = sid(ids[k]);
		sattrs.sectionId = &id;
		sattrs.expirationTime = SA_TIME_END;
		EXPECT(saCkptSectionCreate(c, &sattrs, init_data[k], 6), SA_AIS_OK, "section create");
	}
	big = malloc(RB_BIG);
	memset(&w, 0, sizeof(w));
	w.dataBuffer = big;
	w.dataSize = RB_BIG;
	for (k = 0; k < 2; k++) {
		fill(big, RB_BIG, k + 10);
		w.sectionId = sid(ids[k]);
		EXPECT(saCkptCheckpointWrite(c, &w, 1, &idx), SA_AIS_OK,
			"900 000 bytes: every replica has room");
	}
	fill(big, RB_BIG, 12);
	w.sectionId = sid("C");
	EXPECT(saCkptCheckpointWrite(c, &w, 1, &idx), SA_AIS_ERR_NO_MEMORY,
		"900 000 more: one replica is over its memory limit");
	id = sid("C");
	EXPECT(saCkptSectionOverwrite(c, &id, big, RB_BIG), SA_AIS_ERR_NO_MEMORY,
		"an overwrite as large: the same");
	free(big);
	data = read_all(c, "C", &size);
	CHECK(data != NULL && size == 6 && !memcmp(data, "init-C", 6),
		"section C as it was: the write was rolled back");
	free(data);
	EXPECT(saCkptCheckpointStatusGet(c, &st), SA_AIS_OK, "status");
	CHECK(st.memoryUsed == 2 * RB_BIG + 6, "memory used: A and B written, C not");
	w.dataBuffer = "tiny";
	w.dataSize = 4;
	EXPECT(saCkptCheckpointWrite(c, &w, 1, &idx), SA_AIS_OK,
		"a write that fits everywhere still works");
	EXPECT_ONCE(saCkptFinalize(h), SA_AIS_OK, "finalize (retention END keeps it)");
	return 0;
}

static int rollback_check(int unlink)
{
	SaCkptHandleT h;
	SaCkptCheckpointHandleT c;
	SaCkptCheckpointDescriptorT st;
	unsigned char *data;
	SaSizeT size = 0;
	SaNameT name;
	int k;

	if (init(&h, &callbacks))
		return 1;
	set_name(&name, "rb");
	EXPECT(saCkptCheckpointOpen(h, &name, NULL, SA_CKPT_CHECKPOINT_READ, 0, &c), SA_AIS_OK,
		"open the rollback checkpoint");
	for (k = 0; k < 2; k++) {
		data = read_all(c, k == 0 ? "A" : "B", &size);
		CHECK(data != NULL && size == RB_BIG && same(data, RB_BIG, k + 10),
			"A and B hold what was written");
		free(data);
	}
	data = read_all(c, "C", &size);
	CHECK(data != NULL && size == 6 && !memcmp(data, "tiny-C", 6),
		"C holds only the write that fitted");
	free(data);
	EXPECT(saCkptCheckpointStatusGet(c, &st), SA_AIS_OK, "status");
	CHECK(st.memoryUsed == 2 * RB_BIG + 6 && st.numberOfSections == 3, "memory used here");
	if (unlink)
		EXPECT(saCkptCheckpointUnlink(h, &name), SA_AIS_OK, "unlink it");
	EXPECT_ONCE(saCkptFinalize(h), SA_AIS_OK, "finalize");
	return 0;
}

int main(int argc, char **argv)
{
	int failed;
	const char *mode = argc > 1 ? argv[1] : "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2)
		prefix = argv[2];
	if (!strcmp(mode, "nodaemon"))
		failed = no_daemon();
	else if (!strcmp(mode, "walk"))
		failed = walk();
	else if (!strcmp(mode, "expiry"))
		failed = expiry();
	else if (!strcmp(mode, "expired"))
		failed = expired(argc > 3 && !strcmp(argv[3], "unlink"));
	else if (!strcmp(mode, "writer"))
		failed = writer();
	else if (!strcmp(mode, "reader"))
		failed = reader();
	else if (!strcmp(mode, "rollback"))
		failed = rollback();
	else if (!strcmp(mode, "rollback-check"))
		failed = rollback_check(argc > 3 && !strcmp(argv[3], "unlink"));
	else {
		fprintf(stderr, "usage: ckpt_api nodaemon|walk|expiry|expired|writer|reader|"
			"rollback|rollback-check [PREFIX [unlink]]\n");
		return 2;
	}
	if (failed)
		return 1;
	printf("all passed\n");
	return 0;
}
