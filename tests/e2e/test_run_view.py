"""The live view on a terminal: trainyard runs under a pseudo-terminal, as a user sees it."""
import os
import pty
import re
import select
import subprocess
import time

from conftest import REPO, assert_no_sanitizer_report, trainyard_bin
from jobs import pytorchjob


def run_on_terminal(args, timeout=60):
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm", COLUMNS="120")
    p = subprocess.Popen([trainyard_bin(), "run", *args], cwd=REPO, stdin=slave, stdout=slave,
                         stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    p.wait(timeout=10)
    os.close(master)
    return p.returncode, out.decode(errors="replace")


def test_live_view_shows_replicas_progress_and_last_log_line(manifest, marker, tmp_path):
    cmd = "for e in 1 2 3 4; do echo epoch=$e/4 loss=0.5; sleep 0.4; done; echo all done here"
    path = manifest(pytorchjob("view", marker, master_cmd=cmd, worker_cmd=cmd, workers=1))
    rc, out = run_on_terminal(["--state-dir", str(tmp_path / "state"), path])
    assert rc == 0, out
    assert_no_sanitizer_report(out)
    assert "REPLICA" in out and "RESTARTS" in out and "LAST LOG LINE" in out, out
    assert "view-master-0" in out and "view-worker-0" in out, out
    # A frame is redrawn in place (cursor up), and the progress bar follows the epochs.
    assert "\x1b[" in out and "F" in out
    assert "] epoch 2/4" in out or "] epoch 3/4" in out, out
    assert "[##############################] epoch 4/4" in out, out
    assert "all done here" in out, out
    assert "PyTorchJob view Succeeded" in out, out


def test_restarts_count_the_gang_restarts(manifest, marker, tmp_path):
    """A failed rank restarts the whole gang with new pods: RESTARTS counts that, as the
    replica's restarts, though each new pod's containers start at restartCount 0."""
    flag = tmp_path / "failed-once"
    worker = f"if [ ! -e {flag} ]; then touch {flag}; exit 3; fi; sleep 0.5; echo worker ok"
    path = manifest(pytorchjob("gang", marker, master_cmd="sleep 1; echo master ok",
                               worker_cmd=worker, workers=1))
    env_backoff = os.environ.get("TRAINYARD_RESTART_BACKOFF_MS")
    os.environ["TRAINYARD_RESTART_BACKOFF_MS"] = "200"  # the first gang restart in 0.2 s
    try:
        rc, out = run_on_terminal(["--state-dir", str(tmp_path / "state"), path])
    finally:
        if env_backoff is None:
            del os.environ["TRAINYARD_RESTART_BACKOFF_MS"]
        else:
            os.environ["TRAINYARD_RESTART_BACKOFF_MS"] = env_backoff
    assert rc == 0, out
    assert_no_sanitizer_report(out)
    final = out[out.rfind("REPLICA"):]
    assert re.search(r"gang-worker-0 +Succeeded +1 ", final), final
    assert re.search(r"gang-master-0 +Succeeded +1 ", final), final
