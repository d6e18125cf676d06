"""The ``de10nano`` backend: the accelerator on the board, through memory mappings.

Registers
    The accelerator's register window (``models.regmap.REGMAP_BYTES`` bytes) sits on the
    lightweight HPS-to-FPGA bridge at physical ``0xFF200000`` plus the component's offset, and is
    mapped from ``/dev/mem``. Registers are accessed as single aligned 32-bit words.

Device memory
    The arena is a physically contiguous DDR region that Linux does not use:

    * a ``u-dma-buf`` buffer when one exists (``/sys/class/u-dma-buf/udmabuf0/phys_addr`` and
      ``/dev/udmabuf0``), the clean way: the kernel reserves it. Where the buffer's sysfs
      directory has the cache-maintenance interface (``sync_offset``, ``sync_size``,
      ``sync_direction``, ``sync_for_cpu``, ``sync_for_device``), it is mapped **cached** and
      synced explicitly: after each host write the written bytes are cleaned to memory
      (``sync_for_device``, ``DMA_TO_DEVICE``), before each host read the bytes to read are
      invalidated (``sync_for_cpu``, ``DMA_FROM_DEVICE``), because the FPGA-to-SDRAM ports do
      not snoop the ARM's caches. Without that interface (or with ``cached=False``) it is mapped
      uncached (``O_SYNC``);
    * otherwise ``/dev/mem`` at a reserved region, by default 64 MiB at physical
      ``0x20000000`` (boot Linux with ``mem=512M`` so it stays free, as Blueoil's runtime did),
      always uncached (``O_SYNC``): ``/dev/mem`` has no cache maintenance from user space.

    Device addresses are physical addresses: the accelerator's masters see the SDRAM at the
    same addresses as the ARM.

Off the board (``/proc/device-tree/model`` missing or not a DE10-Nano, ``/dev/mem`` missing) or
without permission (``/dev/mem`` needs root or ``CAP_SYS_RAWIO``), construction fails with one
:class:`sw.errors.DeviceUnavailableError` line. Every path is a constructor parameter so the
mapping code can be tested with ordinary files.
"""

import mmap
import os
import re

from models.board import ARENA_BASE, ARENA_SIZE, LW_BRIDGE_BASE, LW_BRIDGE_SPAN
from models.regmap import REGMAP_BYTES

from ..errors import DeviceUnavailableError, TransportError
from ..transport import Transport

__all__ = ["DE10NanoTransport", "UDmaBufSync", "create_transport", "LW_BRIDGE_BASE", "LW_BRIDGE_SIZE",
           "DEFAULT_DDR_BASE", "DEFAULT_DDR_SIZE", "BOARD_PATTERN", "DMA_TO_DEVICE", "DMA_FROM_DEVICE",
           "SYNC_ATTRIBUTES"]

#: Lightweight HPS-to-FPGA bridge: physical base and span (Cyclone V HPS memory map).
LW_BRIDGE_SIZE = LW_BRIDGE_SPAN
#: Default reserved DDR region for /dev/mem (above a 512 MiB Linux).
DEFAULT_DDR_BASE = ARENA_BASE
DEFAULT_DDR_SIZE = ARENA_SIZE
#: What the device-tree model string of the board matches (e.g. "Terasic DE10-Nano").
BOARD_PATTERN = re.compile(r"de10[-_ ]?nano", re.IGNORECASE)

_WHERE = "de10nano backend"


#: u-dma-buf's ``sync_direction`` values (the kernel's ``enum dma_data_direction``).
DMA_TO_DEVICE = 1
DMA_FROM_DEVICE = 2
#: The sysfs files of u-dma-buf's manual cache management.
SYNC_ATTRIBUTES = ("sync_offset", "sync_size", "sync_direction", "sync_for_cpu", "sync_for_device")


def _check_int(what, value, minimum=0):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, not {value!r}")
    return value


