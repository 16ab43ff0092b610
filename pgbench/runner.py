"""Run a suite: expand it, skip what the store has, execute the rest, store each case as it finishes.

Pipeline: :func:`pgbench.suite.load_suite` -> :func:`pgbench.cases.expand` (the suite side) ->
filter out case ids already in the store -> an executor from
:mod:`pgbench.executors`, which claims each case just before it starts
(:mod:`pgbench.claims`) -> :meth:`pgbench.store.Store.add`, one transaction per
finished case.  Resuming is running the same suite again: stored cases are
skipped whatever their status, so an interrupted or killed run loses at most the
cases that were in flight.  Several runs of one suite on one results folder at
once split its cases between them: each case is computed once while its owner
lives, and every run waits for the cases the others hold, so each ends with the
whole suite stored.  Cases that compute the same thing run once (:mod:`pgbench.reuse`):
the others are stored as copies of that run, marked ``reused_from``.  A failing case is a row (``error`` / ``timeout``),
never a failed run; :func:`run_suite` raises only when the suite itself cannot
run (a bad suite, an unusable store, workers that cannot start).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import case as case_mod, reuse
from .case import Case, Status
from .claims import StoreQueue
from .executors import SlurmExecutor, make_executor
from .store import Store

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    suite: str
    total: int                    # cases in the expanded suite
    already: int                  # found in the store before this run
    ran: int                      # stored by this run (cases other processes stored meanwhile are not counted)
    counts: dict[str, int] = field(default_factory=dict)   # every stored case of the suite, by status
    missing: int = 0              # expanded cases still not in the store (failed batch jobs)
    skipped_sources: list[tuple[str, str]] = field(default_factory=list)
    reused: int = 0               # of ``ran``: copies of a case that computed the same thing (pgbench.reuse)


def run_suite(expansion: case_mod.Expansion, results_dir: str | Path, executor: str = "local",
              jobs: int = 1, slurm: dict | None = None, cluster: str | None = None,
              on_result: Callable[[dict, bool], None] | None = None,
              on_start: Callable[[int, int], None] | None = None, retry: tuple[str, ...] = ()) -> RunSummary:
    """Run the cases of ``expansion`` not yet in ``results_dir``'s store.

    ``retry`` names statuses (e.g. ``("error", "timeout")``) whose stored cases are
    deleted first and so run again.  ``on_start(n_to_run, n_already)`` is called
    once before the first case and ``on_result(row, stored)`` after every finished
    case (``stored`` is False when another process stored that case first); the CLI
    draws its progress bar there.

    Raises
    ------
    ValueError
        CUDA cases on a machine without CUDA (local executors), an unknown status
        in ``retry``; nothing is run or written then.
    """
    all_cases = expansion.cases
    suite = all_cases[0].suite if all_cases else ""
    ids = [c.case_id for c in all_cases]
    bad = sorted(set(retry) - set(Status))
    if bad:
        raise ValueError(f"--retry: unknown status '{bad[0]}' (known: {', '.join(Status)}).")
    if executor != "slurm" and any(c.device.startswith("cuda") for c in all_cases):
        import torch

        if not torch.cuda.is_available():
            raise ValueError("the suite asks for device 'cuda' but CUDA is not available here "
                             "(use --device cpu, or --executor slurm to run on GPU nodes).")
    with Store(results_dir) as store:
        store.ingest_spool()                     # finish what a killed batch run left behind
        if suite:
            store.record_skipped(suite, expansion.skipped)   # the report lists them with their reason
        if retry:
            log.info("forgot %d stored case(s) with status %s", store.forget(ids, retry), "/".join(retry))
        done = store.done_ids()
        todo = [c for c in all_cases if c.case_id not in done]
        already = len(all_cases) - len(todo)
        log.info("%d cases, %d already stored, %d to run", len(all_cases), already, len(todo))
        if on_start is not None:
            on_start(len(todo), already)
        case_mod.clear_cache()                  # the data is reloaded where the cases run
        groups = reuse.plan(todo)               # cases that compute the same thing, most expensive first
        ran = reused = 0

        def copy(cases: list[Case], computed_id: str, status: str) -> None:
            """Store each of ``cases`` as a copy of the stored case ``computed_id`` (pgbench.reuse)."""
            nonlocal ran, reused
            for case in cases:
                own = reuse.own_values(case, computed_id)
                stored = store.copy_case(computed_id, own)
                ran, reused = ran + stored, reused + stored
                if on_result is not None:
                    on_result({**own, "dataset": case.dataset, "status": status}, stored)

        def copy_stored_work() -> None:
            """Groups whose work a stored case did (an earlier run, another process): copied, and dropped."""
            for key, (computed_id, status) in store.computed(groups, except_status=retry).items():
                copy(groups.pop(key), computed_id, status)

        copy_stored_work()
        to_run = [group[0] for group in groups.values()]
        log.info("%d to run, %d sharing their run", len(to_run), sum(len(g) - 1 for g in groups.values()))

        def sink(row: dict, trace: list) -> None:
            nonlocal ran
            stored = store.add(row, trace)
            ran += stored
            if on_result is not None:
                on_result(row, stored)
            if stored and row.get("work_key") in groups:
                copy(groups.pop(row["work_key"])[1:], row["case_id"], row["status"])

        runner = make_executor(executor, jobs=jobs, results_dir=store.dir, slurm=slurm, cluster=cluster)
        if isinstance(runner, SlurmExecutor):   # batch tasks claim through the spool, never through SQLite
            runner.execute(to_run, sink, stored=store.has)
        else:
            with StoreQueue(to_run, store.path) as queue:
                def claimed_sink(row: dict, trace: list) -> None:
                    sink(row, trace)
                    queue.finish(row["case_id"])

                runner.execute(queue, claimed_sink)
        copy_stored_work()                      # the followers of cases other processes ran
        counts = store.status_counts(ids)
    return RunSummary(suite, len(all_cases), already, ran, counts, len(all_cases) - sum(counts.values()),
                      list(expansion.skipped), reused)
