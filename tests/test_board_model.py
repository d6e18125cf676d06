"""The board frame model (sw/boardmodel.py), the host work ledger (sw/ledger.py) and the board
benchmark (sw/boardbench.py): exact counts, exact cycle phases, the rates file's errors."""

import json
import os

import numpy as np
import pytest
import yaml

from models import QuantizedModel, load_network_config, random_frame_pairs, random_weights
import models.golden
from models.cycles import descriptor_cycles, list_cycles
from models.engine import EngineParams, SRC_FRAMES
from models.errors import ConfigError
from models.network import CONFIG_DIR, INPUT, NetworkConfig, build_layers, float_ends_config_path
from models.regmap import MAX_LAYER_COUNTERS
from sw import boardbench
from sw.backends.golden import GoldenTransport
from sw.boardmodel import (BoardRates, descriptor_phases, estimate_frame, fpga_layer, load_board_rates, phase_cycles,
                           price_work)
from sw.config import default_engine_params
from sw.ledger import WorkLedger, bilinear_work, derive_frame_work, flow_work, poll_schedule, total
from sw.program import Segment, compile_program
from sw.runtime import FlowRuntime

BASE = 0x2000_0000
PARAMS = default_engine_params()
#: The tiny float-ends network needs 8-lane groups (its conv2 has 16 channels, a concat member).
TINY_PARAMS = EngineParams(pe_count=8, simd_lanes=8, acc_bound=3 * 9 * 128, act_buffer_words=1024,
                           weight_buffer_words=128, max_burst=16, popcount_stages=1)
#: A small network that both divisions compile for a small engine: the frame-pair source needs
#: S = 32 or 64, and with S = 32 every space_to_depth source and concat member (conv1, conv2,
#: deconv2) needs a multiple of 32 channels.
SMALL = {"name": "lmflownet_small", "input": {"height": 16, "width": 24, "channels": 6}, "depth": 3,
         "channels": [32, 32, 32], "deconv_channels": {2: 32}, "ends": "quantized"}
SMALL_PARAMS = EngineParams(pe_count=8, simd_lanes=32, acc_bound=3 * 9 * 128, act_buffer_words=1024,
                            weight_buffer_words=128, max_burst=16, popcount_stages=1)
SMALL_HW = {"name": "test_p8_s32_small", "pe_count": 8, "simd_lanes": 32, "max_kernel": 3, "max_in_channels": 128,
            "pipeline": {"popcount_stages": 1}, "clock_mhz": 50,
            "engine": {"act_buffer_words": 1024, "weight_buffer_words": 128, "max_burst": 16}}
#: Rates of the arithmetic tests (not the shipped file, which may change).
RATES = {
    "name": "test",
    "arm": {"clock_mhz": 800, "profile": "numpy",
            "profiles": {"numpy": {"float_conv_gmac_s": 0.08, "matmul_loop_ns": 12, "float_elem_ns": 25,
                                   "elem_loop_ns": 40, "copy_elem_ns": 40, "byte_elem_ns": 4, "numpy_call_us": 8},
                         "fast": {"float_conv_gmac_s": 1, "matmul_loop_ns": 1, "float_elem_ns": 1, "elem_loop_ns": 1,
                                  "copy_elem_ns": 1, "byte_elem_ns": 1, "numpy_call_us": 1}},
            "memcpy_mb_s": 600, "device_memory": "uncached", "uncached_write_mb_s": 80,
            "uncached_read_mb_s": 50, "sync_call_us": 110, "mem_call_us": 15, "reg_access_us": 2,
            "sleep_overhead_us": 60},
    "f2sdram": {"read_mb_s": 980, "port_clock_mhz": 100, "write_mb_s": 1450, "write_fast_bytes": 131072,
                "write_sustained_mb_s": 330, "read_latency_cycles": 30, "derate": 1.0},
}


def _rates(**changes):
    return BoardRates.from_dict(RATES, source="test.yaml").with_(**changes) if changes else \
        BoardRates.from_dict(RATES, source="test.yaml")


def _tiny_cfg():
    return load_network_config(os.path.join(CONFIG_DIR, "lmflownet_tiny_float_ends.yaml"))


def _compiled(cfg, params):
    model = QuantizedModel(cfg, random_weights(cfg, seed=0))
    return model, compile_program(model, params, base=BASE)


@pytest.fixture(scope="module")
def tiny():
    """The tiny network, float ends."""
    return _compiled(_tiny_cfg(), TINY_PARAMS)


@pytest.fixture(scope="module")
def default():
    """The default network, float ends (``board.split``)."""
    return _compiled(load_network_config(float_ends_config_path()), PARAMS)


