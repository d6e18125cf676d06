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
"""

from dataclasses import dataclass, field

from models.board import BUFFER_ALIGN
from models.engine import ERROR_NAMES
from models.regmap import (CTRL_CLEAR, CTRL_START, ID_MAGIC, MAX_LAYER_COUNTERS, REG, STATUS_BUSY, STATUS_DONE,
                           STATUS_ERROR, STATUS_START_IGNORED, VERSION)

from .errors import AcceleratorError, AcceleratorTimeoutError, TransportError

__all__ = ["Accelerator", "RunResult", "DeviceInfo", "DEFAULT_TIMEOUT_S"]

#: Default time a descriptor list may take (device time base of the transport).
DEFAULT_TIMEOUT_S = 2.0
_ALIGN = BUFFER_ALIGN


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
            (the message names the error, the descriptor index and the layer), or stopped early.
        AcceleratorTimeoutError
            If done did not come within ``timeout_s``.
        """
        names = list(names) if names is not None else [f"descriptor {i}" for i in range(count)]
        where = f"{self.transport.name} backend"
        status = self.read("STATUS")
        if STATUS_BUSY.get(status):
            raise AcceleratorError(f"{where}: the accelerator is busy with another descriptor list")
        self.write("CTRL", CTRL_CLEAR.mask)
        self.write("WINDOW_BASE", window[0])
        self.write("WINDOW_SIZE", window[1])
        self.write("DESC_ADDR", desc_addr)
        self.write("DESC_COUNT", count)
        self.write("CTRL", CTRL_START.mask)
        status = self._wait_done(names)
        if STATUS_START_IGNORED.get(status):
            raise AcceleratorError(f"{where}: the accelerator ignored the start of {', '.join(names)} "
                                   f"(it was busy)")
        if STATUS_ERROR.get(status):
            err = REG["ERROR"]
            word = self.read("ERROR")
            code, index, layer_id = (err.field(f).get(word) for f in ("code", "index", "layer_id"))
            layer = names[index] if index < len(names) else "?"
            raise AcceleratorError(f"{where}: accelerator error '{ERROR_NAMES.get(code, f'unknown {code}')}' "
                                   f"(code {code}) at descriptor {index} of {count}: layer {layer} "
                                   f"(layer_id {layer_id})")
        done = self.read("LAYERS_DONE")
        if done != count:
            raise AcceleratorError(f"{where}: the accelerator reported done after {done} of {count} descriptors "
                                   f"without an error")
        layer_cycles = {names[i]: self.read(f"LAYER_CYCLES{i}") for i in range(min(count, MAX_LAYER_COUNTERS))}
        return RunResult(layers=names, layers_done=done, total_cycles=self.read("TOTAL_CYCLES"),
                         layer_cycles=layer_cycles)

    def _wait_done(self, names):
        t = self.transport
        deadline = t.now() + self.timeout_s
        delay, delay_max = self._poll
        while True:
            status = t.read_reg(REG["STATUS"].offset)
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
