/* Katib's parameters: parsing, validation (the webhook's rules), grids and value strings. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "hpo/hpo_int.h"
#include "hpo/space.h"

static void param_clear(ty_hpo_param *p) {
    free(p->name);
    for (size_t i = 0; i < p->n_list; i++) free(p->list[i]);
    free(p->list);
    free(p->list_num);
}

void ty_hpo_space_free(ty_hpo_space *space) {
    if (!space) return;
    for (size_t i = 0; i < space->n; i++) param_clear(&space->params[i]);
    free(space->params);
    free(space);
}

int ty_hpo_space_find(const ty_hpo_space *space, const char *name) {
    for (size_t i = 0; i < space->n; i++)
        if (strcmp(space->params[i].name, name) == 0) return (int)i;
    return -1;
}

/* Katib writes feasibleSpace bounds as strings; a bare JSON number is taken too. */
static int read_number(const json_t *v, const char *field, bool want_int, double *out,
                       ty_error *err) {
    if (json_is_number(v)) {
        *out = json_number_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        while (*end == ' ') end++;
        if (!*s || *end || errno == ERANGE)
            return ty_fail(err, "%s: Invalid value: \"%s\": must be a number", field, s);
        *out = d;
    } else {
        return ty_fail(err, "%s: Invalid value: must be a string holding a number", field);
    }
    if (!isfinite(*out)) return ty_fail(err, "%s: Invalid value: must be finite", field);
    if (want_int && *out != floor(*out))
        return ty_fail(err, "%s: Invalid value: %g: must be an integer for parameterType int",
                       field, *out);
    return 0;
}

static int parse_one(const json_t *j, size_t i, ty_hpo_param *p, ty_error *err) {
    char path[64];
    snprintf(path, sizeof path, "spec.parameters[%zu]", i);
    if (!json_is_object(j)) return ty_fail(err, "%s: Invalid value: must be an object", path);
    const json_t *name = json_object_get(j, "name");
    if (!json_is_string(name) || !*json_string_value(name))
        return ty_fail(err, "%s.name: Required value: parameter name must be specified", path);
    p->name = ty_strdup(json_string_value(name));
    const json_t *type = json_object_get(j, "parameterType");
    const char *t = json_is_string(type) ? json_string_value(type) : "";
    if (strcmp(t, "int") == 0) p->type = TY_HPO_INT;
    else if (strcmp(t, "double") == 0) p->type = TY_HPO_DOUBLE;
    else if (strcmp(t, "categorical") == 0) p->type = TY_HPO_CATEGORICAL;
    else if (strcmp(t, "discrete") == 0) p->type = TY_HPO_DISCRETE;
    else
        return ty_fail(err,
                       "%s.parameterType: Unsupported value: \"%s\": supported values: "
                       "\"int\", \"double\", \"categorical\", \"discrete\"",
                       path, t);
    const json_t *fs = json_object_get(j, "feasibleSpace");
    if (!json_is_object(fs))
        return ty_fail(err, "%s.feasibleSpace: Required value: feasibleSpace must be specified",
                       path);
    const json_t *min = json_object_get(fs, "min"), *max = json_object_get(fs, "max"),
                 *step = json_object_get(fs, "step"), *list = json_object_get(fs, "list"),
                 *dist = json_object_get(fs, "distribution");
    bool has_list = list && !(json_is_array(list) && json_array_size(list) == 0);
    char field[128];
    if (p->type == TY_HPO_INT || p->type == TY_HPO_DOUBLE) {
        bool is_int = p->type == TY_HPO_INT;
        if (has_list)
            return ty_fail(err, "%s.feasibleSpace.list: Invalid value: list is not supported "
                           "for parameterType %s", path, t);
        if (!min || !max)
            return ty_fail(err, "%s.feasibleSpace: Required value: min and max must be "
                           "specified for parameterType %s", path, t);
        snprintf(field, sizeof field, "%s.feasibleSpace.min", path);
        if (read_number(min, field, is_int, &p->min, err) < 0) return -1;
        snprintf(field, sizeof field, "%s.feasibleSpace.max", path);
        if (read_number(max, field, is_int, &p->max, err) < 0) return -1;
        if (p->min > p->max)
            return ty_fail(err, "%s.feasibleSpace.max: Invalid value: %g: must be greater "
                           "than or equal to min %g", path, p->max, p->min);
        p->step = is_int ? 1 : 0;
        if (step && !(json_is_string(step) && !*json_string_value(step))) {
            snprintf(field, sizeof field, "%s.feasibleSpace.step", path);
            if (read_number(step, field, is_int, &p->step, err) < 0) return -1;
            if (p->step <= 0)
                return ty_fail(err, "%s: Invalid value: %g: must be greater than zero", field,
                               p->step);
        }
        const char *d = json_is_string(dist) ? json_string_value(dist) : "";
        if (strcmp(d, "logUniform") == 0) {
            if (p->min <= 0)
                return ty_fail(err, "%s.feasibleSpace.min: Invalid value: %g: must be greater "
                               "than zero for distribution logUniform", path, p->min);
            if (json_object_get(fs, "step") && p->type == TY_HPO_DOUBLE)
                return ty_fail(err, "%s.feasibleSpace.step: Invalid value: a step is not "
                               "supported with distribution logUniform", path);
            p->log = true;
        } else if (*d && strcmp(d, "uniform") != 0) {
            return ty_fail(err, "%s.feasibleSpace.distribution: Unsupported value: \"%s\": "
                           "supported values: \"uniform\", \"logUniform\"", path, d);
        }
        return 0;
    }
    if (min || max || step)
        return ty_fail(err, "%s.feasibleSpace: Invalid value: min, max and step are not "
                       "supported for parameterType %s", path, t);
    if (!json_is_array(list) || json_array_size(list) == 0)
        return ty_fail(err, "%s.feasibleSpace.list: Required value: list must be specified "
                       "for parameterType %s", path, t);
    p->n_list = json_array_size(list);
    p->list = ty_calloc(p->n_list, sizeof *p->list);
    p->list_num = ty_calloc(p->n_list, sizeof *p->list_num);
    for (size_t k = 0; k < p->n_list; k++) {
        const json_t *e = json_array_get(list, k);
        snprintf(field, sizeof field, "%s.feasibleSpace.list[%zu]", path, k);
        if (json_is_string(e)) p->list[k] = ty_strdup(json_string_value(e));
        else if (json_is_number(e)) p->list[k] = ty_asprintf("%.17g", json_number_value(e));
        else return ty_fail(err, "%s: Invalid value: must be a string", field);
        for (size_t m = 0; m < k; m++)
            if (strcmp(p->list[m], p->list[k]) == 0)
                return ty_fail(err, "%s: Duplicate value: \"%s\"", field, p->list[k]);
        if (p->type == TY_HPO_DISCRETE && read_number(e, field, false, &p->list_num[k], err) < 0)
            return -1;
    }
    return 0;
}

