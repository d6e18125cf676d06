"""Descriptor fuzzing: random layer descriptors, valid and invalid, biased to the memory window's
edges, for the functional model (fast tier) and the RTL (cocotb).

Pure numpy and :mod:`models`: no simulator import, so the same descriptors drive
``tests/test_fuzz_model.py`` (the reference model) and ``sim/tb_descriptor_fuzz.py`` (the RTL).

A fuzz memory (:class:`FuzzLayout`) is a window inside a larger memory, with guard bytes below
and above it (memory that exists but that the engine must not touch)::

    memory:  | guard | descriptor lists | source pool | weight pool | threshold pool | outputs | guard |
    window:          ^ base                                                              end ^

The pools hold random bytes (every bit pattern is a valid activation word and weight word) and
valid threshold records. A valid descriptor reads from the pools (or from earlier outputs) and
writes into the output area, so no descriptor overwrites its own weights or thresholds while it
runs; an invalid one is a valid one with one or more fields broken:

* every error code of :mod:`models.engine` (``ERR_*``); several at once, to check the order of
  the checks;
* every operand alone outside the window: below its base, starting inside and ending past its
  end (by one bus word or more), entirely above it, wrapping past ``2**32``;
* valid edges: a source starting at the window's base, an output ending exactly at its end,
  raw outputs with a thresholds address that is garbage (unused in raw mode);
* descriptor lists that are misaligned, start outside the window or run past its end.

:func:`spec_error` is an independent statement of the documented validation (its order of
checks and its region sizes are written here from ``docs/formats.md`` and the docstring of
:func:`models.engine.validate_descriptor`, not taken from :class:`models.engine.Descriptor`), so
the model's checks are tested against it rather than against themselves.

The RTL engine does not yet read frame-pair sources (``src_format`` 1): RTL fuzzing draws them
only when :data:`RTL_FRAME_PAIRS` is true (or ``LMF_FUZZ_FRAMES=1``); the model fuzzing always
does.
"""

from dataclasses import dataclass, field
import os

import numpy as np

from models.cycles import MUL_COUNT, MUL_CYCLES, descriptor_cycles
from models.engine import (ADDRESS_SPACE, DESCRIPTOR, ERR_ADDRESS, ERR_ALIGN, ERR_CAPACITY, ERR_FORMAT,
                           ERR_INPUT_OP, ERR_KERNEL, ERR_NONE, ERR_OVERFLOW, ERR_SHAPE, ERROR_NAMES,
                           FRAME_SIMD_LANES, Descriptor)
from models.formats import FRAME_CODE_CHANNELS, FRAME_PIXEL_BYTES, pack_thresholds
from models.thresholds import DIR_CONSTANT, DIR_DECREASING, DIR_INCREASING, ThresholdTable

__all__ = ["RTL_FRAME_PAIRS", "rtl_frame_pairs", "FuzzLayout", "FuzzList", "FuzzStats", "make_layout",
           "fill_image", "draw_list", "edge_lists", "overlap", "image_lists", "prepare_operands", "spec_error",
           "spec_regions", "expected_beats", "cycle_budget", "GuardedMemory", "CHECK_ORDER"]

#: Draw frame-pair sources (``src_format`` 1) in RTL fuzzing (``LMF_FUZZ_FRAMES=1`` turns it on
#: for one run when this is off).
RTL_FRAME_PAIRS = True


def rtl_frame_pairs():
    """Whether RTL fuzzing draws frame-pair sources: :data:`RTL_FRAME_PAIRS` or ``$LMF_FUZZ_FRAMES``."""
    return RTL_FRAME_PAIRS or os.environ.get("LMF_FUZZ_FRAMES", "0") not in ("", "0")


#: The documented order of the validation checks (the first that fails gives the code).
CHECK_ORDER = (ERR_KERNEL, ERR_INPUT_OP, ERR_SHAPE, ERR_FORMAT, ERR_CAPACITY, ERR_OVERFLOW, ERR_ALIGN, ERR_ADDRESS)

_OPERANDS = ("src", "weights", "thresholds", "dst")
_ADDR_FIELD = {"src": "src_addr", "weights": "weights_addr", "thresholds": "thresholds_addr", "dst": "dst_addr"}


