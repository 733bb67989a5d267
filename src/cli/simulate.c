/* trainyard simulate --trace FILE [options]: replays a job trace over the scheduling core in
 * simulated time and prints what a policy would have done (sim/sim.h, docs/simulate.md).
 * Exit status: 0, or 2 for bad usage or input (nothing is written then), 1 when the
 * simulation fails. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "cli/cli.h"
#include "cli/nodespec.h"
#include "sim/sim.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trainyard simulate --trace FILE [options]\n"
            "  --trace FILE            the job trace (philly, muri or generic CSV)\n"
            "  --format F              philly, muri or generic (default: from the header)\n"
            "  --cluster FILE          the VCs: CSV with columns vc and nodes (or \"node num\")\n"
            "  --nodes N               without --cluster: N nodes (per VC of the trace)\n"
            "  --kueue FILE            the cluster as Kueue objects: ResourceFlavors,\n"
            "                          ClusterQueues, LocalQueues, WorkloadPriorityClasses;\n"
            "                          the trace's vc names a LocalQueue (policy kueue)\n"
            "  --nodes SPEC            with --kueue, as trainyard server's: e.g.\n"
            "                          '8x{cpu:32,memory:256Gi,nvidia.com/gpu:8}' (repeatable)\n"
            "  --nodes-file FILE       with --kueue: Node objects (labels, taints)\n"
            "  --gpus-per-node N       GPUs of a node (default 8)\n"
            "  --policy P              fifo, sjf, srtf, las, or kueue (default fifo; with\n"
            "                          --kueue: kueue)\n"
            "  --semantics S           trainyard (default) or helios (docs/simulate.md)\n"
            "  --restart-cost S        srtf/las: seconds added per preemption (default 0)\n"
            "  --las-thresholds LIST   las: queue thresholds in GPU-seconds, ascending "
            "(default 3200)\n"
            "  --output table|json     what to print (default table)\n"
            "  --plot FILE             write an SVG of queue length and GPU utilization\n"
            "  --cohort                all VCs one cluster: a ClusterQueue per VC in one cohort\n"
            "  --fair-sharing          with --cohort or --kueue: Kueue's fair sharing\n"
            "  --check                 check the invariants at every event\n");
}

static int parse_int(const char *opt, const char *arg, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno || end == arg || *end || v < lo || v > hi) {
        fprintf(stderr, "trainyard simulate: %s: \"%s\" is not a whole number from %" PRId64
                        " to %" PRId64 "\n", opt, arg, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_thresholds(const char *arg, int64_t *out, size_t *n)
{
    char *copy = ty_strdup(arg), *save = NULL;
    *n = 0;
    int rc = 0;
    for (char *p = strtok_r(copy, ",", &save); p && rc == 0; p = strtok_r(NULL, ",", &save)) {
        if (*n == TY_SIM_MAX_THRESHOLDS) {
            fprintf(stderr, "trainyard simulate: --las-thresholds: more than %d\n",
                    TY_SIM_MAX_THRESHOLDS);
            rc = -1;
        } else if (parse_int("--las-thresholds", p, 1, INT64_MAX / 4000, &out[*n]) < 0) {
            rc = -1;
        } else if (*n > 0 && out[*n] <= out[*n - 1]) {
            fprintf(stderr, "trainyard simulate: --las-thresholds: not ascending at %s\n", p);
            rc = -1;
        } else {
            (*n)++;
        }
    }
    if (rc == 0 && *n == 0) {
        fprintf(stderr, "trainyard simulate: --las-thresholds: empty\n");
        rc = -1;
    }
    free(copy);
    return rc;
}

int ty_cli_simulate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"trace", required_argument, NULL, 't'},      {"format", required_argument, NULL, 'F'},
        {"cluster", required_argument, NULL, 'c'},    {"nodes", required_argument, NULL, 'n'},
        {"gpus-per-node", required_argument, NULL, 'g'},
        {"policy", required_argument, NULL, 'p'},     {"semantics", required_argument, NULL, 's'},
        {"restart-cost", required_argument, NULL, 'r'},
        {"las-thresholds", required_argument, NULL, 'L'},
        {"output", required_argument, NULL, 'o'},     {"plot", required_argument, NULL, 'P'},
        {"check", no_argument, NULL, 'C'},            {"cohort", no_argument, NULL, 'K'},
        {"fair-sharing", no_argument, NULL, 'S'},            {"help", no_argument, NULL, 'h'},
        {"kueue", required_argument, NULL, 'k'},      {"nodes-file", required_argument, NULL, 'N'},
        {NULL, 0, NULL, 0},
    };
    const char *trace = NULL, *plot = NULL, *kueue = NULL;
    TY_AUTONODES json_t *nodes = NULL; /* --kueue's node list */
    int node_index = 1;
    bool policy_given = false;
    ty_sim_load_opts lo = {0};
    ty_sim_config cfg = {0};
    int64_t thr[TY_SIM_MAX_THRESHOLDS], v;
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            trace = optarg;
            break;
        case 'F':
            if (strcmp(optarg, "philly") == 0)
                lo.format = TY_SIM_FORMAT_PHILLY;
            else if (strcmp(optarg, "muri") == 0)
                lo.format = TY_SIM_FORMAT_MURI;
            else if (strcmp(optarg, "generic") == 0)
                lo.format = TY_SIM_FORMAT_GENERIC;
            else {
                fprintf(stderr, "trainyard simulate: --format: %s is not philly, muri or "
                                "generic\n", optarg);
                return 2;
            }
            break;
        case 'c':
            lo.cluster_path = optarg;
            break;
        case 'n':
            /* a count of nodes (the generated clusters), or the server's node SPEC */
            if (strchr(optarg, '{')) {
                ty_error nerr = TY_ERROR_INIT;
                if (ty_nodespec_add(&nodes, &node_index, false, optarg, &nerr) < 0) {
                    fprintf(stderr, "trainyard simulate: %s\n", nerr.msg);
                    ty_error_clear(&nerr);
                    return 2;
                }
                break;
            }
            if (parse_int("--nodes", optarg, 1, TY_SIM_MAX_NODES, &v) < 0)
                return 2;
            lo.nodes = (int32_t)v;
            break;
        case 'N': {
            ty_error nerr = TY_ERROR_INIT;
            if (ty_nodespec_add(&nodes, &node_index, true, optarg, &nerr) < 0) {
                fprintf(stderr, "trainyard simulate: %s\n", nerr.msg);
                ty_error_clear(&nerr);
                return 2;
            }
            break;
        }
        case 'k':
            kueue = optarg;
            break;
        case 'g':
            if (parse_int("--gpus-per-node", optarg, 1, 1024, &v) < 0)
                return 2;
            lo.gpus_per_node = (int32_t)v;
            break;
        case 'p':
            if (ty_sim_policy_parse(optarg, &cfg.policy) < 0) {
                fprintf(stderr, "trainyard simulate: --policy: %s is not fifo, sjf, srtf, las "
                                "or kueue\n", optarg);
                return 2;
            }
            policy_given = true;
            break;
        case 's':
            if (strcmp(optarg, "helios") != 0 && strcmp(optarg, "trainyard") != 0) {
                fprintf(stderr, "trainyard simulate: --semantics: %s is not trainyard or "
                                "helios\n", optarg);
                return 2;
            }
            cfg.helios = lo.helios = strcmp(optarg, "helios") == 0;
            break;
        case 'r':
            if (parse_int("--restart-cost", optarg, 0, 86400 * 365, &v) < 0)
                return 2;
            cfg.restart_ms = v * 1000;
            break;
        case 'L':
            if (parse_thresholds(optarg, thr, &cfg.n_las_thresholds) < 0)
                return 2;
            cfg.las_thresholds_gpu_s = thr;
            break;
        case 'o':
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "table") != 0) {
                fprintf(stderr, "trainyard simulate: --output: %s is not table or json\n",
                        optarg);
                return 2;
            }
            json = strcmp(optarg, "json") == 0;
            break;
        case 'P':
            plot = optarg;
            break;
        case 'C':
            cfg.check = true;
            break;
        case 'K':
            cfg.cohort = true;
            break;
        case 'S':
            cfg.fair_sharing = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "trainyard simulate: unexpected argument %s\n", argv[optind]);
        return 2;
    }
    if (!trace) {
        fprintf(stderr, "trainyard simulate: --trace FILE is required\n");
        return 2;
    }
    if (kueue) {
        const char *clash = lo.cluster_path ? "--cluster" : cfg.cohort ? "--cohort"
                            : lo.nodes ? "--nodes N" : NULL;
        if (clash) {
            fprintf(stderr, "trainyard simulate: %s describes a generated cluster; with --kueue "
                            "the file's queues and --nodes SPEC / --nodes-file are the "
                            "cluster\n", clash);
            return 2;
        }
        if (policy_given && cfg.policy != TY_SIM_KUEUE) {
            fprintf(stderr, "trainyard simulate: --policy %s: with --kueue the ClusterQueues' "
                            "own queueing and preemption decide (policy kueue)\n",
                    ty_sim_policy_name(cfg.policy));
            return 2;
        }
        cfg.policy = TY_SIM_KUEUE;
        lo.kueue = true;
    } else if (cfg.policy == TY_SIM_KUEUE) {
        fprintf(stderr, "trainyard simulate: --policy kueue needs --kueue FILE\n");
        return 2;
    } else if (nodes) {
        fprintf(stderr, "trainyard simulate: --nodes SPEC and --nodes-file need --kueue (without "
                        "it, --nodes N gives a count of nodes)\n");
        return 2;
    }
    if (cfg.fair_sharing && !cfg.cohort && !kueue) {
        fprintf(stderr, "trainyard simulate: --fair-sharing needs --cohort or --kueue (it shares "
                        "between queues of a cohort)\n");
        return 2;
    }
    lo.cohort = cfg.cohort;
    if (!lo.cluster_path && lo.nodes == 0 && !kueue)
        lo.nodes = 8; /* Muri's cluster: 8 nodes x 8 GPUs */
    cfg.record = plot != NULL;
    ty_sim_trace t;
    ty_error err = TY_ERROR_INIT;
    ty_sim_kueue *k = NULL;
    if (kueue && (ty_nodespec_check_unique(nodes, &err) < 0 ||
                  ty_sim_kueue_load(&k, kueue, nodes, &err) < 0)) {
        fprintf(stderr, "trainyard simulate: %s\n", err.msg);
        ty_error_clear(&err);
        return 2;
    }
    if (ty_sim_trace_load(&t, trace, &lo, &err) < 0 ||
        (k && ty_sim_kueue_bind(k, &t, lo.gpus_per_node, &err) < 0)) {
        fprintf(stderr, "trainyard simulate: %s\n", err.msg);
        ty_error_clear(&err);
        ty_sim_trace_free(&t);
        ty_sim_kueue_free(k);
        return 2;
    }
    cfg.kueue = k;
    ty_sim_result r;
    if (ty_sim_run(&t, &cfg, &r, &err) < 0) {
        fprintf(stderr, "trainyard simulate: %s\n", err.msg);
        ty_error_clear(&err);
        ty_sim_trace_free(&t);
        ty_sim_kueue_free(k);
        return 1;
    }
    int rc = 0;
    if (plot && ty_sim_plot(plot, &t, &r, &err) < 0) {
        fprintf(stderr, "trainyard simulate: %s\n", err.msg);
        ty_error_clear(&err);
        rc = 1;
    }
    if (rc == 0 && json) {
        char *doc = ty_sim_json(&t, &cfg, &r);
        printf("%s\n", doc);
        free(doc);
    } else if (rc == 0) {
        ty_sim_print_table(stdout, &t, &cfg, &r);
    }
    ty_sim_result_free(&t, &r);
    ty_sim_trace_free(&t);
    ty_sim_kueue_free(k);
    return rc;
}
