"""No empty-cluster resolution: empty clusters keep their stale centroid."""

from pgbench.registry import register
from pgbench.state import ResolveOutcome


@register("resolve", "none", summary="leave empty clusters as they are")
def resolve_none(state, rng):
    n = state.n_empty
    return ResolveOutcome(n_found=n, n_resolved=0, n_left=n, rounds=0)
