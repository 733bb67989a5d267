#include "kube/kubeconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/manifest.h"
#include "base/base64.h"
#include "base/buf.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"

extern char **environ;

#define TOKEN_FILE_REREAD_NS (60 * (int64_t)1000000000)
#define EXEC_TIMEOUT_MS 30000
#define EXEC_OUTPUT_MAX (1 << 20)

/* One parsed file of a merge. */
typedef struct kc_file {
    char *path;
    char *dir;  /* relative paths in the file are relative to it */
    ty_manifest *m;
    json_t *root; /* NULL for an empty file */
} kc_file;

/* A named entry of clusters/users/contexts and the file it came from (first one wins). */
typedef struct kc_entry {
    const kc_file *file;
    json_t *item;     /* the list element: {name, cluster|user|context} */
    size_t index;     /* its index in the file's list, for messages */
} kc_entry;

/* Where a field is, for messages: "kubeconfig F:L: users[0] (alice): field". */
static int field_fail(ty_error *err, const kc_file *f, json_t *parent, const char *key,
                      const char *where, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int field_fail(ty_error *err, const kc_file *f, json_t *parent, const char *key,
                      const char *where, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *what = ty_vasprintf(fmt, ap);
    va_end(ap);
    ty_pos pos = parent ? ty_manifest_pos_member(f->m, parent, key, false) : (ty_pos){0, 0};
    if (pos.line)
        ty_fail(err, "kubeconfig %s:%d: %s%s%s: %s", f->path, pos.line, where, *where ? ": " : "",
                key, what);
    else
        ty_fail(err, "kubeconfig %s: %s%s%s: %s", f->path, where, *where ? ": " : "", key, what);
    free(what);
    return -1;
}

/* A string member, or NULL when absent (or null); a member of another type is an error. */
static int get_str(const kc_file *f, json_t *obj, const char *key, const char *where,
                   const char **out, ty_error *err)
{
    *out = NULL;
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return field_fail(err, f, obj, key, where, "must be a string");
    *out = json_string_value(v);
    return 0;
}

static int get_bool(const kc_file *f, json_t *obj, const char *key, const char *where, bool *out,
                    ty_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return field_fail(err, f, obj, key, where, "must be true or false");
    *out = json_is_true(v);
    return 0;
}

static char *resolve_path(const kc_file *f, const char *p)
{
    if (!p || !*p)
        return NULL;
    if (p[0] == '/' || !f->dir)
        return ty_strdup(p);
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    return ty_asprintf("%s/%s", f->dir, p);
}

static void pem_free(ty_kube_pem *p)
{
    free(p->file);
    free(p->data);
    *p = (ty_kube_pem){0};
}

/* `<name>` (a path) or `<name>-data` (base64 PEM); the data wins, as in clientcmd. */
static int get_pem(const kc_file *f, json_t *obj, const char *name, const char *where,
                   ty_kube_pem *out, ty_error *err)
{
    char data_key[64];
    snprintf(data_key, sizeof data_key, "%s-data", name);
    const char *file, *data;
    if (get_str(f, obj, name, where, &file, err) < 0 ||
        get_str(f, obj, data_key, where, &data, err) < 0)
        return -1;
    if (data && *data) {
        size_t n;
        unsigned char *bytes = ty_base64_decode(data, strlen(data), false, &n);
        if (!bytes)
            return field_fail(err, f, obj, data_key, where, "not base64");
        out->data = bytes;
        out->len = n;
        return 0;
    }
    out->file = resolve_path(f, file);
    return 0;
}

static void exec_free(ty_kube_exec *e)
{
    if (!e)
        return;
    free(e->command);
    for (size_t i = 0; i < e->nargs; i++)
        free(e->args[i]);
    free(e->args);
    for (size_t i = 0; i < e->nenv; i++)
        free(e->env[i]);
    free(e->env);
    free(e->api_version);
    free(e);
}

static int parse_exec(const kc_file *f, json_t *exec, const char *where, ty_kube_exec **out,
                      ty_error *err)
{
    char *w = ty_asprintf("%s: exec", where);
    ty_kube_exec *e = ty_calloc(1, sizeof *e);
    const char *command, *api;
    int rc = -1;
    if (!json_is_object(exec)) {
        field_fail(err, f, NULL, "exec", where, "must be a mapping");
        goto out;
    }
    if (get_str(f, exec, "command", w, &command, err) < 0 ||
        get_str(f, exec, "apiVersion", w, &api, err) < 0)
        goto out;
    if (!command || !*command) {
        field_fail(err, f, NULL, "command", w, "required");
        goto out;
    }
    if (!api || (strcmp(api, "client.authentication.k8s.io/v1") != 0 &&
                 strcmp(api, "client.authentication.k8s.io/v1beta1") != 0)) {
        field_fail(err, f, exec, "apiVersion", w,
                   "%s%s%s: want client.authentication.k8s.io/v1 or v1beta1",
                   api ? "\"" : "", api ? api : "required", api ? "\"" : "");
        goto out;
    }
    /* A command with a '/' is a path relative to the file; a bare name is looked up in PATH. */
    e->command = strchr(command, '/') ? resolve_path(f, command) : ty_strdup(command);
    e->api_version = ty_strdup(api);
    json_t *args = json_object_get(exec, "args");
    if (args && !json_is_null(args)) {
        if (!json_is_array(args)) {
            field_fail(err, f, exec, "args", w, "must be a list of strings");
            goto out;
        }
        e->args = ty_calloc(json_array_size(args) + 1, sizeof *e->args);
        size_t i;
        json_t *a;
        json_array_foreach(args, i, a) {
            if (!json_is_string(a)) {
                field_fail(err, f, exec, "args", w, "element %zu must be a string", i);
                goto out;
            }
            e->args[e->nargs++] = ty_strdup(json_string_value(a));
        }
    }
    json_t *env = json_object_get(exec, "env");
    if (env && !json_is_null(env)) {
        if (!json_is_array(env)) {
            field_fail(err, f, exec, "env", w, "must be a list of {name, value}");
            goto out;
        }
        e->env = ty_calloc(json_array_size(env) + 1, sizeof *e->env);
        size_t i;
        json_t *a;
        json_array_foreach(env, i, a) {
            json_t *n = json_object_get(a, "name"), *v = json_object_get(a, "value");
            if (!json_is_string(n) || !*json_string_value(n) || (v && !json_is_string(v))) {
                field_fail(err, f, exec, "env", w, "element %zu needs a name and a string value", i);
                goto out;
            }
            e->env[e->nenv++] = ty_asprintf("%s=%s", json_string_value(n), v ? json_string_value(v) : "");
        }
    }
    *out = e;
    e = NULL;
    rc = 0;
out:
    exec_free(e);
    free(w);
    return rc;
}

static void file_free(kc_file *f)
{
    free(f->path);
    free(f->dir);
    ty_manifest_free(f->m);
}

static int load_file(const char *path, kc_file *f, ty_error *err)
{
    *f = (kc_file){0};
    ty_error e = TY_ERROR_INIT;
    if (ty_manifest_load(path, &f->m, &e) < 0) {
        ty_fail(err, "kubeconfig %s", e.msg);
        ty_error_clear(&e);
        return -1;
    }
    f->path = ty_strdup(path);
    const char *slash = strrchr(path, '/');
    f->dir = slash ? ty_strndup(path, slash == path ? 1 : (size_t)(slash - path)) : ty_strdup(".");
    if (f->m->ndocs > 1) {
        ty_fail(err, "kubeconfig %s: more than one document", path);
        file_free(f);
        return -1;
    }
    f->root = f->m->ndocs ? f->m->docs[0].obj : NULL;
    return 0;
}

/* Adds a file's clusters, users or contexts to `names` (first definition wins). */
static int merge_list(kc_file *f, const char *list, const char *inner, ty_map *names, ty_error *err)
{
    if (!f->root)
        return 0;
    json_t *arr = json_object_get(f->root, list);
    if (!arr || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return field_fail(err, f, f->root, list, "", "must be a list");
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item) {
        char where[64];
        snprintf(where, sizeof where, "%s[%zu]", list, i);
        const char *name;
        if (!json_is_object(item))
            return field_fail(err, f, NULL, where, "", "must be a mapping");
        if (get_str(f, item, "name", where, &name, err) < 0)
            return -1;
        if (!name || !*name)
            return field_fail(err, f, NULL, "name", where, "required");
        json_t *body = json_object_get(item, inner);
        if (body && !json_is_object(body) && !json_is_null(body))
            return field_fail(err, f, item, inner, where, "must be a mapping");
        if (ty_map_gets(names, name))
            continue;
        kc_entry *e = ty_calloc(1, sizeof *e);
        *e = (kc_entry){f, item, i};
        ty_map_puts(names, name, e);
    }
    return 0;
}

static void entries_free(ty_map *m)
{
    const ty_map_slot *s;
    for (size_t i = 0; ty_map_next(m, &i, &s);)
        free(s->value);
    ty_map_free(m);
}

void ty_kube_config_free(ty_kube_config *c)
{
    if (!c)
        return;
    free(c->source);
    free(c->context);
    free(c->server);
    free(c->namespace_);
    free(c->tls_server_name);
    pem_free(&c->ca);
    pem_free(&c->cert);
    pem_free(&c->key);
    free(c->token);
    free(c->token_file);
    free(c->username);
    free(c->password);
    exec_free(c->exec);
    free(c->cached_token);
    pem_free(&c->exec_cert);
    pem_free(&c->exec_key);
    free(c);
}

static char *entry_where(const char *list, const kc_entry *e, const char *name)
{
    return ty_asprintf("%s[%zu] (%s)", list, e->index, name);
}

static int apply_cluster(ty_kube_config *c, const kc_entry *e, const char *name, ty_error *err)
{
    char *where = entry_where("clusters", e, name);
    json_t *cl = json_object_get(e->item, "cluster");
    const char *server, *sni;
    int rc = -1;
    if (!json_is_object(cl)) {
        field_fail(err, e->file, e->item, "cluster", where, "required");
        goto out;
    }
    if (get_str(e->file, cl, "server", where, &server, err) < 0 ||
        get_str(e->file, cl, "tls-server-name", where, &sni, err) < 0 ||
        get_bool(e->file, cl, "insecure-skip-tls-verify", where, &c->insecure, err) < 0 ||
        get_pem(e->file, cl, "certificate-authority", where, &c->ca, err) < 0)
        goto out;
    if (!server || !*server) {
        field_fail(err, e->file, e->item, "server", where, "required");
        goto out;
    }
    if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0) {
        field_fail(err, e->file, cl, "server", where, "\"%s\": want an http:// or https:// URL", server);
        goto out;
    }
    if (c->insecure && (c->ca.file || c->ca.data)) {
        /* clientcmd refuses this pair: it would silently ignore the CA. */
        field_fail(err, e->file, cl, "insecure-skip-tls-verify", where,
                   "cannot be set with certificate-authority; remove one");
        goto out;
    }
    size_t n = strlen(server);
    while (n > 0 && server[n - 1] == '/')
        n--;
    c->server = ty_strndup(server, n);
    c->tls_server_name = sni && *sni ? ty_strdup(sni) : NULL;
    rc = 0;
out:
    free(where);
    return rc;
}

