"""The whole accelerator segment of the default LMFlowNet on Verilator (sim/tb_network.py): every
FPGA layer in sequence from the registers, data through the memory model, each tensor compared
with the golden quantized pass, the cycle counters with the cycle model."""

import json

import pytest

from hw.build import accelerator_kwargs
from sim.accel_runner import run_accelerator
from sim.runner import SIM_BUILD, simulator_missing

pytestmark = pytest.mark.sim

#: Where the network test leaves its per-layer cycle counts (read by ``make bench``).
RESULTS = SIM_BUILD / "network.json"


def run_network(results=RESULTS, stall_pct=0):
    """Run the default network on Verilator; returns the results dict (cycles per layer)."""
    results.parent.mkdir(parents=True, exist_ok=True)
    results.unlink(missing_ok=True)
    run_accelerator("default", accelerator_kwargs(), "verilator", module="sim.tb_network",
                    mem_base=0x20000000, mem_depth=65536,
                    extra_env={"LMF_NET_RESULTS": str(results), "LMF_NET_STALL": str(stall_pct)})
    return json.loads(results.read_text())


@pytest.mark.skipif(simulator_missing("verilator") is not None, reason=str(simulator_missing("verilator")))
def test_default_network_bit_exact_and_cycle_exact():
    results = run_network()
    assert set(results["layers"]) == {"conv2", "conv3", "conv3_1", "predict_flow3", "deconv2", "cast_conv"}
    for seg in results["segments"]:
        assert seg["total_cycles"] == seg["model_total_cycles"]
