"""trainyard simulate through the real binary: hand-computed JCTs in the table and the JSON,
the JSON's keys, rows it cannot use, determinism, bad input, the plot."""
import json
import os
import subprocess

import pytest

from conftest import trainyard_bin

TRACES = "/work/shared/data/traces"
KEYS = {"jobs", "avg_jct_s", "p50_jct_s", "p99_jct_s", "avg_queue_s", "makespan_s",
        "gpu_utilization", "preemptions"}


def simulate(*args, check=True):
    p = subprocess.run([trainyard_bin(), "simulate", *args], capture_output=True, text=True,
                       timeout=120)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# One node of 4 GPUs: A holds it 0-10 s; B (2 GPUs, 5 s), C (1 GPU, 2 s), D (4 GPUs, 1 s).
FOUR = "submit_s,duration_s,gpus\n0,10,4\n1,5,2\n2,2,1\n3,1,4\n"
# JCTs: fifo A 10, B 14, C 10, D 13; sjf A 10, D 8, C 11, B 15.
EXPECTED = {"fifo": (47 / 4, 29 / 4), "sjf": (44 / 4, 26 / 4)}


@pytest.mark.parametrize("policy", ["fifo", "sjf"])
def test_hand_computed_jct(tmp_path, policy):
    trace = write(tmp_path, "four.csv", FOUR)
    out = json.loads(simulate("--trace", trace, "--nodes", "1", "--gpus-per-node", "4",
                              "--policy", policy, "--output", "json", "--check").stdout)
    assert out["policy"] == policy
    assert set(out["overall"]) == KEYS
    assert set(out["per_vc"]) == {"default"}
    assert set(out["per_vc"]["default"]) == KEYS
    jct, queue = EXPECTED[policy]
    assert out["overall"]["avg_jct_s"] == pytest.approx(jct)
    assert out["overall"]["avg_queue_s"] == pytest.approx(queue)
    assert out["overall"]["jobs"] == 4
    assert out["overall"]["makespan_s"] == 16


def test_srtf_restart_cost(tmp_path):
    trace = write(tmp_path, "two.csv", "submit_s,duration_s,gpus\n0,10,4\n2,3,4\n")
    out = json.loads(simulate("--trace", trace, "--nodes", "1", "--gpus-per-node", "4",
                              "--policy", "srtf", "--restart-cost", "1", "--output", "json",
                              "--check").stdout)
    # B preempts A at 2 and ends at 5; A resumes with 8 s + 1 s to go: ends at 14
    assert out["overall"]["preemptions"] == 1
    assert out["overall"]["avg_jct_s"] == pytest.approx((14 + 3) / 2)


def test_rows_it_cannot_use_are_reported(tmp_path):
    vcs = write(tmp_path, "vc.csv", "vc,nodes\na,1\nb,2\n")
    trace = write(tmp_path, "t.csv", "submit_s,duration_s,gpus,vc\n0,10,1,a\n1,10,9,a\n"
                                     "2,5,2,nope\n3,5,16,b\n4,0,1,b\n")
    out = json.loads(simulate("--trace", trace, "--cluster", vcs, "--output", "json").stdout)
    assert out["skipped"] == {"unknown_vc": 1, "too_large": 1, "zero_gpu": 0,
                              "zero_duration": 1, "out_of_window": 0}
    assert out["per_vc"]["a"]["jobs"] == 1 and out["per_vc"]["b"]["jobs"] == 1
    table = simulate("--trace", trace, "--cluster", vcs).stdout
    assert "1 unknown vc, 1 larger than their cluster" in table


def test_bad_input_names_line_and_field(tmp_path):
    trace = write(tmp_path, "bad.csv", "submit_s,duration_s,gpus\n0,10,1\n5,ten,1\n")
    p = simulate("--trace", trace, check=False)
    assert p.returncode == 2
    assert f"{trace}:3: field duration" in p.stderr
    assert p.stdout == ""
    p = simulate("--trace", trace, "--policy", "lottery", check=False)
    assert p.returncode == 2 and "--policy: lottery" in p.stderr


def test_plot_is_svg(tmp_path):
    trace = write(tmp_path, "four.csv", FOUR)
    svg = tmp_path / "p.svg"
    simulate("--trace", trace, "--nodes", "1", "--gpus-per-node", "4", "--plot", str(svg))
    text = svg.read_text()
    assert text.startswith("<svg") and text.rstrip().endswith("</svg>")
    assert text.count("<polyline") == 4  # pending and utilization: overall and the one VC


