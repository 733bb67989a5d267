/* Helpers shared by the hpo unit tests. */
#ifndef TY_TEST_HPO_FIXTURES_H
#define TY_TEST_HPO_FIXTURES_H

#include <criterion/criterion.h>
#include <jansson.h>

#include "hpo/space.h"
#include "hpo/suggest.h"

static inline ty_hpo_space *space_from(const char *json_text) {
    json_error_t je;
    json_t *j = json_loads(json_text, 0, &je);
    cr_assert(j, "bad test JSON: %s", je.text);
    ty_hpo_space *sp = NULL;
    ty_error err = TY_ERROR_INIT;
    int rc = ty_hpo_space_parse(j, &sp, &err);
    cr_assert_eq(rc, 0, "parse: %s", err.msg);
    json_decref(j);
    ty_error_clear(&err);
    return sp;
}

static inline ty_hpo_suggester *suggester_of(const ty_hpo_space *sp, const char *algo,
                                             const ty_hpo_setting *st, size_t n) {
    ty_hpo_suggester *s = NULL;
    ty_error err = TY_ERROR_INIT;
    ty_hpo_options opt = {0};
    cr_assert_eq(ty_hpo_suggester_new(sp, algo, st, n, &opt, &s, &err), 0, "%s: %s", algo,
                 err.msg);
    ty_error_clear(&err);
    return s;
}

#endif
