"""The real-image part of ``make eval`` (:mod:`train.eval`): held-out photo pairs, identical and
static frames, the real Middlebury stereo pair, error by motion magnitude, and a picture grid.

Everything here runs on numpy, Pillow and OpenCV; the quantized model is
:class:`models.golden.QuantizedModel`, the hardware's arithmetic.
"""

import dataclasses
import os

import numpy as np

from models.flow import flow_to_color
from models.golden import upsample_flow_bilinear
from models.ops import upsample_nearest
from models.photoscenes import PHOTO_EVAL_STREAM, PhotoSceneConfig, load_photo, make_photo_pair, photo_path

__all__ = ["BINS", "bin_labels", "eval_photo_config", "stereo_pair", "joint_bilateral_upsample",
           "RealEvaluation", "write_grid", "wheel_image"]

#: Edges of the ground-truth magnitude bins (pixels at the network's resolution).
BINS = (0.0, 1.0, 3.0, 8.0, 16.0, np.inf)

#: Seed-stream offsets of the identical and static pairs (from the held-out photos too).
IDENTICAL_OFFSET = 1_000_000
STATIC_OFFSET = 2_000_000


def bin_labels(edges=BINS):
    return [f"{a:g}-{b:g}" if np.isfinite(b) else f"{a:g}+" for a, b in zip(edges[:-1], edges[1:])]


def eval_photo_config(height, width, kind="moving"):
    """The held-out photo-pair distribution: ``"moving"`` (the training motion statistics, no
    static pairs), ``"identical"`` (frame 2 = frame 1) or ``"static"`` (nothing moves, the frames
    differ by noise, blur, JPEG and brightness)."""
    base = PhotoSceneConfig(height=height, width=width, split="eval")
    p = {"moving": (0.0, 0.0), "identical": (1.0, 0.0), "static": (0.0, 1.0)}[kind]
    return dataclasses.replace(base, p_identical=p[0], p_static=p[1])


def stereo_pair(height, width):
    """The Middlebury 2014 Motorcycle pair (left -> right) at ``height x width``.

    The frames are reduced with an area filter; the flow is ``(-disparity, 0)``, the disparity
    area-averaged over the known full-resolution pixels and scaled by ``width / 741``; a pixel
    is valid when at least 3/4 of the area under it has a known disparity.

    Returns
    -------
    frames : numpy.ndarray, uint8 (height, width, 6)
    flow : numpy.ndarray, float32 (height, width, 2)
    valid : numpy.ndarray, bool (height, width)
    """
    import cv2
    left, right = load_photo("motorcycle_left"), load_photo("motorcycle_right")
    disp_file = os.path.join(os.path.dirname(photo_path("motorcycle_left")), "motorcycle_disp.npz")
    with np.load(disp_file) as z:
        disp = z[z.files[0]].astype(np.float64)
    known = np.isfinite(disp)
    d = np.where(known, disp, 0.0)
    size = (width, height)
    area = cv2.INTER_AREA
    frames = np.concatenate([cv2.resize(left, size, interpolation=area),
                             cv2.resize(right, size, interpolation=area)], axis=-1)
    k = cv2.resize(known.astype(np.float64), size, interpolation=area)
    dd = cv2.resize(d, size, interpolation=area) / np.maximum(k, 1e-12)
    flow = np.zeros((height, width, 2), np.float32)
    flow[..., 0] = -dd * (width / disp.shape[1])
    return frames, flow, k >= 0.75


