import math
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from models.errors import FormatError
from models.flow import (FLO_MAGIC, MAX_FLO_DIMENSION, UNKNOWN_FLOW_THRESH, colorwheel, endpoint_error,
                         endpoint_error_map, flow_to_color, read_flo, resize_flow, unknown_flow_mask,
                         write_flo, write_flow_png, write_png)


def flo_bytes(width, height, data=b"", magic=FLO_MAGIC):
    return magic + np.array([width, height], dtype="<i4").tobytes() + data


def listing(directory):
    return sorted(os.listdir(directory))


# ----------------------------------------------------------------------------------------------
# .flo round trip and layout

@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 9), st.integers(1, 9), st.just(2)),
                  elements=st.floats(width=32, allow_nan=True, allow_infinity=True)))
def test_flo_roundtrip_bit_exact(tmp_path_factory, flow):
    path = tmp_path_factory.mktemp("flo") / "f.flo"
    write_flo(path, flow)
    back = read_flo(path)
    assert back.dtype == np.float32 and back.shape == flow.shape
    assert back.tobytes() == flow.tobytes()            # bit-exact, NaN payloads included
    assert back.flags.writeable


@pytest.mark.parametrize("shape", [(1, 1, 2), (1, 7, 2), (5, 1, 2), (3, 8, 2), (64, 48, 2)])
def test_flo_roundtrip_shapes(tmp_path, shape):
    flow = np.random.default_rng(sum(shape)).normal(0, 20, shape).astype(np.float32)
    write_flo(tmp_path / "f.flo", flow)
    assert np.array_equal(read_flo(str(tmp_path / "f.flo")), flow)
    assert listing(tmp_path) == ["f.flo"]                # no temporary file left


def test_flo_byte_layout(tmp_path):
    flow = np.zeros((2, 3, 2), dtype=np.float32)        # H=2, W=3
    flow[0, 1] = (1.5, -2.0)                             # row 0, column 1
    flow[1, 2] = (7.0, 8.0)
    write_flo(tmp_path / "f.flo", flow)
    raw = (tmp_path / "f.flo").read_bytes()
    assert raw[:4] == b"PIEH"
    assert np.frombuffer(raw[:4], "<f4")[0] == np.float32(202021.25)
    assert np.frombuffer(raw[4:12], "<i4").tolist() == [3, 2]       # width before height
    assert len(raw) == 12 + 2 * 3 * 2 * 4
    values = np.frombuffer(raw[12:], "<f4")
    # row-major, u and v interleaved: pixel (y, x) at 2 * (y * W + x)
    assert values[2 * (0 * 3 + 1):][:2].tolist() == [1.5, -2.0]
    assert values[2 * (1 * 3 + 2):][:2].tolist() == [7.0, 8.0]
    assert np.count_nonzero(values) == 4


def test_flo_converts_dtypes(tmp_path):
    big_endian = np.arange(12, dtype=">f8").reshape(2, 3, 2)
    write_flo(tmp_path / "a.flo", big_endian)
    assert np.array_equal(read_flo(tmp_path / "a.flo"), big_endian.astype(np.float32))
    assert read_flo(tmp_path / "a.flo").dtype == np.dtype("=f4")
    write_flo(tmp_path / "b.flo", np.full((1, 2, 2), 1e300))     # beyond float32: stored as inf
    assert np.isinf(read_flo(tmp_path / "b.flo")).all()


def test_flo_reads_handmade_file(tmp_path):
    data = np.array([1, 2, 3, 4], dtype="<f4").tobytes()        # W=2, H=1
    (tmp_path / "h.flo").write_bytes(flo_bytes(2, 1, data))
    assert read_flo(tmp_path / "h.flo").tolist() == [[[1.0, 2.0], [3.0, 4.0]]]


# ----------------------------------------------------------------------------------------------
# bad .flo files

