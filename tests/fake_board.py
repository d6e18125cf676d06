"""A DE10-Nano in ordinary files, for tests: the device files the ``de10nano`` backend maps, and
the accelerator's functional model playing the FPGA behind them.

:class:`FakeBoard` lays out, under one directory::

    model                   the device-tree model ("Terasic DE10-Nano")
    mem                     /dev/mem: the register window at ``bridge``, the DDR region at ``ddr``
    sys/udmabuf0/           phys_addr, size and (sync=True) sync_offset, sync_size,
                            sync_direction, sync_for_cpu, sync_for_device
    dev/udmabuf0            the u-dma-buf device: the CPU's view of the buffer
    ddr                     the FPGA's view of the buffer when it is mapped cached

:class:`EmulatedDE10Nano` is the ``de10nano`` transport over those files (the backend's own
mapping, bounds and sync code) with an FPGA behind the register window: every register write
also reaches the functional model (:class:`sw.backends.golden.GoldenTransport`'s register file
and ``execute_program``), whose registers are copied back into the mapped window, and which
reads and writes the FPGA's view of DDR.

The caches are modelled where the arena is mapped cached: the CPU's mapping (``dev/udmabuf0``)
and the DDR the FPGA sees (``ddr``) are two files, and only a u-dma-buf sync copies between them,
the way the kernel driver reacts to it: a write of ``1`` to ``sync_for_device`` copies
``[sync_offset, sync_offset + sync_size)`` from the CPU's view to DDR when ``sync_direction`` is
0 or 1 (clean), one to ``sync_for_cpu`` copies DDR to the CPU's view when it is 0 or 2
(invalidate). The range and direction are read back from the sysfs files the backend wrote, so a
missing sync, a wrong range or a wrong direction leaves one side with stale bytes and the flow
wrong. Uncached (``O_SYNC``) mappings see DDR directly: CPU and FPGA share one file.
"""

import os

import numpy as np

from models.regmap import REG
from sw.backends.de10nano import DE10NanoTransport
from sw.backends.golden import GoldenTransport

__all__ = ["FakeBoard", "EmulatedDE10Nano", "BRIDGE", "DDR", "UDMABUF_PHYS"]

#: Where the fake /dev/mem puts the bridge and the DDR region (small, so the file stays small).
BRIDGE = 0x2000
DDR = 0x10000
#: The physical address the fake u-dma-buf reports.
UDMABUF_PHYS = 0x3000_0000


class FakeBoard:
    """The device files of a DE10-Nano under ``root``.

    Parameters
    ----------
    root : str or os.PathLike
    size : int
        Bytes of the DDR region (and of the u-dma-buf buffer).
    udmabuf : bool
        Create a u-dma-buf buffer (else the arena is the /dev/mem region at ``ddr``).
    sync : bool
        Give the u-dma-buf buffer its sync files (then the backend maps it cached).
    bridge, ddr : int
        Physical addresses (offsets in the fake /dev/mem) of the register window and of the DDR
        region; the board's own (``models.board.LW_BRIDGE_BASE``, ``ARENA_BASE``) make a sparse
        file of 4 GiB, which exercises mappings at offsets beyond 2**31.

    Members
    -------
    kwargs : dict
        Keyword arguments of :class:`sw.backends.de10nano.DE10NanoTransport` for these files.
    sysfs : str
        The buffer's sysfs directory.
    """

    def __init__(self, root, size=64 << 20, *, udmabuf=True, sync=True, bridge=BRIDGE, ddr=DDR):
        root = os.fspath(root)
        os.makedirs(root, exist_ok=True)
        self.root, self.size, self.udmabuf = root, size, udmabuf
        with open(os.path.join(root, "model"), "wb") as f:
            f.write(b"Terasic DE10-Nano\0")
        self.mem = os.path.join(root, "mem")
        with open(self.mem, "wb") as f:
            f.truncate(max(ddr + size, bridge + (1 << 16)))
        self.sysfs = os.path.join(root, "sys", "udmabuf0")
        self.device = os.path.join(root, "dev", "udmabuf0")
        self.ddr = os.path.join(root, "ddr")
        if udmabuf:
            os.makedirs(self.sysfs, exist_ok=True)
            os.makedirs(os.path.dirname(self.device), exist_ok=True)
            for name, value in (("phys_addr", f"0x{UDMABUF_PHYS:08x}"), ("size", str(size))):
                with open(os.path.join(self.sysfs, name), "w") as f:
                    f.write(value + "\n")
            if sync:
                for name in ("sync_offset", "sync_size", "sync_direction", "sync_for_cpu", "sync_for_device"):
                    with open(os.path.join(self.sysfs, name), "w") as f:
                        f.write("0\n")
            for path in (self.device, self.ddr):
                with open(path, "wb") as f:
                    f.truncate(size)
        self.kwargs = dict(model_file=os.path.join(root, "model"), mem_device=self.mem, bridge_base=bridge,
                           udmabuf_class=os.path.dirname(self.sysfs), dev_dir=os.path.dirname(self.device))
        if not udmabuf:
            self.kwargs.update(ddr_base=ddr, ddr_size=size)

    def read_sysfs(self, name):
        with open(os.path.join(self.sysfs, name)) as f:
            return int(f.read().strip(), 0)


