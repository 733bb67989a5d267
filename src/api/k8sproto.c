#include "api/k8sproto.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/mem.h"

/* A view of protobuf bytes being read. */
typedef struct pb {
    const uint8_t *p, *end;
} pb;

typedef struct pb_field {
    uint32_t number;
    int wire;       /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
    uint64_t value; /* varint value */
    pb bytes;       /* length-delimited contents */
} pb_field;

static int read_varint(pb *b, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end)
            return -1;
        uint8_t c = *b->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* The next field, or 0 at the end, or -1 when the bytes are not protobuf. */
static int next_field(pb *b, pb_field *f)
{
    if (b->p >= b->end)
        return 0;
    uint64_t tag;
    if (read_varint(b, &tag) < 0 || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
        return -1;
    f->number = (uint32_t)(tag >> 3);
    f->wire = (int)(tag & 7);
    switch (f->wire) {
    case 0:
        return read_varint(b, &f->value) < 0 ? -1 : 1;
    case 1:
    case 5: {
        size_t n = f->wire == 1 ? 8 : 4;
        if ((size_t)(b->end - b->p) < n)
            return -1;
        b->p += n;
        return 1;
    }
    case 2: {
        uint64_t n;
        if (read_varint(b, &n) < 0 || n > (uint64_t)(b->end - b->p))
            return -1;
        f->bytes = (pb){b->p, b->p + n};
        b->p += n;
        return 1;
    }
    default:
        return -1;
    }
}

static json_t *string_of(const pb *b)
{
    return json_stringn((const char *)b->p, (size_t)(b->end - b->p)); /* NULL if not UTF-8 */
}

/* A map entry {1: key, 2: value} into obj: map<string,string>, or map<string,bytes> when
 * `bytes` (its JSON form is base64, as for any []byte). */
static int map_entry_of(pb b, json_t *obj, bool bytes)
{
    json_t *key = NULL, *value = NULL;
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.wire != 2)
            continue;
        if (f.number == 1) {
            json_decref(key);
            key = string_of(&f.bytes);
        } else if (f.number == 2) {
            json_decref(value);
            if (bytes) {
                char *enc = ty_base64_encode(f.bytes.p, (size_t)(f.bytes.end - f.bytes.p), false);
                value = json_string(enc);
                free(enc);
            } else {
                value = string_of(&f.bytes);
            }
        }
    }
    int rc = -1;
    if (r == 0 && key) {
        json_object_set_new(obj, json_string_value(key), value ? value : json_string(""));
        value = NULL;
        rc = 0;
    }
    json_decref(key);
    json_decref(value);
    return rc;
}

static int map_entry(pb b, json_t *obj)
{
    return map_entry_of(b, obj, false);
}

/* obj[key], made an empty object or array (per `array`) when absent. */
static json_t *member(json_t *obj, const char *key, bool array)
{
    json_t *m = json_object_get(obj, key);
    if (!m) {
        m = array ? json_array() : json_object();
        json_object_set_new(obj, key, m);
    }
    return m;
}

/* A length-delimited field as a string member (set, or appended to an array member). Go's
 * encoder writes every string field, set or not; an empty one is left out, as JSON's
 * omitempty leaves it out, so that defaults apply. */
static int set_string(json_t *obj, const char *key, const pb_field *f, bool append)
{
    json_t *s = f->wire == 2 ? string_of(&f->bytes) : NULL;
    if (!s)
        return -1;
    if (!append && json_string_length(s) == 0)
        json_decref(s);
    else if (append)
        json_array_append_new(member(obj, key, true), s);
    else
        json_object_set_new(obj, key, s);
    return 0;
}