BAD_FILES = {
    "foreign": (b"\x89PNG\r\n\x1a\n" + bytes(40), r"found b'\\x89PNG'"),
    "empty": (b"", r"expected at least 12 bytes .* found 0"),
    "short header": (b"PIEH\x02\x00", r"expected at least 12 bytes .* found 6"),
    "zero width": (flo_bytes(0, 4), r"width 0 is outside 1\.\.100000"),
    "negative height": (flo_bytes(4, -3), r"height -3 is outside"),
    "huge width": (flo_bytes(MAX_FLO_DIMENSION + 1, 1), r"width 100001 is outside"),
    "truncated": (flo_bytes(3, 2, bytes(40)), r"truncated.* needs 60 bytes, found 52"),
    "header only": (flo_bytes(1, 1), r"truncated.* needs 20 bytes, found 12"),
    "trailing": (flo_bytes(1, 1, bytes(8) + b"junk"), r"needs 20 bytes, found 24 \(4 bytes after"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_flo_bad_files(tmp_path, case):
    content, message = BAD_FILES[case]
    path = tmp_path / f"bad_{case.replace(' ', '_')}.flo"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=message) as info:
        read_flo(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_flo_foreign_magic_shows_value(tmp_path):
    path = tmp_path / "x.flo"
    path.write_bytes(np.array([1.0], "<f4").tobytes() + bytes(20))
    with pytest.raises(FormatError, match=r"magic must be b'PIEH'.*found b'\\x00\\x00\\x80\?' \(float32 1\)"):
        read_flo(path)


def test_flo_missing_file_and_directory(tmp_path):
    with pytest.raises(FormatError, match="not found") as info:
        read_flo(tmp_path / "nope.flo")
    assert str(tmp_path / "nope.flo") in str(info.value)
    with pytest.raises(FormatError, match="cannot read") as info:
        read_flo(tmp_path)
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("flow", [np.zeros((3, 3)), np.zeros((2, 2, 3)), np.zeros((1, 2, 2, 2)),
                                  np.zeros((0, 4, 2)), np.zeros((2, 2, 2), dtype=complex),
                                  np.zeros((2, 2, 2), dtype=bool), [[["a", "b"]]]])
def test_write_flo_rejects_bad_arrays(tmp_path, flow):
    path = tmp_path / "out.flo"
    with pytest.raises(ValueError) as info:
        write_flo(path, flow)
    assert str(path) in str(info.value)
    assert listing(tmp_path) == []


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    flow = np.ones((4, 5, 2), dtype=np.float32)
    path = tmp_path / "f.flo"

    def broken_replace(src, dst):
        assert os.path.getsize(src) == 12 + 4 * 5 * 8     # complete temporary file, next to dst
        assert os.path.dirname(src) == str(tmp_path)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        write_flo(path, flow)
    assert listing(tmp_path) == []
    monkeypatch.undo()

    # an existing file survives a failed overwrite untouched
    write_flo(path, flow)
    before = path.read_bytes()
    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_flo(path, np.zeros((4, 5, 2)))
    with pytest.raises(ValueError):
        write_flo(path, np.zeros((4, 5)))
    assert listing(tmp_path) == ["f.flo"] and path.read_bytes() == before


def test_failed_png_write_leaves_nothing(tmp_path, monkeypatch):
    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        write_flow_png(tmp_path / "f.png", np.ones((3, 4, 2)))
    assert listing(tmp_path) == []


def test_write_into_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nodir"):
        write_flo(tmp_path / "nodir" / "f.flo", np.zeros((1, 1, 2)))


def test_written_file_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_flo(tmp_path / "f.flo", np.zeros((1, 1, 2)))
    finally:
        os.umask(old)
    assert (tmp_path / "f.flo").stat().st_mode & 0o777 == 0o644


# ----------------------------------------------------------------------------------------------
# end-point error

def test_endpoint_error_hand_computed():
    gt = np.zeros((1, 3, 2), dtype=np.float32)
    pred = np.array([[[3, 4], [0, 0], [-1, 1]]], dtype=np.float32)
    # per-pixel errors: 5, 0, sqrt(2)
    assert np.allclose(endpoint_error_map(pred, gt), [[5.0, 0.0, math.sqrt(2)]])
    assert endpoint_error(pred, gt) == pytest.approx((5 + 0 + math.sqrt(2)) / 3)
    gt2 = np.array([[[1, 1], [2, 0], [0, 0]]])
    # (3-1, 4-1) -> sqrt(13); (-2, 0) -> 2; (-1, 1) -> sqrt(2)
    assert endpoint_error(pred, gt2) == pytest.approx((math.sqrt(13) + 2 + math.sqrt(2)) / 3)
    assert endpoint_error(gt2, pred) == endpoint_error(pred, gt2)
    assert isinstance(endpoint_error(pred, gt), float)


def test_endpoint_error_with_mask():
    gt = np.zeros((2, 2, 2))
    pred = np.array([[[3, 4], [6, 8]], [[0, 1], [np.nan, 0]]])
    valid = np.array([[True, False], [True, False]])
    assert endpoint_error(pred, gt, valid) == pytest.approx((5 + 1) / 2)
    assert endpoint_error(pred, gt, ~np.array([[False, False], [False, True]])) == pytest.approx(16 / 3)
    assert math.isnan(endpoint_error(pred, gt))
    # the usual mask: known ground truth
    gt_unknown = np.array([[[0, 0], [1e10, 0]], [[0, 0], [np.nan, 0]]])
    assert endpoint_error(pred, gt_unknown, ~unknown_flow_mask(gt_unknown)) == pytest.approx(3.0)


@pytest.mark.parametrize("pred, gt, valid, message", [
    (np.zeros((2, 3, 2)), np.zeros((3, 2, 2)), None, "same shape"),
    (np.zeros((2, 3)), np.zeros((2, 3)), None, r"predicted flow must have shape \(H, W, 2\)"),
    (np.zeros((2, 3, 2)), np.zeros((2, 3, 3)), None, "ground-truth flow must have shape"),
    (np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), np.ones((3, 2), bool), "valid mask"),
    (np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), np.ones((2, 3)), "boolean"),
    (np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), np.zeros((2, 3), bool), "no pixels"),
    (np.zeros((0, 3, 2)), np.zeros((0, 3, 2)), None, "no pixels"),
])
def test_endpoint_error_rejects(pred, gt, valid, message):
    with pytest.raises(ValueError, match=message):
        endpoint_error(pred, gt, valid)


