/* Kueue kinds (kueue.x-k8s.io/v1beta1) and scheduling.k8s.io/v1 PriorityClass: defaults, each
 * validation rule with its position in the source, the registry's flags, tables, patches.
 *
 * Manifests are YAML parsed by the manifest decoder, so errors carry file:line:col. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/kueue.h"
#include "api/manifest.h"
#include "api/openapi.h"
#include "api/patch.h"
#include "api/table.h"
#include "base/buf.h"
#include "base/mem.h"

/* Admits the single document of `yaml`; returns every error formatted, one a line ("" when
 * admitted), and the defaulted object in *out when asked. */
static char *admit(const char *yaml, json_t **out)
{
    ty_manifest *m = NULL;
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_manifest_parse("q.yaml", yaml, strlen(yaml), &m, &err), 0, "%s", err.msg);
    cr_assert_eq(m->ndocs, 1);
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    int rc = ty_api_admit(m, m->docs[0].obj, &errs);
    cr_assert_eq(rc, errs.count ? -1 : 0);
    ty_buf b = TY_BUF_INIT;
    ty_field_errors_format(&errs, "q.yaml", &b);
    ty_field_errors_free(&errs);
    if (out)
        *out = json_incref(m->docs[0].obj);
    ty_manifest_free(m);
    return b.data ? ty_buf_steal(&b) : ty_strdup("");
}

static void expect_errors(const char *yaml, const char *want)
{
    char *got = admit(yaml, NULL);
    cr_assert_str_eq(got, want, "got:\n%s\nwant:\n%s", got, want);
    free(got);
}

static void expect_ok(const char *yaml, json_t **out)
{
    char *got = admit(yaml, out);
    cr_assert_str_eq(got, "", "unexpected errors:\n%s", got);
    free(got);
}

/* Asserts that obj (borrowed) equals the JSON `want_text`. */
static void expect_json(const json_t *obj, const char *want_text)
{
    json_t *want = json_loads(want_text, 0, NULL);
    cr_assert_not_null(want, "bad test json: %s", want_text);
    char *g = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT);
    cr_assert(json_equal(obj, want), "got %s\nwant %s", g, want_text);
    free(g);
    json_decref(want);
}

#define CQ_HEAD "apiVersion: kueue.x-k8s.io/v1beta1\nkind: ClusterQueue\nmetadata:\n  name: cq\n"

/* ---------- registry ---------- */

Test(kueue_api, kinds_are_registered_with_kueue_names_and_scopes)
{
    const ty_kind_info *cq = ty_api_kind(TY_KUEUE_API_VERSION, "ClusterQueue");
    cr_assert_not_null(cq);
    cr_assert_str_eq(cq->resource, "clusterqueues");
    cr_assert_str_eq(cq->short_names, "cq");
    cr_assert(!cq->namespaced && cq->has_status && !cq->in_all && !cq->builtin);
    const ty_kind_info *lq = ty_api_kind("kueue.x-k8s.io/v1beta1", "LocalQueue");
    cr_assert(lq->namespaced && lq->has_status);
    cr_assert_str_eq(lq->short_names, "queue,queues,lq");
    const ty_kind_info *wl = ty_api_kind("kueue.x-k8s.io/v1beta1", "Workload");
    cr_assert(wl->namespaced && wl->has_status);
    cr_assert_str_eq(wl->short_names, "wl");
    const ty_kind_info *rf = ty_api_kind("kueue.x-k8s.io/v1beta1", "ResourceFlavor");
    cr_assert(!rf->namespaced && !rf->has_status);
    cr_assert_str_eq(rf->short_names, "flavor,flavors,rf");
    const ty_kind_info *wpc = ty_api_kind("kueue.x-k8s.io/v1beta1", "WorkloadPriorityClass");
    cr_assert_str_eq(wpc->resource, "workloadpriorityclasses");
    cr_assert_str_eq(wpc->short_names, "");
    const ty_kind_info *pc = ty_api_kind("scheduling.k8s.io/v1", "PriorityClass");
    cr_assert(pc->builtin && !pc->namespaced && !pc->has_status);
    cr_assert_str_eq(pc->short_names, "pc");
    cr_assert_null(ty_api_kind("kueue.x-k8s.io/v1", "ClusterQueue"));
    /* Every schema loads and names its kind for kubectl explain. */
    for (const ty_kind_info *const *k = ty_kinds(); *k; k++) {
        if (!(*k)->ops)
            continue;
        const json_t *s = ty_api_schema(*k);
        cr_assert_not_null(s, "%s", (*k)->kind);
        const json_t *gvk = json_array_get(json_object_get(s, "x-kubernetes-group-version-kind"), 0);
        cr_assert_str_eq(json_string_value(json_object_get(gvk, "kind")), (*k)->kind);
    }
}

Test(kueue_api, wrong_version_suggests_the_served_one)
{
    expect_errors("apiVersion: kueue.x-k8s.io/v1alpha1\nkind: ClusterQueue\nmetadata:\n  name: a\n",
                  "q.yaml:2:7: kind: no kind \"ClusterQueue\" is registered for version "
                  "\"kueue.x-k8s.io/v1alpha1\" (did you mean apiVersion \"kueue.x-k8s.io/v1beta1\"?)\n");
}

