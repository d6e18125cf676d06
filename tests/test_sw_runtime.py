"""The host runtime and the driver on the golden backend, against the models/ full pass, for both
divisions of the network (float ends: three host layers; quantized ends: the frame pair in, one
descriptor list, predict_flow2's accumulators out)."""

import dataclasses

import numpy as np
import pytest

from models import QuantizedModel, load_network_config, random_weights
from models.engine import DESCRIPTOR, Descriptor, EngineParams
from models.errors import ConfigError
from models.formats import pack_frame_pair
from models.network import INPUT
from models.regmap import CTRL_START, ID_MAGIC, REG, REGMAP_BYTES, STATUS_BUSY, STATUS_START_IGNORED, VERSION
from sw.backends import BACKENDS, get_transport
from sw.backends.golden import GoldenTransport
from sw.config import default_engine_params
from sw.driver import Accelerator
from sw.errors import (AcceleratorError, AcceleratorTimeoutError, BackendError, TransportError,
                       UnknownBackendError)
from sw.program import HostLayer, Segment
from sw.runtime import FlowRuntime

from host_fixtures import frames, model  # noqa: F401  (shared fixtures)

PARAMS = default_engine_params()
#: The default engine with an activation buffer that holds conv1's frame-pair source of the fully
#: quantized network at 96x128 (2 groups x 48 rows x 64 words = 6144 words; the default has 4096).
QPARAMS = EngineParams(pe_count=32, simd_lanes=64, acc_bound=3 * 9 * 1024, act_buffer_words=8192,
                       weight_buffer_words=256)


@pytest.fixture(scope="module")
def qmodel():
    """The fully quantized network (the default configuration)."""
    cfg = load_network_config()
    return QuantizedModel(cfg, random_weights(cfg, seed=0))


@pytest.fixture(scope="module")
def reference(model, frames):
    return model.run(frames, keep_tensors=True)


@pytest.fixture(scope="module")
def qreference(qmodel, frames):
    return qmodel.run(frames, keep_tensors=True)


class CountingTransport(GoldenTransport):
    """The golden transport, counting the bytes the host writes and reads."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.written = self.read_bytes = 0

    def _mem_write(self, addr, data):
        self.written += len(data)
        super()._mem_write(addr, data)

    def _mem_read(self, addr, nbytes):
        self.read_bytes += nbytes
        return super()._mem_read(addr, nbytes)


@pytest.fixture(scope="module")
def runtime(model):
    return FlowRuntime(model, CountingTransport(PARAMS, cycle_model=lambda d: 1000 + 10 * d.layer_id), PARAMS)


@pytest.fixture(scope="module")
def qruntime(qmodel):
    return FlowRuntime(qmodel, CountingTransport(QPARAMS, cycle_model=lambda d: 1000 + 10 * d.layer_id), QPARAMS)


def test_default_engine_params():
    assert PARAMS == EngineParams(pe_count=64, simd_lanes=64, acc_bound=3 * 9 * 1024, act_buffer_words=8192,
                                  weight_buffer_words=256, popcount_stages=3)


@pytest.mark.parametrize("division", ["float", "quantized"])
def test_flow_and_every_tensor_match_the_golden_pass(request, division, frames):
    runtime = request.getfixturevalue("runtime" if division == "float" else "qruntime")
    reference = request.getfixturevalue("reference" if division == "float" else "qreference")
    result = runtime.run(frames, keep_tensors=True)
    assert result.flow.dtype == np.float32 and result.flow.shape == reference.flow.shape
    assert np.array_equal(result.flow, reference.flow)
    assert set(result.tensors) == set(reference.tensors)
    for name, expected in reference.tensors.items():
        assert result.tensors[name].dtype == expected.dtype, name
        assert np.array_equal(result.tensors[name], expected), name
    assert result.timings.frames == 2


def test_per_frame_work_is_only_the_frame(runtime, frames, reference):
    t = runtime.transport
    prog = runtime.program
    assert [type(s) for s in prog.schedule] == [HostLayer, Segment, HostLayer, Segment, HostLayer]
    t.written = t.read_bytes = 0
    starts = t.starts
    result = runtime.run(frames[1])
    assert np.array_equal(result.flow, reference.flow[1:])
    # Only the host-produced code tensors go down, only what the host layers need comes back.
    assert t.written == sum(prog.tensor_bytes(n)[1] for n in ("conv1", "upsample_flow3"))
    assert t.read_bytes == sum(prog.tensor_bytes(n)[1] for n in ("predict_flow3", "cast_conv"))
    assert t.starts - starts == 2                   # one start per segment
    timings = result.timings
    assert timings.float_s > 0 and timings.pack_s > 0 and timings.transfer_s > 0 and timings.accelerator_s > 0
    assert set(timings.layers_s) == {"conv1", "upsample_flow3", "predict_flow2"}
    assert timings.cycles == {name: 1000 + 10 * prog.descriptors[name].layer_id for name in prog.descriptors}


def test_quantized_ends_per_frame_work_is_the_frame_pair_and_the_flow(qruntime, frames, qreference):
    """Per frame: the frame-pair image down (a copy of the frames), one descriptor list of every
    layer, predict_flow2's raw accumulators back, the dequantization and the final upsampling."""
    t = qruntime.transport
    prog = qruntime.program
    assert [type(s) for s in prog.schedule] == [Segment]
    assert prog.schedule[0].layers == [layer.name for layer in qruntime.model.layers]
    assert prog.frames_input and prog.descriptors["conv1"].frames
    t.written = t.read_bytes = 0
    starts = t.starts
    result = qruntime.run(frames[1])
    assert np.array_equal(result.flow, qreference.flow[1:])
    assert t.written == 96 * 128 * 8 == prog.tensor_bytes(INPUT)[1]
    assert t.read_bytes == prog.tensor_bytes("predict_flow2")[1]
    assert t.starts - starts == 1
    addr, _ = prog.tensor_bytes(INPUT)
    image = np.frombuffer(t.mem_read(addr, 96 * 128 * 8), np.uint8).reshape(96, 128, 8)
    assert np.array_equal(image, pack_frame_pair(frames[1]))
    timings = result.timings
    assert timings.layers_s == {} and timings.float_s > 0 and timings.pack_s > 0 and timings.accelerator_s > 0
    assert timings.cycles == {name: 1000 + 10 * prog.descriptors[name].layer_id for name in prog.descriptors}


