"""A golden-model transport that injects faults, for testing the host layer under them.

:class:`FaultyTransport` is :class:`sw.backends.golden.GoldenTransport` (the functional model
behind the register map) with faults armed for a given start of a descriptor list:

``Fault("error", start=k, index=i, code=c)``
    the ``k``-th list stops at its descriptor ``i`` with error code ``c`` (a device error mid-list);
``Fault("hang", start=k, seconds=s)``
    the ``k``-th list stays busy for ``s`` seconds of device time (longer than the driver's
    timeout: a timeout; it then ends);
``Fault("stuck_busy", start=k, reads=n)``
    STATUS shows busy for the next ``n`` reads after the ``k``-th start, although the list ended;
``Fault("garbage", start=k, register=R, value=v, reads=n)``
    the first ``n`` reads of register ``R`` after the ``k``-th start return ``v`` (a failed bus
    read returns all ones on the board's bridge).

Starts count from 1. ``create_transport`` (a registry constructor, as the backends have) reads
faults from ``$LMF_FAULTS``, e.g. ``"error:start=2:index=1:code=7;garbage:start=3:register=STATUS:
value=0xffffffff"``, so the command line can be run against it.
"""

from dataclasses import dataclass, field
import os

from models.engine import ERROR_NAMES
from models.regmap import REG, STATUS_BUSY

from sw.backends.golden import GoldenTransport

__all__ = ["Fault", "FaultyTransport", "create_transport", "parse_faults"]

_KINDS = ("error", "hang", "stuck_busy", "garbage")


@dataclass
class Fault:
    """One fault, armed for the ``start``-th descriptor list (see the module doc)."""

    kind: str
    start: int = 1
    index: int = 0
    code: int = 7
    seconds: float = 10.0
    reads: int = 1
    register: str = "STATUS"
    value: int = 0xFFFFFFFF
    fired: bool = field(default=False, compare=False)

    def __post_init__(self):
        if self.kind not in _KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(_KINDS)}, not {self.kind!r}")
        if self.kind == "error" and self.code not in ERROR_NAMES:
            raise ValueError(f"fault code must be one of {sorted(ERROR_NAMES)}, not {self.code!r}")
        if self.register not in REG:
            raise ValueError(f"fault register must be a register of models.regmap, not {self.register!r}")


def parse_faults(text):
    """``"kind:key=value:...;kind..."`` -> list of :class:`Fault`."""
    faults = []
    for item in filter(None, (t.strip() for t in (text or "").split(";"))):
        kind, *pairs = item.split(":")
        kw = {}
        for pair in pairs:
            key, _, value = pair.partition("=")
            kw[key] = value if key == "register" else (float(value) if key == "seconds" else int(value, 0))
        faults.append(Fault(kind, **kw))
    return faults


class FaultyTransport(GoldenTransport):
    """The golden transport with :class:`Fault` s; ``faults`` lists them, ``fired`` those that hit."""

    name = "faulty"

    def __init__(self, params, faults=(), **kw):
        super().__init__(params, **kw)
        self.faults = list(faults)
        self.fired = []
        self._busy_reads = 0
        self._garbage = {}         # register name -> [value, reads left]

    def _armed(self, kind):
        for f in self.faults:
            if f.kind == kind and f.start == self.starts and not f.fired:
                f.fired = True
                self.fired.append(f)
                return f
        return None

    def _start(self):
        super()._start()
        f = self._armed("error")
        if f is not None and f.index < self._rw["DESC_COUNT"]:
            err = REG["ERROR"]
            self._layers_done = f.index
            self._error = True
            self._error_reg = ((f.code << err.field("code").lsb) | (f.index << err.field("index").lsb)
                               | (0x5A << err.field("layer_id").lsb))
        f = self._armed("hang")
        if f is not None:
            self._busy_until = self._time + f.seconds
        f = self._armed("stuck_busy")
        if f is not None:
            self._busy_reads = f.reads
        f = self._armed("garbage")
        if f is not None:
            self._garbage[f.register] = [f.value, f.reads]

    def _read_reg(self, offset):
        name = next(r.name for r in REG.values() if r.offset == offset) if any(
            r.offset == offset for r in REG.values()) else None
        if name in self._garbage and self._garbage[name][1] > 0:
            self._garbage[name][1] -= 1
            return self._garbage[name][0]
        value = super()._read_reg(offset)
        if name == "STATUS" and self._busy_reads > 0:
            self._busy_reads -= 1
            value |= STATUS_BUSY.mask
        return value


def create_transport(params, **kw):
    """Registry constructor: faults from ``$LMF_FAULTS`` (see the module doc)."""
    return FaultyTransport(params, parse_faults(os.environ.get("LMF_FAULTS", "")), **kw)
