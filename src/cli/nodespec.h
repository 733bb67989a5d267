/* Declared (virtual) nodes: `--nodes SPEC` and `--nodes-file FILE` of `trainyard run` and
 * `trainyard server`, turned into Node objects before anything starts.
 *
 * SPEC is `[COUNT x]{NAME: QUANTITY, ...}`, e.g. `8x{cpu:32,memory:256Gi,nvidia.com/gpu:8}`:
 * COUNT nodes (1 without a count) whose capacity and allocatable are the braces' resources
 * (any resource name; quantities in Kubernetes syntax; whitespace allowed). Nodes of all
 * --nodes flags are named node-1, node-2, ... in the order given (`*next_index` carries the
 * numbering from one flag to the next).
 *
 * FILE holds Node objects (YAML or JSON, several documents or a List): metadata.name
 * (required, a DNS subdomain), metadata.labels, spec.taints (key, value, effect NoSchedule,
 * PreferNoSchedule or NoExecute), spec.unschedulable, status.capacity and status.allocatable
 * (either may be left out: it then equals the other).
 *
 * Every node gets what a kubelet would give it: the labels kubernetes.io/hostname (its name),
 * kubernetes.io/os, kubernetes.io/arch and node.kubernetes.io/instance-type ("trainyard-virtual")
 * unless given, the Ready condition, addresses (127.0.0.1), nodeInfo, and room for 110 pods
 * (`pods`, the kubelet's maxPods) unless the resources declare another count.
 *
 * Errors name the flag or file, the place and the field: `--nodes '2x{cpu:x}': column 8: cpu:
 * quantities must match ...`, `nodes.yaml:7:12: status.capacity.memory: ...`. */
#ifndef TY_CLI_NODESPEC_H
#define TY_CLI_NODESPEC_H

#include <jansson.h>
#include <stdbool.h>

#include "base/error.h"

/* Appends the nodes of one SPEC to the JSON array `nodes`. */
int ty_nodespec_parse(const char *spec, int *next_index, json_t *nodes, ty_error *err);
/* Appends the nodes of FILE to `nodes`. */
int ty_nodespec_load(const char *path, json_t *nodes, ty_error *err);
/* Fails when two nodes share a name. */
int ty_nodespec_check_unique(const json_t *nodes, ty_error *err);
/* For the commands' option loops: one --nodes SPEC (is_file false) or --nodes-file FILE,
 * appended to *nodes (an array made on first use; free it with json_decref or TY_AUTONODES). */
int ty_nodespec_add(json_t **nodes, int *next_index, bool is_file, const char *arg,
                    ty_error *err);

static inline void ty_nodespec_cleanup(json_t **nodes) { json_decref(*nodes); }
#define TY_AUTONODES __attribute__((cleanup(ty_nodespec_cleanup)))

#endif
