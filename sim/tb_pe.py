"""cocotb tests of the standalone :class:`hw.pe.PE` (one output channel, ``subtract_ones``)."""

import cocotb

from .reference import conv_corner_groups, conv_groups, pe_transaction
from .tb import TRAFFIC, ComponentTB


def _array(tb):
    cfg = tb.cfg
    return dict(pe_count=1, simd_lanes=cfg.simd_lanes, max_kernel=cfg.max_kernel,
                max_in_channels=cfg.max_in_channels)


@cocotb.test()
@cocotb.parametrize(traffic=list(TRAFFIC))
async def random_groups(dut, traffic):
    """Random kernels, channel counts, codes and weights, back to back."""
    tb = ComponentTB(dut, traffic, "random")
    await tb.reset()
    groups = conv_groups(tb.rng, count=40, max_beats=12, **_array(tb))
    await tb.run([pe_transaction(g) for g in groups])


@cocotb.test()
@cocotb.parametrize(traffic=list(TRAFFIC))
async def corner_groups(dut, traffic):
    """Largest-magnitude sums (+-acc_bound), all-zero and all-three codes, single beats, padding."""
    tb = ComponentTB(dut, traffic, "corners")
    await tb.reset()
    groups = conv_corner_groups(tb.rng, **_array(tb))
    await tb.run([pe_transaction(g) for g in groups])
