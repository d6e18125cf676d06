"""The accelerator's register file: the Avalon-MM slave of :mod:`models.regmap`, driving the engine."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.regmap import (CTRL_CLEAR, CTRL_START, ID_MAGIC, MAX_LAYER_COUNTERS, REG, REGMAP_BYTES,
                           STATUS_BUSY, STATUS_DONE, STATUS_ERROR, STATUS_START_IGNORED, VERSION)

from ._params import check_int
from .avalon import SlaveSignature

__all__ = ["RegisterFile", "REG_ADDR_WIDTH"]

#: Word-address width of the register slave.
REG_ADDR_WIDTH = (REGMAP_BYTES // 4 - 1).bit_length()


class RegisterFile(wiring.Component):
    """Control and status registers (offsets and bit fields from :mod:`models.regmap`).

    Parameters
    ----------
    pe_count, simd_lanes, acc_bits : int
        Reported in the read-only ``CONFIG`` register.

    Members
    -------
    bus : ``Out(SlaveSignature(addr_width=REG_ADDR_WIDTH))``
        The Avalon-MM slave (word addresses, read latency 1).
    start : ``Out(1)``
        One-cycle start pulse to the engine (not sent while the engine is busy; such a start sets
        ``STATUS.start_ignored`` instead).
    desc_addr, desc_count, window_base : ``Out``
        As written to ``DESC_ADDR``, ``DESC_COUNT`` and ``WINDOW_BASE``.
    window_size : ``Out(32)``
        ``WINDOW_SIZE``, cut so that the window ends at ``2**32`` at the latest
        (:func:`models.engine.window_end`): the engine's end-of-region comparison then never sees
        a window that wraps around the address space. The register reads back as written.
    busy, finished, layer_done : ``In(1)``
        From the engine; ``layer_done`` pulses once per completed descriptor, in list order, and
        its ``layer_cycles`` go to ``LAYER_CYCLES<n>`` for the ``n``-th descriptor of the list
        (the first ``MAX_LAYER_COUNTERS``; later descriptors are only counted in ``LAYERS_DONE``).
    error_code, error_layer : ``In(8)``
    error_index : ``In(16)``
    layer_cycles : ``In(32)``
    """

    def __init__(self, *, pe_count, simd_lanes, acc_bits):
        self._config = (check_int("pe_count", pe_count, minimum=1, maximum=4095)
                        | check_int("simd_lanes", simd_lanes, minimum=1, maximum=4095) << 12
                        | check_int("acc_bits", acc_bits, minimum=1, maximum=255) << 24)
        super().__init__({
            "bus": Out(SlaveSignature(addr_width=REG_ADDR_WIDTH)),
            "start": Out(1),
            "desc_addr": Out(32),
            "desc_count": Out(16),
            "window_base": Out(32),
            "window_size": Out(32),
            "busy": In(1),
            "finished": In(1),
            "layer_done": In(1),
            "error_code": In(8),
            "error_index": In(REG["ERROR"].field("index").width),
            "error_layer": In(8),
            "layer_cycles": In(32),
        })

    @property
    def config_word(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        bus = self.bus

        def word(name):
            return REG[name].offset // 4

        done = Signal()
        error = Signal()
        start_ignored = Signal()
        layers_done = Signal(REG["DESC_COUNT"].field("count").width)
        total = Signal(32)
        layer_cyc = [Signal(32, name=f"layer_cycles{i}") for i in range(MAX_LAYER_COUNTERS)]

        m.d.sync += self.start.eq(0)
        with m.If(self.busy):
            m.d.sync += total.eq(total + 1)
        with m.If(self.finished):
            m.d.sync += [done.eq(1), error.eq(self.error_code != 0)]
        with m.If(self.layer_done):
            # layers_done is the list index of the descriptor that just completed
            m.d.sync += layers_done.eq(layers_done + 1)
            for i in range(MAX_LAYER_COUNTERS):
                with m.If(layers_done == i):
                    m.d.sync += layer_cyc[i].eq(self.layer_cycles)

        window_size = Signal(32)
        window_end = Signal(33)
        m.d.comb += [
            window_end.eq(self.window_base + window_size),
            self.window_size.eq(Mux(window_end[32], -self.window_base, window_size)),
        ]

        with m.If(bus.write):
            with m.Switch(bus.address):
                with m.Case(word("DESC_ADDR")):
                    m.d.sync += self.desc_addr.eq(bus.writedata)
                with m.Case(word("DESC_COUNT")):
                    m.d.sync += self.desc_count.eq(bus.writedata)
                with m.Case(word("WINDOW_BASE")):
                    m.d.sync += self.window_base.eq(bus.writedata)
                with m.Case(word("WINDOW_SIZE")):
                    m.d.sync += window_size.eq(bus.writedata)
                with m.Case(word("CTRL")):
                    with m.If(bus.writedata[CTRL_CLEAR.lsb]):
                        m.d.sync += [done.eq(0), error.eq(0), start_ignored.eq(0)]
                    with m.If(bus.writedata[CTRL_START.lsb]):
                        with m.If(self.busy | self.start):
                            m.d.sync += start_ignored.eq(1)
                        with m.Else():
                            m.d.sync += [self.start.eq(1), done.eq(0), error.eq(0), layers_done.eq(0),
                                         total.eq(0)]
                            for c in layer_cyc:
                                m.d.sync += c.eq(0)

        status = Signal(32)
        m.d.comb += [
            status[STATUS_BUSY.lsb].eq(self.busy | self.start),
            status[STATUS_DONE.lsb].eq(done),
            status[STATUS_ERROR.lsb].eq(error),
            status[STATUS_START_IGNORED.lsb].eq(start_ignored),
        ]
        err = REG["ERROR"]
        error_word = Signal(32)
        for name, value in (("code", self.error_code), ("index", self.error_index), ("layer_id", self.error_layer)):
            f = err.field(name)
            m.d.comb += error_word[f.lsb:f.lsb + f.width].eq(value)
        # A read registers the addressed value in one of two halves (the layer counters, the
        # rest) and readdata chooses between them: the address's decode and the wide selection
        # end at registers, and one LUT level follows them (still a read latency of 1).
        other_q = Signal(32)
        layer_q = Signal(32)
        is_layer_q = Signal()
        with m.If(bus.read):
            m.d.sync += [other_q.eq(0), layer_q.eq(0), is_layer_q.eq(0)]
            with m.Switch(bus.address):
                values = {
                    "ID": ID_MAGIC, "VERSION": VERSION, "CONFIG": self._config, "STATUS": status,
                    "ERROR": error_word, "DESC_ADDR": self.desc_addr, "DESC_COUNT": self.desc_count,
                    "WINDOW_BASE": self.window_base, "WINDOW_SIZE": window_size,
                    "LAYERS_DONE": layers_done, "TOTAL_CYCLES": total,
                }
                for name, value in values.items():
                    with m.Case(word(name)):
                        m.d.sync += other_q.eq(value)
                for i in range(MAX_LAYER_COUNTERS):
                    with m.Case(word(f"LAYER_CYCLES{i}")):
                        m.d.sync += [layer_q.eq(layer_cyc[i]), is_layer_q.eq(1)]
        m.d.comb += bus.readdata.eq(Mux(is_layer_q, layer_q, other_q))
        return m
