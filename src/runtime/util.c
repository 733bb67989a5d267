/* Helpers shared by the runtime and its shim; see internal.h. */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "runtime/internal.h"

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
