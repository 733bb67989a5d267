/* Kueue v0.10's own preemption cases (pkg/scheduler/preemption/preemption_test.go, TestPreemption)
 * run through the whole scheduling core: the flavor assignment decides the mode, preemption the
 * victims. Each test is named after upstream's case; the queues are upstream's
 * defaultClusterQueues. Quantities are whole units (cpu cores, memory "Gi"); the one node is
 * large enough that only quota decides. */
#include <stdlib.h>

#include "sched_fixtures.h"

typedef struct {
    const char *res; /* NULL: end */
    int nominal;
    int borrow; /* -1: unset */
    int lend;   /* -1: unset */
} rq_t;

typedef struct {
    const char *flavor; /* NULL: end */
    rq_t r[3];
} fqs_t;

typedef struct {
    const char *name, *cohort;
    ty_sched_preempt_policy within, reclaim, borrow;
    bool has_threshold;
    int32_t threshold;
    fqs_t groups[2][3];
} cq_t;

typedef struct {
    const char *key; /* NULL: end */
    const char *cq;
    int prio;
    int cpu, mem;
    const char *flavor;  /* of cpu (and memory unless mflavor) */
    const char *mflavor; /* of memory when it differs */
    int64_t at;          /* admitted at (0: all the same time) */
    int64_t queued;      /* 0: before every admission (admitted), after (pending) */
} wl_t;

#define LP TY_SCHED_PREEMPT_LOWER_PRIORITY
#define LONEP TY_SCHED_PREEMPT_LOWER_OR_NEWER_EQUAL_PRIORITY
#define ANY TY_SCHED_PREEMPT_ANY
#define NEVER TY_SCHED_PREEMPT_NEVER
#define CPU_MEM(f, c, cb, m, mb) {f, {{"cpu", c, cb, -1}, {"memory", m, mb, -1}}}

static const cq_t default_cqs[] = {
    {"standalone", NULL, LP, NEVER, NEVER, false, 0,
     {{{"default", {{"cpu", 6, -1, -1}}}},
      {{"alpha", {{"memory", 3, -1, -1}}}, {"beta", {{"memory", 3, -1, -1}}}}}},
    {"c1", "cohort", LP, LP, NEVER, false, 0, {{CPU_MEM("default", 6, 6, 3, 3)}}},
    {"c2", "cohort", NEVER, ANY, NEVER, false, 0, {{CPU_MEM("default", 6, 6, 3, 3)}}},
    {"d1", "cohort-no-limits", LP, LP, NEVER, false, 0, {{CPU_MEM("default", 6, -1, 3, -1)}}},
    {"d2", "cohort-no-limits", NEVER, ANY, NEVER, false, 0, {{CPU_MEM("default", 6, -1, 3, -1)}}},
    {"l1", "legion", LP, LP, NEVER, false, 0, {{CPU_MEM("default", 6, 12, 3, 6)}}},
    {"preventStarvation", NULL, LONEP, NEVER, NEVER, false, 0,
     {{{"default", {{"cpu", 6, -1, -1}}}}}},
    {"a_standard", "with_shared_cq", NEVER, LP, LP, true, 0, {{{"default", {{"cpu", 1, 12, -1}}}}}},
    {"b_standard", "with_shared_cq", LP, ANY, LP, true, 0, {{{"default", {{"cpu", 1, 12, -1}}}}}},
    {"a_best_effort", "with_shared_cq", NEVER, LP, LP, true, 0,
     {{{"default", {{"cpu", 1, 12, -1}}}}}},
    {"b_best_effort", "with_shared_cq", NEVER, LP, LP, true, 0,
     {{{"default", {{"cpu", 0, 13, -1}}}}}},
    {"shared", "with_shared_cq", NEVER, NEVER, NEVER, false, 0,
     {{{"default", {{"cpu", 10, -1, -1}}}}}},
    {"lend1", "cohort-lend", LP, LP, NEVER, false, 0, {{{"default", {{"cpu", 6, -1, 4}}}}}},
    {"lend2", "cohort-lend", LP, LP, NEVER, false, 0, {{{"default", {{"cpu", 6, -1, 2}}}}}},
    {"a", "cohort-three", LP, ANY, NEVER, false, 0, {{CPU_MEM("default", 2, -1, 2, -1)}}},
    {"b", "cohort-three", NEVER, NEVER, NEVER, false, 0, {{CPU_MEM("default", 2, -1, 2, -1)}}},
    {"c", "cohort-three", NEVER, NEVER, NEVER, false, 0, {{CPU_MEM("default", 2, -1, 2, -1)}}},
};

