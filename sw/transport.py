"""The abstract transport: what the driver needs from a device, and nothing more.

A transport gives the host

* 32-bit register reads and writes at byte offsets in the accelerator's register window
  (``models.regmap``, ``REGMAP_BYTES`` bytes);
* reads and writes of device memory inside one *arena* ``(base, size)``: the physical memory
  the host may hand to the accelerator (device addresses are the addresses the accelerator
  uses);
* a clock and a wait for polling: :meth:`Transport.now` and :meth:`Transport.wait`, in seconds
  of the device's time base (wall time on the board, simulated time in a simulator, a virtual
  clock in the functional model), so a timeout means the same thing on every backend.

The public methods check every access (register offset in the window and word aligned, memory
range inside the arena, value width) before calling the backend's ``_read_reg``, ``_write_reg``,
``_mem_read`` and ``_mem_write``; a backend only implements those four, :attr:`arena` and,
where it has something to release, ``_close``.

Cached device memory
    A backend whose arena is mapped through the CPU's caches (:attr:`Transport.memory_cached`;
    the FPGA's memory ports do not snoop them) implements ``_sync_for_device`` and
    ``_sync_for_cpu``. The base class calls them, so the protocol is the same for every such
    backend: every :meth:`Transport.mem_write` is followed by ``_sync_for_device`` over the
    bytes written (clean the cache lines to memory before the device reads them), every
    :meth:`Transport.mem_read` is preceded by ``_sync_for_cpu`` over the bytes read (drop stale
    lines after the device wrote them).

Traffic counters
    :attr:`Transport.stats` counts, from the transport's opening, what crossed between host and
    device (:class:`TransportStats`): register reads, writes and STATUS polls, device-memory
    writes and reads in calls and bytes (and how many of those bytes went through a cached
    mapping), cache syncs in calls and bytes. :meth:`Transport.measure` gives the record of one
    stretch of work, e.g. one frame::

        with transport.measure() as frame:
            runtime.run(frames)
        frame.bytes_read, frame.reg_writes, frame.syncs_for_cpu, ...
"""

import abc
import contextlib
from dataclasses import asdict, dataclass, fields
import operator
import time

import numpy as np

from models.regmap import REG, REGMAP_BYTES

from .errors import TransportError

__all__ = ["Transport", "TransportStats"]

_STATUS = REG["STATUS"].offset


