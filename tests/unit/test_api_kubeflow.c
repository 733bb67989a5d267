/* PyTorchJob and TFJob admission: schema walk, defaults, kind rules, messages.
 *
 * Manifests are written inline as JSON with single quotes (turned into double quotes before
 * parsing) so they stay readable; they go through json_loads, not the manifest parser, so
 * positions are unknown ({0,0}) and no test depends on them. */
#include <criterion/criterion.h>
#include <string.h>

#include "api/api.h"
#include "base/buf.h"
#include "base/mem.h"

static json_t *load(const char *text)
{
    char *s = ty_strdup(text);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t jerr;
    json_t *obj = json_loads(s, 0, &jerr);
    cr_assert(obj, "bad test json: %s: %s", jerr.text, s);
    free(s);
    return obj;
}

/* Admits `text`; returns the object (defaulted) and fills `errs`. */
static json_t *admit(const char *text, ty_field_errors *errs, int *rc)
{
    json_t *obj = load(text);
    *rc = ty_api_admit(NULL, obj, errs);
    return obj;
}

static char *format(const ty_field_errors *errs)
{
    ty_buf b = TY_BUF_INIT;
    ty_field_errors_format(errs, NULL, &b);
    return ty_buf_steal(&b);
}

/* Asserts that `text` is rejected with an error `path` / `msg` among others. */
static void expect_error(const char *text, const char *path, const char *msg)
{
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    int rc;
    json_t *obj = admit(text, &errs, &rc);
    char *all = format(&errs);
    cr_assert_eq(rc, -1, "expected an error on %s, got none", path);
    bool found = false;
    for (size_t i = 0; i < errs.count; i++)
        found = found || (strcmp(errs.items[i].path, path) == 0 && strcmp(errs.items[i].msg, msg) == 0);
    cr_assert(found, "expected %s: %s\ngot:\n%s", path, msg, all);
    free(all);
    json_decref(obj);
    ty_field_errors_free(&errs);
}

static void expect_ok(const char *text, json_t **out)
{
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    int rc;
    json_t *obj = admit(text, &errs, &rc);
    char *all = format(&errs);
    cr_assert_eq(rc, 0, "unexpected errors:\n%s", all);
    cr_assert_eq(errs.count, 0);
    free(all);
    ty_field_errors_free(&errs);
    if (out)
        *out = obj;
    else
        json_decref(obj);
}

static void expect_equal(json_t *got, const char *want_text)
{
    json_t *want = load(want_text);
    char *g = json_dumps(got, JSON_SORT_KEYS | JSON_INDENT(1));
    char *w = json_dumps(want, JSON_SORT_KEYS | JSON_INDENT(1));
    cr_assert(json_equal(got, want), "got:\n%s\nwant:\n%s", g, w);
    free(g);
    free(w);
    json_decref(want);
}

/* A PyTorchJob as users write it: lowercase "worker", no replicas/restartPolicy on the
 * Worker, a pytorch container without ports. */
#define PT_HEAD "{'apiVersion': 'kubeflow.org/v1', 'kind': 'PyTorchJob', 'metadata': {'name': 'mnist'},"
#define PT_CONTAINER "{'name': 'pytorch', 'image': 'python:3', 'command': ['python3', 'train.py']}"
#define PT_REPLICA(extra) "{" extra "'template': {'spec': {'containers': [" PT_CONTAINER "]}}}"
#define PT_JOB(spec_extra, worker_extra) \
    PT_HEAD "'spec': {" spec_extra "'pytorchReplicaSpecs': {'Worker': " PT_REPLICA(worker_extra) "}}}"

static const char *pytorch_valid =
    "{'apiVersion': 'kubeflow.org/v1', 'kind': 'PyTorchJob',"
    " 'metadata': {'name': 'mnist', 'labels': {'app.kubernetes.io/name': 'mnist'}},"
    " 'spec': {'pytorchReplicaSpecs': {"
    "   'Master': {'replicas': 1, 'restartPolicy': 'ExitCode', 'template': {'spec': {"
    "      'containers': [{'name': 'pytorch', 'image': 'python:3', 'command': ['python3'],"
    "        'args': ['train.py'], 'env': [{'name': 'EPOCHS', 'value': '2'}],"
    "        'resources': {'limits': {'cpu': 2, 'memory': '1Gi'}, 'requests': {'cpu': '500m'}},"
    "        'securityContext': {'runAsUser': 1000}, 'imagePullPolicy': 'IfNotPresent'}],"
    "      'tolerations': [{'key': 'gpu', 'operator': 'Exists'}], 'nodeSelector': {'a': 'b'},"
    "      'volumes': [{'name': 'data', 'emptyDir': {'sizeLimit': '1Gi'}}]}}},"
    "   'Worker': {'template': {'metadata': {'labels': {'x': 'y'}}, 'spec': {"
    "      'containers': [{'name': 'sidecar', 'image': 'busybox'}, " PT_CONTAINER "]}}}}}}";

Test(api_kubeflow, pytorchjob_valid_gets_exactly_the_defaults)
{
    json_t *obj;
    expect_ok(pytorch_valid, &obj);
    expect_equal(obj,
        "{'apiVersion': 'kubeflow.org/v1', 'kind': 'PyTorchJob',"
        " 'metadata': {'name': 'mnist', 'namespace': 'default', 'labels': {'app.kubernetes.io/name': 'mnist'}},"
        " 'spec': {'runPolicy': {'cleanPodPolicy': 'None'}, 'nprocPerNode': 'auto', 'pytorchReplicaSpecs': {"
        "   'Master': {'replicas': 1, 'restartPolicy': 'ExitCode', 'template': {'spec': {"
        "      'containers': [{'name': 'pytorch', 'image': 'python:3', 'command': ['python3'],"
        "        'args': ['train.py'], 'env': [{'name': 'EPOCHS', 'value': '2'}],"
        "        'resources': {'limits': {'cpu': 2, 'memory': '1Gi'}, 'requests': {'cpu': '500m'}},"
        "        'securityContext': {'runAsUser': 1000}, 'imagePullPolicy': 'IfNotPresent'}],"
        "      'tolerations': [{'key': 'gpu', 'operator': 'Exists'}], 'nodeSelector': {'a': 'b'},"
        "      'volumes': [{'name': 'data', 'emptyDir': {'sizeLimit': '1Gi'}}]}}},"
        "   'Worker': {'replicas': 1, 'restartPolicy': 'OnFailure', 'template': {'metadata': {'labels': {'x': 'y'}}, 'spec': {"
        "      'containers': [{'name': 'sidecar', 'image': 'busybox'},"
        "        {'name': 'pytorch', 'image': 'python:3', 'command': ['python3', 'train.py']}]}}}}}}");
    json_decref(obj);
}

