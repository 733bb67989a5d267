/* The serving controller (serving.h): KServe's InferenceService reconciler, Knative's
 * revisions and routes, and the KPA fed by the gateway. */
#include "controllers/serving.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/kinds.h"
#include "api/serving.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"
#include "controllers/events.h"
#include "controllers/podutil.h"
#include "controllers/queue.h"
#include "serving/kpa.h"

#define API_VERSION "serving.kserve.io/v1beta1"
/* Where the controller keeps the revisions traffic can still reach (Knative keeps Revision
 * objects; trainyard keeps the two that matter in the status it owns): a JSON array of
 * {name, hash, spec, ready, failed}. */
#define REVISIONS_ANNOTATION "serving.trainyard.dev/revisions"
#define CONFIG_LABEL "serving.knative.dev/configuration"
/* Knative's default port for a container that declares none (it sets PORT to it). */
#define DEFAULT_PORT 8080

/* One revision's autoscaler and what the last reconcile saw of it. */
typedef struct rev_state {
    ty_kpa kpa;
    char *isvc_key; /* "isvcs/<ns>/<name>" */
    char *ns, *isvc, *name;
    int32_t desired, ready;
    uint64_t served; /* the gateway's count at the last tick (the rps metric's base) */
    bool routed; /* has traffic */
    bool seen;   /* in the last reconcile of its InferenceService (else dropped) */
} rev_state;

struct ty_servingctl {
    ty_store *store;
    ty_queue *queue;
    ty_recorder *events;
    ty_gateway *gw;
    char *domain;
    int *watch_ids;
    size_t nwatch;
    ty_map revs; /* "<ns>/<rev>" -> rev_state */
    uv_timer_t tick;
    ty_kpa_config kpa_cfg;
};

static void queue_isvc(ty_servingctl *c, const char *ns, const char *name)
{
    TY_AUTOFREE char *key = ty_asprintf("isvcs/%s/%s", ns, name);
    ty_queue_add(c->queue, key);
}

static void on_event(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    ty_servingctl *c = ctx;
    (void)type;
    if (strcmp(resource, "inferenceservices") == 0) {
        queue_isvc(c, ty_obj_namespace(obj), ty_obj_name(obj));
    } else if (strcmp(resource, "pods") == 0) {
        const char *isvc = ty_obj_label(obj, TY_SERVING_LABEL_ISVC);
        if (isvc)
            queue_isvc(c, ty_obj_namespace(obj), isvc);
    } else if (strcmp(resource, "servingruntimes") == 0 ||
               strcmp(resource, "clusterservingruntimes") == 0) {
        /* A runtime may now serve what could not be served: every InferenceService looks. */
        ty_queue_add_all(c->queue, c->store, "inferenceservices", "isvcs/");
    }
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* ---- runtimes ---- */

static bool format_matches(const json_t *rt, const char *format, const char *version,
                           bool auto_only, int64_t *prio)
{
    json_t *spec = json_object_get(rt, "spec");
    if (json_is_true(json_object_get(spec, "disabled")))
        return false;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(spec, "supportedModelFormats"), i, f)
    {
        const char *n = jstr(f, "name"), *v = jstr(f, "version");
        if (!n || strcmp(n, format) != 0)
            continue;
        if (version && v && strcmp(v, version) != 0)
            continue;
        if (auto_only && !json_is_true(json_object_get(f, "autoSelect")))
            continue;
        json_t *p = json_object_get(f, "priority");
        *prio = json_is_integer(p) ? json_integer_value(p) : 0;
        return true;
    }
    return false;
}

/* The runtime for a model: the named one (the namespace's ServingRuntime first, as KServe
 * looks), else the auto-selectable one of the highest priority, namespace ones first. NULL
 * with *why set when none. */
static json_t *find_runtime(ty_servingctl *c, const char *ns, const json_t *model, char **why)
{
    const json_t *mf = json_object_get(model, "modelFormat");
    const char *format = jstr(mf, "name"), *version = jstr(mf, "version");
    const char *named = jstr(model, "runtime");
    int64_t prio;
    if (named) {
        json_t *rt = ty_store_get(c->store, "servingruntimes", ns, named);
        if (!rt)
            rt = ty_store_get(c->store, "clusterservingruntimes", NULL, named);
        if (!rt) {
            *why = ty_asprintf("no runtime %s found (a ServingRuntime in %s or a "
                               "ClusterServingRuntime)", named, ns);
            return NULL;
        }
        if (format && !format_matches(rt, format, version, false, &prio)) {
            *why = ty_asprintf("specified runtime %s does not support specified "
                               "framework/version", named);
            json_decref(rt);
            return NULL;
        }
        return rt;
    }
    json_t *best = NULL;
    int64_t best_prio = -1;
    static const char *const kinds[] = {"servingruntimes", "clusterservingruntimes"};
    for (int k = 0; k < 2 && format; k++) {
        json_t *list = ty_store_list(c->store, kinds[k], k == 0 ? ns : NULL);
        size_t i;
        json_t *rt;
        json_array_foreach(list, i, rt)
        {
            if (format_matches(rt, format, version, true, &prio) && prio > best_prio) {
                json_decref(best);
                best = json_incref(rt);
                best_prio = prio;
            }
        }
        json_decref(list);
        if (best)
            break;
    }
    if (!best)
        *why = ty_asprintf("no runtime found to support predictor with model type: "
                           "{%s %s}", format ? format : "", version ? version : "");
    return best;
}

