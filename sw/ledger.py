"""A ledger of the host's per-frame work: what the ARM computes, copies, transfers and polls.

:class:`WorkLedger` is filled by :class:`sw.runtime.FlowRuntime` (its ``ledger`` argument) as a
frame runs, and read by the board frame model (:mod:`sw.boardmodel`), which prices each count
with the rates of a board. The same counts can be derived from the compiled program and the
layer shapes alone (:func:`derive_frame_work`); the tests check that both agree exactly.

What is counted
    * **Host float work**, by part (``"input"`` = frame scaling, each host layer, ``"flow"`` =
      flow assembly) as :class:`Work`: float multiply-accumulates of the matrix products,
      element passes over float arrays (every element one numpy operation writes, float32 and
      float64 alike), element passes over 1-byte arrays (uint8, bool), and numpy calls. The
      counts follow the numpy code the host runs, step by step: ``models.golden.frames_to_float``,
      ``QuantizedModel.run_layer`` for a host layer (dequantization of each input, concat,
      the input operation, ``models.conv.conv_float``: padding, im2col, matrix product, bias;
      then batch norm and the 2-bit quantizer, or the float32 cast), and the flow:
      ``QuantizedModel.flow_value`` of predict_flow2 (the float64 value of the host layer's
      float32 output, or ``models.golden.dequantize_planes`` of its raw accumulators) and
      ``final_flow`` (float32 cast, x flow_scale, ``models.golden.upsample_flow_bilinear``); see
      :func:`host_layer_work` and :func:`flow_work`.
    * **Packing**: ``models.formats.pack_activations`` of each tensor the host writes, the
      frame-pair image when the accelerator reads the frames, and unpacking
      (``unpack_activations`` / ``unpack_accumulators``) of each tensor read back.
    * **Device memory**: bytes and calls of every write and read, by tensor (the transport's
      accesses, matched to the program's tensor regions by address).
    * **Registers**, by descriptor list: reads, writes, ``STATUS`` polls and the waits between
      them, as the driver issues them through the transport.

The element and call counts are a model of the numpy code (a pass is one array-sized loop in
numpy's C code, whatever its arithmetic; a reduction counts the elements it reads); bytes,
registers and polls are what went through the transport.
"""

from dataclasses import dataclass, field

from models.engine import raw_channels
from models.formats import FRAME_COLORS, FRAME_PIXEL_BYTES, channel_groups
from models.network import INPUT, OP_SPACE_TO_DEPTH, OP_UPSAMPLE, OUT_CODES, OUT_FLOAT, OUT_RAW
from models.regmap import CTRL_START, MAX_LAYER_COUNTERS, REG, STATUS_BUSY
from models.quant import ACT_BITS

__all__ = ["Work", "SegmentWork", "FrameWork", "WorkLedger", "LedgerTransport", "host_layer_work", "total",
           "input_work", "flow_work", "bilinear_work", "pack_work", "frame_pair_work", "unpack_work",
           "poll_schedule", "derive_frame_work", "FRAMES_TENSOR"]

#: Name under which the frame-pair image (the accelerator's input) appears in the memory counts.
FRAMES_TENSOR = INPUT

_STATUS = REG["STATUS"].offset
_CTRL = REG["CTRL"].offset
#: Registers the driver writes to start a list (CTRL clear, window base and size, descriptor
#: address and count, CTRL start) and reads around it besides the polls (STATUS before the start;
#: LAYERS_DONE and TOTAL_CYCLES after; the LAYER_CYCLES counters come on top).
_START_WRITES = 6
_START_READS = 1
_END_READS = 2