Test(api_kubeflow, pytorchjob_keeps_what_is_set)
{
    json_t *obj;
    expect_ok(PT_HEAD "'metadata': {'name': 'a', 'namespace': 'team'}, 'spec': {'runPolicy': {'cleanPodPolicy': 'All'},"
              " 'nprocPerNode': '2', 'pytorchReplicaSpecs': {'Worker': {'replicas': 3, 'restartPolicy': 'Never',"
              " 'template': {'spec': {'containers': [{'name': 'pytorch', 'image': 'x',"
              " 'ports': [{'name': 'pytorchjob-port', 'containerPort': 1234}]}]}}}}}}", &obj);
    expect_equal(obj, PT_HEAD "'metadata': {'name': 'a', 'namespace': 'team'}, 'spec': {'runPolicy': {'cleanPodPolicy': 'All'},"
              " 'nprocPerNode': '2', 'pytorchReplicaSpecs': {'Worker': {'replicas': 3, 'restartPolicy': 'Never',"
              " 'template': {'spec': {'containers': [{'name': 'pytorch', 'image': 'x',"
              " 'ports': [{'name': 'pytorchjob-port', 'containerPort': 1234}]}]}}}}}}");
    json_decref(obj);
}

Test(api_kubeflow, pytorchjob_elastic_defaults)
{
    json_t *obj;
    /* Neither bound: both from the Worker replicas. */
    expect_ok(PT_JOB("'elasticPolicy': {'rdzvBackend': 'c10d'},", "'replicas': 3,"), &obj);
    json_t *ep = json_object_get(json_object_get(obj, "spec"), "elasticPolicy");
    cr_assert_eq(json_integer_value(json_object_get(ep, "minReplicas")), 3);
    cr_assert_eq(json_integer_value(json_object_get(ep, "maxReplicas")), 3);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(obj, "spec"), "nprocPerNode")), "auto");
    json_decref(obj);
    /* One bound: the other copies it. */
    expect_ok(PT_JOB("'elasticPolicy': {'maxReplicas': 5},", ""), &obj);
    ep = json_object_get(json_object_get(obj, "spec"), "elasticPolicy");
    cr_assert_eq(json_integer_value(json_object_get(ep, "minReplicas")), 5);
    json_decref(obj);
    expect_ok(PT_JOB("'elasticPolicy': {'minReplicas': 2},", ""), &obj);
    ep = json_object_get(json_object_get(obj, "spec"), "elasticPolicy");
    cr_assert_eq(json_integer_value(json_object_get(ep, "maxReplicas")), 2);
    json_decref(obj);
    /* The deprecated elasticPolicy.nProcPerNode suppresses the nprocPerNode default. */
    expect_ok(PT_JOB("'elasticPolicy': {'nProcPerNode': 4},", ""), &obj);
    cr_assert_null(json_object_get(json_object_get(obj, "spec"), "nprocPerNode"));
    json_decref(obj);
}

Test(api_kubeflow, tfjob_valid_gets_exactly_the_defaults)
{
    json_t *obj;
    expect_ok("{'apiVersion': 'kubeflow.org/v1', 'kind': 'TFJob', 'metadata': {'name': 'dist-mnist'},"
              " 'spec': {'tfReplicaSpecs': {"
              "  'ps': {'template': {'spec': {'containers': [{'name': 'tensorflow', 'image': 'tf'}]}}},"
              "  'WORKER': {'replicas': 2, 'template': {'spec': {'containers': [{'name': 'tensorflow', 'image': 'tf'}]}}},"
              "  'chief': {'restartPolicy': 'OnFailure', 'template': {'spec': {'containers': [{'name': 'tensorflow', 'image': 'tf'}]}}}}}}",
              &obj);
    expect_equal(obj,
        "{'apiVersion': 'kubeflow.org/v1', 'kind': 'TFJob', 'metadata': {'name': 'dist-mnist', 'namespace': 'default'},"
        " 'spec': {'runPolicy': {'cleanPodPolicy': 'None'}, 'successPolicy': '', 'tfReplicaSpecs': {"
        "  'PS': {'replicas': 1, 'restartPolicy': 'Never', 'template': {'spec': {'containers': [{'name': 'tensorflow', 'image': 'tf'}]}}},"
        "  'Worker': {'replicas': 2, 'restartPolicy': 'Never', 'template': {'spec': {'containers': [{'name': 'tensorflow', 'image': 'tf'}]}}},"
        "  'Chief': {'replicas': 1, 'restartPolicy': 'OnFailure', 'template': {'spec': {'containers': [{'name': 'tensorflow', 'image': 'tf'}]}}}}}}");
    json_decref(obj);
}

Test(api_kubeflow, null_fields_are_pruned_and_defaulted)
{
    json_t *obj;
    expect_ok(PT_JOB("'runPolicy': null,", "'replicas': null, 'restartPolicy': null,")
              , &obj);
    json_t *w = json_object_get(json_object_get(json_object_get(obj, "spec"), "pytorchReplicaSpecs"), "Worker");
    cr_assert_eq(json_integer_value(json_object_get(w, "replicas")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(w, "restartPolicy")), "OnFailure");
    json_decref(obj);
}

/* ---------- schema errors ---------- */

Test(api_kubeflow, negative_replicas)
{
    expect_error(PT_JOB("", "'replicas': -1,"), "spec.pytorchReplicaSpecs.Worker.replicas",
                 "Invalid value: -1: must be greater than or equal to 0");
}

Test(api_kubeflow, unsupported_restart_policy)
{
    expect_error(PT_JOB("", "'restartPolicy': 'Sometimes',"),
                 "spec.pytorchReplicaSpecs.Worker.restartPolicy",
                 "Unsupported value: \"Sometimes\": supported values: \"Always\", \"ExitCode\", \"Never\", \"OnFailure\"");
    expect_error(PT_JOB("'runPolicy': {'cleanPodPolicy': 'Some'},", ""), "spec.runPolicy.cleanPodPolicy",
                 "Unsupported value: \"Some\": supported values: \"All\", \"None\", \"Running\"");
}

Test(api_kubeflow, unknown_field_with_hint)
{
    expect_error(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Worker': {'template': {'spec': {'containers': ["
                 "{'name': 'pytorch', 'image': 'x', 'comand': ['a']}]}}}}}}",
                 "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].comand",
                 "unknown field \"spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].comand\" "
                 "(did you mean \"command\"?)");
    expect_error(PT_JOB("", "'Replicas': 2,"), "spec.pytorchReplicaSpecs.Worker.Replicas",
                 "unknown field \"spec.pytorchReplicaSpecs.Worker.Replicas\" (did you mean \"replicas\"?)");
    expect_error(PT_JOB("'whatever': 1,", ""), "spec.whatever", "unknown field \"spec.whatever\"");
    expect_error("{'apiVersion': 'kubeflow.org/v1', 'kind': 'TFJob', 'metadata': {'name': 'a', 'nmespace': 'x'},"
                 " 'spec': {'tfReplicaSpecs': {}}}", "metadata.nmespace",
                 "unknown field \"metadata.nmespace\" (did you mean \"namespace\"?)");
}

