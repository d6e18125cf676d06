"""Optical-flow utilities: Middlebury ``.flo`` files, end-point error, colour-wheel pictures, resizing.

A flow field is an array of shape ``(H, W, 2)``: ``flow[y, x] = (u, v)``, the displacement in
pixels of pixel ``(x, y)`` from the first frame to the second, ``u`` along the width (to the
right) and ``v`` along the height (downwards).

Unknown flow
    Middlebury marks pixels whose flow is unknown (occluded, outside the ground truth) with a
    component larger than ``1e9`` in magnitude (:data:`UNKNOWN_FLOW_THRESH`); NaN is used for
    the same purpose by other data sets. :func:`unknown_flow_mask` finds both (and infinities);
    :func:`flow_to_color` paints them black and leaves them out of the normalization.

``.flo`` file format (Middlebury, Baker et al., "A Database and Evaluation Methodology for
Optical Flow"), all little-endian:

======  =========  =================================================================
bytes   type       content
======  =========  =================================================================
0-3     float32    magic ``202021.25``, i.e. the bytes ``b"PIEH"``
4-7     int32      width ``W``
8-11    int32      height ``H``
12-     float32    ``H * W * 2`` values, row-major, ``u`` and ``v`` interleaved per pixel
======  =========  =================================================================

The file holds nothing after the data. Widths and heights outside ``1..MAX_FLO_DIMENSION`` are
rejected as corrupt.
"""

import operator
import os

import numpy as np

from .errors import FormatError

__all__ = ["FLO_MAGIC", "FLO_HEADER_BYTES", "MAX_FLO_DIMENSION", "UNKNOWN_FLOW_THRESH",
           "read_flo", "write_flo", "unknown_flow_mask", "endpoint_error_map", "endpoint_error",
           "colorwheel", "flow_to_color", "write_png", "write_flow_png", "resize_flow"]

FLO_MAGIC = b"PIEH"                 # float32 202021.25, little-endian
FLO_HEADER_BYTES = 12               # magic, width, height
MAX_FLO_DIMENSION = 100_000         # larger widths or heights are taken as a corrupt header
UNKNOWN_FLOW_THRESH = 1e9           # |u| or |v| above this means "unknown flow" (Middlebury)

# Segments of the Middlebury colour wheel in hue order (red-yellow, yellow-green, green-cyan,
# cyan-blue, blue-magenta, magenta-red): (colours, channel held at 255, channel that moves,
# whether it rises 0 -> 255 or falls 255 -> 0), channels numbered R=0, G=1, B=2.
_WHEEL_SEGMENTS = ((15, 0, 1, True), (6, 1, 0, False), (4, 1, 2, True),
                   (11, 2, 1, False), (13, 2, 0, True), (6, 0, 2, False))


# ----------------------------------------------------------------------------------------------
# Writing files atomically

