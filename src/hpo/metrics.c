/* Katib's StdOut and File metrics collectors as parsers (see metrics.h). */
#include <ctype.h>
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/mem.h"
#include "hpo/metrics.h"

#define MAX_GROUPS 32

typedef struct filter {
    regex_t re;
    size_t nsub;
    size_t name_group, value_group; /* POSIX group numbers of Go's groups 1 and 2; 0: none */
} filter;

struct ty_hpo_filters {
    filter *f;
    size_t n;
};

void ty_hpo_obs_free(ty_hpo_obs *obs) {
    if (!obs) return;
    for (size_t i = 0; i < obs->n; i++)
        free(obs->logs[i].timestamp), free(obs->logs[i].name), free(obs->logs[i].value);
    free(obs->logs);
    obs->logs = NULL;
    obs->n = obs->cap = 0;
}

void ty_hpo_obs_add(ty_hpo_obs *obs, const char *timestamp, const char *name, const char *value) {
    if (obs->n == obs->cap) {
        obs->cap = obs->cap ? 2 * obs->cap : 16;
        obs->logs = ty_realloc(obs->logs, obs->cap * sizeof *obs->logs);
    }
    obs->logs[obs->n++] = (ty_hpo_metric_log){ty_strdup(timestamp), ty_strdup(name), ty_strdup(value)};
}

void ty_hpo_obs_finish(ty_hpo_obs *obs, const char *objective) {
    for (size_t i = 0; i < obs->n; i++)
        if (strcmp(obs->logs[i].name, objective) == 0) return;
    ty_hpo_obs_free(obs);
    ty_hpo_obs_add(obs, TY_HPO_ZERO_TIME, objective, TY_HPO_UNAVAILABLE);
}

/* ---- Go regex to POSIX ERE ---- */

/* `{` at p opens a repetition {n}, {n,} or {n,m}: its length, else 0. */
static size_t interval_len(const char *p) {
    const char *q = p + 1;
    if (!isdigit((unsigned char)*q)) return 0;
    while (isdigit((unsigned char)*q)) q++;
    if (*q == ',') {
        q++;
        while (isdigit((unsigned char)*q)) q++;
    }
    return *q == '}' ? (size_t)(q - p + 1) : 0;
}

#define MAX_FILTER_LEN 1024
#define MAX_DEPTH 32

/* Go's regexp refuses what makes POSIX engines blow up, and so do we: a repetition of a
 * repetition ("a**", "a+{2}"), counts over 1000, and (beyond Go) a counted repetition of a
 * group that holds one, and filters over 1 KiB. */