static int object_meta(pb b, json_t *meta)
{
    static const char *const strings[] = {[1] = "name", [2] = "generateName", [3] = "namespace"};
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.wire != 2)
            continue;
        if (f.number >= 1 && f.number <= 3) {
            if (set_string(meta, strings[f.number], &f, false) < 0)
                return -1;
        } else if (f.number == 11 || f.number == 12) {
            const char *field = f.number == 11 ? "labels" : "annotations";
            json_t *map = json_object_get(meta, field);
            if (!map) {
                map = json_object();
                json_object_set_new(meta, field, map);
            }
            if (map_entry(f.bytes, map) < 0)
                return -1;
        } else if (f.number == 14) {
            json_t *fins = json_object_get(meta, "finalizers");
            if (!fins) {
                fins = json_array();
                json_object_set_new(meta, "finalizers", fins);
            }
            json_t *s = string_of(&f.bytes);
            if (!s)
                return -1;
            json_array_append_new(fins, s);
        }
    }
    return r;
}

static int namespace_of(pb b, json_t *obj)
{
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.wire != 2)
            continue;
        if (f.number == 1) {
            if (object_meta(f.bytes, json_object_get(obj, "metadata")) < 0)
                return -1;
        } else if (f.number == 2) {
            json_t *fins = json_array();
            pb spec = f.bytes;
            pb_field g;
            int rs;
            while ((rs = next_field(&spec, &g)) > 0) {
                json_t *s = g.number == 1 && g.wire == 2 ? string_of(&g.bytes) : NULL;
                if (s)
                    json_array_append_new(fins, s);
            }
            if (rs < 0) {
                json_decref(fins);
                return -1;
            }
            json_object_set_new(obj, "spec", json_pack("{s:o}", "finalizers", fins));
        }
    }
    return r;
}

/* scheduling.k8s.io/v1 PriorityClass {1: metadata, 2: value (int32), 3: globalDefault,
 * 4: description, 5: preemptionPolicy}: what `kubectl create priorityclass` sends. */
static int priorityclass_of(pb b, json_t *obj)
{
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.number == 1 && f.wire == 2) {
            if (object_meta(f.bytes, json_object_get(obj, "metadata")) < 0)
                return -1;
        } else if (f.number == 2 && f.wire == 0) {
            /* int32: negative values are sign-extended to 64 bits on the wire */
            json_object_set_new(obj, "value", json_integer((int32_t)(uint32_t)f.value));
        } else if (f.number == 3 && f.wire == 0) {
            json_object_set_new(obj, "globalDefault", json_boolean(f.value != 0));
        } else if ((f.number == 4 || f.number == 5) && f.wire == 2) {
            json_t *str = string_of(&f.bytes);
            if (!str)
                return -1;
            json_object_set_new(obj, f.number == 4 ? "description" : "preemptionPolicy", str);
        }
    }
    return r;
}

/* v1 ConfigMap {1: metadata, 2: data, 3: binaryData, 4: immutable} (`kubectl create
 * configmap`) and Secret {1: metadata, 2: data (bytes), 3: type, 4: stringData, 5: immutable}
 * (`kubectl create secret`). */
static int configmap_or_secret(pb b, json_t *obj, bool secret)
{
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        int rc = 0;
        if (f.number == 1 && f.wire == 2)
            rc = object_meta(f.bytes, json_object_get(obj, "metadata"));
        else if (f.number == 2 && f.wire == 2)
            rc = map_entry_of(f.bytes, member(obj, "data", false), secret);
        else if (f.number == 3 && f.wire == 2 && !secret)
            rc = map_entry_of(f.bytes, member(obj, "binaryData", false), true);
        else if (f.number == 3 && f.wire == 2)
            rc = set_string(obj, "type", &f, false);
        else if (f.number == 4 && f.wire == 2 && secret)
            rc = map_entry_of(f.bytes, member(obj, "stringData", false), false);
        else if (f.number == (secret ? 5u : 4u) && f.wire == 0 && f.value)
            json_object_set_new(obj, "immutable", json_boolean(f.value != 0));
        if (rc < 0)
            return -1;
    }
    return r;
}

static int configmap_of(pb b, json_t *obj)
{
    return configmap_or_secret(b, obj, false);
}

static int secret_of(pb b, json_t *obj)
{
    return configmap_or_secret(b, obj, true);
}

