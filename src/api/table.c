/* meta.k8s.io/v1 Tables for kubectl get (table.h): the columns and cell texts kubectl's
 * server-side printers produce, written from their documented behaviour. The server prints
 * every column (wide ones carry priority 1); kubectl hides priority > 0 unless -o wide. */
#include "api/table.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/kinds.h"
#include "api/api_int.h"
#include "base/buf.h"
#include "base/jsontext.h"
#include "base/mem.h"
#include "base/time.h"

typedef struct column {
    const char *name;
    const char *type;
    const char *format;
    const char *description;
    int priority;
    /* The JSONPath a CRD's additionalPrinterColumns gives the column (ty_table_crd_columns),
     * as the upstream CRD declares it; NULL for Name (a CRD always prints it) and for the
     * columns only our printer can compute. */
    const char *json_path;
} column;

typedef void (*row_fn)(json_t *cells, json_t *row, const json_t *obj, int64_t now_ns);

/* A kind's printer; its registry entry points at it (ty_kind_info.table). */
struct ty_table_kind {
    const column *cols;
    row_fn row;
    /* What its cells read, as paths ("metadata.name"; "status.conditions.-1.type": the type
     * of the last condition, which the row then finds as the only one); NULL: anything */
    const char *const *members;
};
typedef struct ty_table_kind printer;

/* ---- helpers ---- */

static const char *str(const json_t *o, const char *path)
{
    const json_t *v = o;
    const char *p = path;
    while (v && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        v = json_object_getn(v, p, n);
        p += n + (dot ? 1 : 0);
    }
    return json_string_value(v);
}

static const json_t *get(const json_t *o, const char *path)
{
    const json_t *v = o;
    const char *p = path;
    while (v && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        v = json_object_getn(v, p, n);
        p += n + (dot ? 1 : 0);
    }
    return v;
}

static const char *or(const char *s, const char *dflt) { return s && *s ? s : dflt; }

/* kubectl's translateTimestampSince: "<unknown>" for a missing or unparsable time. */
static json_t *age_of(const char *ts, int64_t now_ns)
{
    int64_t t;
    if (!ts || ty_time_parse_rfc3339(ts, &t) < 0)
        return json_string("<unknown>");
    char buf[32];
    return json_string(ty_time_format_age(now_ns - t, buf, sizeof(buf)));
}

static void add_s(json_t *cells, const char *s) { json_array_append_new(cells, json_string(s)); }

/* ---- pods ---- */

static const column pod_cols[] = {
    {"Name", "string", "name", "Name of the object, unique in its namespace.", 0},
    {"Ready", "string", "", "Ready containers out of all containers.", 0},
    {"Status", "string", "", "The aggregate state of the pod's containers.", 0},
    {"Restarts", "string", "", "Container restarts, with the time of the last.", 0},
    {"Age", "string", "", "Time since the object was created.", 0},
    {"IP", "string", "", "The pod's IP address.", 1},
    {"Node", "string", "", "The node the pod is bound to.", 1},
    {"Nominated Node", "string", "", "The node the scheduler nominated for the pod.", 1},
    {"Readiness Gates", "string", "", "True readiness gates out of all of them.", 1},
    {0},
};

/* restartPolicy Always on an init container makes it a sidecar, counted with the app
 * containers. */
static bool restartable_init(const json_t *pod, const char *name)
{
    const json_t *ics = get(pod, "spec.initContainers");
    for (size_t i = 0; i < json_array_size(ics); i++) {
        const json_t *c = json_array_get(ics, i);
        if (name && strcmp(or(str(c, "name"), ""), name) == 0)
            return strcmp(or(str(c, "restartPolicy"), ""), "Always") == 0;
    }
    return false;
}

static bool condition_true(const json_t *pod, const char *type)
{
    const json_t *cs = get(pod, "status.conditions");
    for (size_t i = 0; i < json_array_size(cs); i++) {
        const json_t *c = json_array_get(cs, i);
        if (strcmp(or(str(c, "type"), ""), type) == 0)
            return strcmp(or(str(c, "status"), ""), "True") == 0;
    }
    return false;
}

static bool has_condition(const json_t *pod, const char *type)
{
    const json_t *cs = get(pod, "status.conditions");
    for (size_t i = 0; i < json_array_size(cs); i++)
        if (strcmp(or(str(json_array_get(cs, i), "type"), ""), type) == 0)
            return true;
    return false;
}

/* Tracks the latest lastState.terminated.finishedAt of a container into *latest. */
static void last_restart(const json_t *cs, int64_t *latest)
{
    int64_t t;
    const char *f = str(cs, "lastState.terminated.finishedAt");
    if (f && ty_time_parse_rfc3339(f, &t) == 0 && t > *latest)
        *latest = t;
}