static char *regex_translate(const char *go, size_t *go_to_posix, size_t *n_go, ty_error *err) {
    if (strlen(go) > MAX_FILTER_LEN) {
        ty_fail(err, "longer than %d characters", MAX_FILTER_LEN);
        return NULL;
    }
    ty_buf out = TY_BUF_INIT;
    size_t posix_groups = 0, go_groups = 0;
    bool after_atom = false, after_quant = false, group_counted[MAX_DEPTH + 1] = {false};
    bool last_group_counted = false, after_group = false;
    int depth = 0;
    for (const char *p = go; *p;) {
        char c = *p;
        bool is_quant = c == '*' || c == '+' || c == '?' || (c == '{' && interval_len(p) && after_atom);
        if (is_quant && after_quant) {
            ty_buf_free(&out);
            ty_fail(err, "invalid nested repetition operator at offset %zu", (size_t)(p - go));
            return NULL;
        }
        if (c == '{' && is_quant) {
            const char *q = p + 1;
            for (;;) {
                long v = strtol(q, (char **)&q, 10);
                if (v > 1000) {
                    ty_buf_free(&out);
                    ty_fail(err, "invalid repeat count at offset %zu", (size_t)(p - go));
                    return NULL;
                }
                if (*q != ',') break;
                q++;
                if (*q == '}') break;
            }
            if (after_group && last_group_counted) {
                ty_buf_free(&out);
                ty_fail(err, "counted repetition of a group with a counted repetition at offset %zu",
                        (size_t)(p - go));
                return NULL;
            }
            for (int d = 0; d <= depth; d++) group_counted[d] = true;
        }
        after_quant = is_quant;
        if (c == '(') {
            if (depth == MAX_DEPTH) {
                ty_buf_free(&out);
                ty_fail(err, "groups nested deeper than %d", MAX_DEPTH);
                return NULL;
            }
            group_counted[++depth] = false;
        } else if (c == ')' && depth > 0) {
            last_group_counted = group_counted[depth--];
        }
        after_group = c == ')';
        if (c == '\\') {
            char e = p[1];
            const char *rep = NULL;
            switch (e) {
            case 'd': rep = "[0-9]"; break;
            case 'D': rep = "[^0-9]"; break;
            case 'w': rep = "[[:alnum:]_]"; break;
            case 'W': rep = "[^[:alnum:]_]"; break;
            case 's': rep = "[[:space:]]"; break;
            case 'S': rep = "[^[:space:]]"; break;
            case 't': rep = "\t"; break;
            case 'n': rep = "\n"; break;
            case '\0':
                ty_buf_free(&out);
                ty_fail(err, "trailing backslash");
                return NULL;
            default:
                if (isalnum((unsigned char)e)) {
                    ty_buf_free(&out);
                    ty_fail(err, "\\%c is not supported", e);
                    return NULL;
                }
            }
            if (rep) ty_buf_adds(&out, rep);
            else ty_buf_addc(&out, '\\'), ty_buf_addc(&out, e);
            p += 2;
            after_atom = true;
            continue;
        }
        if (c == '[') {
            /* a bracket expression: class escapes become POSIX classes */
            ty_buf_addc(&out, '[');
            p++;
            bool dash = false;
            if (*p == '^') ty_buf_addc(&out, '^'), p++;
            if (*p == ']') ty_buf_addc(&out, ']'), p++;
            while (*p && *p != ']') {
                if (*p == '[' && p[1] == ':') {
                    const char *end = strstr(p, ":]");
                    if (!end) break;
                    ty_buf_add(&out, p, (size_t)(end + 2 - p));
                    p = end + 2;
                    continue;
                }
                if (*p == '\\') {
                    char e = p[1];
                    if (e == 'd') ty_buf_adds(&out, "0-9");
                    else if (e == 'w') ty_buf_adds(&out, "[:alnum:]_");
                    else if (e == 's') ty_buf_adds(&out, "[:space:]");
                    else if (e == '-') dash = true;
                    else if (e == 't') ty_buf_addc(&out, '\t');
                    else if (e == 'n') ty_buf_addc(&out, '\n');
                    else if (e && !isalnum((unsigned char)e) && e != ']') ty_buf_addc(&out, e);
                    else {
                        ty_buf_free(&out);
                        ty_fail(err, "\\%c inside brackets is not supported", e ? e : ' ');
                        return NULL;
                    }
                    p += 2;
                    continue;
                }
                /* a '-' last in Go's class is literal, as in POSIX */
                ty_buf_addc(&out, *p++);
            }
            if (*p != ']') {
                ty_buf_free(&out);
                ty_fail(err, "missing closing ]");
                return NULL;
            }
            if (dash) ty_buf_addc(&out, '-');
            ty_buf_addc(&out, ']');
            p++;
            after_atom = true;
            continue;
        }
        if (c == '(') {
            posix_groups++;
            if (p[1] == '?') {
                if (p[2] != ':') {
                    ty_buf_free(&out);
                    ty_fail(err, "(?%c is not supported", p[2] ? p[2] : ' ');
                    return NULL;
                }
                p += 3; /* non-capturing: still a POSIX group, not one of Go's */
            } else {
                if (go_groups < MAX_GROUPS) go_to_posix[go_groups] = posix_groups;
                go_groups++;
                p++;
            }
            ty_buf_addc(&out, '(');
            after_atom = false;
            continue;
        }
        if ((c == '*' || c == '+' || c == '?') && (p[1] == '?')) {
            ty_buf_free(&out);
            ty_fail(err, "lazy quantifier %c? is not supported", c);
            return NULL;
        }
        if (c == '{') {
            size_t il = interval_len(p);
            if (il && after_atom) {
                ty_buf_add(&out, p, il);
                p += il;
            } else {
                ty_buf_adds(&out, "\\{");
                p++;
                after_atom = true;
            }
            continue;
        }
        if (c == '}') {
            ty_buf_adds(&out, "\\}");
            p++;
            after_atom = true;
            continue;
        }
        ty_buf_addc(&out, c);
        after_atom = !(c == '|' || c == '^');
        p++;
    }
    *n_go = go_groups;
    return ty_buf_steal(&out);
}

