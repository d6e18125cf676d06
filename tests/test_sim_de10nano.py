"""cocotb smoke test of the DE10-Nano top's Verilog (testbench: sim/tb_de10nano.py), in the
regression (``make regress``).

The top is generated exactly as ``make bitstream`` writes it into the Quartus project, for a
small accelerator (P = 8, S = 64: the FPGA-to-SDRAM port fixes the bus at 128 bits); the HPS
atoms' wrapper and the Intel primitives are replaced by the models in ``sim/hdl/``. Built and
run through :mod:`sim.launch` (the build is shared and rebuilt only when the Verilog changed).
"""

import tempfile
from pathlib import Path

import pytest

from hw.de10nano import PROJECT_NAME, DE10NanoTop, build_project
from models.hwconfig import HardwareConfig
from sim.launch import build, cached_verilog, regress_mark, run, simulator_params
from sim.runner import ROOT

pytestmark = [pytest.mark.sim, regress_mark()]

#: The small accelerator of the board tests.
BOARD_TEST_CONFIG = HardwareConfig.from_dict({
    "name": "board_p8_s64", "pe_count": 8, "simd_lanes": 64, "max_kernel": 3, "max_in_channels": 64,
    "pipeline": {"popcount_stages": 1}, "clock_mhz": 100,
    "engine": {"act_buffer_words": 256, "weight_buffer_words": 32, "max_burst": 16}})
MODELS = [ROOT / "sim" / "hdl" / "lmflow_hps_model.v", ROOT / "sim" / "hdl" / "altera_models.v"]


def _top_verilog(cfg):
    with tempfile.TemporaryDirectory() as project:
        build_project(project, DE10NanoTop(config=cfg))
        return (Path(project) / f"{PROJECT_NAME}.v").read_text(encoding="utf-8")


def run_board(sim):
    cfg = BOARD_TEST_CONFIG
    top = cached_verilog(PROJECT_NAME, ["de10nano", cfg.to_dict()], make_text=lambda: _top_verilog(cfg))
    # A smoke test of a few thousand cycles: the launcher's quick build (sim.launch.QUICK_OPT).
    # The testbench reaches into the HPS model (dut.hps): every signal stays visible.
    build_dir = build(f"de10nano-{cfg.name}", sim, toplevel=PROJECT_NAME, sources={f"{PROJECT_NAME}.v": top},
                      hdl=MODELS, public=True)
    return run(build_dir, sim, toplevel=PROJECT_NAME, module="sim.tb_de10nano", label=f"de10nano-{cfg.name}-{sim}",
               what=f"sim.tb_de10nano on {cfg.name}")


@pytest.mark.parametrize("simulator", simulator_params())
def test_sim(simulator):
    run_board(simulator)
