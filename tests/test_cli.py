"""The CLI's behaviour: -v / -q anywhere, warnings once, the progress bar only on a terminal,
and ``-m`` / ``-d`` selecting part of a suite (pgbench.console, pgbench.selection)."""

from __future__ import annotations

import argparse
import fcntl
import io
import logging
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from pgbench import console
from pgbench.cli import build_parser, main
from pgbench.selection import select
from pgbench.store import Store
from pgbench.suite import SuiteError, load_suite

ROOT = Path(__file__).resolve().parent.parent

SUITE = """
[suite]
name = "cli"
n_iter = 2

[[methods]]
label = "pg"
init = "pg"
resolve = "pg"

[[methods]]
label = "pg-full"
init = "pg"
resolve = "pg"
consolidate = "dwc"

[[methods]]
label = "fairseq"
init = "fairseq"
resolve = "fairseq"

[[sources]]
name = "gaussian_mixture"
label = "blobs"
params = { n = 200, n_centers = 4 }
grid = { d = [2, 3] }

[[sources]]
name = "imbalanced"
params = { n = 200, d = 2, n_centers = 3 }

[[sources]]
name = "checkpoint"
label = "absent"
params = { path = "${package:pgbench_no_such_package}/model" }
optional = true
"""
SKIP_NOTE = "skipping optional source 'absent'"


@pytest.fixture
def suite(tmp_path) -> Path:
    path = tmp_path / "cli.toml"
    path.write_text(SUITE)
    return path


@pytest.fixture(autouse=True)
def _restore_log_level():
    """main() sets the root logger's level; give later tests the level they had."""
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pgbench", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, **kw)


# ------------------------------------------------------------------ -v / -q anywhere

@pytest.mark.parametrize("argv, verbose, quiet", [
    (["list"], 0, False),
    (["-v", "list"], 1, False),
    (["list", "-v"], 1, False),
    (["-v", "list", "--json", "-v"], 2, False),
    (["list", "-vv"], 2, False),
    (["-q", "list"], 0, True),
    (["list", "--quiet"], 0, True),
])
def test_verbosity_before_or_after_the_subcommand(argv, verbose, quiet):
    args = build_parser().parse_args(argv)
    console.configure(args)
    assert (args.verbose, args.quiet) == (verbose, quiet)
    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    assert logging.getLogger().level == level


def test_verbose_and_quiet_together_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["-q", "list", "-v"])
    assert exc.value.code == 2 and "contradict" in capsys.readouterr().err


def test_version_and_verbose_after_subcommand_in_a_real_process():
    out = _cli("list", "--json", "-v")
    assert out.returncode == 0 and out.stdout.startswith("{")
    assert _cli("--version").stdout.startswith("pgbench ")


# ------------------------------------------------------------------ warnings once

@pytest.mark.parametrize("command", ["validate", "run"])
def test_skipped_source_warning_is_shown_once_and_hidden_by_quiet(suite, tmp_path, command):
    extra = ["--results", str(tmp_path / "res"), "--executor", "inline", "-m", "pg", "-d", "imbalanced",
             "-d", "absent"] if command == "run" else []
    out = _cli(command, str(suite), *extra)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count(SKIP_NOTE) == 1 and "not installed" in out.stderr
    quiet = _cli(command, str(suite), *extra, "-q")
    assert quiet.returncode == 0 and quiet.stderr == ""


# ------------------------------------------------------------------ progress bar

def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"progress": None, "quiet": False, **kw})


class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize("progress, quiet, tty, wanted", [
    (None, False, True, True), (None, False, False, False),     # default: only on a terminal
    (True, False, False, True), (False, False, True, False),    # --progress / --no-progress decide
    (None, True, True, False), (True, True, False, True),       # -q drops it unless --progress
])
def test_progress_wanted(progress, quiet, tty, wanted):
    assert console.progress_wanted(_args(progress=progress, quiet=quiet), _Stream(tty)) is wanted


def test_progress_bar_in_a_log_only_when_asked(suite, tmp_path):
    run = ["run", str(suite), "--executor", "inline", "-d", "blobs"]
    plain = _cli(*run, "--results", str(tmp_path / "a"))
    assert plain.returncode == 0 and "case/s" not in plain.stderr and "%|" not in plain.stderr
    assert plain.stderr.splitlines() == [f"cli: 6 cases, 0 already in {tmp_path / 'a'}, 6 to run"]
    forced = _cli(*run, "--results", str(tmp_path / "b"), "--progress")
    assert forced.returncode == 0 and "6/6" in forced.stderr and "case/s" in forced.stderr