@pytest.mark.skipif(not os.path.exists(f"{TRACES}/philly.csv"), reason="no shared traces")
def test_philly_deterministic_and_complete():
    args = ["--trace", f"{TRACES}/philly.csv", "--cluster", f"{TRACES}/philly_vc.csv",
            "--policy", "sjf", "--output", "json"]
    # the second run checks the invariants at every event, which must change nothing
    a, b = simulate(*args).stdout, simulate(*args, "--check").stdout
    assert a == b
    out = json.loads(a)
    assert out["overall"]["jobs"] == 82247 - 18
    assert out["skipped"]["unknown_vc"] == 18
    assert len(out["per_vc"]) == 11
    assert sum(v["jobs"] for v in out["per_vc"].values()) == out["overall"]["jobs"]


def test_cohort_borrows_between_vcs(tmp_path):
    vcs = write(tmp_path, "vc.csv", "vc,nodes\na,1\nb,1\n")
    trace = write(tmp_path, "t.csv", "submit_s,duration_s,gpus,vc\n0,10,4,a\n1,5,4,a\n2,3,4,b\n")
    base = ["--trace", trace, "--cluster", vcs, "--gpus-per-node", "4", "--output", "json",
            "--check"]
    alone = json.loads(simulate(*base).stdout)
    together = json.loads(simulate(*base, "--cohort").stdout)
    # alone a's second job waits until 10 (JCT 14); in the cohort it borrows b's node at 1
    # (JCT 5), and b's job waits for it until 6 (JCT 7)
    assert alone["per_vc"]["a"]["avg_jct_s"] == pytest.approx((10 + 14) / 2)
    assert together["per_vc"]["a"]["avg_jct_s"] == pytest.approx((10 + 5) / 2)
    assert together["per_vc"]["b"]["avg_jct_s"] == pytest.approx(7)
    fair = json.loads(simulate(*base, "--cohort", "--fair-sharing").stdout)
    assert fair["overall"]["jobs"] == 3
    p = simulate(*base, "--fair-sharing", check=False)
    assert p.returncode == 2 and "--fair-sharing needs --cohort" in p.stderr


def test_plot_escapes_vc_names(tmp_path):
    trace = write(tmp_path, "t.csv", "submit_s,duration_s,gpus,vc\n0,10,1,a<b&c\n")
    svg = tmp_path / "p.svg"
    simulate("--trace", trace, "--nodes", "1", "--plot", str(svg))
    text = svg.read_text()
    assert "a&lt;b&amp;c" in text and "a<b" not in text


@pytest.mark.skipif(not os.path.exists(f"{TRACES}/muri-trace3.csv"), reason="no shared traces")
@pytest.mark.parametrize("policy", ["srtf", "las"])
def test_muri_preemptive_with_invariants(policy):
    out = json.loads(simulate("--trace", f"{TRACES}/muri-trace3.csv", "--policy", policy,
                              "--restart-cost", "30", "--output", "json", "--check").stdout)
    assert out["overall"]["jobs"] == 992
    assert out["overall"]["preemptions"] > 0
    assert 0 < out["overall"]["gpu_utilization"] <= 1


def test_helios_semantics_head_of_line_and_remainder(tmp_path):
    # one node of 4 GPUs: A 0-10 on 3; B (4 GPUs, 1 s) heads SJF's queue and, under Helios'
    # semantics, blocks C (1 GPU, 5 s) until it has run: C ends at 7 ours, 16 Helios'
    trace = write(tmp_path, "t.csv", "submit_s,duration_s,gpus\n0,10,3\n1,1,4\n2,5,1\n")
    base = ["--trace", trace, "--nodes", "1", "--gpus-per-node", "4", "--policy", "sjf",
            "--output", "json"]
    ours = json.loads(simulate(*base).stdout)
    helios = json.loads(simulate(*base, "--semantics", "helios").stdout)
    assert ours["overall"]["avg_jct_s"] == pytest.approx((10 + 10 + 5) / 3)
    assert helios["overall"]["avg_jct_s"] == pytest.approx((10 + 10 + 14) / 3)
    assert helios["semantics"] == "helios"
    # 3 nodes of 8: a 12-GPU gang's 4 beyond a node go best fit (next to the 4-GPU job) ours,
    # on the emptiest node Helios', where the 8-GPU job then waits until 10
    trace = write(tmp_path, "g.csv", "submit_s,duration_s,gpus\n0,10,4\n0,20,12\n1,5,8\n")
    base = ["--trace", trace, "--nodes", "3", "--output", "json"]
    ours = json.loads(simulate(*base).stdout)
    helios = json.loads(simulate(*base, "--semantics", "helios").stdout)
    assert ours["overall"]["avg_jct_s"] == pytest.approx((10 + 20 + 5) / 3)
    assert helios["overall"]["avg_jct_s"] == pytest.approx((10 + 20 + 14) / 3)


