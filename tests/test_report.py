"""The report: table functions on hand-made rows, the HTML page, and ``pgbench compare``."""

from __future__ import annotations

import math
from html.parser import HTMLParser

import pytest
from report_rows import add_downstream, case, make_store, sample_rows

from pgbench.cli import main
from pgbench.report import compare as compare_mod
from pgbench.report import stats, summary, tables
from pgbench.report.data import load

T2 = 4.302652729749464          # Student t, 97.5% quantile, 2 degrees of freedom
T1 = 12.706204736174707         # ... 1 degree of freedom
FS, PG, PGF, SK = "fairseq + fairseq", "pg + pg", "pg + pg + dwc", "kmeans++ + sklearn"


def approx(x, rel=1e-6):
    return pytest.approx(x, rel=rel, abs=1e-12)


# ------------------------------------------------------------------ statistics

def test_t_interval_hand_computed():
    iv = stats.t_interval([1.0, 2.0, 3.0])             # mean 2, sd 1, se 1/sqrt(3)
    assert iv.mean == 2 and iv.n == 3
    assert iv.half_width == approx(T2 / math.sqrt(3))
    assert (iv.low, iv.high) == (approx(2 - T2 / math.sqrt(3)), approx(2 + T2 / math.sqrt(3)))
    one = stats.t_interval([5.0])
    assert (one.mean, one.low, one.high, one.n) == (5.0, None, None, 1)
    assert stats.t_interval([]).mean is None


def test_seed_interval_averages_each_seed_first():
    # seed 0: (1 + 3) / 2 = 2, seed 1: 4 -> mean 3, sd sqrt(2), se 1
    iv = stats.seed_interval([(0, 1.0), (0, 3.0), (1, 4.0)])
    assert iv.n == 2 and iv.mean == 3
    assert iv.half_width == approx(T1 * 1.0)


def test_method_names_add_the_label_only_when_a_combination_is_shared():
    rows = [case("pg"), case("fairseq"), {**case("pg"), "method": "pg-30"}]
    names = stats.method_names(rows)
    assert names[(FS, "fairseq")] == FS
    assert names[(PG, "pg")] == "pg + pg [pg]" and names[(PG, "pg-30")] == "pg + pg [pg-30]"
    assert stats.combination({"init": "pg", "resolve": "pg", "consolidate": "dwc"}) == PGF


def test_relative_inertia_is_against_the_best_method_on_the_same_data():
    a, b, c = case("fairseq", "d1", inertia=3.0), case("pg", "d1", inertia=1.5), case("pg", "d2", inertia=7.0)
    rel = stats.relative_inertia([a, b, c])
    assert rel == {a["case_id"]: 2.0, b["case_id"]: 1.0, c["case_id"]: 1.0}


# ------------------------------------------------------------------- methods

def _board_rows():
    rows = []
    # baseline empties: seed 0 -> (1, 1), seed 1 -> (2, 2), seed 2 -> (4, 2): per-seed means 1, 2, 3
    for seed, (e1, e2) in enumerate([(1, 1), (2, 2), (4, 2)]):
        rows.append(case("fairseq", "d1", seed, n_empty_final=e1, rounds_total=10, inertia=2.0, seconds_total=1.0))
        rows.append(case("fairseq", "d2", seed, n_empty_final=e2, rounds_total=20, inertia=4.0, seconds_total=3.0))
        rows.append(case("pg", "d1", seed, n_empty_final=0, rounds_total=1, inertia=1.0, seconds_total=2.0))
        rows.append(case("pg", "d2", seed, n_empty_final=0, rounds_total=3, inertia=2.0, seconds_total=2.0))
    rows.append(case("sklearn", "d1", 0, n_empty_final=0, rounds_total=5, inertia=1.0, seconds_total=0.5))
    rows.append(case("sklearn", "d2", 0, status="error", error="boom"))
    rows.append(case("faiss", "d1", 0, status="timeout"))
    return rows


