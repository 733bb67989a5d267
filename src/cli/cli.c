#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"

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
