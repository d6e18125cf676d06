"""``lmflow``: optical flow of image pairs and sequences with the quantized LMFlowNet.

::

    lmflow flow IMG1 IMG2 -o OUT.flo [--png OUT.png] [--backend golden|rtl|de10nano]
                [--weights W.npz] [--config NET.yaml] [--hw-config NAME|HW.yaml]
    lmflow video IN_DIR_OR_VIDEO -o OUT_DIR [--png] [--backend ...] [--weights ...] [--config ...]
                [--hw-config ...]

Images of any size are resized (bilinear) to the network input; the flow is resized back to the
image size with its vectors rescaled. Every error is one line on stderr (``lmflow: error:
...``); the exit status is 2 for bad usage or input (missing or unreadable file, frames of two
sizes, a wrong weights or configuration file, an unknown backend) and 1 when the run itself
fails (the device, a backend missing from this build, writing the output). Outputs are written
under temporary names and renamed into place only once everything succeeded, so a failed run
leaves no partial file.
"""

import argparse
import contextlib
import importlib
import os
import shutil
import sys
import tempfile

import numpy as np

from models.errors import ConfigError, FormatError, LMFlowError, WeightsError

from .errors import UnknownBackendError

__all__ = ["main", "IMAGE_EXTENSIONS"]

PROG = "lmflow"
#: Files of an input directory taken as frames (sorted by name).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
_INPUT_ERRORS = (ConfigError, FormatError, WeightsError, UnknownBackendError)


class CommandError(Exception):
    """An error the command line reports as one line, with its exit status."""

    def __init__(self, message, status=2):
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CommandError(message, 2)


def _one_line(text):
    return " ".join(str(text).split())


# ----------------------------------------------------------------------------------------------
# Inputs

def _read_image(path):
    """An image file as an RGB uint8 array, or a CommandError naming the file."""
    from PIL import Image, UnidentifiedImageError

    if not os.path.exists(path):
        raise CommandError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CommandError(f"{path}: is a directory, not an image")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise CommandError(f"{path}: cannot read image: {e}") from None