Test(api_kubeflow, types_and_ranges)
{
    expect_error(PT_JOB("", "'replicas': 'two',"), "spec.pytorchReplicaSpecs.Worker.replicas",
                 "Invalid value: \"two\": must be of type integer");
    expect_error(PT_JOB("", "'replicas': 3000000000,"), "spec.pytorchReplicaSpecs.Worker.replicas",
                 "Invalid value: 3000000000: must be less than or equal to 2147483647");
    expect_error(PT_JOB("'runPolicy': {'suspend': 'yes'},", ""), "spec.runPolicy.suspend",
                 "Invalid value: \"yes\": must be of type boolean");
    expect_error(PT_JOB("'runPolicy': [],", ""), "spec.runPolicy",
                 "Invalid value: \"array\": must be of type object");
    expect_error(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Worker': {'template': {'spec': {'containers': ["
                 "{'name': 'pytorch', 'image': 'x', 'ports': [{'containerPort': 70000}]}]}}}}}}",
                 "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].ports[0].containerPort",
                 "Invalid value: 70000: must be less than or equal to 65535");
    expect_error("{'apiVersion': 'kubeflow.org/v1', 'kind': 'PyTorchJob', 'metadata': {'name': 'a', 'labels': {'app.kubernetes.io/name': 1}},"
                 " 'spec': {'pytorchReplicaSpecs': {'Worker': " PT_REPLICA("") "}}}",
                 "metadata.labels[app.kubernetes.io/name]", "Invalid value: 1: must be of type string");
    expect_error(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Worker': " PT_REPLICA("") "}},"
                 " 'status': {'startTime': 'yesterday', 'completionTime': '2024-05-01T12:00:00Z'}}",
                 "status.startTime",
                 "Invalid value: \"yesterday\": must be an RFC 3339 date-time (2006-01-02T15:04:05Z)");
}

Test(api_kubeflow, required_fields_and_quantities)
{
    expect_error(PT_HEAD "'spec': {}}", "spec.pytorchReplicaSpecs", "Required value");
    expect_error("{'apiVersion': 'kubeflow.org/v1', 'kind': 'PyTorchJob', 'metadata': {'name': 'a'}}", "spec",
                 "Required value");
    expect_error(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Worker': {'template': {'spec': {'containers': ["
                 "{'name': 'pytorch', 'image': 'x', 'ports': [{'name': 'p'}]}]}}}}}}",
                 "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].ports[0].containerPort",
                 "Required value");
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    int rc;
    json_t *obj = admit(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Worker': {'template': {'spec': {'containers': ["
                        "{'name': 'pytorch', 'image': 'x', 'resources': {'limits': {'cpu': 'lots', 'memory': true}}}]}}}}}}",
                        &errs, &rc);
    cr_assert_eq(rc, -1);
    cr_assert_eq(errs.count, 2);
    cr_assert_str_eq(errs.items[0].path,
                     "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].resources.limits.cpu");
    cr_assert(strncmp(errs.items[0].msg, "Invalid value: \"lots\": ", 23) == 0, "%s", errs.items[0].msg);
    cr_assert_str_eq(errs.items[1].msg, "Invalid value: true: must be a quantity (a number or a string)");
    json_decref(obj);
    ty_field_errors_free(&errs);
}

Test(api_kubeflow, unknown_fields_allowed_where_kubernetes_preserves_them)
{
    expect_ok(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Worker': {'template': {'spec': {"
              " 'affinity': {'nodeAffinity': {'anything': [1, 2]}}, 'securityContext': {'fsGroup': 1},"
              " 'containers': [{'name': 'pytorch', 'image': 'x', 'livenessProbe': {'exec': {'command': ['true']}},"
              "   'env': [{'name': 'POD', 'valueFrom': {'fieldRef': {'fieldPath': 'metadata.name'}}}]}]}}}}}}",
              NULL);
}

Test(api_kubeflow, every_problem_is_reported)
{
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    int rc;
    json_t *obj = admit("{'apiVersion': 'kubeflow.org/v1', 'kind': 'PyTorchJob', 'metadata': {'name': 'Bad_Name'},"
                        " 'spec': {'pytorchReplicaSpecs': {'Worker': {'replicas': -2, 'restartPolicy': 'Sometimes',"
                        "   'template': {'spec': {'containers': [{'name': 'main', 'image': 'x', 'comand': []}]}}}}}}",
                        &errs, &rc);
    cr_assert_eq(rc, -1);
    char *all = format(&errs);
    cr_assert_str_eq(all,
        "spec.pytorchReplicaSpecs.Worker.replicas: Invalid value: -2: must be greater than or equal to 0\n"
        "spec.pytorchReplicaSpecs.Worker.restartPolicy: Unsupported value: \"Sometimes\": supported values: "
        "\"Always\", \"ExitCode\", \"Never\", \"OnFailure\"\n"
        "unknown field \"spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].comand\" (did you mean \"command\"?)\n"
        "metadata.name: Invalid value: \"Bad_Name\": should match: a DNS-1035 label must consist of lower "
        "case alphanumeric characters or '-', start with an alphabetic character, and end with an "
        "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
        "'[a-z]([-a-z0-9]*[a-z0-9])?')\n"
        "spec.pytorchReplicaSpecs[Worker].template.spec.containers: Required value: must have at least one "
        "container with name pytorch\n"
        "spec.pytorchReplicaSpecs[Worker].replicas: Forbidden: must be at least 1\n");
    free(all);
    json_decref(obj);
    ty_field_errors_free(&errs);
}

/* ---------- kind rules ---------- */

#define WITH_META(meta) \
    "{'apiVersion': 'kubeflow.org/v1', 'kind': 'PyTorchJob', 'metadata': " meta "," \
    " 'spec': {'pytorchReplicaSpecs': {'Worker': " PT_REPLICA("") "}}}"

