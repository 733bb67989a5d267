/* The scheduling core's preemption and fair sharing, one test per documented behaviour. */
#include "sched_fixtures.h"

static ty_sched *within(ty_sched_preempt_policy pol, int pending_prio, int64_t admitted_at)
{
    ty_sched *s = mk(false);
    add_flavor(s, "f", NULL);
    add_node(s, "n1", 8, 0, NULL);
    add_cq(s, (ty_sched_cluster_queue){.name = "q", .within_cluster_queue = pol},
           &(fq_t){"f", 8, -1, -1}, 1);
    add_admitted(s, "running", "q", 0, admitted_at, 1, 8, "f", "n1", false);
    add_wl(s, "pending", "q", pending_prio, 100, 1, 6);
    add_wl(s, "after", "q", 0, 150, 1, 2);
    ty_sched_run(s);
    return s;
}

Test(sched_preempt, lower_priority_preempts_strictly_lower_priority_in_the_queue)
{
    ty_sched *s = within(TY_SCHED_PREEMPT_LOWER_PRIORITY, 10, 50);
    expect(s, "pending", TY_SCHED_PREEMPT);
    const ty_sched_decision *d = dec(s, "pending");
    cr_assert_eq(d->n_victims, 1);
    cr_assert_str_eq(d->victims[0].workload, "running");
    cr_assert_eq(d->victims[0].reason, TY_SCHED_IN_CLUSTER_QUEUE);
    cr_assert_str_eq(d->message, "couldn't assign flavors to pod set main: insufficient unused "
                                 "quota for nvidia.com/gpu in flavor f, 6 more needed. Pending "
                                 "the preemption of 1 workload(s)");
    cr_assert_str_eq(d->pod_sets[0].nodes[0], "n1");
    cr_assert_not(d->borrowing);
    /* The 2 GPUs the victim frees beyond the preemptor's 6 are not for the next one. */
    expect(s, "after", TY_SCHED_WAIT);
    /* The victim is still reported as the queue's usage until it is gone. */
    cr_assert_eq(ty_sched_usage(s, "q", "f", GPU), G(8));
    ty_sched_stats st;
    ty_sched_stats_get(s, &st);
    cr_assert_eq(st.preempting, 1);
    cr_assert_eq(st.victims, 1);
    ty_sched_free(s);

    s = within(TY_SCHED_PREEMPT_LOWER_PRIORITY, 0, 500);
    expect(s, "pending", TY_SCHED_WAIT);
    ty_sched_free(s);
}

Test(sched_preempt, lower_or_newer_equal_priority_also_preempts_newer_peers)
{
    ty_sched *s = within(TY_SCHED_PREEMPT_LOWER_OR_NEWER_EQUAL_PRIORITY, 0, 500);
    expect(s, "pending", TY_SCHED_PREEMPT);
    cr_assert_str_eq(dec(s, "pending")->victims[0].workload, "running");
    ty_sched_free(s);
    /* the running one was queued before the pending one: not a candidate */
    s = within(TY_SCHED_PREEMPT_LOWER_OR_NEWER_EQUAL_PRIORITY, 0, 50);
    expect(s, "pending", TY_SCHED_WAIT);
    ty_sched_free(s);
}

static ty_sched *reclaim(ty_sched_preempt_policy pol)
{
    ty_sched *s = mk(false);
    add_flavor(s, "f", NULL);
    add_node(s, "n1", 8, 0, NULL);
    add_cq(s, (ty_sched_cluster_queue){.name = "owner", .cohort = "c", .reclaim_within_cohort = pol},
           &(fq_t){"f", 8, -1, -1}, 1);
    add_cq1(s, "borrower", "c", "f", 0);
    add_admitted(s, "borrowed", "borrower", 5, 50, 1, 8, "f", "n1", false);
    add_wl(s, "mine", "owner", 0, 100, 1, 8);
    ty_sched_run(s);
    return s;
}

Test(sched_preempt, reclaim_within_cohort_gets_the_nominal_quota_back)
{
    ty_sched *s = reclaim(TY_SCHED_PREEMPT_ANY);
    expect(s, "mine", TY_SCHED_PREEMPT);
    cr_assert_str_eq(dec(s, "mine")->victims[0].workload, "borrowed");
    cr_assert_eq(dec(s, "mine")->victims[0].reason, TY_SCHED_IN_COHORT_RECLAMATION);
    ty_sched_free(s);
    /* LowerPriority: the borrower's workload has the higher priority */
    s = reclaim(TY_SCHED_PREEMPT_LOWER_PRIORITY);
    expect(s, "mine", TY_SCHED_WAIT);
    ty_sched_free(s);
    s = reclaim(TY_SCHED_PREEMPT_NEVER);
    expect(s, "mine", TY_SCHED_WAIT);
    ty_sched_free(s);
}

