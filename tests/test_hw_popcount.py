# amaranth: UnusedElaboratable=no
"""Popcount tree (hw/popcount.py) in Amaranth's simulator."""

import numpy as np
import pytest
from amaranth.hdl import unsigned

from hw.popcount import Popcount, stage_cuts, tree_levels
from sim.amaranth_tb import check_outputs, measure_latency, run_stream
from sim.reference import popcount_transactions

TRAFFIC = [(0.0, 0.0), (0.4, 0.0), (0.0, 0.5), (0.3, 0.4)]


def test_init():
    pc = Popcount(width=64, stages=2)
    assert (pc.width, pc.stages, pc.latency, pc.count_width) == (64, 2, 2, 7)
    assert pc.i_stream.payload.data.shape() == unsigned(64)
    assert pc.o_stream.payload.count.shape() == unsigned(7)
    assert Popcount(width=13, stages=0, user=3).o_stream.payload.user.shape() == unsigned(3)


def test_tree_levels_and_cuts():
    assert [tree_levels(w) for w in (1, 2, 3, 4, 5, 64, 65)] == [0, 1, 2, 2, 3, 6, 7]
    assert stage_cuts(6, 0) == []
    assert stage_cuts(6, 1) == [6]
    assert stage_cuts(6, 2) == [3, 6]
    assert stage_cuts(6, 6) == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("width", [0, -1, 1.5, True, "8"])
def test_init_wrong_width(width):
    with pytest.raises((TypeError, ValueError), match=r"^width must be a positive integer, not "):
        Popcount(width=width, stages=0)


@pytest.mark.parametrize("stages", [-1, 4, None])
def test_init_wrong_stages(stages):
    with pytest.raises((TypeError, ValueError),
                       match=r"^stages must be an integer between 0 and 3 \(the tree's levels\), not "):
        Popcount(width=8, stages=stages)


def test_init_wrong_user():
    with pytest.raises(TypeError, match=r"^user must be a shape-like object, not 'x'$"):
        Popcount(width=8, stages=1, user="x")


@pytest.mark.parametrize("width,stages", [(1, 0), (5, 1), (8, 0), (13, 2), (16, 4), (64, 2)])
def test_sim(width, stages):
    rng = np.random.default_rng(width * 10 + stages)
    for seed, (idle, stall) in enumerate(TRAFFIC):
        pc = Popcount(width=width, stages=stages, user=3)
        ts = popcount_transactions(rng, width=width, count=40, user_width=3)
        outputs, _ = run_stream(pc, ts, idle=idle, stall=stall, seed=seed)
        check_outputs(ts, outputs, f"popcount width={width} stages={stages} idle={idle} stall={stall}")


@pytest.mark.parametrize("stages", [0, 1, 2, 3])
def test_latency(stages):
    pc = Popcount(width=8, stages=stages)
    ts = popcount_transactions(np.random.default_rng(0), width=8, count=1)
    assert measure_latency(pc, ts[0]) == pc.latency == stages
