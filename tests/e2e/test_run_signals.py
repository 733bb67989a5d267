"""No process is ever left behind: not on Ctrl-C, SIGTERM, or SIGKILL of trainyard."""
import os
import signal
import time

import pytest

from conftest import assert_no_sanitizer_report, kill_all, processes_with, start_trainyard, wait_until
from jobs import pytorchjob


def long_job(marker, manifest):
    # Grandchildren too: each replica forks a background sleep.
    return manifest(pytorchjob("long", marker, master_cmd="sleep 300 & sleep 300",
                               worker_cmd="sleep 300 & sleep 300", workers=2))


def wait_running(marker, count):
    # 3 pods x (sh + 2 sleeps) once everything started; at least `count` processes.
    return wait_until(lambda: len(processes_with(marker)) >= count, 20)


@pytest.mark.parametrize("signum,rc", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_everything(manifest, marker, tmp_path, signum, rc):
    p = start_trainyard([long_job(marker, manifest)], tmp_path)
    try:
        assert wait_running(marker, 6), processes_with(marker)
        t0 = time.monotonic()
        p.send_signal(signum)
        out, err = p.communicate(timeout=40)
        assert p.returncode == rc, (p.returncode, out, err)
        assert_no_sanitizer_report(err)
        assert time.monotonic() - t0 < 35
        assert not processes_with(marker)
    finally:
        p.kill()
        kill_all(marker)


def test_sigkill_of_trainyard_leaves_no_process(manifest, marker, tmp_path):
    p = start_trainyard([long_job(marker, manifest)], tmp_path)
    try:
        assert wait_running(marker, 6), processes_with(marker)
        p.kill()
        p.wait(timeout=10)
        assert wait_until(lambda: not processes_with(marker), 15), processes_with(marker)
    finally:
        kill_all(marker)


def test_second_ctrl_c_kills_without_waiting_for_the_grace_period(manifest, marker, tmp_path):
    # The workload survives SIGTERM (noting that it got it) and has a long grace period: only
    # the second Ctrl-C ends it.
    termed = tmp_path / "termed"
    cmd = f"trap 'touch {termed}' TERM; while :; do sleep 300 & wait; done"
    path = manifest(pytorchjob("stubborn", marker, master_cmd=cmd, grace=120))
    p = start_trainyard([path], tmp_path)
    try:
        assert wait_running(marker, 2), processes_with(marker)
        p.send_signal(signal.SIGINT)
        # The first Ctrl-C has been acted on (the pod got its SIGTERM), and it killed nothing.
        assert wait_until(termed.exists, 10)
        assert p.poll() is None and processes_with(marker)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
        assert p.returncode == 130, (out, err)
        assert time.monotonic() - t0 < 10
        assert_no_sanitizer_report(err)
        assert not processes_with(marker)
    finally:
        p.kill()
        kill_all(marker)
