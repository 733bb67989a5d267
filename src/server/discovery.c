/* Discovery: /api, /apis, their versions, and the aggregated v2 documents. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/k8sproto.h"
#include "api/manifest.h"
#include "api/openapi.h"
#include "api/apply.h"
#include "api/patch.h"
#include "api/selector.h"
#include "api/table.h"
#include "base/buf.h"
#include "base/jsontext.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"
#include "server/server_int.h"
#include "server/mhd.h"

/* ---------- discovery ---------- */

json_t *srv_verbs(const res_info *ri)
{
    if (strcmp(ri->group, SRV_METRICS_GROUP) == 0)
        return json_pack("[s,s]", "get", "list");
    if (ri->review) /* answered, never stored */
        return json_pack("[s]", "create");
    return json_pack("[s,s,s,s,s,s,s,s]", "create", "delete", "deletecollection", "get", "list",
                     "patch", "update", "watch");
}

static json_t *resource_list(const ty_apiserver *s, const char *group, const char *version)
{
    json_t *list = json_array();
    for (size_t i = 0; i < s->nres; i++) {
        const res_info *ri = s->res[i];
        if (strcmp(ri->group, group) != 0 || strcmp(ri->version, version) != 0)
            continue;
        json_t *verbs = srv_verbs(ri);
        json_t *r = json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", ri->resource, "singularName",
                              ri->singular, "namespaced", ri->namespaced, "kind", ri->kind,
                              "verbs", verbs);
        if (*ri->short_names) {
            json_t *sn = json_array();
            TY_AUTOFREE char *copy = ty_strdup(ri->short_names);
            for (char *sv = NULL, *t = strtok_r(copy, ",", &sv); t; t = strtok_r(NULL, ",", &sv))
                json_array_append_new(sn, json_string(t));
            json_object_set_new(r, "shortNames", sn);
        }
        if (ri->in_all)
            json_object_set_new(r, "categories", json_pack("[s]", "all"));
        json_array_append_new(list, r);
        if (ri->has_status) {
            TY_AUTOFREE char *n = ty_asprintf("%s/status", ri->resource);
            json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:s, s:[s,s,s]}", "name", n,
                                                  "singularName", "", "namespaced", ri->namespaced,
                                                  "kind", ri->kind, "verbs", "get", "patch",
                                                  "update"));
        }
        if (ri->has_log) {
            TY_AUTOFREE char *n = ty_asprintf("%s/log", ri->resource);
            json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:s, s:[s]}", "name", n,
                                                  "singularName", "", "namespaced", ri->namespaced,
                                                  "kind", "Pod", "verbs", "get"));
        }
        if (strcmp(ri->resource, "serviceaccounts") == 0) /* serviceaccounts.c */
            json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:b, s:s, s:[s]}", "name",
                                                  "serviceaccounts/token", "singularName", "",
                                                  "group", "authentication.k8s.io", "namespaced",
                                                  1, "kind", "TokenRequest", "verbs", "create"));
    }
    TY_AUTOFREE char *gv = *group ? ty_asprintf("%s/%s", group, version) : ty_strdup(version);
    return json_pack("{s:s, s:s, s:s, s:o}", "kind", "APIResourceList", "apiVersion", "v1",
                     "groupVersion", gv, "resources", list);
}

/* The versions a group is served at, in the registry's order (kubeflow.org: v1, the training
 * jobs', then v1beta1, Katib's); the first is the preferred one, as Kubernetes prefers v1 over
 * a beta. */
static size_t group_versions(const ty_apiserver *s, const char *group, const char **out,
                             size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nres; i++) {
        if (strcmp(s->res[i]->group, group) != 0)
            continue;
        bool seen = false;
        for (size_t j = 0; j < n; j++)
            seen |= strcmp(out[j], s->res[i]->version) == 0;
        if (!seen && n < cap)
            out[n++] = s->res[i]->version;
    }
    if (n == 0 && cap)
        out[n++] = "v1";
    return n;
}

static json_t *api_group(const ty_apiserver *s, const char *group)
{
    const char *vs[8];
    size_t nv = group_versions(s, group, vs, TY_ARRAY_LEN(vs));
    json_t *versions = json_array();
    for (size_t i = 0; i < nv; i++) {
        TY_AUTOFREE char *gv = ty_asprintf("%s/%s", group, vs[i]);
        json_array_append_new(versions,
                              json_pack("{s:s, s:s}", "groupVersion", gv, "version", vs[i]));
    }
    TY_AUTOFREE char *pgv = ty_asprintf("%s/%s", group, vs[0]);
    return json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:s}}", "kind", "APIGroup", "apiVersion", "v1",
                     "name", group, "versions", versions, "preferredVersion", "groupVersion",
                     pgv, "version", vs[0]);
}

/* The groups other than core, each once. */
static size_t groups(const ty_apiserver *s, const char **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nres; i++) {
        if (!*s->res[i]->group)
            continue;
        bool seen = false;
        for (size_t j = 0; j < n; j++)
            seen |= strcmp(out[j], s->res[i]->group) == 0;
        if (!seen && n < cap)
            out[n++] = s->res[i]->group;
    }
    return n;
}

