#include <criterion/criterion.h>
#include <string.h>

#include "base/time.h"
#include "controllers/events.h"

static json_t *stored_job(ty_store *s)
{
    json_t *job = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "kubeflow.org/v1", "kind",
                            "PyTorchJob", "metadata", "name", "fm", "namespace", "team");
    json_t *out = NULL;
    cr_assert_eq(ty_store_ensure_namespace(s, "team", NULL), 0);
    cr_assert_eq(ty_store_create(s, "pytorchjobs", job, &out, NULL), 0);
    json_decref(job);
    return out;
}

Test(events, an_event_names_its_object_reason_and_component)
{
    ty_store *s = ty_store_new();
    json_t *job = stored_job(s);
    ty_recorder *r = ty_recorder_new(s, "pytorchjob-controller");
    ty_event(r, job, "Normal", "SuccessfulCreatePod", "Created pod: %s", "fm-master-0");
    json_t *events = ty_store_list(s, "events", "team");
    cr_assert_eq(json_array_size(events), 1);
    json_t *ev = json_array_get(events, 0);
    cr_assert_str_eq(json_string_value(json_object_get(ev, "reason")), "SuccessfulCreatePod");
    cr_assert_str_eq(json_string_value(json_object_get(ev, "message")), "Created pod: fm-master-0");
    cr_assert_str_eq(json_string_value(json_object_get(ev, "type")), "Normal");
    json_t *io = json_object_get(ev, "involvedObject");
    cr_assert_str_eq(json_string_value(json_object_get(io, "kind")), "PyTorchJob");
    cr_assert_str_eq(json_string_value(json_object_get(io, "uid")), ty_obj_uid(job));
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(ev, "source"), "component")),
        "pytorchjob-controller");
    cr_assert_eq(json_integer_value(json_object_get(ev, "count")), 1);
    json_decref(events);
    ty_recorder_free(r);
    json_decref(job);
    ty_store_free(s);
}

Test(events, repeats_are_counted_on_one_event)
{
    ty_store *s = ty_store_new();
    json_t *job = stored_job(s);
    ty_recorder *r = ty_recorder_new(s, "c");
    for (int i = 0; i < 3; i++)
        ty_event(r, job, "Warning", "FailedScheduling", "waiting for %s", "gpus");
    ty_event(r, job, "Warning", "FailedScheduling", "waiting for %s", "cpu");
    json_t *events = ty_store_list(s, "events", NULL);
    cr_assert_eq(json_array_size(events), 2);
    int64_t counts = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) counts += json_integer_value(json_object_get(ev, "count"));
    cr_assert_eq(counts, 4);
    json_decref(events);
    /* An aggregated event deleted meanwhile is recorded anew. */
    events = ty_store_list(s, "events", NULL);
    json_array_foreach(events, i, ev)
        ty_store_delete(s, "events", ty_obj_namespace(ev), ty_obj_name(ev), -1, NULL);
    json_decref(events);
    ty_event(r, job, "Warning", "FailedScheduling", "waiting for %s", "gpus");
    events = ty_store_list(s, "events", NULL);
    cr_assert_eq(json_array_size(events), 1);
    json_decref(events);
    ty_recorder_free(r);
    json_decref(job);
    ty_store_free(s);
}

Test(events, events_expire_after_their_ttl)
{
    ty_store *s = ty_store_new();
    json_t *job = stored_job(s);
    ty_recorder *r = ty_recorder_new(s, "c");
    ty_event(r, job, "Normal", "Old", "an old one");
    ty_event(r, job, "Normal", "New", "a new one");
    json_t *events = ty_store_list(s, "events", NULL);
    cr_assert_eq(json_array_size(events), 2);
    /* Age the first one by two hours. */
    json_t *old = json_deep_copy(json_array_get(events, 0));
    if (strcmp(json_string_value(json_object_get(old, "reason")), "Old") != 0) {
        json_decref(old);
        old = json_deep_copy(json_array_get(events, 1));
    }
    json_decref(events);
    json_object_set_new(old, "lastTimestamp", json_string("2000-01-01T00:00:00Z"));
    cr_assert_eq(ty_store_update(s, "events", old, NULL, NULL), 0);
    json_decref(old);
    cr_assert_eq(ty_events_expire(s, ty_time_now_ns(), TY_EVENT_TTL_NS), 1);
    events = ty_store_list(s, "events", NULL);
    cr_assert_eq(json_array_size(events), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(events, 0), "reason")), "New");
    json_decref(events);
    cr_assert_eq(ty_events_expire(s, ty_time_now_ns(), TY_EVENT_TTL_NS), 0);
    ty_recorder_free(r);
    json_decref(job);
    ty_store_free(s);
}
