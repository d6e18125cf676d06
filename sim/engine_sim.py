"""The convolution engine in Amaranth's simulator, on a memory model with the timing of
``sim/hdl/avalon_memory.v`` (no wait states, unless asked for write wait states): the fast tier
of the engine tests.

:func:`run_program` runs a descriptor list on :class:`hw.engine.ConvEngine` and returns the
memory image, the status (error, index, layers done) and the cycle counts, for comparison with
:func:`models.engine.execute_program` and :mod:`models.cycles`.
"""

from collections import deque
from dataclasses import asdict, dataclass, field

import numpy as np
from amaranth.sim import Simulator

from hw.engine import ConvEngine

__all__ = ["EngineRun", "run_program"]


@dataclass
class EngineRun:
    """What one descriptor list did on the engine."""

    memory: np.ndarray
    error: int
    error_index: int
    error_layer: int
    layers_done: int
    layer_cycles: list = field(default_factory=list)
    total_cycles: int = 0
    outside: list = field(default_factory=list)        # accesses outside the memory image


def run_program(params, image, base, desc_addr, count, *, window=None, latency=8, max_cycles=2_000_000,
                engine=None, write_stall=0.0, seed=0):
    """Run ``count`` descriptors from ``desc_addr`` on a memory holding ``image`` at ``base``.

    Parameters
    ----------
    params : models.engine.EngineParams
    image : numpy.ndarray of uint8
        Memory content from ``base`` on (a multiple of the bus word).
    window : tuple of int, optional
        ``(base, size)`` for the engine's window registers; default the whole image.
    latency : int
        Read latency of the memory (cycles from a command to its first word, as the Verilog
        model counts: the first word is valid ``latency + 1`` cycles after the command's cycle).
    engine : amaranth component, optional
        A component with the engine's ports to run instead (a deliberately broken variant).
    write_stall : float
        Probability that the memory holds ``waitrequest`` on a write in a cycle (seeded by
        ``seed``): back-pressure on the write master, so the writer's FIFO fills and its credits
        decide. With it the cycle counts exceed the cycle model's (a lower bound).

    Returns
    -------
    EngineRun
    """
    dut = ConvEngine(**asdict(params)) if engine is None else engine
    bus_bytes = params.bus_bytes
    words = np.frombuffer(bytes(image), dtype=np.uint8).reshape(-1, bus_bytes)
    mem = [int.from_bytes(w.tobytes(), "little") for w in words]
    depth = len(mem)
    window = (base, len(image)) if window is None else window
    run = EngineRun(memory=None, error=0, error_index=0, error_layer=0, layers_done=0)

    rng = np.random.default_rng(seed)

    async def bench(ctx):
        ctx.set(dut.rd.waitrequest, 0)
        ctx.set(dut.wr.waitrequest, 0)
        stalled = False
        ctx.set(dut.desc_addr, desc_addr)
        ctx.set(dut.desc_count, count)
        ctx.set(dut.window_base, window[0])
        ctx.set(dut.window_size, window[1])
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        queue = deque()            # (word index, beats, due)
        beat = 0
        now = 1
        r_valid, r_data = 0, 0
        w_beat, w_word, w_len = 0, 0, 0
        cycles = 1
        driven = (None, None)
        while True:
            if driven != (r_valid, r_data):          # only changes cost the simulator a delta cycle
                ctx.set(dut.rd.readdatavalid, r_valid)
                if r_valid:
                    ctx.set(dut.rd.readdata, r_data)
                driven = (r_valid, r_data)
            if ctx.get(dut.layer_done):
                run.layer_cycles.append(ctx.get(dut.layer_cycles))
                run.layers_done += 1
            if ctx.get(dut.finished):
                break
            # next read data (from the queue as it was before this edge)
            r_valid = 0
            if queue and now >= queue[0][2]:
                addr, length, _ = queue[0]
                r_data = mem[addr + beat] if 0 <= addr + beat < depth else 0
                r_valid = 1
                beat += 1
                if beat == length:
                    beat = 0
                    queue.popleft()
            if ctx.get(dut.rd.read):
                a, n = ctx.get(dut.rd.address), ctx.get(dut.rd.burstcount)
                index = (a - base) // bus_bytes
                if a < base or index + n > depth or (a - base) % bus_bytes:
                    run.outside.append(("read", a, n))
                queue.append((index, n, now + latency))
            stall = write_stall > 0 and rng.random() < write_stall
            if stall != stalled:
                ctx.set(dut.wr.waitrequest, stall)
                stalled = stall
            if ctx.get(dut.wr.write) and not stall:
                if w_beat == 0:
                    a = ctx.get(dut.wr.address)
                    w_word, w_len = (a - base) // bus_bytes, ctx.get(dut.wr.burstcount)
                    if a < base or w_word + w_len > depth or (a - base) % bus_bytes:
                        run.outside.append(("write", a, w_len))
                index = w_word + w_beat
                if 0 <= index < depth:
                    be = ctx.get(dut.wr.byteenable)
                    value = ctx.get(dut.wr.writedata)
                    mask = 0
                    for b in range(bus_bytes):
                        if be >> b & 1:
                            mask |= 0xFF << (8 * b)
                    mem[index] = (mem[index] & ~mask) | (value & mask)
                w_beat = 0 if w_beat + 1 == w_len else w_beat + 1
            await ctx.tick()
            now += 1
            cycles += 1
            if cycles > max_cycles:
                raise TimeoutError(f"the engine did not finish within {max_cycles} cycles")
        run.error = ctx.get(dut.error_code)
        run.error_index = ctx.get(dut.error_index)
        run.error_layer = ctx.get(dut.error_layer)
        run.total_cycles = cycles

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    out = np.frombuffer(b"".join(w.to_bytes(bus_bytes, "little") for w in mem), dtype=np.uint8).copy()
    run.memory = out
    return run
