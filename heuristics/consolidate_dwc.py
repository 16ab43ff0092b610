"""Dense Weights Consolidation (PG k-means paper, section 4.3, Eq. 2, Algorithms 3-5).

Before k-means, groups of points lying within ``eps`` of an anchor point ("dense
clusters") are replaced by one weighted representative, so k-means can never split
such a group between centroids; the engine maps the labels back to the original
points at the end (``labels[members]``).  This reduces the number of points k-means
sees and keeps tight groups together, which is what the paper credits for its
ablation gain (Table 3).

Procedure (one *round* at one ``eps``):

* Algorithm 5, IDENTIFYPOTENTIALDENSECLUSTER(eps, W): sort the Euclidean distances M
  of every point of W to the anchor W[0]; scan with a segment start s: the first i
  with M[i] - M[s] > eps closes the segment [s, i), which becomes a *potential dense
  cluster* if it has more than one point and an *independent weight* otherwise;
  then s = i.
* Algorithm 4, GENERATEDENSECLUSTERS: the anchor's own segment (the first one,
  M = 0) is a *confirmed dense cluster* when it has more than one point: all its
  points are within eps of the anchor.  Every other potential cluster is examined
  again by Algorithm 5 with its own first element (the one nearest the parent
  anchor) as anchor, recursively, until every point is in a confirmed cluster or
  independent.
* Algorithm 3 / Eq. 2: n_cw = dense clusters + independent weights; while
  n_cw < c_mc * k, eps is scaled by c_sd and the round is redone from scratch.

Choices where the paper is ambiguous or silent (each one is tested):

1. Final segment.  Algorithm 5 never closes the segment still open when the scan
   ends, which would silently drop the points farthest from the anchor.  It is
   closed like any other (potential cluster if > 1 point, else independent).
2. Top-level anchor.  Algorithm 5 uses W[0]; the prose says "a randomly chosen
   anchor weight".  It is drawn once from ``rng`` and reused by every eps round, so
   rounds differ only by eps.  Sub-group anchors are c_p[0] as in Algorithm 4.
3. Cut rule.  A point stays in the open segment while M[i] <= M[s] + eps (the
   paper's M[i] - M[s] > eps cut, up to rounding).  Distances are float64; all
   groups of a level are sorted and cut together on the keys group * offset + M,
   exact at the top level and rounded by at most ~2**-29 of the level's largest
   distance below it (under the float32 resolution of the input).  Ties in the
   sort keep the previous order, so the anchor is always first in its own segment
   and exact duplicates are never split: they always end in one dense cluster,
   even at eps = 0.
4. Traversal.  The recursion of Algorithm 4 is unrolled into an explicit work list
   processed one level at a time: all pending potential clusters of a level are
   split together with tensor ops (segment-start chains found by pointer doubling
   on the "next segment start" map), so there is no Python recursion and no Python
   loop over points.  Each potential cluster is examined independently of the
   others, so the groups found are the same as with the paper's depth-first order.
5. Initial eps (``dwc_eps=None``).  The paper gives no value ("difficult to
   estimate ... likely layer-specific").  eps_0 = dwc_eps_ratio * rms * k ** (-1 / d),
   with rms the root-mean-square distance of the points to their (unweighted) mean.
   rms * k ** (-1/d) is the radius of one of k equal cells in d dimensions, i.e.
   the spacing k-means itself will resolve; a dense group should be a small
   fraction of that (default 0.1).  The rule is scale- and translation-free
   (scaling X scales eps_0, the groups are unchanged).  An explicit ``dwc_eps``
   (>= 0, in the units of X) overrides it.  ``dwc_eps_ratio`` is the parameter to
   sweep: the paper suite runs PG-full at 0.1, 1 and 10.  Measured share of points
   merged into dense groups (scripts/pg_paper_numbers.py, one run, seed 0, k = 3072,
   sub-vectors of dimension 4):

   ===============================================  ======  ======  ======  ==========
   layer                                            0.1     0.3     1       10
   ===============================================  ======  ======  ======  ==========
   synthetic 768 x 768 (Student-t, continuous)      0.4 %   15 %    79 %    98 % (Eq. 2)
   the same rounded to a 0.01 grid                  82 %    82 %    87 %    98 % (Eq. 2)
   MiniLM-L6 layer 0 query 384 x 384 (36,864)       0.05 %  2.3 %   54 %    88 % (Eq. 2)
   MiniLM-L6 layer 0 intermediate 1536 x 384        0.12 %  7.4 %   74 %    98 % (Eq. 2)
   ===============================================  ======  ======  ======  ==========

   So the default is nearly inactive on continuous weights (PG-full is then PG
   but for a few hundred merged points) and merges the exact duplicates of a
   rounded layer; a ratio near 1 merges most points into small groups; at 10 the
   rounds of Eq. 2 shrink eps until n_cw = c_mc * k, which leaves k-means about
   2k points for k centroids.  Final inertia of PG-full over PG's, 15 iterations,
   same runs (``"single"`` / ``"sum"``): continuous 0.996 / 1.001 at 0.1, 0.996 /
   1.09 at 1, 3.6 / 2.7 at 10; 0.01 grid 0.94 / 1.00 at 0.1, 1.03 / 1.02 at 1,
   3.5 / 2.7 at 10.
6. Eq. 2 bound.  eps_r = eps_0 * c_sd ** r for round r = 0, 1, ... (computed as a
   power, not by repeated multiplication), at most ``dwc_max_rounds`` rounds.  If
   no round reaches n_cw >= c_mc * k (or eps is 0, where shrinking changes
   nothing), nothing is consolidated and ``info["skipped"]`` says why (with a
   warning): merging anyway would break the paper's own lower bound on n_cw.
7. n < c_mc * k.  n_cw <= n, so Eq. 2 can never hold: nothing is consolidated and
   ``info["skipped"]`` says so (no anchor is drawn).  The bound used is
   max(c_mc * k, k): with c_mc < 1 the paper's rule could leave fewer points than
   clusters, which k-means cannot take.
8. Representative.  The weighted mean of the members (the plain mean if their
   weights sum to 0).  Its weight is, with ``dwc_weighting="single"`` (default),
   the mean member weight, which is 1 for unweighted data: the paper's "used
   throughout later k-means iterations as if the cluster just has one weight";
   with ``"sum"``, the sum of the member weights, so the group pulls on its
   centroid as hard as its members would (k-means then minimises the same
   objective as on the original points, up to the merge).  The returned
   :class:`~pgbench.state.Consolidation` says which (``weighting``), and the
   ``honest_counts`` check recounts the weights accordingly.
9. Output order.  Consolidated points are ordered by the smallest original index of
   their members, so an independent point keeps its relative position.

``info`` counts: n_points, n_consolidated (m), n_dense_groups, n_points_merged
(points in dense groups), n_independent, n_levels (depth of the unrolled
recursion in the last round), eps_initial, eps_final, n_eps_rounds (rounds run;
eps_final = eps_initial * c_sd ** (n_eps_rounds - 1)), weighting and skipped
("" when consolidation happened).
"""