static int64_t int_of(const json_t *o, const char *path)
{
    const json_t *v = get(o, path);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

static bool is_true(const json_t *o, const char *path) { return json_is_true(get(o, path)); }

static void pod_row(json_t *cells, json_t *row, const json_t *pod, int64_t now_ns)
{
    char reason[160];
    const char *phase = or(str(pod, "status.phase"), "");
    snprintf(reason, sizeof(reason), "%s", or(str(pod, "status.reason"), phase));
    const json_t *conds = get(pod, "status.conditions");
    for (size_t i = 0; i < json_array_size(conds); i++) {
        const json_t *c = json_array_get(conds, i);
        if (strcmp(or(str(c, "type"), ""), "PodScheduled") == 0 &&
            strcmp(or(str(c, "reason"), ""), "SchedulingGated") == 0)
            snprintf(reason, sizeof(reason), "SchedulingGated");
    }
    if (strcmp(phase, "Succeeded") == 0)
        json_object_set_new(row, "conditions",
                            json_pack("[{s:s, s:s, s:s, s:s}]", "type", "Completed", "status",
                                      "True", "reason", "Succeeded", "message",
                                      "The pod has completed successfully."));
    else if (strcmp(phase, "Failed") == 0)
        json_object_set_new(row, "conditions",
                            json_pack("[{s:s, s:s, s:s, s:s}]", "type", "Completed", "status",
                                      "True", "reason", "Failed", "message", "The pod failed."));

    const json_t *ics = get(pod, "spec.initContainers");
    size_t ninit = json_array_size(ics);
    int64_t total = (int64_t)json_array_size(get(pod, "spec.containers"));
    for (size_t i = 0; i < ninit; i++)
        if (strcmp(or(str(json_array_get(ics, i), "restartPolicy"), ""), "Always") == 0)
            total++;

    int64_t restarts = 0, sidecar_restarts = 0, ready = 0;
    int64_t last = 0, sidecar_last = 0;
    bool initializing = false;
    const json_t *ists = get(pod, "status.initContainerStatuses");
    for (size_t i = 0; i < json_array_size(ists); i++) {
        const json_t *cs = json_array_get(ists, i);
        bool sidecar = restartable_init(pod, str(cs, "name"));
        restarts += int_of(cs, "restartCount");
        last_restart(cs, &last);
        if (sidecar) {
            sidecar_restarts += int_of(cs, "restartCount");
            last_restart(cs, &sidecar_last);
        }
        const json_t *term = get(cs, "state.terminated");
        const char *waiting = str(cs, "state.waiting.reason");
        if (term && int_of(term, "exitCode") == 0)
            continue;
        if (sidecar && is_true(cs, "started")) {
            if (is_true(cs, "ready"))
                ready++;
            continue;
        }
        initializing = true;
        if (term) {
            const char *r = str(term, "reason");
            if (r && *r)
                snprintf(reason, sizeof(reason), "Init:%s", r);
            else if (int_of(term, "signal"))
                snprintf(reason, sizeof(reason), "Init:Signal:%lld",
                         (long long)int_of(term, "signal"));
            else
                snprintf(reason, sizeof(reason), "Init:ExitCode:%lld",
                         (long long)int_of(term, "exitCode"));
        } else if (waiting && *waiting && strcmp(waiting, "PodInitializing") != 0) {
            snprintf(reason, sizeof(reason), "Init:%s", waiting);
        } else {
            snprintf(reason, sizeof(reason), "Init:%zu/%zu", i, ninit);
        }
        break;
    }

    if (!initializing || condition_true(pod, "Initialized")) {
        restarts = sidecar_restarts;
        last = sidecar_last;
        bool running = false;
        const json_t *sts = get(pod, "status.containerStatuses");
        /* Backwards, so the first container's state is the one that shows. */
        for (size_t j = json_array_size(sts); j-- > 0;) {
            const json_t *cs = json_array_get(sts, j);
            restarts += int_of(cs, "restartCount");
            last_restart(cs, &last);
            const char *waiting = str(cs, "state.waiting.reason");
            const json_t *term = get(cs, "state.terminated");
            if (waiting && *waiting) {
                snprintf(reason, sizeof(reason), "%s", waiting);
            } else if (term && str(term, "reason") && *str(term, "reason")) {
                snprintf(reason, sizeof(reason), "%s", str(term, "reason"));
            } else if (term) {
                if (int_of(term, "signal"))
                    snprintf(reason, sizeof(reason), "Signal:%lld",
                             (long long)int_of(term, "signal"));
                else
                    snprintf(reason, sizeof(reason), "ExitCode:%lld",
                             (long long)int_of(term, "exitCode"));
            } else if (is_true(cs, "ready") && get(cs, "state.running")) {
                running = true;
                ready++;
            }
        }
        if (strcmp(reason, "Completed") == 0 && running)
            snprintf(reason, sizeof(reason), "%s",
                     has_condition(pod, "Ready") ? "Running" : "NotReady");
    }

    bool deleting = str(pod, "metadata.deletionTimestamp") != NULL;
    bool terminal = strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0;
    if (deleting && strcmp(or(str(pod, "status.reason"), ""), "NodeLost") == 0)
        snprintf(reason, sizeof(reason), "Unknown");
    else if (deleting && !terminal)
        snprintf(reason, sizeof(reason), "Terminating");

    char buf[96];
    add_s(cells, or(str(pod, "metadata.name"), ""));
    snprintf(buf, sizeof(buf), "%lld/%lld", (long long)ready, (long long)total);
    add_s(cells, buf);
    add_s(cells, reason);
    if (restarts != 0 && last != 0) {
        char age[32];
        snprintf(buf, sizeof(buf), "%lld (%s ago)", (long long)restarts,
                 ty_time_format_age(now_ns - last, age, sizeof(age)));
    } else {
        snprintf(buf, sizeof(buf), "%lld", (long long)restarts);
    }
    add_s(cells, buf);
    json_array_append_new(cells, age_of(str(pod, "metadata.creationTimestamp"), now_ns));

    const char *ip = str(json_array_get(get(pod, "status.podIPs"), 0), "ip");
    add_s(cells, or(ip ? ip : str(pod, "status.podIP"), "<none>"));
    add_s(cells, or(str(pod, "spec.nodeName"), "<none>"));
    add_s(cells, or(str(pod, "status.nominatedNodeName"), "<none>"));
    const json_t *gates = get(pod, "spec.readinessGates");
    if (json_array_size(gates) == 0) {
        add_s(cells, "<none>");
    } else {
        size_t t = 0;
        for (size_t i = 0; i < json_array_size(gates); i++)
            t += condition_true(pod, or(str(json_array_get(gates, i), "conditionType"), ""));
        snprintf(buf, sizeof(buf), "%zu/%zu", t, json_array_size(gates));
        add_s(cells, buf);
    }
}

/* ---- jobs: the Kubeflow CRDs' printer columns ---- */

static const column job_cols[] = {
    {"Name", "string", "name", "Name of the object, unique in its namespace.", 0},
    {"State", "string", "", "The type of the job's last condition.", 0,
     ".status.conditions[-1:].type"},
    {"Age", "date", "", "Time since the object was created.", 0, ".metadata.creationTimestamp"},
    {0},
};

static void job_row(json_t *cells, json_t *row, const json_t *job, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(job, "metadata.name"), ""));
    const json_t *conds = get(job, "status.conditions");
    size_t n = json_array_size(conds);
    /* A job without conditions yet shows an empty State, as kubectl prints a CRD printer
     * column whose JSONPath finds nothing. */
    add_s(cells, n ? or(str(json_array_get(conds, n - 1), "type"), "") : "");
    json_array_append_new(cells, age_of(str(job, "metadata.creationTimestamp"), now_ns));
}

/* ---- services ---- */


static const column svc_cols[] = {
    {"Name", "string", "name", "Name of the object, unique in its namespace.", 0},
    {"Type", "string", "", "How the service is exposed.", 0},
    {"Cluster-IP", "string", "", "The service's cluster IP.", 0},
    {"External-IP", "string", "", "External addresses of the service.", 0},
    {"Port(s)", "string", "", "The service's ports.", 0},
    {"Age", "string", "", "Time since the object was created.", 0},
    {"Selector", "string", "", "The labels of the pods the service routes to.", 1},
    {0},
};

static void join_strings(ty_buf *b, const json_t *arr, const char *field)
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *e = json_array_get(arr, i);
        const char *s = field ? str(e, field) : json_string_value(e);
        if (!s || !*s)
            continue;
        if (b->len)
            ty_buf_addc(b, ',');
        ty_buf_adds(b, s);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ---- batch/v1 Jobs (kubectl 1.28+'s columns) ---- */

static const column batch_job_cols[] = {
    {"Name", "string", "name", "Name of the object, unique in its namespace.", 0},
    {"Status", "string", "", "Status of the job.", 0},
    {"Completions", "string", "", "The number of pods which reached phase Succeeded.", 0},
    {"Duration", "string", "", "Time required to complete the job.", 0},
    {"Age", "string", "", "Time since the object was created.", 0},
    {"Containers", "string", "", "Names of each container in the template.", 1},
    {"Images", "string", "", "Images referenced by each container in the template.", 1},
    {"Selector", "string", "", "A label query over pods that should match the pod count.", 1},
    {0},
};



static void batch_job_row(json_t *cells, json_t *row, const json_t *job, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(job, "metadata.name"), ""));
    /* kubectl's printJob: the first of these conditions that is true names the status. */
    static const char *const order[] = {"Complete", "Failed", NULL, "SuccessCriteriaMet",
                                        "Suspended", "FailureTarget"};
    const char *status = "Running";
    for (size_t i = 0; i < TY_ARRAY_LEN(order); i++) {
        if (!order[i] ? get(job, "metadata.deletionTimestamp") != NULL
                      : condition_true(job, order[i])) {
            status = order[i] ? order[i] : "Terminating";
            break;
        }
    }
    add_s(cells, status);
    char buf[64];
    int64_t succeeded = int_of(job, "status.succeeded");
    const json_t *completions = get(job, "spec.completions");
    int64_t parallelism = int_of(job, "spec.parallelism");
    if (json_is_integer(completions))
        snprintf(buf, sizeof buf, "%lld/%lld", (long long)succeeded,
                 (long long)json_integer_value(completions));
    else if (parallelism > 1)
        snprintf(buf, sizeof buf, "%lld/1 of %lld", (long long)succeeded, (long long)parallelism);
    else
        snprintf(buf, sizeof buf, "%lld/1", (long long)succeeded);
    add_s(cells, buf);
    int64_t start, end = now_ns;
    const char *st = str(job, "status.startTime"), *ct = str(job, "status.completionTime");
    if (st && ty_time_parse_rfc3339(st, &start) == 0 &&
        (!ct || ty_time_parse_rfc3339(ct, &end) == 0))
        add_s(cells, ty_time_format_age(end - start, buf, sizeof buf));
    else
        add_s(cells, "");
    json_array_append_new(cells, age_of(str(job, "metadata.creationTimestamp"), now_ns));
    TY_AUTOBUF ty_buf names = TY_BUF_INIT, images = TY_BUF_INIT, sel = TY_BUF_INIT;
    join_strings(&names, get(job, "spec.template.spec.containers"), "name");
    join_strings(&images, get(job, "spec.template.spec.containers"), "image");
    add_s(cells, names.len ? names.data : "");
    add_s(cells, images.len ? images.data : "");
    const json_t *ml = get(job, "spec.selector.matchLabels");
    size_t n = json_object_size(ml), k = 0;
    const char **keys = ty_calloc(n + 1, sizeof *keys);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)ml, key, v) keys[k++] = key;
    qsort(keys, k, sizeof *keys, cmp_str);
    for (size_t i = 0; i < k; i++)
        ty_buf_addf(&sel, "%s%s=%s", i ? "," : "", keys[i],
                    or(json_string_value(json_object_get(ml, keys[i])), ""));
    free(keys);
    add_s(cells, sel.len ? sel.data : "<none>");
}

