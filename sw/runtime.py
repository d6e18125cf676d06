"""The host runtime: one LMFlowNet frame pair in, one flow field out, over any transport.

Once per model (:class:`FlowRuntime` construction): check the device, compile the model for the
engine configuration (:func:`sw.program.compile_program`: memory map, tiled weights, threshold
tables, descriptor lists), claim the program's region of the device arena and write its
constants there.

Per frame (:meth:`FlowRuntime.run`), following the program's schedule:

* with quantized ends the frame pair goes down as it is (:meth:`Program.pack_tensor` of the
  network input: the frame-pair image, a copy), the schedule is one descriptor list (every
  layer), and only predict_flow2's raw accumulators come back;
* a host layer (float ends) runs with :meth:`models.golden.QuantizedModel.run_layer`, the
  golden model's own numpy arithmetic (dequantization of raw accumulators, float conv, batch norm, 2-bit
  quantization), so the host path is bit-identical to ``models/``; a code tensor that the
  accelerator reads is packed (:meth:`Program.pack_tensor`) and written to device memory;
* an accelerator segment is one descriptor list: start, poll, counters
  (:meth:`sw.driver.Accelerator.run_segment`); the tensors later host layers need are read
  back and unpacked (:meth:`Program.tensor_bytes`, :meth:`Program.unpack_tensor`);
* the flow is assembled from ``predict_flow2``: its float value
  (:meth:`models.golden.QuantizedModel.flow_value`: the host layer's output with float ends, the
  dequantization of its multi-plane raw accumulators with quantized ends), then
  :meth:`models.golden.QuantizedModel.final_flow` (x ``flow_scale``, upsampled to the input
  resolution).
"""

from dataclasses import dataclass, field
import time

import numpy as np

from models.golden import network_input
from models.network import INPUT

from .config import default_engine_params
from .driver import DEFAULT_TIMEOUT_S, Accelerator
from .program import HostLayer, Segment, compile_program

__all__ = ["FlowRuntime", "FlowResult", "HostTimings"]

_TIMING_KEYS = ("float_s", "pack_s", "transfer_s", "accelerator_s")


@dataclass
class HostTimings:
    """Wall time of the host's work, in seconds, split by kind.

    Members
    -------
    float_s : float
        Float host layers (input scaling, conv1, upsample_flow*, predict_flow2, their
        quantization and dequantization) and the flow assembly (with quantized ends only the
        dequantization of predict_flow2 and the final upsampling).
    pack_s : float
        Packing host-produced code tensors into the activation layout (the frame-pair image with
        quantized ends) and unpacking tensors read back.
    transfer_s : float
        Device-memory writes and reads of those tensors.
    accelerator_s : float
        Descriptor lists: register writes, start, polling until done, counters.
    layers_s : dict of str -> float
        Float time by host layer.
    cycles : dict of str -> int
        Accelerator cycles by layer (from ``LAYER_CYCLES``; 0 where the backend has no cycle model).
    frames : int
    """

    float_s: float = 0.0
    pack_s: float = 0.0
    transfer_s: float = 0.0
    accelerator_s: float = 0.0
    layers_s: dict = field(default_factory=dict)
    cycles: dict = field(default_factory=dict)
    frames: int = 0

    @property
    def total_s(self):
        return self.float_s + self.pack_s + self.transfer_s + self.accelerator_s

    def add(self, other):
        """Accumulate another frame's timings into this one."""
        for k in _TIMING_KEYS:
            setattr(self, k, getattr(self, k) + getattr(other, k))
        for k, v in other.layers_s.items():
            self.layers_s[k] = self.layers_s.get(k, 0.0) + v
        for k, v in other.cycles.items():
            self.cycles[k] = self.cycles.get(k, 0) + v
        self.frames += other.frames

    def as_dict(self):
        d = {k: getattr(self, k) for k in _TIMING_KEYS}
        d.update(total_s=self.total_s, layers_s=dict(self.layers_s), cycles=dict(self.cycles), frames=self.frames)
        return d


@dataclass
class FlowResult:
    """Result of :meth:`FlowRuntime.run`.

    Members
    -------
    flow : numpy.ndarray of float32, (N, H, W, 2)
        Flow at the network's input resolution, in pixels.
    timings : HostTimings
        Summed over the N frames.
    tensors : dict
        With ``keep_tensors``: every layer's output ``(N, H, W, C)`` as the host saw it (host
        layers) or read it back from device memory (accelerator layers), and ``"input"``.
    """

    flow: np.ndarray
    timings: HostTimings
    tensors: dict = field(default_factory=dict)


