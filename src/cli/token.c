/* trainyard token create: a bearer token for a user of a secure server, printed as a
 * kubeconfig. The token is minted into the server's data dir (only its SHA-256 is kept there,
 * auth/token.h), where the running server finds it at its first use; nothing is asked of the
 * server itself, so this works whether it runs or not. With --client-cert, a client
 * certificate signed by the server's CA instead (nothing is stored: it cannot be revoked, so
 * it is short-lived unless asked otherwise). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/pki.h"
#include "auth/token.h"
#include "base/base64.h"
#include "base/buf.h"
#include "base/mem.h"
#include "base/time.h"
#include "cli/cli.h"

char *ty_cli_kubeconfig(const char *server, const char *ca_pem, const char *token,
                        const char *cert_pem, const char *key_pem, const char *user)
{
    ty_buf b = TY_BUF_INIT;
    ty_buf_addf(&b,
                "apiVersion: v1\n"
                "kind: Config\n"
                "clusters:\n"
                "- name: trainyard\n"
                "  cluster:\n"
                "    server: %s\n",
                server);
    if (ca_pem) {
        TY_AUTOFREE char *ca = ty_base64_encode(ca_pem, strlen(ca_pem), false);
        ty_buf_addf(&b, "    certificate-authority-data: %s\n", ca);
    }
    ty_buf_addf(&b,
                "contexts:\n"
                "- name: trainyard\n"
                "  context:\n"
                "    cluster: trainyard\n"
                "    user: %s\n"
                "    namespace: default\n"
                "current-context: trainyard\n"
                "preferences: {}\n"
                "users:\n"
                "- name: %s\n",
                user, user);
    if (token) {
        ty_buf_addf(&b, "  user:\n    token: %s\n", token);
    } else if (cert_pem && key_pem) {
        TY_AUTOFREE char *c = ty_base64_encode(cert_pem, strlen(cert_pem), false);
        TY_AUTOFREE char *k = ty_base64_encode(key_pem, strlen(key_pem), false);
        ty_buf_addf(&b, "  user:\n    client-certificate-data: %s\n    client-key-data: %s\n",
                    c, k);
    } else {
        ty_buf_adds(&b, "  user: {}\n");
    }
    return ty_buf_steal(&b);
}

/* "90s", "30m", "24h", "7d" or a number of seconds; -1 when it is none of them. */
static int64_t parse_ttl(const char *v)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || n <= 0)
        return -1;
    int64_t unit = !*end || strcmp(end, "s") == 0 ? 1
                   : strcmp(end, "m") == 0        ? 60
                   : strcmp(end, "h") == 0        ? 3600
                   : strcmp(end, "d") == 0        ? 86400
                                                  : 0;
    if (!unit || n > INT64_MAX / unit / 2)
        return -1;
    return n * unit;
}

/* The https URL of the server's own kubeconfig (DIR/kubeconfig, written at its start). */
static char *server_url_of(const char *data_dir)
{
    TY_AUTOFREE char *path = ty_asprintf("%s/kubeconfig", data_dir);
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    if (ty_buf_read_file(&b, path) < 0)
        return NULL;
    const char *p = strstr(b.data, "server: ");
    if (!p)
        return NULL;
    p += 8;
    return ty_strndup(p, strcspn(p, "\n"));
}

static void usage(FILE *f)
{
    fprintf(f, "usage: trainyard token create --user NAME [--group GROUP]... [--ttl DURATION]\n"
               "                              [--client-cert] [--data-dir DIR] [--server URL]\n"
               "\n"
               "Mints a bearer token for NAME (in the groups given) on the secure server whose\n"
               "data directory is DIR, and prints a kubeconfig that uses it. Only the token's\n"
               "SHA-256 is kept in DIR/tokens; the kubeconfig is the only copy of the token.\n"
               "\n"
               "options:\n"
               "  --user NAME       the user the token authenticates as\n"
               "  --group GROUP     a group of the user (repeatable)\n"
               "  --ttl DURATION    valid for this long (90s, 30m, 24h, 7d; default: no end, or\n"
               "                    a day for a client certificate)\n"
               "  --client-cert     a client certificate (CN NAME, O each GROUP) signed by the\n"
               "                    server's CA instead of a token\n"
               "  --data-dir DIR    the server's state directory (default\n"
               "                    $HOME/.local/share/trainyard)\n"
               "  --server URL      the address in the kubeconfig (default: the server's own,\n"
               "                    from DIR/kubeconfig)\n");
}

