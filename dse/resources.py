"""Resource model of the accelerator, built from component syntheses.

Synthesizing a whole accelerator takes minutes a point on the project's 2-core machines, too
slow for a sweep. The model composes what synthesizes in seconds, and what needs none:

``PE array``
    :class:`hw.pe_array.PEArray` is P PEs around shared trees, linear in P: synthesized at
    :data:`ARRAY_PE_COUNTS` PEs for each (S, popcount stages, accumulator bound) a sweep needs,
    every LUT class, FFs and logic levels extrapolated linearly to P.
``threshold unit``
    :class:`hw.threshold.ThresholdUnit`, linear in its channels: synthesized likewise at
    :data:`ARRAY_PE_COUNTS` channels.
``block RAM``
    without synthesis: the memories of the elaborated accelerator (depth, width, write lanes)
    mapped to M10K blocks as the synthesis flow does (:func:`block_ram`: its ``memory_libmap``
    rule, each lane in the M10K shape with the fewest blocks, and Yosys's own rule for the
    small memories).
``engine and registers``
    the rest (control, address generators, buffer multiplexers, writer, register file): the
    whole accelerator's synthesis minus the parts above, fitted by least squares on the
    calibration points of the sweep file as linear in :data:`REST_FEATURES`; its logic levels
    are the largest seen in calibration.

Every synthesis is cached by component, configuration and source hash
(:func:`hw.export.source_hash`) under ``build/dse/synth/``; the fitted coefficients and the
held-out check (whole syntheses of points the fit did not see) are in
``dse/resource_model.json``, rebuilt by ``make dse-model`` (``python -m dse fit``) whenever
the gateware changes.
"""

from concurrent.futures import ProcessPoolExecutor, as_completed
import hashlib
import json
import math
import os
import time

import numpy as np

from models.board import DEVICE
from models.hwconfig import HardwareConfig

