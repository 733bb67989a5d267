/* Pods and Services of PyTorchJob/TFJob: names, labels, owners, restart policy, env. */
#include "controllers/kubeflow.h"
#include "kubeflow_fixtures.h"

static const char *label(const json_t *obj, const char *key)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(obj, "metadata"), "labels"), key));
}

static json_t *pytorch_job(const char *extra_spec, int workers, const char *policy)
{
    return J("{'apiVersion':'kubeflow.org/v1','kind':'PyTorchJob',"
             "'metadata':{'name':'mnist','namespace':'team-a','uid':'u-1'},"
             "'spec':{%s'runPolicy':{'cleanPodPolicy':'None'},'pytorchReplicaSpecs':{"
             "'Master':" KF_REPLICA(1, "%s", PT_C) ",'Worker':" KF_REPLICA(%d, "%s", PT_C) "}}}",
             extra_spec, policy, workers, policy);
}

static json_t *pod(const json_t *job, const char *rtype, int index, ty_kubeflow_addr_fn addr)
{
    ty_error err = TY_ERROR_INIT;
    json_t *p = ty_kubeflow_pod(job, rtype, index, addr, NULL, &err);
    cr_assert_not_null(p, "%s", err.msg);
    return p;
}

static char *loopback(void *ctx, const char *ns, const char *pod_name)
{
    (void)ctx;
    cr_assert_str_eq(ns, "team-a");
    /* master-0 -> .5, worker-N -> .10+N, others -> .99 */
    if (strstr(pod_name, "-master-0"))
        return ty_strdup("127.0.0.5");
    const char *w = strstr(pod_name, "-worker-");
    if (w)
        return ty_asprintf("127.0.0.%d", 10 + atoi(w + 8));
    return ty_strdup("127.0.0.99");
}

static char *no_addr(void *ctx, const char *ns, const char *pod_name)
{
    (void)ctx, (void)ns, (void)pod_name;
    return NULL;
}

Test(kubeflow_pods, replica_name)
{
    char *n = ty_kubeflow_replica_name("my/job", "Worker", 3);
    cr_assert_str_eq(n, "my-job-worker-3");
    free(n);
    n = ty_kubeflow_replica_name("a-b", "PS", 0);
    cr_assert_str_eq(n, "a-b-ps-0");
    free(n);
}

Test(kubeflow_pods, pytorch_metadata_labels_owner)
{
    json_t *job = pytorch_job("", 2, "OnFailure");
    json_t *m = pod(job, "Master", 0, NULL);
    cr_assert_str_eq(sget(m, "metadata.name"), "mnist-master-0");
    cr_assert_str_eq(sget(m, "metadata.namespace"), "team-a");
    cr_assert_str_eq(sget(m, "kind"), "Pod");
    cr_assert_str_eq(label(m, "training.kubeflow.org/job-name"), "mnist");
    cr_assert_str_eq(label(m, "training.kubeflow.org/operator-name"), "pytorchjob-controller");
    cr_assert_str_eq(label(m, "training.kubeflow.org/replica-type"), "master");
    cr_assert_str_eq(label(m, "training.kubeflow.org/replica-index"), "0");
    cr_assert_str_eq(label(m, "training.kubeflow.org/job-role"), "master");
    cr_assert_str_eq(label(m, "team"), "ml");
    cr_assert_str_eq(sget(m, "metadata.annotations.a"), "b");
    const json_t *ref = json_array_get(json_object_get(json_object_get(m, "metadata"),
                                                       "ownerReferences"), 0);
    cr_assert_str_eq(sget(ref, "apiVersion"), "kubeflow.org/v1");
    cr_assert_str_eq(sget(ref, "kind"), "PyTorchJob");
    cr_assert_str_eq(sget(ref, "name"), "mnist");
    cr_assert_str_eq(sget(ref, "uid"), "u-1");
    cr_assert(json_is_true(json_object_get(ref, "controller")));
    cr_assert(json_is_true(json_object_get(ref, "blockOwnerDeletion")));

    json_t *w = pod(job, "Worker", 1, NULL);
    cr_assert_str_eq(sget(w, "metadata.name"), "mnist-worker-1");
    cr_assert_str_eq(label(w, "training.kubeflow.org/replica-type"), "worker");
    cr_assert_str_eq(label(w, "training.kubeflow.org/replica-index"), "1");
    cr_assert_null(label(w, "training.kubeflow.org/job-role"));
    json_decref(m);
    json_decref(w);
    json_decref(job);
}

