#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cli/nodespec.h"
#include "net/podnet.h"

typedef struct ty_command {
    const char *name;
    const char *summary;
    int (*fn)(int argc, char **argv);
} ty_command;

static const ty_command commands[] = {
    {"run", "run Kubeflow jobs on this machine in the foreground", ty_cli_run},
    {"server", "serve the Kubernetes API for kubectl (embedded control plane)", ty_cli_server},
    {"simulate", "replay a job trace over the scheduler in simulated time", ty_cli_simulate},
    {"image", "load, list, remove and pull the images containers run in", ty_cli_image},
    {"token", "mint a bearer token for a user of a secure server (a kubeconfig)", ty_cli_token},
    {"install", "print the manifests (or --dockerfile) that run trainyard on a cluster",
     ty_cli_install},
    {"shim", "internal: supervise one pod", ty_cli_shim},
    {NULL, NULL, NULL},
};

#ifndef TY_VERSION
#define TY_VERSION "unknown" /* the Makefile compiles in `git describe` */
#endif

static void usage(FILE *f)
{
    fprintf(f, "usage: trainyard <command> [options]\n\ncommands:\n");
    for (const ty_command *c = commands; c->name; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "  %-10s %s\n", "help", "this text, or a command's: trainyard help <command>");
    fprintf(f, "\noptions: --version, --help\n");
}

static const ty_command *find_command(const char *name)
{
    for (const ty_command *c = commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    fprintf(stderr, "trainyard: unknown command %s (see trainyard help)\n", name);
    return NULL;
}

/* Runs command `c` with argv[0] naming it, so that getopt's own messages say
 * "trainyard run: unrecognized option" like every other error of the command. */
static int run_command(const ty_command *c, int argc, char **argv)
{
    char name[64];
    snprintf(name, sizeof name, "trainyard %s", c->name);
    argv[0] = name;
    return c->fn(argc, argv);
}

int ty_cli_main(int argc, char **argv)
{
    ty_log_init(TY_LOG_WARN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *first = argv[1];
    if (strcmp(first, "--version") == 0 || strcmp(first, "version") == 0) {
        printf("trainyard %s\n", TY_VERSION);
        return 0;
    }
    if (strcmp(first, "-h") == 0 || strcmp(first, "--help") == 0 || strcmp(first, "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return 0;
        }
        const ty_command *c = find_command(argv[2]);
        if (!c)
            return 2;
        char help[] = "--help";
        char *hargv[] = {NULL, help, NULL};
        return run_command(c, 2, hargv);
    }
    if (first[0] == '-') {
        fprintf(stderr, "trainyard: unknown option %s (see trainyard help)\n", first);
        return 2;
    }
    const ty_command *c = find_command(first);
    return c ? run_command(c, argc - 1, argv + 1) : 2;
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

int ty_cli_pod_cidr_option(const char *cmd, const char *arg)
{
    uint32_t network;
    int prefix;
    ty_error err = TY_ERROR_INIT;
    if (ty_podnet_parse_cidr(arg, &network, &prefix, &err) < 0) {
        fprintf(stderr, "trainyard %s: --pod-cidr: %s\n", cmd, err.msg);
        ty_error_clear(&err);
        return -1;
    }
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
