/*
 * saCkpt.h - SA Forum Checkpoint Service (AIS B.01.01), as served by
 * libais.so.
 *
 * Written for this project from the specification's definitions; names,
 * values and layouts are the specification's, so that programs written for
 * openais 0.80 (testckpt, ckptstress, ckptbench, ...) compile unchanged.
 * Unlike openais's, this header includes saAis.h itself.
 */
#ifndef AIS_SACKPT_H_DEFINED
#define AIS_SACKPT_H_DEFINED

#include "saAis.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef SaUint64T SaCkptHandleT;
typedef SaUint64T SaCkptCheckpointHandleT;
typedef SaUint64T SaCkptSectionIterationHandleT;

/* Creation flags: exactly one of the three WR_ modes, maybe COLLOCATED. */
#define SA_CKPT_WR_ALL_REPLICAS        0x1
#define SA_CKPT_WR_ACTIVE_REPLICA      0x2
#define SA_CKPT_WR_ACTIVE_REPLICA_WEAK 0x4
#define SA_CKPT_CHECKPOINT_COLLOCATED  0x8

typedef SaUint32T SaCkptCheckpointCreationFlagsT;

typedef struct {
	SaCkptCheckpointCreationFlagsT creationFlags;
	SaSizeT checkpointSize;
	SaTimeT retentionDuration;
	SaUint32T maxSections;
	SaSizeT maxSectionSize;
	SaSizeT maxSectionIdSize;
} SaCkptCheckpointCreationAttributesT;

/* Open flags. */
#define SA_CKPT_CHECKPOINT_READ   0x1
#define SA_CKPT_CHECKPOINT_WRITE  0x2
#define SA_CKPT_CHECKPOINT_CREATE 0x4

typedef SaUint32T SaCkptCheckpointOpenFlagsT;

/*
 * Initialisers of an SaCkptSectionIdT: idLen 0, id NULL. As an I/O vector
 * element's or a call's section id it names the default section (of a
 * checkpoint with maxSections 1); given to saCkptSectionCreate it asks the
 * service to generate an id, written back into the caller's
 * SaCkptSectionIdT in memory from malloc() (free it with free()).
 */
#define SA_CKPT_DEFAULT_SECTION_ID   { 0, 0 }
#define SA_CKPT_GENERATED_SECTION_ID { 0, 0 }

typedef struct {
	SaUint16T idLen;
	SaUint8T *id;
} SaCkptSectionIdT;

typedef struct {
	SaCkptSectionIdT *sectionId;
	SaTimeT expirationTime;
} SaCkptSectionCreationAttributesT;

typedef enum {
	SA_CKPT_SECTION_VALID = 1,
	SA_CKPT_SECTION_CORRUPTED = 2
} SaCkptSectionStateT;

/*
 * A section, as saCkptSectionIterationNext returns it. The id's memory
 * belongs to the library (NUL-terminated after idLen bytes) and stays
 * valid until saCkptSectionIterationFinalize.
 */
typedef struct {
	SaCkptSectionIdT sectionId;
	SaTimeT expirationTime;
	SaSizeT sectionSize;
	SaCkptSectionStateT sectionState;
	SaTimeT lastUpdate;
} SaCkptSectionDescriptorT;

typedef enum {
	SA_CKPT_SECTIONS_FOREVER = 1,
	SA_CKPT_SECTIONS_LEQ_EXPIRATION_TIME = 2,
	SA_CKPT_SECTIONS_GEQ_EXPIRATION_TIME = 3,
	SA_CKPT_SECTIONS_CORRUPTED = 4,
	SA_CKPT_SECTIONS_ANY = 5
} SaCkptSectionsChosenT;

typedef SaUint64T SaOffsetT;

/*
 * One element of a write or read vector. saCkptCheckpointRead with a NULL
 * dataBuffer reads up to the section's end (dataSize ignored) into memory
 * from malloc() that it stores in dataBuffer (free it with free()).
 */
typedef struct {
	SaCkptSectionIdT sectionId;
	void *dataBuffer;
	SaSizeT dataSize;
	SaOffsetT dataOffset;
	SaSizeT readSize;
} SaCkptIOVectorElementT;

typedef struct {
	SaCkptCheckpointCreationAttributesT checkpointCreationAttributes;
	SaUint32T numberOfSections;
	SaUint32T memoryUsed;
} SaCkptCheckpointDescriptorT;

typedef void (*SaCkptCheckpointOpenCallbackT)(
	SaInvocationT invocation,
	const SaCkptCheckpointHandleT checkpointHandle,
	SaAisErrorT error);

typedef void (*SaCkptCheckpointSynchronizeCallbackT)(
	SaInvocationT invocation,
	SaAisErrorT error);