Test(kubeflow_pods, operator_labels_override_template)
{
    json_t *job = pytorch_job("", 1, "OnFailure");
    json_object_set_new(json_object_get(json_object_get(json_object_get(json_object_get(
                            json_object_get(json_object_get(job, "spec"), "pytorchReplicaSpecs"),
                            "Worker"), "template"), "metadata"), "labels"),
                        "training.kubeflow.org/replica-index", json_string("7"));
    json_t *w = pod(job, "Worker", 0, NULL);
    cr_assert_str_eq(label(w, "training.kubeflow.org/replica-index"), "0");
    cr_assert_str_eq(label(w, "team"), "ml");
    json_decref(w);
    json_decref(job);
}

Test(kubeflow_pods, pytorch_env_master_and_worker)
{
    json_t *job = pytorch_job("'nprocPerNode':'auto',", 2, "OnFailure");
    json_t *m = pod(job, "Master", 0, NULL);
    char *env = env_list(m, 0);
    cr_assert_str_eq(env, "USER_VAR=u;PYTHONUNBUFFERED=1;MASTER_PORT=23456;PET_MASTER_PORT=23456;"
                          "MASTER_ADDR=mnist-master-0;PET_MASTER_ADDR=mnist-master-0;"
                          "WORLD_SIZE=3;RANK=0;PET_NODE_RANK=0;PET_NPROC_PER_NODE=auto;"
                          "PET_NNODES=3");
    free(env);
    /* The operator sets the env on every container, the sidecar too. */
    env = env_list(m, 1);
    cr_assert_str_eq(env, "PYTHONUNBUFFERED=1;MASTER_PORT=23456;PET_MASTER_PORT=23456;"
                          "MASTER_ADDR=mnist-master-0;PET_MASTER_ADDR=mnist-master-0;"
                          "WORLD_SIZE=3;RANK=0;PET_NODE_RANK=0;PET_NPROC_PER_NODE=auto;"
                          "PET_NNODES=3");
    free(env);
    json_t *w = pod(job, "Worker", 1, NULL);
    cr_assert_str_eq(env_of(w, 0, "RANK"), "2");
    cr_assert_str_eq(env_of(w, 0, "PET_NODE_RANK"), "2");
    cr_assert_str_eq(env_of(w, 0, "WORLD_SIZE"), "3");
    cr_assert_str_eq(env_of(w, 0, "MASTER_ADDR"), "mnist-master-0");
    json_decref(m);
    json_decref(w);
    json_decref(job);
}

Test(kubeflow_pods, pytorch_nproc_per_node_multiplies_world_size)
{
    json_t *job = pytorch_job("'nprocPerNode':'4',", 2, "OnFailure");
    json_t *w = pod(job, "Worker", 0, NULL);
    cr_assert_str_eq(env_of(w, 0, "WORLD_SIZE"), "12");
    cr_assert_str_eq(env_of(w, 0, "RANK"), "1"); /* a node rank: not multiplied */
    cr_assert_str_eq(env_of(w, 0, "PET_NPROC_PER_NODE"), "4");
    cr_assert_str_eq(env_of(w, 0, "PET_NNODES"), "3");
    json_decref(w);
    json_decref(job);
    /* Unset: no PET_NPROC_PER_NODE, WORLD_SIZE = replicas. */
    job = pytorch_job("", 3, "OnFailure");
    w = pod(job, "Worker", 2, NULL);
    cr_assert_null(env_of(w, 0, "PET_NPROC_PER_NODE"));
    cr_assert_str_eq(env_of(w, 0, "WORLD_SIZE"), "4");
    cr_assert_str_eq(env_of(w, 0, "RANK"), "3");
    json_decref(w);
    json_decref(job);
}

