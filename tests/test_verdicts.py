"""The report's verdicts (pgbench.report.evidence / aggregates / verdicts / ledger) on hand-made rows.

Answers computed by hand first (geometric means, win counts, the Pareto front,
bootstrap bounds), then properties with hypothesis, then the page and the
``--json`` file.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from report_rows import add_downstream, case, make_store, sample_rows

from pgbench.cli import main
from pgbench.report import aggregates as agg
from pgbench.report import evidence, ledger, stats, verdicts

FS, PG, SK = "fairseq + fairseq", "pg + pg", "kmeans++ + sklearn"


def approx(x, rel=1e-9):
    return pytest.approx(x, rel=rel, abs=1e-12)


def hand_rows(spread=False):
    """Two data sets x two seeds; fairseq the baseline.

    inertia (fairseq, pg, sklearn): d1: (2, 1, 1) both seeds; d2: (4, 2, 1) seed 0, (8, 1, 2) seed 1.
    time: fairseq 1.0 s everywhere, pg 2.0 s, sklearn 1.03 s (a tie within 5%) except d2 seed 1: 0.5 s.
    empties: fairseq 3 on d1, 0 on d2; the others 0.
    """
    rows = []
    inertia = {("d1", 0): (2, 1, 1), ("d1", 1): (2, 1, 1), ("d2", 0): (4, 2, 1), ("d2", 1): (8, 1, 2)}
    for (ds, seed), (fi, pi, si) in inertia.items():
        sk_time = 0.5 if (ds, seed) == ("d2", 1) else 1.03
        extra = {"seconds_spread": 0.01} if spread else {}
        rows.append(case("fairseq", ds, seed, inertia=fi, seconds_total=1.0, n_empty_final=3 if ds == "d1" else 0,
                         rounds_total=10, **extra))
        rows.append(case("pg", ds, seed, inertia=pi, seconds_total=2.0, rounds_total=2, **extra))
        rows.append(case("sklearn", ds, seed, inertia=si, seconds_total=sk_time, rounds_total=2, **extra))
    return rows


# --------------------------------------------------------------- by hand

def test_geometric_mean_by_hand():
    assert stats.geometric_mean([1.0, 4.0]) == approx(2.0)
    assert stats.geometric_mean([2.0, 8.0, 4.0]) == approx(4.0)
    assert stats.geometric_mean([0.0, 3.0]) == 0.0 and math.isinf(stats.geometric_mean([1.0, math.inf]))
    assert stats.geometric_mean([]) is None


def test_block_values_ratios_to_the_best_and_to_the_baseline():
    data = evidence.block_values(hand_rows(), FS)
    assert data.methods == [FS, SK, PG] and len(data.blocks) == 4 and data.datasets == ["d1", "d2"]
    inertia = data.values["inertia_ratio"]
    assert sorted(inertia[FS].values()) == [2.0, 2.0, 4.0, 8.0]      # 2/1, 2/1, 4/1, 8/1
    assert sorted(inertia[SK].values()) == [1.0, 1.0, 1.0, 2.0]
    assert sorted(data.values["time_ratio"][PG].values()) == [2.0] * 4
    assert data.time_reference == "baseline"
    # no baseline: times relative to the fastest on each block
    alone = evidence.block_values(hand_rows(), None)
    assert alone.time_reference == "fastest" and sorted(alone.values["time_ratio"][FS].values()) == [1, 1, 1, 2]


def test_aggregates_geometric_means_by_hand():
    data = evidence.block_values(hand_rows(), FS)
    aggs = agg.aggregates(data, np.random.default_rng(0), n_resamples=500)
    fs = agg.find(aggs, FS, "inertia_ratio")
    assert fs.statistic == "geometric_mean" and fs.value == approx((2 * 2 * 4 * 8) ** 0.25)   # 2^(7/4)
    assert agg.find(aggs, SK, "inertia_ratio").value == approx(2 ** 0.25)
    assert agg.find(aggs, FS, "inertia_ratio", "median").value == approx(3.0)
    assert agg.find(aggs, PG, "time_ratio").value == approx(2.0)
    assert agg.find(aggs, PG, "time_ratio").low == approx(2.0) == agg.find(aggs, PG, "time_ratio").high
    e = agg.find(aggs, FS, "n_empty_final")
    assert (e.statistic, e.value) == ("mean", 1.5) and 0 <= e.low <= 1.5 <= e.high <= 3
    # every bootstrap interval lies between the smallest and the largest block value
    assert 2.0 <= fs.low <= fs.value <= fs.high <= 8.0


def test_bootstrap_interval_by_hand_on_two_blocks():
    # two blocks (0 and 2): resamples are {0,0}, {0,2}, {2,0}, {2,2} -> means 0, 1, 1, 2
    a = agg.aggregate([0.0, 2.0], "mean", np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 10), lower_bound=0.0)
    assert a.value == 1.0 and (a.low, a.high) == (approx(0.0), approx(2.0))
    one = agg.aggregate([3.0], "mean", None)
    assert (one.value, one.low, one.high, one.n_blocks) == (3.0, None, None, 1)
    inf = agg.aggregate([2.0, math.inf, 8.0], "geometric_mean", None)
    assert inf.value == approx(4.0) and (inf.n_blocks, inf.n_infinite) == (2, 1)


def test_win_tie_loss_against_the_baseline_by_hand():
    data = evidence.block_values(hand_rows(), FS)
    got = {(r["method"], r["metric"]): (r["wins"], r["ties"], r["losses"]) for r in evidence.win_tie_loss(data, FS)}
    assert got[(PG, "inertia_ratio")] == (4, 0, 0)
    assert got[(SK, "n_empty_final")] == (2, 2, 0)           # d1 both seeds: 0 < 3; d2: 0 = 0
    assert got[(PG, "time_ratio")] == (0, 0, 4)
    assert got[(SK, "time_ratio")] == (1, 3, 0)              # 1.03 vs 1.0 ties within 5%; 0.5 wins
    assert (FS, "inertia_ratio") not in got                  # the baseline is not compared with itself


def test_win_tie_loss_uses_the_measured_spread_when_rows_have_one():
    data = evidence.block_values(hand_rows(spread=True), FS)
    got = {(r["method"], r["metric"]): (r["wins"], r["ties"], r["losses"]) for r in evidence.win_tie_loss(data, FS)}
    assert got[(SK, "time_ratio")] == (1, 0, 3)              # 0.03 apart is more than the 0.01 spread: a loss
    assert "spread" in verdicts.compute(hand_rows(spread=True)).time_tie_rule
    assert "5%" in verdicts.compute(hand_rows()).time_tie_rule


def test_best_counts_and_per_dataset_winners_by_hand():
    data = evidence.block_values(hand_rows(), FS)
    counts = evidence.best_counts(data, "inertia_ratio")
    assert counts[SK] == (3, 4) and counts[PG] == (3, 4) and counts[FS] == (0, 4)   # ties count for both
    table = {(r["dataset"], r["metric"]): r for r in evidence.per_dataset(data)}
    d2 = table[("d2", "inertia_ratio")]
    # d2 ratios: fairseq 4, 8 -> sqrt(32); pg 2, 1 -> sqrt(2); sklearn 1, 2 -> sqrt(2): a tie
    assert d2["values"][FS] == approx(math.sqrt(32)) and d2["winners"] == [SK, PG]
    assert d2["relative"][FS] == approx(4.0)
    assert table[("d1", "n_empty_final")]["winner"] == f"{SK}, {PG}"
    assert table[("d1", "n_empty_final")]["relative"][FS] is None          # counts are shown as counts
    t1 = table[("d1", "seconds_total")]
    assert t1["winners"] == [FS, SK] and t1["relative"][PG] == approx(2.0)  # 1.03 ties 1.0 within 5%


def test_pareto_front_by_hand():
    points = {"a": (1, 3), "b": (2, 2), "c": (3, 1), "d": (3, 3), "e": (2, 2), "f": (None, 1)}
    assert agg.pareto_front(points) == {"a", "b", "c", "e"}          # d is dominated by b; f has no time
    assert agg.pareto_front({"x": (1, 1), "y": (1, 2)}) == {"x"}


def test_headline_names_the_winner_the_empties_and_the_front():
    v = verdicts.compute(hand_rows())
    assert v.headline.startswith(f"{SK} has the lowest inertia relative to the best on 3 of 4 runs")
    assert f"Empty clusters remain with {FS} on 2 of 4 runs (mean per run, most first: d1: 3); over all runs 1.5" \
        in v.headline
    front = {r["method"] for r in v.pareto if r["on_front"]}
    assert front == {SK}
    # sklearn's time: (1.03^3 * 0.5)^(1/4) = 0.86 of fairseq's; inertia 2^(1/4) = 1.19 of the best
    assert f"(time relative to the baseline {FS}; geometric means): {SK} (time 0.86×, 1.19× the best)." \
        in v.headline


def test_primary_metric_from_the_rows_or_the_option():
    rows = hand_rows()
    assert verdicts.primary_metric_of(rows, None) == "inertia_ratio"
    assert verdicts.primary_metric_of(rows, "rel_error_ratio") == "rel_error_ratio"
    assert verdicts.primary_metric_of([dict(r, primary_metric="rel_error") for r in rows], None) == "rel_error_ratio"
    with pytest.raises(ValueError, match="primary metric 'speed'"):
        verdicts.primary_metric_of(rows, "speed")


# ------------------------------------------------------------ properties

@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 500), min_size=1, max_size=30), st.integers(0, 2**32 - 1))
def test_count_intervals_never_go_below_zero(counts, seed):
    rng = np.random.default_rng(seed)
    a = agg.aggregate([float(c) for c in counts], "mean", agg.resample_indices(len(counts), rng, 200),
                      lower_bound=0.0)
    assert a.value >= 0 and (a.low is None or 0 <= a.low <= a.high)
    if len(counts) > 1:
        assert min(counts) <= a.low <= a.high <= max(counts)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.5, 50), st.floats(0.5, 50)), min_size=1, max_size=6),
       st.lists(st.floats(1e-3, 1e3), min_size=6, max_size=6))
def test_inertia_ratios_do_not_change_when_a_data_set_is_rescaled(inertias, scales):
    """Scaling every inertia of a data set (its units) leaves the ratios and their geometric means alone."""
    def rows(scaled):
        out = []
        for i, (a, b) in enumerate(inertias):
            c = scales[i] if scaled else 1.0
            out += [case("fairseq", f"d{i}", 0, inertia=a * c), case("pg", f"d{i}", 0, inertia=b * c)]
        return out

    plain, scaled = (agg.aggregates(evidence.block_values(rows(s), FS), np.random.default_rng(1), 100)
                     for s in (False, True))
    for x, y in zip(plain, scaled):
        if x.metric == "inertia_ratio":
            assert y.value == pytest.approx(x.value, rel=1e-9)
            assert (x.low is None and y.low is None) or y.low == pytest.approx(x.low, rel=1e-9)


# ---------------------------------------------------------------- ledger

def test_paper_claims_are_transcribed_with_table_and_row():
    claims = ledger.load_claims()
    assert len(claims) == 42 + 42 + 24 + 27 + 12 + 2

    def one(source, row, setting, task, method):
        hit = [c for c in claims if (c["source"], c["row"], c["setting"], c["task"], c["method"]) ==
               (source, row, setting, task, method)]
        assert len(hit) == 1, (source, row, setting, task, method)
        return hit[0]["paper"]

    assert one("Table 1", "q_proj", "paper-11.81", "MNLI", "fairseq + fairseq") == 28.5
    assert one("Table 1", "k_proj", "paper-15.90", "QNLI", "fairseq + fairseq") == 115.3
    assert one("Table 5", "k_proj", "paper-11.81", "MNLI", "pg + pg + dwc") == 0.7
    assert one("Table 4", "15.29", "paper-15.29", "RTE", "pg + pg + dwc") == 1.4
    assert one("Table 4", "11.81", "paper-11.81", "QNLI", "fairseq + fairseq") == 93.2
    assert one("Table 2", "iPQ with Quant-Noise 15.90", "paper-15.90", "QNLI", "fairseq + fairseq") == 77.4
    assert one("Table 3", "14.05", "paper-14.05", "MNLI", "pg + pg") == 82.6
    assert one("Section 5.4", "fewer_iterations", "any", None, "pg + pg") == 8.0
    assert one("Section 5.4", "speedup", "any", None, "pg + pg") == 3.8


def test_ledger_fills_measured_where_the_setting_matches():
    rows = sample_rows()       # a query layer at paper-11.81: fairseq 6 empties per run, pg-full 0
    drows = [dict(zip(("task", "metric_name", "metric", "accuracy", "method", "preset", "compression_ratio",
                       "size_mb", "init", "resolve", "consolidate", "seed", "status"),
                      ("MNLI", "accuracy", 0.831, 0.831, "fairseq", "paper-11.81", 11.81, 40.0, "fairseq",
                       "fairseq", None, 0, "ok")))]
    got = {(c["source"], c["row"], c["setting"], c["task"], c["method"]): c for c in ledger.ledger(rows, drows)}
    q = got[("Table 1", "q_proj", "paper-11.81", "MNLI", "fairseq + fairseq")]
    assert (q["paper"], q["measured"]) == (28.5, 6.0) and "not a RoBERTa checkpoint" in q["note"]
    assert got[("Table 5", "q_proj", "paper-11.81", "RTE", "pg + pg + dwc")]["measured"] == 0.0
    assert got[("Table 4", "11.81", "paper-11.81", "MNLI", "fairseq + fairseq")]["measured"] == 100.0
    assert got[("Table 1", "q_proj", "paper-15.90", "MNLI", "fairseq + fairseq")]["measured"] is None
    assert "no fairseq + fairseq layer run at preset paper-15.90" in \
        got[("Table 1", "q_proj", "paper-15.90", "MNLI", "fairseq + fairseq")]["note"]
    acc = got[("Table 2", "iPQ with Quant-Noise 11.81", "paper-11.81", "MNLI", "fairseq + fairseq")]
    assert acc["measured"] == approx(83.1) and acc["paper"] == 83.1
    fc1 = got[("Table 1", "FC1", "paper-11.81", "MNLI", "fairseq + fairseq")]
    assert fc1["measured"] is None and fc1["note"] == "no fairseq + fairseq run of layer type FC1 at preset paper-11.81"


# ------------------------------------------------------- page and JSON

def test_json_has_the_contract_keys_and_matches_the_page(tmp_path, capsys):
    res = make_store(tmp_path / "res", sample_rows())
    add_downstream(res)
    out, js = tmp_path / "r.html", tmp_path / "v.json"
    assert main(["report", str(res), "-o", str(out), "--json", str(js), "--baseline", "fairseq"]) == 0
    found = json.loads(js.read_text(encoding="utf-8"))
    assert {"headline", "per_dataset", "win_tie_loss", "aggregates", "paper_claims"} <= set(found)
    assert {"dataset", "metric", "winner", "values"} <= set(found["per_dataset"][0])
    assert {"method", "baseline", "metric", "wins", "ties", "losses"} <= set(found["win_tie_loss"][0])
    assert {"method", "metric", "statistic", "value", "low", "high"} <= set(found["aggregates"][0])
    assert {"source", "setting", "method", "metric", "paper", "measured"} <= set(found["paper_claims"][0])
    assert {a["statistic"] for a in found["aggregates"]} == {"mean", "geometric_mean", "median"}
    html = out.read_text(encoding="utf-8")
    for section in ('id="verdict"', 'id="per-dataset"', 'id="paper-claims"', 'id="paper-checks"'):
        assert section in html
    import html as html_mod
    assert " ".join(found["headline_parts"]) == found["headline"]
    assert all(html_mod.escape(part, quote=False) in html for part in found["headline_parts"])
    assert found["headline"] in capsys.readouterr().out
    assert any(c["measured"] is not None for c in found["paper_claims"])


def test_report_of_one_data_set_one_seed_one_method(tmp_path):
    res = make_store(tmp_path / "res", [case("pg", "only", 0, inertia=2.0, n_empty_final=0)])
    out, js = tmp_path / "r.html", tmp_path / "v.json"
    assert main(["report", str(res), "-o", str(out), "--json", str(js)]) == 0
    found = json.loads(js.read_text(encoding="utf-8"))
    assert found["win_tie_loss"] == [] and found["n_blocks"] == 1
    assert all(a["low"] is None and a["high"] is None for a in found["aggregates"])
    assert any("need more than one" in n for n in found["notes"])
    assert "pg + pg has the lowest inertia relative to the best on 1 of 1 runs" in found["headline"]
    html = out.read_text(encoding="utf-8")
    assert "need more than one" in html and "no interval" in html


def test_report_rejects_an_unknown_primary_metric(tmp_path, capsys):
    res = make_store(tmp_path / "res", [case("pg")])
    with pytest.raises(SystemExit) as exc:
        main(["report", str(res), "-o", str(tmp_path / "r.html"), "--primary-metric", "speed"])
    assert exc.value.code == 2


# --------------------------------------------------------------- summary

def test_summary_lists_every_method_with_its_parameters():
    from pgbench.report import summary

    rows = [case("pg", "d1", 0, params={"resolve": {"max_passes": 15}}),
            case("pg", "d2", 0, params={"resolve": {"max_passes": 15}}),
            case("faiss", "d1", 0, params={"resolve": {"eps": 0.001}}, max_points_per_centroid=256)]
    got = summary.method_parameters(rows)
    assert [(m["method"], m["n"]) for m in got] == [(PG, 2), ("random + faiss", 1)]
    assert got[0]["params"] == {"resolve": {"max_passes": 15}} and got[0]["labels"] == ["pg"]
    assert got[1]["max_points_per_centroid"] == 256 and got[1]["backend"] == "torch"


def test_summary_derives_skipped_sources_from_a_built_in_suite():
    from pgbench.report import summary

    rows = [dict(case("pg", "g", 0, source="gaussian_mixture"), suite="quick")]
    got = summary.sources(rows)
    assert got["present"] == [{"source": "gaussian_mixture", "preset": "", "cases": 1}]
    skipped = {s["label"]: s["reason"] for s in got["skipped"]}
    assert "gaussian_mixture" not in skipped and "minilm-paper" in skipped and "clustering" in skipped
    assert "derived from the built-in suite 'quick'" in got["note"]
    other = summary.sources([case("pg")])                     # suite "t": not built in, nothing derived
    assert other["skipped"] == [] and "not a built-in suite" in other["note"]
