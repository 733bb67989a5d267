/* kubeflow.org/v1: PyTorchJob and TFJob, as the Kubeflow Training Operator v1 defines them.
 *
 * Defaults follow pkg/apis/kubeflow.org/v1/{pytorch,tensorflow}_defaults.go and
 * defaulting_utils.go; rules follow the operator's validating webhooks
 * (pkg/webhooks/pytorch and pkg/webhooks/tensorflow) plus the core Pod rules that matter for a
 * replica's template (container names, env names, requests <= limits), which the API server
 * would apply when the operator creates the pods: we report them at admission instead, with
 * the job's own field paths. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"
#include "base/mem.h"
#include "base/quantity.h"

/* The OpenAPI document, embedded at build time (the Makefile makes this object depend on the
 * JSON file); NUL-terminated so jansson can read it as a string. */
__asm__(".section .rodata\n"
        ".global ty_schema_kubeflow_v1\n"
        "ty_schema_kubeflow_v1:\n"
        ".incbin \"src/api/schemas/kubeflow.org_v1.json\"\n"
        ".byte 0\n"
        ".previous");
extern const char ty_schema_kubeflow_v1[];

static json_t *schema_doc(void)
{
    static json_t *doc;
    if (!doc)
        doc = ty_schema_doc_load(ty_schema_kubeflow_v1);
    return doc;
}

static const json_t *pytorchjob_schema(void)
{
    static json_t *s;
    if (!s)
        s = ty_schema_inline(schema_doc(), "org.kubeflow.v1.PyTorchJob");
    return s;
}

static const json_t *tfjob_schema(void)
{
    static json_t *s;
    if (!s)
        s = ty_schema_inline(schema_doc(), "org.kubeflow.v1.TFJob");
    return s;
}

/* What differs between the two kinds. */
typedef struct job_kind {
    const char *specs_field;        /* "pytorchReplicaSpecs" */
    const char *container;          /* default container: "pytorch" */
    const char *port_name;          /* default port: "pytorchjob-port" */
    int port;                       /* 23456 */
    const char *restart_policy;     /* default restartPolicy of a replica */
    const char *const *types;       /* replica types, canonical spelling */
    size_t ntypes;
} job_kind;

/* Replica types (pytorch_types.go, tensorflow_types.go), sorted as error messages list them. */
static const char *const pytorch_types[] = {"Master", "Worker"};
static const char *const tf_types[] = {"Chief", "Evaluator", "Master", "PS", "Worker"};

static const job_kind pytorch_kind = {
    .specs_field = "pytorchReplicaSpecs",
    .container = "pytorch",          /* PytorchJobDefaultContainerName */
    .port_name = "pytorchjob-port",  /* PytorchJobDefaultPortName */
    .port = 23456,                   /* PytorchJobDefaultPort */
    .restart_policy = "OnFailure",   /* PytorchJobDefaultRestartPolicy */
    .types = pytorch_types,
    .ntypes = TY_ARRAY_LEN(pytorch_types),
};

static const job_kind tf_kind = {
    .specs_field = "tfReplicaSpecs",
    .container = "tensorflow",       /* TFJobDefaultContainerName */
    .port_name = "tfjob-port",       /* TFJobDefaultPortName */
    .port = 2222,                    /* TFJobDefaultPort */
    .restart_policy = "Never",       /* TFJobDefaultRestartPolicy */
    .types = tf_types,
    .ntypes = TY_ARRAY_LEN(tf_types),
};

/* Values of runPolicy.managedBy the operator accepts (pkg/common/util ValidateManagedBy). */
static const char *const managed_by[] = {"kubeflow.org/training-operator",
                                         "kueue.x-k8s.io/multikueue"};

/* ---------- defaults ---------- */

/* The member `key` of `obj` as an object, created when absent; NULL when it is something else
 * (the schema walk has reported that). */
static json_t *object_member(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        v = json_object();
        json_object_set_new(obj, key, v);
    }
    return json_is_object(v) ? v : NULL;
}

static json_t *get_path(json_t *v, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n && v; i++)
        v = json_object_get(v, keys[i]);
    return v;
}

/* setTypeNameToCamelCase (defaulting_utils.go): a key equal to a replica type but for case is
 * renamed to the canonical spelling, unless that spelling is already taken (the operator would
 * then silently drop one of the two; we keep both and the rules report the duplicate). */
