/* This machine as a Node. What pods ask for and what nodes have: controllers/placement.h
 * (ty_placement_requests, ty_placement_allocatable). */
#ifndef TY_CONTROLLERS_RESOURCES_H
#define TY_CONTROLLERS_RESOURCES_H

#include <jansson.h>

/* A Node object for this machine: capacity from the CPUs and memory it has and `gpus`. */
json_t *ty_node_local(const char *name, int gpus);

#endif
