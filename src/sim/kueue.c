/* A cluster given as Kueue objects and nodes (sim/sim.h, ty_sim_kueue). The objects are
 * admitted as the server admits them (api/api.h: schema, defaults, Kueue's webhook rules), the
 * references between them checked with the place of each, and each pass's snapshot of queues
 * and nodes is the server's (controllers/admission.h), so that a queue configuration behaves
 * here as it would in `trainyard server`. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/kueue.h"
#include "base/buf.h"
#include "base/mem.h"
#include "base/quantity.h"
#include "controllers/admission.h"
#include "controllers/placement.h"
#include "sim/sim_int.h"
#include "store/store.h"

#define GPU "nvidia.com/gpu"

void ty_sim_kueue_free(ty_sim_kueue *k)
{
    if (!k)
        return;
    free(k->path);
    json_decref(k->flavors);
    json_decref(k->cluster_queues);
    json_decref(k->local_queues);
    json_decref(k->priority_classes);
    json_decref(k->nodes);
    for (int32_t i = 0; i < k->n_nodes; i++)
        free(k->node_names[i]);
    free(k->node_names);
    free(k->node_gpus);
    ty_map_free(&k->node_ix);
    for (int32_t i = 0; k->node_in && i < k->n_nodes; i++) {
        free((void *)k->node_in[i].labels);
        free((void *)k->node_in[i].taints);
        free((void *)k->node_in[i].allocatable);
    }
    free(k->node_in);
    json_decref(k->node_allocs);
    free(k->cq_names);
    free(k->cq_strict);
    free(k->cq_pods);
    free(k->cq_gpus);
    free(k->vc_cq);
    free(k->pclass_prio);
    free(k);
}

static const json_t *named(const json_t *arr, const char *ns, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        if (strcmp(ty_obj_name(o), name) == 0 && (!ns || strcmp(ty_obj_namespace(o), ns) == 0))
            return o;
    }
    return NULL;
}

static const char *str_at(const json_t *obj, const char *a, const char *b)
{
    const json_t *v = json_object_get(obj, a);
    return json_string_value(b ? json_object_get(v, b) : v);
}

static void problem(ty_buf *out, const ty_manifest *m, ty_pos p, const char *field,
                    const char *fmt, const char *arg)
{
    ty_buf_addf(out, "%s:%d:%d: %s: ", m->file, p.line, p.col, field);
    ty_buf_addf(out, fmt, arg);
    ty_buf_addf(out, "\n");
}

/* The references between the objects: a LocalQueue's ClusterQueue and a ClusterQueue's
 * flavors must be in the file, names once per kind. */
static void check_references(const ty_sim_kueue *k, const ty_manifest *m, ty_buf *out)
{
    size_t i;
    json_t *o;
    const json_t *lists[] = {k->flavors, k->cluster_queues, k->local_queues,
                             k->priority_classes};
    for (size_t l = 0; l < 4; l++) {
        json_array_foreach(lists[l], i, o)
        {
            const bool namespaced = lists[l] == k->local_queues;
            if (named(lists[l], namespaced ? ty_obj_namespace(o) : NULL, ty_obj_name(o)) != o)
                problem(out, m,
                        ty_manifest_pos_member(m, json_object_get(o, "metadata"), "name", false),
                        "metadata.name", "%s is given twice", ty_obj_name(o));
        }
    }
    json_array_foreach(k->local_queues, i, o)
    {
        const json_t *spec = json_object_get(o, "spec");
        const char *cq = json_string_value(json_object_get(spec, "clusterQueue"));
        if (cq && !named(k->cluster_queues, NULL, cq))
            problem(out, m, ty_manifest_pos_member(m, spec, "clusterQueue", false),
                    "spec.clusterQueue", "ClusterQueue %s is not in the file", cq);
    }
    json_array_foreach(k->cluster_queues, i, o)
    {
        const json_t *groups = json_object_get(json_object_get(o, "spec"), "resourceGroups");
        for (size_t g = 0; g < json_array_size(groups); g++) {
            const json_t *fl = json_object_get(json_array_get(groups, g), "flavors");
            for (size_t f = 0; f < json_array_size(fl); f++) {
                const json_t *fq = json_array_get(fl, f);
                const char *name = str_at(fq, "name", NULL);
                if (name && !named(k->flavors, NULL, name)) {
                    char field[96];
                    snprintf(field, sizeof field, "spec.resourceGroups[%zu].flavors[%zu].name", g,
                             f);
                    problem(out, m, ty_manifest_pos_member(m, fq, "name", false), field,
                            "ResourceFlavor %s is not in the file", name);
                }
            }
        }
    }
}

