"""cocotb test: every accelerator layer of an LMFlowNet (the default: the fully quantized network,
frame pair in), bit for bit.

The program compiled by the host layer (:func:`sw.program.compile_program`) runs from the
registers, data through the memory model: the frame-pair image (quantized ends) or the
host-produced tensors (float ends: conv1, upsample_flow3) come from the golden quantized pass,
every accelerator tensor is compared with it element by element, and the per-layer cycle
counters are written to ``LMF_NET_RESULTS`` (JSON).
"""

import json
import os
import time

import cocotb
import numpy as np

from models import QuantizedModel, load_network_config, random_frame_pairs, random_weights
from models.network import INPUT
from models.cycles import ideal_cycles, list_cycles
from sw.program import HostLayer, compile_program

from .accel_tb import AcceleratorTB, MemorySettings


def report(msg):
    path = os.environ.get("LMF_SIM_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(msg + "\n")
    return msg


def first_difference(name, expected, got):
    diff = np.argwhere(expected != got)
    y, x, c = diff[0]
    return (f"layer {name}: {len(diff)} elements differ; first at y={y} x={x} channel {c}: "
            f"expected {expected[y, x, c]}, got {got[y, x, c]}")


@cocotb.test()
async def test_network(dut):
    tb = AcceleratorTB(dut)
    stall = int(os.environ.get("LMF_NET_STALL", "0"))
    memory = MemorySettings(stall_pct=stall, gap_pct=stall, latency_min=int(os.environ.get("LMF_NET_LATENCY", "8")),
                            latency_max=int(os.environ.get("LMF_NET_LATENCY", "8")), seed=3)
    await tb.start(memory)
    cfg = load_network_config(os.environ.get("LMF_NET_CONFIG") or None)
    model = QuantizedModel(cfg, random_weights(cfg, seed=0))
    frames, _ = random_frame_pairs(1, cfg.height, cfg.width, seed=100)
    golden = model.run(frames, keep_tensors=True)
    prog = compile_program(model, tb.params, base=tb.base)
    image = np.zeros(tb.size, dtype=np.uint8)
    image[:prog.size] = prog.constants
    if INPUT in prog.placements:                   # the accelerator reads the frame pair itself
        addr, data = prog.pack_tensor(INPUT, frames[0])
        image[addr - tb.base:addr - tb.base + len(data)] = np.frombuffer(data, np.uint8)
    results = {"layers": {}, "segments": [], "latency": memory.latency_min, "stall_pct": stall,
               "pe_count": tb.params.pe_count, "simd_lanes": tb.params.simd_lanes}
    t0 = time.perf_counter()
    for item in prog.schedule:
        if isinstance(item, HostLayer):
            if item.name in prog.placements:
                addr, data = prog.pack_tensor(item.name, golden.tensors[item.name][0])
                image[addr - tb.base:addr - tb.base + len(data)] = np.frombuffer(data, np.uint8)
            continue
        await tb.load(image)
        status = await tb.run_list(prog.base + item.desc_offset, item.count, window=prog.window,
                                   timeout_cycles=20_000_000)
        assert status["error_code"] == 0 and status["layers_done"] == item.count and status["fault"] == 0, \
            report(f"segment {item.layers}: {status}")
        image = (await tb.dump())[:tb.size]
        descs = [prog.descriptors[name] for name in item.layers]
        model_total, model_each = list_cycles(descs, tb.params, latency=memory.latency_min)
        results["segments"].append({"layers": item.layers, "total_cycles": status["total_cycles"],
                                    "model_total_cycles": model_total})
        if stall == 0:
            assert (status["layer_cycles"], status["total_cycles"]) == (model_each, model_total), report(
                f"segment {item.layers}: RTL cycles {status['layer_cycles']} (total {status['total_cycles']}), "
                f"cycle model {model_each} (total {model_total})")
        for i, name in enumerate(item.layers):
            addr, n = prog.tensor_bytes(name)
            got = prog.unpack_tensor(name, image[addr - tb.base:addr - tb.base + n])
            expected = golden.tensors[name][0]
            assert np.array_equal(got, expected), report(first_difference(name, expected, got))
            d = prog.descriptors[name]
            results["layers"][name] = {"cycles": status["layer_cycles"][i], "model_cycles": model_each[i],
                                       "ideal_cycles": ideal_cycles(d, tb.params),
                                       "macs": model.plans[name].layer.macs}
    results["wall_s"] = time.perf_counter() - t0
    out = os.environ.get("LMF_NET_RESULTS")
    if out:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
