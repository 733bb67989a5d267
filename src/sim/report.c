/* The simulator's output (sim/sim.h): the table, the JSON document, the SVG plot. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "sim/sim.h"

static const char *semantics(const ty_sim_config *c) { return c->helios ? "helios" : "trainyard"; }

static void row(FILE *f, const char *name, const ty_sim_stats *s)
{
    fprintf(f, "%-10s %7zu %12.1f %12.1f %12.1f %12.1f %12.1f %6.1f%% %8zu\n", name, s->jobs,
            s->avg_jct_s, s->p50_jct_s, s->p99_jct_s, s->avg_queue_s, s->makespan_s,
            100.0 * s->gpu_utilization, s->preemptions);
}

void ty_sim_print_table(FILE *f, const ty_sim_trace *t, const ty_sim_config *c,
                        const ty_sim_result *r)
{
    fprintf(f, "policy %s (semantics %s), %zu jobs on %zu vc(s)%s%s, %zu scheduling passes\n\n",
            ty_sim_policy_name(c->policy), semantics(c), t->n_jobs, t->n_vcs,
            c->cohort ? " in one cohort" : "", c->fair_sharing ? " with fair sharing" : "",
            r->passes);
    fprintf(f, "%-10s %7s %12s %12s %12s %12s %12s %7s %8s\n", "VC", "JOBS", "AVG JCT s",
            "P50 JCT s", "P99 JCT s", "AVG QUEUE s", "MAKESPAN s", "GPU", "PREEMPT");
    for (size_t v = 0; v < t->n_vcs; v++)
        row(f, t->vcs[v].name, &r->per_vc[v]);
    row(f, "all", &r->overall);
    const ty_sim_skipped *k = &t->skipped;
    fprintf(f, "\nrows not simulated: %zu unknown vc, %zu larger than their cluster, %zu without "
               "gpus, %zu of no duration, %zu outside the helios window\n",
            k->unknown_vc, k->too_large, k->zero_gpu, k->zero_duration, k->out_of_window);
}

static json_t *stats_json(const ty_sim_stats *s)
{
    return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:I}", "jobs", (json_int_t)s->jobs,
                     "avg_jct_s", s->avg_jct_s, "p50_jct_s", s->p50_jct_s, "p99_jct_s",
                     s->p99_jct_s, "avg_queue_s", s->avg_queue_s, "makespan_s", s->makespan_s,
                     "gpu_utilization", s->gpu_utilization, "preemptions",
                     (json_int_t)s->preemptions);
}

char *ty_sim_json(const ty_sim_trace *t, const ty_sim_config *c, const ty_sim_result *r)
{
    json_t *per = json_object();
    for (size_t v = 0; v < t->n_vcs; v++)
        json_object_set_new(per, t->vcs[v].name, stats_json(&r->per_vc[v]));
    const ty_sim_skipped *k = &t->skipped;
    json_t *doc = json_pack(
        "{s:s, s:s, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I}}", "policy",
        ty_sim_policy_name(c->policy), "semantics", semantics(c), "overall",
        stats_json(&r->overall), "per_vc", per, "skipped", "unknown_vc",
        (json_int_t)k->unknown_vc, "too_large", (json_int_t)k->too_large, "zero_gpu",
        (json_int_t)k->zero_gpu, "zero_duration", (json_int_t)k->zero_duration,
        "out_of_window", (json_int_t)k->out_of_window);
    char *out = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    return out;
}

/* ---- the plot ---- */

#define PW 900    /* plot width */
#define PH 120    /* panel height */
#define PAD 50

/* A VC's value at time x (the last point at or before it), moving *i forward. */
static const ty_sim_point *at(const ty_sim_point *a, size_t n, size_t *i, int64_t x)
{
    while (*i + 1 < n && a[*i + 1].t_ms <= x)
        (*i)++;
    return n && a[*i].t_ms <= x ? &a[*i] : NULL;
}

/* A VC name comes from the user's file: escaped for XML. */
static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void panel(FILE *f, int y0, const char *title, const double *pend, const double *util,
                  double maxp)
{
    fprintf(f, "<g transform=\"translate(%d,%d)\">\n", PAD, y0);
    fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", PW, PH);
    fprintf(f, "<text x=\"0\" y=\"-6\" font-size=\"12\">");
    xml_text(f, title);
    fprintf(f, ": pending jobs (blue, max %.0f), GPU utilization (red, 0-100%%)</text>\n", maxp);
    const double *ys[2] = {pend, util};
    const char *colors[2] = {"#1f5fbf", "#c0392b"};
    for (int s = 0; s < 2; s++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1\" points=\"",
                colors[s]);
        double m = s == 0 ? (maxp > 0 ? maxp : 1) : 1;
        for (int x = 0; x < PW; x++)
            fprintf(f, "%d,%.1f ", x, PH - ys[s][x] / m * (PH - 2) - 1);
        fprintf(f, "\"/>\n");
    }
    fprintf(f, "</g>\n");
}

int ty_sim_plot(const char *path, const ty_sim_trace *t, const ty_sim_result *r, ty_error *err)
{
    FILE *f = fopen(path, "we");
    if (!f)
        return ty_fail_errno(err, errno, "open %s", path);
    int64_t end = 1;
    for (size_t v = 0; v < t->n_vcs; v++)
        if (r->n_series[v] && r->series[v][r->n_series[v] - 1].t_ms > end)
            end = r->series[v][r->n_series[v] - 1].t_ms;
    size_t panels = t->n_vcs + 1;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%zu\" "
               "font-family=\"sans-serif\">\n", PW + 2 * PAD, panels * (PH + PAD) + PAD);
    fprintf(f, "<text x=\"%d\" y=\"20\" font-size=\"14\">trainyard simulate: %.1f hours</text>\n",
            PAD, (double)end / 3.6e6);
    double *pend = ty_calloc((size_t)PW * panels, sizeof *pend);
    double *util = ty_calloc((size_t)PW * panels, sizeof *util);
    double *busy_all = ty_calloc(PW, sizeof *busy_all);
    int64_t gpus_all = 0;
    for (size_t v = 0; v < t->n_vcs; v++) {
        size_t i = 0;
        int64_t gpus = (int64_t)t->vcs[v].nodes * t->gpus_per_node;
        gpus_all += gpus;
        for (int x = 0; x < PW; x++) {
            const ty_sim_point *p = at(r->series[v], r->n_series[v], &i, end * x / (PW - 1));
            double pe = p ? p->pending : 0, bu = p ? p->busy : 0;
            pend[(v + 1) * PW + x] = pe;
            util[(v + 1) * PW + x] = bu / (double)gpus;
            pend[x] += pe;
            busy_all[x] += bu;
        }
    }
    for (int x = 0; x < PW; x++)
        util[x] = gpus_all ? busy_all[x] / (double)gpus_all : 0;
    for (size_t k = 0; k < panels; k++) {
        double maxp = 0;
        for (int x = 0; x < PW; x++)
            if (pend[k * PW + x] > maxp)
                maxp = pend[k * PW + x];
        panel(f, (int)(PAD + k * (PH + PAD)) + 10, k == 0 ? "all" : t->vcs[k - 1].name,
              pend + k * PW, util + k * PW, maxp);
    }
    fprintf(f, "</svg>\n");
    free(pend);
    free(util);
    free(busy_all);
    if (fclose(f) != 0)
        return ty_fail_errno(err, errno, "write %s", path);
    return 0;
}
