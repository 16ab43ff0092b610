"""The machinery behind ``init_kmeanspp``: exact greedy k-means++ that skips work it can prove useless.

Layout.  The points are put in k-d order (``kd_order``: median splits on the
widest coordinate, the same size on both sides, padded with zero-weight copies of
``X[0]``) and cut into 2**levels leaves of ``Bl`` (about ``LEAF_SIZE``) points;
``S`` consecutive leaves (a k-d subtree) make a block of ``SB = S * Bl`` points.
Per point: coordinates, squared distance D2 to the nearest chosen centre, weight.
Per block: the float64 sum of w * D2 (for sampling).  Per leaf and per block
(pruned mode only): a reach box, the bounding box of the cubes
[x - r_x, x + r_x] with r_x slightly above D_x (see ``_reach``).

Sampling (both modes) draws position i with probability w_i D2_i / sum: the target
t = u * total (u in (0, 1]) is looked up in the cumulative block sums, then in the
cumulative sum inside the chosen block, with ``searchsorted`` (first prefix >= t).
That is the inverse CDF of one cumulative sum over all points in position order,
computed in two levels; since t > 0 and the first prefix >= t is taken, a
zero-mass point is never drawn.

Pruned mode (d <= ``PRUNE_MAX_DIM``): a candidate c can only lower D2 of points x
with |x - c| < D_x, hence with every |x_j - c_j| < D_x, i.e. c inside x's cube,
hence inside the reach box of x's leaf and block.  So each step tests the
candidates against the block boxes, then against the leaf boxes of the blocks
hit, and computes exact distances only for the points of the leaves hit.  Points
of other leaves keep D2 in the reference algorithm too, so the gains (and the
new D2) are the ones a full pass computes.  Squared distances are the direct
sum of squared coordinate differences (no ||x||^2 - 2 x.c + ||c||^2
cancellation), so the boxes bound the computed distances, not only the real
ones; ``_reach`` pads the cubes to cover rounding.

Dense mode (d > ``PRUNE_MAX_DIM``, where boxes prune little): every candidate
against every point by matrix products, ``||x||^2 - 2 x.c + ||c||^2`` clamped at
0 (as scikit-learn computes them); positions are the original order.  The points
are taken ``DENSE_CHUNK`` at a time (whole blocks), so that a chunk's (trials,
chunk) distances are reduced to float64 per-trial gains while still in cache;
each chunk's distances are kept until the winner is known and give its new D2 (no
second product: recomputing one row with a 1-row product is not bitwise the row of
the trials-row product).  Before, the whole (trials, m) block was materialised
and then swept by about seven full passes (add, clamp, sub, clamp, mul, sum,
minimum), memory-bound at large m.  The floats are the same as before wherever a
chunk's product gives the same bits as the whole product (checked at d = 8 and
16; at some odd d the BLAS rounds a sliced product differently in the last bit),
and the float64 gain sums are added chunk by chunk (a different summation order:
equal candidates still tie exactly, others can differ in the last bit only).
Measured (one thread, shared 2-core AMD EPYC, min of 3 interleaved wall runs,
layer_subvectors, unit weights, same chosen centres and potential bit for bit):
4,825,440 x 8, trials 8, first 50 centres of k = 768: 29.9 s before, 4.46 s
after (6.7x; about 73 ms a step, so about 57 s for all 767 steps); faiss's
k-means++ (one unweighted candidate a step) 1.43 s, ours 3.1x that.  147,456 x 16,
k = 3072, trials 10: 18.4 s before, 14.2 s after (1.3x: there the (trials, m)
block, 6 MB, already sat in L3 and the small-K product dominates); faiss 3.1 s.
Chunks of 2k to 1M points were tried; 32k was fastest at both shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pgbench.backends import segment_sums

# Measured on layer-shaped data (synthetic.layer_subvectors), one thread: at d = 5 the pruned and
# dense modes ran even, at d = 8 the boxes let 46 % of the distances through and pruning was 4x
# slower; leaves of 8 or 32 points and blocks of 8 or 32 leaves were slower than 16 and 16.
PRUNE_MAX_DIM = 4         # pruned mode up to this d, dense above
LEAF_SIZE = 16            # target points per leaf (at least this many)
LEAVES_PER_BLOCK = 16     # leaves per block (a k-d subtree), at most
REFRESH = 4               # steps between box refreshes
CHUNK_FLOATS = 1 << 22    # gathered floats per evaluation chunk (bounds memory in early steps)
DENSE_CHUNK = 32768       # points per chunk in dense mode (a (trials, chunk) block stays in cache)
F64 = torch.float64


@dataclass
class Seeding:
    """What ``greedy_kmeanspp`` did.  Positions index ``order``; ``order[p] == n`` is padding.

    order : (m,) int64, position -> row of X
    chosen : (k,) int64 positions of the centres, in the order chosen
    candidates : (k - 1, trials) int64 positions of each step's candidates
    potential : sum_i w_i D_i^2 once all k centres are chosen (float64)
    n_distance_evals : point-candidate distances computed by the k - 1 steps
    pruned : whether the pruned mode ran
    """

    order: torch.Tensor
    chosen: torch.Tensor
    candidates: torch.Tensor
    potential: float
    n_distance_evals: int
    pruned: bool


def leaf_levels(n: int) -> int:
    """log2 of the number of leaves: the most leaves with at least ``LEAF_SIZE`` points each."""
    return max(0, int(math.floor(math.log2(n / LEAF_SIZE)))) if n >= LEAF_SIZE else 0


def kd_order(X: torch.Tensor, levels: int) -> torch.Tensor:
    """k-d order of X (n, d): (2**levels * ceil(n / 2**levels),) int64 rows of X, n for padding.

    Each level splits every node into equal halves along the node's widest
    coordinate: the lower half holds the values below the median and, of the
    values equal to it, the first ones by position; both halves keep their
    relative order.  (A selection, not a sort: O(n) per level.)  Padding rows are
    copies of X[0].
    """
    n, d = X.shape
    leaves = 1 << levels
    m = leaves * -(-n // leaves)
    Xt = torch.cat((X, X[:1])).t().contiguous()                          # (d, n + 1)
    order = torch.cat((torch.arange(n, device=X.device), torch.full((m - n,), n, device=X.device)))
    for level in range(levels):
        nodes = 1 << level
        half = m >> (level + 1)
        P = Xt.index_select(1, order).view(d, nodes, 2 * half)
        widest = (P.amax(2) - P.amin(2)).argmax(0)                        # (nodes,)
        key = P.gather(0, widest.view(1, nodes, 1).expand(1, nodes, 2 * half)).squeeze(0)
        median = key.kthvalue(half, dim=1, keepdim=True).values           # half-th smallest
        below = key < median
        tie = key == median
        lower = below | (tie & (tie.cumsum(1) <= half - below.sum(1, keepdim=True)))
        idx = order.view(nodes, 2 * half)
        order = torch.cat((idx.masked_select(lower).view(nodes, half),
                           idx.masked_select(~lower).view(nodes, half)), 1).view(-1)
    return order


def greedy_kmeanspp(X: torch.Tensor, w: torch.Tensor, k: int, trials: int, u: torch.Tensor,
                    pruned: bool | None = None) -> Seeding:
    """Greedy k-means++ on X (n, d) with weights w (n,), k centres, ``trials`` candidates per step.

    ``u`` (1 + (k - 1) * trials,) float64 in (0, 1]: u[0] draws the first centre
    (proportional to w), then ``trials`` per step.  ``pruned`` forces the mode
    (None: pruned when d <= PRUNE_MAX_DIM).
    """
    n, d = X.shape
    pruned = d <= PRUNE_MAX_DIM if pruned is None else pruned
    levels = leaf_levels(n)
    if pruned:
        order = kd_order(X, levels)
    else:
        m = (1 << levels) * -(-n // (1 << levels))
        order = torch.cat((torch.arange(n, device=X.device), torch.full((m - n,), n, device=X.device)))
    points = (_Pruned if pruned else _Dense)(X, w, order, levels, trials)
    first = points.first(u[:1])
    chosen, candidates = [first[0]], []
    for step_u in u[1:].view(k - 1, trials):
        candidates.append(points.draw(step_u))
        chosen.append(points.step(candidates[-1]))
    candidates = torch.stack(candidates) if candidates else first.new_empty((0, trials))
    return Seeding(order, torch.stack(chosen), candidates, float(points.block_mass.sum()),
                   points.n_distance_evals, pruned)


class _Points:
    """Positions, weights, D2 and the two-level sampling sums shared by both modes."""

    def __init__(self, X: torch.Tensor, w: torch.Tensor, order: torch.Tensor, levels: int, trials: int):
        n, d = X.shape
        self.d, self.trials = d, trials
        self.leaves = 1 << levels
        self.leaf = order.numel() // self.leaves                          # Bl
        self.per_block = 1 << min(levels, int(math.log2(LEAVES_PER_BLOCK)))   # S
        self.blocks = self.leaves // self.per_block
        self.xs = torch.cat((X, X[:1]))[order].contiguous()               # (m, d) in position order
        self.ws = torch.cat((w, w.new_zeros(1)))[order]                   # (m,)
        # w * D2 per position (X's dtype, as scikit-learn's products), summed in float64 per block
        self.mass = torch.zeros((self.blocks, self.per_block * self.leaf), dtype=X.dtype, device=X.device)
        self.block_mass = torch.zeros(self.blocks, dtype=F64, device=X.device)
        self.prefix = torch.zeros(self.blocks + 1, dtype=F64, device=X.device)
        self.prefix_after, self.total = self.prefix[1:], self.prefix[-1:]
        self.n_distance_evals = 0

    def first(self, u: torch.Tensor) -> torch.Tensor:
        """Draw the first centre (u (1,)) proportional to w and start D2 from it."""
        self.mass.view(-1).copy_(self.ws)
        torch.sum(self.mass, 1, dtype=F64, out=self.block_mass)
        first = self.draw(u)
        self.start(first)
        return first

    def draw(self, u: torch.Tensor) -> torch.Tensor:
        """Positions (len(u),) drawn with probability w * D2 (the current ``mass``), u in (0, 1]."""
        torch.cumsum(self.block_mass, 0, out=self.prefix_after)
        target = u * self.total
        block = torch.searchsorted(self.prefix_after, target)             # first block prefix >= target
        inner = torch.cumsum(self.mass.index_select(0, block), 1, dtype=F64)   # (len(u), SB)
        rest = torch.minimum(target - self.prefix.index_select(0, block), inner[:, -1])   # stay inside the block
        return block * self.mass.shape[1] + torch.searchsorted(inner, rest[:, None]).squeeze_(1)


class _Pruned(_Points):
    """Pruned mode (see the module docstring).

    Per-point arrays keep their short axis (coordinates) first and boxes keep
    their bounds first, so tests and distances reduce over the outermost axis,
    which torch does with contiguous vector loops (reducing an inner axis of 8 or
    16 elements is several times slower).
    """

    def __init__(self, X, w, order, levels, trials):
        super().__init__(X, w, order, levels, trials)
        d, L, Bl = self.d, self.leaves, self.leaf
        # unit weights (padding aside): w * D2 is D2 itself, so the weight row and products are skipped
        self.unit_weights = bool((w == 1).all())
        self.ev = torch.empty((d + 1 + (not self.unit_weights), L, Bl), dtype=X.dtype, device=X.device)  # x, D2[, w]
        self.ev[:d] = self.xs.t().reshape(d, L, Bl)
        self.D2 = self.ev[d]                                                   # (L, Bl) view
        if self.unit_weights:
            self.mass = self.D2.view(self.blocks, -1)
        else:
            self.ev[d + 1] = self.ws.view(L, Bl)
        eps = torch.finfo(X.dtype).eps
        self.slack = 1.0 + 16 * eps
        self.pad = self.ev[:d].abs().amax(0).amax(1, keepdim=True).mul_(16 * eps)   # (L, 1)
        self.xs2 = torch.cat((self.xs, -self.xs), 1)                          # (m, 2d): x, -x
        self.reach = torch.empty((2 * d, L), dtype=X.dtype, device=X.device)   # lo, -hi per leaf
        self.top = torch.empty((2 * d, self.blocks), dtype=X.dtype, device=X.device)
        self.mass_leaf = self.mass.view(L, Bl)
        self.stale: list[torch.Tensor] = []                                   # leaves changed since refresh

    def start(self, first: torch.Tensor) -> None:
        d = self.d
        c = self.xs.index_select(0, first).view(d, 1, 1)
        D2 = (self.ev[:d] - c).square_().sum(0)                               # (L, Bl)
        self.D2.copy_(D2.masked_fill_(self.ws.view_as(D2) == 0, 0))          # zero weight: never matters
        if not self.unit_weights:
            torch.mul(self.D2, self.ev[d + 1], out=self.mass_leaf)
        torch.sum(self.mass, 1, dtype=F64, out=self.block_mass)
        self.reach.copy_(self._reach(self.ev[:d], self.D2, self.pad))
        torch.amin(self.reach.view(2 * d, self.blocks, -1), 2, out=self.top)

    def _reach(self, x: torch.Tensor, D2: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """Boxes (lo, -hi) (2d, u) of leaves with coordinates x (d, u, Bl), D2 (u, Bl), pad (u, 1).

        The cube of x has half-width r_x = D_x (1 + 16 eps) + 16 eps max |x_j| (max
        over the leaf): if the computed squared distance to c is below D2_x, so is
        every computed (x_j - c_j)^2, hence |x_j - c_j| < D_x (1 + 2 eps), and the
        padding covers that and the rounding of x_j -+ r_x.
        """
        r = torch.add(pad, D2.sqrt(), alpha=self.slack)                       # (u, Bl)
        return torch.cat(((x - r).amin(2), (x + r).amax(2).neg_()))

    def step(self, cand: torch.Tensor) -> torch.Tensor:
        d, T, S = self.d, self.trials, self.per_block
        C2 = self.xs2.index_select(0, cand).t()                               # (2d, T): c >= lo, -c >= -hi
        t1, b1 = ((C2[:, :, None] - self.top[:, None]).amin(0) >= 0).nonzero(as_tuple=True)
        boxes = self.reach.view(2 * d, self.blocks, S).index_select(1, b1)   # (2d, pairs, S)
        pair, i = ((C2.index_select(1, t1)[:, :, None] - boxes).amin(0) >= 0).nonzero(as_tuple=True)
        leaves = b1.index_select(0, pair).mul_(S).add_(i)                    # sorted by trial, then leaf
        trial = t1.index_select(0, pair)
        self.n_distance_evals += leaves.numel() * self.leaf
        Ct = C2[:d]                                                           # (d, T)
        chunk = max(1, CHUNK_FLOATS // ((d + 2) * self.leaf))
        gains = []
        for a in range(0, leaves.numel(), chunk):
            G = self.ev.index_select(1, leaves[a:a + chunk])                  # (d + 2, p, Bl)
            dd = (G[:d] - Ct.index_select(1, trial[a:a + chunk])[:, :, None]).square_().sum(0)
            gain = (G[d] - dd).clamp_(min=0)
            gains.append((gain if self.unit_weights else gain.mul_(G[d + 1])).sum(1, dtype=F64))
        gain = gains[0] if len(gains) == 1 else torch.cat(gains)
        best = segment_sums(trial, gain[:, None], T).argmax()                # first of equal gains
        lo, hi = torch.searchsorted(trial, torch.stack((best, best + 1))).tolist()
        leaves = leaves[lo:hi]
        if len(gains) == 1:
            G, dd = G[:, lo:hi], dd[lo:hi]
        else:
            G = self.ev.index_select(1, leaves)
            dd = (G[:d] - Ct[:, best, None, None]).square_().sum(0)
        changed = (dd < G[d]).any(1).nonzero().squeeze_(1)                   # leaves whose D2 drops
        G = G.index_select(1, changed)
        self._update(leaves.index_select(0, changed), G, torch.minimum(G[d], dd.index_select(0, changed)))
        return cand[best]

    def _update(self, leaves: torch.Tensor, G: torch.Tensor, D2: torch.Tensor) -> None:
        """New D2 (u, Bl) of ``leaves`` (u,) (ascending) whose rows ``G`` were gathered.

        D2 and the sampling sums change now; the boxes every ``REFRESH`` steps: D2
        only decreases, so a box computed earlier still contains the current cubes.
        """
        d = self.d
        self.D2.index_copy_(0, leaves, D2)
        if not self.unit_weights:
            self.mass_leaf.index_copy_(0, leaves, D2 * G[d + 1])
        blocks = torch.unique_consecutive(leaves.div(self.per_block, rounding_mode="floor"))
        self.block_mass.index_copy_(0, blocks, self.mass.index_select(0, blocks).sum(1, dtype=F64))
        self.stale.append(leaves)
        if len(self.stale) == REFRESH:
            self._refresh()

    def _refresh(self) -> None:
        """Recompute the boxes of the leaves changed since the last refresh, and of their blocks."""
        d = self.d
        leaves = torch.cat(self.stale).unique()
        self.stale.clear()
        G = self.ev[:d + 1].index_select(1, leaves)
        self.reach.index_copy_(1, leaves, self._reach(G[:d], G[d], self.pad.index_select(0, leaves)))
        blocks = torch.unique_consecutive(leaves.div(self.per_block, rounding_mode="floor"))
        self.top.index_copy_(1, blocks, self.reach.view(2 * d, self.blocks, -1).index_select(1, blocks).amin(2))


class _Dense(_Points):
    """Dense mode: every candidate against every point, chunk by chunk (see ``step``)."""

    def __init__(self, X, w, order, levels, trials):
        super().__init__(X, w, order, levels, trials)
        m, SB = self.ws.numel(), self.mass.shape[1]
        self.xx = (self.xs * self.xs).sum(1)                              # (m,)
        self.xt = self.xs.t()
        # D2 has w's dtype (as before).  Unit weights of X's dtype (padding aside): D2 of
        # padding is kept at 0, so w * D2 is D2 itself and ``mass`` serves as D2.
        self.unit_weights = w.dtype == X.dtype and bool((w == 1).all())
        self.D2 = self.mass.view(-1) if self.unit_weights else torch.empty_like(self.ws)
        self.mass_flat = self.mass.view(-1)
        self.chunk = SB * max(1, DENSE_CHUNK // SB)                       # whole blocks per chunk
        self.spans = [(a, min(a + self.chunk, m)) for a in range(0, m, self.chunk)]
        # each chunk's (trials, points) distances, kept until the winner is known
        self.dist = [X.new_empty((trials, b - a)) for a, b in self.spans]
        gain_dtype = torch.promote_types(self.D2.dtype, X.dtype)          # of D2 - e, as before
        self.scratch = {e.shape[1]: e.new_empty(e.shape, dtype=gain_dtype) for e in self.dist}
        self.gain_part = X.new_empty((trials,), dtype=F64)
        self.zero = X.new_zeros(())

    def _sqdist(self, C: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.xx, C, self.xt, alpha=-2).add_((C * C).sum(1, keepdim=True)).clamp_(min=0)

    def _set(self, D2: torch.Tensor) -> None:
        if self.unit_weights:
            D2.masked_fill_(self.ws == 0, 0)
        self.D2.copy_(D2)
        if not self.unit_weights:
            torch.mul(self.D2, self.ws, out=self.mass_flat)
        torch.sum(self.mass, 1, dtype=F64, out=self.block_mass)

    def start(self, first: torch.Tensor) -> None:
        self._set(self._sqdist(self.xs.index_select(0, first))[0])

    def step(self, cand: torch.Tensor) -> torch.Tensor:
        """One step, the points taken ``chunk`` at a time so that a chunk's distances stay in cache.

        Per chunk: e = ||x||^2 - 2 x.c (one ``addmm``, kept in ``dist``), e += ||c||^2,
        and the gain clamp(D2 - max(e, 0), 0) computed as clamp(D2 - e, 0, D2) (the
        same floats: D2 >= 0), times w, summed in float64 per trial.  The winner's
        new D2 is min(D2, max(e, 0)) = clamp(e, 0, D2), from its kept rows.
        """
        C = self.xs.index_select(0, cand)                                 # (T, d)
        cc = (C * C).sum(1, keepdim=True)
        gain = torch.zeros(self.trials, dtype=F64, device=C.device)
        for (a, b), e in zip(self.spans, self.dist):
            torch.addmm(self.xx[a:b], C, self.xt[:, a:b], alpha=-2, out=e).add_(cc)
            D2 = self.D2[a:b]
            g = torch.sub(D2, e, out=self.scratch[e.shape[1]]).clamp_(min=self.zero, max=D2)
            if not self.unit_weights:
                g.mul_(self.ws[a:b])
            gain.add_(torch.sum(g, 1, dtype=F64, out=self.gain_part))
        self.n_distance_evals += self.trials * self.ws.numel()
        best = gain.argmax()
        t = int(best)
        for (a, b), e in zip(self.spans, self.dist):
            D2 = self.D2[a:b]
            torch.clamp(e[t], min=self.zero, max=D2, out=D2)
            if not self.unit_weights:
                torch.mul(D2, self.ws[a:b], out=self.mass_flat[a:b])
        torch.sum(self.mass, 1, dtype=F64, out=self.block_mass)
        return cand[best]