@dataclass
class Work:
    """Counts of one piece of host work.

    Members
    -------
    macs : int
        Float multiply-accumulates in matrix products.
    matmul_loops : int
        Inner loops of those products: one per (row, inner index) pair, each over the output
        columns (``macs / columns``); a product with few output columns is bound by them.
    float_elems : int
        Elements written by element-wise numpy operations on arrays of 4- and 8-byte elements
        (float arithmetic, casts, comparisons, index arithmetic; one pass over ``n`` elements
        counts ``n``; a reduction counts the elements it reads).
    copy_elems : int
        Elements of float arrays copied by a gather: a concatenation along the channel axis,
        im2col, padding, space_to_depth, nearest upsampling (strided copies in short runs).
    byte_elems : int
        Elements written by numpy operations on 1-byte arrays (uint8, bool), including copies of
        byte buffers.
    calls : int
        numpy calls (each costs a fixed overhead besides its elements).
    elem_loops : int
        Inner loops of element passes whose operands numpy cannot walk as one run: an operand
        broadcast along an inner axis (a per-channel scale, bias or batch-norm parameter; a
        per-column interpolation weight) or a strided destination (the frame pair's 6 bytes a
        pixel into the 8 of the frame-pair image) makes numpy's iterator run the inner loop once
        per run of the innermost axes it can merge, ``n / run`` times (a pass over contiguous
        or scalar operands counts 0). Counted for the float passes of the host layers and the
        flow and for the frame-pair image; the gathers' runs are in the rate of
        ``copy_elems``, and the runs of the code packing (``pack_work``, ``unpack_work``, float
        ends only) are not counted.
    """

    macs: int = 0
    matmul_loops: int = 0
    float_elems: int = 0
    copy_elems: int = 0
    byte_elems: int = 0
    calls: int = 0
    elem_loops: int = 0

    def __add__(self, other):
        return Work(*(getattr(self, f) + getattr(other, f) for f in _WORK_FIELDS))

    def as_dict(self):
        return {f: getattr(self, f) for f in _WORK_FIELDS}


_WORK_FIELDS = ("macs", "matmul_loops", "float_elems", "copy_elems", "byte_elems", "calls", "elem_loops")


@dataclass
class SegmentWork:
    """Register traffic of one descriptor list.

    Members
    -------
    layers : list of str
    reg_reads, reg_writes : int
        Every register access of the list (polls included in ``reg_reads``).
    polls : int
        ``STATUS`` reads while waiting for done.
    waits : int
        Sleeps between polls.
    """

    layers: list
    reg_reads: int = 0
    reg_writes: int = 0
    polls: int = 0
    waits: int = 0

    def as_dict(self):
        return {"layers": list(self.layers), "reg_reads": self.reg_reads, "reg_writes": self.reg_writes,
                "polls": self.polls, "waits": self.waits}


@dataclass
class FrameWork:
    """The host's work for one frame (see the module docstring).

    Members
    -------
    host : dict of str -> dict of str -> Work
        Float work by part (``"input"``, host layer names, ``"flow"``) and step (see
        :func:`host_layer_work`).
    pack : dict of str -> Work
        Packing by tensor (``FRAMES_TENSOR`` for the frame-pair image).
    unpack : dict of str -> Work
    writes, reads : dict of str -> int
        Device-memory bytes by tensor.
    write_calls, read_calls : dict of str -> int
    segments : list of SegmentWork
    """

    host: dict = field(default_factory=dict)
    pack: dict = field(default_factory=dict)
    unpack: dict = field(default_factory=dict)
    writes: dict = field(default_factory=dict)
    reads: dict = field(default_factory=dict)
    write_calls: dict = field(default_factory=dict)
    read_calls: dict = field(default_factory=dict)
    segments: list = field(default_factory=list)

    def add_host(self, part, steps):
        mine = self.host.setdefault(part, {})
        for step, work in steps.items():
            _add(mine, step, work)

    def as_dict(self):
        return {"host": {k: {s: w.as_dict() for s, w in v.items()} for k, v in self.host.items()},
                "pack": {k: v.as_dict() for k, v in self.pack.items()},
                "unpack": {k: v.as_dict() for k, v in self.unpack.items()},
                "writes": dict(self.writes), "reads": dict(self.reads),
                "write_calls": dict(self.write_calls), "read_calls": dict(self.read_calls),
                "segments": [s.as_dict() for s in self.segments]}

    @property
    def write_bytes(self):
        return sum(self.writes.values())

    @property
    def read_bytes(self):
        return sum(self.reads.values())


# -- the numpy work of each host step ------------------------------------------------------

