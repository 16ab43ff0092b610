"""Record asv results for a range of commits, offline: ``python -m pgbench asv-history A..B``.

Why: asv only builds per-commit environments with network access, and with
``environment_type: existing`` it saves nothing unless ``--set-commit-hash`` is
given and refuses commit ranges.  So, for each commit of ``git rev-list REV_RANGE``
(oldest first), this module:

1. checks the commit out in a temporary ``git worktree`` (the working tree of
   ``repo`` is never touched);
2. runs ``asv run -E existing:same --set-commit-hash <hash>`` from ``repo`` (so the
   current ``asv.conf.json`` and ``benchmarks/`` are used, as asv itself does) with
   ``ASV_PYTHONPATH`` (asv's own variable: it drops ``PYTHONPATH``) starting with the
   worktree, which shadows the installed pgbench for the benchmark processes only.  Nothing is (re)installed, so the shared environment
   needs no restoring and other users of it are unaffected;
3. removes the worktree.

Results land in asv's ``results_dir``; ``asv publish`` (or ``python -m pgbench
asv-publish``, which also makes the site work offline) then builds the site.
Only the stdlib is imported here, so the CLI stays fast.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


class HistoryError(ValueError):
    """A precondition failed (not a git repository, bad range, asv missing...)."""


@dataclass
class HistoryReport:
    """What :func:`record_history` did.

    commits : the hashes recorded, oldest first
    failed : hashes whose ``asv run`` exited non-zero (a benchmark failed or asv errored)
    repo : the repository top level, where ``asv publish`` is to be run
    """

    commits: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    repo: str = ""


def _git(repo: str, *args: str) -> str:
    """Run ``git -C repo ARGS``; its stdout, stripped.  Raises HistoryError on failure."""
    if shutil.which("git") is None:
        raise HistoryError("git is not installed.")
    proc = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        message = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise HistoryError(f"git {' '.join(args)} failed in {repo}: {message}")
    return proc.stdout.strip()


def repo_toplevel(repo: str) -> str:
    """The top-level folder of the git repository containing ``repo``, or HistoryError."""
    if not os.path.isdir(repo):
        raise HistoryError(f"{repo} is not a directory.")
    try:
        return _git(repo, "rev-parse", "--show-toplevel")
    except HistoryError:
        raise HistoryError(f"{os.path.abspath(repo)} is not a git repository.") from None


def rev_list(rev_range: str, repo: str) -> list[str]:
    """Full hashes of ``git rev-list REV_RANGE``, oldest first.

    ``A..B`` gives the commits after A up to B; one commit alone is written ``C^!``
    (a bare ``C`` would mean all of its ancestors).
    """
    if not rev_range or rev_range.startswith("-"):
        raise HistoryError(f"invalid revision range {rev_range!r}.")
    out = _git(repo, "rev-list", "--reverse", rev_range, "--")
    commits = out.split()
    if not commits:
        raise HistoryError(f"revision range {rev_range!r} contains no commit.")
    return commits


def asv_run_command(commit: str, quick: bool = False, bench: str | None = None,
                    python: str = sys.executable) -> list[str]:
    """The ``asv run`` argv that records ``commit`` with the existing interpreter."""
    cmd = [python, "-m", "asv", "run", "-E", "existing:same", "--set-commit-hash", commit]
    if quick:
        cmd.append("--quick")
    if bench:
        cmd += ["--bench", bench]
    return cmd


def worktree_env(worktree: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default: os.environ) whose import path starts with ``worktree``.

    asv drops ``PYTHONPATH`` from the benchmark processes and uses ``ASV_PYTHONPATH``
    instead, so both are set (the former for the shadowing check).
    """
    env = dict(os.environ if base is None else base)
    python_path = env.get("PYTHONPATH", "")
    asv_path = env.get("ASV_PYTHONPATH", "") or python_path
    env["PYTHONPATH"] = os.pathsep.join(p for p in (worktree, python_path) if p)
    env["ASV_PYTHONPATH"] = os.pathsep.join(p for p in (worktree, asv_path) if p)
    return env


