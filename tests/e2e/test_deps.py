"""scripts/deps.sh against stand-ins for dpkg-query, apt-get and apt-cache: it waits for
another package manager's lock and installs Debian's kubectl when none is on PATH."""
import os
import stat
import subprocess

from conftest import REPO


def fake(bindir, name, body):
    path = bindir / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def run_deps(tmp_path, kubectl_on_path, locked_tries):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "apt.log"
    # Everything is installed but libuv1-dev.
    fake(bindir, "dpkg-query",
         '[ "${@: -1}" = libuv1-dev ] && exit 1; echo "install ok installed"\n')
    count = tmp_path / "n"
    fake(bindir, "apt-get", f'''n=$(cat {count} 2>/dev/null || echo 0); echo $((n+1)) > {count}
if [ "$n" -lt {locked_tries} ]; then
  echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 42 (apt-get)" >&2
  exit 100
fi
echo "$*" >> {log}
''')
    fake(bindir, "apt-cache", '[ "$2" = kubectl ] && echo "  Candidate: 1.32.3+ds-1" || '
                              'echo "  Candidate: (none)"\n')
    fake(bindir, "id", "echo 0\n")
    if kubectl_on_path:
        fake(bindir, "kubectl", "exit 0\n")
    env = dict(os.environ, PATH=f"{bindir}:/usr/bin:/bin", DEPS_LOCK_RETRY_S="0.1")
    if not kubectl_on_path:
        # /usr/bin may hold a kubectl: a PATH of the stand-ins and the shell's own tools only.
        tools = tmp_path / "tools"
        tools.mkdir()
        for t in ("bash", "grep", "seq", "sleep", "cat", "env"):
            src = subprocess.run(["bash", "-c", f"command -v {t}"], capture_output=True,
                                 text=True).stdout.strip()
            os.symlink(src, tools / t)
        env["PATH"] = f"{bindir}:{tools}"
    p = subprocess.run(["bash", os.path.join(REPO, "scripts", "deps.sh")], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=60)
    return p, (log.read_text() if log.exists() else "")


def test_deps_waits_for_the_lock_and_installs_kubectl(tmp_path):
    p, log = run_deps(tmp_path, kubectl_on_path=False, locked_tries=3)
    assert p.returncode == 0, p
    assert p.stderr.count("deps: waiting for another package manager to finish") == 3, p
    lines = log.splitlines()
    assert lines[0].endswith("update -qq"), log
    assert "DPkg::Lock::Timeout=600" in lines[0], log
    # node and npm (test_install's validators) are not on this PATH either
    assert lines[1].split()[-4:] == ["libuv1-dev", "nodejs", "npm", "kubectl"], log


def test_deps_leaves_a_kubectl_on_path_alone(tmp_path):
    p, log = run_deps(tmp_path, kubectl_on_path=True, locked_tries=0)
    assert p.returncode == 0, p
    assert "kubectl" not in log.splitlines()[-1] and "libuv1-dev" in log, log
