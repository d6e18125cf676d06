"""The host in the board's userland: Debian 12 armhf under qemu user-mode emulation.

A Debian 12 (bookworm) armhf userland with only ``python3``, ``python3-numpy`` (1.24.2),
``python3-yaml`` (6.0) and ``python3-pil`` (9.4.0) -- what the DE10-Nano's Debian gives -- is
built once with ``mmdebstrap --variant=extract`` into ``build/armhf/bookworm`` (kept; delete it
to rebuild) and runs ``tests/board_userland.py`` with the project's source on ``PYTHONPATH``
through ``qemu-arm-static -L`` (binfmt_misc is not needed). The same script runs on this machine,
and the two records are compared:

* bit-identical: the network input after Pillow's resize, every code tensor and raw accumulator
  the host and the accelerator model produce, the float input scaling, the transport's traffic
  counters, and on each side the three flows with each other (``lmflow flow`` on the golden
  backend, the de10nano backend over a cached u-dma-buf and over ``/dev/mem``);
* within a tolerance, only the float arithmetic that goes through BLAS: the float64 convolutions
  of the host's layers (conv1, upsample_flow3, predict_flow2) are ``im2col @ weights`` matrix
  products, which numpy hands to OpenBLAS here and to Debian's reference BLAS on armhf; they sum
  in different orders, so the float64 results differ in their last bits (measured: at most
  1.2e-15 absolute). The 2-bit quantizer absorbs that unless a value lies within 1e-15 of a
  threshold (then a code, and everything after it, would differ: the test would say so), and
  rounding predict_flow2 to float32 absorbs it unless a value lies that close to a float32
  rounding boundary (then one float32 ulp, scaled into the flow). So the pre-activations are
  compared to 1e-12 of each tensor's magnitude, predict_flow2 to 1 float32 ulp and the flows
  (scaled and resized from it) to 4 float32 epsilons of the flow's magnitude. On the inputs here
  every code, accumulator, predict_flow2 value and flow is identical; only the float64
  pre-activations differ (the test prints by how much).
"""

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from models import random_frame_pairs
from models.flow import read_flo

pytestmark = pytest.mark.armhf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "armhf")
ROOTFS = os.path.join(BUILD, "bookworm")
SCRIPT = os.path.join(ROOT, "tests", "board_userland.py")
PACKAGES = "python3,python3-numpy,python3-yaml,python3-pil,libpython3.11-stdlib,python3.11-minimal"
MMDEBSTRAP = ["mmdebstrap", "--arch=armhf", "--variant=extract", f"--include={PACKAGES}", "bookworm"]
#: Written into the userland when it is complete; a different recipe rebuilds it.
MARKER = os.path.join(ROOTFS, ".lmflow-userland")
#: What the board's Debian 12 has.
BOARD = {"machine": "armv7l", "numpy": "1.24.2", "yaml": "6.0", "pillow": "9.4.0"}
INSTALL_HINT = "apt-get install -y qemu-user-static mmdebstrap (.ci/run does)"


def _recipe():
    return " ".join(MMDEBSTRAP) + " DIR; usr/lib/arm-linux-gnueabihf/{libblas,liblapack}.so.3 links\n"


