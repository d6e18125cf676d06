# amaranth: UnusedElaboratable=no
"""AXI3 register bridge (hw/axi3_to_avalon.py) in Amaranth's simulator, against a Python model of
AXI3 burst addressing and a word-addressed register slave with read latency 1."""

import random

import pytest
from amaranth.hdl import Array, Elaboratable, Module, Signal
from amaranth.lib import wiring
from amaranth.sim import Simulator

from hw.avalon import SlaveSignature
from hw.axi3 import AXI3Signature, BURST_FIXED, BURST_INCR, BURST_WRAP, RESP_OKAY, RESP_SLVERR
from hw.axi3_to_avalon import AXI3ToAvalon

CSR_AW = 5                     # 32 registers, a 128-byte window
WINDOW = 4 << CSR_AW


def test_init():
    dut = AXI3ToAvalon(addr_width=21, id_width=12, csr_addr_width=5)
    assert (dut.addr_width, dut.id_width, dut.csr_addr_width) == (21, 12, 5)
    assert dut.axi.signature.flip() == AXI3Signature(addr_width=21, data_width=32, id_width=12)
    # SlaveSignature has no equality of its own: compare its class, parameter and members
    csr = dut.csr.signature.flip()
    assert isinstance(csr, SlaveSignature) and csr.addr_width == 5
    assert csr.members == SlaveSignature(addr_width=5).members


@pytest.mark.parametrize("csr_addr_width", [0, 20, "4"])
def test_init_wrong_csr_addr_width(csr_addr_width):
    with pytest.raises((TypeError, ValueError), match=r"^csr_addr_width must be an integer between 1 and 19"):
        AXI3ToAvalon(addr_width=21, csr_addr_width=csr_addr_width)


@pytest.mark.parametrize("addr_width", [2, 65, None])
def test_init_wrong_addr_width(addr_width):
    with pytest.raises((TypeError, ValueError), match=r"^addr_width must be an integer between 3 and 64"):
        AXI3ToAvalon(addr_width=addr_width, csr_addr_width=1)


def test_axi3_signature_wrong_data_width():
    with pytest.raises(ValueError, match=r"^data_width must be a power of two, not 24"):
        AXI3Signature(addr_width=32, data_width=24, id_width=4)


def beat_addresses(addr, length, size, burst):
    """Byte address of every beat of an AXI3 burst (AMBA AXI3, A3.4.1)."""
    n = 1 << size
    out = []
    if burst == BURST_WRAP:
        span = length * n
        lower = addr - addr % span
    for i in range(length):
        out.append(addr)
        if burst == BURST_FIXED:
            continue
        addr += n
        if burst == BURST_WRAP and addr >= lower + span:
            addr -= span
    return out


class RegisterSlave(Elaboratable):
    """32 registers behind the Avalon slave signature, read latency 1 (an Amaranth module)."""

    def __init__(self, init):
        self.bus = SlaveSignature(addr_width=CSR_AW).create()
        self.regs = Array(Signal(32, init=v, name=f"reg{i}") for i, v in enumerate(init))

    def elaborate(self, platform):
        m = Module()
        with m.If(self.bus.write):
            m.d.sync += self.regs[self.bus.address].eq(self.bus.writedata)
        with m.If(self.bus.read):
            m.d.sync += self.bus.readdata.eq(self.regs[self.bus.address])
        return m


def make_dut(seed):
    rng = random.Random(seed)
    init = [rng.getrandbits(32) for _ in range(1 << CSR_AW)]
    m = Module()
    m.submodules.bridge = bridge = AXI3ToAvalon(addr_width=21, id_width=12, csr_addr_width=CSR_AW)
    slave = RegisterSlave(init)
    m.submodules.slave = slave
    wiring.connect(m, bridge.csr, slave.bus)
    return m, bridge, init


class Master:
    """AXI3 master for the testbench: drives after a clock edge, samples at the next edge."""

    def __init__(self, ctx, axi, rng, *, delay=0.0, backpressure=0.0):
        self.ctx, self.axi, self.rng = ctx, axi, rng
        self.delay, self.backpressure = delay, backpressure

    async def idle(self):
        while self.rng.random() < self.delay:
            await self.ctx.tick()

    async def handshake(self, valid, ready):
        self.ctx.set(valid, 1)
        while True:
            _, _, taken = await self.ctx.tick().sample(ready)
            if taken:
                break
        self.ctx.set(valid, 0)

    async def receive(self, valid, ready, *fields):
        while True:
            stall = self.rng.random() < self.backpressure
            self.ctx.set(ready, 0 if stall else 1)
            _, _, got, *values = await self.ctx.tick().sample(valid, *fields)
            if got and not stall:
                self.ctx.set(ready, 0)
                return values

    async def write(self, addr, beats, *, size=2, burst=BURST_INCR, tid=0):
        a, ctx = self.axi, self.ctx
        await self.idle()
        ctx.set(a.awaddr, addr)
        ctx.set(a.awlen, len(beats) - 1)
        ctx.set(a.awsize, size)
        ctx.set(a.awburst, burst)
        ctx.set(a.awid, tid)
        await self.handshake(a.awvalid, a.awready)
        for i, (data, strb) in enumerate(beats):
            await self.idle()
            ctx.set(a.wdata, data)
            ctx.set(a.wstrb, strb)
            ctx.set(a.wlast, i == len(beats) - 1)
            await self.handshake(a.wvalid, a.wready)
        bid, bresp = await self.receive(a.bvalid, a.bready, a.bid, a.bresp)
        assert bid == tid
        return bresp

    async def read(self, addr, length, *, size=2, burst=BURST_INCR, tid=0):
        a, ctx = self.axi, self.ctx
        await self.idle()
        ctx.set(a.araddr, addr)
        ctx.set(a.arlen, length - 1)
        ctx.set(a.arsize, size)
        ctx.set(a.arburst, burst)
        ctx.set(a.arid, tid)
        await self.handshake(a.arvalid, a.arready)
        out = []
        for i in range(length):
            rid, data, resp, last = await self.receive(a.rvalid, a.rready, a.rid, a.rdata, a.rresp, a.rlast)
            assert rid == tid and resp == RESP_OKAY
            assert last == (i == length - 1), f"rlast {last} on beat {i} of {length}"
            out.append(data)
        return out