/* ---------- defaults ---------- */

Test(kueue_api, clusterqueue_defaults)
{
    json_t *o;
    expect_ok(CQ_HEAD "spec:\n  fairSharing: {}\n", &o);
    expect_json(json_object_get(o, "spec"),
                "{\"queueingStrategy\":\"BestEffortFIFO\",\"stopPolicy\":\"None\","
                "\"flavorFungibility\":{\"whenCanBorrow\":\"Borrow\",\"whenCanPreempt\":\"TryNextFlavor\"},"
                "\"preemption\":{\"reclaimWithinCohort\":\"Never\",\"withinClusterQueue\":\"Never\","
                "\"borrowWithinCohort\":{\"policy\":\"Never\"}},\"fairSharing\":{\"weight\":\"1\"}}");
    /* cluster-scoped: no namespace is added */
    cr_assert_null(json_object_get(json_object_get(o, "metadata"), "namespace"));
    json_decref(o);
    /* What is written stays. */
    expect_ok(CQ_HEAD "spec:\n  queueingStrategy: StrictFIFO\n  preemption:\n"
              "    withinClusterQueue: LowerPriority\n  flavorFungibility:\n"
              "    whenCanBorrow: TryNextFlavor\n", &o);
    expect_json(json_object_get(o, "spec"),
                "{\"queueingStrategy\":\"StrictFIFO\",\"stopPolicy\":\"None\","
                "\"flavorFungibility\":{\"whenCanBorrow\":\"TryNextFlavor\",\"whenCanPreempt\":\"TryNextFlavor\"},"
                "\"preemption\":{\"reclaimWithinCohort\":\"Never\",\"withinClusterQueue\":\"LowerPriority\","
                "\"borrowWithinCohort\":{\"policy\":\"Never\"}}}");
    json_decref(o);
}

Test(kueue_api, localqueue_workload_priorityclass_defaults)
{
    json_t *o;
    expect_ok("apiVersion: kueue.x-k8s.io/v1beta1\nkind: LocalQueue\nmetadata:\n  name: q\n"
              "spec:\n  clusterQueue: cq\n", &o);
    expect_json(json_object_get(o, "spec"), "{\"clusterQueue\":\"cq\",\"stopPolicy\":\"None\"}");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "metadata"), "namespace")),
                     "default");
    json_decref(o);

    expect_ok("apiVersion: kueue.x-k8s.io/v1beta1\nkind: Workload\nmetadata:\n  name: w\n"
              "spec:\n  queueName: q\n  podSets:\n  - template:\n      spec: {containers: []}\n"
              "  - name: workers\n    count: 3\n    template: {}\n", &o);
    expect_json(json_object_get(o, "spec"),
                "{\"queueName\":\"q\",\"active\":true,\"priorityClassSource\":\"\",\"podSets\":["
                "{\"name\":\"main\",\"count\":1,\"template\":{\"spec\":{\"containers\":[]}}},"
                "{\"name\":\"workers\",\"count\":3,\"template\":{}}]}");
    json_decref(o);

    expect_ok("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: high\n"
              "value: 1000\n", &o);
    cr_assert_str_eq(json_string_value(json_object_get(o, "preemptionPolicy")),
                     "PreemptLowerPriority");
    json_decref(o);
    expect_ok("apiVersion: kueue.x-k8s.io/v1beta1\nkind: WorkloadPriorityClass\nmetadata:\n"
              "  name: high\nvalue: 10000\ndescription: urgent work\n", NULL);
    expect_ok("apiVersion: kueue.x-k8s.io/v1beta1\nkind: ResourceFlavor\nmetadata:\n  name: a100\n"
              "spec:\n  nodeLabels: {gpu: a100}\n  nodeTaints:\n  - {key: gpu, value: \"true\", "
              "effect: NoSchedule}\n  tolerations:\n  - {key: spot, operator: Exists}\n", NULL);
}

/* ---------- ClusterQueue rules ---------- */

#define RGS(res)                                                                                   \
    "  resourceGroups:\n  - coveredResources: [cpu, memory]\n    flavors:\n"                      \
    "    - name: f\n      resources:\n" res
#define RG(res) "spec:\n" RGS(res)

Test(kueue_api, clusterqueue_accepts_a_full_queue)
{
    expect_ok(CQ_HEAD "spec:\n  cohort: research\n  namespaceSelector:\n    matchLabels: {team: a}\n"
              "  resourceGroups:\n  - coveredResources: [cpu, memory]\n    flavors:\n"
              "    - name: on-demand\n      resources:\n"
              "      - {name: cpu, nominalQuota: 9, borrowingLimit: 1, lendingLimit: 9}\n"
              "      - {name: memory, nominalQuota: 36Gi, lendingLimit: 1Gi}\n"
              "    - name: spot\n      resources:\n"
              "      - {name: cpu, nominalQuota: 0.5}\n      - {name: memory, nominalQuota: 0}\n"
              "  - coveredResources: [nvidia.com/gpu]\n    flavors:\n    - name: a100\n"
              "      resources: [{name: nvidia.com/gpu, nominalQuota: 8}]\n"
              "  preemption:\n    reclaimWithinCohort: Any\n    borrowWithinCohort:\n"
              "      policy: LowerPriority\n      maxPriorityThreshold: 100\n"
              "  fairSharing: {weight: \"0.5\"}\n  stopPolicy: Hold\n", NULL);
}

