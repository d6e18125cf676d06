"""The DE10-Nano board frame model's figures; ``python -m sw.boardbench --out build/bench.json``.

Writes the key ``board`` of the shared benchmark file (:func:`models.bench.update_bench`):

``board.split``
    The original division of work (float ends): conv1, upsample_flow3 and predict_flow2 on the
    ARM, the rest on the FPGA (:func:`sw.boardmodel.estimate_frame` on the compiled float-ends
    configuration), with the frame under every ARM profile of the rates file in ``profiles``
    and under both device-memory mappings in ``memory``.
``board.quantized``
    The fully quantized network (quantized ends, the default configuration): every layer on the
    FPGA in one descriptor list, the host packing the frame pair and assembling the flow from
    predict_flow2's raw accumulators; same keys.
``board.check``
    The model of the original work's own configuration (W1A2 body on the FPGA, float conv1 on
    the ARM at 64, 32, 16 and 8 channels) beside the original's DE10-Nano measurements.
``board.here`` (with ``--here``)
    The ARM rates measured on this machine and the model's host time with them beside the
    runtime's measured host time on the golden backend: a check of the ledger's counts and the
    pricing, on whatever machine runs it.

``--calibrate FILE`` measures the ARM rates on the machine it runs on and writes a rates file
(the given ``--rates`` with a ``measured`` profile selected): run it on the board and pass the
file back with ``--rates``.
"""

import argparse
import os
import platform
import statistics
import tempfile
import time

import numpy as np
import yaml

__all__ = ["ORIGINAL_MS", "main", "measure", "split_entry", "quantized_entry", "check_entry", "measure_arm_rates",
           "with_conv1_width", "with_ends", "divisions"]

#: The original work's DE10-Nano frame at 96x128 (ARM + FPGA, ms), by conv1 width.
ORIGINAL_MS = {64: 130.9, 32: 94.7, 16: 78.1, 8: 67.8}
#: The original work's all-float frame on the DE10-Nano's ARM (ms).
ORIGINAL_FLOAT_ARM_MS = 875.6


def _summary(est):
    """The headline figures of an estimate and its parts in ms: each ARM part, each transfer, each
    descriptor list's latency (``"list:<first layer>"``: FPGA, registers, the wait for the poll)."""
    keys = ("frame_ms", "fps", "period_ms", "fps_sequential", "arm_ms", "fpga_ms", "bottleneck")
    parts = {k: v["ms"] for k, v in est["arm"].items()}
    parts.update({k: v["ms"] for k, v in est["transfers"].items()})
    parts.update({f"list:{s['layers'][0]}": s["latency_ms"] for s in est["segments"]})
    return {**{k: est[k] for k in keys}, "parts": parts}


def with_conv1_width(cfg, width):
    """``cfg`` with conv1 ``width`` channels wide (validated)."""
    from models.network import NetworkConfig
    d = cfg.to_dict()
    d["channels"][0] = width
    d["name"] = f"{cfg.name}_conv1_{width}"
    return NetworkConfig.from_dict(d, source=cfg.source)


def with_ends(cfg, ends):
    """``cfg`` with the division ``ends`` (``"float"`` or ``"quantized"``; the quantized ends'
    parameters at their defaults when they are added), validated."""
    from models.network import ENDS_FLOAT, NetworkConfig
    d = cfg.to_dict()
    if d["ends"] == ends:
        return cfg
    d["ends"] = ends
    if ends == ENDS_FLOAT:
        for key in ("flow_codes", "flow_range", "predict_planes"):
            d.pop(key, None)
    return NetworkConfig.from_dict(d, source=cfg.source)


