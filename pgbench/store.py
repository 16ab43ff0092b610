"""The result store: one SQLite file, one row per finished case, safe under crashes and concurrency.

``RESULTS_DIR/results.sqlite`` holds a ``cases`` table (one row per case, the
columns in :data:`COLUMNS`) and a ``trace`` table (one row per Lloyd iteration
of a case: ``case_id, iteration`` plus the fields of
:class:`~pgbench.result.IterationStats`).  The database runs in WAL mode with a
busy timeout; each finished case is one ``BEGIN IMMEDIATE`` transaction that
inserts its row with ``INSERT OR IGNORE`` on the ``case_id`` primary key and,
only when that row was new, its trace.  So a process killed at any point leaves
either the whole case or nothing, several processes on one machine can write at
once, and a case written twice is stored once.

SQLite's WAL needs every writer on the same host, so batch jobs on other machines
(SLURM) never open the database: each writes one JSON file per finished case into
``RESULTS_DIR/spool/`` (written to a temporary name, then renamed), and the
process that owns the store reads those in with :meth:`Store.ingest_spool`.

A store written by an older pgbench (a lower :data:`SCHEMA_VERSION`) is migrated
when opened for writing: its tables gain the columns declared since
(``ALTER TABLE ADD COLUMN``, empty in the rows already there) and its version is
raised.  Opened read-only it is read as it is, the missing columns as None.  The
``cases`` columns are declared once, in :mod:`pgbench.schema`.

Commands that only read (``export``, ``report``, ``compare``) open the store with
``readonly=True``: SQLite's read-only mode, no schema written, spooled cases read
beside the stored ones but left in the spool.  Opening refuses, in one line naming
the file, what is not a pgbench store: not a database, a ``cases`` (or ``trace``)
table whose primary key is not pgbench's (a foreign table would otherwise gain
columns and then store the same case twice), a store written by a newer pgbench,
or a folder where the store cannot be written.

JSON columns (``source_params``, ``params``, ``versions``, ``n_empty_per_iter``,
``n_empty_assigned_per_iter``, ``rounds_per_iter``) hold JSON text; :meth:`Store.add`
takes them as Python objects.  :mod:`pgbench.export` writes the tables as CSV or Parquet.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from . import schema
from .paths import writable_dir
from .spool import SPOOL, read_spool, write_spool   # noqa: F401 - part of the store's API

log = logging.getLogger(__name__)

DB_NAME = "results.sqlite"
SCHEMA_VERSION = 4   # 2: columns tol, repeats, seconds_*spread; 3: primary_metric, table skipped_sources;
#                      4: work_key, reused_from

#: the ``cases`` table, declared once in pgbench.schema (names, SQLite types, JSON columns)
COLUMNS = schema.COLUMNS
COLUMN_NAMES = schema.COLUMN_NAMES
JSON_COLUMNS = schema.JSON_COLUMNS
TRACE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("case_id", "TEXT NOT NULL"), ("iteration", "INTEGER NOT NULL"), ("n_empty_assigned", "INTEGER"),
    ("n_empty_resolved", "INTEGER"), ("n_resolved", "INTEGER"), ("rounds", "INTEGER"),
    ("gave_up", "INTEGER"), ("seconds_assign", "REAL"), ("seconds_resolve", "REAL"),
    ("seconds_update", "REAL"), ("inertia", "REAL"), ("resolve_distance_evals", "INTEGER"),
    ("resolve_assign_passes", "INTEGER"),
)
TRACE_NAMES = tuple(name for name, _ in TRACE_COLUMNS)
TRACE_KEY = ("case_id", "iteration")
#: the optional sources a run of a suite left out, and why (the report's summary lists them)
SKIPPED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("suite", "TEXT NOT NULL"), ("label", "TEXT NOT NULL"), ("reason", "TEXT"), ("recorded_at", "TEXT"))
SKIPPED_KEY = ("suite", "label")


def db_path(results: str | Path) -> Path:
    """``results`` may be the results folder or the ``.sqlite`` file itself."""
    results = Path(results)
    return results if results.suffix == ".sqlite" else results / DB_NAME


def connect_readonly(path: Path, timeout_s: float = 120.0) -> sqlite3.Connection:
    """SQLite's read-only mode; ``immutable`` where that cannot start (a WAL store in a read-only folder
    that has no -shm file: nobody can be writing there)."""
    uri = path.resolve().as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=timeout_s, isolation_level=None)
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        if writable_dir(path.parent) is None:
            raise
        return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, timeout=timeout_s, isolation_level=None)


class SQLiteFile:
    """One SQLite file opened for concurrent, crash-safe writers (WAL, busy timeout, FULL sync), or read-only.

    Shared by :class:`Store` (``cases``, ``trace``) and the downstream table of
    :mod:`pgbench.glue.results`, which live in the same file.  Every failure to
    open is a ValueError naming the file and the reason.
    """

    def __init__(self, results: str | Path, busy_timeout_s: float = 120.0, create: bool = True,
                 readonly: bool = False):
        self.path = db_path(results)
        self.dir = self.path.parent
        self.readonly = readonly
        if (readonly or not create) and not self.path.is_file():
            raise ValueError(f"{self.path}: no result store here.")
        why = None if readonly else writable_dir(self.dir)
        if why is None and not readonly and self.path.exists() and not os.access(self.path, os.W_OK):
            why = f"{self.path} is read-only"
        if why:
            raise ValueError(f"{self.path}: cannot write the result store ({why}).")
        self._conn: sqlite3.Connection | None = None
        try:
            if readonly:
                self._conn = connect_readonly(self.path, busy_timeout_s)
            else:
                self.dir.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None)
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()   # reads the header
            self._check_schema()                 # before anything is written (WAL mode changes the header)
            if not readonly:
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = FULL")
        except BaseException as exc:
            if self._conn is not None:
                self._conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise ValueError(f"{self.path}: not a usable SQLite result store ({exc}).") from None
            if isinstance(exc, OSError):
                raise ValueError(f"{self.path}: cannot open the result store ({exc.strerror or exc}).") from None
            raise

    def _check_schema(self) -> None:
        """Refuse (ValueError) a file whose tables this class must not write into; nothing written yet."""

    def _check_table(self, table: str, primary_key: tuple[str, ...]) -> bool:
        """False when ``table`` is missing; ValueError when its primary key is not ``primary_key``."""
        info = list(self._conn.execute(f"PRAGMA table_info({table})"))
        if not info:
            return False
        have = tuple(row[1] for row in sorted(info, key=lambda r: r[5]) if row[5])
        if have != primary_key:
            raise ValueError(f"{self.path}: its '{table}' table was not written by pgbench (primary key "
                             f"{', '.join(have) or 'none'}, expected {', '.join(primary_key)}); "
                             "use another results folder.")
        return True

    def _ensure_table(self, table: str, columns: tuple[tuple[str, str], ...], suffix: str = "",
                      primary_key: tuple[str, ...] | None = None) -> None:
        """Create ``table`` if missing; a table written by an older pgbench gains the new columns.

        ``primary_key`` defaults to the columns declared ``PRIMARY KEY``; a composite
        one given here becomes a table constraint.  An existing table with another
        primary key is refused.  ``suffix`` goes after the column list (``" WITHOUT
        ROWID"``).  Call inside :meth:`_transaction`.
        """
        declared = tuple(n for n, t in columns if "PRIMARY KEY" in t)
        key = primary_key or declared
        if not self._check_table(table, key):
            cols = ", ".join(f"{n} {t}" for n, t in columns)
            constraint = f", PRIMARY KEY ({', '.join(key)})" if key and not declared else ""
            self._conn.execute(f"CREATE TABLE {table} ({cols}{constraint}){suffix}")
        have = {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}
        for name, sql_type in columns:
            if name not in have:
                self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type.split()[0]}")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")   # takes the write lock now (waits up to the busy timeout)
        try:
            yield
        except BaseException:
            if self._conn.in_transaction:       # (a Ctrl-C can land before BEGIN took effect)
                self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Store(SQLiteFile):
    """An open result store: created (folder and tables) if needed, or ``readonly`` (see the module docstring)."""

    def __init__(self, results: str | Path, busy_timeout_s: float = 120.0, create: bool = True,
                 readonly: bool = False):
        super().__init__(results, busy_timeout_s, create, readonly)
        self._spooled: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        try:
            if not readonly:
                self._create()
            #: the declared columns this file has (an older store opened read-only lacks the newer ones)
            self._have = tuple(n for n in COLUMN_NAMES if n in self._columns("cases"))
            if readonly:
                self._read_spool()
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- schema
    def _check_schema(self) -> None:
        has_cases = self._check_table("cases", ("case_id",))
        self._check_table("trace", TRACE_KEY)
        version = None
        if self._check_table("meta", ("key",)):
            found = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = found[0] if found else None
        if has_cases and version is None:
            raise ValueError(f"{self.path}: its 'cases' table was not written by pgbench (no schema version); "
                             "use another results folder.")
        if version is not None and (not str(version).isdigit() or int(version) > SCHEMA_VERSION):
            raise ValueError(f"{self.path}: written by a newer pgbench (schema {version}; this one reads "
                             f"{SCHEMA_VERSION}).")
        if self.readonly and not has_cases:
            raise ValueError(f"{self.path}: not a pgbench result store (no 'cases' table).")

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}

    def _create(self) -> None:
        with self._transaction():
            self._ensure_table("cases", COLUMNS)
            self._ensure_table("trace", TRACE_COLUMNS, " WITHOUT ROWID", TRACE_KEY)
            self._ensure_table("skipped_sources", SKIPPED_COLUMNS, primary_key=SKIPPED_KEY)
            self._conn.execute("CREATE INDEX IF NOT EXISTS cases_suite ON cases (suite, status)")
            self._conn.execute("CREATE INDEX IF NOT EXISTS cases_work ON cases (work_key)")
            self._conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _read_spool(self) -> None:
        """Read-only: spooled cases not in the database yet, as :meth:`rows` returns them (JSON as text)."""
        for _, row, trace in read_spool(self.dir, rename_bad=False):
            if row.get("case_id") and not self.has(row["case_id"]):
                self._spooled[row["case_id"]] = ({n: _db_value(n, row.get(n)) for n in COLUMN_NAMES}, trace)

    # ---------------------------------------------------------------- writes
    def add(self, row: dict[str, Any], trace: Iterable[dict[str, Any]] = ()) -> bool:
        """Store one finished case atomically; False when its case_id was already stored."""
        unknown = sorted(set(row) - set(COLUMN_NAMES))
        if unknown:
            raise ValueError(f"result row has unknown column(s): {', '.join(unknown)}.")
        values = [_db_value(n, row.get(n)) for n in COLUMN_NAMES]
        marks = ", ".join("?" * len(COLUMN_NAMES))
        with self._transaction():
            cur = self._conn.execute(f"INSERT OR IGNORE INTO cases ({', '.join(COLUMN_NAMES)}) VALUES ({marks})",
                                     values)
            inserted = cur.rowcount == 1
            if inserted:
                trace_marks = ", ".join("?" * len(TRACE_NAMES))
                self._conn.executemany(
                    f"INSERT OR IGNORE INTO trace ({', '.join(TRACE_NAMES)}) VALUES ({trace_marks})",
                    [[row["case_id"]] + [_plain(t.get(n)) for n in TRACE_NAMES[1:]] for t in trace])
        return inserted

    def copy_case(self, from_id: str, values: dict[str, Any]) -> bool:
        """Store a copy of stored case ``from_id``, row and trace, with ``values`` replacing some columns.

        ``values`` must hold the copy's ``case_id`` (:mod:`pgbench.reuse`).  One
        transaction; False when that id is already stored or ``from_id`` is not.
        """
        unknown = sorted(set(values) - set(COLUMN_NAMES))
        if unknown or "case_id" not in values:
            raise ValueError(f"copy_case: bad column(s) {', '.join(unknown) or 'case_id missing'}.")
        select = ", ".join("?" if n in values else n for n in COLUMN_NAMES)
        args = [_db_value(n, values[n]) for n in COLUMN_NAMES if n in values]
        with self._transaction():
            cur = self._conn.execute(f"INSERT OR IGNORE INTO cases ({', '.join(COLUMN_NAMES)}) "
                                     f"SELECT {select} FROM cases WHERE case_id = ?", [*args, from_id])
            inserted = cur.rowcount == 1
            if inserted:
                self._conn.execute(f"INSERT OR IGNORE INTO trace ({', '.join(TRACE_NAMES)}) "
                                   f"SELECT ?, {', '.join(TRACE_NAMES[1:])} FROM trace WHERE case_id = ?",
                                   (values["case_id"], from_id))
        return inserted

    def record_skipped(self, suite: str, skipped: Iterable[tuple[str, str]]) -> None:
        """Record the optional sources the latest run of ``suite`` left out, as (label, reason) pairs.

        Replaces what an earlier run recorded for ``suite``: a source whose data has
        appeared since is no longer listed.
        """
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._transaction():
            self._conn.execute("DELETE FROM skipped_sources WHERE suite = ?", (suite,))
            self._conn.executemany("INSERT OR REPLACE INTO skipped_sources VALUES (?, ?, ?, ?)",
                                   [(suite, label, reason, now) for label, reason in skipped])

    def skipped_sources(self, suite: str | None = None) -> list[dict[str, Any]] | None:
        """The recorded skipped sources (dicts of :data:`SKIPPED_COLUMNS`), or None for a store written
        before they were recorded (schema < 3)."""
        if not self._check_table("skipped_sources", SKIPPED_KEY):
            return None
        names = [n for n, _ in SKIPPED_COLUMNS]
        where, args = ("WHERE suite = ?", (suite,)) if suite is not None else ("", ())
        cur = self._conn.execute(f"SELECT {', '.join(names)} FROM skipped_sources {where} ORDER BY suite, label",
                                 args)
        return [dict(zip(names, r)) for r in cur]

    def ingest_spool(self) -> int:
        """Move every spooled case into the database; returns how many were new."""
        new = 0
        for path, row, trace in read_spool(self.dir):
            new += self.add(row, trace)
            path.unlink(missing_ok=True)
        return new

    def forget(self, case_ids: Iterable[str], statuses: Iterable[str]) -> int:
        """Delete the stored cases among ``case_ids`` whose status is in ``statuses`` (to re-run them)."""
        wanted, statuses = set(case_ids), tuple(statuses)
        if not statuses:
            return 0
        marks = ", ".join("?" * len(statuses))
        with self._transaction():
            doomed = [cid for (cid,) in self._conn.execute(f"SELECT case_id FROM cases WHERE status IN ({marks})",
                                                            statuses) if cid in wanted]
            self._conn.executemany("DELETE FROM trace WHERE case_id = ?", [(c,) for c in doomed])
            self._conn.executemany("DELETE FROM cases WHERE case_id = ?", [(c,) for c in doomed])
        return len(doomed)

    # ----------------------------------------------------------------- reads
    def done_ids(self, suite: str | None = None) -> set[str]:
        sql, args = "SELECT case_id FROM cases", ()
        if suite is not None:
            sql, args = sql + " WHERE suite = ?", (suite,)
        return {r[0] for r in self._conn.execute(sql, args)}

    def computed(self, work_keys: Iterable[str], except_status: Iterable[str] = ()) -> dict[str, tuple[str, str]]:
        """``{work key: (case id, status)}`` of stored cases that ran (not copies) for any of ``work_keys``,
        leaving out those with a status in ``except_status`` (the statuses a run retries)."""
        wanted, skip, found = set(work_keys), set(except_status), {}
        for key, case_id, status in self._conn.execute(
                "SELECT work_key, case_id, status FROM cases WHERE work_key IS NOT NULL AND reused_from IS NULL "
                "ORDER BY rowid"):
            if key in wanted and status not in skip:
                found.setdefault(key, (case_id, status))
        return found

    def has(self, case_id: str) -> bool:
        return self._conn.execute("SELECT 1 FROM cases WHERE case_id = ?", (case_id,)).fetchone() is not None

    def status_counts(self, case_ids: Iterable[str]) -> dict[str, int]:
        """Stored cases by status among ``case_ids``."""
        wanted = set(case_ids)
        counts: dict[str, int] = {}
        for case_id, status in self._conn.execute("SELECT case_id, status FROM cases"):
            if case_id in wanted:
                counts[status] = counts.get(status, 0) + 1
        return counts

    def rows(self, suite: str | None = None) -> list[dict[str, Any]]:
        """Every stored case as a dict (JSON columns as JSON text), in insertion order (read-only: then the
        spooled ones)."""
        sql, args = f"SELECT {', '.join(self._have)} FROM cases", ()
        if suite is not None:
            sql, args = sql + " WHERE suite = ?", (suite,)
        blank = dict.fromkeys(COLUMN_NAMES)   # columns an older store lacks read as None
        rows = [{**blank, **dict(zip(self._have, r))} for r in self._conn.execute(sql + " ORDER BY rowid", args)]
        return rows + [dict(r) for r, _ in self._spooled.values() if suite is None or r["suite"] == suite]

    def trace_rows(self, suite: str | None = None, keys: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Every stored iteration as a dict: the case columns ``keys``, then :data:`TRACE_NAMES`.

        Ordered by case (insertion order, spooled cases of a read-only store last), then
        iteration; ``suite`` keeps one suite's cases.
        """
        bad = [k for k in keys if k not in COLUMN_NAMES or k in TRACE_NAMES]
        if bad:
            raise ValueError(f"trace_rows: '{bad[0]}' is not a case column to add to the trace.")
        select = [f"c.{k}" if k in self._have else "NULL" for k in keys] + [f"t.{n}" for n in TRACE_NAMES]
        sql, args = f"SELECT {', '.join(select)} FROM trace t JOIN cases c ON c.case_id = t.case_id", ()
        if suite is not None:
            sql, args = sql + " WHERE c.suite = ?", (suite,)
        names = keys + TRACE_NAMES
        rows = [dict(zip(names, r)) for r in self._conn.execute(sql + " ORDER BY c.rowid, t.iteration", args)]
        for case_id, (row, _) in self._spooled.items():   # read-only: spooled cases after the stored ones
            if suite is None or row["suite"] == suite:
                rows += [{**{k: row[k] for k in keys}, **t} for t in self.trace(case_id)]
        return rows

    def table_rows(self, table: str) -> list[dict[str, Any]] | None:
        """Every row of another table of this file (e.g. the GLUE ``downstream`` table, JSON as text), in
        insertion order; None when the file has no such table."""
        found = self._conn.execute("SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?",
                                   (table,)).fetchone()
        if not found:
            return None
        cur = self._conn.execute(f'SELECT * FROM "{table}"')
        names = [c[0] for c in cur.description]
        return [dict(zip(names, r)) for r in cur]

    def trace(self, case_id: str) -> list[dict[str, Any]]:
        if case_id in self._spooled:
            return [{n: _plain(t.get(n)) if n != "case_id" else case_id for n in TRACE_NAMES}
                    for t in self._spooled[case_id][1]]
        cur = self._conn.execute(f"SELECT {', '.join(TRACE_NAMES)} FROM trace WHERE case_id = ? ORDER BY iteration",
                                 (case_id,))
        return [dict(zip(TRACE_NAMES, r)) for r in cur]


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def _db_value(column: str, value: Any) -> Any:
    """A row's value as the ``cases`` table holds it (JSON columns as JSON text)."""
    return json.dumps(value) if column in JSON_COLUMNS and value is not None else value