static ty_sched *borrow_within(bool has_threshold, int threshold)
{
    ty_sched *s = mk(false);
    add_flavor(s, "f", NULL);
    add_node(s, "n1", 8, 0, NULL);
    add_cq(s, (ty_sched_cluster_queue){.name = "q1", .cohort = "c",
                                       .reclaim_within_cohort = TY_SCHED_PREEMPT_ANY,
                                       .borrow_within_cohort = TY_SCHED_PREEMPT_LOWER_PRIORITY,
                                       .has_borrow_threshold = has_threshold,
                                       .borrow_max_priority_threshold = threshold},
           &(fq_t){"f", 4, -1, -1}, 1);
    add_cq1(s, "q2", "c", "f", 4);
    add_admitted(s, "other", "q2", 1, 50, 1, 8, "f", "n1", false);
    add_wl(s, "wide", "q1", 10, 100, 1, 8); /* needs to borrow 4 */
    ty_sched_run(s);
    return s;
}

Test(sched_preempt, borrow_within_cohort_respects_max_priority_threshold)
{
    ty_sched *s = borrow_within(true, 0);
    expect(s, "wide", TY_SCHED_WAIT);
    ty_sched_free(s);
    s = borrow_within(true, 1);
    expect(s, "wide", TY_SCHED_PREEMPT);
    cr_assert_str_eq(dec(s, "wide")->victims[0].workload, "other");
    cr_assert_eq(dec(s, "wide")->victims[0].reason, TY_SCHED_IN_COHORT_RECLAIM_WHILE_BORROWING);
    ty_sched_free(s);
    s = borrow_within(false, 0);
    expect(s, "wide", TY_SCHED_PREEMPT);
    ty_sched_free(s);
}

Test(sched_preempt, victims_are_the_lowest_priority_then_most_recent_then_fewest)
{
    ty_sched *s = mk(false);
    add_flavor(s, "f", NULL);
    add_node(s, "n1", 8, 0, NULL);
    add_cq(s, (ty_sched_cluster_queue){.name = "q",
                                       .within_cluster_queue = TY_SCHED_PREEMPT_LOWER_PRIORITY},
           &(fq_t){"f", 8, -1, -1}, 1);
    add_admitted(s, "a-prio1", "q", 1, 100, 1, 4, "f", "n1", false);
    add_admitted(s, "c-prio0-old", "q", 0, 50, 1, 2, "f", "n1", false);
    add_admitted(s, "d-prio0-new", "q", 0, 60, 1, 2, "f", "n1", false);
    add_wl(s, "p", "q", 5, 200, 1, 4);
    ty_sched_run(s);
    const ty_sched_decision *d = dec(s, "p");
    cr_assert_eq(d->verdict, TY_SCHED_PREEMPT);
    cr_assert_eq(d->n_victims, 2);
    cr_assert_str_eq(d->victims[0].workload, "d-prio0-new");
    cr_assert_str_eq(d->victims[1].workload, "c-prio0-old");
    ty_sched_free(s);

    s = mk(false);
    add_flavor(s, "f", NULL);
    add_node(s, "n1", 8, 0, NULL);
    add_cq(s, (ty_sched_cluster_queue){.name = "q",
                                       .within_cluster_queue = TY_SCHED_PREEMPT_LOWER_PRIORITY},
           &(fq_t){"f", 8, -1, -1}, 1);
    add_admitted(s, "x-1gpu-newest", "q", 0, 300, 1, 1, "f", "n1", false);
    add_admitted(s, "y-4gpu", "q", 0, 200, 1, 4, "f", "n1", false);
    add_admitted(s, "z-3gpu-oldest", "q", 0, 100, 1, 3, "f", "n1", false);
    add_wl(s, "p", "q", 5, 400, 1, 4);
    ty_sched_run(s);
    d = dec(s, "p");
    cr_assert_eq(d->verdict, TY_SCHED_PREEMPT);
    cr_assert_eq(d->n_victims, 1, "x is given back: y alone makes room");
    cr_assert_str_eq(d->victims[0].workload, "y-4gpu");
    ty_sched_free(s);
}

