"""Where `trainyard run` keeps its state by default: a private directory of the user's
($XDG_RUNTIME_DIR/trainyard or /tmp/trainyard-<uid>), which it refuses when another user owns
it or may write to it, and where old runs' state is removed."""
import os
import subprocess
import time

import pytest

from conftest import REPO, assert_no_sanitizer_report, trainyard_bin
from jobs import pytorchjob


def run_default_state(xdg, path, timeout=60):
    env = dict(os.environ, XDG_RUNTIME_DIR=str(xdg))
    p = subprocess.run([trainyard_bin(), "run", path], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=timeout)
    assert_no_sanitizer_report(p.stderr)
    return p


def test_state_parent_writable_by_others_is_refused(manifest, marker, tmp_path):
    parent = tmp_path / "xdg" / "trainyard"
    parent.mkdir(parents=True)
    os.chmod(parent, 0o777)
    p = run_default_state(tmp_path / "xdg", manifest(pytorchjob("j", marker, master_cmd="true")))
    assert p.returncode == 1, p
    assert f"trainyard run: state directory {parent} may be written by other users" in p.stderr
    assert "--state-dir" in p.stderr
    assert os.listdir(parent) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory away needs root")
def test_state_parent_of_another_user_is_refused(manifest, marker, tmp_path):
    parent = tmp_path / "xdg" / "trainyard"
    parent.mkdir(parents=True, mode=0o700)
    os.chown(parent, 65534, 65534)
    p = run_default_state(tmp_path / "xdg", manifest(pytorchjob("j", marker, master_cmd="true")))
    assert p.returncode == 1, p
    assert f"state directory {parent} is owned by another user (uid 65534" in p.stderr, p


def dead_pid():
    pid = 4_000_000
    while os.path.exists(f"/proc/{pid}"):
        pid += 1
    return pid


def test_old_runs_are_removed_but_live_ones_kept(manifest, marker, tmp_path):
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    p = run_default_state(xdg, manifest(pytorchjob("j", marker, master_cmd="true")))
    assert p.returncode == 0, p
    parent = xdg / "trainyard"
    assert os.stat(parent).st_mode & 0o777 == 0o700
    now = int(time.time())
    live = parent / f"run-{now - 10000}-{os.getpid()}"  # the oldest, but its process runs
    (live / "pods").mkdir(parents=True)
    dead = [parent / f"run-{now - 1000 + i}-{dead_pid()}" for i in range(25)]
    for d in dead:
        (d / "pods" / "x").mkdir(parents=True)
        (d / "pods" / "x" / "log").write_text("old\n")
    p = run_default_state(xdg, manifest(pytorchjob("j", marker, master_cmd="true")))
    assert p.returncode == 0, p
    runs = sorted(os.listdir(parent))
    # The 20 newest stay (the two real runs and 18 of the fake ones), and the live one.
    assert len(runs) == 21, runs
    assert live.name in runs
    assert all(d.name not in runs for d in dead[:7]), runs
    assert all(d.name in runs for d in dead[7:]), runs
    logs = [l for l in p.stdout.splitlines() if l.startswith("logs: ")]
    new_run = os.path.dirname(logs[-1][len("logs: "):])
    assert os.stat(new_run).st_mode & 0o777 == 0o700
