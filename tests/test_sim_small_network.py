"""The whole LMFlowNet on a small engine and on every simulator (sim/tb_network.py): every layer
of lmflownet_tiny_s32 (the tiny topology at 32 channels a layer, 8x16 pixels, fully quantized:
the frame pair in, predict_flow2's planes out) on eng_p8_s32, from the registers, data through
the memory model, each tensor compared with the golden quantized pass element by element, the
cycle counters with the cycle model.

Icarus runs it in every suite that selects Icarus (the default network's 305,813 cycles on the
64 x 64 default are Verilator's: tests/test_sim_network.py); Verilator, which runs the default
network there, runs this one in the regression."""

import pytest

from models.network import CONFIG_DIR
from sim.accel_runner import run_network
from sim.launch import SIM_BUILD, regress_mark, simulator_params

pytestmark = pytest.mark.sim

NETWORK = f"{CONFIG_DIR}/lmflownet_tiny_s32.yaml"
CONFIG = "eng_p8_s32"
LAYERS = {"conv1", "conv2", "conv3", "conv3_1", "predict_flow3", "upsample_flow3", "deconv2", "cast_conv",
          "predict_flow2"}


def _params():
    out = []
    for p in simulator_params():
        marks = list(p.marks) + ([regress_mark()] if p.values[0] == "verilator" else [])
        out.append(pytest.param(p.values[0], marks=marks, id=p.id))
    return out


@pytest.mark.parametrize("simulator", _params())
def test_small_network_bit_exact_and_cycle_exact(simulator):
    results = run_network(CONFIG, sim=simulator, net_config=NETWORK,
                          results=SIM_BUILD / f"network-lmflownet_tiny_s32-{CONFIG}-{simulator}.json")
    assert set(results["layers"]) == LAYERS
    seg, = results["segments"]
    assert seg["total_cycles"] == seg["model_total_cycles"]
    for layer in results["layers"].values():
        assert layer["cycles"] == layer["model_cycles"]
