/* The simulator (sim/sim.h) on traces small enough to compute by hand: each policy's exact
 * start and end times, with the invariants checked at every event. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "sim/sim.h"

typedef struct {
    double submit, dur;
    int gpus;
} jb;

/* One VC of `nodes` x `gpn` GPUs; jobs in submit order; times in seconds. */
static void mk_trace(ty_sim_trace *t, int nodes, int gpn, const jb *j, size_t n)
{
    memset(t, 0, sizeof *t);
    t->gpus_per_node = gpn;
    t->vcs = calloc(1, sizeof *t->vcs);
    t->vcs[0] = (ty_sim_vc){strdup("default"), nodes};
    t->n_vcs = 1;
    t->jobs = calloc(n, sizeof *t->jobs);
    for (size_t i = 0; i < n; i++)
        t->jobs[i] = (ty_sim_job){(int64_t)(j[i].submit * 1000), (int64_t)(j[i].dur * 1000),
                                  j[i].gpus, 0, (int64_t)i + 2};
    t->n_jobs = n;
}

static void run(const ty_sim_trace *t, ty_sim_config c, ty_sim_result *r)
{
    ty_error err = TY_ERROR_INIT;
    c.check = true;
    int rc = ty_sim_run(t, &c, r, &err);
    cr_assert_eq(rc, 0, "run: %s", err.msg ? err.msg : "?");
}

static void expect(const ty_sim_result *r, size_t n, const double *start, const double *end)
{
    for (size_t i = 0; i < n; i++) {
        cr_expect_eq(r->start_ms[i], (int64_t)(start[i] * 1000), "job %zu starts at %ld, not %g",
                     i, (long)r->start_ms[i], start[i]);
        cr_expect_eq(r->end_ms[i], (int64_t)(end[i] * 1000), "job %zu ends at %ld, not %g", i,
                     (long)r->end_ms[i], end[i]);
    }
}

/* One node of 4 GPUs. A holds it 0-10; B, C, D arrive behind it. */
static const jb four[] = {{0, 10, 4}, {1, 5, 2}, {2, 2, 1}, {3, 1, 4}};

Test(sim, fifo_head_of_line)
{
    ty_sim_trace t;
    mk_trace(&t, 1, 4, four, 4);
    ty_sim_result r;
    run(&t, (ty_sim_config){.policy = TY_SIM_FIFO}, &r);
    /* at 10: B and C start, D (4 GPUs) waits for both */
    expect(&r, 4, (double[]){0, 10, 10, 15}, (double[]){10, 15, 12, 16});
    cr_expect_float_eq(r.overall.avg_jct_s, (10 + 14 + 10 + 13) / 4.0, 1e-9);
    cr_expect_float_eq(r.overall.avg_queue_s, (0 + 9 + 8 + 12) / 4.0, 1e-9);
    cr_expect_float_eq(r.overall.makespan_s, 16, 1e-9);
    cr_expect_float_eq(r.overall.gpu_utilization, (40 + 10 + 2 + 4) / (4.0 * 16), 1e-9);
    cr_expect_eq(r.overall.jobs, 4);
    cr_expect_eq(r.overall.p50_jct_s, 10);
    cr_expect_eq(r.overall.p99_jct_s, 14);
    ty_sim_result_free(&t, &r);
    ty_sim_trace_free(&t);
}

Test(sim, sjf_shortest_first)
{
    ty_sim_trace t;
    mk_trace(&t, 1, 4, four, 4);
    ty_sim_result r;
    run(&t, (ty_sim_config){.policy = TY_SIM_SJF}, &r);
    /* at 10: D (1 s) first and takes the node; at 11 C (2 s) and B (5 s) */
    expect(&r, 4, (double[]){0, 11, 11, 10}, (double[]){10, 16, 13, 11});
    cr_expect_float_eq(r.overall.avg_jct_s, (10 + 15 + 11 + 8) / 4.0, 1e-9);
    ty_sim_result_free(&t, &r);
    ty_sim_trace_free(&t);
}

/* SJF passes over a job that does not fit to a longer one that does; Helios' SJF (head of
 * line) does not. One node of 4 GPUs: A 0-10 on 3; B (4 GPUs, 1 s) and C (1 GPU, 5 s). */
