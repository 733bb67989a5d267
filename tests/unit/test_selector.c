#include <criterion/criterion.h>
#include <string.h>

#include "api/selector.h"

static json_t *labelled(const char *labels_json)
{
    json_t *labels = json_loads(labels_json, 0, NULL);
    cr_assert(labels);
    return json_pack("{s:{s:s, s:o}}", "metadata", "name", "x", "labels", labels);
}

static bool lmatch(const char *sel, const char *labels_json)
{
    ty_selector *s = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_label_selector_parse(sel, &s, &err), 0, "parse %s: %s", sel,
                 err.msg ? err.msg : "");
    json_t *o = labelled(labels_json);
    bool m = ty_label_selector_matches(s, o);
    json_decref(o);
    ty_selector_free(s);
    return m;
}

static char *lerr(const char *sel)
{
    ty_selector *s = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_label_selector_parse(sel, &s, &err), -1, "%s parsed", sel);
    cr_assert_null(s);
    cr_assert(err.msg);
    return err.msg;
}

Test(label, empty_matches_everything)
{
    cr_assert(lmatch("", "{}"));
    cr_assert(lmatch("  ", "{\"a\":\"b\"}"));
    ty_selector *s = NULL;
    cr_assert_eq(ty_label_selector_parse(NULL, &s, NULL), 0);
    json_t *o = json_object(); /* no metadata at all */
    cr_assert(ty_label_selector_matches(s, o));
    json_decref(o);
    ty_selector_free(s);
    ty_selector_free(NULL);
}

Test(label, equality)
{
    cr_assert(lmatch("app=web", "{\"app\":\"web\"}"));
    cr_assert(lmatch("app==web", "{\"app\":\"web\"}"));
    cr_assert_not(lmatch("app=web", "{\"app\":\"db\"}"));
    cr_assert_not(lmatch("app=web", "{}"));
    cr_assert(lmatch("app!=web", "{\"app\":\"db\"}"));
    cr_assert(lmatch("app!=web", "{}")); /* a missing label is not equal */
    cr_assert_not(lmatch("app!=web", "{\"app\":\"web\"}"));
    cr_assert(lmatch(" app = web , tier!=front ", "{\"app\":\"web\",\"tier\":\"back\"}"));
    cr_assert_not(lmatch("app=web,tier!=front", "{\"app\":\"web\",\"tier\":\"front\"}"));
    cr_assert(lmatch("app=", "{\"app\":\"\"}"));
    cr_assert_not(lmatch("app=", "{}"));
}

Test(label, set_based)
{
    cr_assert(lmatch("env in (prod, qa)", "{\"env\":\"qa\"}"));
    cr_assert_not(lmatch("env in (prod,qa)", "{\"env\":\"dev\"}"));
    cr_assert_not(lmatch("env in (prod)", "{}"));
    cr_assert(lmatch("env notin (prod,qa)", "{\"env\":\"dev\"}"));
    cr_assert(lmatch("env notin (prod)", "{}"));
    cr_assert_not(lmatch("env notin (prod)", "{\"env\":\"prod\"}"));
    cr_assert(lmatch("env", "{\"env\":\"\"}"));
    cr_assert_not(lmatch("env", "{}"));
    cr_assert(lmatch("!env", "{}"));
    cr_assert_not(lmatch("!env", "{\"env\":\"x\"}"));
    cr_assert(lmatch("training.kubeflow.org/job-name=j,training.kubeflow.org/replica-type in "
                     "(master,worker),!skip",
                     "{\"training.kubeflow.org/job-name\":\"j\","
                     "\"training.kubeflow.org/replica-type\":\"worker\"}"));
}

Test(label, numeric)
{
    cr_assert(lmatch("gen>3", "{\"gen\":\"4\"}"));
    cr_assert_not(lmatch("gen>3", "{\"gen\":\"3\"}"));
    cr_assert(lmatch("gen<3", "{\"gen\":\"-1\"}"));
    cr_assert_not(lmatch("gen<3", "{\"gen\":\"x\"}"));
    cr_assert_not(lmatch("gen<3", "{}"));
    free(lerr("gen>x"));
}

Test(label, errors)
{
    char *m = lerr("app=a b");
    cr_assert(strstr(m, "unable to parse requirement"), "%s", m);
    free(m);
    free(lerr("app in prod"));
    free(lerr("app in (a"));
    m = lerr("app in ()");
    cr_assert(strstr(m, "can't be empty"), "%s", m);
    free(m);
    cr_assert(lmatch("app in (a,)", "{\"app\":\"\"}"));
    free(lerr("=x"));
    free(lerr("a,"));
    free(lerr("-bad=x"));
    m = lerr("app=-x");
    cr_assert(strstr(m, "\"-x\""), "%s", m);
    free(m);
    free(lerr("Example.com/a=b")); /* prefix must be lowercase */
    free(lerr("a/b/c=d"));
    free(lerr("a..b/c=d"));
    free(lerr("a-.b/c=d"));
    free(lerr("/c=d"));
    cr_assert(lmatch("node-role.kubernetes.io/worker", "{\"node-role.kubernetes.io/worker\":\"\"}"));
    free(lerr("!a=b"));
    char key[80];
    memset(key, 'k', 64);
    key[64] = 0;
    free(lerr(key)); /* name part over 63 */
    key[63] = 0;
    cr_assert(lmatch(key, "{}") == false);
}

