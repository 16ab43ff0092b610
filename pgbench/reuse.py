"""Cases that compute the same thing share one run: the plan, and the copy each of the others gets.

What: cases with equal :attr:`~pgbench.case.Case.work_key` run the same k-means on
the same points with the same settings and seed, so they produce the same row but
for their own identity (case id, method label, source parameters).  The paper
suite is the example: a checkpoint's four compression presets differ only in
block size and k per layer type, and the attention layers are cut with b = 4 at all
four, so 2044 cases are only 686 distinct computations.  :func:`plan` groups them;
the first case of each group (in suite order) runs and the others follow it: when
its row is stored, each follower is stored as a copy of it (row and trace,
:meth:`pgbench.store.Store.copy_case`) whose ``reused_from`` names the case that
ran, and whose ``seconds_*`` are that run's timings.  A group whose work a stored
case already did is copied at once, before anything runs.

Why this is sound: the engine is deterministic for a seed (a run whose timing
repeats disagree is stored as ``error``), every field that decides the outcome is in
the work key, and what the key leaves out (:data:`OWN_FIELDS`) does not reach the
engine.  Only sources that say what decides their points
(:func:`pgbench.sources.data_params`) ever share; every other case's work key is its
case id.  The report and exports see every case as before; ``reused_from`` tells
computed rows (NULL) from copies, so a timing total can count each run once.

Order: the cases to run are handed out most expensive first (n * k * d, the work
of one assignment pass; stable, so cases of one data set stay together), which
keeps a long case from starting last while the other workers idle.
"""

from __future__ import annotations

from typing import Any, Sequence

from .case import Case

__all__ = ["OWN_FIELDS", "cost", "own_values", "plan"]

#: the stored fields two cases with one work key may differ in (each case keeps its own);
#: every other field of a copy is the computed case's, provenance (host, versions, created_at) included
OWN_FIELDS = ("case_id", "method", "source_params", "primary_metric")


def cost(case: Case) -> int:
    """The work of one assignment pass, n * k * d: the order cases are handed out in (largest first)."""
    return case.n * case.k * case.d


def plan(cases: Sequence[Case]) -> dict[str, list[Case]]:
    """``cases`` by work key, each group in suite order (the first runs, the others follow it), the groups
    most expensive first (stable: the groups of one data set stay together)."""
    groups: dict[str, list[Case]] = {}
    for case in cases:
        groups.setdefault(case.work_key, []).append(case)
    return dict(sorted(groups.items(), key=lambda item: cost(item[1][0]), reverse=True))


def own_values(case: Case, computed_id: str) -> dict[str, Any]:
    """The columns a copy for ``case`` of the stored case ``computed_id`` replaces."""
    values: dict[str, Any] = {name: getattr(case, name) for name in OWN_FIELDS}
    values["reused_from"] = computed_id
    return values
