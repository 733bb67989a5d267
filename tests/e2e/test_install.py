"""`trainyard install` and `trainyard install --dockerfile`: the manifests that deploy trainyard
on a Kubernetes cluster, checked with validators that are not trainyard's own code:

- every object against Kubernetes' published OpenAPI schemas, with the npm registry's
  kubernetes-models (compiled from Kubernetes' swagger), and field by field against the
  official Python client's models (python3-kubernetes), which also flags unknown fields;
- each CRD's openAPIV3Schema against apiextensions.k8s.io/v1's structural schema rules, written
  here from the Kubernetes documentation;
- the examples (and Kueue queue manifests) against the generated CRD schemas with ajv, as the
  API server would validate them with strict field validation;
- the ClusterRole's least privilege, --manage subsets, options, determinism;
- the Dockerfile: its packages exist in Debian and provide every library the binary links or
  loads.

The npm packages are installed once into build/npm from tests/e2e/npm (pinned by its
package-lock.json); the tests that need them skip, saying why, only when node or npm are not
there or the registry cannot be reached."""
import copy
import functools
import glob
import json
import os
import re
import shutil
import subprocess
import urllib.request

import pytest
import yaml

from conftest import REPO, trainyard_bin
from server_fixture import Server

NPM_SRC = os.path.join(REPO, "tests", "e2e", "npm")
NPM_DIR = os.path.join(REPO, "build", "npm")

CUSTOM_GROUPS = {"kubeflow.org", "kueue.x-k8s.io", "serving.kserve.io"}
KUBEFLOW = {"pytorchjobs", "tfjobs"}
SERVING = {"inferenceservices", "servingruntimes", "clusterservingruntimes"}
KATIB = {"experiments", "trials", "suggestions"}  # kubeflow.org/v1beta1
KUEUE = {"resourceflavors", "admissionchecks", "clusterqueues", "localqueues", "workloads",
         "workloadpriorityclasses"}

# Queue manifests as a team writes them (docs/kueue.md), for the Kueue CRDs' schemas.
KUEUE_SAMPLES = """\
apiVersion: kueue.x-k8s.io/v1beta1
kind: ResourceFlavor
metadata: {name: a100}
spec:
  nodeLabels: {gpu.example.com/model: a100}
  tolerations:
  - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: ClusterQueue
metadata: {name: research}
spec:
  namespaceSelector: {}
  cohort: lab
  queueingStrategy: BestEffortFIFO
  preemption: {reclaimWithinCohort: Any, withinClusterQueue: LowerPriority}
  resourceGroups:
  - coveredResources: [cpu, memory, nvidia.com/gpu]
    flavors:
    - name: a100
      resources:
      - {name: cpu, nominalQuota: 64, borrowingLimit: 16}
      - {name: memory, nominalQuota: 256Gi}
      - {name: nvidia.com/gpu, nominalQuota: 8, lendingLimit: 4}
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: LocalQueue
metadata: {name: main, namespace: team-a}
spec: {clusterQueue: research}
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: WorkloadPriorityClass
metadata: {name: urgent}
value: 10000
description: deadline work
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: AdmissionCheck
metadata: {name: prov}
spec:
  controllerName: kueue.x-k8s.io/provisioning-request
  parameters: {apiGroup: kueue.x-k8s.io, kind: ProvisioningRequestConfig, name: cfg}
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: Workload
metadata: {name: job-a, namespace: team-a}
spec:
  queueName: main
  priorityClassName: urgent
  priority: 10000
  priorityClassSource: kueue.x-k8s.io/workloadpriorityclass
  podSets:
  - name: main
    count: 2
    template:
      spec:
        containers:
        - {name: c, image: busybox, resources: {requests: {cpu: "1", nvidia.com/gpu: 1}}}
"""


def install(*args, check=True):
    p = subprocess.run([trainyard_bin(), "install", *args], capture_output=True, text=True,
                       timeout=60)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def objects(*args):
    return [d for d in yaml.safe_load_all(install(*args).stdout) if d is not None]


