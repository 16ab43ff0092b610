"""PQ-quantize a model's layers with any heuristic combination, counting size the paper's way.

What: :func:`quantize_model` replaces the weight of every selected layer (token
embedding, attention q/k/v/out, fc1, fc2, as typed by
:func:`pgbench.checkpoints.layer_type`) by its PQ reconstruction
``reconstruct_weight(centroids, labels, shape)`` from :func:`pgbench.kmeans` run with
the combination's init / resolve / consolidate heuristics and the preset's block
size and number of centroids for that layer type. It returns a
:class:`QuantReport` with per-layer empties, status and error, and the model's
compression ratio and size in MB counted as fairseq's ``SizeTracker`` and the
PG k-means paper do (:class:`pgbench.pq.LayerSize`; every parameter left
unquantized, biases, LayerNorms, position embeddings, pooler and head included,
at 4 bytes).

Methods: :data:`METHODS` names the combinations the paper compares (``fairseq``,
``sklearn``, ``faiss``, ``pg``, ``pg-full``); :func:`parse_method` also accepts any
``init:resolve[:consolidate]`` spec (e.g. ``kmeans++:pg:dwc``, or ``init + resolve``), named as
:func:`pgbench.naming.method_name` names it (``kmeans++ + pg + dwc``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import nn

from .. import kmeans, naming, registry
from ..checkpoints import Checkpoint, Layer, LayerConfig, check_layers, select_layers
from ..pq import LayerSize, compression_ratio, reconstruct_weight, relative_error, size_mb, weight_to_subvectors

log = logging.getLogger(__name__)

__all__ = ["Combination", "METHODS", "parse_method", "parse_methods", "LayerReport", "QuantReport",
           "quantize_layer", "quantize_model", "model_layers", "summarize"]


@dataclass(frozen=True)
class Combination:
    """A named heuristic combination: ``kmeans(init=..., resolve=..., consolidate=..., **params)``."""

    name: str
    init: str
    resolve: str
    consolidate: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def params_json(self) -> str:
        return json.dumps(dict(self.params), sort_keys=True)


#: arguments of pgbench.kmeans itself that a combination may set beside its heuristic parameters
ENGINE_PARAMS = ("max_points_per_centroid",)

#: the combinations of the PG k-means paper's comparison (fairseq's path uses max_tentatives=100;
#: faiss trains on its default subsample of 256 points per centroid, as faiss.Kmeans does)
METHODS: dict[str, Combination] = {c.name: c for c in (
    Combination("fairseq", "fairseq", "fairseq", None, {"max_tentatives": 100}),
    Combination("sklearn", "kmeans++", "sklearn"),
    Combination("faiss", "random", "faiss", None, {"max_points_per_centroid": 256}),
    Combination("pg", "pg", "pg"),
    Combination("pg-full", "pg", "pg", "dwc"),
)}


def parse_method(spec: str, params: Mapping[str, Any] | None = None) -> Combination:
    """A :data:`METHODS` name, or ``init:resolve[:consolidate]`` with registered names.

    ``params`` (heuristic parameters) are added to the method's own; every name is
    checked against the registry, so a typo fails here, before any work.
    """
    spec = spec.strip()
    if spec in METHODS:
        base = METHODS[spec]
        combo = Combination(base.name, base.init, base.resolve, base.consolidate,
                            {**base.params, **(params or {})})
    else:
        parts = naming.split_name(spec)
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"unknown method {spec!r}: use one of {', '.join(METHODS)} "
                             f"or init:resolve[:consolidate].")
        combo = Combination(naming.method_name(*parts), parts[0], parts[1], parts[2] if len(parts) == 3 else None,
                            dict(params or {}))
    selected = {"init": registry.get("init", combo.init), "resolve": registry.get("resolve", combo.resolve)}
    if combo.consolidate:
        selected["consolidate"] = registry.get("consolidate", combo.consolidate)
    for key, value in combo.params.items():
        if key in ENGINE_PARAMS:
            continue                        # checked by pgbench.kmeans before any work
        takers = [h for h in selected.values() if key in h.params]
        if not takers:
            raise ValueError(f"method {spec!r}: parameter {key!r} is taken by none of its heuristics.")
        for h in takers:    # the declared range too, so a bad value fails before any fine-tuning
            try:
                h.bind({key: value})
            except ValueError as exc:
                raise ValueError(f"method {spec!r}: {exc}") from None
    return combo


def parse_methods(text: str | Iterable[str]) -> list[Combination]:
    """Comma-separated (or listed) method specs -> combinations, duplicates removed."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: dict[str, Combination] = {}
    for item in items:
        if item.strip():
            combo = parse_method(item)
            out.setdefault(combo.name, combo)
    if not out:
        raise ValueError("no method given.")
    return list(out.values())


@dataclass
class LayerReport:
    """One quantized layer: ``name`` (parameter name without ``.weight``), ``layer_type``,
    ``shape`` (out, in), ``block_size``, ``k``, ``n_empty_final``, ``status`` (k-means status,
    or ``error``), ``error`` (one line or ""), ``rel_error`` ||W - W_hat|| / ||W||, ``seconds``."""

    name: str
    layer_type: str
    shape: tuple[int, int]
    block_size: int
    k: int
    n_empty_final: int | None
    status: str
    error: str
    rel_error: float | None
    seconds: float


