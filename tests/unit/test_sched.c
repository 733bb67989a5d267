/* The scheduling core: quota, flavors, queueing and placement, one test per documented
 * behaviour of src/sched/sched.h. Preemption and fair sharing: test_sched_preempt.c. */
#include "sched_fixtures.h"

Test(sched, flavors_are_tried_in_the_queues_order)
{
    ty_sched *s = mk(false);
    add_flavor(s, "b", "pool=b");
    add_flavor(s, "a", "pool=a");
    add_node(s, "na", 8, 0, "pool=a");
    add_node(s, "nb", 8, 0, "pool=b");
    fq_t f[] = {{"a", 8, -1, -1}, {"b", 8, -1, -1}};
    add_cq(s, (ty_sched_cluster_queue){.name = "q"}, f, 2);
    add_wl(s, "ns/one", "q", 0, 1, 1, 8);
    add_wl(s, "ns/two", "q", 0, 2, 1, 8);
    add_wl(s, "ns/three", "q", 0, 3, 1, 8);
    ty_sched_run(s);
    expect(s, "ns/one", TY_SCHED_ADMIT);
    cr_assert_str_eq(dec(s, "ns/one")->pod_sets[0].flavors[0], "a");
    cr_assert_str_eq(dec(s, "ns/one")->pod_sets[0].nodes[0], "na");
    expect(s, "ns/two", TY_SCHED_ADMIT);
    cr_assert_str_eq(dec(s, "ns/two")->pod_sets[0].flavors[0], "b");
    cr_assert_str_eq(dec(s, "ns/two")->pod_sets[0].nodes[0], "nb");
    expect(s, "ns/three", TY_SCHED_WAIT);
    cr_assert_str_eq(dec(s, "ns/three")->message,
                     "couldn't assign flavors to pod set main: insufficient unused quota for "
                     "nvidia.com/gpu in flavor a, 8 more needed, insufficient unused quota for "
                     "nvidia.com/gpu in flavor b, 8 more needed");
    ty_sched_free(s);
}

/* q borrows flavor a from the cohort, or has b of its own: whenCanBorrow decides. */
static ty_sched *fungibility(bool try_next)
{
    ty_sched *s = mk(false);
    add_flavor(s, "a", NULL);
    add_flavor(s, "b", NULL);
    add_node(s, "n1", 8, 0, NULL);
    add_node(s, "n2", 8, 0, NULL);
    fq_t f[] = {{"a", 0, -1, -1}, {"b", 4, -1, -1}};
    add_cq(s, (ty_sched_cluster_queue){.name = "q", .cohort = "c",
                                       .when_can_borrow_try_next = try_next},
           f, 2);
    add_cq1(s, "lender", "c", "a", 8);
    add_wl(s, "w", "q", 0, 1, 1, 4);
    ty_sched_run(s);
    expect(s, "w", TY_SCHED_ADMIT);
    return s;
}

Test(sched, when_can_borrow_borrow_takes_the_first_flavor_that_fits_by_borrowing)
{
    ty_sched *s = fungibility(false);
    cr_assert_str_eq(dec(s, "w")->pod_sets[0].flavors[0], "a");
    cr_assert(dec(s, "w")->borrowing);
    cr_assert_eq(ty_sched_usage(s, "q", "a", GPU), G(4));
    ty_sched_free(s);
}

Test(sched, when_can_borrow_try_next_flavor_prefers_a_flavor_without_borrowing)
{
    ty_sched *s = fungibility(true);
    cr_assert_str_eq(dec(s, "w")->pod_sets[0].flavors[0], "b");
    cr_assert_not(dec(s, "w")->borrowing);
    ty_sched_free(s);
}

/* Flavor a is full of a low-priority workload, b is free: whenCanPreempt decides. */
static ty_sched *preempt_fungibility(bool preempt_first)
{
    ty_sched *s = mk(false);
    add_flavor(s, "a", "pool=a");
    add_flavor(s, "b", "pool=b");
    add_node(s, "na", 8, 0, "pool=a");
    add_node(s, "nb", 8, 0, "pool=b");
    fq_t f[] = {{"a", 8, -1, -1}, {"b", 8, -1, -1}};
    add_cq(s, (ty_sched_cluster_queue){.name = "q",
                                       .within_cluster_queue = TY_SCHED_PREEMPT_LOWER_PRIORITY,
                                       .when_can_preempt_preempt = preempt_first},
           f, 2);
    add_admitted(s, "low", "q", 0, 10, 1, 8, "a", "na", false);
    add_wl(s, "high", "q", 10, 20, 1, 8);
    ty_sched_run(s);
    return s;
}

Test(sched, when_can_preempt_try_next_flavor_takes_a_free_flavor)
{
    ty_sched *s = preempt_fungibility(false);
    expect(s, "high", TY_SCHED_ADMIT);
    cr_assert_str_eq(dec(s, "high")->pod_sets[0].flavors[0], "b");
    ty_sched_free(s);
}

Test(sched, when_can_preempt_preempt_stops_at_the_first_flavor_where_preemption_helps)
{
    ty_sched *s = preempt_fungibility(true);
    expect(s, "high", TY_SCHED_PREEMPT);
    cr_assert_str_eq(dec(s, "high")->pod_sets[0].flavors[0], "a");
    cr_assert_eq(dec(s, "high")->n_victims, 1);
    cr_assert_str_eq(dec(s, "high")->victims[0].workload, "low");
    ty_sched_free(s);
}

