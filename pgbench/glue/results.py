"""The ``downstream`` table: one row per task x heuristic combination x preset x seed.

What: :class:`DownstreamStore` opens the same ``RESULTS_DIR/results.sqlite`` as
:class:`pgbench.store.Store` (WAL mode, busy timeout) and keeps its own table,
``downstream`` (columns :data:`COLUMNS`), created on first use; the ``cases``
table is never touched. Each row is inserted in one ``BEGIN IMMEDIATE``
transaction with ``INSERT OR IGNORE`` on ``row_id``, a content hash of what
defines the row (:func:`row_id`), so a case written twice is stored once and a
re-run can skip what is already there.

JSON columns (:data:`JSON_COLUMNS`) hold JSON text; :meth:`DownstreamStore.add`
takes them as Python objects. ``metric`` is the task's main metric in percent
(``metric_name``: accuracy, f1, matthews or pearson), ``metrics`` all of them.
The unquantized model is stored as method ``float``, preset ``none``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any

from ..store import SQLiteFile

__all__ = ["TABLE", "COLUMNS", "COLUMN_NAMES", "JSON_COLUMNS", "DownstreamStore", "row_id", "now"]

TABLE = "downstream"

#: (name, SQLite type) of every column, in export order
COLUMNS: tuple[tuple[str, str], ...] = (
    ("row_id", "TEXT PRIMARY KEY"), ("task", "TEXT NOT NULL"), ("metric_name", "TEXT"), ("metric", "REAL"),
    ("accuracy", "REAL"), ("metrics", "TEXT"), ("model", "TEXT"), ("method", "TEXT"), ("preset", "TEXT"),
    ("compression_ratio", "REAL"), ("size_mb", "REAL"), ("original_mb", "REAL"),
    ("init", "TEXT"), ("resolve", "TEXT"), ("consolidate", "TEXT"), ("params", "TEXT"), ("seed", "INTEGER"),
    ("n_iter", "INTEGER"), ("ipq_stages", "INTEGER"), ("finetune_key", "TEXT"), ("finetune", "TEXT"),
    ("n_layers", "INTEGER"), ("n_layers_with_empty", "INTEGER"), ("n_empty_total", "INTEGER"),
    ("empty_per_layer", "TEXT"), ("status_per_layer", "TEXT"), ("rel_error_per_layer", "TEXT"),
    ("layer_types", "TEXT"), ("layer_configs", "TEXT"),
    ("seconds_quantize", "REAL"), ("seconds_eval", "REAL"), ("seconds_finetune", "REAL"),
    ("n_dev", "INTEGER"), ("device", "TEXT"), ("threads", "INTEGER"), ("versions", "TEXT"),
    ("status", "TEXT NOT NULL"), ("error", "TEXT"), ("created_at", "TEXT"),
)
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)
JSON_COLUMNS = ("metrics", "params", "finetune", "empty_per_layer", "status_per_layer", "rel_error_per_layer",
                "layer_types", "layer_configs", "versions")


def row_id(task: str, model: str, finetune_key: str, method: str, preset: str, init: str | None,
           resolve: str | None, consolidate: str | None, params: Any, seed: int, n_iter: int,
           ipq_stages: bool, extra: Any = None) -> str:
    """Content hash (hex, 24 chars) of everything that defines a downstream row."""
    blob = json.dumps([task, model, finetune_key, method, preset, init, resolve, consolidate, params, seed,
                       n_iter, bool(ipq_stages), extra], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def now() -> str:
    """UTC timestamp, ISO 8601, seconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class DownstreamStore(SQLiteFile):
    """The ``downstream`` table of ``results`` (a folder, or the ``.sqlite`` file itself)."""

    def __init__(self, results: str | Path, busy_timeout_s: float = 120.0):
        super().__init__(results, busy_timeout_s)
        with self._transaction():
            self._ensure_table(TABLE, COLUMNS)
            self._conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_task ON {TABLE} (task, preset, method)")

    def add(self, row: dict[str, Any]) -> bool:
        """Insert one row atomically; False when its ``row_id`` was already stored.

        Raises ValueError for an unknown column or a missing ``row_id`` / ``task`` / ``status``.
        """
        unknown = sorted(set(row) - set(COLUMN_NAMES))
        if unknown:
            raise ValueError(f"downstream row has unknown column(s): {', '.join(unknown)}.")
        missing = [n for n in ("row_id", "task", "status") if not row.get(n)]
        if missing:
            raise ValueError(f"downstream row lacks {', '.join(missing)}.")
        values = [json.dumps(row.get(n), sort_keys=True) if n in JSON_COLUMNS and row.get(n) is not None
                  else row.get(n) for n in COLUMN_NAMES]
        marks = ", ".join("?" * len(COLUMN_NAMES))
        with self._transaction():
            cur = self._conn.execute(f"INSERT OR IGNORE INTO {TABLE} ({', '.join(COLUMN_NAMES)}) VALUES ({marks})",
                                     values)
        return cur.rowcount == 1

    def has(self, rid: str) -> bool:
        return self._conn.execute(f"SELECT 1 FROM {TABLE} WHERE row_id = ?", (rid,)).fetchone() is not None

    def get(self, rid: str) -> dict[str, Any] | None:
        cur = self._conn.execute(f"SELECT {', '.join(COLUMN_NAMES)} FROM {TABLE} WHERE row_id = ?", (rid,))
        found = cur.fetchone()
        return dict(zip(COLUMN_NAMES, found)) if found else None

    def rows(self, task: str | None = None) -> list[dict[str, Any]]:
        """Stored rows as dicts (JSON columns as JSON text), in insertion order."""
        sql, args = f"SELECT {', '.join(COLUMN_NAMES)} FROM {TABLE}", ()
        if task is not None:
            sql, args = sql + " WHERE task = ?", (task,)
        return [dict(zip(COLUMN_NAMES, r)) for r in self._conn.execute(sql + " ORDER BY rowid", args)]
