"""Benchmarks of the golden model; ``python -m models.bench --out build/bench.json``.

``build/bench.json`` is shared by every benchmark of the project: each writes its own top-level
key with :func:`update_bench` and leaves the others as they are. Timing lives here, never in a
test.
"""

import argparse
import json
import os
import statistics
import tempfile
import time

__all__ = ["update_bench", "median_time", "bench_weights"]


def bench_weights(cfg):
    """Weights the benchmarks run: the shipped trained weights when they fit ``cfg``, else seeded
    random weights. Returns ``(weights, description)``."""
    from .errors import WeightsError
    from .generate import random_weights
    try:
        from .pretrained import load_default_weights
        weights, _, _ = load_default_weights(cfg)
        return weights, "shipped weights"
    except (ImportError, WeightsError):
        return random_weights(cfg, seed=0), "random weights (seed 0)"


def update_bench(path, key, data):
    """Merge ``{key: data}`` into the JSON file at ``path`` (atomically); returns the whole dict."""
    path = os.fspath(path)
    content = {}
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                content = json.load(f)
        except (OSError, ValueError):
            content = {}
    content[key] = data
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".bench-", suffix=".json", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(content, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return content


def median_time(fn, repeat=7, warmup=1):
    """Median wall time of ``fn()`` over ``repeat`` runs, in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    from .generate import random_frame_pairs
    from .golden import FloatModel, QuantizedModel
    from .network import load_network_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/bench.json")
    parser.add_argument("--config", default=None, help="network configuration YAML (default: D=3, 96x128)")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)

    cfg = load_network_config(args.config)
    weights, source = bench_weights(cfg)
    frames, _ = random_frame_pairs(1, cfg.height, cfg.width, seed=100)
    t0 = time.perf_counter()
    qmodel = QuantizedModel(cfg, weights)
    plan_s = time.perf_counter() - t0
    fmodel = FloatModel(cfg, weights)
    q = median_time(lambda: qmodel.run(frames), args.repeat)
    f = median_time(lambda: fmodel.run(frames), args.repeat)
    data = {"network": cfg.name, "resolution": [cfg.height, cfg.width], "weights": source,
            "quantized_forward_s": round(q, 6), "float_forward_s": round(f, 6),
            "quantized_plan_s": round(plan_s, 6), "repeat": args.repeat}
    update_bench(args.out, "golden", data)
    print(f"golden model, {cfg.name} at {cfg.height}x{cfg.width}, {source}, median of {args.repeat}:")
    print(f"  quantized forward pass  {q * 1e3:8.1f} ms")
    print(f"  float forward pass      {f * 1e3:8.1f} ms")
    print(f"  quantized model plan    {plan_s * 1e3:8.1f} ms (threshold folding, once per model)")
    print(f"written to {args.out} under 'golden'")


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