typedef struct {
	SaCkptCheckpointOpenCallbackT saCkptCheckpointOpenCallback;
	SaCkptCheckpointSynchronizeCallbackT saCkptCheckpointSynchronizeCallback;
} SaCkptCallbacksT;

SaAisErrorT saCkptInitialize(
	SaCkptHandleT *ckptHandle,
	const SaCkptCallbacksT *callbacks,
	SaVersionT *version);

SaAisErrorT saCkptSelectionObjectGet(
	SaCkptHandleT ckptHandle,
	SaSelectionObjectT *selectionObject);

SaAisErrorT saCkptDispatch(
	SaCkptHandleT ckptHandle,
	SaDispatchFlagsT dispatchFlags);

SaAisErrorT saCkptFinalize(
	SaCkptHandleT ckptHandle);

SaAisErrorT saCkptCheckpointOpen(
	SaCkptHandleT ckptHandle,
	const SaNameT *checkpointName,
	const SaCkptCheckpointCreationAttributesT *checkpointCreationAttributes,
	SaCkptCheckpointOpenFlagsT checkpointOpenFlags,
	SaTimeT timeout,
	SaCkptCheckpointHandleT *checkpointHandle);

SaAisErrorT saCkptCheckpointOpenAsync(
	SaCkptHandleT ckptHandle,
	SaInvocationT invocation,
	const SaNameT *checkpointName,
	const SaCkptCheckpointCreationAttributesT *checkpointCreationAttributes,
	SaCkptCheckpointOpenFlagsT checkpointOpenFlags);

SaAisErrorT saCkptCheckpointClose(
	SaCkptCheckpointHandleT checkpointHandle);

SaAisErrorT saCkptCheckpointUnlink(
	SaCkptHandleT ckptHandle,
	const SaNameT *checkpointName);

SaAisErrorT saCkptCheckpointRetentionDurationSet(
	SaCkptCheckpointHandleT checkpointHandle,
	SaTimeT retentionDuration);

SaAisErrorT saCkptActiveReplicaSet(
	const SaCkptCheckpointHandleT checkpointHandle);

SaAisErrorT saCkptCheckpointStatusGet(
	SaCkptCheckpointHandleT checkpointHandle,
	SaCkptCheckpointDescriptorT *checkpointStatus);

SaAisErrorT saCkptSectionCreate(
	SaCkptCheckpointHandleT checkpointHandle,
	SaCkptSectionCreationAttributesT *sectionCreationAttributes,
	const void *initialData,
	SaSizeT initialDataSize);

SaAisErrorT saCkptSectionDelete(
	SaCkptCheckpointHandleT checkpointHandle,
	const SaCkptSectionIdT *sectionId);

SaAisErrorT saCkptSectionExpirationTimeSet(
	SaCkptCheckpointHandleT checkpointHandle,
	const SaCkptSectionIdT *sectionId,
	SaTimeT expirationTime);

SaAisErrorT saCkptSectionIterationInitialize(
	const SaCkptCheckpointHandleT checkpointHandle,
	SaCkptSectionsChosenT sectionsChosen,
	SaTimeT expirationTime,
	SaCkptSectionIterationHandleT *sectionIterationHandle);

SaAisErrorT saCkptSectionIterationNext(
	SaCkptSectionIterationHandleT sectionIterationHandle,
	SaCkptSectionDescriptorT *sectionDescriptor);

SaAisErrorT saCkptSectionIterationFinalize(
	SaCkptSectionIterationHandleT sectionIterationHandle);

SaAisErrorT saCkptCheckpointWrite(
	SaCkptCheckpointHandleT checkpointHandle,
	const SaCkptIOVectorElementT *ioVector,
	SaUint32T numberOfElements,
	SaUint32T *erroneousVectorIndex);

SaAisErrorT saCkptSectionOverwrite(
	SaCkptCheckpointHandleT checkpointHandle,
	const SaCkptSectionIdT *sectionId,
	const void *dataBuffer,
	SaSizeT dataSize);

SaAisErrorT saCkptCheckpointRead(
	SaCkptCheckpointHandleT checkpointHandle,
	SaCkptIOVectorElementT *ioVector,
	SaUint32T numberOfElements,
	SaUint32T *erroneousVectorIndex);

SaAisErrorT saCkptCheckpointSynchronize(
	SaCkptCheckpointHandleT checkpointHandle,
	SaTimeT timeout);

SaAisErrorT saCkptCheckpointSynchronizeAsync(
	SaCkptCheckpointHandleT checkpointHandle,
	SaInvocationT invocation);

#ifdef __cplusplus
}
#endif

#endif /* AIS_SACKPT_H_DEFINED */
