/* Kubernetes quantities, parsed exactly with integer arithmetic.
 *
 * The value is (digits) x 10^shift x 2^bin. Rather than carry a bignum we multiply the decimal
 * digit string by two `bin` times (at most 60 doublings of a string the length cap keeps short),
 * then move the decimal point: whatever falls after it only decides whether we round up. */
#include "base/quantity.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

#define QTY_FORMAT_MSG                                                                            \
    "quantities must match the regular expression "                                               \
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
#define QTY_SUFFIX_MSG "unable to parse quantity's suffix"
/* Untrusted input: no real quantity needs more; it bounds the digit arithmetic below. */
#define QTY_MAX_LEN 256
/* Exponents beyond this are clamped; the result is then 0, 1 (rounded up) or an overflow. */
#define QTY_MAX_EXP 100000

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Splits s the way Kubernetes' parseQuantityString does: sign, integer digits, optional
 * fraction, then a suffix made of [eEinumkKMGTP]* [+-]? [0-9]*. Unlike Kubernetes we also
 * require at least one digit, so "Gi", "." or "-" are errors rather than zero. */
static int split(const char *s, bool *neg, const char **num, size_t *nnum, const char **den,
                 size_t *nden, const char **suf)
{
    const char *p = s;
    *neg = false;
    if (*p == '+' || *p == '-')
        *neg = *p++ == '-';
    *num = p;
    while (is_digit(*p))
        p++;
    *nnum = (size_t)(p - *num);
    *den = p;
    *nden = 0;
    if (*p == '.') {
        *den = ++p;
        while (is_digit(*p))
            p++;
        *nden = (size_t)(p - *den);
    }
    if (*nnum + *nden == 0)
        return -1;
    *suf = p;
    while (*p && strchr("eEinumkKMGTP", *p))
        p++;
    if (*p == '+' || *p == '-')
        p++;
    while (is_digit(*p))
        p++;
    return *p ? -1 : 0;
}

/* Interprets a suffix: decimal SI, binary SI or a decimal exponent (e3, E-2, e+1). */
static int suffix(const char *suf, int64_t *exp10, int *exp2)
{
    static const struct { const char *s; int e10, e2; } table[] = {
        {"", 0, 0},    {"n", -9, 0},  {"u", -6, 0},  {"m", -3, 0},  {"k", 3, 0},
        {"M", 6, 0},   {"G", 9, 0},   {"T", 12, 0},  {"P", 15, 0},  {"E", 18, 0},
        {"Ki", 0, 10}, {"Mi", 0, 20}, {"Gi", 0, 30}, {"Ti", 0, 40}, {"Pi", 0, 50},
        {"Ei", 0, 60},
    };
    for (size_t i = 0; i < TY_ARRAY_LEN(table); i++) {
        if (strcmp(suf, table[i].s) == 0) {
            *exp10 = table[i].e10;
            *exp2 = table[i].e2;
            return 0;
        }
    }
    if ((suf[0] != 'e' && suf[0] != 'E') || !suf[1])
        return -1;
    const char *p = suf + 1;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (!*p)
        return -1;
    int64_t e = 0;
    for (; *p; p++) {
        if (!is_digit(*p))
            return -1;
        if (e < QTY_MAX_EXP)
            e = e * 10 + (*p - '0');
    }
    *exp10 = neg ? -e : e;
    *exp2 = 0;
    return 0;
}

/* digits (most significant first, no leading zeros) *= 2, in place; room for one more digit. */
static void double_digits(char *d, size_t *n)
{
    int carry = 0;
    for (size_t i = *n; i-- > 0;) {
        int v = (d[i] - '0') * 2 + carry;
        d[i] = (char)('0' + v % 10);
        carry = v / 10;
    }
    if (carry) {
        memmove(d + 1, d, *n);
        d[0] = (char)('0' + carry);
        (*n)++;
    }
}

