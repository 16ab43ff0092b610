"""benchmarks/paper_scale.py: the RoBERTa-base-shaped checkpoint, the run, its summary (issue 12)."""

from __future__ import annotations

import json

import pytest

from benchmarks import paper_scale as ps
from pgbench import checkpoints


def test_roberta_base_shape_types_the_papers_73_layers():
    names = [name.removesuffix(".weight") for name, dims in ps.checkpoint_tensors("roberta-base", 0)
             if len(dims) == 2]
    types = [checkpoints.layer_type(n, "roberta") for n in names]
    typed = [t for t in types if t is not None]
    assert len(typed) == 73
    assert typed.count("embedding") == 1
    assert all(typed.count(t) == 12 for t in ("attn_q", "attn_k", "attn_v", "attn_out", "fc1", "fc2"))
    dims = dict(ps.checkpoint_tensors("roberta-base", 0))
    assert dims["roberta.embeddings.word_embeddings.weight"] == (50_265, 768)
    assert dims["roberta.encoder.layer.11.intermediate.dense.weight"] == (3072, 768)
    assert dims["roberta.encoder.layer.11.output.dense.weight"] == (768, 3072)


def _row(method, layer_type, n, k, seconds):
    return {"method": method, "layer_type": layer_type, "n": n, "k": k, "status": "ok", "seconds_total": seconds,
            "seconds_init": 1.0, "seconds_assign": 0.5}


def test_workloads_of_the_paper_suite():
    counts = ps.workload_counts("roberta-base", shared=False)
    assert sum(counts.values()) == 73 * 4 == 292
    assert counts[("attn_q", 768 * 768 // 4, 3072)] == 12 * 4          # b = 4 at every preset
    assert counts[("fc1", 3072 * 768 // 4, 3072)] == 12 * 3
    assert counts[("fc1", 3072 * 768 // 16, 3072)] == 12
    assert counts[("embedding", 50_265 * 768 // 4, 768)] == 1
    assert counts[("embedding", 50_265 * 768 // 8, 768)] == 3
    shared = ps.workload_counts("roberta-base")                        # one computation per (layer, n, k)
    assert sum(shared.values()) * 7 == 686
    assert shared[("attn_q", 768 * 768 // 4, 3072)] == 12 and shared[("fc1", 3072 * 768 // 4, 3072)] == 12
    assert shared[("embedding", 50_265 * 768 // 8, 768)] == 1


def test_summary_extrapolates_per_method_and_workload():
    q, fc1 = 768 * 768 // 4, 3072 * 768 // 4
    rows = [_row("a", "attn_q", q, 3072, 2.0), _row("a", "attn_q", q, 3072, 4.0),   # mean 3 x 12
            {**_row("a", "attn_q", q, 3072, 4.0), "reused_from": "x"},                # a copy: not timed
            _row("a", "embedding", 50_265 * 192, 768, 10.0),                          # 10 x 1
            _row("b", "fc1", fc1, 3072, 1.0)]                                         # 1 x 12
    s = ps.summarise(rows, "roberta-base", jobs=2)
    assert s["per_method"]["a"]["cases"] == 4 and s["per_method"]["a"]["computed"] == 3
    assert s["per_method"]["a"]["cpu_seconds"] == 16.0
    assert s["per_method"]["a"]["seconds_init"] == 3.0
    assert s["embedding"]["a"]["cases"] == 1 and s["embedding"]["a"]["cpu_seconds"] == 10.0
    x = s["extrapolated"]
    assert x["cpu_seconds_by_method"] == {"a": 3 * 12 + 10.0, "b": 12.0}
    assert x["cpu_seconds"] == 58.0 and x["wall_seconds_at_jobs"] == 29.0
    assert "b|attn_q|n=147456|k=3072" in x["missing"] and "a|attn_q|n=147456|k=3072" not in x["missing"]


def test_checkpoint_is_deterministic_and_reused(tmp_path):
    a = ps.write_checkpoint(tmp_path / "a", "tiny", seed=3)
    b = ps.write_checkpoint(tmp_path / "b", "tiny", seed=3)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert json.loads((a / "config.json").read_text())["model_type"] == "roberta"
    mtime = (a / "model.safetensors").stat().st_mtime_ns
    ps.write_checkpoint(tmp_path / "a", "tiny", seed=3)
    assert (a / "model.safetensors").stat().st_mtime_ns == mtime
    ckpt = checkpoints.load_checkpoint(a)
    W = ckpt.tensors["roberta.encoder.layer.0.intermediate.dense.weight"]
    assert tuple(W.shape) == (384, 128)
    assert float(W.std()) == pytest.approx(0.04, rel=1e-4)


@pytest.mark.slow
def test_runs_the_paper_suite_on_a_tiny_shape(tmp_path, capsys):
    rc = ps.main(["--shape", "tiny", "--out", str(tmp_path), "--tag", "t",
                  "--layers", "word_embeddings|attention.output",
                  "--method", "faiss", "--jobs", "2"])
    assert rc == 0
    s = json.loads((tmp_path / "runs" / "t" / "summary.json").read_text())
    # word_embeddings and attention.output.dense at the four presets
    assert s["statuses"] == {"ok": 8}
    assert s["per_method"]["faiss"]["cases"] == 8
    assert s["embedding"]["faiss"]["cases"] == 4
    assert len(s["mean_seconds_by_workload"]) == 3     # attn_out, embedding at b = 4 and 8
    assert s["wall_seconds"] > 0 and s["peak_rss_tree_bytes"] > s["max_rss_one_process_bytes"] > 0
    assert "extrapolated to the whole suite" in capsys.readouterr().out
