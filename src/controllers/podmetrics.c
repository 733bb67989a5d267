#include "controllers/podmetrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"

#define PERIOD_MS 10000
/* Sampling runs while someone asks: it stops this long after the last request. */
#define IDLE_STOP_NS (600 * 1000000000LL)

/* Two samples of a counter: the usage is their rate. */
typedef struct sample {
    uint64_t cpu_prev, cpu_cur;
    int64_t t_prev, t_cur; /* 0: no sample */
    uint64_t mem;
} sample;

/* One container's samples, keyed "<uid>/<container>". */
typedef struct ctr_sample {
    char *ns, *name, *uid, *container;
    sample s;
    bool seen; /* in the last pass */
} ctr_sample;

struct ty_podmetrics {
    ty_store *store;
    ty_runtime *rt;
    char *machine_node;
    uv_timer_t *timer;
    uint64_t period_ms;
    bool sampling;
    int64_t last_request; /* ns */
    ty_map ctrs; /* "<uid>/<container>" -> ctr_sample* */
    sample node;
    int64_t now; /* the pass under way */
    bool warned;
};

static void record(sample *s, uint64_t cpu, uint64_t mem, int64_t now)
{
    s->cpu_prev = s->cpu_cur;
    s->t_prev = s->t_cur;
    s->cpu_cur = cpu;
    s->t_cur = now;
    s->mem = mem;
}

static void on_usage(void *ctx, const char *ns, const char *name, const char *uid,
                     const char *container, uint64_t cpu_ns, uint64_t memory_bytes)
{
    ty_podmetrics *m = ctx;
    TY_AUTOFREE char *key = ty_asprintf("%s/%s", uid, container);
    ctr_sample *c = ty_map_gets(&m->ctrs, key);
    if (!c) {
        c = TY_NEW(ctr_sample);
        c->ns = ty_strdup(ns);
        c->name = ty_strdup(name);
        c->uid = ty_strdup(uid);
        c->container = ty_strdup(container);
        ty_map_puts(&m->ctrs, key, c);
    }
    /* a restarted container's counter starts over: its first sample is a new start */
    if (c->s.t_cur && cpu_ns < c->s.cpu_cur)
        c->s = (sample){0};
    record(&c->s, cpu_ns, memory_bytes, m->now);
    c->seen = true;
}

static void ctr_free(ctr_sample *c)
{
    free(c->ns), free(c->name), free(c->uid), free(c->container);
    free(c);
}

static void sample_all(ty_podmetrics *m)
{
    m->now = ty_time_now_ns();
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&m->ctrs, &i, &slot);)
        ((ctr_sample *)slot->value)->seen = false;
    ty_error err = TY_ERROR_INIT;
    if (ty_runtime_usage(m->rt, on_usage, m, &err) < 0 && !m->warned) {
        ty_warn("metrics: %s", err.msg);
        m->warned = true;
    }
    ty_error_clear(&err);
    /* containers that ended are forgotten */
    size_t ngone = 0;
    char **gone = NULL;
    for (size_t i = 0; ty_map_next(&m->ctrs, &i, &slot);) {
        if (((ctr_sample *)slot->value)->seen)
            continue;
        gone = ty_realloc(gone, (ngone + 1) * sizeof *gone);
        gone[ngone++] = ty_strdup(slot->key);
    }
    for (size_t i = 0; i < ngone; i++) {
        ctr_free(ty_map_dels(&m->ctrs, gone[i]));
        free(gone[i]);
    }
    free(gone);
    uint64_t cpu, mem;
    if (m->machine_node && ty_runtime_node_usage(&cpu, &mem, NULL) == 0)
        record(&m->node, cpu, mem, m->now);
}

static void on_timer(uv_timer_t *t)
{
    ty_podmetrics *m = t->data;
    sample_all(m);
    if (m->now - m->last_request > IDLE_STOP_NS) {
        /* nobody asked for a while: stop, and forget (stale rates would mislead) */
        uv_timer_stop(t);
        m->sampling = false;
        const ty_map_slot *slot;
        for (size_t i = 0; ty_map_next(&m->ctrs, &i, &slot);)
            ctr_free(slot->value);
        ty_map_free(&m->ctrs);
        m->node = (sample){0};
    }
}

/* The first request starts sampling: a sample now, the next a second later (so usage is known
 * soon), then every period. */
static void wake(ty_podmetrics *m)
{
    m->last_request = ty_time_now_ns();
    if (m->sampling)
        return;
    m->sampling = true;
    sample_all(m);
    uint64_t first = m->period_ms < 1000 ? m->period_ms : 1000;
    uv_timer_start(m->timer, on_timer, first, m->period_ms);
}

static void timer_closed(uv_handle_t *h) { free(h); }