Test(kueue_api, lending_limit_above_nominal_quota)
{
    expect_errors(CQ_HEAD "spec:\n  cohort: c\n  resourceGroups:\n  - coveredResources: [cpu]\n"
                  "    flavors:\n    - name: f\n      resources:\n"
                  "      - name: cpu\n        nominalQuota: 2\n        lendingLimit: 3\n",
                  "q.yaml:14:23: spec.resourceGroups[0].flavors[0].resources[0].lendingLimit: "
                  "Invalid value: \"3\": must be less than or equal to the nominalQuota\n");
}

Test(kueue_api, limits_need_a_cohort)
{
    expect_errors(CQ_HEAD RG("      - {name: cpu, nominalQuota: 2, lendingLimit: 1}\n"
                             "      - {name: memory, nominalQuota: 1Gi, borrowingLimit: 1Gi}\n"),
                  "q.yaml:11:52: spec.resourceGroups[0].flavors[0].resources[0].lendingLimit: "
                  "Invalid value: \"1\": must be nil when cohort is empty\n"
                  "q.yaml:6:3: spec: Invalid value: \"object\": borrowingLimit must be nil when "
                  "cohort is empty\n");
}

Test(kueue_api, quantities_are_not_negative)
{
    expect_errors(CQ_HEAD "spec:\n  cohort: c\n" RGS("      - {name: cpu, nominalQuota: -1}\n"
                                                    "      - {name: memory, nominalQuota: 1Gi, "
                                                    "borrowingLimit: -1Gi}\n")
                  "  fairSharing: {weight: -2}\n",
                  "q.yaml:12:35: spec.resourceGroups[0].flavors[0].resources[0].nominalQuota: "
                  "Invalid value: \"-1\": must be greater than or equal to 0\n"
                  "q.yaml:13:59: spec.resourceGroups[0].flavors[0].resources[1].borrowingLimit: "
                  "Invalid value: \"-1Gi\": must be greater than or equal to 0\n"
                  "q.yaml:14:25: spec.fairSharing.weight: Invalid value: \"-2\": must be greater "
                  "than or equal to 0\n");
}

Test(kueue_api, flavor_resources_follow_covered_resources)
{
    /* in order */
    expect_errors(CQ_HEAD RG("      - {name: memory, nominalQuota: 1}\n"
                             "      - {name: cpu, nominalQuota: 1}\n"),
                  "q.yaml:11:16: spec.resourceGroups[0].flavors[0].resources[0].name: Invalid "
                  "value: \"memory\": must match the name in coveredResources\n"
                  "q.yaml:12:16: spec.resourceGroups[0].flavors[0].resources[1].name: Invalid "
                  "value: \"cpu\": must match the name in coveredResources\n");
    /* as many */
    expect_errors(CQ_HEAD RG("      - {name: cpu, nominalQuota: 1}\n"),
                  "q.yaml:7:5: spec.resourceGroups[0]: Invalid value: \"object\": flavors must "
                  "have the same number of resources as the coveredResources\n");
}

Test(kueue_api, resources_and_flavors_appear_once)
{
    expect_errors(CQ_HEAD "spec:\n  resourceGroups:\n  - coveredResources: [cpu]\n    flavors:\n"
                  "    - {name: f, resources: [{name: cpu, nominalQuota: 1}]}\n"
                  "  - coveredResources: [cpu]\n    flavors:\n"
                  "    - {name: f, resources: [{name: cpu, nominalQuota: 1}]}\n",
                  "q.yaml:10:24: spec.resourceGroups[1].coveredResources[0]: Duplicate value: "
                  "\"cpu\"\n"
                  "q.yaml:12:14: spec.resourceGroups[1].flavors[0].name: Duplicate value: \"f\"\n");
}

Test(kueue_api, list_sizes)
{
    expect_errors(CQ_HEAD "spec:\n  resourceGroups:\n  - coveredResources: []\n    flavors: []\n",
                  "q.yaml:7:23: spec.resourceGroups[0].coveredResources: Invalid value: 0: "
                  "spec.resourceGroups[0].coveredResources in body should have at least 1 items\n"
                  "q.yaml:8:14: spec.resourceGroups[0].flavors: Invalid value: 0: "
                  "spec.resourceGroups[0].flavors in body should have at least 1 items\n");
    ty_buf b = TY_BUF_INIT;
    ty_buf_adds(&b, CQ_HEAD "spec:\n  resourceGroups:\n");
    for (int i = 0; i < 17; i++)
        ty_buf_addf(&b, "  - coveredResources: [r%d]\n    flavors: [{name: f%d, resources: "
                        "[{name: r%d, nominalQuota: 1}]}]\n", i, i, i);
    expect_errors(b.data, "q.yaml:7:3: spec.resourceGroups: Too many: 17: must have at most 16 "
                          "items\n");
    ty_buf_free(&b);
}

