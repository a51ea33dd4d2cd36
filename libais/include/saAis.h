/*
 * saAis.h - SA Forum AIS common types (Application Interface Specification
 * B.01.01), as served by libais.so.
 *
 * Written for this project from the specification's definitions; the
 * names, values and layouts are the specification's, so that programs
 * written for openais 0.80 compile unchanged.
 */
#ifndef AIS_SAAIS_H_DEFINED
#define AIS_SAAIS_H_DEFINED

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
	SA_FALSE = 0,
	SA_TRUE = 1
} SaBoolT;

typedef int8_t SaInt8T;
typedef int16_t SaInt16T;
typedef int32_t SaInt32T;
typedef int64_t SaInt64T;
typedef uint8_t SaUint8T;
typedef uint16_t SaUint16T;
typedef uint32_t SaUint32T;
typedef uint64_t SaUint64T;
typedef float SaFloatT;
typedef double SaDoubleT;
typedef char *SaStringT;

/* Durations and absolute times (since the Unix epoch), in nanoseconds. */
typedef SaInt64T SaTimeT;

#define SA_TIME_END              0x7FFFFFFFFFFFFFFFULL
#define SA_TIME_BEGIN            0x0ULL
#define SA_TIME_UNKNOWN          0x8000000000000000ULL

#define SA_TIME_ONE_MICROSECOND  1000ULL
#define SA_TIME_ONE_MILLISECOND  1000000ULL
#define SA_TIME_ONE_SECOND       1000000000ULL
#define SA_TIME_ONE_MINUTE       60000000000ULL
#define SA_TIME_ONE_HOUR         3600000000000ULL
#define SA_TIME_ONE_DAY          86400000000000ULL
#define SA_TIME_MAX              SA_TIME_END

#define SA_MAX_NAME_LENGTH 256

/* A name: `length` bytes of `value`, not NUL-terminated by contract. */
typedef struct {
	SaUint16T length;
	SaUint8T value[SA_MAX_NAME_LENGTH];
} SaNameT;

typedef struct {
	char releaseCode;
	unsigned char majorVersion;
	unsigned char minorVersion;
} SaVersionT;

typedef SaUint64T SaNtfIdentifierT;

#define SA_TRACK_CURRENT      0x01
#define SA_TRACK_CHANGES      0x02
#define SA_TRACK_CHANGES_ONLY 0x04

/*
 * In libais, as in openais 0.80: SA_DISPATCH_ALL invokes every callback
 * pending now and returns; SA_DISPATCH_ONE waits for one callback, invokes
 * it and returns; SA_DISPATCH_BLOCKING invokes callbacks until the handle
 * is finalized (from any thread, or from a callback), then returns SA_AIS_OK.
 */
typedef enum {
	SA_DISPATCH_ONE = 1,
	SA_DISPATCH_ALL = 2,
	SA_DISPATCH_BLOCKING = 3
} SaDispatchFlagsT;

typedef SaUint64T SaSelectionObjectT;
typedef SaUint64T SaInvocationT;
typedef SaUint64T SaSizeT;

#define SA_HANDLE_INVALID 0

typedef enum {
	SA_AIS_OK = 1,
	SA_AIS_ERR_LIBRARY = 2,
	SA_AIS_ERR_VERSION = 3,
	SA_AIS_ERR_INIT = 4,
	SA_AIS_ERR_TIMEOUT = 5,
	SA_AIS_ERR_TRY_AGAIN = 6,
	SA_AIS_ERR_INVALID_PARAM = 7,
	SA_AIS_ERR_NO_MEMORY = 8,
	SA_AIS_ERR_BAD_HANDLE = 9,
	SA_AIS_ERR_BUSY = 10,
	SA_AIS_ERR_ACCESS = 11,
	SA_AIS_ERR_NOT_EXIST = 12,
	SA_AIS_ERR_NAME_TOO_LONG = 13,
	SA_AIS_ERR_EXIST = 14,
	SA_AIS_ERR_NO_SPACE = 15,
	SA_AIS_ERR_INTERRUPT = 16,
	SA_AIS_ERR_NAME_NOT_FOUND = 17,
	SA_AIS_ERR_NO_RESOURCES = 18,
	SA_AIS_ERR_NOT_SUPPORTED = 19,
	SA_AIS_ERR_BAD_OPERATION = 20,
	SA_AIS_ERR_FAILED_OPERATION = 21,
	SA_AIS_ERR_MESSAGE_ERROR = 22,
	SA_AIS_ERR_QUEUE_FULL = 23,
	SA_AIS_ERR_QUEUE_NOT_AVAILABLE = 24,
	SA_AIS_ERR_BAD_FLAGS = 25,
	SA_AIS_ERR_TOO_BIG = 26,
	SA_AIS_ERR_NO_SECTIONS = 27,
	/* Not in the specification; openais 0.80 had it. libais never returns it. */
	SA_AIS_ERR_SECURITY = 29
} SaAisErrorT;

#ifdef __cplusplus
}
#endif

#endif /* AIS_SAAIS_H_DEFINED */
