"""The whole accelerator (``hw/accelerator.py``) in Amaranth's own simulator: the fast tier of the
engine, register-file and cycle-model tests.

:class:`AcceleratorSim` simulates an :class:`~hw.accelerator.Accelerator` (or any design with its
ports) with a transaction-level memory model written in Python, the twin of
``sim/hdl/avalon_memory.v``:

* the read master's bursts are answered ``latency`` cycles after they are accepted, one beat a
  cycle, as the Verilog model answers them (so the cycle counters equal :mod:`models.cycles`);
* the write master's beats are stored with their byte enables;
* every access outside the memory window (``WINDOW_BASE``/``WINDOW_SIZE`` as the test programs
  them) or outside the memory is recorded in :attr:`AcceleratorSim.violations`, and every read
  and write beat is counted, so a test sees both a stray access and a descriptor that touched
  memory it should not have.

Registers are driven through the CSR slave exactly as the host drives them (offsets and bit
fields from :mod:`models.regmap`). Python runs every cycle: keep the layers tiny.
"""

from dataclasses import dataclass, field

import numpy as np
from amaranth.sim import Simulator

from models.regmap import CTRL_CLEAR, CTRL_START, REG, STATUS_BUSY, STATUS_DONE, STATUS_ERROR, STATUS_START_IGNORED

__all__ = ["AcceleratorSim", "RunStatus", "Violation", "EngineHang"]


@dataclass(frozen=True)
class Violation:
    """One access outside the window (or the memory): ``kind`` is ``"read"`` or ``"write"``."""

    kind: str
    address: int
    beats: int
    cycle: int

    def __str__(self):
        return f"{self.kind} of {self.beats} beats at 0x{self.address:08x} (cycle {self.cycle})"


class EngineHang(AssertionError):
    """The engine was still busy when a run's cycle budget ran out."""


@dataclass
class RunStatus:
    """What the registers and the memory model say after one descriptor list."""

    busy: int
    done: int
    error: int
    start_ignored: int
    error_code: int
    error_index: int
    error_layer: int
    layers_done: int
    total_cycles: int
    layer_cycles: list
    read_beats: int
    write_beats: int
    cycles: int
    violations: list = field(default_factory=list)


