/* serving.kserve.io (KServe) names shared by the API's rules, the serving controller and the
 * gateway: labels, condition types, the model's mount point. The kinds' schemas, defaults and
 * webhook rules are api/serving.c's (through the registry). */
#ifndef TY_API_SERVING_H
#define TY_API_SERVING_H

/* The model container's name when the InferenceService gives none (KServe's default). */
#define TY_SERVING_CONTAINER "kserve-container"
/* Where the storage initializer's model appears in the container, read-only. */
#define TY_SERVING_MODEL_DIR "/mnt/models"

/* The labels KServe puts on a component's pods. */
#define TY_SERVING_LABEL_ISVC "serving.kserve.io/inferenceservice"
#define TY_SERVING_LABEL_COMPONENT "component"
#define TY_SERVING_LABEL_REVISION "serving.knative.dev/revision"

#endif
