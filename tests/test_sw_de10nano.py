"""The DE10-Nano transport on fake device files: mappings, bounds checks, error messages, the
cached u-dma-buf path and its syncs, and the whole host over an emulated board
(``tests/fake_board.py``)."""

import os

import numpy as np
import pytest

from fake_board import UDMABUF_PHYS, EmulatedDE10Nano, FakeBoard
from models import QuantizedModel, random_frame_pairs
from models.pretrained import load_default_weights
from models.regmap import REG, REGMAP_BYTES
from sw.backends import get_transport
from sw.backends.de10nano import DE10NanoTransport
from sw.config import default_engine_params
from sw.driver import Accelerator
from sw.errors import AcceleratorError, DeviceUnavailableError, TransportError
from sw.runtime import FlowRuntime

BRIDGE = 0x2000
DDR = 0x10000
DDR_SIZE = 0x8000


@pytest.fixture
def board(tmp_path):
    """Paths of a fake board: device-tree model and a /dev/mem file covering bridge and DDR."""
    model = tmp_path / "model"
    model.write_bytes(b"Terasic DE10-Nano\0")
    mem = tmp_path / "mem"
    with open(mem, "wb") as f:
        f.truncate(DDR + DDR_SIZE)
    return dict(model_file=str(model), mem_device=str(mem), bridge_base=BRIDGE, ddr_base=DDR, ddr_size=DDR_SIZE,
                udmabuf_class=str(tmp_path / "sys"), dev_dir=str(tmp_path / "dev"))


def file_bytes(path, offset, n):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(n)


def test_registers_are_words_on_the_bridge(board):
    with DE10NanoTransport(component_offset=0x100, **board) as t:
        t.write_reg(REG["DESC_ADDR"].offset, 0x12345678)
        assert file_bytes(board["mem_device"], BRIDGE + 0x100 + REG["DESC_ADDR"].offset, 4) == b"\x78\x56\x34\x12"
        assert t.read_reg(REG["DESC_ADDR"].offset) == 0x12345678
        assert t.read_reg(REG["ID"].offset) == 0


def test_memory_is_the_ddr_region(board):
    with DE10NanoTransport(**board) as t:
        assert t.arena == (DDR, DDR_SIZE) and t.memory_source == board["mem_device"]
        t.mem_write(DDR + 0x40, b"abc")
        assert file_bytes(board["mem_device"], DDR + 0x40, 3) == b"abc"
        assert t.mem_read(DDR + 0x3F, 5) == b"\0abc\0"


def test_every_access_is_bounds_checked(board):
    with DE10NanoTransport(**board) as t:
        for bad in (lambda: t.mem_read(DDR - 1, 2), lambda: t.mem_write(DDR + DDR_SIZE - 1, b"ab"),
                    lambda: t.mem_read(DDR + DDR_SIZE, 1)):
            with pytest.raises(TransportError, match=r"de10nano: device memory access .* outside the arena "
                                                     r"0x10000 .. 0x18000"):
                bad()
        for offset in (REGMAP_BYTES, 0x1E, -4):
            with pytest.raises(TransportError, match="outside the register window"):
                t.read_reg(offset)
    with pytest.raises(TransportError, match="de10nano transport is closed"):
        t.mem_read(DDR, 1)
    t.close()                                   # idempotent


def test_udmabuf_is_preferred(board, tmp_path):
    sysfs = tmp_path / "sys" / "udmabuf0"
    sysfs.mkdir(parents=True)
    (sysfs / "phys_addr").write_text("0x30000000\n")
    (sysfs / "size").write_text("65536\n")
    (tmp_path / "dev").mkdir()
    dev = tmp_path / "dev" / "udmabuf0"
    with open(dev, "wb") as f:
        f.truncate(65536)
    kw = dict(board, ddr_base=None, ddr_size=None)
    with DE10NanoTransport(**kw) as t:
        assert t.arena == (0x3000_0000, 65536) and t.memory_source == str(dev)
        t.mem_write(0x3000_0008, b"x")
        assert file_bytes(dev, 8, 1) == b"x"
    with DE10NanoTransport(**dict(kw, ddr_size=4096)) as t:
        assert t.arena == (0x3000_0000, 4096)
    with DE10NanoTransport(**dict(kw, udmabuf=None, ddr_base=DDR, ddr_size=DDR_SIZE)) as t:   # explicit /dev/mem region
        assert t.memory_source == board["mem_device"]


