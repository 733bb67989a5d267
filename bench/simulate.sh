#!/usr/bin/env bash
# trainyard simulate over the published traces (issue 16), pinned to one core:
# - the whole philly.csv (one cluster per VC of philly_vc.csv) under FIFO and SJF, ours and
#   --semantics helios; target < 2 s each. With HELIOS_DIR set to a copy of HeliosArtifact's
#   "framework/QSSF Service" prepared by bench/lib/helios_input.py, its simulator runs on the
#   same input and its time and averages are printed beside ours (docs/simulate.md).
# - the four Muri traces (64 GPUs, 8 nodes x 8) under SRTF and Tiresias-LAS, beside the
#   figures the Muri artifact publishes (docs/benchmarks.md explains each difference).
#   TRACES=/work/shared/data/traces HELIOS_DIR= MURI_RESTART=0
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build/trainyard
traces=${TRACES:-/work/shared/data/traces}
py=/usr/bin/python3
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "machine: nproc=$(nproc) cpu=\"$cpu\" load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""

timing=$(mktemp)
trap 'rm -f "$timing"' EXIT
# run NAME ARGS...: one simulation on core 0; prints its CPU time (user + system: the machine
# is shared, so wall time says more about the neighbours), wall time and overall figures.
run() {
    local name=$1
    shift
    local out
    out=$(/usr/bin/time -f "%U %S %e" -o "$timing" taskset -c 0 build/trainyard simulate "$@" \
        --output json)
    SIM_OUT=$out $py - "$name" $(cat "$timing") <<'PY'
import json, os, sys
d = json.loads(os.environ["SIM_OUT"])
o = d["overall"]
cpu = float(sys.argv[2]) + float(sys.argv[3])
print(f"{sys.argv[1]:<26} cpu {cpu:5.2f} s (wall {float(sys.argv[4]):5.2f})  jobs {o['jobs']:6d}"
      f"  avg JCT {o['avg_jct_s']:12.1f} s  avg queue {o['avg_queue_s']:10.1f} s"
      f"  p99 JCT {o['p99_jct_s']:12.1f} s  makespan {o['makespan_s']:11.1f} s"
      f"  preemptions {o['preemptions']}")
PY
}

echo "== philly.csv, one cluster per VC (philly_vc.csv), target < 2 s each"
for sem in trainyard helios; do
    for p in fifo sjf; do
        run "philly $p ($sem)" --trace "$traces/philly.csv" \
            --cluster "$traces/philly_vc.csv" --policy "$p" --semantics "$sem"
    done
done
echo "== per VC, sjf (helios semantics)"
taskset -c 0 build/trainyard simulate --trace "$traces/philly.csv" \
    --cluster "$traces/philly_vc.csv" --policy sjf --semantics helios | sed -n '3,15p'

if [ -n "${HELIOS_DIR:-}" ]; then
    echo "== Helios' simulator on the same input (one process, core 1)"
    for p in fifo sjf; do
        # it exits 1 at its very end (its summary reads every policy's log); its own log of
        # the policy is what is read below
        (cd "$HELIOS_DIR" && TZ=UTC /usr/bin/time -f "%U %S %e" -o "$timing" taskset -c 1 \
            $py simulator.py -e Philly -t ./data/Philly -s "$p" -j 1 -l ./log \
            > /dev/null 2>&1) || true
        $py - "$HELIOS_DIR" "$p" $(tail -n 1 "$timing") <<'PY'
import csv, sys
d, p = sys.argv[1], sys.argv[2]
cpu = float(sys.argv[3]) + float(sys.argv[4])
rows = list(csv.DictReader(open(f"{d}/log/Philly/all/{p}_consolidate_all_log.csv")))
jct = sum(float(r["jct"]) for r in rows) / len(rows)
que = sum(float(r["queue"]) for r in rows) / len(rows)
print(f"{'helios ' + p:<26} cpu {cpu:5.1f} s (wall {float(sys.argv[5]):5.1f})  jobs {len(rows):6d}"
      f"  avg JCT {jct:12.1f} s  avg queue {que:10.1f} s")
PY
    done
fi

echo "== philly.csv, all VCs one cluster, a ClusterQueue per VC in one cohort (Kueue)"
for p in fifo sjf; do
    run "philly $p (cohort)" --trace "$traces/philly.csv" --cluster "$traces/philly_vc.csv" \
        --policy "$p" --cohort
done

echo "== philly.csv on the same cluster written as Kueue objects (--kueue, --nodes 352x8 GPUs):"
echo "   a StrictFIFO ClusterQueue per VC (its GPUs) in one cohort; must equal fifo (cohort)"
kueue_yaml=$(mktemp --suffix=.yaml)
trap 'rm -f "$timing" "$kueue_yaml"' EXIT
$py - "$traces/philly_vc.csv" > "$kueue_yaml" <<'PY'
import csv, sys
print("apiVersion: kueue.x-k8s.io/v1beta1\nkind: ResourceFlavor\nmetadata: {name: gpu}")
for v in csv.DictReader(open(sys.argv[1])):
    n = int(v["node num"]) * 8
    print(f"---\napiVersion: kueue.x-k8s.io/v1beta1\nkind: ClusterQueue\nmetadata: {{name: vc-{v['vc']}}}\n"
          f"spec:\n  cohort: philly\n  queueingStrategy: StrictFIFO\n  resourceGroups:\n"
          f"  - coveredResources: [nvidia.com/gpu]\n    flavors:\n    - name: gpu\n"
          f"      resources: [{{name: nvidia.com/gpu, nominalQuota: {n}}}]")
    print(f"---\napiVersion: kueue.x-k8s.io/v1beta1\nkind: LocalQueue\n"
          f"metadata: {{name: '{v['vc']}'}}\nspec: {{clusterQueue: vc-{v['vc']}}}")
PY
run "philly kueue objects" --trace "$traces/philly.csv" --kueue "$kueue_yaml" \
    --nodes '352x{nvidia.com/gpu:8}'

if [ -n "${BASE_BIN:-}" ]; then
    echo "== the same with BASE_BIN=$BASE_BIN (a build to compare with), core 0"
    for args in "fifo" "sjf" "fifo --cohort" "sjf --cohort"; do
        # shellcheck disable=SC2086
        /usr/bin/time -f "%U %S %e" -o "$timing" taskset -c 0 "$BASE_BIN" simulate \
            --trace "$traces/philly.csv" --cluster "$traces/philly_vc.csv" --policy $args \
            > /dev/null
        read -r u s e < "$timing"
        echo "base philly $args: cpu $(echo "$u + $s" | bc) s (wall $e)"
    done
fi

echo "== Muri traces, 8 nodes x 8 GPUs (restart cost ${MURI_RESTART:-0} s)"
for i in 1 2 3 4; do
    run "muri trace$i srtf" --trace "$traces/muri-trace$i.csv" --nodes 8 --policy srtf \
        --restart-cost "${MURI_RESTART:-0}"
    # Muri's Tiresias-L: 3 queues at 3250 and 7200 GPU-seconds
    run "muri trace$i las" --trace "$traces/muri-trace$i.csv" --nodes 8 --policy las \
        --las-thresholds 3250,7200 --restart-cost "${MURI_RESTART:-0}"
done