/* KServe's {{.Name}} (and {{.Namespace}}) in a runtime container's args and env values. */
static void substitute(json_t *v, const char *name, const char *ns)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!strstr(s, "{{."))
            return;
        TY_AUTOBUF ty_buf b = TY_BUF_INIT;
        while (*s) {
            if (strncmp(s, "{{.Name}}", 9) == 0) {
                ty_buf_adds(&b, name);
                s += 9;
            } else if (strncmp(s, "{{.Namespace}}", 14) == 0) {
                ty_buf_adds(&b, ns);
                s += 14;
            } else {
                ty_buf_addc(&b, *s++);
            }
        }
        json_string_set(v, b.data);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) substitute(e, name, ns);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e)
        {
            if (strcmp(k, "args") == 0 || strcmp(k, "command") == 0 || strcmp(k, "env") == 0 ||
                strcmp(k, "value") == 0)
                substitute(e, name, ns);
            else if (json_is_array(e) && strcmp(k, "containers") == 0)
                substitute(e, name, ns);
        }
    }
}

/* ---- pods ---- */

/* The predictor's fields that are not PodSpec fields. */
static const char *const extension_fields[] = {
    "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "containerConcurrency",
    "timeout", "canaryTrafficPercent", "logger", "batcher", "labels", "annotations",
    "deploymentStrategy", "model"};

static int container_port(const json_t *ct)
{
    json_t *p = json_object_get(json_array_get(json_object_get(ct, "ports"), 0), "containerPort");
    return json_is_integer(p) ? (int)json_integer_value(p) : DEFAULT_PORT;
}

/* The pod spec a revision runs, from its spec (the predictor as it was); NULL with *why set
 * when it cannot be made (no runtime, a storage scheme trainyard does not fetch). */
static json_t *revision_podspec(ty_servingctl *c, const char *ns, const char *isvc,
                                const json_t *pred, char **why)
{
    json_t *ps = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)pred, k, v)
    {
        bool ext = false;
        for (size_t i = 0; i < TY_ARRAY_LEN(extension_fields); i++)
            ext |= strcmp(k, extension_fields[i]) == 0;
        if (!ext)
            json_object_set_new(ps, k, json_deep_copy(v));
    }
    const json_t *model = json_object_get(pred, "model");
    json_t *main_ct = NULL;
    if (json_is_object(model)) {
        json_t *rt = find_runtime(c, ns, model, why);
        if (!rt) {
            json_decref(ps);
            return NULL;
        }
        json_t *rspec = json_object_get(rt, "spec");
        json_t *ct = json_deep_copy(json_array_get(json_object_get(rspec, "containers"), 0));
        if (!json_is_object(ct)) {
            *why = ty_asprintf("runtime %s has no container", ty_obj_name(rt));
            json_decref(rt);
            json_decref(ps);
            return NULL;
        }
        /* KServe's merge of the model's container into the runtime's: the model's fields
         * win, args add up, env, ports and mounts merge by name (the model's win). */
        json_object_foreach((json_t *)model, k, v)
        {
            if (strcmp(k, "modelFormat") == 0 || strcmp(k, "runtime") == 0 ||
                strcmp(k, "protocolVersion") == 0 || strcmp(k, "storageUri") == 0 ||
                strcmp(k, "storage") == 0)
                continue;
            json_t *have = json_object_get(ct, k);
            if (json_is_array(have) && json_is_array(v) && strcmp(k, "args") == 0) {
                json_array_extend(have, v);
            } else if (json_is_array(have) && json_is_array(v) &&
                       (strcmp(k, "env") == 0 || strcmp(k, "ports") == 0 ||
                        strcmp(k, "volumeMounts") == 0)) {
                size_t i;
                json_t *e;
                json_array_foreach(v, i, e)
                {
                    const char *en = jstr(e, "name");
                    for (size_t h = 0; en && h < json_array_size(have); h++)
                        if (jstr(json_array_get(have, h), "name") &&
                            strcmp(jstr(json_array_get(have, h), "name"), en) == 0) {
                            json_array_remove(have, h);
                            break;
                        }
                    json_array_append_new(have, json_deep_copy(e));
                }
            } else {
                json_object_set_new(ct, k, json_deep_copy(v));
            }
        }
        substitute(ct, isvc, ns);
        if (!json_object_get(ps, "volumes") && json_object_get(rspec, "volumes"))
            json_object_set_new(ps, "volumes", json_deep_copy(json_object_get(rspec, "volumes")));
        json_object_set_new(ps, "containers", json_pack("[o]", ct));
        main_ct = ct;
        json_decref(rt);
        const char *uri = jstr(model, "storageUri");
        if (uri) {
            json_t *vol = NULL;
            const char *sub = NULL;
            TY_AUTOFREE char *claim = NULL;
            if (strncmp(uri, "file://", 7) == 0) {
                vol = json_pack("{s:s, s:{s:s}}", "name", "kserve-provision-location", "hostPath",
                                "path", uri + 7);
            } else if (strncmp(uri, "pvc://", 6) == 0) {
                const char *slash = strchr(uri + 6, '/');
                claim = slash ? ty_strndup(uri + 6, (size_t)(slash - uri - 6)) : ty_strdup(uri + 6);
                sub = slash && slash[1] ? slash + 1 : NULL;
                vol = json_pack("{s:s, s:{s:s, s:b}}", "name", "kserve-pvc-source",
                                "persistentVolumeClaim", "claimName", claim, "readOnly", 1);
            } else {
                *why = ty_asprintf("storageUri %s: trainyard serves models from file:// and "
                                   "pvc:// only", uri);
                json_decref(ps);
                return NULL;
            }
            json_t *vols = json_object_get(ps, "volumes");
            if (!json_is_array(vols)) {
                vols = json_array();
                json_object_set_new(ps, "volumes", vols);
            }
            json_t *mount = json_pack("{s:s, s:s, s:b}", "name", jstr(vol, "name"), "mountPath",
                                      TY_SERVING_MODEL_DIR, "readOnly", 1);
            if (sub)
                json_object_set_new(mount, "subPath", json_string(sub));
            json_array_append_new(vols, vol);
            json_t *mounts = json_object_get(main_ct, "volumeMounts");
            if (!json_is_array(mounts)) {
                mounts = json_array();
                json_object_set_new(main_ct, "volumeMounts", mounts);
            }
            json_array_append_new(mounts, mount);
            json_t *env = json_object_get(main_ct, "env");
            if (!json_is_array(env)) {
                env = json_array();
                json_object_set_new(main_ct, "env", env);
            }
            json_array_append_new(env, json_pack("{s:s, s:s}", "name", "STORAGE_URI", "value", uri));
        }
    } else {
        main_ct = json_array_get(json_object_get(ps, "containers"), 0);
    }
    if (!json_is_object(main_ct)) {
        *why = ty_strdup("the predictor has no container");
        json_decref(ps);
        return NULL;
    }
    /* Knative's PORT, and the container's port declared so that its readiness can be told. */
    int port = container_port(main_ct);
    json_t *env = json_object_get(main_ct, "env");
    if (!json_is_array(env)) {
        env = json_array();
        json_object_set_new(main_ct, "env", env);
    }
    json_array_append_new(env, json_pack("{s:s, s:o}", "name", "PORT", "value",
                                         json_sprintf("%d", port)));
    if (!json_object_get(main_ct, "ports"))
        json_object_set_new(main_ct, "ports",
                            json_pack("[{s:i, s:s}]", "containerPort", port, "protocol", "TCP"));
    /* Knative's queue-proxy answers readiness with a TCP check of the container's port until
     * the container declares its own probe; trainyard's shim does the same check. */
    if (!json_object_get(main_ct, "readinessProbe"))
        json_object_set_new(main_ct, "readinessProbe",
                            json_pack("{s:{s:i}, s:i, s:i}", "tcpSocket", "port", port,
                                      "periodSeconds", 1, "failureThreshold", 1));
    json_object_set_new(ps, "restartPolicy", json_string("Always"));
    return ps;
}