static ty_sched *evicting(bool is_evicting)
{
    ty_sched *s = mk(false);
    add_flavor(s, "f", NULL);
    add_node(s, "n1", 8, 0, NULL);
    add_cq(s, (ty_sched_cluster_queue){.name = "q",
                                       .within_cluster_queue = TY_SCHED_PREEMPT_LOWER_PRIORITY},
           &(fq_t){"f", 8, -1, -1}, 1);
    add_admitted(s, "leaving", "q", 0, 100, 1, 4, "f", "n1", is_evicting);
    add_admitted(s, "staying", "q", 0, 50, 1, 4, "f", "n1", false);
    add_wl(s, "p", "q", 10, 200, 1, 4);
    add_wl(s, "low", "q", 0, 300, 1, 4);
    ty_sched_run(s);
    return s;
}

Test(sched_preempt, an_evicting_workload_makes_the_preemptor_wait_not_pick_more)
{
    ty_sched *s = evicting(true);
    expect(s, "p", TY_SCHED_WAIT);
    expect_msg(s, "p", "Waiting for 1 evicted workload(s) to leave");
    /* the room being made is held: the low one does not get it */
    expect(s, "low", TY_SCHED_WAIT);
    ty_sched_free(s);

    s = evicting(false);
    expect(s, "p", TY_SCHED_PREEMPT);
    cr_assert_eq(dec(s, "p")->n_victims, 1);
    cr_assert_str_eq(dec(s, "p")->victims[0].workload, "leaving"); /* most recently admitted */
    expect(s, "low", TY_SCHED_WAIT);
    ty_sched_free(s);
}

/* Fair sharing over passes: A (weight 1) starts with all of the lender's 12 GPUs, B (weight 2)
 * has endless demand too; victims leave before the next pass. */
typedef struct {
    char key[24];
    char cq[4];
    bool evicting;
    bool on;
} fs_wl;

Test(sched_preempt, fair_sharing_converges_to_the_weights)
{
    static fs_wl run[256];
    int n_run = 0;
    for (int i = 0; i < 12; i++) {
        snprintf(run[n_run].key, sizeof run[0].key, "a-init-%02d", i);
        snprintf(run[n_run].cq, sizeof run[0].cq, "A");
        run[n_run++].on = true;
    }
    int64_t ua = 0, ub = 0, sa = 0, sb = 0;
    size_t preempting = 0;
    for (int pass = 0; pass < 5; pass++) {
        for (int i = 0; i < n_run; i++)
            if (run[i].evicting)
                run[i].on = run[i].evicting = false;
        ty_sched *s = mk(true);
        add_flavor(s, "f", NULL);
        for (int i = 0; i < 3; i++) {
            char n[16];
            snprintf(n, sizeof n, "n%d", i);
            add_node(s, n, 8, 0, NULL);
        }
        add_cq1(s, "L", "c", "f", 12);
        fq_t none = {"f", 0, -1, -1};
        add_cq(s, (ty_sched_cluster_queue){.name = "A", .cohort = "c",
                                           .reclaim_within_cohort = TY_SCHED_PREEMPT_ANY,
                                           .fair_weight_milli = 1000},
               &none, 1);
        add_cq(s, (ty_sched_cluster_queue){.name = "B", .cohort = "c",
                                           .reclaim_within_cohort = TY_SCHED_PREEMPT_ANY,
                                           .fair_weight_milli = 2000},
               &none, 1);
        int placed[3] = {0};
        for (int i = 0; i < n_run; i++)
            if (run[i].on) {
                char n[16];
                int k = 0;
                while (placed[k] == 8)
                    k++;
                placed[k]++;
                snprintf(n, sizeof n, "n%d", k);
                add_admitted(s, run[i].key, run[i].cq, 0, 10 + i, 1, 1, "f", n, false);
            }
        char k[40];
        for (int i = 0; i < 12; i++) {
            snprintf(k, sizeof k, "a-%d-%02d", pass, i);
            add_wl(s, k, "A", 0, 1000 + pass * 100 + i, 1, 1);
            snprintf(k, sizeof k, "b-%d-%02d", pass, i);
            add_wl(s, k, "B", 0, 1000 + pass * 100 + i, 1, 1);
        }
        ty_sched_run(s);
        preempting = 0;
        for (size_t i = 0; i < ty_sched_n_decisions(s); i++) {
            const ty_sched_decision *d = ty_sched_decision_at(s, i);
            if (d->verdict == TY_SCHED_ADMIT) {
                cr_assert_lt(n_run, 256);
                snprintf(run[n_run].key, sizeof run[0].key, "%s", d->workload);
                snprintf(run[n_run].cq, sizeof run[0].cq, "%s", d->cluster_queue);
                run[n_run++].on = true;
            } else if (d->verdict == TY_SCHED_PREEMPT) {
                preempting++;
                for (size_t v = 0; v < d->n_victims; v++) {
                    cr_assert_eq(d->victims[v].reason, TY_SCHED_IN_COHORT_FAIR_SHARING);
                    for (int j = 0; j < n_run; j++)
                        if (run[j].on && !strcmp(run[j].key, d->victims[v].workload))
                            run[j].evicting = true;
                }
            }
        }
        ua = ty_sched_usage(s, "A", "f", GPU);
        ub = ty_sched_usage(s, "B", "f", GPU);
        sa = ty_sched_weighted_share(s, "A");
        sb = ty_sched_weighted_share(s, "B");
        ty_sched_free(s);
    }
    cr_assert_eq(preempting, 0, "still preempting after 5 passes");
    cr_assert_eq(ua, G(4), "A has %ld", (long)ua);
    cr_assert_eq(ub, G(8), "B has %ld", (long)ub);
    cr_assert_eq(sa, 333);
    cr_assert_eq(sb, 333);
}

