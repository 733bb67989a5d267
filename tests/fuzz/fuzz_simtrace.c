/* libFuzzer target for the simulator's trace reader (sim/trace.c): any input, read as each
 * format and with each option that changes what is accepted, must load or fail with a message
 * naming the file, never crash, leak or hit undefined behaviour; what loads is sorted and
 * within the reader's limits. Build and run: `make fuzz`. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sim/sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("trace", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    static const ty_sim_load_opts variants[] = {
        {.format = TY_SIM_FORMAT_AUTO, .nodes = 2},
        {.format = TY_SIM_FORMAT_GENERIC, .nodes = 1, .cohort = true},
        {.format = TY_SIM_FORMAT_GENERIC, .kueue = true},
        {.format = TY_SIM_FORMAT_MURI, .nodes = 8},
        {.format = TY_SIM_FORMAT_PHILLY, .kueue = true, .helios = true},
    };
    for (size_t v = 0; v < sizeof variants / sizeof *variants; v++) {
        ty_sim_trace t;
        ty_error err = TY_ERROR_INIT;
        if (ty_sim_trace_load(&t, path, &variants[v], &err) < 0) {
            if (!err.msg || !strstr(err.msg, path))
                abort(); /* every failure names the file */
            ty_error_clear(&err);
            continue;
        }
        for (size_t i = 0; i < t.n_jobs; i++) {
            const ty_sim_job *j = &t.jobs[i];
            if (j->gpus < 1 || j->duration_ms < 1 || j->submit_ms < 0 || j->vc < 0 ||
                (size_t)j->vc >= t.n_vcs || j->pclass >= (int32_t)t.n_pclasses ||
                (i > 0 && j->submit_ms < t.jobs[i - 1].submit_ms))
                abort();
        }
        ty_sim_trace_free(&t);
    }
    close(fd);
    return 0;
}
