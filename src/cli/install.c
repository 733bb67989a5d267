/* trainyard install: the manifests that deploy trainyard on a Kubernetes cluster
 * (docs/cluster.md, "Install"), and with --dockerfile the Dockerfile of its image.
 *
 * The CRDs come from the registry of kinds and their embedded schemas (api/crd.h), so a
 * cluster serves the same kinds, names and schemas as `trainyard server`. The ClusterRole
 * lists exactly what the controllers read and write (below, beside each rule), no wildcard. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/crd.h"
#include "api/emit.h"
#include "api/kueue.h"
#include "base/buf.h"
#include "base/mem.h"
#include "cli/cli.h"

#define CMD "trainyard install"
#define NAME "trainyard"

typedef struct opts {
    const char *ns;
    const char *image;
    int replicas;
    bool json;
    /* The custom kinds trainyard takes over, indexed as ty_kinds(); all by default. */
    bool manage[64];
} opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trainyard install [options] > trainyard.yaml; kubectl apply -f trainyard.yaml\n"
            "       trainyard install --dockerfile > Dockerfile\n"
            "\n"
            "Prints the manifests that run trainyard on a Kubernetes cluster: its namespace,\n"
            "the CRDs of the kinds it serves (kubeflow.org, kueue.x-k8s.io), a ServiceAccount,\n"
            "the ClusterRole and bindings it needs (no wildcards), the Deployment and, with\n"
            "more than one replica, its PodDisruptionBudget.\n"
            "\n"
            "options:\n"
            "  --namespace NS    where trainyard runs (default trainyard-system)\n"
            "  --image IMAGE     the container image (default trainyard:latest; build it with\n"
            "                    --dockerfile and push it where the cluster pulls from)\n"
            "  --replicas N      replicas, one leader at a time (default 2, 1-16)\n"
            "  --manage LIST     only these kinds: plurals, comma separated (pytorchjobs,tfjobs),\n"
            "                    or a group: kubeflow, kueue; default every kind. Kinds left out\n"
            "                    get no CRD and no rights: another operator or Kueue keeps them\n"
            "  -o, --output FMT  yaml (default: one document per object) or json (a v1 List)\n"
            "  --dockerfile      print the Dockerfile of the image instead\n"
            "  -h, --help        this text\n");
}

/* ---- --manage ---- */

static int parse_manage(const char *arg, opts *o)
{
    const ty_kind_info *const *kinds = ty_kinds();
    memset(o->manage, 0, sizeof o->manage);
    TY_AUTOFREE char *copy = ty_strdup(arg);
    char *save = NULL;
    int n = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        const char *group = strcmp(tok, "kubeflow") == 0 ? "kubeflow.org"
                            : strcmp(tok, "kueue") == 0  ? "kueue.x-k8s.io"
                                                         : NULL;
        bool found = false;
        for (size_t i = 0; kinds[i]; i++) {
            if (!ty_crd_wanted(kinds[i]))
                continue;
            if (group ? strcmp(kinds[i]->group, group) == 0
                      : strcmp(kinds[i]->resource, tok) == 0) {
                o->manage[i] = true;
                found = true;
            }
        }
        if (!found) {
            TY_AUTOBUF ty_buf known = TY_BUF_INIT;
            for (size_t i = 0; kinds[i]; i++)
                if (ty_crd_wanted(kinds[i]))
                    ty_buf_addf(&known, "%s%s", known.len ? ", " : "", kinds[i]->resource);
            fprintf(stderr, CMD ": --manage: unknown kind %s (known: kubeflow, kueue, %s)\n",
                    tok, known.data);
            return -1;
        }
        n++;
    }
    if (!n) {
        fprintf(stderr, CMD ": --manage: no kinds given\n");
        return -1;
    }
    return 0;
}

/* ---- objects ---- */

static json_t *labels(void)
{
    return json_pack("{s:s, s:s}", "app.kubernetes.io/name", NAME, "app.kubernetes.io/part-of",
                     NAME);
}

static json_t *meta(const char *name, const char *ns)
{
    json_t *m = json_pack("{s:s}", "name", name);
    if (ns)
        json_object_set_new(m, "namespace", json_string(ns));
    json_object_set_new(m, "labels", labels());
    return m;
}

