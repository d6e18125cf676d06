"""The DE10-Nano board frame model: how long one frame takes on the board, and how many frames a
second it sustains when the ARM's work on frame ``n+1`` overlaps the FPGA's on frame ``n``.

No board is needed: the model adds up the parts of a frame, each counted exactly and priced with
a rate from a YAML file (``models/configs/board/de10nano.yaml``, every rate with its source):

FPGA, per layer
    Cycles from the exact cycle model (:func:`models.cycles.descriptor_cycles` on the compiled
    program's descriptors), at the hardware configuration's clock. That model's memory answers
    one bus word per cycle after a fixed latency; on the board the FPGA-to-SDRAM port is slower
    (reads ~980 MB/s for 128 bits at 100 MHz, where one word a cycle is 1.6 GB/s; writes
    1450 MB/s for the first 128 KB, then 300-360 MB/s). :func:`models.cycles.descriptor_phases` splits a
    descriptor's cycles into the phases of the engine's state machine: fixed control cycles,
    *load* phases (descriptor, source tensor, first weight tile, threshold records) in which
    the engine waits for memory, and per output tile a *compute* phase during which the next
    tile's weights are prefetched and the tile's results written. On the board a load phase
    takes its bytes at the port's read rate (plus the board's read latency); a compute phase
    takes the longer of its PE-array cycles and the port time of the reads and writes it
    overlaps (one port carries both, ``hw/avalon_merge.py``). Reads and writes are the bytes
    the engine moves: ``Descriptor.regions()`` for reads; for writes one bus word per output
    pixel and tile (codes are written as masked single beats) or the raw accumulator beats.
ARM, per frame
    The host's work as :mod:`sw.ledger` counts it from the runtime's real code path: float
    multiply-accumulates and element passes of every host step (float ends: frame scaling,
    conv1, upsample_flow3, predict_flow2 with their dequantization, im2col, batch norm,
    quantizer; quantized ends: the frame-pair image, the dequantization of predict_flow2's
    multi-plane raw accumulators; both: the flow's scaling and bilinear upsampling), packing
    and unpacking, device-memory bytes and calls (uncached, or cached with a sync per
    transfer), register accesses, polls and the sleeps between them (the driver's polling,
    replayed with the board's FPGA time).
Frame
    ``frame_ms`` is the latency of a frame run as the runtime runs it now: every part in turn,
    the host noticing the end of a descriptor list at its next poll. With frame pipelining
    (two or more frames in flight, double-buffered tensors) one frame costs the busier of the
    two processors: ``period = max(ARM busy, FPGA busy)``, ``fps = 1 / period``.

What the model leaves out (docs/board.md): contention between the ARM and the FPGA for the DDR3,
the second ARM core (the runtime is one thread), cache effects beyond the rates, and the time
to start Python and load the program (once per model).
"""

from dataclasses import dataclass, fields
import inspect
import os

import yaml

from models.cycles import descriptor_cycles, descriptor_phases, load_cycles, phase_cycles
from models.errors import ConfigError
from models.network import CONFIG_DIR

from .ledger import derive_frame_work, poll_schedule, total

__all__ = ["BoardRates", "load_board_rates", "default_rates_path", "descriptor_phases", "phase_cycles", "fpga_layer",
           "segment_fpga_s", "price_work", "estimate_frame", "DEVICE_MEMORY_MODES", "PROFILE_KEYS"]

#: Ways the host maps the device memory.
DEVICE_MEMORY_MODES = ("uncached", "cached_sync")

_ARM_KEYS = ("clock_mhz", "profile", "profiles", "memcpy_mb_s", "device_memory", "uncached_write_mb_s",
             "uncached_read_mb_s", "sync_call_us", "mem_call_us", "reg_access_us", "sleep_overhead_us")
#: The rates of one ARM profile (``arm.profiles.<name>``).
PROFILE_KEYS = ("float_conv_gmac_s", "matmul_loop_ns", "float_elem_ns", "elem_loop_ns", "copy_elem_ns", "byte_elem_ns",
                "numpy_call_us")
_PORT_KEYS = ("read_mb_s", "port_clock_mhz", "write_mb_s", "write_fast_bytes", "write_sustained_mb_s",
              "read_latency_cycles", "derate")


