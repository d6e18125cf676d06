"""Build and run the component testbenches (``sim/tb_<component>.py``) through :mod:`sim.launch`.

A component's Verilog comes from :func:`sim.launch.cached_verilog` (generated once per
configuration and source hash); its simulator is built once per Verilog text
(``build/sim/<component>-<config>-<simulator>-<digest>/``) and shared by every run; each run
has its own directory (``build/sim/runs/``).

If ``iverilog`` is missing, the Icarus cases are skipped with the reason shown
(:data:`ICARUS_MISSING`), never silently.
"""

import sys

from models.hwconfig import load_hw_config

from .launch import (DEFAULT_SEED, ICARUS_MISSING, ROOT, SIM_BUILD, SIMULATORS, VERILATOR_ARGS, SimulationFailed,
                     build, cached_verilog, run, selected_simulators, simulator_missing)

__all__ = ["ROOT", "SIM_BUILD", "SIMULATORS", "TEST_CONFIGS", "REGRESS_CONFIGS", "ICARUS_MISSING",
           "DEFAULT_SEED", "VERILATOR_ARGS", "SimulationFailed", "selected_simulators", "simulator_missing",
           "component_build", "run_component"]

#: Small array configurations every component is simulated on (one of them non-square, P < S).
TEST_CONFIGS = ("test_p4_s8", "test_p3_s16", "test_p8_s32")
#: Configurations the regression adds (the full-size arrays).
REGRESS_CONFIGS = ("default", "p32_s32")


def component_build(component, config, sim, *, design=None, tag=""):
    """Build (or find) the simulator of one component on one configuration; returns
    ``(build directory, configuration)``.

    ``design`` replaces the configuration's component (same ports; a test's deliberately
    broken variant), with its own ``tag``.
    """
    from hw.export import build_component, to_verilog

    if design is not None and not tag:
        raise ValueError("a design other than the configuration's component needs a tag")
    cfg = load_hw_config(config)
    if design is None:
        verilog = cached_verilog(component, ["component", component, cfg.to_dict()],
                                 lambda: build_component(component, cfg))
    else:
        verilog = to_verilog(design, component)
    name = "-".join([component, cfg.name] + ([tag] if tag else []))
    return build(name, sim, toplevel=component, sources={f"{component}.v": verilog}), cfg


def run_component(component, config, sim, *, design=None, tag="", tests=None, extra_env=None, seed=None):
    """Build (if needed) and run ``sim/tb_<component>.py`` on one configuration and simulator.

    Parameters
    ----------
    component : str
        A name of :data:`hw.export.COMPONENTS`.
    config : str or models.hwconfig.HardwareConfig
        Hardware configuration: a name in ``models/configs/hw/``, a YAML path, or a
        configuration.
    sim : str
        ``icarus`` or ``verilator``.
    design : amaranth.lib.wiring.Component, optional
        The design to simulate instead of the configuration's component (same ports): a test
        passes a deliberately broken variant here, with its own ``tag``.
    tag : str
        Suffix of the build and run names (required with ``design``).
    tests : str, optional
        Regular expression: run only the cocotb tests whose names it matches.
    extra_env : dict, optional
        More environment for the simulation process.
    seed : int, optional
        cocotb random seed (default ``$SEED`` or a fixed seed).

    Returns
    -------
    pathlib.Path
        The run's log file.

    Raises
    ------
    SimulationFailed
        If a test failed, with the first mismatch report of each failing test.
    """
    build_dir, cfg = component_build(component, config, sim, design=design, tag=tag)
    label = "-".join([component, cfg.name, sim] + ([tag] if tag else []) + ([tests] if tests else []))
    env = {"LMF_SIM_CONFIG": cfg.source, "LMF_SIM_COMPONENT": component, **(extra_env or {})}
    return run(build_dir, sim, toplevel=component, module=f"sim.tb_{component}", label=label, tests=tests,
               seed=seed, env=env, what=f"{component} on {cfg.name}")


def _main(argv=None):
    """``python -m sim.runner COMPONENT [CONFIG] [SIM]``: one run outside pytest."""
    argv = sys.argv[1:] if argv is None else argv
    component = argv[0]
    config = argv[1] if len(argv) > 1 else TEST_CONFIGS[0]
    sims = [argv[2]] if len(argv) > 2 else selected_simulators()
    for sim in sims:
        print(run_component(component, config, sim))


if __name__ == "__main__":
    _main()
