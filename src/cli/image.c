/* `trainyard image load|ls|rm|pull`: the local image store (image/image.h) of a data or state
 * directory, <dir>/images. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/mem.h"
#include "base/time.h"
#include "cli/cli.h"
#include "image/image.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trainyard image <load FILE | ls | rm REF... | pull REF> [options]\n"
            "\n"
            "The images containers run in, kept in <dir>/images (an OCI image layout).\n"
            "  load FILE   load a docker-archive (docker save) or an oci-archive (podman save\n"
            "              --format oci-archive, skopeo copy ... oci-archive:FILE)\n"
            "  ls          list the images\n"
            "  rm REF      remove an image (layers other images use stay)\n"
            "  pull REF    copy an image from its registry with skopeo\n"
            "options:\n"
            "      --data-dir DIR    the server's data directory (default\n"
            "                        $HOME/.local/share/trainyard)\n"
            "      --state-dir DIR   a `trainyard run --state-dir` directory instead\n");
}

char *ty_cli_default_data_dir(void)
{
    const char *home = getenv("HOME");
    return ty_asprintf("%s/.local/share/trainyard", home && *home ? home : ".");
}

/* docker's units.HumanSize at 3 significant digits: 4.26MB */
static void human_size(char *out, size_t n, double v)
{
    static const char *units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    int u = 0;
    while (v >= 1000 && u < 5)
        v /= 1000, u++;
    snprintf(out, n, "%.3g%s", v, units[u]);
}

/* docker's units.HumanDuration + " ago" */
static void human_ago(char *out, size_t n, const char *created)
{
    int64_t ns;
    if (!created || ty_time_parse_rfc3339(created, &ns) < 0) {
        snprintf(out, n, "N/A");
        return;
    }
    double s = (double)(ty_time_now_ns() - ns) / 1e9;
    double m = s / 60, h = m / 60 + 0.5;
    if (s < 1)
        snprintf(out, n, "Less than a second ago");
    else if ((int)s == 1)
        snprintf(out, n, "1 second ago");
    else if (s < 60)
        snprintf(out, n, "%d seconds ago", (int)s);
    else if ((int)m == 1)
        snprintf(out, n, "About a minute ago");
    else if (m < 60)
        snprintf(out, n, "%d minutes ago", (int)m);
    else if ((int)h == 1)
        snprintf(out, n, "About an hour ago");
    else if (h < 48)
        snprintf(out, n, "%d hours ago", (int)h);
    else if (h < 24 * 7 * 2)
        snprintf(out, n, "%d days ago", (int)(h / 24));
    else if (h < 24 * 30 * 2)
        snprintf(out, n, "%d weeks ago", (int)(h / 24 / 7));
    else if (h < 24 * 365 * 2)
        snprintf(out, n, "%d months ago", (int)(h / 24 / 30));
    else
        snprintf(out, n, "%d years ago", (int)(h / 24 / 365));
}

static int list(const char *dir)
{
    ty_error err = TY_ERROR_INIT;
    json_t *imgs = ty_image_list(dir, &err);
    if (!imgs) {
        fprintf(stderr, "trainyard image ls: %s\n", err.msg);
        ty_error_clear(&err);
        return 1;
    }
    printf("%-40s %-20s %-15s %-20s %s\n", "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE");
    size_t i;
    json_t *im;
    json_array_foreach(imgs, i, im) {
        const char *id = json_string_value(json_object_get(im, "id"));
        const char *tag = json_string_value(json_object_get(im, "tag"));
        char size[32], ago[64];
        human_size(size, sizeof size, (double)json_integer_value(json_object_get(im, "size")));
        human_ago(ago, sizeof ago, json_string_value(json_object_get(im, "created")));
        printf("%-40s %-20s %-15.13s %-20s %s\n",
               json_string_value(json_object_get(im, "name")), tag ? tag : "<none>",
               id && strlen(id) > 7 ? id + 7 : "<none>", ago, size);
    }
    json_decref(imgs);
    return 0;
}

int ty_cli_image(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"state-dir", required_argument, NULL, 's'},
        {"images-dir", required_argument, NULL, 'i'}, /* the store itself (the shim's pulls) */
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *base = NULL, *images = NULL;
    int c;
    /* options anywhere: getopt moves the subcommand and its arguments to the end */
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
        case 's':
            base = optarg;
            break;
        case 'i':
            images = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *sub = argv[optind++];
    TY_AUTOFREE char *def = base ? NULL : ty_cli_default_data_dir();
    TY_AUTOFREE char *dir = images ? ty_strdup(images)
                                   : ty_asprintf("%s/images", base ? base : def);
    int nargs = argc - optind;
    char **args = argv + optind;
    ty_error err = TY_ERROR_INIT;
    int rc = 0;
    if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0) {
        if (nargs) {
            fprintf(stderr, "trainyard image ls: takes no arguments\n");
            return 2;
        }
        return list(dir);
    } else if (strcmp(sub, "load") == 0) {
        if (nargs != 1) {
            fprintf(stderr, "trainyard image load: one FILE expected\n");
            return 2;
        }
        json_t *names = NULL;
        if (ty_image_load(dir, args[0], &names, &err) == 0) {
            size_t i;
            json_t *n;
            json_array_foreach(names, i, n) printf("Loaded image: %s\n", json_string_value(n));
        } else
            rc = 1;
        json_decref(names);
    } else if (strcmp(sub, "rm") == 0 || strcmp(sub, "rmi") == 0) {
        if (nargs < 1) {
            fprintf(stderr, "trainyard image rm: REF expected\n");
            return 2;
        }
        for (int i = 0; i < nargs && rc == 0; i++) {
            if (ty_image_remove(dir, args[i], &err) < 0)
                rc = 1;
            else
                printf("Deleted: %s\n", args[i]);
        }
    } else if (strcmp(sub, "pull") == 0) {
        if (nargs != 1) {
            fprintf(stderr, "trainyard image pull: one REF expected\n");
            return 2;
        }
        if (ty_image_pull(dir, args[0], &err) < 0)
            rc = 1;
        else
            printf("Image is up to date for %s\n", args[0]);
    } else {
        fprintf(stderr, "trainyard image: unknown subcommand %s (load, ls, rm, pull)\n", sub);
        return 2;
    }
    if (rc) {
        fprintf(stderr, "trainyard image %s: %s\n", sub, err.msg);
        ty_error_clear(&err);
    }
    return rc;
}