def _ceil(a, b):
    return -(-a // b)


def _pow2_at_least(n):
    p = 1
    while p < n:
        p <<= 1
    return p


# ----------------------------------------------------------------------------------------------
# The specification, written independently of models.engine.Descriptor

def spec_regions(f, params):
    """``{operand: (address, bytes)}`` of a descriptor's fields ``f``, from the documented layouts
    (``docs/formats.md``): source codes ``ceil(C/S)*H*W`` bus words, a frame-pair source
    ``H*W*8`` bytes rounded up to bus words, tiled weights ``ceil(O/P)*ceil(Cin/S)*k*k`` PE-array
    words of ``P*S`` bits, one threshold record per channel of every tile (codes mode only),
    codes outputs ``ceil(O/S)*Ho*Wo`` bus words, raw outputs ``Ho*Wo`` pixels of ``O``
    accumulators padded to a whole bus word."""
    s, p = params.simd_lanes, params.pe_count
    bus = 2 * s // 8
    k, op = f["kernel"], f["input_op"]
    hs, ws, cs, o = f["src_height"], f["src_width"], f["src_channels"], f["out_channels"]
    ho, wo = {0: (hs, ws), 1: (hs // 2, ws // 2), 2: (2 * hs, 2 * ws)}.get(op, (0, 0))
    cin = 4 * cs if op == 1 else cs
    n_tiles = _ceil(o, p)
    if f["src_format"] == 1:
        src = _ceil(hs * ws * FRAME_PIXEL_BYTES, bus) * bus
    else:
        src = _ceil(cs, s) * hs * ws * bus
    out = {"src": (f["src_addr"], src),
           "weights": (f["weights_addr"], n_tiles * _ceil(cin, s) * k * k * p * s // 8)}
    if f["output_mode"] == 0:
        out["thresholds"] = (f["thresholds_addr"], n_tiles * p * params.threshold_layout.nbytes)
        out["dst"] = (f["dst_addr"], _ceil(o, s) * ho * wo * bus)
    else:
        per_word = 2 * s // params.acc_bits
        out["dst"] = (f["dst_addr"], ho * wo * _ceil(o, per_word) * per_word * params.acc_bits // 8)
    return out


def spec_error(f, params, window):
    """The error code a descriptor must get, checks in the documented order (:data:`CHECK_ORDER`).

    Parameters
    ----------
    f : dict
        Descriptor fields (:data:`models.engine.DESCRIPTOR`).
    params : models.engine.EngineParams
    window : tuple of int
        ``(base, size)``; a window reaching past ``2**32`` ends there.
    """
    failures = spec_failures(f, params, window)
    return failures[0] if failures else ERR_NONE


def spec_failures(f, params, window):
    """Every check a descriptor fails, in the documented order (empty when it is valid). Sizes of
    an unknown input operation are 0 (as the model's)."""
    s = params.simd_lanes
    k, op, frames = f["kernel"], f["input_op"], f["src_format"] == 1
    hs, ws, cs, o = f["src_height"], f["src_width"], f["src_channels"], f["out_channels"]
    failed = []
    if k not in (1, 3):
        failed.append(ERR_KERNEL)
    if op not in (0, 1, 2):
        failed.append(ERR_INPUT_OP)
    if 0 in (hs, ws, cs, o) or (op == 1 and (hs % 2 or ws % 2 or (cs % s and not frames))):
        failed.append(ERR_SHAPE)
    if frames and (op != 1 or cs != FRAME_CODE_CHANNELS or s not in FRAME_SIMD_LANES):
        failed.append(ERR_FORMAT)
    cin = 4 * cs if op == 1 else cs
    if frames:
        act_words = _ceil(cin, s) * (hs // 2) * _pow2_at_least(ws // 2)
    else:
        act_words = _ceil(cs, s) * hs * _pow2_at_least(ws)
    if act_words > params.act_buffer_words or _ceil(cin, s) * k * k > params.weight_buffer_words:
        failed.append(ERR_CAPACITY)
    if 3 * k * k * cin > params.acc_bound:
        failed.append(ERR_OVERFLOW)
    regions = spec_regions(f, params)
    if any(addr % (2 * s // 8) for addr, _ in regions.values()):
        failed.append(ERR_ALIGN)
    base, end = window[0], min(window[0] + window[1], ADDRESS_SPACE)
    if any(addr < base or addr + n > end for addr, n in regions.values()):
        failed.append(ERR_ADDRESS)
    return failed


def expected_beats(f, params):
    """``(read beats, write beats)`` of one valid descriptor, its fetch included: every region
    read once (the weights tile by tile, each tile's thresholds before it runs), and one write
    beat per pixel and tile (codes: the tile's lanes of the pixel's group word, by byte enables)
    or the raw region once."""
    bus = params.bus_bytes
    regions = spec_regions(f, params)
    reads = _ceil(DESCRIPTOR.nbytes, bus) + (regions["src"][1] + regions["weights"][1]) // bus
    if f["output_mode"] == 0:
        reads += regions["thresholds"][1] // bus
        ho, wo = {0: (1, 1), 1: (0.5, 0.5), 2: (2, 2)}[f["input_op"]]
        pixels = int(f["src_height"] * ho) * int(f["src_width"] * wo)
        writes = _ceil(f["out_channels"], params.pe_count) * pixels
    else:
        writes = regions["dst"][1] // bus
    return reads, writes


def cycle_budget(descs, params, *, latency, failed_fetches=0, slowdown=1.0):
    """Upper bound on the cycles of a descriptor list: :func:`models.cycles.descriptor_cycles` of
    every descriptor that runs, the validation of each one that fails, times ``slowdown`` (for
    wait states), plus a margin."""
    fetch = 1 + latency + _ceil(DESCRIPTOR.bits, 2 * params.simd_lanes) + 2 + 3 + MUL_COUNT * (MUL_CYCLES + 1) + 2
    total = sum(descriptor_cycles(d, params, latency=latency) for d in descs) + failed_fetches * fetch
    return int((total + len(descs) + 2) * slowdown * 2) + 200


# ----------------------------------------------------------------------------------------------
# The memory

@dataclass
class FuzzLayout:
    """Where everything lives in a fuzz memory (absolute device addresses).

    Members
    -------
    params : EngineParams
    mem_base, mem_size : int
        The whole memory (guards included).
    window : (int, int)
        ``(base, size)`` programmed into WINDOW_BASE / WINDOW_SIZE; ``size`` may reach past
        ``2**32`` (the window then ends there).
    lists, src, weights, thresholds, dst : (int, int)
        ``(address, bytes)`` of each area, inside the window.
    """

    params: object
    mem_base: int
    mem_size: int
    window: tuple
    lists: tuple
    src: tuple
    weights: tuple
    thresholds: tuple
    dst: tuple

    @property
    def window_end(self):
        return min(self.window[0] + self.window[1], ADDRESS_SPACE)

    @property
    def bus_bytes(self):
        return self.params.bus_bytes

    @property
    def tile_record_bytes(self):
        return self.params.pe_count * self.params.threshold_layout.nbytes


def make_layout(params, mem_base, mem_size, *, guard=None, wrap_window=False, list_tail=False):
    """Split a memory into guards, the window and its areas.

    Parameters
    ----------
    guard : int, optional
        Bytes of memory below (and above) the window.
    wrap_window : bool
        For a memory that ends at ``2**32`` (no guard above): program a window whose
        ``base + size`` passes ``2**32``; it must still end there.
    list_tail : bool
        Keep the last descriptor slots of the window out of the output area, for lists that run
        past the window's end.
    """
    bus = params.bus_bytes
    guard = max(256, 4 * bus) if guard is None else guard
    top_guard = 0 if wrap_window else guard
    if wrap_window and mem_base + mem_size != ADDRESS_SPACE:
        raise ValueError("a wrapping window needs a memory that ends at 2**32")
    base = mem_base + guard
    end = mem_base + mem_size - top_guard
    inner = end - base
    tile = params.pe_count * params.threshold_layout.nbytes

    def area(start, nbytes, unit=64):
        return (start, max(unit, nbytes // unit * unit))

    lists = area(base, inner // 8)
    src = area(lists[0] + lists[1], inner // 6)
    weights = area(src[0] + src[1], inner // 6)
    thresholds = area(weights[0] + weights[1], inner // 16, tile)
    dst_start = thresholds[0] + thresholds[1]
    dst_end = end - (4 * DESCRIPTOR.nbytes if list_tail else 0)
    dst = (dst_start, dst_end - dst_start)
    size = ADDRESS_SPACE + 0x1000 - base if wrap_window else inner
    return FuzzLayout(params, mem_base, mem_size, (base, size), lists, src, weights, thresholds, dst)


def fill_image(rng, layout):
    """The memory's initial content: random bytes, valid threshold records in the threshold pool."""
    image = rng.integers(0, 256, layout.mem_size, dtype=np.uint8)
    p = layout.params
    addr, nbytes = layout.thresholds
    n = nbytes // p.threshold_layout.nbytes
    lim = p.acc_bound + 1
    th = np.sort(rng.integers(-lim, lim + 1, (n, 3)), axis=1)
    small = rng.random(n) < 0.5                    # thresholds near zero, where accumulators are
    th[small] = np.sort(rng.integers(-12, 13, (int(small.sum()), 3)), axis=1)
    direction = rng.choice([DIR_INCREASING, DIR_DECREASING, DIR_CONSTANT], n, p=[0.5, 0.35, 0.15]).astype(np.uint8)
    th[direction == DIR_DECREASING] = th[direction == DIR_DECREASING][:, ::-1]
    const = rng.integers(0, 4, n).astype(np.uint8)
    table = ThresholdTable(th.astype(np.int64), direction, const, p.acc_bound)
    records = pack_thresholds(table, p.threshold_layout).reshape(-1)
    off = addr - layout.mem_base
    image[off:off + records.size] = records
    return image


def prepare_operands(image, mem_base, f, params):
    """Make the memory a valid descriptor reads obey the formats' padding rules, which the engine
    relies on (``docs/formats.md``): source lanes past the channel count hold code 0, and the
    threshold records of a tile's channels past ``O`` are constant 0. (The model ignores both;
    the engine computes with them.) Random pool bytes break these rules; fix them in place."""
    s, p = params.simd_lanes, params.pe_count
    bus = params.bus_bytes
    if f["src_format"] == 0 and f["src_channels"] % s:
        groups = _ceil(f["src_channels"], s)
        words = f["src_height"] * f["src_width"]
        keep = f["src_channels"] % s
        plane_bytes = s // 8
        mask = np.zeros(plane_bytes, dtype=np.uint8)
        for bit in range(keep):
            mask[bit // 8] |= 1 << (bit % 8)
        start = f["src_addr"] - mem_base + (groups - 1) * words * bus
        last = image[start:start + words * bus].reshape(words, 2, plane_bytes)
        last &= mask
    if f["output_mode"] == 0 and f["out_channels"] % p:
        layout = params.threshold_layout
        pad = np.frombuffer(layout.to_bytes(layout.pack(t0=0, t1=0, t2=0, direction=DIR_CONSTANT, constant=0)),
                            np.uint8)
        first = f["thresholds_addr"] - mem_base
        for c in range(f["out_channels"], _ceil(f["out_channels"], p) * p):
            image[first + c * layout.nbytes:first + (c + 1) * layout.nbytes] = pad


class GuardedMemory:
    """A memory image indexed by device address (as :func:`models.engine.execute_program` indexes
    memory) that records every access and every access outside the window.

    Members
    -------
    array : numpy.ndarray of uint8
        ``array[0]`` is at ``base``.
    violations : list of (kind, start, stop)
    accesses : list of (kind, start, stop)
    """

    def __init__(self, array, base, window):
        self.array = array
        self.base = base
        self.window = window
        self.violations = []
        self.accesses = []

    def __len__(self):
        return self.base + len(self.array)

    def _slice(self, key, kind):
        start, stop = key.start, key.stop
        self.accesses.append((kind, start, stop))
        end = min(self.window[0] + self.window[1], ADDRESS_SPACE)
        if start < self.window[0] or stop > end:
            self.violations.append((kind, start, stop))
        if start < self.base or stop > len(self) or stop < start:
            raise IndexError(f"model access 0x{start:x} .. 0x{stop:x} outside the memory "
                             f"0x{self.base:x} .. 0x{len(self):x}")
        return slice(start - self.base, stop - self.base)

    def __getitem__(self, key):
        return self.array[self._slice(key, "read")]

    def __setitem__(self, key, value):
        self.array[self._slice(key, "write")] = value


# ----------------------------------------------------------------------------------------------
# Drawing descriptors

@dataclass
class FuzzList:
    """One descriptor list: where it is, its descriptors' fields, and what each was meant to be.

    ``labels[i]`` names the edge or the violation drawn for descriptor ``i`` (``"valid"``,
    ``"valid:dst-at-window-end"``, ``"address:weights-past-end"``, ...).
    """

    desc_addr: int
    fields: list
    labels: list
    count: int

    def descriptors(self, params):
        return [Descriptor(f, params) for f in self.fields]


@dataclass
class FuzzStats:
    """Counts of a fuzz run."""

    descriptors: int = 0
    lists: int = 0
    valid: int = 0
    invalid: int = 0
    by_code: dict = field(default_factory=dict)
    window_hits: int = 0
    window_edges: int = 0
    labels: dict = field(default_factory=dict)
    cycles: int = 0

    def add(self, label, code):
        self.descriptors += 1
        if code == ERR_NONE:
            self.valid += 1
        else:
            self.invalid += 1
        name = ERROR_NAMES.get(code, str(code))
        self.by_code[name] = self.by_code.get(name, 0) + 1
        if code == ERR_ADDRESS:
            self.window_hits += 1
        if code == ERR_NONE and "window-end" in label:
            self.window_edges += 1
        self.labels[label] = self.labels.get(label, 0) + 1

    def as_dict(self):
        return dict(descriptors=self.descriptors, lists=self.lists, valid=self.valid, invalid=self.invalid,
                    by_code=dict(sorted(self.by_code.items())), window_hits=self.window_hits,
                    window_edges=self.window_edges, cycles=self.cycles, labels=dict(sorted(self.labels.items())))


def _aligned(rng, lo, hi, bus):
    """A bus-aligned address in ``[lo, hi]`` (``lo`` rounded up)."""
    lo = _ceil(lo, bus) * bus
    hi = max(lo, hi // bus * bus)
    return lo + int(rng.integers(0, (hi - lo) // bus + 1)) * bus


def _valid_fields(rng, layout, frames):
    """A small valid descriptor and the edge it sits on."""
    p = layout.params
    s, pe = p.simd_lanes, p.pe_count
    bus = p.bus_bytes
    for _ in range(200):
        use_frames = frames and s in FRAME_SIMD_LANES and rng.random() < 0.2
        kernel = int(rng.choice([1, 3]))
        raw = int(rng.random() < 0.4)
        if use_frames:
            op, cs = 1, FRAME_CODE_CHANNELS
            hs, ws = 2 * int(rng.integers(1, 3)), 2 * int(rng.integers(1, 3))
        else:
            op = int(rng.integers(0, 3))
            if op == 1:
                hs, ws = 2 * int(rng.integers(1, 3)), 2 * int(rng.integers(1, 3))
                cs = s * int(rng.integers(1, 3))
            elif op == 2:
                hs, ws = int(rng.integers(1, 3)), int(rng.integers(1, 3))
                cs = int(rng.integers(1, 2 * s + 1))
            else:
                hs, ws = int(rng.integers(1, 4)), int(rng.integers(1, 4))
                cs = int(rng.integers(1, 2 * s + 1))
        o = int(rng.integers(1, 2 * pe + 2))
        f = dict(kernel=kernel, input_op=op, output_mode=raw, src_format=int(use_frames),
                 layer_id=int(rng.integers(0, 256)), src_height=hs, src_width=ws, src_channels=cs,
                 out_channels=o, src_addr=0, weights_addr=0, thresholds_addr=0, dst_addr=0)
        if spec_failures(f, p, (0, ADDRESS_SPACE)):
            continue
        sizes = {k: n for k, (_, n) in spec_regions(f, p).items()}
        if sizes["src"] > layout.src[1] or sizes["weights"] > layout.weights[1] or sizes["dst"] > layout.dst[1] \
                or sizes.get("thresholds", 0) > layout.thresholds[1]:
            continue
        label = "valid"
        # source: the source pool, its very start, or earlier outputs
        r = rng.random()
        if r < 0.15:
            f["src_addr"] = layout.src[0]
            label += ":src-at-pool-start"
        elif r < 0.35 and sizes["src"] <= layout.dst[1] and (use_frames or cs % s == 0):
            # earlier outputs hold garbage in the lanes past their channels: whole groups only
            f["src_addr"] = _aligned(rng, layout.dst[0], layout.dst[0] + layout.dst[1] - sizes["src"], bus)
            label += ":src-from-outputs"
        else:
            f["src_addr"] = _aligned(rng, layout.src[0], layout.src[0] + layout.src[1] - sizes["src"], bus)
        f["weights_addr"] = _aligned(rng, layout.weights[0], layout.weights[0] + layout.weights[1]
                                     - sizes["weights"], bus)
        if raw:
            # unused in raw mode: anything, even misaligned or outside the window
            f["thresholds_addr"] = int(rng.choice([0, int(rng.integers(0, ADDRESS_SPACE)), 1,
                                                   layout.window_end % ADDRESS_SPACE]))
        else:
            tile = layout.tile_record_bytes
            slots = (layout.thresholds[1] - sizes["thresholds"]) // tile
            f["thresholds_addr"] = layout.thresholds[0] + int(rng.integers(0, slots + 1)) * tile
        dst_end = layout.dst[0] + layout.dst[1]
        if rng.random() < 0.25:
            f["dst_addr"] = dst_end - sizes["dst"]
            if dst_end == layout.window_end:
                label += ":dst-at-window-end"
        else:
            f["dst_addr"] = _aligned(rng, layout.dst[0], dst_end - sizes["dst"], bus)
        if f["dst_addr"] % bus:
            continue
        return f, label
    raise RuntimeError("no small valid descriptor fits this engine configuration")


def _break_shape(rng, f, p, frames):
    choice = rng.integers(0, 4 if f["input_op"] != 1 else 7)
    if choice < 4:
        f[("src_height", "src_width", "src_channels", "out_channels")[choice]] = 0
        return f"shape:zero-{('height', 'width', 'channels', 'outputs')[choice]}"
    f["input_op"] = 1
    if choice == 4:
        f["src_height"] |= 1
        return "shape:odd-height"
    if choice == 5:
        f["src_width"] |= 1
        return "shape:odd-width"
    if f["src_format"] == 1:
        f["src_height"] |= 1
        return "shape:odd-height"
    f["src_channels"] = f["src_channels"] // p.simd_lanes * p.simd_lanes + int(rng.integers(1, p.simd_lanes))
    return "shape:channels-not-whole-groups"


def _break_capacity(rng, f, p):
    s = p.simd_lanes
    f["src_format"] = 0
    if rng.random() < 0.5:
        # source rows at a power-of-two stride beyond the activation buffer
        f.update(input_op=0, src_channels=s, src_width=int(rng.integers(1, 9)))
        stride = _pow2_at_least(f["src_width"])
        f["src_height"] = min(4095, p.act_buffer_words // stride + int(rng.integers(1, 4)))
        if _ceil(f["src_channels"], s) * f["src_height"] * stride <= p.act_buffer_words:
            f["src_width"] = 4095
        return "capacity:source"
    f.update(input_op=0, kernel=3, src_height=1, src_width=1)
    f["src_channels"] = min(4095, (p.weight_buffer_words // 9 + 1) * s)
    return "capacity:weights"


def _break_overflow(rng, f, p):
    s = p.simd_lanes
    k = f["kernel"] if f["kernel"] in (1, 3) else 1
    cin = p.acc_bound // (3 * k * k) + 1
    groups = _ceil(cin, s)
    if groups * k * k > p.weight_buffer_words or groups > p.act_buffer_words or cin > 4095:
        return None
    f.update(input_op=0, src_format=0, src_channels=cin, src_height=1, src_width=1)
    return "overflow"


def _outside(rng, layout, operand, nbytes, f):
    """An aligned address that puts a region of ``nbytes`` outside the window, and how."""
    bus = layout.bus_bytes
    base, end = layout.window[0], layout.window_end
    ways = ["below", "past-end", "past-end", "above", "wrap", "far"]
    way = ways[int(rng.integers(0, len(ways)))]
    if way == "below":
        addr = base - _ceil(int(rng.integers(1, 4 * bus + 1)), bus) * bus
    elif way == "past-end":
        # starts inside, ends past the end by one bus word or a few
        over = bus * int(rng.choice([1, 1, 2, int(rng.integers(1, 9))]))
        addr = (end - nbytes) // bus * bus + over
        if addr < base:
            addr = base + (end - base) // bus * bus - bus    # a region larger than what is left
            if addr + nbytes <= end:
                return None
    elif way == "above":
        addr = end + _ceil(int(rng.integers(0, 8 * bus)), bus) * bus
    elif way == "wrap":
        # 32-bit address arithmetic: addr + nbytes passes 2**32
        addr = ADDRESS_SPACE - _ceil(max(nbytes // 2, bus), bus) * bus
        if addr + nbytes <= ADDRESS_SPACE:
            addr = ADDRESS_SPACE - bus
    else:
        addr = int(rng.integers(0, ADDRESS_SPACE // bus)) * bus
    addr = max(0, min(addr, ADDRESS_SPACE - bus))
    if base <= addr and addr + nbytes <= end:
        return None
    return addr, f"address:{operand}-{way}"


def _break(rng, f, layout, frames, code):
    """Apply one violation of ``code`` to ``f``; returns its label, or None if it does not apply."""
    p = layout.params
    if code == ERR_KERNEL:
        f["kernel"] = int(rng.choice([0, 2, 4, 5, 7, 9, 15]))
        return "kernel"
    if code == ERR_INPUT_OP:
        f["input_op"] = 3
        return "input_op"
    if code == ERR_SHAPE:
        return _break_shape(rng, f, p, frames)
    if code == ERR_FORMAT:
        if not frames:
            return None
        f["src_format"] = 1
        choice = int(rng.integers(0, 2 if p.simd_lanes in FRAME_SIMD_LANES else 3))
        if p.simd_lanes not in FRAME_SIMD_LANES:
            if f["input_op"] == 1 and f["src_height"] % 2 == 0 and f["src_width"] % 2 == 0:
                return "format:lanes"
            f.update(input_op=1, src_height=2, src_width=2, src_channels=FRAME_CODE_CHANNELS)
            return "format:lanes"
        if choice == 0:
            f["input_op"] = int(rng.choice([0, 2]))
            return "format:input-op"
        f.update(input_op=1, src_height=2 * max(1, f["src_height"] // 2), src_width=2 * max(1, f["src_width"] // 2))
        f["src_channels"] = int(rng.choice([16, 31, 33, 64]))
        return "format:channels"
    if code == ERR_CAPACITY:
        return _break_capacity(rng, f, p)
    if code == ERR_OVERFLOW:
        return _break_overflow(rng, f, p)
    if code == ERR_ALIGN:
        ops = ["src", "weights", "dst"] + (["thresholds"] if f["output_mode"] == 0 else [])
        op = ops[int(rng.integers(0, len(ops)))]
        f[_ADDR_FIELD[op]] += int(rng.integers(1, p.bus_bytes))
        f[_ADDR_FIELD[op]] %= ADDRESS_SPACE
        return f"align:{op}"
    if code == ERR_ADDRESS:
        ops = ["src", "weights", "dst"] + (["thresholds"] if f["output_mode"] == 0 else [])
        op = ops[int(rng.integers(0, len(ops)))]
        nbytes = spec_regions(f, p)[op][1]
        got = _outside(rng, layout, op, nbytes, f)
        if got is None:
            return None
        f[_ADDR_FIELD[op]] = got[0]
        return got[1]
    raise ValueError(code)


def _invalid_fields(rng, layout, frames):
    p = layout.params
    codes = [ERR_KERNEL, ERR_INPUT_OP, ERR_SHAPE, ERR_CAPACITY, ERR_OVERFLOW, ERR_ALIGN, ERR_ADDRESS, ERR_ADDRESS,
             ERR_ADDRESS, ERR_ADDRESS] + ([ERR_FORMAT, ERR_FORMAT] if frames else [])
    for _ in range(100):
        f, _ = _valid_fields(rng, layout, frames)
        n = 1 if rng.random() < 0.75 else int(rng.integers(2, 4))
        picked = [codes[int(i)] for i in rng.choice(len(codes), n, replace=False)]
        # the lower checks decide a region's size: break them first, then the addresses
        labels = []
        for code in sorted(set(picked), key=lambda c: (c in (ERR_ALIGN, ERR_ADDRESS), CHECK_ORDER.index(c))):
            label = _break(rng, f, layout, frames, code)
            if label is None:
                break
            labels.append(label)
        else:
            if spec_failures(f, p, layout.window):
                return f, "+".join(labels)
    raise RuntimeError("could not draw an invalid descriptor")


def draw_list(rng, layout, *, frames, desc_addr, max_valid=2, p_invalid=0.8):
    """A descriptor list at ``desc_addr``: up to ``max_valid`` valid descriptors, then (with
    probability ``p_invalid``) an invalid one; sometimes a list-level edge (misaligned, outside
    the window, running past its end) instead.

    Returns
    -------
    FuzzList
        ``count`` may exceed ``len(fields)`` when the list runs past the window.
    """
    p = layout.params
    bus = p.bus_bytes
    n_valid = int(rng.integers(0, max_valid + 1))
    fields, labels = [], []
    for _ in range(n_valid):
        f, label = _valid_fields(rng, layout, frames)
        fields.append(f)
        labels.append(label)
    r = rng.random()
    if r < 0.04:
        return FuzzList(desc_addr + int(rng.integers(1, bus)), fields, ["list:misaligned"] * max(1, len(fields)),
                        max(1, len(fields)))
    if r < 0.07:
        below = layout.window[0] - DESCRIPTOR.nbytes * int(rng.integers(1, 3))
        return FuzzList(below, [], ["list:below-window"], 1)
    if r < 0.10 and layout.dst[0] + layout.dst[1] + 4 * DESCRIPTOR.nbytes <= layout.window_end:
        # a list whose descriptors run past the window's end: the one that starts at the end, or
        # one that starts inside and straddles it, is never fetched
        straddle = bus * int(rng.integers(0, DESCRIPTOR.nbytes // bus))
        start = (layout.window_end - DESCRIPTOR.nbytes * len(fields)) // bus * bus - straddle
        label = "list:straddles-window-end" if straddle else "list:past-window-end"
        return FuzzList(start, fields, labels + [label], len(fields) + 1)
    if rng.random() < p_invalid:
        f, label = _invalid_fields(rng, layout, frames)
        fields.append(f)
        labels.append(label)
    if not fields:
        f, label = _valid_fields(rng, layout, frames)
        fields.append(f)
        labels.append(label)
    return FuzzList(desc_addr, fields, labels, len(fields))


def edge_lists(rng, layout, *, frames, desc_addr, slot):
    """Directed lists, one descriptor each where it matters, for every edge of the window:
    each operand alone starting one bus word below the window, ending one bus word past its end,
    or wrapping past ``2**32``; a valid descriptor whose output ends exactly at the window's end;
    and the list-level edges (misaligned, below the window, starting at its end, straddling it).
    ``desc_addr`` and ``slot``: where the one-descriptor lists go, one slot each."""
    p = layout.params
    bus = p.bus_bytes
    out = []
    addr = desc_addr
    for operand in _OPERANDS:
        for way in ("below", "past-end", "wrap"):
            for _ in range(50):
                f, _ = _valid_fields(rng, layout, frames)
                if operand != "thresholds" or f["output_mode"] == 0:
                    break
            nbytes = spec_regions(f, p)[operand][1]
            base, end = layout.window[0], layout.window_end
            where = {"below": base - bus, "past-end": (end - nbytes) // bus * bus + bus,
                     "wrap": ADDRESS_SPACE - max(bus, nbytes // 2 // bus * bus)}[way]
            if not 0 <= where < ADDRESS_SPACE:
                continue
            g = dict(f, **{_ADDR_FIELD[operand]: where})
            if spec_failures(g, p, layout.window) != [ERR_ADDRESS]:
                continue
            out.append(FuzzList(addr, [g], [f"address:{operand}-{way}"], 1))
            addr += slot
    f, label = _valid_fields(rng, layout, frames)
    dst_end = layout.dst[0] + layout.dst[1]
    f["dst_addr"] = dst_end - spec_regions(f, p)["dst"][1]
    if dst_end == layout.window_end and not spec_failures(f, p, layout.window):
        out.append(FuzzList(addr, [f], ["valid:dst-at-window-end"], 1))
        addr += slot
    out.append(FuzzList(addr + int(rng.integers(1, bus)), [], ["list:misaligned"], 1))
    out.append(FuzzList(layout.window[0] - DESCRIPTOR.nbytes, [], ["list:below-window"], 1))
    if layout.dst[0] + layout.dst[1] + 4 * DESCRIPTOR.nbytes <= layout.window_end:
        out.append(FuzzList(layout.window_end % ADDRESS_SPACE, [], ["list:past-window-end"], 1))
        out.append(FuzzList(layout.window_end - DESCRIPTOR.nbytes // 2 // bus * bus, [],
                            ["list:straddles-window-end"], 1))
    return out, addr


def overlap(a, b, bus):
    """Whether the descriptors two :class:`FuzzList` s write to memory overlap."""
    sa, sb = a.desc_addr // bus * bus, b.desc_addr // bus * bus
    ea, eb = sa + len(a.fields) * DESCRIPTOR.nbytes, sb + len(b.fields) * DESCRIPTOR.nbytes
    return sa < eb and sb < ea


def image_lists(rng, image, layout, *, frames, count, max_valid, p_invalid):
    """The lists of one memory image, written into ``image`` (the window's bytes from
    ``layout.mem_base``): every edge of the window once (:func:`edge_lists`), then up to
    ``count`` random lists (:func:`draw_list`) that do not overlap another, each list's
    descriptors at its bus-aligned address and the operands of its valid descriptors.
    Returns the lists."""
    p = layout.params
    bus = p.bus_bytes
    slot = 2 * DESCRIPTOR.nbytes       # at most one valid and one invalid descriptor a list
    lists, cursor = edge_lists(rng, layout, frames=frames, desc_addr=layout.lists[0], slot=slot)
    for i in range(min(count, (layout.lists[0] + layout.lists[1] - cursor) // slot)):
        fl = draw_list(rng, layout, frames=frames, desc_addr=cursor + i * slot, max_valid=max_valid,
                       p_invalid=p_invalid)
        if not any(overlap(fl, other, bus) for other in lists):     # two lists past the window's end
            lists.append(fl)
    for fl in lists:
        start = fl.desc_addr // bus * bus
        for j, (f, label) in enumerate(zip(fl.fields, fl.labels)):
            off = start + j * DESCRIPTOR.nbytes - layout.mem_base
            image[off:off + DESCRIPTOR.nbytes] = np.frombuffer(Descriptor(f, p).to_bytes(), np.uint8)
            if label.startswith("valid"):
                prepare_operands(image, layout.mem_base, f, p)
    return lists