def test_limits_on_what_a_file_asks(tmp_path):
    vcs = write(tmp_path, "vc.csv", "vc,nodes\na,100000\nb,100000\n")
    trace = write(tmp_path, "t.csv", "submit_s,duration_s,gpus,vc\n0,10,1,a\n")
    p = simulate("--trace", trace, "--cluster", vcs, "--cohort", check=False)
    assert p.returncode == 1 and "200000 nodes, more than 100000" in p.stderr
    big = write(tmp_path, "big.csv", "vc,nodes\na,100001\n")
    p = simulate("--trace", trace, "--cluster", big, check=False)
    assert p.returncode == 2 and f"{big}:2: field nodes" in p.stderr
    assert json.loads(simulate("--trace", trace, "--cluster", vcs, "--output",
                               "json").stdout)["overall"]["jobs"] == 1


# ---- a cluster given as Kueue objects (--kueue) and nodes (--nodes SPEC / --nodes-file) ----

def kueue_objects(*docs):
    return "\n---\n".join(docs) + "\n"


def flavor(name, labels=None):
    text = f"apiVersion: kueue.x-k8s.io/v1beta1\nkind: ResourceFlavor\nmetadata:\n  name: {name}\n"
    if labels:
        text += "spec:\n  nodeLabels:\n" + "".join(f"    {k}: {v}\n" for k, v in labels.items())
    return text


def cluster_queue(name, quotas, cohort=None, extra=""):
    """quotas: [(flavor, nominal GPUs)]."""
    flavors = "".join(f"    - name: {f}\n      resources:\n      - name: nvidia.com/gpu\n"
                      f"        nominalQuota: {q}\n" for f, q in quotas)
    return (f"apiVersion: kueue.x-k8s.io/v1beta1\nkind: ClusterQueue\nmetadata:\n  name: {name}\n"
            f"spec:\n" + (f"  cohort: {cohort}\n" if cohort else "") + extra +
            "  resourceGroups:\n  - coveredResources: [nvidia.com/gpu]\n    flavors:\n" + flavors)


def local_queue(name, cq, namespace=None):
    return (f"apiVersion: kueue.x-k8s.io/v1beta1\nkind: LocalQueue\nmetadata:\n  name: {name}\n"
            + (f"  namespace: {namespace}\n" if namespace else "") +
            f"spec:\n  clusterQueue: {cq}\n")


def priority_class(name, value):
    return (f"apiVersion: kueue.x-k8s.io/v1beta1\nkind: WorkloadPriorityClass\n"
            f"metadata:\n  name: {name}\nvalue: {value}\n")


TWO_NODES = "2x{cpu:32,memory:256Gi,nvidia.com/gpu:8}"