@pytest.fixture(scope="module")
def quantized():
    """The default network, quantized ends (the default configuration, ``board.quantized``)."""
    return _compiled(load_network_config(), PARAMS)


@pytest.fixture(scope="module")
def small():
    """The small network, quantized ends."""
    return _compiled(NetworkConfig.from_dict(SMALL), SMALL_PARAMS)


@pytest.fixture(scope="module")
def small_float():
    """The small network, float ends."""
    return _compiled(boardbench.with_ends(NetworkConfig.from_dict(SMALL), "float"), SMALL_PARAMS)


_FIXTURE_PARAMS = {"tiny": TINY_PARAMS, "default": PARAMS, "quantized": PARAMS, "small": SMALL_PARAMS,
                   "small_float": SMALL_PARAMS}


def _golden_busy(program, params, clock_hz=100e6):
    return {s.layers[0]: list_cycles([program.descriptors[n] for n in s.layers], params)[0] / clock_hz
            for s in program.schedule if isinstance(s, Segment)}


# -- the work ledger against an instrumented run -------------------------------------------

@pytest.mark.parametrize("which", ["tiny", "default", "small_float", "small", "quantized"])
def test_counted_work_matches_an_instrumented_run(which, request):
    """Both divisions: what the runtime reports to the ledger (and what went through the
    transport) is what derive_frame_work derives from the program."""
    model, _ = request.getfixturevalue(which)
    params = _FIXTURE_PARAMS[which]
    ledger = WorkLedger()
    runtime = FlowRuntime(model, GoldenTransport(params), params, ledger=ledger)
    frames, _ = random_frame_pairs(2, model.cfg.height, model.cfg.width, seed=3)
    result = runtime.run(frames)
    assert np.array_equal(result.flow, model.run(frames).flow)      # the ledger changes nothing
    derived = derive_frame_work(model.layers, runtime.program, _golden_busy(runtime.program, params))
    assert len(ledger.frames) == 2
    for counted in ledger.frames:
        assert counted.as_dict() == derived.as_dict()
    assert ledger.load.writes == {"program": runtime.program.size}
    assert sum(s.polls for s in derived.segments) > len(derived.segments)   # the busy time made it poll
    if model.cfg.quantized_ends:
        assert "input" not in derived.host and set(derived.host) == {"flow"}
        assert set(derived.writes) == {INPUT} and set(derived.reads) == {"predict_flow2"}
        assert len(derived.segments) == 1


def test_the_ledger_sees_a_tensor_read_back_for_inspection(tiny):
    model, _ = tiny
    ledger = WorkLedger()
    runtime = FlowRuntime(model, GoldenTransport(TINY_PARAMS), TINY_PARAMS, ledger=ledger)
    frames, _ = random_frame_pairs(1, model.cfg.height, model.cfg.width, seed=3)
    runtime.run(frames, keep_tensors=True)
    derived = derive_frame_work(model.layers, runtime.program, _golden_busy(runtime.program, TINY_PARAMS))
    assert set(ledger.frames[0].reads) == set(runtime.program.descriptors)
    assert ledger.frames[0].reads != derived.reads


def _bilinear_counts(n, h, w, c, f=4):
    """Hand count of upsample_flow_bilinear: per axis the edge padding (the axis' input and its
    two edge pixels written into a new array), one difference pass (one more than the input
    pixels) and two passes (*, +) per phase over the axis' output; no gather."""
    wide, out = n * h * w * f * c, n * h * f * w * f * c
    return {"float_elems": n * h * (w + 2) * c + n * h * (w + 1) * c + 2 * wide
            + n * (h + 2) * w * f * c + n * (h + 1) * w * f * c + 2 * out, "copy_elems": 0}