def test_find_method_by_label_or_combination():
    rows = _board_rows()
    assert tables.find_method(rows, "fairseq") == FS
    assert tables.find_method(rows, "fairseq+fairseq") == FS
    assert tables.find_method(rows, "kmeans+++sklearn") == SK
    assert tables.find_method(rows, "nope") is None


# ------------------------------------------------------------------- paper views

def _layer_rows():
    params = {"path": "/ckpt/roberta/", "preset": "paper-15.90"}

    def layer(method, name, ltype, empties, seed=0, status="ok"):
        return case(method, name, seed, status=status, layer=name, layer_type=ltype, source="checkpoint",
                    source_params=params, **({"n_empty_final": empties} if status == "ok" else {}))

    return [layer("fairseq", "l0.q", "attn_q", 3), layer("fairseq", "l1.q", "attn_q", 5),
            layer("fairseq", "l0.fc1", "fc1", 1), layer("fairseq", "emb", "embedding", 0),
            layer("pg", "l0.q", "attn_q", 0), layer("pg", "l1.q", "attn_q", 1), layer("pg", "l0.fc1", "fc1", 0),
            layer("pg", "emb", "embedding", 0), layer("pg", "l2.q", "attn_q", None, status="error"),
            layer("pg", "w", None, 2),                              # a weight layer without a type
            case("pg", "not-a-layer", n_empty_final=9)]             # no layer: in neither table


def test_layer_type_table_averages_per_type_in_the_papers_order():
    got = tables.layer_type_table(_layer_rows())
    assert {r["setting"] for r in got} == {"roberta · paper-15.90"}
    cells = {(r["layer_name"], r["method"]): (r["mean_empty"], r["n"]) for r in got}
    assert cells == {("Embedding", FS): (0, 1), ("q_proj", FS): (4, 2), ("FC1", FS): (1, 1),
                     ("Embedding", PG): (0, 1), ("q_proj", PG): (0.5, 2), ("FC1", PG): (0, 1),
                     ("untyped", PG): (2, 1)}
    assert [r["layer_name"] for r in got if r["method"] == PG] == ["Embedding", "q_proj", "FC1", "untyped"]


def test_layer_share_table_counts_layers_left_with_empties():
    got = {r["method"]: r for r in tables.layer_share_table(_layer_rows())}
    assert (got[FS]["n_layers"], got[FS]["n_with_empty"], got[FS]["share_pct"]) == (4, 3, 75.0)
    assert (got[PG]["n_layers"], got[PG]["n_with_empty"]) == (5, 2)        # the failed layer is not counted
    assert got[PG]["share_pct"] == approx(40.0)


def test_resolution_table_rounds_time_and_ratios_to_the_baseline():
    rows = []
    for seed in (0, 1):
        rows.append(case("fairseq", "d", seed, rounds_total=40, seconds_resolve=3.8, seconds_total=7.6,
                         n_empty_assigned_per_iter=[2, 1, 0], rounds_per_iter=[30, 10, 0]))
        rows.append(case("pg", "d", seed, rounds_total=5, seconds_resolve=1.0, seconds_total=4.0,
                         n_empty_assigned_per_iter=[2, 0, 0], rounds_per_iter=[5, 0, 0]))
        rows.append(case("sklearn", "d", seed, rounds_total=0, seconds_resolve=0.0, seconds_total=1.0,
                         n_empty_assigned_per_iter=[0, 0, 0], rounds_per_iter=[0, 0, 0]))
    got = {r["method"]: r for r in tables.resolution_table(rows)}
    fs, pg, sk = got[FS], got[PG], got[SK]
    assert (fs["n"], fs["n_resolving"], fs["rounds"].mean, fs["rounds_per_iter"]) == (2, 2, 40, 20)
    assert fs["resolve_share"] == approx(0.5) and fs["speedup"] is None and fs["n_pairs"] == 0
    assert (pg["fewer_rounds"], pg["speedup"], pg["n_pairs"]) == (8.0, approx(3.8), 2)
    assert pg["rounds_per_iter"] == 5 and pg["resolve_share"] == approx(0.25)
    assert sk["n_resolving"] == 0 and sk["rounds_per_iter"] is None and math.isinf(sk["fewer_rounds"])