static int apply_user(ty_kube_config *c, const kc_entry *e, const char *name, ty_error *err)
{
    char *where = entry_where("users", e, name);
    json_t *u = json_object_get(e->item, "user");
    int rc = -1;
    const char *token, *token_file, *user, *pass;
    if (!u || json_is_null(u)) {
        rc = 0; /* a user with no credentials */
        goto out;
    }
    if (json_object_get(u, "auth-provider")) {
        field_fail(err, e->file, u, "auth-provider", where,
                   "not supported (removed from kubectl); use an exec credential plugin");
        goto out;
    }
    if (get_str(e->file, u, "token", where, &token, err) < 0 ||
        get_str(e->file, u, "tokenFile", where, &token_file, err) < 0 ||
        get_str(e->file, u, "username", where, &user, err) < 0 ||
        get_str(e->file, u, "password", where, &pass, err) < 0 ||
        get_pem(e->file, u, "client-certificate", where, &c->cert, err) < 0 ||
        get_pem(e->file, u, "client-key", where, &c->key, err) < 0)
        goto out;
    bool has_cert = c->cert.file || c->cert.data, has_key = c->key.file || c->key.data;
    if (has_cert != has_key) {
        field_fail(err, e->file, u, has_cert ? "client-certificate" : "client-key", where,
                   "needs %s too", has_cert ? "client-key" : "client-certificate");
        goto out;
    }
    json_t *exec = json_object_get(u, "exec");
    if (exec && !json_is_null(exec) && parse_exec(e->file, exec, where, &c->exec, err) < 0)
        goto out;
    c->token = token && *token ? ty_strdup(token) : NULL;
    c->token_file = resolve_path(e->file, token_file);
    c->username = user && *user ? ty_strdup(user) : NULL;
    c->password = pass ? ty_strdup(pass) : NULL;
    rc = 0;
out:
    free(where);
    return rc;
}

