"""cocotb infrastructure for the whole accelerator on the Avalon-MM memory model.

:class:`AcceleratorTB` drives the register slave, moves whole memory images in and out of the
simulated memory (``sim/hdl/avalon_memory.v``) through ``$readmemh``/``$writememh`` files, and
waits for the engine with one trigger per run: Python never runs per cycle during a layer.

The memory model checks every burst against the memory window (``set_window``; :meth:`run_list`
sets it to the window it programs): an access outside it fails the run by itself
(:class:`WindowViolation`, raised by :meth:`run_list` and :meth:`check_window`), whatever else the
test checks. An engine still busy when a run's cycle budget is spent raises :class:`EngineHang`.

The testbench top (``sim/hdl/tb_accelerator.v``) and the accelerator's parameters come from the
environment the launcher (:mod:`sim.accel_runner`) sets: ``LMF_ACC_PARAMS`` (JSON of the engine
parameters, memory base and depth).
"""

import binascii
import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, SimTimeoutError, with_timeout

from models.engine import EngineParams
from models.hwconfig import ENGINE_PARAM_FIELDS
from models.regmap import (CTRL_CLEAR, CTRL_START, REG, STATUS_BUSY, STATUS_DONE, STATUS_ERROR,
                           STATUS_START_IGNORED)

__all__ = ["AcceleratorTB", "MemorySettings", "WindowViolation", "EngineHang", "accel_params_from_env", "CLOCK_NS",
           "sim_report"]

CLOCK_NS = 10