/* ---- revisions ---- */

/* The part of the predictor that makes a revision: all of it but canaryTrafficPercent, with
 * the InferenceService's autoscaling annotations (KServe passes them to the revision). */
static json_t *revision_spec(const json_t *isvc)
{
    json_t *pred = json_deep_copy(json_object_get(json_object_get(isvc, "spec"), "predictor"));
    json_object_del(pred, "canaryTrafficPercent");
    json_t *ann = json_object_get(json_object_get(isvc, "metadata"), "annotations");
    json_t *kept = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(ann, k, v) if (strncmp(k, "autoscaling.knative.dev/", 24) == 0)
        json_object_set(kept, k, v);
    json_object_set_new(pred, "isvcAnnotations", kept);
    return pred;
}

static char *hash_of(const json_t *spec)
{
    TY_AUTOFREE char *text = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    return ty_asprintf("%016llx", (unsigned long long)ty_fnv1a(text, strlen(text)));
}

/* The KPA's spec of a revision: KServe's fields as the annotations it sets on Knative's
 * revision (min-scale, max-scale, target, metric), over the InferenceService's own. */
static int kpa_spec_of(ty_servingctl *c, const json_t *rspec, ty_kpa_spec *out, ty_error *err)
{
    json_t *ann = json_deep_copy(json_object_get(rspec, "isvcAnnotations"));
    if (!json_is_object(ann)) {
        json_decref(ann);
        ann = json_object();
    }
    json_t *v = json_object_get(rspec, "minReplicas");
    json_object_set_new(ann, "autoscaling.knative.dev/min-scale",
                        json_sprintf("%lld", json_is_integer(v) ? (long long)json_integer_value(v)
                                                                 : 1LL));
    if (json_is_integer(v = json_object_get(rspec, "maxReplicas")) && json_integer_value(v) > 0)
        json_object_set_new(ann, "autoscaling.knative.dev/max-scale",
                            json_sprintf("%lld", (long long)json_integer_value(v)));
    if (json_is_integer(v = json_object_get(rspec, "scaleTarget")))
        json_object_set_new(ann, "autoscaling.knative.dev/target",
                            json_sprintf("%lld", (long long)json_integer_value(v)));
    if (json_is_string(v = json_object_get(rspec, "scaleMetric")))
        json_object_set(ann, "autoscaling.knative.dev/metric", v);
    json_t *cc = json_object_get(rspec, "containerConcurrency");
    int rc = ty_kpa_spec_from_annotations(&c->kpa_cfg, json_is_integer(cc) ? json_integer_value(cc) : 0,
                                          ann, out, err);
    json_decref(ann);
    return rc;
}