static json_t *strings(const char *const *list)
{
    json_t *a = json_array();
    for (; *list; list++)
        json_array_append_new(a, json_string(*list));
    return a;
}

#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})

static json_t *rule(const char *group, json_t *resources, json_t *verbs)
{
    return json_pack("{s:[s], s:o, s:o}", "apiGroups", group, "resources", resources, "verbs",
                     verbs);
}

static const char *const READ[] = {"get", "list", "watch", NULL};

/* What the controllers write to the Kueue kinds (controllers/workloads, admission): Workloads
 * they create, update (admission, eviction) and whose status they write; queues whose status
 * they write. The other Kueue kinds are read only. */
static bool kueue_writes_status(const char *resource)
{
    return strcmp(resource, "workloads") == 0 || strcmp(resource, "clusterqueues") == 0 ||
           strcmp(resource, "localqueues") == 0;
}

static void add_kind_rules(json_t *rules, const opts *o)
{
    const ty_kind_info *const *kinds = ty_kinds();
    bool any_kueue = false;
    for (size_t i = 0; kinds[i]; i++)
        any_kueue = any_kueue || (o->manage[i] && strcmp(kinds[i]->group, "kueue.x-k8s.io") == 0);
    for (size_t i = 0; kinds[i]; i++) {
        const ty_kind_info *k = kinds[i];
        if (!ty_crd_wanted(k))
            continue;
        TY_AUTOFREE char *status = ty_asprintf("%s/status", k->resource);
        TY_AUTOFREE char *fin = ty_asprintf("%s/finalizers", k->resource);
        if (k->job_operator && o->manage[i]) {
            /* The job controller: reads jobs, writes their status, deletes them when their
             * TTL ends; Kueue's job side suspends and starts them (update). Pods and Services
             * it creates carry blockOwnerDeletion, which needs finalizers of the owner. */
            json_array_append_new(rules, rule(k->group, json_pack("[s]", k->resource),
                                              strings(LIST("get", "list", "watch", "update",
                                                           "patch", "delete"))));
            json_array_append_new(rules, rule(k->group, json_pack("[s]", status),
                                              strings(LIST("get", "update", "patch"))));
            json_array_append_new(rules, rule(k->group, json_pack("[s]", fin),
                                              strings(LIST("update"))));
        } else if (k->job_operator && any_kueue) {
            /* Another operator runs these jobs; as Kueue, trainyard suspends and starts them
             * and reads their status. */
            json_array_append_new(rules, rule(k->group, json_pack("[s]", k->resource),
                                              strings(LIST("get", "list", "watch", "update",
                                                           "patch"))));
            json_array_append_new(rules, rule(k->group, json_pack("[s]", status),
                                              strings(LIST("get"))));
            json_array_append_new(rules, rule(k->group, json_pack("[s]", fin),
                                              strings(LIST("update"))));
        } else if (o->manage[i] && strcmp(k->resource, "workloads") == 0) {
            json_array_append_new(rules, rule(k->group, json_pack("[s]", k->resource),
                                              strings(LIST("get", "list", "watch", "create",
                                                           "update", "patch"))));
        } else if (o->manage[i]) {
            json_array_append_new(rules, rule(k->group, json_pack("[s]", k->resource),
                                              strings(READ)));
        }
        if (o->manage[i] && !k->job_operator && kueue_writes_status(k->resource))
            json_array_append_new(rules, rule(k->group, json_pack("[s]", status),
                                              strings(LIST("get", "update", "patch"))));
    }
}