def _build_userland():
    """Build (once) the armhf userland; returns its build time in seconds, 0 when cached."""
    os.makedirs(BUILD, exist_ok=True)
    with open(os.path.join(BUILD, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(MARKER):
            with open(MARKER) as f:
                if f.read() == _recipe():
                    return 0.0
        if shutil.which("mmdebstrap") is None:
            pytest.skip(f"mmdebstrap not found, cannot build the armhf userland: {INSTALL_HINT}")
        tmp = ROOTFS + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        t0 = time.perf_counter()
        proc = subprocess.run(MMDEBSTRAP + [tmp], capture_output=True, text=True)
        if proc.returncode:
            shutil.rmtree(tmp, ignore_errors=True)
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"mmdebstrap could not build the armhf userland (exit {proc.returncode}): {last}")
        # --variant=extract runs no maintainer scripts: the alternatives numpy's BLAS/LAPACK
        # libraries are found through are missing.
        lib = os.path.join(tmp, "usr", "lib", "arm-linux-gnueabihf")
        for name, sub in (("libblas.so.3", "blas"), ("liblapack.so.3", "lapack")):
            if not os.path.lexists(os.path.join(lib, name)):
                os.symlink(f"{sub}/{name}", os.path.join(lib, name))
        with open(os.path.join(tmp, ".lmflow-userland"), "w") as f:
            f.write(_recipe())
        shutil.rmtree(ROOTFS, ignore_errors=True)
        os.replace(tmp, ROOTFS)
        return time.perf_counter() - t0


@pytest.fixture(scope="module")
def userland():
    if not sys.platform.startswith("linux"):
        pytest.skip("the armhf userland needs Linux (qemu user-mode emulation)")
    qemu = shutil.which("qemu-arm-static")
    if qemu is None:
        pytest.skip(f"qemu-arm-static not found, cannot run the armhf userland: {INSTALL_HINT}")
    built_s = _build_userland()
    return qemu, built_s


def _env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE", "PYTHONSTARTUP")}
    env.update(PYTHONNOUSERSITE="1", PYTHONHASHSEED="0", LC_ALL="C.UTF-8", **extra)
    return env


@pytest.fixture(scope="module")
def runs(userland, tmp_path_factory):
    """``board_userland.py`` in the armhf userland and here; their output directories."""
    qemu, built_s = userland
    tmp = tmp_path_factory.mktemp("armhf")
    frames, _ = random_frame_pairs(1, 120, 160, seed=2)      # not the network size: the resize runs too
    img1, img2 = str(tmp / "a.png"), str(tmp / "b.png")
    Image.fromarray(frames[0, ..., :3]).save(img1)
    Image.fromarray(frames[0, ..., 3:]).save(img2)
    out = {}
    for side in ("armhf", "here"):
        out[side] = tmp / side
        out[side].mkdir()
        if side == "armhf":
            # compiled modules of the userland and of the source go to a cache of their own
            cmd = [qemu, "-L", ROOTFS, os.path.join(ROOTFS, "usr", "bin", "python3"), "-s", SCRIPT]
            env = _env(PYTHONPYCACHEPREFIX=os.path.join(BUILD, "pycache"))
        else:
            cmd = [sys.executable, SCRIPT]
            env = _env(PYTHONDONTWRITEBYTECODE="1")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd + [str(out[side]), img1, img2], capture_output=True, text=True, env=env,
                              cwd=str(tmp), timeout=1800)
        assert proc.returncode == 0, f"{side}: {' '.join(map(str, cmd))} failed:\n{proc.stdout}\n{proc.stderr}"
        print(f"{side}: board_userland.py {time.perf_counter() - t0:.1f} s")
    if built_s:
        print(f"armhf userland built in {built_s:.1f} s")
    return out


def _info(path):
    with open(path / "info.json") as f:
        return json.load(f)


def test_it_is_the_boards_userland(runs):
    info = _info(runs["armhf"])
    assert {k: info[k] for k in BOARD} == BOARD
    assert info["python"].startswith("3.11.")
    print("armhf times:", {k: round(v, 1) for k, v in info["times"].items()})


def test_the_three_flows_agree_on_each_side(runs):
    for side, path in runs.items():
        flows = {name: read_flo(path / f"{name}.flo") for name in ("golden", "de10nano-cached", "de10nano-devmem")}
        assert flows["golden"].shape == (120, 160, 2)
        for name, flow in flows.items():
            assert np.array_equal(flow, flows["golden"]), f"{side}: {name} differs from golden"


def test_integer_results_are_bit_identical(runs):
    arm, here = (np.load(runs[s] / "arrays.npz") for s in ("armhf", "here"))
    assert sorted(arm.files) == sorted(here.files)
    assert np.array_equal(arm["frames"], here["frames"]), "Pillow's resize differs"
    assert np.array_equal(arm["t_input"], here["t_input"])            # uint8 / 255: correctly rounded
    checked = []
    for key in arm.files:
        if key.startswith("t_") and arm[key].dtype.kind in "iu":
            assert arm[key].dtype == here[key].dtype
            assert np.array_equal(arm[key], here[key]), f"{key[2:]} differs between armhf and here"
            checked.append(key[2:])
    assert {"conv1", "conv2", "predict_flow3", "upsample_flow3", "cast_conv"} <= set(checked)
    assert _info(runs["armhf"])["traffic"] == _info(runs["here"])["traffic"]


def test_float_results_agree_to_rounding(runs):
    arm, here = (np.load(runs[s] / "arrays.npz") for s in ("armhf", "here"))
    report = []
    for key in sorted(k for k in arm.files if k.startswith("z_")):
        a, b = arm[key], here[key]
        d = np.abs(a - b)
        report.append(f"{key[2:]}: {np.count_nonzero(d)}/{d.size} float64 values differ, max {d.max():.2g}")
        assert d.max() <= 1e-12 * max(np.abs(b).max(), 1e-300), report[-1]
    a, b = arm["t_predict_flow2"], here["t_predict_flow2"]
    report.append(f"predict_flow2 (float32): {np.count_nonzero(a != b)}/{a.size} differ")
    np.testing.assert_array_max_ulp(a, b, maxulp=1)
    for name in ("golden", "de10nano-cached"):
        a, b = read_flo(runs["armhf"] / f"{name}.flo"), read_flo(runs["here"] / f"{name}.flo")
        report.append(f"{name}.flo: {'identical' if np.array_equal(a, b) else 'differs'}")
        tol = 4 * np.finfo(np.float32).eps * float(np.abs(b).max())
        np.testing.assert_allclose(a, b, rtol=0, atol=tol)
    print("armhf vs here: " + "; ".join(report))
