"""The accelerator: register file + convolution engine, with the memory masters exposed."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from .avalon import ReadMasterSignature, SlaveSignature, WriteMasterSignature
from .engine import ConvEngine
from .regs import REG_ADDR_WIDTH, RegisterFile

__all__ = ["Accelerator"]


class Accelerator(wiring.Component):
    """The LMFlowNet FPGA segment: registers on a slave, data through two memory masters.

    Parameters are those of :class:`~hw.engine.ConvEngine`.

    Members
    -------
    csr : ``Out(SlaveSignature)``
        Register slave (:mod:`models.regmap`), for the lightweight HPS-to-FPGA bridge.
    rd : ``Out(ReadMasterSignature)``
    wr : ``Out(WriteMasterSignature)``
        Memory masters, for the FPGA-to-SDRAM ports.
    busy : ``Out(1)``
        The engine is running or about to start (for a LED, and for testbenches to wait on).
    """

    def __init__(self, **engine_params):
        try:
            self._engine = ConvEngine(**engine_params)
        except (TypeError, ValueError):
            self._MustUse__silence = True      # a top that could not be built is not "unused"
            raise
        e = self._engine
        super().__init__({
            "csr": Out(SlaveSignature(addr_width=REG_ADDR_WIDTH)),
            "rd": Out(ReadMasterSignature(data_width=e.bus_bits, burst_width=e.max_burst.bit_length())),
            "wr": Out(WriteMasterSignature(data_width=e.bus_bits, burst_width=e.max_burst.bit_length())),
            "busy": Out(1),
        })

    @property
    def engine(self):
        return self._engine

    @property
    def params(self):
        return self._engine.params

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self._engine
        m.submodules.regs = regs = RegisterFile(pe_count=engine.pe_count, simd_lanes=engine.simd_lanes,
                                                acc_bits=engine.acc_bits)
        wiring.connect(m, wiring.flipped(self.csr), regs.bus)
        wiring.connect(m, engine.rd, wiring.flipped(self.rd))
        wiring.connect(m, engine.wr, wiring.flipped(self.wr))
        m.d.comb += [
            engine.start.eq(regs.start),
            engine.desc_addr.eq(regs.desc_addr),
            engine.desc_count.eq(regs.desc_count),
            engine.window_base.eq(regs.window_base),
            engine.window_size.eq(regs.window_size),
            regs.busy.eq(engine.busy),
            regs.finished.eq(engine.finished),
            regs.layer_done.eq(engine.layer_done),
            regs.error_code.eq(engine.error_code),
            regs.error_index.eq(engine.error_index),
            regs.error_layer.eq(engine.error_layer),
            regs.layer_cycles.eq(engine.layer_cycles),
            self.busy.eq(engine.busy | regs.start),
        ]
        return m
