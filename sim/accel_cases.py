"""Random and directed single-layer cases for the accelerator.

A case is a memory image (descriptors, tiled weights, threshold records, source tensors, a
pre-filled destination) and a descriptor list; the expected memory after the run comes from the
functional model :func:`models.engine.execute_program` on a copy of the same image, so the
comparison covers every byte the engine writes, and every byte it must not. The image is laid
out with the bit-by-bit packers of :mod:`sim.reference_packer`, not with :mod:`models.formats`
(which the model unpacks with), so a packing bug cannot cancel out.
"""

from dataclasses import dataclass

import numpy as np

from models.board import BUFFER_ALIGN
from models.conv import conv_w1a2_direct
from models.engine import (DESCRIPTOR, FRAME_SIMD_LANES, OP_CODES, OUTPUT_CODES, OUTPUT_RAW, SRC_FRAMES,
                           Descriptor, act_buffer_words_needed, execute_program, raw_channels, raw_tensor_bytes)
from models.formats import FRAME_CODE_CHANNELS, FRAME_COLORS, channel_groups, frame_pair_codes, tiles
from models.ops import space_to_depth, upsample_nearest
from models.thresholds import DIR_CONSTANT, DIR_CONSTANT_ALT, DIR_DECREASING, DIR_INCREASING, ThresholdTable

from .reference_packer import (pack_activations_ref, pack_frame_pair_ref, pack_thresholds_tiled_ref,
                               pack_weights_tiled_ref)

__all__ = ["LayerCase", "random_layer", "build_case", "describe_mismatch", "OP_NAMES"]

OP_NAMES = {v: k for k, v in OP_CODES.items()}
_ALIGN = BUFFER_ALIGN


@dataclass
class LayerCase:
    """One layer's operands and where they go."""

    kernel: int
    op: int
    raw: bool
    codes: np.ndarray          # source (Hs, Ws, Cs)
    signs: np.ndarray          # (k, k, Cin, O)
    table: ThresholdTable      # None when raw
    dst_groups_before: int     # concat: groups of other data before the output in its tensor
    dst_groups_after: int
    frames: bool = False       # the source is a frame-pair image: codes holds the (Hs, Ws, 6) uint8 frames

    def describe(self):
        h, w, c = self.codes.shape
        src = f"frame pair {h}x{w}" if self.frames else f"{h}x{w}x{c}"
        return (f"k={self.kernel} {OP_NAMES[self.op]} {'raw' if self.raw else 'codes'} "
                f"{src} -> {self.signs.shape[3]}")

    def conv_input(self):
        """The codes the convolution reads (after the input operation)."""
        x = space_to_depth(frame_pair_codes(self.codes), 2) if self.frames else self.codes
        if self.op == OP_CODES["space_to_depth"] and not self.frames:
            x = space_to_depth(x, 2)
        elif self.op == OP_CODES["upsample"]:
            x = upsample_nearest(x, 2)
        return x


def _random_table(rng, acc, acc_bound):
    """Thresholds drawn from the layer's own accumulators, so ties and every code occur."""
    o = acc.shape[-1]
    flat = acc.reshape(-1, o)
    th = np.zeros((o, 3), dtype=np.int64)
    direction = np.zeros(o, dtype=np.uint8)
    const = np.zeros(o, dtype=np.uint8)
    for c in range(o):
        kind = rng.random()
        picks = np.sort(rng.choice(flat[:, c], 3)) + rng.integers(-1, 2, 3)
        if rng.random() < 0.1:      # beyond the reachable range
            picks[rng.integers(0, 3)] = rng.choice([-acc_bound - 1, acc_bound + 1])
        picks = np.clip(np.sort(picks), -acc_bound - 1, acc_bound + 1)
        if kind < 0.6:
            direction[c], th[c] = DIR_INCREASING, picks
        elif kind < 0.9:
            direction[c], th[c] = DIR_DECREASING, picks[::-1]
        else:                       # constant: direction 2 or 3 (the unit treats both alike)
            direction[c], const[c] = DIR_CONSTANT if kind < 0.95 else DIR_CONSTANT_ALT, rng.integers(0, 4)
    return ThresholdTable(th, direction, const, acc_bound)


