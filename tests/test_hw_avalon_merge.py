# amaranth: UnusedElaboratable=no
"""Read/write port merge (hw/avalon_merge.py) in Amaranth's simulator: a read master and a write
master with random bursts and gaps on one port with random wait states, read latency and
read-data gaps; memory contents, read data, word addresses and the port protocol are checked."""

import random
from collections import deque

import pytest
from amaranth.sim import Simulator

from hw.avalon_merge import AvalonReadWriteMerge, ReadWriteMasterSignature

DATA_W = 128
BYTES = DATA_W // 8
WORDS = 512                 # reads in words 0..255, writes in words 256..511


def test_init():
    dut = AvalonReadWriteMerge(data_width=128, burst_width=7, port_burst_width=8)
    assert (dut.data_width, dut.burst_width, dut.port_burst_width, dut.addr_width) == (128, 7, 8, 32)
    assert dut.port.signature == ReadWriteMasterSignature(addr_width=28, data_width=128, burst_width=8)


@pytest.mark.parametrize("data_width", [0, 24, 96])
def test_init_wrong_data_width(data_width):
    with pytest.raises(ValueError, match=r"^data_width must be "):
        AvalonReadWriteMerge(data_width=data_width, burst_width=7)


def test_init_wrong_port_burst_width():
    with pytest.raises(ValueError, match=r"^port_burst_width must be an integer >= burst_width \(7\), not 6"):
        AvalonReadWriteMerge(data_width=128, burst_width=7, port_burst_width=6)


def run(seed, *, stall, gap, write_gap, latency, bursts=40):
    rng = random.Random(seed)
    dut = AvalonReadWriteMerge(data_width=DATA_W, burst_width=7, port_burst_width=8)
    memory = [rng.getrandbits(DATA_W) for _ in range(WORDS)]
    expected = list(memory)
    read_plan = []
    for _ in range(bursts):
        n = rng.randint(1, 16)
        read_plan.append((rng.randrange(0, 256 - n), n))
    write_plan = []
    for _ in range(bursts):
        n = rng.randint(1, 16)
        start = rng.randrange(256, WORDS - n)
        beats = [(rng.getrandbits(DATA_W), rng.getrandbits(BYTES) | (1 if rng.random() < 0.5 else 0))
                 for _ in range(n)]
        write_plan.append((start, beats))
        for i, (data, be) in enumerate(beats):
            mask = sum(0xFF << (8 * b) for b in range(BYTES) if be >> b & 1)
            expected[start + i] = (expected[start + i] & ~mask) | (data & mask)
    want_reads = [memory[a + i] for a, n in read_plan for i in range(n)]
    got_reads = []
    problems = []
    state = {"reads_done": False, "writes_done": False}

    async def read_master(ctx):
        for addr, n in read_plan:
            while rng.random() < 0.3:
                await ctx.tick()
            ctx.set(dut.rd.address, addr * BYTES)
            ctx.set(dut.rd.burstcount, n)
            ctx.set(dut.rd.read, 1)
            while (await ctx.tick().sample(dut.rd.waitrequest))[2]:
                pass
            ctx.set(dut.rd.read, 0)
        while len(got_reads) < len(want_reads):
            await ctx.tick()
        state["reads_done"] = True

    async def read_data(ctx):
        async for _, _, valid, data in ctx.tick().sample(dut.rd.readdatavalid, dut.rd.readdata):
            if valid:
                got_reads.append(data)

    async def write_master(ctx):
        for start, beats in write_plan:
            ctx.set(dut.wr.address, start * BYTES)
            ctx.set(dut.wr.burstcount, len(beats))
            for data, be in beats:
                while rng.random() < write_gap:
                    ctx.set(dut.wr.write, 0)
                    await ctx.tick()
                ctx.set(dut.wr.writedata, data)
                ctx.set(dut.wr.byteenable, be)
                ctx.set(dut.wr.write, 1)
                while (await ctx.tick().sample(dut.wr.waitrequest))[2]:
                    pass
            ctx.set(dut.wr.write, 0)
        state["writes_done"] = True

    async def port_slave(ctx):
        port = dut.port
        pending = deque()                   # (due cycle, word address)
        burst = None                        # [next word, beats left] of a write burst
        last_cmd = None
        cycle = 0
        while True:
            wait = rng.random() < stall
            ctx.set(port.waitrequest, wait)
            due = pending and pending[0][0] <= cycle and rng.random() >= gap
            if due:
                ctx.set(port.readdata, memory[pending.popleft()[1]])
            ctx.set(port.readdatavalid, bool(due))
            _, _, read, write, address, count, data, be = await ctx.tick().sample(
                port.read, port.write, port.address, port.burstcount, port.writedata, port.byteenable)
            cycle += 1
            cmd = (read, write, address, count)
            if last_cmd is not None and cmd != last_cmd and burst is None:
                problems.append(f"cycle {cycle}: command {last_cmd} changed to {cmd} while waiting")
            last_cmd = cmd if (read or write) and wait else None
            if read and burst is not None:
                problems.append(f"cycle {cycle}: read during a write burst")
            if wait:
                continue
            if read:
                for i in range(count):
                    pending.append((cycle + latency, address + i))
            if write:
                if burst is None:
                    burst = [address, count]
                word = burst[0]
                mask = sum(0xFF << (8 * b) for b in range(BYTES) if be >> b & 1)
                memory[word] = (memory[word] & ~mask) | (data & mask)
                burst[0] += 1
                burst[1] -= 1
                if burst[1] == 0:
                    burst = None

    async def bench(ctx):
        for _ in range(20000):
            if state["reads_done"] and state["writes_done"]:
                break
            await ctx.tick()
        await ctx.tick().repeat(4)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(read_master, background=True)
    sim.add_testbench(write_master, background=True)
    sim.add_testbench(bench)
    sim.add_process(read_data)
    sim.add_process(port_slave)
    sim.run()
    assert state == {"reads_done": True, "writes_done": True}, "the masters did not finish (deadlock?)"
    assert not problems, "\n".join(problems[:5])
    assert got_reads == want_reads
    assert memory == expected


@pytest.mark.parametrize("stall,gap,write_gap,latency", [
    (0.0, 0.0, 0.0, 1), (0.3, 0.0, 0.0, 3), (0.0, 0.4, 0.3, 5), (0.5, 0.3, 0.5, 2)])
def test_sim(stall, gap, write_gap, latency):
    run(int(stall * 10 + gap * 100 + latency), stall=stall, gap=gap, write_gap=write_gap, latency=latency)
