"""The paper suite at full scale: a RoBERTa-base-shaped checkpoint, ``--jobs 2``, measured (issue 12).

What it does:

1. writes a RoBERTa-base-shaped checkpoint (12 layers, hidden 768, FFN 3072,
   vocabulary 50,265; heavy-tailed Student-t weights with std 0.04 from
   :func:`pgbench.synthetic.layer_weights`, one seed per tensor derived from
   ``--seed``) as ``model.safetensors`` plus a ``config.json`` of ``model_type``
   ``roberta`` (so the layers are typed), under ``OUT/checkpoint`` (default
   ``results/paper-scale/``; reused when its stamp matches the shape and seed);
2. runs ``python -m pgbench run suites/paper.toml --device cpu --jobs 2`` on it
   (a fresh results folder ``OUT/runs/<tag>``), optionally on a subset of layers
   (``--layers REGEX``, the suite's ``layers`` variable) and methods
   (``--method GLOB``), while polling the resident memory of the whole process
   tree (parent + workers) from ``/proc``;
3. reads the stored rows back and writes ``OUT/runs/<tag>/summary.json``: wall
   seconds, peak RSS (polled tree sum, and the largest single process from
   ``getrusage``), the CPU time of the tree (polled: under load, what the work
   cost, where the per-case seconds also count the waiting), per-method seconds
   (the sum of the cases' ``seconds_total`` and its
   split into init / consolidate / assign / resolve / update), the embedding
   layer's cases separately, per layer type and preset, and an extrapolation to
   the whole checkpoint: every measured (method, preset, layer type) mean times
   the number of the suite's data sets with that workload (layer type, n, k: a
   preset changes only the block size and k), divided by the jobs.

Run it from the repository root::

    python benchmarks/paper_scale.py                                 # the whole suite (2044 cases)
    python benchmarks/paper_scale.py --layers 'layer\\.(0|11)\\.|word_embeddings' --tag subset
    python benchmarks/paper_scale.py --layers word_embeddings --source '*paper-11.81*' --tag emb-b4
    python benchmarks/paper_scale.py --shape tiny --tag tiny        # seconds: the test's shape

It is a benchmark, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: name -> (layers, hidden, ffn, vocabulary, positions)
SHAPES = {
    "roberta-base": (12, 768, 3072, 50_265, 514),
    "tiny": (1, 128, 384, 100, 16),     # the smallest with n >= k (3072) in every layer and preset
}
STD = 0.04
PHASES = ("init", "consolidate", "assign", "resolve", "update")


def checkpoint_tensors(shape: str, seed: int):
    """(name, shape) of every tensor of a RoBERTa checkpoint of ``shape``, in file order."""
    n_layers, hidden, ffn, vocab, positions = SHAPES[shape]
    out = [("roberta.embeddings.word_embeddings.weight", (vocab, hidden)),
           ("roberta.embeddings.position_embeddings.weight", (positions, hidden)),
           ("roberta.embeddings.token_type_embeddings.weight", (1, hidden)),
           ("roberta.embeddings.LayerNorm.weight", (hidden,)), ("roberta.embeddings.LayerNorm.bias", (hidden,))]
    for i in range(n_layers):
        p = f"roberta.encoder.layer.{i}."
        for name, (rows, cols) in (("attention.self.query", (hidden, hidden)),
                                   ("attention.self.key", (hidden, hidden)),
                                   ("attention.self.value", (hidden, hidden)),
                                   ("attention.output.dense", (hidden, hidden)),
                                   ("intermediate.dense", (ffn, hidden)), ("output.dense", (hidden, ffn))):
            out += [(p + name + ".weight", (rows, cols)), (p + name + ".bias", (rows,))]
        out += [(p + "attention.output.LayerNorm.weight", (hidden,)),
                (p + "attention.output.LayerNorm.bias", (hidden,)),
                (p + "output.LayerNorm.weight", (hidden,)), (p + "output.LayerNorm.bias", (hidden,))]
    return out


def write_checkpoint(folder: Path, shape: str = "roberta-base", seed: int = 0) -> Path:
    """Write ``folder/model.safetensors`` + ``config.json`` (model_type roberta); reused when already written.

    2-D weights are heavy-tailed (Student-t, 3 degrees of freedom) with std 0.04,
    tensor i drawn with seed ``seed + i``; LayerNorm weights are ones, biases zeros.
    """
    import torch  # noqa: PLC0415
    from safetensors.torch import save_file  # noqa: PLC0415

    from pgbench import synthetic  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "stamp.json"
    want = {"shape": shape, "seed": seed, "dims": SHAPES[shape], "std": STD}
    if stamp.is_file() and json.loads(stamp.read_text()) == json.loads(json.dumps(want)):
        return folder
    tensors = {}
    for i, (name, dims) in enumerate(checkpoint_tensors(shape, seed)):
        if len(dims) == 2:
            tensors[name] = synthetic.layer_weights(dims[0], dims[1], std=STD, seed=seed + i)
        else:
            tensors[name] = torch.ones(dims) if "LayerNorm.weight" in name else torch.zeros(dims)
    save_file(tensors, str(folder / "model.safetensors"))
    n_layers, hidden, ffn, vocab, positions = SHAPES[shape]
    config = {"model_type": "roberta", "architectures": ["RobertaForMaskedLM"], "num_hidden_layers": n_layers,
              "hidden_size": hidden, "intermediate_size": ffn, "vocab_size": vocab,
              "max_position_embeddings": positions, "num_attention_heads": max(1, hidden // 64)}
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    stamp.write_text(json.dumps(want))
    return folder


class TreeRSS:
    """Polls a process and its descendants (Linux /proc) in a thread: the peak of their summed VmRSS,
    and their CPU time (user + system, the last value seen of every process, summed)."""

    def __init__(self, pid: int, every_s: float = 0.25):
        self.pid, self.every_s, self.peak_bytes = pid, every_s, 0
        self.cpu_ticks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu_ticks.values()) / os.sysconf("SC_CLK_TCK")

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, ticks = tree_usage(self.pid)
            self.peak_bytes = max(self.peak_bytes, rss)
            for pid, t in ticks.items():
                self.cpu_ticks[pid] = max(self.cpu_ticks.get(pid, 0), t)
            self._stop.wait(self.every_s)


def tree_usage(root: int) -> tuple[int, dict[int, int]]:
    """Summed resident bytes of ``root`` and all its descendants, and each one's CPU ticks (/proc)."""
    children: dict[int, list[int]] = defaultdict(list)
    rss: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children[int(fields.get("PPid", "0").strip() or 0)].append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024 if "VmRSS" in fields else 0
        ticks[pid] = int(stat[11]) + int(stat[12])          # utime + stime (fields 14 and 15)
    total, todo, seen = 0, [root], {}
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        seen[pid] = ticks.get(pid, 0)
        todo += children.get(pid, [])
    return total, seen