Test(kubeflow_pods, pytorch_addr_callback)
{
    json_t *job = pytorch_job("", 1, "OnFailure");
    json_t *w = pod(job, "Worker", 0, loopback);
    cr_assert_str_eq(env_of(w, 0, "MASTER_ADDR"), "127.0.0.5");
    cr_assert_str_eq(env_of(w, 0, "PET_MASTER_ADDR"), "127.0.0.5");
    json_decref(w);
    w = pod(job, "Worker", 0, no_addr);
    cr_assert_str_eq(env_of(w, 0, "MASTER_ADDR"), "mnist-master-0");
    json_decref(w);
    json_decref(job);
}

Test(kubeflow_pods, pytorch_restart_policy_always_never_unless_elastic)
{
    const char *policies[] = {"OnFailure", "Always", "Never", "ExitCode"};
    for (size_t i = 0; i < 4; i++) {
        json_t *job = pytorch_job("", 1, policies[i]);
        json_t *w = pod(job, "Worker", 0, NULL);
        cr_assert_str_eq(sget(w, "spec.restartPolicy"), "Never", "%s", policies[i]);
        json_decref(w);
        json_decref(job);
    }
}

static json_t *elastic_job(const char *policy_json, const char *restart)
{
    return J("{'kind':'PyTorchJob','metadata':{'name':'el','namespace':'team-a','uid':'u'},"
             "'spec':{'elasticPolicy':%s,'pytorchReplicaSpecs':{"
             "'Worker':" KF_REPLICA(2, "%s", KF_CONTAINER("pytorch", "pytorchjob-port", 29400))
             "}}}",
             policy_json, restart);
}

Test(kubeflow_pods, pytorch_elastic_env)
{
    json_t *job = elastic_job("{'minReplicas':1,'maxReplicas':3,'rdzvBackend':'c10d','maxRestarts':5,"
                              "'nProcPerNode':2,'rdzvId':'r1','rdzvConf':[{'key':'a','value':'1'},"
                              "{'key':'b','value':'2'}],'standalone':true}",
                              "OnFailure");
    json_t *w = pod(job, "Worker", 1, NULL);
    char *env = env_list(w, 0);
    cr_assert_str_eq(env, "USER_VAR=u;PYTHONUNBUFFERED=1;PET_RDZV_ENDPOINT=el-worker-0:29400;"
                          "PET_RDZV_BACKEND=c10d;PET_NNODES=1:3;PET_MAX_RESTARTS=5;"
                          "PET_NPROC_PER_NODE=2;PET_RDZV_ID=r1;PET_RDZV_CONF=a=1,b=2;"
                          "PET_STANDALONE=");
    free(env);
    /* No master: no MASTER_ADDR, WORLD_SIZE, RANK. Elastic keeps the pod restart policy. */
    cr_assert_null(env_of(w, 0, "MASTER_ADDR"));
    cr_assert_null(env_of(w, 0, "WORLD_SIZE"));
    cr_assert_str_eq(sget(w, "spec.restartPolicy"), "OnFailure");
    json_decref(w);
    /* The rendezvous host through the resolver. */
    w = pod(job, "Worker", 1, loopback);
    cr_assert_str_eq(env_of(w, 0, "PET_RDZV_ENDPOINT"), "127.0.0.10:29400");
    json_decref(w);
    json_decref(job);

    job = elastic_job("{'rdzvHost':'h','rdzvPort':1234}", "ExitCode");
    w = pod(job, "Worker", 0, loopback);
    cr_assert_str_eq(env_of(w, 0, "PET_RDZV_ENDPOINT"), "h:1234");
    cr_assert_str_eq(env_of(w, 0, "PET_RDZV_BACKEND"), "c10d");
    cr_assert_str_eq(env_of(w, 0, "PET_NNODES"), "2"); /* worker replicas */
    cr_assert_str_eq(sget(w, "spec.restartPolicy"), "Never"); /* ExitCode -> Never */
    cr_assert_str_eq(label(w, "training.kubeflow.org/job-role"), "master"); /* worker 0 */
    json_decref(w);
    json_decref(job);
}