static void add_cq_t(ty_sched *s, const cq_t *c)
{
    ty_error err = TY_ERROR_INIT;
    ty_sched_quota q[2][3][3];
    ty_sched_flavor_quotas fq[2][3];
    ty_sched_resource_group g[2];
    const char *covered[2][3];
    size_t ng = 0;
    for (int gi = 0; gi < 2 && c->groups[gi][0].flavor; gi++, ng++) {
        size_t nf = 0, nr = 0;
        for (int r = 0; r < 3 && c->groups[gi][0].r[r].res; r++)
            covered[gi][nr++] = c->groups[gi][0].r[r].res;
        for (int f = 0; f < 3 && c->groups[gi][f].flavor; f++, nf++) {
            const fqs_t *x = &c->groups[gi][f];
            for (size_t r = 0; r < nr; r++)
                q[gi][f][r] = (ty_sched_quota){
                    x->r[r].res, G(x->r[r].nominal),
                    x->r[r].borrow < 0 ? TY_SCHED_UNLIMITED : G(x->r[r].borrow),
                    x->r[r].lend < 0 ? TY_SCHED_UNLIMITED : G(x->r[r].lend)};
            fq[gi][f] = (ty_sched_flavor_quotas){x->flavor, q[gi][f], nr};
        }
        g[gi] = (ty_sched_resource_group){covered[gi], nr, fq[gi], nf};
    }
    ty_sched_cluster_queue cq = {
        .name = c->name, .cohort = c->cohort, .within_cluster_queue = c->within,
        .reclaim_within_cohort = c->reclaim, .borrow_within_cohort = c->borrow,
        .has_borrow_threshold = c->has_threshold, .borrow_max_priority_threshold = c->threshold,
        .fair_weight_milli = 1000, .groups = g, .n_groups = ng};
    must(ty_sched_add_cluster_queue(s, &cq, &err), &err);
}

static void add_wl_t(ty_sched *s, const wl_t *w, bool admitted, int64_t queued)
{
    if (w->queued)
        queued = w->queued;
    ty_error err = TY_ERROR_INIT;
    ty_sched_amount r[2];
    const char *fl[2];
    size_t n = 0;
    if (w->cpu) {
        fl[n] = w->flavor;
        r[n++] = (ty_sched_amount){"cpu", G(w->cpu)};
    }
    if (w->mem) {
        fl[n] = w->mflavor ? w->mflavor : w->flavor;
        r[n++] = (ty_sched_amount){"memory", G(w->mem)};
    }
    const char *node[] = {"n"};
    ty_sched_pod_set_admission a = {fl, node};
    ty_sched_pod_set ps = {.name = "main", .count = 1, .requests = r, .n_requests = n};
    ty_sched_workload x = {.key = w->key, .cluster_queue = w->cq, .priority = w->prio,
                           .queued_at_ms = queued, .pod_sets = &ps, .n_pod_sets = 1,
                           .admitted = admitted, .admitted_at_ms = w->at ? w->at : 500,
                           .admission = admitted ? &a : NULL};
    must(ty_sched_add_workload(s, &x, &err), &err);
}

/* Runs upstream's case: the admitted workloads, then `in` pending in its queue; checks the
 * victims ("key:Reason" sorted by key, comma-separated; "" for none, and then that it waits),
 * or "admit": upstream's test forces the Preempt mode where the flavor assignment finds that
 * it fits by borrowing, so the whole core admits it. */
static void run_case(const wl_t *admitted, wl_t in, const char *want)
{
    ty_sched *s = mk(false);
    ty_error err = TY_ERROR_INIT;
    add_flavor(s, "default", NULL);
    add_flavor(s, "alpha", NULL);
    add_flavor(s, "beta", NULL);
    ty_sched_amount alloc[] = {{"cpu", G(100000)}, {"memory", G(100000)}};
    ty_sched_node n = {.name = "n", .allocatable = alloc, .n_allocatable = 2};
    must(ty_sched_add_node(s, &n, &err), &err);
    for (size_t i = 0; i < sizeof default_cqs / sizeof *default_cqs; i++)
        add_cq_t(s, &default_cqs[i]);
    for (const wl_t *w = admitted; w && w->key; w++)
        add_wl_t(s, w, true, 100);
    in.key = "in";
    add_wl_t(s, &in, false, 900);
    ty_sched_run(s);
    const ty_sched_decision *d = dec(s, "in");
    if (!strcmp(want, "admit")) {
        expect(s, "in", TY_SCHED_ADMIT);
        ty_sched_free(s);
        return;
    }
    static const char *const why[] = {"InClusterQueue", "InCohortReclamation",
                                      "InCohortFairSharing", "InCohortReclaimWhileBorrowing"};
    char got[512] = "";
    const ty_sched_victim *v[16];
    size_t nv = d->verdict == TY_SCHED_PREEMPT ? d->n_victims : 0;
    cr_assert_leq(nv, 16);
    for (size_t i = 0; i < nv; i++)
        v[i] = &d->victims[i];
    for (size_t i = 0; i < nv; i++)
        for (size_t j = i + 1; j < nv; j++)
            if (strcmp(v[j]->workload, v[i]->workload) < 0) {
                const ty_sched_victim *t = v[i];
                v[i] = v[j];
                v[j] = t;
            }
    for (size_t i = 0; i < nv; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s:%s", i ? "," : "",
                 v[i]->workload, why[v[i]->reason]);
    cr_assert_str_eq(got, want, "victims \"%s\", want \"%s\" (%s)", got, want,
                     d->message ? d->message : "");
    if (!*want)
        expect(s, "in", TY_SCHED_WAIT);
    ty_sched_free(s);
}

