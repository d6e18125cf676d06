"""cocotb simulation of the generated Verilog of hw/popcount.py (testbench: sim/tb_popcount.py)."""

import pytest

from sim.launch import config_params, simulator_params
from sim.runner import run_component

pytestmark = pytest.mark.sim


@pytest.mark.parametrize("config", config_params())
@pytest.mark.parametrize("simulator", simulator_params())
def test_sim(simulator, config):
    run_component("popcount", config, simulator)