static json_t *tf_job(const char *extra)
{
    return J("{'kind':'TFJob','metadata':{'name':'dist','namespace':'ns1','uid':'u2'},"
             "'spec':{%s'tfReplicaSpecs':{"
             "'PS':" KF_REPLICA(2, "Always", TF_C) ","
             "'Worker':" KF_REPLICA(2, "ExitCode", KF_CONTAINER("tensorflow", "tfjob-port", 3333)) ","
             "'Chief':" KF_REPLICA(1, "OnFailure", TF_C) ","
             "'Evaluator':" KF_REPLICA(1, "Never", TF_C) "}}}",
             extra);
}

#define TF_CLUSTER                                                                                \
    "{\"chief\":[\"dist-chief-0.ns1.svc:2222\"],\"evaluator\":[\"dist-evaluator-0.ns1.svc:2222\"],"  \
    "\"ps\":[\"dist-ps-0.ns1.svc:2222\",\"dist-ps-1.ns1.svc:2222\"],"                               \
    "\"worker\":[\"dist-worker-0.ns1.svc:3333\",\"dist-worker-1.ns1.svc:3333\"]}"

Test(kubeflow_pods, tf_config_every_type)
{
    json_t *job = tf_job("");
    struct { const char *rtype; int index; const char *task; } cases[] = {
        {"Chief", 0, "{\"type\":\"chief\",\"index\":0}"},
        {"Worker", 1, "{\"type\":\"worker\",\"index\":1}"},
        {"PS", 0, "{\"type\":\"ps\",\"index\":0}"},
        {"Evaluator", 0, "{\"type\":\"evaluator\",\"index\":0}"},
    };
    for (size_t i = 0; i < TY_ARRAY_LEN(cases); i++) {
        json_t *p = pod(job, cases[i].rtype, cases[i].index, NULL);
        char *want = ty_asprintf("{\"cluster\":" TF_CLUSTER ",\"task\":%s,\"environment\":\"cloud\"}",
                                 cases[i].task);
        cr_assert_str_eq(env_of(p, 0, "TF_CONFIG"), want);
        free(want);
        /* Only the tensorflow container, and no PyTorch variables. */
        cr_assert_null(env_of(p, 1, "TF_CONFIG"));
        cr_assert_null(env_of(p, 0, "PYTHONUNBUFFERED"));
        cr_assert_str_eq(label(p, "training.kubeflow.org/operator-name"), "tfjob-controller");
        json_decref(p);
    }
    json_t *c = pod(job, "Chief", 0, NULL);
    cr_assert_str_eq(label(c, "training.kubeflow.org/job-role"), "master");
    cr_assert_str_eq(sget(c, "spec.restartPolicy"), "OnFailure");
    json_t *w = pod(job, "Worker", 0, NULL);
    cr_assert_null(label(w, "training.kubeflow.org/job-role")); /* a chief exists */
    cr_assert_str_eq(sget(w, "spec.restartPolicy"), "Never");   /* ExitCode */
    json_t *ps = pod(job, "PS", 1, NULL);
    cr_assert_str_eq(sget(ps, "spec.restartPolicy"), "Always");
    json_decref(c);
    json_decref(w);
    json_decref(ps);
    json_decref(job);
}

Test(kubeflow_pods, tf_config_hosts_from_resolver)
{
    json_t *job = J("{'kind':'TFJob','metadata':{'name':'t','namespace':'team-a'},"
                    "'spec':{'tfReplicaSpecs':{'Worker':" KF_REPLICA(2, "Never", TF_C) "}}}");
    json_t *p = pod(job, "Worker", 0, loopback);
    cr_assert_str_eq(env_of(p, 0, "TF_CONFIG"),
                     "{\"cluster\":{\"worker\":[\"127.0.0.10:2222\",\"127.0.0.11:2222\"]},"
                     "\"task\":{\"type\":\"worker\",\"index\":0},\"environment\":\"cloud\"}");
    cr_assert_str_eq(label(p, "training.kubeflow.org/job-role"), "master"); /* worker 0 */
    json_decref(p);
    json_decref(job);
}