def test_not_on_the_board(board, tmp_path):
    with pytest.raises(DeviceUnavailableError, match=r"not running on a DE10-Nano \(.*absent not found\); use --backend golden"):
        DE10NanoTransport(**dict(board, model_file=str(tmp_path / "absent")))
    (tmp_path / "pi").write_bytes(b"Raspberry Pi 4 Model B\0")
    with pytest.raises(DeviceUnavailableError, match=r"says 'Raspberry Pi 4 Model B'\); use --backend golden"):
        DE10NanoTransport(**dict(board, model_file=str(tmp_path / "pi")))
    with pytest.raises(DeviceUnavailableError, match=r"absent not found: not running on the board"):
        DE10NanoTransport(**dict(board, mem_device=str(tmp_path / "absent")))


def test_permission_denied(board):
    def opener(path, flags):
        raise PermissionError(13, "Permission denied", path)

    with pytest.raises(DeviceUnavailableError, match=r"permission denied opening .*mem for the accelerator "
                                                     r"registers \(run as root"):
        DE10NanoTransport(open_fn=opener, **board)


def test_parameters_are_checked(board):
    with pytest.raises(ValueError, match="component_offset must be a multiple of 4"):
        DE10NanoTransport(component_offset=2, **board)
    with pytest.raises(ValueError, match="ddr_size must be an integer >= 1, not 0"):
        DE10NanoTransport(**dict(board, ddr_size=0))


def test_the_driver_runs_over_it(board):
    with DE10NanoTransport(**board) as t:
        with pytest.raises(AcceleratorError, match=r"de10nano backend: no LMFlowNet accelerator: ID reads "
                                                   r"0x00000000"):
            Accelerator(t, default_engine_params())


@pytest.mark.skipif(os.path.exists("/proc/device-tree/model")
                    and b"DE10" in open("/proc/device-tree/model", "rb").read(), reason="on the board")
def test_off_the_board_by_name():
    with pytest.raises(DeviceUnavailableError, match="de10nano backend: "):
        get_transport("de10nano", default_engine_params())


# -- u-dma-buf: cached mapping with explicit syncs ---------------------------------------------

class Opens:
    """An ``open_fn`` that records (path, flags) of every open."""

    def __init__(self):
        self.log = []

    def __call__(self, path, flags):
        self.log.append((path, flags))
        return os.open(path, flags)

    def since(self, n):
        return [(os.path.basename(p), f) for p, f in self.log[n:]]


