/* A Service's endpoints (net/endpoints.h). */
#include "net/endpoints.h"

#include <string.h>

static const char *str_at(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static bool pod_ready(const json_t *status)
{
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(status, "conditions"), i, c)
    {
        const char *type = str_at(c, "type"), *st = str_at(c, "status");
        if (type && st && strcmp(type, "Ready") == 0)
            return strcmp(st, "True") == 0;
    }
    return false;
}

bool ty_endpoint_of(const json_t *svc, const json_t *pod)
{
    const json_t *smeta = json_object_get(svc, "metadata");
    const json_t *pmeta = json_object_get(pod, "metadata");
    const json_t *spec = json_object_get(svc, "spec"), *status = json_object_get(pod, "status");
    const char *sns = str_at(smeta, "namespace"), *pns = str_at(pmeta, "namespace");
    const json_t *selector = json_object_get(spec, "selector");
    if (strcmp(sns ? sns : "default", pns ? pns : "default") != 0 ||
        !json_object_size(selector) || !str_at(status, "podIP"))
        return false;
    const char *phase = str_at(status, "phase");
    if (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0))
        return false;
    if (!json_is_true(json_object_get(spec, "publishNotReadyAddresses")) &&
        (!pod_ready(status) || json_object_get(pmeta, "deletionTimestamp")))
        return false;
    const json_t *labels = json_object_get(pmeta, "labels");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)selector, k, v)
    {
        const char *have = str_at(labels, k);
        if (!have || !json_is_string(v) || strcmp(have, json_string_value(v)) != 0)
            return false;
    }
    return true;
}

int ty_endpoint_port(const json_t *svc_port, const json_t *pod)
{
    const json_t *t = json_object_get(svc_port, "targetPort");
    if (!json_is_string(t)) {
        json_int_t n = json_integer_value(t);
        return (int)(n > 0 ? n : json_integer_value(json_object_get(svc_port, "port")));
    }
    size_t i, j;
    const json_t *c, *port;
    json_array_foreach(json_object_get(json_object_get(pod, "spec"), "containers"), i, c)
        json_array_foreach(json_object_get(c, "ports"), j, port)
    {
        const char *name = str_at(port, "name");
        if (name && strcmp(name, json_string_value(t)) == 0)
            return (int)json_integer_value(json_object_get(port, "containerPort"));
    }
    return -1;
}