def run_suite(ckpt: Path, results: Path, layers: str, methods: list[str], jobs: int,
              suite: str = "paper", extra: list[str] | None = None, device: str = "cpu") -> dict:
    """Run the suite in a child process on ``device``; returns wall seconds and peak memory."""
    cmd = [sys.executable, "-m", "pgbench", "run", suite, "--set", f"path={ckpt}", "--set", f"layers={layers}",
           "--device", device, "--jobs", str(jobs), "--results", str(results), "--no-progress", "-q"]
    for m in methods:
        cmd += ["--method", m]
    cmd += extra or []
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    with TreeRSS(proc.pid) as poll:
        rc = proc.wait()
    wall = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"pgbench run exited {rc}: {' '.join(cmd)}")
    return {"wall_seconds": wall, "cpu_seconds_tree": poll.cpu_seconds, "peak_rss_tree_bytes": poll.peak_bytes,
            "max_rss_one_process_bytes": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
            "command": cmd}


def _split(rows: list[dict]) -> dict:
    """Cases, of them computed (not copies of another case's run, pgbench.reuse), and the computed ones'
    seconds: each run counted once."""
    ran = [r for r in rows if not r.get("reused_from")]
    out = {"cases": len(rows), "computed": len(ran), "cpu_seconds": sum(r["seconds_total"] or 0.0 for r in ran)}
    for p in PHASES:
        out[f"seconds_{p}"] = sum(r.get(f"seconds_{p}") or 0.0 for r in ran)
    return out


