"""Optical-flow pairs made of real photographs, in numpy (+ Pillow), with exact ground truth.

The photographs are the public-domain and CC0 pictures that ship inside two PyPI packages
(scikit-image's ``skimage/data``, matplotlib's ``mpl-data/sample_data``), read from the installed
package directories: nothing is downloaded, and neither package is imported. :data:`PHOTOS`
lists them with their source and licence, split once and for all into a training set and a
held-out evaluation set (:func:`photo_names`); the evaluation photos never appear in training
pairs, as backgrounds or as moving objects.

Scene
    A stack of layers, bottom to top: a background that covers the whole plane and up to a few
    foreground objects (random star-shaped polygons and smooth blobs, mean radius 6-32 px).
    Every layer shows a region of one photograph, rotated and scaled (0.75-5 photo pixels per
    scene pixel; an image pyramid of 2x2 box averages keeps minification free of aliasing), and
    carries its own *motion field* ``W(p) = A(p) + d(p)`` from frame 1 to frame 2: an affine map
    ``A`` (rotation, scaling, translation; for an object the camera's motion composed with its
    own) plus, for some layers, a smooth non-rigid deformation ``d`` (a sum of a few Gaussian
    bumps, sigma 12-40 px, amplitude at most a quarter of sigma, so ``W`` stays one-to-one).

Rendering (backward warping with a known field)
    A layer's appearance and its shape are placed in *frame 2* (``to_photo``, ``to_shape``:
    affine maps from frame-2 coordinates). Frame 2 at a point ``q`` shows the topmost layer
    whose shape contains ``q``, coloured by bilinear interpolation of its photograph. Frame 1 at
    a point ``p`` is frame 2 warped back by every layer's field: layer ``L`` covers ``p`` when
    its shape contains ``W_L(p)``, and the topmost such layer gives the colour of ``W_L(p)``.
    Any field works this way (no inversion is needed), and brightness constancy holds exactly
    for the continuous rendering (:func:`render`).

Ground truth (:func:`make_photo_pair`)
    ``flow[y, x] = W_L(p) - p`` with ``L`` the layer visible at ``p`` in frame 1: exact at every
    pixel of frame 1 (no interpolation), occluded or not, as in Flying Chairs.

Occlusions
    ``occlusion[y, x]`` says what becomes of the surface point seen at ``p`` (the codes of
    :mod:`models.synthetic`): ``VISIBLE`` (0): ``p + flow`` is inside frame 2 and layer ``L``
    is the topmost there, so frame 2 shows that same point; ``OCCLUDED`` (1): another layer
    covers it in frame 2; ``OUTSIDE`` (2): it leaves the image.

Motion statistics (:class:`PhotoSceneConfig`; sizes in pixels of the 96x128 scene)
    The background's translation falls in one of five bins, drawn with fixed probabilities:
    zero, sub-pixel (0.05-1), small (1-4), medium (4-10) and large (10-24), log-uniform within
    a bin, in a uniform direction; half the moving backgrounds also rotate (up to 4 degrees)
    and scale (0.95-1.05) about the centre, a third deform. Each of 0-4 objects adds its own
    motion from the same bins (zero: it moves with the camera), rotation up to 15 degrees,
    scale 0.9-1.1 about its centre, a third deform. Some pairs are *static* (nothing moves,
    the frames differ only photometrically) and some *identical* (frame 2 is frame 1, byte
    for byte): the flow is then zero everywhere.

Photometric differences between the frames
    Frame 2 may get a brightness gain and offset, a contrast and a gamma change and a smooth
    illumination gradient; each frame may be blurred (Gaussian, sigma 0.3-1.2), gets sensor
    noise (read noise plus shot noise) and may be JPEG re-compressed (quality 30-95, Pillow).
    Identical pairs get none of the differences (the degradations of frame 1 are frame 2's).

Seeding
    Pair ``i`` of stream ``s`` is drawn from ``numpy.random.default_rng([s, i])``:
    :data:`PHOTO_TRAIN_STREAM` with the training photos, :data:`PHOTO_VAL_STREAM` (the
    validation watched during training, training photos too) and :data:`PHOTO_EVAL_STREAM`
    with the held-out photos. The photo split comes from the configuration (``split``).

Speed: about 2 ms per 48x64 training crop and 5 ms per 96x128 pair on one core (docs/training.md).
Pure numpy (1.24 or later) and Pillow.
"""