def random_burst(rng):
    burst = rng.choice([BURST_INCR, BURST_INCR, BURST_FIXED, BURST_WRAP])
    length = rng.choice([2, 4, 8, 16]) if burst == BURST_WRAP else rng.randint(1, 6)
    size = 2 if burst != BURST_FIXED or rng.random() < 0.7 else rng.randint(0, 2)
    if rng.random() < 0.85:
        addr = rng.randrange(0, WINDOW, 4)
    else:
        addr = rng.randrange(WINDOW, 1 << 21, 4)      # beyond the register window
    addr -= addr % (1 << size)
    return addr, length, size, burst


@pytest.mark.parametrize("delay,backpressure", [(0.0, 0.0), (0.4, 0.5)])
def test_sim(delay, backpressure):
    """Random single and burst reads and writes (INCR, FIXED, WRAP, narrow sizes, partial strobes,
    outside the window) match the Python model; then a writer and a reader run at once."""
    seed = int(delay * 10)
    m, bridge, init = make_dut(seed)
    regs = list(init)
    errors = []
    pulses = {"access": 0, "error": 0}

    async def monitor(ctx):
        async for _, _, access, error in ctx.tick().sample(bridge.access, bridge.error):
            pulses["access"] += access
            pulses["error"] += error

    async def bench(ctx):
        rng = random.Random(seed)
        master = Master(ctx, bridge.axi, rng, delay=delay, backpressure=backpressure)
        expected_access = expected_errors = 0
        for n in range(120):
            addr, length, size, burst = random_burst(rng)
            addrs = beat_addresses(addr, length, size, burst)
            expected_access += length
            if rng.random() < 0.5:
                beats = [(rng.getrandbits(32), 0xF if rng.random() < 0.9 else rng.randrange(0, 15))
                         for _ in range(length)]
                resp = await master.write(addr, beats, size=size, burst=burst, tid=n)
                failed = any(strb != 0xF for _, strb in beats)
                for a, (data, strb) in zip(addrs, beats):
                    if strb == 0xF and a < WINDOW:
                        regs[a >> 2] = data
                expected_errors += failed
                if resp != (RESP_SLVERR if failed else RESP_OKAY):
                    errors.append(f"write {n} at 0x{addr:x}: response {resp}")
            else:
                got = await master.read(addr, length, size=size, burst=burst, tid=n)
                want = [regs[a >> 2] if a < WINDOW else 0 for a in addrs]
                if got != want:
                    errors.append(f"read {n} at 0x{addr:x} x{length} ({burst=}, {size=}): {got} != {want}")
        await ctx.tick()
        assert pulses == {"access": expected_access, "error": expected_errors}, pulses

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_process(monitor)
    sim.run()
    assert not errors, "\n".join(errors[:5])


def test_sim_concurrent_channels():
    """A writer and a reader issue at the same time: both finish, each gets its own responses,
    and a pending read is served between writes (the bridge alternates)."""
    m, bridge, init = make_dut(7)
    done = {}
    order = []

    async def writer(ctx):
        master = Master(ctx, bridge.axi, random.Random(1))
        for i in range(20):
            assert await master.write(4 * (i % 8), [(0xA0000000 | i, 0xF)], tid=100 + i) == RESP_OKAY
            order.append("w")
        done["w"] = True

    async def reader(ctx):
        master = Master(ctx, bridge.axi, random.Random(2))
        for i in range(20):
            got = await master.read(4 * (16 + i % 8), 2, tid=200 + i)
            assert got == [init[16 + i % 8], init[17 + i % 8]]
            order.append("r")
        done["r"] = True

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(writer)
    sim.add_testbench(reader)
    sim.run_until(20e-6)
    assert done == {"w": True, "r": True}
    first_reads = order.index("r")
    assert first_reads <= 2, f"reads starved behind writes: {''.join(order)}"
