"""The engine contract in models/: descriptors, validation, the functional model and the compiler."""

import numpy as np
import pytest

from models import QuantizedModel, load_network_config, random_frame_pairs, random_weights
from models.engine import (DESCRIPTOR, ERR_ADDRESS, ERR_ALIGN, ERR_CAPACITY, ERR_INPUT_OP, ERR_KERNEL, ERR_NONE,
                           ERR_OVERFLOW, ERR_SHAPE, Descriptor, EngineParams, execute_program, validate_descriptor)
from models.errors import ConfigError
from models.formats import pack_weights_tiled, unpack_weights_tiled
from models.regmap import REG, REGISTERS, REGMAP_BYTES
from sw.program import HostLayer, Segment, compile_program

PARAMS = EngineParams(pe_count=32, simd_lanes=64, acc_bound=3 * 9 * 1024, act_buffer_words=4096,
                      weight_buffer_words=256)


def desc(**kw):
    fields = dict(kernel=3, input_op=0, output_mode=0, reserved0=0, layer_id=1, src_height=8, src_width=8,
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
