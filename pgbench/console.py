"""What the CLI shows besides results: verbosity and the progress bar.

Verbosity: ``-v`` (info), ``-vv`` (debug) and ``-q`` (errors only) are accepted
before the subcommand and after it (``pgbench -v run quick`` and ``pgbench run
quick -v`` are the same; counts add up).  They set the level of the logging
handler on stderr; warnings (a skipped optional source, a worker that died) go
through logging only, so each is shown once and ``-q`` hides them.

Progress: a bar on stderr only when stderr is a terminal, so a log file or a CI
job does not get one ever-growing line of carriage returns; ``--progress`` /
``--no-progress`` decide instead.  ``-q`` turns the bar off unless
``--progress`` is given.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TextIO

# The subcommand's copies of -v / -q store under their own names: argparse copies a
# subparser's values over the main parser's, so one shared name would lose the count
# given before the subcommand.
_AFTER = "_after_subcommand"


def add_verbosity(p: argparse.ArgumentParser, after_subcommand: bool = False) -> None:
    """Add ``-v`` / ``-q`` to the main parser, or (``after_subcommand``) to a subcommand's."""
    suffix = _AFTER if after_subcommand else ""
    p.add_argument("-v", "--verbose", action="count", default=0, dest="verbose" + suffix,
                   help="more log messages on stderr: -v info, -vv debug")
    p.add_argument("-q", "--quiet", action="store_true", dest="quiet" + suffix,
                   help="errors only: no warnings, notes or progress bar")


def configure(args: argparse.Namespace) -> None:
    """Merge the -v / -q given before and after the subcommand and set up logging on stderr.

    Leaves ``args.verbose`` (the total count) and ``args.quiet`` for the commands.
    Raises ValueError when both -v and -q are given.
    """
    args.verbose = getattr(args, "verbose", 0) + getattr(args, "verbose" + _AFTER, 0)
    args.quiet = getattr(args, "quiet", False) or getattr(args, "quiet" + _AFTER, False)
    if args.quiet and args.verbose:
        raise ValueError("-q (errors only) and -v (more messages) contradict each other; give one.")
    level = logging.ERROR if args.quiet else {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger().setLevel(level)   # also when logging was configured before (an embedding program)


def add_progress(p: argparse.ArgumentParser) -> None:
    """Add ``--progress`` / ``--no-progress`` (default: a bar only on a terminal)."""
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: only when stderr is a terminal, and not with -q)")


def progress_wanted(args: argparse.Namespace, stream: TextIO | None = None) -> bool:
    """True when a progress bar should be drawn on ``stream`` (default stderr); see the module docstring."""
    if getattr(args, "progress", None) is not None:
        return bool(args.progress)
    if getattr(args, "quiet", False):
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):   # no isatty, or a closed stream
        return False


def note(args: argparse.Namespace, text: str) -> None:
    """A status line on stderr (counts, where results went), left out with -q."""
    if not getattr(args, "quiet", False):
        print(text, file=sys.stderr)
