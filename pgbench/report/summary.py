"""The report's summary: case counts by status, the failed cases, and where the results come from.

Plain functions of the case rows of :meth:`pgbench.store.Store.rows` (JSON
columns decoded or not), like :mod:`pgbench.report.tables`.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Sequence

from .stats import FAILED, decoded, namer

log = logging.getLogger(__name__)

Row = dict[str, Any]


def status_counts(rows: Sequence[Row]) -> dict[str, int]:
    """Cases by status, statuses sorted by name."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[str(r.get("status"))] = counts.get(str(r.get("status")), 0) + 1
    return dict(sorted(counts.items()))


def reused_count(rows: Sequence[Row]) -> int:
    """Cases stored as copies of a run that computed the same thing (``reused_from`` set, :mod:`pgbench.reuse`)."""
    return sum(1 for r in rows if r.get("reused_from"))


def failed_cases(rows: Sequence[Row]) -> list[Row]:
    """The error / timeout cases, with their error text."""
    name = namer(rows)
    return [{"method": name(r), "dataset": r.get("dataset"), "seed": r.get("seed"), "status": r.get("status"),
             "error": r.get("error") or "", "case_id": str(r.get("case_id"))[:12]}
            for r in rows if r.get("status") in FAILED]


def provenance(rows: Sequence[Row]) -> dict[str, Any]:
    """Distinct suites, commits, devices, hosts, library versions and the time span of the cases."""
    def distinct(col: str) -> list[str]:
        return sorted({str(r[col]) for r in rows if r.get(col) not in (None, "")})

    versions: dict[str, set[str]] = {}
    for r in rows:
        for lib, v in (decoded(r.get("versions")) or {}).items():
            versions.setdefault(lib, set()).add(str(v))
    created = distinct("created_at")
    return {"suites": distinct("suite"), "commits": distinct("git_commit"), "devices": distinct("device"),
            "backends": distinct("backend"), "dtypes": distinct("dtype"), "hosts": distinct("host"),
            "threads": distinct("threads"), "versions": {k: sorted(v) for k, v in sorted(versions.items())},
            "first": created[0] if created else None, "last": created[-1] if created else None}


def method_parameters(rows: Sequence[Row]) -> list[Row]:
    """Every method with its suite label(s), stages and full parameters, as stored with its cases.

    One dict per (method, distinct parameter set): ``method``, ``labels``, ``params``
    (the stored ``params`` object: every stage's parameters, defaults filled),
    ``backend`` and ``max_points_per_centroid`` when set, ``n`` cases.
    """
    name = namer(rows)
    cells: dict[tuple[str, str], Row] = {}
    for r in rows:
        params = decoded(r.get("params")) or {}
        extra = {k: r.get(k) for k in ("backend", "max_points_per_centroid") if r.get(k) not in (None, "")}
        key = (name(r), json.dumps([params, extra], sort_keys=True, default=str))
        cell = cells.setdefault(key, {"method": name(r), "labels": set(), "params": params, **extra, "n": 0})
        cell["labels"].add(str(r.get("method") or ""))
        cell["n"] += 1
    return [{**c, "labels": sorted(c["labels"])} for _, c in sorted(cells.items())]


def _source_of(row: Row) -> tuple[str, str]:
    params = decoded(row.get("source_params")) or {}
    preset = params.get("preset") if isinstance(params, dict) else None
    return str(row.get("source")), str(preset or "")


def sources(rows: Sequence[Row], recorded: Sequence[Row] | None = None) -> dict[str, Any]:
    """The sources with cases in the store, and the suite's optional sources left out, with their reason.

    ``recorded`` are the skipped sources the runs stored (``Store.skipped_sources``:
    dicts with ``suite``, ``label``, ``reason``), listed as they are.  A store written
    before they were recorded (``recorded`` None) falls back on the suite's file when
    the rows' suite is a built-in one: a source with no case in the store is listed
    with the reason the suite gives *on this machine now*, else "no case in the
    store".  Returns ``present`` (source, preset, cases), ``skipped`` (label, source,
    reason) and ``note`` (how the list was made).
    """
    present: dict[tuple[str, str], int] = {}
    for r in rows:
        present[_source_of(r)] = present.get(_source_of(r), 0) + 1
    out: dict[str, Any] = {"present": [{"source": s, "preset": p, "cases": n} for (s, p), n in sorted(present.items())],
                           "skipped": [], "note": ""}
    if recorded is not None:
        out["skipped"] = [{"label": r["label"], "source": "", "reason": r.get("reason") or ""}
                          for r in recorded]
        out["note"] = "recorded by the runs that stored these cases (the latest run of each suite)"
        return out
    out["note"] = "this store predates the record of skipped optional sources"
    suites = sorted({str(r.get("suite")) for r in rows if r.get("suite")})
    if len(suites) != 1:
        return out
    try:
        from ..suite import builtin_suites, load_suite

        if suites[0] not in builtin_suites():
            out["note"] += f"; '{suites[0]}' is not a built-in suite, so they cannot be derived here"
            return out
        suite = load_suite(suites[0])
    except Exception as exc:  # noqa: BLE001 - the list is a courtesy; a report never fails on it
        log.info("could not read suite %s for its sources: %s", suites[0], exc)
        out["note"] += f"; the suite '{suites[0]}' could not be read to derive them"
        return out
    for src in suite.sources:
        preset = str(src.params.get("preset") or "") if isinstance(src.params, dict) else ""
        if (src.name, preset) not in present:
            out["skipped"].append({"label": src.label, "source": src.name,
                                   "reason": src.unavailable or "no case in the store"})
    out["note"] += (f"; derived from the built-in suite '{suites[0]}' as it reads on the machine writing this "
                    "report: its sources without a case in the store, with the reason given there")
    return out