static void normalise_types(json_t *specs, const job_kind *k)
{
    for (size_t t = 0; t < k->ntypes; t++) {
        const char *canon = k->types[t];
        if (json_object_get(specs, canon))
            continue;
        const char *key;
        json_t *val;
        json_object_foreach(specs, key, val) {
            if (strcasecmp(key, canon) == 0) {
                json_object_set(specs, canon, val);
                json_object_del(specs, key);
                break;
            }
        }
    }
}

/* The defaults both kinds share (SetDefaults_PyTorchJob, SetDefaults_TFJob). */
static json_t *default_job(json_t *obj, const job_kind *k)
{
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return NULL;
    /* runPolicy.cleanPodPolicy: None (both kinds; RunPolicy is a struct, so it appears). */
    json_t *run = object_member(spec, "runPolicy");
    if (run && !json_object_get(run, "cleanPodPolicy"))
        json_object_set_new(run, "cleanPodPolicy", json_string("None"));
    json_t *specs = json_object_get(spec, k->specs_field);
    if (!json_is_object(specs))
        return spec;
    normalise_types(specs, k);
    const char *key;
    json_t *rs;
    json_object_foreach(specs, key, rs) {
        if (!json_is_object(rs))
            continue;
        /* setDefaultReplicas: 1. */
        if (!json_object_get(rs, "replicas"))
            json_object_set_new(rs, "replicas", json_integer(1));
        /* setDefaultRestartPolicy: the kind's default when unset or "". */
        const json_t *rp = json_object_get(rs, "restartPolicy");
        if (!rp || (json_is_string(rp) && !*json_string_value(rp)))
            json_object_set_new(rs, "restartPolicy", json_string(k->restart_policy));
        /* setDefaultPort is applied to the pods instead (controllers/kubeflow.c: the stored
         * job stays as written, so `kubectl apply` of an unchanged manifest is a no-op). */
    }
    return spec;
}

static void pytorchjob_defaults(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    json_t *spec = default_job(obj, &pytorch_kind);
    if (!spec)
        return;
    json_t *elastic = json_object_get(spec, "elasticPolicy");
    if (json_is_object(elastic)) {
        /* setElasticPolicy (pytorch_defaults.go): min and max default to each other, or both
         * to the Worker replicas (already defaulted to 1) when neither is set. */
        json_t *mn = json_object_get(elastic, "minReplicas");
        json_t *mx = json_object_get(elastic, "maxReplicas");
        if (mn && !mx)
            json_object_set(elastic, "maxReplicas", mn);
        else if (mx && !mn)
            json_object_set(elastic, "minReplicas", mx);
        else if (!mn && !mx) {
            static const char *const to_workers[] = {"pytorchReplicaSpecs", "Worker", "replicas"};
            json_t *w = get_path(spec, to_workers, 3);
            if (json_is_integer(w)) {
                json_object_set_new(elastic, "minReplicas", json_integer(json_integer_value(w)));
                json_object_set_new(elastic, "maxReplicas", json_integer(json_integer_value(w)));
            }
        }
    }
    /* setDefaultNprocPerNode (pytorch_defaults.go): "auto" unless the deprecated
     * elasticPolicy.nProcPerNode is set. */
    bool elastic_nproc = json_is_object(elastic) && json_object_get(elastic, "nProcPerNode");
    if (!elastic_nproc && !json_object_get(spec, "nprocPerNode"))
        json_object_set_new(spec, "nprocPerNode", json_string("auto"));
}

static void tfjob_defaults(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    json_t *spec = default_job(obj, &tf_kind);
    /* successPolicy: "" (SuccessPolicyDefault, tensorflow_defaults.go). */
    if (spec && !json_object_get(spec, "successPolicy"))
        json_object_set_new(spec, "successPolicy", json_string(""));
}

/* ---------- rules ---------- */

/* Position of `obj[key]`, or of `obj` itself (at `pos`) when the member is absent. */
static ty_pos member_or(ty_schema_ctx *c, const json_t *obj, const char *key, ty_pos pos)
{
    if (json_object_get(obj, key)) {
        ty_pos p = ty_pos_member(c, obj, key);
        if (p.line)
            return p;
    }
    return pos;
}

/* Resources Kubernetes never overcommits: everything but cpu, memory, ephemeral-storage and
 * hugepages-* (extended resources such as nvidia.com/gpu), whose request must equal the limit. */