int ty_hpo_space_parse(const json_t *parameters, ty_hpo_space **out, ty_error *err) {
    if (!json_is_array(parameters) || json_array_size(parameters) == 0)
        return ty_fail(err, "spec.parameters: Required value: parameters must be specified");
    ty_hpo_space *sp = TY_NEW(ty_hpo_space);
    sp->n = json_array_size(parameters);
    sp->params = ty_calloc(sp->n, sizeof *sp->params);
    for (size_t i = 0; i < sp->n; i++) {
        if (parse_one(json_array_get(parameters, i), i, &sp->params[i], err) < 0) {
            ty_hpo_space_free(sp);
            return -1;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(sp->params[k].name, sp->params[i].name) == 0) {
                ty_fail(err, "spec.parameters[%zu].name: Duplicate value: \"%s\"", i,
                        sp->params[i].name);
                ty_hpo_space_free(sp);
                return -1;
            }
    }
    *out = sp;
    return 0;
}

size_t ty_hpo_param_grid_size(const ty_hpo_param *p) {
    switch (p->type) {
    case TY_HPO_CATEGORICAL:
    case TY_HPO_DISCRETE: return p->n_list;
    case TY_HPO_INT:
    case TY_HPO_DOUBLE:
        if (p->step <= 0) return 0;
        /* Katib: numpy.arange(min, max + step, step) without the values past max; the small
         * tolerance keeps 0.1-steps from losing their last value to rounding. */
        return (size_t)floor((p->max - p->min) / p->step + 1e-9) + 1;
    }
    return 0;
}

double ty_hpo_param_grid_value(const ty_hpo_param *p, size_t k) {
    if (p->type == TY_HPO_CATEGORICAL || p->type == TY_HPO_DISCRETE) return (double)k;
    return p->min + (double)k * p->step;
}

