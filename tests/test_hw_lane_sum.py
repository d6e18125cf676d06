# amaranth: UnusedElaboratable=no
"""The lane-sum tree (hw/lane_sum.py): sum_j w_j * q_j, bit-exact against numpy, every stage count."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.lane_sum import LaneSum, pair_sum
from hw.popcount import tree_levels


def test_pair_sum_truth_table():
    m = Module()
    ins = [Signal(name=f"i{k}") for k in range(6)]
    out = Signal(3)
    m.d.comb += out.eq(pair_sum(*ins))

    async def bench(ctx):
        for v in range(64):
            bits = [(v >> k) & 1 for k in range(6)]
            for sig, b in zip(ins, bits):
                ctx.set(sig, b)
            a0, a1, w0, b0, b1, w1 = bits
            assert ctx.get(out) == w0 * (a0 + 2 * a1) + w1 * (b0 + 2 * b1), bits

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("width", [1, 2, 3, 8, 13, 64])
def test_sum_and_latency(width):
    rng = np.random.default_rng(width)
    beats = 40
    codes = rng.integers(0, 4, (beats, width))
    codes[0] = 3                                       # the largest sum
    weights = rng.integers(0, 2, (beats, width))
    weights[0] = 1
    expected = (codes * weights).sum(axis=1)
    for stages in range(tree_levels(width) + 1):
        dut = LaneSum(width=width, stages=stages, user=8)
        got = []

        async def bench(ctx):
            ctx.set(dut.o_stream.ready, 1)
            ctx.set(dut.i_stream.valid, 1)
            for t in range(beats + stages + 1):
                if t < beats:
                    a0 = int(sum(int(c & 1) << j for j, c in enumerate(codes[t])))
                    a1 = int(sum(int(c >> 1) << j for j, c in enumerate(codes[t])))
                    w = int(sum(int(b) << j for j, b in enumerate(weights[t])))
                    ctx.set(dut.i_stream.payload.planes[0], a0)
                    ctx.set(dut.i_stream.payload.planes[1], a1)
                    ctx.set(dut.i_stream.payload.weights, w)
                    ctx.set(dut.i_stream.payload.user, t)
                else:
                    ctx.set(dut.i_stream.valid, 0)
                if ctx.get(dut.o_stream.valid):
                    got.append((t, ctx.get(dut.o_stream.payload.user), ctx.get(dut.o_stream.payload.sum)))
                await ctx.tick()

        m = Module()
        m.submodules.dut = dut
        tick = Signal()
        m.d.sync += tick.eq(~tick)
        sim = Simulator(m)
        sim.add_clock(1e-8)
        sim.add_testbench(bench)
        sim.run()
        assert [u for _, u, _ in got] == list(range(beats)), (width, stages)
        assert all(t - u == stages for t, u, _ in got), (width, stages)         # latency = stages
        assert [s for _, _, s in got] == expected.tolist(), (width, stages)
        assert dut.latency == stages


def test_init_wrong_params():
    with pytest.raises(ValueError, match="stages must be an integer between 0 and 6"):
        LaneSum(width=64, stages=7)
    with pytest.raises(TypeError, match="user must be a shape-like object"):
        LaneSum(width=8, stages=1, user="x")
