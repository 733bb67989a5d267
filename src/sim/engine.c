/* The discrete-event loop (sim/sim.h). Each cluster (VC) is simulated on its own: events in a
 * heap (job ends, LAS queue demotions) merged with the trace's arrivals, pending jobs in
 * per-size heaps ordered as the core orders them, node occupancy kept incrementally. At each
 * instant with events the core gets a snapshot of the nodes and of the pending jobs that could
 * still be admitted (see candidates()), never a pass over every pending job. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "sched/sched.h"
#include "sim/sim_int.h"
#include "store/store.h"

#define GPU "nvidia.com/gpu"
#define FLAVOR "gpu"
#define QUEUE "vc"
/* Passes at one instant: each PREEMPT evicts at least one job, so this bounds nothing real. */
#define MAX_PASSES_PER_INSTANT 100000

typedef struct jstate {
    int64_t remaining_ms; /* of running time still needed */
    int64_t run_start_ms; /* of the current run; -1 when not running */
    int64_t attained_ms;  /* GPU-ms received (las) */
    int64_t pending_since_ms, queue_ms;
    int32_t prio;         /* the core's priority while pending */
    int32_t epoch;        /* bumped at each start and stop: stale end events are ignored */
    int32_t run_pos;      /* index in the cluster's running list, -1 */
    int32_t pod_off;      /* placement: first node index in the placement array */
    int8_t flavor[2][2];  /* --kueue: the flavor (index in the file's) of each request of
                           * each pod set, as admitted */
} jstate;

typedef struct event {
    int64_t t_ms;
    int32_t job, epoch;
    int kind; /* 0: end, 1: las demotion */
} event;

/* A min-heap of job indices under the pending order. */
typedef struct jheap {
    int32_t *a;
    size_t n, cap;
    int32_t vc, gpus; /* its jobs' VC (cohort: its queue) and size (strict: any) */
} jheap;

typedef struct sim {
    const ty_sim_trace *t;
    const ty_sim_config *c;
    ty_sim_result *r;
    jstate *js;
    int32_t *place; /* node of each pod, per job at js.pod_off */
    bool preemptive, strict, cohort;
    bool pooled;           /* one cluster for every VC: --cohort or --kueue */
    const ty_sim_kueue *k; /* --kueue */
    int64_t thr_default;
    const int64_t *thr;
    size_t n_thr;
    /* the cluster being simulated: VC vc, or with cohort every VC (vc -1) */
    int vc, nodes, gpn;
    int64_t total;
    int32_t *freeg, *capg; /* per node: free GPUs, allocatable GPUs */
    int32_t *podsn;        /* per node: pods of running jobs */
    int32_t *usedg;        /* per node: scratch, GPUs of running jobs */
    int64_t *qused;        /* --kueue: [(cq * flavors + flavor) * 2 + (0 GPUs, 1 pods)], milli,
                            * of running jobs */
    int64_t busy;
    const char **names;    /* per node */
    char (*own_names)[16]; /* the generated clusters' */
    jheap *bk; /* pending, per VC and distinct size (per VC when strict) */
    int n_bk;
    size_t n_pending;
    int32_t *run;
    size_t n_run, cap_run;
    event *ev;
    size_t n_ev, cap_ev;
    int32_t *cand;
    size_t n_cand, cap_cand;
    int64_t *busy_ms;  /* per VC: GPU-ms run */
    int32_t *pend_vc, *busy_vc; /* per VC, for the series */
} sim;

/* ---- the core's order ---- */

static int32_t clamp_prio(int64_t v)
{
    return v < -INT32_MAX ? -INT32_MAX : v > INT32_MAX ? INT32_MAX : (int32_t)v;
}

static int las_queue(const sim *S, int64_t attained_ms)
{
    int q = 0;
    for (size_t i = 0; i < S->n_thr; i++)
        if (attained_ms >= S->thr[i] * 1000)
            q = (int)i + 1;
    return q;
}

/* The priority the core sees for job j at now (seconds, rounded up, for durations). */
static int32_t prio_of(const sim *S, int32_t j, int64_t now)
{
    const jstate *s = &S->js[j];
    switch (S->c->policy) {
    case TY_SIM_FIFO:
        return 0;
    case TY_SIM_SJF:
        return clamp_prio(-((S->t->jobs[j].duration_ms + 999) / 1000));
    case TY_SIM_SRTF: {
        int64_t rem = s->remaining_ms;
        if (s->run_start_ms >= 0)
            rem -= now - s->run_start_ms;
        return clamp_prio(-((rem + 999) / 1000));
    }
    case TY_SIM_LAS: {
        int64_t att = s->attained_ms;
        if (s->run_start_ms >= 0)
            att += (now - s->run_start_ms) * S->t->jobs[j].gpus;
        return (int32_t)-las_queue(S, att);
    }
    case TY_SIM_KUEUE: {
        int32_t pc = S->t->jobs[j].pclass;
        return pc >= 0 && S->k ? S->k->pclass_prio[pc] : 0;
    }
    }
    return 0;
}

/* Pending order: higher priority, then earlier queued_at (the submit time), then the key
 * (the job's index: file order among equal submit times) - the core's queue order. */
static bool before(const sim *S, int32_t a, int32_t b)
{
    if (S->js[a].prio != S->js[b].prio)
        return S->js[a].prio > S->js[b].prio;
    if (S->t->jobs[a].submit_ms != S->t->jobs[b].submit_ms)
        return S->t->jobs[a].submit_ms < S->t->jobs[b].submit_ms;
    return a < b;
}

