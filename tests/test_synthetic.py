"""The synthetic flow generator (exact ground truth, occlusions, seeding) and the Flying Chairs reader."""

import os

import numpy as np
import pytest
from PIL import Image

from models.chairs import SPLIT_FILE, FlyingChairs, read_split, resize_frame
from models.errors import FormatError
from models.flow import write_flo
from models.synthetic import (EVAL_STREAM, OCCLUDED, OUTSIDE, TRAIN_STREAM, VAL_STREAM, VISIBLE,
                              SyntheticConfig, make_batch, make_pair, render)


def _grid(h, w):
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)


def test_deterministic_per_seed_and_streams_differ():
    a, b = make_pair(7), make_pair(7)
    for f in ("frame1", "frame2", "flow", "occlusion"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
    c = make_pair(8)
    assert not np.array_equal(a.frame1, c.frame1)
    for stream in (EVAL_STREAM, VAL_STREAM):
        assert not np.array_equal(a.frame1, make_pair(7, stream).frame1)
    frames, flows = make_batch([7, 8])
    assert frames.shape == (2, 96, 128, 6) and frames.dtype == np.uint8
    assert flows.shape == (2, 96, 128, 2) and flows.dtype == np.float32
    assert np.array_equal(frames[0], a.frames) and np.array_equal(flows[1], c.flow)


def test_flow_is_exact_on_visible_pixels():
    """Frame 2 rendered at p + flow shows exactly frame 1's colour at p where the surface stays
    visible. The flow is float32; a displacement of up to ~30 px carries a rounding error of
    ~2e-6 px, times a texture slope of at most ~(1 per texel) gives < 1e-4."""
    for index in range(4):
        p = make_pair(index)
        h, w = p.flow.shape[:2]
        pts = _grid(h, w)
        c1, l1 = render(p.scene, 1, pts)
        c2, l2 = render(p.scene, 2, pts + p.flow.reshape(-1, 2))
        vis = p.occlusion.ravel() == VISIBLE
        assert vis.mean() > 0.6
        assert np.abs(c1 - c2)[vis].max() < 1e-4
        assert np.array_equal(l1[vis], l2[vis])
        # the uint8 frame 1 is the rendering at the pixel centres
        assert np.array_equal(p.frame1.reshape(-1, 3), np.floor(c1 * 255 + 0.5).astype(np.uint8))
        # occluded pixels: another layer is on top at p + flow
        occ = p.occlusion.ravel() == OCCLUDED
        assert (l1[occ] != l2[occ]).all()


def test_warping_the_discrete_frame2_reproduces_frame1():
    """Bilinear warping of the uint8 frame 2 by the ground truth matches frame 1 on visible
    pixels away from shape edges (up to interpolation of the texture and uint8 rounding)."""
    p = make_pair(3)
    h, w = p.flow.shape[:2]
    pts = _grid(h, w) + p.flow.reshape(-1, 2)
    x, y = np.clip(pts[:, 0], 0, w - 1.001), np.clip(pts[:, 1], 0, h - 1.001)
    x0, y0 = x.astype(int), y.astype(int)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    f2 = p.frame2.astype(np.float64)
    warped = ((f2[y0, x0] * (1 - fx) + f2[y0, x0 + 1] * fx) * (1 - fy)
              + (f2[y0 + 1, x0] * (1 - fx) + f2[y0 + 1, x0 + 1] * fx) * fy)
    diff = np.abs(warped - p.frame1.reshape(-1, 3).astype(np.float64)).max(axis=1)
    vis = p.occlusion.ravel() == VISIBLE
    assert np.median(diff[vis]) < 8
    # and the zero flow is far worse: the flow carries the information
    zero = np.abs(p.frame2.astype(np.float64) - p.frame1).max(axis=2).ravel()
    assert np.median(diff[vis]) < 0.5 * np.median(zero[vis])


def test_occlusion_mask_semantics():
    cfg = SyntheticConfig()
    counts = np.zeros(3)
    for index in range(6):
        p = make_pair(index, TRAIN_STREAM, cfg)
        assert set(np.unique(p.occlusion)) <= {VISIBLE, OCCLUDED, OUTSIDE}
        h, w = p.flow.shape[:2]
        pts = _grid(h, w) + p.flow.reshape(-1, 2)
        outside = (pts[:, 0] < -0.5) | (pts[:, 0] > w - 0.5) | (pts[:, 1] < -0.5) | (pts[:, 1] > h - 0.5)
        assert np.array_equal(p.occlusion.ravel() == OUTSIDE, outside)
        counts += np.bincount(p.occlusion.ravel(), minlength=3)
    frac = counts / counts.sum()
    assert frac[VISIBLE] > 0.75 and frac[OCCLUDED] > 0.005 and frac[OUTSIDE] > 0.005


def test_flow_statistics_are_a_sensible_task():
    flows = np.stack([make_pair(i).flow for i in range(20)])
    mag = np.hypot(flows[..., 0], flows[..., 1])
    assert 2.0 < mag.mean() < 10.0
    assert mag.max() < 40.0
    # foreground shapes move differently from the background: the flow is not one affine field
    assert np.mean([np.unique(np.round(f, 3).reshape(-1, 2), axis=0).shape[0] > 100 for f in flows]) == 1.0


def test_render_rejects_a_bad_frame():
    with pytest.raises(ValueError, match="frame must be 1 or 2"):
        render(make_pair(0).scene, 3, np.zeros((1, 2)))


# ------------------------------------------------------------------------------------------------
# Flying Chairs

def _make_chairs(root, n=5, size=(8, 12), split="1,2,1,2,2"):
    data = root / "data"
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    expected = []
    for i in range(1, n + 1):
        f1 = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        f2 = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        flow = rng.normal(0, 3, (*size, 2)).astype(np.float32)
        Image.fromarray(f1).save(data / f"{i:05d}_img1.ppm")
        Image.fromarray(f2).save(data / f"{i:05d}_img2.ppm")
        write_flo(data / f"{i:05d}_flow.flo", flow)
        expected.append((f1, f2, flow))
    (root / SPLIT_FILE).write_text("\n".join(split.split(",")) + "\n")
    return expected


def test_chairs_reader_splits(tmp_path):
    expected = _make_chairs(tmp_path)
    val = FlyingChairs(tmp_path, "val")
    assert len(val) == 3 and val.indices == [2, 4, 5]
    f1, f2, flow = val[1]
    assert f1.dtype == np.uint8 and f1.shape == (8, 12, 3)
    assert np.array_equal(f1, expected[3][0]) and np.array_equal(f2, expected[3][1])
    assert np.array_equal(flow, expected[3][2])
    train = FlyingChairs(tmp_path, "train")
    assert train.indices == [1, 3]
    assert np.array_equal(train[1][2], expected[2][2])
    assert len(FlyingChairs(tmp_path / "data", "all")) == 5
    # the data directory itself, with the split file next to it
    assert FlyingChairs(tmp_path / "data", "val").indices == [2, 4, 5]
    assert read_split(tmp_path / SPLIT_FILE) == [1, 2, 1, 2, 2]


def test_chairs_resize_frame():
    frame = np.arange(8 * 12 * 3, dtype=np.uint8).reshape(8, 12, 3)
    small = resize_frame(frame, 2, 3)
    assert small.shape == (2, 3, 3) and small.dtype == np.uint8
    assert abs(int(small[0, 0, 0]) - int(frame[:4, :4, 0].mean())) <= 1
    assert resize_frame(frame, 8, 12) is frame


def test_chairs_errors(tmp_path):
    with pytest.raises(FormatError, match="directory not found"):
        FlyingChairs(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="no Flying Chairs pairs"):
        FlyingChairs(tmp_path / "empty")

    root = tmp_path / "broken"
    _make_chairs(root)
    os.remove(root / "data" / "00003_flow.flo")
    with pytest.raises(FormatError, match="00003_flow.flo is missing"):
        FlyingChairs(root)

    root = tmp_path / "gap"
    _make_chairs(root)
    for kind in ("img1.ppm", "img2.ppm", "flow.flo"):
        os.remove(root / "data" / f"00002_{kind}")
    with pytest.raises(FormatError, match="00002 is missing"):
        FlyingChairs(root, "all")

    root = tmp_path / "nosplit"
    _make_chairs(root)
    os.remove(root / SPLIT_FILE)
    with pytest.raises(FormatError, match="split file FlyingChairs_train_val.txt not found"):
        FlyingChairs(root, "val")
    assert len(FlyingChairs(root, "all")) == 5

    root = tmp_path / "short"
    _make_chairs(root, split="1,2,1")
    with pytest.raises(FormatError, match="3 entries for 5 image pairs"):
        FlyingChairs(root, "val")

    root = tmp_path / "badsplit"
    _make_chairs(root, split="1,2,3,1,1")
    with pytest.raises(FormatError, match="entry 3 is '3'"):
        FlyingChairs(root, "train")

    root = tmp_path / "badimage"
    _make_chairs(root)
    (root / "data" / "00001_img1.ppm").write_bytes(b"not an image")
    ds = FlyingChairs(root, "train")
    with pytest.raises(FormatError, match="00001_img1.ppm: cannot read image"):
        ds[0]

    with pytest.raises(ValueError, match="split must be"):
        FlyingChairs(root, "test")
