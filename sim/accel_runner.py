"""Build and run the accelerator testbenches (``sim/tb_accelerator.py``, ``sim/tb_network.py``).

One build directory per engine configuration and simulator under ``build/sim/``; the simulator
is rebuilt only when the generated Verilog (or the testbench HDL) changed.
"""

import hashlib
import json
import os
from pathlib import Path

from cocotb_tools.check_results import get_results
from cocotb_tools.runner import get_runner

from hw.accelerator import Accelerator
from hw.export import to_verilog, write_if_changed

from .runner import DEFAULT_SEED, ROOT, SIM_BUILD, VERILATOR_ARGS, SimulationFailed

__all__ = ["ENGINE_TEST_CONFIGS", "NETWORK_RESULTS", "network_build_name", "run_accelerator", "run_network"]

HDL = ROOT / "sim" / "hdl"

#: Small engine configurations for the layer tests: (name, engine parameters).
ENGINE_TEST_CONFIGS = {
    "eng_p8_s16": dict(pe_count=8, simd_lanes=16, acc_bound=3 * 9 * 128, act_buffer_words=1024,
                       weight_buffer_words=128, popcount_stages=1, max_burst=8),
    "eng_p8_s32": dict(pe_count=8, simd_lanes=32, acc_bound=3 * 9 * 256, act_buffer_words=1024,
                       weight_buffer_words=128, popcount_stages=2, max_burst=16),
    "eng_p16_s32": dict(pe_count=16, simd_lanes=32, acc_bound=3 * 9 * 256, act_buffer_words=512,
                        weight_buffer_words=128, popcount_stages=2, max_burst=32),
}


def run_accelerator(name, engine, sim, *, module="sim.tb_accelerator", mem_base=0x1000, mem_depth=8192,
                    extra_env=None, tests=None, seed=None, waves=False, design=None):
    """Build (if needed) and run a cocotb module on ``tb_accelerator`` for one engine configuration.

    Parameters
    ----------
    name : str
        Configuration name (build directory).
    engine : dict
        :class:`~hw.engine.ConvEngine` parameters.
    sim : str
        ``icarus`` or ``verilator``.
    design : amaranth.lib.wiring.Component, optional
        A design with the accelerator's ports to simulate instead (a test's deliberately broken
        variant); it gets its own build directory.

    Returns
    -------
    pathlib.Path
        The run's log file.

    Raises
    ------
    SimulationFailed
        With the first mismatch report of each failing test.
    """
    waves = waves or os.environ.get("WAVES", "0") not in ("", "0")
    if design is None:
        acc = Accelerator(**engine)
    else:
        acc = design
        name = f"{name}-variant"
    bus_bits = 2 * engine["simd_lanes"]
    burst_w = engine.get("max_burst", 64).bit_length()
    build_dir = SIM_BUILD / f"accelerator-{name}-{sim}{'-waves' if waves else ''}"
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / "accelerator.v"
    verilog = to_verilog(acc, "accelerator")
    write_if_changed(source, verilog)
    hdl = [HDL / "avalon_memory.v", HDL / "tb_accelerator.v"]
    parameters = {"DATA_W": bus_bits, "BURST_W": burst_w, "DEPTH": mem_depth}
    build_args = VERILATOR_ARGS if sim == "verilator" else []
    recipe = "\n".join([verilog] + [p.read_text() for p in hdl] + [sim, repr(build_args), repr(parameters),
                                                                   repr(waves)])
    digest = hashlib.sha256(recipe.encode()).hexdigest()
    stamp = build_dir / "build.stamp"
    binary = build_dir / ("sim.vvp" if sim == "icarus" else "tb_accelerator")
    runner = get_runner(sim)
    if not (binary.exists() and stamp.exists() and stamp.read_text() == digest):
        stamp.unlink(missing_ok=True)
        runner.build(sources=[source] + hdl, hdl_toplevel="tb_accelerator", build_dir=build_dir, always=True,
                     build_args=build_args, parameters=parameters, timescale=("1ns", "1ps"), waves=waves,
                     log_file=build_dir / "build.log")
        stamp.write_text(digest)
    # one set of exchange files per test module: modules sharing a build can run side by side
    tag = module.rsplit(".", 1)[-1]
    memfile, dumpfile = build_dir / f"memory-{tag}.hex", build_dir / f"memory_out-{tag}.hex"
    report_file = build_dir / f"mismatch-{tag}.txt"
    report_file.unlink(missing_ok=True)
    params = dict(engine, mem_base=mem_base, mem_depth=mem_depth, memfile=str(memfile), dumpfile=str(dumpfile))
    env = {"LMF_ACC_PARAMS": json.dumps(params), "LMF_SIM_REPORT": str(report_file),
           "PYTHONWARNINGS": "error::DeprecationWarning", **(extra_env or {})}
    log_file = build_dir / f"{module.rsplit('.', 1)[-1]}.log"
    seed = int(os.environ.get("SEED", DEFAULT_SEED)) if seed is None else seed
    failed = None
    try:
        results = runner.test(test_module=module, hdl_toplevel="tb_accelerator", hdl_toplevel_lang="verilog",
                              build_dir=build_dir, test_dir=build_dir, test_filter=tests, seed=seed,
                              extra_env=env, waves=waves, log_file=log_file,
                              timescale=("1ns", "1ps") if sim == "icarus" else None,
                              plusargs=[f"+MEMFILE={memfile}", f"+DUMPFILE={dumpfile}"])
    except (SystemExit, RuntimeError) as e:
        failed = e
    else:
        n, failures = get_results(results)
        if failures or not n:
            failed = f"{failures} of {n} tests failed"
    if failed is not None:
        try:
            text = report_file.read_text().strip()
        except OSError:
            text = ""
        if not text:
            try:
                text = "end of the log:\n" + "\n".join(log_file.read_text(errors="replace").splitlines()[-40:])
            except OSError:
                text = "(no log)"
        raise SimulationFailed(f"cocotb run of {module} on {name} with {sim} failed (seed {seed}; log {log_file}):\n"
                               f"{text}") from None
    return log_file


def network_build_name(cfg):
    """Build-directory name of a hardware configuration's whole accelerator (shared by the
    network test, the benchmark and the rtl backend)."""
    from models.hwconfig import load_hw_config
    return "network" if cfg == load_hw_config() else f"network-{cfg.name}"


#: Where the full-network run leaves its per-layer cycle counts.
NETWORK_RESULTS = SIM_BUILD / "network.json"


def run_network(hw_config=None, *, results=NETWORK_RESULTS, stall_pct=0, latency=8, sim="verilator"):
    """Run the default network's accelerator segment (``sim/tb_network.py``) on the accelerator of a
    hardware configuration; returns the results (cycles per layer and segment, wall time)."""
    from models.board import ARENA_BASE
    from models.hwconfig import check_target, load_hw_config
    cfg = check_target(load_hw_config(hw_config), "accelerator")
    results = Path(results)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.unlink(missing_ok=True)
    run_accelerator(network_build_name(cfg),
                    cfg.accelerator_kwargs(), sim, module="sim.tb_network", mem_base=ARENA_BASE,
                    mem_depth=65536, extra_env={"LMF_NET_RESULTS": str(results), "LMF_NET_STALL": str(stall_pct),
                                                "LMF_NET_LATENCY": str(latency)})
    return json.loads(results.read_text())
