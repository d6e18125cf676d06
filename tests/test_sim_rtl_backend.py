"""The host layer on the RTL: the same runtime and CLI drive the generated Verilog (rtl backend)
and must agree with the golden backend bit for bit (in the regression, ``make regress``)."""

import numpy as np
import pytest
from PIL import Image

from models import QuantizedModel, load_network_config, random_frame_pairs, random_weights, save_weights
from sim.launch import regress_mark
from sim.runner import simulator_missing
from sw.backends import get_transport
from sw.cli import main
from sw.config import default_engine_params
from sw.runtime import FlowRuntime

pytestmark = [pytest.mark.sim, regress_mark(),
              pytest.mark.skipif(simulator_missing("verilator") is not None,
                                 reason=str(simulator_missing("verilator")))]


def test_runtime_on_rtl_equals_the_golden_pass():
    cfg = load_network_config()                 # the fully quantized network: the frame pair in
    model = QuantizedModel(cfg, random_weights(cfg, seed=0))
    frames, _ = random_frame_pairs(1, cfg.height, cfg.width, seed=100)
    golden = model.run(frames, keep_tensors=True)
    params = default_engine_params()
    with FlowRuntime(model, get_transport("rtl", params), params) as runtime:
        result = runtime.run(frames, keep_tensors=True)
    for name, tensor in golden.tensors.items():
        assert np.array_equal(result.tensors[name], tensor), name
    assert np.array_equal(result.flow, golden.flow)
    assert result.timings.cycles["conv3"] > 0


def test_cli_rtl_and_golden_write_identical_flo_files(tmp_path):
    cfg = load_network_config()
    weights = tmp_path / "w.npz"
    save_weights(weights, random_weights(cfg, seed=2), cfg)
    frames, _ = random_frame_pairs(1, 120, 160, seed=9)
    for i in (0, 1):
        Image.fromarray(frames[0, :, :, 3 * i:3 * i + 3]).save(tmp_path / f"f{i}.png")
    outs = {}
    for backend in ("golden", "rtl"):
        out = tmp_path / f"{backend}.flo"
        assert main(["flow", str(tmp_path / "f0.png"), str(tmp_path / "f1.png"), "-o", str(out),
                     "--png", str(tmp_path / f"{backend}.png"), "--backend", backend,
                     "--weights", str(weights)]) == 0
        outs[backend] = out.read_bytes()
    assert outs["golden"] == outs["rtl"]