def test_progress_bar_on_a_terminal(suite, tmp_path):
    """stderr on a pseudo-terminal: the bar is drawn without --progress."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))   # a new pty is 0 columns wide
    try:
        proc = subprocess.run([sys.executable, "-m", "pgbench", "run", str(suite), "--executor", "inline",
                               "-d", "imbalanced", "--results", str(tmp_path / "res")],
                              stdout=subprocess.PIPE, stderr=follower, cwd=ROOT, timeout=300)
        os.close(follower)
        follower = -1
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:          # the terminal closed
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    assert proc.returncode == 0
    assert b"3/3" in seen and b"case" in seen


# ------------------------------------------------------------------ -m / -d selection

def _listed(capsys) -> list[tuple[str, str]]:
    """(method, source label) of every case `validate --list` printed."""
    lines = capsys.readouterr().out.splitlines()[:-1]
    return [(line.split()[1], line.split()[2]) for line in lines]


@pytest.mark.parametrize("filters, expected", [
    ([], {(m, s) for m in ("pg", "pg-full", "fairseq") for s in ("blobs[d=2]", "blobs[d=3]", "imbalanced")}),
    (["-m", "pg"], {("pg", s) for s in ("blobs[d=2]", "blobs[d=3]", "imbalanced")}),
    (["-m", "pg*", "-d", "imb*"], {("pg", "imbalanced"), ("pg-full", "imbalanced")}),
    (["-m", "fairseq", "-m", "pg-full", "-d", "blobs[d=3]"], {("fairseq", "blobs[d=3]"), ("pg-full", "blobs[d=3]")}),
    (["-d", "blobs", "-m", "?g"], {("pg", "blobs[d=2]"), ("pg", "blobs[d=3]")}),       # entry label: every grid point
    (["-d", "blobs[[]d=2]", "-m", "pg"], {("pg", "blobs[d=2]")}),                       # a glob class for "["
])
def test_validate_selects_methods_and_sources(suite, capsys, filters, expected):
    assert main(["validate", str(suite), "--list", *filters]) == 0
    assert set(_listed(capsys)) == expected


@pytest.mark.parametrize("filters, message", [
    (["-m", "kmeans*"], "-m kmeans*: matches no method (known: pg, pg-full, fairseq)"),
    (["-m", "pg", "-d", "nothing"], "-d nothing: matches no source (known: blobs[d=2], blobs[d=3], imbalanced, absent)"),
])
def test_unmatched_pattern_is_a_one_line_error_before_any_work(suite, tmp_path, capsys, filters, message):
    results = tmp_path / "res"
    assert main(["run", str(suite), "--results", str(results), *filters]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err == f"pgbench run: error: {suite}: {message}"
    assert not results.exists()
    assert main(["validate", str(suite), *filters]) == 2


def test_run_stores_only_the_selected_cases(suite, tmp_path):
    results = tmp_path / "res"
    assert main(["run", str(suite), "--results", str(results), "--executor", "inline", "--no-progress",
                 "-m", "pg*", "-d", "blobs[d=2]", "-q"]) == 0
    with Store(results) as st:
        assert sorted((r["method"], r["dataset"]) for r in st.rows()) == [
            ("pg", "gaussian_mixture-n200-d2-c4"), ("pg-full", "gaussian_mixture-n200-d2-c4")]


def test_selection_follows_explicit_cases_and_can_leave_nothing(tmp_path):
    path = tmp_path / "pairs.toml"
    path.write_text(SUITE.split("[[sources]]\nname = \"checkpoint\"")[0]
                    + '[[cases]]\nmethod = "pg"\nsource = "blobs"\n'
                    + '[[cases]]\nmethod = "fairseq"\nsource = "imbalanced"\n')
    suite = load_suite(path)
    part = select(suite, methods=["pg", "fairseq"], sources=["blobs"])
    assert [m.label for m in part.methods] == ["pg", "fairseq"]
    assert part.pairs == (("pg", "blobs[d=2]", None), ("pg", "blobs[d=3]", None))
    with pytest.raises(SuiteError, match="-m fairseq -d blobs leaves no case"):
        select(suite, methods=["fairseq"], sources=["blobs"])
    assert select(suite) is suite
