"""Training framework vs the golden model: layers, straight-through gradients, export exactness,
the training loop (resume), and the shipped weights."""

import json
import os

import numpy as np
import pytest

from models.errors import WeightsError
from models.golden import FloatModel, QuantizedModel
from models.network import (CONFIG_DIR, INPUT, OUT_CODES, OUT_FLOAT, OUT_RAW, build_layers, float_ends_config_path,
                            load_network_config)
from models.pretrained import (default_float_ends_weights_path, default_float_weights_path, default_weights_path,
                               load_default_float_weights, load_default_weights)
from models.quant import activation_code_thresholds
from models.synthetic import EVAL_STREAM, make_batch, make_pair
from models.weights import load_weights, save_weights

CONFIGS = ["lmflownet_d3_96x128.yaml", "lmflownet_d4_96x128.yaml", "lmflownet_tiny.yaml",
           "lmflownet_d3_96x128_float_ends.yaml", "lmflownet_tiny_float_ends.yaml"]


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)
    return torch


def _cfg(name):
    return load_network_config(os.path.join(CONFIG_DIR, name))


def _frames(cfg, n, seed=0):
    """Synthetic frame pairs at the network's resolution (uint8, NHWC)."""
    from models.synthetic import SyntheticConfig
    syn = SyntheticConfig(height=cfg.height, width=cfg.width, shape_radius=(2.0, cfg.height / 3))
    return make_batch(range(seed, seed + n), EVAL_STREAM, syn)


def _random_model(torch, cfg, frames, seed=0):
    """A quantized-mode model with He-initialized weights and batch norm statistics measured on
    ``frames``; 15% of the gammas negative (decreasing thresholds), beta shifted so every code is
    used."""
    from train.model import LMFlowNet
    torch.manual_seed(seed)
    m = LMFlowNet(cfg, "quant")
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        for bn in m.bns.values():
            bn.momentum = None
        m.train()
        m(x)
        g = torch.Generator().manual_seed(seed)
        for bn in m.bns.values():
            sign = torch.where(torch.rand(bn.weight.shape, generator=g) < 0.15, -1.0, 1.0)
            bn.weight.copy_(sign * (0.5 + 0.4 * torch.rand(bn.weight.shape, generator=g)))
            bn.bias.copy_(0.8 + 0.4 * torch.rand(bn.bias.shape, generator=g))
            bn.momentum = 0.05
        for conv in m.convs.values():
            if conv.bias is not None:
                conv.bias.normal_(0, 0.1, generator=g)
    return m.eval()


def _nchw_to_nhwc(t):
    return t.detach().permute(0, 2, 3, 1).numpy()


# ------------------------------------------------------------------------------------------------
# The model against build_layers

@pytest.mark.parametrize("name", CONFIGS)
def test_layers_names_and_shapes_follow_build_layers(torch, name):
    from train.model import LMFlowNet
    cfg = _cfg(name)
    layers = build_layers(cfg)
    m = LMFlowNet(cfg, "float")
    assert list(m.convs) == [layer.name for layer in layers]
    assert list(m.bns) == [layer.name for layer in layers if layer.bn]
    assert m.flow_names == [f"predict_flow{lvl}" for lvl in range(cfg.depth, 1, -1)]
    x = torch.zeros(1, cfg.in_channels, cfg.height, cfg.width)
    with torch.no_grad():
        out = m.eval()(x, keep_tensors=True)
    for layer in layers:
        conv = m.convs[layer.name]
        h, w, c_in, c_out = layer.param_shapes()["weight"]
        assert tuple(conv.weight.shape) == (c_out, c_in, h, w), layer.name
        assert (conv.bias is not None) == layer.bias, layer.name
        # a multi-plane layer's tensor is the flow the host computes from its 2M accumulators
        channels = layer.param_out if layer.planes else layer.c_out
        assert tuple(out["tensors"][layer.name].shape) == (1, channels, layer.height, layer.width), layer.name
        if layer.flow_codes:
            assert tuple(out[layer.name].shape) == (1, 2, layer.height, layer.width)
    assert tuple(out["flow"].shape) == (1, 2, cfg.height, cfg.width)


def test_space_to_depth_and_upsampling_match_numpy(torch):
    from models.ops import space_to_depth as s2d_np, upsample_nearest as up_np
    from train.model import space_to_depth, upsample_nearest
    x = np.random.default_rng(0).normal(size=(2, 6, 8, 12, 5))[0]
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    assert np.array_equal(_nchw_to_nhwc(space_to_depth(t, 2)), s2d_np(x, 2))
    assert np.array_equal(_nchw_to_nhwc(upsample_nearest(t, 2)), up_np(x, 2))


# ------------------------------------------------------------------------------------------------
# Straight-through estimators

def test_activation_quantizer_values_and_ste_gradient(torch):
    from models.quant import dequantize_activations, quantize_activations
    from train.model import quantize_activation_ste
    x = np.concatenate([np.linspace(-1, 3, 401), activation_code_thresholds(),
                        np.nextafter(activation_code_thresholds(), -np.inf)])
    t = torch.tensor(x, requires_grad=True)
    y = quantize_activation_ste(t)
    assert np.array_equal(y.detach().numpy(), dequantize_activations(quantize_activations(x), np.float64))
    y.sum().backward()
    inside = (x >= 0) & (x <= 2)
    assert np.array_equal(t.grad.numpy(), inside.astype(np.float64))


def test_binary_weights_values_and_ste_gradient(torch):
    from models.quant import binarize_weights, dequantize_weights
    from train.model import binarize_weight_ste
    w = np.random.default_rng(1).normal(size=(3, 3, 4, 5))
    w[0, 0, 0, 0] = 0.0                                          # exactly 0 -> +1
    t = torch.tensor(w.transpose(3, 2, 0, 1).copy(), requires_grad=True)   # OIHW
    q = binarize_weight_ste(t)
    signs, alpha = binarize_weights(w)
    assert np.allclose(q.detach().numpy().transpose(2, 3, 1, 0), dequantize_weights(signs, alpha, np.float64),
                       rtol=0, atol=1e-15)
    g = torch.randn_like(t)
    (q * g).sum().backward()
    assert torch.equal(t.grad, g)                                 # identity gradient


