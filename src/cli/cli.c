#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cli/nodespec.h"

typedef struct ty_command {
    const char *name;
    const char *summary;
    int (*fn)(int argc, char **argv);
} ty_command;

static const ty_command commands[] = {
    {"run", "run Kubeflow jobs on this machine in the foreground", ty_cli_run},
    {"server", "serve the Kubernetes API for kubectl (embedded control plane)", ty_cli_server},
    {"shim", "internal: supervise one pod", ty_cli_shim},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: trainyard <command> [options]\n\ncommands:\n");
    for (const ty_command *c = commands; c->name; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
}

int ty_cli_main(int argc, char **argv)
{
    ty_log_init(TY_LOG_WARN);
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (const ty_command *c = commands; c->name; c++)
        if (strcmp(c->name, argv[1]) == 0)
            return c->fn(argc - 1, argv + 1);
    fprintf(stderr, "trainyard: unknown command %s\n", argv[1]);
    usage(stderr);
    return 2;
}

int ty_cli_gpus_option(const char *cmd, const char *arg, int *gpus)
{
    char *end;
    long n = strtol(arg, &end, 10);
    if (*end || n < 0 || n > 1024) {
        fprintf(stderr, "trainyard %s: --gpus: not a count: %s\n", cmd, arg);
        return -1;
    }
    *gpus = (int)n;
    return 0;
}

int ty_cli_nodes_option(const char *cmd, const char *arg, bool file, json_t **nodes, int *next)
{
    ty_error err = TY_ERROR_INIT;
    if (ty_nodespec_add(nodes, next, file, arg, &err) < 0) {
        fprintf(stderr, "trainyard %s: %s\n", cmd, err.msg);
        ty_error_clear(&err);
        return -1;
    }
    return 0;
}
