/* The API server's defaulting of the core kinds that clients read back, for every create
 * whoever makes it (kubectl through the server, the controllers straight into the store): the
 * store calls each kind's `create_defaults` from the registry (kinds.h). Kubernetes does this
 * in SetDefaults_* and the registries' PrepareForCreate. */
#include <string.h>

#include "api/api_int.h"

static void default_protocol(json_t *ports)
{
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p)
    {
        if (json_is_object(p) && !json_string_value(json_object_get(p, "protocol")))
            json_object_set_new(p, "protocol", json_string("TCP"));
    }
}

static void set_default(json_t *obj, const char *key, json_t *value)
{
    if (!json_object_get(obj, key))
        json_object_set(obj, key, value);
    json_decref(value);
}

/* What the API server fills in on a Service (SetDefaults_Service and the registry's create):
 * type ClusterIP, sessionAffinity None, each port's targetPort its port, internalTrafficPolicy
 * Cluster, clusterIPs from clusterIP, and the cluster's one IPv4 family. */
void ty_core_service_defaults(json_t *svc)
{
    json_t *spec = json_object_get(svc, "spec");
    default_protocol(json_object_get(spec, "ports"));
    if (!json_is_object(spec))
        return;
    set_default(spec, "type", json_string("ClusterIP"));
    set_default(spec, "sessionAffinity", json_string("None"));
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(spec, "ports"), i, p) {
        json_t *target = json_object_get(p, "targetPort");
        json_t *port = json_object_get(p, "port");
        if (json_is_object(p) && json_is_integer(port) &&
            (!target || (json_is_integer(target) && json_integer_value(target) == 0)))
            json_object_set(p, "targetPort", port);
    }
    const char *type = json_string_value(json_object_get(spec, "type"));
    if (type && strcmp(type, "ExternalName") == 0)
        return;
    set_default(spec, "internalTrafficPolicy", json_string("Cluster"));
    if (type && (strcmp(type, "NodePort") == 0 || strcmp(type, "LoadBalancer") == 0))
        set_default(spec, "externalTrafficPolicy", json_string("Cluster"));
    json_t *ip = json_object_get(spec, "clusterIP");
    if (json_is_string(ip) && !json_object_get(spec, "clusterIPs"))
        json_object_set_new(spec, "clusterIPs", json_pack("[O]", ip));
    if (json_is_string(ip)) { /* headless, or allocated by the store (store/svcip.c) */
        set_default(spec, "ipFamilies", json_pack("[s]", "IPv4"));
        set_default(spec, "ipFamilyPolicy", json_string("SingleStack"));
    }
    json_t *status = json_object_get(svc, "status");
    if (!status)
        json_object_set_new(svc, "status", status = json_object());
    if (json_is_object(status))
        set_default(status, "loadBalancer", json_object());
}

/* A port's protocol is TCP: kubectl describe pod prints "23456/TCP", a port without one
 * "23456/". */
void ty_core_pod_defaults(json_t *pod)
{
    json_t *spec = json_object_get(pod, "spec");
    static const char *lists[] = {"initContainers", "containers"};
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(spec, lists[l]), i, c)
            default_protocol(json_object_get(c, "ports"));
    }
}

/* The API server starts every namespace Active, whatever the client sent. */
void ty_core_namespace_defaults(json_t *ns)
{
    json_object_set_new(ns, "status", json_pack("{s:s}", "phase", "Active"));
}
