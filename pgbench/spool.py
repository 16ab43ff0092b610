"""The spool: finished cases as one JSON file each, for writers that cannot reach the SQLite file.

What: :func:`write_spool` writes a case's row and trace as
``RESULTS/spool/<case_id>.json`` atomically (temporary file, fsync, rename);
:func:`read_spool` yields the complete ones.  Batch (SLURM) tasks and a store
opened read-only use it; :meth:`pgbench.store.Store.ingest_spool` moves spooled
cases into the database.

Why a file per case: a task killed mid-write leaves at most a temporary file,
never a half-written result, and no two writers share a file.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

SPOOL = "spool"


def write_spool(results_dir: str | Path, row: dict[str, Any], trace: list[dict[str, Any]]) -> Path:
    """Write one finished case as ``spool/<case_id>.json`` (temporary file, fsync, rename)."""
    folder = Path(results_dir) / SPOOL
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{row['case_id']}.json"
    tmp = folder / f".{row['case_id']}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"row": row, "trace": trace}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    return final


def read_spool(results_dir: str | Path,
               rename_bad: bool = True) -> Iterator[tuple[Path, dict[str, Any], list[dict[str, Any]]]]:
    """(path, row, trace) of every complete spool file; unreadable ones are renamed ``*.bad`` (or just skipped)."""
    folder = Path(results_dir) / SPOOL
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            yield path, data["row"], data["trace"]
        except FileNotFoundError:   # another process ingested it first
            continue
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s: unreadable spooled result (%s)%s", path, exc, "; renamed to .bad" if rename_bad else "")
            if rename_bad:
                path.replace(path.with_suffix(".bad"))

