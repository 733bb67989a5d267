/* Image references, normalized as docker/distribution's reference package (which Kubernetes
 * and containerd use) does: [domain/]path[:tag][@digest]; a first component without "." or
 * ":" that is not "localhost" is a path under docker.io, a one-component path there gets
 * "library/", and no tag and no digest means ":latest". */
#include <ctype.h>
#include <string.h>

#include "base/mem.h"
#include "image/image.h"

#define REF_MAX 255 /* the reference package's NameTotalLengthMax */

/* path-component: [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)* */
static bool component_ok(const char *s, size_t n)
{
    if (n == 0 || !isalnum((unsigned char)s[0]) || isupper((unsigned char)s[0]))
        return false;
    size_t i = 0;
    while (i < n) {
        size_t run = 0;
        while (i < n && (islower((unsigned char)s[i]) || isdigit((unsigned char)s[i])))
            i++, run++;
        if (run == 0)
            return false;
        if (i == n)
            return true;
        if (s[i] == '.' || (s[i] == '_' && (i + 1 >= n || s[i + 1] != '_')))
            i++;
        else if (s[i] == '_')
            i += 2;
        else if (s[i] == '-')
            while (i < n && s[i] == '-')
                i++;
        else
            return false;
        if (i == n)
            return false;
    }
    return true;
}

/* domain: host components [a-zA-Z0-9-.] with an optional :port; kept loose, as a domain is
 * only ever compared, never resolved here. */
static bool domain_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr(".-:[]", s[i]))
            return false;
    return s[0] != '-' && s[0] != '.';
}

static bool tag_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)t[i]) && !strchr("_.-", t[i]))
            return false;
    return true;
}

static bool digest_ok(const char *d)
{
    if (strncmp(d, "sha256:", 7) != 0 || strlen(d + 7) != 64)
        return false;
    for (const char *p = d + 7; *p; p++)
        if (!isdigit((unsigned char)*p) && !(*p >= 'a' && *p <= 'f'))
            return false;
    return true;
}

int ty_image_ref_parse(const char *s, ty_image_ref *out, ty_error *err)
{
    memset(out, 0, sizeof *out);
    if (!s || !*s)
        return ty_fail(err, "image reference is empty");
    if (strlen(s) > REF_MAX)
        return ty_fail(err, "image reference %.40s... is longer than %d characters", s, REF_MAX);
    TY_AUTOFREE char *copy = ty_strdup(s);
    char *at = strchr(copy, '@');
    if (at) {
        *at = '\0';
        if (!digest_ok(at + 1))
            return ty_fail(err, "image reference %s: digest %s is not sha256:<64 hex digits>", s,
                           at + 1);
        out->digest = ty_strdup(at + 1);
    }
    char *slash = strrchr(copy, '/');
    char *colon = strrchr(slash ? slash : copy, ':');
    if (colon) {
        *colon = '\0';
        if (!tag_ok(colon + 1)) {
            ty_image_ref_free(out);
            return ty_fail(err, "image reference %s: invalid tag %s", s, colon + 1);
        }
        out->tag = ty_strdup(colon + 1);
    }
    /* domain or first path component */
    const char *name = copy, *domain = "docker.io";
    char *first = strchr(copy, '/');
    if (first && (memchr(copy, '.', (size_t)(first - copy)) ||
                  memchr(copy, ':', (size_t)(first - copy)) ||
                  ((size_t)(first - copy) == 9 && strncmp(copy, "localhost", 9) == 0))) {
        *first = '\0';
        domain = copy;
        name = first + 1;
        if (!domain_ok(domain, strlen(domain))) {
            ty_image_ref_free(out);
            return ty_fail(err, "image reference %s: invalid domain %s", s, domain);
        }
        if (strcmp(domain, "index.docker.io") == 0)
            domain = "docker.io";
    } else if (first == NULL && strchr(copy, ':')) {
        ty_image_ref_free(out);
        return ty_fail(err, "image reference %s: invalid reference format", s);
    }
    for (const char *p = name;;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (!component_ok(p, n)) {
            ty_image_ref_free(out);
            bool upper = false;
            for (size_t i = 0; i < n; i++)
                upper |= isupper((unsigned char)p[i]) != 0;
            return ty_fail(err, "image reference %s: %s", s,
                           upper ? "repository name must be lowercase"
                                 : "invalid reference format");
        }
        if (!e)
            break;
        p = e + 1;
    }
    bool library = strcmp(domain, "docker.io") == 0 && !strchr(name, '/');
    out->name = ty_asprintf("%s/%s%s", domain, library ? "library/" : "", name);
    if (!out->tag && !out->digest)
        out->tag = ty_strdup("latest");
    return 0;
}

char *ty_image_ref_string(const ty_image_ref *r)
{
    return ty_asprintf("%s%s%s%s%s", r->name, r->tag ? ":" : "", r->tag ? r->tag : "",
                       r->digest ? "@" : "", r->digest ? r->digest : "");
}

void ty_image_ref_free(ty_image_ref *r)
{
    free(r->name), free(r->tag), free(r->digest);
    memset(r, 0, sizeof *r);
}

const char *ty_image_default_pull_policy(const char *image)
{
    /* the kubelet's defaulting: tag "latest", or no tag and no digest -> Always */
    if (!image)
        return "Always";
    TY_AUTOFREE char *copy = ty_strdup(image);
    char *at = strchr(copy, '@');
    if (at)
        *at = '\0';
    const char *slash = strrchr(copy, '/');
    const char *colon = strrchr(slash ? slash : copy, ':');
    if (colon ? strcmp(colon + 1, "latest") == 0 : !at)
        return "Always";
    return "IfNotPresent";
}
