"""``python -m pgbench`` and the ``pgbench`` script: run the CLI, then exit with its status whatever Ctrl-C hits.

Ctrl-C must end the process with status 130 wherever it lands, so that a script
doing ``pgbench run ... && pgbench report ...`` never goes on:

* while the CLI's modules import (torch takes seconds): caught here;
* while a command loads, runs or prints its summary: :func:`pgbench.cli.main`
  turns KeyboardInterrupt into 130;
* while the interpreter shuts down, where the exit handlers of multiprocessing
  and torch would swallow it (exit 0) or let the signal kill the process (-2):
  after main returns, :func:`entry` runs the exit handlers itself under a SIGINT
  handler that exits 130 at once, then ends with ``os._exit`` (the process has
  nothing left that a normal shutdown would save; Python's and C's stdout and
  stderr are flushed first).

A Ctrl-C that Python sees before this module runs (the first few milliseconds of
interpreter start-up) gets Python's own handling.  A process started with SIGINT
ignored (a background job of a non-interactive shell) keeps it ignored.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys

INTERRUPTED = 130            # 128 + SIGINT, what a shell reports for a job ended by Ctrl-C


def _flush() -> bool:
    """Flush stdout and stderr; False when stdout's reader has gone (a closed pipe)."""
    ok = True
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            ok = ok and stream is not sys.stdout
        except (OSError, ValueError):
            pass
    return ok


def _exit_now(signum: int, frame: object) -> None:
    _flush()
    os._exit(INTERRUPTED)


def _status(code: object) -> int:
    """A SystemExit code as an exit status (None: 0; a message: printed, 1), as Python does."""
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1


def entry() -> None:
    """Run ``pgbench.cli.main`` and exit the process with its status (130 after any Ctrl-C)."""
    interruptible = signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    hold = (signal.SIG_BLOCK, {signal.SIGINT})     # a Ctrl-C between the steps below waits, pending
    try:
        from pgbench.cli import main

        code = main()
        signal.pthread_sigmask(*hold)
    except KeyboardInterrupt:
        signal.pthread_sigmask(*hold)
        print("pgbench: interrupted", file=sys.stderr)
        code = INTERRUPTED
    except SystemExit as exc:                      # argparse: --help, --version, usage errors
        signal.pthread_sigmask(*hold)
        code = _status(exc.code)
    if interruptible:                              # from here on a Ctrl-C exits 130 at once,
        signal.signal(signal.SIGINT, _exit_now)    # even inside an exit handler
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if not _flush() and code == 0:
        code = 141                                 # stdout's reader left early (`pgbench list | head -1`)
    atexit._run_exitfuncs()
    _flush()
    _flush_c_stdio()
    os._exit(code)


def _flush_c_stdio() -> None:
    """What C libraries (faiss, BLAS) printed and a normal exit() would flush: os._exit does not."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass

if __name__ == "__main__":
    entry()