def default_rates_path():
    """``models/configs/board/de10nano.yaml``."""
    return os.path.join(CONFIG_DIR, "board", "de10nano.yaml")


_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(CONFIG_DIR)))


def shown_path(path):
    """``path`` relative to the project's root when it lies inside it (for reports)."""
    full = os.path.abspath(path)
    return os.path.relpath(full, _ROOT) if full.startswith(_ROOT + os.sep) else path


@dataclass(frozen=True)
class BoardRates:
    """The rates of one board (see ``models/configs/board/de10nano.yaml`` for each one's meaning
    and source): sections ``arm`` and ``f2sdram`` of the file, flattened; ``profiles`` maps a
    profile name to its :data:`PROFILE_KEYS`, ``profile`` is the one in use (its rates are the
    properties :attr:`conv_gmac_s`, :attr:`float_elem_ns`, ...); ``source`` is the file."""

    name: str
    clock_mhz: float
    profile: str
    profiles: dict
    memcpy_mb_s: float
    device_memory: str
    uncached_write_mb_s: float
    uncached_read_mb_s: float
    sync_call_us: float
    mem_call_us: float
    reg_access_us: float
    sleep_overhead_us: float
    read_mb_s: float
    port_clock_mhz: float
    write_mb_s: float
    write_fast_bytes: int
    write_sustained_mb_s: float
    read_latency_cycles: int
    derate: float
    source: str = "<dict>"

    @classmethod
    def from_dict(cls, data, source="<dict>"):
        """Validate a rates dictionary (as read from YAML).

        Raises
        ------
        ConfigError
            ``"<source>: <section.key>: <what is wrong>"``: an unknown or missing key, a value of
            the wrong type or out of range.
        """
        def fail(key, msg):
            raise ConfigError(f"{source}: {key}: {msg}")

        def keys_of(where, mapping, keys):
            if not isinstance(mapping, dict):
                fail(where, f"must be a mapping with {', '.join(keys)}, not {mapping!r}")
            for key in mapping:
                if key not in keys:
                    fail(f"{where}.{key}", f"unknown key (expected one of {', '.join(keys)})")
            for key in keys:
                if key not in mapping:
                    fail(f"{where}.{key}", "missing")

        def positive(where, v):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                fail(where, f"must be a positive number, not {v!r}")
            return float(v)

        def count(where, v):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                fail(where, f"must be an integer >= 0, not {v!r}")
            return v

        if not isinstance(data, dict):
            raise ConfigError(f"{source}: the board rates must be a mapping, not {type(data).__name__}")
        for key in data:
            if key not in ("name", "arm", "f2sdram"):
                fail(key, "unknown key (expected name, arm, f2sdram)")
        name = data.get("name", os.path.splitext(os.path.basename(source))[0])
        if not isinstance(name, str) or not name:
            fail("name", f"must be a non-empty string, not {name!r}")
        out = {}
        for section, keys in (("arm", _ARM_KEYS), ("f2sdram", _PORT_KEYS)):
            sec = data.get(section)
            keys_of(section, sec, keys)
            for key in keys:
                where, v = f"{section}.{key}", sec[key]
                if key == "profile":
                    if not isinstance(v, str):
                        fail(where, f"must be the name of an entry of arm.profiles, not {v!r}")
                    out[key] = v
                elif key == "profiles":
                    if not isinstance(v, dict) or not v:
                        fail(where, f"must map profile names to their rates ({', '.join(PROFILE_KEYS)}), "
                                    f"not {v!r}")
                    profiles = {}
                    for pname, prof in v.items():
                        keys_of(f"{where}.{pname}", prof, PROFILE_KEYS)
                        profiles[str(pname)] = {k: positive(f"{where}.{pname}.{k}", prof[k]) for k in PROFILE_KEYS}
                    out[key] = profiles
                elif key == "device_memory":
                    if v not in DEVICE_MEMORY_MODES:
                        fail(where, f"must be one of {', '.join(DEVICE_MEMORY_MODES)}, not {v!r}")
                    out[key] = v
                elif key in ("write_fast_bytes", "read_latency_cycles"):
                    out[key] = count(where, v)
                elif key == "derate":
                    r = positive(where, v)
                    if r > 1:
                        fail(where, f"must be in (0, 1], not {v!r}")
                    out[key] = r
                else:
                    out[key] = positive(where, v)
        if out["profile"] not in out["profiles"]:
            fail("arm.profile", f"must be one of {', '.join(sorted(out['profiles']))} (the entries of arm.profiles), "
                                f"not {out['profile']!r}")
        return cls(name=name, source=source, **out)

    def to_dict(self):
        """The rates as a YAML-ready dictionary (inverse of :meth:`from_dict`)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        return {"name": d["name"], "arm": {k: d[k] for k in _ARM_KEYS}, "f2sdram": {k: d[k] for k in _PORT_KEYS}}

    def with_(self, **changes):
        """A copy with some rates changed (validated like the file): keys of ``arm`` or
        ``f2sdram`` (``profile="tuned"``, ``device_memory="cached_sync"``, ...)."""
        d = self.to_dict()
        for k, v in changes.items():
            if k in _ARM_KEYS:
                d["arm"][k] = v
            elif k in _PORT_KEYS:
                d["f2sdram"][k] = v
            else:
                raise ConfigError(f"{self.source}: {k}: unknown rate (expected one of "
                                  f"{', '.join(_ARM_KEYS + _PORT_KEYS)})")
        return BoardRates.from_dict(d, source=self.source)

    @property
    def conv_gmac_s(self):
        """Float-convolution rate of the profile in use."""
        return self.profiles[self.profile]["float_conv_gmac_s"]

    @property
    def float_elem_ns(self):
        return self.profiles[self.profile]["float_elem_ns"]

    @property
    def matmul_loop_ns(self):
        return self.profiles[self.profile]["matmul_loop_ns"]

    @property
    def elem_loop_ns(self):
        return self.profiles[self.profile]["elem_loop_ns"]

    @property
    def copy_elem_ns(self):
        return self.profiles[self.profile]["copy_elem_ns"]

    @property
    def byte_elem_ns(self):
        return self.profiles[self.profile]["byte_elem_ns"]

    @property
    def numpy_call_us(self):
        return self.profiles[self.profile]["numpy_call_us"]


def load_board_rates(path=None):
    """Read and validate a board rates YAML file (default ``models/configs/board/de10nano.yaml``).

    Raises
    ------
    ConfigError
        If the file is missing or unreadable, is not YAML, or fails validation; the message names
        the file and the key.
    """
    path = default_rates_path() if path is None else os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read board rates: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}".replace("\n", " ")) from None
    return BoardRates.from_dict(data, source=path)


# -- FPGA ----------------------------------------------------------------------------------

class _WritePort:
    """Write time of a layer's results: the first ``fast_bytes`` at ``fast``, the rest at ``slow``."""

    def __init__(self, rates):
        d = rates.derate
        self.fast = rates.write_mb_s * 1e6 * d
        self.slow = rates.write_sustained_mb_s * 1e6 * d
        self.fast_bytes = rates.write_fast_bytes
        self.done = 0

    def time(self, nbytes):
        fast = max(min(nbytes, self.fast_bytes - self.done), 0)
        self.done += nbytes
        return fast / self.fast + (nbytes - fast) / self.slow


