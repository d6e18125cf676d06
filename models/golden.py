"""The golden LMFlowNet: float forward pass and bit-exact quantized forward pass.

The quantized pass computes every accelerator layer exactly as the hardware does (integer W1A2
convolution, integer thresholds or raw accumulators) and every host layer in float (conv1,
upsample_flow*, predict_flow2). It is expressed as a list of steps: :class:`HostStep` for the
host and :class:`AccelJob` for the accelerator, each job carrying its integer inputs, weights,
thresholds and expected integer output, for the testbenches and the host layer to consume.
"""

from dataclasses import dataclass, field

import numpy as np

from .conv import conv_float, conv_w1a2_direct
from .network import INPUT, OP_IDENTITY, OP_SPACE_TO_DEPTH, OP_UPSAMPLE, OUT_CODES, OUT_FLOAT, build_layers
from .ops import concat_channels, space_to_depth, upsample_nearest
from .quant import ACT_STEP, binarize_weights, dequantize_activations, dequantize_weights, quantize_activations
from .thresholds import apply_thresholds, batch_norm, fold_thresholds
from .weights import validate_weights

__all__ = ["LayerPlan", "AccelJob", "HostStep", "QuantizedResult", "QuantizedModel", "FloatModel",
           "apply_input_op", "dequantize_raw", "frames_to_float"]


def frames_to_float(frames):
    """uint8 frames (N, H, W, 6) or (H, W, 6) -> float64 in [0, 1], always 4-d."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, not {frames.dtype}")
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4:
        raise ValueError(f"frames must be (N, H, W, C) or (H, W, C), not shape {frames.shape}")
    return frames.astype(np.float64) / 255.0


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
        Binary weights (``kh, kw, c_in, c_out``) of a binary layer.
    alpha : numpy.ndarray of float64 or None
        Channel scales of a binary layer.
    weight : numpy.ndarray
        Float weights used by a host layer (dequantized binary weights for a binary host layer).
    bias : numpy.ndarray or None
    bn : dict or None
        ``gamma, beta, mean, var`` (host layers with batch norm).
    thresholds : ThresholdTable or None
        Folded thresholds of an accelerator layer with batch norm.
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
        if layer.binary:
            plan.signs, plan.alpha = binarize_weights(params["weight"])
            plan.weight = dequantize_weights(plan.signs, plan.alpha, np.float64)
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
        """Float value of a layer's output as the host sees it."""
        layer = self.plans[name].layer if name != INPUT else None
        if layer is None or layer.output == OUT_FLOAT:
            return np.asarray(tensor, dtype=np.float64)
        if layer.output == OUT_CODES:
            return dequantize_activations(tensor, np.float64)
        plan = self.plans[name]
        return dequantize_raw(tensor, plan.alpha, plan.bias)

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
            Also return every intermediate tensor / the host steps and accelerator jobs.

        Returns
        -------
        QuantizedResult
        """
        x = frames_to_float(frames)
        if x.shape[1:] != (self.cfg.height, self.cfg.width, self.cfg.in_channels):
            raise ValueError(f"frames must be {self.cfg.height}x{self.cfg.width}x{self.cfg.in_channels}, "
                             f"not {'x'.join(map(str, x.shape[1:]))}")
        tensors = {INPUT: x}
        steps = [] if keep_steps else None
        for layer in self.layers:
            tensors[layer.name] = self.run_layer(layer.name, tensors, steps)
        flow = self.final_flow(tensors["predict_flow2"])
        if not keep_tensors:
            tensors = {}
        return QuantizedResult(flow=flow, tensors=tensors, steps=steps or [])

    def final_flow(self, predict_flow2):
        """predict_flow2 (float) -> flow in pixels at the input resolution (x flow_scale, x4)."""
        return upsample_nearest(np.asarray(predict_flow2, np.float32) * np.float32(self.cfg.flow_scale), 4)


class FloatModel:
    """The float LMFlowNet (no quantization, leaky ReLU activations) on the same weights."""

    def __init__(self, cfg, weights):
        validate_weights(weights, cfg)
        self.cfg = cfg
        self.layers = build_layers(cfg)
        self.weights = {name: {p: a.astype(np.float64) for p, a in params.items()}
                        for name, params in weights.items()}

    def run(self, frames, *, keep_tensors=False):
        """Float forward pass; returns ``(flow, tensors)`` (tensors empty unless requested)."""
        x = frames_to_float(frames)
        tensors = {INPUT: x}
        for layer in self.layers:
            p = self.weights[layer.name]
            xin = apply_input_op(layer.input_op, concat_channels([tensors[i] for i in layer.inputs]))
            z = conv_float(xin, p["weight"], p.get("bias"))
            if layer.bn:
                y = batch_norm(z, gamma=p["gamma"], beta=p["beta"], mean=p["mean"], var=p["var"],
                               eps=self.cfg.bn_eps)
                z = np.where(y >= 0, y, self.cfg.leaky_relu * y)
            tensors[layer.name] = z
        flow = upsample_nearest(tensors["predict_flow2"].astype(np.float32) * np.float32(self.cfg.flow_scale), 4)
        return flow, (tensors if keep_tensors else {})