@dataclass
class TransportStats:
    """What one transport moved between host and device (counts since it opened, or of one
    :meth:`Transport.measure` block).

    Members
    -------
    reg_reads, reg_writes : int
        32-bit register accesses (each one bus transaction on the board's lightweight bridge).
    polls : int
        Of ``reg_reads``, the reads of ``STATUS`` (the driver's busy check before a start and its
        polling until done).
    mem_writes, mem_reads : int
        Device-memory write and read calls.
    bytes_written, bytes_read : int
        Their bytes.
    cached_bytes_written, cached_bytes_read : int
        Of those, the bytes that went through a cached mapping (the rest were uncached, or a
        model's memory); see :attr:`uncached_bytes_written`, :attr:`uncached_bytes_read`.
    syncs_for_device, syncs_for_cpu : int
        Cache maintenance calls: clean before the device reads, invalidate before the CPU reads.
    sync_bytes_for_device, sync_bytes_for_cpu : int
        The bytes they covered.
    """

    reg_reads: int = 0
    reg_writes: int = 0
    polls: int = 0
    mem_writes: int = 0
    mem_reads: int = 0
    bytes_written: int = 0
    bytes_read: int = 0
    cached_bytes_written: int = 0
    cached_bytes_read: int = 0
    syncs_for_device: int = 0
    syncs_for_cpu: int = 0
    sync_bytes_for_device: int = 0
    sync_bytes_for_cpu: int = 0

    @property
    def uncached_bytes_written(self):
        return self.bytes_written - self.cached_bytes_written

    @property
    def uncached_bytes_read(self):
        return self.bytes_read - self.cached_bytes_read

    def copy(self):
        return TransportStats(**asdict(self))

    def __sub__(self, other):
        return TransportStats(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    def __add__(self, other):
        return TransportStats(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_dict(self):
        """Every counter, and the uncached byte counts, as a plain dict."""
        d = asdict(self)
        d.update(uncached_bytes_written=self.uncached_bytes_written, uncached_bytes_read=self.uncached_bytes_read)
        return d


def _as_int(value, what):
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise TransportError(f"{what} must be an integer, not {value!r}") from None


def _as_bytes(data):
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise TransportError(f"device memory data must be bytes or a uint8 array, not {data.dtype} array")
        return np.ascontiguousarray(data).tobytes()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TransportError(f"device memory data must be bytes or a uint8 array, not {type(data).__name__}")


class Transport(abc.ABC):
    """Register and device-memory access to one accelerator.

    Members
    -------
    name : str
        Backend name (``"golden"``, ``"rtl"``, ``"de10nano"``).
    arena : tuple of int
        ``(base, size)``: the device memory the host may use, in device byte addresses.
    closed : bool
    memory_cached : bool
        Whether the arena is mapped through the CPU's caches (then the base class syncs around
        every access; see the module docstring).
    stats : TransportStats
        Traffic since the transport opened (updated in place).

    Raises
    ------
    TransportError
        From every access method: a register offset outside ``0 .. REGMAP_BYTES - 4`` or not a
        multiple of 4, a register value outside ``0 .. 2**32 - 1``, a memory range not inside the
        arena, data that is not bytes, or any access after :meth:`close`. The message names the
        backend, the address or offset and the allowed range.
    """

    name = "abstract"
    #: Whether the arena is mapped through the CPU's caches; a backend that says so implements
    #: ``_sync_for_device`` and ``_sync_for_cpu``.
    memory_cached = False

    def __init__(self):
        self._closed = False
        self.stats = TransportStats()

    # -- what a backend provides -----------------------------------------------------------

    @property
    @abc.abstractmethod
    def arena(self):
        """``(base, size)`` of the device memory the host may use."""

    @abc.abstractmethod
    def _read_reg(self, offset):
        """Read the 32-bit register at a checked byte offset."""

    @abc.abstractmethod
    def _write_reg(self, offset, value):
        """Write a checked 32-bit value to the register at a checked byte offset."""

    @abc.abstractmethod
    def _mem_read(self, addr, nbytes):
        """Read ``nbytes`` of device memory at a checked device address; returns bytes."""

    @abc.abstractmethod
    def _mem_write(self, addr, data):
        """Write bytes to device memory at a checked device address."""

    def _close(self):
        """Release the backend's resources (mappings, files, simulator)."""

    def _sync_for_device(self, addr, nbytes):
        """Make ``nbytes`` the CPU wrote at ``addr`` visible to the device (cached arenas only)."""
        raise NotImplementedError(f"{type(self).__name__} maps its arena cached but cannot sync it")

    def _sync_for_cpu(self, addr, nbytes):
        """Make ``nbytes`` the device wrote at ``addr`` visible to the CPU (cached arenas only)."""
        raise NotImplementedError(f"{type(self).__name__} maps its arena cached but cannot sync it")

    # -- the checked interface the driver uses -----------------------------------------------

    @property
    def closed(self):
        return self._closed

    def _check_open(self):
        if self._closed:
            raise TransportError(f"{self.name} transport is closed")

    def _check_reg(self, offset):
        offset = _as_int(offset, "register offset")
        if not 0 <= offset <= REGMAP_BYTES - 4 or offset % 4:
            raise TransportError(f"{self.name}: register offset 0x{offset:x} is outside the register window "
                                 f"(0x0 .. 0x{REGMAP_BYTES - 4:x}, multiples of 4)")
        return offset

    def check_range(self, addr, nbytes):
        """Check that ``[addr, addr + nbytes)`` lies in the arena; returns ``(addr, nbytes)``.

        Raises
        ------
        TransportError
            Naming the range and the arena.
        """
        addr = _as_int(addr, "device address")
        nbytes = _as_int(nbytes, "byte count")
        base, size = self.arena
        if nbytes < 0 or addr < base or addr + nbytes > base + size:
            raise TransportError(f"{self.name}: device memory access 0x{addr:x} + {nbytes} bytes is outside "
                                 f"the arena 0x{base:x} .. 0x{base + size:x}")
        return addr, nbytes

    def read_reg(self, offset):
        """The 32-bit register at byte ``offset`` (see :mod:`models.regmap`)."""
        self._check_open()
        offset = self._check_reg(offset)
        value = int(self._read_reg(offset)) & 0xFFFFFFFF
        self.stats.reg_reads += 1
        if offset == _STATUS:
            self.stats.polls += 1
        return value

    def write_reg(self, offset, value):
        """Write a 32-bit ``value`` to the register at byte ``offset``."""
        self._check_open()
        offset = self._check_reg(offset)
        value = _as_int(value, "register value")
        if not 0 <= value <= 0xFFFFFFFF:
            raise TransportError(f"{self.name}: register value {value:#x} does not fit 32 bits")
        self._write_reg(offset, value)
        self.stats.reg_writes += 1

    def mem_read(self, addr, nbytes):
        """``nbytes`` bytes of device memory at device address ``addr`` (synced for the CPU first
        where the arena is cached)."""
        self._check_open()
        addr, nbytes = self.check_range(addr, nbytes)
        st = self.stats
        if self.memory_cached and nbytes:
            self._sync_for_cpu(addr, nbytes)
            st.syncs_for_cpu += 1
            st.sync_bytes_for_cpu += nbytes
            st.cached_bytes_read += nbytes
        data = bytes(self._mem_read(addr, nbytes))
        st.mem_reads += 1
        st.bytes_read += nbytes
        return data

    def mem_write(self, addr, data):
        """Write ``data`` (bytes or a uint8 array) to device memory at device address ``addr``
        (synced for the device afterwards where the arena is cached)."""
        self._check_open()
        data = _as_bytes(data)
        addr, nbytes = self.check_range(addr, len(data))
        self._mem_write(addr, data)
        st = self.stats
        st.mem_writes += 1
        st.bytes_written += nbytes
        if self.memory_cached and nbytes:
            self._sync_for_device(addr, nbytes)
            st.syncs_for_device += 1
            st.sync_bytes_for_device += nbytes
            st.cached_bytes_written += nbytes

    @contextlib.contextmanager
    def measure(self):
        """``with transport.measure() as rec:`` -- ``rec`` (a :class:`TransportStats`) holds,
        after the block, the traffic of the block alone."""
        rec = TransportStats()
        start = self.stats.copy()
        try:
            yield rec
        finally:
            for f in fields(rec):
                setattr(rec, f.name, getattr(self.stats, f.name) - getattr(start, f.name))

    def now(self):
        """The transport's clock, in seconds (only differences are meaningful)."""
        return time.monotonic()

    def wait(self, seconds):
        """Let ``seconds`` of device time pass between two polls."""
        time.sleep(seconds)

    def close(self):
        """Release the device; further accesses raise :class:`TransportError`. Idempotent."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        base, size = self.arena
        return f"<{type(self).__name__} {self.name} arena=0x{base:x}+0x{size:x}{' closed' if self._closed else ''}>"