def _check_shadowing(worktree: str, env: dict[str, str], package: str) -> None:
    """Make sure ``import package`` resolves into ``worktree`` under ``env`` (without importing it).

    The probe runs with ``-P``: a plain ``python -c`` puts the current folder first on
    ``sys.path``, so from the repository root it found the checkout's own package and
    refused to run; asv's benchmark processes do not import from there.
    """
    probe = f"import importlib.util as u; s = u.find_spec({package!r}); print(s.origin if s else '')"
    origin = subprocess.run([sys.executable, "-P", "-c", probe], env=env, capture_output=True,
                            text=True).stdout.strip()
    if not origin or not os.path.realpath(origin).startswith(os.path.realpath(worktree) + os.sep):
        raise HistoryError(f"PYTHONPATH does not shadow the installed {package} (it resolves to {origin!r}).")


def _ensure_machine(repo: str) -> None:
    """Record this machine's description once (``asv machine --yes``) so ``asv run`` never prompts."""
    if not os.path.exists(os.path.expanduser("~/.asv-machine.json")):
        log.info("no ~/.asv-machine.json yet: running asv machine --yes")
        subprocess.run([sys.executable, "-m", "asv", "machine", "--yes"], cwd=repo, check=True,
                       stdout=subprocess.DEVNULL)


def record_history(rev_range: str, repo: str = ".", quick: bool = False,
                   bench: str | None = None, package: str = "pgbench") -> HistoryReport:
    """Run the asv suite of ``repo`` once per commit of ``rev_range``, saving results.

    Parameters
    ----------
    rev_range : a ``git rev-list`` range, e.g. ``HEAD~5..HEAD`` or ``abc123^!``
    repo : any folder inside the git repository that holds ``asv.conf.json``
    quick : pass ``--quick`` (one call per benchmark; results are still saved)
    bench : pass ``--bench REGEX`` to run a subset
    package : the top-level package the benchmarks import; checked to resolve
        into each worktree before asv runs

    Returns
    -------
    HistoryReport; raises HistoryError before any work when a precondition fails.
    """
    top = repo_toplevel(repo)
    if not os.path.exists(os.path.join(top, "asv.conf.json")):
        raise HistoryError(f"{top} has no asv.conf.json.")
    if importlib.util.find_spec("asv") is None:
        raise HistoryError("asv is not installed (pip install asv).")
    commits = rev_list(rev_range, top)
    _ensure_machine(top)
    report = HistoryReport(repo=top)
    scratch = tempfile.mkdtemp(prefix="pgbench-asv-history-")
    try:
        for i, commit in enumerate(commits, 1):
            worktree = os.path.join(scratch, commit[:12])
            log.info("[%d/%d] %s: checking out in %s", i, len(commits), commit[:12], worktree)
            _git(top, "worktree", "add", "--detach", "--force", worktree, commit)
            try:
                env = worktree_env(worktree)
                _check_shadowing(worktree, env, package)
                cmd = asv_run_command(commit, quick=quick, bench=bench)
                log.info("running %s", " ".join(cmd))
                rc = subprocess.run(cmd, cwd=top, env=env).returncode
            finally:
                _git(top, "worktree", "remove", "--force", worktree)
            report.commits.append(commit)
            if rc != 0:
                log.warning("asv run exited %d for %s", rc, commit[:12])
                report.failed.append(commit)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        subprocess.run(["git", "-C", top, "worktree", "prune"], capture_output=True)
    return report


# ----------------------------------------------------------------- CLI adapter (prints)

def setup_parser(p: argparse.ArgumentParser) -> None:
    """Arguments of ``python -m pgbench asv-history``."""
    p.add_argument("rev_range", help="git rev-list range, e.g. HEAD~3..HEAD (one commit: C^!)")
    p.add_argument("--repo", default=".", help="the git repository holding asv.conf.json (default: .)")
    p.add_argument("--quick", action="store_true", help="one call per benchmark (asv run --quick)")
    p.add_argument("--bench", "-b", default=None, help="only benchmarks matching this regex")


def run_command(args: argparse.Namespace) -> int:
    """Entry point of the CLI command: record, then say how to publish."""
    report = record_history(args.rev_range, repo=args.repo, quick=args.quick, bench=args.bench)
    print(f"recorded {len(report.commits)} commit(s): {' '.join(c[:8] for c in report.commits)}")
    if report.failed:
        print(f"asv reported failures for: {' '.join(c[:8] for c in report.failed)}")
    print(f"publish and view:  cd {report.repo} && python -m pgbench asv-publish && asv preview")
    if len(report.commits) >= 2:
        print(f"compare:           asv compare {report.commits[0][:8]} {report.commits[-1][:8]} --split")
    return 1 if report.failed else 0
