"""The engine contract in models/: descriptors, validation, the functional model and the compiler."""

import numpy as np
import pytest

from models import QuantizedModel, load_network_config, random_frame_pairs, random_weights
from models.conv import conv_w1a2_direct
from models.engine import (DESCRIPTOR, ERR_ADDRESS, ERR_ALIGN, ERR_CAPACITY, ERR_FORMAT, ERR_INPUT_OP, ERR_KERNEL,
                           ERR_NONE, ERR_OVERFLOW, ERR_SHAPE, OUTPUT_RAW, SRC_FRAMES, Descriptor, EngineParams,
                           act_buffer_words_needed, execute_descriptor, execute_program, validate_descriptor)
from models.formats import frame_pair_codes, pack_frame_pair, unpack_accumulators
from models.ops import space_to_depth
from models.errors import ConfigError
from models.formats import pack_weights_tiled, unpack_weights_tiled
from models.regmap import REG, REGISTERS, REGMAP_BYTES
from sw.program import HostLayer, compile_program

PARAMS = EngineParams(pe_count=32, simd_lanes=64, acc_bound=3 * 9 * 1024, act_buffer_words=4096,
                      weight_buffer_words=256)


def desc(**kw):
    fields = dict(kernel=3, input_op=0, output_mode=0, src_format=0, layer_id=1, src_height=8, src_width=8,
                  src_channels=64, out_channels=32, src_addr=0x1000, weights_addr=0x2000,
                  thresholds_addr=0x8000, dst_addr=0x9000)
    fields.update(kw)
    return Descriptor(fields, PARAMS)


def test_descriptor_roundtrip():
    d = desc(layer_id=7, src_addr=0xDEADBEC0)
    data = d.to_bytes()
    assert len(data) == DESCRIPTOR.nbytes == 32
    assert Descriptor.from_bytes(data, PARAMS).fields == d.fields


@pytest.mark.parametrize("kw, err", [
    ({}, ERR_NONE),
    ({"kernel": 2}, ERR_KERNEL),
    ({"input_op": 3}, ERR_INPUT_OP),
    ({"src_height": 0}, ERR_SHAPE),
    ({"input_op": 1, "src_width": 7}, ERR_SHAPE),
    ({"input_op": 1, "src_channels": 96}, ERR_SHAPE),
    ({"src_height": 100, "src_width": 100}, ERR_CAPACITY),
    ({"src_channels": 2048}, ERR_CAPACITY),
    ({"src_channels": 1088, "src_height": 1, "src_width": 1}, ERR_OVERFLOW),
    ({"dst_addr": 0x9008}, ERR_ALIGN),
    ({"dst_addr": 0x100000}, ERR_ADDRESS),
    ({"src_addr": 0x0}, ERR_ADDRESS),
])
def test_validation(kw, err):
    assert validate_descriptor(desc(**kw), window=(0x1000, 0x10000)) == err


FRAMES = dict(input_op=1, src_format=SRC_FRAMES, src_channels=32, src_height=8, src_width=8)


@pytest.mark.parametrize("kw, err", [
    ({}, ERR_NONE),
    ({"input_op": 0}, ERR_FORMAT),
    ({"input_op": 2}, ERR_FORMAT),
    ({"src_channels": 64}, ERR_FORMAT),
    ({"src_width": 7}, ERR_SHAPE),
    ({"src_height": 200, "src_width": 200}, ERR_CAPACITY),
])
def test_frame_pair_validation(kw, err):
    assert validate_descriptor(desc(**dict(FRAMES, **kw)), window=(0x1000, 0x10000)) == err


def test_frame_pairs_need_32_or_64_lanes():
    wide = EngineParams(pe_count=32, simd_lanes=128, acc_bound=3 * 9 * 1024, act_buffer_words=4096,
                        weight_buffer_words=256)
    assert validate_descriptor(Descriptor(desc(**FRAMES).fields, wide)) == ERR_FORMAT


def test_frame_pair_regions_and_buffer():
    d = desc(**FRAMES)
    assert d.regions()["src"] == (0x1000, 8 * 8 * 8)             # 8 bytes a pixel
    assert (d.out_height, d.out_width, d.in_channels, d.in_groups) == (4, 4, 128, 2)
    assert act_buffer_words_needed(d) == 2 * 4 * 4                # stored after space_to_depth


