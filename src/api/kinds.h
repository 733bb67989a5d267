/* The one registry of the kinds trainyard serves, core ones included (kinds.c).
 *
 * Each kind is one entry: its names, scope, subresources, categories, OpenAPI description or
 * schema, defaulting and validation (`ops`), strategic merge patch keys and the controllers
 * that watch it. The API server (routing, discovery), /openapi/v3, the store (scope), patches,
 * Tables and the controllers' watch lists all read it; adding a kind is one entry here, its
 * schema file and ops (api/<group>.c), its printer (api/table.c) and its controller
 * (docs/architecture.md, "Adding a kind"). */
#ifndef TY_API_KINDS_H
#define TY_API_KINDS_H

#include <jansson.h>
#include <stdbool.h>

/* A list that strategic merge patches and server-side apply merge element by element. `path`
 * names fields from the object's root, list elements skipped; "spec.*containers" stands for
 * containers, initContainers and ephemeralContainers, whose fields merge alike. An empty `key`
 * marks a list of primitives merged as a set (patchStrategy merge without a merge key). */
typedef struct ty_merge_key {
    const char *path;
    const char *key;
} ty_merge_key;

/* The controllers whose watch lists are the registry's (ty_kind_info.watched_by): adding a
 * kind they must see is setting the flag on its entry. */
enum {
    TY_WATCHED_BY_ADMISSION = 1u << 0, /* controllers/admission: Kueue's scheduling pass */
    TY_WATCHED_BY_JOBS = 1u << 1,      /* controllers/jobs: the training jobs and their pods */
    TY_WATCHED_BY_WORKLOADS = 1u << 2, /* controllers/workloads: Kueue's job side */
    TY_WATCHED_BY_BATCH = 1u << 3,     /* controllers/batchjobs: batch/v1 Jobs and pods */
    TY_WATCHED_BY_SERVING = 1u << 4,   /* controllers/serving: KServe's kinds and pods */
    TY_WATCHED_BY_EXPERIMENTS = 1u << 5, /* controllers/experiment: Katib and trial jobs */
};

struct ty_kind_ops;     /* api/api_int.h */
struct ty_table_kind;   /* api/table.c */

typedef struct ty_kind_info {
    const char *group;       /* "kubeflow.org"; "" for the core group */
    const char *version;     /* "v1" */
    const char *kind;        /* "PyTorchJob" */
    const char *resource;    /* plural, lowercase: "pytorchjobs" */
    const char *singular;    /* "pytorchjob" */
    const char *short_names; /* comma separated, may be "" */
    bool namespaced;
    bool has_status; /* serves the status subresource */
    bool has_log;    /* serves the log subresource (pods) */
    bool in_all;     /* in the "all" category: `kubectl get all` lists it */
    /* A Kubernetes built-in kind (core, scheduling.k8s.io PriorityClass): clients send
     * strategic merge patches for it and /openapi/v3 offers them; custom resources get merge
     * patches. */
    bool builtin;
    /* A review (authorization.k8s.io SubjectAccessReview and kin): only created, answered by
     * the API server from what it is asked, never stored. */
    bool review;
    /* Its schema, defaults and rules (ty_api_admit); NULL for the core kinds the API server
     * checks itself (pods, namespaces, ...), which /openapi/v3 describes by `description` as
     * objects that keep unknown fields. */
    const struct ty_kind_ops *ops;
    const char *description;
    /* Its lists merged by key, ending with {NULL}; NULL: none but metadata's (api/patch.c) */
    const ty_merge_key *merge_keys;
    /* Its Table columns and cells (kubectl get); NULL: name and age, as for any resource */
    const struct ty_table_kind *table;
    unsigned watched_by; /* TY_WATCHED_BY_*: the controllers that watch it */
    /* A Kubeflow training job's operator: the name its pods carry in the label
     * training.kubeflow.org/operator-name and its Events as their source; NULL for a kind
     * that is not such a job. The job controller runs every kind that has one. */
    const char *job_operator;
    /* A job kind Kueue's job side queues (controllers/workloads: a Workload per job labelled
     * kueue.x-k8s.io/queue-name, suspended until admitted): the training jobs and batch/v1
     * Job. */
    bool kueue_job;
    /* What the API server fills in on every create, whoever creates it (the store calls it:
     * controllers create pods and services straight into the store); NULL: nothing
     * (api/core.c) */
    void (*create_defaults)(json_t *obj);
} ty_kind_info;

/* Every kind, NULL-terminated: the core group's first, then each group's in the order
 * discovery lists them. */
const ty_kind_info *const *ty_kinds(void);
/* The kind for an apiVersion ("kueue.x-k8s.io/v1beta1", "v1") and kind; NULL when none. */
const ty_kind_info *ty_kind_of(const char *api_version, const char *kind);
/* The kind stored as `resource` (a plural: "pods", "clusterqueues"); NULL when none. Plurals
 * are unique across groups, which is what lets the store key objects by them alone. */
const ty_kind_info *ty_kind_of_resource(const char *resource);
/* The training job kind whose operator is `operator_name` (a pod's operator-name label);
 * NULL when none. */
const ty_kind_info *ty_kind_of_job_operator(const char *operator_name);

#endif