/* A mixed snapshot (two flavors, four queues with different policies, admitted workloads,
 * pending gangs of many shapes and priorities) added forwards or backwards. */
typedef struct {
    char key[24];
    int cq, prio, pods, gpus, flavor, node;
    int64_t at;
    bool admitted;
} mix_wl;

static ty_sched *mixed(int order, bool fair)
{
    static mix_wl w[400];
    int nw = 0;
    uint32_t seed = 7;
#define RND(n) ((int)((seed = seed * 1103515245u + 12345u) >> 16) % (n))
    int free_gpus[40];
    for (int i = 0; i < 40; i++)
        free_gpus[i] = 8;
    for (int i = 0; i < 40; i++) {
        mix_wl *x = &w[nw];
        snprintf(x->key, sizeof x->key, "run-%03d", i);
        x->cq = RND(4);
        x->prio = RND(3);
        x->gpus = 1 << RND(4);
        x->pods = 1;
        x->flavor = RND(2);
        x->at = 100 + RND(50);
        x->admitted = true;
        x->node = -1;
        for (int n = x->flavor * 20; n < x->flavor * 20 + 20; n++)
            if (free_gpus[n] >= x->gpus) {
                x->node = n;
                free_gpus[n] -= x->gpus;
                break;
            }
        if (x->node >= 0)
            nw++;
    }
    for (int i = 0; i < 200; i++) {
        mix_wl *x = &w[nw++];
        snprintf(x->key, sizeof x->key, "pend-%03d", i);
        x->cq = RND(4);
        x->prio = RND(4);
        x->gpus = 1 << RND(4);
        x->pods = 1 + RND(4);
        x->at = 200 + RND(20); /* many equal times: the keys decide */
        x->admitted = false;
    }
#undef RND
    ty_sched *s = mk(fair);
    for (int i = 0; i < 2; i++)
        add_flavor(s, (order ? 1 - i : i) ? "fb" : "fa", (order ? 1 - i : i) ? "pool=b" : "pool=a");
    for (int i = 0; i < 40; i++) {
        int n = order ? 39 - i : i;
        char name[16];
        snprintf(name, sizeof name, "node-%02d", n);
        add_node(s, name, 8, 0, n < 20 ? "pool=a" : "pool=b");
    }
    static const char *const qn[] = {"q0", "q1", "q2", "q3"};
    for (int i = 0; i < 4; i++) {
        int q = order ? 3 - i : i;
        fq_t f[] = {{"fa", 40, q == 0 ? 16 : -1, q == 1 ? 8 : -1}, {"fb", 40, -1, -1}};
        ty_sched_cluster_queue base = {
            .name = qn[q], .cohort = "c",
            .queueing = q == 2 ? TY_SCHED_STRICT_FIFO : TY_SCHED_BEST_EFFORT_FIFO,
            .within_cluster_queue = q == 3 ? TY_SCHED_PREEMPT_LOWER_OR_NEWER_EQUAL_PRIORITY
                                           : TY_SCHED_PREEMPT_LOWER_PRIORITY,
            .reclaim_within_cohort = q == 1 ? TY_SCHED_PREEMPT_ANY : TY_SCHED_PREEMPT_LOWER_PRIORITY,
            .borrow_within_cohort = q == 0 ? TY_SCHED_PREEMPT_LOWER_PRIORITY : TY_SCHED_PREEMPT_NEVER,
            .when_can_borrow_try_next = q == 2,
            .fair_weight_milli = 1000 * (q + 1)};
        add_cq(s, base, f, 2);
    }
    for (int i = 0; i < nw; i++) {
        mix_wl *x = &w[order ? nw - 1 - i : i];
        if (x->admitted) {
            char node[16];
            snprintf(node, sizeof node, "node-%02d", x->node);
            add_admitted(s, x->key, qn[x->cq], x->prio, x->at, 1, x->gpus, x->flavor ? "fb" : "fa",
                         node, false);
        } else {
            add_wl(s, x->key, qn[x->cq], x->prio, x->at, x->pods, x->gpus);
        }
    }
    ty_sched_run(s);
    return s;
}

