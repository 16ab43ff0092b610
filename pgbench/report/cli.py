"""The ``report`` and ``compare`` commands of the CLI (registered in :data:`pgbench.cli.COMMANDS`).

Like the rest of the CLI, the only place of the report package that prints.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..extras import require
from .compare import DEFAULT_METRICS, LOWER_IS_BETTER
from .evidence import DEFAULT_PRIMARY, PRIMARY_CHOICES
from .tables import DEFAULT_BASELINE

log = logging.getLogger(__name__)


def _setup_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="results folder (or its results.sqlite)")
    p.add_argument("-o", "--out", default="reports/report.html",
                   help="output HTML file (default: reports/report.html; reports/*.html is git-ignored)")
    p.add_argument("--baseline", default=DEFAULT_BASELINE,
                   help=f"method for the paired differences: a combination init+resolve[+consolidate] or a suite "
                        f"method label (default: {DEFAULT_BASELINE})")
    p.add_argument("--suite", help="only this suite's cases")
    p.add_argument("--json", metavar="FILE", dest="json_out",
                   help="also write the findings (headline, per_dataset, win_tie_loss, aggregates, paper_claims) "
                        "as JSON to FILE, from the same computed objects as the page")
    p.add_argument("--primary-metric", choices=PRIMARY_CHOICES, default=None,
                   help=f"the quality metric of the headline and the Pareto front, when the rows carry no "
                        f"primary_metric of their suite (default: {DEFAULT_PRIMARY})")


def _cmd_report(args: argparse.Namespace) -> int:
    require("report", "pgbench report")
    from ..paths import writable_file
    from .render import write_report

    writable_file(args.out, "-o/--out")
    if args.json_out:
        writable_file(args.json_out, "--json")
    out, info = write_report(args.results, args.out, baseline=args.baseline, suite=args.suite,
                             json_out=args.json_out, primary_metric=args.primary_metric)
    if not info["baseline_found"] and info["cases"]:
        log.warning("baseline '%s' not in the results; no paired differences", args.baseline)
    extra = "" if info["downstream"] else ", no downstream results"
    print(f"{info['cases']} cases -> {out} ({info['bytes'] / 1e6:.2f} MB{extra})"
          + (f", findings -> {args.json_out}" if args.json_out else ""))
    print(info["headline"])
    return 0


def _setup_compare(p: argparse.ArgumentParser) -> None:
    p.add_argument("results_a", help="reference results folder (or its results.sqlite)")
    p.add_argument("results_b", help="results folder to check against the reference")
    p.add_argument("--threshold", type=float, default=0.1,
                   help="largest accepted relative increase of a mean, e.g. 0.1 = 10%% (default 0.1)")
    p.add_argument("--metric", action="append", choices=LOWER_IS_BETTER,
                   help=f"metric to compare, repeatable (default: {', '.join(DEFAULT_METRICS)}); all lower-is-better")
    p.add_argument("--suite", help="only this suite's cases (in both stores)")


def _cmd_compare(args: argparse.Namespace) -> int:
    from ..store import Store
    from .compare import compare, percent, report_lines

    rows = []
    for path in (args.results_a, args.results_b):
        with Store(path, readonly=True) as store:
            rows.append(store.rows(args.suite))
    result = compare(rows[0], rows[1], metrics=tuple(args.metric or DEFAULT_METRICS), threshold=args.threshold)
    print("\n".join(report_lines(result)))
    if result.regressed:
        print(f"regression: {len(result.regressions)} metric change(s) above {percent(args.threshold)}"
              f"{', ' + str(len(result.newly_failed)) + ' newly failed case(s)' if result.newly_failed else ''}",
              file=sys.stderr)
        return 1
    print(f"no regression above {percent(args.threshold)}")
    return 0


COMMANDS = {
    "report": (_setup_report, _cmd_report, "write a result store as one self-contained HTML report"),
    "compare": (_setup_compare, _cmd_compare,
                "compare two result stores per metric; exit 1 on a regression beyond --threshold"),
}