static json_t *cluster_role(const opts *o)
{
    json_t *rules = json_array();
    /* The job controller creates and deletes its pods and headless Services; the gang
     * scheduler binds pods (pods/binding) and says why one waits (pods/status). */
    json_array_append_new(rules, rule("", json_pack("[s, s]", "pods", "services"),
                                      strings(LIST("get", "list", "watch", "create",
                                                   "delete"))));
    json_array_append_new(rules, rule("", json_pack("[s]", "pods/binding"),
                                      strings(LIST("create"))));
    json_array_append_new(rules, rule("", json_pack("[s]", "pods/status"),
                                      strings(LIST("get", "update", "patch"))));
    /* The scheduler and Kueue's snapshot read nodes, namespaces (namespace selectors),
     * claims (a pod waits for its volumes) and priority classes. */
    json_array_append_new(rules, rule("", json_pack("[s, s, s, s]", "nodes", "namespaces",
                                                    "persistentvolumeclaims",
                                                    "persistentvolumes"),
                                      strings(READ)));
    json_array_append_new(rules, rule("scheduling.k8s.io", json_pack("[s]", "priorityclasses"),
                                      strings(READ)));
    /* Events (controllers/events): aggregated, so a repeat updates the Event. */
    json_array_append_new(rules, rule("", json_pack("[s]", "events"),
                                      strings(LIST("get", "list", "watch", "create", "update",
                                                   "patch"))));
    add_kind_rules(rules, o);
    /* Kueue's job side queues batch/v1 Jobs too: it suspends and starts them and reads their
     * status (a built-in kind, so none of the rules above). */
    bool any_kueue = false;
    for (size_t i = 0; ty_kinds()[i]; i++)
        any_kueue = any_kueue ||
                    (o->manage[i] && strcmp(ty_kinds()[i]->group, "kueue.x-k8s.io") == 0);
    if (any_kueue) {
        json_array_append_new(rules, rule("batch", json_pack("[s]", "jobs"),
                                          strings(LIST("get", "list", "watch", "update",
                                                       "patch"))));
        json_array_append_new(rules, rule("batch", json_pack("[s]", "jobs/status"),
                                          strings(LIST("get"))));
    }
    json_t *role = json_pack("{s:s, s:s, s:o, s:o}", "apiVersion",
                             "rbac.authorization.k8s.io/v1", "kind", "ClusterRole", "metadata",
                             meta(NAME, NULL), "rules", rules);
    return role;
}

static json_t *binding(const char *kind, const char *role_kind, const char *ns,
                       const char *role_ns)
{
    return json_pack("{s:s, s:s, s:o, s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:s}]}", "apiVersion",
                     "rbac.authorization.k8s.io/v1", "kind", kind, "metadata",
                     meta(NAME, role_ns), "roleRef", "apiGroup", "rbac.authorization.k8s.io",
                     "kind", role_kind, "name", NAME, "subjects", "kind", "ServiceAccount",
                     "name", NAME, "namespace", ns);
}

/* Leader election: a coordination.k8s.io Lease in trainyard's own namespace only. */
static json_t *lease_role(const opts *o)
{
    return json_pack("{s:s, s:s, s:o, s:[o]}", "apiVersion", "rbac.authorization.k8s.io/v1",
                     "kind", "Role", "metadata", meta(NAME, o->ns), "rules",
                     rule("coordination.k8s.io", json_pack("[s]", "leases"),
                          strings(LIST("get", "create", "update"))));
}

static json_t *probe(const char *path, int period, int failures)
{
    return json_pack("{s:{s:s, s:s, s:s}, s:i, s:i, s:i, s:i}", "httpGet", "path", path, "port",
                     "http", "scheme", "HTTP", "initialDelaySeconds", 5, "periodSeconds", period,
                     "timeoutSeconds", 2, "failureThreshold", failures);
}