/* Reads and admits every document; objects go to their kind's list. */
static void admit_objects(ty_sim_kueue *k, const ty_manifest *m, ty_buf *out)
{
    for (size_t d = 0; d < m->ndocs; d++) {
        json_t *obj = m->docs[d].obj;
        const char *kind = str_at(obj, "kind", NULL);
        json_t *into = !kind                                          ? NULL
                       : strcmp(kind, "ResourceFlavor") == 0          ? k->flavors
                       : strcmp(kind, "ClusterQueue") == 0            ? k->cluster_queues
                       : strcmp(kind, "LocalQueue") == 0              ? k->local_queues
                       : strcmp(kind, "WorkloadPriorityClass") == 0   ? k->priority_classes
                                                                      : NULL;
        const char *av = str_at(obj, "apiVersion", NULL);
        if (!into || !av || strcmp(av, TY_KUEUE_API_VERSION) != 0) {
            ty_pos p = ty_manifest_pos_member(m, obj, into ? "apiVersion" : "kind", false);
            if (p.line == 0)
                p = m->docs[d].pos;
            ty_buf_addf(out, "%s:%d:%d: %s: ", m->file, p.line, p.col,
                        into ? "apiVersion" : "kind");
            if (into)
                ty_buf_addf(out, "%s must be " TY_KUEUE_API_VERSION "\n", av ? av : "(none)");
            else
                ty_buf_addf(out, "%s is not one of ResourceFlavor, ClusterQueue, LocalQueue, "
                                 "WorkloadPriorityClass (nodes come from --nodes or "
                                 "--nodes-file)\n", kind ? kind : "(none)");
            continue;
        }
        /* A LocalQueue without a namespace is in "default", as `kubectl apply` puts it. */
        json_t *meta = json_object_get(obj, "metadata");
        if (into == k->local_queues && json_is_object(meta) &&
            !json_object_get(meta, "namespace"))
            json_object_set_new(meta, "namespace", json_string("default"));
        ty_field_errors errs = TY_FIELD_ERRORS_INIT;
        if (ty_api_admit(m, obj, &errs) < 0)
            ty_field_errors_format(&errs, m->file, out);
        else
            json_array_append(into, obj);
        ty_field_errors_free(&errs);
    }
}

static int64_t gpus_of(const json_t *quantity)
{
    ty_quantity q;
    if (!quantity || ty_quantity_from_json(quantity, &q, NULL) < 0)
        return 0;
    return q.milli / 1000;
}

static bool flavor_selects(const ty_sim_kueue *k, const char *key)
{
    size_t i;
    json_t *f;
    json_array_foreach(k->flavors, i, f)
    {
        if (json_object_get(json_object_get(json_object_get(f, "spec"), "nodeLabels"), key))
            return true;
    }
    return false;
}

