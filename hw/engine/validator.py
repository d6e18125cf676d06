"""Descriptor validator: the checks of ``models.engine.validate_descriptor``, in gateware.

The sizes the checks need are products of descriptor fields; they come from one shift-add
multiplier (``models.cycles.MUL_CYCLES`` cycles a product), so the engine holds no multiplier a
synthesis tool could turn into a DSP block. Then every check is computed into its own flag
register, and the first failing one, in the order of ``validate_descriptor``, gives the error.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.cycles import MUL_COUNT, MUL_CYCLES, VALIDATE_CYCLES
from models.engine import (ERR_ADDRESS, ERR_ALIGN, ERR_CAPACITY, ERR_FORMAT, ERR_INPUT_OP, ERR_KERNEL, ERR_NONE,
                           ERR_OVERFLOW, ERR_SHAPE, FRAME_SIMD_LANES, OP_CODES, EngineParams)
from models.formats import FRAME_CODE_CHANNELS, FRAME_PIXEL_BYTES

from ..arith import ge, le
from .decoder import derived_layout, descriptor_layout

__all__ = ["Validator"]

_WIDE = 40       # every byte count and address sum fits 40 bits (12-bit fields, 32-bit addresses)


class Validator(wiring.Component):
    """Checks a decoded descriptor against the buffers, the accumulator bound, the bus alignment
    and the memory window, in :data:`models.cycles.VALIDATE_CYCLES` cycles.

    Parameters
    ----------
    params : models.engine.EngineParams

    Members
    -------
    start : ``In(1)``
        Pulse: check ``fields``/``derived`` (which must stay valid until ``done``).
    fields : ``In(descriptor_layout())``
    derived : ``In(derived_layout())``
    window_base : ``In(32)``
    window_limit : ``In(33)``
        ``WINDOW_BASE + WINDOW_SIZE``: a region ``[a, a + n)`` is inside when ``a >= base`` and
        ``a + n <= limit``.
    done : ``Out(1)``
        Pulse, ``VALIDATE_CYCLES`` cycles after ``start``: ``error`` is valid.
    error : ``Out(8)``
        ``models.engine.ERR_*`` (``ERR_NONE`` when the descriptor can run).
    src_words : ``Out(28)``
        Bus words of the source (what the loader reads).
    pixels : ``Out(28)``
        Output pixels ``ho * wo``.

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
            "start": In(1),
            "fields": In(descriptor_layout()),
            "derived": In(derived_layout()),
            "window_base": In(32),
            "window_limit": In(33),
            "done": Out(1),
            "error": Out(8),
            "src_words": Out(28),
            "pixels": Out(28),
        })

    @property
    def params(self):
        return self._params

    @property
    def latency(self):
        """Cycles from ``start`` to ``done``."""
        return VALIDATE_CYCLES

    def elaborate(self, platform):
        m = Module()
        p = self._params
        S = p.simd_lanes
        log_bus_bytes = p.bus_bytes.bit_length() - 1
        log_word_bytes = (p.pe_count * S // 8).bit_length() - 1
        log_thr_tile = (p.pe_count * p.threshold_layout.bits // 8).bit_length() - 1
        f, d = self.fields, self.derived

        # -- the multiplier: MUL_COUNT products, MUL_CYCLES + 1 cycles each ------------------
        mul_a = Signal(_WIDE)
        mul_b = Signal(MUL_CYCLES)
        mul_p = Signal(_WIDE)
        mul_n = Signal(range(MUL_CYCLES + 1))
        step = Signal(range(MUL_COUNT + 1))
        prod = [Signal(_WIDE, name=f"prod{i}") for i in range(MUL_COUNT)]
        busy = Signal()
        # prod0: stored source rows (groups * rows), prod1: source words, prod2: pixels,
        # prod3: weight words of all tiles, prod4: codes destination words, prod5: raw destination words.
        src_rows = Mux(d.frames, f.src_height, prod[0])
        operands = [(d.gs, d.hs), (src_rows, f.src_width), (d.ho, d.wo), (d.n_tiles, d.wwt),
                    (prod[2], d.gout), (prod[2], d.raw_beats)]
        with m.If(self.start):
            m.d.sync += [busy.eq(1), step.eq(0), mul_n.eq(0)]
        with m.Elif(busy):
            with m.If(mul_n == 0):
                with m.Switch(step):
                    for i, (a, b) in enumerate(operands):
                        with m.Case(i):
                            m.d.sync += [mul_a.eq(a), mul_b.eq(b), mul_p.eq(0)]
                m.d.sync += mul_n.eq(1)
            with m.Elif(mul_n != MUL_CYCLES):
                m.d.sync += [
                    mul_p.eq(mul_p + Mux(mul_b[0], mul_a, 0)),
                    mul_a.eq(mul_a << 1),
                    mul_b.eq(mul_b >> 1),
                    mul_n.eq(mul_n + 1),
                ]
            with m.Else():
                with m.Switch(step):
                    for i in range(MUL_COUNT):
                        with m.Case(i):
                            m.d.sync += prod[i].eq(mul_p + Mux(mul_b[0], mul_a, 0))
                m.d.sync += [mul_n.eq(0), step.eq(step + 1)]
                with m.If(step == MUL_COUNT - 1):
                    m.d.sync += busy.eq(0)
        products_done = Signal()
        m.d.sync += products_done.eq(busy & (mul_n == MUL_CYCLES) & (step == MUL_COUNT - 1))

        # -- three cycles: sizes and region ends, the comparisons, the first failing check -------
        if S * 2 // 8 > FRAME_PIXEL_BYTES:
            frame_words = prod[1] >> ((S * 2 // 8 // FRAME_PIXEL_BYTES).bit_length() - 1)
        else:
            frame_words = prod[1] << ((FRAME_PIXEL_BYTES // (S * 2 // 8)).bit_length() - 1)
        src_words = Signal(_WIDE)
        m.d.comb += src_words.eq(Mux(d.frames, frame_words, prod[1]))
        act_need = prod[0] << d.cb
        src_bytes = src_words << log_bus_bytes
        w_bytes = prod[3] << log_word_bytes
        thr_bytes = d.n_tiles << log_thr_tile
        dst_bytes = Mux(d.raw, prod[5], prod[4]) << log_bus_bytes

        s2d = f.input_op == OP_CODES["space_to_depth"]
        simple = {
            "kernel": (f.kernel != 1) & (f.kernel != 3),
            "input_op": f.input_op == 3,
            "zero": (f.src_height == 0) | (f.src_width == 0) | (f.src_channels == 0) | (f.out_channels == 0),
            "s2d": s2d & (f.src_height[0] | f.src_width[0] | ((f.src_channels[:S.bit_length() - 1] != 0)
                                                               & ~d.frames)),
            "format": d.frames & (~s2d | (f.src_channels != FRAME_CODE_CHANNELS)
                                  | (0 if S in FRAME_SIMD_LANES else 1)),
            "overflow": Mux(d.pad, d.cin > p.acc_bound // 27, d.cin > p.acc_bound // 3),
            "align": ((f.src_addr[:log_bus_bytes] != 0) | (f.weights_addr[:log_bus_bytes] != 0)
                      | (f.dst_addr[:log_bus_bytes] != 0) | (~d.raw & (f.thresholds_addr[:log_bus_bytes] != 0))),
        }
        # Cycle 1 after the products: the simple checks, the buffer needs and every region's end.
        simple_regs = Signal(len(simple))
        act_need_r = Signal(_WIDE)
        wwt_big = Signal()
        ends = {name: Signal(_WIDE, name=f"end_{name}") for name in ("src", "weights", "thresholds", "dst")}
        sized = Signal()
        m.d.sync += sized.eq(products_done)
        with m.If(products_done):
            m.d.sync += [
                simple_regs.eq(Cat(*simple.values())),
                act_need_r.eq(act_need),
                wwt_big.eq(d.wwt > p.weight_buffer_words),
                ends["src"].eq(f.src_addr + src_bytes),
                ends["weights"].eq(f.weights_addr + w_bytes),
                ends["thresholds"].eq(f.thresholds_addr + thr_bytes),
                ends["dst"].eq(f.dst_addr + dst_bytes),
                self.src_words.eq(src_words),
                self.pixels.eq(prod[2]),
            ]

        def within(addr, name):
            return ge(addr, self.window_base) & le(ends[name], self.window_limit)

        # Cycle 2: the comparisons, each into its own flag (every region's window check alone).
        flags = [*(simple_regs[i] for i in range(5)),
                 (act_need_r > p.act_buffer_words) | wwt_big,                       # capacity
                 simple_regs[5], simple_regs[6],                                     # overflow, align
                 ~within(f.src_addr, "src"), ~within(f.weights_addr, "weights"),  # address
                 ~within(f.dst_addr, "dst"), ~d.raw & ~within(f.thresholds_addr, "thresholds")]
        codes = [ERR_KERNEL, ERR_INPUT_OP, ERR_SHAPE, ERR_SHAPE, ERR_FORMAT, ERR_CAPACITY, ERR_OVERFLOW,
                 ERR_ALIGN, ERR_ADDRESS, ERR_ADDRESS, ERR_ADDRESS, ERR_ADDRESS]
        flag_regs = Signal(len(flags))
        checked = Signal()
        m.d.sync += checked.eq(sized)
        with m.If(sized):
            m.d.sync += flag_regs.eq(Cat(*flags))

        # -- one cycle: the first failing check gives the error --------------------------------
        error = Signal(8)
        m.d.comb += error.eq(ERR_NONE)
        for i in reversed(range(len(codes))):
            with m.If(flag_regs[i]):
                m.d.comb += error.eq(codes[i])
        m.d.sync += self.done.eq(checked)
        with m.If(checked):
            m.d.sync += self.error.eq(error)
        return m
