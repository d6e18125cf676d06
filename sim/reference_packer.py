"""Bit-by-bit packers of the accelerator's memory formats, written from ``docs/formats.md`` alone.

The accelerator testbenches lay out their stimulus with these instead of :mod:`models.formats`,
so the expected result (:func:`models.engine.execute_program`, which unpacks with
:mod:`models.formats`) and the stimulus do not share a packer: a bit-order bug in
:mod:`models.formats` shows up as a mismatch instead of cancelling out. Slow on purpose (one bit
at a time, no numpy bit tricks): use them for small tensors.
"""

import numpy as np

from models.thresholds import DIR_CONSTANT, threshold_bits

__all__ = ["pack_activations_ref", "pack_frame_pair_ref", "pack_weights_tiled_ref", "pack_thresholds_tiled_ref",
           "record_bits_ref"]


def _ceil(a, b):
    return -(-a // b)


def _set_bit(buf, bit):
    buf[bit >> 3] |= 1 << (bit & 7)


def pack_activations_ref(codes, word_bits):
    """Codes ``(H, W, C)`` -> bytes: group ``g`` outermost, then row, column, plane; bit ``j`` of
    the ``word_bits``-bit word of plane ``b`` is bit ``b`` of the code of channel
    ``g * word_bits + j``; words little-endian."""
    codes = np.asarray(codes)
    h, w, c = codes.shape
    g_count = _ceil(c, word_bits)
    wbytes = word_bits // 8
    out = np.zeros(g_count * h * w * 2 * wbytes, dtype=np.uint8)
    for y in range(h):
        for x in range(w):
            for ch in range(c):
                code = int(codes[y, x, ch])
                g, j = divmod(ch, word_bits)
                for plane in range(2):
                    if code >> plane & 1:
                        word = ((g * h + y) * w + x) * 2 + plane
                        _set_bit(out, word * word_bits + j)
    return out


def pack_frame_pair_ref(frames):
    """Frames ``(H, W, 6)`` uint8 -> the frame-pair image: per pixel, in H, W order, its six
    bytes then two zero bytes."""
    frames = np.asarray(frames, dtype=np.uint8)
    h, w, c = frames.shape
    out = np.zeros(h * w * 8, dtype=np.uint8)
    for y in range(h):
        for x in range(w):
            for ch in range(c):
                out[(y * w + x) * 8 + ch] = frames[y, x, ch]
    return out


def pack_weights_tiled_ref(signs, pe_count, simd_lanes):
    """Signs ``(k, k, Cin, O)`` -> bytes: tile ``t`` of ``P`` output channels outermost, then
    input group, tap row, tap column, PE; PE ``p``'s ``S``-bit word has bit ``j`` set when the
    weight of input channel ``g*S + j`` to output channel ``t*P + p`` is +1 (padding: 0)."""
    signs = np.asarray(signs)
    k, _, cin, o = signs.shape
    t_count, g_count = _ceil(o, pe_count), _ceil(cin, simd_lanes)
    out = np.zeros(t_count * g_count * k * k * pe_count * simd_lanes // 8, dtype=np.uint8)
    for dy in range(k):
        for dx in range(k):
            for ci in range(cin):
                g, j = divmod(ci, simd_lanes)
                for oc in range(o):
                    if signs[dy, dx, ci, oc] > 0:
                        t, p = divmod(oc, pe_count)
                        word = (((t * g_count + g) * k + dy) * k + dx) * pe_count + p
                        _set_bit(out, word * simd_lanes + j)
    return out


def record_bits_ref(acc_bound):
    """Bits of one threshold record: three thresholds, a 2-bit direction and a 2-bit constant,
    rounded up to a multiple of 32."""
    return _ceil(3 * threshold_bits(acc_bound) + 4, 32) * 32


def pack_thresholds_tiled_ref(table, pe_count, acc_bound):
    """Threshold table -> one record per channel of every tile: ``t0``, ``t1``, ``t2`` (two's
    complement, ``threshold_bits(acc_bound)`` each) from bit 0 up, then ``direction`` (2 bits)
    and ``constant`` (2 bits), zero padding; channels past ``C`` are constant-0 records."""
    tb = threshold_bits(acc_bound)
    rbits = record_bits_ref(acc_bound)
    channels = table.thresholds.shape[0]
    total = _ceil(channels, pe_count) * pe_count
    out = np.zeros(total * rbits // 8, dtype=np.uint8)
    for c in range(total):
        if c < channels:
            values = [int(v) for v in table.thresholds[c]] + [int(table.direction[c]), int(table.constant[c])]
        else:
            values = [0, 0, 0, DIR_CONSTANT, 0]
        pos = c * rbits
        for value, width in zip(values, (tb, tb, tb, 2, 2)):
            value &= (1 << width) - 1
            for bit in range(width):
                if value >> bit & 1:
                    _set_bit(out, pos + bit)
            pos += width
    return out
