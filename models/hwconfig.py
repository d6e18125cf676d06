"""The hardware configuration: the accelerator's free parameters, its one rule set, and what
follows from them.

A configuration file (``models/configs/hw/*.yaml``) holds the free parameters::

    name: de10nano_p32_s64       # optional, default the file name
    pe_count: 32                 # P: PEs = output channels per beat
    simd_lanes: 64               # S: lanes = input channels per beat (a multiple of 8)
    max_kernel: 3                # largest kernel (odd)
    max_in_channels: 1024        # largest input channel count of a max_kernel conv
    pipeline:
      popcount_stages: 2         # register stages in each popcount tree
    clock_mhz: 100               # target clock
    engine:                      # optional; defaults in ENGINE_DEFAULTS
      act_buffer_words: 8192
      weight_buffer_words: 256
      max_burst: 64

Everything else is derived, never stored: the accumulator bound
``models.conv.acc_bound(max_kernel, max_in_channels)`` sizes the accumulators
(``signed_bits(-A, A)``), the thresholds (``models.thresholds.threshold_bits(A)``) and the
threshold records (``models.formats.threshold_record(A)``); :attr:`HardwareConfig.engine_params`
is the :class:`models.engine.EngineParams` the host compiles for and the gateware is built from.

What a configuration must satisfy depends on what is built from it (:data:`TARGETS`):

``components``
    the PE array, its PEs and popcount trees, the threshold unit: the schema alone;
``accelerator``
    the convolution engine and register file (simulation, benchmarks, synthesis): the engine's
    rules, :class:`models.engine.EngineParams`;
``de10nano``
    the board top: the accelerator's, plus the FPGA-to-SDRAM port's width and burst limit and
    the PLL's output range (:mod:`models.board`).

:func:`check_target` says in one line why a configuration cannot serve a target, before anything
is built. This module imports no gateware or simulator package: the host, the testbenches and
the gateware read the same rules.
"""

from dataclasses import asdict, dataclass, field, fields
import math
import os

import yaml

from . import board
from .conv import acc_bound as conv_acc_bound
from .engine import EngineParams
from .errors import ConfigError
from .formats import check_word_bits, threshold_record
from .network import build_layers
from .thresholds import signed_bits, threshold_bits

__all__ = ["HardwareConfig", "load_hw_config", "default_hw_config_path", "check_network", "check_target",
           "target_problems", "resolve_hw_config_path", "hw_config_names", "tree_levels", "CONFIG_DIR",
           "ENGINE_DEFAULTS", "ENGINE_PARAM_FIELDS", "TARGETS"]

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "hw")

#: Engine sizes for configurations that do not set them: the activation buffer holds the
#: largest source tensor of the default network (48x64x64 or 24x32x256 codes: 3072 words of
#: 128 bits, rounded up to a power of two), the weight buffer one tile of the widest layer
#: (1024 input channels, 3x3: 144 words) in each of its two banks.
ENGINE_DEFAULTS = {"act_buffer_words": 4096, "weight_buffer_words": 256, "max_burst": 64}

#: Build targets and what each needs (see the module docstring).
TARGETS = ("components", "accelerator", "de10nano")

_KEYS = ("name", "pe_count", "simd_lanes", "max_kernel", "max_in_channels", "pipeline", "clock_mhz", "engine")
_OPTIONAL_KEYS = ("name", "engine")
_ENGINE_KEYS = tuple(ENGINE_DEFAULTS)
_PIPELINE_KEYS = ("popcount_stages",)
#: YAML key of every EngineParams field (for messages that name the key).
_PARAM_KEYS = {"pe_count": "pe_count", "simd_lanes": "simd_lanes", "acc_bound": "max_in_channels",
               "popcount_stages": "pipeline.popcount_stages",
               **{k: f"engine.{k}" for k in _ENGINE_KEYS}}


def tree_levels(width):
    """Number of adder levels of a binary tree that sums ``width`` one-bit values."""
    return (int(width) - 1).bit_length()


def default_hw_config_path():
    """Path of the default hardware configuration."""
    return os.path.join(CONFIG_DIR, "default.yaml")


def hw_config_names():
    """Names of the configurations shipped in :data:`CONFIG_DIR`, sorted."""
    return sorted(f[:-5] for f in os.listdir(CONFIG_DIR) if f.endswith(".yaml"))