def test_exact_counts_of_the_tiny_network(tiny):
    model, program = tiny
    fw = derive_frame_work(model.layers, program, {"conv2": 50e-6, "cast_conv": 0.0})
    conv1 = fw.host["conv1"]
    # conv1: 8x12 pixels, 3x3, 24 -> 8 channels
    assert conv1["matmul"].macs == 8 * 12 * 9 * 24 * 8 == 165888
    assert conv1["matmul"].matmul_loops == 8 * 12 * 9 * 24
    assert conv1["im2col"].copy_elems == 10 * 14 * 24 + 8 * 12 * 9 * 24       # padding + patches
    assert conv1["space_to_depth"].copy_elems == 16 * 24 * 6
    assert conv1["batch_norm"].float_elems == 4 * 8 * 12 * 8 + 2 * 8
    assert total(fw.host["upsample_flow3"]).macs == 4 * 6 * 9 * 2 * 2
    assert fw.host["upsample_flow3"]["upsample"].copy_elems == 6 * (2 * 3 * 2)
    assert total(fw.host["predict_flow2"]).macs == 4 * 6 * 9 * 26 * 2
    assert fw.host["predict_flow2"]["dequantize"].float_elems == 3 * (4 * 6 * 26) + 26   # x, *, + bias
    assert fw.host["input"]["scale"].float_elems == 2 * 16 * 24 * 6
    # the flow: float64 value of the float32 output, float32 cast and scale, bilinear x4 (16 x 24)
    assert fw.host["flow"]["dequantize"].float_elems == 4 * 6 * 2
    assert fw.host["flow"]["scale"].float_elems == 2 * 4 * 6 * 2
    up = fw.host["flow"]["upsample"]
    assert {"float_elems": up.float_elems, "copy_elems": up.copy_elems} == _bilinear_counts(1, 4, 6, 2)
    # device memory: codes are one 16-bit word a pixel-group, raw accumulators 16 bits a lane,
    # padded to a whole 32-bit bus word (2 lanes)
    assert fw.writes == {"conv1": 8 * 12 * 2, "upsample_flow3": 4 * 6 * 2}
    assert fw.reads == {"predict_flow3": 2 * 3 * 2 * 2, "cast_conv": 4 * 6 * 26 * 2}
    assert set(fw.pack) == {"conv1", "upsample_flow3"} and set(fw.unpack) == {"predict_flow3", "cast_conv"}
    assert fw.unpack["cast_conv"].float_elems == 4 * 6 * 26            # the int32 cast of the stored lanes
    # registers: 6 writes, STATUS + polls + LAYERS_DONE + TOTAL_CYCLES + one LAYER_CYCLES per layer
    s1, s2 = fw.segments
    assert (s1.layers, s2.layers) == (["conv2", "conv3", "conv3_1", "predict_flow3", "deconv2"], ["cast_conv"])
    assert (s1.polls, s1.waits, s1.reg_writes, s1.reg_reads) == (3, 2, 6, 1 + 3 + 2 + 5)   # 0, 20, 60 us
    assert (s2.polls, s2.waits, s2.reg_reads) == (1, 0, 1 + 1 + 2 + 1)


def test_exact_counts_of_the_quantized_network(quantized):
    model, program = quantized
    fw = derive_frame_work(model.layers, program, {"conv1": 50e-6})
    # the frame pair goes down as the frame-pair image: zeros, the 6 bytes a pixel, tobytes
    assert fw.writes == {INPUT: 96 * 128 * 8} and fw.write_calls == {INPUT: 1}
    assert fw.pack[INPUT].byte_elems == 96 * 128 * 8 + 96 * 128 * 6 + 96 * 128 * 8
    assert fw.pack[INPUT].elem_loops == 96 * 128                     # 6 of 8 bytes a pixel: a loop each
    # predict_flow2's 2 x 4 planes of 16-bit accumulators, one 128-bit bus word a pixel
    assert fw.reads == {"predict_flow2": 24 * 32 * 8 * 2} and fw.read_calls == {"predict_flow2": 1}
    assert set(fw.unpack) == {"predict_flow2"} and fw.unpack["predict_flow2"].float_elems == 24 * 32 * 8
    # dequantize_planes: float64 cast, plane scales, product, sum over the planes, + bias
    n = 24 * 32 * 8
    assert fw.host["flow"]["dequantize"].float_elems == n + 8 + n + n + n // 4
    assert fw.host["flow"]["scale"].float_elems == 2 * 24 * 32 * 2
    up = fw.host["flow"]["upsample"]
    assert {"float_elems": up.float_elems, "copy_elems": up.copy_elems} == _bilinear_counts(1, 24, 32, 2)
    assert set(fw.host) == {"flow"} and total(fw.host["flow"]).macs == 0
    seg, = fw.segments
    assert seg.layers == [layer.name for layer in model.layers]
    assert (seg.polls, seg.waits, seg.reg_writes) == (3, 2, 6)
    assert seg.reg_reads == 1 + 3 + 2 + min(len(model.layers), MAX_LAYER_COUNTERS)