/* What the engine reads of each queue and node, once. */
static void index_objects(ty_sim_kueue *k)
{
    size_t i;
    json_t *o;
    k->n_cqs = (int32_t)json_array_size(k->cluster_queues);
    k->cq_names = ty_calloc((size_t)k->n_cqs + 1, sizeof *k->cq_names);
    k->cq_strict = ty_calloc((size_t)k->n_cqs + 1, sizeof *k->cq_strict);
    k->cq_pods = ty_calloc((size_t)k->n_cqs + 1, sizeof *k->cq_pods);
    k->cq_gpus = ty_calloc((size_t)k->n_cqs + 1, sizeof *k->cq_gpus);
    json_array_foreach(k->cluster_queues, i, o)
    {
        const json_t *spec = json_object_get(o, "spec");
        const json_t *pre = json_object_get(spec, "preemption");
        k->cq_names[i] = ty_obj_name(o);
        const char *qs = str_at(spec, "queueingStrategy", NULL);
        k->cq_strict[i] = qs && strcmp(qs, "StrictFIFO") == 0;
        const char *w = str_at(pre, "withinClusterQueue", NULL);
        const char *r = str_at(pre, "reclaimWithinCohort", NULL);
        const char *b = str_at(pre, "borrowWithinCohort", "policy");
        k->preemptive |= (w && strcmp(w, "Never") != 0) || (r && strcmp(r, "Never") != 0) ||
                         (b && strcmp(b, "Never") != 0);
        const json_t *groups = json_object_get(spec, "resourceGroups");
        for (size_t g = 0; g < json_array_size(groups); g++) {
            const json_t *grp = json_array_get(groups, g);
            const json_t *cov = json_object_get(grp, "coveredResources");
            for (size_t c = 0; c < json_array_size(cov); c++)
                k->cq_pods[i] |= strcmp(json_string_value(json_array_get(cov, c)), "pods") == 0;
            const json_t *fl = json_object_get(grp, "flavors");
            for (size_t f = 0; f < json_array_size(fl); f++) {
                const json_t *res = json_object_get(json_array_get(fl, f), "resources");
                for (size_t x = 0; x < json_array_size(res); x++) {
                    const json_t *rq = json_array_get(res, x);
                    if (strcmp(str_at(rq, "name", NULL), GPU) == 0)
                        k->cq_gpus[i] += gpus_of(json_object_get(rq, "nominalQuota"));
                }
            }
        }
    }
    k->n_nodes = (int32_t)json_array_size(k->nodes);
    k->node_names = ty_calloc((size_t)k->n_nodes + 1, sizeof *k->node_names);
    k->node_gpus = ty_calloc((size_t)k->n_nodes + 1, sizeof *k->node_gpus);
    k->node_in = ty_calloc((size_t)k->n_nodes + 1, sizeof *k->node_in);
    k->node_allocs = json_array();
    json_array_foreach(k->nodes, i, o)
    {
        k->node_names[i] = ty_strdup(ty_obj_name(o));
        json_t *alloc = ty_placement_allocatable(o);
        json_array_append_new(k->node_allocs, alloc);
        int64_t milli = json_integer_value(json_object_get(alloc, GPU));
        k->node_gpus[i] = (int32_t)(milli / 1000 > INT32_MAX / 2 ? INT32_MAX / 2 : milli / 1000);
        ty_map_puts(&k->node_ix, k->node_names[i], (void *)(uintptr_t)(i + 1));
        /* as the server's pass reads a node (controllers/kueue_snapshot.c) */
        const json_t *spec = json_object_get(o, "spec");
        ty_sched_node *n = &k->node_in[i];
        n->name = k->node_names[i];
        ty_sched_label *labels = ty_placement_labels(
            json_object_get(json_object_get(o, "metadata"), "labels"), &n->n_labels);
        /* Only the keys some flavor selects on can change a decision (trace jobs have no node
         * selector or affinity): the others (kubernetes.io/hostname, ...) would cost each
         * pass an interning per node and label. */
        size_t kept = 0;
        for (size_t l = 0; l < n->n_labels; l++)
            if (flavor_selects(k, labels[l].key))
                labels[kept++] = labels[l];
        n->n_labels = kept;
        n->labels = labels;
        n->taints = ty_placement_taints(json_object_get(spec, "taints"), &n->n_taints);
        ty_sched_amount *a = ty_calloc(json_object_size(alloc) + 1, sizeof *a);
        const char *res;
        json_t *v;
        json_object_foreach(alloc, res, v)
            a[n->n_allocatable++] = (ty_sched_amount){res, (int64_t)json_integer_value(v)};
        n->allocatable = a;
        n->unschedulable = json_is_true(json_object_get(spec, "unschedulable"));
    }
}