Test(sched, borrowing_stops_at_the_borrowing_limit)
{
    ty_sched *s = mk(false);
    add_flavor(s, "f", NULL);
    for (int i = 0; i < 4; i++) {
        char n[16];
        snprintf(n, sizeof n, "n%d", i);
        add_node(s, n, 8, 0, NULL);
    }
    fq_t f = {"f", 4, 4, -1};
    add_cq(s, (ty_sched_cluster_queue){.name = "q", .cohort = "c"}, &f, 1);
    add_cq1(s, "lender", "c", "f", 16);
    add_wl(s, "a", "q", 0, 1, 1, 6);
    add_wl(s, "b", "q", 0, 2, 1, 4);
    add_wl(s, "c", "q", 0, 3, 1, 2);
    add_wl(s, "huge", "q", 0, 4, 1, 9);
    ty_sched_run(s);
    expect(s, "a", TY_SCHED_ADMIT);
    cr_assert(dec(s, "a")->borrowing);
    expect(s, "b", TY_SCHED_WAIT);
    expect_msg(s, "b", "insufficient unused quota for nvidia.com/gpu in flavor f, 2 more needed");
    expect(s, "c", TY_SCHED_ADMIT);
    expect(s, "huge", TY_SCHED_WAIT);
    expect_msg(s, "huge", "insufficient quota for nvidia.com/gpu in flavor f, request > maximum "
                          "capacity (9 > 8)");
    cr_assert_eq(ty_sched_usage(s, "q", "f", GPU), G(8));
    ty_sched_free(s);
}

Test(sched, lending_limit_keeps_part_of_the_quota_for_the_queue)
{
    ty_sched *s = mk(false);
    add_flavor(s, "f", NULL);
    add_node(s, "n1", 8, 0, NULL);
    add_node(s, "n2", 8, 0, NULL);
    fq_t f = {"f", 8, -1, 2};
    add_cq(s, (ty_sched_cluster_queue){.name = "owner", .cohort = "c"}, &f, 1);
    add_cq1(s, "other", "c", "f", 0);
    add_admitted(s, "other-2", "other", 0, 1, 1, 2, "f", "n2", false);
    add_wl(s, "other-3", "other", 0, 1, 1, 3);
    add_wl(s, "owner-6", "owner", 0, 3, 1, 6);
    add_wl(s, "owner-1", "owner", 0, 4, 1, 1);
    ty_sched_run(s);
    expect(s, "other-3", TY_SCHED_WAIT);
    expect_msg(s, "other-3", "request > maximum capacity (3 > 2)");
    cr_assert_eq(ty_sched_usage(s, "other", "f", GPU), G(2));
    expect(s, "owner-6", TY_SCHED_ADMIT);
    cr_assert_not(dec(s, "owner-6")->borrowing);
    /* The 2 it lends are borrowed: 6 of its 8 are left to it. */
    expect(s, "owner-1", TY_SCHED_WAIT);
    ty_sched_free(s);
}

Test(sched, a_queue_without_cohort_never_borrows)
{
    ty_sched *s = mk(false);
    add_flavor(s, "f", NULL);
    add_node(s, "n1", 8, 0, NULL);
    add_cq1(s, "alone", NULL, "f", 4);
    add_cq1(s, "idle", NULL, "f", 8);
    add_wl(s, "w", "alone", 0, 1, 1, 6);
    ty_sched_run(s);
    expect(s, "w", TY_SCHED_WAIT);
    cr_assert_str_eq(dec(s, "w")->message,
                     "couldn't assign flavors to pod set main: insufficient quota for "
                     "nvidia.com/gpu in flavor f, request > maximum capacity (6 > 4)");
    ty_sched_free(s);
}

static ty_sched *fifo(ty_sched_queueing q)
{
    ty_sched *s = mk(false);
    add_flavor(s, "f", NULL);
    add_node(s, "n1", 8, 0, NULL);
    add_cq(s, (ty_sched_cluster_queue){.name = "q", .queueing = q}, &(fq_t){"f", 4, -1, -1}, 1);
    add_admitted(s, "running", "q", 0, 1, 1, 2, "f", "n1", false);
    add_wl(s, "big", "q", 0, 10, 1, 4);
    add_wl(s, "small", "q", 0, 20, 1, 2);
    ty_sched_run(s);
    expect(s, "big", TY_SCHED_WAIT);
    return s;
}

Test(sched, strict_fifo_blocks_behind_its_head)
{
    ty_sched *s = fifo(TY_SCHED_STRICT_FIFO);
    expect(s, "small", TY_SCHED_WAIT);
    expect_msg(s, "small", "waiting behind workload big");
    ty_sched_free(s);
}

Test(sched, best_effort_fifo_tries_the_next)
{
    ty_sched *s = fifo(TY_SCHED_BEST_EFFORT_FIFO);
    expect(s, "small", TY_SCHED_ADMIT);
    ty_sched_free(s);
}

Test(sched, priority_then_age_order_admission)
{
    ty_sched *s = mk(false);
    add_flavor(s, "f", NULL);
    add_node(s, "n1", 8, 0, NULL);
    add_cq1(s, "q", NULL, "f", 2);
    add_wl(s, "old-low", "q", 0, 1, 1, 1);
    add_wl(s, "new-high", "q", 5, 30, 1, 1);
    add_wl(s, "old-high", "q", 5, 20, 1, 1);
    ty_sched_run(s);
    cr_assert_str_eq(ty_sched_decision_at(s, 0)->workload, "old-high");
    cr_assert_str_eq(ty_sched_decision_at(s, 1)->workload, "new-high");
    expect(s, "old-high", TY_SCHED_ADMIT);
    expect(s, "new-high", TY_SCHED_ADMIT);
    expect(s, "old-low", TY_SCHED_WAIT);
    ty_sched_free(s);
}

