/* ty_sched_plain_pass(): the checksum of bench/sched's "read everything once" floor must not
 * depend on the order of the adds, as the pass's decisions do not. */
#include "sched_fixtures.h"

/* The same snapshot whatever `order`; `bump` changes one pending workload's request. */
static ty_sched *snapshot(int order, int bump)
{
    ty_sched *s = mk(false);
    ty_error err = TY_ERROR_INIT;
    /* resources first seen in another order, so that their numbers differ */
    ty_sched_amount alloc[2][2] = {{{GPU, G(8)}, {"cpu", G(64)}}, {{"cpu", G(64)}, {GPU, G(8)}}};
    for (int i = 0; i < 6; i++) {
        int j = order ? 5 - i : i;
        char n[16];
        snprintf(n, sizeof n, "n%d", j);
        alloc[order][order ? 1 : 0].milli = G(8 - j % 2);
        ty_sched_node nd = {.name = n, .allocatable = alloc[order], .n_allocatable = 2};
        must(ty_sched_add_node(s, &nd, &err), &err);
    }
    add_flavor(s, "f", NULL);
    add_cq1(s, "q", NULL, "f", 40);
    for (int i = 0; i < 12; i++) {
        int j = order ? 11 - i : i;
        char k[16];
        snprintf(k, sizeof k, "w%02d", j);
        add_wl(s, k, "q", j % 3, 100 + j, 1 + j % 2, 1 + j % 4 + (j == 7 ? bump : 0));
    }
    return s;
}

Test(sched_plain, the_checksum_does_not_depend_on_the_add_order_or_the_pass)
{
    ty_sched *a = snapshot(0, 0), *b = snapshot(1, 0), *c = snapshot(0, 1);
    uint64_t ha = ty_sched_plain_pass(a);
    cr_assert_eq(ha, ty_sched_plain_pass(b));
    cr_assert_neq(ha, ty_sched_plain_pass(c), "a changed request must change the checksum");
    ty_sched_run(a); /* sorts the snapshot */
    cr_assert_eq(ty_sched_plain_pass(a), ha);
    ty_sched_free(a);
    ty_sched_free(b);
    ty_sched_free(c);
}

static int by_strcmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The pass sorts nodes by name (radix on 16 bytes after the shared prefix, strcmp where those
 * tie): with equal nodes, best fit takes them in name order, whatever the add order. */
Test(sched_plain, nodes_are_taken_in_strcmp_order_of_their_names)
{
    static const char *const names[] = {
        "node-pool-a-1",          "node-pool-a-10",      "node-pool-a-100000000x",
        "node-pool-a-100000000",  "node-pool-a-2",       "node-pool-a-\xc3\xa9t\xc3\xa9",
        "node-pool-a-Z",          "node-pool-a-",        "node-pool-a-10000000",
        "node-pool-a-100000000y", "node-pool-a-\x7f",    "node-pool-a-09",
        /* alike in the 16 bytes the radix sort looks at */
        "node-pool-a-1234567890abcdefgY", "node-pool-a-1234567890abcdefgX",
        "node-pool-a-1234567890abcdefg",
    };
    enum { N = sizeof names / sizeof *names };
    const char *sorted[N];
    memcpy(sorted, names, sizeof sorted);
    qsort(sorted, N, sizeof *sorted, by_strcmp);
    for (int order = 0; order < 3; order++) {
        ty_sched *s = mk(false);
        add_flavor(s, "f", NULL);
        for (int i = 0; i < N; i++)
            add_node(s, names[order == 2 ? N - 1 - i : (i * (order ? 7 : 1)) % N], 8, 0, NULL);
        add_cq1(s, "q", NULL, "f", 8 * N);
        for (int i = 0; i < N; i++) {
            char k[16];
            snprintf(k, sizeof k, "w%02d", i);
            add_wl(s, k, "q", 0, 100 + i, 1, 8);
        }
        ty_sched_run(s);
        for (int i = 0; i < N; i++) {
            char k[16];
            snprintf(k, sizeof k, "w%02d", i);
            const ty_sched_decision *d = dec(s, k);
            cr_assert_eq(d->verdict, TY_SCHED_ADMIT);
            cr_assert_str_eq(d->pod_sets[0].nodes[0], sorted[i], "order %d: %s", order, k);
        }
        ty_sched_free(s);
    }
}
