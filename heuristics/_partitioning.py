"""Partitioning-guided spherical bisection (PG k-means paper, appendix Algorithm 1).

``centroid_partitioning`` recursively bisects a set of points: the "sphere" of
each node is centred on the point farthest from the node's (weighted) centroid,
and its radius is chosen so that the inner part holds the integral multiple of
the target size ``S`` closest to half the node.  A node whose size is at most
``S + 1`` becomes a leaf (one centroid).  Leaves are produced depth-first, inner
part first, as in the recursive pseudocode.

Choices where the pseudocode is silent (tested in tests/test_pg.py):

* Sizes are weight masses (point counts when unweighted), so a consolidated dense
  group counts as its members.
* ``n_h`` = round(size / 2 / S) * S, clipped so both parts keep at least one point;
  with weights the split falls where the cumulative mass of the distance-sorted
  points first reaches ``n_h``.
* Distance ties are broken by a stable sort (lower point index first).
* ``max_leaves`` is "the last index of C": once that many leaves exist, the
  remaining nodes are not visited and are returned as ``rest``.  With
  ``reserve_last`` (Algorithm 2's B_rl) one slot is kept back for the caller,
  who places a centroid on the mean of ``rest``.
"""

from __future__ import annotations

import torch


def _split(idx: torch.Tensor, pts: torch.Tensor, wts: torch.Tensor, mass: float, target: float):
    """Split one node around its farthest point into (inner, outer) nodes.

    A node is ``(idx (m,), pts (m, d), wts (m,), mass)``; the children are slices
    of one sorted gather, so each level of the tree gathers every point once.
    """
    centre = (pts * wts[:, None]).sum(0) / mass if mass > 0 else pts.mean(0)
    far = int(((pts - centre) ** 2).sum(1).argmax())
    dist = ((pts - pts[far]) ** 2).sum(1)                    # (m,)
    order = torch.sort(dist, stable=True).indices
    idx, pts, wts = idx[order], pts[order], wts[order]
    half = mass / 2.0
    n_h = round(half / target) * target if target > 0 else half
    cum = torch.cumsum(wts, 0)
    cut = int(torch.searchsorted(cum, torch.tensor(n_h, dtype=cum.dtype, device=cum.device))) + 1
    cut = min(max(cut, 1), idx.shape[0] - 1)
    inner_mass = float(cum[cut - 1])
    return ((idx[:cut], pts[:cut], wts[:cut], inner_mass),
            (idx[cut:], pts[cut:], wts[cut:], mass - inner_mass))


def _bisect(X: torch.Tensor, w: torch.Tensor, node: torch.Tensor, target: float):
    """Split the points ``node`` (m,) into (inner, outer) index tensors around the farthest point."""
    inner, outer = _split(node, X[node], w[node], float(w[node].sum()), target)
    return inner[0], outer[0]


def centroid_partitioning(X: torch.Tensor, w: torch.Tensor, node: torch.Tensor, target: float,
                          max_leaves: int, reserve_last: bool = False):
    """Partition points ``node`` (m,) of ``X`` (n, d) into leaves of size about ``target``.

    Returns ``(leaves, rest)``: a list of index tensors (at most ``max_leaves``, or
    ``max_leaves - 1`` with ``reserve_last``) and one index tensor of the points
    no leaf received because the leaf budget ran out.
    """
    limit = max_leaves - 1 if reserve_last else max_leaves
    leaves: list[torch.Tensor] = []
    rest: list[torch.Tensor] = []
    stack = [(node, X[node], w[node], float(w[node].sum()))]
    while stack:
        current = stack.pop()
        idx = current[0]
        if idx.numel() == 0:
            continue
        if len(leaves) >= limit:
            rest.append(idx)
            continue
        if current[3] <= target + 1 or idx.numel() == 1:
            leaves.append(idx)
            continue
        inner, outer = _split(*current, target)
        stack.append(outer)
        stack.append(inner)
    empty = node.new_empty(0)
    return leaves, (torch.cat(rest) if rest else empty)
