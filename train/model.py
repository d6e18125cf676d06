"""LMFlowNet in PyTorch, built from :func:`models.network.build_layers`.

Two modes of the same module (:class:`LMFlowNet`):

* ``"float"``: float weights, batch norm, ``leaky_relu(0.1)``: the :class:`models.golden.FloatModel`;
* ``"quant"``: quantization-aware: the binary layers use ``sign(W) * mean|W|`` per output channel
  (a weight of exactly 0 is +1) and every batch-normed layer ends in the 2-bit activation quantizer
  ``code = floor(clip(x, 0, 2) * 1.5 + 0.5)``, value ``code * 2/3`` (round half up), both with
  straight-through gradients. In eval mode this is the arithmetic of
  :class:`models.golden.QuantizedModel` in float (the golden model computes the accelerator layers
  with integers and exact thresholds; they agree up to float rounding at near-ties).

Tensors are NCHW. ``space_to_depth`` follows TensorFlow's channel order (``(dy*2 + dx)*C + c``),
convolutions are stride 1 with SAME zero padding, upsampling is nearest x2.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.network import (INPUT, OP_IDENTITY, OP_SPACE_TO_DEPTH, OP_UPSAMPLE, build_layers)
from models.quant import ACT_LEVELS, ACT_MAX, ACT_STEP

__all__ = ["LMFlowNet", "space_to_depth", "upsample_nearest", "upsample_flow", "quantize_activation_ste",
           "binarize_weight_ste", "MODES"]

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


class LMFlowNet(nn.Module):
    """LMFlowNet for a :class:`models.network.NetworkConfig`.

    Parameters
    ----------
    cfg : NetworkConfig
    mode : {"float", "quant"}
        Can be changed later through :attr:`mode`.

    ``forward(frames)`` takes float frames ``(N, 6, H, W)`` in [0, 1] (uint8 / 255) and returns a
    dict ``{"predict_flow{l}": tensor}`` of every flow prediction (in units of
    ``pixels / flow_scale``), plus ``"flow"``: the final flow in pixels at the input resolution.
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
            conv = nn.Conv2d(layer.c_in, layer.c_out, layer.kernel, padding=layer.kernel // 2,
                             bias=layer.bias)
            nn.init.kaiming_normal_(conv.weight, a=cfg.leaky_relu, nonlinearity="leaky_relu")
            if layer.name.startswith("predict_flow"):
                with torch.no_grad():       # start near the zero flow, not at +-20 px of noise
                    conv.weight.mul_(0.1)
            if layer.bias:
                nn.init.zeros_(conv.bias)
            self.convs[layer.name] = conv
            if layer.bn:
                self.bns[layer.name] = nn.BatchNorm2d(layer.c_out, eps=cfg.bn_eps, momentum=0.05)

    @property
    def flow_names(self):
        """Names of the flow predictions, coarsest first (``predict_flow{D}`` .. ``predict_flow2``)."""
        return [f"predict_flow{lvl}" for lvl in range(self.cfg.depth, 1, -1)]

    def layer_forward(self, layer, x):
        conv = self.convs[layer.name]
        quant = self.mode == "quant"
        w = binarize_weight_ste(conv.weight) if (quant and layer.binary) else conv.weight
        z = F.conv2d(x, w, conv.bias, padding=layer.kernel // 2)
        if not layer.bn:
            return z
        y = self.bns[layer.name](z)
        if quant:
            return quantize_activation_ste(y)
        return F.leaky_relu(y, self.cfg.leaky_relu)

    def forward(self, frames, keep_tensors=False):
        tensors = {INPUT: frames}
        for layer in self.layers:
            srcs = [tensors[i] for i in layer.inputs]
            x = srcs[0] if len(srcs) == 1 else torch.cat(srcs, dim=1)
            if layer.input_op == OP_SPACE_TO_DEPTH:
                x = space_to_depth(x, 2)
            elif layer.input_op == OP_UPSAMPLE:
                x = upsample_nearest(x, 2)
            elif layer.input_op != OP_IDENTITY:
                raise ValueError(f"unknown input operation {layer.input_op!r}")
            tensors[layer.name] = self.layer_forward(layer, x)
        out = {name: tensors[name] for name in self.flow_names}
        out["flow"] = upsample_flow(tensors["predict_flow2"] * self.cfg.flow_scale, 4)
        if keep_tensors:
            out["tensors"] = tensors
        return out
