"""cocotb simulation of the generated Verilog of hw/pe_array.py (testbench: sim/tb_pe_array.py) on the
small test configurations (the regression adds the full-size ones; ``HW_CONFIG`` replaces them)."""

from amaranth.hdl import Module
from amaranth.lib import wiring
import pytest

from models.hwconfig import load_hw_config
from hw.export import build_component
from sim.launch import config_params, regress_mark, simulator_params
from sim.runner import REGRESS_CONFIGS, TEST_CONFIGS, SimulationFailed, run_component

pytestmark = pytest.mark.sim


@pytest.mark.parametrize("config", config_params(TEST_CONFIGS, REGRESS_CONFIGS))
@pytest.mark.parametrize("simulator", simulator_params())
def test_sim(simulator, config):
    run_component("pe_array", config, simulator)


class SwappedPlanesArray(wiring.Component):
    """A deliberately broken PE array (test only): its activation bit-planes are swapped.

    Same ports as :class:`hw.pe_array.PEArray`; the suite must catch it.
    """

    def __init__(self, array):
        self._array = array
        super().__init__(array.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = array = self._array
        inner, outer = array.i_stream, self.i_stream
        m.d.comb += [
            inner.valid.eq(outer.valid),
            outer.ready.eq(inner.ready),
            inner.payload.eq(outer.payload),
            inner.payload.planes[0].eq(outer.payload.planes[1]),
            inner.payload.planes[1].eq(outer.payload.planes[0]),
        ]
        wiring.connect(m, array.o_stream, wiring.flipped(self.o_stream))
        return m


@regress_mark()
@pytest.mark.parametrize("simulator", simulator_params())
def test_sim_catches_swapped_planes(simulator):
    cfg = load_hw_config(TEST_CONFIGS[0])
    broken = SwappedPlanesArray(build_component("pe_array", cfg))
    with pytest.raises(SimulationFailed) as failure:
        run_component("pe_array", cfg.source, simulator, design=broken, tag="swapped-planes",
                      tests="corner_groups")
    report = str(failure.value)
    # The first mismatch names the configuration, the channel, the inputs and both values.
    assert "MISMATCH in pe_array" in report
    assert cfg.summary() in report
    assert "channel " in report and "inputs: " in report
    assert "expected " in report and "received " in report
