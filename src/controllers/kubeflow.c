/* Pods and Services of a Kubeflow job, and the env the operator injects. See kubeflow.h. */
#include "controllers/kubeflow.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/kinds.h"
#include "base/buf.h"
#include "base/mem.h"
#include "controllers/controllers_int.h"

static const char *const pytorch_types[] = {"Master", "Worker", NULL};
/* The TF controller walks its types in this fixed order (chief, eval, master, ps, worker);
 * it decides which failure message wins, so we keep it. */
static const char *const tf_types[] = {"Chief", "Evaluator", "Master", "PS", "Worker", NULL};

/* Default ports: the operator's webhook defaults (PytorchJobDefaultPort, TFJobDefaultPort),
 * applied to the pods here (see add_default_port). */
static const ty_kf_kind kinds[] = {
    {TY_KUBEFLOW_PYTORCH, "PyTorchJob", "pytorchReplicaSpecs", "pytorch", "pytorchjob-port",
     23456, pytorch_types},
    {TY_KUBEFLOW_TF, "TFJob", "tfReplicaSpecs", "tensorflow", "tfjob-port", 2222, tf_types},
};

const ty_kf_kind *ty_kf_kind_of(const json_t *job)
{
    const char *kind = ty_kf_str(job, "kind");
    for (size_t i = 0; i < TY_ARRAY_LEN(kinds); i++)
        if (strcmp(kind, kinds[i].name) == 0)
            return &kinds[i];
    return NULL;
}

ty_kubeflow_kind ty_kubeflow_job_kind(const json_t *job)
{
    const ty_kf_kind *k = ty_kf_kind_of(job);
    return k ? k->kind : TY_KUBEFLOW_UNKNOWN;
}

const char *ty_kf_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

const char *ty_kf_name(const json_t *job)
{
    return ty_kf_str(json_object_get(job, "metadata"), "name");
}

const char *ty_kf_namespace(const json_t *job)
{
    const char *ns = ty_kf_str(json_object_get(job, "metadata"), "namespace");
    return *ns ? ns : "default";
}

const json_t *ty_kf_specs(const json_t *job, const ty_kf_kind *k)
{
    return json_object_get(json_object_get(job, "spec"), k->specs_field);
}

const json_t *ty_kf_spec(const json_t *job, const ty_kf_kind *k, const char *rtype)
{
    const json_t *s = json_object_get(ty_kf_specs(job, k), rtype);
    return json_is_object(s) ? s : NULL;
}

int ty_kf_replicas(const json_t *spec)
{
    json_t *r = json_object_get(spec, "replicas");
    return json_is_integer(r) ? (int)json_integer_value(r) : 1;
}

const char *ty_kf_restart_policy(const json_t *spec)
{
    return ty_kf_str(spec, "restartPolicy");
}

bool ty_kf_is_elastic(const json_t *job)
{
    json_t *e = json_object_get(json_object_get(job, "spec"), "elasticPolicy");
    return e && !json_is_null(e);
}

char *ty_kf_lower(const char *s)
{
    char *l = ty_strdup(s);
    for (char *p = l; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return l;
}

char *ty_kubeflow_replica_name(const char *job_name, const char *rtype, int index)
{
    char *n = ty_asprintf("%s-%s-%d", job_name, rtype, index);
    /* The operator lowercases the type only, and turns '/' into '-'. */
    size_t jl = strlen(job_name);
    for (char *p = n + jl + 1; *p && *p != '-'; p++)
        *p = (char)tolower((unsigned char)*p);
    for (char *p = n; *p; p++)
        if (*p == '/')
            *p = '-';
    return n;
}

json_t *ty_kf_labels(const json_t *job, const ty_kf_kind *k, const char *rtype, int index)
{
    TY_AUTOFREE char *jn = ty_strdup(ty_kf_name(job));
    for (char *p = jn; *p; p++)
        if (*p == '/')
            *p = '-';
    TY_AUTOFREE char *rt = ty_kf_lower(rtype);
    json_t *l = json_object();
    json_object_set_new(l, TY_KUBEFLOW_LABEL_JOB_NAME, json_string(jn));
    /* the operator's name is the registry's (api/kinds.h): the controllers map pods back to
     * their job's kind by it */
    const ty_kind_info *ki = ty_kind_of("kubeflow.org/v1", k->name);
    json_object_set_new(l, TY_KUBEFLOW_LABEL_OPERATOR, json_string(ki->job_operator));
    json_object_set_new(l, TY_KUBEFLOW_LABEL_REPLICA_TYPE, json_string(rt));
    if (index >= 0) {
        char idx[24];
        snprintf(idx, sizeof idx, "%d", index);
        json_object_set_new(l, TY_KUBEFLOW_LABEL_REPLICA_INDEX, json_string(idx));
    }
    return l;
}

static const json_t *main_container(const json_t *spec, const ty_kf_kind *k)
{
    const json_t *cs = json_object_get(
        json_object_get(json_object_get(spec, "template"), "spec"), "containers");
    size_t i;
    const json_t *c;
    json_array_foreach(cs, i, c) {
        if (strcmp(ty_kf_str(c, "name"), k->container) == 0)
            return c;
    }
    return NULL;
}

int ty_kf_port(const json_t *job, const ty_kf_kind *k, const char *rtype)
{
    const json_t *c = main_container(ty_kf_spec(job, k, rtype), k);
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(c, "ports"), i, p) {
        if (strcmp(ty_kf_str(p, "name"), k->port_name) == 0 &&
            json_is_integer(json_object_get(p, "containerPort")))
            return (int)json_integer_value(json_object_get(p, "containerPort"));
    }
    return k->default_port;
}