static int token_create(int argc, char **argv)
{
    static const struct option opts[] = {
        {"user", required_argument, NULL, 'u'},     {"group", required_argument, NULL, 'g'},
        {"ttl", required_argument, NULL, 't'},      {"data-dir", required_argument, NULL, 'd'},
        {"server", required_argument, NULL, 's'},   {"help", no_argument, NULL, 'h'},
        {"client-cert", no_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    const char *user = NULL, *server = NULL;
    TY_AUTOFREE char *data_dir = NULL;
    TY_AUTOFREE const char **groups = NULL;
    size_t ngroups = 0;
    int64_t ttl = 0;
    bool client_cert = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            user = optarg;
            break;
        case 'g':
            if (!*optarg) {
                fprintf(stderr, "trainyard token create: --group: empty group name\n");
                return 2;
            }
            groups = ty_realloc(groups, (ngroups + 1) * sizeof *groups);
            groups[ngroups++] = optarg;
            break;
        case 't':
            if ((ttl = parse_ttl(optarg)) < 0) {
                fprintf(stderr, "trainyard token create: --ttl %s: expected a duration such "
                                "as 90s, 30m, 24h or 7d\n", optarg);
                return 2;
            }
            break;
        case 'd':
            free(data_dir);
            data_dir = ty_strdup(optarg);
            break;
        case 's':
            server = optarg;
            break;
        case 'c':
            client_cert = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || !user || !*user) {
        if (!user || !*user)
            fprintf(stderr, "trainyard token create: --user is required\n");
        usage(stderr);
        return 2;
    }
    if (!data_dir)
        data_dir = ty_cli_default_data_dir();
    TY_AUTOFREE char *url = server ? ty_strdup(server) : server_url_of(data_dir);
    TY_AUTOFREE char *ca_path = ty_asprintf("%s/pki/ca.crt", data_dir);
    TY_AUTOBUF ty_buf ca = TY_BUF_INIT;
    if (!url || strncmp(url, "https://", 8) != 0 || ty_buf_read_file(&ca, ca_path) < 0) {
        fprintf(stderr, "trainyard token create: %s is not the data directory of a secure "
                        "server (no https server in %s/kubeconfig, or no %s): start `trainyard "
                        "server --data-dir %s` with TLS (--tls, or a non-loopback --listen) "
                        "first\n", data_dir, data_dir, ca_path, data_dir);
        return 1;
    }
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    int64_t now = ty_time_now_ns() / 1000000000;
    if (client_cert) {
        TY_AUTOFREE char *pki_dir = ty_asprintf("%s/pki", data_dir);
        TY_AUTOFREE char *cert = NULL, *key = NULL;
        ty_pki *pki = NULL;
        if (ty_pki_open(pki_dir, NULL, 0, now, &pki, &err) < 0 ||
            ty_pki_client_cert(pki, user, groups, ngroups, now, ttl ? ttl : 86400, &cert, &key,
                               &err) < 0) {
            ty_pki_free(pki);
            fprintf(stderr, "trainyard token create: %s\n", err.msg);
            return 1;
        }
        ty_pki_free(pki);
        TY_AUTOFREE char *kc = ty_cli_kubeconfig(url, ca.data, NULL, cert, key, user);
        fputs(kc, stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    TY_AUTOFREE char *tokens = ty_asprintf("%s/tokens", data_dir);
    TY_AUTOFREE char *token = NULL;
    int64_t expires = ttl ? now + ttl : 0;
    if (ty_token_mint(tokens, user, groups, ngroups, expires, &token, &err) < 0) {
        fprintf(stderr, "trainyard token create: %s\n", err.msg);
        return 1;
    }
    TY_AUTOFREE char *kc = ty_cli_kubeconfig(url, ca.data, token, NULL, NULL, user);
    fputs(kc, stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}

int ty_cli_token(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "create") != 0) {
        fprintf(stderr, "trainyard token: unknown command %s (only: create)\n", argv[1]);
        return 2;
    }
    return token_create(argc - 1, argv + 1);
}