ty_podmetrics *ty_podmetrics_new(uv_loop_t *loop, ty_store *store, ty_runtime *rt,
                                 const char *machine_node)
{
    ty_podmetrics *m = TY_NEW(ty_podmetrics);
    m->store = store;
    m->rt = rt;
    m->machine_node = machine_node ? ty_strdup(machine_node) : NULL;
    const char *env = getenv("TRAINYARD_METRICS_PERIOD_MS");
    long long period = env ? atoll(env) : 0;
    if (period <= 0)
        period = PERIOD_MS;
    m->period_ms = (uint64_t)period;
    m->timer = TY_NEW(uv_timer_t);
    uv_timer_init(loop, m->timer);
    m->timer->data = m;
    uv_unref((uv_handle_t *)m->timer);
    return m;
}

void ty_podmetrics_free(ty_podmetrics *m)
{
    if (!m)
        return;
    uv_close((uv_handle_t *)m->timer, timer_closed);
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&m->ctrs, &i, &slot);)
        ctr_free(slot->value);
    ty_map_free(&m->ctrs);
    free(m->machine_node);
    free(m);
}

/* ---- answers -------------------------------------------------------------------------------- */

static bool has_rate(const sample *s) { return s->t_prev && s->t_cur > s->t_prev; }

static uint64_t nanocores(const sample *s)
{
    double dt = (double)(s->t_cur - s->t_prev);
    double d = (double)(s->cpu_cur - s->cpu_prev);
    return (uint64_t)(d / dt * 1e9);
}

/* Go's Duration.String, which metrics-server's windows are written in: "10.000123s",
 * "502.191976ms", "1m0.5s". */
static void go_units(ty_buf *b, int64_t v, int64_t unit, const char *suffix)
{
    ty_buf_addf(b, "%lld", (long long)(v / unit));
    int64_t frac = v % unit;
    if (frac) {
        /* the fraction's digits, as many as the unit has zeros (at most 9) */
        char digits[16];
        size_t n = 0;
        for (int64_t u = unit / 10; u >= 1 && n < 9; u /= 10)
            digits[n++] = (char)('0' + frac / u % 10);
        digits[n] = '\0';
        while (n > 0 && digits[n - 1] == '0')
            digits[--n] = '\0';
        ty_buf_addf(b, ".%s", digits);
    }
    ty_buf_adds(b, suffix);
}

char *ty_podmetrics_duration(int64_t ns)
{
    ty_buf b = TY_BUF_INIT;
    if (ns < 0) {
        ty_buf_addc(&b, '-');
        ns = -ns;
    }
    if (ns == 0)
        ty_buf_adds(&b, "0s");
    else if (ns < 1000)
        ty_buf_addf(&b, "%lldns", (long long)ns);
    else if (ns < 1000000)
        go_units(&b, ns, 1000, "µs");
    else if (ns < 1000000000)
        go_units(&b, ns, 1000000, "ms");
    else {
        int64_t h = ns / 3600000000000LL, m = ns / 60000000000LL % 60;
        if (h)
            ty_buf_addf(&b, "%lldh", (long long)h);
        if (h || m)
            ty_buf_addf(&b, "%lldm", (long long)m);
        go_units(&b, ns % 60000000000LL, 1000000000, "s");
    }
    return ty_buf_steal(&b);
}

static json_t *window_of(int64_t ns)
{
    char *text = ty_podmetrics_duration(ns);
    json_t *j = json_string(text);
    free(text);
    return j;
}

static json_t *usage_json(uint64_t nanocores_v, uint64_t mem)
{
    /* metrics-server's forms: "123456n" and "1024Ki" */
    return json_pack("{s:o, s:o}", "cpu", json_sprintf("%llun", (unsigned long long)nanocores_v),
                     "memory", json_sprintf("%lluKi", (unsigned long long)(mem / 1024)));
}

static json_t *meta_of(const json_t *obj, const char *ns, const char *name, int64_t ts)
{
    char t[40];
    json_t *meta = json_pack("{s:s, s:s}", "name", name, "creationTimestamp",
                             ty_time_format_rfc3339(ts, t, sizeof t, 0));
    if (ns)
        json_object_set_new(meta, "namespace", json_string(ns));
    json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    if (json_is_object(labels))
        json_object_set(meta, "labels", labels);
    return meta;
}

static int by_key(const void *a, const void *b)
{
    const ctr_sample *x = *(ctr_sample *const *)a, *y = *(ctr_sample *const *)b;
    int c = strcmp(x->ns, y->ns);
    if (!c)
        c = strcmp(x->name, y->name);
    if (!c)
        c = strcmp(x->uid, y->uid);
    return c ? c : strcmp(x->container, y->container);
}

/* The containers with a rate, sorted by namespace, pod, container; caller frees the array. */
static ctr_sample **ready_ctrs(ty_podmetrics *m, size_t *n)
{
    ctr_sample **v = NULL;
    *n = 0;
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&m->ctrs, &i, &slot);) {
        ctr_sample *c = slot->value;
        if (!has_rate(&c->s))
            continue;
        v = ty_realloc(v, (*n + 1) * sizeof *v);
        v[(*n)++] = c;
    }
    if (*n)
        qsort(v, *n, sizeof *v, by_key);
    return v;
}

