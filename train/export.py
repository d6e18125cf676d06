"""Between the PyTorch model and the project's weights format (:mod:`models.weights`).

Convolution weights are OIHW in PyTorch and HWIO in the weights file (transposed); batch norm
exports ``gamma`` (``weight``), ``beta`` (``bias``), ``mean`` and ``var`` (the running
statistics, which inference uses). Binary layers export their latent float weights: the golden
model binarizes them with the same rule as :func:`train.model.binarize_weight`.
"""

import os

import numpy as np
import torch

from models.weights import save_weights, validate_weights

__all__ = ["export_weights", "import_weights", "save_model"]


def _np(t):
    return t.detach().cpu().to(torch.float32).numpy().copy()


def export_weights(model):
    """``{layer: {param: float32 array}}`` of a :class:`train.model.LMFlowNet`, validated."""
    weights = {}
    for layer in model.layers:
        conv = model.convs[layer.name]
        params = {"weight": np.ascontiguousarray(_np(conv.weight).transpose(2, 3, 1, 0))}
        if layer.bias:
            params["bias"] = _np(conv.bias)
        if layer.bn:
            bn = model.bns[layer.name]
            params.update(gamma=_np(bn.weight), beta=_np(bn.bias), mean=_np(bn.running_mean),
                          var=_np(bn.running_var))
        weights[layer.name] = params
    validate_weights(weights, model.cfg, source="exported model")
    return weights


@torch.no_grad()
def import_weights(model, weights):
    """Load a weights dictionary into a :class:`train.model.LMFlowNet` (in place)."""
    validate_weights(weights, model.cfg)
    for layer in model.layers:
        p = weights[layer.name]
        conv = model.convs[layer.name]
        conv.weight.copy_(torch.from_numpy(p["weight"].transpose(3, 2, 0, 1).copy()))
        if layer.bias:
            conv.bias.copy_(torch.from_numpy(p["bias"]))
        if layer.bn:
            bn = model.bns[layer.name]
            bn.weight.copy_(torch.from_numpy(p["gamma"]))
            bn.bias.copy_(torch.from_numpy(p["beta"]))
            bn.running_mean.copy_(torch.from_numpy(p["mean"]))
            bn.running_var.copy_(torch.from_numpy(p["var"]))
    return model


def save_model(path, model, meta=None):
    """Export a model and write it as a weights file (atomically)."""
    save_weights(path, export_weights(model), model.cfg, meta=meta)
    os.chmod(path, 0o644)   # a shipped file: readable like any other in the repository