/* ServicePort {1: name, 2: protocol, 3: port, 4: targetPort (IntOrString {1: type,
 * 2: intVal, 3: strVal}), 5: nodePort, 6: appProtocol}. */
static int service_port(pb b, json_t *port)
{
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        int rc = 0;
        if ((f.number == 1 || f.number == 2 || f.number == 6) && f.wire == 2) {
            rc = set_string(port, f.number == 1 ? "name" : f.number == 2 ? "protocol"
                                                                          : "appProtocol",
                            &f, false);
        } else if ((f.number == 3 || (f.number == 5 && f.value)) && f.wire == 0) {
            json_object_set_new(port, f.number == 3 ? "port" : "nodePort",
                                json_integer((int32_t)(uint32_t)f.value));
        } else if (f.number == 4 && f.wire == 2) {
            pb ios = f.bytes;
            pb_field g;
            uint64_t type = 0;
            json_t *i = NULL, *str = NULL;
            while ((rc = next_field(&ios, &g)) > 0) {
                if (g.number == 1 && g.wire == 0)
                    type = g.value;
                else if (g.number == 2 && g.wire == 0)
                    i = (json_decref(i), json_integer((int32_t)(uint32_t)g.value));
                else if (g.number == 3 && g.wire == 2)
                    str = (json_decref(str), string_of(&g.bytes));
            }
            json_t *target = type == 1 ? str : i;
            if (rc == 0 && target)
                json_object_set(port, "targetPort", target);
            json_decref(i);
            json_decref(str);
        }
        if (rc < 0)
            return -1;
    }
    return r;
}

/* ServiceSpec: the fields `kubectl create service` and typed clients set. */
static int service_spec(pb b, json_t *spec)
{
    static const char *const strings[] = {
        [3] = "clusterIP", [4] = "type", [7] = "sessionAffinity", [8] = "loadBalancerIP",
        [10] = "externalName", [11] = "externalTrafficPolicy", [17] = "ipFamilyPolicy",
        [21] = "loadBalancerClass", [22] = "internalTrafficPolicy",
    };
    static const char *const lists[] = {
        [5] = "externalIPs", [9] = "loadBalancerSourceRanges", [18] = "clusterIPs",
        [19] = "ipFamilies",
    };
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        int rc = 0;
        size_t n = f.number;
        if (n == 1 && f.wire == 2) {
            json_t *port = json_object();
            json_array_append_new(member(spec, "ports", true), port);
            rc = service_port(f.bytes, port);
        } else if (n == 2 && f.wire == 2) {
            rc = map_entry(f.bytes, member(spec, "selector", false));
        } else if (n < TY_ARRAY_LEN(strings) && strings[n] && f.wire == 2) {
            rc = set_string(spec, strings[n], &f, false);
        } else if (n < TY_ARRAY_LEN(lists) && lists[n] && f.wire == 2) {
            rc = set_string(spec, lists[n], &f, true);
        } else if ((n == 13 || n == 20) && f.wire == 0 && f.value) {
            json_object_set_new(spec, n == 13 ? "publishNotReadyAddresses"
                                              : "allocateLoadBalancerNodePorts",
                                json_boolean(f.value != 0));
        }
        if (rc < 0)
            return -1;
    }
    return r;
}

/* v1 Service {1: metadata, 2: spec, 3: status}; the status is the server's to write. */
static int service_of(pb b, json_t *obj)
{
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        int rc = 0;
        if (f.number == 1 && f.wire == 2)
            rc = object_meta(f.bytes, json_object_get(obj, "metadata"));
        else if (f.number == 2 && f.wire == 2)
            rc = service_spec(f.bytes, member(obj, "spec", false));
        if (rc < 0)
            return -1;
    }
    return r;
}

/* The string fields of a message into `out`, by field number (names[n]; NULL: skipped). */
static int strings_of(pb b, json_t *out, const char *const *names, size_t n)
{
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.wire == 2 && f.number < n && names[f.number] &&
            set_string(out, names[f.number], &f, false) < 0)
            return -1;
    }
    return r;
}

