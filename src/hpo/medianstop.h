/* Early stopping: Katib's medianstop, as pure functions over observation logs.
 *
 * Katib's service keeps, for every succeeded trial, the mean of the first start_step values of
 * the objective metric in its observation log. Once min_trials_required trials have succeeded
 * it issues one rule: stop a running trial whose objective, after start_step reports, is below
 * (goal maximize) or above (goal minimize) the rule's value. The rule's value is what Katib
 * computes, and Katib computes the mean of those per-trial means, not their median: we keep
 * Katib's figure so that the same experiment stops the same trials. */
#ifndef TY_HPO_MEDIANSTOP_H
#define TY_HPO_MEDIANSTOP_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "hpo/suggest.h"

typedef struct ty_hpo_medianstop {
    long long min_trials_required; /* 3 */
    long long start_step;          /* 4 */
} ty_hpo_medianstop;

/* earlyStopping.algorithmName and algorithmSettings, with Katib's defaults and messages. */
int ty_hpo_medianstop_parse(const char *algorithm, const ty_hpo_setting *settings, size_t n,
                            ty_hpo_medianstop *out, ty_error *err);

/* The rule's value from the succeeded trials' objective logs (values in report order): false
 * while fewer than min_trials_required trials have a log. Empty logs are not counted. */
bool ty_hpo_medianstop_rule(const ty_hpo_medianstop *ms, const double *const *logs,
                            const size_t *lens, size_t n_trials, double *rule);

/* Whether a running trial with this objective log (report order) is to be stopped under the
 * rule, as Katib's metrics collector decides: once, at the start_step-th report, with the best
 * value reported so far, strictly below (maximize) or above (minimize) the rule. A trial that
 * passes that check runs to its end; one with fewer reports is not stopped yet. */
bool ty_hpo_medianstop_should_stop(const ty_hpo_medianstop *ms, double rule, bool maximize,
                                   const double *log, size_t len);

#endif
