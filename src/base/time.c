#include "base/time.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t ty_time_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t ty_time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t ty_time_add_s(int64_t ns, int64_t s)
{
    int64_t d, sum;
    if (__builtin_mul_overflow(s, 1000000000LL, &d))
        return s > 0 ? INT64_MAX : INT64_MIN;
    if (__builtin_add_overflow(ns, d, &sum))
        return d > 0 ? INT64_MAX : INT64_MIN;
    return sum;
}

char *ty_time_format_rfc3339(int64_t ns, char *out, size_t cap, int digits)
{
    time_t sec = (time_t)(ns / 1000000000LL);
    long frac = (long)(ns % 1000000000LL);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    if (digits > 0 && n < cap) {
        char f[16];
        snprintf(f, sizeof f, "%09ld", frac);
        f[digits > 9 ? 9 : digits] = '\0';
        n += (size_t)snprintf(out + n, cap - n, ".%s", f);
    }
    if (n < cap)
        snprintf(out + n, cap - n, "Z");
    return out;
}

int ty_time_parse_rfc3339(const char *s, int64_t *ns)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    int64_t frac = 0;
    if (*p == '.') {
        int64_t scale = 100000000;
        for (p++; isdigit((unsigned char)*p); p++) {
            frac += (*p - '0') * scale;
            scale /= 10;
        }
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return -1;
        offset = (hh * 3600 + mm * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    /* Nanoseconds in an int64 reach 2262: a time past that (or before 1678) is not one. */
    int64_t secs = (int64_t)timegm(&tm) - offset;
    if (secs > INT64_MAX / 1000000000LL - 1 || secs < INT64_MIN / 1000000000LL + 1)
        return -1;
    *ns = secs * 1000000000LL + frac;
    return 0;
}

char *ty_time_format_age(int64_t ns, char *out, size_t cap)
{
    int64_t s = ns / 1000000000LL;
    if (s < 0)
        s = 0;
    if (s < 120)
        snprintf(out, cap, "%llds", (long long)s);
    else if (s < 600)
        snprintf(out, cap, "%lldm%llds", (long long)(s / 60), (long long)(s % 60));
    else if (s < 3 * 3600)
        snprintf(out, cap, "%lldm", (long long)(s / 60));
    else if (s < 8 * 3600)
        snprintf(out, cap, "%lldh%lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else if (s < 48 * 3600)
        snprintf(out, cap, "%lldh", (long long)(s / 3600));
    else if (s < 8 * 86400)
        snprintf(out, cap, "%lldd%lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
    else
        snprintf(out, cap, "%lldd", (long long)(s / 86400));
    return out;
}