from __future__ import annotations

import logging
import math

import torch

from pgbench.params import Choice, Int, Real
from pgbench.registry import register
from pgbench.state import Consolidation
from pgbench.testing import expected_failures

log = logging.getLogger(__name__)

WEIGHTINGS = ("single", "sum")


def _split_level(X64: torch.Tensor, pts: torch.Tensor, gid: torch.Tensor, n_groups: int,
                 eps: float) -> tuple:
    """Run Algorithm 5 (and the confirmation step of Algorithm 4) on every pending group.

    Parameters
    ----------
    X64 : Tensor (n, d), float64 points
    pts : Tensor (N,), int64 point ids, grouped contiguously by ``gid``; the first
        point of each group is its anchor
    gid : Tensor (N,), int64 group index, non-decreasing, covering 0..n_groups-1
    n_groups : int, number of groups
    eps : float, the segment width

    Returns
    -------
    dense_pts : Tensor (a,), ids of the points in confirmed dense clusters
    dense_ids : Tensor (a,), their cluster index, 0..n_dense-1
    n_dense : int, confirmed dense clusters
    n_indep : int, independent weights (one-point segments)
    next_pts, next_gid : Tensor (b,), the potential clusters to re-examine, in the
        same layout as ``pts``/``gid`` (anchor = element nearest the parent anchor)
    next_groups : int
    """
    N, dev = pts.numel(), pts.device
    take = torch.index_select                                             # much faster than t[idx] on CPU
    counts = torch.bincount(gid, minlength=n_groups)                     # (G,)
    gend = torch.cumsum(counts, 0)
    gstart = gend - counts
    anchor_of = take(pts, 0, gstart).repeat_interleave(counts)            # (N,)
    dist = torch.linalg.vector_norm(take(X64, 0, pts) - take(X64, 0, anchor_of), dim=1)

    # an eps wider than twice the level's largest distance cuts exactly as that width
    # does (no segment ends inside a group), so it is capped there: an eps near the
    # float64 limit (a legal, finite value) then cannot overflow the offset below
    eps = min(eps, 2.0 * float(dist.max()))
    # one stable sort of the keys gid * offset + dist orders every group by distance,
    # ties in their previous order (so the anchor stays first); a power-of-two
    # offset >= 4 * (max dist + eps) keeps every cut dist + eps inside its own group
    offset = 2.0 ** math.ceil(math.log2(max(4.0 * (float(dist.max()) + eps), 1e-300)))
    keys, order = torch.sort(gid.to(torch.float64) * offset + dist, stable=True)
    pts = take(pts, 0, order)                                             # gid is unchanged
    nxt = torch.searchsorted(keys, keys + eps, right=True)               # (N,), in (s, gend]
    nxt = torch.where(nxt == take(gend, 0, gid), N, nxt)                 # group end -> sentinel N
    jump = torch.cat([nxt, torch.tensor([N], device=dev)])                # (N+1,)

    # segment starts = the chain start, next(start), next(next(start)), ... of each
    # group, marked by pointer doubling (jumps[b] = next applied 2 ** b times) in
    # n_jumps passes instead of a loop over links; a chain has at most
    # min(group size, max dist / eps + 1) links, and 2 ** n_jumps covers that
    links = int(counts.max())
    if eps > 0 and float(dist.max()) / eps < links:
        links = int(float(dist.max()) / eps) + 2
    n_jumps = max(0, math.ceil(math.log2(max(links, 1))))
    jumps = [jump]
    for _ in range(n_jumps - 1):
        jumps.append(take(jumps[-1], 0, jumps[-1]))
    on_chain = torch.zeros(N + 1, dtype=torch.bool, device=dev)
    on_chain[gstart] = True
    for table in reversed(jumps[:n_jumps]):          # links 0 .. 2 ** n_jumps - 1 from each start
        on_chain[take(table, 0, on_chain.nonzero().flatten())] = True
    is_start = on_chain[:N]
    seg = torch.cumsum(is_start, 0) - 1                                   # (N,) segment of each position
    seg_start = is_start.nonzero().flatten()                              # (S,)
    seg_size = torch.bincount(seg, minlength=seg_start.numel())           # (S,)
    first = seg_start == take(gstart, 0, take(gid, 0, seg_start))         # the anchor's own segment
    dense = first & (seg_size > 1)
    again = ~first & (seg_size > 1)
    in_dense, in_again = take(dense, 0, seg), take(again, 0, seg)
    dense_ids = take(torch.cumsum(dense, 0) - 1, 0, seg[in_dense])
    next_gid = take(torch.cumsum(again, 0) - 1, 0, seg[in_again])
    return (pts[in_dense], dense_ids, int(dense.sum()), int((seg_size == 1).sum()),
            pts[in_again], next_gid, int(again.sum()))


