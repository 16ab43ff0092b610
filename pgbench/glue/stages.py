"""Iterative PQ (iPQ) stages: quantize one layer group at a time, fine-tuning in between.

What: :func:`run_stages` quantizes the FFN layers (fc1, fc2), then the token
embedding, then the attention projections (q, k, v, out), the order fairseq's iPQ
README recommends. After each group's k-means, every quantized layer's weight
becomes a :class:`PQWeight` parametrization of a trainable ``(k, b)`` codebook with
fixed assignments, and the model is fine-tuned for ``stage_epochs``: the codewords
(each one's gradient is the sum of the gradients of the sub-vectors assigned to it,
which is what autograd gives for ``centroids[labels]``) and all weights still in
float. At the end the parametrizations are baked into plain weights.

Why: fairseq's ``Quantizer`` does this between its stages (``quantize_model_`` then
training with ``PQLinear`` / ``PQEmbedding`` whose centroids are parameters), and
the PG k-means paper's numbers come from that pipeline; one-shot quantization
(:func:`pgbench.glue.quantize.quantize_model`) is the cheaper approximation.

Limits of this simple version (documented, not hidden):

* the learning-rate schedule restarts at every stage (fairseq runs one schedule
  over ``max_epoch`` split evenly into stages);
* no Quant-Noise on the remaining float layers while fine-tuning between stages
  (fairseq keeps it on);
* codebooks are trained and stored in fp32 here; only the size accounting counts
  them as fp16, as fairseq's SizeTracker does;
* assignments are fixed after each stage's k-means (fairseq's too); empty codewords
  stay empty, so the per-layer empty counts are those of the k-means runs;
* no distributed broadcast, no fp16, no LayerDrop.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Iterable, Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..checkpoints import LayerConfig
from ..pq import subvectors_to_weight
from .data import Examples
from .finetune import FinetuneConfig, train
from .quantize import Combination, LayerReport, QuantReport, model_layers, quantize_model, summarize

log = logging.getLogger(__name__)

__all__ = ["STAGES", "PQWeight", "run_stages", "bake"]

#: layer groups in iPQ order: FFN, then embeddings, then attention
STAGES: tuple[tuple[str, ...], ...] = (("fc1", "fc2"), ("embedding",), ("attn_q", "attn_k", "attn_v", "attn_out"))


class PQWeight(nn.Module):
    """Parametrization ``weight = decode(centroids)`` with fixed assignments.

    Registered with ``unsafe=True``: the parametrized tensor's stored original is
    the ``(k, b)`` codebook, the output the ``shape`` = (out, in) weight.

    Parameters
    ----------
    centroids : Tensor (k, b), the initial codebook (returned by ``right_inverse``)
    labels : Tensor (N,) int64, sub-vector assignments in fairseq order
    shape : (out, in)
    """

    def __init__(self, centroids: torch.Tensor, labels: torch.Tensor, shape: tuple[int, int]):
        super().__init__()
        self.register_buffer("labels", labels.detach().to(torch.long).clone())
        self._initial = centroids.detach().clone()
        self.shape = tuple(shape)

    def forward(self, centroids: torch.Tensor) -> torch.Tensor:
        return subvectors_to_weight(centroids[self.labels], self.shape)                # (out, in)

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        return self._initial.to(device=weight.device, dtype=weight.dtype)               # (k, b)


def _attach(model: nn.Module, name: str, centroids: torch.Tensor, labels: torch.Tensor) -> None:
    module = model.get_submodule(name)
    shape = tuple(module.weight.shape)
    parametrize.register_parametrization(module, "weight", PQWeight(centroids, labels, shape), unsafe=True)
    module.parametrizations.weight.original.requires_grad_(True)


def bake(model: nn.Module) -> int:
    """Replace every :class:`PQWeight` parametrization by its decoded plain weight; returns how many."""
    n = 0
    for module in model.modules():
        plist = getattr(module, "parametrizations", None)
        if plist is not None and "weight" in plist and any(isinstance(m, PQWeight) for m in plist["weight"]):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            n += 1
    return n


def run_stages(model: nn.Module, tokenizer: Any, train_examples: Examples, configs: Mapping[str, LayerConfig],
               combo: Combination, cfg: FinetuneConfig, stage_epochs: float = 1.0, seed: int = 0,
               n_iter: int = 15, regex: str = "", device: torch.device = torch.device("cpu"),
               kmeans_device: str = "cpu", stages: Iterable[Iterable[str]] = STAGES,
               progress: bool = True) -> tuple[QuantReport, dict[str, Any]]:
    """Quantize ``model`` in place stage by stage, fine-tuning after each stage.

    ``cfg`` gives the fine-tuning hyper-parameters (its ``epochs`` replaced by
    ``stage_epochs``; the seed varies per stage). ``freeze_embeddings`` keeps a float
    token embedding fixed until it is quantized; codebooks always train.

    Returns
    -------
    (QuantReport, info)
        The report over all stages (sizes of the final model) and
        ``{"seconds_kmeans", "seconds_train", "stages": [[types], ...]}``.
    """
    total = sum(p.numel() for p in model.parameters())
    present = {kind for _, _, kind in model_layers(model, regex)}
    plan = [tuple(t for t in group if t in present) for group in stages]
    plan = [group for group in plan if group]
    reports: list[LayerReport] = []
    seconds_kmeans = seconds_train = 0.0
    for i, group in enumerate(plan):
        attached: list[tuple[str, Any]] = []

        def keep(report: LayerReport, result: Any) -> None:
            if result is not None:
                attached.append((report.name, result))

        t0 = time.perf_counter()
        part = quantize_model(model, configs, combo, seed, n_iter, regex, types=group, device=kmeans_device,
                              on_layer=keep, progress=progress)
        for name, result in attached:
            _attach(model, name, result.centroids.to(device), result.labels.to(device))
        reports.extend(part.layers)
        seconds_kmeans += time.perf_counter() - t0
        log.info("stage %d %s: %d layers quantized (%d with empties); fine-tuning %.2g epochs",
                 i, "+".join(group), len(attached), part.n_layers_with_empty, stage_epochs)
        stage_cfg = dataclasses.replace(cfg, epochs=stage_epochs, seed=cfg.seed + 1000 * (i + 1),
                                        quant_noise=0.0)
        for pname, p in model.named_parameters():
            frozen = cfg.freeze_embeddings and pname.endswith("word_embeddings.weight")
            p.requires_grad_(not frozen)
        seconds_train += train(model, tokenizer, train_examples, stage_cfg, device, progress)["seconds"]
    bake(model)
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    info = {"seconds_kmeans": seconds_kmeans, "seconds_train": seconds_train, "stages": [list(g) for g in plan]}
    return summarize(reports, total, seconds_kmeans + seconds_train), info