Test(kueue_api, names_and_enums)
{
    expect_errors(CQ_HEAD "spec:\n  cohort: Research_A\n  queueingStrategy: LIFO\n"
                  "  stopPolicy: Stop\n" RGS("      - {name: cpu, nominalQuota: 1}\n"
                                            "      - {name: memory, nominalQuota: 1}\n")
                  "  - coveredResources: [\"bad resource\"]\n    flavors:\n"
                  "    - {name: Big_Flavor, resources: [{name: \"bad resource\", nominalQuota: 1}]}\n",
                  "q.yaml:7:21: spec.queueingStrategy: Unsupported value: \"LIFO\": supported "
                  "values: \"StrictFIFO\", \"BestEffortFIFO\"\n"
                  "q.yaml:8:15: spec.stopPolicy: Unsupported value: \"Stop\": supported values: "
                  "\"None\", \"Hold\", \"HoldAndDrain\"\n"
                  "q.yaml:6:11: spec.cohort: Invalid value: \"Research_A\": spec.cohort in body "
                  "should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'\n"
                  "q.yaml:16:24: spec.resourceGroups[1].coveredResources[0]: Invalid value: "
                  "\"bad resource\": name part must consist of alphanumeric characters, '-', '_' "
                  "or '.', and must start and end with an alphanumeric character ("
                  "regex used for validation is "
                  "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')\n"
                  "q.yaml:18:14: spec.resourceGroups[1].flavors[0].name: Invalid value: "
                  "\"Big_Flavor\": spec.resourceGroups[1].flavors[0].name in body should match "
                  "'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'\n");
}

Test(kueue_api, preemption_and_selector_rules)
{
    expect_errors(CQ_HEAD "spec:\n  preemption:\n    reclaimWithinCohort: Never\n"
                  "    borrowWithinCohort: {policy: LowerPriority}\n  namespaceSelector:\n"
                  "    matchExpressions:\n    - {key: team, operator: In}\n"
                  "    - {key: team, operator: Exists, values: [a]}\n"
                  "    - {key: team, operator: Near}\n",
                  "q.yaml:11:7: spec.namespaceSelector.matchExpressions[0].values: Required "
                  "value: must be specified when `operator` is 'In' or 'NotIn'\n"
                  "q.yaml:12:45: spec.namespaceSelector.matchExpressions[1].values: Forbidden: "
                  "may not be specified when `operator` is 'Exists' or 'DoesNotExist'\n"
                  "q.yaml:13:29: spec.namespaceSelector.matchExpressions[2].operator: Invalid "
                  "value: \"Near\": not a valid selector operator\n"
                  "q.yaml:7:5: spec.preemption: Invalid value: \"object\": "
                  "reclaimWithinCohort=Never and borrowWithinCohort.Policy!=Never\n");
}

Test(kueue_api, unknown_fields_and_types)
{
    expect_errors(CQ_HEAD "spec:\n  cohorts: a\n  resourceGroups:\n  - coveredResources: [cpu]\n"
                  "    flavors:\n    - {name: f, resources: [{name: cpu, nominalQuota: lots}]}\n",
                  "q.yaml:6:3: unknown field \"spec.cohorts\" (did you mean \"cohort\"?)\n"
                  "q.yaml:10:55: spec.resourceGroups[0].flavors[0].resources[0].nominalQuota: "
                  "Invalid value: \"lots\": quantities must match the regular expression "
                  "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'\n");
}

/* ---------- LocalQueue, Workload ---------- */

Test(kueue_api, localqueue_rules)
{
    expect_errors("apiVersion: kueue.x-k8s.io/v1beta1\nkind: LocalQueue\nmetadata:\n  name: Q\n"
                  "  namespace: team-a\nspec:\n  clusterQueue: CQ\n  stopPolicy: Drain\n",
                  "q.yaml:8:15: spec.stopPolicy: Unsupported value: \"Drain\": supported values: "
                  "\"None\", \"Hold\", \"HoldAndDrain\"\n"
                  "q.yaml:4:9: metadata.name: Invalid value: \"Q\": a lowercase RFC 1123 subdomain "
                  "must consist of lower case alphanumeric characters, '-' or '.', and must start "
                  "and end with an alphanumeric character (regex used for "
                  "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')\n"
                  "q.yaml:7:17: spec.clusterQueue: Invalid value: \"CQ\": spec.clusterQueue in "
                  "body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'\n");
}

#define WL_HEAD "apiVersion: kueue.x-k8s.io/v1beta1\nkind: Workload\nmetadata:\n  name: w\n"

