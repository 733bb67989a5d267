#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/nodespec.h"

static const char *path_s(const json_t *v, const char *a, const char *b, const char *c)
{
    v = json_object_get(json_object_get(v, a), b);
    return json_string_value(c ? json_object_get(v, c) : v);
}

Test(nodespec, count_and_resources)
{
    json_t *nodes = json_array();
    int next = 1;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_nodespec_parse("3x{cpu:32, memory:256Gi,nvidia.com/gpu:8}", &next, nodes,
                                   &err), 0, "%s", err.msg);
    cr_assert_eq(ty_nodespec_parse(" { cpu : 4 , example.com/fpga: 1 } ", &next, nodes, &err),
                 0, "%s", err.msg);
    cr_assert_eq(json_array_size(nodes), 4);
    cr_assert_eq(next, 5);
    json_t *n1 = json_array_get(nodes, 0), *n4 = json_array_get(nodes, 3);
    cr_assert_str_eq(path_s(n1, "metadata", "name", NULL), "node-1");
    cr_assert_str_eq(path_s(json_array_get(nodes, 2), "metadata", "name", NULL), "node-3");
    cr_assert_str_eq(path_s(n4, "metadata", "name", NULL), "node-4");
    cr_assert_str_eq(path_s(n1, "status", "capacity", "memory"), "256Gi");
    cr_assert_str_eq(path_s(n1, "status", "allocatable", "nvidia.com/gpu"), "8");
    cr_assert_str_eq(path_s(n4, "status", "allocatable", "example.com/fpga"), "1");
    cr_assert_str_eq(path_s(n4, "metadata", "labels", "kubernetes.io/hostname"), "node-4");
    cr_assert_str_eq(path_s(n4, "metadata", "labels", "kubernetes.io/os"), "linux");
    cr_assert(path_s(n4, "metadata", "labels", "kubernetes.io/arch"));
    json_t *ready = json_array_get(json_object_get(json_object_get(n4, "status"), "conditions"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(ready, "type")), "Ready");
    cr_assert_eq(ty_nodespec_check_unique(nodes, &err), 0);
    json_decref(nodes);
}

Test(nodespec, bad_specs_say_where_and_what)
{
    const char *cases[][2] = {
        {"8{cpu:1}", "column 2: expected 'x' after the node count"},
        {"0x{cpu:1}", "column 1: the node count must be 1 to"},
        {"2x{}", "no resources between the braces"},
        {"2x{cpu:abc}", "column 8: cpu: quantities must match"},
        {"2x{cpu:1,cpu:2}", "cpu: given twice"},
        {"2x{cpu 1}", "cpu: expected ':'"},
        {"2x{cpu:-1}", "cpu: must not be negative"},
        {"2x{cpu:1", "expected ',' or '}'"},
        {"2x{cpu:1}z", "unexpected text after '}'"},
        {"cpu:1", "expected '{'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *nodes = json_array();
        int next = 1;
        ty_error err = TY_ERROR_INIT;
        cr_assert_eq(ty_nodespec_parse(cases[i][0], &next, nodes, &err), -1, "%s", cases[i][0]);
        cr_assert(strstr(err.msg, cases[i][1]), "%s: got %s", cases[i][0], err.msg);
        cr_assert(strncmp(err.msg, "--nodes '", 9) == 0, "%s", err.msg);
        cr_assert_eq(json_array_size(nodes), 0);
        ty_error_clear(&err);
        json_decref(nodes);
    }
}

static char *write_tmp(const char *text)
{
    char *path = strdup("/tmp/ty-nodespec-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

Test(nodespec, file_with_labels_and_taints)
{
    char *path = write_tmp("apiVersion: v1\nkind: Node\nmetadata:\n  name: a100-1\n  labels:\n"
                           "    cloud.google.com/gke-accelerator: a100\nspec:\n  taints:\n"
                           "  - {key: gpu, value: \"true\", effect: NoSchedule}\nstatus:\n"
                           "  capacity: {cpu: 8, memory: 64Gi, nvidia.com/gpu: 4}\n---\n"
                           "metadata: {name: small}\nstatus:\n  allocatable: {cpu: 2}\n");
    json_t *nodes = json_array();
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_nodespec_load(path, nodes, &err), 0, "%s", err.msg);
    cr_assert_eq(json_array_size(nodes), 2);
    json_t *a = json_array_get(nodes, 0), *s = json_array_get(nodes, 1);
    cr_assert_str_eq(path_s(a, "metadata", "labels", "cloud.google.com/gke-accelerator"), "a100");
    cr_assert_str_eq(path_s(a, "metadata", "labels", "kubernetes.io/hostname"), "a100-1");
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(json_object_get(a, "status"), "allocatable"), "cpu")),
                 8, "allocatable defaults to capacity");
    json_t *taint = json_array_get(json_object_get(json_object_get(a, "spec"), "taints"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(taint, "effect")), "NoSchedule");
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(json_object_get(s, "status"), "capacity"), "cpu")), 2);
    unlink(path);
    free(path);
    json_decref(nodes);
}

Test(nodespec, bad_files_name_line_and_field)
{
    const char *cases[][2] = {
        {"metadata: {name: a}\nstatus:\n  capacity:\n    cpu: lots\n", ":4:10: status.capacity.cpu: quantities"},
        {"metadata: {name: A_b}\nstatus: {capacity: {cpu: 1}}\n", ":1:18: metadata.name: must be"},
        {"kind: Pod\nmetadata: {name: a}\n", ":1:7: kind: expected Node"},
        {"metadata: {name: a}\nspec:\n  taints:\n  - {key: k, effect: Sometimes}\n"
         "status: {capacity: {cpu: 1}}\n", ":4:22: spec.taints[0].effect: must be"},
        {"metadata: {name: a}\n", ":1:1: status.capacity: required"},
        {"metadata: {labels: {a: b}}\n", "metadata.name: required"},
        {"metadata: {name: a, labels: {x: 1}}\nstatus: {capacity: {cpu: 1}}\n",
         "metadata.labels.x: expected a string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = write_tmp(cases[i][0]);
        json_t *nodes = json_array();
        ty_error err = TY_ERROR_INIT;
        cr_assert_eq(ty_nodespec_load(path, nodes, &err), -1, "%s", cases[i][0]);
        cr_assert(strstr(err.msg, path), "names the file: %s", err.msg);
        cr_assert(strstr(err.msg, cases[i][1]), "%s: got %s", cases[i][0], err.msg);
        ty_error_clear(&err);
        json_decref(nodes);
        unlink(path);
        free(path);
    }
}

Test(nodespec, duplicate_names)
{
    json_t *nodes = json_array();
    int next = 1;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_nodespec_parse("2x{cpu:1}", &next, nodes, &err), 0);
    next = 2;
    cr_assert_eq(ty_nodespec_parse("{cpu:1}", &next, nodes, &err), 0);
    cr_assert_eq(ty_nodespec_check_unique(nodes, &err), -1);
    cr_assert(strstr(err.msg, "node node-2 is declared twice"), "%s", err.msg);
    ty_error_clear(&err);
    json_decref(nodes);
}