#define WLS(...) ((const wl_t[]){__VA_ARGS__, {0}})

Test(sched_kueue_cases, preempt_lowest_priority)
{
    run_case(WLS({"low", "standalone", -1, 2, 0, "default"},
                 {"mid", "standalone", 0, 2, 0, "default"},
                 {"high", "standalone", 1, 2, 0, "default"}),
             (wl_t){.cq = "standalone", .prio = 1, .cpu = 2}, "low:InClusterQueue");
}

Test(sched_kueue_cases, preempt_multiple)
{
    run_case(WLS({"low", "standalone", -1, 2, 0, "default"},
                 {"mid", "standalone", 0, 2, 0, "default"},
                 {"high", "standalone", 1, 2, 0, "default"}),
             (wl_t){.cq = "standalone", .prio = 1, .cpu = 3},
             "low:InClusterQueue,mid:InClusterQueue");
}

Test(sched_kueue_cases, no_preemption_for_low_priority)
{
    run_case(WLS({"low", "standalone", -1, 3, 0, "default"},
                 {"mid", "standalone", 0, 3, 0, "default"}),
             (wl_t){.cq = "standalone", .prio = -1, .cpu = 1}, "");
}

Test(sched_kueue_cases, not_enough_low_priority_workloads)
{
    run_case(WLS({"low", "standalone", -1, 3, 0, "default"},
                 {"mid", "standalone", 0, 3, 0, "default"}),
             (wl_t){.cq = "standalone", .prio = 0, .cpu = 4}, "");
}

Test(sched_kueue_cases, some_free_quota_preempt_low_priority)
{
    run_case(WLS({"low", "standalone", -1, 1, 0, "default"},
                 {"mid", "standalone", 0, 1, 0, "default"},
                 {"high", "standalone", 1, 3, 0, "default"}),
             (wl_t){.cq = "standalone", .prio = 1, .cpu = 2}, "low:InClusterQueue");
}

Test(sched_kueue_cases, minimal_set_excludes_low_priority)
{
    run_case(WLS({"low", "standalone", -1, 1, 0, "default"},
                 {"mid", "standalone", 0, 2, 0, "default"},
                 {"high", "standalone", 1, 3, 0, "default"}),
             (wl_t){.cq = "standalone", .prio = 1, .cpu = 2}, "mid:InClusterQueue");
}

Test(sched_kueue_cases, reclaim_quota_from_borrower)
{
    run_case(WLS({"c1-low", "c1", -1, 3, 0, "default"},
                 {"c2-mid", "c2", 0, 3, 0, "default"},
                 {"c2-high", "c2", 1, 6, 0, "default"}),
             (wl_t){.cq = "c1", .prio = 1, .cpu = 3}, "c2-mid:InCohortReclamation");
}

Test(sched_kueue_cases, no_workloads_borrowing)
{
    run_case(WLS({"c1-high", "c1", 1, 4, 0, "default"},
                 {"c2-low-1", "c2", -1, 4, 0, "default"}),
             (wl_t){.cq = "c1", .prio = 1, .cpu = 4}, "admit");
}

Test(sched_kueue_cases, not_enough_workloads_borrowing)
{
    run_case(WLS({"c1-high", "c1", 1, 4, 0, "default"},
                 {"c2-low-1", "c2", -1, 4, 0, "default"},
                 {"c2-low-2", "c2", -1, 4, 0, "default"}),
             (wl_t){.cq = "c1", .prio = 1, .cpu = 4}, "");
}

Test(sched_kueue_cases, preempting_locally_borrowing_other_resources_without_cohort_candidates)
{
    run_case(WLS({"c1-low", "c1", -1, 4, 0, "default"},
                 {"c2-low-1", "c2", -1, 4, 0, "default"},
                 {"c2-high-2", "c2", 1, 4, 0, "default"}),
             (wl_t){.cq = "c1", .prio = 1, .cpu = 4, .mem = 5}, "c1-low:InClusterQueue");
}