def joint_bilateral_upsample(flow, guide, factor=4, sigma_space=1.0, sigma_range=0.08):
    """Joint bilateral upsampling (Kopf et al., 2007) of a low-resolution flow (h, w, 2) to
    ``factor`` times its size, guided by frame 1 (grey, full resolution, ``guide`` uint8 RGB).

    Every output pixel averages the 4x4 low-resolution neighbours around its position with
    weights ``exp(-d**2 / 2 sigma_space**2) * exp(-(g - g_q)**2 / 2 sigma_range**2)``, ``d`` the
    distance in low-resolution pixels, ``g`` its grey level and ``g_q`` the neighbour's
    (area-averaged guide), both in [0, 1]. Vectors are not rescaled (they are input pixels).
    """
    h, w = flow.shape[:2]
    grey = guide.astype(np.float32).mean(axis=-1) / 255.0
    H, W = h * factor, w * factor
    low = grey[:H, :W].reshape(h, factor, w, factor).mean(axis=(1, 3))
    sy = (np.arange(H) + 0.5) / factor - 0.5
    sx = (np.arange(W) + 0.5) / factor - 0.5
    y0, x0 = np.floor(sy).astype(np.intp), np.floor(sx).astype(np.intp)
    num = np.zeros((H, W, 2), np.float32)
    den = np.zeros((H, W), np.float32)
    for dy in range(-1, 3):
        qy = y0 + dy
        wy = np.exp(-((sy - qy) ** 2) / (2 * sigma_space ** 2)).astype(np.float32)
        qy = np.clip(qy, 0, h - 1)
        for dx in range(-1, 3):
            qx = x0 + dx
            wx = np.exp(-((sx - qx) ** 2) / (2 * sigma_space ** 2)).astype(np.float32)
            qx = np.clip(qx, 0, w - 1)
            g = low[qy[:, None], qx[None, :]]
            wgt = wy[:, None] * wx[None, :] * np.exp(-((grey - g) ** 2) / (2 * sigma_range ** 2))
            num += wgt[..., None] * flow[qy[:, None], qx[None, :]]
            den += wgt
    return num / den[..., None]


def _epe(pred, gt):
    return np.linalg.norm(pred.astype(np.float64) - gt.astype(np.float64), axis=-1)


class RealEvaluation:
    """Accumulates the real-image figures over batches of pairs.

    Parameters
    ----------
    methods : sequence of str
        The methods of :data:`train.eval.METHODS`.
    """

    UPSAMPLINGS = ("nearest", "bilinear", "guided")

    def __init__(self, methods):
        self.methods = tuple(methods)
        nb = len(BINS) - 1
        self.sum = dict.fromkeys(self.methods, 0.0)
        self.bin_sum = {m: np.zeros(nb) for m in self.methods}
        self.bin_count = np.zeros(nb)
        self.up_sum = dict.fromkeys(self.UPSAMPLINGS, 0.0)
        self.count = 0
        self.floor = {k: dict.fromkeys(self.methods, 0.0) for k in ("identical", "static")}
        self.floor_count = dict.fromkeys(("identical", "static"), 0)
        self.stereo = None

    def add_moving(self, gt, preds, qlow, frame1):
        """One moving pair: ground truth, ``{method: flow}``, the quantized model's predict_flow2
        (x flow_scale, low resolution) and frame 1 (for the guided upsampling)."""
        mag = np.linalg.norm(gt, axis=-1)
        idx = np.digitize(mag, BINS[1:-1])
        self.bin_count += np.bincount(idx.ravel(), minlength=len(BINS) - 1)
        for m in self.methods:
            e = _epe(preds[m], gt)
            self.sum[m] += float(e.mean())
            self.bin_sum[m] += np.bincount(idx.ravel(), weights=e.ravel(), minlength=len(BINS) - 1)
        f = gt.shape[0] // qlow.shape[0]
        ups = {"nearest": upsample_nearest(qlow, f), "bilinear": upsample_flow_bilinear(qlow, f),
               "guided": joint_bilateral_upsample(qlow, frame1, f)}
        for k, u in ups.items():
            self.up_sum[k] += float(_epe(u, gt).mean())
        self.count += 1

    def add_still(self, kind, preds):
        """One identical or static pair: mean |flow| of every method."""
        for m in self.methods:
            self.floor[kind][m] += float(np.linalg.norm(preds[m].astype(np.float64), axis=-1).mean())
        self.floor_count[kind] += 1

    def set_stereo(self, gt, valid, preds):
        self.stereo = {m: float(_epe(preds[m], gt)[valid].mean()) for m in self.methods}
        self.stereo["valid_pixels"] = float(valid.mean())

    def result(self):
        """The ``real`` entry of eval.json (rounded to 4 decimals)."""
        r = lambda v: round(float(v), 4)   # noqa: E731
        n = max(self.count, 1)
        out = {m: r(self.sum[m] / n) for m in self.methods}
        out["pairs"] = self.count
        for kind, key in (("identical", "noise_floor"), ("static", "static_floor")):
            c = max(self.floor_count[kind], 1)
            out[key] = {m: r(self.floor[kind][m] / c) for m in self.methods}
        out["floor_pairs"] = dict(self.floor_count)
        total = max(self.bin_count.sum(), 1)
        out["bins"] = {}
        for i, label in enumerate(bin_labels()):
            c = self.bin_count[i]
            entry = {m: (r(self.bin_sum[m][i] / c) if c else None) for m in self.methods}
            entry["pixels"] = r(c / total)
            out["bins"][label] = entry
        out["upsampling"] = {k: r(v / n) for k, v in self.up_sum.items()}
        if self.stereo is not None:
            out["stereo"] = {k: r(v) for k, v in self.stereo.items()}
        return out


