// Validates Kubernetes objects with validators that are not trainyard's (test_install.py):
//  - every object against Kubernetes' published OpenAPI schemas, as compiled by the
//    kubernetes-models packages (types, required fields, enums, formats);
//  - custom resources against the openAPIV3Schema of a CRD, with ajv, as the API server
//    would with strict field validation (unknown fields are errors where the schema does not
//    preserve them).
// Reads {"objects": [...], "crd_checks": [{"crd": CRD, "object": OBJ}]} on stdin and writes
// {"objects": [{"kind", "name", "error"}], "crd_checks": [{"errors": [...]}]} on stdout.
"use strict";
const Ajv = require("ajv");
const addFormats = require("ajv-formats");

function modelOf(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : [null, apiVersion];
  const path = group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`;
  let mod;
  try {
    mod = require(path);
  } catch (e) {
    return null;
  }
  return mod[kind] || null;
}

function validateObject(obj) {
  const Model = modelOf(obj.apiVersion || "", obj.kind || "");
  if (!Model) return `no published schema for ${obj.apiVersion} ${obj.kind}`;
  try {
    new Model(obj).validate();
    return null;
  } catch (e) {
    return e.message;
  }
}

// The CRD schema as a JSON Schema: objects that list their properties and do not preserve
// unknown fields refuse others (kubectl's --validate=strict; the API server would prune them).
function strict(schema) {
  if (!schema || typeof schema !== "object" || Array.isArray(schema)) return schema;
  const out = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === "properties") {
      out.properties = {};
      for (const [name, sub] of Object.entries(v)) out.properties[name] = strict(sub);
    } else if (k === "items" || k === "additionalProperties") {
      out[k] = strict(v);
    } else {
      out[k] = v;
    }
  }
  if (out.properties && !schema["x-kubernetes-preserve-unknown-fields"] &&
      out.additionalProperties === undefined)
    out.additionalProperties = false;
  return out;
}

const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?\d+)?$/;

// CRD patterns are Go (RE2) regular expressions, as the API server compiles them; the one
// RE2 feature they use that JavaScript lacks is a leading inline flag, "^(?i)...".
function re2(pattern, flags) {
  const m = /^(\^?)\(\?i\)/.exec(pattern);
  return m ? new RegExp(m[1] + pattern.slice(m[0].length), flags + "i") : new RegExp(pattern, flags);
}

function crdValidator() {
  const ajv = new Ajv({ allErrors: true, strict: false, code: { regExp: re2 } });
  addFormats(ajv);
  ajv.addFormat("int32", { type: "number", validate: (n) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat("int64", { type: "number", validate: (n) => Number.isInteger(n) });
  ajv.addFormat("double", { type: "number", validate: () => true });
  ajv.addFormat("float", { type: "number", validate: () => true });
  ajv.addFormat("quantity", { validate: (s) => QUANTITY.test(s) });
  ajv.addKeyword({
    keyword: "x-kubernetes-int-or-string",
    validate: (on, data) => !on || typeof data === "string" || Number.isInteger(data),
    errors: false,
  });
  for (const k of ["x-kubernetes-preserve-unknown-fields", "x-kubernetes-list-type",
                   "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
                   "x-kubernetes-embedded-resource"])
    ajv.addKeyword({ keyword: k });
  return ajv;
}

function checkAgainstCrd(ajv, crd, obj) {
  const version = crd.spec.versions.find((v) => `${crd.spec.group}/${v.name}` === obj.apiVersion);
  if (!version) return [`${obj.apiVersion} is not a version of ${crd.metadata.name}`];
  if (obj.kind !== crd.spec.names.kind) return [`kind ${obj.kind} is not ${crd.spec.names.kind}`];
  const validate = ajv.compile(strict(version.schema.openAPIV3Schema));
  if (validate(obj)) return [];
  return validate.errors.map((e) => `${e.instancePath || "/"} ${e.message}` +
    (e.params && e.params.additionalProperty ? `: ${e.params.additionalProperty}` : ""));
}

let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const req = JSON.parse(input);
  const ajv = crdValidator();
  const out = {
    objects: (req.objects || []).map((o) => ({
      kind: o.kind, name: o.metadata && o.metadata.name, error: validateObject(o),
    })),
    crd_checks: (req.crd_checks || []).map((c) => ({ errors: checkAgainstCrd(ajv, c.crd, c.object) })),
  };
  process.stdout.write(JSON.stringify(out));
});
