"""FlowNet's multi-scale end-point-error loss and the EPE metric."""

import torch
import torch.nn.functional as F

__all__ = ["LEVEL_WEIGHTS", "level_weights", "downsample_flow", "multiscale_epe", "epe"]

#: Loss weight of ``predict_flow{l}`` in FlowNet (flow2 .. flow6).
LEVEL_WEIGHTS = {2: 0.32, 3: 0.08, 4: 0.02, 5: 0.01, 6: 0.005}


def level_weights(depth):
    """``{"predict_flow{l}": weight}`` for the levels that exist at ``depth`` (2..depth)."""
    return {f"predict_flow{lvl}": LEVEL_WEIGHTS[lvl] for lvl in range(2, depth + 1)}


def downsample_flow(flow, size):
    """Average-pool a flow (N, 2, H, W) to ``size`` without rescaling the vectors (FlowNet:
    every level is in input-resolution pixels divided by ``flow_scale``)."""
    return F.adaptive_avg_pool2d(flow, size)


def epe(pred, target):
    """Mean end-point error over all pixels of (N, 2, H, W) flows."""
    return torch.linalg.vector_norm(pred - target, dim=1).mean()


def multiscale_epe(outputs, target, flow_scale, depth):
    """Weighted sum over levels of the EPE between ``predict_flow{l}`` and the ground truth
    (N, 2, H, W, in pixels) downsampled to that level and divided by ``flow_scale``.

    Returns
    -------
    loss : tensor
    per_level : dict of floats
    """
    total = 0.0
    per_level = {}
    scaled = target / flow_scale
    for name, w in level_weights(depth).items():
        pred = outputs[name]
        e = epe(pred, downsample_flow(scaled, pred.shape[-2:]))
        per_level[name] = float(e.detach())
        total = total + w * e
    return total, per_level
