"""Seeded random-but-realistic weights and synthetic frame pairs.

:func:`random_weights` draws He-initialized weights layer by layer and calibrates every batch
norm on a few synthetic frames run through the quantized model built so far: ``mean`` and
``var`` are the measured statistics of the pre-BN output, ``gamma`` and ``beta`` spread the
normalized value over the quantizer's range, so thresholds are non-trivial and every layer's
codes use all four values. A fraction of channels gets a negative ``gamma`` (decreasing
threshold direction), at least one in every accelerator layer. A flow-code layer (quantized
ends) has its weights scaled and its bias shifted so that its flow has a standard deviation of
half the quantizer's range ``R`` and a mean of about ``0.1 R``, so that its codes use all four
values too. With float ends the weights are the same, draw for draw, as before the quantized
ends existed.
"""

import numpy as np

from .golden import LayerPlan, QuantizedModel, apply_input_op, network_input
from .network import INPUT, build_layers
from .ops import concat_channels
from .conv import conv_w1a2_direct

__all__ = ["random_frame_pairs", "random_weights"]


def _smooth_noise(rng, h, w, scales=(4, 8, 16)):
    """Sum of bilinearly upsampled noise at a few scales, in [0, 1]."""
    img = np.zeros((h, w))
    for s in scales:
        gh, gw = h // s + 2, w // s + 2
        g = rng.random((gh, gw))
        ys = np.linspace(0, gh - 1.001, h)
        xs = np.linspace(0, gw - 1.001, w)
        y0, x0 = ys.astype(int), xs.astype(int)
        fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
        g00, g01 = g[y0][:, x0], g[y0][:, x0 + 1]
        g10, g11 = g[y0 + 1][:, x0], g[y0 + 1][:, x0 + 1]
        img += (g00 * (1 - fx) + g01 * fx) * (1 - fy) + (g10 * (1 - fx) + g11 * fx) * fy
    img -= img.min()
    return img / max(img.max(), 1e-9)


def random_frame_pairs(n, height, width, seed=0, max_shift=4):
    """``n`` frame pairs of a smooth random texture translated by an integer shift.

    Returns
    -------
    frames : numpy.ndarray of uint8, (n, height, width, 6)
        Frame 1 in channels 0..2, frame 2 in channels 3..5.
    shifts : numpy.ndarray of int, (n, 2)
        ``(dx, dy)`` of each pair: ``frame2[y, x] = frame1[y - dy, x - dx]``.
    """
    rng = np.random.default_rng(seed)
    frames = np.zeros((n, height, width, 6), dtype=np.uint8)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(n, 2))
    m = max_shift
    for i in range(n):
        tex = np.stack([_smooth_noise(rng, height + 2 * m, width + 2 * m) for _ in range(3)], axis=-1)
        dx, dy = shifts[i]
        f1 = tex[m:m + height, m:m + width]
        f2 = tex[m - dy:m - dy + height, m - dx:m - dx + width]
        frames[i] = np.round(np.concatenate([f1, f2], axis=-1) * 255).astype(np.uint8)
    return frames, shifts


def random_weights(cfg, seed=0, calib_frames=2, negative_gamma=0.15):
    """Seeded random weights with batch norm calibrated on synthetic frames.

    Parameters
    ----------
    cfg : NetworkConfig
    seed : int
    calib_frames : int
        Number of synthetic frame pairs used to measure the batch-norm statistics.
    negative_gamma : float
        Fraction of BN channels with a negative gamma.

    Returns
    -------
    dict
        ``{layer: {param: float32 array}}``.
    """
    rng = np.random.default_rng(seed)
    frames, _ = random_frame_pairs(calib_frames, cfg.height, cfg.width, seed=seed + 1)
    probe = QuantizedModel.__new__(QuantizedModel)
    probe.cfg, probe.layers, probe.plans = cfg, build_layers(cfg), {}
    tensors = {INPUT: network_input(cfg, frames)}
    weights = {}
    for layer in probe.layers:
        fan_in = layer.kernel * layer.kernel * layer.c_in
        c_out = layer.param_out
        params = {"weight": rng.normal(0, np.sqrt(2.0 / fan_in),
                                       size=(layer.kernel, layer.kernel, layer.c_in, c_out))}
        if layer.bias:
            params["bias"] = rng.normal(0, 0.1, size=c_out)
        if layer.flow_codes:
            # Spread the flow over the quantizer's range: mean about R/10, std R/2.
            signs = np.where(params["weight"] >= 0, 1, -1).astype(np.int8)
            alpha = np.abs(params["weight"]).mean(axis=(0, 1, 2))
            x = apply_input_op(layer.input_op, concat_channels([tensors[i] for i in layer.inputs]))
            z = (conv_w1a2_direct(x, signs) * (alpha * 2 / 3)).reshape(-1, c_out)
            scale = 0.5 * layer.flow_range / np.maximum(z.std(axis=0), 1e-12)
            params["weight"] = params["weight"] * scale
            params["bias"] = params["bias"] * layer.flow_range - z.mean(axis=0) * scale
        if layer.bn:
            # Measure the pre-BN statistics with provisional BN parameters.
            provisional = dict(params, gamma=np.ones(c_out), beta=np.zeros(c_out),
                               mean=np.zeros(c_out), var=np.ones(c_out))
            plan = LayerPlan.prepare(layer, {k: np.asarray(v, np.float32) for k, v in provisional.items()},
                                     cfg.bn_eps) if not layer.accel else None
            if layer.accel:
                signs = np.where(params["weight"] >= 0, 1, -1).astype(np.int8)
                alpha = np.abs(params["weight"]).mean(axis=(0, 1, 2))
                x = apply_input_op(layer.input_op, concat_channels([tensors[i] for i in layer.inputs]))
                z = conv_w1a2_direct(x, signs) * (alpha * 2 / 3) + params.get("bias", 0.0)
            else:
                # a host layer (float ends): its float inputs are the dequantized tensors
                probe.plans[layer.name] = plan
                x = concat_channels([probe.dequantize(i, tensors[i]) for i in layer.inputs])
                z = plan.pre_activation(apply_input_op(layer.input_op, x))
            flat = z.reshape(-1, layer.c_out)
            params["mean"] = flat.mean(axis=0)
            params["var"] = flat.var(axis=0) + 1e-4
            sign = np.where(rng.random(c_out) < negative_gamma, -1.0, 1.0)
            if layer.accel and negative_gamma > 0 and not (sign < 0).any():
                sign[-1] = -1.0         # every thresholded accelerator layer has a decreasing channel
            params["gamma"] = sign * rng.uniform(0.5, 0.9, size=c_out)
            params["beta"] = rng.uniform(0.8, 1.2, size=c_out)
        params = {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}
        weights[layer.name] = params
        probe.plans[layer.name] = LayerPlan.prepare(layer, params, cfg.bn_eps)
        tensors[layer.name] = probe.run_layer(layer.name, tensors)
    return weights