class AcceleratorSim:
    """An accelerator and its memory in Amaranth's simulator.

    Parameters
    ----------
    design : amaranth.lib.wiring.Component
        :class:`hw.accelerator.Accelerator` or a design with the same ports.
    bus_bytes : int
        Bytes of one memory bus word.
    mem_base, mem_size : int
        Device address and size in bytes of the memory model (bus-word multiples).
    latency : int
        Cycles from an accepted read burst to its first beat (as ``latency`` of
        :func:`models.cycles.descriptor_cycles`).

    Members
    -------
    memory : numpy.ndarray of uint8
        The memory's content (``memory[0]`` is at ``mem_base``).
    violations : list of Violation
    """

    def __init__(self, design, *, bus_bytes, mem_base, mem_size, latency=4):
        if mem_base % bus_bytes or mem_size % bus_bytes or mem_size <= 0:
            raise ValueError(f"mem_base and mem_size must be multiples of the bus word ({bus_bytes} bytes), "
                             f"not 0x{mem_base:x} and {mem_size}")
        if not isinstance(latency, int) or latency < 1:
            raise ValueError(f"latency must be a positive integer, not {latency!r}")
        self.design = design
        self.bus_bytes = bus_bytes
        self.mem_base = mem_base
        self.memory = np.zeros(mem_size, dtype=np.uint8)
        self.latency = latency
        self.window = (mem_base, mem_size)
        self.violations = []
        self.read_beats = 0
        self.write_beats = 0
        self.cycle = 0
        self._queue = []           # [word index, beats left, due cycle]
        self._wr = None            # [word index, beats left] of the write burst in progress
        self._ops = []

    # -- the memory model ------------------------------------------------------------------

    def _outside(self, addr, beats):
        nbytes = beats * self.bus_bytes
        base, size = self.window
        in_window = base <= addr and addr + nbytes <= base + size
        in_memory = self.mem_base <= addr and addr + nbytes <= self.mem_base + self.memory.size
        return not (in_window and in_memory)

    def _word(self, index):
        b = self.bus_bytes
        if not 0 <= index < self.memory.size // b:
            return 0
        return int.from_bytes(self.memory[index * b:(index + 1) * b].tobytes(), "little")

    def _store(self, index, data, byteenable):
        b = self.bus_bytes
        if not 0 <= index < self.memory.size // b:
            return
        raw = data.to_bytes(b, "little")
        for i in range(b):
            if byteenable >> i & 1:
                self.memory[index * b + i] = raw[i]

    async def _step(self, ctx):
        """One clock cycle: present a due read beat, then take the masters' requests at the edge."""
        d = self.design
        beat = None
        if self._queue and self._queue[0][2] < self.cycle:
            head = self._queue[0]
            beat = self._word(head[0])
            head[0] += 1
            head[1] -= 1
            if head[1] == 0:
                self._queue.pop(0)
        ctx.set(d.rd.readdatavalid, beat is not None)
        if beat is not None:
            ctx.set(d.rd.readdata, beat)
        _, _, read, raddr, rburst, write, waddr, wburst, wdata, wbe = await ctx.tick().sample(
            d.rd.read, d.rd.address, d.rd.burstcount, d.wr.write, d.wr.address, d.wr.burstcount,
            d.wr.writedata, d.wr.byteenable)
        if read:
            if self._outside(raddr, rburst):
                self.violations.append(Violation("read", raddr, rburst, self.cycle))
            self._queue.append([(raddr - self.mem_base) // self.bus_bytes, rburst, self.cycle + self.latency])
            self.read_beats += rburst
        if write:
            if self._wr is None:
                if self._outside(waddr, wburst):
                    self.violations.append(Violation("write", waddr, wburst, self.cycle))
                self._wr = [(waddr - self.mem_base) // self.bus_bytes, wburst]
            self._store(self._wr[0], wdata, wbe)
            self.write_beats += 1
            self._wr[0] += 1
            self._wr[1] -= 1
            if self._wr[1] <= 0:
                self._wr = None
        self.cycle += 1

    # -- registers -------------------------------------------------------------------------

    async def write_reg(self, ctx, name, value):
        csr = self.design.csr
        ctx.set(csr.address, REG[name].offset // 4)
        ctx.set(csr.writedata, value & 0xFFFFFFFF)
        ctx.set(csr.write, 1)
        await self._step(ctx)
        ctx.set(csr.write, 0)

    async def read_reg(self, ctx, name):
        csr = self.design.csr
        ctx.set(csr.address, REG[name].offset // 4)
        ctx.set(csr.read, 1)
        await self._step(ctx)
        ctx.set(csr.read, 0)
        return ctx.get(csr.readdata)

    async def status(self, ctx):
        st = await self.read_reg(ctx, "STATUS")
        err = await self.read_reg(ctx, "ERROR")
        f = REG["ERROR"]
        layers_done = await self.read_reg(ctx, "LAYERS_DONE")
        cycles = [await self.read_reg(ctx, f"LAYER_CYCLES{i}") for i in range(min(layers_done, 16))]
        return dict(busy=STATUS_BUSY.get(st), done=STATUS_DONE.get(st), error=STATUS_ERROR.get(st),
                    start_ignored=STATUS_START_IGNORED.get(st), error_code=f.field("code").get(err),
                    error_index=f.field("index").get(err), error_layer=f.field("layer_id").get(err),
                    layers_done=layers_done, total_cycles=await self.read_reg(ctx, "TOTAL_CYCLES"),
                    layer_cycles=cycles)

    async def run_list(self, ctx, desc_addr, count, window, budget):
        """Program the registers, start, wait until idle (at most ``budget`` cycles)."""
        self.window = window
        reads, writes, violations = self.read_beats, self.write_beats, len(self.violations)
        await self.write_reg(ctx, "CTRL", CTRL_CLEAR.mask)
        await self.write_reg(ctx, "WINDOW_BASE", window[0])
        await self.write_reg(ctx, "WINDOW_SIZE", window[1])
        await self.write_reg(ctx, "DESC_ADDR", desc_addr)
        await self.write_reg(ctx, "DESC_COUNT", count)
        await self.write_reg(ctx, "CTRL", CTRL_START.mask)
        start = self.cycle
        while ctx.get(self.design.busy):
            if self.cycle - start > budget:
                raise EngineHang(f"the engine is still busy after {budget} cycles (the budget from models.cycles) "
                                 f"running {count} descriptors from 0x{desc_addr:08x}")
            await self._step(ctx)
        cycles = self.cycle - start
        await self._step(ctx)
        st = await self.status(ctx)
        return RunStatus(**st, read_beats=self.read_beats - reads, write_beats=self.write_beats - writes,
                         cycles=cycles, violations=self.violations[violations:])

    # -- running ---------------------------------------------------------------------------

    def run(self, testbench, vcd=None):
        """Simulate: ``await testbench(self, ctx)`` drives the accelerator (through
        :meth:`run_list`, :meth:`write_reg`, :meth:`read_reg`); its return value is returned."""
        result = {}

        async def bench(ctx):
            for name in ("address", "read", "write", "writedata"):
                ctx.set(getattr(self.design.csr, name), 0)
            await self._step(ctx)
            result["value"] = await testbench(self, ctx)

        sim = Simulator(self.design)
        sim.add_clock(1e-8)
        sim.add_testbench(bench)
        if vcd:
            with sim.write_vcd(vcd):
                sim.run()
        else:
            sim.run()
        return result.get("value")