__all__ = ["ARRAY_PE_COUNTS", "LUT_CLASSES", "REST_FEATURES", "MODEL_PATH", "SYNTH_DIR", "M10K_SHAPES",
           "RULES_VERSION", "YOSYS_M10K_MIN_EFFICIENCY", "synth_cached", "component_keys", "m10k_blocks",
           "yosys_m10k_blocks", "memories", "block_ram", "ResourceModel", "fit"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_PATH = os.path.join(ROOT, "dse", "resource_model.json")
SYNTH_DIR = os.path.join(ROOT, "build", "dse", "synth")
#: PE counts (and threshold channels) the linear components are synthesized at.
ARRAY_PE_COUNTS = (8, 16)
#: The LUT classes of :func:`hw.synth.summarize` and the flip-flops: what the model predicts.
LUT_CLASSES = ("6", "5", "4", "3", "2", "1", "arith")
QUANTITIES = LUT_CLASSES + ("ffs",)
#: Version of the model's composition rules (part of every sweep point's cache key): bumped
#: when a rule that is not fitted (block RAM, the components' scaling) changes.
RULES_VERSION = 2
#: Features of the engine-and-registers part (besides a constant): what scales with the tile
#: (P: thresholds, writer, lane masks) and with the weight word (P * S: the weight buffer's read
#: and write paths). Not the bus width (2 * S, carried by the two): with it, four coefficients on
#: the five calibration points extrapolated to 64 x 64 at +19 % ALMs; without, +0.2 %.
REST_FEATURES = ("pe_count", "weight_word_bits")
#: M10K shapes (words x bits) the synthesis flow maps to (hw.synth.M10K_LIBRARY).
M10K_SHAPES = ((8192, 1), (4096, 2), (2048, 5), (1024, 10), (512, 20), (256, 40))


def _hw_dict(cfg):
    d = cfg.to_dict()
    d.pop("name")
    d.pop("clock_mhz")            # the clock target changes no gateware
    return d


def _key(component, cfg):
    from hw.export import source_hash
    text = json.dumps([component, _hw_dict(cfg), source_hash()], sort_keys=True)
    return f"{component}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def synth_cached(component, cfg):
    """:func:`hw.synth.synthesize` of a component, cached by configuration and source hash."""
    from hw.synth import synthesize
    key = _key(component, cfg)
    path = os.path.join(SYNTH_DIR, key + ".json")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError:
        pass
    report = synthesize(component, cfg, os.path.join(SYNTH_DIR, "work", key))
    os.makedirs(SYNTH_DIR, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    os.replace(tmp, path)
    return report


def _canonical(cfg, component, p):
    """The configuration a component is synthesized at: only what the component depends on
    (the PE array: S, popcount stages, accumulator bound; the threshold unit: the accumulator
    bound), so that points sharing them share the synthesis."""
    d = {"name": f"{component}_p{p}", "pe_count": p, "max_kernel": cfg.max_kernel,
         "max_in_channels": cfg.max_in_channels, "clock_mhz": 100}
    if component == "pe_array":
        d.update(simd_lanes=cfg.simd_lanes, pipeline={"popcount_stages": cfg.popcount_stages})
    else:
        d.update(simd_lanes=64, pipeline={"popcount_stages": 1})
    return HardwareConfig.from_dict(d)


def component_keys(cfg):
    """The component syntheses ``(component, configuration)`` the model needs for ``cfg``."""
    return [(component, _canonical(cfg, component, p)) for component in ("pe_array", "threshold")
            for p in ARRAY_PE_COUNTS]


def m10k_blocks(depth, lane_bits, lanes=1):
    """M10K blocks of a memory of ``depth`` words written in ``lanes`` lanes of ``lane_bits``:
    each lane is its own slice in the shape with the fewest blocks."""
    per_lane = min(math.ceil(lane_bits / w) * math.ceil(depth / d) for d, w in M10K_SHAPES)
    return lanes * per_lane


def memories(cfg):
    """``(path, depth, width, granularity)`` of every memory of the elaborated accelerator."""
    import warnings
    from amaranth.hdl import Fragment, Shape
    from amaranth.hdl._mem import MemoryInstance
    from hw.build import build_accelerator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frag = Fragment.get(build_accelerator(cfg), None)
    found = []

    def walk(f, path):
        if isinstance(f, MemoryInstance):
            width = Shape.cast(f._data.shape).width
            grains = [port._granularity for port in f._write_ports if port._granularity] or [width]
            found.append((path, f._data.depth, width, min(grains)))
        for sub, name, _ in f.subfragments:
            walk(sub, f"{path}/{name}")

    walk(frag, "")
    return found


#: Yosys's own M10K rule (``intel_alm/common/bram_m10k.txt``, ``min efficiency 5``): a memory the
#: synthesis flow leaves to it takes M10K blocks when it fills at least this share of them.
YOSYS_M10K_MIN_EFFICIENCY = 0.05


def yosys_m10k_blocks(depth, width):
    """M10K blocks Yosys's own rule gives a memory with one write enable (in the shape with the
    fewest blocks), 0 when it would fill less than :data:`YOSYS_M10K_MIN_EFFICIENCY` of them
    (MLAB or flip-flops then)."""
    blocks, d, w = min((math.ceil(width / w) * math.ceil(depth / d), d, w) for d, w in M10K_SHAPES)
    return blocks if depth * width >= YOSYS_M10K_MIN_EFFICIENCY * blocks * d * w else 0


def block_ram(cfg):
    """M10K blocks of the accelerator as the synthesis flow maps its memories: those of at least
    ``M10K_MIN_WORDS`` words one slice per write lane (:func:`m10k_blocks`), smaller ones written
    whole by Yosys's own rule (:func:`yosys_m10k_blocks`: the writer's 31 x 145 FIFO takes 4);
    smaller ones written in lanes are flip-flops."""
    from hw.synth import M10K_MIN_WORDS
    total = 0
    for _, depth, width, grain in memories(cfg):
        if depth >= M10K_MIN_WORDS:
            total += m10k_blocks(depth, grain, width // grain)
        elif grain == width:
            total += yosys_m10k_blocks(depth, width)
    return total


def _features(cfg):
    p = cfg.engine_params
    return {"bus_bits": p.bus_bits, "pe_count": p.pe_count, "weight_word_bits": p.pe_count * p.simd_lanes}


def _linear(reports, quantity, p):
    """A linear-in-P component's ``quantity`` at P, from its syntheses at ARRAY_PE_COUNTS."""
    (p0, r0), (p1, r1) = sorted(reports.items())
    v0, v1 = _value(r0, quantity), _value(r1, quantity)
    return v0 + (v1 - v0) * (p - p0) / (p1 - p0)


def _value(report, quantity):
    if quantity in LUT_CLASSES:
        return report["luts_by_inputs"][quantity]
    return report[quantity]


class ResourceModel:
    """The fitted model (see the module docstring); :meth:`load` reads ``dse/resource_model.json``."""

    def __init__(self, data):
        self.data = data
        self.rest = {q: np.array(data["rest"][q]) for q in QUANTITIES}
        self.rest_levels = data["rest_levels"]

    @classmethod
    def load(cls, path=None):
        """Raises ``FileNotFoundError`` (with the command that makes it) if there is none."""
        path = path or MODEL_PATH
        try:
            with open(path, encoding="utf-8") as f:
                return cls(json.load(f))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no resource model: run `make dse-model`") from None

    def components(self, cfg):
        """Predicted PE array and threshold unit (dict of quantities, ``logic_levels``)."""
        out = {}
        for component in ("pe_array", "threshold"):
            reports = {c.pe_count: synth_cached(name, c) for name, c in component_keys(cfg) if name == component}
            est = {q: _linear(reports, q, cfg.pe_count) for q in QUANTITIES}
            est["logic_levels"] = max(r["logic_levels"] for r in reports.values())
            out[component] = est
        return out

    def predict(self, cfg, m10k=None):
        """Predicted resources of the accelerator of ``cfg``: LUT classes, LUTs, FFs, M10K, ALM
        estimate (:func:`hw.de10nano.alm_estimate`), logic levels and whether it fits the
        device (:data:`models.board.DEVICE`)."""
        from hw.de10nano import alm_estimate
        parts = self.components(cfg)
        feats = _features(cfg)
        x = np.array([1.0] + [feats[f] for f in REST_FEATURES])
        total = {q: max(0.0, parts["pe_array"][q] + parts["threshold"][q] + float(x @ self.rest[q]))
                 for q in QUANTITIES}
        lut = {q: int(round(total[q])) for q in LUT_CLASSES}
        summary = {"luts_by_inputs": lut, "luts": sum(lut.values()), "ffs": int(round(total["ffs"])),
                   "m10k": block_ram(cfg) if m10k is None else m10k, "dsp": 0,
                   "logic_levels": max(parts["pe_array"]["logic_levels"], parts["threshold"]["logic_levels"],
                                       self.rest_levels)}
        alms = alm_estimate(summary)
        summary.update(alms)
        summary["fits"] = (alms["alm_estimate"] <= DEVICE["alms"] and summary["m10k"] <= DEVICE["m10k"])
        return summary


def _whole(cfg):
    return synth_cached("accelerator", cfg)


def _prefetch(jobs, tasks, progress=None):
    """Run ``synth_cached`` over (component, cfg) tasks in ``jobs`` processes."""
    if jobs <= 1:
        for task in tasks:
            synth_cached(*task)
            if progress:
                progress()
        return
    with ProcessPoolExecutor(jobs) as pool:
        futures = [pool.submit(synth_cached, *task) for task in tasks]
        for future in as_completed(futures):
            future.result()
            if progress:
                progress()


def fit(train, held_out, *, jobs=None, path=MODEL_PATH, log=print):
    """Fit the engine-and-registers part on whole syntheses of ``train`` and check the model on
    ``held_out`` (lists of :class:`~models.hwconfig.HardwareConfig`); writes ``path``.

    Returns
    -------
    dict
        The model file's content, with ``held_out`` errors per point and their summary.
    """
    from hw.de10nano import alm_estimate
    jobs = jobs or os.cpu_count() or 1
    start = time.perf_counter()
    tasks = []
    for cfg in list(train) + list(held_out):
        tasks += component_keys(cfg)
        tasks.append(("accelerator", cfg))
    unique = {}
    for component, cfg in tasks:
        unique[_key(component, cfg)] = (component, cfg)
    # Small syntheses first: the cache fills steadily and an interrupted fit keeps most of them.
    order = sorted(unique.values(), key=lambda t: t[1].pe_count * t[1].simd_lanes * (8 if t[0] == "accelerator" else 1))
    done = [0]

    def progress():
        done[0] += 1
        log(f"  synthesized {done[0]}/{len(order)} ({time.perf_counter() - start:.0f} s)")

    log(f"resource model: {len(order)} syntheses (cached ones are free), {jobs} in parallel")
    _prefetch(jobs, order, progress)

    tmp = ResourceModel({"rest": {q: [0.0] * (1 + len(REST_FEATURES)) for q in QUANTITIES}, "rest_levels": 0})
    rows, targets, levels = [], {q: [] for q in QUANTITIES}, []
    for cfg in train:
        whole = _whole(cfg)
        parts = tmp.components(cfg)
        feats = _features(cfg)
        rows.append([1.0] + [feats[f] for f in REST_FEATURES])
        for q in QUANTITIES:
            targets[q].append(_value(whole, q) - parts["pe_array"][q] - parts["threshold"][q])
        levels.append(whole["logic_levels"])
    a = np.array(rows)
    rest = {}
    for q in QUANTITIES:
        coef, *_ = np.linalg.lstsq(a, np.array(targets[q]), rcond=None)
        rest[q] = [float(c) for c in coef]
    data = {"rest": rest, "rest_levels": int(max(levels)), "features": ["1", *REST_FEATURES],
            "array_pe_counts": list(ARRAY_PE_COUNTS),
            "train": [_point_record(cfg, _whole(cfg)) for cfg in train]}
    model = ResourceModel(data)
    checks = []
    for cfg in held_out:
        whole = _whole(cfg)
        pred = model.predict(cfg)
        actual = dict(whole, **alm_estimate(whole))
        err = {q: _rel(pred[q], actual[q]) for q in ("luts", "ffs", "m10k", "alm_estimate")}
        err["logic_levels"] = pred["logic_levels"] - actual["logic_levels"]
        checks.append({**_point_record(cfg, whole), "predicted": {q: pred[q] for q in
                                                                 ("luts", "ffs", "m10k", "alm_estimate", "logic_levels")},
                       "error_pct": err})
    data["held_out"] = checks
    if checks:
        data["held_out_error_pct"] = {q: {"mean_abs": round(float(np.mean([abs(c["error_pct"][q]) for c in checks])), 2),
                                          "max_abs": round(float(np.max([abs(c["error_pct"][q]) for c in checks])), 2)}
                                      for q in ("luts", "ffs", "m10k", "alm_estimate")}
    from hw.export import source_hash
    data["source_hash"] = source_hash()
    data["fit_seconds"] = round(time.perf_counter() - start, 1)
    tmp_path = f"{path}.{os.getpid()}.tmp"
    with open(tmp_path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    os.replace(tmp_path, path)
    return data


def _rel(pred, actual):
    return round(100.0 * (pred - actual) / actual, 2) if actual else 0.0


def _point_record(cfg, whole):
    from hw.de10nano import alm_estimate
    return {"hardware": cfg.to_dict(), "luts": whole["luts"], "ffs": whole["ffs"], "m10k": whole["m10k"],
            "alm_estimate": alm_estimate(whole)["alm_estimate"], "logic_levels": whole["logic_levels"],
            "yosys_seconds": whole["yosys_seconds"]}


def config_from(base, overrides, source="<sweep>"):
    """A :class:`HardwareConfig` from a base configuration and sweep overrides (``pe_count``,
    ``simd_lanes``, ``popcount_stages``, ``clock_mhz``, ``act_buffer_words``,
    ``weight_buffer_words``, ``max_burst``)."""
    d = base.to_dict()
    engine = dict(d["engine"])
    for key, value in overrides.items():
        if key in ("act_buffer_words", "weight_buffer_words", "max_burst"):
            engine[key] = value
        elif key == "popcount_stages":
            d["pipeline"] = {"popcount_stages": value}
        else:
            d[key] = value
    d["engine"] = engine
    d["name"] = "p{pe_count}_s{simd_lanes}_a{a}_w{w}_c{st}_b{b}_{clk:g}mhz".format(
        pe_count=d["pe_count"], simd_lanes=d["simd_lanes"], a=engine["act_buffer_words"],
        w=engine["weight_buffer_words"], st=d["pipeline"]["popcount_stages"], b=engine["max_burst"],
        clk=d["clock_mhz"])
    return HardwareConfig.from_dict(d, source=source)