def test_quantized_ends_bad_descriptor_names_the_layer(qmodel, frames):
    rt = FlowRuntime(qmodel, GoldenTransport(QPARAMS), QPARAMS)
    seg = rt.program.schedule[0]
    bad = Descriptor(dict(rt.program.descriptors["upsample_flow3"].fields, kernel=5), QPARAMS).to_bytes()
    rt.driver.mem_write(rt.program.base + seg.desc_offset + 5 * DESCRIPTOR.nbytes, bad)
    with pytest.raises(AcceleratorError, match=r"accelerator error 'kernel' \(code 1\) at descriptor 5 of 9: "
                                               r"layer upsample_flow3 \(layer_id 5\)"):
        rt.run(frames[0])


def test_an_engine_too_small_for_the_quantized_conv1(qmodel):
    """conv1's frame-pair source, stored after space_to_depth, is 6144 activation-buffer words at
    96x128 on the 64-lane engine: the default configuration has 8192, one of 4096 is refused."""
    small = dataclasses.replace(PARAMS, act_buffer_words=4096)
    with pytest.raises(ConfigError, match=r"layer conv1 cannot run on this engine configuration: capacity error "
                                          r"\(P=64, S=64\): its source needs 6144 activation-buffer words "
                                          r"\(the design has 4096\)"):
        FlowRuntime(qmodel, GoldenTransport(small), small)


def test_constants_are_written_once(model):
    t = CountingTransport(PARAMS)
    rt = FlowRuntime(model, t, PARAMS)
    assert t.written == rt.program.size
    assert rt.program.base == t.arena[0]
    assert np.array_equal(t.memory[:rt.program.size], rt.program.constants)


def test_frames_of_the_wrong_shape(runtime):
    with pytest.raises(ValueError, match=r"frames must be \(N, 96, 128, 6\)"):
        runtime.run(np.zeros((48, 64, 6), np.uint8))
    with pytest.raises(ValueError, match="frames must be uint8, not float32"):
        runtime.run(np.zeros((96, 128, 6), np.float32))


# -- errors -------------------------------------------------------------------------------------

def test_a_bad_descriptor_names_the_layer(model, frames):
    rt = FlowRuntime(model, GoldenTransport(PARAMS), PARAMS)
    seg = rt.program.schedule[1]
    bad = Descriptor(dict(rt.program.descriptors["conv3_1"].fields, kernel=5), PARAMS).to_bytes()
    rt.driver.mem_write(rt.program.base + seg.desc_offset + 2 * DESCRIPTOR.nbytes, bad)
    with pytest.raises(AcceleratorError, match=r"accelerator error 'kernel' \(code 1\) at descriptor 2 of 5: "
                                               r"layer conv3_1 \(layer_id 3\)"):
        rt.run(frames[0])
    assert rt.driver.read("LAYERS_DONE") == 2


