/* metrics.k8s.io/v1beta1: PodMetrics and NodeMetrics, answered from the node's samples
 * (controllers/podmetrics.h through ty_apiserver_config.resource_metrics), as metrics-server
 * answers them: get and list, label and field selectors, nothing stored, no watch. */
#include <string.h>

#include "server/server_int.h"

const res_info srv_pod_metrics_kind = {
    .group = SRV_METRICS_GROUP, .version = "v1beta1", .kind = "PodMetrics",
    .resource = "pods", .singular = "", .short_names = "", .namespaced = true,
    .description = "PodMetrics is the usage of a pod's containers: cpu in nanocores over a "
                   "window, memory working set.",
};

const res_info srv_node_metrics_kind = {
    .group = SRV_METRICS_GROUP, .version = "v1beta1", .kind = "NodeMetrics",
    .resource = "nodes", .singular = "", .short_names = "", .namespaced = false,
    .description = "NodeMetrics is the usage of a node: cpu in nanocores over a window, "
                   "memory working set.",
};

enum MHD_Result srv_handle_resource_metrics(call *c)
{
    ty_apiserver *s = c->srv;
    const char *res = c->ri->resource;
    if (c->path.name) {
        json_t *obj = s->resource_metrics(s->resource_metrics_ctx, res, c->path.ns,
                                          c->path.name);
        if (!obj)
            return c->path.ns
                       ? srv_fail(c, 404, "NotFound", "%smetrics.%s \"%s/%s\" not found",
                                  strcmp(res, "pods") == 0 ? "pod" : "node", SRV_METRICS_GROUP,
                                  c->path.ns, c->path.name)
                       : srv_fail(c, 404, "NotFound", "%smetrics.%s \"%s\" not found",
                                  strcmp(res, "pods") == 0 ? "pod" : "node", SRV_METRICS_GROUP,
                                  c->path.name);
        return srv_reply(c, 200, obj);
    }
    ty_selector *labels, *fields;
    enum MHD_Result ret;
    if (srv_parse_selectors(c, &labels, &fields, &ret) < 0)
        return ret;
    json_t *list = s->resource_metrics(s->resource_metrics_ctx, res, c->path.ns, NULL);
    json_t *items = json_object_get(list, "items");
    for (size_t i = json_array_size(items); i-- > 0;)
        if (!srv_matches(json_array_get(items, i), labels, fields))
            json_array_remove(items, i);
    ty_selector_free(labels);
    ty_selector_free(fields);
    return srv_reply(c, 200, list);
}
