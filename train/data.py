"""Training batches from the synthetic generator, with FlowNet's augmentations that fit it.

The generator already draws FlowNet's geometric augmentations (random translation, rotation
and scaling of the background and of every shape), so on top of it come:

* flips: horizontal (``u -> -u``) and vertical (``v -> -v``), each with probability 1/2;
* photometric changes of FlowNet's kinds, milder (the short training on two CPU cores learns
  faster with them): additive brightness (Gaussian, sigma 0.05 of full scale), contrast
  (x[0.8, 1.2] about the mean), per-channel multiplicative colour (x[0.9, 1.1]), gamma
  ([0.8, 1.25]), the same for both frames, plus a small independent brightness change of
  frame 2 (sigma 0.01) and additive Gaussian noise (sigma in [0, 0.02]) per frame; the result
  is rounded to uint8 levels, as a camera frame would be.

Rendering a pair costs a few milliseconds, about as much as a training step per sample on two
CPU cores, so batches are drawn from a pool of rendered pairs (:class:`PairPool`): every step
renders ``fresh`` new pairs into the oldest slots and samples the batch from the pool; each pair
is seen a few times, under different flips and photometric changes. The pool's contents are a
function of the step number alone, so a resumed run continues exactly where it stopped.

Photo pairs (:mod:`models.photoscenes`) mix in with ``photo_fraction``: pair ``i`` of the
training sequence is a photo pair (seed stream ``PHOTO_TRAIN_STREAM``, training photos) when
``frac(i * 0.618...) < photo_fraction`` (an even, deterministic interleaving) and a synthetic
pair (``TRAIN_STREAM``) otherwise. Identical pairs (frame 2 = frame 1) stay identical under the
augmentation: both frames get the same noise and no brightness change of frame 2.
"""

import numpy as np
import torch

from models.photoscenes import PHOTO_TRAIN_STREAM, PhotoSceneConfig, make_photo_pair
from models.synthetic import TRAIN_STREAM, SyntheticConfig, make_pair

__all__ = ["PairPool", "augment", "to_tensors", "is_photo_index", "render_pair", "render_batch"]

_GOLDEN = 0.6180339887498949


def is_photo_index(index, photo_fraction):
    """Is pair ``index`` of the training sequence a photo pair (see the module docstring)?"""
    return photo_fraction > 0 and (index * _GOLDEN) % 1.0 < photo_fraction


def render_pair(index, cfg=SyntheticConfig(), crop=None, photo_fraction=0.0, photo_cfg=None,
                stream=TRAIN_STREAM, photo_stream=PHOTO_TRAIN_STREAM):
    """Pair ``index`` of the mixed training sequence: ``(frames (H, W, 6) uint8, flow (H, W, 2))``."""
    if is_photo_index(index, photo_fraction):
        p = make_photo_pair(index, photo_stream,
                            photo_cfg or PhotoSceneConfig(height=cfg.height, width=cfg.width), crop)
    else:
        p = make_pair(index, stream, cfg, crop)
    return p.frames, p.flow


def render_batch(indices, **kw):
    """Frames (N, H, W, 6) and flows (N, H, W, 2) of :func:`render_pair` for several indices."""
    pairs = [render_pair(i, **kw) for i in indices]
    return np.stack([f for f, _ in pairs]), np.stack([g for _, g in pairs])


class PairPool:
    """A pool of ``size`` rendered training pairs, refreshed ``fresh`` pairs per step.

    Slot ``k`` holds pair ``i`` of the training stream with ``i % size == k``, ``i`` the most
    recent rendered index, so the pool at a given step can be rebuilt from the step number.
    """

    def __init__(self, size, fresh, cfg=SyntheticConfig(), stream=TRAIN_STREAM, crop=None,
                 photo_fraction=0.0, photo_cfg=None):
        self.size, self.fresh, self.cfg, self.stream, self.crop = size, fresh, cfg, stream, crop
        self.photo_fraction, self.photo_cfg = photo_fraction, photo_cfg
        h, w = crop or (cfg.height, cfg.width)
        self.frames = np.zeros((size, h, w, 6), np.uint8)
        self.flows = np.zeros((size, h, w, 2), np.float32)
        self.next_index = 0

    def _render(self, index):
        k = index % self.size
        self.frames[k], self.flows[k] = render_pair(index, self.cfg, self.crop, self.photo_fraction,
                                                    self.photo_cfg, self.stream)

    def fill(self, step):
        """Rebuild the pool as it is at the start of ``step`` (0 for a new run)."""
        end = self.size + step * self.fresh
        for i in range(end - self.size, end):
            self._render(i)
        self.next_index = end

    def advance(self):
        """Render the next ``fresh`` pairs into the oldest slots."""
        for i in range(self.next_index, self.next_index + self.fresh):
            self._render(i)
        self.next_index += self.fresh

    def batch(self, rng, batch_size):
        idx = rng.integers(0, self.size, batch_size)
        return self.frames[idx], self.flows[idx]


def augment(frames, flows, rng):
    """Flips and photometric augmentation of a batch (uint8 frames (N, H, W, 6), flows (N, H, W, 2))."""
    n = len(frames)
    identical = np.array([np.array_equal(f[..., :3], f[..., 3:]) for f in frames]).reshape(n, 1, 1, 1, 1)
    frames = frames.astype(np.float32) / 255.0
    flows = flows.copy()
    for i in range(n):
        if rng.random() < 0.5:
            frames[i] = frames[i, :, ::-1]
            flows[i] = flows[i, :, ::-1]
            flows[i, ..., 0] *= -1
        if rng.random() < 0.5:
            frames[i] = frames[i, ::-1]
            flows[i] = flows[i, ::-1]
            flows[i, ..., 1] *= -1
    x = frames.reshape(n, *frames.shape[1:3], 2, 3)                   # (N, H, W, frame, rgb)
    mean = x.mean(axis=(1, 2, 4), keepdims=True)
    x = (x - mean) * rng.uniform(0.8, 1.2, (n, 1, 1, 1, 1)) + mean
    x = x * rng.uniform(0.9, 1.1, (n, 1, 1, 1, 3))
    second = np.array([0, 1]).reshape(1, 1, 1, 2, 1) * ~identical      # frame 2 of a non-identical pair
    x = x + rng.normal(0, 0.05, (n, 1, 1, 1, 1)) + rng.normal(0, 0.01, (n, 1, 1, 2, 1)) * second
    x = np.clip(x, 0.0, 1.0) ** rng.uniform(0.8, 1.25, (n, 1, 1, 1, 1))
    noise = rng.normal(0, 1, x.shape).astype(np.float32) * rng.uniform(0, 0.02, (n, 1, 1, 2, 1))
    noise = np.where(identical, noise[:, :, :, :1], noise)                  # the same on both frames
    x = x + noise
    x = np.floor(np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return x.reshape(frames.shape), flows


def to_tensors(frames, flows, device):
    """uint8 NHWC frames and NHWC flows -> float NCHW tensors (frames / 255) on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float() / 255.0
    y = torch.from_numpy(np.ascontiguousarray(flows)).to(device).permute(0, 3, 1, 2).float()
    return x, y
