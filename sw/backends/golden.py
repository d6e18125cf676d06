"""The ``golden`` backend: the accelerator's functional model behind the register map.

Device memory is a numpy byte array covering the arena; the registers behave as
``models.regmap`` documents them, and a start runs :func:`models.engine.execute_program` over
the descriptor list, so the host code is exercised exactly as on the board, without a
simulator.

Timing model
    The functional model computes a whole list at the start write. ``busy`` then lasts
    ``TOTAL_CYCLES / clock_hz`` seconds on a *virtual* clock that only :meth:`wait` advances (the
    driver's polling), so polls, timeouts and "start while busy" are deterministic and cost no
    wall time. Memory already holds the results while ``busy`` is shown.

Cycle counters
    ``LAYER_CYCLES{i}`` and ``TOTAL_CYCLES`` come from a cycle model ``(descriptor) -> cycles``:
    the ``cycle_model`` argument, or by default the engine's exact analytical model
    :func:`models.cycles.descriptor_cycles`; with ``cycle_model=None`` every counter reads 0
    (and ``busy`` ends at the first status read).
"""

import numpy as np

from models.board import ARENA_BASE, ARENA_SIZE
from models.cycles import descriptor_cycles
from models.engine import DESCRIPTOR, ERR_ADDRESS, ERR_ALIGN, ERR_NONE, Descriptor, execute_program
from models.errors import FormatError
from models.regmap import (CTRL_CLEAR, CTRL_START, ID_MAGIC, MAX_LAYER_COUNTERS, REG, STATUS_BUSY, STATUS_DONE,
                           STATUS_ERROR, STATUS_START_IGNORED, VERSION)

from ..errors import TransportError
from ..transport import Transport

__all__ = ["GoldenTransport", "create_transport", "DEFAULT_ARENA_BASE", "DEFAULT_ARENA_SIZE",
           "DEFAULT_CLOCK_HZ", "default_cycle_model"]

#: The same physical window as the board's default reserved DDR region, so programs compiled for
#: either have the same addresses.
DEFAULT_ARENA_BASE = ARENA_BASE
DEFAULT_ARENA_SIZE = ARENA_SIZE
DEFAULT_CLOCK_HZ = 100e6

_OFFSETS = {r.offset: r.name for r in REG.values()}


def default_cycle_model(params):
    """``desc -> cycles``: the engine's analytical model (:func:`models.cycles.descriptor_cycles`)."""
    return lambda desc: descriptor_cycles(desc, params)


