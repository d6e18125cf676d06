"""The accelerator driver, written once over any :class:`sw.transport.Transport`.

Every register offset and bit comes from :mod:`models.regmap`. One descriptor list runs as::

    STATUS.busy must be 0
    CTRL        <- clear                     (done, error, start_ignored)
    WINDOW_BASE <- arena base, WINDOW_SIZE <- program size
    DESC_ADDR   <- first descriptor, DESC_COUNT <- descriptors in the list
    CTRL        <- start
    poll STATUS until done (busy = 0), within the timeout
    STATUS.error -> ERROR (code, index, layer_id) -> AcceleratorError naming the layer
    LAYERS_DONE, TOTAL_CYCLES, LAYER_CYCLES0..15 -> RunResult

When a list fails (an error, a timeout, a register value that cannot be right), the driver raises
one error and leaves the device in a known state: if it is not busy, CTRL.clear (STATUS reads 0);
if it is still busy (a list that timed out), the next :meth:`Accelerator.run` first waits, up to
the timeout, for that list to end before it starts its own. A STATUS with bits set that the
register map does not define, an ERROR whose code is unknown or whose index lies outside the
list, and a LAYERS_DONE beyond the list are reported as unreadable registers (a failed bus read
returns such values), never taken for results.
"""

from dataclasses import dataclass, field

from models.board import BUFFER_ALIGN
from models.engine import ERROR_NAMES
from models.regmap import (CTRL_CLEAR, CTRL_START, ID_MAGIC, MAX_LAYER_COUNTERS, REG, STATUS_BUSY, STATUS_DONE,
                           STATUS_ERROR, STATUS_START_IGNORED, VERSION)

from .errors import AcceleratorError, AcceleratorTimeoutError, HostError, TransportError

__all__ = ["Accelerator", "RunResult", "DeviceInfo", "DEFAULT_TIMEOUT_S"]

#: Default time a descriptor list may take (device time base of the transport).
DEFAULT_TIMEOUT_S = 2.0
_ALIGN = BUFFER_ALIGN
#: Every bit STATUS defines; a read with another bit set is not a status.
_STATUS_BITS = STATUS_BUSY.mask | STATUS_DONE.mask | STATUS_ERROR.mask | STATUS_START_IGNORED.mask
_MAX_COUNT = (1 << REG["DESC_COUNT"].field("count").width) - 1


@dataclass(frozen=True)
class DeviceInfo:
    """What the identification registers report."""

    ident: int
    version: int
    pe_count: int
    simd_lanes: int
    acc_bits: int

    @property
    def version_str(self):
        return f"{self.version >> 16}.{self.version & 0xFFFF}"


@dataclass
class RunResult:
    """Counters of one descriptor list.

    Members
    -------
    layers : list of str
        Names of the descriptors in the list (as given to :meth:`Accelerator.run`).
    layers_done : int
    total_cycles : int
    layer_cycles : dict of str -> int
        Cycles by layer name (the first ``MAX_LAYER_COUNTERS`` descriptors of the list).
    """

    layers: list
    layers_done: int
    total_cycles: int
    layer_cycles: dict = field(default_factory=dict)


def _pack(reg, **values):
    word = 0
    for name, v in values.items():
        f = reg.field(name)
        word |= (v << f.lsb) & f.mask
    return word


