/* Katib's kubeflow.org/v1beta1 kinds (api/katib.c): what the controller shares with the
 * API's defaults. */
#ifndef TY_API_KATIB_H
#define TY_API_KATIB_H

#include <jansson.h>
#include <stdbool.h>

#define TY_KATIB_API_VERSION "kubeflow.org/v1beta1"

/* A trial job's kind ("Job", "PyTorchJob", "TFJob"); "" when it has none. */
const char *ty_katib_job_kind(const json_t *job);
/* Katib's default successCondition (success) or failureCondition for a job kind. */
const char *ty_katib_default_condition(const char *job_kind, bool success);

#endif