def resolve_hw_config_path(path=None):
    """A configuration's file: ``None`` is the default, a bare name (no directory separator, no
    ``.yaml``) is looked up in :data:`CONFIG_DIR`, anything else is a path."""
    if path is None:
        return default_hw_config_path()
    path = os.fspath(path)
    if os.sep not in path and not path.endswith((".yaml", ".yml")):
        return os.path.join(CONFIG_DIR, path + ".yaml")
    return path


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
        The engine section with every key (:data:`ENGINE_DEFAULTS` where the file sets none).
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
    engine: dict = field(default_factory=lambda: dict(ENGINE_DEFAULTS))
    source: str = field(default="<dict>", compare=False)

    @classmethod
    def from_dict(cls, data, source="<dict>"):
        """Validate a configuration dictionary (as read from YAML) against the schema.

        Raises
        ------
        ConfigError
            Naming ``source`` and the key, for an unknown or missing key, a wrong type or an
            impossible value. (What a build target needs beyond the schema is
            :func:`check_target`'s.)
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
                   clock_mhz=float(clock), engine={**ENGINE_DEFAULTS, **engine}, source=source)

    def to_dict(self):
        """The configuration as a YAML-ready dictionary (inverse of :meth:`from_dict`)."""
        return {"name": self.name, "pe_count": self.pe_count, "simd_lanes": self.simd_lanes,
                "max_kernel": self.max_kernel, "max_in_channels": self.max_in_channels,
                "pipeline": {"popcount_stages": self.popcount_stages},
                "clock_mhz": self.clock_mhz, "engine": dict(self.engine)}

    def replace(self, **changes):
        """A validated copy with some keys changed (``engine`` and ``pipeline`` keys may be given
        as ``engine={...}`` / ``popcount_stages=...``)."""
        d = self.to_dict()
        if "popcount_stages" in changes:
            d["pipeline"] = {"popcount_stages": changes.pop("popcount_stages")}
        if "engine" in changes:
            d["engine"] = {**d["engine"], **changes.pop("engine")}
        d.update(changes)
        return HardwareConfig.from_dict(d, source=self.source)

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

    @property
    def clock_hz(self):
        return self.clock_mhz * 1e6

    @property
    def engine_params(self):
        """The :class:`models.engine.EngineParams` of this configuration.

        Raises
        ------
        ConfigError
            Naming the file and the key, if the engine cannot be built from it.
        """
        params, problem = self._engine()
        if problem:
            raise ConfigError(f"{self.source}: {problem}")
        return params

    def _engine(self):
        """``(EngineParams, None)``, or ``(None, "key: why")`` when the engine's rules refuse."""
        kw = {"pe_count": self.pe_count, "simd_lanes": self.simd_lanes, "acc_bound": self.acc_bound,
              "popcount_stages": self.popcount_stages, **self.engine}
        try:
            return EngineParams(**kw), None
        except ValueError as e:
            param = str(e).split(" ", 1)[0]
            return None, f"{_PARAM_KEYS.get(param, param)}: {e}"

    def accelerator_kwargs(self):
        """Keyword arguments of the gateware's ``Accelerator`` / ``ConvEngine``: the
        :class:`~models.engine.EngineParams` fields."""
        return asdict(self.engine_params)

    def summary(self):
        """One line describing the configuration and its derived widths."""
        return (f"{self.name}: P={self.pe_count} S={self.simd_lanes} "
                f"({self.macs_per_cycle} MACs/cycle), up to {self.max_kernel}x{self.max_kernel}x"
                f"{self.max_in_channels} (acc bound {self.acc_bound}, {self.acc_width}-bit "
                f"accumulators, {self.threshold_bits}-bit thresholds), popcount_stages="
                f"{self.popcount_stages}, {self.clock_mhz:g} MHz")


def load_hw_config(path=None):
    """Read and validate a hardware configuration YAML file (default: ``default.yaml``).

    A bare name (no directory, no ``.yaml``) is looked up in :data:`CONFIG_DIR`.

    Raises
    ------
    ConfigError
        If the file is missing or unreadable, is not YAML, or fails validation; the message
        names the file and the key.
    """
    if isinstance(path, HardwareConfig):
        return path
    path = resolve_hw_config_path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        names = ", ".join(hw_config_names())
        raise ConfigError(f"{path}: no such hardware configuration (shipped: {names})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read hardware configuration: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}".replace("\n", " ")) from None
    return HardwareConfig.from_dict(data, source=path)


def target_problems(cfg, target):
    """Why ``cfg`` cannot serve ``target`` (one of :data:`TARGETS`): a list of messages, empty
    when it can."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    if target == "components":
        return []
    params, problem = cfg._engine()
    if problem:
        return [problem]
    problems = []
    if target == "de10nano":
        if params.bus_bits != board.F2SDRAM_DATA_WIDTH:
            problems.append(f"simd_lanes: the board top needs a {board.F2SDRAM_DATA_WIDTH}-bit bus (the "
                            f"FPGA-to-SDRAM port's width: simd_lanes = {board.F2SDRAM_DATA_WIDTH // 2}), "
                            f"not {params.bus_bits} bits (simd_lanes = {cfg.simd_lanes})")
        if params.max_burst >= 1 << board.F2SDRAM_BURST_WIDTH:
            problems.append(f"engine.max_burst: must be below {1 << board.F2SDRAM_BURST_WIDTH} beats for the "
                            f"FPGA-to-SDRAM port, not {params.max_burst}")
        lo, hi = board.PLL_OUT_RANGE_HZ
        if not lo <= cfg.clock_hz <= hi:
            problems.append(f"clock_mhz: must be within the PLL's output range {lo / 1e6:g}..{hi / 1e6:g} MHz, "
                            f"not {cfg.clock_mhz:g}")
    return problems


def check_target(cfg, target):
    """Raise :class:`ConfigError` in one line if ``cfg`` cannot serve ``target``; return ``cfg``.

    The message names the configuration's file, the target and every reason.
    """
    problems = target_problems(cfg, target)
    if problems:
        raise ConfigError(f"{cfg.source}: hardware configuration {cfg.name} cannot be built for the {target} "
                          f"target: " + "; ".join(problems))
    return cfg


def check_network(hw, net):
    """Check that every accelerator layer of a network fits a hardware configuration.

    A layer fits when its kernel is at most ``max_kernel`` and its accumulator bound
    (``3 * kernel**2 * c_in``, :attr:`models.network.Layer.acc_bound`) is at most the design's
    (:attr:`HardwareConfig.acc_bound`): then neither its accumulators nor its thresholds can
    overflow. (A 1x1 layer may therefore have up to ``max_kernel**2 * max_in_channels`` input
    channels.) Layers that run on the host are not checked.

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


#: The EngineParams fields, in order (for code that lists them, e.g. testbench environments).
ENGINE_PARAM_FIELDS = tuple(f.name for f in fields(EngineParams))
