"""The whole accelerator segment of the default LMFlowNet on Verilator (sim/tb_network.py): every
FPGA layer in sequence from the registers, data through the memory model, each tensor compared
with the golden quantized pass, the cycle counters with the cycle model."""

import pytest

from sim.accel_runner import run_network
from sim.runner import simulator_missing

pytestmark = pytest.mark.sim


@pytest.mark.skipif(simulator_missing("verilator") is not None, reason=str(simulator_missing("verilator")))
def test_default_network_bit_exact_and_cycle_exact():
    """The fully quantized default network: the frame pair in, every layer on the accelerator."""
    results = run_network()
    assert set(results["layers"]) == {"conv1", "conv2", "conv3", "conv3_1", "predict_flow3", "upsample_flow3",
                                      "deconv2", "cast_conv", "predict_flow2"}
    for seg in results["segments"]:
        assert seg["total_cycles"] == seg["model_total_cycles"]
    for layer in results["layers"].values():
        assert layer["cycles"] == layer["model_cycles"]
