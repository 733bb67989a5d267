"""The command line itself: --version, help, and one prefix for every error."""
import re
import subprocess

from conftest import REPO, assert_no_sanitizer_report, trainyard_bin


def ty(*args):
    p = subprocess.run([trainyard_bin(), *args], cwd=REPO, capture_output=True, text=True,
                       timeout=30)
    assert_no_sanitizer_report(p.stderr)
    return p


def test_version_is_the_built_tree():
    p = ty("--version")
    assert p.returncode == 0, p
    assert re.fullmatch(r"trainyard \S+\n", p.stdout), p.stdout
    in_git = subprocess.run(["git", "rev-parse"], cwd=REPO, capture_output=True).returncode == 0
    if in_git:  # built from a git tree: `git describe`, not the fallback
        assert p.stdout != "trainyard unknown\n"
    assert ty("version").stdout == p.stdout


def test_help_lists_commands_and_each_command_has_its_own():
    for args in (["help"], ["--help"], ["-h"]):
        p = ty(*args)
        assert p.returncode == 0, p
        assert "usage: trainyard <command>" in p.stdout
        assert re.search(r"^  run +run Kubeflow jobs", p.stdout, re.M), p.stdout
        assert re.search(r"^  server ", p.stdout, re.M), p.stdout
    for cmd in ("run", "server"):
        p = ty("help", cmd)
        assert p.returncode == 0, p
        assert p.stdout.startswith(f"usage: trainyard {cmd} "), p.stdout
        assert ty(cmd, "--help").stdout == p.stdout
    p = ty("help", "shim")
    assert p.returncode == 0 and p.stdout.startswith("usage: trainyard shim"), p


def test_errors_share_one_prefix(tmp_path):
    cases = [
        (["bogus"], "trainyard: unknown command bogus"),
        (["help", "bogus"], "trainyard: unknown command bogus"),
        (["--bogus"], "trainyard: unknown option --bogus"),
        (["run", "--bogus"], "trainyard run: unrecognized option '--bogus'"),
        (["run"], "trainyard run: no manifest given"),
        (["run", str(tmp_path / "nope.yaml")], "trainyard run: "),
        (["run", "--gpus", "x", "f.yaml"], "trainyard run: --gpus: not a count: x"),
        (["server", "--bogus"], "trainyard server: unrecognized option '--bogus'"),
        (["server", "--gpus", "-1"], "trainyard server: --gpus: not a count: -1"),
    ]
    for args, first in cases:
        p = ty(*args)
        assert p.returncode == 2, (args, p)
        assert p.stderr.startswith(first), (args, p.stderr)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    p = ty("run", str(empty))
    assert p.returncode == 2 and p.stderr.startswith(f"trainyard run: {empty}: no objects"), p