Test(kubeflow_pods, tf_single_replica_has_no_tf_config)
{
    json_t *job = J("{'kind':'TFJob','metadata':{'name':'t'},"
                    "'spec':{'tfReplicaSpecs':{'Worker':" KF_REPLICA(1, "Never", TF_C) "}}}");
    json_t *p = pod(job, "Worker", 0, NULL);
    cr_assert_null(env_of(p, 0, "TF_CONFIG"));
    cr_assert_str_eq(sget(p, "metadata.namespace"), "default");
    json_decref(p);
    json_decref(job);
}

Test(kubeflow_pods, tf_dynamic_worker_sparse_config)
{
    json_t *job = tf_job("'enableDynamicWorker':true,");
    json_t *w = pod(job, "Worker", 1, NULL);
    cr_assert_str_eq(env_of(w, 0, "TF_CONFIG"),
                     "{\"cluster\":{\"worker\":{\"1\":\"dist-worker-1.ns1.svc:3333\"},"
                     "\"ps\":[\"dist-ps-0.ns1.svc:2222\",\"dist-ps-1.ns1.svc:2222\"]},"
                     "\"task\":{\"type\":\"worker\",\"index\":1}}");
    json_t *ps = pod(job, "PS", 1, NULL);
    cr_assert_str_eq(env_of(ps, 0, "TF_CONFIG"),
                     "{\"cluster\":{\"worker\":{},\"ps\":[\"dist-ps-1.ns1.svc:2222\"]},"
                     "\"task\":{\"type\":\"ps\",\"index\":1}}");
    json_decref(w);
    json_decref(ps);
    json_decref(job);

    job = J("{'kind':'TFJob','metadata':{'name':'t','namespace':'n'},"
            "'spec':{'enableDynamicWorker':true,'tfReplicaSpecs':{'Worker':"
            KF_REPLICA(2, "Never", TF_C) "}}}");
    w = pod(job, "Worker", 0, NULL);
    cr_assert_str_eq(env_of(w, 0, "TF_CONFIG"),
                     "{\"cluster\":{\"worker\":{\"0\":\"t-worker-0.n.svc:2222\"},\"ps\":null},"
                     "\"task\":{\"type\":\"worker\",\"index\":0}}");
    json_decref(w);
    json_decref(job);
}

Test(kubeflow_pods, service_is_headless_per_replica)
{
    json_t *job = tf_job("");
    ty_error err = TY_ERROR_INIT;
    json_t *s = ty_kubeflow_service(job, "Worker", 1, &err);
    cr_assert_not_null(s, "%s", err.msg);
    cr_assert_str_eq(sget(s, "kind"), "Service");
    cr_assert_str_eq(sget(s, "metadata.name"), "dist-worker-1");
    cr_assert_str_eq(sget(s, "metadata.namespace"), "ns1");
    cr_assert_str_eq(sget(s, "spec.clusterIP"), "None");
    json_t *want_sel = J("{'training.kubeflow.org/job-name':'dist',"
                         "'training.kubeflow.org/operator-name':'tfjob-controller',"
                         "'training.kubeflow.org/replica-type':'worker',"
                         "'training.kubeflow.org/replica-index':'1'}");
    cr_assert(json_equal(json_object_get(json_object_get(s, "spec"), "selector"), want_sel));
    cr_assert(json_equal(json_object_get(json_object_get(s, "metadata"), "labels"), want_sel));
    json_t *want_ports = J("[{'name':'tfjob-port','port':3333}]");
    cr_assert(json_equal(json_object_get(json_object_get(s, "spec"), "ports"), want_ports));
    const json_t *ref = json_array_get(
        json_object_get(json_object_get(s, "metadata"), "ownerReferences"), 0);
    cr_assert_str_eq(sget(ref, "kind"), "TFJob");
    cr_assert_str_eq(sget(ref, "uid"), "u2");
    json_decref(want_sel);
    json_decref(want_ports);
    json_decref(s);
    /* The chief's service carries no job-role label either. */
    s = ty_kubeflow_service(job, "Chief", 0, &err);
    cr_assert_null(label(s, "training.kubeflow.org/job-role"));
    json_decref(s);
    json_decref(job);
}