def _image_size(path):
    """``(width, height)`` from an image file's header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise CommandError(f"{path}: cannot read image: {e}") from None


def _to_network_input(img1, img2, cfg):
    """Two RGB frames of one size -> uint8 (H, W, 6) at the network resolution."""
    from PIL import Image

    def resize(a):
        if a.shape[:2] == (cfg.height, cfg.width):
            return a
        return np.asarray(Image.fromarray(a).resize((cfg.width, cfg.height), Image.Resampling.BILINEAR))

    return np.concatenate([resize(img1), resize(img2)], axis=2)


def _load_model(args):
    from models.golden import QuantizedModel
    from models.network import load_network_config
    from models.weights import load_weights

    cfg = load_network_config(args.config) if args.config else None
    if args.weights:
        weights, wcfg, _ = load_weights(args.weights, cfg)
    else:
        try:
            pretrained = importlib.import_module("models.pretrained")
        except ImportError:
            raise CommandError("no shipped weights in this build (models.pretrained is missing); "
                               "pass --weights W.npz") from None
        weights, wcfg, _ = pretrained.load_default_weights() if cfg is None else pretrained.load_default_weights(cfg)
    return QuantizedModel(cfg or wcfg, weights)


def _open_runtime(args, model):
    from models.hwconfig import check_target, load_hw_config

    from .backends import get_transport
    from .runtime import FlowRuntime

    hw = check_target(load_hw_config(args.hw_config), "accelerator")
    params = hw.engine_params
    kw = {"hw_config": hw} if args.backend == "rtl" else {}
    transport = get_transport(args.backend, params, **kw)
    try:
        return FlowRuntime(model, transport, params, timeout_s=args.timeout)
    except BaseException:
        transport.close()
        raise


def _check_output_dir(path, what):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CommandError(f"{path}: the {what} directory {directory} does not exist")
    if os.path.isdir(path):
        raise CommandError(f"{path}: is a directory; the {what} must be a file name")


class _Staging:
    """Output files written under temporary names, renamed into place by :meth:`commit`."""

    def __init__(self):
        self._pending = []       # (temporary, final)

    def path(self, final):
        directory, base = os.path.split(os.path.abspath(final))
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
        os.close(fd)
        self._pending.append((tmp, final))
        return tmp

    def commit(self):
        for tmp, final in self._pending:
            os.replace(tmp, final)
        self._pending = []

    def discard(self):
        for tmp, _ in self._pending:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._pending = []


def _write_flow(staging, flow, flo_path, png_path):
    from models.flow import write_flo, write_flow_png

    write_flo(staging.path(flo_path), flow)
    if png_path:
        write_flow_png(staging.path(png_path), flow)


def _flow_at(runtime, img1, img2):
    from models.flow import resize_flow

    frames = _to_network_input(img1, img2, runtime.model.cfg)
    result = runtime.run(frames)
    flow = result.flow[0]
    h, w = img1.shape[:2]
    if flow.shape[:2] != (h, w):
        flow = resize_flow(flow, h, w)
    return flow, result.timings


# ----------------------------------------------------------------------------------------------
# Commands

def _cmd_flow(args):
    from .backends import check_backend

    check_backend(args.backend)
    _check_output_dir(args.output, "output")
    if args.png:
        _check_output_dir(args.png, "PNG output")
    img1, img2 = _read_image(args.image1), _read_image(args.image2)
    if img1.shape != img2.shape:
        raise CommandError(f"the frames have two sizes: {args.image1} is {img1.shape[1]}x{img1.shape[0]}, "
                           f"{args.image2} is {img2.shape[1]}x{img2.shape[0]}")
    model = _load_model(args)
    with _open_runtime(args, model) as runtime:
        flow, timings = _flow_at(runtime, img1, img2)
    staging = _Staging()
    try:
        _write_flow(staging, flow, args.output, args.png)
        staging.commit()
    finally:
        staging.discard()
    print(f"{args.output}: {flow.shape[1]}x{flow.shape[0]} flow ({args.backend} backend, "
          f"host {timings.total_s * 1e3:.1f} ms)")
    return 0


def _video_frames(source):
    """``(count, iterator of RGB frames)`` of an image directory or a video file."""
    if os.path.isdir(source):
        names = sorted(n for n in os.listdir(source) if n.lower().endswith(IMAGE_EXTENSIONS)
                       and os.path.isfile(os.path.join(source, n)))
        paths = [os.path.join(source, n) for n in names]
        if len(paths) < 2:
            raise CommandError(f"{source}: needs at least two image files ({', '.join(IMAGE_EXTENSIONS)}), "
                               f"found {len(paths)}")
        size = _image_size(paths[0])
        for p in paths[1:]:
            s = _image_size(p)
            if s != size:
                raise CommandError(f"the frames have two sizes: {paths[0]} is {size[0]}x{size[1]}, "
                                   f"{p} is {s[0]}x{s[1]}")
        return len(paths), (_read_image(p) for p in paths)
    if not os.path.exists(source):
        raise CommandError(f"{source}: no such file or directory")
    # FFmpeg's own log lines would break the one-line error rule; errors are reported here.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        import cv2
    except ImportError:
        raise CommandError(f"{source}: reading video files needs OpenCV: pip install 'lmflownet[eval]' "
                           f"(or opencv-python-headless); a directory of images needs nothing more", 1) from None
    cap = cv2.VideoCapture(source)
    ok, first = cap.read() if cap.isOpened() else (False, None)
    if not ok:
        cap.release()
        raise CommandError(f"{source}: cannot read video (not a video file OpenCV can decode)")
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))

    def frames():
        try:
            bgr = first
            while True:
                yield np.ascontiguousarray(bgr[..., ::-1])
                ok, bgr = cap.read()
                if not ok:
                    return
        finally:
            cap.release()

    return count, frames()


class _NoProgress:
    """Stands in for a tqdm bar where tqdm is not installed (the board's host needs none)."""

    def __init__(self, *args, **kw):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass


def _progress_bar():
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoProgress
    return tqdm


def _cmd_video(args):
    tqdm = _progress_bar()

    from models.flow import write_flo, write_flow_png

    from .backends import check_backend

    check_backend(args.backend)
    out = args.output
    if os.path.exists(out) and not os.path.isdir(out):
        raise CommandError(f"{out}: exists and is not a directory")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise CommandError(f"{out}: the parent directory {parent} does not exist")
    count, frames = _video_frames(args.input)
    model = _load_model(args)
    created = not os.path.exists(out)
    os.makedirs(out, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".lmflow-", dir=out)
    written = []
    committed = False
    try:
        with _open_runtime(args, model) as runtime, \
                tqdm(total=max(count - 1, 0) or None, unit="pair", desc=PROG, file=sys.stderr,
                     disable=True if args.quiet else None, leave=False) as bar:
            prev = next(frames, None)
            for i, frame in enumerate(frames):
                if frame.shape != prev.shape:
                    raise CommandError(f"{args.input}: frame {i + 1} is {frame.shape[1]}x{frame.shape[0]}, "
                                       f"the first is {prev.shape[1]}x{prev.shape[0]}")
                flow, _ = _flow_at(runtime, prev, frame)
                name = f"flow_{i:05d}"
                write_flo(os.path.join(staging, name + ".flo"), flow)
                written.append(name + ".flo")
                if args.png:
                    write_flow_png(os.path.join(staging, name + ".png"), flow)
                    written.append(name + ".png")
                bar.update(1)
                prev = frame
        if not written:
            raise CommandError(f"{args.input}: needs at least two frames")
        for name in written:
            os.replace(os.path.join(staging, name), os.path.join(out, name))
        committed = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not committed:
            with contextlib.suppress(OSError):
                os.rmdir(out)
    pairs = len(written) // (2 if args.png else 1)
    print(f"{out}: {pairs} flow field{'s' if pairs != 1 else ''} ({args.backend} backend)")
    return 0


# ----------------------------------------------------------------------------------------------
# Entry point

def _parser():
    from .backends import backends

    parser = _Parser(prog=PROG, description="Optical flow with the quantized LMFlowNet (host, golden model, "
                                            "RTL simulation or DE10-Nano accelerator).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def common(p):
        p.add_argument("--backend", default="golden", metavar="NAME",
                       help=f"accelerator backend: {', '.join(sorted(backends()))} (default: golden)")
        p.add_argument("--hw-config", metavar="NAME|HW.yaml",
                       help="hardware configuration of the accelerator: a name in models/configs/hw/ or a "
                            "YAML path (default: the default configuration)")
        p.add_argument("--weights", metavar="W.npz", help="weights file (default: the shipped weights)")
        p.add_argument("--config", metavar="NET.yaml",
                       help="network configuration (default: the one stored in the weights file)")
        p.add_argument("--timeout", type=float, default=2.0, metavar="S",
                       help="longest accelerator run per descriptor list, in seconds (default: 2)")

    p = sub.add_parser("flow", help="flow from IMG1 to IMG2", description="Flow from IMG1 to IMG2 as a .flo file.")
    p.add_argument("image1", metavar="IMG1")
    p.add_argument("image2", metavar="IMG2")
    p.add_argument("-o", "--output", required=True, metavar="OUT.flo")
    p.add_argument("--png", metavar="OUT.png", help="also write a colour-wheel picture of the flow")
    common(p)
    p.set_defaults(func=_cmd_flow)

    p = sub.add_parser("video", help="flow of every consecutive frame pair of a sequence",
                       description="Flow of every consecutive frame pair of a directory of images (sorted by "
                                   "name) or a video file: OUT_DIR/flow_00000.flo, ...")
    p.add_argument("input", metavar="IN_DIR_OR_VIDEO")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR")
    p.add_argument("--png", action="store_true", help="also write flow_NNNNN.png colour-wheel pictures")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    common(p)
    p.set_defaults(func=_cmd_video)
    return parser


def main(argv=None):
    """Run the command line; returns the exit status (0, 1 or 2)."""
    try:
        args = _parser().parse_args(argv)
        if not args.timeout > 0:
            raise CommandError(f"--timeout must be a positive number of seconds, not {args.timeout!r}")
        return args.func(args)
    except SystemExit as e:             # --help
        return e.code if isinstance(e.code, int) else 0
    except CommandError as e:
        status, message = e.status, str(e)
    except _INPUT_ERRORS as e:
        status, message = 2, str(e)
    except LMFlowError as e:
        status, message = 1, str(e)
    except OSError as e:
        status, message = 1, f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}"
    except ValueError as e:
        status, message = 1, str(e)
    except KeyboardInterrupt:
        status, message = 130, "interrupted"
    except Exception as e:
        if os.environ.get("LMFLOW_TRACEBACK"):
            raise
        status, message = 1, f"internal error: {type(e).__name__}: {e} (set LMFLOW_TRACEBACK=1 for details)"
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
