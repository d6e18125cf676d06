"""The photo-pair generator (models/photoscenes.py): exact ground truth, occlusions, seeding,
the train/eval split of the photographs, motion statistics, identical and static pairs."""

import dataclasses
import importlib.util

import numpy as np
import pytest

from models import photoscenes as ps
from models.photoscenes import (KIND_IDENTICAL, KIND_MOVING, KIND_STATIC, PHOTO_EVAL_STREAM, PHOTO_TRAIN_STREAM,
                                PHOTO_VAL_STREAM, PHOTOS, PhotoError, PhotoSceneConfig, make_photo_batch,
                                make_photo_pair, photo_names, render)
from models.synthetic import OCCLUDED, OUTSIDE, VISIBLE

pytestmark = pytest.mark.skipif(importlib.util.find_spec("skimage") is None,
                                reason="the photographs ship with scikit-image (pip install -e .[train])")

#: No photometric differences: frame 2 is the plain rendering, for exactness checks.
CLEAN = PhotoSceneConfig(photometric=False, p_identical=0.0, p_static=0.0)


def _grid(h, w, top=0, left=0):
    ys, xs = np.mgrid[top:top + h, left:left + w]
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)


def test_deterministic_per_seed_and_streams_differ():
    a, b = make_photo_pair(5), make_photo_pair(5)
    for f in ("frame1", "frame2", "flow", "occlusion"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert a.kind == b.kind
    assert not np.array_equal(a.frame1, make_photo_pair(6).frame1)
    for stream in (PHOTO_VAL_STREAM, PHOTO_EVAL_STREAM):
        assert not np.array_equal(a.frame1, make_photo_pair(5, stream).frame1)
    frames, flows = make_photo_batch([5, 6], crop=(48, 64))
    assert frames.shape == (2, 48, 64, 6) and frames.dtype == np.uint8
    assert flows.shape == (2, 48, 64, 2) and flows.dtype == np.float32
    assert np.array_equal(frames[0], make_photo_pair(5, crop=(48, 64)).frames)


def test_flow_is_exact_on_visible_pixels():
    """Frame 2 rendered at p + flow shows frame 1's colour at p wherever the surface stays
    visible: the backward warping is exact for the continuous rendering (float32 flow: a
    rounding error of ~2e-6 px times a photo slope of at most 1 per pixel)."""
    for index in range(6):
        p = make_photo_pair(index, cfg=CLEAN)
        assert p.kind == KIND_MOVING
        h, w = p.flow.shape[:2]
        pts = _grid(h, w)
        c1, l1 = render(p.scene, 1, pts)
        c2, l2 = render(p.scene, 2, pts + p.flow.reshape(-1, 2))
        vis = p.occlusion.ravel() == VISIBLE
        assert vis.mean() > 0.5
        assert np.abs(c1 - c2)[vis].max() < 1e-4
        assert np.array_equal(l1[vis], l2[vis])
        # the uint8 frames are the renderings at the pixel centres
        assert np.array_equal(p.frame1.reshape(-1, 3), np.floor(c1 * 255 + 0.5).astype(np.uint8))
        c2p, _ = render(p.scene, 2, pts)
        assert np.array_equal(p.frame2.reshape(-1, 3), np.floor(c2p * 255 + 0.5).astype(np.uint8))
        occ = p.occlusion.ravel() == OCCLUDED
        assert (l1[occ] != l2[occ]).all()
        # the flow is the visible layer's motion field
        for idx, lay in enumerate(p.scene.layers):
            sel = l1 == idx
            assert np.allclose(p.flow.reshape(-1, 2)[sel], lay.warp(pts[sel]) - pts[sel], atol=1e-4)


def _bilinear(img, x, y):
    h, w = img.shape[:2]
    x, y = np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)
    x0, y0 = np.minimum(np.floor(x).astype(int), w - 2), np.minimum(np.floor(y).astype(int), h - 2)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    return ((img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx) * (1 - fy)
            + (img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx) * fy)


def test_warping_the_discrete_frame2_reproduces_frame1():
    """Bilinear warping of the uint8 frame 2 by the ground truth matches frame 1 on visible
    pixels (up to interpolation and rounding), far better than no warping at all."""
    for index in range(4):
        p = make_photo_pair(index, cfg=CLEAN)
        h, w = p.flow.shape[:2]
        pts = _grid(h, w) + p.flow.reshape(-1, 2)
        warped = _bilinear(p.frame2.astype(np.float64), pts[:, 0], pts[:, 1])
        f1 = p.frame1.reshape(-1, 3).astype(np.float64)
        vis = p.occlusion.ravel() == VISIBLE
        err = np.abs(warped - f1)[vis].mean()
        still = np.abs(p.frame2.reshape(-1, 3).astype(np.float64) - f1)[vis].mean()
        assert np.median(np.abs(warped - f1)[vis]) <= 2.0
        if np.linalg.norm(p.flow, axis=-1).mean() > 1:
            assert err < 0.5 * still