static int resolve(kc_file *files, size_t nfiles, const char *want_context, ty_kube_config *c,
                   ty_error *err)
{
    ty_map clusters = TY_MAP_INIT, users = TY_MAP_INIT, contexts = TY_MAP_INIT;
    int rc = -1;
    const char *current = NULL;
    for (size_t i = 0; i < nfiles; i++) {
        kc_file *f = &files[i];
        if (f->root && !json_is_object(f->root)) {
            ty_fail(err, "kubeconfig %s: not a mapping", f->path);
            goto out;
        }
        if (merge_list(f, "clusters", "cluster", &clusters, err) < 0 ||
            merge_list(f, "users", "user", &users, err) < 0 ||
            merge_list(f, "contexts", "context", &contexts, err) < 0)
            goto out;
        const char *cur;
        if (f->root && get_str(f, f->root, "current-context", "", &cur, err) < 0)
            goto out;
        if (!current && f->root && cur && *cur)
            current = cur;
    }
    const char *name = want_context && *want_context ? want_context : current;
    if (!name) {
        ty_fail(err, "%s: no current-context is set (pass --context)", c->source);
        goto out;
    }
    kc_entry *ctx = ty_map_gets(&contexts, name);
    if (!ctx) {
        ty_fail(err, "%s: context \"%s\" not found", c->source, name);
        goto out;
    }
    char *where = entry_where("contexts", ctx, name);
    json_t *body = json_object_get(ctx->item, "context");
    const char *cluster = NULL, *user = NULL, *ns = NULL;
    int bad = !json_is_object(body)
                  ? field_fail(err, ctx->file, ctx->item, "context", where, "required")
                  : (get_str(ctx->file, body, "cluster", where, &cluster, err) < 0 ||
                     get_str(ctx->file, body, "user", where, &user, err) < 0 ||
                     get_str(ctx->file, body, "namespace", where, &ns, err) < 0);
    if (!bad && (!cluster || !*cluster))
        bad = field_fail(err, ctx->file, body, "cluster", where, "required");
    kc_entry *cl = bad ? NULL : ty_map_gets(&clusters, cluster);
    if (!bad && !cl)
        bad = field_fail(err, ctx->file, body, "cluster", where, "no cluster named \"%s\"", cluster);
    kc_entry *us = NULL;
    if (!bad && user && *user && !(us = ty_map_gets(&users, user)))
        bad = field_fail(err, ctx->file, body, "user", where, "no user named \"%s\"", user);
    free(where);
    if (bad)
        goto out;
    c->context = ty_strdup(name);
    c->namespace_ = ty_strdup(ns && *ns ? ns : "default");
    if (apply_cluster(c, cl, cluster, err) < 0 || (us && apply_user(c, us, user, err) < 0))
        goto out;
    rc = 0;
out:
    entries_free(&clusters);
    entries_free(&users);
    entries_free(&contexts);
    return rc;
}

