"""The whole accelerator segment of the default LMFlowNet on Verilator (sim/tb_network.py): every
FPGA layer in sequence from the registers, data through the memory model, each tensor compared
with the golden quantized pass, the cycle counters with the cycle model. ``HW_CONFIG`` picks the
configuration (default: models/configs/hw/default.yaml); the regression adds a run under random
memory wait states."""

import pytest

from sim.accel_runner import run_network
from sim.launch import hw_config_override, regress_mark
from sim.runner import simulator_missing

pytestmark = [pytest.mark.sim,
              pytest.mark.skipif(simulator_missing("verilator") is not None,
                                 reason=str(simulator_missing("verilator")))]

LAYERS = {"conv2", "conv3", "conv3_1", "predict_flow3", "deconv2", "cast_conv"}


def test_default_network_bit_exact_and_cycle_exact():
    results = run_network(hw_config_override())
    assert set(results["layers"]) == LAYERS
    for seg in results["segments"]:
        assert seg["total_cycles"] == seg["model_total_cycles"]
    for layer in results["layers"].values():
        assert layer["cycles"] == layer["model_cycles"]


@regress_mark()
def test_default_network_bit_exact_under_wait_states():
    results = run_network(hw_config_override(), stall_pct=10)
    assert set(results["layers"]) == LAYERS
    for seg in results["segments"]:
        assert seg["total_cycles"] >= seg["model_total_cycles"]      # the model is a lower bound
