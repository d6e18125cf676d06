"""The quantizers of the fully quantized network: the flow quantizer and its exact threshold fold,
and the multi-plane binary weights of predict_flow2."""

from fractions import Fraction

import numpy as np
import pytest

from models.golden import binarize_weight_planes, dequantize_planes, plane_weights
from models.quant import binarize_weights, quantize_activations
from models.thresholds import (DIR_CONSTANT, DIR_DECREASING, DIR_INCREASING, apply_thresholds, flow_decision_points,
                               flow_level_values, flow_levels, flow_quantizer_input, fold_flow_thresholds,
                               quantize_flow)


def exact_codes(acc, alpha, bias, flow_range, k):
    """Code channels c*K + i of f = acc * alpha * 2/3 + bias, in exact rational arithmetic."""
    theta = flow_decision_points(flow_range, k)
    out = []
    for a, b in zip(alpha, bias):
        f = acc * Fraction(float(a)) * Fraction(2, 3) + Fraction(float(b))
        level = sum(1 for t in theta if f >= t)
        out.extend(min(max(level - 3 * i, 0), 3) for i in range(k))
    return out


def test_decision_points_and_levels():
    theta = flow_decision_points(0.75, 4)
    assert len(theta) == 12 and theta[0] == Fraction(-11, 16) and theta[-1] == Fraction(11, 16)
    assert all(b - a == Fraction(1, 8) for a, b in zip(theta, theta[1:]))
    values = flow_level_values(0.75, 4)
    assert values[0] == -0.75 and values[-1] == 0.75 and len(values) == 13
    # every decision point is the midpoint of two level values
    assert np.allclose([float(t) for t in theta], (values[:-1] + values[1:]) / 2)


@pytest.mark.parametrize("k", [1, 2, 4, 5])
def test_quantize_flow_is_the_activation_quantizer_of_the_affine_map(k):
    r = 0.75
    theta = np.array([float(t) for t in flow_decision_points(r, k)])
    f = np.concatenate([np.linspace(-1.2, 1.2, 2400), theta, theta, np.nextafter(theta, -np.inf),
                        np.nextafter(theta, np.inf)]).reshape(-1, 2)
    codes = quantize_flow(f, r, k)
    assert codes.shape == (f.shape[0], 2 * k) and codes.dtype == np.uint8
    # the affine map's decision points (2k + 1)/3 are not floats: equal but within rounding of a tie
    near = np.repeat(np.min(np.abs(f[..., None] - theta), axis=-1) < 1e-12, k, axis=-1)
    affine = quantize_activations(flow_quantizer_input(f, r, k))
    assert np.array_equal(codes[~near], affine[~near]) and near.sum() < 0.2 * near.size
    levels = flow_levels(codes, k)
    assert np.array_equal(levels, (f[..., None] >= theta).sum(axis=-1))   # a tie counts (f >= theta)
    points = flow_decision_points(r, k)
    if all(Fraction(float(t)) == t for t in points):               # dyadic points (K = 1, 2, 4): exact
        exact = np.array([[sum(1 for t in points if Fraction(float(v)) >= t) for v in row] for row in f])
        assert np.array_equal(levels, exact)
    # channel-major: channel c*K + i is code i of component c
    expected = np.clip(levels[..., None] - 3 * np.arange(k), 0, 3).reshape(f.shape[0], 2 * k)
    assert np.array_equal(codes, expected)


def test_fold_is_exact_at_every_threshold():
    """acc == T counts for increasing channels; ties of f with a decision point occur (f and the
    points are dyadic rationals); decreasing and constant channels; brute force over the range."""
    acc_bound = 3 * 9 * 4
    acc = np.arange(-acc_bound, acc_bound + 1)
    k, r = 4, 0.75
    alpha = np.array([1.5 / 64, 1.5 / 64, 0.011, -0.013, 0.0, 0.0])      # a = 1/64 for the first two
    bias = np.array([1 / 32, -0.3, 0.05, 0.2, 0.3, -2.0])
    table = fold_flow_thresholds(alpha=alpha, bias=bias, flow_range=r, flow_codes=k, acc_bound=acc_bound)
    assert table.channels == 6 * k
    assert list(table.direction[::k]) == [DIR_INCREASING, DIR_INCREASING, DIR_INCREASING, DIR_DECREASING,
                                          DIR_CONSTANT, DIR_CONSTANT]
    got = apply_thresholds(acc[:, None].repeat(table.channels, axis=1), table)
    want = np.array([exact_codes(int(a), alpha, bias, r, k) for a in acc])
    assert np.array_equal(got, want)
    # the dyadic channel has ties: some f equals a decision point exactly, and T is that acc
    theta = flow_decision_points(r, k)
    ties = [int(a) for a in acc if Fraction(int(a), 64) + Fraction(1, 32) in theta]
    assert ties and set(ties) <= set(table.thresholds[:k].ravel().tolist())
    # a constant channel's code: f = bias = 0.3 is level 8 of 12 -> codes 3, 3, 2, 0
    assert list(table.constant[4 * k:5 * k]) == [3, 3, 2, 0]
    assert list(table.constant[5 * k:]) == [0, 0, 0, 0]