def sim_report(msg):
    """Append a mismatch report to ``$LMF_SIM_REPORT`` (the launcher shows it); returns ``msg``."""
    path = os.environ.get("LMF_SIM_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(msg + "\n")
    return msg


class WindowViolation(AssertionError):
    """The memory model saw an access outside the memory window."""


class EngineHang(AssertionError):
    """The engine was still busy when the run's cycle budget was spent."""


def accel_params_from_env():
    """(EngineParams, extra dict) from ``LMF_ACC_PARAMS``."""
    raw = json.loads(os.environ["LMF_ACC_PARAMS"])
    params = EngineParams(**{k: raw[k] for k in ENGINE_PARAM_FIELDS if k in raw})
    return params, raw


class MemorySettings:
    """Wait states and latency of the memory model for one run."""

    def __init__(self, *, stall_pct=0, gap_pct=0, latency_min=4, latency_max=4, seed=1):
        self.stall_pct, self.gap_pct = stall_pct, gap_pct
        self.latency_min, self.latency_max = latency_min, latency_max
        self.seed = seed

    def __repr__(self):
        return (f"memory(stall {self.stall_pct}%, gaps {self.gap_pct}%, latency "
                f"{self.latency_min}..{self.latency_max}, seed {self.seed})")


class AcceleratorTB:
    """Clock, reset, registers and memory images of ``tb_accelerator``."""

    def __init__(self, dut):
        self.dut = dut
        self.params, raw = accel_params_from_env()
        self.base = raw["mem_base"]
        self.depth = raw["mem_depth"]
        self.bus_bytes = self.params.bus_bytes
        self.memfile = Path(raw["memfile"])
        self.dumpfile = Path(raw["dumpfile"])
        self.cycles_run = 0

    @property
    def size(self):
        return self.depth * self.bus_bytes

    async def start(self, memory=None):
        """Start the clock, apply reset and the memory settings."""
        cocotb.start_soon(Clock(self.dut.clk, CLOCK_NS, unit="ns").start())
        d = self.dut
        for sig in (d.csr_address, d.csr_read, d.csr_write, d.csr_writedata, d.mem_load, d.mem_dump):
            sig.value = 0
        d.mem_base.value = self.base
        self.set_window(self.base, self.size)
        self.set_memory(memory or MemorySettings())
        d.rst.value = 1
        await ClockCycles(d.clk, 3)
        d.rst.value = 0
        await RisingEdge(d.clk)

    def set_window(self, base, size):
        """The window the memory model holds the engine to (normally the one in the registers)."""
        self.dut.mem_win_base.value = base & 0xFFFFFFFF
        self.dut.mem_win_size.value = size & 0xFFFFFFFF

    def check_window(self, context=""):
        """Raise :class:`WindowViolation` (with a report) if the engine accessed memory outside the
        window since reset."""
        d = self.dut
        if int(d.mem_win_fault.value):
            kind = "write" if int(d.mem_win_fault_write.value) else "read"
            msg = (f"{context}: memory {kind} outside the window 0x{d.mem_win_base.value.to_unsigned():08x}"
                   f"+0x{d.mem_win_size.value.to_unsigned():x}: {int(d.mem_win_fault_beats.value)} beats at "
                   f"0x{d.mem_win_fault_addr.value.to_unsigned():08x}")
            raise WindowViolation(sim_report(msg))

    def beats(self):
        """``(read beats, write beats)`` the memory has accepted since reset."""
        return self.dut.mem_rd_beats.value.to_unsigned(), self.dut.mem_wr_beats.value.to_unsigned()

    def set_memory(self, settings):
        d = self.dut
        d.mem_seed.value = settings.seed
        d.mem_stall_pct.value = settings.stall_pct
        d.mem_gap_pct.value = settings.gap_pct
        d.mem_latency_min.value = settings.latency_min
        d.mem_latency_max.value = settings.latency_max

    async def write_reg(self, name, value):
        await self.write_offset(REG[name].offset, value)

    async def read_reg(self, name):
        return await self.read_offset(REG[name].offset)

    async def write_offset(self, offset, value):
        """Write a register by byte offset."""
        d = self.dut
        await RisingEdge(d.clk)
        d.csr_address.value = offset // 4
        d.csr_writedata.value = value & 0xFFFFFFFF
        d.csr_write.value = 1
        await RisingEdge(d.clk)
        d.csr_write.value = 0

    async def read_offset(self, offset):
        """Read a register by byte offset."""
        d = self.dut
        await RisingEdge(d.clk)
        d.csr_address.value = offset // 4
        d.csr_read.value = 1
        await RisingEdge(d.clk)
        d.csr_read.value = 0
        await FallingEdge(d.clk)
        return d.csr_readdata.value.to_unsigned()

    async def load(self, image):
        """Write a whole memory image (uint8, at most the memory size) into the model."""
        image = np.asarray(image, dtype=np.uint8)
        if image.size > self.size:
            raise ValueError(f"memory image of {image.size} bytes does not fit {self.size}")
        full = np.zeros(self.size, dtype=np.uint8)
        full[:image.size] = image
        words = full.reshape(-1, self.bus_bytes)[:, ::-1]
        text = binascii.hexlify(words.tobytes()).decode()
        n = 2 * self.bus_bytes
        self.memfile.write_text("\n".join(text[i:i + n] for i in range(0, len(text), n)) + "\n")
        d = self.dut
        await RisingEdge(d.clk)
        d.mem_load.value = 1
        await RisingEdge(d.clk)
        d.mem_load.value = 0
        await RisingEdge(d.clk)

    async def dump(self):
        """The whole memory as a uint8 array."""
        d = self.dut
        self.dumpfile.unlink(missing_ok=True)
        await RisingEdge(d.clk)
        d.mem_dump.value = 1
        await RisingEdge(d.clk)
        d.mem_dump.value = 0
        await ClockCycles(d.clk, 2)
        words = []
        for line in self.dumpfile.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("//") or line.startswith("@"):
                continue
            words.append(line.replace("x", "0").replace("X", "0").rjust(2 * self.bus_bytes, "0"))
        raw = np.frombuffer(binascii.unhexlify("".join(words)), dtype=np.uint8)
        return np.ascontiguousarray(raw.reshape(-1, self.bus_bytes)[:, ::-1].reshape(-1))

    async def run_list(self, desc_addr, count, window=None, timeout_cycles=5_000_000, context=None):
        """Program the registers, start, wait for the end; returns a dict of the status registers.

        The memory model holds the engine to the same window. Raises :class:`WindowViolation` if
        the engine accessed memory outside it, :class:`EngineHang` if it is still busy after
        ``timeout_cycles``.
        """
        base, size = window if window is not None else (self.base, self.size)
        context = context or f"descriptor list at 0x{desc_addr:08x} ({count} descriptors)"
        self.set_window(base, min(base + size, 1 << 32) - base)
        await self.write_reg("WINDOW_BASE", base)
        await self.write_reg("WINDOW_SIZE", size)
        await self.write_reg("DESC_ADDR", desc_addr)
        await self.write_reg("DESC_COUNT", count)
        await self.write_reg("CTRL", 1 << CTRL_START.lsb)
        await self.wait_idle(timeout_cycles, context)
        self.check_window(context)
        return await self.status()

    async def wait_idle(self, timeout_cycles=5_000_000, context="run"):
        d = self.dut
        await RisingEdge(d.clk)
        if int(d.busy.value):
            try:
                await with_timeout(FallingEdge(d.busy), timeout_cycles * CLOCK_NS, "ns")
            except SimTimeoutError:
                self.check_window(context)
                raise EngineHang(sim_report(f"{context}: the engine is still busy after {timeout_cycles} cycles "
                                            f"(its budget)")) from None
        await ClockCycles(d.clk, 2)

    async def status(self):
        st = await self.read_reg("STATUS")
        err = await self.read_reg("ERROR")
        out = {
            "busy": STATUS_BUSY.get(st), "done": STATUS_DONE.get(st), "error": STATUS_ERROR.get(st),
            "start_ignored": STATUS_START_IGNORED.get(st),
            "error_code": REG["ERROR"].field("code").get(err),
            "error_index": REG["ERROR"].field("index").get(err),
            "error_layer": REG["ERROR"].field("layer_id").get(err),
            "layers_done": await self.read_reg("LAYERS_DONE"),
            "total_cycles": await self.read_reg("TOTAL_CYCLES"),
        }
        out["layer_cycles"] = [await self.read_reg(f"LAYER_CYCLES{i}")
                               for i in range(min(out["layers_done"], 16))]
        out["fault"] = int(self.dut.mem_fault.value)
        out["window_fault"] = int(self.dut.mem_win_fault.value)
        return out

    async def clear(self):
        await self.write_reg("CTRL", 1 << CTRL_CLEAR.lsb)