Test(kueue_api, workload_spec_rules)
{
    expect_errors(WL_HEAD "spec:\n  priorityClassName: high\n  podSets:\n"
                  "  - {name: a, count: 2, minCount: 3, template: {}}\n"
                  "  - {name: a, count: 2, minCount: 1, template: {}}\n"
                  "  - {name: Bad_Name, count: -1, template: {}}\n",
                  "q.yaml:10:29: spec.podSets[2].count: Invalid value: -1: must be greater than "
                  "or equal to 0\n"
                  "q.yaml:6:3: spec: Invalid value: \"object\": priority should not be nil when "
                  "priorityClassName is set\n"
                  "q.yaml:8:5: spec.podSets[0]: Invalid value: \"object\": minCount should be "
                  "positive and less or equal to count\n"
                  "q.yaml:9:5: spec.podSets[1]: Duplicate value: map[string]interface "
                  "{}{\"name\":\"a\"}\n"
                  "q.yaml:10:12: spec.podSets[2].name: Invalid value: \"Bad_Name\": "
                  "spec.podSets[2].name in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'\n"
                  "q.yaml:8:3: spec.podSets: Invalid value: 2: at most one podSet can use "
                  "minCount\n");
    expect_errors(WL_HEAD "spec:\n  podSets: []\n",
                  "q.yaml:6:12: spec.podSets: Invalid value: 0: spec.podSets in body should have "
                  "at least 1 items\n");
    expect_errors(WL_HEAD "spec: {}\n", "q.yaml:5:7: spec.podSets: Required value\n");
}

Test(kueue_api, workload_status_rules)
{
    /* The admission must cover the pod sets only once quota is reserved. */
    expect_ok(WL_HEAD "spec:\n  podSets: [{count: 2, template: {}}]\nstatus:\n  admission:\n"
              "    clusterQueue: cq\n    podSetAssignments: []\n", NULL);
    expect_ok(WL_HEAD "spec:\n  podSets: [{count: 2, template: {}}]\nstatus:\n  admission:\n"
              "    clusterQueue: cq\n    podSetAssignments:\n"
              "    - {flavors: {cpu: f}, resourceUsage: {cpu: 2}, count: 2}\n"
              "  conditions:\n  - {type: Admitted, status: \"True\", reason: Admitted, message: ok,"
              " lastTransitionTime: \"2026-01-01T00:00:00Z\"}\n"
              "  reclaimablePods: [{name: main, count: 1}]\n"
              "  requeueState: {count: 1, requeueAt: \"2026-01-01T00:00:00Z\"}\n", NULL);
    expect_errors(WL_HEAD "spec:\n  podSets: [{count: 2, template: {}}]\nstatus:\n  admission:\n"
                  "    clusterQueue: cq\n    podSetAssignments: []\n"
                  "  conditions:\n  - {type: Admitted, status: Yes}\n"
                  "  - {type: QuotaReserved, status: \"True\", reason: QuotaReserved, message: ok,"
                  " lastTransitionTime: \"2026-01-01T00:00:00Z\"}\n"
                  "  reclaimablePods: [{name: other, count: 1}, {name: main, count: 3}]\n",
                  "q.yaml:12:30: status.conditions[0].status: Invalid value: true: must be of "
                  "type string\n"
                  "q.yaml:12:5: status.conditions[0].lastTransitionTime: Required value\n"
                  "q.yaml:12:5: status.conditions[0].reason: Required value\n"
                  "q.yaml:12:5: status.conditions[0].message: Required value\n"
                  "q.yaml:10:24: status.admission.podSetAssignments: Invalid value: 0: must have "
                  "the same number of podSets as the spec\n"
                  "q.yaml:14:28: status.reclaimablePods[0].name: Not found: \"other\"\n"
                  "q.yaml:14:66: status.reclaimablePods[1].count: Invalid value: 3: should be less "
                  "or equal to 2\n");
}

/* ---------- ResourceFlavor, priority classes ---------- */

#define RF_HEAD "apiVersion: kueue.x-k8s.io/v1beta1\nkind: ResourceFlavor\nmetadata:\n  name: f\n"

