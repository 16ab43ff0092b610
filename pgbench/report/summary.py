"""The report's summary: case counts by status, the failed cases, and where the results come from.

Plain functions of the case rows of :meth:`pgbench.store.Store.rows` (JSON
columns decoded or not), like :mod:`pgbench.report.tables`.
"""

from __future__ import annotations

from typing import Any, Sequence

from .stats import FAILED, decoded, namer

Row = dict[str, Any]


def status_counts(rows: Sequence[Row]) -> dict[str, int]:
    """Cases by status, statuses sorted by name."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[str(r.get("status"))] = counts.get(str(r.get("status")), 0) + 1
    return dict(sorted(counts.items()))


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
