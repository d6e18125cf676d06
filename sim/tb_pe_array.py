"""cocotb tests of :class:`hw.pe_array.PEArray`."""

import os

import cocotb

from .reference import conv_corner_groups, conv_groups, pe_array_transaction
from .tb import TRAFFIC, ComponentTB


def _array(tb):
    cfg = tb.cfg
    return dict(pe_count=cfg.pe_count, simd_lanes=cfg.simd_lanes, max_kernel=cfg.max_kernel,
                max_in_channels=cfg.max_in_channels)


@cocotb.test()
@cocotb.parametrize(traffic=list(TRAFFIC))
async def random_groups(dut, traffic):
    """Random kernels, channel counts, codes and weights, back to back."""
    tb = ComponentTB(dut, traffic, "random")
    await tb.reset()
    groups = conv_groups(tb.rng, count=40, max_beats=12, **_array(tb))
    await tb.run([pe_array_transaction(g) for g in groups])


@cocotb.test()
@cocotb.parametrize(traffic=list(TRAFFIC))
async def corner_groups(dut, traffic):
    """Largest-magnitude sums (+-acc_bound, also alternating by PE), all-zero and all-three codes,
    single beats, padding."""
    tb = ComponentTB(dut, traffic, "corners")
    await tb.reset()
    groups = conv_corner_groups(tb.rng, **_array(tb))
    await tb.run([pe_array_transaction(g) for g in groups])


@cocotb.test(skip="LMF_SIM_BENCH_BEATS" not in os.environ)
async def throughput(dut):
    """A long stream without stalls, for simulation speed (``LMF_SIM_BENCH_BEATS`` beats)."""
    tb = ComponentTB(dut, "free", "throughput")
    await tb.reset()
    target = int(os.environ["LMF_SIM_BENCH_BEATS"])
    pool = [pe_array_transaction(g) for g in conv_groups(tb.rng, count=32, **_array(tb))]
    transactions, beats = [], 0
    while beats < target:
        t = pool[len(transactions) % len(pool)]
        transactions.append(t)
        beats += len(t.beats)
    stats = await tb.run(transactions)
    dut._log.info("THROUGHPUT %s cycles %d seconds %.3f cycles_per_second %.0f",
                  cocotb.SIM_NAME, stats["cycles"], stats["seconds"],
                  stats["cycles"] / stats["seconds"])