class _Mapping:
    """A page-aligned mmap of ``size`` bytes at physical ``phys`` of an opened device file,
    uncached (``O_SYNC``) unless ``cached``."""

    def __init__(self, path, phys, size, file_offset, open_fn, what, cached=False):
        page = mmap.ALLOCATIONGRANULARITY
        start = file_offset - file_offset % page
        self.delta = file_offset - start
        length = -(-(self.delta + size) // page) * page
        try:
            fd = open_fn(path, os.O_RDWR if cached else os.O_RDWR | os.O_SYNC)
        except FileNotFoundError:
            raise DeviceUnavailableError(f"{_WHERE}: {path} not found: not running on the board") from None
        except PermissionError:
            raise DeviceUnavailableError(f"{_WHERE}: permission denied opening {path} for the {what} "
                                         f"(run as root or grant CAP_SYS_RAWIO)") from None
        except OSError as e:
            raise DeviceUnavailableError(f"{_WHERE}: cannot open {path} for the {what}: {e.strerror}") from None
        try:
            self.map = mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=start)
        except (OSError, ValueError, OverflowError) as e:
            raise DeviceUnavailableError(f"{_WHERE}: cannot map the {what} (0x{phys:x} + 0x{size:x} bytes) "
                                         f"from {path}: {getattr(e, 'strerror', None) or e}") from None
        finally:
            os.close(fd)
        self.phys = phys
        self.size = size

    def close(self):
        self.map.close()


class UDmaBufSync:
    """u-dma-buf's manual cache management of one buffer, through its sysfs files.

    One sync writes, in this order, ``sync_offset`` (bytes from the buffer's start),
    ``sync_size``, ``sync_direction`` and then ``1`` to ``sync_for_device`` or ``sync_for_cpu``;
    the last write makes the driver clean (for the device) or invalidate (for the CPU) the
    cache lines of that range. Each value is written as decimal ASCII through a fresh
    ``open(O_WRONLY | O_TRUNC)``, ``write``, ``close``.

    Parameters
    ----------
    sysfs : str
        The buffer's directory, e.g. ``/sys/class/u-dma-buf/udmabuf0``.
    open_fn : callable
        ``os.open``-compatible opener.
    """

    def __init__(self, sysfs, open_fn=os.open):
        self.sysfs = sysfs
        self._open = open_fn

    @staticmethod
    def missing(sysfs):
        """The sync files absent from ``sysfs`` (empty where the interface is complete)."""
        return [a for a in SYNC_ATTRIBUTES if not os.path.exists(os.path.join(sysfs, a))]

    def _write(self, name, value):
        path = os.path.join(self.sysfs, name)
        try:
            fd = self._open(path, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, b"%d" % value)
            finally:
                os.close(fd)
        except OSError as e:
            raise TransportError(f"de10nano: cannot write {value} to {path}: {e.strerror or e}") from None

    def sync(self, offset, size, direction, *, for_device):
        """Clean (``for_device``) or invalidate ``size`` bytes at ``offset`` of the buffer."""
        self._write("sync_offset", offset)
        self._write("sync_size", size)
        self._write("sync_direction", direction)
        self._write("sync_for_device" if for_device else "sync_for_cpu", 1)


