/* How pods of a Kubeflow job failed, for the job's messages and its restart back-off.
 * See controllers_int.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/time.h"
#include "controllers/controllers_int.h"
#include "controllers/podconfig.h"

static int64_t backoff_base_ns = 10LL * 1000000000LL;

void ty_kubeflow_set_restart_backoff(int64_t base_ms)
{
    backoff_base_ns = base_ms > 0 ? base_ms * 1000000LL : 10LL * 1000000000LL;
}

int64_t ty_kf_restart_delay_ns(int64_t exp)
{
    int64_t cap = backoff_base_ns * 30, d = backoff_base_ns;
    for (int64_t i = 0; i < exp && d < cap; i++)
        d *= 2;
    return d < cap ? d : cap;
}

int64_t ty_kf_backoff_reset_ns(void)
{
    return backoff_base_ns * 60;
}

static int64_t time_at(const json_t *obj, const char *key)
{
    int64_t t = 0;
    const char *s = ty_kf_str(obj, key);
    return *s && ty_time_parse_rfc3339(s, &t) == 0 ? t : 0;
}

/* A container state that tells of a failure: terminated badly, or waiting for a reason that
 * is not the normal way to start. */
static bool bad_terminated(const json_t *term)
{
    return json_is_object(term) &&
           (json_integer_value(json_object_get(term, "exitCode")) != 0 ||
            strcmp(ty_kf_str(term, "reason"), "StartError") == 0);
}

static bool bad_waiting(const json_t *w)
{
    const char *r = ty_kf_str(w, "reason");
    return json_is_object(w) && *r && strcmp(r, "ContainerCreating") != 0 &&
           strcmp(r, "PodInitializing") != 0 && strcmp(r, "CrashLoopBackOff") != 0;
}

char *ty_kf_failure_cause(const json_t *pod, bool *detailed, int64_t *when_ns)
{
    const json_t *st = json_object_get(pod, "status");
    const char *pname = ty_kf_str(json_object_get(pod, "metadata"), "name");
    const json_t *best = NULL, *best_cs = NULL;
    bool best_waiting = false;
    int64_t best_t = -1;
    const char *lists[] = {"initContainerStatuses", "containerStatuses"};
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        const json_t *cs;
        json_array_foreach(json_object_get(st, lists[l]), i, cs) {
            const json_t *state = json_object_get(cs, "state");
            const json_t *term = json_object_get(state, "terminated");
            const json_t *last = json_object_get(json_object_get(cs, "lastState"), "terminated");
            const json_t *w = json_object_get(state, "waiting");
            const json_t *pick = NULL;
            bool waiting = false;
            if (bad_waiting(w))
                pick = w, waiting = true;
            else if (bad_terminated(term))
                pick = term;
            else if (bad_terminated(last))
                pick = last;
            if (!pick)
                continue;
            /* A container that cannot start at all outranks any exit. */
            int64_t t = waiting ? INT64_MAX : time_at(pick, "finishedAt");
            if (t > best_t)
                best = pick, best_cs = cs, best_t = t, best_waiting = waiting;
        }
    }
    if (detailed)
        *detailed = false;
    if (when_ns)
        *when_ns = best_t > 0 && best_t != INT64_MAX ? best_t : 0;
    if (best) {
        const char *msg = ty_kf_str(best, "message");
        if (detailed)
            *detailed = *msg != '\0';
        TY_AUTOFREE char *code =
            best_waiting ? ty_strdup("")
                         : ty_asprintf(" (exit code %lld)",
                                       (long long)json_integer_value(
                                           json_object_get(best, "exitCode")));
        const char *reason = ty_kf_str(best, "reason");
        return ty_asprintf("pod %s, container %s: %s%s%s%s", pname, ty_kf_str(best_cs, "name"),
                           *reason ? reason : "Error", code, *msg ? ": " : "", msg);
    }
    const char *reason = ty_kf_str(st, "reason"), *msg = ty_kf_str(st, "message");
    if (strcmp(ty_kf_str(st, "phase"), "Failed") != 0 || (!*reason && !*msg))
        return NULL;
    if (detailed)
        *detailed = *msg != '\0';
    return ty_asprintf("pod %s: %s%s%s", pname, *reason ? reason : "Failed", *msg ? ": " : "",
                       msg);
}

const char *ty_kf_config_error(const json_t *pod)
{
    const json_t *st = json_object_get(pod, "status");
    const char *lists[] = {"initContainerStatuses", "containerStatuses"};
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        const json_t *cs;
        json_array_foreach(json_object_get(st, lists[l]), i, cs) {
            const json_t *w = json_object_get(json_object_get(cs, "state"), "waiting");
            /* the shim never retries these: the spec or the image store would have to change
             * (an image not there under pullPolicy Never, or --require-images with nothing
             * to pull it with); a failed pull is retried (ImagePullBackOff) and is not one */
            const char *r = ty_kf_str(w, "reason");
            /* a missing ConfigMap or Secret is waited for, as on a cluster */
            if (strcmp(r, "CreateContainerConfigError") == 0 &&
                ty_podconfig_is_wait(ty_kf_str(w, "message")))
                continue;
            if (strcmp(r, "CreateContainerConfigError") == 0 ||
                strcmp(r, "ErrImageNeverPull") == 0 ||
                (strcmp(r, "ErrImagePull") == 0 &&
                 strstr(ty_kf_str(w, "message"), "(--require-images)")))
                return *ty_kf_str(w, "message") ? ty_kf_str(w, "message") : r;
        }
    }
    return NULL;
}

int64_t ty_kf_failed_at(const json_t *pod, int64_t *ran_ns)
{
    const json_t *st = json_object_get(pod, "status");
    int64_t at = time_at(json_object_get(pod, "metadata"), "creationTimestamp");
    const char *lists[] = {"initContainerStatuses", "containerStatuses"};
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        const json_t *cs;
        json_array_foreach(json_object_get(st, lists[l]), i, cs) {
            int64_t t = time_at(json_object_get(json_object_get(cs, "state"), "terminated"),
                                "finishedAt");
            if (t > at)
                at = t;
        }
    }
    /* Kubernetes' timestamps have whole seconds: the end may be up to a second later than
     * written, and the back-off must not be cut short by it. */
    if (at > 0 && at % 1000000000LL == 0)
        at += 1000000000LL - 1;
    int64_t start = time_at(st, "startTime");
    *ran_ns = start > 0 && at > start ? at - start : 0;
    return at;
}