/* authorization.k8s.io/v1 ResourceAttributes {1: namespace, 2: verb, 3: group, 4: version,
 * 5: resource, 6: subresource, 7: name} and NonResourceAttributes {1: path, 2: verb}. */
static int attributes_of(pb b, bool resource, json_t *spec)
{
    static const char *const res[] = {NULL,      "namespace",   "verb", "group",
                                      "version", "resource", "subresource", "name"};
    static const char *const nonres[] = {NULL, "path", "verb"};
    json_t *attrs = json_object();
    json_object_set_new(spec, resource ? "resourceAttributes" : "nonResourceAttributes", attrs);
    return resource ? strings_of(b, attrs, res, TY_ARRAY_LEN(res))
                    : strings_of(b, attrs, nonres, TY_ARRAY_LEN(nonres));
}

/* SelfSubjectAccessReview {1: metadata, 2: spec {1: resourceAttributes, 2:
 * nonResourceAttributes}} and SelfSubjectRulesReview {1: metadata, 2: spec {1: namespace}}:
 * what `kubectl auth can-i` (and --list) send. */
static int review_of(pb b, json_t *obj, bool rules)
{
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.wire != 2)
            continue;
        if (f.number == 1) {
            if (object_meta(f.bytes, json_object_get(obj, "metadata")) < 0)
                return -1;
        } else if (f.number == 2) {
            json_t *spec = json_object();
            json_object_set_new(obj, "spec", spec);
            if (rules) {
                static const char *const names[] = {NULL, "namespace"};
                if (strings_of(f.bytes, spec, names, TY_ARRAY_LEN(names)) < 0)
                    return -1;
                continue;
            }
            pb sb = f.bytes;
            pb_field g;
            int rs;
            while ((rs = next_field(&sb, &g)) > 0)
                if (g.wire == 2 && (g.number == 1 || g.number == 2) &&
                    attributes_of(g.bytes, g.number == 1, spec) < 0)
                    return -1;
            if (rs < 0)
                return -1;
        }
    }
    return r;
}

static int access_review_of(pb b, json_t *obj)
{
    return review_of(b, obj, false);
}

static int rules_review_of(pb b, json_t *obj)
{
    return review_of(b, obj, true);
}

/* rbac.authorization.k8s.io/v1 PolicyRule {1: verbs, 2: apiGroups, 3: resources,
 * 4: resourceNames, 5: nonResourceURLs}, every one a repeated string. */
static int policy_rule_of(pb b, json_t *rule)
{
    static const char *const lists[] = {NULL, "verbs", "apiGroups", "resources",
                                        "resourceNames", "nonResourceURLs"};
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.wire != 2 || f.number >= TY_ARRAY_LEN(lists))
            continue;
        json_t *list = json_object_get(rule, lists[f.number]);
        if (!list) {
            list = json_array();
            json_object_set_new(rule, lists[f.number], list);
        }
        json_t *str = string_of(&f.bytes);
        if (!str)
            return -1;
        json_array_append_new(list, str);
    }
    return r;
}

/* AggregationRule {1: clusterRoleSelectors: LabelSelector {1: matchLabels (map)}}. */
static int aggregation_rule_of(pb b, json_t *obj)
{
    json_t *selectors = json_array();
    json_object_set_new(obj, "aggregationRule", json_pack("{s:o}", "clusterRoleSelectors",
                                                          selectors));
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.wire != 2 || f.number != 1)
            continue;
        json_t *labels = json_object();
        json_array_append_new(selectors, json_pack("{s:o}", "matchLabels", labels));
        pb sel = f.bytes;
        pb_field g;
        int rs;
        while ((rs = next_field(&sel, &g)) > 0)
            if (g.wire == 2 && g.number == 1 && map_entry(g.bytes, labels) < 0)
                return -1;
        if (rs < 0)
            return -1;
    }
    return r;
}

