"""The golden LMFlowNet: float forward pass and bit-exact quantized forward pass.

The quantized pass computes every accelerator layer exactly as the hardware does (integer W1A2
convolution, integer thresholds or raw accumulators) and every host layer in float. It is
expressed as a list of steps: :class:`HostStep` for the host and :class:`AccelJob` for the
accelerator, each job carrying its integer inputs, weights, thresholds and expected integer
output, for the testbenches and the host layer to consume.

Which layers are host steps depends on the configuration's division (``ends``):

* quantized ends: none. The input is the frame pair's thermometer codes
  (:func:`models.formats.frame_pair_codes`), every layer is an accelerator job, and the host's
  only arithmetic is the dequantization of predict_flow2's multi-plane raw accumulators
  (:func:`dequantize_planes`) and the final upsampling (:meth:`QuantizedModel.final_flow`);
* float ends: conv1, upsample_flow* and predict_flow2 are host steps in float, as Blueoil
  divided the network.
"""

from dataclasses import dataclass, field

import math

import numpy as np

from .conv import conv_float, conv_w1a2_direct
from .formats import frame_pair_codes
from .network import (INPUT, OP_IDENTITY, OP_SPACE_TO_DEPTH, OP_UPSAMPLE, OUT_CODES, OUT_FLOAT,
                      OUT_RAW, build_layers)
from .ops import concat_channels, space_to_depth, upsample_nearest
from .quant import (ACT_MAX, ACT_STEP, binarize_weights, dequantize_activations, dequantize_weights,
                    quantize_activations)
from .thresholds import (apply_thresholds, batch_norm, flow_level_values, flow_levels, flow_quantizer_input,
                         fold_flow_thresholds, fold_thresholds)
from .weights import validate_weights

__all__ = ["LayerPlan", "AccelJob", "HostStep", "QuantizedResult", "QuantizedModel", "FloatModel",
           "apply_input_op", "dequantize_raw", "dequantize_planes", "binarize_weight_planes", "plane_weights",
           "frames_to_float", "network_input", "upsample_flow_bilinear"]


def _check_frames(frames):
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, not {frames.dtype}")
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4:
        raise ValueError(f"frames must be (N, H, W, C) or (H, W, C), not shape {frames.shape}")
    return frames


def frames_to_float(frames):
    """uint8 frames (N, H, W, 6) or (H, W, 6) -> float64 in [0, 1], always 4-d."""
    return _check_frames(frames).astype(np.float64) / 255.0


def network_input(cfg, frames):
    """The network input of a configuration for uint8 frames (N, H, W, 6) or (H, W, 6), 4-d:
    the frame pair's thermometer codes ``(N, H, W, 32)`` (uint8, as the accelerator's loader
    sees them) with quantized ends, the frames in [0, 1] (float64) with float ends."""
    if cfg.quantized_ends:
        return frame_pair_codes(_check_frames(frames))
    return frames_to_float(frames)


def binarize_weight_planes(weights, planes):
    """Binary multi-plane weights by greedy residual binarization, per output channel.

    ``W ~ sum_p beta_p * B_p``: ``R_0 = W``; ``B_p = sign(R_p)`` (a value of exactly 0 gives +1,
    as :func:`models.quant.binarize_weights`), ``beta_p = mean |R_p|`` over (kh, kw, in),
    ``R_{p+1} = R_p - beta_p * B_p``.

    Parameters
    ----------
    weights : array_like of float, (kh, kw, c_in, c_out)
    planes : int
        ``M >= 1`` (``M = 1`` is the ordinary channel-wise binarization).

    Returns
    -------
    signs : numpy.ndarray of int8, (kh, kw, c_in, c_out * M)
        Channel ``o * M + p`` is plane ``p`` of output channel ``o`` (channel-major).
    beta : numpy.ndarray of float64, (c_out * M,)
        The plane scales, same channel order.
    """
    if isinstance(planes, bool) or not isinstance(planes, (int, np.integer)) or planes < 1:
        raise ValueError(f"planes must be a positive integer, not {planes!r}")
    residual = np.asarray(weights, dtype=np.float64)
    signs, betas = [], []
    for _ in range(int(planes)):
        s, b = binarize_weights(residual)
        signs.append(s)
        betas.append(b)
        residual = residual - s * b
    k1, k2, c_in, c_out = residual.shape
    return (np.stack(signs, axis=-1).reshape(k1, k2, c_in, c_out * planes),
            np.stack(betas, axis=-1).reshape(c_out * planes))


