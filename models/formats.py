"""Packed data formats shared by the gateware, the testbenches and the host layer.

Every layout here is documented bit by bit in ``docs/formats.md``; nothing else in the project
re-derives an offset or a bit position. Multi-byte words are little-endian in memory, and
"bit j" of a word is the bit of weight ``2**j``. The word width ``word_bits`` follows the
hardware configuration (the PE array's SIMD width); it is any multiple of 8.

Activations (``pack_activations``)
    Codes ``(H, W, C)`` -> bytes ``(G, H, W, 2, word_bits/8)`` with ``G = ceil(C/word_bits)``:
    channel group ``g`` of pixel ``(y, x)`` is two words, plane 0 (code bit 0) then plane 1
    (code bit 1); bit ``j`` of plane ``b`` is bit ``b`` of the code of channel
    ``g*word_bits + j``. Channels past ``C`` are code 0.

Weights (``pack_weights``)
    Signs ``(k, k, C, O)`` -> bytes ``(O, G, k, k, word_bits/8)``: for output channel ``o``,
    input group ``g`` and tap ``(dy, dx)``, bit ``j`` is 1 when the weight of input channel
    ``g*word_bits + j`` is +1 and 0 when it is -1. Padding channels are 0 (their activations are
    code 0, so they contribute nothing).

Threshold records (``THRESHOLD_RECORD``)
    One record per output channel, fields from bit 0 up: ``t0``, ``t1``, ``t2`` (two's
    complement, ``threshold_bits`` each), ``direction`` (2 bits: 0 increasing, 1 decreasing,
    2 or 3 constant), ``constant`` (2 bits), zero padding to ``record_bits`` (the smallest multiple of
    32 that holds them).

Accumulators (``pack_accumulators``)
    Raw accumulators ``(H, W, C)`` as little-endian two's-complement int16 or int32 (the
    design's ``accumulator_bits``), in H, W, C order, the channel axis padded with zeros to a
    whole number of output tiles.

Frame pairs (``pack_frame_pair``)
    The network input as the host writes it for the accelerator's first layer: ``(H, W, 8)``
    bytes, one 64-bit word per pixel: R, G, B of frame 1, R, G, B of frame 2, two ignored bytes.
    The engine's loader turns it into codes (:func:`frame_pair_codes`): per pixel, the
    thermometer codes of the six values (``models.quant.thermometer_codes``, five each) and two
    zero codes, 32 code channels.

Tiled weights and thresholds (``pack_weights_tiled``, ``pack_thresholds_tiled``)
    The accelerator's order: one tile of ``P`` output channels contiguous, ``(T, G, k, k, P, S/8)``
    for weights and ``(T*P, record_bytes)`` for threshold records.
"""

from dataclasses import dataclass

import numpy as np

from .errors import FormatError
from .quant import ACT_BITS, ACT_LEVELS, INPUT_CODES, thermometer_codes
from .thresholds import DIR_CONSTANT, DIR_CONSTANT_ALT, DIR_DECREASING, DIR_INCREASING, ThresholdTable, threshold_bits

__all__ = [
    "check_word_bits", "channel_groups", "pack_activations", "unpack_activations",
    "pack_weights", "unpack_weights", "Field", "RecordLayout", "threshold_record",
    "pack_thresholds", "unpack_thresholds", "pack_accumulators", "unpack_accumulators",
    "accumulator_bits", "tiles", "pack_weights_tiled", "unpack_weights_tiled", "pack_thresholds_tiled",
    "words_to_ints", "ints_to_words", "FRAME_PIXEL_BYTES", "FRAME_COLORS", "FRAME_CODE_CHANNELS",
    "pack_frame_pair", "unpack_frame_pair", "frame_pair_codes",
]

#: Bytes of one frame-pair pixel in device memory (R, G, B of each frame, two ignored bytes).
FRAME_PIXEL_BYTES = 8
#: Values of a frame-pair pixel (two RGB frames stacked on channels, the network's input order).
FRAME_COLORS = 6
#: Code channels of a frame-pair pixel after the input quantizer: 6 values x 5 codes, 2 zero.
FRAME_CODE_CHANNELS = 32