static const jb skip[] = {{0, 10, 3}, {1, 1, 4}, {2, 5, 1}};

Test(sim, sjf_best_effort_versus_helios)
{
    ty_sim_trace t;
    mk_trace(&t, 1, 4, skip, 3);
    ty_sim_result r;
    run(&t, (ty_sim_config){.policy = TY_SIM_SJF}, &r);
    expect(&r, 3, (double[]){0, 10, 2}, (double[]){10, 11, 7});
    ty_sim_result_free(&t, &r);
    run(&t, (ty_sim_config){.policy = TY_SIM_SJF, .helios = true}, &r);
    /* B heads the queue and blocks C until 10; at 11 C starts */
    expect(&r, 3, (double[]){0, 10, 11}, (double[]){10, 11, 16});
    ty_sim_result_free(&t, &r);
    ty_sim_trace_free(&t);
}

/* SRTF: B (3 s left) preempts A (8 s left); A restarts at 5 and pays the restart cost. */
Test(sim, srtf_preempts_with_restart_cost)
{
    ty_sim_trace t;
    const jb j[] = {{0, 10, 4}, {2, 3, 4}};
    mk_trace(&t, 1, 4, j, 2);
    ty_sim_result r;
    run(&t, (ty_sim_config){.policy = TY_SIM_SRTF, .restart_ms = 1000}, &r);
    expect(&r, 2, (double[]){0, 2}, (double[]){14, 5});
    cr_expect_eq(r.overall.preemptions, 1);
    cr_expect_float_eq(r.overall.avg_queue_s, (3 + 0) / 2.0, 1e-9);
    ty_sim_result_free(&t, &r);
    /* a longer job does not preempt */
    const jb k[] = {{0, 10, 4}, {2, 9, 4}};
    ty_sim_trace_free(&t);
    mk_trace(&t, 1, 4, k, 2);
    run(&t, (ty_sim_config){.policy = TY_SIM_SRTF}, &r);
    expect(&r, 2, (double[]){0, 10}, (double[]){10, 19});
    cr_expect_eq(r.overall.preemptions, 0);
    ty_sim_result_free(&t, &r);
    ty_sim_trace_free(&t);
}

/* LAS with one threshold of 10 GPU-s: A (4 GPUs) crosses it at 2.5 s and drops to the second
 * queue, where B (first queue, arrived at 1 s) preempts it. */
Test(sim, las_demotes_at_threshold)
{
    ty_sim_trace t;
    const jb j[] = {{0, 10, 4}, {1, 2, 4}};
    mk_trace(&t, 1, 4, j, 2);
    ty_sim_result r;
    int64_t thr[] = {10};
    run(&t, (ty_sim_config){.policy = TY_SIM_LAS, .las_thresholds_gpu_s = thr,
                            .n_las_thresholds = 1}, &r);
    expect(&r, 2, (double[]){0, 2.5}, (double[]){12, 4.5});
    cr_expect_eq(r.overall.preemptions, 1);
    ty_sim_result_free(&t, &r);
    ty_sim_trace_free(&t);
}

/* Consolidation: a 12-GPU job takes one whole node and 4 GPUs of the other, next to a 4-GPU
 * job; a 1-GPU job then has to wait for one of them. */
Test(sim, gang_larger_than_a_node)
{
    ty_sim_trace t;
    const jb j[] = {{0, 10, 4}, {0, 20, 12}, {1, 1, 1}};
    mk_trace(&t, 2, 8, j, 3);
    ty_sim_result r;
    run(&t, (ty_sim_config){.policy = TY_SIM_FIFO}, &r);
    expect(&r, 3, (double[]){0, 0, 10}, (double[]){10, 20, 11});
    ty_sim_result_free(&t, &r);
    ty_sim_trace_free(&t);
}

/* Every policy on a random trace: the invariants hold at every event (run() checks), every job
 * ends, and a second run gives the same times. */
