/* The user and groups a container runs as: Kubernetes' securityContext, as far as a local
 * runtime can honour it (runAsUser, runAsGroup, fsGroup, supplementalGroups, runAsNonRoot). */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runtime/runtime_int.h"

/* A non-negative integer field, or -1 when absent. */
static long long id_field(const json_t *sc, const char *key)
{
    json_t *v = json_object_get(sc, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? json_integer_value(v) : -1;
}

static bool add_group(ty_rt_identity *id, long long g)
{
    for (int i = 0; i < id->ngroups; i++)
        if (id->groups[i] == (gid_t)g)
            return true;
    if (id->ngroups == (int)(sizeof id->groups / sizeof id->groups[0]))
        return false;
    id->groups[id->ngroups++] = (gid_t)g;
    return true;
}

int ty_rt_identity_plan(const json_t *pod_spec, const json_t *ctr_spec, ty_rt_identity *id,
                        ty_error *err)
{
    memset(id, 0, sizeof *id);
    const json_t *psc = json_object_get(pod_spec, "securityContext");
    const json_t *csc = json_object_get(ctr_spec, "securityContext");
    /* the container's settings win over the pod's */
    long long uid = id_field(csc, "runAsUser"), gid = id_field(csc, "runAsGroup");
    if (uid < 0)
        uid = id_field(psc, "runAsUser");
    if (gid < 0)
        gid = id_field(psc, "runAsGroup");
    long long fs = id_field(psc, "fsGroup");
    const json_t *sup = json_object_get(psc, "supplementalGroups");
    json_t *nonroot = json_object_get(csc, "runAsNonRoot");
    if (!json_is_boolean(nonroot))
        nonroot = json_object_get(psc, "runAsNonRoot");
    bool any = uid >= 0 || gid >= 0 || fs >= 0 || json_array_size(sup) > 0;
    uid_t me = geteuid();
    long long eff_uid = uid >= 0 ? uid : (long long)me;
    if (json_is_true(nonroot) && eff_uid == 0)
        return ty_fail(err, "container has runAsNonRoot and would run as root (uid 0): set "
                       "runAsUser to a non-zero uid");
    if (!any)
        return 0;
    if (me != 0) {
        /* without root nothing can be changed; the same identity is no change */
        if ((uid < 0 || uid == (long long)me) && (gid < 0 || gid == (long long)getegid()) &&
            fs < 0 && json_array_size(sup) == 0)
            return 0;
        return ty_fail(err, "securityContext asks for uid %lld gid %lld%s, which needs "
                       "trainyard to run as root (it runs as uid %u)", eff_uid,
                       gid >= 0 ? gid : (long long)getegid(),
                       fs >= 0 || json_array_size(sup) ? " and extra groups" : "",
                       (unsigned)me);
    }
    if (uid >= 0 && uid > 0x7fffffff)
        return ty_fail(err, "runAsUser %lld is out of range", uid);
    /* No runAsGroup: the user's primary group from this machine's passwd (a container's
     * image would give it), else 0, as container runtimes do. */
    if (gid < 0) {
        struct passwd *pw = uid >= 0 ? getpwuid((uid_t)uid) : NULL;
        gid = pw ? (long long)pw->pw_gid : uid >= 0 ? 0 : (long long)getegid();
    }
    id->set = true;
    id->uid = (uid_t)eff_uid;
    id->gid = (gid_t)gid;
    if (!add_group(id, gid) || (fs >= 0 && !add_group(id, fs)))
        return ty_fail(err, "too many supplemental groups");
    size_t i;
    json_t *g;
    json_array_foreach(sup, i, g) {
        if (!json_is_integer(g) || json_integer_value(g) < 0)
            continue;
        if (!add_group(id, json_integer_value(g)))
            return ty_fail(err, "too many supplemental groups (at most %zu)",
                           sizeof id->groups / sizeof id->groups[0]);
    }
    return 0;
}

int ty_rt_identity_apply(const ty_rt_identity *id, const char **what)
{
    if (!id->set)
        return 0;
    /* groups first: after setuid the process may no longer change them */
    if (setgroups((size_t)id->ngroups, id->groups) < 0) {
        *what = "setgroups";
        return -1;
    }
    if (setgid(id->gid) < 0) {
        *what = "setgid (runAsGroup)";
        return -1;
    }
    if (setuid(id->uid) < 0) {
        *what = "setuid (runAsUser)";
        return -1;
    }
    return 0;
}
