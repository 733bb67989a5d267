/* libFuzzer target: what a trial or a user hands src/hpo. The first byte picks the input:
 * 0: a metricsFormat regex (the first line) and a trial's output (the rest), parsed as text
 * with it and with the default filter, and as JSON lines; 1: an Experiment's spec.parameters,
 * and on success a few suggestions of every algorithm over it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "hpo/metrics.h"
#include "hpo/space.h"
#include "hpo/suggest.h"

static void metrics(const char *data, size_t size) {
    const char *nl = memchr(data, '\n', size);
    size_t flen = nl ? (size_t)(nl - data) : size;
    char *format = ty_strndup(data, flen);
    const char *rest = nl ? nl + 1 : data + size;
    size_t rlen = size - (size_t)(rest - data);
    const char *names[] = {"loss", "acc", "a"};
    const char *fmts[] = {format};
    for (int which = 0; which < 2; which++) {
        ty_hpo_filters *f = NULL;
        if (ty_hpo_filters_new(which ? fmts : NULL, which ? 1 : 0, &f, NULL) == 0) {
            ty_hpo_obs obs = {0};
            ty_hpo_collect_text(f, rest, rlen, names, 3, &obs);
            ty_hpo_obs_finish(&obs, "loss");
            ty_hpo_obs_free(&obs);
            ty_hpo_filters_free(f);
        }
    }
    ty_hpo_obs obs = {0};
    ty_hpo_collect_json_lines(rest, rlen, names, 3, &obs, NULL);
    ty_hpo_obs_free(&obs);
    free(format);
}

static void space(const char *data, size_t size) {
    json_t *j = json_loadb(data, size, 0, NULL);
    ty_hpo_space *sp = NULL;
    if (j && ty_hpo_space_parse(j, &sp, NULL) == 0) {
        for (const char *const *a = ty_hpo_algorithms; *a; a++) {
            ty_hpo_setting st[] = {{"random_state", "1"}, {"r_l", "9"},
                                   {"resource_name", sp->params[0].name}};
            size_t n = strcmp(*a, "hyperband") == 0 ? 3 : 1;
            ty_hpo_suggester *s = NULL;
            if (ty_hpo_suggester_new(sp, *a, st, n, NULL, &s, NULL) < 0) continue;
            for (int t = 0; t < 12; t++) {
                size_t id;
                if (ty_hpo_suggest(s, 1, &id, NULL) != 1) break;
                ty_hpo_report(s, id, t % 5 == 4 ? TY_HPO_FAILED : TY_HPO_COMPLETED, t * 0.37, NULL);
            }
            ty_hpo_suggester_free(s);
        }
        ty_hpo_space_free(sp);
    }
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 65536) return 0;
    if (data[0] & 1) space((const char *)data + 1, size - 1);
    else metrics((const char *)data + 1, size - 1);
    return 0;
}
