"""The convolution engine's contract: parameters, layer descriptors, memory layouts, validation,
and a functional model that executes descriptors on a memory image exactly as the hardware does.

One layer descriptor tells the engine to run one convolution::

    source tensor (codes, group-major layout, at src_addr; or the frame-pair image)
      -> input operation: identity | space_to_depth(2) | nearest x2 upsampling
      -> k x k conv (k = 1 or 3, stride 1, SAME zero padding) with tiled binary weights
      -> thresholds (2-bit codes) or raw accumulators
      -> destination (at dst_addr)

Concatenation is free: in the activation layout (``models.formats.pack_activations``) channel
groups are outermost, so the channels ``[k*S, ...)`` of a tensor are a tensor of their own at
``base + k*H*W*bus_bytes``. A layer writes "at a channel offset" by pointing ``dst_addr`` at the
group it starts in; a consumer reads a channel range the same way.

The bus word is one activation pixel-group: ``bus_bits = 2 * S`` (plane 0 in the low ``S`` bits,
plane 1 in the high ``S`` bits), so the activation layout is a sequence of bus words.

The first layer reads the network input as the host writes it: a frame-pair image
(``src_format`` 1, ``models.formats.pack_frame_pair``: 8 bytes a pixel). Its loader turns the
uint8 values into thermometer codes (``models.formats.frame_pair_codes``: 32 code channels a
pixel) and applies the space_to_depth as it writes the activation buffer, so the descriptor's
``input_op`` must be space_to_depth and ``src_channels`` 32. A bus word carries ``S / 32``
frame-pair pixels of a row, which the loader writes as one conv-input group: only
``S`` = 32 and 64 (one or two pixels a word) take this format.
"""

from dataclasses import dataclass

import numpy as np

from .conv import acc_bound as conv_acc_bound, conv_w1a2_direct
from .errors import FormatError
from .formats import (FRAME_CODE_CHANNELS, FRAME_PIXEL_BYTES, Field, RecordLayout, accumulator_bits,
                      channel_groups, frame_pair_codes, pack_accumulators, pack_activations, threshold_record,
                      tiles, unpack_activations, unpack_thresholds, unpack_weights_tiled)
from .ops import space_to_depth, upsample_nearest
from .thresholds import apply_thresholds

__all__ = [
    "EngineParams", "DESCRIPTOR", "OP_CODES", "OUTPUT_CODES", "OUTPUT_RAW",
    "ERR_NONE", "ERR_KERNEL", "ERR_INPUT_OP", "ERR_SHAPE", "ERR_CAPACITY", "ERR_OVERFLOW",
    "ERR_ALIGN", "ERR_ADDRESS", "ERR_FORMAT", "ERROR_NAMES", "SRC_CODES", "SRC_FRAMES", "FRAME_SIMD_LANES",
    "Descriptor", "validate_descriptor",
    "execute_descriptor", "execute_program", "row_stride", "act_buffer_words_needed", "raw_channels",
    "raw_tensor_bytes", "window_end", "ADDRESS_SPACE",
]

#: input_op field values.
OP_CODES = {"identity": 0, "space_to_depth": 1, "upsample": 2}
#: output_mode field values.
OUTPUT_CODES = 0
OUTPUT_RAW = 1
#: src_format field values: packed 2-bit codes, or the frame-pair image (uint8 pixels).
SRC_CODES = 0
SRC_FRAMES = 1
#: Lane counts whose bus word holds whole frame-pair pixels of one conv-input group.
FRAME_SIMD_LANES = (32, 64)

ERR_NONE = 0
ERR_KERNEL = 1      # kernel is not 1 or 3
ERR_INPUT_OP = 2    # unknown input operation
ERR_SHAPE = 3       # zero size, odd size for space_to_depth, channels not a multiple of S for it
ERR_CAPACITY = 4    # source or weight tile larger than the on-chip buffers
ERR_OVERFLOW = 5    # accumulator bound beyond the design's accumulator width
ERR_ALIGN = 6       # an address not aligned to the bus word
ERR_ADDRESS = 7     # a region outside the allowed memory window
ERR_FORMAT = 8      # a frame-pair source the configuration or the descriptor cannot take
ERROR_NAMES = {ERR_NONE: "none", ERR_KERNEL: "kernel", ERR_INPUT_OP: "input_op", ERR_SHAPE: "shape",
               ERR_CAPACITY: "capacity", ERR_OVERFLOW: "overflow", ERR_ALIGN: "align",
               ERR_ADDRESS: "address", ERR_FORMAT: "format"}