def _size(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _add(steps, step, work):
    steps[step] = steps.get(step, Work()) + work
    return steps


def total(steps):
    """Sum of a ``{step: Work}`` mapping."""
    out = Work()
    for w in steps.values():
        out += w
    return out


def input_work(shape):
    """``models.golden.frames_to_float`` of uint8 frames of ``shape``: cast to float64, / 255."""
    n = _size(shape)
    return {"scale": Work(float_elems=2 * n, calls=2)}


def _dequantize_work(kind, shape, bias):
    """``QuantizedModel.dequantize`` of one input of a host layer."""
    n = _size(shape)
    if kind == OUT_CODES:
        # dequantize_activations(t, float64): astype(float64), * 2/3, astype(float64)
        return Work(float_elems=3 * n, calls=3)
    if kind == OUT_RAW:
        # dequantize_raw: asarray(float64), alpha * 2/3 (per channel), *, + bias (both broadcast
        # along the channels: one inner loop a pixel)
        c = int(shape[-1])
        return Work(float_elems=2 * n + c + (n if bias else 0), calls=3 + (1 if bias else 0),
                    elem_loops=(n // c) * (2 if bias else 1))
    return Work(calls=1)                     # float input: np.asarray, no copy


def host_layer_work(layer, input_kinds, input_shapes):
    """Work of ``QuantizedModel.run_layer`` for a host layer.

    Parameters
    ----------
    layer : models.network.Layer
    input_kinds : list of str
        ``OUT_CODES``, ``OUT_RAW`` or ``OUT_FLOAT`` of each input (the network input is float).
    input_shapes : list of tuple
        ``(N, H, W, C)`` of each input as the host holds it.

    Returns
    -------
    dict of str -> Work
        By step: ``dequantize``, ``concat``, ``space_to_depth`` or ``upsample``, ``im2col``
        (padding and patches), ``matmul``, ``bias``, ``batch_norm``, ``quantize`` or ``cast``.
    """
    steps = {}
    for kind, shape in zip(input_kinds, input_shapes):
        _add(steps, "dequantize", _dequantize_work(kind, shape, bias=layer.bias if kind == OUT_RAW else False))
    lead = tuple(input_shapes[0][:-1])
    c = sum(int(s[-1]) for s in input_shapes)
    n = _size(lead) * c
    steps["concat"] = Work(copy_elems=n, calls=3)      # plan lookup, sources, np.concatenate (copies)
    if layer.input_op == OP_SPACE_TO_DEPTH:
        steps["space_to_depth"] = Work(copy_elems=n, calls=3)      # reshape, moveaxis, reshape (copy)
    elif layer.input_op == OP_UPSAMPLE:
        steps["upsample"] = Work(copy_elems=2 * n + 4 * n, calls=2)   # repeat along H, then along W
    batch = int(input_shapes[0][0])
    h, wd, k, c_in, c_out = layer.height, layer.width, layer.kernel, layer.c_in, layer.c_out
    pixels = batch * h * wd
    p = k // 2
    # conv_float: asarray x and w, np.pad, k*k slices + concatenate (im2col), matmul, bias
    steps["im2col"] = Work(copy_elems=batch * (h + 2 * p) * (wd + 2 * p) * c_in + pixels * k * k * c_in,
                           calls=3 + k * k + 2)
    steps["matmul"] = Work(macs=pixels * k * k * c_in * c_out, matmul_loops=pixels * k * k * c_in,
                           float_elems=pixels * c_out, calls=2)
    out = pixels * c_out
    if layer.bias:
        steps["bias"] = Work(float_elems=out, calls=2, elem_loops=pixels)
    if layer.output == OUT_CODES:
        # batch_norm: z - mean, gamma * ., var + eps and sqrt (per channel), / ., + beta; the four
        # passes broadcast their parameter along the channels
        steps["batch_norm"] = Work(float_elems=4 * out + 2 * c_out, calls=9, elem_loops=4 * pixels)
        # quantize_activations: isnan + any, clip, / 2, * 3, + 0.5, floor, astype(uint8)
        steps["quantize"] = Work(float_elems=5 * out, byte_elems=3 * out, calls=9)
    elif layer.output == OUT_FLOAT:
        steps["cast"] = Work(float_elems=out, calls=1)   # astype(float32)
    return steps


def bilinear_work(shape, factor=4):
    """``models.golden.upsample_flow_bilinear`` of a float32 flow ``shape`` ``(N, H, W, C)``.

    ``asarray`` (no copy) and the ``factor`` phase weights (``np.float32`` scalars); then per
    axis (W on the planar view ``(N, C, H, W)``, then H), over rows of ``n`` input pixels: the
    edge padding (``empty``, the input and its two edge pixels written in: ``n + 2`` a row), the
    differences (one pass of ``n + 1``) and, for every phase, ``*`` and ``+`` into the output
    (two passes of ``n`` a row); besides, ``moveaxis``, the outputs' ``empty`` and ``reshape``.
    Inner loops (numpy's iterator, as ``np.nditer`` counts them): the W pass runs one a row in
    its padding, differences and phases (the phases' destination is strided), and one a plane
    for each edge column; the H pass one a plane in its padding and differences, and one an
    input row of each channel in its phases (their destination interleaves the channels).
    """
    n, h, w, c = (int(d) for d in shape)
    f = int(factor)

    def runs(count):
        return 0 if count <= 1 else count

    planes = n * c
    steps = Work(calls=1 + f)
    # W pass: planes * h rows of w pixels
    rows = planes * h
    steps += Work(float_elems=rows * (w + 2) + rows * (w + 1) + 2 * f * rows * w,
                  elem_loops=2 * runs(rows) + 2 * runs(planes) + 2 * f * runs(rows), calls=8 + 2 * f)
    # H pass: planes of h rows of w * f pixels, written into the interleaved output
    width = w * f
    steps += Work(float_elems=planes * (h + 2) * width + planes * (h + 1) * width + 2 * f * planes * h * width,
                  elem_loops=4 * runs(planes) + 2 * f * runs(planes * h), calls=8 + 2 * f)
    return steps


def flow_work(layer, shape, factor=4):
    """``QuantizedModel.final_flow(QuantizedModel.flow_value("predict_flow2", t))`` for
    ``predict_flow2`` (``layer``) held as ``t`` of ``shape`` ``(N, H, W, C)``.

    Steps: ``dequantize``, the float value (float ends: ``np.asarray(t, float64)`` of the host
    layer's float32 output, a cast; quantized ends: ``models.golden.dequantize_planes`` of the
    multi-plane raw accumulators: float64 cast, plane scales, product, sum over the ``M`` planes,
    bias); ``scale``, ``final_flow``'s float32 cast and ``* flow_scale``; ``upsample``, the
    bilinear x ``factor`` (:func:`bilinear_work`).
    """
    n = _size(shape)
    c = int(shape[-1])
    if layer.output == OUT_RAW and layer.planes:
        # asarray(float64), asarray(beta) * 2/3, acc * . (broadcast: a loop a pixel), reshape,
        # sum(axis=-1) (a loop of M an output), asarray(bias), + bias (a loop a pixel)
        out = n // layer.planes
        pixels = n // c
        steps = {"dequantize": Work(float_elems=n + c + n + n + out, calls=8, elem_loops=pixels + out + pixels)}
    elif layer.output == OUT_RAW:
        out = n
        steps = {"dequantize": _dequantize_work(OUT_RAW, shape, layer.bias)}
    else:
        out = n
        steps = {"dequantize": Work(float_elems=n, calls=1)}
    steps["scale"] = Work(float_elems=2 * out, calls=3)      # asarray(float32), np.float32(scale), *
    steps["upsample"] = bilinear_work(tuple(shape[:-1]) + (out // _size(shape[:-1]),), factor)
    return steps


def pack_work(height, width, channels, lanes):
    """``Program.pack_tensor`` (``pack_activations`` + ``tobytes``) of ``(H, W, C)`` codes."""
    n = height * width * channels
    np_ = height * width * channel_groups(channels, lanes) * lanes      # padded codes
    packed = np_ * ACT_BITS // 8
    # min/max check, zeros, copy into the padded array, 2 x (>> b, & 1), stack, astype(bool),
    # packbits, transpose + ascontiguousarray, tobytes
    return Work(byte_elems=2 * n + np_ + n + 2 * 2 * np_ + 2 * np_ + 2 * np_ + 2 * np_ + 2 * packed,
                calls=16)


def frame_pair_work(height, width, channels):
    """``Program.pack_tensor`` of the network input: ``models.formats.pack_frame_pair`` of uint8
    frames ``(H, W, C)`` (``zeros``, the copy into it) and ``tobytes``."""
    n = height * width * FRAME_PIXEL_BYTES
    # the copy writes ``channels`` of every pixel's 8 bytes: one inner loop a pixel
    return Work(byte_elems=n + height * width * channels + n, calls=5, elem_loops=height * width)


def unpack_work(kind, height, width, channels, params):
    """``Program.unpack_tensor`` of a tensor read back (codes or raw accumulators) on an engine
    of ``params`` (:class:`models.engine.EngineParams`)."""
    if kind == OUT_CODES:
        lanes = params.simd_lanes
        g = channel_groups(channels, lanes)
        bits = g * height * width * ACT_BITS * lanes
        n = height * width * channels
        # frombuffer, transpose, reshape (copy), unpackbits, astype(bool), 2 x (astype, <<), sum, slice astype
        return Work(byte_elems=bits // 8 + bits + bits + 2 * bits + bits // 2 + n, calls=12)
    # raw accumulators, models.engine.raw_channels a pixel: frombuffer, reshape,
    # ascontiguousarray (no copy), view, [..., 0], astype(int32) (the one pass), slice
    n = height * width * raw_channels(channels, params)
    return Work(float_elems=n, calls=6)


def poll_schedule(busy_s, poll_min_s, poll_max_s, poll_cost_s=0.0, wait_cost_s=0.0):
    """How the driver's polling sees a descriptor list that is busy for ``busy_s`` seconds.

    The driver reads ``STATUS`` and, while busy, waits ``delay`` (``poll_min_s`` doubling up to
    ``poll_max_s``) before the next read (:meth:`sw.driver.Accelerator._wait_done`). Each read
    costs ``poll_cost_s`` and each wait ``wait_cost_s`` on top of its delay.

    Returns
    -------
    polls : int
        ``STATUS`` reads.
    waits : int
    done_s : float
        Time from the start until the read that sees done returns.
    """
    t = 0.0
    delay = poll_min_s
    polls = waits = 0
    while True:
        polls += 1
        t += poll_cost_s
        if t >= busy_s:
            return polls, waits, t
        t += delay + wait_cost_s
        waits += 1
        delay = min(2 * delay, poll_max_s)


# -- the ledger the runtime fills ----------------------------------------------------------

class WorkLedger:
    """Per-frame work counts, filled by :class:`sw.runtime.FlowRuntime` (``ledger=``).

    Members
    -------
    frames : list of FrameWork
        One record per frame run.
    load : FrameWork
        Transfers before the first frame (the program's constants).
    """

    def __init__(self):
        self.frames = []
        self.load = FrameWork()
        self._frame = self.load
        self._program = None
        self._segment = None
        self._regions = []

    # -- what the runtime calls ------------------------------------------------------------

    def watch(self, transport):
        """Wrap a transport so that its register and memory accesses are counted."""
        return LedgerTransport(transport, self)

    def begin_frame(self, program, frames):
        """A new frame starts (``frames``: the uint8 input as the runtime holds it)."""
        if program is not self._program:
            self._program = program
            self._regions = self._tensor_regions(program)
        self._frame = FrameWork()
        self._segment = None
        self.frames.append(self._frame)
        if INPUT not in program.placements:          # the accelerator reads the frames itself otherwise
            self._frame.add_host("input", input_work(frames.shape))

    def packed_frames(self, frames):
        """The frame pair ``(H, W, 6)`` was packed into the frame-pair image for the device."""
        h, w, c = frames.shape
        self._frame.pack[INPUT] = self._frame.pack.get(INPUT, Work()) + frame_pair_work(h, w, c)

    def host_layer(self, model, name, tensors):
        """Host layer ``name`` of ``model`` (a ``QuantizedModel``) ran on ``tensors`` (by name)."""
        layer = model.plans[name].layer
        kinds = [OUT_FLOAT if i == INPUT else model.plans[i].layer.output for i in layer.inputs]
        self._frame.add_host(name, host_layer_work(layer, kinds, [tensors[i].shape for i in layer.inputs]))

    def packed(self, name, codes, lanes):
        """A host tensor ``codes`` ``(H, W, C)`` was packed for the device."""
        h, w, c = codes.shape
        self._frame.pack[name] = self._frame.pack.get(name, Work()) + pack_work(h, w, c, lanes)

    def segment(self, layers):
        """A descriptor list of ``layers`` starts now."""
        self._segment = SegmentWork(list(layers))
        self._frame.segments.append(self._segment)

    def unpacked(self, name, kind, shape, params):
        """A tensor read back was unpacked to ``shape`` ``(H, W, C)``."""
        h, w, c = shape
        self._frame.unpack[name] = self._frame.unpack.get(name, Work()) + unpack_work(kind, h, w, c, params)

    def end_frame(self, model, predict_flow2):
        """The flow was assembled from ``predict_flow2`` (as the host holds it)."""
        self._frame.add_host("flow", flow_work(model.plans["predict_flow2"].layer, predict_flow2.shape))
        self._segment = None

    # -- what the transport reports --------------------------------------------------------

    @staticmethod
    def _tensor_regions(program):
        regions = []
        for name in program.placements:
            if name == INPUT:
                continue
            addr, n = program.tensor_bytes(name)
            regions.append((addr, addr + n, name))
        return regions

    def _tensor_at(self, addr):
        for lo, hi, name in self._regions:
            if lo <= addr < hi:
                return name
        return FRAMES_TENSOR if self._program is not None and INPUT in self._program.placements else "?"

    def _mem(self, counts, calls, addr, nbytes):
        name = "program" if self._frame is self.load else self._tensor_at(addr)
        counts[name] = counts.get(name, 0) + nbytes
        calls[name] = calls.get(name, 0) + 1

    def mem_write(self, addr, nbytes):
        self._mem(self._frame.writes, self._frame.write_calls, addr, nbytes)

    def mem_read(self, addr, nbytes):
        self._mem(self._frame.reads, self._frame.read_calls, addr, nbytes)

    def reg_read(self, offset, polling):
        seg = self._segment
        if seg is not None:
            seg.reg_reads += 1
            if polling:
                seg.polls += 1

    def reg_write(self, offset, value):
        if self._segment is not None:
            self._segment.reg_writes += 1

    def waited(self):
        if self._segment is not None:
            self._segment.waits += 1


class LedgerTransport:
    """A transport that reports every register and memory access to a :class:`WorkLedger`.

    It forwards everything else to the wrapped transport, so the driver and the runtime use it
    as they use the transport itself. A ``STATUS`` read counts as a poll when it follows the
    start of the list (``CTRL`` written with the start bit) and does not come after the one that
    saw the list no longer busy.
    """

    def __init__(self, transport, ledger):
        self._transport = transport
        self._ledger = ledger
        self._polling = False

    def __getattr__(self, name):
        return getattr(self._transport, name)

    @property
    def wrapped(self):
        return self._transport

    def read_reg(self, offset):
        value = self._transport.read_reg(offset)
        poll = self._polling and offset == _STATUS
        self._ledger.reg_read(offset, poll)
        if poll and not STATUS_BUSY.get(value):
            self._polling = False
        return value

    def write_reg(self, offset, value):
        self._transport.write_reg(offset, value)
        self._ledger.reg_write(offset, value)
        if offset == _CTRL:
            self._polling = bool(CTRL_START.get(value))

    def mem_read(self, addr, nbytes):
        data = self._transport.mem_read(addr, nbytes)
        self._ledger.mem_read(addr, nbytes)
        return data

    def mem_write(self, addr, data):
        self._transport.mem_write(addr, data)
        self._ledger.mem_write(addr, len(data))

    def wait(self, seconds):
        self._transport.wait(seconds)
        self._ledger.waited()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- the same counts, derived from the program ---------------------------------------------

def derive_frame_work(layers, program, busy_s, *, poll_min_s=20e-6, poll_max_s=1e-3, poll_cost_s=0.0,
                      wait_cost_s=0.0, batch=1):
    """The host's work for one frame, from the layer list and the compiled program alone.

    This is what :class:`sw.runtime.FlowRuntime` does per frame (without ``keep_tensors``):
    the input scaling, every host layer of the schedule, packing and writing each host tensor
    the accelerator reads, each descriptor list with its register accesses and polls, reading
    back and unpacking every accelerator tensor a host layer or the flow needs, the flow. When
    the accelerator reads the network input itself (``INPUT`` placed in device memory), the host
    packs and writes the frame-pair image instead of scaling the frames.

    Parameters
    ----------
    layers : list of models.network.Layer
        The network's layers (their shapes give the host work; they may be narrower than the
        program's placements, which are then zero-padded by the host).
    program : sw.program.Program
    busy_s : dict of str -> float or callable
        How long each descriptor list is busy, by its first layer's name, or a callable
        ``(Segment) -> seconds``: it decides the number of polls.
    poll_min_s, poll_max_s : float
        The driver's polling interval (:class:`sw.driver.Accelerator`).
    poll_cost_s, wait_cost_s : float
        Time a ``STATUS`` read and a wait cost besides the delay (0 for the golden backend's
        virtual clock).
    batch : int
        Frames per call (1: the runtime runs the frames of a call one by one).

    Returns
    -------
    FrameWork
    """
    from .program import HostLayer, Segment
    by_name = {layer.name: layer for layer in layers}
    p = program.params
    fw = FrameWork()
    frames_on_device = INPUT in program.placements
    if frames_on_device:
        pl = program.placements[INPUT]
        h, w, c = pl.height, pl.width, FRAME_COLORS
        cfg_in = (h, w, c)
        fw.pack[FRAMES_TENSOR] = frame_pair_work(h, w, c)
        fw.writes[FRAMES_TENSOR] = h * w * FRAME_PIXEL_BYTES       # pack_frame_pair's bytes
        fw.write_calls[FRAMES_TENSOR] = 1
    else:
        cfg_in = _input_shape(layers)
        fw.add_host("input", input_work((batch,) + cfg_in))
    kinds = {INPUT: OUT_FLOAT}
    kinds.update({layer.name: layer.output for layer in layers})
    shapes = {INPUT: (batch,) + cfg_in}
    shapes.update({layer.name: (batch, layer.height, layer.width, layer.c_out) for layer in layers})
    host_names = [item.name for item in program.schedule if isinstance(item, HostLayer)]
    needed = {i for name in host_names for i in by_name[name].inputs}
    needed.add("predict_flow2")
    for item in program.schedule:
        if isinstance(item, HostLayer):
            layer = by_name[item.name]
            fw.add_host(layer.name, host_layer_work(layer, [kinds[i] for i in layer.inputs],
                                                    [shapes[i] for i in layer.inputs]))
            if layer.name in program.placements:
                pl = program.placements[layer.name]
                work = pack_work(pl.height, pl.width, pl.channels, p.simd_lanes)
                if layer.c_out < pl.channels:      # zero-pad a narrower layer to its placement
                    work += Work(byte_elems=pl.height * pl.width * pl.channels, calls=2)
                fw.pack[layer.name] = work
                fw.writes[layer.name] = program.tensor_bytes(layer.name)[1]
                fw.write_calls[layer.name] = 1
            continue
        assert isinstance(item, Segment)
        busy = busy_s(item) if callable(busy_s) else busy_s[item.layers[0]]
        polls, waits, _ = poll_schedule(busy, poll_min_s, poll_max_s, poll_cost_s, wait_cost_s)
        fw.segments.append(SegmentWork(list(item.layers), reg_writes=_START_WRITES, polls=polls, waits=waits,
                                       reg_reads=_START_READS + polls + _END_READS
                                       + min(item.count, MAX_LAYER_COUNTERS)))
        for name in item.layers:
            if name in needed:
                pl = program.placements[name]
                fw.reads[name] = program.tensor_bytes(name)[1]
                fw.read_calls[name] = 1
                fw.unpack[name] = unpack_work(pl.kind, pl.height, pl.width, pl.channels, p)
    pf2 = by_name["predict_flow2"]
    fw.add_host("flow", flow_work(pf2, (batch, pf2.height, pf2.width, pf2.c_out)))
    return fw


def _input_shape(layers):
    """(H, W, C) of the network input, from the first layer that reads it."""
    for layer in layers:
        if INPUT in layer.inputs:
            if layer.input_op == OP_SPACE_TO_DEPTH:
                return (layer.height * 2, layer.width * 2, layer.c_in // 4)
            return (layer.height, layer.width, layer.c_in)
    raise ValueError("no layer reads the network input")