Test(sched_kueue_cases, preempting_locally_and_borrowing_same_resource_in_cohort)
{
    run_case(WLS({"c1-med", "c1", 0, 4, 0, "default"},
                 {"c1-low", "c1", -1, 4, 0, "default"},
                 {"c2-low-1", "c2", -1, 4, 0, "default"}),
             (wl_t){.cq = "c1", .prio = 1, .cpu = 4}, "c1-low:InClusterQueue");
}

Test(sched_kueue_cases, preempting_locally_and_borrowing_same_resource_in_cohort_no_borrowing_limit)
{
    run_case(WLS({"d1-med", "d1", 0, 4, 0, "default"},
                 {"d1-low", "d1", -1, 4, 0, "default"},
                 {"d2-low-1", "d2", -1, 4, 0, "default"}),
             (wl_t){.cq = "d1", .prio = 1, .cpu = 4}, "d1-low:InClusterQueue");
}

Test(sched_kueue_cases, preempting_locally_borrowing_other_resources_with_cohort_candidates)
{
    run_case(WLS({"c1-med", "c1", 0, 4, 0, "default"},
                 {"c2-low-1", "c2", -1, 5, 0, "default"},
                 {"c2-low-2", "c2", -1, 1, 0, "default"},
                 {"c2-low-3", "c2", -1, 1, 0, "default"}),
             (wl_t){.cq = "c1", .prio = 1, .cpu = 2, .mem = 5}, "c1-med:InClusterQueue");
}

Test(sched_kueue_cases, preempting_locally_and_not_borrowing_same_resource_in_1_queue_cohort)
{
    run_case(WLS({"l1-med", "l1", 0, 4, 0, "default"},
                 {"l1-low", "l1", -1, 2, 0, "default"}),
             (wl_t){.cq = "l1", .prio = 1, .cpu = 4}, "l1-med:InClusterQueue");
}

Test(sched_kueue_cases, do_not_reclaim_borrowed_quota_from_same_priority_for_reclaim_lower_priority)
{
    run_case(WLS({"c1", "c1", 0, 2, 0, "default"},
                 {"c2-1", "c2", 0, 4, 0, "default"},
                 {"c2-2", "c2", 0, 4, 0, "default"}),
             (wl_t){.cq = "c1", .prio = 0, .cpu = 4}, "");
}

Test(sched_kueue_cases, reclaim_borrowed_quota_from_same_priority_for_reclaim_any)
{
    run_case(WLS({"c1-1", "c1", 0, 4, 0, "default", NULL, 600},
                 {"c1-2", "c1", 1, 4, 0, "default"},
                 {"c2", "c2", 0, 2, 0, "default"}),
             (wl_t){.cq = "c2", .prio = 0, .cpu = 4}, "c1-1:InCohortReclamation");
}

Test(sched_kueue_cases, preempt_from_all_cluster_queues_in_cohort)
{
    run_case(WLS({"c1-low", "c1", -1, 3, 0, "default"},
                 {"c1-mid", "c1", 0, 2, 0, "default"},
                 {"c2-low", "c2", -1, 3, 0, "default"},
                 {"c2-mid", "c2", 0, 4, 0, "default"}),
             (wl_t){.cq = "c1", .prio = 0, .cpu = 4},
             "c1-low:InClusterQueue,c2-low:InCohortReclamation");
}

Test(sched_kueue_cases, cant_preempt_workloads_in_cluster_queue_for_within_cluster_queue_never)
{
    run_case(WLS({"c2-low", "c2", -1, 3, 0, "default"}),
             (wl_t){.cq = "c2", .prio = 1, .cpu = 4}, "admit");
}

Test(sched_kueue_cases, preempt_newer_workloads_with_the_same_priority)
{
    run_case(WLS({"wl1", "preventStarvation", 2, 2, 0, "default", NULL, 300},
                 {"wl2", "preventStarvation", 1, 2, 0, "default", NULL, 1000},
                 {"wl3", "preventStarvation", 1, 2, 0, "default", NULL, 300}),
             (wl_t){.cq = "preventStarvation", .prio = 1, .cpu = 2, .queued = 50},
             "wl2:InClusterQueue");
}

Test(sched_kueue_cases, borrow_within_cohort_allow_preempting_a_lower_priority_one_while_borrowing)
{
    run_case(WLS({"a_best_effort_low", "a_best_effort", -1, 10, 0, "default"},
                 {"b_best_effort_low", "b_best_effort", -1, 1, 0, "default"}),
             (wl_t){.cq = "a_standard", .prio = 0, .cpu = 10},
             "a_best_effort_low:InCohortReclaimWhileBorrowing");
}

