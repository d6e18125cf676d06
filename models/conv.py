"""W1A2 integer convolution, in two independent formulations, plus the float convolution.

The integer core of every accelerator layer::

    acc[y, x, o] = sum_{dy, dx, c} q[y+dy-p, x+dx-p, c] * s[dy, dx, c, o]

with codes ``q`` in 0..3, signs ``s`` in {-1, +1}, stride 1 and SAME zero padding (a padded
code is 0 and contributes 0). ``conv_w1a2_direct`` computes it with plain integer arithmetic
(im2col and a matrix product whose partial sums are small integers, exact in float32 below
2**24); ``conv_w1a2_bitplane`` computes it as the hardware does, without multiplication::

    acc = sum_b 2**b * (2 * popcount(a_b & w) - popcount(a_b))

with ``a_b`` the bit-planes of the codes and ``w`` the weight bits (1 = +1).
"""

import numpy as np

from .ops import pad_same
from .quant import ACT_BITS, ACT_LEVELS

__all__ = ["acc_bound", "conv_w1a2_direct", "conv_w1a2_bitplane", "conv_float", "check_conv_operands"]

# Every partial sum of conv_w1a2_direct is an integer of magnitude <= acc_bound; float32 is exact
# for integers up to 2**24.
_FLOAT32_EXACT = 1 << 24


def acc_bound(kernel, c_in):
    """Largest ``|acc|`` of a W1A2 conv: ``3 * kernel * kernel * c_in``."""
    return ACT_LEVELS * kernel * kernel * c_in


def check_conv_operands(codes, signs):
    """Validate a W1A2 conv's operands; returns them as (N, H, W, C) uint8 and int8 arrays.

    Raises
    ------
    ValueError
        On a shape mismatch, an even or non-square kernel, a code outside 0..3 or a sign other
        than -1/+1.
    """
    codes = np.asarray(codes)
    signs = np.asarray(signs)
    if codes.ndim == 3:
        codes = codes[None]
    if codes.ndim != 4:
        raise ValueError(f"codes must be (H, W, C) or (N, H, W, C), not shape {codes.shape!r}")
    if signs.ndim != 4 or signs.shape[0] != signs.shape[1] or signs.shape[0] % 2 != 1:
        raise ValueError(f"signs must be (k, k, c_in, c_out) with odd k, not shape {signs.shape!r}")
    if signs.shape[2] != codes.shape[3]:
        raise ValueError(f"signs expect {signs.shape[2]} input channels, codes have {codes.shape[3]}")
    if codes.size and (codes.min() < 0 or codes.max() > ACT_LEVELS):
        raise ValueError(f"codes must lie in 0..{ACT_LEVELS}, found {codes.min()}..{codes.max()}")
    if signs.size and not np.isin(signs, (-1, 1)).all():
        raise ValueError("signs must be -1 or +1")
    return codes.astype(np.uint8), signs.astype(np.int8)


def _im2col(x, kernel):
    """(N, H, W, C) -> (N, H, W, k*k*C) patches in (dy, dx, c) order, SAME zero padding."""
    n, h, w, c = x.shape
    xp = pad_same(x, kernel)
    cols = [xp[:, dy:dy + h, dx:dx + w, :] for dy in range(kernel) for dx in range(kernel)]
    return np.concatenate(cols, axis=-1)


def conv_w1a2_direct(codes, signs):
    """Integer W1A2 conv by direct arithmetic.

    Parameters
    ----------
    codes : array_like of uint8, shape ``(H, W, C)`` or ``(N, H, W, C)``
    signs : array_like of int8, shape ``(k, k, C, O)``

    Returns
    -------
    numpy.ndarray of int32, shape ``(N, H, W, O)`` (or ``(H, W, O)`` for 3-d codes)
    """
    squeeze = np.ndim(codes) == 3
    codes, signs = check_conv_operands(codes, signs)
    k, _, c, o = signs.shape
    if acc_bound(k, c) >= _FLOAT32_EXACT:
        raise ValueError(f"a {k}x{k}x{c} conv can exceed the exact float32 range")
    cols = _im2col(codes.astype(np.float32), k)
    acc = cols.reshape(-1, k * k * c) @ signs.reshape(k * k * c, o).astype(np.float32)
    acc = acc.astype(np.int32).reshape(*codes.shape[:3], o)
    return acc[0] if squeeze else acc


#: Set bits of every byte value (numpy 1.24, the board's, has no np.bitwise_count).
_POPCOUNT8 = np.array([bin(v).count("1") for v in range(256)], dtype=np.uint8)


def popcount_bytes(packed):
    """Set bits of each element of a uint8 array (same shape)."""
    return _POPCOUNT8[np.asarray(packed, dtype=np.uint8)]


def conv_w1a2_bitplane(codes, signs):
    """Integer W1A2 conv as the hardware computes it: bit-plane AND, popcount, shift, subtract.

    Same parameters and result as :func:`conv_w1a2_direct`; no multiplication of data values.
    """
    squeeze = np.ndim(codes) == 3
    codes, signs = check_conv_operands(codes, signs)
    k, _, c, o = signs.shape
    cols = _im2col(codes, k).reshape(-1, k * k * c)               # (pixels, taps*C)
    wbits = (signs.reshape(k * k * c, o) > 0).T                    # (O, taps*C), 1 = +1
    packed_w = np.packbits(wbits, axis=-1)                         # (O, bytes)
    acc = np.zeros((cols.shape[0], o), dtype=np.int64)
    for b in range(ACT_BITS):
        plane = ((cols >> b) & 1).astype(bool)
        packed_a = np.packbits(plane, axis=-1)                     # (pixels, bytes)
        ones = popcount_bytes(packed_a).sum(axis=-1, dtype=np.int64)           # popcount(a_b)
        both = popcount_bytes(packed_a[:, None, :] & packed_w[None, :, :]).sum(axis=-1, dtype=np.int64)
        acc += (2 * both - ones[:, None]) << b
    acc = acc.astype(np.int32).reshape(*codes.shape[:3], o)
    return acc[0] if squeeze else acc


def conv_float(x, weights, bias=None):
    """Float stride-1 SAME conv (NHWC or HWC input, HWIO weights), in float64 via im2col."""
    squeeze = np.ndim(x) == 3
    x = np.asarray(x, dtype=np.float64)
    if squeeze:
        x = x[None]
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4 or w.shape[2] != x.shape[3]:
        raise ValueError(f"weights {w.shape!r} do not fit an input of {x.shape[3]} channels")
    k, _, c, o = w.shape
    y = _im2col(x, k).reshape(-1, k * k * c) @ w.reshape(k * k * c, o)
    y = y.reshape(*x.shape[:3], o)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)
    return y[0] if squeeze else y