class _Counted(np.ndarray):
    """An array that counts the elements every numpy operation on it writes (:data:`_TALLY`):
    ufuncs (a reduction counts what it reads) and ``astype``; the gathers and the array
    constructors are counted by :class:`_CountingNumpy`."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [np.asarray(x) if isinstance(x, _Counted) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(np.asarray(x) if isinstance(x, _Counted) else x for x in kwargs["out"])
        out = getattr(ufunc, method)(*plain, **kwargs)
        counted = plain[0] if method == "reduce" else out
        _tally(counted, "float_elems" if np.asarray(counted).dtype.itemsize >= 4 else "byte_elems")
        if method == "reduce":           # over the last axis: one inner loop an output
            assert kwargs.get("axis") in (-1, plain[0].ndim - 1), kwargs
            _TALLY["elem_loops"] = _TALLY.get("elem_loops", 0) + int(np.size(out))
        else:
            _TALLY["elem_loops"] = _TALLY.get("elem_loops", 0) + _inner_loops(plain, out)
        return out.view(_Counted) if isinstance(out, np.ndarray) else out

    def astype(self, dtype, *args, **kwargs):
        out = np.asarray(self).astype(dtype, *args, **kwargs)
        _tally(out, "float_elems")
        return out.view(_Counted)

    def __setitem__(self, key, value):
        target = np.asarray(self)[key]
        value = np.broadcast_to(np.asarray(value), target.shape)
        _tally(target, "byte_elems" if target.dtype.itemsize == 1 else "float_elems")
        _TALLY["elem_loops"] = _TALLY.get("elem_loops", 0) + _inner_loops([value], target)
        np.asarray(self)[key] = value

    def tobytes(self, *args, **kwargs):
        _tally(self, "byte_elems")
        return np.asarray(self).tobytes(*args, **kwargs)


_TALLY = {}


def _inner_loops(operands, out):
    """Inner loops numpy's own iterator (``np.nditer`` with an external loop, K order) runs
    over ``operands`` and ``out``; 0 when it walks them as one run."""
    arrays = [x for x in operands if isinstance(x, np.ndarray) and x.ndim] + [out]
    loops = sum(1 for _ in np.nditer(arrays, flags=["external_loop", "zerosize_ok"], order="K"))
    return loops if loops > 1 else 0


def _tally(array, kind):
    _TALLY[kind] = _TALLY.get(kind, 0) + int(np.size(array))


class _CountingNumpy:
    """numpy, as models.golden sees it in the flow test: ``asarray`` counts a copy, ``take`` and
    ``concatenate`` a gather, ``arange`` its elements; every array it returns counts what is done
    with it."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def asarray(a, *args, **kwargs):
        out = np.asarray(a, *args, **kwargs)
        if not np.shares_memory(out, a):
            _tally(out, "float_elems")
        return out.view(_Counted)

    @staticmethod
    def take(a, *args, **kwargs):
        out = np.take(np.asarray(a), *(np.asarray(x) if isinstance(x, _Counted) else x for x in args), **kwargs)
        _tally(out, "copy_elems")
        return out.view(_Counted)

    @staticmethod
    def concatenate(arrays, *args, **kwargs):
        out = np.concatenate([np.asarray(a) for a in arrays], *args, **kwargs)
        _tally(out, "copy_elems")
        return out.view(_Counted)

    @staticmethod
    def empty(*args, **kwargs):
        return np.empty(*args, **kwargs).view(_Counted)

    @staticmethod
    def arange(*args, **kwargs):
        out = np.arange(*args, **kwargs)
        _tally(out, "float_elems")
        return out.view(_Counted)

    @staticmethod
    def zeros(*args, **kwargs):
        out = np.zeros(*args, **kwargs)
        _tally(out, "byte_elems" if out.dtype.itemsize == 1 else "float_elems")
        return out.view(_Counted)


def test_the_frame_pair_counts_are_the_numpy_code_s(quantized, monkeypatch):
    """frame_pair_work against what Program.pack_tensor of the network input writes
    (models.formats run on counting arrays)."""
    import models.formats
    _, program = quantized
    frames, _ = random_frame_pairs(1, 96, 128, seed=3)
    expected = program.pack_tensor(INPUT, frames[0])
    _TALLY.clear()
    monkeypatch.setattr(models.formats, "np", _CountingNumpy())
    packed = program.pack_tensor(INPUT, frames[0])
    monkeypatch.undo()
    assert packed == expected
    work = derive_frame_work(build_layers(load_network_config()), program, {"conv1": 0}).pack[INPUT]
    assert _TALLY == {"byte_elems": work.byte_elems, "elem_loops": work.elem_loops}