static rev_state *rev_get(ty_servingctl *c, const char *ns, const char *isvc, const json_t *rev,
                          int64_t now)
{
    TY_AUTOFREE char *key = ty_asprintf("%s/%s", ns, jstr(rev, "name"));
    rev_state *r = ty_map_gets(&c->revs, key);
    if (r)
        return r;
    ty_kpa_spec ks;
    ty_error err = TY_ERROR_INIT;
    if (kpa_spec_of(c, json_object_get(rev, "spec"), &ks, &err) < 0) {
        /* The webhook checked the annotations; defaults then. */
        ty_error_clear(&err);
        ty_kpa_spec_from_annotations(&c->kpa_cfg, 0, NULL, &ks, &err);
        ty_error_clear(&err);
    }
    r = TY_NEW(rev_state);
    ty_kpa_init(&r->kpa, &ks, 0, now);
    r->ns = ty_strdup(ns);
    r->isvc = ty_strdup(isvc);
    r->name = ty_strdup(jstr(rev, "name"));
    r->isvc_key = ty_asprintf("isvcs/%s/%s", ns, isvc);
    r->desired = ks.min_scale > 0 ? ks.min_scale : 1;
    if (ks.initial_scale > r->desired)
        r->desired = ks.initial_scale;
    ty_map_puts(&c->revs, key, r);
    return r;
}

static void rev_free(rev_state *r)
{
    if (!r)
        return;
    ty_kpa_free(&r->kpa);
    free(r->ns);
    free(r->isvc);
    free(r->name);
    free(r->isvc_key);
    free(r);
}

/* Why a revision's pod failed, or NULL: a container that ended in an error (Knative marks
 * the revision failed at the first such exit before it was ever ready), or one waiting in an
 * error (not ContainerCreating). */
static char *pod_failure(const json_t *pod)
{
    size_t i;
    json_t *cs;
    json_array_foreach(json_object_get(json_object_get(pod, "status"), "containerStatuses"), i, cs)
    {
        json_t *state = json_object_get(cs, "state");
        json_t *term = json_object_get(state, "terminated");
        if (!term)
            term = json_object_get(json_object_get(cs, "lastState"), "terminated");
        json_t *code = json_object_get(term, "exitCode");
        if (json_is_integer(code) && json_integer_value(code) != 0)
            return ty_asprintf("Container failed with: %s (exit code %lld)",
                               jstr(term, "reason") ? jstr(term, "reason") : "Error",
                               (long long)json_integer_value(code));
        json_t *waiting = json_object_get(state, "waiting");
        const char *reason = jstr(waiting, "reason");
        if (reason && strcmp(reason, "ContainerCreating") != 0 &&
            strcmp(reason, "PodInitializing") != 0 && strcmp(reason, "CrashLoopBackOff") != 0)
            return ty_asprintf("%s: %s", reason, jstr(waiting, "message") ? jstr(waiting, "message") : "");
    }
    if (strcmp(ty_pod_phase(pod), "Failed") == 0)
        return ty_asprintf("pod %s failed", ty_obj_name(pod));
    return NULL;
}

static bool pod_ready(const json_t *pod)
{
    const json_t *c = ty_pod_condition(pod, "Ready");
    return c && strcmp(jstr(c, "status") ? jstr(c, "status") : "", "True") == 0 &&
           !ty_obj_deleting(pod);
}

static json_t *condition(const char *type, bool ok, const char *reason, const char *msg,
                         const json_t *old_status)
{
    /* lastTransitionTime moves only when the status flips. */
    const char *st = ok ? "True" : "False";
    const char *when = NULL;
    size_t i;
    json_t *oc;
    json_array_foreach(json_object_get(old_status, "conditions"), i, oc)
    if (strcmp(jstr(oc, "type") ? jstr(oc, "type") : "", type) == 0 &&
        strcmp(jstr(oc, "status") ? jstr(oc, "status") : "", st) == 0)
        when = jstr(oc, "lastTransitionTime");
    char now[40];
    ty_time_format_rfc3339(ty_time_now_ns(), now, sizeof now, 0);
    json_t *c = json_pack("{s:s, s:s, s:s}", "type", type, "status", st, "lastTransitionTime",
                          when ? when : now);
    if (reason)
        json_object_set_new(c, "reason", json_string(reason));
    if (msg)
        json_object_set_new(c, "message", json_string(msg));
    return c;
}

/* ---- reconcile ---- */

static json_t *new_pod(const json_t *isvc, const json_t *pred, const char *rev,
                       const json_t *podspec)
{
    const char *name = ty_obj_name(isvc);
    TY_AUTOFREE char *prefix = ty_asprintf("%s-deployment-", rev);
    TY_AUTOFREE char *pod_name = ty_api_generate_name(prefix);
    json_t *labels = json_is_object(json_object_get(pred, "labels"))
                         ? json_deep_copy(json_object_get(pred, "labels"))
                         : json_object();
    json_object_set_new(labels, TY_SERVING_LABEL_ISVC, json_string(name));
    json_object_set_new(labels, TY_SERVING_LABEL_COMPONENT, json_string("predictor"));
    json_object_set_new(labels, TY_SERVING_LABEL_REVISION, json_string(rev));
    TY_AUTOFREE char *config = ty_asprintf("%s-predictor", name);
    json_object_set_new(labels, CONFIG_LABEL, json_string(config));
    json_t *ann = json_is_object(json_object_get(pred, "annotations"))
                      ? json_deep_copy(json_object_get(pred, "annotations"))
                      : json_object();
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:o, s:o, s:[{s:s, s:s, s:s, s:s, s:b, s:b}]}, s:O}",
                     "apiVersion", "v1", "kind", "Pod", "metadata", "name", pod_name, "namespace",
                     ty_obj_namespace(isvc), "labels", labels, "annotations", ann,
                     "ownerReferences", "apiVersion", API_VERSION, "kind", "InferenceService",
                     "name", name, "uid", ty_obj_uid(isvc) ? ty_obj_uid(isvc) : "", "controller",
                     1, "blockOwnerDeletion", 1, "spec", podspec);
}

