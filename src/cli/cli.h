/* The command line: one file per subcommand, dispatched from a table in cli.c. */
#ifndef TY_CLI_CLI_H
#define TY_CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>

int ty_cli_main(int argc, char **argv);

/* The subcommands, each in its own file. */
int ty_cli_run(int argc, char **argv);  /* run.c */
int ty_cli_shim(int argc, char **argv); /* shim.c */
int ty_cli_server(int argc, char **argv); /* server.c */
int ty_cli_simulate(int argc, char **argv); /* simulate.c */
int ty_cli_image(int argc, char **argv);  /* image.c */
int ty_cli_token(int argc, char **argv);  /* token.c */

/* A kubeconfig (YAML text, caller frees) for `server` ("https://host:port"), trusting
 * `ca_pem` (NULL: none, plain http), with a bearer `token` or a client certificate and key
 * (PEM) or neither, for the user named `user` (token.c). */
char *ty_cli_kubeconfig(const char *server, const char *ca_pem, const char *token,
                        const char *cert_pem, const char *key_pem, const char *user);
int ty_cli_install(int argc, char **argv); /* install.c */
/* `server --kubeconfig`/`--in-cluster`: cluster mode (cluster.c) */
typedef struct ty_cli_cluster_opts {
    const char *kubeconfig, *context;
    bool in_cluster;
    const char *listen; /* the probes' address (--listen), or NULL: none */
    double qps;
    int burst;
    bool fair_sharing;
} ty_cli_cluster_opts;
int ty_cli_server_cluster(const ty_cli_cluster_opts *o);
/* $HOME/.local/share/trainyard: the server's data directory and the image store's home */
char *ty_cli_default_data_dir(void);

/* Options `run` and `server` share. Each prints "trainyard CMD: ..." naming what is wrong and
 * returns -1 on bad input (the caller exits 2). */
/* --gpus N: a count from 0 to 1024. */
int ty_cli_gpus_option(const char *cmd, const char *arg, int *gpus);
/* Checks a --pod-cidr argument (net/podnet.h), saying what is wrong; -1 when it is bad. */
int ty_cli_pod_cidr_option(const char *cmd, const char *arg);
/* --nodes SPEC (file: false) or --nodes-file FILE (true): adds the nodes to *nodes
 * (cli/nodespec.h), numbering them from *next. */
int ty_cli_nodes_option(const char *cmd, const char *arg, bool file, json_t **nodes, int *next);

#endif