class _ArenaView:
    """The arena as ``execute_program`` indexes memory: by device address, from 0 up."""

    def __init__(self, array, base):
        self._array = array
        self._base = base

    def __len__(self):
        return self._base + len(self._array)

    def _index(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("device memory is indexed by address ranges")
        start, stop = key.start, key.stop
        if start < self._base or stop > len(self) or stop < start:
            raise TransportError(f"golden: engine access 0x{start:x} .. 0x{stop:x} outside the arena "
                                 f"0x{self._base:x} .. 0x{len(self):x}")
        return slice(start - self._base, stop - self._base)

    def __getitem__(self, key):
        return self._array[self._index(key)]

    def __setitem__(self, key, value):
        self._array[self._index(key)] = value


class GoldenTransport(Transport):
    """A functional model of the accelerator and its memory.

    Parameters
    ----------
    params : models.engine.EngineParams
        The modelled hardware configuration (reported in ``CONFIG``).
    arena_base, arena_size : int, keyword-only
        Device memory, bus-word aligned; default 64 MiB at 0x20000000.
    clock_hz : float, keyword-only
        Clock that converts cycles into the virtual busy time.
    cycle_model : callable or None or "auto", keyword-only
        ``(Descriptor) -> cycles``; ``"auto"`` (default) uses :mod:`models.cycles`, ``None``
        reports 0 cycles.

    Members
    -------
    memory : numpy.ndarray of uint8
        The arena's content (``memory[0]`` is at ``arena_base``).
    starts : int
        Descriptor lists started so far.

    Raises
    ------
    ValueError
        If a parameter is invalid (the message names it).
    """

    name = "golden"

    def __init__(self, params, *, arena_base=DEFAULT_ARENA_BASE, arena_size=DEFAULT_ARENA_SIZE,
                 clock_hz=DEFAULT_CLOCK_HZ, cycle_model="auto"):
        super().__init__()
        for what, v in (("arena_base", arena_base), ("arena_size", arena_size)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{what} must be a non-negative integer, not {v!r}")
        if arena_size == 0 or arena_size % params.bus_bytes or arena_base % params.bus_bytes:
            raise ValueError(f"arena_base and arena_size must be non-zero multiples of the bus word "
                             f"({params.bus_bytes} bytes), not 0x{arena_base:x} and {arena_size}")
        if arena_base + arena_size > 1 << 32:
            raise ValueError(f"the arena must lie below 4 GiB (32-bit device addresses), not "
                             f"0x{arena_base:x} + 0x{arena_size:x}")
        if not isinstance(clock_hz, (int, float)) or isinstance(clock_hz, bool) or clock_hz <= 0:
            raise ValueError(f"clock_hz must be a positive number, not {clock_hz!r}")
        if cycle_model == "auto":
            cycle_model = default_cycle_model(params)
        elif cycle_model is not None and not callable(cycle_model):
            raise ValueError(f"cycle_model must be a callable, None or 'auto', not {cycle_model!r}")
        self._params = params
        self._base = int(arena_base)
        self._size = int(arena_size)
        self._clock_hz = float(clock_hz)
        self._cycle_model = cycle_model
        self.memory = np.zeros(self._size, dtype=np.uint8)
        self.starts = 0
        self._time = 0.0
        self._busy_until = 0.0
        self._done = self._error = self._start_ignored = False
        self._rw = {name: 0 for name in ("DESC_ADDR", "DESC_COUNT", "WINDOW_BASE", "WINDOW_SIZE")}
        self._error_reg = 0
        self._layers_done = 0
        self._layer_cycles = [0] * MAX_LAYER_COUNTERS
        self._total_cycles = 0

    @property
    def params(self):
        return self._params

    @property
    def arena(self):
        return (self._base, self._size)

    @property
    def cycle_model(self):
        return self._cycle_model

    # -- clock -----------------------------------------------------------------------------

    def now(self):
        """The virtual clock (seconds), advanced only by :meth:`wait`."""
        return self._time

    def wait(self, seconds):
        self._time += max(float(seconds), 0.0)

    @property
    def busy(self):
        return self._time < self._busy_until

    # -- registers -------------------------------------------------------------------------

    def _read_reg(self, offset):
        name = _OFFSETS.get(offset)
        if name == "ID":
            return ID_MAGIC
        if name == "VERSION":
            return VERSION
        if name == "CONFIG":
            p = self._params
            cfg = REG["CONFIG"]
            return ((p.pe_count << cfg.field("pe_count").lsb) | (p.simd_lanes << cfg.field("simd_lanes").lsb)
                    | (p.acc_bits << cfg.field("acc_bits").lsb))
        if name == "STATUS":
            busy = self.busy
            return ((busy << STATUS_BUSY.lsb) | ((self._done and not busy) << STATUS_DONE.lsb)
                    | ((self._error and not busy) << STATUS_ERROR.lsb)
                    | (self._start_ignored << STATUS_START_IGNORED.lsb))
        if name == "ERROR":
            return self._error_reg
        if name in self._rw:
            return self._rw[name]
        if name == "LAYERS_DONE":
            return self._layers_done
        if name == "TOTAL_CYCLES":
            return self._total_cycles & 0xFFFFFFFF
        if name is not None and name.startswith("LAYER_CYCLES"):
            return self._layer_cycles[int(name[len("LAYER_CYCLES"):])] & 0xFFFFFFFF
        return 0          # CTRL (write-only) and unused offsets read as 0

    def _write_reg(self, offset, value):
        name = _OFFSETS.get(offset)
        if name in self._rw:
            self._rw[name] = value
        elif name == "CTRL":
            if CTRL_CLEAR.get(value):
                self._done = self._error = self._start_ignored = False
            if CTRL_START.get(value):
                if self.busy:
                    self._start_ignored = True
                else:
                    self._start()
        # writes to read-only registers and unused offsets are ignored, as in the hardware

    def _start(self):
        """Run the descriptor list the registers describe, as the engine would."""
        self.starts += 1
        p = self._params
        desc_addr, count = self._rw["DESC_ADDR"], REG["DESC_COUNT"].field("count").get(self._rw["DESC_COUNT"])
        # The engine touches nothing outside WINDOW; the model has nothing outside the arena.
        lo = max(self._rw["WINDOW_BASE"], self._base)
        hi = min(self._rw["WINDOW_BASE"] + self._rw["WINDOW_SIZE"], self._base + self._size)
        window = (lo, max(hi - lo, 0))
        readable = 0
        while (readable < count and desc_addr >= lo
               and desc_addr + (readable + 1) * DESCRIPTOR.nbytes <= hi):
            readable += 1
        if desc_addr % p.bus_bytes:
            readable = 0
        descs = []
        for i in range(readable):
            a = desc_addr + i * DESCRIPTOR.nbytes - self._base
            try:
                descs.append(Descriptor.from_bytes(self.memory[a:a + DESCRIPTOR.nbytes].tobytes(), p))
            except FormatError:
                descs.append(None)
        err, index = execute_program(_ArenaView(self.memory, self._base), desc_addr, readable, p, window)
        if err == ERR_NONE and readable < count:
            err, index = (ERR_ALIGN if desc_addr % p.bus_bytes else ERR_ADDRESS), readable
        cycles = [int(self._cycle_model(d)) if self._cycle_model else 0 for d in descs[:index]]
        self._layer_cycles = (cycles + [0] * MAX_LAYER_COUNTERS)[:MAX_LAYER_COUNTERS]
        self._total_cycles = sum(cycles)
        self._layers_done = index
        layer_id = descs[index].layer_id if err and index < len(descs) and descs[index] is not None else 0
        f = REG["ERROR"]
        self._error_reg = sum((v << f.field(n).lsb) & f.field(n).mask for n, v in
                              (("code", err), ("index", index), ("layer_id", layer_id))) if err else 0
        self._error = err != ERR_NONE
        self._done = True
        self._busy_until = self._time + self._total_cycles / self._clock_hz

    # -- memory ----------------------------------------------------------------------------

    def _mem_read(self, addr, nbytes):
        a = addr - self._base
        return self.memory[a:a + nbytes].tobytes()

    def _mem_write(self, addr, data):
        a = addr - self._base
        self.memory[a:a + len(data)] = np.frombuffer(data, dtype=np.uint8)

    def _close(self):
        self.memory = np.zeros(0, dtype=np.uint8)


def create_transport(params, **kw):
    """The registry's constructor for this backend (see :func:`sw.backends.get_transport`)."""
    return GoldenTransport(params, **kw)
