/* Restart rules, conditions, replica statuses and run policy of PyTorchJob/TFJob. */
#include "base/time.h"
#include "controllers/kubeflow.h"
#include "kubeflow_fixtures.h"

#define SEC 1000000000LL
#define T0 (1795000000LL * SEC) /* a fixed "now" */

static json_t *pt_job(const char *run_policy, const char *extra, const char *master_policy,
                      int workers, const char *worker_policy)
{
    if (master_policy)
        return J("{'kind':'PyTorchJob','metadata':{'name':'fm','namespace':'ns','uid':'u'},"
                 "'spec':{%s'runPolicy':{%s},'pytorchReplicaSpecs':{"
                 "'Master':" KF_REPLICA(1, "%s", PT_C) ",'Worker':" KF_REPLICA(%d, "%s", PT_C)
                 "}}}",
                 extra, run_policy, master_policy, workers, worker_policy);
    return J("{'kind':'PyTorchJob','metadata':{'name':'fm','namespace':'ns','uid':'u'},"
             "'spec':{%s'runPolicy':{%s},'pytorchReplicaSpecs':{"
             "'Worker':" KF_REPLICA(%d, "%s", PT_C) "}}}",
             extra, run_policy, workers, worker_policy);
}

static json_t *tf_job(const char *extra, bool chief, int workers, const char *policy)
{
    return J("{'kind':'TFJob','metadata':{'name':'tf','namespace':'ns','uid':'u'},"
             "'spec':{%s'runPolicy':{'cleanPodPolicy':'None'},'tfReplicaSpecs':{%s"
             "'PS':" KF_REPLICA(1, "%s", TF_C) ",'Worker':" KF_REPLICA(%d, "%s", TF_C) "}}}",
             extra, chief ? "'Chief':" KF_REPLICA(1, "Never", TF_C) "," : "", policy, workers,
             policy);
}

/* A pod of job `job` as the node agent reports it. code < 0: no terminated state. */
static json_t *mkpod(const char *job, const char *container, const char *rt, int index,
                     const char *phase, int code, int restarts)
{
    char term[96] = "";
    if (code >= 0)
        snprintf(term, sizeof term, "'terminated':{'exitCode':%d}", code);
    return J("{'metadata':{'name':'%s-%s-%d','namespace':'ns','labels':{"
             "'training.kubeflow.org/job-name':'%s','training.kubeflow.org/replica-type':'%s',"
             "'training.kubeflow.org/replica-index':'%d'}},"
             "'status':{'phase':'%s','containerStatuses':[{'name':'%s','restartCount':%d,"
             "'state':{%s}}]}}",
             job, rt, index, job, rt, index, phase, container, restarts, term);
}
#define PTPOD(rt, i, phase, code) mkpod("fm", "pytorch", rt, i, phase, code, 0)
#define TFPOD(rt, i, phase, code) mkpod("tf", "tensorflow", rt, i, phase, code, 0)

typedef struct pods {
    json_t *p[8];
    size_t n;
} pods;

static void pods_free(pods *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        json_decref(ps->p[i]);
    ps->n = 0;
}

static void rec(json_t *job, pods *ps, int64_t now, ty_kubeflow_outcome *o)
{
    ty_error err = TY_ERROR_INIT;
    int rc = ty_kubeflow_reconcile(job, ps ? ps->p : NULL, ps ? ps->n : 0, now, o, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
}

static const json_t *cond(const json_t *job, const char *type)
{
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(json_object_get(job, "status"), "conditions"), i, c) {
        if (strcmp(sget(c, "type"), type) == 0)
            return c;
    }
    return NULL;
}

static void assert_cond(const json_t *job, const char *type, const char *status,
                        const char *reason, const char *message)
{
    const json_t *c = cond(job, type);
    cr_assert_not_null(c, "no %s condition", type);
    cr_assert_str_eq(sget(c, "status"), status, "%s", type);
    cr_assert_str_eq(sget(c, "reason"), reason, "%s", type);
    if (message)
        cr_assert_str_eq(sget(c, "message"), message, "%s", type);
}

static int64_t rs(const json_t *job, const char *rtype, const char *field)
{
    return json_integer_value(json_object_get(
        json_object_get(json_object_get(json_object_get(job, "status"), "replicaStatuses"), rtype),
        field));
}

static bool deletes(const ty_kubeflow_outcome *o, const char *name)
{
    for (size_t i = 0; i < o->ndelete; i++)
        if (strcmp(o->delete_pods[i], name) == 0)
            return true;
    return false;
}

static const char *at(int64_t ns, char *buf)
{
    return ty_time_format_rfc3339(ns, buf, 64, 0);
}

Test(kubeflow_status, exit_code_table)
{
    int permanent[] = {1, 2, 64, 126, 127};
    int retryable[] = {128, 130, 137, 143, 255, 0xbeef};
    for (size_t i = 0; i < TY_ARRAY_LEN(permanent); i++)
        cr_assert_not(ty_kubeflow_exit_code_retryable(permanent[i]), "%d", permanent[i]);
    for (size_t i = 0; i < TY_ARRAY_LEN(retryable); i++)
        cr_assert(ty_kubeflow_exit_code_retryable(retryable[i]), "%d", retryable[i]);
}

