#include "controllers/resources.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>


static long long mem_total_kib(void)
{
    FILE *f = fopen("/proc/meminfo", "re");
    long long kib = 0;
    if (!f)
        return 0;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemTotal: %lld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* uname's machine as Go (and so Kubernetes) names architectures. */
static const char *go_arch(const char *machine)
{
    if (strcmp(machine, "x86_64") == 0)
        return "amd64";
    if (strcmp(machine, "aarch64") == 0)
        return "arm64";
    if (strcmp(machine, "i686") == 0 || strcmp(machine, "i386") == 0)
        return "386";
    return machine;
}

json_t *ty_node_local(const char *name, int gpus)
{
    char cpu[16], mem[32], gpu[16];
    snprintf(cpu, sizeof cpu, "%ld", sysconf(_SC_NPROCESSORS_ONLN));
    snprintf(mem, sizeof mem, "%lldKi", mem_total_kib());
    snprintf(gpu, sizeof gpu, "%d", gpus);
    struct utsname u;
    uname(&u);
    json_t *resources = json_pack("{s:s, s:s, s:s, s:s}", "cpu", cpu, "memory", mem,
                                  "nvidia.com/gpu", gpu, "pods", "110");
    return json_pack(
        "{s:s, s:s, s:{s:s, s:{s:s, s:s, s:s}}, s:{s:o, s:O, s:[{s:s, s:s, s:s, s:s}],"
        " s:[{s:s, s:s}], s:{s:s, s:s, s:s, s:s}}}",
        "apiVersion", "v1", "kind", "Node", "metadata", "name", name, "labels",
        "kubernetes.io/hostname", name, "kubernetes.io/os", "linux", "kubernetes.io/arch",
        go_arch(u.machine), "status", "capacity",
        resources, "allocatable", resources, "conditions", "type", "Ready", "status", "True",
        "reason", "KubeletReady", "message", "trainyard node agent is ready", "addresses",
        "type", "InternalIP", "address", "127.0.0.1", "nodeInfo", "operatingSystem", "linux",
        "architecture", u.machine, "kernelVersion", u.release, "kubeletVersion",
        "trainyard");
}