static void svc_row(json_t *cells, json_t *row, const json_t *svc, int64_t now_ns)
{
    (void)row;
    const char *type = or(str(svc, "spec.type"), "ClusterIP");
    add_s(cells, or(str(svc, "metadata.name"), ""));
    add_s(cells, type);
    add_s(cells, or(str(svc, "spec.clusterIP"), "<none>"));

    TY_AUTOBUF ty_buf ext = TY_BUF_INIT;
    if (strcmp(type, "ExternalName") == 0) {
        ty_buf_adds(&ext, or(str(svc, "spec.externalName"), ""));
    } else if (strcmp(type, "LoadBalancer") == 0) {
        join_strings(&ext, get(svc, "status.loadBalancer.ingress"), "ip");
        join_strings(&ext, get(svc, "status.loadBalancer.ingress"), "hostname");
        join_strings(&ext, get(svc, "spec.externalIPs"), NULL);
        if (!ext.len)
            ty_buf_adds(&ext, "<pending>");
    } else {
        join_strings(&ext, get(svc, "spec.externalIPs"), NULL);
    }
    add_s(cells, ext.len ? ext.data : "<none>");

    TY_AUTOBUF ty_buf ports = TY_BUF_INIT;
    const json_t *ps = get(svc, "spec.ports");
    for (size_t i = 0; i < json_array_size(ps); i++) {
        const json_t *p = json_array_get(ps, i);
        if (ports.len)
            ty_buf_addc(&ports, ',');
        ty_buf_addf(&ports, "%lld", (long long)int_of(p, "port"));
        if (int_of(p, "nodePort"))
            ty_buf_addf(&ports, ":%lld", (long long)int_of(p, "nodePort"));
        ty_buf_addf(&ports, "/%s", or(str(p, "protocol"), "TCP"));
    }
    add_s(cells, ports.len ? ports.data : "<none>");
    json_array_append_new(cells, age_of(str(svc, "metadata.creationTimestamp"), now_ns));

    /* Sorted k=v pairs, as labels.FormatLabels prints a selector. */
    const json_t *sel = get(svc, "spec.selector");
    size_t n = json_object_size(sel);
    if (!n) {
        add_s(cells, "<none>");
        return;
    }
    const char **keys = ty_malloc(n * sizeof(char *));
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)sel, key, v) keys[k++] = key;
    qsort(keys, n, sizeof(char *), cmp_str);
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    for (size_t i = 0; i < n; i++)
        ty_buf_addf(&b, "%s%s=%s", i ? "," : "", keys[i],
                    or(json_string_value(json_object_get(sel, keys[i])), ""));
    free(keys);
    add_s(cells, b.data);
}

/* ---- nodes ---- */

static const column node_cols[] = {
    {"Name", "string", "name", "Name of the object.", 0},
    {"Status", "string", "", "The node's readiness and schedulability.", 0},
    {"Roles", "string", "", "The node's roles (node-role.kubernetes.io labels).", 0},
    {"Age", "string", "", "Time since the object was created.", 0},
    {"Version", "string", "", "The node agent's version.", 0},
    {"Internal-IP", "string", "", "The node's internal address.", 1},
    {"External-IP", "string", "", "The node's external address.", 1},
    {"OS-Image", "string", "", "The node's operating system.", 1},
    {"Kernel-Version", "string", "", "The node's kernel version.", 1},
    {"Container-Runtime", "string", "", "The node's container runtime.", 1},
    {0},
};

static const char *node_address(const json_t *node, const char *type)
{
    const json_t *as = get(node, "status.addresses");
    for (size_t i = 0; i < json_array_size(as); i++)
        if (strcmp(or(str(json_array_get(as, i), "type"), ""), type) == 0)
            return str(json_array_get(as, i), "address");
    return NULL;
}

static void node_row(json_t *cells, json_t *row, const json_t *node, int64_t now_ns)
{
    (void)row;
    TY_AUTOBUF ty_buf status = TY_BUF_INIT;
    const json_t *conds = get(node, "status.conditions");
    for (size_t i = 0; i < json_array_size(conds); i++) {
        const json_t *c = json_array_get(conds, i);
        if (strcmp(or(str(c, "type"), ""), "Ready") == 0) {
            ty_buf_reset(&status);
            ty_buf_adds(&status, strcmp(or(str(c, "status"), ""), "True") == 0 ? "Ready"
                                                                                : "NotReady");
        }
    }
    if (!status.len)
        ty_buf_adds(&status, "Unknown");
    if (is_true(node, "spec.unschedulable"))
        ty_buf_adds(&status, ",SchedulingDisabled");

    /* Roles from node-role.kubernetes.io/<role> labels and kubernetes.io/role, sorted. */
    const json_t *labels = get(node, "metadata.labels");
    const char **roles = ty_malloc((json_object_size(labels) + 1) * sizeof(char *));
    size_t nr = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)labels, k, v) {
        if (strncmp(k, "node-role.kubernetes.io/", 24) == 0 && k[24])
            roles[nr++] = k + 24;
        else if (strcmp(k, "kubernetes.io/role") == 0 && json_string_value(v) &&
                 *json_string_value(v))
            roles[nr++] = json_string_value(v);
    }
    qsort(roles, nr, sizeof(char *), cmp_str);
    TY_AUTOBUF ty_buf rb = TY_BUF_INIT;
    for (size_t i = 0; i < nr; i++)
        if (i == 0 || strcmp(roles[i], roles[i - 1]) != 0)
            ty_buf_addf(&rb, "%s%s", rb.len ? "," : "", roles[i]);
    free(roles);

    add_s(cells, or(str(node, "metadata.name"), ""));
    add_s(cells, status.data);
    add_s(cells, rb.len ? rb.data : "<none>");
    json_array_append_new(cells, age_of(str(node, "metadata.creationTimestamp"), now_ns));
    add_s(cells, or(str(node, "status.nodeInfo.kubeletVersion"), ""));
    add_s(cells, or(node_address(node, "InternalIP"), "<none>"));
    add_s(cells, or(node_address(node, "ExternalIP"), "<none>"));
    add_s(cells, or(str(node, "status.nodeInfo.osImage"), "<unknown>"));
    add_s(cells, or(str(node, "status.nodeInfo.kernelVersion"), "<unknown>"));
    add_s(cells, or(str(node, "status.nodeInfo.containerRuntimeVersion"), "<unknown>"));
}