class FlowRuntime:
    """A quantized LMFlowNet loaded on an accelerator.

    Parameters
    ----------
    model : models.golden.QuantizedModel
    transport : sw.transport.Transport
        The device; the runtime owns it from now on (:meth:`close` closes it).
    params : models.engine.EngineParams, optional
        The accelerator configuration; default :func:`sw.config.default_engine_params`.
    timeout_s : float, keyword-only
        Longest run of one descriptor list (see :class:`sw.driver.Accelerator`).
    ledger : sw.ledger.WorkLedger, optional, keyword-only
        Count every frame's host work into this ledger (the board frame model prices it).

    Members
    -------
    model, params, driver, program
    load_s : float
        Wall time of the once-per-model work (check, compile, load).

    Raises
    ------
    AcceleratorError
        If the device is not the expected accelerator.
    models.errors.ConfigError
        If the network cannot run on this engine configuration.
    TransportError
        If the program does not fit the device arena.
    """

    def __init__(self, model, transport, params=None, *, timeout_s=DEFAULT_TIMEOUT_S, ledger=None):
        t0 = time.perf_counter()
        self.model = model
        self.params = default_engine_params() if params is None else params
        self.ledger = ledger
        if ledger is not None:
            transport = ledger.watch(transport)
        self.driver = Accelerator(transport, self.params, timeout_s=timeout_s)
        base = self.driver.free_base(max(64, self.params.bus_bytes))
        self.program = compile_program(model, self.params, base=base)
        self.driver.load(self.program)
        prog = self.program
        # Tensors crossing between host and accelerator, decided once.
        host_layers = [item.name for item in prog.schedule if isinstance(item, HostLayer)]
        self._to_device = {name for name in host_layers if name in prog.placements}
        needed = {i for name in host_layers for i in model.plans[name].layer.inputs}
        needed.add("predict_flow2")                 # the flow (read back when the accelerator computes it)
        self._from_device = {name for item in prog.schedule if isinstance(item, Segment)
                             for name in item.layers if name in needed}
        self.load_s = time.perf_counter() - t0

    @property
    def transport(self):
        return self.driver.transport

    def run(self, frames, *, keep_tensors=False):
        """Flow of one or more frame pairs.

        Parameters
        ----------
        frames : numpy.ndarray of uint8, (N, H, W, 6) or (H, W, 6)
            At the network's input resolution.
        keep_tensors : bool
            Also return every intermediate tensor (reads every accelerator output back).

        Returns
        -------
        FlowResult

        Raises
        ------
        ValueError
            If the frames are not uint8 at the network's input shape.
        AcceleratorError, TransportError
            From the device.
        """
        cfg = self.model.cfg
        frames = np.asarray(frames)
        if frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8, not {frames.dtype}")
        if frames.ndim == 3:
            frames = frames[None]
        shape = (cfg.height, cfg.width, cfg.in_channels)
        if frames.ndim != 4 or frames.shape[1:] != shape:
            raise ValueError(f"frames must be (N, {', '.join(map(str, shape))}) or ({', '.join(map(str, shape))}), "
                             f"not {frames.shape}")
        timings = HostTimings()
        flows, kept = [], []
        for frame in frames:
            flow, t, tensors = self._run_frame(frame[None], keep_tensors)
            flows.append(flow)
            kept.append(tensors)
            timings.add(t)
        tensors = {k: np.concatenate([t[k] for t in kept]) for k in kept[0]} if keep_tensors else {}
        return FlowResult(flow=np.concatenate(flows), timings=timings, tensors=tensors)

    def _run_frame(self, frame, keep_tensors):
        model, prog, drv = self.model, self.program, self.driver
        t = HostTimings(frames=1)
        clock = time.perf_counter
        led = self.ledger
        if led is not None:
            led.begin_frame(prog, frame)
        if prog.frames_input:           # quantized ends: the frame-pair image is the input tensor
            tensors = {INPUT: network_input(model.cfg, frame)} if keep_tensors else {}
            t0 = clock()
            addr, data = prog.pack_tensor(INPUT, frame[0])
            t1 = clock()
            drv.mem_write(addr, data)
            t.pack_s += t1 - t0
            t.transfer_s += clock() - t1
            if led is not None:
                led.packed_frames(frame[0])
        else:
            t0 = clock()
            tensors = {INPUT: network_input(model.cfg, frame)}
            t.float_s += clock() - t0
        for item in prog.schedule:
            if isinstance(item, HostLayer):
                name = item.name
                t0 = clock()
                tensors[name] = model.run_layer(name, tensors)
                dt = clock() - t0
                t.float_s += dt
                t.layers_s[name] = dt
                if led is not None:
                    led.host_layer(model, name, tensors)
                if name in self._to_device:
                    t0 = clock()
                    addr, data = prog.pack_tensor(name, tensors[name][0])
                    t1 = clock()
                    drv.mem_write(addr, data)
                    t.pack_s += t1 - t0
                    t.transfer_s += clock() - t1
                    if led is not None:
                        led.packed(name, tensors[name][0], prog.params.simd_lanes)
                continue
            if led is not None:
                led.segment(item.layers)
            t0 = clock()
            run = drv.run_segment(item)
            t.accelerator_s += clock() - t0
            t.cycles.update(run.layer_cycles)
            for name in item.layers:
                if name in self._from_device or keep_tensors:
                    t0 = clock()
                    data = drv.mem_read(*prog.tensor_bytes(name))
                    t1 = clock()
                    tensors[name] = prog.unpack_tensor(name, data)[None]
                    t.transfer_s += t1 - t0
                    t.pack_s += clock() - t1
                    if led is not None:
                        led.unpacked(name, prog.placements[name].kind, tensors[name].shape[1:], prog.params)
        t0 = clock()
        flow = model.final_flow(model.flow_value("predict_flow2", tensors["predict_flow2"]))
        t.float_s += clock() - t0
        if led is not None:
            led.end_frame(model, tensors["predict_flow2"])
        return flow, t, (tensors if keep_tensors else {})

    def close(self):
        """Close the transport."""
        self.driver.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
