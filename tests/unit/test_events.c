#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "base/mem.h"
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

/* The dedup index keeps a hash; a hit is checked against the stored Event, so an Event that
 * no longer matches (here a user changed its message) is not bumped. */
Test(events, a_repeat_bumps_only_the_event_that_still_matches)
{
    ty_store *s = ty_store_new();
    json_t *job = stored_job(s);
    ty_recorder *r = ty_recorder_new(s, "c");
    ty_event(r, job, "Normal", "A", "one");
    json_t *events = ty_store_list(s, "events", NULL);
    json_t *edited = json_deep_copy(json_array_get(events, 0));
    json_decref(events);
    json_object_set_new(edited, "message", json_string("changed"));
    cr_assert_eq(ty_store_update(s, "events", edited, NULL, NULL), 0);
    ty_event(r, job, "Normal", "A", "one");
    ty_event(r, job, "Normal", "A", "one");
    events = ty_store_list(s, "events", NULL);
    cr_assert_eq(json_array_size(events), 2);
    json_t *ev;
    size_t i;
    json_array_foreach(events, i, ev)
    {
        bool is_edited = strcmp(ty_obj_name(ev), ty_obj_name(edited)) == 0;
        cr_assert_eq(json_integer_value(json_object_get(ev, "count")), is_edited ? 1 : 2);
        cr_assert_str_eq(json_string_value(json_object_get(ev, "message")),
                         is_edited ? "changed" : "one");
    }
    json_decref(events);
    cr_assert_eq(ty_recorder_size(r), 1);
    /* The entry is the new Event's: deleting the edited one leaves it. */
    cr_assert_eq(ty_store_delete(s, "events", "team", ty_obj_name(edited), -1, NULL), 0);
    cr_assert_eq(ty_recorder_size(r), 1);
    ty_event(r, job, "Normal", "A", "one");
    events = ty_store_list(s, "events", NULL);
    cr_assert_eq(json_array_size(events), 1);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(events, 0), "count")), 3);
    json_decref(events);
    json_decref(edited);
    ty_recorder_free(r);
    json_decref(job);
    ty_store_free(s);
}

/* Sets an event's lastTimestamp, as if it had been last seen then. */
static void age_event(ty_store *s, const char *reason, const char *when)
{
    json_t *events = ty_store_list(s, "events", NULL), *ev;
    size_t i;
    bool found = false;
    json_array_foreach(events, i, ev)
    {
        if (strcmp(json_string_value(json_object_get(ev, "reason")), reason) != 0)
            continue;
        json_t *old = json_deep_copy(ev);
        json_object_set_new(old, "lastTimestamp", json_string(when));
        cr_assert_eq(ty_store_update(s, "events", old, NULL, NULL), 0);
        json_decref(old);
        found = true;
    }
    json_decref(events);
    cr_assert(found, "no event %s", reason);
}

static bool has_reason(ty_store *s, const char *reason)
{
    json_t *events = ty_store_list(s, "events", NULL), *ev;
    size_t i;
    bool found = false;
    json_array_foreach(events, i, ev)
        found = found || strcmp(json_string_value(json_object_get(ev, "reason")), reason) == 0;
    json_decref(events);
    return found;
}

