/* Random snapshots (fixed seeds) against what must hold after any pass: one decision per
 * pending workload, nodes never over-committed by admissions, quota limits kept. */
#include <stdlib.h>

#include "sched_fixtures.h"

#define NODES 24
#define QUEUES 4

typedef struct {
    uint32_t seed;
} rng;

static int rnd(rng *r, int n)
{
    r->seed = r->seed * 1103515245u + 12345u;
    return (int)((r->seed >> 16) % (uint32_t)n);
}

static void one(uint32_t seed)
{
    rng r = {seed};
    bool fair = rnd(&r, 2);
    ty_sched *s = mk(fair);
    add_flavor(s, "fa", "pool=a");
    add_flavor(s, "fb", "pool=b");
    int free_gpus[NODES];
    char names[NODES][16];
    for (int i = 0; i < NODES; i++) {
        free_gpus[i] = 8;
        snprintf(names[i], sizeof names[i], "n%02d", i);
        int used = rnd(&r, 4) == 0 ? rnd(&r, 4) : 0;
        free_gpus[i] -= used;
        add_node(s, names[i], 8, used, i < NODES / 2 ? "pool=a" : "pool=b");
    }
    static const char *const qn[QUEUES] = {"q0", "q1", "q2", "q3"};
    int nominal[QUEUES][2], blimit[QUEUES][2];
    bool cohort[QUEUES];
    for (int q = 0; q < QUEUES; q++) {
        cohort[q] = rnd(&r, 4) != 0;
        fq_t f[2];
        for (int k = 0; k < 2; k++) {
            nominal[q][k] = rnd(&r, 40);
            blimit[q][k] = rnd(&r, 3) == 0 ? rnd(&r, 20) : -1;
            f[k] = (fq_t){k ? "fb" : "fa", nominal[q][k], blimit[q][k],
                          rnd(&r, 3) == 0 ? rnd(&r, nominal[q][k] + 1) : -1};
        }
        ty_sched_cluster_queue base = {
            .name = qn[q], .cohort = cohort[q] ? "c" : NULL,
            .queueing = rnd(&r, 2) ? TY_SCHED_STRICT_FIFO : TY_SCHED_BEST_EFFORT_FIFO,
            .within_cluster_queue = (ty_sched_preempt_policy)rnd(&r, 3),
            .reclaim_within_cohort = rnd(&r, 2) ? TY_SCHED_PREEMPT_ANY : TY_SCHED_PREEMPT_NEVER,
            .borrow_within_cohort = (ty_sched_preempt_policy)rnd(&r, 2),
            .when_can_borrow_try_next = rnd(&r, 2),
            .when_can_preempt_preempt = rnd(&r, 2),
            .fair_weight_milli = 500 * rnd(&r, 4),
            .stopped = rnd(&r, 10) == 0};
        add_cq(s, base, f, 2);
    }
    /* admitted workloads, within quota and node capacity */
    struct {
        int q, k, g, node;
    } run[30];
    int used_q[QUEUES][2] = {{0}};
    for (int i = 0; i < 30; i++) {
        int q = rnd(&r, QUEUES), k = rnd(&r, 2), g = 1 << rnd(&r, 3);
        run[i].g = 0;
        if (used_q[q][k] + g > nominal[q][k])
            continue;
        int node = -1;
        for (int n = k * NODES / 2; n < (k + 1) * NODES / 2; n++)
            if (free_gpus[n] >= g) {
                node = n;
                break;
            }
        if (node < 0)
            continue;
        free_gpus[node] -= g;
        used_q[q][k] += g;
        run[i].q = q;
        run[i].k = k;
        run[i].g = g;
        run[i].node = node;
        char key[16];
        snprintf(key, sizeof key, "run-%02d", i);
        add_admitted(s, key, qn[q], rnd(&r, 3), 10 + i, 1, g, k ? "fb" : "fa", names[node],
                     rnd(&r, 8) == 0);
    }
    struct {
        int q, pods, g;
    } pend[80];
    int pending = 40 + rnd(&r, 40);
    for (int i = 0; i < pending; i++) {
        char key[16];
        snprintf(key, sizeof key, "w-%03d", i);
        pend[i].q = rnd(&r, QUEUES);
        int prio = rnd(&r, 4);
        int64_t at = 100 + rnd(&r, 30);
        pend[i].pods = 1 + rnd(&r, 3);
        pend[i].g = 1 << rnd(&r, 4);
        add_wl(s, key, qn[pend[i].q], prio, at, pend[i].pods, pend[i].g);
    }
    ty_sched_run(s);

    cr_assert_eq(ty_sched_n_decisions(s), (size_t)pending, "seed %u", seed);
    int node_gpus[NODES]; /* now: what runs there, victims included */
    for (int i = 0; i < NODES; i++)
        node_gpus[i] = 8 - free_gpus[i];
    int future[QUEUES][2]; /* once the victims are gone and the preemptors are in */
    memcpy(future, used_q, sizeof future);
    for (size_t i = 0; i < ty_sched_n_decisions(s); i++) {
        const ty_sched_decision *d = ty_sched_decision_at(s, i);
        cr_assert_eq(ty_sched_decision_of(s, d->workload), d, "seed %u: %s twice", seed,
                     d->workload);
        if (d->verdict == TY_SCHED_WAIT) {
            cr_assert(d->message && *d->message, "seed %u: %s has no message", seed, d->workload);
            continue;
        }
        int w = atoi(d->workload + 2);
        int q = pend[w].q;
        cr_assert_str_eq(d->cluster_queue, qn[q]);
        int k = !strcmp(d->pod_sets[0].flavors[0], "fb");
        future[q][k] += pend[w].pods * pend[w].g;
        for (size_t v = 0; v < d->n_victims; v++) {
            int x = atoi(d->victims[v].workload + 4);
            cr_assert_gt(run[x].g, 0);
            future[run[x].q][run[x].k] -= run[x].g;
        }
        if (d->verdict != TY_SCHED_ADMIT)
            continue;
        for (int p = 0; p < pend[w].pods; p++) {
            int n = atoi(d->pod_sets[0].nodes[p] + 1);
            cr_assert_eq(n >= NODES / 2, k, "seed %u: %s on a node of the other flavor", seed,
                         d->workload);
            node_gpus[n] += pend[w].g;
        }
    }
    for (int n = 0; n < NODES; n++)
        cr_assert_leq(node_gpus[n], 8, "seed %u: node %d over-committed", seed, n);
    for (int k = 0; k < 2; k++) {
        int cohort_use = 0, cohort_nominal = 0;
        for (int q = 0; q < QUEUES; q++) {
            cr_assert_geq(future[q][k], 0);
            if (!cohort[q]) {
                cr_assert_leq(future[q][k], nominal[q][k], "seed %u: q%d over", seed, q);
                continue;
            }
            if (blimit[q][k] >= 0)
                cr_assert_leq(future[q][k], nominal[q][k] + blimit[q][k],
                              "seed %u: q%d past its borrowing limit", seed, q);
            cohort_use += future[q][k];
            cohort_nominal += nominal[q][k];
        }
        cr_assert_leq(cohort_use, cohort_nominal, "seed %u: cohort over", seed);
    }
    ty_sched_free(s);
}

Test(sched_invariants, random_snapshots)
{
    for (uint32_t seed = 1; seed <= 200; seed++)
        one(seed);
}