def fpga_layer(desc, clock_hz, rates):
    """One accelerator layer on the board.

    Parameters
    ----------
    desc : models.engine.Descriptor
    clock_hz : float
        The accelerator's clock.
    rates : BoardRates

    Returns
    -------
    dict
        ``cycles`` (exact cycle model), ``model_ms`` (those cycles at ``clock_hz``),
        ``board_ms`` (with the F2SDRAM port's rates and latency), ``read_bytes`` and
        ``write_bytes`` through the port, ``dst_bytes`` (the destination region), ``load_ms``
        and ``compute_ms`` (the board time's two kinds of phases), ``memory_ms`` (what the port
        adds to the cycle model), ``bound`` (``"memory"`` when the port adds more than 5 %).
    """
    p = desc.params
    ph = descriptor_phases(desc, p)
    cycles = descriptor_cycles(desc, p)
    bus = p.bus_bytes
    read_bw = rates.read_mb_s * 1e6 * rates.derate
    lat = rates.read_latency_cycles
    port = _WritePort(rates)
    load_s = 0.0
    for _, words in ph["loads"]:
        load_s += load_cycles(0, lat) / clock_hz + max(words / clock_hz, words * bus / read_bw)
    compute_s = 0.0
    for compute, prefetch, beats in ph["tiles"]:
        port_s = port.time(beats * bus)
        if prefetch:
            port_s += load_cycles(0, lat) / clock_hz + prefetch * bus / read_bw
        compute_s += max(compute / clock_hz, port_s)
    board_s = ph["fixed"] / clock_hz + load_s + compute_s
    regions = desc.regions()
    read_bytes = bus * (sum(w for _, w in ph["loads"]) + sum(pf for _, pf, _ in ph["tiles"]))
    write_bytes = bus * sum(b for _, _, b in ph["tiles"])
    model_s = cycles / clock_hz
    return {"cycles": cycles, "model_ms": model_s * 1e3, "board_ms": board_s * 1e3,
            "read_bytes": read_bytes, "write_bytes": write_bytes, "dst_bytes": regions["dst"][1],
            "load_ms": (ph["fixed"] / clock_hz + load_s) * 1e3, "compute_ms": compute_s * 1e3,
            "memory_ms": (board_s - model_s) * 1e3, "bound": "memory" if board_s > 1.05 * model_s else "compute"}