def divisions(cfg=None):
    """The two divisions of a network: ``(float ends, quantized ends)`` configurations. Without
    ``cfg`` the shipped files (``models.network.float_ends_config_path`` and the default
    configuration); with one, ``cfg`` and the same network in the other division
    (:func:`with_ends`)."""
    from models.network import ENDS_FLOAT, ENDS_QUANTIZED, float_ends_config_path, load_network_config
    if cfg is None:
        return load_network_config(float_ends_config_path()), load_network_config()
    return with_ends(cfg, ENDS_FLOAT), with_ends(cfg, ENDS_QUANTIZED)


def _program(cfg, params):
    """The runtime's compiled program of ``cfg`` (benchmark weights: the shipped ones where they
    fit, else random, :func:`models.bench.bench_weights`): ``(model, program, weights)``."""
    from models.bench import bench_weights
    from models.board import ARENA_BASE
    from models.golden import QuantizedModel

    from .program import compile_program
    weights, which = bench_weights(cfg)
    model = QuantizedModel(cfg, weights)
    return model, compile_program(model, params, base=ARENA_BASE), which


def _entry(model, program, clock_hz, rates, weights):
    from .boardmodel import DEVICE_MEMORY_MODES, estimate_frame
    est = estimate_frame(model.layers, program, clock_hz, rates)
    est["network"] = model.cfg.describe()
    est["config"] = _shown(model.cfg.source)
    est["weights"] = weights
    est["profiles"] = {name: _summary(estimate_frame(model.layers, program, clock_hz, rates.with_(profile=name)))
                       for name in rates.profiles}
    est["memory"] = {mode: {name: _summary(estimate_frame(model.layers, program, clock_hz,
                                                          rates.with_(profile=name, device_memory=mode)))
                            for name in rates.profiles}
                     for mode in DEVICE_MEMORY_MODES}
    return est


def _shown(source):
    from .boardmodel import shown_path
    return source if source.startswith("<") else shown_path(source)


def split_entry(model, program, clock_hz, rates, weights="?"):
    """``board.split``: the estimate of a compiled network with host layers (float ends), and the
    frame under every ARM profile and device-memory mapping.

    Raises
    ------
    models.errors.ConfigError
        If every layer of the network runs on the accelerator.
    """
    from models.errors import ConfigError
    if all(layer.accel for layer in model.layers):
        raise ConfigError(f"{model.cfg.source}: board.split needs host layers (ends: float); every layer of "
                          f"{model.cfg.name} runs on the accelerator")
    return _entry(model, program, clock_hz, rates, weights)


def quantized_entry(model, program, clock_hz, rates, weights="?"):
    """``board.quantized``: the estimate of a compiled network whose every layer runs on the
    accelerator (quantized ends).

    Raises
    ------
    models.errors.ConfigError
        If the network has host layers.
    """
    from models.errors import ConfigError
    host = [layer.name for layer in model.layers if not layer.accel]
    if host:
        raise ConfigError(f"{model.cfg.source}: board.quantized needs every layer on the accelerator; "
                          f"{', '.join(host)} run on the host")
    return _entry(model, program, clock_hz, rates, weights)


