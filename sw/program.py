"""Compile a quantized LMFlowNet for the accelerator: memory map, constant blobs, descriptor lists
and the host/accelerator schedule.

Built once per model (weights) and engine configuration; per frame the host only writes the
host-produced tensors, starts each accelerator segment and reads back the tensors the host
needs. With quantized ends that is: the frame-pair image down, one descriptor list (every
layer), predict_flow2's raw accumulators back. Placement rules:

* the network input, when the accelerator reads it (quantized ends: conv1's source), is the
  frame-pair image (``models.formats.pack_frame_pair``, ``src_format`` = frame pairs) in its own
  buffer;
* every code tensor the accelerator reads or writes lives in the activation layout
  (``models.formats.pack_activations``) in device memory; the members of a concat share one
  buffer, each starting at a channel group boundary (their channel counts, but the last's, must
  be multiples of ``S``), so concat costs nothing;
* raw-accumulator outputs have their own buffers (``models.formats.pack_accumulators`` layout,
  whole tiles);
* the schedule runs every accelerator layer as soon as its inputs exist, grouping consecutive
  accelerator layers into one descriptor list (one start, one done).
"""

from dataclasses import dataclass, field

import numpy as np

from models.board import BUFFER_ALIGN
from models.engine import (DESCRIPTOR, ERR_CAPACITY, ERROR_NAMES, OP_CODES, OUTPUT_CODES, OUTPUT_RAW, SRC_CODES,
                           SRC_FRAMES, Descriptor, act_buffer_words_needed, raw_channels, raw_tensor_bytes,
                           validate_descriptor)
from models.errors import ConfigError
from models.formats import (FRAME_CODE_CHANNELS, FRAME_PIXEL_BYTES, channel_groups, frame_pair_codes,
                            pack_activations, pack_frame_pair, pack_thresholds_tiled, pack_weights_tiled, tiles,
                            unpack_accumulators, unpack_activations, unpack_frame_pair)
from models.network import INPUT, OUT_CODES, OUT_RAW

__all__ = ["Buffer", "Segment", "HostLayer", "Program", "compile_program", "cycles_table", "KIND_FRAMES"]

#: Placement kind of the network input as a frame-pair image (quantized ends).
KIND_FRAMES = "frames"

_ALIGN = BUFFER_ALIGN


@dataclass
class Buffer:
    """A region of device memory: ``offset`` from the arena base, ``size`` in bytes."""

    name: str
    offset: int
    size: int


@dataclass
class Segment:
    """Consecutive accelerator layers run by one descriptor list."""

    layers: list
    desc_offset: int

    @property
    def count(self):
        return len(self.layers)


@dataclass
class HostLayer:
    name: str


@dataclass
class Placement:
    """Where a tensor lives: a buffer, the byte offset in it, its channel count and kind."""

    buffer: str
    offset: int
    channels: int
    height: int
    width: int
    kind: str          # OUT_CODES, OUT_RAW or KIND_FRAMES