# ----------------------------------------------------------------------------------------------
# colour wheel

def test_colorwheel_segments():
    w = colorwheel()
    assert w.shape == (55, 3) and w.dtype == np.uint8
    assert w[0].tolist() == [255, 0, 0]          # red
    assert w[15].tolist() == [255, 255, 0]       # yellow: after 15 red-yellow steps
    assert w[21].tolist() == [0, 255, 0]         # green: after 6 yellow-green
    assert w[25].tolist() == [0, 255, 255]       # cyan: after 4 green-cyan
    assert w[36].tolist() == [0, 0, 255]         # blue: after 11 cyan-blue
    assert w[49].tolist() == [255, 0, 255]       # magenta: after 13 blue-magenta
    assert w[54].tolist() == [255, 0, 255 - 255 * 5 // 6]
    assert w[7].tolist() == [255, 255 * 7 // 15, 0]
    # one channel changes per step, never by more than a segment's step
    assert (np.abs(np.diff(w.astype(int), axis=0)) > 0).sum(axis=1).max() == 1


def test_flow_to_color_known_directions():
    flow = np.array([[[1, 0], [-1, 0], [0, 1], [0, -1], [0.5, 0], [0, 0]]], dtype=np.float32)
    rgb = flow_to_color(flow)                    # max magnitude 1: radius 1 is the wheel's rim
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 6, 3)
    assert rgb[0, 0].tolist() == [255, 0, 0]     # +u: angle -1, wheel colour 0, pure red
    # -u: angle 0, wheel position 27 = cyan-blue step 2: G = 255 - floor(255*2/11) = 209
    assert rgb[0, 1].tolist() == [0, 209, 255]
    # +v: angle -1/2, position 13.5 between G = 221 and 238: floor(229.5) = 229, yellow
    assert rgb[0, 2].tolist() == [255, 229, 0]
    # -v: angle 1/2, position 40.5 between R = 78 and 98 (blue-magenta): violet
    assert rgb[0, 3].tolist() == [88, 0, 255]
    # half radius: desaturated halfway to white, 1 - 0.5 * (1 - 0) = 0.5 -> floor(127.5)
    assert rgb[0, 4].tolist() == [255, 127, 127]
    assert rgb[0, 5].tolist() == [255, 255, 255]  # zero flow is white
    # v = -0.0: atan2(+0.0, -1) = +pi, angle +1, the last wheel colour (position 54, no wrap)
    assert flow_to_color(np.array([[[1.0, -0.0]]])).tolist() == [[[255, 0, 43]]]


def test_flow_to_color_normalization_and_saturation():
    flow = np.array([[[2, 0], [1, 0], [0, 0]]])
    assert flow_to_color(flow).tolist() == [[[255, 0, 0], [255, 127, 127], [255, 255, 255]]]
    # with max_flow=1, radius 2 lies beyond the rim: dimmed, floor(255 * 0.75) = 191
    assert flow_to_color(flow, max_flow=1).tolist() == [[[191, 0, 0], [255, 0, 0], [255, 255, 255]]]
    assert flow_to_color(flow, max_flow=4)[0, 0].tolist() == [255, 127, 127]
    # scale invariance of the default normalization
    rng = np.random.default_rng(3)
    f = rng.normal(0, 1, (6, 7, 2))
    assert np.array_equal(flow_to_color(f), flow_to_color(f * 8))
    assert flow_to_color(np.zeros((2, 2, 2))).tolist() == np.full((2, 2, 3), 255).tolist()


def test_flow_to_color_unknown_is_black():
    flow = np.array([[[1, 0], [np.nan, 0], [0, 2e9], [-np.inf, 0], [UNKNOWN_FLOW_THRESH, 0]]])
    rgb = flow_to_color(flow)
    assert rgb[0, 1:4].tolist() == [[0, 0, 0]] * 3
    assert unknown_flow_mask(flow).tolist() == [[False, True, True, True, False]]
    # unknown pixels do not enter the normalization: the known 1e9 pixel is the maximum
    assert rgb[0, 4].tolist() == [255, 0, 0]
    assert rgb[0, 0].tolist() == [255, 254, 254]  # 1e-9 of the way from white to red
    rgb = flow_to_color(flow[:, :4])
    assert rgb[0, 0].tolist() == [255, 0, 0]     # the only known pixel sets the scale
    assert flow_to_color(np.full((2, 3, 2), np.nan)).tolist() == np.zeros((2, 3, 3)).tolist()


def reference_color(fx, fy, wheel):
    """Pixel-by-pixel transcription of the reference computeColor (colour wheel of floats)."""
    rad = math.sqrt(fx * fx + fy * fy)
    a = math.atan2(-fy, -fx) / math.pi
    fk = (a + 1.0) / 2.0 * (len(wheel) - 1)
    k0 = int(fk)
    k1 = (k0 + 1) % len(wheel)
    f = fk - k0
    pix = []
    for b in range(3):
        col = (1 - f) * wheel[k0][b] / 255.0 + f * wheel[k1][b] / 255.0
        col = 1 - rad * (1 - col) if rad <= 1 else col * 0.75
        pix.append(int(255.0 * col))
    return pix


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.sampled_from([None, 0.5, 3.0]))
def test_flow_to_color_matches_scalar_reference(seed, max_flow):
    flow = np.random.default_rng(seed).normal(0, 2, (4, 5, 2))
    wheel = colorwheel().astype(int).tolist()
    m = max_flow or np.hypot(flow[..., 0], flow[..., 1]).max()
    expected = [[reference_color(u / m, v / m, wheel) for u, v in row] for row in flow.tolist()]
    got = flow_to_color(flow, max_flow).astype(int)
    assert np.abs(got - np.array(expected)).max() <= 1    # last-ulp differences of atan2 at most