/* Role and ClusterRole {1: metadata, 2: rules, 3: aggregationRule}; RoleBinding and
 * ClusterRoleBinding {1: metadata, 2: subjects {1: kind, 2: apiGroup, 3: name, 4: namespace},
 * 3: roleRef {1: apiGroup, 2: kind, 3: name}}: what `kubectl create role`, `clusterrole`,
 * `rolebinding` and `clusterrolebinding` send. */
static int rbac_of(pb b, json_t *obj, bool binding)
{
    static const char *const subject[] = {NULL, "kind", "apiGroup", "name", "namespace"};
    static const char *const role_ref[] = {NULL, "apiGroup", "kind", "name"};
    const char *list_name = binding ? "subjects" : "rules";
    json_t *list = json_array();
    json_object_set_new(obj, list_name, list);
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.wire != 2)
            continue;
        if (f.number == 1) {
            if (object_meta(f.bytes, json_object_get(obj, "metadata")) < 0)
                return -1;
        } else if (f.number == 2) {
            json_t *item = json_object();
            json_array_append_new(list, item);
            if ((binding ? strings_of(f.bytes, item, subject, TY_ARRAY_LEN(subject))
                         : policy_rule_of(f.bytes, item)) < 0)
                return -1;
        } else if (f.number == 3) {
            json_t *ref = json_object();
            if (binding)
                json_object_set_new(obj, "roleRef", ref);
            else
                json_decref(ref);
            if ((binding ? strings_of(f.bytes, ref, role_ref, TY_ARRAY_LEN(role_ref))
                         : aggregation_rule_of(f.bytes, obj)) < 0)
                return -1;
        }
    }
    if (binding && json_array_size(list) == 0) /* subjects is optional, rules is not */
        json_object_del(obj, list_name);
    return r;
}

static int role_of(pb b, json_t *obj)
{
    return rbac_of(b, obj, false);
}

static int binding_of(pb b, json_t *obj)
{
    return rbac_of(b, obj, true);
}

/* authentication.k8s.io/v1 SelfSubjectReview {1: metadata}: `kubectl auth whoami`. */
static int self_review_of(pb b, json_t *obj)
{
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0)
        if (f.wire == 2 && f.number == 1 &&
            object_meta(f.bytes, json_object_get(obj, "metadata")) < 0)
            return -1;
    return r;
}

/* The fields of a message that kubectl's typed client sends for the kinds below are the
 * only ones read; any other one refuses the body (-1), so nothing is dropped silently, unless
 * it is empty: Kubernetes' encoder writes every field that is not a pointer, "" and 0 too. */
static bool empty_field(const pb_field *f)
{
    return (f->wire == 0 && f->value == 0) || (f->wire == 2 && f->bytes.p == f->bytes.end);
}

/* core v1 Container {1: name, 2: image, 3: command, 4: args, 5: workingDir, 8: resources
 * (empty only)}. */
static int container_of(pb b, json_t *ct)
{
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        if (empty_field(&f))
            continue;
        if (f.wire != 2)
            return -1;
        if (f.number == 1 || f.number == 2 || f.number == 5) {
            if (set_string(ct, f.number == 1 ? "name" : f.number == 2 ? "image" : "workingDir",
                           &f, false) < 0)
                return -1;
        } else if (f.number == 3 || f.number == 4) {
            if (set_string(ct, f.number == 3 ? "command" : "args", &f, true) < 0)
                return -1;
        } else {
            return -1;
        }
    }
    return r;
}