def test_kueue_cohort_borrowing_and_reclaim(tmp_path):
    # a and b lend 8 GPUs each in cohort org, on 2 nodes of 8. a's 16-GPU job (0-100 s)
    # borrows b's 8; at 10 b's 8-GPU job takes them back (reclaimWithinCohort Any): it runs
    # 10-60, a's job restarts at 60 with 90 s to go and ends at 150. Without reclaim b waits
    # for a's job: 100-150. A 24-GPU job is more than the cohort can ever give, a row of an
    # unknown queue has none: both counted.
    def objects(reclaim):
        extra = "  preemption:\n    reclaimWithinCohort: Any\n" if reclaim else ""
        return write(tmp_path, f"c{reclaim}.yaml", kueue_objects(
            flavor("gpu"), cluster_queue("a", [("gpu", 8)], "org"),
            cluster_queue("b", [("gpu", 8)], "org", extra),
            local_queue("team-a", "a"), local_queue("team-b", "b", "ml")))
    trace = write(tmp_path, "t.csv", "submit_s,duration_s,gpus,vc\n0,100,16,team-a\n"
                                     "10,50,8,ml/team-b\n20,5,24,team-a\n30,5,1,nobody\n")
    base = ["--trace", trace, "--nodes", TWO_NODES, "--output", "json", "--check"]
    out = json.loads(simulate(*base, "--kueue", objects(True)).stdout)
    assert out["policy"] == "kueue"
    assert set(out["per_vc"]) == {"team-a", "ml/team-b"}
    assert out["per_vc"]["team-a"]["avg_jct_s"] == 150
    assert out["per_vc"]["team-a"]["avg_queue_s"] == 50
    assert out["per_vc"]["team-a"]["preemptions"] == 1
    assert out["per_vc"]["ml/team-b"]["avg_jct_s"] == 50
    assert out["per_vc"]["ml/team-b"]["avg_queue_s"] == 0
    # a's queue has 8 nominal GPUs: 16 x 10 + 16 x 90 GPU-s over 150 s is 133 %
    assert out["per_vc"]["team-a"]["gpu_utilization"] == pytest.approx(1600 / (8 * 150))
    assert out["skipped"]["too_large"] == 1 and out["skipped"]["unknown_vc"] == 1
    out = json.loads(simulate(*base, "--kueue", objects(False)).stdout)
    assert out["per_vc"]["team-a"]["avg_jct_s"] == 100
    assert out["per_vc"]["ml/team-b"]["avg_jct_s"] == 140
    assert out["overall"]["preemptions"] == 0
    table = simulate("--trace", trace, "--nodes", TWO_NODES, "--kueue", objects(True)).stdout
    assert "policy kueue" in table and "1 unknown vc, 1 larger than their cluster" in table
    # a borrowingLimit of 4: a's 16-GPU job can never get more than 12, so it is counted too
    limited = write(tmp_path, "limited.yaml", open(objects(False)).read().replace(
        "        nominalQuota: 8\n", "        nominalQuota: 8\n        borrowingLimit: 4\n", 1))
    out = json.loads(simulate(*base, "--kueue", limited).stdout)
    assert out["skipped"]["too_large"] == 2
    assert out["per_vc"]["team-a"]["jobs"] == 0
    assert out["per_vc"]["ml/team-b"]["avg_jct_s"] == 50


def test_kueue_priorities_and_strict_fifo(tmp_path):
    # one queue of 8 GPUs preempting lower priorities: low (0-100 s) is preempted at 10 by
    # high (10-30 s) and runs its 90 s left from 30 (+2 s restart cost): JCTs 20 and 122.
    # Under StrictFIFO without preemption a 1-GPU job behind a waiting 8-GPU one waits too.
    objects = write(tmp_path, "p.yaml", kueue_objects(
        flavor("gpu"),
        cluster_queue("c", [("gpu", 8)], extra="  preemption:\n"
                      "    withinClusterQueue: LowerPriority\n"),
        cluster_queue("s", [("gpu", 8)], extra="  queueingStrategy: StrictFIFO\n"),
        local_queue("c", "c"), local_queue("s", "s"),
        priority_class("high", 1000), priority_class("low", 10)))
    trace = write(tmp_path, "t.csv", "submit_s,duration_s,gpus,vc,priority_class\n"
                                     "0,100,8,c,low\n10,20,8,c,high\n"
                                     "0,10,4,s,\n1,10,8,s,\n2,1,1,s,\n")
    out = json.loads(simulate("--trace", trace, "--kueue", objects, "--nodes", TWO_NODES,
                              "--restart-cost", "2", "--output", "json", "--check").stdout)
    assert out["per_vc"]["c"]["avg_jct_s"] == pytest.approx((122 + 20) / 2)
    assert out["per_vc"]["c"]["preemptions"] == 1
    # s: 4 GPUs 0-10; the 8-GPU job waits for them (10-20), the 1-GPU job behind it too
    # (StrictFIFO): 20-21, JCT 19 - BestEffortFIFO would run it at 2
    assert out["per_vc"]["s"]["avg_jct_s"] == pytest.approx((10 + 19 + 19) / 3)
    assert out["per_vc"]["s"]["preemptions"] == 0


