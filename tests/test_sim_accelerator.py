"""cocotb simulation of the whole accelerator (sim/tb_accelerator.py) on small engine configurations:
random layers of every kind under random memory latency and wait states, error paths, start
while busy, and the cycle model, each against models/ byte for byte. The regression adds the
default configuration and long random runs; ``HW_CONFIG`` replaces the configurations."""

from amaranth.hdl import Module
from amaranth.lib import wiring
import pytest

from hw.build import build_accelerator
from sim.accel_runner import (ENGINE_TEST_CONFIGS, LAYER_MEMORY_WORDS, REGRESS_ENGINE_CONFIGS,
                              run_accelerator)
from sim.launch import config_params, hw_config_override, regress_enabled, regress_mark, simulator_params
from sim.runner import SimulationFailed

pytestmark = pytest.mark.sim

#: Random cases per configuration in the regression on Verilator (the quick suite, and Icarus,
#: which runs a large accelerator tens of times slower, run the testbench's 10).
REGRESS_CASES = 60


@pytest.mark.parametrize("config", config_params(ENGINE_TEST_CONFIGS, REGRESS_ENGINE_CONFIGS))
@pytest.mark.parametrize("simulator", simulator_params())
def test_sim(simulator, config):
    env = {"LMF_ACC_CASES": str(REGRESS_CASES)} if regress_enabled() and simulator == "verilator" else None
    # A configuration the network also runs on (the regression's, HW_CONFIG's) shares the
    # network's simulator (1 MiB memory) instead of building a second large one.
    shared = config in REGRESS_ENGINE_CONFIGS or hw_config_override() is not None
    run_accelerator(config, simulator, extra_env=env, mem_words=None if shared else LAYER_MEMORY_WORDS)


class CorruptedReadData(wiring.Component):
    """A deliberately broken accelerator (test only): bit 0 of every word read from memory is flipped
    on its way in. Same ports as :class:`hw.accelerator.Accelerator`; the suite must catch it."""

    def __init__(self, accelerator):
        self._acc = accelerator
        super().__init__(accelerator.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.acc = acc = self._acc
        wiring.connect(m, wiring.flipped(self.csr), acc.csr)
        wiring.connect(m, acc.wr, wiring.flipped(self.wr))
        m.d.comb += [
            self.rd.address.eq(acc.rd.address), self.rd.read.eq(acc.rd.read),
            self.rd.burstcount.eq(acc.rd.burstcount), acc.rd.waitrequest.eq(self.rd.waitrequest),
            acc.rd.readdatavalid.eq(self.rd.readdatavalid),
            acc.rd.readdata.eq(self.rd.readdata ^ 1),
            self.busy.eq(acc.busy),
        ]
        return m


@regress_mark()
def test_a_broken_accelerator_is_caught():
    simulator = "verilator" if "verilator" in [p.values[0] for p in simulator_params() if not p.marks] else "icarus"
    config = ENGINE_TEST_CONFIGS[0]
    broken = CorruptedReadData(build_accelerator(config))
    with pytest.raises(SimulationFailed, match="bytes differ; first at"):
        run_accelerator(config, simulator, design=broken, tag="corrupted", tests="test_every_layer_kind")