@pytest.mark.parametrize("which", ["tiny", "quantized"])
def test_the_flow_counts_are_the_numpy_code_s(which, request, monkeypatch):
    """flow_work against the elements the numpy code of flow_value + final_flow really writes
    and gathers (models.golden run on counting arrays), for both divisions."""
    model, program = request.getfixturevalue(which)
    pf2 = model.plans["predict_flow2"].layer
    shape = (1, pf2.height, pf2.width, pf2.c_out)
    rng = np.random.default_rng(0)
    if model.cfg.quantized_ends:
        tensor = rng.integers(-500, 500, size=shape).astype(np.int32)
    else:
        tensor = rng.standard_normal(shape).astype(np.float32)
    expected = model.final_flow(model.flow_value("predict_flow2", tensor))
    _TALLY.clear()
    monkeypatch.setattr(models.golden, "np", _CountingNumpy())
    flow = model.final_flow(model.flow_value("predict_flow2", tensor))
    monkeypatch.undo()
    assert np.array_equal(np.asarray(flow), expected) and flow.shape == (1, model.cfg.height, model.cfg.width, 2)
    modelled = total(flow_work(pf2, shape))
    assert {"copy_elems": 0, **_TALLY} == {"float_elems": modelled.float_elems, "copy_elems": modelled.copy_elems,
                                           "elem_loops": modelled.elem_loops}
    up = bilinear_work((1, pf2.height, pf2.width, 2))
    # every inner loop runs along a row of pixels, none along a pixel's channels: per channel at
    # most one an input row in each of the W pass' 2 + 2 * 4 passes and the H pass' 2 * 4, and
    # one a plane in each of the 6 others
    assert up.elem_loops <= 2 * (18 * pf2.height + 6)
    assert up.copy_elems == 0


def test_poll_schedule():
    assert poll_schedule(0.0, 20e-6, 1e-3) == (1, 0, 0.0)
    polls, waits, t = poll_schedule(50e-6, 20e-6, 1e-3)
    assert (polls, waits) == (3, 2) and t == pytest.approx(60e-6)
    polls, waits, t = poll_schedule(3.0e-3, 20e-6, 1e-3)               # 20, 60, ..., 2260, 3260 us
    assert (polls, waits) == (9, 8) and t == pytest.approx(3.26e-3)
    polls, waits, t = poll_schedule(50e-6, 20e-6, 1e-3, 1e-6, 10e-6)   # costs move the reads
    assert (polls, waits) == (3, 2) and t == pytest.approx(3e-6 + 2 * 10e-6 + 60e-6)


# -- the FPGA side ---------------------------------------------------------------------------

def _programs(default, tiny, quantized):
    d4cfg = load_network_config(os.path.join(CONFIG_DIR, "lmflownet_d4_96x128.yaml"))
    return [default[1], tiny[1], quantized[1], _compiled(d4cfg, PARAMS)[1]]


def test_phases_add_up_to_the_exact_cycle_model(default, tiny, quantized):
    seen = set()
    for program in _programs(default, tiny, quantized):
        for name, desc in program.descriptors.items():
            assert phase_cycles(descriptor_phases(desc)) == descriptor_cycles(desc), name
            assert phase_cycles(descriptor_phases(desc), latency=30) == descriptor_cycles(desc, latency=30), name
            seen.add((desc.kernel, desc.output_mode, desc.frames))
    assert {(1, 1, False), (3, 0, False), (3, 1, False), (3, 0, True), (1, 0, False)} <= seen


def test_a_port_of_two_words_a_cycle_costs_nothing(default, tiny, quantized):
    for program in _programs(default, tiny, quantized):
        bus = program.params.bus_bytes
        fast = _rates(read_mb_s=2 * bus * 100, write_mb_s=2 * bus * 100, write_sustained_mb_s=2 * bus * 100,
                      read_latency_cycles=8)
        for name, desc in program.descriptors.items():
            t = fpga_layer(desc, 100e6, fast)
            assert t["board_ms"] == pytest.approx(t["model_ms"], rel=1e-12, abs=1e-12), name
            assert t["cycles"] == descriptor_cycles(desc)


def test_a_slow_port_stretches_the_load_phases(default):
    _, program = default
    desc = program.descriptors["conv2"]                    # compute-bound tiles
    reg = desc.regions()
    bus = PARAMS.bus_bytes
    words = 2 + reg["src"][1] // bus + reg["weights"][1] // desc.tiles // bus + reg["thresholds"][1] // bus
    half = _rates(read_mb_s=bus * 100 / 2, read_latency_cycles=8)
    t = fpga_layer(desc, 100e6, half)
    assert t["memory_ms"] == pytest.approx(words / 100e6 * 1e3, rel=1e-9)
    assert t["read_bytes"] == reg["src"][1] + reg["weights"][1] + reg["thresholds"][1] + 32
    assert t["write_bytes"] == desc.tiles * desc.out_height * desc.out_width * bus      # one masked beat a tile
    # the tiles' reads and writes hide under their PE-array cycles: only the loads are longer
    assert t["compute_ms"] == pytest.approx(sum(c for c, _, _ in descriptor_phases(desc)["tiles"]) / 100e6 * 1e3,
                                            rel=1e-12)


