"""The CLI half of the bad-input table: each bad suite, option, store or output gets one clear line.

A row is a command line (``{tmp}``: the row's own folder, ``{suite}``: the suite file
written there), what to prepare, the text the message must contain (the offending
value) and the exit status: 2 for bad input.  No row here expects 1 ("the suite
could not run"): every input below can be judged before any work.  Rows marked
``process`` run as a real process whose stdout reader has gone (``pgbench list |
head -1``): they must exit 141 quietly, as a tool killed by SIGPIPE would.

An outcome is *clear* when the status is the row's, stderr holds one line naming
the value, no traceback, and nothing in the row's folder changed (no store created,
no byte of a prepared store altered); *silent* when a bad input exits 0;
*traceback* when an exception escapes or stderr shows one; else *unclear*.

Count the outcomes against any checkout (e.g. a scratch worktree of an older commit)::

    python tests/test_bad_inputs_cli.py [CHECKOUT]
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

HERE = Path(__file__).resolve().parent

VALID = """
[suite]
name = "bad"
seeds = [0]
n_iter = 2
timeout = 60

[[methods]]
label = "pg"
init = "pg"
resolve = "pg"

[[sources]]
name = "gaussian_mixture"
params = { n = 60, n_centers = 3 }
"""


def edit(*pairs: str, add: str = "") -> str:
    """VALID with each (old, new) pair replaced once, then ``add`` appended."""
    text = VALID
    for old, new in zip(pairs[::2], pairs[1::2]):
        assert old in text, old
        text = text.replace(old, new, 1)
    return text + add


def _store(tmp: Path, *sql: str) -> None:
    (tmp / "res").mkdir()
    with contextlib.closing(sqlite3.connect(tmp / "res" / "results.sqlite")) as conn:
        for statement in sql:
            conn.execute(statement)
        conn.commit()


def corrupt_store(tmp: Path) -> None:
    (tmp / "res").mkdir()
    (tmp / "res" / "results.sqlite").write_bytes(b"this is not a database " * 100)


def empty_store(tmp: Path) -> None:
    _store(tmp, "CREATE TABLE other (x INTEGER)")


def foreign_store(tmp: Path) -> None:
    _store(tmp, "CREATE TABLE cases (case_id TEXT, suite TEXT, status TEXT)", "INSERT INTO cases VALUES ('a', 's', 'ok')")


def newer_store(tmp: Path) -> None:
    _store(tmp, "CREATE TABLE cases (case_id TEXT PRIMARY KEY, suite TEXT NOT NULL, status TEXT NOT NULL)",
           "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)", "INSERT INTO meta VALUES ('schema_version', '99')")


def good_store(tmp: Path) -> None:
    _store(tmp, "CREATE TABLE cases (case_id TEXT PRIMARY KEY, suite TEXT NOT NULL, status TEXT NOT NULL)",
           "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)", "INSERT INTO meta VALUES ('schema_version', '1')")


def a_file(tmp: Path) -> None:
    (tmp / "file.txt").write_text("a file, not a folder\n")


def store_and_file(tmp: Path) -> None:
    good_store(tmp)
    a_file(tmp)


def store_and_folder(tmp: Path) -> None:
    good_store(tmp)
    (tmp / "folder").mkdir()


def read_only_results(tmp: Path) -> None:
    good_store(tmp)
    (tmp / "res").chmod(0o555)


def unsafe_checkpoint(tmp: Path) -> None:
    import torch

    class CallsOnLoad:
        def __reduce__(self):
            return os.getcwd, ()

    torch.save({"layer.weight": torch.ones(4, 4), "x": CallsOnLoad()}, tmp / "unsafe.pt")


def as_root() -> str | None:
    return "root ignores file permissions" if os.geteuid() == 0 else None


def with_cuda() -> str | None:
    import torch

    return "CUDA is available here" if torch.cuda.is_available() else None


@dataclass(frozen=True)
class Row:
    id: str
    args: tuple[str, ...]
    names: str                                  # what the one-line message must contain ({tmp} expands)
    suite: str | None = VALID
    prepare: Callable[[Path], None] | None = None
    status: int = 2
    process: bool = False
    skip: Callable[[], str | None] | None = None


RUN = ("run", "{suite}", "--results", "{tmp}/res", "--no-progress", "--executor", "inline")
VALIDATE = ("validate", "{suite}")

ROWS = [
    # ------------------------------------------------------------------ bad suites
    Row("suite-missing", ("validate", "{tmp}/nope.toml"), "nope.toml", suite=None),
    Row("suite-not-toml", VALIDATE, "not valid TOML", suite="[suite\nname = 1\n"),
    Row("suite-not-utf8", VALIDATE, "cannot read", suite="name = '\udcff'"),
    Row("unknown-top-key", VALIDATE, "bogus", suite=edit(add="[bogus]\nx = 1\n")),
    Row("unknown-suite-key", VALIDATE, "colour", suite=edit('name = "bad"', 'name = "bad"\ncolour = 1')),
    Row("seed-2**64-1", RUN, "18446744073709551615", suite=edit("seeds = [0]", "seeds = [18446744073709551615]")),
    Row("seed-2**63", RUN, "9223372036854775808", suite=edit("seeds = [0]", "seeds = [9223372036854775808]")),
    Row("seed-negative", RUN, "-1", suite=edit("seeds = [0]", "seeds = [-1]")),
    Row("seeds-a-string", VALIDATE, "'0'", suite=edit("seeds = [0]", 'seeds = "0"')),
    Row("seeds-repeated", VALIDATE, "repeats", suite=edit("seeds = [0]", "seeds = [3, 3]")),
    Row("source-seed-huge", RUN, "18446744073709551615",
        suite=edit("params = { n = 60, n_centers = 3 }", "params = { n = 60, n_centers = 3 }\nseeds = [18446744073709551615]")),
    Row("data-seed-huge", RUN, "99999999999999999999",
        suite=edit("params = { n = 60, n_centers = 3 }", "params = { n = 60, n_centers = 3 }\ndata_seed = 99999999999999999999")),
    Row("n-iter-zero", VALIDATE, "n_iter", suite=edit("n_iter = 2", "n_iter = 0")),
    Row("n-iter-float", VALIDATE, "1.5", suite=edit("n_iter = 2", "n_iter = 1.5")),
    Row("n-iter-huge", RUN, "n_iter", suite=edit("n_iter = 2", "n_iter = 9223372036854775808")),
    Row("repeats-zero", VALIDATE, "repeats must be an integer >= 1, got 0", suite=edit("n_iter = 2", "n_iter = 2\nrepeats = 0")),
    Row("repeats-float", VALIDATE, "1.5", suite=edit("n_iter = 2", "n_iter = 2\nrepeats = 1.5")),
    Row("repeats-string", VALIDATE, "'3'", suite=edit("n_iter = 2", "n_iter = 2\nrepeats = \"3\"")),
    Row("repeats-bool", VALIDATE, "True", suite=edit("n_iter = 2", "n_iter = 2\nrepeats = true")),
    Row("repeats-huge", RUN, "at most 1000", suite=edit("n_iter = 2", "n_iter = 2\nrepeats = 100000")),
    Row("timeout-inf", RUN, "inf", suite=edit("timeout = 60", "timeout = inf")),
    Row("timeout-25-days", RUN, "2160000", suite=edit("timeout = 60", "timeout = 2160000.0e1")),
    Row("timeout-negative", VALIDATE, "-1", suite=edit("timeout = 60", "timeout = -1")),
    Row("timeout-a-string", VALIDATE, "fast", suite=edit("timeout = 60", 'timeout = "fast"')),
    Row("source-timeout-inf", RUN, "inf",
        suite=edit("params = { n = 60, n_centers = 3 }", "params = { n = 60, n_centers = 3 }\ntimeout = inf")),
    Row("device-tpu", VALIDATE, "tpu", suite=edit('name = "bad"', 'name = "bad"\ndevice = "tpu"')),
    Row("backend-numpy", VALIDATE, "numpy", suite=edit('name = "bad"', 'name = "bad"\nbackend = "numpy"')),
    Row("dtype-float16", VALIDATE, "float16", suite=edit('name = "bad"', 'name = "bad"\ndtype = "float16"')),
    Row("tol-nan", RUN, "nan", suite=edit('name = "bad"', 'name = "bad"\ntol = nan')),
    Row("tol-negative", VALIDATE, "-1", suite=edit('name = "bad"', 'name = "bad"\ntol = -1.0')),
    Row("k-zero", VALIDATE, "k", suite=edit('name = "bad"', 'name = "bad"\nk = 0')),
    Row("k-above-n", RUN, "fewer than k=500", suite=edit('name = "bad"', 'name = "bad"\nk = 500')),
    Row("no-methods", VALIDATE, "[[methods]]", suite=VALID.replace('[[methods]]\nlabel = "pg"\ninit = "pg"\nresolve = "pg"\n', "")),
    Row("unknown-init", RUN, "pgg", suite=edit('init = "pg"', 'init = "pgg"')),
    Row("unknown-resolve", VALIDATE, "nonesuch", suite=edit('resolve = "pg"', 'resolve = "nonesuch"')),
    Row("init-not-a-name", VALIDATE, "42", suite=edit('init = "pg"', "init = 42")),
    Row("unknown-heuristic-param", RUN, "bogus_param",
        suite=edit('resolve = "pg"', 'resolve = "pg"\nresolve_params = { bogus_param = 1 }')),
    Row("params-without-stage", VALIDATE, "consolidate_params",
        suite=edit('resolve = "pg"', 'resolve = "pg"\nconsolidate_params = { x = 1 }')),
    Row("engine-arg-as-param", VALIDATE, "seed",
        suite=edit('resolve = "pg"', 'resolve = "pg"\nresolve_params = { seed = 3 }')),
    Row("duplicate-labels", VALIDATE, "'pg'", suite=edit(add='[[methods]]\nlabel = "pg"\ninit = "random"\nresolve = "pg"\n')),
    Row("undeclared-var-in-label", VALIDATE, "${nope}", suite=edit('label = "pg"', 'label = "pg-${nope}"')),
    Row("no-sources", VALIDATE, "[[sources]]", suite=VALID[:VALID.index("[[sources]]")]),
    Row("unknown-source", VALIDATE, "nosuchsource", suite=edit('name = "gaussian_mixture"', 'name = "nosuchsource"')),
    Row("unknown-source-param", RUN, "bogus",
        suite=edit("params = { n = 60, n_centers = 3 }", "params = { n = 60, n_centers = 3, bogus = 1 }")),
    Row("source-param-out-of-range", RUN, "n_centers",
        suite=edit("params = { n = 60, n_centers = 3 }", "params = { n = 60, n_centers = 0 }")),
    Row("grid-not-a-list", VALIDATE, "grid.d",
        suite=edit("params = { n = 60, n_centers = 3 }", "params = { n = 60, n_centers = 3 }\ngrid = { d = 3 }")),
    Row("cases-unknown-method", VALIDATE, "'nope'", suite=edit(add='[[cases]]\nmethod = "nope"\nsource = "gaussian_mixture"\n')),
    Row("import-missing-module", VALIDATE, "no_such_module_xyz",
        suite=edit('name = "bad"', 'name = "bad"\nimports = ["no_such_module_xyz"]')),
    Row("slurm-unknown-key", VALIDATE, "colour", suite=edit(add="[slurm]\ncolour = 1\n")),
    Row("var-without-value", VALIDATE, "path",
        suite=edit('label = "pg"', 'label = "pg-${path}"', add='[vars]\npath = { help = "where" }\n')),
    # ------------------------------------------------------------------ bad options
    Row("set-undeclared", ("validate", "{suite}", "--set", "nope=1"), "nope"),
    Row("set-without-equals", ("validate", "{suite}", "--set", "nope"), "'nope'"),
    Row("slurm-option-unknown", (*RUN, "--slurm", "bogus=1"), "--slurm bogus"),
    Row("jobs-zero", (*RUN[:5], "--jobs", "0"), "--jobs"),
    Row("timeout-option-inf", (*RUN, "--timeout", "inf"), "inf"),
    Row("timeout-option-nan", (*RUN, "--timeout", "nan"), "nan"),
    Row("timeout-option-zero", (*RUN, "--timeout", "0"), "timeout"),
    Row("retry-unknown-status", (*RUN, "--retry", "bogus"), "bogus"),
    Row("device-option-tpu", (*RUN, "--device", "tpu"), "tpu"),
    Row("device-cuda-without-cuda", (*RUN, "--device", "cuda"), "cuda", skip=with_cuda),
    Row("export-no-target", ("export", "{tmp}/res"), "--csv", prepare=good_store),
    # ------------------------------------------------------------------ bad stores
    Row("export-no-store", ("export", "{tmp}/res", "--csv", "{tmp}/out.csv"), "{tmp}/res"),
    Row("export-corrupt-store", ("export", "{tmp}/res", "--csv", "{tmp}/out.csv"), "{tmp}/res/results.sqlite",
        prepare=corrupt_store),
    Row("report-corrupt-store", ("report", "{tmp}/res", "-o", "{tmp}/r.html"), "{tmp}/res/results.sqlite",
        prepare=corrupt_store),
    Row("compare-corrupt-store", ("compare", "{tmp}/res", "{tmp}/res"), "{tmp}/res/results.sqlite",
        prepare=corrupt_store),
    Row("run-corrupt-store", RUN, "{tmp}/res/results.sqlite", prepare=corrupt_store),
    Row("export-not-a-store", ("export", "{tmp}/res", "--csv", "{tmp}/out.csv"), "{tmp}/res/results.sqlite",
        prepare=empty_store),
    Row("report-not-a-store", ("report", "{tmp}/res", "-o", "{tmp}/r.html"), "{tmp}/res/results.sqlite",
        prepare=empty_store),
    Row("run-foreign-cases-table", RUN, "{tmp}/res/results.sqlite", prepare=foreign_store),
    Row("export-foreign-cases-table", ("export", "{tmp}/res", "--csv", "{tmp}/out.csv"),
        "{tmp}/res/results.sqlite", prepare=foreign_store),
    Row("run-newer-store", RUN, "{tmp}/res/results.sqlite", prepare=newer_store),
    Row("run-results-is-a-file", (*RUN[:3], "{tmp}/file.txt", *RUN[4:]), "{tmp}/file.txt", prepare=a_file),
    Row("run-results-under-a-file", (*RUN[:3], "{tmp}/file.txt/res", *RUN[4:]), "{tmp}/file.txt",
        prepare=a_file),
    Row("run-results-read-only", RUN, "{tmp}/res", prepare=read_only_results, skip=as_root),
    # ------------------------------------------------------------------ bad outputs
    Row("export-csv-under-a-file", ("export", "{tmp}/res", "--csv", "{tmp}/file.txt/out.csv"), "{tmp}/file.txt",
        prepare=store_and_file),
    Row("export-csv-is-a-folder", ("export", "{tmp}/res", "--csv", "{tmp}/folder"), "{tmp}/folder",
        prepare=store_and_folder),
    Row("export-parquet-under-a-file", ("export", "{tmp}/res", "--parquet", "{tmp}/file.txt/o.parquet"),
        "{tmp}/file.txt", prepare=store_and_file),
    Row("report-out-under-a-file", ("report", "{tmp}/res", "-o", "{tmp}/file.txt/r.html"), "{tmp}/file.txt",
        prepare=store_and_file),
    Row("report-out-is-a-folder", ("report", "{tmp}/res", "-o", "{tmp}/folder"), "{tmp}/folder",
        prepare=store_and_folder),
    Row("dump-unsafe-pickle", ("dump", "{tmp}/unsafe.pt", "--out", "{tmp}/d.safetensors"), "--trust-checkpoint",
        prepare=unsafe_checkpoint),
    Row("dump-missing-checkpoint", ("dump", "{tmp}/none.pt", "--out", "{tmp}/d.safetensors"), "none.pt"),
    # ------------------------------------------------------------------ a reader that left (| head -1)
    Row("list-closed-pipe", ("list",), "", suite=None, status=141, process=True),
    Row("sysinfo-closed-pipe", ("sysinfo",), "", suite=None, status=141, process=True),
    Row("validate-list-closed-pipe", ("validate", "quick", "--list"), "", suite=None, status=141, process=True),
]


# ---------------------------------------------------------------------------- running a row

@dataclass
class Outcome:
    status: int | None
    stdout: str
    stderr: str
    escaped: str | None = None        # an exception that left pgbench.cli.main
    changed: bool = False             # something in the row's folder was created or altered


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class _CurrentStderr(io.TextIOBase):
    """Log records go to whatever sys.stderr is when they are written (a row's capture)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)


def _logging_to_current_stderr() -> None:
    root = logging.getLogger()
    if not any(isinstance(getattr(h, "stream", None), _CurrentStderr) for h in root.handlers):
        root.addHandler(logging.StreamHandler(_CurrentStderr()))


def fill(text: str, tmp: Path) -> str:
    return text.replace("{suite}", str(tmp / "suite.toml")).replace("{tmp}", str(tmp))


def run_row(row: Row, tmp: Path, checkout: Path | None = None) -> Outcome:
    """Prepare ``tmp``, run the row (in this process, or as a process), and compare the folder."""
    if row.suite is not None:
        (tmp / "suite.toml").write_text(row.suite, encoding="utf-8", errors="surrogateescape")
    if row.prepare is not None:
        row.prepare(tmp)
    argv = [fill(a, tmp) for a in row.args]
    before = snapshot(tmp)
    try:
        out = _as_process(argv, checkout) if row.process else run_main(argv)
    finally:
        for p in [tmp, *tmp.rglob("*")]:          # a read-only folder must be removable afterwards
            if p.is_dir():
                p.chmod(0o755)
    out.changed = snapshot(tmp) != before
    return out


def run_main(argv: list[str]) -> Outcome:
    """pgbench.cli.main(argv) in this process: status, captured stdout/stderr, any exception that escaped."""
    from pgbench.cli import main

    _logging_to_current_stderr()
    stdout, stderr = io.StringIO(), io.StringIO()
    escaped, status = None, None
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            status = main(argv)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # noqa: BLE001 - exactly what the table looks for
            escaped = f"{type(exc).__name__}: {exc}"
    return Outcome(status, stdout.getvalue(), stderr.getvalue(), escaped)


def _as_process(argv: list[str], checkout: Path | None) -> Outcome:
    """``python -m pgbench ARGV`` with its stdout's reader gone before it writes anything."""
    root = checkout or HERE.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "pgbench", *argv], cwd=root, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=300)
    return Outcome(proc.returncode, "", err)


