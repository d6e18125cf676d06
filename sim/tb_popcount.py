"""cocotb tests of :class:`hw.popcount.Popcount` (exported at the configuration's lane count)."""

import cocotb

from .reference import popcount_transactions
from .tb import TRAFFIC, ComponentTB


@cocotb.test()
@cocotb.parametrize(traffic=list(TRAFFIC))
async def words(dut, traffic):
    """Random words (sparse, half and dense) and the corners 0, all ones, single bits."""
    tb = ComponentTB(dut, traffic, "words")
    await tb.reset()
    width = tb.component.width
    await tb.run(popcount_transactions(tb.rng, width=width, count=150))
