/* batch/v1 Job names the API server, the job controller and Kueue's job side share: its
 * labels, annotations and modes, as Kubernetes spells them (k8s.io/api/batch/v1). */
#ifndef TY_API_BATCH_H
#define TY_API_BATCH_H

#include <jansson.h>
#include <stddef.h>

#define TY_BATCH_API_VERSION "batch/v1"
#define TY_BATCH_LABEL_JOB_NAME "batch.kubernetes.io/job-name"
#define TY_BATCH_LABEL_LEGACY_JOB_NAME "job-name"
#define TY_BATCH_LABEL_CONTROLLER_UID "batch.kubernetes.io/controller-uid"
#define TY_BATCH_LABEL_LEGACY_CONTROLLER_UID "controller-uid"
/* An Indexed job's pods carry their index as this annotation and label (and the env
 * JOB_COMPLETION_INDEX). */
#define TY_BATCH_COMPLETION_INDEX "batch.kubernetes.io/job-completion-index"
/* With backoffLimitPerIndex: how many pods of this index failed before this one. */
#define TY_BATCH_INDEX_FAILURE_COUNT "batch.kubernetes.io/job-index-failure-count"
#define TY_BATCH_NON_INDEXED "NonIndexed"
#define TY_BATCH_INDEXED "Indexed"
#define TY_BATCH_MAX_INDEXED 100000
#define TY_BATCH_MAX_POD_FAILURE_RULES 20

/* "0-2,4,6-7" of the sorted, distinct indexes (the form of completedIndexes, failedIndexes and
 * successPolicy's succeededIndexes); caller frees. */
char *ty_batch_format_indexes(const long *idx, size_t n);
/* The indexes in `text` ("0-2,5") below `limit`, appended to *idx (a realloc'd array of *n, the
 * caller frees it); returns -1 on a malformed text. */
int ty_batch_parse_indexes(const char *text, long limit, long **idx, size_t *n);

/* The API server's create defaults that need the stored uid (the Job strategy's
 * PrepareForCreate), and an empty status: without manualSelector, the selector
 * {batch.kubernetes.io/controller-uid: <uid>} and the job-name and controller-uid labels
 * (both spellings) on the template. The store calls it (the kind's create_defaults). */
void ty_batch_job_create_defaults(json_t *job);

#endif