static int load_files(char **paths, size_t n, const char *context, ty_kube_config **out,
                      ty_error *err)
{
    kc_file *files = ty_calloc(n ? n : 1, sizeof *files);
    size_t loaded = 0;
    ty_buf src = TY_BUF_INIT;
    ty_buf_adds(&src, "kubeconfig ");
    int rc = -1;
    ty_kube_config *c = ty_calloc(1, sizeof *c);
    for (size_t i = 0; i < n; i++) {
        if (load_file(paths[i], &files[loaded], err) < 0)
            goto out;
        ty_buf_addf(&src, "%s%s", loaded ? ":" : "", paths[i]);
        loaded++;
    }
    c->source = ty_buf_steal(&src);
    if (resolve(files, loaded, context, c, err) < 0)
        goto out;
    *out = c;
    c = NULL;
    rc = 0;
out:
    for (size_t i = 0; i < loaded; i++)
        file_free(&files[i]);
    free(files);
    ty_buf_free(&src);
    ty_kube_config_free(c);
    return rc;
}

static int read_trimmed(const char *path, char **out, ty_error *err)
{
    ty_buf b = TY_BUF_INIT;
    if (ty_buf_read_file(&b, path) < 0) {
        ty_buf_free(&b);
        return ty_fail_errno(err, errno, "read %s", path);
    }
    while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r' ||
                     b.data[b.len - 1] == ' '))
        b.data[--b.len] = 0;
    *out = ty_buf_steal(&b);
    return 0;
}

