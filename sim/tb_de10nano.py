"""cocotb smoke tests of the DE10-Nano top (hw/de10nano.py) with the HPS replaced by a model.

The top is the exact Verilog of the Quartus project; ``sim/hdl/lmflow_hps_model.v`` stands in
for the HPS atoms' wrapper and ``sim/hdl/altera_models.v`` for the PLL, I/O buffers and
synchronizer. :class:`BoardTB` plays the ARM: it drives the lightweight bridge's AXI3 master
(the model's ``m_*`` registers) beat by beat, so every register access goes the board's way:
AXI3 -> ``AXI3ToAvalon`` -> the accelerator's register file.
"""

import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, with_timeout

from models.regmap import ID_MAGIC, REG, VERSION

__all__ = ["BoardTB"]

CLOCK_NS = 20          # the 50 MHz reference; the PLL model passes it through
OKAY, SLVERR = 0, 2
INCR, FIXED, WRAP = 1, 0, 2


def report(msg):
    path = os.environ.get("LMF_SIM_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(msg + "\n")
    return msg


class BoardTB:
    """Clock, HPS reset and AXI3 transactions on the lightweight bridge of the board top."""

    def __init__(self, dut):
        self.dut = dut
        self.hps = dut.hps.hps          # the lmflow_hps model inside the top's hps wrapper
        self.clk = self.hps.clk

    async def start(self):
        cocotb.start_soon(Clock(self.dut.clk50_0__io, CLOCK_NS, unit="ns").start())
        h = self.hps
        for name in ("awvalid", "wvalid", "bready", "arvalid", "rready"):
            getattr(h, f"m_{name}").value = 0
        h.m_h2f_rst_n.value = 0
        await ClockCycles(self.clk, 4)
        h.m_h2f_rst_n.value = 1
        for _ in range(100):            # PLL lock, then the reset synchronizer
            await RisingEdge(self.clk)
            if self.dut.led_6__io.value == 1 and self.dut.led_7__io.value == 1:
                break
        else:
            raise AssertionError(report("the PLL model never locked or the HPS reset was never released"))
        await ClockCycles(self.clk, 8)

    async def _handshake(self, ready, what, *, limit=1000):
        """Wait for the edge at which ``ready`` meets the valid this side drives."""
        for _ in range(limit):
            await ReadOnly()
            taken = ready.value == 1
            await RisingEdge(self.clk)
            if taken:
                return
        raise AssertionError(report(f"no {what} within {limit} cycles"))

    async def write(self, addr, data, *, strb=0xF, burst=INCR, size=2, awid=0x5A):
        """One AXI3 write (``data``: a word or a list of words, one per beat); returns bresp."""
        h = self.hps
        beats = data if isinstance(data, (list, tuple)) else [data]
        h.m_awaddr.value = addr
        h.m_awid.value = awid
        h.m_awlen.value = len(beats) - 1
        h.m_awsize.value = size
        h.m_awburst.value = burst
        h.m_awvalid.value = 1
        await self._handshake(h.lw_awready, "awready")
        h.m_awvalid.value = 0
        for i, word in enumerate(beats):
            h.m_wdata.value = word
            h.m_wstrb.value = strb
            h.m_wid.value = awid
            h.m_wlast.value = int(i == len(beats) - 1)
            h.m_wvalid.value = 1
            await self._handshake(h.lw_wready, "wready")
        h.m_wvalid.value = 0
        h.m_bready.value = 1
        for _ in range(1000):
            await ReadOnly()
            if h.lw_bvalid.value == 1:
                resp, bid = h.lw_bresp.value.to_unsigned(), h.lw_bid.value.to_unsigned()
                await RisingEdge(self.clk)
                h.m_bready.value = 0
                assert bid == awid, report(f"write response ID 0x{bid:x}, expected 0x{awid:x}")
                return resp
            await RisingEdge(self.clk)
        raise AssertionError(report("no write response"))

    async def read(self, addr, *, beats=1, burst=INCR, size=2, arid=0x3C):
        """One AXI3 read of ``beats`` beats; returns ``[(data, rresp), ...]``."""
        h = self.hps
        h.m_araddr.value = addr
        h.m_arid.value = arid
        h.m_arlen.value = beats - 1
        h.m_arsize.value = size
        h.m_arburst.value = burst
        h.m_arvalid.value = 1
        await self._handshake(h.lw_arready, "arready")
        h.m_arvalid.value = 0
        h.m_rready.value = 1
        out = []
        for _ in range(1000 * beats):
            await ReadOnly()
            if h.lw_rvalid.value == 1:
                out.append((h.lw_rdata.value.to_unsigned(), h.lw_rresp.value.to_unsigned()))
                last = h.lw_rlast.value == 1
                rid = h.lw_rid.value.to_unsigned()
                await RisingEdge(self.clk)
                assert rid == arid, report(f"read data ID 0x{rid:x}, expected 0x{arid:x}")
                assert last == (len(out) == beats), report(f"rlast {last} on beat {len(out)} of {beats}")
                if last:
                    h.m_rready.value = 0
                    return out
            else:
                await RisingEdge(self.clk)
        raise AssertionError(report(f"read of {beats} beats at 0x{addr:x} got {len(out)}"))

    async def read_reg(self, name):
        [(value, resp)] = await self.read(REG[name].offset)
        assert resp == OKAY, report(f"reading {name}: response {resp}")
        return value


@cocotb.test()
async def test_register_write_read_back(dut):
    """A register written through the lightweight bridge reads back; ID and VERSION are right."""
    tb = BoardTB(dut)
    await with_timeout(tb.start(), 100, "us")
    assert await tb.read_reg("ID") == ID_MAGIC, report("ID register through the bridge")
    assert await tb.read_reg("VERSION") == VERSION, report("VERSION register through the bridge")
    for name, value in (("WINDOW_BASE", 0x2000_0040), ("WINDOW_SIZE", 0x0123_4560), ("DESC_ADDR", 0xDEAD_BEE0)):
        resp = await tb.write(REG[name].offset, value)
        assert resp == OKAY, report(f"writing {name}: response {resp}")
        got = await tb.read_reg(name)
        assert got == value, report(f"{name}: wrote 0x{value:08x}, read back 0x{got:08x}")


@cocotb.test()
async def test_bursts_and_refused_writes(dut):
    """INCR and FIXED bursts, a write with partial strobes (SLVERR, nothing written, LED5), and
    a read beyond the register window (zero)."""
    tb = BoardTB(dut)
    await with_timeout(tb.start(), 100, "us")
    base = REG["WINDOW_BASE"].offset
    assert REG["WINDOW_SIZE"].offset == base + 4
    assert await tb.write(base, [0x1111_1110, 0x2222_2220]) == OKAY
    got = await tb.read(base, beats=2)
    assert got == [(0x1111_1110, OKAY), (0x2222_2220, OKAY)], report(f"INCR burst read back {got}")
    got = await tb.read(REG["ID"].offset, beats=3, burst=FIXED)
    assert got == [(ID_MAGIC, OKAY)] * 3, report(f"FIXED burst of ID: {got}")
    assert dut.led_5__io.value == 0
    assert await tb.write(base, 0xFFFF_FFF0, strb=0x3) == SLVERR, report("partial write not refused")
    assert await tb.read_reg("WINDOW_BASE") == 0x1111_1110, report("a refused write changed the register")
    await ClockCycles(tb.clk, 2)
    assert dut.led_5__io.value == 1, report("LED5 does not show the refused write")
    got = await tb.read(0x1000)
    assert got == [(0, OKAY)], report(f"read beyond the register window: {got}")
