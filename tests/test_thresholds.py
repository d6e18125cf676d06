from fractions import Fraction

import numpy as np
import pytest

from models.quant import activation_code_thresholds, quantize_activations
from models.thresholds import (DIR_CONSTANT, DIR_DECREASING, DIR_INCREASING, apply_thresholds, batch_norm,
                               fold_thresholds, signed_bits, threshold_bits)
from models.thresholds import _ge_qsqrt as _exact_ge    # the exact comparison, before any test counts it


def fold1(**kw):
    kw.setdefault("mean", 0.0)
    kw.setdefault("var", 1.0)
    kw.setdefault("eps", 0.0)
    kw.setdefault("gamma", 1.0)
    kw.setdefault("beta", 0.0)
    kw.setdefault("acc_bound", 100)
    args = {k: ([v] if k not in ("eps", "acc_bound") else v) for k, v in kw.items()}
    return fold_thresholds(**args)


def test_exact_equality_points_increasing():
    # alpha = 0.5 -> acc * alpha * 2/3 = acc/3; y >= (2k+1)/3  <=>  acc >= 2k+1, ties included.
    t = fold1(alpha=0.5)
    assert t.direction.tolist() == [DIR_INCREASING]
    assert t.thresholds.tolist() == [[1, 3, 5]]
    acc = np.arange(-2, 9)[:, None]
    assert apply_thresholds(acc, t)[:, 0].tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 3]


def test_exact_equality_points_with_bias():
    t = fold1(alpha=0.5, bias=1.0)                       # z = acc/3 + 1
    assert t.thresholds.tolist() == [[-2, 0, 2]]


def test_exact_equality_points_decreasing():
    # gamma = -1, beta = 2: y = 2 - acc/3 >= (2k+1)/3  <=>  acc <= 5 - 2k
    t = fold1(alpha=0.5, gamma=-1.0, beta=2.0)
    assert t.direction.tolist() == [DIR_DECREASING]
    assert t.thresholds.tolist() == [[5, 3, 1]]
    acc = np.arange(0, 8)[:, None]
    assert apply_thresholds(acc, t)[:, 0].tolist() == [3, 3, 2, 2, 1, 1, 0, 0]


def test_negative_alpha_flips_direction():
    assert fold1(alpha=-0.5).direction.tolist() == [DIR_DECREASING]
    assert fold1(alpha=-0.5).thresholds.tolist() == [[-1, -3, -5]]
    assert fold1(alpha=-0.5, gamma=-1.0).direction.tolist() == [DIR_INCREASING]


def test_ceil_for_increasing_floor_for_decreasing():
    # alpha = 0.75 -> z = acc/2; y >= t_k <=> acc >= 2 t_k = 2/3, 2, 10/3
    t = fold1(alpha=0.75)
    assert t.thresholds.tolist() == [[1, 2, 4]]
    t = fold1(alpha=0.75, gamma=-1.0, beta=2.0)          # acc <= 2*(2 - t_k) = 10/3, 2, 2/3
    assert t.thresholds.tolist() == [[3, 2, 0]]


def test_constant_channels():
    t = fold1(alpha=0.5, gamma=0.0, beta=1.2)            # y = beta -> code of 1.2 = 2
    assert t.direction.tolist() == [DIR_CONSTANT] and t.constant.tolist() == [2]
    assert apply_thresholds(np.array([[-100], [0], [100]]), t)[:, 0].tolist() == [2, 2, 2]
    t = fold1(alpha=0.0, bias=3.0, beta=-1.0)           # z = bias: y = 3 - 1 = 2 -> code 3
    assert t.direction.tolist() == [DIR_CONSTANT] and t.constant.tolist() == [3]
    t = fold1(alpha=0.0, gamma=0.0, beta=1.0)           # exactly on the tie 1.0 -> code 2 (half up)
    assert t.constant.tolist() == [2]


def test_thresholds_beyond_range_are_clamped():
    t = fold1(alpha=0.5, beta=1000.0, acc_bound=50)      # every threshold far below -50
    assert t.thresholds.tolist() == [[-50, -50, -50]]
    assert apply_thresholds(np.array([[-50], [50]]), t)[:, 0].tolist() == [3, 3]
    t = fold1(alpha=0.5, beta=-1000.0, acc_bound=50)     # far above 50: never reached
    assert t.thresholds.tolist() == [[51, 51, 51]]
    assert apply_thresholds(np.array([[-50], [50]]), t)[:, 0].tolist() == [0, 0]
    t = fold1(alpha=0.5, gamma=-1.0, beta=1000.0, acc_bound=50)
    assert t.thresholds.tolist() == [[50, 50, 50]]
    t = fold1(alpha=0.5, gamma=-1.0, beta=-1000.0, acc_bound=50)
    assert t.thresholds.tolist() == [[-51, -51, -51]]
    assert threshold_bits(50) == signed_bits(-51, 51) == 7


