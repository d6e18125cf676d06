"""Hardware configuration: array size, supported layer size, pipeline options, clock (YAML).

A configuration file (``hw/configs/*.yaml``) holds the free parameters of the accelerator::

    name: de10nano_p32_s64       # optional, default the file name
    pe_count: 32                 # P: PEs = output channels per beat
    simd_lanes: 64               # S: lanes = input channels per beat (a multiple of 8)
    max_kernel: 3                # largest kernel (odd)
    max_in_channels: 1024        # largest input channel count of a max_kernel conv
    pipeline:
      popcount_stages: 2         # register stages in each popcount tree
    clock_mhz: 100               # target clock

Everything else is derived, never stored: the accumulator bound
``models.conv.acc_bound(max_kernel, max_in_channels)`` sizes the accumulators
(``signed_bits(-A, A)``), the thresholds (``models.thresholds.threshold_bits(A)``) and the
threshold records (``models.formats.threshold_record(A)``). :func:`check_network` rejects a
network with a layer whose accumulator could overflow that bound.
"""

from dataclasses import dataclass, field
import math
import os

import yaml

from models.conv import acc_bound as conv_acc_bound
from models.errors import ConfigError
from models.formats import check_word_bits, threshold_record
from models.network import build_layers
from models.thresholds import signed_bits, threshold_bits

from .popcount import tree_levels

__all__ = ["HardwareConfig", "load_hw_config", "default_hw_config_path", "check_network",
           "CONFIG_DIR"]

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "configs")

_KEYS = ("name", "pe_count", "simd_lanes", "max_kernel", "max_in_channels", "pipeline", "clock_mhz", "engine")
_OPTIONAL_KEYS = ("name", "engine")
#: Keys of the optional ``engine`` section (the convolution engine's buffers and bursts); each a
#: power of two. Defaults in :data:`hw.build.ENGINE_DEFAULTS`.
_ENGINE_KEYS = ("act_buffer_words", "weight_buffer_words", "max_burst")
_PIPELINE_KEYS = ("popcount_stages",)


def default_hw_config_path():
    """Path of the default hardware configuration (P = 32, S = 64, 3x3x1024, 100 MHz)."""
    return os.path.join(CONFIG_DIR, "default.yaml")


@dataclass(frozen=True)
class HardwareConfig:
    """One accelerator configuration (see the module docstring for the keys).

    Members
    -------
    name : str
    pe_count, simd_lanes : int
        Array size P x S.
    max_kernel, max_in_channels : int
        The largest layer the design must support: a ``max_kernel`` x ``max_kernel`` conv over
        ``max_in_channels`` input channels.
    popcount_stages : int
        Register stages in each popcount tree (``pipeline.popcount_stages``).
    clock_mhz : float
    engine : dict
        The ``engine`` section as given (``act_buffer_words``, ``weight_buffer_words``,
        ``max_burst``); missing keys take :data:`hw.build.ENGINE_DEFAULTS`.
    source : str
        Where the configuration came from (file path or ``"<dict>"``), used in messages.
    """

    name: str
    pe_count: int
    simd_lanes: int
    max_kernel: int
    max_in_channels: int
    popcount_stages: int
    clock_mhz: float
    engine: dict = field(default_factory=dict)
    source: str = field(default="<dict>", compare=False)

    @classmethod
    def from_dict(cls, data, source="<dict>"):
        """Validate a configuration dictionary (as read from YAML).

        Raises
        ------
        ConfigError
            Naming ``source`` and the key, for an unknown or missing key, a wrong type or an
            impossible value.
        """
        def fail(key, msg):
            raise ConfigError(f"{source}: {key}: {msg}")

        if not isinstance(data, dict):
            raise ConfigError(f"{source}: the hardware configuration must be a mapping, "
                              f"not {type(data).__name__}")
        for key in data:
            if key not in _KEYS:
                fail(key, f"unknown key (expected one of {', '.join(_KEYS)})")
        for key in _KEYS:
            if key not in data and key not in _OPTIONAL_KEYS:
                fail(key, "missing")

        def integer(key, value, minimum):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                fail(key, f"must be an integer >= {minimum}, not {value!r}")
            return value

        pe_count = integer("pe_count", data["pe_count"], 1)
        simd_lanes = integer("simd_lanes", data["simd_lanes"], 8)
        try:
            check_word_bits(simd_lanes)
        except ValueError:
            fail("simd_lanes", f"must be a multiple of 8 (activation and weight words are "
                               f"byte-addressed), not {simd_lanes!r}")
        max_kernel = integer("max_kernel", data["max_kernel"], 1)
        if max_kernel % 2 == 0:
            fail("max_kernel", f"must be odd (SAME padding), not {max_kernel!r}")
        max_in_channels = integer("max_in_channels", data["max_in_channels"], 1)

        pipeline = data["pipeline"]
        if not isinstance(pipeline, dict):
            fail("pipeline", f"must be a mapping with {', '.join(_PIPELINE_KEYS)}, not {pipeline!r}")
        for key in pipeline:
            if key not in _PIPELINE_KEYS:
                fail(f"pipeline.{key}", f"unknown key (expected one of {', '.join(_PIPELINE_KEYS)})")
        for key in _PIPELINE_KEYS:
            if key not in pipeline:
                fail(f"pipeline.{key}", "missing")
        levels = tree_levels(simd_lanes)
        stages = integer("pipeline.popcount_stages", pipeline["popcount_stages"], 0)
        if stages > levels:
            fail("pipeline.popcount_stages",
                 f"must be at most {levels} (the levels of a {simd_lanes}-input popcount tree), "
                 f"not {stages!r}")

        clock = data["clock_mhz"]
        if isinstance(clock, bool) or not isinstance(clock, (int, float)) or not math.isfinite(clock) \
                or clock <= 0:
            fail("clock_mhz", f"must be a positive number, not {clock!r}")

        engine = data.get("engine", {})
        if not isinstance(engine, dict):
            fail("engine", f"must be a mapping with {', '.join(_ENGINE_KEYS)}, not {engine!r}")
        for key, value in engine.items():
            if key not in _ENGINE_KEYS:
                fail(f"engine.{key}", f"unknown key (expected one of {', '.join(_ENGINE_KEYS)})")
            integer(f"engine.{key}", value, 1)
            if value & (value - 1):
                fail(f"engine.{key}", f"must be a power of two, not {value!r}")

        name = data.get("name", os.path.splitext(os.path.basename(source))[0])
        if not isinstance(name, str) or not name:
            fail("name", f"must be a non-empty string, not {name!r}")
        return cls(name=name, pe_count=pe_count, simd_lanes=simd_lanes, max_kernel=max_kernel,
                   max_in_channels=max_in_channels, popcount_stages=stages,
                   clock_mhz=float(clock), engine=dict(engine), source=source)

    def to_dict(self):
        """The configuration as a YAML-ready dictionary (inverse of :meth:`from_dict`)."""
        return {"name": self.name, "pe_count": self.pe_count, "simd_lanes": self.simd_lanes,
                "max_kernel": self.max_kernel, "max_in_channels": self.max_in_channels,
                "pipeline": {"popcount_stages": self.popcount_stages},
                "clock_mhz": self.clock_mhz, **({"engine": dict(self.engine)} if self.engine else {})}

    @property
    def acc_bound(self):
        """Largest ``|acc|`` of the largest supported layer: ``3 * max_kernel**2 * max_in_channels``."""
        return conv_acc_bound(self.max_kernel, self.max_in_channels)

    @property
    def acc_width(self):
        """Width of the signed accumulators."""
        return signed_bits(-self.acc_bound, self.acc_bound)

    @property
    def threshold_bits(self):
        """Width of one threshold."""
        return threshold_bits(self.acc_bound)

    @property
    def threshold_record(self):
        """Threshold record format of this design (:class:`models.formats.RecordLayout`)."""
        return threshold_record(self.acc_bound)

    @property
    def macs_per_cycle(self):
        return self.pe_count * self.simd_lanes

    def summary(self):
        """One line describing the configuration and its derived widths."""
        return (f"{self.name}: P={self.pe_count} S={self.simd_lanes} "
                f"({self.macs_per_cycle} MACs/cycle), up to {self.max_kernel}x{self.max_kernel}x"
                f"{self.max_in_channels} (acc bound {self.acc_bound}, {self.acc_width}-bit "
                f"accumulators, {self.threshold_bits}-bit thresholds), popcount_stages="
                f"{self.popcount_stages}, {self.clock_mhz:g} MHz")