def test_thermometer_input_matches_the_loaders_codes(torch):
    from models.formats import frame_pair_codes
    from train.model import thermometer_input
    frames = np.random.default_rng(2).integers(0, 256, (2, 5, 7, 6), dtype=np.uint8)
    frames[0, 0, 0] = [0, 15, 16, 255, 240, 239]                   # the bin edges
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    got = _nchw_to_nhwc(thermometer_input(x))
    assert got.shape == (2, 5, 7, 32)
    assert np.array_equal(got, frame_pair_codes(frames).astype(np.float32) * np.float32(2 / 3))


def test_flow_quantizer_values_and_ste_gradient(torch):
    from models.thresholds import flow_decision_points, flow_quantizer_input as affine_np, quantize_flow
    from train.model import flow_quantizer_input, quantize_activation_ste
    r, k = 0.75, 4
    f = np.linspace(-1, 1, 2 * 1001).reshape(1, 2, 1, 1001)
    t = torch.tensor(f, requires_grad=True)
    a = flow_quantizer_input(t, r, k)
    assert tuple(a.shape) == (1, 8, 1, 1001)
    assert np.array_equal(_nchw_to_nhwc(a.detach()), affine_np(_nchw_to_nhwc(t.detach()), r, k))   # same arithmetic
    codes = quantize_activation_ste(a)
    theta = np.array([float(x) for x in flow_decision_points(r, k)])
    fn = _nchw_to_nhwc(t.detach())
    near = np.repeat(np.min(np.abs(fn[..., None] - theta), axis=-1) < 1e-12, k, axis=-1)
    got = np.rint(_nchw_to_nhwc(codes.detach()) / (2 / 3))
    assert np.array_equal(got[~near], quantize_flow(fn, r, k)[~near])
    codes.sum().backward()
    # d/df of sum_i q(a_i): K/R for each code channel whose a lies in [0, 2], i.e. K/R where |f| <= R
    inside = (np.abs(f) <= r)
    assert np.allclose(t.grad.numpy(), np.where(inside, k / r, 0.0))


def test_weight_planes_match_numpy_and_ste_gradient(torch):
    from models.golden import binarize_weight_planes as planes_np, plane_weights
    from train.model import binarize_planes_ste, weight_planes
    w = np.random.default_rng(3).normal(size=(3, 3, 6, 2))
    w[0, 0, 0, 0] = 0.0
    t = torch.tensor(w.transpose(3, 2, 0, 1).copy(), requires_grad=True)   # OIHW
    signs, betas = weight_planes(t.detach(), 4)
    s_np, b_np = planes_np(w, 4)
    assert np.array_equal(signs.numpy().transpose(3, 4, 2, 1, 0).reshape(3, 3, 6, 8), s_np)   # o*M + p
    assert np.allclose(betas.numpy().T.reshape(8), b_np, rtol=1e-12, atol=0)
    q = binarize_planes_ste(t, 4)
    assert np.allclose(q.detach().numpy().transpose(2, 3, 1, 0), plane_weights(s_np, b_np, 4), rtol=0, atol=1e-12)
    g = torch.randn_like(t)
    (q * g).sum().backward()
    assert torch.equal(t.grad, g)                                 # identity gradient


@pytest.mark.parametrize("name", ["lmflownet_tiny.yaml", "lmflownet_tiny_float_ends.yaml"])
def test_gradients_reach_every_layer_in_both_modes(torch, name):
    from train.losses import multiscale_epe
    cfg = _cfg(name)
    frames, flows = _frames(cfg, 2)
    for mode in ("float", "quant"):
        m = _random_model(torch, cfg, frames)
        m.mode = mode
        m.train()
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
        y = torch.from_numpy(flows).permute(0, 3, 1, 2)
        loss, per_level = multiscale_epe(m(x), y, cfg.flow_scale, cfg.depth)
        assert set(per_level) == {"predict_flow2", "predict_flow3"}
        loss.backward()
        for name, conv in m.convs.items():
            assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0, (mode, name)


def test_multiscale_loss_weights_and_targets(torch):
    from train.losses import level_weights, multiscale_epe
    assert level_weights(3) == {"predict_flow2": 0.32, "predict_flow3": 0.08}
    assert level_weights(6) == {"predict_flow2": 0.32, "predict_flow3": 0.08, "predict_flow4": 0.02,
                                "predict_flow5": 0.01, "predict_flow6": 0.005}
    target = torch.zeros(1, 2, 16, 16)
    target[:, 0] = 40.0                                          # u = 40 px everywhere
    outs = {"predict_flow2": torch.zeros(1, 2, 4, 4), "predict_flow3": torch.zeros(1, 2, 2, 2)}
    outs["predict_flow3"][:, 0] = 2.0                            # exact at level 3 (40 / 20)
    loss, per = multiscale_epe(outs, target, 20.0, 3)
    assert per == {"predict_flow2": 2.0, "predict_flow3": 0.0}
    assert float(loss) == pytest.approx(0.32 * 2.0)


# ------------------------------------------------------------------------------------------------
# Export: the golden model computes what the training framework computes

def _decision_distance(cfg, golden, layer, xin):
    """Distance of the golden float pre-quantizer value to the nearest decision point, per code
    channel: BN output to (1/3, 1, 5/3), or the flow to the flow quantizer's points."""
    from models.thresholds import batch_norm, flow_decision_points
    plan = golden.plans[layer.name]
    z = plan.pre_activation(xin)
    if layer.flow_codes:
        theta = np.array([float(t) for t in flow_decision_points(layer.flow_range, layer.flow_codes)])
        return np.repeat(np.min(np.abs(z[..., None] - theta), axis=-1), layer.flow_codes, axis=-1)
    y = batch_norm(z, eps=cfg.bn_eps, **plan.bn)
    return np.min(np.abs(y[..., None] - activation_code_thresholds()), axis=-1)


