"""Dump selected layers of a checkpoint into one self-describing safetensors file.

What: :func:`dump_layers` copies the weight matrices a regex selects (see
:func:`pgbench.checkpoints.select_layers`) into a single ``.safetensors`` file whose
metadata holds a JSON manifest under :data:`pgbench.checkpoints.MANIFEST_KEY`:
the source path, and per layer its name, parameter name, shape, dtype and layer
type, plus the pgbench version.  ``python -m pgbench dump`` is the CLI front end.
Every layer is stored ``(out, in)``, as the checkpoint source cuts it: a ``Conv1D``
weight transposed (``"transposed": true``), a block of a fused weight under its own
key ``NAME:SUFFIX.weight`` (``"source_param"`` and ``"rows"`` say where it came from).

Why: benchmarking a handful of layers should not need the whole model (nor
trusting a pickle) on every machine that runs a suite.  A dump is small, safe to
open, and the ``checkpoint`` source reads it back with its recorded layer types.
The file is written to a temporary file in the target directory and moved into
place with ``os.replace``, so readers never see a half-written dump.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

from . import __version__
from .checkpoints import MANIFEST_KEY, Layer, load_checkpoint, select_layers

log = logging.getLogger(__name__)

__all__ = ["dump_layers", "MANIFEST_FORMAT"]

#: value of the manifest's "format" field
MANIFEST_FORMAT = "pgbench-layer-dump/1"


def dump_layers(checkpoint: str | os.PathLike, layers_regex: str, out_file: str | os.PathLike,
                trust_checkpoint: bool = False, layer_types: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Write the selected layers of ``checkpoint`` into one safetensors file with a manifest.

    Parameters
    ----------
    checkpoint : str or PathLike
        Anything :func:`pgbench.checkpoints.load_checkpoint` reads.
    layers_regex : str
        Regex ``re.search``-ed on parameter names without ``.weight``; ``""`` = all
        typed layers (embedding, attention and FFN matrices).
    out_file : str or PathLike
        Target ``.safetensors`` path; its directory must exist; an existing file is
        replaced atomically.
    trust_checkpoint : bool, default False
        Allow full unpickling of ``.bin`` / ``.pt`` checkpoints.
    layer_types : dict regex -> spec, optional
        Extra typing rules (:func:`pgbench.checkpoints.select_layers`).

    Returns
    -------
    dict
        The manifest written: ``format``, ``pgbench_version``, ``source`` (absolute
        path of the file read) and ``layers``, a list of ``{"name", "param",
        "shape", "dtype", "layer_type"}`` (plus ``transposed``, ``source_param`` and
        ``rows`` where they apply).  Tensors are stored (out, in) under ``param`` with
        their original dtype.

    Raises
    ------
    ValueError
        One line naming the file: unreadable checkpoint, regex matching nothing,
        output directory missing, or the safetensors package absent.
    """
    out = Path(out_file)
    if out.suffix != ".safetensors":
        raise ValueError(f"{out}: a dump must be a .safetensors file.")
    if not out.parent.resolve().is_dir():
        raise ValueError(f"{out}: output directory {out.parent} does not exist.")
    try:
        from safetensors.torch import save_file
    except ImportError:
        raise ValueError(f"{out}: writing a dump needs the safetensors package (pip install safetensors).") from None
    ckpt = load_checkpoint(checkpoint, trust_checkpoint=trust_checkpoint)
    layers = select_layers(ckpt, layers_regex, layer_types)
    entries = [_entry(layer) for layer in layers]
    manifest = {
        "format": MANIFEST_FORMAT,
        "pgbench_version": __version__,
        "source": str(ckpt.path.resolve()),
        "layers": entries,
    }
    # clone: checkpoints may tie or view tensors, which safetensors refuses to save
    tensors = {e["param"]: layer.weight.detach().clone().contiguous() for e, layer in zip(entries, layers)}
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={MANIFEST_KEY: json.dumps(manifest)})
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("dumped %d layers of %s to %s", len(layers), ckpt.path, out)
    return manifest


def _entry(layer: Layer) -> dict[str, Any]:
    """A layer's manifest entry; a block of a fused weight is stored under its own ``NAME:SUFFIX.weight``."""
    entry: dict[str, Any] = {"name": layer.name, "param": layer.param, "shape": list(layer.weight.shape),
                             "dtype": str(layer.weight.dtype).removeprefix("torch."), "layer_type": layer.layer_type}
    if layer.transposed:
        entry["transposed"] = True
    if layer.rows is not None:
        entry.update(param=layer.name + ".weight", source_param=layer.param, rows=list(layer.rows))
    return entry
