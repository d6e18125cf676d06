"""Blueoil-style quantizers: 2-bit activations and channel-wise binary weights.

Activations (``linear_mid_tread_half``, 2 bits, max 2.0)
    ``q = floor(clip(x, 0, 2) / 2 * 3 + 0.5)``, ``q`` in 0..3, value ``q * 2/3``.

    Round-half rule: **half up**. An input exactly half-way between two levels (1/3, 1, 5/3)
    goes to the upper code. This is what ``floor(v + 0.5)`` computes, what the threshold unit
    computes ("count of acc >= T", a tie counts) and what Blueoil's ARM path computed; its x86
    AVX path rounded half to even (Blueoil issue #195), which this project does not follow.

Weights (``binary_channel_wise_mean_scaling``)
    ``alpha_o = mean |W[..., o]|`` over (kh, kw, in); ``W_q = s * alpha_o``, ``s`` in {-1, +1}.

    A weight of exactly 0 becomes **+1** (``s = +1 if w >= 0``). The integer core has no zero
    weight, so the training-time value 0 cannot be kept; choosing +1 everywhere (training export,
    golden model, hardware) keeps the float and integer formulations of this project identical.
"""

import numpy as np

__all__ = [
    "ACT_BITS", "ACT_MAX", "ACT_LEVELS", "ACT_STEP", "ACT_CODES",
    "quantize_activations", "dequantize_activations", "activation_code_thresholds",
    "binarize_weights", "dequantize_weights", "INPUT_BITS", "INPUT_CODES", "thermometer_codes",
    "thermometer_value",
]

#: Bits per activation code.
ACT_BITS = 2
#: Largest representable activation value.
ACT_MAX = 2.0
#: Number of steps between code 0 and the largest code (codes are 0..ACT_LEVELS).
ACT_LEVELS = (1 << ACT_BITS) - 1
#: Value of one code step, 2/3.
ACT_STEP = ACT_MAX / ACT_LEVELS
#: Number of distinct codes.
ACT_CODES = ACT_LEVELS + 1


def activation_code_thresholds():
    """Real-valued decision points of the activation quantizer.

    Returns
    -------
    numpy.ndarray
        ``[(k + 0.5) * 2/3 for k in 0..2]``: the code of ``x`` is the number of these that
        ``x`` is greater than or equal to.
    """
    return (np.arange(ACT_LEVELS, dtype=np.float64) + 0.5) * ACT_STEP


def quantize_activations(x):
    """Quantize real activations to 2-bit codes (round half up).

    Parameters
    ----------
    x : array_like of float
        Activations. NaN is rejected.

    Returns
    -------
    numpy.ndarray of uint8
        Codes in 0..3, same shape as ``x``.

    Raises
    ------
    ValueError
        If ``x`` contains NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    if np.isnan(x).any():
        raise ValueError("activations to quantize must not contain NaN")
    scaled = np.clip(x, 0.0, ACT_MAX) / ACT_MAX * ACT_LEVELS
    return np.floor(scaled + 0.5).astype(np.uint8)


def dequantize_activations(codes, dtype=np.float32):
    """Real value of 2-bit codes: ``code * 2/3``."""
    codes = np.asarray(codes)
    return (codes.astype(np.float64) * ACT_STEP).astype(dtype)


def binarize_weights(weights):
    """Channel-wise binary weights with mean scaling.

    Parameters
    ----------
    weights : array_like of float, shape ``(kh, kw, c_in, c_out)``
        Float weights (HWIO, as TensorFlow stores them).

    Returns
    -------
    signs : numpy.ndarray of int8, shape ``(kh, kw, c_in, c_out)``
        -1 or +1; a weight of exactly 0 gives +1.
    alpha : numpy.ndarray of float64, shape ``(c_out,)``
        ``mean |W|`` over (kh, kw, c_in) for each output channel (0 for an all-zero channel).

    Raises
    ------
    ValueError
        If ``weights`` is not 4-dimensional or is not finite.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"weights must have shape (kh, kw, c_in, c_out), not {w.shape!r}")
    if not np.isfinite(w).all():
        raise ValueError("weights to binarize must be finite")
    signs = np.where(w >= 0, 1, -1).astype(np.int8)
    alpha = np.abs(w).mean(axis=(0, 1, 2))
    return signs, alpha


def dequantize_weights(signs, alpha, dtype=np.float32):
    """Float weights ``signs * alpha`` (alpha broadcast over the output-channel axis)."""
    return (np.asarray(signs, dtype=np.float64) * np.asarray(alpha, dtype=np.float64)).astype(dtype)


# ------------------------------------------------------------------------------------------------
# The network input on the accelerator: 8-bit pixels as thermometer codes

#: Bits of an input pixel value kept by the input quantizer (the top bits of each uint8).
INPUT_BITS = 4
#: 2-bit codes per pixel value: ``INPUT_CODES * ACT_LEVELS`` = 15 = ``2**INPUT_BITS - 1`` levels.
INPUT_CODES = 5


def thermometer_codes(pixels):
    """Input quantizer of the accelerator's first layer: uint8 values -> thermometer 2-bit codes.

    ``q = v >> 4`` (``INPUT_BITS`` = 4 top bits, 0..15) is spread over ``INPUT_CODES`` = 5
    codes, ``code_i = clip(q - 3*i, 0, 3)``: their sum is ``q``. A binary-weight conv over
    these codes sees each pixel value as five 2-bit inputs, each with its own weight (tied
    weights give ``w * q``).

    Parameters
    ----------
    pixels : array_like of uint8, (..., C)

    Returns
    -------
    numpy.ndarray of uint8, (..., C * INPUT_CODES)
        Code ``c * INPUT_CODES + i`` is level ``i`` of value ``c``.
    """
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError(f"pixels must be uint8, not {pixels.dtype}")
    q = (pixels >> (8 - INPUT_BITS)).astype(np.int16)
    levels = np.arange(INPUT_CODES, dtype=np.int16) * ACT_LEVELS
    codes = np.clip(q[..., None] - levels, 0, ACT_LEVELS).astype(np.uint8)
    return codes.reshape(*pixels.shape[:-1], pixels.shape[-1] * INPUT_CODES)


def thermometer_value(codes):
    """Value the thermometer codes stand for, ``q * 16 + 8`` (the centre of the 16-wide bin of
    the uint8 values they came from), summing the codes of each value: ``(..., C * 5) ->
    (..., C)`` float64 in 8..248."""
    codes = np.asarray(codes)
    q = codes.reshape(*codes.shape[:-1], -1, INPUT_CODES).sum(axis=-1, dtype=np.int64)
    return q * float(1 << (8 - INPUT_BITS)) + float(1 << (7 - INPUT_BITS))