static void same_decisions(bool fair)
{
    ty_sched *a = mixed(0, fair), *b = mixed(1, fair);
    cr_assert_eq(ty_sched_n_decisions(a), 200);
    cr_assert_eq(ty_sched_n_decisions(b), 200);
    size_t counts[3] = {0};
    for (size_t i = 0; i < 200; i++) {
        const ty_sched_decision *x = ty_sched_decision_at(a, i), *y = ty_sched_decision_at(b, i);
        cr_assert_str_eq(x->workload, y->workload, "decision %zu", i);
        cr_assert_eq(x->verdict, y->verdict, "%s", x->workload);
        counts[x->verdict]++;
        cr_assert_str_eq(x->message ? x->message : "", y->message ? y->message : "");
        cr_assert_eq(x->borrowing, y->borrowing);
        cr_assert_eq(x->n_victims, y->n_victims);
        for (size_t v = 0; v < x->n_victims; v++) {
            cr_assert_str_eq(x->victims[v].workload, y->victims[v].workload);
            cr_assert_eq(x->victims[v].reason, y->victims[v].reason);
        }
        cr_assert_eq(x->n_pod_sets, y->n_pod_sets);
        for (size_t p = 0; p < x->n_pod_sets; p++) {
            cr_assert_str_eq(x->pod_sets[p].flavors[0], y->pod_sets[p].flavors[0]);
            cr_assert_str_eq(x->pod_sets[p].nodes[0], y->pod_sets[p].nodes[0]);
        }
    }
    cr_assert_gt(counts[TY_SCHED_ADMIT], 10, "admitted %zu", counts[TY_SCHED_ADMIT]);
    cr_assert_gt(counts[TY_SCHED_WAIT], 10);
    cr_assert_gt(counts[TY_SCHED_PREEMPT], 0);
    static const char *const qn[] = {"q0", "q1", "q2", "q3"};
    for (int q = 0; q < 4; q++) {
        cr_assert_eq(ty_sched_usage(a, qn[q], "fa", GPU), ty_sched_usage(b, qn[q], "fa", GPU));
        cr_assert_eq(ty_sched_weighted_share(a, qn[q]), ty_sched_weighted_share(b, qn[q]));
    }
    ty_sched_stats sa, sb;
    ty_sched_stats_get(a, &sa);
    ty_sched_stats_get(b, &sb);
    cr_assert_eq(sa.pods_placed, sb.pods_placed);
    cr_assert_eq(sa.victims, sb.victims);
    cr_assert_eq(sa.pack_free_partial_milli, sb.pack_free_partial_milli);
    ty_sched_free(a);
    ty_sched_free(b);
}

Test(sched_preempt, a_mixed_snapshot_in_any_order_gives_identical_decisions)
{
    same_decisions(false);
    same_decisions(true);
}

Test(sched_preempt, fair_sharing_falls_back_to_less_than_initial_share)
{
    /* Taking A's one big workload leaves A below B's new share (no under the first strategy),
     * but B's share after is below A's share now (yes under the second). */
    for (int big = 0; big < 2; big++) {
        ty_sched *s = mk(true);
        add_flavor(s, "f", NULL);
        add_node(s, "n1", 8, 0, NULL);
        add_cq1(s, "L", "c", "f", 8);
        fq_t none = {"f", 0, -1, -1};
        ty_sched_cluster_queue base = {.cohort = "c",
                                       .reclaim_within_cohort = TY_SCHED_PREEMPT_ANY};
        base.name = "A";
        add_cq(s, base, &none, 1);
        base.name = "B";
        add_cq(s, base, &none, 1);
        add_admitted(s, "a-big", "A", 0, 10, 1, 8, "f", "n1", false);
        add_wl(s, "b", "B", 0, 20, 1, big ? 8 : 4);
        ty_sched_run(s);
        if (big) {
            /* B would end where A is now: not less */
            expect(s, "b", TY_SCHED_WAIT);
        } else {
            expect(s, "b", TY_SCHED_PREEMPT);
            cr_assert_str_eq(dec(s, "b")->victims[0].workload, "a-big");
            cr_assert_eq(dec(s, "b")->victims[0].reason, TY_SCHED_IN_COHORT_FAIR_SHARING);
        }
        ty_sched_free(s);
    }
}