int ty_kube_config_in_cluster(const char *root, ty_kube_config **out, ty_error *err)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port)
        return ty_fail(err, "in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
                            "must be set (not running in a pod?)");
    char *dir = ty_asprintf("%s%s", root && strcmp(root, "/") ? root : "", TY_KUBE_SA_DIR);
    ty_kube_config *c = ty_calloc(1, sizeof *c);
    c->source = ty_strdup("in-cluster config");
    c->token_file = ty_asprintf("%s/token", dir);
    int rc = -1;
    char *ns = NULL, *token = NULL;
    if (read_trimmed(c->token_file, &token, err) < 0) {
        ty_error_wrap(err, "in-cluster config");
        goto out;
    }
    free(token);
    c->ca.file = ty_asprintf("%s/ca.crt", dir);
    if (access(c->ca.file, R_OK) < 0) {
        ty_fail_errno(err, errno, "in-cluster config: %s", c->ca.file);
        goto out;
    }
    char *ns_file = ty_asprintf("%s/namespace", dir);
    ty_error e = TY_ERROR_INIT;
    c->namespace_ = read_trimmed(ns_file, &ns, &e) == 0 && *ns ? ns : ty_strdup("default");
    if (c->namespace_ != ns)
        free(ns);
    ty_error_clear(&e);
    free(ns_file);
    /* An IPv6 service address needs brackets in a URL. */
    bool v6 = strchr(host, ':') != NULL;
    c->server = ty_asprintf("https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
    *out = c;
    c = NULL;
    rc = 0;
out:
    ty_kube_config_free(c);
    free(dir);
    return rc;
}

