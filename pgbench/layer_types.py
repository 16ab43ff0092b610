"""Which weight of a transformer is which PQ layer type, per model family, declared as data.

What: :data:`FAMILY_RULES` maps a model family (a Hugging Face ``config.json``
``model_type``, or ``fairseq`` for fairseq checkpoints) to rules ``regex -> spec``.
A spec is one layer type of :data:`LAYER_TYPES`, optionally with flags, in a small
grammar shared with the ``layer_types`` mapping a suite may give a checkpoint
source::

    spec  = ["T:"] part ("," part)*
    part  = TYPE                      (a whole weight)
          | SUFFIX "=" TYPE           (one of several equal row blocks: a fused weight)

``T:`` says the weight is stored ``(in, out)``, as GPT-2's ``Conv1D`` stores it, and
is transposed to ``(out, in)`` before anything else (fairseq's PQ reshape, and so
:func:`pgbench.pq.weight_to_subvectors`, cuts rows of ``(out, in)``).  Several
parts split the ``(out, in)`` rows into that many equal blocks, in order, each a
layer of its own named ``NAME:SUFFIX``: GPT-2's fused ``c_attn`` is
``T:q=attn_q,k=attn_k,v=attn_v`` (its output columns are q, k, v in that order,
``split(n_embd, dim=2)`` in ``GPT2Attention``), giving ``h.0.attn.c_attn:q`` etc.

Matching: a parameter name is taken without ``.weight``; the first rule whose
pattern ``re.search``-es it wins.  Family patterns are name *tails*: each is
wrapped as ``(?:^|\\.)(?:PATTERN)$`` so it matches whole dotted components at the
end of the name, whatever prefix a task head adds (``bert.``, ``transformer.``,
``model.``).  A suite's ``layer_types`` patterns are plain ``re.search`` regexes and
are tried before the family's.

Why here: the rules are the single declaration that checkpoint loading, dumps,
``validate --list`` and the GLUE pipeline derive their typing from; adding a
family is adding one entry.  Weights no rule types (position embeddings, poolers,
heads, embedding projections, relative-position biases) stay untyped and are
reported, never dropped silently (see :func:`pgbench.checkpoints.select_layers`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

import torch

__all__ = ["LAYER_TYPES", "FAMILY_RULES", "DEFAULT_FAMILIES", "Rule", "Layer", "Selection", "parse_rule",
           "parse_rules", "family_rules", "detect_family", "match", "classify", "untyped_note"]

LAYER_TYPES = ("embedding", "attn_q", "attn_k", "attn_v", "attn_out", "fc1", "fc2")

# ---------------------------------------------------------------- the rules, as data

# BERT's encoder layer, shared by its descendants
_BERT_ATTN = {
    r"attention\.self\.query": "attn_q",
    r"attention\.self\.key": "attn_k",
    r"attention\.self\.value": "attn_v",
    r"attention\.output\.dense": "attn_out",
}
_BERT_FFN = {
    r"intermediate\.dense": "fc1",
    r"(?<!attention\.)output\.dense": "fc2",
}
_BERT = {r"embeddings\.word_embeddings": "embedding", **_BERT_ATTN, **_BERT_FFN}
_LLAMA = {
    r"embed_tokens": "embedding",
    r"self_attn\.q_proj": "attn_q",
    r"self_attn\.k_proj": "attn_k",
    r"self_attn\.v_proj": "attn_v",
    r"self_attn\.o_proj": "attn_out",
    r"mlp\.(gate|up)_proj": "fc1",       # SwiGLU: both input projections are fc1
    r"mlp\.down_proj": "fc2",
}
_T5 = {                                  # relative_attention_bias stays untyped
    r"shared|(encoder|decoder)\.embed_tokens": "embedding",
    r"(SelfAttention|EncDecAttention)\.q": "attn_q",
    r"(SelfAttention|EncDecAttention)\.k": "attn_k",
    r"(SelfAttention|EncDecAttention)\.v": "attn_v",
    r"(SelfAttention|EncDecAttention)\.o": "attn_out",
    r"DenseReluDense\.wi(_0|_1)?": "fc1",   # wi, or gated wi_0 / wi_1
    r"DenseReluDense\.wo": "fc2",
}

#: family -> {regex on a name tail: spec}; first match wins
FAMILY_RULES: dict[str, dict[str, str]] = {
    "bert": _BERT,
    "roberta": _BERT,
    "xlm-roberta": _BERT,
    "electra": _BERT,                    # embeddings_project (embedding -> hidden) stays untyped
    "albert": {                          # one shared layer per group; embedding_hidden_mapping_in untyped
        r"embeddings\.word_embeddings": "embedding",
        r"attention\.query": "attn_q",
        r"attention\.key": "attn_k",
        r"attention\.value": "attn_v",
        r"attention\.dense": "attn_out",
        r"ffn": "fc1",
        r"ffn_output": "fc2",
    },
    "distilbert": {
        r"embeddings\.word_embeddings": "embedding",
        r"attention\.q_lin": "attn_q",
        r"attention\.k_lin": "attn_k",
        r"attention\.v_lin": "attn_v",
        r"attention\.out_lin": "attn_out",
        r"ffn\.lin1": "fc1",
        r"ffn\.lin2": "fc2",
    },
    "mpnet": {                           # relative_attention_bias stays untyped
        r"embeddings\.word_embeddings": "embedding",
        r"attention\.attn\.q": "attn_q",
        r"attention\.attn\.k": "attn_k",
        r"attention\.attn\.v": "attn_v",
        r"attention\.attn\.o": "attn_out",
        **_BERT_FFN,
    },
    "deberta-v2": {                      # pos_*_proj project relative positions into query / key space
        r"embeddings\.word_embeddings": "embedding",
        r"attention\.self\.(query_proj|pos_query_proj)": "attn_q",
        r"attention\.self\.(key_proj|pos_key_proj)": "attn_k",
        r"attention\.self\.value_proj": "attn_v",
        r"attention\.output\.dense": "attn_out",
        **_BERT_FFN,
    },
    "gpt2": {                            # Conv1D: every linear weight is stored (in, out)
        r"wte": "embedding",
        r"attn\.c_attn": "T:q=attn_q,k=attn_k,v=attn_v",
        r"crossattention\.q_attn": "T:attn_q",
        r"crossattention\.c_attn": "T:k=attn_k,v=attn_v",
        r"(attn|crossattention)\.c_proj": "T:attn_out",
        r"mlp\.c_fc": "T:fc1",
        r"mlp\.c_proj": "T:fc2",
    },
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "t5": _T5,
    "mt5": _T5,
    "vit": {                             # no token embedding: the patch projection is a 4-D Conv2d
        r"attention\.attention\.query|attention\.q_proj": "attn_q",   # saved names, then transformers 5 modules
        r"attention\.attention\.key|attention\.k_proj": "attn_k",
        r"attention\.attention\.value|attention\.v_proj": "attn_v",
        r"attention\.output\.dense|attention\.o_proj": "attn_out",
        r"intermediate\.dense|mlp\.fc1": "fc1",
        r"(?<!attention\.)output\.dense|mlp\.fc2": "fc2",
    },
    "fairseq": {                         # fairseq RoBERTa / translation models (no config.json)
        r"embed_tokens": "embedding",
        r"(self_attn|encoder_attn)\.q_proj": "attn_q",
        r"(self_attn|encoder_attn)\.k_proj": "attn_k",
        r"(self_attn|encoder_attn)\.v_proj": "attn_v",
        r"(self_attn|encoder_attn)\.out_proj": "attn_out",
        r"fc1": "fc1",
        r"fc2": "fc2",
    },
}

#: the rules of :func:`family_rules` ``(None)``: BERT-style and fairseq names, as before families
DEFAULT_FAMILIES = ("bert", "fairseq")


# ------------------------------------------------------------------------- rules

@dataclass(frozen=True)
class Rule:
    """One compiled rule.

    regex : the pattern as written; pattern : compiled (tails already wrapped)
    parts : ((suffix, layer type), ...); one part with suffix "" for a whole weight
    transpose : the weight is stored (in, out) and is transposed to (out, in)
    origin : the family name, or "layer_types" for a suite's mapping
    """

    regex: str
    pattern: re.Pattern
    parts: tuple[tuple[str, str], ...]
    transpose: bool
    origin: str

    def blocks(self, name: str, n_rows: int) -> list[tuple[str, str, tuple[int, int] | None]]:
        """(sub-layer name, layer type, rows of the (out, in) weight or None) per part.

        Raises ValueError (one line) if the parts do not split ``n_rows`` evenly.
        """
        if len(self.parts) == 1:
            return [(name, self.parts[0][1], None)]
        if n_rows % len(self.parts):
            raise ValueError(f"layer '{name}': {n_rows} rows do not split into {len(self.parts)} equal blocks "
                             f"({self.origin} rule {self.regex!r}).")
        size = n_rows // len(self.parts)
        return [(f"{name}:{suffix}", kind, (i * size, (i + 1) * size))
                for i, (suffix, kind) in enumerate(self.parts)]


def parse_rule(regex: str, spec: str, origin: str = "layer_types", tail: bool = False) -> Rule:
    """Compile ``regex -> spec`` (grammar in the module docstring).

    ``tail=True`` wraps the pattern as a dotted name tail (family rules).

    Raises
    ------
    ValueError
        One line: a regex that does not compile, an empty or unknown layer type, a
        split without suffixes or with repeated ones.
    """
    where = f"{origin} {regex!r}"
    if not isinstance(regex, str) or not regex:
        raise ValueError(f"{origin}: a pattern must be a non-empty regex string, got {regex!r}.")
    if not isinstance(spec, str):
        raise ValueError(f"{where}: the layer type must be a string, got {spec!r}.")
    try:
        pattern = re.compile(rf"(?:^|\.)(?:{regex})$" if tail else regex)
    except re.error as exc:
        raise ValueError(f"{where}: invalid regex ({exc}).") from None
    transpose = spec.startswith("T:")
    items = [item.strip() for item in spec.removeprefix("T:").split(",")]
    parts = []
    for item in items:
        suffix, _, kind = item.rpartition("=")
        if kind not in LAYER_TYPES:
            raise ValueError(f"{where}: unknown layer type {kind!r} in {spec!r} "
                             f"(known: {', '.join(LAYER_TYPES)}; grammar: [T:]TYPE or [T:]a=TYPE,b=TYPE,...).")
        parts.append((suffix.strip(), kind))
    suffixes = [s for s, _ in parts]
    if len(parts) > 1 and (not all(suffixes) or len(set(suffixes)) < len(suffixes)):
        raise ValueError(f"{where}: a split {spec!r} needs a distinct SUFFIX=TYPE per block.")
    if len(parts) == 1 and suffixes[0]:
        raise ValueError(f"{where}: {spec!r} names one block; write the type alone.")
    return Rule(regex, pattern, tuple(parts), transpose, origin)


def parse_rules(mapping: Mapping[str, str] | None, origin: str = "layer_types", tail: bool = False) -> tuple[Rule, ...]:
    """Compile a ``{regex: spec}`` mapping in its order (see :func:`parse_rule`)."""
    if mapping is None:
        return ()
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{origin} must be a table of regex -> layer type, got {type(mapping).__name__}.")
    return tuple(parse_rule(regex, spec, origin, tail) for regex, spec in mapping.items())


_COMPILED = {family: parse_rules(rules, family, tail=True) for family, rules in FAMILY_RULES.items()}


def family_rules(family: str | None) -> tuple[Rule, ...]:
    """The compiled rules of ``family``; ``None`` gives :data:`DEFAULT_FAMILIES`' rules."""
    if family is None:
        return tuple(rule for f in DEFAULT_FAMILIES for rule in _COMPILED[f])
    return _COMPILED[family]