static bool overcommitable(const char *name)
{
    return strcmp(name, "cpu") == 0 || strcmp(name, "memory") == 0 ||
           strcmp(name, "ephemeral-storage") == 0 || strncmp(name, "hugepages-", 10) == 0;
}

/* Core ResourceRequirements rules (ValidateResourceRequirements): quantities are not
 * negative, a request is at most its limit, and an extended resource's request equals its
 * limit, which must be set. */
static void check_resources(ty_schema_ctx *c, json_t *res, ty_pos pos, ty_buf *path)
{
    json_t *req = json_object_get(res, "requests");
    json_t *lim = json_object_get(res, "limits");
    static const char *const fields[] = {"limits", "requests"};
    for (size_t f = 0; f < 2; f++) {
        json_t *map = json_object_get(res, fields[f]);
        if (!json_is_object(map))
            continue;
        const char *name;
        json_t *v;
        json_object_foreach(map, name, v) {
            ty_quantity q;
            if (ty_quantity_from_json(v, &q, NULL) < 0 || q.milli >= 0)
                continue;
            size_t l = ty_path_key(path, fields[f]);
            ty_path_key(path, name);
            ty_fe_invalid(c, path->data, ty_pos_member(c, map, name), v,
                          "must be greater than or equal to 0");
            ty_path_pop(path, l);
        }
    }
    if (!json_is_object(req))
        return;
    const char *name;
    json_t *rv;
    json_object_foreach(req, name, rv) {
        json_t *lv = json_is_object(lim) ? json_object_get(lim, name) : NULL;
        ty_quantity rq, lq;
        if (ty_quantity_from_json(rv, &rq, NULL) < 0)
            continue;
        size_t l1 = ty_path_key(path, "requests");
        ty_path_key(path, name);
        if (!lv) {
            if (!overcommitable(name) && strchr(name, '/'))
                ty_fe_required(c, path->data, member_or(c, res, "limits", pos),
                               "limit must be set for non overcommitable resources");
        } else if (ty_quantity_from_json(lv, &lq, NULL) == 0) {
            TY_AUTOFREE char *limit = json_is_string(lv) ? ty_strdup(json_string_value(lv))
                                                         : ty_value_repr(lv);
            if (!overcommitable(name) && rq.milli != lq.milli)
                ty_fe_invalid(c, path->data, ty_pos_member(c, req, name), rv,
                              "must be equal to %s limit of %s", name, limit);
            else if (rq.milli > lq.milli)
                ty_fe_invalid(c, path->data, ty_pos_member(c, req, name), rv,
                              "must be less than or equal to %s limit of %s", name, limit);
        }
        ty_path_pop(path, l1);
    }
}

/* IsValidPortName (IANA service names): at most 15 characters of [a-z0-9-], with a letter,
 * no "--", no hyphen at either end. */
static const char *check_port_name(const char *s)
{
    size_t n = strlen(s);
    bool letter = false;
    if (n > 15)
        return "must be no more than 15 characters";
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)";
        letter = letter || (s[i] >= 'a' && s[i] <= 'z');
    }
    if (strstr(s, "--"))
        return "must not contain consecutive hyphens";
    if (!letter)
        return "must contain at least one letter (a-z)";
    if (s[0] == '-' || s[n - 1] == '-')
        return "must not begin or end with a hyphen";
    return NULL;
}

static void check_ports(ty_schema_ctx *c, json_t *ports, ty_buf *path)
{
    json_t *seen = json_object();
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p) {
        json_t *name = json_object_get(p, "name");
        if (!json_is_string(name) || !*json_string_value(name))
            continue;
        const char *s = json_string_value(name);
        size_t l = ty_path_key(path, "ports");
        ty_path_index(path, i);
        ty_path_key(path, "name");
        const char *why = check_port_name(s);
        if (why)
            ty_fe_invalid(c, path->data, ty_pos_member(c, p, "name"), name, "%s", why);
        else if (json_object_get(seen, s))
            ty_fe_duplicate(c, path->data, ty_pos_member(c, p, "name"), name);
        json_object_set_new(seen, s, json_true());
        ty_path_pop(path, l);
    }
    json_decref(seen);
}

/* One container's own rules: name, port names, env names, mounts, resources. `names` collects names seen in the
 * pod so duplicates are caught across initContainers and containers, as Kubernetes does. */
