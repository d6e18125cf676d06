"""The host (sw/driver.py, sw/runtime.py, sw/cli.py) against a transport that injects faults
(sim/fault_transport.py): a device error mid-list, a timeout, a stuck busy bit, registers that
read garbage. Each gives one clear error (one line), leaves the device in a known state (cleared
and idle, or, after a timeout, waited for by the next run), no partial output file, and the next
frame runs and equals the golden model."""

import os
import re

import numpy as np
import pytest
from PIL import Image

from models import random_weights, save_weights
from models.engine import Descriptor
from models.regmap import CTRL_START, STATUS_BUSY
from sim.fault_transport import Fault, FaultyTransport, parse_faults
from sw import cli
from sw.backends import BACKENDS
from sw.backends.golden import GoldenTransport
from sw.config import default_engine_params
from sw.driver import Accelerator
from sw.errors import AcceleratorError, AcceleratorTimeoutError
from sw.runtime import FlowRuntime

from host_fixtures import frames, model  # noqa: F401  (shared fixtures)

PARAMS = default_engine_params()
TIMEOUT = 0.5


@pytest.fixture(scope="module")
def reference(model, frames):
    return model.run(frames)


def runtime_with(model, *faults):
    t = FaultyTransport(PARAMS, faults)
    return FlowRuntime(model, t, PARAMS, timeout_s=TIMEOUT), t


def one_line(exc):
    text = str(exc)
    assert "\n" not in text and text, f"not one line: {text!r}"
    return text


def idle_and_cleared(rt):
    assert rt.driver.read("STATUS") == 0, f"STATUS 0x{rt.driver.read('STATUS'):x} after the failure, expected 0"