Test(kubeflow_status, decide_per_policy)
{
    ty_kubeflow_decision d;
    /* Non-elastic PyTorch: any restart is a gang restart. */
    json_t *job = pt_job("", "", "OnFailure", 2, "OnFailure");
    json_t *failed = PTPOD("worker", 1, "Failed", 1);
    cr_assert_eq(ty_kubeflow_pod_decide(job, failed, &d), TY_KUBEFLOW_RESTART_GANG);
    cr_assert_str_eq(d.reason, "PyTorchJobRestarting");
    cr_assert_str_eq(d.message, "job fm is restarting because Worker replica(s) failed.");
    ty_kubeflow_decision_clear(&d);
    json_t *running = PTPOD("worker", 1, "Running", -1);
    cr_assert_eq(ty_kubeflow_pod_decide(job, running, &d), TY_KUBEFLOW_NONE);
    cr_assert_null(d.reason);
    json_decref(job);

    job = pt_job("", "", "Always", 2, "Always");
    cr_assert_eq(ty_kubeflow_pod_decide(job, failed, &d), TY_KUBEFLOW_RESTART_GANG);
    ty_kubeflow_decision_clear(&d);
    json_decref(job);

    job = pt_job("", "", "Never", 2, "Never");
    cr_assert_eq(ty_kubeflow_pod_decide(job, failed, &d), TY_KUBEFLOW_FAIL_JOB);
    cr_assert_str_eq(d.reason, "PyTorchJobFailed");
    cr_assert_str_eq(d.message, "PyTorchJob fm is failed because 1 Worker replica(s) failed.");
    ty_kubeflow_decision_clear(&d);
    json_decref(job);

    /* ExitCode: 1-127 fail the job, 128+ (and no exit code) restart. */
    job = pt_job("", "", "ExitCode", 2, "ExitCode");
    cr_assert_eq(ty_kubeflow_pod_decide(job, failed, &d), TY_KUBEFLOW_FAIL_JOB);
    cr_assert_str_eq(d.message, "job \"fm\" is failing because \"Worker\" replica(s) failed.");
    ty_kubeflow_decision_clear(&d);
    json_t *killed = PTPOD("worker", 0, "Failed", 137);
    cr_assert_eq(ty_kubeflow_pod_decide(job, killed, &d), TY_KUBEFLOW_RESTART_GANG);
    ty_kubeflow_decision_clear(&d);
    json_t *nocode = PTPOD("worker", 0, "Failed", -1);
    cr_assert_eq(ty_kubeflow_pod_decide(job, nocode, &d), TY_KUBEFLOW_RESTART_GANG);
    ty_kubeflow_decision_clear(&d);
    json_decref(job);

    /* Elastic PyTorch and TF restart the one pod. */
    job = pt_job("", "'elasticPolicy':{'minReplicas':1,'maxReplicas':2},", NULL, 2, "ExitCode");
    cr_assert_eq(ty_kubeflow_pod_decide(job, killed, &d), TY_KUBEFLOW_RESTART_POD);
    ty_kubeflow_decision_clear(&d);
    json_decref(job);
    job = tf_job("", false, 2, "ExitCode");
    json_t *tfk = TFPOD("worker", 0, "Failed", 143), *tf1 = TFPOD("worker", 0, "Failed", 2);
    cr_assert_eq(ty_kubeflow_pod_decide(job, tfk, &d), TY_KUBEFLOW_RESTART_POD);
    cr_assert_str_eq(d.reason, "TFJobRestarting");
    ty_kubeflow_decision_clear(&d);
    cr_assert_eq(ty_kubeflow_pod_decide(job, tf1, &d), TY_KUBEFLOW_FAIL_JOB);
    cr_assert_str_eq(d.reason, "TFJobFailed");
    ty_kubeflow_decision_clear(&d);
    json_decref(job);
    /* TF Never, and the dynamic-worker exception. */
    job = tf_job("", false, 2, "Never");
    cr_assert_eq(ty_kubeflow_pod_decide(job, tf1, &d), TY_KUBEFLOW_FAIL_JOB);
    cr_assert_str_eq(d.message, "TFJob ns/tf has failed because 1 Worker replica(s) failed.");
    ty_kubeflow_decision_clear(&d);
    json_decref(job);
    job = tf_job("'enableDynamicWorker':true,", false, 2, "Never");
    cr_assert_eq(ty_kubeflow_pod_decide(job, tf1, &d), TY_KUBEFLOW_NONE);
    json_decref(job);

    json_decref(failed);
    json_decref(running);
    json_decref(killed);
    json_decref(nocode);
    json_decref(tfk);
    json_decref(tf1);
}

Test(kubeflow_status, new_job_created_and_pods_to_create)
{
    json_t *job = pt_job("'cleanPodPolicy':'None'", "", "OnFailure", 2, "OnFailure");
    ty_kubeflow_outcome o;
    rec(job, NULL, T0, &o);
    char ts[64];
    assert_cond(job, "Created", "True", "PyTorchJobCreated", "PyTorchJob fm is created.");
    cr_assert_str_eq(sget(cond(job, "Created"), "lastTransitionTime"), at(T0, ts));
    cr_assert_str_eq(sget(json_object_get(job, "status"), "startTime"), at(T0, ts));
    cr_assert_eq(o.ncreate, 3);
    cr_assert_str_eq(o.create[0].rtype, "Master");
    cr_assert_eq(o.create[0].index, 0);
    cr_assert_str_eq(o.create[2].rtype, "Worker");
    cr_assert_eq(o.create[2].index, 1);
    cr_assert_eq(o.ndelete, 0);
    cr_assert(o.status_changed);
    cr_assert_not(o.finished);
    const json_t *wrs = json_object_get(
        json_object_get(json_object_get(job, "status"), "replicaStatuses"), "Worker");
    cr_assert_str_eq(sget(wrs, "selector"),
                     "training.kubeflow.org/job-name=fm,training.kubeflow.org/operator-name="
                     "pytorchjob-controller,training.kubeflow.org/replica-type=worker");
    cr_assert_null(json_object_get(wrs, "active")); /* zero counts are omitted */
    ty_kubeflow_outcome_free(&o);

    /* The same world again changes nothing. */
    rec(job, NULL, T0 + SEC, &o);
    cr_assert_not(o.status_changed);
    cr_assert_eq(o.ncreate, 3);
    ty_kubeflow_outcome_free(&o);
    json_decref(job);
}