static void check_container(ty_schema_ctx *c, json_t *ct, ty_pos pos, ty_buf *path, json_t *names,
                            const json_t *volumes)
{
    json_t *name = json_object_get(ct, "name");
    if (json_is_string(name)) {
        size_t l = ty_path_key(path, "name");
        const char *s = json_string_value(name);
        const char *why = *s ? ty_check_dns1123_label(s) : NULL;
        if (!*s)
            ty_fe_required(c, path->data, pos, NULL);
        else if (why)
            ty_fe_invalid(c, path->data, ty_pos_member(c, ct, "name"), name, "%s", why);
        else if (json_object_get(names, s))
            ty_fe_duplicate(c, path->data, ty_pos_member(c, ct, "name"), name);
        json_object_set_new(names, s, json_true());
        ty_path_pop(path, l);
    }
    json_t *env = json_object_get(ct, "env");
    size_t i;
    json_t *e;
    json_array_foreach(env, i, e) {
        json_t *en = json_object_get(e, "name");
        if (!json_is_string(en))
            continue;
        size_t l1 = ty_path_key(path, "env");
        size_t l2 = ty_path_index(path, i);
        size_t l3 = ty_path_key(path, "name");
        const char *why = ty_check_env_name(json_string_value(en));
        if (!*json_string_value(en))
            ty_fe_required(c, path->data, ty_pos_index(c, env, i), NULL);
        else if (why)
            ty_fe_invalid(c, path->data, ty_pos_member(c, e, "name"), en, "%s", why);
        ty_path_pop(path, l3);
        ty_path_pop(path, l2);
        ty_path_pop(path, l1);
    }
    check_ports(c, json_object_get(ct, "ports"), path);
    /* A mount names a volume of the pod. */
    json_t *mounts = json_object_get(ct, "volumeMounts");
    json_t *vm;
    json_array_foreach(mounts, i, vm) {
        json_t *vn = json_object_get(vm, "name");
        if (!json_is_string(vn) || json_object_get(volumes, json_string_value(vn)))
            continue;
        size_t l1 = ty_path_key(path, "volumeMounts");
        ty_path_index(path, i);
        ty_path_key(path, "name");
        ty_field_errors_add(c->errs, path->data, ty_pos_member(c, vm, "name"),
                            "Not found: \"%s\"", json_string_value(vn));
        ty_path_pop(path, l1);
    }
    ty_check_volume_mounts(c, ct, path);
    json_t *res = json_object_get(ct, "resources");
    if (json_is_object(res)) {
        size_t l = ty_path_key(path, "resources");
        check_resources(c, res, ty_pos_member(c, ct, "resources"), path);
        ty_path_pop(path, l);
    }
}

/* The rules Kubernetes applies to a pod (volume names, then containers' names, env, ports,
 * mounts and resources), checked on a replica's template, which upstream's API server only
 * checks when the operator creates the replica's pods. `path` ends at the replica. */
void ty_check_pod_template(ty_schema_ctx *c, json_t *tmpl, ty_buf *path)
{
    json_t *pod = json_object_get(tmpl, "spec");
    size_t first = c->errs->count;
    size_t l0 = path->len;
    ty_path_key(path, "template");
    size_t lmeta = ty_path_key(path, "metadata");
    ty_check_meta_labels(c, json_object_get(tmpl, "metadata"), path);
    ty_path_pop(path, lmeta);
    ty_path_key(path, "spec");
    json_t *volumes = json_object();
    json_t *vols = json_object_get(pod, "volumes");
    size_t vi;
    json_t *vol;
    json_array_foreach(vols, vi, vol) {
        json_t *vn = json_object_get(vol, "name");
        if (!json_is_string(vn))
            continue;
        const char *s = json_string_value(vn);
        const char *why = ty_check_dns1123_label(s);
        size_t l1 = ty_path_key(path, "volumes");
        ty_path_index(path, vi);
        ty_path_key(path, "name");
        if (!*s)
            ty_fe_required(c, path->data, ty_pos_index(c, vols, vi), NULL);
        else if (why)
            ty_fe_invalid(c, path->data, ty_pos_member(c, vol, "name"), vn, "%s", why);
        else if (json_object_get(volumes, s))
            ty_fe_duplicate(c, path->data, ty_pos_member(c, vol, "name"), vn);
        json_object_set_new(volumes, s, json_true());
        ty_path_pop(path, l1);
    }
    json_t *names = json_object();
    static const char *const lists[] = {"initContainers", "containers"};
    for (size_t li = 0; li < 2 && json_is_object(pod); li++) {
        json_t *arr = json_object_get(pod, lists[li]);
        size_t i;
        json_t *ct;
        json_array_foreach(arr, i, ct) {
            if (!json_is_object(ct))
                continue;
            size_t l1 = ty_path_key(path, lists[li]);
            ty_path_index(path, i);
            check_container(c, ct, ty_pos_index(c, arr, i), path, names, volumes);
            ty_check_probes(c, ct, path, li == 0);
            ty_path_pop(path, l1);
        }
    }
    json_decref(names);
    json_decref(volumes);
    ty_path_pop(path, l0);
    for (size_t i = first; i < c->errs->count; i++)
        c->errs->items[i].pod_rule = true;
}

