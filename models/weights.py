"""Weights: the ``.npz`` file format, loading, saving and validation.

File format (``lmflownet-weights`` version 2), a numpy ``.npz`` archive without pickles:

* one float32 array per parameter, named ``<layer>/<param>``; params are ``weight``
  (``kh, kw, c_in, c_out``, HWIO), ``bias`` (``c_out``) for layers with a bias, and ``gamma``,
  ``beta``, ``mean``, ``var`` (``c_out``) for layers with batch norm, with the shapes of
  :meth:`models.network.Layer.param_shapes`: they follow the configuration (conv1 is
  ``(3, 3, 128, 64)`` with quantized ends, ``(3, 3, 24, 64)`` with float ends; a flow-code or
  multi-plane layer stores the weights of its 2 flow components, ``c_out = 2``);
* ``__manifest__``: a uint8 array holding UTF-8 JSON::

      {"format": "lmflownet-weights", "version": 2,
       "network": {...network configuration, with its "ends"...},
       "layers": {"conv1": {"weight": {"shape": [3, 3, 128, 64], "dtype": "float32"}, ...}, ...},
       "meta": {...free-form: seed, training command, metrics...}}

The manifest's network configuration chooses the division (``ends``), so a weights file runs
the network it was trained for. Version 1 files (written before the quantized ends existed)
have no ``ends`` in their configuration and are read as ``ends: float``.

Binary layers store their latent float weights: the quantized model binarizes them
(:func:`models.quant.binarize_weights`; multi-plane layers
:func:`models.golden.binarize_weight_planes`), the float model uses them as they are.
"""

import json
import os
import tempfile
import zipfile

import numpy as np

from .errors import WeightsError
from .network import ENDS_FLOAT, NetworkConfig, build_layers

__all__ = ["WEIGHTS_FORMAT", "WEIGHTS_VERSION", "READABLE_VERSIONS", "MANIFEST_KEY", "save_weights",
           "load_weights", "validate_weights"]

WEIGHTS_FORMAT = "lmflownet-weights"
WEIGHTS_VERSION = 2
#: Versions :func:`load_weights` reads (1: float ends implied).
READABLE_VERSIONS = (1, 2)
MANIFEST_KEY = "__manifest__"


def validate_weights(weights, cfg, source="<weights>"):
    """Check a ``{layer: {param: array}}`` dictionary against a network configuration.

    Raises
    ------
    WeightsError
        Naming ``source``, the layer and the parameter: a missing or unexpected layer or
        parameter, a wrong shape, a dtype other than float32, a NaN or infinity, or a negative
        batch-norm variance.
    """
    layers = build_layers(cfg)
    names = {layer.name for layer in layers}
    for name in weights:
        if name not in names:
            raise WeightsError(f"{source}: layer {name!r} is not in network {cfg.name!r}")
    for layer in layers:
        if layer.name not in weights:
            raise WeightsError(f"{source}: layer {layer.name!r} is missing")
        params = weights[layer.name]
        expected = layer.param_shapes()
        for p in params:
            if p not in expected:
                raise WeightsError(f"{source}: layer {layer.name!r}: unexpected parameter {p!r} "
                                   f"(expected {', '.join(expected)})")
        for p, shape in expected.items():
            if p not in params:
                raise WeightsError(f"{source}: layer {layer.name!r}: parameter {p!r} is missing")
            a = params[p]
            if not isinstance(a, np.ndarray) or a.dtype != np.float32:
                dtype = getattr(a, "dtype", type(a).__name__)
                raise WeightsError(f"{source}: layer {layer.name!r}: {p} must be float32, not {dtype}")
            if a.shape != shape:
                raise WeightsError(f"{source}: layer {layer.name!r}: {p} must have shape {shape}, "
                                   f"not {a.shape} (network {cfg.describe()})")
            if not np.isfinite(a).all():
                raise WeightsError(f"{source}: layer {layer.name!r}: {p} contains NaN or infinity")
        if layer.bn and (params["var"] < 0).any():
            raise WeightsError(f"{source}: layer {layer.name!r}: var must be >= 0")