static json_t *pod_metrics(ty_podmetrics *m, ctr_sample **v, size_t from, size_t to)
{
    json_t *pod = ty_store_get(m->store, "pods", v[from]->ns, v[from]->name);
    if (!pod || strcmp(ty_obj_uid(pod), v[from]->uid) != 0) {
        json_decref(pod);
        return NULL;
    }
    json_t *ctrs = json_array();
    int64_t ts = 0, window = 0;
    for (size_t i = from; i < to; i++) {
        const sample *s = &v[i]->s;
        json_array_append_new(ctrs, json_pack("{s:s, s:o}", "name", v[i]->container, "usage",
                                              usage_json(nanocores(s), s->mem)));
        ts = s->t_cur;
        window = s->t_cur - s->t_prev;
    }
    char t[40];
    json_t *pm = json_pack("{s:s, s:s, s:o, s:s, s:o, s:o}", "kind", "PodMetrics", "apiVersion",
                           "metrics.k8s.io/v1beta1", "metadata",
                           meta_of(pod, v[from]->ns, v[from]->name, ts), "timestamp",
                           ty_time_format_rfc3339(ts, t, sizeof t, 0), "window",
                           window_of(window), "containers", ctrs);
    json_decref(pod);
    return pm;
}

static json_t *pods_answer(ty_podmetrics *m, const char *ns, const char *name)
{
    size_t n;
    ctr_sample **v = ready_ctrs(m, &n);
    json_t *items = json_array(), *one = NULL;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && strcmp(v[j]->uid, v[i]->uid) == 0)
            j++;
        bool wanted = (!ns || strcmp(v[i]->ns, ns) == 0) && (!name || strcmp(v[i]->name, name) == 0);
        json_t *pm = wanted ? pod_metrics(m, v, i, j) : NULL;
        if (pm && name)
            one = pm;
        else if (pm)
            json_array_append_new(items, pm);
        i = j;
    }
    free(v);
    if (name) {
        json_decref(items);
        return one;
    }
    return json_pack("{s:s, s:s, s:{}, s:o}", "kind", "PodMetricsList", "apiVersion",
                     "metrics.k8s.io/v1beta1", "metadata", "items", items);
}

static json_t *node_metrics(ty_podmetrics *m, const json_t *node, ctr_sample **v, size_t n)
{
    const char *nn = ty_obj_name(node);
    uint64_t cpu = 0, mem = 0;
    int64_t ts = 0, window = 0;
    if (m->machine_node && strcmp(nn, m->machine_node) == 0) {
        if (!has_rate(&m->node))
            return NULL;
        cpu = nanocores(&m->node);
        mem = m->node.mem;
        ts = m->node.t_cur;
        window = m->node.t_cur - m->node.t_prev;
    } else {
        /* a declared node: what its pods use */
        bool any = false;
        for (size_t i = 0; i < n; i++) {
            json_t *pod = ty_store_get(m->store, "pods", v[i]->ns, v[i]->name);
            const char *pn = json_string_value(
                json_object_get(json_object_get(pod, "spec"), "nodeName"));
            if (pn && strcmp(pn, nn) == 0) {
                cpu += nanocores(&v[i]->s);
                mem += v[i]->s.mem;
                ts = v[i]->s.t_cur;
                window = v[i]->s.t_cur - v[i]->s.t_prev;
                any = true;
            }
            json_decref(pod);
        }
        if (!any)
            return NULL;
    }
    char t[40];
    return json_pack("{s:s, s:s, s:o, s:s, s:o, s:o}", "kind", "NodeMetrics", "apiVersion",
                     "metrics.k8s.io/v1beta1", "metadata", meta_of(node, NULL, nn, ts),
                     "timestamp", ty_time_format_rfc3339(ts, t, sizeof t, 0), "window",
                     window_of(window), "usage", usage_json(cpu, mem));
}

static json_t *nodes_answer(ty_podmetrics *m, const char *name)
{
    size_t n;
    ctr_sample **v = ready_ctrs(m, &n);
    json_t *nodes = ty_store_list(m->store, "nodes", NULL);
    json_t *items = json_array(), *one = NULL;
    size_t i;
    json_t *node;
    json_array_foreach(nodes, i, node)
    {
        if (name && strcmp(ty_obj_name(node), name) != 0)
            continue;
        json_t *nm = node_metrics(m, node, v, n);
        if (nm && name)
            one = nm;
        else if (nm)
            json_array_append_new(items, nm);
    }
    json_decref(nodes);
    free(v);
    if (name) {
        json_decref(items);
        return one;
    }
    return json_pack("{s:s, s:s, s:{}, s:o}", "kind", "NodeMetricsList", "apiVersion",
                     "metrics.k8s.io/v1beta1", "metadata", "items", items);
}

json_t *ty_podmetrics_get(ty_podmetrics *m, const char *resource, const char *ns,
                          const char *name)
{
    wake(m);
    if (strcmp(resource, "pods") == 0)
        return pods_answer(m, ns, name);
    if (strcmp(resource, "nodes") == 0)
        return nodes_answer(m, name);
    return NULL;
}