Test(sched_kueue_cases, borrow_within_cohort_dont_preempt_above_threshold_if_still_borrowing)
{
    run_case(WLS({"b_standard", "b_standard", 1, 10, 0, "default"}),
             (wl_t){.cq = "a_standard", .prio = 2, .cpu = 10}, "");
}

Test(sched_kueue_cases, borrow_within_cohort_preempt_above_threshold_if_not_borrowing_after)
{
    run_case(WLS({"b_standard", "b_standard", 1, 13, 0, "default"}),
             (wl_t){.cq = "a_standard", .prio = 2, .cpu = 1}, "b_standard:InCohortReclamation");
}

Test(sched_kueue_cases, borrow_within_cohort_dont_preempt_lower_priority_from_the_same_queue)
{
    run_case(WLS({"a_standard", "a_standard", 1, 13, 0, "default"}),
             (wl_t){.cq = "a_standard", .prio = 2, .cpu = 1}, "");
}

Test(sched_kueue_cases, borrow_within_cohort_only_preempt_from_cq_if_none_below_threshold)
{
    run_case(WLS({"a_standard_1", "a_standard", 1, 10, 0, "default"},
                 {"a_standard_2", "a_standard", 1, 1, 0, "default"},
                 {"b_standard_1", "b_standard", 1, 1, 0, "default"},
                 {"b_standard_2", "b_standard", 2, 1, 0, "default"}),
             (wl_t){.cq = "b_standard", .prio = 3, .cpu = 1}, "b_standard_1:InClusterQueue");
}

Test(sched_kueue_cases, borrow_within_cohort_preempt_from_cq_and_other_cqs_below_threshold)
{
    run_case(WLS({"b_standard_high", "b_standard", 2, 10, 0, "default"},
                 {"b_standard_mid", "b_standard", 1, 1, 0, "default"},
                 {"a_best_effort_low", "a_best_effort", -1, 1, 0, "default"},
                 {"a_best_effort_lower", "a_best_effort", -2, 1, 0, "default"}),
             (wl_t){.cq = "b_standard", .prio = 2, .cpu = 2},
             "a_best_effort_lower:InCohortReclaimWhileBorrowing,b_standard_mid:InClusterQueue");
}

Test(sched_kueue_cases, reclaim_quota_from_lender)
{
    run_case(WLS({"lend1-low", "lend1", -1, 3, 0, "default"},
                 {"lend2-mid", "lend2", 0, 3, 0, "default"},
                 {"lend2-high", "lend2", 1, 4, 0, "default"}),
             (wl_t){.cq = "lend1", .prio = 1, .cpu = 3}, "lend2-mid:InCohortReclamation");
}

Test(sched_kueue_cases, preempt_from_all_cluster_queues_in_cohort_lend)
{
    run_case(WLS({"lend1-low", "lend1", -1, 3, 0, "default"},
                 {"lend1-mid", "lend1", 0, 2, 0, "default"},
                 {"lend2-low", "lend2", -1, 3, 0, "default"},
                 {"lend2-mid", "lend2", 0, 4, 0, "default"}),
             (wl_t){.cq = "lend1", .prio = 0, .cpu = 4},
             "lend1-low:InClusterQueue,lend2-low:InCohortReclamation");
}

Test(sched_kueue_cases, cannot_preempt_from_others_if_exceeds_requestable_quota_with_lending)
{
    run_case(WLS({"lend2-low", "lend2", -1, 10, 0, "default"}),
             (wl_t){.cq = "lend1", .prio = 0, .cpu = 9}, "");
}

/* scheduler_test.go "preempt workloads in ClusterQueue and cohort": eng-beta is within its
 * nominal on-demand quota, so it reclaims eng-alpha's borrowed on-demand capacity and preempts
 * its own lowest-priority workload at once. */
