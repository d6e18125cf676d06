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
"""

import abc
import operator
import time

import numpy as np

from models.regmap import REGMAP_BYTES

from .errors import TransportError

__all__ = ["Transport"]


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

    Raises
    ------
    TransportError
        From every access method: a register offset outside ``0 .. REGMAP_BYTES - 4`` or not a
        multiple of 4, a register value outside ``0 .. 2**32 - 1``, a memory range not inside the
        arena, data that is not bytes, or any access after :meth:`close`. The message names the
        backend, the address or offset and the allowed range.
    """

    name = "abstract"

    def __init__(self):
        self._closed = False

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
        return int(self._read_reg(self._check_reg(offset))) & 0xFFFFFFFF

    def write_reg(self, offset, value):
        """Write a 32-bit ``value`` to the register at byte ``offset``."""
        self._check_open()
        offset = self._check_reg(offset)
        value = _as_int(value, "register value")
        if not 0 <= value <= 0xFFFFFFFF:
            raise TransportError(f"{self.name}: register value {value:#x} does not fit 32 bits")
        self._write_reg(offset, value)

    def mem_read(self, addr, nbytes):
        """``nbytes`` bytes of device memory at device address ``addr``."""
        self._check_open()
        addr, nbytes = self.check_range(addr, nbytes)
        return bytes(self._mem_read(addr, nbytes))

    def mem_write(self, addr, data):
        """Write ``data`` (bytes or a uint8 array) to device memory at device address ``addr``."""
        self._check_open()
        data = _as_bytes(data)
        addr, _ = self.check_range(addr, len(data))
        self._mem_write(addr, data)

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
