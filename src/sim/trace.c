/* Trace readers (sim/sim.h): Philly with its VC file, Muri, and the generic CSV. Plain CSV:
 * fields are split at commas, no quoting (none of the formats needs it). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/mem.h"
#include "sim/sim.h"

#define MAX_FIELDS 32
#define MAX_LINE 4096

typedef struct csv {
    FILE *f;
    const char *path;
    int64_t line;
    char *buf;
    size_t cap;
    char *field[MAX_FIELDS];
    int n;
} csv;

/* The next non-empty line split into fields: 1, 0 at the end, -1 on error. */
static int csv_next(csv *c, ty_error *err)
{
    for (;;) {
        ssize_t len = getline(&c->buf, &c->cap, c->f);
        if (len < 0)
            return 0;
        c->line++;
        if (len > MAX_LINE)
            return ty_fail(err, "%s:%" PRId64 ": line longer than %d bytes", c->path, c->line,
                           MAX_LINE);
        while (len > 0 && (c->buf[len - 1] == '\n' || c->buf[len - 1] == '\r'))
            c->buf[--len] = 0;
        if (len == 0)
            continue;
        c->n = 0;
        char *p = c->buf;
        for (;;) {
            if (c->n == MAX_FIELDS)
                return ty_fail(err, "%s:%" PRId64 ": more than %d fields", c->path, c->line,
                               MAX_FIELDS);
            c->field[c->n++] = p;
            char *comma = strchr(p, ',');
            if (!comma)
                break;
            *comma = 0;
            p = comma + 1;
        }
        return 1;
    }
}

static int col(const csv *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->field[i], name) == 0)
            return i;
    return -1;
}

/* A decimal number with at most 3 fractional digits, times 1000 (scale 1000) or as is
 * (scale 1): exact integer arithmetic, no float rounding. */
static int parse_fixed(const csv *c, int i, const char *what, int64_t scale, int64_t *out,
                       ty_error *err)
{
    const char *s = i < c->n ? c->field[i] : "";
    const char *p = s;
    int64_t whole = 0, frac = 0, div = 1;
    bool digits = false;
    while (*p >= '0' && *p <= '9') {
        if (whole > (INT64_MAX / 1000 - 9) / 10)
            goto bad;
        whole = whole * 10 + (*p++ - '0');
        digits = true;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (div < 1000) {
                frac = frac * 10 + (*p - '0');
                div *= 10;
            } else if (*p != '0') {
                goto bad; /* finer than the millisecond */
            }
            p++;
            digits = true;
        }
    }
    if (!digits || *p)
        goto bad;
    if (scale == 1) {
        if (div != 1 && frac != 0)
            goto bad;
        *out = whole;
    } else {
        *out = whole * 1000 + frac * (1000 / div);
    }
    return 0;
bad:
    return ty_fail(err, "%s:%" PRId64 ": field %s: \"%s\" is not a non-negative number%s",
                   c->path, c->line, what, s, scale == 1 ? " of whole units" : " (to the ms)");
}