/* The webhook's rules for one replica (validatePyTorchReplicaSpecs, validateTFReplicaSpecs):
 * containers present, images set, the default container present; for a PyTorchJob a Master
 * of exactly one replica (an unset count too: the webhook sees the job before defaults) and
 * other types of at least one. `path` ends at the replica. */
static void check_replica(ty_schema_ctx *c, const char *type, json_t *rs, ty_pos pos,
                          ty_buf *path, const job_kind *k)
{
    json_t *tmpl = json_object_get(rs, "template");
    json_t *pod = json_object_get(tmpl, "spec");
    json_t *containers = json_object_get(pod, "containers");
    ty_pos cpos = member_or(c, pod, "containers",
                            member_or(c, tmpl, "spec", member_or(c, rs, "template", pos)));
    size_t l0 = path->len;
    ty_path_key(path, "template");
    ty_path_key(path, "spec");
    ty_path_key(path, "containers");
    /* A mistyped list, or one missing from a pod spec that is there (PodSpec requires
     * containers), is the schema walk's to report. */
    bool walked = json_is_array(containers) || (!containers && !json_is_object(pod));
    if (walked && json_array_size(containers) == 0)
        ty_fe_required(c, path->data, cpos, "must be specified");
    bool found = false;
    size_t i;
    json_t *ct;
    json_array_foreach(containers, i, ct) {
        if (!json_is_object(ct))
            continue;
        const char *name = json_string_value(json_object_get(ct, "name"));
        found = found || (name && strcmp(name, k->container) == 0);
        const json_t *image = json_object_get(ct, "image");
        if (!image || (json_is_string(image) && !*json_string_value(image))) {
            size_t l1 = ty_path_index(path, i);
            ty_path_key(path, "image");
            ty_fe_required(c, path->data,
                           member_or(c, ct, "image", ty_pos_index(c, containers, i)),
                           "must be required");
            ty_path_pop(path, l1);
        }
    }
    if (walked && !found) {
        TY_AUTOFREE char *d = ty_asprintf("must have at least one container with name %s",
                                          k->container);
        ty_fe_required(c, path->data, cpos, d);
    }
    ty_path_pop(path, l0);

    if (k != &pytorch_kind)
        return;
    json_t *replicas = json_object_get(rs, "replicas");
    ty_pos rpos = member_or(c, rs, "replicas", pos);
    size_t l = ty_path_key(path, "replicas");
    if (strcmp(type, "Master") == 0) {
        if (!json_is_integer(replicas) || json_integer_value(replicas) != 1)
            ty_fe_forbidden(c, path->data, rpos, "must be 1");
    } else if (json_is_integer(replicas) && json_integer_value(replicas) < 1) {
        ty_fe_forbidden(c, path->data, rpos, "must be at least 1");
    }
    ty_path_pop(path, l);
}

/* The webhook's metadata.name rule (NameIsDNS1035Label: every reason, joined by commas). */
static void check_name(ty_schema_ctx *c, json_t *obj)
{
    json_t *meta = json_object_get(obj, "metadata");
    json_t *name = json_object_get(meta, "name");
    if (!json_is_string(name) || !*json_string_value(name))
        return; /* a missing name is the generic metadata rules' business */
    TY_AUTOFREE char *why = ty_dns1035_label_reasons(json_string_value(name));
    if (why)
        ty_fe_invalid(c, "metadata.name", ty_pos_member(c, meta, "name"), name, "should match: %s",
                      why);
}

