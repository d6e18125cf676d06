# amaranth: UnusedElaboratable=no
"""The register file (hw/regs.py) in Amaranth's simulator, against models.regmap: every register,
the start pulse and start_ignored, CTRL.clear, the ERROR fields (a 16-bit descriptor index),
LAYER_CYCLES by list position (lists longer than 256 descriptors), TOTAL_CYCLES, and the window
that ends at 2**32 at the latest."""

import pytest
from amaranth.sim import Simulator

from hw.regs import RegisterFile
from models.regmap import (CTRL_CLEAR, CTRL_START, ID_MAGIC, MAX_LAYER_COUNTERS, REG, STATUS_BUSY,
                           STATUS_DONE, STATUS_ERROR, STATUS_START_IGNORED, VERSION)


def test_init():
    regs = RegisterFile(pe_count=8, simd_lanes=16, acc_bits=16)
    cfg = REG["CONFIG"]
    assert cfg.field("pe_count").get(regs.config_word) == 8
    assert cfg.field("simd_lanes").get(regs.config_word) == 16
    assert cfg.field("acc_bits").get(regs.config_word) == 16
    assert len(regs.error_index) == REG["ERROR"].field("index").width == 16
    assert len(regs.desc_count) == REG["DESC_COUNT"].field("count").width


@pytest.mark.parametrize("name, value", [("pe_count", 0), ("simd_lanes", 4096), ("acc_bits", 256)])
def test_init_wrong_params(name, value):
    kw = dict(dict(pe_count=8, simd_lanes=16, acc_bits=16), **{name: value})
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        RegisterFile(**kw)