def test_curve_table_means_per_iteration_from_columns_and_traces():
    a = case("pg", "d1", n_empty_assigned_per_iter=[4, 2], n_empty_per_iter=[1, 0], inertia=2.0)
    b = case("pg", "d2", n_empty_assigned_per_iter=[2, 0, 0], n_empty_per_iter=[1, 0, 0], inertia=5.0)
    got = tables.curve_table([a, b])
    assert [(r["iteration"], r["n_cases"], r["n_empty_assigned"], r["n_empty_resolved"]) for r in got] == \
        [(0, 2, 3, 1), (1, 2, 1, 0), (2, 1, 0, 0)]
    assert all(r["inertia_rel"] is None for r in got)
    traces = {a["case_id"]: [{"iteration": 0, "n_empty_assigned": 4, "n_empty_resolved": 1, "inertia": 6.0}]}
    got = tables.curve_table([a], traces)          # inertia 6 against the best final inertia 2
    assert got == [{"method": PG, "iteration": 0, "n_cases": 1, "n_empty_assigned": 4, "n_empty_resolved": 1,
                    "inertia_rel": 3.0}]


def test_size_and_centroid_index_tables():
    rows = [case("pg", "g", 0, size_min=0, size_max=30, size_cv=0.5, centroid_index=2),
            case("pg", "g", 1, size_min=10, size_max=10, size_cv=0.1, centroid_index=0),
            case("fairseq", "g", 0, status="error")]
    (sizes,) = tables.size_table(rows)               # n/k = 10
    assert (sizes["n"], sizes["min_rel"], sizes["max_rel"], sizes["share_empty"]) == (2, 0.5, 2.0, 0.5)
    assert sizes["size_cv"] == approx(0.3)
    assert tables.centroid_index_table(rows) == [{"dataset": "g", "method": PG, "n": 2, "mean_ci": 1.0, "n_zero": 1}]


def test_summary_parts():
    rows = _board_rows()
    assert summary.status_counts(rows) == {"error": 1, "ok": 13, "timeout": 1}
    failed = summary.failed_cases(rows)
    assert [(f["method"], f["status"], f["error"]) for f in failed] == [(SK, "error", "boom"),
                                                                        ("random + faiss", "timeout", "")]
    prov = summary.provenance(rows)
    assert prov["suites"] == ["t"] and prov["commits"] == ["abc123"] and prov["devices"] == ["cpu"]
    assert prov["versions"] == {"numpy": ["2.4"], "torch": ["2.13.0"]}


