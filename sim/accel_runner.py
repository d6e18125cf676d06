"""Build and run the accelerator testbenches (``sim/tb_accelerator.py``, ``sim/tb_network.py``,
``sim/tb_rtl_server.py``) on ``sim/hdl/tb_accelerator.v``, through :mod:`sim.launch`.

One simulator per hardware configuration, simulator and memory size: the layer tests use a
small memory (:data:`LAYER_MEMORY_WORDS`, so that their many whole-memory images move
quickly), the whole-network run, the benchmark and the rtl backend share one of
:data:`MEMORY_BYTES` (``mem_words=None``); a simulator is rebuilt only when the accelerator's Verilog or the
testbench HDL changed. Verilator builds expose only the testbench top's ports to VPI (the testbenches touch
nothing else), which lets Verilator optimize the model.
"""

import json
from pathlib import Path

from models.hwconfig import check_target, load_hw_config

from .launch import ROOT, SIM_BUILD, build, cached_verilog, run

__all__ = ["ENGINE_TEST_CONFIGS", "REGRESS_ENGINE_CONFIGS", "MEMORY_BYTES", "network_memory_words", "LAYER_MEMORY_WORDS", "NETWORK_RESULTS",
           "accelerator_build", "run_accelerator", "run_network"]

HDL = ROOT / "sim" / "hdl"
TB_HDL = (HDL / "avalon_memory.v", HDL / "tb_accelerator.v")

#: Small engine configurations of the layer tests (``models/configs/hw/eng_*.yaml``).
ENGINE_TEST_CONFIGS = ("eng_p8_s16", "eng_p8_s32", "eng_p16_s32")
#: Configurations the regression adds to the layer tests.
REGRESS_ENGINE_CONFIGS = ("default",)
#: Bytes of the memory model of the network runs (the network, the rtl backend, the layer tests
#: that share their simulator), whatever the bus width: the program and a 96x128 frame's tensors
#: (591,040 bytes of constants at S = 32).
MEMORY_BYTES = 1 << 20
#: Words of the memory model of the layer tests (every case loads and dumps the whole memory).
LAYER_MEMORY_WORDS = 8192


def network_memory_words(params):
    """Bus words of the network runs' memory model (:data:`MEMORY_BYTES`) for an
    :class:`~models.engine.EngineParams`."""
    return MEMORY_BYTES // params.bus_bytes


def accelerator_build(config, sim, *, design=None, tag="", mem_words=None):
    """Build (or find) ``tb_accelerator`` for one configuration, simulator and memory size
    (``mem_words`` bus words; ``None``: the network runs' memory, the build that runs whole
    frames); returns ``(build directory, configuration)``.

    ``design`` (with its own ``tag``) replaces the configuration's accelerator: a test's
    deliberately broken variant with the same ports.

    Raises
    ------
    models.errors.ConfigError
        In one line, before anything is built, if the configuration cannot serve the
        accelerator target.
    """
    from hw.build import build_accelerator
    from hw.export import to_verilog

    cfg = check_target(load_hw_config(config), "accelerator")
    if design is None:
        verilog = cached_verilog("accelerator", ["accelerator", cfg.accelerator_kwargs()],
                                 lambda: build_accelerator(cfg))
    else:
        if not tag:
            raise ValueError("a design other than the configuration's accelerator needs a tag")
        verilog = to_verilog(design, "accelerator")
    p = cfg.engine_params
    network = mem_words is None
    parameters = {"DATA_W": p.bus_bits, "BURST_W": p.max_burst.bit_length(),
                  "DEPTH": network_memory_words(p) if network else mem_words}
    name = "-".join(["accelerator", cfg.name] + ([tag] if tag else []) + ([] if network else [f"m{mem_words}"]))
    # The network's memory size: the build that runs whole frames (the network, the rtl backend)
    # gets optimized C++.
    build_dir = build(name, sim, toplevel="tb_accelerator", sources={"accelerator.v": verilog}, hdl=TB_HDL,
                      parameters=parameters, public=False, long_runs=network)
    return build_dir, cfg