Test(sched_kueue_cases, preempt_workloads_in_cluster_queue_and_cohort)
{
    ty_sched *s = mk(false);
    ty_error err = TY_ERROR_INIT;
    add_flavor(s, "on-demand", NULL);
    add_flavor(s, "spot", NULL);
    ty_sched_amount alloc[] = {{"cpu", G(100000)}};
    ty_sched_node n = {.name = "n", .allocatable = alloc, .n_allocatable = 1};
    must(ty_sched_add_node(s, &n, &err), &err);
    const cq_t alpha = {"eng-alpha", "eng", NEVER, NEVER, NEVER, false, 0,
                        {{{"on-demand", {{"cpu", 50, 50, -1}}}, {"spot", {{"cpu", 100, 0, -1}}}}}};
    const cq_t beta = {"eng-beta", "eng", LP, ANY, NEVER, false, 0,
                       {{{"on-demand", {{"cpu", 50, 10, -1}}}, {"spot", {{"cpu", 0, 100, -1}}}}}};
    add_cq_t(s, &alpha);
    add_cq_t(s, &beta);
    const wl_t adm[] = {{"use-all-spot", "eng-alpha", 0, 100, 0, "spot"},
                        {"low-1", "eng-beta", -1, 30, 0, "on-demand"},
                        {"low-2", "eng-beta", -2, 10, 0, "on-demand"},
                        {"borrower", "eng-alpha", 0, 60, 0, "on-demand"}};
    for (size_t i = 0; i < 4; i++)
        add_wl_t(s, &adm[i], true, 100);
    add_wl_t(s, &(wl_t){"preemptor", "eng-beta", 0, 20, 0, NULL}, false, 900);
    ty_sched_run(s);
    const ty_sched_decision *d = dec(s, "preemptor");
    expect(s, "preemptor", TY_SCHED_PREEMPT);
    cr_assert_eq(d->n_victims, 2);
    bool borrower = false, low2 = false;
    for (size_t i = 0; i < 2; i++) {
        borrower |= !strcmp(d->victims[i].workload, "borrower") &&
                    d->victims[i].reason == TY_SCHED_IN_COHORT_RECLAMATION;
        low2 |= !strcmp(d->victims[i].workload, "low-2") &&
                d->victims[i].reason == TY_SCHED_IN_CLUSTER_QUEUE;
    }
    cr_assert(borrower && low2, "victims %s, %s", d->victims[0].workload,
              d->victims[1].workload);
    cr_assert_str_eq(d->pod_sets[0].flavors[0], "on-demand");
    ty_sched_free(s);
}

/* flavorassigner: a request above the flavor's nominal quota cannot preempt (it would take
 * others' quota in order to borrow), unless borrowWithinCohort lets it. */
static ty_sched *beyond_nominal(ty_sched_preempt_policy borrow)
{
    ty_sched *s = mk(false);
    add_flavor(s, "f", NULL);
    add_node(s, "n1", 8, 0, NULL);
    add_node(s, "n2", 8, 0, NULL);
    add_cq(s, (ty_sched_cluster_queue){.name = "q", .cohort = "c",
                                       .within_cluster_queue = TY_SCHED_PREEMPT_LOWER_PRIORITY,
                                       .reclaim_within_cohort = TY_SCHED_PREEMPT_LOWER_PRIORITY,
                                       .borrow_within_cohort = borrow},
           &(fq_t){"f", 4, -1, -1}, 1);
    add_cq1(s, "other", "c", "f", 4);
    add_admitted(s, "low", "q", 0, 50, 1, 4, "f", "n1", false);
    add_admitted(s, "theirs", "other", 0, 60, 1, 2, "f", "n2", false);
    add_wl(s, "big", "q", 10, 100, 1, 6);
    ty_sched_run(s);
    return s;
}

Test(sched_kueue_cases, a_request_above_nominal_quota_does_not_preempt)
{
    ty_sched *s = beyond_nominal(TY_SCHED_PREEMPT_NEVER);
    expect(s, "big", TY_SCHED_WAIT);
    expect_msg(s, "big", "insufficient unused quota for nvidia.com/gpu in flavor f, 4 more "
                         "needed");
    ty_sched_free(s);
    s = beyond_nominal(TY_SCHED_PREEMPT_LOWER_PRIORITY);
    expect(s, "big", TY_SCHED_PREEMPT);
    cr_assert_str_eq(dec(s, "big")->victims[0].workload, "low");
    cr_assert(dec(s, "big")->borrowing);
    ty_sched_free(s);
}

/* TestLastSchedulingContext: whenCanPreempt Preempt stops at the first flavor where preemption
 * could help; when it finds no victims there, Kueue's next cycle goes on with the next flavor. */
static ty_sched *preempt_then_next(ty_sched_preempt_policy within)
{
    ty_sched *s = mk(false);
    add_flavor(s, "one", "pool=one");
    add_flavor(s, "two", "pool=two");
    add_node(s, "n1", 8, 0, "pool=one");
    add_node(s, "n2", 8, 0, "pool=two");
    fq_t f[] = {{"one", 4, -1, -1}, {"two", 4, -1, -1}};
    add_cq(s, (ty_sched_cluster_queue){.name = "q", .within_cluster_queue = within,
                                       .when_can_preempt_preempt = true},
           f, 2);
    add_admitted(s, "running", "q", 0, 50, 1, 4, "one", "n1", false);
    add_wl(s, "p", "q", 0, 100, 1, 4);
    ty_sched_run(s);
    return s;
}

