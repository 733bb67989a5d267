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
    add_wl(s, "pending", "q", pending_prio, 100, 1, 8);
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
                                 "quota for nvidia.com/gpu in flavor f, 8 more needed. Pending "
                                 "the preemption of 1 workload(s)");
    cr_assert_str_eq(d->pod_sets[0].nodes[0], "n1");
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