static int vc_index(const ty_sim_trace *t, const char *name)
{
    for (size_t i = 0; i < t->n_vcs; i++)
        if (strcmp(t->vcs[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int add_vc(ty_sim_trace *t, const char *name, int32_t nodes, const char *path,
                  int64_t line, ty_error *err)
{
    if (vc_index(t, name) >= 0)
        return ty_fail(err, "%s:%" PRId64 ": vc %s given twice", path, line, name);
    if (t->n_vcs == TY_SIM_MAX_VCS)
        return ty_fail(err, "%s:%" PRId64 ": more than %d vcs", path, line, TY_SIM_MAX_VCS);
    if (!*name || strlen(name) > 128)
        return ty_fail(err, "%s:%" PRId64 ": field vc: empty or longer than 128", path, line);
    t->vcs = ty_realloc(t->vcs, (t->n_vcs + 1) * sizeof *t->vcs);
    t->vcs[t->n_vcs++] = (ty_sim_vc){ty_strdup(name), nodes};
    return 0;
}

/* The index of WorkloadPriorityClass `name` among the trace's, added when new. */
static int32_t pclass_index(ty_sim_trace *t, const char *name, const char *path, int64_t line,
                            ty_error *err)
{
    for (size_t i = 0; i < t->n_pclasses; i++)
        if (strcmp(t->pclasses[i], name) == 0)
            return (int32_t)i;
    if (t->n_pclasses == TY_SIM_MAX_VCS)
        return ty_fail(err, "%s:%" PRId64 ": field priority_class: more than %d classes", path,
                       line, TY_SIM_MAX_VCS);
    if (strlen(name) > 253)
        return ty_fail(err, "%s:%" PRId64 ": field priority_class: longer than 253", path,
                       line);
    t->pclasses = ty_realloc(t->pclasses, (t->n_pclasses + 1) * sizeof *t->pclasses);
    t->pclass_line = ty_realloc(t->pclass_line, (t->n_pclasses + 1) * sizeof *t->pclass_line);
    t->pclasses[t->n_pclasses] = ty_strdup(name);
    t->pclass_line[t->n_pclasses] = line;
    return (int32_t)t->n_pclasses++;
}

static int load_cluster(ty_sim_trace *t, const char *path, ty_error *err)
{
    csv c = {.path = path};
    c.f = fopen(path, "re");
    if (!c.f)
        return ty_fail_errno(err, errno, "open %s", path);
    int rc = csv_next(&c, err);
    int ivc = -1, inodes = -1;
    if (rc > 0) {
        ivc = col(&c, "vc");
        inodes = col(&c, "node num") >= 0 ? col(&c, "node num") : col(&c, "nodes");
    }
    if (rc == 0 || (rc > 0 && (ivc < 0 || inodes < 0)))
        rc = ty_fail(err, "%s:1: the header must name columns vc and nodes (or \"node num\")",
                     path);
    while (rc > 0 && (rc = csv_next(&c, err)) > 0) {
        int64_t nodes;
        if (parse_fixed(&c, inodes, "nodes", 1, &nodes, err) < 0) {
            rc = -1;
            break;
        }
        if (nodes < 1 || nodes > TY_SIM_MAX_NODES) {
            rc = ty_fail(err, "%s:%" PRId64 ": field nodes: %" PRId64 " is not 1 to %d", path,
                         c.line, nodes, TY_SIM_MAX_NODES);
            break;
        }
        if (add_vc(t, ivc < c.n ? c.field[ivc] : "", (int32_t)nodes, path, c.line, err) < 0)
            rc = -1;
    }
    if (rc == 0 && t->n_vcs == 0)
        rc = ty_fail(err, "%s: no vc", path);
    free(c.buf);
    fclose(c.f);
    return rc < 0 ? -1 : 0;
}

/* "YYYY-MM-DD HH:MM:SS" (UTC) to seconds since the epoch. */
static int parse_stamp(const csv *c, int i, int64_t *out, ty_error *err)
{
    const char *s = i < c->n ? c->field[i] : "";
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
    if (!end || *end)
        return ty_fail(err, "%s:%" PRId64 ": field timestamp: \"%s\" is not YYYY-MM-DD HH:MM:SS",
                       c->path, c->line, s);
    *out = (int64_t)timegm(&tm);
    return 0;
}

static int cmp_job(const void *a, const void *b)
{
    const ty_sim_job *x = a, *y = b;
    if (x->submit_ms != y->submit_ms)
        return x->submit_ms < y->submit_ms ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* Helios' Philly window (its utils.trace_philly_process): submitted from 2017-10-01 00:00:00,
 * and at most (2017-11-30 23:59:00 - 2017-10-01 00:00:00) after the first such job. */
#define HELIOS_START_S 1506816000LL
#define HELIOS_SPAN_S (61LL * 86400 - 60)

int ty_sim_trace_load(ty_sim_trace *t, const char *path, const ty_sim_load_opts *o,
                      ty_error *err)
{
    memset(t, 0, sizeof *t);
    t->path = ty_strdup(path);
    t->gpus_per_node = o->gpus_per_node > 0 ? o->gpus_per_node : 8;
    if (o->cluster_path && load_cluster(t, o->cluster_path, err) < 0) {
        ty_sim_trace_free(t);
        return -1;
    }
    csv c = {.path = path};
    c.f = fopen(path, "re");
    if (!c.f) {
        ty_sim_trace_free(t);
        return ty_fail_errno(err, errno, "open %s", path);
    }
    int rc = csv_next(&c, err);
    ty_sim_format fmt = o->format;
    int isub = -1, idur = -1, igpu = -1, ivc = -1, iprio = -1;
    if (rc > 0) {
        if (fmt == TY_SIM_FORMAT_AUTO)
            fmt = col(&c, "timestamp") >= 0 && col(&c, "cluster") >= 0 ? TY_SIM_FORMAT_PHILLY
                  : col(&c, "submit_time") >= 0 && col(&c, "num_gpu") >= 0
                      ? TY_SIM_FORMAT_MURI
                      : TY_SIM_FORMAT_GENERIC;
        if (fmt == TY_SIM_FORMAT_PHILLY) {
            isub = col(&c, "timestamp"), idur = col(&c, "duration");
            igpu = col(&c, "num_gpus"), ivc = col(&c, "cluster");
        } else if (fmt == TY_SIM_FORMAT_MURI) {
            isub = col(&c, "submit_time"), idur = col(&c, "duration");
            igpu = col(&c, "num_gpu");
        } else {
            isub = col(&c, "submit_s"), idur = col(&c, "duration_s");
            igpu = col(&c, "gpus"), ivc = col(&c, "vc");
            iprio = col(&c, "priority_class");
        }
        if (isub < 0 || idur < 0 || igpu < 0 || (fmt == TY_SIM_FORMAT_PHILLY && ivc < 0))
            rc = ty_fail(err, "%s:1: the header lacks a column the %s format needs (%s)", path,
                         fmt == TY_SIM_FORMAT_PHILLY ? "philly"
                         : fmt == TY_SIM_FORMAT_MURI ? "muri" : "generic",
                         fmt == TY_SIM_FORMAT_PHILLY ? "timestamp,duration,num_gpus,cluster"
                         : fmt == TY_SIM_FORMAT_MURI ? "num_gpu,submit_time,duration"
                                                     : "submit_s,duration_s,gpus[,vc]");
    } else if (rc == 0) {
        rc = ty_fail(err, "%s: empty, no header", path);
    }
    if (rc > 0 && fmt == TY_SIM_FORMAT_PHILLY && !o->cluster_path && !o->kueue)
        rc = ty_fail(err, "%s: a philly trace needs its vc file (--cluster)", path);
    if (rc > 0 && iprio >= 0 && !o->kueue)
        rc = ty_fail(err, "%s:1: column priority_class names WorkloadPriorityClasses: it needs "
                     "--kueue", path);
    if (rc > 0 && o->kueue) {
        if (ivc < 0 && add_vc(t, "default", 0, path, 1, err) < 0)
            rc = -1;
    } else if (rc > 0 && !o->cluster_path) {
        if (o->nodes < 1 || o->nodes > TY_SIM_MAX_NODES)
            rc = ty_fail(err, "%s: no cluster file, and --nodes is not 1 to %d", path,
                         TY_SIM_MAX_NODES);
        else if (ivc < 0 && add_vc(t, "default", o->nodes, path, 1, err) < 0)
            rc = -1;
    }
    size_t cap = 0;
    int64_t dyn_nodes = o->nodes;
    while (rc > 0 && (rc = csv_next(&c, err)) > 0) {
        ty_sim_job j = {.line = c.line};
        int64_t sub = 0, dur = 0, gpus = 0;
        bool ms = fmt == TY_SIM_FORMAT_MURI;
        if (fmt == TY_SIM_FORMAT_PHILLY ? parse_stamp(&c, isub, &sub, err)
                                        : parse_fixed(&c, isub, "submit", ms ? 1 : 1000, &sub,
                                                      err)) {
            rc = -1;
            break;
        }
        if (fmt == TY_SIM_FORMAT_PHILLY)
            sub *= 1000;
        if (parse_fixed(&c, idur, "duration", ms ? 1 : 1000, &dur, err) < 0 ||
            parse_fixed(&c, igpu, "gpus", 1, &gpus, err) < 0) {
            rc = -1;
            break;
        }
        if (gpus > 1000000 || dur > INT64_MAX / 4 || sub > INT64_MAX / 4) {
            rc = ty_fail(err, "%s:%" PRId64 ": a field is out of range", path, c.line);
            break;
        }
        int vc = 0;
        if (ivc >= 0) {
            const char *name = ivc < c.n ? c.field[ivc] : "";
            vc = vc_index(t, name);
            if (vc < 0 && !o->cluster_path) {
                /* generic without a cluster file: a VC per name, each of --nodes */
                if (add_vc(t, name, (int32_t)dyn_nodes, path, c.line, err) < 0) {
                    rc = -1;
                    break;
                }
                vc = (int)t->n_vcs - 1;
            }
        }
        int32_t pclass = -1;
        if (iprio >= 0 && iprio < c.n && *c.field[iprio]) {
            pclass = pclass_index(t, c.field[iprio], path, c.line, err);
            if (pclass < 0) {
                rc = -1;
                break;
            }
        }
        if (vc < 0) {
            t->skipped.unknown_vc++;
            continue;
        }
        if (gpus == 0) {
            t->skipped.zero_gpu++;
            continue;
        }
        if (dur == 0) {
            t->skipped.zero_duration++;
            continue;
        }
        if (t->n_jobs == TY_SIM_MAX_JOBS) {
            rc = ty_fail(err, "%s:%" PRId64 ": more than %d jobs", path, c.line,
                         TY_SIM_MAX_JOBS);
            break;
        }
        j.submit_ms = sub, j.duration_ms = dur, j.gpus = (int32_t)gpus, j.vc = vc;
        j.pclass = pclass;
        if (t->n_jobs == cap) {
            cap = cap ? cap * 2 : 1024;
            t->jobs = ty_realloc(t->jobs, cap * sizeof *t->jobs);
        }
        t->jobs[t->n_jobs++] = j;
    }
    free(c.buf);
    fclose(c.f);
    if (rc < 0) {
        ty_sim_trace_free(t);
        return -1;
    }
    /* Too large for the cluster it runs on: its VC's nodes, or with --cohort every VC's
     * (it may borrow all of the others' quota). With --kueue its queue decides (bind). */
    int64_t all_nodes = 0;
    for (size_t v = 0; v < t->n_vcs; v++)
        all_nodes += t->vcs[v].nodes;
    size_t kept = 0;
    for (size_t i = 0; i < t->n_jobs; i++) {
        int64_t nodes = o->cohort ? all_nodes : t->vcs[t->jobs[i].vc].nodes;
        if (!o->kueue && t->jobs[i].gpus > nodes * t->gpus_per_node)
            t->skipped.too_large++;
        else
            t->jobs[kept++] = t->jobs[i];
    }
    t->n_jobs = kept;
    if (o->helios && fmt == TY_SIM_FORMAT_PHILLY) {
        size_t k = 0;
        int64_t first = INT64_MAX;
        for (size_t i = 0; i < t->n_jobs; i++)
            if (t->jobs[i].submit_ms >= HELIOS_START_S * 1000 && t->jobs[i].submit_ms < first)
                first = t->jobs[i].submit_ms;
        for (size_t i = 0; i < t->n_jobs; i++) {
            int64_t s = t->jobs[i].submit_ms;
            if (s >= HELIOS_START_S * 1000 && s - first <= HELIOS_SPAN_S * 1000)
                t->jobs[k++] = t->jobs[i];
            else
                t->skipped.out_of_window++;
        }
        t->n_jobs = k;
    }
    if (t->n_jobs) /* no jobs: no array, and qsort must not be given NULL */
        qsort(t->jobs, t->n_jobs, sizeof *t->jobs, cmp_job);
    /* Time starts at the first counted job's submission. */
    int64_t t0 = t->n_jobs ? t->jobs[0].submit_ms : 0;
    for (size_t i = 0; i < t->n_jobs; i++)
        t->jobs[i].submit_ms -= t0;
    return 0;
}

void ty_sim_trace_free(ty_sim_trace *t)
{
    for (size_t i = 0; i < t->n_vcs; i++)
        free(t->vcs[i].name);
    free(t->vcs);
    for (size_t i = 0; i < t->n_pclasses; i++)
        free(t->pclasses[i]);
    free(t->pclasses);
    free(t->pclass_line);
    free(t->path);
    free(t->jobs);
    memset(t, 0, sizeof *t);
}

const char *ty_sim_policy_name(ty_sim_policy p)
{
    static const char *names[] = {"fifo", "sjf", "srtf", "las", "kueue"};
    return names[p];
}

int ty_sim_policy_parse(const char *s, ty_sim_policy *p)
{
    for (int i = TY_SIM_FIFO; i <= TY_SIM_KUEUE; i++)
        if (strcmp(s, ty_sim_policy_name((ty_sim_policy)i)) == 0) {
            *p = (ty_sim_policy)i;
            return 0;
        }
    if (strcmp(s, "tiresias") == 0) {
        *p = TY_SIM_LAS;
        return 0;
    }
    return -1;
}
