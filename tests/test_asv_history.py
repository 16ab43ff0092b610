"""``python -m pgbench asv-history``: command construction, rev-list, errors, and a real toy run.

The end-to-end test builds a two-commit toy repository (a one-function package and
a one-``track_`` asv suite), records both commits with an isolated HOME, runs
``asv publish`` and checks the site has the track's graph.  It skips when git or
asv is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pgbench import asv_history
from pgbench.asv_history import HistoryError

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
needs_asv = pytest.mark.skipif(importlib.util.find_spec("asv") is None, reason="asv is not installed")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(repo),
                           *args], check=True, capture_output=True, text=True).stdout.strip()


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    return path


def test_asv_run_command():
    cmd = asv_history.asv_run_command("abc123", python="py")
    assert cmd == ["py", "-m", "asv", "run", "-E", "existing:same", "--set-commit-hash", "abc123"]
    cmd = asv_history.asv_run_command("abc123", quick=True, bench="Fit", python="py")
    assert cmd[-3:] == ["--quick", "--bench", "Fit"]


def test_worktree_env_prepends():
    env = asv_history.worktree_env("/wt", {"PYTHONPATH": "/a", "X": "1"})
    assert env["PYTHONPATH"] == env["ASV_PYTHONPATH"] == os.pathsep.join(["/wt", "/a"])
    assert env["X"] == "1"
    env = asv_history.worktree_env("/wt", {"PYTHONPATH": "/a", "ASV_PYTHONPATH": "/b"})
    assert env["ASV_PYTHONPATH"] == os.pathsep.join(["/wt", "/b"])
    assert asv_history.worktree_env("/wt", {})["ASV_PYTHONPATH"] == "/wt"


@needs_git
def test_rev_list_oldest_first(repo):
    c1 = _commit(repo, {"a.txt": "1"}, "one")
    c2 = _commit(repo, {"a.txt": "2"}, "two")
    c3 = _commit(repo, {"a.txt": "3"}, "three")
    assert asv_history.rev_list("HEAD~2..HEAD", str(repo)) == [c2, c3]
    assert asv_history.rev_list(f"{c2}^!", str(repo)) == [c2]
    assert asv_history.rev_list("HEAD", str(repo)) == [c1, c2, c3]
    with pytest.raises(HistoryError, match="no commit"):
        asv_history.rev_list("HEAD..HEAD", str(repo))
    with pytest.raises(HistoryError):
        asv_history.rev_list("nosuchref..HEAD", str(repo))
    with pytest.raises(HistoryError, match="invalid"):
        asv_history.rev_list("--all", str(repo))


@needs_git
def test_not_a_git_repo_is_one_line_error(tmp_path, capsys):
    from pgbench.cli import main

    assert main(["asv-history", "HEAD~1..HEAD", "--repo", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is not a git repository" in err


@needs_git
def test_missing_asv_conf(repo):
    _commit(repo, {"a.txt": "1"}, "one")
    with pytest.raises(HistoryError, match="asv.conf.json"):
        asv_history.record_history("HEAD", str(repo))


TOY_CONF = {
    "version": 1, "project": "toypkg", "repo": ".", "branches": ["main"],
    "environment_type": "existing", "pythons": ["same"], "benchmark_dir": "benchmarks",
    "results_dir": ".asv/results", "html_dir": ".asv/html",
}
TOY_BENCH = '''
import toypkg


def track_empty_clusters():
    return toypkg.VALUE


track_empty_clusters.unit = "clusters"
'''


@needs_git
@needs_asv
def test_records_two_commits_and_publishes(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))          # own ~/.asv-machine.json
    (tmp_path / "home").mkdir()
    files = {"asv.conf.json": json.dumps(TOY_CONF), ".gitignore": ".asv/\n",
             "benchmarks/__init__.py": "", "benchmarks/bench_toy.py": TOY_BENCH,
             "toypkg/__init__.py": "VALUE = 3\n"}
    c1 = _commit(repo, files, "toy v1")
    c2 = _commit(repo, {"toypkg/__init__.py": "VALUE = 1\n"}, "toy v2")

    monkeypatch.chdir(repo)             # from the repository root, as the README shows it
    report = asv_history.record_history("HEAD", ".", quick=True, package="toypkg")
    assert report.commits == [c1, c2] and report.failed == []
    assert _git(repo, "worktree", "list").count("\n") == 0          # worktrees removed
    assert not _git(repo, "status", "--porcelain")                   # working tree untouched

    results = sorted((repo / ".asv" / "results").rglob("*-existing-*.json"))
    values = {}
    for path in results:
        data = json.loads(path.read_text())
        values[data["commit_hash"]] = data["results"]["bench_toy.track_empty_clusters"][0][0]
    assert values == {c1: 3, c2: 1}                                 # each commit's own code ran

    subprocess.run([sys.executable, "-m", "asv", "publish"], cwd=repo, check=True, capture_output=True)
    graphs = list((repo / ".asv" / "html" / "graphs").rglob("bench_toy.track_empty_clusters.json"))
    assert graphs
    points = json.loads(graphs[0].read_text())
    assert [p[1] for p in points] == [3, 1]
