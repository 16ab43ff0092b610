"""Tests for pgbench.pq: fairseq-exact PQ reshape, decode, size accounting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pgbench.pq import (
    BYTES_PER_MB,
    LayerSize,
    compression_ratio,
    reconstruct_weight,
    relative_error,
    size_mb,
    subvectors_to_weight,
    weight_to_subvectors,
)


def fairseq_em_matrix(weight: torch.Tensor, b: int) -> torch.Tensor:
    """fairseq's (b, N) EM matrix, from the recipe in baselines.md section 1.2."""
    return weight.reshape(weight.shape[0], -1, b).permute(2, 1, 0).flatten(1, 2)


# ------------------------------------------------------------ hand-checked cases

def test_linear_3x4_b2_rows_written_out():
    w = torch.arange(12.0).reshape(3, 4)
    # [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    expected = torch.tensor([
        [0.0, 1.0],    # j=0, o=0
        [4.0, 5.0],    # j=0, o=1
        [8.0, 9.0],    # j=0, o=2
        [2.0, 3.0],    # j=1, o=0
        [6.0, 7.0],    # j=1, o=1
        [10.0, 11.0],  # j=1, o=2
    ])
    sv = weight_to_subvectors(w, 2)
    assert torch.equal(sv, expected)
    assert torch.equal(subvectors_to_weight(sv, (3, 4)), w)


def test_linear_block_equals_row_length_gives_rows():
    w = torch.arange(6.0).reshape(2, 3)
    assert torch.equal(weight_to_subvectors(w, 3), w)


def test_linear_block_one_is_column_major_flatten():
    w = torch.arange(6.0).reshape(2, 3)
    # j major, o minor -> weight.T flattened
    assert torch.equal(weight_to_subvectors(w, 1).flatten(), torch.tensor([0.0, 3, 1, 4, 2, 5]))


def test_conv_block_straddles_kernel_rows():
    # (C_out=2, C_in=3, kh=1, kw=2): each filter flattens to 6 values; b=3 crosses kw.
    w = torch.arange(12.0).reshape(2, 3, 1, 2)
    expected = torch.tensor([
        [0.0, 1.0, 2.0],    # j=0, filter 0
        [6.0, 7.0, 8.0],    # j=0, filter 1
        [3.0, 4.0, 5.0],    # j=1, filter 0
        [9.0, 10.0, 11.0],  # j=1, filter 1
    ])
    sv = weight_to_subvectors(w, 3)
    assert torch.equal(sv, expected)
    assert torch.equal(subvectors_to_weight(sv, w.shape), w)


def test_conv_3x3_b9_one_subvector_per_input_channel():
    w = torch.randn(4, 5, 3, 3)
    sv = weight_to_subvectors(w, 9)
    assert sv.shape == (20, 9)
    # row j*C_out + o is filter o, input channel j
    for j in range(5):
        for o in range(4):
            assert torch.equal(sv[j * 4 + o], w[o, j].flatten())


def test_is_transpose_of_fairseq_em_matrix():
    w = torch.randn(6, 8)
    assert torch.equal(weight_to_subvectors(w, 4), fairseq_em_matrix(w, 4).T)
    c = torch.randn(3, 2, 2, 2)
    assert torch.equal(weight_to_subvectors(c, 4), fairseq_em_matrix(c, 4).T)


def test_keeps_dtype_and_is_a_copy():
    w = torch.arange(8, dtype=torch.float64).reshape(2, 4)
    sv = weight_to_subvectors(w, 2)
    assert sv.dtype == torch.float64 and sv.is_contiguous()
    sv[0, 0] = 100.0
    assert w[0, 0] == 0.0


def test_reconstruct_hand_example():
    centroids = torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]])
    assignments = torch.tensor([1, 2, 0, 0, 1, 2])  # rows j*out+o, out=3, two blocks
    w = reconstruct_weight(centroids, assignments, (3, 4))
    expected = torch.tensor([
        [1.0, 2.0, 0.0, 0.0],
        [3.0, 4.0, 1.0, 2.0],
        [0.0, 0.0, 3.0, 4.0],
    ])
    assert torch.equal(w, expected)


def test_reconstruct_identity_codebook_reproduces_weight():
    w = torch.randn(5, 6)
    sv = weight_to_subvectors(w, 3)
    w_hat = reconstruct_weight(sv.clone(), torch.arange(sv.shape[0]), w.shape)
    assert torch.equal(w_hat, w)
    assert relative_error(w, w_hat) == 0.0