@pytest.mark.parametrize("flow, max_flow, message", [
    (np.zeros((2, 2)), None, r"shape \(H, W, 2\)"),
    (np.zeros((2, 2, 2)), 0, "positive"),
    (np.zeros((2, 2, 2)), -1.0, "positive"),
    (np.zeros((2, 2, 2)), float("nan"), "positive"),
    (np.zeros((2, 2, 2)), "big", "positive"),
])
def test_flow_to_color_rejects(flow, max_flow, message):
    with pytest.raises(ValueError, match=message):
        flow_to_color(flow, max_flow)


# ----------------------------------------------------------------------------------------------
# PNG files

def test_flow_png_roundtrip(tmp_path):
    flow = np.random.default_rng(0).normal(0, 5, (9, 13, 2)).astype(np.float32)
    flow[2, 3] = np.nan
    write_flow_png(tmp_path / "f.png", flow)
    with Image.open(tmp_path / "f.png") as im:
        assert im.format == "PNG" and im.mode == "RGB" and im.size == (13, 9)
        assert np.array_equal(np.asarray(im), flow_to_color(flow))
    write_flow_png(tmp_path / "g.png", flow, max_flow=2.0)
    with Image.open(tmp_path / "g.png") as im:
        assert np.array_equal(np.asarray(im), flow_to_color(flow, max_flow=2.0))
    assert listing(tmp_path) == ["f.png", "g.png"]


def test_write_png(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (5, 1, 3), dtype=np.uint8)
    write_png(str(tmp_path / "a.png"), rgb[::-1])                   # non-contiguous input
    with Image.open(tmp_path / "a.png") as im:
        assert np.array_equal(np.asarray(im), rgb[::-1])
    for bad in [rgb.astype(np.float32), rgb[..., :2], rgb[..., 0], np.zeros((0, 2, 3), np.uint8)]:
        with pytest.raises(ValueError, match="b.png"):
            write_png(tmp_path / "b.png", bad)
    with pytest.raises(ValueError, match="c.png.*positive"):
        write_flow_png(tmp_path / "c.png", np.zeros((2, 2, 2)), max_flow=0)
    assert listing(tmp_path) == ["a.png"]