static bool fmatch(const char *res, const char *sel, const char *obj_json)
{
    ty_selector *s = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_field_selector_parse(res, sel, &s, &err), 0, "parse %s: %s", sel,
                 err.msg ? err.msg : "");
    json_t *o = json_loads(obj_json, 0, NULL);
    cr_assert(o);
    bool m = ty_field_selector_matches(s, o);
    /* the stored text's reading must decide the same */
    char *text = json_dumps(o, JSON_COMPACT);
    cr_assert_eq(ty_field_selector_matches_text(s, text, strlen(text)), m, "%s on %s", sel, text);
    free(text);
    json_decref(o);
    ty_selector_free(s);
    return m;
}

static const char *POD = "{\"metadata\":{\"name\":\"p1\",\"namespace\":\"ns\"},"
                         "\"spec\":{\"nodeName\":\"n1\",\"restartPolicy\":\"Never\"},"
                         "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.2\"}}";

Test(field, pods)
{
    cr_assert(fmatch("pods", "", POD));
    cr_assert(fmatch("pods", "metadata.name=p1", POD));
    cr_assert(fmatch("pods", "metadata.name==p1,metadata.namespace=ns", POD));
    cr_assert_not(fmatch("pods", "metadata.name=p2", POD));
    cr_assert(fmatch("pods", "spec.nodeName=n1,status.phase!=Succeeded", POD));
    cr_assert_not(fmatch("pods", "status.phase!=Running", POD));
    cr_assert(fmatch("pods", "status.podIP=10.0.0.2", POD));
    cr_assert(fmatch("pods", "spec.schedulerName=", POD)); /* missing reads as "" */
    cr_assert(fmatch("pods", "status.nominatedNodeName!=x", POD));
    cr_assert(fmatch("pods", "spec.hostNetwork=false", POD));
    cr_assert(fmatch("pods", "spec.restartPolicy=Never", POD));
    cr_assert(fmatch("pods", "metadata.name=p1,", POD)); /* empty terms are skipped */
    cr_assert_not(fmatch("pods", ",metadata.name=p2", POD));
}

Test(field, escapes)
{
    cr_assert(fmatch("services", "metadata.name=a\\,b", "{\"metadata\":{\"name\":\"a,b\"}}"));
    cr_assert(fmatch("services", "metadata.name=a\\=b", "{\"metadata\":{\"name\":\"a=b\"}}"));
    cr_assert_not(fmatch("services", "metadata.name=a\\,b", "{\"metadata\":{\"name\":\"a\"}}"));
}

Test(field, values_as_the_api_renders_them)
{
    /* escaped strings, booleans, integers, and values that are none of these */
    const char *o = "{\"metadata\":{\"name\":\"a\\\"b\\u00e9\",\"namespace\":\"x\\/y\"},"
                    "\"spec\":{\"nodeName\":7,\"hostNetwork\":true,\"restartPolicy\":1.5,"
                    "\"schedulerName\":null,\"serviceAccountName\":{\"a\":1}},"
                    "\"status\":{\"phase\":-12}}";
    cr_assert(fmatch("pods", "metadata.name=a\"b\u00e9", o));
    cr_assert(fmatch("pods", "metadata.namespace=x/y", o));
    cr_assert(fmatch("pods", "spec.nodeName=7,status.phase=-12", o));
    cr_assert(fmatch("pods", "spec.hostNetwork=true", o));
    cr_assert_not(fmatch("pods", "spec.hostNetwork=false", o));
    cr_assert(fmatch("pods", "spec.restartPolicy=", o));
    cr_assert(fmatch("pods", "spec.schedulerName=,spec.serviceAccountName=", o));
    cr_assert(fmatch("nodes", "spec.unschedulable=false", "{\"metadata\":{\"name\":\"n\"}}"));
    cr_assert(fmatch("pods", "status.podIP=", "{\"metadata\":{\"name\":\"p\"},\"status\":\"x\"}"));
}

Test(field, events_and_namespaces)
{
    const char *ev = "{\"metadata\":{\"name\":\"e\"},\"involvedObject\":{\"kind\":\"Pod\","
                     "\"name\":\"p1\",\"uid\":\"u\"},\"reason\":\"Started\",\"type\":\"Normal\","
                     "\"source\":{\"component\":\"trainyard\"}}";
    cr_assert(fmatch("events", "involvedObject.kind=Pod,involvedObject.name=p1,type=Normal", ev));
    cr_assert(fmatch("events", "source=trainyard,reason=Started,involvedObject.uid=u", ev));
    cr_assert_not(fmatch("events", "involvedObject.name=p2", ev));
    cr_assert(fmatch("namespaces", "status.phase=Active",
                     "{\"metadata\":{\"name\":\"d\"},\"status\":{\"phase\":\"Active\"}}"));
}

Test(field, unsupported)
{
    struct { const char *res, *sel, *want; } cases[] = {
        {"pytorchjobs", "spec.runPolicy=x", "field label not supported: spec.runPolicy"},
        {"pods", "metadata.labels=x", "field label not supported: metadata.labels"},
        {"services", "status.phase=Running", "field label not supported: status.phase"},
        {"pods", "nonsense", "invalid selector"},
        {"pods", "metadata.name=a\\b", "invalid escape"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ty_selector *s = NULL;
        ty_error err = TY_ERROR_INIT;
        cr_assert_eq(ty_field_selector_parse(cases[i].res, cases[i].sel, &s, &err), -1, "%s",
                     cases[i].sel);
        cr_assert(strstr(err.msg, cases[i].want), "%s: %s", cases[i].sel, err.msg);
        ty_error_clear(&err);
    }
    cr_assert(fmatch("pytorchjobs", "metadata.name=j", "{\"metadata\":{\"name\":\"j\"}}"));
}
