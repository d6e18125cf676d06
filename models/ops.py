"""Tensor re-arrangements of LMFlowNet, all NHWC (or HWC): space_to_depth, upsampling, concat.

These are exact index permutations, identical for codes, accumulators and floats; the
accelerator implements them as read/write address patterns.
"""

import numpy as np

__all__ = ["space_to_depth", "upsample_nearest", "concat_channels", "pad_same"]


def space_to_depth(x, block=2):
    """TensorFlow ``space_to_depth``: ``out[y, x, (dy*block + dx)*C + c] = in[y*block+dy, x*block+dx, c]``.

    Parameters
    ----------
    x : numpy.ndarray, shape ``(..., H, W, C)``
    block : int
        Block size; ``H`` and ``W`` must be multiples of it.

    Raises
    ------
    ValueError
        If ``H`` or ``W`` is not a multiple of ``block``.
    """
    *lead, h, w, c = x.shape
    if block < 1 or h % block or w % block:
        raise ValueError(f"space_to_depth({block}) needs H and W divisible by {block}, not {h}x{w}")
    y = x.reshape(*lead, h // block, block, w // block, block, c)
    n = len(lead)
    y = np.moveaxis(y, n + 2, n + 1)  # (..., H/b, W/b, dy, dx, C) after swapping the block axes
    return y.reshape(*lead, h // block, w // block, block * block * c)


def upsample_nearest(x, factor=2):
    """Nearest-neighbour upsampling by pixel duplication: ``out[y, x] = in[y // f, x // f]``."""
    if factor < 1:
        raise ValueError(f"upsampling factor must be >= 1, not {factor!r}")
    return np.repeat(np.repeat(x, factor, axis=-3), factor, axis=-2)


def concat_channels(tensors):
    """Concatenate along the channel (last) axis; spatial shapes must agree."""
    shapes = {t.shape[:-1] for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"concat needs equal spatial shapes, not {sorted(shapes)}")
    return np.concatenate(tensors, axis=-1)


def pad_same(x, kernel):
    """Zero-pad the two spatial axes for a stride-1 SAME convolution of an odd ``kernel``."""
    if kernel % 2 != 1:
        raise ValueError(f"SAME padding here supports odd kernels only, not {kernel}")
    p = kernel // 2
    pad = [(0, 0)] * (x.ndim - 3) + [(p, p), (p, p), (0, 0)]
    return np.pad(x, pad)
