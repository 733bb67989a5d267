/* Metrics collection without a sidecar: Katib's StdOut and File collectors as pure parsers
 * from a trial's output to an observation log.
 *
 * Text (StdOut, File with format TEXT): a line is looked at only when it contains the name of
 * one of the metrics; its first word, when it is an RFC 3339 time, is the timestamp of what the
 * line reports (else the zero time, "0001-01-01T00:00:00Z", as Katib writes it). Every match of
 * every filter on the line gives a name (group 1) and a value (group 2); those whose name is one
 * of the metrics are logged. The default filter is Katib's
 * `([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)`; custom metricsFormat regexes are Go
 * syntax in Katib: \d \w \s (and \D \W \S outside brackets), literal braces, and (?:...) are
 * translated to POSIX extended regexes; what POSIX cannot say ((?i), lazy quantifiers, \b) is
 * refused with an error naming the filter. POSIX picks the longest match where Go picks the
 * first alternative: filters with alternatives that overlap may split differently.
 * JSON lines (File with format JSON): each non-empty line one JSON object; the values of keys
 * named as metrics are logged (strings as written, and numbers too, which Katib skips); the
 * "timestamp" key, an RFC 3339 string or seconds since the epoch, is the time.
 * ty_hpo_obs_finish() applies Katib's last rule: when the objective metric (the first) was never
 * reported, the log is a single "unavailable" value for it.
 *
 * Ownership: the log owns its strings; ty_hpo_obs_free() and ty_hpo_filters_free() accept
 * NULL. */
#ifndef TY_HPO_METRICS_H
#define TY_HPO_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

#define TY_HPO_DEFAULT_FILTER "([\\w|-]+)\\s*=\\s*([+-]?\\d*(\\.\\d+)?([Ee][+-]?\\d+)?)"
#define TY_HPO_UNAVAILABLE "unavailable"
#define TY_HPO_ZERO_TIME "0001-01-01T00:00:00Z"

typedef struct ty_hpo_metric_log {
    char *timestamp;
    char *name;
    char *value;
} ty_hpo_metric_log;

typedef struct ty_hpo_obs {
    ty_hpo_metric_log *logs;
    size_t n, cap;
} ty_hpo_obs;

void ty_hpo_obs_free(ty_hpo_obs *obs); /* frees the contents, leaves it empty */
void ty_hpo_obs_add(ty_hpo_obs *obs, const char *timestamp, const char *name, const char *value);
void ty_hpo_obs_finish(ty_hpo_obs *obs, const char *objective);

typedef struct ty_hpo_filters ty_hpo_filters;

/* Compiles metricsFormat filters (none: the default one). */
int ty_hpo_filters_new(const char *const *formats, size_t n, ty_hpo_filters **out, ty_error *err);
void ty_hpo_filters_free(ty_hpo_filters *f);
/* Go regex syntax to POSIX ERE (exposed for the tests). Caller frees; NULL with err set. */
char *ty_hpo_regex_to_posix(const char *go, ty_error *err);

/* Appends what the text reports; lines may be fed in chunks of whole lines. */
void ty_hpo_collect_text(const ty_hpo_filters *f, const char *text, size_t len,
                         const char *const *metrics, size_t n_metrics, ty_hpo_obs *obs);
/* Appends what JSON lines report; a line that is not a JSON object fails the whole text
 * ("line 3: failed to parse the json object: ..."), leaving obs as it was. */
int ty_hpo_collect_json_lines(const char *text, size_t len, const char *const *metrics,
                              size_t n_metrics, ty_hpo_obs *obs, ty_error *err);

/* Whether s is an RFC 3339 time, fractional seconds allowed (Go's time.RFC3339Nano). */
bool ty_hpo_is_rfc3339(const char *s, size_t len);

#endif
