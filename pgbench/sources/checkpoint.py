"""The ``checkpoint`` data source: layers of a local transformer checkpoint as PQ sub-vectors.

What: one :class:`~pgbench.sources.Dataset` per selected weight matrix, cut into
fairseq-ordered PQ sub-vectors (:func:`pgbench.pq.weight_to_subvectors`) with the
block size and number of centroids that the preset gives its layer type.

Why: this is the workload the PG k-means paper measures (RoBERTa's embedding,
attention and FFN layers quantized with 768 / 3072 centroids), and reading names,
types and PQ settings from one place keeps suites short.  Loading, layer typing and
presets live in :mod:`pgbench.checkpoints`; this module only binds them to the
source contract.  Everything that can be checked (preset, overrides, file, regex,
block sizes) is checked when the source is called, before the first layer is cut.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch

from .. import checkpoints
from ..pq import weight_to_subvectors
from . import Dataset, register_source


@register_source(
    "checkpoint",
    params={"path": "", "layers": "", "preset": "fairseq", "block_sizes": {}, "n_centroids": {},
            "trust_checkpoint": False},
)
def checkpoint(seed: int, path: str, layers: str, preset: str, block_sizes: dict[str, int],
               n_centroids: dict[str, int], trust_checkpoint: bool) -> Iterator[Dataset]:
    """Layers of a local checkpoint (HF folder, fairseq .pt, .safetensors, pgbench dump) as PQ sub-vectors.

    Parameters
    ----------
    seed : int
        Unused (the data are fixed); part of the source contract.
    path : str
        Hugging Face folder or weights file; see :func:`pgbench.checkpoints.load_checkpoint`.
    layers : str
        Regex ``re.search``-ed on parameter names without ``.weight``; ``""`` = all typed layers.
    preset : str
        ``fairseq``, ``paper-11.81``, ``paper-14.05``, ``paper-15.29`` or ``paper-15.90``.
    block_sizes, n_centroids : dict
        Per-type (or ``fc`` / ``attn`` group) overrides of the preset.
    trust_checkpoint : bool
        Allow full unpickling of ``.bin`` / ``.pt`` files.

    Returns
    -------
    iterator of Dataset
        Per layer: ``X`` (out*in/b, b) float32, ``k`` from the preset (not capped at
        the number of sub-vectors: k > n is left to the runner to report),
        ``layer_type``, ``weight_shape`` (out, in), ``block_size``, and ``meta`` with
        the file, the parameter name, the stored dtype and the preset.

    Raises
    ------
    ValueError
        One line, before any layer is produced: empty path, unknown preset or
        override, unreadable file, regex matching nothing, block size not dividing a
        layer's row length.
    """
    if not path:
        raise ValueError("data source 'checkpoint': the 'path' parameter is required.")
    configs = checkpoints.layer_configs(preset, block_sizes, n_centroids)
    ckpt = checkpoints.load_checkpoint(path, trust_checkpoint=trust_checkpoint)
    selected = checkpoints.select_layers(ckpt, layers)
    checkpoints.check_layers(selected, configs, ckpt.path)
    return _datasets(ckpt, selected, configs, preset)


def _datasets(ckpt: checkpoints.Checkpoint, selected: list[checkpoints.Layer],
              configs: dict[str, checkpoints.LayerConfig], preset: str) -> Iterator[Dataset]:
    source = (ckpt.manifest or {}).get("source")
    for layer in selected:
        config = configs[layer.layer_type]
        weight = layer.weight.detach().to(torch.float32)
        meta: dict[str, Any] = {"file": str(ckpt.path), "param": layer.param,
                                "dtype": str(layer.weight.dtype).removeprefix("torch."), "preset": preset}
        if source:
            meta["dumped_from"] = source
        yield Dataset(
            name=layer.name,
            X=weight_to_subvectors(weight, config.block_size).contiguous(),  # (out*in/b, b)
            k=config.n_centroids,
            layer_type=layer.layer_type,
            weight_shape=tuple(weight.shape),
            block_size=config.block_size,
            meta=meta,
        )
