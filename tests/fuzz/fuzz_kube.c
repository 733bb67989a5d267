/* libFuzzer target for what the Kubernetes client reads from outside: watch streams (framing,
 * split at every point of the input), ExecCredentials from exec plugins, Retry-After headers,
 * and kubeconfig files. The first byte picks which. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/mem.h"
#include "kube/kube_int.h"
#include "kube/kubeconfig.h"
#include "kube/retry.h"

static bool count(const char *type, json_t *obj, void *arg)
{
    (void)type;
    (void)obj;
    (*(size_t *)arg)++;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    char *s = ty_strndup(text, len);
    switch (data[0] % 4) {
    case 0: {
        /* The same events whatever the chunking: all at once, or in two parts. */
        size_t whole = 0, parts = 0;
        size_t used = ty_kube_watch_frames(text, len, count, &whole);
        if (used > len)
            abort();
        size_t cut = len / 2;
        size_t u1 = ty_kube_watch_frames(text, cut, count, &parts);
        ty_kube_watch_frames(text + u1, len - u1, count, &parts);
        if (whole != parts)
            abort();
        break;
    }
    case 1: {
        ty_kube_exec ex = {.command = "plugin", .api_version = "client.authentication.k8s.io/v1"};
        ty_kube_config c = {.exec = &ex};
        ty_error err = TY_ERROR_INIT;
        ty_kube_exec_credential_parse(&c, "plugin", text, len, &err);
        ty_error_clear(&err);
        c.exec = NULL;
        free(c.cached_token);
        free(c.exec_cert.data);
        free(c.exec_key.data);
        break;
    }
    case 2: {
        int64_t d = ty_kube_retry_after_s(s, 1445412480, 3600);
        if (d < -1 || d > 3600)
            abort();
        break;
    }
    case 3: {
        int fd = memfd_create("kubeconfig", 0);
        if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
            if (fd >= 0)
                close(fd);
            break;
        }
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ty_kube_config_opts o = {.kubeconfig = path};
        ty_kube_config *c = NULL;
        ty_error err = TY_ERROR_INIT;
        ty_kube_config_load(&o, &c, &err);
        ty_kube_config_free(c);
        ty_error_clear(&err);
        close(fd);
        break;
    }
    }
    free(s);
    return 0;
}