def _golden_input(golden, g, layer):
    from models.golden import apply_input_op
    from models.ops import concat_channels
    return apply_input_op(layer.input_op, concat_channels([golden.dequantize(i, g.tensors[i]) for i in layer.inputs]))


def _check_quantized_export(torch, cfg, m, frames, tmp_path):
    from train.export import export_weights
    path = tmp_path / "w.npz"
    save_weights(path, export_weights(m), cfg)
    weights, _, _ = load_weights(path, cfg)
    golden = QuantizedModel(cfg, weights)
    g = golden.run(frames, keep_tensors=True)
    # The torch model in float64 on exactly the float32 parameters that were exported.
    md = type(m)(cfg, "quant")
    md.load_state_dict(m.state_dict())
    md = md.double().eval()
    with torch.no_grad():
        out = md(torch.from_numpy(frames).permute(0, 3, 1, 2).double() / 255, keep_tensors=True)
    if cfg.quantized_ends:
        assert np.array_equal(_nchw_to_nhwc(out["tensors"][INPUT]) / (2 / 3), g.tensors[INPUT])
    for layer in build_layers(cfg):
        ref = g.tensors[layer.name]
        got = _nchw_to_nhwc(out["tensors"][layer.name])
        if layer.flow_codes:
            # the loss sees the float flow before the quantizer
            f = golden.plans[layer.name].pre_activation(_golden_input(golden, g, layer))
            assert np.allclose(_nchw_to_nhwc(out[layer.name]), f, rtol=1e-12, atol=1e-12), layer.name
        if layer.output == OUT_CODES:
            codes = np.rint(got / (2 / 3)).astype(np.int64)
            assert np.allclose(got, codes * (2 / 3), rtol=0, atol=1e-12)
            mismatch = codes != ref
            if layer.accel:
                # Integer thresholds folded exactly vs float64 BN: equal unless a BN output lies
                # within float64 rounding (~1e-13) of a decision point; none does here.
                assert not mismatch.any(), (layer.name, int(mismatch.sum()))
            else:
                # Host layers run in float64 in both; a code may differ only at a near-tie: where
                # the golden pre-activation is within 1e-9 of a decision point (1/3, 1, 5/3).
                if mismatch.any():
                    near = _decision_distance(cfg, golden, layer, _golden_input(golden, g, layer)) < 1e-9
                    assert near[mismatch].all(), layer.name
                assert mismatch.mean() <= 1e-6, layer.name
            assert len(np.unique(ref)) == 4, layer.name         # the test exercises every code
        elif layer.output == OUT_RAW:
            # raw accumulators (multi-plane: the flow the host computes from them)
            deq = golden.dequantize(layer.name, ref)
            assert np.allclose(got, deq, rtol=1e-12, atol=1e-9), layer.name
        else:
            assert layer.output == OUT_FLOAT
            # the golden model returns predict_flow2 as float32
            assert np.allclose(got, ref, rtol=1e-6, atol=1e-5), layer.name
    assert np.allclose(_nchw_to_nhwc(out["flow"]), g.flow, rtol=1e-6, atol=1e-4)
    return g, out


@pytest.mark.parametrize("name", ["lmflownet_d3_96x128.yaml", "lmflownet_tiny.yaml",
                                  "lmflownet_d3_96x128_float_ends.yaml"])
def test_quantized_export_matches_golden_model(torch, name, tmp_path):
    cfg = _cfg(name)
    frames, _ = _frames(cfg, 2)
    m = _random_model(torch, cfg, frames)
    _check_quantized_export(torch, cfg, m, frames, tmp_path)


@pytest.mark.parametrize("name", ["lmflownet_d3_96x128.yaml", "lmflownet_d3_96x128_float_ends.yaml"])
def test_float32_layers_differ_from_golden_only_at_near_ties(torch, name):
    """The training framework's own float32 inference, layer by layer on the golden model's
    inputs: float32 rounding of a BN output of order 1 (conv sums of up to 4608 terms, relative
    error ~1e-7 each) is far below 1e-4, so a code may differ from the golden (exact) code only
    where the golden BN output lies within 1e-4 of a decision point (1/3, 1, 5/3), and such
    near-ties are rare. (End to end, a moved code feeds the next layers: with these random
    weights one conv1 flip in 400k grows to a few percent of deconv2's codes, so float32
    end-to-end outputs are not compared code by code; float64 ones are, above.)"""
    from train.export import export_weights
    cfg = _cfg(name)
    frames, _ = _frames(cfg, 2, seed=5)
    m = _random_model(torch, cfg, frames, seed=3)
    golden = QuantizedModel(cfg, export_weights(m))
    g = golden.run(frames, keep_tensors=True)
    for layer in build_layers(cfg):
        if layer.output != OUT_CODES:
            continue
        xin = _golden_input(golden, g, layer)
        with torch.no_grad():
            got = m.layer_forward(layer, torch.from_numpy(xin).permute(0, 3, 1, 2).float())
        codes = np.rint(_nchw_to_nhwc(got) / (2 / 3))
        near = _decision_distance(cfg, golden, layer, xin) < 1e-4
        mismatch = codes != g.tensors[layer.name]
        assert near[mismatch].all(), layer.name
        assert mismatch.mean() < 1e-4, layer.name


