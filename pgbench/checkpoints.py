"""Transformer checkpoints as PQ workloads: loading, layer selection and presets.

What: read a local checkpoint (a Hugging Face folder, a fairseq ``.pt``, a plain
``.safetensors`` / ``.bin`` state dict, or a pgbench dump from :mod:`pgbench.dump`),
pick the weight matrices to quantize with a regex, give each one a layer type
(embedding, attn_q/k/v/out, fc1, fc2) and, per type, the PQ block size and number of
centroids of a preset.  The ``checkpoint`` data source wraps this module.

Layer typing follows the model's family, declared as data in
:mod:`pgbench.layer_types`: the ``model_type`` of a Hugging Face ``config.json``
beside the weights file, else the family whose rules type the most weights (a
fairseq ``.pt`` gives ``fairseq``), plus a suite's own ``layer_types`` mapping tried
first.  Every layer comes out ``(out, in)``: weights stored ``(in, out)`` (GPT-2's
``Conv1D``) are transposed, fused ones (GPT-2's ``c_attn``) split into
``NAME:q|k|v``.  2-D weights that nothing types are named in one warning line.

Why: the empty-cluster behaviour that the harness measures depends on the real
weight distributions and on the fairseq/paper PQ settings, so both must be
reproducible from names alone, and every family's names must land on the same
layer types.

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
import dataclasses
import hashlib
import json
import logging
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from . import layer_types as lt
from .layer_types import LAYER_TYPES, Layer, untyped_note

log = logging.getLogger(__name__)

__all__ = [
    "LAYER_TYPES", "PRESETS", "PAPER_TABLE_6", "MANIFEST_KEY", "Checkpoint", "Layer",
    "LayerConfig", "load_checkpoint", "content_id", "layer_type", "classify", "select_layers", "layer_configs",
    "check_layers",
]

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

def layer_type(name: str, model_type: str | None = None) -> str | None:
    """The layer type of a parameter name given without ``.weight``, or None.

    With ``model_type`` (a :data:`pgbench.layer_types.FAMILY_RULES` key) that
    family's rules decide; without it, BERT-style names
    (``attention.self.query|key|value``, ``attention.output.dense``,
    ``intermediate.dense``, ``output.dense``, ``embeddings.word_embeddings``) and
    RoBERTa/fairseq names (``self_attn.q_proj|k_proj|v_proj|out_proj``, ``fc1``,
    ``fc2``, ``embed_tokens``) map onto the same types, whatever the prefix.  A fused
    weight that a rule splits (GPT-2's ``c_attn``) has no single type: None.

    >>> layer_type("encoder.layer.0.attention.output.dense"), layer_type("encoder.layer.0.output.dense")
    ('attn_out', 'fc2')
    >>> layer_type("layers.0.mlp.down_proj", "llama")
    'fc2'
    """
    rule = lt.match(lt.family_rules(model_type), name)
    return rule.parts[0][1] if rule is not None and len(rule.parts) == 1 else None


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint.

    path : the file that was read (inside a folder, the weights file)
    tensors : parameter name -> tensor, tensors only, as stored (dtype kept)
    manifest : a pgbench dump's manifest (dict), or None for other files
    model_type : ``model_type`` of the ``config.json`` beside the weights file, or None
    """

    path: Path
    tensors: dict[str, torch.Tensor]
    manifest: dict[str, Any] | None = None
    model_type: str | None = None


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
        with safe_open(str(path), framework="pt", device="cpu") as f:     # validates the header
            metadata = f.metadata() or {}
            names = list(f.keys())
            tensors = _mapped_tensors(path, names)
            if tensors is None:
                tensors = {name: f.get_tensor(name) for name in names}
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


_MAPPED_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                  "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
                  "BOOL": torch.bool}