# Each case: faults (the list of frame 0's second segment is start 2), the error and its message.
CASES = {
    "error mid-list": ([Fault("error", start=1, index=1, code=6)], AcceleratorError,
                       r"faulty backend: accelerator error 'align' \(code 6\) at descriptor 1 of 1?\d: layer \w+"),
    "error in the second list": ([Fault("error", start=2, index=0, code=7)], AcceleratorError,
                                 r"accelerator error 'address' \(code 7\) at descriptor 0 of \d+: layer cast_conv"),
    "STATUS reads all ones": ([Fault("garbage", start=1, register="STATUS", value=0xFFFFFFFF)], AcceleratorError,
                              r"STATUS reads 0xffffffff: bits the register map does not define"),
    "ERROR reads all ones": ([Fault("error", start=1, index=2), Fault("garbage", start=1, register="ERROR")],
                             AcceleratorError, r"ERROR reads 0xffffffff \(code 255, descriptor 65535\)"),
    "ERROR index past the list": ([Fault("error", start=1, index=2),
                                   Fault("garbage", start=1, register="ERROR", value=(40 << 8) | 1)],
                                  AcceleratorError, r"ERROR reads 0x00002801 \(code 1, descriptor 40\) after a list"),
    "LAYERS_DONE reads garbage": ([Fault("garbage", start=1, register="LAYERS_DONE", value=0xDEAD)],
                                  AcceleratorError, r"LAYERS_DONE reads 57005 \(0xdead\) after a list of"),
    "busy stuck past the timeout": ([Fault("stuck_busy", start=1, reads=10 ** 6)], AcceleratorTimeoutError,
                                    r"timeout: the accelerator did not finish conv2, .* within 0.5 s"),
    "a list that hangs": ([Fault("hang", start=1, seconds=0.8)], AcceleratorTimeoutError,
                          r"faulty backend: timeout: the accelerator did not finish conv2"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_fault_gives_one_error_and_the_next_frame_runs(case, model, frames, reference):
    faults, error, message = CASES[case]
    rt, t = runtime_with(model, *faults)
    with pytest.raises(error, match=message) as info:
        rt.run(frames[0])
    one_line(info.value)
    assert t.fired, f"{case}: the fault never fired"
    if error is AcceleratorTimeoutError:
        if case == "busy stuck past the timeout":
            t._busy_reads = 0                           # the bit comes unstuck
    else:
        idle_and_cleared(rt)
    result = rt.run(frames[1])                          # waits for a list that timed out, then runs
    assert np.array_equal(result.flow, reference.flow[1:]), f"{case}: the next frame differs from the model"
    assert not STATUS_BUSY.get(rt.driver.read("STATUS"))


def test_a_short_stuck_busy_bit_only_delays(model, frames, reference):
    rt, t = runtime_with(model, Fault("stuck_busy", start=1, reads=5))
    result = rt.run(frames[0])
    assert t.fired and np.array_equal(result.flow, reference.flow[:1])


def test_a_list_still_running_after_two_timeouts_is_reported(model, frames):
    rt, t = runtime_with(model, Fault("hang", start=1, seconds=100.0))
    with pytest.raises(AcceleratorTimeoutError, match="did not finish conv2"):
        rt.run(frames[0])
    with pytest.raises(AcceleratorTimeoutError, match=r"still busy with a descriptor list that timed out before, "
                                                      r"0.5 s later"):
        rt.run(frames[1])
    assert t.starts == 1, "the driver started a list while another was running"


def test_a_stale_flag_is_cleared_before_the_next_start():
    """A start ignored while busy leaves STATUS.start_ignored set; the next run clears it first."""
    t = GoldenTransport(PARAMS, cycle_model=lambda d: 1000, clock_hz=1e6)
    drv = Accelerator(t, PARAMS, timeout_s=TIMEOUT)
    base, _ = t.arena
    desc = Descriptor(dict(kernel=1, input_op=0, output_mode=1, src_format=0, layer_id=9, src_height=2, src_width=2,
                           src_channels=64, out_channels=32, src_addr=base + 0x100, weights_addr=base + 0x400,
                           thresholds_addr=0, dst_addr=base + 0x800), PARAMS)
    t.mem_write(base, desc.to_bytes())
    drv.run(base, 1, (base, 0x1000), names=["first"])
    for _ in range(2):                                   # a start, and one while busy: flagged
        drv.write("CTRL", CTRL_START.mask)
    t.wait(1e-2)
    run = drv.run(base, 1, (base, 0x1000), names=["second"])
    assert run.layers_done == 1


def test_count_outside_desc_count():
    drv = Accelerator(GoldenTransport(PARAMS), PARAMS)
    with pytest.raises(ValueError, match=r"count must be an integer in 0 .. 65535 \(DESC_COUNT\), not 65536"):
        drv.run(0x2000_0000, 65536, (0x2000_0000, 0x1000))


def test_parse_faults():
    assert parse_faults("error:start=2:index=1:code=7; garbage:register=ERROR:value=0xff") == [
        Fault("error", start=2, index=1, code=7), Fault("garbage", register="ERROR", value=0xFF)]
    with pytest.raises(ValueError, match="fault kind must be one of"):
        parse_faults("melt")


# -- the command line ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory, model):
    d = tmp_path_factory.mktemp("fault-inputs")
    save_weights(d / "w.npz", random_weights(model.cfg, seed=0), model.cfg)
    rng = np.random.default_rng(3)
    frames = d / "frames"
    frames.mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(frames / f"{i}.png")
    return d


def lmflow(capsys, monkeypatch, faults, *argv):
    monkeypatch.setitem(BACKENDS, "faulty", "sim.fault_transport")
    monkeypatch.setenv("LMF_FAULTS", faults)
    status = cli.main([str(a) for a in argv] + ["--backend", "faulty", "--timeout", str(TIMEOUT)])
    return status, capsys.readouterr().err


@pytest.mark.parametrize("faults, message", [
    ("error:start=1:index=1:code=6", r"accelerator error 'align' \(code 6\) at descriptor 1"),
    ("hang:start=2:seconds=5", r"timeout: the accelerator did not finish"),
    ("garbage:start=1:register=STATUS", r"STATUS reads 0xffffffff"),
])
def test_the_command_line_leaves_no_partial_output(capsys, monkeypatch, tmp_path, files, faults, message):
    frames = files / "frames"
    status, err = lmflow(capsys, monkeypatch, faults, "flow", frames / "0.png", frames / "1.png", "-o",
                         tmp_path / "out.flo", "--png", tmp_path / "out.png", "--weights", files / "w.npz")
    assert status == 1 and err.count("\n") == 1 and err.startswith("lmflow: error: faulty backend: "), err
    assert re.search(message, err), err
    assert os.listdir(tmp_path) == [], "a failed run left files behind"
    # a video whose second pair fails: nothing is written, the directory it created is gone
    later = faults.replace("start=1", "start=3").replace("start=2", "start=4")
    status, err = lmflow(capsys, monkeypatch, later, "video", frames, "-o", tmp_path / "out", "--weights",
                         files / "w.npz")
    assert status == 1 and err.count("\n") == 1, err
    assert os.listdir(tmp_path) == [], "a failed video left files behind"
    # and the same command without faults works
    status, err = lmflow(capsys, monkeypatch, "", "flow", frames / "0.png", frames / "1.png", "-o",
                         tmp_path / "out.flo", "--weights", files / "w.npz")
    assert status == 0 and os.listdir(tmp_path) == ["out.flo"], err
