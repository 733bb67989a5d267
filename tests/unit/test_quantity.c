#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/quantity.h"

#define FORMAT_MSG                                                                                \
    "quantities must match the regular expression "                                               \
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
#define SUFFIX_MSG "unable to parse quantity's suffix"

static const struct {
    const char *in;
    int64_t milli;
} valid[] = {
    {"0", 0},
    {"100m", 100},
    {"1", 1000},
    {"1.5", 1500},
    {"0.1", 100},
    {".5", 500},
    {"5.", 5000},
    {"+5", 5000},
    {"-1", -1000},
    {"007", 7000},
    {"2k", 2000000},
    {"1e3", 1000000},
    {"1E3", 1000000},
    {"1e+3", 1000000},
    {"1E-3", 1},
    {"1e-2", 10},
    {"4Gi", 4LL * 1024 * 1024 * 1024 * 1000},
    {"500Mi", 500LL * 1024 * 1024 * 1000},
    {"1.5Gi", 1536LL * 1024 * 1024 * 1000},
    {"1Ki", 1024000},
    {"0.5Ki", 512000},
    {"1M", 1000000000},
    {"1G", 1000000000000},
    {"8Pi", 8LL * 1024 * 1024 * 1024 * 1024 * 1024 * 1000},
    {"9P", 9000000000000000000},
    {"1n", 1},            /* rounded up to the smallest unit */
    {"1u", 1},
    {"1500u", 2},         /* 1.5m rounds up */
    {"1000u", 1},         /* exact: no rounding */
    {"-1n", -1},          /* away from zero, as MilliValue() */
    {"0.0001", 1},
    {"0.000000001Ki", 1}, /* 1.024e-6 m rounds up */
    {"1e-100000000", 1},  /* tiny but positive */
    {"0e999", 0},
    {"0.000", 0},
    {"9223372036854775.807", INT64_MAX},
    {"123456789012345678901234567890e-27", 123457}, /* 123.456789... -> rounded up */
};

Test(quantity, valid_table)
{
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        ty_error err = TY_ERROR_INIT;
        ty_quantity q = {-42};
        int rc = ty_quantity_parse(valid[i].in, &q, &err);
        cr_expect_eq(rc, 0, "%s: %s", valid[i].in, err.msg ? err.msg : "");
        cr_expect_eq(q.milli, valid[i].milli, "%s: got %lld want %lld", valid[i].in,
                     (long long)q.milli, (long long)valid[i].milli);
        ty_error_clear(&err);
    }
}

static const struct {
    const char *in;
    const char *msg;
} invalid[] = {
    {"", FORMAT_MSG},
    {"1.2.3", FORMAT_MSG},
    {"Gi", FORMAT_MSG},
    {"1Gb", FORMAT_MSG},
    {"1 Gi", FORMAT_MSG},
    {" 1", FORMAT_MSG},
    {"1 ", FORMAT_MSG},
    {"aoeu", FORMAT_MSG},
    {"1+1.0M", FORMAT_MSG},
    {"-", FORMAT_MSG},
    {".", FORMAT_MSG},
    {"--1", FORMAT_MSG},
    {"1.1.M", FORMAT_MSG},
    {"0.1mi", SUFFIX_MSG},
    {"0.1am", FORMAT_MSG},
    {"1i", SUFFIX_MSG},
    {".5i", SUFFIX_MSG},
    {"1e", SUFFIX_MSG},
    {"-3.01e-", SUFFIX_MSG},
    {"1Ki3", SUFFIX_MSG},
    {"1KiB", FORMAT_MSG},
    {"1kk", SUFFIX_MSG},
    {"9223372036854775.808", "quantity is too large"},
    {"10E", "quantity is too large"},
    {"8Ei", "quantity is too large"},
    {"1e17", "quantity is too large"},
    {"1e100000000", "quantity is too large"},
    {"99999999999999999999999", "quantity is too large"},
};

Test(quantity, invalid_table)
{
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        ty_error err = TY_ERROR_INIT;
        ty_quantity q = {-42};
        int rc = ty_quantity_parse(invalid[i].in, &q, &err);
        cr_expect_eq(rc, -1, "'%s' should fail", invalid[i].in);
        cr_expect_eq(q.milli, -42, "'%s' must leave the output untouched", invalid[i].in);
        cr_expect(err.msg && strcmp(err.msg, invalid[i].msg) == 0, "'%s': got '%s'",
                  invalid[i].in, err.msg ? err.msg : "(null)");
        ty_error_clear(&err);
    }
}