Test(kubeflow_status, pytorch_running_then_succeeded)
{
    json_t *job = pt_job("'cleanPodPolicy':'Running'", "", "OnFailure", 1, "OnFailure");
    pods ps = {{PTPOD("master", 0, "Running", -1), PTPOD("worker", 0, "Pending", -1)}, 2};
    ty_kubeflow_outcome o;
    rec(job, &ps, T0, &o);
    assert_cond(job, "Running", "True", "PyTorchJobRunning", "PyTorchJob fm is running.");
    cr_assert_eq(rs(job, "Master", "active"), 1);
    cr_assert_eq(rs(job, "Worker", "active"), 0);
    cr_assert_eq(o.ncreate, 0);
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);

    /* Master done while the worker still runs: Succeeded, Running False, the worker cleaned. */
    ps = (pods){{PTPOD("master", 0, "Succeeded", 0), PTPOD("worker", 0, "Running", -1)}, 2};
    rec(job, &ps, T0 + 10 * SEC, &o);
    char ts[64];
    assert_cond(job, "Succeeded", "True", "PyTorchJobSucceeded",
                "PyTorchJob fm is successfully completed.");
    assert_cond(job, "Running", "False", "PyTorchJobRunning", NULL);
    cr_assert_str_eq(sget(json_object_get(job, "status"), "completionTime"),
                     at(T0 + 10 * SEC, ts));
    cr_assert(o.finished && o.succeeded && !o.failed);
    cr_assert_eq(o.ndelete, 1);
    cr_assert(deletes(&o, "fm-worker-0"));
    cr_assert_eq(rs(job, "Worker", "succeeded"), 1); /* active counted as succeeded */
    cr_assert_eq(rs(job, "Worker", "active"), 0);
    cr_assert_eq(rs(job, "Master", "succeeded"), 1);
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);
}

Test(kubeflow_status, pytorch_without_master_needs_all_workers)
{
    json_t *job = pt_job("", "", NULL, 2, "OnFailure");
    pods ps = {{PTPOD("worker", 0, "Succeeded", 0), PTPOD("worker", 1, "Running", -1)}, 2};
    ty_kubeflow_outcome o;
    rec(job, &ps, T0, &o);
    cr_assert_null(cond(job, "Succeeded"));
    assert_cond(job, "Running", "True", "PyTorchJobRunning", "PyTorchJob ns/fm is running.");
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    ps = (pods){{PTPOD("worker", 0, "Succeeded", 0), PTPOD("worker", 1, "Succeeded", 0)}, 2};
    rec(job, &ps, T0, &o);
    assert_cond(job, "Succeeded", "True", "PyTorchJobSucceeded",
                "PyTorchJob ns/fm successfully completed.");
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);

    /* Elastic: one worker succeeding is enough. */
    job = pt_job("", "'elasticPolicy':{'minReplicas':1,'maxReplicas':2},", NULL, 2, "OnFailure");
    ps = (pods){{PTPOD("worker", 0, "Succeeded", 0), PTPOD("worker", 1, "Running", -1)}, 2};
    rec(job, &ps, T0, &o);
    assert_cond(job, "Succeeded", "True", "PyTorchJobSucceeded", NULL);
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);
}

