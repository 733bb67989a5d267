/* Core v1 defaults. See core.h. */
#include "api/core.h"

#include <stdbool.h>
#include <string.h>

static json_t *member_object(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        v = json_object();
        json_object_set_new(obj, key, v);
    }
    return json_is_object(v) ? v : NULL;
}

static void set_default(json_t *obj, const char *key, json_t *value)
{
    if (!json_object_get(obj, key))
        json_object_set(obj, key, value);
    json_decref(value);
}

void ty_core_service_defaults(json_t *svc)
{
    json_t *spec = member_object(svc, "spec");
    if (!spec)
        return;
    set_default(spec, "type", json_string("ClusterIP"));
    const char *type = json_string_value(json_object_get(spec, "type"));
    bool external_name = type && strcmp(type, "ExternalName") == 0;
    set_default(spec, "sessionAffinity", json_string("None"));
    json_t *ports = json_object_get(spec, "ports");
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p) {
        if (!json_is_object(p))
            continue;
        set_default(p, "protocol", json_string("TCP"));
        json_t *target = json_object_get(p, "targetPort");
        json_t *port = json_object_get(p, "port");
        /* An unset or zero targetPort is the port (SetDefaults_Service). */
        if ((!target || (json_is_integer(target) && json_integer_value(target) == 0)) &&
            json_is_integer(port))
            json_object_set(p, "targetPort", port);
    }
    if (external_name)
        return;
    set_default(spec, "internalTrafficPolicy", json_string("Cluster"));
    if (type && (strcmp(type, "NodePort") == 0 || strcmp(type, "LoadBalancer") == 0))
        set_default(spec, "externalTrafficPolicy", json_string("Cluster"));
    json_t *ip = json_object_get(spec, "clusterIP");
    if (json_is_string(ip) && !json_object_get(spec, "clusterIPs"))
        json_object_set_new(spec, "clusterIPs", json_pack("[O]", ip));
    /* The registry gives a headless service the cluster's family: one stack, IPv4 (pods'
     * addresses are loopback IPv4 addresses here). */
    if (json_is_string(ip) && strcmp(json_string_value(ip), "None") == 0) {
        set_default(spec, "ipFamilies", json_pack("[s]", "IPv4"));
        set_default(spec, "ipFamilyPolicy", json_string("SingleStack"));
    }
    json_t *status = member_object(svc, "status");
    if (status)
        member_object(status, "loadBalancer");
}