def wheel_image(size):
    """The colour wheel of :func:`models.flow.flow_to_color` as a ``size x size`` RGB tile."""
    c = (np.arange(size) + 0.5) / size * 2 - 1
    u, v = np.meshgrid(c, c)
    f = np.stack([u, v], axis=-1)
    inside = np.hypot(u, v) <= 1
    img = flow_to_color(np.where(inside[..., None], f, 0.0), max_flow=1.0)
    img[~inside] = 255
    return img


def write_grid(path, rows, columns, scale=2):
    """A picture grid PNG: one row per pair, tiles ``{column: uint8 RGB (h, w, 3)}``, a header
    with the column names and the colour wheel. Written to a temporary file and renamed."""
    from PIL import Image, ImageDraw

    h, w = next(iter(rows[0]["tiles"].values())).shape[:2]
    th, tw = h * scale, w * scale
    pad, head, label_w = 4, 22, 0
    wheel = wheel_image(th)
    width = len(columns) * (tw + pad) + th + pad
    height = head + len(rows) * (th + pad + 14)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for j, name in enumerate(columns):
        draw.text((label_w + j * (tw + pad) + 4, 5), name, fill=(0, 0, 0))
    draw.text((label_w + len(columns) * (tw + pad) + 4, 5), "colour wheel", fill=(0, 0, 0))
    for i, row in enumerate(rows):
        y = head + i * (th + pad + 14)
        for j, name in enumerate(columns):
            tile = Image.fromarray(row["tiles"][name]).resize((tw, th), Image.NEAREST)
            canvas.paste(tile, (label_w + j * (tw + pad), y))
        draw.text((4, y + th + 1), row["caption"], fill=(0, 0, 0))
        if i == 0:
            canvas.paste(Image.fromarray(wheel), (label_w + len(columns) * (tw + pad), y))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    canvas.save(tmp, format="PNG", optimize=True)
    os.replace(tmp, path)


def grid_row(frames, gt, preds, methods, caption, valid=None, max_flow=None):
    """Tiles of one grid row: frames, the truth and every method's flow, on a common scale (the
    truth's largest magnitude, at least 1 px, unless ``max_flow``); unknown truth is black."""
    mag = np.linalg.norm(gt, axis=-1)
    if valid is not None:
        mag = np.where(valid, mag, 0.0)
    m = max_flow or max(1.0, float(mag.max()))
    truth = gt.copy()
    if valid is not None:
        truth[~valid] = np.nan
    tiles = {"frame 1": frames[..., :3], "frame 2": frames[..., 3:],
             "truth": flow_to_color(truth, max_flow=m)}
    for k in methods:
        tiles[k] = flow_to_color(preds[k], max_flow=m)
    return {"tiles": tiles, "caption": f"{caption} (rim of the wheel = {m:.1f} px)"}


def photo_pairs(height, width, n, kind="moving"):
    """``n`` held-out photo pairs of a kind (see :func:`eval_photo_config`), deterministic."""
    cfg = eval_photo_config(height, width, kind)
    offset = {"moving": 0, "identical": IDENTICAL_OFFSET, "static": STATIC_OFFSET}[kind]
    for i in range(n):
        yield make_photo_pair(offset + i, PHOTO_EVAL_STREAM, cfg)