/* ---- namespaces ---- */

static const column ns_cols[] = {
    {"Name", "string", "name", "Name of the object.", 0},
    {"Status", "string", "", "The phase of the namespace.", 0},
    {"Age", "string", "", "Time since the object was created.", 0},
    {0},
};

static void ns_row(json_t *cells, json_t *row, const json_t *ns, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(ns, "metadata.name"), ""));
    add_s(cells, or(str(ns, "status.phase"), ""));
    json_array_append_new(cells, age_of(str(ns, "metadata.creationTimestamp"), now_ns));
}

/* ---- events ---- */

static const column event_cols[] = {
    {"Last Seen", "string", "", "Time since the event was last seen.", 0},
    {"Type", "string", "", "Normal or Warning.", 0},
    {"Reason", "string", "", "Why the event happened, in CamelCase.", 0},
    {"Object", "string", "", "The object the event is about.", 0},
    {"Subobject", "string", "", "The part of the object the event is about.", 1},
    {"Source", "string", "", "The component that reported the event.", 1},
    {"Message", "string", "", "What happened.", 0},
    {"First Seen", "string", "", "Time since the event was first seen.", 1},
    {"Count", "integer", "", "How often the event happened.", 1},
    {"Name", "string", "name", "Name of the object.", 1},
    {0},
};

static void event_row(json_t *cells, json_t *row, const json_t *ev, int64_t now_ns)
{
    (void)row;
    const char *first_ts = str(ev, "firstTimestamp");
    if (!first_ts || !*first_ts)
        first_ts = str(ev, "eventTime");
    const char *last_ts = str(ev, "lastTimestamp");
    if (!last_ts || !*last_ts)
        last_ts = first_ts;
    int64_t count = int_of(ev, "count");
    if (get(ev, "series")) {
        last_ts = str(ev, "series.lastObservedTime");
        count = int_of(ev, "series.count");
    } else if (count == 0) {
        count = 1;
    }
    /* kind in lower case, then /name when there is one */
    TY_AUTOBUF ty_buf target = TY_BUF_INIT;
    for (const char *c = or(str(ev, "involvedObject.kind"), ""); *c; c++)
        ty_buf_addc(&target, (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c));
    const char *name = str(ev, "involvedObject.name");
    if (name && *name)
        ty_buf_addf(&target, "/%s", name);

    /* source: component, then ", host" */
    TY_AUTOBUF ty_buf source = TY_BUF_INIT;
    const char *comp = str(ev, "source.component"), *host = str(ev, "source.host");
    if (!comp || !*comp) {
        comp = str(ev, "reportingComponent");
        host = str(ev, "reportingInstance");
    }
    ty_buf_adds(&source, or(comp, ""));
    if (host && *host)
        ty_buf_addf(&source, ", %s", host);

    /* the message without surrounding white space */
    const char *msg = or(str(ev, "message"), "");
    while (*msg == ' ' || *msg == '\n' || *msg == '\t')
        msg++;
    size_t mlen = strlen(msg);
    while (mlen && (msg[mlen - 1] == ' ' || msg[mlen - 1] == '\n' || msg[mlen - 1] == '\t'))
        mlen--;

    json_array_append_new(cells, age_of(last_ts, now_ns));
    add_s(cells, or(str(ev, "type"), ""));
    add_s(cells, or(str(ev, "reason"), ""));
    add_s(cells, target.data);
    add_s(cells, or(str(ev, "involvedObject.fieldPath"), ""));
    add_s(cells, source.data);
    json_array_append_new(cells, json_stringn(msg, mlen));
    json_array_append_new(cells, age_of(first_ts, now_ns));
    json_array_append_new(cells, json_integer(count));
    add_s(cells, or(str(ev, "metadata.name"), ""));
}

/* ---- Kueue (the CRDs' additionalPrinterColumns, then Age) and PriorityClass ---- */

/* A CRD column's cell: the value at the path, or null (kubectl prints <none>) when absent. */
static json_t *cell(const json_t *o, const char *path)
{
    const json_t *v = get(o, path);
    return v ? json_deep_copy(v) : json_null();
}

/* jsonPath .status.conditions[?(@.type=='T')].status */
static json_t *condition_status(const json_t *o, const char *type)
{
    size_t i;
    const json_t *c;
    json_array_foreach(get(o, "status.conditions"), i, c) {
        const char *t = str(c, "type");
        if (t && strcmp(t, type) == 0 && json_is_string(json_object_get(c, "status")))
            return json_string(str(c, "status"));
    }
    return json_null();
}

static void add_age(json_t *cells, const json_t *o, int64_t now_ns)
{
    json_array_append_new(cells, age_of(str(o, "metadata.creationTimestamp"), now_ns));
}

/* Kueue's columns, with two changes so that `kubectl get clusterqueues` answers "how full is
 * it": ADMITTED WORKLOADS is shown without -o wide, and USAGE says, per resource that has
 * quota or use, what is reserved against the nominal quota ("nvidia.com/gpu 12/8"), prefixed
 * by the flavor when the queue has several. */
static const column cq_cols[] = {
    {"Name", "string", "name", "Name of the object.", 0},
    {"Cohort", "string", "", "Cohort that this ClusterQueue belongs to", 0, ".spec.cohort"},
    {"Strategy", "string", "", "The queueing strategy used to prioritize workloads", 1,
     ".spec.queueingStrategy"},
    {"Pending Workloads", "integer", "", "Number of pending workloads", 0,
     ".status.pendingWorkloads"},
    {"Admitted Workloads", "integer", "",
     "Number of admitted workloads that haven't finished yet", 0, ".status.admittedWorkloads"},
    {"Usage", "string", "", "Quota reserved per flavor and resource, against the nominal quota", 0},
    {"Age", "date", "", "Time since the object was created.", 0, ".metadata.creationTimestamp"},
    {0},
};

/* The nominal quota of (flavor, resource) as written in the spec ("8", or a bare number). */
static void nominal_of(const json_t *cq, const char *flavor, const char *resource, char *out,
                       size_t cap)
{
    snprintf(out, cap, "0");
    size_t g, f, r;
    const json_t *grp, *fl, *rq;
    json_array_foreach(get(cq, "spec.resourceGroups"), g, grp)
        json_array_foreach(json_object_get(grp, "flavors"), f, fl)
            json_array_foreach(json_object_get(fl, "resources"), r, rq)
    {
        const char *fn = str(fl, "name"), *rn = str(rq, "name");
        if (!fn || !rn || strcmp(fn, flavor) != 0 || strcmp(rn, resource) != 0)
            continue;
        const json_t *q = json_object_get(rq, "nominalQuota");
        if (json_is_string(q))
            snprintf(out, cap, "%s", json_string_value(q));
        else if (json_is_number(q))
            snprintf(out, cap, "%g", json_number_value(q));
    }
}