char *ty_hpo_regex_to_posix(const char *go, ty_error *err) {
    size_t map[MAX_GROUPS], n;
    return regex_translate(go, map, &n, err);
}

void ty_hpo_filters_free(ty_hpo_filters *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) regfree(&f->f[i].re);
    free(f->f);
    free(f);
}

int ty_hpo_filters_new(const char *const *formats, size_t n, ty_hpo_filters **out, ty_error *err) {
    static const char *const def[] = {TY_HPO_DEFAULT_FILTER};
    if (n == 0) formats = def, n = 1;
    ty_hpo_filters *fs = TY_NEW(ty_hpo_filters);
    fs->f = ty_calloc(n, sizeof *fs->f);
    for (size_t i = 0; i < n; i++) {
        size_t map[MAX_GROUPS] = {0}, n_go = 0;
        char *posix = regex_translate(formats[i], map, &n_go, err);
        if (!posix) {
            ty_error_wrap(err, "metricsFormat[%zu] %s", i, formats[i]);
            ty_hpo_filters_free(fs);
            return -1;
        }
        int rc = regcomp(&fs->f[i].re, posix, REG_EXTENDED);
        free(posix);
        if (rc != 0) {
            char msg[128];
            regerror(rc, &fs->f[i].re, msg, sizeof msg);
            ty_fail(err, "metricsFormat[%zu] %s: %s", i, formats[i], msg);
            fs->n = i; /* the failed one holds nothing to free */
            ty_hpo_filters_free(fs);
            return -1;
        }
        fs->n = i + 1;
        fs->f[i].nsub = fs->f[i].re.re_nsub;
        fs->f[i].name_group = n_go >= 1 ? map[0] : 0;
        fs->f[i].value_group = n_go >= 2 ? map[1] : 0;
    }
    *out = fs;
    return 0;
}

/* ---- times ---- */

static bool digits(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i])) return false;
    return true;
}

bool ty_hpo_is_rfc3339(const char *s, size_t len) {
    /* 2006-01-02T15:04:05[.frac](Z|+hh:mm|-hh:mm) */
    if (len < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
        !digits(s + 8, 2) || s[10] != 'T' || !digits(s + 11, 2) || s[13] != ':' ||
        !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
        return false;
    int mon = (s[5] - '0') * 10 + s[6] - '0', day = (s[8] - '0') * 10 + s[9] - '0';
    int hh = (s[11] - '0') * 10 + s[12] - '0', mm = (s[14] - '0') * 10 + s[15] - '0',
        ss = (s[17] - '0') * 10 + s[18] - '0';
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 59) return false;
    size_t i = 19;
    if (i < len && s[i] == '.') {
        size_t j = i + 1;
        while (j < len && isdigit((unsigned char)s[j])) j++;
        if (j == i + 1) return false;
        i = j;
    }
    if (i < len && s[i] == 'Z') return i + 1 == len;
    if (i + 6 == len && (s[i] == '+' || s[i] == '-') && digits(s + i + 1, 2) && s[i + 3] == ':' &&
        digits(s + i + 4, 2))
        return true;
    return false;
}

/* Seconds since the epoch as Katib formats them: the fraction's digits, as written by Go's
 * shortest float formatting, are read as a count of nanoseconds (1.5 is 1 s and 5 ns): Katib's
 * arithmetic, kept so that the same file gives the same timestamps. */
static char *epoch_to_rfc3339(double v) {
    /* Go's FormatFloat(v, 'f', -1, 64): the fewest fraction digits that read back exactly,
     * never an exponent (1700000000, not 1.7e+09) */
    char num[64];
    if (!(v >= 0 && v < 1e15)) return NULL;
    for (int prec = 0; prec <= 17; prec++) {
        snprintf(num, sizeof num, "%.*f", prec, v);
        if (strtod(num, NULL) == v) break;
    }
    char *dot = strchr(num, '.');
    long long sec = strtoll(num, NULL, 10), nsec = dot ? strtoll(dot + 1, NULL, 10) : 0;
    sec += nsec / 1000000000, nsec %= 1000000000;
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) return NULL;
    char base[64];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    if (nsec == 0) return ty_asprintf("%sZ", base);
    char frac[16];
    snprintf(frac, sizeof frac, "%09lld", nsec);
    for (int k = 8; k > 0 && frac[k] == '0'; k--) frac[k] = '\0';
    return ty_asprintf("%s.%sZ", base, frac);
}

/* ---- text ---- */

