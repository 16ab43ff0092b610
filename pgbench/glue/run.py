"""Downstream cases: fine-tune once, quantize with each heuristic combination, evaluate, store.

What: :class:`DownstreamCase` names one case (model folder, GLUE task, data folder,
method, preset, seed, fine-tuning hyper-parameters, one-shot or iPQ stages);
:func:`run_case` runs it and returns its ``downstream`` row (and stores it when a
results folder is given); :func:`run_grid` runs methods x presets x seeds over
one fine-tuned model, plus the unquantized baseline row (method ``float``).

Calling it from other code (e.g. a suite source type for downstream cases)::

    from pgbench.glue.run import DownstreamCase, run_case
    from pgbench.glue.finetune import FinetuneConfig
    case = DownstreamCase(model="/path/hf-folder", task="SST-2", data="/path/glue",
                          method="pg", preset="paper-11.81", seed=0,
                          finetune=FinetuneConfig(epochs=1, max_length=64, train_subset=20000))
    row = run_case(case, results="results/", cache="~/.cache/pgbench-glue")
    row["metric"], row["compression_ratio"], row["n_layers_with_empty"]

The fine-tuned model is cached under ``cache`` (key: model folder + task + train file
+ hyper-parameters), so many cases over the same model train it once; a case whose
``row_id`` is already in the store is not re-run (its stored row is returned).
Exceptions: ValueError for bad input (before any work); a failure while
quantizing or evaluating becomes a row with status ``error`` and the message.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch

from .. import sysinfo
from ..checkpoints import layer_configs
from ..validation import as_device
from .data import get_task, load_split
from .finetune import Finetuned, FinetuneConfig, evaluate, finetuned, take_subset
from .quantize import QuantReport, parse_method, quantize_model
from .results import DownstreamStore, now, row_id
from .stages import run_stages

log = logging.getLogger(__name__)

__all__ = ["DownstreamCase", "run_case", "run_grid", "float_row"]


@dataclass(frozen=True)
class DownstreamCase:
    """One downstream case.

    model : local Hugging Face folder; task : GLUE task name; data : GLUE root or task folder
    method : a :data:`pgbench.glue.quantize.METHODS` name or ``init:resolve[:consolidate]``
    params : extra heuristic parameters (routed by :func:`pgbench.kmeans`)
    preset : a :data:`pgbench.checkpoints.PRESETS` name; block_sizes / n_centroids: overrides
    layers : regex restricting the quantized layers ("" = all typed layers)
    ipq_stages : quantize FFN, embedding, attention in turn with ``stage_epochs`` of
        fine-tuning after each (:mod:`pgbench.glue.stages`); False = one shot
    """

    model: str
    task: str
    data: str
    method: str = "pg"
    preset: str = "paper-11.81"
    seed: int = 0
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    params: dict = field(default_factory=dict)
    block_sizes: dict = field(default_factory=dict)
    n_centroids: dict = field(default_factory=dict)
    layers: str = ""
    n_iter: int = 15
    ipq_stages: bool = False
    stage_epochs: float = 1.0


def _versions() -> dict[str, str | None]:
    """The k-means cases' versions (:func:`pgbench.sysinfo.versions`) plus transformers'."""
    try:
        import transformers
    except ImportError:
        return dict(sysinfo.versions())
    return {**sysinfo.versions(), "transformers": transformers.__version__}


def _base_row(case: DownstreamCase, ft: Finetuned, spec, device: torch.device) -> dict[str, Any]:
    return {"task": spec.name, "metric_name": spec.metric, "model": str(Path(case.model).resolve()),
            "seed": case.seed, "finetune_key": ft.key, "finetune": ft.info.get("config"),
            "seconds_finetune": ft.info.get("seconds_train"), "device": str(device),
            "threads": torch.get_num_threads(), "versions": _versions(), "created_at": now()}


def float_row(case: DownstreamCase, ft: Finetuned, device: torch.device) -> dict[str, Any]:
    """The unquantized model's row (method ``float``, preset ``none``, ratio 1) from ``ft.info``."""
    spec = get_task(case.task)
    metrics = ft.info["metrics"]
    total = sum(p.numel() for p in ft.model.parameters())
    row = _base_row(case, ft, spec, device)
    row.update(row_id=row_id(spec.name, row["model"], ft.key, "float", "none", None, None, None, {}, 0, 0, False),
               method="float", preset="none", metric=metrics.get(spec.metric), accuracy=metrics.get("accuracy"),
               metrics=metrics, compression_ratio=1.0, size_mb=total * 4 / 2 ** 20, original_mb=total * 4 / 2 ** 20,
               params={}, seed=0, n_layers=0, n_layers_with_empty=0, n_empty_total=0, status="ok", error="")
    return row


def _case_id(case: DownstreamCase, ft_key: str, combo) -> str:
    return row_id(get_task(case.task).name, str(Path(case.model).resolve()), ft_key, combo.name, case.preset,
                  combo.init, combo.resolve, combo.consolidate, dict(combo.params), case.seed, case.n_iter,
                  case.ipq_stages, {"block_sizes": case.block_sizes, "n_centroids": case.n_centroids,
                                    "layers": case.layers, "stage_epochs": case.stage_epochs if case.ipq_stages
                                    else None})