Test(quantity, too_long)
{
    char s[400];
    memset(s, '1', sizeof(s) - 1);
    s[sizeof(s) - 1] = '\0';
    ty_error err = TY_ERROR_INIT;
    ty_quantity q;
    cr_assert_eq(ty_quantity_parse(s, &q, &err), -1);
    cr_expect(strstr(err.msg, "longer than"), "%s", err.msg);
    ty_error_clear(&err);
    cr_assert_eq(ty_quantity_parse(NULL, &q, NULL), -1);
}

Test(quantity, from_double)
{
    ty_quantity q;
    cr_assert_eq(ty_quantity_from_double(0.1, &q, NULL), 0);
    cr_expect_eq(q.milli, 100);
    cr_assert_eq(ty_quantity_from_double(2, &q, NULL), 0);
    cr_expect_eq(q.milli, 2000);
    cr_assert_eq(ty_quantity_from_double(0.3, &q, NULL), 0);
    cr_expect_eq(q.milli, 300);
    cr_assert_eq(ty_quantity_from_double(-0.5, &q, NULL), 0);
    cr_expect_eq(q.milli, -500);
    cr_assert_eq(ty_quantity_from_double(1e-7, &q, NULL), 0);
    cr_expect_eq(q.milli, 1);
    cr_assert_eq(ty_quantity_from_double(17179869184.0, &q, NULL), 0);
    cr_expect_eq(q.milli, 17179869184000LL);
    ty_error err = TY_ERROR_INIT;
    cr_expect_eq(ty_quantity_from_double(NAN, &q, &err), -1);
    cr_expect_str_eq(err.msg, "quantity is not a finite number");
    cr_expect_eq(ty_quantity_from_double(INFINITY, &q, &err), -1);
    cr_expect_eq(ty_quantity_from_double(1e30, &q, &err), -1);
    cr_expect_str_eq(err.msg, "quantity is too large");
    ty_error_clear(&err);
}

Test(quantity, value_rounds_away_from_zero)
{
    cr_expect_eq(ty_quantity_value((ty_quantity){1500}), 2);
    cr_expect_eq(ty_quantity_value((ty_quantity){1000}), 1);
    cr_expect_eq(ty_quantity_value((ty_quantity){1}), 1);
    cr_expect_eq(ty_quantity_value((ty_quantity){0}), 0);
    cr_expect_eq(ty_quantity_value((ty_quantity){-1500}), -2);
    cr_expect_eq(ty_quantity_value((ty_quantity){-2000}), -2);
}

static const struct {
    int64_t milli;
    bool binary;
    const char *want;
} formats[] = {
    {0, false, "0"},
    {0, true, "0"},
    {500, false, "500m"},
    {1500, false, "1500m"},
    {2000, false, "2"},
    {1500000000000, false, "1500M"},
    {1000000000000, false, "1G"},
    {4LL * 1024 * 1024 * 1024 * 1000, true, "4Gi"},
    {1536LL * 1024 * 1024 * 1000, true, "1536Mi"},
    {4LL * 1024 * 1024 * 1024 * 1000, false, "4294967296"},
    {1000000000, true, "1M"}, /* not a whole number of a binary unit */
    {512000, true, "512"},     /* under 1Ki stays decimal */
    {1500, true, "1500m"},
    {-500, false, "-500m"},
    {-2048000, true, "-2Ki"},
    {9000000000000000000, false, "9P"},
    {INT64_MIN, false, "-9223372036854775808m"},
};

Test(quantity, format)
{
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        char buf[32];
        ty_quantity_format((ty_quantity){formats[i].milli}, formats[i].binary, buf, sizeof(buf));
        cr_expect_str_eq(buf, formats[i].want, "%lld", (long long)formats[i].milli);
    }
    char small[4];
    ty_quantity_format((ty_quantity){1500}, false, small, sizeof(small));
    cr_expect_str_eq(small, "150", "truncated to the buffer");
}

/* Formatting then parsing gives back the same value. */
Test(quantity, round_trip)
{
    const char *ins[] = {"100m", "1.5", "4Gi", "1e3", "2k", "1.5Gi", "500Mi", "-7", "123456789m"};
    for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
        ty_quantity q, back;
        cr_assert_eq(ty_quantity_parse(ins[i], &q, NULL), 0);
        for (int bin = 0; bin < 2; bin++) {
            char buf[32];
            ty_quantity_format(q, bin, buf, sizeof(buf));
            cr_assert_eq(ty_quantity_parse(buf, &back, NULL), 0, "%s", buf);
            cr_expect_eq(back.milli, q.milli, "%s -> %s", ins[i], buf);
        }
    }
}
