"""Transformer checkpoints as PQ workloads: layer selection and typing.

What: in a checkpoint read by :mod:`pgbench.checkpoint_files`, pick the weight
matrices to quantize with a regex and give each one a layer type (embedding,
attn_q/k/v/out, fc1, fc2), whose PQ block size and number of centroids a preset of
:mod:`pgbench.presets` gives.  The ``checkpoint`` data source wraps this module,
which also re-exports the public names of those two, so ``pgbench.checkpoints.X``
serves for all three.

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
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Mapping

from . import layer_types as lt
from .checkpoint_files import MANIFEST_KEY, Checkpoint, content_id, load_checkpoint
from .layer_types import LAYER_TYPES, Layer, untyped_note
from .presets import PAPER_TABLE_6, PRESETS, LayerConfig, check_layers, layer_configs

log = logging.getLogger(__name__)

__all__ = [
    "LAYER_TYPES", "PRESETS", "PAPER_TABLE_6", "MANIFEST_KEY", "Checkpoint", "Layer",
    "LayerConfig", "load_checkpoint", "content_id", "layer_type", "classify", "select_layers", "layer_configs",
    "check_layers",
]


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