/* Aggregated discovery (apidiscovery.k8s.io/v2 APIGroupDiscoveryList): every group with its
 * versions and resources in one answer, which kubectl asks for first on /api and /apis. */
static json_t *aggregated(const ty_apiserver *s, bool core)
{
    json_t *items = json_array();
    const char *gs[16];
    size_t ng = core ? 1 : groups(s, gs, TY_ARRAY_LEN(gs));
    if (core)
        gs[0] = "";
    for (size_t g = 0; g < ng; g++) {
      const char *vs[8];
      size_t nv = core ? 1 : group_versions(s, gs[g], vs, TY_ARRAY_LEN(vs));
      if (core)
          vs[0] = "v1";
      json_t *versions = json_array();
      for (size_t v = 0; v < nv; v++) {
        json_t *resources = json_array();
        for (size_t i = 0; i < s->nres; i++) {
            const res_info *ri = s->res[i];
            if (strcmp(ri->group, gs[g]) != 0 || strcmp(ri->version, vs[v]) != 0)
                continue;
            json_t *kind = json_pack("{s:s, s:s, s:s}", "group", ri->group, "version",
                                     ri->version, "kind", ri->kind);
            json_t *r = json_pack("{s:s, s:O, s:s, s:s, s:o}", "resource", ri->resource,
                                  "responseKind", kind, "scope",
                                  ri->namespaced ? "Namespaced" : "Cluster", "singularResource",
                                  ri->singular, "verbs", srv_verbs(ri));
            if (*ri->short_names) {
                json_t *sn = json_array();
                TY_AUTOFREE char *copy = ty_strdup(ri->short_names);
                for (char *sv = NULL, *t = strtok_r(copy, ",", &sv); t; t = strtok_r(NULL, ",", &sv))
                    json_array_append_new(sn, json_string(t));
                json_object_set_new(r, "shortNames", sn);
            }
            if (ri->in_all)
                json_object_set_new(r, "categories", json_pack("[s]", "all"));
            json_t *subs = json_array();
            if (ri->has_status)
                json_array_append_new(subs, json_pack("{s:s, s:O, s:[s,s,s]}", "subresource",
                                                      "status", "responseKind", kind, "verbs",
                                                      "get", "patch", "update"));
            if (ri->has_log)
                json_array_append_new(subs, json_pack("{s:s, s:{s:s, s:s, s:s}, s:[s]}",
                                                      "subresource", "log", "responseKind",
                                                      "group", "", "version", "v1", "kind", "Pod",
                                                      "verbs", "get"));
            if (strcmp(ri->resource, "serviceaccounts") == 0)
                json_array_append_new(subs, json_pack("{s:s, s:{s:s, s:s, s:s}, s:[s]}",
                                                      "subresource", "token", "responseKind",
                                                      "group", "authentication.k8s.io", "version",
                                                      "v1", "kind", "TokenRequest", "verbs",
                                                      "create"));
            if (json_array_size(subs))
                json_object_set_new(r, "subresources", subs);
            else
                json_decref(subs);
            json_decref(kind);
            json_array_append_new(resources, r);
        }
        json_array_append_new(versions, json_pack("{s:s, s:o, s:s}", "version", vs[v],
                                                  "resources", resources, "freshness",
                                                  "Current"));
      }
      json_array_append_new(items,
                            json_pack("{s:{s:s}, s:o}", "metadata", "name", gs[g], "versions",
                                      versions));
    }
    return json_pack("{s:s, s:s, s:{}, s:o}", "kind", "APIGroupDiscoveryList", "apiVersion",
                     "apidiscovery.k8s.io/v2", "metadata", "items", items);
}

/* Which aggregated discovery version the Accept header asks for: "v2", "v2beta1" or NULL. */
static const char *wants_aggregated(call *c)
{
    const char *accept = srv_hdr(c, "Accept");
    if (!accept || !strstr(accept, "as=APIGroupDiscoveryList"))
        return NULL;
    /* Clients list v2 before v2beta1; both have the same shape. */
    return strstr(accept, "v=v2;") || strstr(accept, "v=v2,") ? "v2" : "v2beta1";
}

static enum MHD_Result reply_aggregated(call *c, bool core, const char *version)
{
    json_t *body = aggregated(c->srv, core);
    if (strcmp(version, "v2") != 0)
        json_object_set_new(body, "apiVersion", json_string("apidiscovery.k8s.io/v2beta1"));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    TY_AUTOFREE char *type = ty_asprintf(
        "application/json;g=apidiscovery.k8s.io;v=%s;as=APIGroupDiscoveryList", version);
    return srv_reply_text(c, 200, type, text, strlen(text));
}