@pytest.mark.parametrize("name", ["lmflownet_d3_96x128.yaml", "lmflownet_d3_96x128_float_ends.yaml"])
def test_float_export_matches_float_model(torch, tmp_path, name):
    from train.export import export_weights
    cfg = _cfg(name)
    frames, _ = _frames(cfg, 2)
    m = _random_model(torch, cfg, frames)
    m.mode = "float"
    path = tmp_path / "f.npz"
    save_weights(path, export_weights(m), cfg)
    weights, _, _ = load_weights(path, cfg)
    flow, tensors = FloatModel(cfg, weights).run(frames, keep_tensors=True)
    md = type(m)(cfg, "float")
    md.load_state_dict(m.state_dict())
    md = md.double().eval()
    with torch.no_grad():
        out = md(torch.from_numpy(frames).permute(0, 3, 1, 2).double() / 255, keep_tensors=True)
    for layer in build_layers(cfg):
        assert np.allclose(_nchw_to_nhwc(out["tensors"][layer.name]), tensors[layer.name],
                           rtol=1e-9, atol=1e-9), layer.name
        if layer.flow_codes:
            assert np.allclose(_nchw_to_nhwc(out[layer.name]), tensors[f"{layer.name}:flow"], rtol=1e-9, atol=1e-9)
    assert np.allclose(_nchw_to_nhwc(out["flow"]), flow, rtol=1e-6, atol=1e-4)
    assert np.abs(flow).max() > 1.0


def test_convert_float_ends_reproduces_the_float_inputs(torch, tmp_path):
    """The fully quantized starting point made from float-ends weights: away from the zero-padded
    borders its float model's conv1 equals the source's on 4-bit input, upsample_flow3 on the
    flow codes of f equals the source's on f (|f| <= R), and predict_flow2 undoes cast_conv's new
    batch norm."""
    from models.conv import conv_float
    from models.ops import upsample_nearest
    from models.thresholds import batch_norm, flow_quantizer_input
    from train.export import convert_float_ends, main
    fcfg, qcfg = _cfg("lmflownet_tiny_float_ends.yaml"), _cfg("lmflownet_tiny.yaml")
    from models.generate import random_weights
    fw = random_weights(fcfg, seed=4)
    frames, _ = _frames(fcfg, 2)
    qw = convert_float_ends(fw, fcfg, qcfg, frames)
    centre = ((frames >> 4) * 16 + 8).astype(np.uint8)
    _, ft = FloatModel(fcfg, fw).run(centre, keep_tensors=True)
    _, qt = FloatModel(qcfg, qw).run(frames, keep_tensors=True)
    inner = (slice(None), slice(1, -1), slice(1, -1))
    assert np.allclose(ft["conv1"][inner], qt["conv1"][inner], rtol=1e-5, atol=1e-5)
    assert not np.allclose(ft["conv1"], qt["conv1"], rtol=1e-5, atol=1e-5)      # the borders differ

    def bn_out(p, x):
        p = {k: v.astype(np.float64) for k, v in p.items()}
        return batch_norm(conv_float(x, p["weight"], p.get("bias")), gamma=p["gamma"], beta=p["beta"],
                          mean=p["mean"], var=p["var"], eps=fcfg.bn_eps)

    f = np.random.default_rng(5).uniform(-0.74, 0.74, (1, 4, 6, 2))
    codes = np.clip(flow_quantizer_input(f, qcfg.flow_range, qcfg.flow_codes), 0, 2)
    a = bn_out(fw["upsample_flow3"], upsample_nearest(f, 2))
    b = bn_out(qw["upsample_flow3"], upsample_nearest(codes, 2))
    assert np.allclose(a[inner], b[inner], rtol=1e-5, atol=1e-5)
    z = np.random.default_rng(6).normal(size=(1, 8, 12, 26))
    y = batch_norm(z, **{k: qw["cast_conv"][k].astype(np.float64) for k in ("gamma", "beta", "mean", "var")},
                   eps=qcfg.bn_eps)
    src, dst = fw["predict_flow2"], qw["predict_flow2"]
    assert np.allclose(conv_float(z, src["weight"], src["bias"])[inner],
                       conv_float(y, dst["weight"], dst["bias"])[inner], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="needs a float-ends source and a quantized-ends destination"):
        convert_float_ends(qw, qcfg, qcfg, frames)
    with pytest.raises(ValueError, match="two divisions of one network"):
        convert_float_ends(fw, fcfg, load_network_config(), frames)
    # the command line
    save_weights(tmp_path / "f.npz", fw, fcfg)
    assert main([str(tmp_path / "f.npz"), str(tmp_path / "q.npz"), "--config",
                 os.path.join(CONFIG_DIR, "lmflownet_tiny.yaml"), "--pairs", "2"]) == 0
    assert load_weights(tmp_path / "q.npz")[1] == qcfg


def test_import_weights_round_trip(torch):
    from train.export import export_weights, import_weights
    from train.model import LMFlowNet
    cfg = _cfg("lmflownet_tiny.yaml")
    frames, _ = _frames(cfg, 2)
    w = export_weights(_random_model(torch, cfg, frames))
    w2 = export_weights(import_weights(LMFlowNet(cfg), w))
    for name in w:
        for p in w[name]:
            assert np.array_equal(w[name][p], w2[name][p]), (name, p)


# ------------------------------------------------------------------------------------------------
# The training loop

