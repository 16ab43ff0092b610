"""The ``checkpoint`` data source: layers of a local transformer checkpoint as PQ sub-vectors.

What: one :class:`~pgbench.sources.Dataset` per selected weight matrix, cut into
fairseq-ordered PQ sub-vectors (:func:`pgbench.pq.weight_to_subvectors`) with the
block size and number of centroids that the preset gives its layer type.

Why: this is the workload the PG k-means paper measures (RoBERTa's embedding,
attention and FFN layers quantized with 768 / 3072 centroids), and reading names,
types and PQ settings from one place keeps suites short.  Loading lives in
:mod:`pgbench.checkpoint_files`, presets in :mod:`pgbench.presets`, layer selection
in :mod:`pgbench.checkpoints` (which re-exports the other two), the typing rules in
:mod:`pgbench.layer_types`; this module only binds them to the source contract.  Everything that can be checked
(preset, overrides, file, regex, block sizes) is checked when the source is called,
before the first layer is cut; what needs no file (preset, overrides, ``layers``,
``layer_types``) already when a suite is loaded.

Case ids hash the checkpoint's content (:func:`pgbench.checkpoints.content_id`, the
sha256 of the weights file) instead of its path, so the same checkpoint gives the
same ids on every machine; ``layer_types`` enters an id only when given.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Iterator

import torch

from .. import checkpoints, layer_types as lt
from ..pq import weight_to_subvectors
from . import Dataset, register_source


def _check(params: dict[str, Any]) -> None:
    """Suite-load checks that need no file: the preset, overrides, ``layers`` regex and ``layer_types`` rules."""
    checkpoints.layer_configs(params["preset"], params["block_sizes"], params["n_centroids"])
    try:
        re.compile(params["layers"])
    except re.error as exc:
        raise ValueError(f"invalid layers regex {params['layers']!r} ({exc}).") from None
    lt.parse_rules(params["layer_types"])


def _id_params(params: dict[str, Any]) -> dict[str, Any]:
    """What a case id hashes: the file's content hash instead of its path, ``layer_types`` only when given."""
    out = {k: v for k, v in params.items() if k != "layer_types" or v}
    out["path"] = checkpoints.content_id(params["path"])
    return out


def _data_params(params: dict[str, Any]) -> dict[str, Any]:
    """What decides a layer's sub-vectors beside its name and (n, d): the file's content and the typing rules.

    A layer's points are ``weight_to_subvectors(weight, block_size)``: the weight
    (file, parameter, orientation and split, all named by the data set's name and
    the typing rules) and the block size (d).  The preset, the block size and
    centroid overrides (they reach the points only through d, and k is a case
    field) and ``layers`` (which layers, not what a layer holds) do not.
    """
    return {"path": checkpoints.content_id(params["path"]), "layer_types": params["layer_types"]}


@register_source(
    "checkpoint",
    params={"path": "", "layers": "", "preset": "fairseq", "block_sizes": {}, "n_centroids": {},
            "trust_checkpoint": False, "layer_types": {}},
    check=_check, id_params=_id_params, data_params=_data_params,
)
def checkpoint(seed: int, path: str, layers: str, preset: str, block_sizes: dict[str, int],
               n_centroids: dict[str, int], trust_checkpoint: bool,
               layer_types: dict[str, str]) -> Iterator[Dataset]:
    """Layers of a local checkpoint (HF folder, fairseq .pt, .safetensors, pgbench dump) as PQ sub-vectors.

    Parameters
    ----------
    seed : int
        Unused (the data are fixed); part of the source contract.
    path : str
        Hugging Face folder or weights file; see :func:`pgbench.checkpoints.load_checkpoint`.
    layers : str
        Regex ``re.search``-ed on parameter names without ``.weight`` (for a split
        weight, on its blocks' names, ``h.0.attn.c_attn:q``); ``""`` = all typed layers.
    preset : str
        ``fairseq``, ``paper-11.81``, ``paper-14.05``, ``paper-15.29`` or ``paper-15.90``.
    block_sizes, n_centroids : dict
        Per-type (or ``fc`` / ``attn`` group) overrides of the preset.
    trust_checkpoint : bool
        Allow full unpickling of ``.bin`` / ``.pt`` files.
    layer_types : dict
        The suite's own typing rules, ``{regex: spec}``, tried before the family's
        (:mod:`pgbench.layer_types`; spec ``attn_q``, ``T:fc1``, ``q=attn_q,k=attn_k,v=attn_v``).

    Returns
    -------
    iterator of Dataset
        Per layer: ``X`` (out*in/b, b) float32, ``k`` from the preset (not capped at
        the number of sub-vectors: k > n is left to the runner to report),
        ``layer_type``, ``weight_shape`` (out, in), ``block_size``, and ``meta`` with
        the file, the parameter name, the stored dtype and the preset (plus
        ``transposed`` / ``rows`` for a layer cut from a Conv1D or fused weight).

    Raises
    ------
    ValueError
        One line, before any layer is produced: empty path, unknown preset or
        override, bad ``layer_types`` rule, unreadable file, regex matching nothing,
        block size not dividing a layer's row length.
    """
    if not path:
        raise ValueError("data source 'checkpoint': the 'path' parameter is required.")
    configs = checkpoints.layer_configs(preset, block_sizes, n_centroids)
    ckpt = checkpoints.load_checkpoint(path, trust_checkpoint=trust_checkpoint)
    selected = checkpoints.select_layers(ckpt, layers, layer_types)
    checkpoints.check_layers(selected, configs, ckpt.path)
    return _datasets(ckpt, selected, configs, preset)


