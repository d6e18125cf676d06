import hashlib
import os

import numpy as np
import pytest

from models.conv import conv_float, conv_w1a2_bitplane
from models.formats import frame_pair_codes
from models.golden import AccelJob, FloatModel, HostStep, QuantizedModel, apply_input_op, dequantize_planes
from models.generate import random_frame_pairs, random_weights
from models.network import (CONFIG_DIR, INPUT, OUT_CODES, OUT_RAW, default_config_path, float_ends_config_path,
                            load_network_config)
from models.ops import concat_channels
from models.quant import activation_code_thresholds, quantize_activations
from models.thresholds import (DIR_INCREASING, apply_thresholds, batch_norm, flow_decision_points, flow_levels,
                               quantize_flow)

# sha256 over every integer tensor (codes and accumulators) of the default network's quantized pass,
# weights seed 0, frames seed 100. A change here means the golden results changed.
CHECKSUMS = {
    # fully quantized (the default configuration); the input codes are included
    "quantized": "4e3f70c0fa4bd0fb97860d7be5e06d514141f685fc0ff6de037d5abde5a084ed",
    # float ends: the same value as before the quantized ends existed
    "float": "b6610ebf82bfd400a52113836de0d34a5b6456f9864942703c5818274e5bff49",
}
CONFIGS = {"quantized": default_config_path(), "float": float_ends_config_path()}


@pytest.fixture(scope="module", params=["quantized", "float"])
def default_run(request):
    cfg = load_network_config(CONFIGS[request.param])
    model = QuantizedModel(cfg, random_weights(cfg, seed=0))
    frames, _ = random_frame_pairs(2, cfg.height, cfg.width, seed=100)
    return cfg, model, frames, model.run(frames, keep_tensors=True, keep_steps=True)


def integer_checksum(tensors):
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        if np.issubdtype(t.dtype, np.integer):
            h.update(name.encode())
            h.update(np.ascontiguousarray(t.astype(np.int32)).tobytes())
    return h.hexdigest()


def test_checksum_of_the_default_quantized_pass(default_run):
    cfg, _, _, result = default_run
    assert integer_checksum(result.tensors) == CHECKSUMS[cfg.ends]


def test_flow_summary_is_pinned(default_run):
    cfg, _, _, result = default_run
    flow = result.flow
    assert flow.shape == (2, 96, 128, 2) and flow.dtype == np.float32
    assert np.isfinite(flow).all()
    # float host layers (conv1, predict_flow2) may round differently on another BLAS: compare loosely
    # bilinear x4 upsampling of the final flow
    mean_abs, mean_u = {"float": (42.851154, -72.142105), "quantized": (14.394164, 16.372599)}[cfg.ends]
    assert np.isclose(np.abs(flow).mean(), mean_abs, rtol=1e-4)
    assert np.isclose(flow[..., 0].mean(), mean_u, rtol=1e-4)


def test_every_quantized_layer_uses_all_four_codes(default_run):
    cfg, model, _, result = default_run
    for layer in model.layers:
        if layer.output == OUT_CODES:
            counts = np.bincount(result.tensors[layer.name].ravel(), minlength=4)
            assert (counts > 0).all(), (layer.name, counts)
    # and the thresholds are non-trivial: at least one decreasing channel in every batch-normed
    # layer, none all-clamped
    for job in result.jobs:
        if job.thresholds is not None:
            if job.layer.bn:
                assert (job.thresholds.direction == 1).any(), job.layer.name
            assert (np.abs(job.thresholds.thresholds) < job.layer.acc_bound).all(), job.layer.name


def test_the_division_of_work(default_run):
    cfg, model, _, result = default_run
    host = [s.layer.name for s in result.steps if isinstance(s, HostStep)]
    if cfg.quantized_ends:
        assert host == [] and result.tensors[INPUT].dtype == np.uint8
        assert result.tensors[INPUT].shape == (2, 96, 128, 32)
        assert result.tensors["predict_flow2"].dtype == np.int32 and result.tensors["predict_flow2"].shape[-1] == 8
    else:
        assert host == ["conv1", "upsample_flow3", "predict_flow2"]
        assert result.tensors[INPUT].dtype == np.float64


def test_steps_cover_the_network_in_order(default_run):
    _, model, _, result = default_run
    assert [s.layer.name for s in result.steps] == [layer.name for layer in model.layers]
    for s in result.steps:
        assert isinstance(s, AccelJob) == s.layer.accel
        assert isinstance(s, HostStep) != s.layer.accel


def test_jobs_match_the_bitplane_formulation_and_their_sources(default_run):
    _, _, frames, result = default_run
    for job in result.jobs:
        assert np.array_equal(job.input, apply_input_op(job.layer.input_op, concat_channels(job.sources)))
        acc = conv_w1a2_bitplane(job.input, job.signs)
        assert np.array_equal(acc, job.acc), job.layer.name
        if job.layer.output == OUT_RAW:
            assert np.array_equal(job.expected, acc)
        else:
            assert np.array_equal(job.expected, apply_thresholds(acc, job.thresholds))
        assert np.abs(job.acc).max() <= job.layer.acc_bound
        if job.layer.inputs == (INPUT,):      # conv1 with quantized ends: the loader's codes
            assert np.array_equal(job.sources[0], frame_pair_codes(frames))