Test(api_kubeflow, metadata_rules)
{
    expect_error(WITH_META("{'name': '1abc'}"), "metadata.name",
                 "Invalid value: \"1abc\": should match: a DNS-1035 label must consist of lower case alphanumeric "
                 "characters or '-', start with an alphabetic character, and end with an alphanumeric "
                 "character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
                 "'[a-z]([-a-z0-9]*[a-z0-9])?')");
    expect_error(WITH_META("{'name': 'a123456789012345678901234567890123456789012345678901234567890123'}"),
                 "metadata.name",
                 "Invalid value: \"a123456789012345678901234567890123456789012345678901234567890123\": "
                 "should match: must be no more than 63 characters");
    expect_error(WITH_META("{'labels': {}}"), "metadata.name",
                 "Required value: name or generateName is required");
    expect_ok(WITH_META("{'generateName': 'mnist-'}"), NULL);
    expect_error(WITH_META("{'name': 'a', 'namespace': 'Team_A'}"), "metadata.namespace",
                 "Invalid value: \"Team_A\": a lowercase RFC 1123 label must consist of lower case "
                 "alphanumeric characters or '-', and must start and end with an alphanumeric character "
                 "(regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')");
    /* ObjectMeta as the system writes it is accepted back. */
    expect_ok(WITH_META("{'name': 'a', 'uid': 'u', 'resourceVersion': '7', 'generation': 2,"
                        " 'creationTimestamp': null, 'deletionTimestamp': '2024-05-01T12:00:00.5+02:00',"
                        " 'finalizers': ['f'], 'annotations': {'k': 'v'},"
                        " 'ownerReferences': [{'apiVersion': 'v1', 'kind': 'X', 'name': 'n', 'uid': 'u', 'controller': true}],"
                        " 'managedFields': [{'manager': 'kubectl', 'fieldsV1': {}}]}"), NULL);
}

Test(api_kubeflow, label_and_annotation_rules)
{
    expect_error(WITH_META("{'name': 'a', 'labels': {'bad key': 'v'}}"), "metadata.labels",
                 "Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', "
                 "and must start and end with an alphanumeric character (regex used for validation is "
                 "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')");
    expect_error(WITH_META("{'name': 'a', 'labels': {'ok': 'not ok'}}"), "metadata.labels",
                 "Invalid value: \"not ok\": a valid label must be an empty string or consist of alphanumeric "
                 "characters, '-', '_' or '.', and must start and end with an alphanumeric character (regex "
                 "used for validation is '(([A-Za-z0-9][-_.A-Za-z0-9]*)?[A-Za-z0-9])?')");
    expect_error(WITH_META("{'name': 'a', 'annotations': {'Example.com/x': 'any value at all'}}"), "metadata.annotations",
                 "Invalid value: \"Example.com/x\": prefix part a lowercase RFC 1123 subdomain must consist of lower "
                 "case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character");
    expect_error(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Worker': {'template': {'metadata': {'labels': {'a': '-b'}},"
                 " 'spec': {'containers': [" PT_CONTAINER "]}}}}}}",
                 "spec.pytorchReplicaSpecs[Worker].template.metadata.labels",
                 "Invalid value: \"-b\": a valid label must be an empty string or consist of alphanumeric "
                 "characters, '-', '_' or '.', and must start and end with an alphanumeric character (regex "
                 "used for validation is '(([A-Za-z0-9][-_.A-Za-z0-9]*)?[A-Za-z0-9])?')");
    expect_ok(WITH_META("{'name': 'a', 'labels': {'kueue.x-k8s.io/queue-name': 'user-queue', 'empty': ''},"
                        " 'annotations': {'kubectl.kubernetes.io/last-applied-configuration': '{\\\"x\\\": 1}'}}"), NULL);
}

Test(api_kubeflow, admission_is_idempotent)
{
    json_t *once;
    expect_ok(pytorch_valid, &once);
    char *text = json_dumps(once, 0);
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    json_t *twice = json_loads(text, 0, NULL);
    cr_assert_eq(ty_api_admit(NULL, twice, &errs), 0);
    cr_assert(json_equal(once, twice), "a second admission changed the object");
    free(text);
    json_decref(once);
    json_decref(twice);
    ty_field_errors_free(&errs);
}

Test(api_kubeflow, replica_spec_rules)
{
    expect_error(PT_HEAD "'spec': {'pytorchReplicaSpecs': {}}}", "spec.pytorchReplicaSpecs",
                 "Required value: must have at least one replica spec");
    expect_error(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Launcher': " PT_REPLICA("") "}}}",
                 "spec.pytorchReplicaSpecs[Launcher]",
                 "Unsupported value: \"Launcher\": supported values: \"Master\", \"Worker\"");
    expect_error(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Worker': " PT_REPLICA("") ", 'worker': "
                 PT_REPLICA("") "}}}", "spec.pytorchReplicaSpecs[worker]",
                 "Unsupported value: \"worker\": supported values: \"Master\", \"Worker\"");
    expect_error(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Master': " PT_REPLICA("'replicas': 2,") "}}}",
                 "spec.pytorchReplicaSpecs[Master].replicas", "Forbidden: must be 1");
    expect_error(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Worker': {'replicas': 1}}}}",
                 "spec.pytorchReplicaSpecs[Worker].template.spec.containers", "Required value: must be specified");
    expect_error(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Worker': {'template': {'spec': {'containers': []}}}}}}",
                 "spec.pytorchReplicaSpecs[Worker].template.spec.containers", "Required value: must be specified");
    expect_error(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Worker': {'template': {'spec': {'containers': ["
                 "{'name': 'pytorch'}]}}}}}}",
                 "spec.pytorchReplicaSpecs[Worker].template.spec.containers[0].image",
                 "Required value: must be required");
    expect_error(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Worker': {'template': {'spec': {'containers': ["
                 "{'name': 'torch', 'image': 'x'}]}}}}}}",
                 "spec.pytorchReplicaSpecs[Worker].template.spec.containers",
                 "Required value: must have at least one container with name pytorch");
    expect_error(PT_JOB("'runPolicy': {'managedBy': 'me'},", ""), "spec.runPolicy.managedBy",
                 "Unsupported value: \"me\": supported values: \"kubeflow.org/training-operator\", "
                 "\"kueue.x-k8s.io/multikueue\"");
    expect_ok(PT_JOB("'runPolicy': {'managedBy': 'kueue.x-k8s.io/multikueue', 'backoffLimit': 3,"
                     " 'schedulingPolicy': {'minAvailable': 2, 'minResources': {'cpu': '4'}}},", ""), NULL);
}