Test(sched_kueue_cases, when_can_preempt_preempt_without_victims_goes_on_to_the_next_flavor)
{
    ty_sched *s = preempt_then_next(TY_SCHED_PREEMPT_NEVER);
    expect(s, "p", TY_SCHED_ADMIT);
    cr_assert_str_eq(dec(s, "p")->pod_sets[0].flavors[0], "two");
    ty_sched_free(s);
    s = preempt_then_next(TY_SCHED_PREEMPT_LOWER_PRIORITY); /* same priority: no victim */
    expect(s, "p", TY_SCHED_ADMIT);
    cr_assert_str_eq(dec(s, "p")->pod_sets[0].flavors[0], "two");
    ty_sched_free(s);
}

/* scheduler_test.go "capacity blocked when lending clusterqueue not guaranteed to reclaim"
 * (and "... not blocked ... can reclaim"): a StrictFIFO head that needs preemption and has no
 * victims keeps the quota it waits for from a borrower elsewhere in the cohort, unless its
 * queue can always reclaim it (reclaimWithinCohort: Any). */
static ty_sched *blocked_capacity(ty_sched_preempt_policy reclaim, ty_sched_queueing queueing)
{
    ty_sched *s = mk(false);
    add_flavor(s, "on-demand", NULL);
    add_node(s, "n1", 8, 0, NULL);
    add_cq(s, (ty_sched_cluster_queue){.name = "A", .cohort = "root", .queueing = queueing,
                                       .reclaim_within_cohort = reclaim},
           &(fq_t){"on-demand", 2, -1, -1}, 1);
    add_cq1(s, "B", "root", "on-demand", 0);
    add_admitted(s, "a1-admitted", "A", 0, 50, 1, 1, "on-demand", "n1", false);
    add_wl(s, "a2-pending", "A", 0, 90, 1, 2);
    add_wl(s, "b1-pending", "B", 0, 100, 1, 1);
    ty_sched_run(s);
    return s;
}

Test(sched_kueue_cases, capacity_blocked_when_lending_cluster_queue_not_guaranteed_to_reclaim)
{
    ty_sched *s = blocked_capacity(TY_SCHED_PREEMPT_LOWER_PRIORITY, TY_SCHED_STRICT_FIFO);
    expect(s, "a2-pending", TY_SCHED_WAIT);
    expect(s, "b1-pending", TY_SCHED_WAIT);
    /* what it keeps is not reported as usage */
    cr_assert_eq(ty_sched_usage(s, "A", "on-demand", GPU), G(1));
    ty_sched_free(s);
    s = blocked_capacity(TY_SCHED_PREEMPT_ANY, TY_SCHED_STRICT_FIFO);
    expect(s, "a2-pending", TY_SCHED_WAIT);
    expect(s, "b1-pending", TY_SCHED_ADMIT);
    ty_sched_free(s);
    /* BestEffortFIFO: Kueue sets the head aside after one cycle, and the borrower goes. */
    s = blocked_capacity(TY_SCHED_PREEMPT_LOWER_PRIORITY, TY_SCHED_BEST_EFFORT_FIFO);
    expect(s, "b1-pending", TY_SCHED_ADMIT);
    ty_sched_free(s);
}

/* flavorassigner_test.go, reclamation against priority preemption: flavors uno, due, tre of
 * 10 "cpu" (upstream's compute) and 10 "memory" (its gpu) each; the other queue has no quota
 * and borrows; whenCanPreempt TryNextFlavor. Returns the flavor chosen for memory. */
static const char *reclaim_flavor(const wl_t *admitted, int cpu, int mem)
{
    ty_sched *s = mk(false);
    ty_error err = TY_ERROR_INIT;
    add_flavor(s, "uno", NULL);
    add_flavor(s, "due", NULL);
    add_flavor(s, "tre", NULL);
    ty_sched_amount alloc[] = {{"cpu", G(100000)}, {"memory", G(100000)}};
    ty_sched_node n = {.name = "n", .allocatable = alloc, .n_allocatable = 2};
    must(ty_sched_add_node(s, &n, &err), &err);
    const cq_t test = {"test", "cohort", LP, LP, NEVER, false, 0,
                       {{CPU_MEM("uno", 10, -1, 10, -1), CPU_MEM("due", 10, -1, 10, -1),
                         CPU_MEM("tre", 10, -1, 10, -1)}}};
    const cq_t other = {"other", "cohort", NEVER, NEVER, NEVER, false, 0,
                        {{CPU_MEM("uno", 0, -1, 0, -1), CPU_MEM("due", 0, -1, 0, -1),
                          CPU_MEM("tre", 0, -1, 0, -1)}}};
    add_cq_t(s, &test);
    add_cq_t(s, &other);
    for (const wl_t *w = admitted; w->key; w++)
        add_wl_t(s, w, true, 100);
    add_wl_t(s, &(wl_t){"in", "test", 0, cpu, mem, NULL}, false, 900);
    ty_sched_run(s);
    const ty_sched_decision *d = dec(s, "in");
    cr_assert_eq(d->verdict, TY_SCHED_PREEMPT, "%s", d->message ? d->message : "");
    static char got[16];
    snprintf(got, sizeof got, "%s", d->pod_sets[0].flavors[cpu ? 1 : 0]);
    ty_sched_free(s);
    return got;
}

