import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from models.conv import acc_bound, conv_float, conv_w1a2_bitplane, conv_w1a2_direct
from models.network import build_layers, load_network_config
from models.ops import concat_channels, pad_same, space_to_depth, upsample_nearest


def naive_conv(codes, signs):
    """Loop-nest reference: the definition, padding checked by index."""
    h, w, c = codes.shape
    k, _, _, o = signs.shape
    p = k // 2
    out = np.zeros((h, w, o), dtype=np.int64)
    for y in range(h):
        for x in range(w):
            for dy in range(k):
                for dx in range(k):
                    yy, xx = y + dy - p, x + dx - p
                    if 0 <= yy < h and 0 <= xx < w:
                        out[y, x] += codes[yy, xx].astype(np.int64) @ signs[dy, dx].astype(np.int64)
    return out


@st.composite
def conv_case(draw):
    k = draw(st.sampled_from([1, 3]))
    h = draw(st.integers(1, 7))
    w = draw(st.integers(1, 7))
    c = draw(st.integers(1, 70))
    o = draw(st.integers(1, 9))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, (h, w, c)).astype(np.uint8)
    signs = np.where(rng.random((k, k, c, o)) < 0.5, -1, 1).astype(np.int8)
    return codes, signs


@settings(max_examples=60, deadline=None)
@given(conv_case())
def test_two_formulations_agree(case):
    codes, signs = case
    direct = conv_w1a2_direct(codes, signs)
    bitplane = conv_w1a2_bitplane(codes, signs)
    assert direct.dtype == np.int32 and bitplane.dtype == np.int32
    assert np.array_equal(direct, bitplane)
    assert np.array_equal(direct, naive_conv(codes, signs))
    k, _, c, _ = signs.shape
    assert np.abs(direct).max(initial=0) <= acc_bound(k, c)


@settings(max_examples=30, deadline=None)
@given(conv_case(), st.floats(0.01, 3.0))
def test_matches_float_conv_of_dequantized_values(case, alpha):
    codes, signs = case
    acc = conv_w1a2_direct(codes, signs)
    y = conv_float(codes * (2 / 3), signs * alpha)
    assert np.allclose(y, acc * alpha * 2 / 3, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("k", [1, 3])
def test_largest_magnitude_accumulation(k):
    c = 512
    codes = np.full((3, 3, c), 3, dtype=np.uint8)
    plus = np.ones((k, k, c, 2), dtype=np.int8)
    plus[..., 1] = -1
    acc = conv_w1a2_bitplane(codes, plus)
    assert acc[1, 1, 0] == acc_bound(k, c) == 3 * k * k * c
    assert acc[1, 1, 1] == -acc_bound(k, c)
    assert np.array_equal(acc, conv_w1a2_direct(codes, plus))
    # corners see only the in-bounds taps: zero padding contributes nothing
    if k == 3:
        assert acc[0, 0, 0] == 3 * 4 * c


def test_batched_and_unbatched():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 4, (2, 4, 5, 6)).astype(np.uint8)
    signs = np.where(rng.random((3, 3, 6, 3)) < 0.5, -1, 1).astype(np.int8)
    batched = conv_w1a2_direct(codes, signs)
    assert np.array_equal(batched[1], conv_w1a2_direct(codes[1], signs))


@pytest.mark.parametrize("codes, signs, match", [
    (np.zeros((2, 2, 3), np.uint8), np.ones((3, 3, 4, 1), np.int8), "input channels"),
    (np.full((2, 2, 3), 4, np.uint8), np.ones((3, 3, 3, 1), np.int8), "codes must lie"),
    (np.zeros((2, 2, 3), np.uint8), np.zeros((3, 3, 3, 1), np.int8), "signs must be"),
    (np.zeros((2, 2, 3), np.uint8), np.ones((2, 2, 3, 1), np.int8), "odd k"),
])
def test_operand_errors(codes, signs, match):
    with pytest.raises(ValueError, match=match):
        conv_w1a2_direct(codes, signs)


def test_layer_accumulator_bounds_of_the_default_network():
    layers = {layer.name: layer for layer in build_layers(load_network_config())}
    assert layers["conv3"].acc_bound == 3 * 9 * 512 == 13824
    assert layers["cast_conv"].acc_bound == 3 * 194
    assert max(layer.acc_bound for layer in layers.values() if layer.accel) == 13824


def test_space_to_depth_matches_definition():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 100, (2, 6, 4, 3))
    y = space_to_depth(x, 2)
    assert y.shape == (2, 3, 2, 12)
    for yy in range(3):
        for xx in range(2):
            for dy in range(2):
                for dx in range(2):
                    assert np.array_equal(y[:, yy, xx, (dy * 2 + dx) * 3:(dy * 2 + dx + 1) * 3],
                                          x[:, 2 * yy + dy, 2 * xx + dx, :])
    with pytest.raises(ValueError, match="divisible"):
        space_to_depth(np.zeros((3, 4, 1)), 2)


def test_upsample_and_concat():
    x = np.arange(6).reshape(2, 3, 1)
    u = upsample_nearest(x, 2)
    assert u.shape == (4, 6, 1)
    assert all(u[y, xx, 0] == x[y // 2, xx // 2, 0] for y in range(4) for xx in range(6))
    c = concat_channels([x, x + 10])
    assert c.shape == (2, 3, 2) and c[1, 2, 1] == 15
    with pytest.raises(ValueError, match="spatial"):
        concat_channels([x, u])
    assert pad_same(x, 3).shape == (4, 5, 1)