class Bench:
    """Drives the register file's bus and its engine-side inputs, one clock cycle at a time."""

    def __init__(self, dut, ctx):
        self.dut, self.ctx = dut, ctx
        self.starts = 0

    async def tick(self):
        await self.ctx.tick()
        if self.ctx.get(self.dut.start):
            self.starts += 1

    async def write(self, name, value):
        bus = self.dut.bus
        self.ctx.set(bus.address, REG[name].offset // 4)
        self.ctx.set(bus.writedata, value)
        self.ctx.set(bus.write, 1)
        await self.tick()
        self.ctx.set(bus.write, 0)

    async def read(self, name=None, offset=None):
        bus = self.dut.bus
        self.ctx.set(bus.address, (REG[name].offset if name else offset) // 4)
        self.ctx.set(bus.read, 1)
        await self.tick()
        self.ctx.set(bus.read, 0)
        return self.ctx.get(bus.readdata)

    async def status(self):
        st = await self.read("STATUS")
        return {f.name: f.get(st) for f in (STATUS_BUSY, STATUS_DONE, STATUS_ERROR, STATUS_START_IGNORED)}

    async def engine_list(self, layer_cycles, error=None):
        """Play the engine: busy, one layer_done pulse per entry of ``layer_cycles``, then finished
        (with ``error = (code, index, layer_id)``)."""
        d, ctx = self.dut, self.ctx
        ctx.set(d.busy, 1)
        for cycles in layer_cycles:
            ctx.set(d.layer_done, 1)
            ctx.set(d.layer_cycles, cycles)
            await self.tick()
            ctx.set(d.layer_done, 0)
        if error is not None:
            code, index, layer = error
            ctx.set(d.error_code, code)
            ctx.set(d.error_index, index)
            ctx.set(d.error_layer, layer)
        ctx.set(d.finished, 1)
        ctx.set(d.busy, 0)
        await self.tick()
        ctx.set(d.finished, 0)
        await self.tick()


def simulate(bench):
    dut = RegisterFile(pe_count=8, simd_lanes=16, acc_bits=16)
    out = {}

    async def testbench(ctx):
        out["value"] = await bench(Bench(dut, ctx))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return out.get("value")


def check(got, want, what):
    assert got == want, f"{what}: read 0x{got:08x}, expected 0x{want:08x}" if isinstance(got, int) else \
        f"{what}: {got}, expected {want}"


def test_constant_and_read_write_registers():
    async def bench(b):
        check(await b.read("ID"), ID_MAGIC, "ID")
        check(await b.read("VERSION"), VERSION, "VERSION")
        check(await b.read("CONFIG"), b.dut.config_word, "CONFIG")
        for name, value in (("DESC_ADDR", 0x2000_0040), ("WINDOW_BASE", 0x2000_0000), ("WINDOW_SIZE", 0x10_0000)):
            await b.write(name, value)
            check(await b.read(name), value, name)
        await b.write("DESC_COUNT", 0x1_2345)                 # 16 bits kept
        check(await b.read("DESC_COUNT"), 0x2345, "DESC_COUNT")
        check(b.ctx.get(b.dut.desc_count), 0x2345, "desc_count to the engine")
        check(await b.read(offset=0x30), 0, "an unused offset")
        check(await b.read("CTRL"), 0, "CTRL (write-only)")
        await b.write("ID", 0)                                # read-only: ignored
        check(await b.read("ID"), ID_MAGIC, "ID after a write")
    simulate(bench)


def test_start_is_a_pulse_and_is_ignored_while_busy():
    async def bench(b):
        check(await b.status(), dict(busy=0, done=0, error=0, start_ignored=0), "after reset")
        await b.write("CTRL", CTRL_START.mask)
        check(b.starts, 1, "start pulses")
        check((await b.status())["busy"], 1, "STATUS.busy while the start is in flight")
        b.ctx.set(b.dut.busy, 1)
        await b.write("CTRL", CTRL_START.mask)                # while busy
        check(b.starts, 1, "start pulses after a start while busy")
        check(await b.status(), dict(busy=1, done=0, error=0, start_ignored=1), "after a start while busy")
        await b.engine_list([100])
        check(await b.status(), dict(busy=0, done=1, error=0, start_ignored=1), "after the list")
        await b.write("CTRL", CTRL_CLEAR.mask)
        check(await b.status(), dict(busy=0, done=0, error=0, start_ignored=0), "after CTRL.clear")
        await b.write("CTRL", CTRL_START.mask | CTRL_CLEAR.mask)
        check(b.starts, 2, "start pulses after start + clear")
    simulate(bench)


def test_error_register_fields():
    """code, a 16-bit index and layer_id, each where models.regmap puts it."""
    err = REG["ERROR"]

    async def bench(b):
        await b.write("CTRL", CTRL_START.mask)
        await b.engine_list([5, 6], error=(7, 0x1234, 0xAB))
        word = await b.read("ERROR")
        check((err.field("code").get(word), err.field("index").get(word), err.field("layer_id").get(word)),
              (7, 0x1234, 0xAB), f"ERROR 0x{word:08x} (code, index, layer_id)")
        check(await b.status(), dict(busy=0, done=1, error=1, start_ignored=0), "after an error")
        await b.write("CTRL", CTRL_CLEAR.mask)
        check(await b.status(), dict(busy=0, done=0, error=0, start_ignored=0), "after CTRL.clear")
    simulate(bench)


def test_layer_counters_follow_the_list_position():
    """LAYER_CYCLES<i> hold descriptor i of the list; descriptors 256..271 of a long list do not
    overwrite them; LAYERS_DONE counts all; TOTAL_CYCLES counts the busy cycles."""
    n = 300

    async def bench(b):
        await b.write("CTRL", CTRL_START.mask)
        await b.engine_list([1000 + i for i in range(n)])
        check(await b.read("LAYERS_DONE"), n, "LAYERS_DONE")
        got = [await b.read(f"LAYER_CYCLES{i}") for i in range(MAX_LAYER_COUNTERS)]
        check(got, [1000 + i for i in range(MAX_LAYER_COUNTERS)], "LAYER_CYCLES0..15")
        check(await b.read("TOTAL_CYCLES"), n, "TOTAL_CYCLES (busy cycles)")
        await b.write("CTRL", CTRL_START.mask)                # a new list clears the counters
        check(await b.read("LAYERS_DONE"), 0, "LAYERS_DONE after a new start")
        check(await b.read("LAYER_CYCLES0"), 0, "LAYER_CYCLES0 after a new start")
    simulate(bench)


@pytest.mark.parametrize("base, size, engine_size", [
    (0x2000_0000, 0x100_0000, 0x100_0000),
    (0xFFFF_0000, 0x1_0000, 0x1_0000),          # ends exactly at 2**32
    (0xFFFF_0000, 0x2_0000, 0x1_0000),          # would reach past 2**32
    (0xFFFF_FFC0, 0xFFFF_FFFF, 0x40),
    (0, 0xFFFF_FFFF, 0xFFFF_FFFF),
])
def test_the_window_ends_at_the_top_of_the_address_space(base, size, engine_size):
    async def bench(b):
        await b.write("WINDOW_BASE", base)
        await b.write("WINDOW_SIZE", size)
        check(await b.read("WINDOW_SIZE"), size, "WINDOW_SIZE reads back as written")
        check(b.ctx.get(b.dut.window_size), engine_size, "window size seen by the engine")
    simulate(bench)
