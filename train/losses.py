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


def multiscale_epe(outputs, target, flow_scale, depth, static_weight=0.0):
    """Weighted sum over levels of the EPE between ``predict_flow{l}`` and the ground truth
    (N, 2, H, W, in pixels) downsampled to that level and divided by ``flow_scale``.

    Parameters
    ----------
    static_weight : float
        Extra weight of static pixels (ground truth exactly zero): a pixel's EPE counts
        ``1 + static_weight * s`` times, ``s`` the fraction of static full-resolution pixels
        under it (average-pooled like the flow); 0 is FlowNet's plain loss.

    Returns
    -------
    loss : tensor
    per_level : dict of floats
        The plain (unweighted) EPE of every level.
    """
    total = 0.0
    per_level = {}
    scaled = target / flow_scale
    static = (target == 0).all(dim=1, keepdim=True).to(target.dtype) if static_weight else None
    for name, w in level_weights(depth).items():
        pred = outputs[name]
        size = pred.shape[-2:]
        err = torch.linalg.vector_norm(pred - downsample_flow(scaled, size), dim=1)
        per_level[name] = float(err.detach().mean())
        if static is not None:
            err = err * (1.0 + static_weight * downsample_flow(static, size)[:, 0])
        total = total + w * err.mean()
    return total, per_level
