/* A Katib search space: the parameters of an Experiment's `spec.parameters`.
 *
 * A point of the space is one double per parameter, in the order of `params`: the value itself
 * for int and double parameters, the index into `list` for categorical and discrete ones (so
 * that every algorithm can treat a point as a plain vector). ty_hpo_value_string() turns a
 * coordinate into the string Katib puts into a Trial's parameterAssignments.
 *
 * Ownership: the space owns every string in it; ty_hpo_space_free() accepts NULL. */
#ifndef TY_HPO_SPACE_H
#define TY_HPO_SPACE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

typedef enum ty_hpo_param_type {
    TY_HPO_INT,
    TY_HPO_DOUBLE,
    TY_HPO_CATEGORICAL,
    TY_HPO_DISCRETE,
} ty_hpo_param_type;

typedef struct ty_hpo_param {
    char *name;
    ty_hpo_param_type type;
    /* int and double: the bounds, inclusive. step is 0 when a double has none (ints default to
     * 1, as Katib's suggestion services default it). */
    double min, max, step;
    bool log; /* feasibleSpace.distribution logUniform: sampled uniformly in log(value) */
    /* categorical and discrete: the values as written; discrete ones also as numbers */
    char **list;
    double *list_num;
    size_t n_list;
} ty_hpo_param;

typedef struct ty_hpo_space {
    ty_hpo_param *params;
    size_t n;
} ty_hpo_space;

/* Parses Katib's `spec.parameters` array. Errors name the field as Katib's validating webhook
 * does ("spec.parameters[1].feasibleSpace.max: ..."): nothing is returned on error. */
int ty_hpo_space_parse(const json_t *parameters, ty_hpo_space **out, ty_error *err);
void ty_hpo_space_free(ty_hpo_space *space);
/* The index of the parameter called `name`, or -1. */
int ty_hpo_space_find(const ty_hpo_space *space, const char *name);

/* The number of values a parameter can take on a grid (ints: (max-min)/step+1; doubles need a
 * step; lists: their length). 0 for a double without step. */
size_t ty_hpo_param_grid_size(const ty_hpo_param *p);
/* The k-th value of that grid, as a point coordinate. */
double ty_hpo_param_grid_value(const ty_hpo_param *p, size_t k);

/* Whether `v` is a coordinate the parameter can take (bounds, step, integrality, list index). */
bool ty_hpo_param_contains(const ty_hpo_param *p, double v);

/* The parameter's value as Katib writes it into parameterAssignments: ints in decimal, doubles
 * in the shortest form that reads back exactly, list entries as written. Caller frees. */
char *ty_hpo_value_string(const ty_hpo_param *p, double v);

#endif
