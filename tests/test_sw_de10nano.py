"""The DE10-Nano transport on fake device files: mappings, bounds checks and error messages."""

import os

import pytest

from models.regmap import REG, REGMAP_BYTES
from sw.backends import get_transport
from sw.backends.de10nano import DE10NanoTransport
from sw.config import default_engine_params
from sw.driver import Accelerator
from sw.errors import AcceleratorError, DeviceUnavailableError, TransportError

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
