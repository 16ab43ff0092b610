"""Executors: where cases run.  Each one calls ``sink(row, trace)`` once per finished case.

An executor takes its cases from a :class:`~pgbench.claims.CaseQueue` (a plain list
is wrapped in one that claims nothing): a case is claimed just before it starts, so
concurrent runs on one results folder share the work (:mod:`pgbench.claims`).

``inline``
    In this process, one case after another; timeouts are not enforced.  For
    debugging, tests and profilers.
``local`` (:class:`ProcessExecutor`)
    ``jobs`` worker processes (forked from a forkserver that has imported torch and
    pgbench but never used CUDA or OpenMP), each with ``cpu_count // jobs`` torch
    threads.  A worker runs one case at a time and keeps
    the last source's data, so cases are handed out data set by data set.  A case
    that outlives its timeout has its worker killed (SIGKILL) and becomes a
    ``timeout`` row; a worker that dies (segfault, out of memory) turns its case
    into an ``error`` row; either way a fresh worker takes over.  With several
    GPUs and device ``cuda``, worker i sees only GPU ``i % n_gpus``.
``slurm`` (:class:`SlurmExecutor`)
    submitit job arrays (``map_array``): cases are grouped by data set into tasks of
    ``cases_per_task``; each task claims its cases through claim files in the spool
    (:class:`~pgbench.claims.SpoolQueue`), runs them through a one-worker
    :class:`ProcessExecutor` (so per-case timeouts hold there too) and writes each
    finished case into the store's spool folder; this process reads the spool into
    the store while it waits.  ``cluster="local"`` / ``"debug"`` use submitit's
    LocalExecutor / DebugExecutor (tests, machines without SLURM).
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import multiprocessing.connection
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, Union

from . import store, worker
from .case import Case, Status
from .claims import CaseQueue, SpoolQueue, reopen_spool_claims
from .extras import require

log = logging.getLogger(__name__)

Sink = Callable[[dict, list], None]
Work = Union[Sequence[Case], CaseQueue]
EXECUTORS = ("local", "inline", "slurm")
MAX_WAIT_S = 3600.0        # longest single wait for workers (the OS rejects waits beyond ~24.8 days)


def as_queue(work: Work) -> CaseQueue:
    return work if isinstance(work, CaseQueue) else CaseQueue(work)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _context():
    """forkserver (its server imports torch and pgbench once, so starting or replacing a worker
    is a cheap fork that has not touched CUDA or OpenMP); spawn where there is no forkserver."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["pgbench.worker"])
    return ctx


class InlineExecutor:
    """Runs cases in this process (no timeout enforcement)."""

    def execute(self, work: Work, sink: Sink) -> None:
        queue, key = as_queue(work), None
        while len(queue):
            case = queue.take(key)
            if case is None:                # the rest is held by other processes: wait for them
                time.sleep(queue.poll_s)
                continue
            key = case.data_key
            sink(*worker.run_case(case))


@dataclass(eq=False)
class _Worker:
    process: Any
    conn: Any
    ready: bool = False
    case: Case | None = None
    started: float = 0.0
    last_key: tuple | None = None