def match(rules: Iterable[Rule], name: str) -> Rule | None:
    """The first rule whose pattern ``re.search``-es ``name`` (without ``.weight``), or None."""
    return next((rule for rule in rules if rule.pattern.search(name)), None)


def detect_family(names: Iterable[str]) -> str | None:
    """The family whose rules type the most of ``names`` (ties: table order), None if none types any.

    For checkpoints without a usable ``config.json``: a fairseq ``.pt`` picks
    ``fairseq``, a bare BERT state dict ``bert``, a GPT-2 one ``gpt2``.
    """
    names = list(names)
    best, best_count = None, 0
    for family, rules in _COMPILED.items():
        count = sum(1 for name in names if match(rules, name) is not None)
        if count > best_count:
            best, best_count = family, count
    return best


# ------------------------------------------------------------------ classification

@dataclass(frozen=True)
class Layer:
    """One selected weight matrix.

    name : parameter name without ``.weight``; a block of a split weight adds
        ``:SUFFIX`` (``h.0.attn.c_attn:q``)
    param : the full parameter name in the checkpoint
    weight : Tensor (out, in): the stored tensor, or a view of it transposed
        (``transposed``) and/or restricted to ``rows`` of the (out, in) matrix
    layer_type : one of :data:`LAYER_TYPES`
    transposed : the stored tensor is (in, out) (a ``Conv1D``)
    rows : (start, stop) of the block within the (out, in) matrix, or None
    """

    name: str
    param: str
    weight: torch.Tensor
    layer_type: str
    transposed: bool = False
    rows: tuple[int, int] | None = None