def test_fold_clamps_thresholds_beyond_the_range():
    table = fold_flow_thresholds(alpha=[1e-4, 1e-4], bias=[5.0, -5.0], flow_range=0.75, flow_codes=2, acc_bound=27)
    assert (table.thresholds[:2] == -27).all() and (table.thresholds[2:] == 28).all()
    acc = np.array([[-27] * 4, [27] * 4])
    assert apply_thresholds(acc, table).tolist() == [[3, 3, 0, 0], [3, 3, 0, 0]]


def test_fold_and_quantizer_errors():
    ok = dict(alpha=[0.1, 0.1], bias=[0.0, 0.0], flow_range=0.75, flow_codes=4, acc_bound=100)
    for change, match in [
        (dict(flow_codes=0), "flow_codes must be a positive integer, not 0"),
        (dict(flow_range=-1.0), "flow_range must be a finite number > 0, not -1.0"),
        (dict(flow_range=float("nan")), "flow_range must be a finite number > 0"),
        (dict(bias=[0.0]), "alpha and bias must be vectors of the same length"),
        (dict(alpha=[np.inf, 0.1]), "alpha must be finite, channel 0 is not"),
        (dict(acc_bound=0), "acc_bound must be a positive integer, not 0"),
    ]:
        with pytest.raises(ValueError, match=match):
            fold_flow_thresholds(**dict(ok, **change))
    with pytest.raises(ValueError, match="must not contain NaN"):
        quantize_flow([np.nan, 0.0], 0.75, 4)
    with pytest.raises(ValueError, match="multiple of 4 channels"):
        flow_levels(np.zeros((2, 6), np.uint8), 4)


# ------------------------------------------------------------------------------------------------
# Multi-plane binary weights

def test_one_plane_is_the_channel_wise_binarization():
    w = np.random.default_rng(0).normal(size=(3, 3, 5, 4))
    w[0, 0, 0, 0] = 0.0
    signs, beta = binarize_weight_planes(w, 1)
    s1, a1 = binarize_weights(w)
    assert np.array_equal(signs, s1) and np.array_equal(beta, a1)
    assert signs[0, 0, 0, 0] == 1                                  # exactly 0 -> +1


def test_planes_are_greedy_residual_binarization_channel_major():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 3, 7, 2))
    signs, beta = binarize_weight_planes(w, 4)
    assert signs.shape == (3, 3, 7, 8) and beta.shape == (8,) and signs.dtype == np.int8
    residual = w.copy()
    for p in range(4):
        s, b = binarize_weights(residual)
        for c in range(2):                                         # channel c*M + p
            assert np.array_equal(signs[..., c * 4 + p], s[..., c]) and beta[c * 4 + p] == b[c]
        residual = residual - s * b
    assert np.allclose(plane_weights(signs, beta, 4), w - residual, rtol=0, atol=1e-12)
    # each plane shrinks the error
    errors = [np.linalg.norm(w - plane_weights(*binarize_weight_planes(w, m), m)) for m in range(1, 7)]
    assert all(b < a for a, b in zip(errors, errors[1:]))
    assert (beta.reshape(2, 4)[:, 1:] <= beta.reshape(2, 4)[:, :-1]).all()
    with pytest.raises(ValueError, match="planes must be a positive integer, not 0"):
        binarize_weight_planes(w, 0)


def test_dequantize_planes():
    acc = np.array([[[3, -2, 5, 7]]])
    beta = np.array([0.5, 0.25, 0.1, 0.2])
    y = dequantize_planes(acc, beta, np.array([1.0, -1.0]), 2)
    assert y.shape == (1, 1, 2)
    assert np.allclose(y[0, 0], [(3 * 0.5 - 2 * 0.25) * 2 / 3 + 1, (5 * 0.1 + 7 * 0.2) * 2 / 3 - 1])
