"""Threshold folding: conv bias + batch norm + 2-bit quantizer -> 3 integer thresholds.

For an integer accumulator ``acc`` of a W1A2 convolution with channel scale ``alpha`` the float
pipeline computes::

    z = acc * alpha * 2/3 + bias
    y = gamma * (z - mean) / sqrt(var + eps) + beta
    code = #{k in 0..2 : y >= (k + 0.5) * 2/3}          (the round-half-up quantizer)

Each comparison ``y >= t_k`` is monotonic in ``acc``, so it becomes an integer comparison:

* **increasing** channel (``alpha * gamma > 0``): ``code = #{k : acc >= T_k}``,
  ``T_k = ceil(X_k)``;
* **decreasing** channel (``alpha * gamma < 0``): ``code = #{k : acc <= T_k}``,
  ``T_k = floor(X_k)``;
* **constant** channel (``gamma == 0`` or ``alpha == 0``): ``code = c`` for every ``acc``.

where ``X_k = (mean - bias)/a + (t_k - beta)/(gamma*a) * sqrt(var + eps)`` and ``a = alpha*2/3``.
This is qonnx/FINN ``MultiThreshold`` semantics: a tie (``acc == T_k``) counts.

The thresholds are computed **exactly**: every float parameter is converted to the rational
number it stores and ``ceil``/``floor`` of ``P + Q*sqrt(R)`` is decided in integer arithmetic,
so a threshold never moves by one because of float rounding. Thresholds outside the reachable
accumulator range are clamped to one step beyond it (increasing: ``[-A, A+1]``; decreasing:
``[-A-1, A]``, with ``A`` the layer's accumulator bound), which keeps their width
``threshold_bits(A)`` small without changing any output. The clamping is part of the search:
each threshold is the smallest integer of ``[-A, A+1]`` passing an exact comparison, found from a
float estimate and bisection, so a channel whose ``X_k`` is astronomically far out (a gamma of
1e-25, an alpha of 5e-324) costs no more than an ordinary one.

Direction codes are 2 bits in the threshold record: 0 increasing, 1 decreasing, 2 constant,
and 3 constant as well (what the threshold unit does with it: any direction that is not 0 or 1
outputs the record's ``constant``). Folding writes only 0, 1 and 2; tables read from memory may
hold 3 (:func:`apply_thresholds` treats it as constant).
"""

from dataclasses import dataclass
from fractions import Fraction
import math

import numpy as np

from .quant import ACT_LEVELS, ACT_MAX, ACT_STEP

__all__ = [
    "DIR_INCREASING", "DIR_DECREASING", "DIR_CONSTANT", "DIR_CONSTANT_ALT", "DEFAULT_BN_EPS",
    "ThresholdTable", "fold_thresholds", "apply_thresholds", "threshold_bits",
    "signed_bits", "batch_norm", "flow_decision_points", "flow_level_values", "flow_quantizer_input",
    "quantize_flow", "flow_levels", "fold_flow_thresholds",
]

#: Direction codes, as stored in threshold tables and understood by the threshold unit.
DIR_INCREASING = 0
DIR_DECREASING = 1
DIR_CONSTANT = 2
#: The fourth 2-bit code, also constant: the threshold unit outputs the record's ``constant`` for
#: every direction that is neither increasing nor decreasing. Folding never writes it.
DIR_CONSTANT_ALT = 3

#: Batch-norm epsilon of the original graph.
DEFAULT_BN_EPS = 0.001

_T = [Fraction(2 * k + 1, 3) for k in range(ACT_LEVELS)]  # (k + 0.5) * 2/3, exactly


