/*
 * backup_api - ais_backup.h against real executives.
 *
 *   backup_api nodaemon         AIS_SOCKET names no running executive:
 *                               versions, NULL pointers, TRY_AGAIN, and every
 *                               function with bad handles
 *   backup_api run DEST P       on a running cluster: creates checkpoints
 *                               P-one, P-two, P-three; backs up every
 *                               checkpoint into DEST (completion callback,
 *                               status, list); verifies the backup; restore
 *                               refused over existing checkpoints, then with
 *                               overwrite after P-two was unlinked, and the
 *                               data read back; a flipped byte and a
 *                               truncated data file found by verify and
 *                               refused by restore
 *
 * Prints "ok <check>" per check and "all passed" at the end, or
 * "FAIL <check>: got X want Y" on the first failure (exit status 1). Calls
 * answered SA_AIS_ERR_TRY_AGAIN are retried for up to 20 s. Everything the
 * library hands out is freed, so that valgrind finds no leak.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "saAis.h"
#include "saCkpt.h"
#include "ais_backup.h"

static SaAisErrorT last;

static void pause_ms(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

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

#define CHECK(cond, what) do { \
	if (!(cond)) { printf("FAIL %s (line %d)\n", what, __LINE__); return 1; } \
	printf("ok %s\n", what); \
} while (0)

static const char *prefix = "b";

static void set_name(SaNameT *n, const char *suffix)
{
	int len = snprintf((char *)n->value, sizeof(n->value), "%s-%s", prefix, suffix);
	n->length = (SaUint16T)len;
}

static unsigned char pattern(long i, int seed)
{
	return (unsigned char)(i * 13 + seed * 29 + (i >> 9));
}

/* ---- the completion callback ---------------------------------------------- */

static int completions;
static SaInvocationT completed_invocation;
static SaAisErrorT completed_error;
static AisBackupPhaseT completed_phase;
static SaUint32T completed_total;
static SaUint32T completed_failed;
static char completed_directory[AIS_BACKUP_MAX_PATH_LENGTH + 1];

static void on_complete(SaInvocationT invocation, SaAisErrorT error,
	const AisBackupStatusT *status)
{
	completions++;
	completed_invocation = invocation;
	completed_error = error;
	completed_phase = status->phase;
	completed_total = status->checkpointsTotal;
	completed_failed = status->numberOfFailed;
	snprintf(completed_directory, sizeof(completed_directory), "%s", status->directory);
}

/* ---- nodaemon -------------------------------------------------------------- */

static int bad_handle(AisBackupHandleT bad, const char *which)
{
	SaSelectionObjectT sel;
	AisBackupIdT id;
	AisBackupStatusT st;
	AisBackupStatusT *jobs;
	SaUint32T n;
	AisBackupVerifyReportT vr;
	char what[128];

#define BAD(call, name) do { \
	snprintf(what, sizeof(what), "%s with %s handle", name, which); \
	EXPECT(call, SA_AIS_ERR_BAD_HANDLE, what); \
} while (0)
	BAD(aisBackupSelectionObjectGet(bad, &sel), "aisBackupSelectionObjectGet");
	BAD(aisBackupDispatch(bad, SA_DISPATCH_ALL), "aisBackupDispatch");
	BAD(aisBackupFinalize(bad), "aisBackupFinalize");
	BAD(aisBackupStart(bad, 1, "/tmp", NULL, 0, &id), "aisBackupStart");
	BAD(aisBackupStatusGet(bad, 1, &st), "aisBackupStatusGet");
	BAD(aisBackupListGet(bad, &jobs, &n), "aisBackupListGet");
	BAD(aisBackupVerify(bad, "/tmp", &vr), "aisBackupVerify");
	BAD(aisBackupRestore(bad, "/tmp", SA_FALSE, NULL), "aisBackupRestore");
#undef BAD
	return 0;
}

static int nodaemon(void)
{
	AisBackupHandleT h = 77;
	SaVersionT v = { 'B', 1, 1 };
	SaVersionT wrong = { 'C', 1, 1 };

	EXPECT(aisBackupInitialize(&h, NULL, NULL), SA_AIS_ERR_INVALID_PARAM, "NULL version");
	last = aisBackupInitialize(&h, NULL, &wrong);
	CHECK(last == SA_AIS_ERR_VERSION, "version C refused");
	CHECK(wrong.releaseCode == 'B' && wrong.majorVersion == 1 && wrong.minorVersion == 1,
		"supported version written back");
	last = aisBackupInitialize(NULL, NULL, &v);
	CHECK(last == SA_AIS_ERR_INVALID_PARAM, "NULL handle");
	last = aisBackupInitialize(&h, NULL, &v);
	CHECK(last == SA_AIS_ERR_TRY_AGAIN, "no executive: TRY_AGAIN");
	CHECK(h == 77, "no handle written on failure");
	aisBackupStatusFree(NULL);
	aisBackupListFree(NULL, 3);
	aisBackupVerifyReportFree(NULL);
	printf("ok the free functions take NULL\n");
	if (bad_handle(0, "SA_HANDLE_INVALID") || bad_handle(0x5eed5eed5eedULL, "garbage"))
		return 1;
	printf("all passed\n");
	return 0;
}