Test(events, events_expire_after_their_ttl)
{
    ty_store *s = ty_store_new();
    json_t *job = stored_job(s);
    ty_recorder *r = ty_recorder_new(s, "c");
    ty_event_expiry *x = ty_event_expiry_new(s);
    ty_event(r, job, "Normal", "Old", "an old one");
    ty_event(r, job, "Normal", "Edge", "exactly the ttl old");
    ty_event(r, job, "Normal", "New", "a new one");
    cr_assert_eq(ty_recorder_size(r), 3);
    int64_t now;
    cr_assert_eq(ty_time_parse_rfc3339("2026-01-01T12:00:00Z", &now), 0);
    age_event(s, "Old", "2026-01-01T10:59:59Z");  /* one hour and a second */
    age_event(s, "Edge", "2026-01-01T11:00:00Z"); /* one hour: not more than the ttl */
    age_event(s, "New", "2026-01-01T11:59:00Z");
    bool more = true;
    cr_assert_eq(ty_events_expire(x, now, TY_EVENT_TTL_NS, 100, 0, &more), 1);
    cr_assert_not(more);
    cr_assert_not(has_reason(s, "Old"));
    cr_assert(has_reason(s, "Edge"));
    cr_assert(has_reason(s, "New"));
    cr_assert_eq(ty_recorder_size(r), 2, "the recorder forgets the expired event");
    cr_assert_eq(ty_events_expire(x, now, TY_EVENT_TTL_NS, 100, 0, NULL), 0);
    cr_assert_eq(ty_events_expire(x, now + 1000000000LL, TY_EVENT_TTL_NS, 100, 0, NULL), 1);
    cr_assert(has_reason(s, "New"));
    /* Bumped again: last seen now, so it stays beyond its first hour. */
    ty_event(r, job, "Normal", "New", "a new one");
    cr_assert_eq(ty_events_expire(x, ty_time_now_ns() + TY_EVENT_TTL_NS - 5000000000LL,
                                  TY_EVENT_TTL_NS, 100, 0, NULL),
                 0);
    cr_assert_eq(ty_events_expire(x, ty_time_now_ns() + TY_EVENT_TTL_NS + 5000000000LL,
                                  TY_EVENT_TTL_NS, 100, 0, NULL),
                 1);
    cr_assert_eq(ty_recorder_size(r), 0);
    ty_event_expiry_free(x);
    ty_recorder_free(r);
    json_decref(job);
    ty_store_free(s);
}

Test(events, a_repeat_after_expiry_is_a_new_event)
{
    ty_store *s = ty_store_new();
    json_t *job = stored_job(s);
    ty_recorder *r = ty_recorder_new(s, "c");
    ty_event_expiry *x = ty_event_expiry_new(s);
    for (int i = 0; i < 3; i++)
        ty_event(r, job, "Warning", "FailedScheduling", "waiting for gpus");
    json_t *events = ty_store_list(s, "events", NULL);
    cr_assert_eq(json_array_size(events), 1);
    char *first = ty_strdup(ty_obj_name(json_array_get(events, 0)));
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(events, 0), "count")), 3);
    json_decref(events);
    cr_assert_eq(ty_events_expire(x, ty_time_now_ns() + 2 * TY_EVENT_TTL_NS, TY_EVENT_TTL_NS, 10, 0,
                                  NULL),
                 1);
    cr_assert_eq(ty_recorder_size(r), 0);
    ty_event(r, job, "Warning", "FailedScheduling", "waiting for gpus");
    events = ty_store_list(s, "events", NULL);
    cr_assert_eq(json_array_size(events), 1);
    json_t *ev = json_array_get(events, 0);
    cr_assert_eq(json_integer_value(json_object_get(ev, "count")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(ev, "firstTimestamp")),
                     json_string_value(json_object_get(ev, "lastTimestamp")));
    cr_assert_str_neq(ty_obj_name(ev), first);
    json_decref(events);
    free(first);
    cr_assert_eq(ty_recorder_size(r), 1);
    ty_event_expiry_free(x);
    ty_recorder_free(r);
    json_decref(job);
    ty_store_free(s);
}

Test(events, a_time_budget_still_looks_at_one_per_call)
{
    ty_store *s = ty_store_new();
    json_t *job = stored_job(s);
    ty_recorder *r = ty_recorder_new(s, "c");
    ty_event_expiry *x = ty_event_expiry_new(s);
    ty_event(r, job, "Normal", "A", "one");
    ty_event(r, job, "Normal", "B", "two");
    ty_event(r, job, "Normal", "C", "three");
    int64_t later = ty_time_now_ns() + 2 * TY_EVENT_TTL_NS;
    bool more = false;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(ty_events_expire(x, later, TY_EVENT_TTL_NS, 10, 1, &more), 1);
        cr_assert(more);
    }
    /* The pass only learns it is over by finding no more. */
    cr_assert_eq(ty_events_expire(x, later, TY_EVENT_TTL_NS, 10, 1, &more), 0);
    cr_assert_not(more);
    cr_assert_eq(ty_recorder_size(r), 0);
    ty_event_expiry_free(x);
    ty_recorder_free(r);
    json_decref(job);
    ty_store_free(s);
}

