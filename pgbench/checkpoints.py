"""Transformer checkpoints as PQ workloads: loading, layer selection and presets.

What: read a local checkpoint (a Hugging Face folder, a fairseq ``.pt``, a plain
``.safetensors`` / ``.bin`` state dict, or a pgbench dump from :mod:`pgbench.dump`),
pick the weight matrices to quantize with a regex, give each one a layer type
(embedding, attn_q/k/v/out, fc1, fc2) and, per type, the PQ block size and number of
centroids of a preset.  The ``checkpoint`` data source wraps this module.

Why: the empty-cluster behaviour that the harness measures depends on the real
weight distributions and on the fairseq/paper PQ settings, so both must be
reproducible from names alone, and BERT-style (Hugging Face) and RoBERTa/fairseq
names must land on the same layer types.

Safety: ``.bin`` / ``.pt`` files are pickles.  They are opened with
``torch.load(weights_only=True)`` (plus ``argparse.Namespace``, which old fairseq
checkpoints store as ``args``); anything needing full unpickling is refused unless
``trust_checkpoint=True`` (CLI ``--trust-checkpoint``).

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

import argparse
import contextlib
import json
import logging
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

log = logging.getLogger(__name__)

__all__ = [
    "LAYER_TYPES", "PRESETS", "PAPER_TABLE_6", "MANIFEST_KEY", "Checkpoint", "Layer",
    "LayerConfig", "load_checkpoint", "layer_type", "select_layers", "layer_configs",
    "check_layers",
]

LAYER_TYPES = ("embedding", "attn_q", "attn_k", "attn_v", "attn_out", "fc1", "fc2")
_GROUPS = {"attn": ("attn_q", "attn_k", "attn_v", "attn_out"), "fc": ("fc1", "fc2")}

#: safetensors metadata key holding a pgbench dump's JSON manifest
MANIFEST_KEY = "pgbench_manifest"

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

# name (without ".weight") -> layer type; first match wins, so attn_out precedes fc2
_TYPE_PATTERNS = [
    (re.compile(r"(^|\.)(attention\.output\.dense|self_attn\.out_proj)$"), "attn_out"),
    (re.compile(r"(^|\.)(attention\.self\.query|self_attn\.q_proj)$"), "attn_q"),
    (re.compile(r"(^|\.)(attention\.self\.key|self_attn\.k_proj)$"), "attn_k"),
    (re.compile(r"(^|\.)(attention\.self\.value|self_attn\.v_proj)$"), "attn_v"),
    (re.compile(r"(^|\.)(intermediate\.dense|fc1)$"), "fc1"),
    (re.compile(r"(^|\.)(output\.dense|fc2)$"), "fc2"),
    (re.compile(r"(^|\.)(embeddings\.word_embeddings|embed_tokens)$"), "embedding"),
]


def layer_type(name: str) -> str | None:
    """The layer type of a parameter name given without ``.weight``, or None.

    BERT-style names (``attention.self.query|key|value``, ``attention.output.dense``,
    ``intermediate.dense``, ``output.dense``, ``embeddings.word_embeddings``) and
    RoBERTa/fairseq names (``self_attn.q_proj|k_proj|v_proj|out_proj``, ``fc1``,
    ``fc2``, ``embed_tokens``) map onto the same types, whatever the prefix.

    >>> layer_type("encoder.layer.0.attention.output.dense"), layer_type("encoder.layer.0.output.dense")
    ('attn_out', 'fc2')
    """
    for pattern, kind in _TYPE_PATTERNS:
        if pattern.search(name):
            return kind
    return None


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint.

    path : the file that was read (inside a folder, the weights file)
    tensors : parameter name -> tensor, tensors only, as stored (dtype kept)
    manifest : a pgbench dump's manifest (dict), or None for other files
    """

    path: Path
    tensors: dict[str, torch.Tensor]
    manifest: dict[str, Any] | None = None


@dataclass(frozen=True)
class Layer:
    """One selected weight matrix.

    name : parameter name without ``.weight``
    param : the full parameter name in the checkpoint
    weight : Tensor (out, in), as stored
    layer_type : one of :data:`LAYER_TYPES`
    """

    name: str
    param: str
    weight: torch.Tensor
    layer_type: str


def _weights_file(path: Path) -> Path:
    """The weights file of ``path`` (itself, or the file inside a Hugging Face folder)."""
    if path.is_dir():
        for candidate in ("model.safetensors", "pytorch_model.bin"):
            if (path / candidate).is_file():
                return path / candidate
        raise ValueError(f"{path}: folder holds neither model.safetensors nor pytorch_model.bin.")
    if not path.is_file():
        raise ValueError(f"{path}: checkpoint not found.")
    return path


def _load_safetensors(path: Path) -> Checkpoint:
    try:
        from safetensors import safe_open
    except ImportError:
        raise ValueError(
            f"{path}: reading .safetensors needs the safetensors package (pip install safetensors).") from None
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise ValueError(f"{path}: not a readable safetensors file ({_first_line(exc)}).") from None
    manifest = None
    if MANIFEST_KEY in metadata:
        try:
            manifest = json.loads(metadata[MANIFEST_KEY])
            types = {layer["param"]: layer["layer_type"] for layer in manifest["layers"]}
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path}: corrupt pgbench manifest in the safetensors metadata.") from None
        bad = sorted(p for p, t in types.items() if t not in LAYER_TYPES or p not in tensors)
        if bad:
            raise ValueError(f"{path}: pgbench manifest lists '{bad[0]}' with an unknown type or no tensor.")
    return Checkpoint(path, tensors, manifest)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _torch_reason(exc: BaseException) -> str:
    """The useful part of a torch.load error: the unpickler's own complaint if there is one."""
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        detail = [line.strip() for line in text.split(marker, 1)[1].splitlines() if line.strip()]
        if detail:
            return detail[0]
    return _first_line(exc)