bool ty_hpo_param_contains(const ty_hpo_param *p, double v) {
    if (!isfinite(v)) return false;
    if (p->type == TY_HPO_CATEGORICAL || p->type == TY_HPO_DISCRETE)
        return v >= 0 && v < (double)p->n_list && v == floor(v);
    if (v < p->min || v > p->max) return false;
    if (p->type == TY_HPO_INT && v != floor(v)) return false;
    if (p->step > 0) {
        double k = (v - p->min) / p->step;
        if (fabs(k - nearbyint(k)) > 1e-6) return false;
    }
    return true;
}

char *ty_hpo_value_string(const ty_hpo_param *p, double v) {
    switch (p->type) {
    case TY_HPO_INT: return ty_asprintf("%lld", (long long)llround(v));
    case TY_HPO_CATEGORICAL:
    case TY_HPO_DISCRETE: {
        size_t k = (size_t)v;
        return ty_strdup(k < p->n_list ? p->list[k] : "");
    }
    case TY_HPO_DOUBLE:
        break;
    }
    /* The shortest "%.Ng" that reads back to the same double. */
    for (int prec = 6; prec < 17; prec++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return ty_strdup(buf);
    }
    return ty_asprintf("%.17g", v);
}

/* ---- the internal axis and the unit cube ---- */

void ty_hpo_axis_of(const ty_hpo_param *p, ty_hpo_axis *a) {
    a->is_int = p->type == TY_HPO_INT;
    a->log = p->log;
    a->step = p->step;
    if (p->type == TY_HPO_CATEGORICAL || p->type == TY_HPO_DISCRETE) {
        a->lo = 0, a->hi = (double)p->n_list, a->step = 1, a->log = false;
        return;
    }
    double half = a->step > 0 ? a->step / 2 : 0;
    if (a->log) {
        /* log ints: the bucket of each int is [v - 0.5, v + 0.5] in value units */
        a->lo = log(p->min - (a->is_int ? fmin(half, p->min / 2) : 0));
        a->hi = log(p->max + half * (a->is_int ? 1 : 0));
    } else {
        a->lo = p->min - half;
        a->hi = p->max + half;
    }
}

double ty_hpo_axis_value(const ty_hpo_param *p, const ty_hpo_axis *a, double internal) {
    if (internal < a->lo) internal = a->lo;
    if (internal > a->hi) internal = a->hi;
    if (p->type == TY_HPO_CATEGORICAL || p->type == TY_HPO_DISCRETE) {
        double k = floor(internal);
        return k >= (double)p->n_list ? (double)p->n_list - 1 : k;
    }
    double v = a->log ? exp(internal) : internal;
    if (a->step > 0) v = p->min + nearbyint((v - p->min) / a->step) * a->step;
    if (v < p->min) v = p->type == TY_HPO_INT ? p->min : p->min;
    if (v > p->max) v = a->step > 0 ? p->min + floor((p->max - p->min) / a->step + 1e-9) * a->step
                                    : p->max;
    return v;
}

double ty_hpo_axis_internal(const ty_hpo_axis *a, double value) {
    return a->log ? log(value) : value;
}

double ty_hpo_to_unit(const ty_hpo_param *p, double value) {
    ty_hpo_axis a;
    ty_hpo_axis_of(p, &a);
    if (a.hi <= a.lo) return 0.5;
    double in = (p->type == TY_HPO_CATEGORICAL || p->type == TY_HPO_DISCRETE)
                    ? value + 0.5
                    : ty_hpo_axis_internal(&a, value);
    return (in - a.lo) / (a.hi - a.lo);
}

double ty_hpo_from_unit(const ty_hpo_param *p, double u) {
    ty_hpo_axis a;
    ty_hpo_axis_of(p, &a);
    return ty_hpo_axis_value(p, &a, a.lo + u * (a.hi - a.lo));
}

void ty_hpo_sample_random(const ty_hpo_space *space, ty_hpo_rng *rng, double *x) {
    for (size_t i = 0; i < space->n; i++) {
        const ty_hpo_param *p = &space->params[i];
        if (p->type == TY_HPO_CATEGORICAL || p->type == TY_HPO_DISCRETE) {
            x[i] = (double)ty_hpo_rng_below(rng, p->n_list);
        } else if (p->step > 0 && !p->log) {
            /* equal chances for every grid value */
            x[i] = ty_hpo_param_grid_value(p, ty_hpo_rng_below(rng, ty_hpo_param_grid_size(p)));
        } else {
            x[i] = ty_hpo_from_unit(p, ty_hpo_rng_uniform(rng));
        }
    }
}
