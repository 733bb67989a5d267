/* Katib's medianstop early stopping (see medianstop.h). */
#include <limits.h>
#include <string.h>

#include "hpo/hpo_int.h"
#include "hpo/medianstop.h"

int ty_hpo_medianstop_parse(const char *algorithm, const ty_hpo_setting *settings, size_t n,
                            ty_hpo_medianstop *out, ty_error *err) {
    if (!algorithm || strcmp(algorithm, "medianstop") != 0)
        return ty_fail(err, "unknown algorithm name %s", algorithm ? algorithm : "");
    ty_hpo_medianstop ms = {3, 4};
    for (size_t i = 0; i < n; i++) {
        const ty_hpo_setting *st = &settings[i];
        if (strcmp(st->name, "min_trials_required") == 0) {
            if (ty_hpo_setting_int(st, LLONG_MIN, &ms.min_trials_required, err) < 0) return -1;
            if (ms.min_trials_required <= 0)
                return ty_fail(err, "min_trials_required must be greater than zero (>0)");
        } else if (strcmp(st->name, "start_step") == 0) {
            if (ty_hpo_setting_int(st, LLONG_MIN, &ms.start_step, err) < 0) return -1;
            if (ms.start_step < 1)
                return ty_fail(err, "start_step must be greater or equal than one (>=1)");
        } else {
            return ty_hpo_unknown_setting(st, "medianstop", err);
        }
    }
    *out = ms;
    return 0;
}

bool ty_hpo_medianstop_rule(const ty_hpo_medianstop *ms, const double *const *logs,
                            const size_t *lens, size_t n_trials, double *rule) {
    double sum = 0;
    size_t counted = 0;
    for (size_t t = 0; t < n_trials; t++) {
        size_t k = lens[t] < (size_t)ms->start_step ? lens[t] : (size_t)ms->start_step;
        if (k == 0) continue;
        double s = 0;
        for (size_t i = 0; i < k; i++) s += logs[t][i];
        sum += s / (double)k;
        counted++;
    }
    if (counted == 0 || (long long)counted < ms->min_trials_required) return false;
    *rule = sum / (double)counted;
    return true;
}

bool ty_hpo_medianstop_should_stop(const ty_hpo_medianstop *ms, double rule, bool maximize,
                                   const double *log, size_t len) {
    if ((long long)len < ms->start_step || len == 0) return false;
    double best = log[0];
    for (long long i = 1; i < ms->start_step; i++)
        best = maximize ? fmax(best, log[i]) : fmin(best, log[i]);
    return maximize ? best < rule : best > rule;
}
