"""Between the PyTorch model and the project's weights format (:mod:`models.weights`).

Convolution weights are OIHW in PyTorch and HWIO in the weights file (transposed); batch norm
exports ``gamma`` (``weight``), ``beta`` (``bias``), ``mean`` and ``var`` (the running
statistics, which inference uses). Binary layers export their latent float weights: the golden
model binarizes them with the same rule as :func:`train.model.binarize_weight`.

:func:`convert_float_ends` turns float-ends weights into a starting point for the fully
quantized network (``python -m train.export SRC.npz DST.npz``), for ``python -m train.train
--init DST.npz`` with the fully quantized configuration.
"""

import argparse
import os
import sys

import numpy as np
import torch

from models.weights import save_weights, validate_weights

__all__ = ["export_weights", "import_weights", "save_model", "convert_float_ends", "main"]


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


def convert_float_ends(weights, src_cfg, dst_cfg, frames):
    """Float-ends weights -> initial weights of the same network with quantized ends.

    Layers of equal shapes are copied. The float model of the result computes (away from the
    zero-padded borders) what the source's float model computes on 4-bit input:

    * conv1 reads thermometer codes: input ``v / 255`` is about ``(16 q + 8) / 255`` with
      ``q = (3/2) * sum_i value_i``, so every code of a value gets that value's weight times
      ``16 / 255 * 3/2`` (tied), and the constant ``8 / 255`` part moves into the BN mean;
    * ``upsample_flow{l}`` reads flow codes: ``f`` is about ``-R + step * (3/2) * sum_i value_i``
      (``step = 2R / 3K``), likewise;
    * the level-2 ``cast_conv``, now batch-normed, gets ``mean``, ``var`` of its float output on
      ``frames`` and ``gamma = 0.5``, ``beta = 1`` (its output mostly in [0, 2], where leaky ReLU
      and the 2-bit quantizer are defined), and ``predict_flow2`` the weights and bias that undo
      that affine map.

    Parameters
    ----------
    weights : dict
        Float-ends weights (``{layer: {param: float32 array}}``), validated against ``src_cfg``.
    src_cfg, dst_cfg : NetworkConfig
        The same network with ``ends: float`` and ``ends: quantized``.
    frames : numpy.ndarray of uint8, (N, H, W, 6)
        Frames for cast_conv's statistics.

    Returns
    -------
    dict
        Weights for ``dst_cfg`` (validated).

    Raises
    ------
    ValueError
        If the configurations are not the two divisions of one network.
    """
    from models.formats import FRAME_CODE_CHANNELS, FRAME_COLORS
    from models.golden import FloatModel
    from models.network import build_layers
    from models.quant import ACT_LEVELS, INPUT_BITS, INPUT_CODES

    if src_cfg.quantized_ends or not dst_cfg.quantized_ends:
        raise ValueError(f"convert_float_ends needs a float-ends source and a quantized-ends destination, "
                         f"not {src_cfg.describe()} -> {dst_cfg.describe()}")

    def topology(cfg):
        d = cfg.to_dict()
        return {k: v for k, v in d.items() if k not in ("ends", "flow_codes", "flow_range", "predict_planes")}

    if topology(src_cfg) != topology(dst_cfg):
        raise ValueError(f"convert_float_ends needs two divisions of one network, not {src_cfg.describe()} "
                         f"and {dst_cfg.describe()}")
    validate_weights(weights, src_cfg, source="float-ends weights")
    w = {n: {p: a.astype(np.float64) for p, a in d.items()} for n, d in weights.items()}
    out = {n: dict(d) for n, d in w.items()}
    bin_width = float(1 << (8 - INPUT_BITS))
    per_code = ACT_LEVELS / 2.0            # code = value * 3/2

    wt = w["conv1"]["weight"]              # s2d channel (dy*2 + dx)*6 + c
    k, _, _, o = wt.shape
    conv1 = np.zeros((k, k, 4 * FRAME_CODE_CHANNELS, o))
    for blk in range(4):
        for c in range(FRAME_COLORS):
            for i in range(INPUT_CODES):
                conv1[:, :, blk * FRAME_CODE_CHANNELS + c * INPUT_CODES + i] = \
                    wt[:, :, blk * FRAME_COLORS + c] * (bin_width / 255 * per_code)
    out["conv1"]["weight"] = conv1
    out["conv1"]["mean"] = w["conv1"]["mean"] - wt.sum(axis=(0, 1, 2)) * (bin_width / 2 / 255)

    layers = {layer.name: layer for layer in build_layers(dst_cfg)}
    for name, layer in layers.items():
        if not name.startswith("upsample_flow"):
            continue
        src = layers[layer.inputs[0]]
        r, kc = src.flow_range, src.flow_codes
        step = 2 * r / (ACT_LEVELS * kc)
        wt = w[name]["weight"]
        out[name]["weight"] = np.repeat(wt, kc, axis=2) * (step * per_code)     # channel c*K + i
        out[name]["mean"] = w[name]["mean"] + wt.sum(axis=(0, 1, 2)) * r

    _, tensors = FloatModel(src_cfg, weights).run(frames, keep_tensors=True)
    z = tensors["cast_conv"].reshape(-1, tensors["cast_conv"].shape[-1])
    mu, sigma = z.mean(axis=0), z.std(axis=0) + 1e-6
    gamma, beta = 0.5, 1.0
    out["cast_conv"].update(gamma=np.full_like(mu, gamma), beta=np.full_like(mu, beta), mean=mu,
                            var=np.maximum(sigma ** 2 - dst_cfg.bn_eps, 0.0))
    # predict_flow2 sees y = gamma (z - mu) / sigma + beta, so z = (y - beta) sigma / gamma + mu
    wt = w["predict_flow2"]["weight"]
    out["predict_flow2"]["weight"] = wt * (sigma / gamma)[None, None, :, None]
    out["predict_flow2"]["bias"] = w["predict_flow2"]["bias"] + np.einsum("hwco,c->o", wt, mu - beta * sigma / gamma)
    out = {n: {p: np.asarray(a, np.float32) for p, a in d.items()} for n, d in out.items()}
    validate_weights(out, dst_cfg, source="converted weights")
    return out


def main(argv=None):
    """``python -m train.export SRC.npz DST.npz [--config NET.yaml] [--pairs N]``: convert
    float-ends weights into a starting point for the fully quantized network."""
    from models.network import load_network_config
    from models.synthetic import TRAIN_STREAM, SyntheticConfig, make_batch
    from models.weights import load_weights

    ap = argparse.ArgumentParser(prog="python -m train.export", description=main.__doc__.split(":")[1].strip())
    ap.add_argument("src", help="float-ends weights (.npz)")
    ap.add_argument("dst", help="weights to write for the fully quantized configuration")
    ap.add_argument("--config", default=None, help="fully quantized configuration (default: the default one)")
    ap.add_argument("--pairs", type=int, default=16, help="training pairs for cast_conv's statistics")
    args = ap.parse_args(argv)
    weights, src_cfg, meta = load_weights(args.src)
    dst_cfg = load_network_config(args.config)
    syn_frames, _ = make_batch(range(args.pairs), TRAIN_STREAM,
                               SyntheticConfig(height=src_cfg.height, width=src_cfg.width))
    out = convert_float_ends(weights, src_cfg, dst_cfg, syn_frames)
    save_weights(args.dst, out, dst_cfg, meta={"converted_from": {"path": args.src, "meta": meta}})
    print(f"wrote {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
