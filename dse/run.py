"""The sweep: every point of a sweep file through the cycle model and the resource model.

``python -m dse [--sweep FILE] [--out DIR] [--budget TIME] [--jobs N]`` (``make dse``) writes
``DIR/points.csv``, ``DIR/points.json`` (with the resource model and its held-out error) and
``DIR/pareto.png``, and prints the best point per ALM budget. Points are evaluated in parallel
over the cores, each result is kept in ``DIR/cache/`` as soon as it exists, so an interrupted
sweep resumes where it stopped; ``--budget`` (``DSE_BUDGET``: ``90s``, ``20m``, ``1h``) stops
starting new points when the time is spent and writes what is done.
"""

from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
import csv
import hashlib
import json
import os
import re
import time

from models.board import DEVICE
from models.errors import ConfigError
from models.hwconfig import HardwareConfig, target_problems

__all__ = ["parse_budget", "evaluate", "run_sweep", "best_per_budget", "pareto_front", "write_outputs"]

_STATE = {}


def parse_budget(text):
    """Seconds of a budget such as ``90``, ``90s``, ``20m``, ``1.5h``; ``None`` for none.

    Raises
    ------
    ValueError
        ``"DSE_BUDGET must be ..., not '...'"``.
    """
    if text is None or str(text).strip() == "":
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if not m or float(m[1]) <= 0:
        raise ValueError(f"DSE_BUDGET must be a positive time such as 90s, 20m or 1h, not {text!r}")
    return float(m[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[m[2]]


def _init(sweep_path, base):
    from .resources import ResourceModel
    from .sweep import load_sweep
    _STATE["sweep"] = load_sweep(sweep_path, base=base)
    _STATE["model"] = ResourceModel.load()


def _point_key(cfg, sweep, model):
    from .resources import RULES_VERSION
    text = json.dumps([cfg.to_dict(), sweep.networks, sweep.latency, model.data.get("source_hash"),
                       model.data["rest"], RULES_VERSION], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def evaluate(cfg_dict):
    """One point (in a worker process): resources, cycles per network, board target."""
    from .cycles import board_frame_model, frame_cycles
    from .sweep import network_label
    sweep, model = _STATE["sweep"], _STATE["model"]
    cfg = HardwareConfig.from_dict(cfg_dict, source="<sweep>")
    start = time.perf_counter()
    res = model.predict(cfg)
    problems = target_problems(cfg, "de10nano")
    record = {
        "name": cfg.name, "pe_count": cfg.pe_count, "simd_lanes": cfg.simd_lanes,
        "popcount_stages": cfg.popcount_stages, **{k: cfg.engine[k] for k in ("act_buffer_words",
                                                                              "weight_buffer_words", "max_burst")},
        "clock_mhz": cfg.clock_mhz, "macs_per_cycle": cfg.macs_per_cycle,
        "luts": res["luts"], "ffs": res["ffs"], "m10k": res["m10k"], "alm_estimate": res["alm_estimate"],
        "logic_levels": res["logic_levels"], "fits_device": res["fits"],
        "timing_ok": sweep.timing_ok(cfg.clock_mhz, res["logic_levels"]),
        "board_target": "ok" if not problems else "; ".join(problems),
        "luts_by_inputs": res["luts_by_inputs"], "networks": {},
    }
    board = board_frame_model()
    for path in sweep.networks:
        net = network_label(path)
        try:
            fc = frame_cycles(cfg.engine_params, path, sweep.latency)
        except ConfigError as e:
            record["networks"][net] = {"error": str(e)}
            continue
        entry = {"cycles": fc["cycles"], "frame_ms": round(fc["cycles"] / (cfg.clock_mhz * 1e3), 4),
                 "utilization": fc["utilization"], "macs": fc["macs"],
                 "layers": {k: v["cycles"] for k, v in fc["layers"].items()},
                 "layer_utilization": {k: v["utilization"] for k, v in fc["layers"].items()},
                 "board_frame_ms": None}
        if board is not None:
            entry["board_frame_ms"] = board(cfg, path, fc["program"], fc["cycles"])
        record["networks"][net] = entry
    record["seconds"] = round(time.perf_counter() - start, 2)
    return record


def _atomic_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def _synthesize(task):
    from .resources import synth_cached
    synth_cached(*task)


def run_sweep(sweep, *, out, jobs=None, budget_s=None, log=print, progress=True):
    """Evaluate every point of ``sweep`` not yet in ``out/cache``; returns ``(records, complete)``."""
    from tqdm import tqdm
    from .resources import ResourceModel, _key, component_keys

    model = ResourceModel.load()
    stale = model_staleness(model)
    if stale:
        log(f"warning: {stale}")
    jobs = jobs or os.cpu_count() or 1
    start = time.perf_counter()
    cache = os.path.join(out, "cache")
    points = list(sweep.points)
    same = [p for p in points if p.to_dict() == {**sweep.base.to_dict(), "name": p.name}]
    if not same:
        points.append(sweep.base)              # the base design is always a point (marked in the plot)
    base = same[0] if same else sweep.base
    keyed = [(p, _point_key(p, sweep, model)) for p in points]
    base_key = _point_key(base, sweep, model)
    records = {}
    for p, key in keyed:
        try:
            with open(os.path.join(cache, key + ".json"), encoding="utf-8") as f:
                records[key] = json.load(f)
        except OSError:
            pass
    pending = [(p, k) for p, k in keyed if k not in records]
    log(f"{len(points)} points ({len(sweep.refused)} grid combinations refused by the engine's rules), "
        f"{len(records)} done before, {len(pending)} to evaluate on {jobs} processes"
        + (f", budget {budget_s:.0f} s" if budget_s else ""))
    tasks = {}
    for p, _ in pending:
        for component, c in component_keys(p):
            tasks.setdefault(_key(component, c), (component, c))
    from .resources import SYNTH_DIR
    missing = [t for k, t in tasks.items() if not os.path.exists(os.path.join(SYNTH_DIR, k + ".json"))]
    complete = True
    if jobs == 1:                              # in this process (tests, debugging)
        _init(sweep.path, sweep.base.source)
        for task in missing:
            _synthesize(task)
        for p, key in tqdm(pending, desc="points", unit="pt", disable=not progress):
            if budget_s is not None and time.perf_counter() - start > budget_s:
                complete = False
                break
            records[key] = evaluate(p.to_dict())
            _atomic_json(os.path.join(cache, key + ".json"), records[key])
    else:
        complete = _parallel(sweep, jobs, missing, pending, records, cache, start, budget_s, progress)
    # The timing rule is the sweep file's, not part of a point's cached result.
    ordered = [dict(records[k], default=k == base_key,
                    timing_ok=sweep.timing_ok(records[k]["clock_mhz"], records[k]["logic_levels"]))
               for _, k in keyed if k in records]
    if not complete:
        log(f"budget spent: {len(ordered)} of {len(points)} points evaluated (run again to go on)")
    return ordered, complete


def _parallel(sweep, jobs, missing, pending, records, cache, start, budget_s, progress):
    from tqdm import tqdm
    complete = True
    with ProcessPoolExecutor(jobs, initializer=_init, initargs=(sweep.path, sweep.base.source)) as pool:
        if missing:
            bar = tqdm(total=len(missing), desc="component syntheses", unit="synth", disable=not progress)
            for future in [pool.submit(_synthesize, t) for t in missing]:
                future.result()
                bar.update()
            bar.close()
        bar = tqdm(total=len(pending), desc="points", unit="pt", disable=not progress)
        queue = list(pending)
        running = {}
        while queue or running:
            while queue and len(running) < 2 * jobs:
                if budget_s is not None and time.perf_counter() - start > budget_s:
                    complete = False
                    queue = []
                    break
                p, key = queue.pop(0)
                running[pool.submit(evaluate, p.to_dict())] = key
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                key = running.pop(future)
                record = future.result()
                _atomic_json(os.path.join(cache, key + ".json"), record)
                records[key] = record
                bar.update()
        bar.close()
    return complete


def _frame(record, net):
    entry = record["networks"].get(net, {})
    return entry.get("frame_ms")


def candidate(record, net):
    """A point that fits the device, is taken to close timing and runs the network."""
    return record["fits_device"] and record["timing_ok"] and _frame(record, net) is not None


def pareto_front(records, net):
    """Candidates no other candidate beats in both ALMs and frame time, by ALMs."""
    cands = sorted((r for r in records if candidate(r, net)), key=lambda r: (r["alm_estimate"], _frame(r, net)))
    front, best = [], None
    for r in cands:
        if best is None or _frame(r, net) < best:
            front.append(r)
            best = _frame(r, net)
    return front


def best_per_budget(records, budgets, net, board_only=True):
    """ALM budget -> the fastest candidate within it (``None`` if none), among the points the
    board top can be built from when ``board_only``."""
    out = {}
    for budget in budgets:
        cands = [r for r in records if candidate(r, net) and r["alm_estimate"] <= budget
                 and (not board_only or r["board_target"] == "ok")]
        out[budget] = min(cands, key=lambda r: (_frame(r, net), r["alm_estimate"])) if cands else None
    return out


_CSV_FIELDS = ("name", "pe_count", "simd_lanes", "popcount_stages", "act_buffer_words", "weight_buffer_words",
               "max_burst", "clock_mhz", "macs_per_cycle", "luts", "ffs", "m10k", "alm_estimate", "logic_levels",
               "fits_device", "timing_ok", "board_target", "default")


def write_outputs(records, sweep, out, *, complete=True, log=print):
    """points.csv, points.json, pareto.png; prints the best point per budget. Returns the
    best-per-budget table (budget -> record or None) of the first network."""
    from .resources import ResourceModel
    from .sweep import network_label
    model = ResourceModel.load()
    nets = [network_label(n) for n in sweep.networks]
    os.makedirs(out, exist_ok=True)
    layer_names = {net: sorted({n for r in records for n in r["networks"].get(net, {}).get("layers", {})})
                   for net in nets}
    tmp = os.path.join(out, f".points.csv.{os.getpid()}")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        head = list(_CSV_FIELDS)
        for net in nets:
            head += [f"{net}:cycles", f"{net}:frame_ms", f"{net}:utilization", f"{net}:board_frame_ms",
                     f"{net}:error"] + [f"{net}:{layer}" for layer in layer_names[net]]
        writer.writerow(head)
        for r in records:
            row = [r.get(k) for k in _CSV_FIELDS]
            for net in nets:
                e = r["networks"].get(net, {})
                row += [e.get("cycles"), e.get("frame_ms"), e.get("utilization"), e.get("board_frame_ms"),
                        e.get("error")] + [e.get("layers", {}).get(layer) for layer in layer_names[net]]
            writer.writerow(row)
    os.replace(tmp, os.path.join(out, "points.csv"))
    best = best_per_budget(records, sweep.budgets, nets[0])
    data = {"sweep": sweep.path, "complete": complete, "networks": nets, "memory_latency": sweep.latency,
            "device": DEVICE, "budgets_alms": sweep.budgets,
            "resource_model": {"file": os.path.relpath(_model_path(), os.getcwd()),
                               "held_out_error_pct": model.data.get("held_out_error_pct"),
                               "held_out": model.data.get("held_out"), "features": model.data.get("features"),
                               "source_hash": model.data.get("source_hash"),
                               "fitted_on_these_sources": not model_staleness(model)},
            "best_per_budget": {str(b): (r["name"] if r else None) for b, r in best.items()},
            "pareto": [r["name"] for r in pareto_front(records, nets[0])],
            "refused": [{"point": o, "reason": why} for o, why in sweep.refused],
            "points": records}
    _atomic_json(os.path.join(out, "points.json"), data)
    from .plot import pareto_plot
    pareto_plot(records, sweep, best, os.path.join(out, "pareto.png"))
    log(f"best point per ALM budget ({nets[0]}, fits the 5CSEBA6, timing rule of the sweep, buildable "
        f"on the board top):")
    log(f"  {'ALMs':>7s}  {'point':34s} {'frame ms':>8s} {'cycles':>9s} {'util':>6s} {'ALMs':>7s} {'M10K':>5s} {'levels':>6s}")
    for budget, r in best.items():
        if r is None:
            log(f"  {budget:7d}  (none)")
            continue
        e = r["networks"][nets[0]]
        log(f"  {budget:7d}  {r['name']:34s} {e['frame_ms']:8.3f} {e['cycles']:9d} {e['utilization']:6.1%} "
            f"{r['alm_estimate']:7d} {r['m10k']:5d} {r['logic_levels']:6d}")
    err = model.data.get("held_out_error_pct") or {}
    if err:
        log("resource model held-out error (mean / max |%|): " + ", ".join(
            f"{q} {v['mean_abs']:.1f} / {v['max_abs']:.1f}" for q, v in err.items()))
    log(f"-> {os.path.join(out, 'points.csv')}, points.json, pareto.png")
    return best


def model_staleness(model):
    """None when the resource model was fitted on the gateware as it is now, else a one-line
    reason (its engine-and-registers part and the held-out errors are then of other sources)."""
    from hw.export import source_hash
    fitted, now = model.data.get("source_hash"), source_hash()
    if fitted == now:
        return None
    return (f"{os.path.relpath(_model_path(), os.getcwd())} was fitted on other gateware sources "
            f"(hash {str(fitted)[:12]}, now {now[:12]}): its engine part and held-out errors may be off; "
            f"`make dse-model` refits it (about an hour)")


def _model_path():
    from .resources import MODEL_PATH
    return MODEL_PATH