def _identify(X64: torch.Tensor, anchor: int, eps: float) -> tuple:
    """One full round of Algorithms 4-5 at ``eps`` from the top-level ``anchor``.

    Returns
    -------
    dense_of : Tensor (n,), int64 dense cluster of every point, -1 for independent ones
    n_dense : int
    n_indep : int
    n_levels : int, depth of the unrolled recursion
    """
    n, dev = X64.shape[0], X64.device
    everything = torch.arange(n, device=dev)
    pts = torch.cat([everything[anchor:anchor + 1], everything[:anchor], everything[anchor + 1:]])
    gid = torch.zeros(n, dtype=torch.long, device=dev)
    n_groups = 1
    dense_of = torch.full((n,), -1, dtype=torch.long, device=dev)
    n_dense = n_indep = n_levels = 0
    while pts.numel():
        n_levels += 1
        dense_pts, dense_ids, nd, ni, pts, gid, n_groups = _split_level(X64, pts, gid, n_groups, eps)
        dense_of[dense_pts] = dense_ids + n_dense
        n_dense += nd
        n_indep += ni
    return dense_of, n_dense, n_indep, n_levels


def _identity(X: torch.Tensor, weights: torch.Tensor, info: dict, reason: str) -> Consolidation:
    """No consolidation: every point is its own consolidated point."""
    n = X.shape[0]
    info.update(n_consolidated=n, n_dense_groups=0, n_points_merged=0, n_independent=n,
                skipped=reason)
    return Consolidation(X, weights, torch.arange(n, device=X.device), info, weighting="sum")


