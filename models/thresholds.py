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
``threshold_bits(A)`` small without changing any output.
"""

from dataclasses import dataclass
from fractions import Fraction
import math

import numpy as np

from .quant import ACT_LEVELS

__all__ = [
    "DIR_INCREASING", "DIR_DECREASING", "DIR_CONSTANT", "DEFAULT_BN_EPS",
    "ThresholdTable", "fold_thresholds", "apply_thresholds", "threshold_bits",
    "signed_bits", "batch_norm",
]

#: Direction codes, as stored in threshold tables and understood by the threshold unit.
DIR_INCREASING = 0
DIR_DECREASING = 1
DIR_CONSTANT = 2

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
        ``DIR_INCREASING``, ``DIR_DECREASING`` or ``DIR_CONSTANT``.
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


def _ceil_p_qsqrt(p, q, r):
    """Smallest integer n with n >= p + q*sqrt(r) (exact)."""
    n = math.floor(float(p) + float(q) * math.sqrt(float(r))) - 2
    while _ge_qsqrt(n - p, q, r):
        n -= 4
    while not _ge_qsqrt(n - p, q, r):
        n += 1
    return n


def _floor_p_qsqrt(p, q, r):
    """Largest integer n with n <= p + q*sqrt(r) (exact)."""
    return -_ceil_p_qsqrt(-p, -q, r)


def _channel(alpha, gamma, beta, mean, var, eps, bias):
    """Direction, thresholds and constant of one channel, from exact rationals."""
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
        ts.append(_ceil_p_qsqrt(p, q, r) if increasing else _floor_p_qsqrt(p, q, r))
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
        d, ts, k = _channel(q["alpha"], q["gamma"], q["beta"], q["mean"], q["var"], eps_q, q["bias"])
        direction[i] = d
        constant[i] = k
        if d == DIR_INCREASING:
            ts = [min(max(t, -acc_bound), acc_bound + 1) for t in ts]
        elif d == DIR_DECREASING:
            ts = [min(max(t, -acc_bound - 1), acc_bound) for t in ts]
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
