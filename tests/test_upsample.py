"""The final flow's bilinear x4 upsampling (golden model, float model, training framework)."""

import numpy as np
import pytest

from models.flow import resize_flow
from models.golden import FloatModel, QuantizedModel, upsample_flow_bilinear
from models.generate import random_frame_pairs, random_weights
from models.network import CONFIG_DIR, load_network_config


def test_matches_resize_flow_without_vector_scaling():
    """Same sampling as models.flow.resize_flow (an independent implementation), whose vectors
    are scaled by the size ratio: divide that back out."""
    flow = np.random.default_rng(0).normal(0, 5, (2, 6, 8, 2)).astype(np.float32)
    up = upsample_flow_bilinear(flow, 4)
    assert up.shape == (2, 24, 32, 2) and up.dtype == np.float32
    for i in range(2):
        ref = resize_flow(flow[i], 24, 32) / 4.0
        assert np.allclose(up[i], ref, rtol=0, atol=1e-5)


def test_linear_ramps_are_reproduced_inside_and_clamped_at_the_edges():
    y, x = np.mgrid[0:6, 0:8].astype(np.float32)
    flow = np.stack([x, 2 * y], axis=-1)
    up = upsample_flow_bilinear(flow, 4)
    sx = np.clip((np.arange(32) + 0.5) / 4 - 0.5, 0, 7)
    sy = np.clip((np.arange(24) + 0.5) / 4 - 0.5, 0, 5)
    assert np.array_equal(up[..., 0], np.broadcast_to(sx, (24, 32)).astype(np.float32))
    assert np.array_equal(up[..., 1], np.broadcast_to(2 * sy[:, None], (24, 32)).astype(np.float32))
    # not nearest: a step edge becomes a ramp
    step = np.zeros((1, 4, 2), np.float32)
    step[0, 2:, 0] = 8.0
    row = upsample_flow_bilinear(step, 4)[0, :, 0]
    assert len(np.unique(row)) > 2


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="factor must be a positive integer"):
        upsample_flow_bilinear(np.zeros((2, 2, 2)), 0)
    with pytest.raises(ValueError, match=r"flow must be \(\.\.\., H, W, C\)"):
        upsample_flow_bilinear(np.zeros((2, 2)), 4)


def test_models_use_it():
    cfg = load_network_config(f"{CONFIG_DIR}/lmflownet_tiny.yaml")
    w = random_weights(cfg, seed=3)
    frames, _ = random_frame_pairs(1, cfg.height, cfg.width, seed=4)
    q = QuantizedModel(cfg, w).run(frames, keep_tensors=True)
    pf2 = QuantizedModel(cfg, w).flow_value("predict_flow2", q.tensors["predict_flow2"])
    assert np.array_equal(q.flow, upsample_flow_bilinear(pf2.astype(np.float32) * np.float32(cfg.flow_scale), 4))
    flow, tensors = FloatModel(cfg, w).run(frames, keep_tensors=True)
    assert np.array_equal(flow, upsample_flow_bilinear(
        tensors["predict_flow2"].astype(np.float32) * np.float32(cfg.flow_scale), 4))


def test_torch_upsampling_matches():
    torch = pytest.importorskip("torch")
    from train.model import upsample_flow
    flow = np.random.default_rng(1).normal(0, 5, (2, 5, 7, 2))
    t = torch.from_numpy(flow).permute(0, 3, 1, 2)
    got = upsample_flow(t, 4).permute(0, 2, 3, 1).numpy()
    assert np.allclose(got, upsample_flow_bilinear(flow, 4), rtol=0, atol=1e-5)