def test_matches_float_pipeline_on_every_accumulator():
    """Brute force: every reachable acc of random channels, against the float BN + quantizer."""
    rng = np.random.default_rng(7)
    c, bound = 64, 3 * 9 * 16
    alpha = rng.uniform(0.01, 0.2, c) * np.where(rng.random(c) < 0.2, -1, 1)
    gamma = rng.normal(0, 1, c)
    gamma[:3] = 0.0
    beta = rng.normal(1.0, 0.8, c)
    mean = rng.normal(0, 2, c)
    var = rng.uniform(0.1, 5, c)
    bias = rng.normal(0, 0.5, c)
    table = fold_thresholds(alpha=alpha, gamma=gamma, beta=beta, mean=mean, var=var, bias=bias,
                            acc_bound=bound)
    acc = np.arange(-bound, bound + 1)[:, None].repeat(c, axis=1)
    z = acc * alpha * 2 / 3 + bias
    y = batch_norm(z, gamma=gamma, beta=beta, mean=mean, var=var)
    expected = quantize_activations(y)
    got = apply_thresholds(acc, table)
    near_tie = np.min(np.abs(y[..., None] - activation_code_thresholds()), axis=-1) < 1e-9
    assert not near_tie.any()
    assert np.array_equal(got, expected)
    assert {DIR_INCREASING, DIR_DECREASING, DIR_CONSTANT} <= set(table.direction.tolist())
    # every non-constant channel's thresholds are monotonic in the direction's order
    inc = table.direction == DIR_INCREASING
    dec = table.direction == DIR_DECREASING
    assert (np.diff(table.thresholds[inc], axis=1) >= 0).all()
    assert (np.diff(table.thresholds[dec], axis=1) <= 0).all()


def test_equality_at_every_threshold_of_random_tables():
    rng = np.random.default_rng(3)
    c = 32
    table = fold_thresholds(alpha=rng.uniform(0.05, 0.1, c), gamma=rng.normal(0, 1, c),
                            beta=rng.normal(1, 0.3, c), mean=rng.normal(0, 3, c),
                            var=rng.uniform(0.5, 2, c), acc_bound=300)
    for ch in range(c):
        one = table.select(slice(ch, ch + 1))
        for k in range(3):
            t = int(table.thresholds[ch, k])
            codes = apply_thresholds(np.array([[t - 1], [t], [t + 1]]), one)[:, 0]
            if table.direction[ch] == DIR_INCREASING:
                assert codes[1] >= k + 1 and codes[0] <= codes[1] <= codes[2]
            else:
                assert codes[1] >= k + 1 and codes[0] >= codes[1] >= codes[2]


@pytest.mark.parametrize("kw, match", [
    ({"var": [-1.0]}, "var must be >= 0"),
    ({"gamma": [np.nan]}, "gamma must be finite"),
    ({"beta": [1.0, 2.0]}, "beta must have shape"),
    ({"acc_bound": 0}, "acc_bound must be a positive integer"),
    ({"var": [0.0], "eps": 0.0}, "var \\+ eps must be positive"),
])
def test_fold_errors(kw, match):
    args = dict(alpha=[0.5], gamma=[1.0], beta=[0.0], mean=[0.0], var=[1.0], acc_bound=10)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        fold_thresholds(**args)


# -- the search for each threshold is bounded ------------------------------------------------

#: Most exact comparisons one threshold may take (a bisection over [-A-1, A+1] needs about
#: 2 * log2(A) + 4; the float estimate usually settles it in 4).
PROBES_PER_THRESHOLD = 64


@pytest.fixture
def probes(monkeypatch):
    """Counts the exact comparisons of threshold folding and fails past ``probes["limit"]``,
    so a search that walks one integer at a time fails at once instead of running for hours."""
    import models.thresholds as th

    state = {"count": 0, "limit": PROBES_PER_THRESHOLD * 3}
    exact = th._ge_qsqrt

    def counted(d, q, r):
        state["count"] += 1
        if state["count"] > state["limit"]:
            raise AssertionError(f"threshold folding took more than {state['limit']} exact comparisons")
        return exact(d, q, r)

    monkeypatch.setattr(th, "_ge_qsqrt", counted)
    return state


