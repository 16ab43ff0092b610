"""Export a result store as tables that pandas, polars, R or DuckDB load: cases and trace.

Two tables, each as CSV and/or Parquet (``python -m pgbench export``):

``cases``
    One row per case, the columns of :data:`pgbench.store.COLUMNS` in that order.
``trace``
    Long format, one row per case and Lloyd iteration: the case columns
    :data:`TRACE_KEYS` (to group and label without a join), then
    :data:`pgbench.store.TRACE_COLUMNS` (``case_id``, ``iteration`` and the
    per-iteration counts, seconds and inertia), ordered by case, then iteration.

Every column name and type derives from the store's declarations: a ``TEXT``
column is a string, ``INTEGER`` int64, ``REAL`` float64.  The store's JSON columns
(:data:`pgbench.store.JSON_COLUMNS`) are

* in CSV, the JSON text the store holds (a CSV cell has no nesting);
* in Parquet, real nested types: ``"list<int>"`` columns (the per-iteration counts)
  are ``list<int64>``; ``"object"`` columns (``params``, ``source_params``,
  ``versions``) are structs whose fields are the keys found in the exported rows,
  typed from their values (``params.resolve.max_passes`` is an int64 column).
  A row without a key has null there; an empty object (a heuristic without
  parameters) is null.  A field whose values differ in type across rows (a source
  parameter given as a string in one suite and a list in another) is a string
  holding JSON text for every row, marked with the field metadata
  ``{"encoding": "json"}``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterable

from . import store
from .extras import require

#: case columns repeated on every trace row, in this order (types from store.COLUMNS)
TRACE_KEYS = ("suite", "method", "source", "dataset", "layer_type", "init", "resolve", "consolidate", "k", "seed")
JSON_META = {b"encoding": b"json"}


def trace_columns() -> tuple[tuple[str, str], ...]:
    """(name, SQLite type) of the exported trace table: :data:`TRACE_KEYS`, then the store's trace columns."""
    sql_types = dict(store.COLUMNS)
    return tuple((k, sql_types[k]) for k in TRACE_KEYS) + store.TRACE_COLUMNS


def write_csv(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...], path: str | Path) -> None:
    """``rows`` as CSV with a header of the column names; JSON columns stay JSON text."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[name for name, _ in columns])
        writer.writeheader()
        writer.writerows(rows)


def write_parquet(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...], path: str | Path) -> None:
    """``rows`` as Parquet, JSON columns decoded into nested types (see the module docstring)."""
    require("parquet", "--parquet")
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields, data = [], {}
    for name, sql_type in columns:
        values = [r.get(name) for r in rows]
        kind = store.JSON_COLUMNS.get(name)
        if kind is not None:
            values = [None if v is None else json.loads(v) for v in values]
            field = _field(pa, name, values) if kind == "object" else pa.field(name, pa.list_(pa.int64()))
            values = [_conform(pa, v, field) for v in values]
        else:
            field = pa.field(name, {"TEXT": pa.string(), "INTEGER": pa.int64(),
                                    "REAL": pa.float64()}[sql_type.split()[0]])
        fields.append(field)
        data[name] = pa.array(values, type=field.type)
    pq.write_table(pa.Table.from_pydict(data, schema=pa.schema(fields)), path)


def _field(pa, name: str, values: Iterable[Any]):
    """An Arrow field for the decoded JSON ``values`` (None = missing); see the module docstring."""
    present = [v for v in values if v is not None]
    if not present:
        return pa.field(name, pa.null())
    if all(isinstance(v, dict) for v in present):
        keys = list(dict.fromkeys(k for v in present for k in v))
        if not keys:                      # Parquet has no struct without fields
            return pa.field(name, pa.null())
        return pa.field(name, pa.struct([_field(pa, k, [v.get(k) for v in present]) for k in keys]))
    if all(isinstance(v, list) for v in present):
        return pa.field(name, pa.list_(_field(pa, "item", [x for v in present for x in v])))
    kinds = {type(v) for v in present}
    if kinds == {bool}:
        return pa.field(name, pa.bool_())
    if kinds == {int}:
        return pa.field(name, pa.int64())
    if kinds <= {int, float}:
        return pa.field(name, pa.float64())
    if kinds == {str}:
        return pa.field(name, pa.string())
    return pa.field(name, pa.string(), metadata=JSON_META)


def _conform(pa, value: Any, field) -> Any:
    """``value`` shaped for ``field``: nested fields filled, mixed-type fields as JSON text."""
    if value is None or pa.types.is_null(field.type):
        return None
    if field.metadata == JSON_META:
        return json.dumps(value, sort_keys=True)
    if pa.types.is_struct(field.type):
        return {f.name: _conform(pa, value.get(f.name), f) for f in field.type}
    if pa.types.is_list(field.type):
        return [_conform(pa, x, field.type.value_field) for x in value]
    return value


def export(results: str | Path, suite: str | None = None, csv_path: str | Path | None = None,
           parquet_path: str | Path | None = None, trace_csv: str | Path | None = None,
           trace_parquet: str | Path | None = None) -> tuple[int, int]:
    """Write the store's cases and/or trace tables; returns (cases, trace rows) exported.

    ``results`` is a results folder or its ``results.sqlite``; ``suite`` keeps one
    suite's cases.  Only the tables with a path given are read and written; the
    store is opened read-only (cases a batch job spooled are read beside it).
    Raises ValueError when no store is there, or the ``parquet`` extra is missing
    for a Parquet path (checked before anything is written).
    """
    if parquet_path is not None or trace_parquet is not None:
        require("parquet", "--parquet / --trace-parquet")
    with store.Store(results, readonly=True) as st:   # spooled cases are read too, not moved in
        cases = st.rows(suite) if csv_path is not None or parquet_path is not None else []
        trace = st.trace_rows(suite, TRACE_KEYS) if trace_csv is not None or trace_parquet is not None else []
    for writer, rows, columns, path in ((write_csv, cases, store.COLUMNS, csv_path),
                                        (write_parquet, cases, store.COLUMNS, parquet_path),
                                        (write_csv, trace, trace_columns(), trace_csv),
                                        (write_parquet, trace, trace_columns(), trace_parquet)):
        if path is not None:
            writer(rows, columns, path)
    return len(cases), len(trace)