bool ty_kf_is_master_role(const json_t *job, const ty_kf_kind *k, const char *rtype, int index)
{
    bool has_master = ty_kf_spec(job, k, "Master") != NULL;
    if (k->kind == TY_KUBEFLOW_TF) {
        bool has_chief = has_master || ty_kf_spec(job, k, "Chief") != NULL;
        if (has_chief)
            return strcmp(rtype, "Chief") == 0 || strcmp(rtype, "Master") == 0;
    } else if (has_master) {
        return strcmp(rtype, "Master") == 0;
    }
    return strcmp(rtype, "Worker") == 0 && index == 0;
}

/* ---- env ---- */

static void env_add(json_t *env, const char *name, const char *value)
{
    json_t *e = json_object();
    json_object_set_new(e, "name", json_string(name));
    json_object_set_new(e, "value", json_string(value));
    json_array_append_new(env, e);
}

static void env_addi(json_t *env, const char *name, long long v)
{
    char s[32];
    snprintf(s, sizeof s, "%lld", v);
    env_add(env, name, s);
}

/* The address of replica (rtype, 0..) through the caller's resolver, or `fallback`. */
static char *resolve(ty_kubeflow_addr_fn addr, void *ctx, const char *ns, const char *pod,
                     const char *fallback)
{
    char *a = addr ? addr(ctx, ns, pod) : NULL;
    return a ? a : ty_strdup(fallback);
}

static int total_replicas(const json_t *job, const ty_kf_kind *k)
{
    int total = 0;
    const char *key;
    const json_t *spec;
    json_object_foreach((json_t *)ty_kf_specs(job, k), key, spec)
        total += ty_kf_replicas(spec);
    return total;
}