@pytest.mark.parametrize("gamma, expected", [
    (1e-21, [101, 101, 101]),        # y = 1e-21 * acc / 30: never reaches 1/3 in [-100, 100]
    (-1e-21, [-101, -101, -101]),    # decreasing, never reached either
    (1e-25, [101, 101, 101]),
])
def test_tiny_gamma_is_clamped_without_walking(probes, gamma, expected):
    t = fold1(alpha=0.05, gamma=gamma)
    assert t.thresholds.tolist() == [expected]
    assert t.direction.tolist() == [DIR_INCREASING if gamma > 0 else DIR_DECREASING]


def test_tiny_gamma_with_reachable_thresholds(probes):
    # beta puts y just below the first step: y = 1/3 - 1e-22 + 1e-21 * acc/30 >= 1/3 <=> acc >= 3.
    beta = 1 / 3 - 1e-22
    t = fold1(alpha=0.05, gamma=1e-21, beta=beta)
    ref = _reference(alpha=0.05, gamma=1e-21, beta=beta, mean=0.0, var=1.0, eps=0.0, bias=0.0, acc_bound=100)
    assert t.thresholds.tolist() == [ref]


@pytest.mark.parametrize("alpha", [5e-324, -5e-324, 1e-310, 1e300])
def test_extreme_alpha(probes, alpha):
    t = fold1(alpha=alpha, beta=0.2)
    ref = _reference(alpha=alpha, gamma=1.0, beta=0.2, mean=0.0, var=1.0, eps=0.0, bias=0.0, acc_bound=100)
    assert t.thresholds.tolist() == [ref]


def _reference(*, alpha, gamma, beta, mean, var, eps, bias, acc_bound):
    """Thresholds by brute force: every accumulator in [-A, A] through the exact comparison."""
    f = {k: Fraction(float(v)) for k, v in dict(alpha=alpha, gamma=gamma, beta=beta, mean=mean, var=var,
                                                 eps=eps, bias=bias).items()}
    r = f["var"] + f["eps"]
    increasing = (f["alpha"] > 0) == (f["gamma"] > 0)
    out = []
    for k in range(3):
        t = Fraction(2 * k + 1, 3)
        passes = [a for a in range(-acc_bound, acc_bound + 1)
                  if _exact_ge(f["gamma"] * (a * f["alpha"] * Fraction(2, 3) + f["bias"] - f["mean"]),
                               t - f["beta"], r)]
        if increasing:
            out.append(min(passes) if passes else acc_bound + 1)
        else:
            out.append(max(passes) if passes else -acc_bound - 1)
    return out


def test_matches_brute_force_over_wide_magnitudes(probes):
    """Random channels over 60 decades of gamma and alpha against the brute-force reference."""
    rng = np.random.default_rng(11)
    bound = 40
    for _ in range(40):
        kw = dict(alpha=float(rng.choice([-1, 1]) * 10.0 ** rng.uniform(-30, 3)),
                  gamma=float(rng.choice([-1, 1]) * 10.0 ** rng.uniform(-30, 3)),
                  beta=float(rng.normal(0.5, 1.0)), mean=float(rng.normal(0, 1)),
                  var=float(10.0 ** rng.uniform(-6, 6)), eps=0.001, bias=float(rng.normal(0, 1)))
        probes["count"] = 0
        t = fold_thresholds(**{k: [v] for k, v in kw.items() if k != "eps"}, eps=kw["eps"], acc_bound=bound)
        assert t.thresholds[0].tolist() == _reference(**kw, acc_bound=bound), kw


def test_shipped_conv2_with_a_tiny_gamma(probes):
    """gamma = 1e-25 in one channel of the shipped conv2: the model builds, and that channel
    outputs the code its float pipeline gives on every reachable accumulator."""
    from models.golden import QuantizedModel
    from models.pretrained import load_default_weights

    weights, cfg, _ = load_default_weights()
    weights["conv2"]["gamma"] = weights["conv2"]["gamma"].copy()
    weights["conv2"]["gamma"][5] = np.float32(1e-25)
    channels = sum(len(w["gamma"]) for w in weights.values() if "gamma" in w)
    probes["limit"] = PROBES_PER_THRESHOLD * 3 * channels
    model = QuantizedModel(cfg, weights)
    table = model.plans["conv2"].thresholds
    bound = table.acc_bound
    assert table.direction[5] == DIR_INCREASING
    plan = model.plans["conv2"]
    ref = _reference(alpha=plan.alpha[5], gamma=plan.bn["gamma"][5],
                     beta=plan.bn["beta"][5], mean=plan.bn["mean"][5], var=plan.bn["var"][5], eps=plan.eps,
                     bias=0.0 if plan.bias is None else plan.bias[5], acc_bound=bound)
    assert table.thresholds[5].tolist() == ref