Test(api_kubeflow, one_error_for_missing_containers)
{
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    int rc;
    json_t *obj = admit(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Worker': {'template': {'spec': {}}}}}}", &errs, &rc);
    cr_assert_eq(rc, -1);
    char *all = format(&errs);
    cr_assert_str_eq(all, "spec.pytorchReplicaSpecs.Worker.template.spec.containers: Required value\n");
    free(all);
    json_decref(obj);
    ty_field_errors_free(&errs);
}

Test(api_kubeflow, pytorch_elastic_rules)
{
    expect_error(PT_JOB("'elasticPolicy': {'minReplicas': 4, 'maxReplicas': 2},", ""),
                 "spec.elasticPolicy.minReplicas", "Invalid value: 4: must be less than or equal to maxReplicas (2)");
    expect_error(PT_JOB("'nprocPerNode': '2', 'elasticPolicy': {'nProcPerNode': 2},", ""),
                 "spec.elasticPolicy.nProcPerNode", "Forbidden: must not be used with spec.nprocPerNode");
    expect_error(PT_JOB("'nprocPerNode': 'many',", ""), "spec.nprocPerNode",
                 "Invalid value: \"many\": must be auto, cpu, gpu or a positive integer");
    expect_ok(PT_JOB("'nprocPerNode': 'gpu', 'elasticPolicy': {'minReplicas': 1, 'maxReplicas': 4, 'rdzvPort': 29400,"
                     " 'rdzvConf': [{'key': 'timeout', 'value': '900'}], 'standalone': true, 'maxRestarts': 3},", ""),
              NULL);
}

Test(api_kubeflow, pod_rules)
{
    expect_error(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Worker': {'template': {'spec': {"
                 "'initContainers': [{'name': 'pytorch', 'image': 'x'}], 'containers': [" PT_CONTAINER "]}}}}}}",
                 "spec.pytorchReplicaSpecs[Worker].template.spec.containers[0].name", "Duplicate value: \"pytorch\"");
    expect_error(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Worker': {'template': {'spec': {'containers': ["
                 PT_CONTAINER ", {'name': 'Side_Car', 'image': 'x'}]}}}}}}",
                 "spec.pytorchReplicaSpecs[Worker].template.spec.containers[1].name",
                 "Invalid value: \"Side_Car\": a lowercase RFC 1123 label must consist of lower case "
                 "alphanumeric characters or '-', and must start and end with an alphanumeric character "
                 "(regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')");
    expect_error(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Worker': {'template': {'spec': {'containers': ["
                 "{'name': 'pytorch', 'image': 'x', 'env': [{'name': 'OK'}, {'name': '1BAD', 'value': 'v'}]}]}}}}}}",
                 "spec.pytorchReplicaSpecs[Worker].template.spec.containers[0].env[1].name",
                 "Invalid value: \"1BAD\": a valid environment variable name must consist of alphabetic "
                 "characters, digits, '_', '-', or '.', and must not start with a digit (regex used for "
                 "validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')");
    expect_error(PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Worker': {'template': {'spec': {'containers': ["
                 "{'name': 'pytorch', 'image': 'x', 'resources': {'limits': {'cpu': 1, 'memory': '1Gi'},"
                 " 'requests': {'cpu': '2', 'memory': '512Mi'}}}]}}}}}}",
                 "spec.pytorchReplicaSpecs[Worker].template.spec.containers[0].resources.requests.cpu",
                 "Invalid value: \"2\": must be less than or equal to cpu limit of 1");
}

#define WITH_POD(pod) \
    PT_HEAD "'spec': {'pytorchReplicaSpecs': {'Worker': {'template': {'spec': " pod "}}}}}"
#define CPATH "spec.pytorchReplicaSpecs[Worker].template.spec.containers[0]"

Test(api_kubeflow, resource_and_volume_rules)
{
    expect_error(WITH_POD("{'containers': [{'name': 'pytorch', 'image': 'x', 'resources': {'limits': {'memory': '-1Gi'}}}]}"),
                 CPATH ".resources.limits.memory", "Invalid value: \"-1Gi\": must be greater than or equal to 0");
    expect_error(WITH_POD("{'containers': [{'name': 'pytorch', 'image': 'x', 'resources': {"
                          "'limits': {'nvidia.com/gpu': 2}, 'requests': {'nvidia.com/gpu': 1}}}]}"),
                 CPATH ".resources.requests[nvidia.com/gpu]", "Invalid value: 1: must be equal to nvidia.com/gpu limit of 2");
    expect_error(WITH_POD("{'containers': [{'name': 'pytorch', 'image': 'x', 'resources': {"
                          "'requests': {'nvidia.com/gpu': 1}}}]}"),
                 CPATH ".resources.requests[nvidia.com/gpu]",
                 "Required value: limit must be set for non overcommitable resources");
    expect_ok(WITH_POD("{'containers': [{'name': 'pytorch', 'image': 'x', 'resources': {"
                       "'limits': {'nvidia.com/gpu': 1, 'cpu': '1500m'}, 'requests': {'nvidia.com/gpu': '1', 'cpu': 1.5}}}]}"),
              NULL);
    expect_error(WITH_POD("{'containers': [{'name': 'pytorch', 'image': 'x', 'volumeMounts': [{'name': 'data', 'mountPath': '/d'}]}]}"),
                 CPATH ".volumeMounts[0].name", "Not found: \"data\"");
    expect_error(WITH_POD("{'containers': [{'name': 'pytorch', 'image': 'x', 'ports': [{'name': 'Http', 'containerPort': 80}]}]}"),
                 CPATH ".ports[0].name",
                 "Invalid value: \"Http\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    expect_error(WITH_POD("{'containers': [{'name': 'pytorch', 'image': 'x', 'ports': [{'name': 'a-very-long-port-name', 'containerPort': 80}]}]}"),
                 CPATH ".ports[0].name", "Invalid value: \"a-very-long-port-name\": must be no more than 15 characters");
    expect_error(WITH_POD("{'containers': [{'name': 'pytorch', 'image': 'x', 'ports': [{'name': 'p', 'containerPort': 80},"
                          " {'name': 'p', 'containerPort': 81}]}]}"),
                 CPATH ".ports[1].name", "Duplicate value: \"p\"");
    expect_error(WITH_POD("{'volumes': [{'name': 'data', 'emptyDir': {}}, {'name': 'data', 'hostPath': {'path': '/tmp'}}],"
                          " 'containers': [" PT_CONTAINER "]}"),
                 "spec.pytorchReplicaSpecs[Worker].template.spec.volumes[1].name", "Duplicate value: \"data\"");
    expect_error(WITH_POD("{'volumes': [{'name': 'data', 'hostPath': {'type': 'Directory'}}], 'containers': [" PT_CONTAINER "]}"),
                 "spec.pytorchReplicaSpecs.Worker.template.spec.volumes[0].hostPath.path", "Required value");
    expect_ok(WITH_POD("{'volumes': [{'name': 'data', 'emptyDir': {'medium': 'Memory'}}, {'name': 'cfg', 'configMap': {'name': 'c'}}],"
                       " 'containers': [{'name': 'pytorch', 'image': 'x', 'volumeMounts': [{'name': 'data', 'mountPath': '/d'},"
                       " {'name': 'cfg', 'mountPath': '/c', 'readOnly': true}]}]}"), NULL);
    /* a mount stays inside its volume: subPath and subPathExpr relative, no ".." element */
#define VOL_DATA "'volumes': [{'name': 'data', 'emptyDir': {}}], "
#define MOUNT(extra) "[{'name': 'pytorch', 'image': 'x', 'volumeMounts': " \
                     "[{'name': 'data', 'mountPath': '/d', " extra "}]}]"
    expect_error(WITH_POD("{" VOL_DATA "'containers': " MOUNT("'subPath': 'a/../../etc'") "}"),
                 CPATH ".volumeMounts[0].subPath",
                 "Invalid value: \"a/../../etc\": must not contain '..'");
    expect_error(WITH_POD("{" VOL_DATA "'initContainers': [" PT_CONTAINER "], 'containers': "
                          MOUNT("'subPathExpr': '/etc'") "}"),
                 CPATH ".volumeMounts[0].subPathExpr",
                 "Invalid value: \"/etc\": must be a relative path");
    expect_ok(WITH_POD("{" VOL_DATA "'containers': " MOUNT("'subPath': '..a/b../.../$(X)'") "}"),
              NULL);
}

Test(api_kubeflow, bare_pod_mounts_stay_in_their_volumes)
{
    json_t *pod = load("{'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'p'}, 'spec': {"
                       "'containers': [{'name': 'c', 'volumeMounts': "
                       "[{'name': 'v', 'mountPath': '/d'}]}], "
                       "'initContainers': [{'name': 'i', 'volumeMounts': "
                       "[{'name': 'v', 'mountPath': '/d', 'subPath': '..'}]}]}}");
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    cr_assert_eq(ty_api_check_pod(pod, &errs), -1);
    cr_assert_eq(errs.count, 1);
    cr_assert_str_eq(errs.items[0].path, "spec.initContainers[0].volumeMounts[0].subPath");
    cr_assert_str_eq(errs.items[0].msg, "Invalid value: \"..\": must not contain '..'");
    ty_field_errors_free(&errs);
    json_t *init = json_object_get(json_object_get(pod, "spec"), "initContainers");
    json_object_del(json_array_get(init, 0), "volumeMounts");
    cr_assert_eq(ty_api_check_pod(pod, &errs), 0);
    json_decref(pod);
}

Test(api_kubeflow, tfjob_rules)
{
    expect_error("{'apiVersion': 'kubeflow.org/v1', 'kind': 'TFJob', 'metadata': {'name': 't'}, 'spec': {'tfReplicaSpecs': {"
                 " 'Chief': {'template': {'spec': {'containers': [{'name': 'tensorflow', 'image': 'tf'}]}}},"
                 " 'master': {'template': {'spec': {'containers': [{'name': 'tensorflow', 'image': 'tf'}]}}}}}}",
                 "spec.tfReplicaSpecs", "Forbidden: must not have more than 1 Chief or Master role");
    expect_error("{'apiVersion': 'kubeflow.org/v1', 'kind': 'TFJob', 'metadata': {'name': 't'}, 'spec': {'tfReplicaSpecs': {"
                 " 'Worker': {'template': {'spec': {'containers': [{'name': 'pytorch', 'image': 'tf'}]}}}}}}",
                 "spec.tfReplicaSpecs[Worker].template.spec.containers",
                 "Required value: must have at least one container with name tensorflow");
    expect_error("{'apiVersion': 'kubeflow.org/v1', 'kind': 'TFJob', 'metadata': {'name': 't'}, 'spec': {'tfReplicaSpecs': {"
                 " 'Launcher': {'template': {'spec': {'containers': [{'name': 'tensorflow', 'image': 'tf'}]}}}},"
                 " 'successPolicy': 'AllWorkers'}}",
                 "spec.tfReplicaSpecs[Launcher]",
                 "Unsupported value: \"Launcher\": supported values: \"Chief\", \"Evaluator\", \"Master\", \"PS\", \"Worker\"");
    expect_error("{'apiVersion': 'kubeflow.org/v1', 'kind': 'TFJob', 'metadata': {'name': 't'}, 'spec': {'tfReplicaSpecs': {"
                 " 'Worker': {'template': {'spec': {'containers': [{'name': 'tensorflow', 'image': 'tf'}]}}}},"
                 " 'successPolicy': 'AnyWorker'}}",
                 "spec.successPolicy", "Unsupported value: \"AnyWorker\": supported values: \"\", \"AllWorkers\"");
    /* The PyTorch-only fields are unknown to a TFJob. */
    expect_error("{'apiVersion': 'kubeflow.org/v1', 'kind': 'TFJob', 'metadata': {'name': 't'}, 'spec': {'tfReplicaSpecs': {"
                 " 'Worker': {'template': {'spec': {'containers': [{'name': 'tensorflow', 'image': 'tf'}]}}}},"
                 " 'nprocPerNode': '2'}}",
                 "spec.nprocPerNode", "unknown field \"spec.nprocPerNode\"");
}

/* ---------- kinds ---------- */

Test(api_kubeflow, unknown_kind_or_version)
{
    expect_error("{'apiVersion': 'kubeflow.org/v1', 'kind': 'MPIJob', 'metadata': {'name': 'a'}}", "kind",
                 "no kind \"MPIJob\" is registered for version \"kubeflow.org/v1\"");
    expect_error("{'apiVersion': 'kubeflow.org/v2', 'kind': 'PyTorchJob'}", "kind",
                 "no kind \"PyTorchJob\" is registered for version \"kubeflow.org/v2\" "
                 "(did you mean apiVersion \"kubeflow.org/v1\"?)");
    expect_error("{'apiVersion': 'kubeflow.org/v1'}", "kind", "Required value");
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    int rc;
    json_t *obj = admit("{'kind': 'Pod', 'spec': {'x': 1}}", &errs, &rc);
    cr_assert_eq(rc, -1);
    cr_assert_eq(errs.count, 1, "one error only, on kind");
    json_decref(obj);
    ty_field_errors_free(&errs);
}

Test(api_kubeflow, kind_lookup)
{
    const ty_kind_info *k = ty_api_kind("kubeflow.org/v1", "PyTorchJob");
    cr_assert_not_null(k);
    cr_assert_str_eq(k->resource, "pytorchjobs");
    cr_assert_str_eq(k->singular, "pytorchjob");
    cr_assert_str_eq(k->short_names, "");
    cr_assert(k->namespaced);
    k = ty_api_kind("kubeflow.org/v1", "TFJob");
    cr_assert_not_null(k);
    cr_assert_str_eq(k->resource, "tfjobs");
    cr_assert_str_eq(k->group, "kubeflow.org");
    cr_assert_null(ty_api_kind("kubeflow.org/v2", "TFJob"));
    cr_assert_null(ty_api_kind("v1", "TFJob"));
    cr_assert_null(ty_api_kind("kubeflow.org/v1", "tfjob"));
    size_t n = 0;
    for (const ty_kind_info *const *p = ty_kinds(); *p; p++)
        n += (*p)->ops != NULL;
    cr_assert_geq(n, 2);
}

static bool has_ref(const json_t *v)
{
    if (json_is_object(v)) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val) if (!strcmp(key, "$ref") || has_ref(val)) return true;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *val;
        json_array_foreach(v, i, val) if (has_ref(val)) return true;
    }
    return false;
}