/* ---- run ------------------------------------------------------------------- */

static SaCkptCheckpointCreationAttributesT attrs = {
	SA_CKPT_WR_ALL_REPLICAS, 1000000, 3600 * SA_TIME_ONE_SECOND, 8, 200000, 16
};

/* Section s<k> of checkpoint `suffix` holds 1000 * (k + 1) + seed bytes. */
static int make_checkpoint(SaCkptHandleT h, const char *suffix, int seed,
	SaCkptCheckpointHandleT *c)
{
	SaNameT name;
	unsigned char buf[8000];
	char sec[8];
	int k;
	long i;

	set_name(&name, suffix);
	EXPECT(saCkptCheckpointOpen(h, &name, &attrs,
		SA_CKPT_CHECKPOINT_CREATE | SA_CKPT_CHECKPOINT_READ | SA_CKPT_CHECKPOINT_WRITE,
		10 * SA_TIME_ONE_SECOND, c), SA_AIS_OK, "create a checkpoint");
	for (k = 0; k < 4; k++) {
		SaCkptSectionIdT id;
		SaCkptSectionCreationAttributesT sattrs;
		long n = 1000L * (k + 1) + seed;

		snprintf(sec, sizeof(sec), "s%d", k);
		id.idLen = (SaUint16T)strlen(sec);
		id.id = (SaUint8T *)sec;
		sattrs.sectionId = &id;
		sattrs.expirationTime = SA_TIME_END;
		for (i = 0; i < n; i++)
			buf[i] = pattern(i, seed + k);
		EXPECT(saCkptSectionCreate(*c, &sattrs, buf, (SaSizeT)n), SA_AIS_OK,
			"create a section");
	}
	return 0;
}

/* Whether checkpoint `suffix` holds what make_checkpoint wrote. */
static int holds_pattern(SaCkptHandleT h, const char *suffix, int seed)
{
	SaNameT name;
	SaCkptCheckpointHandleT c;
	unsigned char buf[8000];
	char sec[8];
	int k;
	long i;

	set_name(&name, suffix);
	EXPECT(saCkptCheckpointOpen(h, &name, NULL, SA_CKPT_CHECKPOINT_READ,
		10 * SA_TIME_ONE_SECOND, &c), SA_AIS_OK, "open a restored checkpoint");
	for (k = 0; k < 4; k++) {
		SaCkptIOVectorElementT e;
		SaUint32T idx;
		long n = 1000L * (k + 1) + seed;

		snprintf(sec, sizeof(sec), "s%d", k);
		memset(&e, 0, sizeof(e));
		e.sectionId.idLen = (SaUint16T)strlen(sec);
		e.sectionId.id = (SaUint8T *)sec;
		e.dataBuffer = buf;
		e.dataSize = sizeof(buf);
		EXPECT(saCkptCheckpointRead(c, &e, 1, &idx), SA_AIS_OK, "read a restored section");
		CHECK((long)e.readSize == n, "restored section has its size");
		for (i = 0; i < n; i++)
			if (buf[i] != pattern(i, seed + k))
				break;
		CHECK(i == n, "restored section has its bytes");
	}
	EXPECT(saCkptCheckpointClose(c), SA_AIS_OK, "close the restored checkpoint");
	return 0;
}

/* The path of the first data file of backup directory `name` (its
 * basename, "backup-<id>") that some node wrote under `dest`:
 * dest/node-<n>/<name>/ckpt-<index>.dat. */