def check_word_bits(word_bits):
    """Validate a word width: a positive multiple of 8."""
    if isinstance(word_bits, bool) or not isinstance(word_bits, (int, np.integer)) or word_bits <= 0 \
            or word_bits % 8:
        raise ValueError(f"word width must be a positive multiple of 8 bits, not {word_bits!r}")
    return int(word_bits)


def channel_groups(channels, word_bits):
    """Number of ``word_bits``-wide channel groups for ``channels`` channels."""
    return -(-int(channels) // check_word_bits(word_bits))


def _pack_bits(bits, word_bits):
    """(..., G*word_bits) bools -> (..., G, word_bits/8) uint8, bit j of each word = element j."""
    *lead, n = bits.shape
    packed = np.packbits(bits, axis=-1, bitorder="little")
    return packed.reshape(*lead, n // word_bits, word_bits // 8)


def _unpack_bits(packed):
    """(..., G, word_bytes) uint8 -> (..., G*word_bits) bools."""
    *lead, g, nbytes = packed.shape
    return np.unpackbits(packed.reshape(*lead, g * nbytes), axis=-1, bitorder="little").astype(bool)


def pack_activations(codes, word_bits):
    """Pack 2-bit codes ``(H, W, C)`` into ``(G, H, W, 2, word_bits/8)`` bytes (see module doc)."""
    word_bits = check_word_bits(word_bits)
    codes = np.asarray(codes)
    if codes.ndim != 3:
        raise ValueError(f"codes must be (H, W, C), not shape {codes.shape!r}")
    if codes.size and (codes.min() < 0 or codes.max() > ACT_LEVELS):
        raise ValueError(f"codes must lie in 0..{ACT_LEVELS}")
    h, w, c = codes.shape
    g = channel_groups(c, word_bits)
    padded = np.zeros((h, w, g * word_bits), dtype=np.uint8)
    padded[..., :c] = codes
    planes = np.stack([(padded >> b) & 1 for b in range(ACT_BITS)], axis=2).astype(bool)  # H W 2 Cp
    packed = _pack_bits(planes, word_bits)                  # H, W, 2, G, bytes
    return np.ascontiguousarray(packed.transpose(3, 0, 1, 2, 4))


def unpack_activations(packed, channels):
    """Inverse of :func:`pack_activations`; returns uint8 codes ``(H, W, channels)``."""
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.ndim != 5 or packed.shape[3] != ACT_BITS:
        raise FormatError(f"packed activations must be (G, H, W, {ACT_BITS}, bytes), not {packed.shape!r}")
    g, h, w, _, nbytes = packed.shape
    if not 0 < channels <= g * nbytes * 8:
        raise FormatError(f"{channels} channels do not fit {g} groups of {nbytes * 8} bits")
    bits = _unpack_bits(packed.transpose(1, 2, 3, 0, 4))    # H, W, 2, G*wb
    codes = sum(bits[:, :, b, :].astype(np.uint8) << b for b in range(ACT_BITS))
    return codes[..., :channels].astype(np.uint8)


def pack_weights(signs, word_bits):
    """Pack signs ``(k, k, C, O)`` into ``(O, G, k, k, word_bits/8)`` bytes (see module doc)."""
    word_bits = check_word_bits(word_bits)
    signs = np.asarray(signs)
    if signs.ndim != 4:
        raise ValueError(f"signs must be (k, k, C, O), not shape {signs.shape!r}")
    if signs.size and not np.isin(signs, (-1, 1)).all():
        raise ValueError("signs must be -1 or +1")
    k1, k2, c, o = signs.shape
    g = channel_groups(c, word_bits)
    bits = np.zeros((o, k1, k2, g * word_bits), dtype=bool)
    bits[..., :c] = signs.transpose(3, 0, 1, 2) > 0
    packed = _pack_bits(bits, word_bits)                    # O, k, k, G, bytes
    return np.ascontiguousarray(packed.transpose(0, 3, 1, 2, 4))


def unpack_weights(packed, c_in):
    """Inverse of :func:`pack_weights`; returns int8 signs ``(k, k, c_in, O)``."""
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.ndim != 5:
        raise FormatError(f"packed weights must be (O, G, k, k, bytes), not {packed.shape!r}")
    o, g, k1, k2, nbytes = packed.shape
    if not 0 < c_in <= g * nbytes * 8:
        raise FormatError(f"{c_in} input channels do not fit {g} groups of {nbytes * 8} bits")
    bits = _unpack_bits(packed.transpose(0, 2, 3, 1, 4))    # O, k, k, G*wb
    signs = np.where(bits[..., :c_in], 1, -1).astype(np.int8)
    return np.ascontiguousarray(signs.transpose(1, 2, 3, 0))


def words_to_ints(packed):
    """Little-endian byte words ``(..., nbytes)`` -> Python ints (object array ``(...)``)."""
    packed = np.asarray(packed, dtype=np.uint8)
    flat = packed.reshape(-1, packed.shape[-1])
    out = np.empty(flat.shape[0], dtype=object)
    for i, row in enumerate(flat):
        out[i] = int.from_bytes(row.tobytes(), "little")
    return out.reshape(packed.shape[:-1])


def ints_to_words(values, word_bits):
    """Python ints -> little-endian byte words ``(..., word_bits/8)``."""
    word_bits = check_word_bits(word_bits)
    values = np.asarray(values, dtype=object)
    out = np.zeros(values.shape + (word_bits // 8,), dtype=np.uint8)
    for idx in np.ndindex(values.shape):
        v = int(values[idx])
        if not 0 <= v < (1 << word_bits):
            raise ValueError(f"{v} does not fit an unsigned {word_bits}-bit word")
        out[idx] = np.frombuffer(v.to_bytes(word_bits // 8, "little"), dtype=np.uint8)
    return out


@dataclass(frozen=True)
class Field:
    """One field of a bit-level record: name, width in bits, signed or not, documentation."""

    name: str
    width: int
    signed: bool = False
    doc: str = ""


class RecordLayout:
    """A bit-level record: fields laid out from bit 0 up, zero-padded to ``bits``.

    Parameters
    ----------
    name : str
    fields : list of Field
    bits : int, optional
        Total width; default the smallest multiple of 32 holding every field.

    Raises
    ------
    ValueError
        If a field name repeats, a width is not positive or the fields exceed ``bits``.
    """

    def __init__(self, name, fields, bits=None):
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            raise ValueError(f"record {name}: field names repeat: {names}")
        for f in fields:
            if f.width <= 0:
                raise ValueError(f"record {name}: field {f.name} width must be positive, not {f.width}")
        used = sum(f.width for f in fields)
        if bits is None:
            bits = -(-used // 32) * 32
        if used > bits:
            raise ValueError(f"record {name}: fields take {used} bits, more than {bits}")
        self.name = name
        self.fields = tuple(fields)
        self.bits = bits
        offsets, pos = {}, 0
        for f in fields:
            offsets[f.name] = pos
            pos += f.width
        self.offsets = offsets

    @property
    def nbytes(self):
        return self.bits // 8

    def field(self, name):
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"record {self.name} has no field {name!r}")

    def pack(self, **values):
        """Values -> record as a Python int (first field in the low bits).

        Raises
        ------
        FormatError
            If a field is missing or unknown, or a value does not fit its field.
        """
        unknown = set(values) - {f.name for f in self.fields}
        if unknown:
            raise FormatError(f"record {self.name}: unknown fields {sorted(unknown)}")
        word = 0
        for f in self.fields:
            if f.name not in values:
                raise FormatError(f"record {self.name}: field {f.name!r} is missing")
            v = int(values[f.name])
            lo, hi = (-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1) if f.signed else (0, (1 << f.width) - 1)
            if not lo <= v <= hi:
                raise FormatError(f"record {self.name}: {f.name}={v} does not fit "
                                  f"{'signed' if f.signed else 'unsigned'} {f.width} bits")
            word |= (v & ((1 << f.width) - 1)) << self.offsets[f.name]
        return word

    def unpack(self, value):
        """Record (Python int) -> dict of field values."""
        value = int(value)
        if not 0 <= value < (1 << self.bits):
            raise FormatError(f"record {self.name}: {value:#x} does not fit {self.bits} bits")
        out = {}
        for f in self.fields:
            v = (value >> self.offsets[f.name]) & ((1 << f.width) - 1)
            if f.signed and v >> (f.width - 1):
                v -= 1 << f.width
            out[f.name] = v
        return out

    def to_bytes(self, value):
        return int(value).to_bytes(self.nbytes, "little")

    def from_bytes(self, data):
        if len(data) != self.nbytes:
            raise FormatError(f"record {self.name}: needs {self.nbytes} bytes, not {len(data)}")
        return int.from_bytes(bytes(data), "little")

    def unpack_array(self, packed):
        """Many records at once: ``(N, nbytes)`` uint8 -> dict of int64 arrays (vectorized
        :meth:`unpack`)."""
        packed = np.asarray(packed, dtype=np.uint8)
        if packed.ndim != 2 or packed.shape[1] != self.nbytes:
            raise FormatError(f"record {self.name}: records must be (N, {self.nbytes}) bytes, not {packed.shape!r}")
        bits = np.unpackbits(packed, axis=1, bitorder="little").astype(np.int64)
        out = {}
        for f in self.fields:
            lo = self.offsets[f.name]
            v = bits[:, lo:lo + f.width] @ (np.int64(1) << np.arange(f.width, dtype=np.int64))
            if f.signed:
                v = np.where(v >= 1 << (f.width - 1), v - (1 << f.width), v)
            out[f.name] = v
        return out

    def pack_array(self, **values):
        """Many records at once: equal-length integer arrays per field -> ``(N, nbytes)`` uint8
        (vectorized :meth:`pack`)."""
        n = None
        bits = None
        for f in self.fields:
            if f.name not in values:
                raise FormatError(f"record {self.name}: field {f.name!r} is missing")
            v = np.asarray(values[f.name], dtype=np.int64).reshape(-1)
            if n is None:
                n = v.size
                bits = np.zeros((n, self.bits), dtype=np.uint8)
            lo_v, hi_v = (-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1) if f.signed else (0, (1 << f.width) - 1)
            if v.size != n or (v.size and (v.min() < lo_v or v.max() > hi_v)):
                raise FormatError(f"record {self.name}: {f.name} values must be {n} integers in {lo_v}..{hi_v}")
            u = v & ((1 << f.width) - 1)
            lo = self.offsets[f.name]
            bits[:, lo:lo + f.width] = (u[:, None] >> np.arange(f.width)) & 1
        unknown = set(values) - {f.name for f in self.fields}
        if unknown:
            raise FormatError(f"record {self.name}: unknown fields {sorted(unknown)}")
        return np.packbits(bits, axis=1, bitorder="little")

    def doc_table(self):
        """Markdown table of the fields (for docs/formats.md)."""
        rows = ["| bits | field | type | meaning |", "|---|---|---|---|"]
        for f in self.fields:
            lo = self.offsets[f.name]
            rng = f"{lo}" if f.width == 1 else f"{lo + f.width - 1}:{lo}"
            rows.append(f"| {rng} | `{f.name}` | {'s' if f.signed else 'u'}{f.width} | {f.doc} |")
        used = sum(f.width for f in self.fields)
        if used < self.bits:
            rows.append(f"| {self.bits - 1}:{used} | - | - | zero |")
        return "\n".join(rows)


def threshold_record(acc_bound):
    """The threshold record layout for a layer (or design) with accumulator bound ``acc_bound``."""
    tb = threshold_bits(acc_bound)
    return RecordLayout("threshold", [
        Field("t0", tb, True, "threshold T0"),
        Field("t1", tb, True, "threshold T1"),
        Field("t2", tb, True, "threshold T2"),
        Field("direction", 2, False,
              f"{DIR_INCREASING} increasing (count acc >= T), {DIR_DECREASING} decreasing "
              f"(count acc <= T), {DIR_CONSTANT} or {DIR_CONSTANT_ALT} constant"),
        Field("constant", 2, False, "output code of a constant channel"),
    ])


def pack_thresholds(table, layout=None):
    """Threshold table -> bytes ``(C, record_bits/8)``; ``layout`` defaults to the table's own."""
    layout = threshold_record(table.acc_bound) if layout is None else layout
    t = table.thresholds
    return layout.pack_array(t0=t[:, 0], t1=t[:, 1], t2=t[:, 2], direction=table.direction,
                             constant=table.constant)


def unpack_thresholds(packed, acc_bound, layout=None):
    """Inverse of :func:`pack_thresholds`.

    Every record is accepted, as the threshold unit accepts it: direction 3 is kept as 3 (so the
    table packs back to the same bytes) and means constant; padding bits are ignored.
    """
    layout = threshold_record(acc_bound) if layout is None else layout
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.ndim != 2 or packed.shape[1] != layout.nbytes:
        raise FormatError(f"packed thresholds must be (C, {layout.nbytes}), not {packed.shape!r}")
    f = layout.unpack_array(packed)
    # Every 2-bit direction is valid: 3 is constant, like 2 (the threshold unit's behaviour).
    th = np.stack([f["t0"], f["t1"], f["t2"]], axis=1).astype(np.int64)
    return ThresholdTable(th, f["direction"].astype(np.uint8), f["constant"].astype(np.uint8), int(acc_bound))


def accumulator_bits(acc_bound):
    """Width of a stored raw accumulator for a design whose largest ``|acc|`` is ``acc_bound``: 16 or 32."""
    return 16 if acc_bound <= (1 << 15) - 1 else 32


def pack_accumulators(acc, acc_bits=32, channels=None):
    """Raw accumulators ``(H, W, C)`` -> little-endian two's-complement bytes ``(H, W, channels, acc_bits/8)``.

    ``channels`` (default ``C``) pads the channel axis with zeros, as the accelerator writes whole
    tiles of output channels.
    """
    if acc_bits not in (16, 32):
        raise ValueError(f"accumulator width must be 16 or 32 bits, not {acc_bits!r}")
    acc = np.asarray(acc)
    lim = 1 << (acc_bits - 1)
    if acc.size and (acc.min() < -lim or acc.max() >= lim):
        raise ValueError(f"accumulators do not fit int{acc_bits}")
    channels = acc.shape[-1] if channels is None else channels
    if channels < acc.shape[-1]:
        raise ValueError(f"cannot store {acc.shape[-1]} channels in {channels}")
    out = np.zeros(acc.shape[:-1] + (channels,), dtype=f"<i{acc_bits // 8}")
    out[..., :acc.shape[-1]] = acc
    return out.view(np.uint8).reshape(*out.shape, acc_bits // 8)


def unpack_accumulators(packed, channels=None):
    """Inverse of :func:`pack_accumulators`: ``(..., C_stored, 2 or 4)`` bytes -> int32 ``(..., channels)``."""
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    if packed.shape[-1] not in (2, 4):
        raise FormatError(f"packed accumulators must end in 2 or 4 bytes, not {packed.shape!r}")
    acc = packed.view(f"<i{packed.shape[-1]}")[..., 0].astype(np.int32)
    return acc if channels is None else acc[..., :channels]


def tiles(channels, pe_count):
    """Number of ``pe_count``-wide output-channel tiles for ``channels`` output channels."""
    return -(-int(channels) // int(pe_count))


def pack_weights_tiled(signs, pe_count, simd_lanes):
    """Weights in the accelerator's tile order: ``(T, G, k, k, P, S/8)`` bytes.

    For tile ``t``, input group ``g`` and tap ``(dy, dx)``, the ``P * S`` bits hold, PE ``p``
    first-to-last, the :func:`pack_weights` word of output channel ``t*P + p`` (all zero for
    output channels past ``O``). One tile is contiguous in memory, and one ``(g, dy, dx)`` entry
    is the PE array's weight word: PE ``p`` takes bits ``p*S .. p*S + S - 1``.
    """
    signs = np.asarray(signs)
    per_channel = pack_weights(signs, simd_lanes)           # O, G, k, k, S/8
    o = per_channel.shape[0]
    t = tiles(o, pe_count)
    padded = np.zeros((t * pe_count,) + per_channel.shape[1:], dtype=np.uint8)
    padded[:o] = per_channel
    padded = padded.reshape((t, pe_count) + per_channel.shape[1:])
    return np.ascontiguousarray(padded.transpose(0, 2, 3, 4, 1, 5))


def unpack_weights_tiled(packed, c_in, c_out):
    """Inverse of :func:`pack_weights_tiled`; returns int8 signs ``(k, k, c_in, c_out)``."""
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.ndim != 6:
        raise FormatError(f"tiled weights must be (T, G, k, k, P, S/8), not {packed.shape!r}")
    t, g, k1, k2, p, nbytes = packed.shape
    if c_out > t * p:
        raise FormatError(f"{c_out} output channels do not fit {t} tiles of {p}")
    per_channel = packed.transpose(0, 4, 1, 2, 3, 5).reshape(t * p, g, k1, k2, nbytes)[:c_out]
    return unpack_weights(per_channel, c_in)


def pack_thresholds_tiled(table, pe_count, layout):
    """Threshold records in tile order: ``(T * P, record_bytes)``; channels past ``C`` are
    constant-0 records."""
    t = tiles(table.channels, pe_count)
    out = np.zeros((t * pe_count, layout.nbytes), dtype=np.uint8)
    out[:table.channels] = pack_thresholds(table, layout)
    pad = layout.to_bytes(layout.pack(t0=0, t1=0, t2=0, direction=DIR_CONSTANT, constant=0))
    out[table.channels:] = np.frombuffer(pad, dtype=np.uint8)
    return out


def pack_frame_pair(frames):
    """Two stacked RGB frames ``(H, W, 6)`` uint8 -> the frame-pair image ``(H, W, 8)`` uint8."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 3 or frames.shape[2] != FRAME_COLORS:
        raise ValueError(f"frames must be uint8 (H, W, {FRAME_COLORS}), not {frames.dtype} {frames.shape!r}")
    out = np.zeros(frames.shape[:2] + (FRAME_PIXEL_BYTES,), dtype=np.uint8)
    out[..., :FRAME_COLORS] = frames
    return out


def unpack_frame_pair(packed):
    """Inverse of :func:`pack_frame_pair` (the ignored bytes are dropped)."""
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.ndim != 3 or packed.shape[2] != FRAME_PIXEL_BYTES:
        raise FormatError(f"a frame-pair image must be (H, W, {FRAME_PIXEL_BYTES}) bytes, not {packed.shape!r}")
    return packed[..., :FRAME_COLORS].copy()


def frame_pair_codes(frames):
    """The first layer's input codes of a frame pair, ``(..., H, W, 6)`` uint8 frames (or an
    ``(H, W, 8)`` frame-pair image) -> ``(..., H, W, 32)`` codes: channel ``c*5 + i`` is
    thermometer level ``i`` of value ``c``; channels 30 and 31 are 0."""
    frames = np.asarray(frames)
    if frames.shape[-1] == FRAME_PIXEL_BYTES:
        frames = frames[..., :FRAME_COLORS]
    if frames.shape[-1] != FRAME_COLORS:
        raise ValueError(f"frames must have {FRAME_COLORS} channels, not {frames.shape[-1]}")
    codes = thermometer_codes(frames)
    out = np.zeros(codes.shape[:-1] + (FRAME_CODE_CHANNELS,), dtype=np.uint8)
    out[..., :FRAME_COLORS * INPUT_CODES] = codes
    return out
