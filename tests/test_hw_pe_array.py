# amaranth: UnusedElaboratable=no
"""PE array (hw/pe_array.py) in Amaranth's simulator, checked against models.conv."""

import numpy as np
import pytest
from amaranth.hdl import signed
from amaranth.lib import data

from hw.pe_array import PEArray
from sim.amaranth_tb import check_outputs, measure_latency, run_stream
from sim.reference import conv_corner_groups, conv_groups, pe_array_transaction

TRAFFIC = [(0.0, 0.0), (0.4, 0.0), (0.0, 0.5), (0.3, 0.4)]


def test_init():
    arr = PEArray(pe_count=32, simd_lanes=64, acc_bound=27648, popcount_stages=2)
    assert (arr.pe_count, arr.simd_lanes, arr.acc_bound, arr.popcount_stages) == (32, 64, 27648, 2)
    assert arr.acc_width == 16 and arr.macs_per_beat == 2048 and arr.latency == 4
    assert arr.o_stream.payload.shape() == data.ArrayLayout(signed(16), 32)
    assert arr.i_stream.payload.shape() == PEArray.input_layout(32, 64)


@pytest.mark.parametrize("pe_count", [0, -1, 1.0, False])
def test_init_wrong_pe_count(pe_count):
    with pytest.raises((TypeError, ValueError), match=r"^pe_count must be a positive integer, not "):
        PEArray(pe_count=pe_count, simd_lanes=8, acc_bound=100, popcount_stages=0)


def test_init_wrong_simd_lanes():
    with pytest.raises(ValueError, match=r"^simd_lanes must be a positive integer, not 0$"):
        PEArray(pe_count=2, simd_lanes=0, acc_bound=100, popcount_stages=0)


def test_init_wrong_acc_bound():
    with pytest.raises(ValueError, match=r"^acc_bound must be an integer >= 3 \* simd_lanes = 48, not 47$"):
        PEArray(pe_count=2, simd_lanes=16, acc_bound=47, popcount_stages=0)


def test_init_wrong_popcount_stages():
    with pytest.raises(ValueError, match=r"^popcount_stages must be an integer between 0 and 4 "):
        PEArray(pe_count=2, simd_lanes=16, acc_bound=100, popcount_stages=5)


@pytest.mark.parametrize("pe_count,simd_lanes,stages,max_in", [(4, 8, 0, 32), (3, 16, 1, 48), (5, 24, 2, 24)])
def test_sim(pe_count, simd_lanes, stages, max_in):
    rng = np.random.default_rng(pe_count * 100 + simd_lanes)
    shape = dict(pe_count=pe_count, simd_lanes=simd_lanes, max_kernel=3, max_in_channels=max_in)
    for seed, (idle, stall) in enumerate(TRAFFIC):
        groups = conv_groups(rng, count=8, max_beats=8, **shape)
        if seed in (0, 3):
            groups += conv_corner_groups(rng, **shape)
        ts = [pe_array_transaction(g) for g in groups]
        arr = PEArray(pe_count=pe_count, simd_lanes=simd_lanes, acc_bound=3 * 9 * max_in,
                      popcount_stages=stages)
        outputs, _ = run_stream(arr, ts, idle=idle, stall=stall, seed=seed)
        check_outputs(ts, outputs, f"PEArray P={pe_count} S={simd_lanes} stages={stages} "
                                   f"idle={idle} stall={stall}")


def test_max_accumulation_uses_full_width():
    """At P=2, S=8 over 3x3x8 the sums reach +-216, which needs every accumulator bit."""
    shape = dict(pe_count=2, simd_lanes=8, max_kernel=3, max_in_channels=8)
    groups = conv_corner_groups(np.random.default_rng(0), **shape)[:3]
    ts = [pe_array_transaction(g) for g in groups]
    assert [t.expected for t in ts] == [[216, 216], [-216, -216], [216, -216]]
    arr = PEArray(pe_count=2, simd_lanes=8, acc_bound=216, popcount_stages=1)
    assert arr.acc_width == 9
    outputs, _ = run_stream(arr, ts)
    check_outputs(ts, outputs, "PEArray at its bound")


@pytest.mark.parametrize("stages", [0, 2])
def test_latency(stages):
    rng = np.random.default_rng(stages)
    group, = conv_groups(rng, pe_count=3, simd_lanes=8, max_kernel=3, max_in_channels=16, count=1)
    arr = PEArray(pe_count=3, simd_lanes=8, acc_bound=432, popcount_stages=stages)
    assert measure_latency(arr, pe_array_transaction(group)) == arr.latency == stages + 2
