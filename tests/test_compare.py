"""``pgbench compare``: exact metrics compared exactly, timings against their measured spread.

Hand-made rows first (the rules of pgbench/report/compare.py's docstring), then two
real runs of one small suite: identical code passes, seven more empty clusters on
the pg cases fail.
"""

from __future__ import annotations

import sqlite3

import pytest
from report_rows import case, make_store

from pgbench.cli import main
from pgbench.report import compare as compare_mod
from pgbench.report.compare import compare


def _timed(method, dataset, seconds, spread, repeats=3, **extra):
    return case(method, dataset, 0, seconds_total=seconds, seconds_spread=spread, repeats=repeats, **extra)


def _change(result, method, metric):
    return next(c for c in result.changes if c.method == method and c.metric == metric)


def test_identical_exact_metrics_are_identical_and_any_difference_is_counted():
    a = [case("pg", "d1", inertia=1.0, n_empty_final=0), case("pg", "d2", inertia=2.0, n_empty_final=0)]
    same = compare(a, [dict(r) for r in a], metrics=("inertia", "n_empty_final"))
    assert not same.regressed and all(c.n_changed == 0 and c.change == 0 for c in same.changes)
    # one inertia moves by 1e-9: counted as changed, far below the threshold, so no regression
    moved = compare(a, [dict(a[0], inertia=1.0 + 1e-9), dict(a[1])], metrics=("inertia",))
    pg = _change(moved, "pg", "inertia")
    assert pg.n_changed == 1 and not pg.regression and not moved.regressed
    assert "1 changed" in "\n".join(compare_mod.report_lines(moved))
    # (2 + 3) / 2 -> +150 % of the mean: beyond 10 %
    worse = compare(a, [dict(a[0], inertia=1.0), dict(a[1], inertia=4.0)], metrics=("inertia",))
    assert _change(worse, "pg", "inertia").change == pytest.approx(2 / 3) and worse.regressed


def test_time_regression_only_beyond_the_slowest_repeat_of_a_by_the_threshold():
    a = [_timed("pg", "d1", 1.0, 0.2), _timed("pg", "d2", 1.0, 0.2)]       # A: fastest 1.0, slowest 1.2
    # B's fastest 1.3 <= 1.2 * 1.1 = 1.32: within the spread, even though +30 % on the fastest
    inside = compare(a, [_timed("pg", "d1", 1.3, 0.0), _timed("pg", "d2", 1.3, 0.0)], metrics=("seconds_total",))
    c = _change(inside, "pg", "seconds_total")
    assert c.judged and c.slowest_a == pytest.approx(1.2) and c.change == pytest.approx(0.3)
    assert not c.regression and not inside.regressed
    # 1.33 > 1.32: a regression
    beyond = compare(a, [_timed("pg", "d1", 1.33, 0.0), _timed("pg", "d2", 1.33, 0.0)],
                     metrics=("seconds_total",))
    assert _change(beyond, "pg", "seconds_total").regression and beyond.regressed
    # a larger threshold admits it
    assert not compare(a, [_timed("pg", "d1", 1.33, 0.0), _timed("pg", "d2", 1.33, 0.0)],
                       metrics=("seconds_total",), threshold=0.2).regressed


def test_time_is_not_judged_without_repeats_on_both_sides():
    a = [_timed("pg", "d1", 1.0, 0.0, repeats=1)]
    b = [_timed("pg", "d1", 5.0, 0.0, repeats=3)]
    got = compare(a, b, metrics=("seconds_total",))
    c = _change(got, "pg", "seconds_total")
    assert not c.judged and not c.regression and c.change == pytest.approx(4.0)
    assert "not judged" in "\n".join(compare_mod.report_lines(got))
    old = [case("pg", "d1", seconds_total=1.0)]             # a schema-1 store: no repeats column
    assert not compare(old, [case("pg", "d1", seconds_total=9.0)], metrics=("seconds_total",)).regressed


def test_threshold_must_be_a_non_negative_number():
    rows = [case("pg", "d1")]
    for bad in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="threshold"):
            compare(rows, rows, threshold=bad)


SMALL = """
[suite]
name = "small"
seeds = [0, 1]
n_iter = 4
repeats = {repeats}

[[methods]]
label = "pg"
init = "pg"
resolve = "pg"

[[methods]]
label = "fairseq"
init = "fairseq"
resolve = "fairseq"

[[sources]]
name = "gaussian_mixture"
params = {{ n = 600, d = 2, n_centers = 6 }}
k = 48
"""


def _run(tmp_path, name, repeats=1):
    suite = tmp_path / "small.toml"
    suite.write_text(SMALL.format(repeats=repeats), encoding="utf-8")
    out = tmp_path / name
    assert main(["run", str(suite), "--results", str(out), "--no-progress", "--executor", "inline"]) == 0
    return out


def test_two_runs_of_the_same_code_pass_and_seven_more_empties_fail(tmp_path, capsys):
    a, b = _run(tmp_path, "a"), _run(tmp_path, "b")
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "REGRESSION" not in out and "identical" in out and "not judged" in out
    with sqlite3.connect(b / "results.sqlite") as conn:
        changed = conn.execute("UPDATE cases SET n_empty_final = n_empty_final + 7 WHERE method = 'pg'").rowcount
    assert changed == 2
    assert main(["compare", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("pg ") and "n_empty_final" in line]
    assert lines and "REGRESSION" in lines[0] and "+inf" in lines[0]     # 0 -> 7 empty clusters


def test_repeats_store_the_fastest_time_and_the_spread(tmp_path):
    a = _run(tmp_path, "a", repeats=3)
    with sqlite3.connect(a / "results.sqlite") as conn:
        rows = conn.execute("SELECT repeats, seconds_total, seconds_spread, seconds_assign_spread, status "
                            "FROM cases").fetchall()
    assert len(rows) == 4
    for repeats, seconds, spread, assign_spread, status in rows:
        assert (repeats, status) in ((3, "ok"), (3, "unresolved"), (3, "stopped"))
        assert seconds > 0 and spread >= 0 and assign_spread >= 0


def test_make_store_rows_with_spread_round_trip(tmp_path):
    path = make_store(tmp_path / "s", [_timed("pg", "d1", 1.0, 0.25)], traces=False)
    with sqlite3.connect(path / "results.sqlite") as conn:
        assert conn.execute("SELECT repeats, seconds_spread FROM cases").fetchall() == [(3, 0.25)]