#: The layer descriptor record (256 bits; documented in docs/formats.md).
DESCRIPTOR = RecordLayout("descriptor", [
    Field("kernel", 4, False, "kernel size k: 1 or 3"),
    Field("input_op", 2, False, "0 identity, 1 space_to_depth(2), 2 nearest x2 upsampling"),
    Field("output_mode", 1, False, "0 thresholded 2-bit codes, 1 raw accumulators"),
    Field("src_format", 1, False, "0 packed 2-bit codes, 1 frame-pair image (uint8 pixels, thermometer-coded "
                                  "by the loader)"),
    Field("layer_id", 8, False, "index reported in the error register and counters"),
    Field("src_height", 12, False, "source tensor height (before the input operation)"),
    Field("src_width", 12, False, "source tensor width"),
    Field("src_channels", 12, False, "source tensor channels (before the input operation)"),
    Field("out_channels", 12, False, "output channels O"),
    Field("src_addr", 32, False, "source tensor (activation layout), byte address"),
    Field("weights_addr", 32, False, "tiled weights, byte address"),
    Field("thresholds_addr", 32, False, "tiled threshold records, byte address (codes mode)"),
    Field("dst_addr", 32, False, "destination, byte address"),
], bits=256)


def raw_channels(out_channels, params):
    """Channels a pixel's raw accumulators take in memory: ``out_channels`` rounded up to a whole
    bus word (``params.bus_bits / params.acc_bits`` channels); the padding channels read 0."""
    per_word = params.bus_bits // params.acc_bits
    return -(-int(out_channels) // per_word) * per_word


def raw_tensor_bytes(height, width, out_channels, params):
    """Bytes of a raw-accumulator tensor (``models.formats.pack_accumulators`` layout with
    :func:`raw_channels` channels)."""
    return int(height) * int(width) * raw_channels(out_channels, params) * params.acc_bits // 8


#: Device addresses are 32 bits: a window reaching past this ends here (see :func:`window_end`).
ADDRESS_SPACE = 1 << 32


def window_end(window):
    """First byte address past a memory window ``(base, size)``.

    A window that would reach past the 32-bit address space ends at ``2**32``: the engine's
    addresses do not wrap around to the bottom of memory, so a region that would is outside.
    """
    base, size = window
    return min(base + size, ADDRESS_SPACE)


def _power_of_two(x):
    return x > 0 and not x & (x - 1)


@dataclass(frozen=True)
class EngineParams:
    """The convolution engine's parameters: what its formats, limits and timing depend on.

    This is the one rule set of the engine: a value the gateware could not be built with is
    rejected here, and the gateware (``hw/``), the host (``sw/``) and the testbenches build from
    an instance of this class (usually :attr:`models.hwconfig.HardwareConfig.engine_params`).

    Members
    -------
    pe_count : int
        ``P``, output channels computed in parallel (one tile): a power of two, at least 8,
        dividing ``simd_lanes``.
    simd_lanes : int
        ``S``, input channels per cycle (one group); the activation word width: a power of two,
        at least 8. The memory bus is ``2 * S`` bits (one pixel-group per beat).
    acc_bound : int
        Largest ``|acc|`` the design supports (``3 * max_kernel**2 * max_in_channels``).
    act_buffer_words : int
        On-chip activation buffer, in bus words (pixel-groups); a power of two.
    weight_buffer_words : int
        On-chip weight buffer (one of two banks), in PE-array weight words (``G * k * k`` per
        tile); a power of two.
    max_burst : int
        Longest memory burst, in beats; a power of two.
    popcount_stages : int
        Register stages in each PE's popcount tree (``0 .. log2(S)``): the PE array's latency.

    Raises
    ------
    ValueError
        Naming the parameter first: ``"pe_count must be ..., not 3"``.
    """

    pe_count: int
    simd_lanes: int
    acc_bound: int
    act_buffer_words: int
    weight_buffer_words: int
    max_burst: int = 64
    popcount_stages: int = 2

    def __post_init__(self):
        for name in ("pe_count", "simd_lanes", "acc_bound", "act_buffer_words", "weight_buffer_words",
                     "max_burst"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        stages = self.popcount_stages
        if isinstance(stages, bool) or not isinstance(stages, (int, np.integer)) or stages < 0:
            raise ValueError(f"popcount_stages must be a non-negative integer, not {stages!r}")
        if self.simd_lanes < 8 or not _power_of_two(self.simd_lanes):
            raise ValueError(f"simd_lanes must be a power of two >= 8, not {self.simd_lanes!r}")
        if self.pe_count < 8 or not _power_of_two(self.pe_count) or self.simd_lanes % self.pe_count:
            raise ValueError(f"pe_count must be a power of two >= 8 that divides simd_lanes "
                             f"({self.simd_lanes}), not {self.pe_count!r}")
        for name in ("act_buffer_words", "weight_buffer_words", "max_burst"):
            if not _power_of_two(getattr(self, name)):
                raise ValueError(f"{name} must be a power of two, not {getattr(self, name)!r}")
        levels = (int(self.simd_lanes) - 1).bit_length()
        if stages > levels:
            raise ValueError(f"popcount_stages must be at most {levels} (the levels of a "
                             f"{self.simd_lanes}-input popcount tree), not {stages!r}")
        if self.pe_count * self.acc_bits < self.bus_bits or self.pe_count * self.threshold_layout.bits < self.bus_bits:
            raise ValueError(f"pe_count must be at least {self.bus_bits // min(self.acc_bits, self.threshold_layout.bits)}"
                             f" for a {self.bus_bits}-bit bus (a tile's raw accumulators and threshold records "
                             f"are whole bus words), not {self.pe_count!r}")

    @property
    def bus_bits(self):
        return 2 * self.simd_lanes

    @property
    def bus_bytes(self):
        return self.bus_bits // 8

    @property
    def acc_bits(self):
        """Width of a raw accumulator in memory (16 or 32)."""
        return accumulator_bits(self.acc_bound)

    @property
    def threshold_layout(self):
        return threshold_record(self.acc_bound)


@dataclass(frozen=True)
class Descriptor:
    """A decoded layer descriptor with its derived shapes and memory regions."""

    fields: dict
    params: EngineParams

    def __getattr__(self, name):
        try:
            return self.__dict__["fields"][name]
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def from_bytes(cls, data, params):
        return cls(DESCRIPTOR.unpack(DESCRIPTOR.from_bytes(data)), params)

    def to_bytes(self):
        return DESCRIPTOR.to_bytes(DESCRIPTOR.pack(**self.fields))

    @property
    def op(self):
        return {v: k for k, v in OP_CODES.items()}.get(self.input_op)

    @property
    def out_height(self):
        return {0: self.src_height, 1: self.src_height // 2, 2: self.src_height * 2}.get(self.input_op, 0)

    @property
    def out_width(self):
        return {0: self.src_width, 1: self.src_width // 2, 2: self.src_width * 2}.get(self.input_op, 0)

    @property
    def in_channels(self):
        """Channels of the conv input (after the input operation)."""
        return self.src_channels * 4 if self.input_op == OP_CODES["space_to_depth"] else self.src_channels

    @property
    def frames(self):
        """The source is a frame-pair image (``src_format`` 1)."""
        return self.src_format == SRC_FRAMES

    @property
    def src_groups(self):
        return channel_groups(self.src_channels, self.params.simd_lanes)

    @property
    def src_words(self):
        """Bus words of the source tensor in memory (what the loader reads)."""
        if self.frames:
            return -(-self.src_height * self.src_width * FRAME_PIXEL_BYTES // self.params.bus_bytes)
        return self.src_groups * self.src_height * self.src_width

    @property
    def in_groups(self):
        return channel_groups(self.in_channels, self.params.simd_lanes)

    @property
    def tiles(self):
        return tiles(self.out_channels, self.params.pe_count)

    def regions(self):
        """``{name: (address, bytes)}`` of the memory this descriptor reads and writes."""
        p = self.params
        k = self.kernel
        out = {
            "src": (self.src_addr, self.src_words * p.bus_bytes),
            "weights": (self.weights_addr, self.tiles * self.in_groups * k * k * p.pe_count * p.simd_lanes // 8),
        }
        if self.output_mode == OUTPUT_CODES:
            out["thresholds"] = (self.thresholds_addr, self.tiles * p.pe_count * p.threshold_layout.nbytes)
            out["dst"] = (self.dst_addr, channel_groups(self.out_channels, p.simd_lanes)
                          * self.out_height * self.out_width * p.bus_bytes)
        else:
            out["dst"] = (self.dst_addr, raw_tensor_bytes(self.out_height, self.out_width, self.out_channels, p))
        return out


def row_stride(width):
    """Words between two rows of a source tensor in the activation buffer: ``width`` rounded up
    to a power of two (rows are addressed by shifting, not multiplying)."""
    return 1 << max(int(width) - 1, 0).bit_length()


def act_buffer_words_needed(desc):
    """Activation-buffer words a descriptor's source occupies: ``groups * height * row_stride``
    (a frame-pair source is stored as the conv input: space_to_depth applied by the loader)."""
    if desc.frames:
        return desc.in_groups * desc.out_height * row_stride(desc.out_width)
    return desc.src_groups * desc.src_height * row_stride(desc.src_width)


def validate_descriptor(desc, window=None):
    """The error code the engine reports for a descriptor (``ERR_NONE`` when it can run).

    The checks run in this order and the first that fails gives the code: kernel, input_op,
    shape (a zero size; space_to_depth with an odd size or channels not a multiple of ``S``),
    format (a frame-pair source with another input operation than space_to_depth, other than 32
    channels, or on a configuration whose ``S`` is not in :data:`FRAME_SIMD_LANES`), capacity (source words with rows padded to a power of two; weight words of one tile),
    overflow (``3*k*k*c_in`` beyond the design's bound), alignment of every region to the bus
    word, and the window (every region inside ``[base, base + size)``, the window ending at
    ``2**32`` at the latest: :func:`window_end`).

    Parameters
    ----------
    desc : Descriptor
    window : tuple of int, optional
        ``(base, size)`` of the memory the engine may touch; ``None`` allows everything.
    """
    p = desc.params
    if desc.kernel not in (1, 3):
        return ERR_KERNEL
    if desc.input_op not in OP_CODES.values():
        return ERR_INPUT_OP
    if min(desc.src_height, desc.src_width, desc.src_channels, desc.out_channels) == 0:
        return ERR_SHAPE
    if desc.input_op == OP_CODES["space_to_depth"] and (
            desc.src_height % 2 or desc.src_width % 2 or (desc.src_channels % p.simd_lanes and not desc.frames)):
        return ERR_SHAPE
    if desc.output_mode not in (OUTPUT_CODES, OUTPUT_RAW):
        return ERR_SHAPE
    if desc.frames and (desc.input_op != OP_CODES["space_to_depth"] or desc.src_channels != FRAME_CODE_CHANNELS
                        or p.simd_lanes not in FRAME_SIMD_LANES):
        return ERR_FORMAT
    if (act_buffer_words_needed(desc) > p.act_buffer_words
            or desc.in_groups * desc.kernel * desc.kernel > p.weight_buffer_words):
        return ERR_CAPACITY
    if conv_acc_bound(desc.kernel, desc.in_channels) > p.acc_bound:
        return ERR_OVERFLOW
    regions = desc.regions()
    if any(addr % p.bus_bytes for addr, _ in regions.values()):
        return ERR_ALIGN
    if window is not None:
        base, end = window[0], window_end(window)
        for addr, nbytes in regions.values():
            if addr < base or addr + nbytes > end:
                return ERR_ADDRESS
    return ERR_NONE


def _read(memory, addr, nbytes):
    return np.asarray(memory[addr:addr + nbytes], dtype=np.uint8)


def execute_descriptor(memory, desc):
    """Run one (valid) descriptor on a memory image (a writable uint8 array), as the engine does.

    Codes outputs write whole tiles of ``P`` channels, the channels past ``O`` as 0 (the padding
    threshold records are constant 0), and touch only the lanes of those tiles in the
    destination groups (the other lanes keep their content). Raw outputs write every pixel's
    accumulators padded with zeros to a whole bus word (:func:`raw_channels`).

    Returns
    -------
    numpy.ndarray
        The layer's integer output: codes ``(H, W, O)`` or accumulators ``(H, W, O)``.
    """
    p = desc.params
    h, w = desc.src_height, desc.src_width
    src_addr, src_bytes = desc.regions()["src"]
    if desc.frames:
        codes = frame_pair_codes(_read(memory, src_addr, src_bytes).reshape(h, w, FRAME_PIXEL_BYTES))
    else:
        packed = _read(memory, src_addr, src_bytes).reshape(desc.src_groups, h, w, 2, p.simd_lanes // 8)
        codes = unpack_activations(packed, desc.src_channels)
    if desc.input_op == OP_CODES["space_to_depth"]:
        codes = space_to_depth(codes, 2)
    elif desc.input_op == OP_CODES["upsample"]:
        codes = upsample_nearest(codes, 2)
    k = desc.kernel
    w_addr, w_bytes = desc.regions()["weights"]
    wpacked = _read(memory, w_addr, w_bytes).reshape(desc.tiles, desc.in_groups, k, k, p.pe_count,
                                                     p.simd_lanes // 8)
    signs = unpack_weights_tiled(wpacked, desc.in_channels, desc.out_channels)
    acc = conv_w1a2_direct(codes, signs)
    ho, wo, o = acc.shape
    dst_addr, dst_bytes = desc.regions()["dst"]
    if desc.output_mode == OUTPUT_RAW:
        raw = pack_accumulators(acc, p.acc_bits, raw_channels(desc.out_channels, p))
        memory[dst_addr:dst_addr + dst_bytes] = raw.reshape(-1)
        return acc
    t_addr, t_bytes = desc.regions()["thresholds"]
    layout = p.threshold_layout
    table = unpack_thresholds(_read(memory, t_addr, t_bytes).reshape(-1, layout.nbytes), p.acc_bound, layout)
    out = apply_thresholds(acc, table.select(slice(0, o)))
    groups = channel_groups(o, p.simd_lanes)
    old = _read(memory, dst_addr, dst_bytes).reshape(groups, ho, wo, 2, p.simd_lanes // 8)
    merged = unpack_activations(old, groups * p.simd_lanes)
    merged[..., :desc.tiles * p.pe_count] = 0
    merged[..., :o] = out
    memory[dst_addr:dst_addr + dst_bytes] = pack_activations(merged, p.simd_lanes).reshape(-1)
    return out


def execute_program(memory, desc_addr, count, params, window=None):
    """Run ``count`` descriptors from ``desc_addr``; stop at the first invalid one.

    A descriptor address not aligned to the bus word stops the list with ``ERR_ALIGN``, one
    outside the window (or the memory) with ``ERR_ADDRESS``, as the engine does before fetching.

    Returns
    -------
    error : int
        ``ERR_NONE`` or the error code of the descriptor that stopped the program.
    layer : int
        Index (in the list) of that descriptor, or ``count`` when all ran.
    """
    for i in range(count):
        a = desc_addr + i * DESCRIPTOR.nbytes
        if a % params.bus_bytes:
            return ERR_ALIGN, i
        if window is not None and (a < window[0] or a + DESCRIPTOR.nbytes > window_end(window)):
            return ERR_ADDRESS, i
        if a + DESCRIPTOR.nbytes > len(memory):
            return ERR_ADDRESS, i
        try:
            desc = Descriptor.from_bytes(_read(memory, a, DESCRIPTOR.nbytes).tobytes(), params)
        except FormatError:
            return ERR_SHAPE, i
        err = validate_descriptor(desc, window)
        if err:
            return err, i
        execute_descriptor(memory, desc)
    return ERR_NONE, count
