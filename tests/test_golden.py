import hashlib
import os

import numpy as np
import pytest

from models.conv import conv_float, conv_w1a2_bitplane
from models.golden import AccelJob, FloatModel, HostStep, QuantizedModel, apply_input_op
from models.generate import random_frame_pairs, random_weights
from models.network import CONFIG_DIR, OUT_CODES, OUT_RAW, load_network_config
from models.ops import concat_channels
from models.quant import activation_code_thresholds, quantize_activations
from models.thresholds import apply_thresholds, batch_norm

# sha256 over every integer tensor (codes and accumulators) of the default network's quantized pass,
# weights seed 0, frames seed 100. A change here means the golden results changed.
DEFAULT_CHECKSUM = "b6610ebf82bfd400a52113836de0d34a5b6456f9864942703c5818274e5bff49"


@pytest.fixture(scope="module")
def default_run():
    cfg = load_network_config()
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
    _, _, _, result = default_run
    assert integer_checksum(result.tensors) == DEFAULT_CHECKSUM


def test_flow_summary_is_pinned(default_run):
    _, _, _, result = default_run
    flow = result.flow
    assert flow.shape == (2, 96, 128, 2) and flow.dtype == np.float32
    assert np.isfinite(flow).all()
    # float host layers (conv1, predict_flow2) may round differently on another BLAS: compare loosely
    assert np.isclose(np.abs(flow).mean(), 42.851154, rtol=1e-4)   # bilinear x4 upsampling
    assert np.isclose(flow[..., 0].mean(), -72.142105, rtol=1e-4)


def test_every_quantized_layer_uses_all_four_codes(default_run):
    cfg, model, _, result = default_run
    for layer in model.layers:
        if layer.output == OUT_CODES:
            counts = np.bincount(result.tensors[layer.name].ravel(), minlength=4)
            assert (counts > 0).all(), (layer.name, counts)
    # and the thresholds are non-trivial: at least one decreasing channel, none all-clamped
    for job in result.jobs:
        if job.thresholds is not None:
            assert (job.thresholds.direction == 1).any(), job.layer.name
            assert (np.abs(job.thresholds.thresholds) < job.layer.acc_bound).all(), job.layer.name


def test_steps_cover_the_network_in_order(default_run):
    _, model, _, result = default_run
    assert [s.layer.name for s in result.steps] == [layer.name for layer in model.layers]
    for s in result.steps:
        assert isinstance(s, AccelJob) == s.layer.accel
        assert isinstance(s, HostStep) != s.layer.accel


def test_jobs_match_the_bitplane_formulation_and_their_sources(default_run):
    _, _, _, result = default_run
    for job in result.jobs:
        assert np.array_equal(job.input, apply_input_op(job.layer.input_op, concat_channels(job.sources)))
        acc = conv_w1a2_bitplane(job.input, job.signs)
        assert np.array_equal(acc, job.acc), job.layer.name
        if job.layer.output == OUT_RAW:
            assert np.array_equal(job.expected, acc)
        else:
            assert np.array_equal(job.expected, apply_thresholds(acc, job.thresholds))
        assert np.abs(job.acc).max() <= job.layer.acc_bound


def test_integer_layers_equal_the_float_pipeline_of_dequantized_values(default_run):
    """Thresholds vs float BN + quantizer on the dequantized conv, for every thresholded job."""
    _, model, _, result = default_run
    for job in result.jobs:
        if job.thresholds is None:
            continue
        plan = model.plans[job.layer.name]
        z = conv_float(job.input * (2 / 3), plan.weight, plan.bias)
        y = batch_norm(z, eps=plan.eps, **plan.bn)
        q = quantize_activations(y)
        tie = np.min(np.abs(y[..., None] - activation_code_thresholds()), axis=-1) < 1e-9
        assert np.array_equal(q[~tie], job.expected[~tie]), job.layer.name


def test_float_model_runs(default_run):
    cfg, model, frames, _ = default_run
    flow, tensors = FloatModel(cfg, random_weights(cfg, seed=0)).run(frames, keep_tensors=True)
    assert flow.shape == (2, 96, 128, 2) and np.isfinite(flow).all()
    assert tensors["conv3"].shape == (2, 12, 16, 256)


@pytest.mark.parametrize("name", ["lmflownet_tiny.yaml", "lmflownet_d4_96x128.yaml"])
def test_other_configurations(name):
    cfg = load_network_config(os.path.join(CONFIG_DIR, name))
    model = QuantizedModel(cfg, random_weights(cfg, seed=3))
    frames, _ = random_frame_pairs(1, cfg.height, cfg.width, seed=4)
    result = model.run(frames, keep_steps=True)
    assert result.flow.shape == (1, cfg.height, cfg.width, 2)
    assert len(result.jobs) == sum(layer.accel for layer in model.layers)


def test_bad_frames(default_run):
    _, model, _, _ = default_run
    with pytest.raises(ValueError, match="frames must be 96x128x6, not 48x64x6"):
        model.run(np.zeros((48, 64, 6), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        model.run(np.zeros((96, 128, 6), np.float32))