from dataclasses import dataclass, field
import importlib.util
import io
import math
import os

import numpy as np

from .errors import LMFlowError
from .synthetic import OCCLUDED, OUTSIDE, VISIBLE, _affine, _apply, _compose, _inside, _invert, _shape_vertices

__all__ = ["Photo", "PHOTOS", "PhotoError", "PhotoSceneConfig", "PhotoLayer", "PhotoScene", "PhotoPair",
           "PHOTO_TRAIN_STREAM", "PHOTO_EVAL_STREAM", "PHOTO_VAL_STREAM", "MOTION_BINS",
           "photo_names", "photo_path", "load_photo", "photo_pyramid", "sample_photo_scene", "render",
           "make_photo_pair", "make_photo_batch", "KIND_MOVING", "KIND_STATIC", "KIND_IDENTICAL"]

#: Seed streams of the photo pairs (distinct from the synthetic generator's 0, 1, 2).
PHOTO_TRAIN_STREAM = 10
PHOTO_EVAL_STREAM = 11
PHOTO_VAL_STREAM = 12

#: Translation bins of the motion draws, in the order of the probabilities of the configuration.
MOTION_BINS = ("zero", "subpixel", "small", "medium", "large")

KIND_MOVING, KIND_STATIC, KIND_IDENTICAL = "moving", "static", "identical"


class PhotoError(LMFlowError, OSError):
    """A photograph cannot be found or read (its package is missing or incomplete)."""


@dataclass(frozen=True)
class Photo:
    """A photograph that ships inside a PyPI package.

    Members
    -------
    name : str
    package : str
        Import name of the package that contains the file (it is located, not imported).
    distribution : str
        Its name on PyPI.
    path : str
        The file, relative to the package directory.
    split : {"train", "eval"}
    source, licence : str
        Where the picture comes from and its terms, as the package documents them.
    """

    name: str
    package: str
    distribution: str
    path: str
    split: str
    source: str
    licence: str


def _sk(name, file, split, source, licence):
    return Photo(name, "skimage", "scikit-image", f"data/{file}", split, source, licence)


#: Every photograph the generator uses, by name (docs/training.md has the same table).
PHOTOS = {p.name: p for p in [
    _sk("astronaut", "astronaut.png", "train", "NASA: astronaut Eileen Collins", "public domain"),
    _sk("brick", "brick.png", "train", "CC0Textures Bricks25 (grey, perspective-corrected)", "CC0"),
    _sk("camera", "camera.png", "train", "Lav Varshney: man with a camera (grey)", "CC0"),
    _sk("cell", "cell.png", "train", "Paul Mueller: quantitative phase image of a cell (grey)", "CC0"),
    _sk("chelsea", "chelsea.png", "train", "Stefan van der Walt: Chelsea the cat", "CC0"),
    _sk("clock", "clock_motion.png", "train", "Stefan van der Walt: motion-blurred wall clock (grey)",
        "public domain"),
    _sk("coins", "coins.png", "train", "Brooklyn Museum: Greek coins from Pompeii (grey)",
        "no known copyright restrictions"),
    _sk("grass", "grass.png", "train", "DeviantArt linolafett Grass-01 (grey crop)", "CC0"),
    _sk("hubble", "hubble_deep_field.jpg", "train", "NASA/HubbleSite: Hubble eXtreme Deep Field",
        "public domain"),
    _sk("ihc", "ihc.png", "train", "CMMI: immunohistochemistry of colonic glands",
        "no known copyright restrictions"),
    _sk("retina", "retina.jpg", "train", "Mikael Haggstrom, Wikimedia Commons: fundus photograph", "CC0"),
    _sk("rocket", "rocket.jpg", "train", "SpaceX: launch of DSCOVR on Falcon 9", "public domain"),
    _sk("text", "text.png", "train", "Wikipedia File:Corner.png: text and corners (grey)", "public domain"),
    _sk("coffee", "coffee.png", "eval", "Rachel Michetti (Pikolo Espresso Bar): coffee cup", "CC0"),
    _sk("gravel", "gravel.png", "eval", "CC0Textures Gravel04 (grey crop)", "CC0"),
    _sk("motorcycle_left", "motorcycle_left.png", "eval",
        "Middlebury 2014 stereo benchmark (Scharstein et al.): Motorcycle, left view, 1/4 size",
        "no licence stated by scikit-image (it names the benchmark as the source)"),
    _sk("motorcycle_right", "motorcycle_right.png", "eval",
        "Middlebury 2014 stereo benchmark (Scharstein et al.): Motorcycle, right view, 1/4 size",
        "no licence stated by scikit-image (it names the benchmark as the source)"),
    Photo("grace_hopper", "matplotlib", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "eval",
          "US Navy: portrait of Grace Hopper", "public domain"),
]}