/* Answers the discovery, version, health and OpenAPI paths; -1 when `url` is none of them. */
int srv_discovery(call *c, const char *url, enum MHD_Result *ret)
{
    ty_apiserver *s = c->srv;
    const char *gs[16];
    size_t ng = groups(s, gs, TY_ARRAY_LEN(gs));
    /* The Python client's VersionApi asks for "/version/", which Kubernetes serves too. */
    if (strcmp(url, "/version") == 0 || strcmp(url, "/version/") == 0) {
        *ret = srv_reply(c, 200,
                     json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "major", "1",
                               "minor", "32", "gitVersion", "v1.32.0-trainyard", "gitCommit", "",
                               "gitTreeState", "clean", "buildDate", "2026-11-28T00:00:00Z",
                               "goVersion", "c17", "compiler", "cc", "platform", "linux/amd64"));
    } else if (strcmp(url, "/metrics") == 0 && s->metrics) {
        char *text = s->metrics(s->metrics_ctx);
        if (!text)
            text = ty_strdup("");
        *ret = srv_reply_text(c, 200, "text/plain; version=0.0.4", text, strlen(text));
    } else if (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0 ||
               strcmp(url, "/livez") == 0) {
        *ret = srv_reply_text(c, 200, "text/plain", ty_strdup("ok"), 2);
    } else if ((strcmp(url, "/api") == 0 || strcmp(url, "/apis") == 0) && wants_aggregated(c)) {
        *ret = reply_aggregated(c, strcmp(url, "/api") == 0, wants_aggregated(c));
    } else if (strcmp(url, "/api") == 0) {
        TY_AUTOFREE char *addr = ty_asprintf("127.0.0.1:%d", s->port);
        *ret = srv_reply(c, 200,
                     json_pack("{s:s, s:[s], s:[{s:s, s:s}]}", "kind", "APIVersions", "versions",
                               "v1", "serverAddressByClientCIDRs", "clientCIDR", "0.0.0.0/0",
                               "serverAddress", addr));
    } else if (strcmp(url, "/api/v1") == 0) {
        *ret = srv_reply(c, 200, resource_list(s, "", "v1"));
    } else if (strcmp(url, "/apis") == 0) {
        json_t *list = json_array();
        for (size_t i = 0; i < ng; i++) {
            json_t *g = api_group(s, gs[i]);
            json_object_del(g, "kind");
            json_object_del(g, "apiVersion");
            json_array_append_new(list, g);
        }
        *ret = srv_reply(c, 200,
                     json_pack("{s:s, s:s, s:o}", "kind", "APIGroupList", "apiVersion", "v1",
                               "groups", list));
    } else if (strncmp(url, "/apis/", 6) == 0 && !strchr(url + 6, '/')) {
        for (size_t i = 0; i < ng; i++)
            if (strcmp(url + 6, gs[i]) == 0)
                return *ret = srv_reply(c, 200, api_group(s, gs[i])), 0;
        *ret = srv_fail(c, 404, "NotFound", "the server could not find the requested resource");
    } else if (strncmp(url, "/apis/", 6) == 0 && strchr(url + 6, '/') &&
               !strchr(strchr(url + 6, '/') + 1, '/')) {
        TY_AUTOFREE char *g = ty_strndup(url + 6, (size_t)(strchr(url + 6, '/') - (url + 6)));
        const char *v = strchr(url + 6, '/') + 1;
        bool known = false;
        for (size_t i = 0; i < s->nres; i++)
            known |= strcmp(s->res[i]->group, g) == 0 && strcmp(s->res[i]->version, v) == 0;
        *ret = known ? srv_reply(c, 200, resource_list(s, g, v))
                     : srv_fail(c, 404, "NotFound",
                                "the server could not find the requested resource");
    } else if (strcmp(url, "/openapi/v2") == 0) {
        /* kubectl's validation falls back on the v2 document for a kind the v3 documents do
         * not name (kind: MPIJob) and stops at "failed to download openapi" without one. An
         * empty Swagger 2.0 document (protobuf, the only form kubectl reads: field 1,
         * swagger = "2.0") names no kinds, so kubectl skips validation and reports the kind
         * as unknown, as against a cluster without that CRD. */
        static const char doc[] = "\x0a\x03" "2.0";
        *ret = srv_reply_text(c, 200, "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                          ty_strndup(doc, sizeof doc - 1), sizeof doc - 1);
    } else if (strcmp(url, "/openapi/v3") == 0) {
        *ret = srv_reply(c, 200, ty_openapi_v3_paths());
    } else if (strncmp(url, "/openapi/v3/", 12) == 0) {
        /* /openapi/v3/api/v1 and /openapi/v3/apis/<group>/<version> */
        const char *rest = url + 12;
        const char *gv = strncmp(rest, "apis/", 5) == 0 ? rest + 5
                         : strcmp(rest, "api/v1") == 0 ? "v1" : rest;
        json_t *doc = ty_openapi_v3_group(gv);
        *ret = doc ? srv_reply(c, 200, doc)
                   : srv_fail(c, 404, "NotFound",
                              "the server could not find the requested resource");
    } else {
        return -1;
    }
    return 0;
}