@pytest.mark.parametrize("lanes", [32, 64])
def test_frame_pair_layer_on_the_functional_engine(lanes):
    """A frame-pair source computes conv(space_to_depth(thermometer codes)), per models.formats."""
    params = EngineParams(pe_count=32, simd_lanes=lanes, acc_bound=3 * 9 * 128, act_buffer_words=1024,
                          weight_buffer_words=64)
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (6, 10, 6), dtype=np.uint8)
    signs = np.where(rng.random((3, 3, 128, 40)) < 0.5, -1, 1).astype(np.int8)
    from models.formats import pack_weights_tiled
    memory = np.zeros(1 << 16, dtype=np.uint8)
    image = pack_frame_pair(frames).reshape(-1)
    memory[0x1000:0x1000 + image.size] = image
    wt = pack_weights_tiled(signs, 32, lanes).reshape(-1)
    memory[0x4000:0x4000 + wt.size] = wt
    d = Descriptor(dict(kernel=3, input_op=1, output_mode=OUTPUT_RAW, src_format=SRC_FRAMES, layer_id=0,
                        src_height=6, src_width=10, src_channels=32, out_channels=40, src_addr=0x1000,
                        weights_addr=0x4000, thresholds_addr=0, dst_addr=0x8000), params)
    assert validate_descriptor(d) == ERR_NONE
    acc = execute_descriptor(memory, d)
    expected = conv_w1a2_direct(space_to_depth(frame_pair_codes(frames), 2), signs)
    assert np.array_equal(acc, expected)
    addr, n = d.regions()["dst"]
    stored = unpack_accumulators(memory[addr:addr + n].reshape(3, 5, 64, params.acc_bits // 8), 40)
    assert np.array_equal(stored, expected)


def test_tiled_weights_roundtrip():
    rng = np.random.default_rng(0)
    signs = np.where(rng.random((3, 3, 100, 70)) < 0.5, -1, 1).astype(np.int8)
    packed = pack_weights_tiled(signs, 32, 64)
    assert packed.shape == (3, 2, 3, 3, 32, 8)
    assert np.array_equal(unpack_weights_tiled(packed, 100, 70), signs)
    assert not packed[2, :, :, :, 70 - 64:].any()     # padded output channels are all zero


def test_register_map_is_consistent():
    offsets = [r.offset for r in REGISTERS]
    assert len(set(offsets)) == len(offsets) and all(o % 4 == 0 for o in offsets)
    assert max(offsets) < REGMAP_BYTES
    assert REG["ID"].offset == 0


@pytest.fixture(scope="module")
def compiled():
    cfg = load_network_config()
    model = QuantizedModel(cfg, random_weights(cfg, seed=0))
    frames, _ = random_frame_pairs(1, cfg.height, cfg.width, seed=100)
    result = model.run(frames, keep_tensors=True)
    return model, result, compile_program(model, PARAMS, base=0x10000)


def test_compiled_program_on_the_functional_engine_matches_the_golden_pass(compiled):
    model, result, prog = compiled
    assert [type(s).__name__ for s in prog.schedule] == ["HostLayer", "Segment", "HostLayer", "Segment", "HostLayer"]
    assert prog.schedule[1].layers == ["conv2", "conv3", "conv3_1", "predict_flow3", "deconv2"]
    mem = np.zeros(prog.base + prog.size, dtype=np.uint8)
    mem[prog.base:] = prog.constants
    for item in prog.schedule:
        if isinstance(item, HostLayer):
            if item.name in prog.placements:
                addr, data = prog.pack_tensor(item.name, result.tensors[item.name][0])
                mem[addr:addr + len(data)] = np.frombuffer(data, np.uint8)
        else:
            assert execute_program(mem, prog.base + item.desc_offset, item.count, PARAMS, prog.window) \
                == (ERR_NONE, item.count)
    for name in prog.placements:
        addr, n = prog.tensor_bytes(name)
        assert np.array_equal(prog.unpack_tensor(name, mem[addr:addr + n]), result.tensors[name][0]), name


def test_concat_is_one_buffer(compiled):
    _, _, prog = compiled
    pl = {n: prog.placements[n] for n in ("conv2", "deconv2", "upsample_flow3")}
    assert {p.buffer for p in pl.values()} == {"concat:cast_conv"}
    assert pl["deconv2"].offset == 2 * 24 * 32 * 16 and pl["upsample_flow3"].offset == 3 * 24 * 32 * 16


def test_program_stops_at_a_bad_descriptor(compiled):
    model, result, prog = compiled
    mem = np.zeros(prog.base + prog.size, dtype=np.uint8)
    mem[prog.base:] = prog.constants
    seg = prog.schedule[1]
    bad = desc(kernel=5).to_bytes()
    a = prog.base + seg.desc_offset + 2 * DESCRIPTOR.nbytes
    mem[a:a + len(bad)] = np.frombuffer(bad, np.uint8)
    assert execute_program(mem, prog.base + seg.desc_offset, seg.count, PARAMS, prog.window) == (ERR_KERNEL, 2)


def test_compile_rejects_a_design_too_small():
    cfg = load_network_config()
    model = QuantizedModel(cfg, random_weights(cfg, seed=0))
    small = EngineParams(pe_count=32, simd_lanes=64, acc_bound=3 * 9 * 1024, act_buffer_words=1024,
                         weight_buffer_words=256)
    with pytest.raises(ConfigError, match="layer conv2 cannot run on this engine configuration: capacity"):
        compile_program(model, small)
    narrow = EngineParams(pe_count=32, simd_lanes=64, acc_bound=3 * 9 * 256, act_buffer_words=4096,
                          weight_buffer_words=256)
    with pytest.raises(ConfigError, match="conv3: accumulator bound 13824 exceeds the design's 6912"):
        compile_program(model, narrow)