def run_case(case: DownstreamCase, results: str | Path | None = None, cache: str | Path | None = None,
             device: str = "cpu", kmeans_device: str | None = None, progress: bool = True,
             base: Finetuned | None = None) -> dict[str, Any]:
    """Run one case and return its row (stored in ``results`` when given).

    ``base`` reuses an already fine-tuned model (it is copied, never modified);
    otherwise :func:`pgbench.glue.finetune.finetuned` provides it (cached in ``cache``).
    """
    spec = get_task(case.task)
    dev_device = as_device(device)
    combo = parse_method(case.method, case.params)
    configs = layer_configs(case.preset, case.block_sizes, case.n_centroids)
    ft = base or finetuned(case.model, spec, case.data, case.finetune, cache, dev_device, progress)
    rid = _case_id(case, ft.key, combo)
    store = DownstreamStore(results) if results is not None else None
    try:
        if store is not None and store.has(rid):
            log.info("%s %s %s seed %d: already stored", spec.name, combo.name, case.preset, case.seed)
            return store.get(rid)
        row = _base_row(case, ft, spec, dev_device)
        row.update(row_id=rid, method=combo.name, preset=case.preset, init=combo.init, resolve=combo.resolve,
                   consolidate=combo.consolidate, params=dict(combo.params), n_iter=case.n_iter,
                   ipq_stages=int(case.ipq_stages),
                   layer_configs={t: [c.block_size, c.n_centroids] for t, c in configs.items()})
        row.update(_quantize_and_evaluate(case, ft, spec, combo, configs, dev_device,
                                          kmeans_device or str(dev_device), progress))
        if store is not None:
            store.add(row)
        return row
    finally:
        if store is not None:
            store.close()


def _quantize_and_evaluate(case, ft, spec, combo, configs, device, kmeans_device, progress) -> dict[str, Any]:
    out: dict[str, Any] = {}
    model = copy.deepcopy(ft.model)
    try:
        t0 = time.perf_counter()
        if case.ipq_stages:
            train = take_subset(load_split(case.data, spec, "train")[0], case.finetune.train_subset, case.finetune.seed)
            report, info = run_stages(model, ft.tokenizer, train, configs, combo, case.finetune, case.stage_epochs,
                                      case.seed, case.n_iter, case.layers, device, kmeans_device, progress=progress)
            out["seconds_finetune"] = (ft.info.get("seconds_train") or 0.0) + info["seconds_train"]
        else:
            report = quantize_model(model, configs, combo, case.seed, case.n_iter, case.layers,
                                    device=kmeans_device, progress=progress)
        out["seconds_quantize"] = time.perf_counter() - t0
        out.update(_report_columns(report))
        t0 = time.perf_counter()
        dev = load_split(case.data, spec, "dev")
        metrics = evaluate(model, ft.tokenizer, spec, dev, case.finetune.max_length, device, progress)
        out.update(metrics=metrics, metric=metrics.get(spec.metric), accuracy=metrics.get("accuracy"),
                   n_dev=sum(len(d) for d in dev), seconds_eval=time.perf_counter() - t0)
        log.info("%s %s %s: %s=%.2f, ratio %.2f, %d/%d layers with empties", spec.name, combo.name, case.preset,
                 spec.metric, out["metric"], out["compression_ratio"], out["n_layers_with_empty"], out["n_layers"])
    except (ValueError, RuntimeError) as exc:
        text = str(exc).strip().splitlines()
        out.update(status="error", error=text[0] if text else type(exc).__name__)
        log.error("%s %s %s: %s", spec.name, combo.name, case.preset, out["error"])
    finally:
        del model
    return out


def _report_columns(report: QuantReport) -> dict[str, Any]:
    failed = [r for r in report.layers if r.status == "error"]
    return {"compression_ratio": report.compression_ratio, "size_mb": report.size_mb,
            "original_mb": report.original_mb, "n_layers": len(report.layers),
            "n_layers_with_empty": report.n_layers_with_empty,
            "n_empty_total": sum(r.n_empty_final or 0 for r in report.layers),
            "empty_per_layer": report.empty_per_layer(), "layer_types": report.layer_types(),
            "status_per_layer": {r.name: r.status for r in report.layers},
            "rel_error_per_layer": {r.name: r.rel_error for r in report.layers},
            "status": report.status,
            "error": f"{len(failed)} layer(s) failed, e.g. {failed[0].name}: {failed[0].error}" if failed else ""}


def run_grid(model: str, task: str, data: str, methods: Iterable[str], presets: Iterable[str],
             seeds: Iterable[int] = (0,), finetune: FinetuneConfig = FinetuneConfig(),
             results: str | Path | None = None, cache: str | Path | None = None, device: str = "cpu",
             progress: bool = True, **case_fields: Any) -> list[dict[str, Any]]:
    """Fine-tune once, store the float row, then run every preset x method x seed case.

    ``case_fields`` go to :class:`DownstreamCase` (``ipq_stages``, ``n_iter``, ``layers``, ...).
    Everything is validated (methods, presets, task files) before the fine-tuning starts.
    Returns the rows, the float row first.
    """
    spec = get_task(task)
    presets, seeds = list(presets), list(seeds)
    methods = [m.strip() for m in methods if m.strip()]
    if not methods or not presets or not seeds:
        raise ValueError("give at least one method, one preset and one seed.")
    for method in methods:
        parse_method(method, case_fields.get("params"))
    for preset in presets:
        layer_configs(preset, case_fields.get("block_sizes"), case_fields.get("n_centroids"))
    load_split(data, spec, "dev")
    dev_device = as_device(device)
    ft = finetuned(model, spec, data, finetune, cache, dev_device, progress)
    base_case = DownstreamCase(model, spec.name, data, finetune=finetune, **case_fields)
    rows = [float_row(base_case, ft, dev_device)]
    if results is not None:
        with DownstreamStore(results) as store:
            store.add(rows[0])
    for preset in presets:
        for method in methods:
            for seed in seeds:
                case = dataclasses.replace(base_case, method=method, preset=preset, seed=seed)
                rows.append(run_case(case, results, cache, device, progress=progress, base=ft))
    return rows