Test(kueue_api, resourceflavor_rules)
{
    expect_errors(RF_HEAD "spec:\n  nodeLabels: {a: \"1\", b: \"2\", c: \"3\", d: \"4\", e: \"5\", "
                  "f: \"6\", g: \"7\", h: \"8\", \"bad key!\": x}\n"
                  "  nodeTaints:\n  - {key: gpu, effect: NoRun}\n"
                  "  tolerations:\n  - {operator: Equal, value: x}\n  - {key: k, operator: Exists, "
                  "value: v, tolerationSeconds: 5}\n  topologyName: rack\n",
                  "q.yaml:6:15: spec.nodeLabels: Too many: 9: must have at most 8 items\n"
                  "q.yaml:6:80: spec.nodeLabels: Invalid value: \"bad key!\": name part must "
                  "consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                  "with an alphanumeric character ("
                  "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')\n"
                  "q.yaml:8:3: spec.nodeTaints: Invalid value: \"array\": supported taint effect "
                  "values: 'NoSchedule', 'PreferNoSchedule', 'NoExecute'\n"
                  "q.yaml:10:3: spec.tolerations: Invalid value: \"array\": operator must be "
                  "Exists when 'key' is empty, which means 'match all values and all keys'\n"
                  "q.yaml:10:3: spec.tolerations: Invalid value: \"array\": effect must be "
                  "'NoExecute' when 'tolerationSeconds' is set\n"
                  "q.yaml:10:3: spec.tolerations: Invalid value: \"array\": a value must be empty "
                  "when 'operator' is 'Exists'\n");
    expect_errors(RF_HEAD "spec:\n  topologyName: rack\n",
                  "q.yaml:6:3: spec: Invalid value: \"object\": at least one nodeLabel is "
                  "required when topology is set\n");
}

Test(kueue_api, priority_classes)
{
    expect_errors("apiVersion: kueue.x-k8s.io/v1beta1\nkind: WorkloadPriorityClass\nmetadata:\n"
                  "  name: p\ndescription: no value\n",
                  "q.yaml:1:1: value: Required value\n");
    expect_errors("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n"
                  "  name: system-mine\nvalue: 2000000000\npreemptionPolicy: Always\n",
                  "q.yaml:6:19: preemptionPolicy: Unsupported value: \"Always\": supported "
                  "values: \"Never\", \"PreemptLowerPriority\"\n"
                  "q.yaml:4:9: metadata.name: Forbidden: priority class names with 'system-' "
                  "prefix are reserved\n"
                  "q.yaml:5:8: value: Forbidden: maximum allowed value of a user defined "
                  "priority is 1000000000\n");
}

/* ---------- tables and patches ---------- */

static const char *col_name(const json_t *t, size_t i)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(t, "columnDefinitions"), i),
                                             "name"));
}

Test(kueue_api, tables_print_kueue_columns)
{
    json_t *objs = json_loads(
        "[{\"metadata\":{\"name\":\"cq\",\"creationTimestamp\":\"2026-01-01T00:00:00Z\"},"
        "\"spec\":{\"cohort\":\"c\",\"queueingStrategy\":\"StrictFIFO\",\"resourceGroups\":[{"
        "\"coveredResources\":[\"cpu\",\"memory\",\"nvidia.com/gpu\"],\"flavors\":[{\"name\":\"f\","
        "\"resources\":[{\"name\":\"cpu\",\"nominalQuota\":4},{\"name\":\"memory\","
        "\"nominalQuota\":\"0\"},{\"name\":\"nvidia.com/gpu\",\"nominalQuota\":\"8\"}]}]}]},"
        "\"status\":{\"pendingWorkloads\":3,\"admittedWorkloads\":1,\"flavorsReservation\":["
        "{\"name\":\"f\",\"resources\":[{\"name\":\"cpu\",\"total\":\"2\"},{\"name\":\"memory\","
        "\"total\":\"0\"},{\"name\":\"nvidia.com/gpu\",\"total\":\"12\"}]}]}}]", 0, NULL);
    int64_t now = (int64_t)1767225600 * 1000000000 + (int64_t)330 * 1000000000; /* +5m30s */
    json_t *t = ty_table_build("clusterqueues", objs, NULL, now);
    /* Kueue's columns, plus trainyard's Usage (and Admitted Workloads not only wide). */
    static const char *const cq[] = {"Name", "Cohort", "Strategy", "Pending Workloads",
                                     "Admitted Workloads", "Usage", "Age"};
    for (size_t i = 0; i < 7; i++)
        cr_assert_str_eq(col_name(t, i), cq[i]);
    expect_json(json_object_get(json_array_get(json_object_get(t, "rows"), 0), "cells"),
                "[\"cq\",\"c\",\"StrictFIFO\",3,1,\"cpu 2/4, nvidia.com/gpu 12/8\",\"5m30s\"]");
    json_decref(t);
    json_decref(objs);

    objs = json_loads("[{\"metadata\":{\"name\":\"w\"},\"spec\":{\"queueName\":\"q\"},"
                      "\"status\":{\"admission\":{\"clusterQueue\":\"cq\"},\"conditions\":["
                      "{\"type\":\"QuotaReserved\",\"status\":\"True\"},"
                      "{\"type\":\"Admitted\",\"status\":\"True\"}]}}]", 0, NULL);
    t = ty_table_build("workloads", objs, NULL, now);
    static const char *const wl[] = {"Name", "Queue", "Reserved in", "Admitted", "Finished",
                                     "Age", "Waiting For"};
    for (size_t i = 0; i < 7; i++)
        cr_assert_str_eq(col_name(t, i), wl[i]);
    expect_json(json_object_get(json_array_get(json_object_get(t, "rows"), 0), "cells"),
                "[\"w\",\"q\",\"cq\",\"True\",null,\"<unknown>\",\"<none>\"]");
    json_decref(t);
    json_decref(objs);
    /* A waiting workload says why. */
    objs = json_loads("[{\"metadata\":{\"name\":\"w\"},\"spec\":{\"queueName\":\"q\"},"
                      "\"status\":{\"conditions\":[{\"type\":\"QuotaReserved\",\"status\":"
                      "\"False\",\"reason\":\"Pending\",\"message\":\"LocalQueue q doesn't exist\"}]}}]",
                      0, NULL);
    t = ty_table_build("workloads", objs, NULL, now);
    expect_json(json_object_get(json_array_get(json_object_get(t, "rows"), 0), "cells"),
                "[\"w\",\"q\",null,null,null,\"<unknown>\",\"LocalQueue q doesn't exist\"]");
    json_decref(t);
    json_decref(objs);

    objs = json_loads("[{\"metadata\":{\"name\":\"p\"},\"value\":5,\"globalDefault\":true,"
                      "\"preemptionPolicy\":\"Never\"}]", 0, NULL);
    t = ty_table_build("priorityclasses", objs, NULL, now);
    expect_json(json_object_get(json_array_get(json_object_get(t, "rows"), 0), "cells"),
                "[\"p\",5,true,\"<unknown>\",\"Never\"]");
    cr_assert_str_eq(col_name(t, 2), "Global-Default");
    json_decref(t);
    t = ty_table_build("localqueues", objs, NULL, now);
    cr_assert_str_eq(col_name(t, 1), "ClusterQueue");
    json_decref(t);
    t = ty_table_build("workloadpriorityclasses", objs, NULL, now);
    expect_json(json_object_get(json_array_get(json_object_get(t, "rows"), 0), "cells"),
                "[\"p\",5,\"<unknown>\"]");
    json_decref(t);
    json_decref(objs);
}

