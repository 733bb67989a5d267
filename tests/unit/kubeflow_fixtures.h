/* Shared helpers for the kubeflow controller tests: JSON written with single quotes. */
#ifndef TY_TESTS_KUBEFLOW_FIXTURES_H
#define TY_TESTS_KUBEFLOW_FIXTURES_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <string.h>

#include "base/mem.h"

/* Parses a JSON text where ' stands for ", after printf-style formatting. */
static inline json_t *J(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline json_t *J(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = ty_vasprintf(fmt, ap);
    va_end(ap);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t e;
    json_t *v = json_loads(s, 0, &e);
    if (!v)
        cr_assert_fail("bad test json at %d: %s: %s", e.position, e.text, s);
    free(s);
    return v;
}

/* A container spec for `name` with port `port_name`. */
#define KF_CONTAINER(name, port_name, port)                                                       \
    "{'name':'" name "','image':'x','command':['python3','train.py'],"                          \
    "'env':[{'name':'USER_VAR','value':'u'}],"                                                   \
    "'ports':[{'name':'" port_name "','containerPort':" #port "}]}"

/* A replica spec with the main container and a sidecar. */
#define KF_REPLICA(replicas, policy, container)                                                   \
    "{'replicas':" #replicas ",'restartPolicy':'" policy "',"                                   \
    "'template':{'metadata':{'labels':{'team':'ml'},'annotations':{'a':'b'}},"                   \
    "'spec':{'containers':[" container ",{'name':'sidecar','image':'y'}]}}}"

#define PT_C KF_CONTAINER("pytorch", "pytorchjob-port", 23456)
#define TF_C KF_CONTAINER("tensorflow", "tfjob-port", 2222)

/* The value of env `name` in container `c` of `pod`, or NULL; the last one wins, as kubelet. */
static inline const char *env_of(const json_t *pod, size_t c, const char *name)
{
    const json_t *cont = json_array_get(
        json_object_get(json_object_get(pod, "spec"), "containers"), c);
    const char *v = NULL;
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(cont, "env"), i, e) {
        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
            v = json_string_value(json_object_get(e, "value"));
    }
    return v;
}

/* "NAME=value;NAME=value" of container c's env, for whole-list comparisons. Caller frees. */
static inline char *env_list(const json_t *pod, size_t c)
{
    const json_t *cont = json_array_get(
        json_object_get(json_object_get(pod, "spec"), "containers"), c);
    char *s = ty_strdup("");
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(cont, "env"), i, e) {
        char *n = ty_asprintf("%s%s%s=%s", s, i ? ";" : "",
                              json_string_value(json_object_get(e, "name")),
                              json_string_value(json_object_get(e, "value")));
        free(s);
        s = n;
    }
    return s;
}

static inline const char *sget(const json_t *obj, const char *path)
{
    /* dotted path through objects: "metadata.name" */
    char *p = ty_strdup(path), *save = NULL;
    const json_t *cur = obj;
    for (char *t = strtok_r(p, ".", &save); t && cur; t = strtok_r(NULL, ".", &save))
        cur = json_object_get(cur, t);
    free(p);
    return json_string_value(cur);
}

#endif
