"""The report's checks of the PG k-means paper's claims, in units that compare across resolvers.

Plain functions of stored case rows (JSON columns decoded or not), numbers
unformatted, as in :mod:`pgbench.report.tables`; :func:`display` turns them into
the tables of the template's ``paper-checks`` section.

* :func:`resolution_work_table` -- section 5.4 in common units.  A resolver's
  "rounds" mean different things (fairseq: full re-assignments; PG: passes;
  scikit-learn and faiss: 1 per iteration with empties, with no re-assignment), so
  the view compares ``resolve_distance_evals`` (distance evaluations beyond the
  Lloyd assignment), ``resolve_assign_passes`` (extra full assignment passes) and
  ``seconds_resolve``, each per *resolution event* (an iteration whose assignment
  left empty clusters).  Per event, not per run: fairseq stops the run when it
  gives up, so its per-run sums cover fewer iterations than PG's (they are lower
  bounds, and the view counts the stopped runs).  Per method: the median over
  runs of the per-event values; against the baseline, the geometric mean over
  paired runs of baseline / method.
* :func:`paper_claim` -- the paper's "8x fewer iterations, 3.8x faster" restated
  in those units, with the measured ratios of PG against fairseq.
* :func:`consolidation_table` -- each consolidating method (PG-full) beside the
  same data's PG: the consolidated fraction (points merged into groups of two
  or more / points), groups, final epsilon, inertia relative to PG.
* :func:`init_empties_table` -- empty clusters at the first assignment per init
  heuristic (PG init's claimed "zero" beside the other inits').
* :func:`last_assignment_table` -- empties of the final assignment (what every
  other table counts) beside those of the last in-loop assignment (what
  fairseq's ``PQ.encode`` returns).
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Sequence

from .. import naming
from .stats import combination, decoded, geometric_mean, has_metrics, namer, pair_key, same_name
from .tables import find_method, setting

Row = dict[str, Any]

#: the method the work ratios are taken against, and the one the paper's claim is about
BASELINE = naming.method_name("fairseq", "fairseq")
PG = naming.method_name("pg", "pg")
#: what the paper claims for PG's fine-tuning against fairseq's resolution (section 5.4)
PAPER_FEWER_ITERATIONS = 8.0
PAPER_SPEEDUP = 3.8


def _events(row: Row) -> int:
    """Iterations whose assignment left empty clusters (the resolver had work to do)."""
    return sum(1 for a in decoded(row.get("n_empty_assigned_per_iter")) or [] if a and a > 0)


def _per_event(row: Row, column: str) -> float | None:
    events, value = _events(row), row.get(column)
    return None if not events or value is None else float(value) / events


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


WORK = ("resolve_distance_evals", "resolve_assign_passes", "seconds_resolve")


def resolution_work_table(rows: Sequence[Row], baseline: str | None = BASELINE) -> list[Row]:
    """Resolution work per method, per resolution event (see the module docstring).

    One dict per method: ``n`` measured runs, ``n_stopped`` (the resolver stopped
    the run: its sums cover only the iterations before), ``n_events`` resolution
    events in all; for each column of :data:`WORK`, ``<column>`` = the median over
    runs with events of the per-event value, ``<column>_total`` = the sum over
    runs; and, when ``baseline`` is among the methods, ``n_pairs`` and
    ``<column>_fewer`` = geometric mean over paired runs with events of baseline /
    method (inf when the method did none of that work; pairs where both did none
    are left out).
    """
    name = namer(rows)
    base = find_method(rows, baseline)
    measured = [r for r in rows if has_metrics(r)]
    base_rows = {pair_key(r): r for r in measured if base and name(r) == base}
    groups: dict[str, list[Row]] = {}
    for r in measured:
        groups.setdefault(name(r), []).append(r)
    out = []
    for method, runs in sorted(groups.items()):
        entry: Row = {"method": method, "n": len(runs), "n_stopped": sum(r.get("status") == "stopped" for r in runs),
                      "n_events": sum(_events(r) for r in runs), "n_pairs": 0}
        for column in WORK:
            entry[column] = _median([v for v in (_per_event(r, column) for r in runs) if v is not None])
            entry[f"{column}_total"] = sum(float(r.get(column) or 0) for r in runs)
            entry[f"{column}_fewer"] = None
        paired = [(r, base_rows[pair_key(r)]) for r in runs if pair_key(r) in base_rows]
        paired = [(r, b) for r, b in paired if _events(r) and _events(b)]
        if base is not None and method != base and paired:
            entry["n_pairs"] = len(paired)
            for column in WORK:
                ratios = []
                for r, b in paired:
                    mine, theirs = _per_event(r, column), _per_event(b, column)
                    if mine is None or theirs is None or (mine == 0 and theirs == 0):
                        continue            # not measured (a store from before these columns), or no work
                    ratios.append(math.inf if mine == 0 else theirs / mine)
                entry[f"{column}_fewer"] = geometric_mean(ratios)
        out.append(entry)
    return out


def paper_claim(work: Sequence[Row], pg: str = PG, baseline: str = BASELINE) -> Row | None:
    """The paper's section 5.4 claim beside the measured ratios of ``pg`` against ``baseline``.

    ``work`` is :func:`resolution_work_table`'s output (taken against ``baseline``).
    Returns None when the table has no row for ``pg`` with paired runs.
    """
    row = next((r for r in work if same_name(r["method"], pg) and r["n_pairs"]), None)
    if row is None:
        return None
    return {"method": row["method"], "baseline": baseline, "n_pairs": row["n_pairs"],
            "claimed_fewer_iterations": PAPER_FEWER_ITERATIONS, "claimed_speedup": PAPER_SPEEDUP,
            "fewer_passes": row["resolve_assign_passes_fewer"],
            "fewer_distance_evals": row["resolve_distance_evals_fewer"],
            "speedup": row["seconds_resolve_fewer"]}


def _consolidation_params(row: Row) -> dict[str, Any]:
    params = decoded(row.get("params")) or {}
    return params.get("consolidate", {}) if isinstance(params, dict) else {}


def consolidation_table(rows: Sequence[Row], reference: str = PG) -> list[Row]:
    """Each consolidating method per setting, beside the same data's ``reference`` (PG) runs.

    One dict per (setting, method) with a consolidation: ``n`` runs; ``fraction``
    = median of ``n_consolidated_points / n_points``, with ``fraction_min`` /
    ``fraction_max``; ``groups`` and ``eps_final``, medians; the consolidation's
    ``eps_ratio`` and ``weighting`` parameters when every run shares them (else
    None); ``inertia_vs_reference`` = geometric mean over paired runs of inertia /
    the reference's inertia (below 1: consolidating helped), ``n_pairs``; and
    ``n_with_empty`` runs ending with an empty cluster.
    """
    name = namer(rows)
    measured = [r for r in rows if has_metrics(r)]
    ref = {pair_key(r): r for r in measured if same_name(combination(r), reference) and not r.get("consolidate")
           and r.get("inertia") is not None}
    cells: dict[tuple[str, str], list[Row]] = {}
    for r in measured:
        if r.get("consolidate") and r.get("n_points"):
            cells.setdefault((setting(r), name(r)), []).append(r)
    out = []
    for (where, method), runs in sorted(cells.items()):
        fractions = [float(r.get("n_consolidated_points") or 0) / float(r["n_points"]) for r in runs]
        shared = {key: {_consolidation_params(r).get(param) for r in runs}
                  for key, param in (("eps_ratio", "dwc_eps_ratio"), ("weighting", "dwc_weighting"))}
        ratios = [float(r["inertia"]) / float(ref[pair_key(r)]["inertia"]) for r in runs
                  if pair_key(r) in ref and r.get("inertia") is not None and float(ref[pair_key(r)]["inertia"]) > 0]
        out.append({"setting": where, "method": method, "n": len(runs), "fraction": _median(fractions),
                    "fraction_min": min(fractions), "fraction_max": max(fractions),
                    "groups": _median([float(r.get("n_groups") or 0) for r in runs]),
                    "eps_final": _median([float(r["eps_final"]) for r in runs if r.get("eps_final") is not None]),
                    **{key: next(iter(v)) if len(v) == 1 else None for key, v in shared.items()},
                    "inertia_vs_reference": geometric_mean(ratios), "n_pairs": len(ratios),
                    "n_with_empty": sum(1 for r in runs if (r.get("n_empty_final") or 0) > 0)})
    return out


def init_empties_table(rows: Sequence[Row]) -> list[Row]:
    """Empty clusters at the first assignment, per setting and init heuristic (not per method).

    One dict per (setting, init): ``n`` runs, ``n_with_empty`` runs with an empty
    cluster at the first assignment, ``median`` and ``max`` of ``n_empty_initial``,
    ``share_pct`` = n_with_empty / n in percent.
    """
    cells: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        if has_metrics(r) and r.get("n_empty_initial") is not None and r.get("init"):
            cells.setdefault((setting(r), str(r["init"])), []).append(int(r["n_empty_initial"]))
    return [{"setting": s, "init": init, "n": len(v), "n_with_empty": sum(e > 0 for e in v),
             "share_pct": 100.0 * sum(e > 0 for e in v) / len(v), "median": _median([float(e) for e in v]),
             "max": max(v)} for (s, init), v in sorted(cells.items())]


def last_assignment_table(rows: Sequence[Row]) -> list[Row]:
    """Per method: empties at the final assignment and at the last in-loop one (fairseq's).

    One dict per method: ``n`` runs with both counts, ``mean_final`` /
    ``mean_last`` (means of ``n_empty_final`` / ``n_empty_last_assignment``),
    ``n_differ`` runs where the two differ.
    """
    name = namer(rows)
    cells: dict[str, list[tuple[int, int]]] = {}
    for r in rows:
        if has_metrics(r) and r.get("n_empty_final") is not None and r.get("n_empty_last_assignment") is not None:
            cells.setdefault(name(r), []).append((int(r["n_empty_final"]), int(r["n_empty_last_assignment"])))
    return [{"method": m, "n": len(v), "mean_final": sum(f for f, _ in v) / len(v),
             "mean_last": sum(last for _, last in v) / len(v), "n_differ": sum(f != last for f, last in v)}
            for m, v in sorted(cells.items())]


# ------------------------------------------------------------------- display

def _claim_text(claim: Row | None, fmt) -> str:
    head = (f"The paper (section 5.4) reports that PG's cluster fine-tuning needs on average "
            f"{PAPER_FEWER_ITERATIONS:g}× fewer iterations than fairseq's resolution and is at worst "
            f"{PAPER_SPEEDUP:g}× faster. In these units an iteration of either is one full assignment pass "
            "(n·k distance evaluations; PG's partition trees add 2 per point of each split node, little beside "
            f"n·k), so the claim reads: {PAPER_FEWER_ITERATIONS:g}× fewer assignment passes and about as many "
            f"times fewer distance evaluations per resolution event, and at least {PAPER_SPEEDUP:g}× less "
            "resolution time.")
    if claim is None:
        return head + " This store has no PG run paired with a fairseq run that met empty clusters to measure it on."
    return (head + f" Measured here ({claim['method']} against {claim['baseline']}, geometric mean over "
            f"{claim['n_pairs']} paired runs): {fmt(claim['fewer_passes'])}× fewer passes, "
            f"{fmt(claim['fewer_distance_evals'])}× fewer distance evaluations, "
            f"{fmt(claim['speedup'])}× less resolution time per event.")


def display(rows: Sequence[Row], styles: dict[str, Any]) -> dict[str, Any]:
    """The ``paper-checks`` section's tables and text (render's Table / Cell), for the template."""
    from .render import Cell, Table, fmt   # render imports this module

    def method(name: str) -> Any:
        style = styles.get(name)
        return Cell(name, swatch=style.color if style else None)

    def num(value: Any, sub: str = "") -> Any:
        return Cell(value if isinstance(value, str) else fmt(value), sub=sub, num=True)

    tables = []
    work = resolution_work_table(rows)
    if work:
        base = find_method(rows, BASELINE) or "the baseline (fairseq + fairseq, absent here)"
        t = Table("Resolution work per resolution event",
                  "A resolution event is an iteration whose assignment left empty clusters. Per method: the "
                  "median over runs of (the run's work / its events); totals are sums over runs, and a stopped "
                  "run's sums cover only the iterations before it stopped. Distance evaluations and passes are "
                  f"beyond the Lloyd assignment step. Ratios: geometric mean over paired runs of {base} / method; "
                  "higher is less work. Lower is better in every other column.",
                  ["Method", "Runs", "Stopped runs", "Events", "Distance evaluations per event",
                   "Assignment passes per event", "Resolution time per event (ms)", "Distance evaluations, total",
                   "Fewer evaluations (×)", "Fewer passes (×)", "Less time (×)"])
        for r in work:
            ms = None if r["seconds_resolve"] is None else 1e3 * r["seconds_resolve"]
            t.rows.append([method(r["method"]), num(str(r["n"])), num(str(r["n_stopped"])), num(str(r["n_events"])),
                           num(r["resolve_distance_evals"]), num(r["resolve_assign_passes"]), num(ms),
                           num(r["resolve_distance_evals_total"]),
                           num(r["resolve_distance_evals_fewer"], f"{r['n_pairs']} pairs" if r["n_pairs"] else ""),
                           num(r["resolve_assign_passes_fewer"]), num(r["seconds_resolve_fewer"])])
        tables.append(t)
    consolidation = consolidation_table(rows)
    if consolidation:
        t = Table("Dense weights consolidation beside PG",
                  "Per setting and consolidating method: the consolidated fraction (points merged into groups of "
                  "two or more / points; median, range below), median groups and final epsilon, and the inertia "
                  "relative to PG (pg + pg) on the same data (geometric mean over paired runs; below 1: "
                  "consolidating helped).",
                  ["Setting", "Method", "dwc_eps_ratio", "Weighting", "Runs", "Consolidated (%)", "Groups",
                   "Final epsilon", "Inertia vs PG (×)", "Runs ending with empties"])
        t.rows = [[Cell(r["setting"]), method(r["method"]), num(r["eps_ratio"]), Cell(r["weighting"] or "-"),
                   num(str(r["n"])),
                   num(100 * r["fraction"], f"[{fmt(100 * r['fraction_min'])}, {fmt(100 * r['fraction_max'])}]"),
                   num(r["groups"]), num(r["eps_final"]), num(r["inertia_vs_reference"], f"{r['n_pairs']} pairs"),
                   num(str(r["n_with_empty"]))] for r in consolidation]
        tables.append(t)
    init = init_empties_table(rows)
    if init:
        t = Table("Empty clusters at the first assignment, per init",
                  "Per setting and init heuristic (over every method using it): runs, runs with an empty cluster "
                  "at the first assignment (share), median and largest count. PG k-means claims zero; lower is "
                  "better.",
                  ["Setting", "Init", "Runs", "Runs with empties", "Median", "Largest"])
        t.rows = [[Cell(r["setting"]), Cell(r["init"]), num(str(r["n"])),
                   num(str(r["n_with_empty"]), f"{fmt(r['share_pct'])} %"), num(r["median"]), num(str(r["max"]))]
                  for r in init]
        tables.append(t)
    last = last_assignment_table(rows)
    if last:
        t = Table("Empty clusters: final assignment and last in-loop assignment",
                  "The tables above (Tables 1, 4 and 5 of the paper) count n_empty_final: one more assignment "
                  "after the last update, which pgbench's labels come from. fairseq's PQ.encode returns the last "
                  "assignment inside its loop instead (n_empty_last_assignment). Means over runs.",
                  ["Method", "Runs", "Final assignment (mean)", "Last in-loop assignment (mean)", "Runs that differ"])
        t.rows = [[method(r["method"]), num(str(r["n"])), num(r["mean_final"]), num(r["mean_last"]),
                   num(str(r["n_differ"]))] for r in last]
        tables.append(t)
    return {"tables": tables, "claim": _claim_text(paper_claim(work), fmt) if work else ""}