Test(kueue_api, strategic_merge_for_priorityclass_only)
{
    json_t *cur = json_loads("{\"metadata\":{\"name\":\"p\",\"labels\":{\"a\":\"1\"}},\"value\":1,"
                             "\"description\":\"x\"}", 0, NULL);
    json_t *patch = json_loads("{\"value\":2,\"description\":null,\"metadata\":{\"labels\":"
                               "{\"b\":\"2\"}}}", 0, NULL);
    json_t *out = NULL;
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_patch_strategic("priorityclasses", cur, patch, &out, &err), 0, "%s", err.msg);
    expect_json(out, "{\"metadata\":{\"name\":\"p\",\"labels\":{\"a\":\"1\",\"b\":\"2\"}},\"value\":2}");
    json_decref(out);
    out = NULL;
    cr_assert_eq(ty_patch_strategic("clusterqueues", cur, patch, &out, &err), -1);
    cr_assert_eq(err.code, 415);
    json_decref(cur);
    json_decref(patch);
}

/* ---------- OpenAPI ---------- */

static const json_t *patch_content(const json_t *doc, const char *path)
{
    const json_t *p = json_object_get(json_object_get(json_object_get(doc, "paths"), path),
                                      "patch");
    return json_object_get(json_object_get(p, "requestBody"), "content");
}

Test(kueue_api, openapi_documents_for_both_groups)
{
    json_t *kq = ty_openapi_v3_group("kueue.x-k8s.io/v1beta1");
    cr_assert_not_null(kq);
    const json_t *schemas = json_object_get(json_object_get(kq, "components"), "schemas");
    for (const char *const *n = (const char *const[]){"ClusterQueue", "LocalQueue", "Workload",
                                                      "ResourceFlavor", "WorkloadPriorityClass",
                                                      NULL}; *n; n++) {
        char name[128];
        snprintf(name, sizeof name, "io.x-k8s.kueue.v1beta1.%s", *n);
        cr_assert_not_null(json_object_get(schemas, name), "%s", name);
        snprintf(name, sizeof name, "io.x-k8s.kueue.v1beta1.%sList", *n);
        cr_assert_not_null(json_object_get(schemas, name), "%s", name);
    }
    const json_t *paths = json_object_get(kq, "paths");
    cr_assert_not_null(json_object_get(paths, "/apis/kueue.x-k8s.io/v1beta1/clusterqueues/{name}/status"));
    cr_assert_not_null(json_object_get(paths,
        "/apis/kueue.x-k8s.io/v1beta1/namespaces/{namespace}/workloads/{name}/status"));
    cr_assert_not_null(json_object_get(paths, "/apis/kueue.x-k8s.io/v1beta1/workloads"));
    cr_assert_null(json_object_get(paths, "/apis/kueue.x-k8s.io/v1beta1/resourceflavors/{name}/status"));
    const json_t *content = patch_content(kq, "/apis/kueue.x-k8s.io/v1beta1/clusterqueues/{name}");
    cr_assert_not_null(json_object_get(content, "application/merge-patch+json"));
    cr_assert_null(json_object_get(content, "application/strategic-merge-patch+json"));

    json_t *sc = ty_openapi_v3_group("scheduling.k8s.io/v1");
    cr_assert_not_null(json_object_get(json_object_get(json_object_get(sc, "components"), "schemas"),
                                       "io.k8s.api.scheduling.v1.PriorityClass"));
    content = patch_content(sc, "/apis/scheduling.k8s.io/v1/priorityclasses/{name}");
    cr_assert_not_null(json_object_get(content, "application/strategic-merge-patch+json"));
    cr_assert_null(json_object_get(json_object_get(sc, "paths"),
                                   "/apis/scheduling.k8s.io/v1/priorityclasses/{name}/status"));
    const json_t *op = json_object_get(json_object_get(json_object_get(sc, "paths"),
                                                       "/apis/scheduling.k8s.io/v1/priorityclasses"),
                                       "get");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(op, "tags"), 0)),
                     "scheduling_v1");
    cr_assert_not_null(ty_openapi_v3_hash("kueue.x-k8s.io/v1beta1"));
    cr_assert_str_neq(ty_openapi_v3_hash("kueue.x-k8s.io/v1beta1"),
                      ty_openapi_v3_hash("scheduling.k8s.io/v1"));
    json_decref(kq);
    json_decref(sc);
}