def _merge(X: torch.Tensor, weights: torch.Tensor, dense_of: torch.Tensor, n_dense: int,
           weighting: str) -> tuple:
    """Representatives (m, d), their weights (m,) and members (n,) from the dense groups."""
    n, dev = X.shape[0], X.device
    owner = torch.arange(n, device=dev)             # smallest original index of the group
    grouped = dense_of >= 0
    if n_dense:
        ids, which = dense_of[grouped], grouped.nonzero().flatten()
        first = torch.full((n_dense,), n, dtype=torch.long, device=dev)
        first.scatter_reduce_(0, ids, which, reduce="amin")
        owner.index_copy_(0, which, first.index_select(0, ids))
    _, members = torch.unique(owner, sorted=True, return_inverse=True)
    m = int(members.max()) + 1
    X64, w64 = X.double(), weights.double()
    mass = torch.zeros(m, dtype=torch.float64, device=dev).index_add_(0, members, w64)
    size = torch.bincount(members, minlength=m).double()
    weighted = torch.zeros(m, X.shape[1], dtype=torch.float64, device=dev)
    weighted.index_add_(0, members, X64 * w64[:, None])
    plain = torch.zeros_like(weighted).index_add_(0, members, X64)
    massive = mass > 0
    points = torch.where(massive[:, None], weighted / torch.where(massive, mass, 1.0)[:, None],
                         plain / size[:, None])
    new_weights = mass if weighting == "sum" else mass / size
    return points.to(X.dtype), new_weights.to(weights.dtype), members


@expected_failures(weights_as_duplicates=(
    "by design: with dwc_weighting='single' (the paper's) a group of copies weighs one point, a "
    "weighted point keeps its weight; and the anchor is drawn uniformly over the n points, the "
    "automatic eps from the unweighted rms, so copies change both"))
