"""Sequencer: the beats of one tile, from the activation and weight buffers to the PE array."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from models.cycles import SEQUENCER_LATENCY
from models.engine import OP_CODES, EngineParams

from ..pe_array import PEArray

__all__ = ["Sequencer", "sequencer_config_layout"]

_OP_S2D = OP_CODES["space_to_depth"]
_OP_UP = OP_CODES["upsample"]


def sequencer_config_layout(params):
    """What the sequencer needs of a layer and a tile (static while it runs)."""
    from amaranth.lib import data
    return data.StructLayout({
        "pad": 1, "op": 2, "ho": 14, "wo": 14, "cb": 4,
        "plane": range(2 * params.act_buffer_words),
        "gs": 12, "wwt": 16, "bank": 1,
        "gap": 5,          # fewest cycles between two pixels' last beats (the writer's pace)
    })


class Sequencer(wiring.Component):
    """Streams one tile's beats: for every output pixel (row-major), every conv-input group and
    every kernel tap (groups outer, taps inner: the weight words' order), one beat of an
    activation word and the tile's weight word, with ``first``/``last`` around each pixel's sum.

    The address of a tap is pure arithmetic on the stored source (rows at a power-of-two stride
    ``2**cb``, groups ``plane`` words apart): identity reads ``(y, x)``, upsampling
    ``(y >> 1, x >> 1)``, space_to_depth ``(2y + dy2, 2x + dx2)`` of source group ``sg`` for the
    conv-input group ``(dy2, dx2) * gs + sg``; taps outside the image are zero padding (their
    planes are zeroed). The addresses are computed in a pipeline of :data:`SEQUENCER_LATENCY`
    stages that never stalls; only the first stage waits, before a pixel's last beat, until
    ``cfg.gap`` cycles have passed since the previous pixel's last beat (the writer's pace: the
    bus words of one pixel's result) and ``credit_ok`` (room downstream for one more pixel's
    result), so the rest of the engine never applies back-pressure.

    Parameters
    ----------
    params : models.engine.EngineParams

    Members
    -------
    start : ``In(1)``
        Pulse: run the tile ``cfg`` describes (``cfg`` stays until the tile is done).
    cfg : ``In(sequencer_config_layout(params))``
    credit_ok : ``In(1)``
    busy : ``Out(1)``
        Beats of the tile remain to be issued.
    issued_last : ``Out(1)``
        A pixel's last beat was issued this cycle.
    act_raddr : ``Out``, act_rdata : ``In(2S)``
        The activation buffer's read port (synchronous, always enabled).
    wt_raddr : ``Out``, wt_rdata : ``In(P*S)``
        The weight buffer's read port (bank in the top address bit).
    o_stream : ``Out(stream.Signature(PEArray.input_layout(P, S)))``
        Beats for the PE array, :data:`SEQUENCER_LATENCY` cycles after their issue; ``ready``
        is ignored (the array never stalls in the engine).

    Raises
    ------
    TypeError
        If ``params`` is not an :class:`~models.engine.EngineParams`.
    """

    def __init__(self, *, params):
        if not isinstance(params, EngineParams):
            raise TypeError(f"params must be an EngineParams, not {params!r}")
        self._params = p = params
        super().__init__({
            "start": In(1),
            "cfg": In(sequencer_config_layout(p)),
            "credit_ok": In(1),
            "busy": Out(1),
            "issued_last": Out(1),
            "act_raddr": Out(range(p.act_buffer_words)),
            "act_rdata": In(p.bus_bits),
            "wt_raddr": Out(range(2 * p.weight_buffer_words)),
            "wt_rdata": In(p.pe_count * p.simd_lanes),
            "o_stream": Out(stream.Signature(PEArray.input_layout(p.pe_count, p.simd_lanes))),
        })

    @property
    def params(self):
        return self._params

    @property
    def latency(self):
        """Cycles from issuing a beat to offering it on ``o_stream``."""
        return SEQUENCER_LATENCY

    def elaborate(self, platform):
        m = Module()
        p = self._params
        S = p.simd_lanes
        cfg = self.cfg
        addr_shape = range(2 * p.act_buffer_words)

        # -- stage 0: the loops ----------------------------------------------------------------------
        run = Signal()
        ox, oy = Signal(14), Signal(14)
        # The tap's offsets from the output pixel, -pad .. 2 - pad: the tap's input position is then
        # one addition (no subtraction of the padding on the issue path).
        dx, dy = Signal(signed(2)), Signal(signed(2))
        tap0 = Signal(signed(2))
        m.d.comb += tap0.eq(Mux(cfg.pad, -1, 0))
        sg = Signal(12)
        sb = Signal(2)
        gbase = Signal(addr_shape)
        widx = Signal(16)
        # The loop ends compare counters with limits minus one, registered at the start, and the
        # pixel's last beat is itself a register: no subtraction or wide compare on the issue path.
        last_beat = Signal()
        wwt_m1 = Signal(16)
        wwt_m2 = Signal(16)
        gs_m1 = Signal(12)
        wo_m1 = Signal(14)
        wo_m2 = Signal(14)
        ho_m1 = Signal(14)
        ho_m2 = Signal(14)
        ox_end = Signal()          # ox == wo - 1 (registers, like last_beat)
        oy_end = Signal()          # oy == ho - 1
        issue = Signal()
        ready = Signal()           # the pace and the credits allow a pixel's last beat
        wait = Signal(5)           # cycles until the next pixel's last beat may issue
        wait_zero = Signal(init=1) # wait == 0, a register: no compare on the issue path
        m.d.comb += [
            ready.eq(self.credit_ok & wait_zero),
            issue.eq(run & (~last_beat | ready)),
            self.busy.eq(run),
            self.issued_last.eq(issue & last_beat),
        ]
        with m.If(self.start):
            m.d.sync += [wait.eq(0), wait_zero.eq(1), wwt_m1.eq(cfg.wwt - 1), wwt_m2.eq(cfg.wwt - 2),
                         gs_m1.eq(cfg.gs - 1), wo_m1.eq(cfg.wo - 1), wo_m2.eq(cfg.wo - 2), ho_m1.eq(cfg.ho - 1),
                         ho_m2.eq(cfg.ho - 2), last_beat.eq(cfg.wwt == 1), ox_end.eq(cfg.wo == 1),
                         oy_end.eq(cfg.ho == 1)]
        with m.Elif(issue & last_beat):
            m.d.sync += [wait.eq(cfg.gap - 1), wait_zero.eq(cfg.gap == 1)]
        with m.Elif(~wait_zero):
            m.d.sync += [wait.eq(wait - 1), wait_zero.eq(wait == 1)]
        with m.If(~self.start & issue):
            m.d.sync += last_beat.eq(Mux(last_beat, wwt_m1 == 0, widx == wwt_m2))
        dx_end = ~cfg.pad | (dx == 1)
        dy_end = ~cfg.pad | (dy == 1)
        sg_end = sg == gs_m1
        with m.If(self.start):
            m.d.sync += [run.eq(1), ox.eq(0), oy.eq(0), dx.eq(tap0), dy.eq(tap0), sg.eq(0), sb.eq(0), gbase.eq(0),
                         widx.eq(0)]
        with m.Elif(issue):
            m.d.sync += widx.eq(Mux(last_beat, 0, widx + 1))
            with m.If(dx_end):
                m.d.sync += dx.eq(tap0)
                with m.If(dy_end):
                    m.d.sync += dy.eq(tap0)
                    with m.If(sg_end):
                        m.d.sync += [sg.eq(0), gbase.eq(0)]
                        with m.If(cfg.op == _OP_S2D):
                            m.d.sync += sb.eq(sb + 1)
                    with m.Else():
                        m.d.sync += [sg.eq(sg + 1), gbase.eq(gbase + cfg.plane)]
                with m.Else():
                    m.d.sync += dy.eq(dy + 1)
            with m.Else():
                m.d.sync += dx.eq(dx + 1)
            with m.If(last_beat):
                with m.If(ox_end):
                    m.d.sync += [ox.eq(0), ox_end.eq(wo_m1 == 0)]
                    with m.If(oy_end):
                        m.d.sync += [oy.eq(0), oy_end.eq(ho_m1 == 0), run.eq(0)]
                    with m.Else():
                        m.d.sync += [oy.eq(oy + 1), oy_end.eq(oy == ho_m2)]
                with m.Else():
                    m.d.sync += [ox.eq(ox + 1), ox_end.eq(ox == wo_m2)]

        # -- stage 1: the tap's position on the conv-input grid ----------------------------------------
        v1 = Signal()
        yi1, xi1 = Signal(signed(16)), Signal(signed(16))
        sb1, gbase1, widx1, first1, last1 = Signal(2), Signal(addr_shape), Signal(16), Signal(), Signal()
        m.d.sync += [
            v1.eq(issue),
            yi1.eq(oy + dy), xi1.eq(ox + dx),
            sb1.eq(sb), gbase1.eq(gbase), widx1.eq(widx), first1.eq(widx == 0), last1.eq(last_beat),
        ]

        # -- stage 2: inside the image? the source row and column --------------------------------------
        v2, inside2 = Signal(), Signal()
        srow2, scol2 = Signal(16), Signal(16)
        gbase2, widx2, first2, last2 = Signal(addr_shape), Signal(16), Signal(), Signal()
        srow, scol = Signal(16), Signal(16)
        with m.Switch(cfg.op):
            with m.Case(_OP_UP):
                m.d.comb += [srow.eq(yi1[1:]), scol.eq(xi1[1:])]
            with m.Case(_OP_S2D):
                m.d.comb += [srow.eq(Cat(sb1[1], yi1[:15])), scol.eq(Cat(sb1[0], xi1[:15]))]
            with m.Default():
                m.d.comb += [srow.eq(yi1), scol.eq(xi1)]
        m.d.sync += [
            v2.eq(v1),
            inside2.eq((yi1 >= 0) & (yi1 < cfg.ho) & (xi1 >= 0) & (xi1 < cfg.wo)),
            srow2.eq(srow), scol2.eq(scol),
            gbase2.eq(gbase1), widx2.eq(widx1), first2.eq(first1), last2.eq(last1),
        ]

        # -- stage 3: the row's offset; the activation read -------------------------------------------
        v3, inside3 = Signal(), Signal()
        rowoff3, scol3 = Signal(addr_shape), Signal(16)
        gbase3, widx3, first3, last3 = Signal(addr_shape), Signal(16), Signal(), Signal()
        m.d.sync += [
            v3.eq(v2), inside3.eq(inside2), rowoff3.eq(srow2 << cfg.cb), scol3.eq(scol2),
            gbase3.eq(gbase2), widx3.eq(widx2), first3.eq(first2), last3.eq(last2),
        ]
        m.d.comb += self.act_raddr.eq(gbase3 + (rowoff3 | scol3))

        # -- stage 4: the activation word arrives; the weight read -------------------------------------
        v4, pad4, first4, last4 = Signal(), Signal(), Signal(), Signal()
        widx4 = Signal(16)
        m.d.sync += [v4.eq(v3), pad4.eq(~inside3), widx4.eq(widx3), first4.eq(first3), last4.eq(last3)]
        m.d.comb += self.wt_raddr.eq(Cat(widx4[:len(self.wt_raddr) - 1], cfg.bank))

        # -- stage 5: the beat, zero-padded -------------------------------------------------------------
        v5, first5, last5 = Signal(), Signal(), Signal()
        planes5 = Signal(2 * S)
        m.d.sync += [v5.eq(v4), first5.eq(first4), last5.eq(last4), planes5.eq(Mux(pad4, 0, self.act_rdata))]
        payload = self.o_stream.payload
        m.d.comb += [
            self.o_stream.valid.eq(v5),
            payload.planes[0].eq(planes5[:S]),
            payload.planes[1].eq(planes5[S:]),
            payload.weights.eq(self.wt_rdata),
            payload.first.eq(first5),
            payload.last.eq(last5),
        ]
        return m