Test(sim, invariants_and_determinism)
{
    jb j[400];
    unsigned seed = 7;
    double at = 0;
    for (int i = 0; i < 400; i++) {
        at += rand_r(&seed) % 30;
        static const int sizes[] = {1, 1, 1, 2, 4, 8, 12, 16, 24};
        j[i] = (jb){at, 1 + rand_r(&seed) % 600 + (rand_r(&seed) % 1000) / 1000.0,
                    sizes[rand_r(&seed) % 9]};
    }
    ty_sim_trace t;
    mk_trace(&t, 4, 8, j, 400);
    for (int p = TY_SIM_FIFO; p <= TY_SIM_LAS; p++) {
        ty_sim_config c = {.policy = (ty_sim_policy)p, .restart_ms = 5000};
        ty_sim_result a, b;
        run(&t, c, &a);
        run(&t, c, &b);
        for (size_t i = 0; i < t.n_jobs; i++) {
            cr_assert_geq(a.start_ms[i], t.jobs[i].submit_ms);
            cr_assert_geq(a.end_ms[i], a.start_ms[i] + t.jobs[i].duration_ms);
            cr_assert_eq(a.start_ms[i], b.start_ms[i]);
            cr_assert_eq(a.end_ms[i], b.end_ms[i]);
        }
        cr_expect_eq(a.overall.jobs, 400);
        cr_expect_leq(a.overall.gpu_utilization, 1.0);
        if (p == TY_SIM_FIFO || p == TY_SIM_SJF)
            cr_expect_eq(a.overall.preemptions, 0);
        ty_sim_result_free(&t, &a);
        ty_sim_result_free(&t, &b);
    }
    ty_sim_trace_free(&t);
}

