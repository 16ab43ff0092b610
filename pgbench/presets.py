"""PQ presets: per layer type, the block size and number of centroids to quantize with.

What: the ``fairseq`` preset (fairseq's defaults) and one ``paper-RATIO`` preset per
compression ratio of the PG k-means paper's Table 6 (:data:`PRESETS`), per-type or
per-group overrides of them (:func:`layer_configs`), and the check that a preset's
block sizes divide the selected layers' rows (:func:`check_layers`).

Why a module of its own: the settings are declared once, as data, and read by the
``checkpoint`` source, the GLUE runs and the benchmarks alike; they need no
checkpoint file, so a suite's preset and overrides are checked before any file is
read.

Presets and the PG k-means paper's Table 6 (appendix A.1)
---------------------------------------------------------
Table 6 lists, per compression ratio, four block sizes headed "Compr.",
"Linear.fc", "Linear.attn", "Linear.emb".  Our reading: the headings follow
fairseq's quantization config, whose ``block_sizes`` are keyed by module class and
by a fuzzy name (``Linear: {fc, attn, emb}``, ``Embedding: {emb}``; see
``/work/shared/notes/baselines.md`` 1.1).  "Compr." is taken as the ``Embedding``
module's block size (the token embedding, type ``embedding``), "Linear.fc" as
fc1/fc2, "Linear.attn" as the q/k/v/out projections.  "Linear.emb" is fairseq's
block size for ``Linear`` layers whose name contains ``emb`` (the adaptive-input
embedding projections); no layer of a BERT/RoBERTa encoder is such a layer (the
paper quantizes 73 layers = 1 embedding + 12 x 6 linear layers), so it is kept in
:data:`PAPER_TABLE_6` for the record and used by no layer type.  Centroids: 768
for the embedding, 3072 for every linear layer (appendix A.1).  Caveat: the model
sizes in the paper's Table 2 do not follow from fairseq's size accounting under
this reading (nor under the reading "Linear.emb = embedding"), so the mapping is
an interpretation, not a verified reproduction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .layer_types import LAYER_TYPES, Layer

__all__ = ["PRESETS", "PAPER_TABLE_6", "LayerConfig", "layer_configs", "check_layers"]

_GROUPS = {"attn": ("attn_q", "attn_k", "attn_v", "attn_out"), "fc": ("fc1", "fc2")}

#: compression ratio -> block sizes (Compr., Linear.fc, Linear.attn, Linear.emb)
PAPER_TABLE_6 = {
    "11.81": (4, 4, 4, 16),
    "14.05": (8, 4, 4, 8),
    "15.29": (8, 4, 4, 16),
    "15.90": (8, 16, 4, 8),
}


@dataclass(frozen=True)
class LayerConfig:
    """PQ settings of one layer type: sub-vector length and codebook size."""

    block_size: int
    n_centroids: int


def _preset(embedding: int, fc: int, attn: int, k_embedding: int, k_linear: int) -> dict[str, LayerConfig]:
    configs = {"embedding": LayerConfig(embedding, k_embedding)}
    configs.update({t: LayerConfig(fc, k_linear) for t in _GROUPS["fc"]})
    configs.update({t: LayerConfig(attn, k_linear) for t in _GROUPS["attn"]})
    return configs


#: preset name -> layer type -> LayerConfig
PRESETS: dict[str, dict[str, LayerConfig]] = {
    "fairseq": _preset(embedding=8, fc=8, attn=4, k_embedding=256, k_linear=256),
    **{f"paper-{ratio}": _preset(embedding=emb, fc=fc, attn=attn, k_embedding=768, k_linear=3072)
       for ratio, (emb, fc, attn, _linear_emb) in PAPER_TABLE_6.items()},
}


def _positive_ints(mapping: Any, what: str) -> dict[str, int]:
    """Validate an override dict keyed by layer type or group ("attn", "fc")."""
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{what} must be a dict of layer type -> int, got {type(mapping).__name__}.")
    out = {}
    for key, value in mapping.items():
        if key not in LAYER_TYPES and key not in _GROUPS:
            known = ", ".join(LAYER_TYPES + tuple(_GROUPS))
            raise ValueError(f"{what} has unknown layer type {key!r} (known: {known}).")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{what}[{key!r}] must be a positive integer, got {value!r}.")
        out[key] = value
    return out


def _override(mapping: dict[str, int], kind: str) -> int | None:
    """Value for ``kind``: its own key first, then its group's key."""
    if kind in mapping:
        return mapping[kind]
    group = next((g for g, members in _GROUPS.items() if kind in members), None)
    return mapping.get(group) if group else None


def layer_configs(preset: str = "fairseq", block_sizes: Mapping[str, int] | None = None,
                  n_centroids: Mapping[str, int] | None = None) -> dict[str, LayerConfig]:
    """Per layer type PQ settings: a preset with optional overrides.

    Parameters
    ----------
    preset : str
        A key of :data:`PRESETS`: ``fairseq`` (256 centroids; block sizes fc 8,
        attn 4, embedding 8) or ``paper-11.81``, ``paper-14.05``, ``paper-15.29``,
        ``paper-15.90`` (the PG k-means paper's Table 6, see the module docstring).
    block_sizes, n_centroids : dict, optional
        Overrides keyed by layer type (``fc1``, ``attn_q``, ...) or by group
        (``fc``, ``attn``); a type's own key beats its group's.

    Returns
    -------
    dict
        Layer type -> :class:`LayerConfig`, for every type in :data:`LAYER_TYPES`.

    Raises
    ------
    ValueError
        Unknown preset or layer type, or a value that is not a positive integer.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)}).")
    sizes = _positive_ints(block_sizes or {}, "block_sizes")
    counts = _positive_ints(n_centroids or {}, "n_centroids")
    configs = {}
    for kind, base in PRESETS[preset].items():
        b = _override(sizes, kind)
        k = _override(counts, kind)
        configs[kind] = LayerConfig(base.block_size if b is None else b, base.n_centroids if k is None else k)
    return configs


def check_layers(layers: list[Layer], configs: Mapping[str, LayerConfig], where: str | Path) -> None:
    """Raise ValueError (one line naming the layer) if a block size does not divide its row length."""
    for layer in layers:
        b = configs[layer.layer_type].block_size
        row = layer.weight.shape[1]
        if row % b:
            raise ValueError(
                f"{where}: block size {b} ({layer.layer_type}) does not divide the row length {row} "
                f"of layer '{layer.name}' {list(layer.weight.shape)}."
            )