def segment_fpga_s(layer_times, clock_hz):
    """Board time of one descriptor list: its layers plus one cycle each and one to finish
    (``models.cycles.list_cycles``)."""
    return sum(t["board_ms"] for t in layer_times) / 1e3 + (len(layer_times) + 1) / clock_hz


# -- ARM -----------------------------------------------------------------------------------

def price_work(work, rates):
    """Seconds of one :class:`sw.ledger.Work` on the ARM: the matrix products at the profile's
    float-convolution rate plus their inner-loop overhead, every element pass, inner loop of a
    broadcast pass and call at its cost."""
    matmul = work.macs / (rates.conv_gmac_s * 1e9) + work.matmul_loops * rates.matmul_loop_ns * 1e-9
    return (matmul + work.float_elems * rates.float_elem_ns * 1e-9 + work.elem_loops * rates.elem_loop_ns * 1e-9
            + work.copy_elems * rates.copy_elem_ns * 1e-9 + work.byte_elems * rates.byte_elem_ns * 1e-9
            + work.calls * rates.numpy_call_us * 1e-6)


def _write_s(nbytes, calls, rates):
    """The transport stores the packed bytes into the mapping (``bytes(data)`` of the bytes the
    runtime packs is the same object, no copy): uncached stores, or a cached copy and a sync."""
    t = calls * rates.mem_call_us * 1e-6
    if rates.device_memory == "uncached":
        return t + nbytes / (rates.uncached_write_mb_s * 1e6)
    return t + nbytes / (rates.memcpy_mb_s * 1e6) + calls * rates.sync_call_us * 1e-6


def _read_s(nbytes, calls, rates):
    t = calls * rates.mem_call_us * 1e-6
    if rates.device_memory == "uncached":
        return t + nbytes / (rates.uncached_read_mb_s * 1e6)
    return t + nbytes / (rates.memcpy_mb_s * 1e6) + calls * rates.sync_call_us * 1e-6


def _driver_polling():
    """The driver's default polling interval (``sw.driver.Accelerator``)."""
    from .driver import Accelerator
    sig = inspect.signature(Accelerator.__init__).parameters
    return sig["poll_min_s"].default, sig["poll_max_s"].default


def _ms(seconds):
    return round(seconds * 1e3, 4)