class EmulatedDE10Nano(DE10NanoTransport):
    """The ``de10nano`` transport over a :class:`FakeBoard`, with the functional model as FPGA.

    Parameters
    ----------
    board : FakeBoard
    params : models.engine.EngineParams
        The emulated accelerator's configuration.
    **kw
        More :class:`DE10NanoTransport` arguments (``cached``, ``open_fn``, ...).

    Members
    -------
    fpga_memory : numpy.memmap
        The DDR the FPGA sees.
    kernel_syncs : list of tuple
        ``(kind, offset, size, direction)`` of every sync the emulated driver carried out.
    """

    def __init__(self, board, params, **kw):
        super().__init__(**dict(board.kwargs, **kw))
        self.board = board
        self.kernel_syncs = []
        base, size = self.arena
        if self.memory_cached:
            path, offset = board.ddr, 0
        elif board.udmabuf and self.memory_source == board.device:
            path, offset = board.device, 0
        else:
            path, offset = board.mem, base
        self.fpga_memory = np.memmap(path, dtype=np.uint8, mode="r+", offset=offset, shape=(size,))
        self._fpga = GoldenTransport(params, arena_base=base, arena_size=size, cycle_model=None)
        self._fpga.memory = self.fpga_memory
        self._mirror()

    def _mirror(self):
        """The FPGA's register values, into the mapped register window."""
        for reg in REG.values():
            self._regs_view[reg.offset // 4] = self._fpga._read_reg(reg.offset)

    def _write_reg(self, offset, value):
        super()._write_reg(offset, value)
        self._fpga._write_reg(offset, value)
        self._mirror()

    def _cpu_view(self):
        m = self._mem
        return np.frombuffer(m.map, dtype=np.uint8)[m.delta:m.delta + m.size]

    def _kernel_sync(self, trigger):
        """What u-dma-buf does when ``1`` is written to ``trigger``: read the range back from
        sysfs and clean or invalidate it."""
        b = self.board
        if b.read_sysfs(trigger) != 1:
            return
        offset, size, direction = b.read_sysfs("sync_offset"), b.read_sysfs("sync_size"), b.read_sysfs("sync_direction")
        self.kernel_syncs.append((trigger, offset, size, direction))
        cpu = self._cpu_view()
        if trigger == "sync_for_device" and direction in (0, 1):
            self.fpga_memory[offset:offset + size] = cpu[offset:offset + size]
        elif trigger == "sync_for_cpu" and direction in (0, 2):
            cpu[offset:offset + size] = self.fpga_memory[offset:offset + size]

    def _sync_for_device(self, addr, nbytes):
        super()._sync_for_device(addr, nbytes)
        self._kernel_sync("sync_for_device")

    def _sync_for_cpu(self, addr, nbytes):
        super()._sync_for_cpu(addr, nbytes)
        self._kernel_sync("sync_for_cpu")

    def _close(self):
        self._fpga.memory = None
        self.fpga_memory.flush()
        self.fpga_memory = None
        super()._close()
