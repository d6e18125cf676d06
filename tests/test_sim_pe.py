"""cocotb simulation of the generated Verilog of hw/pe.py (testbench: sim/tb_pe.py) on the small
test configurations (the regression adds the full-size ones; ``HW_CONFIG`` replaces them)."""

import pytest

from sim.launch import config_params, simulator_params
from sim.runner import REGRESS_CONFIGS, TEST_CONFIGS, run_component

pytestmark = pytest.mark.sim


@pytest.mark.parametrize("config", config_params(TEST_CONFIGS, REGRESS_CONFIGS))
@pytest.mark.parametrize("simulator", simulator_params())
def test_sim(simulator, config):
    run_component("pe", config, simulator)