static int count_events(ty_store *s)
{
    json_t *events = ty_store_list(s, "events", NULL);
    int n = (int)json_array_size(events);
    json_decref(events);
    return n;
}

/* A pass goes on from where it stopped whatever was created or deleted in between: every Event
 * stored for the whole pass is looked at once. */
Test(events, a_pass_survives_changes_between_slices)
{
    ty_store *s = ty_store_new();
    json_t *job = stored_job(s);
    ty_recorder *r = ty_recorder_new(s, "c");
    ty_event_expiry *x = ty_event_expiry_new(s);
    for (int i = 0; i < 20; i++)
        ty_event(r, job, "Normal", "Old", "old %d", i);
    int64_t now = ty_time_now_ns();
    char two_hours_ago[40];
    ty_time_format_rfc3339(now - 2 * TY_EVENT_TTL_NS, two_hours_ago, sizeof two_hours_ago, 0);
    age_event(s, "Old", two_hours_ago);
    bool more = false;
    int gone = 0, calls = 0;
    for (; calls < 5; calls++) /* one Event a call */
        gone += ty_events_expire(x, now, TY_EVENT_TTL_NS, 10, 1, &more);
    cr_assert_eq(gone, 5);
    cr_assert(more);
    /* Between slices (every old one still stored is yet to be looked at): a user deletes one,
     * one is seen again (bumped: last seen now), new ones are recorded. */
    json_t *events = ty_store_list(s, "events", NULL);
    cr_assert_eq(json_array_size(events), 15);
    json_t *last = json_array_get(events, json_array_size(events) - 1);
    cr_assert_eq(
        ty_store_delete(s, "events", ty_obj_namespace(last), ty_obj_name(last), -1, NULL), 0);
    ty_event(r, job, "Normal", "Old", "%s",
             json_string_value(json_object_get(json_array_get(events, 0), "message")));
    json_decref(events);
    ty_event(r, job, "Normal", "New", "new 1");
    ty_event(r, job, "Normal", "New", "new 2");
    do {
        gone += ty_events_expire(x, now, TY_EVENT_TTL_NS, 100, 0, &more);
        calls++;
    } while (more);
    cr_assert_eq(gone, 18, "every old one but the deleted and the bumped one went (%d)", gone);
    cr_assert_eq(calls, 6);
    cr_assert_eq(count_events(s), 3);
    cr_assert_eq(ty_recorder_size(r), 3);
    ty_event_expiry_free(x);
    ty_recorder_free(r);
    json_decref(job);
    ty_store_free(s);
}