def test_raw_writes_beyond_128_kb_are_priced_at_the_sustained_rate(default):
    _, program = default
    desc = program.descriptors["cast_conv"]
    t = fpga_layer(desc, 100e6, _rates())
    assert t["write_bytes"] == desc.regions()["dst"][1] == 24 * 32 * 200 * 2      # 194 channels padded to 200
    slow_part = (t["write_bytes"] - 131072) / 330e6
    assert t["board_ms"] > (131072 / 1450e6 + slow_part) * 1e3
    assert t["bound"] == "memory"


# -- the frame -------------------------------------------------------------------------------

def test_frame_is_the_sum_of_its_parts_and_the_pipeline_the_busier_side(tiny):
    model, program = tiny
    est = estimate_frame(model.layers, program, 50e6, _rates())
    parts = (sum(v["ms"] for v in est["arm"].values()) + sum(v["ms"] for v in est["transfers"].values())
             + sum(s["latency_ms"] for s in est["segments"]))
    assert est["frame_ms"] == pytest.approx(parts, abs=1e-3)
    assert est["period_ms"] == pytest.approx(max(est["arm_ms"], est["fpga_ms"]), abs=1e-4)
    assert est["fps"] == pytest.approx(1e3 / est["period_ms"], rel=1e-3)
    assert est["fpga_cycles"] == sum(list_cycles([program.descriptors[n] for n in s.layers], TINY_PARAMS)[0]
                                     for s in program.schedule if isinstance(s, Segment))
    assert est["notes"] and "50 MHz" in est["notes"][0]
    for s in est["segments"]:
        assert s["seen_ms"] >= s["fpga_ms"]


def test_prices_of_the_tiny_network(tiny):
    model, program = tiny
    est = estimate_frame(model.layers, program, 50e6, _rates())
    # conv1's product: 165,888 MACs at 0.08 GMAC/s, 20,736 loops of 12 ns, 768 outputs at 25 ns, 2 calls of 8 us
    expected = 165888 / 0.08e9 + 20736 * 12e-9 + 768 * 25e-9 + 2 * 8e-6
    assert est["arm"]["conv1"]["steps"]["matmul"] == pytest.approx(expected * 1e3, abs=1e-4)
    # a write: one call of 15 us, the packed bytes stored uncached at 80 MB/s (no copy before)
    assert est["transfers"]["write:conv1"]["ms"] == pytest.approx((15e-6 + 192 / 80e6) * 1e3, abs=1e-4)
    assert est["transfers"]["read:cast_conv"]["ms"] == pytest.approx((15e-6 + 1248 / 50e6) * 1e3, abs=1e-4)
    cached = estimate_frame(model.layers, program, 50e6, _rates(device_memory="cached_sync"))
    assert cached["transfers"]["write:conv1"]["ms"] == pytest.approx((15e-6 + 192 / 600e6 + 110e-6) * 1e3, abs=1e-4)
    assert cached["transfers"]["read:cast_conv"]["ms"] == pytest.approx((15e-6 + 1248 / 600e6 + 110e-6) * 1e3,
                                                                        abs=1e-4)
    fast = estimate_frame(model.layers, program, 50e6, _rates(profile="fast"))
    w = total(derive_frame_work(model.layers, program, {"conv2": 0, "cast_conv": 0}).host["conv1"])
    assert fast["arm"]["conv1"]["ms"] == pytest.approx(
        (w.macs + w.matmul_loops + w.float_elems + w.elem_loops + w.copy_elems + w.byte_elems + 1000 * w.calls) * 1e-6,
        abs=1e-4)
    assert w.elem_loops == 4 * 8 * 12                  # conv1's batch norm: 4 passes, an inner loop a pixel each
    assert price_work(w, _rates(profile="fast")) == pytest.approx(fast["arm"]["conv1"]["ms"] / 1e3, abs=1e-7)


def test_the_quantized_network_is_one_list_from_the_frame_pair(quantized):
    model, program = quantized
    assert all(layer.accel for layer in model.layers)
    assert [type(item) for item in program.schedule] == [Segment]
    assert program.descriptors["conv1"].src_format == SRC_FRAMES
    assert program.descriptors["conv1"].src_words * PARAMS.bus_bytes == 96 * 128 * 8
    est = estimate_frame(model.layers, program, 100e6, _rates())
    assert est["fpga_cycles"] == list_cycles([program.descriptors[x.name] for x in model.layers], PARAMS)[0]
    assert set(est["arm"]) == {"flow", f"pack:{INPUT}", "unpack:predict_flow2"}
    assert set(est["transfers"]) == {f"write:{INPUT}", "read:predict_flow2"}
    assert est["fpga_ms"] == est["segments"][0]["fpga_ms"]