def test_occlusion_codes():
    seen = np.zeros(3, bool)
    for index in range(12):
        p = make_photo_pair(index, cfg=CLEAN, crop=(48, 64))
        h, w = p.flow.shape[:2]
        q = np.stack(np.meshgrid(np.arange(w), np.arange(h)), axis=-1) + p.flow
        inside = (q[..., 0] >= -0.5) & (q[..., 0] <= w - 0.5) & (q[..., 1] >= -0.5) & (q[..., 1] <= h - 0.5)
        assert np.array_equal(p.occlusion == OUTSIDE, ~inside)
        seen |= np.bincount(p.occlusion.ravel(), minlength=3) > 0
    assert seen.all()


def test_identical_and_static_pairs():
    ident = dataclasses.replace(PhotoSceneConfig(), p_identical=1.0, p_static=0.0)
    static = dataclasses.replace(PhotoSceneConfig(), p_identical=0.0, p_static=1.0)
    differs = 0
    for index in range(4):
        p = make_photo_pair(index, cfg=ident)
        assert p.kind == KIND_IDENTICAL
        assert np.array_equal(p.frame1, p.frame2)
        assert not p.flow.any() and (p.occlusion == VISIBLE).all()
        s = make_photo_pair(index, cfg=static)
        assert s.kind == KIND_STATIC and not s.flow.any()
        differs += not np.array_equal(s.frame1, s.frame2)
    assert differs >= 3          # noise, blur, JPEG or brightness nearly always


def test_photometric_differences_keep_the_geometry():
    a = make_photo_pair(3, cfg=CLEAN)
    b = make_photo_pair(3, cfg=dataclasses.replace(CLEAN, photometric=True))
    assert np.array_equal(a.flow, b.flow) and np.array_equal(a.occlusion, b.occlusion)
    assert not np.array_equal(a.frame2, b.frame2) or not np.array_equal(a.frame1, b.frame1)


def test_the_evaluation_photos_never_appear_in_training_scenes():
    train, held_out = set(photo_names("train")), set(photo_names("eval"))
    assert train and held_out and not train & held_out
    assert {p.split for p in PHOTOS.values()} == {"train", "eval"}
    assert "motorcycle_right" not in held_out and PHOTOS["motorcycle_right"].split == "eval"
    used = set()
    for index in range(40):
        used |= {lay.photo for lay in make_photo_pair(index, crop=(8, 8)).scene.layers}
    assert used <= train and len(used) >= 8
    used = set()
    for index in range(20):
        used |= {lay.photo for lay in make_photo_pair(index, PHOTO_EVAL_STREAM,
                                                      PhotoSceneConfig(split="eval"), crop=(8, 8)).scene.layers}
    assert used <= held_out


def test_motion_statistics_cover_every_magnitude():
    pairs = [make_photo_pair(i, crop=(48, 64)) for i in range(80)]
    kinds = [p.kind for p in pairs]
    assert kinds.count(KIND_IDENTICAL) >= 3 and kinds.count(KIND_STATIC) >= 2
    mag = np.linalg.norm(np.stack([p.flow for p in pairs]), axis=-1)
    frac = [((mag >= a) & (mag < b)).mean() for a, b in [(0, 1e-9), (1e-9, 1), (1, 4), (4, 10), (10, 24), (24, 99)]]
    assert all(f > 0.01 for f in frac[:5]), frac
    assert mag.max() > 24
    # independently moving objects: some pairs have several distinct motion fields
    assert sum(len(p.scene.layers) > 1 for p in pairs) > 40
    assert sum(len(lay.bumps) > 0 for p in pairs for lay in p.scene.layers) > 12   # non-rigid


def test_deformation_fields_are_one_to_one():
    """The Jacobian of every motion field stays positive definite-ish (det > 0): W is a
    diffeomorphism, so frame 1 shows every surface point at most once."""
    cfg = PhotoSceneConfig()
    rng = np.random.default_rng(0)
    for _ in range(200):
        b = ps._bumps(rng, cfg)
        lay = ps.PhotoLayer("astronaut", 0, np.eye(2, 3), np.eye(2, 3), b)
        pts = rng.uniform([-20, -20], [148, 116], (400, 2))
        e = 1e-3
        dx = (lay.warp(pts + [e, 0]) - lay.warp(pts - [e, 0])) / (2 * e)
        dy = (lay.warp(pts + [0, e]) - lay.warp(pts - [0, e])) / (2 * e)
        assert (dx[:, 0] * dy[:, 1] - dx[:, 1] * dy[:, 0]).min() > 0.2


def test_missing_package_and_bad_names(monkeypatch):
    with pytest.raises(ValueError, match="photo must be one of"):
        ps.photo_path("lena")
    with pytest.raises(ValueError, match="split must be 'train' or 'eval'"):
        photo_names("test")
    with pytest.raises(ValueError, match="split must be"):
        PhotoSceneConfig(split="val")
    with pytest.raises(ValueError, match="bg_motion_p must be 5 probabilities"):
        PhotoSceneConfig(bg_motion_p=(0.5, 0.5))
    with pytest.raises(ValueError, match="crop"):
        make_photo_pair(0, crop=(200, 10))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real_find_spec(name, *a))
    with pytest.raises(PhotoError, match="'grace_hopper' ships with the matplotlib package, which is not installed"):
        ps.photo_path("grace_hopper")


def test_rendering_speed_is_recorded_not_asserted():
    """Smoke test of the crop path used in training (timings are in docs/training.md)."""
    p = make_photo_pair(1, PHOTO_TRAIN_STREAM, crop=(48, 64))
    assert p.frames.shape == (48, 64, 6)