def estimate_frame(layers, program, clock_hz, rates):
    """The board frame of a compiled network.

    Parameters
    ----------
    layers : list of models.network.Layer
        The network's layers (host layers may be narrower than their program placements: see
        :func:`sw.ledger.derive_frame_work`).
    program : sw.program.Program
    clock_hz : float
        The accelerator's clock.
    rates : BoardRates

    Returns
    -------
    dict
        ``frame_ms`` (latency as the runtime runs a frame), ``period_ms`` and ``fps``
        (pipelined), ``fps_sequential``, ``arm_ms`` and ``fpga_ms`` (each processor's busy time
        per frame), ``bottleneck``, and the parts: ``arm`` (per host part, with its steps),
        ``transfers`` (per device-memory write and read), ``segments`` (per descriptor list:
        FPGA time, register time, the host's wait for the next poll), ``fpga`` (per layer,
        :func:`fpga_layer`), ``work`` (the counts, :meth:`sw.ledger.FrameWork.as_dict`),
        ``notes``.
    """
    from .program import Segment
    fpga = {name: fpga_layer(desc, clock_hz, rates) for name, desc in program.descriptors.items()}
    segments = [item for item in program.schedule if isinstance(item, Segment)]
    busy = {seg.layers[0]: segment_fpga_s([fpga[n] for n in seg.layers], clock_hz) for seg in segments}
    poll_min, poll_max = _driver_polling()
    reg_s = rates.reg_access_us * 1e-6
    wait_s = rates.sleep_overhead_us * 1e-6
    fw = derive_frame_work(layers, program, busy, poll_min_s=poll_min, poll_max_s=poll_max, poll_cost_s=reg_s,
                           wait_cost_s=wait_s)

    arm = {}
    for part, steps in fw.host.items():
        w = total(steps)
        arm[part] = {"ms": _ms(price_work(w, rates)), **w.as_dict(),
                     "steps": {s: _ms(price_work(x, rates)) for s, x in steps.items()}}
    for kind, table in (("pack", fw.pack), ("unpack", fw.unpack)):
        for name, w in table.items():
            arm[f"{kind}:{name}"] = {"ms": _ms(price_work(w, rates)), **w.as_dict()}
    transfers = {}
    for name, n in fw.writes.items():
        transfers[f"write:{name}"] = {"bytes": n, "ms": _ms(_write_s(n, fw.write_calls[name], rates))}
    for name, n in fw.reads.items():
        transfers[f"read:{name}"] = {"bytes": n, "ms": _ms(_read_s(n, fw.read_calls[name], rates))}

    seg_out = []
    seg_latency_s = seg_arm_s = 0.0
    for seg, sw_ in zip(segments, fw.segments):
        fpga_s = busy[seg.layers[0]]
        # the driver's polls, replayed with the board's FPGA time and access costs
        polls, _, seen_s = poll_schedule(fpga_s, poll_min, poll_max, reg_s, wait_s)
        regs_s = (sw_.reg_writes + sw_.reg_reads - polls) * reg_s     # before the start, after done
        latency = regs_s + seen_s
        seg_latency_s += latency
        seg_arm_s += regs_s + reg_s                 # pipelined: one poll when the ARM gets to it
        seg_out.append({"layers": list(seg.layers), "fpga_ms": _ms(fpga_s), "registers_ms": _ms(regs_s),
                        "polls": polls, "seen_ms": _ms(seen_s), "late_ms": _ms(seen_s - fpga_s),
                        "latency_ms": _ms(latency)})

    arm_parts_s = sum(v["ms"] for v in arm.values()) / 1e3
    transfer_s = sum(v["ms"] for v in transfers.values()) / 1e3
    fpga_s = sum(busy.values())
    frame_s = arm_parts_s + transfer_s + seg_latency_s
    arm_busy_s = arm_parts_s + transfer_s + seg_arm_s
    period_s = max(arm_busy_s, fpga_s)
    notes = []
    if abs(clock_hz / 1e6 - rates.port_clock_mhz) > 1e-9:
        notes.append(f"the F2SDRAM rates of {shown_path(rates.source)} were measured at a {rates.port_clock_mhz:g} MHz fabric "
                     f"clock; the accelerator runs at {clock_hz / 1e6:g} MHz")
    return {
        "frame_ms": _ms(frame_s), "fps": round(1 / period_s, 2), "period_ms": _ms(period_s),
        "fps_sequential": round(1 / frame_s, 2), "arm_ms": _ms(arm_busy_s), "fpga_ms": _ms(fpga_s),
        "bottleneck": "arm" if arm_busy_s >= fpga_s else "fpga",
        "arm_compute_ms": _ms(arm_parts_s), "transfer_ms": _ms(transfer_s),
        "arm": arm, "transfers": transfers, "segments": seg_out,
        "fpga": {k: {kk: (round(vv, 4) if isinstance(vv, float) else vv) for kk, vv in v.items()}
                 for k, v in fpga.items()},
        "fpga_cycles": sum(v["cycles"] for v in fpga.values()) + sum(s.count + 1 for s in segments),
        "clock_mhz": clock_hz / 1e6,
        "rates": {"file": shown_path(rates.source), "profile": rates.profile, **rates.profiles[rates.profile],
                  "device_memory": rates.device_memory},
        "work": fw.as_dict(), "notes": notes,
    }