Test(api_kubeflow, schemas_are_self_contained)
{
    const json_t *s = ty_api_schema(ty_api_kind("kubeflow.org/v1", "PyTorchJob"));
    cr_assert_not_null(s);
    cr_assert_not(has_ref(s));
    const json_t *meta = json_object_get(json_object_get(s, "properties"), "metadata");
    cr_assert_not_null(json_object_get(json_object_get(meta, "properties"), "managedFields"));
    cr_assert_str_eq(json_string_value(json_object_get(meta, "description")), "Standard object metadata.");
    const json_t *pod = json_object_get(
        json_object_get(json_object_get(json_object_get(json_object_get(json_object_get(
            json_object_get(json_object_get(s, "properties"), "spec"), "properties"), "pytorchReplicaSpecs"),
            "additionalProperties"), "properties"), "template"), "properties");
    pod = json_object_get(json_object_get(pod, "spec"), "properties");
    cr_assert_not_null(json_object_get(pod, "tolerations"));
    cr_assert_not_null(json_object_get(pod, "topologySpreadConstraints"));
    s = ty_api_schema(ty_api_kind("kubeflow.org/v1", "TFJob"));
    cr_assert_not_null(json_object_get(json_object_get(json_object_get(json_object_get(s, "properties"), "spec"),
                                                       "properties"), "tfReplicaSpecs"));
}

