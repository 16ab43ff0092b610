"""Checkpoint files: the tensors of a local checkpoint, read safely and lazily.

What: read a local checkpoint (a Hugging Face folder, a fairseq ``.pt``, a plain
``.safetensors`` / ``.bin`` state dict, or a pgbench dump from :mod:`pgbench.dump`)
into a :class:`Checkpoint`: its tensors as stored, a dump's manifest, and the
``model_type`` of the ``config.json`` beside the weights file; and name a weights
file by its content (:func:`content_id`).

Why a module of its own: file formats, memory maps and pickle safety are one
concern, apart from which layers to quantize (:mod:`pgbench.checkpoints`) and with
which PQ settings (:mod:`pgbench.presets`); both of those only see a
:class:`Checkpoint`.

Safety: ``.bin`` / ``.pt`` files are pickles.  They are opened with
``torch.load(weights_only=True)`` (plus ``argparse.Namespace``, which old fairseq
checkpoints store as ``args``); anything needing full unpickling is refused unless
``trust_checkpoint=True`` (CLI ``--trust-checkpoint``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from .layer_types import LAYER_TYPES

__all__ = ["MANIFEST_KEY", "Checkpoint", "load_checkpoint", "content_id"]

#: safetensors metadata key holding a pgbench dump's JSON manifest
MANIFEST_KEY = "pgbench_manifest"


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