int ty_quantity_parse(const char *s, ty_quantity *out, ty_error *err)
{
    if (!s || !*s)
        return ty_fail(err, QTY_FORMAT_MSG);
    if (strlen(s) > QTY_MAX_LEN)
        return ty_fail(err, "quantity is longer than %d characters", QTY_MAX_LEN);
    bool neg;
    const char *num, *den, *suf;
    size_t nnum, nden;
    if (split(s, &neg, &num, &nnum, &den, &nden, &suf) < 0)
        return ty_fail(err, QTY_FORMAT_MSG);
    int64_t exp10;
    int exp2;
    if (suffix(suf, &exp10, &exp2) < 0)
        return ty_fail(err, QTY_SUFFIX_MSG);

    /* The significant digits, num followed by den, with the decimal point shifted so that the
     * integer they form counts milli-units: value = digits x 10^shift x 2^exp2. */
    char digits[2 * QTY_MAX_LEN + 32];
    size_t n = 0;
    for (size_t i = 0; i < nnum; i++)
        if (n || num[i] != '0')
            digits[n++] = num[i];
    for (size_t i = 0; i < nden; i++)
        if (n || den[i] != '0')
            digits[n++] = den[i];
    int64_t shift = 3 + exp10 - (int64_t)nden;
    if (n == 0) {
        out->milli = 0;
        return 0;
    }
    for (int i = 0; i < exp2; i++)
        double_digits(digits, &n);

    /* Integer part: the first n + shift digits (then shift zeros when shift > 0). */
    int64_t intlen = (int64_t)n + shift;
    if (intlen > 19)
        return ty_fail(err, "quantity is too large");
    uint64_t mag = 0;
    bool frac = false;
    for (int64_t i = 0; i < (intlen > 0 ? intlen : 0); i++) {
        int dgt = i < (int64_t)n ? digits[i] - '0' : 0;
        if (mag > (UINT64_MAX - (uint64_t)dgt) / 10)
            return ty_fail(err, "quantity is too large");
        mag = mag * 10 + (uint64_t)dgt;
    }
    for (int64_t i = intlen > 0 ? intlen : 0; i < (int64_t)n; i++)
        if (digits[i] != '0')
            frac = true;
    /* Round away from zero, as Quantity.MilliValue() does. */
    if (frac)
        mag++;
    if (mag > (uint64_t)INT64_MAX)
        return ty_fail(err, "quantity is too large");
    out->milli = neg ? -(int64_t)mag : (int64_t)mag;
    return 0;
}

int ty_quantity_from_double(double v, ty_quantity *out, ty_error *err)
{
    if (!isfinite(v))
        return ty_fail(err, "quantity is not a finite number");
    /* The shortest text that reads back as v is what the user wrote ("0.1", not
     * 0.1000000000000000055...), and parsing that text keeps the result exact. */
    char text[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(text, sizeof(text), "%.*g", prec, v);
        if (strtod(text, NULL) == v)
            break;
    }
    return ty_quantity_parse(text, out, err);
}

int64_t ty_quantity_value(ty_quantity q)
{
    int64_t whole = q.milli / 1000;
    int64_t rest = q.milli % 1000;
    if (rest > 0)
        whole++;
    else if (rest < 0)
        whole--;
    return whole;
}

char *ty_quantity_format(ty_quantity q, bool binary, char *out, size_t cap)
{
    if (cap == 0)
        return out;
    const char *sign = q.milli < 0 ? "-" : "";
    /* Magnitude as unsigned so that INT64_MIN does not overflow. */
    uint64_t m = q.milli < 0 ? -(uint64_t)q.milli : (uint64_t)q.milli;
    if (m % 1000 != 0) {
        snprintf(out, cap, "%s%" PRIu64 "m", sign, m);
        return out;
    }
    uint64_t v = m / 1000;
    if (v == 0) {
        snprintf(out, cap, "0");
        return out;
    }
    if (binary && v >= 1024 && v % 1024 == 0) {
        static const char *const bin[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
        int e = 0;
        while (e < 6 && v % 1024 == 0) {
            v /= 1024;
            e++;
        }
        snprintf(out, cap, "%s%" PRIu64 "%s", sign, v, bin[e]);
        return out;
    }
    static const char *const dec[] = {"", "k", "M", "G", "T", "P", "E"};
    int e = 0;
    while (e < 6 && v % 1000 == 0) {
        v /= 1000;
        e++;
    }
    snprintf(out, cap, "%s%" PRIu64 "%s", sign, v, dec[e]);
    return out;
}

int ty_quantity_from_json(const json_t *v, ty_quantity *out, ty_error *err)
{
    if (json_is_string(v))
        return ty_quantity_parse(json_string_value(v), out, err);
    if (json_is_integer(v) || json_is_real(v))
        return ty_quantity_from_double(json_number_value(v), out, err);
    return ty_fail(err, "a quantity must be a string or a number");
}
