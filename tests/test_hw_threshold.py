# amaranth: UnusedElaboratable=no
"""Threshold unit (hw/threshold.py) in Amaranth's simulator, checked against models.thresholds."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from hw.threshold import ThresholdUnit, record_layout
from models.formats import threshold_record
from models.thresholds import threshold_bits
from sim.amaranth_tb import check_outputs, measure_latency, run_stream
from sim.payload import pack, unpack
from sim.reference import threshold_corner_transactions, threshold_transactions

TRAFFIC = [(0.0, 0.0), (0.4, 0.0), (0.0, 0.5), (0.3, 0.4)]


def _record_key(record):
    """What makes two record layouts the same (RecordLayout has no equality of its own)."""
    return record.name, record.bits, tuple((f.name, f.width, f.signed, record.offsets[f.name]) for f in record.fields)


def test_init():
    tu = ThresholdUnit(channels=32, acc_bound=27648)
    assert (tu.channels, tu.acc_bound, tu.acc_width, tu.latency) == (32, 27648, 16, 1)
    assert _record_key(tu.record) == _record_key(threshold_record(27648))
    out = tu.o_stream.payload.shape()
    assert out["codes"].shape == data.ArrayLayout(unsigned(2), 32)
    assert out["acc"].shape == data.ArrayLayout(signed(16), 32)


@pytest.mark.parametrize("acc_bound", [1, 27648, 10422, 864])
def test_record_layout_follows_models_formats(acc_bound):
    """Every field of the gateware's record view sits where models.formats puts it."""
    record = threshold_record(acc_bound)
    view = record_layout(acc_bound)
    assert view.size == record.bits
    for f in record.fields:
        assert view[f.name].offset == record.offsets[f.name]
        assert view[f.name].shape == (signed(f.width) if f.signed else unsigned(f.width))
    assert view["t0"].shape.width == threshold_bits(acc_bound)
    values = dict(t0=-acc_bound - 1, t1=0, t2=acc_bound + 1, direction=1, constant=3)
    raw = record.pack(**values)
    assert unpack(view, raw) == values
    assert pack(view, values) == raw


@pytest.mark.parametrize("channels", [0, -1, 2.5, True])
def test_init_wrong_channels(channels):
    with pytest.raises((TypeError, ValueError), match=r"^channels must be a positive integer, not "):
        ThresholdUnit(channels=channels, acc_bound=100)


@pytest.mark.parametrize("acc_bound", [0, None])
def test_init_wrong_acc_bound(acc_bound):
    with pytest.raises((TypeError, ValueError), match=r"^acc_bound must be a positive integer, not "):
        ThresholdUnit(channels=4, acc_bound=acc_bound)


@pytest.mark.parametrize("channels,acc_bound", [(4, 864), (3, 1296), (1, 27648)])
def test_sim(channels, acc_bound):
    rng = np.random.default_rng(channels)
    for seed, (idle, stall) in enumerate(TRAFFIC):
        ts = threshold_transactions(rng, channels=channels, acc_bound=acc_bound, count=40)
        if seed in (0, 3):
            ts += threshold_corner_transactions(rng, channels=channels, acc_bound=acc_bound)
        tu = ThresholdUnit(channels=channels, acc_bound=acc_bound)
        outputs, _ = run_stream(tu, ts, idle=idle, stall=stall, seed=seed)
        check_outputs(ts, outputs, f"ThresholdUnit C={channels} A={acc_bound} idle={idle} stall={stall}")


def test_every_code_and_direction_is_exercised():
    ts = threshold_corner_transactions(np.random.default_rng(0), channels=4, acc_bound=864)
    codes = {c for t in ts if not t.expected["bypass"] for c in t.expected["codes"]}
    directions = {r["direction"] for t in ts for r in
                  (unpack(record_layout(864), raw) for raw in t.beats[0]["thresholds"])}
    assert codes == {0, 1, 2, 3} and directions == {0, 1, 2, 3}


def test_latency():
    ts = threshold_transactions(np.random.default_rng(0), channels=2, acc_bound=100, count=1)
    tu = ThresholdUnit(channels=2, acc_bound=100)
    assert measure_latency(tu, ts[0]) == tu.latency == 1
