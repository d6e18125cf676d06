"""Descriptor decoder: the fetched 256-bit layer descriptor -> its fields and the sizes derived from them."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from models.cycles import DECODE_CYCLES
from models.engine import DESCRIPTOR, OP_CODES, OUTPUT_RAW, SRC_FRAMES, EngineParams

from ..records import record_layout

__all__ = ["DescriptorDecoder", "descriptor_layout", "derived_layout", "bit_length"]


_OP_ID = OP_CODES["identity"]
_OP_S2D = OP_CODES["space_to_depth"]
_OP_UP = OP_CODES["upsample"]


def bit_length(m, value):
    """``value.bit_length()`` of an unsigned signal, as a balanced tree (log depth, not a chain)."""
    width = len(value)
    if width == 1:
        return value[0]
    half = 1 << ((width - 1).bit_length() - 1)          # the low part: a power of two
    lo, hi = value[:half], value[half:]
    out = Signal(width.bit_length(), name=f"bitlen{width}")
    m.d.comb += out.eq(Mux(hi != 0, bit_length(m, hi) + half, bit_length(m, lo)))
    return out


def descriptor_layout():
    """The layer descriptor as an Amaranth layout, generated from ``models.engine.DESCRIPTOR``."""
    return record_layout(DESCRIPTOR)


def derived_layout():
    """Layout of the sizes the engine derives from a descriptor (see :class:`DescriptorDecoder`)."""
    return data.StructLayout({
        "pad": 1,            # kernel 3: one pixel of zero padding around the conv input
        "op": 2,             # the sequencer's input operation (identity for a frame-pair source)
        "frames": 1,         # frame-pair source (src_format 1)
        "raw": 1,            # raw-accumulator output
        "hs": 13,            # source rows as stored in the activation buffer
        "ws": 13,            # source columns as stored
        "gs": 12,            # source channel groups as stored
        "ho": 14,            # output rows
        "wo": 14,            # output columns
        "cin": 16,           # conv input channels
        "gin": 12,           # conv input channel groups
        "n_tiles": 12,       # tiles of P output channels
        "gout": 12,          # output channel groups (codes)
        "cb": 4,             # log2 of the activation buffer's row stride
        "wwt": 16,           # weight words of a tile: gin * k * k
        "raw_beats": 13,     # bus words of one pixel's raw accumulators (channels padded to a bus word)
    })


class DescriptorDecoder(wiring.Component):
    """Decodes a descriptor in :data:`models.cycles.DECODE_CYCLES` register stages.

    Fields are read through :func:`descriptor_layout`, the descriptor format of
    :mod:`models.engine` (never retyped). Derived sizes (:func:`derived_layout`) follow
    :class:`models.engine.Descriptor`: output size by input operation, conv input channels and
    groups, tiles, the power-of-two row stride of the stored source. A frame-pair source is stored
    by the loader after its space_to_depth, so its stored size is the conv input's and the
    sequencer reads it as an identity input.

    Parameters
    ----------
    params : models.engine.EngineParams

    Members
    -------
    raw : ``In(256)``
        The descriptor as fetched (bit 0 = bit 0 of its first byte).
    load : ``In(1)``
        Pulse: decode ``raw``; ``fields`` and ``derived`` are valid :data:`DECODE_CYCLES` later
        and stay until the next ``load``.
    fields : ``Out(descriptor_layout())``
    derived : ``Out(derived_layout())``

    Raises
    ------
    TypeError
        If ``params`` is not an :class:`~models.engine.EngineParams`.
    """

    def __init__(self, *, params):
        if not isinstance(params, EngineParams):
            raise TypeError(f"params must be an EngineParams, not {params!r}")
        self._params = params
        super().__init__({
            "raw": In(DESCRIPTOR.bits),
            "load": In(1),
            "fields": Out(descriptor_layout()),
            "derived": Out(derived_layout()),
        })

    @property
    def params(self):
        return self._params

    def elaborate(self, platform):
        m = Module()
        p = self._params
        S, P = p.simd_lanes, p.pe_count
        log_s, log_p = S.bit_length() - 1, P.bit_length() - 1
        log_bus = p.bus_bits.bit_length() - 1
        log_acc = p.acc_bits.bit_length() - 1

        f = self.fields
        d = self.derived
        stage2, stage3 = Signal(), Signal()
        with m.If(self.load):
            m.d.sync += f.eq(self.raw)
        m.d.sync += [stage2.eq(self.load), stage3.eq(stage2)]

        # Stage 2 (the cycle after load): what follows from the fields directly.
        frames = f.src_format == SRC_FRAMES
        is_s2d = f.input_op == _OP_S2D
        is_up = f.input_op == _OP_UP
        ws_stored = Signal(13)
        cin = Signal(16)
        gs = Signal(12)
        gin2 = Signal(12)                 # conv-input groups: ceil(cin / S), from the fields
        raw_bits = Signal(range(1 << 13 << log_acc))
        with m.If(stage2):
            m.d.sync += [
                d.pad.eq(f.kernel == 3),
                d.frames.eq(frames),
                d.raw.eq(f.output_mode == OUTPUT_RAW),
                d.op.eq(Mux(frames, _OP_ID, f.input_op)),
                d.hs.eq(Mux(frames, f.src_height >> 1, f.src_height)),
                ws_stored.eq(Mux(frames, f.src_width >> 1, f.src_width)),
                d.ho.eq(Mux(is_s2d, f.src_height >> 1, Mux(is_up, f.src_height << 1, f.src_height))),
                d.wo.eq(Mux(is_s2d, f.src_width >> 1, Mux(is_up, f.src_width << 1, f.src_width))),
                cin.eq(Mux(is_s2d, f.src_channels << 2, f.src_channels)),
                gs.eq((f.src_channels + S - 1) >> log_s),
                gin2.eq(Mux(is_s2d, ((f.src_channels << 2) + S - 1) >> log_s, (f.src_channels + S - 1) >> log_s)),
                d.n_tiles.eq((f.out_channels + P - 1) >> log_p),
                d.gout.eq((f.out_channels + S - 1) >> log_s),
                raw_bits.eq((f.out_channels << log_acc) + p.bus_bits - 1),
            ]

        # Stage 3: the sizes that follow from those.
        wm1 = Signal(13)
        m.d.comb += wm1.eq(ws_stored - 1)
        with m.If(stage3):
            m.d.sync += [
                d.ws.eq(ws_stored),
                d.cin.eq(cin),
                d.gin.eq(gin2),
                d.gs.eq(Mux(d.frames, gin2, gs)),
                d.cb.eq(bit_length(m, wm1)),
                d.wwt.eq(Mux(d.pad, (gin2 << 3) + gin2, gin2)),
                d.raw_beats.eq(raw_bits >> log_bus),
            ]
        return m