Test(kubeflow_status, pytorch_gang_restart_counts_and_backoff)
{
    pods ps = {{PTPOD("master", 0, "Running", -1), PTPOD("worker", 0, "Running", -1),
                PTPOD("worker", 1, "Failed", 1)}, 3};
    ty_kubeflow_outcome o;
    /* Start from a running job so that the Restarting transition is visible. */
    json_t *job = pt_job("'backoffLimit':2", "", "OnFailure", 2, "OnFailure");
    pods running = {{PTPOD("master", 0, "Running", -1), PTPOD("worker", 0, "Running", -1),
                     PTPOD("worker", 1, "Running", -1)}, 3};
    rec(job, &running, T0, &o);
    assert_cond(job, "Running", "True", "PyTorchJobRunning", NULL);
    ty_kubeflow_outcome_free(&o);

    rec(job, &ps, T0 + SEC, &o);
    cr_assert(o.restarted && o.gang_restart);
    cr_assert_eq(o.ndelete, 3); /* every pod of the gang */
    cr_assert(deletes(&o, "fm-master-0") && deletes(&o, "fm-worker-0") &&
              deletes(&o, "fm-worker-1"));
    /* The master's Running replaced the pod pass's Restarting, then the worker type's
     * failures replaced Running again, with the status pass's message: as the operator. */
    assert_cond(job, "Restarting", "True", "PyTorchJobRestarting",
                "PyTorchJob fm is restarting because 1 Worker replica(s) failed.");
    cr_assert_null(cond(job, "Running")); /* Restarting replaces Running */
    cr_assert(o.metadata_changed);
    const json_t *ann = json_object_get(json_object_get(job, "metadata"), "annotations");
    cr_assert_str_eq(json_string_value(json_object_get(ann, TY_KUBEFLOW_RESTARTS_ANNOTATION)),
                     "1");
    cr_assert_eq(rs(job, "Worker", "failed"), 1);
    ty_kubeflow_outcome_free(&o);

    /* Second failure: restart 2 of 2 allowed. */
    rec(job, &ps, T0 + 2 * SEC, &o);
    cr_assert(o.gang_restart);
    cr_assert_str_eq(json_string_value(json_object_get(ann, TY_KUBEFLOW_RESTARTS_ANNOTATION)),
                     "2");
    ty_kubeflow_outcome_free(&o);

    /* Third: over the limit, the job fails and every pod goes. */
    rec(job, &ps, T0 + 3 * SEC, &o);
    cr_assert(o.finished && o.failed);
    cr_assert_eq(o.fail_cause, TY_KUBEFLOW_FAIL_BACKOFF);
    cr_assert_not(o.restarted);
    cr_assert_eq(o.ndelete, 3);
    assert_cond(job, "Failed", "True", "PyTorchJobFailed",
                "Job fm has failed because it has reached the specified backoff limit; last "
                "failure: pod fm-worker-1, container pytorch: Error (exit code 1)");
    cr_assert_str_eq(json_string_value(json_object_get(ann, TY_KUBEFLOW_RESTARTS_ANNOTATION)),
                     "2");
    ty_kubeflow_outcome_free(&o);

    /* Failed is final: nothing moves it. */
    rec(job, &running, T0 + 4 * SEC, &o);
    assert_cond(job, "Failed", "True", "PyTorchJobFailed", NULL);
    cr_assert_null(cond(job, "Running"));
    cr_assert_eq(o.ndelete, 0); /* cleanPodPolicy unset = None */
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    pods_free(&running);
    json_decref(job);
}

Test(kubeflow_status, inplace_restart_counts_reach_backoff_limit)
{
    json_t *job = pt_job("'backoffLimit':3", "'elasticPolicy':{'minReplicas':1,'maxReplicas':2},",
                         NULL, 2, "OnFailure");
    pods ps = {{mkpod("fm", "pytorch", "worker", 0, "Running", -1, 2),
                mkpod("fm", "pytorch", "worker", 1, "Running", -1, 0)}, 2};
    ty_kubeflow_outcome o;
    rec(job, &ps, T0, &o);
    cr_assert_not(o.failed);
    ty_kubeflow_outcome_free(&o);
    json_decref(ps.p[1]);
    ps.p[1] = mkpod("fm", "pytorch", "worker", 1, "Running", -1, 1);
    rec(job, &ps, T0, &o);
    cr_assert(o.failed);
    cr_assert_eq(o.fail_cause, TY_KUBEFLOW_FAIL_BACKOFF);
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);

    /* backoffLimit 0: the first restart fails the job. */
    job = pt_job("'backoffLimit':0", "", "OnFailure", 1, "OnFailure");
    ps = (pods){{PTPOD("master", 0, "Running", -1), PTPOD("worker", 0, "Failed", 137)}, 2};
    rec(job, &ps, T0, &o);
    cr_assert(o.failed);
    cr_assert_eq(o.fail_cause, TY_KUBEFLOW_FAIL_BACKOFF);
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);
}

Test(kubeflow_status, never_policy_fails_job)
{
    json_t *job = pt_job("'cleanPodPolicy':'All'", "", "Never", 2, "Never");
    pods ps = {{PTPOD("master", 0, "Running", -1), PTPOD("worker", 0, "Failed", 1),
                PTPOD("worker", 1, "Running", -1)}, 3};
    ty_kubeflow_outcome o;
    rec(job, &ps, T0, &o);
    cr_assert(o.failed && o.finished);
    cr_assert_eq(o.fail_cause, TY_KUBEFLOW_FAIL_REPLICAS);
    cr_assert_not(o.restarted);
    assert_cond(job, "Failed", "True", "PyTorchJobFailed",
                "PyTorchJob fm is failed because 1 Worker replica(s) failed.");
    assert_cond(job, "Running", "False", "PyTorchJobRunning", NULL);
    cr_assert_eq(o.ndelete, 3); /* cleanPodPolicy All */
    cr_assert_eq(o.ncreate, 0);
    cr_assert_not_null(sget(json_object_get(job, "status"), "completionTime"));
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);
}

Test(kubeflow_status, exit_code_policy)
{
    /* TF worker killed by a signal: that pod restarts; the others stay. */
    json_t *job = tf_job("", true, 2, "ExitCode");
    pods ps = {{TFPOD("chief", 0, "Running", -1), TFPOD("ps", 0, "Running", -1),
                TFPOD("worker", 0, "Running", -1), TFPOD("worker", 1, "Failed", 137)}, 4};
    ty_kubeflow_outcome o;
    rec(job, &ps, T0, &o);
    cr_assert(o.restarted);
    cr_assert_not(o.gang_restart);
    cr_assert_eq(o.ndelete, 1);
    cr_assert(deletes(&o, "tf-worker-1"));
    cr_assert_not(o.failed);
    assert_cond(job, "Restarting", "True", "TFJobRestarting",
                "job tf is restarting because Worker replica(s) failed.");
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);

    /* A permanent code fails the job. */
    job = tf_job("", true, 2, "ExitCode");
    ps = (pods){{TFPOD("chief", 0, "Running", -1), TFPOD("worker", 1, "Failed", 3)}, 2};
    rec(job, &ps, T0, &o);
    cr_assert(o.failed);
    cr_assert_eq(o.fail_cause, TY_KUBEFLOW_FAIL_EXIT_CODE);
    assert_cond(job, "Failed", "True", "TFJobFailed",
                "job \"tf\" is failing because \"Worker\" replica(s) failed.");
    cr_assert_eq(o.ncreate, 0); /* nothing created for a finished job */
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);
}