def test_training_runs_resumes_and_exports(torch, tmp_path, monkeypatch):
    from train import data, train
    cfg_path = os.path.join(CONFIG_DIR, "lmflownet_tiny.yaml")
    args = ["--config", cfg_path, "--out-dir", str(tmp_path / "w"), "--work-dir", str(tmp_path / "run"),
            "--float-steps", "4", "--quant-steps", "3", "--batch-size", "2", "--pool-size", "4",
            "--fresh", "1", "--val-pairs", "2", "--bn-batches", "1", "--warmup", "2",
            "--crop", "16", "24", "--checkpoint-minutes", "0", "--no-progress"]
    calls = {"n": 0}
    real_advance = data.PairPool.advance

    def interrupted(self):
        calls["n"] += 1
        if calls["n"] == 6:          # in the quant phase, after its second step
            raise KeyboardInterrupt
        real_advance(self)

    monkeypatch.setattr(data.PairPool, "advance", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train.main(args)
    q_path, f_path = train.weights_paths(cfg_path, str(tmp_path / "w"))
    assert os.path.exists(f_path) and not os.path.exists(q_path)
    monkeypatch.setattr(data.PairPool, "advance", real_advance)
    train.main(args)
    log = (tmp_path / "run" / "train.log").read_text()
    assert "resuming quant phase at step 1" in log
    weights, cfg, meta = load_weights(q_path)
    assert cfg.name == "lmflownet_tiny"
    for key in ("command", "seed", "iterations", "wall_time_s", "metrics", "samples"):
        assert key in meta, key
    assert meta["iterations"] == 3 and meta["float_phase"]["steps"] == 4
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(results) == {"float", "quant"}
    QuantizedModel(cfg, weights)
    # re-estimating the batch norms again gives the same statistics (same seeded batches)
    train.main(args + ["--recalibrate-only"])
    weights2, _, meta2 = load_weights(q_path)
    assert meta2["bn_recalibrated"]["val_epe_before"] == pytest.approx(meta2["metrics"]["val_epe_synthetic"], abs=1e-3)
    for name in weights:
        for p in weights[name]:
            assert np.allclose(weights[name][p], weights2[name][p], rtol=1e-5, atol=1e-6), (name, p)


def test_flow_bias_correction_zeroes_the_mean_error_at_full_size(torch):
    import argparse
    from models.synthetic import SyntheticConfig
    from train.data import render_batch, to_tensors
    from train.train import BIAS_INDEX_BASE, correct_flow_bias
    cfg = _cfg("lmflownet_tiny.yaml")
    syn = SyntheticConfig(height=cfg.height, width=cfg.width)
    model = _random_model(torch, cfg, _frames(cfg, 4)[0])
    with torch.no_grad():
        model.convs["predict_flow2"].bias += torch.tensor([0.7, -0.4])     # an offset to remove
    args = argparse.Namespace(bias_pairs=20, photo_fraction=0.5)

    def mean_error():
        frames, flows = render_batch(range(BIAS_INDEX_BASE, BIAS_INDEX_BASE + 20), cfg=syn, photo_fraction=0.5)
        x, y = to_tensors(frames, flows, "cpu")
        with torch.no_grad():
            pred = model(x)["predict_flow2"] * cfg.flow_scale
        target = torch.nn.functional.adaptive_avg_pool2d(y, pred.shape[-2:])
        return (pred - target).double().mean(dim=(0, 2, 3)).numpy()

    before = mean_error()
    bias = model.convs["predict_flow2"].bias.detach().clone()
    offset = correct_flow_bias(model, syn, args, "cpu", batch=8)      # batches of 8, 8 and 4 pairs
    assert np.allclose(offset, before, atol=1e-3), (offset, before)
    assert np.abs(before).max() > 0.1
    assert np.abs(mean_error()).max() < 1e-4, mean_error()
    assert np.allclose(model.convs["predict_flow2"].bias.detach().numpy(),
                       (bias - torch.tensor(before, dtype=torch.float32) / cfg.flow_scale).numpy(), atol=1e-5)
    # 0 pairs: nothing changes
    bias = model.convs["predict_flow2"].bias.detach().clone()
    assert correct_flow_bias(model, syn, argparse.Namespace(bias_pairs=0, photo_fraction=0.5), "cpu") is None
    assert torch.equal(model.convs["predict_flow2"].bias, bias)


@pytest.mark.parametrize("argv, msg", [
    (["--bias-pairs", "-1"], "--bias-pairs must be >= 0 (0: no bias correction), not -1"),
    (["--photo-fraction", "1.5"], "--photo-fraction must be in [0, 1], not 1.5"),
    (["--static-weight", "-2"], "--static-weight must be >= 0, not -2.0"),
])
def test_training_arguments_out_of_range_are_one_clear_line(capsys, argv, msg):
    from train.train import parse_args
    with pytest.raises(SystemExit) as e:
        parse_args(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(msg) and "Traceback" not in err


def test_photo_mix_is_even_and_deterministic():
    pytest.importorskip("skimage")
    from models.photoscenes import PHOTO_TRAIN_STREAM, make_photo_pair
    from train.data import PairPool, is_photo_index, render_pair
    flags = np.array([is_photo_index(i, 0.5) for i in range(1000)])
    assert 0.49 < flags.mean() < 0.51
    assert max(len(r) for r in "".join("p" if f else "s" for f in flags).split("s")) <= 3   # interleaved
    assert not any(is_photo_index(i, 0.0) for i in range(100))
    assert all(is_photo_index(i, 1.0) for i in range(100))
    i = int(np.flatnonzero(flags)[0])
    frames, flow = render_pair(i, crop=(16, 24), photo_fraction=0.5)
    p = make_photo_pair(i, PHOTO_TRAIN_STREAM, crop=(16, 24))
    assert np.array_equal(frames, p.frames) and np.array_equal(flow, p.flow)
    j = int(np.flatnonzero(~flags)[0])
    frames, flow = render_pair(j, crop=(16, 24), photo_fraction=0.5)
    q = make_pair(j, crop=(16, 24))
    assert np.array_equal(frames, q.frames) and np.array_equal(flow, q.flow)
    a, b = PairPool(6, 2, crop=(16, 24), photo_fraction=0.5), PairPool(6, 2, crop=(16, 24), photo_fraction=0.5)
    a.fill(3)
    b.fill(0)
    for _ in range(3):
        b.advance()
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.flows, b.flows)


def test_augmentation_keeps_identical_pairs_identical():
    from train.data import augment
    rng = np.random.default_rng(0)
    f = rng.integers(0, 256, (3, 8, 10, 3), dtype=np.uint8)
    frames = np.concatenate([f, f], axis=-1)
    frames[2, ..., 3:] = rng.integers(0, 256, (8, 10, 3))          # a moving pair
    flows = np.zeros((3, 8, 10, 2), np.float32)
    out, _ = augment(frames, flows, np.random.default_rng(1))
    assert np.array_equal(out[0, ..., :3], out[0, ..., 3:]) and np.array_equal(out[1, ..., :3], out[1, ..., 3:])
    assert not np.array_equal(out[0], frames[0])                     # still augmented
    assert not np.array_equal(out[2, ..., :3], out[2, ..., 3:])


def test_static_weight_counts_zero_flow_pixels_more(torch):
    from train.losses import multiscale_epe
    target = torch.zeros(1, 2, 16, 16)
    target[:, 0, :, 8:] = 40.0                                   # right half moves, left half static
    outs = {"predict_flow2": torch.ones(1, 2, 4, 4), "predict_flow3": torch.zeros(1, 2, 2, 2)}
    plain, per = multiscale_epe(outs, target, 20.0, 3)
    weighted, per_w = multiscale_epe(outs, target, 20.0, 3, static_weight=2.0)
    assert per == per_w                                          # reported EPE stays unweighted
    e2_static, e2_moving = np.sqrt(2), np.hypot(1, 1)            # |(1,1) - 0|, |(1,1) - (2,0)|
    e3_moving = 2.0                                              # level 3: zeros vs (2, 0) on the right
    assert float(plain) == pytest.approx(0.32 * (e2_static + e2_moving) / 2 + 0.08 * e3_moving / 2)
    assert float(weighted) == pytest.approx(0.32 * (3 * e2_static + e2_moving) / 2 + 0.08 * e3_moving / 2)


def test_lr_schedule(torch):
    from train.train import lr_at
    assert lr_at(0, 100, 1.0, 10) == pytest.approx(0.1)
    assert lr_at(9, 100, 1.0, 10) == pytest.approx(1.0)
    assert lr_at(10, 100, 1.0, 10) == pytest.approx(1.0)
    assert lr_at(100, 100, 1.0, 10) == pytest.approx(0.01)


# ------------------------------------------------------------------------------------------------
# The shipped weights (no PyTorch needed)

def test_shipped_weights_load_by_default_and_are_trained():
    """Three shipped files: the fully quantized default network (loaded by
    default), its float-ends division (chosen by a float-ends configuration) and the float
    network; every manifest records how it was made; all far better than the zero flow."""
    weights, cfg, meta = load_default_weights()
    assert default_weights_path().endswith(os.path.join("models", "weights", "lmflownet_d3_96x128.npz"))
    assert cfg == load_network_config() and cfg.ends == "quantized"
    fe_cfg = load_network_config(float_ends_config_path())
    fe_weights, fe_stored, fe_meta = load_default_weights(fe_cfg)
    assert default_weights_path(fe_cfg) == default_float_ends_weights_path()
    assert default_float_ends_weights_path().endswith("lmflownet_d3_96x128_float_ends.npz")
    assert fe_stored == fe_cfg
    fweights, fcfg, fmeta = load_default_float_weights()
    assert fcfg == fe_cfg        # the float network: the float-ends network with every layer in float
    assert (meta["model"], fe_meta["model"], fmeta["model"]) == ("quantized", "quantized", "float")
    for m in (meta, fe_meta, fmeta):
        for key in ("command", "seed", "iterations", "wall_time_s", "metrics"):
            assert key in m, key
    for path in (default_weights_path(), default_float_ends_weights_path(), default_float_weights_path()):
        assert os.path.getsize(path) < 16 * 2 ** 20
    # trained: far better than the zero flow on held-out pairs
    pairs = [make_pair(i, EVAL_STREAM) for i in range(4)]
    frames = np.stack([p.frames for p in pairs])
    gt = np.stack([p.flow for p in pairs])
    zero = np.linalg.norm(gt, axis=-1).mean()
    for flow in (QuantizedModel(cfg, weights).run(frames).flow, QuantizedModel(fe_cfg, fe_weights).run(frames).flow,
                 FloatModel(fcfg, fweights).run(frames)[0]):
        assert np.linalg.norm(flow - gt, axis=-1).mean() < 0.6 * zero


def test_shipped_weights_errors(monkeypatch, tmp_path):
    import models.pretrained as pretrained
    with pytest.raises(WeightsError, match="not for 'lmflownet_tiny'"):
        load_default_weights(_cfg("lmflownet_tiny.yaml"))
    with pytest.raises(WeightsError, match="not for 'lmflownet_tiny'"):
        load_default_weights(_cfg("lmflownet_tiny_float_ends.yaml"))
    with pytest.raises(WeightsError, match="not for 'lmflownet_tiny'"):
        load_default_float_weights(_cfg("lmflownet_tiny_float_ends.yaml"))
    with pytest.raises(TypeError, match="cfg must be a NetworkConfig, not str"):
        load_default_weights("lmflownet_d3_96x128.yaml")
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match="shipped weights are missing"):
        load_default_weights()
    with pytest.raises(WeightsError, match="shipped weights are missing"):
        pretrained.default_float_weights_path()
    with pytest.raises(WeightsError, match="shipped weights are missing"):
        pretrained.default_float_ends_weights_path()


