/* src/hpo/space: Katib's parameters parsed and validated, grids, value strings. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "hpo_fixtures.h"

static void expect_error(const char *json_text, const char *want) {
    json_t *j = json_loads(json_text, 0, NULL);
    cr_assert(j);
    ty_hpo_space *sp = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_hpo_space_parse(j, &sp, &err), -1, "accepted %s", json_text);
    cr_assert_null(sp);
    cr_assert(strstr(err.msg, want), "error \"%s\" lacks \"%s\"", err.msg, want);
    ty_error_clear(&err);
    json_decref(j);
}

Test(hpo_space, katib_parameters) {
    ty_hpo_space *sp = space_from(
        "[{\"name\":\"lr\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"0.0001\","
        "\"max\":\"0.1\",\"distribution\":\"logUniform\"}},"
        "{\"name\":\"hidden\",\"parameterType\":\"int\",\"feasibleSpace\":{\"min\":\"16\","
        "\"max\":\"256\",\"step\":\"16\"}},"
        "{\"name\":\"opt\",\"parameterType\":\"categorical\",\"feasibleSpace\":{\"list\":"
        "[\"sgd\",\"adam\"]}},"
        "{\"name\":\"batch\",\"parameterType\":\"discrete\",\"feasibleSpace\":{\"list\":"
        "[\"32\",\"64\",\"128\"]}}]");
    cr_assert_eq(sp->n, 4);
    cr_assert(sp->params[0].log);
    cr_assert_float_eq(sp->params[0].min, 1e-4, 1e-12);
    cr_assert_eq(sp->params[0].step, 0);
    cr_assert_eq(sp->params[1].type, TY_HPO_INT);
    cr_assert_eq(sp->params[1].step, 16);
    cr_assert_eq(ty_hpo_param_grid_size(&sp->params[1]), 16);
    cr_assert_eq(sp->params[3].list_num[2], 128);
    cr_assert_eq(ty_hpo_space_find(sp, "opt"), 2);
    cr_assert_eq(ty_hpo_space_find(sp, "nope"), -1);
    char *v = ty_hpo_value_string(&sp->params[2], 1);
    cr_assert_str_eq(v, "adam");
    free(v);
    v = ty_hpo_value_string(&sp->params[1], 48);
    cr_assert_str_eq(v, "48");
    free(v);
    v = ty_hpo_value_string(&sp->params[0], 0.1);
    cr_assert_str_eq(v, "0.1");
    free(v);
    cr_assert(ty_hpo_param_contains(&sp->params[1], 48));
    cr_assert_not(ty_hpo_param_contains(&sp->params[1], 50));
    cr_assert_not(ty_hpo_param_contains(&sp->params[0], 0.2));
    ty_hpo_space_free(sp);
}

Test(hpo_space, int_step_defaults_to_one) {
    ty_hpo_space *sp = space_from("[{\"name\":\"n\",\"parameterType\":\"int\","
                                  "\"feasibleSpace\":{\"min\":\"1\",\"max\":\"5\"}}]");
    cr_assert_eq(ty_hpo_param_grid_size(&sp->params[0]), 5);
    ty_hpo_space_free(sp);
}

Test(hpo_space, double_grid_keeps_its_last_value) {
    /* numpy.arange(0, 0.3 + 0.1, 0.1) has 0.30000000000000004 which Katib drops; 0.3 itself
     * must stay */
    ty_hpo_space *sp = space_from("[{\"name\":\"x\",\"parameterType\":\"double\","
                                  "\"feasibleSpace\":{\"min\":\"0\",\"max\":\"0.3\",\"step\":\"0.1\"}}]");
    cr_assert_eq(ty_hpo_param_grid_size(&sp->params[0]), 4);
    cr_assert_float_eq(ty_hpo_param_grid_value(&sp->params[0], 3), 0.3, 1e-12);
    ty_hpo_space_free(sp);
}

Test(hpo_space, validation_names_the_field) {
    expect_error("[]", "spec.parameters: Required value");
    expect_error("[{\"parameterType\":\"int\",\"feasibleSpace\":{\"min\":\"1\",\"max\":\"2\"}}]",
                 "spec.parameters[0].name");
    expect_error("[{\"name\":\"a\",\"parameterType\":\"float\",\"feasibleSpace\":{}}]",
                 "spec.parameters[0].parameterType: Unsupported value: \"float\"");
    expect_error("[{\"name\":\"a\",\"parameterType\":\"int\"}]",
                 "spec.parameters[0].feasibleSpace: Required value");
    expect_error("[{\"name\":\"a\",\"parameterType\":\"int\",\"feasibleSpace\":{\"min\":\"1\"}}]",
                 "min and max must be specified");
    expect_error("[{\"name\":\"a\",\"parameterType\":\"int\",\"feasibleSpace\":{\"min\":\"1.5\","
                 "\"max\":\"3\"}}]",
                 "spec.parameters[0].feasibleSpace.min: Invalid value: 1.5: must be an integer");
    expect_error("[{\"name\":\"a\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"x\","
                 "\"max\":\"3\"}}]",
                 "spec.parameters[0].feasibleSpace.min: Invalid value: \"x\"");
    expect_error("[{\"name\":\"a\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"3\","
                 "\"max\":\"1\"}}]",
                 "spec.parameters[0].feasibleSpace.max: Invalid value");
    expect_error("[{\"name\":\"a\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"0\","
                 "\"max\":\"1\",\"distribution\":\"logUniform\"}}]",
                 "must be greater than zero for distribution logUniform");
    expect_error("[{\"name\":\"a\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"0\","
                 "\"max\":\"1\",\"step\":\"0\"}}]",
                 "spec.parameters[0].feasibleSpace.step: Invalid value: 0");
    expect_error("[{\"name\":\"a\",\"parameterType\":\"categorical\",\"feasibleSpace\":{\"list\":[]}}]",
                 "spec.parameters[0].feasibleSpace.list: Required value");
    expect_error("[{\"name\":\"a\",\"parameterType\":\"categorical\",\"feasibleSpace\":{\"list\":"
                 "[\"x\"],\"min\":\"1\"}}]",
                 "min, max and step are not supported for parameterType categorical");
    expect_error("[{\"name\":\"a\",\"parameterType\":\"int\",\"feasibleSpace\":{\"list\":[\"1\"]}}]",
                 "list is not supported for parameterType int");
    expect_error("[{\"name\":\"a\",\"parameterType\":\"discrete\",\"feasibleSpace\":{\"list\":"
                 "[\"1\",\"two\"]}}]",
                 "spec.parameters[0].feasibleSpace.list[1]: Invalid value: \"two\"");
    expect_error("[{\"name\":\"a\",\"parameterType\":\"categorical\",\"feasibleSpace\":{\"list\":"
                 "[\"x\",\"x\"]}}]",
                 "spec.parameters[0].feasibleSpace.list[1]: Duplicate value");
    expect_error("[{\"name\":\"a\",\"parameterType\":\"int\",\"feasibleSpace\":{\"min\":\"1\","
                 "\"max\":\"2\"}},{\"name\":\"a\",\"parameterType\":\"int\",\"feasibleSpace\":"
                 "{\"min\":\"1\",\"max\":\"2\"}}]",
                 "spec.parameters[1].name: Duplicate value: \"a\"");
    expect_error("[{\"name\":\"a\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"1\","
                 "\"max\":\"2\",\"distribution\":\"normal\"}}]",
                 "spec.parameters[0].feasibleSpace.distribution: Unsupported value");
}
