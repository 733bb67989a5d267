/* Device check, run by hand on a machine with NVIDIA GPUs (not part of `make unit`):
 * NVML detection through dlopen, one distinct GPU per pod, the pod that does not fit refused,
 * pods without GPUs see none. Prints what it saw; exits non-zero on a mismatch.
 * Build (static, so it runs on a bare GPU machine):
 *   cc -std=gnu17 -O2 -Isrc -D_GNU_SOURCE -o build/device/gpu_check tests/device/gpu_check.c \
 *      build/libtrainyard.a -Wl,-Bstatic -luv_a -ljansson -lyaml -Wl,-Bdynamic -lpthread -ldl -lm
 *   (and build/device/trainyard the same way from build/obj/src/main.o build/libtrainyard.a)
 * Run: build/device/gpu_check <absolute path of trainyard> <state dir> */
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "base/buf.h"
#include "base/mem.h"
#include "runtime/runtime.h"

static int gone, fails;

static void on_status(void *ctx, const char *ns, const char *name, const char *uid, json_t *st,
                      bool g)
{
    (void)ctx, (void)ns, (void)uid;
    const char *ph = json_string_value(json_object_get(st, "phase"));
    if (g || (ph && (strcmp(ph, "Succeeded") == 0 || strcmp(ph, "Failed") == 0)))
        printf("pod %s: phase %s%s\n", name, ph, g ? " (gone)" : "");
    gone += g;
    json_decref(st);
}

static json_t *pod(const char *name, int gpus)
{
    TY_AUTOFREE char *code = ty_asprintf(
        "echo %s CUDA_VISIBLE_DEVICES=[$CUDA_VISIBLE_DEVICES] "
        "NVIDIA_VISIBLE_DEVICES=[$NVIDIA_VISIBLE_DEVICES]", name);
    json_t *c = json_pack("{s:s, s:[s,s,s]}", "name", "c", "command", "sh", "-c", code);
    if (gpus)
        json_object_set_new(c, "resources",
                            json_pack("{s:{s:i}}", "limits", "nvidia.com/gpu", gpus));
    return json_pack("{s:{s:s, s:s}, s:{s:s, s:[o]}}", "metadata", "name", name, "uid", name,
                     "spec", "restartPolicy", "Never", "containers", c);
}

static bool phase_done(const char *dir, const char *name)
{
    TY_AUTOFREE char *p = ty_asprintf("%s/pods/default_%s_%s/state.json", dir, name, name);
    ty_buf b = TY_BUF_INIT;
    bool done = ty_buf_read_file(&b, p) == 0 &&
                (strstr(b.data, "\"phase\":\"Succeeded\"") || strstr(b.data, "\"phase\":\"Failed\""));
    ty_buf_free(&b);
    return done;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    uv_loop_t loop;
    uv_loop_init(&loop);
    ty_runtime *rt;
    ty_error err = TY_ERROR_INIT;
    ty_runtime_config cfg = {.state_dir = argv[2], .self_exe = argv[1], .gpus = -1,
                             .pods_die_with_parent = true};
    uint64_t t0 = uv_hrtime();
    if (ty_runtime_new(&loop, &cfg, on_status, NULL, &rt, &err) < 0) {
        printf("new: %s\n", err.msg);
        return 1;
    }
    int n = ty_runtime_gpu_count(rt);
    printf("nvml: %d GPUs detected in %.1f ms\n", n, (uv_hrtime() - t0) / 1e6);
    if (n < 1)
        fails++;
    const char *names[] = {"gpu-a", "gpu-b", "nogpu"};
    int started = 0;
    for (int i = 0; i < 3; i++) {
        json_t *p = pod(names[i], i < 2 ? 1 : 0);
        int rc = ty_runtime_start_pod(rt, p, NULL, &err);
        json_decref(p);
        if (rc < 0) {
            printf("start %s refused: %s\n", names[i], err.msg);
            ty_error_clear(&err);
            if (i < n)
                fails++;
        } else {
            started++;
            if (i == 1 && n == 1)
                fails++; /* must have been refused */
        }
    }
    for (int i = 0; i < 3000; i++) {
        int done = 0;
        for (int k = 0; k < 3; k++)
            done += phase_done(argv[2], names[k]);
        if (done >= started)
            break;
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_sleep(10);
    }
    for (int k = 0; k < 3; k++) {
        TY_AUTOFREE char *lp = ty_runtime_log_path(rt, names[k], "c", 0);
        ty_buf b = TY_BUF_INIT;
        if (lp && ty_buf_read_file(&b, lp) == 0)
            printf("%s log:\n%s", names[k], b.data);
        ty_buf_free(&b);
    }
    for (int k = 0; k < 3; k++)
        ty_runtime_stop_pod(rt, names[k], 1);
    for (int i = 0; i < 1000 && gone < started; i++)
        uv_run(&loop, UV_RUN_ONCE);
    ty_runtime_free(rt);
    printf("%s\n", fails ? "FAIL" : "OK");
    return fails ? 1 : 0;
}