def test_downstream_table_scores_intervals_and_best():
    def d(init, resolve, ratio, task, value, seed=0, **extra):   # the GLUE stage's columns
        return {"task": task, "metric_name": "accuracy", "metric": value, "accuracy": value, "status": "ok",
                "compression_ratio": ratio, "size_mb": 40.0, "init": init, "resolve": resolve, "consolidate": None,
                "method": resolve or "float", "seed": seed, **extra}

    drows = [d(None, None, 1.0, "MNLI", 87.8), d("fairseq", "fairseq", 11.81, "MNLI", 83.0),
             d("fairseq", "fairseq", 11.81, "MNLI", 83.2, seed=1), d("pg", "pg", 11.81, "MNLI", 83.9),
             d("pg", "pg", 11.81, "RTE", 70.8), d("pg", "pg", 11.81, "RTE", None, seed=1, status="error", error="x"),
             d("pg", "pg", 11.81, "CoLA", 55.0, metric_name="matthews", accuracy=80.0)]
    got = {(r["method"], r["compression_ratio"], r["task"]): r for r in tables.downstream_table(drows)}
    assert list(got)[0] == ("original", 1.0, "MNLI")
    fs = got[(FS, 11.81, "MNLI")]["score"]
    assert fs.mean == approx(83.1) and fs.n == 2 and fs.half_width == approx(T1 * 0.1)
    assert got[(PG, 11.81, "MNLI")]["best"] and not got[(FS, 11.81, "MNLI")]["best"]
    assert got[("original", 1.0, "MNLI")]["best"] and got[(PG, 11.81, "RTE")]["score"].n == 1   # failure left out
    assert (got[(PG, 11.81, "CoLA")]["score"].mean, got[(PG, 11.81, "CoLA")]["metric"]) == (55.0, "matthews")
    assert [(f["task"], f["error"]) for f in tables.downstream_failed(drows)] == [("RTE", "x")]
    # the columns named in the first plan: ``metric`` a name, the value in ``accuracy``
    assert tables.downstream_score({"metric": "accuracy", "accuracy": 80.5}) == (80.5, "accuracy")
    # iPQ-staged rows are their own method, not averaged with one-shot quantization
    staged = drows + [d("pg", "pg", 11.81, "MNLI", 86.0, ipq_stages=1)]
    got = {(r["method"], r["compression_ratio"], r["task"]): r for r in tables.downstream_table(staged)}
    assert got[(PG, 11.81, "MNLI")]["score"].mean == approx(83.9)
    assert got[(PG + " (iPQ stages)", 11.81, "MNLI")]["score"].mean == approx(86.0)


# --------------------------------------------------------------------- the page