static json_t *cq_usage(const json_t *cq)
{
    const json_t *usage = get(cq, "status.flavorsReservation");
    size_t nflavors = json_array_size(usage);
    TY_AUTOBUF ty_buf out = TY_BUF_INIT;
    size_t f, r;
    const json_t *fl, *rs;
    json_array_foreach(usage, f, fl)
        json_array_foreach(json_object_get(fl, "resources"), r, rs)
    {
        const char *flavor = or(str(fl, "name"), ""), *name = or(str(rs, "name"), "");
        const char *total = or(str(rs, "total"), "0");
        char nominal[64];
        nominal_of(cq, flavor, name, nominal, sizeof nominal);
        if (strcmp(total, "0") == 0 && strcmp(nominal, "0") == 0)
            continue;
        ty_buf_addf(&out, "%s%s%s%s %s/%s", out.len ? ", " : "", nflavors > 1 ? flavor : "",
                    nflavors > 1 ? ":" : "", name, total, nominal);
    }
    return out.len ? json_string(out.data) : json_string("<none>");
}

static void cq_row(json_t *cells, json_t *row, const json_t *o, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(o, "metadata.name"), ""));
    json_array_append_new(cells, cell(o, "spec.cohort"));
    json_array_append_new(cells, cell(o, "spec.queueingStrategy"));
    json_array_append_new(cells, cell(o, "status.pendingWorkloads"));
    json_array_append_new(cells, cell(o, "status.admittedWorkloads"));
    json_array_append_new(cells, cq_usage(o));
    add_age(cells, o, now_ns);
}

static const column lq_cols[] = {
    {"Name", "string", "name", "Name of the object.", 0},
    {"ClusterQueue", "string", "", "Backing ClusterQueue", 0, ".spec.clusterQueue"},
    {"Pending Workloads", "integer", "", "Number of pending workloads", 0,
     ".status.pendingWorkloads"},
    {"Admitted Workloads", "integer", "",
     "Number of admitted workloads that haven't finished yet.", 0, ".status.admittedWorkloads"},
    {"Age", "date", "", "Time since the object was created.", 0, ".metadata.creationTimestamp"},
    {0},
};

static void lq_row(json_t *cells, json_t *row, const json_t *o, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(o, "metadata.name"), ""));
    json_array_append_new(cells, cell(o, "spec.clusterQueue"));
    json_array_append_new(cells, cell(o, "status.pendingWorkloads"));
    json_array_append_new(cells, cell(o, "status.admittedWorkloads"));
    add_age(cells, o, now_ns);
}

static const column wl_cols[] = {
    {"Name", "string", "name", "Name of the object.", 0},
    {"Queue", "string", "", "Name of the queue this workload was submitted to", 0,
     ".spec.queueName"},
    {"Reserved in", "string", "", "Name of the ClusterQueue where the workload is reserving "
     "quota", 0, ".status.admission.clusterQueue"},
    {"Admitted", "string", "", "Admission status", 0,
     ".status.conditions[?(@.type=='Admitted')].status"},
    {"Finished", "string", "", "Workload finished", 0,
     ".status.conditions[?(@.type=='Finished')].status"},
    {"Age", "date", "", "Time this workload was created", 0, ".metadata.creationTimestamp"},
    {"Waiting For", "string", "",
     "Why a workload without quota waits (its QuotaReserved message); added by trainyard", 0},
    {0},
};

/* The message of condition `type` when its status is `status`, else NULL. */
static const char *condition_message(const json_t *o, const char *type, const char *status)
{
    size_t i;
    const json_t *c;
    json_array_foreach(get(o, "status.conditions"), i, c) {
        const char *t = str(c, "type"), *st = str(c, "status");
        if (t && st && strcmp(t, type) == 0 && strcmp(st, status) == 0)
            return str(c, "message");
    }
    return NULL;
}

static void wl_row(json_t *cells, json_t *row, const json_t *o, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(o, "metadata.name"), ""));
    json_array_append_new(cells, cell(o, "spec.queueName"));
    json_array_append_new(cells, cell(o, "status.admission.clusterQueue"));
    json_array_append_new(cells, condition_status(o, "Admitted"));
    json_array_append_new(cells, condition_status(o, "Finished"));
    add_age(cells, o, now_ns);
    const char *why = NULL;
    if (!condition_message(o, "Finished", "True"))
        why = condition_message(o, "QuotaReserved", "False");
    add_s(cells, or(why, "<none>"));
}

static const column wpc_cols[] = {
    {"Name", "string", "name", "Name of the object.", 0},
    {"Value", "integer", "", "Value of workloadPriorityClass's Priority", 0, ".value"},
    {"Age", "date", "", "Time since the object was created.", 0, ".metadata.creationTimestamp"},
    {0},
};

static void wpc_row(json_t *cells, json_t *row, const json_t *o, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(o, "metadata.name"), ""));
    json_array_append_new(cells, cell(o, "value"));
    add_age(cells, o, now_ns);
}

static const column pc_cols[] = {
    {"Name", "string", "name", "Name of the object.", 0},
    {"Value", "integer", "", "The priority of the pods that name this class.", 0},
    {"Global-Default", "boolean", "", "Whether pods without a priority class get this one.", 0},
    {"Age", "string", "", "Time since the object was created.", 0},
    {"PreemptionPolicy", "string", "", "Whether the pods preempt lower priority pods.", 0},
    {0},
};

static void pc_row(json_t *cells, json_t *row, const json_t *o, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(o, "metadata.name"), ""));
    json_array_append_new(cells, json_integer(int_of(o, "value")));
    json_array_append_new(cells, json_boolean(json_is_true(get(o, "globalDefault"))));
    add_age(cells, o, now_ns);
    add_s(cells, or(str(o, "preemptionPolicy"), ""));
}

/* ---- ConfigMap, Secret ---- */

static const column configmap_cols[] = {
    {"Name", "string", "name", "Name of the object, unique in its namespace.", 0},
    {"Data", "string", "", "The number of keys, in data and binaryData.", 0},
    {"Age", "string", "", "Time since the object was created.", 0},
    {0},
};

static void configmap_row(json_t *cells, json_t *row, const json_t *o, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(o, "metadata.name"), ""));
    json_array_append_new(cells, json_integer((json_int_t)(json_object_size(get(o, "data")) +
                                                           json_object_size(get(o, "binaryData")))));
    add_age(cells, o, now_ns);
}

static const column secret_cols[] = {
    {"Name", "string", "name", "Name of the object, unique in its namespace.", 0},
    {"Type", "string", "", "What the data is for.", 0},
    {"Data", "string", "", "The number of keys.", 0},
    {"Age", "string", "", "Time since the object was created.", 0},
    {0},
};

static void secret_row(json_t *cells, json_t *row, const json_t *o, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(o, "metadata.name"), ""));
    add_s(cells, or(str(o, "type"), ""));
    json_array_append_new(cells, json_integer((json_int_t)json_object_size(get(o, "data"))));
    add_age(cells, o, now_ns);
}

/* ---- ServiceAccount: kubectl's columns (secrets: the legacy token Secrets it lists) ---- */

static const column serviceaccount_cols[] = {
    {"Name", "string", "name", "Name of the object, unique in its namespace.", 0},
    {"Secrets", "string", "", "The number of secrets it lists.", 0},
    {"Age", "string", "", "Time since the object was created.", 0},
    {0},
};

static void serviceaccount_row(json_t *cells, json_t *row, const json_t *o, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(o, "metadata.name"), ""));
    json_array_append_new(cells, json_integer((json_int_t)json_array_size(get(o, "secrets"))));
    add_age(cells, o, now_ns);
}

