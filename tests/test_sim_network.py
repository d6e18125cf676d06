"""Every accelerator layer of the default LMFlowNet (the fully quantized network: the frame pair
in) on Verilator (sim/tb_network.py), in sequence from the registers, data through the memory
model, each tensor compared with the golden quantized pass, the cycle counters with the cycle
model. ``HW_CONFIG`` picks the configuration (default: models/configs/hw/default.yaml); the
regression adds a run under random memory wait states and the float-ends division."""

import pytest

from sim.accel_runner import run_network
from sim.launch import hw_config_override, regress_mark
from sim.runner import simulator_missing

pytestmark = [pytest.mark.sim,
              pytest.mark.skipif(simulator_missing("verilator") is not None,
                                 reason=str(simulator_missing("verilator")))]

LAYERS = {"conv1", "conv2", "conv3", "conv3_1", "predict_flow3", "upsample_flow3", "deconv2", "cast_conv",
          "predict_flow2"}
FLOAT_ENDS_LAYERS = {"conv2", "conv3", "conv3_1", "predict_flow3", "deconv2", "cast_conv"}


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


@regress_mark()
def test_float_ends_network_bit_exact_and_cycle_exact():
    from models.network import float_ends_config_path
    results = run_network(hw_config_override(), net_config=float_ends_config_path())
    assert set(results["layers"]) == FLOAT_ENDS_LAYERS
    for seg in results["segments"]:
        assert seg["total_cycles"] == seg["model_total_cycles"]
    for layer in results["layers"].values():
        assert layer["cycles"] == layer["model_cycles"]