@dataclass(frozen=True)
class Selection:
    """What :func:`classify` found among the tensors a regex matches.

    layers : the typed layers, in checkpoint order (a split weight's blocks in row order)
    untyped : names (without ``.weight``) of the 2-D floating-point weights no rule types
    others : names of the other matched tensors (biases, norms, non-2-D), for hints
    family : the family whose rules typed the layers ("manifest" for a pgbench dump), or None
    basis : how the family was chosen: "config.json", "names", "manifest" or "none"
    """

    layers: list[Layer]
    untyped: list[str]
    others: list[str]
    family: str | None
    basis: str

    @property
    def rules(self) -> str:
        """Which rules typed the layers, in words: "bert rules from config.json"."""
        return f"{self.family} rules from {self.basis}" if self.family else "no family's rules matched"


def _is_weight(param: str, tensor: torch.Tensor) -> bool:
    return param.endswith(".weight") and tensor.ndim == 2 and tensor.is_floating_point()


def classify(tensors: Mapping[str, torch.Tensor], pattern: re.Pattern, model_type: str | None = None,
             layer_types: Mapping[str, str] | None = None,
             manifest_types: Mapping[str, str] | None = None) -> Selection:
    """Type every tensor whose name ``pattern`` matches.

    Parameters
    ----------
    tensors : parameter name -> tensor, in checkpoint order
    pattern : ``re.search``-ed on names without ``.weight``; for a split weight, on
        each block's name (``h.0.attn.c_attn:q``)
    model_type : a :data:`FAMILY_RULES` key picks that family; anything else (None,
        an unknown type) lets :func:`detect_family` pick it from the names
    layer_types : a suite's own ``{regex: spec}`` rules, tried before the family's
    manifest_types : a pgbench dump's ``param -> layer type`` (its tensors are
        already (out, in)); then no rule applies and ``layer_types`` is refused

    Raises
    ------
    ValueError
        One line: an invalid rule, ``layer_types`` with a manifest, a split that does
        not divide a weight's rows.
    """
    user = parse_rules(layer_types or {})
    if manifest_types is not None:
        if user:
            raise ValueError("a pgbench dump types its layers in its manifest; drop layer_types.")
        rules, family, basis = (), "manifest", "manifest"
        order = list(manifest_types) + [p for p in tensors if p not in manifest_types]  # the original order
    else:
        manifest_types = {}
        if model_type in FAMILY_RULES:
            family, basis = model_type, "config.json"
        else:
            family = detect_family(p.removesuffix(".weight") for p, t in tensors.items() if _is_weight(p, t))
            basis = "names" if family else "none"
        rules = user + (family_rules(family) if family else ())
        order = list(tensors)
    chosen: list[Layer] = []
    untyped: list[str] = []
    others: list[str] = []
    for param in order:
        tensor = tensors[param]
        name = param.removesuffix(".weight")
        rule = None
        if param in manifest_types and tensor.ndim == 2 and tensor.is_floating_point():
            blocks = [(name, manifest_types[param], None)]
        elif _is_weight(param, tensor) and (rule := match(rules, name)) is not None:
            tensor = tensor.T if rule.transpose else tensor                       # (out, in)
            blocks = rule.blocks(name, tensor.shape[0])
        else:
            if pattern.search(name):
                (untyped if _is_weight(param, tensor) else others).append(name)
            continue
        for sub_name, kind, rows in blocks:
            if pattern.search(sub_name):
                weight = tensor if rows is None else tensor[rows[0]:rows[1]]
                chosen.append(Layer(sub_name, param, weight, kind, bool(rule and rule.transpose), rows))
    return Selection(chosen, untyped, others, family, basis)


def untyped_note(selection: Selection, limit: int = 5) -> str:
    """One line naming the untyped 2-D weights: their count, the first ``limit`` names, and the remedy."""
    names = selection.untyped
    shown = ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
    return (f"{len(names)} 2-D weight{'s' if len(names) != 1 else ''} left untyped, not quantized "
            f"({selection.rules}): {shown}; a checkpoint source's layer_types = {{ \"REGEX\" = \"TYPE\" }} "
            f"can type them")
