"""Partitioning-guided spherical bisection (PG k-means paper, appendix Algorithm 1).

Each node of the recursion is split around a "sphere" centred on the point
farthest from the node's (weighted) centroid: the node's points are sorted by
their distance to that point, and the inner part is a prefix of that order.
Leaves are produced depth-first, inner part first, as in the recursive
pseudocode.  Two drivers share the split:

* :func:`partition_into` (pre-assignment, Algorithm 1 as PG init uses it) gives
  exactly ``budget`` leaves that cover every point: each node carries the number
  of leaves it must yield, ``b``; a node with ``b = 1`` is a leaf, otherwise its
  inner part gets ``j = round(b / 2)`` leaves and the outer part ``b - j``.  The
  inner part's target mass is ``j * S`` with ``S = mass / b``, the node's own
  average leaf mass.  On unweighted data with ``n = k * S`` for an integer S this
  is the paper's rule exactly (every node holds a multiple of S points, ``n_h``
  is the multiple of S closest to half the node, a node of S points is a leaf);
  otherwise it is the paper's rule with S taken per node, so that rounding and
  point weights can never leave points without a leaf nor produce more than k.
* :func:`centroid_partitioning` (cluster fine-tuning, Algorithm 2) targets leaves
  of mass ``target``: a node of mass at most ``target + 1`` is a leaf, ``n_h`` is
  ``round(mass / 2 / target) * target``, and once ``max_leaves`` leaves exist the
  remaining nodes are returned unvisited as ``rest`` (``reserve_last``, the
  paper's B_rl, keeps one slot back for the caller, who places a centroid on the
  mean of ``rest``).

Choices where the pseudocode is silent (tested in tests/test_pg.py):

* Sizes are weight masses (point counts when unweighted), so a consolidated
  dense group counts as its members.
* The paper's "first n_h weights" with a real n_h: the cut is the prefix whose
  mass is closest to n_h (the shorter prefix on a tie).
* Cuts fall only between points at different distances from the sphere's
  centre, so copies of one point are never separated: a point of integer weight
  w is split exactly as w adjacent copies of it would be (they are sorted
  together, a stable sort keeping ties in their previous order).  Distance ties
  between distinct points are kept together too.  If a node has too few distinct
  distances for its leaf budget (many copies of few points), the init falls back
  to cutting between any two points (``n_tie_splits`` counts it); the fine-tuning
  tree makes such a node a leaf.
* ``round`` is Python's (halves to even), for ``n_h`` and for ``j`` alike.
* The farthest point is the first of equally far ones (lowest position).

Both drivers count the distance evaluations they perform (two per point of
every node they split: to the node's centroid and to its farthest point).
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Partition(NamedTuple):
    """What :func:`centroid_partitioning` returns.

    leaves : list of int64 index tensors, disjoint, in depth-first order
    rest : int64 index tensor of the points no leaf received (the budget ran out)
    n_distance_evals : point-to-point/centroid distances computed
    """

    leaves: list[torch.Tensor]
    rest: torch.Tensor
    n_distance_evals: int


def _sorted_node(pts: torch.Tensor, wts: torch.Tensor, mass: float):
    """Order a node's points (m, d) by distance to the point farthest from its centroid.

    Returns ``order`` (m,), ``cum`` (m,) float64 mass of each prefix of that order,
    and ``cuts`` (c,), the prefix lengths in 1..m-1 that fall between two
    different distances (ascending).
    """
    centre = (pts * wts[:, None]).sum(0) / mass if mass > 0 else pts.mean(0)
    far = int(((pts - centre) ** 2).sum(1).argmax())
    dist, order = torch.sort(((pts - pts[far]) ** 2).sum(1), stable=True)          # (m,)
    cum = torch.cumsum(wts[order].double(), 0)
    cuts = torch.nonzero(dist[1:] > dist[:-1]).flatten() + 1
    return order, cum, cuts


def _closest(cum: torch.Tensor, cuts: torch.Tensor, target: float) -> int:
    """The prefix length among ``cuts`` whose mass is closest to ``target`` (the first on a tie)."""
    return int(cuts[int(torch.argmin((cum[cuts - 1] - target).abs()))])


def _children(node: tuple, order: torch.Tensor, cut: int, cum: torch.Tensor):
    """Split ``node = (idx, pts, wts, mass)`` into (inner, outer) at prefix ``cut`` of ``order``."""
    idx, pts, wts, mass = node
    idx, pts, wts = idx[order], pts[order], wts[order]
    inner_mass = float(cum[cut - 1])
    return ((idx[:cut], pts[:cut], wts[:cut], inner_mass),
            (idx[cut:], pts[cut:], wts[cut:], mass - inner_mass))


def partition_into(X: torch.Tensor, w: torch.Tensor, node: torch.Tensor, budget: int):
    """Partition the points ``node`` (m,) of ``X`` (n, d) into exactly ``budget`` non-empty leaves.

    Needs ``1 <= budget <= m``.  Returns ``(leaves, n_tie_splits)``: the leaves
    (int64 index tensors, disjoint, covering ``node``, depth-first) and how many
    nodes had to be cut between points at equal distance (see the module docstring).
    """
    if not 1 <= budget <= node.numel():
        raise ValueError(f"cannot cut {node.numel()} points into {budget} non-empty leaves.")
    leaves: list[torch.Tensor] = []
    tie_splits = 0
    stack = [((node, X[node], w[node], float(w[node].double().sum())), budget)]
    while stack:
        current, b = stack.pop()
        if b == 1:
            leaves.append(current[0])
            continue
        m, mass = current[0].numel(), current[3]
        order, cum, cuts = _sorted_node(current[1], current[2], mass)
        j = min(max(round(b / 2), 1), b - 1)
        groups_before = torch.arange(1, cuts.numel() + 1, device=cuts.device)  # distinct distances in each prefix
        fits = (groups_before >= j) & (cuts.numel() + 1 - groups_before >= b - j)
        if bool(fits.any()):
            candidates = cuts[fits]
        else:   # fewer distinct distances than leaves: cut anywhere that leaves each part enough points
            candidates = torch.arange(j, m - (b - j) + 1, device=cuts.device)
            tie_splits += 1
        cut = _closest(cum, candidates, j * mass / b)
        inner, outer = _children(current, order, cut, cum)
        stack.append((outer, b - j))
        stack.append((inner, j))
    return leaves, tie_splits


def centroid_partitioning(X: torch.Tensor, w: torch.Tensor, node: torch.Tensor, target: float,
                          max_leaves: int, reserve_last: bool = False) -> Partition:
    """Partition points ``node`` (m,) of ``X`` (n, d) into leaves of mass about ``target``.

    At most ``max_leaves`` leaves (``max_leaves - 1`` with ``reserve_last``); the
    points no leaf received because that budget ran out come back as ``rest``.
    """
    limit = max_leaves - 1 if reserve_last else max_leaves
    leaves: list[torch.Tensor] = []
    rest: list[torch.Tensor] = []
    evals = 0
    stack = [(node, X[node], w[node], float(w[node].double().sum()))]
    while stack:
        current = stack.pop()
        idx, mass = current[0], current[3]
        if idx.numel() == 0:
            continue
        if len(leaves) >= limit:
            rest.append(idx)
            continue
        if mass <= target + 1 or idx.numel() == 1:
            leaves.append(idx)
            continue
        order, cum, cuts = _sorted_node(current[1], current[2], mass)
        evals += 2 * idx.numel()
        if cuts.numel() == 0:          # every point at one distance (copies of one point): cannot be cut
            leaves.append(idx)
            continue
        n_h = round(mass / 2.0 / target) * target if target > 0 else mass / 2.0
        inner, outer = _children(current, order, _closest(cum, cuts, n_h), cum)
        stack.append(outer)
        stack.append(inner)
    empty = node.new_empty(0)
    return Partition(leaves, torch.cat(rest) if rest else empty, evals)