def signed_bits(lo, hi):
    """Width of the smallest two's-complement integer that holds every value in ``[lo, hi]``."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"signed_bits needs lo <= hi, not lo={lo}, hi={hi}")
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def threshold_bits(acc_bound):
    """Width of a threshold for a layer whose accumulator lies in ``[-acc_bound, acc_bound]``."""
    return signed_bits(-acc_bound - 1, acc_bound + 1)


@dataclass(frozen=True)
class ThresholdTable:
    """Per-output-channel thresholds of one layer.

    Members
    -------
    thresholds : numpy.ndarray of int64, shape ``(C, 3)``
        ``T_0, T_1, T_2``; ascending for increasing channels, descending for decreasing ones,
        don't-care (0) for constant ones.
    direction : numpy.ndarray of uint8, shape ``(C,)``
        ``DIR_INCREASING``, ``DIR_DECREASING`` or ``DIR_CONSTANT`` (``DIR_CONSTANT_ALT``, 3, in a
        table read from memory: constant as well).
    constant : numpy.ndarray of uint8, shape ``(C,)``
        The code of a constant channel (0 for the others).
    acc_bound : int
        The layer's accumulator bound ``A``; every threshold lies in ``[-A-1, A+1]``.
    """

    thresholds: np.ndarray
    direction: np.ndarray
    constant: np.ndarray
    acc_bound: int

    def __post_init__(self):
        c = self.direction.shape[0]
        if self.thresholds.shape != (c, ACT_LEVELS) or self.constant.shape != (c,):
            raise ValueError(
                f"threshold table shapes disagree: thresholds {self.thresholds.shape}, "
                f"direction {self.direction.shape}, constant {self.constant.shape}")

    @property
    def channels(self):
        return self.direction.shape[0]

    @property
    def bits(self):
        """Width of one threshold in two's complement."""
        return threshold_bits(self.acc_bound)

    def __eq__(self, other):
        return (isinstance(other, ThresholdTable) and self.acc_bound == other.acc_bound
                and np.array_equal(self.thresholds, other.thresholds)
                and np.array_equal(self.direction, other.direction)
                and np.array_equal(self.constant, other.constant))

    def select(self, channels):
        """A table of the given channels (a slice or index array), same bound."""
        return ThresholdTable(self.thresholds[channels], self.direction[channels],
                              self.constant[channels], self.acc_bound)


def _ge_qsqrt(d, q, r):
    """Exactly decide ``d >= q * sqrt(r)`` for rationals d, q and r > 0."""
    if q >= 0:
        return d >= 0 and d * d >= q * q * r
    return d >= 0 or d * d <= q * q * r


def _estimate(p, q, r):
    """``floor(p + q*sqrt(r))`` in float arithmetic, or None where that over- or underflows."""
    try:
        v = float(p) + float(q) * math.sqrt(float(r))
    except (OverflowError, ValueError):
        return None
    return math.floor(v) if math.isfinite(v) else None


def _ceil_clamped(p, q, r, lo, hi):
    """``min(max(ceil(p + q*sqrt(r)), lo), hi)``, exactly, for integers ``lo < hi``.

    The predicate ``n >= p + q*sqrt(r)`` is monotonic in ``n``, so the answer is the smallest
    ``n`` in ``[lo, hi]`` that passes it (``hi`` if none below does). A float estimate narrows the
    search (galloping outwards from it, then bisecting), so a threshold costs a few exact
    comparisons when the estimate is good and about ``2 * log2(hi - lo)`` when it is useless:
    a huge ``|q|`` (tiny gamma or alpha) or an estimate that overflows only clamps.
    """
    def passes(n):
        return _ge_qsqrt(n - p, q, r)

    if passes(lo):
        return lo
    if not passes(hi - 1):
        return hi
    a, b = lo, hi - 1                     # invariant: not passes(a), passes(b)
    guess = _estimate(p, q, r)
    if guess is not None and a < guess + 1 < b:
        n = guess + 1                     # the ceiling when the estimate is right
        step = 1
        if passes(n):
            b = n
            while b - step > a:
                if passes(b - step):
                    b -= step
                    step *= 2
                else:
                    a = b - step
                    break
        else:
            a = n
            while a + step < b:
                if passes(a + step):
                    b = a + step
                    break
                a += step
                step *= 2
    while b - a > 1:
        m = (a + b) // 2
        if passes(m):
            b = m
        else:
            a = m
    return b


def _channel(alpha, gamma, beta, mean, var, eps, bias, acc_bound):
    """Direction, clamped thresholds and constant of one channel, from exact rationals.

    Increasing thresholds are ``clamp(ceil(X_k), -A, A + 1)``, decreasing ones
    ``clamp(floor(X_k), -A - 1, A) = -clamp(ceil(-X_k), -A, A + 1)``.
    """
    r = var + eps
    if gamma == 0 or alpha == 0:
        # y does not depend on acc: y = gamma*(bias - mean)/sqrt(r) + beta.
        u = gamma * (bias - mean)
        # y >= t  <=>  u/sqrt(r) >= t - beta  <=>  u >= (t - beta) * sqrt(r)
        code = sum(1 for t in _T if _ge_qsqrt(u, t - beta, r))
        return DIR_CONSTANT, [0] * ACT_LEVELS, code
    a = alpha * Fraction(2, 3)
    increasing = (a > 0) == (gamma > 0)
    p = (mean - bias) / a
    ts = []
    for t in _T:
        q = (t - beta) / (gamma * a)
        if increasing:
            ts.append(_ceil_clamped(p, q, r, -acc_bound, acc_bound + 1))
        else:
            ts.append(-_ceil_clamped(-p, -q, r, -acc_bound, acc_bound + 1))
    return (DIR_INCREASING if increasing else DIR_DECREASING), ts, 0


