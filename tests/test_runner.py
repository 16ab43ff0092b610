"""Running suites: inline and process executors, timeouts, errors, resume after kills, SLURM via submitit."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from pgbench.cases import expand
from pgbench.cli import main
from pgbench.runner import run_suite
from pgbench.store import Store
from pgbench.suite import load_suite
from procs import rows_in, start


SUITE = """
[suite]
name = "rt"
seeds = [0]
n_iter = 3
timeout = 60
imports = ["pgbench_testplugin"]

[[methods]]
label = "pg"
init = "pg"
resolve = "pg"

[[methods]]
label = "fairseq"
init = "fairseq"
resolve = "fairseq"

[[methods]]
label = "boom"
init = "test_boom"
resolve = "none"

[[sources]]
name = "tiny"
params = { n_sets = 2 }

[[sources]]
name = "tiny"
label = "layer"
params = { weights = true, n = 40, d = 4, k = 5 }
"""



def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


def stored(results: Path) -> list[dict]:
    with Store(results) as st:
        return st.rows()


def test_inline_run_measures_and_resumes(plugin, tmp_path):
    expansion = expand(load_suite(write(tmp_path, SUITE)))
    seen = []
    summary = run_suite(expansion, tmp_path / "res", executor="inline", on_result=lambda r, s: seen.append(s))
    assert summary.total == summary.ran == len(seen) == 9 and all(seen)
    assert summary.counts == {"ok": 6, "error": 3} and summary.missing == 0
    rows = {(r["method"], r["source"] if r["layer"] is None else "layer", r["dataset"]): r
            for r in stored(tmp_path / "res")}
    boom = rows[("boom", "tiny", "set0")]
    assert boom["error"] == "RuntimeError: boom: the test heuristic always fails" and boom["n_empty_final"] is None
    pg = rows[("pg", "tiny", "set0")]
    assert pg["status"] == "ok" and pg["n"] == 60 and pg["d"] == 2 and pg["k"] == 3 and pg["n_iter"] == 3
    assert len(json.loads(pg["n_empty_per_iter"])) == 3 == len(json.loads(pg["rounds_per_iter"]))
    assert pg["centroid_index"] == 0 and pg["rel_error"] is None and pg["size_min"] + pg["size_max"] > 0
    assert set(json.loads(pg["versions"])) == {"torch", "faiss", "sklearn", "numpy", "pgbench", "python"}
    assert json.loads(pg["params"])["resolve"]["max_passes"] == 15
    layer = rows[("fairseq", "layer", "set0")]
    assert layer["layer"] == "set0" and layer["layer_type"] == "fc1"
    assert 0 <= layer["rel_error"] < 1 and layer["centroid_index"] is None
    with Store(tmp_path / "res") as st:
        assert len(st.trace(pg["case_id"])) == 3
    again = run_suite(expansion, tmp_path / "res", executor="inline")
    assert again.ran == 0 and again.already == 9 and again.counts == summary.counts
    retried = run_suite(expansion, tmp_path / "res", executor="inline", retry=("error",))
    assert retried.ran == 3 and retried.counts == summary.counts


def test_process_executor_timeout_error_and_dead_worker(plugin, tmp_path):
    text = SUITE.replace("timeout = 60", "timeout = 4") + """
[[methods]]
label = "sleepy"
init = "test_sleep"
resolve = "none"
init_params = { seconds = 60.0 }

[[methods]]
label = "die"
init = "test_die"
resolve = "none"

[[cases]]
method = "pg"
source = "tiny"
[[cases]]
method = "boom"
source = "tiny"
[[cases]]
method = "sleepy"
source = "layer"
[[cases]]
method = "die"
source = "layer"
"""
    expansion = expand(load_suite(write(tmp_path, text)))
    started = time.monotonic()
    summary = run_suite(expansion, tmp_path / "res", executor="local", jobs=2)
    assert time.monotonic() - started < 50
    assert summary.counts == {"ok": 2, "error": 3, "timeout": 1}
    by_method = {r["method"]: r for r in stored(tmp_path / "res")}
    assert by_method["sleepy"]["error"] == "exceeded the 4 s timeout" and by_method["sleepy"]["seconds_total"] >= 4
    assert by_method["die"]["error"] == "worker process died (exit code 3)"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_run_resumes_without_loss_or_duplicates(plugin, tmp_path, sig):
    text = """