#: the global a weights-only load refused, in each wording torch has used: "Unsupported global: GLOBAL x.y was
#: not an allowed global" (torch <= 2.12) and "Trying to load unsupported GLOBAL x.y whose module x is blocked"
#: (2.13, for modules such as os / posix, builtins' exec...)
_REFUSED_GLOBAL = re.compile(r"\bGLOBAL\s+([\w.]+)")


def _needs_full_unpickling(exc: BaseException) -> str | None:
    """What only full unpickling could load (a global's name), when ``exc`` is torch's weights-only refusal.

    None for any other failure (a truncated or foreign file is not readable either way).
    """
    if not isinstance(exc, pickle.UnpicklingError):
        return None
    text = str(exc)
    found = _REFUSED_GLOBAL.search(text)
    if found:
        return found.group(1)
    if "allowlisted" in text:      # "Can only build Tensor, Parameter, OrderedDict or types allowlisted ..."
        return "an object of a type not allowlisted for weights-only loading"
    return None


def _load_pickle(path: Path, trust_checkpoint: bool) -> Checkpoint:
    try:
        if trust_checkpoint:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        else:
            # old fairseq checkpoints store their options as an argparse.Namespace
            allow = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
            with allow([argparse.Namespace]) if allow else contextlib.nullcontext():
                obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        needs = _needs_full_unpickling(exc)
        if needs and not trust_checkpoint:
            raise ValueError(
                f"{path}: needs full unpickling (it stores {needs}), which can run arbitrary code; "
                f"pass --trust-checkpoint (trust_checkpoint=True) only if you trust its source."
            ) from None
        raise ValueError(f"{path}: not a readable torch checkpoint ({_torch_reason(exc)}).") from None
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        obj = obj["model"]  # fairseq: {"model": state_dict, "args"/"cfg": ..., ...}
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: holds a {type(obj).__name__}, not a state dict or a fairseq checkpoint.")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    return Checkpoint(path, tensors)


def load_checkpoint(path: str | Path, trust_checkpoint: bool = False) -> Checkpoint:
    """Load a local checkpoint's tensors.

    Parameters
    ----------
    path : str or Path
        A Hugging Face folder (``model.safetensors``, else ``pytorch_model.bin``), a
        ``.safetensors`` file (a pgbench dump carries its manifest), or a ``.bin`` /
        ``.pt`` file holding a state dict or a fairseq checkpoint (``{"model": ...}``).
    trust_checkpoint : bool, default False
        Allow full unpickling of ``.bin`` / ``.pt`` files (arbitrary code execution
        from an untrusted file); without it only tensors and plain containers load.

    Returns
    -------
    Checkpoint

    Raises
    ------
    ValueError
        One line naming the file: missing, unreadable or corrupt, needing
        ``--trust-checkpoint``, or holding no tensors.
    """
    if not str(path):
        raise ValueError("checkpoint path is empty.")
    weights = _weights_file(Path(path))
    if weights.suffix == ".safetensors":
        ckpt = _load_safetensors(weights)
    else:
        ckpt = _load_pickle(weights, trust_checkpoint)
    if not ckpt.tensors:
        raise ValueError(f"{weights}: holds no tensors.")
    return ckpt


def _compile(regex: str, where: Path) -> re.Pattern:
    try:
        return re.compile(regex)
    except re.error as exc:
        raise ValueError(f"{where}: invalid layers regex {regex!r} ({exc}).") from None


def select_layers(ckpt: Checkpoint, regex: str = "") -> list[Layer]:
    """The typed weight matrices whose name (without ``.weight``) ``re.search``-matches ``regex``.

    Candidates are 2-D floating-point ``*.weight`` tensors with a layer type (from
    the manifest for a pgbench dump, else from :func:`layer_type`); biases,
    LayerNorm, position embeddings, poolers and heads are never selected.

    Parameters
    ----------
    ckpt : Checkpoint
    regex : str, default ""
        Python regular expression; ``""`` selects every typed layer.

    Returns
    -------
    list of Layer
        In checkpoint order (for a dump, the manifest's order).

    Raises
    ------
    ValueError
        If ``regex`` is invalid or matches no typed layer (one line naming the file).
    """
    pattern = _compile(regex, ckpt.path)
    manifest_types = None
    if ckpt.manifest is not None:
        manifest_types = {layer["param"]: layer["layer_type"] for layer in ckpt.manifest["layers"]}
    chosen, untyped = [], []
    order = list(ckpt.tensors)
    if manifest_types is not None:  # a dump lists its layers in their original order
        order = list(manifest_types) + [p for p in order if p not in manifest_types]
    for param in order:
        tensor = ckpt.tensors[param]
        name = param[: -len(".weight")] if param.endswith(".weight") else param
        if not pattern.search(name):
            continue
        kind = manifest_types.get(param) if manifest_types is not None else (
            layer_type(name) if param.endswith(".weight") else None)
        if kind is None or tensor.ndim != 2 or not tensor.is_floating_point():
            untyped.append(name)
            continue
        chosen.append(Layer(name, param, tensor, kind))
    if untyped:
        log.debug("%s: regex %r also matches %d untyped tensors (skipped), e.g. %s",
                  ckpt.path, regex, len(untyped), untyped[0])
    if not chosen:
        hint = f" (only untyped tensors such as '{untyped[0]}')" if untyped else ""
        raise ValueError(f"{ckpt.path}: layers regex {regex!r} matches no quantizable layer{hint}.")
    return chosen


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