PAPER_PRESETS = ("paper-11.81", "paper-14.05", "paper-15.29", "paper-15.90")


def workload_counts(shape: str, shared: bool = True) -> dict[tuple[str, int, int], int]:
    """How many data sets of the paper suite do each workload (layer type, n, k).

    A layer type's block size and k are all that a preset changes, so the cases of
    one method on one workload do the same work: attention layers are cut with b = 4
    at every preset, fc layers with b = 4 at three presets, the embedding with b = 8
    at three.  ``shared`` (what the runner does, :mod:`pgbench.reuse`): a layer's
    presets with the same (n, k) are one computation, counted once; else every
    (layer, preset) counts.  This is what the extrapolation multiplies a measured
    mean by.
    """
    from pgbench import checkpoints  # noqa: PLC0415

    counts: dict[tuple[str, int, int], int] = defaultdict(int)
    for name, dims in checkpoint_tensors(shape, 0):
        t = checkpoints.layer_type(name.removesuffix(".weight"), "roberta") if len(dims) == 2 else None
        if t is None:
            continue
        work = [(t, dims[0] * dims[1] // checkpoints.PRESETS[p][t].block_size, checkpoints.PRESETS[p][t].n_centroids)
                for p in PAPER_PRESETS]
        for w in (dict.fromkeys(work) if shared else work):
            counts[w] += 1
    return dict(counts)


def summarise(rows: list[dict], shape: str, jobs: int) -> dict:
    """Per-method split, embedding apart, per workload, and the extrapolation to the whole suite.

    The extrapolation: per method, the mean CPU seconds of each measured workload
    (layer type, n, k) times the number of distinct computations of that workload
    (:func:`workload_counts`, shared), summed; divided by ``jobs`` for the wall time.
    Copies (``reused_from``) count in ``cases``, never in the seconds.
    Workloads with no measured case are listed under ``missing`` and count 0;
    ``error`` and ``timeout`` rows (a run stopped early) are counted, not timed.
    """
    statuses = _count(r["status"] for r in rows)
    rows = [r for r in rows if r["status"] not in ("error", "timeout")]      # finished runs only
    by_method: dict[str, list[dict]] = defaultdict(list)
    by_cell: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        by_method[r["method"]].append(r)
        if not r.get("reused_from"):
            by_cell[(r["method"], r["layer_type"], r["n"], r["k"])].append(r["seconds_total"] or 0.0)
    emb = [r for r in rows if r["layer_type"] == "embedding"]
    counts = workload_counts(shape)
    methods = sorted(by_method)
    full_by_method = {m: sum(statistics.fmean(by_cell[(m, *w)]) * c for w, c in counts.items() if (m, *w) in by_cell)
                      for m in methods}
    missing = sorted(f"{m}|{t}|n={n}|k={k}" for m in methods for (t, n, k) in counts if (m, t, n, k) not in by_cell)
    full_cpu = sum(full_by_method.values())
    return {
        "statuses": dict(sorted(statuses.items())),
        "per_method": {m: _split(v) for m, v in sorted(by_method.items())},
        "embedding": {m: _split([r for r in emb if r["method"] == m]) for m in sorted({r["method"] for r in emb})},
        "mean_seconds_by_workload": {f"{m}|{t}|n={n}|k={k}": statistics.fmean(v)
                                     for (m, t, n, k), v in sorted(by_cell.items())},
        "extrapolated": {"workload_counts": {f"{t}|n={n}|k={k}": c for (t, n, k), c in sorted(counts.items())},
                         "missing": missing, "cpu_seconds": full_cpu, "wall_seconds_at_jobs": full_cpu / jobs,
                         "cpu_seconds_by_method": full_by_method},
    }


def _count(items) -> dict:
    out: dict = defaultdict(int)
    for x in items:
        out[x] += 1
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "results" / "paper-scale"), help="folder (default results/paper-scale)")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="roberta-base")
    ap.add_argument("--seed", type=int, default=0, help="seed of the checkpoint's weights")
    ap.add_argument("--layers", default="", help="regex on parameter names (the suite's `layers`; default all)")
    ap.add_argument("--method", action="append", default=[], help="only methods matching this glob (repeatable)")
    ap.add_argument("--source", action="append", default=[],
                    help="only sources whose label matches this glob, e.g. '*paper-11.81*' (repeatable)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N: the suite's --device")
    ap.add_argument("--suite", default="paper", help="suite name or file (default paper)")
    ap.add_argument("--tag", default=time.strftime("%Y%m%d-%H%M%S"), help="name of the run folder")
    ap.add_argument("--summarise", metavar="RESULTS", default=None,
                    help="only summarise the cases stored in RESULTS (a run stopped early): no wall time or memory")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.summarise:
        summary = {"shape": args.shape, "dims": SHAPES[args.shape], "layers": args.layers, "jobs": args.jobs,
                   "wall_seconds": None, "peak_rss_tree_bytes": None, "max_rss_one_process_bytes": None,
                   "loadavg_before": Path("/proc/loadavg").read_text().strip(),
                   **summarise(_rows(Path(args.summarise)), args.shape, args.jobs)}
        (Path(args.summarise) / "summary-partial.json").write_text(json.dumps(summary, indent=1))
        _print(summary)
        return 0
    t0 = time.perf_counter()
    ckpt = write_checkpoint(out / "checkpoint" / args.shape, args.shape, args.seed)
    seconds_write = time.perf_counter() - t0
    results = out / "runs" / args.tag
    if results.exists():
        raise SystemExit(f"{results} exists: pick another --tag")
    load_before = Path("/proc/loadavg").read_text().strip()
    measured = run_suite(ckpt, results, args.layers, args.method, args.jobs, args.suite,
                         extra=[x for g in args.source for x in ("--source", g)], device=args.device)
    rows = _rows(results)
    summary = {"shape": args.shape, "dims": SHAPES[args.shape], "seed": args.seed, "layers": args.layers,
               "methods": args.method, "jobs": args.jobs, "device": args.device, "cpus": os.cpu_count(),
               "loadavg_before": load_before, "loadavg_after": Path("/proc/loadavg").read_text().strip(),
               "seconds_write_checkpoint": seconds_write, **measured, **summarise(rows, args.shape, args.jobs)}
    (results / "summary.json").write_text(json.dumps(summary, indent=1))
    _print(summary)
    return 0