/* core v1 PodTemplateSpec {1: metadata, 2: PodSpec {2: containers, 3: restartPolicy}}. */
static int pod_template_of(pb b, json_t *tmpl)
{
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        if (empty_field(&f))
            continue;
        if (f.wire != 2)
            return -1;
        if (f.number == 1) {
            json_t *meta = json_object();
            json_object_set_new(tmpl, "metadata", meta);
            if (object_meta(f.bytes, meta) < 0)
                return -1;
            continue;
        }
        if (f.number != 2)
            return -1;
        json_t *spec = json_object();
        json_object_set_new(tmpl, "spec", spec);
        pb ps = f.bytes;
        pb_field g;
        int rp;
        while ((rp = next_field(&ps, &g)) > 0) {
            if (empty_field(&g))
                continue;
            if (g.wire != 2)
                return -1;
            if (g.number == 2) {
                json_t *cts = json_object_get(spec, "containers");
                if (!cts) {
                    cts = json_array();
                    json_object_set_new(spec, "containers", cts);
                }
                json_t *ct = json_object();
                json_array_append_new(cts, ct);
                if (container_of(g.bytes, ct) < 0)
                    return -1;
            } else if (g.number == 3) {
                json_t *s = string_of(&g.bytes);
                if (!s)
                    return -1;
                json_object_set_new(spec, "restartPolicy", s);
            } else {
                return -1;
            }
        }
        if (rp < 0)
            return -1;
    }
    return r;
}

/* batch/v1 Job {1: metadata, 2: JobSpec {6: template}, 3: status}: what `kubectl create job NAME
 * --image=IMAGE -- COMMAND...` sends. */
static int job_of(pb b, json_t *obj)
{
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        if (empty_field(&f))
            continue;
        if (f.wire != 2)
            return -1;
        if (f.number == 1) {
            if (object_meta(f.bytes, json_object_get(obj, "metadata")) < 0)
                return -1;
            continue;
        }
        if (f.number == 3)
            continue; /* status: the API server drops it on create */
        if (f.number != 2)
            return -1;
        json_t *spec = json_object();
        json_object_set_new(obj, "spec", spec);
        pb js = f.bytes;
        pb_field g;
        int rj;
        while ((rj = next_field(&js, &g)) > 0) {
            if (empty_field(&g))
                continue;
            if (g.number != 6 || g.wire != 2)
                return -1;
            json_t *tmpl = json_object();
            json_object_set_new(spec, "template", tmpl);
            if (pod_template_of(g.bytes, tmpl) < 0)
                return -1;
        }
        if (rj < 0)
            return -1;
    }
    return r;
}


/* v1 ServiceAccount {1: metadata, 2: secrets, 3: imagePullSecrets {1: name},
 * 4: automountServiceAccountToken}: `kubectl create serviceaccount`. */
static int serviceaccount_of(pb b, json_t *obj)
{
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.number == 1 && f.wire == 2) {
            if (object_meta(f.bytes, json_object_get(obj, "metadata")) < 0)
                return -1;
        } else if (f.number == 3 && f.wire == 2) {
            json_t *ref = json_object();
            json_array_append_new(member(obj, "imagePullSecrets", true), ref);
            static const char *const names[] = {NULL, "name"};
            if (strings_of(f.bytes, ref, names, TY_ARRAY_LEN(names)) < 0)
                return -1;
        } else if (f.number == 4 && f.wire == 0) {
            json_object_set_new(obj, "automountServiceAccountToken", json_boolean(f.value != 0));
        }
    }
    return r;
}

/* authentication.k8s.io/v1 TokenRequest {1: metadata, 2: spec {1: audiences, 3: boundObjectRef
 * {1: kind, 2: apiVersion, 3: name, 4: uid}, 4: expirationSeconds (int64)}}: `kubectl create
 * token`. */
static int token_request_of(pb b, json_t *obj)
{
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.number == 1 && f.wire == 2) {
            if (object_meta(f.bytes, json_object_get(obj, "metadata")) < 0)
                return -1;
        } else if (f.number == 2 && f.wire == 2) {
            json_t *spec = member(obj, "spec", false);
            pb sb = f.bytes;
            pb_field g;
            int rs;
            while ((rs = next_field(&sb, &g)) > 0) {
                if (g.number == 1 && g.wire == 2) {
                    if (set_string(spec, "audiences", &g, true) < 0)
                        return -1;
                } else if (g.number == 3 && g.wire == 2) {
                    static const char *const names[] = {NULL, "kind", "apiVersion", "name",
                                                        "uid"};
                    if (strings_of(g.bytes, member(spec, "boundObjectRef", false), names,
                                   TY_ARRAY_LEN(names)) < 0)
                        return -1;
                } else if (g.number == 4 && g.wire == 0) {
                    json_object_set_new(spec, "expirationSeconds",
                                        json_integer((json_int_t)(int64_t)g.value));
                }
            }
            if (rs < 0)
                return -1;
        }
    }
    return r;
}


