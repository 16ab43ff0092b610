"""Read what a report needs from a result store: case rows, traces and downstream results.

The one place the report touches the store, and only to read: the case rows with
their JSON columns decoded, each measured case's per-iteration trace, and the
rows of the optional ``downstream`` table (GLUE accuracies written by the
downstream evaluation stage) when the SQLite file has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store import JSON_COLUMNS, Store
from .stats import decoded, has_metrics

DOWNSTREAM_TABLE = "downstream"


@dataclass
class ReportData:
    source: str                                    # the store's path, as given
    rows: list[dict[str, Any]]                     # case rows, JSON columns decoded
    traces: dict[str, list[dict[str, Any]]] = field(default_factory=dict)   # case_id -> trace rows
    downstream: list[dict[str, Any]] | None = None  # None: the store has no downstream table
    skipped: list[dict[str, Any]] | None = None     # skipped optional sources (suite, label, reason); None: not recorded


def decode_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``rows`` with the JSON columns parsed."""
    return [{k: decoded(v) if k in JSON_COLUMNS else v for k, v in r.items()} for r in rows]


def read_downstream(results: str | Path) -> list[dict[str, Any]] | None:
    """Every row of the ``downstream`` table as a dict, or None when the store has no such table."""
    with Store(results, readonly=True) as store:
        return store.table_rows(DOWNSTREAM_TABLE)


def load(results: str | Path, suite: str | None = None, with_traces: bool = True) -> ReportData:
    """The report's input from the store at ``results`` (a folder or its ``results.sqlite``).

    Raises
    ------
    ValueError
        When there is no result store at ``results``.
    """
    with Store(results, readonly=True) as store:
        rows = decode_rows(store.rows(suite))
        traces = {r["case_id"]: store.trace(r["case_id"]) for r in rows if with_traces and has_metrics(r)}
        downstream = store.table_rows(DOWNSTREAM_TABLE)
        skipped = store.skipped_sources(suite)
    return ReportData(str(results), rows, traces, downstream, skipped)