int ty_kube_config_load(const ty_kube_config_opts *opts, ty_kube_config **out, ty_error *err)
{
    if (opts->in_cluster)
        return ty_kube_config_in_cluster(opts->in_cluster_root, out, err);
    if (opts->kubeconfig) {
        char *one[] = {(char *)opts->kubeconfig};
        return load_files(one, 1, opts->context, out, err);
    }
    const char *env = getenv("KUBECONFIG");
    char **paths = NULL;
    size_t n = 0;
    int rc;
    if (env && *env) {
        /* Files that do not exist are skipped, as kubectl skips them. */
        char *copy = ty_strdup(env), *save = NULL;
        for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
            if (access(p, F_OK) < 0)
                continue;
            bool dup = false; /* a file listed twice counts once */
            for (size_t i = 0; i < n; i++)
                dup = dup || strcmp(paths[i], p) == 0;
            if (dup)
                continue;
            paths = ty_realloc(paths, (n + 1) * sizeof *paths);
            paths[n++] = ty_strdup(p);
        }
        free(copy);
    } else {
        const char *home = getenv("HOME");
        char *p = ty_asprintf("%s/.kube/config", home ? home : "");
        if (home && access(p, F_OK) == 0) {
            paths = ty_malloc(sizeof *paths);
            paths[n++] = p;
        } else {
            free(p);
        }
    }
    if (n)
        rc = load_files(paths, n, opts->context, out, err);
    else if (getenv("KUBERNETES_SERVICE_HOST"))
        rc = ty_kube_config_in_cluster(opts->in_cluster_root, out, err);
    else
        rc = ty_fail(err, "no kubeconfig: set --kubeconfig or KUBECONFIG, or create ~/.kube/config");
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    return rc;
}

/* ---- credentials ---- */

static int pem_from_string(json_t *status, const char *key, ty_kube_pem *out)
{
    json_t *v = json_object_get(status, key);
    if (!json_is_string(v) || !*json_string_value(v))
        return 0;
    out->data = (unsigned char *)ty_strdup(json_string_value(v));
    out->len = strlen(json_string_value(v));
    return 1;
}

int ty_kube_exec_credential_parse(ty_kube_config *c, const char *what, const char *text, size_t len,
                                  ty_error *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    int rc = -1;
    if (!json_is_object(root)) {
        ty_fail(err, "%s: output is not an ExecCredential: %s", what, root ? "not an object" : je.text);
        goto out;
    }
    const char *kind = json_string_value(json_object_get(root, "kind"));
    const char *api = json_string_value(json_object_get(root, "apiVersion"));
    if (!kind || strcmp(kind, "ExecCredential") != 0) {
        ty_fail(err, "%s: kind: want ExecCredential, got \"%s\"", what, kind ? kind : "");
        goto out;
    }
    if (!api || strcmp(api, c->exec->api_version) != 0) {
        ty_fail(err, "%s: apiVersion: the plugin answered \"%s\", the kubeconfig asks for \"%s\"",
                what, api ? api : "", c->exec->api_version);
        goto out;
    }
    json_t *status = json_object_get(root, "status");
    if (!json_is_object(status)) {
        ty_fail(err, "%s: status: missing", what);
        goto out;
    }
    const char *token = json_string_value(json_object_get(status, "token"));
    ty_kube_pem cert = {0}, key = {0};
    int has_cert = pem_from_string(status, "clientCertificateData", &cert);
    int has_key = pem_from_string(status, "clientKeyData", &key);
    if (has_cert != has_key) {
        pem_free(&cert);
        pem_free(&key);
        ty_fail(err, "%s: status: clientCertificateData and clientKeyData come together", what);
        goto out;
    }
    if ((!token || !*token) && !has_cert) {
        ty_fail(err, "%s: status: neither a token nor a client certificate", what);
        goto out;
    }
    int64_t until = INT64_MAX;
    json_t *exp = json_object_get(status, "expirationTimestamp");
    if (exp && !json_is_null(exp) &&
        (!json_is_string(exp) || ty_time_parse_rfc3339(json_string_value(exp), &until) < 0)) {
        pem_free(&cert);
        pem_free(&key);
        ty_fail(err, "%s: status.expirationTimestamp: not an RFC 3339 time", what);
        goto out;
    }
    free(c->cached_token);
    c->cached_token = token && *token ? ty_strdup(token) : NULL;
    c->cached_until_ns = until;
    pem_free(&c->exec_cert);
    pem_free(&c->exec_key);
    c->exec_cert = cert;
    c->exec_key = key;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* Runs the plugin with trainyard's environment plus its own and KUBERNETES_EXEC_INFO, stdin
 * from /dev/null (never interactive) and stderr passed through; reads its stdout. */
static int run_exec(ty_kube_config *c, ty_buf *out, ty_error *err)
{
    const ty_kube_exec *e = c->exec;
    size_t nenv = 0;
    while (environ[nenv])
        nenv++;
    char **envp = ty_calloc(nenv + e->nenv + 2, sizeof *envp);
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++)
        envp[k++] = environ[i];
    for (size_t i = 0; i < e->nenv; i++)
        envp[k++] = e->env[i];
    char *info = ty_asprintf("KUBERNETES_EXEC_INFO={\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\","
                             "\"spec\":{\"interactive\":false}}",
                             e->api_version);
    envp[k++] = info;
    char **argv = ty_calloc(e->nargs + 2, sizeof *argv);
    argv[0] = e->command;
    for (size_t i = 0; i < e->nargs; i++)
        argv[i + 1] = e->args[i];

    int pipefd[2] = {-1, -1};
    int rc = -1;
    pid_t pid = -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        ty_fail_errno(err, errno, "exec plugin %s: pipe", e->command);
        goto out;
    }
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    int serr = posix_spawnp(&pid, e->command, &fa, NULL, argv, envp);
    close(pipefd[1]);
    pipefd[1] = -1;
    if (serr) {
        pid = -1;
        ty_fail_errno(err, serr, "exec plugin %s", e->command);
        goto out;
    }
    int64_t deadline = ty_time_mono_ns() + (int64_t)EXEC_TIMEOUT_MS * 1000000;
    for (;;) {
        int64_t left_ms = (deadline - ty_time_mono_ns()) / 1000000;
        struct pollfd p = {pipefd[0], POLLIN, 0};
        int n = left_ms > 0 ? poll(&p, 1, (int)left_ms) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            kill(pid, SIGKILL);
            ty_fail(err, "exec plugin %s: no answer within %d s", e->command, EXEC_TIMEOUT_MS / 1000);
            goto out;
        }
        char chunk[4096];
        ssize_t r = read(pipefd[0], chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        ty_buf_add(out, chunk, (size_t)r);
        if (out->len > EXEC_OUTPUT_MAX) {
            kill(pid, SIGKILL);
            ty_fail(err, "exec plugin %s: output over %d bytes", e->command, EXEC_OUTPUT_MAX);
            goto out;
        }
    }
    rc = 0;
