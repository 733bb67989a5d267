"""Starting `trainyard server` for a test, and kubectl against it."""
import json
import os
import re
import signal
import subprocess
import time

import yaml

from conftest import REPO, assert_no_sanitizer_report, trainyard_bin, wait_until

KUBECTL = "/usr/bin/kubectl"


def kill_pods_of(data_dir):
    """SIGKILLs every pod supervisor (`trainyard shim`) under data_dir; their pid namespaces take
    the containers along."""
    needle = (os.path.join(str(data_dir), "node", "pods") + "/").encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if b"\0shim\0" in cmd and needle in cmd:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


class Server:
    def __init__(self, data_dir, extra_args=()):
        self.data_dir = str(data_dir)
        self.extra_args = list(extra_args)
        self.proc = None
        self.kubeconfig = os.path.join(self.data_dir, "kubeconfig")
        self.stderr_path = os.path.join(self.data_dir, "server.stderr")

    def start(self, listen="127.0.0.1:0"):
        os.makedirs(self.data_dir, exist_ok=True)
        if os.path.exists(self.kubeconfig):
            os.unlink(self.kubeconfig)
        self.err = open(self.stderr_path, "a")
        self.proc = subprocess.Popen(
            [trainyard_bin(), "server", "--data-dir", self.data_dir, "--listen", listen,
             *self.extra_args], cwd=REPO, stdout=self.err, stderr=self.err,
            start_new_session=True)
        assert wait_until(lambda: os.path.exists(self.kubeconfig) or self.proc.poll() is not None,
                          20), "no kubeconfig written"
        assert self.proc.poll() is None, open(self.stderr_path).read()
        cfg = yaml.safe_load(open(self.kubeconfig))
        self.url = cfg["clusters"][0]["cluster"]["server"]
        assert wait_until(lambda: self.kubectl("get", "--raw", "/version", check=False)
                          .returncode == 0, 20), open(self.stderr_path).read()
        return self

    def kubectl(self, *args, check=True, timeout=60, input=None):
        p = subprocess.run([KUBECTL, "--kubeconfig", self.kubeconfig, *args], cwd=REPO,
                           capture_output=True, text=True, timeout=timeout, input=input)
        if check:
            assert p.returncode == 0, (args, p.stdout, p.stderr)
        return p

    def json(self, *args):
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        assert_no_sanitizer_report(open(self.stderr_path).read())
        return self.proc.returncode

    def reap(self):
        """Kills what the server's pods left: a stopped server leaves its pods running for the
        next start, so a test that is done with them must end them."""
        kill_pods_of(self.data_dir)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.err.close()