Test(events, deleted_events_leave_the_dedup_index)
{
    ty_store *s = ty_store_new();
    json_t *job = stored_job(s);
    ty_recorder *r = ty_recorder_new(s, "c");
    ty_event(r, job, "Normal", "A", "one");
    ty_event(r, job, "Normal", "B", "two");
    ty_event(r, job, "Normal", "C", "three");
    cr_assert_eq(ty_recorder_size(r), 3);
    /* By a user */
    json_t *events = ty_store_list(s, "events", NULL);
    json_t *a = json_array_get(events, 0);
    cr_assert_eq(ty_store_delete(s, "events", ty_obj_namespace(a), ty_obj_name(a), -1, NULL), 0);
    json_decref(events);
    cr_assert_eq(ty_recorder_size(r), 2);
    /* Another recorder's event with the same reason and message is not the one deleted. */
    ty_recorder *other = ty_recorder_new(s, "other");
    ty_event(other, job, "Normal", "B", "two");
    cr_assert_eq(ty_recorder_size(other), 1);
    events = ty_store_list(s, "events", NULL);
    json_t *ev;
    size_t i;
    json_array_foreach(events, i, ev)
    {
        const char *comp =
            json_string_value(json_object_get(json_object_get(ev, "source"), "component"));
        if (strcmp(comp, "c") == 0 &&
            strcmp(json_string_value(json_object_get(ev, "reason")), "B") == 0)
            cr_assert_eq(
                ty_store_delete(s, "events", ty_obj_namespace(ev), ty_obj_name(ev), -1, NULL), 0);
    }
    json_decref(events);
    cr_assert_eq(ty_recorder_size(r), 1);
    cr_assert_eq(ty_recorder_size(other), 1);
    /* With their namespace */
    cr_assert_eq(ty_store_delete(s, "namespaces", NULL, "team", -1, NULL), 0);
    cr_assert_eq(ty_recorder_size(r), 0);
    cr_assert_eq(ty_recorder_size(other), 0);
    ty_recorder_free(other);
    ty_recorder_free(r);
    json_decref(job);
    ty_store_free(s);
}

Test(events, an_event_that_finalizers_hold_is_marked_once)
{
    ty_store *s = ty_store_new();
    json_t *job = stored_job(s);
    ty_recorder *r = ty_recorder_new(s, "c");
    ty_event_expiry *x = ty_event_expiry_new(s);
    ty_event(r, job, "Normal", "Held", "held by a finalizer");
    ty_event(r, job, "Normal", "Free", "nothing holds it");
    json_t *events = ty_store_list(s, "events", NULL), *ev;
    size_t i;
    json_array_foreach(events, i, ev)
    {
        if (strcmp(json_string_value(json_object_get(ev, "reason")), "Held") != 0)
            continue;
        json_t *held = json_deep_copy(ev);
        json_object_set_new(json_object_get(held, "metadata"), "finalizers",
                            json_pack("[s]", "example.com/hold"));
        cr_assert_eq(ty_store_update(s, "events", held, NULL, NULL), 0);
        json_decref(held);
    }
    json_decref(events);
    bool more = true;
    /* The held one is only marked (not counted); the other one goes. */
    cr_assert_eq(ty_events_expire(x, ty_time_now_ns() + 2 * TY_EVENT_TTL_NS, TY_EVENT_TTL_NS,
                                  10, 0, &more),
                 1);
    cr_assert_not(more);
    cr_assert(has_reason(s, "Held"));
    cr_assert_not(has_reason(s, "Free"));
    /* The next pass does not delete the marked one again (no write, no new revision). */
    uint64_t rev = ty_store_revision(s);
    cr_assert_eq(ty_events_expire(x, ty_time_now_ns() + 2 * TY_EVENT_TTL_NS, TY_EVENT_TTL_NS,
                                  10, 0, &more),
                 0);
    cr_assert_not(more);
    cr_assert_eq(ty_store_revision(s), rev);
    ty_event_expiry_free(x);
    ty_recorder_free(r);
    json_decref(job);
    ty_store_free(s);
}

/* 10,000 jobs with two events each, as in the server bench: passes over them when nothing is
 * due, and a mass expiry in slices, each deleting at most the slice's bound. */
#ifdef __SANITIZE_ADDRESS__
enum { JOBS = 2000 }; /* the same paths, in a second instead of eight */
#else
enum { JOBS = 10000 };
#endif

