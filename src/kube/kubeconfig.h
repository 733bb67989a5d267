/* Where a cluster is and how to authenticate to it: kubeconfig files and the in-cluster
 * service account, resolved into one ty_kube_config as client-go's clientcmd does.
 *
 * Files: `--kubeconfig` (one file, which must exist), else $KUBECONFIG (a ':'-separated list;
 * files that do not exist are skipped), else ~/.kube/config when it exists, else the
 * in-cluster config. Several files merge as kubectl merges them: for clusters, users and
 * contexts the first file that defines a name wins; current-context is the first file's that
 * sets one. Relative paths (certificate-authority, client-certificate, client-key, tokenFile,
 * an exec command with a '/') are relative to the file that holds them.
 * The context is `context` if given (the --context flag), else current-context. Supported:
 * clusters' server, certificate-authority(-data), insecure-skip-tls-verify, tls-server-name;
 * users' client-certificate(-data), client-key(-data), token, tokenFile, username/password,
 * and exec credential plugins (client.authentication.k8s.io/v1 and v1beta1 ExecCredential:
 * command, args, env, apiVersion); contexts' cluster, user and namespace. auth-provider
 * (the removed gcp/azure/oidc plugins) is refused with a message saying to use exec.
 *
 * In cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, and the service account's
 * token, ca.crt and namespace under /var/run/secrets/kubernetes.io/serviceaccount (below
 * `in_cluster_root` when set, for tests). The token is a file: it is read again when a
 * minute old, as the kubelet rotates it.
 *
 * Errors name the file and the field: "kubeconfig /h/.kube/config: users[0] (alice):
 * client-key-data: not base64". Loading changes nothing outside the returned value.
 *
 * Ownership: ty_kube_config_free() releases a config; NULL is fine. */
#ifndef TY_KUBE_KUBECONFIG_H
#define TY_KUBE_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define TY_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

typedef struct ty_kube_exec {
    char *command;
    char **args;    /* nargs strings */
    size_t nargs;
    char **env;     /* "NAME=value", nenv of them, added to trainyard's environment */
    size_t nenv;
    char *api_version; /* client.authentication.k8s.io/v1 or v1beta1 */
} ty_kube_exec;

/* A blob of PEM (or a file name): exactly one of data/file is set, or neither. */
typedef struct ty_kube_pem {
    char *file;
    unsigned char *data;
    size_t len;
} ty_kube_pem;

typedef struct ty_kube_config {
    char *source;         /* "kubeconfig <files>" or "in-cluster": where it came from, for messages */
    char *context;        /* the context's name; NULL in cluster */
    char *server;         /* "https://host:port", no trailing '/' */
    char *namespace_;     /* the context's namespace, else "default" */
    char *tls_server_name;
    bool insecure;        /* insecure-skip-tls-verify */
    ty_kube_pem ca, cert, key;
    char *token;          /* a static bearer token */
    char *token_file;     /* read again when a minute old */
    char *username, *password;
    ty_kube_exec *exec;

    /* The current credential, as ty_kube_config_credential() keeps it. */
    char *cached_token;
    int64_t cached_until_ns;  /* CLOCK_REALTIME; INT64_MAX: no expiry */
    ty_kube_pem exec_cert, exec_key;  /* from an ExecCredential's status, when it gives them */
} ty_kube_config;

typedef struct ty_kube_config_opts {
    const char *kubeconfig;  /* --kubeconfig: one file; NULL: $KUBECONFIG, ~/.kube/config, in cluster */
    const char *context;     /* --context; NULL: current-context */
    const char *in_cluster_root; /* prefix of the service account directory; NULL: "/" */
    bool in_cluster;         /* use the in-cluster config and no file */
} ty_kube_config_opts;

int ty_kube_config_load(const ty_kube_config_opts *opts, ty_kube_config **out, ty_error *err);
/* The in-cluster config alone (what ty_kube_config_load falls back to). */
int ty_kube_config_in_cluster(const char *root, ty_kube_config **out, ty_error *err);
void ty_kube_config_free(ty_kube_config *c);

/* The bearer token to send at `now_ns` (CLOCK_REALTIME), or NULL when there is none (client
 * certificates or basic auth): the static token, the token file's (read again when a minute
 * old), or an exec plugin's (run again once its expirationTimestamp has passed, or when
 * `refresh` says the server answered 401 to the last one). Valid until the next call.
 * The plugin runs synchronously (as client-go runs it), bounded to 30 s. */
int ty_kube_config_credential(ty_kube_config *c, int64_t now_ns, bool refresh, const char **token,
                              ty_error *err);

/* Parses an ExecCredential (the plugin's stdout) into the config's cached credential. Exposed
 * for the tests; `what` names the plugin in messages. */
int ty_kube_exec_credential_parse(ty_kube_config *c, const char *what, const char *text, size_t len,
                                  ty_error *err);

#endif