@dataclass
class Program:
    """The compiled model (see :func:`compile_program`).

    Members
    -------
    params : EngineParams
    base : int
        Device address of the arena (the memory window starts here).
    size : int
        Arena size in bytes.
    buffers : dict of str -> Buffer
    placements : dict of str -> Placement
        Every tensor the accelerator touches, by layer name.
    schedule : list of Segment and HostLayer
    descriptors : dict of str -> Descriptor
        By accelerator layer name.
    constants : numpy.ndarray of uint8
        The whole initial arena image: descriptors, weights, thresholds, zeroed tensors.
    """

    params: object
    base: int
    size: int
    buffers: dict = field(default_factory=dict)
    placements: dict = field(default_factory=dict)
    schedule: list = field(default_factory=list)
    descriptors: dict = field(default_factory=dict)
    constants: np.ndarray = None

    def address(self, name):
        """Device address of a tensor placement."""
        pl = self.placements[name]
        return self.base + self.buffers[pl.buffer].offset + pl.offset

    @property
    def window(self):
        return (self.base, self.size)

    @property
    def frames_input(self):
        """The accelerator reads the network input (a frame-pair image): quantized ends."""
        return INPUT in self.placements

    def pack_tensor(self, name, codes):
        """Codes ``(H, W, C)`` of a host-produced tensor -> (device address, bytes to write). For
        the network input (:attr:`frames_input`) ``codes`` are the uint8 frames ``(H, W, 6)``,
        written as the frame-pair image."""
        pl = self.placements[name]
        if pl.kind == KIND_FRAMES:
            frames = np.asarray(codes)
            if frames.shape[:2] != (pl.height, pl.width):
                raise ValueError(f"frames must be {pl.height}x{pl.width}, not {frames.shape}")
            return self.address(name), pack_frame_pair(frames).tobytes()
        if pl.kind != OUT_CODES:
            raise ValueError(f"tensor {name} is not a code tensor")
        codes = np.asarray(codes)
        if codes.shape != (pl.height, pl.width, pl.channels):
            raise ValueError(f"tensor {name} must be {pl.height}x{pl.width}x{pl.channels}, not {codes.shape}")
        return self.address(name), pack_activations(codes, self.params.simd_lanes).tobytes()

    def tensor_bytes(self, name):
        """(device address, size) of a tensor's region."""
        pl = self.placements[name]
        p = self.params
        if pl.kind == KIND_FRAMES:
            n = pl.height * pl.width * FRAME_PIXEL_BYTES
        elif pl.kind == OUT_CODES:
            n = channel_groups(pl.channels, p.simd_lanes) * pl.height * pl.width * p.bus_bytes
        else:
            n = raw_tensor_bytes(pl.height, pl.width, pl.channels, p)
        return self.address(name), n

    def unpack_tensor(self, name, data):
        """Bytes read from a tensor's region -> codes or accumulators ``(H, W, C)`` (the
        frame-pair image: the codes its layer reads, ``models.formats.frame_pair_codes``)."""
        pl = self.placements[name]
        p = self.params
        raw = np.frombuffer(bytes(data), dtype=np.uint8)
        if pl.kind == KIND_FRAMES:
            return frame_pair_codes(unpack_frame_pair(raw.reshape(pl.height, pl.width, FRAME_PIXEL_BYTES)))
        if pl.kind == OUT_CODES:
            g = channel_groups(pl.channels, p.simd_lanes)
            return unpack_activations(raw.reshape(g, pl.height, pl.width, 2, p.simd_lanes // 8), pl.channels)
        stored = raw_channels(pl.channels, p)
        return unpack_accumulators(raw.reshape(pl.height, pl.width, stored, p.acc_bits // 8), pl.channels)


def compile_program(model, params, base=0):
    """Compile a :class:`models.golden.QuantizedModel` for an engine configuration.

    Parameters
    ----------
    model : QuantizedModel
    params : models.engine.EngineParams
    base : int
        Device address of the arena (bus-word aligned).

    Raises
    ------
    ConfigError
        If a layer cannot run on this engine configuration (the message names the layer and the
        reason), or a concat member does not start at a channel-group boundary.

    With quantized ends the network input is a device tensor (the frame-pair image, conv1's
    source) and every layer is in one descriptor list; with float ends the host layers split
    the schedule into segments.
    """
    if base % params.bus_bytes:
        raise ConfigError(f"arena base 0x{base:x} must be aligned to {params.bus_bytes} bytes")
    layers = {layer.name: layer for layer in model.layers}
    accel = [layer for layer in model.layers if layer.accel]
    s = params.simd_lanes

    # Tensors the accelerator touches and the concats that group them.
    touched = set()
    for layer in accel:
        touched.add(layer.name)
        touched.update(layer.inputs)
    concat_of = {}
    for layer in accel:
        if len(layer.inputs) > 1:
            offset = 0
            for i, src in enumerate(layer.inputs):
                if src in concat_of:
                    raise ConfigError(f"tensor {src} is in two concats ({concat_of[src][0]} and {layer.name})")
                concat_of[src] = (layer.name, offset)
                c = layers[src].c_out
                if i < len(layer.inputs) - 1 and c % s:
                    raise ConfigError(f"layer {layer.name}: concat member {src} has {c} channels, "
                                      f"not a multiple of simd_lanes={s}")
                offset += c

    prog = Program(params=params, base=base, size=0)
    blobs = []
    cursor = 0

    def alloc(name, size, data=None):
        nonlocal cursor
        cursor = -(-cursor // _ALIGN) * _ALIGN
        prog.buffers[name] = Buffer(name, cursor, size)
        if data is not None:
            blobs.append((cursor, data))
        cursor += size
        return prog.buffers[name]

    # Code tensors and raw outputs.
    for name in sorted(touched, key=lambda n: [x.name for x in model.layers].index(n) if n != INPUT else -1):
        if name == INPUT:
            if not model.cfg.quantized_ends:
                raise ConfigError("the network input cannot feed the accelerator directly")
            h, w = model.cfg.height, model.cfg.width
            alloc(f"tensor:{INPUT}", -(-h * w * FRAME_PIXEL_BYTES // params.bus_bytes) * params.bus_bytes)
            prog.placements[INPUT] = Placement(f"tensor:{INPUT}", 0, FRAME_CODE_CHANNELS, h, w, KIND_FRAMES)
            continue
        layer = layers[name]
        kind = layer.output
        if kind not in (OUT_CODES, OUT_RAW):
            raise ConfigError(f"tensor {name} ({kind}) cannot be placed in device memory")
        if name in concat_of:
            cat, ch_off = concat_of[name]
            buf = f"concat:{cat}"
            if buf not in prog.buffers:
                total = layers[cat].c_in
                alloc(buf, channel_groups(total, s) * layer.height * layer.width * params.bus_bytes)
            offset = (ch_off // s) * layer.height * layer.width * params.bus_bytes
            prog.placements[name] = Placement(buf, offset, layer.c_out, layer.height, layer.width, kind)
            continue
        if kind == OUT_CODES:
            size = channel_groups(layer.c_out, s) * layer.height * layer.width * params.bus_bytes
        else:
            size = raw_tensor_bytes(layer.height, layer.width, layer.c_out, params)
        alloc(f"tensor:{name}", size)
        prog.placements[name] = Placement(f"tensor:{name}", 0, layer.c_out, layer.height, layer.width, kind)

    # Schedule: accelerator layers as soon as their inputs exist, in segments.
    done = {INPUT}
    pending = list(model.layers)
    segments = []
    while pending:
        seg = []
        progress = True
        while progress:
            progress = False
            for layer in list(pending):
                if layer.accel and all(i in done for i in layer.inputs):
                    seg.append(layer.name)
                    done.add(layer.name)
                    pending.remove(layer)
                    progress = True
        if seg:
            segments.append(seg)
            prog.schedule.append(seg)
        for layer in list(pending):
            if not layer.accel and all(i in done for i in layer.inputs):
                prog.schedule.append(HostLayer(layer.name))
                done.add(layer.name)
                pending.remove(layer)
                break
        else:
            if pending and not seg:
                raise ConfigError(f"cannot schedule layers {[x.name for x in pending]}")

    # Weights and thresholds.
    for layer in accel:
        plan = model.plans[layer.name]
        alloc(f"weights:{layer.name}", 0, None)
        wt = pack_weights_tiled(plan.signs, params.pe_count, s)
        prog.buffers[f"weights:{layer.name}"].size = wt.size
        blobs.append((prog.buffers[f"weights:{layer.name}"].offset, wt.reshape(-1)))
        cursor = prog.buffers[f"weights:{layer.name}"].offset + wt.size
        if plan.thresholds is not None:
            if plan.thresholds.acc_bound > params.acc_bound:
                raise ConfigError(f"layer {layer.name}: accumulator bound {plan.thresholds.acc_bound} exceeds "
                                  f"the design's {params.acc_bound}")
            table = plan.thresholds.__class__(plan.thresholds.thresholds, plan.thresholds.direction,
                                              plan.thresholds.constant, params.acc_bound)
            th = pack_thresholds_tiled(table, params.pe_count, params.threshold_layout)
            alloc(f"thresholds:{layer.name}", th.size, th.reshape(-1))

    # Descriptors, one list per segment.
    for seg_layers in segments:
        buf = alloc(f"descriptors:{seg_layers[0]}", len(seg_layers) * DESCRIPTOR.nbytes)
        seg_obj = Segment(seg_layers, buf.offset)
        prog.schedule[prog.schedule.index(seg_layers)] = seg_obj
    cursor = -(-cursor // _ALIGN) * _ALIGN
    prog.size = cursor
    for item in prog.schedule:
        if not isinstance(item, Segment):
            continue
        for i, name in enumerate(item.layers):
            layer = layers[name]
            first = layer.inputs[0]
            src_channels = layer.c_in // 4 if layer.input_op == "space_to_depth" else layer.c_in
            src_h = layer.height * 2 if layer.input_op == "space_to_depth" else (
                layer.height // 2 if layer.input_op == "upsample" else layer.height)
            src_w = layer.width * 2 if layer.input_op == "space_to_depth" else (
                layer.width // 2 if layer.input_op == "upsample" else layer.width)
            src_addr = base + prog.buffers[f"concat:{name}"].offset if len(layer.inputs) > 1 else prog.address(first)
            fields = dict(kernel=layer.kernel, input_op=OP_CODES[layer.input_op],
                          output_mode=OUTPUT_CODES if layer.output == OUT_CODES else OUTPUT_RAW,
                          src_format=SRC_FRAMES if layer.inputs == (INPUT,) else SRC_CODES,
                          layer_id=[x.name for x in model.layers].index(name), src_height=src_h, src_width=src_w,
                          src_channels=src_channels, out_channels=layer.c_out, src_addr=src_addr,
                          weights_addr=base + prog.buffers[f"weights:{name}"].offset,
                          thresholds_addr=(base + prog.buffers[f"thresholds:{name}"].offset
                                           if layer.output == OUT_CODES else 0),
                          dst_addr=prog.address(name))
            desc = Descriptor(fields, params)
            err = validate_descriptor(desc, prog.window)
            if err:
                detail = ""
                if err == ERR_CAPACITY:
                    detail = (f": its source needs {act_buffer_words_needed(desc)} activation-buffer words "
                              f"(the design has {params.act_buffer_words}), a weight tile "
                              f"{desc.in_groups * desc.kernel ** 2} weight-buffer words "
                              f"(the design has {params.weight_buffer_words})")
                raise ConfigError(f"layer {name} cannot run on this engine configuration: "
                                  f"{ERROR_NAMES[err]} error (P={params.pe_count}, S={params.simd_lanes}){detail}")
            prog.descriptors[name] = desc
            blobs.append((item.desc_offset + i * DESCRIPTOR.nbytes, np.frombuffer(desc.to_bytes(), np.uint8)))

    image = np.zeros(prog.size, dtype=np.uint8)
    for off, data in blobs:
        image[off:off + len(data)] = data
    prog.constants = image
    return prog


def cycles_table(network_cfgs=None, hw_cfg=None):
    """Markdown table of the accelerator's cycles per layer (exact cycle model,
    :mod:`models.cycles`) for networks on one hardware configuration: per layer the cycles, the
    MACs and the PE utilization (MACs / (P * S * cycles)) of each network, and each network's
    total (descriptor lists included). Cycles do not depend on the weights, so the programs are
    compiled with random ones.

    Parameters
    ----------
    network_cfgs : sequence of models.network.NetworkConfig, optional
        Default: the default (fully quantized) network and its float-ends division.
    hw_cfg : models.hwconfig.HardwareConfig, optional
        Default: the default hardware configuration.
    """
    from models.cycles import list_cycles
    from models.generate import random_weights
    from models.golden import QuantizedModel
    from models.hwconfig import load_hw_config
    from models.network import float_ends_config_path, load_network_config

    hw_cfg = hw_cfg or load_hw_config()
    if network_cfgs is None:
        network_cfgs = [load_network_config(), load_network_config(float_ends_config_path())]
    params = hw_cfg.engine_params
    lanes = params.pe_count * params.simd_lanes
    columns, totals, order = [], [], []
    for cfg in network_cfgs:
        model = QuantizedModel(cfg, random_weights(cfg, seed=0))
        prog = compile_program(model, params)
        layers = {layer.name: layer for layer in model.layers}
        per_layer, total = {}, 0
        for seg in prog.schedule:
            if isinstance(seg, HostLayer):
                continue
            list_total, each = list_cycles([prog.descriptors[name] for name in seg.layers], params)
            total += list_total
            for name, cycles in zip(seg.layers, each):
                per_layer[name] = (cycles, layers[name].macs)
                if name not in order:
                    order.append(name)
        columns.append(per_layer)
        macs = sum(m for _, m in per_layer.values())
        totals.append((total, macs))
    head = "| layer | " + " | ".join(f"{c.ends} ends: cycles / MACs / utilization" for c in network_cfgs) + " |"
    lines = [head, "|---|" + "---|" * len(network_cfgs)]

    def cell(entry):
        if entry is None:
            return "host"
        cycles, macs = entry
        return f"{cycles:,} / {macs:,} / {macs / (lanes * cycles):.1%}"

    for name in order:
        lines.append(f"| {name} | " + " | ".join(cell(col.get(name)) for col in columns) + " |")
    lines.append("| **total** (with the descriptor lists) | " + " | ".join(
        f"**{cell(t)}** ({t[0] / (hw_cfg.clock_mhz * 1e3):.3f} ms at {hw_cfg.clock_mhz} MHz)" for t in totals) + " |")
    lines.append("")
    lines.append(f"Hardware configuration `{hw_cfg.name}`: P = {params.pe_count}, S = {params.simd_lanes} "
                 f"({lanes} MACs a cycle), popcount_stages = {params.popcount_stages}; memory read latency "
                 f"of the cycle model. `host`: the layer runs on the ARM in that division.")
    return "\n".join(lines)
