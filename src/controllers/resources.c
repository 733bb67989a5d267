#include "controllers/resources.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "base/quantity.h"

static int64_t quantity_of(const json_t *v)
{
    ty_quantity q = {0};
    if (!v || ty_quantity_from_json(v, &q, NULL) < 0)
        return 0;
    return q.milli;
}

static ty_resources resource_list(const json_t *list)
{
    return (ty_resources){
        .cpu_milli = quantity_of(json_object_get(list, "cpu")),
        .memory_milli = quantity_of(json_object_get(list, "memory")),
        .gpus = quantity_of(json_object_get(list, "nvidia.com/gpu")) / 1000,
    };
}

static ty_resources container_requests(const json_t *c)
{
    json_t *res = json_object_get(c, "resources");
    ty_resources req = resource_list(json_object_get(res, "requests"));
    ty_resources lim = resource_list(json_object_get(res, "limits"));
    json_t *reqs = json_object_get(res, "requests");
    /* Kubernetes defaults a missing request to the limit. */
    if (!json_object_get(reqs, "cpu"))
        req.cpu_milli = lim.cpu_milli;
    if (!json_object_get(reqs, "memory"))
        req.memory_milli = lim.memory_milli;
    if (!json_object_get(reqs, "nvidia.com/gpu"))
        req.gpus = lim.gpus;
    return req;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

ty_resources ty_pod_spec_requests(const json_t *spec)
{
    ty_resources sum = {0}, init = {0};
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(spec, "containers"), i, c)
        ty_resources_add(&sum, container_requests(c));
    json_array_foreach(json_object_get(spec, "initContainers"), i, c)
    {
        ty_resources r = container_requests(c);
        init.cpu_milli = max64(init.cpu_milli, r.cpu_milli);
        init.memory_milli = max64(init.memory_milli, r.memory_milli);
        init.gpus = max64(init.gpus, r.gpus);
    }
    sum.cpu_milli = max64(sum.cpu_milli, init.cpu_milli);
    sum.memory_milli = max64(sum.memory_milli, init.memory_milli);
    sum.gpus = max64(sum.gpus, init.gpus);
    return sum;
}

ty_resources ty_node_allocatable(const json_t *node)
{
    return resource_list(json_object_get(json_object_get(node, "status"), "allocatable"));
}

void ty_resources_add(ty_resources *a, ty_resources b)
{
    a->cpu_milli += b.cpu_milli;
    a->memory_milli += b.memory_milli;
    a->gpus += b.gpus;
}

void ty_resources_sub(ty_resources *a, ty_resources b)
{
    a->cpu_milli -= b.cpu_milli;
    a->memory_milli -= b.memory_milli;
    a->gpus -= b.gpus;
}

bool ty_resources_fit(ty_resources need, ty_resources avail, const char *avail_word, char *why,
                      size_t cap)
{
    char a[32], b[32];
    if (need.gpus > avail.gpus) {
        snprintf(why, cap, "nvidia.com/gpu: needs %lld, %lld %s", (long long)need.gpus,
                 (long long)(avail.gpus < 0 ? 0 : avail.gpus), avail_word);
        return false;
    }
    if (need.cpu_milli > avail.cpu_milli) {
        ty_quantity_format((ty_quantity){need.cpu_milli}, false, a, sizeof a);
        ty_quantity_format((ty_quantity){avail.cpu_milli < 0 ? 0 : avail.cpu_milli}, false, b,
                           sizeof b);
        snprintf(why, cap, "cpu: needs %s, %s %s", a, b, avail_word);
        return false;
    }
    if (need.memory_milli > avail.memory_milli) {
        ty_quantity_format((ty_quantity){need.memory_milli}, true, a, sizeof a);
        ty_quantity_format((ty_quantity){avail.memory_milli < 0 ? 0 : avail.memory_milli}, true,
                           b, sizeof b);
        snprintf(why, cap, "memory: needs %s, %s %s", a, b, avail_word);
        return false;
    }
    return true;
}

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