def fold_thresholds(*, alpha, gamma, beta, mean, var, acc_bound, eps=DEFAULT_BN_EPS, bias=None):
    """Fold bias, batch norm and the 2-bit quantizer into integer thresholds.

    Parameters
    ----------
    alpha : array_like, shape ``(C,)``
        Channel scale of the binary weights (``mean |W|``); may be negative or zero.
    gamma, beta, mean, var : array_like, shape ``(C,)``
        Batch-norm parameters (``var >= 0``).
    acc_bound : int
        Accumulator bound ``A`` of the layer (``3 * kh * kw * c_in``).
    eps : float
        Batch-norm epsilon (``var + eps`` must be positive).
    bias : array_like, shape ``(C,)``, optional
        Conv bias added before batch norm.

    Returns
    -------
    ThresholdTable

    Raises
    ------
    ValueError
        If shapes disagree, a parameter is not finite, ``var`` is negative, ``var + eps`` is not
        positive or ``acc_bound`` is not a positive integer.
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.ndim != 1:
        raise ValueError(f"alpha must be a vector of channel scales, not shape {alpha.shape!r}")
    c = alpha.shape[0]
    params = {"gamma": gamma, "beta": beta, "mean": mean, "var": var,
              "bias": np.zeros(c) if bias is None else bias}
    arrays = {"alpha": alpha}
    for name, value in params.items():
        value = np.asarray(value, dtype=np.float64)
        if value.shape != (c,):
            raise ValueError(f"{name} must have shape ({c},) like alpha, not {value.shape!r}")
        arrays[name] = value
    for name, value in arrays.items():
        if not np.isfinite(value).all():
            raise ValueError(f"{name} must be finite, channel {int(np.flatnonzero(~np.isfinite(value))[0])} is not")
    if (arrays["var"] < 0).any():
        raise ValueError(f"var must be >= 0, channel {int(np.flatnonzero(arrays['var'] < 0)[0])} is negative")
    if not (isinstance(acc_bound, (int, np.integer)) and acc_bound > 0):
        raise ValueError(f"acc_bound must be a positive integer, not {acc_bound!r}")
    eps_q = Fraction(float(eps))
    if not math.isfinite(float(eps)) or eps < 0:
        raise ValueError(f"eps must be a finite non-negative number, not {eps!r}")

    acc_bound = int(acc_bound)
    thresholds = np.zeros((c, ACT_LEVELS), dtype=np.int64)
    direction = np.zeros(c, dtype=np.uint8)
    constant = np.zeros(c, dtype=np.uint8)
    for i in range(c):
        q = {name: Fraction(float(arrays[name][i])) for name in arrays}
        if q["var"] + eps_q <= 0:
            raise ValueError(f"var + eps must be positive, channel {i} has var={arrays['var'][i]!r}, eps={eps!r}")
        d, ts, k = _channel(q["alpha"], q["gamma"], q["beta"], q["mean"], q["var"], eps_q, q["bias"], acc_bound)
        direction[i] = d
        constant[i] = k
        thresholds[i] = ts
    return ThresholdTable(thresholds, direction, constant, acc_bound)


def apply_thresholds(acc, table):
    """Turn accumulators into 2-bit codes with a threshold table.

    Parameters
    ----------
    acc : array_like of int, shape ``(..., C)``
        Accumulators, channel last.
    table : ThresholdTable
        Thresholds of the ``C`` channels.

    Returns
    -------
    numpy.ndarray of uint8, shape ``(..., C)``
        Increasing channels count ``acc >= T_k``, decreasing ones ``acc <= T_k``; every other
        direction (2 or 3) gives the channel's ``constant``, as the threshold unit does.
    """
    acc = np.asarray(acc, dtype=np.int64)
    if acc.shape[-1] != table.channels:
        raise ValueError(f"accumulators have {acc.shape[-1]} channels, the table {table.channels}")
    a = acc[..., None]
    t = table.thresholds
    inc = (a >= t).sum(axis=-1)
    dec = (a <= t).sum(axis=-1)
    out = np.where(table.direction == DIR_INCREASING, inc,
                   np.where(table.direction == DIR_DECREASING, dec, table.constant))
    return out.astype(np.uint8)


def batch_norm(z, *, gamma, beta, mean, var, eps=DEFAULT_BN_EPS):
    """Float batch norm (inference form), channel last."""
    z = np.asarray(z, dtype=np.float64)
    return (np.asarray(gamma, np.float64) * (z - np.asarray(mean, np.float64))
            / np.sqrt(np.asarray(var, np.float64) + eps) + np.asarray(beta, np.float64))


# ------------------------------------------------------------------------------------------------
# The flow quantizer of the fully quantized network (predict_flow{l}, l > 2)
#
# A flow component f (predict-flow units, flow / flow_scale) is quantized uniformly over [-R, R]
# to L = 3K + 1 levels, level = #{j in 0..3K-1 : f >= theta_j}, theta_j = -R + (j + 0.5) * 2R/(3K),
# and the level is spread over K 2-bit codes like the input thermometer:
# code_i = clip(level - 3i, 0, 3) = #{k in 0..2 : f >= theta_{3i+k}}. Channel c*K + i of a
# flow-code tensor is code i of component c (channel-major).


def _check_flow_quantizer(flow_range, flow_codes):
    if isinstance(flow_codes, bool) or not isinstance(flow_codes, (int, np.integer)) or flow_codes < 1:
        raise ValueError(f"flow_codes must be a positive integer, not {flow_codes!r}")
    if isinstance(flow_range, bool) or not isinstance(flow_range, (int, float, np.floating, np.integer)) \
            or not math.isfinite(float(flow_range)) or not flow_range > 0:
        raise ValueError(f"flow_range must be a finite number > 0, not {flow_range!r}")
    return Fraction(float(flow_range)), int(flow_codes)


def flow_decision_points(flow_range, flow_codes):
    """The flow quantizer's ``3K`` decision points, exactly.

    Parameters
    ----------
    flow_range : float
        ``R``; the quantizer covers ``[-R, R]``.
    flow_codes : int
        ``K``: codes per flow component (``3K + 1`` levels).

    Returns
    -------
    list of fractions.Fraction
        ``theta_j = -R + (2j + 1) * R / (3K)`` for ``j = 0 .. 3K-1``, ascending.
    """
    r, k = _check_flow_quantizer(flow_range, flow_codes)
    n = ACT_LEVELS * k
    return [-r + (2 * j + 1) * r / n for j in range(n)]


def flow_level_values(flow_range, flow_codes):
    """Value of each level ``l = 0 .. 3K``: ``-R + l * 2R / (3K)`` (float64)."""
    r, k = _check_flow_quantizer(flow_range, flow_codes)
    n = ACT_LEVELS * k
    return np.array([float(-r + 2 * r * lvl / n) for lvl in range(n + 1)])


def flow_quantizer_input(f, flow_range, flow_codes):
    """The flow quantizer as an affine map followed by the 2-bit activation quantizer.

    ``a[..., c*K + i] = (f[..., c] + R) * K / R - 2i``: the 2-bit activation quantizer
    (:func:`models.quant.quantize_activations`, round half up) of ``a`` is exactly code ``i`` of
    component ``c`` (``q(a) >= k + 1  <=>  a >= (2k + 1)/3  <=>  f >= theta_{3i+k}``), and
    ``clip(a, 0, 2)`` is its unrounded ("soft") counterpart, which the float model uses.

    Parameters
    ----------
    f : array_like of float, (..., C)
    flow_range, flow_codes : see :func:`flow_decision_points`

    Returns
    -------
    numpy.ndarray of float64, (..., C * K)
    """
    r, k = _check_flow_quantizer(flow_range, flow_codes)
    f = np.asarray(f, dtype=np.float64)
    a = (f[..., None] + float(r)) * (k / float(r)) - ACT_MAX * np.arange(k)
    return a.reshape(*f.shape[:-1], f.shape[-1] * k)


def quantize_flow(f, flow_range, flow_codes):
    """Float flow ``(..., C)`` -> its flow codes ``(..., C * K)`` (uint8), comparing ``f`` with
    the decision points in float64 (the integer path, :func:`fold_flow_thresholds`, is exact)."""
    theta = np.array([float(t) for t in flow_decision_points(flow_range, flow_codes)])
    f = np.asarray(f, dtype=np.float64)
    if np.isnan(f).any():
        raise ValueError("flows to quantize must not contain NaN")
    level = (f[..., None] >= theta).sum(axis=-1)
    k = int(flow_codes)
    codes = np.clip(level[..., None] - ACT_LEVELS * np.arange(k), 0, ACT_LEVELS).astype(np.uint8)
    return codes.reshape(*f.shape[:-1], f.shape[-1] * k)


def flow_levels(codes, flow_codes):
    """Flow codes ``(..., C * K)`` -> levels ``(..., C)`` (int64): the sum of each component's
    codes."""
    codes = np.asarray(codes)
    k = int(flow_codes)
    if codes.shape[-1] % k:
        raise ValueError(f"flow codes must have a multiple of {k} channels, not {codes.shape[-1]}")
    return codes.reshape(*codes.shape[:-1], codes.shape[-1] // k, k).sum(axis=-1, dtype=np.int64)


def fold_flow_thresholds(*, alpha, bias, flow_range, flow_codes, acc_bound):
    """Fold a binary layer's scale and bias and the flow quantizer into integer thresholds.

    For flow component ``c`` with ``f = acc * a + bias_c``, ``a = alpha_c * 2/3``, code channel
    ``c*K + i`` counts ``f >= theta_{3i+k}`` for ``k = 0, 1, 2``
    (:func:`flow_decision_points`); each comparison is ``acc >= T_k`` with
    ``T_k = ceil((theta_{3i+k} - bias_c) / a)`` for ``a > 0`` (increasing channel),
    ``acc <= floor(...)`` for ``a < 0`` (decreasing), and a constant code for ``a == 0``. Every
    value is the exact rational number of its float (no rounding), and thresholds outside
    ``[-A, A]`` are clamped as :func:`fold_thresholds` does.

    Parameters
    ----------
    alpha, bias : array_like, shape ``(C,)``
        Channel scale (``mean |W|``) and bias of the ``C`` flow components.
    flow_range : float
        ``R``.
    flow_codes : int
        ``K``.
    acc_bound : int
        The layer's accumulator bound ``A``.

    Returns
    -------
    ThresholdTable
        ``C * K`` channels, channel ``c*K + i`` being code ``i`` of component ``c``.

    Raises
    ------
    ValueError
        If shapes disagree, a parameter is not finite or ``flow_range``, ``flow_codes`` or
        ``acc_bound`` is not positive.
    """
    theta = flow_decision_points(flow_range, flow_codes)
    k = int(flow_codes)
    alpha = np.asarray(alpha, dtype=np.float64)
    bias = np.asarray(bias, dtype=np.float64)
    if alpha.ndim != 1 or bias.shape != alpha.shape:
        raise ValueError(f"alpha and bias must be vectors of the same length, not shapes {alpha.shape!r} "
                         f"and {bias.shape!r}")
    for name, value in (("alpha", alpha), ("bias", bias)):
        if not np.isfinite(value).all():
            raise ValueError(f"{name} must be finite, channel {int(np.flatnonzero(~np.isfinite(value))[0])} is not")
    if not (isinstance(acc_bound, (int, np.integer)) and not isinstance(acc_bound, bool) and acc_bound > 0):
        raise ValueError(f"acc_bound must be a positive integer, not {acc_bound!r}")
    acc_bound = int(acc_bound)
    c = alpha.shape[0]
    thresholds = np.zeros((c * k, ACT_LEVELS), dtype=np.int64)
    direction = np.zeros(c * k, dtype=np.uint8)
    constant = np.zeros(c * k, dtype=np.uint8)
    for ch in range(c):
        a = Fraction(float(alpha[ch])) * Fraction(2, 3)
        b = Fraction(float(bias[ch]))
        for i in range(k):
            row = ch * k + i
            points = theta[ACT_LEVELS * i:ACT_LEVELS * (i + 1)]
            if a == 0:
                direction[row] = DIR_CONSTANT
                constant[row] = sum(1 for t in points if b >= t)
                continue
            if a > 0:
                ts = [min(max(math.ceil((t - b) / a), -acc_bound), acc_bound + 1) for t in points]
                direction[row] = DIR_INCREASING
            else:
                ts = [min(max(math.floor((t - b) / a), -acc_bound - 1), acc_bound) for t in points]
                direction[row] = DIR_DECREASING
            thresholds[row] = ts
    return ThresholdTable(thresholds, direction, constant, acc_bound)