class Accelerator:
    """The accelerator behind a transport.

    Parameters
    ----------
    transport : sw.transport.Transport
    params : models.engine.EngineParams
        The configuration the host compiled for; checked against ``CONFIG``.
    timeout_s : float, keyword-only
        Longest time one descriptor list may run, in the transport's time base.
    poll_min_s, poll_max_s : float, keyword-only
        Polling interval: starts at ``poll_min_s`` and doubles up to ``poll_max_s``.
    check : bool, keyword-only
        Check ID, VERSION and CONFIG on construction (default).

    Members
    -------
    transport, params, timeout_s
    program : sw.program.Program or None
        The loaded program.

    Raises
    ------
    AcceleratorError
        If ID is not ``"LMFN"``, the VERSION major differs or its minor is older, or CONFIG
        differs from ``params`` (the message shows both).
    ValueError
        If a timing parameter is not a positive number.
    """

    def __init__(self, transport, params, *, timeout_s=DEFAULT_TIMEOUT_S, poll_min_s=20e-6, poll_max_s=1e-3,
                 check=True):
        for what, v in (("timeout_s", timeout_s), ("poll_min_s", poll_min_s), ("poll_max_s", poll_max_s)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ValueError(f"{what} must be a positive number, not {v!r}")
        if poll_max_s < poll_min_s:
            raise ValueError(f"poll_max_s must be >= poll_min_s ({poll_min_s}), not {poll_max_s!r}")
        self.transport = transport
        self.params = params
        self.timeout_s = float(timeout_s)
        self._poll = (float(poll_min_s), float(poll_max_s))
        self.program = None
        self._regions = []          # (address, size, name) claimed in the arena
        self._unfinished = False    # a list timed out and may still be running
        if check:
            self.check()

    # -- registers by name -----------------------------------------------------------------

    def read(self, name):
        """Read a register by its ``models.regmap`` name."""
        return self.transport.read_reg(REG[name].offset)

    def write(self, name, value):
        """Write a register by its ``models.regmap`` name."""
        self.transport.write_reg(REG[name].offset, value)

    # -- identification --------------------------------------------------------------------

    def info(self):
        """Read ID, VERSION and CONFIG."""
        cfg = REG["CONFIG"]
        word = self.read("CONFIG")
        return DeviceInfo(ident=self.read("ID"), version=self.read("VERSION"),
                          pe_count=cfg.field("pe_count").get(word), simd_lanes=cfg.field("simd_lanes").get(word),
                          acc_bits=cfg.field("acc_bits").get(word))

    def check(self):
        """Check that the device is the accelerator ``params`` describes; returns its :class:`DeviceInfo`."""
        info = self.info()
        where = f"{self.transport.name} backend"
        if info.ident != ID_MAGIC:
            raise AcceleratorError(f"{where}: no LMFlowNet accelerator: ID reads 0x{info.ident:08X}, "
                                   f"expected 0x{ID_MAGIC:08X} (\"LMFN\")")
        if info.version >> 16 != VERSION >> 16 or info.version & 0xFFFF < VERSION & 0xFFFF:
            raise AcceleratorError(f"{where}: accelerator version {info.version_str} is not compatible with the "
                                   f"host's {VERSION >> 16}.{VERSION & 0xFFFF}")
        p = self.params
        found = (info.pe_count, info.simd_lanes, info.acc_bits)
        expected = (p.pe_count, p.simd_lanes, p.acc_bits)
        if found != expected:
            raise AcceleratorError(f"{where}: accelerator configuration P={found[0]}, S={found[1]}, "
                                   f"acc_bits={found[2]} does not match the expected P={expected[0]}, "
                                   f"S={expected[1]}, acc_bits={expected[2]}")
        return info

    # -- device memory ---------------------------------------------------------------------

    @property
    def arena(self):
        return self.transport.arena

    def free_base(self, align=_ALIGN):
        """Lowest aligned device address above every claimed region."""
        base, _ = self.arena
        top = max([a + n for a, n, _ in self._regions], default=base)
        return -(-top // align) * align

    def claim(self, addr, nbytes, name):
        """Reserve ``[addr, addr + nbytes)`` of the arena for ``name``.

        Raises
        ------
        TransportError
            If the region is outside the arena or overlaps a claimed one.
        """
        base, size = self.arena
        if addr < base or addr + nbytes > base + size:
            raise TransportError(f"{self.transport.name}: {name} needs 0x{addr:x} + {nbytes} bytes, outside the "
                                 f"device arena 0x{base:x} .. 0x{base + size:x} ({size} bytes)")
        for a, n, other in self._regions:
            if addr < a + n and a < addr + nbytes:
                raise TransportError(f"{self.transport.name}: {name} at 0x{addr:x} + {nbytes} bytes overlaps "
                                     f"{other} at 0x{a:x} + {n} bytes")
        self._regions.append((addr, nbytes, name))
        return addr

    def allocate(self, nbytes, name, align=_ALIGN):
        """Claim ``nbytes`` at the next free aligned address; returns the device address."""
        return self.claim(self.free_base(align), nbytes, name)

    def mem_write(self, addr, data):
        self.transport.mem_write(addr, data)

    def mem_read(self, addr, nbytes):
        return self.transport.mem_read(addr, nbytes)

    # -- programs --------------------------------------------------------------------------

    def load(self, program):
        """Claim a compiled program's region and write its constants (descriptors, weights,
        thresholds, zeroed tensors) once.

        Raises
        ------
        AcceleratorError
            If the program was compiled for another engine configuration.
        TransportError
            If its region does not fit the arena or overlaps a claimed region.
        """
        if program.params != self.params:
            raise AcceleratorError(f"the program was compiled for {program.params}, the driver expects "
                                   f"{self.params}")
        self.claim(program.base, program.size, "the program")
        self.transport.mem_write(program.base, program.constants)
        self.program = program

    def run_segment(self, segment):
        """Run one :class:`sw.program.Segment` of the loaded program."""
        if self.program is None:
            raise AcceleratorError("no program is loaded")
        prog = self.program
        return self.run(prog.base + segment.desc_offset, segment.count, prog.window, names=segment.layers)

    def run(self, desc_addr, count, window, names=None):
        """Run ``count`` descriptors from ``desc_addr`` with the engine confined to ``window``.

        Parameters
        ----------
        desc_addr : int
        count : int
        window : tuple of int
            ``(base, size)`` written to WINDOW_BASE / WINDOW_SIZE.
        names : list of str, optional
            Layer names of the descriptors, for messages and :class:`RunResult`.

        Returns
        -------
        RunResult

        Raises
        ------
        AcceleratorError
            If the accelerator is busy before the start, ignored the start, reported an error
            (the message names the error, the descriptor index and the layer), stopped early, or
            a register read back a value it cannot hold.
        AcceleratorTimeoutError
            If done did not come within ``timeout_s`` (or a list that timed out before is still
            running after another ``timeout_s``).
        ValueError
            If ``count`` is not in ``0 .. 65535`` (DESC_COUNT).
        """
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= _MAX_COUNT:
            raise ValueError(f"count must be an integer in 0 .. {_MAX_COUNT} (DESC_COUNT), not {count!r}")
        names = list(names) if names is not None else [f"descriptor {i}" for i in range(count)]
        where = f"{self.transport.name} backend"
        status = self._status(where)
        if STATUS_BUSY.get(status):
            if not self._unfinished:
                raise AcceleratorError(f"{where}: the accelerator is busy with another descriptor list")
            self._wait_idle(where)
        self._unfinished = False
        self.write("CTRL", CTRL_CLEAR.mask)
        self.write("WINDOW_BASE", window[0])
        self.write("WINDOW_SIZE", window[1])
        self.write("DESC_ADDR", desc_addr)
        self.write("DESC_COUNT", count)
        self.write("CTRL", CTRL_START.mask)
        try:
            return self._finish(where, names, count)
        except AcceleratorTimeoutError:
            self._recover(wait=False)
            raise
        except HostError:
            self._recover(wait=True)
            raise

    def _finish(self, where, names, count):
        status = self._wait_done(names)
        if STATUS_START_IGNORED.get(status):
            raise AcceleratorError(f"{where}: the accelerator ignored the start of {', '.join(names)} "
                                   f"(it was busy)")
        if STATUS_ERROR.get(status):
            err = REG["ERROR"]
            word = self.read("ERROR")
            code, index, layer_id = (err.field(f).get(word) for f in ("code", "index", "layer_id"))
            if code not in ERROR_NAMES or code == 0 or index >= count:
                raise AcceleratorError(f"{where}: ERROR reads 0x{word:08x} (code {code}, descriptor {index}) after "
                                       f"a list of {count}: not an error the accelerator can report (a failed "
                                       f"register read?)")
            raise AcceleratorError(f"{where}: accelerator error '{ERROR_NAMES[code]}' "
                                   f"(code {code}) at descriptor {index} of {count}: layer {names[index]} "
                                   f"(layer_id {layer_id})")
        done = self.read("LAYERS_DONE")
        if done > count:
            raise AcceleratorError(f"{where}: LAYERS_DONE reads {done} (0x{done:x}) after a list of {count} "
                                   f"descriptors (a failed register read?)")
        if done != count:
            raise AcceleratorError(f"{where}: the accelerator reported done after {done} of {count} descriptors "
                                   f"without an error")
        layer_cycles = {names[i]: self.read(f"LAYER_CYCLES{i}") for i in range(min(count, MAX_LAYER_COUNTERS))}
        return RunResult(layers=names, layers_done=done, total_cycles=self.read("TOTAL_CYCLES"),
                         layer_cycles=layer_cycles)

    def _status(self, where):
        status = self.read("STATUS")
        if status & ~_STATUS_BITS:
            raise AcceleratorError(f"{where}: STATUS reads 0x{status:08x}: bits the register map does not "
                                   f"define are set (a failed register read?)")
        return status

    def _recover(self, wait):
        """After a failed list: wait (``wait``: up to the timeout) for the device to be idle, then
        CTRL.clear; if it stays busy, remember that a list may still be running (the next run
        waits for it). Never raises: the first error stands."""
        t = self.transport
        deadline = t.now() + (self.timeout_s if wait else 0.0)
        delay, delay_max = self._poll
        try:
            while True:
                status = self.read("STATUS")
                if not status & ~_STATUS_BITS and not STATUS_BUSY.get(status):
                    self.write("CTRL", CTRL_CLEAR.mask)
                    return
                if t.now() >= deadline:
                    self._unfinished = True
                    return
                t.wait(delay)
                delay = min(delay * 2, delay_max)
        except HostError:
            self._unfinished = True

    def _wait_idle(self, where):
        """Wait up to the timeout for a list that timed out before to end."""
        t = self.transport
        deadline = t.now() + self.timeout_s
        delay, delay_max = self._poll
        while STATUS_BUSY.get(self._status(where)):
            if t.now() >= deadline:
                raise AcceleratorTimeoutError(f"{where}: the accelerator is still busy with a descriptor list that "
                                              f"timed out before, {self.timeout_s:g} s later")
            t.wait(delay)
            delay = min(delay * 2, delay_max)

    def _wait_done(self, names):
        t = self.transport
        where = f"{t.name} backend"
        deadline = t.now() + self.timeout_s
        delay, delay_max = self._poll
        while True:
            status = self._status(where)
            if STATUS_DONE.get(status) and not STATUS_BUSY.get(status):
                return status
            if STATUS_START_IGNORED.get(status) and not STATUS_BUSY.get(status):
                return status
            if t.now() >= deadline:
                raise AcceleratorTimeoutError(
                    f"{t.name} backend: timeout: the accelerator did not finish {', '.join(names)} within "
                    f"{self.timeout_s:g} s (STATUS=0x{status:x}, LAYERS_DONE={self.read('LAYERS_DONE')})")
            t.wait(delay)
            delay = min(delay * 2, delay_max)

    def close(self):
        """Close the transport."""
        self.transport.close()
