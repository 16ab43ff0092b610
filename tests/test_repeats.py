"""Timing repeats (``[suite] repeats``): the fastest time and the spread are stored, results must agree."""

from __future__ import annotations

import dataclasses

import pytest
from test_schema import CASE

from pgbench import worker
from pgbench.engine import kmeans as real_kmeans


def _timed_kmeans(monkeypatch, seconds, seeds=None):
    """worker.kmeans -> the real one, with seconds_total (and assign seconds) replaced per call."""
    worker._warm_up(CASE)                 # the per-process warm-up run is not a repeat
    calls = iter(range(len(seconds)))

    def fake(*args, **kwargs):
        i = next(calls)
        if seeds is not None:
            kwargs["seed"] = seeds[i]
        result = real_kmeans(*args, **kwargs)
        result.seconds_total = seconds[i]
        for s in result.trace:
            s.seconds_assign = seconds[i] / 10 / len(result.trace)
        return result

    monkeypatch.setattr(worker, "kmeans", fake)


def test_the_minimum_and_the_spread_over_repeats_are_stored(monkeypatch):
    _timed_kmeans(monkeypatch, [0.5, 0.2, 0.3])
    row, trace = worker.run_case(dataclasses.replace(CASE, repeats=3))
    assert row["status"] == "ok" and row["repeats"] == 3
    assert row["seconds_total"] == 0.2 and row["seconds_spread"] == pytest.approx(0.3)
    assert row["seconds_assign"] == pytest.approx(0.02) and row["seconds_assign_spread"] == pytest.approx(0.03)
    assert sum(t["seconds_assign"] for t in trace) == pytest.approx(0.02)      # the fastest repeat's trace


def test_one_repeat_has_no_spread(monkeypatch):
    _timed_kmeans(monkeypatch, [0.4])
    row, _ = worker.run_case(CASE)
    assert (row["repeats"], row["seconds_total"], row["seconds_spread"]) == (1, 0.4, 0.0)


def test_repeats_that_disagree_are_an_error_naming_what_differed(monkeypatch):
    _timed_kmeans(monkeypatch, [0.1, 0.1], seeds=[0, 1])       # a "heuristic" whose randomness escapes the seed
    row, trace = worker.run_case(dataclasses.replace(CASE, repeats=2))
    assert row["status"] == "error" and trace == []
    assert row["error"].startswith("nondeterministic across 2 timing repeats with seed 0: labels differ")
    assert row["repeats"] == 2 and row["seconds_total"] is None


def test_repeats_of_real_heuristics_agree():
    for init, resolve in (("pg", "pg"), ("fairseq", "fairseq"), ("kmeans++", "sklearn"), ("random", "faiss")):
        row, _ = worker.run_case(dataclasses.replace(CASE, init=init, resolve=resolve, repeats=2, case_id=""))
        assert row["status"] != "error", row["error"]
        assert row["seconds_spread"] >= 0