/* ---------- updates ---------- */

static char *check_update(const char *new_text, const char *old_text)
{
    json_t *n = json_loads(new_text, 0, NULL), *o = json_loads(old_text, 0, NULL);
    cr_assert(n && o);
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    int rc = ty_api_check_update(n, o, &errs);
    cr_assert_eq(rc, errs.count ? -1 : 0);
    ty_buf b = TY_BUF_INIT;
    ty_field_errors_format(&errs, NULL, &b);
    ty_field_errors_free(&errs);
    json_decref(n);
    json_decref(o);
    return b.data ? ty_buf_steal(&b) : ty_strdup("");
}

#define LQ(cq) "{\"apiVersion\":\"kueue.x-k8s.io/v1beta1\",\"kind\":\"LocalQueue\",\"spec\":{" cq "}}"
#define PC(v, pp)                                                                                  \
    "{\"apiVersion\":\"scheduling.k8s.io/v1\",\"kind\":\"PriorityClass\",\"value\":" v            \
    ",\"preemptionPolicy\":\"" pp "\"}"
#define RESERVED ",\"status\":{\"conditions\":[{\"type\":\"QuotaReserved\",\"status\":\"True\"}]}"
#define WL(spec, status)                                                                           \
    "{\"apiVersion\":\"kueue.x-k8s.io/v1beta1\",\"kind\":\"Workload\",\"spec\":{" spec "}" status "}"

Test(kueue_api, immutable_fields_on_update)
{
    char *e;
    cr_assert_str_eq(e = check_update(LQ("\"clusterQueue\":\"a\",\"stopPolicy\":\"Hold\""),
                                      LQ("\"clusterQueue\":\"a\",\"stopPolicy\":\"None\"")), "");
    free(e);
    cr_assert_str_eq(e = check_update(LQ("\"clusterQueue\":\"b\""), LQ("\"clusterQueue\":\"a\"")),
                     "spec.clusterQueue: Invalid value: \"string\": field is immutable\n");
    free(e);
    cr_assert_str_eq(e = check_update(PC("1", "Never"), PC("1", "Never")), "");
    free(e);
    cr_assert_str_eq(e = check_update(PC("2", "PreemptLowerPriority"), PC("1", "Never")),
                     "value: Forbidden: may not be changed in an update.\n"
                     "preemptionPolicy: Invalid value: \"PreemptLowerPriority\": field is immutable\n");
    free(e);
    /* A workload's request may change until it holds quota, and not after. */
    cr_assert_str_eq(e = check_update(WL("\"queueName\":\"b\",\"podSets\":[{\"count\":2}]", ""),
                                      WL("\"queueName\":\"a\",\"podSets\":[{\"count\":1}]", "")), "");
    free(e);
    cr_assert_str_eq(e = check_update(WL("\"queueName\":\"b\",\"podSets\":[{\"count\":2}],"
                                         "\"priorityClassName\":\"p\"", RESERVED),
                                      WL("\"queueName\":\"a\",\"podSets\":[{\"count\":1}]", RESERVED)),
                     "spec.podSets: Invalid value: \"array\": field is immutable\n"
                     "spec.priorityClassName: Invalid value: \"p\": field is immutable\n"
                     "spec.queueName: Invalid value: \"b\": field is immutable\n");
    free(e);
    /* Evicted (no longer reserving): the queue may change. */
    cr_assert_str_eq(e = check_update(WL("\"queueName\":\"b\",\"podSets\":[{\"count\":1}]", ""),
                                      WL("\"queueName\":\"a\",\"podSets\":[{\"count\":1}]", RESERVED)),
                     "");
    free(e);
    /* Kinds without update rules, and a missing old object, pass. */
    cr_assert_str_eq(e = check_update("{\"apiVersion\":\"kueue.x-k8s.io/v1beta1\",\"kind\":"
                                      "\"ClusterQueue\",\"spec\":{\"cohort\":\"b\"}}",
                                      "{\"spec\":{\"cohort\":\"a\"}}"), "");
    free(e);
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    json_t *n = json_loads(LQ("\"clusterQueue\":\"b\""), 0, NULL);
    cr_assert_eq(ty_api_check_update(n, NULL, &errs), 0);
    json_decref(n);
}
