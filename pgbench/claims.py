"""Claims: concurrent runs on one results folder share the work; each case is computed once while its owner lives.

A run hands its cases to an executor through a queue (:class:`CaseQueue`): before a
case starts, the queue claims it for this process, whose owner id is
``host:pid:token``.  A claim comes back *claimed* (ours now), *done* (its result is
stored: drop it) or *busy* (another live owner holds it).  An owner keeps its claims
alive with a heartbeat thread; a claim whose heartbeat is older than the lease, or
whose owner is a dead process on this host, is taken over.

:class:`StoreQueue`, processes on one machine
    a ``leases`` row (case_id, owner, heartbeat) in the store's SQLite file, claimed
    in one ``BEGIN IMMEDIATE`` transaction that first looks for the case in the
    ``cases`` table.  Busy cases are waited for: when their owner stores them they
    are done; when it dies they are taken over (after :data:`STORE_LEASE_S`, or at
    once for a dead process on this host).  So N processes split the work and each
    of them ends with every case stored.
:class:`SpoolQueue`, batch tasks on other nodes (SLURM)
    these never open SQLite (its locking is not reliable over a network file
    system); they claim through files in ``RESULTS/spool/claims/``, created with
    ``O_CREAT | O_EXCL`` (atomic on local file systems and NFSv3+):
    ``<case_id>.<generation>`` holds the owner and its mtime is the heartbeat; a
    stale claim is taken over by creating the next generation, again exclusively,
    so exactly one taker wins; ``<case_id>.done`` says the result is in the spool or
    the store.  A task does not wait for cases another task holds.  The submitting
    run calls :func:`reopen_spool_claims` first, which removes a ``done`` marker
    whose result is in neither the store nor the spool (forgotten by ``--retry``, or
    lost), so that case runs again.

A process killed while holding a claim leaves it behind; the others, or the next
run, take it over.  Leases are longer than several heartbeats, and on a network
file system longer than its attribute caching and the nodes' clock skew.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .case import Case
from .store import SPOOL, SQLiteFile

log = logging.getLogger(__name__)

CLAIMED, DONE, BUSY = "claimed", "done", "busy"
STORE_LEASE_S, STORE_BEAT_S = 60.0, 5.0      # one machine: SQLite leases
SPOOL_LEASE_S, SPOOL_BEAT_S = 300.0, 30.0    # batch nodes: claim files on a shared file system
LEASES = (("case_id", "TEXT PRIMARY KEY"), ("owner", "TEXT NOT NULL"), ("heartbeat", "REAL NOT NULL"))


def new_owner() -> str:
    """A fresh owner id, ``host:pid:token`` (the token tells apart two queues of one process)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_is_dead(owner: str) -> bool:
    """True only for an owner on this host whose process is gone (elsewhere: only the lease can tell)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


class CaseQueue:
    """Cases handed out one at a time; this base class claims nothing (one process owns them all).

    ``take(prefer)`` returns the next case this process now owns, preferring one with
    data key ``prefer`` (a worker that has that data loaded), or None when nothing
    can be had now; ``len(queue)`` counts the cases still worth waiting for (the
    executor polls again after ``poll_s``).
    """

    poll_s = 1.0
    wait_for_others = True

    def __init__(self, cases: Iterable[Case]):
        self.cases = list(cases)
        self._pending: dict[str, Case] = {c.case_id: c for c in self.cases}
        self._retry_at: dict[str, float] = {}          # busy cases: when to ask again

    def __len__(self) -> int:
        return len(self._pending)

    def _claim(self, case_id: str) -> str:
        return CLAIMED

    def _ordered(self, prefer: tuple | None) -> Iterable[Case]:
        first = next(iter(self._pending.values()), None)
        if prefer is not None and first is not None and first.data_key != prefer:
            yield from (c for c in list(self._pending.values()) if c.data_key == prefer)
        yield from list(self._pending.values())

    def take(self, prefer: tuple | None = None) -> Case | None:
        now = time.monotonic()
        for case in self._ordered(prefer):
            if case.case_id not in self._pending or self._retry_at.get(case.case_id, 0.0) > now:
                continue
            state = self._claim(case.case_id)
            if state == BUSY and self.wait_for_others:
                self._retry_at[case.case_id] = now + self.poll_s
                continue
            del self._pending[case.case_id]
            self._retry_at.pop(case.case_id, None)
            if state == CLAIMED:
                return case
            log.info("case %s: %s elsewhere", case.case_id[:12], "stored" if state == DONE else "running")
        return None

    def finish(self, case_id: str) -> None:
        """The case's result is stored (or spooled): release its claim."""

    def close(self) -> None:
        """Release every claim still held (the run is over or interrupted)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Heartbeat(threading.Thread):
    """Calls ``make()()`` every ``every_s`` seconds in its own thread (``make`` runs in the thread)."""

    def __init__(self, make: Callable[[], Callable[[], None]], every_s: float):
        super().__init__(name="pgbench-heartbeat", daemon=True)
        self._make, self._every, self._halt = make, every_s, threading.Event()

    def run(self) -> None:
        try:
            beat = self._make()
            while not self._halt.wait(self._every):
                beat()
        except Exception as exc:  # noqa: BLE001 - a lost heartbeat only shortens the lease; say so
            log.warning("claim heartbeat stopped: %s", exc)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


# ------------------------------------------------------------------------ SQLite

class LeaseTable(SQLiteFile):
    """The ``leases`` table of a result store (the ``cases`` table must exist).

    Leases need no durability (one lost in a power cut is one case computed twice),
    so this connection commits without fsync (``synchronous = NORMAL`` in WAL mode).
    A lease of a stored case is moot: :meth:`claim` looks at ``cases`` first.
    """

    def __init__(self, results: str | Path):
        super().__init__(results)
        self._conn.execute("PRAGMA synchronous = NORMAL")
        with self._transaction():
            self._ensure_table("leases", LEASES)
            self._conn.execute("DELETE FROM leases WHERE case_id IN (SELECT case_id FROM cases)")

    def claim(self, case_id: str, owner: str, lease_s: float) -> str:
        with self._transaction():
            if self._conn.execute("SELECT 1 FROM cases WHERE case_id = ?", (case_id,)).fetchone():
                return DONE
            row = self._conn.execute("SELECT owner, heartbeat FROM leases WHERE case_id = ?", (case_id,)).fetchone()
            now = time.time()
            if row is not None and row[0] != owner:
                if now - row[1] <= lease_s and not owner_is_dead(row[0]):
                    return BUSY
                log.info("case %s: taking over the claim of %s", case_id[:12], row[0])
            self._conn.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (case_id, owner, now))
        return CLAIMED

    def beat(self, owner: str) -> None:
        with self._transaction():
            self._conn.execute("UPDATE leases SET heartbeat = ? WHERE owner = ?", (time.time(), owner))

    def release(self, owner: str, case_id: str | None = None) -> None:
        with self._transaction():
            if case_id is None:
                self._conn.execute("DELETE FROM leases WHERE owner = ?", (owner,))
            else:
                self._conn.execute("DELETE FROM leases WHERE owner = ? AND case_id = ?", (owner, case_id))


class StoreQueue(CaseQueue):
    """Claims through lease rows in the store at ``results`` (processes on one machine)."""

    def __init__(self, cases: Sequence[Case], results: str | Path, lease_s: float = STORE_LEASE_S,
                 beat_s: float = STORE_BEAT_S):
        super().__init__(cases)
        self.owner, self.lease_s, self.beat_s = new_owner(), lease_s, beat_s
        self.poll_s = min(1.0, beat_s)
        self._leases = LeaseTable(results)
        self._heart = _Heartbeat(lambda: self._beater(results), beat_s)
        self._heart.start()

    def _beater(self, results: str | Path) -> Callable[[], None]:
        table = LeaseTable(results)          # its own connection, made in the heartbeat thread
        return lambda: table.beat(self.owner)

    def _claim(self, case_id: str) -> str:
        return self._leases.claim(case_id, self.owner, self.lease_s)

    def finish(self, case_id: str) -> None:
        """Nothing: the stored row already tells every claimant; :meth:`close` drops our leases."""

    def close(self) -> None:
        if self._leases is None:
            return
        self._heart.stop()
        leases, self._leases = self._leases, None
        try:
            leases.release(self.owner)
        finally:
            leases.close()


# ------------------------------------------------------------------------- spool

def claims_dir(results: str | Path) -> Path:
    return Path(results) / SPOOL / "claims"


class SpoolClaims:
    """Claim files for batch tasks (see the module docstring); one instance per owner."""

    def __init__(self, results: str | Path, owner: str | None = None, lease_s: float = SPOOL_LEASE_S):
        self.dir = claims_dir(results)
        self.owner, self.lease_s = owner or new_owner(), lease_s
        self.held: dict[str, Path] = {}                     # case_id -> our claim file
        self._lock = threading.Lock()                       # held is read by the heartbeat thread

    def _done(self, case_id: str) -> Path:
        return self.dir / f"{case_id}.done"

    def _generations(self, case_id: str) -> int:
        """The newest existing claim generation, -1 when none."""
        g = -1
        while (self.dir / f"{case_id}.{g + 1}").exists():
            g += 1
        return g

    def claim(self, case_id: str) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self._done(case_id).exists():
            return DONE
        top = self._generations(case_id)
        if top >= 0:
            current = self.dir / f"{case_id}.{top}"
            try:
                age = time.time() - current.stat().st_mtime
                holder = current.read_text(encoding="utf-8").strip()
            except FileNotFoundError:             # finished (or cleaned) between two looks
                return DONE if self._done(case_id).exists() else BUSY
            if holder != self.owner and age <= self.lease_s and not owner_is_dead(holder):
                return BUSY
        path = self.dir / f"{case_id}.{top + 1}"
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:                   # another owner claimed or took over first
            return BUSY
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(self.owner + "\n")
        if self._done(case_id).exists():          # its owner finished while we looked: give it back
            path.unlink(missing_ok=True)
            return DONE
        if top >= 0:
            log.info("case %s: taking over a stale claim (generation %d)", case_id[:12], top)
        with self._lock:
            self.held[case_id] = path
        return CLAIMED

    def beat(self) -> None:
        with self._lock:
            paths = list(self.held.values())
        for path in paths:
            try:
                os.utime(path)
            except FileNotFoundError:
                pass

    def finish(self, case_id: str) -> None:
        """Mark the case done (its result is spooled) and drop every claim file of it."""
        self._done(case_id).touch()
        with self._lock:
            self.held.pop(case_id, None)
        for g in range(self._generations(case_id) + 1):
            (self.dir / f"{case_id}.{g}").unlink(missing_ok=True)

    def release_all(self) -> None:
        """Give back every claim not finished (an interrupted task), so others need not wait for the lease."""
        with self._lock:
            held, self.held = self.held, {}
        for path in held.values():
            path.unlink(missing_ok=True)


class SpoolQueue(CaseQueue):
    """Claims through claim files (batch tasks); busy cases are left to their owners, not waited for."""

    wait_for_others = False

    def __init__(self, cases: Sequence[Case], results: str | Path, lease_s: float = SPOOL_LEASE_S,
                 beat_s: float = SPOOL_BEAT_S):
        super().__init__(cases)
        self.claims = SpoolClaims(results, lease_s=lease_s)
        self._heart = _Heartbeat(lambda: self.claims.beat, beat_s)
        self._heart.start()

    def _claim(self, case_id: str) -> str:
        return self.claims.claim(case_id)

    def finish(self, case_id: str) -> None:
        self.claims.finish(case_id)

    def close(self) -> None:
        self._heart.stop()
        self.claims.release_all()


def reopen_spool_claims(results: str | Path, case_ids: Iterable[str], stored: Callable[[str], bool]) -> int:
    """Remove the ``done`` markers (and claim files) of cases whose result is neither stored nor spooled.

    The submitting run calls this for the cases it is about to hand to batch tasks;
    ``stored(case_id)`` asks the store.  The result file is deleted only after its row
    is committed, so at every moment a finished case has one or the other.
    """
    folder, spool = claims_dir(results), Path(results) / SPOOL
    if not folder.is_dir():
        return 0
    reopened = 0
    for case_id in case_ids:
        done = folder / f"{case_id}.done"
        if done.exists() and not (spool / f"{case_id}.json").exists() and not stored(case_id):
            done.unlink(missing_ok=True)
            for stale in folder.glob(f"{case_id}.[0-9]*"):
                stale.unlink(missing_ok=True)
            reopened += 1
    return reopened