[suite]
name = "killme"
seeds = [0, 1]
n_iter = 2
timeout = 60
imports = ["pgbench_testplugin"]
[[methods]]
label = "slow"
init = "test_sleep"
resolve = "none"
init_params = { seconds = 0.25 }
[[methods]]
label = "pg"
init = "pg"
resolve = "pg"
[[sources]]
name = "tiny"
params = { n_sets = 4 }
"""
    suite = write(tmp_path, text)
    results = tmp_path / "res"
    expected = {c.case_id for c in expand(load_suite(suite)).cases}
    assert len(expected) == 16
    args = ["run", str(suite), "--results", str(results), "--no-progress"]
    proc = start(args)                                  # SIGINT at its default, whatever pytest got
    deadline = time.monotonic() + 90
    while rows_in(results / "results.sqlite") < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    if proc.poll() is not None:
        pytest.fail(f"the run finished (status {proc.returncode}) before it could be interrupted")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    n_before = rows_in(results / "results.sqlite")
    if proc.returncode == 0 and n_before == 16:
        pytest.fail("the run finished all 16 cases before the signal took effect (too fast, or SIGINT ignored)")
    assert proc.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 130), f"wrong exit status: {err}"
    assert 3 <= n_before < 16
    rerun = start(args)
    _, rerun_err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, rerun_err
    assert f"{n_before} already in" in rerun_err
    ids = [r["case_id"] for r in stored(results)]
    assert len(ids) == len(set(ids)) == 16 and set(ids) == expected
    with Store(results) as st:
        n_trace = st._conn.execute("SELECT COUNT(*) FROM trace").fetchone()[0]
    assert n_trace == 16 * 2


def test_slurm_executor_with_submitit_local(plugin, tmp_path):
    pytest.importorskip("submitit")
    text = SUITE[:SUITE.index('label = "layer"')].rstrip().removesuffix("[[sources]]\nname = \"tiny\"")
    suite = load_suite(write(tmp_path, text + "\n[slurm]\ncases_per_task = 4\n"))
    assert suite.slurm == {"cases_per_task": 4}
    expansion = expand(suite)
    summary = run_suite(expansion, tmp_path / "res", executor="slurm", slurm=suite.slurm, cluster="local")
    assert summary.counts == {"ok": 4, "error": 2} and summary.ran == 6
    assert not list((tmp_path / "res" / "spool").glob("*.json"))
    tasks = [p for p in (tmp_path / "res" / "submitit").iterdir() if p.name != "%j"]
    assert len(tasks) == 2                                  # 6 cases in array tasks of at most 4


def test_slurm_parameters():
    from pgbench.executors import SlurmExecutor, batches

    class C:  # just what batching and the parameters read
        def __init__(self, key, device="cpu"):
            self.data_key, self.timeout, self.device = key, 60.0, device

    groups = batches([C("a"), C("a"), C("a"), C("b", "cuda")], per_task=2)
    assert [len(g) for g in groups] == [2, 1, 1]
    params = SlurmExecutor(Path("."), {"partition": "gpu", "array_parallelism": 8, "additional": {"x": 1}}
                           ).submitit_parameters(groups)
    assert params["gpus_per_node"] == 1 and params["slurm_partition"] == "gpu"
    assert params["slurm_array_parallelism"] == 8 and params["slurm_additional_parameters"] == {"x": 1}
    assert params["timeout_min"] == 8                                      # 1.5 x 120 s, + 5 min


# --------------------------------------------------------------------------- CLI

def test_cli_validate_run_export(plugin, tmp_path, capsys):
    suite = write(tmp_path, SUITE)
    assert main(["validate", str(suite)]) == 0
    assert "ok, 9 cases" in capsys.readouterr().out
    res = tmp_path / "res"
    assert main(["run", str(suite), "--results", str(res), "--executor", "inline", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "rt: 9 cases: error 3, ok 6 (ran 9 now, 0 stored before)" in out
    assert main(["export", str(res), "--csv", str(tmp_path / "r.csv"), "--parquet", str(tmp_path / "r.parquet")]) == 0
    assert "9 cases" in capsys.readouterr().out
    assert (tmp_path / "r.csv").read_text().count("\n") == 10
    assert main(["export", str(tmp_path / "nothing"), "--csv", str(tmp_path / "x.csv")]) == 2


def test_cli_bad_suite_runs_nothing(plugin, tmp_path, capsys):
    suite = write(tmp_path, SUITE.replace('resolve = "pg"', 'resolve = "pgg"'))
    res = tmp_path / "res"
    assert main(["run", str(suite), "--results", str(res)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{suite}: [[methods]] 'pg': unknown resolve heuristic 'pgg'" in err
    assert not res.exists()


def test_cuda_request_without_cuda_runs_nothing(plugin, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    res = tmp_path / "res"
    assert main(["run", str(write(tmp_path, SUITE)), "--results", str(res), "--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err and not res.exists()


def test_cli_sysinfo(capsys):
    assert main(["sysinfo", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"versions", "git_commit", "torch_threads", "blas", "cuda", "faiss"} <= set(info)
    assert info["faiss"]["installed"] and "gpu_support" in info["faiss"]
    assert main(["sysinfo"]) == 0 and "versions.torch" in capsys.readouterr().out