/* ValidateRunPolicy: runPolicy.managedBy names a controller the operator knows. */
static void check_run_policy(ty_schema_ctx *c, json_t *spec)
{
    json_t *run = json_object_get(spec, "runPolicy");
    json_t *mb = json_object_get(run, "managedBy");
    if (!json_is_string(mb))
        return;
    for (size_t i = 0; i < TY_ARRAY_LEN(managed_by); i++)
        if (strcmp(json_string_value(mb), managed_by[i]) == 0)
            return;
    ty_fe_unsupported(c, "spec.runPolicy.managedBy", ty_pos_member(c, run, "managedBy"), mb,
                      managed_by, TY_ARRAY_LEN(managed_by));
}

/* pytorchjob_webhook.go validateSpec: an elastic job has workers; the deprecated
 * elasticPolicy.nProcPerNode draws a warning, and an error beside spec.nprocPerNode. */
static void check_elastic(ty_schema_ctx *c, json_t *spec)
{
    json_t *elastic = json_object_get(spec, "elasticPolicy");
    if (!json_is_object(elastic))
        return;
    json_t *specs = json_object_get(spec, "pytorchReplicaSpecs");
    if (json_is_object(specs) && !json_object_get(specs, "Worker"))
        ty_fe_required(c, "spec.pytorchReplicaSpecs[Worker]",
                       ty_pos_member(c, spec, "pytorchReplicaSpecs"),
                       "must be configured if elastic policy is used");
    if (!json_object_get(elastic, "nProcPerNode"))
        return;
    ty_field_errors_warn(c->errs, "spec.elasticPolicy.nProcPerNode is deprecated, use "
                                  "spec.nprocPerNode instead");
    if (json_object_get(spec, "nprocPerNode"))
        ty_fe_forbidden(c, "spec.elasticPolicy.nProcPerNode",
                        ty_pos_member(c, elastic, "nProcPerNode"),
                        "must not be used with spec.nprocPerNode");
}

/* The webhook's rules both kinds share (validatePyTorchJob, validateTFJob), then the pod rules
 * of each replica the webhook accepted (so that one mistake is not reported twice, as a
 * nameless container would be: the webhook already misses the default container). */
static void check_job(ty_schema_ctx *c, json_t *obj, const job_kind *k)
{
    check_name(c, obj);
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return;
    check_run_policy(c, spec);
    if (k == &pytorch_kind)
        check_elastic(c, spec);
    json_t *specs = json_object_get(spec, k->specs_field);
    if (!json_is_object(specs))
        return; /* missing or mistyped: the walk reported it */
    TY_AUTOBUF ty_buf path = TY_BUF_INIT;
    ty_buf_adds(&path, "spec");
    size_t lspecs = ty_path_key(&path, k->specs_field);
    /* Upstream lets an empty map through, to a job that never runs anything. */
    if (json_object_size(specs) == 0)
        ty_fe_required(c, path.data, ty_pos_member(c, spec, k->specs_field),
                       "must have at least one replica spec");
    int chief_or_master = 0;
    const char *type;
    json_t *rs;
    json_object_foreach(specs, type, rs) {
        size_t before = c->errs->count;
        size_t l = ty_path_map_key(&path, type);
        ty_pos kpos = ty_pos_key(c, specs, type);
        const char *canon = NULL;
        for (size_t t = 0; t < k->ntypes; t++)
            if (strcmp(type, k->types[t]) == 0 ||
                (k == &tf_kind && strcasecmp(type, k->types[t]) == 0))
                canon = k->types[t];
        /* The PyTorchJob webhook sees the keys before the operator's defaults would correct
         * their case, so "master" is refused there; a TFJob's "worker" is renamed by the
         * defaults, unless "Worker" is there too. Other TFJob types (which upstream lets
         * through to replicas nothing runs) are refused like PyTorchJob's. */
        if (!canon) {
            json_t *v = json_string(type);
            ty_fe_unsupported(c, path.data, kpos, v, k->types, k->ntypes);
            json_decref(v);
        } else if (strcmp(canon, type) != 0 && json_object_get(specs, canon)) {
            json_t *v = json_string(type);
            ty_fe_duplicate(c, path.data, kpos, v);
            json_decref(v);
        }
        if (canon && (strcmp(canon, "Chief") == 0 || strcmp(canon, "Master") == 0))
            chief_or_master++;
        if (json_is_object(rs)) {
            check_replica(c, type, rs, ty_pos_member(c, specs, type), &path, k);
            if (c->errs->count == before)
                ty_check_pod_template(c, json_object_get(rs, "template"), &path);
        }
        ty_path_pop(&path, l);
    }
    /* tfjob_webhook.go: Chief and Master are the same role; one of them at most. */
    if (k == &tf_kind && chief_or_master > 1)
        ty_fe_forbidden(c, path.data, ty_pos_member(c, spec, k->specs_field),
                        "must not have more than 1 Chief or Master role");
    ty_path_pop(&path, lspecs);
}