Test(kubeflow_status, tf_success_policies)
{
    ty_kubeflow_outcome o;
    /* With a chief: the chief decides. */
    json_t *job = tf_job("", true, 2, "OnFailure");
    pods ps = {{TFPOD("chief", 0, "Running", -1), TFPOD("worker", 0, "Succeeded", 0)}, 2};
    rec(job, &ps, T0, &o);
    assert_cond(job, "Running", "True", "TFJobRunning", "TFJob ns/tf is running.");
    cr_assert_null(cond(job, "Succeeded"));
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    ps = (pods){{TFPOD("chief", 0, "Succeeded", 0), TFPOD("worker", 0, "Running", -1)}, 2};
    rec(job, &ps, T0, &o);
    assert_cond(job, "Succeeded", "True", "TFJobSucceeded", "TFJob ns/tf successfully completed.");
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);

    /* No chief, default policy: worker 0 with exit code 0. */
    job = tf_job("'successPolicy':'',", false, 2, "OnFailure");
    ps = (pods){{TFPOD("worker", 0, "Succeeded", 0), TFPOD("worker", 1, "Running", -1)}, 2};
    rec(job, &ps, T0, &o);
    assert_cond(job, "Succeeded", "True", "TFJobSucceeded", NULL);
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);

    /* AllWorkers: worker 0 is not enough. */
    job = tf_job("'successPolicy':'AllWorkers',", false, 2, "OnFailure");
    ps = (pods){{TFPOD("worker", 0, "Succeeded", 0), TFPOD("worker", 1, "Running", -1)}, 2};
    rec(job, &ps, T0, &o);
    cr_assert_null(cond(job, "Succeeded"));
    assert_cond(job, "Running", "True", "TFJobRunning", NULL);
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    ps = (pods){{TFPOD("worker", 0, "Succeeded", 0), TFPOD("worker", 1, "Succeeded", 0)}, 2};
    rec(job, &ps, T0, &o);
    assert_cond(job, "Succeeded", "True", "TFJobSucceeded", NULL);
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);
}

Test(kubeflow_status, tf_chief_failure_fails_job_dynamic_workers_do_not)
{
    ty_kubeflow_outcome o;
    json_t *job = tf_job("", true, 2, "Never");
    pods ps = {{TFPOD("chief", 0, "Failed", 1), TFPOD("worker", 0, "Running", -1)}, 2};
    rec(job, &ps, T0, &o);
    cr_assert(o.failed);
    assert_cond(job, "Failed", "True", "TFJobFailed",
                "TFJob ns/tf has failed because 1 Chief replica(s) failed.");
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);

    job = tf_job("'enableDynamicWorker':true,", false, 2, "Never");
    ps = (pods){{TFPOD("worker", 0, "Running", -1), TFPOD("worker", 1, "Failed", 1)}, 2};
    rec(job, &ps, T0, &o);
    cr_assert_not(o.failed);
    cr_assert_null(cond(job, "Failed"));
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);
}

Test(kubeflow_status, active_deadline)
{
    json_t *job = pt_job("'activeDeadlineSeconds':60", "", "OnFailure", 1, "OnFailure");
    pods ps = {{PTPOD("master", 0, "Running", -1), PTPOD("worker", 0, "Running", -1)}, 2};
    ty_kubeflow_outcome o;
    rec(job, &ps, T0, &o); /* sets startTime */
    cr_assert_eq(o.requeue_after_ns, 60 * SEC);
    ty_kubeflow_outcome_free(&o);
    rec(job, &ps, T0 + 20 * SEC, &o);
    cr_assert_not(o.failed);
    cr_assert_eq(o.requeue_after_ns, 40 * SEC);
    ty_kubeflow_outcome_free(&o);
    rec(job, &ps, T0 + 60 * SEC, &o);
    cr_assert(o.failed);
    cr_assert_eq(o.fail_cause, TY_KUBEFLOW_FAIL_DEADLINE);
    cr_assert_eq(o.ndelete, 2);
    assert_cond(job, "Failed", "True", "PyTorchJobFailed",
                "Job fm has failed because it was active longer than specified deadline");
    assert_cond(job, "Running", "False", "PyTorchJobRunning", NULL);
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);
}

Test(kubeflow_status, suspend_and_resume)
{
    json_t *job = pt_job("'suspend':false", "", "OnFailure", 1, "OnFailure");
    pods ps = {{PTPOD("master", 0, "Running", -1), PTPOD("worker", 0, "Running", -1)}, 2};
    ty_kubeflow_outcome o;
    rec(job, &ps, T0, &o);
    ty_kubeflow_outcome_free(&o);
    json_object_set_new(json_object_get(json_object_get(job, "spec"), "runPolicy"), "suspend",
                        json_true());
    rec(job, &ps, T0 + SEC, &o);
    cr_assert(o.suspended);
    cr_assert_eq(o.ndelete, 2);
    cr_assert_eq(o.ncreate, 0);
    assert_cond(job, "Suspended", "True", "PyTorchJobSuspended", "PyTorchJob fm is suspended.");
    assert_cond(job, "Running", "False", "PyTorchJobSuspended", NULL);
    cr_assert_eq(rs(job, "Master", "active"), 0);
    ty_kubeflow_outcome_free(&o);

    json_object_set_new(json_object_get(json_object_get(job, "spec"), "runPolicy"), "suspend",
                        json_false());
    rec(job, NULL, T0 + 100 * SEC, &o);
    char ts[64];
    assert_cond(job, "Suspended", "False", "PyTorchJobResumed", "PyTorchJob fm is resumed.");
    cr_assert_str_eq(sget(json_object_get(job, "status"), "startTime"), at(T0 + 100 * SEC, ts));
    cr_assert_eq(o.ncreate, 2);
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);
}