/* The kinds decoded: apiVersion, kind, and the message's reader. */
static const struct {
    const char *api_version, *kind;
    int (*read)(pb b, json_t *obj);
} decoders[] = {
    {"v1", "Namespace", namespace_of},
    {"v1", "ConfigMap", configmap_of},
    {"v1", "Secret", secret_of},
    {"v1", "Service", service_of},
    {"v1", "ServiceAccount", serviceaccount_of},
    {"authentication.k8s.io/v1", "TokenRequest", token_request_of},
    {"authorization.k8s.io/v1", "SelfSubjectAccessReview", access_review_of},
    {"authorization.k8s.io/v1", "SelfSubjectRulesReview", rules_review_of},
    {"authentication.k8s.io/v1", "SelfSubjectReview", self_review_of},
    {"rbac.authorization.k8s.io/v1", "Role", role_of},
    {"rbac.authorization.k8s.io/v1", "ClusterRole", role_of},
    {"rbac.authorization.k8s.io/v1", "RoleBinding", binding_of},
    {"rbac.authorization.k8s.io/v1", "ClusterRoleBinding", binding_of},
    {"scheduling.k8s.io/v1", "PriorityClass", priorityclass_of},
    {"batch/v1", "Job", job_of},
};

int ty_k8sproto_decode(const void *data, size_t len, json_t **out, ty_error *err)
{
    static const uint8_t magic[4] = {'k', '8', 's', 0};
    if (len < 4 || memcmp(data, magic, 4) != 0)
        return ty_fail(err, "not a Kubernetes protobuf body (no k8s magic)");
    pb b = {(const uint8_t *)data + 4, (const uint8_t *)data + len};
    json_t *api_version = NULL, *kind = NULL;
    pb raw = {NULL, NULL};
    pb_field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.wire != 2)
            continue;
        if (f.number == 1) { /* TypeMeta {1: apiVersion, 2: kind} */
            pb tm = f.bytes;
            pb_field g;
            int rt;
            while ((rt = next_field(&tm, &g)) > 0) {
                if (g.wire != 2)
                    continue;
                if (g.number == 1) {
                    json_decref(api_version);
                    api_version = string_of(&g.bytes);
                } else if (g.number == 2) {
                    json_decref(kind);
                    kind = string_of(&g.bytes);
                }
            }
            if (rt < 0)
                r = -1;
        } else if (f.number == 2) {
            raw = f.bytes;
        }
        if (r < 0)
            break;
    }
    int rc = -1;
    size_t d = 0;
    while (kind && api_version && d < TY_ARRAY_LEN(decoders) &&
           (strcmp(json_string_value(kind), decoders[d].kind) != 0 ||
            strcmp(json_string_value(api_version), decoders[d].api_version) != 0))
        d++;
    if (r < 0 || !kind || !api_version || !raw.p) {
        ty_fail(err, "malformed protobuf body");
    } else if (d == TY_ARRAY_LEN(decoders)) {
        ty_fail(err, "protobuf bodies of %s %s are not decoded; send JSON",
                json_string_value(api_version), json_string_value(kind));
    } else {
        json_t *obj = json_pack("{s:s, s:s, s:{}}", "apiVersion", decoders[d].api_version,
                                "kind", decoders[d].kind, "metadata");
        if (decoders[d].read(raw, obj) < 0) {
            json_decref(obj);
            ty_fail(err, "malformed protobuf %s", decoders[d].kind);
        } else {
            *out = obj;
            rc = 0;
        }
    }
    json_decref(api_version);
    json_decref(kind);
    return rc;
}
