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