def test_a_narrow_conv1_is_padded_on_the_host(default):
    model, program = default
    cfg8 = boardbench.with_conv1_width(model.cfg, 8)
    fw8 = derive_frame_work(build_layers(cfg8), program, {"conv2": 0, "cast_conv": 0})
    fw64 = derive_frame_work(model.layers, program, {"conv2": 0, "cast_conv": 0})
    assert total(fw8.host["conv1"]).macs * 8 == total(fw64.host["conv1"]).macs
    assert fw8.writes == fw64.writes
    # the 8 channels are copied into a zeroed 64-channel tensor, which is packed as conv1 at 64
    assert fw8.pack["conv1"].byte_elems == fw64.pack["conv1"].byte_elems + 48 * 64 * 64


# -- the rates file --------------------------------------------------------------------------

def test_the_shipped_rates_load():
    rates = load_board_rates()
    assert rates.profile == "numpy" and {"numpy", "blueoil", "tuned"} <= set(rates.profiles)
    assert rates.device_memory == "cached_sync"          # the de10nano backend's mapping of a u-dma-buf
    assert BoardRates.from_dict(rates.to_dict(), source=rates.source) == rates


def _write(tmp_path, data, name="rates.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def _bad(**where):
    data = json.loads(json.dumps(RATES))
    for key, value in where.items():
        node = data
        *parents, last = key.split(".")
        for p in parents:
            node = node[p]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    return data


@pytest.mark.parametrize("change, message", [
    ({"arm.profiles.numpy.float_elem_ns": -1}, r"arm\.profiles\.numpy\.float_elem_ns: must be a positive number, not -1"),
    ({"arm.profile": "fastest"}, r"arm\.profile: must be one of fast, numpy \(the entries of arm\.profiles\), not 'fastest'"),
    ({"arm.device_memory": "cached"}, r"arm\.device_memory: must be one of uncached, cached_sync, not 'cached'"),
    ({"arm.uncached_read_mb_s": KeyError}, r"arm\.uncached_read_mb_s: missing"),
    ({"arm.profiles.numpy.copy_elem_ns": KeyError}, r"arm\.profiles\.numpy\.copy_elem_ns: missing"),
    ({"arm.memcpy_mbs": 600}, r"arm\.memcpy_mbs: unknown key"),
    ({"f2sdram.derate": 2}, r"f2sdram\.derate: must be in \(0, 1\], not 2"),
    ({"f2sdram.write_fast_bytes": 1.5}, r"f2sdram\.write_fast_bytes: must be an integer >= 0, not 1\.5"),
    ({"f2sdram.read_mb_s": True}, r"f2sdram\.read_mb_s: must be a positive number, not True"),
    ({"f2sdram": "fast"}, r"f2sdram: must be a mapping"),
    ({"board": 1}, r"board: unknown key"),
])
def test_rates_errors_name_the_file_and_key(tmp_path, change, message):
    path = _write(tmp_path, _bad(**change))
    with pytest.raises(ConfigError, match=rf"^{path}: {message}"):
        load_board_rates(path)


def test_rates_file_errors(tmp_path):
    missing = str(tmp_path / "none.yaml")
    with pytest.raises(ConfigError, match=rf"^{missing}: cannot read board rates"):
        load_board_rates(missing)
    path = _write(tmp_path, "arm: [1, 2\n")
    with pytest.raises(ConfigError, match=rf"^{path}: not valid YAML") as e:
        load_board_rates(path)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"test\.yaml: clock: unknown rate"):
        _rates().with_(clock=1)


# -- the benchmark ---------------------------------------------------------------------------

