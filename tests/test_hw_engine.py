# amaranth: UnusedElaboratable=no
"""The convolution engine (hw/engine/) and its stream components in Amaranth's simulator, each
against models/: the decoder's fields and sizes, the validator's error codes, the loader's
frame-pair conversion, and whole descriptor lists whose memory image and per-layer cycles must
equal the functional model's and the cycle model's exactly."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.accelerator import Accelerator
from hw.engine import ConvEngine, DescriptorDecoder, Sequencer, Validator
from hw.engine.loader import thermometer_word
from hw.pe_array import PEArray
from hw.threshold import ThresholdUnit
from models.cycles import (DECODE_CYCLES, SEQUENCER_LATENCY, THRESHOLD_LATENCY, VALIDATE_CYCLES, descriptor_cycles,
                           pe_array_latency)
from models.engine import (DESCRIPTOR, ERR_ADDRESS, ERR_ALIGN, ERR_NONE, ERROR_NAMES, OP_CODES, SRC_FRAMES, Descriptor, EngineParams,
                           execute_program, row_stride, validate_descriptor)
from models.formats import frame_pair_codes, pack_frame_pair
from sim.accel_cases import build_case, describe_mismatch, random_layer
from sim.engine_sim import run_program

GOOD = dict(pe_count=8, simd_lanes=16, acc_bound=3 * 9 * 128, act_buffer_words=1024, weight_buffer_words=128)
SMALL = {
    16: EngineParams(pe_count=8, simd_lanes=16, acc_bound=3 * 9 * 128, act_buffer_words=512, weight_buffer_words=64,
                     popcount_stages=1, max_burst=8),
    32: EngineParams(pe_count=8, simd_lanes=32, acc_bound=3 * 9 * 128, act_buffer_words=512, weight_buffer_words=64,
                     popcount_stages=2, max_burst=16),
    64: EngineParams(pe_count=16, simd_lanes=64, acc_bound=3 * 9 * 128, act_buffer_words=512, weight_buffer_words=64,
                     popcount_stages=1, max_burst=16),
}


def test_init():
    e = ConvEngine(**GOOD)
    assert (e.pe_count, e.simd_lanes, e.bus_bits, e.mac_per_cycle, e.acc_bits) == (8, 16, 32, 128, 16)
    assert e.params.bus_bytes == 4


@pytest.mark.parametrize("change, error, match", [
    ({"pe_count": 4}, ValueError, "pe_count must be a power of two >= 8 that divides simd_lanes \\(16\\), not 4"),
    ({"pe_count": 24}, ValueError, "pe_count must be a power of two >= 8 that divides simd_lanes \\(16\\), not 24"),
    ({"pe_count": 32}, ValueError, "pe_count must be a power of two >= 8 that divides simd_lanes \\(16\\), not 32"),
    ({"simd_lanes": 24}, ValueError, "simd_lanes must be a power of two >= 8, not 24"),
    ({"popcount_stages": 5}, ValueError, "popcount_stages must be at most 4"),
    ({"act_buffer_words": 1000}, ValueError, "act_buffer_words must be a power of two, not 1000"),
    ({"weight_buffer_words": 0}, ValueError, "weight_buffer_words must be a positive integer, not 0"),
    ({"max_burst": "8"}, TypeError, "max_burst must be a positive integer, not '8'"),
    ({"acc_bound": -1}, ValueError, "acc_bound must be a positive integer, not -1"),
])
def test_init_wrong_params(change, error, match):
    with pytest.raises(error, match=match):
        ConvEngine(**dict(GOOD, **change))
    with pytest.raises(error, match=match):
        Accelerator(**dict(GOOD, **change))


# -- the latencies the cycle model adds up are the components' ---------------------------------------

def test_component_latencies_are_the_cycle_models():
    p = SMALL[32]
    assert Sequencer(params=p).latency == SEQUENCER_LATENCY
    assert Validator(params=p).latency == VALIDATE_CYCLES
    for stages in range(3):
        assert PEArray(pe_count=8, simd_lanes=32, acc_bound=p.acc_bound, popcount_stages=stages).latency \
            == pe_array_latency(stages)
    assert ThresholdUnit(channels=8, acc_bound=p.acc_bound).latency == THRESHOLD_LATENCY


# -- decoder and validator ----------------------------------------------------------------------------

def _fields(rng, params):
    """A random descriptor, biased to the edges: odd and zero sizes, frames, misaligned addresses."""
    op = int(rng.integers(0, 4)) if rng.random() < 0.1 else int(rng.integers(0, 3))
    frames = rng.random() < 0.25
    dims = lambda: int(rng.choice([0, 1, 2, 3, 4, 7, 8, 15, 16, 63, 64, 4095]) if rng.random() < 0.15
                       else 2 * rng.integers(1, 6))
    kernel = int(rng.choice([2, 0, 15])) if rng.random() < 0.1 else int(rng.choice([1, 3]))
    f = dict(kernel=kernel, input_op=op, output_mode=int(rng.integers(0, 2)),
             src_format=SRC_FRAMES if frames else 0, layer_id=int(rng.integers(0, 256)),
             src_height=dims(), src_width=dims(),
             src_channels=32 if frames and rng.random() < 0.8 else int(rng.choice([1, 16, 32, 64, 96, 200, 4095])),
             out_channels=int(rng.integers(0, 100)))
    bus = params.bus_bytes
    for key in ("src_addr", "weights_addr", "thresholds_addr", "dst_addr"):
        addr = int(rng.integers(0x2000, 0x8000) if rng.random() < 0.9 else rng.integers(0, 1 << 32)) // bus * bus
        if rng.random() < 0.05:
            addr += int(rng.integers(1, bus))
        f[key] = addr
    return f


def _run_validator(params, descs, window):
    dut = Module()
    dut.submodules.dec = dec = DescriptorDecoder(params=params)
    dut.submodules.val = val = Validator(params=params)
    dut.d.comb += [val.fields.eq(dec.fields), val.derived.eq(dec.derived)]
    got = []

    async def bench(ctx):
        ctx.set(val.window_base, window[0])
        ctx.set(val.window_limit, window[0] + window[1])
        for d in descs:
            ctx.set(dec.raw, int.from_bytes(d.to_bytes(), "little"))
            ctx.set(dec.load, 1)
            await ctx.tick()
            ctx.set(dec.load, 0)
            await ctx.tick().repeat(DECODE_CYCLES - 1)
            derived = ctx.get(dec.derived)
            ctx.set(val.start, 1)
            await ctx.tick()
            ctx.set(val.start, 0)
            for cycle in range(1, VALIDATE_CYCLES + 2):
                if ctx.get(val.done):
                    break
                await ctx.tick()
            got.append((cycle, ctx.get(val.error), derived, ctx.get(val.src_words), ctx.get(val.pixels)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("lanes", [16, 64])
def test_decoder_and_validator_agree_with_the_model(lanes):
    params = SMALL[lanes]
    rng = np.random.default_rng(lanes)
    window = (0x2000, 0x30000)
    descs = [Descriptor(_fields(rng, params), params) for _ in range(80)]
    got = _run_validator(params, descs, window)
    codes = set()
    for d, (cycles, error, derived, src_words, pixels) in zip(descs, got):
        expected = validate_descriptor(d, window)
        codes.add(expected)
        assert cycles == VALIDATE_CYCLES, d.fields
        assert error == expected, (f"validator says {ERROR_NAMES.get(error)}, the model {ERROR_NAMES[expected]} "
                                   f"for {d.fields}")
        if expected == ERR_NONE:
            assert (derived.ho, derived.wo, derived.gin, derived.n_tiles) == \
                (d.out_height, d.out_width, d.in_groups, d.tiles)
            assert (src_words, pixels) == (d.src_words, d.out_height * d.out_width)
            stored_w = d.out_width if d.frames else d.src_width
            assert 1 << derived.cb == row_stride(stored_w)
            assert derived.wwt == d.in_groups * d.kernel ** 2
    assert ERR_NONE in codes and len(codes) >= 7          # the draw reaches most error codes


# -- the loader's frame-pair conversion ---------------------------------------------------------------

@pytest.mark.parametrize("lanes", [32, 64])
def test_thermometer_word_is_frame_pair_codes(lanes):
    m = Module()
    word = Signal(2 * lanes)
    out = thermometer_word(m, word, lanes)
    out_sig = Signal(2 * lanes)
    m.d.comb += out_sig.eq(out)
    rng = np.random.default_rng(lanes)
    pixels = lanes // 32
    frames = rng.integers(0, 256, (16, pixels, 6), dtype=np.uint8)
    frames[0] = 255
    frames[1] = 0
    frames[2, :, :] = np.arange(6) * 16 + 15           # every bin edge
    image = pack_frame_pair(frames.reshape(16, pixels, 6))
    codes = frame_pair_codes(image)                       # (16, pixels, 32)

    async def bench(ctx):
        for row in range(16):
            ctx.set(word, int.from_bytes(image[row].tobytes(), "little"))
            value = ctx.get(out_sig)
            lanes_codes = codes[row].reshape(-1)
            for lane in range(lanes):
                got = (value >> lane & 1) | ((value >> (lanes + lane) & 1) << 1)
                assert got == lanes_codes[lane], (row, lane)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


# -- whole descriptor lists ----------------------------------------------------------------------------

def _check_run(params, layers, seed, window=None, write_stall=0.0):
    rng = np.random.default_rng(seed)
    base, size = 0x1000, 1 << 15
    image, desc_addr, descs, expected, (err, idx) = build_case(rng, params, layers, base, size)
    # a bounded run: twice the cycle model's count (a hang fails fast, not after millions of
    # cycles), more under write wait states
    budget = int(2 * sum(descriptor_cycles(d, params) for d in descs) / (1 - write_stall)) + 1000
    run = run_program(params, image, base, desc_addr, len(descs), window=window, max_cycles=budget,
                      write_stall=write_stall, seed=seed)
    label = "; ".join(layer.describe() for layer in layers)
    assert not run.outside, f"{label}: accesses outside the memory: {run.outside[:3]}"
    problem = describe_mismatch(expected, run.memory, descs, base, params)
    assert problem is None, f"{label}: {problem}"
    assert (run.error, run.layers_done) == (err, idx), label
    model = [descriptor_cycles(d, params) for d in descs[:idx]]
    if write_stall:
        # the model's memory has no wait states: a lower bound
        assert all(c >= m for c, m in zip(run.layer_cycles, model)) and len(run.layer_cycles) == len(model), \
            f"{label}: RTL cycles {run.layer_cycles} below the model's {model}"
    else:
        assert run.layer_cycles == model, f"{label}: RTL cycles {run.layer_cycles}, model {model}"
    return run


@pytest.mark.parametrize("lanes,seed", [(16, 1), (32, 2), (64, 3)])
def test_random_layers_bit_exact_and_cycle_exact(lanes, seed):
    params = SMALL[lanes]
    rng = np.random.default_rng(seed)
    layers = [random_layer(rng, params, max_hw=4, frames=(i == 0 and lanes in (32, 64))) for i in range(3)]
    _check_run(params, layers, seed)


def test_every_input_operation_and_output_mode():
    params = SMALL[16]
    rng = np.random.default_rng(7)
    layers = []
    for op in OP_CODES.values():
        for raw in (False, True):
            for _ in range(100):
                layer = random_layer(rng, params, max_hw=4, frames=False)
                if layer.op == op and layer.raw == raw:
                    layers.append(layer)
                    break
            else:
                raise AssertionError(f"no random layer with op {op}, raw {raw}")
    _check_run(params, layers, 8)


def test_a_list_stops_at_the_first_descriptor_outside_the_window():
    params = SMALL[16]
    rng = np.random.default_rng(9)
    layers = [random_layer(rng, params, max_hw=3, frames=False) for _ in range(2)]
    base, size = 0x1000, 1 << 15
    image, desc_addr, descs, expected, _ = build_case(rng, params, layers, base, size)
    # a window that ends inside the second layer's destination: the first layer runs, the second stops
    dst, nbytes = descs[1].regions()["dst"]
    window = (base, dst + nbytes - 1 - base)
    memory = np.concatenate([np.zeros(base, np.uint8), image.copy()])
    err, idx = execute_program(memory, desc_addr, 2, params, window)
    assert (err, idx) == (ERR_ADDRESS, 1)
    run = run_program(params, image, base, desc_addr, 2, window=window)
    assert (run.error, run.error_index, run.layers_done) == (ERR_ADDRESS, 1, 1)
    assert describe_mismatch(memory[base:], run.memory, descs, base, params) is None


def test_a_misaligned_list_stops_before_fetching():
    params = SMALL[16]
    run = run_program(params, np.zeros(4096, np.uint8), 0x1000, 0x1002, 3)
    assert (run.error, run.error_index, run.layers_done) == (ERR_ALIGN, 0, 0)
    assert not run.layer_cycles


def test_a_list_stops_at_a_descriptor_that_runs_past_the_window_end():
    """The second descriptor of a list starts inside the window and ends past it: the first layer
    runs, the second is refused before its fetch (ERROR at index 1), as models.engine does."""
    params = SMALL[16]
    rng = np.random.default_rng(11)
    layers = [random_layer(rng, params, max_hw=3, frames=False) for _ in range(2)]
    base = 0x1000
    image, desc_addr, descs, _, _ = build_case(rng, params, layers, base, 1 << 15)
    nbytes = DESCRIPTOR.nbytes
    half = params.bus_bytes                  # the part of the second descriptor inside the window
    listed = image[desc_addr - base:desc_addr - base + 2 * nbytes].copy()
    end = -(-len(image) // params.bus_bytes) * params.bus_bytes + nbytes
    image = np.concatenate([image, np.zeros(end - len(image), np.uint8)])
    start = end - nbytes - half              # first descriptor inside, second straddles the end
    image[start:start + nbytes + half] = listed[:nbytes + half]
    window = (base, end)
    memory = np.concatenate([np.zeros(base, np.uint8), image.copy(), np.zeros(nbytes, np.uint8)])
    err, idx = execute_program(memory, base + start, 2, params, window)
    assert (err, idx) == (ERR_ADDRESS, 1)
    run = run_program(params, image, base, base + start, 2, window=window)
    assert (run.error, run.error_index, run.layers_done) == (ERR_ADDRESS, 1, 1)
    assert describe_mismatch(memory[base:base + end], run.memory, descs, base, params) is None


def test_a_raw_layer_of_one_beat_a_pixel_waits_for_the_writer():
    """Raw 1x1 layers on one input group give one beat a pixel but two result words (P = 16):
    the sequencer's pace (``gap``) must hold each pixel until the writer has sent the last one."""
    params = SMALL[64]
    rng = np.random.default_rng(12)
    layers = []
    for _ in range(200):
        layer = random_layer(rng, params, max_hw=4, kernel=1, op=OP_CODES["identity"], raw=True, frames=False)
        if layer.signs.shape[2] <= params.simd_lanes and layer.signs.shape[3] > params.pe_count // 2:
            layers.append(layer)
            if len(layers) == 2:
                break
    assert len(layers) == 2, "no raw 1x1 layer on one input group was drawn"
    _check_run(params, layers, 13)


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "codes"])
def test_write_back_pressure_fills_the_fifo_and_loses_nothing(raw):
    """The memory refuses most writes (70 % wait states): the writer's FIFO fills, and only its
    credits keep the sequencer from issuing a pixel whose words would not fit. Raw layers of
    several words a pixel (P = 16 of 16-bit accumulators: two bus words) and codes layers."""
    params = SMALL[64]
    rng = np.random.default_rng(21 + raw)
    layers = []
    for _ in range(400):
        layer = random_layer(rng, params, max_hw=8, kernel=1, op=OP_CODES["identity"], raw=raw, frames=False)
        if layer.codes.shape[0] * layer.codes.shape[1] >= 40 and layer.signs.shape[3] > params.pe_count // 2:
            layers.append(layer)
            if len(layers) == 2:
                break
    assert len(layers) == 2, f"no {'raw' if raw else 'codes'} layer was drawn"
    run = _check_run(params, layers, 22 + raw, write_stall=0.7)
    assert sum(run.layer_cycles) > 0
