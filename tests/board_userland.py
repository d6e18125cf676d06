"""One frame pair through the host, as the board would run it, recorded for comparison.

``python tests/board_userland.py OUT_DIR IMG1 IMG2`` writes into ``OUT_DIR``:

* ``golden.flo``: ``lmflow flow IMG1 IMG2 -o golden.flo`` (the command line, golden backend);
* ``de10nano-cached.flo``, ``de10nano-devmem.flo``: the command line's flow path
  (``sw.cli._flow_at``) over the ``de10nano`` transport on an emulated board
  (``tests/fake_board.py``, its registers and /dev/mem region at the board's own physical
  addresses): a u-dma-buf buffer mapped cached with explicit syncs, and the ``/dev/mem`` region
  mapped uncached;
* ``arrays.npz``: the network input (``frames``), every tensor of the ``/dev/mem`` run (read
  back with ``keep_tensors``; ``t_<layer>``) and the float64 pre-activations of the host's float
  layers (``z_<layer>``);
* ``info.json``: platform, library versions, the cached run's transport counters, times.

``tests/test_armhf.py`` runs it in the board's userland (Debian 12 armhf under qemu) and on this
machine and compares the two.
"""

import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import numpy as np  # noqa: E402
import PIL  # noqa: E402
import yaml  # noqa: E402

from fake_board import EmulatedDE10Nano, FakeBoard  # noqa: E402
from models.board import ARENA_BASE, LW_BRIDGE_BASE  # noqa: E402
from models.flow import resize_flow, write_flo  # noqa: E402
from models.golden import QuantizedModel, apply_input_op, frames_to_float  # noqa: E402
from models.network import INPUT  # noqa: E402
from models.ops import concat_channels  # noqa: E402
from models.pretrained import load_default_weights  # noqa: E402
from sw import cli  # noqa: E402
from sw.config import default_engine_params  # noqa: E402
from sw.program import HostLayer  # noqa: E402
from sw.runtime import FlowRuntime  # noqa: E402


def host_pre_activations(model, schedule, tensors):
    """The float64 conv outputs (before BN and quantization) of the host layers."""
    out = {}
    for item in schedule:
        if isinstance(item, HostLayer):
            plan = model.plans[item.name]
            layer = plan.layer
            x = concat_channels([model.dequantize(i, tensors[i]) for i in layer.inputs])
            out[item.name] = plan.pre_activation(apply_input_op(layer.input_op, x))
    return out


def main(out_dir, img1, img2):
    t0 = time.perf_counter()
    times = {}
    status = cli.main(["flow", img1, img2, "-o", os.path.join(out_dir, "golden.flo")])
    if status:
        raise SystemExit(f"lmflow flow exited with {status}")
    times["cli_golden_s"] = time.perf_counter() - t0

    t = time.perf_counter()
    weights, cfg, _ = load_default_weights()
    model = QuantizedModel(cfg, weights)
    times["model_s"] = time.perf_counter() - t
    a, b = cli._read_image(img1), cli._read_image(img2)
    frames = cli._to_network_input(a, b, cfg)
    arrays = {"frames": frames}
    params = default_engine_params()
    traffic = {}
    for mode in ("cached", "devmem"):
        t = time.perf_counter()
        board = FakeBoard(os.path.join(out_dir, f"board-{mode}"), udmabuf=mode == "cached", bridge=LW_BRIDGE_BASE,
                          ddr=ARENA_BASE)
        with FlowRuntime(model, EmulatedDE10Nano(board, params), params) as rt:
            assert rt.transport.memory_cached == (mode == "cached")
            if mode == "cached":            # the command line's path, its traffic counted
                with rt.transport.measure() as rec:
                    flow, _ = cli._flow_at(rt, a, b)
                traffic[mode] = rec.as_dict()
            else:                           # every tensor read back too
                result = rt.run(frames, keep_tensors=True)
                flow = result.flow[0]
                if flow.shape[:2] != a.shape[:2]:
                    flow = resize_flow(flow, *a.shape[:2])
                arrays.update({f"t_{k}": v for k, v in result.tensors.items()})
                z = host_pre_activations(model, rt.program.schedule, {**result.tensors,
                                                                       INPUT: frames_to_float(frames)})
                arrays.update({f"z_{k}": v for k, v in z.items()})
        write_flo(os.path.join(out_dir, f"de10nano-{mode}.flo"), flow)
        times[f"de10nano_{mode}_s"] = time.perf_counter() - t
    np.savez(os.path.join(out_dir, "arrays.npz"), **arrays)
    times["total_s"] = time.perf_counter() - t0
    info = {"machine": platform.machine(), "python": platform.python_version(), "numpy": np.__version__,
            "yaml": yaml.__version__, "pillow": PIL.__version__, "traffic": traffic, "times": times}
    with open(os.path.join(out_dir, "info.json"), "w") as f:
        json.dump(info, f, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:])