Test(kubeflow_status, clean_pod_policy)
{
    json_t *pr = PTPOD("worker", 0, "Running", -1), *pp = PTPOD("worker", 0, "Pending", -1);
    json_t *pf = PTPOD("worker", 0, "Failed", 1), *pd = PTPOD("worker", 0, "Succeeded", 0);
    json_t *job = pt_job("'cleanPodPolicy':'None'", "", NULL, 1, "Never");
    cr_assert_not(ty_kubeflow_should_clean_pod(job, pr));
    json_decref(job);
    job = pt_job("'cleanPodPolicy':'Running'", "", NULL, 1, "Never");
    cr_assert(ty_kubeflow_should_clean_pod(job, pr));
    cr_assert(ty_kubeflow_should_clean_pod(job, pp));
    cr_assert_not(ty_kubeflow_should_clean_pod(job, pf));
    cr_assert_not(ty_kubeflow_should_clean_pod(job, pd));
    json_decref(job);
    job = pt_job("'cleanPodPolicy':'All'", "", NULL, 1, "Never");
    cr_assert(ty_kubeflow_should_clean_pod(job, pf));
    cr_assert(ty_kubeflow_should_clean_pod(job, pd));
    json_decref(job);
    json_decref(pr);
    json_decref(pp);
    json_decref(pf);
    json_decref(pd);
}

Test(kubeflow_status, ttl_after_finished)
{
    json_t *job = pt_job("'ttlSecondsAfterFinished':30", "", NULL, 1, "Never");
    pods ps = {{PTPOD("worker", 0, "Succeeded", 0)}, 1};
    ty_kubeflow_outcome o;
    rec(job, &ps, T0, &o);
    cr_assert(o.succeeded);
    cr_assert_not(o.delete_job);
    cr_assert_eq(o.requeue_after_ns, 30 * SEC);
    ty_kubeflow_outcome_free(&o);
    rec(job, &ps, T0 + 31 * SEC, &o);
    cr_assert(o.delete_job);
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);
}

Test(kubeflow_status, condition_times_follow_set_condition)
{
    json_t *job = pt_job("", "", "OnFailure", 1, "OnFailure");
    pods ps = {{PTPOD("master", 0, "Running", -1), PTPOD("worker", 0, "Running", -1)}, 2};
    ty_kubeflow_outcome o;
    char t1[64], t2[64];
    rec(job, &ps, T0, &o);
    ty_kubeflow_outcome_free(&o);
    /* Same status and reason later: untouched. */
    rec(job, &ps, T0 + 5 * SEC, &o);
    cr_assert_str_eq(sget(cond(job, "Running"), "lastUpdateTime"), at(T0, t1));
    ty_kubeflow_outcome_free(&o);
    /* Suspended then resumed: Suspended goes True -> False, a transition. */
    json_object_set_new(json_object_get(json_object_get(job, "spec"), "runPolicy"), "suspend",
                        json_true());
    rec(job, &ps, T0 + 10 * SEC, &o);
    ty_kubeflow_outcome_free(&o);
    json_object_set_new(json_object_get(json_object_get(job, "spec"), "runPolicy"), "suspend",
                        json_false());
    rec(job, &ps, T0 + 20 * SEC, &o);
    ty_kubeflow_outcome_free(&o);
    cr_assert_str_eq(sget(cond(job, "Suspended"), "lastTransitionTime"), at(T0 + 20 * SEC, t2));
    /* Running False (Suspended) -> True (Running): a transition too. */
    assert_cond(job, "Running", "True", "PyTorchJobRunning", NULL);
    cr_assert_str_eq(sget(cond(job, "Running"), "lastTransitionTime"), at(T0 + 20 * SEC, t2));
    /* Created keeps its first time throughout. */
    cr_assert_str_eq(sget(cond(job, "Created"), "lastTransitionTime"), at(T0, t1));
    pods_free(&ps);
    json_decref(job);
}

Test(kubeflow_status, same_status_new_reason_keeps_transition_time)
{
    /* Running True (reason A) -> Running True (reason B): lastTransitionTime kept. */
    json_t *job = pt_job("", "", "OnFailure", 1, "OnFailure");
    json_object_set_new(job, "status", J("{'conditions':[{'type':'Created','status':'True',"
                                         "'reason':'PyTorchJobCreated'},{'type':'Running',"
                                         "'status':'True','reason':'Other','lastUpdateTime':"
                                         "'2020-01-01T00:00:00Z','lastTransitionTime':"
                                         "'2020-01-01T00:00:00Z'}]}"));
    pods ps = {{PTPOD("master", 0, "Running", -1), PTPOD("worker", 0, "Running", -1)}, 2};
    ty_kubeflow_outcome o;
    char t[64];
    rec(job, &ps, T0, &o);
    assert_cond(job, "Running", "True", "PyTorchJobRunning", NULL);
    cr_assert_str_eq(sget(cond(job, "Running"), "lastTransitionTime"), "2020-01-01T00:00:00Z");
    cr_assert_str_eq(sget(cond(job, "Running"), "lastUpdateTime"), at(T0, t));
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);
}

