"""Co-simulation speed: a long stream through the PE array on each simulator.

``python -m sim.bench [--config NAME] [--beats N] [--sim icarus|verilator ...]`` runs the
``throughput`` test of ``sim/tb_pe_array.py`` (back-to-back groups, no stalls, every output
checked against the golden model, Python driving every cycle) and prints the simulated clock
cycles per wall-clock second, measured inside the simulation (start-up and build excluded).
"""

import argparse
import json
import re
import sys

from .runner import TEST_CONFIGS, run_component, selected_simulators, simulator_missing

__all__ = ["measure", "main"]

_LINE = re.compile(r"THROUGHPUT (.+?) cycles (\d+) seconds ([\d.]+) cycles_per_second (\d+)")


def measure(sim, config, beats):
    """Run the throughput test; returns ``{"cycles", "seconds", "cycles_per_second"}``."""
    log = run_component("pe_array", config, sim, tests="throughput",
                        extra_env={"LMF_SIM_BENCH_BEATS": str(beats)})
    match = _LINE.search(log.read_text(encoding="utf-8"))
    if match is None:
        raise RuntimeError(f"no THROUGHPUT line in {log}")
    return {"simulator": sim, "config": config, "beats": beats, "cycles": int(match[2]),
            "seconds": float(match[3]), "cycles_per_second": int(match[4])}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=TEST_CONFIGS[-1])
    parser.add_argument("--beats", type=int, default=50000)
    parser.add_argument("--sim", nargs="*", default=None)
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    results = []
    for sim in args.sim or selected_simulators():
        reason = simulator_missing(sim)
        if reason:
            print(f"{sim}: skipped: {reason}")
            continue
        r = measure(sim, args.config, args.beats)
        results.append(r)
        print(f"{sim:10s} {args.config}: {r['cycles']} cycles in {r['seconds']:.2f} s = "
              f"{r['cycles_per_second']} cycles/s")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
