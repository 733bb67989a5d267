#include "kube/retry.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ty_kube_bucket_init(ty_kube_bucket *b, double qps, int burst, int64_t now_ns)
{
    b->qps = qps;
    b->burst = burst < 1 ? 1 : burst;
    b->tokens = b->burst;
    b->last_ns = now_ns;
}

int64_t ty_kube_bucket_take(ty_kube_bucket *b, int64_t now_ns)
{
    if (b->qps <= 0)
        return 0;
    if (now_ns > b->last_ns) {
        b->tokens += (double)(now_ns - b->last_ns) * b->qps / 1e9;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
        b->last_ns = now_ns;
    }
    b->tokens -= 1;
    if (b->tokens >= 0)
        return 0;
    /* The reserved token arrives when the deficit has refilled. */
    return (int64_t)(-b->tokens / b->qps * 1e9 + 0.5);
}

int64_t ty_kube_backoff_ms(const ty_kube_backoff *b, int attempt, double random01)
{
    double d = (double)b->base_ms;
    for (int i = 0; i < attempt && d < (double)b->cap_ms; i++)
        d *= b->factor;
    if (d > (double)b->cap_ms)
        d = (double)b->cap_ms;
    if (random01 < 0)
        random01 = 0;
    if (random01 >= 1)
        random01 = 0.999999;
    return (int64_t)(d + d * b->jitter * random01);
}

/* RFC 9110's IMF-fixdate, the one form a server must send ("Sun, 06 Nov 1994 08:49:37 GMT");
 * the obsolete RFC 850 and asctime forms are accepted too, as HTTP requires of recipients. */
static int parse_http_date(const char *v, int64_t *out)
{
    static const char *const formats[] = {
        "%a, %d %b %Y %H:%M:%S GMT",
        "%A, %d-%b-%y %H:%M:%S GMT",
        "%a %b %e %H:%M:%S %Y",
    };
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        struct tm tm = {0};
        const char *end = strptime(v, formats[i], &tm);
        if (!end)
            continue;
        while (*end == ' ' || *end == '\t')
            end++;
        if (*end)
            continue;
        *out = (int64_t)timegm(&tm);
        return 0;
    }
    return -1;
}

int64_t ty_kube_retry_after_s(const char *value, int64_t now_s, int64_t max_s)
{
    if (!value)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    if (isdigit((unsigned char)*value)) {
        const char *p = value;
        int64_t s = 0;
        for (; isdigit((unsigned char)*p); p++)
            s = s > max_s ? s : s * 10 + (*p - '0');
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        if (*p)
            return -1;
        return s > max_s ? max_s : s;
    }
    int64_t when;
    if (parse_http_date(value, &when) < 0)
        return -1;
    int64_t d = when - now_s;
    if (d < 0)
        d = 0;
    return d > max_s ? max_s : d;
}