@register("consolidate", "dwc", params=[
    Real("dwc_eps", None, low=0, none=True, help="initial eps in the units of X; None: automatic"),
    Real("dwc_eps_ratio", 0.1, low=0, closed="neither", help="automatic eps as a fraction of the cell radius"),
    Real("c_sd", 0.8, low=0, high=1, closed="neither", help="factor applied to eps while n_cw < c_mc * k (Eq. 2)"),
    Real("c_mc", 2.0, low=0, help="minimum consolidated points as a multiple of k (Eq. 2)"),
    Int("dwc_max_rounds", 50, low=1, help="bound on the eps rounds of Eq. 2"),
    Choice("dwc_weighting", "single", WEIGHTINGS,
           help="representative weight: mean member weight (one point, the paper's) or summed"),
], summary="dense weights consolidation (PG k-means section 4.3, Eq. 2, Algorithms 3-5)")
def consolidate_dwc(X, weights, k, rng, *, dwc_eps, dwc_eps_ratio, c_sd, c_mc, dwc_max_rounds, dwc_weighting):
    """Merge dense groups of points into single weighted points (PG k-means DWC).

    Parameters
    ----------
    X : Tensor (n, d)
    weights : Tensor (n,), non-negative point weights
    k : int, number of centroids (n_c of Eq. 2)
    rng : torch.Generator (CPU), draws the top-level anchor
    dwc_eps, dwc_eps_ratio, c_sd, c_mc, dwc_max_rounds, dwc_weighting : as declared
        above (ranges and defaults live there, checked before this runs); the
        automatic eps is ``dwc_eps_ratio * rms * k ** (-1/d)`` (module docstring, 5.)

    Returns
    -------
    Consolidation with X (m, d), weights (m,), members (n,) and counts in ``info``.
    """
    n, d = X.shape
    target = max(c_mc * k, k)          # k-means needs at least k points, whatever c_mc says
    X64 = X.double()
    if dwc_eps is None:
        rms = float((X64 - X64.mean(0)).pow(2).sum(1).mean().sqrt())
        eps0 = dwc_eps_ratio * rms * k ** (-1.0 / d)
    else:
        eps0 = float(dwc_eps)
    info = {"n_points": n, "eps_initial": eps0, "eps_final": eps0, "n_eps_rounds": 0, "n_levels": 0,
            "weighting": dwc_weighting}
    if n < target:
        reason = f"n={n} < c_mc*k={target:g}: Eq. 2 can never hold"
        log.info("dwc: nothing consolidated (%s)", reason)
        return _identity(X, weights, info, reason)

    anchor = int(torch.randint(n, (1,), generator=rng))
    for r in range(dwc_max_rounds):
        eps = eps0 * c_sd ** r
        dense_of, n_dense, n_indep, n_levels = _identify(X64, anchor, eps)
        info.update(eps_final=eps, n_eps_rounds=r + 1, n_levels=n_levels)
        n_cw = n_dense + n_indep
        log.debug("dwc round %d: eps=%.6g, %d dense groups + %d independent = %d (need >= %g), %d levels",
                  r, eps, n_dense, n_indep, n_cw, target, n_levels)
        if n_cw >= target:
            break
        if eps == 0:
            reason = f"eps=0 still leaves n_cw={n_cw} < c_mc*k={target:g} (fewer distinct points)"
            log.warning("dwc: nothing consolidated (%s)", reason)
            return _identity(X, weights, info, reason)
    else:
        reason = (f"n_cw={n_cw} < c_mc*k={target:g} after dwc_max_rounds={dwc_max_rounds} "
                  f"rounds (eps down to {info['eps_final']:.3g})")
        log.warning("dwc: nothing consolidated (%s)", reason)
        return _identity(X, weights, info, reason)

    points, new_weights, members = _merge(X, weights, dense_of, n_dense, dwc_weighting)
    info.update(n_consolidated=points.shape[0], n_dense_groups=n_dense,
                n_points_merged=int((dense_of >= 0).sum()), n_independent=n_indep, skipped="")
    log.info("dwc: %d points -> %d (%d dense groups holding %d points), eps %.4g -> %.4g in %d rounds",
             n, points.shape[0], n_dense, info["n_points_merged"], eps0, info["eps_final"],
             info["n_eps_rounds"])
    return Consolidation(points, new_weights, members, info, weighting=dwc_weighting)