def _mapped_tensors(path: Path, names: list[str]) -> dict[str, torch.Tensor] | None:
    """The tensors of a safetensors file as views of one copy-on-write memory map, or None (then copies).

    Nothing is read until a tensor's values are used, and what is read stays in the
    page cache, shared by every process mapping the file: a worker that clusters one
    layer at a time holds one layer's sub-vectors, not the whole checkpoint.
    """
    with path.open("rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    start = 8 + n
    size = path.stat().st_size
    if size <= start:
        return None
    raw = torch.from_numpy(np.memmap(path, dtype=np.uint8, mode="c", offset=start, shape=(size - start,)))
    out = {}
    for name in names:
        entry = header[name]
        dtype = _MAPPED_DTYPES.get(entry["dtype"])
        lo, hi = entry["data_offsets"]
        if dtype is None or (hi - lo) % dtype.itemsize or lo % dtype.itemsize:
            return None
        out[name] = raw[lo:hi].view(dtype).view(entry["shape"])
    return out


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
        ``--trust-checkpoint``, holding no tensors, or beside an unreadable
        ``config.json``.
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
    return dataclasses.replace(ckpt, model_type=_model_type(weights.parent / "config.json"))


def content_id(path: str | Path) -> str:
    """``sha256:HEX`` of the weights file ``path`` names (a folder's ``model.safetensors`` ...).

    What a checkpoint case's id hashes instead of the path, so that the same
    checkpoint gives the same ids on every machine and in every folder, and a changed
    file gives new ones.  Cached per process by (file, size, mtime).
    """
    weights = _weights_file(Path(path)).resolve()
    stat = weights.stat()
    key = (str(weights), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        digest = hashlib.sha256()
        with weights.open("rb") as f:
            while block := f.read(1 << 24):
                digest.update(block)
        _digests[key] = f"sha256:{digest.hexdigest()}"
    return _digests[key]


_digests: dict[tuple[str, int, int], str] = {}


def _model_type(config: Path) -> str | None:
    """``model_type`` of a Hugging Face ``config.json``; None without the file or the key."""
    if not config.is_file():
        return None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{config}: not a readable config.json ({_first_line(exc)}).") from None
    model_type = data.get("model_type") if isinstance(data, dict) else None
    return model_type if isinstance(model_type, str) else None


def _compile(regex: str, where: Path) -> re.Pattern:
    try:
        return re.compile(regex)
    except re.error as exc:
        raise ValueError(f"{where}: invalid layers regex {regex!r} ({exc}).") from None


def classify(ckpt: Checkpoint, regex: str = "", layer_types: Mapping[str, str] | None = None) -> lt.Selection:
    """Type the tensors of ``ckpt`` that ``regex`` matches (:func:`pgbench.layer_types.classify`).

    The family comes from ``ckpt.model_type`` (its ``config.json``), else from the
    names; a pgbench dump's manifest types its layers itself.  No warning, and no
    error for an empty result; ValueError (one line naming the file) for an invalid
    regex or rule, ``layer_types`` on a dump, or a split that does not divide a
    weight's rows.
    """
    pattern = _compile(regex, ckpt.path)
    manifest_types = None
    if ckpt.manifest is not None:
        manifest_types = {layer["param"]: layer["layer_type"] for layer in ckpt.manifest["layers"]}
    try:
        return lt.classify(ckpt.tensors, pattern, ckpt.model_type, layer_types, manifest_types)
    except ValueError as exc:
        raise ValueError(f"{ckpt.path}: {exc}") from None


_warned: set[tuple[str, str]] = set()


def select_layers(ckpt: Checkpoint, regex: str = "", layer_types: Mapping[str, str] | None = None) -> list[Layer]:
    """The typed weight matrices whose name (without ``.weight``) ``re.search``-matches ``regex``.

    Candidates are 2-D floating-point ``*.weight`` tensors typed by the manifest (a
    pgbench dump) or by the rules of :func:`classify`; biases, LayerNorms, position
    embeddings, poolers and heads are never selected.  The 2-D weights that
    ``regex`` matches but nothing types are named in one warning line.

    Parameters
    ----------
    ckpt : Checkpoint
    regex : str, default ""
        Python regular expression; ``""`` selects every typed layer.
    layer_types : dict regex -> spec, optional
        Extra rules, tried first (see :func:`classify`).

    Returns
    -------
    list of Layer
        In checkpoint order (for a dump, the manifest's order); a split weight's
        blocks in their row order.

    Raises
    ------
    ValueError
        If ``regex`` or a rule is invalid or nothing typed matches (one line naming the file).
    """
    selection = classify(ckpt, regex, layer_types)
    note = untyped_note(selection) if selection.untyped else ""
    if note and (str(ckpt.path), note) not in _warned:  # once per process, not once per preset
        _warned.add((str(ckpt.path), note))
        log.warning("%s: %s", ckpt.path, note)
    if not selection.layers:
        leftover = selection.untyped + selection.others
        hint = f" (only untyped tensors such as '{leftover[0]}')" if leftover else ""
        raise ValueError(f"{ckpt.path}: layers regex {regex!r} matches no quantizable layer{hint}.")
    return selection.layers


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