static int reconcile(void *ctx, const char *key, ty_error *fail)
{
    ty_servingctl *c = ctx;
    char ns[256], name[256];
    if (sscanf(key, "isvcs/%255[^/]/%255s", ns, name) != 2)
        return 0;
    int64_t now = ty_time_mono_ns();
    json_t *isvc = ty_store_get(c->store, "inferenceservices", ns, name);
    if (!isvc || ty_obj_deleting(isvc)) {
        if (c->gw)
            ty_gateway_set_route(c->gw, ns, name, NULL);
        /* Its revisions' autoscalers go; its pods go with it (ownerReferences). */
        size_t it = 0;
        const ty_map_slot *slot;
        TY_AUTOFREE char *prefix = ty_asprintf("%s/", ns);
        while (ty_map_next(&c->revs, &it, &slot)) {
            rev_state *r = slot->value;
            if (strcmp(r->ns, ns) == 0 && strcmp(r->isvc, name) == 0) {
                ty_map_dels(&c->revs, slot->key);
                rev_free(r);
                it = 0;
            }
        }
        json_decref(isvc);
        return 0;
    }
    json_t *pred = json_object_get(json_object_get(isvc, "spec"), "predictor");
    json_t *old_status = json_object_get(isvc, "status");
    json_t *status = json_is_object(old_status) ? json_deep_copy(old_status) : json_object();
    json_t *sann = json_object_get(status, "annotations");
    if (!json_is_object(sann)) {
        sann = json_object();
        json_object_set_new(status, "annotations", sann);
    }
    json_t *revs = json_loads(jstr(sann, REVISIONS_ANNOTATION) ? jstr(sann, REVISIONS_ANNOTATION)
                                                               : "[]", 0, NULL);
    if (!json_is_array(revs)) {
        json_decref(revs);
        revs = json_array();
    }
    json_t *comp = json_object_get(json_object_get(status, "components"), "predictor");
    const char *rolled_name = jstr(comp, "latestRolledoutRevision");
    TY_AUTOFREE char *rolled = rolled_name ? ty_strdup(rolled_name) : NULL;
    TY_AUTOFREE char *prev_rolled = jstr(comp, "previousRolledoutRevision")
                                        ? ty_strdup(jstr(comp, "previousRolledoutRevision"))
                                        : NULL;

    /* A new revision when the predictor changed. */
    json_t *rspec = revision_spec(isvc);
    TY_AUTOFREE char *hash = hash_of(rspec);
    json_t *latest = json_array_get(revs, json_array_size(revs) - 1);
    if (!latest || strcmp(jstr(latest, "hash") ? jstr(latest, "hash") : "", hash) != 0) {
        int n = 1;
        if (latest) {
            const char *ln = jstr(latest, "name");
            const char *dash = ln ? strrchr(ln, '-') : NULL;
            n = dash ? atoi(dash + 1) + 1 : (int)json_array_size(revs) + 1;
        }
        json_t *rev = json_pack("{s:o, s:s, s:O, s:b}", "name", json_sprintf("%s-predictor-%05d", name, n),
                                "hash", hash, "spec", rspec, "ready", 0);
        json_array_append_new(revs, rev);
        latest = rev;
    }
    json_decref(rspec);
    const char *latest_name = jstr(latest, "name");
    /* Only the rolled-out revision and the latest are kept: traffic reaches no other. */
    for (size_t i = json_array_size(revs); i-- > 0;) {
        const char *rn = jstr(json_array_get(revs, i), "name");
        if (json_array_get(revs, i) != latest && (!rolled || strcmp(rn, rolled) != 0))
            json_array_remove(revs, i);
    }
    latest = json_array_get(revs, json_array_size(revs) - 1);
    json_t *rolled_rev = NULL;
    for (size_t i = 0; i + 1 < json_array_size(revs); i++)
        rolled_rev = json_array_get(revs, i);

    /* Each revision's pods: ready ones, failures. */
    json_t *owned = ty_store_list_owned(c->store, "pods", ty_obj_uid(isvc));
    int rc = 0;
    ty_error err = TY_ERROR_INIT;
    size_t nrev = json_array_size(revs);
    json_t *podspecs[2] = {NULL, NULL};
    char *why_not[2] = {NULL, NULL};
    int32_t ready_count[2] = {0, 0};
    for (size_t r = 0; r < nrev && r < 2; r++) {
        json_t *rev = json_array_get(revs, r);
        const char *rn = jstr(rev, "name");
        podspecs[r] = revision_podspec(c, ns, name, json_object_get(rev, "spec"), &why_not[r]);
        size_t i;
        json_t *pod;
        json_array_foreach(owned, i, pod)
        {
            const char *pr = ty_obj_label(pod, TY_SERVING_LABEL_REVISION);
            if (!pr || strcmp(pr, rn) != 0)
                continue;
            if (pod_ready(pod))
                ready_count[r]++;
            else if (!json_is_true(json_object_get(rev, "ready")) && !why_not[r]) {
                char *f = pod_failure(pod);
                if (f)
                    why_not[r] = f;
            }
        }
        if (ready_count[r] > 0)
            json_object_set_new(rev, "ready", json_true());
        /* A failure sticks to the revision (its pods go): as in Knative, a new revision is
         * what tries again. A revision's spec failing to make pods (no runtime yet) is
         * looked at again on each reconcile. */
        if (json_is_true(json_object_get(rev, "ready"))) {
            json_object_del(rev, "failed");
        } else if (why_not[r]) {
            json_object_set_new(rev, "failed", json_string(why_not[r]));
            json_object_set_new(rev, "specFailed", json_boolean(!podspecs[r]));
        } else if (json_is_true(json_object_get(rev, "specFailed"))) {
            json_object_del(rev, "failed");
            json_object_del(rev, "specFailed");
        }
    }
    size_t li = nrev - 1;
    bool latest_ready = json_is_true(json_object_get(latest, "ready"));
    bool latest_failed = json_object_get(latest, "failed") != NULL;

    /* Traffic (KServe's rollout): the latest gets it all once ready, or its canary share
     * beside the revision rolled out before it; an unready latest gets none. */
    json_t *ctp = json_object_get(pred, "canaryTrafficPercent");
    int64_t canary = json_is_integer(ctp) ? json_integer_value(ctp) : 100;
    int percent[2] = {0, 0};
    if (!rolled_rev) {
        percent[li] = 100;
    } else if (!latest_ready || latest_failed) {
        percent[0] = 100;
    } else if (canary < 100) {
        percent[li] = (int)canary;
        percent[0] = 100 - (int)canary;
    } else {
        percent[li] = 100;
    }
    if (percent[li] == 100 && latest_ready && (!rolled || strcmp(rolled, latest_name) != 0)) {
        free(prev_rolled);
        prev_rolled = rolled ? ty_strdup(rolled) : NULL;
        free(rolled);
        rolled = ty_strdup(latest_name);
    }
    if (!rolled && latest_ready)
        rolled = ty_strdup(latest_name);

    /* Replicas: the KPA's count for each revision with traffic, none for the others. */
    ty_gateway_replica *reps[2] = {NULL, NULL}, *starting[2] = {NULL, NULL};
    size_t nreps[2] = {0, 0}, nstarting[2] = {0, 0};
    for (size_t r = 0; r < nrev && r < 2; r++) {
        json_t *rev = json_array_get(revs, r);
        const char *rn = jstr(rev, "name");
        rev_state *st = rev_get(c, ns, name, rev, now);
        st->seen = true;
        st->ready = ready_count[r];
        /* A latest revision not yet ready still gets its pods: it must become ready. */
        st->routed = percent[r] > 0 || (r == li && !latest_failed);
        int32_t want = st->routed && podspecs[r] ? st->desired : 0;
        reps[r] = ty_calloc(json_array_size(owned) + 1, sizeof *reps[r]);
        starting[r] = ty_calloc(json_array_size(owned) + 1, sizeof *starting[r]);
        int32_t have = 0;
        size_t i;
        json_t *pod;
        json_array_foreach(owned, i, pod)
        {
            const char *pr = ty_obj_label(pod, TY_SERVING_LABEL_REVISION);
            if (!pr || strcmp(pr, rn) != 0 || ty_obj_deleting(pod))
                continue;
            bool surplus = have >= want || ty_pod_terminated(pod);
            if (surplus) {
                if (ty_store_delete(c->store, "pods", ns, ty_obj_name(pod), -1, &err) < 0 &&
                    err.code != TY_STORE_NOT_FOUND)
                    rc = ty_fail(fail, "delete pod %s: %s", ty_obj_name(pod), err.msg);
                ty_error_clear(&err);
                continue;
            }
            have++;
            const char *ip = jstr(json_object_get(pod, "status"), "podIP");
            /* Ready replicas take requests; running ones the gateway may probe itself. */
            bool running = strcmp(ty_pod_phase(pod), "Running") == 0;
            if (ip && (pod_ready(pod) || running)) {
                ty_gateway_replica *rp = pod_ready(pod) ? &reps[r][nreps[r]++]
                                                        : &starting[r][nstarting[r]++];
                snprintf(rp->ip, sizeof rp->ip, "%s", ip);
                rp->port = container_port(json_array_get(
                    json_object_get(json_object_get(pod, "spec"), "containers"), 0));
            }
        }
        for (; have < want; have++) {
            json_t *p = new_pod(isvc, json_object_get(rev, "spec"), rn, podspecs[r]);
            if (ty_store_create(c->store, "pods", p, NULL, &err) < 0)
                rc = ty_fail(fail, "create pod: %s", err.msg);
            ty_error_clear(&err);
            json_decref(p);
        }
    }
    /* Revisions no longer kept: their autoscalers go. */
    {
        size_t it = 0;
        const ty_map_slot *slot;
        while (ty_map_next(&c->revs, &it, &slot)) {
            rev_state *r = slot->value;
            if (strcmp(r->ns, ns) != 0 || strcmp(r->isvc, name) != 0)
                continue;
            bool kept = false;
            for (size_t k = 0; k < nrev; k++)
                kept |= strcmp(jstr(json_array_get(revs, k), "name"), r->name) == 0;
            if (!kept) {
                ty_map_dels(&c->revs, slot->key);
                rev_free(r);
                it = 0;
            }
        }
    }
    /* Pods of revisions no longer kept. */
    {
        size_t i;
        json_t *pod;
        json_array_foreach(owned, i, pod)
        {
            const char *pr = ty_obj_label(pod, TY_SERVING_LABEL_REVISION);
            bool kept = false;
            for (size_t k = 0; pr && k < nrev; k++)
                kept |= strcmp(jstr(json_array_get(revs, k), "name"), pr) == 0;
            if (!kept && !ty_obj_deleting(pod)) {
                if (ty_store_delete(c->store, "pods", ns, ty_obj_name(pod), -1, &err) < 0 &&
                    err.code != TY_STORE_NOT_FOUND)
                    rc = ty_fail(fail, "delete pod %s: %s", ty_obj_name(pod), err.msg);
                ty_error_clear(&err);
            }
        }
    }

    /* The route. */
    if (c->gw) {
        ty_gateway_revision grev[2];
        size_t ng = 0;
        for (size_t r = 0; r < nrev && r < 2; r++) {
            if (percent[r] == 0)
                continue;
            grev[ng++] = (ty_gateway_revision){jstr(json_array_get(revs, r), "name"), percent[r],
                                               reps[r], nreps[r], starting[r], nstarting[r]};
        }
        json_t *cc = json_object_get(pred, "containerConcurrency");
        json_t *to = json_object_get(pred, "timeout");
        ty_gateway_route route = {json_is_integer(cc) ? json_integer_value(cc) : 0,
                                  json_is_integer(to) ? json_integer_value(to) : 60, grev, ng};
        ty_gateway_set_route(c->gw, ns, name, ng ? &route : NULL);
    }

    /* Status, as KServe writes it. */
    TY_AUTOFREE char *url = ty_asprintf("http://%s.%s.%s", name, ns, c->domain);
    json_object_set_new(status, "url", json_string(url));
    TY_AUTOFREE char *internal = ty_asprintf("http://%s-predictor.%s.svc.cluster.local", name, ns);
    json_object_set_new(status, "address", json_pack("{s:s}", "url", internal));
    json_t *traffic = json_array();
    for (size_t r = 0; r < nrev && r < 2; r++) {
        if (percent[r] == 0)
            continue;
        bool is_latest = r == li;
        json_t *t = json_pack("{s:s, s:i, s:b}", "revisionName",
                              jstr(json_array_get(revs, r), "name"), "percent", percent[r],
                              "latestRevision", is_latest);
        if (percent[li] > 0 && percent[li] < 100)
            json_object_set_new(t, "tag", json_string(is_latest ? "latest" : "prev"));
        json_array_append_new(traffic, t);
    }
    const char *latest_ready_name = NULL;
    for (size_t r = 0; r < nrev; r++)
        if (json_is_true(json_object_get(json_array_get(revs, r), "ready")))
            latest_ready_name = jstr(json_array_get(revs, r), "name");
    json_t *pc = json_pack("{s:s, s:o}", "url", url, "traffic", traffic);
    json_object_set_new(pc, "latestCreatedRevision", json_string(latest_name));
    if (latest_ready_name)
        json_object_set_new(pc, "latestReadyRevision", json_string(latest_ready_name));
    if (rolled)
        json_object_set_new(pc, "latestRolledoutRevision", json_string(rolled));
    if (prev_rolled)
        json_object_set_new(pc, "previousRolledoutRevision", json_string(prev_rolled));
    json_object_set_new(status, "components", json_pack("{s:o}", "predictor", pc));
    bool served = latest_ready_name != NULL && (percent[0] + percent[1]) == 100 &&
                  !(nrev == 1 && latest_failed);
    TY_AUTOFREE char *msg = NULL;
    const char *reason = NULL;
    if (latest_failed) {
        reason = "RevisionFailed";
        msg = ty_asprintf("Revision \"%s\" failed with message: %s.", latest_name,
                          jstr(latest, "failed"));
    } else if (!latest_ready) {
        reason = "RevisionMissing";
        msg = ty_asprintf("Revision \"%s\" is not ready yet", latest_name);
    }
    bool pred_ok = latest_ready && !latest_failed;
    json_t *conds = json_array();
    json_array_append_new(conds, condition("IngressReady", served, served ? NULL : reason,
                                           served ? NULL : msg, old_status));
    json_array_append_new(conds, condition("PredictorReady", pred_ok, reason, msg, old_status));
    json_array_append_new(conds, condition("Ready", pred_ok && served, reason, msg, old_status));
    json_object_set_new(status, "conditions", conds);
    json_t *gen = json_object_get(json_object_get(isvc, "metadata"), "generation");
    if (gen)
        json_object_set(status, "observedGeneration", gen);
    TY_AUTOFREE char *revtext = json_dumps(revs, JSON_COMPACT);
    json_object_set_new(sann, REVISIONS_ANNOTATION, json_string(revtext));
    if (!json_equal(status, old_status)) {
        json_t *next = json_copy(isvc);
        json_object_set(next, "status", status);
        if (ty_store_update_status(c->store, "inferenceservices", next, NULL, &err) < 0)
            rc = ty_fail(fail, "write status: %s", err.msg);
        else if (latest_failed && !json_equal(json_object_get(status, "conditions"),
                                              json_object_get(old_status, "conditions")))
            ty_event(c->events, isvc, "Warning", "InternalError", "%s", msg);
        ty_error_clear(&err);
        json_decref(next);
    }
    for (int r = 0; r < 2; r++) {
        json_decref(podspecs[r]);
        free(why_not[r]);
        free(reps[r]);
        free(starting[r]);
    }
    json_decref(status);
    json_decref(revs);
    json_decref(owned);
    json_decref(isvc);
    return rc;
}

