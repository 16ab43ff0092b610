"""Assumption-free k-MC^2 seeding (Bachem, Lucic, Hassani, Krause, "Fast and Provably Good Seedings
for k-Means", NeurIPS 2016, Algorithm 1).

k-means++ draws each centre proportional to D^2, which costs a pass over the data
per centre.  AFK-MC^2 replaces that pass by a Metropolis-Hastings chain of length
m = ``chain_length`` (200 in the paper's experiments) whose proposals come from a
fixed distribution q computed once from the first centre c1::

    q(x) = 1/2 * w(x) d(x, c1)^2 / sum_y w(y) d(y, c1)^2  +  1/2 * w(x) / sum_y w(y)

(the paper's 1/2 d^2 / sum d^2 + 1/(2n) with unit weights).  For each next centre:
draw x from q, then m - 1 proposals y from q, moving the chain to y when
pi(y) q(x) > U pi(x) q(y), U uniform in [0, 1), with the target pi(x) = w(x) D(x)^2
(D: distance to the nearest centre so far); the state after the last proposal is
the centre.  Weights enter q and pi as duplicated points would: w copies of a
point carry w times its per-copy q and pi, and the ratio pi/q per copy is the
same, so an integer weight equals that many adjacent copies draw for draw
(every draw is an inverse-CDF draw, see ``_sampling``).

Choices where the paper is silent:

* the first centre is drawn proportional to weight (uniform for unit weights);
* the test is written as a product, not a ratio, so a chain at a point with
  D = 0 (a copy of a centre) moves at its first proposal with D > 0 (the ratio is
  +inf there), and one whose proposals all have D = 0 stays, duplicating a centre
  (the engine then sees an empty cluster); if every distance to c1 is 0, q is
  proportional to weight;
* D is computed in float64 from the float32 points, exactly 0 for a copy.

faiss 1.15 (``ClusteringInitMethod_AFK_MC2``, ``impl/ClusteringInitialization.cpp``)
differs: its chain makes ``afkmc2_chain_length`` (default 50) proposals after the
first state (m + 1 samples where the paper has m), redraws a first state that is an
already chosen index, skips proposals that are chosen indices, and never leaves a
state at distance 0, so on data with duplicate points a chain that starts on a
copy of a centre keeps it; it ignores sample weights.  On data without duplicates
the two agree in distribution when faiss's length is m - 1 (tests/test_field_seeding.py
runs both).

Draws from the run's generator: one uniform for c1, then per centre m for the
states and m - 1 for the tests.  Cost: O(n d) for q, then O(m k^2 d / 2) for the
chains, against O(n k d log k) for greedy k-means++, so it is cheaper only when
n > m k.
"""

import torch

from pgbench.heuristics._sampling import inverse_cdf, uniforms, weighted_draws
from pgbench.params import Int
from pgbench.registry import register
from pgbench.state import InitOutcome

_EXACT = "donot_use_mm_for_euclid_dist"       # differences, not the norm expansion: 0 for a copy


def _proposal(X, w, first):
    """q (n,) float64 from the first centre, and its cumulative sum."""
    d2 = ((X - X[first]) ** 2).sum(1).double()                              # (n,)
    share = w / w.sum()
    wd2 = w * d2
    total = float(wd2.sum())
    q = 0.5 * share + (0.5 * wd2 / total if total > 0 else 0.5 * share)
    return q, torch.cumsum(q, 0)


def _chain(pi, q, u):
    """Index of the final state of one Metropolis-Hastings chain over the m samples (lists)."""
    state = 0
    for t in range(1, len(pi)):
        if pi[t] * q[state] > u[t - 1] * pi[state] * q[t]:
            state = t
    return state


@register("init", "afkmc2", params=[
    Int("chain_length", 200, low=1,
        help="m: samples per Markov chain, the first state and m - 1 proposals (paper: 200)"),
], summary="assumption-free k-MC^2 (Bachem et al. 2016): Markov-chain k-means++ seeding, chains of 200")
def init_afkmc2(X, weights, k, rng, *, chain_length):
    w = weights.double()
    m = chain_length
    first = weighted_draws(w, 1, rng)
    q, cum = _proposal(X, w, first)
    C = torch.empty((k, X.shape[1]), dtype=torch.float64, device=X.device)  # (k, d) centres so far
    C[0] = X[first[0]].double()
    picks = [first]
    accepted = 0
    for i in range(1, k):
        idx = inverse_cdf(cum, uniforms(m, rng, X.device) * cum[-1])       # (m,) states and proposals
        u = uniforms(m - 1, rng, X.device)
        D2 = torch.cdist(X[idx].double(), C[:i], compute_mode=_EXACT).pow_(2).min(1).values   # (m,)
        pi = (w[idx] * D2).tolist()
        state = _chain(pi, q[idx].tolist(), u.tolist())
        accepted += state > 0
        picks.append(idx[state:state + 1])
        C[i] = X[idx[state]].double()
    return InitOutcome(X[torch.cat(picks)].clone(), {"chain_length": m, "n_chains_moved": int(accepted)})