/* ---- anything else ---- */

static const column default_cols[] = {
    {"Name", "string", "name", "Name of the object.", 0},
    {"Age", "string", "", "Time since the object was created.", 0},
    {0},
};

static void default_row(json_t *cells, json_t *row, const json_t *o, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(o, "metadata.name"), ""));
    json_array_append_new(cells, age_of(str(o, "metadata.creationTimestamp"), now_ns));
}

/* ---- persistent volumes and claims (kubectl's printers) ---- */

static const column pv_cols[] = {
    {"Name", "string", "name", "Name of the object, unique in its namespace.", 0},
    {"Capacity", "string", "", "The volume's capacity.", 0},
    {"Access Modes", "string", "", "How the volume can be mounted.", 0},
    {"Reclaim Policy", "string", "", "What happens to the volume when its claim is deleted.", 0},
    {"Status", "string", "", "The volume's phase.", 0},
    {"Claim", "string", "", "The claim bound to the volume.", 0},
    {"StorageClass", "string", "", "StorageClass of the pv", 0},
    {"VolumeAttributesClass", "string", "", "VolumeAttributesClass of the pv", 0},
    {"Reason", "string", "", "Why the volume is in its phase.", 0},
    {"Age", "string", "", "Time since the object was created.", 0},
    {"VolumeMode", "string", "", "Filesystem or Block.", 1},
    {0},
};

static const column pvc_cols[] = {
    {"Name", "string", "name", "Name of the object, unique in its namespace.", 0},
    {"Status", "string", "", "The claim's phase.", 0},
    {"Volume", "string", "", "The volume bound to the claim.", 0},
    {"Capacity", "string", "", "The bound volume's capacity.", 0},
    {"Access Modes", "string", "", "How the volume can be mounted.", 0},
    {"StorageClass", "string", "", "StorageClass of the pvc", 0},
    {"VolumeAttributesClass", "string", "", "VolumeAttributesClass of the pvc", 0},
    {"Age", "string", "", "Time since the object was created.", 0},
    {"VolumeMode", "string", "", "Filesystem or Block.", 1},
    {0},
};

/* GetAccessModesAsString: "RWO,ROX,RWX,RWOP", in that order, each once. */
static void add_access_modes(json_t *cells, const json_t *modes)
{
    static const char *const names[][2] = {{"ReadWriteOnce", "RWO"},
                                           {"ReadOnlyMany", "ROX"},
                                           {"ReadWriteMany", "RWX"},
                                           {"ReadWriteOncePod", "RWOP"}};
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    for (size_t k = 0; k < 4; k++) {
        size_t i;
        const json_t *m;
        bool has = false;
        json_array_foreach(modes, i, m) {
            has = has || (json_is_string(m) && strcmp(json_string_value(m), names[k][0]) == 0);
        }
        if (has)
            ty_buf_addf(&b, "%s%s", b.len ? "," : "", names[k][1]);
    }
    add_s(cells, b.data ? b.data : "");
}

/* A phase, or Terminating once deletion started. */
static const char *phase_of(const json_t *o)
{
    return str(o, "metadata.deletionTimestamp") ? "Terminating" : or(str(o, "status.phase"), "");
}

/* A quantity as stored: a string, or a bare number. */
static void add_quantity(json_t *cells, const json_t *q)
{
    if (json_is_integer(q)) {
        char num[32];
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(q));
        add_s(cells, num);
    } else {
        add_s(cells, json_is_string(q) ? json_string_value(q) : "");
    }
}

static void pv_row(json_t *cells, json_t *row, const json_t *pv, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(pv, "metadata.name"), ""));
    add_quantity(cells, get(pv, "spec.capacity.storage"));
    add_access_modes(cells, get(pv, "spec.accessModes"));
    add_s(cells, or(str(pv, "spec.persistentVolumeReclaimPolicy"), ""));
    add_s(cells, phase_of(pv));
    const json_t *ref = get(pv, "spec.claimRef");
    TY_AUTOFREE char *claim = ref ? ty_asprintf("%s/%s", or(str(ref, "namespace"), ""),
                                                or(str(ref, "name"), ""))
                                  : ty_strdup("");
    add_s(cells, claim);
    add_s(cells, or(str(pv, "spec.storageClassName"), ""));
    add_s(cells, or(str(pv, "spec.volumeAttributesClassName"), "<unset>"));
    add_s(cells, or(str(pv, "status.reason"), ""));
    add_age(cells, pv, now_ns);
    add_s(cells, or(str(pv, "spec.volumeMode"), "<unset>"));
}

static void pvc_row(json_t *cells, json_t *row, const json_t *pvc, int64_t now_ns)
{
    (void)row;
    const char *volume = or(str(pvc, "spec.volumeName"), "");
    add_s(cells, or(str(pvc, "metadata.name"), ""));
    add_s(cells, phase_of(pvc));
    add_s(cells, volume);
    /* Capacity and modes are the bound volume's, shown once there is one. */
    add_quantity(cells, *volume ? get(pvc, "status.capacity.storage") : NULL);
    add_access_modes(cells, *volume ? get(pvc, "status.accessModes") : NULL);
    add_s(cells, or(str(pvc, "spec.storageClassName"), ""));
    add_s(cells, or(str(pvc, "spec.volumeAttributesClassName"), "<unset>"));
    add_age(cells, pvc, now_ns);
    add_s(cells, or(str(pvc, "spec.volumeMode"), "<unset>"));
}

/* The jobs' cells read a few members of metadata and status, never spec (most of a job's
 * bytes). */
static const char *const job_members[] = {"metadata.name", "metadata.creationTimestamp",
                                          "status.conditions.-1.type", NULL};

const printer ty_table_pods = {pod_cols, pod_row, NULL};
const printer ty_table_jobs = {job_cols, job_row, job_members};
/* Endpoints and EndpointSlices, as kubectl prints them: addresses as ip:port, the first three
 * and "+ N more..." */
static const column ep_cols[] = {
    {"Name", "string", "name", "Name of the object, unique in its namespace.", 0},
    {"Endpoints", "string", "", "The addresses and ports the service routes to.", 0},
    {"Age", "string", "", "Time since the object was created.", 0},
    {0},
};

static void add_more(ty_buf *b, size_t shown, size_t total)
{
    if (total > shown)
        ty_buf_addf(b, " + %zu more...", total - shown);
}

static void ep_row(json_t *cells, json_t *row, const json_t *ep, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(ep, "metadata.name"), ""));
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    size_t total = 0, shown = 0;
    const json_t *subsets = get(ep, "subsets");
    for (size_t s = 0; s < json_array_size(subsets); s++) {
        const json_t *sub = json_array_get(subsets, s);
        const json_t *addrs = json_object_get(sub, "addresses");
        const json_t *ports = json_object_get(sub, "ports");
        for (size_t a = 0; a < json_array_size(addrs); a++)
            for (size_t p = 0; p < (json_array_size(ports) ? json_array_size(ports) : 1); p++) {
                total++;
                if (shown == 3)
                    continue;
                shown++;
                if (b.len)
                    ty_buf_addc(&b, ',');
                ty_buf_adds(&b, or(str(json_array_get(addrs, a), "ip"), ""));
                if (json_array_size(ports))
                    ty_buf_addf(&b, ":%lld", (long long)int_of(json_array_get(ports, p), "port"));
            }
    }
    add_more(&b, shown, total);
    add_s(cells, b.len ? b.data : "<none>");
    json_array_append_new(cells, age_of(str(ep, "metadata.creationTimestamp"), now_ns));
}