@dataclass
class QuantReport:
    """The outcome of :func:`quantize_model`: ``layers`` (list of LayerReport), sizes in MB
    (MiB, fairseq's SizeTracker convention), ``compression_ratio`` and ``seconds``."""

    layers: list[LayerReport]
    compression_ratio: float
    size_mb: float
    original_mb: float
    seconds: float

    @property
    def n_layers_with_empty(self) -> int:
        return sum(1 for r in self.layers if (r.n_empty_final or 0) > 0)

    @property
    def status(self) -> str:
        """``error`` if a layer failed, else ``unresolved``/``stopped`` if any layer was, else ``ok``."""
        statuses = {r.status for r in self.layers}
        for status in ("error", "stopped", "unresolved"):
            if status in statuses:
                return status
        return "ok"

    def empty_per_layer(self) -> dict[str, int | None]:
        return {r.name: r.n_empty_final for r in self.layers}

    def layer_types(self) -> dict[str, str]:
        return {r.name: r.layer_type for r in self.layers}


def model_layers(model: nn.Module, regex: str = "") -> list[tuple[str, torch.Tensor, str]]:
    """(name without ``.weight``, parameter, layer type) of the model's quantizable layers,
    selected exactly as :func:`pgbench.checkpoints.select_layers` selects a checkpoint's
    (with the family of ``model.config.model_type``).  A ``Conv1D`` or fused weight's
    layer comes as an (out, in) view of its parameter, so writing into it writes the parameter."""
    params = dict(model.named_parameters())
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    ckpt = Checkpoint(Path(type(model).__name__), {n: p.detach() for n, p in params.items()}, model_type=model_type)
    return [(layer.name, layer.weight if layer.transposed or layer.rows else params[layer.param], layer.layer_type)
            for layer in select_layers(ckpt, regex)]


def quantize_layer(weight: torch.Tensor, config: LayerConfig, combo: Combination, seed: int = 0,
                   n_iter: int = 15, device: str = "cpu"):
    """k-means on ``weight``'s (N, b) sub-vectors; returns ``(KMeansResult, W_hat (out, in))``,
    ``W_hat`` in ``weight``'s dtype and device."""
    X = weight_to_subvectors(weight.detach().float(), config.block_size)            # (N, b)
    result = kmeans(X, config.n_centroids, init=combo.init, resolve=combo.resolve,
                    consolidate=combo.consolidate, n_iter=n_iter, seed=seed, device=device, **dict(combo.params))
    w_hat = reconstruct_weight(result.centroids, result.labels, tuple(weight.shape))  # (out, in)
    return result, w_hat.to(device=weight.device, dtype=weight.dtype)


def quantize_model(model: nn.Module, configs: Mapping[str, LayerConfig], combo: Combination, seed: int = 0,
                   n_iter: int = 15, regex: str = "", types: Iterable[str] | None = None,
                   device: str = "cpu", on_layer: Callable[[LayerReport, Any], None] | None = None,
                   progress: bool = False) -> QuantReport:
    """Replace the selected layers' weights in place by their PQ reconstructions.

    Parameters
    ----------
    model : nn.Module
        A Hugging Face or fairseq-named model; modified in place.
    configs : layer type -> LayerConfig (from :func:`pgbench.checkpoints.layer_configs`)
    combo : the heuristic combination
    seed, n_iter, device : passed to :func:`pgbench.kmeans` (same seed for every layer)
    regex : restricts the layers (``re.search`` on names without ``.weight``)
    types : restricts the layer types (iPQ stages quantize one group at a time)
    on_layer : called as ``on_layer(report, kmeans_result)`` after each layer (None on error)

    A layer whose k-means raises (for instance k larger than its number of
    sub-vectors) keeps its float weight, is reported with status ``error`` and is
    counted unquantized (4 bytes per weight) in the size.

    Returns
    -------
    QuantReport
    """
    started = time.perf_counter()
    layers = model_layers(model, regex)
    if types is not None:
        wanted = set(types)
        layers = [layer for layer in layers if layer[2] in wanted]
    check_layers([Layer(n, n + ".weight", p.detach(), t) for n, p, t in layers], configs, type(model).__name__)
    reports: list[LayerReport] = []
    total = sum(p.numel() for p in model.parameters())
    bar = None
    if progress:
        from .finetune import progress_bar
        bar = progress_bar(len(layers), f"quantize {combo.name}", True)
    for name, param, kind in layers:
        config = configs[kind]
        t0 = time.perf_counter()
        try:
            result, w_hat = quantize_layer(param, config, combo, seed, n_iter, device)
        except (ValueError, RuntimeError) as exc:
            error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            report = LayerReport(name, kind, tuple(param.shape), config.block_size, config.n_centroids, None,
                                 "error", error, None, time.perf_counter() - t0)
            log.warning("%s: %s", name, error)
            result = None
        else:
            rel = relative_error(param.detach(), w_hat)
            with torch.no_grad():
                param.copy_(w_hat)
            report = LayerReport(name, kind, tuple(param.shape), config.block_size, config.n_centroids,
                                 result.n_empty_final, result.status, "", rel, time.perf_counter() - t0)
            log.info("%s %s b=%d k=%d: %s, %d empty, rel. error %.4f, %.1f s", name, list(param.shape),
                     config.block_size, config.n_centroids, result.status, result.n_empty_final, rel,
                     report.seconds)
        reports.append(report)
        if on_layer is not None:
            on_layer(report, result)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return summarize(reports, total, time.perf_counter() - started)


def summarize(reports: list[LayerReport], total_params: int, seconds: float) -> QuantReport:
    """Size accounting of a quantized model of ``total_params`` parameters: the layers of
    ``reports`` that did not fail count as PQ (:class:`LayerSize`), everything else at 4 bytes."""
    sizes = [LayerSize(r.shape[0] * r.shape[1], r.block_size, r.k) for r in reports if r.status != "error"]
    other = total_params - sum(s.n_params for s in sizes)
    return QuantReport(list(reports), compression_ratio(sizes, other), size_mb(sizes, other),
                       size_mb(sizes, other, compressed=False), seconds)