def by_kind(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def crds_of(objs):
    return {o["spec"]["names"]["plural"]: o for o in by_kind(objs, "CustomResourceDefinition")}


# ---- the independent validators ----

@functools.lru_cache(maxsize=None)
def npm_validators():
    """build/npm with tests/e2e/npm's packages installed (once: kept while the lock file is
    unchanged), or the reason they cannot be."""
    if not shutil.which("node") or not shutil.which("npm"):
        return None, "node and npm are not installed (scripts/deps.sh installs them)"
    os.makedirs(NPM_DIR, exist_ok=True)
    lock = os.path.join(NPM_SRC, "package-lock.json")
    stamp = os.path.join(NPM_DIR, "installed.lock")
    fresh = os.path.exists(stamp) and open(stamp).read() == open(lock).read() and \
        os.path.isdir(os.path.join(NPM_DIR, "node_modules", "kubernetes-models"))
    if not fresh:
        for f in ("package.json", "package-lock.json"):
            shutil.copy(os.path.join(NPM_SRC, f), NPM_DIR)
        p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=NPM_DIR, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            return None, "npm ci of tests/e2e/npm failed (is the npm registry reachable?): " + \
                p.stderr[-500:]
        shutil.copy(lock, stamp)
    return NPM_DIR, None


def node_validate(objs=(), crd_checks=()):
    where, why = npm_validators()
    if not where:
        pytest.skip(why)
    env = dict(os.environ, NODE_PATH=os.path.join(where, "node_modules"))
    p = subprocess.run(["node", os.path.join(NPM_SRC, "validate.js")],
                       input=json.dumps({"objects": list(objs), "crd_checks": list(crd_checks)}),
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def python_model_errors(obj):
    """Fields of `obj` that the official Python client's model of its kind does not have, or
    whose JSON type does not fit; [] when it fits."""
    import kubernetes.client as kc
    version = obj["apiVersion"].rpartition("/")[2]
    cls = getattr(kc, version.capitalize() + obj["kind"])  # V1Deployment, V1ClusterRole...
    errors = []

    def walk(value, typ, path):
        if typ.startswith("list["):
            if not isinstance(value, list):
                errors.append(f"{path}: not a list")
                return
            for i, v in enumerate(value):
                walk(v, typ[5:-1], f"{path}[{i}]")
        elif typ.startswith("dict("):
            if not isinstance(value, dict):
                errors.append(f"{path}: not a map")
                return
            inner = typ[5:-1].split(", ", 1)[1]
            for k, v in value.items():
                walk(v, inner, f"{path}.{k}")
        elif typ == "str":
            if not isinstance(value, str):
                errors.append(f"{path}: not a string")
        elif typ == "int":
            if not isinstance(value, int) or isinstance(value, bool):
                errors.append(f"{path}: not an integer")
        elif typ == "bool":
            if not isinstance(value, bool):
                errors.append(f"{path}: not a boolean")
        elif typ in ("object", "float", "datetime"):
            pass
        else:
            model = getattr(kc, typ)
            if not isinstance(value, dict):
                errors.append(f"{path}: not an object ({typ})")
                return
            fields = {json_name: model.openapi_types[attr]
                      for attr, json_name in model.attribute_map.items()}
            for k, v in value.items():
                if k not in fields:
                    errors.append(f"{path}.{k}: unknown field of {typ}")
                else:
                    walk(v, fields[k], f"{path}.{k}")

    walk(obj, cls.__name__, obj["kind"])
    return errors


# Keywords apiextensions.k8s.io/v1 JSONSchemaProps has, less those a structural schema may not
# use ($ref, definitions, id, $schema, patternProperties, dependencies, additionalItems).
SCHEMA_KEYS = {
    "description", "type", "format", "title", "default", "maximum", "exclusiveMaximum",
    "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
    "uniqueItems", "multipleOf", "enum", "maxProperties", "minProperties", "required", "items",
    "allOf", "oneOf", "anyOf", "not", "properties", "additionalProperties", "externalDocs",
    "example", "nullable", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys", "x-kubernetes-list-type", "x-kubernetes-map-type",
    "x-kubernetes-validations",
}
TYPES = {"object", "array", "string", "integer", "number", "boolean"}


def structural_errors(schema):
    """Where `schema` breaks the structural schema rules of apiextensions.k8s.io/v1
    (kubernetes.io docs, "Specifying a structural schema"), [] when it is structural."""
    errs = []

    def check(node, path, root=False):
        if not isinstance(node, dict):
            errs.append(f"{path}: not a schema")
            return
        for k in node:
            if k not in SCHEMA_KEYS:
                errs.append(f"{path}: {k} is not allowed")
        ios = node.get("x-kubernetes-int-or-string") is True
        preserve = node.get("x-kubernetes-preserve-unknown-fields")
        if preserve is not None and preserve is not True:
            errs.append(f"{path}: x-kubernetes-preserve-unknown-fields must be true")
        for j in ("allOf", "oneOf", "anyOf", "not"):
            if j in node and not (ios and j == "anyOf" and node[j] == [{"type": "integer"},
                                                                       {"type": "string"}]):
                errs.append(f"{path}: {j} is not generated structurally")
        if ios:
            if "type" in node:
                errs.append(f"{path}: int-or-string must not have a type")
        elif node.get("type") not in TYPES and not preserve:
            errs.append(f"{path}: no type")
        if node.get("uniqueItems") is True:
            errs.append(f"{path}: uniqueItems: true is forbidden")
        if "properties" in node and "additionalProperties" in node:
            errs.append(f"{path}: properties and additionalProperties together")
        if node.get("additionalProperties") is False:
            errs.append(f"{path}: additionalProperties: false is forbidden")
        if ("properties" in node or "additionalProperties" in node) and \
                node.get("type") != "object":
            errs.append(f"{path}: properties on a non-object")
        if "items" in node and (node.get("type") != "array" or not isinstance(node["items"],
                                                                                dict)):
            errs.append(f"{path}: items must be one schema of an array")
        if node.get("type") == "array" and "items" not in node:
            errs.append(f"{path}: an array without items")
        lt = node.get("x-kubernetes-list-type")
        if lt is not None:
            if lt not in ("atomic", "set", "map") or node.get("type") != "array":
                errs.append(f"{path}: bad x-kubernetes-list-type")
            if lt == "map":
                item = node.get("items", {})
                for key in node.get("x-kubernetes-list-map-keys", []) or ["<none>"]:
                    sub = item.get("properties", {}).get(key)
                    if sub is None or (key not in item.get("required", []) and
                                       "default" not in sub):
                        errs.append(f"{path}: map key {key} must be required or defaulted")
        if node.get("x-kubernetes-map-type") not in (None, "granular", "atomic"):
            errs.append(f"{path}: bad x-kubernetes-map-type")
        for k in node.get("required", []):
            if "properties" in node and k not in node["properties"]:
                errs.append(f"{path}: required {k} is not a property")
        if root:
            if node.get("type") != "object":
                errs.append("(root): must be an object")
            meta = node.get("properties", {}).get("metadata")
            if meta is not None:
                extra = set(meta) - {"type", "properties"}
                props = set(meta.get("properties", {})) - {"name", "generateName"}
                if meta.get("type") != "object" or extra or props:
                    errs.append("(root).metadata: only name and generateName may be "
                                "restricted")
        for k, sub in node.get("properties", {}).items():
            if not (root and k == "metadata"):
                check(sub, f"{path}.{k}")
        if isinstance(node.get("additionalProperties"), dict):
            check(node["additionalProperties"], f"{path}.additionalProperties")
        if isinstance(node.get("items"), dict):
            check(node["items"], f"{path}[*]")

    check(schema, "", root=True)
    return errs


# ---- the tests ----

def test_every_object_validates_against_kubernetes_published_schemas():
    variants = [(), ("--namespace", "ml-ops", "--replicas", "3", "--image",
                     "registry.example.com/trainyard:1.0"), ("--manage", "pytorchjobs,tfjobs"),
                ("--manage", "kueue")]
    objs = [o for v in variants for o in objects(*v)]
    kinds = {o["kind"] for o in objs}
    assert kinds == {"Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole",
                     "ClusterRoleBinding", "Role", "RoleBinding", "Deployment",
                     "PodDisruptionBudget"}
    # Broken copies: the validator must catch them, or its silence proves nothing.
    dep = copy.deepcopy(by_kind(objs, "Deployment")[0])
    dep["spec"]["replicas"] = "two"
    crd = copy.deepcopy(by_kind(objs, "CustomResourceDefinition")[0])
    del crd["spec"]["names"]["plural"]
    role = copy.deepcopy(by_kind(objs, "ClusterRole")[0])
    del role["rules"][0]["verbs"]
    out = node_validate(objs + [dep, crd, role])["objects"]
    bad = [(o["kind"], o["name"], o["error"]) for o in out[:len(objs)] if o["error"]]
    assert bad == []
    assert all(o["error"] for o in out[len(objs):]), out[len(objs):]
    assert "replicas" in out[-3]["error"] and "plural" in out[-2]["error"] and \
        "verbs" in out[-1]["error"]


def test_every_field_is_known_to_the_kubernetes_python_client():
    objs = objects()
    for o in objs:
        assert python_model_errors(o) == [], o["kind"]
    typo = copy.deepcopy(by_kind(objs, "Deployment")[0])
    typo["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    crd = copy.deepcopy(crds_of(objs)["pytorchjobs"])
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["$id"] = "x"
    assert python_model_errors(typo) == ["Deployment.spec.template.spec.containers[0]."
                                         "livenesProbe: unknown field of V1Container"]
    assert len(python_model_errors(crd)) == 1


def test_crd_schemas_are_structural():
    crds = crds_of(objects())
    assert set(crds) == KUBEFLOW | KATIB | KUEUE | SERVING
    for plural, crd in crds.items():
        for v in crd["spec"]["versions"]:
            schema = v["schema"]["openAPIV3Schema"]
            assert structural_errors(schema) == [], plural
            assert "$ref" not in json.dumps(schema)
    # The checker itself refuses what apiextensions refuses.
    assert structural_errors({"type": "object", "properties": {"a": {"description": "x"}}}) == \
        [".a: no type"]
    assert structural_errors({"type": "object", "properties": {"a": {"$ref": "#/x"}}}) == \
        [".a: $ref is not allowed", ".a: no type"]
    assert structural_errors({"type": "object", "properties": {
        "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}}) == \
        ["(root).metadata: only name and generateName may be restricted"]
    assert structural_errors({"type": "object", "properties": {
        "q": {"type": "string", "x-kubernetes-int-or-string": True}}}) == \
        [".q: int-or-string must not have a type"]


def test_crds_say_what_the_server_serves(tmp_path):
    """Names, short names, scope, categories and the status subresource, compared with the
    discovery of `trainyard server`; printer columns with its Tables' columns."""
    crds = crds_of(objects())
    s = Server(tmp_path / "data").start()
    try:
        for group, version in (("kubeflow.org", "v1"), ("kueue.x-k8s.io", "v1beta1")):
            with urllib.request.urlopen(f"{s.url}/apis/{group}/{version}", timeout=10) as r:
                served = json.load(r)["resources"]
            subs = {r["name"] for r in served if "/" in r["name"]}
            for r in served:
                if "/" in r["name"]:
                    continue
                crd = crds[r["name"]]
                names = crd["spec"]["names"]
                assert crd["metadata"]["name"] == f"{r['name']}.{group}"
                assert crd["spec"]["group"] == group
                assert [v["name"] for v in crd["spec"]["versions"]] == [version]
                assert names["kind"] == r["kind"] and names["listKind"] == r["kind"] + "List"
                assert names["singular"] == r["singularName"]
                assert names.get("shortNames", []) == r.get("shortNames", [])
                assert names.get("categories", []) == r.get("categories", [])
                assert crd["spec"]["scope"] == ("Namespaced" if r["namespaced"] else "Cluster")
                v = crd["spec"]["versions"][0]
                assert ("status" in v.get("subresources", {})) == \
                    (f"{r['name']}/status" in subs), r["name"]
                # Printer columns for the kinds whose Table has more than name and age
                # (test_printer_columns_are_the_tables_columns compares them).
                cols = [c["name"] for c in v.get("additionalPrinterColumns", [])]
                if r["name"] in KUEUE - {"resourceflavors", "admissionchecks"} or \
                        r["name"] in KUBEFLOW:
                    assert cols and cols[-1] == "Age", r["name"]
                else:
                    assert cols == [], r["name"]
            assert {r["name"] for r in served if "/" not in r["name"]} <= set(crds)
    finally:
        assert s.stop() == 0
        s.reap()


def test_printer_columns_are_the_tables_columns(tmp_path):
    crds = crds_of(objects())
    s = Server(tmp_path / "data").start()
    try:
        for plural in ("pytorchjobs", "clusterqueues", "localqueues", "workloads",
                       "workloadpriorityclasses"):
            crd = crds[plural]
            gv = f"{crd['spec']['group']}/{crd['spec']['versions'][0]['name']}"
            table = json.loads(subprocess.run(
                ["curl", "-sf", "-H", "Accept: application/json;as=Table;v=v1;g=meta.k8s.io",
                 f"{s.url}/apis/{gv}/{plural}"], capture_output=True, text=True,
                timeout=30).stdout)
            served = [c["name"] for c in table["columnDefinitions"]]
            cols = crd["spec"]["versions"][0]["additionalPrinterColumns"]
            assert [c["name"] for c in cols] == [n for n in served if n in
                                                 {c["name"] for c in cols}]
            assert all(c["jsonPath"].startswith(".") and
                       c["type"] in ("integer", "number", "string", "boolean", "date")
                       for c in cols)
    finally:
        assert s.stop() == 0
        s.reap()


def crd_examples():
    docs = []
    for path in sorted(glob.glob(os.path.join(REPO, "examples", "*", "*.yaml"))):
        docs += [(os.path.relpath(path, REPO), d) for d in yaml.safe_load_all(open(path)) if d]
    docs += [("kueue samples", d) for d in yaml.safe_load_all(KUEUE_SAMPLES) if d]
    return docs


def test_examples_validate_against_the_generated_crds():
    crds = {c["spec"]["names"]["kind"]: c for c in crds_of(objects()).values()}
    examples = crd_examples()
    assert {d["kind"] for _, d in examples} == {"PyTorchJob", "TFJob", "ResourceFlavor",
                                                "ClusterQueue", "LocalQueue",
                                                "WorkloadPriorityClass", "AdmissionCheck",
                                                "Workload", "InferenceService",
                                                "ClusterServingRuntime", "Experiment"}
    checks = [{"crd": crds[d["kind"]], "object": d} for _, d in examples]
    # Broken copies the schema must refuse: a wrong type, an unknown field, a bad enum.
    job = copy.deepcopy(next(d for _, d in examples if d["kind"] == "PyTorchJob"))
    job["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = "one"
    typo = copy.deepcopy(job)
    typo["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = 1
    typo["spec"]["runPolicy"] = {"cleanPodPolicyy": "All"}
    cq = copy.deepcopy(next(d for _, d in examples if d["kind"] == "ClusterQueue"))
    cq["spec"]["queueingStrategy"] = "Random"
    out = node_validate(crd_checks=checks + [{"crd": crds["PyTorchJob"], "object": job},
                                             {"crd": crds["PyTorchJob"], "object": typo},
                                             {"crd": crds["ClusterQueue"], "object": cq}])
    results = out["crd_checks"]
    for (name, d), r in zip(examples, results):
        assert r["errors"] == [], (name, d["kind"], r["errors"])
    broken = results[len(examples):]
    assert any("replicas must be integer" in e for e in broken[0]["errors"]), broken[0]
    assert any("cleanPodPolicyy" in e for e in broken[1]["errors"]), broken[1]
    assert any("queueingStrategy" in e for e in broken[2]["errors"]), broken[2]


def all_strings(v):
    if isinstance(v, dict):
        for k, x in v.items():
            yield k
            yield from all_strings(x)
    elif isinstance(v, list):
        for x in v:
            yield from all_strings(x)
    elif isinstance(v, str):
        yield v


def rules_of(objs, kind="ClusterRole"):
    """{(group, resource): set of verbs} of the roles of `kind`."""
    out = {}
    for role in by_kind(objs, kind):
        for r in role["rules"]:
            for g in r["apiGroups"]:
                for res in r["resources"]:
                    out.setdefault((g, res), set()).update(r["verbs"])
    return out


def test_cluster_role_is_least_privilege():
    objs = objects()
    for role in by_kind(objs, "ClusterRole") + by_kind(objs, "Role"):
        assert "*" not in list(all_strings(role["rules"])), role["metadata"]["name"]
        for r in role["rules"]:
            assert r["apiGroups"] and r["resources"] and r["verbs"]
            assert not set(r["verbs"]) & {"escalate", "bind", "impersonate", "deletecollection"}
    rules = rules_of(objs)
    assert not any(res in ("secrets", "configmaps", "roles", "clusterroles",
                           "customresourcedefinitions", "serviceaccounts", "leases")
                   for _, res in rules)
    assert rules[("", "pods/binding")] == {"create"}
    assert rules[("", "nodes")] == {"get", "list", "watch"}
    assert rules[("", "pods")] == {"get", "list", "watch", "create", "delete"}
    assert "update" not in rules[("", "pods")]
    for plural in KUBEFLOW:
        assert {"get", "list", "watch", "update"} <= rules[("kubeflow.org", plural)]
        assert "update" in rules[("kubeflow.org", plural + "/status")]
    for plural in KUEUE:
        assert {"get", "list", "watch"} <= rules[("kueue.x-k8s.io", plural)]
    assert "create" in rules[("kueue.x-k8s.io", "workloads")]
    assert "create" not in rules[("kueue.x-k8s.io", "clusterqueues")]
    assert ("kueue.x-k8s.io", "resourceflavors/status") not in rules
    # Leader election: leases only in trainyard's own namespace, through a Role.
    role = by_kind(objs, "Role")[0]
    assert role["metadata"]["namespace"] == "trainyard-system"
    assert rules_of(objs, "Role") == {("coordination.k8s.io", "leases"):
                                      {"get", "create", "update"}}
    for b in by_kind(objs, "ClusterRoleBinding") + by_kind(objs, "RoleBinding"):
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": "trainyard",
                                  "namespace": "trainyard-system"}]
        assert b["roleRef"]["name"] == "trainyard"


def test_manage_limits_crds_and_rights():
    only_jobs = objects("--manage", "pytorchjobs,tfjobs")
    assert set(crds_of(only_jobs)) == KUBEFLOW
    assert not any(g == "kueue.x-k8s.io" for g, _ in rules_of(only_jobs))
    one = objects("--manage", "pytorchjobs")
    assert set(crds_of(one)) == {"pytorchjobs"}
    assert not any(res.startswith("tfjobs") for _, res in rules_of(one))
    # Kueue alone next to the training operator: trainyard queues the operator's jobs
    # (suspends and starts them) but neither writes their status nor deletes them.
    queues = objects("--manage", "kueue")
    assert set(crds_of(queues)) == KUEUE
    rules = rules_of(queues)
    assert rules[("kubeflow.org", "pytorchjobs")] == {"get", "list", "watch", "update", "patch"}
    assert rules[("kubeflow.org", "pytorchjobs/status")] == {"get"}
    # the group: the training jobs (v1) and Katib's kinds (v1beta1)
    assert set(crds_of(objects("--manage", "kubeflow,workloads"))) == \
        KUBEFLOW | KATIB | {"workloads"}
    for bad, msg in (("pytorchjob", "unknown kind pytorchjob"), ("pods", "unknown kind pods"),
                     ("priorityclasses", "unknown kind priorityclasses"),
                     (",", "no kinds given")):
        p = install("--manage", bad, check=False)
        assert p.returncode == 2 and p.stdout == "", bad
        assert msg in p.stderr and "known: kubeflow, kueue, pytorchjobs" in \
            p.stderr if "unknown" in msg else msg in p.stderr, p.stderr


def test_deployment_options_security_and_probes():
    objs = objects("--namespace", "ml-ops", "--replicas", "3", "--image", "reg.example/ty:1")
    ns = by_kind(objs, "Namespace")
    assert [n["metadata"]["name"] for n in ns] == ["ml-ops"]
    for o in objs:
        if o["kind"] in ("ServiceAccount", "Role", "RoleBinding", "Deployment",
                         "PodDisruptionBudget"):
            assert o["metadata"]["namespace"] == "ml-ops", o["kind"]
        if o["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            assert o["subjects"][0]["namespace"] == "ml-ops"
    dep = by_kind(objs, "Deployment")[0]
    assert dep["spec"]["replicas"] == 3
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "trainyard"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    assert c["image"] == "reg.example/ty:1"
    assert c["args"][:2] == ["server", "--in-cluster"]
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port = c["ports"][0]
    assert c["livenessProbe"]["httpGet"]["port"] == port["name"]
    assert c["args"][c["args"].index("--listen") + 1].endswith(f":{port['containerPort']}")
    assert set(c["resources"]["requests"]) == {"cpu", "memory"}
    assert set(c["resources"]["limits"]) == {"cpu", "memory"}
    assert dep["spec"]["selector"]["matchLabels"].items() <= \
        dep["spec"]["template"]["metadata"]["labels"].items()
    pdb = by_kind(objs, "PodDisruptionBudget")[0]
    assert pdb["metadata"]["namespace"] == "ml-ops" and pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == dep["spec"]["selector"]
    assert by_kind(objects("--replicas", "1"), "PodDisruptionBudget") == []
    assert objects()[0]["metadata"]["name"] == "trainyard-system"
    assert by_kind(objects(), "Deployment")[0]["spec"]["replicas"] == 2
    for args, msg in ((("--namespace", "Bad_NS"), "--namespace: Bad_NS"),
                      (("--replicas", "0"), "--replicas"), (("--replicas", "x"), "--replicas"),
                      (("-o", "xml"), "--output"), (("--image", ""), "--image"),
                      (("extra",), "unexpected argument extra")):
        p = install(*args, check=False)
        assert p.returncode == 2 and p.stdout == "" and msg in p.stderr, (args, p.stderr)


def test_output_is_deterministic_and_json_is_the_same_list():
    a, b = install().stdout, install().stdout
    assert a == b
    docs = [d for d in yaml.safe_load_all(a) if d]
    lst = json.loads(install("-o", "json").stdout)
    assert lst["apiVersion"] == "v1" and lst["kind"] == "List"
    assert lst["items"] == docs
    assert install("-o", "yaml").stdout == a
    # Strings that YAML 1.1 would read as numbers or booleans stay strings.
    dep = by_kind(docs, "Deployment")[0]
    assert dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "1"
    # trainyard's manifest parser (Kubernetes' go-yaml rules) reads the text back the same:
    # tests/unit/test_crd.c.


def debian_package_of(path):
    p = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True, text=True)
    if p.returncode != 0:
        p = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
    return p.stdout.split(":", 1)[0] if p.returncode == 0 else None


def test_dockerfile_installs_every_library_trainyard_links_or_loads():
    text = install("--dockerfile").stdout
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "FROM debian:bookworm-slim"
    assert "COPY trainyard /usr/local/bin/trainyard" in lines
    assert any(re.match(r"USER \d+:\d+$", line) and not line.startswith("USER 0")
               for line in lines)
    assert lines[-1].startswith("CMD [") and json.loads(lines[-1][4:])[:2] == \
        ["server", "--in-cluster"]
    m = re.search(r"apt-get install -y --no-install-recommends((?:[^&]|\\\n)*)", text)
    packages = set(m.group(1).replace("\\", " ").split())
    # What the binary needs: what it links (ldd) and the sonames it dlopens (read from the
    # binary's own strings, not from its sources), less the GPU driver's library, which the
    # NVIDIA container toolkit mounts from the host.
    ldd = subprocess.run(["ldd", trainyard_bin()], capture_output=True, text=True).stdout
    libs = [m.group(1) for m in re.finditer(r"=> (/\S+)", ldd)]
    binary = open(trainyard_bin(), "rb").read()
    sonames = {s.decode() for s in re.findall(rb"lib[a-z0-9_+-]+\.so\.\d+", binary)}
    sonames.discard("libnvidia-ml.so.1")
    # src/kube/curl.c falls back to GnuTLS's libcurl only where libcurl.so.4 (libcurl4) is not
    sonames.discard("libcurl-gnutls.so.4")
    for soname in sorted(sonames):
        p = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True)
        hit = re.search(rf"^\s+{re.escape(soname)} \(libc6,x86-64\) => (\S+)$", p.stdout, re.M)
        assert hit, f"{soname} is not installed here"
        libs.append(hit.group(1))
    needed = {debian_package_of(path) for path in libs}
    assert None not in needed, libs
    needed -= {"libc6", "libgcc-s1"}  # in every Debian image
    # The sanitizer build (TRAINYARD_BIN=build/asan/trainyard) links the sanitizers' runtimes,
    # which the image's release binary does not.
    needed -= {"libasan8", "libubsan1", "libstdc++6"}
    assert needed and needed <= packages, needed - packages
    # Every package named exists in Debian (when apt's lists are here to say so).
    if subprocess.run(["apt-cache", "show", "libc6"], capture_output=True).returncode == 0:
        for pkg in packages:
            assert subprocess.run(["apt-cache", "show", pkg],
                                  capture_output=True).returncode == 0, pkg