Test(events, many_events_expire_in_bounded_slices, .timeout = 60)
{
    enum { SLICE = 32 };
    ty_store *s = ty_store_new();
    ty_store_set_history(s, 0);
    ty_recorder *r = ty_recorder_new(s, "c");
    json_t *tmpl = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "kubeflow.org/v1", "kind",
                             "PyTorchJob", "metadata", "namespace", "default");
    for (int i = 0; i < JOBS; i++) {
        char name[32];
        snprintf(name, sizeof name, "job-%05d", i);
        json_object_set_new(json_object_get(tmpl, "metadata"), "name", json_string(name));
        json_t *job;
        cr_assert_eq(ty_store_create(s, "pytorchjobs", tmpl, &job, NULL), 0);
        ty_event(r, job, "Normal", "SuccessfulCreatePod", "Created pod: %s-master-0", name);
        ty_event(r, job, "Normal", "Suspended", "PyTorchJob %s is suspended.", name);
        json_decref(job);
    }
    json_decref(tmpl);
    ty_event_expiry *x = ty_event_expiry_new(s);
    cr_assert_eq(ty_recorder_size(r), 2 * JOBS);
    int64_t now = ty_time_now_ns();
    /* Passes with none due: without a time limit, a call looks at TY_EVENT_EXPIRY_LOOKS;
     * with 1 ms, as the server runs it, in slices of about a millisecond. */
    bool more = true;
    int calls = 0;
    int64_t t0 = ty_time_mono_ns();
    do {
        cr_assert_eq(ty_events_expire(x, now, TY_EVENT_TTL_NS, SLICE, 0, &more), 0);
        calls++;
    } while (more);
    int64_t idle = ty_time_mono_ns() - t0;
    cr_assert_eq(calls, (2 * JOBS + TY_EVENT_EXPIRY_LOOKS - 1) / TY_EVENT_EXPIRY_LOOKS);
    int idle_slices = 0;
    int64_t longest_idle = 0;
    do {
        t0 = ty_time_mono_ns();
        cr_assert_eq(ty_events_expire(x, now, TY_EVENT_TTL_NS, 64, 1000000, &more), 0);
        int64_t took = ty_time_mono_ns() - t0;
        longest_idle = took > longest_idle ? took : longest_idle;
        idle_slices++;
    } while (more);
    /* A mass expiry: half by count, the rest by count and time as the server does (1 ms, or
     * 64), all in one pass. */
    int64_t longest = 0, longest_budget = 0;
    int total = 0, budget_calls = 0;
    calls = 0;
    do {
        t0 = ty_time_mono_ns();
        int gone =
            ty_events_expire(x, now + 2 * TY_EVENT_TTL_NS, TY_EVENT_TTL_NS, SLICE, 0, &more);
        int64_t took = ty_time_mono_ns() - t0;
        longest = took > longest ? took : longest;
        cr_assert_eq(gone, SLICE);
        total += gone;
        calls++;
    } while (more && total < JOBS);
    cr_assert(more);
    cr_assert_eq(calls, (JOBS + SLICE - 1) / SLICE);
    cr_assert_eq(count_events(s), 2 * JOBS - total);
    do {
        t0 = ty_time_mono_ns();
        int gone = ty_events_expire(x, now + 2 * TY_EVENT_TTL_NS, TY_EVENT_TTL_NS, 64, 1000000,
                                    &more);
        int64_t took = ty_time_mono_ns() - t0;
        longest_budget = took > longest_budget ? took : longest_budget;
        cr_assert(gone <= 64, "a slice deleted %d", gone);
        total += gone;
        budget_calls++;
    } while (more);
    cr_assert_eq(total, 2 * JOBS);
    cr_assert_eq(ty_recorder_size(r), 0, "the dedup map shrinks with the events");
    cr_assert_eq(count_events(s), 0);
    fprintf(stderr,
            "events: %d: a pass with none due %.1f ms (%d calls); in 1-ms slices: %d, the "
            "longest %.2f ms; all due: %d slices of %d, the longest %.2f ms; %d slices of <= 64 "
            "or 1 ms, the longest %.2f ms\n",
            2 * JOBS, idle / 1e6, (2 * JOBS + TY_EVENT_EXPIRY_LOOKS - 1) / TY_EVENT_EXPIRY_LOOKS,
            idle_slices, longest_idle / 1e6, calls, SLICE, longest / 1e6, budget_calls,
            longest_budget / 1e6);
    ty_event_expiry_free(x);
    ty_recorder_free(r);
    ty_store_free(s);
}