def test_a_descriptor_outside_the_window(model, frames):
    rt = FlowRuntime(model, GoldenTransport(PARAMS), PARAMS)
    seg = rt.program.schedule[3]
    fields = dict(rt.program.descriptors["cast_conv"].fields, dst_addr=rt.program.base + rt.program.size)
    rt.driver.mem_write(rt.program.base + seg.desc_offset, Descriptor(fields, PARAMS).to_bytes())
    with pytest.raises(AcceleratorError, match=r"'address' \(code 7\) at descriptor 0 of 1: layer cast_conv"):
        rt.run(frames[0])


def test_timeout(model, frames):
    t = GoldenTransport(PARAMS, cycle_model=lambda d: 10 ** 12)
    rt = FlowRuntime(model, t, PARAMS, timeout_s=0.5)
    with pytest.raises(AcceleratorTimeoutError, match=r"golden backend: timeout: .* did not finish conv2, .* "
                                                      r"within 0.5 s"):
        rt.run(frames[0])
    assert 0.5 <= t.now() < 0.51        # the virtual clock: polled until the deadline, no wall time


def test_busy_lasts_the_modelled_cycles():
    t = GoldenTransport(PARAMS, cycle_model=lambda d: 1000, clock_hz=1e6)
    drv = Accelerator(t, PARAMS)
    base, _ = t.arena
    desc = Descriptor(dict(kernel=1, input_op=0, output_mode=1, src_format=0, layer_id=9, src_height=2,
                           src_width=2, src_channels=64, out_channels=32, src_addr=base + 0x100,
                           weights_addr=base + 0x400, thresholds_addr=0, dst_addr=base + 0x800), PARAMS)
    t.mem_write(base, desc.to_bytes())
    drv.write("DESC_ADDR", base)
    drv.write("DESC_COUNT", 1)
    drv.write("WINDOW_BASE", base)
    drv.write("WINDOW_SIZE", 0x1000)
    drv.write("CTRL", CTRL_START.mask)
    assert STATUS_BUSY.get(drv.read("STATUS"))
    drv.write("CTRL", CTRL_START.mask)                   # start while busy: ignored and flagged
    assert STATUS_START_IGNORED.get(drv.read("STATUS")) and t.starts == 1
    t.wait(1e-3)                                         # 1000 cycles at 1 MHz
    status = drv.read("STATUS")
    assert not STATUS_BUSY.get(status) and status & REG["STATUS"].field("done").mask
    assert drv.read("TOTAL_CYCLES") == drv.read("LAYER_CYCLES0") == 1000 and drv.read("LAYERS_DONE") == 1
    drv.write("CTRL", CTRL_START.mask)
    with pytest.raises(AcceleratorError, match="golden backend: the accelerator is busy with another"):
        drv.run(base, 1, (base, 0x1000), names=["tiny"])


def test_an_ignored_start_is_reported():
    class Deaf(GoldenTransport):
        def _write_reg(self, offset, value):
            if offset == REG["CTRL"].offset and CTRL_START.get(value):
                self._start_ignored = True
            else:
                super()._write_reg(offset, value)

    t = Deaf(PARAMS)
    with pytest.raises(AcceleratorError, match="ignored the start of tiny"):
        Accelerator(t, PARAMS).run(t.arena[0], 1, t.arena, names=["tiny"])


def test_driver_runs_a_list_and_reads_the_counters():
    t = GoldenTransport(PARAMS, cycle_model=lambda d: 5000)
    drv = Accelerator(t, PARAMS)
    base, _ = t.arena
    desc = Descriptor(dict(kernel=3, input_op=0, output_mode=1, src_format=0, layer_id=4, src_height=4,
                           src_width=4, src_channels=64, out_channels=32, src_addr=base + 0x1000,
                           weights_addr=base + 0x2000, thresholds_addr=0, dst_addr=base + 0x4000), PARAMS)
    t.mem_write(base, desc.to_bytes() * 2)
    run = drv.run(base, 2, (base, 0x8000), names=["a", "b"])
    assert run.layers_done == 2 and run.total_cycles == 10000 and run.layer_cycles == {"a": 5000, "b": 5000}


def test_identity_mismatch():
    class Foreign(GoldenTransport):
        def _read_reg(self, offset):
            return 0x12345678 if offset == REG["ID"].offset else super()._read_reg(offset)

    with pytest.raises(AcceleratorError, match=r"no LMFlowNet accelerator: ID reads 0x12345678, "
                                               r"expected 0x4C4D464E"):
        Accelerator(Foreign(PARAMS), PARAMS)
    assert Accelerator(GoldenTransport(PARAMS), PARAMS).check().ident == ID_MAGIC


