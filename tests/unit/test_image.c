/* Image references, the kubelet's pull policy default, archive path safety and the merge of
 * an image config with a container spec. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>

#include "base/mem.h"
#include "image/image.h"
#include "image/image_int.h"
#include "runtime/runtime_int.h"

static char *norm(const char *s)
{
    ty_image_ref r;
    ty_error err = TY_ERROR_INIT;
    if (ty_image_ref_parse(s, &r, &err) < 0) {
        char *m = err.msg;
        err.msg = NULL;
        return m;
    }
    char *out = ty_image_ref_string(&r);
    ty_image_ref_free(&r);
    return out;
}

#define NORM(in, want)                                                                        \
    do {                                                                                      \
        char *got = norm(in);                                                                 \
        cr_expect_str_eq(got, want, "%s", in);                                                \
        free(got);                                                                            \
    } while (0)

Test(image, references_normalize_as_containerd)
{
    NORM("busybox", "docker.io/library/busybox:latest");
    NORM("busybox:1.36", "docker.io/library/busybox:1.36");
    NORM("team/app", "docker.io/team/app:latest");
    NORM("index.docker.io/library/busybox", "docker.io/library/busybox:latest");
    NORM("localhost/app:v1", "localhost/app:v1");
    NORM("localhost:5000/a/b:c", "localhost:5000/a/b:c");
    NORM("ghcr.io/org/img:1.0-rc", "ghcr.io/org/img:1.0-rc");
    const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char in[200], want[200];
    snprintf(in, sizeof in, "busybox@%s", d);
    snprintf(want, sizeof want, "docker.io/library/busybox@%s", d);
    NORM(in, want);
    snprintf(in, sizeof in, "busybox:1@%s", d);
    snprintf(want, sizeof want, "docker.io/library/busybox:1@%s", d);
    NORM(in, want);
}

Test(image, bad_references_say_why)
{
    NORM("Busybox", "image reference Busybox: repository name must be lowercase");
    NORM("busybox@sha256:12", "image reference busybox@sha256:12: digest sha256:12 is not "
                              "sha256:<64 hex digits>");
    NORM("a//b", "image reference a//b: invalid reference format");
    NORM("", "image reference is empty");
    NORM("busybox:-x", "image reference busybox:-x: invalid tag -x");
}

Test(image, default_pull_policy_is_the_kubelets)
{
    cr_expect_str_eq(ty_image_default_pull_policy("busybox"), "Always");
    cr_expect_str_eq(ty_image_default_pull_policy("busybox:latest"), "Always");
    cr_expect_str_eq(ty_image_default_pull_policy("localhost:5000/busybox"), "Always");
    cr_expect_str_eq(ty_image_default_pull_policy("busybox:1.36"), "IfNotPresent");
    cr_expect_str_eq(ty_image_default_pull_policy("localhost:5000/busybox:1"), "IfNotPresent");
    cr_expect_str_eq(ty_image_default_pull_policy("busybox@sha256:00"), "IfNotPresent");
}

Test(image, archive_paths_stay_inside)
{
    cr_expect_null(ty_image_path_unsafe("bin/sh"));
    cr_expect_null(ty_image_path_unsafe("a/..b/c"));
    cr_expect_not_null(ty_image_path_unsafe("../x"));
    cr_expect_not_null(ty_image_path_unsafe("a/../../x"));
    cr_expect_not_null(ty_image_path_unsafe("a/.."));
    cr_expect_not_null(ty_image_path_unsafe("/etc/passwd"));
    cr_expect_not_null(ty_image_path_unsafe(""));
}

Test(image, sha256_matches_known_vectors)
{
    ty_sha256 h;
    char hex[65];
    ty_sha256_init(&h);
    ty_sha256_hex(&h, hex);
    cr_expect_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ty_sha256_init(&h);
    const char *s = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    ty_sha256_update(&h, s, 10);
    ty_sha256_update(&h, s + 10, strlen(s) - 10);
    ty_sha256_hex(&h, hex);
    cr_expect_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static char *merged(const char *ctr, const char *cfg)
{
    json_t *c = json_loads(ctr, 0, NULL), *i = json_loads(cfg, 0, NULL), *out = NULL;
    ty_error err = TY_ERROR_INIT;
    char *s;
    if (ty_rt_oci_command(c, i, &out, &err) < 0) {
        s = err.msg;
        err.msg = NULL;
    } else
        s = json_dumps(out, JSON_COMPACT);
    json_decref(c), json_decref(i), json_decref(out);
    return s;
}

#define MERGE(ctr, cfg, want)                                                                 \
    do {                                                                                      \
        char *got = merged(ctr, cfg);                                                         \
        cr_expect_str_eq(got, want);                                                          \
        free(got);                                                                            \
    } while (0)

Test(image, command_merges_as_kubernetes_does)
{
    const char *img = "{\"Entrypoint\":[\"/ep\"],\"Cmd\":[\"c1\",\"c2\"]}";
    MERGE("{}", img, "[\"/ep\",\"c1\",\"c2\"]");
    MERGE("{\"args\":[\"a\"]}", img, "[\"/ep\",\"a\"]");
    MERGE("{\"command\":[\"/x\"]}", img, "[\"/x\"]");
    MERGE("{\"command\":[\"/x\"],\"args\":[\"a\"]}", img, "[\"/x\",\"a\"]");
    MERGE("{}", "{\"Cmd\":[\"sh\"]}", "[\"sh\"]");
    MERGE("{}", "{}", "no command specified: the image has no Entrypoint or Cmd and the "
                      "container sets no command");
}

static char *user_of(const char *pod, const char *ctr, const char *cfg)
{
    json_t *p = json_loads(pod, 0, NULL), *c = json_loads(ctr, 0, NULL);
    json_t *i = json_loads(cfg, 0, NULL);
    ty_rt_oci_user u;
    ty_error err = TY_ERROR_INIT;
    char *s;
    if (ty_rt_oci_resolve_user(p, c, i, NULL, 0, "p_ns(u)", "c", &u, &err) < 0) {
        s = err.msg;
        err.msg = NULL;
    } else {
        char *g = json_dumps(u.groups, JSON_COMPACT);
        s = ty_asprintf("%u:%u %s", u.uid, u.gid, g);
        free(g);
        json_decref(u.groups);
    }
    json_decref(p), json_decref(c), json_decref(i);
    return s;
}

#define USER(pod, ctr, cfg, want)                                                             \
    do {                                                                                      \
        char *got = user_of(pod, ctr, cfg);                                                   \
        cr_expect_str_eq(got, want);                                                          \
        free(got);                                                                            \
    } while (0)

Test(image, user_merges_and_run_as_non_root_is_checked)
{
    USER("{}", "{}", "{}", "0:0 []");
    USER("{}", "{}", "{\"User\":\"1000:2000\"}", "1000:2000 []");
    USER("{\"securityContext\":{\"runAsUser\":5,\"fsGroup\":7,\"supplementalGroups\":[8]}}",
         "{\"securityContext\":{\"runAsGroup\":6}}", "{\"User\":\"1000\"}", "5:6 [7,8]");
    USER("{}", "{}", "{\"User\":\"nobody\"}",
         "unable to find user nobody: no matching entries in passwd file");
    USER("{\"securityContext\":{\"runAsNonRoot\":true}}", "{}", "{}",
         "container has runAsNonRoot and image will run as root (pod: \"p_ns(u)\", "
         "container: c)");
    USER("{\"securityContext\":{\"runAsNonRoot\":true}}", "{}", "{\"User\":\"app\"}",
         "container has runAsNonRoot and image has non-numeric user (app), cannot verify user "
         "is non-root (pod: \"p_ns(u)\", container: c)");
    USER("{}", "{\"securityContext\":{\"runAsNonRoot\":true,\"runAsUser\":0}}", "{}",
         "container's runAsUser breaks non-root policy (pod: \"p_ns(u)\", container: c)");
    USER("{\"securityContext\":{\"runAsNonRoot\":true}}", "{}", "{\"User\":\"1000\"}",
         "1000:0 []");
}

Test(image, capabilities_follow_add_and_drop)
{
    ty_rt_oci_user u = {.uid = 1000, .gid = 1000, .groups = json_array()};
    json_t *ctr = json_loads("{\"securityContext\":{\"capabilities\":{\"add\":[\"NET_ADMIN\"],"
                             "\"drop\":[\"KILL\"]},\"allowPrivilegeEscalation\":false,"
                             "\"seccompProfile\":{\"type\":\"RuntimeDefault\"}}}",
                             0, NULL);
    json_t *pod = json_object(), *args = json_pack("[s]", "/bin/sh"), *env = json_array();
    ty_rt_oci_in in = {.pod_spec = pod, .ctr_spec = ctr, .user = &u, .args = args, .env = env,
                       .cwd = "/"};
    ty_error err = TY_ERROR_INIT;
    json_t *spec = ty_rt_oci_spec(&in, &err);
    cr_assert_not_null(spec, "%s", err.msg);
    json_t *caps = json_object_get(json_object_get(json_object_get(spec, "process"),
                                                   "capabilities"), "bounding");
    char *s = json_dumps(caps, JSON_COMPACT);
    cr_expect(strstr(s, "CAP_NET_ADMIN") && !strstr(s, "CAP_KILL") && strstr(s, "CAP_CHOWN"),
              "%s", s);
    free(s);
    cr_expect_eq(json_array_size(json_object_get(json_object_get(json_object_get(
                     spec, "process"), "capabilities"), "effective")), 0);
    cr_expect(json_is_true(json_object_get(json_object_get(spec, "process"),
                                           "noNewPrivileges")));
    cr_expect_not_null(json_object_get(json_object_get(spec, "linux"), "seccomp"));
    json_decref(spec), json_decref(ctr), json_decref(pod), json_decref(args), json_decref(env);
    json_decref(u.groups);
}
