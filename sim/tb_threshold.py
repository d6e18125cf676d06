"""cocotb tests of :class:`hw.threshold.ThresholdUnit`."""

import cocotb

from .reference import threshold_corner_transactions, threshold_transactions
from .tb import TRAFFIC, ComponentTB


@cocotb.test()
@cocotb.parametrize(traffic=list(TRAFFIC))
async def random_tables(dut, traffic):
    """Random tables (all directions, sorted and unsorted, reachable and not) and accumulators
    near the thresholds; some beats bypassed."""
    tb = ComponentTB(dut, traffic, "random")
    await tb.reset()
    c = tb.component
    await tb.run(threshold_transactions(tb.rng, channels=c.channels, acc_bound=c.acc_bound, count=200))


@cocotb.test()
@cocotb.parametrize(traffic=list(TRAFFIC))
async def corners(dut, traffic):
    """Accumulator equal to each threshold and one off either side; increasing, decreasing,
    constant and direction-3 channels; thresholds beyond the reachable range; bypass."""
    tb = ComponentTB(dut, traffic, "corners")
    await tb.reset()
    c = tb.component
    await tb.run(threshold_corner_transactions(tb.rng, channels=c.channels, acc_bound=c.acc_bound))
