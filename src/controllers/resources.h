/* What pods ask for and what a node has, in the three resources trainyard schedules. */
#ifndef TY_CONTROLLERS_RESOURCES_H
#define TY_CONTROLLERS_RESOURCES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct ty_resources {
    int64_t cpu_milli;
    int64_t memory_milli; /* bytes x 1000, as ty_quantity holds them */
    int64_t gpus;
} ty_resources;

/* The effective request of a pod spec as the scheduler computes it: the sum over containers
 * of each one's request (its limit when only a limit is given), or the largest init
 * container's, whichever is larger. Unparsable values count as 0 (admission rejected them). */
ty_resources ty_pod_spec_requests(const json_t *pod_spec);
/* A node's status.allocatable. */
ty_resources ty_node_allocatable(const json_t *node);
void ty_resources_add(ty_resources *a, ty_resources b);
void ty_resources_sub(ty_resources *a, ty_resources b);
/* Whether `need` fits in `avail`; when it does not, writes what is short to `why`
 * ("cpu: needs 4, 2 free", with `avail_word` = "free") and returns false. */
bool ty_resources_fit(ty_resources need, ty_resources avail, const char *avail_word, char *why,
                      size_t cap);

/* A Node object for this machine: capacity from the CPUs and memory it has and `gpus`. */
json_t *ty_node_local(const char *name, int gpus);

#endif