Test(kubeflow_status, terminating_pods_hold_their_slot)
{
    json_t *job = pt_job("", "", "OnFailure", 1, "OnFailure");
    json_t *gone = PTPOD("worker", 0, "Running", -1);
    json_object_set_new(json_object_get(gone, "metadata"), "deletionTimestamp",
                        json_string("2026-01-01T00:00:00Z"));
    pods ps = {{PTPOD("master", 0, "Running", -1), gone,
                mkpod("other", "pytorch", "worker", 0, "Failed", 1, 0)}, 3};
    ty_kubeflow_outcome o;
    rec(job, &ps, T0, &o);
    cr_assert_eq(o.ncreate, 0);            /* worker-0 still there, going away */
    cr_assert_eq(rs(job, "Worker", "active"), 0);
    cr_assert_eq(o.ndelete, 0);            /* not deleted twice; other jobs' pods ignored */
    cr_assert_not(o.restarted);
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);
}

Test(kubeflow_status, malformed_jobs_are_errors)
{
    ty_error err = TY_ERROR_INIT;
    ty_kubeflow_outcome o;
    json_t *job = J("{'kind':'PyTorchJob','metadata':{'name':'x'},'spec':{}}");
    cr_assert_eq(ty_kubeflow_reconcile(job, NULL, 0, T0, &o, &err), -1);
    cr_assert_str_eq(err.msg, "PyTorchJob x: no replica specs");
    cr_assert_null(json_object_get(job, "status"));
    json_decref(job);
    job = J("{'kind':'Job','metadata':{'name':'x'}}");
    cr_assert_eq(ty_kubeflow_reconcile(job, NULL, 0, T0, &o, &err), -1);
    cr_assert(strstr(err.msg, "not a kubeflow job"));
    json_decref(job);
    ty_error_clear(&err);
}

/* A failed pytorch pod of job fm that ran from `start` to `end` (ns) and ended with `term`
 * (the terminated state's other members, JSON with single quotes). */
static json_t *failed_pod(const char *rt, int index, int64_t start, int64_t end, const char *term)
{
    char a[40], b[40];
    ty_time_format_rfc3339(start, a, sizeof a, 0);
    ty_time_format_rfc3339(end, b, sizeof b, 0);
    return J("{'metadata':{'name':'fm-%s-%d','namespace':'ns','creationTimestamp':'%s',"
             "'labels':{'training.kubeflow.org/job-name':'fm',"
             "'training.kubeflow.org/replica-type':'%s','training.kubeflow.org/replica-index':"
             "'%d'}},'status':{'phase':'Failed','startTime':'%s','containerStatuses':[{"
             "'name':'pytorch','restartCount':0,'state':{'terminated':{%s,'finishedAt':'%s'}}}"
             "]}}",
             rt, index, a, rt, index, a, term, b);
}

static const char *annotation(const json_t *job, const char *key)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(job, "metadata"), "annotations"), key));
}

#define START_ERROR "'exitCode':128,'reason':'StartError','message':'failed to start container " \
                    "\\\"pytorch\\\": exec: \\\"nope\\\": executable file not found in $PATH'"

/* A pod that fails at start is not recreated at once: the gang waits out the kubelet's
 * back-off (10 s, then 20 s, ...) from when the pod ended, keeping the failed pod. */
