"""The suite commands of the CLI: ``validate``, ``run``, ``export``, ``sysinfo``.

Registered in :data:`pgbench.cli.COMMANDS`; like the rest of the CLI, this is the
only place that prints (progress bar and summary on stderr, results on stdout).
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys
from pathlib import Path

from . import console
from .validation import error_text

log = logging.getLogger(__name__)

DEFAULT_RESULTS = "results"


def _pairs(items: list[str] | None, option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{option} expects KEY=VALUE, got {item!r}.")
        out[key.strip()] = value
    return out


def _load(args: argparse.Namespace):
    """The suite narrowed by -m / -d, and its cases; skipped optional sources and downstream
    entries are logged as warnings (once: pgbench.cases logs the sources)."""
    from .cases import expand
    from .selection import select
    from .suite import load_suite

    suite = load_suite(args.suite, variables=_pairs(args.set, "--set"), device=args.device,
                       timeout=getattr(args, "timeout", None), slurm=_pairs(getattr(args, "slurm", None), "--slurm"))
    suite = select(suite, methods=args.method or (), sources=args.source or ())
    for e in suite.downstream:
        if e.unavailable:
            log.warning("%s: skipping optional downstream entry (%s): %s", suite.path, e.task, e.unavailable)
    return suite, expand(suite)


def _setup_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("suite", help="a suite file (TOML) or the name of a built-in suite, e.g. quick")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="value of a [vars] entry of the suite (repeatable); or env PGBENCH_SET_<NAME>")
    p.add_argument("--device", help="override the suite's device: cpu, cuda, cuda:N")
    p.add_argument("-m", "--method", action="append", metavar="PATTERN",
                   help="only methods whose label matches this glob, e.g. 'pg*' (repeatable)")
    p.add_argument("-d", "--source", action="append", metavar="PATTERN",
                   help="only sources whose label matches this glob, e.g. 'clustering' (repeatable)")


def _setup_validate(p: argparse.ArgumentParser) -> None:
    _setup_common(p)
    p.add_argument("--list", action="store_true", help="also list every case (id, method, source, data set, seed)")


def _cmd_validate(args: argparse.Namespace) -> int:
    suite, expansion = _load(args)
    if args.list:
        for c in expansion.cases:
            print(f"{c.case_id[:12]}  {c.method:28s} {c.source_label:24s} {c.dataset:40s} seed={c.seed} k={c.k}")
        _list_checkpoint_layers(suite, expansion)
    n_data = len({(c.data_key, c.dataset) for c in expansion.cases})
    note = _downstream_note(suite)
    if suite.methods or not suite.downstream:
        print(f"{suite.path}: ok, {len(expansion.cases)} cases ({len(suite.methods)} methods, {n_data} data sets)"
              + note)
    else:
        print(f"{suite.path}: ok{note}")
    return 0


def _list_checkpoint_layers(suite, expansion) -> None:
    """validate --list: typed and untyped weights of the checkpoint sources that load."""
    from .sources.checkpoint import listing

    skipped = {label for label, _ in expansion.skipped}
    for line in listing([(s.label, s.params) for s in suite.sources
                         if s.name == "checkpoint" and not s.unavailable and s.label not in skipped]):
        print(line)


def _downstream_note(suite) -> str:
    """', N downstream rows (...)' for suites with [[downstream]] entries."""
    if not suite.downstream:
        return ""
    ready = [e for e in suite.downstream if not e.unavailable]
    return f", {sum(e.n_cases for e in ready)} downstream rows ({len(ready)} fine-tuning runs)"


def _run_downstream(suite, args: argparse.Namespace) -> int:
    """Run the suite's [[downstream]] entries after its k-means cases; 1 when they could not run."""
    from .suite_downstream import run_downstream

    if not any(not e.unavailable for e in suite.downstream):
        return 0
    try:
        rows = run_downstream(suite.downstream, args.results, device=args.device or suite.device,
                              progress=console.progress_wanted(args))
    except (RuntimeError, OSError, ValueError) as exc:
        print(f"pgbench run: downstream error: {error_text(exc)}", file=sys.stderr)
        return 1
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    print(f"{suite.name}: {len(rows)} downstream rows: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def _setup_run(p: argparse.ArgumentParser) -> None:
    _setup_common(p)
    p.add_argument("--results", default=DEFAULT_RESULTS, help=f"results folder (default: {DEFAULT_RESULTS}/)")
    p.add_argument("--jobs", "-j", type=int, default=1, help="parallel worker processes (local executor)")
    p.add_argument("--executor", choices=("local", "inline", "slurm"), default="local",
                   help="local: killable worker processes (default); inline: this process, no timeouts; "
                        "slurm: submitit job arrays")
    p.add_argument("--timeout", type=float, help="seconds per case, overriding the suite")
    p.add_argument("--slurm", action="append", metavar="KEY=VALUE",
                   help="SLURM setting, overriding the suite's [slurm] table (repeatable)")
    p.add_argument("--slurm-cluster", choices=("slurm", "local", "debug"),
                   help="submitit back end (default: slurm when available); local/debug run on this machine")
    p.add_argument("--retry", default="", metavar="STATUS[,STATUS]",
                   help="run again the stored cases with these statuses, e.g. error,timeout")
    console.add_progress(p)


def _cmd_run(args: argparse.Namespace) -> int:
    from .runner import run_suite

    if args.jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {args.jobs}.")
    suite, expansion = _load(args)
    if not suite.methods:                     # a downstream-only suite: no k-means cases to run
        return _run_downstream(suite, args)
    bar = None

    def on_start(n_todo: int, n_already: int) -> None:
        nonlocal bar
        console.note(args, f"{suite.name}: {len(expansion.cases)} cases, {n_already} already in {args.results}, "
                           f"{n_todo} to run")
        if n_todo and console.progress_wanted(args):
            try:
                from tqdm import tqdm
            except ImportError:
                return
            bar = tqdm(total=n_todo, file=sys.stderr, unit="case", dynamic_ncols=True)

    def on_result(row: dict, stored: bool) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{row['status']}: {row['method']} {row['dataset']}"[:60])

    try:
        summary = run_suite(expansion, args.results, executor=args.executor, jobs=args.jobs,
                            slurm=suite.slurm, cluster=args.slurm_cluster, on_result=on_result,
                            on_start=on_start, retry=tuple(s for s in args.retry.split(",") if s))
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print("interrupted: finished cases are stored; run the same command again to resume", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, sqlite3.Error) as exc:   # the suite could not run
        print(f"pgbench run: error: {error_text(exc)}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    by_status = ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items())) or "none"
    print(f"{summary.suite}: {summary.total} cases: {by_status}"
          + (f", missing {summary.missing}" if summary.missing else "")
          + f" (ran {summary.ran} now"
          + (f", {summary.reused} of them copies of a run that computed the same thing" if summary.reused else "")
          + f", {summary.already} stored before) -> {Path(args.results) / 'results.sqlite'}")
    return _run_downstream(suite, args) if suite.downstream else 0


def _setup_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="results folder (or its results.sqlite)")
    p.add_argument("--csv", metavar="FILE", help="the case table as CSV (JSON columns as JSON text)")
    p.add_argument("--parquet", metavar="FILE", help="the case table as Parquet, nested types (needs pyarrow)")
    p.add_argument("--trace-csv", metavar="FILE", help="the per-iteration trace, one row per case and iteration, as CSV")
    p.add_argument("--trace-parquet", metavar="FILE", help="the per-iteration trace as Parquet (needs pyarrow)")
    p.add_argument("--suite", help="only this suite's cases")


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export
    from .paths import writable_file

    outputs = (("--csv", args.csv), ("--parquet", args.parquet), ("--trace-csv", args.trace_csv),
               ("--trace-parquet", args.trace_parquet))
    targets = [t for _, t in outputs if t]
    if not targets:
        raise ValueError("give --csv, --parquet, --trace-csv and/or --trace-parquet FILE.")
    for option, target in outputs:
        if target:
            writable_file(target, option)
    n_cases, n_trace = export(args.results, suite=args.suite, csv_path=args.csv, parquet_path=args.parquet,
                              trace_csv=args.trace_csv, trace_parquet=args.trace_parquet)
    counts = [f"{n_cases} cases"] * bool(args.csv or args.parquet) + \
        [f"{n_trace} trace rows"] * bool(args.trace_csv or args.trace_parquet)
    print(f"{' and '.join(counts)} -> {' and '.join(targets)}")
    return 0


def _setup_sysinfo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")


def _cmd_sysinfo(args: argparse.Namespace) -> int:
    from .sysinfo import system_info

    info = system_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0

    def show(prefix: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                show(f"{prefix}.{k}" if prefix else k, v)
        elif isinstance(value, list):
            print(f"{prefix:28s} {'; '.join(map(str, value)) if value else '-'}")
        else:
            print(f"{prefix:28s} {'-' if value is None else value}")

    show("", info)
    return 0


COMMANDS = {
    "validate": (_setup_validate, _cmd_validate, "check a suite file and count its cases, without running"),
    "run": (_setup_run, _cmd_run, "run a suite into a result store (resumable)"),
    "export": (_setup_export, _cmd_export, "write a result store's cases and per-iteration trace as CSV / Parquet"),
    "sysinfo": (_setup_sysinfo, _cmd_sysinfo, "versions, threads, BLAS, CUDA and faiss GPU support"),
}
