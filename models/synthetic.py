"""Synthetic "flying chairs"-style optical-flow pairs, in numpy, with exact ground truth.

A scene is a stack of layers, bottom to top: a textured background that covers the whole plane
and several textured foreground shapes. Every layer carries its own texture in its own
*canonical* coordinates and two affine maps, canonical -> frame 1 (its placement) and
frame 1 -> frame 2 (its motion: a rotation and a scaling about a centre, then a translation).
Foreground motions are the background (camera) motion plus a shape's own random motion.

Rendering frame ``t`` at a point ``p`` (pixel coordinates, ``(x, y)``, pixel centres at
integers): map ``p`` back into each layer's canonical coordinates; the topmost layer whose shape
contains the point is visible there, and its texture (periodic, bilinearly interpolated) gives
the colour. Shapes have hard (aliased) edges, so a rendered pixel is exactly the texture value of
one layer.

Ground truth (:func:`make_pair`)
    ``flow[y, x] = M_L(p) - p`` with ``L`` the layer visible at ``p`` in frame 1 and ``M_L`` its
    motion. The flow is exact (affine maps, no interpolation) and defined at every pixel of
    frame 1, occluded or not, as in Flying Chairs.

Occlusions
    ``occlusion[y, x]`` says what becomes of that surface point in frame 2:
    :data:`VISIBLE` (0): ``p + flow`` lies inside frame 2 and layer ``L`` is the topmost there,
    so frame 2 at ``p + flow`` shows the same texture point (brightness constancy holds exactly
    for the continuous rendering, see :func:`render`); :data:`OCCLUDED` (1): another layer covers
    it in frame 2; :data:`OUTSIDE` (2): it leaves the image. The flow of occluded and outside
    pixels is still the true motion of their surface; the training loss and the EPE use every
    pixel (as Flying Chairs does), the mask is there for analysis and tests.

Seeding
    :func:`make_pair(index, stream)` draws its scene from ``numpy.random.default_rng([stream,
    index])``, so every pair is reproducible and addressable. Training uses :data:`TRAIN_STREAM`,
    the held-out evaluation set :data:`EVAL_STREAM` and the validation watched during training
    :data:`VAL_STREAM`: no two share a pair.

Speed: about 3-5 ms per 96x128 pair on one core, enough to feed training on the fly.
"""

from dataclasses import dataclass, field
import math

import numpy as np

__all__ = ["SyntheticConfig", "Layer", "Scene", "Pair", "VISIBLE", "OCCLUDED", "OUTSIDE",
           "TRAIN_STREAM", "EVAL_STREAM", "VAL_STREAM", "sample_scene", "render", "make_pair", "make_batch",
           "periodic_texture"]

#: Occlusion codes of :attr:`Pair.occlusion`.
VISIBLE, OCCLUDED, OUTSIDE = 0, 1, 2