def test_reconstruct_accepts_int32_assignments():
    centroids = torch.tensor([[1.0, 2.0]])
    w = reconstruct_weight(centroids, torch.zeros(2, dtype=torch.int32), (1, 4))
    assert torch.equal(w, torch.tensor([[1.0, 2.0, 1.0, 2.0]]))


# ----------------------------------------------------------------- size accounting

def test_compression_ratio_768x768_b4_k256():
    layer = LayerSize(768 * 768, 4, 256)
    assert layer.n_subvectors == 147456
    assert layer.original_bytes == 768 * 768 * 4 == 2_359_296
    assert layer.index_bytes == 147456 * 8 / 8 == 147_456
    assert layer.centroid_bytes == 256 * 4 * 2 == 2048
    assert layer.compressed_bytes == 149_504
    assert layer.bits_per_weight == 2.0
    assert compression_ratio([layer]) == pytest.approx(2_359_296 / 149_504)


def test_other_params_counted_fp32_on_both_sides():
    layer = LayerSize(768 * 768, 4, 256)
    ratio = compression_ratio([layer], other_params=768)
    assert ratio == pytest.approx((2_359_296 + 3072) / (149_504 + 3072))
    assert size_mb([layer], 768) == pytest.approx((149_504 + 3072) / 2**20)
    assert size_mb([layer], 768, compressed=False) == pytest.approx((2_359_296 + 3072) / 2**20)
    assert BYTES_PER_MB == 2**20


def test_log2_not_rounded_up_like_fairseq():
    # k=100: fairseq's np.log2(100) = 6.64 bits, not ceil -> 7
    layer = LayerSize(800, 8, 100)
    assert layer.index_bytes == pytest.approx(100 * math.log2(100) / 8)
    assert layer.bits_per_weight == pytest.approx(math.log2(100) / 8)


def test_several_layers_sum():
    a, b = LayerSize(3072 * 768, 8, 256), LayerSize(768 * 768, 4, 256)
    expected = (a.original_bytes + b.original_bytes) / (a.compressed_bytes + b.compressed_bytes)
    assert compression_ratio([a, b]) == pytest.approx(expected)
    assert compression_ratio([], other_params=10) == 1.0


def test_layer_size_from_weight():
    w = torch.zeros(4, 2, 3, 3)
    assert LayerSize.from_weight(w, 9, 16) == LayerSize(72, 9, 16)
    with pytest.raises(ValueError, match="row length"):
        LayerSize.from_weight(torch.zeros(4, 6), 4, 16)  # 24 % 4 == 0 but 6 % 4 != 0


def test_relative_error_hand_value():
    w = torch.tensor([[3.0, 4.0]])
    assert relative_error(w, torch.tensor([[3.0, 1.0]])) == pytest.approx(3.0 / 5.0)


# ----------------------------------------------------------------------- bad input

@pytest.mark.parametrize("weight,b,match", [
    (torch.zeros(3, 4), 3, r"block_size=3 .*\(3, 4\)"),
    (torch.zeros(2, 3, 2, 2), 5, r"block_size=5 .*C_in\*kh\*kw=12.*\(2, 3, 2, 2\)"),
    (torch.zeros(3, 4), 0, "positive integer"),
    (torch.zeros(3, 4), 2.0, "positive integer"),
    (torch.zeros(3, 4), True, "positive integer"),
    (torch.zeros(12), 2, "2-D .* or 4-D"),
    (torch.zeros(2, 3, 4), 2, "2-D .* or 4-D"),
    (torch.zeros(0, 4), 2, "positive integers"),
    (np.zeros((3, 4)), 2, "torch.Tensor"),
])
def test_weight_to_subvectors_rejects(weight, b, match):
    with pytest.raises(ValueError, match=match):
        weight_to_subvectors(weight, b)


@pytest.mark.parametrize("sv,shape,match", [
    (torch.zeros(6, 2), (3, 5), "does not divide"),
    (torch.zeros(5, 2), (3, 4), "hold 10 values"),
    (torch.zeros(12), (3, 4), "2-D"),
    (torch.zeros(6, 2), (12,), "2-D .* or 4-D"),
    (torch.zeros(6, 2), (3, -4), "positive integers"),
    (torch.zeros(6, 2), 12, "sequence"),
])
def test_subvectors_to_weight_rejects(sv, shape, match):
    with pytest.raises(ValueError, match=match):
        subvectors_to_weight(sv, shape)