/* ---- the autoscaler's clock ---- */

/* Once a second (Knative's tick): each revision's concurrency from the gateway into its
 * windows, and its replicas from the KPA. */
static void on_tick(uv_timer_t *t)
{
    ty_servingctl *c = t->data;
    int64_t now = ty_time_mono_ns();
    size_t it = 0;
    const ty_map_slot *slot;
    while (ty_map_next(&c->revs, &it, &slot)) {
        rev_state *r = slot->value;
        double v = 0;
        if (c->gw && r->kpa.spec.metric == TY_KPA_RPS) {
            /* requests answered over the last second (the tick's period) */
            uint64_t served = ty_gateway_served(c->gw, r->ns, r->isvc, r->name);
            v = (double)(served - r->served);
            r->served = served;
        } else if (c->gw) {
            v = (double)ty_gateway_concurrency(c->gw, r->ns, r->isvc, r->name);
        }
        ty_kpa_record(&r->kpa, now, v);
        r->kpa.spec.reachable = r->routed;
        int32_t want = ty_kpa_step(&r->kpa, r->ready, now, NULL);
        if (want != r->desired) {
            ty_debug("serving: %s/%s: %d -> %d replicas", r->ns, r->name, r->desired, want);
            r->desired = want;
            ty_queue_add(c->queue, r->isvc_key);
        }
    }
}