Test(sched, requeue_back_off_is_respected)
{
    ty_sched *s = mk(false);
    add_flavor(s, "f", NULL);
    add_node(s, "n1", 8, 0, NULL);
    add_cq1(s, "q", NULL, "f", 8);
    ty_error err = TY_ERROR_INIT;
    ty_sched_amount r = {GPU, G(1)};
    ty_sched_pod_set ps = {.name = "main", .count = 1, .requests = &r, .n_requests = 1};
    ty_sched_workload w = {.key = "later", .cluster_queue = "q", .priority = 9,
                           .eligible_at_ms = 1000001, .pod_sets = &ps, .n_pod_sets = 1};
    must(ty_sched_add_workload(s, &w, &err), &err);
    w.key = "now";
    w.eligible_at_ms = 1000000;
    must(ty_sched_add_workload(s, &w, &err), &err);
    ty_sched_run(s);
    expect(s, "later", TY_SCHED_WAIT);
    cr_assert_str_eq(dec(s, "later")->message, "waiting for the requeue back-off");
    expect(s, "now", TY_SCHED_ADMIT);
    ty_sched_free(s);
}

Test(sched, a_gang_is_placed_all_or_nothing)
{
    ty_sched *s = mk(false);
    add_flavor(s, "f", NULL);
    add_node(s, "n1", 8, 5, NULL);
    add_node(s, "n2", 8, 5, NULL);
    add_node(s, "n3", 8, 0, NULL);
    add_cq1(s, "q", NULL, "f", 64);
    add_wl(s, "first", "q", 5, 2, 2, 3);
    /* two of its pods would fit n3, the third nowhere */
    add_wl(s, "gang", "q", 0, 1, 3, 4);
    ty_sched_run(s);
    expect(s, "first", TY_SCHED_ADMIT);
    cr_assert_str_eq(dec(s, "first")->pod_sets[0].nodes[0], "n1");
    cr_assert_str_eq(dec(s, "first")->pod_sets[0].nodes[1], "n2");
    expect(s, "gang", TY_SCHED_WAIT);
    cr_assert_str_eq(dec(s, "gang")->message,
                     "quota fits but the gang of 3 pods does not fit the nodes of flavor f: 1 of "
                     "3 nodes have room for a pod (4 nvidia.com/gpu)");
    /* No quota held by the gang, and none of its pods left on n3. */
    cr_assert_eq(ty_sched_usage(s, "q", "f", GPU), G(6));
    ty_sched_stats st;
    ty_sched_stats_get(s, &st);
    cr_assert_eq(st.pods_placed, 2);
    cr_assert_eq(st.admitted, 1);
    cr_assert_eq(st.waiting, 1);
    cr_assert_eq(st.nodes_wholly_free, 1);
    ty_sched_free(s);
}

Test(sched, best_fit_keeps_whole_nodes_free)
{
    ty_sched *s = mk(false);
    add_flavor(s, "f", NULL);
    add_node(s, "a-empty", 8, 0, NULL);
    add_node(s, "b-half", 8, 4, NULL);
    add_node(s, "c-empty", 8, 0, NULL);
    add_cq1(s, "q", NULL, "f", 64);
    add_wl(s, "one", "q", 0, 1, 1, 1);
    add_wl(s, "eight", "q", 0, 2, 1, 8);
    ty_sched_run(s);
    cr_assert_str_eq(dec(s, "one")->pod_sets[0].nodes[0], "b-half");
    cr_assert_str_eq(dec(s, "eight")->pod_sets[0].nodes[0], "a-empty");
    ty_sched_stats st;
    ty_sched_stats_get(s, &st);
    cr_assert_eq(st.nodes_wholly_free, 1);
    cr_assert_eq(st.pack_free_whole_milli, G(8));
    cr_assert_eq(st.pack_free_partial_milli, G(3));
    ty_sched_free(s);
}

