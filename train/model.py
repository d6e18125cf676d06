"""LMFlowNet in PyTorch, built from :func:`models.network.build_layers`.

Two modes of the same module (:class:`LMFlowNet`):

* ``"float"``: float weights, batch norm, ``leaky_relu(0.1)``: the :class:`models.golden.FloatModel`;
* ``"quant"``: quantization-aware: the binary layers use ``sign(W) * mean|W|`` per output channel
  (a weight of exactly 0 is +1) and every batch-normed layer ends in the 2-bit activation quantizer
  ``code = floor(clip(x, 0, 2) * 1.5 + 0.5)``, value ``code * 2/3`` (round half up), both with
  straight-through gradients. In eval mode this is the arithmetic of
  :class:`models.golden.QuantizedModel` in float (the golden model computes the accelerator layers
  with integers and exact thresholds; they agree up to float rounding at near-ties).

With quantized ends (``cfg.ends == "quantized"``) the network is the fully quantized one, in both
modes:

* the input is the frame pair's thermometer codes as values (:func:`thermometer_input`, the
  codes of :func:`models.formats.frame_pair_codes` times 2/3, 32 channels a pixel), and conv1 is
  an ordinary binary layer in ``"quant"`` mode;
* a flow-code layer (``predict_flow{l}``, ``l > 2``) computes the float flow ``f`` (the loss
  sees this value, before quantization) and outputs the flow quantizer's codes: the affine map
  :func:`flow_quantizer_input` followed by the 2-bit activation quantizer with its
  straight-through estimator (``"quant"``; the gradient passes where ``|f| <= R``) or by
  ``clip(., 0, 2)`` (``"float"``);
* ``predict_flow2`` uses multi-plane binary weights ``sum_p beta_p B_p`` (greedy residual
  binarization, :func:`binarize_weight_planes`) with an identity straight-through gradient; its
  output is the dequantized flow the host computes from the raw accumulators.

Tensors are NCHW. ``space_to_depth`` follows TensorFlow's channel order (``(dy*2 + dx)*C + c``),
convolutions are stride 1 with SAME zero padding, upsampling is nearest x2.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.formats import FRAME_CODE_CHANNELS
from models.network import (INPUT, OP_IDENTITY, OP_SPACE_TO_DEPTH, OP_UPSAMPLE, build_layers)
from models.quant import ACT_LEVELS, ACT_MAX, ACT_STEP, INPUT_BITS, INPUT_CODES

__all__ = ["LMFlowNet", "space_to_depth", "upsample_nearest", "upsample_flow", "quantize_activation_ste",
           "binarize_weight_ste", "binarize_weight_planes", "weight_planes", "binarize_planes_ste",
           "thermometer_input", "flow_quantizer_input", "MODES"]

MODES = ("float", "quant")


def space_to_depth(x, block=2):
    """TensorFlow ``space_to_depth`` on NCHW: ``out[n, (dy*b + dx)*C + c, y, x] = in[n, c, y*b+dy, x*b+dx]``."""
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // block, block, w // block, block)
    y = y.permute(0, 3, 5, 1, 2, 4)          # n, dy, dx, c, h/b, w/b
    return y.reshape(n, block * block * c, h // block, w // block)


def upsample_nearest(x, factor=2):
    """Nearest-neighbour upsampling by pixel duplication (NCHW)."""
    return x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


def upsample_flow(flow, factor=4):
    """Bilinear upsampling of the final flow (NCHW), pixel centres aligned: the same as
    :func:`models.golden.upsample_flow_bilinear`."""
    return F.interpolate(flow, scale_factor=factor, mode="bilinear", align_corners=False)


def _quantize_activation(x):
    """Forward of the 2-bit quantizer: ``floor(clip(x, 0, 2) * 1.5 + 0.5) * 2/3`` (round half up)."""
    code = torch.floor(torch.clamp(x, 0.0, ACT_MAX) * (ACT_LEVELS / ACT_MAX) + 0.5)
    return code * ACT_STEP


def quantize_activation_ste(x):
    """2-bit activation quantizer with the straight-through estimator of Blueoil's
    ``linear_mid_tread_half``: the gradient is 1 where ``0 <= x <= 2`` and 0 elsewhere."""
    clipped = torch.clamp(x, 0.0, ACT_MAX)
    return clipped + (_quantize_activation(x) - clipped).detach()


def binarize_weight(w):
    """``sign(w) * mean|w|`` per output channel of OIHW weights; ``w >= 0`` gives +1."""
    alpha = w.abs().mean(dim=(1, 2, 3), keepdim=True)
    return torch.where(w >= 0, 1.0, -1.0).to(w.dtype) * alpha


def binarize_weight_ste(w):
    """Channel-wise binary weights with an identity (straight-through) gradient, as Blueoil's
    ``binary_channel_wise_mean_scaling``."""
    return w + (binarize_weight(w) - w).detach()


def weight_planes(w, planes):
    """Greedy residual binarization of OIHW weights per output channel, as
    :func:`models.golden.binarize_weight_planes`: ``R_0 = w``, ``B_p = sign(R_p)`` (``>= 0`` gives
    +1), ``beta_p = mean |R_p|``, ``R_{p+1} = R_p - beta_p B_p``.

    Returns
    -------
    signs : tensor (planes, O, I, kh, kw) of +-1
    beta : tensor (planes, O)
    """
    residual = w
    signs, betas = [], []
    for _ in range(planes):
        beta = residual.abs().mean(dim=(1, 2, 3), keepdim=True)
        sign = torch.where(residual >= 0, 1.0, -1.0).to(w.dtype)
        signs.append(sign)
        betas.append(beta.reshape(-1))
        residual = residual - sign * beta
    return torch.stack(signs), torch.stack(betas)


def binarize_weight_planes(w, planes):
    """``sum_p beta_p B_p`` of :func:`weight_planes` (OIHW, the weights' shape)."""
    signs, betas = weight_planes(w, planes)
    return (signs * betas[:, :, None, None, None]).sum(dim=0)


def binarize_planes_ste(w, planes):
    """Multi-plane binary weights with an identity (straight-through) gradient."""
    return w + (binarize_weight_planes(w, planes) - w).detach()


def thermometer_input(frames):
    """Float frames ``(N, 6, H, W)`` (uint8 / 255) -> the values of their thermometer codes,
    ``(N, 32, H, W)``: channel ``c*5 + i`` is ``clip((v >> 4) - 3i, 0, 3) * 2/3`` of value ``c``
    (``v`` the uint8 value), channels 30 and 31 are 0, as :func:`models.formats.frame_pair_codes`."""
    n, c, h, w = frames.shape
    v = torch.round(frames * 255.0)
    q = torch.floor(v / float(1 << (8 - INPUT_BITS)))
    levels = ACT_LEVELS * torch.arange(INPUT_CODES, dtype=frames.dtype, device=frames.device)
    codes = torch.clamp(q[:, :, None] - levels[None, :, None, None], 0, ACT_LEVELS)
    codes = codes.reshape(n, c * INPUT_CODES, h, w)
    pad = frames.new_zeros(n, FRAME_CODE_CHANNELS - c * INPUT_CODES, h, w)
    return torch.cat([codes, pad], dim=1) * ACT_STEP


def flow_quantizer_input(f, flow_range, flow_codes):
    """``(N, C, H, W) -> (N, C*K, H, W)``: ``(f_c + R) * K / R - 2i`` in channel ``c*K + i``, the
    affine map whose 2-bit activation quantizer is the flow quantizer's code ``i``
    (:func:`models.thresholds.flow_quantizer_input`, same arithmetic)."""
    n, c, h, w = f.shape
    k = int(flow_codes)
    r = float(flow_range)
    steps = ACT_MAX * torch.arange(k, dtype=f.dtype, device=f.device)
    a = (f[:, :, None] + r) * (k / r) - steps[None, None, :, None, None]
    return a.reshape(n, c * k, h, w)


class LMFlowNet(nn.Module):
    """LMFlowNet for a :class:`models.network.NetworkConfig`.

    Parameters
    ----------
    cfg : NetworkConfig
    mode : {"float", "quant"}
        Can be changed later through :attr:`mode`.

    ``forward(frames)`` takes float frames ``(N, 6, H, W)`` in [0, 1] (uint8 / 255) and returns a
    dict ``{"predict_flow{l}": tensor}`` of every flow prediction (in units of
    ``pixels / flow_scale``; a flow-code layer's float flow before quantization), plus
    ``"flow"``: the final flow in pixels at the input resolution. With ``keep_tensors`` also
    ``"tensors"``: every layer's output as the next layers see it (a flow-code layer's code
    values, predict_flow2's flow).
    """

    def __init__(self, cfg, mode="float"):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.cfg = cfg
        self.mode = mode
        self.layers = build_layers(cfg)
        self.convs = nn.ModuleDict()
        self.bns = nn.ModuleDict()
        for layer in self.layers:
            conv = nn.Conv2d(layer.c_in, layer.param_out, layer.kernel, padding=layer.kernel // 2,
                             bias=layer.bias)
            nn.init.kaiming_normal_(conv.weight, a=cfg.leaky_relu, nonlinearity="leaky_relu")
            if layer.name.startswith("predict_flow"):
                with torch.no_grad():       # start near the zero flow, not at +-20 px of noise
                    conv.weight.mul_(0.1)
            if layer.bias:
                nn.init.zeros_(conv.bias)
            self.convs[layer.name] = conv
            if layer.bn:
                self.bns[layer.name] = nn.BatchNorm2d(layer.param_out, eps=cfg.bn_eps, momentum=0.05)

    @property
    def flow_names(self):
        """Names of the flow predictions, coarsest first (``predict_flow{D}`` .. ``predict_flow2``)."""
        return [f"predict_flow{lvl}" for lvl in range(self.cfg.depth, 1, -1)]

    def conv_forward(self, layer, x):
        """The layer's convolution (+ bias), with quantized weights in ``"quant"`` mode."""
        conv = self.convs[layer.name]
        quant = self.mode == "quant"
        if quant and layer.planes:
            w = binarize_planes_ste(conv.weight, layer.planes)
        elif quant and layer.binary:
            w = binarize_weight_ste(conv.weight)
        else:
            w = conv.weight
        return F.conv2d(x, w, conv.bias, padding=layer.kernel // 2)

    def activation(self, layer, z):
        """What follows the convolution: BN + activation, the flow quantizer, or nothing."""
        quant = self.mode == "quant"
        if layer.bn:
            y = self.bns[layer.name](z)
            if quant:
                return quantize_activation_ste(y)
            return F.leaky_relu(y, self.cfg.leaky_relu)
        if layer.flow_codes:
            a = flow_quantizer_input(z, layer.flow_range, layer.flow_codes)
            return quantize_activation_ste(a) if quant else torch.clamp(a, 0.0, ACT_MAX)
        return z

    def layer_forward(self, layer, x):
        return self.activation(layer, self.conv_forward(layer, x))

    def network_input(self, frames):
        """The first layer's input: the frames, or their thermometer code values (quantized ends)."""
        return thermometer_input(frames) if self.cfg.quantized_ends else frames

    def forward(self, frames, keep_tensors=False):
        tensors = {INPUT: self.network_input(frames)}
        flows = {}
        for layer in self.layers:
            srcs = [tensors[i] for i in layer.inputs]
            x = srcs[0] if len(srcs) == 1 else torch.cat(srcs, dim=1)
            if layer.input_op == OP_SPACE_TO_DEPTH:
                x = space_to_depth(x, 2)
            elif layer.input_op == OP_UPSAMPLE:
                x = upsample_nearest(x, 2)
            elif layer.input_op != OP_IDENTITY:
                raise ValueError(f"unknown input operation {layer.input_op!r}")
            z = self.conv_forward(layer, x)
            if layer.flow_codes:
                flows[layer.name] = z
            tensors[layer.name] = self.activation(layer, z)
        out = {name: flows.get(name, tensors[name]) for name in self.flow_names}
        out["flow"] = upsample_flow(tensors["predict_flow2"] * self.cfg.flow_scale, 4)
        if keep_tensors:
            out["tensors"] = tensors
        return out