static json_t *deployment(const opts *o)
{
    json_t *container = json_pack(
        "{s:s, s:s, s:s, s:[s, s, s, s], s:[{s:s, s:i, s:s}], s:o, s:o, "
        "s:{s:{s:s, s:s}, s:{s:s, s:s}}, "
        "s:{s:b, s:b, s:b, s:b, s:{s:[s]}, s:{s:s}}, s:[{s:s, s:s}]}",
        "name", NAME, "image", o->image, "imagePullPolicy", "IfNotPresent", "args", "server",
        "--in-cluster", "--listen", "0.0.0.0:8080", "ports", "name", "http", "containerPort",
        8080, "protocol", "TCP", "livenessProbe", probe("/livez", 10, 3), "readinessProbe",
        probe("/readyz", 5, 3), "resources", "requests", "cpu", "100m", "memory", "64Mi",
        "limits", "cpu", "1", "memory", "256Mi", "securityContext", "runAsNonRoot", 1,
        "readOnlyRootFilesystem", 1, "allowPrivilegeEscalation", 0, "privileged", 0,
        "capabilities", "drop", "ALL", "seccompProfile", "type", "RuntimeDefault",
        "volumeMounts", "name", "tmp", "mountPath", "/tmp");
    json_t *pod_spec = json_pack(
        "{s:s, s:b, s:{s:b, s:i, s:i, s:{s:s}}, s:[o], s:[{s:s, s:{}}], s:i}",
        "serviceAccountName", NAME, "automountServiceAccountToken", 1, "securityContext",
        "runAsNonRoot", 1, "runAsUser", 65532, "runAsGroup", 65532, "seccompProfile", "type",
        "RuntimeDefault", "containers", container, "volumes", "name", "tmp", "emptyDir",
        "terminationGracePeriodSeconds", 30);
    return json_pack("{s:s, s:s, s:o, s:{s:i, s:{s:o}, s:{s:s}, s:{s:{s:o}, s:o}}}",
                     "apiVersion", "apps/v1", "kind", "Deployment", "metadata",
                     meta(NAME, o->ns), "spec", "replicas", o->replicas, "selector",
                     "matchLabels", labels(), "strategy", "type", "RollingUpdate", "template",
                     "metadata", "labels", labels(), "spec", pod_spec);
}

/* Every object, in the order kubectl should create them (the namespace and CRDs first). */
static int build_objects(const opts *o, json_t *objs)
{
    json_array_append_new(objs, json_pack("{s:s, s:s, s:o}", "apiVersion", "v1", "kind",
                                          "Namespace", "metadata", meta(o->ns, NULL)));
    const ty_kind_info *const *kinds = ty_kinds();
    for (size_t i = 0; kinds[i]; i++) {
        if (!o->manage[i] || !ty_crd_wanted(kinds[i]))
            continue;
        ty_error err = TY_ERROR_INIT;
        json_t *crd = ty_crd_build(kinds[i], &err);
        if (!crd) {
            fprintf(stderr, CMD ": %s\n", err.msg);
            ty_error_clear(&err);
            return -1;
        }
        json_array_append_new(objs, crd);
    }
    json_array_append_new(objs, json_pack("{s:s, s:s, s:o}", "apiVersion", "v1", "kind",
                                          "ServiceAccount", "metadata", meta(NAME, o->ns)));
    json_array_append_new(objs, cluster_role(o));
    json_array_append_new(objs, binding("ClusterRoleBinding", "ClusterRole", o->ns, NULL));
    json_array_append_new(objs, lease_role(o));
    json_array_append_new(objs, binding("RoleBinding", "Role", o->ns, o->ns));
    json_array_append_new(objs, deployment(o));
    /* A drain must leave one replica: the standby that takes the Lease over. */
    if (o->replicas > 1)
        json_array_append_new(objs, json_pack("{s:s, s:s, s:o, s:{s:i, s:{s:o}}}", "apiVersion",
                                              "policy/v1", "kind", "PodDisruptionBudget",
                                              "metadata", meta(NAME, o->ns), "spec",
                                              "minAvailable", 1, "selector", "matchLabels",
                                              labels()));
    return 0;
}

/* ---- the Dockerfile ---- */

/* The image: Debian's runtime libraries of what trainyard links (libuv, libyaml, jansson,
 * SQLite) and loads at run time (libmicrohttpd and GnuTLS for the API server, libarchive for
 * images, libnftables for Services, libcurl for the cluster's API), then the binary. */