Test(kubeflow_status, gang_restarts_back_off)
{
    json_t *job = pt_job("", "", "OnFailure", 1, "OnFailure");
    pods ps = {{failed_pod("master", 0, T0, T0 + SEC, START_ERROR),
                PTPOD("worker", 0, "Running", -1)}, 2};
    ty_kubeflow_outcome o;
    rec(job, &ps, T0 + 3 * SEC, &o);
    cr_assert_not(o.restarted);
    cr_assert_eq(o.ncreate, 0);
    cr_assert_eq(o.ndelete, 1); /* the other rank stops; the failed pod stays, saying why */
    cr_assert(deletes(&o, "fm-worker-0"));
    /* 10 s after it ended (the end of the second finishedAt names) */
    cr_assert_eq(o.requeue_after_ns, 9 * SEC - 1);
    assert_cond(job, "Restarting", "True", "PyTorchJobRestarting", NULL);
    cr_assert_null(annotation(job, TY_KUBEFLOW_RESTARTS_ANNOTATION));
    ty_kubeflow_outcome_free(&o);

    pods alone = {{failed_pod("master", 0, T0, T0 + SEC, START_ERROR)}, 1};
    rec(job, &alone, T0 + 12 * SEC, &o);
    cr_assert(o.restarted && o.gang_restart);
    cr_assert(deletes(&o, "fm-master-0"));
    cr_assert_str_eq(annotation(job, TY_KUBEFLOW_RESTARTS_ANNOTATION), "1");
    cr_assert_str_eq(annotation(job, TY_KUBEFLOW_BACKOFF_ANNOTATION), "1");
    ty_kubeflow_outcome_free(&o);
    pods_free(&alone);

    /* The recreated gang fails again at once: now 20 s. */
    pods again = {{failed_pod("master", 0, T0 + 12 * SEC, T0 + 12 * SEC, START_ERROR)}, 1};
    rec(job, &again, T0 + 20 * SEC, &o);
    cr_assert_not(o.restarted);
    cr_assert_eq(o.requeue_after_ns, 13 * SEC - 1);
    ty_kubeflow_outcome_free(&o);
    rec(job, &again, T0 + 33 * SEC, &o);
    cr_assert(o.restarted);
    cr_assert_str_eq(annotation(job, TY_KUBEFLOW_BACKOFF_ANNOTATION), "2");
    ty_kubeflow_outcome_free(&o);
    pods_free(&again);

    /* A pod that ran for 10 minutes resets the back-off to 10 s. */
    pods longrun = {{failed_pod("master", 0, T0 + 40 * SEC, T0 + 700 * SEC, "'exitCode':1")},
                    1};
    rec(job, &longrun, T0 + 705 * SEC, &o);
    cr_assert_not(o.restarted);
    cr_assert_eq(o.requeue_after_ns, 6 * SEC - 1);
    ty_kubeflow_outcome_free(&o);
    rec(job, &longrun, T0 + 711 * SEC, &o);
    cr_assert(o.restarted);
    cr_assert_str_eq(annotation(job, TY_KUBEFLOW_BACKOFF_ANNOTATION), "1");
    ty_kubeflow_outcome_free(&o);
    pods_free(&longrun);
    pods_free(&ps);
    json_decref(job);

    /* The cap: 30 x base. */
    ty_kubeflow_set_restart_backoff(100);
    job = pt_job("", "", "OnFailure", 0, "OnFailure");
    json_object_set_new(json_object_get(job, "metadata"), "annotations",
                        J("{'" TY_KUBEFLOW_BACKOFF_ANNOTATION "':'9'}"));
    pods cap = {{failed_pod("master", 0, T0, T0, "'exitCode':2")}, 1};
    rec(job, &cap, T0 + SEC, &o);
    cr_assert_eq(o.requeue_after_ns, 3 * SEC - 1); /* the 3 s cap */
    ty_kubeflow_outcome_free(&o);
    ty_kubeflow_set_restart_backoff(0);
    pods_free(&cap);
    json_decref(job);
}

/* The Failed condition says why: the start error of the last failed pod. */
Test(kubeflow_status, failed_condition_names_the_cause)
{
    json_t *job = pt_job("'backoffLimit':0", "", "OnFailure", 0, "OnFailure");
    pods ps = {{failed_pod("master", 0, T0, T0, START_ERROR)}, 1};
    ty_kubeflow_outcome o;
    rec(job, &ps, T0 + SEC, &o);
    cr_assert(o.failed);
    assert_cond(job, "Failed", "True", "PyTorchJobFailed",
                "Job fm has failed because it has reached the specified backoff limit; last "
                "failure: pod fm-master-0, container pytorch: StartError (exit code 128): "
                "failed to start container \"pytorch\": exec: \"nope\": executable file not "
                "found in $PATH");
    ty_kubeflow_outcome_free(&o);
    json_decref(job);

    /* Never: the operator's message, then the cause the runtime gave. */
    job = pt_job("", "", "Never", 0, "OnFailure");
    rec(job, &ps, T0 + SEC, &o);
    cr_assert(o.failed);
    const char *m = json_string_value(json_object_get(cond(job, "Failed"), "message"));
    cr_assert(strstr(m, "PyTorchJob fm is failed because 1 Master replica(s) failed. Last "
                        "failure: pod fm-master-0, container pytorch: StartError"), "%s", m);
    ty_kubeflow_outcome_free(&o);
    json_decref(job);
    pods_free(&ps);

    /* A plain exit code under Never keeps the operator's message as it is. */
    job = pt_job("", "", "Never", 0, "OnFailure");
    pods plain = {{PTPOD("master", 0, "Failed", 1)}, 1};
    rec(job, &plain, T0, &o);
    assert_cond(job, "Failed", "True", "PyTorchJobFailed",
                "PyTorchJob fm is failed because 1 Master replica(s) failed.");
    ty_kubeflow_outcome_free(&o);
    json_decref(job);
    pods_free(&plain);
}

/* A container that can never start (no command: trainyard runs no images) fails the job at
 * once; its pod stays (cleanPodPolicy None) with the waiting reason. */
Test(kubeflow_status, config_error_fails_the_job)
{
    json_t *job = pt_job("'cleanPodPolicy':'None'", "", "OnFailure", 0, "OnFailure");
    pods ps = {{J("{'metadata':{'name':'fm-master-0','namespace':'ns','labels':{"
                  "'training.kubeflow.org/job-name':'fm','training.kubeflow.org/replica-type':"
                  "'master','training.kubeflow.org/replica-index':'0'}},'status':{'phase':"
                  "'Pending','containerStatuses':[{'name':'pytorch','restartCount':0,'state':{"
                  "'waiting':{'reason':'CreateContainerConfigError','message':'container "
                  "\\\"pytorch\\\" has no command'}}}]}}")}, 1};
    ty_kubeflow_outcome o;
    rec(job, &ps, T0, &o);
    cr_assert(o.failed && o.finished);
    cr_assert_eq(o.ncreate, 0);
    cr_assert_eq(o.ndelete, 0);
    assert_cond(job, "Failed", "True", "PyTorchJobFailed",
                "PyTorchJob fm has failed because pod fm-master-0 can never start: container "
                "\"pytorch\" has no command");
    ty_kubeflow_outcome_free(&o);
    pods_free(&ps);
    json_decref(job);
}
