"""The shipped, trained LMFlowNet weights (``models/weights/``).

``lmflownet_d3_96x128.npz`` holds the quantization-aware-trained weights of the D = 3, 96x128
network (latent float weights, binarized by the quantized model), ``lmflownet_d3_96x128_float.npz``
the float model trained for comparison. Their manifests' ``meta`` and ``models/weights/README.md``
give the training command, seed, iterations, wall time and metrics; ``docs/training.md`` how
they were made (``make train``).

A weights file carries its network configuration, and so its division of work: the files
shipped now are version-1 files of the float-ends division
(``models/configs/lmflownet_d3_96x128_float_ends.yaml``); whoever loads them without asking for
a configuration gets that network. Weights trained for the fully quantized default
configuration replace them under the same names (``make train`` writes them there).
"""

import os

from .errors import WeightsError
from .network import NetworkConfig
from .weights import load_weights

__all__ = ["WEIGHTS_DIR", "DEFAULT_WEIGHTS", "DEFAULT_FLOAT_WEIGHTS", "default_weights_path",
           "default_float_weights_path", "load_default_weights", "load_default_float_weights"]

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
DEFAULT_WEIGHTS = "lmflownet_d3_96x128.npz"
DEFAULT_FLOAT_WEIGHTS = "lmflownet_d3_96x128_float.npz"


def _path(name):
    path = os.path.join(WEIGHTS_DIR, name)
    if not os.path.isfile(path):
        raise WeightsError(f"{path}: the shipped weights are missing; they come with the repository "
                           f"(models/weights/), or run `make train` to make them")
    return path


def default_weights_path():
    """Path of the shipped quantized-model weights (D = 3, 96x128; the division their manifest
    says).

    Raises
    ------
    WeightsError
        If the file is missing.
    """
    return _path(DEFAULT_WEIGHTS)


def default_float_weights_path():
    """Path of the shipped float-model weights (same network, trained without quantization)."""
    return _path(DEFAULT_FLOAT_WEIGHTS)


def _load(path, cfg):
    weights, stored, meta = load_weights(path)
    if cfg is not None:
        if not isinstance(cfg, NetworkConfig):
            raise TypeError(f"cfg must be a NetworkConfig, not {type(cfg).__name__}")
        if cfg != stored:
            raise WeightsError(f"{path}: the shipped weights are for network {stored.describe()}, "
                               f"not for {cfg.describe()}")
    return weights, stored, meta


def load_default_weights(cfg=None):
    """Load the shipped quantized-model weights.

    Parameters
    ----------
    cfg : NetworkConfig, optional
        The network they are wanted for; must equal the stored one (default: the stored one).

    Returns
    -------
    weights : dict
        ``{layer: {param: float32 array}}``, validated.
    cfg : NetworkConfig
    meta : dict
        Training command, seed, iterations, wall time and metrics.

    Raises
    ------
    WeightsError
        If the file is missing, corrupt or for another network.
    """
    return _load(default_weights_path(), cfg)


def load_default_float_weights(cfg=None):
    """Load the shipped float-model weights; see :func:`load_default_weights`."""
    return _load(default_float_weights_path(), cfg)