Test(kubeflow_pods, errors_name_the_problem)
{
    json_t *job = pytorch_job("", 1, "OnFailure");
    ty_error err = TY_ERROR_INIT;
    cr_assert_null(ty_kubeflow_pod(job, "Chief", 0, NULL, NULL, &err));
    cr_assert(strstr(err.msg, "no replica type Chief"), "%s", err.msg);
    cr_assert_null(ty_kubeflow_pod(job, "Worker", 1, NULL, NULL, &err));
    cr_assert(strstr(err.msg, "out of range"), "%s", err.msg);
    cr_assert_null(ty_kubeflow_service(job, "Worker", -1, &err));
    cr_assert(strstr(err.msg, "out of range"), "%s", err.msg);
    /* A master without its port gets the default one (as the operator's webhook gives it). */
    json_t *ports = json_object_get(json_array_get(json_object_get(json_object_get(
        json_object_get(json_object_get(json_object_get(json_object_get(job, "spec"),
        "pytorchReplicaSpecs"), "Master"), "template"), "spec"), "containers"), 0), "ports");
    json_array_clear(ports);
    json_t *defaulted = ty_kubeflow_pod(job, "Worker", 0, NULL, NULL, &err);
    cr_assert_not_null(defaulted, "%s", err.msg);
    char *env = json_dumps(json_object_get(json_array_get(json_object_get(json_object_get(
                               defaulted, "spec"), "containers"), 0), "env"), JSON_COMPACT);
    cr_assert(env && strstr(env, "{\"name\":\"MASTER_PORT\",\"value\":\"23456\"}"), "%s", env);
    free(env);
    json_decref(defaulted);
    json_t *notjob = J("{'kind':'Deployment','metadata':{'name':'d'}}");
    cr_assert_null(ty_kubeflow_pod(notjob, "Worker", 0, NULL, NULL, &err));
    cr_assert(strstr(err.msg, "not a kubeflow job"), "%s", err.msg);
    cr_assert_eq(ty_kubeflow_job_kind(notjob), TY_KUBEFLOW_UNKNOWN);
    cr_assert_eq(ty_kubeflow_job_kind(job), TY_KUBEFLOW_PYTORCH);
    ty_error_clear(&err);
    json_decref(notjob);
    json_decref(job);
}

/* The default port goes to the pods (and services), not into the stored job. */
Test(kubeflow_pods, default_port_is_added_to_the_pod_not_the_job)
{
    json_t *job = json_loads(
        "{\"apiVersion\": \"kubeflow.org/v1\", \"kind\": \"PyTorchJob\","
        " \"metadata\": {\"name\": \"p\", \"namespace\": \"default\", \"uid\": \"u1\"},"
        " \"spec\": {\"pytorchReplicaSpecs\": {\"Master\": {\"replicas\": 1,"
        "  \"restartPolicy\": \"OnFailure\", \"template\": {\"spec\": {\"containers\":"
        "  [{\"name\": \"pytorch\", \"image\": \"x\"}]}}}}}}",
        0, NULL);
    cr_assert_not_null(job);
    json_t *before = json_deep_copy(job);
    ty_error err = TY_ERROR_INIT;
    json_t *pod = ty_kubeflow_pod(job, "Master", 0, NULL, NULL, &err);
    cr_assert_not_null(pod, "%s", err.msg);
    json_t *port = json_array_get(json_object_get(json_array_get(json_object_get(
        json_object_get(pod, "spec"), "containers"), 0), "ports"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(port, "name")), "pytorchjob-port");
    cr_assert_eq(json_integer_value(json_object_get(port, "containerPort")), 23456);
    json_t *svc = ty_kubeflow_service(job, "Master", 0, &err);
    cr_assert_not_null(svc, "%s", err.msg);
    json_t *sport = json_array_get(json_object_get(json_object_get(svc, "spec"), "ports"), 0);
    cr_assert_eq(json_integer_value(json_object_get(sport, "port")), 23456);
    cr_assert(json_equal(job, before), "the job was changed");
    json_decref(svc);
    json_decref(pod);
    json_decref(before);
    json_decref(job);
}
