"""Host time per frame on the golden backend; ``python -m sw.bench --out build/bench.json``.

Writes the key ``host`` of the shared benchmark file (:func:`models.bench.update_bench`): the
median over ``--repeat`` frames of the host's time split into float layers, packing/unpacking,
device-memory transfers and the accelerator (here the functional model, so this part measures
numpy, not the hardware), plus the once-per-model load time.
"""

import argparse
import statistics
import time

__all__ = ["main", "measure"]


def measure(cfg, backend="golden", repeat=7, seed=0):
    """Run the default-engine runtime on the benchmark weights (shipped, else random) and random
    frames; returns the ``host`` entry."""
    from models.bench import bench_weights
    from models.generate import random_frame_pairs
    from models.golden import QuantizedModel

    from .backends import get_transport
    from .config import default_engine_params
    from .runtime import FlowRuntime

    params = default_engine_params()
    model = QuantizedModel(cfg, bench_weights(cfg)[0])
    frames, _ = random_frame_pairs(1, cfg.height, cfg.width, seed=100)
    with FlowRuntime(model, get_transport(backend, params), params) as runtime:
        runtime.run(frames)                                          # warm-up
        runs = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = runtime.run(frames)
            wall = time.perf_counter() - t0
            runs.append((result.timings, wall))
        load_s = runtime.load_s
    keys = ("float_s", "pack_s", "transfer_s", "accelerator_s", "total_s")
    per_frame = {k: round(statistics.median(getattr(t, k) for t, _ in runs), 6) for k in keys}
    per_frame["wall_s"] = round(statistics.median(w for _, w in runs), 6)
    layers = {name: round(statistics.median(t.layers_s[name] for t, _ in runs), 6) for name in runs[0][0].layers_s}
    return {"backend": backend, "network": cfg.name, "resolution": [cfg.height, cfg.width],
            "engine": {"pe_count": params.pe_count, "simd_lanes": params.simd_lanes},
            "per_frame": per_frame, "float_layers_s": layers, "accelerator_cycles": runs[0][0].cycles,
            "load_s": round(load_s, 6), "repeat": repeat}


def main(argv=None):
    from models.bench import update_bench
    from models.network import load_network_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/bench.json")
    parser.add_argument("--config", default=None, help="network configuration YAML (default: D=3, 96x128)")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, not {args.repeat}")

    cfg = load_network_config(args.config)
    data = measure(cfg, repeat=args.repeat)
    update_bench(args.out, "host", data)
    f = data["per_frame"]
    print(f"host runtime, golden backend, {cfg.name} at {cfg.height}x{cfg.width}, median of {args.repeat} frames:")
    for label, key in (("float layers", "float_s"), ("pack/unpack", "pack_s"), ("memory transfers", "transfer_s"),
                       ("accelerator (functional model)", "accelerator_s"), ("total", "total_s")):
        print(f"  {label:32s} {f[key] * 1e3:8.2f} ms")
    print(f"  {'load (once per model)':32s} {data['load_s'] * 1e3:8.2f} ms")
    print(f"written to {args.out} under 'host'")


def _run():
    """Entry point: a bad configuration or weights file gives one line and exit status 2."""
    import sys
    from models.errors import LMFlowError
    try:
        return main()
    except LMFlowError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(_run())
