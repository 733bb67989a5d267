/* base/hash.h: 64-bit FNV-1a against the published test vectors, the incremental form against
 * the one-shot one, and the values derived from it that outlive a process (the Workload names
 * of ty_kueue_workload_name are stored, and found again by name after a restart). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "controllers/controllers_int.h"

/* From the FNV reference (Fowler, Noll, Vo: draft-eastlake-fnv, test vectors for FNV-1a 64). */
static const struct {
    const char *in;
    uint64_t want;
} vectors[] = {
    {"", 0xcbf29ce484222325ULL},
    {"a", 0xaf63dc4c8601ec8cULL},
    {"foobar", 0x85944171f73967e8ULL},
};

Test(hash, fnv1a_known_vectors)
{
    for (size_t i = 0; i < sizeof vectors / sizeof *vectors; i++) {
        uint64_t got = ty_fnv1a(vectors[i].in, strlen(vectors[i].in));
        cr_expect_eq(got, vectors[i].want, "fnv1a(\"%s\") = %016llx, want %016llx", vectors[i].in,
                     (unsigned long long)got, (unsigned long long)vectors[i].want);
        cr_expect_eq(ty_fnv1a_str(TY_FNV1A_BASIS, vectors[i].in), vectors[i].want);
    }
}

Test(hash, incremental_equals_one_shot)
{
    uint64_t h = ty_fnv1a_add(TY_FNV1A_BASIS, "foo", 3);
    h = ty_fnv1a_str(h, "bar");
    cr_assert_eq(h, ty_fnv1a("foobar", 6));
    cr_assert_eq(ty_fnv1a_str(h, NULL), h, "NULL adds nothing");
    cr_assert_eq(ty_fnv1a_add(h, "", 0), h);
    /* Bytes over 0x7f are hashed unsigned. */
    cr_assert_eq(ty_fnv1a("\xff", 1), (TY_FNV1A_BASIS ^ 0xffULL) * TY_FNV1A_PRIME);
}

/* Pinned from the release before base/hash.h existed: a changed value would orphan every
 * Workload admitted before an upgrade and create a second one for the same job. */
Test(hash, kueue_workload_names_are_stable)
{
    static const struct {
        const char *kind, *name, *uid, *want;
    } pins[] = {
        {"PyTorchJob", "mnist", "0f6c2a8e-3a1b-4c5d-9e7f-001122334455", "pytorchjob-mnist-899f5"},
        {"TFJob", "dist", "", "tfjob-dist-37073"},
        {"PyTorchJob", "mnist", NULL, "pytorchjob-mnist-6c010"},
    };
    for (size_t i = 0; i < sizeof pins / sizeof *pins; i++) {
        char *got = ty_kueue_workload_name(pins[i].kind, pins[i].name, pins[i].uid);
        cr_expect_str_eq(got, pins[i].want);
        free(got);
    }
}