# ----------------------------------------------------------------------------------------------
# resizing

@pytest.mark.parametrize("method", ["nearest", "bilinear"])
def test_resize_constant_flow_scales_vectors(method):
    flow = np.broadcast_to(np.array([2.0, 3.0]), (4, 6, 2))
    out = resize_flow(flow, 8, 3, method)
    assert out.shape == (8, 3, 2) and out.dtype == np.float32
    assert np.allclose(out[..., 0], 2.0 * 3 / 6)      # u scaled by the width ratio
    assert np.allclose(out[..., 1], 3.0 * 8 / 4)      # v scaled by the height ratio


@pytest.mark.parametrize("method", ["nearest", "bilinear"])
def test_resize_identity(method):
    flow = np.random.default_rng(2).normal(0, 3, (5, 7, 2)).astype(np.float32)
    assert np.array_equal(resize_flow(flow, 5, 7, method), flow)


def test_resize_nearest_duplicates_and_subsamples():
    flow = np.random.default_rng(4).normal(0, 3, (3, 4, 2))
    up = resize_flow(flow, 6, 12, "nearest")
    expected = np.repeat(np.repeat(flow, 2, axis=0), 3, axis=1) * [3, 2]
    assert np.allclose(up, expected)
    down = resize_flow(up, 3, 4, "nearest")             # picks a pixel of each 2x3 block
    assert np.allclose(down, flow)


def test_resize_bilinear_interpolates():
    # a linear ramp u = x is reproduced between the pixel centres; edges are replicated
    flow = np.zeros((1, 4, 2))
    flow[0, :, 0] = [0, 1, 2, 3]
    out = resize_flow(flow, 1, 8)
    # sample points (x + 0.5) / 2 - 0.5 = -0.25, 0.25, ... 3.25, clamped to 0..3; u doubled
    assert np.allclose(out[0, :, 0], 2 * np.clip(np.arange(8) / 2 - 0.25, 0, 3))
    assert np.allclose(out[..., 1], 0)
    # 2x2 average when halving
    flow = np.arange(16, dtype=float).reshape(2, 4, 2)
    assert np.allclose(resize_flow(flow, 1, 2), [[[(0 + 2 + 8 + 10) / 4 / 2, (1 + 3 + 9 + 11) / 4 / 2],
                                                  [(4 + 6 + 12 + 14) / 4 / 2, (5 + 7 + 13 + 15) / 4 / 2]]])


def test_resize_unknown_flow():
    flow = np.ones((4, 4, 2))
    flow[1, 1] = (1e10, 0)
    near = resize_flow(flow, 2, 2, "nearest")           # 1e10 * 0.5 would look "known"
    assert near[0, 0].tolist() != [5e9, 0]
    assert np.isnan(near[0, 0]).all() and not np.isnan(near[1:, 1:]).any()
    bil = resize_flow(flow, 8, 8, "bilinear")
    # output rows/columns 1..4 sample between input pixels 0..2: those touching pixel 1 are NaN
    assert np.isnan(bil[1:5, 1:5]).all()
    assert not np.isnan(bil[5:]).any() and not np.isnan(bil[:, 5:]).any()
    assert not np.isnan(bil[0]).any() and not np.isnan(bil[:, 0]).any()
    same = resize_flow(flow, 4, 4, "bilinear")         # zero weights let no NaN through
    assert np.isnan(same).any(axis=-1).tolist() == (np.arange(16).reshape(4, 4) == 5).tolist()


@pytest.mark.parametrize("args, message", [
    ((np.zeros((2, 2, 2)), 0, 2), "height must be >= 1"),
    ((np.zeros((2, 2, 2)), 2, 2.5), "width must be an integer"),
    ((np.zeros((2, 2, 2)), True, 2), "height must be an integer"),
    ((np.zeros((2, 2, 2)), 2, 2, "cubic"), "method"),
    ((np.zeros((2, 0, 2)), 2, 2), "empty"),
    ((np.zeros((2, 2)), 2, 2), r"\(H, W, 2\)"),
])
def test_resize_rejects(args, message):
    with pytest.raises(ValueError, match=message):
        resize_flow(*args)