def plane_weights(signs, beta, planes):
    """The float weights multi-plane binary weights stand for: ``sum_p beta_p * B_p``,
    ``(kh, kw, c_in, c_out * M) -> (kh, kw, c_in, c_out)`` (float64)."""
    w = np.asarray(signs, dtype=np.float64) * np.asarray(beta, dtype=np.float64)
    return w.reshape(*w.shape[:-1], w.shape[-1] // planes, planes).sum(axis=-1)


def dequantize_planes(acc, beta, bias, planes):
    """Host dequantization of a multi-plane layer's raw accumulators:
    ``y_c = sum_p beta_{c,p} * 2/3 * acc_{c,p} + bias_c`` (float64), channel ``c * M + p`` of
    ``acc`` being plane ``p`` of output ``c``; ``(..., C * M) -> (..., C)``."""
    acc = np.asarray(acc, dtype=np.float64)
    terms = acc * (np.asarray(beta, dtype=np.float64) * ACT_STEP)
    y = terms.reshape(*acc.shape[:-1], acc.shape[-1] // planes, planes).sum(axis=-1)
    return y + np.asarray(bias, dtype=np.float64)


def apply_input_op(op, x):
    """Apply a layer's input operation (identity, space_to_depth(2), nearest x2) to a tensor."""
    if op == OP_IDENTITY:
        return x
    if op == OP_SPACE_TO_DEPTH:
        return space_to_depth(x, 2)
    if op == OP_UPSAMPLE:
        return upsample_nearest(x, 2)
    raise ValueError(f"unknown input operation {op!r}")


def dequantize_raw(acc, alpha, bias=None):
    """Host dequantization of raw accumulators: ``acc * alpha * 2/3 + bias``."""
    y = np.asarray(acc, dtype=np.float64) * (np.asarray(alpha, dtype=np.float64) * ACT_STEP)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)
    return y


@dataclass
class LayerPlan:
    """Everything the quantized pass needs for one layer, computed once per model.

    Members
    -------
    layer : Layer
    signs : numpy.ndarray of int8 or None
        Binary weights (``kh, kw, c_in, c_out``) of a binary layer, ``c_out`` being the
        accelerator's channels: a flow-code layer's 2 components repeated ``K`` times
        (channel-major), a multi-plane layer's ``2 * M`` planes.
    alpha : numpy.ndarray of float64 or None
        Channel scales of a binary layer, in the same channel order (the plane scales
        ``beta_{c,p}`` of a multi-plane layer).
    weight : numpy.ndarray
        Float weights of the layer's parameters (``layer.param_out`` channels) as the quantized
        model sees them: float weights of a float layer, dequantized binary weights
        (``sum_p beta_p B_p`` for a multi-plane layer) of a binary one.
    bias : numpy.ndarray or None
    bn : dict or None
        ``gamma, beta, mean, var`` (layers with batch norm).
    thresholds : ThresholdTable or None
        Folded thresholds of an accelerator layer with codes output (batch norm and activation,
        or the flow quantizer).
    """

    layer: object
    signs: np.ndarray = None
    alpha: np.ndarray = None
    weight: np.ndarray = None
    bias: np.ndarray = None
    bn: dict = None
    thresholds: object = None
    eps: float = 0.001

    @classmethod
    def prepare(cls, layer, params, eps):
        plan = cls(layer=layer, eps=eps)
        if "bias" in params:
            plan.bias = params["bias"].astype(np.float64)
        if layer.bn:
            plan.bn = {p: params[p].astype(np.float64) for p in ("gamma", "beta", "mean", "var")}
        if layer.planes:
            plan.signs, plan.alpha = binarize_weight_planes(params["weight"], layer.planes)
            plan.weight = plane_weights(plan.signs, plan.alpha, layer.planes)
        elif layer.binary:
            signs, alpha = binarize_weights(params["weight"])
            plan.weight = dequantize_weights(signs, alpha, np.float64)
            if layer.flow_codes:
                plan.thresholds = fold_flow_thresholds(alpha=alpha, bias=plan.bias, flow_range=layer.flow_range,
                                                       flow_codes=layer.flow_codes, acc_bound=layer.acc_bound)
                signs, alpha = np.repeat(signs, layer.flow_codes, axis=-1), np.repeat(alpha, layer.flow_codes)
            plan.signs, plan.alpha = signs, alpha
        else:
            plan.weight = params["weight"].astype(np.float64)
        if layer.accel and layer.bn:
            plan.thresholds = fold_thresholds(alpha=plan.alpha, bias=plan.bias, eps=eps,
                                              acc_bound=layer.acc_bound, **plan.bn)
        return plan

    def pre_activation(self, x):
        """Float pre-BN output of this layer for a float input (host path and calibration)."""
        return conv_float(x, self.weight, self.bias)


@dataclass
class AccelJob:
    """One accelerator layer of one quantized pass.

    Members
    -------
    layer : Layer
    sources : list of numpy.ndarray
        The code tensors named by ``layer.inputs`` (N, H, W, C), before the input operation.
    input : numpy.ndarray of uint8
        The conv input after concat and the input operation (N, H, W, c_in).
    signs : numpy.ndarray of int8
    alpha : numpy.ndarray
    thresholds : ThresholdTable or None
        ``None`` for a raw-accumulator layer.
    bias : numpy.ndarray or None
    acc : numpy.ndarray of int32
        The integer accumulators (N, H, W, c_out).
    expected : numpy.ndarray
        The job's output: codes (uint8) for a thresholded layer, ``acc`` for a raw one.
    """

    layer: object
    sources: list
    input: np.ndarray
    signs: np.ndarray
    alpha: np.ndarray
    thresholds: object
    bias: np.ndarray
    acc: np.ndarray
    expected: np.ndarray


@dataclass
class HostStep:
    """One host layer of one quantized pass: its float input and its output."""

    layer: object
    input: np.ndarray
    output: np.ndarray


@dataclass
class QuantizedResult:
    """Result of :meth:`QuantizedModel.run`.

    Members
    -------
    flow : numpy.ndarray of float32, (N, H, W, 2)
        Flow at the input resolution, in pixels.
    tensors : dict
        Every layer's output by name (codes, raw accumulators or float), when requested.
    steps : list
        :class:`HostStep` and :class:`AccelJob` in execution order, when requested.
    """

    flow: np.ndarray
    tensors: dict = field(default_factory=dict)
    steps: list = field(default_factory=list)

    @property
    def jobs(self):
        return [s for s in self.steps if isinstance(s, AccelJob)]


def upsample_flow_bilinear(flow, factor=4):
    """Bilinear upsampling of a flow (..., H, W, 2) by an integer ``factor``, vectors unchanged
    (the final flow's units are already input-resolution pixels).

    Pixel centres are aligned (``align_corners=False``, PyTorch's ``F.interpolate(...,
    mode="bilinear")``): output pixel ``y`` samples the input at ``(y + 0.5) / factor - 0.5``,
    clamped to the edge pixels; likewise in ``x``. Separable (W, then H), float32 throughout.

    Output pixel ``factor * i + k`` of an axis is ``a + (b - a) * w_k``, with ``a, b`` the
    input pixels around its sample point and ``w_k`` the same for every ``i`` (for ``factor =
    4``: 5/8, 7/8, 1/8, 3/8, exact binary fractions). The input is padded with its edge pixels,
    so a clamped sample has ``b - a = 0``, and each phase ``k`` is two passes (``*``, ``+``) over
    slices of the padded input and its differences, written in place into the output: no gather
    and no per-pixel weight (the host's cost of this step: ``sw.ledger.bilinear_work``).
    """
    flow = np.asarray(flow, np.float32)
    if flow.ndim < 3:
        raise ValueError(f"flow must be (..., H, W, C), not shape {flow.shape}")
    if not (isinstance(factor, (int, np.integer)) and factor >= 1):
        raise ValueError(f"factor must be a positive integer, not {factor!r}")
    factor = int(factor)
    phases = []
    for k in range(factor):
        t = (k + 0.5) / factor - 0.5
        lo = math.floor(t)                       # -1 or 0: the phase's left neighbour
        phases.append((lo + 1, np.float32(t - lo)))
    # Both passes work on planar views (..., C, H, W), so that every inner loop runs along a row
    # of pixels; the H pass writes the interleaved output (..., H * factor, W * factor, C) in place.
    height, channels = flow.shape[-3], flow.shape[-1]
    wide = _upsample_axis(np.moveaxis(flow, -1, -3), -1, phases)
    out = np.empty(flow.shape[:-3] + (height, factor, wide.shape[-1], channels), np.float32)
    _upsample_axis(wide, -2, phases, out=np.moveaxis(out, -1, -4))
    return out.reshape(flow.shape[:-3] + (height * factor, wide.shape[-1], channels))


def _upsample_axis(x, axis, phases, out=None):
    """One axis of :func:`upsample_flow_bilinear` on ``x``: ``phases`` are (offset into
    the padded axis, float32 weight) per output phase; the result has the phases as a new axis
    after ``axis`` (written into ``out`` when given, else returned with the two axes merged)."""
    n = x.shape[axis]
    ax = x.ndim + axis
    lead = (slice(None),) * ax
    padded = np.empty(x.shape[:ax] + (n + 2,) + x.shape[ax + 1:], np.float32)    # C order
    padded[lead + (slice(1, n + 1),)] = x
    padded[lead + (slice(0, 1),)] = x[lead + (slice(0, 1),)]
    padded[lead + (slice(n + 1, n + 2),)] = x[lead + (slice(n - 1, n),)]
    diff = padded[lead + (slice(1, None),)] - padded[lead + (slice(None, -1),)]
    merged = out is None
    if merged:
        out = np.empty(x.shape[:ax + 1] + (len(phases),) + x.shape[ax + 1:], np.float32)
    for k, (offset, weight) in enumerate(phases):
        dst = out[lead + (slice(None), k)]
        np.multiply(diff[lead + (slice(offset, offset + n),)], weight, out=dst)
        np.add(dst, padded[lead + (slice(offset, offset + n),)], out=dst)
    if merged:
        return out.reshape(x.shape[:ax] + (n * len(phases),) + x.shape[ax + 1:])
    return out


class QuantizedModel:
    """The quantized LMFlowNet as the DE10-Nano computes it.

    Parameters
    ----------
    cfg : NetworkConfig
    weights : dict
        ``{layer: {param: float32 array}}`` (see :mod:`models.weights`), validated here.

    Raises
    ------
    WeightsError
        If the weights do not match the network.
    """

    def __init__(self, cfg, weights):
        validate_weights(weights, cfg)
        self.cfg = cfg
        self.layers = build_layers(cfg)
        self.plans = {layer.name: LayerPlan.prepare(layer, weights[layer.name], cfg.bn_eps)
                      for layer in self.layers}

    def dequantize(self, name, tensor):
        """Float value of a layer's output as the host sees it: the activation value
        ``code * 2/3`` of codes (flow codes too: what the next binary conv sees), the
        dequantized raw accumulators (a multi-plane layer's flow), float as it is."""
        layer = self.plans[name].layer if name != INPUT else None
        if layer is None:
            return (dequantize_activations(tensor, np.float64) if self.cfg.quantized_ends
                    else np.asarray(tensor, dtype=np.float64))
        if layer.output == OUT_FLOAT:
            return np.asarray(tensor, dtype=np.float64)
        if layer.output == OUT_CODES:
            return dequantize_activations(tensor, np.float64)
        plan = self.plans[name]
        if layer.planes:
            return dequantize_planes(tensor, plan.alpha, plan.bias, layer.planes)
        return dequantize_raw(tensor, plan.alpha, plan.bias)

    def flow_value(self, name, tensor):
        """The predicted flow (in predict-flow units, flow / flow_scale) of a predict_flow
        layer's output: the float output, the dequantized raw accumulators (multi-plane or
        not), or the level values of flow codes (``-R + level * 2R/(3K)``); ``(..., 2)``."""
        layer = self.plans[name].layer
        if layer.output == OUT_CODES:
            if not layer.flow_codes:
                raise ValueError(f"layer {name} does not predict a flow")
            return flow_level_values(layer.flow_range, layer.flow_codes)[flow_levels(tensor, layer.flow_codes)]
        return self.dequantize(name, tensor)

    def run_layer(self, name, tensors, keep_steps=None):
        """Compute one layer from the tensors computed so far; returns its output."""
        plan = self.plans[name]
        layer = plan.layer
        sources = [tensors[i] for i in layer.inputs]
        if layer.accel:
            x = apply_input_op(layer.input_op, concat_channels(sources))
            acc = conv_w1a2_direct(x, plan.signs)
            out = apply_thresholds(acc, plan.thresholds) if layer.output == OUT_CODES else acc
            if keep_steps is not None:
                keep_steps.append(AccelJob(layer, sources, x, plan.signs, plan.alpha, plan.thresholds,
                                           plan.bias, acc, out))
            return out
        x = concat_channels([self.dequantize(i, t) for i, t in zip(layer.inputs, sources)])
        x = apply_input_op(layer.input_op, x)
        z = plan.pre_activation(x)
        if layer.output == OUT_CODES:
            out = quantize_activations(batch_norm(z, eps=plan.eps, **plan.bn))
        elif layer.output == OUT_FLOAT:
            out = z.astype(np.float32)
        else:
            raise AssertionError(f"host layer {name} with raw output")
        if keep_steps is not None:
            keep_steps.append(HostStep(layer, x, out))
        return out

    def run(self, frames, *, keep_tensors=False, keep_steps=False):
        """Quantized forward pass.

        Parameters
        ----------
        frames : numpy.ndarray of uint8, (N, H, W, 6) or (H, W, 6)
        keep_tensors, keep_steps : bool
            Also return every intermediate tensor / the host steps and accelerator jobs. The
            input tensor (``"input"``) is the frames' thermometer codes with quantized ends, the
            frames in [0, 1] with float ends.

        Returns
        -------
        QuantizedResult
        """
        frames = _check_frames(frames)
        if frames.shape[1:] != (self.cfg.height, self.cfg.width, self.cfg.in_channels):
            raise ValueError(f"frames must be {self.cfg.height}x{self.cfg.width}x{self.cfg.in_channels}, "
                             f"not {'x'.join(map(str, frames.shape[1:]))}")
        tensors = {INPUT: network_input(self.cfg, frames)}
        steps = [] if keep_steps else None
        for layer in self.layers:
            tensors[layer.name] = self.run_layer(layer.name, tensors, steps)
        flow = self.final_flow(self.flow_value("predict_flow2", tensors["predict_flow2"]))
        if not keep_tensors:
            tensors = {}
        return QuantizedResult(flow=flow, tensors=tensors, steps=steps or [])

    def final_flow(self, predict_flow2):
        """predict_flow2 (float) -> flow in pixels at the input resolution: x flow_scale, then
        bilinear x4 upsampling (:func:`upsample_flow_bilinear`), float32."""
        return upsample_flow_bilinear(np.asarray(predict_flow2, np.float32) * np.float32(self.cfg.flow_scale), 4)


class FloatModel:
    """The float LMFlowNet (no weight or activation quantization, leaky ReLU activations) on the
    same weights: every layer's float (latent) weights, batch norm, leaky ReLU.

    With float ends the input is the frames in [0, 1] and the flow predictions are plain convs.
    With quantized ends the network is defined on the accelerator's input format, so the float
    model's input is the value of the frame pair's thermometer codes (``code * 2/3``, 32
    channels a pixel, what conv1's weights are for); a flow-code layer (``predict_flow{l}``,
    ``l > 2``) outputs the unrounded flow quantizer, ``clip((f + R) * K / R - 2i, 0, 2)`` for
    code channel ``i`` (:func:`models.thresholds.flow_quantizer_input`), and predict_flow2 uses
    its float weights (no planes).
    """

    def __init__(self, cfg, weights):
        validate_weights(weights, cfg)
        self.cfg = cfg
        self.layers = build_layers(cfg)
        self.weights = {name: {p: a.astype(np.float64) for p, a in params.items()}
                        for name, params in weights.items()}

    def run(self, frames, *, keep_tensors=False):
        """Float forward pass; returns ``(flow, tensors)`` (tensors empty unless requested).
        A flow-code layer's tensor is its unrounded codes (``2K`` channels); its flow ``f`` is
        under ``"<name>:flow"``."""
        x = network_input(self.cfg, frames)
        if self.cfg.quantized_ends:
            x = dequantize_activations(x, np.float64)
        tensors = {INPUT: x}
        for layer in self.layers:
            p = self.weights[layer.name]
            xin = apply_input_op(layer.input_op, concat_channels([tensors[i] for i in layer.inputs]))
            z = conv_float(xin, p["weight"], p.get("bias"))
            if layer.bn:
                y = batch_norm(z, gamma=p["gamma"], beta=p["beta"], mean=p["mean"], var=p["var"],
                               eps=self.cfg.bn_eps)
                z = np.where(y >= 0, y, self.cfg.leaky_relu * y)
            elif layer.flow_codes:
                tensors[f"{layer.name}:flow"] = z
                z = np.clip(flow_quantizer_input(z, layer.flow_range, layer.flow_codes), 0.0, ACT_MAX)
            tensors[layer.name] = z
        flow = upsample_flow_bilinear(tensors["predict_flow2"].astype(np.float32) * np.float32(self.cfg.flow_scale), 4)
        return flow, (tensors if keep_tensors else {})