def test_kueue_flavors_follow_node_labels(tmp_path):
    # one queue with a100 (8 GPUs of quota) then h100 (16): 1 node of each, 8 GPUs each.
    # Three 8-GPU jobs at 0: one per flavor's node, the third waits for the first to end
    # (the h100 quota is left, its nodes are not). JCTs 10, 10, 20.
    nodes = write(tmp_path, "nodes.yaml", "".join(
        f"---\napiVersion: v1\nkind: Node\nmetadata:\n  name: {n}\n  labels:\n"
        f"    gpu: {g}\nstatus:\n  capacity:\n    nvidia.com/gpu: 8\n"
        for n, g in [("a1", "a100"), ("h1", "h100")]))
    objects = write(tmp_path, "f.yaml", kueue_objects(
        flavor("a100", {"gpu": "a100"}), flavor("h100", {"gpu": "h100"}),
        cluster_queue("q", [("a100", 8), ("h100", 16)]), local_queue("q", "q")))
    trace = write(tmp_path, "t.csv", "submit_s,duration_s,gpus,vc\n0,10,8,q\n0,10,8,q\n"
                                     "0,10,8,q\n0,10,16,q\n")
    out = json.loads(simulate("--trace", trace, "--kueue", objects, "--nodes-file", nodes,
                              "--output", "json", "--check").stdout)
    assert out["overall"]["jobs"] == 3
    assert out["overall"]["avg_jct_s"] == pytest.approx((10 + 10 + 20) / 3)
    # 16 GPUs would need both flavors' nodes: a pod set takes one flavor, so it never fits
    assert out["skipped"]["too_large"] == 1


def test_kueue_fair_sharing_follows_weights(tmp_path):
    # pool lends 16 GPUs to x (weight 1) and y (weight 3), which have no quota; 16 one-GPU
    # jobs each at 0 (x's first in the file). Without fair sharing x's go first (queued_at,
    # then key); with it y gets 3 of every 4 GPUs borrowed.
    objects = write(tmp_path, "fs.yaml", kueue_objects(
        flavor("gpu"), cluster_queue("pool", [("gpu", 16)], "org"),
        cluster_queue("x", [("gpu", 0)], "org", "  fairSharing:\n    weight: 1\n"),
        cluster_queue("yy", [("gpu", 0)], "org", "  fairSharing:\n    weight: 3\n"),
        local_queue("x", "x"), local_queue("yy", "yy")))
    # (not "y": YAML 1.1 reads it as true, and the schema says so)
    rows = "".join(f"0,100,1,{q}\n" for q in ["x"] * 16 + ["yy"] * 16)
    trace = write(tmp_path, "t.csv", "submit_s,duration_s,gpus,vc\n" + rows)
    base = ["--trace", trace, "--kueue", objects, "--nodes", TWO_NODES, "--output", "json",
            "--check"]
    plain = json.loads(simulate(*base).stdout)
    assert plain["per_vc"]["x"]["avg_queue_s"] == 0
    assert plain["per_vc"]["yy"]["avg_queue_s"] == 100
    fair = json.loads(simulate(*base, "--fair-sharing").stdout)
    # y: 12 start at 0 and 4 at 100; x: 4 at 0 and 12 at 100
    assert fair["per_vc"]["yy"]["avg_queue_s"] == pytest.approx(100 * 4 / 16)
    assert fair["per_vc"]["x"]["avg_queue_s"] == pytest.approx(100 * 12 / 16)