#: Seed streams: training pairs, the held-out evaluation set and the validation pairs watched
#: during training never share a seed.
TRAIN_STREAM = 0
EVAL_STREAM = 1
VAL_STREAM = 2


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of the scene distribution (defaults: a sensible task at 96x128).

    Translations are in pixels, angles in degrees; ``(lo, hi)`` ranges are sampled uniformly.
    """

    height: int = 96
    width: int = 128
    shapes: tuple = (3, 7)                  # number of foreground shapes, inclusive
    shape_radius: tuple = (7.0, 26.0)       # mean radius of a shape in frame 1
    bg_translation: float = 6.0             # |tx|, |ty| of the background (camera) motion
    bg_rotation: float = 3.0
    bg_scale: tuple = (0.95, 1.05)
    fg_translation: float = 9.0             # a shape's own motion, added to the camera's
    fg_rotation: float = 12.0
    fg_scale: tuple = (0.9, 1.1)
    texture_size: int = 64                  # period of a texture in canonical pixels
    bg_texture_size: int = 128
    texture_beta: tuple = (0.8, 1.8)        # spectral slope: amplitude ~ 1/f**beta (natural images: ~1)
    texture_cutoff: tuple = (0.2, 0.5)      # highest frequency, cycles per texel (0.5 = Nyquist)


@dataclass
class Layer:
    """One layer of a scene.

    Members
    -------
    texture : numpy.ndarray, (S, S, 3) float in [0, 1], periodic
    place : numpy.ndarray, (2, 3)
        Canonical -> frame 1, ``p1 = place[:, :2] @ q + place[:, 2]``.
    motion : numpy.ndarray, (2, 3)
        Frame 1 -> frame 2.
    vertices : numpy.ndarray or None
        ``(K, 2)``: polar angles (ascending, in [0, 2*pi)) and radii of a star-shaped polygon in
        canonical coordinates; ``None`` for the background (the whole plane).
    """

    texture: np.ndarray
    place: np.ndarray
    motion: np.ndarray
    vertices: np.ndarray = None


@dataclass
class Scene:
    height: int
    width: int
    layers: list = field(default_factory=list)


@dataclass
class Pair:
    """A rendered pair.

    Members
    -------
    frame1, frame2 : numpy.ndarray of uint8, (H, W, 3)
    flow : numpy.ndarray of float32, (H, W, 2)
        ``(u, v)`` in pixels, frame 1 -> frame 2.
    occlusion : numpy.ndarray of uint8, (H, W)
        :data:`VISIBLE`, :data:`OCCLUDED` or :data:`OUTSIDE`.
    scene : Scene
    """

    frame1: np.ndarray
    frame2: np.ndarray
    flow: np.ndarray
    occlusion: np.ndarray
    scene: Scene

    @property
    def frames(self):
        """Both frames stacked on channels, (H, W, 6), the network input."""
        return np.concatenate([self.frame1, self.frame2], axis=-1)


def _affine(angle_deg, scale, center, translation):
    """``p -> R(angle) * scale * (p - center) + center + translation`` as a (2, 3) matrix."""
    a = math.radians(angle_deg)
    m = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    c = np.asarray(center, dtype=np.float64)
    return np.concatenate([m, (c + np.asarray(translation) - m @ c)[:, None]], axis=1)


def _compose(a, b):
    """``a o b`` of two (2, 3) affine maps."""
    return np.concatenate([a[:, :2] @ b[:, :2], (a[:, :2] @ b[:, 2] + a[:, 2])[:, None]], axis=1)


def _invert(a):
    m = np.linalg.inv(a[:, :2])
    return np.concatenate([m, (-m @ a[:, 2])[:, None]], axis=1)


def _apply(a, pts):
    """Apply a (2, 3) affine map to points (..., 2)."""
    return pts @ a[:, :2].T + a[:, 2]


def periodic_texture(rng, size, beta=(0.8, 1.8), cutoff=(0.2, 0.5)):
    """A random periodic colour texture (size, size, 3) in [0, 1].

    Power-law filtered noise (``1/f**beta``, random ``beta``) drawn in the Fourier domain, so it
    tiles seamlessly; two such fields mix three random colours. A third of the textures are
    posterized into flat patches with sharp edges, a few get stripes.
    """
    f = np.fft.fftfreq(size)
    fr = np.hypot(f[:, None], f[None, :])
    fr[0, 0] = 1.0
    amp = fr ** -rng.uniform(*beta) * (fr < rng.uniform(*cutoff))
    amp[0, 0] = 0.0
    noise = rng.standard_normal((2, 2, size, size))
    fields = np.fft.ifft2(amp * (noise[0] + 1j * noise[1])).real
    fields = (fields - fields.mean(axis=(1, 2), keepdims=True)) / (fields.std(axis=(1, 2), keepdims=True) + 1e-12)
    fields = 0.5 + 0.5 * np.tanh(fields * rng.uniform(0.6, 1.6))   # (2, S, S) in (0, 1)
    if rng.random() < 0.3:
        levels = rng.integers(2, 5)
        fields = np.floor(fields * levels) / (levels - 1)
    if rng.random() < 0.15:
        k = rng.integers(2, 8, size=2) * rng.choice([-1, 1], size=2)
        yy, xx = np.mgrid[0:size, 0:size] * (2 * np.pi / size)
        fields[0] = 0.5 + 0.5 * np.sin(k[0] * xx + k[1] * yy)
    colors = rng.random((3, 3))
    a, b = fields[0][..., None], fields[1][..., None]
    tex = (1 - a) * colors[0] + a * ((1 - b) * colors[1] + b * colors[2])
    return np.clip(tex, 0.0, 1.0)


def _sample_texture(tex, q):
    """Bilinear, periodic texture lookup at canonical points q (P, 2) -> (P, 3)."""
    s = tex.shape[0]
    x, y = q[:, 0], q[:, 1]
    x0f, y0f = np.floor(x), np.floor(y)
    fx, fy = (x - x0f)[:, None], (y - y0f)[:, None]
    x0 = x0f.astype(np.int64) % s
    y0 = y0f.astype(np.int64) % s
    x1, y1 = (x0 + 1) % s, (y0 + 1) % s
    return ((tex[y0, x0] * (1 - fx) + tex[y0, x1] * fx) * (1 - fy)
            + (tex[y1, x0] * (1 - fx) + tex[y1, x1] * fx) * fy)


def _inside(vertices, q):
    """Is each canonical point q (P, 2) inside the star-shaped polygon?"""
    ang, rad = vertices[:, 0], vertices[:, 1]
    out = np.zeros(len(q), dtype=bool)
    near = np.flatnonzero(q[:, 0] ** 2 + q[:, 1] ** 2 <= rad.max() ** 2)   # cheap reject
    if not len(near):
        return out
    qn = q[near]
    phi = np.arctan2(qn[:, 1], qn[:, 0]) % (2 * np.pi)
    rho = np.hypot(qn[:, 0], qn[:, 1])
    k = len(ang)
    i = (np.searchsorted(ang, phi, side="right") - 1) % k     # edge from vertex i to i+1
    j = (i + 1) % k
    a0, a1 = ang[i], ang[j] + np.where(j == 0, 2 * np.pi, 0.0)
    p = phi + np.where(phi < a0, 2 * np.pi, 0.0)
    r0, r1 = rad[i], rad[j]
    # distance along the ray at angle p to the straight edge between the two vertices
    edge = r0 * r1 * np.sin(a1 - a0) / (r0 * np.sin(p - a0) + r1 * np.sin(a1 - p))
    out[near] = rho <= edge
    return out


def _shape_vertices(rng, radius):
    """A random star-shaped polygon: a triangle..octagon or a smooth many-sided blob."""
    if rng.random() < 0.5:
        k = int(rng.integers(3, 9))
        ang = np.sort((np.arange(k) + rng.uniform(-0.3, 0.3, k)) * (2 * np.pi / k) + rng.uniform(0, 2 * np.pi)) % (2 * np.pi)
        rad = radius * rng.uniform(0.7, 1.3, k)
    else:
        k = 32
        ang = np.arange(k) * (2 * np.pi / k)
        rad = np.full(k, radius)
        for h in range(1, 4):
            rad = rad + radius * rng.uniform(0, 0.25 / h) * np.cos(h * ang + rng.uniform(0, 2 * np.pi))
    order = np.argsort(ang)
    return np.stack([ang[order], np.maximum(rad[order], 1.0)], axis=1)


def sample_scene(rng, cfg=SyntheticConfig()):
    """Draw a random scene (background and shapes, textures, placements and motions)."""
    h, w = cfg.height, cfg.width
    center = np.array([(w - 1) / 2, (h - 1) / 2])
    scene = Scene(h, w)
    bg_t = rng.uniform(-cfg.bg_translation, cfg.bg_translation, 2)
    bg_motion = _affine(rng.uniform(-cfg.bg_rotation, cfg.bg_rotation), rng.uniform(*cfg.bg_scale),
                        center, bg_t)
    bg_place = _affine(rng.uniform(0, 360), rng.uniform(0.7, 1.4), (0, 0),
                       rng.uniform(0, cfg.bg_texture_size, 2))
    tex = dict(beta=cfg.texture_beta, cutoff=cfg.texture_cutoff)
    scene.layers.append(Layer(periodic_texture(rng, cfg.bg_texture_size, **tex), bg_place, bg_motion))
    for _ in range(int(rng.integers(cfg.shapes[0], cfg.shapes[1] + 1))):
        radius = rng.uniform(*cfg.shape_radius)
        c = rng.uniform([-0.1 * w, -0.1 * h], [1.1 * w, 1.1 * h])
        place = _affine(rng.uniform(0, 360), rng.uniform(0.8, 1.25), (0, 0), c)
        own = _affine(rng.uniform(-cfg.fg_rotation, cfg.fg_rotation), rng.uniform(*cfg.fg_scale), c,
                      rng.uniform(-cfg.fg_translation, cfg.fg_translation, 2))
        motion = _compose(bg_motion, own)
        vertices = _shape_vertices(rng, radius / math.sqrt(abs(np.linalg.det(place[:, :2]))))
        scene.layers.append(Layer(periodic_texture(rng, cfg.texture_size, **tex), place, motion, vertices))
    return scene


def render(scene, frame, points, colors=True):
    """The continuous rendering of frame 1 or 2 at arbitrary points.

    Parameters
    ----------
    scene : Scene
    frame : {1, 2}
    points : numpy.ndarray, (P, 2)
        ``(x, y)`` in pixel coordinates (pixel centres at integers).
    colors : bool
        Also compute the colours (else only the visible layer).

    Returns
    -------
    colors : numpy.ndarray of float64, (P, 3) in [0, 1], or None
    layer : numpy.ndarray of int, (P,)
        Index of the visible layer (0 = background).
    """
    if frame not in (1, 2):
        raise ValueError(f"frame must be 1 or 2, not {frame!r}")
    points = np.asarray(points, dtype=np.float64)
    layer = np.zeros(len(points), dtype=np.int64)
    maps = []
    for idx, lay in enumerate(scene.layers):
        to_canon = _invert(lay.place) if frame == 1 else _invert(_compose(lay.motion, lay.place))
        maps.append(to_canon)
        if lay.vertices is not None:
            layer[_inside(lay.vertices, _apply(to_canon, points))] = idx
    if not colors:
        return None, layer
    out = np.zeros((len(points), 3))
    for idx, lay in enumerate(scene.layers):
        sel = np.flatnonzero(layer == idx)
        if len(sel):
            out[sel] = _sample_texture(lay.texture, _apply(maps[idx], points[sel]))
    return out, layer


def _to_uint8(colors, h, w):
    return np.floor(np.clip(colors, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).reshape(h, w, 3)


def make_pair(index, stream=TRAIN_STREAM, cfg=SyntheticConfig(), crop=None):
    """Render pair ``index`` of seed stream ``stream`` (see the module docstring).

    Parameters
    ----------
    crop : (int, int), optional
        Render only a random ``(height, width)`` window of the ``cfg.height x cfg.width`` scene
        (its position drawn from the pair's seed): training crops, as FlowNet trains on crops.
        Occlusion codes are then relative to the window.

    Returns
    -------
    Pair
    """
    rng = np.random.default_rng([int(stream), int(index)])
    scene = sample_scene(rng, cfg)
    h, w = cfg.height, cfg.width
    top = left = 0
    if crop is not None:
        ch, cw = crop
        if not (0 < ch <= h and 0 < cw <= w):
            raise ValueError(f"crop {crop!r} must fit in the {h}x{w} scene")
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        h, w = ch, cw
    ys, xs = np.mgrid[top:top + h, left:left + w]
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    c1, l1 = render(scene, 1, pts)
    c2, _ = render(scene, 2, pts)
    p2 = np.empty_like(pts)
    for idx, lay in enumerate(scene.layers):
        sel = l1 == idx
        p2[sel] = _apply(lay.motion, pts[sel])
    flow = (p2 - pts).reshape(h, w, 2).astype(np.float32)
    _, l2 = render(scene, 2, p2, colors=False)
    inside = ((p2[:, 0] >= left - 0.5) & (p2[:, 0] <= left + w - 0.5)
              & (p2[:, 1] >= top - 0.5) & (p2[:, 1] <= top + h - 0.5))
    occ = np.where(~inside, OUTSIDE, np.where(l2 != l1, OCCLUDED, VISIBLE)).astype(np.uint8)
    return Pair(_to_uint8(c1, h, w), _to_uint8(c2, h, w), flow, occ.reshape(h, w), scene)


def make_batch(indices, stream=TRAIN_STREAM, cfg=SyntheticConfig(), crop=None):
    """Frames (N, H, W, 6) uint8 and flows (N, H, W, 2) float32 of several pairs."""
    pairs = [make_pair(i, stream, cfg, crop) for i in indices]
    return (np.stack([p.frames for p in pairs]), np.stack([p.flow for p in pairs]))