def classify(row: Row, out: Outcome, tmp: Path) -> tuple[str, str]:
    """(clear | unclear | traceback | silent, why)."""
    if out.escaped or "Traceback" in out.stderr:
        return "traceback", out.escaped or out.stderr.strip().splitlines()[-1]
    if out.status == 0:
        return "silent", "exit status 0" + (" and the folder changed" if out.changed else "")
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    names = fill(row.names, tmp)
    if out.status != row.status:
        return "unclear", f"exit status {out.status}, expected {row.status}: {lines}"
    if (len(lines) != 1 or names not in lines[0]) if names else lines:
        return "unclear", f"expected one line naming {names!r}: {lines}"
    if out.changed:
        return "unclear", "the row's folder changed (a partial store or output)"
    return "clear", lines[0] if lines else ""


# -------------------------------------------------------------------------------- the test

@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_gets_one_clear_line(row, tmp_path):
    reason = row.skip() if row.skip else None
    if reason:
        pytest.skip(reason)
    out = run_row(row, tmp_path)
    kind, why = classify(row, out, tmp_path)
    assert kind == "clear", f"{kind}: {why}"


def test_the_table_is_big_enough_and_ids_are_unique():
    assert len(ROWS) >= 40 and len({r.id for r in ROWS}) == len(ROWS)
    assert {r.status for r in ROWS} == {2, 141}       # bad input is 2; a reader gone is 141