class LayerDataset(Dataset):
    """A layer's :class:`Dataset` whose ``X`` (out*in/b, b) is cut from the weight when asked for.

    The weight stays a view of the checkpoint (a memory map for safetensors files),
    and the sub-vectors of the last layer asked for in this process are kept (one
    slot, :data:`_last_cut`), so a worker running a layer's cases one after another
    cuts it once and holds one layer's sub-vectors at a time, however many layers
    the source yields.  ``X`` cannot be assigned.
    """

    def __init__(self, weight: torch.Tensor, **fields: Any):
        self._weight = weight
        super().__init__(X=None, **fields)

    @property  # type: ignore[override]
    def X(self) -> torch.Tensor:
        global _last_cut
        if _last_cut is None or _last_cut[0] is not self:
            _last_cut = None                 # free the previous layer's sub-vectors before cutting
            _last_cut = (self, weight_to_subvectors(self._weight.to(torch.float32), self.block_size).contiguous())
        return _last_cut[1]

    @X.setter
    def X(self, value: Any) -> None:
        if value is not None:
            raise AttributeError("a checkpoint layer's X is cut from its weight and cannot be assigned.")


_last_cut: tuple[LayerDataset, torch.Tensor] | None = None


def _datasets(ckpt: checkpoints.Checkpoint, selected: list[checkpoints.Layer],
              configs: dict[str, checkpoints.LayerConfig], preset: str) -> Iterator[Dataset]:
    source = (ckpt.manifest or {}).get("source")
    for layer in selected:
        config = configs[layer.layer_type]
        weight = layer.weight.detach()
        meta: dict[str, Any] = {"file": str(ckpt.path), "param": layer.param,
                                "dtype": str(layer.weight.dtype).removeprefix("torch."), "preset": preset}
        if source:
            meta["dumped_from"] = source
        if layer.transposed:
            meta["transposed"] = True
        if layer.rows is not None:
            meta["rows"] = list(layer.rows)
        yield LayerDataset(
            weight,
            name=layer.name,
            k=config.n_centroids,
            layer_type=layer.layer_type,
            weight_shape=tuple(weight.shape),
            block_size=config.block_size,
            meta=meta,
        )


def listing(entries: Iterable[tuple[str, dict[str, Any]]]) -> list[str]:
    """Lines for ``validate --list``: per checkpoint, its typed layers and its untyped 2-D weights.

    ``entries`` are (source label, bound params); entries reading the same file with
    the same ``layers`` and ``layer_types`` are listed once, under all their labels.
    Only what the ``layers`` regex matches is listed.
    """
    groups: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for label, params in entries:
        key = json.dumps([params[k] for k in ("path", "layers", "layer_types", "trust_checkpoint")], sort_keys=True)
        groups.setdefault(key, ([], params))[0].append(label)
    lines = []
    for labels, params in groups.values():
        ckpt = checkpoints.load_checkpoint(params["path"], trust_checkpoint=params["trust_checkpoint"])
        sel = checkpoints.classify(ckpt, params["layers"], params["layer_types"])
        n_weights = sum(1 for t in ckpt.tensors.values() if t.ndim == 2 and t.is_floating_point())
        lines.append(f"checkpoint {', '.join(repr(x) for x in labels)} {ckpt.path} ({sel.rules}"
                     f"{' and layer_types' if params['layer_types'] else ''}): {len(sel.layers)} typed layers, "
                     f"{len(sel.untyped)} untyped 2-D weights matching layers '{params['layers']}' "
                     f"({n_weights} 2-D tensors in the file)")
        for layer in sel.layers:
            how = " transposed" if layer.transposed else ""
            if layer.rows is not None:
                how += f" rows {layer.rows[0]}:{layer.rows[1]} of {layer.param}"
            lines.append(f"  typed    {layer.layer_type:9s} {layer.name:48s} {list(layer.weight.shape)}{how}")
        for name in sel.untyped:
            lines.append(f"  untyped  {'-':9s} {name:48s} {list(ckpt.tensors[name + '.weight'].shape)}")
    return lines