static void hpush(const sim *S, jheap *h, int32_t j)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->a = ty_realloc(h->a, h->cap * sizeof *h->a);
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(S, j, h->a[p]))
            break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = j;
}

static int32_t hpop(const sim *S, jheap *h)
{
    int32_t top = h->a[0], last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        int32_t best = last;
        if (l < h->n && before(S, h->a[l], best))
            m = l, best = h->a[l];
        if (l + 1 < h->n && before(S, h->a[l + 1], best))
            m = l + 1;
        if (m == i)
            break;
        h->a[i] = h->a[m];
        i = m;
    }
    if (h->n)
        h->a[i] = last;
    return top;
}

static bool ev_before(const event *a, const event *b)
{
    if (a->t_ms != b->t_ms)
        return a->t_ms < b->t_ms;
    if (a->kind != b->kind)
        return a->kind < b->kind;
    return a->job < b->job;
}

static void ev_push(sim *S, event e)
{
    if (S->n_ev == S->cap_ev) {
        S->cap_ev = S->cap_ev ? S->cap_ev * 2 : 64;
        S->ev = ty_realloc(S->ev, S->cap_ev * sizeof *S->ev);
    }
    size_t i = S->n_ev++;
    while (i > 0 && ev_before(&e, &S->ev[(i - 1) / 2])) {
        S->ev[i] = S->ev[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    S->ev[i] = e;
}

static event ev_pop(sim *S)
{
    event top = S->ev[0], last = S->ev[--S->n_ev];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const event *best = &last;
        if (l < S->n_ev && ev_before(&S->ev[l], best))
            m = l, best = &S->ev[l];
        if (l + 1 < S->n_ev && ev_before(&S->ev[l + 1], best))
            m = l + 1;
        if (m == i)
            break;
        S->ev[i] = S->ev[m];
        i = m;
    }
    if (S->n_ev)
        S->ev[i] = last;
    return top;
}

/* ---- jobs ---- */

static int n_pods(const sim *S, int32_t gpus)
{
    return gpus <= S->gpn ? 1 : gpus / S->gpn + (gpus % S->gpn != 0);
}

static int32_t pod_gpus(const sim *S, int32_t gpus, int pod)
{
    if (gpus <= S->gpn)
        return gpus;
    return pod < gpus / S->gpn ? S->gpn : gpus % S->gpn;
}

/* The queue a job of VC vc waits in: its VC's with --cohort, its ClusterQueue's with --kueue,
 * else the cluster's one. */
static int32_t queue_of(const sim *S, int32_t vc)
{
    return S->k ? S->k->vc_cq[vc] : S->cohort ? vc : 0;
}

static bool strict_queue(const sim *S, int32_t q)
{
    return S->k ? S->k->cq_strict[q] : S->strict;
}

static jheap *bucket_of(sim *S, int32_t vc, int32_t gpus)
{
    vc = queue_of(S, vc);
    if (strict_queue(S, vc))
        gpus = 0;
    for (int i = 0; i < S->n_bk; i++)
        if (S->bk[i].vc == vc && S->bk[i].gpus == gpus)
            return &S->bk[i];
    /* few: VCs x sizes; kept by (vc, size) so that a pass's candidates come in that order */
    S->bk = ty_realloc(S->bk, (size_t)(S->n_bk + 1) * sizeof *S->bk);
    int i = S->n_bk++;
    while (i > 0 && (S->bk[i - 1].vc > vc || (S->bk[i - 1].vc == vc && S->bk[i - 1].gpus > gpus))) {
        S->bk[i] = S->bk[i - 1];
        i--;
    }
    S->bk[i] = (jheap){.vc = vc, .gpus = gpus};
    return &S->bk[i];
}

static void pend_push(sim *S, int32_t j)
{
    hpush(S, bucket_of(S, S->t->jobs[j].vc, S->t->jobs[j].gpus), j);
    S->n_pending++;
    S->pend_vc[S->t->jobs[j].vc]++;
}

static void make_pending(sim *S, int32_t j, int64_t now)
{
    S->js[j].prio = prio_of(S, j, now);
    S->js[j].pending_since_ms = now;
    pend_push(S, j);
}

static void run_add(sim *S, int32_t j)
{
    if (S->n_run == S->cap_run) {
        S->cap_run = S->cap_run ? S->cap_run * 2 : 64;
        S->run = ty_realloc(S->run, S->cap_run * sizeof *S->run);
    }
    S->js[j].run_pos = (int32_t)S->n_run;
    S->run[S->n_run++] = j;
}

static void run_remove(sim *S, int32_t j)
{
    int32_t pos = S->js[j].run_pos, last = S->run[--S->n_run];
    S->run[pos] = last;
    S->js[last].run_pos = pos;
    S->js[j].run_pos = -1;
}

/* The next LAS demotion of running job j: when its attained service crosses the next
 * threshold. */
static void push_demotion(sim *S, int32_t j, int64_t now)
{
    jstate *s = &S->js[j];
    int q = las_queue(S, s->attained_ms);
    if ((size_t)q >= S->n_thr)
        return;
    int64_t need = S->thr[q] * 1000 - s->attained_ms, g = S->t->jobs[j].gpus;
    int64_t at = now + (need + g - 1) / g;
    if (at < now + s->remaining_ms)
        ev_push(S, (event){at, j, s->epoch, 1});
}

/* --kueue: what running job j uses of its queue's quota, added (sign 1) or taken (-1): per pod
 * set, its GPUs on the flavor it was given, and one pod each where the queue covers "pods". */
static void quota_use(sim *S, int32_t j, int sign)
{
    if (!S->k)
        return;
    const ty_sim_job *job = &S->t->jobs[j];
    int32_t cq = queue_of(S, job->vc), nf = (int32_t)json_array_size(S->k->flavors);
    int32_t full = job->gpus <= S->gpn ? 0 : job->gpus / S->gpn;
    int32_t rest = job->gpus <= S->gpn ? job->gpus : job->gpus % S->gpn;
    int k = 0;
    int32_t sets[2][2] = {{full, S->gpn}, {rest > 0 ? 1 : 0, rest}}; /* pods, GPUs a pod */
    for (int x = 0; x < 2; x++) {
        if (sets[x][0] == 0)
            continue;
        int64_t *u = &S->qused[((size_t)cq * (size_t)nf + (size_t)S->js[j].flavor[k][0]) * 2];
        u[0] += sign * (int64_t)sets[x][0] * sets[x][1] * 1000;
        if (S->k->cq_pods[cq])
            S->qused[((size_t)cq * (size_t)nf + (size_t)S->js[j].flavor[k][1]) * 2 + 1] +=
                sign * (int64_t)sets[x][0] * 1000;
        k++;
    }
}

/* --kueue: the running jobs' quota usage as ty_sim_kueue_snapshot takes it. */
static json_t *quota_used_json(const sim *S)
{
    json_t *out = json_object();
    size_t nf = json_array_size(S->k->flavors);
    for (int32_t cq = 0; cq < S->k->n_cqs; cq++)
        for (size_t f = 0; f < nf; f++) {
            const int64_t *u = &S->qused[((size_t)cq * nf + f) * 2];
            if (!u[0] && !u[1])
                continue;
            json_t *q = json_object_get(out, S->k->cq_names[cq]);
            if (!q)
                json_object_set_new(out, S->k->cq_names[cq], q = json_object());
            json_object_set_new(q, ty_obj_name(json_array_get(S->k->flavors, f)),
                                json_pack("{s:I, s:I}", GPU, (json_int_t)u[0], "pods",
                                          (json_int_t)u[1]));
        }
    return out;
}

static void start(sim *S, int32_t j, int64_t now)
{
    jstate *s = &S->js[j];
    const ty_sim_job *job = &S->t->jobs[j];
    s->queue_ms += now - s->pending_since_ms;
    if (S->r->start_ms[j] < 0)
        S->r->start_ms[j] = now;
    s->run_start_ms = now;
    s->epoch++;
    for (int p = 0; p < n_pods(S, job->gpus); p++) {
        S->freeg[S->place[s->pod_off + p]] -= pod_gpus(S, job->gpus, p);
        S->podsn[S->place[s->pod_off + p]]++;
    }
    quota_use(S, j, 1);
    S->busy += job->gpus;
    S->busy_vc[job->vc] += job->gpus;
    run_add(S, j);
    ev_push(S, (event){now + s->remaining_ms, j, s->epoch, 0});
    if (S->c->policy == TY_SIM_LAS)
        push_demotion(S, j, now);
}

/* Ends a run (the job finished, or was preempted): frees its nodes, counts its service. */
static void stop(sim *S, int32_t j, int64_t now)
{
    jstate *s = &S->js[j];
    const ty_sim_job *job = &S->t->jobs[j];
    int64_t ran = now - s->run_start_ms;
    s->remaining_ms -= ran;
    s->attained_ms += ran * job->gpus;
    S->busy_ms[job->vc] += ran * job->gpus;
    S->busy_vc[job->vc] -= job->gpus;
    s->run_start_ms = -1;
    s->epoch++;
    for (int p = 0; p < n_pods(S, job->gpus); p++) {
        S->freeg[S->place[s->pod_off + p]] += pod_gpus(S, job->gpus, p);
        S->podsn[S->place[s->pod_off + p]]--;
    }
    quota_use(S, j, -1);
    S->busy -= job->gpus;
    run_remove(S, j);
}

/* ---- the snapshot ---- */

static void cand_push(sim *S, int32_t j)
{
    if (S->n_cand == S->cap_cand) {
        S->cap_cand = S->cap_cand ? S->cap_cand * 2 : 64;
        S->cand = ty_realloc(S->cand, S->cap_cand * sizeof *S->cand);
    }
    S->cand[S->n_cand++] = j;
}

/* Takes out of the pending heaps the jobs the pass could admit, so that a pass costs what can
 * change, not the backlog. `room` is what the jobs could get: the free GPUs, or with
 * preemption every GPU. Strict: the queue head onwards while their sum fits (the first that
 * does not would wait and block the rest). Best effort: of each size g <= room, the first
 * room / g: a later job of a size can only be admitted if an earlier one of the same size
 * was, and no more than room / g of them fit. Returns whether the pass can admit anything. */
static bool candidates(sim *S)
{
    int64_t room = S->preemptive ? S->total : S->total - S->busy;
    S->n_cand = 0;
    for (int b = 0; b < S->n_bk; b++) {
        jheap *h = &S->bk[b];
        if (strict_queue(S, h->vc)) {
            int64_t sum = 0;
            while (h->n && sum + S->t->jobs[h->a[0]].gpus <= room) {
                int32_t j = hpop(S, h);
                sum += S->t->jobs[j].gpus;
                cand_push(S, j);
            }
        } else if (h->gpus <= room) {
            for (int64_t k = room / h->gpus; k > 0 && h->n; k--)
                cand_push(S, hpop(S, h));
        }
    }
    S->n_pending -= S->n_cand;
    for (size_t i = 0; i < S->n_cand; i++)
        S->pend_vc[S->t->jobs[S->cand[i]].vc]--;
    return S->n_cand > 0;
}

/* A job of `gpus` GPUs as the core's workload: its pod sets (sim.h: whole nodes of gpn, then
 * one pod of the rest), each pod requesting GPUs and, where its queue covers Kueue's "pods",
 * one pod. */
typedef struct shape {
    ty_sched_amount req[2][2];
    ty_sched_pod_set ps[2];
    int32_t count[2];
    size_t n_ps, n_req;
} shape;

static void shape_of(shape *b, int32_t gpn, int32_t gpus, bool pods, bool helios)
{
    memset(b, 0, sizeof *b);
    int32_t full = gpus <= gpn ? 0 : gpus / gpn, rest = gpus <= gpn ? gpus : gpus % gpn;
    b->n_req = pods ? 2 : 1;
    if (full > 0) {
        b->req[b->n_ps][0] = (ty_sched_amount){GPU, (int64_t)gpn * 1000};
        b->req[b->n_ps][1] = (ty_sched_amount){"pods", 1000};
        b->ps[b->n_ps] = (ty_sched_pod_set){.name = "worker", .count = full};
        b->count[b->n_ps++] = full;
    }
    if (rest > 0) {
        b->req[b->n_ps][0] = (ty_sched_amount){GPU, (int64_t)rest * 1000};
        b->req[b->n_ps][1] = (ty_sched_amount){"pods", 1000};
        /* Helios' consolidate placer puts the part of a gang that is not a whole node on the
         * node with the most free GPUs, not the fullest one that fits */
        b->ps[b->n_ps] = (ty_sched_pod_set){.name = full ? "rest" : "job", .count = 1,
                                            .most_free = full > 0 && helios};
        b->count[b->n_ps++] = 1;
    }
    for (size_t i = 0; i < b->n_ps; i++) {
        b->ps[i].requests = b->req[i];
        b->ps[i].n_requests = b->n_req;
    }
}

static const char *flavor_name(const sim *S, int8_t f)
{
    return S->k ? ty_obj_name(json_array_get(S->k->flavors, (size_t)f)) : FLAVOR;
}

static int8_t flavor_index(const sim *S, const char *name)
{
    for (size_t i = 0; S->k && name && i < json_array_size(S->k->flavors); i++)
        if (strcmp(ty_obj_name(json_array_get(S->k->flavors, i)), name) == 0)
            return (int8_t)i;
    return 0;
}

static const char *queue_name(const sim *S, int32_t vc)
{
    return S->k ? S->k->cq_names[S->k->vc_cq[vc]] : S->cohort ? S->t->vcs[vc].name : QUEUE;
}

static int add_job(sim *S, ty_sched *s, int32_t j, int64_t now, bool admitted, ty_error *err)
{
    const ty_sim_job *job = &S->t->jobs[j];
    char key[24];
    snprintf(key, sizeof key, "j%09d", j);
    shape b;
    shape_of(&b, S->gpn, job->gpus, S->k && S->k->cq_pods[queue_of(S, job->vc)], S->c->helios);
    int np = n_pods(S, job->gpus);
    const char **pn = NULL;
    const char *flv[2][2];
    ty_sched_pod_set_admission adm[2];
    if (admitted) {
        pn = ty_malloc((size_t)np * sizeof *pn);
        for (int p = 0; p < np; p++)
            pn[p] = S->names[S->place[S->js[j].pod_off + p]];
        for (size_t k = 0, p = 0; k < b.n_ps; p += (size_t)b.count[k], k++) {
            for (size_t r = 0; r < b.n_req; r++)
                flv[k][r] = flavor_name(S, S->js[j].flavor[k][r]);
            adm[k] = (ty_sched_pod_set_admission){flv[k], pn + p};
        }
    }
    ty_sched_workload w = {.key = key,
                           .cluster_queue = queue_name(S, job->vc),
                           .priority = prio_of(S, j, now),
                           .queued_at_ms = job->submit_ms, .pod_sets = b.ps,
                           .n_pod_sets = b.n_ps, .admitted = admitted,
                           .admitted_at_ms = admitted ? S->js[j].run_start_ms : 0,
                           .admission = admitted ? adm : NULL};
    int rc = ty_sched_add_workload(s, &w, err);
    free(pn);
    return rc;
}

int ty_sim_kueue_fits_empty(const ty_sim_kueue *k, int32_t cq, int32_t gpus, bool *fits,
                            ty_error *err)
{
    *fits = false;
    ty_sched *s = ty_sim_kueue_snapshot(k, false, 0, NULL, NULL, NULL, err);
    if (!s)
        return -1;
    shape b;
    shape_of(&b, k->gpus_per_node, gpus, k->cq_pods[cq], false);
    ty_sched_workload w = {.key = "probe", .cluster_queue = k->cq_names[cq],
                           .pod_sets = b.ps, .n_pod_sets = b.n_ps};
    int rc = ty_sched_add_workload(s, &w, err);
    if (rc == 0) {
        ty_sched_run(s);
        const ty_sched_decision *d = ty_sched_decision_of(s, "probe");
        *fits = d && d->verdict == TY_SCHED_ADMIT;
    }
    ty_sched_free(s);
    return rc;
}

static int32_t job_of_key(const char *key) { return (int32_t)strtol(key + 1, NULL, 10); }
static int32_t node_of_name(const sim *S, const char *name)
{
    if (S->k)
        return (int32_t)(uintptr_t)ty_map_gets(&S->k->node_ix, name) - 1;
    return (int32_t)strtol(name + 1, NULL, 10);
}

/* The snapshot of a generated cluster (--cluster, --nodes, --cohort): its nodes, and one queue
 * whose quota is the cluster or with --cohort one per VC. */
static ty_sched *generated_snapshot(sim *S, int64_t now, ty_error *err)
{
    int rc = 0;
    ty_sched_config cfg = {.now_ms = now, .fair_sharing = S->c->fair_sharing};
    ty_sched *s = ty_sched_new(&cfg);
    ty_sched_flavor f = {.name = FLAVOR};
    rc = ty_sched_add_flavor(s, &f, err);
    for (int n = 0; rc == 0 && n < S->nodes; n++) {
        /* A full node takes no pod, and under one StrictFIFO queue without preemption nothing
         * after a workload that waits is admitted, so nothing would reserve it: leaving it out
         * changes no decision. (BestEffortFIFO, or other queues of a cohort: a waiting gang
         * may reserve full nodes.) */
        bool folded = !S->preemptive;
        if (folded && !S->cohort && S->strict && S->freeg[n] == 0)
            continue;
        ty_sched_amount alloc = {GPU, (int64_t)S->gpn * 1000};
        /* Without preemption the running jobs are only occupancy: given as the nodes' used
         * GPUs (and with cohort their queues' used quota, below), the same room and quota as
         * admitted workloads would leave, at the cost of a node, not of every running job. */
        ty_sched_amount used = {GPU, (int64_t)(S->gpn - S->freeg[n]) * 1000};
        ty_sched_node nd = {.name = S->names[n], .allocatable = &alloc, .n_allocatable = 1,
                            .used = &used, .n_used = folded ? 1 : 0};
        rc = ty_sched_add_node(s, &nd, err);
    }
    /* One queue whose quota is the cluster; with cohort one per VC, its nominal quota the
     * VC's GPUs, all in one cohort: borrowing (and with preemption, reclaiming) between VCs. */
    static const char *const covered[] = {GPU};
    for (size_t v = 0; rc == 0 && v < (S->cohort ? S->t->n_vcs : 1); v++) {
        int64_t nominal = S->cohort ? (int64_t)S->t->vcs[v].nodes * S->gpn : S->total;
        int64_t used = !S->preemptive ? (S->cohort ? S->busy_vc[v] : S->busy) * 1000 : 0;
        ty_sched_quota q = {GPU, nominal * 1000, TY_SCHED_UNLIMITED, TY_SCHED_UNLIMITED, used};
        ty_sched_flavor_quotas fq = {FLAVOR, &q, 1};
        ty_sched_resource_group g = {covered, 1, &fq, 1};
        ty_sched_cluster_queue cq = {
            .name = S->cohort ? S->t->vcs[v].name : QUEUE,
            .cohort = S->cohort ? "all" : NULL,
            .queueing = S->strict ? TY_SCHED_STRICT_FIFO : TY_SCHED_BEST_EFFORT_FIFO,
            .within_cluster_queue = S->preemptive ? TY_SCHED_PREEMPT_LOWER_PRIORITY
                                                  : TY_SCHED_PREEMPT_NEVER,
            .reclaim_within_cohort = S->preemptive ? TY_SCHED_PREEMPT_ANY
                                                   : TY_SCHED_PREEMPT_NEVER,
            .fair_weight_milli = 1000, .groups = &g, .n_groups = 1};
        rc = ty_sched_add_cluster_queue(s, &cq, err);
    }
    if (rc < 0) {
        ty_sched_free(s);
        return NULL;
    }
    return s;
}

/* One pass of the core at `now`; applies its decisions. *again: a PREEMPT evicted jobs, so
 * the instant needs another pass. */
static int pass(sim *S, int64_t now, bool *again, ty_error *err)
{
    *again = false;
    if (!candidates(S))
        return 0;
    S->r->passes++;
    ty_sched *s = NULL;
    int rc = 0;
    if (S->k) {
        /* the user's queues, flavors and nodes, as the server's pass builds them; without
         * preemption the running jobs are usage (quota, nodes), not workloads */
        json_t *used = S->preemptive ? NULL : quota_used_json(S);
        for (int n = 0; n < S->nodes; n++)
            S->usedg[n] = S->capg[n] - S->freeg[n];
        s = ty_sim_kueue_snapshot(S->k, S->c->fair_sharing, now, used,
                                  S->preemptive ? NULL : S->usedg,
                                  S->preemptive ? NULL : S->podsn, err);
        json_decref(used);
        rc = s ? 0 : -1;
    } else {
        s = generated_snapshot(S, now, err);
        rc = s ? 0 : -1;
    }
    /* Running jobs are admitted workloads where the core must see them: as victims, or for
     * each queue's quota usage. */
    bool admitted = S->preemptive;
    for (size_t i = 0; rc == 0 && admitted && i < S->n_run; i++)
        rc = add_job(S, s, S->run[i], now, true, err);
    for (size_t i = 0; rc == 0 && i < S->n_cand; i++)
        rc = add_job(S, s, S->cand[i], now, false, err);
    if (rc < 0) {
        ty_sched_free(s); /* NULL is fine */
        return ty_error_wrap(err, "simulator snapshot at %" PRId64 " ms", now);
    }
    ty_sched_run(s);
    /* Victims first, so that the nodes the admitted jobs were given are free. */
    size_t nd = ty_sched_n_decisions(s);
    for (size_t i = 0; i < nd; i++) {
        const ty_sched_decision *d = ty_sched_decision_at(s, i);
        if (d->verdict != TY_SCHED_PREEMPT)
            continue;
        for (size_t v = 0; v < d->n_victims; v++) {
            int32_t j = job_of_key(d->victims[v].workload);
            if (S->js[j].run_pos < 0)
                continue;
            stop(S, j, now);
            S->js[j].remaining_ms += S->c->restart_ms;
            S->r->per_vc[S->t->jobs[j].vc].preemptions++;
            make_pending(S, j, now);
        }
        *again = true;
    }
    for (size_t i = 0; i < nd; i++) {
        const ty_sched_decision *d = ty_sched_decision_at(s, i);
        int32_t j = job_of_key(d->workload);
        if (d->verdict != TY_SCHED_ADMIT) {
            pend_push(S, j); /* back in the queue as it was */
            continue;
        }
        /* the pod sets as add_job made them: `worker` (full nodes) first, then one pod */
        int32_t gpus = S->t->jobs[j].gpus, np = n_pods(S, gpus), p = 0;
        int32_t full = gpus <= S->gpn ? 0 : gpus / S->gpn;
        size_t n_req = S->k && S->k->cq_pods[queue_of(S, S->t->jobs[j].vc)] ? 2 : 1;
        for (size_t k = 0; k < d->n_pod_sets && k < 2; k++) {
            int count = full > 0 && k == 0 ? full : 1;
            for (int c = 0; c < count && p < np; c++)
                S->place[S->js[j].pod_off + p++] = node_of_name(S, d->pod_sets[k].nodes[c]);
            for (size_t r = 0; r < n_req; r++)
                S->js[j].flavor[k][r] = flavor_index(S, d->pod_sets[k].flavors[r]);
        }
        start(S, j, now);
    }
    ty_sched_free(s);
    return 0;
}

/* ---- invariants ---- */

static int check(sim *S, int64_t now, ty_error *err)
{
    int64_t *used = ty_calloc((size_t)S->nodes, sizeof *used);
    int64_t busy = 0;
    int rc = 0;
    for (size_t i = 0; i < S->n_run; i++) {
        int32_t j = S->run[i];
        const ty_sim_job *job = &S->t->jobs[j];
        if (S->js[j].run_start_ms < job->submit_ms || S->r->start_ms[j] < job->submit_ms)
            rc = ty_fail(err, "invariant: job at line %" PRId64 " runs before its submission",
                         job->line);
        for (int p = 0; p < n_pods(S, job->gpus); p++)
            used[S->place[S->js[j].pod_off + p]] += pod_gpus(S, job->gpus, p);
        busy += job->gpus;
    }
    for (int n = 0; rc == 0 && n < S->nodes; n++)
        if (used[n] > S->capg[n] || used[n] != S->capg[n] - S->freeg[n])
            rc = ty_fail(err, "invariant: node %s holds %" PRId64 " GPUs of %d (free %d) at %"
                         PRId64 " ms", S->names[n], used[n], S->capg[n], S->freeg[n], now);
    if (rc == 0 && busy != S->busy)
        rc = ty_fail(err, "invariant: %" PRId64 " GPUs busy, counted %" PRId64, busy, S->busy);
    free(used);
    return rc;
}

/* ---- the loop ---- */

static bool mine(const sim *S, int32_t vc) { return S->pooled || vc == S->vc; }

/* Appends VC v's point at now unless nothing changed (same instant: replaced). */
static void record_vc(sim *S, int v, int64_t now)
{
    ty_sim_point **a = &S->r->series[v];
    size_t *n = &S->r->n_series[v];
    ty_sim_point p = {now, S->pend_vc[v], S->busy_vc[v]};
    if (*n && (*a)[*n - 1].pending == p.pending && (*a)[*n - 1].busy == p.busy)
        return;
    if (*n && (*a)[*n - 1].t_ms == now) {
        (*a)[*n - 1] = p;
        return;
    }
    if ((*n & (*n - 1)) == 0)
        *a = ty_realloc(*a, (*n ? *n * 2 : 1) * sizeof **a);
    (*a)[(*n)++] = p;
}

static void record(sim *S, int64_t now)
{
    if (!S->c->record)
        return;
    for (size_t v = 0; v < S->t->n_vcs; v++)
        if (mine(S, (int32_t)v))
            record_vc(S, (int)v, now);
}

static int simulate_vc(sim *S, ty_error *err)
{
    const ty_sim_trace *t = S->t;
    size_t next = 0; /* next arrival among the trace's jobs (all VCs; others skipped) */
    size_t left = 0;
    for (size_t i = 0; i < t->n_jobs; i++)
        left += mine(S, t->jobs[i].vc);
    while (left > 0) {
        while (next < t->n_jobs && !mine(S, t->jobs[next].vc))
            next++;
        int64_t now = INT64_MAX;
        if (next < t->n_jobs)
            now = t->jobs[next].submit_ms;
        if (S->n_ev && S->ev[0].t_ms < now)
            now = S->ev[0].t_ms;
        if (now == INT64_MAX)
            return ty_fail(err, "simulator: %zu jobs of vc %s can never start", left,
                           S->pooled ? "(all)" : t->vcs[S->vc].name);
        /* ends first, so that their GPUs are free for what arrives at the same instant */
        while (S->n_ev && S->ev[0].t_ms == now) {
            event e = ev_pop(S);
            if (e.epoch != S->js[e.job].epoch)
                continue; /* the run it was for was preempted */
            if (e.kind == 0) {
                stop(S, e.job, now);
                S->r->end_ms[e.job] = now;
                left--;
            }
            /* a demotion needs nothing but the pass below, where its priority is lower */
        }
        while (next < t->n_jobs && t->jobs[next].submit_ms == now) {
            if (mine(S, t->jobs[next].vc))
                make_pending(S, (int32_t)next, now);
            next++;
        }
        bool again = true;
        for (int k = 0; again; k++) {
            if (k == MAX_PASSES_PER_INSTANT)
                return ty_fail(err, "simulator: no progress at %" PRId64 " ms", now);
            if (pass(S, now, &again, err) < 0)
                return -1;
        }
        if (S->c->check && check(S, now, err) < 0)
            return -1;
        record(S, now);
    }
    return 0;
}

/* ---- figures ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value with at least p% of the values at or below it. */
static double pct(const int64_t *sorted, size_t n, int p)
{
    size_t rank = ((size_t)p * n + 99) / 100;
    return n ? (double)sorted[rank ? rank - 1 : 0] / 1000.0 : 0;
}

static void stats_of(const sim *S, int vc, int64_t gpus, int64_t busy_ms, size_t preemptions,
                     ty_sim_stats *out)
{
    const ty_sim_trace *t = S->t;
    int64_t *jct = ty_malloc((t->n_jobs + 1) * sizeof *jct);
    size_t n = 0;
    int64_t qsum = 0, first = INT64_MAX, last = 0;
    double jsum = 0;
    for (size_t i = 0; i < t->n_jobs; i++) {
        if (vc >= 0 && t->jobs[i].vc != vc)
            continue;
        jct[n++] = S->r->end_ms[i] - t->jobs[i].submit_ms;
        jsum += (double)jct[n - 1];
        qsum += S->js[i].queue_ms;
        if (t->jobs[i].submit_ms < first)
            first = t->jobs[i].submit_ms;
        if (S->r->end_ms[i] > last)
            last = S->r->end_ms[i];
    }
    qsort(jct, n, sizeof *jct, cmp_i64);
    memset(out, 0, sizeof *out);
    out->jobs = n;
    out->preemptions = preemptions;
    if (n) {
        out->avg_jct_s = jsum / (double)n / 1000.0;
        out->p50_jct_s = pct(jct, n, 50);
        out->p99_jct_s = pct(jct, n, 99);
        out->avg_queue_s = (double)qsum / (double)n / 1000.0;
        out->makespan_s = (double)(last - first) / 1000.0;
        if (last > first && gpus > 0)
            out->gpu_utilization = (double)busy_ms / ((double)gpus * (double)(last - first));
    }
    free(jct);
}

int ty_sim_run(const ty_sim_trace *t, const ty_sim_config *c, ty_sim_result *r, ty_error *err)
{
    memset(r, 0, sizeof *r);
    static const int64_t tiresias[] = {3200};
    sim S = {.t = t, .c = c, .r = r};
    S.k = c->policy == TY_SIM_KUEUE ? c->kueue : NULL;
    if (c->policy == TY_SIM_KUEUE && !S.k)
        return ty_fail(err, "simulator: policy kueue needs a cluster of Kueue objects (--kueue)");
    S.preemptive = c->policy == TY_SIM_SRTF || c->policy == TY_SIM_LAS ||
                   (S.k && S.k->preemptive);
    S.strict = c->policy == TY_SIM_FIFO || (c->policy == TY_SIM_SJF && c->helios);
    S.thr = c->las_thresholds_gpu_s ? c->las_thresholds_gpu_s : tiresias;
    S.n_thr = c->las_thresholds_gpu_s ? c->n_las_thresholds : 1;
    S.gpn = t->gpus_per_node;
    r->per_vc = ty_calloc(t->n_vcs + 1, sizeof *r->per_vc);
    r->start_ms = ty_malloc((t->n_jobs + 1) * sizeof *r->start_ms);
    r->end_ms = ty_malloc((t->n_jobs + 1) * sizeof *r->end_ms);
    r->series = ty_calloc(t->n_vcs + 1, sizeof *r->series);
    r->n_series = ty_calloc(t->n_vcs + 1, sizeof *r->n_series);
    S.js = ty_calloc(t->n_jobs + 1, sizeof *S.js);
    size_t pods = 0;
    for (size_t i = 0; i < t->n_jobs; i++) {
        r->start_ms[i] = r->end_ms[i] = -1;
        S.js[i] = (jstate){.remaining_ms = t->jobs[i].duration_ms, .run_start_ms = -1,
                           .run_pos = -1, .pod_off = (int32_t)pods};
        pods += (size_t)n_pods(&S, t->jobs[i].gpus);
    }
    int rc = 0;
    int64_t all_nodes = 0;
    for (size_t v = 0; v < t->n_vcs; v++)
        all_nodes += t->vcs[v].nodes;
    /* what a user's trace may make this allocate */
    if (pods > INT32_MAX / 2)
        rc = ty_fail(err, "simulator: the trace's jobs have %zu pods, more than %d", pods,
                     INT32_MAX / 2);
    else if (c->cohort && all_nodes > TY_SIM_MAX_NODES)
        rc = ty_fail(err, "simulator: --cohort: the VCs have %" PRId64 " nodes, more than %d",
                     all_nodes, TY_SIM_MAX_NODES);
    S.place = ty_calloc(rc == 0 ? pods + 1 : 1, sizeof *S.place);
    S.cohort = c->cohort && !S.k;
    S.pooled = S.cohort || S.k;
    S.busy_ms = ty_calloc(t->n_vcs + 1, sizeof *S.busy_ms);
    S.pend_vc = ty_calloc(t->n_vcs + 1, sizeof *S.pend_vc);
    S.busy_vc = ty_calloc(t->n_vcs + 1, sizeof *S.busy_vc);
    int64_t all_gpus = 0, all_busy = 0;
    size_t all_pre = 0;
    /* one cluster per VC, or with cohort one of all the VCs' nodes, or the --kueue nodes */
    for (size_t v = 0; rc == 0 && v < (S.pooled ? 1 : t->n_vcs); v++) {
        S.vc = S.pooled ? -1 : (int)v;
        S.nodes = 0;
        for (size_t k = 0; !S.k && k < t->n_vcs; k++)
            if (S.cohort || k == v)
                S.nodes += t->vcs[k].nodes;
        if (S.k)
            S.nodes = S.k->n_nodes;
        S.freeg = ty_malloc(((size_t)S.nodes + 1) * sizeof *S.freeg);
        S.capg = ty_malloc(((size_t)S.nodes + 1) * sizeof *S.capg);
        S.usedg = ty_malloc(((size_t)S.nodes + 1) * sizeof *S.usedg);
        S.podsn = ty_calloc((size_t)S.nodes + 1, sizeof *S.podsn);
        S.qused = S.k ? ty_calloc((size_t)S.k->n_cqs * json_array_size(S.k->flavors) * 2 + 1,
                                  sizeof *S.qused)
                      : NULL;
        S.names = ty_malloc(((size_t)S.nodes + 1) * sizeof *S.names);
        S.own_names = S.k ? NULL : ty_malloc(((size_t)S.nodes + 1) * sizeof *S.own_names);
        S.total = 0;
        for (int n = 0; n < S.nodes; n++) {
            S.capg[n] = S.k ? S.k->node_gpus[n] : S.gpn;
            S.freeg[n] = S.capg[n];
            S.total += S.capg[n];
            if (S.k) {
                S.names[n] = S.k->node_names[n];
            } else {
                /* zero-padded, so that the core's name order is the node order */
                snprintf(S.own_names[n], sizeof S.own_names[n], "n%06d", n);
                S.names[n] = S.own_names[n];
            }
        }
        S.busy = 0;
        S.n_pending = S.n_run = S.n_ev = 0;
        S.n_bk = 0;
        S.bk = NULL;
        rc = simulate_vc(&S, err);
        for (int b = 0; b < S.n_bk; b++)
            free(S.bk[b].a);
        free(S.bk);
        free(S.freeg);
        free(S.capg);
        free(S.usedg);
        free(S.podsn);
        free(S.qused);
        free(S.names);
        free(S.own_names);
    }
    /* per VC: its GPUs are its nodes' (with cohort its nominal quota: borrowing can pass
     * 100 %) */
    for (size_t v = 0; rc == 0 && v < t->n_vcs; v++) {
        /* --kueue: its ClusterQueue's nominal GPUs */
        int64_t gpus = !S.k                 ? (int64_t)t->vcs[v].nodes * S.gpn
                       : S.k->vc_cq[v] >= 0 ? S.k->cq_gpus[S.k->vc_cq[v]]
                                            : 0;
        stats_of(&S, (int)v, gpus, S.busy_ms[v], r->per_vc[v].preemptions, &r->per_vc[v]);
        all_gpus += gpus, all_busy += S.busy_ms[v], all_pre += r->per_vc[v].preemptions;
    }
    if (rc == 0 && c->check)
        for (size_t i = 0; rc == 0 && i < t->n_jobs; i++)
            if (r->end_ms[i] < t->jobs[i].submit_ms + t->jobs[i].duration_ms)
                rc = ty_fail(err, "invariant: job at line %" PRId64 " ends at %" PRId64
                             " ms, before its submission and duration", t->jobs[i].line,
                             r->end_ms[i]);
    if (rc == 0)
        stats_of(&S, -1, S.k ? S.total : all_gpus, all_busy, all_pre, &r->overall);
    free(S.js);
    free(S.busy_ms);
    free(S.pend_vc);
    free(S.busy_vc);
    free(S.place);
    free(S.ev);
    free(S.run);
    free(S.cand);
    if (rc < 0)
        ty_sim_result_free(t, r);
    return rc;
}

void ty_sim_result_free(const ty_sim_trace *t, ty_sim_result *r)
{
    if (r->series)
        for (size_t v = 0; v < t->n_vcs; v++)
            free(r->series[v]);
    free(r->series);
    free(r->n_series);
    free(r->per_vc);
    free(r->start_ms);
    free(r->end_ms);
    memset(r, 0, sizeof *r);
}