def random_layer(rng, params, *, max_hw=8, kernel=None, op=None, raw=None, frames=None):
    """A random layer that fits the engine (shape, buffers, accumulator bound).

    ``kernel``, ``op`` (an input_op code) and ``raw`` fix the layer's kind; the shapes stay random.
    ``frames``: True for a frame-pair source (space_to_depth), False for codes, None (default) to
    draw it (a frame pair now and then where the configuration takes them and the kind allows).

    Raises
    ------
    RuntimeError
        If no layer of that kind fits the engine configuration (naming the kind).
    """
    s, p = params.simd_lanes, params.pe_count
    want = (kernel, op, raw)
    want_frames = frames
    if frames is None:
        frames = (params.simd_lanes in FRAME_SIMD_LANES and op in (None, OP_CODES["space_to_depth"])
                  and rng.random() < 0.15)
    for _ in range(1000):
        kernel = int(rng.choice([1, 3])) if want[0] is None else want[0]
        op = int(rng.choice(list(OP_CODES.values()))) if want[1] is None else want[1]
        raw = bool(rng.random() < 0.35) if want[2] is None else bool(want[2])
        if frames:
            op = OP_CODES["space_to_depth"]
            hs, ws = 2 * int(rng.integers(1, max_hw // 2 + 1)), 2 * int(rng.integers(1, max_hw // 2 + 1))
            cs = FRAME_CODE_CHANNELS
        elif op == OP_CODES["space_to_depth"]:
            hs, ws = 2 * int(rng.integers(1, max_hw // 2 + 1)), 2 * int(rng.integers(1, max_hw // 2 + 1))
            cs = s * int(rng.integers(1, 3))
        else:
            hs, ws = int(rng.integers(1, max_hw + 1)), int(rng.integers(1, max_hw + 1))
            if op == OP_CODES["upsample"]:
                hs, ws = max(1, hs // 2), max(1, ws // 2)
            cs = int(rng.integers(1, 3 * s + 1))
        o = int(rng.integers(1, 3 * p + 1))
        cin = 4 * cs if op == OP_CODES["space_to_depth"] else cs
        fields = dict(kernel=kernel, input_op=op, output_mode=int(raw), src_format=SRC_FRAMES if frames else 0,
                      layer_id=0, src_height=hs, src_width=ws, src_channels=cs, out_channels=o, src_addr=0,
                      weights_addr=0, thresholds_addr=0, dst_addr=0)
        d = Descriptor(fields, params)
        if (act_buffer_words_needed(d) > params.act_buffer_words
                or d.in_groups * kernel * kernel > params.weight_buffer_words
                or 3 * kernel * kernel * cin > params.acc_bound):
            continue
        if frames:
            codes = rng.integers(0, 256, (hs, ws, FRAME_COLORS), dtype=np.uint8)
        else:
            codes = rng.integers(0, 4, (hs, ws, cs)).astype(np.uint8)
            if rng.random() < 0.15:
                codes[:] = rng.choice([0, 3])          # all-zero or all-three activations
        signs = np.where(rng.random((kernel, kernel, cin, o)) < 0.5, -1, 1).astype(np.int8)
        case = LayerCase(kernel, op, raw, codes, signs, None, int(rng.integers(0, 2)), int(rng.integers(0, 2)),
                         frames)
        if not raw:
            case.table = _random_table(rng, conv_w1a2_direct(case.conv_input(), signs), params.acc_bound)
        return case
    kind = ", ".join(f"{n}={v}" for n, v in zip(("kernel", "op", "raw", "frames"), want + (want_frames,))
                     if v is not None) or "any kind"
    raise RuntimeError(f"no random layer ({kind}) fits this engine configuration ({params})")


def build_case(rng, params, layers, base, size, layer_ids=None):
    """Lay out ``layers`` in a memory image of ``size`` bytes at device address ``base``.

    Returns
    -------
    image : numpy.ndarray of uint8
    desc_addr : int
    descriptors : list of Descriptor
    expected : numpy.ndarray of uint8
        The image after the functional model ran the list.
    result : (error, index)
        What the functional model reported.
    """
    image = rng.integers(0, 256, size, dtype=np.uint8)     # garbage everywhere not written
    cursor = 0

    def alloc(nbytes):
        nonlocal cursor
        cursor = -(-cursor // _ALIGN) * _ALIGN
        off = cursor
        cursor += nbytes
        if cursor > size:
            raise ValueError("case does not fit the memory")
        return off

    desc_off = alloc(len(layers) * DESCRIPTOR.nbytes)
    descs = []
    for i, layer in enumerate(layers):
        hs, ws, cs = layer.codes.shape
        k, _, cin, o = layer.signs.shape
        if layer.frames:
            cs = FRAME_CODE_CHANNELS
            src = pack_frame_pair_ref(layer.codes)
        else:
            src = pack_activations_ref(layer.codes, params.simd_lanes)
        src_off = alloc(src.size)
        image[src_off:src_off + src.size] = src
        wt = pack_weights_tiled_ref(layer.signs, params.pe_count, params.simd_lanes)
        w_off = alloc(wt.size)
        image[w_off:w_off + wt.size] = wt
        t_off = 0
        if not layer.raw:
            th = pack_thresholds_tiled_ref(layer.table, params.pe_count, params.acc_bound)
            t_off = alloc(th.size)
            image[t_off:t_off + th.size] = th
        fields = dict(kernel=k, input_op=layer.op, output_mode=OUTPUT_RAW if layer.raw else OUTPUT_CODES,
                      src_format=SRC_FRAMES if layer.frames else 0, layer_id=(layer_ids[i] if layer_ids else 10 + i), src_height=hs,
                      src_width=ws, src_channels=cs, out_channels=o, src_addr=base + src_off,
                      weights_addr=base + w_off, thresholds_addr=base + t_off if t_off else 0, dst_addr=0)
        d = Descriptor(fields, params)
        if layer.raw:
            nbytes = raw_tensor_bytes(d.out_height, d.out_width, o, params)
            d_off = alloc(nbytes)
        else:
            g = channel_groups(o, params.simd_lanes)
            plane = d.out_height * d.out_width * params.bus_bytes
            whole = alloc((layer.dst_groups_before + g + layer.dst_groups_after) * plane)
            # the tensor around the output holds valid codes of other layers (concat)
            d_off = whole + layer.dst_groups_before * plane
        fields["dst_addr"] = base + d_off
        d = Descriptor(fields, params)
        descs.append(d)
        image[desc_off + i * DESCRIPTOR.nbytes:desc_off + (i + 1) * DESCRIPTOR.nbytes] = \
            np.frombuffer(d.to_bytes(), dtype=np.uint8)
    expected = np.concatenate([np.zeros(base, np.uint8), image.copy()])
    result = execute_program(expected, base + desc_off, len(descs), params, (base, size))
    return image, base + desc_off, descs, expected[base:], result


def describe_mismatch(expected, got, descs, base, params):
    """One paragraph on the first differing byte: which region of which layer, where in it."""
    diff = np.flatnonzero(expected != got)
    if diff.size == 0:
        return None
    first = int(diff[0])
    addr = base + first
    where = "outside every output region (a stray write)"
    for i, d in enumerate(descs):
        daddr, nbytes = d.regions()["dst"]
        if daddr <= addr < daddr + nbytes:
            off = addr - daddr
            if d.output_mode == OUTPUT_RAW:
                elem = params.acc_bits // 8
                stride = raw_channels(d.out_channels, params)
                pix, ch = divmod(off // elem, stride)
                y, x = divmod(pix, d.out_width)
                where = f"layer {i} (raw) at y={y} x={x} channel {ch}"
            else:
                word, byte = divmod(off, params.bus_bytes)
                g, rest = divmod(word, d.out_height * d.out_width)
                y, x = divmod(rest, d.out_width)
                plane, lane_byte = divmod(byte, params.simd_lanes // 8)
                ch0 = g * params.simd_lanes + lane_byte * 8
                where = f"layer {i} (codes) at y={y} x={x} channels {ch0}..{ch0 + 7} plane {plane}"
            break
    return (f"{diff.size} bytes differ; first at 0x{addr:08x}: {where}: expected 0x{expected[first]:02x}, "
            f"got 0x{got[first]:02x}")