static const json_t *opt(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* The env the PyTorch controller appends to every container (envvar.go, master.go,
 * elastic.go), in its order. */
static int pytorch_env(const json_t *job, const ty_kf_kind *k, const char *rtype, int index,
                       ty_kubeflow_addr_fn addr, void *ctx, json_t *env, ty_error *err)
{
    const json_t *spec = json_object_get(job, "spec");
    const char *name = ty_kf_name(job);
    const char *ns = ty_kf_namespace(job);
    int total = total_replicas(job, k);
    const json_t *npn = opt(spec, "nprocPerNode");
    /* A non-integer nprocPerNode ("auto", "gpu") counts as 1 in WORLD_SIZE, as the operator
     * does: torchrun then computes the real world size itself. */
    int nproc = 1;
    if (json_is_string(npn)) {
        char *end;
        long v = strtol(json_string_value(npn), &end, 10);
        if (*json_string_value(npn) && *end == '\0')
            nproc = (int)v;
    }

    env_add(env, "PYTHONUNBUFFERED", "1");
    if (ty_kf_spec(job, k, "Master")) {
        int port = ty_kf_port(job, k, "Master");
        if (port < 0)
            return ty_fail(err, "pytorchjob %s: master container %s has no port %s", name,
                           k->container, k->port_name);
        TY_AUTOFREE char *mname = ty_kubeflow_replica_name(name, "Master", 0);
        TY_AUTOFREE char *maddr = resolve(addr, ctx, ns, mname, mname);
        env_addi(env, "MASTER_PORT", port);
        env_addi(env, "PET_MASTER_PORT", port);
        env_add(env, "MASTER_ADDR", maddr);
        env_add(env, "PET_MASTER_ADDR", maddr);
        int rank = index + (strcmp(rtype, "Worker") == 0 ? 1 : 0);
        env_addi(env, "WORLD_SIZE", (long long)total * nproc);
        env_addi(env, "RANK", rank);
        env_addi(env, "PET_NODE_RANK", rank);
    }
    if (json_is_string(npn))
        env_add(env, "PET_NPROC_PER_NODE", json_string_value(npn));

    const json_t *el = opt(spec, "elasticPolicy");
    if (!el) {
        env_addi(env, "PET_NNODES", total);
        return 0;
    }
    /* Rendezvous endpoint: rdzvHost or worker 0, at rdzvPort or the worker's port. */
    const json_t *host = opt(el, "rdzvHost");
    TY_AUTOFREE char *w0 = ty_kubeflow_replica_name(name, "Worker", 0);
    TY_AUTOFREE char *h = json_is_string(host) ? ty_strdup(json_string_value(host))
                                               : resolve(addr, ctx, ns, w0, w0);
    int port;
    if (json_is_integer(opt(el, "rdzvPort")))
        port = (int)json_integer_value(opt(el, "rdzvPort"));
    else if ((port = ty_kf_port(job, k, "Worker")) < 0)
        return ty_fail(err, "pytorchjob %s: worker container %s has no port %s", name,
                       k->container, k->port_name);
    TY_AUTOFREE char *ep = ty_asprintf("%s:%d", h, port);
    env_add(env, "PET_RDZV_ENDPOINT", ep);
    const json_t *backend = opt(el, "rdzvBackend");
    env_add(env, "PET_RDZV_BACKEND", json_is_string(backend) ? json_string_value(backend) : "c10d");

    const json_t *mn = opt(el, "minReplicas"), *mx = opt(el, "maxReplicas");
    if (!mn && !mx) {
        const json_t *w = ty_kf_spec(job, k, "Worker");
        if (!w)
            return ty_fail(err, "pytorchjob %s: elastic policy without a worker spec", name);
        env_addi(env, "PET_NNODES", ty_kf_replicas(w));
    } else {
        /* Defaulting sets both; a job that was not defaulted gets min = max. */
        long long lo = json_integer_value(mn ? mn : mx), hi = json_integer_value(mx ? mx : mn);
        TY_AUTOFREE char *nn = ty_asprintf("%lld:%lld", lo, hi);
        env_add(env, "PET_NNODES", nn);
    }
    if (json_is_integer(opt(el, "maxRestarts")))
        env_addi(env, "PET_MAX_RESTARTS", json_integer_value(opt(el, "maxRestarts")));
    if (json_is_integer(opt(el, "nProcPerNode")))
        env_addi(env, "PET_NPROC_PER_NODE", json_integer_value(opt(el, "nProcPerNode")));
    if (json_is_string(opt(el, "rdzvId")))
        env_add(env, "PET_RDZV_ID", json_string_value(opt(el, "rdzvId")));
    const json_t *conf = opt(el, "rdzvConf");
    if (json_is_array(conf) && json_array_size(conf) > 0) {
        TY_AUTOBUF ty_buf b = TY_BUF_INIT;
        size_t i;
        const json_t *kv;
        json_array_foreach(conf, i, kv) {
            ty_buf_addf(&b, "%s%s=%s", i ? "," : "", ty_kf_str(kv, "key"), ty_kf_str(kv, "value"));
        }
        env_add(env, "PET_RDZV_CONF", b.data);
    }
    if (json_is_true(opt(el, "standalone")))
        env_add(env, "PET_STANDALONE", "");
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* TF_CONFIG as the TF controller marshals it: Go sorts map keys, struct fields keep their
 * order, no spaces. */
static int tf_config(const json_t *job, const ty_kf_kind *k, const char *rtype, int index,
                     ty_kubeflow_addr_fn addr, void *ctx, char **out, ty_error *err)
{
    const char *name = ty_kf_name(job);
    const char *ns = ty_kf_namespace(job);
    const json_t *specs = ty_kf_specs(job, k);
    size_t ntypes = json_object_size(specs), n = 0;
    TY_AUTOFREE const char **types = ty_calloc(ntypes + 1, sizeof *types);
    const char *key;
    const json_t *spec;
    json_object_foreach((json_t *)specs, key, spec)
        types[n++] = key;

    /* Sort by the lowercase name, the key Go sorts on. */
    TY_AUTOFREE char **lower = ty_calloc(ntypes + 1, sizeof *lower);
    for (size_t i = 0; i < n; i++)
        lower[i] = ty_kf_lower(types[i]);
    json_t *cluster = json_object();
    TY_AUTOFREE char **order = ty_calloc(ntypes + 1, sizeof *order);
    for (size_t i = 0; i < n; i++)
        order[i] = lower[i];
    qsort(order, n, sizeof *order, cmp_str);
    for (size_t o = 0; o < n; o++) {
        size_t i = 0;
        while (strcmp(lower[i], order[o]) != 0)
            i++;
        int port = ty_kf_port(job, k, types[i]);
        int reps = ty_kf_replicas(json_object_get(specs, types[i]));
        json_t *hosts = json_array();
        for (int r = 0; r < reps; r++) {
            TY_AUTOFREE char *pod = ty_kubeflow_replica_name(name, types[i], r);
            TY_AUTOFREE char *svc = ty_asprintf("%s.%s.svc", pod, ns);
            TY_AUTOFREE char *h = resolve(addr, ctx, ns, pod, svc);
            TY_AUTOFREE char *ep = ty_asprintf("%s:%d", h, port);
            json_array_append_new(hosts, json_string(ep));
        }
        json_object_set_new(cluster, lower[i], hosts);
    }
    for (size_t i = 0; i < n; i++)
        free(lower[i]);

    TY_AUTOFREE char *rt = ty_kf_lower(rtype);
    json_t *task = json_object();
    json_object_set_new(task, "type", json_string(rt));
    json_object_set_new(task, "index", json_integer(index));
    json_t *cfg = json_object();
    if (json_is_true(json_object_get(json_object_get(job, "spec"), "enableDynamicWorker"))) {
        /* The sparse form: a worker sees itself and every ps; a ps sees itself. */
        json_t *sparse = json_object();
        json_t *workers = json_object();
        json_t *ps;
        if (strcmp(rt, "ps") == 0) {
            ps = json_array();
            json_array_append(ps, json_array_get(json_object_get(cluster, "ps"), (size_t)index));
        } else if (strcmp(rt, "worker") == 0) {
            char idx[24];
            snprintf(idx, sizeof idx, "%d", index);
            json_object_set(workers, idx,
                            json_array_get(json_object_get(cluster, "worker"), (size_t)index));
            ps = json_object_get(cluster, "ps");
            /* Go marshals the missing ps list as null. */
            ps = ps ? json_incref(ps) : json_null();
        } else {
            ps = json_array();
        }
        json_object_set_new(sparse, "worker", workers);
        json_object_set_new(sparse, "ps", ps);
        json_object_set_new(cfg, "cluster", sparse);
        json_object_set_new(cfg, "task", task);
        json_decref(cluster);
    } else {
        json_object_set_new(cfg, "cluster", cluster);
        json_object_set_new(cfg, "task", task);
        json_object_set_new(cfg, "environment", json_string("cloud"));
    }
    *out = json_dumps(cfg, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(cfg);
    (void)err;
    return 0;
}

/* ---- objects ---- */

static json_t *owner_refs(const json_t *job, const ty_kf_kind *k)
{
    json_t *ref = json_object();
    json_object_set_new(ref, "apiVersion", json_string("kubeflow.org/v1"));
    json_object_set_new(ref, "kind", json_string(k->name));
    json_object_set_new(ref, "name", json_string(ty_kf_name(job)));
    json_object_set_new(ref, "uid",
                        json_string(ty_kf_str(json_object_get(job, "metadata"), "uid")));
    json_object_set_new(ref, "controller", json_true());
    json_object_set_new(ref, "blockOwnerDeletion", json_true());
    json_t *refs = json_array();
    json_array_append_new(refs, ref);
    return refs;
}

static const json_t *replica_spec(const json_t *job, const ty_kf_kind **k, const char *rtype,
                                  int index, ty_error *err)
{
    *k = ty_kf_kind_of(job);
    if (!*k) {
        ty_fail(err, "job %s: kind %s is not a kubeflow job", ty_kf_name(job),
                ty_kf_str(job, "kind"));
        return NULL;
    }
    const json_t *spec = ty_kf_spec(job, *k, rtype);
    if (!spec) {
        ty_fail(err, "%s %s: no replica type %s", (*k)->name, ty_kf_name(job), rtype);
        return NULL;
    }
    if (index < 0 || index >= ty_kf_replicas(spec)) {
        ty_fail(err, "%s %s: %s index %d out of range (replicas %d)", (*k)->name,
                ty_kf_name(job), rtype, index, ty_kf_replicas(spec));
        return NULL;
    }
    return spec;
}

/* The operator's webhook adds the default port ("pytorchjob-port" 23456, "tfjob-port" 2222)
 * to the job's main container (or its first one) when it has no port of that name. trainyard
 * adds it to the pods it makes instead, and leaves the stored job as the user wrote it: a list
 * changed by defaulting makes kubectl's three-way merge patch non-empty, so `kubectl apply` of
 * an unchanged manifest would never be a no-op. */
static void add_default_port(json_t *containers, const ty_kf_kind *k)
{
    json_t *target = json_array_get(containers, 0);
    size_t i;
    json_t *c;
    json_array_foreach(containers, i, c) {
        if (strcmp(ty_kf_str(c, "name"), k->container) == 0) {
            target = c;
            break;
        }
    }
    if (!json_is_object(target))
        return;
    json_t *ports = json_object_get(target, "ports");
    if (!json_is_array(ports)) {
        ports = json_array();
        json_object_set_new(target, "ports", ports);
    }
    json_t *p;
    json_array_foreach(ports, i, p) {
        if (strcmp(ty_kf_str(p, "name"), k->port_name) == 0)
            return;
    }
    json_array_append_new(ports, json_pack("{s:s, s:i}", "name", k->port_name, "containerPort",
                                           k->default_port));
}

json_t *ty_kubeflow_pod(const json_t *job, const char *rtype, int index, ty_kubeflow_addr_fn addr,
                        void *ctx, ty_error *err)
{
    const ty_kf_kind *k;
    const json_t *spec = replica_spec(job, &k, rtype, index, err);
    if (!spec)
        return NULL;
    const json_t *tmpl = json_object_get(spec, "template");
    const json_t *tmeta = json_object_get(tmpl, "metadata");

    TY_AUTOFREE char *name = ty_kubeflow_replica_name(ty_kf_name(job), rtype, index);
    json_t *meta = json_object();
    json_object_set_new(meta, "name", json_string(name));
    json_object_set_new(meta, "namespace", json_string(ty_kf_namespace(job)));
    json_t *labels = json_is_object(json_object_get(tmeta, "labels"))
                         ? json_deep_copy(json_object_get(tmeta, "labels"))
                         : json_object();
    json_t *ours = ty_kf_labels(job, k, rtype, index);
    if (ty_kf_is_master_role(job, k, rtype, index))
        json_object_set_new(ours, TY_KUBEFLOW_LABEL_JOB_ROLE, json_string("master"));
    json_object_update(labels, ours); /* the operator's labels win over the template's */
    json_decref(ours);
    json_object_set_new(meta, "labels", labels);
    if (json_is_object(json_object_get(tmeta, "annotations")))
        json_object_set_new(meta, "annotations",
                            json_deep_copy(json_object_get(tmeta, "annotations")));
    if (json_is_array(json_object_get(tmeta, "finalizers")))
        json_object_set_new(meta, "finalizers",
                            json_deep_copy(json_object_get(tmeta, "finalizers")));
    json_object_set_new(meta, "ownerReferences", owner_refs(job, k));

    json_t *pspec = json_is_object(json_object_get(tmpl, "spec"))
                        ? json_deep_copy(json_object_get(tmpl, "spec"))
                        : json_object();
    const char *rp = ty_kf_restart_policy(spec);
    if (k->kind == TY_KUBEFLOW_PYTORCH && !ty_kf_is_elastic(job))
        rp = "Never"; /* trainyard restarts the gang: see kubeflow.h */
    else if (strcmp(rp, "ExitCode") == 0)
        rp = "Never";
    if (*rp)
        json_object_set_new(pspec, "restartPolicy", json_string(rp));

    json_t *pod = json_object();
    json_object_set_new(pod, "apiVersion", json_string("v1"));
    json_object_set_new(pod, "kind", json_string("Pod"));
    json_object_set_new(pod, "metadata", meta);
    json_object_set_new(pod, "spec", pspec);

    json_t *containers = json_object_get(pspec, "containers");
    add_default_port(containers, k);
    if (k->kind == TY_KUBEFLOW_PYTORCH) {
        json_t *env = json_array();
        if (pytorch_env(job, k, rtype, index, addr, ctx, env, err) < 0) {
            json_decref(env);
            json_decref(pod);
            return NULL;
        }
        size_t i;
        json_t *c;
        json_array_foreach(containers, i, c) {
            json_t *cenv = json_object_get(c, "env");
            if (!json_is_array(cenv)) {
                cenv = json_array();
                json_object_set_new(c, "env", cenv);
            }
            json_array_extend(cenv, env);
        }
        json_decref(env);
    } else if (total_replicas(job, k) != 1) {
        /* A lone TF replica is not distributed: the operator gives it no TF_CONFIG. */
        TY_AUTOFREE char *cfg = NULL;
        if (tf_config(job, k, rtype, index, addr, ctx, &cfg, err) < 0) {
            json_decref(pod);
            return NULL;
        }
        size_t i;
        json_t *c;
        json_array_foreach(containers, i, c) {
            if (strcmp(ty_kf_str(c, "name"), k->container) != 0)
                continue;
            json_t *cenv = json_object_get(c, "env");
            if (!json_is_array(cenv)) {
                cenv = json_array();
                json_object_set_new(c, "env", cenv);
            }
            json_t *e = json_array();
            env_add(e, "TF_CONFIG", cfg);
            json_array_extend(cenv, e);
            json_decref(e);
            break;
        }
    }
    return pod;
}

const char *ty_kubeflow_managed_elsewhere(const json_t *job)
{
    const char *by = json_string_value(
        json_object_get(json_object_get(json_object_get(job, "spec"), "runPolicy"), "managedBy"));
    return by && strcmp(by, "kubeflow.org/training-operator") != 0 ? by : NULL;
}

json_t *ty_kubeflow_service(const json_t *job, const char *rtype, int index, ty_error *err)
{
    const ty_kf_kind *k;
    const json_t *spec = replica_spec(job, &k, rtype, index, err);
    if (!spec)
        return NULL;
    const json_t *c = main_container(spec, k);
    if (!c) {
        ty_fail(err, "%s %s: %s has no container named %s", k->name, ty_kf_name(job), rtype,
                k->container);
        return NULL;
    }
    TY_AUTOFREE char *name = ty_kubeflow_replica_name(ty_kf_name(job), rtype, index);
    json_t *meta = json_object();
    json_object_set_new(meta, "name", json_string(name));
    json_object_set_new(meta, "namespace", json_string(ty_kf_namespace(job)));
    json_t *labels = ty_kf_labels(job, k, rtype, index);
    json_object_set(meta, "labels", labels);
    json_object_set_new(meta, "ownerReferences", owner_refs(job, k));

    json_t *ports = json_array();
    size_t i;
    const json_t *p;
    json_t *cports = json_pack("[o]", json_deep_copy(c));
    add_default_port(cports, k);
    json_array_foreach(json_object_get(json_array_get(cports, 0), "ports"), i, p) {
        json_t *sp = json_object();
        if (*ty_kf_str(p, "name"))
            json_object_set_new(sp, "name", json_string(ty_kf_str(p, "name")));
        json_object_set_new(sp, "port", json_incref(json_object_get(p, "containerPort")));
        json_array_append_new(ports, sp);
    }
    json_decref(cports);
    json_t *sspec = json_object();
    json_object_set_new(sspec, "clusterIP", json_string("None"));
    json_object_set_new(sspec, "selector", labels);
    json_object_set_new(sspec, "ports", ports);

    json_t *svc = json_object();
    json_object_set_new(svc, "apiVersion", json_string("v1"));
    json_object_set_new(svc, "kind", json_string("Service"));
    json_object_set_new(svc, "metadata", meta);
    json_object_set_new(svc, "spec", sspec);
    return svc;
}
