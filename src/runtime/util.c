/* Helpers shared by the runtime and its shim; see internal.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "runtime/internal.h"

int ty_rt_quantity_milli(const json_t *v, int64_t *milli, ty_error *err)
{
    if (json_is_integer(v)) {
        *milli = (int64_t)json_integer_value(v) * 1000;
        return 0;
    }
    if (json_is_real(v)) {
        *milli = (int64_t)ceil(json_real_value(v) * 1000);
        return 0;
    }
    if (!json_is_string(v))
        return ty_fail(err, "quantity must be a string or a number");
    const char *s = json_string_value(v);
    char *end = NULL;
    long double x = strtold(s, &end);
    if (end == s || x < 0)
        return ty_fail(err, "quantity %s: not a non-negative number", s);
    static const struct {
        const char *sfx;
        long double mul;
    } sfx[] = {{"Ki", 1024.0L},        {"Mi", 1048576.0L},    {"Gi", 1073741824.0L},
               {"Ti", 1099511627776.0L}, {"Pi", 1125899906842624.0L},
               {"Ei", 1152921504606846976.0L}, {"n", 1e-9L}, {"u", 1e-6L}, {"m", 1e-3L},
               {"k", 1e3L}, {"M", 1e6L}, {"G", 1e9L}, {"T", 1e12L}, {"P", 1e15L}, {"E", 1e18L},
               {"", 1.0L}};
    for (size_t i = 0; i < TY_ARRAY_LEN(sfx); i++) {
        if (strcmp(end, sfx[i].sfx) == 0) {
            long double m = ceill(x * sfx[i].mul * 1000.0L);
            if (m > 9.2e18L)
                return ty_fail(err, "quantity %s: too large", s);
            *milli = (int64_t)m;
            return 0;
        }
    }
    return ty_fail(err, "quantity %s: unknown suffix %s", s, end);
}

char *ty_rt_expand(const char *s, ty_rt_lookup_fn lookup, void *ctx)
{
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    for (const char *p = s; *p;) {
        if (p[0] != '$') {
            ty_buf_addc(&b, *p++);
            continue;
        }
        if (p[1] == '$') { /* escaped: $$ -> $, so $$(X) stays literal */
            ty_buf_addc(&b, '$');
            p += 2;
            continue;
        }
        if (p[1] == '(') {
            const char *close = strchr(p + 2, ')');
            if (close) {
                const char *v = lookup(ctx, p + 2, (size_t)(close - (p + 2)));
                if (v)
                    ty_buf_adds(&b, v);
                else
                    ty_buf_add(&b, p, (size_t)(close + 1 - p));
                p = close + 1;
                continue;
            }
        }
        ty_buf_addc(&b, *p++);
    }
    return ty_buf_steal(&b);
}