# -------------------------------------------------------------------------------- the tally

def _tally_one(row: Row, checkout: Path | None, conn) -> None:
    """In a forked child (an older checkout may hang or exhaust memory on a bad input): send (kind, why)."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        conn.send(classify(row, run_row(row, tmp_path, checkout), tmp_path))


def tally(checkout: Path | None = None, timeout_s: float = 180) -> dict[str, list[str]]:
    """{outcome: [row id: why]} for every row, against ``checkout`` (default: this one).

    Each row runs in a forked child; one that dies or outlives ``timeout_s`` counts as a traceback (a crash).
    """
    import multiprocessing

    if checkout is not None:
        sys.path.insert(0, str(checkout))
    import pgbench.cli  # noqa: F401 - imported once, before the children fork

    print(f"pgbench from {Path(pgbench.cli.__file__).parent}", file=sys.stderr)
    ctx = multiprocessing.get_context("fork")
    result: dict[str, list[str]] = {"clear": [], "unclear": [], "traceback": [], "silent": [], "skipped": []}
    for row in ROWS:
        reason = row.skip() if row.skip else None
        if reason:
            result["skipped"].append(f"{row.id} ({reason})")
            continue
        receive, send = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_tally_one, args=(row, checkout, send))
        child.start()
        send.close()
        try:
            if not receive.poll(timeout_s):
                raise EOFError
            kind, why = receive.recv()
        except EOFError:
            child.join(1)
            kind, why = "traceback", f"crashed or hung (exit code {child.exitcode})"
        child.kill()
        child.join()
        result[kind].append(f"{row.id}: {why}"[:300])
    return result


if __name__ == "__main__":
    found = tally(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else None)
    for kind, entries in found.items():
        for entry in entries:
            print(f"  {kind:9s} {entry}")
    print(f"tried {sum(map(len, found.values())) - len(found['skipped'])}: "
          + ", ".join(f"{kind} {len(entries)}" for kind, entries in found.items()))
