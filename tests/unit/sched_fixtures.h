/* Small snapshot builders for the scheduling core's tests: GPU-only quotas and pods unless a
 * test builds its own. */
#ifndef TESTS_SCHED_FIXTURES_H
#define TESTS_SCHED_FIXTURES_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sched/sched.h"

#define GPU "nvidia.com/gpu"
#define G(n) ((int64_t)(n) * 1000)

static inline ty_sched *mk(bool fair)
{
    ty_sched_config c = {.fair_sharing = fair, .now_ms = 1000000};
    return ty_sched_new(&c);
}

static inline void must(int rc, ty_error *err)
{
    cr_assert_eq(rc, 0, "add failed: %s", err->msg ? err->msg : "?");
}

/* "k=v" into a label (the strings live in buf). */
static inline ty_sched_label label_of(const char *kv, char buf[128])
{
    snprintf(buf, 128, "%s", kv);
    char *eq = strchr(buf, '=');
    cr_assert(eq);
    *eq = 0;
    return (ty_sched_label){buf, eq + 1};
}

static inline void add_flavor(ty_sched *s, const char *name, const char *kv)
{
    ty_error err = TY_ERROR_INIT;
    char b[128];
    ty_sched_label l;
    if (kv)
        l = label_of(kv, b);
    ty_sched_flavor f = {.name = name, .node_labels = kv ? &l : NULL, .n_node_labels = kv ? 1 : 0};
    must(ty_sched_add_flavor(s, &f, &err), &err);
}

static inline void add_node(ty_sched *s, const char *name, int gpus, int used, const char *kv)
{
    ty_error err = TY_ERROR_INIT;
    char b[128];
    ty_sched_label l;
    if (kv)
        l = label_of(kv, b);
    ty_sched_amount alloc[] = {{GPU, G(gpus)}, {"cpu", G(64)}};
    ty_sched_amount u[] = {{GPU, G(used)}};
    ty_sched_node n = {.name = name, .labels = kv ? &l : NULL, .n_labels = kv ? 1 : 0,
                       .allocatable = alloc, .n_allocatable = 2, .used = u, .n_used = 1};
    must(ty_sched_add_node(s, &n, &err), &err);
}

typedef struct {
    const char *flavor;
    int gpus;
    int borrow; /* -1: unlimited */
    int lend;   /* -1: unset */
} fq_t;

/* `base` carries the name, cohort and policies; the one resource group covers GPUs. */
static inline void add_cq(ty_sched *s, ty_sched_cluster_queue base, const fq_t *f, size_t n)
{
    ty_error err = TY_ERROR_INIT;
    static const char *const covered[] = {GPU};
    ty_sched_quota q[8];
    ty_sched_flavor_quotas fqs[8];
    cr_assert_leq(n, 8);
    for (size_t i = 0; i < n; i++) {
        q[i] = (ty_sched_quota){GPU, G(f[i].gpus),
                                f[i].borrow < 0 ? TY_SCHED_UNLIMITED : G(f[i].borrow),
                                f[i].lend < 0 ? TY_SCHED_UNLIMITED : G(f[i].lend)};
        fqs[i] = (ty_sched_flavor_quotas){f[i].flavor, &q[i], 1};
    }
    ty_sched_resource_group g = {covered, 1, fqs, n};
    base.groups = &g;
    base.n_groups = 1;
    if (!base.fair_weight_milli)
        base.fair_weight_milli = 1000;
    must(ty_sched_add_cluster_queue(s, &base, &err), &err);
}

/* One cluster queue with one flavor. */
static inline void add_cq1(ty_sched *s, const char *name, const char *cohort, const char *flavor,
                           int gpus)
{
    fq_t f = {flavor, gpus, -1, -1};
    add_cq(s, (ty_sched_cluster_queue){.name = name, .cohort = cohort}, &f, 1);
}

static inline void add_wl(ty_sched *s, const char *key, const char *cq, int prio, int64_t queued,
                          int pods, int gpus)
{
    ty_error err = TY_ERROR_INIT;
    ty_sched_amount r = {GPU, G(gpus)};
    ty_sched_pod_set ps = {.name = "main", .count = pods, .requests = &r, .n_requests = 1};
    ty_sched_workload w = {.key = key, .cluster_queue = cq, .priority = prio,
                           .queued_at_ms = queued, .pod_sets = &ps, .n_pod_sets = 1};
    must(ty_sched_add_workload(s, &w, &err), &err);
}

/* An admitted workload whose pods are on `nodes` (NULL entries end it early: all the remaining
 * pods go on the last node named). */
static inline void add_admitted(ty_sched *s, const char *key, const char *cq, int prio,
                                int64_t admitted_at, int pods, int gpus, const char *flavor,
                                const char *node, bool evicting)
{
    ty_error err = TY_ERROR_INIT;
    ty_sched_amount r = {GPU, G(gpus)};
    ty_sched_pod_set ps = {.name = "main", .count = pods, .requests = &r, .n_requests = 1};
    const char *nodes[64];
    cr_assert_leq(pods, 64);
    for (int i = 0; i < pods; i++)
        nodes[i] = node;
    const char *fl[] = {flavor};
    ty_sched_pod_set_admission a = {fl, nodes};
    ty_sched_workload w = {.key = key, .cluster_queue = cq, .priority = prio,
                           .queued_at_ms = admitted_at - 1, .pod_sets = &ps, .n_pod_sets = 1,
                           .admitted = true, .evicting = evicting,
                           .admitted_at_ms = admitted_at, .admission = &a};
    must(ty_sched_add_workload(s, &w, &err), &err);
}

static inline const ty_sched_decision *dec(const ty_sched *s, const char *key)
{
    const ty_sched_decision *d = ty_sched_decision_of(s, key);
    cr_assert(d, "no decision for %s", key);
    return d;
}

static inline void expect(const ty_sched *s, const char *key, ty_sched_verdict v)
{
    const ty_sched_decision *d = dec(s, key);
    static const char *const names[] = {"ADMIT", "PREEMPT", "WAIT"};
    cr_assert_eq(d->verdict, v, "%s: %s, expected %s (%s)", key, names[d->verdict], names[v],
                 d->message ? d->message : "");
}

static inline void expect_msg(const ty_sched *s, const char *key, const char *part)
{
    const ty_sched_decision *d = dec(s, key);
    cr_assert(d->message && strstr(d->message, part), "%s: message \"%s\" lacks \"%s\"", key,
              d->message ? d->message : "(null)", part);
}

#endif
