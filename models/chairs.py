"""Reader of the Flying Chairs data set (Dosovitskiy et al., FlowNet), for users who have it.

Layout (as released, ``FlyingChairs_release/``)::

    data/00001_img1.ppm  data/00001_img2.ppm  data/00001_flow.flo
    ...
    data/22872_img1.ppm  ...
    FlyingChairs_train_val.txt

``root`` may be the ``data`` directory itself or a directory holding ``data/``. The split file
(``FlyingChairs_train_val.txt``, published with FlowNet) has one line per pair, in index order:
``1`` = training, ``2`` = validation (640 pairs). It is looked for in ``root``, in ``data/`` and
next to ``root``, or given explicitly. Frames are RGB uint8 (384x512), flows float32 ``(H, W,
2)`` (see :func:`models.flow.read_flo`).
"""

import os
import re

import numpy as np

from .errors import FormatError
from .flow import read_flo

__all__ = ["FlyingChairs", "SPLIT_FILE", "TRAIN", "VAL", "read_split", "resize_frame"]

SPLIT_FILE = "FlyingChairs_train_val.txt"
TRAIN, VAL = 1, 2
_NAME = re.compile(r"^(\d+)_(img1\.ppm|img2\.ppm|flow\.flo)$")


def read_split(path, count=None):
    """Read a train/val split file: a list of 1 (train) and 2 (val), one per pair.

    Raises
    ------
    FormatError
        Naming the file and the line: unreadable, a value other than 1 or 2, or (with ``count``)
        a number of lines different from the number of pairs.
    """
    try:
        with open(path, encoding="ascii") as f:
            lines = f.read().split()
    except (OSError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: cannot read the Flying Chairs split file: {e}") from None
    split = []
    for i, tok in enumerate(lines, 1):
        if tok not in ("1", "2"):
            raise FormatError(f"{path}: entry {i} is {tok!r}, expected 1 (train) or 2 (validation)")
        split.append(int(tok))
    if count is not None and len(split) != count:
        raise FormatError(f"{path}: {len(split)} entries for {count} image pairs; the split file "
                          f"needs one entry per pair")
    return split


def resize_frame(frame, height, width):
    """Resize an RGB uint8 frame with an area (box) filter (Pillow)."""
    from PIL import Image

    if frame.shape[:2] == (height, width):
        return frame
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.BOX))


class FlyingChairs:
    """The pairs of one split of a Flying Chairs directory.

    Parameters
    ----------
    root : str or os.PathLike
        The ``data`` directory or a directory containing it.
    split : {"train", "val", "all"}
    split_file : str, optional
        Path of ``FlyingChairs_train_val.txt`` (default: looked for, see the module docstring;
        required unless ``split == "all"``).

    Raises
    ------
    FormatError
        The directory is missing or holds no pairs, a pair lacks one of its three files (the
        message names it), or the split file is missing or inconsistent.
    """

    def __init__(self, root, split="val", split_file=None):
        root = os.fspath(root)
        if split not in ("train", "val", "all"):
            raise ValueError(f"split must be 'train', 'val' or 'all', not {split!r}")
        if not os.path.isdir(root):
            raise FormatError(f"{root}: Flying Chairs directory not found")
        data = os.path.join(root, "data") if os.path.isdir(os.path.join(root, "data")) else root
        files = {}
        for name in os.listdir(data):
            m = _NAME.match(name)
            if m:
                files.setdefault(int(m.group(1)), {})[m.group(2)] = os.path.join(data, name)
        if not files:
            raise FormatError(f"{data}: no Flying Chairs pairs (NNNNN_img1.ppm, NNNNN_img2.ppm, "
                              f"NNNNN_flow.flo) found")
        indices = sorted(files)
        for i in indices:
            for kind in ("img1.ppm", "img2.ppm", "flow.flo"):
                if kind not in files[i]:
                    raise FormatError(f"{data}: pair {i:05d} is incomplete: {i:05d}_{kind} is missing")
        if indices != list(range(indices[0], indices[0] + len(indices))):
            missing = sorted(set(range(indices[0], indices[-1] + 1)) - set(indices))
            raise FormatError(f"{data}: pair numbers are not consecutive: {missing[0]:05d} is missing")
        self.data_dir = data
        self.split = split
        if split != "all":
            if split_file is None:
                candidates = [os.path.join(root, SPLIT_FILE), os.path.join(data, SPLIT_FILE),
                              os.path.join(os.path.dirname(os.path.abspath(root)), SPLIT_FILE)]
                split_file = next((c for c in candidates if os.path.isfile(c)), None)
                if split_file is None:
                    raise FormatError(f"{root}: split file {SPLIT_FILE} not found (looked in "
                                      f"{', '.join(candidates)}); pass split_file or use split='all'")
            marks = read_split(split_file, len(indices))
            want = TRAIN if split == "train" else VAL
            indices = [i for i, s in zip(indices, marks) if s == want]
        self.split_file = split_file
        self.pairs = [(files[i]["img1.ppm"], files[i]["img2.ppm"], files[i]["flow.flo"]) for i in indices]
        self.indices = indices

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, k):
        """``(frame1, frame2, flow)``: RGB uint8 (H, W, 3) twice and float32 (H, W, 2)."""
        from PIL import Image

        p1, p2, pf = self.pairs[k]
        frames = []
        for p in (p1, p2):
            try:
                with Image.open(p) as im:
                    frames.append(np.asarray(im.convert("RGB")))
            except OSError as e:
                raise FormatError(f"{p}: cannot read image: {e}") from None
        flow = read_flo(pf)
        if frames[0].shape != frames[1].shape or frames[0].shape[:2] != flow.shape[:2]:
            raise FormatError(f"{pf}: sizes disagree: img1 {frames[0].shape[:2]}, img2 "
                              f"{frames[1].shape[:2]}, flow {flow.shape[:2]}")
        return frames[0], frames[1], flow
