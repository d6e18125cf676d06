"""cocotb smoke test of the DE10-Nano top's Verilog (testbench: sim/tb_de10nano.py).

The top is generated exactly as ``make bitstream`` writes it into the Quartus project, for a
small accelerator (P = 8, S = 64: the FPGA-to-SDRAM port fixes the bus at 128 bits); the HPS
atoms' wrapper and the Intel primitives are replaced by the models in ``sim/hdl/``. One build
directory per simulator under ``build/sim/``; the simulator is rebuilt only when the Verilog
changed.
"""

import hashlib
import os

import pytest
from cocotb_tools.check_results import get_results
from cocotb_tools.runner import get_runner

from hw.de10nano import PROJECT_NAME, DE10NanoTop, build_project
from models.hwconfig import HardwareConfig
from sim.launch import simulator_params
from sim.runner import DEFAULT_SEED, ROOT, SIM_BUILD, VERILATOR_ARGS, SimulationFailed

pytestmark = pytest.mark.sim

#: The small accelerator of the board tests.
BOARD_TEST_CONFIG = HardwareConfig.from_dict({
    "name": "board_p8_s64", "pe_count": 8, "simd_lanes": 64, "max_kernel": 3, "max_in_channels": 64,
    "pipeline": {"popcount_stages": 1}, "clock_mhz": 100,
    "engine": {"act_buffer_words": 256, "weight_buffer_words": 32, "max_burst": 16}})
MODELS = [ROOT / "sim" / "hdl" / "lmflow_hps_model.v", ROOT / "sim" / "hdl" / "altera_models.v"]


def run_board(sim):
    build_dir = SIM_BUILD / f"de10nano-board_p8_s64-{sim}"
    project = build_dir / "project"
    build_project(str(project), DE10NanoTop(config=BOARD_TEST_CONFIG))
    top = project / f"{PROJECT_NAME}.v"
    # A smoke test runs a few thousand cycles: an unoptimized C++ build compiles much faster.
    build_args = VERILATOR_ARGS + ["-CFLAGS", "-O0"] if sim == "verilator" else []
    recipe = "\n".join([top.read_text()] + [p.read_text() for p in MODELS] + [sim, repr(build_args)])
    digest = hashlib.sha256(recipe.encode()).hexdigest()
    stamp = build_dir / "build.stamp"
    binary = build_dir / ("sim.vvp" if sim == "icarus" else PROJECT_NAME)
    runner = get_runner(sim)
    if not (binary.exists() and stamp.exists() and stamp.read_text() == digest):
        stamp.unlink(missing_ok=True)
        runner.build(sources=[top, *MODELS], hdl_toplevel=PROJECT_NAME, build_dir=build_dir, always=True,
                     build_args=build_args, timescale=("1ns", "1ps"), log_file=build_dir / "build.log")
        stamp.write_text(digest)
    report_file = build_dir / "mismatch.txt"
    report_file.unlink(missing_ok=True)
    log_file = build_dir / "tb_de10nano.log"
    env = {"LMF_SIM_REPORT": str(report_file), "PYTHONWARNINGS": "error::DeprecationWarning"}
    seed = int(os.environ.get("SEED", DEFAULT_SEED))
    failed = None
    try:
        results = runner.test(test_module="sim.tb_de10nano", hdl_toplevel=PROJECT_NAME, hdl_toplevel_lang="verilog",
                              build_dir=build_dir, test_dir=build_dir, seed=seed, extra_env=env,
                              timescale=("1ns", "1ps") if sim == "icarus" else None, log_file=log_file)
    except (SystemExit, RuntimeError) as e:
        failed = e
    else:
        n, failures = get_results(results)
        if failures or not n:
            failed = f"{failures} of {n} tests failed"
    if failed is not None:
        text = report_file.read_text().strip() if report_file.exists() else ""
        if not text:
            text = "end of the log:\n" + "\n".join(log_file.read_text(errors="replace").splitlines()[-40:])
        raise SimulationFailed(f"cocotb run of sim.tb_de10nano with {sim} failed (seed {seed}; log {log_file}):\n"
                               f"{text}")


@pytest.mark.parametrize("simulator", simulator_params())
def test_sim(simulator):
    run_board(simulator)
