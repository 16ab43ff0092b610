"""Command-line interface: ``python -m pgbench COMMAND ...``.

Each command is a small function registered in ``COMMANDS`` with its argument
set-up; library modules never print, only this module writes to stdout.
Verbosity: ``-v`` (info) / ``-vv`` (debug) / ``-q`` (errors only) logging on stderr,
before or after the subcommand (:mod:`pgbench.console`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback

from . import __version__, asv_history, asv_site, console, paths, registry, suite_cli
from .report import cli as report_cli
from .glue import cli as glue_cli
from .testing import cli as testing_cli
from .validation import error_text


def _cmd_list(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(registry.declarations() if args.params else registry.catalogue()))
        return 0
    for stage, entries in registry.declarations().items():
        print(f"{stage}:")
        for h in entries:
            print(f"  {h['name']:10s} {h['summary']}")
            width = max((len(f"{p['name']}={p['default']!r}") for p in h["params"]), default=0)
            for p in h["params"]:
                print(f"      {p['name'] + '=' + repr(p['default']):{width}s}  {p['allowed']}: {p['help']}")
    from .suite import builtin_suites

    print("suites (built-in; run by name, e.g. `pgbench run quick`):")
    for name, path in builtin_suites().items():
        print(f"  {name:10s} {path}")
    return 0


def _setup_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print {stage: [names]} as JSON")
    p.add_argument("--params", action="store_true",
                   help="with --json: {stage: [{name, summary, when, params: [{name, default, allowed, help}]}]}")


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import format_table, run_demo

    rows = run_demo(n_iter=args.n_iter, seed=args.seed, device=args.device, quick=not args.full)
    print(format_table(rows))
    return 0


def _setup_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-iter", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--full", action="store_true", help="larger data sets (minutes)")


def _cmd_dump(args: argparse.Namespace) -> int:
    from .dump import dump_layers

    manifest = dump_layers(args.checkpoint, args.layers, args.out, trust_checkpoint=args.trust_checkpoint)
    print(f"wrote {len(manifest['layers'])} layers to {args.out}")
    return 0


def _setup_dump(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="Hugging Face folder, fairseq .pt, .bin or .safetensors file")
    p.add_argument("--layers", default="",
                   help="regex searched in parameter names without .weight (default: all typed layers)")
    p.add_argument("--out", required=True, help="output .safetensors file")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="allow full unpickling of .bin/.pt files (runs code from the file: trusted sources only)")


COMMANDS = {
    "list": (_setup_list, _cmd_list, "list the registered heuristics"),
    "demo": (_setup_demo, _cmd_demo, "compare every heuristic combination on built-in synthetic sets"),
    "dump": (_setup_dump, _cmd_dump, "write a checkpoint's selected layers into one safetensors file"),
    "asv-history": (asv_history.setup_parser, asv_history.run_command,
                    "record asv results for a range of commits, offline (see docs/benchmarking.md)"),
    "asv-publish": (asv_site.setup_parser, asv_site.run_command,
                    "asv publish, with local copies of the site's scripts so it works offline"),
    "glue": glue_cli.COMMANDS["glue"],   # downstream: fine-tune, quantize, evaluate (pgbench/glue)
    "check": testing_cli.COMMANDS["check"],   # the conformance battery (pgbench/testing)
}
COMMANDS.update(suite_cli.COMMANDS)   # validate, run, export, sysinfo
COMMANDS.update(report_cli.COMMANDS)  # report, compare


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgbench", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"pgbench {__version__}")
    console.add_verbosity(parser)
    parser.add_argument("--data", metavar="DIR", dest="data_root",
                        help=f"data root holding clustering/ and glue/ (default: ${paths.DATA_ENV}, else a "
                             "checkout's ../shared/data)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (setup, _, help_text) in COMMANDS.items():
        setup(command := sub.add_parser(name, help=help_text))
        console.add_verbosity(command, after_subcommand=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status and never lets an exception out.

    2: bad input (a ValueError, raised before any work); 1: the command could not
    finish (any other error, one line; ``-v`` adds the traceback); 130: Ctrl-C;
    141: stdout's reader went away (``pgbench list | head -1``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data_root:   # through the environment, so worker processes and batch jobs see it too
        os.environ[paths.DATA_ENV] = os.path.abspath(os.path.expanduser(args.data_root))
    try:
        console.configure(args)
    except ValueError as exc:
        parser.error(str(exc))
    where = f"pgbench {args.command}"
    try:
        return COMMANDS[args.command][1](args)
    except KeyboardInterrupt:
        _say(f"{where}: interrupted")
        return INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return BROKEN_PIPE
    except ValueError as exc:
        _say(f"{where}: error: {error_text(exc)}")
        return 2
    except Exception as exc:  # noqa: BLE001 - the top level: one line, never a bare traceback
        if _interrupted(exc):
            _say(f"{where}: interrupted")
            return INTERRUPTED
        if args.verbose:
            traceback.print_exc(file=sys.stderr)
        _say(f"{where}: error: {type(exc).__name__}: {error_text(exc)}"
             + ("" if args.verbose else " (run with -v for the traceback)"))
        return 1


INTERRUPTED, BROKEN_PIPE = 130, 141     # 128 + SIGINT / SIGPIPE, as a shell reports a job those signals end


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr)
    except (OSError, ValueError):
        pass


def _interrupted(exc: BaseException) -> bool:
    """True when a Ctrl-C is what set off ``exc`` (an error raised while cleaning up after it)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__context__
    return False


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush does not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):   # not a real file (a test's capture)
        pass
