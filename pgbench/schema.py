"""The one declaration of a stored case's row: every column, its type and what it takes part in.

What: :data:`CASE_COLUMNS` lists the ``cases`` table's columns in export order,
each a :class:`Column` saying its SQLite type, whether its value is hashed into
the case id (and from which :class:`~pgbench.case.Case` field), whether it pairs
cases run on the same data and settings (the report's paired differences),
whether it matches a case of one store to the same case of another (``compare``,
when ids differ) and whether it holds JSON text.

Why: the store's columns, the case id's fields, the report's pairing fields and
the export's types were written by hand in several places and drifted (``tol``
was part of the case id but had no column, so two cases differing only in
``tol`` looked identical in the report).  Everything below is derived:

* :data:`COLUMNS`, :data:`COLUMN_NAMES`, :data:`JSON_COLUMNS`: the store's
  (:mod:`pgbench.store`) and the export's (:mod:`pgbench.export`) tables;
* :data:`ID_FIELDS`: the :class:`~pgbench.case.Case` fields hashed into a case id
  (``n_iter`` is stored as ``n_iter_max``, the column ``n_iter`` being the
  iterations run; ``max_points_per_centroid`` is hashed only when set, so cases
  without it kept their ids when it was added);
* :data:`PAIR_FIELDS`: the columns that say "the same data and settings", everything
  but the method (:mod:`pgbench.report.stats`);
* :data:`MATCH_FIELDS`: the fallback key ``compare`` pairs the same case of two
  stores by (:mod:`pgbench.report.compare`).

``backend`` is hashed as the suite asked for it (``None``: the engine's choice for
the device) while its column stores the backend that ran; the engine's choice is a
function of the other id fields, so the column still tells cases apart.  It is not a
pairing field: a method may choose its own backend (the paper suite runs fairseq on
``direct``), which changes how distances are computed, not the data.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CASE_COLUMNS", "COLUMNS", "COLUMN_NAMES", "Column", "DEFAULT_PRIMARY_METRIC", "ID_FIELDS",
           "JSON_COLUMNS", "MATCH_FIELDS", "OPTIONAL_ID_FIELDS", "PAIR_FIELDS", "PRIMARY_METRICS"]


@dataclass(frozen=True)
class Column:
    """One ``cases`` column.

    sql : the SQLite declaration (``TEXT``, ``INTEGER``, ``REAL``, optionally ``NOT NULL`` /
        ``PRIMARY KEY``); its first word is the type the export uses.
    case_field : the :class:`~pgbench.case.Case` field hashed into the id for this column,
        or None when the column is not part of the id.
    optional_id : the field is hashed only when it is not None.
    pairs : part of the key pairing cases of different methods on the same data and settings.
    match : part of the key matching one case across two stores when case ids differ.
    json : ``"object"`` or ``"list<int>"`` for a column holding JSON text, else None.
    """

    name: str
    sql: str
    case_field: str | None = None
    optional_id: bool = False
    pairs: bool = False
    match: bool = False
    json: str | None = None

    @property
    def type(self) -> str:
        return self.sql.split()[0]


def _id(name: str, sql: str, field: str | None = None, **kw) -> Column:
    return Column(name, sql, case_field=field or name, **kw)


#: every ``cases`` column, in export order (new columns go at the end: older stores gain them by ALTER TABLE)
CASE_COLUMNS: tuple[Column, ...] = (
    _id("suite", "TEXT NOT NULL", pairs=True), Column("case_id", "TEXT PRIMARY KEY"),
    Column("method", "TEXT", match=True),
    _id("source", "TEXT", pairs=True), _id("source_params", "TEXT", pairs=True, json="object"),
    _id("dataset", "TEXT", pairs=True, match=True), Column("layer", "TEXT"), Column("layer_type", "TEXT"),
    Column("n", "INTEGER"), Column("d", "INTEGER"), _id("k", "INTEGER", pairs=True),
    _id("init", "TEXT"), _id("resolve", "TEXT"), _id("consolidate", "TEXT"), _id("params", "TEXT", json="object"),
    _id("seed", "INTEGER", pairs=True, match=True), _id("data_seed", "INTEGER", pairs=True),
    _id("device", "TEXT", pairs=True), _id("backend", "TEXT"), _id("dtype", "TEXT", pairs=True),
    Column("threads", "INTEGER"), Column("versions", "TEXT", json="object"), Column("git_commit", "TEXT"),
    Column("status", "TEXT NOT NULL"), Column("error", "TEXT"),
    Column("n_empty_initial", "INTEGER"), Column("n_empty_per_iter", "TEXT", json="list<int>"),
    Column("n_empty_assigned_per_iter", "TEXT", json="list<int>"),
    Column("n_empty_final", "INTEGER"), Column("n_empty_last_assignment", "INTEGER"),
    Column("rounds_total", "INTEGER"), Column("rounds_per_iter", "TEXT", json="list<int>"),
    Column("resolve_distance_evals", "INTEGER"), Column("resolve_assign_passes", "INTEGER"),
    Column("n_iter", "INTEGER"), _id("n_iter_max", "INTEGER", "n_iter", pairs=True),
    _id("max_points_per_centroid", "INTEGER", optional_id=True),
    Column("n_train", "INTEGER"), Column("n_points", "INTEGER"), Column("n_consolidated_points", "INTEGER"),
    Column("n_groups", "INTEGER"), Column("eps_final", "REAL"),
    Column("seconds_total", "REAL"), Column("seconds_assign", "REAL"), Column("seconds_resolve", "REAL"),
    Column("seconds_update", "REAL"), Column("seconds_init", "REAL"), Column("seconds_consolidate", "REAL"),
    Column("inertia", "REAL"), Column("rel_error", "REAL"), Column("size_min", "INTEGER"),
    Column("size_max", "INTEGER"), Column("size_cv", "REAL"), Column("centroid_index", "INTEGER"),
    Column("timeout", "REAL"), Column("host", "TEXT"), Column("created_at", "TEXT"),
    # schema 2: the id's tol, and timing repeats (seconds_* above are the fastest repeat's)
    _id("tol", "REAL", pairs=True), Column("repeats", "INTEGER"),
    Column("seconds_spread", "REAL"), Column("seconds_assign_spread", "REAL"),
    Column("seconds_resolve_spread", "REAL"),
    # schema 3: the suite's primary metric, which the report's verdict leads with
    Column("primary_metric", "TEXT"),
    # schema 4: cases that compute the same thing share one run (pgbench.reuse)
    Column("work_key", "TEXT"), Column("reused_from", "TEXT"),
)

#: the metrics a suite may name as its primary one (``[suite] primary_metric``): the per-run ratio to the
#: best method on the same data (block) of the inertia, or of the relative error (when the data has ground truth)
PRIMARY_METRICS: tuple[str, ...] = ("inertia_ratio", "rel_error_ratio")
DEFAULT_PRIMARY_METRIC = PRIMARY_METRICS[0]

#: (name, SQLite declaration) of every ``cases`` column, in export order
COLUMNS: tuple[tuple[str, str], ...] = tuple((c.name, c.sql) for c in CASE_COLUMNS)
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in CASE_COLUMNS)
#: the columns holding JSON text, and what the JSON is: "object" (keys vary by heuristic or source) or
#: "list<int>" (one count per iteration); pgbench.export derives Parquet types from it
JSON_COLUMNS: dict[str, str] = {c.name: c.json for c in CASE_COLUMNS if c.json}
#: the Case fields hashed into a case id (pgbench.case), always
ID_FIELDS: tuple[str, ...] = tuple(c.case_field for c in CASE_COLUMNS if c.case_field and not c.optional_id)
#: the Case fields hashed into a case id only when set
OPTIONAL_ID_FIELDS: tuple[str, ...] = tuple(c.case_field for c in CASE_COLUMNS if c.case_field and c.optional_id)
#: the columns that say "the same data and settings": everything but the method
PAIR_FIELDS: tuple[str, ...] = tuple(c.name for c in CASE_COLUMNS if c.pairs)
#: the columns that match the same case across two stores whose case ids differ
MATCH_FIELDS: tuple[str, ...] = tuple(c.name for c in CASE_COLUMNS if c.match)