def test_bench_writes_the_board_entries(tmp_path, capsys):
    out = tmp_path / "bench.json"
    out.write_text(json.dumps({"golden": {"kept": 1}}), encoding="utf-8")
    hw = _write(tmp_path, SMALL_HW, "hw.yaml")
    net = _write(tmp_path, SMALL, "small.yaml")
    assert boardbench.main(["--out", str(out), "--config", net, "--hw-config", hw]) == 0
    bench = json.loads(out.read_text(encoding="utf-8"))
    assert bench["golden"] == {"kept": 1}
    board = bench["board"]
    for key in ("split", "quantized"):
        entry = board[key]
        for k in ("frame_ms", "fps", "period_ms", "arm_ms", "fpga_ms", "arm", "fpga", "transfers", "segments",
                  "profiles", "memory", "notes", "network", "weights", "fpga_cycles"):
            assert k in entry, (key, k)
        assert entry["fps"] > 0 and entry["frame_ms"] > 0
        assert set(entry["profiles"]) == {"numpy", "blueoil", "tuned"}
        assert set(entry["memory"]) == {"uncached", "cached_sync"}
        assert entry["memory"][board["device_memory"]] == entry["profiles"]     # the rates file's mapping
        for summary in entry["profiles"].values():                      # the parts add up to the frame
            assert sum(summary["parts"].values()) == pytest.approx(summary["frame_ms"], abs=1e-3)
        assert entry["notes"] and "50 MHz" in entry["notes"][0]
    assert "float ends" in board["split"]["network"] and "quantized ends" in board["quantized"]["network"]
    assert {"conv1", "upsample_flow3", "predict_flow2"} <= set(board["split"]["arm"])
    assert set(board["split"]["fpga"]) == {"conv2", "conv3", "conv3_1", "predict_flow3", "deconv2", "cast_conv"}
    assert set(board["quantized"]["fpga"]) == {layer.name for layer in build_layers(NetworkConfig.from_dict(SMALL))}
    assert "conv1" not in board["quantized"]["arm"] and len(board["quantized"]["segments"]) == 1
    assert set(board["check"]["model_ms"]) == {"numpy", "blueoil", "tuned"}
    assert set(board["check"]["fpga_width"]) == {"32"}
    text = capsys.readouterr().out
    assert "board.split" in text and "board.quantized" in text


def test_the_two_divisions_of_a_network():
    quant, float_ = load_network_config(), load_network_config(float_ends_config_path())
    assert boardbench.divisions() == (float_, quant)
    assert boardbench.divisions(quant) == (float_, quant) == boardbench.divisions(float_)
    assert boardbench.with_ends(quant, "float") == float_ and boardbench.with_ends(float_, "quantized") == quant


def test_entries_refuse_the_wrong_division(default, quantized):
    model, program = default
    with pytest.raises(ConfigError, match=r"board\.quantized needs every layer on the accelerator; conv1, "
                                          r"upsample_flow3, predict_flow2 run on the host"):
        boardbench.quantized_entry(model, program, 100e6, _rates())
    qmodel, qprogram = quantized
    with pytest.raises(ConfigError, match=r"board\.split needs host layers \(ends: float\)"):
        boardbench.split_entry(qmodel, qprogram, 100e6, _rates())
    with pytest.raises(ConfigError, match=r"board\.check needs the float-ends division"):
        boardbench.check_entry(qmodel.cfg, PARAMS, 100e6, _rates())


def test_bench_reports_a_bad_rates_file_in_one_line(tmp_path, monkeypatch, capsys):
    path = _write(tmp_path, _bad(**{"arm.reg_access_us": 0}))
    monkeypatch.setattr("sys.argv", ["boardbench", "--out", str(tmp_path / "b.json"), "--rates", path])
    assert boardbench._run() == 2
    err = capsys.readouterr().err
    assert err == f"error: {path}: arm.reg_access_us: must be a positive number, not 0\n"
    assert not (tmp_path / "b.json").exists()


def test_calibrate_writes_a_rates_file_that_loads(tmp_path, monkeypatch):
    monkeypatch.setattr(boardbench, "measure_arm_rates", lambda repeat=5: {
        "float_conv_gmac_s": 1.5, "matmul_loop_ns": 2.0, "float_elem_ns": 0.5, "elem_loop_ns": 5.0, "copy_elem_ns": 1.0,
        "byte_elem_ns": 0.1, "numpy_call_us": 0.7, "memcpy_mb_s": 9000.0, "sleep_overhead_us": 60.0})
    out = tmp_path / "here.yaml"
    assert boardbench.main(["--calibrate", str(out)]) == 0
    rates = load_board_rates(out)
    assert rates.profile == "measured" and rates.conv_gmac_s == 1.5 and rates.memcpy_mb_s == 9000.0
    assert out.read_text(encoding="utf-8").startswith("# Board rates: ")


def test_bench_entry_point_reports_a_missing_network_in_one_line(tmp_path):
    import subprocess
    import sys
    missing = tmp_path / "missing.yaml"
    result = subprocess.run([sys.executable, "-m", "sw.boardbench", "--config", str(missing), "--out",
                             str(tmp_path / "bench.json")], capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "bench.json").exists()