static char *trim_dup(const char *s, size_t n) {
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    return ty_strndup(s, n);
}

static void collect_line(const ty_hpo_filters *fs, const char *line, size_t len,
                         const char *const *metrics, size_t n_metrics, ty_hpo_obs *obs) {
    char *l = ty_strndup(line, len);
    bool wanted = false;
    for (size_t m = 0; m < n_metrics && !wanted; m++) wanted = strstr(l, metrics[m]) != NULL;
    if (!wanted) {
        free(l);
        return;
    }
    char *ts = NULL;
    const char *sp = strchr(l, ' ');
    if (sp && ty_hpo_is_rfc3339(l, (size_t)(sp - l))) ts = ty_strndup(l, (size_t)(sp - l));
    for (size_t i = 0; i < fs->n; i++) {
        const filter *f = &fs->f[i];
        regmatch_t mt[MAX_GROUPS + 1];
        size_t ng = f->nsub + 1 > MAX_GROUPS + 1 ? MAX_GROUPS + 1 : f->nsub + 1;
        const char *at = l;
        int flags = 0;
        while (*at && regexec(&f->re, at, ng, mt, flags) == 0) {
            if (f->name_group && f->value_group && mt[f->name_group].rm_so >= 0 &&
                mt[f->value_group].rm_so >= 0) {
                char *name = trim_dup(at + mt[f->name_group].rm_so,
                                      (size_t)(mt[f->name_group].rm_eo - mt[f->name_group].rm_so));
                for (size_t m = 0; m < n_metrics; m++)
                    if (strcmp(name, metrics[m]) == 0) {
                        char *value = trim_dup(at + mt[f->value_group].rm_so,
                                               (size_t)(mt[f->value_group].rm_eo -
                                                        mt[f->value_group].rm_so));
                        ty_hpo_obs_add(obs, ts ? ts : TY_HPO_ZERO_TIME, name, value);
                        free(value);
                        break;
                    }
                free(name);
            }
            /* on past the match; an empty one moves one character */
            at += mt[0].rm_eo > 0 ? mt[0].rm_eo : 1;
            flags = REG_NOTBOL;
        }
    }
    free(ts);
    free(l);
}

void ty_hpo_collect_text(const ty_hpo_filters *f, const char *text, size_t len,
                         const char *const *metrics, size_t n_metrics, ty_hpo_obs *obs) {
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        collect_line(f, p, n, metrics, n_metrics, obs);
        p += n + 1;
    }
}

/* ---- JSON lines ---- */

int ty_hpo_collect_json_lines(const char *text, size_t len, const char *const *metrics,
                              size_t n_metrics, ty_hpo_obs *obs, ty_error *err) {
    ty_hpo_obs add = {0};
    const char *p = text, *end = text + len;
    size_t lineno = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lineno++;
        if (n > 0) {
            json_error_t je;
            json_t *o = json_loadb(p, n, 0, &je);
            if (!json_is_object(o)) {
                json_decref(o);
                ty_hpo_obs_free(&add);
                return ty_fail(err, "line %zu: failed to parse the json object: %s", lineno,
                               o ? "not an object" : je.text);
            }
            char *ts = NULL;
            json_t *tv = json_object_get(o, "timestamp");
            if (json_is_string(tv) && ty_hpo_is_rfc3339(json_string_value(tv), json_string_length(tv)))
                ts = ty_strdup(json_string_value(tv));
            else if (json_is_number(tv))
                ts = epoch_to_rfc3339(json_number_value(tv));
            for (size_t m = 0; m < n_metrics; m++) {
                json_t *v = json_object_get(o, metrics[m]);
                char num[64];
                const char *val = NULL;
                if (json_is_string(v)) {
                    val = json_string_value(v);
                } else if (json_is_number(v)) {
                    double d = json_number_value(v);
                    for (int prec = 1; prec <= 17; prec++) {
                        snprintf(num, sizeof num, "%.*g", prec, d);
                        if (strtod(num, NULL) == d) break;
                    }
                    val = num;
                }
                if (val) ty_hpo_obs_add(&add, ts ? ts : TY_HPO_ZERO_TIME, metrics[m], val);
            }
            free(ts);
            json_decref(o);
        }
        p += n + 1;
    }
    for (size_t i = 0; i < add.n; i++)
        ty_hpo_obs_add(obs, add.logs[i].timestamp, add.logs[i].name, add.logs[i].value);
    ty_hpo_obs_free(&add);
    return 0;
}