def test_integer_layers_equal_the_float_pipeline_of_dequantized_values(default_run):
    """Thresholds vs float BN + quantizer (or the flow quantizer) on the dequantized conv, for
    every thresholded job; the multi-plane raw job vs the float conv of its plane weights."""
    _, model, _, result = default_run
    checked = set()
    for job in result.jobs:
        plan = model.plans[job.layer.name]
        z = conv_float(job.input * (2 / 3), plan.weight, plan.bias)
        if job.layer.planes:
            y = dequantize_planes(job.acc, plan.alpha, plan.bias, job.layer.planes)
            assert np.allclose(y, z, rtol=1e-9, atol=1e-9), job.layer.name
            checked.add("planes")
            continue
        if job.thresholds is None:
            continue
        if job.layer.flow_codes:
            k = job.layer.flow_codes
            q = quantize_flow(z, job.layer.flow_range, k)
            theta = np.array([float(t) for t in flow_decision_points(job.layer.flow_range, k)])
            tie = np.repeat(np.min(np.abs(z[..., None] - theta), axis=-1) < 1e-9, k, axis=-1)
            checked.add("flow")
        else:
            y = batch_norm(z, eps=plan.eps, **plan.bn)
            q = quantize_activations(y)
            tie = np.min(np.abs(y[..., None] - activation_code_thresholds()), axis=-1) < 1e-9
        assert np.array_equal(q[~tie], job.expected[~tie]), job.layer.name
    if model.cfg.quantized_ends:
        assert checked == {"flow", "planes"}


def test_flow_codes_and_the_flow(default_run):
    """predict_flow3's codes are a thermometer of one level per component (a code is non-zero only
    after a full one), and the final flow is the dequantized multi-plane predict_flow2."""
    cfg, model, _, result = default_run
    if not cfg.quantized_ends:
        pytest.skip("float ends: no flow codes")
    codes = result.tensors["predict_flow3"].astype(int).reshape(2, 12, 16, 2, 4)
    assert (np.diff(codes, axis=-1) <= 0).all()                   # code_i >= code_{i+1}
    assert ((codes[..., 1:] == 0) | (codes[..., :-1] == 3)).all()  # a code is > 0 only above a full one
    levels = flow_levels(result.tensors["predict_flow3"], 4)
    assert levels.min() >= 0 and levels.max() <= 12
    value = model.flow_value("predict_flow3", result.tensors["predict_flow3"])
    assert np.allclose(value, -0.75 + levels * 0.125) and value.shape == (2, 12, 16, 2)
    plan = model.plans["predict_flow2"]
    flow2 = dequantize_planes(result.tensors["predict_flow2"], plan.alpha, plan.bias, 4)
    assert np.array_equal(model.flow_value("predict_flow2", result.tensors["predict_flow2"]), flow2)
    assert np.array_equal(result.flow, model.final_flow(flow2))
    assert (plan.thresholds is None and (model.plans["predict_flow3"].thresholds.direction == DIR_INCREASING).all())


def test_float_model_runs(default_run):
    cfg, model, frames, _ = default_run
    flow, tensors = FloatModel(cfg, random_weights(cfg, seed=0)).run(frames, keep_tensors=True)
    assert flow.shape == (2, 96, 128, 2) and np.isfinite(flow).all()
    assert tensors["conv3"].shape == (2, 12, 16, 256)
    if cfg.quantized_ends:
        assert np.array_equal(tensors[INPUT], frame_pair_codes(frames) * (2 / 3))
        assert tensors["predict_flow3"].shape[-1] == 8 and tensors["predict_flow3:flow"].shape[-1] == 2
        soft = tensors["predict_flow3"]
        assert soft.min() >= 0 and soft.max() <= 2
        assert tensors["predict_flow2"].shape[-1] == 2


@pytest.mark.parametrize("name", ["lmflownet_tiny.yaml", "lmflownet_tiny_float_ends.yaml",
                                  "lmflownet_d4_96x128.yaml"])
def test_other_configurations(name):
    cfg = load_network_config(os.path.join(CONFIG_DIR, name))
    model = QuantizedModel(cfg, random_weights(cfg, seed=3))
    frames, _ = random_frame_pairs(1, cfg.height, cfg.width, seed=4)
    result = model.run(frames, keep_steps=True, keep_tensors=True)
    assert result.flow.shape == (1, cfg.height, cfg.width, 2)
    assert len(result.jobs) == sum(layer.accel for layer in model.layers)
    assert len(result.jobs) == len(model.layers) or not cfg.quantized_ends


def test_bad_frames(default_run):
    _, model, _, _ = default_run
    with pytest.raises(ValueError, match="frames must be 96x128x6, not 48x64x6"):
        model.run(np.zeros((48, 64, 6), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        model.run(np.zeros((96, 128, 6), np.float32))
