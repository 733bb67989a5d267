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