class DE10NanoTransport(Transport):
    """The accelerator on a DE10-Nano, from Linux on its ARM.

    Parameters
    ----------
    component_offset : int, keyword-only
        Offset of the accelerator's registers on the lightweight bridge (word aligned).
    ddr_base, ddr_size : int, keyword-only
        Physical base and size of the reserved DDR region mapped from ``/dev/mem``; giving
        ``ddr_base`` disables the udmabuf lookup. Default: the udmabuf buffer if present, else
        64 MiB at 0x20000000. ``ddr_size`` with a udmabuf buffer uses only its first bytes.
    udmabuf : str or None, keyword-only
        Name of the u-dma-buf device to look for (default ``"udmabuf0"``); ``None`` never uses one.
    cached : bool or None, keyword-only
        Map the u-dma-buf buffer through the caches and sync around every access (``True``;
        needs the buffer's sync files), uncached with ``O_SYNC`` (``False``), or cached wherever
        the sync files are there (``None``, the default). ``/dev/mem`` is always uncached.
    bridge_base : int, keyword-only
        Physical base of the lightweight bridge.
    mem_device, model_file, udmabuf_class, dev_dir : str, keyword-only
        ``/dev/mem``, ``/proc/device-tree/model``, ``/sys/class/u-dma-buf``, ``/dev``.
    check_board : bool, keyword-only
        Refuse to run unless the device-tree model names a DE10-Nano (default).
    open_fn : callable, keyword-only
        ``os.open``-compatible opener for the device files.

    Members
    -------
    arena : tuple of int
        ``(physical base, size)`` of the mapped DDR region.
    memory_source : str
        The device file the arena is mapped from.
    memory_cached : bool
        Whether the arena is mapped cached (u-dma-buf with explicit syncs).
    udmabuf_sync : UDmaBufSync or None
        The sync interface used for a cached arena.

    Raises
    ------
    DeviceUnavailableError
        Not on a DE10-Nano, a device file is missing, permission is denied, or a mapping fails;
        the message is one line naming the file.
    ValueError
        If an address or size parameter is invalid.
    """

    name = "de10nano"

    def __init__(self, *, component_offset=0, ddr_base=None, ddr_size=None, udmabuf="udmabuf0", cached=None,
                 bridge_base=LW_BRIDGE_BASE, mem_device="/dev/mem", model_file="/proc/device-tree/model",
                 udmabuf_class="/sys/class/u-dma-buf", dev_dir="/dev", check_board=True, open_fn=os.open):
        super().__init__()
        self._regs = self._regs_view = self._mem = None
        self.memory_cached = False
        self.udmabuf_sync = None
        if cached not in (None, True, False):
            raise ValueError(f"cached must be True, False or None, not {cached!r}")
        _check_int("component_offset", component_offset)
        if component_offset % 4 or component_offset + REGMAP_BYTES > LW_BRIDGE_SIZE:
            raise ValueError(f"component_offset must be a multiple of 4 with the {REGMAP_BYTES}-byte register "
                             f"window inside the 0x{LW_BRIDGE_SIZE:x}-byte bridge, not 0x{component_offset:x}")
        _check_int("bridge_base", bridge_base)
        if ddr_base is not None:
            _check_int("ddr_base", ddr_base)
        if ddr_size is not None:
            _check_int("ddr_size", ddr_size, 1)
        if check_board:
            self._check_board(model_file)

        source = None
        if ddr_base is None and udmabuf is not None:
            source = self._find_udmabuf(udmabuf, udmabuf_class, dev_dir)
        if source is not None:
            path, phys, size, sysfs = source
            if ddr_size is not None:
                if ddr_size > size:
                    raise ValueError(f"ddr_size 0x{ddr_size:x} is larger than {path} (0x{size:x} bytes)")
                size = ddr_size
            file_offset = 0
            missing = UDmaBufSync.missing(sysfs)
            if cached and missing:
                raise DeviceUnavailableError(f"{_WHERE}: a cached arena needs u-dma-buf's sync interface, "
                                             f"{sysfs} has no {', '.join(missing)}")
            if cached is None:
                cached = not missing
        else:
            if cached:
                raise DeviceUnavailableError(f"{_WHERE}: a cached arena needs a u-dma-buf buffer "
                                             f"({os.path.join(udmabuf_class, str(udmabuf))} and "
                                             f"{os.path.join(dev_dir, str(udmabuf))}); /dev/mem is mapped uncached")
            cached = False
            path = mem_device
            phys = DEFAULT_DDR_BASE if ddr_base is None else ddr_base
            size = DEFAULT_DDR_SIZE if ddr_size is None else ddr_size
            file_offset = phys
        if phys + size > 1 << 32:
            raise ValueError(f"the DDR region 0x{phys:x} + 0x{size:x} must lie below 4 GiB")
        if phys % 64:
            raise ValueError(f"the DDR region base must be 64-byte aligned, not 0x{phys:x}")
        self.memory_source = path
        reg_phys = bridge_base + component_offset
        regs = _Mapping(mem_device, reg_phys, REGMAP_BYTES, reg_phys, open_fn, "accelerator registers")
        try:
            mem = _Mapping(path, phys, size, file_offset, open_fn, "DDR region", cached=cached)
        except BaseException:
            regs.close()
            raise
        self._regs = regs
        self._regs_view = memoryview(regs.map)[regs.delta:regs.delta + REGMAP_BYTES].cast("I")
        self._mem = mem
        if cached:
            self.memory_cached = True
            self.udmabuf_sync = UDmaBufSync(sysfs, open_fn)

    @staticmethod
    def _check_board(model_file):
        try:
            with open(model_file, "rb") as f:
                model = f.read().rstrip(b"\0\n").decode("utf-8", "replace")
        except FileNotFoundError:
            raise DeviceUnavailableError(f"{_WHERE}: not running on a DE10-Nano ({model_file} not found); "
                                         f"use --backend golden off the board") from None
        except OSError as e:
            raise DeviceUnavailableError(f"{_WHERE}: cannot read {model_file}: {e.strerror}") from None
        if not BOARD_PATTERN.search(model):
            raise DeviceUnavailableError(f"{_WHERE}: not running on a DE10-Nano ({model_file} says {model!r}); "
                                         f"use --backend golden off the board")

    @staticmethod
    def _find_udmabuf(name, class_dir, dev_dir):
        sysfs = os.path.join(class_dir, name)
        device = os.path.join(dev_dir, name)
        if not (os.path.isdir(sysfs) and os.path.exists(device)):
            return None
        try:
            with open(os.path.join(sysfs, "phys_addr"), encoding="ascii") as f:
                phys = int(f.read().strip(), 0)
            with open(os.path.join(sysfs, "size"), encoding="ascii") as f:
                size = int(f.read().strip(), 0)
        except (OSError, ValueError) as e:
            raise DeviceUnavailableError(f"{_WHERE}: cannot read the {name} buffer's phys_addr/size in {sysfs}: "
                                         f"{getattr(e, 'strerror', None) or e}") from None
        if size <= 0:
            raise DeviceUnavailableError(f"{_WHERE}: {sysfs}/size reports an empty buffer")
        return device, phys, size, sysfs

    @property
    def arena(self):
        return (self._mem.phys, self._mem.size) if self._mem is not None else (0, 0)

    def _read_reg(self, offset):
        return self._regs_view[offset // 4]

    def _write_reg(self, offset, value):
        self._regs_view[offset // 4] = value

    def _mem_read(self, addr, nbytes):
        off = self._mem.delta + addr - self._mem.phys
        return self._mem.map[off:off + nbytes]

    def _mem_write(self, addr, data):
        off = self._mem.delta + addr - self._mem.phys
        self._mem.map[off:off + len(data)] = data

    def _sync_for_device(self, addr, nbytes):
        self.udmabuf_sync.sync(addr - self._mem.phys, nbytes, DMA_TO_DEVICE, for_device=True)

    def _sync_for_cpu(self, addr, nbytes):
        self.udmabuf_sync.sync(addr - self._mem.phys, nbytes, DMA_FROM_DEVICE, for_device=False)

    def _close(self):
        if self._regs_view is not None:
            self._regs_view.release()
            self._regs_view = None
        for m in (self._regs, self._mem):
            if m is not None:
                m.close()


def create_transport(params=None, **kw):
    """The registry's constructor for this backend (``params`` is checked by the driver, not here)."""
    return DE10NanoTransport(**kw)
