# amaranth: UnusedElaboratable=no
"""Processing element (hw/pe.py) in Amaranth's simulator, checked against models.conv."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned

from hw.pe import PE
from sim.amaranth_tb import check_outputs, measure_latency, run_stream
from sim.reference import conv_corner_groups, conv_groups, pe_transaction, Transaction

TRAFFIC = [(0.0, 0.0), (0.4, 0.0), (0.0, 0.5), (0.3, 0.4)]


def test_init():
    pe = PE(simd_lanes=64, acc_bound=27648, popcount_stages=2)
    assert (pe.simd_lanes, pe.acc_bound, pe.popcount_stages, pe.subtract_ones) == (64, 27648, 2, True)
    assert pe.acc_width == 16 and pe.o_stream.payload.shape() == signed(16)
    assert pe.latency == 3
    assert pe.i_stream.payload.shape() == PE.input_layout(64)
    partial = PE(simd_lanes=64, acc_bound=27648, popcount_stages=2, subtract_ones=False)
    assert partial.o_stream.payload.shape() == unsigned(15)


@pytest.mark.parametrize("simd_lanes", [0, -8, 2.0, True])
def test_init_wrong_simd_lanes(simd_lanes):
    with pytest.raises((TypeError, ValueError), match=r"^simd_lanes must be a positive integer, not "):
        PE(simd_lanes=simd_lanes, acc_bound=100, popcount_stages=0)


@pytest.mark.parametrize("acc_bound", [23, 0, "100", None])
def test_init_wrong_acc_bound(acc_bound):
    with pytest.raises((TypeError, ValueError),
                       match=r"^acc_bound must be an integer >= 3 \* simd_lanes = 24, not "):
        PE(simd_lanes=8, acc_bound=acc_bound, popcount_stages=0)


@pytest.mark.parametrize("stages", [-1, 4])
def test_init_wrong_popcount_stages(stages):
    with pytest.raises(ValueError, match=r"^popcount_stages must be an integer between 0 and 3 "
                                         r"\(the popcount tree's levels\), not "):
        PE(simd_lanes=8, acc_bound=100, popcount_stages=stages)


def test_init_wrong_subtract_ones():
    with pytest.raises(TypeError, match=r"^subtract_ones must be a bool, not 1$"):
        PE(simd_lanes=8, acc_bound=100, popcount_stages=0, subtract_ones=1)


def _partial(t, group):
    """The expected sum of a PE without the popcount(a_b) term: (acc + sum of codes) / 2."""
    ones = int(group.codes.astype(np.int64).sum())
    assert (t.expected + ones) % 2 == 0
    return Transaction(t.beats, (t.expected + ones) // 2, t.describe)


@pytest.mark.parametrize("subtract_ones", [True, False], ids=["subtract", "partial"])
@pytest.mark.parametrize("simd_lanes,stages,max_in", [(8, 0, 32), (16, 1, 48), (24, 3, 24)])
def test_sim(simd_lanes, stages, max_in, subtract_ones):
    rng = np.random.default_rng(simd_lanes + stages)
    shape = dict(pe_count=1, simd_lanes=simd_lanes, max_kernel=3, max_in_channels=max_in)
    acc_bound = 3 * 9 * max_in
    for seed, (idle, stall) in enumerate(TRAFFIC):
        groups = conv_groups(rng, count=8, max_beats=8, **shape)
        if seed == 0:
            groups += conv_corner_groups(rng, **shape)
        ts = [pe_transaction(g) for g in groups]
        if not subtract_ones:
            ts = [_partial(t, g) for t, g in zip(ts, groups)]
        pe = PE(simd_lanes=simd_lanes, acc_bound=acc_bound, popcount_stages=stages,
                subtract_ones=subtract_ones)
        outputs, _ = run_stream(pe, ts, idle=idle, stall=stall, seed=seed)
        check_outputs(ts, outputs, f"PE S={simd_lanes} stages={stages} idle={idle} stall={stall}")


@pytest.mark.parametrize("stages", [0, 1, 3])
def test_latency(stages):
    rng = np.random.default_rng(stages)
    group, = conv_groups(rng, pe_count=1, simd_lanes=8, max_kernel=3, max_in_channels=16, count=1)
    pe = PE(simd_lanes=8, acc_bound=432, popcount_stages=stages)
    assert measure_latency(pe, pe_transaction(group)) == pe.latency == stages + 1
