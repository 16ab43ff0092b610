"""Helpers for tests that run ``python -m pgbench`` as a real process (signals, concurrency)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def _default_sigint() -> None:
    """A shell that starts a job in the background hands it SIGINT ignored, and an ignored
    disposition survives exec: give the child Python's usual Ctrl-C (KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(args: list[str], env: dict[str, str] | None = None, new_session: bool = False,
          stdout: int = subprocess.PIPE) -> subprocess.Popen:
    """``python -m pgbench ARGS`` in the checkout, output piped (text), SIGINT at its default."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "pgbench", *args], cwd=ROOT, env=full_env, text=True,
                            stdout=stdout, stderr=subprocess.PIPE, preexec_fn=_default_sigint,
                            start_new_session=new_session)


def rows_in(db: Path) -> int:
    """Rows of the ``cases`` table (0 while the store does not exist yet)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
    except sqlite3.OperationalError:      # not created yet
        return 0


def wait_until(predicate, timeout_s: float = 120, what: str = "") -> None:
    """Poll ``predicate`` every 20 ms; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