@dataclass
class ProcessExecutor:
    """``jobs`` killable worker processes; see the module docstring."""

    jobs: int = 1
    threads: int | None = None            # torch threads per worker (default: cpus // jobs)
    _ctx: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {self.jobs}.")
        self._ctx = _context()

    def _spawn(self, index: int, gpus: int) -> _Worker:
        parent_conn, child_conn = self._ctx.Pipe()
        threads = self.threads or max(1, available_cpus() // self.jobs)
        gpu = index % gpus if gpus > 1 else None
        process = self._ctx.Process(target=worker.worker_main, args=(child_conn, threads, gpu), daemon=True,
                                    name=f"pgbench-worker-{index}")
        process.start()
        child_conn.close()
        return _Worker(process, parent_conn)

    @staticmethod
    def _kill(w: _Worker) -> None:
        if w.process.is_alive():
            w.process.kill()
        w.process.join(5)
        w.conn.close()

    def execute(self, work: Work, sink: Sink) -> None:
        queue = as_queue(work)
        if not len(queue):
            return
        gpus = _gpus_to_split(queue.cases) if self.jobs > 1 else 0
        workers = [self._spawn(i, gpus) for i in range(min(self.jobs, len(queue)))]
        try:
            while True:
                for w in workers:
                    if w.ready and w.case is None and len(queue):
                        case = queue.take(w.last_key)     # claimed for this process, or None for now
                        if case is None:
                            break
                        w.case, w.last_key, w.started = case, case.data_key, time.monotonic()
                        w.conn.send(case)
                busy = [w for w in workers if w.case is not None]
                if not busy and not len(queue):          # (take() drops the cases others stored)
                    break
                waits = [w.started + w.case.timeout - time.monotonic() for w in busy]
                if len(queue) and any(w.ready and w.case is None for w in workers):
                    waits.append(queue.poll_s)            # cases other processes hold: ask again soon
                wait_s = min(min(waits, default=MAX_WAIT_S), MAX_WAIT_S)
                waitables = [w.conn for w in workers] + [w.process.sentinel for w in workers]
                multiprocessing.connection.wait(waitables, max(0.0, wait_s))
                for i, w in enumerate(workers):
                    workers[i] = self._service(w, i, gpus, sink)
        finally:
            for w in workers:
                if w.case is not None:   # interrupted mid-case: nothing of it is kept
                    w.process.kill()
                    continue
                try:
                    w.conn.send(None)
                except (OSError, ValueError):
                    pass
            deadline = time.monotonic() + 5
            for w in workers:
                w.process.join(max(0.0, deadline - time.monotonic()))
                self._kill(w)

    def _service(self, w: _Worker, index: int, gpus: int, sink: Sink) -> _Worker:
        """Handle a message, a death or a timeout of one worker; returns it or its replacement."""
        gone = False
        try:
            while w.conn.poll():
                kind, payload = w.conn.recv()
                if kind == "ready":
                    w.ready = True
                else:
                    sink(*payload)
                    w.case = None
        except (EOFError, OSError):      # everything it sent has been read; the pipe is closed
            gone = True
        if gone or not w.process.is_alive():
            w.process.join(5)
            code = w.process.exitcode
            self._kill(w)
            if not w.ready:
                raise RuntimeError(f"a worker process exited with code {code} before it could start; "
                                   "see the messages above")
            if w.case is not None:
                log.warning("worker died (exit code %s) running case %s", code, w.case.case_id[:12])
                sink(worker.failed_row(w.case, Status.ERROR, f"worker process died (exit code {code})",
                                       time.monotonic() - w.started), [])
            return self._spawn(index, gpus)
        if w.case is not None and time.monotonic() - w.started >= w.case.timeout:
            elapsed = time.monotonic() - w.started
            self._kill(w)
            log.info("case %s timed out after %.1f s", w.case.case_id[:12], elapsed)
            sink(worker.failed_row(w.case, Status.TIMEOUT, f"exceeded the {w.case.timeout:g} s timeout", elapsed), [])
            return self._spawn(index, gpus)
        return w


def _gpus_to_split(cases: Sequence[Case]) -> int:
    """GPUs to spread workers over: only when every case asks for plain ``cuda``."""
    if not all(c.device == "cuda" for c in cases):
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


# --------------------------------------------------------------------------- SLURM

def batches(cases: Sequence[Case], per_task: int) -> list[list[Case]]:
    """Consecutive cases sharing a data key, at most ``per_task`` per batch."""
    out: list[list[Case]] = []
    for case in cases:
        if out and len(out[-1]) < per_task and out[-1][-1].data_key == case.data_key:
            out[-1].append(case)
        else:
            out.append([case])
    return out


def slurm_task(cases: list[Case], results_dir: str) -> int:
    """One array task: claim each case (claim files), run it (killable worker, timeouts enforced), spool it.

    Returns how many cases this task ran; cases another task holds or finished are left to it.
    """
    ran = 0
    with SpoolQueue(cases, results_dir) as queue:
        def sink(row: dict, trace: list) -> None:
            nonlocal ran
            store.write_spool(results_dir, row, trace)
            queue.finish(row["case_id"])
            ran += 1

        ProcessExecutor(jobs=1).execute(queue, sink)
    return ran


@dataclass
class SlurmExecutor:
    """submitit job arrays; results travel through the spool folder (see the module docstring)."""

    results_dir: Path
    params: dict[str, Any] = field(default_factory=dict)    # the suite's [slurm] table (+ CLI)
    cluster: str | None = None                              # None: submitit picks (slurm when present)
    poll_s: float = 2.0

    def submitit_parameters(self, groups: list[list[Case]]) -> dict[str, Any]:
        p = dict(self.params)
        longest = max(sum(c.timeout for c in g) for g in groups)
        out: dict[str, Any] = {
            "name": "pgbench",
            "timeout_min": p.pop("timeout_min", math.ceil(1.5 * longest / 60) + 5),
            "cpus_per_task": p.pop("cpus_per_task", 1),
            "slurm_array_parallelism": p.pop("array_parallelism", 64),
        }
        if any(c.device.startswith("cuda") for g in groups for c in g):
            out["gpus_per_node"] = p.pop("gpus_per_node", 1)
        elif "gpus_per_node" in p:
            out["gpus_per_node"] = p.pop("gpus_per_node")
        if "mem_gb" in p:
            out["mem_gb"] = p.pop("mem_gb")
        p.pop("cases_per_task", None)
        if "additional" in p:
            out["slurm_additional_parameters"] = dict(p.pop("additional"))
        for key in ("partition", "account", "qos", "constraint"):
            if key in p:
                out[f"slurm_{key}"] = p.pop(key)
        return out

    def execute(self, work: Work, sink: Sink, stored: Callable[[str], bool] = lambda case_id: False) -> None:
        """Submit every case of ``work`` (the tasks claim them); ``stored(case_id)``: is it in the store?"""
        cases = as_queue(work).cases
        if not cases:
            return
        require("slurm", "--executor slurm")
        import submitit

        reopen_spool_claims(self.results_dir, [c.case_id for c in cases], stored)

        groups = batches(cases, int(self.params.get("cases_per_task", 1)))
        executor = submitit.AutoExecutor(folder=Path(self.results_dir) / "submitit" / "%j", cluster=self.cluster)
        executor.update_parameters(**self.submitit_parameters(groups))
        jobs = executor.map_array(slurm_task, groups, [str(self.results_dir)] * len(groups))
        log.info("submitted %d task(s) (%s), job %s", len(jobs), executor.cluster, jobs[0].job_id if jobs else "-")
        pending = list(jobs)
        try:
            while pending:
                self._drain(sink)
                still = [job for job in pending if not job.done()]
                for job in pending:
                    if job not in still and job.exception() is not None:
                        text = " ".join(str(job.exception()).split())[-300:]
                        log.warning("task %s failed; its unfinished cases stay missing (rerun to retry): %s",
                                    job.job_id, text)
                pending = still
                if pending:
                    time.sleep(self.poll_s)
        except KeyboardInterrupt:
            for job in pending:          # what already finished is in the spool for the next run
                try:
                    job.cancel(check=False)
                except Exception:  # noqa: BLE001 - best effort
                    pass
            raise
        self._drain(sink)

    def _drain(self, sink: Sink) -> None:
        for path, row, trace in store.read_spool(self.results_dir):
            sink(row, trace)
            path.unlink(missing_ok=True)


def make_executor(kind: str, jobs: int = 1, results_dir: Path | None = None, slurm: dict | None = None,
                  cluster: str | None = None):
    if kind == "inline":
        return InlineExecutor()
    if kind == "local":
        return ProcessExecutor(jobs=jobs)
    if kind == "slurm":
        return SlurmExecutor(Path(results_dir), dict(slurm or {}), cluster)
    raise ValueError(f"unknown executor '{kind}' (known: {', '.join(EXECUTORS)}).")