def test_udmabuf_with_sync_files_is_mapped_cached(tmp_path):
    board = FakeBoard(tmp_path, size=1 << 16)
    opens = Opens()
    with DE10NanoTransport(open_fn=opens, **board.kwargs) as t:
        assert t.memory_cached and t.arena == (UDMABUF_PHYS, 1 << 16) and t.memory_source == board.device
        flags = dict(opens.log)
        assert not flags[board.device] & os.O_SYNC and flags[board.mem] & os.O_SYNC   # registers stay uncached
        n = len(opens.log)
        t.mem_write(UDMABUF_PHYS + 0x100, b"\x5a" * 300)
        wr = os.O_WRONLY | os.O_TRUNC
        assert opens.since(n) == [("sync_offset", wr), ("sync_size", wr), ("sync_direction", wr),
                                  ("sync_for_device", wr)]
        assert [board.read_sysfs(a) for a in ("sync_offset", "sync_size", "sync_direction", "sync_for_device")] \
            == [0x100, 300, 1, 1]
        assert file_bytes(board.device, 0x100, 300) == b"\x5a" * 300
        n = len(opens.log)
        assert t.mem_read(UDMABUF_PHYS + 0x40, 64) == bytes(64)
        data = t.mem_read(UDMABUF_PHYS + 0xF0, 32)
        assert data == bytes(16) + b"\x5a" * 16
        assert opens.since(n)[-4:] == [("sync_offset", wr), ("sync_size", wr), ("sync_direction", wr),
                                       ("sync_for_cpu", wr)]
        assert [board.read_sysfs(a) for a in ("sync_offset", "sync_size", "sync_direction", "sync_for_cpu")] \
            == [0xF0, 32, 2, 1]
        n = len(opens.log)
        assert t.mem_read(UDMABUF_PHYS, 0) == b"" and t.mem_write(UDMABUF_PHYS, b"") is None
        assert opens.since(n) == []                                   # nothing to sync
        s = t.stats
        assert (s.mem_writes, s.bytes_written, s.cached_bytes_written, s.syncs_for_device,
                s.sync_bytes_for_device) == (2, 300, 300, 1, 300)
        assert (s.mem_reads, s.bytes_read, s.cached_bytes_read, s.syncs_for_cpu, s.sync_bytes_for_cpu) \
            == (3, 96, 96, 2, 96)
        assert s.uncached_bytes_read == 0


def test_uncached_where_asked_or_without_the_sync_interface(tmp_path):
    board = FakeBoard(tmp_path / "a", size=1 << 16)
    opens = Opens()
    with DE10NanoTransport(open_fn=opens, cached=False, **board.kwargs) as t:
        assert not t.memory_cached and dict(opens.log)[board.device] & os.O_SYNC
        n = len(opens.log)
        t.mem_write(UDMABUF_PHYS, b"abc")
        assert t.mem_read(UDMABUF_PHYS, 3) == b"abc" and opens.since(n) == []
        assert (t.stats.uncached_bytes_written, t.stats.uncached_bytes_read, t.stats.syncs_for_cpu) == (3, 3, 0)
    bare = FakeBoard(tmp_path / "b", size=1 << 16, sync=False)   # an old udmabuf: no sync files
    with DE10NanoTransport(**bare.kwargs) as t:
        assert not t.memory_cached and t.memory_source == bare.device
    devmem = FakeBoard(tmp_path / "c", size=1 << 16, udmabuf=False)
    opens = Opens()
    with DE10NanoTransport(open_fn=opens, **devmem.kwargs) as t:
        assert not t.memory_cached and all(f & os.O_SYNC for _, f in opens.log)


def test_cached_needs_the_sync_interface(tmp_path):
    bare = FakeBoard(tmp_path / "b", size=1 << 16, sync=False)
    with pytest.raises(DeviceUnavailableError, match=r"a cached arena needs u-dma-buf's sync interface, "
                                                     r".*udmabuf0 has no sync_offset, sync_size"):
        DE10NanoTransport(cached=True, **bare.kwargs)
    devmem = FakeBoard(tmp_path / "c", size=1 << 16, udmabuf=False)
    with pytest.raises(DeviceUnavailableError, match=r"a cached arena needs a u-dma-buf buffer .*"
                                                     r"/dev/mem is mapped uncached"):
        DE10NanoTransport(cached=True, **devmem.kwargs)
    with pytest.raises(ValueError, match="cached must be True, False or None, not 'yes'"):
        DE10NanoTransport(cached="yes", **devmem.kwargs)