static bool is_positive_int(const char *s)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return strtol(s, NULL, 10) > 0;
}

static void pytorchjob_rules(ty_schema_ctx *c, json_t *obj)
{
    check_job(c, obj, &pytorch_kind);
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return;
    json_t *nproc = json_object_get(spec, "nprocPerNode");
    json_t *elastic = json_object_get(spec, "elasticPolicy");
    /* torchrun's --nproc-per-node takes auto, cpu, gpu or a count. */
    if (json_is_string(nproc)) {
        const char *s = json_string_value(nproc);
        if (strcmp(s, "auto") && strcmp(s, "cpu") && strcmp(s, "gpu") && !is_positive_int(s))
            ty_fe_invalid(c, "spec.nprocPerNode", ty_pos_member(c, spec, "nprocPerNode"), nproc,
                          "must be auto, cpu, gpu or a positive integer");
    }
    if (!json_is_object(elastic))
        return;
    /* maxReplicas "cannot be smaller than MinReplicas" (pytorch_types.go). */
    json_t *mn = json_object_get(elastic, "minReplicas");
    json_t *mx = json_object_get(elastic, "maxReplicas");
    if (json_is_integer(mn) && json_is_integer(mx) &&
        json_integer_value(mn) > json_integer_value(mx))
        ty_fe_invalid(c, "spec.elasticPolicy.minReplicas", ty_pos_member(c, elastic, "minReplicas"),
                      mn, "must be less than or equal to maxReplicas (%" JSON_INTEGER_FORMAT ")",
                      json_integer_value(mx));
}

static void tfjob_rules(ty_schema_ctx *c, json_t *obj)
{
    check_job(c, obj, &tf_kind);
}

/* ValidateRunPolicyUpdate: runPolicy.managedBy never changes (unset counts as a value). */
static void job_update_rules(ty_schema_ctx *c, const json_t *obj, const json_t *old)
{
    static const char *const at[] = {"spec", "runPolicy", "managedBy"};
    json_t *now = get_path((json_t *)obj, at, 3);
    json_t *was = get_path((json_t *)old, at, 3);
    if (json_equal(now, was) || (!now && !was))
        return;
    json_t *null = json_string("null"); /* how field.Invalid prints a nil pointer */
    ty_fe_invalid(c, "spec.runPolicy.managedBy", (ty_pos){0, 0}, now ? now : null,
                  "field is immutable");
    json_decref(null);
}

/* The CRDs' x-kubernetes-validations on runPolicy.schedulingPolicy.queue: `self == oldSelf`,
 * a transition rule, so it binds only while both versions have the field. */
static void job_transition_rules(ty_schema_ctx *c, const json_t *obj, const json_t *old)
{
    static const char *const at[] = {"spec", "runPolicy", "schedulingPolicy", "queue"};
    json_t *now = get_path((json_t *)obj, at, 4);
    json_t *was = get_path((json_t *)old, at, 4);
    if (!now || !was || json_equal(now, was))
        return;
    /* A CEL rule's error names the field's type as its value. */
    json_t *type = json_string("string");
    ty_fe_invalid(c, "spec.runPolicy.schedulingPolicy.queue", (ty_pos){0, 0}, type,
                  "spec.runPolicy.schedulingPolicy.queue is immutable");
    json_decref(type);
}

/* ---------- kinds ---------- */

const ty_kind_ops ty_kubeflow_pytorchjob_ops = {
    .schema = pytorchjob_schema,
    .defaults = pytorchjob_defaults,
    .rules = pytorchjob_rules,
    .update_rules = job_update_rules,
    .webhook = "validator.pytorchjob.training-operator.kubeflow.org",
    .transition_rules = job_transition_rules,
};
const ty_kind_ops ty_kubeflow_tfjob_ops = {
    .schema = tfjob_schema,
    .defaults = tfjob_defaults,
    .rules = tfjob_rules,
    .update_rules = job_update_rules,
    .webhook = "validator.tfjob.training-operator.kubeflow.org",
    .transition_rules = job_transition_rules,
};
