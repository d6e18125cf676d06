"""Accelerator benchmark: ``python -m hw.bench --out build/bench.json``.

Runs the default network's accelerator segment on the RTL (Verilator, ``sim/tb_network.py``;
bit-exactness is checked on the way) and writes, per layer and in total, RTL cycles, model
cycles, MACs, PE utilization (useful MACs / (P*S*cycles)) and the latency at the configured
clock, under the key ``accelerator`` of ``build/bench.json``.
"""

import argparse
import time

from models.bench import update_bench


__all__ = ["main", "summarize"]


def summarize(results, cfg):
    """Bench entries from the network run's results and the hardware configuration."""
    macs_per_cycle = cfg.pe_count * cfg.simd_lanes
    clock = cfg.clock_mhz

    def entry(cycles, macs, model=None):
        e = {"cycles": cycles, "macs": macs, "utilization": round(macs / (macs_per_cycle * cycles), 4),
             "latency_ms": round(cycles / (clock * 1e3), 4), "clock_mhz": clock, "macs_per_cycle": macs_per_cycle}
        if model is not None:
            e["model_cycles"] = model
        return e

    layers = {name: entry(v["cycles"], v["macs"], v["model_cycles"]) for name, v in results["layers"].items()}
    total_cycles = sum(s["total_cycles"] for s in results["segments"])
    total_model = sum(s["model_total_cycles"] for s in results["segments"])
    total = entry(total_cycles, sum(v["macs"] for v in results["layers"].values()), total_model)
    return {"layers": layers, "total": total, "memory_latency_cycles": results["latency"],
            "segments": len(results["segments"]), "simulation_wall_s": round(results["wall_s"], 2)}


def main(argv=None):
    from sim.accel_runner import run_network
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/bench.json")
    parser.add_argument("--config", default=None, help="hardware configuration (name or YAML path)")
    args = parser.parse_args(argv)
    from sim.launch import check
    # Refused in one line before anything is built: the accelerator target and the network.
    cfg = check(args.config)
    t0 = time.perf_counter()
    results = run_network(cfg)
    wall = time.perf_counter() - t0
    data = summarize(results, cfg)
    data["run_wall_s"] = round(wall, 1)
    update_bench(args.out, "accelerator", data)
    print(f"accelerator {cfg.name}: P={cfg.pe_count} x S={cfg.simd_lanes} = "
          f"{cfg.macs_per_cycle} MACs/cycle at {cfg.clock_mhz} MHz, memory latency "
          f"{results['latency']} cycles")
    print(f"{'layer':16s} {'cycles':>9s} {'model':>9s} {'MACs':>12s} {'util':>6s} {'ms':>7s}")
    for name, e in list(data["layers"].items()) + [("total", data["total"])]:
        print(f"{name:16s} {e['cycles']:9d} {e['model_cycles']:9d} {e['macs']:12d} {e['utilization']:6.1%} "
              f"{e['latency_ms']:7.3f}")
    print(f"simulation {data['simulation_wall_s']} s (run {data['run_wall_s']} s with build check); "
          f"written to {args.out} under 'accelerator'")


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
