"""The co-simulation launcher's own logic (fast: no simulator runs)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim import launch, runner
from sim.launch import config_params, simulator_params

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ids(params):
    return [p.values[0] for p in params]


def test_both_simulators_by_default(monkeypatch):
    monkeypatch.delenv("SIM", raising=False)
    assert runner.selected_simulators() == ["icarus", "verilator"]
    monkeypatch.setenv("SIM", "all")
    assert runner.selected_simulators() == ["icarus", "verilator"]


@pytest.mark.parametrize("sim", ["icarus", "verilator", "Verilator "])
def test_sim_picks_one(monkeypatch, sim):
    monkeypatch.setenv("SIM", sim)
    assert runner.selected_simulators() == [sim.strip().lower()]
    assert _ids(simulator_params()) == [sim.strip().lower()]


def test_sim_wrong(monkeypatch):
    monkeypatch.setenv("SIM", "questa")
    with pytest.raises(ValueError, match=r"^SIM must be one of icarus, verilator or empty, not 'questa'$"):
        runner.selected_simulators()


def test_icarus_skipped_with_reason_only_when_missing(monkeypatch):
    monkeypatch.delenv("SIM", raising=False)
    real_which = launch.shutil.which
    monkeypatch.setattr(launch.shutil, "which",
                        lambda name: None if name == "iverilog" else real_which(name))
    icarus, verilator = simulator_params()
    reason, = [m.kwargs["reason"] for m in icarus.marks]
    assert reason == runner.ICARUS_MISSING and "apt-get install -y iverilog" in reason
    assert not verilator.marks
    monkeypatch.setattr(launch.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert all(not p.marks for p in simulator_params())


def test_configs_quick_regress_and_override(monkeypatch):
    monkeypatch.delenv("HW_CONFIG", raising=False)
    params = config_params(runner.TEST_CONFIGS, runner.REGRESS_CONFIGS)
    assert _ids(params) == list(runner.TEST_CONFIGS + runner.REGRESS_CONFIGS)
    regress = [p.values[0] for p in params if any(m.name == "regress" for m in p.marks)]
    assert regress == list(runner.REGRESS_CONFIGS)
    monkeypatch.setenv("HW_CONFIG", "models/configs/hw/p32_s32.yaml")
    (param,) = config_params(runner.TEST_CONFIGS, runner.REGRESS_CONFIGS)
    assert param.values == ("models/configs/hw/p32_s32.yaml",) and param.id == "p32_s32"
    assert not param.marks


def test_regression_cases_are_skipped_with_their_reason_outside_the_regression():
    env = {k: v for k, v in os.environ.items() if k not in ("LMF_REGRESS", "HW_CONFIG")}
    env["SIM"] = "verilator"
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "regress",
                          "-rs", "tests/test_sim_pe_array.py"], cwd=launch.ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    # the two full-size configurations and the broken array, each skipped, none built
    assert "3 skipped" in out.stdout and launch.REGRESS_ONLY_REASON in out.stdout, out.stdout
    assert "passed" not in out.stdout and "deselected" in out.stdout, out.stdout

def test_other_designs_need_a_tag():
    with pytest.raises(ValueError, match=r"needs a tag"):
        runner.run_component("pe", "test_p4_s8", "icarus", design=object())


def _tree(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_source_hash_covers_what_the_gateware_imports(tmp_path, monkeypatch):
    from hw import export
    digest = launch.source_hash()
    assert digest == launch.source_hash() and len(digest) == 64
    _tree(tmp_path, {
        "hw/__init__.py": "",
        "hw/a.py": "from models.b import x\nfrom models import c_name\nfrom .sub import s\n",
        "hw/sub/__init__.py": "from ..a import x\n",
        "hw/sub/s.py": "def f():\n    from models import g\n",
        "hw/bench.py": "import models.d\n",                      # a driver: not followed
        "models/__init__.py": "from .c import c_name\nfrom .e import e_name\n",
        "models/b.py": "x = 1\n", "models/c.py": "from .f import y\nc_name = 1\n",
        "models/d.py": "", "models/e.py": "e_name = 1\n", "models/f.py": "y = 1\n", "models/g.py": "",
    })
    monkeypatch.setattr(export, "_ROOT", str(tmp_path))
    monkeypatch.setattr(export, "_SOURCE_HASH", None)
    got = {str(Path(p).relative_to(tmp_path)) for p in export.gateware_sources()}
    assert got == {"hw/__init__.py", "hw/a.py", "hw/sub/__init__.py", "hw/sub/s.py", "models/__init__.py",
                   "models/b.py", "models/c.py", "models/f.py", "models/g.py"}
    first = launch.source_hash()

    def rehash(rel, text):
        (tmp_path / rel).write_text(text)
        monkeypatch.setattr(export, "_SOURCE_HASH", None)
        return launch.source_hash()

    assert rehash("models/e.py", "e_name = 2\n") == first        # re-exported, not imported by hw
    assert rehash("hw/bench.py", "import models.d\nz = 1\n") == first
    assert rehash("models/f.py", "y = 2\n") != first             # imported through models/c.py
    second = launch.source_hash()
    assert rehash("hw/sub/s.py", "def f():\n    from models import g  # edited\n") != second


def test_the_golden_model_is_not_a_gateware_source():
    from hw.export import gateware_sources
    rels = {os.path.relpath(p, ROOT).replace(os.sep, "/") for p in gateware_sources()}
    assert {"hw/pe.py", "hw/engine/engine.py", "models/engine.py", "models/regmap.py", "models/formats.py"} <= rels
    assert not rels & {"models/golden.py", "models/generate.py", "hw/bench.py", "sw/runtime.py"}


def test_cached_verilog_generates_once(tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "SIM_BUILD", tmp_path)
    calls = []

    def make():
        calls.append(1)
        return "module m; endmodule\n"

    assert launch.cached_verilog("m", ["x", 1], make_text=make) == "module m; endmodule\n"
    assert launch.cached_verilog("m", ["x", 1], make_text=make) == "module m; endmodule\n"
    assert len(calls) == 1
    launch.cached_verilog("m", ["x", 2], make_text=make)
    assert len(calls) == 2 and len(list((tmp_path / "verilog").iterdir())) == 2


def test_run_dirs_are_exclusive(tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "SIM_BUILD", tmp_path)
    with launch._run_dir("a b/c") as first:
        with launch._run_dir("a b/c") as second:
            assert first.name == "a_b_c" and second.name == "a_b_c.2"
    with launch._run_dir("a b/c") as again:
        assert again == first


def test_build_lock_serializes_processes(tmp_path):
    """Two processes building the same model: the second waits for the first's lock, then
    finds the finished build and does not build it again."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from sim import launch\n"
        "launch.SIM_BUILD = Path(sys.argv[1])\n"
        "class R:\n"
        "    def build(self, *, build_dir, log_file, **kw):\n"
        "        time.sleep(1.0); (Path(build_dir) / 'model').write_text('x')\n"
        "launch._runner = lambda sim, public, opt_fast=None: R()\n"
        "launch._tool_version = lambda sim: 'v'\n"
        "d = launch.build('c', 'verilator', toplevel='c', sources={'c.v': 'module c; endmodule'})\n"
        "print(d.name)\n")
    env = dict(os.environ, PYTHONPATH=str(launch.ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    names = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(names) == 1 and all(p.returncode == 0 for p in procs)
    rows = [json.loads(line) for line in (tmp_path / "timings.jsonl").read_text().splitlines()]
    assert sorted(r["built"] for r in rows) == [False, True]
    assert next(r for r in rows if not r["built"])["seconds"] >= 0.5     # it waited for the first


def test_check_refuses_in_one_line(tmp_path, capsys):
    assert launch.main(["check", "test_p4_s8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "cannot be built for the accelerator target: pe_count" in err
    assert launch.main(["check", "eng_p8_s16"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "does not fit hardware configuration eng_p8_s16" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text((launch.ROOT / "models/configs/hw/default.yaml").read_text().replace("simd_lanes: 64",
                                                                                       "simd_lanes: 12"))
    assert launch.main(["check", str(bad)]) == 2
    assert "simd_lanes: must be a multiple of 8" in capsys.readouterr().err
    assert launch.main(["check"]) == 0
    assert "de10nano_p64_s64" in capsys.readouterr().out