def _rows(results: Path) -> list[dict]:
    sys.path.insert(0, str(ROOT))
    from pgbench.store import Store  # noqa: PLC0415

    with Store(results, create=False) as store:
        return store.rows()


def _print(s: dict) -> None:
    gb = 2**30
    head = f"{s['shape']} layers={s['layers']!r} jobs={s['jobs']}: {sum(s['statuses'].values())} cases {s['statuses']}"
    if s["wall_seconds"] is not None:
        head += (f" in {s['wall_seconds']:.0f} s wall, {s['cpu_seconds_tree']:.0f} s CPU; "
                 f"peak RSS {s['peak_rss_tree_bytes'] / gb:.2f} GB (tree), "
                 f"{s['max_rss_one_process_bytes'] / gb:.2f} GB (one process)")
    print(f"{head}; load {s['loadavg_before']}")
    print(f"{'method':16s} {'cases':>5s} {'ran':>5s} {'cpu s':>9s} " + " ".join(f"{p:>11s}" for p in PHASES))
    for m, v in s["per_method"].items():
        phases = " ".join(f"{v[f'seconds_{p}']:11.1f}" for p in PHASES)
        print(f"{m:16s} {v['cases']:5d} {v['computed']:5d} {v['cpu_seconds']:9.1f} {phases}")
    for m, v in s["embedding"].items():
        print(f"  embedding {m:16s} {v['cases']:3d} cases {v['cpu_seconds']:8.1f} cpu s")
    x = s["extrapolated"]
    print(f"extrapolated to the whole suite: {x['cpu_seconds']:.0f} cpu s, {x['wall_seconds_at_jobs']:.0f} s wall "
          f"at {s['jobs']} jobs ({len(x['missing'])} method x workload cells not measured, counted 0)")


if __name__ == "__main__":
    sys.exit(main())
