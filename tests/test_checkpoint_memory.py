"""A checkpoint worker holds one layer at a time: mapped safetensors, sub-vectors cut on demand (issue 12)."""

from __future__ import annotations

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from pgbench import checkpoints, sources
from pgbench.pq import weight_to_subvectors
from pgbench.sources import checkpoint as source


def _write(tmp_path):
    g = torch.Generator().manual_seed(0)
    tensors = {"model.layers.0.fc1.weight": torch.randn(64, 32, generator=g),
               "model.layers.0.fc2.weight": torch.randn(32, 64, generator=g).to(torch.bfloat16),
               "model.layers.0.fc1.bias": torch.zeros(64), "steps": torch.tensor(3, dtype=torch.int64)}
    path = tmp_path / "m.safetensors"
    save_file(tensors, str(path))
    return path, tensors


def test_mapped_tensors_equal_the_stored_ones_and_leave_the_file_alone(tmp_path):
    path, tensors = _write(tmp_path)
    before = path.read_bytes()
    ckpt = checkpoints.load_checkpoint(path)
    with safe_open(str(path), framework="pt") as f:
        for name in tensors:
            assert ckpt.tensors[name].dtype == tensors[name].dtype
            assert torch.equal(ckpt.tensors[name], f.get_tensor(name))
    ckpt.tensors["model.layers.0.fc1.weight"][0, 0] = 123.0       # copy-on-write: the file is unchanged
    assert path.read_bytes() == before


def test_layer_sub_vectors_are_cut_on_demand_one_layer_at_a_time(tmp_path):
    path, tensors = _write(tmp_path)
    layers = list(sources.load("checkpoint", path=str(path), preset="fairseq"))
    assert [ds.name for ds in layers] == ["model.layers.0.fc1", "model.layers.0.fc2"]
    fc1, fc2 = layers
    X1 = fc1.X
    assert torch.equal(X1, weight_to_subvectors(tensors["model.layers.0.fc1.weight"], 8))
    assert fc1.X is X1                                   # kept while it is the last layer asked for
    X2 = fc2.X
    assert X2.dtype == torch.float32 and torch.equal(X2, weight_to_subvectors(
        tensors["model.layers.0.fc2.weight"].float(), 8))
    assert source._last_cut[0] is fc2                  # the slot now holds fc2 only
    assert fc1.X is not X1 and torch.equal(fc1.X, X1)  # cut again, same values