def _fit(points):
    """Least-squares line ``ms = a + b * width`` through ``{width: ms}``: ``(a, b)``."""
    x = np.array(list(points), dtype=float)
    y = np.array(list(points.values()), dtype=float)
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def check_entry(cfg, params, clock_hz, rates, widths=tuple(ORIGINAL_MS)):
    """``board.check``: the original's configuration (float conv1 of each width on the ARM, the
    W1A2 body on the FPGA) under every ARM profile, beside the original's measurements, and
    under ``original_rate``: Blueoil's glue rates with conv1 at the rate that the original's own
    64-to-8-channel difference implies (``original_conv1_gmac_s``).

    ``cfg`` is a float-ends configuration (conv1 on the host). The accelerator reads conv1's
    output in whole channel groups, so a conv1 narrower than the engine's lanes is zero-padded
    to them on the host: the FPGA program is the one of the padded width (the body's cycles do
    not change), the ARM's float work is the narrow one.

    Raises
    ------
    models.errors.ConfigError
        If ``cfg`` has quantized ends.
    """
    from models.errors import ConfigError
    from models.network import build_layers
    from .boardmodel import estimate_frame
    if cfg.quantized_ends:
        raise ConfigError(f"{cfg.source}: board.check needs the float-ends division (conv1 on the host), "
                          f"not ends: {cfg.ends}")
    lanes = params.simd_lanes
    programs = {}
    out = {"original_ms": {str(w): ORIGINAL_MS[w] for w in widths if w in ORIGINAL_MS},
           "original_float_arm_ms": ORIGINAL_FLOAT_ARM_MS, "model_ms": {}, "fit": {}, "fpga_width": {}}
    for w in widths:
        padded = -(-w // lanes) * lanes
        if padded not in programs:
            programs[padded] = _program(with_conv1_width(cfg, padded), params)[1]
        out["fpga_width"][str(w)] = padded

    def run(name, r):
        ms = {}
        for w in widths:
            layers = build_layers(with_conv1_width(cfg, w))
            ms[w] = estimate_frame(layers, programs[-(-w // lanes) * lanes], clock_hz, r)["frame_ms"]
        out["model_ms"][name] = {str(w): v for w, v in ms.items()}
        if len(ms) > 1:
            a, b = _fit(ms)
            out["fit"][name] = {"fixed_ms": round(a, 2), "ms_per_conv1_channel": round(b, 4)}

    for name in rates.profiles:
        run(name, rates.with_(profile=name))
    orig = {w: ORIGINAL_MS[w] for w in widths if w in ORIGINAL_MS}
    if len(orig) > 1:
        a, b = _fit(orig)
        out["fit"]["original"] = {"fixed_ms": round(a, 2), "ms_per_conv1_channel": round(b, 4)}
        macs_per_channel = next(layer for layer in build_layers(cfg) if layer.name == "conv1").macs / cfg.channels[0]
        implied = round(macs_per_channel / (b * 1e-3) / 1e9, 3)
        out["original_conv1_gmac_s"] = implied
        # the original's runtime was Blueoil's: its glue rates, conv1 at the rate its slope implies
        base = "blueoil" if "blueoil" in rates.profiles else rates.profile
        profiles = dict(rates.profiles)
        profiles["original_rate"] = {**rates.profiles[base], "float_conv_gmac_s": implied}
        run("original_rate", rates.with_(profiles=profiles, profile="original_rate"))
        out["original_rate_profile"] = {"glue": base, "float_conv_gmac_s": implied}
    return out


# -- rates measured on this machine --------------------------------------------------------

def _best(fn, repeat=5):
    """The shortest of ``repeat`` runs after a warm-up (the least disturbed by other work)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure_arm_rates(repeat=5):
    """The ARM profile's rates and the memcpy and sleep costs of the machine running this, measured
    with the shapes of the default network's host work.

    Returns
    -------
    dict
        ``float_conv_gmac_s`` (float64 matmul of conv1's im2col shape), ``matmul_loop_ns`` (what
        predict_flow2's 2-column product takes beyond that, per row and inner index), ``float_elem_ns`` (the
        median of the float passes the host layers make: a broadcast subtraction, a multiply, a
        floor, a cast), ``elem_loop_ns`` (what a product with a weight broadcast along the flow's
        last axis takes beyond one with the weight spread out, per inner loop), ``copy_elem_ns``
        (conv1's im2col), ``byte_elem_ns`` (shift, and, stack, packbits on
        uint8), ``numpy_call_us`` (a ufunc on a 1-element array), ``memcpy_mb_s`` (``bytes`` of a
        1 MiB buffer), ``sleep_overhead_us`` (``time.sleep(20e-6)`` beyond 20 us).
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3072, 216))
    b = rng.standard_normal((216, 64))
    conv = 3072 * 216 * 64 / _best(lambda: a @ b, repeat) / 1e9
    thin_a = rng.standard_normal((768, 1746))
    thin_b = rng.standard_normal((1746, 2))
    thin = _best(lambda: thin_a @ thin_b, repeat)
    loop_ns = max(thin - 768 * 1746 * 2 / (conv * 1e9), 0.0) / (768 * 1746) * 1e9
    from models.conv import _im2col
    y = rng.standard_normal((1, 48, 64, 24))
    copy_ns = _best(lambda: _im2col(y, 3), repeat) / (50 * 66 * 24 + 48 * 64 * 9 * 24) * 1e9
    x = rng.standard_normal((1, 48, 64, 64))
    m = rng.standard_normal(64)
    n = x.size
    passes = [lambda: x - m, lambda: x * 0.5, lambda: np.floor(x), lambda: x.astype(np.float32)]
    float_ns = statistics.median(_best(f, repeat) / n * 1e9 for f in passes)
    flow = rng.standard_normal((1, 96, 128, 2)).astype(np.float32)
    column = rng.standard_normal((128, 1)).astype(np.float32)
    spread = np.repeat(column, 2, axis=1)
    loop_gap = _best(lambda: flow * column, repeat) - _best(lambda: flow * spread, repeat)
    elem_loop_ns = max(loop_gap / (96 * 128) * 1e9, 0.01)
    u = rng.integers(0, 4, size=(48, 64, 128), dtype=np.uint8)
    nb = u.size
    bpasses = [lambda: u >> 1, lambda: u & 1, lambda: np.stack([u, u], axis=2),
               lambda: np.packbits(u.astype(bool), axis=-1)]
    byte_ns = statistics.median(_best(f, repeat) / (nb * (2 if i == 2 else 1)) * 1e9
                                for i, f in enumerate(bpasses))
    one = np.ones(1)
    call_us = _best(lambda: [np.add(one, one) for _ in range(1000)], repeat) / 1000 * 1e6
    buf = bytearray(1 << 20)
    memcpy = (1 << 20) / _best(lambda: bytes(buf), repeat) / 1e6
    sleep_us = max(_best(lambda: time.sleep(20e-6), repeat) * 1e6 - 20, 0.1)
    return {"float_conv_gmac_s": round(conv, 4), "matmul_loop_ns": round(loop_ns, 3), "float_elem_ns": round(float_ns, 3),
            "elem_loop_ns": round(elem_loop_ns, 3), "copy_elem_ns": round(copy_ns, 3),
            "byte_elem_ns": round(byte_ns, 3), "numpy_call_us": round(call_us, 3),
            "memcpy_mb_s": round(memcpy, 1), "sleep_overhead_us": round(sleep_us, 1)}


def _rates_with_measured(rates, measured):
    from .boardmodel import PROFILE_KEYS
    profiles = dict(rates.profiles)
    profiles["measured"] = {k: measured[k] for k in PROFILE_KEYS}
    return rates.with_(profiles=profiles, profile="measured", memcpy_mb_s=measured["memcpy_mb_s"],
                       sleep_overhead_us=measured["sleep_overhead_us"])


def write_rates(path, rates, header):
    """Write a rates file atomically (``header`` becomes its comment lines)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".rates-", suffix=".yaml", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for line in header:
            f.write(f"# {line}\n")
        yaml.safe_dump(rates.to_dict(), f, sort_keys=False)
    os.replace(tmp, path)


def here_entry(model, program, clock_hz, rates, params, measured=None, repeat=7):
    """``board.here``: ARM rates measured here (``measured``, else :func:`measure_arm_rates`);
    the model's host compute with them against the runtime's measured host compute (float
    layers, flow assembly, packing and unpacking) on the golden backend (the shortest of
    several runs)."""
    from models.generate import random_frame_pairs

    from .backends.golden import GoldenTransport
    from .boardmodel import estimate_frame
    from .runtime import FlowRuntime
    measured = measure_arm_rates() if measured is None else measured
    r = _rates_with_measured(rates, measured)
    est = estimate_frame(model.layers, program, clock_hz, r)
    frames, _ = random_frame_pairs(1, model.cfg.height, model.cfg.width, seed=100)
    with FlowRuntime(model, GoldenTransport(params), params) as rt:
        rt.run(frames)
        runs = [rt.run(frames).timings for _ in range(repeat)]
    measured_ms = min((t.float_s + t.pack_s) for t in runs) * 1e3
    layers_ms = {k: round(min(t.layers_s[k] for t in runs) * 1e3, 3) for k in runs[0].layers_s}
    model_ms = sum(v["ms"] for v in est["arm"].values())
    model_layers = {k: est["arm"][k]["ms"] for k in layers_ms}
    return {"machine": platform.machine(), "rates": measured,
            "model_host_ms": round(model_ms, 3), "measured_host_ms": round(measured_ms, 3),
            "model_layers_ms": model_layers, "measured_layers_ms": layers_ms,
            "ratio": round(model_ms / measured_ms, 3)}


# -- entry point ---------------------------------------------------------------------------

def measure(cfg=None, hw_config=None, rates_path=None, *, here=False, widths=tuple(ORIGINAL_MS)):
    """Every ``board`` entry for a network (default: the shipped D=3, 96x128 configurations of
    both divisions; a configuration of either division: it and the same network in the other,
    :func:`divisions`), a hardware configuration (name, path or ``None``) and a rates file."""
    from models.hwconfig import check_target, load_hw_config
    from .boardmodel import load_board_rates, shown_path
    hw = check_target(load_hw_config(hw_config), "accelerator")
    params, clock_hz = hw.engine_params, hw.clock_hz
    rates = load_board_rates(rates_path)
    float_cfg, quant_cfg = divisions(cfg)
    split_model, split_program, split_weights = _program(float_cfg, params)
    quant_model, quant_program, quant_weights = _program(quant_cfg, params)
    data = {"hw_config": hw.name, "rates": shown_path(rates.source), "profile": rates.profile,
            "device_memory": rates.device_memory,
            "split": split_entry(split_model, split_program, clock_hz, rates, split_weights),
            "quantized": quantized_entry(quant_model, quant_program, clock_hz, rates, quant_weights),
            "check": check_entry(float_cfg, params, clock_hz, rates, widths)}
    if here:
        measured = measure_arm_rates()
        data["here"] = {"split": here_entry(split_model, split_program, clock_hz, rates, params, measured),
                        "quantized": here_entry(quant_model, quant_program, clock_hz, rates, params, measured)}
    return data


def _table(data):
    lines = []
    rates = data["split"]["rates"]
    lines.append(f"DE10-Nano board frame model ({data['hw_config']}, {data['split']['clock_mhz']:g} MHz; rates "
                 f"{data['rates']}, ARM profile {rates['profile']}, device memory "
                 f"{rates['device_memory']})")
    lines.append(f"  {'':34s} {'frame ms':>9s} {'fps':>8s} {'ARM ms':>9s} {'FPGA ms':>8s}  bottleneck")
    for key in ("split", "quantized"):
        e = data[key]
        lines.append(f"  board.{key:28s} {e['frame_ms']:9.2f} {e['fps']:8.2f} {e['arm_ms']:9.2f} "
                     f"{e['fpga_ms']:8.3f}  {e['bottleneck']}  ({e['network']}, {e['weights']})")
        for mode, profiles in e["memory"].items():
            for name, p in profiles.items():
                if (name, mode) != (rates["profile"], rates["device_memory"]):
                    lines.append(f"    {name + ', ' + mode:32s} {p['frame_ms']:9.2f} {p['fps']:8.2f} "
                                 f"{p['arm_ms']:9.2f} {p['fpga_ms']:8.3f}  {p['bottleneck']}")
    for key in ("split", "quantized"):
        e = data[key]
        lines.append(f"  board.{key} parts (ms):")
        parts = [(k, v["ms"]) for k, v in e["arm"].items()] + [(k, v["ms"]) for k, v in e["transfers"].items()]
        parts += [(f"segment {s['layers'][0]}..{s['layers'][-1]}", s["latency_ms"]) for s in e["segments"]]
        for k, ms in parts:
            lines.append(f"    {k:32s} {ms:9.3f}")
        lines.append(f"    FPGA by layer ({e['fpga_cycles']:,} cycles in all): "
                     + ", ".join(f"{k} {v['board_ms']:.3f} ({v['cycles']:,} cycles)" for k, v in e["fpga"].items()))
        for note in e.get("notes", []):
            lines.append(f"    note: {note}")
    c = data["check"]
    profiles = list(c["model_ms"])
    lines.append("  board.check: the original's configuration (float conv1 on the ARM), frame ms")
    lines.append(f"    {'conv1 ch':>8s} {'original':>9s} " + " ".join(f"{p:>13s}" for p in profiles))
    for w in c["fpga_width"]:
        orig = c["original_ms"].get(w)
        lines.append(f"    {w:>8s} {orig if orig is not None else '-':>9} "
                     + " ".join(f"{c['model_ms'][p][w]:13.1f}" for p in profiles))
    for name, f in c["fit"].items():
        lines.append(f"    fit {name:13s} {f['fixed_ms']:8.1f} ms + {f['ms_per_conv1_channel']:.3f} ms per conv1 channel")
    for key, h in data.get("here", {}).items():
        lines.append(f"  board.here.{key} ({h['machine']}): model host {h['model_host_ms']:.2f} ms, measured "
                     f"{h['measured_host_ms']:.2f} ms (ratio {h['ratio']:.2f})")
    if "here" in data:
        lines.append(f"    rates measured here: {next(iter(data['here'].values()))['rates']}")
    return "\n".join(lines)


def main(argv=None):
    from models.bench import update_bench
    from models.network import load_network_config
    from .boardmodel import load_board_rates

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/bench.json")
    parser.add_argument("--config", default=None, help="network configuration YAML (default: D=3, 96x128)")
    parser.add_argument("--hw-config", default=None, help="hardware configuration (name or path; default: default)")
    parser.add_argument("--rates", default=None, help="board rates YAML (default: models/configs/board/de10nano.yaml)")
    parser.add_argument("--here", action="store_true",
                        help="also measure the ARM rates on this machine and check the model against the runtime")
    parser.add_argument("--calibrate", metavar="FILE", default=None,
                        help="measure the ARM rates on this machine, write them as a rates file and stop")
    args = parser.parse_args(argv)

    if args.calibrate:
        rates = load_board_rates(args.rates)
        measured = measure_arm_rates()
        r = _rates_with_measured(rates, measured)
        write_rates(args.calibrate, r, [f"Board rates: {rates.source} with the ARM rates measured on "
                                        f"{platform.node()} ({platform.machine()}) by python -m sw.boardbench "
                                        f"--calibrate on {time.strftime('%Y-%m-%d')}: {measured}"])
        print(f"measured on {platform.machine()}: {measured}")
        print(f"written to {args.calibrate} (profile 'measured'); use it with --rates {args.calibrate}")
        return 0
    cfg = load_network_config(args.config)
    data = measure(cfg, args.hw_config, args.rates, here=args.here,
                   widths=tuple(ORIGINAL_MS) if args.config is None else (cfg.channels[0],))
    update_bench(args.out, "board", data)
    print(_table(data))
    print(f"written to {args.out} under 'board'")
    return 0


def _run():
    """Entry point: a bad configuration or rates file gives one line and exit status 2."""
    import sys
    from models.errors import LMFlowError
    try:
        return main()
    except LMFlowError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(_run())