def test_a_failing_sync_is_one_line(tmp_path):
    board = FakeBoard(tmp_path, size=1 << 16)
    os.unlink(os.path.join(board.sysfs, "sync_size"))
    os.mkdir(os.path.join(board.sysfs, "sync_size"))
    with DE10NanoTransport(**board.kwargs) as t:
        with pytest.raises(TransportError, match=r"de10nano: cannot write 3 to .*udmabuf0/sync_size: Is a directory"):
            t.mem_write(UDMABUF_PHYS, b"abc")


# -- the whole host over an emulated board -----------------------------------------------------

@pytest.fixture(scope="module")
def model():
    weights, cfg, _ = load_default_weights()
    return QuantizedModel(cfg, weights)


@pytest.fixture(scope="module")
def frames(model):
    return random_frame_pairs(1, model.cfg.height, model.cfg.width, seed=3)[0]


@pytest.fixture(scope="module")
def golden_run(model, frames):
    params = default_engine_params()
    with FlowRuntime(model, get_transport("golden", params), params) as rt:
        with rt.transport.measure() as traffic:
            result = rt.run(frames, keep_tensors=True)
    return result, traffic


BOARDS = {"cached": dict(), "uncached": dict(cached=False), "devmem": dict(udmabuf=False)}


@pytest.mark.parametrize("mode", BOARDS)
def test_flow_on_the_emulated_board(tmp_path, model, frames, golden_run, mode):
    kw = dict(BOARDS[mode])
    board = FakeBoard(tmp_path, udmabuf=kw.pop("udmabuf", True))
    params = default_engine_params()
    with FlowRuntime(model, EmulatedDE10Nano(board, params, **kw), params) as rt:
        assert rt.transport.memory_cached == (mode == "cached")
        with rt.transport.measure() as traffic:
            result = rt.run(frames, keep_tensors=True)
        syncs = list(rt.transport.kernel_syncs)
    want, golden_traffic = golden_run
    assert np.array_equal(result.flow, want.flow)
    for name, tensor in want.tensors.items():
        assert np.array_equal(result.tensors[name], tensor), name
    # the same bytes cross, the same registers are touched, whatever the mapping
    for key in ("mem_writes", "mem_reads", "bytes_written", "bytes_read", "reg_writes"):
        assert getattr(traffic, key) == getattr(golden_traffic, key), key
    if mode == "cached":
        assert (traffic.syncs_for_device, traffic.syncs_for_cpu) == (traffic.mem_writes, traffic.mem_reads)
        assert (traffic.cached_bytes_written, traffic.cached_bytes_read) == (traffic.bytes_written, traffic.bytes_read)
        assert {k for k, *_ in syncs} == {"sync_for_device", "sync_for_cpu"}
    else:
        assert traffic.syncs_for_device == traffic.syncs_for_cpu == traffic.cached_bytes_read == 0 and not syncs


@pytest.mark.parametrize("fault", ["no clean", "no invalidate", "wrong direction", "wrong offset"])
def test_the_emulated_caches_catch_a_bad_sync(tmp_path, monkeypatch, model, frames, golden_run, fault):
    """Each way of getting the cache maintenance wrong gives a wrong flow on the emulated board
    (so the test above would see it)."""
    import sw.backends.de10nano as backend

    real = backend.UDmaBufSync.sync

    def faulty(self, offset, size, direction, *, for_device):
        if fault == "no clean" and for_device or fault == "no invalidate" and not for_device:
            return
        if fault == "wrong direction":
            direction = backend.DMA_FROM_DEVICE if for_device else backend.DMA_TO_DEVICE
        if fault == "wrong offset":
            offset += 64
        real(self, offset, size, direction, for_device=for_device)

    monkeypatch.setattr(backend.UDmaBufSync, "sync", faulty)
    params = default_engine_params()
    board = FakeBoard(tmp_path)
    try:
        with FlowRuntime(model, EmulatedDE10Nano(board, params), params) as rt:
            flow = rt.run(frames).flow
    except AcceleratorError:          # e.g. stale descriptors: the engine reports an error
        return
    assert not np.array_equal(flow, golden_run[0].flow)