static const column eps_cols[] = {
    {"Name", "string", "name", "Name of the object, unique in its namespace.", 0},
    {"AddressType", "string", "", "The type of address of its endpoints.", 0},
    {"Ports", "string", "", "The ports its endpoints serve.", 0},
    {"Endpoints", "string", "", "The addresses of its endpoints.", 0},
    {"Age", "string", "", "Time since the object was created.", 0},
    {0},
};

static void eps_row(json_t *cells, json_t *row, const json_t *eps, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(eps, "metadata.name"), ""));
    add_s(cells, or(str(eps, "addressType"), ""));
    TY_AUTOBUF ty_buf ports = TY_BUF_INIT;
    const json_t *ps = get(eps, "ports");
    for (size_t i = 0; i < json_array_size(ps); i++)
        ty_buf_addf(&ports, "%s%lld", ports.len ? "," : "",
                    (long long)int_of(json_array_get(ps, i), "port"));
    add_s(cells, ports.len ? ports.data : "<unset>");
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    size_t total = 0, shown = 0;
    const json_t *eps_list = get(eps, "endpoints");
    for (size_t e = 0; e < json_array_size(eps_list); e++) {
        const json_t *addrs = json_object_get(json_array_get(eps_list, e), "addresses");
        for (size_t a = 0; a < json_array_size(addrs); a++) {
            total++;
            if (shown == 3)
                continue;
            shown++;
            ty_buf_addf(&b, "%s%s", b.len ? "," : "", or(json_string_value(json_array_get(addrs, a)), ""));
        }
    }
    add_more(&b, shown, total);
    add_s(cells, b.len ? b.data : "<unset>");
    json_array_append_new(cells, age_of(str(eps, "metadata.creationTimestamp"), now_ns));
}

/* ---- serving.kserve.io: the CRDs' additionalPrinterColumns ---- */

static const column isvc_cols[] = {
    {"Name", "string", "name", "Name of the object.", 0},
    {"URL", "string", "", "Where the InferenceService answers.", 0, ".status.url"},
    {"Ready", "string", "", "Whether it serves.", 0, ".status.conditions[?(@.type=='Ready')].status"},
    {"Prev", "integer", "", "Percent of the traffic the previous rolled-out revision gets.", 0,
     ".status.components.predictor.traffic[?(@.tag=='prev')].percent"},
    {"Latest", "integer", "", "Percent of the traffic the latest revision gets.", 0,
     ".status.components.predictor.traffic[?(@.latestRevision==true)].percent"},
    {"PrevRolledoutRevision", "string", "", "The previous rolled-out revision.", 0,
     ".status.components.predictor.traffic[?(@.tag=='prev')].revisionName"},
    {"LatestReadyRevision", "string", "", "The latest ready revision.", 0,
     ".status.components.predictor.traffic[?(@.latestRevision==true)].revisionName"},
    {"Age", "date", "", "Time since the object was created.", 0, ".metadata.creationTimestamp"},
    {0},
};

/* The predictor's traffic entry tagged `tag` (latest: the one with latestRevision true). */
static const json_t *isvc_traffic(const json_t *o, bool latest)
{
    const json_t *tr = get(o, "status.components.predictor.traffic");
    for (size_t i = 0; i < json_array_size(tr); i++) {
        const json_t *t = json_array_get(tr, i);
        if (latest ? json_is_true(json_object_get(t, "latestRevision"))
                   : strcmp(or(str(t, "tag"), ""), "prev") == 0)
            return t;
    }
    return NULL;
}

static void isvc_row(json_t *cells, json_t *row, const json_t *o, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(o, "metadata.name"), ""));
    json_array_append_new(cells, cell(o, "status.url"));
    json_array_append_new(cells, condition_status(o, "Ready"));
    const json_t *prev = isvc_traffic(o, false), *latest = isvc_traffic(o, true);
    json_array_append_new(cells, prev ? cell(prev, "percent") : json_null());
    json_array_append_new(cells, latest ? cell(latest, "percent") : json_null());
    json_array_append_new(cells, prev ? cell(prev, "revisionName") : json_null());
    json_array_append_new(cells, latest ? cell(latest, "revisionName") : json_null());
    add_age(cells, o, now_ns);
}

static const column sr_cols[] = {
    {"Name", "string", "name", "Name of the object.", 0},
    {"Disabled", "boolean", "", "Whether it is chosen for nothing.", 0, ".spec.disabled"},
    {"ModelType", "string", "", "The first model format it serves.", 0,
     ".spec.supportedModelFormats[*].name"},
    {"Containers", "string", "", "Its first container.", 0, ".spec.containers[*].name"},
    {"Age", "date", "", "Time since the object was created.", 0, ".metadata.creationTimestamp"},
    {0},
};

static void sr_row(json_t *cells, json_t *row, const json_t *o, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(o, "metadata.name"), ""));
    json_array_append_new(cells, cell(o, "spec.disabled"));
    const json_t *f = json_array_get(get(o, "spec.supportedModelFormats"), 0);
    json_array_append_new(cells, f ? cell(f, "name") : json_null());
    const json_t *ct = json_array_get(get(o, "spec.containers"), 0);
    json_array_append_new(cells, ct ? cell(ct, "name") : json_null());
    add_age(cells, o, now_ns);
}

const printer ty_table_inferenceservices = {isvc_cols, isvc_row, NULL};
const printer ty_table_servingruntimes = {sr_cols, sr_row, NULL};
const printer ty_table_batch_jobs = {batch_job_cols, batch_job_row, NULL};
const printer ty_table_services = {svc_cols, svc_row, NULL};
const printer ty_table_endpoints = {ep_cols, ep_row, NULL};
const printer ty_table_endpointslices = {eps_cols, eps_row, NULL};
const printer ty_table_nodes = {node_cols, node_row, NULL};
const printer ty_table_namespaces = {ns_cols, ns_row, NULL};
const printer ty_table_events = {event_cols, event_row, NULL};
const printer ty_table_clusterqueues = {cq_cols, cq_row, NULL};
const printer ty_table_localqueues = {lq_cols, lq_row, NULL};
const printer ty_table_workloads = {wl_cols, wl_row, NULL};
const printer ty_table_workloadpriorityclasses = {wpc_cols, wpc_row, NULL};
const printer ty_table_priorityclasses = {pc_cols, pc_row, NULL};
const printer ty_table_persistentvolumes = {pv_cols, pv_row, NULL};
const printer ty_table_persistentvolumeclaims = {pvc_cols, pvc_row, NULL};
const printer ty_table_configmaps = {configmap_cols, configmap_row, NULL};
const printer ty_table_secrets = {secret_cols, secret_row, NULL};
const printer ty_table_serviceaccounts = {serviceaccount_cols, serviceaccount_row, NULL};

/* ---- Katib (kubeflow.org/v1beta1): the CRDs' additionalPrinterColumns ---- */

static const column experiment_cols[] = {
    {"Name", "string", "name", "Name of the object.", 0},
    {"Type", "string", "", "The last condition's type.", 0, ".status.conditions[-1:].type"},
    {"Status", "string", "", "The last condition's status.", 0, ".status.conditions[-1:].status"},
    {"Age", "date", "", "Time since the object was created.", 0, ".metadata.creationTimestamp"},
    {0},
};