ty_sched *ty_sim_kueue_snapshot(const ty_sim_kueue *k, bool fair_sharing, int64_t now_ms,
                                const json_t *quota_used, const int32_t *gpus_used,
                                const int32_t *pods_used, ty_error *err)
{
    json_t *inactive = json_object();
    ty_sched *s = ty_admission_queue_snapshot(k->flavors, k->cluster_queues, quota_used,
                                              fair_sharing, now_ms, inactive);
    int rc = 0;
    for (int32_t n = 0; rc == 0 && n < k->n_nodes; n++) {
        ty_sched_node node = k->node_in[n];
        ty_sched_amount used[2] = {{GPU, gpus_used ? (int64_t)gpus_used[n] * 1000 : 0},
                                   {"pods", pods_used ? (int64_t)pods_used[n] * 1000 : 0}};
        node.used = used;
        node.n_used = gpus_used ? 2 : 0;
        rc = ty_sched_add_node(s, &node, err);
    }
    if (rc < 0) {
        ty_sched_free(s);
        json_decref(inactive);
        return NULL;
    }
    const char *name;
    json_t *why;
    json_object_foreach(inactive, name, why)
    {
        ty_fail(err, "%s: ClusterQueue %s cannot admit: %s", k->path, name,
                str_at(why, "message", NULL));
        ty_sched_free(s);
        s = NULL;
        break;
    }
    json_decref(inactive);
    return s;
}

int ty_sim_kueue_load(ty_sim_kueue **out, const char *path, const json_t *nodes,
                      ty_error *err)
{
    *out = NULL;
    ty_manifest *m = NULL;
    if (ty_manifest_load(path, &m, err) < 0)
        return -1;
    ty_sim_kueue *k = TY_NEW(ty_sim_kueue);
    k->path = ty_strdup(m->file);
    k->flavors = json_array();
    k->cluster_queues = json_array();
    k->local_queues = json_array();
    k->priority_classes = json_array();
    k->nodes = nodes ? json_deep_copy(nodes) : json_array();
    ty_buf problems = TY_BUF_INIT;
    admit_objects(k, m, &problems);
    if (problems.len == 0)
        check_references(k, m, &problems);
    /* a job keeps the index of each flavor it was given in a byte */
    if (problems.len == 0 && json_array_size(k->flavors) > 100)
        ty_buf_addf(&problems, "%s: %zu ResourceFlavors, more than 100\n", m->file,
                    json_array_size(k->flavors));
    if (problems.len == 0 && json_array_size(k->cluster_queues) == 0)
        ty_buf_addf(&problems, "%s: no ClusterQueue\n", m->file);
    if (problems.len == 0 && json_array_size(k->nodes) == 0)
        ty_buf_addf(&problems, "%s: no nodes: give them with --nodes SPEC or --nodes-file FILE\n",
                    m->file);
    ty_manifest_free(m);
    int rc = 0;
    if (problems.len) {
        while (problems.len && problems.data[problems.len - 1] == '\n')
            problems.data[--problems.len] = 0;
        rc = ty_fail(err, "%s", problems.data);
    } else {
        index_objects(k);
        ty_sched *probe = ty_sim_kueue_snapshot(k, false, 0, NULL, NULL, NULL, err);
        rc = probe ? 0 : -1;
        ty_sched_free(probe);
    }
    ty_buf_free(&problems);
    if (rc < 0) {
        ty_sim_kueue_free(k);
        return -1;
    }
    *out = k;
    return 0;
}

/* A VC's queue: LocalQueue "name" (namespace default) or "namespace/name", else a
 * ClusterQueue of that name; -1 when none. */
