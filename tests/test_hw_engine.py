# amaranth: UnusedElaboratable=no
"""Construction checks of the convolution engine and the accelerator (hw/engine.py, hw/accelerator.py)."""

import pytest

from hw.accelerator import Accelerator
from hw.engine import ConvEngine

GOOD = dict(pe_count=8, simd_lanes=16, acc_bound=3 * 9 * 128, act_buffer_words=1024, weight_buffer_words=128)


def test_init():
    e = ConvEngine(**GOOD)
    assert (e.pe_count, e.simd_lanes, e.bus_bits, e.mac_per_cycle, e.acc_bits) == (8, 16, 32, 128, 16)
    assert e.params.bus_bytes == 4


@pytest.mark.parametrize("change, error, match", [
    ({"pe_count": 4}, ValueError, "pe_count must be a power of two >= 8 that divides simd_lanes \\(16\\), not 4"),
    ({"pe_count": 24}, ValueError, "pe_count must be a power of two >= 8 that divides simd_lanes \\(16\\), not 24"),
    ({"pe_count": 32}, ValueError, "pe_count must be a power of two >= 8 that divides simd_lanes \\(16\\), not 32"),
    ({"simd_lanes": 24}, ValueError, "simd_lanes must be a power of two >= 8, not 24"),
    ({"popcount_stages": 5}, ValueError, "popcount_stages must be at most 4"),
    ({"act_buffer_words": 1000}, ValueError, "act_buffer_words must be a power of two, not 1000"),
    ({"weight_buffer_words": 0}, ValueError, "weight_buffer_words must be a positive integer, not 0"),
    ({"max_burst": "8"}, TypeError, "max_burst must be a positive integer, not '8'"),
    ({"acc_bound": -1}, ValueError, "acc_bound must be a positive integer, not -1"),
])
def test_init_wrong_params(change, error, match):
    with pytest.raises(error, match=match):
        ConvEngine(**dict(GOOD, **change))
    with pytest.raises(error, match=match):
        Accelerator(**dict(GOOD, **change))