static char *write_tmp(const char *text)
{
    char *path = strdup("/tmp/ty_sim_XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

/* Philly rows: an unknown VC and a job larger than its VC are counted, not simulated; time
 * starts at the first counted job. */
Test(sim, philly_reader_counts_what_it_skips)
{
    char *vc = write_tmp("vc,node num\na,1\nb,2\n");
    char *tr = write_tmp("timestamp,duration,num_gpus,gpu_time,cluster\n"
                         "2017-10-01 00:00:10,5.0,1,5.0,a\n"
                         "2017-10-01 00:00:05,3.0,16,48.0,b\n"
                         "2017-10-01 00:00:01,3.0,1,3.0,zz\n"
                         "2017-10-01 00:00:20,3.0,9,27.0,a\n");
    ty_sim_trace t;
    ty_error err = TY_ERROR_INIT;
    ty_sim_load_opts o = {.cluster_path = vc};
    cr_assert_eq(ty_sim_trace_load(&t, tr, &o, &err), 0, "%s", err.msg);
    cr_expect_eq(t.n_jobs, 2);
    cr_expect_eq(t.skipped.unknown_vc, 1);
    cr_expect_eq(t.skipped.too_large, 1);
    cr_expect_eq(t.jobs[0].submit_ms, 0);
    cr_expect_eq(t.jobs[0].gpus, 16);
    cr_expect_eq(t.jobs[1].submit_ms, 5000);
    cr_expect_eq(t.jobs[1].duration_ms, 5000);
    cr_expect_eq(t.n_vcs, 2);
    ty_sim_trace_free(&t);
    unlink(vc);
    unlink(tr);
    free(vc);
    free(tr);
}

Test(sim, bad_row_names_file_line_field)
{
    char *tr = write_tmp("submit_s,duration_s,gpus\n0,10,1\n5,ten,1\n");
    ty_sim_trace t;
    ty_error err = TY_ERROR_INIT;
    ty_sim_load_opts o = {.nodes = 1};
    cr_assert_eq(ty_sim_trace_load(&t, tr, &o, &err), -1);
    cr_expect(strstr(err.msg, ":3: field duration: \"ten\""), "%s", err.msg);
    cr_expect(strstr(err.msg, tr), "%s", err.msg);
    cr_expect_null(t.jobs);
    ty_error_clear(&err);
    unlink(tr);
    free(tr);
}

/* The part of a 12-GPU gang beyond a whole node: best fit here (next to the 4-GPU job, so
 * that an 8-GPU job still finds a whole node), the emptiest node under Helios' semantics
 * (where the 8-GPU job then waits for the 4-GPU job to end). */
Test(sim, gang_remainder_best_fit_versus_helios)
{
    ty_sim_trace t;
    const jb j[] = {{0, 10, 4}, {0, 20, 12}, {1, 5, 8}};
    mk_trace(&t, 3, 8, j, 3);
    ty_sim_result r;
    run(&t, (ty_sim_config){.policy = TY_SIM_FIFO}, &r);
    expect(&r, 3, (double[]){0, 0, 1}, (double[]){10, 20, 6});
    ty_sim_result_free(&t, &r);
    run(&t, (ty_sim_config){.policy = TY_SIM_FIFO, .helios = true}, &r);
    expect(&r, 3, (double[]){0, 0, 10}, (double[]){10, 20, 15});
    ty_sim_result_free(&t, &r);
    ty_sim_trace_free(&t);
}

/* Two VCs of one 4-GPU node each. Alone, a's second job waits for its first; in one cohort it
 * borrows b's idle node. With srtf, b's job then reclaims its quota: the cohort's lowest
 * priority borrower's job (a's longest remaining) is preempted, not the one on b's node. */
Test(sim, cohort_borrows_and_reclaims)
{
    ty_sim_trace t;
    const jb j[] = {{0, 10, 4}, {1, 5, 4}, {2, 3, 4}};
    mk_trace(&t, 1, 4, j, 3);
    t.vcs = realloc(t.vcs, 2 * sizeof *t.vcs);
    t.vcs[1] = (ty_sim_vc){strdup("b"), 1};
    t.n_vcs = 2;
    t.jobs[2].vc = 1;
    ty_sim_result r;
    run(&t, (ty_sim_config){.policy = TY_SIM_FIFO}, &r);
    expect(&r, 3, (double[]){0, 10, 2}, (double[]){10, 15, 5});
    ty_sim_result_free(&t, &r);
    run(&t, (ty_sim_config){.policy = TY_SIM_FIFO, .cohort = true}, &r);
    /* Y borrows b's node at 1; Z finds nothing free and, without preemption, waits */
    expect(&r, 3, (double[]){0, 1, 6}, (double[]){10, 6, 9});
    cr_expect_float_eq(r.per_vc[0].gpu_utilization, (40 + 20) / (4.0 * 10), 1e-9);
    ty_sim_result_free(&t, &r);
    run(&t, (ty_sim_config){.policy = TY_SIM_SRTF, .cohort = true}, &r);
    /* at 2 X (8 s left) goes, Z takes its node; X resumes at 5 when Z ends */
    expect(&r, 3, (double[]){0, 1, 2}, (double[]){13, 6, 5});
    cr_expect_eq(r.per_vc[0].preemptions, 1);
    cr_expect_eq(r.per_vc[1].preemptions, 0);
    ty_sim_result_free(&t, &r);
    ty_sim_trace_free(&t);
}

/* Three VCs of one 4-GPU node each, c idle; a and b each submit eight 1-GPU jobs at 0 (a's
 * rows first). Without fair sharing a's come first and borrow all of c's node; with it a and
 * b borrow two GPUs each. */
Test(sim, cohort_fair_sharing_splits_what_is_borrowed)
{
    jb j[16];
    for (int i = 0; i < 16; i++)
        j[i] = (jb){0, 10, 1};
    ty_sim_trace t;
    mk_trace(&t, 1, 4, j, 16);
    t.vcs = realloc(t.vcs, 3 * sizeof *t.vcs);
    t.vcs[1] = (ty_sim_vc){strdup("b"), 1};
    t.vcs[2] = (ty_sim_vc){strdup("c"), 1};
    t.n_vcs = 3;
    for (int i = 8; i < 16; i++)
        t.jobs[i].vc = 1;
    ty_sim_result r;
    run(&t, (ty_sim_config){.policy = TY_SIM_FIFO, .cohort = true}, &r);
    cr_expect_float_eq(r.per_vc[0].avg_jct_s, 10, 1e-9);
    cr_expect_float_eq(r.per_vc[1].avg_jct_s, (4 * 10 + 4 * 20) / 8.0, 1e-9);
    cr_expect_eq(r.per_vc[2].jobs, 0);
    ty_sim_result_free(&t, &r);
    run(&t, (ty_sim_config){.policy = TY_SIM_FIFO, .cohort = true, .fair_sharing = true}, &r);
    cr_expect_float_eq(r.per_vc[0].avg_jct_s, (6 * 10 + 2 * 20) / 8.0, 1e-9);
    cr_expect_float_eq(r.per_vc[1].avg_jct_s, (6 * 10 + 2 * 20) / 8.0, 1e-9);
    ty_sim_result_free(&t, &r);
    ty_sim_trace_free(&t);
}

/* ---- a cluster of Kueue objects ---- */

static char *tmp_file(const char *text)
{
    char *path = strdup("/tmp/test_sim_XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static json_t *gpu_nodes(int n, int gpus)
{
    json_t *nodes = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(nodes, json_pack("{s:s, s:{s:s+}, s:{s:{s:I}}}", "kind", "Node",
                                               "metadata", "name", "node-", (char[]){(char)('1' + i), 0},
                                               "status", "allocatable", "nvidia.com/gpu",
                                               (json_int_t)gpus));
    return nodes;
}

static const char kueue_yaml[] =
    "apiVersion: kueue.x-k8s.io/v1beta1\nkind: ResourceFlavor\nmetadata: {name: gpu}\n---\n"
    "apiVersion: kueue.x-k8s.io/v1beta1\nkind: ClusterQueue\nmetadata: {name: main}\n"
    "spec:\n  preemption: {withinClusterQueue: LowerPriority}\n  resourceGroups:\n"
    "  - coveredResources: [nvidia.com/gpu, pods]\n    flavors:\n    - name: gpu\n"
    "      resources:\n      - {name: nvidia.com/gpu, nominalQuota: 8}\n"
    "      - {name: pods, nominalQuota: 4}\n---\n"
    "apiVersion: kueue.x-k8s.io/v1beta1\nkind: LocalQueue\n"
    "metadata: {name: team, namespace: ml}\nspec: {clusterQueue: main}\n---\n"
    "apiVersion: kueue.x-k8s.io/v1beta1\nkind: WorkloadPriorityClass\n"
    "metadata: {name: urgent}\nvalue: 100\n";

/* VCs route to a LocalQueue ("ns/name") or a ClusterQueue by name; a WorkloadPriorityClass
 * gives the priority (urgent preempts at 5; the preempted job's 5 s left run from 7); the
 * queue covers "pods" (4 of them: the fifth 1-GPU job waits); rows that cannot run are
 * counted. On 2 nodes of 4 GPUs. */
Test(sim, kueue_routes_prioritises_and_counts)
{
    char *yaml = tmp_file(kueue_yaml);
    char *csv = tmp_file("submit_s,duration_s,gpus,vc,priority_class\n"
                         "0,10,8,ml/team,\n5,2,8,main,urgent\n20,1,16,main,\n"
                         "30,1,1,nowhere,\n40,5,1,main,\n40,5,1,main,\n40,5,1,main,\n"
                         "40,5,1,main,\n40,5,1,main,\n");
    json_t *nodes = gpu_nodes(2, 4);
    ty_sim_kueue *k = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_sim_kueue_load(&k, yaml, nodes, &err), 0, "%s", err.msg);
    ty_sim_trace t;
    ty_sim_load_opts lo = {.kueue = true};
    cr_assert_eq(ty_sim_trace_load(&t, csv, &lo, &err), 0, "%s", err.msg);
    cr_assert_eq(ty_sim_kueue_bind(k, &t, 0, &err), 0, "%s", err.msg);
    cr_expect_eq(t.gpus_per_node, 4);
    cr_expect_eq(t.n_vcs, 2); /* ml/team, main: "nowhere" is no queue */
    cr_expect_eq(t.skipped.unknown_vc, 1);
    cr_expect_eq(t.skipped.too_large, 1); /* 16 GPUs on a queue of 8 */
    cr_assert_eq(t.n_jobs, 7);
    ty_sim_result r;
    run(&t, (ty_sim_config){.policy = TY_SIM_KUEUE, .kueue = k, .restart_ms = 0}, &r);
    /* jobs in submit order: low 8 (0), urgent (5), five 1-GPU at 40 (index 2..6) */
    expect(&r, 7, (double[]){0, 5, 40, 40, 40, 40, 45},
           (double[]){12, 7, 45, 45, 45, 45, 50});
    cr_expect_eq(r.overall.preemptions, 1);
    ty_sim_result_free(&t, &r);
    ty_sim_trace_free(&t);
    ty_sim_kueue_free(k);
    json_decref(nodes);
    unlink(yaml);
    unlink(csv);
    free(yaml);
    free(csv);
}