static const json_t *last_condition(const json_t *o)
{
    const json_t *conds = get(o, "status.conditions");
    size_t n = json_array_size(conds);
    return n ? json_array_get(conds, n - 1) : NULL;
}

static void experiment_row(json_t *cells, json_t *row, const json_t *o, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(o, "metadata.name"), ""));
    const json_t *last = last_condition(o);
    json_array_append_new(cells, last ? cell(last, "type") : json_null());
    json_array_append_new(cells, last ? cell(last, "status") : json_null());
    add_age(cells, o, now_ns);
}

static const column suggestion_cols[] = {
    {"Name", "string", "name", "Name of the object.", 0},
    {"Type", "string", "", "The last condition's type.", 0, ".status.conditions[-1:].type"},
    {"Status", "string", "", "The last condition's status.", 0, ".status.conditions[-1:].status"},
    {"Requested", "string", "", "Suggestions requested.", 0, ".spec.requests"},
    {"Assigned", "string", "", "Suggestions assigned.", 0, ".status.suggestionCount"},
    {"Age", "date", "", "Time since the object was created.", 0, ".metadata.creationTimestamp"},
    {0},
};

static void suggestion_row(json_t *cells, json_t *row, const json_t *o, int64_t now_ns)
{
    (void)row;
    add_s(cells, or(str(o, "metadata.name"), ""));
    const json_t *last = last_condition(o);
    json_array_append_new(cells, last ? cell(last, "type") : json_null());
    json_array_append_new(cells, last ? cell(last, "status") : json_null());
    json_array_append_new(cells, cell(o, "spec.requests"));
    json_array_append_new(cells, cell(o, "status.suggestionCount"));
    add_age(cells, o, now_ns);
}

const printer ty_table_experiments = {experiment_cols, experiment_row, NULL};
const printer ty_table_trials = {experiment_cols, experiment_row, NULL};
const printer ty_table_suggestions = {suggestion_cols, suggestion_row, NULL};

/* Kinds without a printer of their own (ResourceFlavor, AdmissionCheck, unknown resources). */
static const printer default_printer = {default_cols, default_row, NULL};

static const printer *printer_of(const char *resource)
{
    const ty_kind_info *k = ty_kind_of_resource(resource);
    return k && k->table ? k->table : &default_printer;
}

static json_t *columns_of(const printer *p)
{
    json_t *cols = json_array();
    for (const column *c = p->cols; c->name; c++)
        json_array_append_new(cols, json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", c->name,
                                              "type", c->type, "format", c->format,
                                              "description", c->description, "priority",
                                              c->priority));
    return cols;
}

/* What a row carries of its object: the whole object, its metadata only, or nothing. */
static json_t *row_object(const json_t *obj, const char *include)
{
    if (include && strcmp(include, "None") == 0)
        return json_null();
    if (include && strcmp(include, "Object") == 0)
        return json_deep_copy(obj);
    json_t *meta = json_object_get(obj, "metadata");
    return json_pack("{s:s, s:s, s:O}", "kind", "PartialObjectMetadata", "apiVersion",
                     "meta.k8s.io/v1", "metadata", meta ? meta : json_object());
}

json_t *ty_table_build(const char *resource, const json_t *objects, const char *include_object,
                       int64_t now_ns)
{
    const printer *p = printer_of(resource);
    json_t *rows = json_array();
    for (size_t i = 0; i < json_array_size(objects); i++) {
        const json_t *o = json_array_get(objects, i);
        json_t *row = json_object();
        json_t *cells = json_array();
        p->row(cells, row, o, now_ns);
        json_object_set_new(row, "cells", cells);
        json_object_set_new(row, "object", row_object(o, include_object));
        json_array_append_new(rows, row);
    }
    return json_pack("{s:s, s:s, s:{}, s:o, s:o}", "kind", "Table", "apiVersion",
                     "meta.k8s.io/v1", "metadata", "columnDefinitions", columns_of(p), "rows",
                     rows);
}

static bool index_segment(const char *seg)
{
    return seg[0] == '-' || (seg[0] >= '0' && seg[0] <= '9');
}

/* Puts v (stolen) at `path` in o, making what leads there: objects, and for an array element
 * ("conditions.-1") an array holding just that element. */
static void put_at(json_t *o, const char *path, json_t *v)
{
    json_t *cur = o;
    char seg[64];
    for (;;) {
        size_t n = strcspn(path, ".");
        snprintf(seg, sizeof seg, "%.*s", (int)n, path);
        const char *rest = path[n] ? path + n + 1 : NULL;
        if (!rest) {
            if (json_is_array(cur))
                json_array_append_new(cur, v);
            else
                json_object_set_new(cur, seg, v);
            return;
        }
        json_t *child = json_is_array(cur) ? json_array_get(cur, 0) : json_object_get(cur, seg);
        if (!child) {
            child = index_segment(rest) ? json_array() : json_object();
            if (json_is_array(cur))
                json_array_append_new(cur, child);
            else
                json_object_set_new(cur, seg, child);
        }
        cur = child;
        path = rest;
    }
}

json_t *ty_table_row_source(const char *resource, const char *text, size_t len)
{
    const char *const *members = printer_of(resource)->members;
    if (!members)
        return json_loadb(text, len, 0, NULL);
    json_t *o = json_object();
    for (size_t i = 0; members[i]; i++) {
        const char *v;
        size_t vlen;
        json_t *val;
        if (ty_json_text_at(text, len, members[i], &v, &vlen) &&
            (val = ty_json_text_value(v, vlen)))
            put_at(o, members[i], val);
    }
    return o;
}

void ty_table_text_begin(ty_buf *b, const char *resource, const char *metadata)
{
    json_t *c = columns_of(printer_of(resource));
    char *cols = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    ty_buf_addf(b,
                "{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/v1\",\"metadata\":%s,"
                "\"columnDefinitions\":%s,\"rows\":[",
                metadata, cols);
    free(cols);
}

void ty_table_text_row(ty_buf *b, bool first, const char *resource, const json_t *obj,
                       const char *meta_text, size_t meta_len, const char *include_object,
                       int64_t now_ns)
{
    const printer *p = printer_of(resource);
    json_t *row = json_object();
    json_t *cells = json_array();
    p->row(cells, row, obj, now_ns);
    json_object_set_new(row, "cells", cells);
    char *text = json_dumps(row, JSON_COMPACT);
    json_decref(row);
    if (!first)
        ty_buf_addc(b, ',');
    ty_buf_add(b, text, strlen(text) - 1); /* without its closing brace */
    free(text);
    if (include_object && strcmp(include_object, "None") == 0) {
        ty_buf_adds(b, ",\"object\":null}");
        return;
    }
    ty_buf_adds(b, ",\"object\":{\"kind\":\"PartialObjectMetadata\","
                   "\"apiVersion\":\"meta.k8s.io/v1\",\"metadata\":");
    if (meta_text)
        ty_buf_add(b, meta_text, meta_len);
    else
        ty_buf_adds(b, "{}");
    ty_buf_adds(b, "}}");
}

json_t *ty_table_crd_columns(const ty_kind_info *k)
{
    json_t *cols = json_array();
    for (const column *c = k->table ? k->table->cols : NULL; c && c->name; c++) {
        if (!c->json_path)
            continue;
        json_t *col = json_pack("{s:s, s:s, s:s, s:s}", "name", c->name, "type", c->type,
                                "description", c->description, "jsonPath", c->json_path);
        if (c->priority)
            json_object_set_new(col, "priority", json_integer(c->priority));
        json_array_append_new(cols, col);
    }
    return cols;
}