out:
    if (pid > 0) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            rc = WIFEXITED(status)
                     ? ty_fail(err, "exec plugin %s: exit status %d", e->command, WEXITSTATUS(status))
                     : ty_fail(err, "exec plugin %s: killed by signal %d", e->command, WTERMSIG(status));
    }
    posix_spawn_file_actions_destroy(&fa);
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    free(argv);
    free(info);
    free(envp);
    return rc;
}

int ty_kube_config_credential(ty_kube_config *c, int64_t now_ns, bool refresh, const char **token,
                              ty_error *err)
{
    *token = NULL;
    if (c->token) {
        *token = c->token;
        return 0;
    }
    bool fresh = (c->cached_token || c->exec_cert.data) && now_ns < c->cached_until_ns && !refresh;
    if (c->exec) {
        if (!fresh) {
            ty_buf out = TY_BUF_INIT;
            char *what = ty_asprintf("exec plugin %s", c->exec->command);
            int rc = run_exec(c, &out, err);
            if (rc == 0)
                rc = ty_kube_exec_credential_parse(c, what, out.data, out.len, err);
            free(what);
            ty_buf_free(&out);
            if (rc < 0)
                return -1;
        }
        *token = c->cached_token;
        return 0;
    }
    if (c->token_file) {
        if (!fresh) {
            char *t;
            if (read_trimmed(c->token_file, &t, err) < 0) {
                /* A token read earlier still serves while the file is being replaced. */
                if (c->cached_token) {
                    *token = c->cached_token;
                    ty_error_clear(err);
                    return 0;
                }
                return ty_error_wrap(err, "%s: tokenFile", c->source);
            }
            free(c->cached_token);
            c->cached_token = t;
            c->cached_until_ns = now_ns + TOKEN_FILE_REREAD_NS;
        }
        *token = c->cached_token;
    }
    return 0;
}
