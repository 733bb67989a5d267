"""How a run shows pods it ended itself: deleted by cleanPodPolicy when their job ended, or
stopped on Ctrl-C; neither is a failure of the pod, and the final lines say what happened."""
import re
import signal

from conftest import (assert_no_sanitizer_report, kill_all, processes_with, start_trainyard,
                      wait_until)
from jobs import pytorchjob


def test_pods_deleted_by_clean_pod_policy_are_not_failures(run_trainyard, manifest, marker,
                                                            tmp_path):
    path = manifest(pytorchjob("cp", marker, master_cmd="sleep 1", worker_cmd="sleep 300",
                               run_policy={"cleanPodPolicy": "Running"}, grace=2))
    r = run_trainyard(path, timeout=60)
    assert r.rc == 0, r
    assert re.search(r"^pod/cp-worker-0: (Terminating|Deleted) \(cleanPodPolicy Running: the "
                     r"job ended\)", r.out, re.M), r
    assert not re.search(r"^pod/cp-worker-0: Failed", r.out, re.M), r
    assert "PyTorchJob cp Succeeded" in r.out, r
    # On a terminal the final frame keeps the deleted pod's row, saying why.
    from test_run_view import run_on_terminal
    rc, out = run_on_terminal(["--state-dir", str(tmp_path / "tty"), path])
    assert rc == 0, out
    final = out[out.rindex("\x1b[1mPyTorchJob cp"):]
    assert re.search(r"cp-worker-0 +Deleted .*\(cleanPodPolicy Running: the job ended\)",
                     final), final


def test_after_ctrl_c_the_last_lines_say_stopped(manifest, marker, tmp_path):
    path = manifest(pytorchjob("long", marker, master_cmd="sleep 300", worker_cmd="sleep 300"))
    p = start_trainyard([path], tmp_path)
    try:
        assert wait_until(lambda: len(processes_with(marker)) >= 2, 20)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=40)
    finally:
        p.kill()
        kill_all(marker)
    assert p.returncode == 130, (out, err)
    assert_no_sanitizer_report(err)
    assert re.search(r"^pod/long-master-0: Stopped \(interrupted: SIGINT received\)", out,
                     re.M), out
    assert not re.search(r"^pod/long-master-0: Failed", out, re.M), out
    final = [l for l in out.splitlines() if l.startswith("PyTorchJob long ")]
    assert final == ["PyTorchJob long Stopped: interrupted: SIGINT received"], out


def test_epoch_lines_are_printed_without_a_terminal(run_trainyard, manifest, marker):
    cmd = "echo starting; for e in 1 2; do echo step 5; echo epoch=$e/2 accuracy=0.$e; done"
    r = run_trainyard(manifest(pytorchjob("ep", marker, master_cmd=cmd)))
    assert r.rc == 0, r
    assert re.findall(r"^\[ep-master-0\] .*$", r.out, re.M) == [
        "[ep-master-0] epoch=1/2 accuracy=0.1", "[ep-master-0] epoch=2/2 accuracy=0.2"], r


def test_final_frame_on_a_terminal_keeps_long_lines_whole(manifest, marker, tmp_path):
    from test_run_view import run_on_terminal
    last = "done " + "x" * 150 + " accuracy=0.8688"
    path = manifest(pytorchjob("wide", marker, master_cmd=f"echo epoch=1/1; echo {last}"))
    rc, out = run_on_terminal(["--state-dir", str(tmp_path / "state"), path])
    assert rc == 0, out
    final = out[out.rindex("\x1b[1mPyTorchJob wide"):]
    assert last in final, final