/* ---------- formatting ---------- */

Test(api_kubeflow, format_lines)
{
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    ty_field_errors_add(&errs, "spec.pytorchReplicaSpecs[Worker].replicas", (ty_pos){14, 18},
                        "Invalid value: %d: must be greater than or equal to 0", -1);
    ty_field_errors_add(&errs, "spec.x", (ty_pos){3, 5}, "unknown field \"spec.x\"");
    ty_field_errors_add(&errs, "kind", (ty_pos){0, 0}, "Required value");
    ty_buf b = TY_BUF_INIT;
    ty_field_errors_format(&errs, "job.yaml", &b);
    cr_assert_str_eq(b.data,
        "job.yaml:14:18: spec.pytorchReplicaSpecs[Worker].replicas: Invalid value: -1: must be greater than or equal to 0\n"
        "job.yaml:3:5: unknown field \"spec.x\"\n"
        "job.yaml: kind: Required value\n");
    ty_buf_free(&b);
    ty_field_errors_format(&errs, NULL, &b);
    cr_assert_str_eq(b.data,
        "14:18: spec.pytorchReplicaSpecs[Worker].replicas: Invalid value: -1: must be greater than or equal to 0\n"
        "3:5: unknown field \"spec.x\"\n"
        "kind: Required value\n");
    ty_buf_free(&b);
    ty_field_errors_free(&errs);
    ty_field_errors_free(&errs); /* idempotent */
    cr_assert_eq(errs.count, 0);
}

/* ---------- upstream's webhook tables (TestValidateV1PyTorchJob, TestValidateV1TFJob) ---------- */

/* Admits `text` and asserts that exactly the errors `want` (path "\t" message, NULL-ended, in
 * order) are reported, all as the webhook's, and the warnings `warn` (NULL-ended). */
static void expect_webhook(const char *text, const char *const *want, const char *const *warn)
{
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    int rc;
    json_t *obj = admit(text, &errs, &rc);
    char *all = format(&errs);
    size_t n = 0;
    while (want[n])
        n++;
    cr_assert_eq(errs.count, n, "want %zu errors, got:\n%s", n, all);
    cr_assert_eq(rc, n ? -1 : 0);
    for (size_t i = 0; i < n; i++) {
        char *got = ty_asprintf("%s\t%s", errs.items[i].path, errs.items[i].msg);
        cr_assert_str_eq(got, want[i], "error %zu of:\n%s", i, all);
        cr_assert(errs.items[i].webhook, "%s is not the webhook's", got);
        free(got);
    }
    size_t nw = 0;
    while (warn && warn[nw]) {
        cr_assert(nw < errs.nwarnings, "missing warning %s", warn[nw]);
        cr_assert_str_eq(errs.warnings[nw], warn[nw]);
        nw++;
    }
    cr_assert_eq(errs.nwarnings, nw);
    free(all);
    json_decref(obj);
    ty_field_errors_free(&errs);
}

#define PTW(extra_spec, specs) \
    "{'apiVersion': 'kubeflow.org/v1', 'kind': 'PyTorchJob', 'metadata': {'name': 'test'}," \
    " 'spec': {" extra_spec "'pytorchReplicaSpecs': {" specs "}}}"
#define REPLICA(type, extra, containers) \
    "'" type "': {" extra "'template': {'spec': {'containers': [" containers "]}}}"
#define TORCH "{'name': 'pytorch', 'image': 'gcr.io/kubeflow-ci/pytorch-dist-mnist_test:1.0'}"
#define VALID_SPECS REPLICA("Master", "'replicas': 1,", TORCH) ", " REPLICA("Worker", "'replicas': 1,", TORCH)
#define W "spec.pytorchReplicaSpecs[Worker]"
#define M "spec.pytorchReplicaSpecs[Master]"