void ty_servingctl_wake(void *ctx, const char *ns, const char *name)
{
    ty_servingctl *c = ctx;
    int64_t now = ty_time_mono_ns();
    size_t it = 0;
    const ty_map_slot *slot;
    while (ty_map_next(&c->revs, &it, &slot)) {
        rev_state *r = slot->value;
        if (strcmp(r->ns, ns) != 0 || strcmp(r->isvc, name) != 0 || !r->routed)
            continue;
        /* The activator's poke: a request waits, so the revision scales from zero now, not
         * at the next tick; the waiting requests count in its windows from now on. */
        ty_kpa_record(&r->kpa, now,
                      c->gw ? (double)ty_gateway_concurrency(c->gw, ns, name, r->name) : 1);
        int32_t want = ty_kpa_step(&r->kpa, r->ready, now, NULL);
        if (want < 1)
            want = 1;
        if (want != r->desired) {
            r->desired = want;
            ty_queue_add(c->queue, r->isvc_key);
        }
    }
}

ty_servingctl *ty_servingctl_new(uv_loop_t *loop, ty_store *store, ty_gateway *gw,
                                 const char *domain)
{
    ty_servingctl *c = TY_NEW(ty_servingctl);
    c->store = store;
    c->gw = gw;
    c->domain = ty_strdup(domain ? domain : "example.com");
    c->queue = ty_queue_new(loop, "serving", reconcile, c);
    c->events = ty_recorder_new(store, "v1beta1Controllers");
    ty_kpa_config_default(&c->kpa_cfg);
    /* Tests shorten Knative's cluster-wide scale-to-zero grace period (30 s). */
    const char *g = getenv("TRAINYARD_SCALE_TO_ZERO_GRACE_MS");
    if (g)
        c->kpa_cfg.scale_to_zero_grace_period_ns = atoll(g) * 1000000LL;
    c->watch_ids = ty_queue_watch_kinds(store, TY_WATCHED_BY_SERVING, on_event, c, &c->nwatch);
    uv_timer_init(loop, &c->tick);
    c->tick.data = c;
    uv_timer_start(&c->tick, on_tick, 1000, 1000);
    uv_unref((uv_handle_t *)&c->tick);
    return c;
}