def run_accelerator(config, sim, *, module="sim.tb_accelerator", mem_base=0x1000, extra_env=None, tests=None,
                    seed=None, design=None, tag="", label=None, files=None, mem_words=LAYER_MEMORY_WORDS):
    """Build (if needed) and run a cocotb module on ``tb_accelerator`` for one configuration.

    Parameters
    ----------
    config : str or models.hwconfig.HardwareConfig
        Hardware configuration (name, YAML path or configuration).
    sim : str
        ``icarus`` or ``verilator``.
    module : str
        The cocotb module (default the layer tests).
    mem_base : int
        Device address of the memory model's first byte.
    mem_words : int or None
        Bus words of the memory model (default the layer tests' :data:`LAYER_MEMORY_WORDS`;
        ``None``: the network runs' memory, :data:`MEMORY_BYTES`).
    design : amaranth.lib.wiring.Component, optional
        A design with the accelerator's ports to simulate instead (with its own ``tag``).
    label : str, optional
        Run directory name (default from the module, configuration and simulator).
    files : callable, optional
        As :func:`sim.launch.run`.

    Returns
    -------
    pathlib.Path or tuple
        The run's log file (see :func:`sim.launch.run`).

    Raises
    ------
    SimulationFailed
        With the first mismatch report of each failing test.
    """
    build_dir, cfg = accelerator_build(config, sim, design=design, tag=tag, mem_words=mem_words)
    short = module.rsplit(".", 1)[-1]
    label = label or "-".join([short, cfg.name, sim] + ([tag] if tag else []) + ([tests] if tests else []))
    depth = network_memory_words(cfg.engine_params) if mem_words is None else mem_words
    params = dict(cfg.accelerator_kwargs(), mem_base=mem_base, mem_depth=depth)

    def env(run_dir):
        return {"LMF_ACC_PARAMS": json.dumps(dict(params, memfile=str(run_dir / "memory.hex"),
                                                  dumpfile=str(run_dir / "memory_out.hex"))),
                **(extra_env or {})}

    def plusargs(run_dir):
        return [f"+MEMFILE={run_dir / 'memory.hex'}", f"+DUMPFILE={run_dir / 'memory_out.hex'}"]

    return run(build_dir, sim, toplevel="tb_accelerator", module=module, label=label, tests=tests, seed=seed,
               env=env, plusargs=plusargs, files=files, what=f"{module} on {cfg.name}")


#: Where the full-network run of the default configuration leaves its per-layer cycle counts.
NETWORK_RESULTS = SIM_BUILD / "network.json"


def run_network(hw_config=None, *, results=None, stall_pct=0, latency=8, sim="verilator", net_config=None):
    """Run a network's accelerator segment (``sim/tb_network.py``, default network) on the
    accelerator of a hardware configuration; returns the results (cycles per layer and
    segment, wall time) and writes them to ``results`` (default ``build/sim/network.json`` for
    the default configuration, ``build/sim/network-<config>.json`` for another, with
    ``-stall<pct>`` under wait states)."""
    from models.board import ARENA_BASE
    cfg = check_target(load_hw_config(hw_config), "accelerator")
    if results is None:
        stem = "network" + ("" if cfg == load_hw_config() else f"-{cfg.name}") + (f"-stall{stall_pct}" if stall_pct else "")
        results = SIM_BUILD / f"{stem}.json"
    results = Path(results)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.unlink(missing_ok=True)

    env = {"LMF_NET_RESULTS": str(results), "LMF_NET_STALL": str(stall_pct), "LMF_NET_LATENCY": str(latency)}
    if net_config is not None:
        env["LMF_NET_CONFIG"] = str(net_config)
    run_accelerator(cfg, sim, module="sim.tb_network", mem_base=ARENA_BASE, extra_env=env, mem_words=None,
                    label=f"network-{cfg.name}-{sim}" + (f"-stall{stall_pct}" if stall_pct else ""))
    return json.loads(results.read_text())