def load_hw_config(path=None):
    """Read and validate a hardware configuration YAML file (default: ``hw/configs/default.yaml``).

    A bare name (no directory, no ``.yaml``) is looked up in ``hw/configs/``.

    Raises
    ------
    ConfigError
        If the file is missing or unreadable, is not YAML, or fails validation; the message
        names the file and the key.
    """
    if path is None:
        path = default_hw_config_path()
    path = os.fspath(path)
    if os.sep not in path and not path.endswith((".yaml", ".yml")):
        path = os.path.join(CONFIG_DIR, path + ".yaml")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read hardware configuration: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}".replace("\n", " ")) from None
    return HardwareConfig.from_dict(data, source=path)


def check_network(hw, net):
    """Check that every accelerator layer of a network fits a hardware configuration.

    A layer fits when its kernel is at most ``max_kernel`` and its accumulator bound
    (``3 * kernel**2 * c_in``, :attr:`models.network.Layer.acc_bound`) is at most the design's
    (:attr:`HardwareConfig.acc_bound`): then neither its accumulators nor its thresholds can
    overflow. (A 1x1 layer may therefore have up to ``max_kernel**2 * max_in_channels`` input
    channels.) Layers that run on the host are not checked.

    Parameters
    ----------
    hw : HardwareConfig
    net : models.network.NetworkConfig

    Returns
    -------
    list of models.network.Layer
        The accelerator layers (all of which fit).

    Raises
    ------
    ConfigError
        Naming both configurations and every layer that does not fit, with its bound.
    """
    layers = [layer for layer in build_layers(net) if layer.accel]
    problems = []
    kernels = [layer for layer in layers if layer.kernel > hw.max_kernel]
    if kernels:
        problems.append(f"max_kernel is {hw.max_kernel}, larger kernels in " + ", ".join(
            f"layer {layer.name} ({layer.kernel}x{layer.kernel})" for layer in kernels))
    overflows = [layer for layer in layers
                 if layer.kernel <= hw.max_kernel and layer.acc_bound > hw.acc_bound]
    if overflows:
        problems.append(
            f"its {hw.acc_width}-bit accumulators and {hw.threshold_bits}-bit thresholds are sized "
            f"for acc bound {hw.acc_bound} ({hw.max_kernel}x{hw.max_kernel}x{hw.max_in_channels}), "
            f"which these layers could overflow: " + ", ".join(
                f"layer {layer.name} ({layer.kernel}x{layer.kernel}x{layer.c_in}, |acc| up to "
                f"{layer.acc_bound})" for layer in overflows))
    if problems:
        raise ConfigError(f"network {net.name} ({net.source}) does not fit hardware configuration "
                          f"{hw.name} ({hw.source}): " + "; ".join(problems))
    return layers