#: Photos that only the real stereo evaluation uses (its second view); scenes use the others.
_SCENE_EXCLUDED = ("motorcycle_right",)


def photo_names(split):
    """Names of the photos of a split (``"train"`` or ``"eval"``) that scenes are made of."""
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', not {split!r}")
    return [n for n, p in PHOTOS.items() if p.split == split and n not in _SCENE_EXCLUDED]


def photo_path(name):
    """Path of a photograph in its installed package.

    Raises
    ------
    ValueError
        If ``name`` is not in :data:`PHOTOS`.
    PhotoError
        If the package is not installed or lacks the file.
    """
    if name not in PHOTOS:
        raise ValueError(f"photo must be one of {sorted(PHOTOS)}, not {name!r}")
    photo = PHOTOS[name]
    try:
        spec = importlib.util.find_spec(photo.package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise PhotoError(f"photo {name!r} ships with the {photo.distribution} package, which is not "
                         f"installed (pip install -e '.[train]' or '.[eval]')")
    path = os.path.join(list(spec.submodule_search_locations)[0], *photo.path.split("/"))
    if not os.path.isfile(path):
        raise PhotoError(f"{path}: photo {name!r} is missing from the installed {photo.distribution} package")
    return path


_PHOTO_CACHE = {}


def load_photo(name):
    """The photograph as uint8 RGB ``(H, W, 3)`` (grey pictures have three equal channels)."""
    if name not in _PHOTO_CACHE:
        from PIL import Image
        path = photo_path(name)
        try:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except OSError as e:
            raise PhotoError(f"{path}: cannot read photo {name!r}: {e}") from None
        _PHOTO_CACHE[name] = rgb
    return _PHOTO_CACHE[name]


_PYRAMID_CACHE = {}


def photo_pyramid(name):
    """Image pyramid of a photo: float32 RGB levels in [0, 1], each a 2x2 box average of the
    one before (odd last rows/columns dropped), down to a shorter side of 32 pixels or less.
    Pixel ``i`` of level ``k`` covers pixels ``[i * 2**k, (i + 1) * 2**k)`` of level 0."""
    if name not in _PYRAMID_CACHE:
        level = load_photo(name).astype(np.float32) / np.float32(255.0)
        levels = [level]
        while min(level.shape[:2]) > 32:
            h, w = level.shape[0] // 2 * 2, level.shape[1] // 2 * 2
            level = level[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
            levels.append(level)
        _PYRAMID_CACHE[name] = levels
    return _PYRAMID_CACHE[name]


def _mirror(x, n):
    """Reflect coordinates into ``[0, n - 1]`` (the photo mirrored about its edge pixels)."""
    if n == 1:
        return np.zeros_like(x)
    period = 2.0 * (n - 1)
    t = np.mod(x, period)
    return np.where(t > n - 1, period - t, t)


def _sample_photo(img, x, y):
    """Bilinear lookup of ``img`` (h, w, 3) at level coordinates ``x, y`` (P,), mirrored edges."""
    h, w = img.shape[:2]
    x, y = _mirror(x, w), _mirror(y, h)
    x0 = np.minimum(np.floor(x).astype(np.intp), max(w - 2, 0))
    y0 = np.minimum(np.floor(y).astype(np.intp), max(h - 2, 0))
    dx, dy = min(1, w - 1), min(1, h - 1) * w
    fx, fy = (x - x0).astype(np.float32)[:, None], (y - y0).astype(np.float32)[:, None]
    flat = img.reshape(-1, 3)
    i = y0 * w + x0
    top = flat[i] * (1 - fx) + flat[i + dx] * fx
    bottom = flat[i + dy] * (1 - fx) + flat[i + dy + dx] * fx
    return top * (1 - fy) + bottom * fy


@dataclass(frozen=True)
class PhotoSceneConfig:
    """Parameters of the photo-pair distribution (defaults: the training distribution at 96x128).

    Sizes and translations are in pixels of the ``height x width`` scene, angles in degrees,
    ``(lo, hi)`` ranges uniform unless said otherwise; ``p_*`` are probabilities.
    """

    height: int = 96
    width: int = 128
    split: str = "train"                    # which photos: "train" or "eval" (held out)
    objects: tuple = (0, 4)                 # number of moving objects, inclusive
    object_radius: tuple = (6.0, 32.0)
    zoom: tuple = (0.75, 5.0)               # photo pixels per scene pixel (log-uniform)
    bg_motion_p: tuple = (0.15, 0.15, 0.25, 0.25, 0.20)   # MOTION_BINS probabilities, background
    fg_motion_p: tuple = (0.10, 0.10, 0.25, 0.30, 0.25)   # an object's own motion
    motion_bins: tuple = ((0.0, 0.0), (0.05, 1.0), (1.0, 4.0), (4.0, 10.0), (10.0, 24.0))
    p_bg_affine: float = 0.5                # a moving background also rotates and scales
    bg_rotation: float = 4.0
    bg_scale: tuple = (0.95, 1.05)
    fg_rotation: float = 15.0
    fg_scale: tuple = (0.9, 1.1)
    p_bg_deform: float = 0.3                # smooth non-rigid deformation of a moving layer
    p_fg_deform: float = 0.3
    deform_bumps: tuple = (2, 6)
    deform_sigma: tuple = (12.0, 40.0)
    deform_amplitude: float = 0.25          # at most this fraction of a bump's sigma ...
    deform_max: float = 6.0                 # ... and of this many pixels
    p_identical: float = 0.08               # frame 2 = frame 1 byte for byte, zero flow
    p_static: float = 0.05                  # nothing moves; the frames differ photometrically
    photometric: bool = True                # photometric differences between the frames
    p_gain: float = 0.5                     # frame 2: gain x[1 -+ gain], offset +-offset
    gain: float = 0.1
    offset: float = 0.04
    p_contrast: float = 0.3                 # frame 2: contrast x[1 -+ contrast] about the mean
    contrast: float = 0.1
    p_gamma: float = 0.3                    # frame 2: gamma in [1/(1+gamma), 1+gamma]
    gamma: float = 0.15
    p_illumination: float = 0.2             # frame 2: smooth multiplicative light gradient
    illumination: float = 0.1
    p_blur: float = 0.3                     # per frame: Gaussian blur
    blur_sigma: tuple = (0.3, 1.2)
    p_noise: float = 0.7                    # per frame: read noise + shot noise (of [0, 1])
    read_noise: tuple = (0.0, 0.012)
    shot_noise: tuple = (0.0, 0.015)
    p_jpeg: float = 0.3                     # per frame: JPEG re-compression
    jpeg_quality: tuple = (30, 95)

    def __post_init__(self):
        if self.split not in ("train", "eval"):
            raise ValueError(f"split must be 'train' or 'eval', not {self.split!r}")
        for name in ("bg_motion_p", "fg_motion_p"):
            p = getattr(self, name)
            if len(p) != len(MOTION_BINS) or abs(sum(p) - 1.0) > 1e-9 or min(p) < 0:
                raise ValueError(f"{name} must be {len(MOTION_BINS)} probabilities summing to 1, not {p!r}")
        if not 0 <= self.p_identical + self.p_static <= 1:
            raise ValueError(f"p_identical + p_static must be in [0, 1], not "
                             f"{self.p_identical!r} + {self.p_static!r}")


@dataclass
class PhotoLayer:
    """One layer of a photo scene.

    Members
    -------
    photo : str
        Name in :data:`PHOTOS`.
    level : int
        Pyramid level the layer samples from.
    to_photo : numpy.ndarray, (2, 3)
        Frame-2 coordinates -> level-0 photo pixel coordinates.
    motion : numpy.ndarray, (2, 3)
        The affine part ``A`` of the motion field (frame 1 -> frame 2).
    bumps : numpy.ndarray, (K, 5)
        Deformation ``d(p) = sum_k (ax, ay)_k * exp(-|p - c_k|**2 / (2 sigma_k**2))``, rows
        ``(cx, cy, sigma, ax, ay)``; K = 0 for a rigid layer.
    vertices : numpy.ndarray or None
        Star-shaped polygon (polar angles, radii) in shape coordinates; ``None``: the background.
    to_shape : numpy.ndarray or None, (2, 3)
        Frame-2 coordinates -> shape coordinates.
    """

    photo: str
    level: int
    to_photo: np.ndarray
    motion: np.ndarray
    bumps: np.ndarray = field(default_factory=lambda: np.zeros((0, 5)))
    vertices: np.ndarray = None
    to_shape: np.ndarray = None

    def warp(self, points):
        """The motion field ``W(p) = A(p) + d(p)`` at points (P, 2): their frame-2 positions."""
        out = _apply(self.motion, points)
        for cx, cy, sigma, ax, ay in self.bumps:
            g = np.exp(-((points[:, 0] - cx) ** 2 + (points[:, 1] - cy) ** 2) / (2.0 * sigma * sigma))
            out[:, 0] += ax * g
            out[:, 1] += ay * g
        return out

    def colors(self, q):
        """Colours (P, 3), float64 in [0, 1], of frame-2 points ``q`` (P, 2) of this layer."""
        img = photo_pyramid(self.photo)[self.level]
        pp = _apply(self.to_photo, q)
        k = 2.0 ** self.level
        return _sample_photo(img, (pp[:, 0] - (k - 1) / 2) / k, (pp[:, 1] - (k - 1) / 2) / k).astype(np.float64)


@dataclass
class PhotoScene:
    height: int
    width: int
    layers: list = field(default_factory=list)
    kind: str = KIND_MOVING


@dataclass
class PhotoPair:
    """A rendered photo pair (members as :class:`models.synthetic.Pair`, plus ``kind``:
    ``"moving"``, ``"static"`` or ``"identical"``)."""

    frame1: np.ndarray
    frame2: np.ndarray
    flow: np.ndarray
    occlusion: np.ndarray
    scene: PhotoScene
    kind: str = KIND_MOVING

    @property
    def frames(self):
        """Both frames stacked on channels, (H, W, 6), the network input."""
        return np.concatenate([self.frame1, self.frame2], axis=-1)


def _loguniform(rng, lo, hi):
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _translation(rng, probs, bins):
    """A translation vector from the motion bins; returns ``(vector, bin index)``."""
    b = int(rng.choice(len(probs), p=probs))
    lo, hi = bins[b]
    if hi <= 0:
        return np.zeros(2), b
    m = rng.uniform(lo, hi) if lo < 0.5 else _loguniform(rng, lo, hi)
    a = rng.uniform(0, 2 * np.pi)
    return np.array([m * math.cos(a), m * math.sin(a)]), b


def _bumps(rng, cfg):
    """Random deformation bumps over the scene (see :class:`PhotoLayer`)."""
    k = int(rng.integers(cfg.deform_bumps[0], cfg.deform_bumps[1] + 1))
    h, w = cfg.height, cfg.width
    out = np.zeros((k, 5))
    for i in range(k):
        sigma = rng.uniform(*cfg.deform_sigma)
        amp = rng.uniform(0, min(cfg.deform_amplitude * sigma, cfg.deform_max))
        a = rng.uniform(0, 2 * np.pi)
        out[i] = (rng.uniform(-0.1 * w, 1.1 * w), rng.uniform(-0.1 * h, 1.1 * h), sigma,
                  amp * math.cos(a), amp * math.sin(a))
    return out


def _photo_view(rng, cfg, name, center, radius):
    """``to_photo`` and pyramid level for a view of ``radius`` scene pixels about frame-2 point
    ``center``, at a random rotation and zoom, placed inside the photo where it fits."""
    levels = photo_pyramid(name)
    ph, pw = levels[0].shape[:2]
    fit = (min(ph, pw) / 2.0 - 1.0) / max(radius, 1.0)
    zoom = _loguniform(rng, cfg.zoom[0], max(cfg.zoom[0], min(cfg.zoom[1], fit))) if fit > cfg.zoom[0] \
        else cfg.zoom[0]
    angle = rng.uniform(-180.0, 180.0) if cfg.split == "train" else rng.uniform(-15.0, 15.0)
    mirror = cfg.split == "train" and rng.random() < 0.5
    margin = min(radius * zoom, min(ph, pw) / 2.0)
    target = np.array([rng.uniform(margin, max(margin, pw - 1 - margin)),
                       rng.uniform(margin, max(margin, ph - 1 - margin))])
    a = math.radians(angle)
    m = zoom * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    if mirror:
        m = m @ np.diag([-1.0, 1.0])
    to_photo = np.concatenate([m, (target - m @ np.asarray(center, float))[:, None]], axis=1)
    level = int(min(len(levels) - 1, max(0, math.floor(math.log2(zoom) + 0.25))))
    return to_photo, level


def sample_photo_scene(rng, cfg=PhotoSceneConfig()):
    """Draw a random photo scene (layers, views, motions; see the module docstring)."""
    h, w = cfg.height, cfg.width
    names = photo_names(cfg.split)
    center = np.array([(w - 1) / 2, (h - 1) / 2])
    u = rng.random()
    kind = KIND_IDENTICAL if u < cfg.p_identical else KIND_STATIC if u < cfg.p_identical + cfg.p_static \
        else KIND_MOVING
    scene = PhotoScene(h, w, kind=kind)
    still = kind != KIND_MOVING

    # background: translation bin, then rotation/scale and deformation for a moving one
    t, b = (np.zeros(2), 0) if still else _translation(rng, cfg.bg_motion_p, cfg.motion_bins)
    if b > 0 and rng.random() < cfg.p_bg_affine:
        bg_motion = _affine(rng.uniform(-cfg.bg_rotation, cfg.bg_rotation), rng.uniform(*cfg.bg_scale),
                            center, t)
    else:
        bg_motion = _affine(0.0, 1.0, center, t)
    bumps = _bumps(rng, cfg) if (b > 0 and rng.random() < cfg.p_bg_deform) else np.zeros((0, 5))
    photo = names[int(rng.integers(len(names)))]
    view = math.hypot(h, w) / 2 + cfg.motion_bins[-1][1] + 6    # frame 2 and frame 1's preimage
    to_photo, level = _photo_view(rng, cfg, photo, center, view)
    scene.layers.append(PhotoLayer(photo, level, to_photo, bg_motion, bumps))

    for _ in range(int(rng.integers(cfg.objects[0], cfg.objects[1] + 1))):
        r = rng.uniform(*cfg.object_radius)
        c1 = rng.uniform([-0.1 * w, -0.1 * h], [1.1 * w, 1.1 * h])
        t, b = (np.zeros(2), 0) if still else _translation(rng, cfg.fg_motion_p, cfg.motion_bins)
        if b > 0:      # its own motion on top of the camera's, maybe deforming
            own = _affine(rng.uniform(-cfg.fg_rotation, cfg.fg_rotation), rng.uniform(*cfg.fg_scale), c1, t)
            obumps = _bumps(rng, cfg) if rng.random() < cfg.p_fg_deform else np.zeros((0, 5))
            motion = _compose(bg_motion, own)
        else:          # moves with the camera
            motion, obumps = bg_motion, bumps
        layer = PhotoLayer("", 0, None, motion, obumps)
        c2 = layer.warp(c1[None])[0]
        phi = math.radians(rng.uniform(0.0, 360.0))
        rot = np.array([[math.cos(phi), math.sin(phi)], [-math.sin(phi), math.cos(phi)]])
        layer.to_shape = np.concatenate([rot, (-rot @ c2)[:, None]], axis=1)
        layer.vertices = _shape_vertices(rng, r)
        layer.photo = names[int(rng.integers(len(names)))]
        layer.to_photo, layer.level = _photo_view(rng, cfg, layer.photo, c2, 1.4 * r)
        scene.layers.append(layer)
    return scene


def render(scene, frame, points, colors=True):
    """The continuous rendering of frame 1 or 2 of a photo scene at arbitrary points.

    Parameters
    ----------
    scene : PhotoScene
    frame : {1, 2}
    points : numpy.ndarray, (P, 2)
        ``(x, y)`` in scene pixel coordinates (pixel centres at integers).
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
    where = []                               # every layer's frame-2 position of the points
    for idx, lay in enumerate(scene.layers):
        q = points if frame == 2 else lay.warp(points)
        where.append(q)
        if lay.vertices is not None:
            layer[_inside(lay.vertices, _apply(lay.to_shape, q))] = idx
    if not colors:
        return None, layer
    out = np.zeros((len(points), 3))
    for idx, lay in enumerate(scene.layers):
        sel = np.flatnonzero(layer == idx)
        if len(sel):
            out[sel] = lay.colors(where[idx][sel])
    return out, layer


def _blur(img, sigma):
    """Separable Gaussian blur of (h, w, 3), edges reflected."""
    r = max(1, int(math.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    h, w = img.shape[:2]
    p = np.pad(img, ((r, r), (0, 0), (0, 0)), mode="reflect") if h > r else np.pad(img, ((r, r), (0, 0), (0, 0)), mode="edge")
    img = sum(k[i] * p[i:i + h] for i in range(2 * r + 1))
    p = np.pad(img, ((0, 0), (r, r), (0, 0)), mode="reflect") if w > r else np.pad(img, ((0, 0), (r, r), (0, 0)), mode="edge")
    return sum(k[i] * p[:, i:i + w] for i in range(2 * r + 1))


def _jpeg(img, quality):
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _to_uint8(x):
    return np.floor(np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _photometric(rng, cfg, c1, c2, ys, xs, identical):
    """The photometric differences of the module docstring on float frames (h, w, 3); returns
    the two uint8 frames. The draws are the same whatever the outcome, so the pair's other
    draws do not depend on them."""
    h, w = c1.shape[:2]
    d = dict(gain=rng.random() < cfg.p_gain, g=rng.uniform(1 - cfg.gain, 1 + cfg.gain),
             o=rng.uniform(-cfg.offset, cfg.offset),
             contrast=rng.random() < cfg.p_contrast, c=rng.uniform(1 - cfg.contrast, 1 + cfg.contrast),
             gamma=rng.random() < cfg.p_gamma, gm=_loguniform(rng, 1 / (1 + cfg.gamma), 1 + cfg.gamma),
             illum=rng.random() < cfg.p_illumination, ia=rng.uniform(0, cfg.illumination),
             ik=rng.uniform(0, 2 * np.pi), iph=rng.uniform(0, 2 * np.pi), il=rng.uniform(1.0, 3.0),
             blur=rng.random(2) < cfg.p_blur, bs=rng.uniform(*cfg.blur_sigma, 2),
             noise=rng.random(2) < cfg.p_noise, rn=rng.uniform(*cfg.read_noise, 2),
             sn=rng.uniform(*cfg.shot_noise, 2),
             jpeg=rng.random(2) < cfg.p_jpeg, q=rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1, 2),
             seed=int(rng.integers(2 ** 31)))
    if not cfg.photometric:
        return _to_uint8(c1), (_to_uint8(c1) if identical else _to_uint8(c2))
    nrng = np.random.default_rng(d["seed"])
    if not identical:
        if d["gain"]:
            c2 = c2 * d["g"] + d["o"]
        if d["contrast"]:
            m = c2.mean()
            c2 = (c2 - m) * d["c"] + m
        if d["gamma"]:
            c2 = np.clip(c2, 0.0, 1.0) ** d["gm"]
        if d["illum"]:
            # a plane wave of wavelength il x the scene width: a gentle gradient of light
            kx, ky = math.cos(d["ik"]), math.sin(d["ik"])
            phase = (kx * xs + ky * ys) * (2 * np.pi / (d["il"] * cfg.width)) + d["iph"]
            c2 = c2 * (1.0 + d["ia"] * np.sin(phase))[..., None]
    out = []
    for i, c in enumerate((c1, c2)):
        if identical and i == 1:
            out.append(out[0].copy())
            break
        if d["blur"][i]:
            c = _blur(c, d["bs"][i])
        if d["noise"][i]:
            sd = d["rn"][i] + d["sn"][i] * np.sqrt(np.clip(c, 0.0, 1.0))
            c = c + sd * nrng.standard_normal(c.shape)
        img = _to_uint8(c)
        if d["jpeg"][i]:
            img = _jpeg(img, d["q"][i])
        out.append(img)
    return out[0], out[1]


def make_photo_pair(index, stream=PHOTO_TRAIN_STREAM, cfg=PhotoSceneConfig(), crop=None):
    """Render pair ``index`` of seed stream ``stream`` (see the module docstring).

    Parameters
    ----------
    index, stream : int
    cfg : PhotoSceneConfig
        Its ``split`` picks the photos; use ``PhotoSceneConfig(split="eval")`` with
        :data:`PHOTO_EVAL_STREAM` for the held-out evaluation pairs.
    crop : (int, int), optional
        Render only a random ``(height, width)`` window of the ``cfg.height x cfg.width`` scene
        (its position drawn from the pair's seed), as training crops; occlusion codes are then
        relative to the window.

    Returns
    -------
    PhotoPair
    """
    rng = np.random.default_rng([int(stream), int(index)])
    scene = sample_photo_scene(rng, cfg)
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
    identical = scene.kind == KIND_IDENTICAL
    if scene.kind == KIND_MOVING:
        c1, l1 = render(scene, 1, pts)
        c2, _ = render(scene, 2, pts)
        p2 = np.empty_like(pts)
        for idx, lay in enumerate(scene.layers):
            sel = l1 == idx
            if sel.any():
                p2[sel] = lay.warp(pts[sel])
        flow = (p2 - pts).reshape(h, w, 2).astype(np.float32)
        _, l2 = render(scene, 2, p2, colors=False)
        inside = ((p2[:, 0] >= left - 0.5) & (p2[:, 0] <= left + w - 0.5)
                  & (p2[:, 1] >= top - 0.5) & (p2[:, 1] <= top + h - 0.5))
        occ = np.where(~inside, OUTSIDE, np.where(l2 != l1, OCCLUDED, VISIBLE)).astype(np.uint8).reshape(h, w)
    else:
        c1, _ = render(scene, 2, pts)        # nothing moves: frame 1 is frame 2
        c2 = c1
        flow = np.zeros((h, w, 2), np.float32)
        occ = np.full((h, w), VISIBLE, np.uint8)
    f1, f2 = _photometric(rng, cfg, c1.reshape(h, w, 3), c2.reshape(h, w, 3), ys, xs, identical)
    return PhotoPair(f1, f2, flow, occ, scene, scene.kind)


def make_photo_batch(indices, stream=PHOTO_TRAIN_STREAM, cfg=PhotoSceneConfig(), crop=None):
    """Frames (N, H, W, 6) uint8 and flows (N, H, W, 2) float32 of several photo pairs."""
    pairs = [make_photo_pair(i, stream, cfg, crop) for i in indices]
    return (np.stack([p.frames for p in pairs]), np.stack([p.flow for p in pairs]))