def test_version_mismatch():
    class Newer(GoldenTransport):
        def _read_reg(self, offset):
            return VERSION + (1 << 16) if offset == REG["VERSION"].offset else super()._read_reg(offset)

    major, minor = VERSION >> 16, VERSION & 0xFFFF
    with pytest.raises(AcceleratorError, match=rf"accelerator version {major + 1}\.{minor} is not compatible with "
                                               rf"the host's {major}\.{minor}"):
        Accelerator(Newer(PARAMS), PARAMS)


def test_configuration_mismatch(model):
    other = EngineParams(pe_count=32, simd_lanes=32, acc_bound=3 * 9 * 1024, act_buffer_words=8192,
                         weight_buffer_words=512)
    with pytest.raises(AcceleratorError, match=r"configuration P=32, S=32, acc_bits=16 does not match the "
                                               r"expected P=64, S=64, acc_bits=16"):
        FlowRuntime(model, GoldenTransport(other), PARAMS)


def test_out_of_arena_accesses_are_refused():
    t = GoldenTransport(PARAMS, arena_base=0x10000, arena_size=0x1000)
    for bad in (lambda: t.mem_read(0xFFFF, 2), lambda: t.mem_write(0x10FFF, b"ab"),
                lambda: t.mem_read(0x11000, 1), lambda: t.mem_read(0x10000, -1)):
        with pytest.raises(TransportError, match=r"golden: device memory access .* is outside the arena "
                                                 r"0x10000 .. 0x11000"):
            bad()
    t.mem_write(0x10FFE, b"ab")
    assert t.mem_read(0x10FFE, 2) == b"ab"
    for offset in (REGMAP_BYTES, 2, -4):
        with pytest.raises(TransportError, match="outside the register window"):
            t.read_reg(offset)
    with pytest.raises(TransportError, match="does not fit 32 bits"):
        t.write_reg(REG["DESC_ADDR"].offset, 1 << 32)
    t.close()
    with pytest.raises(TransportError, match="golden transport is closed"):
        t.read_reg(0)


def test_a_program_larger_than_the_arena(model):
    with pytest.raises(TransportError, match=r"the program needs 0x20000000 \+ \d+ bytes, outside the device "
                                             r"arena 0x20000000 .. 0x20010000"):
        FlowRuntime(model, GoldenTransport(PARAMS, arena_size=0x10000), PARAMS)


def test_golden_transport_parameters():
    with pytest.raises(ValueError, match="arena_size must be non-zero multiples of the bus word"):
        GoldenTransport(PARAMS, arena_size=100)
    with pytest.raises(ValueError, match="clock_hz must be a positive number, not 0"):
        GoldenTransport(PARAMS, clock_hz=0)
    with pytest.raises(ValueError, match="cycle_model must be a callable"):
        GoldenTransport(PARAMS, cycle_model=3)


def test_the_default_cycle_model_is_the_contracts():
    from models.cycles import descriptor_cycles
    desc = Descriptor(dict(kernel=1, input_op=0, output_mode=1, src_format=0, layer_id=3, src_height=2,
                           src_width=2, src_channels=64, out_channels=32, src_addr=0, weights_addr=0,
                           thresholds_addr=0, dst_addr=0), PARAMS)
    assert GoldenTransport(PARAMS).cycle_model(desc) == descriptor_cycles(desc, PARAMS) > 0
    assert GoldenTransport(PARAMS, cycle_model=None).cycle_model is None


# -- backends -----------------------------------------------------------------------------------

def test_unknown_backend():
    with pytest.raises(UnknownBackendError, match=r"unknown backend 'fpga' \(known: de10nano, golden, rtl\)"):
        get_transport("fpga", PARAMS)


def test_rtl_backend_missing_from_the_build(monkeypatch):
    monkeypatch.setitem(BACKENDS, "rtl", "sw.backends._not_built_rtl")
    with pytest.raises(BackendError, match="the rtl backend is not available in this build"):
        get_transport("rtl", PARAMS)


def test_a_backend_with_a_missing_dependency(monkeypatch):
    def fail(name, *a, **kw):
        raise ModuleNotFoundError("No module named 'some_simulator'", name="some_simulator")

    monkeypatch.setattr("importlib.import_module", fail)
    with pytest.raises(BackendError, match="the rtl backend cannot be loaded: No module named 'some_simulator'"):
        get_transport("rtl", PARAMS)


def test_golden_backend_by_name():
    t = get_transport("golden", PARAMS, arena_size=1 << 20)
    assert isinstance(t, GoldenTransport) and t.arena == (0x2000_0000, 1 << 20)