Test(sched, taints_tolerations_and_node_selectors_go_with_flavors)
{
    ty_sched *s = mk(false);
    ty_error err = TY_ERROR_INIT;
    ty_sched_label spot_l = {"pool", "spot"}, od_l = {"pool", "od"};
    ty_sched_taint spot_t = {"spot", "true", "NoSchedule"};
    ty_sched_flavor spot = {.name = "spot", .node_labels = &spot_l, .n_node_labels = 1,
                            .node_taints = &spot_t, .n_node_taints = 1};
    ty_sched_flavor od = {.name = "od", .node_labels = &od_l, .n_node_labels = 1};
    must(ty_sched_add_flavor(s, &spot, &err), &err);
    must(ty_sched_add_flavor(s, &od, &err), &err);
    ty_sched_amount alloc = {GPU, G(8)};
    ty_sched_label zone = {"zone", "z1"};
    ty_sched_label od1_l[] = {od_l, zone};
    ty_sched_taint broken = {"gpu", "broken", "NoExecute"};
    ty_sched_node nodes[] = {
        {.name = "spot1", .labels = &spot_l, .n_labels = 1, .taints = &spot_t, .n_taints = 1,
         .allocatable = &alloc, .n_allocatable = 1},
        {.name = "od0", .labels = &od_l, .n_labels = 1, .taints = &broken, .n_taints = 1,
         .allocatable = &alloc, .n_allocatable = 1},
        {.name = "od1", .labels = od1_l, .n_labels = 2, .allocatable = &alloc,
         .n_allocatable = 1},
    };
    for (size_t i = 0; i < 3; i++)
        must(ty_sched_add_node(s, &nodes[i], &err), &err);
    fq_t f[] = {{"spot", 16, -1, -1}, {"od", 16, -1, -1}};
    add_cq(s, (ty_sched_cluster_queue){.name = "q"}, f, 2);
    ty_sched_amount r = {GPU, G(2)};
    ty_sched_toleration tol = {.key = "spot", .op = "Exists"};
    ty_sched_pod_set ps = {.name = "main", .count = 1, .requests = &r, .n_requests = 1};
    ty_sched_workload w = {.cluster_queue = "q", .pod_sets = &ps, .n_pod_sets = 1};
    w.key = "plain";
    w.queued_at_ms = 1;
    must(ty_sched_add_workload(s, &w, &err), &err);
    ps.tolerations = &tol;
    ps.n_tolerations = 1;
    w.key = "tolerant";
    w.queued_at_ms = 2;
    must(ty_sched_add_workload(s, &w, &err), &err);
    ty_sched_label want_od = {"pool", "od"};
    ps.node_selector = &want_od;
    ps.n_node_selector = 1;
    w.key = "selects-od";
    w.queued_at_ms = 3;
    must(ty_sched_add_workload(s, &w, &err), &err);
    ty_sched_label want_z2 = {"zone", "z2"};
    ps.node_selector = &want_z2;
    ps.tolerations = NULL;
    ps.n_tolerations = 0;
    w.key = "selects-z2";
    w.queued_at_ms = 4;
    must(ty_sched_add_workload(s, &w, &err), &err);
    ty_sched_run(s);
    expect(s, "plain", TY_SCHED_ADMIT);
    cr_assert_str_eq(dec(s, "plain")->pod_sets[0].flavors[0], "od");
    cr_assert_str_eq(dec(s, "plain")->pod_sets[0].nodes[0], "od1"); /* od0's taint */
    expect(s, "tolerant", TY_SCHED_ADMIT);
    cr_assert_str_eq(dec(s, "tolerant")->pod_sets[0].flavors[0], "spot");
    cr_assert_str_eq(dec(s, "tolerant")->pod_sets[0].nodes[0], "spot1");
    expect(s, "selects-od", TY_SCHED_ADMIT);
    cr_assert_str_eq(dec(s, "selects-od")->pod_sets[0].flavors[0], "od");
    expect(s, "selects-z2", TY_SCHED_WAIT);
    expect_msg(s, "selects-z2", "0 of 2 nodes have room for a pod (2 nvidia.com/gpu)");
    ty_sched_free(s);
}

Test(sched, untolerated_flavor_taint_is_said)
{
    ty_sched *s = mk(false);
    ty_error err = TY_ERROR_INIT;
    ty_sched_taint t = {"spot", "true", "NoSchedule"};
    ty_sched_flavor spot = {.name = "spot", .node_taints = &t, .n_node_taints = 1};
    must(ty_sched_add_flavor(s, &spot, &err), &err);
    add_node(s, "n", 8, 0, NULL);
    add_cq1(s, "q", NULL, "spot", 8);
    add_wl(s, "w", "q", 0, 1, 1, 1);
    ty_sched_run(s);
    expect(s, "w", TY_SCHED_WAIT);
    cr_assert_str_eq(dec(s, "w")->message, "couldn't assign flavors to pod set main: untolerated "
                                           "taint spot=true:NoSchedule in flavor spot");
    ty_sched_free(s);
}

/* A pass over the simulated cluster of the starvation test: every admitted workload is on one
 * node; `finish` of them end before the pass. */
typedef struct {
    char key[32];
    char node[8];
    int gpus;
    int pods;
    bool on;
} sim_wl;

Test(sched, a_large_gang_is_not_starved_by_small_ones_as_nodes_drain)
{
    /* Two 8-GPU nodes full of 1-GPU jobs; a gang of 2 x 8 GPUs waits; 1-GPU jobs keep coming. */
    sim_wl run[64];
    int n_run = 0;
    for (int i = 0; i < 16; i++) {
        sim_wl *r = &run[n_run++];
        snprintf(r->key, sizeof r->key, "small-%02d", i);
        snprintf(r->node, sizeof r->node, "n%d", i % 2);
        r->gpus = 1;
        r->pods = 1;
        r->on = true;
    }
    int next_small = 16;
    bool big_admitted = false;
    int pass;
    for (pass = 0; pass < 12 && !big_admitted; pass++) {
        /* the oldest running small job on each node ends */
        for (int node = 0; node < 2; node++)
            for (int i = 0; i < n_run; i++)
                if (run[i].on && run[i].node[1] == '0' + node) {
                    run[i].on = false;
                    break;
                }
        ty_sched *s = mk(false);
        add_flavor(s, "f", NULL);
        add_node(s, "n0", 8, 0, NULL);
        add_node(s, "n1", 8, 0, NULL);
        add_cq1(s, "q", NULL, "f", 64);
        for (int i = 0; i < n_run; i++)
            if (run[i].on)
                add_admitted(s, run[i].key, "q", 0, 100 + i, 1, 1, "f", run[i].node, false);
        add_wl(s, "big", "q", 0, 1, 2, 8);
        char k[32];
        for (int i = 0; i < 2; i++) {
            snprintf(k, sizeof k, "small-%02d", next_small + i);
            add_wl(s, k, "q", 0, 50 + pass * 2 + i, 1, 1);
        }
        ty_sched_run(s);
        big_admitted = dec(s, "big")->verdict == TY_SCHED_ADMIT;
        for (int i = 0; i < 2; i++) {
            snprintf(k, sizeof k, "small-%02d", next_small + i);
            const ty_sched_decision *d = dec(s, k);
            cr_assert_eq(d->verdict, TY_SCHED_WAIT, "pass %d: %s got in ahead of the gang", pass,
                         k);
        }
        if (!big_admitted)
            expect_msg(s, k, "2 nodes are held for workloads ahead of it");
        ty_sched_free(s);
    }
    cr_assert(big_admitted);
    cr_assert_eq(pass, 8, "the gang got in after %d passes", pass);
}