# ------------------------------------------------------------------------------------------------
# Evaluation (numpy and OpenCV; no PyTorch)

def test_eval_writes_every_method_for_synthetic_and_chairs(tmp_path):
    pytest.importorskip("cv2")
    from PIL import Image
    from models.chairs import SPLIT_FILE
    from models.flow import write_flo
    from models.generate import random_weights
    from train import eval as ev
    cfg = _cfg("lmflownet_tiny.yaml")
    fe_cfg = _cfg("lmflownet_tiny_float_ends.yaml")
    save_weights(tmp_path / "q.npz", random_weights(cfg, seed=1), cfg)
    save_weights(tmp_path / "fe.npz", random_weights(fe_cfg, seed=3), fe_cfg)
    save_weights(tmp_path / "f.npz", random_weights(fe_cfg, seed=2), fe_cfg)
    chairs = tmp_path / "chairs" / "data"
    chairs.mkdir(parents=True)
    for i in range(1, 4):                       # Flying Chairs layout at twice the network's size
        p = make_pair(i, EVAL_STREAM)
        Image.fromarray(p.frame1[:32, :48]).save(chairs / f"{i:05d}_img1.ppm")
        Image.fromarray(p.frame2[:32, :48]).save(chairs / f"{i:05d}_img2.ppm")
        write_flo(chairs / f"{i:05d}_flow.flo", p.flow[:32, :48])
    (tmp_path / "chairs" / SPLIT_FILE).write_text("1\n2\n2\n")
    out = tmp_path / "eval.json"
    ev.main(["--weights", str(tmp_path / "q.npz"), "--float-ends-weights", str(tmp_path / "fe.npz"),
             "--float-weights", str(tmp_path / "f.npz"),
             "--pairs", "3", "--real-pairs", "0", "--chairs", str(tmp_path / "chairs"), "--out", str(out),
             "--no-progress"])
    results = json.loads(out.read_text())
    assert set(results) == {"synthetic", "flying_chairs_val"}
    for r in results.values():
        assert set(r) == {"float", "float_ends", "quantized", "farneback", "dis"}
        assert all(np.isfinite(v) and v >= 0 for v in r.values())
    details = json.loads((tmp_path / "eval_details.json").read_text())
    assert details["pairs"] == {"synthetic": 3, "flying_chairs_val": 2}
    assert details["networks"] == {"float": fe_cfg.describe(), "float_ends": fe_cfg.describe(),
                                   "quantized": cfg.describe()}
    assert "original work" in ev.format_table(results)
    # the three networks are the three files: each one's EPE is its own
    from models.synthetic import SyntheticConfig
    syn = SyntheticConfig(height=cfg.height, width=cfg.width)
    pairs = [(p.frames, p.flow) for p in (make_pair(i, EVAL_STREAM, syn) for i in range(3))]
    nets, _, _ = ev.load_networks(str(tmp_path / "q.npz"), str(tmp_path / "fe.npz"), str(tmp_path / "f.npz"))
    assert isinstance(nets["float"], FloatModel) and nets["float_ends"].cfg == fe_cfg
    assert isinstance(nets["float_ends"], QuantizedModel) and isinstance(nets["quantized"], QuantizedModel)
    own = QuantizedModel(fe_cfg, random_weights(fe_cfg, seed=3)).run(np.stack([f for f, _ in pairs])).flow
    assert results["synthetic"]["float_ends"] == pytest.approx(
        np.mean([np.linalg.norm(o - gt, axis=-1).mean() for o, (_, gt) in zip(own, pairs)]), abs=1e-4)
    alone = {name: ev.evaluate(pairs, {name: nets[name]})[0][name] for name in nets}
    assert alone == pytest.approx({m: results["synthetic"][m] for m in alone}, abs=1e-4)
    assert len(set(round(v, 4) for v in alone.values())) == 3
    # without a float-ends file (another network given) the entry is left out
    ev.main(["--weights", str(tmp_path / "q.npz"), "--float-weights", str(tmp_path / "f.npz"), "--pairs", "1",
             "--real-pairs", "0", "--out", str(out), "--no-progress"])
    r = json.loads(out.read_text())["synthetic"]
    assert set(r) == {"float", "quantized", "farneback", "dis"}
    assert "| - |" in ev.format_table({"synthetic": r})