static const char dockerfile[] =
    "# The trainyard image: `trainyard install --dockerfile > Dockerfile`, then from the\n"
    "# directory that holds the binary built on Debian bookworm (make build/trainyard):\n"
    "#   docker build -t REGISTRY/trainyard:TAG -f Dockerfile build/\n"
    "FROM debian:bookworm-slim\n"
    "RUN apt-get update \\\n"
    " && apt-get install -y --no-install-recommends \\\n"
    "      ca-certificates \\\n"
    "      libuv1 libyaml-0-2 libjansson4 libsqlite3-0 \\\n"
    "      libmicrohttpd12 libgnutls30 libarchive13 libnftables1 libcurl4 \\\n"
    " && rm -rf /var/lib/apt/lists/*\n"
    "COPY trainyard /usr/local/bin/trainyard\n"
    "# The Deployment runs it as this user, non-root, on a read-only root filesystem.\n"
    "USER 65532:65532\n"
    "EXPOSE 8080\n"
    "ENTRYPOINT [\"/usr/local/bin/trainyard\"]\n"
    "CMD [\"server\", \"--in-cluster\", \"--listen\", \"0.0.0.0:8080\"]\n";

/* ---- main ---- */

static int print_objects(const opts *o)
{
    json_t *objs = json_array();
    int rc = build_objects(o, objs);
    TY_AUTOBUF ty_buf out = TY_BUF_INIT;
    if (rc == 0 && o->json) {
        json_t *list = json_pack("{s:s, s:s, s:{}, s:O}", "apiVersion", "v1", "kind", "List",
                                 "metadata", "items", objs);
        char *text = json_dumps(list, JSON_INDENT(2));
        ty_buf_adds(&out, text);
        ty_buf_addc(&out, '\n');
        free(text);
        json_decref(list);
    } else if (rc == 0) {
        ty_error err = TY_ERROR_INIT;
        size_t n = json_array_size(objs);
        json_t **docs = ty_calloc(n ? n : 1, sizeof *docs);
        for (size_t i = 0; i < n; i++)
            docs[i] = json_array_get(objs, i);
        rc = ty_yaml_emit(&out, docs, n, &err);
        free(docs);
        if (rc < 0) {
            fprintf(stderr, CMD ": %s\n", err.msg);
            ty_error_clear(&err);
        }
    }
    json_decref(objs);
    if (rc == 0 && (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0)) {
        fprintf(stderr, CMD ": write: standard output\n");
        rc = -1;
    }
    return rc < 0 ? 1 : 0;
}

int ty_cli_install(int argc, char **argv)
{
    opts o = {.ns = "trainyard-system", .image = "trainyard:latest", .replicas = 2};
    for (size_t i = 0; i < TY_ARRAY_LEN(o.manage); i++)
        o.manage[i] = true;
    bool docker = false;
    size_t nkinds = 0;
    while (ty_kinds()[nkinds])
        nkinds++;
    if (nkinds > TY_ARRAY_LEN(o.manage)) {
        fprintf(stderr, CMD ": %zu kinds: raise opts.manage's size\n", nkinds);
        return 1;
    }
    static const struct option longopts[] = {
        {"namespace", required_argument, NULL, 'n'},
        {"image", required_argument, NULL, 'i'},
        {"replicas", required_argument, NULL, 'r'},
        {"manage", required_argument, NULL, 'm'},
        {"output", required_argument, NULL, 'o'},
        {"dockerfile", no_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n': {
            const char *why = ty_check_dns1123_label(optarg);
            if (why) {
                fprintf(stderr, CMD ": --namespace: %s: %s\n", optarg, why);
                return 2;
            }
            o.ns = optarg;
            break;
        }
        case 'i':
            if (!*optarg || strpbrk(optarg, " \t\n")) {
                fprintf(stderr, CMD ": --image: not an image reference: \"%s\"\n", optarg);
                return 2;
            }
            o.image = optarg;
            break;
        case 'r': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || end == optarg || n < 1 || n > 16) {
                fprintf(stderr, CMD ": --replicas: not a count from 1 to 16: %s\n", optarg);
                return 2;
            }
            o.replicas = (int)n;
            break;
        }
        case 'm':
            if (parse_manage(optarg, &o) < 0)
                return 2;
            break;
        case 'o':
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "yaml") != 0) {
                fprintf(stderr, CMD ": --output: yaml or json, not %s\n", optarg);
                return 2;
            }
            o.json = strcmp(optarg, "json") == 0;
            break;
        case 'D':
            docker = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, CMD ": unexpected argument %s (see trainyard help install)\n",
                argv[optind]);
        return 2;
    }
    if (docker) {
        fputs(dockerfile, stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    return print_objects(&o);
}