static void add_flavor_b(ty_sched *s, int order)
{
    const char *names[] = {"zeta", "alpha"};
    for (int i = 0; i < 2; i++)
        add_flavor(s, names[(i + order) % 2], NULL);
}

static ty_sched *determinism_snapshot(int order)
{
    ty_sched *s = mk(true);
    add_flavor_b(s, order);
    for (int i = 0; i < 6; i++) {
        char n[16];
        snprintf(n, sizeof n, "n%d", order ? 5 - i : i);
        add_node(s, n, 8, (order ? 5 - i : i) % 3, NULL);
    }
    const char *qs[] = {"qa", "qb", "qc"};
    for (int i = 0; i < 3; i++) {
        fq_t f[] = {{"alpha", 8, -1, -1}, {"zeta", 4, -1, -1}};
        add_cq(s, (ty_sched_cluster_queue){.name = qs[order ? 2 - i : i], .cohort = "c"}, f, 2);
    }
    for (int i = 0; i < 30; i++) {
        int j = order ? 29 - i : i;
        char k[16];
        snprintf(k, sizeof k, "w%02d", j);
        /* equal priorities and times, so only the names order them */
        add_wl(s, k, qs[j % 3], j % 2, 5, 1 + j % 3, 1 + j % 4);
    }
    ty_sched_run(s);
    return s;
}

Test(sched, the_same_snapshot_added_in_another_order_gives_the_same_decisions)
{
    ty_sched *a = determinism_snapshot(0), *b = determinism_snapshot(1);
    cr_assert_eq(ty_sched_n_decisions(a), 30);
    cr_assert_eq(ty_sched_n_decisions(b), 30);
    int admitted = 0;
    for (size_t i = 0; i < 30; i++) {
        const ty_sched_decision *x = ty_sched_decision_at(a, i), *y = ty_sched_decision_at(b, i);
        cr_assert_str_eq(x->workload, y->workload);
        cr_assert_eq(x->verdict, y->verdict);
        cr_assert_str_eq(x->message ? x->message : "", y->message ? y->message : "");
        if (x->verdict != TY_SCHED_ADMIT)
            continue;
        admitted++;
        cr_assert_str_eq(x->pod_sets[0].flavors[0], y->pod_sets[0].flavors[0]);
        cr_assert_str_eq(x->pod_sets[0].nodes[0], y->pod_sets[0].nodes[0]);
    }
    cr_assert_gt(admitted, 5);
    cr_assert_eq(ty_sched_weighted_share(a, "qa"), ty_sched_weighted_share(b, "qa"));
    ty_sched_free(a);
    ty_sched_free(b);
}

Test(sched, stopped_queues_admit_nothing_and_keep_their_usage)
{
    ty_sched *s = mk(false);
    add_flavor(s, "f", NULL);
    add_node(s, "n1", 8, 0, NULL);
    add_cq(s, (ty_sched_cluster_queue){.name = "q", .stopped = true}, &(fq_t){"f", 8, -1, -1}, 1);
    add_admitted(s, "running", "q", 0, 1, 1, 2, "f", "n1", false);
    add_wl(s, "w", "q", 0, 5, 1, 1);
    ty_sched_run(s);
    expect(s, "w", TY_SCHED_WAIT);
    expect_msg(s, "w", "ClusterQueue q is inactive");
    cr_assert_eq(ty_sched_usage(s, "q", "f", GPU), G(2));
    cr_assert_null(ty_sched_decision_of(s, "running"));
    ty_sched_free(s);
}

