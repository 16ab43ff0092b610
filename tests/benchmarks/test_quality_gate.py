"""The benchmark gate's exact half (quality_gate.py) on hand-made extra_info."""

from __future__ import annotations

import json

from quality_gate import main, mismatches

BASE = {"test_fit[pg]": {"n_empty_final": 0, "rounds": 12, "inertia": 0.125, "status": "ok", "seconds_min": 0.2,
                         "ratio_vs_faiss": 1.1},
        "test_assign": {"n": 100, "backend": "faiss"}}


def test_identical_quality_passes_whatever_the_timings():
    now = {name: dict(info) for name, info in BASE.items()}
    now["test_fit[pg]"].update(seconds_min=0.9, ratio_vs_faiss=3.0)          # timings are the timing gate's
    assert mismatches(BASE, now) == []


def test_any_quality_change_fails():
    for key, value in (("n_empty_final", 7), ("rounds", 13), ("inertia", 0.125000001), ("status", "unresolved"),
                       ("rounds", 12.0)):                                    # 12.0 is not the int 12
        now = {name: dict(info) for name, info in BASE.items()}
        now["test_fit[pg]"][key] = value
        (line,) = mismatches(BASE, now)
        assert line.startswith(f"test_fit[pg]: extra_info '{key}' changed"), line


def test_added_or_removed_keys_fail_and_missing_benchmarks_are_skipped():
    now = {"test_fit[pg]": {**BASE["test_fit[pg]"], "n_groups": 3}}
    assert mismatches(BASE, now) == ["test_fit[pg]: extra_info 'n_groups' only in this run"]
    del now["test_fit[pg]"]["n_groups"], now["test_fit[pg]"]["rounds"]
    assert mismatches(BASE, now) == ["test_fit[pg]: extra_info 'rounds' only in the baseline"]


def test_the_script_exits_1_on_a_difference(tmp_path, capsys):
    def doc(infos):
        return {"benchmarks": [{"fullname": n, "extra_info": i} for n, i in infos.items()]}

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(doc(BASE)))
    b.write_text(json.dumps(doc(BASE)))
    assert main([str(a), str(b)]) == 0
    b.write_text(json.dumps(doc({**BASE, "test_assign": {"n": 101, "backend": "faiss"}})))
    assert main([str(a), str(b)]) == 1
    assert "'n' changed from 100 to 101" in capsys.readouterr().out
    assert main([str(a)]) == 2


# ----------------------------------------------------------------------- the timing half (time_gate.py)


def test_regressed_follows_pytest_benchmarks_percentage_rule():
    from time_gate import regressed

    base = {"a": 1.0, "b": 2.0, "c": 0.5, "gone": 1.0}
    now = {"a": 1.59, "b": 3.3, "c": 0.4, "new": 9.0}
    assert regressed(base, now, 60) == ["b"]          # +59 % passes, +65 % fails
    assert regressed(base, now, 30) == ["a", "b"]


def test_retries_drop_the_paths_and_keep_every_option():
    from time_gate import without_paths

    args = ["tests/benchmarks", "-m", "ci_bench", "--benchmark-only", "-q", "-p", "no:cacheprovider",
            "--benchmark-storage=.benchmarks/ci", "other/path.py"]
    assert without_paths(args) == ["-m", "ci_bench", "--benchmark-only", "-q", "-p", "no:cacheprovider",
                                   "--benchmark-storage=.benchmarks/ci"]


def _doc(mins, info=None):
    return {"benchmarks": [{"fullname": n, "stats": {"min": m}, "extra_info": dict(info or {})}
                           for n, m in mins.items()]}


def _fake_pytest(monkeypatch, runs):
    """Replace time_gate's pytest call: each call pops (exit status, document written or None)."""
    import time_gate

    calls = []

    def fake(args, json_path=None):
        calls.append(args)
        rc, doc = runs.pop(0)
        if json_path is not None and doc is not None:
            json_path.write_text(json.dumps(doc))
        return rc

    monkeypatch.setattr(time_gate, "_pytest", fake)
    return calls


def test_a_slow_round_that_does_not_reproduce_passes_and_one_that_does_fails(tmp_path, monkeypatch):
    from time_gate import gate

    base = tmp_path / "base.json"
    base.write_text(json.dumps(_doc({"t.py::a": 1.0, "t.py::b": 1.0})))
    args = ["tests/benchmarks", "-m", "ci_bench", "--benchmark-compare"]
    calls = _fake_pytest(monkeypatch, [(1, _doc({"t.py::a": 1.7, "t.py::b": 1.0})), (1, None), (0, None)])
    assert gate(base, 60, 2, args) == 0
    assert [c[0] for c in calls] == ["tests/benchmarks", "t.py::a", "t.py::a"]    # retried alone, twice
    assert all("--benchmark-compare-fail=min:60%" in c for c in calls)
    _fake_pytest(monkeypatch, [(1, _doc({"t.py::a": 1.7, "t.py::b": 1.0})), (1, None), (1, None)])
    assert gate(base, 60, 2, args) == 1


def test_quality_differences_and_other_failures_are_never_retried(tmp_path, monkeypatch):
    from time_gate import gate

    base = tmp_path / "base.json"
    base.write_text(json.dumps(_doc({"t.py::a": 1.0}, {"rounds": 3})))
    calls = _fake_pytest(monkeypatch, [(1, _doc({"t.py::a": 9.0}, {"rounds": 4}))])
    assert gate(base, 60, 2, ["x"]) == 1 and len(calls) == 1                  # quality changed
    calls = _fake_pytest(monkeypatch, [(1, _doc({"t.py::a": 1.0}, {"rounds": 3}))])
    assert gate(base, 60, 2, ["x"]) == 1 and len(calls) == 1                  # failed, but not on time
    calls = _fake_pytest(monkeypatch, [(2, None)])
    assert gate(base, 60, 2, ["x"]) == 2 and len(calls) == 1                  # no timings written