Test(sched_kueue_cases, select_first_flavor_where_gpu_reclamation_is_possible)
{
    cr_assert_str_eq(reclaim_flavor(WLS({"t-uno", "test", -1, 0, 1, "uno"},
                                        {"o-due", "other", -1, 0, 1, "due"},
                                        {"o-tre", "other", -1, 0, 1, "tre"}),
                                    0, 10),
                     "due");
}

Test(sched_kueue_cases, select_first_flavor_where_priority_based_preemption_is_possible)
{
    cr_assert_str_eq(reclaim_flavor(WLS({"t-uno", "test", -1, 0, 1, "uno"},
                                        {"t-due", "test", -1, 0, 1, "due"},
                                        {"t-tre", "test", -1, 0, 1, "tre"}),
                                    0, 10),
                     "uno");
}

Test(sched_kueue_cases, select_second_flavor_where_gpu_reclamation_is_possible_as_compute_fits)
{
    cr_assert_str_eq(reclaim_flavor(WLS({"t-uno", "test", -1, 1, 1, "uno"},
                                        {"t-due", "test", -1, 1, 0, "due"},
                                        {"o-due", "other", -1, 0, 1, "due"},
                                        {"o-tre", "other", -1, 0, 1, "tre"}),
                                    10, 10),
                     "tre");
}

#define THREE_A(m) {"a1", "a", -2, 1, m, "default"}, {"a2", "a", -2, 1, m, "default"}, \
                   {"a3", "a", -1, 1, m, "default"}
#define THREE_B(m) {"b1", "b", 0, 1, m, "default"}, {"b2", "b", 0, 1, m, "default"}, \
                   {"b3", "b", 0, 1, m, "default"}

Test(sched_kueue_cases, preemptions_from_cq_when_target_queue_is_exhausted_for_the_single_resource)
{
    run_case(WLS(THREE_A(0), THREE_B(0)), (wl_t){.cq = "a", .prio = 0, .cpu = 2},
             "a1:InClusterQueue,a2:InClusterQueue");
}

Test(sched_kueue_cases, preemptions_from_cq_when_target_queue_is_exhausted_for_two_resources)
{
    run_case(WLS(THREE_A(1), THREE_B(1)), (wl_t){.cq = "a", .prio = 0, .cpu = 2, .mem = 2},
             "a1:InClusterQueue,a2:InClusterQueue");
}

Test(sched_kueue_cases, preemptions_from_cq_when_target_queue_is_exhausted_for_one_resource)
{
    run_case(WLS(THREE_A(0), THREE_B(0)), (wl_t){.cq = "a", .prio = 0, .cpu = 2, .mem = 2},
             "a1:InClusterQueue,a2:InClusterQueue");
}

Test(sched_kueue_cases, allow_preemption_from_other_queues_if_target_cq_is_not_exhausted)
{
    run_case(WLS({"a1", "a", -1, 1, 0, "default"}, {"b1", "b", 0, 1, 0, "default"},
                 {"b2", "b", 0, 1, 0, "default"}, {"b3", "b", 0, 1, 0, "default"},
                 {"b4", "b", 0, 1, 0, "default"}, {"b5", "b", -1, 1, 0, "default"}),
             (wl_t){.cq = "a", .prio = 0, .cpu = 2}, "a1:InClusterQueue,b5:InCohortReclamation");
}

Test(sched_kueue_cases, reclaim_quota_if_workload_requests_0_of_a_resource_at_nominal_quota)
{
    run_case(WLS({"c1-low", "c1", -1, 3, 3, "default"},
                 {"c2-mid", "c2", 0, 3, 0, "default"},
                 {"c2-high", "c2", 1, 6, 0, "default"}),
             (wl_t){.cq = "c1", .prio = 1, .cpu = 3}, "c2-mid:InCohortReclamation");
}
