/* Suggestion algorithms: what Katib's suggestion services (Optuna, goptuna, skopt, hyperband)
 * do, in-process.
 *
 * A suggester is made from Katib's algorithmName and algorithmSettings (validated as Katib's
 * services validate them) over a search space. It keeps the trial history itself: the trials
 * it proposed (RUNNING until reported) and those it is told about (an experiment resumed from
 * its Trials). Trial ids are indices into that history, in the order trials were added.
 * Suggestions depend only on the history and `random_state`: the same seed and the same
 * history give the same points.
 *
 * Concurrent trials: a trial proposed and not yet reported stays RUNNING and the model-based
 * algorithms (tpe, multivariate-tpe, bayesianoptimization) treat it with a constant liar, so a
 * batch of n suggestions, or suggestions while others run, are spread out.
 *
 * Ownership: the suggester copies the space; ty_hpo_suggester_free() accepts NULL. */
#ifndef TY_HPO_SUGGEST_H
#define TY_HPO_SUGGEST_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "hpo/space.h"

typedef enum ty_hpo_trial_state {
    TY_HPO_RUNNING,
    TY_HPO_COMPLETED,
    TY_HPO_FAILED,
    TY_HPO_EARLY_STOPPED,
} ty_hpo_trial_state;

typedef struct ty_hpo_setting {
    const char *name;
    const char *value;
} ty_hpo_setting;

typedef struct ty_hpo_options {
    bool maximize;            /* objective.type maximize */
    int parallel_trial_count; /* hyperband checks it against eta^s_max; 0: unchecked */
    int max_trial_count;      /* grid checks it against the grid's size; 0: unchecked */
} ty_hpo_options;

typedef struct ty_hpo_suggester ty_hpo_suggester;

/* The algorithm names accepted, in Katib's spelling, NULL-terminated. */
extern const char *const ty_hpo_algorithms[];

int ty_hpo_suggester_new(const ty_hpo_space *space, const char *algorithm,
                         const ty_hpo_setting *settings, size_t n_settings,
                         const ty_hpo_options *opt, ty_hpo_suggester **out, ty_error *err);
void ty_hpo_suggester_free(ty_hpo_suggester *s);

/* Adds a trial of the history (its point must be in the space); returns its id or -1. */
long ty_hpo_add_trial(ty_hpo_suggester *s, const double *x, ty_hpo_trial_state state,
                      double value, ty_error *err);
/* The algorithm's mark on a trial it proposed: CMA-ES's generation, hyperband's bracket and
 * rung; -1 for none. A controller keeps it with the Trial (a label) and hands it back with
 * ty_hpo_add_tagged_trial() when it resumes an experiment, in the trials' order, so that these
 * two algorithms go on from the same generation or rung. */
int ty_hpo_trial_tag(const ty_hpo_suggester *s, size_t id);
long ty_hpo_add_tagged_trial(ty_hpo_suggester *s, const double *x, ty_hpo_trial_state state,
                             double value, int tag, ty_error *err);
/* A trial ended (or was early stopped): its state and objective value. */
int ty_hpo_report(ty_hpo_suggester *s, size_t id, ty_hpo_trial_state state, double value,
                  ty_error *err);
/* Proposes up to n new trials, recorded RUNNING; their ids go to ids[]. Returns how many: fewer
 * than n when the algorithm has no more now (grid exhausted, hyperband waiting for its rung to
 * finish), -1 on error. */
int ty_hpo_suggest(ty_hpo_suggester *s, size_t n, size_t *ids, ty_error *err);

/* For a suggester rebuilt from an experiment's trials (a restarted controller): moves the
 * algorithm's random stream past the draws those trials took, so that random goes on as if
 * it had proposed them itself rather than proposing its first points again. The other
 * algorithms need nothing: they go on from the history itself. */
void ty_hpo_suggester_resume(ty_hpo_suggester *s);

size_t ty_hpo_trial_count(const ty_hpo_suggester *s);
const double *ty_hpo_trial_point(const ty_hpo_suggester *s, size_t id);
ty_hpo_trial_state ty_hpo_trial_state_of(const ty_hpo_suggester *s, size_t id);
const ty_hpo_space *ty_hpo_suggester_space(const ty_hpo_suggester *s);

#endif