static int data_file(const char *dest, const char *name, char *out, size_t cap)
{
	DIR *d = opendir(dest);
	struct dirent *e;
	int found = -1;

	if (!d)
		return -1;
	while (found < 0 && (e = readdir(d)) != NULL) {
		char sub[AIS_BACKUP_MAX_PATH_LENGTH + 64];
		DIR *nd;
		struct dirent *f;

		if (strncmp(e->d_name, "node-", 5) != 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s/%s", dest, e->d_name, name);
		nd = opendir(sub);
		if (!nd)
			continue;
		while ((f = readdir(nd)) != NULL) {
			if (strncmp(f->d_name, "ckpt-", 5) == 0) {
				snprintf(out, cap, "%s/%s", sub, f->d_name);
				found = 0;
				break;
			}
		}
		closedir(nd);
	}
	closedir(d);
	return found;
}

static int run(const char *dest)
{
	SaCkptHandleT ck;
	SaVersionT v = { 'B', 1, 1 };
	SaCkptCheckpointHandleT c1, c2, c3;
	AisBackupHandleT h, nocb;
	AisBackupCallbacksT cb = { on_complete };
	SaSelectionObjectT sel = 0;
	AisBackupIdT id = 0, other;
	AisBackupStatusT st;
	AisBackupStatusT *jobs = NULL;
	SaUint32T njobs = 0, i;
	AisBackupVerifyReportT vr;
	AisBackupRestoreReportT rr;
	SaNameT name;
	char path[AIS_BACKUP_MAX_PATH_LENGTH + 64];
	char dir[AIS_BACKUP_MAX_PATH_LENGTH + 1];
	int found, waited, fd;
	unsigned char byte;

	EXPECT(saCkptInitialize(&ck, NULL, &v), SA_AIS_OK, "saCkptInitialize");
	if (make_checkpoint(ck, "one", 1, &c1) || make_checkpoint(ck, "two", 2, &c2)
		|| make_checkpoint(ck, "three", 3, &c3))
		return 1;

	v.majorVersion = 1;
	EXPECT(aisBackupInitialize(&h, &cb, &v), SA_AIS_OK, "aisBackupInitialize");
	EXPECT(aisBackupSelectionObjectGet(h, &sel), SA_AIS_OK, "aisBackupSelectionObjectGet");
	CHECK(sel > 0, "a selection object");
	EXPECT(aisBackupInitialize(&nocb, NULL, &v), SA_AIS_OK, "initialize without callbacks");
	EXPECT(aisBackupStart(nocb, 1, dest, NULL, 0, &other), SA_AIS_ERR_INIT,
		"start without a completion callback");
	EXPECT(aisBackupFinalize(nocb), SA_AIS_OK, "finalize it");
	EXPECT(aisBackupStart(h, 1, "relative/dir", NULL, 0, &other), SA_AIS_ERR_INVALID_PARAM,
		"relative destination");
	EXPECT(aisBackupStart(h, 1, NULL, NULL, 0, &other), SA_AIS_ERR_INVALID_PARAM,
		"NULL destination");
	EXPECT(aisBackupStart(h, 1, dest, NULL, 2, &other), SA_AIS_ERR_INVALID_PARAM,
		"names count without names");
	EXPECT(aisBackupStart(h, 1, dest, NULL, 0, NULL), SA_AIS_ERR_INVALID_PARAM,
		"NULL backup id");
	EXPECT(aisBackupDispatch(h, 0), SA_AIS_ERR_INVALID_PARAM, "bad dispatch flags");

	EXPECT(aisBackupStart(h, 4242, dest, NULL, 0, &id), SA_AIS_OK, "aisBackupStart");
	for (waited = 0; completions == 0 && waited < 600; waited++) {
		EXPECT(aisBackupDispatch(h, SA_DISPATCH_ALL), SA_AIS_OK, "dispatch while it runs");
		pause_ms(100);
	}
	CHECK(completions == 1, "one completion callback");
	CHECK(completed_invocation == 4242, "the callback carries the invocation");
	CHECK(completed_error == SA_AIS_OK, "the backup succeeded");
	CHECK(completed_phase == AIS_BACKUP_PHASE_DONE, "phase DONE");
	CHECK(completed_total == 3, "three checkpoints in it");
	CHECK(completed_failed == 0, "none failed");
	snprintf(dir, sizeof(dir), "%s", completed_directory);
	CHECK(strncmp(dir, dest, strlen(dest)) == 0, "its directory is under the destination");

	EXPECT(aisBackupStatusGet(h, id, &st), SA_AIS_OK, "aisBackupStatusGet");
	CHECK(st.backupId == id && st.phase == AIS_BACKUP_PHASE_DONE, "status: the job, done");
	CHECK(strcmp(st.directory, dir) == 0, "status: the same directory");
	CHECK(st.checkpointsDone == 3 && st.bytesDone == st.bytesTotal && st.bytesTotal > 0,
		"status: every byte written");
	CHECK(st.reason != NULL && st.reason[0] == '\0', "status: no abort reason");
	aisBackupStatusFree(&st);
	EXPECT(aisBackupStatusGet(h, id ^ 0xffffULL, &st), SA_AIS_ERR_NOT_EXIST,
		"status of an unknown job");
	EXPECT(aisBackupListGet(h, &jobs, &njobs), SA_AIS_OK, "aisBackupListGet");
	for (found = 0, i = 0; i < njobs; i++)
		if (jobs[i].backupId == id)
			found = 1;
	CHECK(found, "the job is listed");
	aisBackupListFree(jobs, njobs);

	EXPECT(aisBackupVerify(h, dir, &vr), SA_AIS_OK, "aisBackupVerify");
	CHECK(vr.backupId == id && vr.numberOfCheckpoints == 3, "verify: the backup's manifest");
	CHECK(vr.numberOfProblems == 0 && vr.filesChecked >= 1, "verify: every file good");
	aisBackupVerifyReportFree(&vr);
	EXPECT(aisBackupVerify(h, dest, &vr), SA_AIS_ERR_NOT_EXIST,
		"verify a directory without a manifest");

	/* Restore: refused over existing checkpoints, then with overwrite. */
	EXPECT(aisBackupRestore(h, dir, SA_FALSE, &rr), SA_AIS_ERR_EXIST,
		"restore over existing checkpoints refused");
	EXPECT(saCkptCheckpointClose(c2), SA_AIS_OK, "close P-two");
	set_name(&name, "two");
	EXPECT(saCkptCheckpointUnlink(ck, &name), SA_AIS_OK, "unlink P-two");
	EXPECT(aisBackupRestore(h, dir, 7, &rr), SA_AIS_ERR_INVALID_PARAM, "bad overwrite flag");
	EXPECT(aisBackupRestore(h, dir, SA_TRUE, &rr), SA_AIS_OK, "restore with overwrite");
	CHECK(rr.backupId == id && rr.checkpointsRestored == 3 && rr.checkpointsReplaced == 2,
		"restore report: 3 restored, 2 replaced");
	if (holds_pattern(ck, "one", 1) || holds_pattern(ck, "two", 2)
		|| holds_pattern(ck, "three", 3))
		return 1;

	/* A flipped byte, then a truncated file. */
	CHECK(strrchr(dir, '/') != NULL, "the backup directory has a name");
	CHECK(data_file(dest, strrchr(dir, '/') + 1, path, sizeof(path)) == 0, "a data file");
	fd = open(path, O_RDWR);
	CHECK(fd >= 0 && pread(fd, &byte, 1, 10) == 1, "read a byte of it");
	byte ^= 0x01;
	CHECK(pwrite(fd, &byte, 1, 10) == 1, "flip it");
	close(fd);
	EXPECT(aisBackupVerify(h, dir, &vr), SA_AIS_ERR_FAILED_OPERATION, "verify finds the flip");
	CHECK(vr.numberOfProblems == 1 && vr.problems[0].problem == AIS_BACKUP_FILE_CRC
		&& vr.problems[0].expected != vr.problems[0].actual,
		"one CRC problem reported");
	CHECK(strstr(path, vr.problems[0].file) != NULL, "naming the flipped file");
	aisBackupVerifyReportFree(&vr);
	EXPECT(aisBackupRestore(h, dir, SA_TRUE, NULL), SA_AIS_ERR_FAILED_OPERATION,
		"restore refuses a backup that does not verify");
	fd = open(path, O_RDWR);
	byte ^= 0x01;
	CHECK(fd >= 0 && pwrite(fd, &byte, 1, 10) == 1, "flip it back");
	CHECK(ftruncate(fd, 5) == 0, "truncate the file");
	close(fd);
	EXPECT(aisBackupVerify(h, dir, &vr), SA_AIS_ERR_FAILED_OPERATION,
		"verify finds the truncation");
	CHECK(vr.numberOfProblems == 1 && vr.problems[0].problem == AIS_BACKUP_FILE_SIZE
		&& vr.problems[0].actual == 5, "one size problem reported");
	aisBackupVerifyReportFree(&vr);

	EXPECT(saCkptCheckpointClose(c1), SA_AIS_OK, "close P-one");
	EXPECT(saCkptCheckpointClose(c3), SA_AIS_OK, "close P-three");
	EXPECT(saCkptFinalize(ck), SA_AIS_OK, "saCkptFinalize");
	EXPECT(aisBackupFinalize(h), SA_AIS_OK, "aisBackupFinalize");
	EXPECT(aisBackupFinalize(h), SA_AIS_ERR_BAD_HANDLE, "finalize twice");
	printf("all passed\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && strcmp(argv[1], "nodaemon") == 0)
		return nodaemon();
	if (argc >= 4 && strcmp(argv[1], "run") == 0) {
		prefix = argv[3];
		return run(argv[2]);
	}
	fprintf(stderr, "usage: backup_api nodaemon | run DEST PREFIX\n");
	return 2;
}
