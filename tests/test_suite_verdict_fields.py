"""What a suite tells the report: its primary metric, and the optional sources a run left out.

Both travel through the store (suite -> runner -> store -> report): the primary
metric as a column of every case row, the skipped sources as a table the runner
rewrites for its suite on every run.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from pgbench import store as store_mod
from pgbench.cli import main
from pgbench.suite import SuiteError, load_suite

SUITE = """
[suite]
name = "tiny"
seeds = [0]
n_iter = 3
{head}

[[methods]]
label = "pg"
init = "pg"
resolve = "pg"

[[methods]]
label = "faiss"
init = "random"
resolve = "faiss"

[[sources]]
name = "gaussian_mixture"
params = {{ n = 300, d = 2, n_centers = 4, k = 8 }}

[[sources]]
name = "checkpoint"
label = "absent-model"
params = {{ path = "${{package:no_such_package_pgbench_test}}/model" }}
optional = true
"""


def write(tmp_path, head=""):
    path = tmp_path / "tiny.toml"
    path.write_text(textwrap.dedent(SUITE.format(head=head)), encoding="utf-8")
    return path


def test_primary_metric_defaults_to_the_inertia_ratio(tmp_path):
    assert load_suite(write(tmp_path)).primary_metric == "inertia_ratio"
    assert load_suite(write(tmp_path, 'primary_metric = "rel_error_ratio"')).primary_metric == "rel_error_ratio"


def test_an_unknown_primary_metric_is_refused_at_load(tmp_path):
    with pytest.raises(SuiteError, match=r"\[suite\] primary_metric must be one of inertia_ratio, rel_error_ratio, "
                                         r"got 'speed'"):
        load_suite(write(tmp_path, 'primary_metric = "speed"'))


def test_validate_refuses_an_unknown_primary_metric_with_exit_2(tmp_path, capsys):
    assert main(["validate", str(write(tmp_path, 'primary_metric = 3'))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "primary_metric" in err[0]


def test_the_run_stores_the_primary_metric_and_the_skipped_sources_and_the_report_shows_them(tmp_path):
    suite = write(tmp_path, 'primary_metric = "rel_error_ratio"')
    res = tmp_path / "res"
    assert main(["run", str(suite), "--results", str(res), "--jobs", "1"]) == 0
    with store_mod.Store(res, readonly=True) as st:
        rows = st.rows()
        skipped = st.skipped_sources()
    assert rows and {r["primary_metric"] for r in rows} == {"rel_error_ratio"}
    assert [(s["suite"], s["label"]) for s in skipped] == [("tiny", "absent-model")]
    assert "no_such_package_pgbench_test" in skipped[0]["reason"]

    out, js = tmp_path / "r.html", tmp_path / "v.json"
    assert main(["report", str(res), "-o", str(out), "--json", str(js)]) == 0
    assert json.loads(js.read_text(encoding="utf-8"))["primary_metric"] == "rel_error_ratio"
    html = out.read_text(encoding="utf-8")
    assert "absent-model" in html and "recorded by the runs" in html
    # the command line wins over the suite
    assert main(["report", str(res), "-o", str(out), "--json", str(js), "--primary-metric", "inertia_ratio"]) == 0
    assert json.loads(js.read_text(encoding="utf-8"))["primary_metric"] == "inertia_ratio"


def test_a_later_run_replaces_the_suites_skipped_sources(tmp_path):
    res = tmp_path / "res"
    with store_mod.Store(res) as st:
        st.record_skipped("tiny", [("a", "no data"), ("b", "no package")])
        st.record_skipped("other", [("c", "why")])
        st.record_skipped("tiny", [("b", "no package")])
        assert [s["label"] for s in st.skipped_sources("tiny")] == ["b"]
        assert [(s["suite"], s["label"]) for s in st.skipped_sources()] == [("other", "c"), ("tiny", "b")]


def test_a_store_from_before_the_record_reads_as_not_recorded(tmp_path):
    res = tmp_path / "res"
    with store_mod.Store(res) as st:
        st._conn.execute("DROP TABLE skipped_sources")
    with store_mod.Store(res, readonly=True) as st:
        assert st.skipped_sources() is None