def test_eval_bad_weights_give_a_one_line_error(tmp_path, capsys):
    """A missing file, a file that is no weights file and networks of two input sizes: exit
    status 2 and one line naming the file or the sizes, no traceback, nothing written."""
    pytest.importorskip("cv2")
    from models.generate import random_weights
    from train import eval as ev
    cfg, d3 = _cfg("lmflownet_tiny.yaml"), _cfg("lmflownet_d3_96x128.yaml")
    save_weights(tmp_path / "q.npz", random_weights(cfg, seed=1), cfg)
    save_weights(tmp_path / "big.npz", random_weights(d3, seed=1), d3)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    out = tmp_path / "eval.json"
    cases = [(["--weights", str(tmp_path / "nope.npz")], "nope.npz: weights file not found"),
             (["--weights", str(tmp_path / "junk.npz")], "junk.npz: not a weights (.npz) file"),
             (["--weights", str(tmp_path / "q.npz"), "--float-weights", str(tmp_path / "big.npz")],
              "must share one input size")]
    for argv, msg in cases:
        with pytest.raises(SystemExit) as e:
            ev.main(argv + ["--pairs", "1", "--real-pairs", "0", "--out", str(out), "--no-progress"])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert msg in err[-1] and err[-1].startswith("python -m train.eval: error: ") and "Traceback" not in err
        assert not out.exists()


def test_eval_real_images_entry_and_picture_grid(tmp_path):
    """The real-image evaluation on a few tiny pairs: every method's EPE, noise floors, bins,
    the stereo pair, and the picture grid; DIS sees identical frames as exactly still."""
    pytest.importorskip("cv2")
    pytest.importorskip("skimage")
    from PIL import Image
    from models.generate import random_weights
    from train import eval as ev
    cfg = _cfg("lmflownet_tiny.yaml")
    fe_cfg = _cfg("lmflownet_tiny_float_ends.yaml")
    save_weights(tmp_path / "q.npz", random_weights(cfg, seed=1), cfg)
    save_weights(tmp_path / "fe.npz", random_weights(fe_cfg, seed=3), fe_cfg)
    save_weights(tmp_path / "f.npz", random_weights(fe_cfg, seed=2), fe_cfg)
    out = tmp_path / "eval.json"
    ev.main(["--weights", str(tmp_path / "q.npz"), "--float-ends-weights", str(tmp_path / "fe.npz"),
             "--float-weights", str(tmp_path / "f.npz"),
             "--pairs", "1", "--real-pairs", "3", "--still-pairs", "2", "--out", str(out), "--no-progress"])
    results = json.loads(out.read_text())
    assert set(results) == {"synthetic", "real"}
    r = results["real"]
    for key in ("float", "float_ends", "quantized", "farneback", "dis", "noise_floor", "static_floor", "bins",
                "stereo", "upsampling"):
        assert key in r, key
    assert r["pairs"] == 3 and r["floor_pairs"] == {"identical": 2, "static": 2}
    for m in ev.METHODS:
        assert np.isfinite(r[m]) and r[m] > 0
        assert r["noise_floor"][m] >= 0 and np.isfinite(r["stereo"][m])
    assert r["noise_floor"]["dis"] < 1e-3
    assert sum(b["pixels"] for b in r["bins"].values()) == pytest.approx(1.0, abs=1e-3)
    assert list(r["bins"]) == ["0-1", "1-3", "3-8", "8-16", "16+"]
    with Image.open(tmp_path / "eval" / "real_grid.png") as grid:
        size = grid.size
    # 3 moving rows shown (of 4 at most), the identical pair, the stereo pair; 8 columns + wheel
    assert size == (8 * (2 * cfg.width + 4) + 2 * cfg.height + 4, 22 + 5 * (2 * cfg.height + 18))
    assert all(r["noise_floor"][m] != r["noise_floor"]["quantized"] for m in ("float", "float_ends"))
    assert "noise floor" in ev.format_real_table(r)


