"""Shared fixtures for the end-to-end tests: they drive the real trainyard binary.

TRAINYARD_BIN chooses the binary (the Makefile runs the suite against the release build and
the sanitizer build). Every test that starts workloads tags them with a unique marker and
checks afterwards that no process carrying it is left: orphans are the worst bug we can ship.
"""
import functools
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.dirname(__file__))


def trainyard_bin():
    return os.environ.get("TRAINYARD_BIN", os.path.join(REPO, "build", "trainyard"))


def processes_with(marker):
    """Pids whose command line or environment contains `marker`."""
    found = []
    me = os.getpid()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        for name in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{name}", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(pid))
                        break
            except OSError:
                pass
    return found


@functools.lru_cache(maxsize=None)
def netns_refused():
    """Why trainyard cannot give pods their own network here (then they get loopback addresses),
    or None: it runs as root and may create network namespaces."""
    if os.geteuid() != 0:
        return "pod networking needs root"
    try:
        if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
            return "creating a network namespace is refused here (unshare -n true failed)"
        # trainyard also needs a bridge of its own in this namespace (CAP_NET_ADMIN)
        probe = f"typrobe{os.getpid() % 100000}"
        if subprocess.run(["ip", "link", "add", probe, "type", "bridge"],
                          capture_output=True).returncode != 0:
            return "creating a bridge is refused here (ip link add ... type bridge failed)"
        subprocess.run(["ip", "link", "del", probe], capture_output=True)
    except OSError as e:
        return f"unshare or ip is not available: {e}"
    return None


def is_pod_address(ip):
    """An address a pod gets: of the default pod CIDR 10.244.0.0/16 with a pod network, else a
    loopback address of 127.16.0.0/12."""
    if netns_refused() is None:
        return ip.startswith("10.244.")
    return ip.startswith("127.")


def expected_master_addr(master_ip, service):
    """MASTER_ADDR as trainyard gives it: with a pod network (and so cluster DNS) the operator's
    own Service name, else the master pod's address (docs/architecture.md)."""
    return service if netns_refused() is None else master_ip


def wait_until(predicate, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def assert_no_sanitizer_report(stderr):
    """The sanitizer build reports on stderr and may still exit 0: a report fails the test."""
    for needle in SANITIZER_REPORTS:
        assert needle not in (stderr or ""), stderr


class Run:
    """A finished `trainyard run`."""

    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def __repr__(self):
        return f"rc={self.rc}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


@pytest.fixture
def marker():
    """A unique string to put in a workload's env; asserts no process has it at the end."""
    m = "TY_TEST_" + uuid.uuid4().hex
    yield m
    assert wait_until(lambda: not processes_with(m), 10), \
        f"processes left behind: {processes_with(m)}"


@pytest.fixture
def run_trainyard(tmp_path):
    """Runs `trainyard run ARGS...` to completion; returns a Run."""

    def run(*args, timeout=120, env=None, cwd=REPO, input=None):
        full_env = dict(os.environ)
        full_env.setdefault("TRAINYARD_STATE_DIR_BASE", str(tmp_path))
        if env:
            full_env.update(env)
        argv = [trainyard_bin(), "run", "--state-dir", str(tmp_path / "state"), *args]
        p = subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, text=True,
                           timeout=timeout, input=input)
        assert_no_sanitizer_report(p.stderr)
        return Run(p.returncode, p.stdout, p.stderr)

    return run


@pytest.fixture
def manifest(tmp_path):
    """Writes a manifest text to a file and returns its path."""
    counter = [0]

    def write(text, name=None):
        counter[0] += 1
        path = tmp_path / (name or f"job{counter[0]}.yaml")
        path.write_text(text)
        return str(path)

    return write


def start_trainyard(args, tmp_path, **kw):
    """Starts `trainyard run` in the background (own session, so signals reach only it)."""
    argv = [trainyard_bin(), "run", "--state-dir", str(tmp_path / "state"), *args]
    return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, **kw)


def kill_all(marker):
    for pid in processes_with(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