Test(sched, the_adds_reject_bad_input)
{
    ty_sched *s = mk(false);
    ty_error err = TY_ERROR_INIT;
    add_flavor(s, "f", NULL);
    ty_sched_flavor dup = {.name = "f"};
    cr_assert_eq(ty_sched_add_flavor(s, &dup, &err), -1);
    cr_assert_str_eq(err.msg, "flavor f: already added");
    add_node(s, "n", 8, 0, NULL);
    ty_sched_amount neg = {"cpu", -1};
    ty_sched_node bad = {.name = "m", .allocatable = &neg, .n_allocatable = 1};
    cr_assert_eq(ty_sched_add_node(s, &bad, &err), -1);
    cr_assert_str_eq(err.msg, "node m: cpu: negative amount");
    fq_t f = {"nope", 1, -1, -1};
    ty_sched_quota q = {GPU, 1, TY_SCHED_UNLIMITED, TY_SCHED_UNLIMITED};
    ty_sched_flavor_quotas fqs = {f.flavor, &q, 1};
    const char *cov[] = {GPU};
    ty_sched_resource_group g = {cov, 1, &fqs, 1};
    ty_sched_cluster_queue cq = {.name = "q", .groups = &g, .n_groups = 1};
    cr_assert_eq(ty_sched_add_cluster_queue(s, &cq, &err), -1);
    cr_assert_str_eq(err.msg, "cluster queue q: flavor nope does not exist");
    add_cq1(s, "q", NULL, "f", 8);
    add_wl(s, "w", "q", 0, 1, 1, 1);
    ty_sched_amount r = {GPU, 1000};
    ty_sched_pod_set ps = {.name = "main", .count = 1, .requests = &r, .n_requests = 1};
    ty_sched_workload w = {.key = "w", .cluster_queue = "q", .pod_sets = &ps, .n_pod_sets = 1};
    cr_assert_eq(ty_sched_add_workload(s, &w, &err), -1);
    cr_assert_str_eq(err.msg, "workload w: already added");
    w.key = "x";
    w.cluster_queue = "missing";
    cr_assert_eq(ty_sched_add_workload(s, &w, &err), -1);
    cr_assert_str_eq(err.msg, "workload x: cluster queue missing does not exist");
    w.cluster_queue = "q";
    ps.count = 0;
    cr_assert_eq(ty_sched_add_workload(s, &w, &err), -1);
    cr_assert_str_eq(err.msg, "workload x: pod set main: count 0 < 1");
    ps.count = 1;
    w.admitted = true;
    cr_assert_eq(ty_sched_add_workload(s, &w, &err), -1);
    cr_assert_str_eq(err.msg, "workload x: admitted without an admission");
    const char *fl[] = {"f"}, *nd[] = {"ghost"};
    ty_sched_pod_set_admission ad = {fl, nd};
    w.admission = &ad;
    cr_assert_eq(ty_sched_add_workload(s, &w, &err), -1);
    cr_assert_str_eq(err.msg,
                     "workload x: pod set main: admitted on node ghost, which does not exist");
    fl[0] = "ghost";
    cr_assert_eq(ty_sched_add_workload(s, &w, &err), -1);
    cr_assert_str_eq(err.msg,
                     "workload x: pod set main: admitted on flavor ghost, which does not exist");
    /* 16 resource names at most */
    char names[20][16];
    ty_sched_amount many[20];
    for (int i = 0; i < 20; i++) {
        snprintf(names[i], sizeof names[i], "r%d", i);
        many[i] = (ty_sched_amount){names[i], 1};
    }
    ty_sched_node big = {.name = "big", .allocatable = many, .n_allocatable = 20};
    cr_assert_eq(ty_sched_add_node(s, &big, &err), -1);
    cr_assert_str_eq(err.msg, "node big: resource r14: more than 16 resource names");
    ty_error_clear(&err);
    /* what was added before still works */
    ty_sched_run(s);
    expect(s, "w", TY_SCHED_ADMIT);
    cr_assert_eq(ty_sched_usage(s, "q", "nope", GPU), -1);
    ty_sched_free(s);
}

Test(sched, usage_share_and_stats_after_a_pass)
{
    ty_sched *s = mk(true);
    add_flavor(s, "f", NULL);
    add_node(s, "n1", 8, 0, NULL);
    add_node(s, "n2", 8, 0, NULL);
    add_cq1(s, "lender", "c", "f", 12);
    add_cq1(s, "q", "c", "f", 2);
    add_admitted(s, "running", "q", 0, 1, 1, 2, "f", "n1", false);
    add_wl(s, "w", "q", 0, 5, 2, 2);
    ty_sched_run(s);
    expect(s, "w", TY_SCHED_ADMIT);
    cr_assert_eq(ty_sched_usage(s, "q", "f", GPU), G(6));
    cr_assert_eq(ty_sched_usage(s, "lender", "f", GPU), 0);
    /* borrows 4 of the cohort's 14 lendable: 4/14 = 285 per mille at weight 1 */
    cr_assert_eq(ty_sched_weighted_share(s, "q"), 285);
    cr_assert_eq(ty_sched_weighted_share(s, "lender"), 0);
    ty_sched_stats st;
    ty_sched_stats_get(s, &st);
    cr_assert_eq(st.nodes, 2);
    cr_assert_eq(st.workloads_pending, 1);
    cr_assert_eq(st.admitted, 1);
    cr_assert_eq(st.pods_placed, 2);
    cr_assert_gt(st.bytes, 0);
    cr_assert_neq(ty_sched_plain_pass(s), 0);
    ty_sched_free(s);
}