class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.h2, self._in_h2 = [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_h2 = tag == "h2"

    def handle_endtag(self, tag):
        self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.h2.append(data.strip())


SECTIONS = ["Verdict", "Results per data set", "The paper's numbers beside this run's", "Summary", "Empty clusters per layer type", "Share of layers with empty clusters",
            "Empty-cluster resolution: rounds and time", "The paper's claims in comparable units",
            "Accuracy against compression ratio", "Per-iteration curves",
            "Cluster-size distributions", "Centroid index on ground-truth sets"]


def _report(tmp_path, rows, name="r.html", *extra):
    make_store(tmp_path / "res", rows)
    out = tmp_path / name
    assert main(["report", str(tmp_path / "res"), "-o", str(out), *extra]) == 0
    html = out.read_text(encoding="utf-8")
    parsed = _Tags()
    parsed.feed(html)
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert parsed.h2 == SECTIONS
    assert "script" not in parsed.tags and "http://" not in html and "https://" not in html  # self-contained
    return html, parsed


def test_report_of_an_empty_store_says_so(tmp_path):
    html, parsed = _report(tmp_path, [])
    assert "The result store holds no cases" in html and "img" not in parsed.tags
    assert "No downstream results: this store has no" in html


def test_report_of_only_failed_cases_lists_them(tmp_path):
    rows = [case("pg", status="error", error="ValueError: bad k"), case("fairseq", status="timeout")]
    html, parsed = _report(tmp_path, rows)
    assert "every case failed" in html and "ValueError: bad k" in html and "timeout: 1" in html
    assert "img" not in parsed.tags


def test_report_escapes_store_text(tmp_path, capsys):
    evil = "<script>alert(1)</script>"
    rows = sample_rows() + [case("pg", "x<b>y</b>", 7, status="error", error=f"RuntimeError: {evil}")]
    html, parsed = _report(tmp_path, rows)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and evil not in html
    assert "x&lt;b&gt;y&lt;/b&gt;" in html and "script" not in parsed.tags and "b" not in parsed.tags
    assert "0.23 MB" not in capsys.readouterr().err


def test_report_of_a_full_store(tmp_path, capsys):
    html, parsed = _report(tmp_path, sample_rows(), "full.html", "--baseline", "fairseq")
    assert parsed.tags.count("img") == 4          # Pareto front, resolution, curves, sizes (no downstream)
    assert "Ranking rule." not in html and "Student-t" not in html and "symlog" not in html
    assert "Wins, ties and losses against the baseline fairseq + fairseq" in html
    assert "paired bootstrap" in html and "geometric mean" in html
    assert "Average empty clusters per layer type: model.pt · paper-11.81" in html
    assert "RuntimeError: out of memory" in html and "q_proj" in html
    assert "21 cases" in capsys.readouterr().out


def test_report_reads_the_downstream_table(tmp_path):
    res = make_store(tmp_path / "res", sample_rows()[:4])
    add_downstream(res)
    assert load(res).downstream[0]["task"] == "MNLI"
    out = tmp_path / "d.html"
    assert main(["report", str(res), "-o", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert "No downstream results" not in html and "<strong>83.9</strong>" in html and "477.94" in html
    assert "MNLI (accuracy)" in html and html.count("<img") == 5
    assert "Failed downstream rows (1" in html and "CUDA &lt;oom&gt;" in html


# ------------------------------------------------------------------------ compare

def _stores(tmp_path, rows_a, rows_b):
    a, b = make_store(tmp_path / "a", rows_a, traces=False), make_store(tmp_path / "b", rows_b, traces=False)
    return str(a), str(b)


def test_compare_passes_without_regression_and_fails_on_one(tmp_path, capsys):
    base = [case("pg", "d1", 0, n_empty_final=2, inertia=1.0), case("fairseq", "d1", 0, n_empty_final=4)]
    same = [dict(r) for r in base]
    a, b = _stores(tmp_path / "same", base, same)
    assert main(["compare", a, b]) == 0
    assert "no regression" in capsys.readouterr().out
    worse = [dict(base[0], n_empty_final=3), dict(base[1])]          # +50% for pg, beyond 10%
    a, b = _stores(tmp_path / "worse", base, worse)
    assert main(["compare", a, b]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "n_empty_final" in out
    assert main(["compare", a, b, "--threshold", "0.6"]) == 0        # within a 60% threshold
    assert main(["compare", a, b, "--metric", "inertia"]) == 0       # another metric did not move


def test_compare_matches_by_method_dataset_seed_when_ids_differ(tmp_path):
    timed = dict(repeats=3, seconds_spread=0.0)      # timings are judged only with repeats (tests/test_compare.py)
    rows_a = [case("pg", "d1", 0, seconds_total=1.0, **timed), case("pg", "d2", 0, seconds_total=1.0, **timed)]
    rows_b = [case("pg", "d1", 0, seconds_total=1.05, **timed), case("pg", "d2", 0, seconds_total=2.0, **timed)]
    got = compare_mod.compare(rows_a, rows_b, metrics=("seconds_total",), threshold=0.1)
    assert (got.by_id, got.by_key, got.only_a, got.only_b) == (0, 2, 0, 0)
    (per_method, overall) = got.changes
    assert per_method.change == approx(0.525) and per_method.regression and got.regressed
    assert overall.method == compare_mod.ALL


def test_compare_counts_newly_failed_cases_and_zero_baselines(tmp_path):
    a_rows = [case("pg", "d1", 0, n_empty_final=0)]
    b_rows = [dict(a_rows[0], n_empty_final=1)]
    got = compare_mod.compare(a_rows, b_rows, metrics=("n_empty_final",))
    assert math.isinf(got.changes[0].change) and got.regressed        # 0 -> 1 empty cluster
    failed = compare_mod.compare(a_rows, [case("pg", "d1", 0, status="error", error="x")])
    assert failed.newly_failed and failed.regressed and not failed.changes
    with pytest.raises(ValueError, match="no case"):
        compare_mod.compare(a_rows, [case("pg", "other", 0)])
    a, b = _stores(tmp_path, a_rows, [case("pg", "d1", 0, status="error", error="x")])
    assert main(["compare", a, b]) == 1