static int32_t queue_of_vc(const ty_sim_kueue *k, const char *vc)
{
    const char *slash = strchr(vc, '/');
    char ns[254] = "default";
    const char *name = vc;
    if (slash && (size_t)(slash - vc) < sizeof ns) {
        memcpy(ns, vc, (size_t)(slash - vc));
        ns[slash - vc] = 0;
        name = slash + 1;
    }
    const json_t *lq = named(k->local_queues, ns, name);
    const char *cq = lq ? str_at(json_object_get(lq, "spec"), "clusterQueue", NULL)
                        : slash ? NULL : vc;
    for (int32_t i = 0; cq && i < k->n_cqs; i++)
        if (strcmp(k->cq_names[i], cq) == 0)
            return i;
    return -1;
}

int ty_sim_kueue_bind(ty_sim_kueue *k, ty_sim_trace *t, int32_t gpus_per_node, ty_error *err)
{
    free(k->vc_cq);
    free(k->pclass_prio);
    k->vc_cq = ty_calloc(t->n_vcs + 1, sizeof *k->vc_cq);
    k->pclass_prio = ty_calloc(t->n_pclasses + 1, sizeof *k->pclass_prio);
    for (size_t p = 0; p < t->n_pclasses; p++) {
        const json_t *wpc = named(k->priority_classes, NULL, t->pclasses[p]);
        if (!wpc)
            return ty_fail(err, "%s:%" PRId64 ": field priority_class: "
                           "WorkloadPriorityClass %s is not in %s", t->path, t->pclass_line[p],
                           t->pclasses[p], k->path);
        k->pclass_prio[p] = (int32_t)json_integer_value(json_object_get(wpc, "value"));
    }
    int32_t gpn = gpus_per_node;
    for (int32_t n = 0; gpn <= 0 && n < k->n_nodes; n++)
        if (k->node_gpus[n] > gpn)
            gpn = k->node_gpus[n];
    k->gpus_per_node = gpn > 0 ? gpn : 8;
    t->gpus_per_node = k->gpus_per_node;
    /* VCs no queue takes are not reported (their rows are counted as unknown_vc): the others
     * keep their order, renumbered */
    int32_t *renum = ty_calloc(t->n_vcs + 1, sizeof *renum);
    size_t n_vcs = 0;
    for (size_t v = 0; v < t->n_vcs; v++) {
        int32_t cq = queue_of_vc(k, t->vcs[v].name);
        renum[v] = cq >= 0 ? (int32_t)n_vcs : -1;
        if (cq < 0) {
            free(t->vcs[v].name);
            continue;
        }
        k->vc_cq[n_vcs] = cq;
        t->vcs[n_vcs] = t->vcs[v];
        t->vcs[n_vcs++].nodes = 0; /* its queue's nominal GPUs stand for its size */
    }
    t->n_vcs = n_vcs;
    /* Rows the core could never admit: probed once per (queue, size) on the empty cluster. */
    json_t *verdicts = json_object(); /* "cq/gpus" -> true (fits) or false */
    size_t kept = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < t->n_jobs; i++) {
        ty_sim_job *j = &t->jobs[i];
        if (renum[j->vc] < 0) {
            t->skipped.unknown_vc++;
            continue;
        }
        j->vc = renum[j->vc];
        int32_t cq = k->vc_cq[j->vc];
        char key[48];
        snprintf(key, sizeof key, "%" PRId32 "/%" PRId32, cq, j->gpus);
        const json_t *v = json_object_get(verdicts, key);
        if (!v) {
            bool fits = false;
            rc = ty_sim_kueue_fits_empty(k, cq, j->gpus, &fits, err);
            json_object_set_new(verdicts, key, json_boolean(fits));
            v = json_object_get(verdicts, key);
        }
        if (json_is_true(v))
            t->jobs[kept++] = *j;
        else
            t->skipped.too_large++;
    }
    json_decref(verdicts);
    free(renum);
    if (rc == 0)
        t->n_jobs = kept;
    return rc;
}
