"""``python -m dse [run] [--sweep FILE] [--out DIR] [--budget TIME] [--jobs N]``: the sweep
(``make dse``); ``python -m dse fit [--sweep FILE] [--jobs N]``: refit the resource model from
component and calibration syntheses (``make dse-model``)."""

import argparse
import os
import sys

from models.errors import LMFlowError


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in ("run", "fit") else "run"
    parser = argparse.ArgumentParser(prog=f"python -m dse {command}", description=__doc__.split("\n")[0])
    parser.add_argument("--sweep", default=os.environ.get("DSE_SWEEP") or None,
                        help="sweep file (default dse/sweeps/default.yaml; DSE_SWEEP)")
    parser.add_argument("--jobs", type=int, default=None, help="processes (default: the cores)")
    parser.add_argument("--base", default=None,
                        help="hardware configuration the points start from (default: the sweep file's base)")
    if command == "run":
        parser.add_argument("--out", default=os.path.join("build", "dse"))
        parser.add_argument("--budget", default=os.environ.get("DSE_BUDGET") or None,
                            help="stop starting points after this time: 90s, 20m, 1h (DSE_BUDGET)")
        parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    from .sweep import load_sweep
    try:
        sweep = load_sweep(args.sweep, base=args.base)
        if command == "fit":
            from .resources import MODEL_PATH, fit
            data = fit(sweep.train, sweep.held_out, jobs=args.jobs)
            print(f"resource model fitted on {len(sweep.train)} whole syntheses -> {MODEL_PATH}")
            for check in data.get("held_out", []):
                hw = check["hardware"]
                print(f"  held out P={hw['pe_count']} S={hw['simd_lanes']}: " + ", ".join(
                    f"{q} {check['predicted'][q]} vs {check[q]} ({check['error_pct'][q]:+.1f}"
                    + ("" if q == "logic_levels" else "%") + ")" for q in ("luts", "ffs", "m10k", "alm_estimate")))
            return 0
        from .run import parse_budget, run_sweep, write_outputs
        try:
            budget = parse_budget(args.budget)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        records, complete = run_sweep(sweep, out=args.out, jobs=args.jobs, budget_s=budget,
                                      progress=not args.no_progress)
        write_outputs(records, sweep, args.out, complete=complete)
    except (LMFlowError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