Test(api_kubeflow, upstream_pytorchjob_webhook_table)
{
    static const char *const none[] = {NULL};
    expect_webhook(PTW("'runPolicy': {'managedBy': 'kubeflow.org/training-operator'},"
                       " 'elasticPolicy': {'rdzvBackend': 'c10d'},", VALID_SPECS), none, NULL);
    expect_webhook(PTW("", REPLICA("Worker", "", "")),
                   (const char *const[]){W ".template.spec.containers\tRequired value: must be specified",
                                         W ".template.spec.containers\tRequired value: must have at "
                                         "least one container with name pytorch", NULL}, NULL);
    expect_webhook(PTW("", REPLICA("Worker", "", "{'name': 'pytorch', 'image': ''}")),
                   (const char *const[]){W ".template.spec.containers[0].image\tRequired value: must "
                                         "be required", NULL}, NULL);
    /* A nameless container: the webhook's error only, not the pod's own. */
    expect_webhook(PTW("", REPLICA("Worker", "", "{'name': '', 'image': 'x'}")),
                   (const char *const[]){W ".template.spec.containers\tRequired value: must have at "
                                         "least one container with name pytorch", NULL}, NULL);
    expect_webhook(PTW("", REPLICA("Master", "'replicas': 2,", TORCH)),
                   (const char *const[]){M ".replicas\tForbidden: must be 1", NULL}, NULL);
    /* The webhook sees the job before defaults: no replicas is no Master of one. */
    expect_webhook(PTW("", REPLICA("Master", "", TORCH)),
                   (const char *const[]){M ".replicas\tForbidden: must be 1", NULL}, NULL);
    expect_webhook(PTW("", REPLICA("master", "'replicas': 1,", TORCH)),
                   (const char *const[]){"spec.pytorchReplicaSpecs[master]\tUnsupported value: "
                                         "\"master\": supported values: \"Master\", \"Worker\"",
                                         NULL}, NULL);
    static const char *const deprecated[] = {
        "spec.elasticPolicy.nProcPerNode is deprecated, use spec.nprocPerNode instead", NULL};
    expect_webhook(PTW("'elasticPolicy': {'nProcPerNode': 1},", VALID_SPECS), none, deprecated);
    expect_webhook(PTW("'nprocPerNode': '1', 'elasticPolicy': {'nProcPerNode': 1},", VALID_SPECS),
                   (const char *const[]){"spec.elasticPolicy.nProcPerNode\tForbidden: must not be "
                                         "used with spec.nprocPerNode", NULL}, deprecated);
    expect_webhook(PTW("'runPolicy': {'managedBy': 'other-job-controller'},", VALID_SPECS),
                   (const char *const[]){"spec.runPolicy.managedBy\tUnsupported value: "
                                         "\"other-job-controller\": supported values: "
                                         "\"kubeflow.org/training-operator\", "
                                         "\"kueue.x-k8s.io/multikueue\"", NULL}, NULL);
    expect_webhook(PTW("'elasticPolicy': {},", REPLICA("Master", "'replicas': 1,", TORCH)),
                   (const char *const[]){W "\tRequired value: must be configured if elastic policy "
                                         "is used", NULL}, NULL);
    expect_webhook(PTW("'elasticPolicy': {},", REPLICA("Worker", "'replicas': 0,", TORCH)),
                   (const char *const[]){W ".replicas\tForbidden: must be at least 1", NULL}, NULL);
    expect_webhook(PTW("", REPLICA("Worker", "'replicas': 0,", TORCH)),
                   (const char *const[]){W ".replicas\tForbidden: must be at least 1", NULL}, NULL);
    json_t *obj = load("{'apiVersion': 'kubeflow.org/v1', 'kind': 'PyTorchJob', 'metadata':"
                       " {'name': '0-test'}, 'spec': {'pytorchReplicaSpecs': {" VALID_SPECS "}}}");
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    cr_assert_eq(ty_api_admit(NULL, obj, &errs), -1);
    cr_assert_eq(errs.count, 1);
    cr_assert_str_eq(errs.items[0].path, "metadata.name");
    cr_assert(errs.items[0].webhook);
    cr_assert_str_eq(errs.webhook, "validator.pytorchjob.training-operator.kubeflow.org");
    ty_field_errors_free(&errs);
    json_decref(obj);
}

#define TFW(specs) \
    "{'apiVersion': 'kubeflow.org/v1', 'kind': 'TFJob', 'metadata': {'name': 'test'}," \
    " 'spec': {'tfReplicaSpecs': {" specs "}}}"
#define TF "{'name': 'tensorflow', 'image': 'kubeflow/tf-dist-mnist-test:1.0'}"
#define TW "spec.tfReplicaSpecs[Worker]"

Test(api_kubeflow, upstream_tfjob_webhook_table)
{
    static const char *const none[] = {NULL};
    expect_webhook(TFW(REPLICA("Worker", "'replicas': 0,", TF)), none, NULL);
    expect_webhook(TFW(REPLICA("Worker", "", "")),
                   (const char *const[]){TW ".template.spec.containers\tRequired value: must be specified",
                                         TW ".template.spec.containers\tRequired value: must have at "
                                         "least one container with name tensorflow", NULL}, NULL);
    expect_webhook(TFW(REPLICA("Worker", "", "{'name': 'tensorflow', 'image': ''}")),
                   (const char *const[]){TW ".template.spec.containers[0].image\tRequired value: must "
                                         "be required", NULL}, NULL);
    expect_webhook(TFW(REPLICA("Worker", "", "{'name': '', 'image': 'x'}")),
                   (const char *const[]){TW ".template.spec.containers\tRequired value: must have at "
                                         "least one container with name tensorflow", NULL}, NULL);
    expect_webhook(TFW(REPLICA("Chief", "", TF) ", " REPLICA("Master", "", TF)),
                   (const char *const[]){"spec.tfReplicaSpecs\tForbidden: must not have more than 1 "
                                         "Chief or Master role", NULL}, NULL);
}

/* ValidateRunPolicyUpdate (the webhook's) and the CRDs' transition rule on the queue. */
Test(api_kubeflow, update_rules)
{
    json_t *old = load(PTW("'runPolicy': {'managedBy': 'kubeflow.org/training-operator',"
                           " 'schedulingPolicy': {'queue': 'a'}},", VALID_SPECS));
    json_t *same = load(PTW("'runPolicy': {'managedBy': 'kubeflow.org/training-operator',"
                            " 'schedulingPolicy': {'queue': 'a'}, 'suspend': true},", VALID_SPECS));
    json_t *moved = load(PTW("'runPolicy': {'managedBy': 'kueue.x-k8s.io/multikueue',"
                             " 'schedulingPolicy': {'queue': 'b'}},", VALID_SPECS));
    json_t *unset = load(PTW("", VALID_SPECS));
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    cr_assert_eq(ty_api_check_update(same, old, &errs), 0);
    cr_assert_eq(ty_api_check_update(moved, old, &errs), -1);
    cr_assert_eq(errs.count, 2);
    cr_assert_str_eq(errs.items[0].path, "spec.runPolicy.schedulingPolicy.queue");
    cr_assert_str_eq(errs.items[0].msg,
                     "Invalid value: \"string\": spec.runPolicy.schedulingPolicy.queue is immutable");
    cr_assert(!errs.items[0].webhook);
    cr_assert_str_eq(errs.items[1].path, "spec.runPolicy.managedBy");
    cr_assert_str_eq(errs.items[1].msg,
                     "Invalid value: \"kueue.x-k8s.io/multikueue\": field is immutable");
    cr_assert(errs.items[1].webhook);
    ty_field_errors_free(&errs);
    /* Removing the queue is no transition (the rule needs both); removing managedBy is. */
    cr_assert_eq(ty_api_check_update(unset, old, &errs), -1);
    cr_assert_eq(errs.count, 1);
    cr_assert_str_eq(errs.items[0].msg, "Invalid value: \"null\": field is immutable");
    ty_field_errors_free(&errs);
    json_decref(old);
    json_decref(same);
    json_decref(moved);
    json_decref(unset);
}