def test_kueue_bad_objects_name_file_line_field(tmp_path):
    trace = write(tmp_path, "t.csv", "submit_s,duration_s,gpus,vc,priority_class\n"
                                     "0,10,1,q,urgent\n")
    bad = write(tmp_path, "bad.yaml", kueue_objects(
        flavor("gpu"), cluster_queue("q", [("gpux", -8)]), local_queue("q", "nope"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n"))
    p = simulate("--trace", trace, "--kueue", bad, "--nodes", TWO_NODES, check=False)
    assert p.returncode == 2 and p.stdout == ""
    assert (f"{bad}:18:23: spec.resourceGroups[0].flavors[0].resources[0].nominalQuota: "
            "Invalid value") in p.stderr
    assert f"{bad}:30:7: kind: Pod is not one of ResourceFlavor" in p.stderr
    # references are checked once every object is valid
    refs = write(tmp_path, "refs.yaml", kueue_objects(
        flavor("gpu"), cluster_queue("q", [("gpux", 8)]), local_queue("q", "nope")))
    p = simulate("--trace", trace, "--kueue", refs, "--nodes", TWO_NODES, check=False)
    assert p.returncode == 2
    assert f"{refs}:15:13: spec.resourceGroups[0].flavors[0].name: ResourceFlavor gpux" in p.stderr
    assert f"{refs}:26:17: spec.clusterQueue: ClusterQueue nope is not in the file" in p.stderr
    good = write(tmp_path, "good.yaml", kueue_objects(
        flavor("gpu"), cluster_queue("q", [("gpu", 8)]), local_queue("q", "q")))
    p = simulate("--trace", trace, "--kueue", good, "--nodes", TWO_NODES, check=False)
    assert p.returncode == 2
    assert f"{trace}:2: field priority_class: WorkloadPriorityClass urgent" in p.stderr
    for args, why in [([], "no nodes"), (["--nodes", "2x{nvidia.com/gpu:x}"], "--nodes"),
                      (["--nodes", TWO_NODES, "--policy", "sjf"], "policy kueue"),
                      (["--nodes", TWO_NODES, "--cohort"], "--cohort describes")]:
        p = simulate("--trace", trace, "--kueue", good, *args, check=False)
        assert p.returncode == 2 and why in p.stderr, (args, p.stderr)
    p = simulate("--trace", trace, "--nodes", TWO_NODES, check=False)
    assert p.returncode == 2 and "need --kueue" in p.stderr


def test_cohort_runs_a_job_larger_than_its_own_vc(tmp_path):
    # a has 1 node of 4, b 2: a's 8-GPU job borrows b's quota in the cohort (alone it is too
    # large for a); 16 GPUs are more than all 3 nodes: counted, not dropped silently
    vcs = write(tmp_path, "vc.csv", "vc,nodes\na,1\nb,2\n")
    trace = write(tmp_path, "t.csv", "submit_s,duration_s,gpus,vc\n0,10,8,a\n1,10,16,a\n")
    base = ["--trace", trace, "--cluster", vcs, "--gpus-per-node", "4", "--output", "json",
            "--check"]
    alone = json.loads(simulate(*base).stdout)
    assert alone["overall"]["jobs"] == 0 and alone["skipped"]["too_large"] == 2
    together = json.loads(simulate(*base, "--cohort").stdout)
    assert together["overall"]["jobs"] == 1 and together["skipped"]["too_large"] == 1
    assert together["per_vc"]["a"]["avg_jct_s"] == 10


def test_kueue_objects_equal_the_generated_cohort(tmp_path):
    # --cohort's cluster written as Kueue objects (a StrictFIFO ClusterQueue per VC of its
    # nodes' GPUs in one cohort, a LocalQueue per VC, the same nodes) gives the same figures:
    # both go through the same core, one from the server's snapshot code
    import random
    rnd = random.Random(7)
    sizes = {"a": 2, "b": 1, "c": 3}
    rows = "".join(f"{rnd.randrange(0, 4000)},{rnd.randrange(1, 900)},"
                   f"{rnd.choice([1, 2, 4, 8, 8, 16])},{rnd.choice('abc')}\n" for _ in range(400))
    trace = write(tmp_path, "t.csv", "submit_s,duration_s,gpus,vc\n" + rows)
    vcs = write(tmp_path, "vc.csv", "vc,nodes\n" + "".join(f"{v},{n}\n" for v, n in sizes.items()))
    docs = [flavor("gpu")]
    for v, n in sizes.items():
        docs += [cluster_queue(f"cq-{v}", [("gpu", 8 * n)], "all",
                               "  queueingStrategy: StrictFIFO\n"), local_queue(v, f"cq-{v}")]
    objects = write(tmp_path, "k.yaml", kueue_objects(*docs))
    generated = json.loads(simulate("--trace", trace, "--cluster", vcs, "--cohort",
                                    "--output", "json", "--check").stdout)
    kueue = json.loads(simulate("--trace", trace, "--kueue", objects, "--nodes",
                                "6x{nvidia.com/gpu:8}", "--output", "json", "--check").stdout)
    assert generated["overall"]["jobs"] == 400
    assert kueue["per_vc"] == generated["per_vc"]
    assert kueue["skipped"] == generated["skipped"]