Test(sched, pod_sets_share_the_quota_and_groups_cover_resources)
{
    ty_sched *s = mk(false);
    ty_error err = TY_ERROR_INIT;
    add_flavor(s, "cpu-pool", NULL);
    add_flavor(s, "gpu-a", NULL);
    add_flavor(s, "gpu-b", NULL);
    add_node(s, "n1", 8, 0, NULL);
    add_node(s, "n2", 8, 0, NULL);
    const char *cpu_cov[] = {"cpu"}, *gpu_cov[] = {GPU};
    ty_sched_quota cq_cpu = {"cpu", G(100), TY_SCHED_UNLIMITED, TY_SCHED_UNLIMITED};
    ty_sched_quota qa = {GPU, G(8), TY_SCHED_UNLIMITED, TY_SCHED_UNLIMITED};
    ty_sched_quota qb = {GPU, G(8), TY_SCHED_UNLIMITED, TY_SCHED_UNLIMITED};
    ty_sched_flavor_quotas cpu_f = {"cpu-pool", &cq_cpu, 1};
    ty_sched_flavor_quotas gpu_f[] = {{"gpu-a", &qa, 1}, {"gpu-b", &qb, 1}};
    ty_sched_resource_group groups[] = {{cpu_cov, 1, &cpu_f, 1}, {gpu_cov, 1, gpu_f, 2}};
    ty_sched_cluster_queue cq = {.name = "q", .groups = groups, .n_groups = 2,
                                 .fair_weight_milli = 1000};
    must(ty_sched_add_cluster_queue(s, &cq, &err), &err);
    /* master 1 x (1 cpu, 2 gpu) + worker 2 x (2 cpu, 2 gpu): the first's 6 GPUs fit a; the
     * second's master takes the 2 left of a, so its worker goes to b */
    ty_sched_amount m_req[] = {{"cpu", G(1)}, {GPU, G(2)}};
    ty_sched_amount w_req[] = {{"cpu", G(2)}, {GPU, G(2)}};
    ty_sched_pod_set ps[] = {{.name = "master", .count = 1, .requests = m_req, .n_requests = 2},
                             {.name = "worker", .count = 2, .requests = w_req, .n_requests = 2}};
    ty_sched_workload w = {.key = "one", .cluster_queue = "q", .queued_at_ms = 1,
                           .pod_sets = ps, .n_pod_sets = 2};
    must(ty_sched_add_workload(s, &w, &err), &err);
    w.key = "two";
    w.queued_at_ms = 2;
    must(ty_sched_add_workload(s, &w, &err), &err);
    ty_sched_amount odd[] = {{"example.com/fpga", G(1)}};
    ty_sched_pod_set ops = {.name = "main", .count = 1, .requests = odd, .n_requests = 1};
    ty_sched_workload o = {.key = "fpga", .cluster_queue = "q", .queued_at_ms = 3,
                           .pod_sets = &ops, .n_pod_sets = 1};
    must(ty_sched_add_workload(s, &o, &err), &err);
    ty_sched_run(s);
    expect(s, "one", TY_SCHED_ADMIT);
    const ty_sched_decision *d = dec(s, "one");
    cr_assert_eq(d->n_pod_sets, 2);
    cr_assert_str_eq(d->pod_sets[0].flavors[0], "cpu-pool");
    cr_assert_str_eq(d->pod_sets[0].flavors[1], "gpu-a");
    cr_assert_str_eq(d->pod_sets[1].flavors[1], "gpu-a");
    expect(s, "two", TY_SCHED_ADMIT);
    cr_assert_str_eq(dec(s, "two")->pod_sets[0].flavors[1], "gpu-a");
    cr_assert_str_eq(dec(s, "two")->pod_sets[1].flavors[1], "gpu-b");
    cr_assert_eq(ty_sched_usage(s, "q", "cpu-pool", "cpu"), G(10));
    cr_assert_eq(ty_sched_usage(s, "q", "gpu-a", GPU), G(8));
    cr_assert_eq(ty_sched_usage(s, "q", "gpu-b", GPU), G(4));
    expect(s, "fpga", TY_SCHED_WAIT);
    cr_assert_str_eq(dec(s, "fpga")->message, "couldn't assign flavors to pod set main: resource "
                                              "example.com/fpga unavailable in ClusterQueue");
    ty_sched_free(s);
}

Test(sched, unschedulable_nodes_take_no_pods)
{
    ty_sched *s = mk(false);
    ty_error err = TY_ERROR_INIT;
    add_flavor(s, "f", NULL);
    ty_sched_amount alloc = {GPU, G(8)};
    ty_sched_node cordoned = {.name = "a-cordoned", .allocatable = &alloc, .n_allocatable = 1,
                              .unschedulable = true};
    must(ty_sched_add_node(s, &cordoned, &err), &err);
    add_node(s, "b", 8, 0, NULL);
    add_cq1(s, "q", NULL, "f", 16);
    add_wl(s, "w1", "q", 0, 1, 1, 8);
    add_wl(s, "w2", "q", 0, 2, 1, 8);
    ty_sched_run(s);
    cr_assert_str_eq(dec(s, "w1")->pod_sets[0].nodes[0], "b");
    expect(s, "w2", TY_SCHED_WAIT);
    expect_msg(s, "w2", "0 of 2 nodes have room");
    ty_sched_free(s);
}

Test(sched, weight_zero_queues_go_last_and_share_is_infinite_when_borrowing)
{
    ty_sched *s = mk(true);
    add_flavor(s, "f", NULL);
    add_node(s, "n1", 8, 0, NULL);
    add_cq1(s, "lender", "c", "f", 4);
    add_cq(s, (ty_sched_cluster_queue){.name = "zero", .cohort = "c", .fair_weight_milli = 0},
           &(fq_t){"f", 0, -1, -1}, 1);
    ty_error err = TY_ERROR_INIT;
    ty_sched_quota q = {GPU, 0, TY_SCHED_UNLIMITED, TY_SCHED_UNLIMITED};
    ty_sched_flavor_quotas fqs = {"f", &q, 1};
    const char *cov[] = {GPU};
    ty_sched_resource_group g = {cov, 1, &fqs, 1};
    ty_sched_cluster_queue zero2 = {.name = "zero2", .cohort = "c", .groups = &g, .n_groups = 1,
                                    .fair_weight_milli = 0};
    must(ty_sched_add_cluster_queue(s, &zero2, &err), &err);
    add_cq(s, (ty_sched_cluster_queue){.name = "one", .cohort = "c"}, &(fq_t){"f", 0, -1, -1}, 1);
    add_wl(s, "z", "zero2", 9, 1, 1, 3);
    add_wl(s, "o", "one", 0, 2, 1, 3);
    ty_sched_run(s);
    /* "one" goes first although "z" has the higher priority and is older */
    cr_assert_str_eq(ty_sched_decision_at(s, 0)->workload, "o");
    expect(s, "o", TY_SCHED_ADMIT);
    expect(s, "z", TY_SCHED_WAIT);
    cr_assert_eq(ty_sched_weighted_share(s, "one"), 750);
    cr_assert_eq(ty_sched_weighted_share(s, "zero2"), 0);
    ty_sched_free(s);
}

