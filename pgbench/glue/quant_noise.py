"""Quant-Noise (Fan et al. 2020): random block dropping of weights while fine-tuning.

What: :class:`QuantNoise` is a weight parametrization (``torch.nn.utils.parametrize``)
that, in training mode only, drops random blocks of ``block_size`` consecutive
weights along the input dimension and rescales the kept ones by ``1 / (1 - p)``;
in eval mode it returns the weight unchanged. :func:`add_quant_noise` puts it on
the quantizable layers of a model (the layers :func:`pgbench.checkpoints.layer_type`
types: token embedding, attention q/k/v/out, fc1, fc2), :func:`remove_quant_noise`
takes it off again, leaving the trained float weights.

Why: the PG k-means paper fine-tunes with Quant-Noise before iPQ (section 5.1,
p between 0.05 and 0.2, block size 8), so the network is used to losing whole PQ
sub-vectors; the blocks are the same sub-vectors that k-means later clusters.

Relation to fairseq's ``fairseq/modules/quant_noise.py`` (read, not copied):

* Blocks: fairseq masks ``weight.size(1) // block_size * weight.size(0)`` blocks,
  each ``block_size`` consecutive entries of one row, for ``nn.Linear`` *and*
  ``nn.Embedding`` alike (an embedding row is cut along ``embedding_dim``; whole
  rows are not dropped). Each block is dropped with probability ``p``; kept entries
  are scaled by ``1 / (1 - p)``. Same here; Conv2d is not supported.
* Mechanism: fairseq's forward pre-hook overwrites ``weight.data`` with the masked
  weight. In fp32 training that makes the drop permanent and compounds the
  rescaling at every step (fairseq issue #3783); with fairseq's fp16 trainer, whose
  fp32 master copy is copied back into the model each step, the net effect is a
  masked forward with the gradient applied to every weight, i.e. a straight-through
  estimator for the dropped blocks (the Quant-Noise paper's intent, issue #3195).
  Here the stored weight is never modified; ``ste=True`` (default) reproduces that
  effective behaviour (forward value masked/rescaled, identity gradient to all
  entries), ``ste=False`` gives the plain gradient of the masked weight.
* Randomness: each parametrization owns a ``torch.Generator`` seeded from the seed
  given to :func:`add_quant_noise` plus the layer's index, so runs are reproducible.
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..checkpoints import layer_type

log = logging.getLogger(__name__)

__all__ = ["QuantNoise", "add_quant_noise", "remove_quant_noise"]


class _StraightThrough(torch.autograd.Function):
    """Forward: blocks of ``weight`` (out, in) times ``scale`` (out, in/b, 1); backward: identity."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, scale: torch.Tensor, block_size: int) -> torch.Tensor:
        out, inp = weight.shape
        return (weight.reshape(out, -1, block_size) * scale).view(out, inp)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None, None


class QuantNoise(nn.Module):
    """Weight parametrization: block dropping with rate ``p`` in training, identity in eval.

    Parameters
    ----------
    p : float in [0, 1)
        Probability of dropping each block.
    block_size : int
        Block length along the input dimension; must divide the weight's ``shape[1]``.
    seed : int
        Seeds this layer's mask generator.
    ste : bool, default True
        Straight-through: the gradient reaches dropped entries as if nothing was
        dropped (see the module docstring); False: plain gradient of the masked weight.
    """

    def __init__(self, p: float, block_size: int, seed: int, ste: bool = True):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"quant-noise rate p must be in [0, 1), got {p!r}.")
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise ValueError(f"quant-noise block_size must be a positive integer, got {block_size!r}.")
        self.p, self.block_size, self.seed, self.ste = float(p), block_size, int(seed), bool(ste)
        self._generator: torch.Generator | None = None

    def _gen(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device.type != device.type:
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        return self._generator

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        """``weight`` (out, in) -> the same in eval; masked and rescaled in training."""
        if not self.training or self.p == 0:
            return weight
        out, inp = weight.shape
        gen = self._gen(weight.device)
        keep = torch.rand((out, inp // self.block_size, 1), generator=gen, device=gen.device) >= self.p
        scale = keep.to(device=weight.device, dtype=weight.dtype) / (1.0 - self.p)     # (out, in/b, 1)
        if self.ste and weight.requires_grad:
            return _StraightThrough.apply(weight, scale, self.block_size)
        return (weight.reshape(out, -1, self.block_size) * scale).view(out, inp)          # (out, in)

    def extra_repr(self) -> str:
        return f"p={self.p}, block_size={self.block_size}, ste={self.ste}"


def add_quant_noise(model: nn.Module, p: float, block_size: int = 8, seed: int = 0,
                    ste: bool = True) -> list[str]:
    """Register :class:`QuantNoise` on every typed ``nn.Linear`` / ``nn.Embedding`` weight.

    Layers whose input dimension ``block_size`` does not divide are skipped (logged).
    ``p == 0`` registers nothing.

    Returns
    -------
    list of str
        Names (without ``.weight``) of the layers that got noise, in module order.
    """
    QuantNoise(p, block_size, seed, ste)   # validates p and block_size once
    if p == 0:
        return []
    names = []
    for i, (name, module) in enumerate(model.named_modules()):
        if not isinstance(module, (nn.Linear, nn.Embedding)) or layer_type(name) is None:
            continue
        if module.weight.shape[1] % block_size:
            log.warning("quant-noise: block size %d does not divide %s %s; layer skipped",
                        block_size, name, list(module.weight.shape))
            continue
        parametrize.register_parametrization(module, "weight", QuantNoise(p, block_size, seed + i, ste))
        names.append(name)
    log.info("quant-noise p=%g block=%d on %d layers", p, block_size, len(names))
    return names


def remove_quant_noise(model: nn.Module) -> int:
    """Take every :class:`QuantNoise` off ``model``, keeping the trained weights; returns how many."""
    removed = 0
    for module in model.modules():
        plist = getattr(module, "parametrizations", None)
        if plist is None or "weight" not in plist:
            continue
        if any(isinstance(m, QuantNoise) for m in plist["weight"]):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
            removed += 1
    return removed