def test_real_evaluation_accounting():
    """A perfect method scores 0 everywhere; a method that answers zero flow scores the mean
    magnitude, bin by bin; floors are mean magnitudes."""
    from train.real import BINS, RealEvaluation
    rng = np.random.default_rng(0)
    gt = rng.normal(0, 6, (8, 12, 2)).astype(np.float32)
    acc = RealEvaluation(("perfect", "zero"))
    low = gt.reshape(2, 4, 3, 4, 2).mean(axis=(1, 3))
    acc.add_moving(gt, {"perfect": gt, "zero": np.zeros_like(gt)}, low, np.zeros((8, 12, 3), np.uint8))
    acc.add_still("identical", {"perfect": np.zeros_like(gt), "zero": np.full_like(gt, 3.0)})
    r = acc.result()
    mag = np.linalg.norm(gt, axis=-1)
    assert r["perfect"] == 0 and r["zero"] == pytest.approx(mag.mean(), abs=1e-4)
    assert r["noise_floor"] == {"perfect": 0.0, "zero": pytest.approx(np.hypot(3, 3), abs=1e-4)}
    for (label, b), lo, hi in zip(r["bins"].items(), BINS[:-1], BINS[1:]):
        sel = (mag >= lo) & (mag < hi)
        assert b["pixels"] == pytest.approx(sel.mean(), abs=1e-4)
        if sel.any():
            assert b["perfect"] == 0 and b["zero"] == pytest.approx(mag[sel].mean(), abs=1e-4)
        else:
            assert b["zero"] is None


def test_stereo_pair_ground_truth():
    """The Middlebury pair: leftward flow only, and warping the right view by it reproduces the
    left view far better than no motion (on pixels with a disparity)."""
    pytest.importorskip("cv2")
    pytest.importorskip("skimage")
    from train.real import stereo_pair
    frames, flow, valid = stereo_pair(96, 128)
    assert frames.shape == (96, 128, 6) and flow.shape == (96, 128, 2) and valid.mean() > 0.8
    assert (flow[..., 1] == 0).all() and (flow[..., 0][valid] < 0).all()
    left, right = frames[..., :3].astype(float), frames[..., 3:].astype(float)
    ys, xs = np.mgrid[0:96, 0:128]
    x2 = np.clip(xs + flow[..., 0], 0, 127)
    x0 = np.minimum(np.floor(x2).astype(int), 126)
    f = (x2 - x0)[..., None]
    warped = right[ys, x0] * (1 - f) + right[ys, x0 + 1] * f
    assert np.abs(warped - left)[valid].mean() < 0.5 * np.abs(right - left)[valid].mean()


def test_joint_bilateral_upsampling_keeps_constant_flow_and_follows_edges():
    from train.real import joint_bilateral_upsample
    flow = np.full((4, 6, 2), 2.5, np.float32)
    guide = np.random.default_rng(0).integers(0, 256, (16, 24, 3)).astype(np.uint8)
    assert np.allclose(joint_bilateral_upsample(flow, guide, 4), 2.5, atol=1e-5)
    # a flow edge that coincides with an image edge stays sharper than bilinear
    flow = np.zeros((4, 6, 2), np.float32)
    flow[:, 3:] = 8.0
    guide = np.zeros((16, 24, 3), np.uint8)
    guide[:, 12:] = 255
    up = joint_bilateral_upsample(flow, guide, 4)
    assert np.abs(up[:, :12] - 0).max() < 0.5 and np.abs(up[:, 12:] - 8).max() < 0.5


def test_eval_upsample_flow_scales_vectors():
    pytest.importorskip("cv2")
    from train.eval import upsample_flow
    flow = np.zeros((4, 6, 2), np.float32)
    flow[..., 0], flow[..., 1] = 1.5, -2.0
    up = upsample_flow(flow, 16, 24)
    assert up.shape == (16, 24, 2)
    assert np.allclose(up[..., 0], 6.0) and np.allclose(up[..., 1], -8.0)


def test_the_float_phase_of_the_default_network_does_not_replace_the_shipped_float_model():
    """make train's float file of the fully quantized default is its own (a network on the
    thermometer codes); the float-ends configuration's is the float model make eval loads."""
    from train import train
    q, f = train.weights_paths(os.path.join(CONFIG_DIR, "lmflownet_d3_96x128.yaml"), "models/weights")
    assert q == os.path.join("models/weights", "lmflownet_d3_96x128.npz")
    assert f == os.path.join("models/weights", "lmflownet_d3_96x128_float_phase.npz")
    q, f = train.weights_paths(float_ends_config_path(), "w")
    assert (q, f) == (os.path.join("w", "lmflownet_d3_96x128_float_ends.npz"),
                      os.path.join("w", "lmflownet_d3_96x128_float_ends_float.npz"))