/* Best fit takes the fullest node that fits; a most_free pod set the emptiest (then by name),
 * as the pods of both pod sets of one gang show. */
Test(sched, most_free_pod_sets_take_the_emptiest_node)
{
    ty_sched *s = mk(false);
    ty_error err = TY_ERROR_INIT;
    add_flavor(s, "f", NULL);
    add_node(s, "n1", 8, 6, NULL); /* 2 free */
    add_node(s, "n2", 8, 2, NULL); /* 6 free */
    add_node(s, "n3", 8, 2, NULL); /* 6 free */
    add_node(s, "n4", 8, 4, NULL); /* 4 free */
    add_cq1(s, "q", NULL, "f", 32);
    ty_sched_amount r = {GPU, G(2)};
    ty_sched_pod_set ps[] = {{.name = "best", .count = 1, .requests = &r, .n_requests = 1},
                             {.name = "worst", .count = 2, .requests = &r, .n_requests = 1,
                              .most_free = true}};
    ty_sched_workload w = {.key = "ns/w", .cluster_queue = "q", .pod_sets = ps, .n_pod_sets = 2};
    must(ty_sched_add_workload(s, &w, &err), &err);
    ty_sched_run(s);
    const ty_sched_decision *d = dec(s, "ns/w");
    cr_assert_eq(d->verdict, TY_SCHED_ADMIT);
    cr_expect_str_eq(d->pod_sets[0].nodes[0], "n1");
    cr_expect_str_eq(d->pod_sets[1].nodes[0], "n2"); /* 6 free, before n3 by name */
    cr_expect_str_eq(d->pod_sets[1].nodes[1], "n3"); /* now 6 free against n2's 4 */
    ty_sched_free(s);
}

/* ty_sched_quota.used: usage of workloads the snapshot is not given counts as theirs would -
 * in the queue (what fits), in the cohort's pool (what others may borrow), in the reported
 * usage - without being a victim. */
Test(sched, quota_used_outside_the_snapshot_counts_as_usage)
{
    ty_sched *s = mk(false);
    add_flavor(s, "f", NULL);
    for (int i = 0; i < 4; i++) {
        char n[16];
        snprintf(n, sizeof n, "n%d", i);
        add_node(s, n, 8, 0, NULL);
    }
    ty_error err = TY_ERROR_INIT;
    static const char *const covered[] = {GPU};
    /* a: nominal 8, 12 used (it borrows 4 of b's); b: nominal 16 */
    ty_sched_quota qa = {GPU, G(8), TY_SCHED_UNLIMITED, TY_SCHED_UNLIMITED, G(12)};
    ty_sched_quota qb = {GPU, G(16), TY_SCHED_UNLIMITED, TY_SCHED_UNLIMITED, 0};
    ty_sched_flavor_quotas fa = {"f", &qa, 1}, fb = {"f", &qb, 1};
    ty_sched_resource_group ga = {covered, 1, &fa, 1}, gb = {covered, 1, &fb, 1};
    must(ty_sched_add_cluster_queue(s, &(ty_sched_cluster_queue){.name = "a", .cohort = "c",
                                        .fair_weight_milli = 1000, .groups = &ga, .n_groups = 1},
                                    &err), &err);
    must(ty_sched_add_cluster_queue(s, &(ty_sched_cluster_queue){.name = "b", .cohort = "c",
                                        .fair_weight_milli = 1000, .groups = &gb, .n_groups = 1},
                                    &err), &err);
    /* pods of 1 GPU: the 32 GPUs of the nodes are no limit here, quota is */
    add_wl(s, "a-13", "a", 0, 1, 13, 1); /* 12 + 13 > 24 of the cohort: no */
    add_wl(s, "b-13", "b", 0, 2, 13, 1); /* 4 of b's 16 are lent out: no */
    add_wl(s, "b-12", "b", 0, 3, 12, 1); /* fits what b has left */
    ty_sched_run(s);
    expect(s, "a-13", TY_SCHED_WAIT);
    expect_msg(s, "a-13", "insufficient");
    expect(s, "b-13", TY_SCHED_WAIT);
    expect_msg(s, "b-13", "insufficient unused quota for nvidia.com/gpu in flavor f");
    expect(s, "b-12", TY_SCHED_ADMIT);
    cr_assert_eq(ty_sched_usage(s, "a", "f", GPU), G(12));
    cr_assert_eq(ty_sched_usage(s, "b", "f", GPU), G(12));
    ty_sched_free(s);
    /* a negative amount is refused, naming the queue */
    s = mk(false);
    add_flavor(s, "f", NULL);
    qa.used = -1;
    int rc = ty_sched_add_cluster_queue(s, &(ty_sched_cluster_queue){.name = "a", .groups = &ga,
                                                                    .n_groups = 1}, &err);
    cr_assert_eq(rc, -1);
    cr_assert(strstr(err.msg, "cluster queue a") && strstr(err.msg, "negative"), "%s", err.msg);
    ty_error_clear(&err);
    ty_sched_free(s);
}
