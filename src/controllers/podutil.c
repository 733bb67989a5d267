#include "controllers/podutil.h"

#include <string.h>

#include "base/quantity.h"
#include "base/time.h"
#include "store/store.h"

const char *ty_pod_phase(const json_t *pod)
{
    const char *p = json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
    return p ? p : "Pending";
}

bool ty_pod_terminated(const json_t *pod)
{
    const char *p = ty_pod_phase(pod);
    return strcmp(p, "Succeeded") == 0 || strcmp(p, "Failed") == 0;
}

const json_t *ty_pod_condition(const json_t *pod, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(pod, "status"), "conditions"), i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && strcmp(t, type) == 0)
            return c;
    }
    return NULL;
}

static bool same_string(const json_t *v, const char *s)
{
    const char *x = json_string_value(v);
    if (!x || !s)
        return !x && !s;
    return strcmp(x, s) == 0;
}

ty_pod_set_condition_result ty_pod_set_condition(json_t *pod, const char *type,
                                                 const char *status, const char *reason,
                                                 const char *message)
{
    json_t *st = json_object_get(pod, "status");
    if (!json_is_object(st)) {
        st = json_object();
        json_object_set_new(pod, "status", st);
    }
    bool changed = false;
    if (!json_object_get(st, "phase")) {
        json_object_set_new(st, "phase", json_string("Pending"));
        changed = true;
    }
    json_t *conds = json_object_get(st, "conditions");
    if (!json_is_array(conds)) {
        conds = json_array();
        json_object_set_new(st, "conditions", conds);
    }
    json_t *c = (json_t *)ty_pod_condition(pod, type);
    if (c && same_string(json_object_get(c, "status"), status) &&
        same_string(json_object_get(c, "reason"), reason) &&
        same_string(json_object_get(c, "message"), message))
        return changed ? TY_POD_CONDITION_CHANGED : TY_POD_CONDITION_UNCHANGED;
    char now[40];
    ty_time_format_rfc3339(ty_time_now_ns(), now, sizeof now, 0);
    if (!c) {
        c = json_object();
        json_array_append_new(conds, c);
        json_object_set_new(c, "type", json_string(type));
    }
    if (!same_string(json_object_get(c, "status"), status))
        json_object_set_new(c, "lastTransitionTime", json_string(now));
    json_object_set_new(c, "status", json_string(status));
    json_object_set_new(c, "lastProbeTime", json_null());
    if (reason)
        json_object_set_new(c, "reason", json_string(reason));
    else
        json_object_del(c, "reason");
    if (message)
        json_object_set_new(c, "message", json_string(message));
    else
        json_object_del(c, "message");
    return TY_POD_CONDITION_CHANGED;
}

static bool quantity_equal(const json_t *a, const json_t *b)
{
    ty_quantity x, y;
    return a && b && ty_quantity_from_json(a, &x, NULL) == 0 &&
           ty_quantity_from_json(b, &y, NULL) == 0 && x.milli == y.milli;
}

const char *ty_pod_qos_class(const json_t *pod)
{
    static const char *const names[] = {"cpu", "memory"};
    bool any = false, guaranteed = true;
    const char *lists[] = {"initContainers", "containers"};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(json_object_get(pod, "spec"), lists[l]), i, c)
        {
            json_t *res = json_object_get(c, "resources");
            json_t *req = json_object_get(res, "requests"), *lim = json_object_get(res, "limits");
            for (int r = 0; r < 2; r++) {
                json_t *rq = json_object_get(req, names[r]), *lm = json_object_get(lim, names[r]);
                if (rq || lm)
                    any = true;
                /* A request left out defaults to the limit. */
                if (!lm || (rq && !quantity_equal(rq, lm)))
                    guaranteed = false;
            }
        }
    }
    if (!any)
        return "BestEffort";
    return guaranteed ? "Guaranteed" : "Burstable";
}

bool ty_job_finished(const json_t *job, bool *ok)
{
    bool good = ty_obj_condition_true(job, "Succeeded") || ty_obj_condition_true(job, "Complete");
    if (ok)
        *ok = good;
    return good || ty_obj_condition_true(job, "Failed");
}