void ty_servingctl_metrics(const ty_servingctl *c, ty_buf *out)
{
    static const char *const names[] = {"trainyard_serving_replicas_desired",
                                        "trainyard_serving_replicas_ready"};
    static const char *const helps[] = {"Replicas the autoscaler wants for a revision.",
                                        "Ready replicas of a revision."};
    for (int m = 0; m < 2; m++) {
        ty_buf_addf(out, "# HELP %s %s\n# TYPE %s gauge\n", names[m], helps[m], names[m]);
        size_t it = 0;
        const ty_map_slot *slot;
        while (ty_map_next(&c->revs, &it, &slot)) {
            const rev_state *r = slot->value;
            ty_buf_addf(out, "%s{namespace=\"%s\",inferenceservice=\"%s\",revision=\"%s\"} %d\n",
                        names[m], r->ns, r->isvc, r->name, m == 0 ? r->desired : r->ready);
        }
    }
}

void ty_servingctl_resync(ty_servingctl *c)
{
    ty_queue_add_all(c->queue, c->store, "inferenceservices", "isvcs/");
}

static void on_tick_closed(uv_handle_t *h)
{
    ty_servingctl *c = h->data;
    size_t it = 0;
    const ty_map_slot *slot;
    while (ty_map_next(&c->revs, &it, &slot))
        rev_free(slot->value);
    ty_map_free(&c->revs);
    free(c->domain);
    free(c);
}

void ty_servingctl_free(ty_servingctl *c)
{
    if (!c)
        return;
    ty_queue_unwatch_kinds(c->store, c->watch_ids, c->nwatch);
    ty_queue_free(c->queue);
    ty_recorder_free(c->events);
    uv_timer_stop(&c->tick);
    uv_close((uv_handle_t *)&c->tick, on_tick_closed);
}
