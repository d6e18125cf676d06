"""The shipped, trained LMFlowNet weights (``models/weights/``).

Three files (how each was made: ``models/weights/README.md``, ``docs/training.md``):

* ``lmflownet_d3_96x128.npz``: the fully quantized default network
  (``models/configs/lmflownet_d3_96x128.yaml``, every layer on the accelerator), trained with
  quantization (QAT); the golden model, the CLI and the benchmarks load it by default;
* ``lmflownet_d3_96x128_float_ends.npz``: the float-ends division of the same network
  (``models/configs/lmflownet_d3_96x128_float_ends.yaml``: conv1, upsample_flow3 and
  predict_flow2 in float on the host), trained with quantization;
* ``lmflownet_d3_96x128_float.npz``: the float network (the float-ends network with every
  layer in float: frames in [0, 1], leaky ReLU), the float model of ``make eval`` and, converted
  to the quantized ends (``python -m train.export``), the start of the fully quantized one.

Latent float weights throughout (the quantized model binarizes them). A weights file carries
its network configuration, so :func:`load_default_weights` picks the file by the configuration
asked for (by its division, ``ends``) and checks that it is the stored one. Each file's
manifest (``meta``) gives the training command, seed, steps, wall time and metrics.
"""

import os

from .errors import WeightsError
from .network import ENDS_FLOAT, NetworkConfig
from .weights import load_weights

__all__ = ["WEIGHTS_DIR", "DEFAULT_WEIGHTS", "DEFAULT_FLOAT_ENDS_WEIGHTS", "DEFAULT_FLOAT_WEIGHTS",
           "default_weights_path", "default_float_ends_weights_path", "default_float_weights_path",
           "load_default_weights", "load_default_float_weights"]

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
#: The fully quantized default network (QAT).
DEFAULT_WEIGHTS = "lmflownet_d3_96x128.npz"
#: The float-ends division of the same network (QAT).
DEFAULT_FLOAT_ENDS_WEIGHTS = "lmflownet_d3_96x128_float_ends.npz"
#: The float network (the float-ends network with every layer in float).
DEFAULT_FLOAT_WEIGHTS = "lmflownet_d3_96x128_float.npz"


def _path(name):
    path = os.path.join(WEIGHTS_DIR, name)
    if not os.path.isfile(path):
        raise WeightsError(f"{path}: the shipped weights are missing; they come with the repository "
                           f"(models/weights/), or run `make train` to make them")
    return path


def _check_cfg(cfg):
    if cfg is not None and not isinstance(cfg, NetworkConfig):
        raise TypeError(f"cfg must be a NetworkConfig, not {type(cfg).__name__}")


def default_weights_path(cfg=None):
    """Path of the shipped quantized-network weights for a configuration's division.

    Parameters
    ----------
    cfg : NetworkConfig, optional
        With ``ends: float`` the float-ends file, otherwise (and by default) the fully quantized
        one. Whether the file's stored network equals ``cfg`` is checked on loading
        (:func:`load_default_weights`).

    Raises
    ------
    WeightsError
        If the file is missing.
    """
    _check_cfg(cfg)
    if cfg is not None and cfg.ends == ENDS_FLOAT:
        return _path(DEFAULT_FLOAT_ENDS_WEIGHTS)
    return _path(DEFAULT_WEIGHTS)


def default_float_ends_weights_path():
    """Path of the shipped float-ends weights (the same network, conv1, upsample_flow3 and
    predict_flow2 in float on the host)."""
    return _path(DEFAULT_FLOAT_ENDS_WEIGHTS)


def default_float_weights_path():
    """Path of the shipped float-model weights (the float-ends network with every layer in
    float, trained without quantization)."""
    return _path(DEFAULT_FLOAT_WEIGHTS)


def _load(path, cfg):
    weights, stored, meta = load_weights(path)
    if cfg is not None and cfg != stored:
        raise WeightsError(f"{path}: the shipped weights are for network {stored.describe()}, "
                           f"not for {cfg.describe()}")
    return weights, stored, meta


def load_default_weights(cfg=None):
    """Load the shipped quantized-network weights (fully quantized by default, float ends for a
    configuration with ``ends: float``).

    Parameters
    ----------
    cfg : NetworkConfig, optional
        The network they are wanted for; must equal the stored one (default: the fully quantized
        default network, as stored).

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
    return _load(default_weights_path(cfg), cfg)


def load_default_float_weights(cfg=None):
    """Load the shipped float-model weights (for :class:`models.golden.FloatModel` on the
    float-ends configuration stored in the file); see :func:`load_default_weights`."""
    _check_cfg(cfg)
    return _load(default_float_weights_path(), cfg)