def save_weights(path, weights, cfg, meta=None):
    """Write a weights file atomically (a temporary file renamed into place).

    Parameters
    ----------
    path : str or os.PathLike
    weights : dict
        ``{layer: {param: float32 array}}``, validated against ``cfg`` first.
    cfg : NetworkConfig
    meta : dict, optional
        JSON-serializable information stored in the manifest (seed, command, metrics).
    """
    path = os.fspath(path)
    validate_weights(weights, cfg, source=path)
    manifest = {
        "format": WEIGHTS_FORMAT, "version": WEIGHTS_VERSION, "network": cfg.to_dict(),
        "layers": {name: {p: {"shape": list(a.shape), "dtype": str(a.dtype)} for p, a in params.items()}
                   for name, params in weights.items()},
        "meta": meta or {},
    }
    arrays = {f"{name}/{p}": a for name, params in weights.items() for p, a in params.items()}
    arrays[MANIFEST_KEY] = np.frombuffer(json.dumps(manifest, sort_keys=True).encode(), dtype=np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".weights-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_weights(path, cfg=None):
    """Read and validate a weights file.

    Parameters
    ----------
    path : str or os.PathLike
    cfg : NetworkConfig, optional
        The network the weights are for; by default the one stored in the manifest.

    Returns
    -------
    weights : dict
        ``{layer: {param: float32 array}}``.
    cfg : NetworkConfig
    meta : dict

    Raises
    ------
    WeightsError
        If the file is missing, not an ``.npz`` archive, has no or a foreign manifest, or its
        arrays do not match the network (the message names the file and the layer).
    """
    path = os.fspath(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise WeightsError(f"{path}: weights file not found") from None
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise WeightsError(f"{path}: not a weights (.npz) file: {e}") from None
    with archive:
        if not hasattr(archive, "files"):
            raise WeightsError(f"{path}: not a weights (.npz) file: a single array")
        if MANIFEST_KEY not in archive.files:
            raise WeightsError(f"{path}: no {MANIFEST_KEY} entry: not a {WEIGHTS_FORMAT} file")
        try:
            manifest = json.loads(archive[MANIFEST_KEY].tobytes().decode())
        except (ValueError, UnicodeDecodeError) as e:
            raise WeightsError(f"{path}: {MANIFEST_KEY} is not valid JSON: {e}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != WEIGHTS_FORMAT:
            raise WeightsError(f"{path}: manifest format must be {WEIGHTS_FORMAT!r}, "
                               f"not {manifest.get('format') if isinstance(manifest, dict) else manifest!r}")
        version = manifest.get("version")
        if version not in READABLE_VERSIONS or isinstance(version, bool):
            raise WeightsError(f"{path}: manifest version must be one of "
                               f"{', '.join(map(str, READABLE_VERSIONS))}, not {version!r}")
        network = manifest.get("network")
        if version == 1 and isinstance(network, dict):
            network = dict(network, ends=ENDS_FLOAT)     # version 1: the float ends were the only division
        stored_cfg = NetworkConfig.from_dict(network, source=f"{path}: manifest network")
        cfg = stored_cfg if cfg is None else cfg
        listed = manifest.get("layers", {})
        weights = {}
        for key in archive.files:
            if key == MANIFEST_KEY:
                continue
            name, sep, param = key.partition("/")
            if not sep:
                raise WeightsError(f"{path}: array {key!r} is not named <layer>/<param>")
            if param not in listed.get(name, {}):
                raise WeightsError(f"{path}: layer {name!r}: {param} is not listed in the manifest")
            weights.setdefault(name, {})[param] = archive[key]
        for name, params in listed.items():
            for p, info in params.items():
                a = weights.get(name, {}).get(p)
                if a is None:
                    raise WeightsError(f"{path}: layer {name!r}: {p} is listed in the manifest but missing")
                if list(a.shape) != info.get("shape") or str(a.dtype) != info.get("dtype"):
                    raise WeightsError(f"{path}: layer {name!r}: {p} is {a.dtype}{list(a.shape)}, "
                                       f"the manifest says {info.get('dtype')}{info.get('shape')}")
    validate_weights(weights, cfg, source=path)
    return weights, cfg, manifest.get("meta", {})