def _atomic_write(path, write):
    """Call ``write(f)`` on a new file next to ``path``, then rename it onto ``path``.

    The temporary file is created with ``O_EXCL`` and the usual ``0o666 & ~umask`` permissions;
    on any failure (including ``KeyboardInterrupt``) it is removed and ``path`` is untouched.
    """
    directory, base = os.path.split(os.path.abspath(path))
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{os.urandom(4).hex()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
        except OSError as e:
            raise OSError(e.errno, f"cannot write: {e.strerror}", path) from None
    else:  # pragma: no cover - 100 collisions of 32 random bits
        raise FileExistsError(f"{path}: cannot create a temporary file in {directory}")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------------------------
# .flo files

def read_flo(path):
    """Read a Middlebury ``.flo`` optical-flow file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    numpy.ndarray
        float32, shape ``(H, W, 2)``, ``[..., 0]`` = u (horizontal), ``[..., 1]`` = v
        (vertical). Unknown flow is returned as stored (NaN or values above
        :data:`UNKNOWN_FLOW_THRESH`); see :func:`unknown_flow_mask`.

    Raises
    ------
    FormatError
        Naming the file: it is not found or cannot be read, it is shorter than its 12-byte
        header, its magic is not ``b"PIEH"`` (the message shows what was found), its width or
        height lies outside ``1..MAX_FLO_DIMENSION``, or its size differs from the
        ``12 + H*W*8`` bytes the header announces (truncated data or trailing bytes).
    """
    path = os.fspath(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FormatError(f"{path}: .flo file not found") from None
    except OSError as e:
        raise FormatError(f"{path}: cannot read .flo file: {e.strerror}") from None
    with f:
        try:
            header = f.read(FLO_HEADER_BYTES)
            size = os.fstat(f.fileno()).st_size
        except OSError as e:
            raise FormatError(f"{path}: cannot read .flo file: {e.strerror}") from None
        if len(header) >= 4 and header[:4] != FLO_MAGIC:
            value = np.frombuffer(header[:4], dtype="<f4")[0]
            raise FormatError(f"{path}: not a .flo file: the magic must be {FLO_MAGIC!r} (float32 "
                              f"202021.25), found {header[:4]!r} (float32 {value:g})")
        if len(header) < FLO_HEADER_BYTES:
            raise FormatError(f"{path}: truncated .flo file: expected at least {FLO_HEADER_BYTES} "
                              f"bytes (the header), found {len(header)}")
        width, height = (int(n) for n in np.frombuffer(header, dtype="<i4", count=2, offset=4))
        for name, n in (("width", width), ("height", height)):
            if not 1 <= n <= MAX_FLO_DIMENSION:
                raise FormatError(f"{path}: corrupt .flo header: {name} {n} is outside "
                                  f"1..{MAX_FLO_DIMENSION}")
        expected = FLO_HEADER_BYTES + height * width * 2 * 4
        if size < expected:
            raise FormatError(f"{path}: truncated .flo file: a {width}x{height} flow needs {expected} "
                              f"bytes, found {size}")
        if size > expected:
            raise FormatError(f"{path}: trailing data in .flo file: a {width}x{height} flow needs "
                              f"{expected} bytes, found {size} ({size - expected} bytes after the data)")
        try:
            data = f.read(expected - FLO_HEADER_BYTES)
        except OSError as e:
            raise FormatError(f"{path}: cannot read .flo file: {e.strerror}") from None
    if len(data) != expected - FLO_HEADER_BYTES:     # the file changed while being read
        raise FormatError(f"{path}: truncated .flo file: a {width}x{height} flow needs {expected} "
                          f"bytes, found {FLO_HEADER_BYTES + len(data)}")
    return np.frombuffer(data, dtype="<f4").reshape(height, width, 2).astype(np.float32)


def _check_flow(flow, what="flow"):
    """Return ``flow`` as an array after checking it is a real ``(H, W, 2)`` field."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"{what} must have shape (H, W, 2), not {flow.shape!r}")
    if flow.dtype.kind not in "fiu":
        raise ValueError(f"{what} must hold real numbers, not {flow.dtype}")
    return flow


def write_flo(path, flow):
    """Write a flow field as a Middlebury ``.flo`` file, atomically.

    The data go to a temporary file in the same directory, renamed onto ``path`` once
    complete, so a failed write leaves no partial file (and an existing ``path`` unchanged).

    Parameters
    ----------
    path : str or os.PathLike
    flow : array_like, shape ``(H, W, 2)``
        Real numbers, stored as little-endian float32 (values beyond the float32 range become
        infinities). Non-finite values are allowed: NaN, infinities and, by the Middlebury
        convention, any component above :data:`UNKNOWN_FLOW_THRESH` (``1e9``) in magnitude mark
        unknown flow.

    Raises
    ------
    ValueError
        Naming the file, if ``flow`` is not ``(H, W, 2)``, is not real-valued, or has a width or
        height outside ``1..MAX_FLO_DIMENSION``; nothing is written then.
    OSError
        If the file cannot be written.
    """
    path = os.fspath(path)
    try:
        flow = _check_flow(flow)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    height, width = flow.shape[:2]
    for name, n in (("width", width), ("height", height)):
        if not 1 <= n <= MAX_FLO_DIMENSION:
            raise ValueError(f"{path}: flow {name} {n} is outside 1..{MAX_FLO_DIMENSION}")
    with np.errstate(over="ignore", invalid="ignore"):
        data = flow.astype("<f4").tobytes()
    header = FLO_MAGIC + np.array([width, height], dtype="<i4").tobytes()

    def write(f):
        f.write(header)
        f.write(data)

    _atomic_write(path, write)


# ----------------------------------------------------------------------------------------------
# End-point error

def unknown_flow_mask(flow):
    """Pixels whose flow is unknown: a component is NaN or larger than ``1e9`` in magnitude.

    Parameters
    ----------
    flow : array_like, shape ``(H, W, 2)``

    Returns
    -------
    numpy.ndarray
        bool, shape ``(H, W)``; infinities count as unknown.
    """
    flow = _check_flow(flow)
    with np.errstate(invalid="ignore"):
        return (np.isnan(flow) | (np.abs(flow) > UNKNOWN_FLOW_THRESH)).any(axis=-1)


def endpoint_error_map(pred, gt):
    """Per-pixel end-point error ``sqrt((u_pred - u_gt)**2 + (v_pred - v_gt)**2)``.

    Parameters
    ----------
    pred, gt : array_like, shape ``(H, W, 2)``
        Predicted and ground-truth flow, same shape.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(H, W)``. NaN where either flow is NaN; unknown ground truth is not
        masked here (pass ``~unknown_flow_mask(gt)`` as ``valid`` to :func:`endpoint_error`).

    Raises
    ------
    ValueError
        If either array is not ``(H, W, 2)`` or their shapes differ.
    """
    pred = _check_flow(pred, "predicted flow")
    gt = _check_flow(gt, "ground-truth flow")
    if pred.shape != gt.shape:
        raise ValueError(f"predicted flow {pred.shape!r} and ground-truth flow {gt.shape!r} "
                         f"must have the same shape")
    d = pred.astype(np.float64) - gt.astype(np.float64)
    return np.hypot(d[..., 0], d[..., 1])


def endpoint_error(pred, gt, valid=None):
    """Average end-point error (EPE): the mean over pixels of :func:`endpoint_error_map`.

    Parameters
    ----------
    pred, gt : array_like, shape ``(H, W, 2)``
        Predicted and ground-truth flow, same shape.
    valid : array_like of bool, shape ``(H, W)``, optional
        Pixels to average over (for example ``~unknown_flow_mask(gt)``); all by default.

    Returns
    -------
    float
        In pixels. NaN if a NaN flow value lies inside the averaged pixels.

    Raises
    ------
    ValueError
        If the shapes differ or are not ``(H, W, 2)``, if ``valid`` is not a boolean
        ``(H, W)`` array, or if no pixel is averaged (empty flow or an all-False mask).
    """
    epe = endpoint_error_map(pred, gt)
    if valid is not None:
        valid = np.asarray(valid)
        if valid.dtype != np.bool_:
            raise ValueError(f"valid must be a boolean mask, not {valid.dtype} (use valid.astype(bool))")
        if valid.shape != epe.shape:
            raise ValueError(f"valid mask {valid.shape!r} must have the flow's shape {epe.shape!r}")
        epe = epe[valid]
    if epe.size == 0:
        raise ValueError("end-point error over no pixels: the flow is empty or the valid mask is all False")
    return float(epe.mean())


# ----------------------------------------------------------------------------------------------
# Colour-wheel visualization

def colorwheel():
    """The Middlebury colour wheel: 55 hues from red through yellow, green, cyan, blue, magenta.

    Six segments, each moving one channel while another stays at 255, with
    ``ramp(i) = floor(255 * i / n)``, ``i = 0 .. n-1``:

    ====  ==  ===================================
    from  n   colours
    ====  ==  ===================================
    RY    15  R = 255, G = ramp (red to yellow)
    YG    6   G = 255, R = 255 - ramp
    GC    4   G = 255, B = ramp
    CB    11  B = 255, G = 255 - ramp
    BM    13  B = 255, R = ramp
    MR    6   R = 255, B = 255 - ramp
    ====  ==  ===================================

    Returns
    -------
    numpy.ndarray
        uint8, shape ``(55, 3)``, RGB; row 0 is pure red.
    """
    segments = []
    for n, full, moving, rising in _WHEEL_SEGMENTS:
        ramp = (255 * np.arange(n)) // n
        seg = np.zeros((n, 3), dtype=np.int64)
        seg[:, full] = 255
        seg[:, moving] = ramp if rising else 255 - ramp
        segments.append(seg)
    return np.concatenate(segments).astype(np.uint8)


def flow_to_color(flow, max_flow=None):
    """Colour-code a flow field with the Middlebury colour wheel (Baker et al.).

    The hue gives the direction and the saturation the magnitude: for a pixel with flow
    ``(u, v)`` divided by the normalization ``m``, the radius is ``r = sqrt(u**2 + v**2)`` and the
    angle ``a = atan2(-v, -u) / pi`` in ``[-1, 1]`` picks the fractional position
    ``(a + 1) / 2 * 54`` on the 55-colour :func:`colorwheel`, linearly interpolated between the
    two neighbouring colours (the last wraps to the first). With ``c`` a channel in ``[0, 1]``:
    inside the unit circle (``r <= 1``) the colour is desaturated towards white,
    ``c = 1 - r * (1 - c)``; beyond it (saturated) the colour is dimmed, ``c = 0.75 * c``. The
    byte is ``floor(255 * c)``.

    So zero flow is white, ``+u`` (rightwards) at radius 1 is red, ``-u`` cyan-blue, ``+v``
    (downwards) yellow and ``-v`` violet.

    Parameters
    ----------
    flow : array_like, shape ``(H, W, 2)``
    max_flow : float, optional
        Normalization ``m``: flow of this magnitude reaches the rim of the wheel, larger flow is
        dimmed. By default the largest magnitude among the known pixels (1 if all are zero or
        unknown), so the fastest pixel is fully saturated.

    Returns
    -------
    numpy.ndarray
        uint8, shape ``(H, W, 3)``, RGB. Unknown flow (:func:`unknown_flow_mask`) is black.

    Raises
    ------
    ValueError
        If ``flow`` is not a real ``(H, W, 2)`` array or ``max_flow`` is not a positive finite
        number.
    """
    flow = _check_flow(flow)
    unknown = unknown_flow_mask(flow)
    f = np.where(unknown[..., None], 0.0, flow.astype(np.float64))
    u, v = f[..., 0], f[..., 1]
    rad = np.hypot(u, v)
    if max_flow is None:
        m = float(rad.max(initial=0.0))
        if m == 0.0:
            m = 1.0
    else:
        try:
            m = float(max_flow)
        except (TypeError, ValueError):
            raise ValueError(f"max_flow must be a positive number, not {max_flow!r}") from None
        if not (np.isfinite(m) and m > 0):
            raise ValueError(f"max_flow must be a positive finite number, not {max_flow!r}")
    u, v, rad = u / m, v / m, rad / m

    wheel = colorwheel().astype(np.float64) / 255.0
    ncols = len(wheel)
    a = np.arctan2(-v, -u) / np.pi
    fk = (a + 1.0) / 2.0 * (ncols - 1)
    k0 = np.floor(fk).astype(np.intp)
    k1 = (k0 + 1) % ncols
    frac = (fk - k0)[..., None]
    col = (1.0 - frac) * wheel[k0] + frac * wheel[k1]
    inside = (rad <= 1.0)[..., None]
    col = np.where(inside, 1.0 - rad[..., None] * (1.0 - col), col * 0.75)
    rgb = np.clip(np.floor(255.0 * col), 0, 255).astype(np.uint8)
    rgb[unknown] = 0
    return rgb


def write_png(path, rgb):
    """Write an RGB image as a PNG file with Pillow, atomically.

    Parameters
    ----------
    path : str or os.PathLike
    rgb : numpy.ndarray
        uint8, shape ``(H, W, 3)``.

    Raises
    ------
    ValueError
        Naming the file, if ``rgb`` is not a uint8 ``(H, W, 3)`` array with ``H, W >= 1``;
        nothing is written then.
    OSError
        If the file cannot be written (no partial file is left).
    """
    from PIL import Image

    path = os.fspath(path)
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        raise ValueError(f"{path}: the image must be uint8, not {rgb.dtype}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"{path}: the image must have shape (H, W, 3) with H, W >= 1, not {rgb.shape!r}")
    image = Image.fromarray(np.ascontiguousarray(rgb))
    _atomic_write(path, lambda f: image.save(f, format="PNG"))


def write_flow_png(path, flow, max_flow=None):
    """Write the :func:`flow_to_color` picture of a flow field as a PNG file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
    flow : array_like, shape ``(H, W, 2)``
    max_flow : float, optional
        Normalization, see :func:`flow_to_color`.

    Raises
    ------
    ValueError
        If ``flow`` or ``max_flow`` is invalid (see :func:`flow_to_color`), or the flow is empty.
    OSError
        If the file cannot be written.
    """
    path = os.fspath(path)
    try:
        rgb = flow_to_color(flow, max_flow)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    write_png(path, rgb)


# ----------------------------------------------------------------------------------------------
# Resizing

def resize_flow(flow, height, width, method="bilinear"):
    """Resize a flow field to ``height x width`` and rescale the vectors to the new pixel grid.

    Resampling uses pixel centres (``align_corners=False``): output pixel ``x`` samples the
    input at ``(x + 0.5) * W / width - 0.5``, and likewise in ``y``.

    * ``"nearest"``: the input pixel containing that point, ``floor((x + 0.5) * W / width)``;
      for an integer upscale factor ``f`` this duplicates pixels, ``out[y, x] = in[y // f, x // f]``.
    * ``"bilinear"``: linear interpolation between the four surrounding input pixels, the
      sample point clamped to the input's edge pixels (edge replication).

    A displacement of ``u`` input pixels is ``u * width / W`` output pixels, so ``u`` is scaled by
    ``width / W`` and ``v`` by ``height / H``. Unknown flow (:func:`unknown_flow_mask`) becomes NaN;
    with ``"bilinear"``, every output pixel interpolated with a non-zero weight from an unknown
    input pixel is NaN too.

    Parameters
    ----------
    flow : array_like, shape ``(H, W, 2)``
        ``H, W >= 1``.
    height, width : int
        Output size, ``>= 1``.
    method : {"bilinear", "nearest"}

    Returns
    -------
    numpy.ndarray
        float32, shape ``(height, width, 2)``.

    Raises
    ------
    ValueError
        If ``flow`` is not a real ``(H, W, 2)`` array with ``H, W >= 1``, ``height`` or ``width``
        is not a positive integer, or ``method`` is unknown.
    """
    flow = _check_flow(flow)
    h_in, w_in = flow.shape[:2]
    if h_in < 1 or w_in < 1:
        raise ValueError(f"cannot resize an empty flow of shape {flow.shape!r}")
    size = []
    for name, n in (("height", height), ("width", width)):
        try:
            if isinstance(n, bool):
                raise TypeError
            n = operator.index(n)
        except TypeError:
            raise ValueError(f"{name} must be an integer, not {n!r}") from None
        if n < 1:
            raise ValueError(f"{name} must be >= 1, not {n}")
        size.append(n)
    height, width = size
    if method not in ("bilinear", "nearest"):
        raise ValueError(f"method must be 'bilinear' or 'nearest', not {method!r}")

    f = np.where(unknown_flow_mask(flow)[..., None], np.nan, flow.astype(np.float64))
    sy = (np.arange(height) + 0.5) * (h_in / height) - 0.5
    sx = (np.arange(width) + 0.5) * (w_in / width) - 0.5
    if method == "nearest":
        iy = np.minimum(np.floor(sy + 0.5).astype(np.intp), h_in - 1)
        ix = np.minimum(np.floor(sx + 0.5).astype(np.intp), w_in - 1)
        out = f[iy[:, None], ix[None, :]]
    else:
        sy = np.clip(sy, 0, h_in - 1)
        sx = np.clip(sx, 0, w_in - 1)
        y0 = np.floor(sy).astype(np.intp)
        x0 = np.floor(sx).astype(np.intp)
        y1 = np.minimum(y0 + 1, h_in - 1)
        x1 = np.minimum(x0 + 1, w_in - 1)
        wy = (sy - y0)[:, None, None]
        wx = (sx - x0)[None, :, None]
        out = np.zeros((height, width, 2))
        for ys, wgt_y in ((y0, 1 - wy), (y1, wy)):
            for xs, wgt_x in ((x0, 1 - wx), (x1, wx)):
                wgt = wgt_y * wgt_x
                # a zero weight must not let a NaN (unknown) neighbour through: 0 * NaN = NaN
                out += np.where(wgt > 0, wgt * f[ys[:, None], xs[None, :]], 0.0)
    out[..., 0] *= width / w_in
    out[..., 1] *= height / h_in
    return out.astype(np.float32)