@pytest.mark.parametrize("c,a,match", [
    (torch.zeros(2, 2), torch.tensor([0, 1, 2, 0, 1, 0]), r"\[0, 2\)"),
    (torch.zeros(2, 2), torch.tensor([0, 1, -1, 0, 1, 0]), r"\[0, 2\)"),
    (torch.zeros(2, 2), torch.zeros(6), "integer dtype"),
    (torch.zeros(2, 2), torch.zeros(6, dtype=torch.bool), "integer dtype"),
    (torch.zeros(2, 2), torch.zeros(2, 3, dtype=torch.long), "1-D"),
    (torch.zeros(2, 2), torch.zeros(5, dtype=torch.long), "hold 10 values"),
    (torch.zeros(4), torch.zeros(6, dtype=torch.long), "centroids must be 2-D"),
    (torch.zeros(2, 3), torch.zeros(4, dtype=torch.long), "does not divide"),
])
def test_reconstruct_rejects(c, a, match):
    with pytest.raises(ValueError, match=match):
        reconstruct_weight(c, a, (3, 4))


@pytest.mark.parametrize("args,match", [
    ((0, 4, 256), "n_params"),
    ((16, 0, 256), "block_size"),
    ((16, 4, 0), "k must"),
    ((18, 4, 256), "does not divide n_params=18"),
    ((16.0, 4, 256), "n_params"),
])
def test_layer_size_rejects(args, match):
    with pytest.raises(ValueError, match=match):
        LayerSize(*args)


def test_ratio_and_error_reject():
    with pytest.raises(ValueError, match="nothing to measure"):
        compression_ratio([])
    with pytest.raises(ValueError, match="other_params"):
        compression_ratio([LayerSize(16, 4, 4)], other_params=-1)
    with pytest.raises(ValueError, match="LayerSize"):
        compression_ratio([(16, 4, 4)])
    with pytest.raises(ValueError, match="same shape"):
        relative_error(torch.ones(2, 2), torch.ones(4))
    with pytest.raises(ValueError, match="all-zero"):
        relative_error(torch.zeros(2, 2), torch.ones(2, 2))
    with pytest.raises(ValueError, match="finite"):
        relative_error(torch.ones(2), torch.tensor([1.0, float("nan")]))


# ----------------------------------------------------------------------- properties

@st.composite
def weight_and_block(draw):
    """A random 2-D or 4-D shape and a block size dividing its row length."""
    if draw(st.booleans()):
        shape = (draw(st.integers(1, 7)), draw(st.integers(1, 12)))
    else:
        shape = (draw(st.integers(1, 4)), draw(st.integers(1, 3)),
                 draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    row = math.prod(shape[1:])
    b = draw(st.sampled_from([d for d in range(1, row + 1) if row % d == 0]))
    seed = draw(st.integers(0, 2**31 - 1))
    w = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    return w, b


@settings(max_examples=150, deadline=None)
@given(weight_and_block())
def test_round_trip_and_fairseq_order(wb):
    w, b = wb
    sv = weight_to_subvectors(w, b)
    out, row = w.shape[0], w[0].numel()
    assert sv.shape == (w.numel() // b, b)
    assert torch.equal(sv, fairseq_em_matrix(w, b).T)
    j, o = divmod(int(sv.shape[0]) - 1, out)  # last row: spot-check the index formula
    assert torch.equal(sv[j * out + o], w[o].flatten()[j * b:(j + 1) * b])
    assert row % b == 0
    assert torch.equal(subvectors_to_weight(sv, w.shape), w)


@settings(max_examples=100, deadline=None)
@given(weight_and_block(), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_reconstruct_is_lookup_then_inverse(wb, k, seed):
    w, b = wb
    g = torch.Generator().manual_seed(seed)
    n = w.numel() // b
    centroids = torch.randn(k, b, generator=g)
    assignments = torch.randint(0, k, (n,), generator=g)
    w_hat = reconstruct_weight(centroids, assignments, w.shape)
    assert w_hat.shape == w.shape
    assert torch.equal(weight_to_subvectors(w_hat, b), centroids[assignments])


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 10_000), st.sampled_from([1, 2, 4, 8]),
       st.sampled_from([2, 16, 256, 1000]), st.integers(0, 10_000))
def test_ratio_matches_sizetracker_formula(n_blocks, b, k, other):
    layer = LayerSize(n_blocks * b, b, k)
    n = n_blocks * b
    original = 4 * n + 4 * other
    compressed = math.log2(k) / b * n / 8 + k * b * 2 + 4 * other
    assert compression_ratio([layer], other) == pytest.approx(original / compressed)
    assert size_mb([layer], other) * BYTES_PER_MB == pytest.approx(compressed)
